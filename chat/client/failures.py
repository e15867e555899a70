# -*- test-case-name: tests.test_client_service -*-
"""
Why something failed, in one line for people: no traceback, no class
names; a hint where one helps (a TLS port, a self-signed server).
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet import error as neterror
from twisted.python.failure import Failure

from chat.client.jobs import ServerError
from chat.client.transfer import ChecksumMismatch


def describe_failure(reason: Failure) -> str:
    """
    One line for why a connection failed or ended, for people: no
    traceback, no class names.
    """
    value = reason.value
    if isinstance(value, SSL.Error):
        # pyOpenSSL's errors: [(library, function, reason), ...]
        entries = value.args[0] if value.args and isinstance(value.args[0], list) else []
        reasons = [entry[-1] for entry in entries if isinstance(entry, tuple) and entry and entry[-1]]
        text = "; ".join(reasons) or str(value) or "handshake error"
        if "wrong version number" in text or "record layer failure" in text:
            return f"TLS failed ({text}): is this port serving TLS? Try --starttls, or the TLS port"
        if "certificate verify failed" in text:
            return f"TLS failed ({text}): the server's certificate is not trusted; " \
                "for a self-signed server use --cafile"
        return "TLS failed: " + text
    if type(value).__name__ == "VerificationError":  # service_identity: host name mismatch
        return f"TLS failed: the certificate is not for this host ({value})"
    if isinstance(value, neterror.ConnectionRefusedError):
        return "connection refused (is the daemon running?)"
    if isinstance(value, neterror.DNSLookupError):
        return "unknown host"
    if isinstance(value, neterror.TimeoutError):
        return "timed out"
    if isinstance(value, neterror.ConnectionDone):
        return "the server closed the connection"
    if isinstance(value, neterror.ConnectionLost):
        return "the connection was lost"
    text = str(value).strip()
    return text.splitlines()[-1] if text else type(value).__name__


def transfer_failure(reason: Failure) -> str:
    """
    One line for why a file transfer failed, for people: a checksum that
    does not match, a file system error with its file, the daemon's refusal,
    else as L{describe_failure}.
    """
    value = reason.value
    if isinstance(value, ChecksumMismatch):
        return "the bytes received do not match the SHA-256 of the offer (the partial file was removed)"
    if isinstance(value, OSError) and value.strerror:
        return f"{value.strerror}: {value.filename}" if value.filename else value.strerror
    if isinstance(value, (ServerError, ValueError)):
        return str(value)
    return describe_failure(reason)

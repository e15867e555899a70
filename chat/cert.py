# -*- test-case-name: tests.test_tls -*-
"""
C{chat-cert HOST}: make a self-signed certificate and key for a host name,
for tests and small servers (L{chat.tls.self_signed}).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from twisted.internet.endpoints import quoteStringArgument
from twisted.python import usage
from typing_extensions import override

from chat.settings import DEFAULT_LISTEN
from chat.tls import self_signed, write_private

PROGRAM = "chat-cert"


class Options(usage.Options):
    """
    The command line of C{chat-cert}.
    """

    synopsis = f"Usage: {PROGRAM} [options] HOST"
    longdesc = (
        "Writes HOST.pem (a self-signed certificate for HOST, a DNS name or an IP address) and "
        "HOST.key (its private key, readable by you only), never overwriting a file. Clients "
        "will not trust it on their own: give them HOST.pem as their CA file."
    )
    optParameters = [
        ["days", None, 365, "Days the certificate is valid.", int],
        ["out", "o", ".", "Directory to write the two files in."],
    ]

    @override
    def parseArgs(self, *args: str) -> None:
        if len(args) != 1:
            raise usage.UsageError("give one HOST")
        host = args[0]
        if not host or "/" in host or host.startswith("."):
            raise usage.UsageError(f"not a host name: {host!r}")
        self["host"] = host

    @override
    def postOptions(self) -> None:
        if self["days"] < 1:
            raise usage.UsageError("--days must be 1 or more")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """
    Run C{chat-cert}: the console script's entry point.

    @return: the exit status: 0 written, 1 failed (one line on C{stderr}),
        2 bad command line.
    """
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    options = Options()
    try:
        options.parseOptions(list(sys.argv[1:] if argv is None else argv))
    except usage.UsageError as e:
        stderr.write(f"{options}\n{PROGRAM}: {e}\n")
        return 2
    host = options["host"]
    certificate, key = self_signed(host, options["days"])
    cert_path = os.path.join(options["out"], f"{host}.pem")
    key_path = os.path.join(options["out"], f"{host}.key")
    try:
        os.makedirs(options["out"], exist_ok=True)
        for path in (cert_path, key_path):
            if os.path.exists(path):
                raise FileExistsError(f"{path} exists: remove it first, or use --out")
        write_private(key_path, key)
        with open(cert_path, "xb") as f:
            f.write(certificate)
    except OSError as e:
        stderr.write(f"{PROGRAM}: {e}\n")
        return 1
    stdout.write(
        f"Wrote {cert_path} (certificate, valid {options['days']} days) and {key_path} (private key).\n"
        f"Serve TLS with:  twistd -n chat --tls-cert {cert_path} --tls-key {key_path}"
        f" --listen {DEFAULT_LISTEN}"
        f" --listen 'ssl:6697:privateKey={quoteStringArgument(key_path)}:certKey={quoteStringArgument(cert_path)}'\n"
        f"This certificate is self-signed: clients must be given {cert_path} as their CA file,\n"
        f"e.g. openssl s_client -connect {host}:6697 -CAfile {cert_path}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

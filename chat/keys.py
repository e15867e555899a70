# -*- test-case-name: tests.test_keys -*-
"""
The daemon's side of end-to-end encryption (PROTOCOL.md section 11, the
"This implementation" part of docs/protocol.md): what a published device
key and an envelope may look like, and the device id and fingerprint of a
key. The daemon never opens an envelope; the clients compute the same id and
fingerprint independently (the envelope contract v1 in docs/protocol.md).
Pure: no Twisted, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from chat import errors

BUNDLE_SIZE = 64
"""Bytes of a public key bundle: X25519 public key (32) then Ed25519 public key (32)."""

DEVICES_MAX = 8
"""The most device keys kept per account (or per guest session); publishing
one more drops the oldest."""

_FINGERPRINT_PREFIX = b"chat-e2e-v1 fingerprint"

_BASE64 = re.compile(r"[A-Za-z0-9+/]{86}==\Z")
"""Standard base64 with padding of exactly L{BUNDLE_SIZE} bytes."""

ENVELOPE_PATTERN = re.compile(r"[A-Za-z0-9_-]+\Z")
"""An envelope: one word of base64url characters (RFC 4648 section 5, no padding)."""


def _digest(bundle: bytes) -> bytes:
    return hashlib.sha256(_FINGERPRINT_PREFIX + bundle).digest()


def device_id(bundle: bytes) -> str:
    """
    The device id of a key bundle: base64url without padding of the first
    12 bytes of SHA-256(C{b"chat-e2e-v1 fingerprint"} || bundle), 16
    ASCII characters.
    """
    return base64.urlsafe_b64encode(_digest(bundle)[:12]).decode("ascii")


def fingerprint(bundle: bytes) -> str:
    """
    The fingerprint people compare aloud: six groups of five decimal
    digits separated by single spaces; group C{i} is bytes C{5i} to
    C{5i+5} of the same digest as L{device_id}, big-endian, modulo 100000,
    zero-padded (e.g. C{"04823 99120 00017 52310 88888 10203"}).
    """
    digest = _digest(bundle)
    return " ".join(f"{int.from_bytes(digest[5 * i:5 * i + 5], 'big') % 100000:05d}" for i in range(6))


def parse_bundle(text: str) -> bytes:
    """
    Read the KEY of C{/key publish KEY}.

    @param text: standard base64 with padding (88 ASCII characters).
    @return: the L{BUNDLE_SIZE} bytes of the bundle.
    @raise errors.BadArguments: not base64 of exactly L{BUNDLE_SIZE} bytes
        (C{bad-arguments}).
    """
    if _BASE64.match(text):
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            pass
    raise errors.BadArguments(f"KEY is the base64 (with padding) of a {BUNDLE_SIZE}-byte public key bundle")


def check_envelope(text: str) -> str:
    """
    Check the ENVELOPE of C{/emsg NICK ENVELOPE}: one word of base64url
    characters (C{A-Z a-z 0-9 - _}), taken as it is, never opened.

    @return: C{text}, unchanged.
    @raise errors.BadArguments: empty, or with another character
        (C{bad-arguments}).
    """
    if not ENVELOPE_PATTERN.match(text):
        raise errors.BadArguments("ENVELOPE is one word of base64url characters (A-Z a-z 0-9 - _)")
    return text

# -*- test-case-name: tests.test_irc_sasl -*-
"""
SASL PLAIN over IRC's C{AUTHENTICATE} (IRCv3 C{sasl} 3.1, RFC 4616): the
credentials of one exchange, read from the client's base64 chunks.
Checking them is the chat's C{/login} (PROTOCOL.md sections 7 and 14).
"""

from __future__ import annotations

import base64
import binascii

MECHANISMS = ("PLAIN",)
"""The SASL mechanisms offered (C{CAP LS 302}'s C{sasl=PLAIN}, 908)."""

CHUNK = 400
"""
The length of a full C{AUTHENTICATE} chunk, in characters of base64: a
shorter one (or C{+}) ends the client's response.
"""

RESPONSE_MAX = 1200
"""
The longest response taken, in characters of base64 (three chunks: 900
bytes of C{authzid NUL authcid NUL password}); beyond it, 905.
"""


class SASLFailed(Exception):
    """
    The client's response cannot be read: its text is what 904 (or 905
    when L{too_long}) says.
    """

    def __init__(self, message: str, too_long: bool = False) -> None:
        super().__init__(message)
        self.too_long = too_long


class PlainResponse:
    """
    The client's response to C{AUTHENTICATE PLAIN}'s empty challenge,
    gathered chunk by chunk.
    """

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._length = 0

    def feed(self, chunk: str) -> tuple[str, str] | None:
        """
        Take one C{AUTHENTICATE} parameter.

        @param chunk: base64 text of at most L{CHUNK} characters, or C{+}
            (an empty chunk).
        @return: C{(authcid, password)} once the response is whole, else
            C{None} (more chunks follow a full one).
        @raise SASLFailed: the response is longer than L{RESPONSE_MAX}, not
            base64, not UTF-8, not C{authzid NUL authcid NUL password}, or
            asks to act as another user (an C{authzid} that is not the
            C{authcid}).
        """
        if chunk != "+":
            self._length += len(chunk)
            if self._length > RESPONSE_MAX:
                raise SASLFailed("SASL message too long", too_long=True)
            self._chunks.append(chunk)
            if len(chunk) == CHUNK:
                return None
        try:
            decoded = base64.b64decode("".join(self._chunks), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise SASLFailed("SASL authentication failed: the response is not base64 of UTF-8 text") from None
        parts = decoded.split("\0")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise SASLFailed("SASL authentication failed: PLAIN wants authzid NUL authcid NUL password")
        authzid, authcid, password = parts
        if authzid and authzid.lower() != authcid.lower():
            raise SASLFailed("SASL authentication failed: acting as another account is not supported")
        return authcid, password

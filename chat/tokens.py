# -*- test-case-name: tests.test_tokens -*-
"""
Bearer tokens for the HTTP file routes (PROTOCOL.md section 9): when the
daemon has a web listener, each session gets one with its C{registered}
event, and C{POST /files} and C{GET /files/ID} take it instead of a
password.

A token is C{secrets.token_urlsafe(24)}: 192 random bits, 32 characters.
It is valid while its session lasts and for L{GRACE} seconds after the
session ends (a download link shown before a reconnection keeps working).
Tokens are kept by their SHA-256 only, so a lookup compares digests, never
the secret itself.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import deque
from collections.abc import Collection

GRACE = 600.0
"""Seconds a token stays valid after its session ended (PROTOCOL.md section 9)."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


class Bearer:
    """
    Who a token stands for.

    @ivar session: the live session (an opaque object of the server's),
        or C{None} once it ended.
    @ivar nick: the user's nick when the session ended (the server reads
        a live session's own user).
    @ivar rooms: the lower-cased names of the rooms the user was in when
        the session ended.
    @ivar expires: POSIX seconds after which the token is refused; C{inf}
        while the session lasts.
    """

    __slots__ = ("session", "nick", "rooms", "expires")

    def __init__(self, session: object) -> None:
        self.session: object | None = session
        self.nick = ""
        self.rooms: frozenset[str] = frozenset()
        self.expires = float("inf")


class Tokens:
    """
    The bearer tokens of the sessions of one daemon.
    """

    def __init__(self) -> None:
        self._by_digest: dict[bytes, Bearer] = {}
        self._by_session: dict[object, tuple[str, bytes]] = {}
        self._ending: deque[tuple[float, bytes]] = deque()
        """Ended sessions' tokens by expiry, oldest first."""

    def __len__(self) -> int:
        return len(self._by_digest)

    def issue(self, session: object) -> str:
        """
        The token of C{session}: a new one on its first call, the same one
        after (a session keeps its token across nick changes and logins).
        """
        known = self._by_session.get(session)
        if known is not None:
            return known[0]
        token = secrets.token_urlsafe(24)
        digest = _digest(token)
        self._by_digest[digest] = Bearer(session)
        self._by_session[session] = (token, digest)
        return token

    def ended(self, session: object, nick: str, rooms: Collection[str], now: float) -> None:
        """
        C{session} is over: its token now stands for C{nick} in C{rooms}
        (lower-cased) until C{now} + L{GRACE}. Nothing if it had no token.
        """
        known = self._by_session.pop(session, None)
        if known is None:
            return
        bearer = self._by_digest[known[1]]
        bearer.session = None
        bearer.nick = nick
        bearer.rooms = frozenset(rooms)
        bearer.expires = now + GRACE
        self._ending.append((bearer.expires, known[1]))
        self._sweep(now)

    def forget(self, session: object) -> None:
        """
        C{session} is over without ever having had a user (its C{/nick} or
        C{/login} was refused): its token, if it was issued one, is
        dropped at once, since it stands for nobody.
        """
        known = self._by_session.pop(session, None)
        if known is not None:
            self._by_digest.pop(known[1], None)

    def find(self, token: str, now: float) -> Bearer | None:
        """
        What C{token} stands for at C{now} (POSIX seconds), or C{None}: an
        unknown token, or one whose session ended more than L{GRACE} seconds ago.
        """
        self._sweep(now)
        bearer = self._by_digest.get(_digest(token))
        if bearer is None or bearer.expires <= now:
            return None
        return bearer

    def _sweep(self, now: float) -> None:
        ending = self._ending
        while ending and ending[0][0] <= now:
            _, digest = ending.popleft()
            self._by_digest.pop(digest, None)

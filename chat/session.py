# -*- test-case-name: tests.test_server -*-
"""
L{Session}: one connected participant as L{chat.server.ChatServer} keeps
it, from its connection to its end, whatever its front end.
"""

from __future__ import annotations

from chat.domain import User
from chat.interfaces import IParticipant


class Session:
    """
    One connected participant as the server keeps it.

    @ivar participant: the connection.
    @ivar local: whether the client is on this machine (loopback or a UNIX
        socket), where passwords may cross plain TCP (PROTOCOL.md section 7).
    @ivar allowed: C{False} when the client's address has more connections
        than C{--max-connections-per-ip}: the front end says C{bye}.
    @ivar user: the domain's user once registered, else C{None}.
    @ivar closing: set by the front end once it closes the connection: a
        login completing after that is dropped.
    """

    __slots__ = ("participant", "local", "allowed", "user", "closing")

    def __init__(self, participant: IParticipant, local: bool) -> None:
        self.participant = participant
        self.local = local
        self.allowed = True
        self.user: User | None = None
        self.closing = False

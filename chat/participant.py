# -*- test-case-name: tests.test_protocol,tests.test_web_socket -*-
"""
L{SessionParticipant}: what every front end's participant (a line
connection, a WebSocket) does the same way with its server session: the
facts L{chat.interfaces.IParticipant} asks for, closing after the events
published before, and the registration timeout of PROTOCOL.md section 8.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorTime,
    ISSLTransport,
    ITransport,
)
from twisted.logger import Logger

if TYPE_CHECKING:
    from chat.server import ChatServer
    from chat.session import Session
    from chat.settings import Settings


def accept_tcp(transport: ITransport) -> tuple[str, bool]:
    """
    What a stream front end (line, IRC) learns of a new connection: the
    client's address (an IP or a UNIX socket path), interned so that
    connections from one address share one string, and whether the
    connection is TLS. Sets C{TCP_NODELAY} where the transport has it:
    chat lines are small and should not wait for Nagle's algorithm.
    """
    address = transport.getPeer()
    peer = sys.intern(str(getattr(address, "host", address)))
    set_nodelay = getattr(transport, "setTcpNoDelay", None)
    if set_nodelay is not None:
        set_nodelay(True)
    return peer, ISSLTransport.providedBy(transport)


class SessionParticipant:
    """
    A mixin for a front end's participant: it has a C{session} and a
    C{server}, and implements L{_stop_reading} and L{_close_now}. (No
    C{__slots__}: Twisted's protocols have a C{__dict__} anyway.)
    """

    session: Session
    server: ChatServer
    settings: Settings
    clock: IReactorTime
    peer: str
    _closing: bool
    _quit_reason: str
    _registration_call: IDelayedCall | None
    _log: Logger

    @property
    def nick(self) -> str:
        """The nick once registered, else C{''}."""
        user = self.session.user
        return "" if user is None else user.nick

    @property
    def account(self) -> str | None:
        """The lower-cased account name when logged in, else C{None}."""
        user = self.session.user
        return None if user is None else user.account

    def close(self, reason: str) -> None:
        """
        Stop reading; once the events published before are out, say C{bye}
        with C{reason} and close when the output has drained. Idempotent.
        """
        if self._closing:
            return
        self._closing = self.session.closing = True
        self._quit_reason = reason
        self._stop_reading()
        self.server.then(lambda: self._close_now(reason))

    def _stop_reading(self) -> None:
        """
        Read no more input (the transport is paused).
        """
        raise NotImplementedError()

    def _close_now(self, reason: str) -> None:
        """
        Say C{bye} with C{reason} after what is queued, then close.
        """
        raise NotImplementedError()

    def _expect_registration(self) -> None:
        """
        Close the connection unless it registers within
        C{settings.registration_timeout} seconds (PROTOCOL.md section 8).
        """
        self._registration_call = self.clock.callLater(
            self.settings.registration_timeout, self._registration_timed_out
        )

    def _registration_timed_out(self) -> None:
        """
        Close a connection that chose no nick in time.
        """
        self._registration_call = None
        if self.session.user is not None or self._closing:
            return
        timeout = self.settings.registration_timeout
        self._log.debug("{peer} chose no nick within {timeout} s: closed", peer=self.peer, timeout=timeout)
        self.close(f"no nick chosen within {timeout:g} s")

    def _registered(self) -> None:
        """
        Called after each request: once the session has a user, the
        registration timeout is over.
        """
        call = self._registration_call
        if call is not None and self.session.user is not None:
            self._registration_call = None
            if call.active():
                call.cancel()

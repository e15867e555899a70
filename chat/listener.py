# -*- test-case-name: tests.test_tap -*-
"""
L{Listener}: one listening endpoint of the daemon as a service, which
keeps its own listening port (no private attribute of Twisted's
C{StreamServerEndpointService}), fails start-up when it cannot listen, and
says where it listens.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from typing_extensions import override

LISTEN_BACKLOG = 1024
"""
Connections the kernel queues before the daemon accepts them, unless the
endpoint says C{backlog=}: Twisted's default of 50 drops connections (their
SYNs) when many arrive at once, as after a restart (issue 17). The kernel
caps it at C{net.core.somaxconn}.
"""

_BACKLOG_TYPES = frozenset({"tcp", "tcp6", "ssl", "unix"})
"""The endpoint types whose Twisted parsers take C{backlog=}."""

_BACKLOG_GIVEN = re.compile(r"(?<!\\):backlog=")


def with_backlog(description: str, backlog: int = LISTEN_BACKLOG) -> str:
    """
    A server endpoint description (Twisted's strports syntax) with
    C{backlog=BACKLOG} added, unless it names a backlog already or is of a
    type that takes none (L{_BACKLOG_TYPES}).

    @param description: e.g. C{tcp:8888:interface=127.0.0.1}.
    @return: e.g. C{tcp:8888:interface=127.0.0.1:backlog=1024}.
    """
    return f"{description}:backlog={backlog}" if needs_backlog(description) else description


def needs_backlog(description: str) -> bool:
    """
    Whether L{with_backlog} adds a backlog to C{description}: its type takes
    one and it names none.
    """
    kind = description.split(":", 1)[0].lower()
    return kind in _BACKLOG_TYPES and ":" in description and not _BACKLOG_GIVEN.search(description)


class Listener(Service):
    """
    Listens on C{endpoint} with C{factory} from C{privilegedStartService}
    (before twistd drops privileges) until stopped.

    @ivar port: the listening port once listening, else C{None}.
    """

    _log = Logger()

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
        reactor: IReactorCore,
        secure: bool = False,
        kind: str = "",
        on_listening: Callable[[IAddress, bool], None] | None = None,
    ) -> None:
        """
        @param reactor: the reactor, once running, announces the listener:
            whoever reads the line may signal the daemon, whose handlers
            are in place by then.
        @param secure: whether the endpoint serves TLS, for the log.
        @param kind: what it serves, for the log: C{"web"} (C{chat web
            listening on ...}), C{"metrics"} (C{chat metrics listening on
            ...}), or C{""} for the line protocol.
        @param on_listening: called with the address listened on and
            C{secure} once listening (L{chat.server.ChatServer.web_listening}).
        """
        self._on_listening = on_listening
        self._reactor = reactor
        self.endpoint = endpoint
        self.factory = factory
        self.secure = secure
        self.kind = kind
        self.port: IListeningPort | None = None
        self._listening_since_start = False

    @override
    def privilegedStartService(self) -> None:
        """
        Listen. A failure known at once (a busy or forbidden port, with
        TCP endpoints) is raised, so that start-up fails instead of running
        with no listener; a later one is logged.

        @raise twisted.internet.error.CannotListenError: it cannot listen.
        """
        super().privilegedStartService()
        self._listening_since_start = True
        failed: list[Failure] = []
        listening: Deferred[IListeningPort] = self.endpoint.listen(self.factory)
        listening.addCallback(self._listening)
        listening.addErrback(failed.append)
        if failed:
            failed[0].raiseException()

    @override
    def startService(self) -> None:
        """
        Listen, if L{privilegedStartService} did not (a service started on
        its own).
        """
        super().startService()
        if not self._listening_since_start:
            self.privilegedStartService()

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        if self._on_listening is not None:
            self._on_listening(port.getHost(), self.secure)
        self._reactor.callWhenRunning(self._announce, port)

    def _announce(self, port: IListeningPort) -> None:
        address = port.getHost()
        host = getattr(address, "host", None)
        where = f"{host}:{getattr(address, 'port', '')}" if host is not None else str(address)
        tls = " (TLS)" if self.secure else ""
        if self.kind == "web":
            self._log.info("chat web listening on {address}{tls}", address=where, tls=tls)
        elif self.kind == "metrics":
            self._log.info("chat metrics listening on {address}{tls}", address=where, tls=tls)
        elif self.kind == "irc":
            self._log.info("chat irc listening on {address}{tls}", address=where, tls=tls)
        else:
            self._log.info("chat listening on {address}{tls}", address=where, tls=tls)

    @override
    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        self._listening_since_start = False
        port, self.port = self.port, None
        if port is None:
            return None
        return port.stopListening()

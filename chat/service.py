# -*- test-case-name: tests.test_tap -*-
"""
L{ChatService}: the daemon's lifecycle around one L{ChatFactory}.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.logger import Logger
from typing_extensions import override

from chat.protocol import ChatFactory


class ChatService(Service):
    """
    Announces the listeners once they listen, and on stop (SIGTERM) sends
    C{bye} to every connection before the reactor goes down.
    """

    _log = Logger()

    def __init__(
        self,
        factory: ChatFactory,
        reactor: IReactorTime,
        listeners: Sequence[StreamServerEndpointService] = (),
    ) -> None:
        self.factory = factory
        self._reactor = reactor
        self._listeners = listeners

    @override
    def startService(self) -> None:
        super().startService()
        for listener in self._listeners:
            # Set by StreamServerEndpointService.privilegedStartService, which
            # runs before any startService.
            waiting = listener._waitingForPort
            if waiting is not None:
                waiting.addCallback(self._listening)

    def _listening(self, port: IListeningPort) -> IListeningPort:
        address = port.getHost()
        host = getattr(address, "host", None)
        where = f"{host}:{address.port}" if host is not None else str(address)  # type: ignore[attr-defined]
        self._log.info("chat listening on {address}", address=where)
        return port

    @override
    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self.factory.shutdown(self._reactor)

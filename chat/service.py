# -*- test-case-name: tests.test_tap -*-
"""
L{ChatService}: the daemon's lifecycle around one L{ChatFactory}.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from typing_extensions import override

from chat.protocol import ChatFactory

GC_THRESHOLDS = (20_000, 20, 20)
"""The daemon's garbage collector thresholds (CPython's default: 700, 10, 10)."""

PRUNE_INTERVAL = 3600.0
"""Seconds between two prunings of old messages (C{--history-days})."""

SWEEP_INTERVAL = 60.0
"""Seconds between two removals of expired file offers and unused files."""


class ChatService(Service):
    """
    Starts the password hasher, the pruning of old messages and the sweep
    of expired file offers, announces the listeners once they listen, and
    on stop (SIGTERM) sends C{bye} to every connection, then writes what is
    pending and closes the store, before the reactor goes down.
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
        self._pruning: LoopingCall | None = None
        self._sweeping = LoopingCall(self.sweep)
        self._sweeping.clock = reactor

    @override
    def startService(self) -> None:
        super().startService()
        # Every message waiting for its commit keeps a dozen small objects
        # alive; with CPython's default threshold (700) the young generation
        # is collected thousands of times a second under load. Collect less
        # often, and never rescan what start-up built (bench/README.md).
        gc.set_threshold(*GC_THRESHOLDS)
        gc.freeze()
        self.factory.accounts.hasher.start()
        days = self.factory.settings.history_days
        if days:
            self._pruning = LoopingCall(self._prune, days * 86400)
            self._pruning.clock = self._reactor
            self._pruning.start(PRUNE_INTERVAL, now=True).addErrback(
                lambda f: self._log.failure("pruning stopped", f)
            )
        # The first sweep also drops offers whose file a crash lost, and files
        # a crash left without an offer.
        self._sweeping.start(SWEEP_INTERVAL, now=True).addErrback(
            lambda f: self._log.failure("the sweep of expired files stopped", f)
        )
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

    def _prune(self, keep: float) -> Deferred[None]:
        def pruned(count: int) -> None:
            if count:
                self._log.info("pruned {count} messages older than {days:g} days", count=count, days=keep / 86400)

        done = self.factory.domain.prune(self._reactor.seconds() - keep)
        return done.addCallbacks(pruned, lambda f: self._log.failure("could not prune old messages", f))

    def sweep(self) -> None:
        """
        Remove the file offers that expired (C{--file-ttl}) or whose file is
        gone, then the stored files no offer points to.
        """
        domain = self.factory.domain
        spool = self.factory.spool
        gone = domain.expire_offers(self._reactor.seconds(), spool.has)
        freed = spool.collect({offer.sha256 for offer in domain.offers.values()})
        if gone or freed:
            self._log.info(
                "removed {count} expired file offers; {freed} bytes freed", count=len(gone), freed=freed
            )

    @override
    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._pruning is not None and self._pruning.running:
            self._pruning.stop()
        if self._sweeping.running:
            self._sweeping.stop()
        done = self.factory.shutdown(self._reactor)

        def release(result: object) -> Deferred[None]:
            self.factory.accounts.hasher.stop()
            self.factory.spool.close()
            return self.factory.store.close()

        return done.addBoth(release)

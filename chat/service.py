# -*- test-case-name: tests.test_tap -*-
"""
L{ChatService}: the daemon's lifecycle around one L{ChatServer}.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from typing_extensions import override

from chat.config import ConfigError
from chat.server import ChatServer
from chat.settings import Settings
from chat.tls import ServerTLS, TLSError

GC_THRESHOLDS = (20_000, 20, 20)
"""The daemon's garbage collector thresholds (CPython's default: 700, 10, 10)."""

PRUNE_INTERVAL = 3600.0
"""Seconds between two prunings of old messages (C{--history-days})."""

SWEEP_INTERVAL = 60.0
"""Seconds between two removals of expired file offers and unused files."""


class ChatService(Service):
    """
    Starts the password hasher, the pruning of old messages and the sweep
    of expired file offers, reloads the configuration file, the TLS
    certificates and the bans on SIGHUP (L{reload}), and on
    stop (SIGTERM) sends C{bye} to every connection, then writes what is
    pending and closes the store, before the reactor goes down.
    """

    _log = Logger()

    def __init__(
        self,
        server: ChatServer,
        reactor: IReactorTime,
        certificates: Sequence[ServerTLS] = (),
        reread: Callable[[Settings], tuple[Settings, list[str]]] | None = None,
    ) -> None:
        """
        @param certificates: read again on SIGHUP (L{reload_certificates}).
        @param reread: reads the configuration file again on SIGHUP
            (L{reload_settings}): called with the settings in force, it
            returns the new ones and the options changed that need a
            restart, or raises L{ConfigError}; C{None} without C{--config}.
        """
        self.server = server
        self._reactor = reactor
        self._certificates = certificates
        self._reread = reread
        self._previous_sighup: Any = None
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
        self.server.accounts.hasher.start()
        days = self.server.settings.history_days
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
        if hasattr(signal, "SIGHUP"):
            self._previous_sighup = signal.signal(signal.SIGHUP, self._sighup)

    def _sighup(self, signum: int, frame: object) -> None:
        # A signal handler may run in the middle of any reactor code: do the
        # work in the reactor's next turn.
        self._reactor.callFromThread(self.reload)  # type: ignore[attr-defined]

    def reload(self) -> None:
        """
        What SIGHUP does, without dropping a connection: read the
        configuration file again (L{reload_settings}), the TLS certificates
        (L{reload_certificates}) and the bans.
        """
        self.reload_settings()
        self.reload_certificates()
        self.server.reload_moderation().addErrback(
            lambda f: self._log.failure("SIGHUP: kept the bans and roles in force: they could not be read", f)
        )

    def reload_settings(self) -> None:
        """
        Read the configuration file again (C{--config}; nothing without
        one) and put its limits and message of the day in force
        (L{ChatServer.reconfigure}); each changed option that needs a
        restart is logged as such. A file that cannot be used is logged in
        one line, and the settings in force stay.
        """
        if self._reread is None:
            return
        try:
            settings, restart = self._reread(self.server.settings)
        except ConfigError as e:
            self._log.warn("SIGHUP: kept the settings in force: {error}", error=str(e))
            return
        for option in restart:
            self._log.warn("SIGHUP: --{option} changed: it needs a restart to take effect", option=option)
        before = self.server.settings
        self.server.reconfigure(settings)
        changed = [field.name for field in fields(settings)
                   if getattr(settings, field.name) != getattr(before, field.name)]
        self._log.info(
            "SIGHUP: reloaded the configuration file: {changed}",
            changed=", ".join(name.replace("_", "-") for name in changed) + " changed" if changed else "no change",
        )

    def reload_certificates(self) -> None:
        """
        Read every TLS certificate again (SIGHUP): connections made from now
        on get the new ones. One that cannot be used is logged, and the
        one served so far stays.
        """
        for tls in self._certificates:
            try:
                certificate = tls.reload()
            except TLSError as e:
                self._log.error("SIGHUP: kept the TLS certificate served so far: {error}", error=str(e))
            else:
                self._log.info(
                    "SIGHUP: reloaded the TLS certificate of {name}, valid until {until:%Y-%m-%d %H:%M} UTC",
                    name=tls.name, until=certificate.certificate.not_valid_after_utc,
                )

    def _prune(self, keep: float) -> Deferred[None]:
        def pruned(count: int) -> None:
            if count:
                self._log.info("pruned {count} messages older than {days:g} days", count=count, days=keep / 86400)

        done = self.server.domain.prune(self._reactor.seconds() - keep)
        return done.addCallbacks(pruned, lambda f: self._log.failure("could not prune old messages", f))

    def sweep(self) -> None:
        """
        Remove the file offers that expired (C{--file-ttl}) or whose file is
        gone, then the stored files no offer points to; then collect the
        garbage of closed connections. A closed connection's objects refer
        to each other (its protocol, session, outbox and TLS state), so only
        the cycle collector frees them, and with L{GC_THRESHOLDS} its full
        passes are rare on a quiet daemon: without this, the memory of
        connections that came and went (a flood of silent TLS connections,
        say) would stay held until one.
        """
        domain = self.server.domain
        files = self.server.files
        gone = domain.expire_offers(self._reactor.seconds(), files.has)
        freed = files.collect({offer.sha256 for offer in domain.offers.values()})
        if gone or freed:
            self._log.info(
                "removed {count} expired file offers; {freed} bytes freed", count=len(gone), freed=freed
            )
        self._collect()

    def _collect(self) -> None:
        gc.collect()

    @override
    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._previous_sighup is not None:
            signal.signal(signal.SIGHUP, self._previous_sighup)
            self._previous_sighup = None
        if self._pruning is not None and self._pruning.running:
            self._pruning.stop()
        if self._sweeping.running:
            self._sweeping.stop()
        done = self.server.shutdown(self._reactor)

        def release(result: object) -> Deferred[None]:
            self.server.accounts.hasher.stop()
            self.server.files.close()
            return self.server.store.close()

        return done.addBoth(release)

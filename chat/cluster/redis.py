# -*- test-case-name: tests.test_cluster_bus,tests.test_cluster_claims -*-
"""
How the daemons of a cluster reach Redis (PROTOCOL.md section 13,
C{--redis URL}): L{parse_url} reads the URL, and L{Connection} keeps one
connection through C{txredisapi} (whose C{ClientService} reconnects with a
capped exponential backoff), telling its owner when the connection is
usable and when it is lost. The bus (L{chat.cluster.bus}) and the nick
claims (L{chat.cluster.claims}) each keep their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import txredisapi  # type: ignore[import-untyped]
from typing_extensions import override

__all__ = ["Connection", "Subscriber", "parse_url"]


def parse_url(url: str) -> tuple[str, int, int | None, str | None]:
    """
    The parts of a Redis URL C{redis://[:PASSWORD@]HOST[:PORT][/DB]}.

    @return: C{(host, port, db, password)}: port 6379 by default, C{db}
        and C{password} C{None} when not given (the password
        percent-decoded).
    @raise ValueError: not a C{redis://} URL (C{rediss://}, TLS, is not
        supported), or a port or database that is not a number.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"expected a redis:// URL, not {url!r}")
    host = parts.hostname or "localhost"
    port = parts.port or 6379
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the database of {url!r} is not a number")
    password = unquote(parts.password) if parts.password is not None else None
    return host, port, int(path) if path else None, password


class Subscriber(txredisapi.SubscriberProtocol):  # type: ignore[misc]
    """
    A subscription's connection: hands every message to its factory's C{on_message}.
    """

    @override
    def messageReceived(self, pattern: object, channel: object, message: object) -> None:
        self.factory.on_message(message)


def _nothing(connection: object) -> None:
    """What a L{Connection} does by default when its connection is ready or lost."""


class Connection(txredisapi.RedisFactory):  # type: ignore[misc]
    """
    One connection to Redis, kept by txredisapi, telling its owner when it
    is usable (the first time, and each time after it was lost) and when
    it is lost. Commands go through C{handler}; C{startConnecting(endpoint)}
    connects, C{disconnect()} closes for good.
    """

    def __init__(
        self,
        name: str | None,
        protocol: type[Any] = txredisapi.RedisProtocol,
        dbid: int | None = None,
        password: str | None = None,
        delays: tuple[float, float] | None = None,
        on_ready: Callable[[Any], object] = _nothing,
        on_lost: Callable[[Any], object] = _nothing,
        on_message: Callable[[object], object] | None = None,
        reply_timeout: float | None = None,
    ) -> None:
        """
        @param protocol: C{txredisapi.RedisProtocol}, or L{Subscriber} for a subscription.
        @param delays: seconds before the first attempt to reconnect, and
            at most between attempts; txredisapi's (1 and 10) when C{None}.
        @param on_message: with L{Subscriber}, called with each message.
        @param reply_timeout: seconds a command may wait for its reply
            before the connection is dropped and made again.
        """
        super().__init__(name, dbid, 1, isLazy=True, password=password, replyTimeout=reply_timeout,
                         convertNumbers=False)
        self.protocol = protocol
        if delays is not None:
            self.initialDelay, self.maxDelay = delays
        self.on_ready, self.on_lost, self.on_message = on_ready, on_lost, on_message

    @override
    def addConnection(self, conn: Any) -> None:
        super().addConnection(conn)
        if conn in self.pool:
            self.on_ready(conn)

    @override
    def delConnection(self, conn: Any) -> None:
        super().delConnection(conn)
        self.on_lost(conn)

# -*- test-case-name: tests.test_postgres_store -*-
"""
L{PsycopgPool}: how the PostgreSQL store (L{chat.postgres_store}) reaches
the database in the daemon, one psycopg 3 connection used from a thread of
its own (why this and not adbapi or psycopg's asyncio API:
C{docs/cluster.md}, "How the PostgreSQL store talks to the database").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

__all__ = ["CONNECT_TIMEOUT", "PsycopgPool"]

CONNECT_TIMEOUT = 10.0
"""Seconds an operation waits for a connection to the database before it fails."""


class PsycopgPool:
    """
    The L{Pool} of the daemon: one psycopg 3 connection held by a
    C{psycopg_pool.ConnectionPool} (which checks it before each use and
    reconnects in the background when the server dropped it), used from a
    thread of its own, so that interactions run one at a time in the order
    asked for. Each interaction is one transaction: committed when it
    returns, rolled back when it raises.
    """

    def __init__(self, dsn: str, reactor: Any = None, timeout: float = CONNECT_TIMEOUT) -> None:
        """
        Start the thread and begin connecting (in the background).

        @param dsn: a libpq connection string or URI.
        @param reactor: the reactor results are delivered to; the global one
            when C{None}.
        @param timeout: seconds an interaction waits for a connection
            (PostgreSQL unreachable) before it fails with
            C{psycopg_pool.PoolTimeout}.
        """
        from psycopg_pool import ConnectionPool

        # psycopg_pool reports each failed reconnection through the standard
        # library's logging, which ends on stderr line by line; the store
        # logs a failed write once and the recovery once instead.
        logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)

        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self._dsn = dsn
        self._reactor = reactor
        self._timeout = timeout
        self._connections = ConnectionPool(
            dsn, min_size=1, max_size=1, open=False, timeout=timeout, num_workers=1, name="chat",
            check=ConnectionPool.check_connection, reconnect_timeout=365 * 86400.0,
        )
        self._connections.open(wait=False)
        self._thread = ThreadPool(1, 1, "chat-postgres")
        self._thread.start()

    def runInteraction(self, interaction: Callable[..., Any], *args: Any) -> Deferred[Any]:  # noqa: N802
        """
        Call C{interaction(cursor, *args)} in the database thread, in a
        transaction of its own, after every interaction asked for earlier.

        @return: fires with what C{interaction} returns, or fails with what
            it raises (or C{psycopg_pool.PoolTimeout}, C{psycopg.OperationalError}
            when the database cannot be reached).
        """
        return deferToThreadPool(self._reactor, self._thread, self._interact, interaction, *args)

    def _interact(self, interaction: Callable[..., Any], *args: Any) -> Any:
        with self._connections.connection() as connection, connection.cursor() as cursor:
            return interaction(cursor, *args)

    def probe(self) -> Deferred[None]:
        """
        Connect once, directly, to learn why the database cannot be reached.

        @return: fires when a connection succeeded; fails with
            C{psycopg.OperationalError} saying why not.
        """
        import psycopg

        def connect() -> None:
            psycopg.connect(self._dsn, connect_timeout=max(2, int(self._timeout))).close()

        return deferToThreadPool(self._reactor, self._thread, connect)

    def close(self) -> None:
        """
        Wait for the interaction running (if any), stop the thread, close the connection.
        """
        self._thread.stop()
        self._connections.close()

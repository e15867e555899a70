# -*- test-case-name: tests.test_storage -*-
"""
The SQLite L{IStore}, the daemon's default: the database under
C{--data-dir} (its schema and migrations are L{chat.schema}), written from
one database thread, and opened with L{open_store}. The store itself (group
commit, the lists kept in memory, the SQL) is L{chat.pooled_store.PooledStore};
this module gives its SQLite L{Dialect} (L{SQLITE}) and the opener; its ids
are C{PooledStore}'s (one above the highest id stored). L{Pool} moved to
L{chat.pooled_store}; it is re-exported here for older imports.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from twisted.enterprise import adbapi
from twisted.internet.interfaces import IReactorTime

from chat import schema
from chat.dialect import Dialect, columns
from chat.events import DeviceKey, FileOffer
from chat.pooled_store import Contents, Pool, PooledStore
from chat.storage import ModerationRecord

__all__ = ["SQLITE", "Pool", "SQLiteStore", "open_store"]


def _upsert(table: str, keys: Sequence[str], values: Sequence[str]) -> str:
    return f"INSERT OR REPLACE INTO {table} {columns(*keys, *values)}"


def _insert_or_ignore(table: str, names: Sequence[str]) -> str:
    return f"INSERT OR IGNORE INTO {table} {columns(*names)}"


SQLITE = Dialect("?", _upsert, _insert_or_ignore, no_limit=-1)
"""The SQL of L{SQLiteStore}: sqlite3's qmark placeholders, C{INSERT OR
REPLACE}, C{INSERT OR IGNORE}, and C{LIMIT -1} for no limit."""


class SQLiteStore(PooledStore):
    """
    The SQLite store: one database thread (an adbapi pool of one connection,
    so operations run in the order they are asked for), with the group
    commit of L{PooledStore}: messages added while a write is in progress
    are written together in the next transaction, one disk flush for the
    whole group; a failed group is logged once and its senders are told
    C{busy}. Ids count up from the highest id stored: this daemon alone
    writes the database. Operations on a closed store fail with
    C{sqlite3.ProgrammingError}.

    Open it with L{open_store}.
    """

    dialect = SQLITE
    closed_error = sqlite3.ProgrammingError

    def __init__(
        self,
        pool: Pool,
        clock: IReactorTime,
        last_id: int,
        account_names: dict[str, str],
        offers: Sequence[FileOffer] = (),
        topics: dict[str, tuple[str, str, str]] | None = None,
        path: str = "the database",
        moderation: ModerationRecord | None = None,
        device_keys: dict[str, tuple[DeviceKey, ...]] | None = None,
    ) -> None:
        """
        @param last_id: the highest id stored.
        @param account_names: the accounts' names by lower-cased name, kept
            (not copied); the other lists are copied (their shapes: L{Contents}).
        @param path: the database's file, named in the log.
        """
        contents = Contents(
            last_id, account_names, offers, topics or {}, moderation or ModerationRecord(), device_keys or {}
        )
        super().__init__(pool, clock, contents, path)
        self.path = path


def open_store(
    data_dir: str,
    clock: IReactorTime,
    reactor: Any = None,
    create: bool = True,
    make_pool: Callable[[str], Pool] | None = None,
    check: bool = False,
) -> SQLiteStore:
    """
    Open the database in C{data_dir} (migrating it) and return a store over
    it. Blocking: call it at start-up, before serving.

    @param reactor: the reactor the database thread reports to; the global
        one when C{None}.
    @param create: create the database when there is none (the daemon);
        C{chat-admin} never does.
    @param make_pool: called with the database's path, returns the L{Pool}
        the store runs on, instead of adbapi's C{ConnectionPool} of one
        connection on a thread of its own (the daemon's).
    @param check: refuse a database that cannot be written or is damaged
        (L{schema.check_database}, which reads it whole): the daemon does;
        C{chat-admin} does not, so that it can read what is left.
    @raise schema.DatabaseError: the database cannot be used, is missing
        without C{create}, or with C{check} is read-only or damaged (one
        line for the operator).
    """
    path = schema.path_in(data_dir)
    connection = schema.open_database(path, create, check)
    try:
        contents = Contents.read(connection, schema.last_id(connection))
    finally:
        connection.close()
    pool: Pool
    if make_pool is None:
        pool = adbapi.ConnectionPool(
            "sqlite3", path,
            timeout=schema.BUSY_TIMEOUT,
            check_same_thread=False,  # opened in the pool's thread, closed from the reactor's
            cp_min=1, cp_max=1,  # one connection, one thread: operations run in order
            cp_openfun=schema.configure,
            cp_reactor=reactor,
            cp_noisy=False,
        )
    else:
        pool = make_pool(path)
    return SQLiteStore(
        pool, clock, contents.last_id, contents.account_names, contents.offers, contents.topics, path,
        contents.moderation, contents.device_keys,
    )

# -*- test-case-name: tests.test_postgres_store -*-
"""
The PostgreSQL L{IStore} of a cluster (PROTOCOL.md section 13, C{--postgres
DSN}): the same store as L{chat.sqlite_store.SQLiteStore}, shared by every
daemon of the cluster, which numbers messages from one counter in the
database as it commits them; opened with L{open_postgres_store}.

B{Threads and ordering.} The store runs on a L{Pool}: in the daemon a
L{chat.postgres_pool.PsycopgPool}, one psycopg 3 connection (kept by C{psycopg_pool}, which
checks it before each use and replaces one the server dropped) used from
one thread of its own, so that operations run in the order they are asked
for (each read sees every write asked for before it), as in the SQLite
store, and the reactor never waits for the database. (L{Pool} is
L{chat.pooled_store.Pool}.) (adbapi's
C{ConnectionPool("psycopg", ...)} works too, but after a server restart it
logs tracebacks and fails an operation before it reconnects.)

B{Group commit.} As in every L{chat.pooled_store.PooledStore}: writes asked
for in one reactor turn are written together in one transaction, one commit
per group, not per message, which is what keeps the fan-out figure. The
store, its reads and its SQL are L{chat.pooled_store}'s; this module gives
the PostgreSQL L{Dialect} (L{POSTGRES}), the schema (L{MIGRATIONS}), the
pool and the ids.

B{Ids.} Ids must be unique and increasing across every daemon sharing the
database, and a daemon must be able to tell which messages it has not
seen. The table C{id_blocks} holds one row: C{top}, the highest id ever
given out, and C{last_message}, the id of the last message committed.

  - B{Messages are numbered as they are committed} (L{number}): the domain
    gives them provisional ids (L{chat.ids.ProvisionalIds}); the
    transaction that writes a group first locks the row (C{SELECT ... FOR
    UPDATE}), gives the group's messages the next ids in order, each with
    C{after}, the id committed just before it, and moves both columns on.
    The lock is held until the commit, so groups committed by any number of
    daemons take their ids in commit order, and once a message is known,
    every message with a lower id is committed (what
    L{chat.cluster.order} relies on). L{add} fires with the L{Numbered}.
  - B{File offers} take one id from C{top} when their upload starts
    (L{reserve_id}, one round trip), so an offer sorts after every message
    committed before it.
  - L{next_id} (L{IStore.next_id}, synchronous) hands out ids from blocks
    of C{block} reserved ahead with C{UPDATE id_blocks SET top =
    greatest(top, FLOOR) + BLOCK RETURNING top}: unique across daemons and
    restarts, increasing per store, not ordered across daemons. The daemon
    itself no longer needs it (it raises L{IdsExhausted} when the blocks
    run out before the next reservation arrives).

Times are stored as integer milliseconds since the POSIX epoch (UTC); names
as spelled, with a lower-cased C{*_key} column for lookups that ignore case
(PROTOCOL.md section 3.3), as in L{chat.schema}.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from chat.dialect import Dialect, Pending, columns
from chat.events import Message, Private
from chat.interfaces import IIdAllocator
from chat.pooled_store import Contents, Pool, PooledStore, one_line
from chat.postgres_pool import CONNECT_TIMEOUT, PsycopgPool
from chat.schema import DatabaseError, from_ms
from chat.storage import Numbered

__all__ = [
    "MIGRATIONS", "POSTGRES", "VERSION", "IdsExhausted", "PostgresStore", "migrate",
    "open_postgres_store",
]

BLOCK = 1000
"""Ids reserved at a time by default (see the module's docstring)."""

MIGRATION_LOCK = 0x63686174_0017
"""The advisory lock key (C{'chat'}, issue 23) daemons take while migrating, so one of them migrates."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # Version 1: everything of the SQLite schema version 7 (chat.schema), and
    # the id counter of the cluster.
    (
        """CREATE TABLE messages (
            id BIGINT PRIMARY KEY,
            ts BIGINT NOT NULL,
            room TEXT NOT NULL,
            room_key TEXT NOT NULL,
            sender TEXT NOT NULL,
            text TEXT NOT NULL,
            action BOOLEAN NOT NULL DEFAULT FALSE
        )""",
        "CREATE INDEX messages_by_room ON messages (room_key, id)",
        "CREATE INDEX messages_by_time ON messages (ts)",
        """CREATE TABLE accounts (
            name_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            password TEXT NOT NULL,
            created BIGINT NOT NULL
        )""",
        """CREATE TABLE private (
            id BIGINT PRIMARY KEY,
            ts BIGINT NOT NULL,
            sender TEXT NOT NULL,
            sender_key TEXT NOT NULL,
            recipient TEXT NOT NULL,
            recipient_key TEXT NOT NULL,
            text TEXT NOT NULL,
            action BOOLEAN NOT NULL DEFAULT FALSE,
            pending BOOLEAN NOT NULL DEFAULT FALSE,
            e2e TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX private_pending ON private (recipient_key, id) WHERE pending",
        "CREATE INDEX private_by_pair ON private (sender_key, recipient_key, id)",
        "CREATE INDEX private_by_time ON private (ts)",
        """CREATE TABLE offers (
            id BIGINT PRIMARY KEY,
            sender TEXT NOT NULL,
            target TEXT NOT NULL,
            name TEXT NOT NULL,
            size BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            expires BIGINT NOT NULL
        )""",
        """CREATE TABLE topics (
            room_key TEXT PRIMARY KEY,
            room TEXT NOT NULL,
            text TEXT NOT NULL,
            set_by TEXT NOT NULL
        )""",
        "CREATE TABLE admins (name_key TEXT PRIMARY KEY)",
        """CREATE TABLE operators (
            room_key TEXT NOT NULL,
            account_key TEXT NOT NULL,
            PRIMARY KEY (room_key, account_key)
        )""",
        """CREATE TABLE bans (
            room_key TEXT NOT NULL,
            account_key TEXT NOT NULL,
            nick_key TEXT NOT NULL,
            address TEXT NOT NULL,
            expires BIGINT,
            reason TEXT NOT NULL,
            set_by TEXT NOT NULL,
            created BIGINT NOT NULL,
            PRIMARY KEY (room_key, account_key, nick_key)
        )""",
        """CREATE TABLE room_settings (
            room_key TEXT PRIMARY KEY,
            invite_only BOOLEAN NOT NULL,
            topic_lock BOOLEAN NOT NULL,
            moderated BOOLEAN NOT NULL
        )""",
        """CREATE TABLE device_keys (
            account_key TEXT NOT NULL,
            device TEXT NOT NULL,
            bundle TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            added BIGINT NOT NULL,
            PRIMARY KEY (account_key, device)
        )""",
        """CREATE TABLE id_blocks (
            one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
            top BIGINT NOT NULL
        )""",
        "INSERT INTO id_blocks (top) VALUES (0)",
    ),
    (
        # Messages are numbered as they are committed (see the module's docstring).
        "ALTER TABLE id_blocks ADD COLUMN last_message BIGINT NOT NULL DEFAULT 0",
        "UPDATE id_blocks SET last_message"
        " = greatest((SELECT max(id) FROM messages), (SELECT max(id) FROM private), 0)",
    ),
)
"""Forward migrations: C{MIGRATIONS[n]} takes a database from version C{n}
to C{n + 1}. Append only; never edit a step that has shipped."""

VERSION = len(MIGRATIONS)
"""The schema version this code reads and writes (in the table C{schema_version})."""

_RESERVE = "UPDATE id_blocks SET top = greatest(top, %s) + %s RETURNING top"
_NUMBER = "SELECT top, last_message FROM id_blocks FOR UPDATE"
_NUMBERED = "UPDATE id_blocks SET top = %s, last_message = %s"


def number(transaction: Any, items: Sequence[Pending]) -> tuple[list[Pending], Numbered | None]:
    """
    Number the messages of a group being committed (in its transaction)
    that came with a provisional id (below 1, L{chat.ids.ProvisionalIds}):
    the next ids of the counter, in the group's order, each message's
    C{after} the id numbered just before it. (A message given with an id
    keeps it: copied data, tests.) The counter's row stays
    locked until the transaction ends, so groups committed by any daemon
    take their ids in commit order, and every id up to C{last_message} is
    committed once C{last_message} is.

    @return: the group with its messages numbered, and the L{Numbered}
        (C{None} for a group without messages).
    """
    count = sum(1 for item in items if isinstance(item, (Message, Private)) and item.id < 1)
    if not count:
        return list(items), None
    transaction.execute(_NUMBER)
    top, last = (int(value) for value in transaction.fetchone())
    numbered: list[Pending] = []
    pairs: list[tuple[Message | Private, Message | Private]] = []
    for item in items:
        if isinstance(item, (Message, Private)) and item.id < 1:
            top += 1
            stored = replace(item, id=top, after=last)
            last = top
            pairs.append((item, stored))
            numbered.append(stored)
        else:
            numbered.append(item)
    transaction.execute(_NUMBERED, (top, last))
    return numbered, Numbered(pairs)


def _upsert(table: str, keys: Sequence[str], values: Sequence[str]) -> str:
    update = ", ".join(f"{name} = EXCLUDED.{name}" for name in values)
    return f"INSERT INTO {table} {columns(*keys, *values)} ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {update}"


def _insert_or_ignore(table: str, names: Sequence[str]) -> str:
    return f"INSERT INTO {table} {columns(*names)} ON CONFLICT DO NOTHING"


POSTGRES = Dialect("%s", _upsert, _insert_or_ignore, no_limit=None)
"""The SQL of L{PostgresStore}: psycopg's C{%s} placeholders, C{INSERT ...
ON CONFLICT}, and C{LIMIT NULL} for no limit."""

class IdsExhausted(Exception):
    """
    L{PostgresStore.next_id} has no reserved id left: the next block has not
    come from the database yet (it is unreachable, or ids are allocated
    faster than one block per round trip). The message is one line.
    """


def migrate(transaction: Any) -> tuple[int, int]:
    """
    Bring the schema up to L{VERSION} in the current transaction (DDL is
    transactional in PostgreSQL: all steps or none), holding an advisory
    lock so that daemons starting together migrate once. Creates the table
    C{schema_version} (one row) on an empty database.

    @param transaction: a DB-API cursor in a transaction (adbapi's).
    @return: the versions before and after.
    @raise DatabaseError: the database is newer than this code (one line).
    """
    transaction.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    transaction.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    transaction.execute("SELECT version FROM schema_version")
    row = transaction.fetchone()
    if row is None:
        before = 0
        transaction.execute("INSERT INTO schema_version (version) VALUES (0)")
    else:
        before = int(row[0])
    if before > VERSION:
        raise DatabaseError(
            f"the PostgreSQL database has schema version {before}, newer than this chat"
            f" (version {VERSION}): upgrade chat"
        )
    for version in range(before, VERSION):
        for statement in MIGRATIONS[version]:
            transaction.execute(statement)
    transaction.execute("UPDATE schema_version SET version = %s", (VERSION,))
    return before, VERSION


@implementer(IIdAllocator)
class PostgresStore(PooledStore):
    """
    The PostgreSQL store: operations in order on one connection, writes
    grouped per reactor turn, ids from reserved blocks (see the module's
    docstring). Open it with L{open_postgres_store}. It is also the id
    allocator of a daemon of the cluster (pass it as C{ids} to
    L{chat.server.ChatServer}).

    What it shares with L{chat.sqlite_store.SQLiteStore} (group commit,
    reads, the lists kept in memory) is L{PooledStore}'s; here: the
    PostgreSQL L{Dialect} and the ids. L{account_names}, L{topics},
    L{moderation}, L{device_keys} and L{offers} are as known when the store
    was opened; changes made since by other daemons of the cluster are not
    seen there (L{read_moderation} reads afresh). Operations on a closed
    store fail with L{DatabaseError}.
    """

    dialect = POSTGRES
    numbers_messages = True

    def __init__(
        self, pool: Pool, clock: IReactorTime, contents: Contents, reserved: int, block: int = BLOCK,
        name: str = "PostgreSQL", last_message: int = 0,
    ) -> None:
        """
        @param contents: what the database held when the store was opened.
        @param reserved: the top of the first block of ids reserved for this
            store: it owns C{reserved - block + 1} to C{reserved}.
        @param block: ids reserved at a time, at least 1.
        @param name: the database, named in the log (no password).
        @param last_message: the id of the last message committed when the
            store was opened (every message up to it is committed).
        """
        if block < 1:
            raise ValueError(f"block must be at least 1, not {block}")
        super().__init__(pool, clock, contents, name)
        self.last_message = last_message
        """The id of the last message committed when the store was opened."""
        self._block = block
        self._blocks: deque[tuple[int, int]] = deque([(reserved - block + 1, reserved)])
        self._reserving = False

    # Ids

    @override
    def _write(self, transaction: Any, items: Sequence[Pending]) -> Numbered | None:
        """
        Number the group's messages (L{number}), then write it.
        """
        items, numbered = number(transaction, items)
        self.dialect.write(transaction, items)
        return numbered

    def reserve_id(self) -> Deferred[int]:
        """
        The next id of the counter messages are numbered from (one round
        trip, after the writes asked for before): for a file offer, which
        then sorts after every message committed before it.
        """
        return self._run(_reserve_one)

    def last_committed(self) -> Deferred[int]:
        """
        The id of the last message committed now, by any daemon.
        """
        return self._run(_last_message)

    def messages_between(self, after: int, before: int) -> Deferred[list[Message | Private]]:
        """
        The room and private messages committed with an id above C{after}
        and below C{before}, in id order, as stored (no C{notice},
        C{account} or C{after}; a private message still waiting for its
        recipient is C{offline}): what a daemon of a cluster missed
        (L{chat.cluster.order}).
        """
        return self._run(_between, after, before)

    @override
    def next_id(self) -> int:
        """
        The next id of this store's reserved blocks above L{last_id}; starts
        reserving the next block once fewer than half a block is left.

        @raise IdsExhausted: no reserved id is left (the reservation asked
            for has not arrived).
        """
        wanted = self._last_id + 1
        while self._blocks and self._blocks[0][1] < wanted:
            self._blocks.popleft()
        if not self._blocks:
            self._reserve()
            raise IdsExhausted(f"no message id reserved from {self.name} yet")
        id_ = max(wanted, self._blocks[0][0])
        self._last_id = id_
        self._reserve_if_low()
        return id_

    def reserved(self) -> int:
        """
        How many ids this store can still hand out without the database.
        """
        above = self._last_id + 1
        return sum(last - max(first, above) + 1 for first, last in self._blocks if last >= above)

    def _reserve_if_low(self) -> None:
        if self.reserved() < (self._block + 1) // 2:
            self._reserve()

    def _reserve(self) -> None:
        """
        Reserve the next block in the background, unless one is on its way.
        """
        if self._reserving or self._closed:
            return
        self._reserving = True
        reserving: Deferred[int] = self._pool.runInteraction(_reserve, self._last_id, self._block)
        reserving.addBoth(self._reserved)

    def _reserved(self, result: int | Failure) -> None:
        self._reserving = False
        if isinstance(result, Failure):
            self._log.error(
                "could not reserve message ids in {database}: {error}",
                database=self.name, error=one_line(result),
            )
            return
        self._blocks.append((result - self._block + 1, result))


def _reserve(transaction: Any, floor: int, block: int) -> int:
    """
    Reserve the next C{block} ids above every id reserved before and above
    C{floor}.

    @return: the top of the block: its ids are C{top - block + 1} to C{top}.
    """
    transaction.execute(_RESERVE, (floor, block))
    return int(transaction.fetchone()[0])


def _last_message(transaction: Any) -> int:
    transaction.execute("SELECT last_message FROM id_blocks")
    return int(transaction.fetchone()[0])


def _reserve_one(transaction: Any) -> int:
    transaction.execute("UPDATE id_blocks SET top = top + 1 RETURNING top")
    return int(transaction.fetchone()[0])


def _between(transaction: Any, after: int, before: int) -> list[Message | Private]:
    transaction.execute(
        "SELECT id, ts, room, sender, text, action FROM messages WHERE id > %s AND id < %s", (after, before)
    )
    found: list[Message | Private] = [
        Message(id_, from_ms(ts), room, sender, text, bool(action))
        for id_, ts, room, sender, text, action in transaction.fetchall()
    ]
    transaction.execute(
        "SELECT id, ts, sender, recipient, text, action, e2e, pending FROM private WHERE id > %s AND id < %s",
        (after, before),
    )
    found.extend(
        Private(id_, from_ms(ts), sender, recipient, text, bool(action), offline=bool(pending), e2e=e2e)
        for id_, ts, sender, recipient, text, action, e2e, pending in transaction.fetchall()
    )
    found.sort(key=lambda message: message.id)
    return found


def _highest_id(transaction: Any) -> int:
    transaction.execute(
        "SELECT greatest((SELECT max(id) FROM messages), (SELECT max(id) FROM private),"
        " (SELECT max(id) FROM offers), 0)"
    )
    return int(transaction.fetchone()[0])


def _opened(transaction: Any, block: int) -> tuple[Contents, int, int]:
    """
    Migrate, read what the store keeps in memory, and reserve the first
    block of ids above every id stored (one transaction).

    @return: what the database holds, the top of the block reserved, and
        the id of the last message committed.
    """
    migrate(transaction)
    contents = Contents.read(transaction, _highest_id(transaction))
    return contents, _reserve(transaction, contents.last_id, block), _last_message(transaction)


def describe_database(dsn: str) -> str:
    """
    The database of C{dsn} for the log and errors, without its password:
    C{"PostgreSQL database chat on db.example:5432"}; C{"PostgreSQL"} when
    C{dsn} cannot be parsed.
    """
    import psycopg.conninfo

    try:
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "PostgreSQL"
    where = f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}"
    return f"PostgreSQL database {parts.get('dbname', parts.get('user', '?'))} on {where}"


def open_postgres_store(
    dsn: str,
    clock: IReactorTime,
    reactor: Any = None,
    block: int = BLOCK,
    make_pool: Callable[[str], Pool] | None = None,
) -> Deferred[PostgresStore]:
    """
    Connect to the PostgreSQL database of C{dsn}, create its schema when it
    is empty (or migrate it), and return a store over it, its first block of
    ids reserved. Call it at start-up, before serving.

    @param dsn: a libpq connection string or URI
        (C{"host=db port=5432 dbname=chat user=chat"},
        C{"postgresql://chat@db/chat"}); a password in it is never logged.
    @param reactor: the reactor the database thread reports to; the global
        one when C{None}.
    @param block: ids reserved at a time (see the module's docstring).
    @param make_pool: called with C{dsn}, returns the L{Pool} the store runs
        on, instead of a L{PsycopgPool} (the daemon's).
    @return: fires with the store; fails with L{DatabaseError} (one line for
        the operator, the pool closed) when the database cannot be reached
        or used, or is newer than this code.
    """
    name = describe_database(dsn)
    pool: Pool
    if make_pool is None:
        pool = psycopg_pool = PsycopgPool(dsn, reactor)
        probed = psycopg_pool.probe()
        opening: Deferred[tuple[Contents, int, int]] = probed.addCallback(
            lambda _: pool.runInteraction(_opened, block)
        )
    else:
        pool = make_pool(dsn)
        opening = pool.runInteraction(_opened, block)

    def opened(found: tuple[Contents, int, int]) -> PostgresStore:
        contents, reserved, last_message = found
        return PostgresStore(pool, clock, contents, reserved, block, name, last_message)

    def failed(failure: Failure) -> Failure:
        pool.close()
        if failure.check(DatabaseError):
            return failure
        return Failure(DatabaseError(f"cannot use the {name}: {one_line(failure)}"))

    return opening.addCallbacks(opened, failed)


def open_postgres_store_now(dsn: str, clock: IReactorTime, reactor: Any = None, block: int = BLOCK) -> PostgresStore:
    """
    L{open_postgres_store} for start-up, before the reactor runs (C{twistd
    chat --postgres DSN}): the schema is created or migrated, the store's
    lists read and its first block of ids reserved over a connection of
    its own, blocking, so that a daemon that cannot use its database fails
    to start with one line instead of serving without it. The store then
    runs on a L{PsycopgPool}.

    @raise DatabaseError: the database cannot be reached or used (one line,
        no password), or its schema is newer than this code.
    """
    import psycopg

    name = describe_database(dsn)
    try:
        with psycopg.connect(dsn, connect_timeout=max(2, int(CONNECT_TIMEOUT))) as connection:
            with connection.cursor() as cursor:
                contents, reserved, last_message = _opened(cursor, block)
    except DatabaseError:
        raise
    except psycopg.Error as e:
        raise DatabaseError(f"cannot use the {name}: {' '.join(str(e).split())}") from None
    return PostgresStore(PsycopgPool(dsn, reactor), clock, contents, reserved, block, name, last_message)

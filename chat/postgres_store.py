# -*- test-case-name: tests.test_postgres_store -*-
"""
The PostgreSQL L{IStore} of a cluster (PROTOCOL.md section 13, C{--postgres
DSN}): the same store as L{chat.sqlite_store.SQLiteStore}, shared by every
daemon of the cluster, with message ids reserved in blocks from one counter
in the database; opened with L{open_postgres_store}.

B{Threads and ordering.} The store runs on a L{Pool}: in the daemon a
L{PsycopgPool}, one psycopg 3 connection (kept by C{psycopg_pool}, which
checks it before each use and replaces one the server dropped) used from
one thread of its own, so that operations run in the order they are asked
for (each read sees every write asked for before it), as in the SQLite
store, and the reactor never waits for the database. (adbapi's
C{ConnectionPool("psycopg", ...)} works too, but after a server restart it
logs tracebacks and fails an operation before it reconnects.)

B{Group commit.} Writes asked for in one reactor turn (messages, offers,
topics, moderation, device keys) are queued and written together in one
transaction, with C{executemany} per run of the same statement; while one
group is written the next gathers. The group shares one L{Deferred}, which
fires once PostgreSQL has committed it, or fails (logged once, in one line).
One commit per group, not per message, is what keeps the fan-out figure.

B{Ids.} L{next_id} is synchronous, and ids must be unique and increasing
across every daemon sharing the database. The table C{id_blocks} holds one
row, C{top}: the highest id ever reserved. A store reserves a block of
C{block} ids with C{UPDATE id_blocks SET top = greatest(top, FLOOR) + BLOCK
RETURNING top} (FLOOR: the highest id this store knows): the row lock makes
concurrent reservations (from any number of daemons) take disjoint,
consecutive ranges C{(top - block, top]}, each above every id reserved
before it and above every id the reserving store has seen. The first block
is reserved when the store opens; the next one is fetched ahead, in the
background, once fewer than half a block is left, so L{next_id} never waits
for the database. It guarantees:

  - every id any store on the database hands out is unique, across daemons
    and restarts (a restart abandons the rest of its block: ids have gaps);
  - the ids one store hands out increase, and each is above L{last_id}
    (every id given to L{add} or L{add_offer} included);
  - a block reserved later (in commit order) holds higher ids than every
    block reserved earlier.

It does not order ids across daemons by time: daemon A may hand out 1005
after daemon B has handed out 2001 (B reserved its block later). A smaller
C{block} narrows that window at the cost of a reservation (one commit)
every C{block / 2} ids. If the blocks run out before the next reservation
arrives (the database unreachable), L{next_id} raises L{IdsExhausted}.

Times are stored as integer milliseconds since the POSIX epoch (UTC); names
as spelled, with a lower-cased C{*_key} column for lookups that ignore case
(PROTOCOL.md section 3.3), as in L{chat.schema}.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from chat import schema
from chat.counts import COUNTS
from chat.events import DeviceKey, FileOffer, Message, Private
from chat.interfaces import IIdAllocator
from chat.schema import DatabaseError, from_ms, to_ms
from chat.sqlite_store import Pool
from chat.storage import (
    AccountExists,
    AccountRecord,
    BanRecord,
    IStore,
    ModerationRecord,
    RoomFlags,
)

__all__ = [
    "MIGRATIONS", "VERSION", "IdsExhausted", "PostgresStore", "PsycopgPool", "migrate", "open_postgres_store",
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
)
"""Forward migrations: C{MIGRATIONS[n]} takes a database from version C{n}
to C{n + 1}. Append only; never edit a step that has shipped."""

VERSION = len(MIGRATIONS)
"""The schema version this code reads and writes (in the table C{schema_version})."""

_INSERT_MESSAGE = (
    "INSERT INTO messages (id, ts, room, room_key, sender, text, action) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_PRIVATE = (
    "INSERT INTO private (id, ts, sender, sender_key, recipient, recipient_key, text, action, pending, e2e)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_OFFER = (
    "INSERT INTO offers (id, sender, target, name, size, sha256, expires) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
_DELIVERED = "UPDATE private SET pending = FALSE WHERE id = %s"
_REMOVE_OFFER = "DELETE FROM offers WHERE id = %s"
_SET_TOPIC = (
    "INSERT INTO topics (room_key, room, text, set_by) VALUES (%s, %s, %s, %s) ON CONFLICT (room_key)"
    " DO UPDATE SET room = EXCLUDED.room, text = EXCLUDED.text, set_by = EXCLUDED.set_by"
)
_CLEAR_TOPIC = "DELETE FROM topics WHERE room_key = %s"
_SET_OPERATOR = "INSERT INTO operators (room_key, account_key) VALUES (%s, %s) ON CONFLICT DO NOTHING"
_CLEAR_OPERATOR = "DELETE FROM operators WHERE room_key = %s AND account_key = %s"
_ADD_BAN = (
    "INSERT INTO bans (room_key, account_key, nick_key, address, expires, reason, set_by, created)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (room_key, account_key, nick_key)"
    " DO UPDATE SET address = EXCLUDED.address, expires = EXCLUDED.expires, reason = EXCLUDED.reason,"
    " set_by = EXCLUDED.set_by, created = EXCLUDED.created"
)
_REMOVE_BAN = "DELETE FROM bans WHERE room_key = %s AND account_key = %s AND nick_key = %s"
_SET_ROOM_FLAGS = (
    "INSERT INTO room_settings (room_key, invite_only, topic_lock, moderated) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (room_key) DO UPDATE SET invite_only = EXCLUDED.invite_only,"
    " topic_lock = EXCLUDED.topic_lock, moderated = EXCLUDED.moderated"
)
_ADD_DEVICE_KEY = (
    "INSERT INTO device_keys (account_key, device, bundle, fingerprint, added) VALUES (%s, %s, %s, %s, %s)"
    " ON CONFLICT (account_key, device) DO UPDATE SET bundle = EXCLUDED.bundle,"
    " fingerprint = EXCLUDED.fingerprint, added = EXCLUDED.added"
)
_REMOVE_DEVICE_KEY = "DELETE FROM device_keys WHERE account_key = %s AND device = %s"
_RESERVE = "UPDATE id_blocks SET top = greatest(top, %s) + %s RETURNING top"
_NO_ID = 2**63 - 1
"""Above every message id: C{id < _NO_ID} holds for all."""
_NO_TIME = -(2**63)
"""Below every time in milliseconds: C{ts >= _NO_TIME} holds for all."""
_PRUNE_BATCH = 5000
"""Rows deleted per transaction by L{PostgresStore.prune}, so writes interleave."""

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


class IdsExhausted(Exception):
    """
    L{PostgresStore.next_id} has no reserved id left: the next block has not
    come from the database yet (it is unreachable, or ids are allocated
    faster than one block per round trip). The message is one line.
    """


Pending = Message | Private | FileOffer | tuple[str, tuple[Any, ...]]
"""What waits for the next group commit: messages, offers, or other statements."""


def _one_line(failure: Failure) -> str:
    """
    A failure's message on one line (psycopg's span several: C{DETAIL:}, C{HINT:}).
    """
    return " ".join(failure.getErrorMessage().split())


def _statement(item: Pending) -> tuple[str, tuple[Any, ...]]:
    if isinstance(item, Message):
        return _INSERT_MESSAGE, (
            item.id, to_ms(item.ts), item.room, item.room.lower(), item.sender, item.text, item.action,
        )
    if isinstance(item, Private):
        return _INSERT_PRIVATE, (
            item.id, to_ms(item.ts), item.sender, item.sender.lower(), item.to, item.to.lower(),
            item.text, item.action, item.offline, item.e2e,
        )
    if isinstance(item, FileOffer):
        return _INSERT_OFFER, (
            item.id, item.sender, item.to, item.name, item.size, item.sha256, to_ms(item.expires),
        )
    return item


def _count(items: Sequence[Pending]) -> str:
    """
    What a group holds, for the log: C{"12 messages"}, C{"1 message and 2 other changes"}.
    """
    messages = sum(isinstance(item, (Message, Private, FileOffer)) for item in items)
    other = len(items) - messages
    parts = [
        f"{count} {noun}{'' if count == 1 else 's'}"
        for count, noun in ((messages, "message or offer"), (other, "other change"))
        if count
    ]
    return " and ".join(parts)


def _write(transaction: Any, items: Sequence[Pending]) -> None:
    """
    Run in the database thread: one transaction for a whole group, the
    statements in the order asked, rows built here rather than on the
    reactor's thread.
    """
    for sql, group in itertools.groupby(map(_statement, items), key=lambda s: s[0]):
        transaction.executemany(sql, [params for _, params in group])


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


@implementer(IStore, IIdAllocator)
class PostgresStore:
    """
    The PostgreSQL store: operations in order on one connection, writes
    grouped per reactor turn, ids from reserved blocks (see the module's
    docstring). Open it with L{open_postgres_store}. It is also the id
    allocator of a daemon of the cluster (pass it as C{ids} to
    L{chat.server.ChatServer}).

    Like L{chat.sqlite_store.SQLiteStore}, L{account_names}, L{topics},
    L{moderation}, L{device_keys} and L{offers} are as known when the store
    was opened; changes made since by other daemons of the cluster are not
    seen there (L{read_moderation} reads afresh).
    """

    _log = Logger()

    def __init__(
        self,
        pool: Pool,
        clock: IReactorTime,
        last_id: int,
        account_names: dict[str, str],
        reserved: int,
        block: int = BLOCK,
        offers: Sequence[FileOffer] = (),
        topics: dict[str, tuple[str, str, str]] | None = None,
        moderation: ModerationRecord | None = None,
        device_keys: dict[str, tuple[DeviceKey, ...]] | None = None,
        name: str = "PostgreSQL",
    ) -> None:
        """
        @param last_id: the highest id stored.
        @param reserved: the top of the first block of ids reserved for this
            store: it owns C{reserved - block + 1} to C{reserved}.
        @param block: ids reserved at a time, at least 1.
        @param name: the database, named in the log (no password).
        """
        if block < 1:
            raise ValueError(f"block must be at least 1, not {block}")
        self.name = name
        self._pool = pool
        self._clock = clock
        self._last_id = last_id
        self._block = block
        self._blocks: deque[tuple[int, int]] = deque([(reserved - block + 1, reserved)])
        self._reserving = False
        self._account_names = account_names
        self._offers = list(offers)
        self._topics = dict(topics or {})
        self._moderation = moderation or ModerationRecord()
        self._device_keys = dict(device_keys or {})
        self._pending: list[Pending] = []
        self._group: Deferred[None] | None = None
        self._writing = 0
        self._soon: IDelayedCall | None = None
        self._closed = False

    # Ids

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

    def last_id(self) -> int:
        return self._last_id

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
                database=self.name, error=_one_line(result),
            )
            return
        self._blocks.append((result - self._block + 1, result))

    # Writes: grouped

    def _queue(self, *items: Pending) -> Deferred[None]:
        """
        Add messages or statements to the next group.

        @return: the group's L{Deferred}, shared by everything in it: fires
            once the group is committed.
        """
        if self._closed:
            return fail(DatabaseError("the store is closed"))
        self._pending.extend(items)
        group = self._group
        if group is None:
            group = self._group = Deferred()
            if not self._writing and self._soon is None:
                # Let the rest of this reactor turn join the group.
                self._soon = self._clock.callLater(0, self._flush)
        return group

    def _flush(self) -> None:
        """
        Start writing the pending group, if any.
        """
        if self._soon is not None:
            if self._soon.active():
                self._soon.cancel()
            self._soon = None
        if not self._pending:
            return
        items, self._pending = self._pending, []
        group, self._group = self._group, None
        assert group is not None
        self._writing += 1
        done = self._pool.runInteraction(_write, items)
        done.addBoth(COUNTS.timed, self._clock, self._clock.seconds())
        done.addBoth(self._written, group, items)

    def _written(self, result: object, group: Deferred[None], items: Sequence[Pending]) -> None:
        self._writing -= 1
        if isinstance(result, Failure):
            self._log.error(
                "could not store {what} in {database}: {error}; the senders got busy",
                what=_count(items), database=self.name, error=_one_line(result), count=len(items),
            )
            group.errback(result)
            group.addErrback(lambda _: None)  # reported above, once
        else:
            group.callback(None)
        if self._pending and not self._writing:
            self._flush()

    def add(self, message: Message | Private) -> Deferred[None]:
        self._last_id = max(self._last_id, message.id)
        return self._queue(message)

    def delivered(self, ids: Sequence[int]) -> Deferred[None]:
        if not ids:
            return succeed(None)
        return self._queue(*((_DELIVERED, (message_id,)) for message_id in ids))

    def add_offer(self, offer: FileOffer) -> Deferred[None]:
        self._last_id = max(self._last_id, offer.id)
        return self._queue(offer)

    def remove_offers(self, ids: Sequence[int]) -> Deferred[None]:
        if not ids:
            return succeed(None)
        return self._queue(*((_REMOVE_OFFER, (offer_id,)) for offer_id in ids))

    def set_topic(self, room: str, text: str, by: str) -> Deferred[None]:
        if text:
            return self._queue((_SET_TOPIC, (room.lower(), room, text, by)))
        return self._queue((_CLEAR_TOPIC, (room.lower(),)))

    def set_operator(self, room: str, account: str, operator: bool) -> Deferred[None]:
        return self._queue((_SET_OPERATOR if operator else _CLEAR_OPERATOR, (room.lower(), account.lower())))

    def add_ban(self, ban: BanRecord) -> Deferred[None]:
        expires = None if ban.expires is None else int(ban.expires * 1000)
        return self._queue((_ADD_BAN, (
            ban.room, ban.account, ban.nick, ban.address, expires, ban.reason, ban.by, int(ban.created * 1000),
        )))

    def remove_ban(self, room: str, account: str, nick: str) -> Deferred[None]:
        return self._queue((_REMOVE_BAN, (room, account, nick)))

    def set_room_flags(self, room: str, flags: RoomFlags) -> Deferred[None]:
        return self._queue((_SET_ROOM_FLAGS, (room.lower(), flags.invite_only, flags.topic_lock, flags.moderated)))

    def add_device_key(self, account: str, key: DeviceKey) -> Deferred[None]:
        return self._queue((_ADD_DEVICE_KEY, (account.lower(), key.device, key.key, key.fingerprint, to_ms(key.added))))

    def remove_device_key(self, account: str, device: str) -> Deferred[None]:
        return self._queue((_REMOVE_DEVICE_KEY, (account.lower(), device)))

    # Everything else: in order, after the pending group

    def _run(self, interaction: Callable[..., Any], *args: object) -> Deferred[Any]:
        if self._closed:
            return fail(DatabaseError("the store is closed"))
        self._flush()
        done: Deferred[Any] = self._pool.runInteraction(interaction, *args)
        return done

    def recent(self, room: str, count: int, before: int | None = None) -> Deferred[Sequence[Message]]:
        if count <= 0:
            return succeed(())
        return self._run(_recent, room.lower(), count, _NO_ID if before is None else before)

    def conversation(
        self, a: str, b: str, count: int, before: int | None = None, since: datetime | None = None
    ) -> Deferred[Sequence[Private]]:
        if count <= 0:
            return succeed(())
        return self._run(
            _conversation, a.lower(), b.lower(), count, _NO_ID if before is None else before,
            _NO_TIME if since is None else to_ms(since),
        )

    def messages(
        self, room: str, since: datetime | None = None, after: int = 0, limit: int | None = None
    ) -> Deferred[Sequence[Message]]:
        return self._run(_messages, room.lower(), _NO_TIME if since is None else to_ms(since), after, limit)

    def waiting(self, nick: str) -> Deferred[Sequence[Private]]:
        return self._run(_waiting, nick.lower())

    def account(self, name: str) -> Deferred[AccountRecord | None]:
        return self._run(_account, name.lower())

    def create_account(self, name: str, password: str, created: float) -> Deferred[None]:
        return self._run(_create_account, name, password, created)

    def set_password(self, name: str, password: str) -> Deferred[bool]:
        return self._run(_set_password, name.lower(), password)

    def accounts(self) -> Deferred[list[AccountRecord]]:
        return self._run(_accounts)

    def delete_account(self, name: str) -> Deferred[tuple[AccountRecord, int] | None]:
        return self._run(_delete_account, name.lower())

    def account_names(self) -> dict[str, str]:
        return dict(self._account_names)

    def topics(self) -> dict[str, tuple[str, str, str]]:
        return dict(self._topics)

    def offers(self) -> list[FileOffer]:
        return list(self._offers)

    def moderation(self) -> ModerationRecord:
        return self._moderation

    def device_keys(self) -> dict[str, tuple[DeviceKey, ...]]:
        return dict(self._device_keys)

    def read_moderation(self) -> Deferred[ModerationRecord]:
        return self._run(schema.moderation)

    def set_admin(self, name: str, admin: bool) -> Deferred[None]:
        # Not grouped, as in the SQLite store: chat-admin may run it on a
        # synchronous pool, where no clock turns to write a group.
        return self._run(_set_admin, name.lower(), admin)

    def prune(self, before: float) -> Deferred[int]:
        cutoff = int(before * 1000)
        total = 0

        def step(deleted: int) -> Deferred[int] | int:
            nonlocal total
            total += deleted
            if deleted < _PRUNE_BATCH or self._closed:
                return total
            return self._run(_prune, cutoff).addCallback(step)

        return self._run(_prune, cutoff).addCallback(step)

    def close(self) -> Deferred[None]:
        """
        Write the pending group, wait for every operation asked for (a
        reservation of ids included), then close the pool. Later operations
        fail with L{DatabaseError}.
        """
        if self._closed:
            return succeed(None)
        # An empty interaction queued last fires after every earlier one.
        done = self._run(lambda transaction: None)
        self._closed = True

        def close_pool(result: object) -> object:
            self._pool.close()
            return result

        return done.addBoth(close_pool)


def _reserve(transaction: Any, floor: int, block: int) -> int:
    """
    Reserve the next C{block} ids above every id reserved before and above
    C{floor}.

    @return: the top of the block: its ids are C{top - block + 1} to C{top}.
    """
    transaction.execute(_RESERVE, (floor, block))
    return int(transaction.fetchone()[0])


def _message(row: tuple[Any, ...]) -> Message:
    id_, ts, room, sender, text, action = row
    return Message(id_, from_ms(ts), room, sender, text, bool(action))


def _recent(transaction: Any, room_key: str, count: int, before: int) -> list[Message]:
    transaction.execute(
        "SELECT id, ts, room, sender, text, action FROM messages WHERE room_key = %s AND id < %s"
        " ORDER BY id DESC LIMIT %s",
        (room_key, before, count),
    )
    return [_message(row) for row in reversed(transaction.fetchall())]


_ONE_WAY = (
    "(SELECT id, ts, sender, recipient, text, action, e2e FROM private"
    " WHERE sender_key = %s AND recipient_key = %s AND id < %s AND ts >= %s ORDER BY id DESC LIMIT %s)"
)


def _conversation(transaction: Any, a: str, b: str, count: int, before: int, since_ms: int) -> list[Private]:
    """
    Each direction of the pair through the index C{private_by_pair}, at most
    C{count} rows each, then the last C{count} of both (C{UNION} drops the
    repeat when C{a} and C{b} are the same nick).
    """
    transaction.execute(
        f"{_ONE_WAY} UNION {_ONE_WAY} ORDER BY id DESC LIMIT %s",
        (a, b, before, since_ms, count, b, a, before, since_ms, count, count),
    )
    return [
        Private(id_, from_ms(ts), sender, recipient, text, bool(action), e2e=e2e)
        for id_, ts, sender, recipient, text, action, e2e in reversed(transaction.fetchall())
    ]


def _messages(transaction: Any, room_key: str, since_ms: int, after: int, limit: int | None) -> list[Message]:
    transaction.execute(
        "SELECT id, ts, room, sender, text, action FROM messages"
        " WHERE room_key = %s AND id > %s AND ts >= %s ORDER BY id LIMIT %s",  # LIMIT NULL: no limit
        (room_key, after, since_ms, limit),
    )
    return [_message(row) for row in transaction.fetchall()]


def _waiting(transaction: Any, recipient_key: str) -> list[Private]:
    transaction.execute(
        "SELECT id, ts, sender, recipient, text, action, e2e FROM private"
        " WHERE recipient_key = %s AND pending ORDER BY id",
        (recipient_key,),
    )
    return [
        Private(id_, from_ms(ts), sender, recipient, text, bool(action), offline=True, e2e=e2e)
        for id_, ts, sender, recipient, text, action, e2e in transaction.fetchall()
    ]


def _account(transaction: Any, name_key: str) -> AccountRecord | None:
    transaction.execute("SELECT name, password, created FROM accounts WHERE name_key = %s", (name_key,))
    row = transaction.fetchone()
    return None if row is None else AccountRecord(row[0], row[1], row[2] / 1000)


def _accounts(transaction: Any) -> list[AccountRecord]:
    transaction.execute("SELECT name, password, created FROM accounts ORDER BY name_key")
    return [AccountRecord(name, password, created / 1000) for name, password, created in transaction.fetchall()]


def _delete_account(transaction: Any, name_key: str) -> tuple[AccountRecord, int] | None:
    transaction.execute("DELETE FROM accounts WHERE name_key = %s RETURNING name, password, created", (name_key,))
    row = transaction.fetchone()
    if row is None:
        return None
    transaction.execute("DELETE FROM private WHERE pending AND recipient_key = %s", (name_key,))
    count = transaction.rowcount
    transaction.execute("DELETE FROM device_keys WHERE account_key = %s", (name_key,))
    return AccountRecord(row[0], row[1], row[2] / 1000), count


def _create_account(transaction: Any, name: str, password: str, created: float) -> None:
    """
    Insert the account, or raise L{AccountExists} (rolled back: nothing
    changed); then drop what an earlier account of that name left (waiting
    messages, device keys: deleted with C{chat-admin} while daemons ran).
    """
    transaction.execute(
        "INSERT INTO accounts (name_key, name, password, created) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (name_key) DO NOTHING",
        (name.lower(), name, password, int(created * 1000)),
    )
    if not transaction.rowcount:
        raise AccountExists(name)
    transaction.execute("DELETE FROM private WHERE pending AND recipient_key = %s", (name.lower(),))
    transaction.execute("DELETE FROM device_keys WHERE account_key = %s", (name.lower(),))


def _set_password(transaction: Any, name_key: str, password: str) -> bool:
    transaction.execute("UPDATE accounts SET password = %s WHERE name_key = %s", (password, name_key))
    return bool(transaction.rowcount)


def _set_admin(transaction: Any, name_key: str, admin: bool) -> None:
    if admin:
        transaction.execute("INSERT INTO admins (name_key) VALUES (%s) ON CONFLICT DO NOTHING", (name_key,))
    else:
        transaction.execute("DELETE FROM admins WHERE name_key = %s", (name_key,))


def _prune(transaction: Any, cutoff_ms: int) -> int:
    deleted = 0
    for table in ("messages", "private"):
        transaction.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE ts < %s LIMIT %s)",
            (cutoff_ms, _PRUNE_BATCH),
        )
        deleted += transaction.rowcount
    return deleted


def _highest_id(transaction: Any) -> int:
    transaction.execute(
        "SELECT greatest((SELECT max(id) FROM messages), (SELECT max(id) FROM private),"
        " (SELECT max(id) FROM offers), 0)"
    )
    return int(transaction.fetchone()[0])


def _opened(transaction: Any, block: int) -> dict[str, Any]:
    """
    Migrate, read what the store keeps in memory, and reserve the first
    block of ids above every id stored (one transaction).
    """
    migrate(transaction)
    last = _highest_id(transaction)
    cursor = cast(Any, transaction)
    found = {
        "last_id": last,
        "account_names": schema.account_names(cursor),
        "offers": schema.offers(cursor),
        "topics": schema.topics(cursor),
        "moderation": schema.moderation(cursor),
        "device_keys": schema.device_keys(cursor),
    }
    found["reserved"] = _reserve(transaction, last, block)
    return found


def _describe(dsn: str) -> str:
    """
    The database of C{dsn} for the log and errors, without its password:
    C{"PostgreSQL database chat on db.example:5432"}.
    """
    import psycopg.conninfo

    try:
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
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
    name = _describe(dsn)
    pool: Pool
    if make_pool is None:
        pool = psycopg_pool = PsycopgPool(dsn, reactor)
        probed = psycopg_pool.probe()
        opening: Deferred[dict[str, Any]] = probed.addCallback(
            lambda _: pool.runInteraction(_opened, block)
        )
    else:
        pool = make_pool(dsn)
        opening = pool.runInteraction(_opened, block)

    def opened(found: dict[str, Any]) -> PostgresStore:
        return PostgresStore(
            pool, clock, found["last_id"], found["account_names"], found["reserved"], block,
            found["offers"], found["topics"], found["moderation"], found["device_keys"], name,
        )

    def failed(failure: Failure) -> Failure:
        pool.close()
        if failure.check(DatabaseError):
            return failure
        return Failure(DatabaseError(f"cannot use the {name}: {_one_line(failure)}"))

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

    name = _describe(dsn)
    try:
        with psycopg.connect(dsn, connect_timeout=max(2, int(CONNECT_TIMEOUT))) as connection:
            with connection.cursor() as cursor:
                found = _opened(cursor, block)
    except DatabaseError:
        raise
    except psycopg.Error as e:
        raise DatabaseError(f"cannot use the {name}: {' '.join(str(e).split())}") from None
    return PostgresStore(
        PsycopgPool(dsn, reactor), clock, found["last_id"], found["account_names"], found["reserved"], block,
        found["offers"], found["topics"], found["moderation"], found["device_keys"], name,
    )

# -*- test-case-name: tests.test_storage -*-
"""
The SQLite L{IStore}, the daemon's default: the database under
C{--data-dir} (its schema and migrations are L{chat.schema}), written from
one database thread with group commit, and opened with L{open_store}.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chat import schema
from chat.counts import COUNTS
from chat.events import DeviceKey, FileOffer, Message, Private
from chat.storage import (
    AccountExists,
    AccountRecord,
    BanRecord,
    IStore,
    ModerationRecord,
    RoomFlags,
)

_INSERT_MESSAGE = "INSERT INTO messages (id, ts, room, room_key, sender, text, action) VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_PRIVATE = (
    "INSERT INTO private (id, ts, sender, sender_key, recipient, recipient_key, text, action, pending, e2e)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_OFFER = (
    "INSERT INTO offers (id, sender, target, name, size, sha256, expires) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_DELIVERED = "UPDATE private SET pending = 0 WHERE id = ?"
_REMOVE_OFFER = "DELETE FROM offers WHERE id = ?"
_SET_TOPIC = "INSERT OR REPLACE INTO topics (room_key, room, text, set_by) VALUES (?, ?, ?, ?)"
_CLEAR_TOPIC = "DELETE FROM topics WHERE room_key = ?"
_SET_OPERATOR = "INSERT OR IGNORE INTO operators (room_key, account_key) VALUES (?, ?)"
_CLEAR_OPERATOR = "DELETE FROM operators WHERE room_key = ? AND account_key = ?"
_ADD_BAN = (
    "INSERT OR REPLACE INTO bans (room_key, account_key, nick_key, address, expires, reason, set_by, created)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_REMOVE_BAN = "DELETE FROM bans WHERE room_key = ? AND account_key = ? AND nick_key = ?"
_SET_ROOM_FLAGS = (
    "INSERT OR REPLACE INTO room_settings (room_key, invite_only, topic_lock, moderated) VALUES (?, ?, ?, ?)"
)
_ADD_DEVICE_KEY = (
    "INSERT OR REPLACE INTO device_keys (account_key, device, bundle, fingerprint, added) VALUES (?, ?, ?, ?, ?)"
)
_REMOVE_DEVICE_KEY = "DELETE FROM device_keys WHERE account_key = ? AND device = ?"
_NO_ID = 2**63 - 1
"""Above every message id: C{id < _NO_ID} holds for all."""
_NO_TIME = -(2**63)
"""Below every time in milliseconds: C{ts >= _NO_TIME} holds for all."""
_PRUNE_BATCH = 5000
"""Rows deleted per transaction by L{SQLiteStore.prune}, so writes interleave."""


Pending = Message | Private | FileOffer | tuple[str, tuple[Any, ...]]
"""What waits for the next group commit: messages, offers, or other statements."""


def _statement(item: Pending) -> tuple[str, tuple[Any, ...]]:
    if isinstance(item, Message):
        return _INSERT_MESSAGE, (
            item.id, schema.to_ms(item.ts), item.room, item.room.lower(), item.sender, item.text, item.action,
        )
    if isinstance(item, Private):
        return _INSERT_PRIVATE, (
            item.id, schema.to_ms(item.ts), item.sender, item.sender.lower(), item.to, item.to.lower(),
            item.text, item.action, item.offline, item.e2e,
        )
    if isinstance(item, FileOffer):
        return _INSERT_OFFER, (
            item.id, item.sender, item.to, item.name, item.size, item.sha256, schema.to_ms(item.expires),
        )
    return item


def _describe(items: Sequence[Pending]) -> str:
    """
    What a group holds, for the log: C{"12 messages"}, C{"1 message, 1 file
    offer and 2 other changes"}.
    """
    messages = sum(isinstance(item, (Message, Private)) for item in items)
    offers = sum(isinstance(item, FileOffer) for item in items)
    other = len(items) - messages - offers
    parts = [
        f"{count} {noun}{'' if count == 1 else 's'}"
        for count, noun in ((messages, "message"), (offers, "file offer"), (other, "other change"))
        if count
    ]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _write(transaction: Any, items: Sequence[Pending]) -> None:
    """
    Run in the database thread: one transaction for a whole group, rows
    built here rather than on the reactor's thread.
    """
    statements = map(_statement, items)
    for sql, group in itertools.groupby(statements, key=lambda s: s[0]):
        transaction.executemany(sql, [params for _, params in group])


class Pool(Protocol):
    """
    What L{SQLiteStore} needs of adbapi's C{ConnectionPool}, which is the
    one it runs on in the daemon; C{chat-admin} has a synchronous one.
    """

    def runInteraction(self, interaction: Callable[..., Any], *args: Any) -> Deferred[Any]:  # noqa: N802
        """
        Call C{interaction(cursor, *args)} in a transaction of its own, after
        every interaction asked for earlier; commit it, or roll it back if
        the call raises.

        @return: fires with what C{interaction} returns, or fails with what
            it raises.
        """

    def close(self) -> None:
        """
        Close the connection (adbapi's: and stop its thread).
        """


@implementer(IStore)
class SQLiteStore:
    """
    The SQLite store: one database thread (an adbapi pool of one connection,
    so operations run in the order they are asked for), with group commit:
    messages added while a write is in progress are written together in the
    next transaction, one disk flush for the whole group. The group shares
    one L{Deferred}; a failed write is logged here, in one line naming the
    database and the error (no traceback: a full or failing disk fails
    every group alike), and fails it: the senders are told C{busy}.

    Open it with L{open_store}.
    """

    _log = Logger()

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
        @param path: the database's file, named in the log.
        """
        self.path = path
        self._pool = pool
        self._clock = clock
        self._last_id = last_id
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

    def next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def last_id(self) -> int:
        return self._last_id

    # Writes: grouped

    def _queue(self, *items: Pending) -> Deferred[None]:
        """
        Add messages or statements to the next group.

        @return: the group's L{Deferred}, shared by everything in it: fires
            once the group is committed.
        """
        if self._closed:
            return fail(sqlite3.ProgrammingError("the store is closed"))
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
                "could not store {what} in {path}: {error}; the senders got busy",
                what=_describe(items), path=self.path, error=result.getErrorMessage(), count=len(items),
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
        return self._queue((_ADD_DEVICE_KEY, (
            account.lower(), key.device, key.key, key.fingerprint, schema.to_ms(key.added),
        )))

    def remove_device_key(self, account: str, device: str) -> Deferred[None]:
        return self._queue((_REMOVE_DEVICE_KEY, (account.lower(), device)))

    # Everything else: in order, after the pending group

    def _run(self, interaction: Any, *args: object) -> Deferred[Any]:
        if self._closed:
            return fail(sqlite3.ProgrammingError("the store is closed"))
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
            _NO_TIME if since is None else schema.to_ms(since),
        )

    def messages(
        self, room: str, since: datetime | None = None, after: int = 0, limit: int | None = None
    ) -> Deferred[Sequence[Message]]:
        return self._run(
            _messages, room.lower(), None if since is None else schema.to_ms(since), after,
            -1 if limit is None else limit,  # SQLite's LIMIT -1: no limit
        )

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
        # Not grouped: chat-admin runs it on a synchronous pool, where no
        # clock turns to write a group.
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
        Write the pending group, wait for every write, then close the pool.
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


def _message(row: tuple[Any, ...]) -> Message:
    id_, ts, room, sender, text, action = row
    return Message(id_, schema.from_ms(ts), room, sender, text, bool(action))


def _recent(transaction: Any, room_key: str, count: int, before: int) -> list[Message]:
    transaction.execute(
        "SELECT id, ts, room, sender, text, action FROM messages WHERE room_key = ? AND id < ?"
        " ORDER BY id DESC LIMIT ?",
        (room_key, before, count),
    )
    return [_message(row) for row in reversed(transaction.fetchall())]


_ONE_WAY = (
    "SELECT * FROM (SELECT id, ts, sender, recipient, text, action, e2e FROM private"
    " WHERE sender_key = ? AND recipient_key = ? AND id < ? AND ts >= ? ORDER BY id DESC LIMIT ?)"
)


def _conversation(transaction: Any, a: str, b: str, count: int, before: int, since_ms: int) -> list[Private]:
    """
    Each direction of the pair through the index C{private_by_pair}, at most
    C{count} rows each, then the last C{count} of both (C{UNION} drops the
    repeat when C{a} and C{b} are the same nick).
    """
    transaction.execute(
        f"{_ONE_WAY} UNION {_ONE_WAY} ORDER BY id DESC LIMIT ?",
        (a, b, before, since_ms, count, b, a, before, since_ms, count, count),
    )
    return [
        Private(id_, schema.from_ms(ts), sender, recipient, text, bool(action), e2e=e2e)
        for id_, ts, sender, recipient, text, action, e2e in reversed(transaction.fetchall())
    ]


def _messages(transaction: Any, room_key: str, since_ms: int | None, after: int, limit: int) -> list[Message]:
    transaction.execute(
        "SELECT id, ts, room, sender, text, action FROM messages"
        " WHERE room_key = ? AND id > ? AND ts >= ? ORDER BY id LIMIT ?",
        (room_key, after, -(2**63) if since_ms is None else since_ms, limit),
    )
    return [_message(row) for row in transaction.fetchall()]


def _waiting(transaction: Any, recipient_key: str) -> list[Private]:
    transaction.execute(
        "SELECT id, ts, sender, recipient, text, action, e2e FROM private"
        " WHERE recipient_key = ? AND pending ORDER BY id",
        (recipient_key,),
    )
    return [
        Private(id_, schema.from_ms(ts), sender, recipient, text, bool(action), offline=True, e2e=e2e)
        for id_, ts, sender, recipient, text, action, e2e in transaction.fetchall()
    ]


def _account(transaction: Any, name_key: str) -> AccountRecord | None:
    transaction.execute("SELECT name, password, created FROM accounts WHERE name_key = ?", (name_key,))
    row = transaction.fetchone()
    return None if row is None else AccountRecord(row[0], row[1], row[2] / 1000)


def _accounts(transaction: Any) -> list[AccountRecord]:
    transaction.execute("SELECT name, password, created FROM accounts ORDER BY name_key")
    return [AccountRecord(name, password, created / 1000) for name, password, created in transaction.fetchall()]


def _delete_account(transaction: Any, name_key: str) -> tuple[AccountRecord, int] | None:
    record = _account(transaction, name_key)
    if record is None:
        return None
    transaction.execute("DELETE FROM accounts WHERE name_key = ?", (name_key,))
    if not transaction.rowcount:
        return None  # deleted by another process since the SELECT
    transaction.execute("DELETE FROM private WHERE pending AND recipient_key = ?", (name_key,))
    count = transaction.rowcount
    transaction.execute("DELETE FROM device_keys WHERE account_key = ?", (name_key,))
    return record, count


def _create_account(transaction: Any, name: str, password: str, created: float) -> None:
    # Messages left waiting for an earlier account of that name (deleted
    # with chat-admin while the daemon ran) are not the new owner's.
    transaction.execute("DELETE FROM private WHERE pending AND recipient_key = ?", (name.lower(),))
    transaction.execute("DELETE FROM device_keys WHERE account_key = ?", (name.lower(),))
    try:
        transaction.execute(
            "INSERT INTO accounts (name_key, name, password, created) VALUES (?, ?, ?, ?)",
            (name.lower(), name, password, int(created * 1000)),
        )
    except sqlite3.IntegrityError:
        raise AccountExists(name) from None


def _set_password(transaction: Any, name_key: str, password: str) -> bool:
    transaction.execute("UPDATE accounts SET password = ? WHERE name_key = ?", (password, name_key))
    return bool(transaction.rowcount)


def _set_admin(transaction: Any, name_key: str, admin: bool) -> None:
    if admin:
        transaction.execute("INSERT OR IGNORE INTO admins (name_key) VALUES (?)", (name_key,))
    else:
        transaction.execute("DELETE FROM admins WHERE name_key = ?", (name_key,))


def _prune(transaction: Any, cutoff_ms: int) -> int:
    deleted = 0
    for table in ("messages", "private"):
        transaction.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE ts < ? LIMIT ?)",
            (cutoff_ms, _PRUNE_BATCH),
        )
        deleted += transaction.rowcount
    return deleted


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
        last = schema.last_id(connection)
        names = schema.account_names(connection)
        offers = schema.offers(connection)
        topics = schema.topics(connection)
        moderation = schema.moderation(connection)
        device_keys = schema.device_keys(connection)
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
    return SQLiteStore(pool, clock, last, names, offers, topics, path, moderation, device_keys)

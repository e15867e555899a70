# -*- test-case-name: tests.test_storage,tests.test_postgres_store -*-
"""
What the SQL stores share: L{PooledStore}, an L{IStore} over a L{Pool} of
one connection with group commit, whose SQL comes from a L{chat.dialect.Dialect}; the
SQLite store (L{chat.sqlite_store}) and the PostgreSQL store
(L{chat.postgres_store}) are each a dialect, a way of allocating ids and an
opener.

B{Group commit.} Writes asked for in one reactor turn (messages, offers,
topics, moderation, device keys) are queued and written together in one
transaction, with C{executemany} per run of the same statement; while one
group is written the next gathers. The group shares one L{Deferred}, which
fires once the database has committed it, or fails: the failure is logged
here once, in one line naming the database and the error (no traceback: a
full or failing disk fails every group alike), and the senders are told
C{busy}.

B{Order.} Every other operation (reads, accounts, pruning) first starts
writing the pending group, then runs after it on the pool, so that each
read sees every write asked for before it.

Times are stored as integer milliseconds since the POSIX epoch (UTC); names
as spelled, with a lower-cased C{*_key} column for lookups that ignore case
(PROTOCOL.md section 3.3), as in L{chat.schema}.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chat import schema
from chat.counts import COUNTS
from chat.dialect import Dialect, Pending
from chat.events import DeviceKey, FileOffer, Message, Private
from chat.schema import DatabaseError, to_ms
from chat.storage import (
    AccountRecord,
    BanRecord,
    IStore,
    ModerationRecord,
    Numbered,
    RoomFlags,
)

__all__ = ["Contents", "Pool", "PooledStore", "describe", "one_line"]

_NO_ID = 2**63 - 1
"""Above every message id: C{id < _NO_ID} holds for all."""
_NO_TIME = -(2**63)
"""Below every time in milliseconds: C{ts >= _NO_TIME} holds for all."""
_PRUNE_BATCH = 5000
"""Rows deleted per transaction by L{PooledStore.prune}, so writes interleave."""


class Pool(Protocol):
    """
    What L{PooledStore} needs of adbapi's C{ConnectionPool}, which the SQLite
    store runs on in the daemon; C{chat-admin} has a synchronous one, the
    PostgreSQL store a L{chat.postgres_pool.PsycopgPool}.
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


@dataclass(frozen=True)
class Contents:
    """
    What a store knows when it opens: the highest id stored, and the lists
    it keeps in memory (see L{chat.schema} for their shapes).
    """

    last_id: int
    account_names: dict[str, str] = field(default_factory=dict)
    offers: Sequence[FileOffer] = ()
    topics: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    moderation: ModerationRecord = field(default_factory=ModerationRecord)
    device_keys: dict[str, tuple[DeviceKey, ...]] = field(default_factory=dict)

    @classmethod
    def read(cls, connection: Any, last_id: int) -> Contents:
        """
        Read the lists (blocking).

        @param connection: an C{sqlite3.Connection}, or a DB-API cursor in a
            transaction (psycopg's): anything whose C{execute} returns a cursor.
        @param last_id: the highest id stored (the engines find it apart).
        """
        return cls(
            last_id, schema.account_names(connection), schema.offers(connection), schema.topics(connection),
            schema.moderation(connection), schema.device_keys(connection),
        )


def one_line(failure: Failure) -> str:
    """
    A failure's message on one line (psycopg's span several: C{DETAIL:}, C{HINT:}).
    """
    return " ".join(failure.getErrorMessage().split())


def describe(items: Sequence[Pending], kinds: Sequence[tuple[tuple[type, ...], str]]) -> str:
    """
    What a group holds, for the log: C{"12 messages"}, C{"1 message, 1 file
    offer and 2 other changes"}.

    @param kinds: the types counted apart, each with its noun (singular);
        the rest are "other changes".
    """
    counts = [(sum(isinstance(item, types) for item in items), noun) for types, noun in kinds]
    counts.append((len(items) - sum(count for count, _ in counts), "other change"))
    parts = [f"{count} {noun}{'' if count == 1 else 's'}" for count, noun in counts if count]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


@implementer(IStore)
class PooledStore:
    """
    An L{IStore} on a L{Pool} whose interactions run one at a time in the
    order asked for, with group commit (see the module's docstring).
    L{account_names}, L{topics}, L{moderation}, L{device_keys} and
    L{offers} are as known when the store was opened (L{read_moderation}
    reads afresh).

    Subclasses give C{dialect} and may override: L{next_id} (here: one
    above the last id this store knows, right for a database it alone
    writes), L{_write} with C{numbers_messages} (number messages as they
    are committed), C{closed_error} (what operations on a closed store
    fail with) and C{group_kinds} (what the log of a failed group counts
    apart).
    """

    _log = Logger()
    numbers_messages = False
    _failing = False
    """Whether the last group could not be written (the next one written says the database is back)."""

    dialect: Dialect
    """The SQL of the store's engine."""

    closed_error: type[Exception] = DatabaseError
    """What operations on a closed store fail with (its message: one line)."""

    group_kinds: Sequence[tuple[tuple[type, ...], str]] = (
        ((Message, Private), "message"), ((FileOffer,), "file offer"),
    )
    """What the log of a failed group counts apart (see L{describe})."""

    def __init__(self, pool: Pool, clock: IReactorTime, contents: Contents, name: str) -> None:
        """
        @param pool: what the store runs on; closed by L{close}.
        @param clock: the reactor's clock: a group is written on the next
            turn, and writes are timed (L{chat.counts.COUNTS}).
        @param contents: what the database held when it was opened.
        @param name: the database, named in the log (no password).
        """
        self.name = name
        self._pool = pool
        self._clock = clock
        self._last_id = contents.last_id
        self._account_names = contents.account_names
        self._offers = list(contents.offers)
        self._topics = dict(contents.topics)
        self._moderation = contents.moderation
        self._device_keys = dict(contents.device_keys)
        self._pending: list[Pending] = []
        self._group: Deferred[Numbered | None] | None = None
        self._waiters: list[Deferred[None]] = []
        self._writing = 0
        self._soon: IDelayedCall | None = None
        self._closed = False

    def next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def last_id(self) -> int:
        return self._last_id

    # Writes: grouped

    def _queue(self, *items: Pending, shared: bool = False) -> Deferred[Any]:
        """
        Add messages or statements to the next group.

        @param shared: return the group's L{Deferred} for messages, shared
            by every message of the group (the sequencer adds one callback
            per group); otherwise one of the caller's own, so that what a
            caller adds to it (an errback that logs) cannot change what
            another sees.
        @return: fires once the group is committed: with C{None}, or for
            the shared one with what L{_write} returned.
        """
        if self._closed:
            return fail(self.closed_error("the store is closed"))
        self._pending.extend(items)
        done: Deferred[Any]
        if shared:
            if self._group is None:
                self._group = Deferred()
            done = self._group
        else:
            done = Deferred()
            self._waiters.append(done)
        if not self._writing and self._soon is None:
            # Let the rest of this reactor turn join the group.
            self._soon = self._clock.callLater(0, self._flush)
        return done

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
        waiters, self._waiters = self._waiters, []
        self._writing += 1
        done = self._pool.runInteraction(self._write, items)
        done.addBoth(COUNTS.timed, self._clock, self._clock.seconds())
        done.addBoth(self._written, group, waiters, items)

    def _write(self, transaction: Any, items: Sequence[Pending]) -> Numbered | None:
        """
        Write one group (in the database's thread). A store that numbers
        messages at commit (L{chat.postgres_store}) does it here.

        @return: the messages numbered, or C{None} when they kept the ids they came with.
        """
        self.dialect.write(transaction, items)
        return None

    def _written(
        self, result: object, group: Deferred[Any] | None, waiters: Sequence[Deferred[Any]], items: Sequence[Pending]
    ) -> None:
        self._writing -= 1
        everyone = waiters if group is None else [group, *waiters]
        if isinstance(result, Failure):
            self._log.error(
                "could not store {what} in {database}: {error}; the senders got busy",
                what=describe(items, self.group_kinds), database=self.name, error=one_line(result), count=len(items),
            )
            self._failing = True
            for done in everyone:
                done.errback(result)
                done.addErrback(lambda _: None)  # reported above, once
        else:
            if self._failing:
                self._failing = False
                self._log.info("storing in {database} again", database=self.name)
            if group is not None:
                group.callback(result)
            for done in waiters:
                done.callback(None)
        if self._pending and not self._writing:
            self._flush()

    def add(self, message: Message | Private) -> Deferred[Numbered | None]:
        self._last_id = max(self._last_id, message.id)
        return self._queue(message, shared=True)

    def delivered(self, ids: Sequence[int]) -> Deferred[None]:
        if not ids:
            return succeed(None)
        return self._queue(*((self.dialect.delivered, (False, message_id)) for message_id in ids))

    def add_offer(self, offer: FileOffer) -> Deferred[None]:
        self._last_id = max(self._last_id, offer.id)
        return self._queue(offer)

    def remove_offers(self, ids: Sequence[int]) -> Deferred[None]:
        if not ids:
            return succeed(None)
        return self._queue(*((self.dialect.remove_offer, (offer_id,)) for offer_id in ids))

    def set_topic(self, room: str, text: str, by: str) -> Deferred[None]:
        if text:
            return self._queue((self.dialect.set_topic, (room.lower(), room, text, by)))
        return self._queue((self.dialect.clear_topic, (room.lower(),)))

    def set_operator(self, room: str, account: str, operator: bool) -> Deferred[None]:
        statement = self.dialect.set_operator if operator else self.dialect.clear_operator
        return self._queue((statement, (room.lower(), account.lower())))

    def add_ban(self, ban: BanRecord) -> Deferred[None]:
        expires = None if ban.expires is None else int(ban.expires * 1000)
        return self._queue((self.dialect.add_ban, (
            ban.room, ban.account, ban.nick, ban.address, expires, ban.reason, ban.by, int(ban.created * 1000),
        )))

    def remove_ban(self, room: str, account: str, nick: str) -> Deferred[None]:
        return self._queue((self.dialect.remove_ban, (room, account, nick)))

    def set_room_flags(self, room: str, flags: RoomFlags) -> Deferred[None]:
        return self._queue((
            self.dialect.set_room_flags, (room.lower(), flags.invite_only, flags.topic_lock, flags.moderated),
        ))

    def add_device_key(self, account: str, key: DeviceKey) -> Deferred[None]:
        return self._queue((self.dialect.add_device_key, (
            account.lower(), key.device, key.key, key.fingerprint, to_ms(key.added),
        )))

    def remove_device_key(self, account: str, device: str) -> Deferred[None]:
        return self._queue((self.dialect.remove_device_key, (account.lower(), device)))

    # Everything else: in order, after the pending group

    def _run(self, interaction: Callable[..., Any], *args: object) -> Deferred[Any]:
        if self._closed:
            return fail(self.closed_error("the store is closed"))
        self._flush()
        done: Deferred[Any] = self._pool.runInteraction(interaction, *args)
        return done

    def recent(self, room: str, count: int, before: int | None = None) -> Deferred[Sequence[Message]]:
        if count <= 0:
            return succeed(())
        return self._run(self.dialect.recent, room.lower(), count, _NO_ID if before is None else before)

    def conversation(
        self, a: str, b: str, count: int, before: int | None = None, since: datetime | None = None
    ) -> Deferred[Sequence[Private]]:
        if count <= 0:
            return succeed(())
        return self._run(
            self.dialect.conversation, a.lower(), b.lower(), count, _NO_ID if before is None else before,
            _NO_TIME if since is None else to_ms(since),
        )

    def messages(
        self, room: str, since: datetime | None = None, after: int = 0, limit: int | None = None
    ) -> Deferred[Sequence[Message]]:
        return self._run(
            self.dialect.messages, room.lower(), _NO_TIME if since is None else to_ms(since), after, limit
        )

    def waiting(self, nick: str) -> Deferred[Sequence[Private]]:
        return self._run(self.dialect.waiting, nick.lower())

    def account(self, name: str) -> Deferred[AccountRecord | None]:
        return self._run(self.dialect.account, name.lower())

    def create_account(self, name: str, password: str, created: float) -> Deferred[None]:
        return self._run(self.dialect.create_account, name, password, created)

    def set_password(self, name: str, password: str) -> Deferred[bool]:
        return self._run(self.dialect.set_password, name.lower(), password)

    def accounts(self) -> Deferred[list[AccountRecord]]:
        return self._run(self.dialect.accounts)

    def delete_account(self, name: str) -> Deferred[tuple[AccountRecord, int] | None]:
        return self._run(self.dialect.delete_account, name.lower())

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
        return self._run(self.dialect.set_admin, name.lower(), admin)

    def prune(self, before: float) -> Deferred[int]:
        cutoff = int(before * 1000)
        batch = _PRUNE_BATCH
        total = 0

        def step(deleted: int) -> Deferred[int] | int:
            nonlocal total
            total += deleted
            if deleted < batch or self._closed:
                return total
            return self._run(self.dialect.prune, cutoff, batch).addCallback(step)

        return self._run(self.dialect.prune, cutoff, batch).addCallback(step)

    def close(self) -> Deferred[None]:
        """
        Write the pending group, wait for every operation asked for, then
        close the pool. Later operations fail with C{closed_error}.
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

"""
Tests for L{chat.storage}: the L{IStore} contract, held by L{MemoryStore} and
L{SQLiteStore} alike, and the SQLite store's group commit and ordering.

The SQLite store runs over L{FakePool}: adbapi's C{runInteraction} on a real
SQLite connection, but run when the test says, so a test can hold a write
"in flight" and see what the store does meanwhile.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections import deque
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta, timezone
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from chat import schema, storage
from chat.events import FileOffer, Message, Private
from chat.storage import AccountExists, AccountRecord, IStore, MemoryStore, SQLiteStore, open_store

TS = datetime(2026, 11, 21, 14, 2, 3, 120000, tzinfo=timezone.utc)


class FakePool:
    """
    Stands in for adbapi's C{ConnectionPool}: interactions queue in order,
    as on the store's single database thread, and run on L{run}.
    """

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path)
        schema.configure(self.connection)
        self.queue: deque[tuple[Callable[..., Any], tuple[Any, ...], Deferred[Any]]] = deque()
        self.closed = False
        self.broken = False

    def runInteraction(self, interaction: Callable[..., Any], *args: Any) -> Deferred[Any]:  # noqa: N802
        done: Deferred[Any] = Deferred()
        self.queue.append((interaction, args, done))
        return done

    def run(self, count: int | None = None) -> int:
        """
        Run the next C{count} queued interactions (all when C{None}), each in
        a transaction; return how many ran.
        """
        ran = 0
        while self.queue and (count is None or ran < count):
            interaction, args, done = self.queue.popleft()
            ran += 1
            cursor = self.connection.cursor()
            try:
                if self.broken:
                    raise sqlite3.OperationalError("disk I/O error")
                result = interaction(cursor, *args)
                self.connection.commit()
            except Exception as e:
                self.connection.rollback()
                done.errback(e)
            else:
                done.callback(result)
        return ran

    def close(self) -> None:
        self.closed = True
        self.connection.close()


def message(store: IStore, room: str, text: str, ts: datetime = TS) -> Message:
    """
    Make a room message with the store's next id and add it.
    """
    m = Message(store.next_id(), ts, room, "alice", text)
    store.add(m)
    return m


class StoreContract:
    """
    What every L{IStore} does; mixed into a test case per store.
    """

    store: IStore

    def settle(self) -> None:
        """
        Let pending work complete.
        """

    def result(self, deferred: Deferred[Any]) -> Any:
        self.settle()
        return self.successResultOf(deferred)  # type: ignore[attr-defined]

    def test_provides_istore(self) -> None:
        """
        The store provides IStore.
        """
        self.assertTrue(verifyObject(IStore, self.store))  # type: ignore[attr-defined]

    def test_recent_oldest_first(self) -> None:
        """
        recent gives the last count messages of a room, oldest first, ignoring case.
        """
        ms = [message(self.store, "#X", f"m{i}") for i in range(5)]
        self.assertEqual(list(self.result(self.store.recent("#x", 3))), ms[2:])
        self.assertEqual(list(self.result(self.store.recent("#X", 500))), ms)
        self.assertEqual(list(self.result(self.store.recent("#x", 0))), [])

    def test_rooms_separate(self) -> None:
        """
        Each room has its own history; an unknown room has none.
        """
        a = message(self.store, "#a", "in a")
        b = message(self.store, "#b", "in b")
        self.assertEqual(list(self.result(self.store.recent("#a", 10))), [a])
        self.assertEqual(list(self.result(self.store.recent("#b", 10))), [b])
        self.assertEqual(list(self.result(self.store.recent("#nowhere", 10))), [])

    def test_private_waiting_until_delivered(self) -> None:
        """
        Private messages stored offline wait for their recipient (ignoring
        case), oldest first; online ones never wait; delivered ones are gone.
        """
        online = Private(self.store.next_id(), TS, "alice", "Bob", "live")
        first = Private(self.store.next_id(), TS, "alice", "Bob", "one", offline=True)
        second = Private(self.store.next_id(), TS, "carol", "Bob", "two", action=True, offline=True)
        for m in (online, first, second):
            self.store.add(m)
        self.assertEqual(list(self.result(self.store.waiting("bob"))), [first, second])
        self.assertEqual(list(self.result(self.store.waiting("alice"))), [])
        self.store.delivered([first.id])
        self.assertEqual(list(self.result(self.store.waiting("BOB"))), [second])
        self.store.delivered([second.id])
        self.assertEqual(list(self.result(self.store.waiting("bob"))), [])

    def test_accounts(self) -> None:
        """
        Accounts are created once per name ignoring case, found ignoring
        case, and get new passwords; unknown ones are None.
        """
        self.assertIsNone(self.result(self.store.create_account("Alice", "hash1", 1000.5)))
        creating = self.store.create_account("ALICE", "x", 1)
        self.settle()
        failure = self.failureResultOf(creating, AccountExists)  # type: ignore[attr-defined]
        self.assertEqual(str(failure.value), "ALICE")
        self.assertEqual(self.result(self.store.account("alice")), AccountRecord("Alice", "hash1", 1000.5))
        self.assertTrue(self.result(self.store.set_password("aLiCe", "hash2")))
        self.assertEqual(self.result(self.store.account("ALICE")).password, "hash2")
        self.assertFalse(self.result(self.store.set_password("bob", "h")))
        self.assertIsNone(self.result(self.store.account("bob")))

    def test_prune(self) -> None:
        """
        prune deletes room and private messages older than the cutoff and counts them.
        """
        old = TS - timedelta(days=10)
        message(self.store, "#a", "old", old)
        new = message(self.store, "#a", "new")
        self.store.add(Private(self.store.next_id(), old, "alice", "bob", "old", offline=True))
        self.assertEqual(self.result(self.store.prune((TS - timedelta(days=5)).timestamp())), 2)
        self.assertEqual(list(self.result(self.store.recent("#a", 10))), [new])
        self.assertEqual(list(self.result(self.store.waiting("bob"))), [])


    def test_offers_added_and_removed(self) -> None:
        """
        File offers are kept until removed; removing an unknown id is harmless.
        """
        first = FileOffer(self.store.next_id(), "alice", "bob", "a.txt", 3, "ab" * 32, TS)
        second = FileOffer(self.store.next_id(), "carol", "#Dev", "b c.pdf", 0, "cd" * 32, TS)
        self.assertIsNone(self.result(self.store.add_offer(first)))
        self.assertIsNone(self.result(self.store.add_offer(second)))
        self.assertIsNone(self.result(self.store.remove_offers([first.id, 999])))
        self.assertEqual(self.stored_offers(), [second])

    def stored_offers(self) -> list[FileOffer]:
        """
        The offers as a newly opened store would see them.
        """
        return self.store.offers()


class MemoryStoreTests(StoreContract, SynchronousTestCase):
    def setUp(self) -> None:
        self.store = MemoryStore()

    def test_ids_increase(self) -> None:
        """
        Ids start at 1 and increase by one per call.
        """
        self.assertEqual([self.store.next_id() for _ in range(3)], [1, 2, 3])

    def test_keep_bound(self) -> None:
        """
        Only the last keep messages of a room are kept.
        """
        store = MemoryStore(keep=2)
        ms = [message(store, "#x", f"m{i}") for i in range(4)]
        self.assertEqual(list(self.successResultOf(store.recent("#x", 10))), ms[2:])

    def test_account_names_current(self) -> None:
        """
        account_names maps lower-cased names to their spelling.
        """
        self.store.create_account("Alice", "h", 0)
        self.assertEqual(self.store.account_names(), {"alice": "Alice"})


class SQLiteStoreTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-store-")
        self.addCleanup(directory.cleanup)
        self.path = os.path.join(directory.name, schema.FILENAME)
        schema.open_database(self.path).close()
        self.clock = Clock()
        self.pool = FakePool(self.path)
        self.addCleanup(lambda: self.pool.closed or self.pool.close())
        self.store = SQLiteStore(self.pool, self.clock, 0, {})  # type: ignore[arg-type]

    def settle(self) -> None:
        while self.clock.getDelayedCalls() or self.pool.queue:
            self.clock.advance(0)
            self.pool.run()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.path)) as db:
            return db.execute(sql).fetchall()


class SQLiteContractTests(SQLiteStoreTestCase, StoreContract):
    def stored_offers(self) -> list[FileOffer]:
        with closing(schema.open_database(self.path)) as db:
            return schema.offers(db)

    def test_offers_loaded_at_open(self) -> None:
        """
        A store opened on a database lists the offers stored there, and
        ids continue after the highest offer id.
        """
        offer = FileOffer(41, "alice", "bob", "a.txt", 3, "ab" * 32, TS)
        self.result(self.store.add_offer(offer))
        store = open_store(os.path.dirname(self.path), self.clock)
        self.addCleanup(store._pool.close)
        self.assertEqual(store.offers(), [offer])
        self.assertEqual(store.next_id(), 42)


class GroupCommitTests(SQLiteStoreTestCase):
    def test_one_transaction_per_turn(self) -> None:
        """
        Messages added in one reactor turn are written together, in one
        transaction, and share one Deferred that fires once they are durable.
        """
        added = [self.store.add(Message(self.store.next_id(), TS, "#a", "alice", f"m{i}")) for i in range(3)]
        self.assertEqual(len(self.pool.queue), 0)
        self.clock.advance(0)
        self.assertEqual(len(self.pool.queue), 1)
        self.assertIs(added[0], added[1])
        self.assertIs(added[1], added[2])
        self.assertNoResult(added[0])
        self.assertEqual(self.rows("SELECT count(*) FROM messages"), [(0,)])
        self.pool.run()
        self.assertIsNone(self.successResultOf(added[0]))
        self.assertEqual(
            self.rows("SELECT id, ts, room, room_key, sender, text, action FROM messages"),
            [(i, schema.to_ms(TS), "#a", "#a", "alice", f"m{i - 1}", 0) for i in (1, 2, 3)],
        )

    def test_next_group_waits_for_the_write_in_flight(self) -> None:
        """
        While a group is being written, new messages gather into the next
        group, written in one transaction when the first completes.
        """
        first = self.store.add(Message(self.store.next_id(), TS, "#a", "alice", "first"))
        self.clock.advance(0)
        second = [self.store.add(Message(self.store.next_id(), TS, "#a", "bob", f"b{i}")) for i in range(5)]
        self.clock.advance(0)
        self.assertEqual(len(self.pool.queue), 1)
        self.pool.run(1)
        self.successResultOf(first)
        self.assertEqual(len(self.pool.queue), 1)
        self.assertNoResult(second[0])
        self.pool.run(1)
        self.assertIsNone(self.successResultOf(second[4]))
        self.assertEqual(self.rows("SELECT count(*) FROM messages"), [(6,)])

    def test_read_sees_pending_writes(self) -> None:
        """
        A read asked for after a write runs after it, even before the write's turn ended.
        """
        m = Message(self.store.next_id(), TS, "#a", "alice", "just said")
        self.store.add(m)
        reading = self.store.recent("#a", 5)
        self.assertEqual(len(self.pool.queue), 2)
        self.pool.run()
        self.assertEqual(list(self.successResultOf(reading)), [m])

    def test_failed_write_fails_its_group_only(self) -> None:
        """
        A write that fails fails every message of its group and is logged; the next group is written.
        """
        lost = self.store.add(Message(self.store.next_id(), TS, "#a", "alice", "lost"))
        results: list[object] = []
        lost.addBoth(results.append)  # callbacks are added before the group is written
        self.clock.advance(0)
        self.pool.broken = True
        self.pool.run()
        [failure] = results
        self.assertIsInstance(failure, Failure)
        self.assertIsInstance(failure.value, sqlite3.OperationalError)  # type: ignore[attr-defined]
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)
        self.pool.broken = False
        kept = self.store.add(Message(self.store.next_id(), TS, "#a", "alice", "kept"))
        self.settle()
        self.successResultOf(kept)
        self.assertEqual(self.rows("SELECT text FROM messages"), [("kept",)])

    def test_ids_continue_after_last(self) -> None:
        """
        Ids continue from the last id the database had.
        """
        store = SQLiteStore(self.pool, self.clock, 41, {})  # type: ignore[arg-type]
        self.assertEqual(store.next_id(), 42)

    def test_close_writes_pending_then_closes(self) -> None:
        """
        close writes what is pending, then closes the pool; later writes fail.
        """
        pending = self.store.add(Message(self.store.next_id(), TS, "#a", "alice", "last words"))
        closed = self.store.close()
        self.assertFalse(self.pool.closed)
        self.pool.run()
        self.successResultOf(pending)
        self.successResultOf(closed)
        self.assertTrue(self.pool.closed)
        late = self.store.add(Message(self.store.next_id(), TS, "#a", "x", "y"))
        self.failureResultOf(late, sqlite3.ProgrammingError)

    def test_prune_in_batches(self) -> None:
        """
        Pruning deletes in bounded batches, each its own transaction, until none are left.
        """
        self.patch(storage, "_PRUNE_BATCH", 2)
        old = TS - timedelta(days=3)
        for i in range(5):
            message(self.store, "#a", f"old{i}", old)
        message(self.store, "#a", "new")
        self.settle()
        pruning = self.store.prune(TS.timestamp() - 86400)
        transactions = 0
        while self.pool.queue:
            transactions += self.pool.run(1)
        self.assertEqual(self.successResultOf(pruning), 5)
        self.assertEqual(transactions, 3)
        self.assertEqual(self.rows("SELECT text FROM messages"), [("new",)])


class OpenStoreTests(SynchronousTestCase):
    def test_open_store_reads_last_id_and_accounts(self) -> None:
        """
        open_store migrates the database and starts ids after the last one, knowing the accounts.
        """
        with tempfile.TemporaryDirectory(prefix="chat-store-") as data:
            with closing(schema.open_database(schema.path_in(data))) as db:
                db.execute("INSERT INTO private VALUES (12, 0, 'x', 'Bob', 'bob', 't', 0, 1)")
                db.execute("INSERT INTO accounts VALUES ('bob', 'Bob', 'h', 0)")
            store = storage.open_store(data, Clock(), MemoryReactor())
            try:
                self.assertEqual(store.next_id(), 13)
                self.assertEqual(store.account_names(), {"bob": "Bob"})
            finally:
                store._pool.close()

"""
Tests for L{chat.postgres_store} on a real PostgreSQL server (L{tests.servers},
skipped with the reason when it cannot start): the whole L{StoreContract},
the id allocator of several stores sharing one database, the schema's
creation and versioning, reopening, and the daemon's L{PsycopgPool} on the
real reactor.

Most tests run the store over L{QueuedPool}: a real psycopg connection whose
interactions run when the test says (L{PostgresTestCase.settle}), so they stay
synchronous and deterministic like the SQLite store's tests.
"""

from __future__ import annotations

import unittest
from datetime import timedelta
from typing import Any

import psycopg
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from chat import pooled_store, postgres_store
from chat.events import DeviceKey, FileOffer, Message, Private
from chat.interfaces import IIdAllocator
from chat.postgres_pool import PsycopgPool
from chat.postgres_store import IdsExhausted, PostgresStore, open_postgres_store
from chat.schema import DatabaseError
from chat.storage import IStore, ModerationRecord
from tests import servers
from tests.test_storage import TS, FakePool, StoreContract, message


class QueuedPool(FakePool):
    """
    L{FakePool} on a real psycopg connection: interactions queue in order
    and run on L{run}, each in a transaction.
    """

    def connect(self, dsn: str) -> Any:
        return psycopg.connect(dsn)


class PostgresTestCase(SynchronousTestCase):
    """
    A store on the emptied test database, over a L{QueuedPool}.
    """

    block = postgres_store.BLOCK

    def setUp(self) -> None:
        self.server = servers.postgres()
        self.server.reset()
        self.clock = Clock()
        self.pools: list[QueuedPool] = []
        self.pg = self.open_store()
        self.store: IStore = self.pg

    def make_pool(self, dsn: str) -> QueuedPool:
        pool = QueuedPool(dsn)
        self.pools.append(pool)
        self.addCleanup(lambda: None if pool.closed else pool.close())
        return pool

    def open_store(self, block: int | None = None) -> PostgresStore:
        """
        Open another store on the test database, its pool run to the end.
        """
        opening = open_postgres_store(
            self.server.dsn, self.clock, block=self.block if block is None else block, make_pool=self.make_pool
        )
        self.pools[-1].run()
        return self.successResultOf(opening)

    def settle(self) -> None:
        while self.clock.getDelayedCalls() or any(pool.queue for pool in self.pools):
            self.clock.advance(0)
            for pool in self.pools:
                pool.run()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.server.dsn) as connection:
            return connection.execute(sql).fetchall()


class PostgresContractTests(PostgresTestCase, StoreContract):
    """
    The L{IStore} contract, held by L{PostgresStore}.
    """

    def reopened(self) -> PostgresStore:
        self.settle()
        return self.open_store()

    def stored_offers(self) -> list[FileOffer]:
        return self.reopened().offers()

    def stored_topics(self) -> dict[str, tuple[str, str, str]]:
        return self.reopened().topics()

    def stored_moderation(self) -> ModerationRecord:
        return self.reopened().moderation()

    def stored_device_keys(self) -> dict[str, tuple[DeviceKey, ...]]:
        return self.reopened().device_keys()


class GroupCommitTests(PostgresTestCase):
    def test_one_transaction_per_turn(self) -> None:
        """
        Writes asked for in one reactor turn go to the database in one
        interaction; their Deferreds fire once they are committed.
        """
        for i in range(3):
            message(self.store, "#a", f"m{i}")
        deferreds = [self.store.set_topic("#a", "t", "alice"), self.store.delivered([1])]
        self.assertEqual(len(self.pools[0].queue), 0)
        self.clock.advance(0)
        self.assertEqual(len(self.pools[0].queue), 1)
        self.assertNoResult(deferreds[0])
        self.assertEqual(self.rows("SELECT count(*) FROM messages"), [(0,)])
        self.pools[0].run()
        self.assertIsNone(self.successResultOf(deferreds[0]))
        self.assertIsNone(self.successResultOf(deferreds[1]))  # each write has its own Deferred
        self.assertEqual(self.rows("SELECT text FROM messages ORDER BY id"), [("m0",), ("m1",), ("m2",)])

    def test_failed_group_fails_its_deferred_and_rolls_back(self) -> None:
        """
        A group that fails (a duplicate id) fails the Deferreds of its
        writes and stores none of them; the next group is written.
        """
        first = message(self.store, "#a", "first")
        self.settle()
        lost = self.store.add(Message(first.id, TS, "#a", "bob", "same id"))
        also_lost = self.store.set_topic("#a", "lost topic", "bob")
        results: list[object] = []
        lost.addBoth(results.append)  # callbacks are added before the group is written
        also_lost.addBoth(results.append)
        with capturedLogs() as logged:
            self.settle()
        failure, also = results
        self.assertIs(also, failure)
        self.assertIsInstance(failure, Failure)
        self.assertIsInstance(failure.value, psycopg.errors.UniqueViolation)  # type: ignore[attr-defined]
        [event] = logged
        self.assertEqual(event["log_level"], LogLevel.error)
        self.assertRegex(
            formatEvent(event),
            rf"^could not store 1 message and 1 other change in {self.pg.name}:"
            r" duplicate key value violates unique constraint [^\n]*; the senders got busy$",
        )
        kept = message(self.store, "#a", "kept")
        self.settle()
        self.assertEqual(
            self.rows("SELECT id, text FROM messages ORDER BY id"), [(first.id, "first"), (kept.id, "kept")]
        )
        self.assertEqual(self.rows("SELECT count(*) FROM topics"), [(0,)])

    def test_close_writes_pending_then_closes(self) -> None:
        """
        close writes what is pending, then closes the pool; later writes fail with DatabaseError.
        """
        pending = self.store.add(Message(self.store.next_id(), TS, "#a", "alice", "last words"))
        closed = self.store.close()
        self.assertFalse(self.pools[0].closed)
        self.settle()
        self.successResultOf(pending)
        self.successResultOf(closed)
        self.assertTrue(self.pools[0].closed)
        self.failureResultOf(self.store.add(Message(99, TS, "#a", "x", "y")), DatabaseError)
        self.assertEqual(self.rows("SELECT text FROM messages"), [("last words",)])

    def test_prune_in_batches(self) -> None:
        """
        Pruning deletes in bounded batches, each its own transaction, until none are left.
        """
        self.patch(pooled_store, "_PRUNE_BATCH", 2)
        for i in range(5):
            message(self.store, "#a", f"old{i}", TS - timedelta(days=3))
        message(self.store, "#a", "new")
        self.settle()
        pruning = self.store.prune(TS.timestamp() - 86400)
        transactions = 0
        while self.pools[0].queue:
            transactions += self.pools[0].run(1)
        self.assertEqual(self.successResultOf(pruning), 5)
        self.assertEqual(transactions, 3)
        self.assertEqual(self.rows("SELECT text FROM messages"), [("new",)])


class IdTests(PostgresTestCase):
    block = 3

    def test_two_stores_unique_increasing(self) -> None:
        """
        Two stores on one database hand out disjoint ids, each store's
        increasing, refilling their blocks ahead from the shared counter.
        """
        other = self.open_store()
        taken: dict[str, list[int]] = {"a": [], "b": []}
        for turn in range(40):
            for name, store in (("a", self.store), ("b", other)):
                for _ in range(1 + turn % 2):
                    taken[name].append(store.next_id())
            self.settle()
        for ids in taken.values():
            self.assertEqual(ids, sorted(ids))
            self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(set(taken["a"]) & set(taken["b"]), set())
        self.assertEqual(taken["a"][:2], [1, 2])
        self.assertEqual(taken["b"][:2], [4, 5])
        (top,), = self.rows("SELECT top FROM id_blocks")
        self.assertGreaterEqual(top, max(taken["a"] + taken["b"]))

    def test_provides_id_allocator(self) -> None:
        """
        The store is an id allocator for the daemon, handing out its next_id.
        """
        self.assertTrue(verifyObject(IIdAllocator, self.pg))
        self.assertEqual(IIdAllocator(self.pg).next_id(), 1)

    def test_exhausted_until_the_next_block(self) -> None:
        """
        With no reserved id left, next_id raises IdsExhausted; once the
        reservation it started arrives, ids continue above every id reserved before.
        """
        other = self.open_store()
        self.assertEqual([self.store.next_id() for _ in range(3)], [1, 2, 3])
        self.assertEqual(len(self.pools[0].queue), 1)  # the next block, asked for ahead
        error = self.assertRaises(IdsExhausted, self.store.next_id)
        self.assertEqual(str(error), f"no message id reserved from {self.pg.name} yet")
        self.assertEqual(other.next_id(), 4)
        self.settle()
        self.assertEqual(self.store.next_id(), 7)
        self.assertEqual(self.store.last_id(), 7)

    def test_ids_above_ids_given(self) -> None:
        """
        An id given to add above this store's blocks makes the next block
        start above it, and next_id never hands out an id at or below it.
        """
        self.store.add(Message(50, TS, "#a", "alice", "from elsewhere"))
        self.assertRaises(IdsExhausted, self.store.next_id)
        self.settle()
        self.assertEqual(self.store.next_id(), 51)
        other = self.open_store()
        self.assertGreater(other.next_id(), 53)

    def test_reopened_store_starts_above_stored_ids(self) -> None:
        """
        A store opened on a database whose counter is behind its stored ids
        (data copied in) reserves above the highest stored id.
        """
        self.store.add(Message(500, TS, "#a", "alice", "copied"))
        self.settle()
        with psycopg.connect(self.server.dsn) as connection:
            connection.execute("UPDATE id_blocks SET top = 0")
        store = self.open_store()
        self.assertEqual(store.last_id(), 500)
        self.assertEqual(store.next_id(), 501)


class NumberingTests(PostgresTestCase):
    """
    Messages given with a provisional id are numbered as they are
    committed, in commit order across every store on the database, each
    with the id committed before it (C{after}).
    """

    def provisional(self, n: int, text: str, room: str = "#a") -> Message:
        return Message(-n, TS, room, "alice", text)

    def test_numbered_in_commit_order(self) -> None:
        """
        Two stores' groups take consecutive ids in the order they commit,
        whatever the order they were asked in, and the chain of C{after}
        runs through both.
        """
        self.assertTrue(self.pg.numbers_messages)
        other = self.open_store()
        first = [self.provisional(1, "a1"), self.provisional(2, "a2")]
        mine = [self.pg.add(m) for m in first]
        theirs = other.add(Private(-1, TS, "bob", "carol", "b1"))
        self.clock.advance(0)
        self.pools[1].run()  # the other store commits first
        self.pools[0].run()
        self.assertIs(mine[0], mine[1])  # one group, one result
        numbered_b = self.successResultOf(theirs)
        numbered_a = self.successResultOf(mine[0])
        (top,), = self.rows("SELECT top FROM id_blocks")
        stored = sorted(
            [(m.id, m.after, m.text) for m in (numbered_a.stored(first[0]), numbered_a.stored(first[1]))]
        )
        self.assertEqual(len(numbered_b), 1)
        self.assertEqual(self.rows("SELECT id, text FROM private"), [(stored[0][0] - 1, "b1")])
        base = stored[0][0] - 1
        self.assertEqual(stored, [(base + 1, base, "a1"), (base + 2, base + 1, "a2")])
        self.assertEqual(self.rows("SELECT last_message FROM id_blocks"), [(base + 2,)])
        self.assertEqual(top, base + 2)
        self.assertEqual(self.rows("SELECT id, text FROM messages ORDER BY id"), [(base + 1, "a1"), (base + 2, "a2")])

    def test_given_ids_kept(self) -> None:
        """A message given with an id (copied data) keeps it, and the commit numbers nothing."""
        done = self.pg.add(Message(7, TS, "#a", "alice", "copied"))
        self.settle()
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(self.rows("SELECT id FROM messages"), [(7,)])

    def test_between_and_last_message(self) -> None:
        """
        messages_between reads room and private messages by id, in id
        order; a store opened later knows the last message committed.
        """
        given = [self.provisional(1, "one"), Private(-2, TS, "bob", "carol", "two", offline=True),
                 self.provisional(3, "three", "#b")]
        done = [self.pg.add(m) for m in given]
        self.settle()
        numbered = self.successResultOf(done[0])
        ids = [numbered.stored(m).id for m in given]
        self.assertEqual(ids, [ids[0], ids[0] + 1, ids[0] + 2])
        reading = self.pg.messages_between(ids[0] - 1, ids[2])
        self.settle()
        between = self.successResultOf(reading)
        self.assertEqual([(m.id, m.text) for m in between], [(ids[0], "one"), (ids[1], "two")])
        self.assertTrue(between[1].offline)  # type: ignore[union-attr]
        self.assertEqual(self.open_store().last_message, ids[2])

    def test_concurrent_commits_wait_for_each_other(self) -> None:
        """
        Two transactions numbering at once, on two connections: the second
        waits for the first to commit, then numbers after it, so that
        every id up to a committed C{last_message} is committed.
        """
        import threading

        first = psycopg.connect(self.server.dsn)
        second = psycopg.connect(self.server.dsn)
        self.addCleanup(first.close)
        self.addCleanup(second.close)
        with first.cursor() as cursor:
            items, numbered_first = postgres_store.number(cursor, [self.provisional(1, "first")])
        results: list[Any] = []

        def number_second() -> None:
            with second.cursor() as cursor:
                results.append(postgres_store.number(cursor, [self.provisional(1, "second")]))
            second.commit()

        thread = threading.Thread(target=number_second)
        thread.start()
        thread.join(0.5)
        self.assertTrue(thread.is_alive())  # waiting for the first transaction's lock
        first.commit()
        thread.join(10)
        self.assertFalse(thread.is_alive())
        [(items_second, _)] = results
        (one,), (two,) = items, items_second
        self.assertEqual((two.id, two.after), (one.id + 1, one.id))  # type: ignore[union-attr]


class SchemaTests(PostgresTestCase):
    def test_created_on_an_empty_database(self) -> None:
        """
        Opening an empty database creates every table at the current version, once.
        """
        tables = {name for (name,) in self.rows(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )}
        self.assertEqual(tables, {
            "schema_version", "messages", "accounts", "private", "offers", "topics", "admins", "operators",
            "bans", "room_settings", "device_keys", "id_blocks",
        })
        self.assertEqual(self.rows("SELECT version FROM schema_version"), [(postgres_store.VERSION,)])
        self.open_store()
        self.assertEqual(self.rows("SELECT version FROM schema_version"), [(postgres_store.VERSION,)])

    def test_newer_schema_refused(self) -> None:
        """
        A database of a newer schema version is refused with one line, and the pool is closed.
        """
        with psycopg.connect(self.server.dsn) as connection:
            connection.execute("UPDATE schema_version SET version = 99")
        opening = open_postgres_store(self.server.dsn, self.clock, make_pool=self.make_pool)
        self.pools[-1].run()
        failure = self.failureResultOf(opening, DatabaseError)
        self.assertEqual(
            str(failure.value),
            f"the PostgreSQL database has schema version 99, newer than this chat"
            f" (version {postgres_store.VERSION}): upgrade chat",
        )
        self.assertTrue(self.pools[-1].closed)

    def test_reopening_keeps_everything(self) -> None:
        """
        A store opened again finds the messages, accounts, topics, offers and
        device keys stored before, and its ids continue above them.
        """
        room = [message(self.store, "#Dev", f"m{i}") for i in range(3)]
        waiting = Private(self.store.next_id(), TS, "alice", "Bob", "later", offline=True)
        self.store.add(waiting)
        offer = FileOffer(self.store.next_id(), "alice", "bob", "a.txt", 3, "ab" * 32, TS)
        self.store.add_offer(offer)
        self.store.set_topic("#Dev", "Release", "alice")
        key = DeviceKey("phone-device-id1", "UEhPTkU=", "11111 22222 33333 44444 55555 66666", TS)
        self.store.create_account("Alice", "hash", 1.5)  # drops keys left under its name: add them after
        self.store.add_device_key("Alice", key)
        closing = self.store.close()
        self.settle()
        self.successResultOf(closing)
        store = self.open_store()
        reading: list[Deferred[Any]] = [store.recent("#dev", 10), store.waiting("bob")]
        self.settle()
        self.assertEqual([list(self.successResultOf(d)) for d in reading], [room, [waiting]])
        self.assertEqual(store.account_names(), {"alice": "Alice"})
        self.assertEqual(store.topics(), {"#dev": ("#Dev", "Release", "alice")})
        self.assertEqual(store.offers(), [offer])
        self.assertEqual(store.device_keys(), {"alice": (key,)})
        self.assertEqual(store.last_id(), offer.id)
        self.assertGreater(store.next_id(), offer.id)


class ServersTests(SynchronousTestCase):
    def test_missing_server_skips_with_the_reason(self) -> None:
        """
        A server that cannot start skips the test with what failed, and is not tried again.
        """
        attempts: list[None] = []

        def broken() -> servers.RedisServer:
            attempts.append(None)
            raise RuntimeError("redis-server is not installed: apt-get install redis-server")

        self.patch(servers, "_servers", {})
        for _ in range(2):
            skipped = self.assertRaises(unittest.SkipTest, servers._once, "Redis", broken)
            self.assertEqual(
                str(skipped),
                "cannot start Redis for the tests because redis-server is not installed: apt-get install redis-server",
            )
        self.assertEqual(len(attempts), 1)

    def test_redis_flushed(self) -> None:
        """
        The Redis server answers, and flush empties it.
        """
        server = servers.redis()
        self.assertEqual(server.command("SET", "chat-test-key", "1"), b"+OK")
        self.assertEqual(server.command("EXISTS", "chat-test-key"), b":1")
        server.flush()
        self.assertEqual(server.command("EXISTS", "chat-test-key"), b":0")


class PsycopgPoolTests(TestCase):
    """
    The daemon's pool on the real reactor and the real server.
    """

    def setUp(self) -> None:
        self.server = servers.postgres()
        self.server.reset()

    @inlineCallbacks
    def test_store_on_the_reactor(self) -> Any:
        """
        On the daemon's pool, messages added in one turn share one Deferred,
        are read back in order, and close waits for them.
        """
        store = yield open_postgres_store(self.server.dsn, reactor, reactor)
        self.addCleanup(store.close)
        self.assertIsInstance(store._pool, PsycopgPool)
        ms = [Message(store.next_id(), TS, "#a", "alice", f"m{i}") for i in range(5)]
        added = [store.add(m) for m in ms]
        self.assertTrue(all(d is added[0] for d in added))
        found = yield store.recent("#A", 10)
        self.assertEqual(list(found), ms)
        yield gatherResults([store.create_account("bob", "h", 1.0), added[0]])
        yield store.close()
        self.assertEqual(len(self.server_rows("SELECT id FROM messages")), 5)

    @inlineCallbacks
    def test_daemons_starting_together_migrate_once(self) -> Any:
        """
        Three daemons opening the empty database at once all start, on one
        schema, with disjoint first blocks of ids.
        """
        stores = yield gatherResults([open_postgres_store(self.server.dsn, reactor, reactor) for _ in range(3)])
        for store in stores:
            self.addCleanup(store.close)
        self.assertEqual(self.server_rows("SELECT version FROM schema_version"), [(postgres_store.VERSION,)])
        firsts = sorted(store.next_id() for store in stores)
        self.assertEqual(firsts, [1, 1 + postgres_store.BLOCK, 1 + 2 * postgres_store.BLOCK])

    @inlineCallbacks
    def test_failed_interaction_rolled_back(self) -> Any:
        """
        An interaction that raises after writing is rolled back, and the pool goes on.
        """
        store = yield open_postgres_store(self.server.dsn, reactor, reactor)
        self.addCleanup(store.close)
        pool = store._pool

        def half(cursor: Any) -> None:
            cursor.execute("INSERT INTO admins (name_key) VALUES ('half')")
            raise ValueError("broken")

        yield self.assertFailure(pool.runInteraction(half), ValueError)
        moderation = yield store.read_moderation()
        self.assertEqual(moderation.admins, frozenset())

    @inlineCallbacks
    def test_survives_a_server_restart(self) -> Any:
        """
        After PostgreSQL restarts, the store's next operations succeed on a new connection.
        """
        store = yield open_postgres_store(self.server.dsn, reactor, reactor)
        self.addCleanup(store.close)
        yield store.add(Message(store.next_id(), TS, "#a", "alice", "before"))
        self.server.restart()
        yield store.add(Message(store.next_id(), TS, "#a", "alice", "after"))
        found = yield store.recent("#a", 10)
        self.assertEqual([m.text for m in found], ["before", "after"])

    @inlineCallbacks
    def test_unreachable_database(self) -> Any:
        """
        Opening on a port where nothing listens fails with one DatabaseError line saying why.
        """
        dsn = f"host=127.0.0.1 port={servers.free_port()} user=postgres dbname=chat"
        error = yield self.assertFailure(open_postgres_store(dsn, reactor, reactor), DatabaseError)
        message = str(error)
        self.assertTrue(message.startswith("cannot use the PostgreSQL database chat on 127.0.0.1:"), message)
        self.assertIn("Connection refused", message)
        self.assertNotIn("\n", message)

    def server_rows(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.server.dsn) as connection:
            return connection.execute(sql).fetchall()


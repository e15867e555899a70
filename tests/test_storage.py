"""
Tests for L{chat.storage}, L{chat.memory_store} and L{chat.sqlite_store}: the
L{IStore} contract, held by L{MemoryStore} and L{SQLiteStore} alike, and the
SQLite store's group commit and ordering.

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
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from chat import pooled_store, schema, sqlite_store
from chat.events import DeviceKey, FileOffer, Message, Private
from chat.memory_store import MemoryStore
from chat.sqlite_store import SQLiteStore, open_store
from chat.storage import AccountExists, AccountRecord, BanRecord, IStore, ModerationRecord, RoomFlags

TS = datetime(2026, 11, 21, 14, 2, 3, 120000, tzinfo=timezone.utc)
PHONE = DeviceKey("phone-device-id1", "UEhPTkU=", "11111 22222 33333 44444 55555 66666", TS)
LAPTOP = DeviceKey("laptop-device-i2", "TEFQVE9Q", "12345 12345 12345 12345 12345 12345", TS + timedelta(seconds=1))
ENVELOPE = "eyJjIjoiY2lwaGVydGV4dCJ9"


class FakePool:
    """
    Stands in for adbapi's C{ConnectionPool}: interactions queue in order,
    as on the store's single database thread, and run on L{run}, on the
    connection L{connect} makes (SQLite's here).
    """

    def __init__(self, target: str) -> None:
        """
        @param target: what L{connect} connects to.
        """
        self.connection = self.connect(target)
        self.queue: deque[tuple[Callable[..., Any], tuple[Any, ...], Deferred[Any]]] = deque()
        self.closed = False
        self.broken = False

    def connect(self, path: str) -> Any:
        """
        A DB-API connection to the SQLite database at C{path}, configured as the store's.
        """
        connection = sqlite3.connect(path)
        schema.configure(connection)
        return connection

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
            try:
                if self.broken:
                    raise sqlite3.OperationalError("disk I/O error")
                with closing(self.connection.cursor()) as cursor:
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


if TYPE_CHECKING:
    _Mixin = SynchronousTestCase
else:
    _Mixin = object


class StoreContract(_Mixin):
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
        return self.successResultOf(deferred)

    def test_provides_istore(self) -> None:
        """
        The store provides IStore.
        """
        self.assertTrue(verifyObject(IStore, self.store))

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
        failure = self.failureResultOf(creating, AccountExists)
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

    def test_messages_filtered_and_paged(self) -> None:
        """
        messages gives a room's history oldest first, ignoring case, from a
        time on, after an id, and at most a limit of them.
        """
        old = message(self.store, "#Dev", "old", TS - timedelta(days=1))
        message(self.store, "#other", "elsewhere")
        new = [message(self.store, "#dev", f"new{i}") for i in range(3)]
        self.assertEqual(list(self.result(self.store.messages("#DEV"))), [old, *new])
        self.assertEqual(list(self.result(self.store.messages("#dev", TS))), new)
        self.assertEqual(list(self.result(self.store.messages("#dev", None, old.id, 2))), new[:2])
        self.assertEqual(list(self.result(self.store.messages("#dev", TS, new[1].id, 2))), new[2:])
        self.assertEqual(list(self.result(self.store.messages("#dev", TS + timedelta(seconds=1)))), [])
        self.assertEqual(list(self.result(self.store.messages("#nowhere"))), [])

    def test_recent_before(self) -> None:
        """
        recent with before gives the last count messages with a lower id, oldest first.
        """
        ms = [message(self.store, "#X", f"m{i}") for i in range(6)]
        self.assertEqual(list(self.result(self.store.recent("#x", 2, before=ms[4].id))), ms[2:4])
        self.assertEqual(list(self.result(self.store.recent("#x", 10, before=ms[2].id))), ms[:2])
        self.assertEqual(list(self.result(self.store.recent("#x", 10, before=ms[0].id))), [])
        self.assertEqual(list(self.result(self.store.recent("#x", 2, before=10**9))), ms[4:])

    def test_conversation_both_directions(self) -> None:
        """
        conversation gives the private messages between two nicks, ignoring
        case, sent either way, waiting or delivered, oldest first, with
        offline false; other pairs stay out.
        """
        def private(sender: str, to: str, text: str, offline: bool = False) -> Private:
            m = Private(self.store.next_id(), TS, sender, to, text, offline=offline)
            self.store.add(m)
            return m

        one = private("Alice", "bob", "hi bob")
        private("carol", "bob", "other pair")
        two = private("BOB", "alice", "hi alice", offline=True)
        private("alice", "carol", "other pair too")
        three = private("alice", "Bob", "bye")
        waiting = Private(two.id, two.ts, two.sender, two.to, two.text)
        self.assertEqual(list(self.result(self.store.conversation("alice", "bob", 10))), [one, waiting, three])
        self.assertEqual(list(self.result(self.store.conversation("BOB", "ALICE", 2))), [waiting, three])
        self.assertEqual(list(self.result(self.store.conversation("bob", "alice", 0))), [])
        self.assertEqual(list(self.result(self.store.conversation("alice", "dave", 10))), [])
        self.assertEqual(list(self.result(self.store.waiting("alice"))), [two])

    def test_conversation_before_and_since(self) -> None:
        """
        conversation with before keeps the lower ids; with since, the ones sent at or after it.
        """
        ms = [
            Private(self.store.next_id(), TS + timedelta(seconds=i), "alice" if i % 2 else "bob",
                    "bob" if i % 2 else "alice", f"m{i}")
            for i in range(5)
        ]
        for m in ms:
            self.store.add(m)
        self.assertEqual(list(self.result(self.store.conversation("alice", "bob", 2, before=ms[3].id))), ms[1:3])
        self.assertEqual(
            list(self.result(self.store.conversation("alice", "bob", 10, since=TS + timedelta(seconds=3)))), ms[3:]
        )
        self.assertEqual(
            list(self.result(self.store.conversation(
                "bob", "alice", 10, before=ms[4].id, since=TS + timedelta(seconds=1)
            ))),
            ms[1:4],
        )

    def test_conversation_with_oneself(self) -> None:
        """
        A note to oneself is in the conversation of that nick with itself, once.
        """
        note = Private(self.store.next_id(), TS, "alice", "Alice", "note")
        self.store.add(note)
        self.assertEqual(list(self.result(self.store.conversation("ALICE", "alice", 10))), [note])

    def test_prune_conversations(self) -> None:
        """
        prune drops old private messages from conversations too, counting each once.
        """
        old = TS - timedelta(days=10)
        self.store.add(Private(self.store.next_id(), old, "alice", "bob", "old", offline=True))
        self.store.add(Private(self.store.next_id(), old, "alice", "bob", "old, delivered"))
        new = Private(self.store.next_id(), TS, "bob", "alice", "new")
        self.store.add(new)
        self.assertEqual(self.result(self.store.prune((TS - timedelta(days=5)).timestamp())), 2)
        self.assertEqual(list(self.result(self.store.conversation("alice", "bob", 10))), [new])

    def test_accounts_listed_by_name(self) -> None:
        """
        accounts lists every account sorted by name ignoring case, with its hash and creation time.
        """
        self.assertEqual(self.result(self.store.accounts()), [])
        for name, created in (("carol", 3.5), ("Bob", 2.25), ("alice", 1.0)):
            self.result(self.store.create_account(name, f"hash-{name}", created))
        self.assertEqual(
            self.result(self.store.accounts()),
            [AccountRecord("alice", "hash-alice", 1.0), AccountRecord("Bob", "hash-Bob", 2.25),
             AccountRecord("carol", "hash-carol", 3.5)],
        )

    def test_delete_account_with_waiting(self) -> None:
        """
        delete_account removes the account (ignoring case) and the private
        messages waiting for it, counting them; others' waiting messages stay.
        """
        self.result(self.store.create_account("Bob", "h", 2.0))
        self.result(self.store.create_account("alice", "h", 1.0))
        for i in range(2):
            self.store.add(Private(self.store.next_id(), TS, "alice", "Bob", f"w{i}", offline=True))
        kept = Private(self.store.next_id(), TS, "Bob", "alice", "for alice", offline=True)
        self.store.add(kept)
        self.assertEqual(self.result(self.store.delete_account("BOB")), (AccountRecord("Bob", "h", 2.0), 2))
        self.assertIsNone(self.result(self.store.account("bob")))
        self.assertEqual(list(self.result(self.store.waiting("bob"))), [])
        self.assertEqual(list(self.result(self.store.waiting("alice"))), [kept])
        self.assertEqual(self.result(self.store.accounts()), [AccountRecord("alice", "h", 1.0)])
        self.assertIsNone(self.result(self.store.delete_account("bob")))

    def test_topics_set_replaced_cleared(self) -> None:
        """
        A topic is kept per room ignoring case, with the room spelled as last
        given and its setter; a new one replaces it; an empty text clears it.
        """
        self.assertEqual(self.stored_topics(), {})
        self.result(self.store.set_topic("#Dev", "Release on Friday", "alice"))
        self.result(self.store.set_topic("#ops", "Pager rota", "carol"))
        self.result(self.store.set_topic("#DEV", "Release on Monday", "Bob"))
        self.assertEqual(
            self.stored_topics(),
            {"#dev": ("#DEV", "Release on Monday", "Bob"), "#ops": ("#ops", "Pager rota", "carol")},
        )
        self.result(self.store.set_topic("#dev", "", "alice"))
        self.result(self.store.set_topic("#never", "", "alice"))
        self.assertEqual(self.stored_topics(), {"#ops": ("#ops", "Pager rota", "carol")})

    def test_last_id_follows_ids_given(self) -> None:
        """
        last_id is the highest id given to add or add_offer, whoever allocated
        it, and next_id continues after it.
        """
        self.assertEqual(self.store.last_id(), 0)
        self.store.add(Message(7, TS, "#a", "alice", "from an allocator"))
        self.assertEqual(self.store.last_id(), 7)
        self.store.add_offer(FileOffer(9, "alice", "bob", "a.txt", 3, "ab" * 32, TS))
        self.store.add(Private(8, TS, "alice", "bob", "late, lower id", offline=True))
        self.assertEqual(self.store.last_id(), 9)
        self.assertEqual(self.store.next_id(), 10)
        self.assertEqual(self.store.last_id(), 10)

    def test_ids_from_an_allocator(self) -> None:
        """
        Messages whose ids come from an allocator started at last_id are
        stored and read back as given, without calling next_id.
        """
        first = self.store.last_id() + 1
        ms = [Message(first + 10 * i, TS, "#a", "alice", f"m{i}") for i in range(3)]
        for m in ms:
            self.store.add(m)
        self.assertEqual(list(self.result(self.store.recent("#a", 10))), ms)
        self.assertEqual(self.store.last_id(), first + 20)

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

    def stored_topics(self) -> dict[str, tuple[str, str, str]]:
        """
        The topics as a newly opened store would see them.
        """
        return self.store.topics()

    def stored_moderation(self) -> ModerationRecord:
        """
        The moderation record as a newly opened store would see it.
        """
        return self.store.moderation()

    def test_moderation_kept(self) -> None:
        """
        Admins, account operators per room, bans (replaced per room and target) and room settings are
        kept, and removals and revocations take effect; read_moderation reads the same afresh.
        """
        self.assertEqual(self.stored_moderation(), ModerationRecord())
        guest = BanRecord("#dev", "", "eve", "192.0.2.7", 1_700_000_600.0, "spam", "alice", 1_700_000_000.0)
        account = BanRecord("#dev", "mallory", "", "", None, "", "alice", 1_700_000_001.0)
        self.result(self.store.set_admin("Root", True))
        self.result(self.store.set_admin("gone", True))
        self.result(self.store.set_admin("GONE", False))
        self.result(self.store.set_operator("#Dev", "Alice", True))
        self.result(self.store.set_operator("#ops", "bob", True))
        self.result(self.store.set_operator("#ops", "bob", False))
        self.result(self.store.add_ban(BanRecord("#dev", "", "eve", "", None, "old", "bob", 1_600_000_000.0)))
        self.result(self.store.add_ban(guest))
        self.result(self.store.add_ban(account))
        self.result(self.store.add_ban(BanRecord("#ops", "", "zed", "", None, "", "bob", 1_700_000_002.0)))
        self.result(self.store.remove_ban("#ops", "", "zed"))
        self.result(self.store.set_room_flags("#Dev", RoomFlags(invite_only=True, moderated=True)))
        expected = ModerationRecord(
            frozenset({"root"}), frozenset({("#dev", "alice")}), (guest, account),
            {"#dev": RoomFlags(True, False, True)},
        )
        self.assertEqual(self.result(self.store.read_moderation()), expected)
        self.assertEqual(self.stored_moderation(), expected)


    def stored_device_keys(self) -> dict[str, tuple[DeviceKey, ...]]:
        """
        The device keys as a newly opened store would see them.
        """
        return self.store.device_keys()

    def test_device_keys_kept(self) -> None:
        """
        Device keys are kept per account (ignoring case), oldest first; the same device replaces its
        key, removal takes one (an unknown one is no error), and an account without keys is not listed.
        """
        self.assertEqual(self.stored_device_keys(), {})
        self.assertIsNone(self.result(self.store.add_device_key("Alice", PHONE)))
        self.result(self.store.add_device_key("alice", LAPTOP))
        self.result(self.store.add_device_key("ALICE", PHONE))
        self.result(self.store.add_device_key("bob", PHONE))
        self.result(self.store.remove_device_key("Bob", PHONE.device))
        self.result(self.store.remove_device_key("alice", "no-such-device"))
        self.assertEqual(self.stored_device_keys(), {"alice": (PHONE, LAPTOP)})
        self.result(self.store.remove_device_key("alice", PHONE.device))
        self.assertEqual(self.stored_device_keys(), {"alice": (LAPTOP,)})

    def test_device_keys_go_with_the_account(self) -> None:
        """
        Deleting an account deletes its device keys, and a new account of an old name starts without
        the keys left there; other accounts keep theirs.
        """
        self.result(self.store.create_account("Bob", "h", 2.0))
        self.result(self.store.add_device_key("bob", PHONE))
        self.result(self.store.add_device_key("carol", LAPTOP))
        self.assertEqual(self.result(self.store.delete_account("bob")), (AccountRecord("Bob", "h", 2.0), 0))
        self.result(self.store.add_device_key("dave", PHONE))  # left from an account deleted elsewhere
        self.result(self.store.create_account("Dave", "h", 3.0))
        self.assertEqual(self.stored_device_keys(), {"carol": (LAPTOP,)})

    def test_envelope_kept(self) -> None:
        """
        An encrypted private message keeps its envelope, as it came, while waiting and in the conversation.
        """
        waiting = Private(self.store.next_id(), TS, "alice", "Bob", "", offline=True, e2e=ENVELOPE)
        live = Private(self.store.next_id(), TS, "Bob", "alice", "", e2e=ENVELOPE + "-2")
        self.store.add(waiting)
        self.store.add(live)
        self.assertEqual(list(self.result(self.store.waiting("bob"))), [waiting])
        self.assertEqual(
            [(m.text, m.e2e) for m in self.result(self.store.conversation("bob", "alice", 10))],
            [("", ENVELOPE), ("", ENVELOPE + "-2")],
        )


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
        self.assertEqual(list(self.result(store.recent("#x", 10))), ms[2:])

    def test_conversation_keep_bound(self) -> None:
        """
        Only the last keep private messages of a pair of nicks are kept.
        """
        store = MemoryStore(keep=2)
        ms = [Private(store.next_id(), TS, "alice", "bob", f"m{i}") for i in range(4)]
        for m in ms:
            store.add(m)
        store.add(Private(store.next_id(), TS, "carol", "bob", "other"))
        self.assertEqual(list(self.result(store.conversation("bob", "alice", 10))), ms[2:])

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
        self.addCleanup(self.close_pool)
        self.store: IStore = SQLiteStore(self.pool, self.clock, 0, {}, path=self.path)

    def close_pool(self) -> None:
        if not self.pool.closed:
            self.pool.close()

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

    def stored_topics(self) -> dict[str, tuple[str, str, str]]:
        self.settle()
        store = open_store(os.path.dirname(self.path), self.clock, MemoryReactor())
        store._pool.close()
        return store.topics()

    def stored_moderation(self) -> ModerationRecord:
        self.settle()
        store = open_store(os.path.dirname(self.path), self.clock, MemoryReactor())
        store._pool.close()
        return store.moderation()

    def stored_device_keys(self) -> dict[str, tuple[DeviceKey, ...]]:
        self.settle()
        store = open_store(os.path.dirname(self.path), self.clock, MemoryReactor())
        store._pool.close()
        return store.device_keys()

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
        self.assertEqual(store.last_id(), 41)
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
        found = self.successResultOf(reading)
        self.assertEqual(list(found), [m])

    def test_failed_write_fails_its_group_only(self) -> None:
        """
        A write that fails fails every message of its group and is logged
        once, in one error line naming the database; the next group is written.
        """
        lost = self.store.add(Message(self.store.next_id(), TS, "#a", "alice", "lost"))
        results: list[object] = []
        lost.addBoth(results.append)  # callbacks are added before the group is written
        self.clock.advance(0)
        self.pool.broken = True
        with capturedLogs() as logged:
            self.pool.run()
        [failure] = results
        self.assertIsInstance(failure, Failure)
        self.assertIsInstance(failure.value, sqlite3.OperationalError)  # type: ignore[attr-defined]
        self.assertEqual(
            [(event["log_level"], formatEvent(event)) for event in logged],
            [(LogLevel.error, f"could not store 1 message in {self.path}: disk I/O error; the senders got busy")],
        )
        self.assertEqual(self.flushLoggedErrors(), [])
        self.pool.broken = False
        kept = self.store.add(Message(self.store.next_id(), TS, "#a", "alice", "kept"))
        self.settle()
        self.successResultOf(kept)
        self.assertEqual(self.rows("SELECT text FROM messages"), [("kept",)])

    def test_ids_continue_after_last(self) -> None:
        """
        Ids continue from the last id the database had.
        """
        store = SQLiteStore(self.pool, self.clock, 41, {})
        self.assertEqual(store.last_id(), 41)
        self.assertEqual(store.next_id(), 42)

    def test_topics_written_in_order_with_messages(self) -> None:
        """
        Topic changes join the group of the messages around them, in one
        transaction, applied in the order asked.
        """
        before = self.store.add(Message(1, TS, "#a", "alice", "before"))
        grouped = [
            self.store.set_topic("#A", "first", "alice"),
            self.store.set_topic("#a", "", "bob"),
            self.store.set_topic("#B", "kept", "bob"),
            self.store.set_topic("#b", "replaced", "carol"),
            self.store.add(Message(2, TS, "#a", "alice", "after")),
        ]
        self.assertIs(grouped[-1], before)  # messages share the group's Deferred
        self.clock.advance(0)
        self.assertEqual(len(self.pool.queue), 1)
        self.assertNoResult(before)
        self.pool.run()
        self.assertIsNone(self.successResultOf(before))
        for deferred in grouped:  # the other writes have their own, fired by the same commit
            self.assertIsNone(self.successResultOf(deferred))
        self.assertEqual(
            self.rows("SELECT room_key, room, text, set_by FROM topics"), [("#b", "#b", "replaced", "carol")]
        )
        self.assertEqual(self.rows("SELECT text FROM messages ORDER BY id"), [("before",), ("after",)])

    def test_moderation_written_with_messages(self) -> None:
        """
        Operators, bans and room settings join the group of the messages around them: one
        transaction sharing one Deferred.
        """
        before = self.store.add(Message(1, TS, "#a", "alice", "before"))
        grouped = [
            self.store.set_operator("#a", "alice", True),
            self.store.add_ban(BanRecord("#a", "", "eve", "", None, "", "alice", 1.0)),
            self.store.remove_ban("#a", "", "eve"),
            self.store.set_room_flags("#a", RoomFlags(topic_lock=True)),
            self.store.add(Message(2, TS, "#a", "alice", "after")),
        ]
        self.assertIs(grouped[-1], before)  # messages share the group's Deferred
        self.clock.advance(0)
        self.assertEqual(len(self.pool.queue), 1)
        self.pool.run()
        self.assertIsNone(self.successResultOf(before))
        for deferred in grouped:  # the other writes have their own, fired by the same commit
            self.assertIsNone(self.successResultOf(deferred))
        self.assertEqual(self.rows("SELECT room_key, account_key FROM operators"), [("#a", "alice")])
        self.assertEqual(self.rows("SELECT count(*) FROM bans"), [(0,)])
        self.assertEqual(self.rows("SELECT * FROM room_settings"), [("#a", 0, 1, 0)])

    def test_device_keys_written_with_messages(self) -> None:
        """
        Adding and removing device keys joins the group of the messages around them: one transaction
        sharing one Deferred.
        """
        before = self.store.add(Message(1, TS, "#a", "alice", "before"))
        grouped = [
            self.store.add_device_key("alice", PHONE),
            self.store.add_device_key("alice", LAPTOP),
            self.store.remove_device_key("alice", PHONE.device),
            self.store.add(Message(2, TS, "#a", "alice", "after")),
        ]
        self.assertIs(grouped[-1], before)  # messages share the group's Deferred
        self.clock.advance(0)
        self.assertEqual(len(self.pool.queue), 1)
        self.pool.run()
        self.assertIsNone(self.successResultOf(before))
        for deferred in grouped:  # the other writes have their own, fired by the same commit
            self.assertIsNone(self.successResultOf(deferred))
        self.assertEqual(
            self.rows("SELECT account_key, device, bundle, fingerprint, added FROM device_keys"),
            [("alice", LAPTOP.device, LAPTOP.key, LAPTOP.fingerprint, schema.to_ms(LAPTOP.added))],
        )

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
        self.patch(pooled_store, "_PRUNE_BATCH", 2)
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
                db.execute(
                    "INSERT INTO private (id, ts, sender, recipient, recipient_key, text, action, pending)"
                    " VALUES (12, 0, 'x', 'Bob', 'bob', 't', 0, 1)"
                )
                db.execute("INSERT INTO accounts VALUES ('bob', 'Bob', 'h', 0)")
                db.execute("INSERT INTO topics VALUES ('#dev', '#Dev', 'Release on Friday', 'alice')")
            store = sqlite_store.open_store(data, Clock(), MemoryReactor())
            try:
                self.assertEqual(store.last_id(), 12)
                self.assertEqual(store.next_id(), 13)
                self.assertEqual(store.account_names(), {"bob": "Bob"})
                self.assertEqual(store.topics(), {"#dev": ("#Dev", "Release on Friday", "alice")})
            finally:
                store._pool.close()

    def test_conversation_from_a_version_4_database(self) -> None:
        """
        Private messages stored by a version 4 daemon are found as a conversation after the migration.
        """
        with tempfile.TemporaryDirectory(prefix="chat-store-") as data:
            with closing(sqlite3.connect(schema.path_in(data), isolation_level=None)) as old:
                for step in schema.MIGRATIONS[:4]:
                    for statement in step:
                        old.execute(statement)
                old.execute("PRAGMA user_version=4")
                old.execute("INSERT INTO private VALUES (3, 1700000000000, 'Alice', 'Bob', 'bob', 'hi', 0, 0)")
                old.execute("INSERT INTO private VALUES (4, 1700000001000, 'bob', 'alice', 'alice', 'yo', 1, 1)")
            pools: list[FakePool] = []

            def make_pool(path: str) -> FakePool:
                pools.append(FakePool(path))
                return pools[-1]

            store = sqlite_store.open_store(data, Clock(), MemoryReactor(), make_pool=make_pool)
            try:
                found = store.conversation("ALICE", "bob", 10)
                pools[0].run()
                self.assertEqual(
                    [(m.id, m.sender, m.to, m.text, m.action) for m in self.successResultOf(found)],
                    [(3, "Alice", "Bob", "hi", False), (4, "bob", "alice", "yo", True)],
                )
            finally:
                store._pool.close()

    def test_open_store_without_create(self) -> None:
        """
        Without create, a missing database is a DatabaseError and nothing is
        created; an existing one is opened on the pool make_pool builds for its path.
        """
        with tempfile.TemporaryDirectory(prefix="chat-store-") as data:
            error = self.assertRaises(
                schema.DatabaseError, open_store, data, Clock(), MemoryReactor(), create=False
            )
            self.assertEqual(str(error), f"no database at {schema.path_in(data)}")
            self.assertEqual(os.listdir(data), [])
            schema.open_database(schema.path_in(data)).close()
            pools: list[FakePool] = []

            def make_pool(path: str) -> FakePool:
                pools.append(FakePool(path))
                return pools[-1]

            clock = Clock()
            store = open_store(data, clock, create=False, make_pool=make_pool)
            [pool] = pools
            reading = store.accounts()
            store.close()
            pool.run()
            self.assertEqual(self.successResultOf(reading), [])
            self.assertTrue(pool.closed)

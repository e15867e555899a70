"""
Tests for L{chat.storage.MemoryStore}.
"""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from chat.events import Message
from chat.storage import IStore, MemoryStore

TS = datetime(2026, 11, 21, 14, 2, 3, tzinfo=timezone.utc)


def message(store: MemoryStore, room: str, text: str) -> Message:
    """
    Make a message with the store's next id and add it.
    """
    m = Message(store.next_id(), TS, room, "alice", text)
    store.add(m)
    return m


class MemoryStoreTests(SynchronousTestCase):
    """
    L{MemoryStore}: ids and room history in memory.
    """

    def test_provides_istore(self) -> None:
        """
        MemoryStore provides IStore.
        """
        self.assertTrue(verifyObject(IStore, MemoryStore()))

    def test_ids_increase(self) -> None:
        """
        Ids start at 1 and increase by one per call, whether or not a message is added.
        """
        store = MemoryStore()
        self.assertEqual([store.next_id() for _ in range(3)], [1, 2, 3])
        message(store, "#x", "a")
        self.assertEqual(store.next_id(), 5)

    def test_recent_oldest_first(self) -> None:
        """
        recent gives the last count messages of a room, oldest first.
        """
        store = MemoryStore()
        ms = [message(store, "#x", f"m{i}") for i in range(5)]
        self.assertEqual(list(self.successResultOf(store.recent("#x", 3))), ms[2:])
        self.assertEqual(list(self.successResultOf(store.recent("#x", 5))), ms)
        self.assertEqual(list(self.successResultOf(store.recent("#x", 1))), ms[4:])

    def test_recent_more_than_kept(self) -> None:
        """
        Asking for more messages than a room has gives all of them.
        """
        store = MemoryStore()
        ms = [message(store, "#x", f"m{i}") for i in range(2)]
        self.assertEqual(list(self.successResultOf(store.recent("#x", 500))), ms)

    def test_recent_zero(self) -> None:
        """
        Asking for zero messages gives none.
        """
        store = MemoryStore()
        message(store, "#x", "a")
        self.assertEqual(list(self.successResultOf(store.recent("#x", 0))), [])

    def test_rooms_separate(self) -> None:
        """
        Each room has its own history; an unknown room has none.
        """
        store = MemoryStore()
        a = message(store, "#a", "one")
        b = message(store, "#b", "two")
        self.assertEqual(list(self.successResultOf(store.recent("#a", 10))), [a])
        self.assertEqual(list(self.successResultOf(store.recent("#b", 10))), [b])
        self.assertEqual(list(self.successResultOf(store.recent("#c", 10))), [])

    def test_room_ignoring_case(self) -> None:
        """
        Room names are matched ignoring case, on add and on recent.
        """
        store = MemoryStore()
        a = message(store, "#Dev", "one")
        b = message(store, "#dev", "two")
        self.assertEqual(list(self.successResultOf(store.recent("#DEV", 10))), [a, b])

    def test_keep_bound(self) -> None:
        """
        Only the last keep messages of each room are kept.
        """
        store = MemoryStore(keep=3)
        ms = [message(store, "#x", f"m{i}") for i in range(5)]
        other = message(store, "#y", "y")
        self.assertEqual(list(self.successResultOf(store.recent("#x", 10))), ms[2:])
        self.assertEqual(list(self.successResultOf(store.recent("#y", 10))), [other])

    def test_default_keep_is_history_max(self) -> None:
        """
        By default 500 messages per room are kept, enough for the largest /history.
        """
        store = MemoryStore()
        ms = [message(store, "#x", "m") for _ in range(501)]
        self.assertEqual(list(self.successResultOf(store.recent("#x", 1000))), ms[1:])

# -*- test-case-name: tests.test_interfaces -*-
"""
The id allocator of one daemon (L{IIdAllocator}): message and offer ids
from a counter that starts after the last id its store knows, so ids stay
unique and increasing across restarts (PROTOCOL.md section 5). A cluster
numbers messages in the database as it commits them (L{chat.postgres_store})
and gives offers ids from blocks it reserves there; L{ProvisionalIds} stand
for the ids of a store that numbers messages as it commits them.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from chat.interfaces import IIdAllocator


@implementer(IIdAllocator)
class LocalIds:
    """
    Ids C{last + 1}, C{last + 2}, ...
    """

    __slots__ = ("_last",)

    def __init__(self, last: int = 0) -> None:
        """
        @param last: the highest id already used (the store's C{last_id()}).
        """
        self._last = last

    def next_id(self) -> int:
        self._last += 1
        return self._last

    def reserve_id(self) -> Deferred[int]:
        return succeed(self.next_id())


@implementer(IIdAllocator)
class ProvisionalIds:
    """
    Ids C{-1}, C{-2}, ... for messages that a store numbers as it commits
    them (L{chat.storage.IStore.numbers_messages}): they tell messages
    apart until then and never leave the daemon, since a message is
    published only once committed, under its final id.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def next_id(self) -> int:
        self._last -= 1
        return self._last

    def reserve_id(self) -> Deferred[int]:
        return succeed(self.next_id())

# -*- test-case-name: tests.test_interfaces -*-
"""
The id allocator of one daemon (L{IIdAllocator}): message and offer ids
from a counter that starts after the last id its store knows, so ids stay
unique and increasing across restarts (PROTOCOL.md section 5). A cluster
would allocate from the database's sequence instead.
"""

from __future__ import annotations

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

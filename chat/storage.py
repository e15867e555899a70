# -*- test-case-name: tests.test_storage -*-
"""
Where the domain keeps history: the L{IStore} interface and an in-memory store.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from zope.interface import Interface, implementer

from chat.events import Message


class IStore(Interface):
    """
    The domain's storage: message ids and room history.
    """

    def next_id() -> int:
        """
        Allocate a message id, unique and increasing across the server.
        """

    def add(message: Message) -> None:  # noqa: N805
        """
        Keep a room message in its room's history.
        """

    def recent(room: str, count: int) -> Sequence[Message]:  # noqa: N805
        """
        The last C{count} messages of C{room} (ignoring case), oldest first;
        empty for an unknown room.
        """


@implementer(IStore)
class MemoryStore:
    """
    History in memory: the last C{keep} messages per room, lost on restart.
    """

    def __init__(self, keep: int = 500) -> None:
        self._keep = keep
        self._last_id = 0
        self._rooms: dict[str, deque[Message]] = {}

    def next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def add(self, message: Message) -> None:
        key = message.room.lower()
        history = self._rooms.get(key)
        if history is None:
            history = self._rooms[key] = deque(maxlen=self._keep)
        history.append(message)

    def recent(self, room: str, count: int) -> Sequence[Message]:
        history = self._rooms.get(room.lower())
        if not history or count <= 0:
            return ()
        return list(history)[-count:]

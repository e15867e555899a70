# -*- test-case-name: tests.test_hardening_output -*-
"""
The bound on output queued for all connections together (PROTOCOL.md
section 8, C{--max-output-total}): one L{OutputBudget}, owned by the
L{chat.server.ChatServer} and shared by the outboxes of every front end,
counts the memory their queues hold and disconnects the connections
holding the most when it passes its limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from twisted.logger import Logger

ITEM_OVERHEAD = 128
"""
Bytes counted for each distinct queued C{bytes} object besides its length:
the object's header and this budget's entry for it.
"""

REF_OVERHEAD = 8
"""Bytes counted for each place in a queue (a pointer), whatever it points to."""


class Holder(Protocol):
    """
    What holds queued output: an outbox, as the budget sees it.
    """

    @property
    def queued(self) -> int:
        """
        Bytes of output this holder has queued (its own count, every line
        counted in full even when other holders share it).
        """

    @property
    def draining(self) -> bool:
        """
        Whether its reader has taken output lately (its transport asked for
        more within the last second or so): cut only after those that have not.
        """

    def shed(self) -> None:
        """
        Drop everything queued and disconnect, returning every item with
        L{OutputBudget.release} and calling L{OutputBudget.forget}.
        """


class OutputBudget:
    """
    The memory held by the output queues of all connections, against a limit.

    Output to a room is rendered once and the same C{bytes} object waits in
    the queue of every reader that has not taken it yet, so the budget counts
    what is really held: each distinct object once (its length plus
    L{ITEM_OVERHEAD}), plus L{REF_OVERHEAD} for every place it has in a
    queue. A room-wide burst queued for a thousand readers costs its bytes
    once, not a thousand times; a thousand private backlogs cost each in full.

    Holders report only their slow path, so a connection whose output goes
    straight to its transport costs nothing here: L{take} when items are
    queued because the transport is full, L{release} when they leave the
    queue (written, or dropped), L{forget} when the queue is empty.

    When a L{take} brings the total above L{limit}, holders are cut
    (L{Holder.shed}) until it is back under L{floor}, seven eighths of the
    limit: those that are not draining first, then those holding the most
    (L{Holder.queued}). The margin makes each round of cuts free room for
    a while, and frees a backlog that many readers share (it goes only with
    its last holder) in one round rather than one cut per new line.

    @ivar limit: the budget in bytes (C{--max-output-total}).
    @ivar total: the bytes counted now.
    """

    _log = Logger()

    def __init__(self, limit: int) -> None:
        """
        @param limit: the budget in bytes.
        """
        self.limit = limit
        self.floor = limit - limit // 8
        """Where a round of cuts stops: seven eighths of the limit."""
        self.total = 0
        self._counts: dict[int, int] = {}
        """How many queue places each held object (by C{id}) has; a held object is alive."""
        self._holders: dict[Holder, None] = {}
        self._shedding = False

    @property
    def holders(self) -> int:
        """
        How many holders have something queued.
        """
        return len(self._holders)

    def take(self, holder: Holder, items: Sequence[bytes]) -> None:
        """
        Count C{items}, just appended to C{holder}'s queue, and cut holders
        (possibly C{holder} itself) if the total passes the limit.

        Called by an outbox whose transport is full; the caller keeps every
        item alive in its queue until it gives it back with L{release}.
        """
        counts = self._counts
        added = REF_OVERHEAD * len(items)
        for data in items:
            key = id(data)
            places = counts.get(key, 0)
            if not places:
                added += len(data) + ITEM_OVERHEAD
            counts[key] = places + 1
        self.total += added
        self._holders[holder] = None
        if self.total > self.limit:
            self._shed()

    def release(self, items: Iterable[bytes]) -> None:
        """
        Give back C{items}, each taken before and now gone from a queue
        (written to the transport, or dropped).
        """
        counts = self._counts
        freed = 0
        for data in items:
            key = id(data)
            places = counts[key] - 1
            if places:
                counts[key] = places
                freed += REF_OVERHEAD
            else:
                del counts[key]
                freed += len(data) + ITEM_OVERHEAD + REF_OVERHEAD
        self.total -= freed

    def forget(self, holder: Holder) -> None:
        """
        C{holder}'s queue is empty (or gone): it is no candidate for a cut.
        """
        self._holders.pop(holder, None)

    def _shed(self) -> None:
        """
        Cut holders, the stalled and biggest first, until the total is
        under L{floor}.
        """
        if self._shedding:
            return
        self._shedding = True
        try:
            before, count = self.total, 0
            for holder in sorted(self._holders, key=lambda h: (h.draining, -h.queued)):
                if self.total <= self.floor:
                    break
                count += 1
                holder.shed()
                self._holders.pop(holder, None)
            self._log.warn(
                "output queued for all connections passed {limit} bytes (--max-output-total): "
                "disconnected the {count} holding the most, {freed} bytes freed",
                limit=self.limit, count=count, freed=before - self.total,
            )
        finally:
            self._shedding = False

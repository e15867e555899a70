# -*- test-case-name: tests.test_domain_messages -*-
"""
The order of events: L{Sequencer} publishes what the domain produces to
the L{IBus} in the order it happened, holding back what waits for the
store (a message until its commit, history until its read) and everything
after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat import events
from chat.interfaces import Address, IBus
from chat.storage import Numbered

Delivery = tuple[events.Event, Address]
"""An event and where it goes."""

E = TypeVar("E", bound=events.Event)


class _Commit:
    __slots__ = ("done", "failed", "numbered")

    def __init__(self) -> None:
        self.done = False
        self.failed = False
        self.numbered: Numbered | None = None


class _Entry:
    __slots__ = ("action", "commit", "context", "deliveries", "make", "on_failure", "ready", "then")

    def __init__(
        self,
        ready: bool,
        deliveries: Sequence[Delivery],
        action: Callable[[], object] | None = None,
        commit: _Commit | None = None,
        on_failure: Callable[..., Sequence[Delivery]] | None = None,
        context: tuple[object, ...] = (),
        then: Callable[[Any], object] | None = None,
        make: Callable[[], Sequence[Delivery]] | None = None,
    ):
        self.ready = ready
        self.deliveries = deliveries
        self.action = action
        self.commit = commit
        self.on_failure = on_failure
        self.context = context
        self.then = then
        self.make = make


class Sequencer:
    """
    Publishes to an L{IBus} in the order things happened. Some events
    wait for a L{Deferred}: a message for the commit that stores it, history
    for the read that fetches it. Everything produced after a waiting event
    waits behind it, so every connection sees events in order, and nobody
    sees a message that is not yet stored. With nothing waiting, publishing
    is immediate.

    Messages stored in one group commit share one L{Deferred}: the sequencer
    adds one callback per commit, not per message.
    """

    _log = Logger()

    def __init__(self, bus: IBus) -> None:
        self._bus = bus
        self._queue: deque[_Entry] = deque()
        self._draining = False
        self._last_barrier: Deferred[None] | None = None
        self._last_commit = _Commit()

    def publish(self, event: events.Event, address: Address) -> None:
        """
        Publish C{event} now, or after what is waiting.
        """
        if self._queue:
            self._queue.append(_Entry(True, ((event, address),)))
        else:
            self._bus.publish(event, address)

    def call(self, action: Callable[[], object]) -> None:
        """
        Call C{action} now, or once everything published before is out.
        """
        if self._queue:
            self._queue.append(_Entry(True, (), action))
        else:
            action()

    def publish_later(self, make: Callable[[], Sequence[Delivery]]) -> None:
        """
        Publish what C{make()} returns, made once everything published
        before is out (a room's history for a newcomer, made once the
        messages said before it are numbered and remembered).
        """
        if self._queue:
            self._queue.append(_Entry(True, (), make=make))
        else:
            for event, address in make():
                self._bus.publish(event, address)

    def publish_after(
        self,
        barrier: Deferred[Any],
        event: E,
        address: Address,
        on_failure: Callable[..., Sequence[Delivery]] | None = None,
        *context: object,
        then: Callable[[E], object] | None = None,
    ) -> None:
        """
        Publish C{event} once C{barrier} (a store's commit, L{IStore.add})
        fires: as the store numbered it, when it fires with a L{Numbered};
        then call C{then} with the event as published. If it fails, publish
        what C{on_failure(*context)} returns instead (or nothing): it runs
        only then, in this place of the order. C{barrier} may be shared by
        many events (one commit for a group of messages); the sequencer
        consumes its result.
        """
        commit = self._last_commit
        fresh = barrier is not self._last_barrier
        if fresh:
            commit = self._last_commit = _Commit()
            self._last_barrier = barrier
        self._queue.append(_Entry(False, ((event, address),), None, commit, on_failure, context, then))
        if fresh:
            barrier.addBoth(self._committed, commit)
        elif commit.done:
            self._drain()

    def _committed(self, result: object, commit: _Commit) -> None:
        commit.failed = isinstance(result, Failure)
        if isinstance(result, Numbered):
            commit.numbered = result
        commit.done = True
        self._drain()

    def publish_when(self, pending: Deferred[Sequence[Delivery]]) -> None:
        """
        Publish what C{pending} produces (events and their addresses), in
        this place of the order, once it does. A failure is logged and
        publishes nothing: callers turn expected failures into events.
        """
        entry = _Entry(False, ())
        self._queue.append(entry)
        pending.addBoth(self._settle_when, entry)

    def _settle_when(self, result: Sequence[Delivery] | Failure, entry: _Entry) -> None:
        if isinstance(result, Failure):
            self._log.failure("could not produce events", result)
        else:
            entry.deliveries = result
        entry.ready = True
        self._drain()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            queue = self._queue
            publish = self._bus.publish
            while queue:
                entry = queue[0]
                commit = entry.commit
                if commit is None:
                    if not entry.ready:
                        break
                    deliveries = entry.deliveries if entry.make is None else entry.make()
                elif not commit.done:
                    break
                elif commit.failed:
                    deliveries = () if entry.on_failure is None else entry.on_failure(*entry.context)
                else:
                    deliveries = entry.deliveries
                    numbered = commit.numbered
                    if numbered is not None:
                        deliveries = [(numbered.stored(event), address) for event, address in deliveries]
                    if entry.then is not None:
                        for event, _ in deliveries:
                            entry.then(event)
                queue.popleft()
                for event, address in deliveries:
                    publish(event, address)
                if entry.action is not None:
                    entry.action()
        finally:
            self._draining = False

# -*- test-case-name: tests.test_cluster_order -*-
"""
The order in which a daemon of a cluster delivers (PROTOCOL.md section 13:
"every event reaches every participant once, in the order of its id within
a room, also across a Redis restart").

Messages are numbered as they are committed to the cluster's database
(L{chat.postgres_store.number}): under one row lock, so ids follow the
commits of every daemon, and each message carries C{after}, the id
committed just before it. When a daemon learns of message C{N}, every
message up to C{N} is committed, so anything it has not seen below C{N}
can be read from the database.

L{Orderer} gets everything a daemon delivers: its own events and each
other daemon's, each origin in the order it published them. It delivers
each origin's events in that order, and a new message only once the
message before it (C{after}) was delivered. When a message waits for one
that has not arrived within L{WAIT} seconds (its publication was lost with
Redis, or its daemon died between the commit and the publication), the
missing ones are read from the database by id and delivered, once; so
are those committed while Redis was away, when it is back (L{catch_up}).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat import events
from chat.cluster.wire import Carried
from chat.interfaces import Address, ToRoom, ToUsers

WAIT = 0.25
"""Seconds a message may wait for the one before it before that one is read from the database."""

LIMIT = 50_000
"""Events held at most while waiting: beyond, the missing messages are read at once."""

FILLED = 10_000
"""Ids read from the database remembered, to drop their publication if it arrives after all."""

Numbered = events.Message | events.Private

LOCAL: Hashable = ()
"""The origin of this daemon's own events."""


class MessageLog(Protocol):
    """
    Where the messages are numbered: a L{chat.postgres_store.PostgresStore}.
    """

    last_message: int
    """The id of the last message committed when it was opened."""

    def messages_between(self, after: int, before: int) -> Deferred[list[Numbered]]:
        """
        The messages committed with an id above C{after} and below C{before}, in id order.
        """

    def last_committed(self) -> Deferred[int]:
        """
        The id of the last message committed now.
        """


def address_of(message: Numbered) -> Address:
    """
    Where a message read from the database goes: a room message to the
    room, a private message to its recipient and its sender (to its sender
    alone when it waited for the recipient).
    """
    if isinstance(message, events.Message):
        return ToRoom(message.room.lower())
    if message.offline:
        return ToUsers((message.sender.lower(),))
    return ToUsers((message.to.lower(), message.sender.lower()))


class Orderer:
    """
    Delivers each origin's events in order, and new messages in id order
    (see the module's docstring).

    @ivar upto: every message up to this id has been delivered (or was
        committed before this daemon started).
    @ivar read: messages read from the database because their publication
        did not arrive in time.
    """

    _log = Logger()

    def __init__(
        self,
        log: MessageLog,
        clock: IReactorTime,
        deliver: Callable[[Hashable | None, Carried, Address], None],
        wait: float = WAIT,
        limit: int = LIMIT,
    ) -> None:
        """
        @param deliver: called with an origin (C{None} for a message read
            from the database), an event and its address, to deliver it here.
        @param wait: see L{WAIT}.
        @param limit: see L{LIMIT}.
        """
        self.upto = log.last_message
        self.read = 0
        self._log_source = log
        self._clock = clock
        self._deliver = deliver
        self._wait, self._limit = wait, limit
        self._queues: dict[Hashable, deque[tuple[Carried, Address]]] = {}
        self._held = 0
        self._timer: IDelayedCall | None = None
        self._reading = False
        self._filled: set[int] = set()
        self._filled_order: deque[int] = deque()
        self._limit_logged = False

    @property
    def held(self) -> int:
        """
        Events waiting behind a message not yet delivered.
        """
        return self._held

    def is_new(self, event: Carried) -> bool:
        """
        Whether C{event} is a message not delivered yet (rather than one
        replayed: history, offline messages at login, or none at all).
        """
        return isinstance(event, (events.Message, events.Private)) and event.id > self.upto

    def arrive(self, origin: Hashable, event: Carried, address: Address) -> None:
        """
        Deliver C{event} from C{origin} now, or once what it waits for is
        delivered. Another daemon's message whose id was read from the
        database already is dropped.
        """
        if origin != LOCAL and isinstance(event, (events.Message, events.Private)) and event.id in self._filled:
            self._filled.discard(event.id)
            return
        queue = self._queues.get(origin)
        if queue:
            queue.append((event, address))
            self._held += 1
            if self._held > self._limit:
                self._over_limit()
            return
        if self._ready(event):
            self._pass(origin, event, address)
            if self._queues:
                self._drain()  # it may be what another origin's message waits for
            return
        self._queues[origin] = deque([(event, address)])
        self._held += 1
        self._blocked()

    def _ready(self, event: Carried) -> bool:
        return not self.is_new(event) or event.after <= self.upto  # type: ignore[union-attr]

    def _pass(self, origin: Hashable | None, event: Carried, address: Address) -> None:
        if isinstance(event, (events.Message, events.Private)) and event.id > self.upto:
            self.upto = event.id
        try:
            self._deliver(origin, event, address)
        except Exception:
            self._log.failure("delivering {event!r}", event=event)

    def _drain(self) -> None:
        """
        Deliver every queue's events that no longer wait, until none does.
        """
        progress = True
        while progress:
            progress = False
            for origin in list(self._queues):
                queue = self._queues[origin]
                while queue and self._ready(queue[0][0]):
                    event, address = queue.popleft()
                    self._held -= 1
                    self._pass(origin, event, address)
                    progress = True
                if not queue:
                    del self._queues[origin]
        if self._queues:
            self._blocked()
        elif self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def catch_up(self) -> None:
        """
        Read and deliver every message committed since the last one
        delivered here (once Redis is back after an outage): those no
        later message has shown missing yet.
        """
        if self._reading:
            return  # a read is under way; what it misses, the next message shows
        self._reading = True
        asking = self._log_source.last_committed()
        asking.addCallbacks(self._last_known, self._not_filled)

    def _last_known(self, last: int) -> None:
        self._reading = False
        if last <= self.upto:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._reading = True
        reading = self._log_source.messages_between(self.upto, last + 1)
        reading.addCallbacks(self._filled_in, self._not_filled, callbackArgs=(last,))

    def _blocked(self) -> None:
        if self._timer is None and not self._reading:
            self._timer = self._clock.callLater(self._wait, self._fill)

    def _over_limit(self) -> None:
        if not self._limit_logged:
            self._limit_logged = True
            self._log.warn("{held} events wait for missing messages: reading them now", held=self._held)
        if self._timer is not None:
            self._timer.cancel()
        self._fill()

    def _fill(self) -> None:
        """
        Read from the database the messages the queues' first messages wait for.
        """
        self._timer = None
        waiting = [queue[0][0] for queue in self._queues.values() if queue]
        if not waiting or self._reading:
            return
        target = min(event.after for event in waiting)  # type: ignore[union-attr]
        if target <= self.upto:
            self._drain()
            return
        self._reading = True
        reading = self._log_source.messages_between(self.upto, target + 1)
        reading.addCallbacks(self._filled_in, self._not_filled, callbackArgs=(target,))

    def _filled_in(self, messages: Sequence[Numbered], target: int) -> None:
        self._reading = False
        missed = [message for message in messages if message.id > self.upto]  # others arrived meanwhile
        if missed:
            self._log.info(
                "read {count} missed messages from the database (ids {first} to {last})",
                count=len(missed), first=missed[0].id, last=missed[-1].id,
            )
        for message in missed:
            self.read += 1
            self._remember(message.id)
            self._pass(None, message, address_of(message))
        self.upto = max(self.upto, target)
        self._limit_logged = False
        self._drain()

    def _not_filled(self, failure: Failure) -> None:
        self._reading = False
        self._log.error("cannot read missing messages from the database: {error}", error=failure.getErrorMessage())
        self._blocked()

    def _remember(self, message_id: int) -> None:
        self._filled.add(message_id)
        self._filled_order.append(message_id)
        while len(self._filled_order) > FILLED:
            self._filled.discard(self._filled_order.popleft())

# -*- test-case-name: tests.test_protocol -*-
"""
The only writer of a connection's transport: a push producer that batches
the lines of one reactor turn into one write, queues while the transport is
paused, and bounds what a slow reader can cost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import (
    IDelayedCall,
    IPushProducer,
    IReactorTime,
    ITransport,
)
from zope.interface import implementer


class Batch:
    """
    The outboxes written to since the last flush, shared by every
    connection of a factory.

    A fan-out to N receivers only appends to N lists; L{flush} then writes
    each outbox's lines to its transport in one C{write}, so a receiver
    costs one transport write (and one system call) per reactor turn, not
    per message. The protocol flushes at the end of each entry point
    (C{dataReceived}, C{connectionLost}, shutdown); a C{callLater(0)} is the
    safety net for any other path.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._dirty: list[Outbox] = []
        self._call: IDelayedCall | None = None

    def add(self, outbox: Outbox) -> None:
        """
        Remember that C{outbox} has lines pending.
        """
        self._dirty.append(outbox)
        if self._call is None:
            self._call = self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """
        Write every pending line, in order, to its transport.
        """
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()
        while self._dirty:
            dirty, self._dirty = self._dirty, []
            for outbox in dirty:
                outbox.flush()


FLUSH_SIZE = 16 * 1024
"""Bytes an outbox gathers in one turn before writing them without waiting for the turn's end."""


@implementer(IPushProducer)
class Outbox:
    """
    Writes rendered events to a transport, in order.

    Lines wait in the L{Batch} until it is flushed. The transport pauses this
    producer when its own buffer is full (about 64 KiB for TCP); lines are
    then queued here. When the queue would pass C{limit} bytes (PROTOCOL.md
    section 8, 4 MiB by default) the queue is dropped and C{on_overflow} is
    called once, to disconnect the reader, so memory per connection stays
    bounded.
    """

    def __init__(
        self,
        transport: ITransport,
        batch: Batch,
        limit: int,
        on_overflow: Callable[[], None],
    ) -> None:
        self._transport = transport
        self._batch = batch
        self._limit = limit
        self._on_overflow = on_overflow
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._paused = False
        self._closed = False
        transport.registerProducer(self, True)  # type: ignore[attr-defined]

    def write(self, data: bytes) -> None:
        """
        Add C{data} (complete lines, CR LF included) to what the next flush
        writes. Does nothing once finished or overflowed, or for no bytes.
        """
        if self._closed or not data:
            return
        if not self._pending:
            self._batch.add(self)
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= FLUSH_SIZE and not (self._paused or self._queue):
            # A burst (a commit releasing many messages) goes out in chunks:
            # no buffer grows to megabytes only to be freed at the turn's end.
            self.flush()
            return
        # While the transport is not paused the next flush writes it all; a
        # reader that does not keep up is paused, and then the cap applies.
        if (self._paused or self._queue) and self._queued + self._pending_size > self._limit:
            self._overflow()

    def finish(self, data: bytes) -> None:
        """
        Write C{data} (the C{bye}) as the last bytes: later writes are dropped,
        while what is pending or queued still drains.
        """
        self.write(data)
        self._closed = True

    def flush(self) -> None:
        """
        Called by the L{Batch}: write the pending lines as one chunk, or queue
        them while the transport is paused.
        """
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_size = 0
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        if self._paused or self._queue:
            self._queue.append(data)
            self._queued += len(data)
            if self._queued > self._limit:
                self._overflow()
        else:
            self._transport.write(data)

    def _overflow(self) -> None:
        self._pending = []
        self._pending_size = 0
        self._queue.clear()
        self._queued = 0
        self._closed = True
        self._on_overflow()

    def pauseProducing(self) -> None:
        """
        Called by the transport when its buffer is full.
        """
        self._paused = True

    def resumeProducing(self) -> None:
        """
        Called by the transport when its buffer has drained: writes queued
        lines until the transport pauses again.
        """
        self._paused = False
        queue = self._queue
        while queue and not self._paused:
            data = queue.popleft()
            self._queued -= len(data)
            self._transport.write(data)

    def stopProducing(self) -> None:
        """
        Called by the transport when the connection is gone: drop what waits.
        """
        self._closed = True
        self._pending = []
        self._pending_size = 0
        self._queue.clear()
        self._queued = 0

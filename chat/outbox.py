# -*- test-case-name: tests.test_protocol -*-
"""
The only writer of a connection's transport: a push producer that queues
while the transport is paused and bounds what a slow reader can cost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IPushProducer, ITransport
from zope.interface import implementer


@implementer(IPushProducer)
class Outbox:
    """
    Writes rendered events to a transport, in order.

    The transport pauses this producer when its own buffer is full (about
    64 KiB for TCP); lines are then queued here. When the queue would pass
    C{limit} bytes (PROTOCOL.md section 8, 4 MiB by default) the queue is
    dropped and C{on_overflow} is called once, to disconnect the reader, so
    memory per connection stays bounded.
    """

    def __init__(
        self, transport: ITransport, limit: int, on_overflow: Callable[[], None]
    ) -> None:
        self._transport = transport
        self._limit = limit
        self._on_overflow = on_overflow
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._paused = False
        self._closed = False
        transport.registerProducer(self, True)  # type: ignore[attr-defined]

    @property
    def queued(self) -> int:
        """
        Bytes waiting in this outbox (not counting the transport's buffer).
        """
        return self._queued

    def write(self, data: bytes) -> None:
        """
        Send C{data} (complete lines, CR LF included), or queue it while the
        transport is paused. Does nothing once finished or overflowed.
        """
        if not self._closed:
            self._write(data)

    def finish(self, data: bytes) -> None:
        """
        Write C{data} (the C{bye}) as the last bytes: later writes are dropped,
        while what is queued still drains.
        """
        self.write(data)
        self._closed = True

    def _write(self, data: bytes) -> None:
        if self._paused or self._queue:
            if not data:
                return
            self._queue.append(data)
            self._queued += len(data)
            if self._queued > self._limit:
                self._overflow()
        else:
            self._transport.write(data)

    def _overflow(self) -> None:
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
        Called by the transport when the connection is gone: drop the queue.
        """
        self._closed = True
        self._queue.clear()
        self._queued = 0

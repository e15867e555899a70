# -*- test-case-name: tests.test_outbox,tests.test_hardening_output -*-
"""
The only writer of a connection's transport: a push producer that batches
the lines of one reactor turn into one write, queues while the transport is
paused, bounds what a slow reader can cost (PROTOCOL.md section 8), and
streams files from disk between its lines (section 6).
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Callable
from typing import IO

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
    ISystemHandle,
    ITransport,
)
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from chat.budget import OutputBudget
from chat.counts import COUNTS
from chat.interfaces import Outgoing, Renderer
from chat.render import render_text


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
        self.clock = clock
        """The reactor's clock, which the outboxes judge their readers by too."""
        self.dirty: list[Outbox] = []
        """
        The outboxes with lines pending, in the order they were written to:
        an outbox appends itself (after L{arm} when the list is empty). The
        list is replaced by each L{flush}: read it anew every time.
        """
        self._call: IDelayedCall | None = None

    def arm(self) -> None:
        """
        Make sure a flush comes at the end of this reactor turn, for writes
        made outside the protocol's entry points (a commit that completes
        in a thread's callback, say).
        """
        if self._call is None:
            self._call = self.clock.callLater(0, self.flush)

    def add(self, outbox: Outbox) -> None:
        """
        Remember that C{outbox} has lines pending.
        """
        self.arm()
        self.dirty.append(outbox)

    def flush(self) -> None:
        """
        Write every pending line, in order, to its transport.
        """
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()
        while self.dirty:
            dirty, self.dirty = self.dirty, []
            for outbox in dirty:
                outbox.flush()


FLUSH_SIZE = 16 * 1024
"""
Bytes an outbox gathers in one turn before writing them without waiting for
the turn's end, and at most in one write from its queue.
"""

STALL_TIMEOUT = 10.0
"""
Seconds a queue may stay over the outbox's limit while its transport takes
nothing (it neither drains its buffer nor pulls a file's bytes) before the
reader is disconnected.
"""

CEILING = 4
"""
How many times its limit a queue may hold at all: past it the reader is
disconnected at once, drained or not (one that reads, but slower than its
output comes).
"""

DRAINING = 1.0
"""
Seconds after its transport last took bytes during which an outbox counts
as draining, which puts it last in line when the L{OutputBudget} cuts.
"""


def direct_send(transport: ITransport) -> Callable[[bytes], int] | None:
    """
    The C{send} of a plain TCP transport's socket, for an L{Outbox} to write
    through while the transport itself holds no bytes; C{None} for any other
    transport (TLS, a test's C{StringTransport}).

    A write through Twisted's transport costs a buffer, two C{epoll_ctl}
    calls and a reactor dispatch besides the C{send}: about 13 us per
    connection against 4.7 us for the C{send} alone (issue 17). So the
    outbox sends itself, and hands the transport only what the socket did
    not take.
    """
    if ISSLTransport.providedBy(transport) or not ISystemHandle.providedBy(transport):
        return None
    handle = transport.getHandle()
    if not isinstance(handle, socket.socket):
        return None
    send: Callable[[bytes], int] = handle.send
    return send


class Verbatim(Outgoing):
    """
    Bytes that are the same in every format (a telnet answer, a rendered
    line), as an L{Outgoing} for L{Outbox.deliver}.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        super().__init__(None)
        self.data = data

    def __missing__(self, renderer: Renderer) -> bytes:
        return self.data


class _Sender(FileSender):
    """
    Twisted's file producer, reading 64 KiB a time (its default is 16 KiB):
    a quarter of the reactor turns for the same bytes. Each pull by the
    transport tells the outbox that its reader is taking bytes.
    """

    CHUNK_SIZE = 64 * 1024

    def __init__(self, on_pull: Callable[[], None]) -> None:
        self._on_pull = on_pull

    @override
    def resumeProducing(self) -> None:
        self._on_pull()
        super().resumeProducing()


class _Stream:
    """
    A file waiting in an outbox's queue: its bytes go out when it reaches
    the head.
    """

    __slots__ = ("source", "done")

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.done: Deferred[None] = Deferred()


def _ignore() -> None:
    """
    What an outbox calls on overflow once it has called its C{on_overflow}.
    """


@implementer(IPushProducer)
class Outbox:
    """
    Writes rendered events to a transport, in order.

    Lines wait in the L{Batch} until it is flushed. On plain TCP the flush
    sends them to the socket itself (L{direct_send}) and gives the transport
    only what the socket did not take; this outbox is then paused until the
    transport has written that. It is registered as a pull producer there,
    so that the transport says exactly when its buffer is empty (by calling
    L{resumeProducing}), and a direct C{send} never overtakes its bytes.
    Over TLS lines go through the transport, which pauses this (push)
    producer when its own buffer is full (about 64 KiB). While paused, lines
    are queued here, each as the C{bytes} object every recipient of that
    format shares, and counted in the server's L{OutputBudget}.

    A slow reader is judged over time (PROTOCOL.md section 8): a burst may
    take the queue past C{limit} (C{--max-output}, 4 MiB by default) as long
    as the reader drains it. The queue is dropped and C{on_overflow} called
    once, to disconnect the reader, when
      - the queue has stayed over C{limit} while the transport took nothing
        for L{STALL_TIMEOUT} seconds (a reader that does not read);
      - the queue would pass L{CEILING} times C{limit} (a reader that reads
        more slowly than its output comes), checked when a turn's lines are
        queued and whenever they reach L{FLUSH_SIZE}, so that the fan-out
        path does no more than append;
      - the budget, over its own limit, cuts the biggest holders (L{shed}).

    A file (L{stream}) takes its place in that order: while Twisted's
    L{FileSender} sends it, pulled by the transport as its buffer drains,
    this producer is unregistered and every line written meanwhile is
    queued, to go out after the file's last byte.
    """

    __slots__ = (
        "renderer", "_transport", "_batch", "_clock", "_limit", "_on_overflow", "_budget", "_pending",
        "_pending_size", "_queue", "_queued", "_paused", "_closed", "_taking", "_judge_call", "overflow_reason",
        "streaming", "_direct",
    )

    def __init__(
        self,
        transport: ITransport,
        batch: Batch,
        limit: int,
        on_overflow: Callable[[], None],
        renderer: Renderer = render_text,
        budget: OutputBudget | None = None,
    ) -> None:
        """
        @param limit: bytes the queue may hold for long (C{--max-output}).
        @param on_overflow: disconnects the reader; called at most once.
        @param renderer: the connection's format, in which L{deliver}
            renders events; a protocol sets L{renderer} when it changes.
        @param budget: the server's budget for all queued output; without
            one, a budget of this outbox's own with no limit.
        """
        self.renderer = renderer
        self._transport = transport
        self._batch = batch
        self._clock = batch.clock
        self._limit = limit
        self._on_overflow = on_overflow
        self._budget = budget if budget is not None else OutputBudget(1 << 62)
        self._pending: list[bytes] | None = None
        """The lines of this turn; C{None} when there are none."""
        self._pending_size = 0
        self._queue: deque[bytes | _Stream] | None = None
        """What waits for the transport; C{None} when nothing does (most connections, most of the time)."""
        self._queued = 0
        self._paused = False
        self._closed = False
        self._taking = 0.0
        """When the transport last took bytes: it drained, pulled a file chunk, or filled up."""
        self._judge_call: IDelayedCall | None = None
        self.overflow_reason = ""
        """Why C{on_overflow} was called, for the log: which rule cut the reader."""
        self.streaming = False
        """Whether a file is being sent: the transport then belongs to it."""
        self._direct = direct_send(transport)
        # A pull producer is resumed at once, and then whenever the
        # transport's buffer has drained.
        transport.registerProducer(self, self._direct is None)  # type: ignore[attr-defined]

    def stop_direct(self) -> None:
        """
        Write through the transport from now on: before C{startTLS}, after
        which the socket carries TLS records.
        """
        if self._direct is None:
            return
        self._direct = None
        if self.streaming:
            return  # registered again, as a push producer, after the file
        transport = self._transport
        transport.unregisterProducer()  # type: ignore[attr-defined]
        transport.registerProducer(self, True)  # type: ignore[attr-defined]
        if self._paused:
            # Lines queued behind bytes the transport holds follow them there.
            self._drain()

    def _write(self, data: bytes) -> None:
        """
        Send C{data} to the socket directly if this outbox may, and give
        the transport what the socket did not take, then wait (paused) until
        the transport has written it; else write it all to the transport.
        """
        COUNTS.bytes_out += len(data)
        send = self._direct
        if send is None:
            self._transport.write(data)
            return
        try:
            sent = send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            # The connection broke: the transport finds out when it writes,
            # and closes it the usual way.
            sent = 0
        if sent == len(data):
            return
        self._transport.write(data[sent:])
        self._paused = True
        self._taking = self._clock.seconds()

    def _waiting(self) -> deque[bytes | _Stream]:
        """
        The queue, created when something first waits in it.
        """
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        return queue

    def write(self, data: bytes) -> None:
        """
        Add C{data} (complete lines, CR LF included, or telnet bytes) to
        what the next flush writes, as L{deliver} does for an event.
        """
        self.deliver(Verbatim(data))

    def deliver(self, outgoing: Outgoing) -> None:
        """
        Add an event, rendered in this outbox's format (L{renderer}, once
        for all recipients of that format), to what the next flush writes.
        Called by the bus as the participant's C{deliver}: the fan-out path,
        one call per recipient. Does nothing once finished or overflowed,
        or for no bytes.
        """
        data = outgoing[self.renderer]
        if self._closed or not data:
            return
        pending = self._pending
        if pending is None:
            # The fan-out path: most outboxes only append themselves.
            dirty = self._batch.dirty
            if not dirty:
                self._batch.arm()
            dirty.append(self)
            self._pending = [data]
            size = len(data)
        else:
            pending.append(data)
            size = self._pending_size + len(data)
        self._pending_size = size
        if size >= FLUSH_SIZE:
            self._pending_full()

    def _pending_full(self) -> None:
        """
        The lines of this turn reached L{FLUSH_SIZE}. A burst (a commit
        releasing many messages) goes out in chunks: no buffer grows to
        megabytes only to be freed at the turn's end. A reader that does
        not keep up is paused: the ceiling applies (here, and at each
        flush).
        """
        if not (self._paused or self._queue):
            self.flush()
        elif self._queued + self._pending_size > CEILING * self._limit:
            self._overflow(f"its queue passed {CEILING} times --max-output")

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
        size = self._pending_size
        self._pending = None
        self._pending_size = 0
        if self._paused or self._queue:
            # The slow path: queue the shared objects themselves, no copy.
            if self._queued + size > CEILING * self._limit:
                self._overflow(f"its queue passed {CEILING} times --max-output")
                return
            self._waiting().extend(pending)
            self._queued += size
            self._budget.take(self, pending)  # may cut this very outbox
            if self._queued > self._limit and self._judge_call is None and not self._closed:
                self._judge_call = self._clock.callLater(
                    max(0.0, self._taking + STALL_TIMEOUT - self._clock.seconds()), self._judge
                )
        else:
            self._write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _judge(self) -> None:
        """
        L{STALL_TIMEOUT} after the transport last took bytes, with the queue
        over the limit: disconnect the reader if nothing was taken since,
        else look again that long after the last take.
        """
        self._judge_call = None
        if self._closed or self._queued <= self._limit:
            return
        due = self._taking + STALL_TIMEOUT
        now = self._clock.seconds()
        if now >= due:
            self._overflow(f"its queue stayed over --max-output for {STALL_TIMEOUT:g} s with nothing read")
        else:
            self._judge_call = self._clock.callLater(due - now, self._judge)

    def _overflow(self, why: str) -> None:
        self.overflow_reason = why
        self._closed = True
        self._pending = None
        self._pending_size = 0
        self._drop_queue()
        on_overflow, self._on_overflow = self._on_overflow, _ignore
        on_overflow()

    @property
    def queued(self) -> int:
        """
        Bytes waiting in the queue (lines only, each counted in full; a
        file waiting counts nothing), for the L{OutputBudget}.
        """
        return self._queued

    @property
    def draining(self) -> bool:
        """
        Whether the transport is taking bytes, or took some within the last
        L{DRAINING} seconds, for the L{OutputBudget}.
        """
        return not self._paused or self._clock.seconds() - self._taking < DRAINING

    def shed(self) -> None:
        """
        Called by the L{OutputBudget} to cut this connection: drop the queue
        and call C{on_overflow}.
        """
        self._overflow("the output queued for all connections passed --max-output-total")

    def pauseProducing(self) -> None:  # noqa: N802 - IPushProducer's name
        """
        Called by the transport when its buffer is full: it took bytes up to
        now.
        """
        self._paused = True
        self._taking = self._clock.seconds()

    def resumeProducing(self) -> None:  # noqa: N802 - IPushProducer's name
        """
        Called by the transport when its buffer has drained: writes queued
        lines, in writes of about L{FLUSH_SIZE} bytes, until the transport
        pauses again (or the socket is full). A finished outbox that has
        written everything then unregisters, so that a closing transport
        may close.
        """
        self._drain()
        if self._closed and not self._paused and self._direct is not None and not self.streaming:
            self._transport.unregisterProducer()  # type: ignore[attr-defined]

    def _drain(self) -> None:
        self._paused = False
        queue = self._queue
        if not queue:
            return
        self._taking = self._clock.seconds()
        budget = self._budget
        while queue and not self._paused:
            head = queue[0]
            if isinstance(head, _Stream):
                queue.popleft()
                if not queue:
                    budget.forget(self)
                self._send(head)
                return
            chunk: list[bytes] = []
            size = 0
            while size < FLUSH_SIZE:
                chunk.append(head)
                size += len(head)
                queue.popleft()
                if not queue:
                    break
                head = queue[0]
                if isinstance(head, _Stream):
                    break
            self._queued -= size
            budget.release(chunk)
            self._write(chunk[0] if len(chunk) == 1 else b"".join(chunk))
        if not queue:
            budget.forget(self)
            self._queue = None

    def stopProducing(self) -> None:  # noqa: N802 - IPushProducer's name
        """
        Called by the transport when the connection is gone: drop what waits.
        """
        self._closed = True
        self._pending = None
        self._pending_size = 0
        self._drop_queue()

    def _drop_queue(self) -> None:
        if self._judge_call is not None:
            if self._judge_call.active():
                self._judge_call.cancel()
            self._judge_call = None
        queue = self._queue or ()
        self._queue = None
        lines = [item for item in queue if not isinstance(item, _Stream)]
        for item in queue:
            if isinstance(item, _Stream):
                item.source.close()
                item.done.errback(Failure(ConnectionError("the connection closed before the file was sent")))
        self._queued = 0
        self._budget.release(lines)
        self._budget.forget(self)

    def _took(self) -> None:
        """
        The transport pulled a chunk of the file being sent.
        """
        self._taking = self._clock.seconds()

    # Files

    def stream(self, header: bytes, source: IO[bytes]) -> Deferred[None]:
        """
        Write C{header} (the C{file} line), then the bytes of C{source} from
        its current position to its end, after the lines written before;
        lines written after wait for its last byte. C{source} is closed
        once sent or dropped.

        @return: fires once the last byte is handed to the transport; fails
            if the connection closes first.
        """
        stream = _Stream(source)
        if self._closed:
            source.close()
            stream.done.errback(Failure(ConnectionError("the connection is closing")))
            return stream.done
        self.write(header)
        self.flush()
        queue = self._waiting()
        queue.append(stream)
        if not self._paused and len(queue) == 1:
            self._drain()
        return stream.done

    def _send(self, stream: _Stream) -> None:
        """
        Hand the transport to a L{FileSender} for C{stream}.
        """
        self.streaming = True
        self._paused = True  # lines queue up until the file is sent
        transport = self._transport
        transport.unregisterProducer()  # type: ignore[attr-defined]
        sending = _Sender(self._took).beginFileTransfer(stream.source, transport)
        sending.addBoth(self._sent, stream)

    def _sent(self, result: object, stream: _Stream) -> None:
        stream.source.close()
        self.streaming = False
        if isinstance(result, Failure):
            # The transport stopped the sender: the connection is gone.
            self.stopProducing()
            stream.done.errback(result)
            return
        # The transport has written the file's last byte: a file sender sees
        # the end of its file only when the transport asks it for more.
        self._transport.registerProducer(self, self._direct is None)  # type: ignore[attr-defined]
        stream.done.callback(None)
        self._drain()

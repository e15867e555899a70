"""
Tests for L{chat.outbox}: write batching per reactor turn, chunking, the
queue while the transport is paused, and files between lines. The
slow-reader rules and the output budget are in L{tests.test_hardening_output}.
Plain TCP's direct sends are tested over a real socket pair.
"""

from __future__ import annotations

import io
import socket

from twisted.internet.interfaces import ISSLTransport, ISystemHandle
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from typing_extensions import override
from zope.interface import directlyProvides, implementer

from chat.outbox import CEILING, FLUSH_SIZE, STALL_TIMEOUT, Batch, Outbox


class WriteRecorder(StringTransport):
    """
    A L{StringTransport} that also keeps each C{write} apart.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    @override
    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)


class OutboxTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.batch = Batch(self.clock)
        self.transport = StringTransport()
        self.overflows: list[None] = []
        self.outbox = Outbox(self.transport, self.batch, 1000 * FLUSH_SIZE, lambda: self.overflows.append(None))

    def test_lines_wait_for_the_turn_end(self) -> None:
        """
        Lines written in one turn reach the transport together when the batch flushes.
        """
        self.outbox.write(b"one\r\n")
        self.outbox.write(b"two\r\n")
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(0)
        self.assertEqual(self.transport.value(), b"one\r\ntwo\r\n")

    def test_burst_written_in_chunks(self) -> None:
        """
        Once an outbox holds FLUSH_SIZE bytes in one turn it writes them
        without waiting for the turn's end; the rest follows at the flush, in order.
        """
        line = b"x" * 100 + b"\r\n"
        count = FLUSH_SIZE // len(line) + 1
        for _ in range(count):
            self.outbox.write(line)
        written = self.transport.value()
        self.assertEqual(len(written), count * len(line))
        self.outbox.write(b"last\r\n")
        self.assertEqual(self.transport.value(), written)
        self.batch.flush()
        self.assertEqual(self.transport.value(), line * count + b"last\r\n")

    def test_paused_transport_queues_instead(self) -> None:
        """
        While the transport is paused, even a burst is queued, and the cap applies.
        """
        self.outbox.pauseProducing()
        for _ in range(3):
            self.outbox.write(b"y" * FLUSH_SIZE)
        self.assertEqual(self.transport.value(), b"")
        self.batch.flush()
        self.outbox.resumeProducing()
        self.assertEqual(self.transport.value(), b"y" * 3 * FLUSH_SIZE)
        self.assertEqual(self.overflows, [])

    def test_queue_written_in_chunks(self) -> None:
        """
        A resumed outbox writes its queue in order, in writes of about
        FLUSH_SIZE bytes (at most one line more), however much one turn queued.
        """
        transport = WriteRecorder()
        outbox = Outbox(transport, self.batch, 1000 * FLUSH_SIZE, lambda: self.overflows.append(None))
        outbox.pauseProducing()
        lines = [b"%05d" % i + b"z" * 995 + b"\r\n" for i in range(100)]
        for line in lines:
            outbox.write(line)
        self.batch.flush()
        self.assertEqual(transport.writes, [])
        outbox.resumeProducing()
        self.assertEqual(b"".join(transport.writes), b"".join(lines))
        self.assertGreater(len(transport.writes), 1)
        self.assertTrue(all(len(chunk) < FLUSH_SIZE + 1002 for chunk in transport.writes))


class StreamTests(SynchronousTestCase):
    """
    L{Outbox.stream}: a file's bytes go out between lines, pulled by the
    transport, while later lines wait.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.batch = Batch(self.clock)
        self.transport = StringTransport()
        self.overflows: list[None] = []
        self.outbox = Outbox(self.transport, self.batch, 1000, lambda: self.overflows.append(None))

    def pull(self) -> None:
        """
        Ask the file sender for chunks until it is done, as the reactor would.
        """
        for _ in range(100):
            producer = self.transport.producer
            if producer is None or producer is self.outbox:
                return
            producer.resumeProducing()

    def test_file_between_lines(self) -> None:
        """
        Lines before the file go first, then its header and bytes from the
        file's position, then lines written during it; the outbox is the
        transport's producer again afterwards.
        """
        source = io.BytesIO(b"0123456789" * 10_000)
        source.seek(5)
        self.outbox.write(b"before\r\n")
        done = self.outbox.stream(b"header\r\n", source)
        self.assertTrue(self.outbox.streaming)
        self.outbox.write(b"during\r\n")
        self.batch.flush()
        self.pull()
        self.assertEqual(
            self.transport.value(), b"before\r\nheader\r\n" + (b"0123456789" * 10_000)[5:] + b"during\r\n"
        )
        self.assertIsNone(self.successResultOf(done))
        self.assertTrue(source.closed)
        self.assertIs(self.transport.producer, self.outbox)
        self.assertTrue(self.transport.streaming)
        self.assertFalse(self.outbox.streaming)

    def test_lines_during_stalled_file_count_against_limit(self) -> None:
        """
        Lines held over the limit behind a file the transport does not pull
        cut the reader STALL_TIMEOUT seconds later.
        """
        self.outbox.stream(b"h\r\n", io.BytesIO(b"x" * 10))
        self.outbox.write(b"y" * 1001)
        self.batch.flush()
        self.clock.advance(STALL_TIMEOUT - 1)
        self.assertEqual(self.overflows, [])
        self.clock.advance(1)
        self.assertEqual(self.overflows, [None])

    def test_lines_during_pulled_file_wait(self) -> None:
        """
        While the transport keeps pulling a file's chunks, lines held over
        the limit behind it wait as long as it takes, then follow the file.
        """
        body = b"x" * (10 * 64 * 1024)
        done = self.outbox.stream(b"h\r\n", io.BytesIO(body))
        self.outbox.write(b"y" * 1001)
        self.batch.flush()
        for _ in range(20):
            self.clock.advance(STALL_TIMEOUT / 2)
            producer = self.transport.producer
            if producer is None or producer is self.outbox:
                break
            producer.resumeProducing()
        self.assertEqual(self.overflows, [])
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(self.transport.value(), b"h\r\n" + body + b"y" * 1001)

    def test_lines_during_file_past_ceiling(self) -> None:
        """
        Lines held during a file that pass CEILING times the limit cut the reader by the end of the
        turn, and at once when the turn's lines reach FLUSH_SIZE.
        """
        self.outbox.stream(b"h\r\n", io.BytesIO(b"x" * 10))
        self.outbox.write(b"y" * (CEILING * 1000 + 1))
        self.assertEqual(self.overflows, [])
        self.batch.flush()
        self.assertEqual(self.overflows, [None])
        other = Outbox(StringTransport(), self.batch, 1000, lambda: self.overflows.append(None))
        other.pauseProducing()
        other.write(b"z" * FLUSH_SIZE)
        self.assertEqual(self.overflows, [None, None])

    def test_connection_lost_during_file(self) -> None:
        """
        When the transport stops the sender, the file and every queued file
        are closed and their Deferreds fail.
        """
        first, second = io.BytesIO(b"a" * 10), io.BytesIO(b"b" * 10)
        sending = self.outbox.stream(b"h1\r\n", first)
        waiting = self.outbox.stream(b"h2\r\n", second)
        producer = self.transport.producer
        assert producer is not None
        producer.stopProducing()
        self.failureResultOf(sending)
        self.failureResultOf(waiting, ConnectionError)
        self.assertTrue(first.closed and second.closed)
        self.outbox.write(b"late\r\n")
        self.batch.flush()
        self.assertEqual(self.transport.value(), b"h1\r\n")

    def test_closed_outbox_refuses(self) -> None:
        """
        A file for an outbox that has finished is closed at once and its Deferred fails.
        """
        self.outbox.finish(b"bye\r\n")
        source = io.BytesIO(b"x")
        self.failureResultOf(self.outbox.stream(b"h\r\n", source), ConnectionError)
        self.assertTrue(source.closed)


@implementer(ISystemHandle)
class SocketTransport(WriteRecorder):
    """
    A plain TCP transport as the outbox sees it: a L{StringTransport} that
    hands out a real socket (one end of a socket pair) as its handle.
    """

    def __init__(self, handle: socket.socket) -> None:
        super().__init__()
        self.handle = handle

    def getHandle(self) -> socket.socket:  # noqa: N802 - ISystemHandle's name
        return self.handle


class DirectTests(SynchronousTestCase):
    """
    On plain TCP the outbox sends to the socket itself, and gives the
    transport only what the socket does not take (issue 17).
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.batch = Batch(self.clock)
        ours, self.peer = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(self.peer.close)
        ours.setblocking(False)
        self.peer.setblocking(False)
        self.transport = SocketTransport(ours)
        self.overflows: list[None] = []
        self.outbox = Outbox(self.transport, self.batch, 1000 * FLUSH_SIZE, lambda: self.overflows.append(None))

    def received(self) -> bytes:
        """
        What the peer end of the socket can read now.
        """
        chunks = []
        while True:
            try:
                chunk = self.peer.recv(1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def test_lines_go_to_the_socket(self) -> None:
        """
        A flush sends the turn's lines to the socket in one piece; the transport writes nothing,
        and the outbox is its pull producer.
        """
        self.assertIs(self.transport.producer, self.outbox)
        self.assertFalse(self.transport.streaming)
        self.outbox.write(b"one\r\n")
        self.outbox.write(b"two\r\n")
        self.assertEqual(self.received(), b"")
        self.batch.flush()
        self.assertEqual(self.received(), b"one\r\ntwo\r\n")
        self.assertEqual(self.transport.writes, [])

    def test_what_the_socket_refuses_goes_first(self) -> None:
        """
        When the socket takes only part, the rest goes to the transport, and lines written later
        wait in the queue until the transport says it drained: the bytes arrive in order.
        """
        big = bytes(range(256)) * 8192  # 2 MiB: more than a socket buffer
        self.outbox.write(big)
        self.batch.flush()
        on_socket = self.received()
        self.assertLess(len(on_socket), len(big))
        self.assertEqual(self.transport.value(), big[len(on_socket):])
        self.outbox.write(b"after\r\n")
        self.batch.flush()
        self.assertEqual(self.received(), b"")
        self.assertEqual(len(self.transport.writes), 1)
        self.assertEqual(self.outbox.queued, len(b"after\r\n"))
        self.outbox.resumeProducing()  # the transport wrote its buffer
        self.assertEqual(self.received(), b"after\r\n")
        self.assertEqual(self.outbox.queued, 0)

    def test_finished_outbox_lets_the_transport_close(self) -> None:
        """
        Once finished and drained, the outbox unregisters when the transport next asks for more,
        so that a closing transport (which asks at its end) may close.
        """
        self.outbox.finish(b"bye\r\n")
        self.batch.flush()
        self.assertEqual(self.received(), b"bye\r\n")
        self.assertIs(self.transport.producer, self.outbox)
        self.outbox.resumeProducing()
        self.assertIsNone(self.transport.producer)

    def test_stop_direct_before_tls(self) -> None:
        """
        After L{Outbox.stop_direct} lines go through the transport, the outbox now its push producer;
        lines queued behind bytes the transport holds follow them there, in order.
        """
        big = b"z" * (2 << 20)
        self.outbox.write(big)
        self.batch.flush()
        on_socket = self.received()
        self.outbox.write(b"queued\r\n")
        self.batch.flush()
        self.outbox.stop_direct()
        self.assertTrue(self.transport.streaming)
        self.assertEqual(on_socket + self.transport.value(), big + b"queued\r\n")
        self.outbox.write(b"later\r\n")
        self.batch.flush()
        self.assertEqual(self.received(), b"")
        self.assertTrue(self.transport.value().endswith(b"queued\r\nlater\r\n"))

    def test_tls_transport_writes_through(self) -> None:
        """
        A transport that provides ISSLTransport gets every line itself: the socket carries TLS records.
        """
        transport = SocketTransport(self.transport.handle)
        directlyProvides(transport, ISSLTransport)
        outbox = Outbox(transport, self.batch, FLUSH_SIZE, lambda: None)
        self.assertTrue(transport.streaming)
        outbox.write(b"secret\r\n")
        self.batch.flush()
        self.assertEqual(transport.value(), b"secret\r\n")
        self.assertEqual(self.received(), b"")

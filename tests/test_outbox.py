"""
Tests for L{chat.outbox}: write batching per reactor turn, chunking, and
the slow-reader cap.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from chat.outbox import FLUSH_SIZE, Batch, Outbox


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

"""
Tests for the bounds on queued output (issue 16, findings 9 and 10;
PROTOCOL.md section 8): a slow reader is judged over time, so a reader that
drains is never cut by a burst (L{chat.outbox}), and all queued output
together stays within C{--max-output-total} (L{chat.budget}), over
transports that pause their producer as Twisted's TCP transport does, and
a L{Clock}.
"""

from __future__ import annotations

import io

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from typing_extensions import override

from chat.budget import ITEM_OVERHEAD, REF_OVERHEAD, OutputBudget
from chat.outbox import CEILING, STALL_TIMEOUT, Batch, Outbox, Verbatim
from chat.protocol import ChatFactory, ChatProtocol
from chat.server import ChatServer
from chat.settings import Settings
from tests.support import START

MiB = 1 << 20
LINE = 4000
"""Bytes of each line in these tests: an input line near the 4096-byte limit."""


class PausingTransport(StringTransport):
    """
    A L{StringTransport} that behaves like Twisted's TCP transport towards
    its streaming producer: it pauses it once more than L{BUFFER} bytes
    wait, and resumes it when its reader has taken them all (L{read}).

    @ivar full: whether the producer is paused.
    """

    BUFFER = 64 * 1024

    def __init__(self, peer: IPv4Address | None = None) -> None:
        super().__init__(peerAddress=peer)
        self.full = False
        self.taken = 0
        """Bytes the reader has read so far."""

    @override
    def write(self, data: bytes) -> None:
        super().write(data)
        if not self.full and self.producer is not None and self.streaming and self.io.tell() > self.BUFFER:
            self.full = True
            self.producer.pauseProducing()

    def read(self) -> bytes:
        """
        The reader takes every byte written so far; the producer, if paused,
        is resumed (and may write more, kept for the next L{read}).
        """
        data: bytes = self.value()
        self.clear()
        self.taken += len(data)
        if self.full and self.producer is not None:
            self.full = False
            self.producer.resumeProducing()
        return data


def lines(tag: bytes, count: int, size: int = LINE) -> list[bytes]:
    """
    C{count} distinct lines of C{size} bytes, CR LF included, each starting
    with C{tag} and its number.
    """
    out = []
    for i in range(count):
        head = b"%s-%d " % (tag, i)
        out.append(head + b"x" * (size - len(head) - 2) + b"\r\n")
    return out


class Reader:
    """
    One outbox on a L{PausingTransport}, with what it has received and
    whether it was cut.
    """

    def __init__(self, batch: Batch, limit: int, budget: OutputBudget | None = None) -> None:
        self.transport = PausingTransport()
        self.cut = False
        self.received = b""
        self.outbox = Outbox(self.transport, batch, limit, self._cut, budget=budget)

    def _cut(self) -> None:
        self.cut = True

    def read(self) -> None:
        """
        Read everything the transport holds.
        """
        self.received += self.transport.read()


class SlowReaderOverTimeTests(SynchronousTestCase):
    """
    Finding 9: the slow-reader rule judges whether a reader drains its
    queue, not how much one turn put in it.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.batch = Batch(self.clock)

    def burst(self, reader: Reader, size: int) -> bytes:
        """
        Deliver C{size} bytes of lines to C{reader} in one reactor turn, as a
        room's burst does.

        @return: the bytes delivered.
        """
        sent = lines(b"burst", size // LINE)
        for line in sent:
            reader.outbox.write(line)
        self.batch.flush()
        return b"".join(sent)

    def test_draining_reader_never_cut_by_burst(self) -> None:
        """
        A reader that keeps taking what is written (here about 80 KB every
        0.2 s, so 6 MiB take 15 s) is never cut by a burst past its 4 MiB
        limit that arrived in one turn, and receives all of it in order.
        """
        reader = Reader(self.batch, 4 * MiB)
        sent = self.burst(reader, 6 * MiB)
        self.assertGreater(reader.outbox.queued, 4 * MiB)
        for _ in range(400):
            self.clock.advance(0.2)
            reader.read()
            if reader.outbox.queued == 0:
                break
        self.assertGreater(self.clock.seconds(), STALL_TIMEOUT)
        reader.read()
        self.assertFalse(reader.cut)
        self.assertEqual(reader.received, sent)

    def test_slow_draining_reader_never_cut(self) -> None:
        """
        A reader that drains slowly, but drains (64 KiB every 5 s, so a
        6 MiB burst takes minutes), is never cut while its queue is over the
        limit.
        """
        reader = Reader(self.batch, 4 * MiB)
        sent = self.burst(reader, 6 * MiB)
        for _ in range(2000):
            self.clock.advance(STALL_TIMEOUT / 2)
            reader.read()
            if reader.outbox.queued == 0:
                break
        reader.read()
        self.assertFalse(reader.cut)
        self.assertEqual(reader.received, sent)

    def test_reader_that_stops_is_cut_after_stall_timeout(self) -> None:
        """
        A reader whose queue is over the limit and that stops reading is cut
        STALL_TIMEOUT seconds after it last took bytes, not before.
        """
        reader = Reader(self.batch, 4 * MiB)
        self.burst(reader, 6 * MiB)
        for _ in range(5):
            self.clock.advance(1)
            reader.read()
        self.clock.advance(STALL_TIMEOUT - 0.5)
        self.assertFalse(reader.cut)
        self.clock.advance(0.5)
        self.assertTrue(reader.cut)
        self.assertEqual(reader.outbox.queued, 0)

    def test_reader_that_never_reads_is_cut(self) -> None:
        """
        A reader that never reads is cut STALL_TIMEOUT seconds after its
        transport filled up, once its queue is over the limit; later lines are dropped.
        """
        reader = Reader(self.batch, 256 * 1024)
        self.burst(reader, 200 * 1024)
        self.clock.advance(STALL_TIMEOUT * 3)
        self.assertFalse(reader.cut)  # under the limit: it may hold that for ever
        self.burst(reader, 200 * 1024)
        self.clock.advance(0)
        self.assertTrue(reader.cut)  # its transport took nothing for long already
        reader.outbox.write(b"late\r\n")
        self.batch.flush()
        self.assertEqual(reader.outbox.queued, 0)
        self.assertNotIn(b"late", reader.transport.value())

    def test_reader_back_under_limit_not_cut(self) -> None:
        """
        A reader that drained its queue back under the limit and then stops
        reading is not cut: the rule judges a queue that stays over it.
        """
        reader = Reader(self.batch, 4 * MiB)
        self.burst(reader, 5 * MiB)
        while reader.outbox.queued > 3 * MiB:
            self.clock.advance(0.1)
            reader.read()
        self.clock.advance(STALL_TIMEOUT * 10)
        self.assertFalse(reader.cut)

    def test_ceiling_cuts_at_once(self) -> None:
        """
        A queue that would pass CEILING times the limit cuts the reader at
        once, even one that reads: it reads more slowly than its output comes.
        """
        reader = Reader(self.batch, 256 * 1024)
        self.burst(reader, CEILING * 256 * 1024 - 100 * 1024)
        self.assertFalse(reader.cut)
        reader.read()
        for line in lines(b"more", 70):
            reader.outbox.write(line)
        self.assertTrue(reader.cut)


def connect(factory: ChatFactory, port: int) -> tuple[ChatProtocol, PausingTransport]:
    """
    A line-protocol connection from 127.0.0.1:C{port} over a L{PausingTransport}.
    """
    address = IPv4Address("TCP", "127.0.0.1", port)
    protocol = factory.buildProtocol(address)
    assert isinstance(protocol, ChatProtocol)
    transport = PausingTransport(address)
    protocol.makeConnection(transport)
    return protocol, transport


class RoomBurstTests(SynchronousTestCase):
    """
    Finding 9 through the line protocol: everyone in a room sends a burst
    in the same reactor turn.
    """

    SENDERS = 20
    BURST = 20
    settings = Settings(max_output=512 * 1024, flood_burst=10_000, max_per_ip=100)
    """Each member gets 20 x 20 lines of 4000 bytes (1.6 MB): over the limit, under the ceiling."""

    def test_readers_survive_room_burst(self) -> None:
        """
        When every member of a room sends 20 lines of 4000 bytes in one
        write, in the same turn, the members that read each turn receive all
        400 lines and none is cut; those that never read are cut
        STALL_TIMEOUT seconds later, not before.
        """
        clock = Clock()
        clock.advance(START)
        factory = ChatFactory(ChatServer(self.settings, clock))
        members = [connect(factory, 40000 + i) for i in range(self.SENDERS)]
        for i, (protocol, _) in enumerate(members):
            protocol.dataReceived(b"u%d\n" % i)
        for _, transport in members:
            transport.read()
        idle = {0, 7, 13}
        for i, (protocol, _) in enumerate(members):
            text = b"".join(line[:-2] + b"\n" for line in lines(b"u%d" % i, self.BURST, LINE - 40))
            protocol.dataReceived(text)
        received = {i: b"" for i in range(self.SENDERS) if i not in idle}
        for _ in range(200):
            clock.advance(0.01)
            for i in received:
                received[i] += members[i][1].read()
        self.assertLess(clock.seconds() - START, STALL_TIMEOUT)
        for i, data in received.items():
            self.assertEqual(data.count(b"> u"), self.SENDERS * self.BURST, i)
            self.assertNotIn(b"Bye", data)
        for i in idle:
            self.assertFalse(members[i][1].disconnecting or members[i][1].disconnected)
        clock.advance(STALL_TIMEOUT)
        for i in idle:
            self.assertTrue(members[i][1].disconnected, i)
        for i in received:
            self.assertFalse(members[i][1].disconnected, i)


class OutputBudgetTests(SynchronousTestCase):
    """
    Finding 10: one budget for the output queued for all connections.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.batch = Batch(self.clock)

    def stalled_readers(self, budget: OutputBudget, count: int) -> list[Reader]:
        """
        C{count} readers sharing C{budget}, with no per-connection limit in
        the way, whose transports are full and never read.
        """
        readers = [Reader(self.batch, 1 << 40, budget) for _ in range(count)]
        for reader in readers:
            reader.outbox.pauseProducing()
            reader.transport.full = True
        return readers

    def test_biggest_cut_first_within_budget(self) -> None:
        """
        With a 1 MiB budget, ten readers that never read, reader k sent k x
        20 lines of 1000 bytes of its own in a turn: the last passes the
        budget, which cuts the two holding the most (bringing the total under
        seven eighths of it), and the others keep all their output, which
        they get in order once they read.
        """
        budget = OutputBudget(MiB)
        readers = self.stalled_readers(budget, 10)
        sent = {}
        for k, reader in enumerate(readers, 1):
            data = lines(b"r%d" % k, 20 * k, 1000)
            sent[k] = b"".join(data)
            for line in data:
                reader.outbox.write(line)
        self.batch.flush()
        self.assertEqual([k for k, reader in enumerate(readers, 1) if reader.cut], [9, 10])
        self.assertLessEqual(budget.total, budget.floor)
        per_line = 1000 + ITEM_OVERHEAD + REF_OVERHEAD
        self.assertEqual(budget.total, sum(20 * k for k in range(1, 9)) * per_line)
        for k, reader in enumerate(readers[:8], 1):
            while reader.outbox.queued:
                reader.read()
            reader.read()
            self.assertEqual(reader.received, sent[k])
        self.assertEqual(budget.total, 0)
        self.assertEqual(budget.holders, 0)

    def test_total_never_passes_budget(self) -> None:
        """
        Ten readers that never read, reader k sent k + 1 lines of its own
        each turn: after every turn the budget's total is within it, the
        readers cut are always those holding the most, and the others hold
        everything sent to them.
        """
        budget = OutputBudget(MiB)
        readers = self.stalled_readers(budget, 10)
        sent = [0] * 10
        for turn in range(40):
            for k, reader in enumerate(readers):
                for line in lines(b"t%d-%d" % (turn, k), k + 1, 1000):
                    reader.outbox.write(line)
                    sent[k] += len(line)
            self.batch.flush()
            self.assertLessEqual(budget.total, budget.limit)
            cut = [k for k, reader in enumerate(readers) if reader.cut]
            self.assertEqual(cut, list(range(10 - len(cut), 10)))  # the biggest ones
            for k, reader in enumerate(readers[: 10 - len(cut)]):
                self.assertEqual(reader.outbox.queued, sent[k])
        self.assertGreater(sum(reader.cut for reader in readers), 2)

    def test_shared_burst_counted_once(self) -> None:
        """
        A room's burst queued for 100 readers that share the same rendered
        lines costs its bytes once: 800 KB to each (80 MB counted per reader)
        fits a 1 MiB budget, and nobody is cut.
        """
        budget = OutputBudget(MiB)
        readers = self.stalled_readers(budget, 100)
        for line in lines(b"room", 200):
            shared = Verbatim(line)
            for reader in readers:
                reader.outbox.deliver(shared)
        self.batch.flush()
        self.assertFalse(any(reader.cut for reader in readers))
        self.assertEqual(
            budget.total, 200 * (LINE + ITEM_OVERHEAD) + 100 * 200 * REF_OVERHEAD
        )
        self.assertLess(budget.total, MiB)
        for reader in readers:
            reader.outbox.stopProducing()
        self.assertEqual(budget.total, 0)
        self.assertEqual(budget.holders, 0)

    def test_stalled_cut_before_draining(self) -> None:
        """
        Over the budget, a reader that is taking its output is cut only
        after those that are not, even when it holds more.
        """
        budget = OutputBudget(MiB)
        fast = Reader(self.batch, 1 << 40, budget)
        stalled = self.stalled_readers(budget, 2)
        self.clock.advance(60)
        for line in lines(b"fast", 160):
            fast.outbox.write(line)
        self.batch.flush()
        fast.read()  # resumes: it takes its output
        for k, reader in enumerate(stalled):
            for line in lines(b"s%d" % k, 75):
                reader.outbox.write(line)
        self.assertGreater(fast.outbox.queued, stalled[0].outbox.queued + 50 * 1024)
        self.batch.flush()
        self.assertEqual([fast.cut, stalled[0].cut, stalled[1].cut], [False, True, False])
        self.assertLessEqual(budget.total, budget.floor)

    def test_file_after_queue_leaves_no_holder(self) -> None:
        """
        Once the lines queued before a file are written and the file is
        being sent, the outbox holds nothing in the budget and is no
        candidate for a cut.
        """
        budget = OutputBudget(MiB)
        [reader] = self.stalled_readers(budget, 1)
        for line in lines(b"before", 10):
            reader.outbox.write(line)
        reader.outbox.stream(b"file\r\n", io.BytesIO(b"f" * 1000))
        self.assertEqual(budget.holders, 1)
        reader.read()
        self.assertTrue(reader.outbox.streaming)
        self.assertEqual((budget.total, budget.holders), (0, 0))

    def test_fast_path_costs_nothing(self) -> None:
        """
        Output written straight to a transport that is not full is not counted.
        """
        budget = OutputBudget(MiB)
        reader = Reader(self.batch, 4 * MiB, budget)
        reader.outbox.write(b"hello\r\n")
        self.batch.flush()
        self.assertEqual((budget.total, budget.holders), (0, 0))
        self.assertEqual(reader.transport.value(), b"hello\r\n")


class ServerBudgetTests(SynchronousTestCase):
    """
    The L{ChatServer} owns one budget, which every connection's outbox shares.
    """

    def test_connections_share_server_budget(self) -> None:
        """
        Private messages queued for two users that do not read count in the
        server's budget; past C{max_output_total} the one holding the most
        gets C{bye} and is cut, the other stays, and the sender is not
        disturbed; the log says which connection was cut and by which rule,
        and how many the budget cut.
        """
        clock = Clock()
        clock.advance(START)
        settings = Settings(max_output=1 << 30, max_output_total=256 * 1024, flood_burst=10_000)
        server = ChatServer(settings, clock)
        factory = ChatFactory(server)
        (alice, alice_t), (bob, bob_t), (carol, carol_t) = (connect(factory, 40000 + i) for i in range(3))
        for protocol, nick in ((alice, b"alice"), (bob, b"bob"), (carol, b"carol")):
            protocol.dataReceived(nick + b"\n")
        for transport in (alice_t, bob_t, carol_t):
            transport.read()
            assert transport.producer is not None
            transport.producer.pauseProducing()
            transport.full = True
        text = b"y" * 3900
        carol.dataReceived(b"/msg bob " + text + b"\n")
        with capturedLogs() as logged:
            for _ in range(100):
                carol.dataReceived(b"/msg alice " + text + b"\n")
                carol_t.read()
        cut_line, budget_line = (formatEvent(event) for event in logged if event["log_level"] == LogLevel.warn)
        self.assertRegex(
            budget_line,
            r"\Aoutput queued for all connections passed 262144 bytes \(--max-output-total\): "
            r"disconnected the 1 holding the most, [1-9]\d{5} bytes freed\Z",
        )
        self.assertEqual(
            cut_line,
            "disconnecting 127.0.0.1:40000: it does not read its output "
            "(the output queued for all connections passed --max-output-total)",
        )
        self.assertGreater(server.output_budget.total, 0)
        self.assertLessEqual(server.output_budget.total, settings.max_output_total)
        self.assertTrue(alice_t.disconnected)
        self.assertTrue(alice_t.value().endswith(b"*** Bye: you are not reading fast enough\r\n"))
        self.assertFalse(bob_t.disconnected)
        self.assertFalse(carol_t.disconnected)

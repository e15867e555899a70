"""
Tests for the limits enforced by L{chat.protocol} (PROTOCOL.md section 8):
flood control under a L{Clock}, the bound on output queued for a slow
reader, and connections per IP address, over L{StringTransport}.
"""

from __future__ import annotations

from typing import Any

from chat.outbox import STALL_TIMEOUT
from chat.settings import Settings
from tests.support import WELCOME_TEXT, ProtocolTestCase


class FloodTestCase(ProtocolTestCase):
    """
    A burst of 5 lines, then 2 a second; alice (json) and bob (text) are
    registered with full buckets.
    """

    settings = Settings(flood_burst=5, flood_rate=2.0)

    def setUp(self) -> None:
        super().setUp()
        self.alice = self.json_user("alice")
        self.bob = self.text_user("bob")
        self.alice.take()
        self.clock.advance(60)  # both buckets full again


class FloodTests(FloodTestCase):
    """
    PROTOCOL.md section 8: lines over the rate are delayed, never dropped.
    """

    def message(self, text: str) -> dict[str, Any]:
        return {"type": "message", "room": "#lobby", "from": "alice", "text": text, "action": False}

    def take_messages(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in event.items() if k not in ("id", "ts")} for event in self.alice.take_json()]

    def test_burst_then_rate(self) -> None:
        """
        Of 3B lines sent at once the first B run at once, then one C{flood}
        error, reading pauses, then one line runs every 1/R seconds, in order,
        and reading resumes once no line waits.
        """
        burst, period = 5, 0.5
        lines = [f"m{i}" for i in range(1, 3 * burst + 1)]
        self.alice.send(b"".join(f"{line}\n".encode() for line in lines))
        flood = {"type": "error", "code": "flood",
                 "message": "you are sending too fast: your lines are being delayed"}
        self.assertEqual(
            self.take_messages(),
            [self.message(t) for t in lines[:burst]] + [flood],
        )
        self.assertEqual(self.alice.transport.producerState, "paused")
        for line in lines[burst:]:
            self.clock.advance(period - 0.01)
            self.assertEqual(self.take_messages(), [], line)
            self.clock.advance(0.01)
            self.assertEqual(self.take_messages(), [self.message(line)], line)
        self.assertEqual(self.alice.transport.producerState, "producing")
        self.assertEqual(
            self.bob.take(), b"".join(f"[14:03] #lobby <alice> {t}\r\n".encode() for t in lines)
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_data_while_paused_kept_in_order(self) -> None:
        """
        Bytes that still arrive while reading is paused wait behind the delayed lines.
        """
        self.alice.send(b"".join(f"m{i}\n".encode() for i in range(1, 8)))
        self.alice.send(b"m8\nm9\n")
        self.clock.pump([0.5] * 10)
        self.assertEqual(
            self.bob.take(), b"".join(f"[14:03] #lobby <alice> m{i}\r\n".encode() for i in range(1, 10))
        )

    def test_warned_again_after_calm(self) -> None:
        """
        After the bucket has refilled, a new flood is warned about once more.
        """
        self.alice.send(b"a\n" * 6)
        self.clock.pump([0.5] * 5)
        self.clock.advance(60)
        self.alice.take()
        self.alice.send(b"b\n" * 6)
        codes = [e.get("code") for e in self.alice.take_json()]
        self.assertEqual(codes.count("flood"), 1)

    def test_commands_count(self) -> None:
        """
        Commands count against the rate like messages, and keep their order.
        """
        self.alice.send(b"/ping 1\n" * 7)
        self.assertEqual(len([e for e in self.alice.take_json() if e["type"] == "pong"]), 5)
        self.clock.advance(0.5)
        self.assertEqual(self.alice.take_json(), [{"type": "pong", "token": "1"}])

    def test_closed_while_throttled(self) -> None:
        """
        A connection lost while throttled leaves no pending timer.
        """
        self.alice.send(b"x\n" * 8)
        self.assertNotEqual(self.clock.getDelayedCalls(), [])
        self.alice.lose()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SlowReaderTests(ProtocolTestCase):
    """
    PROTOCOL.md section 8: output queued for a reader that does not read is bounded.
    """

    settings = Settings(max_output=1000, flood_burst=10_000)
    TEXT = "z" * 77
    """With C{[14:02] #lobby <bob> } and CR LF, a line of exactly 100 bytes."""

    def setUp(self) -> None:
        super().setUp()
        self.alice = self.text_user("alice")
        self.bob = self.text_user("bob")
        self.alice.take()

    def test_outbox_registered_streaming(self) -> None:
        """
        Each connection registers a streaming producer on its transport.
        """
        self.assertIsNotNone(self.alice.transport.producer)
        self.assertTrue(self.alice.transport.streaming)

    def test_paused_then_flushed_in_order(self) -> None:
        """
        While the transport pauses the outbox nothing is written; resuming writes the queue in order.
        """
        self.alice.producer.pauseProducing()
        for text in ["one", "two", "three"]:
            self.bob.line(text)
        self.alice.line("/ping p")
        self.bob.line("four")
        self.assertEqual(self.alice.take(), b"")
        self.alice.producer.resumeProducing()
        self.assertEqual(
            self.alice.take(),
            b"[14:02] #lobby <bob> one\r\n[14:02] #lobby <bob> two\r\n"
            b"[14:02] #lobby <bob> three\r\n*** pong p\r\n[14:02] #lobby <bob> four\r\n",
        )
        self.bob.line("five")
        self.assertEqual(self.alice.take(), b"[14:02] #lobby <bob> five\r\n")

    def test_slow_reader_disconnected(self) -> None:
        """
        Once more than C{max_output} bytes have stayed queued for
        C{STALL_TIMEOUT} seconds while the transport took nothing, the reader
        gets C{bye} and is aborted; up to then, nothing happens.
        """
        self.alice.producer.pauseProducing()
        for _ in range(10):
            self.bob.line(self.TEXT)
        self.assertEqual(self.alice.take(), b"")
        self.assertFalse(self.alice.transport.disconnecting)
        self.bob.line(self.TEXT)
        self.clock.advance(STALL_TIMEOUT - 0.5)
        self.assertEqual(self.alice.take(), b"")
        self.assertFalse(self.alice.transport.disconnecting)
        self.clock.advance(0.5)
        self.assertEqual(self.alice.take(), b"*** Bye: you are not reading fast enough\r\n")
        self.assertTrue(self.alice.transport.disconnected)  # abortConnection, not loseConnection
        self.bob.line(self.TEXT)
        self.assertEqual(self.alice.take(), b"")
        self.bob.take()
        self.alice.lose()
        self.assertEqual(self.bob.take(), b"[14:02] * alice quit (too slow reading)\r\n")

    def test_own_output_overflow_stops_reading(self) -> None:
        """
        A reader that floods its own paused output is cut off, and the rest of its chunk is not run.
        """
        self.bob.take()
        self.alice.producer.pauseProducing()
        self.alice.send(b"/help\n" * 50 + b"not said\n")
        self.assertEqual(self.alice.take(), b"*** Bye: you are not reading fast enough\r\n")
        self.assertTrue(self.alice.transport.disconnected)
        self.assertEqual(self.bob.take(), b"")

    def test_slow_reader_json_bye(self) -> None:
        """
        A json slow reader gets a JSON C{bye}.
        """
        carol = self.json_user("carol")
        carol.producer.pauseProducing()
        for _ in range(20):
            self.bob.line(self.TEXT)
        self.clock.advance(STALL_TIMEOUT)
        self.assertEqual(carol.take_json(), [{"type": "bye", "reason": "you are not reading fast enough"}])
        self.assertTrue(carol.transport.disconnected)

    def test_bystanders_unaffected(self) -> None:
        """
        Disconnecting a slow reader does not disturb the sender or others.
        """
        carol = self.text_user("carol")
        self.alice.producer.pauseProducing()
        self.bob.take()
        for _ in range(12):
            self.bob.line(self.TEXT)
        expected = f"[14:02] #lobby <bob> {self.TEXT}\r\n".encode() * 12
        self.assertEqual(self.bob.take(), expected)
        self.assertEqual(carol.take()[-len(expected):], expected)
        self.assertFalse(self.bob.transport.disconnecting)
        self.assertFalse(carol.transport.disconnecting)


class ConnectionLimitTests(ProtocolTestCase):
    """
    PROTOCOL.md section 8: connections per IP address.
    """

    settings = Settings(max_per_ip=2, flood_burst=10_000)
    REFUSED = b"*** Bye: too many connections from your address\r\n"

    def test_over_limit_refused(self) -> None:
        """
        The (max+1)-th connection from one host gets C{bye} and is closed.
        """
        first, second = self.connect("198.51.100.1"), self.connect("198.51.100.1")
        third = self.connect("198.51.100.1")
        self.assertEqual(third.take(), self.REFUSED)
        self.assertTrue(third.transport.disconnecting)
        for client in (first, second):
            self.assertEqual(client.take(), WELCOME_TEXT)
            self.assertFalse(client.transport.disconnecting)

    def test_refused_json_bye(self) -> None:
        """
        The refusal is rendered in the default text format.
        """
        self.connect("198.51.100.1")
        self.connect("198.51.100.1")
        self.assertEqual(self.connect("198.51.100.1").take(), self.REFUSED)

    def test_other_hosts_unaffected(self) -> None:
        """
        Another host can still connect when one host is at its limit.
        """
        for _ in range(3):
            self.connect("198.51.100.1")
        for _ in range(2):
            other = self.connect("198.51.100.2")
            self.assertEqual(other.take(), WELCOME_TEXT)
            self.assertFalse(other.transport.disconnecting)

    def test_closing_frees_slot(self) -> None:
        """
        When a connection from a host closes, that host may connect again.
        """
        first = self.connect("198.51.100.1")
        self.connect("198.51.100.1")
        refused = self.connect("198.51.100.1")
        refused.lose()
        first.lose()
        again = self.connect("198.51.100.1")
        self.assertEqual(again.take(), WELCOME_TEXT)
        self.assertFalse(again.transport.disconnecting)
        self.assertTrue(self.connect("198.51.100.1").transport.disconnecting)

    def test_refused_counts_released(self) -> None:
        """
        Refused connections that close do not use up the host's slots.
        """
        keep = [self.connect("198.51.100.1") for _ in range(2)]
        for _ in range(5):
            refused = self.connect("198.51.100.1")
            self.assertTrue(refused.transport.disconnecting)
            refused.lose()
        for client in keep:
            client.lose()
        for _ in range(2):
            self.assertFalse(self.connect("198.51.100.1").transport.disconnecting)

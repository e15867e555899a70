"""
L{chat.cluster.order.Orderer}, without a network: a clock, and a message
log in memory standing for the cluster's database.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime, timezone

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from chat import events
from chat.cluster.order import LOCAL, WAIT, Orderer, address_of
from chat.interfaces import Address, ToRoom, ToUsers

TS = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
A = ("a", "run-a")
B = ("b", "run-b")


def message(id_: int, after: int, text: str = "", room: str = "#lobby") -> events.Message:
    return events.Message(id_, TS, room, "alice", text or f"m{id_}", after=after)


class Log:
    """Messages committed, by id; reads answered at once, or failing while C{down}."""

    def __init__(self, last_message: int = 0) -> None:
        self.last_message = last_message
        self.committed: dict[int, events.Message | events.Private] = {}
        self.reads: list[tuple[int, int]] = []
        self.down = False

    def last_committed(self) -> Deferred[int]:
        return succeed(max(self.committed, default=self.last_message))

    def messages_between(self, after: int, before: int) -> Deferred[list[events.Message | events.Private]]:
        self.reads.append((after, before))
        if self.down:
            return fail(ConnectionError("database unreachable"))
        return succeed([self.committed[i] for i in sorted(self.committed) if after < i < before])


class OrdererTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.log = Log(last_message=10)
        self.delivered: list[tuple[Hashable | None, events.Event, Address]] = []
        self.order = Orderer(self.log, self.clock, lambda *delivery: self.delivered.append(delivery))

    def texts(self) -> list[str]:
        return [getattr(event, "text", type(event).__name__) for _, event, _ in self.delivered]

    def test_in_order_delivered_at_once(self) -> None:
        """Messages whose predecessor was delivered, and other events, pass at once."""
        self.order.arrive(LOCAL, message(11, 10), ToRoom("#lobby"))
        self.order.arrive(A, events.Quit(TS, "bob", "bye"), ToUsers(()))
        self.order.arrive(A, message(12, 11), ToRoom("#lobby"))
        self.assertEqual(self.texts(), ["m11", "Quit", "m12"])
        self.assertEqual([origin for origin, _, _ in self.delivered], [LOCAL, A, A])
        self.assertEqual(self.order.upto, 12)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_waits_for_the_message_before(self) -> None:
        """
        A message whose predecessor has not arrived waits, and so does
        everything after it from the same origin; another origin's events
        pass; the predecessor's arrival releases them in order.
        """
        self.order.arrive(A, message(13, 12), ToRoom("#lobby"))
        self.order.arrive(A, events.Quit(TS, "alice", "bye"), ToUsers(()))
        self.order.arrive(LOCAL, events.Info("unrelated"), ToUsers(()))
        self.assertEqual(self.texts(), ["unrelated"])
        self.assertEqual(self.order.held, 2)
        self.order.arrive(B, message(11, 10), ToRoom("#lobby"))
        self.assertEqual(self.texts(), ["unrelated", "m11"])
        self.order.arrive(B, message(12, 11), ToRoom("#lobby"))
        self.assertEqual(self.texts(), ["unrelated", "m11", "m12", "m13", "Quit"])
        self.assertEqual(self.order.held, 0)
        self.assertEqual(self.log.reads, [])

    def test_missing_read_from_the_database(self) -> None:
        """
        A predecessor that does not arrive within WAIT is read from the
        database, delivered once to its address, and its publication, if it
        comes after all, is dropped.
        """
        missing = message(11, 10, "lost with Redis")
        private = events.Private(12, TS, "carol", "dave", "psst", after=11)
        self.log.committed = {11: missing, 12: private}
        self.order.arrive(A, message(13, 12), ToRoom("#lobby"))
        self.clock.advance(WAIT - 0.01)
        self.assertEqual(self.delivered, [])
        self.clock.advance(0.01)
        self.assertEqual(self.log.reads, [(10, 13)])
        self.assertEqual(
            self.delivered,
            [
                (None, missing, ToRoom("#lobby")),
                (None, private, ToUsers(("dave", "carol"))),
                (A, message(13, 12), ToRoom("#lobby")),
            ],
        )
        self.assertEqual(self.order.read, 2)
        self.order.arrive(B, message(11, 10, "lost with Redis"), ToRoom("#lobby"))
        self.assertEqual(len(self.delivered), 3)

    def test_replays_pass(self) -> None:
        """Messages already delivered (history, offline messages at login) are not held back."""
        self.order.arrive(A, message(13, 12), ToRoom("#lobby"))
        replay = events.Private(5, TS, "carol", "dave", "old", offline=True)
        self.order.arrive(LOCAL, replay, ToUsers(("dave",)))
        self.assertEqual(self.texts(), ["old"])

    def test_read_retried_while_the_database_is_down(self) -> None:
        """A failed read is tried again after WAIT; nothing is delivered out of order meanwhile."""
        self.log.committed = {11: message(11, 10), 12: message(12, 11)}
        self.log.down = True
        self.order.arrive(A, message(13, 12), ToRoom("#lobby"))
        self.clock.advance(WAIT)
        self.flushLoggedErrors()
        self.assertEqual(self.delivered, [])
        self.log.down = False
        self.clock.advance(WAIT)
        self.assertEqual(self.texts(), ["m11", "m12", "m13"])
        self.assertEqual(self.log.reads, [(10, 13), (10, 13)])

    def test_limit_reads_at_once(self) -> None:
        """Beyond the limit of events held, the missing messages are read without waiting."""
        order = Orderer(self.log, self.clock, lambda *delivery: self.delivered.append(delivery), limit=3)
        self.log.committed = {11: message(11, 10)}
        order.arrive(A, message(12, 11), ToRoom("#lobby"))
        for n in range(3):
            order.arrive(A, events.Info(f"i{n}"), ToUsers(()))
        self.assertEqual(self.texts(), ["m11", "m12", "i0", "i1", "i2"])
        self.assertEqual(order.held, 0)

    def test_address_of(self) -> None:
        """What is read from the database goes where its publication would have."""
        self.assertEqual(address_of(message(1, 0, room="#Dev")), ToRoom("#dev"))
        self.assertEqual(address_of(events.Private(2, TS, "Carol", "Dave", "x")), ToUsers(("dave", "carol")))
        self.assertEqual(address_of(events.Private(3, TS, "Carol", "Dave", "x", offline=True)), ToUsers(("carol",)))

    def test_catch_up_reads_what_was_committed_meanwhile(self) -> None:
        """
        When Redis is back, what was committed since the last message
        delivered is read and delivered, though no later message showed it
        missing; its publication, arriving after all, is dropped.
        """
        self.log.committed = {11: message(11, 10), 12: message(12, 11)}
        self.order.catch_up()
        self.assertEqual(self.log.reads, [(10, 13)])
        self.assertEqual(self.texts(), ["m11", "m12"])
        self.assertEqual(self.order.upto, 12)
        self.order.arrive(A, message(12, 11), ToRoom("#lobby"))
        self.assertEqual(self.texts(), ["m11", "m12"])
        self.order.catch_up()  # nothing new: no read
        self.assertEqual(self.log.reads, [(10, 13)])

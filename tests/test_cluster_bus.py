"""
Tests for L{chat.cluster.bus.RedisBus}: two nodes ("a" and "b") on the real
Redis of L{tests.servers} and the real reactor, each with participants of
its own, deliver each other's events; nothing is lost or delivered twice
across a Redis restart. Skipped, with the reason, when C{redis-server}
cannot start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from chat import events
from chat.cluster import wire
from chat.cluster.bus import CHANNEL, RedisBus
from chat.cluster.redis import parse_url
from chat.counts import COUNTS
from chat.interfaces import IBus, IParticipant, Outgoing, ToNeighbours, ToParticipant, ToRoom, ToUsers
from tests import servers

T = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=timezone.utc)


@implementer(IParticipant)
class Member:
    """
    A participant that records the events delivered to it.
    """

    front_end = "line"
    account = None
    secure = False
    peer = "127.0.0.1"

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.events: list[events.Event] = []
        self._waiting: list[tuple[Callable[[list[events.Event]], bool], Deferred[None]]] = []

    def deliver(self, outgoing: Outgoing) -> None:
        """
        Record the event, and fire the waits it satisfies.
        """
        assert outgoing.event is not None
        self.events.append(outgoing.event)
        fired = [(condition, waiting) for condition, waiting in self._waiting if condition(self.events)]
        self._waiting = [pair for pair in self._waiting if pair not in fired]
        for _, waiting in fired:
            waiting.callback(None)

    def close(self, reason: str) -> None:
        """
        Nothing to close.
        """

    def wait(self, condition: Callable[[list[events.Event]], bool]) -> Deferred[None]:
        """
        Fires once C{condition(events)} holds.
        """
        waiting: Deferred[None] = Deferred()
        if condition(self.events):
            waiting.callback(None)
        else:
            self._waiting.append((condition, waiting))
        return waiting

    def messages(self) -> list[int]:
        """
        The ids of the room and private messages delivered, in order.
        """
        return [event.id for event in self.events if isinstance(event, (events.Message, events.Private))]

    def has_id(self, wanted: int) -> Deferred[None]:
        """
        Fires once the message C{wanted} is delivered.
        """
        return self.wait(lambda _: wanted in self.messages())


def message(id: int, room: str = "#dev", sender: str = "alice") -> events.Message:
    return events.Message(id, T, room, sender, f"message {id}")


@inlineCallbacks
def until(condition: Callable[[], bool], step: float = 0.02) -> Any:
    """
    Poll C{condition} on the reactor until it holds (the test's timeout bounds it).
    """
    while not condition():
        yield deferLater(reactor, step, lambda: None)


class TwoNodesTests(unittest.TestCase):
    """
    Nodes "a" (alice) and "b" (bob, carol) on one Redis; alice and bob in #dev.
    """

    timeout = 10

    def setUp(self) -> Deferred[Any]:
        self.redis = servers.redis()
        self.redis.flush()
        self.a = self.node("a")
        self.b = self.node("b")
        self.alice, self.bob, self.carol = Member("alice"), Member("bob"), Member("carol")
        self.enter(self.a, self.alice, "#dev")
        self.enter(self.b, self.bob, "#dev")
        self.enter(self.b, self.carol, None)
        ready: Deferred[Any] = gatherResults([self.a.ready, self.b.ready])
        return ready

    def node(self, name: str, **options: Any) -> RedisBus:
        """
        A started bus of node C{name}, stopped at the end of the test.
        """
        bus = RedisBus.from_url(self.redis.url, name, retry_delays=(0.05, 0.3), **options)
        bus.startService()
        self.addCleanup(bus.stopService)
        return bus

    def enter(self, bus: RedisBus, member: Member, room: str | None) -> None:
        """
        Register C{member} on C{bus} and join it to C{room} (when given), as the server publishes it.
        """
        bus.publish(events.Registered(member.nick), ToParticipant(member))
        if room is not None:
            bus.publish(events.Joined(T, room, member.nick), ToRoom(room))

    def test_interface(self) -> None:
        """
        RedisBus provides IBus, and says its node and that it is connected.
        """
        self.assertTrue(verifyObject(IBus, self.a))
        self.assertEqual((self.a.node, self.b.node), ("a", "b"))
        self.assertTrue(self.a.connected and self.b.connected)

    @inlineCallbacks
    def test_room_message(self) -> Any:
        """
        A room message published on a reaches a's member and b's member once each, not b's non-member.
        """
        self.a.publish(message(1), ToRoom("#dev"))
        self.assertEqual(self.alice.messages(), [1], "delivered locally at once")
        yield self.bob.has_id(1)
        self.a.publish(message(2), ToRoom("#dev"))
        yield self.bob.has_id(2)
        self.assertEqual(self.alice.messages(), [1, 2])
        self.assertEqual(self.bob.messages(), [1, 2])
        self.assertEqual(self.carol.messages(), [])
        dave = Member("dave")
        self.enter(self.a, dave, "#dev")
        yield self.bob.wait(lambda seen: events.Joined(T, "#dev", "dave") in seen)
        self.a.publish(message(3), ToRoom("#dev"))
        yield self.bob.has_id(3)
        self.assertEqual(dave.messages(), [3], "the newcomer on a gets the room's messages from then on")
        self.assertEqual(self.bob.events.count(events.Joined(T, "#dev", "dave")), 1)

    @inlineCallbacks
    def test_messages_counted_by_their_daemon(self) -> Any:
        """
        A room message is counted once, by the daemon that published it,
        not again by the one that delivers it to bob.
        """
        messages, private = COUNTS.room_messages, COUNTS.private_messages
        self.a.publish(message(1), ToRoom("#dev"))
        yield self.bob.has_id(1)
        self.a.publish(events.Private(2, T, "alice", "bob", "psst"), ToUsers(("bob", "alice")))
        yield self.bob.has_id(2)
        self.assertEqual((COUNTS.room_messages - messages, COUNTS.private_messages - private), (1, 1))

    @inlineCallbacks
    def test_to_users(self) -> Any:
        """
        A private message to bob published on a reaches bob on b only; one to two users reaches both.
        """
        private = events.Private(5, T, "alice", "bob", "psst", away="lunch", account="alice")
        self.a.publish(private, ToUsers(("bob",)))
        yield self.bob.has_id(5)
        delivered = [event for event in self.bob.events if isinstance(event, events.Private)]
        self.assertEqual(len(delivered), 1)
        self.assertEqual((delivered[0].away, delivered[0].account), ("lunch", "alice"), "off-the-wire fields cross")
        self.assertEqual(self.alice.messages(), [])
        self.a.publish(events.Private(6, T, "alice", "carol", "hi"), ToUsers(("carol", "alice")))
        yield self.carol.has_id(6)
        self.assertEqual(self.alice.messages(), [6])
        self.assertEqual(self.bob.messages(), [5])
        self.assertEqual(self.carol.messages(), [6])

    @inlineCallbacks
    def test_to_participant_stays_local(self) -> Any:
        """
        An event to one participant is delivered here and never published: b sees only what follows it.
        """
        published = self.a.published
        self.a.publish(events.Info("only for alice"), ToParticipant(self.alice))
        self.assertIn(events.Info("only for alice"), self.alice.events)
        self.a.publish(message(1), ToRoom("#dev"))
        yield self.bob.has_id(1)
        yield until(lambda: self.a.published == published + 1)
        self.assertNotIn(events.Info("only for alice"), self.bob.events)
        self.assertFalse(any(isinstance(event, events.Info) for member in (self.bob, self.carol)
                             for event in member.events))

    @inlineCallbacks
    def test_order(self) -> Any:
        """
        200 messages published on a reach b's member in publication order, each once.
        """
        for id in range(1, 201):
            self.a.publish(message(id), ToRoom("#dev"))
        yield self.bob.has_id(200)
        self.assertEqual(self.bob.messages(), list(range(1, 201)))
        self.assertEqual(self.b.duplicates, 0)

    @inlineCallbacks
    def test_one_turn_one_redis_message(self) -> Any:
        """
        The publications of one reactor turn go to Redis as one stream entry, delivered whole and in order.
        """
        before = int(servers.redis().command("XLEN", "chat:log").strip(b":"))
        for id in range(1, 51):
            self.a.publish(message(id), ToRoom("#dev"))
        yield self.bob.has_id(50)
        self.assertEqual(self.bob.messages(), list(range(1, 51)))
        self.assertEqual(int(servers.redis().command("XLEN", "chat:log").strip(b":")) - before, 1)

    @inlineCallbacks
    def test_both_ways_own_skipped(self) -> Any:
        """
        Each node delivers the other's publications and never its own a second time.
        """
        self.b.publish(message(1, sender="bob"), ToRoom("#dev"))
        self.a.publish(message(2), ToRoom("#dev"))
        yield gatherResults([self.alice.has_id(1), self.bob.has_id(2)])
        self.a.publish(message(3), ToRoom("#dev"))
        self.b.publish(message(4, sender="bob"), ToRoom("#dev"))
        yield gatherResults([self.alice.has_id(4), self.bob.has_id(3)])
        self.assertEqual(sorted(self.alice.messages()), [1, 2, 3, 4])
        self.assertEqual(sorted(self.bob.messages()), [1, 2, 3, 4])

    @inlineCallbacks
    def test_redis_restart(self) -> Any:
        """
        Redis restarted during publications: everything published after the restart (while a has not yet
        noticed, while it knows Redis is gone, after it is back) reaches b's member once, in order; a logs
        "lost Redis" and "Redis is back" once each.
        """
        logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            text = formatEvent(event)
            if event.get("log_source") is self.a and "Redis" in text:
                logged.append(text)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        for id in range(1, 51):
            self.a.publish(message(id), ToRoom("#dev"))
        yield self.bob.has_id(50)
        self.redis.stop()
        for id in range(51, 71):  # a does not know yet
            self.a.publish(message(id), ToRoom("#dev"))
        yield until(lambda: not self.a.connected and not self.b.connected)
        for id in range(71, 101):  # a knows: queued
            self.a.publish(message(id), ToRoom("#dev"))
        self.assertGreaterEqual(self.a.queued, 30)
        self.redis.start()
        for id in range(101, 121):  # back, maybe not reconnected yet
            self.a.publish(message(id), ToRoom("#dev"))
        yield until(lambda: self.a.connected and self.b.connected)
        for id in range(121, 151):
            self.a.publish(message(id), ToRoom("#dev"))
        yield self.bob.has_id(150)
        yield until(lambda: self.a.queued == 0)
        self.assertEqual(self.bob.messages(), list(range(1, 151)))
        self.assertEqual(self.alice.messages(), list(range(1, 151)))
        self.assertEqual(self.a.dropped, 0)
        self.assertEqual([line.split(" at ")[0] for line in logged], ["lost Redis", "Redis is back"], logged)

    @inlineCallbacks
    def test_restart_in_one_call(self) -> Any:
        """
        servers.redis().restart() between two publications: the ones after it reach b's member once, in order.
        """
        self.a.publish(message(1), ToRoom("#dev"))
        yield self.bob.has_id(1)
        self.redis.restart()
        for id in range(2, 41):
            self.a.publish(message(id), ToRoom("#dev"))
        yield self.bob.has_id(40)
        self.assertEqual(self.bob.messages(), list(range(1, 41)))

    @inlineCallbacks
    def test_queue_bound(self) -> Any:
        """
        While Redis is away, publications beyond the queue's bound are dropped and counted; the rest arrive.
        """
        c = self.node("c", queue_limit=5)
        yield c.ready
        self.redis.stop()
        yield until(lambda: not c.connected)
        for id in range(1, 9):
            c.publish(message(id, sender="dave"), ToRoom("#dev"))
        self.assertEqual((c.queued, c.dropped), (5, 3))
        self.redis.start()
        yield self.bob.has_id(5)
        yield until(lambda: c.queued == 0)
        self.assertEqual(self.bob.messages(), [1, 2, 3, 4, 5])

    @inlineCallbacks
    def test_remote_neighbours(self) -> Any:
        """
        A status change of frank (on b) to his neighbours reaches erin (on a) while they share #ops, not
        after he left it (chat.delivery.Directory follows the rooms of other daemons' users too).
        """
        erin, frank = Member("erin"), Member("frank")
        self.enter(self.a, erin, "#ops")
        self.enter(self.b, frank, "#ops")
        yield erin.wait(lambda seen: events.Joined(T, "#ops", "frank") in seen)
        self.b.publish(events.StatusChanged("frank", "lunch"), ToNeighbours("frank"))
        self.b.publish(events.Parted(T, "#ops", "frank"), ToRoom("#ops"))
        self.b.publish(events.StatusChanged("frank", "back"), ToNeighbours("frank"))
        self.b.publish(events.Private(1, T, "frank", "erin", "bye"), ToUsers(("erin",)))
        yield erin.has_id(1)
        statuses = [event for event in erin.events if isinstance(event, events.StatusChanged)]
        self.assertEqual(statuses, [events.StatusChanged("frank", "lunch")])
        self.assertIn(events.StatusChanged("frank", "back"), frank.events, "delivered to frank himself")
        self.assertEqual(self.alice.events.count(events.StatusChanged("frank", "lunch")), 0, "alice is not in #ops")

    @inlineCallbacks
    def test_subscription_lost(self) -> Any:
        """
        Publications made while b's subscription is cut (a still publishing) reach b's member once it is
        back, read from the stream, once each and in order.
        """
        self.a.publish(message(1), ToRoom("#dev"))
        yield self.bob.has_id(1)
        self.assertEqual(self.redis.command("CLIENT", "KILL", "TYPE", "pubsub"), b":2")
        for id in range(2, 22):
            self.a.publish(message(id), ToRoom("#dev"))
        yield self.bob.has_id(21)
        yield until(lambda: self.b.connected)
        self.a.publish(message(22), ToRoom("#dev"))
        yield self.bob.has_id(22)
        self.assertEqual(self.bob.messages(), list(range(1, 23)))

    @inlineCallbacks
    def test_duplicates_dropped(self) -> Any:
        """
        A publication received twice is delivered once; a node's new run (restarted, numbering from 1
        again) is not mistaken for duplicates.
        """
        def envelope(run: str, seq: int, id: int) -> str:
            return wire.encode(wire.Envelope("z", run, seq, message(id, sender="zed"), ToRoom("#dev"))).decode()

        self.redis.command("PUBLISH", CHANNEL, "1-1 " + envelope("r1", 1, 1))
        self.redis.command("PUBLISH", CHANNEL, "1-2 " + envelope("r1", 2, 2))
        self.redis.command("PUBLISH", CHANNEL, "1-3 " + envelope("r1", 1, 1))
        self.redis.command("PUBLISH", CHANNEL, "1-4 " + envelope("r2", 1, 3))
        yield self.bob.has_id(3)
        self.assertEqual(self.bob.messages(), [1, 2, 3])
        self.assertEqual(self.b.duplicates, 1)

    @inlineCallbacks
    def test_garbage_on_channel(self) -> Any:
        """
        Junk published on the channel by someone else is dropped; later publications still arrive.
        """
        self.redis.command("PUBLISH", CHANNEL, "not a publication")
        self.redis.command("PUBLISH", CHANNEL, "1-0 {\"v\":1}")
        self.a.publish(message(1), ToRoom("#dev"))
        yield self.bob.has_id(1)
        self.assertEqual(self.bob.messages(), [1])


class UrlTests(unittest.SynchronousTestCase):
    """
    L{parse_url} reads the C{--redis} URL.
    """

    def test_parts(self) -> None:
        """
        Host, port, database and password come from the URL, with defaults; other schemes are refused.
        """
        self.assertEqual(parse_url("redis://127.0.0.1:7000/2"), ("127.0.0.1", 7000, 2, None))
        self.assertEqual(parse_url("redis://:s%40cret@redis.example"), ("redis.example", 6379, None, "s@cret"))
        self.assertRaises(ValueError, parse_url, "rediss://host")
        self.assertRaises(ValueError, parse_url, "redis://host/x")

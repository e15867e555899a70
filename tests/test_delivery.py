"""
Tests for L{chat.delivery} and L{chat.interfaces.Outgoing}: an L{Outgoing}
renders its event at most once per format, the L{Directory} follows
membership in delivery order, and the L{LocalBus} resolves each address to
the participants of this process.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from chat import events
from chat.delivery import Directory, LocalBus
from chat.interfaces import IParticipant, Outgoing, ToNeighbours, ToParticipant, ToRoom, ToUsers
from chat.render import render_json, render_text
from chat.sequencer import Sequencer

TS = datetime(2025, 11, 21, 14, 2, 3, 500000, tzinfo=timezone.utc)


class CountingRenderer:
    """
    A renderer that counts its calls, rendering with C{render}.
    """

    def __init__(self, render: Any = render_json) -> None:
        self.render = render
        self.calls: list[events.Event] = []

    def __call__(self, event: events.Event) -> bytes:
        self.calls.append(event)
        data: bytes = self.render(event)
        return data


@implementer(IParticipant)
class Recorder:
    """
    A participant that records what it is delivered: the L{Outgoing} values
    and the bytes it rendered with its C{renderer}.
    """

    account = None
    secure = False
    peer = "192.0.2.1"

    def __init__(self, nick: str, renderer: Any = render_json) -> None:
        self.nick = nick
        self.renderer = renderer
        self.outgoing: list[Outgoing] = []
        self.received: list[bytes] = []

    def deliver(self, outgoing: Outgoing) -> None:
        self.outgoing.append(outgoing)
        self.received.append(outgoing[self.renderer])

    def close(self, reason: str) -> None:
        pass

    def seen(self) -> list[events.Event]:
        """
        The events delivered so far, in order.
        """
        return [outgoing.event for outgoing in self.outgoing]

    def take(self) -> list[events.Event]:
        """
        The events delivered since the last call, then forget them.
        """
        delivered = self.seen()
        self.outgoing.clear()
        self.received.clear()
        return delivered

    def __repr__(self) -> str:
        return f"<Recorder {self.nick}>"


def message(text: str, room: str = "#x", sender: str = "alice", id: int = 1) -> events.Message:
    """
    A room message at L{TS}.
    """
    return events.Message(id, TS, room, sender, text)


class OutgoingTests(SynchronousTestCase):
    """
    L{Outgoing}: one event and its renderings.
    """

    def test_renders_once_per_renderer(self) -> None:
        """
        Asking many times for one renderer's bytes calls it once and gives the same bytes object.
        """
        event = message("hello")
        renderer = CountingRenderer()
        outgoing = Outgoing(event)
        first = outgoing[renderer]
        second = outgoing[renderer]
        third = outgoing[renderer]
        self.assertEqual(renderer.calls, [event])
        self.assertIs(second, first)
        self.assertIs(third, first)
        self.assertEqual(first, render_json(event))
        self.assertIs(outgoing.event, event)

    def test_each_renderer_once(self) -> None:
        """
        Each format is rendered once, independently of the others.
        """
        event = message("hello")
        as_json, as_text = CountingRenderer(render_json), CountingRenderer(render_text)
        outgoing = Outgoing(event)
        for _ in range(3):
            self.assertEqual(outgoing[as_json], render_json(event))
            self.assertEqual(outgoing[as_text], render_text(event))
        self.assertEqual(len(as_json.calls), 1)
        self.assertEqual(len(as_text.calls), 1)

    def test_nothing_rendered_unasked(self) -> None:
        """
        An outgoing event nobody asks for is never rendered.
        """
        renderer = CountingRenderer()
        outgoing = Outgoing(message("hello"))
        self.assertEqual(renderer.calls, [])
        self.assertEqual(len(outgoing), 0)

    def test_bus_renders_once_for_all_recipients(self) -> None:
        """
        A room message to many recipients sharing a format is rendered once, all getting the same bytes.
        """
        as_json, as_text = CountingRenderer(render_json), CountingRenderer(render_text)
        bus = LocalBus()
        members = [Recorder(f"u{i}", as_json if i % 2 else as_text) for i in range(6)]
        for member in members:
            register(bus, member)
            bus.publish(events.Joined(TS, "#x", member.nick), ToRoom("#x"))
        as_json.calls.clear()
        as_text.calls.clear()
        event = message("hello", sender="u0")
        bus.publish(event, ToRoom("#x"))
        self.assertEqual(as_json.calls, [event])
        self.assertEqual(as_text.calls, [event])
        json_bytes = [member.received[-1] for member in members if member.renderer is as_json]
        text_bytes = [member.received[-1] for member in members if member.renderer is as_text]
        self.assertEqual(len(json_bytes), 3)
        for data in json_bytes:
            self.assertIs(data, json_bytes[0])
        for data in text_bytes:
            self.assertIs(data, text_bytes[0])
        self.assertEqual(json.loads(json_bytes[0])["text"], "hello")
        self.assertEqual(text_bytes[0], render_text(event))


def register(bus: LocalBus, participant: Recorder) -> None:
    """
    Publish the C{registered} event of C{participant} (named by its nick), as the domain does.
    """
    bus.publish(events.Registered(participant.nick), ToParticipant(participant))


class DeliveryTestCase(SynchronousTestCase):
    """
    A local bus with alice, bob and carol registered (none in any room yet).
    """

    def setUp(self) -> None:
        self.bus = LocalBus()
        self.alice, self.bob, self.carol = Recorder("alice"), Recorder("bob"), Recorder("carol")
        for participant in (self.alice, self.bob, self.carol):
            register(self.bus, participant)
            participant.take()

    def join(self, participant: Recorder, room: str) -> None:
        """
        Publish C{participant}'s join of C{room} to the room, forgetting what anybody was delivered.
        """
        self.bus.publish(events.Joined(TS, room, participant.nick), ToRoom(room.lower()))
        self.take_all()

    def take_all(self) -> None:
        """
        Forget what alice, bob and carol were delivered.
        """
        for participant in (self.alice, self.bob, self.carol):
            participant.take()

    def assert_delivered(self, event: events.Event, *participants: Recorder) -> None:
        """
        Assert that exactly C{participants}, of alice, bob and carol, were delivered C{event} once,
        and nothing else since the last take.
        """
        for participant in (self.alice, self.bob, self.carol):
            expected = [event] if participant in participants else []
            self.assertEqual(participant.take(), expected, participant)


class DirectoryTests(DeliveryTestCase):
    """
    L{Directory}: a room's audience follows joins, parts, quits and nick
    changes, in the order they are delivered.
    """

    def test_registered_goes_to_its_participant(self) -> None:
        """
        C{registered} reaches only its connection, which is then known by its nick.
        """
        dave = Recorder("Dave")
        event = events.Registered("Dave")
        self.bus.publish(event, ToParticipant(dave))
        self.assertEqual(dave.seen(), [event])
        self.assertEqual(self.bus.directory.resolve(ToUsers(("dave",))), [dave])

    def test_newcomer_sees_own_join(self) -> None:
        """
        A join reaches everyone already in the room and the newcomer.
        """
        self.join(self.alice, "#x")
        event = events.Joined(TS, "#x", "bob")
        self.bus.publish(event, ToRoom("#x"))
        self.assert_delivered(event, self.alice, self.bob)
        self.assertEqual(set(self.bus.directory.audience("#x")), {self.alice, self.bob})

    def test_neighbours_of_a_user_elsewhere(self) -> None:
        """
        A user with no connection here (on another daemon of a cluster) who
        joined a room has its members here as neighbours, until they part or quit.
        """
        self.join(self.alice, "#x")
        self.bus.publish(events.Joined(TS, "#x", "zed"), ToRoom("#x"))
        self.take_all()
        status = events.StatusChanged("zed", "away")
        self.bus.publish(status, ToNeighbours("zed"))
        self.assert_delivered(status, self.alice)
        self.assertEqual(self.bus.directory.audience("#x"), (self.alice,))
        quit = events.Quit(TS, "zed", "gone")
        self.bus.publish(quit, ToNeighbours("zed"))
        self.assert_delivered(quit, self.alice)
        self.bus.publish(status, ToNeighbours("zed"))
        self.assert_delivered(status)

    def test_room_names_ignore_case(self) -> None:
        """
        A join of C{#Dev} puts the user in the audience of C{#dev}.
        """
        self.bus.publish(events.Joined(TS, "#Dev", "Alice"), ToRoom("#dev"))
        self.assertEqual(self.bus.directory.audience("#dev"), (self.alice,))

    def test_message_reaches_members_only(self) -> None:
        """
        A message to a room reaches its members, not other registered users.
        """
        self.join(self.alice, "#x")
        self.join(self.bob, "#x")
        self.join(self.carol, "#y")
        event = message("hi")
        self.bus.publish(event, ToRoom("#x"))
        self.assert_delivered(event, self.alice, self.bob)

    def test_message_then_join(self) -> None:
        """
        A message published before a newcomer's join does not reach the newcomer; the next one does.
        """
        self.join(self.alice, "#x")
        first = message("before")
        self.bus.publish(first, ToRoom("#x"))
        joined = events.Joined(TS, "#x", "bob")
        self.bus.publish(joined, ToRoom("#x"))
        self.assertEqual(self.alice.take(), [first, joined])
        self.assertEqual(self.bob.take(), [joined])
        second = message("after", id=2)
        self.bus.publish(second, ToRoom("#x"))
        self.assert_delivered(second, self.alice, self.bob)

    def test_part_reaches_leaver_then_removes(self) -> None:
        """
        A part reaches the leaver too; later messages to the room do not.
        """
        self.join(self.alice, "#x")
        self.join(self.bob, "#x")
        parted = events.Parted(TS, "#x", "bob", "lunch")
        self.bus.publish(parted, ToRoom("#x"))
        self.assert_delivered(parted, self.alice, self.bob)
        later = message("still here?")
        self.bus.publish(later, ToRoom("#x"))
        self.assert_delivered(later, self.alice)

    def test_part_of_one_room_keeps_others(self) -> None:
        """
        Leaving one room keeps the user in the others.
        """
        self.join(self.bob, "#x")
        self.join(self.bob, "#y")
        self.bus.publish(events.Parted(TS, "#x", "bob"), ToRoom("#x"))
        self.take_all()
        event = message("in y", room="#y")
        self.bus.publish(event, ToRoom("#y"))
        self.assert_delivered(event, self.bob)
        self.assertEqual(self.bus.directory.audience("#x"), ())

    def test_quit_reaches_neighbours_then_removes_everywhere(self) -> None:
        """
        A quit reaches those sharing a room (not the leaver); the leaver is then out of every room and unknown.
        """
        self.join(self.alice, "#x")
        self.join(self.bob, "#x")
        self.join(self.alice, "#y")
        self.join(self.carol, "#y")
        quit = events.Quit(TS, "alice", "gone")
        self.bus.publish(quit, ToNeighbours("alice", itself=False))
        self.assert_delivered(quit, self.bob, self.carol)
        for room in ("#x", "#y"):
            event = message("where is alice?", room=room)
            self.bus.publish(event, ToRoom(room))
            self.assertEqual(self.alice.take(), [])
        self.assertEqual(self.bus.directory.resolve(ToUsers(("alice",))), [])
        self.assertEqual(self.bus.directory.resolve(ToNeighbours("alice")), [])

    def test_nick_change(self) -> None:
        """
        After a nick change the user is reached by the new nick, not the old, and keeps their rooms.
        """
        self.join(self.alice, "#x")
        self.join(self.bob, "#x")
        changed = events.NickChanged(TS, "alice", "Alicia")
        self.bus.publish(changed, ToNeighbours("alicia"))
        self.assert_delivered(changed, self.alice, self.bob)
        directory = self.bus.directory
        self.assertEqual(directory.resolve(ToUsers(("alicia",))), [self.alice])
        self.assertEqual(directory.resolve(ToUsers(("alice",))), [])
        self.assertEqual(set(directory.resolve(ToNeighbours("alicia"))), {self.alice, self.bob})
        # Her rooms follow the new nick: quitting under it takes her out of #x.
        self.bus.publish(events.Quit(TS, "Alicia", "bye"), ToNeighbours("alicia", itself=False))
        self.assertEqual(directory.audience("#x"), (self.bob,))

    def test_nick_change_of_case_only(self) -> None:
        """
        A change of case keeps the user reachable.
        """
        self.join(self.alice, "#x")
        self.bus.publish(events.NickChanged(TS, "alice", "ALICE"), ToNeighbours("alice"))
        self.assertEqual(self.bus.directory.resolve(ToUsers(("alice",))), [self.alice])
        self.assertEqual(self.bus.directory.audience("#x"), (self.alice,))

    def test_delivery_order_not_domain_order(self) -> None:
        """
        With a message held back for its commit, a join and a part published after it do not change who
        gets it: the members at its point of the order.
        """
        sequencer = Sequencer(self.bus)
        self.join(self.alice, "#x")
        self.join(self.bob, "#x")
        committed: Deferred[None] = Deferred()
        held = message("held")
        sequencer.publish_after(committed, held, ToRoom("#x"))
        joined = events.Joined(TS, "#x", "carol")
        parted = events.Parted(TS, "#x", "bob")
        sequencer.publish(joined, ToRoom("#x"))
        sequencer.publish(parted, ToRoom("#x"))
        for participant in (self.alice, self.bob, self.carol):
            self.assertEqual(participant.seen(), [], participant)
        committed.callback(None)
        self.assertEqual(self.alice.take(), [held, joined, parted])
        self.assertEqual(self.bob.take(), [held, joined, parted])
        self.assertEqual(self.carol.take(), [joined, parted])


class AddressTests(DeliveryTestCase):
    """
    Each kind of address resolves to the right participants, each once.
    """

    def setUp(self) -> None:
        super().setUp()
        self.dave = Recorder("dave")
        register(self.bus, self.dave)
        self.dave.take()
        # alice and bob share #x and #y; carol is in #y; dave is in #z alone.
        self.join(self.alice, "#x")
        self.join(self.bob, "#x")
        self.join(self.alice, "#y")
        self.join(self.bob, "#y")
        self.join(self.carol, "#y")
        self.bus.publish(events.Joined(TS, "#z", "dave"), ToRoom("#z"))
        self.dave.take()

    def test_neighbours_with_itself(self) -> None:
        """
        C{ToNeighbours} reaches the user and everyone sharing a room with them, each once.
        """
        event = events.StatusChanged("alice", "away")
        self.bus.publish(event, ToNeighbours("alice"))
        self.assert_delivered(event, self.alice, self.bob, self.carol)
        self.assertEqual(self.dave.seen(), [])

    def test_neighbours_without_itself(self) -> None:
        """
        C{ToNeighbours} with C{itself} false leaves the user out.
        """
        event = events.StatusChanged("alice", "away")
        self.bus.publish(event, ToNeighbours("alice", itself=False))
        self.assert_delivered(event, self.bob, self.carol)
        self.assertEqual(self.dave.seen(), [])

    def test_neighbours_of_lonely_user(self) -> None:
        """
        A user alone in their rooms is their only neighbour, and none without C{itself}.
        """
        self.assertEqual(self.bus.directory.resolve(ToNeighbours("dave")), [self.dave])
        self.assertEqual(self.bus.directory.resolve(ToNeighbours("dave", itself=False)), [])
        self.assertEqual(self.bus.directory.resolve(ToNeighbours("nobody")), [])

    def test_users_skips_absent_and_dedups(self) -> None:
        """
        C{ToUsers} reaches each present nick once and skips absent ones.
        """
        event = events.Info("hello")
        self.bus.publish(event, ToUsers(("bob", "nobody", "dave", "bob")))
        self.assert_delivered(event, self.bob)
        self.assertEqual(self.dave.seen(), [event])

    def test_users_none_present(self) -> None:
        """
        C{ToUsers} of absent nicks reaches nobody.
        """
        event = events.Info("hello")
        self.bus.publish(event, ToUsers(("nobody",)))
        self.assert_delivered(event)

    def test_participant(self) -> None:
        """
        C{ToParticipant} reaches that connection only, registered or not.
        """
        event = events.Pong("t")
        self.bus.publish(event, ToParticipant(self.carol))
        self.assert_delivered(event, self.carol)
        stranger = Recorder("")
        self.bus.publish(event, ToParticipant(stranger))
        self.assertEqual(stranger.seen(), [event])
        self.assert_delivered(event)

    def test_unknown_room(self) -> None:
        """
        A room nobody is in has no audience.
        """
        self.bus.publish(message("echo", room="#nowhere"), ToRoom("#nowhere"))
        self.assert_delivered(message("echo"))
        self.assertEqual(self.dave.seen(), [])


class LocalBusTests(DeliveryTestCase):
    """
    L{LocalBus}: delivers each event once per participant through
    L{IParticipant.deliver}, all sharing one L{Outgoing}.
    """

    def test_one_outgoing_shared(self) -> None:
        """
        Every recipient of an event is delivered it once, in the same L{Outgoing}.
        """
        self.join(self.alice, "#x")
        self.join(self.bob, "#x")
        self.join(self.carol, "#x")
        event = message("hi")
        self.bus.publish(event, ToRoom("#x"))
        outgoings = [p.outgoing for p in (self.alice, self.bob, self.carol)]
        for delivered in outgoings:
            self.assertEqual(len(delivered), 1)
            self.assertIs(delivered[0], outgoings[0][0])
        self.assertIs(outgoings[0][0].event, event)

    def test_events_in_publication_order(self) -> None:
        """
        Events reach each participant in the order they were published.
        """
        self.join(self.alice, "#x")
        published = [message(str(i), id=i) for i in range(5)]
        for event in published:
            self.bus.publish(event, ToRoom("#x"))
        self.assertEqual(self.alice.take(), published)

    def test_shared_directory(self) -> None:
        """
        A bus built over a directory resolves with it.
        """
        directory = Directory()
        bus = LocalBus(directory)
        self.assertIs(bus.directory, directory)
        eve = Recorder("eve")
        bus.publish(events.Registered("eve"), ToParticipant(eve))
        self.assertEqual(directory.resolve(ToUsers(("eve",))), [eve])

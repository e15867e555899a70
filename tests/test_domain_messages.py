"""
Tests for the messages of L{chat.domain}: room messages and actions, private
messages, and durable delivery, each message published only once stored and
what follows kept in order behind it (PROTOCOL.md sections 3.5 and 4), with
a recording event sink, a L{MemoryStore} or a L{HeldStore} whose writes
complete when the test says, and literal times.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from twisted.internet.defer import Deferred

from chat import errors, events
from chat.domain import LOBBY
from chat.memory_store import MemoryStore
from chat.storage import Numbered
from tests.support import T0, DomainTestCase, FakeParticipant, RecordingSink, at, make_domain


class SayTests(DomainTestCase):
    """
    L{ChatDomain.say}: messages to the current room.
    """

    def test_delivered_to_all_members_including_sender(self) -> None:
        """
        A message goes once to every member of the current room, the sender included.
        """
        alice, pa = self.register("alice")
        _, pb = self.register("bob")
        self.domain.say(alice, "hi", T0 + 3)
        [(event, recipients)] = self.take()
        self.assertEqual(event, events.Message(1, at(3), LOBBY, "alice", "hi", False))
        self.assert_same_recipients(recipients, [pa, pb])

    def test_stored(self) -> None:
        """
        The message is kept in its room's history.
        """
        alice, _ = self.register("alice")
        self.domain.say(alice, "hi", T0 + 3)
        self.assertEqual(
            list(self.successResultOf(self.store.recent(LOBBY, 10))), [events.Message(1, at(3), LOBBY, "alice", "hi")]
        )

    def test_action(self) -> None:
        """
        An action message carries action=True.
        """
        alice, pa = self.register("alice")
        self.domain.say(alice, "waves", T0, action=True)
        self.assertEqual(self.take(), [(events.Message(1, at(), LOBBY, "alice", "waves", True), (pa,))])

    def test_ids_increase_across_rooms_and_privates(self) -> None:
        """
        Message ids are 1, 2, 3... across rooms and private messages.
        """
        alice, _ = self.register("alice")
        self.register("bob")
        self.domain.say(alice, "a", T0)
        self.domain.private(alice, "bob", "b", T0)
        self.domain.join(alice, "#x", T0)
        self.domain.say(alice, "c", T0)
        ids = [e.id for e, _ in self.take() if isinstance(e, (events.Message, events.Private))]
        self.assertEqual(ids, [1, 2, 3])

    def test_current_room_only(self) -> None:
        """
        A message goes to the room most recently joined, and only to its members.
        """
        alice, pa = self.register("alice")
        self.register("bob")
        self.domain.join(alice, "#x", T0)
        self.take()
        self.domain.say(alice, "hi", T0)
        self.assertEqual(self.take(), [(events.Message(1, at(), "#x", "alice", "hi"), (pa,))])
        self.assertEqual(list(self.successResultOf(self.store.recent(LOBBY, 10))), [])

    def test_named_room(self) -> None:
        """
        A message to a named room the user is in goes there, not to the current room;
        a room the user is not in raises NotInRoom, one that does not exist NoSuchRoom.
        """
        alice, pa = self.register("alice")
        bob, pb = self.register("bob")
        self.domain.join(alice, "#x", T0)
        self.take()
        self.domain.say(alice, "hi", T0, room="#LOBBY")
        self.assertEqual(self.take(), [(events.Message(1, at(), LOBBY, "alice", "hi"), (pa, pb))])
        self.domain.join(bob, "#y", T0)
        self.assertRaises(errors.NotInRoom, self.domain.say, alice, "hi", T0, room="#y")
        self.assertRaises(errors.NoSuchRoom, self.domain.say, alice, "hi", T0, room="#nowhere")

    def test_empty_text_ignored(self) -> None:
        """
        An empty message publishes and stores nothing and spends no id.
        """
        alice, _ = self.register("alice", T0)
        self.domain.say(alice, "", T0 + 9)
        self.assertEqual(self.take(), [])
        self.assertEqual(list(self.successResultOf(self.store.recent(LOBBY, 10))), [])
        self.assertEqual(alice.active, T0)
        self.domain.say(alice, "x", T0)
        self.assertEqual(self.take()[0][0].id, 1)  # type: ignore[union-attr]

    def test_not_in_room(self) -> None:
        """
        Saying something while in no room raises NotInRoom.
        """
        alice, _ = self.register("alice")
        self.domain.part(alice, None, "", T0)
        self.take()
        self.assertRaises(errors.NotInRoom, self.domain.say, alice, "hi", T0)
        self.assertEqual(self.take(), [])

    def test_updates_idle(self) -> None:
        """
        Saying something resets the sender's idle time.
        """
        alice, _ = self.register("alice", T0)
        self.domain.say(alice, "hi", T0 + 30)
        self.assertEqual(alice.active, T0 + 30)
        self.assertEqual(alice.idle(T0 + 45), 15)


class PrivateTests(DomainTestCase):
    """
    L{ChatDomain.private}.
    """

    def test_to_target_and_echo(self) -> None:
        """
        A private message goes to the recipient and is echoed to the sender, and no one else.
        """
        alice, pa = self.register("alice")
        _, pb = self.register("bob")
        self.register("carol")
        self.domain.private(alice, "bob", "psst", T0 + 2)
        [(event, recipients)] = self.take()
        self.assertEqual(event, events.Private(1, at(2), "alice", "bob", "psst", False, False))
        self.assert_same_recipients(recipients, [pa, pb])

    def test_target_ignoring_case(self) -> None:
        """
        The target nick is matched ignoring case and reported as registered.
        """
        alice, _ = self.register("alice")
        self.register("Bob")
        self.domain.private(alice, "BOB", "hi", T0, action=True)
        [(event, _)] = self.take()
        self.assertEqual(event, events.Private(1, at(), "alice", "Bob", "hi", True))

    def test_no_such_nick(self) -> None:
        """
        A private message to nobody raises NoSuchNick.
        """
        alice, _ = self.register("alice")
        self.assertRaises(errors.NoSuchNick, self.domain.private, alice, "bob", "hi", T0)
        self.assertEqual(self.take(), [])

    def test_to_self_once(self) -> None:
        """
        A private message to oneself is delivered once.
        """
        alice, pa = self.register("alice")
        self.domain.private(alice, "Alice", "note", T0)
        self.assertEqual(self.take(), [(events.Private(1, at(), "alice", "alice", "note"), (pa,))])

    def test_empty_text(self) -> None:
        """
        An empty private message raises BadArguments.
        """
        alice, _ = self.register("alice")
        self.register("bob")
        self.assertRaises(errors.BadArguments, self.domain.private, alice, "bob", "", T0)
        self.assertEqual(self.take(), [])

    def test_not_in_history(self) -> None:
        """
        Private messages are not kept in any room's history.
        """
        alice, _ = self.register("alice")
        self.register("bob")
        self.domain.private(alice, "bob", "psst", T0)
        self.assertEqual(list(self.successResultOf(self.store.recent(LOBBY, 10))), [])


class HeldStore(MemoryStore):
    """
    A memory store whose writes complete only when the test says: each
    C{add} returns a Deferred kept in C{held}, fired by L{commit}.
    """

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Deferred[None]] = []

    def add(self, message: events.Message | events.Private) -> Deferred[None]:
        super().add(message)
        done: Deferred[None] = Deferred()
        self.held.append(done)
        return done

    def commit(self) -> None:
        held, self.held = self.held, []
        for done in held:
            done.callback(None)

    def break_next(self) -> None:
        self.held.pop(0).errback(OSError("disk full"))


class DurableDeliveryTests(DomainTestCase):
    """
    Messages are published only once stored, and what follows waits behind them.
    """

    def setUp(self) -> None:
        self.sink = RecordingSink()
        self.store = HeldStore()
        self.domain = make_domain(self.sink, self.store, self.history_on_join)

    def test_message_waits_for_its_commit(self) -> None:
        """
        A room message reaches nobody, not even its sender, before its write completes.
        """
        (alice, pa), (_, pb) = self.register("alice"), self.register("bob")
        self.domain.say(alice, "hi", T0 + 1)
        self.assertEqual(self.take(), [])
        self.store.commit()
        [(message, recipients)] = self.take()
        self.assertEqual(message, events.Message(1, at(1), LOBBY, "alice", "hi"))
        self.assert_same_recipients(recipients, [pa, pb])

    def test_later_events_keep_their_order(self) -> None:
        """
        Events produced after a waiting message (a status, a reply) wait behind it.
        """
        (alice, _), (bob, pb) = self.register("alice"), self.register("bob")
        self.domain.say(alice, "first", T0)
        self.domain.set_status(bob, "away")
        self.domain.tell(pb, events.Pong("x"))
        self.assertEqual(self.take(), [])
        self.store.commit()
        self.assertEqual(
            [type(event).__name__ for event, _ in self.take()], ["Message", "StatusChanged", "Pong"]
        )

    def test_unstored_message_not_sent(self) -> None:
        """
        A message whose write fails reaches nobody, leaves the join replay,
        and its sender alone gets error busy; what follows still goes out.
        """
        (alice, pa), (bob, _) = self.register("alice"), self.register("bob")
        self.domain.say(alice, "lost", T0)
        self.domain.set_status(bob, "here")
        self.store.break_next()
        published = self.take()
        self.assertEqual(
            published[0],
            (events.Error("busy", "your message could not be stored, so it was not sent; try again"), (pa,)),
        )
        self.assertEqual(type(published[1][0]), events.StatusChanged)
        carol, pc = self.register("carol")
        self.domain.join(carol, "#other", T0)
        self.domain.join(carol, LOBBY, T0)
        self.assertEqual(self.domain.rooms[LOBBY].history, deque())

    def test_joiner_sees_waiting_message_once(self) -> None:
        """
        Someone joining while a message waits for its commit gets it in the
        replay, after the commit, and not live as well.
        """
        alice, pa = self.register("alice")
        self.domain.say(alice, "before you came", T0)
        carol = FakeParticipant("carol")
        self.domain.register(carol, "carol", T0)
        self.assertEqual(self.take(), [])
        self.store.commit()
        to_carol = [event for event, recipients in self.take() if carol in recipients]
        messages = [e for e in to_carol if isinstance(e, events.Message)]
        [history] = [e for e in to_carol if isinstance(e, events.History)]
        self.assertEqual(messages, [])
        self.assertEqual([m.text for m in history.messages], ["before you came"])

    def test_close_after_pending_events(self) -> None:
        """
        An action passed to then runs after the events published before it.
        """
        alice, pa = self.register("alice")
        seen: list[str] = []
        self.domain.say(alice, "last words", T0)
        self.domain.then(lambda: seen.append("closed"))
        self.assertEqual(seen, [])
        self.store.commit()
        self.assertEqual(seen, ["closed"])
        self.assertEqual(type(self.take()[0][0]), events.Message)


class NumberingStore(MemoryStore):
    """
    A memory store that numbers messages as it commits them, as a
    cluster's PostgreSQL store does, its commits held until L{commit}.
    """

    numbers_messages = True

    def __init__(self) -> None:
        super().__init__()
        self.top = 100
        self.given: list[events.Message | events.Private] = []
        self.group: Deferred[Numbered | None] | None = None

    def add(self, message: events.Message | events.Private) -> Deferred[Numbered | None]:
        self.given.append(message)
        if self.group is None:
            self.group = Deferred()
        return self.group

    def commit(self) -> None:
        pairs = []
        for given in self.given:
            self.top += 1
            stored = dataclasses.replace(given, id=self.top, after=self.top - 1)
            super().add(stored)
            pairs.append((given, stored))
        group, self.group, self.given = self.group, None, []
        assert group is not None
        group.callback(Numbered(pairs))


class NumberedAtCommitTests(DomainTestCase):
    """
    With a store that numbers messages as it commits them, the domain
    gives provisional ids, and publishes and remembers each message under
    the id the commit gave it.
    """

    def setUp(self) -> None:
        self.sink = RecordingSink()
        self.store = self.numbering = NumberingStore()
        self.domain = make_domain(self.sink, self.store, self.history_on_join)

    def test_published_under_the_stored_id(self) -> None:
        alice, pa = self.register("alice")
        self.take()
        self.domain.say(alice, "hello", T0)
        self.domain.private(alice, "alice", "note to self", T0)
        [given, private] = self.numbering.given
        self.assertLess(given.id, 0)  # provisional
        self.assertLess(private.id, 0)
        self.assertEqual(self.take(), [])  # nothing before the commit
        self.numbering.commit()
        published = [event for event, _ in self.take()]
        self.assertEqual([(type(e), e.id) for e in published], [(events.Message, 101), (events.Private, 102)])
        self.assertEqual([m.id for m in self.domain.rooms[LOBBY].history], [101])

    def test_newcomer_history_made_after_the_commit(self) -> None:
        """
        A user who joins while a message waits for its commit gets it in
        the room's history, under its stored id, and not twice.
        """
        alice, _ = self.register("alice")
        self.domain.say(alice, "said before bob", T0)
        bob, pb = self.register("bob")
        self.take()
        self.numbering.commit()
        to_bob = [event for event, recipients in self.take() if pb in recipients]
        history = [e for e in to_bob if isinstance(e, events.History)]
        self.assertEqual([[m.id for m in h.messages] for h in history], [[101]])
        self.assertEqual([e for e in to_bob if isinstance(e, events.Message)], [])

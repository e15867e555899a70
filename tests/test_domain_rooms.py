"""
Tests for the rooms of L{chat.domain}: joining and parting, status and
topic, the user, room and whois queries, C{/history}, the history replayed
on join and the room's history cache (PROTOCOL.md sections 3.4 and 4), with
a recording event sink, a L{MemoryStore} and literal times.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred, fail

from chat import errors, events
from chat.domain import HISTORY_MAX, LOBBY, User
from chat.domain.state import DORMANT_ROOMS
from chat.memory_store import MemoryStore
from tests.support import T0, DomainTestCase, FakeParticipant, RecordingSink, at, make_domain


class HistoryOnJoinTests(DomainTestCase):
    """
    The C{history_on_join} bound on the history replayed when joining.
    """

    history_on_join = 2

    def test_history_on_join_bounds_replay(self) -> None:
        """
        Only the last C{history_on_join} messages are replayed on join.
        """
        alice, _ = self.register("alice")
        for i in range(4):
            self.domain.say(alice, f"m{i}", T0 + i)
        bob = FakeParticipant("bob")
        self.domain.register(bob, "bob", T0 + 10)
        history = self.take()[-1][0]
        assert isinstance(history, events.History)
        self.assertEqual([m.text for m in history.messages], ["m2", "m3"])


class NoHistoryOnJoinTests(DomainTestCase):
    """
    C{history_on_join = 0} (C{--history-on-join 0}, "0 for none").
    """

    history_on_join = 0

    def test_zero_history_on_join_replays_nothing(self) -> None:
        """
        With history_on_join 0 a newcomer's history event holds no message.
        """
        alice, _ = self.register("alice")
        self.domain.say(alice, "hello", T0 + 1)
        bob = FakeParticipant("bob")
        self.domain.register(bob, "bob", T0 + 2)
        self.assertEqual(self.take()[-1], (events.History(LOBBY, ()), (bob,)))


class JoinTests(DomainTestCase):
    """
    L{ChatDomain.join}.
    """

    def test_creates_room(self) -> None:
        """
        Joining a new room creates it; the joiner, its first operator, gets join, role, users and empty history.
        """
        alice, pa = self.register("alice")
        self.domain.join(alice, "#x", T0 + 1)
        self.assertEqual(self.take(), [
            (events.Joined(at(1), "#x", "alice"), (pa,)),
            (events.RoleChanged("#x", "alice", events.OPERATOR, ""), (pa,)),
            (events.Users("#x", (events.UserInfo("alice", "", 1, events.OPERATOR),)), (pa,)),
            (events.History("#x", ()), (pa,)),
        ])
        self.assertEqual(sorted(self.domain.rooms), ["#lobby", "#x"])
        self.assertEqual(alice.room, self.domain.rooms["#x"])

    def test_adds_hash(self) -> None:
        """
        A room name without # gets one.
        """
        alice, _ = self.register("alice")
        self.domain.join(alice, "x", T0)
        self.assertEqual(alice.room.name, "#x")  # type: ignore[union-attr]

    def test_invalid_room_name(self) -> None:
        """
        An invalid room name raises BadArguments and joins nothing.
        """
        alice, _ = self.register("alice")
        for name in ["#", "#a b", "#" + "a" * 33, "#\u00e9", "#a.b", ""]:
            with self.subTest(name=name):
                self.assertRaises(errors.BadArguments, self.domain.join, alice, name, T0)
        self.domain.join(alice, "#" + "a" * 32, T0)
        self.assertEqual(len(alice.rooms), 2)

    def test_existing_room_notifies_members(self) -> None:
        """
        Joining an existing room announces the joiner to every member; users lists them all.
        """
        alice, pa = self.register("alice")
        bob, pb = self.register("bob")
        self.domain.join(alice, "#x", T0)
        self.take()
        self.domain.join(bob, "#X", T0)
        published = self.take()
        self.assertEqual(published[0][0], events.Joined(at(), "#x", "bob"))
        self.assert_same_recipients(published[0][1], [pa, pb])
        self.assertEqual(published[1], (
            events.Users("#x", (events.UserInfo("alice", "", 0, events.OPERATOR), events.UserInfo("bob", "", 0))),
            (pb,),
        ))

    def test_topic_sent_after_users(self) -> None:
        """
        Joining a room with a topic sends the topic between users and history.
        """
        alice, _ = self.register("alice")
        bob, pb = self.register("bob")
        self.domain.join(alice, "#x", T0)
        self.domain.topic(alice, "#x", "cats")
        self.take()
        self.domain.join(bob, "#x", T0)
        self.assertEqual(
            [type(e) for e, _ in self.take()],
            [events.Joined, events.Users, events.Topic, events.History],
        )
        self.domain.part(bob, "#x", "", T0)
        self.take()
        self.domain.join(bob, "#x", T0)
        self.assertEqual(self.take()[2], (events.Topic("#x", "cats", "alice"), (pb,)))

    def test_already_joined_makes_current(self) -> None:
        """
        Joining a room already joined only makes it current, with an info to the user.
        """
        alice, pa = self.register("alice")
        self.register("bob")
        self.domain.join(alice, "#x", T0)
        self.take()
        self.domain.join(alice, "#LOBBY", T0)
        self.assertEqual(self.take(), [(events.Info("#lobby is now your current room"), (pa,))])
        self.assertEqual(alice.room, self.domain.rooms[LOBBY])
        self.assertEqual(len(self.domain.rooms[LOBBY].members), 2)
        self.domain.say(alice, "back", T0)
        self.assertEqual(self.take()[0][0].room, LOBBY)  # type: ignore[union-attr]


class PartTests(DomainTestCase):
    """
    L{ChatDomain.part}.
    """

    def test_current_room_by_default(self) -> None:
        """
        Parting without a room leaves the current one, announced to its members and the leaver.
        """
        alice, pa = self.register("alice")
        bob, pb = self.register("bob")
        self.domain.join(alice, "#x", T0)
        self.domain.join(bob, "#x", T0)
        self.take()
        self.domain.part(alice, None, "", T0 + 4)
        [(event, recipients)] = self.take()
        self.assertEqual(event, events.Parted(at(4), "#x", "alice", ""))
        self.assert_same_recipients(recipients, [pa, pb])
        self.assertEqual(alice.room, self.domain.rooms[LOBBY])
        self.assertEqual(list(self.domain.rooms["#x"].members), ["bob"])

    def test_named_room_with_reason(self) -> None:
        """
        Parting a named room that is not current leaves it, with the reason; current stays.
        """
        alice, pa = self.register("alice")
        self.domain.join(alice, "#x", T0)
        self.take()
        self.domain.part(alice, "#LOBBY", "bye", T0)
        self.assertEqual(self.take(), [(events.Parted(at(), LOBBY, "alice", "bye"), (pa,))])
        self.assertEqual(alice.room, self.domain.rooms["#x"])

    def test_not_in_room(self) -> None:
        """
        Parting a room not joined raises NotInRoom; an unknown room NoSuchRoom.
        """
        alice, _ = self.register("alice")
        bob, _ = self.register("bob")
        self.domain.join(bob, "#x", T0)
        self.take()
        self.assertRaises(errors.NotInRoom, self.domain.part, alice, "#x", "", T0)
        self.assertRaises(errors.NoSuchRoom, self.domain.part, alice, "#nowhere", "", T0)
        self.domain.part(alice, None, "", T0)
        self.take()
        self.assertRaises(errors.NotInRoom, self.domain.part, alice, None, "", T0)
        self.assertEqual(self.take(), [])

    def test_empty_room_removed_lobby_kept(self) -> None:
        """
        A room left empty disappears, except #lobby.
        """
        alice, _ = self.register("alice")
        self.domain.join(alice, "#x", T0)
        self.domain.part(alice, "#x", "", T0)
        self.assertNotIn("#x", self.domain.rooms)
        self.domain.part(alice, LOBBY, "", T0)
        self.assertIn(LOBBY, self.domain.rooms)
        self.assertEqual(self.domain.rooms[LOBBY].members, {})
        self.assertIsNone(alice.room)


class QueryTests(DomainTestCase):
    """
    L{ChatDomain.list_users}, L{ChatDomain.list_rooms} and L{ChatDomain.whois}.
    """

    def test_list_users_sorted_with_idle(self) -> None:
        """
        Users of the current room are sorted ignoring case, with status and whole idle seconds.
        """
        bob, _ = self.register("bob", T0)
        alice, pa = self.register("Alice", T0)
        self.register("carol", T0 + 50)
        self.domain.say(bob, "hi", T0 + 10)
        self.domain.set_status(alice, "away")
        self.take()
        self.domain.list_users(alice, None, T0 + 100.9)
        self.assertEqual(self.take(), [(
            events.Users(LOBBY, (
                events.UserInfo("Alice", "away", 100),
                events.UserInfo("bob", "", 90, events.OPERATOR),  # the first in #lobby
                events.UserInfo("carol", "", 50),
            )),
            (pa,),
        )])

    def test_list_users_named_room(self) -> None:
        """
        Users of a named room, joined or not, can be listed; an unknown room raises NoSuchRoom.
        """
        alice, pa = self.register("alice")
        bob, _ = self.register("bob")
        self.domain.join(bob, "#x", T0)
        self.take()
        self.domain.list_users(alice, "#X", T0)
        self.assertEqual(self.take(), [(events.Users("#x", (events.UserInfo("bob", "", 0, events.OPERATOR),)), (pa,))])
        self.assertRaises(errors.NoSuchRoom, self.domain.list_users, alice, "#nowhere", T0)

    def test_list_users_in_no_room(self) -> None:
        """
        Listing users of the current room while in none raises NotInRoom.
        """
        alice, _ = self.register("alice")
        self.domain.part(alice, None, "", T0)
        self.assertRaises(errors.NotInRoom, self.domain.list_users, alice, None, T0)

    def test_list_rooms(self) -> None:
        """
        Rooms are sorted ignoring case with topic and count; an empty #lobby is listed.
        """
        alice, pa = self.register("alice")
        bob, _ = self.register("bob")
        self.domain.join(alice, "#b", T0)
        self.domain.join(bob, "#b", T0)
        self.domain.join(alice, "#A", T0)
        self.domain.topic(alice, None, "first")
        self.domain.part(alice, LOBBY, "", T0)
        self.domain.part(bob, LOBBY, "", T0)
        self.take()
        self.domain.list_rooms(alice)
        self.assertEqual(self.take(), [(
            events.Rooms((
                events.RoomInfo("#A", "first", 1),
                events.RoomInfo("#b", "", 2),
                events.RoomInfo(LOBBY, "", 0),
            )),
            (pa,),
        )])

    def test_whois(self) -> None:
        """
        Whois reports nick, status, rooms in join order, since, idle, guest and not secure.
        """
        alice, pa = self.register("alice")
        bob, _ = self.register("Bob", T0 + 5)
        self.domain.join(bob, "#x", T0)
        self.domain.set_status(bob, "busy")
        self.domain.say(bob, "hi", T0 + 20)
        self.take()
        self.domain.whois(alice, "bob", T0 + 62)
        self.assertEqual(self.take(), [(
            events.Whois("Bob", "busy", (LOBBY, "#x"), at(5), 42, False, False),
            (pa,),
        )])

    def test_whois_secure_from_participant(self) -> None:
        """
        Whois reports secure when the target's connection is secure.
        """
        alice, _ = self.register("alice")
        self.register("bob", secure=True)
        self.domain.whois(alice, "bob", T0)
        [(event, _)] = self.take()
        assert isinstance(event, events.Whois)
        self.assertTrue(event.secure)

    def test_whois_no_such_nick(self) -> None:
        """
        Whois of nobody raises NoSuchNick.
        """
        alice, _ = self.register("alice")
        self.assertRaises(errors.NoSuchNick, self.domain.whois, alice, "bob", T0)


class StatusTopicTests(DomainTestCase):
    """
    L{ChatDomain.set_status} and L{ChatDomain.topic}.
    """

    def test_status_to_neighbours(self) -> None:
        """
        A status goes to the user and everyone sharing a room, each once, and to no one else.
        """
        alice, pa = self.register("alice")
        bob, pb = self.register("bob")
        carol, _ = self.register("carol")
        self.domain.join(alice, "#x", T0)
        self.domain.join(bob, "#x", T0)
        self.domain.part(carol, LOBBY, "", T0)
        self.take()
        self.domain.set_status(alice, "lunch")
        [(event, recipients)] = self.take()
        self.assertEqual(event, events.StatusChanged("alice", "lunch"))
        self.assert_same_recipients(recipients, [pa, pb])
        self.assertEqual(alice.status, "lunch")

    def test_status_cleared(self) -> None:
        """
        An empty status clears it.
        """
        alice, pa = self.register("alice")
        self.domain.set_status(alice, "lunch")
        self.domain.set_status(alice, "")
        self.assertEqual(self.take()[-1], (events.StatusChanged("alice", ""), (pa,)))
        self.assertEqual(alice.status, "")

    def test_topic_show(self) -> None:
        """
        Without text the topic is shown to the requester only, of any existing room.
        """
        alice, pa = self.register("alice")
        bob, _ = self.register("bob")
        self.domain.join(bob, "#x", T0)
        self.take()
        self.domain.topic(alice, None, None)
        self.domain.topic(alice, "#x", None)
        self.assertEqual(self.take(), [
            (events.Topic(LOBBY, "", ""), (pa,)),
            (events.Topic("#x", "", ""), (pa,)),
        ])

    def test_topic_set(self) -> None:
        """
        Setting a topic publishes it to every member; showing it then reports text and setter.
        """
        alice, pa = self.register("alice")
        bob, pb = self.register("bob")
        self.domain.topic(alice, "#lobby", "welcome all")
        [(event, recipients)] = self.take()
        self.assertEqual(event, events.Topic(LOBBY, "welcome all", "alice"))
        self.assert_same_recipients(recipients, [pa, pb])
        self.domain.topic(bob, None, None)
        self.assertEqual(self.take(), [(events.Topic(LOBBY, "welcome all", "alice"), (pb,))])

    def test_topic_set_needs_membership(self) -> None:
        """
        Setting the topic of a room not joined raises NotInRoom; of an unknown room NoSuchRoom.
        """
        alice, _ = self.register("alice")
        bob, _ = self.register("bob")
        self.domain.join(bob, "#x", T0)
        self.take()
        self.assertRaises(errors.NotInRoom, self.domain.topic, alice, "#x", "mine")
        self.assertRaises(errors.NoSuchRoom, self.domain.topic, alice, "#nowhere", "mine")
        self.assertRaises(errors.NoSuchRoom, self.domain.topic, alice, "#nowhere", None)
        self.assertEqual(self.domain.rooms["#x"].topic, "")
        self.assertEqual(self.take(), [])

    def test_topic_in_no_room(self) -> None:
        """
        Showing or setting the current room's topic while in none raises NotInRoom.
        """
        alice, _ = self.register("alice")
        self.domain.part(alice, None, "", T0)
        self.assertRaises(errors.NotInRoom, self.domain.topic, alice, None, None)
        self.assertRaises(errors.NotInRoom, self.domain.topic, alice, None, "x")


class HistoryTests(DomainTestCase):
    """
    L{ChatDomain.history}.
    """

    def say_many(self, user: User, count: int) -> None:
        for i in range(count):
            self.domain.say(user, f"m{i}", T0 + i)
        self.take()

    def test_count_bounds(self) -> None:
        """
        A count below 1 or above 500 raises BadArguments; 1 and 500 work.
        """
        alice, pa = self.register("alice")
        self.say_many(alice, 3)
        for count in [0, -1, HISTORY_MAX + 1]:
            self.assertRaises(errors.BadArguments, self.domain.history, alice, count, None)
        self.assertEqual(self.take(), [])
        self.domain.history(alice, 1, None)
        self.domain.history(alice, HISTORY_MAX, None)
        self.assertEqual(
            [[m.text for m in e.messages] for e, _ in self.take()],  # type: ignore[union-attr]
            [["m2"], ["m0", "m1", "m2"]],
        )

    def test_default_current_room(self) -> None:
        """
        Without a room the current room's last messages are sent to the requester, oldest first.
        """
        alice, pa = self.register("alice")
        self.say_many(alice, 5)
        self.domain.history(alice, 2, None)
        self.assertEqual(self.take(), [(
            events.History(LOBBY, (
                events.Message(4, at(3), LOBBY, "alice", "m3"),
                events.Message(5, at(4), LOBBY, "alice", "m4"),
            )),
            (pa,),
        )])

    def test_named_room_canonical_name(self) -> None:
        """
        A named existing room is reported under its own spelling, empty history included.
        """
        alice, pa = self.register("alice")
        self.domain.join(alice, "#Dev", T0)
        self.take()
        self.domain.history(alice, 20, "#dev")
        self.assertEqual(self.take(), [(events.History("#Dev", ()), (pa,))])

    def test_unknown_room(self) -> None:
        """
        History of a room that neither exists nor has history answers error no-such-room.
        """
        alice, pa = self.register("alice")
        self.domain.history(alice, 20, "#nowhere")
        self.assertEqual(self.take(), [(events.Error("no-such-room", "#nowhere does not exist"), (pa,))])

    def test_in_no_room(self) -> None:
        """
        History of the current room while in none raises NotInRoom.
        """
        alice, _ = self.register("alice")
        self.domain.part(alice, None, "", T0)
        self.assertRaises(errors.NotInRoom, self.domain.history, alice, 20, None)

    def test_room_without_members(self) -> None:
        """
        A room gone empty still has its history, readable by anyone.
        """
        alice, _ = self.register("alice")
        bob, pb = self.register("bob")
        self.domain.join(alice, "#x", T0)
        self.domain.say(alice, "echo", T0 + 1)
        self.domain.part(alice, "#x", "", T0)
        self.assertNotIn("#x", self.domain.rooms)
        self.take()
        self.domain.history(bob, 20, "x")
        self.assertEqual(self.take(), [(
            events.History("#x", (events.Message(1, at(1), "#x", "alice", "echo"),)),
            (pb,),
        )])


class HistoryBeforeTests(DomainTestCase):
    """
    L{ChatDomain.history} with C{before}: scrolling back through a room.
    """

    def test_before_gives_older_messages(self) -> None:
        """
        With before, the last count messages with a lower id are sent, oldest first.
        """
        alice, pa = self.register("alice")
        for i in range(5):
            self.domain.say(alice, f"m{i}", T0 + i)
        self.take()
        self.domain.history(alice, 2, None, before=4)
        self.assertEqual(self.take(), [(
            events.History(LOBBY, (
                events.Message(2, at(1), LOBBY, "alice", "m1"),
                events.Message(3, at(2), LOBBY, "alice", "m2"),
            )),
            (pa,),
        )])

    def test_before_in_a_room_not_joined(self) -> None:
        """
        before works on a named room the requester is not in, spelled as the room is.
        """
        alice, _ = self.register("alice")
        bob, pb = self.register("bob")
        self.domain.join(alice, "#Dev", T0)
        for i in range(3):
            self.domain.say(alice, f"d{i}", T0 + i)
        self.take()
        self.domain.history(bob, 20, "#dev", before=3)
        [(event, to)] = self.take()
        assert isinstance(event, events.History)
        self.assertEqual((event.room, [m.text for m in event.messages], to), ("#Dev", ["d0", "d1"], (pb,)))

    def test_before_the_first_message_of_a_gone_room(self) -> None:
        """
        Nothing before the first message of a room that no longer exists answers no-such-room.
        """
        alice, pa = self.register("alice")
        self.domain.join(alice, "#x", T0)
        self.domain.say(alice, "only", T0 + 1)
        self.domain.part(alice, "#x", "", T0)
        self.take()
        self.domain.history(alice, 20, "#x", before=1)
        self.assertEqual(self.take(), [(events.Error("no-such-room", "#x does not exist"), (pa,))])


class PrivateHistoryTests(DomainTestCase):
    """
    L{ChatDomain.private_history}: a logged-in user's private conversation with a nick.
    """

    def login(self, nick: str, created: float = T0) -> tuple[User, FakeParticipant]:
        """
        Register a guest and log it in to a new account C{nick}, created at C{created}.
        """
        self.store.create_account(nick, "hash", created)
        self.domain.accounts[nick.lower()] = nick
        user, participant = self.register(f"guest-{nick}")
        self.domain.login(user, nick, T0)
        self.take()
        return user, participant

    def test_conversation_both_ways(self) -> None:
        """
        The messages between the two, either way, come oldest first as history with the other's nick.
        """
        alice, pa = self.login("alice")
        bob, _ = self.register("Bob")
        carol, _ = self.register("carol")
        self.domain.private(alice, "bob", "hi bob", T0 + 1)
        self.domain.private(bob, "alice", "hi alice", T0 + 2, action=True)
        self.domain.private(carol, "alice", "not this one", T0 + 3)
        self.take()
        self.domain.private_history(alice, 20, "BOB")
        self.assertEqual(self.take(), [(
            events.PrivateHistory("Bob", (
                events.Private(1, at(1), "alice", "Bob", "hi bob"),
                events.Private(2, at(2), "Bob", "alice", "hi alice", action=True),
            )),
            (pa,),
        )])

    def test_count_and_before(self) -> None:
        """
        count bounds the answer to the latest messages, and before to the ones older than an id.
        """
        alice, pa = self.login("alice")
        bob, _ = self.register("bob")
        for i in range(5):
            self.domain.private(bob if i % 2 else alice, "alice" if i % 2 else "bob", f"m{i}", T0 + i)
        self.take()
        self.domain.private_history(alice, 2, "bob")
        self.domain.private_history(alice, 2, "bob", before=4)
        self.assertEqual(
            [[m.text for m in e.messages] for e, _ in self.take()],  # type: ignore[union-attr]
            [["m3", "m4"], ["m1", "m2"]],
        )
        self.assertRaises(errors.BadArguments, self.domain.private_history, alice, HISTORY_MAX + 1, "bob")

    def test_guest_refused(self) -> None:
        """
        A guest asking for private history gets bad-arguments telling them to log in.
        """
        guest, _ = self.register("guest")
        error = self.assertRaises(errors.BadArguments, self.domain.private_history, guest, 20, "bob")
        self.assertEqual(str(error), "private history is kept for logged-in users only: /register or /login first")
        self.assertEqual(self.take(), [])

    def test_invalid_nick_refused(self) -> None:
        """
        A name that cannot be a nick is refused with bad-arguments.
        """
        alice, _ = self.login("alice")
        self.assertRaises(errors.BadArguments, self.domain.private_history, alice, 20, "no way")

    def test_only_since_the_account_was_created(self) -> None:
        """
        Messages of an earlier holder of the nick, before the account existed, are left out.
        """
        guest, _ = self.register("alice")
        bob, _ = self.register("bob")
        self.domain.private(guest, "bob", "from the guest", T0 + 1)
        self.domain.quit(guest, "bye", T0 + 2)
        self.take()
        alice, pa = self.login("alice", created=T0 + 3)
        self.domain.private(bob, "alice", "to the owner", T0 + 4)
        self.take()
        self.domain.private_history(alice, 20, "bob")
        [(event, _)] = self.take()
        assert isinstance(event, events.PrivateHistory)
        self.assertEqual([m.text for m in event.messages], ["to the owner"])

    def test_store_failure_answers_busy(self) -> None:
        """
        A failed read of the conversation answers error busy.
        """
        alice, pa = self.login("alice")
        self.patch(self.store, "conversation", lambda *a, **k: fail(RuntimeError("disk")))
        self.domain.private_history(alice, 20, "bob")
        [(event, to)] = self.take()
        busy = events.Error("busy", "history is unavailable right now; try again later")
        self.assertEqual((event, to), (busy, (pa,)))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class RoomHistoryCacheTests(DomainTestCase):
    """
    A room's replay on join comes from memory, filled from the store when the room is created.
    """

    history_on_join = 3

    def test_new_room_loads_from_store(self) -> None:
        """
        Creating a room (e.g. after a restart) replays its stored history.
        """
        old = [events.Message(self.store.next_id(), at(), "#dev", "zed", f"old{i}") for i in range(5)]
        for m in old:
            self.store.add(m)
        self.domain = make_domain(self.sink, self.store, self.history_on_join)  # ids after the stored ones
        alice, pa = self.register("alice")
        self.domain.join(alice, "#dev", T0)
        [history] = [e for e, _ in self.take() if isinstance(e, events.History)]
        self.assertEqual(history, events.History("#dev", tuple(old[2:])))
        self.domain.say(alice, "new", T0)
        self.assertEqual([m.text for m in self.domain.rooms["#dev"].history], ["old3", "old4", "new"])

    def test_lobby_loaded_at_start(self) -> None:
        """
        The lobby's history is read when the domain starts.
        """
        store = MemoryStore()
        store.add(events.Message(store.next_id(), at(), LOBBY, "zed", "from before"))
        domain = make_domain(RecordingSink(), store, 3)
        self.assertEqual([m.text for m in domain.rooms[LOBBY].history], ["from before"])

    def test_prune_forgets_old_messages(self) -> None:
        """
        prune drops messages older than the cutoff from the replay and from the store.
        """
        alice, _ = self.register("alice")
        self.domain.say(alice, "old", T0)
        self.domain.say(alice, "new", T0 + 100)
        self.assertEqual(self.successResultOf(self.domain.prune(T0 + 50)), 1)
        self.assertEqual([m.text for m in self.domain.rooms[LOBBY].history], ["new"])
        self.assertEqual([m.text for m in self.successResultOf(self.store.recent(LOBBY, 10))], ["new"])


class CountingStore(MemoryStore):
    """
    A memory store that counts its reads of room history.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def recent(self, room: str, count: int, before: int | None = None) -> Deferred[Sequence[events.Message]]:
        self.reads += 1
        return super().recent(room, count, before)


class DormantRoomTests(DomainTestCase):
    """
    A room that empties keeps its loaded history for a while (the last DORMANT_ROOMS of them):
    joining it again reads nothing from the store.
    """

    history_on_join = 3

    def setUp(self) -> None:
        self.sink = RecordingSink()
        self.store = CountingStore()
        self.domain = make_domain(self.sink, self.store, self.history_on_join)

    def test_rejoin_reads_nothing(self) -> None:
        """
        Leaving an emptied room and joining it again (with another spelling) replays its history from
        memory, under the new spelling; it is not listed while empty.
        """
        alice, _ = self.register("alice")
        self.domain.join(alice, "#dev", T0)
        self.domain.say(alice, "hello", T0)
        self.domain.part(alice, "#dev", "", T0)
        self.assertNotIn("#dev", self.domain.rooms)
        reads = self.store.reads
        self.take()
        self.domain.join(alice, "#DEV", T0)
        self.assertEqual(self.store.reads, reads)
        [history] = [e for e, _ in self.take() if isinstance(e, events.History)]
        self.assertEqual((history.room, [m.text for m in history.messages]), ("#DEV", ["hello"]))

    def test_dormant_rooms_bounded(self) -> None:
        """
        Past DORMANT_ROOMS emptied rooms the oldest is forgotten: joining it reads the store again.
        """
        alice, _ = self.register("alice")
        for number in range(DORMANT_ROOMS + 1):
            self.domain.join(alice, f"#r{number}", T0)
            self.domain.part(alice, f"#r{number}", "", T0)
        reads = self.store.reads
        self.domain.join(alice, f"#r{DORMANT_ROOMS}", T0)
        self.assertEqual(self.store.reads, reads)
        self.domain.join(alice, "#r0", T0)
        self.assertGreater(self.store.reads, reads)

    def test_prune_reaches_dormant_rooms(self) -> None:
        """
        prune drops old messages from an emptied room's kept history too.
        """
        alice, _ = self.register("alice")
        self.domain.join(alice, "#dev", T0)
        self.domain.say(alice, "old", T0)
        self.domain.say(alice, "new", T0 + 100)
        self.domain.part(alice, "#dev", "", T0 + 100)
        self.successResultOf(self.domain.prune(T0 + 50))
        self.take()
        self.domain.join(alice, "#dev", T0 + 200)
        [history] = [e for e, _ in self.take() if isinstance(e, events.History)]
        self.assertEqual([m.text for m in history.messages], ["new"])

"""
Tests for L{chat.domain}: the rules of PROTOCOL.md sections 3 and 4, with a
recording event sink, a L{MemoryStore} and literal times.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime, timezone

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from chat import errors, events
from chat.delivery import Directory, Outgoing
from chat.domain import (
    HISTORY_MAX,
    LOBBY,
    NICK_MAX,
    ChatDomain,
    User,
    utc,
)
from chat.ids import LocalIds
from chat.interfaces import Address, IBus, IParticipant
from chat.storage import IStore, MemoryStore

T0 = 1_700_000_000.0
"""A literal time: 2023-11-14T22:13:20Z."""


def at(seconds: float = 0.0) -> datetime:
    """
    The aware UTC datetime C{seconds} after L{T0}.
    """
    return datetime.fromtimestamp(T0 + seconds, timezone.utc)


@implementer(IParticipant)
class FakeParticipant:
    """
    A connection as the domain sees it, named for readable failures.
    """

    nick = ""
    account = None
    peer = "192.0.2.1"

    def __init__(self, name: str, secure: bool = False) -> None:
        self.name = name
        self.secure = secure

    def deliver(self, outgoing: Outgoing) -> None:
        pass

    def close(self, reason: str) -> None:
        pass

    def __repr__(self) -> str:
        return f"<FakeParticipant {self.name}>"


@implementer(IBus)
class RecordingSink:
    """
    A bus that records every publication as C{(event, tuple(recipients))},
    the recipients resolved from its address as the local bus does.
    """

    def __init__(self) -> None:
        self.published: list[tuple[events.Event, tuple[IParticipant, ...]]] = []
        self.directory = Directory()

    def publish(self, event: events.Event, address: Address) -> None:
        self.directory.before(event, address)
        self.published.append((event, tuple(self.directory.resolve(address))))
        self.directory.after(event)


def make_domain(sink: IBus, store: IStore, history_on_join: int = 50) -> ChatDomain:
    """
    A domain over C{sink} and C{store}, its ids counting from the store's last.
    """
    return ChatDomain(sink, store, LocalIds(store.last_id()), history_on_join)


class DomainTestCase(SynchronousTestCase):
    """
    A domain over a recording sink and a memory store, with helpers.
    """

    history_on_join = 50

    def setUp(self) -> None:
        self.sink = RecordingSink()
        self.store = MemoryStore()
        self.domain = make_domain(self.sink, self.store, self.history_on_join)

    def take(self) -> list[tuple[events.Event, tuple[IParticipant, ...]]]:
        """
        Return what was published since the last call, and forget it.
        """
        published, self.sink.published = self.sink.published, []
        return published

    def alice_bob_apart_from_carol(self) -> list[tuple[User, FakeParticipant]]:
        """
        Register alice, bob and carol: alice and bob share #lobby and #x,
        carol is only in #c. Their events are taken.
        """
        users = [self.register(nick) for nick in ("alice", "bob", "carol")]
        (alice, _), (bob, _), (carol, _) = users
        self.domain.join(alice, "#x", T0)
        self.domain.join(bob, "#x", T0)
        self.domain.join(carol, "#c", T0)
        self.domain.part(carol, LOBBY, "", T0)
        self.take()
        return users

    def register(self, nick: str, now: float = T0, secure: bool = False) -> tuple[User, FakeParticipant]:
        """
        Register a new participant as C{nick}, forgetting what was published.
        """
        participant = FakeParticipant(nick, secure)
        user = self.domain.register(participant, nick, now)
        self.take()
        return user, participant

    def assert_same_recipients(
        self, actual: tuple[IParticipant, ...], expected: Iterable[FakeParticipant]
    ) -> None:
        """
        Assert that C{actual} holds exactly C{expected}, each once, in any order.
        """
        key = lambda p: p.name  # noqa: E731
        self.assertEqual(sorted(actual, key=key), sorted(expected, key=key))


class SinkTests(SynchronousTestCase):
    """
    The test doubles provide the interfaces they stand in for.
    """

    def test_fakes_provide_interfaces(self) -> None:
        """
        The recording sink provides IBus and the fake participant IParticipant.
        """
        self.assertTrue(verifyObject(IBus, RecordingSink()))
        self.assertTrue(verifyObject(IParticipant, FakeParticipant("a")))


class RegisterTests(DomainTestCase):
    """
    L{ChatDomain.register}: PROTOCOL.md section 3.4.
    """

    def test_publishes_registered_join_users_history_in_order(self) -> None:
        """
        The first user gets registered, then join, users and history of #lobby.
        """
        alice = FakeParticipant("alice")
        self.domain.register(alice, "alice", T0)
        self.assertEqual(
            self.take(),
            [
                (events.Registered("alice", False), (alice,)),
                (events.Joined(at(), LOBBY, "alice"), (alice,)),
                (events.Users(LOBBY, (events.UserInfo("alice", "", 0),)), (alice,)),
                (events.History(LOBBY, ()), (alice,)),
            ],
        )

    def test_join_goes_to_every_lobby_member(self) -> None:
        """
        A newcomer's join reaches everyone in #lobby; users and history only the newcomer.
        """
        _, alice = self.register("alice")
        bob = FakeParticipant("bob")
        self.domain.register(bob, "bob", T0 + 5)
        published = self.take()
        self.assertEqual([event for event, _ in published], [
            events.Registered("bob", False),
            events.Joined(at(5), LOBBY, "bob"),
            events.Users(LOBBY, (events.UserInfo("alice", "", 5), events.UserInfo("bob", "", 0))),
            events.History(LOBBY, ()),
        ])
        self.assertEqual(published[0][1], (bob,))
        self.assert_same_recipients(published[1][1], [alice, bob])
        self.assertEqual(published[2][1], (bob,))
        self.assertEqual(published[3][1], (bob,))

    def test_returns_user_in_lobby(self) -> None:
        """
        The returned user has the nick, the registration time, and #lobby as current room.
        """
        user, participant = self.register("alice", T0 + 1)
        self.assertEqual(user.nick, "alice")
        self.assertIs(user.participant, participant)
        self.assertEqual(user.since, T0 + 1)
        self.assertEqual(user.room, self.domain.rooms[LOBBY])
        self.assertIs(self.domain.users["alice"], user)

    def test_history_replayed_to_newcomer(self) -> None:
        """
        The newcomer's history holds the lobby's messages, oldest first.
        """
        alice, _ = self.register("alice")
        self.domain.say(alice, "one", T0 + 1)
        self.domain.say(alice, "two", T0 + 2)
        self.take()
        bob = FakeParticipant("bob")
        self.domain.register(bob, "bob", T0 + 3)
        history = self.take()[-1]
        self.assertEqual(history, (
            events.History(LOBBY, (
                events.Message(1, at(1), LOBBY, "alice", "one"),
                events.Message(2, at(2), LOBBY, "alice", "two"),
            )),
            (bob,),
        ))

    def test_nick_invalid_publishes_nothing(self) -> None:
        """
        A refused registration raises and publishes nothing, leaving no user behind.
        """
        self.assertRaises(errors.NickInvalid, self.domain.register, FakeParticipant("x"), "1x", T0)
        self.assertEqual(self.take(), [])
        self.assertEqual(self.domain.users, {})
        self.assertEqual(self.domain.rooms[LOBBY].members, {})


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


class NickTests(DomainTestCase):
    """
    Nick rules of PROTOCOL.md section 3.3, on registration and on change.
    """

    def test_longest_nick_accepted(self) -> None:
        """
        A nick of 24 characters is accepted.
        """
        nick = "a" * NICK_MAX
        self.assertEqual(NICK_MAX, 24)
        user, _ = self.register(nick)
        self.assertEqual(user.nick, nick)

    def test_too_long_nick_rejected(self) -> None:
        """
        A nick of 25 characters is refused with NickInvalid.
        """
        self.assertRaises(errors.NickInvalid, self.domain.register, FakeParticipant("x"), "a" * 25, T0)

    def test_nick_must_start_with_letter(self) -> None:
        """
        A nick starting with a digit, _ or - is refused; letters, digits, _ and - may follow.
        """
        for nick in ["1abc", "_abc", "-abc", ""]:
            self.assertRaises(errors.NickInvalid, self.domain.register, FakeParticipant(nick), nick, T0)
        user, _ = self.register("Z9_-x")
        self.assertEqual(user.nick, "Z9_-x")
        self.assertEqual(self.register("q")[0].nick, "q")

    def test_nick_ascii_only(self) -> None:
        """
        Non-ASCII letters and digits, spaces and punctuation are refused.
        """
        for nick in ["jos\u00e9", "\u03a9mega", "\uff41bc", "ab\u0661", "a b", "a.b", "a#", "a\tb", "a\n"]:
            with self.subTest(nick=nick):
                self.assertRaises(
                    errors.NickInvalid, self.domain.register, FakeParticipant("x"), nick, T0
                )
        self.assertEqual(self.domain.users, {})

    def test_nick_unique_ignoring_case(self) -> None:
        """
        A nick differing from a connected one only in case is refused with NickTaken.
        """
        self.register("alice")
        self.assertRaises(errors.NickTaken, self.domain.register, FakeParticipant("x"), "ALICE", T0)
        self.assertEqual(list(self.domain.users), ["alice"])
        self.assertEqual(self.take(), [])

    def test_change_nick_to_neighbours_each_once(self) -> None:
        """
        A nick change reaches the user and everyone sharing a room, each once, and no one else.
        """
        (alice, pa), (bob, pb), (carol, pc) = self.alice_bob_apart_from_carol()
        self.domain.change_nick(alice, "alicia", T0 + 7)
        [(event, recipients)] = self.take()
        self.assertEqual(event, events.NickChanged(at(7), "alice", "alicia"))
        self.assert_same_recipients(recipients, [pa, pb])
        self.assertEqual(len(recipients), 2)
        self.assertNotIn(pc, recipients)

    def test_change_nick_renames_everywhere(self) -> None:
        """
        After a change the new nick is found, in every room, and the old nick is free.
        """
        alice, _ = self.register("alice")
        self.domain.join(alice, "#x", T0)
        self.domain.change_nick(alice, "alicia", T0)
        self.assertEqual(alice.nick, "alicia")
        self.assertIs(self.domain.users["alicia"], alice)
        self.assertNotIn("alice", self.domain.users)
        self.assertEqual(list(self.domain.rooms["#x"].members), ["alicia"])
        self.assertEqual(list(self.domain.rooms[LOBBY].members), ["alicia"])
        self.assertEqual([r.name for r in alice.rooms.values()], [LOBBY, "#x"])
        self.take()
        self.assertRaises(errors.NoSuchNick, self.domain.whois, alice, "alice", T0)
        self.assertEqual(self.register("alice")[0].nick, "alice")

    def test_change_nick_case_only(self) -> None:
        """
        Changing only the case of one's own nick is allowed and announced.
        """
        alice, pa = self.register("alice")
        self.domain.change_nick(alice, "ALICE", T0 + 1)
        self.assertEqual(self.take(), [(events.NickChanged(at(1), "alice", "ALICE"), (pa,))])
        self.assertEqual(alice.nick, "ALICE")
        self.assertIs(self.domain.users["alice"], alice)
        self.assertEqual(list(self.domain.rooms[LOBBY].members), ["alice"])

    def test_change_nick_to_same_nick_does_nothing(self) -> None:
        """
        Changing to the very same nick publishes nothing.
        """
        alice, _ = self.register("alice")
        self.domain.change_nick(alice, "alice", T0)
        self.assertEqual(self.take(), [])

    def test_change_nick_taken(self) -> None:
        """
        Changing to another user's nick, in any case, raises NickTaken and changes nothing.
        """
        alice, _ = self.register("alice")
        self.register("bob")
        self.assertRaises(errors.NickTaken, self.domain.change_nick, alice, "Bob", T0)
        self.assertEqual(alice.nick, "alice")
        self.assertEqual(sorted(self.domain.users), ["alice", "bob"])
        self.assertEqual(self.take(), [])

    def test_change_nick_invalid(self) -> None:
        """
        Changing to an invalid nick raises NickInvalid and changes nothing.
        """
        alice, _ = self.register("alice")
        for nick in ["9lives", "a" * 25, "\u00e9t\u00e9"]:
            self.assertRaises(errors.NickInvalid, self.domain.change_nick, alice, nick, T0)
        self.assertEqual(alice.nick, "alice")
        self.assertEqual(self.take(), [])


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


class JoinTests(DomainTestCase):
    """
    L{ChatDomain.join}.
    """

    def test_creates_room(self) -> None:
        """
        Joining a new room creates it; the joiner gets join, users and empty history.
        """
        alice, pa = self.register("alice")
        self.domain.join(alice, "#x", T0 + 1)
        self.assertEqual(self.take(), [
            (events.Joined(at(1), "#x", "alice"), (pa,)),
            (events.Users("#x", (events.UserInfo("alice", "", 1),)), (pa,)),
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
            events.Users("#x", (events.UserInfo("alice", "", 0), events.UserInfo("bob", "", 0))),
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


class QuitTests(DomainTestCase):
    """
    L{ChatDomain.quit}.
    """

    def test_to_those_sharing_rooms(self) -> None:
        """
        A quit goes to everyone sharing a room with the quitter, each once, not to the quitter.
        """
        (alice, pa), (bob, pb), (carol, pc) = self.alice_bob_apart_from_carol()
        self.domain.quit(alice, "gone", T0 + 8)
        self.assertEqual(self.take(), [(events.Quit(at(8), "alice", "gone"), (pb,))])

    def test_cleans_up(self) -> None:
        """
        After a quit the nick is free and rooms left empty are gone.
        """
        alice, _ = self.register("alice")
        _, pb = self.register("bob")
        self.domain.join(alice, "#x", T0)
        self.domain.quit(alice, "", T0)
        self.assertEqual(list(self.domain.users), ["bob"])
        self.assertEqual(sorted(self.domain.rooms), [LOBBY])
        self.assertEqual(list(self.domain.rooms[LOBBY].members), ["bob"])
        self.assertEqual(self.sink.directory.audience(LOBBY), (pb,))
        self.assertEqual(self.register("ALICE")[0].nick, "ALICE")

    def test_alone(self) -> None:
        """
        A user alone quitting publishes a quit to nobody.
        """
        alice, _ = self.register("alice")
        self.domain.quit(alice, "", T0)
        self.assertEqual(self.take(), [(events.Quit(at(), "alice", ""), ())])


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
                events.UserInfo("bob", "", 90),
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
        self.assertEqual(self.take(), [(events.Users("#x", (events.UserInfo("bob", "", 0),)), (pa,))])
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


class AccountTests(DomainTestCase):
    """
    Registered nicks, logins and private messages kept for offline accounts.
    """

    def setUp(self) -> None:
        super().setUp()
        self.store.create_account("Bob", "hash", T0)
        self.domain = make_domain(self.sink, self.store, self.history_on_join)

    def test_registered_nick_refused_to_guests(self) -> None:
        """
        A guest cannot take a registered nick, in any case, by registering or renaming.
        """
        self.assertEqual(self.domain.accounts, {"bob": "Bob"})
        error = self.assertRaises(errors.NickRegistered, self.domain.register, FakeParticipant("x"), "BOB", T0)
        self.assertEqual(str(error), "BOB is a registered nick: /login BOB PASSWORD")
        alice, _ = self.register("alice")
        self.assertRaises(errors.NickRegistered, self.domain.change_nick, alice, "bob", T0)

    def test_register_logged_in(self) -> None:
        """
        A connection logged in to the account registers under its nick with account true.
        """
        pb = FakeParticipant("bob")
        bob = self.domain.register(pb, "Bob", T0, account="bob")
        self.assertEqual(self.take()[0], (events.Registered("Bob", True), (pb,)))
        self.assertEqual(bob.account, "bob")

    def test_guest_logs_in_and_is_renamed(self) -> None:
        """
        A guest logging in takes the account's nick; room-mates see the rename.
        """
        alice, pa = self.register("alice")
        guest, pg = self.register("guest")
        self.domain.login(guest, "Bob", T0)
        published = self.take()
        self.assertEqual(published[0][0], events.NickChanged(at(), "guest", "Bob"))
        self.assert_same_recipients(published[0][1], [pa, pg])
        self.assertEqual(published[1], (events.Registered("Bob", True), (pg,)))
        self.assertEqual(guest.account, "bob")

    def test_account_created(self) -> None:
        """
        A new account reserves the nick and logs its creator in.
        """
        carol, pc = self.register("carol")
        self.domain.account_created("carol", carol)
        self.assertEqual(self.take(), [(events.Registered("carol", True), (pc,))])
        self.assertEqual(carol.account, "carol")
        self.assertIn("carol", self.domain.accounts)

    def test_offline_private_stored_and_delivered_once(self) -> None:
        """
        A private message to an offline account is stored (the sender is
        told) and delivered once, at login, marked offline.
        """
        alice, pa = self.register("alice")
        self.domain.private(alice, "bob", "call me", T0 + 1)
        stored = events.Private(1, at(1), "alice", "Bob", "call me", offline=True)
        self.assertEqual(
            self.take(),
            [
                (stored, (pa,)),
                (events.Info("Bob is away: your message is stored and will be delivered when they log in"), (pa,)),
            ],
        )
        pb = FakeParticipant("bob")
        bob = self.domain.register(pb, "Bob", T0 + 2, account="bob")
        self.take()
        self.domain.deliver_waiting(bob)
        self.assertEqual(
            self.take(),
            [(events.Info("1 private message arrived while you were away"), (pb,)), (stored, (pb,))],
        )
        self.domain.deliver_waiting(bob)
        self.assertEqual(self.take(), [])

    def test_private_to_unknown_nick(self) -> None:
        """
        A private message to a nick neither connected nor registered is refused.
        """
        alice, _ = self.register("alice")
        self.assertRaises(errors.NoSuchNick, self.domain.private, alice, "nobody", "hi", T0)


class OfferTests(DomainTestCase):
    """
    File offers (PROTOCOL.md section 6): who gets them, who may fetch
    them, and their expiry.
    """

    def offer(self, sender: User, to: str, offer_id: int = 1, sha256: str = "ab" * 32) -> events.FileOffer:
        offer = events.FileOffer(offer_id, sender.nick, to, "f.txt", 3, sha256, utc(T0 + 3600))
        self.domain.offer(sender, offer)
        return offer

    def test_offer_to_nick_and_room(self) -> None:
        """
        The uploader gets upload-done; a nick's offer goes to that nick, a room's to its members.
        """
        (alice, a), (bob, b), (carol, c) = self.alice_bob_apart_from_carol()
        offer = self.offer(alice, "carol")
        self.assertEqual(self.take(), [(events.UploadDone(1, "ab" * 32), (a,)), (offer, (c,))])
        room_offer = self.offer(alice, "#x", 2)
        [done, (event, recipients)] = self.take()
        self.assertEqual((done, event), ((events.UploadDone(2, "ab" * 32), (a,)), room_offer))
        self.assert_same_recipients(recipients, [a, b])

    def test_offer_waits_for_its_commit(self) -> None:
        """
        Nothing is published before the offer is stored; a failed store sends busy to the uploader only.
        """
        (alice, a), (bob, b) = self.register("alice"), self.register("bob")
        stored: Deferred[None] = Deferred()
        self.patch(self.store, "add_offer", lambda offer: stored)
        self.offer(alice, "bob")
        self.assertEqual(self.take(), [])
        stored.errback(OSError("disk"))
        [(error, recipients)] = self.take()
        self.assertEqual((error.code, recipients), ("busy", (a,)))  # type: ignore[union-attr]
        self.assertEqual(self.domain.offers, {})

    def test_who_may_fetch(self) -> None:
        """
        The uploader, the target nick and the target room's members may fetch; others get no-such-file.
        """
        (alice, _), (bob, _), (carol, _) = self.alice_bob_apart_from_carol()
        to_bob = self.offer(alice, "bob", 1)
        to_c = self.offer(carol, "#c", 2)
        self.assertIs(self.domain.find_offer(alice, 1, T0), to_bob)
        self.assertIs(self.domain.find_offer(bob, 1, T0), to_bob)
        self.assertRaises(errors.NoSuchFile, self.domain.find_offer, carol, 1, T0)
        self.assertIs(self.domain.find_offer(carol, 2, T0), to_c)
        self.assertRaises(errors.NoSuchFile, self.domain.find_offer, bob, 2, T0)
        self.assertRaises(errors.NoSuchFile, self.domain.find_offer, bob, 1, T0 + 3600)

    def test_upload_targets(self) -> None:
        """
        A target is a connected or registered nick, spelled as the server knows it, or a joined room.
        """
        (alice, _), _, _ = self.alice_bob_apart_from_carol()
        self.domain.accounts["dave"] = "Dave"
        self.assertEqual(self.domain.upload_target(alice, "BOB"), "bob")
        self.assertEqual(self.domain.upload_target(alice, "dave"), "Dave")
        self.assertEqual(self.domain.upload_target(alice, "#X"), "#x")
        self.assertRaises(errors.NoSuchNick, self.domain.upload_target, alice, "erin")
        self.assertRaises(errors.NotInRoom, self.domain.upload_target, alice, "#c")
        self.assertRaises(errors.NoSuchRoom, self.domain.upload_target, alice, "#none")

    def test_announce_at_login(self) -> None:
        """
        A user is told how many files wait for their nick, not counting room offers or their own.
        """
        (alice, _), (bob, b) = self.register("alice"), self.register("bob")
        self.offer(alice, "bob", 1)
        self.offer(alice, "bob", 2)
        self.offer(alice, "#lobby", 3)
        self.offer(bob, "bob", 4)
        self.take()
        self.domain.announce_offers(bob, T0)
        self.assertEqual(self.take(), [(events.Info("2 files are offered to you: /files lists them"), (b,))])
        self.domain.announce_offers(alice, T0)
        self.assertEqual(self.take(), [])

    def test_expire(self) -> None:
        """
        Expired offers and offers whose file is gone are removed, here and in the store.
        """
        (alice, _), _ = self.register("alice"), self.register("bob")
        self.offer(alice, "bob", 1, "aa" * 32)
        kept = self.offer(alice, "bob", 2, "bb" * 32)
        self.domain.offers[3] = events.FileOffer(3, "alice", "bob", "old", 1, "cc" * 32, utc(T0))
        self.store.add_offer(self.domain.offers[3])
        gone = self.domain.expire_offers(T0, lambda sha256: sha256 != "aa" * 32)
        self.assertEqual(sorted(offer.id for offer in gone), [1, 3])
        self.assertEqual(self.domain.offers, {2: kept})
        self.assertEqual(self.store.offers(), [kept])

"""
Tests for the sessions of L{chat.domain}: registering a nick, the nick rules
and nick changes, quitting, and accounts and logins with private messages
kept for offline accounts (PROTOCOL.md sections 3 and 4), with a recording
event sink, a L{MemoryStore} and literal times.
"""

from __future__ import annotations

from chat import errors, events
from chat.domain import LOBBY, NICK_MAX
from tests.support import T0, DomainTestCase, FakeParticipant, at, make_domain


class RegisterTests(DomainTestCase):
    """
    L{ChatDomain.register}: PROTOCOL.md section 3.4.
    """

    def test_publishes_registered_join_users_history_in_order(self) -> None:
        """
        The first user gets registered, then join, role (the first operator of #lobby), users and history of #lobby.
        """
        alice = FakeParticipant("alice")
        self.domain.register(alice, "alice", T0)
        self.assertEqual(
            self.take(),
            [
                (events.Registered("alice", False), (alice,)),
                (events.Joined(at(), LOBBY, "alice"), (alice,)),
                (events.RoleChanged(LOBBY, "alice", events.OPERATOR, ""), (alice,)),
                (events.Users(LOBBY, (events.UserInfo("alice", "", 0, events.OPERATOR),)), (alice,)),
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
            events.Users(LOBBY, (events.UserInfo("alice", "", 5, events.OPERATOR), events.UserInfo("bob", "", 0))),
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

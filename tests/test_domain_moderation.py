"""
Tests for the moderation rules of L{chat.domain} (PROTOCOL.md section 10):
operators, kicks, bans, mutes, room settings, invitations and server
administrators, with a recording event sink, a L{MemoryStore} and literal
times.
"""

from __future__ import annotations

from chat import errors, events
from chat.domain import LOBBY, User
from chat.memory_store import MemoryStore
from chat.storage import BanRecord, RoomFlags
from tests.support import T0, DomainTestCase, FakeParticipant, RecordingSink, at, make_domain


class ModerationTestCase(DomainTestCase):
    """
    Helpers: users with an account or an address, and the events of one type.
    """

    def user(
        self, nick: str, account: bool = False, address: str = "192.0.2.1", join: bool = True
    ) -> tuple[User, FakeParticipant]:
        """
        Register C{nick}, logged in to an account of that name when C{account}.
        """
        participant = FakeParticipant(nick)
        if account:
            self.domain.accounts[nick.lower()] = nick
        user = self.domain.register(
            participant, nick, T0, account=nick.lower() if account else None, join=join, address=address
        )
        self.take()
        return user, participant

    def of_type(self, kind: type) -> list[tuple[events.Event, tuple[object, ...]]]:
        """
        The events of C{kind} published since the last take, which forgets them all.
        """
        return [(event, to) for event, to in self.take() if isinstance(event, kind)]

    def role(self, nick: str, room: str = LOBBY) -> str:
        """
        The role of C{nick} in C{room} as C{/list} reports it.
        """
        user = self.domain.users[nick.lower()]
        self.take()
        self.domain.list_users(user, room, T0)
        (listed, _), = self.of_type(events.Users)
        assert isinstance(listed, events.Users)
        return next(u.role for u in listed.users if u.nick == nick)


class RoleTests(ModerationTestCase):
    """
    Who is an operator: the first to join, accounts made operators, administrators.
    """

    def test_first_joiner_is_operator(self) -> None:
        """
        The first to join a room without operators gets a role event by nobody; the next is a member.
        """
        alice, pa = self.user("alice")
        bob, _ = self.user("bob")
        self.domain.join(alice, "#x", T0)
        self.assertEqual(self.of_type(events.RoleChanged), [(events.RoleChanged("#x", "alice", "operator", ""), (pa,))])
        self.domain.join(bob, "#x", T0)
        self.assertEqual(self.of_type(events.RoleChanged), [])
        self.assertEqual((self.role("alice", "#x"), self.role("bob", "#x")), ("operator", "member"))

    def test_guest_operator_role_ends_with_leaving(self) -> None:
        """
        A guest's role is not kept: after the only operator leaves, the next to join becomes one, not those there.
        """
        alice, _ = self.user("alice")
        bob, _ = self.user("bob")
        carol, _ = self.user("carol")
        self.domain.join(alice, "#x", T0)
        self.domain.join(bob, "#x", T0)
        self.domain.part(alice, "#x", "", T0)
        self.domain.join(carol, "#x", T0)
        self.assertEqual((self.role("bob", "#x"), self.role("carol", "#x")), ("member", "operator"))
        self.domain.part(bob, "#x", "", T0)
        self.domain.part(carol, "#x", "", T0)
        self.domain.join(alice, "#x", T0)
        self.assertEqual(self.role("alice", "#x"), "operator")
        self.assertEqual(self.store.moderation().operators, frozenset())

    def test_logged_in_operator_stored_and_kept(self) -> None:
        """
        A logged-in first joiner's role is stored; the room then has an operator while they are away.
        """
        alice, _ = self.user("alice", account=True)
        guest, _ = self.user("guest")
        self.domain.join(alice, "#x", T0)
        self.assertIn(("#x", "alice"), self.store.moderation().operators)
        self.domain.part(alice, "#x", "", T0)
        self.domain.join(guest, "#x", T0)
        self.assertEqual(self.role("guest", "#x"), "member")
        self.take()
        self.domain.join(alice, "#x", T0)
        self.assertIn(events.RoleChanged("#x", "alice", "operator", ""), [e for e, _ in self.take()])

    def test_operator_roles_loaded_from_store(self) -> None:
        """
        A domain started on a store holding an account's role makes that account an operator on joining.
        """
        store = MemoryStore()
        store.set_operator("#x", "alice", True)
        sink = RecordingSink()
        domain = make_domain(sink, store)
        domain.accounts["alice"] = "alice"
        bob = domain.register(FakeParticipant("bob"), "bob", T0)
        alice = domain.register(FakeParticipant("alice"), "alice", T0, account="alice")
        domain.join(bob, "#x", T0)
        domain.join(alice, "#x", T0)
        room = domain.rooms["#x"]
        self.assertEqual(room.operators, {alice})

    def test_admin_operator_everywhere(self) -> None:
        """
        A server administrator is an operator of every room, though another was first there.
        """
        self.store.set_admin("root", True)
        self.domain.load_moderation(self.store.moderation())
        alice, _ = self.user("alice")
        root, _ = self.user("root", account=True)
        self.domain.join(alice, "#x", T0)
        self.domain.join(root, "#x", T0)
        self.assertEqual((self.role("alice", "#x"), self.role("root", "#x")), ("operator", "operator"))
        self.domain.op(root, "alice", "#x")  # an operator already: told so
        self.assertEqual(self.of_type(events.RoleChanged), [])

    def test_login_takes_the_account_role(self) -> None:
        """
        A guest who logs in to an account that is an operator of their room becomes one (role event).
        """
        self.store.set_operator(LOBBY, "alice", True)
        self.domain.load_moderation(self.store.moderation())
        self.domain.accounts["alice"] = "alice"
        guest, pg = self.user("guest")
        self.assertEqual(self.role("guest"), "member")
        self.domain.login(guest, "alice", T0)
        self.assertEqual(
            self.of_type(events.RoleChanged), [(events.RoleChanged(LOBBY, "alice", "operator", ""), (pg,))]
        )
        self.assertEqual(self.role("alice"), "operator")

    def test_role_kept_across_nick_change(self) -> None:
        """
        An operator who changes nick stays the operator under the new nick.
        """
        alice, _ = self.user("alice")
        self.user("bob")
        self.domain.change_nick(alice, "Alicia", T0)
        self.assertEqual(self.role("Alicia"), "operator")
        self.domain.kick(alice, "bob", None, "", T0)
        self.assertNotIn("bob", self.domain.rooms[LOBBY].members)

    def test_op_and_deop(self) -> None:
        """
        An operator gives and takes the role (role events by them to the room; the account's role stored).
        """
        alice, pa = self.user("alice")
        bob, pb = self.user("bob", account=True)
        self.domain.op(alice, "bob", None)
        self.assertEqual(
            self.of_type(events.RoleChanged), [(events.RoleChanged(LOBBY, "bob", "operator", "alice"), (pa, pb))]
        )
        self.assertEqual(self.store.moderation().operators, {(LOBBY, "bob")})
        self.domain.deop(bob, "alice", LOBBY)
        self.assertEqual(
            self.of_type(events.RoleChanged), [(events.RoleChanged(LOBBY, "alice", "member", "bob"), (pa, pb))]
        )
        self.assertRaises(errors.NotOperator, self.domain.op, alice, "alice", None)
        self.domain.deop(bob, "bob", None)
        self.assertEqual(self.store.moderation().operators, frozenset())

    def test_not_operator_refused(self) -> None:
        """
        A member cannot op, kick, ban, mute, invite or change settings: not-operator, nothing changes.
        """
        self.user("alice")
        bob, _ = self.user("bob")
        for call in (
            lambda: self.domain.op(bob, "bob", None),
            lambda: self.domain.kick(bob, "alice", None, "", T0),
            lambda: self.domain.ban(bob, "alice", None, None, "", T0),
            lambda: self.domain.mute(bob, "alice", None, None, T0),
            lambda: self.domain.invite(bob, "alice", None),
            lambda: self.domain.room_settings(bob, None, "moderated", True),
            lambda: self.domain.list_bans(bob, None, T0),
            lambda: self.domain.announce(bob, "hi"),
        ):
            self.assertRaises(errors.NotOperator, call)
        self.assertEqual(self.take(), [])
        self.assertEqual(set(self.domain.rooms[LOBBY].members), {"alice", "bob"})


class KickBanTests(ModerationTestCase):
    """
    C{kick}, C{ban}, C{unban} and C{list_bans}.
    """

    def test_kick(self) -> None:
        """
        A kick goes to the room, the kicked user included, who is then out of it; an admin cannot be kicked.
        """
        alice, pa = self.user("alice")
        bob, pb = self.user("bob")
        self.domain.kick(alice, "BOB", None, "behave", T0 + 1)
        published = self.take()
        self.assertEqual(published[0], (events.Kicked(at(1), LOBBY, "bob", "alice", "behave"), (pa, pb)))
        self.assertNotIn("bob", self.domain.rooms[LOBBY].members)
        self.assertEqual(bob.rooms, {})
        self.assertRaises(errors.NotInRoom, self.domain.kick, alice, "bob", None, "", T0)

    def test_admin_not_kicked_by_operator(self) -> None:
        """
        An operator who is no administrator cannot kick, ban or mute an administrator.
        """
        self.store.set_admin("root", True)
        self.domain.load_moderation(self.store.moderation())
        alice, _ = self.user("alice")
        self.user("root", account=True)
        self.assertRaises(errors.NotOperator, self.domain.kick, alice, "root", None, "", T0)
        self.assertRaises(errors.NotOperator, self.domain.ban, alice, "root", None, None, "", T0)
        self.assertRaises(errors.NotOperator, self.domain.mute, alice, "root", None, None, T0)
        self.assertIn("root", self.domain.rooms[LOBBY].members)

    def test_ban_guest_by_nick_and_address(self) -> None:
        """
        A banned guest is kicked and kept out, as is another guest nick from that address; others are not.
        """
        alice, pa = self.user("alice", address="192.0.2.1")
        eve, pe = self.user("eve", address="198.51.100.9")
        self.domain.ban(alice, "eve", None, None, "spam", T0)
        published = self.take()
        self.assertIn((events.Info(f"eve is banned from {LOBBY} for good"), (pa,)), published)
        self.assertIn((events.Kicked(at(), LOBBY, "eve", "alice", "spam"), (pa, pe)), published)
        self.assertRaises(errors.Banned, self.domain.join, eve, LOBBY, T0)
        other, _ = self.user("eve2", address="198.51.100.9", join=False)
        self.assertRaises(errors.Banned, self.domain.join, other, LOBBY, T0)
        logged, _ = self.user("mallory", account=True, address="198.51.100.9", join=False)
        self.domain.join(logged, LOBBY, T0)  # an account is judged by its account
        elsewhere, _ = self.user("eve3", address="203.0.113.5", join=False)
        self.domain.join(elsewhere, LOBBY, T0)
        self.assertEqual(
            self.store.moderation().bans,
            (BanRecord(LOBBY, "", "eve", "198.51.100.9", None, "spam", "alice", T0),),
        )

    def test_ban_account_with_duration(self) -> None:
        """
        A logged-in user's account is banned for the duration: kept out until it ends, whatever the nick.
        """
        alice, _ = self.user("alice")
        bob, _ = self.user("bob", account=True)
        self.domain.ban(alice, "bob", "#lobby", 600.0, "", T0)
        self.assertEqual(self.store.moderation().bans, (BanRecord(LOBBY, "bob", "", "", T0 + 600, "", "alice", T0),))
        with self.assertRaises(errors.Banned) as caught:
            self.domain.join(bob, LOBBY, T0 + 599)
        self.assertIn("until 2023-11-14 22:23 UTC", str(caught.exception))
        self.domain.join(bob, LOBBY, T0 + 600)
        self.assertIn("bob", self.domain.rooms[LOBBY].members)

    def test_ban_of_absent_account_and_unban(self) -> None:
        """
        A registered nick not connected is banned as its account; unban lifts it; unbanning again fails.
        """
        alice, pa = self.user("alice")
        self.domain.accounts["bob"] = "Bob"
        self.domain.ban(alice, "bob", None, None, "", T0)
        self.take()
        self.domain.unban(alice, "BOB", None)
        self.assertEqual(self.take(), [(events.Info(f"BOB is no longer banned from {LOBBY}"), (pa,))])
        self.assertEqual(self.store.moderation().bans, ())
        self.assertRaises(errors.BadArguments, self.domain.unban, alice, "bob", None)

    def test_banned_from_lobby_at_registration(self) -> None:
        """
        A user banned from #lobby still registers, gets error banned, and is in no room.
        """
        alice, _ = self.user("alice")
        self.domain.ban(alice, "eve", None, None, "", T0)
        self.take()
        participant = FakeParticipant("eve")
        eve = self.domain.register(participant, "eve", T0)
        kinds = [type(event) for event, _ in self.take()]
        self.assertEqual(kinds, [events.Registered, events.Error])
        self.assertEqual(eve.rooms, {})

    def test_list_bans(self) -> None:
        """
        /bans lists the bans in force, oldest first, as one info; expired ones are left out.
        """
        alice, pa = self.user("alice")
        self.domain.list_bans(alice, None, T0)
        self.assertEqual(self.take(), [(events.Info(f"No bans in {LOBBY}"), (pa,))])
        self.domain.ban(alice, "eve", None, 60.0, "", T0)
        self.domain.accounts["bob"] = "Bob"
        self.domain.ban(alice, "bob", None, None, "rude", T0 + 1)
        self.take()
        self.domain.list_bans(alice, None, T0 + 2)
        self.assertEqual(self.take(), [(events.Info(
            f"Bans in {LOBBY}:\n"
            "  guest eve until 2023-11-14 22:14 UTC, by alice\n"
            "  account Bob for good, by alice: rude"
        ), (pa,))])
        self.domain.list_bans(alice, None, T0 + 60)
        self.assertNotIn("eve", str(self.take()))


class MuteAndSettingsTests(ModerationTestCase):
    """
    C{mute}, C{unmute}, C{room_settings} and C{invite}.
    """

    def test_mute_unmute(self) -> None:
        """
        A muted member gets muted when speaking until the mute ends or is lifted; others speak on.
        """
        alice, _ = self.user("alice")
        bob, pb = self.user("bob")
        self.domain.mute(alice, "bob", None, 60.0, T0)
        self.assertIn((events.Info(f"alice muted you in {LOBBY} until 2023-11-14 22:14 UTC"), (pb,)), self.take())
        self.assertRaises(errors.Muted, self.domain.say, bob, "hello", T0 + 59)
        self.domain.say(alice, "I can", T0)
        self.domain.say(bob, "free again", T0 + 60)
        self.domain.mute(alice, "bob", None, None, T0 + 61)
        self.assertRaises(errors.Muted, self.domain.say, bob, "hello", T0 + 10_000)
        self.domain.unmute(alice, "bob", None)
        self.domain.say(bob, "hello", T0 + 10_001)
        self.assertRaises(errors.BadArguments, self.domain.unmute, alice, "bob", None)

    def test_moderated_and_topic_lock(self) -> None:
        """
        In a moderated room only operators speak; with topic-lock only operators set the topic; stored.
        """
        alice, pa = self.user("alice")
        bob, pb = self.user("bob")
        self.domain.room_settings(alice, None, "moderated", True)
        self.assertEqual(self.take(), [(events.RoomSettings(LOBBY, False, False, True), (pa, pb))])
        self.assertRaises(errors.Muted, self.domain.say, bob, "hi", T0)
        self.domain.say(alice, "hi", T0)
        self.domain.room_settings(alice, None, "topic-lock", True)
        self.assertRaises(errors.NotOperator, self.domain.topic, bob, None, "mine")
        self.domain.topic(alice, None, "ours")
        self.domain.room_settings(alice, None, "moderated", False)
        self.domain.say(bob, "hi", T0)
        self.assertEqual(self.store.moderation().rooms, {LOBBY: RoomFlags(False, True, False)})
        self.assertRaises(errors.BadArguments, self.domain.room_settings, alice, None, "secret", True)

    def test_show_settings_to_anyone(self) -> None:
        """
        Without a setting, anyone gets the room's settings as room-settings.
        """
        self.user("alice")
        bob, pb = self.user("bob")
        self.domain.room_settings(bob, None, None, False)
        self.assertEqual(self.take(), [(events.RoomSettings(LOBBY, False, False, False), (pb,))])

    def test_invite_only(self) -> None:
        """
        An invite-only room refuses the uninvited, takes the invited (told by info), and its stored operators.
        """
        alice, _ = self.user("alice", account=True)
        bob, pb = self.user("bob")
        self.domain.join(alice, "#x", T0)
        self.domain.room_settings(alice, "#x", "invite-only", True)
        self.domain.part(alice, "#x", "", T0)
        self.domain.join(alice, "#x", T0)  # a stored operator needs no invitation
        self.assertRaises(errors.InviteOnly, self.domain.join, bob, "#x", T0)
        self.take()
        self.domain.invite(alice, "bob", None)
        self.assertIn((events.Info("alice invites you to #x: /join #x"), (pb,)), self.take())
        self.domain.join(bob, "#x", T0)
        self.assertIn("bob", self.domain.rooms["#x"].members)

    def test_settings_sent_on_join(self) -> None:
        """
        Joining a room with a setting on sends room-settings to the newcomer, after users.
        """
        alice, _ = self.user("alice")
        bob, pb = self.user("bob")
        self.domain.join(alice, "#x", T0)
        self.domain.room_settings(alice, "#x", "topic-lock", True)
        self.take()
        self.domain.join(bob, "#x", T0)
        kinds = [type(event) for event, _ in self.take()]
        self.assertEqual(kinds, [events.Joined, events.Users, events.RoomSettings, events.History])
        self.domain.join(alice, "#y", T0)
        self.assertNotIn(events.RoomSettings, [type(event) for event, _ in self.take()])


class AdminTests(ModerationTestCase):
    """
    What only server administrators do, and reloading what the store holds.
    """

    def test_announce(self) -> None:
        """
        An administrator's announcement is an info to every registered user.
        """
        self.store.set_admin("root", True)
        self.domain.load_moderation(self.store.moderation())
        _, pa = self.user("alice")
        root, pr = self.user("root", account=True, join=False)
        self.domain.announce(root, "restart at noon")
        (published,) = self.take()
        self.assertEqual(published[0], events.Info("Announcement from root: restart at noon"))
        self.assertEqual(sorted(published[1], key=repr), sorted((pa, pr), key=repr))

    def test_reload_takes_new_bans_and_admins(self) -> None:
        """
        load_moderation applies bans and admins written to the store by others, and drops revoked ones.
        """
        alice, _ = self.user("alice", account=True, join=False)
        self.store.add_ban(BanRecord("#x", "alice", "", "", None, "", "chat-admin", T0))
        self.store.set_admin("alice", True)
        self.domain.load_moderation(self.store.moderation())
        self.assertTrue(self.domain.is_admin(alice))
        self.domain.announce(alice, "hi")
        self.store.set_admin("alice", False)
        self.domain.load_moderation(self.store.moderation())
        self.assertRaises(errors.Banned, self.domain.join, alice, "#x", T0)
        self.assertRaises(errors.NotOperator, self.domain.announce, alice, "hi")

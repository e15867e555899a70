"""
Tests for L{chat.domain.remote}: a daemon's replica of the users of the
other daemons of a cluster (PROTOCOL.md section 13), followed from their
events, without a network: a recording sink and a memory store.
"""

from __future__ import annotations

from chat import errors, events
from chat.domain import LOBBY, ChatDomain, User
from chat.interfaces import Address, ToUsers
from chat.memory_store import MemoryStore
from chat.storage import RoomFlags, RoomModeration
from tests.support import T0, DomainTestCase, FakeParticipant, RecordingSink, at, make_domain


class ReplicaTests(DomainTestCase):
    """
    L{chat.domain.remote.Remote.apply_remote}.
    """

    def remote_join(self, nick: str, room: str = LOBBY, node: str = "b") -> None:
        self.domain.apply_remote(events.StatusChanged(nick, ""), node, T0)
        self.domain.apply_remote(events.Joined(at(0), room, nick), node, T0)

    def test_remote_user_is_a_member(self) -> None:
        """A user joined on another daemon is a member of the room here, listed with its status, and takes a nick."""
        alice, pa = self.register("alice")
        self.remote_join("zed")
        self.domain.apply_remote(events.StatusChanged("zed", "lunch"), "b", T0)
        self.domain.list_users(alice, LOBBY, T0)
        [(users, _)] = self.take()
        assert isinstance(users, events.Users)
        self.assertEqual([(u.nick, u.status) for u in users.users], [("alice", ""), ("zed", "lunch")])
        self.assertEqual(self.domain.remote, {"zed": "b"})
        self.assertRaises(errors.NickTaken, self.domain.change_nick, alice, "Zed", T0)

    def test_private_message_to_remote_user(self) -> None:
        """A private message to a user of another daemon is stored and published to them (the bus carries it)."""
        alice, pa = self.register("alice")
        self.remote_join("zed")
        self.domain.private(alice, "zed", "hi", T0)
        published = self.take()
        [(message, recipients)] = [(e, r) for e, r in published if isinstance(e, events.Private)]
        assert isinstance(message, events.Private)
        self.assertEqual((message.sender, message.to, message.offline), ("alice", "zed", False))
        self.assertEqual(recipients, (pa,))  # zed is delivered to by their daemon

    def test_part_quit_rename(self) -> None:
        """Parts, nick changes and quits of a remote user change the replica; nothing is published here."""
        alice, _ = self.register("alice")
        self.remote_join("zed")
        self.remote_join("zed", "#x")
        self.domain.apply_remote(events.Parted(at(1), "#x", "zed"), "b", T0)
        self.assertNotIn("#x", self.domain.rooms)
        self.domain.apply_remote(events.NickChanged(at(1), "zed", "zack"), "b", T0)
        self.assertEqual(sorted(self.domain.rooms[LOBBY].members), ["alice", "zack"])
        self.assertEqual(self.domain.remote, {"zack": "b"})
        self.domain.apply_remote(events.Quit(at(2), "zack", "bye"), "b", T0)
        self.assertEqual(sorted(self.domain.users), ["alice"])
        self.assertEqual(self.domain.remote, {})
        self.assertEqual(self.take(), [])

    def test_other_node_cannot_touch(self) -> None:
        """Events naming a user of this daemon, or of a third daemon, do not change them (but a kick from elsewhere)."""
        alice, _ = self.register("alice")
        self.remote_join("zed", node="c")
        self.domain.apply_remote(events.Quit(at(1), "alice", "x"), "b", T0)
        self.domain.apply_remote(events.Quit(at(1), "zed", "x"), "b", T0)
        self.domain.apply_remote(events.StatusChanged("alice", "hijacked"), "b", T0)
        self.assertEqual(sorted(self.domain.users), ["alice", "zed"])
        self.assertEqual(alice.status, "")
        self.domain.apply_remote(events.Kicked(at(2), LOBBY, "alice", "zed", "out"), "c", T0)
        self.assertNotIn(LOBBY, alice.rooms)

    def test_roles_history_topic(self) -> None:
        """A remote operator is an operator here; remote messages join the room's history; topics follow."""
        alice, _ = self.register("alice")
        self.domain.join(alice, "#x", T0)
        self.take()
        self.domain.apply_remote(events.Joined(at(0), "#x", "zed"), "b", T0)
        self.domain.apply_remote(events.RoleChanged("#x", "zed", events.OPERATOR), "b", T0)
        room = self.domain.rooms["#x"]
        self.assertTrue(self.domain.is_operator(self.domain.users["zed"], room))
        message = events.Message(99, at(3), "#x", "zed", "from afar")
        self.domain.apply_remote(message, "b", T0)
        self.assertEqual(list(room.history)[-1], message)
        self.domain.apply_remote(events.Topic("#x", "news", "zed"), "b", T0)
        self.assertEqual((room.topic, room.topic_by), ("news", "zed"))

    def test_reannounce_and_node_gone(self) -> None:
        """reannounce tells nobody here this daemon's users and rooms; node_gone forgets a daemon's users."""
        alice, _ = self.register("alice")
        self.remote_join("zed")
        self.remote_join("zoe", node="c")
        self.domain.reannounce()
        published = self.take()
        self.assertEqual({recipients for _, recipients in published}, {()})
        self.assertEqual(
            [(type(e).__name__, getattr(e, "nick", "")) for e, _ in published],
            [("StatusChanged", "alice"), ("Joined", "alice"), ("RoleChanged", "alice")],
        )
        gone = self.domain.node_gone("b")
        self.assertEqual([u.nick for u in gone], ["zed"])
        self.assertEqual(sorted(self.domain.users), ["alice", "zoe"])
        self.assertEqual(sorted(self.domain.rooms[LOBBY].members), ["alice", "zoe"])

    def test_presence_addressed_to_nobody(self) -> None:
        """announce_presence publishes the user's status to nobody (only the other daemons' replicas take it)."""
        alice, _ = self.register("alice")
        self.domain.announce_presence(alice)
        self.assertEqual(self.take(), [(events.StatusChanged("alice", ""), ())])

    def test_whois_names_the_node(self) -> None:
        """whois says which daemon a user is on: another's for a remote user, this one's (when named) for a local one."""
        alice, pa = self.register("alice")
        self.domain.node = "a"
        self.remote_join("zed")
        self.domain.whois(alice, "zed", T0)
        self.domain.whois(alice, "alice", T0)
        nodes = [getattr(event, "node", None) for event, _ in self.take()]
        self.assertEqual(nodes, ["b", "a"])


class AddressingSink(RecordingSink):
    """A recording sink that keeps each publication's address too."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[tuple[events.Event, Address]] = []

    def publish(self, event: events.Event, address: Address) -> None:
        self.addresses.append((event, address))
        super().publish(event, address)


class ModerationAcrossDaemonsTests(DomainTestCase):
    """
    Moderation of users of other daemons, and a room's moderation changed on
    one daemon followed by another (L{RoomModeration}).
    """

    def setUp(self) -> None:
        self.sink = AddressingSink()
        self.store = MemoryStore()
        self.domain = make_domain(self.sink, self.store, self.history_on_join)
        self.told: list[RoomModeration] = []
        self.domain.on_moderation = self.told.append
        self.other = make_domain(RecordingSink(), MemoryStore())  # another daemon, which follows

    def remote_join(self, nick: str, room: str = LOBBY) -> None:
        self.domain.apply_remote(events.StatusChanged(nick, ""), "b", T0)
        self.domain.apply_remote(events.Joined(at(0), room, nick), "b", T0)

    def test_remote_user_reached_by_nick(self) -> None:
        """What is said to a user of another daemon alone (a mute) is addressed to their nick, which crosses."""
        op, _ = self.register("op")
        self.remote_join("zed")
        self.domain.mute(op, "zed", LOBBY, None, T0)
        [address] = [a for e, a in self.sink.addresses if isinstance(e, events.Info) and "muted you" in e.text]
        self.assertEqual(address, ToUsers(("zed",)))
        self.domain.apply_remote(events.NickChanged(at(1), "zed", "Zack"), "b", T0)
        self.assertEqual(self.domain.users["zack"].here, ToUsers(("zack",)))

    def test_each_change_told_in_order(self) -> None:
        """
        A ban, a mute, an invitation, a setting and an operator each tell
        the room's whole moderation, once the events before are out.
        """
        op, _ = self.register("op")
        self.remote_join("zed")
        self.domain.ban(op, "mallory", LOBBY, None, "spam", T0)
        self.domain.mute(op, "zed", LOBBY, 60, T0)
        self.domain.room_settings(op, LOBBY, "invite-only", True)
        self.domain.invite(op, "zed", LOBBY)
        self.assertEqual(len(self.told), 4)
        last = self.told[-1]
        self.assertEqual(last.room, LOBBY)
        self.assertEqual([(b.nick, b.reason) for b in last.bans], [("mallory", "spam")])
        self.assertEqual(last.mutes, (("zed", T0 + 60),))
        self.assertEqual(last.invited, ("zed",))
        self.assertEqual(last.flags, RoomFlags(invite_only=True))
        self.assertEqual(self.told[0].mutes, ())  # each as it was then

    def test_followed_by_another_daemon(self) -> None:
        """The other daemon's rules follow: the banned guest cannot join there, the muted user cannot speak."""
        op, _ = self.register("op")
        self.domain.join(op, "#dev", T0)  # its operator
        self.domain.ban(op, "mallory", "#dev", None, "spam", T0)
        self.domain.room_settings(op, "#dev", "moderated", True)
        for moderation in self.told:
            self.other.apply_remote(moderation, "a", T0)
        mallory, _ = self._register_in(self.other, "mallory")
        self.assertRaises(errors.Banned, self.other.join, mallory, "#dev", T0)
        self.assertEqual(self.other.flags["#dev"], RoomFlags(moderated=True))
        self.domain.unban(op, "mallory", "#dev")
        self.other.apply_remote(self.told[-1], "a", T0)
        self.other.join(mallory, "#dev", T0)
        self.assertIn("mallory", self.other.rooms["#dev"].members)

    def _register_in(self, domain: ChatDomain, nick: str) -> tuple[User, FakeParticipant]:
        participant = FakeParticipant(nick)
        return domain.register(participant, nick, T0), participant

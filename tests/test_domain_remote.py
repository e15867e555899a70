"""
Tests for L{chat.domain.remote}: a daemon's replica of the users of the
other daemons of a cluster (PROTOCOL.md section 13), followed from their
events, without a network: a recording sink and a memory store.
"""

from __future__ import annotations

from chat import errors, events
from chat.domain import LOBBY
from tests.support import T0, DomainTestCase, at


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

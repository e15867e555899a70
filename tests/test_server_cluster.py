"""
Tests of L{ChatServer} as a daemon of a cluster (PROTOCOL.md section 13),
without a network: nicks claimed across daemons through an
L{INickClaims} double, the users of another daemon followed from its
events, and the daemon that is gone.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer
from zope.interface.verify import verifyObject

from chat import commands, errors, events
from chat.cluster.claims import NickClaims
from chat.interfaces import INickClaims
from tests.support import at
from tests.test_server import ServerTestCase, error


@implementer(INickClaims)
class Claims:
    """
    The cluster's nicks as a dictionary: nick (lower-cased) to node; this daemon is C{here}.
    """

    def __init__(self, here: str = "a") -> None:
        self.here = here
        self.holders: dict[str, str] = {}
        self.unreachable = False

    def claim(self, nick: str) -> Deferred[bool]:
        if self.unreachable:
            return fail(errors.Busy("the cluster cannot be reached"))
        holder = self.holders.setdefault(nick.lower(), self.here)
        return succeed(holder == self.here)

    def release(self, nick: str) -> Deferred[None]:
        if self.holders.get(nick.lower()) == self.here:
            del self.holders[nick.lower()]
        return succeed(None)


class ClaimsTests(ServerTestCase):
    """
    /nick, /login and the end of a session claim and release nicks across the cluster.
    """

    def setUp(self) -> None:
        super().setUp()
        self.claims = Claims()
        self.server.claims = self.claims

    def test_claims_implementation(self) -> None:
        """NickClaims provides INickClaims, like the double."""
        self.assertTrue(INickClaims.implementedBy(NickClaims))
        self.assertTrue(verifyObject(INickClaims, self.claims))

    def test_nick_held_elsewhere(self) -> None:
        """A nick another daemon holds is refused with nick-taken; a free one is claimed, and released on leaving."""
        self.claims.holders["zed"] = "b"
        participant, session = self.connect("x")
        self.server.execute(session, commands.Nick("zed"))
        self.assertIn(error("nick-taken", "zed is taken"), participant.take())
        self.assertIsNone(session.user)
        self.server.execute(session, commands.Nick("amy"))
        self.assertEqual(session.user and session.user.nick, "amy")
        self.assertEqual(self.claims.holders, {"zed": "b", "amy": "a"})
        self.server.execute(session, commands.Nick("ann"))
        self.assertEqual(self.claims.holders, {"zed": "b", "ann": "a"})
        self.server.disconnect(session, "gone")
        self.assertEqual(self.claims.holders, {"zed": "b"})

    def test_cluster_unreachable(self) -> None:
        """While the cluster cannot be reached, /nick gets busy and nothing changes."""
        self.claims.unreachable = True
        participant, session = self.connect("x")
        self.server.execute(session, commands.Nick("amy"))
        self.assertEqual([e["code"] for e in participant.take() if e["type"] == "error"], ["busy"])
        self.assertIsNone(session.user)

    def test_login_held_elsewhere(self) -> None:
        """Logging in to an account whose nick another daemon holds is refused: it is connected there."""
        self.create_account("bob")
        self.claims.holders["bob"] = "b"
        participant, session = self.connect("x")
        self.server.execute(session, commands.Login("bob", "password1"))
        self.clock.advance(10)
        self.assertIn(
            error("nick-taken", "bob is connected to another server of this chat"), participant.take()
        )

    def test_nick_lost(self) -> None:
        """A claim found taken by another daemon disconnects its user here."""
        participant, session = self.connect("x")
        self.successResultOf(self.server.execute(session, commands.Nick("amy")))
        self.server.nick_lost("amy")
        self.assertEqual(len(participant.closed), 1)
        self.assertIn("taken on another server", participant.closed[0])


class RemoteUsersTests(ServerTestCase):
    """
    The events of other daemons and a daemon that is gone.
    """

    def test_node_gone(self) -> None:
        """The users of a daemon that is gone quit, as their neighbours here are told."""
        self.server.cluster = True
        alice, _ = self.user("alice")
        self.server.remote_event(events.StatusChanged("zed", ""), "b")
        self.server.bus.publish(events.Joined(at(0), "#lobby", "zed"), self.server.domain.rooms["#lobby"].to)
        self.server.remote_event(events.Joined(at(0), "#lobby", "zed"), "b")
        alice.take()
        self.server.node_gone("b")
        [quit] = alice.take()
        self.assertEqual((quit["type"], quit["nick"], quit["reason"]), ("quit", "zed", "server b is unreachable"))
        self.assertNotIn("zed", self.server.domain.users)

    def test_stats_here_and_cluster(self) -> None:
        """In a cluster, /stats counts this daemon's users and the cluster's, and names the servers."""
        self.server.cluster = True
        self.server.domain.node = "a"
        self.user("alice")
        self.server.remote_event(events.StatusChanged("zed", ""), "b")
        self.server.remote_event(events.StatusChanged("zoe", ""), "c")
        text = self.server.stats()
        self.assertIn("Node: a", text)
        self.assertIn("Connections: 1 (1 registered users)", text)
        self.assertIn("Cluster: 3 registered users on 3 servers with users (a, b, c), 1 rooms", text)

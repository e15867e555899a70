"""
End-to-end tests of moderation (PROTOCOL.md section 10) against a real
C{twistd -n chat} process on loopback: an operator and a victim over real
sockets, then a restart (SIGTERM, start again on the same data directory)
after which bans, operator roles of accounts and room settings still hold.

Every test fails if the daemon logs an unhandled error in any of its runs.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.e2e import EXITED_ON_SIGTERM, Client, Daemon

FAST = ("--flood-burst", "100000", "--flood-rate", "100000")
PASSWORD = "sesame-open-1"


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """
    The events of type C{kind}, in order.
    """
    return [e for e in events if e["type"] == kind]


class ModerationEndToEndTests(SynchronousTestCase):
    """
    One daemon, stopped and started again within the test.
    """

    def setUp(self) -> None:
        self.daemon = Daemon(*FAST)
        self.addCleanup(self.daemon.stop)
        self.daemon.start()

    def client(self, nick: str) -> Client:
        """
        A JSON guest registered as C{nick} on the current run.
        """
        client = Client.json(self.daemon.port, nick)
        self.addCleanup(client.close)
        return client

    def login(self, nick: str) -> Client:
        """
        A JSON connection logged in to C{nick}, once its #lobby history arrived.
        """
        client = Client.json_connect(self.daemon.port)
        self.addCleanup(client.close)
        client.send_line(f"/login {nick} {PASSWORD}")
        events = client.read_events_until(
            lambda e: e["type"] == "error" or (e["type"] == "history" and e["room"] == "#lobby")
        )
        self.assertEqual(of_type(events, "error"), [])
        return client

    def register(self, nick: str) -> Client:
        """
        A JSON guest C{nick} that registers its account.
        """
        client = self.client(nick)
        client.send_line(f"/register {PASSWORD}")
        client.expect_event("registered", nick=nick, account=True)
        return client

    def test_operator_and_victim_across_restart(self) -> None:
        """
        Mute, moderated, kick, ban and op work over sockets; after a restart the ban, the accounts'
        roles and the room settings hold, and deop works.
        """
        opal = self.register("opal")
        ally = self.register("ally")
        join = opal.join("#mod")
        self.assertIn({"type": "role", "room": "#mod", "nick": "opal", "role": "operator", "by": ""}, join)
        vic = self.client("vic")
        vic.join("#mod")
        ally.join("#mod")

        opal.send_line("/mute vic #mod 10m")
        self.assertIn("muted you in #mod", vic.expect_event("info")["text"])
        vic.send_line("can I speak")
        self.assertEqual(vic.expect_event("error")["code"], "muted")
        opal.send_line("/unmute vic #mod")
        vic.expect_event("info")
        opal.send_line("/room #mod moderated on")
        settings = {
            "type": "room-settings", "room": "#mod", "invite-only": False, "topic-lock": False, "moderated": True,
        }
        self.assertEqual(vic.expect_event("room-settings"), settings)
        vic.send_line("still?")
        self.assertEqual(vic.expect_event("error")["code"], "muted")
        opal.send_line("/room #mod moderated off")
        opal.send_line("/room #mod topic-lock on")
        vic.expect_event("room-settings", {"topic-lock": True})

        opal.send_line("/kick vic #mod out for now")
        kick = vic.expect_event("kick")
        self.assertEqual(
            {k: kick[k] for k in ("room", "nick", "by", "reason")},
            {"room": "#mod", "nick": "vic", "by": "opal", "reason": "out for now"},
        )
        vic.join("#mod")
        opal.send_line("/ban vic #mod spam")
        vic.expect_event("kick", room="#mod", nick="vic")
        vic.send_line("/join #mod")
        self.assertEqual(vic.expect_event("error")["code"], "banned")

        opal.send_line("/op ally #mod")
        self.assertEqual(
            ally.expect_event("role", nick="ally"),
            {"type": "role", "room": "#mod", "nick": "ally", "role": "operator", "by": "opal"},
        )
        opal.ping("before-restart")
        self.assertIn(self.daemon.halt(), EXITED_ON_SIGTERM)

        self.daemon.start()
        again = self.client("vic")  # a guest from the same address, with the same nick
        again.send_line("/join #mod")
        self.assertEqual(again.expect_event("error")["code"], "banned")
        sneaky = self.client("vic2")  # another guest nick from that address
        sneaky.send_line("/join #mod")
        self.assertEqual(sneaky.expect_event("error")["code"], "banned")

        ally = self.login("ally")
        join = ally.join("#mod")  # the first back, as an operator by its account
        self.assertIn({"type": "role", "room": "#mod", "nick": "ally", "role": "operator", "by": ""}, join)
        self.assertIn(
            {"type": "room-settings", "room": "#mod", "invite-only": False, "topic-lock": True, "moderated": False},
            join,
        )
        opal = self.login("opal")
        join = opal.join("#mod")
        self.assertIn({"type": "role", "room": "#mod", "nick": "opal", "role": "operator", "by": ""}, join)
        opal.send_line("/deop ally #mod")
        self.assertEqual(ally.expect_event("role", nick="ally")["role"], "member")
        ally.send_line("/topic #mod mine now")
        self.assertEqual(ally.expect_event("error")["code"], "not-operator")
        opal.send_line("/unban vic #mod")
        opal.expect_event("info")
        again.send_line("/join #mod")
        again.expect_event("join", room="#mod", nick="vic")
        self.assertEqual(self.daemon.unhandled_errors(), [])

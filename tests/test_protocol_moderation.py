"""
Tests for moderation over the line front end (PROTOCOL.md section 10): the
commands typed by operators and administrators, what each connection is
sent in text and json, and who keeps receiving a room's messages, over
L{StringTransport} with a L{Clock}.
"""

from __future__ import annotations

from twisted.logger import LogLevel, capturedLogs

from chat import errors
from tests.support import error_text
from tests.test_protocol_accounts import AccountsTestCase


class ModerationProtocolTests(AccountsTestCase):
    """
    An operator (alice, first in #lobby) and a victim (bob, from another address).
    """

    def setUp(self) -> None:
        super().setUp()
        self.alice = self.text_user("alice")
        self.bob = self.text_user("bob", host="10.0.0.2")
        self.alice.take()

    def test_kick_seen_and_victim_out(self) -> None:
        """
        /kick shows a kick line to the room, the victim included, who no longer gets the room's messages.
        """
        self.alice.line("/kick bob enough")
        line = b"[14:02] * bob was kicked from #lobby by alice (enough)\r\n"
        self.assertEqual(self.alice.take(), line)
        self.assertEqual(self.bob.take(), line)
        self.alice.line("after the kick")
        self.assertEqual(self.bob.take(), b"")
        self.bob.line("hello?")
        self.assertEqual(self.bob.take(), error_text("not-in-room", "you are in no room: /join #ROOM first"))

    def test_not_operator(self) -> None:
        """
        A member's /kick gets error not-operator and changes nothing.
        """
        self.bob.line("/kick alice")
        self.assertEqual(self.bob.take(), error_text("not-operator", "you are not an operator of #lobby"))
        self.assertEqual(self.alice.take(), b"")

    def test_ban_keeps_nick_and_address_out(self) -> None:
        """
        /ban kicks; the victim cannot rejoin, nor a new guest from the same address; others can.
        """
        with capturedLogs() as logged:
            self.alice.line("/ban bob 1h flooding")
        self.assertEqual(
            self.alice.take(),
            b"*** bob is banned from #lobby until 2025-11-21 15:02 UTC\r\n"
            b"[14:02] * bob was kicked from #lobby by alice (flooding)\r\n",
        )
        self.assertIn(
            ("info", "alice", "bob", "#lobby"),
            [(e["log_level"].name, e.get("by"), e.get("nick"), e.get("room")) for e in logged],
        )
        self.bob.take()
        self.bob.line("/join #lobby")
        self.assertEqual(
            self.bob.take(), error_text("banned", "you are banned from #lobby until 2025-11-21 15:02 UTC: flooding")
        )
        again = self.connect("10.0.0.2")
        again.line("/nick bobby")
        self.assertTrue(again.take().endswith(
            error_text("banned", "you are banned from #lobby until 2025-11-21 15:02 UTC: flooding")
        ))
        self.assertNotIn("bobby", self.server.domain.rooms["#lobby"].members)
        self.text_user("carol", host="10.0.0.3")
        self.assertIn("carol", self.server.domain.rooms["#lobby"].members)
        self.clock.advance(3600)
        self.bob.line("/join #lobby")
        self.assertIn("bob", self.server.domain.rooms["#lobby"].members)

    def test_bans_listed_and_unbanned(self) -> None:
        """
        /bans lists as info lines; /unban lifts the ban.
        """
        self.alice.line("/ban bob")
        self.alice.take()
        self.alice.line("/bans")
        self.assertEqual(
            self.alice.take(), b"*** Bans in #lobby:\r\n***   guest bob and address 10.0.0.2 for good, by alice\r\n"
        )
        self.alice.line("/unban bob")
        self.assertEqual(self.alice.take(), b"*** bob is no longer banned from #lobby\r\n")
        self.bob.line("/join #lobby")
        self.assertIn("bob", self.server.domain.rooms["#lobby"].members)

    def test_mute_and_moderated(self) -> None:
        """
        A muted user gets error muted; in a moderated room every member does; room-settings in json.
        """
        self.alice.line("/mute bob 10m")
        self.assertEqual(self.bob.take(), b"*** alice muted you in #lobby until 2025-11-21 14:12 UTC\r\n")
        self.bob.line("let me speak")
        self.assertEqual(self.bob.take(), error_text(errors.Muted.code, "you are muted in #lobby"))
        self.assertEqual(self.alice.take(), b"*** bob is muted in #lobby until 2025-11-21 14:12 UTC\r\n")
        self.alice.line("/unmute bob")
        carol = self.json_user("carol")
        self.alice.line("/room moderated on")
        self.assertEqual(
            carol.take_json(),
            [{"type": "room-settings", "room": "#lobby", "invite-only": False, "topic-lock": False, "moderated": True}],
        )
        carol.line("me too")
        self.assertEqual(carol.take_json()[0]["code"], "muted")
        self.alice.line("operators speak")
        self.assertEqual(carol.take_json()[0]["text"], "operators speak")

    def test_op_shown_with_at(self) -> None:
        """
        /op sends a role line to the room; /list then marks both operators with @.
        """
        self.alice.line("/op bob")
        self.assertEqual(self.bob.take(), b"* bob is an operator of #lobby (by alice)\r\n")
        self.alice.take()
        self.bob.line("/list")
        self.assertEqual(self.bob.take(), b"* 2 users in #lobby:\r\n*   @alice (idle 0s)\r\n*   @bob (idle 0s)\r\n")
        self.bob.line("/deop alice")
        self.assertEqual(self.alice.take(), b"* alice is no longer an operator of #lobby (by bob)\r\n")

    def test_invite_only(self) -> None:
        """
        An invite-only room refuses bob with invite-only until alice invites him (told by info).
        """
        self.alice.line("/join #club")
        self.alice.line("/room #club invite-only on")
        self.bob.line("/join #club")
        self.assertEqual(
            self.bob.take(), error_text("invite-only", "#club is invite-only: an operator of it can /invite bob")
        )
        self.alice.line("/invite bob")
        self.assertEqual(self.bob.take(), b"*** alice invites you to #club: /join #club\r\n")
        self.bob.line("/join #club")
        self.assertIn("bob", self.server.domain.rooms["#club"].members)

    def test_admin_kill_announce_stats(self) -> None:
        """
        An administrator (granted in the store, reloaded) kills with bye, announces to all, and gets stats.
        """
        self.create_account("root")
        self.server.store.set_admin("root", True)
        self.successResultOf(self.server.reload_moderation())
        root = self.login_user("root")
        joined = b"[14:02] * root joined #lobby\r\n* root is an operator of #lobby\r\n"
        self.assertEqual((self.alice.take(), self.bob.take()), (joined, joined))
        self.bob.line("/kill alice")
        self.assertEqual(self.bob.take(), error_text("not-operator", "only server administrators may /kill"))
        root.line("/announce maintenance at noon")
        for client in (self.alice, self.bob, root):
            self.assertEqual(client.take(), b"*** Announcement from root: maintenance at noon\r\n")
        self.alice.line("one message")
        root.take()
        self.bob.take()
        root.line("/stats")
        self.assertEqual(
            root.take(),
            b"*** Uptime: 0d 00h 00m (0 s)\r\n*** Connections: 3 (3 registered users)\r\n*** Rooms: 1\r\n"
            b"*** Messages in the last minute: 1\r\n*** Store: in memory\r\n",
        )
        root.line("/kill bob go away")
        self.assertEqual(self.bob.take(), b"*** Bye: go away\r\n")
        self.assertTrue(self.bob.transport.disconnecting)
        self.assertEqual(root.take(), b"*** bob is disconnected\r\n[14:02] * bob quit (go away)\r\n")

    def test_help_lists_moderation(self) -> None:
        """
        /help names the moderation commands with their usage.
        """
        self.bob.line("/help ban")
        self.assertEqual(
            self.bob.take(),
            b"*** /ban NICK [#ROOM] [DURATION] [REASON]: kicks NICK and keeps them out, for DURATION"
            b" (like 10m, 2h, 7d) or for good (operators)\r\n",
        )

    def test_actions_logged_at_info(self) -> None:
        """
        Each moderation action is logged at info naming who did what to whom, where.
        """
        with capturedLogs() as logged:
            self.alice.line("/op bob")
            self.alice.line("/mute bob")
            self.alice.line("/room topic-lock on")
            self.alice.line("/kick bob")
        infos = [e for e in logged if e["log_level"] is LogLevel.info]
        self.assertEqual(len(infos), 4)
        for event in infos:
            self.assertEqual((event["by"], event["room"]), ("alice", "#lobby"))

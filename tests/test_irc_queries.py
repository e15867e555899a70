"""
Tests of the IRC front end's queries about users and channels (PROTOCOL.md
section 14, docs/irc.md) over L{StringTransport}: WHO by nick mask,
USERHOST, ISON, 301 to the sender of a message to someone away, user
modes that change nothing, and the channel modes shown.
"""

from __future__ import annotations

from tests.test_irc import IRCTestCase


class QueryTests(IRCTestCase):
    """
    WHO, USERHOST and ISON about connected users.
    """

    def test_who_mask(self) -> None:
        """WHO by a nick or a mask gives 352 (channel *) for each match, then 315 with the mask as given."""
        self.text_user("bob")
        alice = self.irc_user("alice")
        carol = self.irc_client()
        carol.send("NICK carol", "USER ucarol 0 * :Carol Real")
        carol.take()
        alice.send("WHO CAROL")
        self.assertEqual(alice.lines(), [
            ":chat 352 alice * ucarol chat chat carol H :0 Carol Real",
            ":chat 315 alice CAROL :End of /WHO list",
        ])
        alice.send("WHO *o*")
        self.assertEqual([text.split()[7] for text in alice.lines()[:-1]], ["bob", "carol"])
        alice.send("WHO nobody")
        self.assertEqual(alice.lines(), [":chat 315 alice nobody :End of /WHO list"])

    def test_userhost_and_ison(self) -> None:
        """USERHOST gives nick=+user@chat (- when away) for connected nicks; ISON lists those connected."""
        bob = self.text_user("bob")
        bob.line("/status lunch")
        alice = self.irc_user("alice")
        alice.send("USERHOST alice bob nobody", "ISON nobody BOB alice")
        self.assertEqual(alice.lines(), [
            ":chat 302 alice :alice=+alice@chat bob=-bob@chat",
            ":chat 303 alice :alice bob",
        ])

    def test_away_reply(self) -> None:
        """A PRIVMSG to someone away gets 301 with their status; a NOTICE does not."""
        bob = self.text_user("bob")
        bob.line("/status gone fishing")
        alice = self.irc_user("alice")
        alice.send("PRIVMSG bob :hi", "NOTICE bob :hey")
        self.assertEqual(alice.lines(), [":chat 301 alice bob :gone fishing"])
        self.assertIn(b"hi", self.seen(bob))

    def test_user_modes(self) -> None:
        """MODE nick +i (as irssi sends on connecting) changes nothing and is not refused; +x is (501)."""
        alice = self.irc_user("alice")
        alice.send("MODE alice +i", "MODE alice +x", "MODE alice")
        self.assertEqual(alice.lines(), [":chat 501 alice :Unknown MODE flag", ":chat 221 alice +"])

    def test_channel_modes(self) -> None:
        """324 shows n (always on) with the settings; MODE +n is taken without a change."""
        alice = self.irc_user("alice")
        alice.send("JOIN #x")
        alice.take()
        alice.send("MODE #x +n", "MODE #x", "MODE #x +t", "MODE #x")
        lines = alice.lines()
        self.assertEqual(lines[0], ":chat 324 alice #x +n")
        self.assertEqual(lines[-1], ":chat 324 alice #x +nt")

    def test_list(self) -> None:
        """LIST shows the channels with members (an empty #lobby is not one), or only those named."""
        alice = self.irc_user("alice")
        alice.send("LIST")
        self.assertEqual(alice.lines(), [":chat 321 alice Channel :Users  Name", ":chat 323 alice :End of /LIST"])
        alice.send("JOIN #a,#b")
        alice.take()
        alice.send("LIST #B,#nowhere")
        self.assertEqual(alice.lines(), [
            ":chat 321 alice Channel :Users  Name", ":chat 322 alice #b 1 :", ":chat 323 alice :End of /LIST",
        ])

    def test_oper(self) -> None:
        """OPER gets 491: administrators are accounts, whose rights come with logging in."""
        alice = self.irc_user("alice")
        alice.send("OPER admin secret")
        [refused] = alice.lines()
        self.assertTrue(refused.startswith(":chat 491 alice :No O-lines"), refused)

    def test_mode_change_alone(self) -> None:
        """A setting changed by an operator reaches members as MODE with that change alone, from the operator."""
        alice, carol = self.in_channel("#x", "alice", "carol")
        alice.send("MODE #x +m", "MODE #x -m")
        self.assertEqual(carol.lines(), [":alice!alice@chat MODE #x +m", ":alice!alice@chat MODE #x -m"])

    def test_not_utf8(self) -> None:
        """A line that is not UTF-8 gets FAIL verb INVALID_UTF8 (UTF8ONLY) and the session goes on."""
        client = self.irc_client()
        client.protocol.dataReceived(b"NICK foo\r\nUSER username * * :i\xe8rc\xe9\r\n")
        self.assertEqual(client.lines(), [":chat FAIL USER INVALID_UTF8 :Message rejected: lines must be UTF-8"])
        client.send("USER username * * :Real")
        self.assertIn(":chat 001 foo :Welcome to the chat IRC network, foo", client.lines())

    def test_message_to_a_channel_not_joined(self) -> None:
        """A PRIVMSG to a channel the user is not in gets 404 (+n), not 442."""
        alice = self.irc_user("alice")
        carol = self.irc_user("carol")
        carol.send("JOIN #x")
        alice.send("PRIVMSG #x :hello")
        [refused] = alice.lines()
        self.assertTrue(refused.startswith(":chat 404 alice #x :"), refused)

    def test_ban_mode(self) -> None:
        """MODE +b nick!*@* bans (kicking the member), MODE b lists bans as notices then 368, -b lifts it."""
        alice, carol = self.in_channel("#x", "alice", "carol")
        alice.send("MODE #x +b carol!*@*")
        self.assertIn(":alice!alice@chat KICK #x carol :alice", carol.lines())
        alice.take()
        alice.send("MODE #x b")
        listed = alice.lines()
        self.assertEqual(listed[-1], ":chat 368 alice #x :End of channel ban list")
        self.assertTrue(any("guest carol" in text for text in listed), listed)
        carol.send("JOIN #x")
        self.assertTrue(carol.lines()[0].startswith(":chat 474 carol #x :"))
        alice.send("MODE #x -b carol", "MODE #x +b *!*@example.org")
        refused = alice.lines()[-1]
        self.assertTrue(refused.startswith(":chat 472 alice b :bans are of a nick"), refused)
        carol.send("JOIN #x")
        self.assertEqual(carol.lines()[0], ":carol!carol@chat JOIN #x")

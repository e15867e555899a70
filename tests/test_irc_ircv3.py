"""
Tests of the IRCv3 capabilities of the IRC front end (PROTOCOL.md section
14, docs/irc.md) over L{StringTransport}: NOTICE kept a notice, private
actions, account-tag, extended-join, away-notify on join, msgid, and SASL
PLAIN against the chat's accounts.
"""

from __future__ import annotations

import base64

from chat.irc.sasl import PlainResponse, SASLFailed
from tests.support import START
from tests.test_irc import IRCClient, IRCTestCase


def plain(authzid: str, authcid: str, password: str) -> str:
    """The base64 of a SASL PLAIN response (RFC 4616)."""
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


class IRCv3TestCase(IRCTestCase):
    def cap_user(self, nick: str, caps: str, join: bool = True) -> IRCClient:
        """An IRC user registered with C{caps} enabled, in #lobby when C{join}."""
        client = self.irc_client()
        client.send("CAP LS 302", f"CAP REQ :{caps}", f"NICK {nick}", f"USER u{nick} 0 * :{nick} Real", "CAP END")
        self.assertIn(f":chat CAP * ACK :{caps}", client.lines())
        if join:
            client.send("JOIN #lobby")
            client.take()
        return client

    def account(self, name: str, password: str = "password1") -> None:
        self.successResultOf(self.server.accounts.create(name, password, START))
        self.server.domain.account_created(name, None)


class NoticeTests(IRCv3TestCase):
    """
    A NOTICE reaches IRC users as a NOTICE, and other front ends as a message.
    """

    def test_channel_notice(self) -> None:
        """A NOTICE to a channel is a NOTICE to IRC members and a message to line users."""
        bob = self.text_user("bob")
        alice = self.cap_user("alice", "multi-prefix")
        carol = self.cap_user("carol", "multi-prefix")
        self.seen(bob)
        alice.take()
        carol.send("NOTICE #lobby :the bot says hi")
        self.assertEqual(alice.lines(), [":carol!carol@chat NOTICE #lobby :the bot says hi"])
        self.assertIn(b"<carol> the bot says hi", self.seen(bob))
        self.assertEqual(carol.take(), b"")

    def test_private_notice_and_action(self) -> None:
        """A private NOTICE is a NOTICE, a private CTCP ACTION an ACTION, to the IRC recipient."""
        alice = self.cap_user("alice", "multi-prefix")
        carol = self.cap_user("carol", "multi-prefix")
        alice.take()
        carol.send("NOTICE alice :psst", "PRIVMSG alice :\x01ACTION waves\x01")
        self.assertEqual(alice.lines(), [
            ":carol!carol@chat NOTICE alice :psst",
            ":carol!carol@chat PRIVMSG alice :\x01ACTION waves\x01",
        ])

    def test_notice_echoed_as_notice(self) -> None:
        """With echo-message, the sender's own NOTICE comes back as a NOTICE."""
        alice = self.cap_user("alice", "echo-message")
        alice.send("NOTICE #lobby :hello")
        self.assertEqual(alice.lines(), [":alice!alice@chat NOTICE #lobby :hello"])


class AccountTests(IRCv3TestCase):
    """
    account-tag, extended-join and msgid: who is logged in, and the ids of messages.
    """

    def test_account_tag(self) -> None:
        """A logged-in sender's messages carry account=; a guest's do not; without the capability, none."""
        self.account("bob")
        bob = self.text_user("guest")
        bob.line("/login bob password1")
        alice = self.cap_user("alice", "account-tag")
        carol = self.cap_user("carol", "multi-prefix")
        dave = self.cap_user("dave", "multi-prefix")
        alice.take()
        carol.take()
        bob.line("hi")
        dave.send("PRIVMSG #lobby :hey")
        self.assertEqual(alice.lines(), [
            "@account=bob :bob!bob@chat PRIVMSG #lobby :hi",
            ":dave!dave@chat PRIVMSG #lobby :hey",
        ])
        self.assertEqual(carol.lines(), [":bob!bob@chat PRIVMSG #lobby :hi", ":dave!dave@chat PRIVMSG #lobby :hey"])
        bob.line("/msg alice psst")
        self.assertEqual(alice.lines(), ["@account=bob :bob!bob@chat PRIVMSG alice :psst"])

    def test_extended_join(self) -> None:
        """With extended-join, JOIN carries the account (or *) and the real name; without, only the channel."""
        self.account("bob")
        alice = self.cap_user("alice", "extended-join")
        carol = self.cap_user("carol", "multi-prefix")
        alice.take()
        carol.take()
        dave = self.cap_user("dave", "multi-prefix")
        self.assertEqual(alice.lines(), [":dave!dave@chat JOIN #lobby * :dave Real"])
        self.assertEqual(carol.lines(), [":dave!dave@chat JOIN #lobby"])
        bob = self.irc_client()
        bob.send("PASS bob:password1", "NICK bob", "USER bob 0 * :Bob B", "JOIN #lobby")
        self.assertEqual(alice.lines(), [":bob!bob@chat JOIN #lobby bob :Bob B"])
        dave.take()

    def test_away_notify_on_join(self) -> None:
        """With away-notify, the JOIN of someone away is followed by their AWAY."""
        alice = self.cap_user("alice", "away-notify")
        carol = self.cap_user("carol", "multi-prefix")
        alice.take()
        carol.take()
        bob = self.text_user("bob")
        self.seen(bob)
        alice.take()
        bob.line("/part #lobby")
        bob.line("/status lunch")
        alice.take()
        bob.line("/join #lobby")
        self.assertEqual(alice.lines(), [":bob!bob@chat JOIN #lobby", ":bob!bob@chat AWAY :lunch"])
        self.assertEqual(carol.lines()[0], ":bob!bob@chat JOIN #lobby")
        self.assertNotIn(":bob!bob@chat AWAY :lunch", carol.lines())

    def test_msgid(self) -> None:
        """With message-tags, messages carry msgid= their chat id, the same for every recipient."""
        alice = self.cap_user("alice", "message-tags server-time")
        carol = self.cap_user("carol", "message-tags server-time")
        alice.take()
        carol.send("PRIVMSG #lobby :hey")
        [received] = alice.lines()
        last = self.server.domain.rooms["#lobby"].history[-1]
        self.assertTrue(received.startswith(f"@msgid={last.id};time="), received)
        self.assertTrue(received.endswith(" :carol!carol@chat PRIVMSG #lobby :hey"), received)


class SASLTests(IRCv3TestCase):
    """
    SASL PLAIN (IRCv3 sasl 3.1) against the chat's accounts, under the plaintext rule.
    """

    def sasl_client(self) -> IRCClient:
        client = self.irc_client()
        client.send("CAP LS 302", "NICK whoever", "USER u 0 * :Real", "CAP REQ sasl")
        lines = client.lines()
        self.assertIn(":chat CAP * ACK :sasl", lines)
        return client

    def test_success(self) -> None:
        """PLAIN with the right password: AUTHENTICATE +, 900 and 903, then the burst at CAP END as the account."""
        self.account("carol")
        client = self.sasl_client()
        client.send("AUTHENTICATE PLAIN")
        self.assertEqual(client.lines(), ["AUTHENTICATE +"])
        client.send(f"AUTHENTICATE {plain('', 'carol', 'password1')}")
        self.assertEqual(client.lines(), [
            ":chat 900 carol carol!carol@chat carol :You are now logged in as carol",
            ":chat 903 carol :SASL authentication successful",
        ])
        client.send("CAP END")
        burst = client.lines()
        self.assertEqual(burst[0], ":chat 001 carol :Welcome to the chat IRC network, carol")
        self.assertEqual(self.server.domain.users["carol"].account, "carol")
        client.send("AUTHENTICATE PLAIN")
        self.assertEqual(client.lines(), [":chat 907 carol :You have already authenticated using SASL"])

    def test_wrong_password(self) -> None:
        """A wrong password gets 904; the client may then register as a guest."""
        self.account("carol")
        client = self.sasl_client()
        client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('carol', 'carol', 'nope-nope')}")
        self.clock.advance(10)
        lines = client.lines()
        self.assertEqual(lines[0], "AUTHENTICATE +")
        self.assertTrue(lines[1].startswith(":chat 904 * :SASL authentication failed"), lines)
        client.send("CAP END")
        self.assertIn(":chat 001 whoever :Welcome to the chat IRC network, whoever", client.lines())
        self.assertIsNone(self.server.domain.users["whoever"].account)

    def test_mechanism_abort_and_garbage(self) -> None:
        """Another mechanism gets 908 and 904, * aborts with 906, a response that is not base64 904."""
        client = self.sasl_client()
        client.send("AUTHENTICATE EXTERNAL")
        self.assertEqual(client.lines(), [
            ":chat 908 * PLAIN :are available SASL mechanisms",
            ":chat 904 * :SASL authentication failed",
        ])
        client.send("AUTHENTICATE PLAIN", "AUTHENTICATE *")
        self.assertEqual(client.lines(), ["AUTHENTICATE +", ":chat 906 * :SASL authentication aborted"])
        client.send("AUTHENTICATE PLAIN", "AUTHENTICATE !!!")
        self.assertEqual(client.lines()[1][:16], ":chat 904 * :SAS")

    def test_needs_the_capability(self) -> None:
        """AUTHENTICATE without CAP REQ sasl gets 904."""
        client = self.irc_client()
        client.send("AUTHENTICATE PLAIN")
        self.assertTrue(client.lines()[0].startswith(":chat 904 * :"))


class PlainResponseTests(IRCv3TestCase):
    """
    L{PlainResponse}: the base64 chunks of a PLAIN response.
    """

    def test_chunks(self) -> None:
        """A response of 400-character chunks is whole after a shorter one, or after +."""
        password = "p" * 600
        encoded = plain("", "carol", password)
        chunks = [encoded[i:i + 400] for i in range(0, len(encoded), 400)]
        response = PlainResponse()
        for chunk in chunks[:-1]:
            self.assertIsNone(response.feed(chunk))
        if len(chunks[-1]) == 400:
            self.assertIsNone(response.feed(chunks[-1]))
            self.assertEqual(response.feed("+"), ("carol", password))
        else:
            self.assertEqual(response.feed(chunks[-1]), ("carol", password))

    def test_refusals(self) -> None:
        """Too long, two fields, or another authzid: SASLFailed (too_long only for the first)."""
        response = PlainResponse()
        with self.assertRaises(SASLFailed) as caught:
            for _ in range(4):
                response.feed("A" * 400)
        self.assertTrue(caught.exception.too_long)
        with self.assertRaises(SASLFailed):
            PlainResponse().feed(base64.b64encode(b"carol\0pw").decode())
        with self.assertRaises(SASLFailed) as other:
            PlainResponse().feed(plain("admin", "carol", "password1"))
        self.assertFalse(other.exception.too_long)

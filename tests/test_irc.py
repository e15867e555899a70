"""
Tests of the IRC front end (PROTOCOL.md section 14, docs/irc.md) over
L{StringTransport}: registration, channels shared with line users, the
numerics of refusals, IRC's line limit, and the rendering of events.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from chat import errors, events
from chat.accounts import Accounts, PasswordHasher
from chat.interfaces import IParticipant, Outgoing
from chat.irc import numerics
from chat.irc.protocol import LINE_MAX, IRCFactory, IRCProtocol
from chat.irc.render import line, modes, render, renderer
from chat.memory_store import MemoryStore
from chat.protocol import ChatFactory
from chat.server import ChatServer
from chat.settings import Settings
from chat.tap import Options
from tests.support import CHUNK_SIZES, START, Client, ProtocolTestCase, RecordingTransport, chunked
from tests.test_accounts import cheap

BURST = (
    b":chat 001 alice :Welcome to the chat IRC network, alice\r\n"
    b":chat 002 alice :Your host is chat, running version chat-0.1.0\r\n"
    b":chat 003 alice :This server was created 2025-11-21 14:02:03 UTC\r\n"
    b":chat 004 alice chat chat-0.1.0 i bimnot bo\r\n"
    b":chat 005 alice AWAYLEN=200 CASEMAPPING=ascii CHANMODES=b,,,imnt CHANNELLEN=33 CHANTYPES=# CHATHISTORY=500"
    b" KICKLEN=200 LINELEN=512 MSGREFTYPES=msgid,timestamp NETWORK=chat NICKLEN=24 PREFIX=(o)@"
    b" :are supported by this server\r\n"
    b":chat 005 alice TOPICLEN=390 UTF8ONLY :are supported by this server\r\n"
    b":chat 422 alice :MOTD File is missing\r\n"
)
"""What C{alice} is sent on registering with the default settings."""


class IRCClient:
    """
    One IRC connection to the test's server over a L{RecordingTransport}.
    """

    def __init__(self, factory: IRCFactory, port: int) -> None:
        address = IPv4Address("TCP", "127.0.0.1", port)
        self.factory = factory
        self.transport = RecordingTransport(address)
        self.protocol: IRCProtocol = factory.buildProtocol(address)
        self.protocol.makeConnection(self.transport)

    def send(self, *lines: str) -> None:
        """Send C{lines}, each with CR LF, in one chunk."""
        self.protocol.dataReceived("".join(f"{text}\r\n" for text in lines).encode())

    def take(self) -> bytes:
        """What the client was sent since the last call."""
        self.factory.batch.flush()
        data: bytes = self.transport.value()
        self.transport.clear()
        return data

    def lines(self) -> list[str]:
        """L{take} as decoded lines."""
        return self.take().decode().splitlines()


class IRCTestCase(ProtocolTestCase):
    """
    A server with its line factory (L{ProtocolTestCase}) and an IRC factory
    on the same server.
    """

    @staticmethod
    def make_factory(settings: Settings) -> tuple[Clock, ChatFactory]:
        clock = Clock()
        clock.advance(START)
        store = MemoryStore()
        accounts = Accounts(store, PasswordHasher(None, hasher=cheap()), clock)
        return clock, ChatFactory(ChatServer(settings, clock, store, accounts))

    def setUp(self) -> None:
        super().setUp()
        self.irc = IRCFactory(self.server)

    def seen(self, client: Client) -> bytes:
        """What the line C{client} was sent since the last call, after the line front end's batch is flushed."""
        self.factory.batch.flush()
        return client.take()

    def irc_client(self) -> IRCClient:
        self._port += 1
        return IRCClient(self.irc, self._port)

    def irc_user(self, nick: str) -> IRCClient:
        client = self.irc_client()
        client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        registered = client.lines()
        self.assertIn(f":chat 001 {nick} :Welcome to the chat IRC network, {nick}", registered)
        return client

    def in_channel(self, channel: str, *nicks: str) -> list[IRCClient]:
        """
        IRC users C{nicks}, registered, then joined to C{channel} in that
        order (the first is its operator when it is new), what they were
        sent so far taken.
        """
        clients = [self.irc_user(nick) for nick in nicks]
        for client in clients:
            client.send(f"JOIN {channel}")
        for client in clients:
            client.take()
        return clients


class RegistrationTests(IRCTestCase):
    """
    NICK, USER, PASS and CAP (PROTOCOL.md section 14).
    """

    def test_burst(self) -> None:
        """A CAP LS 302 negotiation, NICK and USER register the nick: 001 to 005 and 422, and no channel."""
        client = self.irc_client()
        client.send("CAP LS 302", "NICK alice", "USER alice 0 * :Alice")
        self.assertEqual(
            client.take(),
            b":chat CAP * LS :account-tag away-notify batch cap-notify draft/chathistory echo-message extended-join"
            b" message-tags multi-prefix sasl=PLAIN server-time userhost-in-names\r\n",
        )
        client.send("CAP END")
        self.assertEqual(client.take(), BURST)
        self.assertEqual(self.server.domain.users["alice"].rooms, {})

    def test_burst_byte_by_byte(self) -> None:
        """Registration fed in pieces of any size gives the same burst."""
        data = b"NICK alice\r\nUSER alice 0 * :Alice\r\n"
        for size in CHUNK_SIZES:
            self.setUp()
            client = self.irc_client()
            for piece in chunked(data, size):
                client.protocol.dataReceived(piece)
            self.assertEqual(client.take(), BURST, size)

    def test_motd(self) -> None:
        """A message of the day is sent as 375, one 372 per line, 376, also on MOTD."""
        self.server.settings = self.server.settings.__class__(flood_burst=10_000, motd="hello\nthere")
        client = self.irc_client()
        client.send("NICK alice", "USER alice 0 * :Alice")
        self.assertTrue(client.take().endswith(
            b":chat 375 alice :- chat Message of the day - \r\n:chat 372 alice :- hello\r\n"
            b":chat 372 alice :- there\r\n:chat 376 alice :End of /MOTD command.\r\n"
        ))
        client.send("MOTD")
        self.assertEqual(len(client.lines()), 4)

    def test_cap_req_refused(self) -> None:
        """A CAP REQ naming one unknown capability is refused whole (NAK), and registration waits for CAP END."""
        client = self.irc_client()
        client.send("CAP REQ :server-time draft/unknown", "NICK alice", "USER alice 0 * :Alice")
        self.assertEqual(client.take(), b":chat CAP * NAK :server-time draft/unknown\r\n")
        client.send("CAP LIST")
        self.assertEqual(client.take(), b":chat CAP * LIST :\r\n")
        client.send("CAP END")
        self.assertEqual(client.take(), BURST)

    def test_cap_req_acknowledged(self) -> None:
        """CAP REQ of offered capabilities is ACKed as asked; CAP LIST shows them; a -cap disables one."""
        client = self.irc_client()
        client.send("CAP LS 302", "CAP REQ :echo-message server-time multi-prefix")
        self.assertEqual(client.lines()[1:], [":chat CAP * ACK :echo-message server-time multi-prefix"])
        client.send("CAP LIST")
        self.assertEqual(
            client.lines(), [":chat CAP * LIST :cap-notify echo-message multi-prefix server-time"]
        )
        client.send("CAP REQ :-server-time", "CAP LIST")
        self.assertEqual(client.lines(), [
            ":chat CAP * ACK :-server-time",
            ":chat CAP * LIST :cap-notify echo-message multi-prefix",
        ])
        self.assertIs(client.protocol.outbox.renderer, self.irc.renderer)

    def test_empty_realname(self) -> None:
        """USER with an empty real name gets 461 and does not register."""
        client = self.irc_client()
        client.send("NICK alice", "USER alice * * :")
        self.assertEqual(client.lines(), [":chat 461 * USER :Not enough parameters"])
        self.assertNotIn("alice", self.server.domain.users)

    def test_not_registered(self) -> None:
        """A registered user's command before registration gets 451; an unknown one 421."""
        client = self.irc_client()
        client.send("JOIN #lobby", "FROB x")
        self.assertEqual(client.lines(), [
            ":chat 451 * :You have not registered",
            ":chat 421 * FROB :Unknown command",
        ])

    def test_nick_in_use(self) -> None:
        """A nick a line user has gets 433 with the client as *; another nick then registers."""
        self.text_user("alice")
        client = self.irc_client()
        client.send("NICK alice", "USER alice 0 * :Alice")
        self.assertEqual(client.lines(), [":chat 433 * alice :alice is taken"])
        client.send("NICK alice2")
        self.assertIn(":chat 001 alice2 :Welcome to the chat IRC network, alice2", client.lines())

    def test_erroneous_nick(self) -> None:
        """A nick the chat refuses gets 432."""
        client = self.irc_client()
        client.send("NICK 9lives", "USER x 0 * :X")
        [reply] = client.lines()
        self.assertTrue(reply.startswith(":chat 432 * 9lives :"), reply)

    def test_need_more_params(self) -> None:
        """USER with too few parameters gets 461 naming the command."""
        client = self.irc_client()
        client.send("USER alice")
        self.assertEqual(client.lines(), [":chat 461 * USER :Not enough parameters"])

    def test_pass_logs_in(self) -> None:
        """PASS nick:password logs in (a local connection: the plaintext rule allows it); a wrong one gets 464."""
        self.successResultOf(self.server.accounts.create("carol", "password1", START))
        self.server.domain.account_created("carol", None)
        client = self.irc_client()
        client.send("PASS carol:wrong", "NICK carol", "USER carol 0 * :Carol")
        self.clock.advance(10)
        [refused] = client.lines()
        self.assertTrue(refused.startswith(":chat 464 * :"), refused)
        client = self.irc_client()
        client.send("PASS carol:password1", "NICK carol", "USER carol 0 * :Carol")
        self.assertIn(":chat 001 carol :Welcome to the chat IRC network, carol", client.lines())
        self.assertEqual(self.server.domain.users["carol"].account, "carol")

    def test_participant(self) -> None:
        """The IRC connection is an IParticipant of the server, with front end "irc"."""
        client = self.irc_user("alice")
        self.assertTrue(verifyObject(IParticipant, client.protocol))
        self.assertEqual((client.protocol.front_end, client.protocol.nick), ("irc", "alice"))
        self.assertIs(self.server.sessions[client.protocol].participant, client.protocol)

    def test_ping(self) -> None:
        """PING gets PONG with its token, registered or not."""
        client = self.irc_client()
        client.send("PING :abc")
        self.assertEqual(client.take(), b":chat PONG chat abc\r\n")


class ChannelTests(IRCTestCase):
    """
    An IRC user and a line user in the same rooms.
    """

    def test_join_and_talk(self) -> None:
        """An IRC user joins #lobby and exchanges messages with a line user; its own message is not echoed."""
        bob = self.text_user("bob")
        bob.take()
        alice = self.irc_user("alice")
        alice.send("JOIN #lobby")
        self.assertEqual(alice.lines(), [
            ":alice!alice@chat JOIN #lobby",
            ":chat 353 alice = #lobby :alice @bob",
            ":chat 366 alice #lobby :End of /NAMES list",
        ])
        self.assertIn(b"alice joined #lobby", self.seen(bob))
        alice.send("PRIVMSG #lobby :hello bob")
        self.assertEqual(alice.take(), b"")
        self.assertEqual(self.seen(bob), b"[14:02] #lobby <alice> hello bob\r\n")
        bob.line("hi alice")
        bob.take()
        self.assertEqual(alice.take(), b":bob!bob@chat PRIVMSG #lobby :hi alice\r\n")

    def test_say_to_named_room(self) -> None:
        """PRIVMSG to a channel that is not the IRC user's current room says it there, not in the current one."""
        bob = self.text_user("bob")
        bob.line("/join #a")
        bob.take()
        alice = self.irc_user("alice")
        alice.send("JOIN #a,#b")
        alice.take()
        self.seen(bob)
        alice.send("PRIVMSG #a :\x01ACTION waves\x01")
        self.assertEqual(self.seen(bob), b"[14:02] #a * alice waves\r\n")
        self.assertEqual([m.text for m in self.server.domain.rooms["#b"].history], [])

    def test_private(self) -> None:
        """PRIVMSG to a nick is a private message; one from a line user arrives as PRIVMSG to the IRC nick."""
        bob = self.text_user("bob")
        alice = self.irc_user("alice")
        bob.take()
        alice.send("PRIVMSG bob :psst")
        self.assertIn(b"[private alice -> bob] psst", self.seen(bob))
        bob.line("/msg alice back")
        self.assertEqual(alice.take(), b":bob!bob@chat PRIVMSG alice :back\r\n")

    def test_names_who_whois_list(self) -> None:
        """NAMES (353 with @ for operators, 366), WHO (352, 315), WHOIS (311 ... 318) and LIST (321-323)."""
        self.text_user("bob")
        alice = self.irc_user("alice")
        alice.send("JOIN #lobby")
        alice.take()
        alice.send("NAMES #lobby", "WHO #lobby", "WHOIS bob", "LIST")
        self.assertEqual(alice.lines(), [
            ":chat 353 alice = #lobby :alice @bob",
            ":chat 366 alice #lobby :End of /NAMES list",
            ":chat 352 alice #lobby alice chat chat alice H :0 alice",
            ":chat 352 alice #lobby bob chat chat bob H@ :0 bob",
            ":chat 315 alice #lobby :End of /WHO list",
            ":chat 311 alice bob bob chat * bob",
            ":chat 319 alice bob :@#lobby",
            ":chat 312 alice bob chat :chat 0.1.0",
            ":chat 317 alice bob 0 1763733723 :seconds idle, signon time",
            ":chat 318 alice bob :End of /WHOIS list",
            ":chat 321 alice Channel :Users  Name",
            ":chat 322 alice #lobby 2 :",
            ":chat 323 alice :End of /LIST",
        ])

    def test_part_topic_nick_quit(self) -> None:
        """PART, TOPIC, NICK and QUIT of an IRC user reach a line user, and other IRC users as IRC lines."""
        bob = self.text_user("bob")
        carol = self.irc_user("carol")
        carol.send("JOIN #lobby")
        alice = self.irc_user("alice")
        alice.send("JOIN #lobby,#x")
        carol.take()
        bob.take()
        alice.take()
        alice.send("TOPIC #lobby :news", "TOPIC #lobby", "PART #x :bye", "NICK alicia", "QUIT :gone")
        alice.protocol.connectionLost(None)  # as the transport does once closed
        self.assertEqual(carol.lines(), [
            ":alice!alice@chat TOPIC #lobby :news",
            ":alice!alice@chat NICK alicia",
            ":alicia!alicia@chat QUIT :Quit: gone",
        ])
        self.assertEqual(alice.lines(), [
            ":alice!alice@chat TOPIC #lobby :news",
            ":chat 332 alice #lobby news",
            ":alice!alice@chat PART #x :bye",
            ":alice!alice@chat NICK alicia",
            "ERROR :Closing Link: gone",
        ])
        self.assertIn(b"alicia quit (gone)", self.seen(bob))

    def test_away(self) -> None:
        """AWAY sets the status (306); AWAY alone clears it (305)."""
        alice = self.irc_user("alice")
        alice.send("AWAY :lunch", "AWAY")
        self.assertEqual(alice.lines(), [
            ":chat 306 alice :You have been marked as being away",
            ":chat 305 alice :You are no longer marked as being away",
        ])
        self.assertEqual(self.server.domain.users["alice"].status, "")

    def test_operator_mode(self) -> None:
        """An operator's /op of the IRC user is MODE +o; MODE #room +o by a member gets 482."""
        bob = self.text_user("bob")
        alice = self.irc_user("alice")
        alice.send("JOIN #lobby")
        alice.take()
        alice.send("MODE #lobby +o alice")
        self.assertEqual(alice.lines(), [":chat 482 alice #lobby :you are not an operator of #lobby"])
        bob.line("/op alice")
        self.assertEqual(alice.lines(), [":bob!bob@chat MODE #lobby +o alice"])


class CapabilityTests(IRCTestCase):
    """
    The IRCv3 capabilities an IRC user enables: server-time, echo-message,
    away-notify; and the user and real names of USER in WHOIS and WHO.
    """

    def cap_user(self, nick: str, caps: str) -> IRCClient:
        """An IRC user registered with C{caps} enabled, in #lobby."""
        client = self.irc_client()
        client.send("CAP LS 302", f"CAP REQ :{caps}", f"NICK {nick}", f"USER u{nick} 0 * :{nick} Real", "CAP END")
        self.assertIn(f":chat CAP * ACK :{caps}", client.lines())
        client.send("JOIN #lobby")
        client.take()
        return client

    def test_server_time(self) -> None:
        """With server-time a room message carries its time as a time= tag (RFC 3339, ms, UTC); without, none."""
        bob = self.text_user("bob")
        alice = self.cap_user("alice", "server-time")
        carol = self.cap_user("carol", "multi-prefix")
        alice.take()
        bob.line("hi")
        self.assertEqual(alice.take(), b"@time=2025-11-21T14:02:03.500Z :bob!bob@chat PRIVMSG #lobby :hi\r\n")
        self.assertEqual(carol.take(), b":bob!bob@chat PRIVMSG #lobby :hi\r\n")
        bob.line("/msg alice psst")
        self.assertEqual(alice.take(), b"@time=2025-11-21T14:02:03.500Z :bob!bob@chat PRIVMSG alice :psst\r\n")

    def test_server_time_rendered_once_per_set(self) -> None:
        """An event reaching two users with server-time is rendered once with the tag and shared."""
        alice, carol = self.cap_user("alice", "server-time"), self.cap_user("carol", "server-time")
        alice.take()
        when = datetime(2025, 11, 21, 14, 2, 3, 456789, tzinfo=timezone.utc)
        outgoing = Outgoing(events.Message(1, when, "#a", "bob", "hi"))
        alice.protocol.deliver(outgoing)
        carol.protocol.deliver(outgoing)
        self.assertEqual(list(outgoing), [self.irc.renderer_for(frozenset({"server-time"}))])
        expected = b"@time=2025-11-21T14:02:03.456Z :bob!bob@chat PRIVMSG #a :hi\r\n"
        self.assertEqual((alice.take(), carol.take()), (expected, expected))

    def test_echo_message(self) -> None:
        """With echo-message the sender gets its own channel and private messages back; without, not."""
        self.text_user("bob")
        alice = self.cap_user("alice", "echo-message")
        carol = self.cap_user("carol", "multi-prefix")
        alice.take()
        alice.send("PRIVMSG #lobby :hello", "PRIVMSG bob :psst")
        self.assertEqual(alice.lines(), [
            ":alice!alice@chat PRIVMSG #lobby :hello",
            ":alice!alice@chat PRIVMSG bob :psst",
        ])
        carol.take()
        carol.send("PRIVMSG #lobby :hey", "PRIVMSG bob :psst")
        self.assertEqual(carol.take(), b"")
        self.assertEqual(alice.lines(), [":carol!carol@chat PRIVMSG #lobby :hey"])

    def test_away_notify(self) -> None:
        """With away-notify a member's status change is AWAY from them; without, nothing."""
        bob = self.text_user("bob")
        alice = self.cap_user("alice", "away-notify")
        carol = self.cap_user("carol", "multi-prefix")
        alice.take()
        bob.line("/status lunch")
        bob.line("/status")
        self.assertEqual(alice.lines(), [":bob!bob@chat AWAY :lunch", ":bob!bob@chat AWAY"])
        self.assertEqual(carol.take(), b"")

    def test_user_names_in_whois_and_who(self) -> None:
        """USER's user and real names are in WHOIS (311) and WHO (352); a line user's are its nick."""
        self.text_user("bob")
        alice = self.cap_user("alice", "multi-prefix")
        carol = self.cap_user("carol", "multi-prefix")
        alice.take()
        carol.send("WHOIS alice", "WHO #lobby")
        replies = carol.lines()
        self.assertIn(":chat 311 carol alice ualice chat * :alice Real", replies)
        self.assertIn(":chat 352 carol #lobby ualice chat chat alice H :0 alice Real", replies)
        self.assertIn(":chat 352 carol #lobby bob chat chat bob H@ :0 bob", replies)

    def test_userhost_in_names(self) -> None:
        """With userhost-in-names, 353 gives nick!user@chat for each member, the @ before it."""
        self.text_user("bob")
        alice = self.cap_user("alice", "userhost-in-names")
        alice.send("NAMES #lobby")
        self.assertEqual(alice.lines()[0], ":chat 353 alice = #lobby :alice!ualice@chat @bob!bob@chat")


class ModerationTests(IRCTestCase):
    """
    KICK and INVITE, mapped to /kick and /invite.
    """

    def test_kick(self) -> None:
        """KICK by an operator removes the user (all see KICK with the reason); by a member it gets 482."""
        bob = self.text_user("bob")
        alice, carol = self.in_channel("#lobby", "alice", "carol")
        alice.send("KICK #lobby carol :go")
        self.assertEqual(alice.lines(), [":chat 482 alice #lobby :you are not an operator of #lobby"])
        bob.line("/op alice")
        alice.take()
        carol.take()
        alice.send("KICK #lobby carol :go away")
        self.assertEqual(alice.lines(), [":alice!alice@chat KICK #lobby carol :go away"])
        self.assertEqual(carol.lines(), [":alice!alice@chat KICK #lobby carol :go away"])
        self.assertNotIn("#lobby", self.server.domain.users["carol"].rooms)

    def test_invite(self) -> None:
        """INVITE nick #room by an operator gets 341 and lets the user into an invite-only room."""
        alice = self.irc_user("alice")
        carol = self.irc_user("carol")
        alice.send("JOIN #club", "MODE #club +i")
        alice.take()
        carol.send("JOIN #club")
        [refused] = carol.lines()
        self.assertTrue(refused.startswith(":chat 473 carol #club :"), refused)
        alice.send("INVITE carol #club")
        self.assertEqual(alice.lines(), [":chat 341 alice carol #club"])
        self.assertEqual(carol.lines(), [":alice!alice@chat INVITE carol #club"])
        carol.send("JOIN #club")
        self.assertEqual(carol.lines()[0], ":carol!carol@chat JOIN #club")
        alice.take()
        alice.send("INVITE zed #club")
        self.assertEqual(alice.lines(), [":chat 401 alice zed :zed is not connected"])


class NumericTests(IRCTestCase):
    """
    Refusals as IRC numerics (chat/irc/numerics.py).
    """

    def refusals(self, *lines: str) -> list[str]:
        alice = self.irc_user("alice")
        alice.send(*lines)
        return alice.lines()

    def test_no_such_nick(self) -> None:
        """PRIVMSG and WHOIS of a nick nobody has get 401 (WHOIS then 318)."""
        self.assertEqual(self.refusals("PRIVMSG zed :hi", "WHOIS zed"), [
            ":chat 401 alice zed :zed is not connected",
            ":chat 401 alice zed :zed is not connected",
            ":chat 318 alice zed :End of /WHOIS list",
        ])

    def test_no_such_channel(self) -> None:
        """PART of a room that does not exist, and JOIN of a bad name, get 403."""
        [part, join] = self.refusals("PART #nope", "JOIN #bad!name")
        self.assertEqual(part, ":chat 403 alice #nope :#nope does not exist")
        self.assertTrue(join.startswith(":chat 403 alice #bad!name :"), join)

    def test_not_on_channel(self) -> None:
        """PART of a room the user is not in gets 442, PRIVMSG to it 404 (+n)."""
        self.text_user("bob")
        self.assertEqual(self.refusals("PART #lobby", "PRIVMSG #lobby :hi"), [
            ":chat 442 alice #lobby :you are not in #lobby",
            ":chat 404 alice #lobby :you are not in #lobby",
        ])

    def test_notice_never_answered(self) -> None:
        """A NOTICE that is refused gets no reply (RFC 2812 section 3.3.2)."""
        self.assertEqual(self.refusals("NOTICE zed :hi", "NOTICE #nope :hi"), [])

    def test_time(self) -> None:
        """TIME gets 391 with the server's clock in UTC."""
        self.assertEqual(self.refusals("TIME"), [":chat 391 alice chat :2025-11-21T14:02:03Z"])

    def test_no_text_to_send(self) -> None:
        """PRIVMSG without text or with empty text gets 412, without a target 411; a NOTICE gets nothing."""
        self.assertEqual(self.refusals("PRIVMSG bob", "PRIVMSG bob :", "PRIVMSG", "NOTICE bob :"), [
            ":chat 412 alice :No text to send",
            ":chat 412 alice :No text to send",
            ":chat 411 alice :No recipient given (PRIVMSG)",
        ])

    def test_names_of_no_channel(self) -> None:
        """NAMES of a channel that does not exist gets 366 alone."""
        self.assertEqual(self.refusals("NAMES #nope"), [":chat 366 alice #nope :End of /NAMES list"])

    def test_banned_and_invite_only(self) -> None:
        """JOIN of a room the user is banned from gets 474; of an invite-only room 473; a moderated one 404."""
        bob = self.text_user("bob")
        bob.line("/join #club")
        bob.line("/room #club invite-only on")
        bob.line("/join #mod")
        bob.line("/room #mod moderated on")
        alice = self.irc_user("alice")
        bob.line("/ban alice #lobby")
        bob.take()
        alice.take()
        alice.send("JOIN #club", "JOIN #lobby")
        [invite, banned] = alice.lines()
        self.assertTrue(invite.startswith(":chat 473 alice #club :"), invite)
        self.assertTrue(banned.startswith(":chat 474 alice #lobby :"), banned)
        bob.line("/invite alice #mod")
        alice.send("JOIN #mod")
        alice.take()
        alice.send("PRIVMSG #mod :hi")
        [muted] = alice.lines()
        self.assertTrue(muted.startswith(":chat 404 alice #mod :"), muted)

    def test_error_map(self) -> None:
        """Every mapped wire code is one of chat.errors' codes."""
        codes = {
            cls.code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.ChatError)
        }
        self.assertLessEqual(set(numerics.ERRORS), codes)


class LimitTests(IRCTestCase):
    """
    IRC's line limit with the framing of the line front end.
    """

    def test_input_too_long(self) -> None:
        """A message over 510 bytes gets 417 and the session goes on; one of 510 bytes is taken."""
        bob = self.text_user("bob")
        alice = self.irc_user("alice")
        alice.send("JOIN #lobby")
        alice.take()
        bob.take()
        prefix = "PRIVMSG #lobby :"
        alice.send(prefix + "x" * (LINE_MAX + 1 - len(prefix)), prefix + "y" * (LINE_MAX - len(prefix)), "PING :t")
        self.assertEqual(alice.lines(), [":chat 417 alice :Input line was too long", ":chat PONG chat t"])
        self.assertIn(b"y" * (LINE_MAX - len(prefix)), self.seen(bob))

    def test_too_long_for_the_framing(self) -> None:
        """A line longer than tags and message together, in pieces, gets 417 once and its tail is not run."""
        alice = self.irc_user("alice")
        data = b"PRIVMSG #lobby :" + b"z" * 6000 + b" PING :no\r\nPING :yes\r\n"
        for piece in chunked(data, 1000):
            alice.protocol.dataReceived(piece)
        self.assertEqual(alice.lines(), [":chat 417 alice :a line is at most 4606 bytes", ":chat PONG chat yes"])

    def test_tags_ignored(self) -> None:
        """A client's tag section is set aside: the message after it runs."""
        alice = self.irc_user("alice")
        alice.send("@label=1;+draft/x=y PING :t")
        self.assertEqual(alice.lines(), [":chat PONG chat t"])


class RenderTests(SynchronousTestCase):
    """
    The shared IRC renderer and what the participant renders alone.
    """

    ts = datetime(2025, 11, 21, 14, 2, 3, tzinfo=timezone.utc)

    def test_line(self) -> None:
        """The last parameter is trailing when text, empty, spaced or starting with a colon."""
        self.assertEqual(line("s", "X", "a", "b"), b":s X a b\r\n")
        self.assertEqual(line("s", "X", "a", "b", text=True), b":s X a :b\r\n")
        self.assertEqual(line("", "X", ":b"), b"X ::b\r\n")
        self.assertEqual(line("", "X", ""), b"X :\r\n")

    def test_shared_events(self) -> None:
        """Kick, role, settings and action lines are the same bytes for every IRC recipient."""
        self.assertEqual(
            render(events.Kicked(self.ts, "#a", "bob", "carol", "spam"), "srv"),
            b":carol!carol@chat KICK #a bob :spam\r\n",
        )
        self.assertEqual(render(events.RoleChanged("#a", "bob", events.MEMBER, "carol"), "srv"),
                         b":carol!carol@chat MODE #a -o bob\r\n")
        self.assertEqual(render(events.RoomSettings("#a", invite_only=True), "srv"), b":srv MODE #a +i-tm\r\n")
        self.assertEqual(modes(events.RoomSettings("#a")), "-itm")
        self.assertEqual(
            render(events.Message(1, self.ts, "#a", "bob", "waves", action=True), "srv"),
            b":bob!bob@chat PRIVMSG #a :\x01ACTION waves\x01\r\n",
        )
        self.assertEqual(render(events.Info("x"), "srv"), b"")

    def test_server_time_renderer(self) -> None:
        """The server-time renderer tags an event with its ts, one without ts with the clock's time (ms, UTC)."""
        timed = renderer("srv", frozenset({"server-time"}), lambda: START)
        self.assertEqual(
            timed(events.Kicked(self.ts, "#a", "bob", "carol", "spam")),
            b"@time=2025-11-21T14:02:03.000Z :carol!carol@chat KICK #a bob :spam\r\n",
        )
        self.assertEqual(
            timed(events.RoomSettings("#a", moderated=True)), b"@time=2025-11-21T14:02:03.500Z :srv MODE #a +m-it\r\n"
        )
        self.assertEqual(timed(events.Info("x")), b"")
        self.assertEqual(renderer("srv")(events.StatusChanged("bob", "")), b":bob!bob@chat AWAY\r\n")


class DeliveryTests(IRCTestCase):
    """
    Events delivered to IRC participants.
    """

    def test_rendered_once(self) -> None:
        """A room message reaching two IRC users is rendered once, and both get the same bytes."""
        alice, carol = self.irc_user("alice"), self.irc_user("carol")
        outgoing = Outgoing(events.Message(1, datetime(2025, 11, 21, tzinfo=timezone.utc), "#a", "bob", "hi"))
        alice.protocol.deliver(outgoing)
        carol.protocol.deliver(outgoing)
        self.assertEqual(list(outgoing), [self.irc.renderer])
        self.assertEqual(alice.take(), b":bob!bob@chat PRIVMSG #a :hi\r\n")
        self.assertEqual(carol.take(), b":bob!bob@chat PRIVMSG #a :hi\r\n")

    def test_encrypted_private(self) -> None:
        """An end-to-end encrypted private message is never shown as text: a NOTICE says one arrived."""
        alice = self.irc_user("alice")
        alice.protocol.deliver(Outgoing(events.Private(
            2, datetime(2025, 11, 21, tzinfo=timezone.utc), "bob", "alice", "", e2e="ZW52ZWxvcGU",
        )))
        self.assertEqual(alice.lines(), [
            ":bob!bob@chat NOTICE alice :sent you an end-to-end encrypted message, which IRC cannot show: "
            "read it with a chat client",
        ])

    def test_join_topic_before_names(self) -> None:
        """Joining a channel with a topic gives JOIN, 332, 353, 366 in that order (Modern IRC)."""
        bob = self.text_user("bob")
        bob.line("/topic #lobby weekly chat")
        alice = self.irc_user("alice")
        alice.send("JOIN #lobby")
        self.assertEqual(alice.lines(), [
            ":alice!alice@chat JOIN #lobby",
            ":chat 332 alice #lobby :weekly chat",
            ":chat 353 alice = #lobby :alice @bob",
            ":chat 366 alice #lobby :End of /NAMES list",
        ])

    def test_file_offer(self) -> None:
        """A file offer is a NOTICE with the way to fetch it."""
        alice = self.irc_user("alice")
        alice.protocol.deliver(Outgoing(events.FileOffer(
            7, "bob", "alice", "a.txt", 12, "0" * 64, datetime(2025, 11, 22, tzinfo=timezone.utc),
        )))
        [notice] = alice.lines()
        self.assertTrue(notice.startswith(":chat NOTICE alice :bob offers a file to alice: a.txt (12 bytes), id 7;"))
        self.assertIn("/download 7", notice)

    def test_file_offer_link(self) -> None:
        """With a web listener, the offer NOTICE carries the HTTP link with the session's token, at the host reached."""
        alice = self.irc_user("alice")
        alice.protocol.token = "tok"
        self.server.web_listening(IPv4Address("TCP", "0.0.0.0", 8080), secure=False)
        self.server.web_listening(IPv4Address("TCP", "0.0.0.0", 8443), secure=True)
        alice.protocol.deliver(Outgoing(events.FileOffer(
            7, "bob", "alice", "a.txt", 12, "0" * 64, datetime(2025, 11, 22, tzinfo=timezone.utc),
        )))
        host = alice.transport.getHost().host
        self.assertEqual(alice.lines(), [
            f":chat NOTICE alice :bob offers a file to alice: a.txt (12 bytes), id 7; download it from "
            f"http://{host}:8080/files/7?token=tok",
        ])

    def test_file_link(self) -> None:
        """The link is under the first --web-origin when given, bracketed for IPv6, and absent without token or web."""
        self.assertEqual(self.server.file_link(3, "tok", "::1"), "")
        self.server.web_listening(IPv4Address("TCP", "0.0.0.0", 8443), secure=True)
        self.assertEqual(self.server.file_link(3, "tok", "::1"), "https://[::1]:8443/files/3?token=tok")
        self.assertEqual(self.server.file_link(3, "", "::1"), "")
        self.server.settings = dataclasses.replace(self.server.settings, web_origins=("https://chat.example.org/",))
        self.assertEqual(self.server.file_link(3, "tok", "::1"), "https://chat.example.org/files/3?token=tok")


class OptionTests(SynchronousTestCase):
    """
    The C{--irc} option.
    """

    def test_repeatable(self) -> None:
        """--irc may be given several times."""
        options = Options()
        options.parseOptions(["--irc", "tcp:6667", "--irc", "tcp:6668"])
        self.assertEqual(options["irc"], ["tcp:6667", "tcp:6668"])

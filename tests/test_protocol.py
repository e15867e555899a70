"""
Tests for L{chat.protocol}: L{ChatProtocol} and L{ChatFactory} over
L{StringTransport}, with time from a L{Clock}: connecting, registration,
the commands, fan-out of rendered events and graceful shutdown (PROTOCOL.md
sections 2 to 5). Input framing and hygiene are tested in
C{test_protocol_input}, the limits in C{test_protocol_limits}.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs

import chat
from chat import events
from chat import logs as chat_logs
from chat import protocol as chat_protocol
from chat.render import Renderer, render_json, render_text
from chat.settings import Settings
from tests.support import (
    TS,
    WELCOME_JSON,
    WELCOME_TEXT,
    ProtocolTestCase,
    RecordingTransport,
    decode_json,
    error_text,
    registered_text,
)


class ConnectTests(ProtocolTestCase):
    """
    Connecting: welcome, format switches, socket options, peer address.
    """

    def test_welcome_text(self) -> None:
        """
        A new connection is sent the text welcome with a nickname prompt.
        """
        client = self.connect()
        self.assertEqual(client.take(), WELCOME_TEXT)
        self.assertFalse(client.transport.disconnecting)

    def test_welcome_motd(self) -> None:
        """
        Each line of the message of the day is a line of the text welcome.
        """
        _, factory = self.make_factory(Settings(motd="Be nice.\nNo spam."))
        client = self.connect(factory=factory)
        self.assertEqual(
            client.take(),
            f"*** Welcome to chat (chat {chat.__version__}). Times are UTC.\r\n"
            "*** Be nice.\r\n*** No spam.\r\n"
            "*** Choose a nickname (letters, digits, _ or -), or /help:\r\n".encode(),
        )

    def test_format_json_welcome(self) -> None:
        """
        C{/format json} is answered by the welcome as one JSON object with the limits.
        """
        client = self.connect()
        client.take()
        client.line("/format json")
        self.assertEqual(client.take_json(), [WELCOME_JSON])

    def test_format_json_limits_follow_settings(self) -> None:
        """
        The JSON welcome announces the configured line and file limits.
        """
        _, factory = self.make_factory(Settings(max_line=512, max_file=1000, server_name="hub"))
        client = self.connect(factory=factory)
        client.take()
        client.line("/format JSON")
        self.assertEqual(
            client.take_json(),
            [{**WELCOME_JSON, "server": "hub", "limits": {"line": 512, "nick": 24, "file": 1000}}],
        )

    def test_format_text_again(self) -> None:
        """
        C{/format text} after registration answers the text welcome without a nickname prompt.
        """
        client = self.json_user("alice")
        client.line("/format text")
        self.assertEqual(
            client.take(), f"*** Welcome to chat (chat {chat.__version__}). Times are UTC.\r\n".encode()
        )
        client.line("/ping")
        self.assertEqual(client.take(), b"*** pong\r\n")

    def test_format_bad_argument(self) -> None:
        """
        C{/format} with an unknown format is C{bad-arguments} with the usage.
        """
        client = self.connect()
        client.take()
        client.line("/format xml")
        self.assertEqual(client.take(), error_text("bad-arguments", "usage: /format text|json"))

    def test_tcp_nodelay(self) -> None:
        """
        Every connection asks its transport for C{TCP_NODELAY} when it is made.
        """
        client = self.connect()
        self.assertEqual(client.transport.no_delay, [True])

    def test_no_nodelay_on_plain_transport(self) -> None:
        """
        A transport without C{setTcpNoDelay} (not TCP) is still served.
        """
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), WELCOME_TEXT)

    def test_peer_from_transport(self) -> None:
        """
        The peer logged for a connection is the transport's C{getPeer()}.
        """
        transport = RecordingTransport(IPv4Address("TCP", "203.0.113.9", 40404))
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "192.0.2.1", 1))
        with capturedLogs() as logged:
            protocol.makeConnection(transport)
        self.assertIn("203.0.113.9:40404", [e.get("peer") for e in logged])
        self.assertNotIn("192.0.2.1:1", [e.get("peer") for e in logged])

    def test_connection_lines_only_when_debugging(self) -> None:
        """
        With logs.debugging false (--log-level above debug) a connection that registers and goes
        emits no log event at all; with it true, its connect, register, quit and disconnect lines.
        """
        expected_lines = ["connection from", "registered as", "quit", "disconnected"]
        for debugging, expected in ((False, []), (True, expected_lines)):
            self.patch(chat_logs, "debugging", debugging)
            with capturedLogs() as logged:
                self.text_user(f"user{int(debugging)}").lose()
            formats = [str(e.get("log_format", "")) for e in logged]
            self.assertEqual([part for part in expected if any(part in f for f in formats)], expected)
            self.assertEqual(len(formats), len(expected))

    def test_message_text_not_logged(self) -> None:
        """
        The log records registrations but never the text of a message.
        """
        with capturedLogs() as logged:
            client = self.text_user("alice")
            client.line("my secret words")
            client.line("/msg alice more secret words")
        self.assertIn("alice", [e.get("nick") for e in logged])
        for event in logged:
            self.assertNotIn("secret", repr(event))


class RegistrationTests(ProtocolTestCase):
    """
    PROTOCOL.md section 3: nicks and what works before one is chosen.
    """

    def test_bare_first_line_text(self) -> None:
        """
        In text, a bare first line is the nick: registered, then the lobby join.
        """
        client = self.connect()
        client.take()
        client.line("alice")
        self.assertEqual(client.take(), registered_text("alice"))

    def test_bare_first_line_stripped(self) -> None:
        """
        Spaces around a nick given as a bare first line are ignored.
        """
        client = self.connect()
        client.take()
        client.line("  alice \t")
        self.assertEqual(client.take(), registered_text("alice"))

    def test_empty_lines_before_registration_ignored(self) -> None:
        """
        Empty lines before the nick are ignored silently.
        """
        client = self.connect()
        client.take()
        client.send(b"\n\r\n   \n")
        self.assertEqual(client.take(), b"")
        client.line("alice")
        self.assertEqual(client.take(), registered_text("alice"))

    def test_nick_command_json(self) -> None:
        """
        In json, C{/nick} registers: C{registered}, C{join}, C{role} (the first in #lobby), C{users}, C{history}.
        """
        client = self.connect()
        client.line("/format json")
        client.take()
        client.line("/nick alice")
        self.assertEqual(
            client.take_json(),
            [
                {"type": "registered", "nick": "alice", "account": False},
                {"type": "join", "ts": TS, "room": "#lobby", "nick": "alice"},
                {"type": "role", "room": "#lobby", "nick": "alice", "role": "operator", "by": ""},
                {"type": "users", "room": "#lobby", "count": 1,
                 "users": [{"nick": "alice", "status": "", "idle": 0, "role": "operator"}]},
                {"type": "history", "room": "#lobby", "messages": []},
            ],
        )

    def test_bare_line_json_not_registered(self) -> None:
        """
        In json, a bare line before registration is C{not-registered}, not a nick.
        """
        client = self.connect()
        client.line("/format json")
        client.take()
        client.line("alice")
        self.assertEqual(
            client.take_json(),
            [{"type": "error", "code": "not-registered", "message": "choose a nick first: /nick NAME"}],
        )
        self.assertNotIn("alice", self.server.domain.users)

    def test_commands_before_registration(self) -> None:
        """
        Commands other than help, format, starttls, ping, nick, login and quit
        are refused with C{not-registered} before registration.
        """
        client = self.connect()
        client.take()
        for line, name in [
            ("/join #dev", "join"), ("/msg bob hi", "msg"), ("/me waves", "me"),
            ("/list", "list"), ("/users", "list"), ("/whois bob", "whois"),
            ("/status away", "status"), ("/away", "status"), ("/topic", "topic"),
            ("/history", "history"), ("/rooms", "rooms"), ("/part", "part"),
        ]:
            client.line(line)
            self.assertEqual(
                client.take(), error_text("not-registered", f"choose a nick before /{name}: /nick NAME"), line
            )
        self.assertEqual(self.server.domain.users, {})

    def test_allowed_before_registration(self) -> None:
        """
        C{/ping}, C{/help} and C{/starttls} are answered before registration.
        """
        client = self.connect()
        client.take()
        client.line("/ping abc")
        self.assertEqual(client.take(), b"*** pong abc\r\n")
        client.line("/help nick")
        self.assertEqual(client.take(), b"*** /nick NEW [--no-join]: picks your nick (and joins #lobby, unless --no-join), or changes it\r\n")
        client.line("/starttls")
        self.assertEqual(
            client.take(), error_text("tls-unavailable", "this server has no TLS certificate configured")
        )

    def test_nick_invalid(self) -> None:
        """
        Nicks breaking the rules are C{nick-invalid}, and the connection can try again.
        """
        client = self.connect()
        client.take()
        message = "a nick is 1 to 24 characters: a letter, then letters, digits, _ or -"
        for nick in ["1abc", "_x", "a" * 25, "al.ice", "älice", "al/ice"]:
            client.line(nick)
            self.assertEqual(client.take(), error_text("nick-invalid", message), nick)
        client.line("/nick -x")
        self.assertEqual(client.take(), error_text("nick-invalid", message))
        client.line("a" * 24)
        self.assertEqual(client.take(), registered_text("a" * 24))

    def test_nick_with_space(self) -> None:
        """
        C{/nick} with two words is C{bad-arguments} with the usage.
        """
        client = self.connect()
        client.take()
        client.line("/nick al ice")
        self.assertEqual(client.take(), error_text("bad-arguments", "usage: /nick NEW [--no-join]"))
        client.line("/nick")
        self.assertEqual(client.take(), error_text("bad-arguments", "usage: /nick NEW [--no-join]"))

    def test_nick_taken_ignoring_case(self) -> None:
        """
        A nick already in use in any letter case is C{nick-taken}.
        """
        self.text_user("alice")
        client = self.connect()
        client.take()
        client.line("ALICE")
        self.assertEqual(client.take(), error_text("nick-taken", "ALICE is taken"))
        client.line("/nick Alice")
        self.assertEqual(client.take(), error_text("nick-taken", "Alice is taken"))
        client.line("bob")
        self.assertEqual(client.take(), registered_text("bob", ("alice",)))

    def test_nick_freed_on_disconnect(self) -> None:
        """
        The nick of a closed connection can be taken by another.
        """
        alice = self.text_user("alice")
        alice.lose()
        client = self.connect()
        client.take()
        client.line("Alice")
        self.assertEqual(client.take(), registered_text("Alice"))

    def test_nick_change(self) -> None:
        """
        C{/nick} after registration renames: C{nick} to the user and everyone sharing a room.
        """
        alice = self.text_user("alice")
        bob = self.json_user("bob")
        alice.take()
        alice.line("/nick Alicia")
        self.assertEqual(alice.take(), b"[14:02] * alice is now known as Alicia\r\n")
        self.assertEqual(bob.take_json(), [{"type": "nick", "ts": TS, "old": "alice", "new": "Alicia"}])
        alice.line("/nick BOB")
        self.assertEqual(alice.take(), error_text("nick-taken", "BOB is taken"))
        bob.line("hi")
        self.assertEqual(alice.take(), b"[14:02] #lobby <bob> hi\r\n")


class CommandTests(ProtocolTestCase):
    """
    PROTOCOL.md section 4: the commands, in text and json.
    """

    def setUp(self) -> None:
        super().setUp()
        self.alice = self.text_user("alice")
        self.bob = self.text_user("bob")
        self.alice.take()

    def test_message_to_room(self) -> None:
        """
        A plain line goes to everyone in the current room, the sender included.
        """
        self.alice.line("hello all")
        line = b"[14:02] #lobby <alice> hello all\r\n"
        self.assertEqual(self.alice.take(), line)
        self.assertEqual(self.bob.take(), line)

    def test_message_json(self) -> None:
        """
        A json member gets the message as a C{message} object with id and time.
        """
        carol = self.json_user("carol")
        self.alice.line("hello")
        self.alice.line("again")
        first, second = carol.take_json()
        self.assertEqual(
            first,
            {"type": "message", "id": first["id"], "ts": TS, "room": "#lobby",
             "from": "alice", "text": "hello", "action": False},
        )
        self.assertIsInstance(first["id"], int)
        self.assertGreater(second["id"], first["id"])

    def test_literal_slash(self) -> None:
        """
        C{//} at the start sends a line starting with one C{/}.
        """
        self.alice.line("//quit is a command")
        self.assertEqual(self.bob.take(), b"[14:02] #lobby <alice> /quit is a command\r\n")
        self.assertFalse(self.alice.transport.disconnecting)

    def test_me(self) -> None:
        """
        C{/me} sends an action; without text it is C{bad-arguments}.
        """
        self.alice.line("/me waves")
        self.assertEqual(self.bob.take(), b"[14:02] #lobby * alice waves\r\n")
        self.alice.take()
        self.alice.line("/me")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "usage: /me TEXT"))

    def test_msg(self) -> None:
        """
        C{/msg} reaches only the recipient, with an echo to the sender.
        """
        carol = self.text_user("carol")
        self.bob.take()
        self.alice.take()
        self.alice.line("/msg BOB psst, hi")
        line = b"[14:02] [private alice -> bob] psst, hi\r\n"
        self.assertEqual(self.bob.take(), line)
        self.assertEqual(self.alice.take(), line)
        self.assertEqual(carol.take(), b"")

    def test_msg_json(self) -> None:
        """
        In json a private message is a C{private} object.
        """
        carol = self.json_user("carol")
        self.alice.line("/msg carol hi there")
        [private] = carol.take_json()
        self.assertEqual(
            private,
            {"type": "private", "id": private["id"], "ts": TS, "from": "alice", "to": "carol",
             "text": "hi there", "action": False, "offline": False},
        )

    def test_msg_errors(self) -> None:
        """
        C{/msg} to nobody is C{no-such-nick}; without text C{bad-arguments}.
        """
        self.alice.line("/msg nobody hi")
        self.assertEqual(self.alice.take(), error_text("no-such-nick", "nobody is not connected"))
        self.alice.line("/msg bob")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "usage: /msg NICK TEXT"))
        self.alice.line("/msg")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "usage: /msg NICK TEXT"))
        self.assertEqual(self.bob.take(), b"")

    def test_join_and_current_room(self) -> None:
        """
        C{/join} joins and makes the room current: plain lines then go there.
        """
        self.alice.line("/join #dev")
        self.assertEqual(
            self.alice.take(),
            b"[14:02] * alice joined #dev\r\n* alice is an operator of #dev\r\n"
            b"* 1 user in #dev:\r\n*   @alice (idle 0s)\r\n"
        )
        self.assertEqual(self.bob.take(), b"")
        self.bob.line("/join #DEV")
        self.assertEqual(self.alice.take(), b"[14:02] * bob joined #dev\r\n")
        self.bob.take()
        self.alice.line("in dev")
        self.assertEqual(self.bob.take(), b"[14:02] #dev <alice> in dev\r\n")
        self.assertEqual(self.alice.take(), b"[14:02] #dev <alice> in dev\r\n")
        self.alice.line("/join #lobby")
        self.assertEqual(self.alice.take(), b"*** #lobby is now your current room\r\n")
        self.alice.line("back")
        self.assertEqual(self.alice.take(), b"[14:02] #lobby <alice> back\r\n")

    def test_join_bad_arguments(self) -> None:
        """
        C{/join} without a room, or with a bad name, is C{bad-arguments}.
        """
        self.alice.line("/join")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "usage: /join #ROOM"))
        self.alice.line("/join #a b")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "usage: /join #ROOM"))
        self.alice.line("/join #bad!name")
        self.assertEqual(
            self.alice.take(),
            error_text("bad-arguments", "a room name is # and 1 to 32 letters, digits, _ or -"),
        )

    def test_part(self) -> None:
        """
        C{/part} leaves the current room with C{part} to everyone in it.
        """
        self.alice.line("/join #dev")
        self.bob.line("/join #dev")
        self.alice.take()
        self.bob.take()
        self.alice.line("/part see you")
        line = b"[14:02] * alice left #dev (see you)\r\n"
        self.assertEqual(self.alice.take(), line)
        self.assertEqual(self.bob.take(), line)
        self.alice.line("still lobby")
        self.assertEqual(self.alice.take(), b"[14:02] #lobby <alice> still lobby\r\n")

    def test_part_errors(self) -> None:
        """
        C{/part} of an unknown room is C{no-such-room}, of a room not joined C{not-in-room}.
        """
        self.alice.line("/part #nope")
        self.assertEqual(self.alice.take(), error_text("no-such-room", "#nope does not exist"))
        self.bob.line("/join #dev")
        self.alice.line("/part #dev")
        self.assertEqual(self.alice.take(), error_text("not-in-room", "you are not in #dev"))
        self.alice.line("/part")
        self.alice.take()
        self.alice.line("alone")
        self.assertEqual(
            self.alice.take(), error_text("not-in-room", "you are in no room: /join #ROOM first")
        )

    def test_topic(self) -> None:
        """
        C{/topic TEXT} sets the topic for the room; C{/topic} shows it.
        """
        self.alice.line("/topic Release on Friday")
        line = b"* Topic of #lobby: Release on Friday (set by alice)\r\n"
        self.assertEqual(self.alice.take(), line)
        self.assertEqual(self.bob.take(), line)
        self.bob.line("/topic")
        self.assertEqual(self.bob.take(), line)
        self.bob.line("/topic #lobby")
        self.assertEqual(self.bob.take(), line)
        self.bob.line("/topic #dev")
        self.assertEqual(self.bob.take(), error_text("no-such-room", "#dev does not exist"))

    def test_topic_json_and_join(self) -> None:
        """
        A newcomer to a room with a topic is told it as a C{topic} object.
        """
        self.alice.line("/topic #lobby news")
        carol = self.connect()
        carol.line("/format json")
        carol.take()
        carol.line("/nick carol")
        self.assertIn({"type": "topic", "room": "#lobby", "text": "news", "by": "alice"}, carol.take_json())

    def test_status(self) -> None:
        """
        C{/status} sets and clears the status for everyone sharing a room; C{/away} is an alias.
        """
        self.alice.line("/status out for lunch")
        self.assertEqual(self.bob.take(), b"* alice set status: out for lunch\r\n")
        self.alice.line("/away")
        self.assertEqual(self.bob.take(), b"* alice cleared their status\r\n")
        self.alice.line("/away brb")
        self.assertEqual(self.bob.take(), b"* alice set status: brb\r\n")
        self.assertEqual(
            self.alice.take(),
            b"* alice set status: out for lunch\r\n* alice cleared their status\r\n"
            b"* alice set status: brb\r\n",
        )
        self.bob.line("/list")
        self.assertEqual(
            self.bob.take(), b"* 2 users in #lobby:\r\n*   @alice (idle 0s) - brb\r\n*   bob (idle 0s)\r\n"
        )

    def test_list(self) -> None:
        """
        C{/list} (alias C{/users}) lists a room's users with idle times, sorted by nick.
        """
        self.bob.line("hi")
        self.clock.advance(125)
        self.alice.line("/list")
        expected = b"* 2 users in #lobby:\r\n*   @alice (idle 2m)\r\n*   bob (idle 2m)\r\n"  # alice: first in #lobby
        self.assertEqual(self.alice.take()[-len(expected):], expected)
        self.alice.line("/users #lobby")
        self.assertEqual(self.alice.take(), expected)
        self.alice.line("/list #none")
        self.assertEqual(self.alice.take(), error_text("no-such-room", "#none does not exist"))
        self.alice.line("/list a b")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "usage: /list [#ROOM]"))

    def test_list_json(self) -> None:
        """
        In json C{/list} is a C{users} object with the count.
        """
        carol = self.json_user("carol")
        carol.line("/status away")
        carol.take()
        self.clock.advance(3)
        carol.line("/list")
        self.assertEqual(
            carol.take_json(),
            [{"type": "users", "room": "#lobby", "count": 3, "users": [
                {"nick": "alice", "status": "", "idle": 3, "role": "operator"},
                {"nick": "bob", "status": "", "idle": 3, "role": "member"},
                {"nick": "carol", "status": "away", "idle": 3, "role": "member"},
            ]}],
        )

    def test_whois(self) -> None:
        """
        C{/whois} tells nick, status, rooms, since, idle, guest and encryption.
        """
        self.bob.line("/join #dev")
        self.bob.line("/status busy")
        self.clock.advance(4000)
        self.alice.take()
        self.alice.line("/whois BOB")
        self.assertEqual(
            self.alice.take(),
            b"* bob - busy\r\n*   rooms: #lobby #dev\r\n"
            b"*   connected since 2025-11-21 14:02 UTC, idle 1h06m\r\n*   guest, not encrypted\r\n",
        )
        self.alice.line("/whois nobody")
        self.assertEqual(self.alice.take(), error_text("no-such-nick", "nobody is not connected"))
        self.alice.line("/whois")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "usage: /whois NICK"))

    def test_whois_json(self) -> None:
        """
        In json C{/whois} is a C{whois} object.
        """
        carol = self.json_user("carol")
        carol.line("/whois alice")
        self.assertEqual(
            carol.take_json(),
            [{"type": "whois", "nick": "alice", "status": "", "rooms": ["#lobby"], "since": TS,
              "idle": 0, "account": False, "secure": False}],
        )

    def test_history(self) -> None:
        """
        C{/history} replays the last messages of a room, oldest first.
        """
        for text in ["one", "two", "three"]:
            self.bob.line(text)
        self.alice.take()
        self.alice.line("/history 2")
        self.assertEqual(
            self.alice.take(),
            b"--- last 2 messages in #lobby ---\r\n[2025-11-21 14:02] #lobby <bob> two\r\n"
            b"[2025-11-21 14:02] #lobby <bob> three\r\n--- end of history ---\r\n",
        )
        self.alice.line("/history #lobby 1")
        self.assertEqual(
            self.alice.take(),
            b"--- last 1 message in #lobby ---\r\n[2025-11-21 14:02] #lobby <bob> three\r\n"
            b"--- end of history ---\r\n",
        )

    def test_history_errors(self) -> None:
        """
        C{/history} out of range or malformed is C{bad-arguments}; unknown room C{no-such-room}.
        """
        self.alice.line("/history 0")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "N is 1 to 500"))
        self.alice.line("/history 501")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "N is 1 to 500"))
        self.alice.line("/history 5 6")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "usage: /history [N] [#ROOM|NICK] [before ID]"))
        self.alice.line("/history #nowhere")
        self.assertEqual(self.alice.take(), error_text("no-such-room", "#nowhere does not exist"))

    def test_history_on_join(self) -> None:
        """
        A json newcomer gets the room's history as a C{history} object.
        """
        self.bob.line("earlier")
        carol = self.connect()
        carol.line("/format json")
        carol.take()
        carol.line("/nick carol")
        history = carol.take_json()[-1]
        self.assertEqual(history["type"], "history")
        self.assertEqual([(m["from"], m["text"]) for m in history["messages"]], [("bob", "earlier")])

    def test_rooms(self) -> None:
        """
        C{/rooms} lists rooms with user count and topic.
        """
        self.bob.line("/join #dev")
        self.alice.line("/topic #lobby chat here")
        self.alice.take()
        self.alice.line("/rooms")
        self.assertEqual(
            self.alice.take(), b"* 2 rooms:\r\n*   #dev (1)\r\n*   #lobby (2) - chat here\r\n"
        )

    def test_rooms_json(self) -> None:
        """
        In json C{/rooms} is a C{rooms} object.
        """
        carol = self.json_user("carol")
        carol.line("/rooms")
        self.assertEqual(
            carol.take_json(), [{"type": "rooms", "rooms": [{"room": "#lobby", "topic": "", "count": 3}]}]
        )

    def test_ping(self) -> None:
        """
        C{/ping} is answered C{pong} with the token, in text and json.
        """
        self.alice.line("/ping 42")
        self.assertEqual(self.alice.take(), b"*** pong 42\r\n")
        self.alice.line("/PING")
        self.assertEqual(self.alice.take(), b"*** pong\r\n")
        carol = self.json_user("carol")
        carol.line("/ping t-1")
        self.assertEqual(carol.take_json(), [{"type": "pong", "token": "t-1"}])

    def test_quit(self) -> None:
        """
        C{/quit} sends C{bye} then closes; the others see C{quit} with the reason.
        """
        self.bob.take()
        self.alice.line("/quit off to bed")
        self.assertEqual(self.alice.take(), b"*** Bye: off to bed\r\n")
        self.assertTrue(self.alice.transport.disconnecting)
        self.alice.lose()
        self.assertEqual(self.bob.take(), b"[14:02] * alice quit (off to bed)\r\n")

    def test_quit_stops_reading(self) -> None:
        """
        Lines after C{/quit} in the same chunk are not run.
        """
        self.bob.take()
        self.alice.send(b"/quit\nnot said\n")
        self.assertEqual(self.alice.take(), b"*** Bye: goodbye\r\n")
        self.assertEqual(self.bob.take(), b"")

    def test_closing_reads_until_gone_then_aborts(self) -> None:
        """
        After C{bye} the connection reads again (a TLS peer's close_notify
        must be read for TLS to close), drops what comes, and is aborted if
        still open after the shutdown timeout.
        """
        self.bob.take()
        self.alice.line("/quit")
        self.assertEqual(self.alice.transport.producerState, "producing")
        self.alice.line("/msg bob not said")
        self.assertEqual(self.bob.take(), b"")
        self.assertFalse(self.alice.transport.disconnected)
        self.clock.advance(self.settings.shutdown_timeout)
        self.assertTrue(self.alice.transport.disconnected)

    def test_exit_json(self) -> None:
        """
        C{/exit} is an alias of C{/quit}; in json the goodbye is a C{bye} object.
        """
        carol = self.json_user("carol")
        carol.line("/exit")
        self.assertEqual(carol.take_json(), [{"type": "bye", "reason": "goodbye"}])
        self.assertTrue(carol.transport.disconnecting)

    def test_quit_before_registration(self) -> None:
        """
        C{/quit} works before registration.
        """
        client = self.connect()
        client.take()
        client.line("/quit")
        self.assertEqual(client.take(), b"*** Bye: goodbye\r\n")
        self.assertTrue(client.transport.disconnecting)

    def test_unknown_command(self) -> None:
        """
        An unknown command is C{unknown-command}.
        """
        self.alice.line("/frobnicate now")
        self.assertEqual(
            self.alice.take(), error_text("unknown-command", "unknown command /frobnicate: try /help")
        )
        self.assertEqual(self.bob.take(), b"")

    def test_help(self) -> None:
        """
        C{/help} lists every command; C{/help CMD} explains one, aliases included.
        """
        self.alice.line("/help")
        output = self.alice.take().decode()
        for name in ["/nick", "/msg", "/me", "/join", "/part", "/rooms", "/list", "/whois", "/status",
                     "/topic", "/history", "/format", "/ping", "/quit", "/help"]:
            self.assertIn(f"***   {name}", output)
        self.alice.line("/help users")
        self.assertEqual(
            self.alice.take(),
            b"*** /list [#ROOM]: lists a room's users with status and idle time (alias /users)\r\n",
        )
        self.alice.line("/help /away")
        self.assertTrue(self.alice.take().startswith(b"*** /status [TEXT]: "))
        self.alice.line("/help nope")
        self.assertEqual(self.alice.take(), error_text("bad-arguments", "no command /nope: /help lists them"))

    def test_empty_message_ignored(self) -> None:
        """
        An empty line after registration sends nothing to anyone.
        """
        self.bob.take()
        self.alice.send(b"\n\r\n")
        self.assertEqual(self.alice.take(), b"")
        self.assertEqual(self.bob.take(), b"")


class FanOutTests(ProtocolTestCase):
    """
    The issue's design rule: each event is rendered once per format and the
    same bytes are written to every recipient.
    """

    def test_rendered_once_per_format(self) -> None:
        """
        With 3 json and 2 text users in a room, a message is rendered once per
        format and the very same bytes object reaches every user of a format.
        """
        calls: list[str] = []

        def counting(render: Renderer, name: str) -> Renderer:
            def counted(event: events.Event) -> bytes:
                calls.append(f"{name}:{type(event).__name__}")
                return render(event)
            return counted

        text, json_ = counting(render_text, "text"), counting(render_json, "json")
        self.patch(chat_protocol, "render_text", text)
        self.patch(chat_protocol, "RENDERERS", {"text": text, "json": json_})
        texts = [self.text_user(nick) for nick in ("t1", "t2")]
        jsons = [self.json_user(nick) for nick in ("j1", "j2", "j3")]
        for client in texts + jsons:
            client.transport.writes.clear()
        del calls[:]
        jsons[0].line("hello everyone")
        self.assertEqual(sorted(calls), ["json:Message", "text:Message"])
        [text_bytes] = texts[0].transport.writes
        [json_bytes] = jsons[0].transport.writes
        for client in texts:
            self.assertEqual(len(client.transport.writes), 1)
            self.assertIs(client.transport.writes[0], text_bytes)
        for client in jsons:
            self.assertEqual(len(client.transport.writes), 1)
            self.assertIs(client.transport.writes[0], json_bytes)
        self.assertEqual(text_bytes, b"[14:02] #lobby <j1> hello everyone\r\n")
        self.assertEqual(decode_json(json_bytes)[0]["text"], "hello everyone")

    def test_one_write_per_chunk(self) -> None:
        """
        The events one chunk of input causes reach each receiver in a single
        transport write, in order.
        """
        alice = self.text_user("alice")
        bob = self.text_user("bob")
        bob.transport.writes.clear()
        alice.send(b"one\ntwo\n/me three\n")
        self.assertEqual(
            bob.transport.writes,
            [b"[14:02] #lobby <alice> one\r\n[14:02] #lobby <alice> two\r\n[14:02] #lobby * alice three\r\n"],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ShutdownTests(ProtocolTestCase):
    """
    Graceful shutdown: C{bye} to everyone, then close, with a timeout.
    """

    def test_no_connections(self) -> None:
        """
        With no connection, shutdown is done at once.
        """
        self.assertIsNone(self.successResultOf(self.server.shutdown(self.clock)))

    def test_bye_to_all(self) -> None:
        """
        Every connection gets C{bye} in its format and is closed; the Deferred
        fires once all are lost.
        """
        alice = self.text_user("alice")
        carol = self.json_user("carol")
        guest = self.connect()
        alice.take()
        guest.take()
        d = self.server.shutdown(self.clock)
        self.assertEqual(alice.take(), b"*** Bye: server shutting down\r\n")
        self.assertEqual(guest.take(), b"*** Bye: server shutting down\r\n")
        self.assertEqual(carol.take_json(), [{"type": "bye", "reason": "server shutting down"}])
        for client in (alice, carol, guest):
            self.assertTrue(client.transport.disconnecting)
            self.assertFalse(client.transport.disconnected)
        self.assertNoResult(d)
        alice.lose()
        guest.lose()
        self.assertNoResult(d)
        carol.lose()
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_nothing_after_bye(self) -> None:
        """
        Once a connection has been sent C{bye}, nothing more is written to it,
        though other users quit before it closes.
        """
        alice = self.text_user("alice")
        bob = self.text_user("bob")
        alice.take()
        self.server.shutdown(self.clock)
        self.assertEqual(bob.take(), b"*** Bye: server shutting down\r\n")
        alice.lose()
        # Regression: bob used to get "[14:02] * alice quit (server shutting
        # down)" after his bye.
        self.assertEqual(bob.take(), b"")

    def test_nothing_after_quit_bye(self) -> None:
        """
        After C{/quit} has been answered with C{bye}, messages of others are not written to the quitter.
        """
        alice = self.text_user("alice")
        bob = self.text_user("bob")
        alice.take()
        alice.line("/quit")
        self.assertEqual(alice.take(), b"*** Bye: goodbye\r\n")
        bob.line("are you there?")
        self.assertEqual(alice.take(), b"")

    def test_bye_queued_behind_paused_output(self) -> None:
        """
        A connection whose output is paused at shutdown gets its queued lines,
        then C{bye}, then nothing, once the transport resumes it.
        """
        alice = self.text_user("alice")
        bob = self.text_user("bob")
        alice.take()
        alice.producer.pauseProducing()
        bob.line("before")
        self.server.shutdown(self.clock)
        bob.lose()
        self.assertEqual(alice.take(), b"")
        self.assertTrue(alice.transport.disconnecting)
        alice.producer.resumeProducing()
        self.assertEqual(
            alice.take(), b"[14:02] #lobby <bob> before\r\n*** Bye: server shutting down\r\n"
        )

    def test_abort_after_timeout(self) -> None:
        """
        Connections still open after the timeout are aborted and the Deferred
        fires once, also when they are lost afterwards.
        """
        alice = self.text_user("alice")
        bob = self.text_user("bob")
        d = self.server.shutdown(self.clock)
        alice.lose()
        self.clock.advance(self.settings.shutdown_timeout - 0.1)
        self.assertNoResult(d)
        self.assertFalse(bob.transport.disconnected)
        self.clock.advance(0.1)
        self.assertTrue(bob.transport.disconnected)
        self.assertIsNone(self.successResultOf(d))
        bob.lose()  # the abort's connectionLost: must not fire the Deferred again
        self.assertEqual(self.server.sessions, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeout_configurable(self) -> None:
        """
        The abort waits C{settings.shutdown_timeout} seconds.
        """
        clock, factory = self.make_factory(Settings(shutdown_timeout=30))
        client = self.connect(factory=factory)
        d = factory.server.shutdown(clock)
        clock.advance(29.9)
        self.assertFalse(client.transport.disconnected)
        clock.advance(0.1)
        self.assertTrue(client.transport.disconnected)
        self.assertIsNone(self.successResultOf(d))

"""
End-to-end tests: a real C{twistd -n chat} process on a free loopback port,
driven by several socket clients (and one real C{nc}), against PROTOCOL.md.

Each class runs one daemon for its tests, which use their own nicks and
rooms; every test fails if the daemon logs an unhandled error.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any, ClassVar

from twisted.trial.unittest import SynchronousTestCase

import chat
from tests.e2e import (
    DO,
    DONT,
    EXITED_ON_SIGTERM,
    IAC,
    IP,
    SB,
    SE,
    TIMING_MARK,
    TS,
    WILL,
    WONT,
    Client,
    Daemon,
    LineCollector,
    twistd_command,
)

FAST = ("--flood-burst", "100000", "--flood-rate", "100000")
"""Flood limits out of the way, for tests that send many lines."""

CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
"""Characters that must never be relayed (PROTOCOL.md section 1)."""

TEXT_MESSAGE = re.compile(r"\A\[\d\d:\d\d\] (#\S+) <([^>]+)> (.*)\Z")
"""A room message in the text format: C{[14:02] #lobby <alice> hello}."""


class DaemonTestCase(SynchronousTestCase):
    """
    Runs one daemon with L{options} for the tests of a class, and checks its
    log after each test and once it stopped.
    """

    options: ClassVar[tuple[str, ...]] = ()
    daemon: ClassVar[Daemon]

    @classmethod
    def setUpClass(cls) -> None:
        cls.daemon = Daemon(*cls.options).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.stop()

    def setUp(self) -> None:
        self.addCleanup(self.daemon.assert_clean)

    def connect(self, **kwargs: Any) -> Client:
        """
        A raw client, closed after the test.
        """
        client = Client(self.daemon.port, **kwargs)
        self.addCleanup(client.close)
        return client

    def text_client(self, nick: str, end: bytes = b"\n") -> Client:
        """
        A registered text-format client whose lines end in C{end}.
        """
        client = Client.text(self.daemon.port, nick, end)
        self.addCleanup(client.close)
        return client

    def json_client(self, nick: str) -> Client:
        """
        A registered JSON-format client.
        """
        client = Client.json(self.daemon.port, nick)
        self.addCleanup(client.close)
        return client


def ends_with(suffix: str) -> Callable[[str], bool]:
    """
    A line predicate: the line ends with C{suffix}.
    """
    return lambda line: line.endswith(suffix)


def stop(process: subprocess.Popen[bytes]) -> None:
    """
    Kill a child process if it still runs, and reap it.
    """
    if process.poll() is None:
        process.kill()
        process.wait(5)


def said(events: list[dict[str, Any]], nick: str) -> list[str]:
    """
    The texts of the C{message} events from C{nick}, in order.
    """
    return [e["text"] for e in events if e["type"] == "message" and e["from"] == nick]


class ChatTests(DaemonTestCase):
    """
    Sessions, commands and input hygiene on one daemon with flood limits
    raised.
    """

    options = (*FAST, "--motd", "hello e2e")

    # Line ends, telnet, framing

    def test_lf_crlf_crnul_clients_chat(self) -> None:
        """
        Clients ending lines in LF, CR LF and CR NUL register and chat with each
        other, and all get CR LF lines.
        """
        ends = {"lf_user": b"\n", "crlf_user": b"\r\n", "crnul_user": b"\r\0"}
        clients = {nick: self.text_client(nick, end) for nick, end in ends.items()}
        for nick, client in clients.items():
            client.send_line("/join #e2e-ends", ends[nick])
            client.read_lines_until(ends_with(f"* {nick} joined #e2e-ends"))
        lines: dict[str, list[str]] = {nick: [] for nick in clients}
        for nick, client in clients.items():
            client.send_line(f"hello from {nick}", ends[nick])
            lines[nick] += client.read_lines_until(ends_with(f"<{nick}> hello from {nick}"))
        last = "<crnul_user> hello from crnul_user"
        for nick, client in clients.items():
            if not lines[nick][-1].endswith(last):
                lines[nick] += client.read_lines_until(ends_with(last))
            messages = [m.groups() for m in map(TEXT_MESSAGE.match, lines[nick]) if m]
            self.assertEqual(
                messages,
                [("#e2e-ends", sender, f"hello from {sender}") for sender in ends],
            )
            self.assertNotIn(b"\n", client.received.replace(b"\r\n", b""), nick)

    def test_line_split_at_every_position(self) -> None:
        """
        A line sent in two reads split at any byte (inside a UTF-8 character,
        between CR and LF or CR and NUL) arrives whole.
        """
        sender = self.text_client("splitter")
        watcher = self.json_client("splitwatch")
        expected: list[str] = []
        for end in (b"\n", b"\r\n", b"\r\0"):
            width = len("split \u00e9 000".encode() + end)
            for i in range(1, width):
                text = f"split \u00e9 {len(expected):03d}"
                line = text.encode() + end
                expected.append(text)
                sender.send(line[:i])
                time.sleep(0.003)
                sender.send(line[i:])
                time.sleep(0.003)
        events = watcher.read_events_until(
            lambda e: e["type"] == "message" and e["text"] == expected[-1], timeout=10
        )
        self.assertEqual(said(events, "splitter"), expected)

    def read_reply(self, client: Client, reply: bytes) -> None:
        """
        Read a telnet reply, which may follow whole text lines but must come
        in one piece.
        """
        data = client.read_raw_until(reply)
        before = data[: -len(reply)]
        self.assertTrue(before == b"" or before.endswith(b"\r\n"), data)
        self.assertNotIn(IAC, before, data)

    def test_telnet_ctrl_c_gets_timing_mark_and_session_continues(self) -> None:
        """
        Ctrl-C from telnet (IAC IP, IAC DM, IAC DO TIMING-MARK) is answered IAC
        WILL TIMING-MARK, causes no error, and the session keeps working.
        """
        client = self.text_client("telnetter", b"\r\n")
        client.send(IAC + IP + IAC + b"\xf2" + IAC + DO + TIMING_MARK)
        self.read_reply(client, IAC + WILL + TIMING_MARK)
        lines = client.ping("after-ctrl-c", json_mode=False, end=b"\r\n")
        self.assertEqual([line for line in lines if "Error" in line], [])
        # The same sequence one byte per read.
        for byte in IAC + IP + IAC + DO + TIMING_MARK:
            client.send(bytes((byte,)))
            time.sleep(0.003)
        self.read_reply(client, IAC + WILL + TIMING_MARK)
        client.send_line("still here", b"\r\n")
        line = client.read_lines_until(lambda line: line.endswith("<telnetter> still here"))[-1]
        self.assertRegex(line, TEXT_MESSAGE)
        self.assertNotIn(b"Error", client.received)

    def test_telnet_negotiation_declined_and_removed(self) -> None:
        """
        Option requests are declined (WONT/DONT) and telnet sequences inside a
        line, subnegotiation included, are removed from the text.
        """
        client = self.text_client("negotiator", b"\r\n")
        watcher = self.json_client("negwatch")
        sga, ttype, naws = b"\x03", b"\x18", b"\x1f"
        client.send(IAC + DO + sga + IAC + WILL + ttype + IAC + WILL + naws)
        self.read_reply(client, IAC + WONT + sga + IAC + DONT + ttype + IAC + DONT + naws)
        nop = b"\xf1"
        client.send(b"hel" + IAC + SB + naws + b"\x00\x50\x00\x18" + IAC + SE + b"lo" + IAC + nop + b" there\r\n")
        event = watcher.expect_event("message", {"from": "negotiator"})
        self.assertEqual(event["text"], "hello there")
        client.ping("negotiated", json_mode=False, end=b"\r\n")
        self.assertNotIn(b"Error", client.received)

    # JSON

    def test_json_welcome_and_registration_events(self) -> None:
        """
        /format json is answered with welcome; /nick gives registered, join,
        role (when the first in #lobby), users and history, in that order,
        with the members of PROTOCOL.md.
        """
        client = self.json_client("jsonista")
        welcome, *rest = client.registration
        self.assertEqual(
            welcome,
            {
                "type": "welcome", "server": "chat", "version": chat.__version__,
                "motd": "hello e2e", "limits": {"line": 4096, "nick": 24, "file": 100 * 1024 * 1024},
            },
        )
        mine = [
            e for e in rest
            if e["type"] in ("registered", "users", "history") or e.get("nick") == "jsonista"
        ]
        listed = next(e for e in mine if e["type"] == "users")
        first = {"nick": "jsonista", "status": "", "idle": 0, "role": "operator"} in listed["users"]
        expected = ["registered", "join", *(["role"] if first else []), "users", "history"]
        self.assertEqual([e["type"] for e in mine], expected)
        if first:
            role = mine.pop(2)
            self.assertEqual(
                role, {"type": "role", "room": "#lobby", "nick": "jsonista", "role": "operator", "by": ""}
            )
        registered, join, users, history = mine
        self.assertEqual(registered, {"type": "registered", "nick": "jsonista", "account": False})
        self.assertEqual(set(join), {"type", "ts", "room", "nick"})
        self.assertEqual(join["room"], "#lobby")
        self.assertRegex(join["ts"], TS)
        self.assertEqual(users["room"], "#lobby")
        self.assertEqual(users["count"], len(users["users"]))
        self.assertIn(
            {"nick": "jsonista", "status": "", "idle": 0, "role": "operator" if first else "member"}, users["users"]
        )
        self.assertEqual(history["room"], "#lobby")
        self.assertIsInstance(history["messages"], list)

    def test_json_message_events(self) -> None:
        """
        Messages and actions arrive as message events with increasing integer
        ids and RFC 3339 UTC millisecond times.
        """
        client = self.json_client("msgjson")
        client.join("#e2e-json")
        client.send_line("hello json")
        client.send_line("/me waves")
        first = client.expect_event("message", text="hello json")
        second = client.expect_event("message", text="waves")
        for event, action in ((first, False), (second, True)):
            self.assertEqual(set(event), {"type", "id", "ts", "room", "from", "text", "action"})
            self.assertEqual((event["room"], event["from"], event["action"]), ("#e2e-json", "msgjson", action))
            self.assertIsInstance(event["id"], int)
            self.assertRegex(event["ts"], TS)
        self.assertGreater(second["id"], first["id"])
        client.send_line("/format text")
        client.read_lines_until(lambda line: line.startswith("*** Welcome to chat"))
        client.send_line("back to text")
        line = client.read_lines_until(lambda line: line.endswith("back to text"))[-1]
        self.assertRegex(line, r"\A\[\d\d:\d\d\] #e2e-json <msgjson> back to text\Z")

    def test_unregistered_commands_refused(self) -> None:
        """
        Before registration a JSON client gets not-registered for messages and
        most commands, while /ping works.
        """
        client = self.connect()
        client.read_lines_until(lambda line: "Choose a nickname" in line)
        client.send_line("/format json")
        client.read_events_until("welcome")
        client.send_line("hello?")
        client.send_line("/list")
        self.assertEqual(client.errors_before_pong("unregistered"), ["not-registered", "not-registered"])

    # Rooms, private messages, queries

    def test_rooms_join_topic_part(self) -> None:
        """
        /join creates and enters a room, /topic and /rooms describe it, a
        message goes to the current room, and /part leaves it.
        """
        alice = self.json_client("roomalice")
        bob = self.json_client("roombob")
        events = alice.join("#e2e-rooms")
        join, role, users, history = [e for e in events if e.get("room") == "#e2e-rooms"]
        self.assertEqual((join["type"], join["nick"]), ("join", "roomalice"))
        self.assertEqual(
            role, {"type": "role", "room": "#e2e-rooms", "nick": "roomalice", "role": "operator", "by": ""}
        )
        self.assertEqual((users["type"], users["count"]), ("users", 1))
        self.assertEqual(history["messages"], [])
        bob.join("#e2e-rooms")
        alice.expect_event("join", room="#e2e-rooms", nick="roombob")
        alice.send_line("/topic #e2e-rooms Testing rooms")
        for client in (alice, bob):
            topic = client.expect_event("topic", room="#e2e-rooms")
            self.assertEqual(topic, {"type": "topic", "room": "#e2e-rooms", "text": "Testing rooms", "by": "roomalice"})
        alice.send_line("/rooms")
        rooms = alice.expect_event("rooms")["rooms"]
        self.assertIn({"room": "#e2e-rooms", "topic": "Testing rooms", "count": 2}, rooms)
        self.assertIn("#lobby", [r["room"] for r in rooms])
        alice.send_line("in the room")
        self.assertEqual(bob.expect_event("message", text="in the room")["room"], "#e2e-rooms")
        bob.send_line("/part #e2e-rooms see you")
        for client in (alice, bob):
            part = client.expect_event("part", room="#e2e-rooms")
            self.assertEqual(
                {k: part[k] for k in ("room", "nick", "reason")},
                {"room": "#e2e-rooms", "nick": "roombob", "reason": "see you"},
            )
            self.assertRegex(part["ts"], TS)
        bob.send_line("/part #e2e-rooms")
        self.assertEqual(bob.errors_before_pong("parted"), ["not-in-room"])
        alice.send_line("/part")
        alice.expect_event("part", room="#e2e-rooms", nick="roomalice")
        alice.send_line("/rooms")
        rooms = alice.expect_event("rooms")["rooms"]
        self.assertEqual([r for r in rooms if r["room"] == "#e2e-rooms" and r["count"]], [])
        alice.send_line("back in the lobby")
        self.assertEqual(bob.expect_event("message", text="back in the lobby")["room"], "#lobby")

    def test_private_message_delivered_and_echoed(self) -> None:
        """
        /msg delivers a private event to the target and echoes the same event
        to the sender.
        """
        alice = self.json_client("pmalice")
        bob = self.json_client("pmbob")
        alice.send_line("/msg pmbob psst, bob")
        received = bob.expect_event("private")
        echoed = alice.expect_event("private")
        self.assertEqual(received, echoed)
        self.assertEqual(
            {k: v for k, v in received.items() if k not in ("id", "ts")},
            {"type": "private", "from": "pmalice", "to": "pmbob", "text": "psst, bob",
             "action": False, "offline": False},
        )
        self.assertIsInstance(received["id"], int)
        self.assertRegex(received["ts"], TS)

    def test_private_message_errors(self) -> None:
        """
        /msg to a nick nobody has gets no-such-nick; without text, bad-arguments.
        """
        alice = self.json_client("pmlonely")
        alice.send_line("/msg nobody-here hello?")
        alice.send_line("/msg pmlonely")
        self.assertEqual(alice.errors_before_pong("pm-errors"), ["no-such-nick", "bad-arguments"])

    def test_list_users_with_status(self) -> None:
        """
        /list #ROOM (and /users) gives the room's users sorted by nick, with
        status and idle seconds, and the count.
        """
        alice = self.json_client("listalice")
        bob = self.json_client("listbob")
        alice.join("#e2e-list")
        bob.join("#e2e-list")
        bob.send_line("/status on a break")
        alice.expect_event("status", nick="listbob")
        for command in ("/list #e2e-list", "/users"):
            alice.send_line(command)
            users = alice.expect_event("users", room="#e2e-list")
            self.assertEqual(users["count"], 2)
            self.assertEqual(
                [(u["nick"], u["status"]) for u in users["users"]],
                [("listalice", ""), ("listbob", "on a break")],
            )
            for user in users["users"]:
                self.assertIsInstance(user["idle"], int)
                self.assertGreaterEqual(user["idle"], 0)
        alice.send_line("/list #e2e-nowhere")
        self.assertEqual(alice.errors_before_pong("list"), ["no-such-room"])

    def test_whois(self) -> None:
        """
        /whois tells nick, status, rooms, connected since, idle, account and
        TLS; an unknown nick gets no-such-nick.
        """
        alice = self.json_client("whoisalice")
        bob = self.json_client("whoisbob")
        bob.join("#e2e-whois")
        alice.send_line("/whois WhoisBob")
        whois = alice.expect_event("whois")
        self.assertEqual(
            {k: v for k, v in whois.items() if k not in ("since", "idle")},
            {"type": "whois", "nick": "whoisbob", "status": "", "rooms": ["#lobby", "#e2e-whois"],
             "account": False, "secure": False},
        )
        self.assertRegex(whois["since"], TS)
        self.assertIsInstance(whois["idle"], int)
        alice.send_line("/whois nobody-here")
        self.assertEqual(alice.errors_before_pong("whois"), ["no-such-nick"])

    def test_status_set_and_cleared(self) -> None:
        """
        /status TEXT sends status to the user and those sharing a room, /whois
        shows it, and /away without text clears it.
        """
        alice = self.json_client("statalice")
        bob = self.json_client("statbob")
        bob.send_line("/status gone fishing")
        for client in (alice, bob):
            self.assertEqual(
                client.expect_event("status", nick="statbob"),
                {"type": "status", "nick": "statbob", "text": "gone fishing"},
            )
        alice.send_line("/whois statbob")
        self.assertEqual(alice.expect_event("whois")["status"], "gone fishing")
        bob.send_line("/away")
        for client in (alice, bob):
            self.assertEqual(
                client.expect_event("status", nick="statbob"),
                {"type": "status", "nick": "statbob", "text": ""},
            )

    def test_history_replayed_on_join_and_on_request(self) -> None:
        """
        Joining a room replays its messages oldest first; /history N [#ROOM]
        gives the last N; out-of-range N and unknown rooms are errors.
        """
        alice = self.json_client("histalice")
        alice.join("#e2e-hist")
        for text in ("one", "two", "three"):
            alice.send_line(text)
        alice.expect_event("message", text="three")
        bob = self.json_client("histbob")
        history = bob.join("#e2e-hist")[-1]
        messages = history["messages"]
        self.assertEqual([m["text"] for m in messages], ["one", "two", "three"])
        for message in messages:
            self.assertEqual(
                (message["type"], message["room"], message["from"], message["action"]),
                ("message", "#e2e-hist", "histalice", False),
            )
            self.assertRegex(message["ts"], TS)
        ids = [m["id"] for m in messages]
        self.assertEqual(ids, sorted(set(ids)))
        bob.send_line("/history 2")
        self.assertEqual([m["text"] for m in bob.expect_event("history")["messages"]], ["two", "three"])
        alice.send_line("/join #lobby")
        alice.send_line("/history 1 #e2e-hist")
        self.assertEqual(
            alice.expect_event("history", room="#e2e-hist")["messages"], messages[-1:]
        )
        alice.send_line("/history 501")
        alice.send_line("/history 5 #e2e-nowhere")
        self.assertEqual(alice.errors_before_pong("history"), ["bad-arguments", "no-such-room"])
        carol = self.text_client("histcarol")
        carol.send_line("/join #e2e-hist")
        lines = carol.read_lines_until(lambda line: line == "--- end of history ---")
        start = lines.index("--- last 3 messages in #e2e-hist ---")
        self.assertEqual(
            [re.sub(r"\A\[[\d: -]+\] ", "", line) for line in lines[start + 1:-1]],
            ["#e2e-hist <histalice> one", "#e2e-hist <histalice> two", "#e2e-hist <histalice> three"],
        )

    # Bad input

    def test_overlong_line_rejected_and_connection_kept(self) -> None:
        """
        A line of up to 4096 bytes (before CR LF) is accepted, a longer one
        gets line-too-long, and the next line works.
        """
        client = self.json_client("longliner")
        client.join("#e2e-long")
        client.send(b"a" * 4096 + b"\n")
        client.send(b"b" * 4096 + b"\r\n")
        client.send(b"c" * 4097 + b"\n")
        client.send(b"d" * 10000 + b"\r\n")
        events = client.ping("long")
        self.assertEqual(said(events, "longliner"), ["a" * 4096, "b" * 4096])
        self.assertEqual([e["code"] for e in events if e["type"] == "error"], ["line-too-long", "line-too-long"])
        client.send_line("short again")
        self.assertEqual(client.expect_event("message", {"from": "longliner"})["text"], "short again")

    def test_overlong_line_tail_never_runs_as_command(self) -> None:
        """
        When an over-long line arrives in pieces, its tail up to the line end
        is discarded, even if it looks like a command; the line after it runs.
        """
        client = self.json_client("tailer")
        tail = b"/join #e2e-evil\n"
        for pieces in ([4090], [4096], [4097], [4098], [5000], [3000, 3000], [5000, 5000, 100]):
            for size in pieces:
                client.send(b"x" * size)
                time.sleep(0.02)
            client.send(tail)
            time.sleep(0.02)
            client.send(b"/join #e2e-evil\r")
            time.sleep(0.02)
            client.send(b"\n/part #e2e-evil\n")
            events = client.ping(f"tail-{pieces}")
            self.assertEqual(
                [(e["type"], e.get("code") or e.get("room")) for e in events if e["type"] in ("error", "join", "part")],
                [("error", "line-too-long"), ("join", "#e2e-evil"), ("part", "#e2e-evil")],
                f"pieces {pieces}",
            )
        # In one read, with commands right after the long line.
        client.send(b"y" * 6000 + b"/quit\n/ping together\n")
        events = client.read_events_until("pong")
        self.assertEqual([e["type"] for e in events if e["type"] in ("error", "pong", "bye")], ["error", "pong"])

    def test_invalid_utf8_rejected(self) -> None:
        """
        Lines that are not UTF-8 get bad-encoding, nothing is relayed, and the
        session goes on.
        """
        sender = self.json_client("badutf")
        watcher = self.json_client("badwatch")
        for line in (b"caf\xe9\n", b"\xc3\x28\n", b"\xed\xa0\x80\n", b"ok \xf0\x9f\x98\n"):
            sender.send(line)
        self.assertEqual(sender.errors_before_pong("utf"), ["bad-encoding"] * 4)
        sender.send("good \u00e9\U0001f600\n".encode())
        events = watcher.read_events_until(lambda e: e["type"] == "message" and e["from"] == "badutf")
        self.assertEqual(said(events, "badutf"), ["good \u00e9\U0001f600"])

    def test_escape_sequences_never_relayed(self) -> None:
        """
        Control characters (ESC sequences, BEL, C1, DEL) are removed from
        messages, actions, private messages, statuses and topics.
        """
        sender = self.text_client("escaper")
        text_watch = self.text_client("esctext")
        json_watch = self.json_client("escjson")
        for client in (sender, text_watch):
            client.send_line("/join #e2e-esc")
            client.read_lines_until(lambda line: line.endswith("joined #e2e-esc"))
        json_watch.join("#e2e-esc")
        nasty = "\x1b[31mred\x1b[0m \x07bell \x9b2J c1 \x7fdel\ttab \x1b]0;title\x07"
        clean = "[31mred[0m bell 2J c1 del\ttab ]0;title"
        for prefix in ("", "/me ", "/msg escjson ", "/status ", "/topic #e2e-esc "):
            sender.send((prefix + nasty + "\n").encode())
        sender.send_line("done escaping")
        events = json_watch.read_events_until(lambda e: e.get("text") == "done escaping")
        relayed = [
            (e["type"], e["text"]) for e in events
            if e["type"] in ("message", "private", "status", "topic") and e["text"] != "done escaping"
        ]
        self.assertEqual(
            relayed,
            [("message", clean), ("message", clean), ("private", clean), ("status", clean), ("topic", clean)],
        )
        text_watch.read_lines_until(lambda line: line.endswith("<escaper> done escaping"))
        for byte in (b"\x1b", b"\x07", b"\x7f", "\x9b".encode()):
            self.assertNotIn(byte, text_watch.received)
        self.assertEqual(CONTROL.findall(json_watch.received.decode().replace("\r\n", "")), [])

    def test_random_junk_does_not_disturb_bystander(self) -> None:
        """
        A few hundred KB of random bytes from one connection neither crash the
        daemon nor disturb a bystander chatting meanwhile.
        """
        seed = random.SystemRandom().getrandbits(32)
        junk = random.Random(seed).randbytes(256 * 1024)
        calm = self.json_client("calm")
        watch = self.json_client("calmwatch")
        noisy = self.connect()
        expected = []
        for i in range(0, len(junk), 16384):
            try:
                noisy.send(junk[i:i + 16384])
            except OSError:
                pass  # the junk happened to say /quit
            noisy.drain()
            text = f"calm {i}"
            expected.append(text)
            calm.send_line(text)
            calm.expect_event("message", {"from": "calm"}, text=text)
        events = watch.read_events_until(
            lambda e: e["type"] == "message" and e["from"] == "calm" and e["text"] == expected[-1]
        )
        self.assertEqual(said(events, "calm"), expected, f"junk seed {seed}")
        self.assertEqual([e for e in calm.ping("after-junk") if e["type"] == "error"], [])
        self.assertEqual(self.daemon.unhandled_errors(), [], f"junk seed {seed}")

    # A real nc

    def test_nc_session(self) -> None:
        """
        A real nc process registers with a bare line, chats, receives a
        private message and leaves with /quit.
        """
        nc = shutil.which("nc")
        if nc is None:
            self.skipTest("nc is not on PATH (install netcat-openbsd); CI installs it")
        watcher = self.json_client("ncwatch")
        process = subprocess.Popen(
            [nc, "127.0.0.1", str(self.daemon.port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.addCleanup(stop, process)
        assert process.stdin is not None and process.stdout is not None
        output = LineCollector(process.stdout)
        output.wait_for(lambda line: "Choose a nickname" in line)
        process.stdin.write(b"ncuser\nhello from nc\n")
        process.stdin.flush()
        event = watcher.expect_event("message", {"from": "ncuser"})
        self.assertEqual((event["room"], event["text"]), ("#lobby", "hello from nc"))
        watcher.send_line("/msg ncuser psst")
        output.wait_for(lambda line: line.endswith("[private ncwatch -> ncuser] psst"))
        process.stdin.write(b"/quit\n")
        process.stdin.flush()
        output.wait_for(lambda line: line.startswith("*** Bye"))
        self.assertRegex(watcher.expect_event("quit", nick="ncuser")["ts"], TS)
        process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        output.join()
        text = output.text()
        self.assertIn("*** You are ncuser.", text)
        self.assertRegex(text, r"\[\d\d:\d\d\] #lobby <ncuser> hello from nc")


class FloodTests(DaemonTestCase):
    """
    Flood control, on a daemon allowing a burst of 5 lines, then 20 per second.
    """

    options = ("--flood-burst", "5", "--flood-rate", "20")

    def test_flood_delays_lines_in_order_with_one_error(self) -> None:
        """
        Thirty lines sent at once all arrive, in order, spread over the time
        the rate allows, with a single flood error.
        """
        sender = self.json_client("flooder")
        watcher = self.json_client("floodwatch")
        time.sleep(0.5)  # let both buckets refill after registering
        expected = [f"flood {i:02d}" for i in range(30)]
        started = time.monotonic()
        sender.send("".join(line + "\n" for line in expected).encode())
        events = sender.read_events_until(lambda e: e.get("text") == expected[-1], timeout=10)
        elapsed = time.monotonic() - started
        self.assertEqual(said(events, "flooder"), expected)
        self.assertEqual([e["code"] for e in events if e["type"] == "error"], ["flood"])
        # 25 lines over the burst at 20 lines/s take about 1.25 s.
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 5)
        events = watcher.read_events_until(lambda e: e.get("text") == expected[-1])
        self.assertEqual(said(events, "flooder"), expected)


class SlowReaderTests(DaemonTestCase):
    """
    The slow-reader bound, on a daemon queueing at most 64 KiB per connection.
    """

    options = (*FAST, "--max-output", "65536")

    def test_reader_that_never_reads_is_disconnected(self) -> None:
        """
        A client that stops reading while others chat is disconnected once
        its output passes the bound, and the others see it quit.
        """
        slow = Client(self.daemon.port, rcvbuf=4096)
        self.addCleanup(slow.close)
        slow.read_lines_until(lambda line: "Choose a nickname" in line)
        slow.send_line("slowpoke")
        slow.read_lines_until(lambda line: line.startswith("*** You are slowpoke."))
        chatter = self.json_client("chatty")
        filler = "x" * 4000
        quit_event = None
        # The kernel buffers up to a few MiB (tcp_wmem) before the daemon's
        # own queue fills: chat at most 8 MiB, 80 KiB per round trip.
        for batch in range(100):
            for k in range(20):
                chatter.send_line(f"{batch}-{k} {filler}")
            last = f"{batch}-19 {filler}"

            def batch_sent_or_slowpoke_quit(event: dict[str, Any], last: str = last) -> bool:
                return event.get("text") == last or (event["type"] == "quit" and event["nick"] == "slowpoke")

            events = chatter.read_events_until(batch_sent_or_slowpoke_quit)
            if events[-1]["type"] == "quit":
                quit_event = events[-1]
                break
        self.assertIsNotNone(quit_event, "still connected after 8 MiB")
        assert quit_event is not None
        self.assertEqual(quit_event["reason"], "too slow reading")
        slow.read_until_closed(timeout=5)
        self.assertTrue(slow.eof)
        chatter.send_line("still fine")
        chatter.expect_event("message", text="still fine")


class ConnectionsPerAddressTests(DaemonTestCase):
    """
    The per-address connection limit, on a daemon allowing 2.
    """

    options = ("--max-connections-per-ip", "2")

    def test_third_connection_refused_with_bye(self) -> None:
        """
        With two connections open from 127.0.0.1 a third gets bye and is
        closed; once one closes, a new connection is welcome again.
        """
        first = self.connect()
        second = self.connect()
        for client in (first, second):
            client.read_lines_until(lambda line: "Choose a nickname" in line)
        third = self.connect()
        data = third.read_until_closed()
        self.assertEqual(data.decode().splitlines(), ["*** Bye: too many connections from your address"])
        self.assertEqual(second.ping("still-open", json_mode=False), [])
        first.close()
        deadline = time.monotonic() + 5
        while True:
            fourth = self.connect()
            line = fourth.read_line()
            if line.startswith("*** Welcome"):
                break
            fourth.read_until_closed()
            self.assertLess(time.monotonic(), deadline, "the limit never freed up")
            time.sleep(0.05)


class ShutdownTests(DaemonTestCase):
    """
    Graceful shutdown on SIGTERM.
    """

    def test_sigterm_says_bye_to_everyone(self) -> None:
        """
        On SIGTERM every connection, registered or not, text or JSON, gets bye
        before the connection closes, and the daemon exits.
        """
        text = self.text_client("leavetext", b"\r\n")
        as_json = self.json_client("leavejson")
        anonymous = self.connect()
        anonymous.read_lines_until(lambda line: "Choose a nickname" in line)
        self.daemon.terminate()
        for client in (text, anonymous):
            lines = client.read_until_closed(timeout=8).decode().splitlines()
            self.assertIn("*** Bye: server shutting down", lines)
        events = [json.loads(line) for line in as_json.read_until_closed(timeout=8).decode().splitlines()]
        self.assertIn({"type": "bye", "reason": "server shutting down"}, events)
        self.assertIn(self.daemon.wait(), EXITED_ON_SIGTERM)


class BusyPortTests(DaemonTestCase):
    """
    Startup on a port another daemon holds.
    """

    def test_busy_port_is_one_clear_line(self) -> None:
        """
        A second daemon on a busy port exits with status 1 and one line
        naming the address, without a traceback.
        """
        with tempfile.TemporaryDirectory(prefix="chat-e2e-") as tmp:
            result = subprocess.run(
                twistd_command() + [
                    "-n", "--pidfile", "", "chat",
                    "--listen", f"tcp:{self.daemon.port}:interface=127.0.0.1",
                    "--data-dir", os.path.join(tmp, "data"),
                ],
                cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
            )
        output = (result.stdout + result.stderr).decode()
        self.assertEqual(result.returncode, 1, output)
        self.assertIn(f"chat: cannot listen on 127.0.0.1:{self.daemon.port}: [Errno 98] Address already in use", output)
        self.assertNotIn("Traceback", output)


class ShutdownOrderTests(DaemonTestCase):
    """
    What a connection gets after its bye on SIGTERM.
    """

    # Regression: shutdown says bye to every connection, then each close runs
    # domain.quit, which published `quit` to users that already had their bye
    # until Outbox.finish (b35657e) made bye the last write.
    def test_bye_is_the_last_line_on_shutdown(self) -> None:
        """
        On SIGTERM, bye is the last line each connection receives: no quit of
        another user follows it.
        """
        first = self.json_client("lastfirst")
        second = self.json_client("lastsecond")
        third = self.json_client("lastthird")
        self.daemon.terminate()
        for client in (first, second, third):
            lines = client.read_until_closed(timeout=8).decode().splitlines()
            self.assertEqual(
                [json.loads(line)["type"] for line in lines][-1:], ["bye"], lines
            )
        self.assertIn(self.daemon.wait(), EXITED_ON_SIGTERM)

"""
End-to-end tests of what held when the daemon was attacked on purpose
(issue 16, "What held"), against real C{twistd -n chat} processes on
loopback: file descriptor exhaustion, hostile input, homoglyph nicks,
start-up on a damaged database, a kill -9 loop, a 500-client fan-out, and
STARTTLS injection and old protocol versions on TLS.

What tests elsewhere already keep is not repeated here: invalid UTF-8
(L{tests.test_e2e.ChatTests.test_invalid_utf8_rejected}), escapes in
messages, actions, private messages, statuses and topics
(L{tests.test_e2e.ChatTests.test_escape_sequences_never_relayed}), one
kill -9 mid-flood (L{tests.test_durability_e2e.KillTests}), STARTTLS
injection in the packet of the command and TLS 1.1 over STARTTLS
(L{tests.test_tls_e2e.StartTLSTests}).
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import selectors
import socket
import sqlite3
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar

import pytest
from twisted.trial.unittest import SynchronousTestCase

from chat import schema
from chat.tls import self_signed
from tests.e2e import IAC, Client, Closed, Daemon, eventually, twistd_command

FAST = ("--flood-burst", "100000", "--flood-rate", "100000")
"""Flood limits out of the way, for tests that send many lines."""

CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
"""Characters that must never be relayed (PROTOCOL.md section 1)."""

TLS_LISTENING = re.compile(r"chat listening on 127\.0\.0\.1:(\d+) \(TLS\)")
"""The log line of the implicit-TLS listener."""

NOP = b"\xf1"
"""Telnet's no-operation command, sent after L{IAC}."""

MEGABYTES_10 = 10 * 1000 * 1000


def process_cpu_seconds(pid: int) -> float:
    """
    The CPU time, user plus system, in seconds, that process C{pid} has
    used so far (C{/proc/PID/stat}, fields 14 and 15).
    """
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_descriptors(pid: int) -> int:
    """
    How many file descriptors process C{pid} has open (C{/proc/PID/fd}).
    """
    return len(os.listdir(f"/proc/{pid}/fd"))


def answer(sock: socket.socket) -> bytes | None:
    """
    What a non-blocking socket has received, without consuming it: its
    first byte, C{b""} once the peer closed it (or reset it), or C{None}
    when nothing came yet.
    """
    try:
        return sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return b""


def stop_allowing(daemon: Daemon, allowed: re.Pattern[str]) -> None:
    """
    Stop C{daemon} as L{Daemon.stop} does, but let its log hold error lines
    that match C{allowed} (those a test provoked on purpose and checked).

    @raise AssertionError: it did not stop in time, or logged another error.
    """
    try:
        daemon.stop()
    except AssertionError as e:
        if not str(e).startswith("the daemon logged unhandled errors"):
            raise
        others = [line for line in daemon.unhandled_errors() if not allowed.search(line)]
        if others:
            raise


def said(events: list[dict[str, Any]], nick: str) -> list[str]:
    """
    The texts of the C{message} events from C{nick}, in order.
    """
    return [e["text"] for e in events if e["type"] == "message" and e["from"] == nick]


def client_hello(version: bytes) -> bytes:
    """
    A minimal TLS ClientHello record offering only protocol C{version}
    (C{b"\\x03\\x00"} for SSL 3.0, C{b"\\x03\\x01"} for TLS 1.0,
    C{b"\\x03\\x02"} for TLS 1.1), as an old client sends it: no
    extensions, two RSA suites, no compression.
    """
    body = version + bytes(32) + b"\x00" + b"\x00\x04\x00\x2f\x00\x0a" + b"\x01\x00"
    handshake = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16" + version + struct.pack(">H", len(handshake)) + handshake


class HeldTestCase(SynchronousTestCase):
    """
    Runs one daemon with L{options} for the tests of a class (none when
    L{options} is C{None}), and checks its log after each test.
    """

    options: ClassVar[tuple[str, ...] | None] = None
    daemon: ClassVar[Daemon]

    @classmethod
    def setUpClass(cls) -> None:
        if cls.options is not None:
            cls.daemon = Daemon(*cls.options).start()

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.options is not None:
            cls.daemon.stop()

    def setUp(self) -> None:
        if self.options is not None:
            self.addCleanup(self.daemon.assert_clean)

    def connect(self, port: int | None = None) -> Client:
        """
        A raw client of the class's daemon (or of C{port}), closed after the test.
        """
        client = Client(self.daemon.port if port is None else port)
        self.addCleanup(client.close)
        return client

    def json_client(self, nick: str, port: int | None = None) -> Client:
        """
        A registered JSON client of the class's daemon (or of C{port}),
        closed after the test.
        """
        client = Client.json(self.daemon.port if port is None else port, nick)
        self.addCleanup(client.close)
        return client

    def anonymous(self, port: int | None = None) -> Client:
        """
        A JSON client of the class's daemon (or of C{port}), not registered.
        """
        client = Client.json_connect(self.daemon.port if port is None else port)
        self.addCleanup(client.close)
        return client


class FileDescriptorExhaustionTests(HeldTestCase):
    """
    A daemon whose file descriptor limit (C{ulimit -n}) is 256, flooded with
    connections until it has none left.
    """

    LIMIT = 256
    SOCKETS = 300

    def test_exhaustion_no_spin_busy_upload_and_recovery(self) -> None:
        """
        With every descriptor in use the daemon does not spin (under 0.5 s of
        CPU in 2 s), closes new connections at once, refuses an upload with
        busy while chat goes on, and serves a new client at once when the
        descriptors come back.
        """
        if not hasattr(resource, "prlimit") or not os.path.isdir("/proc/self/fd"):
            self.skipTest("needs Linux: prlimit and /proc")
        daemon = Daemon(*FAST, "--max-connections-per-ip", "10000")
        self.addCleanup(stop_allowing, daemon, re.compile(r"Too many open files"))
        daemon.start()
        assert daemon.process is not None
        pid = daemon.process.pid
        # ulimit -n 256 for the running daemon: its listener has reserved
        # Twisted's spare descriptor for EMFILE recovery already.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (self.LIMIT, self.LIMIT))
        uploader = self.json_client("uploader", daemon.port)
        target = self.json_client("target", daemon.port)

        hogs: list[socket.socket] = []

        def close_hogs() -> None:
            for hog in hogs:
                hog.close()
            hogs.clear()

        self.addCleanup(close_hogs)
        # In batches, each answered (welcomed, or accepted and closed by
        # Twisted's EMFILE recovery) before the next: never past the listen
        # backlog, where a connection waits for a SYN retransmission.
        for _ in range(0, self.SOCKETS, 25):
            batch = [socket.create_connection(("127.0.0.1", daemon.port), timeout=5) for _ in range(25)]
            hogs.extend(batch)
            for hog in batch:
                hog.setblocking(False)

            def answered(batch: list[socket.socket] = batch) -> bool:
                return all(answer(hog) is not None for hog in batch)

            eventually(answered, "a batch answered")
        refused = [hog for hog in hogs if answer(hog) == b""]
        self.assertGreater(len(refused), 0, "the daemon never ran out of descriptors")
        self.assertEqual(open_descriptors(pid), self.LIMIT)

        used = process_cpu_seconds(pid)
        time.sleep(2)
        self.assertLess(process_cpu_seconds(pid) - used, 0.5, "the daemon spins while out of descriptors")

        late = Client(daemon.port)
        self.addCleanup(late.close)
        self.assertEqual(late.read_until_closed(timeout=2), b"")

        uploader.send_line("/upload target notes.txt 10")
        self.assertEqual(uploader.errors_before_pong("exhausted"), ["busy"])
        uploader.send_line("still chatting")
        self.assertEqual(target.expect_event("message", {"from": "uploader"})["text"], "still chatting")

        close_hogs()
        started = time.monotonic()
        while True:
            try:
                newcomer = Client.json(daemon.port, "newcomer")
                break
            except (Closed, OSError):
                # Closed by the recovery before the daemon saw the others go.
                self.assertLess(time.monotonic() - started, 1.0, "no recovery within a second")
                time.sleep(0.02)
        self.addCleanup(newcomer.close)
        self.assertLess(time.monotonic() - started, 1.0)
        uploader.send_line("/upload newcomer notes.txt 10")
        self.assertEqual(uploader.read_events_until("upload-ready")[-1]["size"], 10)
        uploader.send(b"0123456789")
        uploader.expect_event("upload-done")
        self.assertEqual(newcomer.expect_event("file-offer")["name"], "notes.txt")
        errors = daemon.unhandled_errors()
        self.assertNotIn("Traceback", "\n".join(errors))
        self.assertEqual([line for line in errors if "Too many open files" not in line], [])


class BadInputTests(HeldTestCase):
    """
    Hostile input on one daemon with flood limits raised: huge lines, NUL
    bytes, huge nicks, terminal escapes and homoglyph nicks.
    """

    options = FAST

    def test_ten_megabyte_lines_refused_while_others_chat(self) -> None:
        """
        Three 10 MB lines (plain, escapes with NUL and invalid UTF-8, a
        /nick) each get one line-too-long and leave the connection usable,
        while a bystander chats on without delay.
        """
        sender = self.json_client("bigliner")
        bystander = self.json_client("bystander")
        watcher = self.json_client("bigwatch")
        junk = (b"\x1b[31m\x00\xc3(" * (MEGABYTES_10 // 8 + 1))[:MEGABYTES_10]
        lines = [b"x" * MEGABYTES_10, junk, b"/nick " + b"n" * MEGABYTES_10]
        sent = threading.Event()
        failed: list[BaseException] = []

        def send_huge() -> None:
            try:
                sender.sock.settimeout(60)
                for line in lines:
                    sender.sock.sendall(line + b"\n")
            except BaseException as e:  # noqa: B036 - reported by the test
                failed.append(e)
            finally:
                sent.set()

        thread = threading.Thread(target=send_huge, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 60)
        slowest = 0.0
        count = 0
        while not sent.is_set() or count < 10:
            text = f"calm {count}"
            started = time.monotonic()
            bystander.send_line(text)
            bystander.expect_event("message", {"from": "bystander"}, text=text)
            slowest = max(slowest, time.monotonic() - started)
            count += 1
        thread.join(60)
        self.assertEqual(failed, [])
        self.assertLess(slowest, 1.0, "the bystander was held up by the huge lines")
        self.assertEqual(sender.errors_before_pong("huge"), ["line-too-long"] * 3)
        sender.send_line("after the huge lines")
        events = watcher.read_events_until(lambda e: e["type"] == "message" and e["from"] == "bigliner")
        self.assertEqual(said(events, "bigliner"), ["after the huge lines"])
        self.assertEqual(said(events, "bystander"), [f"calm {n}" for n in range(count)])
        self.assertEqual([e for e in events if e["type"] == "nick"], [])

    def test_nul_bytes_never_relayed(self) -> None:
        """
        NUL bytes inside messages, actions and statuses are removed from what
        others get, a line of NULs relays nothing, and the session goes on.
        """
        sender = self.connect()
        sender.read_lines_until(lambda line: "Choose a nickname" in line)
        sender.send(b"nul\x00sender\n")
        sender.read_lines_until(lambda line: line.startswith("*** You are nulsender."))
        watcher = self.json_client("nulwatch")
        sender.send(b"hel\x00lo\n/me \x00wa\x00ves\n/status a\x00way\n\x00\x00\x00\n\x00\r\nlast\x00 one\n")
        events = watcher.read_events_until(lambda e: e["type"] == "message" and e["text"] == "last one")
        relayed = [
            (e["type"], e["text"]) for e in events
            if e["type"] in ("message", "status") and e.get("from", e.get("nick")) == "nulsender"
        ]
        self.assertEqual(
            relayed, [("message", "hello"), ("message", "waves"), ("status", "away"), ("message", "last one")]
        )
        self.assertNotIn(b"\x00", watcher.received)
        self.assertEqual([line for line in sender.ping("after-nul", json_mode=False) if "Error" in line], [])

    def test_hundred_thousand_character_nick_refused(self) -> None:
        """
        A 100,000-character nick (as a bare first line, with /nick, in
        /whois and /msg) is line-too-long and one within the line limit is
        nick-invalid; the connection then registers normally.
        """
        huge = "n" * 100_000
        wide = "\u00e9" * 100_000
        text = self.connect()
        text.read_lines_until(lambda line: "Choose a nickname" in line)
        text.send_line(huge)
        [error] = text.ping("huge-bare", json_mode=False)
        self.assertIn("line-too-long", error)
        client = self.anonymous()
        client.send_line(f"/nick {huge}")
        client.send_line(f"/nick {wide}")
        client.send_line("/nick " + "n" * 4000)
        self.assertEqual(
            client.errors_before_pong("huge-nick"), ["line-too-long", "line-too-long", "nick-invalid"]
        )
        client.send_line("/nick hugeafter")
        client.read_events_until(lambda e: e["type"] == "history" and e["room"] == "#lobby")
        client.send_line(f"/whois {huge}")
        client.send_line(f"/msg {huge} hello")
        client.send_line("/whois " + "n" * 4000)
        self.assertEqual(
            client.errors_before_pong("huge-target"), ["line-too-long", "line-too-long", "no-such-nick"]
        )
        text.send_line("hugetext")
        text.read_lines_until(lambda line: line.startswith("*** You are hugetext."))

    def test_escapes_never_relayed_in_reasons_and_file_names(self) -> None:
        """
        Terminal escapes are removed from part and quit reasons and from a
        file offer's name, and a nick or room name holding one is refused.
        """
        sender = self.json_client("escsender")
        watcher = self.json_client("escwatcher")
        text_watch = self.connect()
        text_watch.read_lines_until(lambda line: "Choose a nickname" in line)
        text_watch.send_line("esctextwatch")
        text_watch.read_lines_until(lambda line: line.startswith("*** You are esctextwatch."))
        for client in (sender, watcher):
            client.join("#held-esc")
        text_watch.send_line("/join #held-esc")
        text_watch.read_lines_until(lambda line: line.endswith("joined #held-esc"))

        sender.send_line("/nick \x1b[31mred")
        sender.send_line("/join #held\x1b[31m")
        self.assertEqual(sender.errors_before_pong("names"), ["nick-invalid", "bad-arguments"])
        sender.send_line("/part #held-esc \x1b[2Jbye\x07 now")
        part = watcher.expect_event("part", nick="escsender")
        self.assertEqual(part["reason"], "[2Jbye now")
        sender.send_line("/upload escwatcher \x1b[31mevil\x07\x9b.txt 3")
        sender.read_events_until("upload-ready")
        sender.send(b"abc")
        sender.expect_event("upload-done")
        offer = watcher.expect_event("file-offer", {"from": "escsender"})
        self.assertEqual(CONTROL.findall(offer["name"]), [])
        self.assertTrue(offer["name"].endswith("evil.txt"), offer["name"])
        sender.send_line("/quit \x1b]0;owned\x07 gone")
        quit_event = watcher.expect_event("quit", nick="escsender")
        self.assertEqual(quit_event["reason"], "]0;owned gone")
        text_watch.read_lines_until(lambda line: "escsender" in line and "owned gone" in line)
        self.assertEqual(CONTROL.findall(watcher.received.decode().replace("\r\n", "")), [])
        for byte in (b"\x1b", b"\x07", "\x9b".encode()):
            self.assertNotIn(byte, text_watch.received)

    def test_homoglyph_nicks_refused(self) -> None:
        """
        Nicks that look like a user's but hold non-ASCII letters (Cyrillic,
        Greek, fullwidth, dotless i, Kelvin sign, long s) are nick-invalid,
        ones with invisible characters never register, and a look-alike
        never finds the user.
        """
        self.json_client("alice")
        self.json_client("kelvin")
        attacker = self.anonymous()
        look_alikes = [
            "\u0430lice",  # Cyrillic a
            "ali\u0441e",  # Cyrillic es
            "al\u0456ce",  # Cyrillic i
            "\u0391lice",  # Greek capital alpha
            "\uff41lice",  # fullwidth a
            "al\u0131ce",  # dotless i
            "\u212aelvin",  # Kelvin sign, which lower() folds to k
            "\u017felvin",  # long s
        ]
        for nick in look_alikes:
            attacker.send_line(f"/nick {nick}")
        events = attacker.ping("glyphs")
        self.assertEqual([e["type"] for e in events], ["error"] * len(look_alikes))
        self.assertEqual([e["code"] for e in events], ["nick-invalid"] * len(look_alikes))
        # Invisible characters: refused as such, or removed and then alice's nick is taken.
        for nick in ["ali\u200bce", "alice\u202e", "\u202ealice", "al\u2066ice\u2069"]:
            attacker.send_line(f"/nick {nick}")
            [event] = attacker.ping(f"invisible-{nick.encode('unicode-escape').decode()}")
            self.assertEqual(event["type"], "error", nick)
            self.assertIn(event["code"], ("nick-invalid", "nick-taken"), nick)
        text = self.connect()
        text.read_lines_until(lambda line: "Choose a nickname" in line)
        text.send_line("\u0430lice")
        [error] = text.ping("glyph-bare", json_mode=False)
        self.assertIn("nick-invalid", error)
        attacker.send_line("/nick glyphs")
        attacker.read_events_until("registered")
        for nick in look_alikes[:6]:
            attacker.send_line(f"/whois {nick}")
        self.assertEqual(attacker.errors_before_pong("glyph-whois"), ["no-such-nick"] * 6)


class StartRefusalTests(SynchronousTestCase):
    """
    C{twistd -n chat} on a data directory whose database cannot be used:
    exit status 1 and one line, no traceback, the file untouched.
    """

    def data_dir(self) -> str:
        """
        A new data directory, removed after the test, holding a database of
        the current schema with 2,000 messages (enough pages that cutting
        the file loses some).
        """
        tmp = tempfile.TemporaryDirectory(prefix="chat-held-")
        self.addCleanup(tmp.cleanup)
        path = os.path.join(tmp.name, "data")
        os.mkdir(path)
        with closing(schema.open_database(schema.path_in(path))) as db, db:
            db.executemany(
                "INSERT INTO messages (id, ts, room, room_key, sender, text) VALUES (?, ?, '#lobby', '#lobby', 'a', ?)",
                [(n, 1_700_000_000_000 + n, f"message {n} " + "x" * 200) for n in range(1, 2001)],
            )
        self.assertEqual(sorted(os.listdir(path)), ["chat.sqlite3"])
        return path

    def refused(self, data_dir: str, preexec_fn: Callable[[], None] | None = None) -> str:
        """
        Run C{twistd -n chat} on C{data_dir}; it must exit with status 1
        printing one line, without a traceback, leaving the database file
        as it was.

        @return: that line.
        """
        database = Path(schema.path_in(data_dir))
        before = database.read_bytes()
        result = subprocess.run(
            twistd_command() + [
                "-n", "--pidfile", "", "chat", "--listen", "tcp:0:interface=127.0.0.1", "--data-dir", data_dir,
            ],
            cwd=os.path.dirname(data_dir), stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
            preexec_fn=preexec_fn,
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertEqual(result.returncode, 1, output)
        self.assertNotIn("Traceback", output)
        lines = output.splitlines()
        self.assertEqual(len(lines), 1, output)
        self.assertTrue(lines[0].startswith("chat: "), output)
        self.assertEqual(database.read_bytes(), before, "the refused database was changed")
        return lines[0]

    def test_unreadable_database_refused(self) -> None:
        """
        A database file the daemon may not read stops start-up with one line.
        """
        path = self.data_dir()
        database = schema.path_in(path)
        os.chmod(database, 0)
        self.addCleanup(os.chmod, database, 0o600)
        preexec_fn = None
        if os.geteuid() == 0:
            # Root reads anything; without these two capabilities it obeys modes.
            libc = ctypes.CDLL(None, use_errno=True)
            pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2

            def drop_capabilities() -> None:
                for capability in (cap_dac_override, cap_dac_read_search):
                    if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
                        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

            preexec_fn = drop_capabilities
        try:
            probe = subprocess.run(
                ["cat", database], capture_output=True, preexec_fn=preexec_fn, timeout=10
            )
        except (OSError, subprocess.SubprocessError) as e:
            self.skipTest(f"cannot make the database unreadable here: {e}")
        if probe.returncode == 0:
            self.skipTest("cannot make the database unreadable here")
        line = self.refused(path, preexec_fn)
        self.assertIn("database", line)

    def test_truncated_database_refused(self) -> None:
        """
        A database cut to half its length stops start-up with one line.
        """
        path = self.data_dir()
        database = schema.path_in(path)
        os.truncate(database, os.path.getsize(database) // 2)
        self.assertIn("database", self.refused(path))

    def test_garbage_database_refused(self) -> None:
        """
        A file that is not an SQLite database stops start-up with one line.
        """
        path = self.data_dir()
        Path(schema.path_in(path)).write_bytes(b"this is not a database\n" * 4000)
        self.assertIn("not a database", self.refused(path))

    def test_newer_schema_database_refused(self) -> None:
        """
        A database from a newer chat (a higher schema version) stops start-up
        with one line saying so.
        """
        path = self.data_dir()
        with closing(sqlite3.connect(schema.path_in(path))) as db:
            db.execute(f"PRAGMA user_version={schema.VERSION + 1}")
        line = self.refused(path)
        self.assertIn(f"schema version {schema.VERSION + 1}, newer than this chat", line)


ACKED = re.compile(r"\Ar(\d\d) p(\d) n(\d+)\Z")
"""The text of a message of the kill loop: round, poster, number."""


@pytest.mark.slow
class KillLoopTests(SynchronousTestCase):
    """
    Twenty kill -9s of a daemon while clients post, on one data directory.
    """

    ROUNDS = 20
    POSTERS = 3

    def post(self, client: Client, nick: str, prefix: str, acked: list[tuple[str, int]], failed: list[str]) -> None:
        """
        Post numbered messages C{PREFIX nN}, each once the previous one came
        back, adding each acknowledged one (text, id) to C{acked}, until the
        connection breaks; anything else goes to C{failed}.
        """
        n = 0
        try:
            while True:
                text = f"{prefix} n{n}"
                client.send_line(text)
                echo = client.expect_event("message", {"from": nick}, text=text)
                acked.append((text, echo["id"]))
                n += 1
        except (Closed, OSError):
            pass
        except BaseException as e:  # noqa: B036 - reported by the test
            failed.append(f"{prefix}: {e!r}")

    def test_kill_loop_keeps_every_acknowledged_message_once(self) -> None:
        """
        After twenty rounds of start, three clients posting, kill -9, the
        database opens sound and holds every acknowledged message once
        under its acknowledged id, nothing that was not sent, and ids that
        increase from round to round.
        """
        daemon = Daemon(*FAST)
        self.addCleanup(daemon.stop)
        acked: dict[tuple[int, int], list[tuple[str, int]]] = {}
        failed: list[str] = []
        for round_ in range(self.ROUNDS):
            daemon.start()
            clients = [Client.json(daemon.port, f"poster{i}") for i in range(self.POSTERS)]
            threads = []
            for i, client in enumerate(clients):
                self.addCleanup(client.close)
                mine = acked.setdefault((round_, i), [])
                thread = threading.Thread(
                    target=self.post, args=(client, f"poster{i}", f"r{round_:02d} p{i}", mine, failed), daemon=True
                )
                thread.start()
                threads.append(thread)
            time.sleep(0.5 + (round_ % 6) * 0.1)
            daemon.kill()
            for thread in threads:
                thread.join(10)
                self.assertFalse(thread.is_alive(), "a poster still runs after the kill")
            for client in clients:
                client.close()
            for i in range(self.POSTERS):
                self.assertGreater(len(acked[round_, i]), 0, f"round {round_}: poster {i} got nothing through")
        self.assertEqual(failed, [])

        with closing(sqlite3.connect(schema.path_in(daemon.data_dir))) as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)])
            rows = db.execute("SELECT id, text FROM messages ORDER BY id").fetchall()
        stored: dict[str, int] = {}
        order: list[tuple[int, int, int]] = []
        for message_id, text in rows:
            self.assertNotIn(text, stored, "stored twice")
            stored[text] = message_id
            match = ACKED.match(text)
            assert match is not None, text
            order.append((int(match.group(1)), int(match.group(2)), int(match.group(3))))
        total = sum(len(messages) for messages in acked.values())
        for (round_, poster), messages in acked.items():
            for text, message_id in messages:
                self.assertEqual(stored.get(text), message_id, f"acknowledged, then lost or moved: {text}")
            numbers = [n for r, p, n in order if (r, p) == (round_, poster)]
            # In order, from 0, with at most the one unacknowledged message in flight at the kill.
            self.assertIn(numbers, [list(range(len(messages))), list(range(len(messages) + 1))], (round_, poster))
        self.assertEqual([r for r, _, _ in order], sorted(r for r, _, _ in order), "ids went back after a restart")
        self.assertGreater(total, self.ROUNDS * self.POSTERS * 5)


@pytest.mark.slow
class FanOutTests(SynchronousTestCase):
    """
    500 clients in one room each sending 20 messages at once.
    """

    CLIENTS = 500
    EACH = 20

    def test_every_message_delivered_to_everyone_in_order(self) -> None:
        """
        Each of 500 clients receives all 10,000 messages of the 500 senders,
        and each sender's 20 in the order sent.
        """
        daemon = Daemon(*FAST, "--max-connections-per-ip", "10000")
        self.addCleanup(daemon.stop)
        daemon.start()
        selector = selectors.DefaultSelector()
        self.addCleanup(selector.close)
        sockets: list[socket.socket] = []

        def close_all() -> None:
            for sock in sockets:
                sock.close()

        self.addCleanup(close_all)
        for i in range(self.CLIENTS):
            sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
            sockets.append(sock)
            sock.sendall(f"fan{i}\n".encode())  # a bare first line is the nick
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, i)

        def pump(on_data: Callable[[int, bytes], None], until: Callable[[], bool], what: str, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while not until():
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, f"not within {timeout}s: {what}")
                for key, _ in selector.select(left):
                    i = key.data
                    chunk = sockets[i].recv(1 << 20)
                    self.assertNotEqual(chunk, b"", f"fan{i} was disconnected")
                    on_data(i, chunk)

        greeted = [b""] * self.CLIENTS
        registered: set[int] = set()

        def on_registration(i: int, chunk: bytes) -> None:
            greeted[i] += chunk
            if i not in registered and f"*** You are fan{i}.".encode() in greeted[i]:
                registered.add(i)

        pump(on_registration, lambda: len(registered) == self.CLIENTS, "every client registered", 120)

        message = re.compile(rb"<fan(\d+)> m(\d+)\r\n")
        last = [[-1] * self.CLIENTS for _ in range(self.CLIENTS)]
        counts = [0] * self.CLIENTS
        rest = [b""] * self.CLIENTS
        disorder: list[str] = []
        errors: list[bytes] = []

        def on_message(i: int, chunk: bytes) -> None:
            data = rest[i] + chunk
            end = data.rfind(b"\n") + 1
            rest[i] = data[end:]
            complete = data[:end]
            if b"*** Error" in complete:
                errors.append(complete[complete.index(b"*** Error"):][:200])
            seen = last[i]
            for sender, number in message.findall(complete):
                s, n = int(sender), int(number)
                if n != seen[s] + 1 and len(disorder) < 10:
                    disorder.append(f"fan{i} got m{n} of fan{s} after m{seen[s]}")
                seen[s] = n
                counts[i] += 1

        for sock in sockets:
            sock.setblocking(True)
            sock.sendall(b"".join(f"m{n}\n".encode() for n in range(self.EACH)))
            sock.setblocking(False)
        total = self.CLIENTS * self.EACH
        pump(on_message, lambda: min(counts) >= total, "every message delivered to everyone", 180)
        self.assertEqual(errors, [])
        self.assertEqual(disorder, [])
        self.assertEqual(counts, [total] * self.CLIENTS)
        self.assertEqual(last, [[self.EACH - 1] * self.CLIENTS] * self.CLIENTS)


class TLSAttackTests(HeldTestCase):
    """
    STARTTLS injection and old or missing TLS, on a daemon with a STARTTLS
    certificate and an implicit-TLS C{ssl:} listener, keeping its history in
    SQLite (so that commits are pending while commands arrive).
    """

    directory: ClassVar[tempfile.TemporaryDirectory[str]]
    cafile: ClassVar[str]
    tls_port: ClassVar[int]

    @classmethod
    def setUpClass(cls) -> None:
        cls.directory = tempfile.TemporaryDirectory(prefix="chat-held-tls-")
        certificate, key = self_signed("localhost", 2)
        cls.cafile = os.path.join(cls.directory.name, "localhost.pem")
        key_path = os.path.join(cls.directory.name, "localhost.key")
        Path(cls.cafile).write_bytes(certificate)
        Path(key_path).write_bytes(key)
        cls.options = (
            *FAST, "--tls-cert", cls.cafile, "--tls-key", key_path,
            "--listen", f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cls.cafile}",
        )
        super().setUpClass()
        match = TLS_LISTENING.search(cls.daemon.wait_for_line(lambda line: TLS_LISTENING.search(line) is not None))
        assert match is not None
        cls.tls_port = int(match.group(1))

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            super().tearDownClass()
        finally:
            cls.directory.cleanup()

    def test_starttls_injection_never_runs(self) -> None:
        """
        Commands sent in clear text after /starttls (LF, CR NUL or telnet
        bytes in its packet, a later packet, one split across packets, one
        behind pending messages, one after the go-ahead, 300 KB of them)
        are never run, whether the handshake then succeeds or fails.
        """
        watcher = self.json_client("tlswatch")
        context = ssl.create_default_context(cafile=self.cafile)
        # (name, bytes with /starttls, bytes sent 50 ms later, bytes sent after the go-ahead)
        variants = [
            ("same packet, LF", b"/starttls\n{inject}", b"", b""),
            ("same packet, CR NUL", b"/starttls\r\0{inject_crnul}", b"", b""),
            ("telnet bytes", b"/starttls\r\n" + IAC + NOP + b"{inject}" + IAC + NOP, b"", b""),
            ("later packet", b"/starttls\n", b"{inject}", b""),
            ("split across packets", b"/starttls\n/ni", b"ck {mallory}\n", b""),
            ("behind pending messages", b"pending\n" * 50 + b"/starttls\n", b"{inject}", b""),
            ("after the go-ahead", b"/starttls\n", b"", b"{inject}"),
            ("300 KB of them", b"/starttls\n" + b"{inject}" * 5000, b"", b""),
        ]
        for number, (name, first, later, after) in enumerate(variants):
            mallory = f"mallory{number}"
            inject = f"/nick {mallory}\n/join #injected{number}\ninjected {number}\n".encode()
            values = {
                b"{inject}": inject,
                b"{inject_crnul}": inject.replace(b"\n", b"\r\0"),
                b"{mallory}": mallory.encode(),
            }

            def fill(template: bytes, values: dict[bytes, bytes] = values) -> bytes:
                for key, value in values.items():
                    template = template.replace(key, value)
                return template

            victim = self.json_client(f"victim{number}")
            victim.send(fill(first))
            if later:
                time.sleep(0.05)
                victim.send(fill(later))
            events = victim.read_events_until("info")
            self.assertEqual(events[-1]["text"], "Starting TLS: begin the handshake", name)
            self.assertEqual([e for e in events if e["type"] in ("nick", "error")], [], name)
            if after:
                victim.send(fill(after))
            try:
                secure = context.wrap_socket(victim.sock, server_hostname="localhost")
                victim.sock = secure
                secure.sendall(b"/ping over-tls\n")
                reply = b""
                while b"pong" not in reply:
                    chunk = secure.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
            except (ssl.SSLError, OSError):
                reply = b""  # refused: the clear text was taken for a broken handshake
            self.assertNotIn(b"mallory", reply, name)
            self.assertNotIn(b"injected", reply, name)
            watcher.send_line(f"/whois {mallory}")
            watcher.send_line("/rooms")
            seen = watcher.read_events_until("rooms")
            self.assertIn(("error", "no-such-nick"), [(e["type"], e.get("code")) for e in seen], name)
            self.assertNotIn(f"#injected{number}", [r["room"] for r in seen[-1]["rooms"]], name)
            self.assertEqual([e for e in seen if e.get("text", "").startswith("injected")], [], name)
            self.assertEqual([e for e in seen if e["type"] == "nick"], [], name)
        self.assertNotIn(b"injected", watcher.received)

    def test_plaintext_to_tls_port_refused(self) -> None:
        """
        A client speaking clear text to the TLS listener gets no welcome and
        is disconnected, and its commands never run.
        """
        client = self.connect(self.tls_port)
        client.sock.settimeout(0.5)
        with self.assertRaises(TimeoutError):
            client.sock.recv(1)  # no clear-text welcome: the daemon waits for a handshake
        client.send(b"/format json\n/nick plainmallory\nhello in clear text\n")
        data = client.read_until_closed(timeout=5)
        self.assertTrue(data == b"" or data.startswith(b"\x15"), data)  # nothing, or a TLS alert
        watcher = self.json_client("plainwatch")
        watcher.send_line("/whois plainmallory")
        self.assertEqual(watcher.errors_before_pong("plain"), ["no-such-nick"])

    def test_old_protocol_versions_refused(self) -> None:
        """
        ClientHellos offering only SSL 3.0, TLS 1.0 or TLS 1.1 get a fatal
        protocol_version alert, on the TLS listener and after /starttls.
        """
        for version, name in [(b"\x03\x00", "SSL 3.0"), (b"\x03\x01", "TLS 1.0"), (b"\x03\x02", "TLS 1.1")]:
            for how in ("TLS listener", "/starttls"):
                if how == "TLS listener":
                    client = self.connect(self.tls_port)
                else:
                    client = self.anonymous()
                    client.send_line("/starttls")
                    client.read_events_until("info")
                client.send(client_hello(version))
                data = client.read_until_closed(timeout=5)
                # One alert record (type 21, 2 bytes): fatal (2), protocol_version (70).
                self.assertEqual((data[:1], data[3:7]), (b"\x15", b"\x00\x02\x02\x46"), f"{name} over {how}: {data!r}")

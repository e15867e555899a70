"""
End-to-end tests of issue 3 (durable history, accounts, offline private
messages) against real C{twistd -n chat} processes on loopback: daemons are
killed (SIGKILL) or stopped (SIGTERM) and started again on the same data
directory, and what clients saw before must still be there after.

Every test fails if a daemon logs an unhandled error in any of its runs.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from twisted.trial.unittest import SynchronousTestCase

from tests.e2e import EXITED_ON_SIGTERM, TS, Client, Daemon

FAST = ("--flood-burst", "100000", "--flood-rate", "100000")
"""Flood limits out of the way, for tests that send many lines."""

DAY_MS = 86_400_000
"""A day in milliseconds, the unit of the C{ts} columns (chat/schema.py)."""

TAKEN_OVER = "you logged in from another connection"
"""The reason given to a session taken over by a login to its account."""


def messages(events: Iterable[dict[str, Any]], room: str | None = None) -> list[dict[str, Any]]:
    """
    The C{message} events among C{events}, of C{room} if given, in order.
    """
    return [e for e in events if e["type"] == "message" and (room is None or e["room"] == room)]


def of_type(events: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """
    The events of type C{kind}, in order.
    """
    return [e for e in events if e["type"] == kind]


def stream_events(raw: bytes) -> list[dict[str, Any]]:
    """
    The JSON events in everything a client received: the lines from the
    JSON C{welcome} on, without an unfinished last line (a connection cut
    by SIGKILL may end in the middle of one).
    """
    start = raw.find(b'{"type":"welcome"')
    if start < 0:
        return []
    lines = raw[start:].split(b"\r\n")[:-1]
    return [json.loads(line) for line in lines]


Predicate = Callable[[dict[str, Any]], bool]
"""A test on one decoded JSON event."""


def counting(kind: str, wanted: int, where: Predicate = lambda e: True) -> Predicate:
    """
    An event predicate that holds at the C{wanted}-th event of type C{kind}
    for which C{where} holds.
    """
    seen = 0

    def predicate(event: dict[str, Any]) -> bool:
        nonlocal seen
        if event["type"] == kind and where(event):
            seen += 1
        return seen >= wanted

    return predicate


class DurabilityTestCase(SynchronousTestCase):
    """
    Helpers for tests that run their own daemons and clients, all closed
    (and their logs checked) after the test.
    """

    def start_daemon(self, *options: str) -> Daemon:
        """
        A started daemon with C{options}, stopped and checked after the test.
        """
        daemon = Daemon(*options)
        self.addCleanup(daemon.stop)
        return daemon.start()

    def client(self, daemon: Daemon, nick: str) -> Client:
        """
        A JSON client registered as C{nick} on the current run of C{daemon}.
        """
        client = Client.json(daemon.port, nick)
        self.addCleanup(client.close)
        return client

    def anonymous(self, daemon: Daemon) -> Client:
        """
        A JSON client of the current run of C{daemon}, not registered.
        """
        client = Client.json_connect(daemon.port)
        self.addCleanup(client.close)
        return client

    def join(self, client: Client, room: str) -> list[dict[str, Any]]:
        """
        Join C{room}; returns the events up to its C{history}.
        """
        client.send_line(f"/join {room}")
        return client.read_events_until(lambda e: e["type"] == "history" and e["room"] == room)

    def say_all(self, client: Client, texts: list[str]) -> list[dict[str, Any]]:
        """
        Say each of C{texts} to the current room; returns the sender's own
        C{message} events for them, in order.
        """
        for text in texts:
            client.send_line(text)
        said = client.read_events_until(counting("message", len(texts), lambda e: e["text"] in texts))
        mine = [m for m in messages(said) if m["text"] in texts]
        self.assertEqual([m["text"] for m in mine], texts)
        return mine

    def history(self, client: Client, count: int, room: str) -> dict[str, Any]:
        """
        Ask for C{/history COUNT ROOM}; returns the answer, a C{history}
        event or an C{error}.
        """
        client.ping("before-history")
        client.send_line(f"/history {count} {room}")
        return client.read_events_until(lambda e: e["type"] in ("history", "error"))[-1]

    def login(self, daemon: Daemon, nick: str, password: str) -> tuple[Client, list[dict[str, Any]]]:
        """
        A new connection that logs in with C{/login NICK PASSWORD} as its
        first command; returns it and every event up to the pong of a ping
        sent after its C{history} of C{#lobby} (so the offline private
        messages, if any, are included).
        """
        client = self.anonymous(daemon)
        client.send_line(f"/login {nick} {password}")
        events = client.read_events_until(
            lambda e: e["type"] == "error" or (e["type"] == "history" and e["room"] == "#lobby")
        )
        self.assertEqual(of_type(events, "error"), [])
        return client, events + client.ping("logged-in")

    def failed_login(self, client: Client, nick: str, password: str) -> float:
        """
        Send a C{/login} that must fail; returns the seconds until its error,
        which must be C{auth-failed}.
        """
        started = time.monotonic()
        client.send_line(f"/login {nick} {password}")
        error = client.read_events_until("error")[-1]
        self.assertEqual(error["code"], "auth-failed", error)
        return time.monotonic() - started

    def assert_increasing(self, ids: list[int]) -> None:
        """
        @raise AssertionError: C{ids} are not strictly increasing.
        """
        self.assertEqual(ids, sorted(set(ids)))


class KillTests(DurabilityTestCase):
    """
    SIGKILL while messages flow loses nothing any client saw.
    """

    def test_kill_9_loses_no_delivered_message(self) -> None:
        """
        Every room message any client received before the daemon was killed
        with SIGKILL mid-flood is in /history after a restart on the same
        data directory, unchanged; the flood's stored messages are a gapless
        prefix of what was sent; ids stay strictly increasing, and new
        messages get ids above every old one, private ones included.
        """
        daemon = self.start_daemon(*FAST)
        watch = self.client(daemon, "watch")
        self.join(watch, "#k9")
        alice = self.client(daemon, "alice")
        bob = self.client(daemon, "bob")
        self.join(bob, "#k9")
        flooder = self.client(daemon, "flooder")
        self.join(flooder, "#k9")

        self.say_all(alice, [f"alice {n}" for n in range(5)])
        self.say_all(bob, [f"bob {n}" for n in range(5)])
        alice.send_line("/msg bob psst")
        bob.send_line("/msg alice hush")
        bob.expect_event("private", {"from": "alice"}, text="psst")
        alice.expect_event("private", {"from": "bob"}, text="hush")
        # #k9 gets at most 400 flood lines: /history 500 covers it all.
        total = 800
        sent = 0
        stop = threading.Event()

        def flood() -> None:
            nonlocal sent
            try:
                for n in range(total):
                    if stop.is_set():
                        return
                    line = f"flood {n // 2}\n" if n % 2 == 0 else f"/msg watch pm {n // 2}\n"
                    flooder.send(line.encode())
                    sent = n + 1
                    time.sleep(0.001)
            except OSError:
                pass

        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 5)
        self.addCleanup(stop.set)
        watch.read_events_until(counting("message", 60, lambda e: e["from"] == "flooder"), timeout=10)
        self.assertEqual(daemon.kill(), -signal.SIGKILL)
        self.assertLess(sent, total, "the flood was over before the kill")
        stop.set()
        thread.join(5)

        received: dict[int, dict[str, Any]] = {}
        private_ids: set[int] = set()
        for client in (watch, alice, bob, flooder):
            client.read_until_closed(timeout=5)
            events = stream_events(client.received)
            for event in messages(events):
                received.setdefault(event["id"], event)
                self.assertEqual(received[event["id"]], event)
            private_ids.update(e["id"] for e in of_type(events, "private"))
        flood_seen = [e["text"] for e in messages(stream_events(watch.received)) if e["from"] == "flooder"]
        self.assertGreaterEqual(len(flood_seen), 60)
        self.assertEqual(flood_seen, [f"flood {n}" for n in range(len(flood_seen))])

        daemon.start()
        after = self.client(daemon, "after")
        stored: dict[int, dict[str, Any]] = {}
        for room in ("#lobby", "#k9"):
            history = self.history(after, 500, room)
            self.assertEqual(history["type"], "history", history)
            self.assertEqual(history["room"], room)
            ids = [m["id"] for m in history["messages"]]
            self.assertEqual(len(ids), len(set(ids)), room)
            self.assert_increasing(ids)
            stored.update((m["id"], m) for m in history["messages"])
        missing = sorted(set(received) - set(stored))
        self.assertEqual(missing, [], f"delivered before the kill, lost after it: {missing}")
        for message_id, message in received.items():
            self.assertEqual(stored[message_id], message)
        flood_stored = [m["text"] for m in stored.values() if m["from"] == "flooder"]
        self.assertEqual(flood_stored, [f"flood {n}" for n in range(len(flood_stored))])
        self.assertGreaterEqual(len(flood_stored), len(flood_seen))

        fresh = self.say_all(after, ["after the kill"])[0]
        self.assertGreater(fresh["id"], max([*stored, *received, *private_ids]))
        after.send_line("/msg after note to self")
        note = after.expect_event("private", {"from": "after"})
        self.assertGreater(note["id"], fresh["id"])


class RestartTests(DurabilityTestCase):
    """
    History, accounts and offline messages across a clean stop (SIGTERM)
    and start on the same data directory.
    """

    def test_history_survives_clean_restart(self) -> None:
        """
        After SIGTERM and a restart, joining #lobby replays exactly its last
        50 messages as they were first delivered, /history reads a room
        nobody is in (under its first spelling, whatever the case asked),
        an unknown room is no-such-room, and ids keep increasing.
        """
        daemon = self.start_daemon(*FAST)
        alice = self.client(daemon, "alice")
        lobby = self.say_all(alice, [f"lobby {n}" for n in range(60)])
        self.join(alice, "#Quiet")
        quiet = self.say_all(alice, ["quiet 0", "quiet 1", "quiet 2"])
        alice.send_line("/me hums")
        quiet.append(alice.expect_event("message", action=True))
        self.assertEqual(quiet[-1]["text"], "hums")
        self.assertIn(daemon.halt(), EXITED_ON_SIGTERM)
        alice.read_until_closed()
        events = stream_events(alice.received)
        self.assertEqual(events[-1], {"type": "bye", "reason": "server shutting down"})

        daemon.start()
        carol = self.client(daemon, "carol")
        replay = carol.registration[-1]
        self.assertEqual(replay, {"type": "history", "room": "#lobby", "messages": lobby[-50:]})
        for message in replay["messages"]:
            self.assertRegex(message["ts"], TS)
        history = self.history(carol, 500, "#QUIET")
        self.assertEqual(history, {"type": "history", "room": "#Quiet", "messages": quiet})
        self.assertEqual(self.history(carol, 2, "#quiet")["messages"], quiet[-2:])
        self.assertEqual(self.history(carol, 5, "#lobby")["messages"], lobby[-5:])
        error = self.history(carol, 20, "#never")
        self.assertEqual(error["type"], "error")
        self.assertEqual(error["code"], "no-such-room")
        self.assertEqual(self.history(carol, 500, "#lobby")["messages"], lobby)
        fresh = self.say_all(carol, ["fresh"])[0]
        self.assertGreater(fresh["id"], quiet[-1]["id"])

    def test_accounts_survive_restart(self) -> None:
        """
        An account made with /register survives restarts: its nick is
        refused to guests (nick-registered), a wrong password is auth-failed
        after about a second, the right one (any case of the nick) gives
        registered with account true under the registered spelling, /whois
        tells account true; /password changes it for good.
        """
        daemon = self.start_daemon()
        owner = self.client(daemon, "Alice3")
        owner.send_line("/register short")
        owner.send_line("/register two words")
        self.assertEqual(
            [e["code"] for e in of_type(owner.ping("short"), "error")], ["bad-arguments", "bad-arguments"]
        )
        owner.send_line("/register sesame-open-1")
        events = owner.read_events_until("info")
        self.assertEqual(
            of_type(events, "registered"), [{"type": "registered", "nick": "Alice3", "account": True}]
        )
        self.assertIn("/login Alice3", events[-1]["text"])
        self.assertIn(daemon.halt(), EXITED_ON_SIGTERM)

        daemon.start()
        guest = self.client(daemon, "guest3")
        guest.send_line("/nick alice3")
        self.assertEqual([e["code"] for e in of_type(guest.ping("nick"), "error")], ["nick-registered"])
        stranger = self.anonymous(daemon)
        stranger.send_line("/nick ALICE3")
        self.assertEqual([e["code"] for e in of_type(stranger.ping("nick"), "error")], ["nick-registered"])
        self.assertGreaterEqual(self.failed_login(stranger, "alice3", "wrong-password"), 0.9)
        self.assertGreaterEqual(self.failed_login(stranger, "nobody3", "sesame-open-1"), 0.9)

        user, events = self.login(daemon, "ALICE3", "sesame-open-1")
        self.assertEqual(events[0], {"type": "registered", "nick": "Alice3", "account": True})
        self.assertIn({"type": "join", "ts": events[1]["ts"], "room": "#lobby", "nick": "Alice3"}, events)
        guest.send_line("/whois alice3")
        whois = guest.expect_event("whois")
        self.assertEqual((whois["nick"], whois["account"], whois["secure"]), ("Alice3", True, False))
        guest.send_line("/whois guest3")
        self.assertEqual(guest.expect_event("whois")["account"], False)

        user.send_line("/password sesame-open-1 short")
        self.assertEqual([e["code"] for e in of_type(user.ping("short"), "error")], ["bad-arguments"])
        user.send_line("/password sesame-open-1 new-secret-22")
        self.assertEqual(user.expect_event("info")["text"], "Your password is changed")
        self.assertEqual(of_type(user.ping("changed"), "error"), [])
        daemon.halt()

        daemon.start()
        old = self.anonymous(daemon)
        old.send_line("/login alice3 sesame-open-1")  # answered after ~1 s, while the next one logs in
        _, events = self.login(daemon, "alice3", "new-secret-22")
        self.assertEqual(events[0], {"type": "registered", "nick": "Alice3", "account": True})
        self.assertEqual(old.read_events_until("error")[-1]["code"], "auth-failed")

    def test_offline_private_messages_delivered_once(self) -> None:
        """
        A private message to a registered nick that is away is echoed to
        the sender with offline true, with an info; after a restart the
        recipient gets it once, at login, exactly as echoed, and no later
        login (even after another restart) delivers it again.
        """
        daemon = self.start_daemon()
        bob = self.client(daemon, "bob5")
        bob.send_line("/register bob5-password")
        bob.expect_event("registered", account=True)
        bob.send_line("/quit")
        bob.read_until_closed()
        alice = self.client(daemon, "alice5")
        alice.send_line("/msg BOB5 hi")
        events = alice.read_events_until("info")
        echoes = of_type(events, "private")
        self.assertEqual(len(echoes), 1, events)
        alice.send_line("/msg bob5 second one")
        echoes.append(alice.expect_event("private"))
        for echo, text in zip(echoes, ("hi", "second one")):
            self.assertEqual(
                {k: v for k, v in echo.items() if k not in ("id", "ts")},
                {
                    "type": "private", "from": "alice5", "to": "bob5",
                    "text": text, "action": False, "offline": True,
                },
            )
            self.assertRegex(echo["ts"], TS)
        self.assertLess(echoes[0]["id"], echoes[1]["id"])
        alice.send_line("/msg nobody5 hi")
        self.assertEqual([e["code"] for e in of_type(alice.ping("nobody"), "error")], ["no-such-nick"])
        daemon.halt()

        daemon.start()
        bob, events = self.login(daemon, "bob5", "bob5-password")
        self.assertEqual(of_type(events, "private"), echoes)
        notes = [e["text"] for e in of_type(events, "info")]
        self.assertEqual(notes, ["2 private messages arrived while you were away"])
        self.assertLess(events.index(of_type(events, "info")[0]), events.index(echoes[0]))
        bob.send_line("/quit")
        bob.read_until_closed()
        again, events = self.login(daemon, "bob5", "bob5-password")
        self.assertEqual(of_type(events, "private"), [])
        self.assertEqual(of_type(events, "info"), [])
        again.send_line("/quit")
        again.read_until_closed()
        daemon.halt()

        daemon.start()
        _, events = self.login(daemon, "bob5", "bob5-password")
        self.assertEqual(of_type(events, "private"), [])
        self.assertEqual(of_type(events, "info"), [])


class RetentionTests(DurabilityTestCase):
    """
    --history-days prunes old messages when the daemon starts.
    """

    def age_rows(self, daemon: Daemon) -> tuple[int, int]:
        """
        Make the stored room messages whose text starts with C{old} and the
        private ones whose text is C{old pm} ten days older.

        @return: how many room and private rows were aged.
        """
        connection = sqlite3.connect(os.path.join(daemon.data_dir, "chat.sqlite3"))
        try:
            with connection:
                rooms = connection.execute(
                    "UPDATE messages SET ts = ts - ? WHERE text LIKE 'old%'", (10 * DAY_MS,)
                ).rowcount
                private = connection.execute(
                    "UPDATE private SET ts = ts - ? WHERE text = 'old pm'", (10 * DAY_MS,)
                ).rowcount
        finally:
            connection.close()
        return rooms, private

    def populate(self) -> Daemon:
        """
        A daemon, stopped, whose store holds 4 old and 4 recent messages in
        #lobby, 3 old ones in #olden, and an old and a recent private
        message waiting for bob7; then the old ones are aged ten days.
        """
        daemon = self.start_daemon()
        bob = self.client(daemon, "bob7")
        bob.send_line("/register bob7-password")
        bob.expect_event("registered", account=True)
        bob.send_line("/quit")
        bob.read_until_closed()
        alice = self.client(daemon, "alice7")
        self.say_all(alice, [f"old {n}" for n in range(4)] + [f"recent {n}" for n in range(4)])
        self.join(alice, "#olden")
        self.say_all(alice, [f"old olden {n}" for n in range(3)])
        for text in ("old pm", "recent pm"):
            alice.send_line(f"/msg bob7 {text}")
            alice.expect_event("private", text=text)
        self.assertIn(daemon.halt(), EXITED_ON_SIGTERM)
        self.assertEqual(self.age_rows(daemon), (7, 1))
        return daemon

    def test_history_days_prunes_at_start(self) -> None:
        """
        Started with --history-days 5 on a store holding messages ten days
        old, the daemon deletes them at once: /history shows only the recent
        ones, a room left with none is no-such-room, and only the recent
        offline private message is delivered.
        """
        daemon = self.populate()
        daemon.start(extra=("--history-days", "5"))
        daemon.wait_for_line(lambda line: "pruned 8 messages older than 5 days" in line)
        carol = self.client(daemon, "carol7")
        history = self.history(carol, 500, "#lobby")
        self.assertEqual([m["text"] for m in history["messages"]], [f"recent {n}" for n in range(4)])
        error = self.history(carol, 500, "#olden")
        self.assertEqual((error["type"], error["code"]), ("error", "no-such-room"))
        _, events = self.login(daemon, "bob7", "bob7-password")
        self.assertEqual([e["text"] for e in of_type(events, "private")], ["recent pm"])
        self.assertEqual(
            [e["text"] for e in of_type(events, "info")], ["1 private message arrived while you were away"]
        )

    # The lobby's history is read before the first pruning: the replay must not show what it prunes.
    def test_history_days_prunes_replay_on_join(self) -> None:
        """
        Started with --history-days 5 on a store holding messages ten days
        old, the history replayed on joining #lobby holds only the recent
        ones.
        """
        daemon = self.populate()
        daemon.start(extra=("--history-days", "5"))
        daemon.wait_for_line(lambda line: "pruned 8 messages older than 5 days" in line)
        carol = self.client(daemon, "carol7")
        replay = carol.registration[-1]
        self.assertEqual([m["text"] for m in replay["messages"]], [f"recent {n}" for n in range(4)])


class AccountTests(DurabilityTestCase):
    """
    Accounts on one daemon without restarts: take-over of a session, and
    plaintext authentication from loopback.
    """

    daemon: ClassVar[Daemon]

    @classmethod
    def setUpClass(cls) -> None:
        cls.daemon = Daemon().start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.stop()

    def setUp(self) -> None:
        self.addCleanup(self.daemon.assert_clean)

    def test_login_takes_over_the_other_session(self) -> None:
        """
        Logging in to an account from a second connection while a first one
        holds it closes the first with bye (others see it quit, then the
        nick come back), and the second gets the nick with account true;
        so does a guest logging in, whose nick changes.
        """
        first = self.client(self.daemon, "bob4")
        first.send_line("/register hunter2-hunter2")
        first.expect_event("registered", account=True)
        observer = self.client(self.daemon, "obs4")

        second, events = self.login(self.daemon, "bob4", "hunter2-hunter2")
        self.assertEqual(events[0], {"type": "registered", "nick": "bob4", "account": True})
        rest = first.read_until_closed()
        self.assertEqual(stream_events(first.received)[-1], {"type": "bye", "reason": TAKEN_OVER})
        self.assertTrue(rest.endswith(b"\r\n"), rest)
        seen = observer.read_events_until(lambda e: e["type"] == "join" and e["nick"] == "bob4")
        quits = of_type(seen, "quit")
        self.assertEqual([(q["nick"], q["reason"]) for q in quits], [("bob4", TAKEN_OVER)])
        observer.send_line("/whois bob4")
        self.assertEqual(observer.expect_event("whois")["account"], True)

        guest = self.client(self.daemon, "tmp4")
        guest.send_line("/login BOB4 hunter2-hunter2")
        events = guest.read_events_until("registered")
        self.assertEqual(events[-1], {"type": "registered", "nick": "bob4", "account": True})
        nicks = [(e["old"], e["new"]) for e in of_type(events, "nick")]
        self.assertEqual(nicks, [("tmp4", "bob4")])
        second.read_until_closed()
        self.assertEqual(stream_events(second.received)[-1], {"type": "bye", "reason": TAKEN_OVER})
        seen = observer.read_events_until(lambda e: e["type"] == "nick" and e["new"] == "bob4")
        self.assertEqual([(q["nick"], q["reason"]) for q in of_type(seen, "quit")], [("bob4", TAKEN_OVER)])
        guest.send_line("hello as bob4")
        self.assertEqual(observer.expect_event("message", text="hello as bob4")["from"], "bob4")

    def test_plaintext_auth_allowed_from_loopback(self) -> None:
        """
        Without --allow-plaintext-auth, /register and /login over plain TCP
        from 127.0.0.1 are accepted (no auth-needs-tls).
        """
        carol = self.client(self.daemon, "carol8")
        carol.send_line("/register carol8-password")
        events = carol.read_events_until("info") + carol.ping("registered")
        self.assertEqual(of_type(events, "error"), [])
        self.assertEqual(
            of_type(events, "registered"), [{"type": "registered", "nick": "carol8", "account": True}]
        )
        carol.send_line("/quit")
        carol.read_until_closed()
        _, events = self.login(self.daemon, "carol8", "carol8-password")
        self.assertEqual(events[0], {"type": "registered", "nick": "carol8", "account": True})
        self.assertEqual(of_type(events, "error"), [])


class ManyWritersTests(DurabilityTestCase):
    """
    Many clients writing at once to one room of the SQLite store.
    """

    WRITERS = 20
    EACH = 50

    def test_many_writers_all_see_one_order(self) -> None:
        """
        20 clients each sending 50 lines at once all receive all 1000
        messages in the same order, with strictly increasing ids and each
        sender's lines in the order sent; /history 500 then holds exactly
        the last 500 of them.
        """
        daemon = self.start_daemon(*FAST)
        writers = [self.client(daemon, f"w{i}") for i in range(self.WRITERS)]
        for writer in writers:
            writer.ping("ready")
        for i, writer in enumerate(writers):
            writer.send(b"".join(f"w{i} line {n}\n".encode() for n in range(self.EACH)))
        total = self.WRITERS * self.EACH
        seen = []
        for writer in writers:
            events = writer.read_events_until(counting("message", total), timeout=20)
            self.assertEqual(of_type(events, "error"), [])
            seen.append(messages(events))
        first = seen[0]
        self.assertEqual(len(first), total)
        for other in seen[1:]:
            self.assertEqual(other, first)
        self.assert_increasing([m["id"] for m in first])
        for i in range(self.WRITERS):
            texts = [m["text"] for m in first if m["from"] == f"w{i}"]
            self.assertEqual(texts, [f"w{i} line {n}" for n in range(self.EACH)])
        history = self.history(writers[0], 500, "#lobby")
        self.assertEqual(history["messages"], first[-500:])

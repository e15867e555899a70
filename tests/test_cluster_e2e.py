"""
End to end: three real C{twistd -n chat} daemons sharing one PostgreSQL
database and one Redis (PROTOCOL.md section 13, issue 23), on the real
servers of L{tests.servers} (skipped with the reason when they cannot
start), with nc-style line users on each.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import urllib.request

import pytest
from twisted.trial.unittest import TestCase

from tests import servers
from tests.e2e import Client, Daemon

BUS_READY = "cluster bus of node"
WEB_LISTENING = re.compile(r"chat web listening on 127\.0\.0\.1:(\d+)")


def web_port(daemon: Daemon) -> int:
    """The port of a daemon's web listener."""
    match = WEB_LISTENING.search(daemon.wait_for_line(lambda text: WEB_LISTENING.search(text) is not None))
    assert match is not None
    return int(match.group(1))


class ClusterTests(TestCase):
    """
    Users on three daemons of one cluster.
    """

    def setUp(self) -> None:
        self.postgres = servers.postgres()
        self.redis = servers.redis()
        self.postgres.reset()
        self.redis.flush()

    def daemon(self, node: str, *options: str) -> Daemon:
        """A daemon of the cluster named C{node} (with more C{options}), once its bus is on Redis."""
        daemon = Daemon("--postgres", self.postgres.dsn, "--redis", self.redis.url, "--node", node, *options)
        self.addCleanup(daemon.stop)
        daemon.start()
        daemon.wait_for_line(lambda text: BUS_READY in text)
        return daemon

    def user(self, daemon: Daemon, nick: str) -> Client:
        client = Client.text(daemon.port, nick)
        self.addCleanup(client.close)
        return client

    def test_room_private_and_nicks_across_daemons(self) -> None:
        """A room message reaches every daemon's members, a private message its user, and a nick is one per cluster."""
        a, b, c = self.daemon("a"), self.daemon("b"), self.daemon("c")
        alice = self.user(a, "alice")
        bob = self.user(b, "bob")
        carol = self.user(c, "carol")
        alice.read_lines_until(lambda text: "carol joined #lobby" in text)
        bob.read_lines_until(lambda text: "carol joined #lobby" in text)
        alice.send_line("hello cluster")
        for other in (bob, carol):
            other.read_lines_until(lambda text: text.endswith("#lobby <alice> hello cluster"))
        bob.send_line("/msg alice psst")
        alice.read_lines_until(lambda text: "[private bob -> alice] psst" in text)
        bob.send_line("/whois alice")
        bob.read_lines_until(lambda text: "on node a" in text)
        carol.send_line("/list")
        listed = carol.read_lines_until(lambda text: "@" in text or "users in #lobby" in text)
        carol.read_lines_until(lambda text: "bob" in text and "idle" in text)
        dave = Client(c.port)
        self.addCleanup(dave.close)
        dave.read_lines_until(lambda text: "Choose a nickname" in text)
        dave.send_line("alice")
        refused = dave.read_lines_until(lambda text: "taken" in text or "You are" in text)
        self.assertIn("taken", refused[-1], listed)
        for daemon in (a, b, c):
            daemon.assert_clean()

    @pytest.mark.slow
    def test_dead_daemon_users_quit(self) -> None:
        """kill -9 of a daemon: its users quit on the others within the bound (lease, watch, settle), nobody else."""
        a, b = self.daemon("a"), self.daemon("b")
        alice = self.user(a, "alice")
        bob = self.user(b, "bob")
        alice.read_lines_until(lambda text: "bob joined #lobby" in text)
        began = time.monotonic()
        a.kill()
        bob.read_lines_until(lambda text: "alice quit" in text, timeout=60)
        self.assertLess(time.monotonic() - began, 60)
        bob.send_line("still here")
        bob.read_lines_until(lambda text: text.endswith("#lobby <bob> still here"))
        b.assert_clean()

    def test_daemon_started_later_learns_the_users(self) -> None:
        """A daemon started after users joined elsewhere lists them, and sees them quit."""
        a = self.daemon("a")
        alice = self.user(a, "alice")
        b = self.daemon("b")
        bob = self.user(b, "bob")
        alice.read_lines_until(lambda text: "bob joined #lobby" in text)
        # b learns alice from a's answer to its hello, which may still be on its way.
        deadline = time.monotonic() + 10
        while True:
            bob.send_line("/list")
            listed = bob.read_lines_until(lambda text: "bob (idle" in text)
            if any("alice" in text for text in listed) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertTrue(any("alice" in text for text in listed), listed)
        alice.send_line("/quit bye")
        bob.read_lines_until(lambda text: "alice quit" in text)
        bob.send_line("/list")
        listed = bob.read_lines_until(lambda text: "user in #lobby" in text or "users in #lobby" in text)
        self.assertIn("1 user in #lobby", listed[-1])

    def test_restarted_daemon_users_quit_at_once(self) -> None:
        """A daemon killed and started again under its name: its former users quit on the others at its return."""
        a, b = self.daemon("a"), self.daemon("b")
        alice = self.user(a, "alice")
        bob = self.user(b, "bob")
        alice.read_lines_until(lambda text: "bob joined #lobby" in text)
        a.kill()
        began = time.monotonic()
        a.start()
        a.wait_for_line(lambda text: BUS_READY in text)
        bob.read_lines_until(lambda text: "alice quit" in text, timeout=15)
        self.assertLess(time.monotonic() - began, 15)
        alice = self.user(a, "alice")
        bob.read_lines_until(lambda text: "alice joined #lobby" in text)

    def test_file_offered_on_one_daemon_fetched_from_another(self) -> None:
        """
        With a shared --spool, a file offered on one daemon is announced
        and served by another; its id is above the messages said before it.
        """
        spool = tempfile.mkdtemp(prefix="chat-cluster-spool-")
        self.addCleanup(shutil.rmtree, spool, True)
        web = ("--web", "tcp:0:interface=127.0.0.1", "--spool", spool)
        a, b = self.daemon("a", *web), self.daemon("b", *web)
        alice = Client.json(a.port, "alice")
        self.addCleanup(alice.close)
        bob = Client.json(b.port, "bob")
        self.addCleanup(bob.close)
        alice.expect_event("join", nick="bob")
        bob.send_line("said before the offer")
        said = alice.expect_event("message", text="said before the offer")
        token = next(e["token"] for e in alice.registration if e.get("type") == "registered")
        body = bytes(range(256)) * 100
        request = urllib.request.Request(
            f"http://127.0.0.1:{web_port(a)}/files?to=%23lobby&name=shared.bin", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            self.assertEqual(answer.status, 201)
        offer = bob.expect_event("file-offer")
        self.assertEqual((offer["from"], offer["name"], offer["size"]), ("alice", "shared.bin", len(body)))
        self.assertGreater(offer["id"], said["id"])  # a client sorting by id shows it after that message
        bob_token = next(e["token"] for e in bob.registration if e.get("type") == "registered")
        fetch = urllib.request.Request(
            f"http://127.0.0.1:{web_port(b)}/files/{offer['id']}", headers={"Authorization": f"Bearer {bob_token}"},
        )
        with urllib.request.urlopen(fetch, timeout=10) as download:
            self.assertEqual(download.read(), body)

    def test_same_nick_at_once_on_two_daemons(self) -> None:
        """Two users asking for the same free nick on two daemons at once: one gets it, the other is refused."""
        a, b = self.daemon("a"), self.daemon("b")
        first, second = Client(a.port), Client(b.port)
        for client in (first, second):
            self.addCleanup(client.close)
            client.read_lines_until(lambda text: "Choose a nickname" in text)
        first.send_line("zed")
        second.send_line("zed")
        outcomes = sorted(
            client.read_lines_until(lambda text: "You are zed" in text or "taken" in text)[-1]
            for client in (first, second)
        )
        self.assertEqual(sum("You are zed" in text for text in outcomes), 1, outcomes)
        self.assertEqual(sum("zed is taken" in text for text in outcomes), 1, outcomes)

    def test_redis_restart_during_traffic(self) -> None:
        """
        Redis restarted while a user talks: every message acknowledged to
        its sender (echoed, so stored) reaches the other daemon once, in
        order, checked by id.
        """
        a, b = self.daemon("a"), self.daemon("b")
        alice = self.json_user(a, "alice")
        bob = self.json_user(b, "bob")
        alice.expect_event("join", nick="bob")
        acknowledged = []
        for number in range(30):
            alice.send_line(f"m{number}")
            acknowledged.append(alice.expect_event("message", text=f"m{number}")["id"])
            if number == 10:
                self.redis.restart()
        said = [bob.expect_event("message", timeout=30) for _ in range(30)]
        self.assertEqual([(m["id"], m["text"]) for m in said], [(i, f"m{n}") for n, i in enumerate(acknowledged)])
        a.wait_for_line(lambda text: "Redis is back" in text)
        bob.send_line("after the restart")
        alice.expect_event("message", text="after the restart", timeout=15)
        bob.send_line("/ping end")  # and nothing twice
        rest = bob.read_events_until(lambda e: e["type"] == "pong")
        self.assertEqual([e["text"] for e in rest if e["type"] == "message"], ["after the restart"])

    def test_account_and_history_from_any_daemon(self) -> None:
        """An account registered on one daemon logs in on another, where the history of the first is read."""
        a, b = self.daemon("a"), self.daemon("b")
        alice = Client.json(a.port, "alice")
        self.addCleanup(alice.close)
        alice.send_line("/register password1")
        alice.expect_event("info")
        alice.send_line("said on a")
        said = alice.expect_event("message")
        alice.send_line("/quit")
        again = Client.json_connect(b.port)
        self.addCleanup(again.close)
        again.send_line("/login alice password1")
        registered = again.expect_event("registered", timeout=15)
        self.assertEqual((registered["nick"], registered["account"]), ("alice", True))
        again.send_line("/history 5 #lobby")
        history = again.expect_event("history")
        self.assertIn(said["id"], [m["id"] for m in history["messages"]])

    def wait_known(self, client: Client, nick: str, known: bool = True, timeout: float = 15) -> None:
        """
        Ask C{/whois nick} until the daemon of C{client} knows C{nick} (a
        user of another daemon), or, with C{known} false, no longer does.
        """
        deadline = time.monotonic() + timeout
        while True:
            client.send_line(f"/whois {nick}")
            answer = client.read_events_until(lambda e: e["type"] in ("whois", "error"))[-1]
            if (answer["type"] == "whois") == known:
                return
            self.assertLess(time.monotonic(), deadline, f"{nick} still {'un' if known else ''}known after {timeout} s")
            time.sleep(0.05)

    def json_user(self, daemon: Daemon, nick: str) -> Client:
        client = Client.json(daemon.port, nick)
        self.addCleanup(client.close)
        return client

    def test_messages_in_id_order_on_every_daemon(self) -> None:
        """
        Users on three daemons talking at once in one room: every daemon
        delivers the same messages in the same order, the order of their
        ids, which are consecutive (numbered as committed, across daemons).
        """
        daemons = [self.daemon(node) for node in ("a", "b", "c")]
        speakers = [self.json_user(d, f"speaker{i}") for i, d in enumerate(daemons)]
        watchers = [self.json_user(d, f"watcher{i}") for i, d in enumerate(daemons)]
        for watcher in watchers:  # everyone is known everywhere before the talk
            for other in range(3):
                self.wait_known(watcher, f"watcher{other}")
        rounds = 25
        for number in range(rounds):
            for i, speaker in enumerate(speakers):
                speaker.send_line(f"{i}:{number}")
        seen = []
        for watcher in watchers:
            said = [watcher.expect_event("message", timeout=30) for _ in range(3 * rounds)]
            seen.append([(m["id"], m["text"]) for m in said])
        ids = [message_id for message_id, _ in seen[0]]
        self.assertEqual(ids, list(range(ids[0], ids[0] + 3 * rounds)))
        self.assertEqual(seen[1], seen[0])
        self.assertEqual(seen[2], seen[0])
        for i in range(3):  # each speaker's lines in the order said
            mine = [text for _, text in seen[0] if text.startswith(f"{i}:")]
            self.assertEqual(mine, [f"{i}:{number}" for number in range(rounds)])

    def test_missed_messages_read_from_postgres(self) -> None:
        """
        A daemon that dies with messages committed but never published
        (Redis was down): the others read them from PostgreSQL by id once
        Redis is back, and deliver them once, in order, before what is said
        next.
        """
        a, b, c = self.daemon("a"), self.daemon("b"), self.daemon("c")
        alice = self.json_user(a, "alice")
        bob = self.json_user(b, "bob")
        carol = self.json_user(c, "carol")
        for watcher in (bob, carol):
            self.wait_known(watcher, "alice")
        self.redis.stop()
        acknowledged = []
        for number in range(5):
            alice.send_line(f"lost {number}")
            acknowledged.append(alice.expect_event("message", text=f"lost {number}")["id"])  # stored
        a.kill()
        self.redis.start()
        for watcher in (bob, carol):  # nothing else said: read when Redis is back
            said = [watcher.expect_event("message", timeout=30) for _ in range(5)]
            self.assertEqual([m["text"] for m in said], [f"lost {n}" for n in range(5)])
            self.assertEqual([m["id"] for m in said], acknowledged)
        b.wait_for_line(lambda text: "read 5 missed messages from the database" in text)
        bob.send_line("after")
        for watcher in (bob, carol):
            after = watcher.expect_event("message", timeout=30)
            self.assertEqual((after["text"], after["id"]), ("after", acknowledged[-1] + 1))
        carol.send_line("/ping done")  # nothing more came: no message twice
        rest = carol.read_events_until(lambda e: e["type"] == "pong")
        self.assertEqual([e for e in rest if e["type"] == "message"], [])
        b.assert_clean()
        c.assert_clean()

    def test_moderation_on_one_daemon_holds_on_another(self) -> None:
        """
        An operator on one daemon bans a guest and mutes a user of another
        daemon: the banned guest cannot come back through a third, and the
        muted user is refused on their own daemon, and told.
        """
        a, b, c = self.daemon("a"), self.daemon("b"), self.daemon("c")
        op = self.json_user(a, "op")
        op.send_line("/join #dev")
        op.expect_event("join", nick="op")
        bob = self.json_user(b, "bob")
        mallory = self.json_user(b, "mallory")
        probe = self.json_user(c, "probe")
        for guest in (bob, mallory, probe):
            guest.send_line("/join #dev")
            guest.expect_event("join", room="#dev")
        op.expect_event("join", nick="mallory", room="#dev", timeout=15)
        op.send_line("/ban mallory #dev 1h spam")
        self.assertIn("mallory is banned from #dev", op.expect_event("info", timeout=15)["text"])
        mallory.expect_event("kick", nick="mallory", timeout=15)
        probe.expect_event("kick", nick="mallory", timeout=15)  # c has had a's ban, which came with the kick
        op.send_line("/mute bob #dev")
        told = bob.expect_event("info", timeout=15)
        self.assertIn("op muted you in #dev", told["text"])
        bob.send_line("can I?")  # in #dev, his current room: refused by b, which follows a's moderation
        refused = bob.expect_event("error", timeout=15)
        self.assertEqual(refused["code"], "muted")
        mallory.send_line("/quit")
        self.wait_known(probe, "mallory", known=False)
        again = self.json_user(c, "mallory")
        again.send_line("/join #dev")
        self.assertEqual(again.expect_event("error", timeout=15)["code"], "banned")

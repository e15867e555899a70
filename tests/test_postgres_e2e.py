"""
End to end: a real C{twistd -n chat --postgres DSN} on the real PostgreSQL
server of L{tests.servers} (skipped with the reason when it cannot start):
history and accounts survive a restart from the database, ids go on above
those stored, and a database that cannot be used stops the daemon at once
with one line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time

import pytest
from twisted.trial.unittest import TestCase

from tests import servers
from tests.test_hardening_held_e2e import stop_allowing
from tests.e2e import EXITED_ON_SIGTERM, Client, Daemon, twistd_command


class PostgresDaemonTests(TestCase):
    """
    The daemon with C{--postgres}.
    """

    def setUp(self) -> None:
        self.postgres = servers.postgres()
        self.postgres.reset()

    def test_history_and_accounts_survive_restart(self) -> None:
        """A message and an account stored in PostgreSQL are there after a restart; new ids are higher."""
        daemon = Daemon("--postgres", self.postgres.dsn)
        self.addCleanup(daemon.stop)
        daemon.start()
        bob = Client.json(daemon.port, "bob")
        bob.send_line("/register password1")
        bob.expect_event("info")
        bob.send_line("hello from before")
        first = bob.expect_event("message")
        bob.close()
        self.assertIn(daemon.halt(), EXITED_ON_SIGTERM)
        self.assertIn(f"(PostgreSQL database chat_test on 127.0.0.1:{self.postgres.port})", daemon.log())
        daemon.start()
        carol = Client.json(daemon.port, "carol")
        self.addCleanup(carol.close)
        history = next(e for e in carol.registration if e.get("type") == "history")
        self.assertIn("hello from before", [m["text"] for m in history["messages"]])
        carol.send_line("hello after")
        second = carol.expect_event("message")
        self.assertGreater(second["id"], first["id"])
        bob = Client.json_connect(daemon.port)
        self.addCleanup(bob.close)
        bob.send_line("/login bob password1")
        registered = bob.expect_event("registered")
        self.assertEqual((registered["nick"], registered["account"]), ("bob", True))
        daemon.assert_clean()

    def test_unusable_database(self) -> None:
        """A database that cannot be reached stops the daemon at start-up with one line naming it, no password."""
        dsn = "postgresql://chat:secret-word@127.0.0.1:1/nowhere?connect_timeout=2"
        data = tempfile.mkdtemp(prefix="chat-postgres-e2e-")
        self.addCleanup(shutil.rmtree, data, True)
        result = subprocess.run(
            [*twistd_command(), "-n", "--pidfile", "", "chat", "--data-dir", data, "--postgres", dsn],
            capture_output=True, text=True, timeout=30, cwd=data,
        )
        self.assertNotEqual(result.returncode, 0)
        output = result.stdout + result.stderr
        self.assertIn("chat: cannot use the PostgreSQL database nowhere on 127.0.0.1:1", output)
        self.assertNotIn("secret-word", output)
        self.assertNotIn("Traceback", output)

    @pytest.mark.slow
    def test_postgres_restart(self) -> None:
        """PostgreSQL stopped under a running daemon: messages get busy, the log says so, and once it is back they are stored again."""
        daemon = Daemon("--postgres", self.postgres.dsn)
        self.addCleanup(stop_allowing, daemon, re.compile(r"could not store 1 message"))
        daemon.start()
        bob = Client.json(daemon.port, "bob")
        self.addCleanup(bob.close)
        bob.send_line("before")
        bob.expect_event("message")
        self.postgres.stop()
        try:
            bob.send_line("while it is down")
            refused = bob.expect_event("error", timeout=20)
            self.assertEqual(refused["code"], "busy")
            daemon.wait_for_line(
                lambda text: "could not store 1 message" in text and "PostgreSQL database chat_test" in text
            )
        finally:
            self.postgres.start()
        deadline = time.monotonic() + 40
        while True:
            bob.send_line("after")
            event = bob.read_event(timeout=25)
            if event.get("type") == "message" or time.monotonic() > deadline:
                break
            self.assertEqual((event.get("type"), event.get("code")), ("error", "busy"), event)
            time.sleep(0.5)
        self.assertEqual(event.get("text"), "after", event)
        carol = Client.json(daemon.port, "carol")
        self.addCleanup(carol.close)
        carol.send_line("/history 5")
        history = carol.expect_event("history")
        self.assertEqual([m["text"] for m in history["messages"]][-2:], ["before", "after"])
        daemon.wait_for_line(lambda text: "storing in PostgreSQL database chat_test" in text and "again" in text)

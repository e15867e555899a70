"""
End-to-end tests of the storage side of issue 16 (hardening) against real
C{twistd chat} processes: one daemon per data directory (also after
daemonizing, and through a C{kill -9} loop), a damaged or read-only
database refused at start-up in one line (finding 6), uploads refused
within the disk reserve while chat goes on (finding 5), and the share of
the quota one address may hold (finding 4).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from chat import schema
from chat.tap import makeService
from tests.e2e import Client, Daemon, eventually, twistd_command
from tests.test_hardening_storage import NOBODY, as_nobody, corrupt_a_middle_page, many_pages
from tests.test_tap_ops import child_environment, parse, temporary_directory

IN_USE = (
    " (--data-dir): another chat daemon is using it (stop that one first);"
    " choose another with --data-dir DIR, or run with --in-memory"
)
"""How the refusal of a second daemon on a data directory ends."""


def alive(pid: int) -> bool:
    """
    Whether the process C{pid} runs (a zombie waiting to be reaped does not:
    its descriptors, and so its locks, are gone).
    """
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


class StorageEndToEndTests(SynchronousTestCase):
    """
    Real C{twistd chat} processes on one data directory, or on a database
    that cannot be used.
    """

    def setUp(self) -> None:
        self.cwd = temporary_directory(self)
        self.data = os.path.join(self.cwd, "data")

    def twistd(self, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """
        Run C{twistd argv} to its end in the test's directory.
        """
        return subprocess.run(
            twistd_command() + list(argv), cwd=self.cwd, env=child_environment(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )

    def second(self) -> subprocess.CompletedProcess[str]:
        """
        Run C{twistd -n chat} on the test's data directory, without a pid file.
        """
        return self.twistd(
            "-n", "--pidfile", "", "chat", "--listen", "tcp:0:interface=127.0.0.1", "--data-dir", self.data
        )

    def daemon(self, *options: str) -> Daemon:
        """
        A started L{Daemon} on the test's data directory, stopped after the test.
        """
        daemon = Daemon(*options, data_dir=self.data)
        daemon.start()
        self.addCleanup(daemon.stop)
        return daemon

    def test_second_daemon_refused(self) -> None:
        """
        While a daemon runs, a second C{twistd -n chat} on the same data
        directory exits with status 1 and one line naming the directory,
        touching nothing; the first goes on serving.
        """
        first = self.daemon()
        alice = Client.json(first.port, "alice")
        self.addCleanup(alice.close)
        before = sorted(os.listdir(self.data))
        done = self.second()
        refusal = f"chat: cannot use the data directory {self.data}{IN_USE}\n"
        self.assertEqual((done.returncode, done.stderr, done.stdout), (1, refusal, ""))
        self.assertEqual(sorted(os.listdir(self.data)), before)
        alice.send_line("still here")
        alice.expect_event("message", text="still here")
        first.halt()
        self.daemon_again()

    def daemon_again(self) -> None:
        """
        Once the daemon holding the directory stopped, another starts on it.
        """
        again = Daemon(data_dir=self.data)
        again.start()
        self.addCleanup(again.stop)

    def test_daemonized_daemon_keeps_the_lock(self) -> None:
        """
        A daemonizing twistd keeps the lock after its forks: a second daemon
        is refused until it stops.
        """
        done = self.twistd(
            "--pidfile", "twistd.pid", "--logfile", "chat.log",
            "chat", "--listen", "tcp:0:interface=127.0.0.1", "--data-dir", self.data,
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        pid = int(Path(self.cwd, "twistd.pid").read_text())

        def stop() -> None:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

        self.addCleanup(stop)
        eventually(lambda: "chat listening on" in Path(self.cwd, "chat.log").read_text(), "the listener's line")
        done = self.second()
        refusal = f"chat: cannot use the data directory {self.data}{IN_USE}\n"
        self.assertEqual((done.returncode, done.stderr), (1, refusal))
        os.kill(pid, signal.SIGTERM)
        eventually(lambda: not alive(pid), "the daemon to stop", 10)
        self.daemon_again()

    def test_kill_9_loop(self) -> None:
        """
        A daemon killed with SIGKILL leaves no lock behind: ten times over,
        the next one starts at once, and the acknowledged messages are all
        kept with ids still increasing.
        """
        daemon = Daemon(data_dir=self.data)
        self.addCleanup(daemon.stop)
        ids = []
        for run in range(10):
            daemon.start()
            client = Client.json(daemon.port, f"user{run}")
            client.send_line(f"message {run}")
            ids.append(client.expect_event("message", text=f"message {run}")["id"])
            client.close()
            daemon.kill()
        self.assertEqual(ids, sorted(set(ids)))
        daemon.start()
        client = Client.json(daemon.port, "reader")
        self.addCleanup(client.close)
        client.send_line("/history 20")
        history = client.expect_event("history", room="#lobby")
        self.assertEqual([m["id"] for m in history["messages"]], ids)

    def test_damaged_database_refused(self) -> None:
        """
        A database with a damaged page in the middle stops start-up with
        status 1 and one line naming the file and what to do; the file is
        left as it was.
        """
        os.mkdir(self.data)
        path = os.path.join(self.data, schema.FILENAME)
        many_pages(path)
        corrupt_a_middle_page(path)
        damaged = Path(path).read_bytes()
        done = self.second()
        self.assertEqual((done.returncode, done.stdout), (1, ""))
        [line] = done.stderr.splitlines()
        self.assertTrue(line.startswith(f"chat: the database {path} is damaged (Page "), line)
        self.assertTrue(line.endswith(
            f"restore it from a backup, or save what can be read (sqlite3 {path} .recover,"
            " or chat-admin export ROOM) and start with a new database"
        ), line)
        self.assertEqual(Path(path).read_bytes(), damaged)
        self.assertEqual(sorted(os.listdir(self.data)), [schema.FILENAME, "spool"])

    def test_read_only_database_refused(self) -> None:
        """
        A database file the daemon's user cannot write stops start-up with
        one line naming the file and what to do (run as nobody, since
        permissions do not stop root).
        """
        os.mkdir(self.data)
        os.chmod(self.cwd, 0o755)
        path = os.path.join(self.data, schema.FILENAME)
        many_pages(path, 10)
        os.chmod(path, 0o444)
        if os.geteuid() == 0:
            os.chown(self.data, NOBODY, NOBODY)

        def start() -> str:
            makeService(parse("--data-dir", self.data), MemoryReactorClock())
            return "started"

        self.assertEqual(
            as_nobody(start),
            f"chat: cannot write to the database {path}: attempt to write a readonly database; let the daemon's"
            " user write to it and to its directory (chown, chmod), or restore it from a backup",
        )

    def test_disk_reserve_refuses_uploads_chat_goes_on(self) -> None:
        """
        With a disk reserve larger than the free space, /upload is refused
        with C{quota} saying the disk is nearly full, once logged as a
        warning, while messages are still stored and sent.
        """
        daemon = self.daemon("--disk-reserve", "1000T")
        alice = Client.json(daemon.port, "alice")
        self.addCleanup(alice.close)
        for _ in range(2):
            alice.send_line("/upload #lobby a.bin 10")
            error = alice.expect_event("error")
            self.assertEqual(error["code"], "quota")
            self.assertIn("the server's disk is nearly full", error["message"])
        alice.send_line("hello")
        self.assertEqual(alice.expect_event("message", text="hello")["from"], "alice")
        daemon.wait_for_line(lambda line: "#warn] the disk of " in line)
        self.assertEqual(daemon.log().count("is nearly full ("), 1)

    def test_one_address_holds_a_share(self) -> None:
        """
        Uploads in progress from one address hold at most a quarter of
        C{--spool-quota}: beyond it /upload is refused with C{quota}, until
        the upload holding it is done.
        """
        daemon = self.daemon("--spool-quota", "4M", "--max-file-size", "2M")
        alice = Client.json(daemon.port, "alice")
        bob = Client.json(daemon.port, "bob")
        self.addCleanup(alice.close)
        self.addCleanup(bob.close)
        size = 1536 * 1024
        alice.send_line(f"/upload #lobby big.bin {size}")
        alice.expect_event("upload-ready")
        bob.send_line("/upload #lobby small.bin 10")
        error = bob.expect_event("error")
        self.assertEqual(error["code"], "quota")
        self.assertIn("one address may hold at most 1048576 bytes at once", error["message"])
        alice.send(b"x" * size)
        alice.expect_event("upload-done")
        bob.send_line("/upload #lobby small.bin 10")
        bob.expect_event("upload-ready")
        bob.send(b"y" * 10)
        bob.expect_event("upload-done")

"""
End-to-end tests of the terminal client: two C{python -m chat.client}
processes, each on its own pseudo-terminal as a person would run them,
against a real C{twistd -n chat}; assertions are on what their screens show.
"""

from __future__ import annotations

import hashlib
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import ClassVar

from twisted.trial.unittest import TestCase

from tests.e2e import Daemon

TIMEOUT = 15.0
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Terminal:
    """
    A C{chat-client} on a pseudo-terminal: what is typed, and what the
    screen shows (ANSI sequences and carriage returns stripped).
    """

    def __init__(self, *argv: str, cwd: str) -> None:
        self.master, slave = pty.openpty()
        env = dict(os.environ, PYTHONUNBUFFERED="1", TERM="xterm", HOME=cwd)
        env.pop("NO_COLOR", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chat.client", *argv],
            stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True,
        )
        os.close(slave)
        self.raw = b""
        self.seen = 0

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    @property
    def screen(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r", "\n")

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> str:
        """
        Wait until C{text} appears on the screen after what earlier waits
        consumed; return the screen up to it.
        """
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen
            found = screen.find(text, self.seen)
            if found >= 0:
                shown = screen[self.seen:found + len(text)]
                self.seen = found + len(text)
                return shown
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not shown within {timeout} s; the screen:\n{screen[self.seen:]}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    self.raw += os.read(self.master, 65536)
                except OSError:  # the client exited
                    time.sleep(0.1)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        os.close(self.master)


class StdioClientTests(TestCase):
    daemon: ClassVar[Daemon]
    port: ClassVar[int]

    def setUp(self) -> None:
        self.port = free_port()
        self.daemon = Daemon("--listen", f"tcp:{self.port}:interface=127.0.0.1").start()
        self.addCleanup(self.daemon.stop)
        directory = tempfile.TemporaryDirectory(prefix="chat-client-e2e-")
        self.addCleanup(directory.cleanup)
        self.dir = directory.name

    def terminal(self, nick: str) -> Terminal:
        terminal = Terminal("--port", str(self.port), nick, cwd=self.dir)
        self.addCleanup(terminal.close)
        terminal.wait_for(f"You are {nick}.")
        return terminal

    def test_chat_file_and_restart(self) -> None:
        """
        alice and bob chat in a room and privately; a file alice sends
        arrives intact in bob's downloads with a progress bar on alice's
        screen; the daemon restarts and both carry on in the same room
        without being restarted.
        """
        alice = self.terminal("alice")
        bob = self.terminal("bob")
        alice.wait_for("--> bob joined #lobby")
        alice.type("/join #dev")
        alice.wait_for("--> alice joined #dev")
        bob.type("/join #dev")
        alice.wait_for("--> bob joined #dev")
        alice.type("hello bob")
        self.assertRegex(bob.wait_for("<alice> hello bob"), r"\[\d\d:\d\d\] #dev <alice> hello bob$")
        bob.type("/msg alice psst")
        alice.wait_for("*bob* psst")
        bob.wait_for("-> *alice* psst")
        alice.type("/me waves")
        bob.wait_for("* alice waves")

        payload = os.urandom(3 * 1024 * 1024 + 17)
        path = os.path.join(self.dir, "report final.pdf")
        with open(path, "wb") as f:
            f.write(payload)
        alice.type(f"/send bob {path}")
        alice.wait_for("↑ report final.pdf to bob [########################] 100% 3.0 MiB")
        alice.wait_for("Sent report final.pdf to bob (offer ")
        offer = bob.wait_for("to download it")
        match = re.search(r"alice offers report final\.pdf \(3\.0 MiB\) to you: /get (\d+) to download it", offer)
        assert match is not None, offer
        bob.type(f"/get {match.group(1)}")
        saved = os.path.join(self.dir, "Downloads", "chat", "report final.pdf")
        bob.wait_for(f"Saved {saved} (SHA-256 checked).")
        with open(saved, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(payload).digest())

        self.daemon.halt()
        alice.wait_for("Disconnected from localhost:")
        bob.wait_for("the server said goodbye: server shutting down")
        self.daemon.start()
        # Both are back in #dev (in either order) before alice speaks.
        alice.wait_for("--> alice joined #dev")
        bob.wait_for("--> bob joined #dev")
        alice.type("back again")
        shown = bob.wait_for("<alice> back again")
        self.assertNotIn("hello bob", shown)  # history already seen is not shown again
        bob.type("/quit")
        bob.process.wait(10)
        self.assertEqual(bob.process.returncode, 0)

"""
End-to-end tests of the terminal client: two C{python -m chat.client}
processes, each on its own pseudo-terminal (80 by 24) as a person would run
them, against a real C{twistd -n chat}; assertions are on what their screens
show: the output stream, or the rows an 80 by 24 terminal shows of it
(insults' in-memory terminal, L{TerminalBuffer}).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from twisted.conch.insults import helper, insults
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import TestCase

from tests.e2e import Daemon

TIMEOUT = 15.0
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SGR = re.compile(r"\x1b\[[0-9;]*m")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Terminal:
    """
    A C{chat-client} on a pseudo-terminal: what is typed, and what the
    screen shows (ANSI sequences and carriage returns stripped).
    """

    def __init__(self, *argv: str, cwd: str, data: str | None = None) -> None:
        """
        @param data: the client's data folder (C{XDG_DATA_HOME}), its
            config folder (C{XDG_CONFIG_HOME}) in it.
        """
        self.master, slave = pty.openpty()
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = dict(os.environ, PYTHONUNBUFFERED="1", TERM="xterm", HOME=cwd)
        if data is not None:
            env["XDG_DATA_HOME"] = data
            env["XDG_CONFIG_HOME"] = os.path.join(data, "config")
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

    def keys(self, text: str) -> None:
        """
        Type C{text} without Enter.
        """
        os.write(self.master, text.encode())

    def rows(self, quiet: float = 0.3) -> list[str]:
        """
        The rows an 80 by 24 terminal shows once the client has written
        nothing for C{quiet} seconds (colours ignored, any non-ASCII
        character shown as C{?}), without trailing blanks or blank rows at the end.
        """
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and select.select([self.master], [], [], quiet)[0]:
            try:
                self.raw += os.read(self.master, 65536)
            except OSError:
                break
        text = SGR.sub("", self.raw.decode("utf-8", "replace"))
        buffer = helper.TerminalBuffer()
        emulator = insults.ClientProtocol(lambda: buffer)
        emulator.makeConnection(StringTransport())
        emulator.dataReceived("".join(c if c < "\x80" else "?" for c in text).encode("ascii"))
        rows = [row.rstrip() for row in bytes(buffer).decode("ascii").split("\n")]
        while rows and not rows[-1]:
            rows.pop()
        return rows

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
    daemon: Daemon
    port: int

    def setUp(self) -> None:
        self.port = free_port()
        self.daemon = Daemon("--listen", f"tcp:{self.port}:interface=127.0.0.1").start()
        self.addCleanup(self.daemon.stop)
        directory = tempfile.TemporaryDirectory(prefix="chat-client-e2e-")
        self.addCleanup(directory.cleanup)
        self.dir = directory.name

    def terminal(self, nick: str) -> Terminal:
        terminal = Terminal("--port", str(self.port), nick, cwd=self.dir, data=os.path.join(self.dir, nick))
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
        alice.wait_for("*bob* 🔒 psst")  # end-to-end encrypted: the lock
        bob.wait_for("-> *alice* 🔒 psst")
        alice.type("/me waves")
        bob.wait_for("* alice waves")

        payload = os.urandom(3 * 1024 * 1024 + 17)
        path = os.path.join(self.dir, "report final.pdf")
        with open(path, "wb") as f:
            f.write(payload)
        alice.type(f"/send bob {path}")
        alice.wait_for("↑ report final.pdf to bob [########################] 100% 3.0 MiB")
        alice.wait_for("Sent report final.pdf to bob, end-to-end encrypted (offer ")  # both have keys
        offer = bob.wait_for("to download it")
        match = re.search(r"\*alice\* 🔒 offers report final\.pdf \(3\.0 MiB\), encrypted: /get (\d+) to download it",
                          offer)
        assert match is not None, offer
        bob.type(f"/get {match.group(1)}")
        saved = os.path.join(self.dir, "Downloads", "chat", "report final.pdf")
        bob.wait_for(f"Saved {saved} (decrypted, checked).")
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

    def test_line_editing(self) -> None:
        """
        alice's own message shows once on her screen; a line bob sends while
        alice is typing goes above her prompt, which keeps her unfinished
        line whole at the bottom; the password she types is masked and kept
        out of her input history, which is saved in her data folder.
        """
        alice = self.terminal("alice")
        bob = self.terminal("bob")
        alice.wait_for("--> bob joined #lobby")
        alice.type("hello bob")
        bob.wait_for("<alice> hello bob")
        alice.wait_for("<alice> hello bob")
        shown = [row for row in alice.rows() if "hello bob" in row]
        self.assertEqual(len(shown), 1, shown)
        self.assertRegex(shown[0], r"<alice> hello bob$")

        alice.keys("half typed")
        alice.wait_for("half typed")
        bob.type("ping")
        alice.wait_for("<bob> ping")
        rows = alice.rows()
        self.assertRegex(rows[-2], r"<bob> ping$")
        self.assertEqual(rows[-1], "#lobby> half typed")

        alice.keys("\x15/register hunter2222")  # Ctrl-U first
        alice.wait_for("/register ")
        self.assertEqual(alice.rows()[-1], "#lobby> /register **********")
        alice.keys("\r")
        alice.wait_for("Account alice created")
        alice.type("/quit")
        alice.process.wait(10)
        self.assertEqual(alice.process.returncode, 0)
        self.assertNotIn("hunter2222", "\n".join(alice.rows()))
        history = Path(self.dir, "alice", "chat", "stdio-history").read_text("utf-8")
        self.assertEqual(history.splitlines(), ["hello bob", "/quit"])

    def test_alerts_formatting_emoji(self) -> None:
        """
        A message naming alice rings her terminal's bell and is highlighted,
        its formatting shown as terminal attributes with the markers gone;
        bob's own line does not ring on his; after C{/mute} mentions in the
        room are quiet, private messages still ring; C{:shortcode:} arrives
        as emoji; Tab completes C{/msg}'s nick.
        """
        alice = self.terminal("alice")
        bob = self.terminal("bob")
        alice.wait_for("--> bob joined #lobby")
        start = len(alice.raw)
        bob.type("hi alice, *look* at `ls -l` and https://example.org/x")
        alice.wait_for("<bob> hi alice, look at ls -l and https://example.org/x")
        mention = alice.raw[start:].decode("utf-8")
        self.assertEqual(mention.count("\a"), 1)
        self.assertIn("\x1b[1;7mlook\x1b[0m", mention)
        self.assertIn("\x1b[36;7mls -l\x1b[0m", mention)
        self.assertIn("\x1b[4;34;7mhttps://example.org/x\x1b[0m", mention)
        bob.wait_for("<bob> hi alice")
        self.assertNotIn(b"\a", bob.raw)

        alice.type("/mute")
        alice.wait_for("Muted #lobby")
        start = len(alice.raw)
        bob.type("alice, quiet now")
        alice.wait_for("<bob> alice, quiet now")
        self.assertNotIn(b"\a", alice.raw[start:])
        self.assertNotIn(b";7m", alice.raw[start:])

        bob.keys("/msg al\t")
        bob.wait_for("/msg alice")
        bob.type("psst :thumbsup:")
        alice.wait_for("*bob* 🔒 psst 👍")
        self.assertIn(b"\a", alice.raw[start:])
        settings = Path(self.dir, "alice", "config", "chat", "settings.json").read_text("utf-8")
        self.assertIn("#lobby", settings)

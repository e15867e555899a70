"""
Real IRC clients driven headless against a real daemon (issue 22, "Tests"):
irssi in a private tmux server (L{Irssi}, its screen read with
C{capture-pane}) and WeeChat's headless binary (L{WeeChat}, driven through
its FIFO and read through its logger's files), each with its own home in a
temporary directory, never the user's configuration.

Every wait is a polling loop with a deadline that fails with what it saw.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e import Daemon

IRC_LISTENING = re.compile(r"chat irc listening on 127\.0\.0\.1:(\d+)")
"""The log line of the daemon's C{--irc} listener."""
WEB_LISTENING = re.compile(r"chat web listening on 127\.0\.0\.1:(\d+)")
"""The log line of the daemon's C{--web} listener."""

WAIT = 10.0
"""Bound, in seconds, on any single wait for a client."""

IRSSI = "/usr/bin/irssi"
"""Debian's irssi (apt-get install irssi)."""
WEECHAT = "/usr/bin/weechat-headless"
"""Debian's headless WeeChat (apt-get install weechat-headless)."""

IRSSI_CONFIG = """\
servers = ( );
chatnets = { };
channels = ( );
settings = {
  core = {
    real_name = "{nick} on irssi";
    user_name = "{nick}";
    nick = "{nick}";
    settings_autosave = "no";
    awaylog_file = "{home}/away.log";
  };
  "fe-common/core" = { autolog = "no"; timestamps = "no"; beep_msg_level = ""; };
  "irc/core" = {
    ctcp_version_reply = "";
    ctcp_userinfo_reply = "";
    cmd_queue_speed = "0msec";
  };
  "irc/dcc" = { dcc_autoget = "no"; dcc_autoresume = "no"; };
};
"""
"""
A minimal irssi config: no networks, no autoconnect, no logs, no DCC, no
CTCP version reply, and no client-side flood queue (irssi sends at most 5
lines at once and then one per 2.2 s by default, which would make every wait
here seconds long; the daemon's own flood control still applies).
"""


def listener_port(daemon: Daemon, pattern: re.Pattern[str]) -> int:
    """
    The port of one of the daemon's listeners, from its log line.

    @param pattern: L{IRC_LISTENING} or L{WEB_LISTENING}.
    @raise AssertionError: the daemon did not log it within its bound.
    """
    line = daemon.wait_for_line(lambda text: pattern.search(text) is not None)
    match = pattern.search(line)
    assert match is not None
    return int(match.group(1))


def wait_until(check: Callable[[], str | None], what: str, seen: Callable[[], str], timeout: float = WAIT) -> str:
    """
    Poll C{check} every 50 ms until it returns a string.

    @param what: what is waited for, for the failure message.
    @param seen: what the client shows now, for the failure message.
    @return: what C{check} returned.
    @raise AssertionError: it returned C{None} for C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}; the client shows:\n{seen()}")
        time.sleep(0.05)


class Irssi:
    """
    irssi in a tmux server of its own (socket in C{home}), with C{--home}
    C{home} holding L{IRSSI_CONFIG}, and a raw log of its IRC traffic
    (C{/rawlog open}) in C{home/raw.log}.

    @ivar home: irssi's home directory (a test's temporary directory).
    @ivar nick: the nick it connects with.
    """

    def __init__(self, home: Path, nick: str) -> None:
        self.home = home
        self.nick = nick
        self.socket = str(home / "tmux.sock")
        home.mkdir(parents=True, exist_ok=True)
        (home / "config").write_text(IRSSI_CONFIG.replace("{nick}", nick).replace("{home}", str(home)))

    @property
    def rawlog(self) -> Path:
        """The file of C{/rawlog open}: C{<<} lines sent, C{>>} lines received."""
        return self.home / "raw.log"

    def tmux(self, *args: str) -> str:
        """
        Run a command of this tmux server.

        @return: its standard output.
        @raise subprocess.CalledProcessError: it failed.
        """
        done = subprocess.run(
            ["tmux", "-S", self.socket, *args], check=True, capture_output=True, text=True, timeout=WAIT
        )
        return done.stdout

    def start(self, port: int) -> None:
        """
        Start irssi in a 200x50 tmux window, connected to C{127.0.0.1:port}
        (plain), and open its raw log once registered (C{/rawlog open}
        needs a server, and writes the lines irssi kept since connecting).
        """
        command = shlex.join([IRSSI, f"--home={self.home}", "-n", self.nick, "-c", "127.0.0.1", "-p", str(port)])
        env = f"env HOME={shlex.quote(str(self.home))} LANG=C.UTF-8 TERM=tmux-256color"
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "irc", "-x", "200", "-y", "50", f"{env} {command}")
        self.wait_for(f"Welcome to the chat IRC network, {self.nick}")
        self.type(f"/rawlog open {self.rawlog}")
        self.wait_for_raw(f"001 {self.nick} ")

    def type(self, line: str) -> None:
        """
        Type C{line} literally, wait until the input line shows it, then
        press Enter and wait until the input line is empty again: an Enter
        sent right behind the keys can fall into irssi's paste detection
        (keys less than C{paste_detect_time}, 5 ms, apart) and the line is
        then not sent.

        @raise AssertionError: the input line did not show it, or kept it.
        """
        self.tmux("send-keys", "-t", "irc", "-l", "--", line)
        wait_until(
            lambda: "typed" if self._input().endswith(line) else None, f"irssi's input shows {line!r}", self.screen
        )
        self.tmux("send-keys", "-t", "irc", "Enter")
        wait_until(lambda: "sent" if line not in self._input() else None, f"irssi took {line!r}", self.screen)

    def _input(self) -> str:
        """irssi's input line (the last line of the terminal), without trailing blanks."""
        return self.tmux("capture-pane", "-p", "-t", "irc").rstrip("\n").rsplit("\n", 1)[-1].rstrip()

    def screen(self) -> str:
        """What the terminal shows, with its scrollback, wrapped lines joined, without trailing blanks."""
        shown = self.tmux("capture-pane", "-p", "-J", "-S", "-1000", "-t", "irc")
        return "\n".join(line.rstrip() for line in shown.splitlines())

    def wait_for(self, pattern: str, timeout: float = WAIT) -> str:
        """
        Wait until a screen line matches the regular expression C{pattern}.

        @return: that line.
        @raise AssertionError: none within C{timeout} seconds; says what the screen shows.
        """
        compiled = re.compile(pattern)

        def check() -> str | None:
            return next((line for line in self.screen().splitlines() if compiled.search(line)), None)

        return wait_until(check, f"irssi shows {pattern!r}", self.screen, timeout)

    def wait_for_raw(self, needle: str, timeout: float = WAIT) -> str:
        """
        Wait until the raw log holds a line containing C{needle}.

        @return: that line.
        """

        def check() -> str | None:
            text = self.rawlog.read_text("utf-8", "replace") if self.rawlog.exists() else ""
            return next((line for line in text.splitlines() if needle in line), None)

        return wait_until(check, f"irssi's raw log has {needle!r}", self.raw, timeout)

    def raw(self) -> str:
        """The raw log so far (irssi writes it at once)."""
        return self.rawlog.read_text("utf-8", "replace") if self.rawlog.exists() else ""

    def stop(self) -> None:
        """Quit irssi (a clean C{QUIT}) and end its tmux server."""
        try:
            self.type("/quit bye")
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                if subprocess.run(["tmux", "-S", self.socket, "has-session"], capture_output=True).returncode:
                    break
                time.sleep(0.05)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


class WeeChat:
    """
    WeeChat's headless binary with C{--dir} a temporary directory, only the
    C{irc}, C{logger} and C{fifo} plugins, a server C{chat} at the daemon's
    IRC port (plain) joining C{#lobby}, its logger flushing every line, and
    no client-side anti-flood delay (2 s between lines by default).

    @ivar home: its directory (configuration, logs in C{home/logs}, FIFO).
    @ivar nick: its nick.
    """

    def __init__(self, home: Path, nick: str) -> None:
        self.home = home
        self.nick = nick
        self.process: subprocess.Popen[bytes] | None = None
        home.mkdir(parents=True, exist_ok=True)

    def start(self, port: int) -> None:
        """
        Start it, connecting to C{127.0.0.1:port} and joining C{#lobby}.
        """
        commands = ";".join([
            "/set logger.file.flush_delay 0",
            f"/set logger.file.path {self.home}/logs",
            f"/set irc.server_default.nicks {self.nick}",
            f"/set irc.server_default.username {self.nick}",
            f"/set irc.server_default.realname {self.nick}_on_weechat",
            "/set irc.server_default.anti_flood_prio_high 0",
            "/set irc.server_default.anti_flood_prio_low 0",
            f"/server add chat 127.0.0.1/{port} -notls",
            "/set irc.server.chat.autojoin #lobby",
            "/connect chat",
        ])
        self.process = subprocess.Popen(
            [WEECHAT, "--dir", str(self.home), "-P", "irc,logger,fifo", "--stdout", "-r", commands],
            env=dict(os.environ, HOME=str(self.home), LANG="C.UTF-8"),
            stdin=subprocess.DEVNULL,
            stdout=(self.home / "stdout.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self, buffer: str) -> str:
        """
        The logger's file of a buffer (C{server.chat}, C{chat.#lobby},
        C{chat.NICK}) so far: lines C{DATE TIME<TAB>PREFIX<TAB>TEXT}.
        """
        path = self.home / "logs" / f"irc.{buffer}.weechatlog"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def wait_for(self, buffer: str, pattern: str, timeout: float = WAIT) -> str:
        """
        Wait until a line of a buffer's log matches the regular expression C{pattern}.

        @return: that line.
        @raise AssertionError: none within C{timeout} seconds; says what the logs hold.
        """
        compiled = re.compile(pattern)

        def check() -> str | None:
            return next((line for line in self.log(buffer).splitlines() if compiled.search(line)), None)

        return wait_until(check, f"WeeChat's {buffer} log has {pattern!r}", self.logs, timeout)

    def logs(self) -> str:
        """Every log file and WeeChat's output, for failure messages."""
        parts = [f"--- {path}\n{Path(path).read_text('utf-8', 'replace')}" for path in self._files("logs/*")]
        parts += [f"--- stdout\n{(self.home / 'stdout.log').read_text('utf-8', 'replace')}"]
        return "\n".join(parts)

    def _files(self, pattern: str) -> list[str]:
        return sorted(glob.glob(str(self.home / pattern)))

    def send(self, buffer: str, text: str) -> None:
        """
        Write C{text} (a line, or a C{/command}) to a buffer through the FIFO
        plugin (C{irc.chat.#lobby *hello}).

        @raise AssertionError: the FIFO did not appear within L{WAIT} seconds.
        """
        fifo = wait_until(
            lambda: next(iter(self._files("weechat_fifo_*")), None), "WeeChat's FIFO", self.logs
        )
        descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(descriptor, f"irc.{buffer} *{text}\n".encode())
        finally:
            os.close(descriptor)

    def stop(self) -> None:
        """Quit it (a clean C{QUIT}); kill it if it does not exit within L{WAIT} seconds."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.send("server.chat", "/quit bye")
                self.process.wait(WAIT)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(WAIT)


def missing(program: str, package: str) -> str | None:
    """
    Why a client cannot run here, or C{None} when it can.

    @param program: the absolute path of its binary.
    @param package: the Debian package that installs it.
    """
    if not os.access(program, os.X_OK):
        return f"{program} is missing (apt-get install {package})"
    if program == IRSSI and shutil.which("tmux") is None:
        return "tmux is missing (apt-get install tmux): irssi runs in a tmux pane"
    return None

# -*- test-case-name: tests.test_client_stdio -*-
"""
C{chat-client}: the terminal frontend. Lines typed on standard input go
to L{ChatClient.input}; what the L{ChatModel} reports is written to
standard output with local timestamps, a colour per nick when the output
is a terminal (unless C{NO_COLOR} is set), distinct looks for private,
action and system lines, and a progress bar per transfer.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import Any

from twisted.internet import stdio
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import react
from twisted.protocols.basic import LineReceiver
from twisted.python import usage
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from chat import events
from chat.client import options as client_options
from chat.client.model import Change, ChatModel, Notice, Transfer, TransferChanged
from chat.client.service import ChatClient

NICK_COLOURS = (32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96)
"""ANSI foreground colours for nicks; a nick always gets the same one."""

PROGRESS_INTERVAL = 0.1
"""Seconds between two redraws of a progress bar."""

BAR = 24
"""Characters in a progress bar."""


def size_text(count: float) -> str:
    """
    A byte count for people: C{512 B}, C{1.5 KiB}, C{50.0 MiB}.
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Screen:
    """
    Turns each L{Change} into lines for a terminal or a file.

    @ivar colour: whether to use ANSI colours.
    """

    def __init__(
        self,
        model: ChatModel,
        write: Callable[[str], None],
        *,
        colour: bool,
        terminal: bool,
        seconds: Callable[[], float],
        zone: tzinfo | None = None,
    ) -> None:
        """
        @param write: writes text (str, with its line ends) to the output.
        @param terminal: whether the output is a terminal: progress bars are
            redrawn in place there, and only the outcome is written otherwise.
        @param seconds: the current time in seconds, for throttling redraws.
        @param zone: the time zone of timestamps; the local one by default.
        """
        self.model = model
        self.colour = colour
        self._write = write
        self._terminal = terminal
        self._seconds = seconds
        self._zone = zone
        self._bar: str = ""
        self._drawn_at: dict[int, float] = {}

    # Styles

    def _style(self, text: str, *codes: int) -> str:
        if not self.colour or not codes:
            return text
        return f"\x1b[{';'.join(map(str, codes))}m{text}\x1b[0m"

    def nick(self, nick: str) -> str:
        """
        C{nick} in its own colour, the same every time.
        """
        return self._style(nick, NICK_COLOURS[zlib.crc32(nick.lower().encode()) % len(NICK_COLOURS)])

    def _system(self, text: str) -> str:
        return self._style(f"*** {text}", 2)

    def _error(self, text: str) -> str:
        return self._style(f"!!! {text}", 1, 31)

    def _time(self, ts: datetime) -> str:
        return self._style(ts.astimezone(self._zone).strftime("[%H:%M]"), 2)

    # Output

    def show(self, change: Change) -> None:
        """
        Write what C{change} means to the user, if anything.
        """
        if isinstance(change, TransferChanged):
            self._transfer(change.transfer)
            return
        lines = self.lines(change)
        if lines:
            self._emit("".join(line + "\n" for line in lines))

    def _emit(self, text: str) -> None:
        if self._bar:
            # Lines go above the progress bar, which is drawn again below them.
            self._write("\r\x1b[K" + text + self._bar)
        else:
            self._write(text)

    def lines(self, change: Change) -> list[str]:
        """
        The lines for one change (empty when it shows nothing).
        """
        match change:
            case Notice(text=text, level="error"):
                return [self._error(text)]
            case Notice(text=text):
                return [self._system(text)]
            case events.Message():
                return [self._message(change)]
            case events.Private():
                return [self._private(change)]
            case events.History(messages=messages, room=room):
                if not messages:
                    return []
                return [
                    self._style(f"--- history of {room} ---", 2),
                    *(self._message(m, history=True) for m in messages),
                    self._style("--- end of history ---", 2),
                ]
            case events.Joined():
                return [self._style(f"{self._time(change.ts)} --> {change.nick} joined {change.room}", 2)]
            case events.Parted():
                reason = f" ({change.reason})" if change.reason else ""
                return [self._style(f"{self._time(change.ts)} <-- {change.nick} left {change.room}{reason}", 2)]
            case events.Quit():
                return [self._style(f"{self._time(change.ts)} <-- {change.nick} quit ({change.reason})", 2)]
            case events.NickChanged():
                return [self._system(f"{change.old} is now known as {change.new}")]
            case events.StatusChanged(nick=nick, text=""):
                return [self._system(f"{nick} cleared their status")]
            case events.StatusChanged():
                return [self._system(f"{change.nick} is {change.text}")]
            case events.Topic():
                if not change.text:
                    return [self._system(f"{change.room} has no topic")]
                return [self._system(f"topic of {change.room}: {change.text} (set by {change.by})")]
            case events.Users():
                listed = ", ".join(
                    self.nick(u.nick) + (f" ({u.status})" if u.status else "") for u in change.users
                )
                count = len(change.users)
                return [self._system(f"{change.room}, {count} user{'s' if count != 1 else ''}: {listed}")]
            case events.Rooms():
                if not change.rooms:
                    return [self._system("no rooms")]
                return [self._system("rooms:")] + [
                    self._system(f"  {r.room} ({r.count}) {r.topic}".rstrip()) for r in change.rooms
                ]
            case events.Whois():
                how = "logged in" if change.account else "guest"
                tls = "TLS" if change.secure else "no TLS"
                status = f", status: {change.status}" if change.status else ""
                return [self._system(
                    f"{change.nick}: {how}, {tls}, in {' '.join(change.rooms) or 'no room'}, "
                    f"idle {change.idle} s, since {change.since.astimezone(self._zone):%Y-%m-%d %H:%M}{status}"
                )]
            case events.FileOffer():
                to = "you" if change.to.lower() == self.model.nick.lower() else change.to
                return [self._style(
                    f"*** {change.sender} offers {change.name} ({size_text(change.size)}) to {to}: "
                    f"/get {change.id} to download it",
                    1,
                )]
            case events.Welcome():
                motd = f": {change.motd}" if change.motd else ""
                return [self._system(f"Connected to {change.server} ({change.version}){motd}")]
            case events.Registered():
                how = ", logged in" if change.account else ""
                return [self._system(f"You are {self.nick(change.nick)}{how}. Type to talk, /help for commands.")]
            case events.Info():
                return [self._system(line) for line in change.text.splitlines() or [""]]
            case events.Error():
                return [self._error(f"{change.message} ({change.code})")]
            case events.Pong():
                return [self._system(f"pong {change.token}".rstrip())]
            case events.Bye():
                return [self._system(f"Bye: {change.reason}")]
        return []

    def _message(self, m: events.Message, history: bool = False) -> str:
        stamp = (
            self._style(m.ts.astimezone(self._zone).strftime("[%m-%d %H:%M]"), 2) if history else self._time(m.ts)
        )
        room = f"{m.room} " if len(self.model.rooms) > 1 or history else ""
        if m.action:
            return f"{stamp} {room}{self._style('*', 35)} {self.nick(m.sender)} {m.text}"
        return f"{stamp} {room}<{self.nick(m.sender)}> {m.text}"

    def _private(self, p: events.Private) -> str:
        away = " (sent while you were away)" if p.offline else ""
        star = self._style("*", 1, 35)
        if p.sender.lower() == self.model.nick.lower() and p.to.lower() != self.model.nick.lower():
            who = f"{self._style('->', 1, 35)} {star}{self.nick(p.to)}{star}"
        else:
            who = f"{star}{self.nick(p.sender)}{star}"
        text = f"{p.sender} {p.text}" if p.action else p.text
        return f"{self._time(p.ts)} {who} {self._style(text, 1)}{away}"

    # Transfers

    def _transfer(self, transfer: Transfer) -> None:
        arrow = "↑" if transfer.kind == "upload" else "↓"
        way = "to" if transfer.kind == "upload" else "from"
        label = f"{arrow} {transfer.name} {way} {transfer.peer}"
        if transfer.finished:
            self._drawn_at.pop(transfer.id, None)
            if self._bar:
                self._write("\r\x1b[K")
                self._bar = ""
            if not transfer.error:
                self._write(f"{label} [{'#' * BAR}] 100% {size_text(transfer.size)}\n")
            return
        if not self._terminal or transfer.size <= 0:
            return
        now = self._seconds()
        if now - self._drawn_at.get(transfer.id, -1.0) < PROGRESS_INTERVAL:
            return
        self._drawn_at[transfer.id] = now
        filled = int(transfer.fraction * BAR)
        self._bar = (
            f"{label} [{'#' * filled}{'.' * (BAR - filled)}] {transfer.fraction * 100:3.0f}% "
            f"{size_text(transfer.done)} of {size_text(transfer.size)}"
        )
        self._write("\r\x1b[K" + self._bar)


@implementer(IHalfCloseableProtocol)
class StdioFrontend(LineReceiver):
    """
    Standard input and output of C{chat-client}: each line typed goes to
    the client; the end of input (Ctrl-D) quits, and what is still to be
    written is written before the program exits.

    @ivar closed: fires once standard output is closed.
    """

    delimiter = b"\n"

    def __init__(self, client: ChatClient, screen_options: dict[str, Any]) -> None:
        self.client = client
        self._screen_options = screen_options
        self.screen: Screen | None = None
        self.closed: Deferred[None] = Deferred()

    @override
    def connectionMade(self) -> None:
        assert self.transport is not None
        transport = self.transport
        self.screen = Screen(
            self.client.model, lambda text: transport.write(text.encode("utf-8", "replace")),
            **self._screen_options,
        )
        self.client.model.observe(self.screen.show)

    @override
    def lineReceived(self, line: bytes) -> None:
        self.client.input(line.decode("utf-8", "replace").rstrip("\r"))

    def readConnectionLost(self) -> None:
        """
        The end of input: quit, keeping the output open for the goodbye.
        """
        if not self.client.done.called:
            self.client.quit()

    def writeConnectionLost(self) -> None:
        """
        The output is gone (a closed pipe): nothing more can be shown.
        """

    @override
    def connectionLost(self, reason: Failure | None = None) -> None:
        if not self.client.done.called:
            self.client.quit()
        if not self.closed.called:
            self.closed.callback(None)

    def close(self) -> Deferred[None]:
        """
        Write what is pending, close standard output; fires once done.
        """
        assert self.transport is not None
        self.transport.loseConnection()
        return self.closed


def use_colour(stream: Any, environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """
    Whether to colour: the output is a terminal and C{NO_COLOR} is unset
    or empty (no-color.org), and C{TERM} is not C{dumb}.
    """
    return bool(stream.isatty()) and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def run(reactor: Any, options: client_options.ClientOptions, account: Any) -> Deferred[None]:
    """
    Connect and run until the user quits.
    """
    endpoint, starttls = client_options.endpoint(reactor, options)
    client = ChatClient(
        reactor, endpoint, account, where=options.where, secure=bool(options["tls"]),
        starttls=starttls, downloads=options["downloads"],
    )
    terminal = sys.stdout.isatty()
    frontend = StdioFrontend(
        client, {"colour": use_colour(sys.stdout), "terminal": terminal, "seconds": reactor.seconds}
    )
    stdio.StandardIO(frontend, reactor=reactor)
    if options["insecure"]:
        client.model.notice(client_options.INSECURE_WARNING, "error")
    client.startService()
    return client.done.addCallback(lambda _: frontend.close())


def main(argv: Sequence[str] | None = None) -> None:
    """
    The C{chat-client} console script (also C{python -m chat.client}).
    """
    options = client_options.ClientOptions()
    try:
        options.parseOptions(list(sys.argv[1:] if argv is None else argv))
        if options["cafile"]:
            client_options.read_cafile(options["cafile"])  # a bad file is a usage error, before connecting
    except usage.UsageError as e:
        sys.stderr.write(f"{options}\nchat-client: {e}\n")
        raise SystemExit(2) from None
    account = client_options.account(options)
    react(run, [options, account])

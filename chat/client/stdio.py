# -*- test-case-name: tests.test_client_service,tests.test_client_terminal,tests.test_client_stdio_e2e -*-
"""
C{chat-client}: the terminal frontend. Lines typed on standard input go
to L{ChatClient.input}; the lines the presenter (L{chat.client.present})
makes of what the L{ChatModel} reports are written to standard output,
in the presenter's L{TERMINAL} voice, with ANSI colours when the output
is a terminal (unless C{NO_COLOR} is set): C{*bold*}, C{_italic_},
C{`code`} and links as terminal attributes; a line that alerts the user
(a mention, a private message) rings the bell and is highlighted. A
progress bar per transfer. On a terminal, input is edited with L{chat.client.terminal}
(the tty in raw mode, restored on exit); from a pipe, lines are read as
they come.
"""

from __future__ import annotations

import colorsys
import os
import signal
import sys
import termios
import tty
from collections.abc import Callable, Sequence
from datetime import datetime, timezone, tzinfo
from typing import Any

from twisted.conch.insults.insults import ServerProtocol
from twisted.internet import stdio
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import react
from twisted.protocols.basic import LineReceiver
from twisted.python import usage
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from chat.client import options as client_options
from chat.client.model import (
    Change,
    ChatModel,
    RoomsChanged,
    State,
    Transfer,
    TransferChanged,
)
from chat.client.overview import notifies
from chat.client.present import (
    TERMINAL,
    UNREAD_WORDS,
    Line,
    Presenter,
    Span,
    transfer_bar,
    transfer_title,
)
from chat.client.service import CLIENT_COMMANDS, ChatClient
from chat.client.status import NICK_COLOURS
from chat.client.terminal import Completions, History, LineEditor, history_path
from chat.commands import ALIASES, COMMANDS


def _hue_ansi(index: int) -> str:
    """
    The 256-colour ANSI foreground of nick colour C{index}: hue
    C{index / NICK_COLOURS} of the circle, bright and saturated enough to
    read on dark and light backgrounds, in the xterm 6×6×6 colour cube.
    """
    red, green, blue = colorsys.hsv_to_rgb(index / NICK_COLOURS, 0.8, 0.85)
    return f"38;5;{16 + 36 * round(red * 5) + 6 * round(green * 5) + round(blue * 5)}"


NICK_ANSI = tuple(_hue_ansi(index) for index in range(NICK_COLOURS))
"""ANSI foreground attributes (C{"38;5;N"}) of nicks, by L{chat.client.status.nick_colour}:
the hues of the window's, in the same order."""

STYLE_ANSI: dict[str, tuple[int, ...]] = {
    "time": (2,), "system": (2,), "divider": (2,), "muted": (2,), "error": (1, 31), "action": (35,),
    "arrow": (1, 35), "private": (1,), "offer": (1,), "link": (4,),
    "bold": (1,), "italic": (3,), "code": (36,), "url": (4, 34),
}
"""ANSI attributes (SGR) of each style of L{chat.client.present.STYLES}; plain when absent:
C{*bold*} bold, C{_italic_} italic, C{`code`} cyan, links underlined blue."""

HIGHLIGHT_ANSI = (7,)
"""ANSI attributes added to every span of a line that alerts the user
(L{chat.client.overview.notifies}: a mention, a private message): reverse
video, readable whatever the terminal's colours."""

MARKERS = {"bold": "*", "italic": "_", "code": "`"}
"""The marks around a formatted span when there is no colour: as it was typed."""

BELL = "\a"
"""Written after the lines of a change that alerts the user."""

PROGRESS_INTERVAL = 0.1
"""Seconds between two redraws of a progress bar."""

BAR = 24
"""Characters in a progress bar."""


class Screen:
    """
    Writes the lines of each L{Change} to a terminal or a file.

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
        status: Callable[[str], None] | None = None,
        alert: bool = False,
    ) -> None:
        """
        @param write: writes text (str, with its line ends) to the output.
        @param terminal: whether the output is a terminal: progress bars are
            redrawn in place there, and only the outcome is written otherwise.
        @param seconds: the current time in seconds since the epoch, for
            throttling redraws and as the time of what has none of its own.
        @param zone: the time zone of timestamps; the local one by default.
        @param status: shows a progress bar (str, C{""}: none) in a row of
            its own (the line editor's); by default the bar is drawn in place
            on the output, with lines written above it.
        @param alert: whether a line that alerts the user
            (L{chat.client.overview.notifies}: a mention or a private message,
            not one's own, not in a muted room) rings the terminal's bell
            (L{BELL}) and, in L{colour}, is highlighted (L{HIGHLIGHT_ANSI}).
        """
        self.model = model
        self.colour = colour
        self.presenter = Presenter(model, TERMINAL, zone)
        self._write = write
        self._terminal = terminal
        self._seconds = seconds
        self._bar: str = ""
        self._drawn_at: dict[int, float] = {}
        self._status = status
        self.alert = alert

    def _style(self, span: Span, highlight: bool) -> str:
        if span.nick_colour is not None:
            attributes = [NICK_ANSI[span.nick_colour]]
        else:
            attributes = [str(code) for code in STYLE_ANSI.get(span.style, ())]
        if highlight:
            attributes += map(str, HIGHLIGHT_ANSI)
        if not self.colour:
            marker = MARKERS.get(span.style, "")
            return f"{marker}{span.text}{marker}"
        if not attributes:
            return span.text
        return f"\x1b[{';'.join(attributes)}m{span.text}\x1b[0m"

    def render(self, line: Line, highlight: bool = False) -> str:
        """
        C{line} as text for the output, without a line end: in colour if
        L{colour} (formatting as terminal attributes, L{STYLE_ANSI}), else
        plain, formatting shown with its L{MARKERS} as typed.

        @param highlight: whether to highlight it whole (L{HIGHLIGHT_ANSI}; in colour only).
        """
        return "".join(self._style(span, highlight) for span in line.parts)

    # Output

    def show(self, change: Change) -> None:
        """
        Write what C{change} means to the user, if anything.
        """
        if isinstance(change, TransferChanged):
            self._transfer(change.transfer)
            return
        now = datetime.fromtimestamp(self._seconds(), timezone.utc)
        lines = [self._named(line) for line in self.presenter.lines(change, now)]
        alerting = [self.alert and notifies(line, self.model) for line in lines]
        if lines:
            text = "".join(self.render(line, alerts) + "\n" for line, alerts in zip(lines, alerting, strict=True))
            self._emit(text + (BELL if any(alerting) else ""))

    def _named(self, line: Line) -> Line:
        """
        C{line}, an unread divider naming its room or conversation: every
        room is in the one stream of a terminal.
        """
        where = line.room or line.conversation
        if line.kind != "unread" or where is None:
            return line
        edge = self.presenter.voice.divider
        return Line(line.kind, (Span(f"{edge} {UNREAD_WORDS} in {where} {edge}", "divider"),), line.room,
                    conversation=line.conversation)

    def _emit(self, text: str) -> None:
        if self._bar:
            # Lines go above the progress bar, which is drawn again below them.
            self._write("\r\x1b[K" + text + self._bar)
        else:
            self._write(text)

    def lines(self, change: Change) -> list[str]:
        """
        The lines for one change, without line ends (none when it shows nothing).
        """
        now = datetime.fromtimestamp(self._seconds(), timezone.utc)
        return [self.render(line) for line in self.presenter.lines(change, now)]

    # Transfers

    def _transfer(self, transfer: Transfer) -> None:
        label = transfer_title(transfer, TERMINAL)
        if transfer.finished:
            self._drawn_at.pop(transfer.id, None)
            if self._status is not None:
                self._status("")
            elif self._bar:
                self._write("\r\x1b[K")
                self._bar = ""
            if not transfer.error:
                self._write(f"{label} {transfer_bar(transfer, BAR)}\n")
            return
        if not self._terminal or transfer.size <= 0:
            return
        now = self._seconds()
        if now - self._drawn_at.get(transfer.id, -1.0) < PROGRESS_INTERVAL:
            return
        self._drawn_at[transfer.id] = now
        bar = f"{label} {transfer_bar(transfer, BAR)}"
        if self._status is not None:
            self._status(bar)
            return
        self._bar = bar
        self._write("\r\x1b[K" + self._bar)


@implementer(IHalfCloseableProtocol)
class StdioFrontend(LineReceiver):
    """
    Standard input and output of C{chat-client}: each line typed goes to
    the client; the end of input (Ctrl-D) quits, and what is still to be
    written is written before the program exits. Input is read only while
    the client is online: lines piped in before it has connected (or while
    it reconnects) wait for it, instead of being refused as not sent.

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
        self.client.model.observe(self._show)
        self._follow_state()

    def _show(self, change: Change) -> None:
        assert self.screen is not None
        self.screen.show(change)
        self._follow_state()

    def _follow_state(self) -> None:
        """
        Read input while the client is online, and hold it (the transport
        paused, lines kept in order) while it is not.
        """
        online = self.client.model.state == State.ONLINE
        if online and self.paused:
            self.resumeProducing()
        elif not online and not self.paused and not self.client.done.called:
            self.pauseProducing()

    @override
    def lineReceived(self, line: bytes) -> None:
        self.client.input(line.decode("utf-8", "replace").rstrip("\r"))

    def readConnectionLost(self) -> None:  # noqa: N802 (IHalfCloseableProtocol)
        """
        The end of input: quit, keeping the output open for the goodbye.
        """
        if not self.client.done.called:
            self.client.quit()

    def writeConnectionLost(self) -> None:  # noqa: N802 (IHalfCloseableProtocol)
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


class TerminalFrontend(ServerProtocol):
    """
    Standard input and output of C{chat-client} on a terminal in raw mode:
    a L{LineEditor} keeps the prompt (the current room) at the bottom, with
    what the model reports written above it; each line entered goes to the
    client. Ctrl-C, or Ctrl-D on an empty line, quits. The current room is
    what the user looks at (L{ChatModel.look}): after switching rooms, the
    first message of the room left comes after a "new since you last
    looked" divider. Tab completes commands, rooms, the current room's
    nicks, and after C{/msg} everyone known.

    @ivar editor: the line editor.
    @ivar closed: fires once standard output is closed.
    """

    def __init__(
        self, client: ChatClient, screen_options: dict[str, Any], *,
        history: History | None = None, size: Callable[[], tuple[int, int]] = lambda: (80, 24),
    ) -> None:
        """
        @param screen_options: keyword arguments of L{Screen}.
        @param history: the input history (memory only by default).
        @param size: the terminal's C{(columns, rows)}.
        """
        self.client = client
        self.editor = LineEditor(
            self.client.input, quit=self._quit, prompt=self._prompt, completions=self._completions,
            history=history, size=size,
        )
        super().__init__(lambda: self.editor)
        self._screen_options = screen_options
        self.screen: Screen | None = None
        self.closed: Deferred[None] = Deferred()

    def _prompt(self) -> str:
        room = self.client.model.current
        return f"{room.name}> " if room is not None else "> "

    def _completions(self) -> Completions:
        model = self.client.model
        room = model.current
        people = {nick.lower(): nick for r in model.rooms.values() for nick in r.members}
        people.update(model.conversations)
        people.pop(model.nick.lower(), None)
        return Completions(
            commands=sorted({*COMMANDS, *ALIASES, *CLIENT_COMMANDS}),
            rooms=[r.name for r in model.rooms.values()],
            nicks=list(room.members) if room is not None else [],
            people=sorted(people.values(), key=str.casefold),
        )

    def _quit(self) -> None:
        if not self.client.done.called:
            self.client.quit()

    @override
    def connectionMade(self) -> None:
        super().connectionMade()
        self.screen = Screen(
            self.client.model, self.editor.show, status=self.editor.set_status, **self._screen_options,
        )
        self.client.model.observe(self._show)

    def _show(self, change: Change) -> None:
        assert self.screen is not None
        self.screen.show(change)
        if isinstance(change, RoomsChanged):
            model, current = self.client.model, self.client.model.current
            if current is not None and current.name.lower() != model.looking:
                # What the user looks at is the current room: when it
                # changes, the next message of the one left comes after an
                # unread divider (this calls back with another RoomsChanged).
                model.look(current.name)
            self.editor.redraw()  # the prompt names the current room

    @override
    def connectionLost(self, reason: Failure | None = None) -> None:
        super().connectionLost(reason)
        self._quit()
        if not self.closed.called:
            self.closed.callback(None)

    def close(self) -> Deferred[None]:
        """
        Erase the prompt row, close standard output; fires once done.
        """
        assert self.transport is not None
        self.editor.leave()
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
    Connect and run until the user quits; the user's settings
    (L{chat.client.settings.ClientSettings}: muted rooms, last server and
    nick) are read with the options and saved as they change.
    """
    endpoint, starttls = client_options.endpoint(reactor, options)
    client = ChatClient(
        reactor, endpoint, account, where=options.where, secure=bool(options["tls"]),
        starttls=starttls, downloads=options["downloads"], settings=options.settings, e2e=True,
    )
    terminal = sys.stdout.isatty()
    screen_options = {
        "colour": use_colour(sys.stdout), "terminal": terminal, "seconds": reactor.seconds, "alert": terminal,
    }
    frontend: StdioFrontend | TerminalFrontend
    if terminal and sys.stdin.isatty():
        editing = TerminalFrontend(
            client, screen_options, history=History(history_path()), size=_terminal_size,
        )
        signal.signal(signal.SIGWINCH, lambda *_: reactor.callFromThread(editing.editor.redraw))
        frontend = editing
    else:
        frontend = StdioFrontend(client, screen_options)
    stdio.StandardIO(frontend, reactor=reactor)
    if options.settings.notice:  # told before the screen was there to show it
        client.model.notice(options.settings.notice, "error")
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
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        react(run, [options, account])  # exits
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        react(run, [options, account])
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _terminal_size() -> tuple[int, int]:
    """
    The terminal's C{(columns, rows)}, 80 by 24 when it does not say.
    """
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return (80, 24)
    return (size.columns or 80, size.lines or 24)

# -*- test-case-name: tests.test_client_tk -*-
"""
C{chat-tk}: the desktop frontend, a ttk window on the client core shared
with C{chat-client}, run by Twisted's reactor through
L{twisted.internet.tksupport}.

L{ChatWindow} only observes the L{ChatModel} and calls L{ChatClient}
methods; no network or disk work happens in it. What a line of the
message pane says is decided by plain functions (L{format_change},
L{nick_colour}, L{transfer_detail}, L{status_text}), kept apart from the
widgets so that they can be tested without a display.
"""

from __future__ import annotations

import sys
import tkinter as tk
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from tkinter import filedialog, ttk
from tkinter import font as tkfont
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from chat import events
from chat.client import options as client_options
from chat.client.model import (
    Change,
    ChatModel,
    ConnectionChanged,
    Notice,
    RoomsChanged,
    State,
    Transfer,
    TransferChanged,
    UsersChanged,
)
from chat.client.service import Account, ChatClient
from chat.client.stdio import size_text

PROGRESS_INTERVAL = 0.1
"""Seconds between two redraws of the transfers panel (about ten a second)."""

ERROR_SECONDS = 15.0
"""Seconds an error stays in the status bar."""

EXIT_GRACE = 2.0
"""Seconds Exit waits for the goodbye to be sent before closing anyway."""

MAX_LINES = 5000
"""Lines the message pane keeps; older ones are dropped."""

MAX_OFFERS = 20
"""Offers listed in the files panel; older ones are dropped from it."""

MAX_TRANSFERS = 8
"""Transfers listed in the files panel; the oldest finished ones go first."""

CARD_WIDTH = 258
"""Pixels of text across a card of the files panel (296 - 2 × 8 - 2 × 10 - 2)."""

HISTORY_SIZE = 200
"""Lines typed that Up and Down recall."""


# Themes


@dataclass(frozen=True)
class Theme:
    """
    The colours of the window, as C{#rrggbb} strings.

    @ivar nicks: the colours nicks are drawn in, all readable on C{pane}.
    """

    name: str
    window: str
    panel: str
    pane: str
    field: str
    button: str
    hover: str
    text: str
    muted: str
    border: str
    accent: str
    accent_hover: str
    on_accent: str
    select: str
    ok: str
    warn: str
    error: str
    private: str
    private_bg: str
    mention_bg: str
    action: str
    link: str
    nicks: tuple[str, ...]


DARK = Theme(
    name="dark",
    window="#16181d",
    panel="#1c1f26",
    pane="#20242c",
    field="#2a2f39",
    button="#2d323d",
    hover="#373d4a",
    text="#dde1e8",
    muted="#8b93a1",
    border="#303644",
    accent="#4c8dff",
    accent_hover="#6aa0ff",
    on_accent="#ffffff",
    select="#2f3d58",
    ok="#3fb950",
    warn="#d29922",
    error="#ff6b6b",
    private="#d2a8ff",
    private_bg="#2a2436",
    mention_bg="#33301f",
    action="#c9a7ff",
    link="#6cb6ff",
    nicks=(
        "#ff7b72", "#ffa657", "#f2cc60", "#b5e06b", "#6fdd8b", "#4fd6be",
        "#56c8f0", "#7aa7ff", "#a99bff", "#d2a8ff", "#f28ce0", "#ff9ab5",
    ),
)
"""The default theme: light text on dark grey-blue."""

LIGHT = Theme(
    name="light",
    window="#eef0f3",
    panel="#f6f7f9",
    pane="#ffffff",
    field="#ffffff",
    button="#ffffff",
    hover="#e6e9ee",
    text="#1f2328",
    muted="#656d76",
    border="#d0d7de",
    accent="#0969da",
    accent_hover="#0a5cc2",
    on_accent="#ffffff",
    select="#dbe8fb",
    ok="#1a7f37",
    warn="#9a6700",
    error="#cf222e",
    private="#8250df",
    private_bg="#f5f0fd",
    mention_bg="#fff5d6",
    action="#8250df",
    link="#0969da",
    nicks=(
        "#cf222e", "#bc4c00", "#8a6100", "#537a00", "#1a7f37", "#0f7b6c",
        "#0a7399", "#0969da", "#4b50c8", "#8250df", "#a22fa8", "#bf3989",
    ),
)
"""Dark text on white."""

THEMES = {theme.name: theme for theme in (DARK, LIGHT)}


# Formatting (pure)


def nick_index(nick: str, count: int) -> int:
    """
    The index of C{nick}'s colour among C{count}: the same for every
    spelling of the nick, on every run.
    """
    return zlib.crc32(nick.lower().encode("utf-8")) % count


def nick_colour(nick: str, theme: Theme) -> str:
    """
    The colour C{nick} is drawn in with C{theme}, as C{#rrggbb}.
    """
    return theme.nicks[nick_index(nick, len(theme.nicks))]


def nick_tag(nick: str) -> str:
    """
    The name of the pane's text tag for C{nick}'s colour (C{nick0} to
    C{nick11}): both themes have twelve nick colours.
    """
    return f"nick{nick_index(nick, len(DARK.nicks))}"


def room_tag(room: str) -> str:
    """
    The name of the pane's tag of the lines about C{room}, hidden while
    another room is current.
    """
    return "room:" + room.lower()


LINE_KINDS = ("message", "mention", "action", "private", "system", "error", "history", "offer")
"""The kinds of L{Line}."""

Segment = tuple[str, tuple[str, ...]]
"""Some text of a line, and the names of the pane's tags it is drawn with."""


@dataclass(frozen=True)
class Line:
    """
    One line of the message pane.

    @ivar kind: its look (the whole line gets the tag C{line:KIND}):
        C{message}, C{mention} (a message that names the user), C{action},
        C{private}, C{system}, C{error}, C{history} or C{offer}.
    @ivar segments: its text, without a line end, in pieces with their tags.
    @ivar room: the room it belongs to (shown only while that room is
        current), or C{None} for a line shown whatever the room.
    """

    kind: str
    segments: tuple[Segment, ...]
    room: str | None = None

    @property
    def text(self) -> str:
        """
        The line's text, without a line end.
        """
        return "".join(text for text, _ in self.segments)


def _stamp(ts: datetime, zone: tzinfo | None, dated: bool = False) -> Segment:
    return ts.astimezone(zone).strftime("%d %b %H:%M" if dated else "%H:%M"), ("time",)


def _nick(nick: str) -> Segment:
    return nick, ("nick", nick_tag(nick))


def _gap() -> Segment:
    return "  ", ()


def _names(text: str, nick: str) -> bool:
    """
    Whether C{text} names C{nick} as a word, ignoring case.
    """
    if not nick:
        return False
    lowered, wanted = text.lower(), nick.lower()
    start = lowered.find(wanted)
    while start >= 0:
        end = start + len(wanted)
        before = lowered[start - 1] if start else " "
        after = lowered[end] if end < len(lowered) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        start = lowered.find(wanted, start + 1)
    return False


def message_line(message: events.Message, me: str, zone: tzinfo | None = None, history: bool = False,
                 dated: bool = False) -> Line:
    """
    The pane's line for a room message: C{HH:MM  nick  text}, or
    C{HH:MM  * nick text} for an action; C{dated} adds the day
    (C{10 May 18:12}), for history of another day.
    """
    stamp = _stamp(message.ts, zone, dated=dated)
    if history:
        kind = "history"
    elif message.action:
        kind = "action"
    elif message.sender.lower() != me.lower() and _names(message.text, me):
        kind = "mention"
    else:
        kind = "message"
    segments: tuple[Segment, ...]
    if message.action:
        segments = (stamp, _gap(), ("* ", ("act",)), _nick(message.sender), (" " + message.text, ("act",)))
    else:
        segments = (stamp, _gap(), _nick(message.sender), _gap(), (message.text, ("body",)))
    return Line(kind, segments, message.room)


def private_line(private: events.Private, me: str, zone: tzinfo | None = None) -> Line:
    """
    The pane's line for a private message: C{HH:MM  bob → you  text}, or
    C{HH:MM  you → bob  text} for the echo of one the user sent.
    """
    mine = private.sender.lower() == me.lower() and private.to.lower() != me.lower()
    if mine:
        who: tuple[Segment, ...] = (("you", ("muted",)), (" → ", ("arrow",)), _nick(private.to))
    else:
        who = (_nick(private.sender), (" → ", ("arrow",)), ("you", ("muted",)))
    text = f"* {private.sender} {private.text}" if private.action else private.text
    away: tuple[Segment, ...] = (("  (sent while you were away)", ("muted",)),) if private.offline else ()
    return Line("private", (_stamp(private.ts, zone), _gap(), *who, _gap(), (text, ("body",)), *away))


def system_line(text: str, ts: datetime, zone: tzinfo | None = None, room: str | None = None,
                kind: str = "system", mark: str = "•") -> Line:
    """
    A line from the daemon or the client itself about what happened:
    C{HH:MM  • text}; C{kind} C{error} marks it C{!}.
    """
    return Line(kind, (_stamp(ts, zone), _gap(), (f"{mark} {text}", (kind,))), room)


def format_change(change: Change, me: str, now: datetime, zone: tzinfo | None = None) -> list[Line]:
    """
    The pane's lines for one change of the model (none for those that
    only change a panel: transfers, the room and user lists, pongs of the
    client's own pings).

    @param me: the user's nick, to tell their own private messages and
        the messages that name them.
    @param now: when the change happened, for the lines whose event has no
        time of its own (UTC).
    @param zone: the time zone of timestamps; the local one by default.
    """
    match change:
        case Notice(text=text, level="error"):
            return [system_line(text, now, zone, kind="error", mark="!")]
        case Notice(text=text):
            return [system_line(text, now, zone)]
        case events.Message():
            return [message_line(change, me, zone)]
        case events.Private():
            return [private_line(change, me, zone)]
        case events.History(messages=messages, room=room):
            if not messages:
                return []
            head = Line("history", ((f"── earlier in {room} ──", ("divider",)),), room)
            tail = Line("history", (("── now ──", ("divider",)),), room)
            today = now.astimezone(zone).date()
            return [head, *(message_line(m, me, zone, history=True, dated=m.ts.astimezone(zone).date() != today)
                            for m in messages), tail]
        case events.Joined(nick=nick, room=room):
            what = "You joined" if nick.lower() == me.lower() else f"{nick} joined"
            return [system_line(f"{what} {room}", change.ts, zone, room, mark="→")]
        case events.Parted(nick=nick, room=room):
            reason = f" ({change.reason})" if change.reason else ""
            what = "You left" if nick.lower() == me.lower() else f"{nick} left"
            return [system_line(f"{what} {room}{reason}", change.ts, zone, room, mark="←")]
        case events.Quit():
            return [system_line(f"{change.nick} quit ({change.reason})", change.ts, zone, mark="←")]
        case events.NickChanged():
            return [system_line(f"{change.old} is now known as {change.new}", change.ts, zone)]
        case events.StatusChanged(nick=nick, text=""):
            return [system_line(f"{nick} is back", now, zone)]
        case events.StatusChanged():
            return [system_line(f"{change.nick} is {change.text}", now, zone)]
        case events.Topic(room=room, text=""):
            return [system_line(f"{room} has no topic", now, zone, room)]
        case events.Topic():
            by = f" (set by {change.by})" if change.by else ""
            return [system_line(f"Topic of {change.room}: {change.text}{by}", now, zone, change.room)]
        case events.Users():
            # The people panel shows the rooms joined; other rooms get a line.
            listed = ", ".join(u.nick + (f" ({u.status})" if u.status else "") for u in change.users)
            return [system_line(f"In {change.room}: {listed or 'nobody'}", now, zone)]
        case events.Rooms():
            if not change.rooms:
                return [system_line("No rooms", now, zone)]
            return [system_line("Rooms:", now, zone)] + [
                system_line(f"  {r.room} ({r.count}) {r.topic}".rstrip(), now, zone, mark=" ") for r in change.rooms
            ]
        case events.Whois():
            how = "logged in" if change.account else "guest"
            tls = "TLS" if change.secure else "no TLS"
            status = f", status: {change.status}" if change.status else ""
            return [system_line(
                f"{change.nick}: {how}, {tls}, in {' '.join(change.rooms) or 'no room'}, idle {change.idle} s, "
                f"since {change.since.astimezone(zone):%Y-%m-%d %H:%M}{status}", now, zone,
            )]
        case events.FileOffer():
            return [offer_line(change, me, now, zone)]
        case events.Welcome():
            lines = [system_line(f"Connected to {change.server} {change.version}", now, zone)]
            return lines + [system_line(text, now, zone, mark=" ") for text in change.motd.splitlines()]
        case events.Registered():
            how = ", logged in" if change.account else ""
            return [system_line(f"You are {change.nick}{how}. Type to talk, /help for commands.", now, zone)]
        case events.Info():
            return [system_line(text, now, zone) for text in change.text.splitlines() or [""]]
        case events.Error():
            return [system_line(f"{change.message} ({change.code})", now, zone, kind="error", mark="!")]
        case events.Pong():
            return [system_line(f"pong {change.token}".rstrip(), now, zone)]
        case events.Bye():
            return [system_line(f"Bye: {change.reason}", now, zone)]
    return []


def offer_line(offer: events.FileOffer, me: str, now: datetime, zone: tzinfo | None = None) -> Line:
    """
    The pane's line for a file offer, with a C{Download} link (tags
    C{link} and C{offer:ID}) unless the user made the offer.
    """
    to = "you" if offer.to.lower() == me.lower() else offer.to
    mine = offer.sender.lower() == me.lower()
    who: tuple[Segment, ...] = (("You", ()),) if mine else (_nick(offer.sender),)
    link: tuple[Segment, ...] = () if mine else (("   ", ()), ("Download", ("link", f"offer:{offer.id}")))
    return Line("offer", (
        _stamp(now, zone), _gap(), ("↓ ", ("offer",)), *who,
        (f" offered {offer.name} ({size_text(offer.size)}) to {to}", ("body",)), *link,
    ))


def transfer_title(transfer: Transfer, name: str | None = None) -> str:
    """
    What a transfer is: C{↑ NAME → TARGET} or C{↓ NAME ← SENDER}, with
    C{name} (a shortened one) instead of the transfer's if given.
    """
    name = transfer.name if name is None else name
    if transfer.kind == "upload":
        return f"↑ {name} → {transfer.peer}"
    return f"↓ {name} ← {transfer.peer}"


def transfer_detail(transfer: Transfer) -> str:
    """
    How far a transfer is: C{60% · 1.2 MiB of 2.0 MiB}, C{Done · 2.0 MiB},
    or C{Failed: WHY}.
    """
    if transfer.error:
        return f"Failed: {transfer.error}"
    if transfer.finished:
        return f"Done · {size_text(transfer.size)}"
    return f"{transfer.fraction * 100:.0f}% · {size_text(transfer.done)} of {size_text(transfer.size)}"


def rtt_text(rtt: float | None) -> str:
    """
    A round-trip time in seconds for people: C{RTT 12 ms}, C{RTT <1 ms},
    or C{RTT –} before the first measure.
    """
    if rtt is None:
        return "RTT –"
    if rtt < 0.001:
        return "RTT <1 ms"
    return f"RTT {rtt * 1000:.0f} ms"


STATE_NAMES = {
    State.DISCONNECTED: "Disconnected",
    State.CONNECTING: "Connecting…",
    State.CONNECTED: "Connected",
    State.ONLINE: "Online",
}


def status_text(model: ChatModel, where: str) -> str:
    """
    The status bar: C{Online · HOST:PORT · NICK · TLS · RTT 12 ms}.
    """
    parts = [STATE_NAMES[model.state], where, model.nick or "no nick", "TLS" if model.secure else "not encrypted"]
    if model.state == State.ONLINE:
        parts.append(rtt_text(model.rtt))
    return " · ".join(parts)


def fit(text: str, font: tkfont.Font, pixels: int) -> str:
    """
    C{text}, shortened in the middle with C{…} until it is at most
    C{pixels} wide in C{font}.
    """
    if font.measure(text) <= pixels:
        return text
    keep = len(text)
    while keep > 1:
        keep -= 1
        head = (keep + 1) // 2
        shorter = text[:head] + "…" + text[len(text) - (keep - head):]
        if font.measure(shorter) <= pixels:
            return shorter
    return "…"


def short_path(path: Path) -> str:
    """
    C{path} with the home folder written C{~}.
    """
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


# The window


class ChatSession(Protocol):
    """
    What L{ChatWindow} uses of a L{ChatClient}.
    """

    model: ChatModel
    downloads: Path
    where: str

    def input(self, line: str) -> None:
        """Run a line typed by the user, as the terminal client does."""

    def send_file(self, target: str, path: Path) -> None:
        """Offer the file at C{path} to C{target}, a nick or C{#room}."""

    def get_file(self, offer_id: int, folder: Path | None = None) -> None:
        """Download an offer into C{folder}, by default L{downloads}."""

    def leave(self) -> Deferred[None]:
        """Disconnect, keeping the session for L{reconnect}."""

    def reconnect(self) -> None:
        """Connect again after L{leave}."""

    def quit(self, reason: str = "") -> Deferred[None]:
        """Say goodbye and stop; fires once the connection is closed."""


@dataclass
class Fonts:
    """
    The fonts of the window, made once per Tk interpreter.
    """

    base: tkfont.Font
    bold: tkfont.Font
    small: tkfont.Font
    heading: tkfont.Font
    title: tkfont.Font
    chat: tkfont.Font
    chat_bold: tkfont.Font
    chat_italic: tkfont.Font
    time: tkfont.Font

    @classmethod
    def create(cls, root: tk.Misc) -> Fonts:
        """
        Fonts of the family of C{TkDefaultFont}, which becomes 10 points.
        """
        default = tkfont.nametofont("TkDefaultFont", root=root)
        default.configure(size=10)
        family = str(default.actual("family"))

        def make(size: int, weight: str = "normal", slant: str = "roman") -> tkfont.Font:
            return tkfont.Font(root=root, family=family, size=size, weight=weight, slant=slant)  # type: ignore[arg-type]

        return cls(
            base=default, bold=make(10, "bold"), small=make(9), heading=make(9, "bold"), title=make(13, "bold"),
            chat=make(11), chat_bold=make(11, "bold"), chat_italic=make(11, slant="italic"), time=make(9),
        )


def style_window(root: tk.Misc, theme: Theme, fonts: Fonts) -> ttk.Style:
    """
    Configure the ttk styles of C{root}'s interpreter for C{theme} (on
    C{clam}, which takes colours everywhere).
    """
    style = ttk.Style(root)
    style.theme_use("clam")
    t = theme
    style.configure(
        ".", background=t.window, foreground=t.text, fieldbackground=t.field, bordercolor=t.border,
        lightcolor=t.window, darkcolor=t.window, troughcolor=t.panel, selectbackground=t.select,
        selectforeground=t.text, insertcolor=t.text, focuscolor=t.accent, font=fonts.base,
    )
    style.map(".", background=[("disabled", t.window)], foreground=[("disabled", t.muted)])
    for name, colour in (("TFrame", t.window), ("Panel.TFrame", t.panel), ("Pane.TFrame", t.pane),
                         ("Card.TFrame", t.field), ("Status.TFrame", t.panel)):
        style.configure(name, background=colour)
    style.configure("Rule.TFrame", background=t.border)
    style.configure("TLabel", background=t.window, foreground=t.text)
    style.configure("Panel.TLabel", background=t.panel, foreground=t.text)
    style.configure("Heading.TLabel", background=t.panel, foreground=t.muted, font=fonts.heading)
    style.configure("Muted.TLabel", background=t.panel, foreground=t.muted, font=fonts.small)
    style.configure("Card.TLabel", background=t.field, foreground=t.text, font=fonts.bold)
    style.configure("CardMuted.TLabel", background=t.field, foreground=t.muted, font=fonts.small)
    style.configure("CardError.TLabel", background=t.field, foreground=t.error, font=fonts.small)
    style.configure("Title.TLabel", background=t.window, foreground=t.text, font=fonts.title)
    style.configure("Server.TLabel", background=t.panel, foreground=t.text, font=fonts.title)
    style.configure("Topic.TLabel", background=t.window, foreground=t.muted, font=fonts.small)
    style.configure("Status.TLabel", background=t.panel, foreground=t.muted, font=fonts.small)
    style.configure("StatusError.TLabel", background=t.panel, foreground=t.error, font=fonts.small)
    style.configure("Target.TLabel", background=t.window, foreground=t.muted)
    style.configure("Dialog.TLabel", background=t.window, foreground=t.muted)
    style.configure("DialogError.TLabel", background=t.window, foreground=t.error)
    style.configure("TCheckbutton", background=t.window, foreground=t.text, indicatorbackground=t.field,
                    indicatorforeground=t.accent, bordercolor=t.border, lightcolor=t.field, darkcolor=t.field)
    style.map("TCheckbutton", background=[("active", t.window)], indicatorbackground=[("pressed", t.hover)])

    button = {"background": t.button, "foreground": t.text, "bordercolor": t.border, "lightcolor": t.button,
              "darkcolor": t.button, "padding": (12, 5), "focusthickness": 0, "anchor": "center"}
    style.configure("TButton", **button)
    style.map("TButton", background=[("disabled", t.panel), ("pressed", t.select), ("active", t.hover)],
              lightcolor=[("active", t.hover)], darkcolor=[("active", t.hover)],
              foreground=[("disabled", t.muted)])
    style.configure("Small.TButton", padding=(10, 2), font=fonts.small, width=0)
    style.configure("SmallAccent.TButton", background=t.accent, foreground=t.on_accent, bordercolor=t.accent,
                    lightcolor=t.accent, darkcolor=t.accent, padding=(10, 2), font=fonts.small, width=0)
    style.configure("Accent.TButton", background=t.accent, foreground=t.on_accent, bordercolor=t.accent,
                    lightcolor=t.accent, darkcolor=t.accent)
    for name in ("Accent.TButton", "SmallAccent.TButton"):
        style.map(name, background=[("disabled", t.button), ("pressed", t.accent_hover), ("active", t.accent_hover)],
                  lightcolor=[("disabled", t.button), ("active", t.accent_hover)],
                  darkcolor=[("disabled", t.button), ("active", t.accent_hover)],
                  bordercolor=[("disabled", t.border), ("active", t.accent_hover)],
                  foreground=[("disabled", t.muted)])

    style.configure("TEntry", fieldbackground=t.field, foreground=t.text, insertcolor=t.text,
                    bordercolor=t.border, lightcolor=t.field, darkcolor=t.field, padding=(8, 6))
    style.map("TEntry", bordercolor=[("focus", t.accent)], lightcolor=[("focus", t.field)])

    row = fonts.base.metrics("linespace") + 10
    for name in ("Rooms.Treeview", "Users.Treeview"):
        style.configure(name, background=t.panel, fieldbackground=t.panel, foreground=t.text,
                        bordercolor=t.panel, lightcolor=t.panel, darkcolor=t.panel, rowheight=row, font=fonts.base,
                        indent=0, padding=(8, 0))
        style.map(name, background=[("selected", t.select)], foreground=[("selected", t.text)])
        style.layout(name, [("Treeview.treearea", {"sticky": "nswe"})])

    style.configure("Transfer.Horizontal.TProgressbar", troughcolor=t.panel, background=t.accent,
                    bordercolor=t.field, lightcolor=t.accent, darkcolor=t.accent, thickness=6)
    style.configure("Done.Horizontal.TProgressbar", troughcolor=t.panel, background=t.ok,
                    bordercolor=t.field, lightcolor=t.ok, darkcolor=t.ok, thickness=6)
    style.configure("Failed.Horizontal.TProgressbar", troughcolor=t.panel, background=t.error,
                    bordercolor=t.field, lightcolor=t.error, darkcolor=t.error, thickness=6)
    style.configure("Vertical.TScrollbar", background=t.hover, troughcolor=t.pane, bordercolor=t.pane,
                    arrowcolor=t.muted, lightcolor=t.hover, darkcolor=t.hover, gripcount=0, arrowsize=9)
    style.map("Vertical.TScrollbar", background=[("active", t.muted)])
    style.layout("Vertical.TScrollbar", [("Vertical.Scrollbar.trough", {"sticky": "ns", "children": [
        ("Vertical.Scrollbar.thumb", {"sticky": "nswe"})]})])
    return style


class _Scrolled:
    """
    A frame in a canvas, scrolled vertically; its scroll bar shows only
    when the contents do not fit.
    """

    def __init__(self, parent: tk.Misc, style: str) -> None:
        self.outer = ttk.Frame(parent, style=style)
        self.canvas = tk.Canvas(self.outer, highlightthickness=0, borderwidth=0)
        self.bar = ttk.Scrollbar(self.outer, orient="vertical", command=self.canvas.yview)
        self.inner = ttk.Frame(self.canvas, style=style)
        self._item = self.canvas.create_window(0, 0, window=self.inner, anchor="nw")
        self.canvas.configure(yscrollcommand=self._scrolled)
        self.canvas.grid(row=0, column=0, sticky="nsew")
        self.bar.grid(row=0, column=1, sticky="ns")
        self.bar.grid_remove()
        self.outer.columnconfigure(0, weight=1)
        self.outer.rowconfigure(0, weight=1)
        self.inner.bind("<Configure>", self._inner_resized)
        self.canvas.bind("<Configure>", self._canvas_resized)
        for widget in (self.canvas, self.inner):
            widget.bind("<Button-4>", lambda e: self._wheel(-1))
            widget.bind("<Button-5>", lambda e: self._wheel(1))

    def _scrolled(self, first: str | float, last: str | float) -> None:
        self.bar.set(first, last)
        if float(first) <= 0.0 and float(last) >= 1.0:
            self.bar.grid_remove()
        else:
            self.bar.grid()

    def _inner_resized(self, event: tk.Event[Any]) -> None:
        self.canvas.configure(scrollregion=(0, 0, event.width, event.height))

    def _canvas_resized(self, event: tk.Event[Any]) -> None:
        self.canvas.itemconfigure(self._item, width=event.width)

    def _wheel(self, steps: int) -> None:
        if self.bar.winfo_ismapped():
            self.canvas.yview_scroll(steps, "units")


@dataclass
class TransferRow:
    """
    The widgets of one transfer in the files panel.
    """

    frame: ttk.Frame
    title: ttk.Label
    bar: ttk.Progressbar
    detail: ttk.Label
    transfer: Transfer


@dataclass
class OfferRow:
    """
    The widgets of one offer in the files panel.
    """

    frame: ttk.Frame
    title: ttk.Label
    detail: ttk.Label
    button: ttk.Button
    offer: events.FileOffer


class ChatWindow:
    """
    The main window: the message pane, the input line, the rooms, the
    people of the current room, the files panel and a status bar. It
    observes C{client.model} and calls C{client}'s methods; it never reads
    a socket or a file itself.

    @ivar pane: the message pane (read-only).
    @ivar entry: the input line: Enter sends, Up and Down recall.
    @ivar rooms: the rooms joined, by lower-case name, with unread counts.
    @ivar users: the people of the current room, by lower-case nick.
    @ivar offer_rows: the offers listed, by offer id.
    @ivar transfer_rows: the transfers listed, by the model's number.
    @ivar choose_file: asks for a file to send; returns its path, or an
        empty string when the user cancelled.
    @ivar choose_folder: asks for the downloads folder, likewise.
    """

    _log = Logger()

    def __init__(
        self,
        root: tk.Tk,
        client: ChatSession,
        *,
        clock: IReactorTime | None = None,
        on_exit: Callable[[], None] | None = None,
        theme: str = "dark",
        zone: tzinfo | None = None,
    ) -> None:
        """
        @param clock: schedules the throttled redraws and the end of the
            error shown in the status bar; the global reactor by default.
        @param on_exit: called once Exit is done (the goodbye sent, or
            L{EXIT_GRACE} seconds passed): stops the program. By default
            the root window is destroyed.
        @param theme: C{dark} or C{light}.
        @param zone: the time zone of timestamps; the local one by default.
        """
        if clock is None:
            from twisted.internet import reactor as global_reactor

            clock = global_reactor
        assert clock is not None
        self.root = root
        self.client = client
        self.model = client.model
        self._clock = clock
        self._on_exit = on_exit or root.destroy
        self._zone = zone
        self.theme = THEMES[theme]
        self.fonts = Fonts.create(root)
        self.style = style_window(root, self.theme, self.fonts)
        self.choose_file: Callable[[], str] = lambda: filedialog.askopenfilename(
            parent=self.root, title="Send a file")
        self.choose_folder: Callable[[], str] = lambda: filedialog.askdirectory(
            parent=self.root, title="Downloads folder", initialdir=str(self.client.downloads), mustexist=False)

        self.offer_rows: dict[int, OfferRow] = {}
        self.transfer_rows: dict[int, TransferRow] = {}
        self._dirty: dict[int, Transfer] = {}
        self._redraw: IDelayedCall | None = None
        self._drawn_at = -PROGRESS_INTERVAL
        self._error_timer: IDelayedCall | None = None
        self._room_tags: set[str] = set()
        self._shown_room: str | None = None
        self._last_state = self.model.state
        self._recalled: list[str] = []
        self._recall_at = 0
        self._draft = ""
        self._exiting = False
        self._closed = False

        root.title("chat")
        root.geometry("1120x700")
        root.minsize(860, 480)
        self._theme_name = tk.StringVar(root, value=self.theme.name)
        self._build_menu()
        self._build()
        self._apply_colours()
        root.protocol("WM_DELETE_WINDOW", self.exit)
        root.bind("<Control-q>", lambda e: self.exit())
        self.model.observe(self.show)
        self._refresh_all()
        self.entry.focus_set()

    # Building

    def _build_menu(self) -> None:
        self.menu = tk.Menu(self.root, tearoff=False, borderwidth=0, relief="flat")
        self.chat_menu = tk.Menu(self.menu, tearoff=False)
        self.chat_menu.add_command(label="Send file…", command=self.send_file)
        self.chat_menu.add_command(label="Downloads folder…", command=self.choose_downloads)
        self.chat_menu.add_separator()
        self.chat_menu.add_command(label="Leave", command=self.leave_or_reconnect)
        self.chat_menu.add_command(label="Exit", command=self.exit, accelerator="Ctrl+Q")
        self.view_menu = tk.Menu(self.menu, tearoff=False)
        for name in THEMES:
            self.view_menu.add_radiobutton(label=f"{name.title()} theme", value=name, variable=self._theme_name,
                                           command=lambda: self.set_theme(self._theme_name.get()))
        self.menu.add_cascade(label="Chat", menu=self.chat_menu)
        self.menu.add_cascade(label="View", menu=self.view_menu)
        self.root.configure(menu=self.menu)

    def _build(self) -> None:
        root = self.root
        root.columnconfigure(0, weight=1)
        root.rowconfigure(0, weight=1)
        main = ttk.Frame(root)
        main.grid(row=0, column=0, sticky="nsew")
        main.columnconfigure(2, weight=1)
        main.rowconfigure(0, weight=1)

        # Rooms, on the left.
        left = ttk.Frame(main, style="Panel.TFrame", width=176, padding=(0, 12, 0, 10))
        left.grid(row=0, column=0, sticky="nsew")
        left.grid_propagate(False)
        left.columnconfigure(0, weight=1)
        left.rowconfigure(3, weight=1)
        self.server_label = ttk.Label(left, text="chat", style="Server.TLabel", padding=(16, 0, 8, 0))
        self.server_label.grid(row=0, column=0, sticky="w")
        self.where_label = ttk.Label(left, text=self.client.where, style="Muted.TLabel", padding=(16, 0, 8, 14))
        self.where_label.grid(row=1, column=0, sticky="w")
        ttk.Label(left, text="ROOMS", style="Heading.TLabel", padding=(16, 0, 0, 6)).grid(row=2, column=0, sticky="w")
        self.rooms = ttk.Treeview(left, style="Rooms.Treeview", columns=("unread",), show="tree", selectmode="browse",
                                  height=4)
        self.rooms.column("#0", width=120, stretch=True)
        self.rooms.column("unread", width=44, stretch=False, anchor="e")
        self.rooms.grid(row=3, column=0, sticky="nsew", padx=(8, 8))
        self.rooms.bind("<<TreeviewSelect>>", self._room_selected)
        room_buttons = ttk.Frame(left, style="Panel.TFrame", padding=(12, 8, 12, 0))
        room_buttons.grid(row=4, column=0, sticky="ew")
        room_buttons.columnconfigure((0, 1), weight=1, uniform="buttons")
        ttk.Button(room_buttons, text="Join…", style="Small.TButton", command=self._ask_join).grid(
            row=0, column=0, sticky="ew")
        self.part_button = ttk.Button(room_buttons, text="Part", style="Small.TButton",
                                      command=lambda: self.client.input("/part"))
        self.part_button.grid(row=0, column=1, sticky="ew", padx=(6, 0))
        ttk.Frame(main, style="Rule.TFrame", width=1).grid(row=0, column=1, sticky="ns")

        # The conversation, in the middle.
        centre = ttk.Frame(main)
        centre.grid(row=0, column=2, sticky="nsew")
        centre.columnconfigure(0, weight=1)
        centre.rowconfigure(1, weight=1)
        header = ttk.Frame(centre, padding=(18, 8, 14, 8))
        header.grid(row=0, column=0, sticky="ew")
        header.columnconfigure(0, weight=1)
        self.room_title = ttk.Label(header, text="", style="Title.TLabel")
        self.room_title.grid(row=0, column=0, sticky="w")
        self.topic = ttk.Label(header, text="", style="Topic.TLabel")
        self.topic.grid(row=1, column=0, sticky="ew")
        self.leave_button = ttk.Button(header, text="Leave", command=self.leave_or_reconnect, width=10)
        self.leave_button.grid(row=0, column=1, rowspan=2, padx=(12, 6))
        self.exit_button = ttk.Button(header, text="Exit", command=self.exit, width=6)
        self.exit_button.grid(row=0, column=2, rowspan=2)
        header.bind("<Configure>", lambda e: self._fit_topic())

        pane_frame = ttk.Frame(centre, style="Pane.TFrame")
        pane_frame.grid(row=1, column=0, sticky="nsew")
        pane_frame.columnconfigure(0, weight=1)
        pane_frame.rowconfigure(0, weight=1)
        self.pane = tk.Text(
            pane_frame, wrap="word", state="disabled", borderwidth=0, highlightthickness=0, relief="flat",
            padx=18, pady=12, font=self.fonts.chat, spacing1=3, spacing3=3, cursor="xterm", undo=False,
        )
        self.pane.grid(row=0, column=0, sticky="nsew")
        self.pane_bar = ttk.Scrollbar(pane_frame, orient="vertical", command=self.pane.yview)
        self.pane_bar.grid(row=0, column=1, sticky="ns")
        self.pane.configure(yscrollcommand=self._pane_scrolled)
        self.jump_button = ttk.Button(pane_frame, text="↓ New messages", style="Accent.TButton",
                                      command=self.scroll_to_end)
        self.pane.tag_bind("link", "<Enter>", lambda e: self.pane.configure(cursor="hand2"))
        self.pane.tag_bind("link", "<Leave>", lambda e: self.pane.configure(cursor="xterm"))

        compose = ttk.Frame(centre, padding=(16, 10, 16, 12))
        compose.grid(row=2, column=0, sticky="ew")
        compose.columnconfigure(1, weight=1)
        self.target_label = ttk.Label(compose, text="", style="Target.TLabel")
        self.target_label.grid(row=0, column=0, padx=(0, 8))
        self.entry = ttk.Entry(compose, font=self.fonts.chat)
        self.entry.grid(row=0, column=1, sticky="ew")
        self.entry.bind("<Return>", self._entered)
        self.entry.bind("<KP_Enter>", self._entered)
        self.entry.bind("<Up>", lambda e: self._recall(-1))
        self.entry.bind("<Down>", lambda e: self._recall(1))
        self.entry.bind("<Prior>", lambda e: self.pane.yview_scroll(-1, "pages"))
        self.entry.bind("<Next>", lambda e: self.pane.yview_scroll(1, "pages"))
        self.send_button = ttk.Button(compose, text="Send", style="Accent.TButton", command=self.send_entry, width=8)
        self.send_button.grid(row=0, column=2, padx=(8, 0))
        ttk.Frame(main, style="Rule.TFrame", width=1).grid(row=0, column=3, sticky="ns")

        # People and files, on the right.
        right = ttk.Frame(main, style="Panel.TFrame", width=296, padding=(0, 12, 0, 0))
        right.grid(row=0, column=4, sticky="nsew")
        right.grid_propagate(False)
        right.columnconfigure(0, weight=1)
        right.rowconfigure(1, weight=2)
        right.rowconfigure(4, weight=3)
        people = ttk.Frame(right, style="Panel.TFrame", padding=(16, 0, 12, 6))
        people.grid(row=0, column=0, sticky="ew")
        people.columnconfigure(0, weight=1)
        self.users_label = ttk.Label(people, text="PEOPLE", style="Heading.TLabel")
        self.users_label.grid(row=0, column=0, sticky="w")
        self.refresh_button = ttk.Button(people, text="Refresh", style="Small.TButton",
                                         command=lambda: self.client.input("/list"))
        self.refresh_button.grid(row=0, column=1, sticky="e")
        self.users = ttk.Treeview(right, style="Users.Treeview", columns=("status",), show="tree",
                                  selectmode="browse", height=4)
        self.users.column("#0", width=120, stretch=True)
        self.users.column("status", width=110, stretch=True)
        self.users.grid(row=1, column=0, sticky="nsew", padx=(8, 8))
        self.users.bind("<<TreeviewSelect>>", lambda e: self._show_target())
        self.users.bind("<Double-Button-1>", self._user_double_clicked)
        self.users.bind("<Escape>", lambda e: self.users.selection_set(()))
        ttk.Frame(right, style="Rule.TFrame", height=1).grid(row=2, column=0, sticky="ew", pady=(8, 0))

        files = ttk.Frame(right, style="Panel.TFrame", padding=(16, 10, 12, 6))
        files.grid(row=3, column=0, sticky="ew")
        files.columnconfigure(0, weight=1)
        ttk.Label(files, text="FILES", style="Heading.TLabel").grid(row=0, column=0, sticky="w")
        self.send_file_button = ttk.Button(files, text="Send file…", style="Small.TButton", command=self.send_file)
        self.send_file_button.grid(row=0, column=1, sticky="e")
        self.files_area = _Scrolled(right, "Panel.TFrame")
        self.files_area.outer.grid(row=4, column=0, sticky="nsew", padx=(8, 0))
        self.files_area.inner.columnconfigure(0, weight=1)
        self.offers_box = ttk.Frame(self.files_area.inner, style="Panel.TFrame")
        self.offers_box.grid(row=0, column=0, sticky="ew")
        self.offers_box.columnconfigure(0, weight=1)
        self.transfers_box = ttk.Frame(self.files_area.inner, style="Panel.TFrame")
        self.transfers_box.grid(row=1, column=0, sticky="ew")
        self.transfers_box.columnconfigure(0, weight=1)
        self.no_files = ttk.Label(self.files_area.inner, text="Files offered to you and your transfers show here.",
                                  style="Muted.TLabel", wraplength=240, padding=(8, 4))
        self.no_files.grid(row=2, column=0, sticky="ew")
        downloads = ttk.Frame(right, style="Panel.TFrame", padding=(16, 8, 12, 12))
        downloads.grid(row=5, column=0, sticky="ew")
        downloads.columnconfigure(0, weight=1)
        self.downloads_label = ttk.Label(downloads, text="", style="Muted.TLabel")
        self.downloads_label.grid(row=0, column=0, sticky="w")
        ttk.Button(downloads, text="Change…", style="Small.TButton",
                   command=self.choose_downloads).grid(row=0, column=1, sticky="e")

        # The status bar, at the bottom.
        ttk.Frame(root, style="Rule.TFrame", height=1).grid(row=1, column=0, sticky="ew")
        status = ttk.Frame(root, style="Status.TFrame", padding=(12, 4, 12, 5))
        status.grid(row=2, column=0, sticky="ew")
        status.columnconfigure(2, weight=1)
        self.state_dot = ttk.Label(status, text="●", style="Status.TLabel")
        self.state_dot.grid(row=0, column=0)
        self.status_label = ttk.Label(status, text="", style="Status.TLabel")
        self.status_label.grid(row=0, column=1, padx=(6, 0))
        self.error_label = ttk.Label(status, text="", style="StatusError.TLabel", anchor="e")
        self.error_label.grid(row=0, column=2, sticky="e")

    def _apply_colours(self) -> None:
        """
        Colour what ttk styles do not reach: the pane, its tags, menus, canvases, list rows.
        """
        t, f = self.theme, self.fonts
        self.root.configure(background=t.window)
        self.pane.configure(background=t.pane, foreground=t.text, insertbackground=t.text,
                            selectbackground=t.select, selectforeground=t.text, inactiveselectbackground=t.select)
        indent = f.time.measure("00:00") + f.chat.measure("  ")
        pane = self.pane
        for kind in LINE_KINDS:
            pane.tag_configure(f"line:{kind}", lmargin2=indent)
        pane.tag_configure("line:private", background=t.private_bg)
        pane.tag_configure("line:mention", background=t.mention_bg)
        pane.tag_configure("line:history", foreground=t.muted)
        pane.tag_configure("time", foreground=t.muted, font=f.time)
        pane.tag_configure("system", foreground=t.muted)
        pane.tag_configure("error", foreground=t.error)
        pane.tag_configure("arrow", foreground=t.private)
        pane.tag_configure("muted", foreground=t.muted)
        pane.tag_configure("act", foreground=t.action, font=f.chat_italic)
        pane.tag_configure("divider", foreground=t.muted, font=f.time)
        pane.tag_configure("offer", foreground=t.accent, font=f.chat_bold)
        pane.tag_configure("link", foreground=t.link, underline=True)
        pane.tag_configure("nick", font=f.chat_bold)
        for index, colour in enumerate(t.nicks):
            pane.tag_configure(f"nick{index}", foreground=colour)
        for tag in ("line:history", "link", "sel"):
            pane.tag_raise(tag)  # history dims nicks too; links and the selection show over all
        for menu in (self.menu, self.chat_menu, self.view_menu):
            menu.configure(background=t.panel, foreground=t.text, activebackground=t.select,
                           activeforeground=t.text, selectcolor=t.accent, font=f.base)
        self.files_area.canvas.configure(background=t.panel)
        for tree in (self.rooms, self.users):
            for index, colour in enumerate(t.nicks):
                tree.tag_configure(f"nick{index}", foreground=colour)
        self.rooms.tag_configure("unread", font=f.bold, foreground=t.text)
        self.rooms.tag_configure("read", font=f.base, foreground=t.muted)
        self.users.tag_configure("me", font=f.bold)

    def set_theme(self, name: str) -> None:
        """
        Switch to the theme C{name} (C{dark} or C{light}).
        """
        self.theme = THEMES[name]
        self._theme_name.set(name)
        self.style = style_window(self.root, self.theme, self.fonts)
        self._apply_colours()
        self._refresh_all()

    # Observing the model

    def show(self, change: Change) -> None:
        """
        Render one change of the model: lines in the pane, and the panels
        and status bar it concerns. Called by the model, in order.
        """
        if self._closed:
            return
        match change:
            case TransferChanged(transfer=transfer):
                self._transfer_changed(transfer)
                return
            case RoomsChanged():
                self._refresh_rooms()
                return
            case UsersChanged(room=room):
                current = self.model.current
                if current is not None and current.name.lower() == room.lower():
                    self._refresh_users()
                return
            case ConnectionChanged():
                self._refresh_status()
                self._refresh_users()
                return
            case Notice(level="error") | events.Error():
                self.show_error(change.text if isinstance(change, Notice) else change.message)
            case events.Registered() | events.Welcome():
                self._refresh_status()
            case events.Topic():
                self._refresh_rooms()
            case events.FileOffer():
                self._add_offer(change)
            case events.Users() if change.room.lower() in self.model.rooms:
                return  # the people panel shows it
            case events.Pong():
                return
        self.append(format_change(change, self.model.nick, self._now(), self._zone))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), timezone.utc)

    def close(self) -> None:
        """
        Stop rendering and cancel the timers (before the root is destroyed).
        """
        if not self._closed:
            self.model.unobserve(self.show)
        self._closed = True
        for call in (self._redraw, self._error_timer):
            if call is not None and call.active():
                call.cancel()
        self._redraw = self._error_timer = None

    # The pane

    def at_bottom(self) -> bool:
        """
        Whether the pane shows its last line: new lines then scroll it.
        """
        return self.pane.yview()[1] >= 0.999

    def append(self, lines: Sequence[Line]) -> None:
        """
        Add C{lines} to the pane; it scrolls to them only if it was at the
        bottom, and shows the new-messages button otherwise.
        """
        if not lines:
            return
        follow = self.at_bottom()
        pane = self.pane
        pane.configure(state="normal")
        shown = self._shown_room
        for line in lines:
            tags: tuple[str, ...] = (f"line:{line.kind}",)
            if line.room is not None:
                tag = room_tag(line.room)
                if tag not in self._room_tags:
                    self._room_tags.add(tag)
                    pane.tag_configure(tag, elide=shown is not None and tag != shown)
                tags += (tag,)
            for text, segment_tags in line.segments:
                pane.insert("end-1c", text, (*segment_tags, *tags))
                for tag in segment_tags:
                    if tag.startswith("offer:"):
                        pane.tag_bind(tag, "<Button-1>", self._offer_clicked(int(tag[6:])))
            pane.insert("end-1c", "\n", tags)
        excess = int(pane.index("end-1c").split(".")[0]) - 1 - MAX_LINES
        if excess > 0:
            pane.delete("1.0", f"{excess + 1}.0")
        pane.configure(state="disabled")
        if follow:
            pane.see("end")
        elif any(line.room is None or shown is None or room_tag(line.room) == shown for line in lines):
            self.jump_button.place(relx=1.0, rely=1.0, x=-28, y=-12, anchor="se")

    def scroll_to_end(self) -> None:
        """
        Show the last line of the pane.
        """
        self.pane.see("end")
        self.jump_button.place_forget()

    def _pane_scrolled(self, first: str | float, last: str | float) -> None:
        self.pane_bar.set(first, last)
        if float(last) >= 0.999:
            self.jump_button.place_forget()

    def pane_lines(self, visible: bool = True) -> list[str]:
        """
        The text of the pane's lines (only those of the current room and
        of no room when C{visible}), without line ends.
        """
        if not visible:
            return self.pane.get("1.0", "end-1c").splitlines()
        hidden = {tag for tag in self._room_tags if self.pane.tag_cget(tag, "elide") in ("1", 1, True)}
        shown = []
        for number in range(1, int(self.pane.index("end-1c").split(".")[0])):
            if not hidden.intersection(self.pane.tag_names(f"{number}.0")):
                shown.append(self.pane.get(f"{number}.0", f"{number}.end"))
        return shown

    def _offer_clicked(self, offer_id: int) -> Callable[[tk.Event[Any]], None]:
        def clicked(event: tk.Event[Any]) -> None:
            self.download(offer_id)

        return clicked

    # Input

    def _entered(self, event: tk.Event[Any]) -> str:
        self.send_entry()
        return "break"

    def send_entry(self) -> None:
        """
        Send the input line as typed (a message, or a command) and remember it for Up.
        """
        line = self.entry.get()
        if not line.strip():
            return
        self.entry.delete(0, "end")
        if not self._recalled or self._recalled[-1] != line:
            self._recalled.append(line)
            del self._recalled[:-HISTORY_SIZE]
        self._recall_at = len(self._recalled)
        self._draft = ""
        self.scroll_to_end()
        self.client.input(line)

    def _recall(self, step: int) -> str:
        if not self._recalled:
            return "break"
        if self._recall_at == len(self._recalled):
            self._draft = self.entry.get()
        self._recall_at = max(0, min(len(self._recalled), self._recall_at + step))
        text = self._draft if self._recall_at == len(self._recalled) else self._recalled[self._recall_at]
        self.entry.delete(0, "end")
        self.entry.insert(0, text)
        self.entry.icursor("end")
        return "break"

    def _ask_join(self) -> None:
        self.entry.delete(0, "end")
        self.entry.insert(0, "/join #")
        self.entry.icursor("end")
        self.entry.focus_set()

    def _user_double_clicked(self, event: tk.Event[Any]) -> None:
        nick = self.selected_user()
        if nick is not None:
            self.entry.delete(0, "end")
            self.entry.insert(0, f"/msg {nick} ")
            self.entry.icursor("end")
            self.entry.focus_set()

    # Rooms and people

    def _refresh_all(self) -> None:
        self._refresh_rooms()
        self._refresh_users()
        self._refresh_status()
        self._show_downloads()
        for row in self.transfer_rows.values():
            self._draw_transfer(row)

    def _refresh_rooms(self) -> None:
        model = self.model
        current = model.current
        for item in self.rooms.get_children():
            self.rooms.delete(item)
        for key, room in sorted(model.rooms.items()):
            unread = str(room.unread) if room.unread else ""
            self.rooms.insert("", "end", iid=key, text=room.name, values=(unread,),
                              tags=("unread" if room.unread or room is current else "read",))
        if current is not None:
            self.rooms.selection_set(current.name.lower())
            self.rooms.see(current.name.lower())
        self.room_title.configure(text=current.name if current else "No room")
        self._fit_topic()
        shown = room_tag(current.name) if current is not None else None
        if shown != self._shown_room:
            # Another room is current: show its lines (and those of no room), from the end.
            self._shown_room = shown
            for tag in self._room_tags:
                self.pane.tag_configure(tag, elide=shown is not None and tag != shown)
            self.scroll_to_end()
        self.part_button.state(["!disabled"] if current is not None else ["disabled"])
        self._refresh_users()

    def _fit_topic(self) -> None:
        current = self.model.current
        text = (current.topic or "No topic") if current is not None else "Not in a room: Join… on the left"
        width = self.topic.master.winfo_width() - self.leave_button.winfo_width() - self.exit_button.winfo_width() - 60
        self.topic.configure(text=fit(text, self.fonts.small, max(width, 200)))

    def _room_selected(self, event: tk.Event[Any]) -> None:
        selected = self.rooms.selection()
        if not selected:
            return
        room = self.model.rooms.get(selected[0])
        if room is not None and room is not self.model.current:
            self.client.input(f"/join {room.name}")

    def _refresh_users(self) -> None:
        current = self.model.current
        chosen = self.selected_user()
        for item in self.users.get_children():
            self.users.delete(item)
        members = list(current.members.values()) if current is not None else []
        me = self.model.nick.lower()
        for info in sorted(members, key=lambda u: u.nick.lower()):
            tags = (nick_tag(info.nick),) + (("me",) if info.nick.lower() == me else ())
            self.users.insert("", "end", iid=info.nick.lower(), text=info.nick, values=(info.status,),
                              tags=tags)
        if chosen is not None and self.users.exists(chosen.lower()):
            self.users.selection_set(chosen.lower())
        count = len(members)
        self.users_label.configure(text=f"PEOPLE · {count} ONLINE" if current is not None else "PEOPLE")
        self._show_target()

    def selected_user(self) -> str | None:
        """
        The nick selected in the people list, or C{None}.
        """
        selected = self.users.selection()
        if not selected:
            return None
        return str(self.users.item(selected[0], "text"))

    def file_target(self) -> str | None:
        """
        Where Send file sends: the person selected (other than the user),
        else the current room; C{None} when neither.
        """
        nick = self.selected_user()
        if nick is not None and nick.lower() != self.model.nick.lower():
            return nick
        current = self.model.current
        return current.name if current is not None else None

    def _show_target(self) -> None:
        current = self.model.current
        self.target_label.configure(text=current.name if current is not None else "")
        target = self.file_target()
        label = f"Send file to {fit(target, self.fonts.small, 110)}…" if target else "Send file…"
        self.send_file_button.configure(text=label)

    # Status

    def _refresh_status(self) -> None:
        model = self.model
        if model.state == State.ONLINE and self._last_state != State.ONLINE:
            self._clear_error()  # what went wrong before is over
        self._last_state = model.state
        colour = {State.ONLINE: self.theme.ok, State.DISCONNECTED: self.theme.error}.get(model.state, self.theme.warn)
        self.state_dot.configure(foreground=colour)
        self.status_label.configure(text=status_text(model, self.client.where))
        self.leave_button.configure(text="Reconnect" if model.state == State.DISCONNECTED else "Leave",
                                    style="Accent.TButton" if model.state == State.DISCONNECTED else "TButton")
        self.chat_menu.entryconfigure(3, label="Reconnect" if model.state == State.DISCONNECTED else "Leave")
        name = model.nick or "chat"
        self.root.title(f"{name} — chat on {self.client.where}")
        if model.welcome is not None:
            self.server_label.configure(text=fit(model.welcome.server, self.fonts.title, 160))

    def show_error(self, text: str) -> None:
        """
        Show C{text} in the status bar for L{ERROR_SECONDS}.
        """
        room = self.error_label.master.winfo_width() - self.status_label.winfo_reqwidth() - 60
        self.error_label.configure(text=fit("! " + text, self.fonts.small, max(room, 200)))
        if self._error_timer is not None and self._error_timer.active():
            self._error_timer.cancel()
        self._error_timer = self._clock.callLater(ERROR_SECONDS, self._clear_error)

    def _clear_error(self) -> None:
        if self._error_timer is not None and self._error_timer.active():
            self._error_timer.cancel()
        self._error_timer = None
        if not self._closed:
            self.error_label.configure(text="")

    # Files

    def send_file(self) -> None:
        """
        Ask for a file and send it to L{file_target}.
        """
        target = self.file_target()
        if target is None:
            self.model.notice("Join a room or pick someone in the people list to send a file.", "error")
            return
        path = self.choose_file()
        if path:
            self.client.send_file(target, Path(path))

    def choose_downloads(self) -> None:
        """
        Ask for the folder downloads are saved in.
        """
        folder = self.choose_folder()
        if folder:
            self.client.downloads = Path(folder)
            self._show_downloads()
            self.model.notice(f"Downloads go to {self.client.downloads}.")

    def _show_downloads(self) -> None:
        self.downloads_label.configure(text=fit("Save to " + short_path(self.client.downloads), self.fonts.small, 170))

    def download(self, offer_id: int) -> None:
        """
        Download offer C{offer_id} into the downloads folder.
        """
        row = self.offer_rows.get(offer_id)
        if row is not None:
            row.button.state(["disabled"])
        self.client.get_file(offer_id)

    def _add_offer(self, offer: events.FileOffer) -> None:
        if offer.sender.lower() == self.model.nick.lower() or offer.id in self.offer_rows:
            return
        frame = ttk.Frame(self.offers_box, style="Card.TFrame", padding=(10, 8, 10, 8))
        frame.columnconfigure(0, weight=1)
        title = ttk.Label(frame, text=fit(offer.name, self.fonts.bold, CARD_WIDTH), style="Card.TLabel")
        title.grid(row=0, column=0, columnspan=2, sticky="w")
        to = "you" if offer.to.lower() == self.model.nick.lower() else offer.to
        button = ttk.Button(frame, text="Download", style="SmallAccent.TButton",
                            command=lambda: self.download(offer.id))
        button.grid(row=1, column=1, sticky="e", padx=(8, 0))
        where = "" if to == "you" else f" → {to}"
        room = CARD_WIDTH - button.winfo_reqwidth() - 10
        detail = ttk.Label(frame, text=fit(f"{offer.sender}{where} · {size_text(offer.size)}", self.fonts.small, room),
                           style="CardMuted.TLabel")
        detail.grid(row=1, column=0, sticky="w", pady=(2, 0))
        self.offer_rows[offer.id] = OfferRow(frame, title, detail, button, offer)
        while len(self.offer_rows) > MAX_OFFERS:
            self.offer_rows.pop(min(self.offer_rows)).frame.destroy()
        self._layout_files()

    def _transfer_changed(self, transfer: Transfer) -> None:
        self._dirty[transfer.id] = transfer
        if transfer.finished or transfer.id not in self.transfer_rows:
            self._draw_transfers()
            return
        if self._redraw is not None and self._redraw.active():
            return
        wait = self._drawn_at + PROGRESS_INTERVAL - self._clock.seconds()
        if wait <= 0:
            self._draw_transfers()
        else:
            self._redraw = self._clock.callLater(wait, self._draw_transfers)

    def _draw_transfers(self) -> None:
        if self._redraw is not None and self._redraw.active():
            self._redraw.cancel()
        self._redraw = None
        if self._closed:
            return
        self._drawn_at = self._clock.seconds()
        added = False
        for transfer in self._dirty.values():
            row = self.transfer_rows.get(transfer.id)
            if row is None:
                row = self._transfer_row(transfer)
                added = True
            self._draw_transfer(row)
            if transfer.kind == "download" and transfer.finished:
                offer_row = self.offer_rows.get(transfer.offer) if transfer.offer is not None else None
                if offer_row is not None:
                    # Failed: it can be tried again; else it is saved.
                    offer_row.button.configure(text="Download" if transfer.error else "Saved")
                    offer_row.button.state(["!disabled"] if transfer.error else ["disabled"])
        self._dirty.clear()
        if added:
            self._layout_files()

    def _transfer_row(self, transfer: Transfer) -> TransferRow:
        frame = ttk.Frame(self.transfers_box, style="Card.TFrame", padding=(10, 8, 10, 8))
        frame.columnconfigure(0, weight=1)
        room = CARD_WIDTH - self.fonts.bold.measure(transfer_title(transfer, ""))
        title = ttk.Label(frame, text=transfer_title(transfer, fit(transfer.name, self.fonts.bold, max(room, 60))),
                          style="Card.TLabel")
        title.grid(row=0, column=0, sticky="w")
        bar = ttk.Progressbar(frame, style="Transfer.Horizontal.TProgressbar", maximum=100.0, mode="determinate")
        bar.grid(row=1, column=0, sticky="ew", pady=(5, 4))
        detail = ttk.Label(frame, text="", style="CardMuted.TLabel")
        detail.grid(row=2, column=0, sticky="w")
        row = TransferRow(frame, title, bar, detail, transfer)
        self.transfer_rows[transfer.id] = row
        while len(self.transfer_rows) > MAX_TRANSFERS:
            finished = [tid for tid, r in self.transfer_rows.items() if r.transfer.finished]
            if not finished:
                break
            self.transfer_rows.pop(min(finished)).frame.destroy()
        return row

    def _draw_transfer(self, row: TransferRow) -> None:
        transfer = row.transfer
        row.bar.configure(value=transfer.fraction * 100.0)
        if transfer.error:
            row.bar.configure(style="Failed.Horizontal.TProgressbar")
        elif transfer.finished:
            row.bar.configure(style="Done.Horizontal.TProgressbar")
        row.detail.configure(text=transfer_detail(transfer),
                             style="CardError.TLabel" if transfer.error else "CardMuted.TLabel")

    def _layout_files(self) -> None:
        for index, offer_id in enumerate(sorted(self.offer_rows, reverse=True)):
            self.offer_rows[offer_id].frame.grid(row=index, column=0, sticky="ew", padx=(0, 8), pady=(0, 6))
        for index, tid in enumerate(sorted(self.transfer_rows, reverse=True)):
            self.transfer_rows[tid].frame.grid(row=index, column=0, sticky="ew", padx=(0, 8), pady=(0, 6))
        if self.offer_rows or self.transfer_rows:
            self.no_files.grid_remove()
        else:
            self.no_files.grid()

    # Leaving

    def leave_or_reconnect(self) -> None:
        """
        Leave the server (the window stays), or connect again after leaving.
        """
        if self.model.state == State.DISCONNECTED:
            self.client.reconnect()
        else:
            self.client.leave().addErrback(self._failed, "leave")

    def exit(self) -> None:
        """
        Say goodbye and close: L{on_exit} is called once the goodbye is
        sent, or after L{EXIT_GRACE} seconds.
        """
        if self._exiting:
            return
        self._exiting = True
        timer = self._clock.callLater(EXIT_GRACE, self._exited)

        def done(result: object) -> None:
            if timer.active():
                timer.cancel()
            self._exited()

        self.client.quit().addErrback(self._failed, "quit").addBoth(done)

    def _exited(self) -> None:
        if not self._closed:
            self.close()
            self._on_exit()

    def _failed(self, reason: Failure, what: str) -> None:
        self._log.failure("Could not {what}", reason, what=what)


# Connecting


class TkOptions(client_options.ClientOptions):
    """
    The options of C{chat-client}, under the name C{chat-tk}.
    """

    program = "chat-tk"
    synopsis = "Usage: chat-tk [options] [NICK]"
    longdesc = (
        "Opens a chat window connected to a chat daemon as NICK. Without NICK, or with --password-prompt, "
        "a dialog asks for the server, the nick, a password and TLS first. With --tls the server's "
        "certificate and host name are verified against the system's CAs, or --cafile."
    )


class ConnectDialog:
    """
    Asks where to connect and as whom: host, port, nick, an optional
    password, TLS and a CA file. Used before the reactor runs.

    @ivar result: the options and account chosen, or C{None} if the user
        closed the dialog.
    """

    def __init__(self, root: tk.Tk, options: client_options.ClientOptions) -> None:
        self.root = root
        self.options = options
        self.result: tuple[client_options.ClientOptions, Account] | None = None
        top = self.top = tk.Toplevel(root)
        top.title("Connect — chat")
        top.resizable(False, False)
        top.protocol("WM_DELETE_WINDOW", self.cancel)
        frame = ttk.Frame(top, padding=(22, 18, 22, 16))
        frame.grid(row=0, column=0, sticky="nsew")
        frame.columnconfigure(1, weight=1)
        ttk.Label(frame, text="Connect to a chat server", style="Title.TLabel").grid(
            row=0, column=0, columnspan=3, sticky="w", pady=(0, 14))
        self.host = tk.StringVar(top, value=options["host"])
        self.port = tk.StringVar(top, value=str(options["port"]))
        self.nick = tk.StringVar(top, value=options["nick"] or "")
        self.password = tk.StringVar(top, value="")
        self.tls = tk.BooleanVar(top, value=bool(options["tls"]))
        self.cafile = tk.StringVar(top, value=options["cafile"] or "")
        rows: list[tuple[str, tk.StringVar, dict[str, Any]]] = [
            ("Server", self.host, {}),
            ("Port", self.port, {"width": 8}),
            ("Nickname", self.nick, {}),
            ("Password", self.password, {"show": "•"}),
        ]
        self.entries: dict[str, ttk.Entry] = {}
        for index, (label, variable, extra) in enumerate(rows, start=1):
            ttk.Label(frame, text=label).grid(row=index, column=0, sticky="w", padx=(0, 12), pady=4)
            entry = ttk.Entry(frame, textvariable=variable, width=extra.pop("width", 28), **extra)
            entry.grid(row=index, column=1, columnspan=2 if label != "Port" else 1, sticky="ew" if label != "Port"
                       else "w", pady=4)
            self.entries[label.lower()] = entry
        ttk.Label(frame, text="Leave the password empty to join as a guest.", style="Dialog.TLabel").grid(
            row=5, column=1, columnspan=2, sticky="w")
        ttk.Checkbutton(frame, text="Use TLS (encrypted)", variable=self.tls, command=self._tls_toggled).grid(
            row=6, column=1, columnspan=2, sticky="w", pady=(10, 4))
        ttk.Label(frame, text="CA file").grid(row=7, column=0, sticky="w", padx=(0, 12), pady=4)
        self.cafile_entry = ttk.Entry(frame, textvariable=self.cafile, width=28)
        self.cafile_entry.grid(row=7, column=1, sticky="ew", pady=4)
        self.browse_button = ttk.Button(frame, text="Browse…", command=self._browse)
        self.browse_button.grid(row=7, column=2, padx=(6, 0))
        self.error = ttk.Label(frame, text="", style="DialogError.TLabel", wraplength=380)
        self.error.grid(row=8, column=0, columnspan=3, sticky="w", pady=(8, 0))
        buttons = ttk.Frame(frame)
        buttons.grid(row=9, column=0, columnspan=3, sticky="e", pady=(14, 0))
        ttk.Button(buttons, text="Quit", command=self.cancel).pack(side="right")
        ttk.Button(buttons, text="Connect", style="Accent.TButton", command=self.submit).pack(side="right", padx=6)
        top.bind("<Return>", lambda e: self.submit())
        top.bind("<Escape>", lambda e: self.cancel())
        self._tls_toggled(swap_port=False)
        (self.entries["nickname"] if not self.nick.get() else self.entries["password"]).focus_set()

    def _tls_toggled(self, swap_port: bool = True) -> None:
        state = ["!disabled"] if self.tls.get() else ["disabled"]
        self.cafile_entry.state(state)
        self.browse_button.state(state)
        if swap_port:
            defaults = {str(client_options.DEFAULT_PORT), str(client_options.DEFAULT_TLS_PORT)}
            if self.port.get().strip() in defaults:
                port = client_options.DEFAULT_TLS_PORT if self.tls.get() else client_options.DEFAULT_PORT
                self.port.set(str(port))

    def _browse(self) -> None:
        path = filedialog.askopenfilename(parent=self.top, title="CA certificate (PEM)",
                                          filetypes=[("PEM certificates", "*.pem *.crt"), ("All files", "*")])
        if path:
            self.cafile.set(path)

    def argv(self) -> list[str]:
        """
        The command line the fields describe, keeping C{--starttls},
        C{--insecure} and C{--downloads} from the original one.
        """
        argv = ["--host", self.host.get().strip(), "--port", self.port.get().strip() or "0"]
        tls = self.tls.get()
        if tls:
            argv.append("--tls")
        elif self.options["starttls"]:
            argv.append("--starttls")
        if (tls or self.options["starttls"]) and self.cafile.get().strip():
            argv += ["--cafile", self.cafile.get().strip()]
        elif (tls or self.options["starttls"]) and self.options["insecure"]:
            argv.append("--insecure")
        argv += ["--downloads", str(self.options["downloads"]), "--", self.nick.get().strip()]
        return argv

    def submit(self) -> None:
        """
        Check the fields; close the dialog with L{result} set if they are good.
        """
        if not self.nick.get().strip():
            self.error.configure(text="Choose a nickname.")
            return
        options = TkOptions()
        try:
            options.parseOptions(self.argv())
            if options["cafile"]:
                client_options.read_cafile(options["cafile"])
        except (usage.UsageError, ValueError) as e:
            self.error.configure(text=str(e).replace("--", "") if isinstance(e, usage.UsageError) else str(e))
            return
        self.result = options, Account(options["nick"], self.password.get() or None)
        self.top.destroy()

    def cancel(self) -> None:
        """
        Close the dialog without connecting.
        """
        self.result = None
        self.top.destroy()

    def run(self) -> tuple[client_options.ClientOptions, Account] | None:
        """
        Wait (in Tk's own loop, before the reactor runs) until the dialog closes.
        """
        self.top.wait_window()
        return self.result


# The program


def run(reactor: Any, root: tk.Tk, options: client_options.ClientOptions, account: Account) -> None:
    """
    Connect and show the window; return once the user exits.
    """
    from twisted.internet import tksupport

    endpoint, starttls = client_options.endpoint(reactor, options)
    client = ChatClient(
        reactor, endpoint, account, where=options.where, secure=bool(options["tls"]),
        starttls=starttls, downloads=options["downloads"],
    )

    def stop() -> None:
        tksupport.uninstall()
        root.destroy()
        if reactor.running:
            reactor.stop()

    ChatWindow(root, client, clock=reactor, on_exit=stop)
    if options["insecure"]:
        client.model.notice(client_options.INSECURE_WARNING, "error")
    root.deiconify()
    tksupport.install(root)
    reactor.callWhenRunning(client.startService)
    reactor.run()


def main(argv: Sequence[str] | None = None) -> None:
    """
    The C{chat-tk} console script (also C{python -m chat.client.tk}): the
    options of C{chat-client}; without a NICK (or with
    C{--password-prompt}) a dialog asks for the connection first.
    """
    options: client_options.ClientOptions = TkOptions()
    try:
        options.parseOptions(list(sys.argv[1:] if argv is None else argv))
        if options["cafile"]:
            client_options.read_cafile(options["cafile"])
    except usage.UsageError as e:
        sys.stderr.write(f"{options}\nchat-tk: {e}\n")
        raise SystemExit(2) from None
    try:
        root = tk.Tk(className="Chat")
    except tk.TclError as e:
        sys.stderr.write(f"chat-tk: cannot open a window: {e}\n")
        raise SystemExit(1) from None
    root.withdraw()
    style_window(root, DARK, Fonts.create(root))
    root.configure(background=DARK.window)
    if not options["nick"] or options["password-prompt"]:
        chosen = ConnectDialog(root, options).run()
        if chosen is None:
            root.destroy()
            return
        options, account = chosen
    else:
        account = Account(options["nick"])
    from twisted.internet import reactor

    run(reactor, root, options, account)


if __name__ == "__main__":
    main()

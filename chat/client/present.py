# -*- test-case-name: tests.test_client_present -*-
"""
What a person sees of the chat, computed once for every front end: the
lines each change of the L{ChatModel} becomes, the colour of each nick,
the texts of sizes, transfers and the status bar, and the rows of the
room list (with unread counts) and of the people list.

Everything here is pure: plain values in, plain values out; no Tk, no
terminal escapes, no clock of its own. A line is a L{Line} of L{Span}s,
each with a style name from L{STYLES}: the terminal maps styles to ANSI
colours, the window to text tags. Where the two media word a line
differently (a transcript in the manner of IRC clients, or a messenger
window), the difference is data, in the L{Voice} each passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from chat import events
from chat.client.model import (
    CLEAR,
    ENCRYPTED,
    UNREADABLE,
    Change,
    ChatModel,
    Departed,
    Notice,
    OpenedPrivate,
    SettingsChanged,
    Transfer,
    UnreadMark,
)
from chat.client.status import nick_colour, size_text

STYLES = frozenset({
    "text", "time", "nick", "body", "action", "private", "arrow", "muted", "system", "error", "divider", "offer",
    "link", "bold", "italic", "code", "url",
})
"""
The looks of a L{Span}: C{text} (plain), C{time} (a timestamp), C{nick}
(in the nick's colour), C{body} (what someone said in a room), C{action}
(a C{/me}), C{private} (a private message), C{arrow} (who a private
message goes to), C{muted}, C{system} (what happened), C{error},
C{divider} (around history, and the unread marker), C{offer} (a file
offer), C{link} (what to click to download the line's offer), and the
light formatting of what people say (L{formatted}): C{bold} (typed
C{*so*}), C{italic} (C{_so_}), C{code} (C{`so`}) and C{url} (an http or
https address, the span's whole text: what to open when clicked).
"""

LOCK = "\N{LOCK}"
"""The mark before the text of a private message that was end-to-end encrypted and opened here."""

KINDS = ("message", "mention", "action", "private", "system", "error", "history", "offer", "unread")
"""
The kinds of L{Line}: C{message}, C{mention} (a message naming the
user), C{action}, C{private}, C{system}, C{error}, C{history} (a
message from before, or a divider around them), C{offer} and C{unread}
(the "new since you last looked" divider, see L{unread_divider}).
"""


@dataclass(frozen=True, slots=True)
class Span:
    """
    Some text of a line, in one look.

    @ivar text: the text, without a line end.
    @ivar style: one of L{STYLES}.
    @ivar nick_colour: for style C{nick}, the nick's colour (0 to
        L{NICK_COLOURS} - 1, see L{nick_colour}); C{None} otherwise.
    """

    text: str
    style: str = "text"
    nick_colour: int | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """
    One line to show.

    @ivar kind: its look as a whole, one of L{KINDS}.
    @ivar parts: its text in pieces, time stamp first when it has one;
        no piece is empty and no two neighbours have the same look.
    @ivar room: the room it belongs to (a window shows it only while the
        room is current), or C{None} for a line about no room.
    @ivar offer: the id of the file offer it is about, which a span of
        style C{link} downloads; C{None} for other lines.
    @ivar conversation: the nick of the other person of the private
        conversation it belongs to (a private message, or the quit of
        someone the user talked with privately), or C{None}.
    @ivar sender: who said it, for a room message, an action or a
        private message (the user's own included); C{None} otherwise.
    """

    kind: str
    parts: tuple[Span, ...]
    room: str | None = None
    offer: int | None = None
    conversation: str | None = None
    sender: str | None = None

    @property
    def text(self) -> str:
        """
        The line's text, without a line end.
        """
        return "".join(span.text for span in self.parts)


@dataclass(frozen=True, slots=True)
class Voice:
    """
    How a medium words the lines: the terminal's is a transcript in the
    manner of IRC clients (ASCII marks, everyone by nick, a command to
    type for each offer, every room in one stream); the window's reads
    like a messenger (arrows, "you", a link to click, one room at a
    time). What the lines say is otherwise the same.
    """

    name: str
    stamp: str
    """C{strftime} format of a line's time."""
    dated: str
    """C{strftime} format of the time of a message of another day (history)."""
    gap: str
    """Between the time and the rest of a line, and after what comes before a message's text."""
    sender: tuple[str, str]
    """Around the sender of a room message."""
    info: str
    """The mark of a line about what happened."""
    error: str
    """The mark of an error."""
    arrive: str
    """The mark of a join."""
    leave: str
    """The mark of a part or a quit."""
    more: str
    """The mark of a line that goes on with the one above (a list, a message of the day)."""
    offer: str
    """The mark of a file offer."""
    divider: str
    """Either side of the words of a history divider."""
    towards: tuple[str, str]
    """Between a transfer's file name and its peer: for an upload, for a download."""
    stamp_info: bool
    """Whether lines about what happened have a time (joins, parts and quits always do)."""
    you: bool
    """The user is "you": C{You joined}, C{bob → you}, C{You offered}; else they are their nick, and a private
    message reads C{*bob*} received and C{-> *bob*} sent."""
    links: bool
    """An offer has a C{Download} link to click; else it says the C{/get} command to type."""
    rooms_inline: bool
    """Messages name their room while several rooms are joined, and in history (every room in one stream)."""


TERMINAL = Voice(
    name="terminal", stamp="[%H:%M]", dated="[%d %b %H:%M]", gap=" ", sender=("<", "> "), info="***",
    error="!!!", arrive="-->", leave="<--", more="***", offer="***", divider="---", towards=("to", "from"),
    stamp_info=False, you=False, links=False, rooms_inline=True,
)
"""The voice of C{chat-client}: C{[09:30] <bob> hi}, C{*** text}."""

WINDOW = Voice(
    name="window", stamp="%H:%M", dated="%d %b %H:%M", gap="  ", sender=("", "  "), info="•", error="!",
    arrive="→", leave="←", more=" ", offer="↓", divider="──", towards=("→", "←"), stamp_info=True, you=True,
    links=True, rooms_inline=False,
)
"""The voice of C{chat-tk}: C{09:30  bob  hi}, C{09:30  • text}."""


# Small texts


def transfer_title(transfer: Transfer, voice: Voice, name: str | None = None) -> str:
    """
    What a transfer is: C{↑ NAME → TARGET} or C{↓ NAME ← SENDER} (with
    the terminal's C{to} and C{from}), with C{name} (a shortened one)
    instead of the transfer's if given.
    """
    name = transfer.name if name is None else name
    if transfer.kind == "upload":
        return f"↑ {name} {voice.towards[0]} {transfer.peer}"
    return f"↓ {name} {voice.towards[1]} {transfer.peer}"


def transfer_detail(transfer: Transfer) -> str:
    """
    How far a transfer is, under its progress bar: C{60% · 1.2 MiB of
    2.0 MiB}, C{Done · 2.0 MiB}, or C{Failed: WHY}.
    """
    if transfer.error:
        return f"Failed: {transfer.error}"
    if transfer.finished:
        return f"Done · {size_text(transfer.size)}"
    return f"{transfer.fraction * 100:.0f}% · {size_text(transfer.done)} of {size_text(transfer.size)}"


def transfer_bar(transfer: Transfer, width: int) -> str:
    """
    A progress bar in text: C{[######......]  50% 512.0 KiB of 1.0 MiB},
    or C{[############] 100% 1.0 MiB} once finished.

    @param width: characters between the brackets.
    """
    if transfer.finished:
        return f"[{'#' * width}] 100% {size_text(transfer.size)}"
    filled = int(transfer.fraction * width)
    return (f"[{'#' * filled}{'.' * (width - filled)}] {transfer.fraction * 100:3.0f}% "
            f"{size_text(transfer.done)} of {size_text(transfer.size)}")


def names(text: str, nick: str) -> bool:
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


# Light formatting

_FORMATTED = re.compile(
    r"(?P<code>`[^`\n]+`)"
    r"|(?P<url>\bhttps?://[^\s<>\"`]+)"
    r"|(?<![\w*])\*(?P<bold>[^\s*](?:[^*\n]*[^\s*])?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<italic>[^\s_](?:[^_\n]*[^\s_])?)_(?![\w_])",
    re.IGNORECASE,
)
"""The formatting of L{formatted}, leftmost first, one level (no nesting)."""

_URL_TRAILERS = ".,;:!?'\"*_"
"""Characters that end a sentence rather than an address."""


def _url_end(url: str) -> str:
    """
    C{url} without the punctuation of the sentence around it: trailing
    dots, commas, quotes, and closing brackets that do not close one of
    the address's own.
    """
    while url:
        last = url[-1]
        pairs = {")": "(", "]": "[", "}": "{"}
        if last in _URL_TRAILERS or (last in pairs and url.count(last) > url.count(pairs[last])):
            url = url[:-1]
        else:
            break
    return url


def formatted(text: str, style: str) -> tuple[Span, ...]:
    """
    The spans of what someone said, with the light formatting people type
    shown as such: C{*bold*} as style C{bold}, C{_italic_} as C{italic},
    C{`code`} as C{code} (the markers dropped; nothing inside code is
    formatted), and each C{http://} or C{https://} address as a C{url}
    span whose text is the address (trailing sentence punctuation left
    out); the rest in C{style}. Markers count only at word edges:
    C{snake_case_name}, C{2*3*4} and C{a * b} stay as typed. The text on
    the wire is never changed: this is only how a line is shown.

    @param text: one line (no line end).
    @param style: the look of the unformatted text, one of L{STYLES}.
    @return: no empty span, no two neighbours of the same look.
    """
    spans: list[Span] = []
    at = 0
    for match in _FORMATTED.finditer(text):
        spans.append(Span(text[at:match.start()], style))
        if match.group("url"):
            url = _url_end(match.group("url"))
            if not url.partition("://")[2]:
                spans.append(Span(match.group("url"), style))
            else:
                spans.append(Span(url, "url"))
                spans.append(Span(match.group("url")[len(url):], style))
        elif match.group("code"):
            spans.append(Span(match.group("code")[1:-1], "code"))
        elif match.group("bold"):
            spans.append(Span(match.group("bold"), "bold"))
        else:
            spans.append(Span(match.group("italic"), "italic"))
        at = match.end()
    spans.append(Span(text[at:], style))
    return _joined(spans)


# Alerts, unread markers, conversations

UNREAD_WORDS = "new since you last looked"
"""The words of the unread divider."""


def unread_divider(voice: Voice, room: str | None = None, conversation: str | None = None) -> Line:
    """
    The "new since you last looked" line of a room or a conversation:
    C{── new since you last looked ──} (C{--- … ---} in the terminal), of
    kind C{unread}, one span of style C{divider}. The presenter makes one
    of each L{UnreadMark}, just before the first unseen message; a front
    end that keeps lines per room or conversation keeps only the latest
    C{unread} line of each (dropping the earlier one when a new one comes).
    """
    edge = voice.divider
    return Line("unread", (Span(f"{edge} {UNREAD_WORDS} {edge}", "divider"),), room, conversation=conversation)


# Lines


def _joined(spans: Iterable[Span]) -> tuple[Span, ...]:
    """
    C{spans} without empty ones, neighbours of the same look made one.
    """
    joined: list[Span] = []
    for span in spans:
        if not span.text:
            continue
        if joined and (joined[-1].style, joined[-1].nick_colour) == (span.style, span.nick_colour):
            span = Span(joined[-1].text + span.text, span.style, span.nick_colour)
            joined.pop()
        joined.append(span)
    return tuple(joined)


def _nick(nick: str) -> Span:
    return Span(nick, "nick", nick_colour(nick))


OPERATOR_MARK = "@"
"""What comes before the nick of a room operator in lists of people."""

SETTING_WORDS = (("invite_only", "invite-only"), ("topic_lock", "topic-locked"), ("moderated", "moderated"))
"""The settings of a room (attributes of L{events.RoomSettings}) and how
a line words each."""


def settings_words(change: SettingsChanged) -> list[str]:
    """
    The words of a change of a room's settings, one item a line:
    C{#dev is now invite-only}, C{#dev is no longer moderated} for each
    setting that changed. The daemon tells the settings after a change
    only, so when none were known before the change is from all off:
    C{#dev is now invite-only} for each setting on, or C{#dev is no longer
    invite-only, topic-locked or moderated} when all are off.
    """
    now, before, room = change.settings, change.before, change.settings.room
    if before is None and not any(getattr(now, name) for name, _ in SETTING_WORDS):
        return [f"{room} is no longer invite-only, topic-locked or moderated"]
    if before is None:
        before = events.RoomSettings(room)
    return [
        f"{room} is {'now' if getattr(now, name) else 'no longer'} {word}"
        for name, word in SETTING_WORDS if getattr(now, name) != getattr(before, name)
    ]


class Presenter:
    """
    Turns each change of a L{ChatModel} into the lines to show, in one
    L{Voice}. It reads the model (the user's nick, how many rooms are
    joined) and keeps nothing.
    """

    def __init__(self, model: ChatModel, voice: Voice, zone: tzinfo | None = None) -> None:
        """
        @param zone: the time zone of timestamps; the local one by default.
        """
        self.model = model
        self.voice = voice
        self.zone = zone

    def _mine(self, nick: str) -> bool:
        return nick.lower() == self.model.nick.lower()

    def _stamp(self, ts: datetime, dated: bool = False) -> tuple[Span, Span]:
        stamp = ts.astimezone(self.zone).strftime(self.voice.dated if dated else self.voice.stamp)
        return Span(stamp, "time"), Span(self.voice.gap)

    def info(self, pieces: Iterable[str | Span], ts: datetime, room: str | None = None, kind: str = "system",
             mark: str | None = None) -> Line:
        """
        A line about what happened: C{09:30  • text} or C{*** text}, with
        the time only where the voice has one for such lines.

        @param pieces: the text, whose strings take the look C{kind}.
        @param kind: C{system} or C{error}.
        @param mark: the mark before the text; the voice's for C{kind} by default.
        """
        if mark is None:
            mark = self.voice.error if kind == "error" else self.voice.info
        stamp = self._stamp(ts) if self.voice.stamp_info else ()
        text = [piece if isinstance(piece, Span) else Span(piece, kind) for piece in pieces]
        return Line(kind, _joined((*stamp, Span(f"{mark} ", kind), *text)), room)

    def _presence(self, mark: str, who: str, what: str, ts: datetime, room: str | None) -> Line:
        name = "You" if self.voice.you and self._mine(who) else who
        return Line("system", _joined((*self._stamp(ts), Span(f"{mark} {name} {what}", "system"))), room)

    def message(self, message: events.Message, history: bool = False, dated: bool = False) -> Line:
        """
        The line of a room message: C{09:30  bob  text}, C{[09:30] <bob>
        text}, or C{* bob text} for an action.

        @param history: whether it comes from a C{history} event, shown with the
            look of the past.
        @param dated: whether its time has the day too (history of another day).
        """
        voice = self.voice
        if history:
            kind = "history"
        elif message.action:
            kind = "action"
        elif not self._mine(message.sender) and names(message.text, self.model.nick):
            kind = "mention"
        else:
            kind = "message"
        room = f"{message.room} " if voice.rooms_inline and (history or len(self.model.rooms) > 1) else ""
        said: tuple[Span, ...]
        if message.action:
            said = (Span("* ", "action"), _nick(message.sender), Span(" ", "action"),
                    *formatted(message.text, "action"))
        else:
            said = (Span(voice.sender[0]), _nick(message.sender), Span(voice.sender[1]),
                    *formatted(message.text, "body"))
        return Line(kind, _joined((*self._stamp(message.ts, dated), Span(room), *said)), message.room,
                    sender=message.sender)

    def private(self, private: events.Private) -> Line:
        """
        The line of a private message: C{09:30  bob → you  text} (C{you →
        bob} for the echo of one the user sent), or C{[09:30] *bob* text}
        (C{-> *bob*}) in a transcript; stored ones say so.
        """
        voice = self.voice
        sent = self._mine(private.sender) and not self._mine(private.to)
        who: tuple[Span, ...]
        if voice.you and sent:
            who = (Span("you", "muted"), Span(" → ", "arrow"), _nick(private.to))
        elif voice.you:
            who = (_nick(private.sender), Span(" → ", "arrow"), Span("you", "muted"))
        else:
            star = Span("*", "arrow")
            who = (Span("->", "arrow"), Span(" ")) if sent else ()
            who += (star, _nick(private.to if sent else private.sender), star)
        text: tuple[Span, ...] = (Span(f"* {private.sender} ", "private"),) if private.action else ()
        secrecy = private.secrecy if isinstance(private, OpenedPrivate) else ""
        if secrecy == UNREADABLE:
            reason = private.reason if isinstance(private, OpenedPrivate) else ""
            text = (Span(f"an encrypted message that could not be decrypted ({reason})", "error"),)
        elif private.e2e and secrecy != ENCRYPTED:
            text = (Span("an encrypted message (this client holds no key to open it)", "error"),)
        else:
            text += formatted(private.text, "private")
        if secrecy == ENCRYPTED:
            text = (Span(LOCK + " ", "muted"), *text)
        elif secrecy == CLEAR:
            text += (Span(f"{voice.gap}(not encrypted)", "muted"),)
        away = Span(f"{voice.gap}(sent while you were away)", "muted") if private.offline else Span("")
        return Line("private", _joined((*self._stamp(private.ts), *who, Span(voice.gap), *text, away)),
                    conversation=private.to if sent else private.sender, sender=private.sender)

    def kicked(self, kick: events.Kicked) -> Line:
        """
        The line of a kick (PROTOCOL.md section 10): C{bob was kicked from
        #dev by alice (spam)} in the room; when it is the user, C{You were
        kicked from #dev by alice (spam)}, in no room (the room is no longer
        joined, so the line shows wherever the user looks).
        """
        mine = self._mine(kick.nick)
        who = "You were" if mine else f"{kick.nick} was"
        reason = f" ({kick.reason})" if kick.reason else ""
        text = f"{self.voice.leave} {who} kicked from {kick.room} by {kick.by}{reason}"
        return Line("system", _joined((*self._stamp(kick.ts), Span(text, "system"))), None if mine else kick.room)

    def role(self, change: events.RoleChanged, now: datetime) -> Line:
        """
        The line of a change of role: C{alice made bob an operator of
        #dev}, C{bob is now an operator of #dev} (given by the server),
        C{bob is no longer an operator of #dev (by alice)}; the user is
        C{you} in the window's voice.
        """
        whom = "you" if self.voice.you and self._mine(change.nick) else change.nick
        by = "You" if self.voice.you and self._mine(change.by) else change.by
        subject = "You are" if whom == "you" else f"{whom} is"
        if change.role == events.OPERATOR and by:
            text = f"{by} made {whom} an operator of {change.room}"
        elif change.role == events.OPERATOR:
            text = f"{subject} now an operator of {change.room}"
        else:
            text = f"{subject} no longer an operator of {change.room}" + (
                f" (by {by})" if by and change.by.lower() != change.nick.lower() else "")
        return self.info([text], now, change.room)

    def offer(self, offer: events.FileOffer, now: datetime) -> Line:
        """
        The line of a file offer: C{↓ bob offered NAME (SIZE) to you} and a
        C{Download} link (none for the user's own offers), or C{*** bob
        offers NAME (SIZE) to you: /get ID to download it}.

        @param now: when it arrived (UTC).
        """
        voice = self.voice
        to = "you" if self._mine(offer.to) else offer.to
        mine = self._mine(offer.sender)
        who = Span("You") if voice.you and mine else _nick(offer.sender)
        what = f"{offer.name} ({size_text(offer.size)}) to {to}"
        stamp = self._stamp(now) if voice.stamp_info else ()
        said: tuple[Span, ...]
        if not voice.links:
            said = (Span(f" offers {what}: /get {offer.id} to download it", "offer"),)
        else:
            link = () if mine else (Span("   "), Span("Download", "link"))
            said = (Span(f" offered {what}", "body"), *link)
        return Line("offer", _joined((*stamp, Span(f"{voice.offer} ", "offer"), who, *said)), offer=offer.id)

    def departed(self, quit: events.Quit, rooms: tuple[str, ...], private: bool) -> list[Line]:
        """
        The lines of someone's quit, only where the user shared something
        with them: in the terminal's one stream one line if they shared a
        room or a private conversation; in the window one line in each room
        they shared, and one in their private conversation.
        """
        if not rooms and not private:
            return []
        line = self._presence(self.voice.leave, quit.nick, f"quit ({quit.reason})", quit.ts, None)
        if self.voice.rooms_inline:
            return [line]
        lines = [Line(line.kind, line.parts, room) for room in rooms]
        if private:
            lines.append(Line(line.kind, line.parts, conversation=quit.nick))
        return lines

    def history(self, history: events.History, now: datetime) -> list[Line]:
        """
        The lines of a room's history: a divider, the messages (with their
        day when it is not the day of C{now} in L{zone}), a divider; none
        when there is nothing new.
        """
        if not history.messages:
            return []
        edge, today = self.voice.divider, now.astimezone(self.zone).date()
        return [
            Line("history", (Span(f"{edge} earlier in {history.room} {edge}", "divider"),), history.room),
            *(self.message(m, history=True, dated=m.ts.astimezone(self.zone).date() != today)
              for m in history.messages),
            Line("history", (Span(f"{edge} now {edge}", "divider"),), history.room),
        ]

    def private_history(self, history: events.PrivateHistory, now: datetime) -> list[Line]:
        """
        The lines of a private conversation's history (C{/history NICK}):
        a divider, the messages, a divider, in that conversation; a line
        saying there are none when empty.
        """
        edge = self.voice.divider
        if not history.messages:
            return [self.info([f"No private messages with {history.with_} are kept"], now)]
        return [
            Line("history", (Span(f"{edge} earlier with {history.with_} {edge}", "divider"),),
                 conversation=history.with_),
            *(self.private(m) for m in history.messages),
            Line("history", (Span(f"{edge} now {edge}", "divider"),), conversation=history.with_),
        ]

    def lines(self, change: Change, now: datetime) -> list[Line]:
        """
        The lines for one change of the model: none for the changes that
        only concern a panel (transfers, the room and people lists, the
        connection), and for the events that show nothing.

        @param now: when the change happened (UTC), the time of the lines
            of events without a time of their own.
        """
        info, voice = self.info, self.voice
        match change:
            case Notice(text=text, level="error"):
                return [info([text], now, kind="error")]
            case Notice(text=text):
                return [info([text], now)]
            case events.Message():
                return [self.message(change)]
            case events.Private():
                return [self.private(change)]
            case events.History():
                return self.history(change, now)
            case events.PrivateHistory():
                return self.private_history(change, now)
            case events.Joined(nick=nick, room=room):
                return [self._presence(voice.arrive, nick, f"joined {room}", change.ts, room)]
            case events.Parted(nick=nick, room=room):
                reason = f" ({change.reason})" if change.reason else ""
                return [self._presence(voice.leave, nick, f"left {room}{reason}", change.ts, room)]
            case UnreadMark(room=room, conversation=conversation):
                return [unread_divider(voice, room, conversation)]
            case Departed(quit=quit, rooms=rooms, private=private):
                return self.departed(quit, rooms, private)
            case events.Quit():
                return [self._presence(voice.leave, change.nick, f"quit ({change.reason})", change.ts, None)]
            case events.NickChanged():
                return [info([f"{change.old} is now known as {change.new}"], change.ts)]
            case events.StatusChanged(nick=nick, text=""):
                return [info([f"{nick} is back"], now)]
            case events.StatusChanged():
                return [info([f"{change.nick} is {change.text}"], now)]
            case events.Topic(room=room, text=""):
                return [info([f"{room} has no topic"], now, room)]
            case events.Topic():
                by = f" (set by {change.by})" if change.by else ""
                return [info([f"Topic of {change.room}: {change.text}{by}"], now, change.room)]
            case events.Users(room=room, users=users):
                listed: list[str | Span] = []
                for user in users:
                    mark = OPERATOR_MARK if user.role == events.OPERATOR else ""
                    listed += [", " if listed else "", mark, _nick(user.nick),
                               f" ({user.status})" if user.status else ""]
                count = f"{len(users)} user{'s' if len(users) != 1 else ''}"
                return [info([f"{room}, {count}: ", *(listed or ["nobody"])], now)]
            case events.Kicked():
                return [self.kicked(change)]
            case events.RoleChanged():
                return [self.role(change, now)]
            case SettingsChanged():
                return [info([text], now, change.settings.room) for text in settings_words(change)]
            case events.Rooms(rooms=()):
                return [info(["No rooms"], now)]
            case events.Rooms():
                return [info(["Rooms:"], now)] + [
                    info([f"  {r.room} ({r.count}) {r.topic}".rstrip()], now, mark=voice.more) for r in change.rooms
                ]
            case events.Whois():
                how = "logged in" if change.account else "guest"
                tls = "TLS" if change.secure else "no TLS"
                status = f", status: {change.status}" if change.status else ""
                return [info([
                    f"{change.nick}: {how}, {tls}, in {' '.join(change.rooms) or 'no room'}, idle {change.idle} s, "
                    f"since {change.since.astimezone(self.zone):%Y-%m-%d %H:%M}{status}"
                ], now)]
            case events.FileOffer():
                return [self.offer(change, now)]
            case events.Welcome():
                return [info([f"Connected to {change.server} {change.version}"], now)] + [
                    info([text], now, mark=voice.more) for text in change.motd.splitlines()
                ]
            case events.Registered():
                how = ", logged in" if change.account else ""
                return [info(["You are ", _nick(change.nick), f"{how}. Type to talk, /help for commands."], now)]
            case events.Info():
                return [info([text], now) for text in change.text.splitlines() or [""]]
            case events.Error():
                return [info([f"{change.message} ({change.code})"], now, kind="error")]
            case events.Pong():
                return [info([f"pong {change.token}".rstrip()], now)]
            case events.Bye():
                return [info([f"Bye: {change.reason}"], now)]
        return []

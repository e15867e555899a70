# -*- test-case-name: tests.test_client_present -*-
"""
What the side panels and the status bar of a client show, computed once
for every front end: nick colours, sizes, round-trip times, the connection's state, the
window title and topic, the rows of the room list (with unread counts)
and of the people list, and the detail of a file offer. Pure: plain
values in, plain values out.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from chat import events
from chat.client.model import ChatModel, State

NICK_COLOURS = 30
"""How many nick colours every front end has; L{nick_colour} picks one.
Thirty hues, 12 degrees apart: two of 20 people share one about as often
as not, three of them rarely (and C{alice}, C{bob}, C{carol} and C{dave}
all differ)."""


def nick_colour(nick: str) -> int:
    """
    The colour of C{nick}, from 0 to L{NICK_COLOURS} - 1: the same for
    every spelling of the nick, on every run and in every front end
    (CRC-32 of the lower-cased UTF-8, not C{hash()}).
    """
    return zlib.crc32(nick.lower().encode("utf-8")) % NICK_COLOURS


def size_text(count: float) -> str:
    """
    A byte count for people: C{512 B}, C{1.5 KiB}, C{50.0 MiB}.

    @param count: bytes, not negative.
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def rtt_text(rtt: float | None) -> str:
    """
    A round-trip time for people: C{RTT 12 ms}, C{RTT <1 ms}, or C{RTT –}
    before the first measure.

    @param rtt: seconds, or C{None}.
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
"""What each connection state is called."""


def status_text(model: ChatModel, where: str) -> str:
    """
    The status bar: C{Online · HOST:PORT · NICK · TLS · RTT 12 ms} (the
    RTT only once online).

    @param where: C{host:port}.
    """
    parts = [STATE_NAMES[model.state], where, model.nick or "no nick", "TLS" if model.secure else "not encrypted"]
    if model.state == State.ONLINE:
        parts.append(rtt_text(model.rtt))
    return " · ".join(parts)


def state_level(state: State) -> str:
    """
    How well the connection goes: C{ok} online, C{error} disconnected,
    C{warn} on the way.
    """
    return {State.ONLINE: "ok", State.DISCONNECTED: "error"}.get(state, "warn")


def window_title(model: ChatModel, where: str) -> str:
    """
    The title of a window: C{NICK — chat on HOST:PORT}.
    """
    return f"{model.nick or 'chat'} — chat on {where}"


def topic_text(model: ChatModel) -> str:
    """
    The topic of the current room, C{No topic}, or a hint when no room is
    joined.
    """
    current = model.current
    if current is None:
        return "Not in a room: Join… on the left"
    return current.topic or "No topic"


def people_heading(model: ChatModel) -> str:
    """
    The heading of the people list: C{PEOPLE · 3 ONLINE} in a room, else C{PEOPLE}.
    """
    current = model.current
    return f"PEOPLE · {len(current.members)} ONLINE" if current is not None else "PEOPLE"


def short_path(path: Path) -> str:
    """
    C{path} with the home folder written C{~}.
    """
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


@dataclass(frozen=True, slots=True)
class RoomRow:
    """
    One room of the room list.

    @ivar key: the room's lower-case name.
    @ivar unread: the unread count, or C{""} for none.
    @ivar marked: whether to draw it bold: it is current or has unread messages.
    """

    key: str
    name: str
    unread: str
    marked: bool


def room_rows(model: ChatModel) -> list[RoomRow]:
    """
    The rooms joined, by name, with their unread counts.
    """
    current = model.current
    return [
        RoomRow(key, room.name, str(room.unread) if room.unread else "", bool(room.unread) or room is current)
        for key, room in sorted(model.rooms.items())
    ]


@dataclass(frozen=True, slots=True)
class PersonRow:
    """
    One person of the people list.

    @ivar key: the lower-case nick.
    @ivar status: the status, or C{""}.
    @ivar nick_colour: see L{nick_colour}.
    @ivar me: whether it is the user.
    @ivar operator: whether they are an operator of the room (PROTOCOL.md
        section 10); shown with L{chat.client.present.OPERATOR_MARK}.
    """

    key: str
    nick: str
    status: str
    nick_colour: int
    me: bool
    operator: bool = False


def people_rows(model: ChatModel) -> list[PersonRow]:
    """
    The members of the current room: its operators first, then by nick
    ignoring case (none out of a room).
    """
    current = model.current
    members = list(current.members.values()) if current is not None else []
    me = model.nick.lower()
    return [
        PersonRow(info.nick.lower(), info.nick, info.status, nick_colour(info.nick), info.nick.lower() == me,
                  info.role == events.OPERATOR)
        for info in sorted(members, key=lambda u: (u.role != events.OPERATOR, u.nick.lower()))
    ]


def offer_detail(offer: events.FileOffer, me: str) -> str:
    """
    Who offers a file, to whom unless to the user, and its size:
    C{bob → #dev · 2.0 KiB}.

    @param me: the user's nick.
    """
    where = "" if offer.to.lower() == me.lower() else f" → {offer.to}"
    return f"{offer.sender}{where} · {size_text(offer.size)}"


@dataclass(frozen=True, slots=True)
class PersonAction:
    """
    One entry of a person's menu (right-click in the people list).

    @ivar label: what the entry says: C{Kick…} ends in an ellipsis when it
        asks something first.
    @ivar kind: C{message} (open the private conversation), C{command}
        (send L{line} as it is), C{kick} (ask a reason, then send L{line}
        with it) or C{ban} (ask a duration and a reason, then send L{line}
        with them: C{/ban NICK #ROOM [DURATION] [REASON]}).
    @ivar line: the command (PROTOCOL.md section 10), without what is
        asked; C{""} for C{message}.
    """

    label: str
    kind: str
    line: str = ""


BAN_DURATIONS = (("10 minutes", "10m"), ("1 hour", "1h"), ("1 day", "1d"), ("7 days", "7d"), ("Forever", ""))
"""The durations offered for a ban: what the user reads, and the DURATION
of C{/ban} (C{""}: none given, forever)."""


def person_actions(model: ChatModel, nick: str) -> list[PersonAction]:
    """
    What the user can do with C{nick}, a member of the current room: a
    private message (not with oneself); and, when the user is an operator
    of the current room (L{ChatModel.operator_of}), make or remove an
    operator, kick, ban, mute and unmute (not oneself, but for removing
    one's own operator status), and an invitation to each other
    invite-only room the user operates that C{nick} is not in.
    """
    me = nick.lower() == model.nick.lower()
    actions = [] if me else [PersonAction("Private message", "message")]
    current = model.current
    if current is None or not model.operator_of(current.name):
        return actions
    room = current.name
    if current.is_operator(nick):
        actions.append(PersonAction("Remove operator", "command", f"/deop {nick} {room}"))
    else:
        actions.append(PersonAction("Make operator", "command", f"/op {nick} {room}"))
    if me:
        return actions
    actions += [
        PersonAction("Kick…", "kick", f"/kick {nick} {room}"),
        PersonAction("Ban…", "ban", f"/ban {nick} {room}"),
        PersonAction("Mute", "command", f"/mute {nick} {room}"),
        PersonAction("Unmute", "command", f"/unmute {nick} {room}"),
    ]
    for other in model.rooms.values():
        members = {n.lower() for n in other.members}
        if (other is not current and other.invite_only and model.operator_of(other.name)
                and nick.lower() not in members):
            actions.append(PersonAction(f"Invite to {other.name}", "command", f"/invite {nick} {other.name}"))
    return actions

# -*- test-case-name: tests.test_irc -*-
"""
IRC lines: L{line} formats one message, and L{render_irc} renders the
events whose IRC form is the same bytes for every recipient (a room
message, a join, a part, a quit, a nick change, a topic, a kick, a mode,
an away status for C{away-notify}), once per event for all IRC
recipients with the same capabilities (ARCHITECTURE.md "render once"):
one renderer without tags, one with the C{server-time} tag.
Replies to one user (numerics) are rendered by the participant, which
knows the recipient's nick (L{chat.irc.protocol}).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from chat import events
from chat.interfaces import Renderer

USER_HOST = "chat"
"""
The host part of every user's prefix (C{nick!nick@chat}): the daemon does
not show addresses, so every user has the same cloaked host.
"""

CRLF = b"\r\n"

ACTION = "\x01ACTION "
"""The start of a CTCP ACTION (C{/me}); it ends with C{\\x01}."""


MODE_LETTERS = {"invite-only": "i", "topic-lock": "t", "moderated": "m"}
"""The channel mode of each room setting (PROTOCOL.md section 10)."""


def source(nick: str) -> str:
    """
    The prefix of a user: C{nick!nick@chat}.
    """
    return f"{nick}!{nick}@{USER_HOST}"


def line(prefix: str, command: str, *params: str, text: bool = False) -> bytes:
    """
    One IRC message, UTF-8 with its CR LF: C{:prefix COMMAND p1 p2 :last}.
    The last parameter is written as a trailing one (after C{:}) when it is
    C{text} (a message, a reason), empty, has a space or starts with C{:};
    the others must have none.

    @param prefix: a server name or a L{source}, or C{''} for none.
    @param params: C{str} each; CR, LF and NUL never occur in them (the
        text of events is cleaned already, L{chat.wire.clean}).
    @return: the line as C{bytes}, CR LF included.
    """
    words = [f":{prefix}"] if prefix else []
    words.append(command)
    if params:
        *middle, last = params
        words.extend(middle)
        words.append(f":{last}" if text or not last or " " in last or last.startswith(":") else last)
    return " ".join(words).encode("utf-8") + CRLF


def modes(settings: events.RoomSettings) -> str:
    """
    The channel modes of a room's settings: C{+i} invite only, C{+t}
    topic lock, C{+m} moderated; what is off after a C{-}
    (e.g. C{+it-m}, or C{-itm} for none).
    """
    flags = (("i", settings.invite_only), ("t", settings.topic_lock), ("m", settings.moderated))
    on = "".join(letter for letter, value in flags if value)
    off = "".join(letter for letter, value in flags if not value)
    return (f"+{on}" if on else "") + (f"-{off}" if off else "")


def message_text(text: str, action: bool) -> str:
    """
    The text of a C{PRIVMSG}: as it is, or a CTCP ACTION for C{/me}.
    """
    return f"{ACTION}{text}\x01" if action else text


SHAPING = frozenset({"account-tag", "away-notify", "extended-join", "message-tags", "server-time"})
"""
The IRCv3 capabilities that change the bytes of the shared lines: their
tags (C{account}, C{msgid}, C{time}), C{JOIN}'s parameters, and the
C{AWAY} line after the C{JOIN} of someone away. The participants with the
same set of them share one renderer.
"""


def server_time(when: datetime) -> str:
    """
    The IRCv3 C{server-time} tag of a line sent at C{when}:
    C{time=2025-11-21T14:02:03.123Z} (RFC 3339, UTC, milliseconds).

    @param when: an aware C{datetime}.
    """
    utc = when.astimezone(timezone.utc)
    return f"time={utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def tags(event: events.Event, caps: frozenset[str], when: datetime, batch: str = "") -> bytes:
    """
    The IRCv3 tag section of C{event}'s lines for a client with C{caps}
    (C{@a=b;c=d } with its space, or C{b''} for none): C{account} (the
    sender's account, C{account-tag}), C{batch} (C{batch}, when C{batch}
    is a reference), C{msgid} (a message's id, C{message-tags}) and
    C{time} (C{when}, C{server-time}).

    No value ever needs IRCv3 escaping (nicks, ids and times have no
    C{;}, space, C{\\}, CR or LF: L{chat.domain.state.NICK_PATTERN}), so
    none is done.
    """
    section: list[str] = []
    account = getattr(event, "account", "")
    if account and "account-tag" in caps:
        section.append(f"account={account}")
    if batch:
        section.append(f"batch={batch}")
    if "message-tags" in caps and isinstance(event, (events.Message, events.Private)):
        section.append(f"msgid={event.id}")
    if "server-time" in caps:
        section.append(server_time(when))
    if not section:
        return b""
    return ("@" + ";".join(section) + " ").encode("ascii")


def tagged(data: bytes, section: bytes) -> bytes:
    """
    C{data} (IRC lines, each with its CR LF) with the tag C{section}
    (L{tags}) before each line.
    """
    if not data or not section:
        return data
    return b"".join(section + one + CRLF for one in data.split(CRLF)[:-1])


def event_time(event: events.Event, now: Callable[[], float]) -> datetime:
    """
    When C{event} happened: its C{ts} when it has one, else C{now()}
    (seconds since the epoch, the server's clock).
    """
    ts = getattr(event, "ts", None)
    if isinstance(ts, datetime):
        return ts
    return datetime.fromtimestamp(now(), timezone.utc)


def renderer(
    server: str,
    caps: frozenset[str] = frozenset(),
    now: Callable[[], float] = lambda: 0.0,
    realname: Callable[[str], str] = lambda nick: nick,
) -> Renderer:
    """
    An IRC renderer of a daemon whose server name (the prefix of what the
    server itself says, such as the operator role it gives the first to
    join) is C{server}, for the participants whose capabilities in
    L{SHAPING} are C{caps}: one per such set per
    L{chat.irc.protocol.IRCFactory}, shared by all its participants with
    that set.

    @param now: the server's clock (seconds since the epoch), the
        C{server-time} of an event without a C{ts}.
    @param realname: the real name of a nick (C{USER}'s), for
        C{extended-join}.
    """
    caps = caps & SHAPING
    extended = "extended-join" in caps
    away = "away-notify" in caps

    def render_irc(event: events.Event) -> bytes:
        """
        An event's IRC lines that are the same for every IRC recipient, or
        C{b''} for an event rendered per recipient (numerics) or not shown.

        Called through L{chat.interfaces.Outgoing}, so at most once per
        event for all the IRC participants it reaches with this renderer.

        @param event: any event.
        @return: UTF-8 lines, CR LF included, or C{b''}.
        """
        if extended and isinstance(event, events.Joined):
            data = line(source(event.nick), "JOIN", event.room, event.account or "*", realname(event.nick), text=True)
        else:
            data = render(event, server)
        if away and isinstance(event, events.Joined) and event.status:
            data += line(source(event.nick), "AWAY", event.status, text=True)
        if not caps:
            return data
        return tagged(data, tags(event, caps, event_time(event, now)))

    return render_irc


def render(event: events.Event, server: str) -> bytes:
    """
    L{renderer}'s work: C{event}'s shared IRC lines, C{server} the prefix
    of what the server says itself.

    @return: UTF-8 lines, CR LF included, or C{b''}.
    """
    match event:
        case events.Message():
            command = "NOTICE" if event.notice else "PRIVMSG"
            return line(source(event.sender), command, event.room, message_text(event.text, event.action), text=True)
        case events.Joined():
            return line(source(event.nick), "JOIN", event.room)
        case events.Parted():
            if event.reason:
                return line(source(event.nick), "PART", event.room, event.reason, text=True)
            return line(source(event.nick), "PART", event.room)
        case events.Quit():
            return line(source(event.nick), "QUIT", f"Quit: {event.reason}" if event.reason else "Quit", text=True)
        case events.NickChanged():
            return line(source(event.old), "NICK", event.new)
        case events.Topic():
            return line(source(event.by) if event.by else server, "TOPIC", event.room, event.text, text=True)
        case events.Kicked():
            return line(source(event.by), "KICK", event.room, event.nick, event.reason or event.by, text=True)
        case events.RoleChanged():
            sign = "+" if event.role == events.OPERATOR else "-"
            return line(source(event.by) if event.by else server, "MODE", event.room, f"{sign}o", event.nick)
        case events.RoomSettings() if event.changed in MODE_LETTERS:
            letter = MODE_LETTERS[event.changed]
            sign = "+" if getattr(event, event.changed.replace("-", "_")) else "-"
            return line(source(event.by) if event.by else server, "MODE", event.room, sign + letter)
        case events.RoomSettings():
            return line(server, "MODE", event.room, modes(event))
        case events.StatusChanged():
            if event.text:
                return line(source(event.nick), "AWAY", event.text, text=True)
            return line(source(event.nick), "AWAY")
    return b""


SHARED = (
    events.Message, events.Joined, events.Parted, events.Quit, events.NickChanged, events.Topic,
    events.Kicked, events.RoleChanged, events.RoomSettings,
)
"""The event types L{render_irc} renders (the same bytes for every IRC recipient)."""

# -*- test-case-name: tests.test_codec -*-
"""
Event values (L{chat.events}) to JSON and back, as PROTOCOL.md section 5
puts them on the wire: used by the daemon's C{json} renderer
(L{chat.render.render_json}) and by the clients (L{chat.client.protocol}).

Each event type is described once, in L{_EVENTS}: its C{type} name and its
JSON members in wire order, each naming the attribute it holds and how it
looks on the wire (text, count, flag, time, list of texts, nested object or
list of objects). Both directions read that one table, so adding a member
is one edit there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from typing import Any

from chat import events


class ProtocolError(ValueError):
    """
    A line from the daemon that is not a valid C{json}-format event (PROTOCOL.md
    section 5), or a file transfer that does not match what was asked for
    (section 6). The message says what is wrong in one sentence, without
    quoting message text.
    """


# Times


def rfc3339(ts: datetime) -> str:
    """
    Format an aware UTC time as RFC 3339 with milliseconds (truncated, not
    rounded), e.g. C{2026-11-21T14:02:03.120Z} (PROTOCOL.md section 5).
    """
    # isoformat ends in +00:00 for an aware time; it is twice as fast as strftime.
    return ts.isoformat(timespec="milliseconds")[:23] + "Z"


_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z"
)


def parse_time(text: str) -> datetime:
    """
    Read an RFC 3339 time such as C{2026-11-21T14:02:03.120Z} (PROTOCOL.md
    section 5; any offset and 0 to 9 fraction digits are accepted, digits
    past the microsecond are dropped).

    @return: an aware C{datetime} in UTC.
    @raise ValueError: C{text} is not such a time, or names a day or hour
        that does not exist.
    """
    match = _TIME.match(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7) or ""
    micro = int(fraction[:6].ljust(6, "0"))
    moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone.utc)
    if match.group(9):
        offset = timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
        moment -= offset if match.group(9) == "+" else -offset
    return moment


# Reading one JSON object


class _Members:
    """
    The members of one JSON object of an event, read with their types
    checked; unknown members are ignored (docs/protocol.md note 2).
    """

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self._data = data
        self._where = where

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def _get(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise ProtocolError(f"{self._where} has no member {key!r}") from None

    def _wrong(self, key: str, what: str) -> ProtocolError:
        return ProtocolError(f"{self._where} has a member {key!r} that is not {what}")

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._wrong(key, "a string")
        return value

    def count(self, key: str) -> int:
        value = self._get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self._wrong(key, "a whole number of at least 0")
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false")
        return value

    def time(self, key: str) -> datetime:
        try:
            return parse_time(self.text(key))
        except ProtocolError:
            raise
        except ValueError:
            raise self._wrong(key, "an RFC 3339 time") from None

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._wrong(key, "a list of strings")
        return tuple(value)

    def member(self, key: str) -> _Members:
        value = self._get(key)
        if not isinstance(value, dict):
            raise self._wrong(key, "an object")
        return _Members(value, f"{self._where} member {key!r}")

    def members(self, key: str) -> list[_Members]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self._wrong(key, "a list of objects")
        return [_Members(item, f"{self._where} member {key!r}[{i}]") for i, item in enumerate(value)]


# The table


@dataclass(frozen=True, slots=True)
class _Member:
    """
    One member of a JSON object: its C{key} on the wire and the attribute
    C{attr} of the value it holds (the key itself when empty).

    @ivar write: turns the attribute's value into the member's JSON value;
        C{None} when the value goes out as it is.
    @ivar read: reads the member, checking its JSON type, into the
        attribute's value.
    @ivar optional: left out when the attribute is empty; when absent, the
        attribute keeps its default.
    @ivar count_of: the member is not an attribute but the length of the
        attribute of this name: written, checked on reading, then dropped.
    """

    key: str
    write: Callable[[Any], Any] | None
    read: Callable[[_Members, str], Any]
    attr: str = ""
    optional: bool = False
    count_of: str = ""


@dataclass(frozen=True, slots=True)
class _Kind:
    """
    How a member looks on the wire; calling it makes a L{_Member} of that
    kind with the given key and options.
    """

    write: Callable[[Any], Any] | None
    read: Callable[[_Members, str], Any]

    def __call__(self, key: str, attr: str = "", *, optional: bool = False, count_of: str = "") -> _Member:
        return _Member(key, self.write, self.read, attr, optional, count_of)


_text = _Kind(None, _Members.text)
_count = _Kind(None, _Members.count)
_flag = _Kind(None, _Members.flag)
_time = _Kind(rfc3339, _Members.time)
_texts = _Kind(list, _Members.texts)


class _Shape:
    """
    A value class and its JSON object: the C{type} member first (none for
    the objects nested in events), then the members in wire order. C{cls}
    is called with the attributes as keyword arguments.
    """

    def __init__(self, cls: Callable[..., Any], type_name: str | None, *members: _Member) -> None:
        self.cls = cls
        self.type_name = type_name
        self.members = members
        self._writers = tuple((m.key, self._getter(m)) for m in members)
        self._optional = tuple(m.key for m in members if m.optional)

    @staticmethod
    def _getter(member: _Member) -> Callable[[Any], Any]:
        if member.count_of:
            of = attrgetter(member.count_of)
            return lambda value: len(of(value))
        get = attrgetter(member.attr or member.key)
        write = member.write
        if write is None:
            return get
        return lambda value: write(get(value))

    def write(self, value: Any) -> dict[str, Any]:
        """
        The JSON object of C{value}, an instance of C{cls}.
        """
        obj: dict[str, Any] = {} if self.type_name is None else {"type": self.type_name}
        for key, get in self._writers:
            obj[key] = get(value)
        for key in self._optional:
            if not obj[key]:
                del obj[key]
        return obj

    def read(self, data: _Members) -> Any:
        """
        The instance of C{cls} that C{data} describes.

        @raise ProtocolError: a member is missing or of the wrong type.
        """
        values = {}
        for m in self.members:
            if m.count_of:
                m.read(data, m.key)
            elif not m.optional or m.key in data:
                values[m.attr or m.key] = m.read(data, m.key)
        return self.cls(**values)


def _object(key: str, shape: _Shape) -> _Member:
    """
    A member holding one nested object.
    """
    return _Member(key, shape.write, lambda data, name: shape.read(data.member(name)))


def _objects(key: str, shape: _Shape) -> _Member:
    """
    A member holding a list of nested objects, a tuple once read.
    """
    return _Member(
        key,
        lambda values: [shape.write(v) for v in values],
        lambda data, name: tuple(shape.read(item) for item in data.members(name)),
    )


_MESSAGE = _Shape(
    events.Message, "message",
    _count("id"), _time("ts"), _text("room"), _text("from", "sender"), _text("text"), _flag("action"),
)
_PRIVATE = _Shape(
    events.Private, "private",
    _count("id"), _time("ts"), _text("from", "sender"), _text("to"), _text("text"), _flag("action"),
    _flag("offline"), _text("e2e", optional=True),
)
_LIMITS = _Shape(events.Limits, None, _count("line"), _count("nick"), _count("file"))
_USER = _Shape(events.UserInfo, None, _text("nick"), _text("status"), _count("idle"), _text("role", optional=True))
_DEVICE_KEY = _Shape(
    events.DeviceKey, None, _text("device"), _text("key"), _text("fingerprint"), _time("added"),
)
_ROOM = _Shape(events.RoomInfo, None, _text("room"), _text("topic"), _count("count"))

_EVENTS = (
    # Welcome.registered stays off the wire: it only steers the text format's prompt.
    _Shape(events.Welcome, "welcome", _text("server"), _text("version"), _text("motd"), _object("limits", _LIMITS)),
    _Shape(events.Registered, "registered", _text("nick"), _flag("account"), _text("token", optional=True)),
    _MESSAGE,
    _PRIVATE,
    _Shape(events.Joined, "join", _time("ts"), _text("room"), _text("nick")),
    _Shape(events.Parted, "part", _time("ts"), _text("room"), _text("nick"), _text("reason", optional=True)),
    _Shape(events.Quit, "quit", _time("ts"), _text("nick"), _text("reason")),
    _Shape(events.NickChanged, "nick", _time("ts"), _text("old"), _text("new")),
    _Shape(events.StatusChanged, "status", _text("nick"), _text("text")),
    _Shape(events.Topic, "topic", _text("room"), _text("text"), _text("by")),
    _Shape(events.Users, "users", _text("room"), _count("count", count_of="users"), _objects("users", _USER)),
    _Shape(events.Rooms, "rooms", _objects("rooms", _ROOM)),
    _Shape(
        events.Whois, "whois",
        _text("nick"), _text("status"), _texts("rooms"), _time("since"), _count("idle"), _flag("account"),
        _flag("secure"), _text("node", optional=True),
    ),
    _Shape(events.History, "history", _text("room"), _objects("messages", _MESSAGE)),
    _Shape(events.PrivateHistory, "history", _text("with", "with_"), _objects("messages", _PRIVATE)),
    _Shape(
        events.FileOffer, "file-offer",
        _count("id"), _text("from", "sender"), _text("to"), _text("name"), _count("size"), _text("sha256"),
        _time("expires"),
    ),
    _Shape(events.UploadReady, "upload-ready", _count("id"), _text("name"), _count("size")),
    _Shape(events.UploadDone, "upload-done", _count("id"), _text("sha256")),
    _Shape(events.FileHeader, "file", _count("id"), _text("name"), _count("size"), _count("offset"), _text("sha256")),
    _Shape(events.Info, "info", _text("text")),
    _Shape(events.Error, "error", _text("code"), _text("message")),
    _Shape(events.Pong, "pong", _text("token")),
    _Shape(events.Bye, "bye", _text("reason")),
    _Shape(
        events.Kicked, "kick", _time("ts"), _text("room"), _text("nick"), _text("by"), _text("reason"),
    ),
    _Shape(events.RoleChanged, "role", _text("room"), _text("nick"), _text("role"), _text("by")),
    _Shape(
        events.RoomSettings, "room-settings",
        _text("room"), _flag("invite-only", "invite_only"), _flag("topic-lock", "topic_lock"), _flag("moderated"),
    ),
    _Shape(events.Keys, "keys", _text("nick"), _flag("account"), _objects("keys", _DEVICE_KEY)),
)
"""Every event type of PROTOCOL.md section 5, in the order of L{events.Event}."""

_BY_CLASS = {shape.cls: shape for shape in _EVENTS}
_BY_TYPE = {shape.type_name: shape for shape in reversed(_EVENTS)}
"""The shape of each C{type}: the first one listed where two share it."""
_VARIANTS = {"history": ("with", _BY_CLASS[events.PrivateHistory])}
"""A C{type} shared by two shapes: the member that picks the second one
(a private conversation's C{history} has C{with} instead of C{room})."""


# Both directions


def to_json(event: events.Event) -> dict[str, Any]:
    """
    The JSON object of an event: its C{type} member first, then its members
    in the order of PROTOCOL.md section 5; times as L{rfc3339} strings,
    tuples as lists.

    @raise TypeError: C{event} is not one of the L{events.Event} classes.
    """
    shape = _BY_CLASS.get(type(event))
    if shape is None:
        raise TypeError(f"not an event: {event!r}")
    return shape.write(event)


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(event: events.Event) -> str:
    """
    An event as one line of the C{json} format (PROTOCOL.md section 5):
    compact JSON, non-ASCII characters as they are (not C{\\u} escapes),
    without a line end. Called by L{chat.render.render_json}.

    @raise TypeError: C{event} is not one of the L{events.Event} classes.
    """
    return _encoder.encode(to_json(event))


def decode(line: bytes | str) -> events.Event | None:
    """
    Read one line of the daemon's C{json} format (PROTOCOL.md section 5)
    into the L{chat.events} value that L{encode} made it from. Called by the
    client protocol for each line it receives.

    Members the event does not know are ignored; times become aware UTC
    C{datetime}s; lists become tuples.

    @param line: the line as received, without its CR LF: UTF-8 bytes, or
        text already decoded.
    @return: the event, or C{None} for a C{type} this client does not know
        (a newer daemon), which the caller should ignore.
    @raise ProtocolError: the line is not UTF-8, not JSON, not an object,
        has no string C{type}, or lacks a member of its type or has one of
        the wrong type (a negative number counts as wrong).
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError(f"a line that is not UTF-8 (byte {e.start})") from None
    try:
        data = json.loads(line)
    except ValueError as e:
        raise ProtocolError(f"a line that is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"a JSON line that is not an object but {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("a JSON object without a string member 'type'")
    shape = _BY_TYPE.get(kind)
    if shape is None:
        return None
    variant = _VARIANTS.get(kind)
    if variant is not None and variant[0] in data:
        shape = variant[1]
    event: events.Event = shape.read(_Members(data, f"a {kind!r} event"))
    return event

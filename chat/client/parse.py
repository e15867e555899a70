# -*- test-case-name: tests.test_client_parse -*-
"""
The inverse of L{chat.render.render_json}: one line of the daemon's C{json}
format (PROTOCOL.md section 5) back into the L{chat.events} value it was
rendered from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from chat import events


class ProtocolError(ValueError):
    """
    A line from the daemon that is not a valid C{json}-format event (PROTOCOL.md
    section 5), or a file transfer that does not match what was asked for
    (section 6). The message says what is wrong in one sentence, without
    quoting message text.
    """


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


class _Members:
    """
    The members of one JSON object of an event, read with their types
    checked; unknown members are ignored (docs/protocol.md note 2).
    """

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self._data = data
        self._where = where

    def _get(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise ProtocolError(f"{self._where} has no member {key!r}") from None

    def _wrong(self, key: str, what: str) -> ProtocolError:
        return ProtocolError(f"{self._where} has a member {key!r} that is not {what}")

    def text(self, key: str, default: str | None = None) -> str:
        if default is not None and key not in self._data:
            return default
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


def _message(m: _Members) -> events.Message:
    return events.Message(m.count("id"), m.time("ts"), m.text("room"), m.text("from"), m.text("text"), m.flag("action"))


def _welcome(m: _Members) -> events.Welcome:
    limits = m.member("limits")
    return events.Welcome(
        m.text("server"), m.text("version"), m.text("motd"),
        events.Limits(limits.count("line"), limits.count("nick"), limits.count("file")),
    )


def _users(m: _Members) -> events.Users:
    m.count("count")
    return events.Users(
        m.text("room"),
        tuple(events.UserInfo(u.text("nick"), u.text("status"), u.count("idle")) for u in m.members("users")),
    )


_BUILDERS: dict[str, Callable[[_Members], events.Event]] = {
    "welcome": _welcome,
    "registered": lambda m: events.Registered(m.text("nick"), m.flag("account")),
    "message": _message,
    "private": lambda m: events.Private(
        m.count("id"), m.time("ts"), m.text("from"), m.text("to"), m.text("text"), m.flag("action"),
        m.flag("offline"),
    ),
    "join": lambda m: events.Joined(m.time("ts"), m.text("room"), m.text("nick")),
    "part": lambda m: events.Parted(m.time("ts"), m.text("room"), m.text("nick"), m.text("reason", "")),
    "quit": lambda m: events.Quit(m.time("ts"), m.text("nick"), m.text("reason")),
    "nick": lambda m: events.NickChanged(m.time("ts"), m.text("old"), m.text("new")),
    "status": lambda m: events.StatusChanged(m.text("nick"), m.text("text")),
    "topic": lambda m: events.Topic(m.text("room"), m.text("text"), m.text("by")),
    "users": _users,
    "rooms": lambda m: events.Rooms(
        tuple(events.RoomInfo(r.text("room"), r.text("topic"), r.count("count")) for r in m.members("rooms"))
    ),
    "whois": lambda m: events.Whois(
        m.text("nick"), m.text("status"), m.texts("rooms"), m.time("since"), m.count("idle"),
        m.flag("account"), m.flag("secure"),
    ),
    "history": lambda m: events.History(m.text("room"), tuple(_message(x) for x in m.members("messages"))),
    "file-offer": lambda m: events.FileOffer(
        m.count("id"), m.text("from"), m.text("to"), m.text("name"), m.count("size"), m.text("sha256"),
        m.time("expires"),
    ),
    "upload-ready": lambda m: events.UploadReady(m.count("id"), m.text("name"), m.count("size")),
    "upload-done": lambda m: events.UploadDone(m.count("id"), m.text("sha256")),
    "file": lambda m: events.FileHeader(
        m.count("id"), m.text("name"), m.count("size"), m.count("offset"), m.text("sha256")
    ),
    "info": lambda m: events.Info(m.text("text")),
    "error": lambda m: events.Error(m.text("code"), m.text("message")),
    "pong": lambda m: events.Pong(m.text("token")),
    "bye": lambda m: events.Bye(m.text("reason")),
}
"""How to build the event of each C{type} of PROTOCOL.md section 5."""


def parse_event(line: bytes) -> events.Event | None:
    """
    Read one line of the daemon's C{json} format (PROTOCOL.md section 5)
    into the L{chat.events} value that L{chat.render.render_json} made it
    from. Called by the client protocol for each line it receives.

    Members the event does not know are ignored; times become aware UTC
    C{datetime}s; lists become tuples.

    @param line: the line as received, UTF-8, without its CR LF.
    @return: the event, or C{None} for a C{type} this client does not know
        (a newer daemon), which the caller should ignore.
    @raise ProtocolError: the line is not UTF-8, not JSON, not an object,
        has no string C{type}, or lacks a member of its type or has one of
        the wrong type (a negative number counts as wrong).
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"a line that is not UTF-8 (byte {e.start})") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ProtocolError(f"a line that is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"a JSON line that is not an object but {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("a JSON object without a string member 'type'")
    build = _BUILDERS.get(kind)
    if build is None:
        return None
    return build(_Members(data, f"a {kind!r} event"))

# -*- test-case-name: tests.test_cluster_wire -*-
"""
The bytes one daemon of a cluster publishes for another: an L{Envelope}
holding one event and its address, with every field of the event (the
fields the client codec L{chat.codec} leaves off the wire included, such
as C{Message.notice} or C{Whois.operator_of}), as UTF-8 JSON.

The mapping is generic over the dataclasses of L{chat.events} and of the
addresses of L{chat.interfaces}: each dataclass is a JSON object of its
fields (their names as in Python), a tuple a JSON array, a float a JSON number, a C{datetime} an
ISO 8601 string with microseconds and the offset C{+00:00}; the event and
the address carry their class name under C{"type"}. One envelope::

    {"v": 1, "node": "a", "run": "5f0c...", "seq": 42,
     "event": {"type": "Message", "id": 7, "ts": "2026-12-06T10:00:00.123456+00:00", "room": "#dev",
               "sender": "alice", "text": "hi", "action": false, "notice": false, "account": ""},
     "address": {"type": "ToRoom", "room": "#dev"}}

C{node} is the publishing daemon's name, C{run} a token of its process
(new at each start), C{seq} the number of the publication in that run
(from 1, increasing): together they let a receiver drop a duplicate and
keep each node's order. Only daemons of one version are expected in a
cluster: an unknown field or type is refused, a missing field with a
default takes the default.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import datetime, timedelta, timezone
from typing import Any, Union

from chat import events
from chat.interfaces import Address, ToNeighbours, ToParticipant, ToRoom, ToUsers
from chat.storage import RoomModeration

VERSION = 1
"""The C{"v"} of the envelopes this module writes and reads."""

RemoteAddress = Union[ToRoom, ToUsers, ToNeighbours]
"""The addresses that cross daemons (never L{ToParticipant}, one connection of one process)."""

Carried = Union[events.Event, RoomModeration]
"""What crosses daemons: the events of L{chat.events.Event}, and a room's
moderation after a change (L{RoomModeration}), which no client gets."""

EVENT_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in typing.get_args(Carried)}
"""The classes of L{Carried} by class name, the C{"type"} of an encoded event."""

ADDRESS_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in (ToRoom, ToUsers, ToNeighbours)}
"""The address classes that cross daemons by class name, the C{"type"} of an encoded address."""

_ZERO = timedelta(0)


@dataclasses.dataclass(frozen=True, slots=True)
class Envelope:
    """
    One publication of one daemon: C{event} to C{address}, the C{seq}-th
    publication (from 1) of the run C{run} (an opaque token, new at each
    start) of the daemon named C{node}.
    """

    node: str
    run: str
    seq: int
    event: Carried
    address: RemoteAddress


_hints: dict[type[Any], dict[str, Any]] = {}


def _fields(cls: type[Any]) -> list[tuple[dataclasses.Field[Any], Any]]:
    """
    The fields of the dataclass C{cls} with their resolved types (cached).
    """
    hints = _hints.get(cls)
    if hints is None:
        hints = _hints[cls] = typing.get_type_hints(cls)
    return [(field, hints[field.name]) for field in dataclasses.fields(cls)]


def _to_json(value: object) -> object:
    """
    C{value} (a field's value) as JSON-ready data.

    @raise ValueError: a naive or non-UTC C{datetime}, or a value of a type
        this module does not carry.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        if value.utcoffset() != _ZERO:
            raise ValueError(f"a datetime crossing daemons must be aware and in UTC, not {value!r}")
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, tuple):
        return [_to_json(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _to_json(getattr(value, field.name)) for field, _ in _fields(type(value))}
    raise ValueError(f"cannot encode a {type(value).__name__} for the cluster bus")


def _tagged(value: object) -> dict[str, object]:
    """
    A dataclass value as a JSON object with its class name under C{"type"}.
    """
    data = _to_json(value)
    assert isinstance(data, dict)
    return {"type": type(value).__name__, **data}


def _from_json(data: object, hint: Any, where: str) -> object:
    """
    The value of type C{hint} that C{data} (parsed JSON) encodes; C{where}
    names it in errors (C{"event.users[0].idle"}).

    @raise ValueError: C{data} does not fit C{hint}.
    """
    if hint is str or hint is int or hint is bool:
        if type(data) is not hint:
            raise ValueError(f"{where}: expected {hint.__name__}, got {type(data).__name__}")
        return data
    if hint is float:
        if type(data) not in (int, float):
            raise ValueError(f"{where}: expected a number, got {type(data).__name__}")
        return float(typing.cast(float, data))
    if hint is datetime:
        if not isinstance(data, str):
            raise ValueError(f"{where}: expected a date-time string, got {type(data).__name__}")
        try:
            when = datetime.fromisoformat(data)
        except ValueError:
            raise ValueError(f"{where}: {data!r} is not an ISO 8601 date-time") from None
        if when.utcoffset() != _ZERO:
            raise ValueError(f"{where}: {data!r} is not in UTC")
        return when.replace(tzinfo=timezone.utc)
    if hint is type(None):
        if data is not None:
            raise ValueError(f"{where}: expected null")
        return None
    origin = typing.get_origin(hint)
    if origin is tuple:
        arguments = typing.get_args(hint)
        if not isinstance(data, list):
            raise ValueError(f"{where}: expected an array, got {type(data).__name__}")
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(_from_json(item, arguments[0], f"{where}[{index}]") for index, item in enumerate(data))
        if len(arguments) != len(data):
            raise ValueError(f"{where}: expected {len(arguments)} items, got {len(data)}")
        return tuple(
            _from_json(item, argument, f"{where}[{index}]")
            for index, (item, argument) in enumerate(zip(data, arguments, strict=True))
        )
    if origin is Union or origin is types.UnionType:
        for option in typing.get_args(hint):
            try:
                return _from_json(data, option, where)
            except ValueError:
                continue
        raise ValueError(f"{where}: fits none of {hint}")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(data, hint, where, tagged=False)
    raise ValueError(f"{where}: cannot decode a {hint!r}")


def _dataclass(data: object, cls: type[Any], where: str, tagged: bool) -> object:
    """
    The instance of the dataclass C{cls} that the JSON object C{data}
    encodes (ignoring its C{"type"} when C{tagged}).

    @raise ValueError: not an object, an unknown field, a missing field
        without a default, or a field of the wrong shape.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    known = {"type"} if tagged else set()
    values: dict[str, object] = {}
    for field, hint in _fields(cls):
        known.add(field.name)
        if field.name in data:
            values[field.name] = _from_json(data[field.name], hint, f"{where}.{field.name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ValueError(f"{where}: {cls.__name__} without its field {field.name!r}")
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{where}: {cls.__name__} has no field {sorted(unknown)[0]!r}")
    return cls(**values)


def _typed(data: object, classes: dict[str, type[Any]], where: str) -> object:
    """
    The value of the class named by C{data["type"]} among C{classes}.

    @raise ValueError: no such type, or a bad value.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    name = data.get("type")
    cls = classes.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"{where}: unknown type {name!r}")
    return _dataclass(data, cls, where, tagged=True)


def encode(envelope: Envelope) -> bytes:
    """
    The UTF-8 JSON bytes of C{envelope}, for L{decode} in another daemon.

    @raise ValueError: its address is a L{ToParticipant} (one connection of
        this process: it never crosses daemons), or a value cannot be
        carried (a naive or non-UTC C{datetime}, an unknown type, a lone
        surrogate in a string).
    """
    address: Address = envelope.address
    if isinstance(address, ToParticipant):
        raise ValueError("an event to one participant (ToParticipant) never crosses daemons")
    if type(address) not in ADDRESS_TYPES.values():
        raise ValueError(f"not an address that crosses daemons: {address!r}")
    if type(envelope.event) not in EVENT_TYPES.values():
        raise ValueError(f"not an event: {envelope.event!r}")
    document = {
        "v": VERSION,
        "node": envelope.node,
        "run": envelope.run,
        "seq": envelope.seq,
        "event": _tagged(envelope.event),
        "address": _tagged(address),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(data: bytes | str) -> Envelope:
    """
    The envelope that L{encode} turned into C{data} (bytes, or the same
    already decoded from UTF-8).

    @raise ValueError: C{data} is not UTF-8 JSON of an envelope of version
        L{VERSION}, or any part of it does not fit (the message says where);
        never another exception.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray, memoryview)) else data
        if not isinstance(text, str):
            raise ValueError(f"expected bytes or str, got {type(data).__name__}")
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError(f"an envelope is a JSON object, not {type(document).__name__}")
        if document.get("v") != VERSION or type(document.get("v")) is not int:
            raise ValueError(f"envelope version {document.get('v')!r}, expected {VERSION}")
        unknown = set(document) - {"v", "node", "run", "seq", "event", "address"}
        if unknown:
            raise ValueError(f"envelope: unknown key {sorted(unknown)[0]!r}")
        node = _from_json(document.get("node"), str, "node")
        run = _from_json(document.get("run"), str, "run")
        seq = _from_json(document.get("seq"), int, "seq")
        event = _typed(document.get("event"), EVENT_TYPES, "event")
        address = _typed(document.get("address"), ADDRESS_TYPES, "address")
    except ValueError:
        raise
    except (TypeError, KeyError, AttributeError, RecursionError, OverflowError) as e:
        raise ValueError(f"not a cluster envelope: {e.__class__.__name__}: {e}") from None
    assert isinstance(node, str) and isinstance(run, str) and isinstance(seq, int)
    return Envelope(node, run, seq, typing.cast(Carried, event), typing.cast(RemoteAddress, address))

"""
Tests for L{chat.cluster.wire}: every event and every address that crosses
daemons round-trips exactly, the fields the client codec leaves off the
wire included; what cannot cross is refused; garbage is a C{ValueError}.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from twisted.trial import unittest
from zope.interface import implementer

from chat import events
from chat.cluster import wire
from chat.interfaces import IParticipant, Outgoing, ToNeighbours, ToParticipant, ToRoom, ToUsers
from chat.storage import BanRecord, RoomFlags, RoomModeration
from tests.test_codec import OFF_THE_WIRE, ONE_OF_EACH

MODERATION = RoomModeration(
    "#dev", ("alice",),
    (BanRecord("#dev", "", "mallory", "10.0.0.0/24", 1765022400.25, "spam", "alice", 1765000000.0),
     BanRecord("#dev", "eve", "", "", None, "", "alice", 1765000001.0)),
    (("bob", None), ("carol", 1765022400.5)), ("dave",), RoomFlags(invite_only=True, moderated=True),
)
"""A room's moderation, which only daemons exchange: floats, optional values, nested records."""

T = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=timezone.utc)


def facts(value: object) -> object:
    """
    Everything about C{value}, nested, for an exact comparison: each
    dataclass's type and every field (C{compare=False} ones included),
    each datetime's instant I{and} offset, each scalar's type.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple(
            (field.name, facts(getattr(value, field.name))) for field in dataclasses.fields(value)
        ))
    if isinstance(value, tuple):
        return ("tuple", tuple(facts(item) for item in value))
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), value.utcoffset())
    return (type(value).__name__, value)


def off_the_wire_set(event: events.Event) -> events.Event:
    """
    C{event} with each of its off-the-wire fields (L{OFF_THE_WIRE}) given a
    value other than its default.
    """
    changes: dict[str, Any] = {}
    for cls, name in OFF_THE_WIRE:
        if type(event) is cls:
            default = getattr(event, name)
            if isinstance(default, bool):
                changes[name] = not default
            elif isinstance(default, tuple):
                changes[name] = ("#dev", "#ops")
            elif isinstance(default, int):
                changes[name] = default + 41
            else:
                changes[name] = f"{name}-value"
    return dataclasses.replace(event, **changes)


@implementer(IParticipant)
class Nobody:
    """
    A participant for a L{ToParticipant} that must not be encoded.
    """

    front_end = "line"
    nick = "nobody"
    account = None
    secure = False
    peer = "127.0.0.1"

    def deliver(self, outgoing: Outgoing) -> None:
        """
        Drop it.
        """

    def close(self, reason: str) -> None:
        """
        Nothing to close.
        """


class RoundTripTests(unittest.SynchronousTestCase):
    """
    What L{wire.encode} writes, L{wire.decode} reads back exactly.
    """

    def round_trip(self, envelope: wire.Envelope) -> wire.Envelope:
        data = wire.encode(envelope)
        self.assertIsInstance(data, bytes)
        back = wire.decode(data)
        self.assertEqual(facts(back), facts(envelope))
        return back

    def test_every_event(self) -> None:
        """
        Each event of ONE_OF_EACH, with and without its off-the-wire fields set, comes back field for field.
        """
        variants = [*ONE_OF_EACH, *(off_the_wire_set(event) for event in ONE_OF_EACH), MODERATION]
        self.assertEqual({type(event) for event in variants}, set(wire.EVENT_TYPES.values()))
        for seq, event in enumerate(variants, 1):
            self.round_trip(wire.Envelope("node-a", "run-1", seq, event, ToRoom("#dev")))

    def test_off_the_wire_fields_cross(self) -> None:
        """
        The fields the client codec drops (Message.notice/account, Whois.operator_of, ...) reach the other daemon.
        """
        message = events.Message(1, T, "#dev", "alice", "hi", notice=True, account="alice")
        private = events.Private(2, T, "alice", "bob", "psst", notice=True, account="alice", away="lunch")
        joined = events.Joined(T, "#dev", "alice", account="alice", status="busy")
        whois = events.Whois("bob", "", ("#dev", "#ops"), T, 3, True, False, operator_of=("#ops",))
        settings = events.RoomSettings("#dev", True, changed="invite-only", by="alice")
        welcome = events.Welcome("chat", "1", "", events.Limits(1, 2, 3), registered=True)
        for event in (message, private, joined, whois, settings, welcome):
            back = wire.decode(wire.encode(wire.Envelope("a", "r", 1, event, ToUsers(("bob",))))).event
            self.assertEqual(dataclasses.astuple(back), dataclasses.astuple(event))
        self.assertEqual(off_the_wire_set(message), message, "compare=False fields are skipped by ==: hence facts()")

    def test_datetimes_keep_microseconds_and_utc(self) -> None:
        """
        A timestamp comes back as the same instant, microseconds included, with UTC as its zone.
        """
        back = self.round_trip(wire.Envelope("a", "r", 1, events.Joined(T, "#dev", "alice"), ToRoom("#dev")))
        assert isinstance(back.event, events.Joined)
        self.assertEqual(back.event.ts.microsecond, 123456)
        self.assertIs(back.event.ts.tzinfo, timezone.utc)

    def test_every_address(self) -> None:
        """
        ToRoom, ToUsers (empty, one, several) and ToNeighbours (with and without the user) come back equal.
        """
        addresses = [
            ToRoom("#dev"), ToUsers(()), ToUsers(("bob",)), ToUsers(("bob", "carol")),
            ToNeighbours("bob"), ToNeighbours("bob", itself=False),
        ]
        for address in addresses:
            back = self.round_trip(wire.Envelope("a", "r", 7, events.Info("x"), address))
            self.assertEqual(back.address, address)
            self.assertIs(type(back.address), type(address))

    def test_envelope_fields(self) -> None:
        """
        Node name, run token and sequence number are in the envelope, as the documented JSON keys.
        """
        data = wire.encode(wire.Envelope("node-é", "run-9", 12345, events.Pong("1"), ToRoom("#dev")))
        document = json.loads(data.decode("utf-8"))
        self.assertEqual(
            document,
            {"v": 1, "node": "node-é", "run": "run-9", "seq": 12345, "event": {"type": "Pong", "token": "1"},
             "address": {"type": "ToRoom", "room": "#dev"}},
        )
        self.assertIn("node-é".encode(), data, "UTF-8, not \\u escapes")

    def test_str_input(self) -> None:
        """
        Text already decoded from UTF-8 (what a Redis client may hand over) decodes the same as bytes.
        """
        envelope = wire.Envelope("a", "r", 1, events.Info("é"), ToRoom("#dev"))
        self.assertEqual(facts(wire.decode(wire.encode(envelope).decode("utf-8"))), facts(envelope))

    def test_missing_defaulted_field(self) -> None:
        """
        A field with a default may be missing (it takes the default); one without may not.
        """
        document = json.loads(wire.encode(wire.Envelope("a", "r", 1, events.Parted(T, "#d", "bob", "x"), ToRoom("#d"))))
        del document["event"]["reason"]
        event = wire.decode(json.dumps(document).encode()).event
        self.assertEqual(event, events.Parted(T, "#d", "bob", ""))
        del document["event"]["nick"]
        self.assertRaises(ValueError, wire.decode, json.dumps(document).encode())


class RefusalTests(unittest.SynchronousTestCase):
    """
    What cannot cross is refused with a C{ValueError}, and nothing else.
    """

    def test_to_participant_never_crosses(self) -> None:
        """
        Encoding an event to one participant of this process raises ValueError.
        """
        envelope = wire.Envelope("a", "r", 1, events.Info("x"), ToParticipant(Nobody()))  # type: ignore[arg-type]
        error = self.assertRaises(ValueError, wire.encode, envelope)
        self.assertIn("ToParticipant", str(error))

    def test_naive_or_local_datetime(self) -> None:
        """
        A naive datetime, or one in another zone, is refused when encoding.
        """
        for ts in (T.replace(tzinfo=None), T.astimezone(timezone(timedelta(hours=1)))):
            envelope = wire.Envelope("a", "r", 1, events.Joined(ts, "#d", "bob"), ToRoom("#d"))
            self.assertRaises(ValueError, wire.encode, envelope)

    def test_garbage(self) -> None:
        """
        Each malformed input raises ValueError with a message saying what is wrong.
        """
        good = json.loads(wire.encode(wire.Envelope(
            "a", "r", 1, events.Users("#d", (events.UserInfo("bob", "", 1),)), ToRoom("#d"),
        )))

        def changed(path: tuple[str | int, ...], value: object) -> bytes:
            document = json.loads(json.dumps(good))
            target = document
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            return json.dumps(document).encode()

        cases: dict[str, bytes | str] = {
            "empty": b"",
            "not UTF-8": b"\xff\xfe{}",
            "not JSON": b"{nope",
            "array": b"[]",
            "null": b"null",
            "number": b"12",
            "no version": b'{"node":"a"}',
            "version 2": changed(("v",), 2),
            "version true": changed(("v",), True),
            "unknown key": changed(("extra",), 1),
            "node not str": changed(("node",), 3),
            "seq float": changed(("seq",), 1.5),
            "seq bool": changed(("seq",), True),
            "event not object": changed(("event",), "Users"),
            "event unknown type": changed(("event", "type"), "Nope"),
            "event no type": changed(("event", "type"), None),
            "event unknown field": changed(("event", "colour"), "red"),
            "nested not object": changed(("event", "users", 0), "bob"),
            "nested wrong type": changed(("event", "users", 0, "idle"), "1"),
            "nested bool for int": changed(("event", "users", 0, "idle"), False),
            "tuple not array": changed(("event", "users"), {}),
            "address unknown": changed(("address", "type"), "ToParticipant"),
            "address missing": changed(("address",), None),
            "address field": changed(("address", "room"), ["#d"]),
            "deep": b"[" * 100000 + b"]" * 100000,
            "huge int": changed(("seq",), 7).replace(b'"seq": 7', b'"seq": 1' + b"0" * 5000),
            "infinite": changed(("seq",), 7).replace(b'"seq": 7', b'"seq": 1e999'),
        }
        dated = json.loads(wire.encode(wire.Envelope("a", "r", 1, events.Joined(T, "#d", "b"), ToRoom("#d"))))
        for name, value in (("naive ts", "2026-12-06T10:00:00"), ("zoned ts", "2026-12-06T10:00:00+01:00"),
                            ("bad ts", "yesterday"), ("number ts", 5)):
            dated["event"]["ts"] = value
            cases[name] = json.dumps(dated).encode()
        for name, data in cases.items():
            with self.subTest(name):
                self.assertRaises(ValueError, wire.decode, data)

    def test_every_truncation(self) -> None:
        """
        Every prefix of a valid envelope (and every one-byte change) raises ValueError or decodes, nothing else.
        """
        data = wire.encode(wire.Envelope("a", "r", 1, off_the_wire_set(ONE_OF_EACH[2]), ToNeighbours("bob")))
        for end in range(len(data)):
            self.assertRaises(ValueError, wire.decode, data[:end])
        for index in range(len(data)):
            for byte in (b"0", b'"', b"}", b"\x00"):
                try:
                    wire.decode(data[:index] + byte + data[index + 1:])
                except ValueError:
                    pass

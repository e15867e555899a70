"""
Tests for L{chat.codec}: every event encodes to the JSON of PROTOCOL.md
section 5 and decodes back to the same value, and malformed lines are
refused with L{ProtocolError}.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from twisted.trial.unittest import SynchronousTestCase

from chat import events
from chat.codec import ProtocolError, decode, encode, parse_time, rfc3339, to_json

T1 = datetime(2026, 11, 21, 14, 2, 3, 120_000, tzinfo=timezone.utc)
T2 = datetime(2026, 11, 22, 0, 0, 0, 0, tzinfo=timezone.utc)
SHA = "ab" * 32

MESSAGE = events.Message(1, T1, "#lobby", "alice", "hello \"world\" \u00e9\u6f22 \U0001f600", False)

ONE_OF_EACH: list[events.Event] = [
    events.Welcome("chat", "0.1.0", "line one\nline two", events.Limits(4096, 24, 104857600)),
    events.Registered("alice", True),
    MESSAGE,
    events.Message(2, T2, "#dev", "bob", "waves", True),
    events.Private(3, T1, "alice", "bob", "psst", False, True),
    events.Joined(T1, "#lobby", "alice"),
    events.Parted(T1, "#dev", "alice", "bye for now"),
    events.Parted(T2, "#dev", "bob"),
    events.Quit(T1, "bob", "goodbye"),
    events.NickChanged(T1, "bob", "robert"),
    events.StatusChanged("bob", "lunch"),
    events.StatusChanged("bob", ""),
    events.Topic("#dev", "Release on Friday", "alice"),
    events.Users("#lobby", (events.UserInfo("alice", "", 0), events.UserInfo("bob", "lunch", 4))),
    events.Users("#empty", ()),
    events.Rooms((events.RoomInfo("#dev", "Release", 2), events.RoomInfo("#lobby", "", 5))),
    events.Whois("bob", "lunch", ("#lobby", "#dev"), T1, 4, False, True),
    events.History("#lobby", (MESSAGE, events.Message(9, T2, "#lobby", "bob", "me too", True))),
    events.History("#dev", ()),
    events.FileOffer(7, "alice", "#dev", "notes.txt", 2048, SHA, T2),
    events.UploadReady(7, "notes.txt", 2048),
    events.UploadDone(7, SHA),
    events.FileHeader(7, "notes.txt", 2048, 1024, SHA),
    events.Info("Starting TLS\nsecond line"),
    events.Error("bad-arguments", "a room name is # and 1 to 32 letters"),
    events.Pong("42"),
    events.Pong(""),
    events.Bye("goodbye"),
    events.PrivateHistory("bob", (
        events.Private(3, T1, "alice", "bob", "psst"), events.Private(4, T2, "bob", "alice", "waves", True),
    )),
    events.PrivateHistory("carol", ()),
    events.Kicked(T1, "#dev", "bob", "alice", "spam"),
    events.RoleChanged("#dev", "bob", "operator", "alice"),
    events.RoomSettings("#dev", True, False, True),
    events.Users("#dev", (events.UserInfo("alice", "", 0, "operator"),)),
    events.Private(5, T2, "alice", "bob", "", e2e="eyJjIjoiQUFBQSJ9"),
    events.Keys("bob", True, (
        events.DeviceKey("abcdefghijklmnop", "QUJD" * 21 + "QQ==", "04823 99120 00017 52310 88888 10203", T1),
        events.DeviceKey("ponmlkjihgfedcba", "REVG" * 21 + "RA==", "11111 22222 33333 44444 55555 66666", T2),
    )),
    events.Keys("carol", False, ()),
]

OFF_THE_WIRE = {
    (events.Welcome, "registered"),
    (events.Message, "notice"),
    (events.Message, "account"),
    (events.Private, "notice"),
    (events.Private, "account"),
    (events.Private, "away"),
    (events.Message, "after"),
    (events.Private, "after"),
    (events.Whois, "operator_of"),
    (events.RoomSettings, "changed"),
    (events.RoomSettings, "by"),
    (events.Joined, "account"),
    (events.Joined, "status"),
}
"""The attributes that L{encode} leaves out on purpose."""


def line(data: object) -> bytes:
    return json.dumps(data).encode("utf-8")


def changed(value: object) -> object:
    """
    A value of the same type as C{value} but different from it, or C{None}
    for an empty tuple (nothing to take away).
    """
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, tuple):
        return value[:-1] if value else None
    assert dataclasses.is_dataclass(value) and not isinstance(value, type), value
    first = dataclasses.fields(value)[0].name
    return dataclasses.replace(value, **{first: changed(getattr(value, first))})


class TimestampTests(SynchronousTestCase):
    """
    L{rfc3339} and L{parse_time}.
    """

    def test_milliseconds_and_z(self) -> None:
        """
        Times are RFC 3339 with exactly three digits of milliseconds (truncated) and Z.
        """
        ts = datetime(2026, 11, 21, 14, 2, 3, 120456, tzinfo=timezone.utc)
        self.assertEqual(rfc3339(ts), "2026-11-21T14:02:03.120Z")
        self.assertEqual(rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)), "2026-01-02T03:04:05.000Z")
        self.assertEqual(
            rfc3339(datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)), "2026-12-31T23:59:59.999Z"
        )
        self.assertEqual(rfc3339(datetime(2026, 1, 2, 3, 4, 5, 1000, tzinfo=timezone.utc)), "2026-01-02T03:04:05.001Z")

    def test_four_digit_year(self) -> None:
        """
        Years before 1000 keep four digits, as RFC 3339 requires.
        """
        self.assertEqual(rfc3339(datetime(5, 1, 2, 3, 4, 5, tzinfo=timezone.utc)), "0005-01-02T03:04:05.000Z")

    def test_time_forms(self) -> None:
        """
        Times without a fraction, with microseconds, or with an offset are read as UTC.
        """
        self.assertEqual(parse_time("2026-11-21T14:02:03Z"), T1.replace(microsecond=0))
        self.assertEqual(parse_time("2026-11-21T14:02:03.120456789Z"), T1.replace(microsecond=120_456))
        self.assertEqual(parse_time("2026-11-21T15:32:03.12+01:30"), T1)
        self.assertEqual(parse_time("2026-11-21t14:02:03.120z"), T1)

    def test_time_round_trip(self) -> None:
        """
        What L{rfc3339} writes, L{parse_time} reads back to the millisecond.
        """
        ts = datetime(2026, 11, 21, 14, 2, 3, 120456, tzinfo=timezone.utc)
        self.assertEqual(parse_time(rfc3339(ts)), ts.replace(microsecond=120_000))


class EncodeTests(SynchronousTestCase):
    """
    L{encode} and L{to_json}: the members of PROTOCOL.md section 5, in wire order.
    """

    def test_exact_lines(self) -> None:
        """
        Each irregular shape encodes to exactly these bytes: members in this order, compact, UTF-8 as is.
        """
        wire = {
            0: '{"type":"welcome","server":"chat","version":"0.1.0","motd":"line one\\nline two",'
               '"limits":{"line":4096,"nick":24,"file":104857600}}',
            2: '{"type":"message","id":1,"ts":"2026-11-21T14:02:03.120Z","room":"#lobby","from":"alice",'
               '"text":"hello \\"world\\" \u00e9\u6f22 \U0001f600","action":false}',
            6: '{"type":"part","ts":"2026-11-21T14:02:03.120Z","room":"#dev","nick":"alice","reason":"bye for now"}',
            7: '{"type":"part","ts":"2026-11-22T00:00:00.000Z","room":"#dev","nick":"bob"}',
            13: '{"type":"users","room":"#lobby","count":2,"users":[{"nick":"alice","status":"","idle":0,'
                '"role":"member"},{"nick":"bob","status":"lunch","idle":4,"role":"member"}]}',
            16: '{"type":"whois","nick":"bob","status":"lunch","rooms":["#lobby","#dev"],'
                '"since":"2026-11-21T14:02:03.120Z","idle":4,"account":false,"secure":true}',
            17: '{"type":"history","room":"#lobby","messages":[{"type":"message","id":1,'
                '"ts":"2026-11-21T14:02:03.120Z","room":"#lobby","from":"alice",'
                '"text":"hello \\"world\\" \u00e9\u6f22 \U0001f600","action":false},{"type":"message","id":9,'
                '"ts":"2026-11-22T00:00:00.000Z","room":"#lobby","from":"bob","text":"me too","action":true}]}',
            19: '{"type":"file-offer","id":7,"from":"alice","to":"#dev","name":"notes.txt","size":2048,'
                f'"sha256":"{SHA}","expires":"2026-11-22T00:00:00.000Z"}}',
        }
        for index, expected in wire.items():
            self.assertEqual(encode(ONE_OF_EACH[index]), expected)

    def test_exact_private_history(self) -> None:
        """
        A private conversation's history is a C{history} with C{with} instead of C{room}, and C{private} objects.
        """
        self.assertEqual(
            encode(events.PrivateHistory("bob", (events.Private(3, T1, "alice", "bob", "psst"),))),
            '{"type":"history","with":"bob","messages":[{"type":"private","id":3,"ts":"2026-11-21T14:02:03.120Z",'
            '"from":"alice","to":"bob","text":"psst","action":false,"offline":false}]}',
        )
        self.assertEqual(encode(events.PrivateHistory("bob", ())), '{"type":"history","with":"bob","messages":[]}')

    def test_exact_e2e_lines(self) -> None:
        """
        An encrypted C{private} carries C{e2e} after C{offline}; C{keys} lists device, key, fingerprint and added.
        """
        self.assertEqual(
            encode(events.Private(5, T2, "alice", "bob", "", e2e="eyJjIjoiQUFBQSJ9")),
            '{"type":"private","id":5,"ts":"2026-11-22T00:00:00.000Z","from":"alice","to":"bob","text":"",'
            '"action":false,"offline":false,"e2e":"eyJjIjoiQUFBQSJ9"}',
        )
        key = events.DeviceKey("abcdefghijklmnop", "QUJD", "04823 99120 00017 52310 88888 10203", T1)
        self.assertEqual(
            encode(events.Keys("bob", True, (key,))),
            '{"type":"keys","nick":"bob","account":true,"keys":[{"device":"abcdefghijklmnop","key":"QUJD",'
            '"fingerprint":"04823 99120 00017 52310 88888 10203","added":"2026-11-21T14:02:03.120Z"}]}',
        )
        self.assertEqual(
            encode(events.Keys("carol", False, ())), '{"type":"keys","nick":"carol","account":false,"keys":[]}'
        )

    def test_to_json_is_the_object(self) -> None:
        """
        L{to_json} gives the object L{encode} writes, C{type} first.
        """
        for event in ONE_OF_EACH:
            obj = to_json(event)
            self.assertEqual(json.loads(encode(event)), obj)
            self.assertEqual(next(iter(obj)), "type")

    def test_welcome_registered_not_on_the_wire(self) -> None:
        """
        Whether the connection is registered does not show in C{welcome}.
        """
        welcome = ONE_OF_EACH[0]
        assert isinstance(welcome, events.Welcome)
        self.assertEqual(encode(dataclasses.replace(welcome, registered=True)), encode(welcome))

    def test_every_attribute_on_the_wire(self) -> None:
        """
        Changing any attribute of any event (but those of L{OFF_THE_WIRE}) changes its line, and it reads back.
        """
        seen = set()
        for event in ONE_OF_EACH:
            for field in dataclasses.fields(event):
                if (type(event), field.name) in OFF_THE_WIRE:
                    continue
                other = changed(getattr(event, field.name))
                if other is None:
                    continue
                seen.add((type(event), field.name))
                variant = dataclasses.replace(cast(Any, event), **{field.name: other})
                self.assertNotEqual(encode(variant), encode(event), (event, field.name))
                self.assertEqual(decode(encode(variant)), variant)
        every = {(cls, f.name) for cls in events.Event.__args__ for f in dataclasses.fields(cls)}
        self.assertEqual(seen, every - OFF_THE_WIRE)

    def test_not_an_event(self) -> None:
        """
        Encoding something that is not an event raises TypeError.
        """
        self.assertRaises(TypeError, encode, object())
        self.assertRaises(TypeError, to_json, events.Limits(1, 2, 3))


class RoundTripTests(SynchronousTestCase):
    """
    L{decode} inverts L{encode}.
    """

    def test_every_event_class_covered(self) -> None:
        """
        The round-trip list holds at least one event of each class of the C{Event} union.
        """
        self.assertEqual({type(e) for e in ONE_OF_EACH}, set(events.Event.__args__))

    def test_round_trip(self) -> None:
        """
        Every event encoded, as UTF-8 bytes or as text, decodes back to an equal value.
        """
        for event in ONE_OF_EACH:
            encoded = encode(event)
            self.assertNotIn("\n", encoded)
            self.assertEqual(decode(encoded.encode("utf-8")), event, encoded)
            self.assertEqual(decode(encoded), event, encoded)

    def test_times_are_aware_utc(self) -> None:
        """
        Times come back as aware C{datetime}s in UTC, to the millisecond.
        """
        parsed = decode(encode(MESSAGE).encode("utf-8"))
        assert isinstance(parsed, events.Message)
        self.assertEqual(parsed.ts.utcoffset(), timedelta(0))
        self.assertEqual(parsed.ts.microsecond, 120_000)

    def test_lists_are_tuples(self) -> None:
        """
        JSON lists become tuples, so decoded events stay hashable.
        """
        parsed = decode(encode(ONE_OF_EACH[13]))
        assert isinstance(parsed, events.Users)
        self.assertIsInstance(parsed.users, tuple)
        hash(parsed)


class LenientTests(SynchronousTestCase):
    """
    What a newer daemon may send is read, not refused.
    """

    def test_unknown_type(self) -> None:
        """
        An event of a type this client does not know gives C{None}.
        """
        self.assertIsNone(decode(b'{"type":"reaction","id":3}'))

    def test_unknown_members_ignored(self) -> None:
        """
        Members an event does not know are ignored.
        """
        self.assertEqual(decode(b'{"type":"pong","token":"7","extra":[1,2],"ts":"nonsense"}'), events.Pong("7"))

    def test_history_with_both_room_and_with(self) -> None:
        """
        A C{history} with C{with} is a private conversation's, whatever else it holds; without it, a room's.
        """
        self.assertEqual(
            decode(line({"type": "history", "with": "bob", "room": "#a", "messages": []})),
            events.PrivateHistory("bob", ()),
        )
        self.assertEqual(decode(line({"type": "history", "room": "#a", "messages": []})), events.History("#a", ()))

    def test_part_without_reason(self) -> None:
        """
        A C{part} without a reason reads as an empty reason.
        """
        self.assertEqual(
            decode(line({"type": "part", "ts": "2026-11-22T00:00:00Z", "room": "#dev", "nick": "bob"})),
            events.Parted(T2, "#dev", "bob", ""),
        )

    def test_users_count_from_the_list(self) -> None:
        """
        The C{count} of C{users} is checked to be a count but the list alone makes the value.
        """
        self.assertEqual(
            decode(line({"type": "users", "room": "#a", "count": 5, "users": []})), events.Users("#a", ())
        )


class MalformedTests(SynchronousTestCase):
    """
    Lines that are not valid events raise L{ProtocolError} with one clear message.
    """

    def assert_refused(self, data: bytes, fragment: str) -> None:
        with self.assertRaises(ProtocolError) as caught:
            decode(data)
        self.assertIn(fragment, str(caught.exception))

    def test_not_utf8(self) -> None:
        """
        A line that is not UTF-8 is refused.
        """
        self.assert_refused(b'{"type":"info","text":"\xff"}', "not UTF-8")

    def test_not_json(self) -> None:
        """
        A line that is not JSON (text format, truncated) is refused.
        """
        self.assert_refused(b"*** Welcome to chat", "not JSON")
        self.assert_refused(b'{"type":"info","text":"cut', "not JSON")
        self.assert_refused(b"", "not JSON")

    def test_not_an_object(self) -> None:
        """
        JSON that is not an object is refused.
        """
        self.assert_refused(b'["type","info"]', "not an object")
        self.assert_refused(b'"info"', "not an object")
        self.assert_refused(b"null", "not an object")

    def test_no_type(self) -> None:
        """
        An object without a string C{type} is refused.
        """
        self.assert_refused(b'{"text":"hi"}', "'type'")
        self.assert_refused(b'{"type":7}', "'type'")

    def test_missing_member(self) -> None:
        """
        An event without one of its members is refused, naming it.
        """
        self.assert_refused(b'{"type":"message","id":1,"room":"#a","from":"x","text":"t","action":false}', "'ts'")
        self.assert_refused(b'{"type":"welcome","server":"chat","version":"1","motd":""}', "'limits'")
        self.assert_refused(
            line({"type": "users", "room": "#a", "count": 1, "users": [{"nick": "a", "idle": 0}]}), "'status'"
        )
        self.assert_refused(line({"type": "users", "room": "#a", "users": []}), "'count'")

    def test_mistyped_members(self) -> None:
        """
        Members of the wrong JSON type are refused, naming them.
        """
        good = json.loads(encode(ONE_OF_EACH[4]))
        cases: dict[str, list[object]] = {
            "id": ["1", 1.5, True, -1, None],
            "ts": [1234, "yesterday", "2026-13-01T00:00:00.000Z", "2026-11-21 14:02:03Z"],
            "from": [None, 3, ["a"]],
            "action": [0, "false", None],
            "offline": [1],
        }
        for key, values in cases.items():
            for value in values:
                self.assert_refused(line({**good, key: value}), repr(key))

    def test_mistyped_optional(self) -> None:
        """
        An optional member that is present must still have its type.
        """
        self.assert_refused(
            line({"type": "part", "ts": "2026-11-22T00:00:00Z", "room": "#dev", "nick": "bob", "reason": 3}),
            "'reason'",
        )

    def test_mistyped_nested(self) -> None:
        """
        Nested objects and lists of the wrong shape are refused.
        """
        self.assert_refused(line({"type": "rooms", "rooms": {"room": "#a"}}), "'rooms'")
        self.assert_refused(line({"type": "rooms", "rooms": ["#a"]}), "'rooms'")
        self.assert_refused(
            line({"type": "whois", "nick": "a", "status": "", "rooms": ["#a", 3], "since": "2026-11-21T14:02:03Z",
                  "idle": 0, "account": False, "secure": False}),
            "'rooms'",
        )
        self.assert_refused(
            line({"type": "history", "room": "#a", "messages": [{"type": "message", "id": 1}]}), "'ts'"
        )
        self.assert_refused(
            line({"type": "history", "with": "bob", "messages": [{
                "type": "private", "id": 1, "ts": "2026-11-21T14:02:03Z", "from": "a", "to": "b", "text": "t",
                "action": False,
            }]}),
            "'offline'",
        )
        self.assert_refused(line({"type": "history", "with": 3, "messages": []}), "'with'")
        self.assert_refused(
            line({"type": "welcome", "server": "c", "version": "1", "motd": "",
                  "limits": {"line": 1, "nick": "24", "file": 3}}),
            "'nick'",
        )

    def test_negative_size(self) -> None:
        """
        A negative size or offset in a C{file} line is refused.
        """
        header = {"type": "file", "id": 1, "name": "x", "size": 10, "offset": -1, "sha256": SHA}
        self.assert_refused(line(header), "'offset'")

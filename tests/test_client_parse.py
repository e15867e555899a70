"""
Tests for L{chat.client.parse}: every event the daemon renders in C{json}
reads back as the same value, and malformed lines are refused with
L{ProtocolError}.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from twisted.trial.unittest import SynchronousTestCase

from chat import events
from chat.client.parse import ProtocolError, parse_event, parse_time
from chat.render import render_json

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
]


def line(data: object) -> bytes:
    return json.dumps(data).encode("utf-8")


class RoundTripTests(SynchronousTestCase):
    """
    C{parse_event} inverts C{render_json}.
    """

    def test_every_event_class_covered(self) -> None:
        """
        The round-trip list holds at least one event of each class of the C{Event} union.
        """
        self.assertEqual(
            {type(e) for e in ONE_OF_EACH}, set(events.Event.__args__)
        )

    def test_round_trip(self) -> None:
        """
        Every event rendered by C{render_json}, without its CR LF, parses back to an equal value.
        """
        for event in ONE_OF_EACH:
            rendered = render_json(event)
            self.assertTrue(rendered.endswith(b"\r\n"))
            self.assertEqual(parse_event(rendered.rstrip(b"\r\n")), event, rendered)

    def test_times_are_aware_utc(self) -> None:
        """
        Times come back as aware C{datetime}s in UTC, to the millisecond.
        """
        parsed = parse_event(render_json(MESSAGE).rstrip(b"\r\n"))
        assert isinstance(parsed, events.Message)
        self.assertEqual(parsed.ts.utcoffset(), timedelta(0))
        self.assertEqual(parsed.ts.microsecond, 120_000)

    def test_lists_are_tuples(self) -> None:
        """
        JSON lists become tuples, so parsed events stay hashable.
        """
        parsed = parse_event(render_json(ONE_OF_EACH[13]).rstrip(b"\r\n"))
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
        self.assertIsNone(parse_event(b'{"type":"reaction","id":3}'))

    def test_unknown_members_ignored(self) -> None:
        """
        Members an event does not know are ignored.
        """
        self.assertEqual(
            parse_event(b'{"type":"pong","token":"7","extra":[1,2],"ts":"nonsense"}'), events.Pong("7")
        )

    def test_time_forms(self) -> None:
        """
        Times without a fraction, with microseconds, or with an offset are read as UTC.
        """
        self.assertEqual(parse_time("2026-11-21T14:02:03Z"), T1.replace(microsecond=0))
        self.assertEqual(parse_time("2026-11-21T14:02:03.120456789Z"), T1.replace(microsecond=120_456))
        self.assertEqual(parse_time("2026-11-21T15:32:03.12+01:30"), T1)
        self.assertEqual(parse_time("2026-11-21t14:02:03.120z"), T1)


class MalformedTests(SynchronousTestCase):
    """
    Lines that are not valid events raise L{ProtocolError} with one clear message.
    """

    def assert_refused(self, data: bytes, fragment: str) -> None:
        with self.assertRaises(ProtocolError) as caught:
            parse_event(data)
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

    def test_mistyped_members(self) -> None:
        """
        Members of the wrong JSON type are refused, naming them.
        """
        good = json.loads(render_json(ONE_OF_EACH[4]))
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

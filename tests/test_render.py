"""
Tests for L{chat.render}: every event in both output formats (PROTOCOL.md
sections 2 and 5).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from chat import events
from chat.render import RENDERERS, render_json, render_text

TS = datetime(2026, 11, 21, 14, 2, 3, 120456, tzinfo=timezone.utc)
TS_JSON = "2026-11-21T14:02:03.120Z"
LIMITS = events.Limits(line=4096, nick=24, file=104857600)
OFFER = events.FileOffer(9, "alice", "#dev", "a b.pdf", 1536, "ab" * 32, TS.replace(microsecond=120000))
MESSAGE = events.Message(7, TS, "#lobby", "alice", "hello \u00e9")
ACTION = events.Message(8, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "#dev", "bob", "waves", True)


def decode(data: bytes) -> Any:
    """
    Check that C{data} is one CR LF terminated line and parse its JSON.
    """
    assert data.endswith(b"\r\n"), data
    assert b"\n" not in data[:-2] and b"\r" not in data[:-2], data
    return json.loads(data[:-2].decode("utf-8"))


class JsonTests(SynchronousTestCase):
    """
    L{render_json}: one JSON object per event with a C{type} member.
    """

    def assert_json(self, event: events.Event, expected: dict[str, Any]) -> None:
        self.assertEqual(decode(render_json(event)), expected)

    def test_welcome(self) -> None:
        """
        welcome has server, version, motd and limits, and nothing about registration.
        """
        self.assert_json(
            events.Welcome("chat", "0.1.0", "be nice", LIMITS, registered=True),
            {"type": "welcome", "server": "chat", "version": "0.1.0", "motd": "be nice",
             "limits": {"line": 4096, "nick": 24, "file": 104857600}},
        )

    def test_registered(self) -> None:
        """
        registered has nick and account.
        """
        self.assert_json(events.Registered("alice"), {"type": "registered", "nick": "alice", "account": False})

    def test_message(self) -> None:
        """
        message has id, ts, room, from, text and action.
        """
        self.assert_json(MESSAGE, {
            "type": "message", "id": 7, "ts": TS_JSON, "room": "#lobby", "from": "alice",
            "text": "hello \u00e9", "action": False,
        })
        self.assert_json(ACTION, {
            "type": "message", "id": 8, "ts": "2026-01-02T03:04:05.000Z", "room": "#dev", "from": "bob",
            "text": "waves", "action": True,
        })

    def test_private(self) -> None:
        """
        private has id, ts, from, to, text, action and offline.
        """
        self.assert_json(events.Private(9, TS, "alice", "bob", "psst"), {
            "type": "private", "id": 9, "ts": TS_JSON, "from": "alice", "to": "bob",
            "text": "psst", "action": False, "offline": False,
        })

    def test_join(self) -> None:
        """
        join has ts, room and nick.
        """
        self.assert_json(events.Joined(TS, "#x", "bob"), {"type": "join", "ts": TS_JSON, "room": "#x", "nick": "bob"})

    def test_part_reason_only_when_given(self) -> None:
        """
        part has ts, room and nick, and reason only when there is one.
        """
        self.assert_json(events.Parted(TS, "#x", "bob"), {"type": "part", "ts": TS_JSON, "room": "#x", "nick": "bob"})
        self.assert_json(
            events.Parted(TS, "#x", "bob", "later"),
            {"type": "part", "ts": TS_JSON, "room": "#x", "nick": "bob", "reason": "later"},
        )

    def test_quit(self) -> None:
        """
        quit has ts, nick and reason, even an empty one.
        """
        self.assert_json(events.Quit(TS, "bob", ""), {"type": "quit", "ts": TS_JSON, "nick": "bob", "reason": ""})

    def test_nick(self) -> None:
        """
        nick has ts, old and new.
        """
        self.assert_json(
            events.NickChanged(TS, "bob", "rob"), {"type": "nick", "ts": TS_JSON, "old": "bob", "new": "rob"}
        )

    def test_status(self) -> None:
        """
        status has nick and text.
        """
        self.assert_json(events.StatusChanged("bob", ""), {"type": "status", "nick": "bob", "text": ""})

    def test_topic(self) -> None:
        """
        topic has room, text and by.
        """
        self.assert_json(
            events.Topic("#x", "cats", "bob"), {"type": "topic", "room": "#x", "text": "cats", "by": "bob"}
        )

    def test_users(self) -> None:
        """
        users has room, count and users with nick, status and idle.
        """
        self.assert_json(
            events.Users("#x", (events.UserInfo("alice", "away", 3), events.UserInfo("bob", "", 0))),
            {"type": "users", "room": "#x", "count": 2, "users": [
                {"nick": "alice", "status": "away", "idle": 3, "role": "member"},
                {"nick": "bob", "status": "", "idle": 0, "role": "member"},
            ]},
        )

    def test_rooms(self) -> None:
        """
        rooms has a list of room, topic and count.
        """
        self.assert_json(
            events.Rooms((events.RoomInfo("#lobby", "", 0), events.RoomInfo("#x", "cats", 2))),
            {"type": "rooms", "rooms": [
                {"room": "#lobby", "topic": "", "count": 0},
                {"room": "#x", "topic": "cats", "count": 2},
            ]},
        )

    def test_whois(self) -> None:
        """
        whois has nick, status, rooms, since, idle, account and secure.
        """
        self.assert_json(
            events.Whois("bob", "busy", ("#lobby", "#x"), TS, 42, False, True),
            {"type": "whois", "nick": "bob", "status": "busy", "rooms": ["#lobby", "#x"],
             "since": TS_JSON, "idle": 42, "account": False, "secure": True},
        )

    def test_history(self) -> None:
        """
        history has room and message objects, oldest first.
        """
        self.assert_json(events.History("#x", ()), {"type": "history", "room": "#x", "messages": []})
        self.assert_json(events.History("#lobby", (MESSAGE, ACTION)), {
            "type": "history", "room": "#lobby", "messages": [
                {"type": "message", "id": 7, "ts": TS_JSON, "room": "#lobby", "from": "alice",
                 "text": "hello \u00e9", "action": False},
                {"type": "message", "id": 8, "ts": "2026-01-02T03:04:05.000Z", "room": "#dev", "from": "bob",
                 "text": "waves", "action": True},
            ],
        })

    def test_private_history(self) -> None:
        """
        A private conversation's history has with and private objects, oldest first.
        """
        self.assert_json(events.PrivateHistory("bob", ()), {"type": "history", "with": "bob", "messages": []})
        self.assert_json(events.PrivateHistory("bob", (events.Private(9, TS, "bob", "alice", "psst", True),)), {
            "type": "history", "with": "bob", "messages": [
                {"type": "private", "id": 9, "ts": TS_JSON, "from": "bob", "to": "alice", "text": "psst",
                 "action": True, "offline": False},
            ],
        })

    def test_info_error_pong_bye(self) -> None:
        """
        info has text, error code and message, pong token, bye reason.
        """
        self.assert_json(events.Info("line one\nline two"), {"type": "info", "text": "line one\nline two"})
        self.assert_json(events.Error("flood", "slow down"), {"type": "error", "code": "flood", "message": "slow down"})
        self.assert_json(events.Pong(""), {"type": "pong", "token": ""})
        self.assert_json(events.Bye("server shutting down"), {"type": "bye", "reason": "server shutting down"})

    def test_exact_bytes(self) -> None:
        """
        JSON is compact UTF-8 (not \\u escapes) ending in CR LF.
        """
        self.assertEqual(render_json(events.Info("caf\u00e9")), b'{"type":"info","text":"caf\xc3\xa9"}\r\n')

    def test_not_an_event(self) -> None:
        """
        Rendering something that is not an event raises TypeError.
        """
        self.assertRaises(TypeError, render_json, object())


class FileJsonTests(SynchronousTestCase):
    """
    The file events of PROTOCOL.md section 5 in JSON.
    """

    def test_file_offer(self) -> None:
        """
        file-offer has id, from, to, name, size, sha256 and expires.
        """
        self.assertEqual(decode(render_json(OFFER)), {
            "type": "file-offer", "id": 9, "from": "alice", "to": "#dev", "name": "a b.pdf",
            "size": 1536, "sha256": "ab" * 32, "expires": TS_JSON,
        })

    def test_upload_and_file(self) -> None:
        """
        upload-ready, upload-done and file carry the members of section 5.
        """
        self.assertEqual(decode(render_json(events.UploadReady(9, "a.pdf", 12))),
                         {"type": "upload-ready", "id": 9, "name": "a.pdf", "size": 12})
        self.assertEqual(decode(render_json(events.UploadDone(9, "cd" * 32))),
                         {"type": "upload-done", "id": 9, "sha256": "cd" * 32})
        self.assertEqual(decode(render_json(events.FileHeader(9, "a.pdf", 12, 4, "cd" * 32))),
                         {"type": "file", "id": 9, "name": "a.pdf", "size": 12, "offset": 4, "sha256": "cd" * 32})


class FileTextTests(SynchronousTestCase):
    def test_file_offer(self) -> None:
        """
        A text offer tells who offers what, how big, its id and end, and how to fetch it.
        """
        self.assertEqual(render_text(OFFER), (
            b"*** alice offers a file to #dev: a b.pdf (1.5 KiB), id 9, until 2026-11-21 14:02 UTC\r\n"
            b"***   fetch it with a chat client (chat-client or chat-tk: /get 9); /download 9 sends raw bytes, so only "
            b"after /format json\r\n"
        ))

    def test_sizes(self) -> None:
        """
        Sizes are shown in bytes below 1 KiB, then in KiB, MiB, GiB with one decimal.
        """
        for size, shown in [(1, "1 byte"), (1023, "1023 bytes"), (1024, "1.0 KiB"),
                            (5 * 1024**2 + 1, "5.0 MiB"), (3 * 1024**3 // 2, "1.5 GiB"), (2 * 1024**5, "2048.0 TiB")]:
            offer = events.FileOffer(1, "a", "b", "f", size, "ab" * 32, TS)
            self.assertIn(f": f ({shown}), id".encode(), render_text(offer))

    def test_upload_lines(self) -> None:
        """
        upload-ready and upload-done read as instructions and acknowledgements.
        """
        self.assertEqual(render_text(events.UploadReady(9, "a.pdf", 12)),
                         b"*** Upload 9: send the 12 bytes of a.pdf now\r\n")
        self.assertEqual(render_text(events.UploadDone(9, "cd" * 32)),
                         f"*** Upload 9 is stored and offered (sha256 {'cd' * 32})\r\n".encode())


class TextTests(SynchronousTestCase):
    """
    L{render_text}: readable lines ending in CR LF, times in UTC.
    """

    def test_welcome_prompts_until_registered(self) -> None:
        """
        welcome shows server, version and each motd line, and the nick prompt only when not registered.
        """
        welcome = events.Welcome("chat", "0.1.0", "be nice\nno spam", LIMITS)
        self.assertEqual(render_text(welcome), (
            b"*** Welcome to chat (chat 0.1.0). Times are UTC.\r\n"
            b"*** be nice\r\n"
            b"*** no spam\r\n"
            b"*** Choose a nickname (letters, digits, _ or -), or /help:\r\n"
        ))
        registered = events.Welcome("chat", "0.1.0", "", LIMITS, registered=True)
        self.assertEqual(render_text(registered), b"*** Welcome to chat (chat 0.1.0). Times are UTC.\r\n")

    def test_registered(self) -> None:
        """
        registered tells the user their nick.
        """
        self.assertEqual(
            render_text(events.Registered("alice")), b"*** You are alice. Type to talk, /help for commands.\r\n"
        )

    def test_message(self) -> None:
        """
        A message shows [HH:MM], room, <nick> and the UTF-8 text; an action shows * nick.
        """
        self.assertEqual(render_text(MESSAGE), "[14:02] #lobby <alice> hello \u00e9\r\n".encode())
        self.assertEqual(render_text(ACTION), b"[03:04] #dev * bob waves\r\n")

    def test_private(self) -> None:
        """
        A private message shows sender and recipient, and notes one sent while away.
        """
        self.assertEqual(
            render_text(events.Private(9, TS, "alice", "bob", "psst")), b"[14:02] [private alice -> bob] psst\r\n"
        )
        self.assertEqual(
            render_text(events.Private(9, TS, "alice", "bob", "hugs", action=True, offline=True)),
            b"[2026-11-21 14:02] [private alice -> bob] * alice hugs (offline message)\r\n",
        )

    def test_encrypted_private(self) -> None:
        """
        An encrypted private message shows that it is one, never its envelope.
        """
        self.assertEqual(
            render_text(events.Private(9, TS, "alice", "bob", "", offline=True, e2e="ZW52ZWxvcGU")),
            b"[2026-11-21 14:02] [private alice -> bob] (end-to-end encrypted: only a chat client with a key of"
            b" the recipient can read it) (offline message)\r\n",
        )

    def test_keys(self) -> None:
        """
        keys lists each device with its fingerprint and time, or says there are none.
        """
        key = events.DeviceKey("abcdefghijklmnop", "QUJD", "04823 99120 00017 52310 88888 10203", TS)
        self.assertEqual(
            render_text(events.Keys("bob", True, (key, key))),
            b"* Encryption keys of bob (account): 2 devices\r\n"
            + b"*   device abcdefghijklmnop, fingerprint 04823 99120 00017 52310 88888 10203,"
            b" added 2026-11-21 14:02 UTC\r\n" * 2,
        )
        self.assertEqual(
            render_text(events.Keys("carol", False, ())), b"* carol (guest) has published no encryption keys\r\n"
        )

    def test_join_part_quit_nick(self) -> None:
        """
        join, part, quit and nick are one timestamped line each, reasons in parentheses.
        """
        self.assertEqual(render_text(events.Joined(TS, "#x", "bob")), b"[14:02] * bob joined #x\r\n")
        self.assertEqual(render_text(events.Parted(TS, "#x", "bob")), b"[14:02] * bob left #x\r\n")
        self.assertEqual(render_text(events.Parted(TS, "#x", "bob", "later")), b"[14:02] * bob left #x (later)\r\n")
        self.assertEqual(render_text(events.Quit(TS, "bob", "")), b"[14:02] * bob quit\r\n")
        self.assertEqual(render_text(events.Quit(TS, "bob", "zzz")), b"[14:02] * bob quit (zzz)\r\n")
        self.assertEqual(render_text(events.NickChanged(TS, "bob", "rob")), b"[14:02] * bob is now known as rob\r\n")

    def test_status(self) -> None:
        """
        status shows the new status, or that it was cleared.
        """
        self.assertEqual(render_text(events.StatusChanged("bob", "lunch")), b"* bob set status: lunch\r\n")
        self.assertEqual(render_text(events.StatusChanged("bob", "")), b"* bob cleared their status\r\n")

    def test_topic(self) -> None:
        """
        topic shows the text and setter, or that there is none.
        """
        self.assertEqual(render_text(events.Topic("#x", "cats", "bob")), b"* Topic of #x: cats (set by bob)\r\n")
        self.assertEqual(render_text(events.Topic("#x", "", "")), b"* #x has no topic\r\n")

    def test_users(self) -> None:
        """
        users shows the count (singular for one), then one line per user with idle time and status.
        """
        users = events.Users("#x", (
            events.UserInfo("alice", "away", 59),
            events.UserInfo("bob", "", 60),
            events.UserInfo("carol", "", 3599),
            events.UserInfo("dave", "", 3725),
        ))
        self.assertEqual(render_text(users), (
            b"* 4 users in #x:\r\n"
            b"*   alice (idle 59s) - away\r\n"
            b"*   bob (idle 1m)\r\n"
            b"*   carol (idle 59m)\r\n"
            b"*   dave (idle 1h02m)\r\n"
        ))
        one = events.Users("#x", (events.UserInfo("alice", "", 0),))
        self.assertEqual(render_text(one), b"* 1 user in #x:\r\n*   alice (idle 0s)\r\n")

    def test_users_operators_marked(self) -> None:
        """
        An operator's line in users starts with @, as on IRC; a member's does not.
        """
        users = events.Users("#x", (events.UserInfo("alice", "", 0, "operator"), events.UserInfo("bob", "", 0)))
        self.assertEqual(render_text(users), b"* 2 users in #x:\r\n*   @alice (idle 0s)\r\n*   bob (idle 0s)\r\n")

    def test_moderation_events(self) -> None:
        """
        kick, role and room-settings are one readable line each, the reason and giver only when known.
        """
        ts = datetime(2026, 11, 21, 14, 2, 3, tzinfo=timezone.utc)
        self.assertEqual(
            render_text(events.Kicked(ts, "#x", "eve", "alice", "spam")),
            b"[14:02] * eve was kicked from #x by alice (spam)\r\n",
        )
        self.assertEqual(
            render_text(events.Kicked(ts, "#x", "eve", "alice")), b"[14:02] * eve was kicked from #x by alice\r\n"
        )
        self.assertEqual(
            render_text(events.RoleChanged("#x", "bob", "operator", "alice")),
            b"* bob is an operator of #x (by alice)\r\n",
        )
        self.assertEqual(render_text(events.RoleChanged("#x", "bob", "operator")), b"* bob is an operator of #x\r\n")
        self.assertEqual(
            render_text(events.RoleChanged("#x", "bob", "member", "alice")),
            b"* bob is no longer an operator of #x (by alice)\r\n",
        )
        self.assertEqual(
            render_text(events.RoomSettings("#x", invite_only=True, moderated=True)),
            b"* Settings of #x: invite-only on, topic-lock off, moderated on\r\n",
        )

    def test_rooms(self) -> None:
        """
        rooms shows the count (singular for one), then one line per room with count and topic.
        """
        rooms = events.Rooms((events.RoomInfo("#lobby", "", 0), events.RoomInfo("#x", "cats", 2)))
        self.assertEqual(render_text(rooms), b"* 2 rooms:\r\n*   #lobby (0)\r\n*   #x (2) - cats\r\n")
        one = events.Rooms((events.RoomInfo("#lobby", "", 1),))
        self.assertEqual(render_text(one), b"* 1 room:\r\n*   #lobby (1)\r\n")

    def test_whois(self) -> None:
        """
        whois shows nick and status, rooms, connection time in UTC and idle, account and TLS.
        """
        self.assertEqual(render_text(events.Whois("bob", "busy", ("#lobby", "#x"), TS, 3600, False, True)), (
            b"* bob - busy\r\n"
            b"*   rooms: #lobby #x\r\n"
            b"*   connected since 2026-11-21 14:02 UTC, idle 1h00m\r\n"
            b"*   guest, TLS\r\n"
        ))
        self.assertEqual(render_text(events.Whois("amy", "", (), TS, 0, True, False)), (
            b"* amy\r\n"
            b"*   rooms: (none)\r\n"
            b"*   connected since 2026-11-21 14:02 UTC, idle 0s\r\n"
            b"*   logged in, not encrypted\r\n"
        ))

    def test_history(self) -> None:
        """
        history frames dated messages between a header and a footer; an empty one renders nothing.
        """
        self.assertEqual(render_text(events.History("#x", ())), b"")
        self.assertEqual(render_text(events.History("#lobby", (MESSAGE, ACTION))), (
            "--- last 2 messages in #lobby ---\r\n"
            "[2026-11-21 14:02] #lobby <alice> hello \u00e9\r\n"
            "[2026-01-02 03:04] #dev * bob waves\r\n"
            "--- end of history ---\r\n"
        ).encode())
        self.assertEqual(render_text(events.History("#x", (MESSAGE,))), (
            "--- last 1 message in #x ---\r\n"
            "[2026-11-21 14:02] #lobby <alice> hello \u00e9\r\n"
            "--- end of history ---\r\n"
        ).encode())

    def test_private_history(self) -> None:
        """
        A private conversation's history frames dated private lines; an empty one says there is none.
        """
        self.assertEqual(
            render_text(events.PrivateHistory("bob", ())), b"--- no private messages with bob ---\r\n"
        )
        self.assertEqual(render_text(events.PrivateHistory("bob", (
            events.Private(9, TS, "alice", "bob", "psst"),
            events.Private(10, ACTION.ts, "bob", "alice", "hugs", action=True),
        ))), (
            b"--- last 2 private messages with bob ---\r\n"
            b"[2026-11-21 14:02] [private alice -> bob] psst\r\n"
            b"[2026-01-02 03:04] [private bob -> alice] * bob hugs\r\n"
            b"--- end of history ---\r\n"
        ))

    def test_info_error_pong_bye(self) -> None:
        """
        info shows each of its lines; error, pong and bye one line each.
        """
        self.assertEqual(render_text(events.Info("line one\nline two")), b"*** line one\r\n*** line two\r\n")
        self.assertEqual(render_text(events.Error("flood", "slow down")), b"*** Error: slow down (flood)\r\n")
        self.assertEqual(render_text(events.Pong("")), b"*** pong\r\n")
        self.assertEqual(render_text(events.Pong("t1")), b"*** pong t1\r\n")
        self.assertEqual(render_text(events.Bye("server shutting down")), b"*** Bye: server shutting down\r\n")

    def test_not_an_event(self) -> None:
        """
        Rendering something that is not an event raises TypeError.
        """
        self.assertRaises(TypeError, render_text, object())


class RenderersTests(SynchronousTestCase):
    """
    L{RENDERERS}: the formats C{/format} names.
    """

    def test_formats(self) -> None:
        """
        text and json name the two renderers, and nothing else is a format.
        """
        self.assertEqual(RENDERERS, {"text": render_text, "json": render_json})

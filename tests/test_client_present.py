"""
Tests for L{chat.client.present}: the lines, colours and texts both front
ends show, in each L{Voice}, without a display or a terminal; and the
direction of imports between the front ends.
"""

from __future__ import annotations

import ast
import importlib.util
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from chat import events
from chat.client import overview, present, status, typed
from chat.client.model import ChatModel, Departed, Notice, SettingsChanged, State, Transfer
from chat.client.present import TERMINAL, WINDOW, Line, Presenter, Span

UTC = timezone.utc
T0 = datetime(2026, 5, 11, 9, 30, tzinfo=UTC)


def message(room: str, sender: str, text: str, minutes: int = 0, action: bool = False, id: int = 1) -> events.Message:
    return events.Message(id, T0 + timedelta(minutes=minutes), room, sender, text, action)


def presenter(voice: present.Voice = WINDOW, nick: str = "alice", zone: Any = UTC) -> Presenter:
    return Presenter(ChatModel(nick), voice, zone)


def texts(lines: list[Line]) -> list[tuple[str, str, str | None]]:
    return [(line.kind, line.text, line.room) for line in lines]


class ColourTests(SynchronousTestCase):
    """
    L{status.nick_colour}: one colour per nick, the same in every front end.
    """

    def test_nick_colour_is_stable_and_ignores_case(self) -> None:
        """
        A nick gets the same colour in any case, from CRC-32 (the same every run), among NICK_COLOURS.
        """
        self.assertEqual(status.nick_colour("Alice"), status.nick_colour("alice"))
        self.assertEqual(status.nick_colour("alice"), 663665735 % 30)
        self.assertEqual(status.NICK_COLOURS, 30)
        self.assertIn(status.nick_colour("bob"), range(status.NICK_COLOURS))

    def test_first_four_nicks_differ(self) -> None:
        """
        alice, bob, carol and dave, the nicks of every example, get four different colours.
        """
        self.assertEqual(len({status.nick_colour(n) for n in ("alice", "bob", "carol", "dave")}), 4)

    def test_nick_colours_spread(self) -> None:
        """
        Twelve common nicks use at least nine colours; twenty at least fourteen.
        """
        nicks = ["alice", "bob", "carol", "dave", "eve", "mallory", "trent", "peggy", "victor", "walter", "chen",
                 "dana"]
        self.assertGreaterEqual(len({status.nick_colour(n) for n in nicks}), 9)
        nicks += ["erin", "frank", "grace", "heidi", "ivan", "judy", "oscar", "sybil"]
        self.assertGreaterEqual(len({status.nick_colour(n) for n in nicks}), 14)


class WindowLineTests(SynchronousTestCase):
    """
    The lines in the window's voice (C{chat-tk}).
    """

    def test_message_line(self) -> None:
        """
        A room message is C{HH:MM  nick  text} in the local zone, the nick in its colour, in its room.
        """
        line = presenter().message(message("#dev", "bob", "hi all", minutes=5))
        self.assertEqual((line.kind, line.text, line.room), ("message", "09:35  bob  hi all", "#dev"))
        self.assertEqual(line.parts[0], Span("09:35", "time"))
        self.assertEqual(line.parts[2], Span("bob", "nick", status.nick_colour("bob")))
        self.assertEqual(line.parts[-1], Span("hi all", "body"))
        plus_two = timezone(timedelta(hours=2))
        self.assertTrue(presenter(zone=plus_two).message(message("#dev", "bob", "x")).text.startswith("11:30"))

    def test_mention_and_action_lines(self) -> None:
        """
        A message naming the user as a word is a mention; an action is C{* nick text}.
        """
        self.assertEqual(presenter().message(message("#a", "bob", "Alice: look")).kind, "mention")
        self.assertEqual(presenter().message(message("#a", "bob", "malice aforethought")).kind, "message")
        self.assertEqual(presenter().message(message("#a", "alice", "alice here")).kind, "message")
        action = presenter().message(message("#a", "bob", "waves", action=True))
        self.assertEqual((action.kind, action.text), ("action", "09:30  * bob waves"))
        self.assertEqual([span.style for span in action.parts], ["time", "text", "action", "nick", "action"])

    def test_private_lines(self) -> None:
        """
        A private message reads C{bob → you}; the user's own echo reads C{you → bob}; stored ones say so.
        """
        received = events.Private(3, T0, "bob", "alice", "psst", offline=True)
        sent = events.Private(4, T0, "alice", "bob", "yes?")
        self.assertEqual(presenter().private(received).text, "09:30  bob → you  psst  (sent while you were away)")
        self.assertEqual(presenter().private(sent).text, "09:30  you → bob  yes?")
        self.assertEqual(presenter().private(sent).kind, "private")
        self.assertIsNone(presenter().private(sent).room)
        acted = events.Private(5, T0, "bob", "alice", "waves", action=True)
        self.assertEqual(presenter().private(acted).text, "09:30  bob → you  * bob waves")

    def test_private_history_lines(self) -> None:
        """
        A private conversation's history (C{/history bob}) shows its messages
        between dividers in that conversation, or says there are none.
        """
        said = events.Private(3, T0, "bob", "alice", "psst")
        answered = events.Private(4, T0, "alice", "bob", "yes?")
        lines = presenter().lines(events.PrivateHistory("bob", (said, answered)), T0)
        self.assertEqual(
            [(line.kind, line.text, line.conversation) for line in lines],
            [
                ("history", "── earlier with bob ──", "bob"),
                ("private", "09:30  bob → you  psst", "bob"),
                ("private", "09:30  you → bob  yes?", "bob"),
                ("history", "── now ──", "bob"),
            ],
        )
        empty = presenter().lines(events.PrivateHistory("bob", ()), T0)
        self.assertEqual([line.text for line in empty], ["09:30  • No private messages with bob are kept"])

    def test_lines_of_changes(self) -> None:
        """
        History, joins, notices, errors and offers get their own kinds and texts.
        """
        def lines(change: Any) -> list[tuple[str, str, str | None]]:
            return texts(presenter().lines(change, T0))

        history = events.History("#dev", (message("#dev", "bob", "old", minutes=-60 * 24),
                                          message("#dev", "bob", "today", minutes=-60)))
        self.assertEqual(lines(history), [
            ("history", "── earlier in #dev ──", "#dev"),
            ("history", "10 May 09:30  bob  old", "#dev"),
            ("history", "08:30  bob  today", "#dev"),
            ("history", "── now ──", "#dev"),
        ])
        self.assertEqual(lines(events.History("#dev", ())), [])
        self.assertEqual(lines(events.Joined(T0, "#dev", "bob")), [("system", "09:30  → bob joined #dev", "#dev")])
        self.assertEqual(lines(events.Joined(T0, "#dev", "Alice")), [("system", "09:30  → You joined #dev", "#dev")])
        self.assertEqual(lines(events.Parted(T0, "#dev", "alice", "bye")),
                         [("system", "09:30  ← You left #dev (bye)", "#dev")])
        self.assertEqual(lines(events.Quit(T0, "bob", "goodbye")), [("system", "09:30  ← bob quit (goodbye)", None)])
        self.assertEqual(lines(Notice("Connecting…")), [("system", "09:30  • Connecting…", None)])
        self.assertEqual(lines(Notice("refused", "error")), [("error", "09:30  ! refused", None)])
        self.assertEqual(lines(events.Error("no-such-nick", "no such nick: zed")),
                         [("error", "09:30  ! no such nick: zed (no-such-nick)", None)])
        offer = events.FileOffer(9, "bob", "alice", "a b.pdf", 1536, "0" * 64, T0)
        self.assertEqual(lines(offer), [("offer", "09:30  ↓ bob offered a b.pdf (1.5 KiB) to you   Download", None)])
        [shown] = presenter().lines(offer, T0)
        self.assertEqual((shown.parts[-1], shown.offer), (Span("Download", "link"), 9))
        [mine] = presenter().lines(events.FileOffer(9, "alice", "#dev", "x", 1, "0" * 64, T0), T0)
        self.assertEqual(mine.text, "09:30  ↓ You offered x (1 B) to #dev")
        self.assertNotIn("link", [span.style for span in mine.parts])

    def test_lines_of_lists_and_greetings(self) -> None:
        """
        Who is in a room, the rooms, the welcome and the registration read as sentences, nicks in their colour.
        """
        def lines(change: Any) -> list[str]:
            return [line.text for line in presenter().lines(change, T0)]

        users = events.Users("#dev", (events.UserInfo("alice", "", 0), events.UserInfo("bob", "at lunch", 3)))
        self.assertEqual(lines(users), ["09:30  • #dev, 2 users: alice, bob (at lunch)"])
        self.assertEqual(lines(events.Users("#dev", ())), ["09:30  • #dev, 0 users: nobody"])
        [listed] = presenter().lines(users, T0)
        self.assertIn(Span("bob", "nick", status.nick_colour("bob")), listed.parts)
        rooms = events.Rooms((events.RoomInfo("#dev", "code", 2), events.RoomInfo("#lobby", "", 5)))
        self.assertEqual(lines(rooms), ["09:30  • Rooms:", "09:30      #dev (2) code", "09:30      #lobby (5)"])
        self.assertEqual(lines(events.Rooms(())), ["09:30  • No rooms"])
        welcome = events.Welcome("chat", "0.1.0", "hello\nbe kind", events.Limits(4096, 24, 1 << 20))
        self.assertEqual(lines(welcome), ["09:30  • Connected to chat 0.1.0", "09:30    hello", "09:30    be kind"])
        self.assertEqual(lines(events.Registered("alice", account=True)),
                         ["09:30  • You are alice, logged in. Type to talk, /help for commands."])
        self.assertEqual(lines(events.StatusChanged("bob", "")), ["09:30  • bob is back"])
        self.assertEqual(lines(events.Topic("#dev", "code", "")), ["09:30  • Topic of #dev: code"])
        self.assertEqual(lines(events.Pong("x")), ["09:30  • pong x"])
        self.assertEqual(lines(events.UploadDone(3, "0" * 64)), [])

    def test_spans_are_whole(self) -> None:
        """
        No line has an empty span, or two neighbours of the same look, and every style is a known one.
        """
        changes: list[Any] = [
            message("#a", "bob", "hi"), message("#a", "bob", "waves", action=True),
            events.Private(3, T0, "alice", "bob", "x", offline=True), events.Joined(T0, "#a", "bob"),
            events.Users("#a", (events.UserInfo("bob", "", 0),)), events.Registered("alice"),
            events.FileOffer(9, "bob", "alice", "f", 1, "0" * 64, T0), Notice("n"),
        ]
        for voice in (WINDOW, TERMINAL):
            for change in changes:
                for line in presenter(voice).lines(change, T0):
                    self.assertTrue(all(span.text for span in line.parts), line)
                    looks = [(span.style, span.nick_colour) for span in line.parts]
                    self.assertTrue(all(a != b for a, b in zip(looks, looks[1:], strict=False)), line)
                    self.assertLessEqual({span.style for span in line.parts}, present.STYLES)
                    self.assertIn(line.kind, present.KINDS)


class TerminalLineTests(SynchronousTestCase):
    """
    The lines in the terminal's voice (C{chat-client}), in the manner of IRC clients.
    """

    def test_conversation(self) -> None:
        """
        Messages read C{[HH:MM] <nick> text}, naming the room once several are joined; private ones C{*bob*}.
        """
        p = presenter(TERMINAL)
        self.assertEqual(p.message(message("#dev", "bob", "hi")).text, "[09:30] <bob> hi")
        p.model.apply(events.Joined(T0, "#dev", "alice"))
        p.model.apply(events.Joined(T0, "#lobby", "alice"))
        self.assertEqual(p.message(message("#dev", "bob", "hi")).text, "[09:30] #dev <bob> hi")
        self.assertEqual(p.message(message("#dev", "bob", "waves", action=True)).text, "[09:30] #dev * bob waves")
        received = events.Private(3, T0, "bob", "alice", "psst", offline=True)
        self.assertEqual(p.private(received).text, "[09:30] *bob* psst (sent while you were away)")
        sent = p.private(events.Private(4, T0, "alice", "bob", "yes?"))
        self.assertEqual(sent.text, "[09:30] -> *bob* yes?")
        self.assertEqual([span.style for span in sent.parts],
                         ["time", "text", "arrow", "text", "arrow", "nick", "arrow", "text", "private"])

    def test_what_happened(self) -> None:
        """
        Joins and parts have a time and name the user by nick; other lines are marked C{***} or C{!!!}.
        """
        def lines(change: Any) -> list[str]:
            return [line.text for line in presenter(TERMINAL).lines(change, T0)]

        self.assertEqual(lines(events.Joined(T0, "#dev", "alice")), ["[09:30] --> alice joined #dev"])
        self.assertEqual(lines(events.Parted(T0, "#dev", "bob")), ["[09:30] <-- bob left #dev"])
        self.assertEqual(lines(Notice("Trying again in 2 s.")), ["*** Trying again in 2 s."])
        self.assertEqual(lines(events.Error("no-such-nick", "no user named dave")),
                         ["!!! no user named dave (no-such-nick)"])
        self.assertEqual(lines(events.FileOffer(5, "bob", "alice", "notes.pdf", 300_000, "ab" * 32, T0)),
                         ["*** bob offers notes.pdf (293.0 KiB) to you: /get 5 to download it"])
        self.assertEqual(lines(events.Rooms((events.RoomInfo("#dev", "code", 2),))),
                         ["*** Rooms:", "***   #dev (2) code"])
        history = events.History("#dev", (message("#dev", "bob", "old", minutes=-60 * 24),))
        self.assertEqual(lines(history), ["--- earlier in #dev ---", "[10 May 09:30] #dev <bob> old", "--- now ---"])

    def test_same_words_in_both_voices(self) -> None:
        """
        Apart from the marks and the time, a line about what happened says the same in the terminal and the window.
        """
        changes: list[Any] = [
            events.NickChanged(T0, "bob", "robert"), events.StatusChanged("bob", "away"), events.Topic("#a", "t", "b"),
            events.Whois("bob", "", ("#a",), T0, 5, True, False), events.Registered("alice"), events.Info("a\nb"),
            events.Error("x", "bad"), events.Bye("later"), events.Quit(T0, "bob", "bye"),
            events.Joined(T0, "#a", "bob"), Notice("hello"), events.Users("#a", (events.UserInfo("bob", "", 0),)),
        ]
        for change in changes:
            window = [line.text.split(" ", 3)[-1] for line in presenter(WINDOW).lines(change, T0)]
            terminal = [line.text.split(" ", 1)[-1] for line in presenter(TERMINAL).lines(change, T0)]
            terminal = [text.split(" ", 1)[-1] if text.startswith(("-->", "<--")) else text for text in terminal]
            self.assertEqual(window, terminal, change)


class TextTests(SynchronousTestCase):
    """
    The small texts: sizes, transfers, the status bar, the lists' rows.
    """

    def test_size_text(self) -> None:
        """
        Bytes read in B, KiB, MiB or GiB, with one decimal above bytes.
        """
        self.assertEqual([status.size_text(n) for n in (0, 512, 1536, 50 << 20, 3 << 40)],
                         ["0 B", "512 B", "1.5 KiB", "50.0 MiB", "3072.0 GiB"])

    def test_transfer_texts(self) -> None:
        """
        A transfer reads C{↑ NAME → TARGET} (C{to} in a terminal), then its percentage and sizes, then Done or Failed.
        """
        upload = Transfer(1, "upload", "a.pdf", "#dev", size=2 << 20, done=3 << 19)
        self.assertEqual(present.transfer_title(upload, WINDOW), "↑ a.pdf → #dev")
        self.assertEqual(present.transfer_title(upload, TERMINAL), "↑ a.pdf to #dev")
        self.assertEqual(present.transfer_title(upload, WINDOW, "a…"), "↑ a… → #dev")
        self.assertEqual(present.transfer_detail(upload), "75% · 1.5 MiB of 2.0 MiB")
        self.assertEqual(present.transfer_bar(upload, 8), "[######..]  75% 1.5 MiB of 2.0 MiB")
        download = Transfer(2, "download", "b.txt", "bob", size=10, done=10, finished=True)
        self.assertEqual((present.transfer_title(download, WINDOW), present.transfer_detail(download)),
                         ("↓ b.txt ← bob", "Done · 10 B"))
        self.assertEqual(present.transfer_title(download, TERMINAL), "↓ b.txt from bob")
        self.assertEqual(present.transfer_bar(download, 4), "[####] 100% 10 B")
        failed = Transfer(3, "download", "c", "bob", finished=True, error="no space left")
        self.assertEqual(present.transfer_detail(failed), "Failed: no space left")

    def test_status_text(self) -> None:
        """
        The status bar tells state, server, nick, TLS and, once online, the RTT in milliseconds.
        """
        model = ChatModel("alice")
        self.assertEqual(status.status_text(model, "h:1"), "Disconnected · h:1 · alice · not encrypted")
        self.assertEqual(status.state_level(model.state), "error")
        model.set_state(State.ONLINE)
        model.set_secure(True)
        self.assertEqual(status.status_text(model, "h:1"), "Online · h:1 · alice · TLS · RTT –")
        model.set_rtt(0.0234)
        self.assertEqual(status.status_text(model, "h:1"), "Online · h:1 · alice · TLS · RTT 23 ms")
        self.assertEqual(status.rtt_text(0.0002), "RTT <1 ms")
        self.assertEqual([status.state_level(s) for s in (State.ONLINE, State.CONNECTING, State.CONNECTED)],
                         ["ok", "warn", "warn"])
        self.assertEqual(status.window_title(model, "h:1"), "alice — chat on h:1")

    def test_room_rows_with_unread_counts(self) -> None:
        """
        The rooms are listed by name with their unread counts; the current one and those with unread are marked.
        """
        model = ChatModel("alice")
        self.assertEqual(status.topic_text(model), "Not in a room: Join… on the left")
        for room in ("#lobby", "#dev", "#art"):
            model.apply(events.Joined(T0, room, "alice"))
        model.apply(message("#dev", "bob", "one", id=1))
        model.apply(message("#dev", "bob", "two", id=2))
        self.assertEqual(status.room_rows(model), [
            status.RoomRow("#art", "#art", "", True),
            status.RoomRow("#dev", "#dev", "2", True),
            status.RoomRow("#lobby", "#lobby", "", False),
        ])
        self.assertEqual(status.topic_text(model), "No topic")
        model.apply(events.Topic("#art", "paint", "bob"))
        self.assertEqual(status.topic_text(model), "paint")

    def test_people_rows(self) -> None:
        """
        The people of the current room are listed by nick ignoring case, with statuses and colours; the user is marked.
        """
        model = ChatModel("alice")
        self.assertEqual((status.people_rows(model), status.people_heading(model)), ([], "PEOPLE"))
        model.apply(events.Joined(T0, "#dev", "alice"))
        model.apply(events.Users("#dev", (events.UserInfo("Carol", "", 0), events.UserInfo("alice", "", 0),
                                          events.UserInfo("bob", "at lunch", 0))))
        self.assertEqual(status.people_rows(model), [
            status.PersonRow("alice", "alice", "", status.nick_colour("alice"), True),
            status.PersonRow("bob", "bob", "at lunch", status.nick_colour("bob"), False),
            status.PersonRow("carol", "Carol", "", status.nick_colour("carol"), False),
        ])
        self.assertEqual(status.people_heading(model), "PEOPLE · 3 ONLINE")

    def test_people_rows_put_operators_first(self) -> None:
        """
        Operators of the current room come first in the people list and are marked as operators.
        """
        model = ChatModel("alice")
        model.apply(events.Joined(T0, "#dev", "alice"))
        model.apply(events.Users("#dev", (events.UserInfo("alice", "", 0), events.UserInfo("zed", "", 0, "operator"),
                                          events.UserInfo("bob", "", 0))))
        self.assertEqual([(row.nick, row.operator) for row in status.people_rows(model)],
                         [("zed", True), ("alice", False), ("bob", False)])

    def test_offer_detail_and_paths(self) -> None:
        """
        An offer's card names the sender, the target unless it is the user, and the size; home reads C{~}.
        """
        to_me = events.FileOffer(1, "bob", "Alice", "a", 2048, "0" * 64, T0)
        to_room = events.FileOffer(2, "bob", "#dev", "a", 10, "0" * 64, T0)
        self.assertEqual(status.offer_detail(to_me, "alice"), "bob · 2.0 KiB")
        self.assertEqual(status.offer_detail(to_room, "alice"), "bob → #dev · 10 B")
        self.assertEqual(status.short_path(Path.home() / "Downloads" / "chat"), "~/Downloads/chat")
        self.assertEqual(status.short_path(Path("/srv/inbox")), "/srv/inbox")


class ModerationLineTests(SynchronousTestCase):
    """
    Kicks, role changes and room settings (PROTOCOL.md section 10) read as sentences.
    """

    def test_kick_lines(self) -> None:
        """
        A kick names who, where, by whom and why; the user's own kick says "You" and belongs to no room.
        """
        for voice in (WINDOW, TERMINAL):
            shown = presenter(voice).lines(events.Kicked(T0, "#dev", "bob", "alice", "spam"), T0)
            self.assertEqual([(line.room, line.text.endswith("bob was kicked from #dev by alice (spam)"))
                              for line in shown], [("#dev", True)])
            [mine] = presenter(voice).lines(events.Kicked(T0, "#dev", "Alice", "carol", "spam"), T0)
            self.assertIsNone(mine.room)
            self.assertIn("You were kicked from #dev by carol (spam)", mine.text)
        self.assertEqual(texts(presenter().lines(events.Kicked(T0, "#dev", "bob", "carol"), T0)),
                         [("system", "09:30  ← bob was kicked from #dev by carol", "#dev")])

    def test_role_lines(self) -> None:
        """
        Role changes say who made whom an operator, or who no longer is one.
        """
        def lines(change: events.RoleChanged, voice: present.Voice = WINDOW) -> list[str]:
            return [line.text for line in presenter(voice).lines(change, T0)]

        self.assertEqual(lines(events.RoleChanged("#dev", "bob", "operator", "alice"), TERMINAL),
                         ["*** alice made bob an operator of #dev"])
        self.assertEqual(lines(events.RoleChanged("#dev", "bob", "operator", "carol")),
                         ["09:30  • carol made bob an operator of #dev"])
        self.assertEqual(lines(events.RoleChanged("#dev", "alice", "operator", "")),
                         ["09:30  • You are now an operator of #dev"])
        self.assertEqual(lines(events.RoleChanged("#dev", "bob", "member", "alice"), TERMINAL),
                         ["*** bob is no longer an operator of #dev (by alice)"])
        self.assertEqual(lines(events.RoleChanged("#dev", "bob", "member", "")),
                         ["09:30  • bob is no longer an operator of #dev"])
        [line] = presenter().lines(events.RoleChanged("#dev", "bob", "member", ""), T0)
        self.assertEqual(line.room, "#dev")

    def test_settings_lines(self) -> None:
        """
        Room settings say what changed ("now" or "no longer"), from all off when nothing was known before.
        """
        def lines(now: events.RoomSettings, before: events.RoomSettings | None) -> list[str]:
            return [line.text for line in presenter(TERMINAL).lines(SettingsChanged(now, before), T0)]

        off = events.RoomSettings("#dev")
        self.assertEqual(lines(events.RoomSettings("#dev", invite_only=True), off), ["*** #dev is now invite-only"])
        self.assertEqual(lines(events.RoomSettings("#dev", moderated=True, topic_lock=True), off),
                         ["*** #dev is now topic-locked", "*** #dev is now moderated"])
        self.assertEqual(lines(off, events.RoomSettings("#dev", moderated=True)), ["*** #dev is no longer moderated"])
        self.assertEqual(lines(off, off), [])
        self.assertEqual(lines(off, None), ["*** #dev is no longer invite-only, topic-locked or moderated"])
        self.assertEqual(lines(events.RoomSettings("#dev", invite_only=True, moderated=True), None),
                         ["*** #dev is now invite-only", "*** #dev is now moderated"])

    def test_users_list_marks_operators(self) -> None:
        """
        The /list line puts an @ before each operator.
        """
        users = events.Users("#dev", (events.UserInfo("alice", "", 0, "operator"), events.UserInfo("bob", "", 0)))
        [line] = presenter(TERMINAL).lines(users, T0)
        self.assertEqual(line.text, "*** #dev, 2 users: @alice, bob")


class DepartedTests(SynchronousTestCase):
    """
    A quit is shown only where the person shared something with the user.
    """

    def test_quit_only_where_shared(self) -> None:
        """
        The window shows a quit in each room shared and in the private
        conversation; the terminal one line; nobody shows the quit of a
        stranger.
        """
        quit = events.Quit(T0, "bob", "bye")
        shared = Departed(quit, ("#lobby", "#dev"), True)
        window = presenter(WINDOW).lines(shared, T0)
        self.assertEqual([(line.text, line.room, line.conversation) for line in window], [
            ("09:30  ← bob quit (bye)", "#lobby", None),
            ("09:30  ← bob quit (bye)", "#dev", None),
            ("09:30  ← bob quit (bye)", None, "bob"),
        ])
        self.assertEqual(texts(presenter(TERMINAL).lines(shared, T0)), [("system", "[09:30] <-- bob quit (bye)", None)])
        for voice in (WINDOW, TERMINAL):
            self.assertEqual(presenter(voice).lines(Departed(quit, (), False), T0), [])

    def test_private_lines_name_their_conversation(self) -> None:
        """
        A private message belongs to the conversation with the other person, sent or received.
        """
        mine = presenter().private(events.Private(1, T0, "alice", "Bob", "hi"))
        theirs = presenter().private(events.Private(2, T0, "Bob", "alice", "hello"))
        self.assertEqual((mine.conversation, theirs.conversation), ("Bob", "Bob"))


class PeopleCountTests(SynchronousTestCase):
    """
    L{overview.people_count}: the current room's people beside the server's.
    """

    def test_room_and_server(self) -> None:
        """
        The count shows the room's people, and beside them how many are on the
        server at least: the distinct people of the rooms joined, or the
        largest room of the last /rooms.
        """
        model = ChatModel("alice")
        self.assertEqual(overview.people_count(model), "0+ online")
        model.apply(events.Registered("alice"))
        for room, nicks in (("#lobby", ("alice", "bob", "carol")), ("#dev", ("alice", "Bob"))):
            model.apply(events.Joined(T0, room, "alice"))
            model.apply(events.Users(room, tuple(events.UserInfo(n, "", 0) for n in nicks)))
        self.assertEqual(overview.people_count(model), "2 here · 3+ online")
        model.apply(events.Rooms((events.RoomInfo("#dev", "", 2), events.RoomInfo("#lobby", "", 9))))
        self.assertEqual(overview.people_count(model), "2 here · 9+ online")
        model.make_current("#lobby")
        model.apply(events.Rooms((events.RoomInfo("#lobby", "", 3),)))
        self.assertEqual(overview.people_count(model), "3 here")


class SecretTests(SynchronousTestCase):
    """
    L{typed.secret_input} and L{typed.masked}: lines that carry passwords.
    """

    def test_secret_lines(self) -> None:
        """
        /login NICK PW, /register PW and /password OLD NEW carry passwords, in
        any case; other lines, and a //-escaped one, do not.
        """
        for line in ["/login bob pw", "/LOGIN  bob pw --no-join", "/register pw", "/password old new",
                     "/password old", " /login bob pw"]:
            self.assertTrue(typed.secret_input(line), line)
        for line in ["/login bob", "/login", "//login bob pw", "login bob pw", "/loginx bob pw", "/msg bob pw", ""]:
            self.assertFalse(typed.secret_input(line), line)

    def test_masked(self) -> None:
        """
        The passwords are masked, the rest of the line and its spacing kept; other lines are unchanged.
        """
        self.assertEqual(typed.masked("/login bob s3cret --no-join"), "/login bob ******** --no-join")
        self.assertEqual(typed.masked("/register  s3cret"), "/register  ********")
        self.assertEqual(typed.masked("/password old new"), "/password ******** ********")
        self.assertEqual(typed.masked("/msg bob s3cret"), "/msg bob s3cret")


def styled(spans: tuple[Span, ...]) -> list[tuple[str, str]]:
    return [(span.text, span.style) for span in spans]


class FormattedTests(SynchronousTestCase):
    """
    L{present.formatted}: the light formatting people type, shown as such.
    """

    def test_markers_become_styles(self) -> None:
        """
        *bold*, _italic_ and `code` lose their markers and take their styles; the rest keeps the given style.
        """
        self.assertEqual(styled(present.formatted("a *b* _i_ `c` z", "body")), [
            ("a ", "body"), ("b", "bold"), (" ", "body"), ("i", "italic"), (" ", "body"), ("c", "code"),
            (" z", "body"),
        ])
        self.assertEqual(styled(present.formatted("*all bold words*", "action")), [("all bold words", "bold")])

    def test_urls(self) -> None:
        """
        An http(s) address is a url span of the address alone, without the sentence's punctuation around it.
        """
        self.assertEqual(styled(present.formatted("see https://example.org/a_b_c?x=1.", "body")), [
            ("see ", "body"), ("https://example.org/a_b_c?x=1", "url"), (".", "body"),
        ])
        self.assertEqual(styled(present.formatted("(at http://en.wikipedia.org/wiki/Tk_(toolkit))", "private")), [
            ("(at ", "private"), ("http://en.wikipedia.org/wiki/Tk_(toolkit)", "url"), (")", "private"),
        ])
        self.assertEqual(styled(present.formatted("http:// and ftp://x", "body")), [("http:// and ftp://x", "body")])

    def test_text_that_is_not_formatting_stays(self) -> None:
        """
        Markers inside words, lone ones, spaced ones, and anything inside code stay as typed.
        """
        for text in ("snake_case_name", "2*3*4", "a * b * c", "_ x _", "it's *", "`", "``", "file_name_.txt"):
            self.assertEqual(styled(present.formatted(text, "body")), [(text, "body")], text)
        self.assertEqual(styled(present.formatted("`*not bold* _x_`", "body")), [("*not bold* _x_", "code")])

    def test_empty_text(self) -> None:
        """
        Empty text has no span.
        """
        self.assertEqual(present.formatted("", "body"), ())

    def test_message_action_and_private_lines_are_formatted(self) -> None:
        """
        Room messages, actions and private messages show formatting; the line's sender is set.
        """
        line = presenter().message(message("#a", "bob", "*yes* see http://x.org"))
        self.assertEqual(styled(line.parts[-3:]), [("yes", "bold"), (" see ", "body"), ("http://x.org", "url")])
        self.assertEqual(line.sender, "bob")
        action = presenter().message(message("#a", "bob", "waves _slowly_", action=True))
        self.assertEqual(styled(action.parts[-2:]), [(" waves ", "action"), ("slowly", "italic")])
        private = presenter(TERMINAL).private(events.Private(3, T0, "bob", "alice", "run `ls`"))
        self.assertEqual(styled(private.parts[-2:]), [("run ", "private"), ("ls", "code")])
        self.assertEqual(private.text, "[09:30] *bob* run ls")
        self.assertEqual(private.sender, "bob")


class NotifiesTests(SynchronousTestCase):
    """
    L{overview.notifies}: which lines alert the user.
    """

    def setUp(self) -> None:
        self.presenter = presenter()
        self.model = self.presenter.model

    def test_mentions_and_private_messages_alert(self) -> None:
        """
        A mention, an action naming the user and a private message from someone else alert; other lines do not.
        """
        p, model = self.presenter, self.model
        self.assertTrue(overview.notifies(p.message(message("#a", "bob", "alice: hi")), model))
        self.assertTrue(overview.notifies(p.message(message("#a", "bob", "hugs Alice", action=True)), model))
        self.assertTrue(overview.notifies(p.private(events.Private(1, T0, "bob", "alice", "psst")), model))
        self.assertFalse(overview.notifies(p.message(message("#a", "bob", "hi all")), model))
        self.assertFalse(overview.notifies(p.message(message("#a", "bob", "waves", action=True)), model))
        self.assertFalse(overview.notifies(p.private(events.Private(1, T0, "alice", "bob", "alice here")), model))
        self.assertFalse(overview.notifies(p.info(["alice"], T0), model))

    def test_own_and_history_lines_do_not_alert(self) -> None:
        """
        The user's own lines naming themselves, and history naming them, never alert.
        """
        p, model = self.presenter, self.model
        self.assertFalse(overview.notifies(p.message(message("#a", "Alice", "alice again")), model))
        self.assertFalse(overview.notifies(p.message(message("#a", "bob", "alice!"), history=True), model))
        self.assertFalse(overview.notifies(p.message(message("#a", "ALICE", "me, alice", action=True)), model))

    def test_muted_room_does_not_alert(self) -> None:
        """
        A mention in a muted room does not alert; private messages still do; unmuting restores it.
        """
        p, model = self.presenter, self.model
        model.mute("#A")
        self.assertFalse(overview.notifies(p.message(message("#a", "bob", "alice: hi")), model))
        self.assertTrue(overview.notifies(p.private(events.Private(1, T0, "bob", "alice", "psst")), model))
        self.assertTrue(overview.notifies(p.message(message("#b", "bob", "alice: hi")), model))
        model.unmute("#a")
        self.assertTrue(overview.notifies(p.message(message("#a", "bob", "alice: hi")), model))


class UnreadTests(SynchronousTestCase):
    """
    The "new since you last looked" divider, and the conversations listed beside the rooms.
    """

    def test_unread_mark_becomes_a_divider_before_the_message(self) -> None:
        """
        Coming back to a room, the lines show the divider just before the first message that arrived while away.
        """
        p = presenter()
        model = p.model
        shown: list[Line] = []
        model.observe(lambda change: shown.extend(p.lines(change, T0)))
        model.apply(events.Registered("alice"))
        model.apply(events.Joined(T0, "#a", "alice"))
        model.look("#a")
        model.apply(message("#a", "bob", "seen", id=1))
        model.look("bob")
        model.apply(message("#a", "bob", "unseen", id=2))
        model.apply(events.Private(3, T0, "bob", "alice", "psst"))
        model.look("#a")
        model.apply(message("#a", "bob", "live", id=4))
        self.assertEqual([(line.kind, line.text, line.room, line.conversation) for line in shown[-5:]], [
            ("message", "09:30  bob  seen", "#a", None),
            ("unread", "── new since you last looked ──", "#a", None),
            ("message", "09:30  bob  unseen", "#a", None),
            ("private", "09:30  bob → you  psst", None, "bob"),
            ("message", "09:30  bob  live", "#a", None),
        ])
        self.assertEqual(shown[-4].parts, (Span("── new since you last looked ──", "divider"),))

    def test_unread_divider_function(self) -> None:
        """
        unread_divider makes the divider of a room or of a conversation in a voice's words.
        """
        line = present.unread_divider(TERMINAL, conversation="bob")
        self.assertEqual((line.kind, line.text, line.room, line.conversation),
                         ("unread", "--- new since you last looked ---", None, "bob"))
        self.assertIn(line.kind, present.KINDS)

    def test_conversation_rows(self) -> None:
        """
        Conversations are listed by nick ignoring case, with unread counts, marked when unread or looked at.
        """
        model = ChatModel("alice")
        model.apply(events.Registered("alice"))
        model.look("#lobby")
        model.apply(events.Private(1, T0, "zed", "alice", "one"))
        model.apply(events.Private(2, T0, "zed", "alice", "two"))
        model.apply(events.Private(3, T0, "alice", "Bob", "hi"))
        model.apply(events.Private(4, T0, "carol", "alice", "x"))
        model.look("carol")
        self.assertEqual(overview.conversation_rows(model), [
            status.RoomRow("bob", "Bob", "", False),
            status.RoomRow("carol", "carol", "", True),
            status.RoomRow("zed", "zed", "2", True),
        ])


def imports(package: str) -> set[str]:
    """
    The modules the source of C{package} (a module, or every module of a
    package) imports, by absolute name; C{from a import b} counts as
    C{a} and C{a.b}.
    """
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None, package
    if spec.submodule_search_locations:
        files = {path: package if path.stem == "__init__" else f"{package}.{path.stem}"
                 for location in spec.submodule_search_locations for path in Path(location).glob("*.py")}
    else:
        files = {Path(spec.origin): package}
    found: set[str] = set()
    for path, name in files.items():
        here = name if path.stem == "__init__" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here.split(".")[:len(here.split(".")) - node.level + 1]) if node.level else ""
                module = ".".join(part for part in (base, node.module or "") if part)
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


class LayeringTests(SynchronousTestCase):
    """
    The front ends share the presenter, and neither imports the other.
    """

    def assert_no_import(self, package: str, *forbidden: str) -> None:
        found = imports(package)
        self.assertTrue(found, f"no imports found in {package}")
        bad = {name for name in found if any(name == f or name.startswith(f + ".") for f in forbidden)}
        self.assertEqual(bad, set(), f"{package} imports {sorted(bad)}")

    def test_front_ends_do_not_import_each_other(self) -> None:
        """
        No module of chat.client.stdio imports chat.client.tk, and no module of chat.client.tk imports stdio.
        """
        self.assert_no_import("chat.client.stdio", "chat.client.tk", "tkinter")
        self.assert_no_import("chat.client.tk", "chat.client.stdio")
        self.assertIn("chat.client.present", imports("chat.client.stdio"))
        self.assertIn("chat.client.present", imports("chat.client.tk"))

    def test_presenter_draws_nothing(self) -> None:
        """
        The presenter imports no front end and no toolkit, and writes no terminal escape.
        """
        self.assert_no_import("chat.client.present", "chat.client.stdio", "chat.client.tk", "tkinter", "twisted")
        spec = importlib.util.find_spec("chat.client.present")
        assert spec is not None and spec.origin is not None
        self.assertNotIn("\\x1b", Path(spec.origin).read_text("utf-8"))

    def test_imports_of_every_module_are_found(self) -> None:
        """
        The import finder reads every module of a package, not only its C{__init__}, and names what is imported.
        """
        found = imports("chat.client.tk")
        self.assertIn("chat.client.tk.theme.fit", found)  # only in submodules
        self.assertIn("chat.client.present.WINDOW", found)
        self.assertIn("tkinter", found)

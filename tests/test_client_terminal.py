"""
Tests of L{chat.client.terminal}: the line editor of C{chat-client} run by
insults' L{ServerProtocol} over a L{StringTransport}, its output replayed
into insults' in-memory terminal (L{TerminalBuffer}) to see the screen, and
of L{chat.client.stdio.TerminalFrontend} over the same.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

from twisted.conch.insults import helper, insults
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from chat import events
from chat.client.model import ChatModel, State
from chat.client.service import ChatClient
from chat.client.settings import data_dir
from chat.client.status import nick_colour
from chat.client.stdio import BELL, NICK_ANSI, StdioFrontend, TerminalFrontend
from chat.client.stdio import Screen as StdioScreen
from chat.client.terminal import (
    HISTORY_SIZE,
    Completions,
    History,
    LineEditor,
    clusters,
    columns,
    complete,
    history_path,
    is_secret,
    masked,
)

LEFT = b"\x1b[D"
RIGHT = b"\x1b[C"
UP = b"\x1b[A"
DOWN = b"\x1b[B"
HOME = b"\x1b[H"
END = b"\x1b[F"
DELETE = b"\x1b[3~"
BACKSPACE = b"\x7f"


WIDE = {"😀": "@@", "❤": "<", "\ufe0f": "", "👍": "++", "🏽": "~~", "🇫": "F", "🇷": "R", "☕": "cc", "\u0301": ""}
"""How a terminal (xterm, VTE, tmux: C{wcwidth}) draws some characters, in
ASCII of the same width: emoji and skin tones take two columns, the heart
and regional indicators one, U+FE0F and accents none. Insults' terminal
knows only ASCII."""


class Screen:
    """
    What a terminal of 80 by 24 shows of the bytes written to C{transport}
    (each of L{WIDE} drawn as its ASCII stand-in, in as many columns).
    """

    def __init__(self, transport: StringTransport) -> None:
        self.transport = transport
        self.buffer = helper.TerminalBuffer()
        self.client = insults.ClientProtocol(lambda: self.buffer)
        self.client.makeConnection(StringTransport())

    def rows(self) -> list[str]:
        """
        The rows shown, without trailing blanks, blank rows at the end dropped.
        """
        text = self.transport.value().decode("utf-8")
        for cluster, drawn in WIDE.items():
            text = text.replace(cluster, drawn)
        self.client.dataReceived(text.encode("ascii"))
        self.transport.clear()
        rows = bytes(self.buffer).decode("ascii").split("\n")
        while rows and not rows[-1].strip():
            rows.pop()
        return [row.rstrip() for row in rows]

    def cursor(self) -> tuple[int, int]:
        """
        The cursor's C{(column, row)}.
        """
        self.rows()
        return (self.buffer.x, self.buffer.y)


class EditorTestCase(SynchronousTestCase):
    """
    A L{LineEditor} on a terminal: C{self.editor}, C{self.screen}, what was submitted.
    """

    def temporary(self) -> Path:
        """
        A path in a folder of its own, removed after the test.
        """
        folder = tempfile.mkdtemp(prefix="chat-terminal-")
        self.addCleanup(shutil.rmtree, folder)
        return Path(folder) / "history"

    def build(self, history: History | None = None, completions: Completions | None = None,
              width: int = 80) -> None:
        self.submitted: list[str] = []
        self.quits = 0
        self.transport = StringTransport()

        def quit() -> None:
            self.quits += 1

        self.editor = LineEditor(
            self.submitted.append, quit=quit, prompt=lambda: "#lobby> ",
            completions=lambda: completions or Completions(), history=history, size=lambda: (width, 24),
        )
        self.server = insults.ServerProtocol(lambda: self.editor)
        self.server.makeConnection(self.transport)
        self.screen = Screen(self.transport)

    def type(self, data: bytes) -> None:
        self.server.dataReceived(data)


class LineEditorTests(EditorTestCase):
    """
    Typing, editing, submitting, and output above the prompt.
    """

    def setUp(self) -> None:
        self.build()

    def test_prompt(self) -> None:
        """
        The prompt is drawn on connection, with the cursor after it.
        """
        self.assertEqual(self.screen.rows(), ["#lobby>"])
        self.assertEqual(self.screen.cursor(), (8, 0))

    def test_submit_erases_line(self) -> None:
        """
        Enter hands the typed line over and leaves an empty prompt: the line
        typed is not left on the screen (the daemon's echo shows it once).
        """
        self.type(b"hello bob")
        self.assertEqual(self.screen.rows(), ["#lobby> hello bob"])
        self.type(b"\r")
        self.assertEqual(self.submitted, ["hello bob"])
        self.assertEqual(self.screen.rows(), ["#lobby>"])

    def test_output_above_prompt(self) -> None:
        """
        Lines shown while a line is being typed go above the prompt, and the
        line being typed stays whole on the bottom row, the cursor where it was.
        """
        self.type(b"half a sent" + LEFT * 4)
        self.editor.show("[12:00] <bob> ping\n[12:00] <carol> pong\n")
        self.assertEqual(
            self.screen.rows(), ["[12:00] <bob> ping", "[12:00] <carol> pong", "#lobby> half a sent"]
        )
        self.assertEqual(self.screen.cursor(), (len("#lobby> half a "), 2))
        self.type(b"\r")
        self.assertEqual(self.submitted, ["half a sent"])

    def test_cursor_keys(self) -> None:
        """
        Left, Right, Home and End move the cursor; characters are inserted
        at it; Backspace deletes left of it and Delete under it.
        """
        self.type(b"wrld" + LEFT * 3 + b"o" + HOME + b"hello " + END + b"!")
        self.assertEqual(self.screen.rows(), ["#lobby> hello world!"])
        self.type(HOME + DELETE + b"j" + RIGHT * 4 + BACKSPACE + b"y")
        self.assertEqual(self.screen.rows(), ["#lobby> jelly world!"])
        self.assertEqual(self.screen.cursor(), (len("#lobby> jelly"), 0))
        self.type(b"\x01x\x05y")  # Ctrl-A, Ctrl-E
        self.type(b"\r")
        self.assertEqual(self.submitted, ["xjelly world!y"])

    def test_erase_line_and_word(self) -> None:
        """
        Ctrl-W erases the word left of the cursor, Ctrl-U the whole line.
        """
        self.type(b"one two  \x17")
        self.assertEqual(self.screen.rows(), ["#lobby> one"])
        self.type(b"\x15")
        self.assertEqual(self.screen.rows(), ["#lobby>"])

    def test_utf8(self) -> None:
        """
        UTF-8 typed byte by byte is one character of the line.
        """
        for byte in "café ☕".encode():
            self.type(bytes([byte]))
        self.type(BACKSPACE + BACKSPACE + b"!\r")
        self.assertEqual(self.submitted, ["café!"])

    def test_long_line_scrolls(self) -> None:
        """
        A line longer than the terminal is wide scrolls sideways, keeping the
        prompt on one row with the cursor on it.
        """
        self.build(width=30)
        self.type(b"x" * 50 + b"END")
        rows = self.screen.rows()
        self.assertEqual(len(rows), 1)
        self.assertTrue(rows[0].startswith("#lobby> x"))
        self.assertTrue(rows[0].endswith("xEND"))
        self.assertLess(self.screen.cursor()[0], 30)
        self.type(HOME)
        self.assertEqual(self.screen.cursor(), (8, 0))
        self.type(b"\r")
        self.assertEqual(self.submitted, ["x" * 50 + "END"])

    def test_status_row(self) -> None:
        """
        A status (a progress bar) has a row above the prompt; output goes
        above both, and clearing the status removes its row.
        """
        self.type(b"typing")
        self.editor.set_status("report.pdf [###   ] 50%")
        self.editor.show("[12:00] <bob> hi\n")
        self.assertEqual(self.screen.rows(), ["[12:00] <bob> hi", "report.pdf [###   ] 50%", "#lobby> typing"])
        self.editor.set_status("")
        self.assertEqual(self.screen.rows(), ["[12:00] <bob> hi", "#lobby> typing"])

    def test_quit_keys(self) -> None:
        """
        Ctrl-C quits; Ctrl-D quits on an empty line only, else deletes.
        """
        self.type(b"ab" + LEFT + b"\x04")
        self.assertEqual(self.quits, 0)
        self.assertEqual(self.screen.rows(), ["#lobby> a"])
        self.type(b"\x15\x04")
        self.assertEqual(self.quits, 1)
        self.type(b"\x03")
        self.assertEqual(self.quits, 2)

    def test_leave(self) -> None:
        """
        After L{LineEditor.leave} the prompt row is gone, and output is
        written without it.
        """
        self.type(b"draft")
        self.editor.leave()
        self.editor.show("Disconnected.\n")
        self.type(b"more")
        self.assertEqual(self.screen.rows(), ["Disconnected."])

    def test_no_insert_mode(self) -> None:
        """
        The editor leaves the terminal's modes alone (insert mode would
        outlive the program).
        """
        self.assertFalse(self.screen.buffer.modes.get(insults.modes.IRM))


class PasswordTests(EditorTestCase):
    """
    Passwords typed at C{/login}, C{/register} and C{/password}.
    """

    def setUp(self) -> None:
        self.build()

    def test_masked_while_typed(self) -> None:
        """
        The password words are shown as C{*} as they are typed; the line
        submitted carries them.
        """
        self.type(b"/login alice hunter22")
        self.assertEqual(self.screen.rows(), ["#lobby> /login alice ********"])
        self.type(b"\r/register s3cretpass")
        self.assertEqual(self.screen.rows(), ["#lobby> /register **********"])
        self.type(b"\r/PASSWORD old1234567 new1234567\r")
        self.assertEqual(
            self.submitted,
            ["/login alice hunter22", "/register s3cretpass", "/PASSWORD old1234567 new1234567"],
        )
        self.assertNotIn(b"hunter22", self.transport.value())

    def test_not_in_history(self) -> None:
        """
        Lines with passwords are not recalled with Up, nor saved.
        """
        path = self.temporary()
        self.build(history=History(path))
        self.type(b"hello\r/login alice hunter22\r/register pw12345678\r" + UP)
        self.assertEqual(self.screen.rows(), ["#lobby> hello"])
        self.assertEqual(path.read_text("utf-8"), "hello\n")

    def test_masked(self) -> None:
        """
        L{masked} hides the secret words only, in lines of those commands only.
        """
        self.assertEqual(masked("/login bob pw --no-join"), "/login bob ** *********")
        self.assertEqual(masked("/login bob"), "/login bob")
        self.assertEqual(masked("/password a bb"), "/password * **")
        self.assertEqual(masked("/msg bob /login x y"), "/msg bob /login x y")
        self.assertEqual(masked("//register x"), "//register x")
        self.assertEqual(masked("  /Register x"), "  /Register *")
        self.assertTrue(is_secret("/login bob h"))
        self.assertFalse(is_secret("/registered"))
        self.assertFalse(is_secret("hello"))

    def test_no_completion_of_secrets(self) -> None:
        """
        Tab in a password does not complete it (nor list nicks on screen).
        """
        self.build(completions=Completions(nicks=["hunter2x"]))
        self.type(b"/login bob hun\t")
        self.assertEqual(self.screen.rows(), ["#lobby> /login bob ***"])


class HistoryTests(EditorTestCase):
    """
    Input history: Up and Down, kept in a file.
    """

    def test_up_down(self) -> None:
        """
        Up recalls earlier lines, Down later ones and then the line that
        was being typed.
        """
        self.build()
        self.type(b"one\rtwo\rdraft" + UP)
        self.assertEqual(self.screen.rows(), ["#lobby> two"])
        self.type(UP + UP)
        self.assertEqual(self.screen.rows(), ["#lobby> one"])
        self.type(DOWN)
        self.assertEqual(self.screen.rows(), ["#lobby> two"])
        self.type(DOWN)
        self.assertEqual(self.screen.rows(), ["#lobby> draft"])
        self.type(UP + b"!\r")
        self.assertEqual(self.submitted, ["one", "two", "two!"])

    def test_kept_across_runs(self) -> None:
        """
        The lines of one run are recalled in the next, from the file.
        """
        path = self.temporary() / "chat" / "stdio-history"
        self.build(history=History(path))
        self.type(b"first run\r")
        self.build(history=History(path))
        self.type(UP)
        self.assertEqual(self.screen.rows(), ["#lobby> first run"])

    def test_bounded(self) -> None:
        """
        At most L{HISTORY_SIZE} lines are kept; repeats in a row once.
        """
        history = History(self.temporary())
        for i in range(HISTORY_SIZE + 10):
            history.add(f"line {i}")
            history.add(f"line {i}")
        self.assertEqual(len(history.lines), HISTORY_SIZE)
        self.assertEqual(History(history.path).lines[-1], f"line {HISTORY_SIZE + 9}")

    def test_unwritable(self) -> None:
        """
        A history file that cannot be written keeps the history in memory.
        """
        blocker = self.temporary()
        blocker.write_text("a file, not a folder")
        history = History(blocker / "history")
        history.add("hello")
        self.assertEqual(history.lines, ["hello"])

    def test_history_path(self) -> None:
        """
        The history file is C{stdio-history} in the clients' data folder,
        which honours C{XDG_DATA_HOME} on Linux and BSDs.
        """
        self.patch(os, "environ", {**os.environ, "XDG_DATA_HOME": "/x"})
        self.assertEqual(history_path(), data_dir() / "stdio-history")
        if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
            self.assertEqual(history_path(), Path("/x/chat/stdio-history"))


class CompletionTests(EditorTestCase):
    """
    Tab completes nicks, commands and rooms.
    """

    completions = Completions(
        commands=["join", "help", "history"], rooms=["#lobby", "#dev"], nicks=["alice", "Albert", "bob"],
    )

    def test_complete(self) -> None:
        """
        A unique match completes (a nick at the start of the line with
        C{": "}); several complete their common start and are listed.
        """
        self.assertEqual(complete("bo", self.completions), ("b: ", []))
        self.assertEqual(complete("hi bo", self.completions), ("b ", []))
        self.assertEqual(complete("/jo", self.completions), ("in ", []))
        self.assertEqual(complete("/join #d", self.completions), ("ev ", []))
        self.assertEqual(complete("/h", self.completions), ("", ["/help", "/history"]))
        self.assertEqual(complete("/hi", self.completions), ("story ", []))
        self.assertEqual(complete("al", self.completions), ("", ["Albert", "alice"]))
        self.assertEqual(complete("zed", self.completions), ("", []))
        self.assertEqual(complete("hi /jo", self.completions), ("", []))

    def test_tab(self) -> None:
        """
        Tab inserts the completion at the cursor; an ambiguous one lists
        the candidates above the prompt.
        """
        self.build(completions=self.completions)
        self.type(b"hi b\t")
        self.assertEqual(self.screen.rows(), ["#lobby> hi bob"])
        self.type(b"\x15/h\t")
        self.assertEqual(self.screen.rows(), ["/help  /history", "#lobby> /h"])

    def test_columns(self) -> None:
        """
        Wide characters take two columns, combining ones none.
        """
        self.assertEqual(columns("a☕e\u0301"), 4)

    def test_moderation_commands_complete_nicks(self) -> None:
        """
        After an operator's command Tab completes (and lists) the room's nicks, and after /invite anyone known.
        """
        completions = Completions(commands=["kick", "invite"], nicks=["alice", "bob"], people=["alice", "bob", "cy"])
        self.assertEqual(complete("/kick ", completions), ("", ["alice", "bob"]))
        self.assertEqual(complete("/kick b", completions), ("ob ", []))
        self.assertEqual(complete("/ban bob 1h b", completions), ("ob ", []))
        self.assertEqual(complete("/invite c", completions), ("y ", []))
        self.assertEqual(complete("/invite ", completions), ("", ["alice", "bob", "cy"]))
        self.assertEqual(complete("/ki", completions), ("ck ", []))

    def test_nick_commands(self) -> None:
        """
        After C{/msg} (and C{/whois}, C{/send}) Tab completes anyone known,
        not only the current room's people, and lists them all before a
        letter is typed; the message itself completes the room's nicks.
        """
        completions = Completions(commands=["msg"], nicks=["alice"], people=["alice", "bob", "Bobby"])
        self.assertEqual(complete("/msg bobb", completions), ("y ", []))
        self.assertEqual(complete("/MSG b", completions), ("ob", ["bob", "Bobby"]))
        self.assertEqual(complete("/msg ", completions), ("", ["alice", "bob", "Bobby"]))
        self.assertEqual(complete("/whois bo", completions), ("b", ["bob", "Bobby"]))
        self.assertEqual(complete("/msg bob hi bo", completions), ("", []))
        self.assertEqual(complete("/msg bob hi a", completions), ("lice ", []))
        self.assertEqual(complete("b", completions), ("", []))
        self.build(completions=completions)
        self.type(b"/msg \t")
        self.assertEqual(self.screen.rows(), ["alice  bob  Bobby", "#lobby> /msg"])
        self.type(b"Bobb\t")
        self.assertEqual(self.screen.rows()[-1], "#lobby> /msg Bobby")


class WideCharacterTests(EditorTestCase):
    """
    Emoji and other wide characters take two columns, and the cursor lines
    up with what the terminal draws; a cluster (an emoji with its skin tone
    or U+FE0F, a letter with its accent) is edited as one.
    """

    def setUp(self) -> None:
        self.build()

    def test_columns_of_clusters(self) -> None:
        """
        L{columns} counts as C{wcwidth} (xterm, VTE, tmux): two for an
        emoji and for a skin tone, one for the heart of C{:heart:} and for
        a regional indicator, none for U+FE0F, U+200D and accents; the
        characters of a cluster are edited as one.
        """
        self.assertEqual(columns("😀"), 2)
        self.assertEqual(columns("❤️"), 1)
        self.assertEqual(columns("👍🏽"), 4)
        self.assertEqual(columns("👨\u200d👩\u200d👧"), 6)
        self.assertEqual(columns("🇫🇷"), 2)
        self.assertEqual(columns("e\u0301"), 1)
        self.assertEqual(clusters("a❤️👍🏽🇫🇷e\u0301"), ["a", "❤️", "👍🏽", "🇫🇷", "e\u0301"])

    def test_cursor_after_emoji(self) -> None:
        """
        The cursor stands after what was typed, two columns per emoji, and
        Left and Right step over an emoji whole.
        """
        self.type("a😀b❤️👍🏽c".encode())
        self.assertEqual(self.screen.rows(), ["#lobby> a@@b<++~~c"])
        self.assertEqual(self.screen.cursor(), (len("#lobby> a@@b<++~~c"), 0))
        self.type(LEFT * 3)
        self.assertEqual(self.screen.cursor(), (len("#lobby> a@@b"), 0))
        self.type(LEFT * 2)
        self.assertEqual(self.screen.cursor(), (len("#lobby> a"), 0))
        self.type(RIGHT + b"!")
        self.assertEqual(self.screen.rows(), ["#lobby> a@@!b<++~~c"])
        self.assertEqual(self.screen.cursor(), (len("#lobby> a@@!"), 0))

    def test_delete_clusters(self) -> None:
        """
        Backspace and Delete remove a whole cluster: an emoji with its
        U+FE0F or skin tone, a letter with its accent.
        """
        self.type("x❤️👍🏽e\u0301y".encode() + LEFT + BACKSPACE)
        self.assertEqual(self.screen.rows(), ["#lobby> x<++~~y"])
        self.type(HOME + RIGHT + DELETE)
        self.assertEqual(self.screen.rows(), ["#lobby> x++~~y"])
        self.assertEqual(self.screen.cursor(), (len("#lobby> x"), 0))
        self.type(END + LEFT + BACKSPACE + b"\r")
        self.assertEqual(self.submitted, ["xy"])

    def test_long_line_of_emoji(self) -> None:
        """
        A line of emoji wider than the terminal scrolls sideways by whole
        emoji: the row fits and the cursor is at its end.
        """
        self.build(width=30)
        self.type("🇫🇷".encode() + "😀".encode() * 20)
        (row,) = self.screen.rows()
        self.assertTrue(row.startswith("#lobby> @@"), row)
        self.assertLessEqual(len(row), 29)
        self.assertEqual(self.screen.cursor(), (len(row), 0))
        self.type(HOME)
        self.assertEqual(self.screen.rows(), ["#lobby> FR" + "@@" * 9])


class TerminalFrontendTests(SynchronousTestCase):
    """
    L{TerminalFrontend}: the model's changes above the prompt, input to the client.
    """

    def test_frontend(self) -> None:
        """
        What the model reports is shown above the prompt, which names the
        current room; Tab completes its members; lines entered go to the client.
        """
        client = FakeClient()
        transport = StringTransport()
        options = {"colour": False, "terminal": True, "seconds": lambda: 0.0}
        frontend = TerminalFrontend(client, options)  # type: ignore[arg-type]
        frontend.makeConnection(transport)
        screen = Screen(transport)
        frontend.dataReceived(b"draft")
        noon = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)
        client.model.apply(events.Joined(ts=noon, room="#dev", nick="alice"))
        users = (events.UserInfo("alice", "", 0), events.UserInfo("bob", "", 0))
        client.model.apply(events.Users(room="#dev", users=users))
        rows = screen.rows()
        self.assertEqual(rows[-1], "#dev> draft")
        self.assertIn("alice joined #dev", rows[0])
        frontend.dataReceived(b" b\t\r")
        self.assertEqual(client.lines, ["draft bob "])
        frontend.dataReceived(b"\x03")
        self.assertTrue(client.quitted)


class FakeClient:
    """
    What L{TerminalFrontend} uses of a L{chat.client.service.ChatClient}.
    """

    def __init__(self) -> None:
        self.model = ChatModel("alice")
        self.lines: list[str] = []
        self.quitted = False
        self.done: Deferred[None] = Deferred()

    def input(self, line: str) -> None:
        self.lines.append(line)

    def quit(self) -> None:
        self.quitted = True


NOON = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)


class AlertAndFormattingTests(SynchronousTestCase):
    """
    L{TerminalFrontend} and L{Screen}: mentions and private messages ring
    the bell and are highlighted, muted rooms stay quiet; formatting shows
    as terminal attributes, or as typed without colour; the unread divider.
    """

    def build(self, colour: bool = True, alert: bool = True) -> None:
        self.client = FakeClient()
        self.transport = StringTransport()
        options = {"colour": colour, "terminal": True, "seconds": lambda: NOON.timestamp(), "alert": alert,
                   "zone": timezone.utc}
        self.frontend = TerminalFrontend(self.client, options)  # type: ignore[arg-type]
        self.frontend.makeConnection(self.transport)
        self.screen = Screen(self.transport)
        self.model = self.client.model
        self.model.apply(events.Joined(ts=NOON, room="#lobby", nick="alice"))
        self.ids = 0

    def output(self, event: events.Event) -> str:
        """
        What the frontend writes for C{event}, as text.
        """
        start = len(self.transport.value())
        self.model.apply(event)
        shown: bytes = self.transport.value()[start:]
        return shown.decode("utf-8")

    def say(self, sender: str, text: str, room: str = "#lobby", action: bool = False) -> str:
        self.ids += 1
        return self.output(events.Message(self.ids, NOON, room, sender, text, action))

    def private(self, sender: str, to: str, text: str) -> str:
        self.ids += 1
        return self.output(events.Private(self.ids, NOON, sender, to, text, False, False))

    def test_mention_rings_and_highlights(self) -> None:
        """
        A message naming the user rings the bell once and is shown in
        reverse video; other messages, and the user's own naming themself,
        neither ring nor are highlighted.
        """
        self.build()
        shown = self.say("bob", "hi alice, look")
        self.assertEqual(shown.count(BELL), 1)
        self.assertIn(f"\x1b[{NICK_ANSI[nick_colour('bob')]};7mbob\x1b[0m", shown)
        self.assertIn("\x1b[7mhi alice, look\x1b[0m", shown)
        for quiet in (self.say("bob", "hello all"), self.say("alice", "alice is back")):
            self.assertNotIn(BELL, quiet)
            self.assertNotIn(";7m", quiet)
            self.assertNotIn("\x1b[7m", quiet)
        self.assertIn(BELL, self.say("carol", "waves at alice", action=True))

    def test_private_rings(self) -> None:
        """
        A private message from someone else rings and is highlighted; the
        echo of one the user sent does not.
        """
        self.build()
        shown = self.private("bob", "alice", "psst")
        self.assertIn(BELL, shown)
        self.assertIn(";7mpsst\x1b[0m", shown)
        self.assertNotIn(BELL, self.private("alice", "bob", "hi back"))

    def test_muted_room_quiet(self) -> None:
        """
        Mentions in a muted room neither ring nor are highlighted; private
        messages still ring.
        """
        self.build()
        self.model.mute("#lobby")
        shown = self.say("bob", "alice?")
        self.assertIn("alice?", shown)
        self.assertNotIn(BELL, shown)
        self.assertNotIn("7m", shown)
        self.assertIn(BELL, self.private("bob", "alice", "psst"))
        self.model.unmute("#lobby")
        self.assertIn(BELL, self.say("bob", "alice!"))

    def test_no_colour_still_rings(self) -> None:
        """
        Without colour (C{NO_COLOR}), a mention rings but carries no escape sequence.
        """
        self.build(colour=False)
        shown = self.say("bob", "hi alice")
        self.assertIn(BELL, shown)
        self.assertNotRegex(shown, "\x1b\\[[0-9;]*m")
        self.assertEqual(self.screen.rows()[-2:], ["[12:00] <bob> hi alice", "#lobby>"])

    def test_not_a_terminal(self) -> None:
        """
        Output that is not a terminal (C{alert} off) gets no bell and no highlight.
        """
        out: list[str] = []
        model = ChatModel("alice")
        model.observe(StdioScreen(model, out.append, colour=True, terminal=False, seconds=lambda: 0.0).show)
        model.apply(events.Message(1, NOON, "#lobby", "bob", "hi alice", False))
        self.assertNotIn(BELL, "".join(out))
        self.assertNotIn("7m", "".join(out))

    def test_formatting_in_colour(self) -> None:
        """
        C{*bold*} is bold, C{_italic_} italic (SGR 3), C{`code`} cyan and a
        link underlined, their markers dropped, in messages and private lines.
        """
        self.build()
        shown = self.say("bob", "a *big* _slanted_ `ls -l` see https://example.org/x.")
        self.assertIn(" \x1b[1mbig\x1b[0m ", shown)
        self.assertIn(" \x1b[3mslanted\x1b[0m ", shown)
        self.assertIn(" \x1b[36mls -l\x1b[0m ", shown)
        self.assertIn(" \x1b[4;34mhttps://example.org/x\x1b[0m.", shown)
        self.assertEqual(self.screen.rows()[-2], "[12:00] <bob> a big slanted ls -l see https://example.org/x.")
        shown = self.private("bob", "alice", "*now*")
        self.assertIn("\x1b[1;7mnow\x1b[0m", shown)

    def test_formatting_without_colour(self) -> None:
        """
        Without colour the line shows as it was typed, markers and all.
        """
        self.build(colour=False)
        self.say("bob", "a *big* _slanted_ `ls -l` see https://example.org/x.")
        self.assertEqual(self.screen.rows()[-2], "[12:00] <bob> a *big* _slanted_ `ls -l` see https://example.org/x.")

    def test_unread_divider(self) -> None:
        """
        After switching rooms, the first message of the room left comes
        after a divider naming it, once; switching back (C{/join} of a room
        joined) does the same for the other room.
        """
        self.build(colour=False)
        self.model.apply(events.Joined(ts=NOON, room="#dev", nick="alice"))
        self.say("bob", "one", room="#lobby")
        self.say("bob", "two", room="#lobby")
        self.say("bob", "in dev", room="#dev")
        self.assertEqual(self.screen.rows()[-5:], [
            "--- new since you last looked in #lobby ---",
            "[12:00] #lobby <bob> one",
            "[12:00] #lobby <bob> two",
            "[12:00] #dev <bob> in dev",
            "#dev>",
        ])
        self.model.make_current("#lobby")
        self.say("bob", "three", room="#lobby")
        self.say("bob", "more dev", room="#dev")
        self.assertEqual(self.screen.rows()[-4:], [
            "[12:00] #lobby <bob> three",
            "--- new since you last looked in #dev ---",
            "[12:00] #dev <bob> more dev",
            "#lobby>",
        ])


class PipedClient:
    """
    What L{StdioFrontend} uses of a L{ChatClient}: its model, the lines it is given, and C{done}.
    """

    def __init__(self) -> None:
        self.model = ChatModel("erin")
        self.lines: list[str] = []
        self.done: Deferred[None] = Deferred()

    def input(self, line: str) -> None:
        self.lines.append(line)

    def quit(self) -> None:
        self.done.callback(None)


class PipedInputTests(SynchronousTestCase):
    """
    L{StdioFrontend} (input that is not a terminal) reads lines only while the client is online.
    """

    def test_lines_wait_for_the_connection(self) -> None:
        """
        Lines piped in before the client is online wait, in order (stdin paused), and go to the
        client once it is; while it reconnects, input waits again.
        """
        client = PipedClient()
        frontend = StdioFrontend(cast(ChatClient, client), {"colour": False, "terminal": False, "seconds": lambda: 0.0})
        transport = StringTransport()
        frontend.makeConnection(transport)
        self.assertEqual(transport.producerState, "paused")
        frontend.dataReceived(b"hello :wave:\nlist\n")
        self.assertEqual(client.lines, [])
        client.model.set_state(State.ONLINE)
        self.assertEqual(client.lines, ["hello :wave:", "list"])
        self.assertEqual(transport.producerState, "producing")
        client.model.set_state(State.CONNECTING)
        frontend.dataReceived(b"/quit\n")
        self.assertEqual(client.lines, ["hello :wave:", "list"])
        client.model.set_state(State.ONLINE)
        self.assertEqual(client.lines, ["hello :wave:", "list", "/quit"])

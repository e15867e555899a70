"""
Tests of L{chat.client.terminal}: the line editor of C{chat-client} run by
insults' L{ServerProtocol} over a L{StringTransport}, its output replayed
into insults' in-memory terminal (L{TerminalBuffer}) to see the screen, and
of L{chat.client.stdio.TerminalFrontend} over the same.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from twisted.conch.insults import helper, insults
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from chat import events
from chat.client.model import ChatModel
from chat.client.stdio import TerminalFrontend
from chat.client.terminal import (
    HISTORY_SIZE,
    Completions,
    History,
    LineEditor,
    columns,
    complete,
    data_dir,
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


class Screen:
    """
    What a terminal of 80 by 24 shows of the bytes written to C{transport}.
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
        self.client.dataReceived(self.transport.value())
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

    def test_data_dir(self) -> None:
        """
        The data folder follows each platform's convention.
        """
        self.assertEqual(data_dir({"HOME": "/h"}, "linux"), Path("/h/.local/share/chat"))
        self.assertEqual(data_dir({"HOME": "/h", "XDG_DATA_HOME": "/x"}, "linux"), Path("/x/chat"))
        self.assertEqual(data_dir({"HOME": "/h"}, "darwin"), Path("/h/Library/Application Support/chat"))
        self.assertEqual(data_dir({"HOME": "/h", "APPDATA": "/a"}, "win32"), Path("/a/chat"))


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

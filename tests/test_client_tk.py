"""
Tests for L{chat.client.tk}: the themes, the window driven by a model
without a network, the connection dialog, the command line, and the window
against a real daemon with the reactor pumping Tk through
L{twisted.internet.tksupport}. What the lines say is tested against the
presenter, without widgets, in L{tests.test_client_present}.

Widgets need an X display: without C{DISPLAY}, a module fixture starts
C{Xvfb} on a free display and stops it at the end; the module is skipped
when tkinter or Xvfb is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import SkipTest

import pytest

tk = pytest.importorskip("tkinter", reason="tkinter is missing (Debian: apt-get install python3-tk)")

from twisted.internet import reactor, tksupport  # noqa: E402
from twisted.internet.defer import Deferred, succeed  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint  # noqa: E402
from twisted.internet.task import Clock, deferLater  # noqa: E402
from twisted.internet.threads import deferToThread  # noqa: E402
from twisted.trial.unittest import SynchronousTestCase, TestCase  # noqa: E402

from chat import events  # noqa: E402
from chat.client import settings, status  # noqa: E402
from chat.client import tk as chat_tk  # noqa: E402
from chat.client.model import CLEAR, UNREADABLE, ChatModel, OpenedPrivate, State  # noqa: E402
from chat.client.options import ClientOptions  # noqa: E402
from chat.client.service import Account, ChatClient  # noqa: E402
from chat.client.tk import alerts, conversation, dialogs, emoji_picker, files, panels, theme  # noqa: E402
from chat.client.tk import window as tk_window  # noqa: E402
from tests.e2e import Client, Daemon  # noqa: E402

UTC = timezone.utc
T0 = datetime(2026, 5, 11, 9, 30, tzinfo=UTC)
WAIT = 10.0
"""Bound, in seconds, on each wait for the daemon or the window."""
BOB_TAG = theme.nick_tag(status.nick_colour("bob"))
"""The pane's tag of bob's colour."""


def start_xvfb(xvfb: str) -> tuple[subprocess.Popen[bytes], int] | None:
    """
    Start Xvfb on a free display number (random, 100 to 999, with its lock
    file, unlike C{-displayfd}), and wait until it accepts connections.

    @return: the process and its display number, or C{None} if none started
        within 10 seconds.
    """
    deadline = time.monotonic() + 10
    for number in random.sample(range(100, 1000), 50):
        if time.monotonic() > deadline:
            break
        socket_path = f"/tmp/.X11-unix/X{number}"
        if os.path.exists(f"/tmp/.X{number}-lock") or os.path.exists(socket_path):
            continue
        process = subprocess.Popen(
            [xvfb, f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        while time.monotonic() < deadline and process.poll() is None:
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(socket_path)
                except OSError:
                    time.sleep(0.05)
                    continue
            return process, number
        if process.poll() is None:
            process.kill()
        process.wait(5)
    return None


@pytest.fixture(scope="module", autouse=True)
def display() -> Iterator[str]:
    """
    An X display for the module: C{DISPLAY} if set, else a fresh Xvfb.
    """
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("no DISPLAY and no Xvfb to start (Debian: apt-get install xvfb)")
    started = start_xvfb(xvfb)
    if started is None:
        pytest.skip("Xvfb did not start within 10 s")
    process, number = started
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield os.environ["DISPLAY"]
    finally:
        del os.environ["DISPLAY"]
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def make_root(case: SynchronousTestCase) -> Any:
    """
    A Tk root window for one test, destroyed at its end.
    """
    try:
        root = tk.Tk()
    except tk.TclError as e:
        raise SkipTest(f"cannot open a Tk window: {e}") from None

    def destroy() -> None:
        try:
            root.destroy()
        except tk.TclError:
            pass

    case.addCleanup(destroy)
    return root


def row_middle(tree: Any, item: str) -> tuple[int, int]:
    """
    Where to click on C{item} of C{tree} (a Treeview): its text, half-way down its row, in pixels.
    """
    box = tree.bbox(item)
    assert isinstance(box, tuple), f"{item} is not shown"
    x, y, _, height = (int(v) for v in box)
    return x + 20, y + height // 2


def message(room: str, sender: str, text: str, minutes: int = 0, action: bool = False, id: int = 1) -> events.Message:
    return events.Message(id, T0 + timedelta(minutes=minutes), room, sender, text, action)


# The themes


class FirstSizeTests(SynchronousTestCase):
    """
    L{tk_window.first_size}: the window's first size fits the screen.
    """

    def test_fits_the_screen(self) -> None:
        """
        The default size on a big screen, less on a smaller one (40 pixels kept), never below the minimum.
        """
        self.assertEqual(tk_window.first_size(1920, 1080), tk_window.DEFAULT_SIZE)
        self.assertEqual(tk_window.first_size(1100, 700), (1060, 660))
        self.assertEqual(tk_window.first_size(640, 400), tk_window.MIN_SIZE)


class ThemeTests(SynchronousTestCase):
    """
    L{theme.Theme}: the dark and light palettes have the same shape.
    """

    def test_palettes_have_one_colour_per_nick_colour(self) -> None:
        """
        Both palettes have a colour for each of the presenter's nick colours; a palette without is refused.
        """
        for palette in theme.THEMES.values():
            self.assertEqual(len(palette.nicks), status.NICK_COLOURS)
        self.assertEqual(set(theme.THEMES), {"dark", "light"})
        with self.assertRaises(ValueError):
            dataclasses.replace(theme.DARK, nicks=theme.DARK.nicks[:-1])
        self.assertEqual((theme.DARK.level("ok"), theme.LIGHT.level("error")), (theme.DARK.ok, theme.LIGHT.error))

    def test_contrast_ratio(self) -> None:
        """
        L{theme.contrast} is the WCAG 2 ratio: 21 for black on white, 1 for a colour on itself, either order.
        """
        self.assertAlmostEqual(theme.contrast("#000000", "#ffffff"), 21.0)
        self.assertAlmostEqual(theme.contrast("#ffffff", "#000000"), 21.0)
        self.assertAlmostEqual(theme.contrast("#20242c", "#20242c"), 1.0)
        self.assertAlmostEqual(theme.contrast("#767676", "#ffffff"), 4.54, places=2)  # the AA grey on white

    def test_nick_colours_readable_on_both_themes(self) -> None:
        """
        Every nick colour of both palettes has WCAG AA contrast (4.5:1) on every background a nick is drawn on.
        """
        for palette in theme.THEMES.values():
            self.assertEqual(len(palette.nick_backgrounds()), 5)
            for background in palette.nick_backgrounds():
                for colour in palette.nicks:
                    self.assertGreaterEqual(theme.contrast(colour, background), theme.MIN_CONTRAST,
                                            f"{palette.name}: {colour} on {background}")
        self.assertEqual(theme.MIN_CONTRAST, 4.5)

    def test_enough_distinct_nick_colours(self) -> None:
        """
        Each palette has at least 24 different nick colours, so that a room of 20 rarely repeats one.
        """
        for palette in theme.THEMES.values():
            self.assertGreaterEqual(len(set(palette.nicks)), 24)
            self.assertEqual(len(set(palette.nicks)), len(palette.nicks))


# The window, without a network


class FakeClient:
    """
    A L{tk_window.ChatSession} that records what the window asks.
    """

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.downloads = Path(tempfile.gettempdir()) / "chat-tk-downloads"
        self.where = "127.0.0.1:8888"
        self.lines: list[str] = []
        self.sent: list[tuple[str, Path]] = []
        self.fetched: list[int] = []
        self.calls: list[str] = []
        self.goodbye: Deferred[None] = succeed(None)

    def input(self, line: str) -> None:
        self.lines.append(line)

    def send_file(self, target: str, path: Path) -> None:
        self.sent.append((target, path))

    def get_file(self, offer_id: int, folder: Path | None = None) -> None:
        self.fetched.append(offer_id)

    def leave(self) -> Deferred[None]:
        self.calls.append("leave")
        return succeed(None)

    def reconnect(self) -> None:
        self.calls.append("reconnect")

    def quit(self, reason: str = "") -> Deferred[None]:
        self.calls.append("quit")
        return self.goodbye


def joined(model: ChatModel, room: str, *others: str, status: dict[str, str] | None = None) -> None:
    """
    Make the model's user join C{room} with C{others}, as the daemon tells it.
    """
    model.apply(events.Joined(T0, room, model.nick))
    people = sorted((model.nick, *others), key=str.lower)
    model.apply(events.Users(room, tuple(events.UserInfo(n, (status or {}).get(n, ""), 0) for n in people)))


def online_alice(case: SynchronousTestCase) -> tuple[Any, ChatModel, FakeClient, Clock]:
    """
    A Tk root, the model of alice online, a fake client over it, and a L{Clock} at L{T0}.
    """
    model = ChatModel("alice")
    model.set_state(State.ONLINE)
    clock = Clock()
    clock.advance(T0.timestamp())
    return make_root(case), model, FakeClient(model), clock


class WindowTests(SynchronousTestCase):
    """
    L{tk_window.ChatWindow} on a model fed by hand, with a fake client and a L{Clock}.
    """

    def setUp(self) -> None:
        self.root, self.model, self.client, self.clock = online_alice(self)
        self.exits: list[str] = []
        self.window = tk_window.ChatWindow(self.root, self.client, clock=self.clock, zone=UTC,
                                         on_exit=lambda: self.exits.append("exit"))
        self.addCleanup(self.window.close)
        self.root.update()

    def type_line(self, text: str, key: str = "<Return>") -> None:
        entry = self.window.compose.entry
        entry.focus_force()
        entry.delete(0, "end")
        entry.insert(0, text)
        self.root.update()
        entry.event_generate(key)
        self.root.update()

    def click(self, widget: Any, x: int | None = None, y: int | None = None) -> None:
        """
        Press and release the mouse's first button on C{widget} (at its middle unless told), as a user does.
        """
        self.root.update()
        x = widget.winfo_width() // 2 if x is None else x
        y = widget.winfo_height() // 2 if y is None else y
        widget.event_generate("<Enter>", x=x, y=y)
        widget.event_generate("<ButtonPress-1>", x=x, y=y)
        self.root.update()
        widget.event_generate("<ButtonRelease-1>", x=x, y=y)
        self.root.update()

    def test_enter_sends_the_line_as_typed(self) -> None:
        """
        Enter hands the line to the client as typed, commands included, and empties the input.
        """
        self.type_line("hello there")
        self.type_line("/me waves")
        self.type_line("   ")
        self.assertEqual(self.client.lines, ["hello there", "/me waves"])
        self.assertEqual(self.window.compose.entry.get(), "   ")

    def test_up_and_down_recall_lines(self) -> None:
        """
        Up recalls earlier lines, newest first; Down goes forward, back to the draft being typed.
        """
        self.type_line("one")
        self.type_line("two")
        self.window.compose.entry.insert(0, "draft")
        self.window.compose.entry.event_generate("<Up>")
        self.assertEqual(self.window.compose.entry.get(), "two")
        self.window.compose.entry.event_generate("<Up>")
        self.window.compose.entry.event_generate("<Up>")
        self.assertEqual(self.window.compose.entry.get(), "one")
        self.window.compose.entry.event_generate("<Down>")
        self.assertEqual(self.window.compose.entry.get(), "two")
        self.window.compose.entry.event_generate("<Down>")
        self.assertEqual(self.window.compose.entry.get(), "draft")

    def test_room_list_shows_rooms_and_unread_counts(self) -> None:
        """
        The room list shows the rooms joined, the current one selected, and unread counts of the others.
        """
        joined(self.model, "#dev", "bob")
        joined(self.model, "#lobby", "bob")
        self.model.apply(message("#dev", "bob", "psst", id=1))
        self.model.apply(message("#dev", "bob", "again", id=2))
        self.model.apply(message("#lobby", "bob", "here", id=3))
        rooms = self.window.rooms.tree
        self.assertEqual([rooms.item(i, "text") for i in rooms.get_children()], ["#dev", "#lobby"])
        self.assertEqual(rooms.item("#dev", "values"), ("2",))
        self.assertEqual(rooms.item("#lobby", "values"), ("",))
        self.assertEqual(rooms.selection(), ("#lobby",))
        self.assertEqual(self.window.header.title.cget("text"), "#lobby")

    def test_clicking_a_room_switches_to_it(self) -> None:
        """
        Clicking another room in the list joins it again (making it current); the current one does nothing.
        """
        joined(self.model, "#dev")
        joined(self.model, "#lobby")
        self.root.update()
        rooms = self.window.rooms.tree
        x, y, _, height = rooms.bbox("#dev")  # type: ignore[misc]
        rooms.event_generate("<ButtonPress-1>", x=x + 20, y=y + height // 2)
        rooms.event_generate("<ButtonRelease-1>", x=x + 20, y=y + height // 2)
        self.root.update()
        self.assertEqual(self.client.lines, ["/join #dev"])
        self.model.make_current("#dev")  # as ChatClient.input does
        self.root.update()
        self.assertEqual(self.client.lines, ["/join #dev"])
        self.assertEqual(rooms.selection(), ("#dev",))

    def test_pane_shows_the_current_room(self) -> None:
        """
        The pane shows the lines of the current room and of no room; switching rooms shows the other's; private
        messages show in their conversation only.
        """
        joined(self.model, "#dev")
        joined(self.model, "#lobby")
        self.model.apply(message("#dev", "bob", "in dev"))
        self.model.apply(message("#lobby", "carol", "in lobby"))
        self.model.apply(events.Private(5, T0, "dave", "alice", "private"))
        self.model.notice("for every view")
        shown = self.window.messages.lines()
        self.assertIn("09:30  carol  in lobby", shown)
        self.assertIn("09:30  • for every view", shown)
        self.assertNotIn("09:30  dave → you  private", shown)
        self.assertNotIn("09:30  bob  in dev", shown)
        self.model.make_current("#dev")
        shown = self.window.messages.lines()
        self.assertIn("09:30  bob  in dev", shown)
        self.assertNotIn("09:30  dave → you  private", shown)
        self.assertNotIn("09:30  carol  in lobby", shown)
        self.assertIn("09:30  carol  in lobby", self.window.messages.lines(visible=False))
        self.window.open_conversation("dave")
        shown = self.window.messages.lines()
        self.assertIn("09:30  dave → you  private", shown)
        self.assertIn("09:30  • for every view", shown)
        self.assertNotIn("09:30  bob  in dev", shown)

    def test_line_looks(self) -> None:
        """
        Private, action, system, error, history and mention lines carry their own tags; nicks their colour.
        """
        joined(self.model, "#lobby")
        self.model.apply(events.History("#lobby", (message("#lobby", "bob", "old"),)))
        self.model.apply(message("#lobby", "bob", "waves", action=True))
        self.model.apply(message("#lobby", "bob", "alice?"))
        self.model.apply(events.Private(5, T0, "bob", "alice", "psst"))
        self.model.notice("nope", "error")
        pane = self.window.messages.pane

        def tags_of(text: str) -> set[str]:
            start = pane.search(text, "1.0", "end", elide=True)
            self.assertTrue(start, f"{text!r} is not in the pane")
            return set(pane.tag_names(start))

        self.assertIn(conversation.conversation_tag("bob"), tags_of("psst"))
        self.assertIn("line:history", tags_of("old"))
        self.assertIn("line:action", tags_of("waves"))
        self.assertIn("action", tags_of(" waves"))
        self.assertIn("private", tags_of("psst"))
        self.assertIn("line:mention", tags_of("alice?"))
        self.assertIn("line:private", tags_of("psst"))
        self.assertIn("line:error", tags_of("nope"))
        self.assertIn("line:system", tags_of("You joined"))
        self.assertIn(BOB_TAG, tags_of("bob  alice?"))
        self.assertEqual(str(pane.tag_cget(BOB_TAG, "foreground")),
                         theme.DARK.nicks[status.nick_colour("bob")])
        self.assertEqual(str(pane.cget("state")), "disabled")

    def test_panels_keep_what_they_show_out_of_the_pane(self) -> None:
        """
        Who is in a joined room shows in the people list only; another room's people and a pong get a line.
        """
        joined(self.model, "#lobby", "bob")
        before = self.window.messages.lines(visible=False)
        self.model.apply(events.Users("#lobby", (events.UserInfo("alice", "", 0), events.UserInfo("carol", "", 0))))
        self.assertEqual(self.window.messages.lines(visible=False), before)
        self.assertEqual([self.window.people.tree.item(i, "text") for i in self.window.people.tree.get_children()],
                         ["alice", "carol"])
        self.model.apply(events.Users("#dev", (events.UserInfo("dave", "", 0),)))
        self.model.apply(events.Pong("hello"))
        self.assertEqual(self.window.messages.lines()[-2:], ["09:30  • #dev, 1 user: dave", "09:30  • pong hello"])

    def test_autoscroll_only_at_the_bottom(self) -> None:
        """
        New lines scroll the pane when it was at the bottom; when scrolled up it stays put and offers a jump.
        """
        joined(self.model, "#lobby")
        for n in range(120):
            self.model.apply(message("#lobby", "bob", f"line {n}", id=n))
        self.root.update()
        self.assertTrue(self.window.messages.at_bottom())
        self.window.messages.pane.yview_moveto(0.0)
        self.root.update()
        self.model.apply(message("#lobby", "bob", "while away", id=500))
        self.root.update()
        self.assertEqual(self.window.messages.pane.yview()[0], 0.0)
        self.assertTrue(self.window.messages.jump_button.winfo_ismapped())
        self.window.messages.jump_button.invoke()
        self.root.update()
        self.assertTrue(self.window.messages.at_bottom())
        self.assertFalse(self.window.messages.jump_button.winfo_ismapped())
        self.model.apply(message("#lobby", "bob", "latest", id=501))
        self.root.update()
        self.assertTrue(self.window.messages.at_bottom())
        self.assertEqual(self.window.messages.lines()[-1], "09:30  bob  latest")

    def test_pane_keeps_at_most_max_lines(self) -> None:
        """
        The oldest lines go once the pane holds more than L{conversation.MAX_LINES}.
        """
        self.patch(conversation, "MAX_LINES", 50)
        for n in range(80):
            self.model.notice(f"note {n}")
        lines = self.window.messages.lines(visible=False)
        self.assertEqual((len(lines), lines[0], lines[-1]), (50, "09:30  • note 30", "09:30  • note 79"))

    def test_people_list_with_statuses_and_count(self) -> None:
        """
        The people list shows the members of the current room with statuses, and how many are online.
        """
        joined(self.model, "#lobby", "bob", "Carol", status={"bob": "at lunch"})
        users = self.window.people.tree
        self.assertEqual([(users.item(i, "text"), users.item(i, "values")) for i in users.get_children()],
                         [("alice", ("",)), ("bob", ("at lunch",)), ("Carol", ("",))])
        self.assertEqual(self.window.people.heading.cget("text"), "PEOPLE · 3 ONLINE")
        self.model.apply(events.Parted(T0, "#lobby", "bob"))
        self.assertEqual(self.window.people.heading.cget("text"), "PEOPLE · 2 ONLINE")
        self.window.people.refresh_button.invoke()
        self.assertEqual(self.client.lines, ["/list"])

    def test_send_file_goes_to_the_selected_person_or_the_room(self) -> None:
        """
        Send file offers the chosen file to the person selected, else to the current room; cancel sends nothing.
        """
        joined(self.model, "#lobby", "bob")
        chosen = ["/tmp/a.txt", "", "/tmp/b.txt"]
        self.window.choose_file = lambda: chosen.pop(0)
        self.assertEqual(self.window.files.send_button.cget("text"), "Send file to #lobby…")
        self.window.people.tree.selection_set("bob")
        self.root.update()
        self.assertEqual(self.window.files.send_button.cget("text"), "Send file to bob…")
        self.window.files.send_button.invoke()
        self.window.files.send_button.invoke()
        self.window.people.tree.selection_set(())
        self.root.update()
        self.window.files.send_button.invoke()
        self.assertEqual(self.client.sent, [("bob", Path("/tmp/a.txt")), ("#lobby", Path("/tmp/b.txt"))])

    def test_offer_in_pane_and_panel(self) -> None:
        """
        An offer shows in the pane with a link and in the files panel; both download through the client.
        """
        offer = events.FileOffer(7, "bob", "alice", "notes.txt", 2048, "0" * 64, T0)
        self.model.apply(offer)
        self.assertIn("09:30  ↓ bob offered notes.txt (2.0 KiB) to you   Download", self.window.messages.lines())
        row = self.window.files.offer_rows[7]
        self.assertEqual((row.title.cget("text"), row.detail.cget("text")), ("notes.txt", "bob · 2.0 KiB"))
        row.button.invoke()
        self.assertEqual(self.client.fetched, [7])
        self.assertTrue(row.button.instate(["disabled"]))
        pane = self.window.messages.pane
        self.root.update()
        link = pane.search("Download", "1.0", "end")
        x, y, width, height = pane.bbox(link)  # type: ignore[misc]
        pane.event_generate("<Motion>", x=x + width // 2, y=y + height // 2)  # the mouse over the link
        pane.event_generate("<Button-1>", x=x + width // 2, y=y + height // 2)
        self.root.update()
        self.assertEqual(self.client.fetched, [7, 7])

    def test_progress_redraws_are_throttled(self) -> None:
        """
        Progress redraws at most every L{files.PROGRESS_INTERVAL} seconds; the end shows at once.
        """
        transfer = self.model.add_transfer("upload", "big.iso", "bob", 1000)
        row = self.window.files.transfer_rows[transfer.id]
        self.model.progress(transfer, 100, 1000)
        self.assertEqual(float(row.bar.cget("value")), 0.0)
        self.clock.advance(files.PROGRESS_INTERVAL)
        self.assertEqual(float(row.bar.cget("value")), 10.0)
        self.model.progress(transfer, 500, 1000)
        self.model.progress(transfer, 600, 1000)
        self.assertEqual(float(row.bar.cget("value")), 10.0)
        self.clock.advance(files.PROGRESS_INTERVAL)
        self.assertEqual((float(row.bar.cget("value")), row.detail.cget("text")), (60.0, "60% · 600 B of 1000 B"))
        self.model.progress(transfer, 700, 1000)
        self.model.finish(transfer, result="/tmp/big.iso")
        self.assertEqual((float(row.bar.cget("value")), row.detail.cget("text")), (100.0, "Done · 1000 B"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failed_transfer(self) -> None:
        """
        A failed download says why, and its offer can be downloaded again.
        """
        self.model.apply(events.FileOffer(7, "bob", "alice", "n.txt", 10, "0" * 64, T0))
        self.window.files.offer_rows[7].button.invoke()
        transfer = self.model.add_transfer("download", "n.txt", "bob", 10, offer=7)
        self.model.finish(transfer, error="checksum mismatch")
        row = self.window.files.transfer_rows[transfer.id]
        self.assertEqual(row.detail.cget("text"), "Failed: checksum mismatch")
        self.assertTrue(self.window.files.offer_rows[7].button.instate(["!disabled"]))

    def test_errors_show_in_pane_and_status_bar(self) -> None:
        """
        Errors from the daemon and from the client show in the pane and in the status bar, for a while.
        """
        self.model.apply(events.Error("no-such-nick", "no such nick: zed"))
        self.assertEqual(self.window.status.error_label.cget("text"), "! no such nick: zed")
        self.model.notice("Cannot connect to 127.0.0.1:8888: connection refused.", "error")
        self.assertEqual(self.window.status.error_label.cget("text"),
                         "! Cannot connect to 127.0.0.1:8888: connection refused.")
        self.assertIn("09:30  ! no such nick: zed (no-such-nick)", self.window.messages.lines())
        self.clock.advance(panels.ERROR_SECONDS)
        self.assertEqual(self.window.status.error_label.cget("text"), "")
        self.model.notice("x" * 500, "error")
        shown = self.window.status.error_label.cget("text")
        self.assertTrue(shown.startswith("! xxx") and "…" in shown)
        self.assertLess(self.window.fonts.small.measure(shown), 1120)

    def test_errors_clear_once_online_again(self) -> None:
        """
        An error in the status bar goes once the connection is back online.
        """
        self.model.set_state(State.CONNECTING)
        self.model.notice("Cannot connect to 127.0.0.1:8888: connection refused.", "error")
        self.model.set_state(State.CONNECTED)
        self.assertNotEqual(self.window.status.error_label.cget("text"), "")
        self.model.set_state(State.ONLINE)
        self.assertEqual(self.window.status.error_label.cget("text"), "")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_status_bar(self) -> None:
        """
        The status bar follows the connection: state, server, nick, TLS, RTT.
        """
        self.model.set_secure(True)
        self.model.set_rtt(0.012)
        self.assertEqual(self.window.status.label.cget("text"), "Online · 127.0.0.1:8888 · alice · TLS · RTT 12 ms")
        self.model.set_state(State.CONNECTING)
        self.assertEqual(self.window.status.label.cget("text"), "Connecting… · 127.0.0.1:8888 · alice · not encrypted")

    def test_leave_then_reconnect(self) -> None:
        """
        Disconnect leaves the server and keeps the window; the button then reads Reconnect and connects again.
        """
        self.window.rooms.server_button.invoke()
        self.assertEqual(self.client.calls, ["leave"])
        self.model.set_state(State.DISCONNECTED)
        self.assertEqual(self.window.rooms.server_button.cget("text"), "Reconnect")
        self.assertEqual(self.window.chat_menu.entrycget(6, "label"), "Reconnect")
        self.window.rooms.server_button.invoke()
        self.assertEqual(self.client.calls, ["leave", "reconnect"])
        self.model.set_state(State.CONNECTING)
        self.assertEqual(self.window.rooms.server_button.cget("text"), "Disconnect")
        self.assertEqual(self.exits, [])

    def test_exit_quits_then_stops(self) -> None:
        """
        Exit (the button, Ctrl+Q or closing the window) sends the goodbye and stops once, when it is sent.
        """
        self.client.goodbye = Deferred()
        close = self.root.protocol("WM_DELETE_WINDOW")
        self.root.tk.call(close)
        self.window.rooms.exit_button.invoke()
        self.assertEqual((self.client.calls, self.exits), (["quit"], []))
        self.client.goodbye.callback(None)
        self.assertEqual(self.exits, ["exit"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_exit_does_not_wait_for_ever(self) -> None:
        """
        Exit stops after L{tk_window.EXIT_GRACE} seconds even if the goodbye never completes.
        """
        self.client.goodbye = Deferred()
        self.window.exit()
        self.clock.advance(tk_window.EXIT_GRACE)
        self.assertEqual(self.exits, ["exit"])

    def test_downloads_folder(self) -> None:
        """
        Choosing a downloads folder sets the client's; cancelling keeps it.
        """
        folders = ["/srv/inbox", ""]
        self.window.choose_folder = lambda: folders.pop(0)
        self.window.choose_downloads()
        self.window.choose_downloads()
        self.assertEqual(self.client.downloads, Path("/srv/inbox"))
        self.assertEqual(self.window.files.downloads_label.cget("text"), "Save to /srv/inbox")

    def test_first_four_nicks_get_four_colours(self) -> None:
        """
        alice, bob, carol and dave are drawn in four different colours, in the pane and the people list.
        """
        joined(self.model, "#lobby", "bob", "carol", "dave")
        for nick in ("bob", "carol", "dave"):
            self.model.apply(message("#lobby", nick, "hi"))
        self.model.apply(message("#lobby", "alice", "hi"))
        pane = self.window.messages.pane
        colours = set()
        for nick in ("alice", "bob", "carol", "dave"):
            start = pane.search(f"{nick}  hi", "1.0", "end")
            (tag,) = [t for t in pane.tag_names(start) if t.startswith("nick") and t != "nick"]
            colours.add(str(pane.tag_cget(tag, "foreground")))
        self.assertEqual(len(colours), 4)
        people = self.window.people.tree
        self.assertEqual(len({people.item(nick, "tags")[0] for nick in ("alice", "bob", "carol", "dave")}), 4)

    def test_buttons_and_lists_leave_the_focus_in_the_input(self) -> None:
        """
        Clicking the buttons and the lists leaves (or gives back) the keyboard focus to the input line.
        """
        joined(self.model, "#dev", "bob")
        joined(self.model, "#lobby", "bob")
        self.window.choose_file = lambda: ""
        self.window.choose_folder = lambda: ""
        self.window.ask_room = lambda: ""
        entry = self.window.compose.entry
        buttons = [self.window.people.refresh_button, self.window.files.send_button, self.window.compose.send_button,
                   self.window.rooms.join_button, self.window.header.part_button]
        for widget in buttons:
            entry.focus_force()
            self.click(widget)
            self.assertEqual(self.root.focus_get(), entry, str(widget))
        self.assertEqual(self.client.lines, ["/list", "/part"])
        for tree, item in ((self.window.people.tree, "bob"), (self.window.rooms.tree, "#dev")):
            entry.focus_force()
            self.click(tree, *row_middle(tree, item))
            self.assertEqual(self.root.focus_get(), entry, str(tree))
        self.assertEqual(self.client.lines[-1], "/join #dev")

    def test_typing_in_the_pane_types_in_the_input(self) -> None:
        """
        Keys typed while the pane has the focus (after selecting text in it) go to the input line.
        """
        pane = self.window.messages.pane
        pane.focus_force()
        self.root.update()
        pane.event_generate("<KeyPress>", keysym="h")
        pane.event_generate("<KeyPress>", keysym="i")
        self.root.update()
        self.assertEqual(self.window.compose.entry.get(), "hi")
        self.assertEqual(self.root.focus_get(), self.window.compose.entry)

    def test_actions_keep_the_unsent_line(self) -> None:
        """
        Join room…, opening a person (their private conversation) and Up/Down keep what was typed and not sent;
        only sending empties it.
        """
        joined(self.model, "#lobby", "bob")
        entry = self.window.compose.entry
        entry.insert(0, "half a thought")
        rooms = ["#dev", "ops", None]
        self.window.ask_room = lambda: rooms.pop(0)
        self.window.rooms.join_button.invoke()
        self.window.rooms.join_button.invoke()
        self.window.rooms.join_button.invoke()
        self.assertEqual(self.client.lines, ["/join #dev", "/join #ops"])
        self.assertEqual(entry.get(), "half a thought")
        self.root.update()
        x, y = row_middle(self.window.people.tree, "bob")
        for _ in range(2):  # a double click
            self.window.people.tree.event_generate("<ButtonPress-1>", x=x, y=y)
            self.window.people.tree.event_generate("<ButtonRelease-1>", x=x, y=y)
        self.root.update()
        self.assertEqual(self.window.conversation, "bob")
        self.assertEqual(entry.get(), "half a thought")
        self.window.compose.prefix("/msg carol ")
        self.assertEqual(entry.get(), "/msg carol half a thought")
        self.window.set_theme("light")
        self.assertEqual(entry.get(), "/msg carol half a thought")
        self.type_line("/msg carol half a thought")
        self.assertEqual(entry.get(), "")

    def test_line_kept_while_not_connected(self) -> None:
        """
        A line typed while not connected stays in the input, with a word why, instead of being lost.
        """
        self.model.set_state(State.CONNECTING)
        self.type_line("are you there?")
        self.assertEqual(self.client.lines, [])
        self.assertEqual(self.window.compose.entry.get(), "are you there?")
        self.assertIn("Not connected", self.window.status.error_label.cget("text"))
        self.model.set_state(State.CONNECTED)
        self.model.set_state(State.ONLINE)
        self.type_line(self.window.compose.entry.get())
        self.assertEqual(self.client.lines, ["are you there?"])
        self.assertEqual(self.window.compose.entry.get(), "")

    def test_layout_at_800_by_560(self) -> None:
        """
        At 800×560 the window is that size and every part is shown whole inside it, the input still wide.
        """
        joined(self.model, "#lobby", "bob")
        self.model.apply(events.FileOffer(7, "bob", "alice", "a-long-file-name-for-a-card.tar.gz", 2048, "0" * 64, T0))
        self.model.apply(events.Topic("#lobby", "A topic long enough to be shortened in a narrow header " * 3, "bob"))
        self.root.geometry("800x560")
        self.root.update()
        self.root.update()
        self.assertEqual((self.root.winfo_width(), self.root.winfo_height()), (800, 560))
        right, bottom = self.root.winfo_rootx() + 800, self.root.winfo_rooty() + 560
        w = self.window
        widgets = [w.compose.entry, w.compose.send_button, w.compose.emoji_button, w.compose.target, w.header.title,
                   w.header.topic, w.rooms.conversations,
                   w.header.part_button, w.rooms.server_button, w.rooms.exit_button, w.rooms.join_button,
                   w.rooms.tree, w.people.refresh_button, w.people.heading, w.files.send_button,
                   w.files.downloads_label, w.files.offer_rows[7].button, w.status.label, w.messages.pane]
        for widget in widgets:
            self.assertTrue(widget.winfo_viewable(), str(widget))
            self.assertLessEqual(widget.winfo_rootx() + widget.winfo_width(), right, str(widget))
            self.assertLessEqual(widget.winfo_rooty() + widget.winfo_height(), bottom, str(widget))
            if widget.winfo_class() in ("TButton", "TLabel"):
                self.assertGreaterEqual(widget.winfo_width(), widget.winfo_reqwidth(), f"{widget} is cut")
        self.assertGreaterEqual(w.compose.entry.winfo_width(), 180)
        self.assertGreaterEqual(w.messages.pane.winfo_width(), 300)

    def test_server_actions_apart_from_room_actions(self) -> None:
        """
        The room header offers only Leave room (/part); Disconnect and Exit sit with the server, not the room.
        """
        joined(self.model, "#lobby")
        header_buttons = [c for c in self.window.header.frame.winfo_children() if c.winfo_class() == "TButton"]
        self.assertEqual([b.cget("text") for b in header_buttons], ["Leave room"])
        self.window.header.part_button.invoke()
        self.assertEqual((self.client.lines, self.client.calls), (["/part"], []))
        self.assertEqual(self.window.rooms.server_button.cget("text"), "Disconnect")
        self.assertEqual(self.window.rooms.server_button.master.master, self.window.rooms.frame)
        self.assertLess(self.window.rooms.server_button.winfo_y() + self.window.rooms.server_button.master.winfo_y(),
                        self.window.rooms.tree.winfo_y())  # above the rooms, under the server's name
        labels = [self.window.chat_menu.entrycget(i, "label") for i in range(8)
                  if self.window.chat_menu.type(i) == "command"]
        self.assertEqual(labels, ["Send file…", "Downloads folder…", "Join room…", "Leave room", "Disconnect", "Exit"])

    def test_reconnecting_shows_one_banner(self) -> None:
        """
        While reconnecting, notices replace each other in one banner (errors in the status bar too), not lines in
        the pane; the banner goes once back online.
        """
        joined(self.model, "#lobby")
        self.model.set_state(State.CONNECTING)
        before = self.window.messages.lines(visible=False)
        self.assertTrue(self.window.banner.shown())
        self.model.notice("Trying again in 1 s.")
        self.model.notice("Cannot connect to 127.0.0.1:8888: connection refused.", "error")
        self.model.notice("Trying again in 2 s.")
        self.assertEqual(self.window.messages.lines(visible=False), before)
        self.assertEqual(self.window.banner.label.cget("text"), "Connecting… Trying again in 2 s.")
        self.assertEqual(self.window.status.error_label.cget("text"),
                         "! Cannot connect to 127.0.0.1:8888: connection refused.")
        self.model.set_state(State.CONNECTED)
        self.model.apply(events.Registered("alice"))
        self.assertFalse(self.window.banner.shown())
        self.assertFalse(self.window.banner.frame.winfo_ismapped())
        self.model.notice("Joining #dev again.")
        self.assertEqual(self.window.messages.lines()[-1], "09:30  • Joining #dev again.")

    def test_password_masked_and_not_recalled(self) -> None:
        """
        A /login, /register or /password line shows as dots while typed, and Up never recalls it.
        """
        entry = self.window.compose.entry
        self.type_line("hello")
        for line in ("/login alice s3cret", "/register s3cret", "/password old new"):
            entry.delete(0, "end")
            entry.insert(0, line)
            self.assertEqual(str(entry.cget("show")), "•", line)
            self.assertEqual(self.window.compose.target.cget("text"), "password hidden")
            entry.event_generate("<Return>")
            self.assertEqual(entry.get(), "")
            self.assertEqual(str(entry.cget("show")), "")
        entry.insert(0, "/login alice")
        self.assertEqual(str(entry.cget("show")), "")
        entry.delete(0, "end")
        entry.event_generate("<Up>")
        self.assertEqual(entry.get(), "hello")
        entry.event_generate("<Up>")
        self.assertEqual(entry.get(), "hello")
        self.assertEqual(self.client.lines, ["hello", "/login alice s3cret", "/register s3cret", "/password old new"])

    def test_plain_line_goes_to_the_selected_room_after_reconnecting(self) -> None:
        """
        After a reconnection, the first plain line (or /me) makes the selected room current before it is sent.
        """
        joined(self.model, "#dev")
        joined(self.model, "#lobby")
        self.type_line("before")
        self.assertEqual(self.client.lines, ["before"])
        for state in (State.CONNECTING, State.CONNECTED):
            self.model.set_state(state)
        self.model.apply(events.Registered("alice"))
        # The daemon joins #lobby first; the client joins #dev again, then #lobby (already in: no event).
        self.model.apply(events.Joined(T0, "#lobby", "alice"))
        self.model.apply(events.Joined(T0, "#dev", "alice"))
        self.assertEqual(self.window.rooms.tree.selection(), ("#dev",))
        self.type_line("hello")
        self.type_line("/me waves")
        self.type_line("again")
        self.assertEqual(self.client.lines, ["before", "/join #dev", "hello", "/me waves", "again"])

    def test_light_theme(self) -> None:
        """
        The View menu's light theme recolours the pane and the nicks; dark is the default.
        """
        self.assertEqual(str(self.window.messages.pane.cget("background")), theme.DARK.pane)
        self.window.set_theme("light")
        self.assertEqual(str(self.window.messages.pane.cget("background")), theme.LIGHT.pane)
        self.assertEqual(str(self.window.messages.pane.tag_cget(BOB_TAG, "foreground")),
                         theme.LIGHT.nicks[status.nick_colour("bob")])

    def test_fit_shortens_in_the_middle(self) -> None:
        """
        L{theme.fit} keeps short text and shortens long text around an ellipsis to the width.
        """
        font = self.window.fonts.base
        self.assertEqual(theme.fit("short.txt", font, 500), "short.txt")
        name = "a-very-long-file-name-for-a-small-card.tar.gz"
        fitted = theme.fit(name, font, 120)
        self.assertLessEqual(font.measure(fitted), 120)
        self.assertIn("…", fitted)
        self.assertTrue(fitted.startswith("a-v") and fitted.endswith("gz"))


class ModerationWindowTests(SynchronousTestCase):
    """
    Operators in the people list and a person's menu (PROTOCOL.md section 10), on a model fed by hand.
    """

    def setUp(self) -> None:
        self.root, self.model, self.client, self.clock = online_alice(self)
        self.window = tk_window.ChatWindow(self.root, self.client, clock=self.clock, zone=UTC, on_exit=lambda: None)
        self.addCleanup(self.window.close)
        self.model.apply(events.Joined(T0, "#dev", "alice"))
        self.model.apply(events.Users("#dev", (events.UserInfo("alice", "", 0, events.OPERATOR),
                                               events.UserInfo("bob", "", 0), events.UserInfo("Carol", "", 0))))
        self.root.update()

    def labels(self, nick: str) -> list[str]:
        menu = self.window.build_person_menu(nick)
        return [str(menu.entrycget(i, "label")) for i in range((menu.index("end") or 0) + 1)
                if menu.type(i) == "command"]

    def choose(self, nick: str, label: str) -> None:
        menu = self.window.build_person_menu(nick)
        [index] = [i for i in range((menu.index("end") or 0) + 1)
                   if menu.type(i) == "command" and menu.entrycget(i, "label") == label]
        menu.invoke(index)

    def test_operators_are_marked_and_listed_first(self) -> None:
        """
        The people list puts operators first with an @ before the nick; selecting one still gives the bare nick.
        """
        tree = self.window.people.tree
        self.model.apply(events.RoleChanged("#dev", "Carol", events.OPERATOR, "alice"))
        self.root.update()
        self.assertEqual([tree.item(i, "text") for i in tree.get_children()], ["@alice", "@Carol", "bob"])
        self.assertIn("operator", tree.item("carol", "tags"))
        tree.selection_set("carol")
        self.root.update()
        self.assertEqual(self.window.people.selected(), "Carol")
        self.assertEqual(self.window.files.send_button.cget("text"), "Send file to Carol…")

    def test_menu_of_a_member_only_messages(self) -> None:
        """
        Someone who is not an operator gets only Private message, which opens the conversation.
        """
        self.model.apply(events.RoleChanged("#dev", "alice", events.MEMBER, "bob"))
        self.assertEqual(self.labels("bob"), ["Private message"])
        self.choose("bob", "Private message")
        self.assertEqual(self.window.conversation, "bob")
        self.assertEqual(self.client.lines, [])

    def test_operator_menu_sends_the_commands(self) -> None:
        """
        An operator's menu sends /op, /deop, /mute and /unmute for the person in the current room.
        """
        self.assertEqual(self.labels("bob"), ["Private message", "Make operator", "Kick…", "Ban…", "Mute", "Unmute"])
        self.assertEqual(self.labels("alice"), ["Remove operator"])
        for label in ("Make operator", "Mute", "Unmute"):
            self.choose("bob", label)
        self.choose("alice", "Remove operator")
        self.assertEqual(self.client.lines, ["/op bob #dev", "/mute bob #dev", "/unmute bob #dev", "/deop alice #dev"])

    def test_kick_and_ban_ask_first(self) -> None:
        """
        Kick… asks a reason and Ban… a duration and a reason before sending; cancelling sends nothing.
        """
        asked: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        answers: list[tuple[str, str] | None] = [("", "spam"), ("1h", "flooding again"), None, ("", "")]

        def ask(title: str, prompt: str, durations: tuple[tuple[str, str], ...]) -> tuple[str, str] | None:
            asked.append((title, durations))
            return answers.pop(0)

        self.window.ask_moderation = ask
        self.choose("bob", "Kick…")
        self.choose("bob", "Ban…")
        self.choose("bob", "Ban…")
        self.choose("Carol", "Ban…")
        self.assertEqual(self.client.lines,
                         ["/kick bob #dev spam", "/ban bob #dev 1h flooding again", "/ban Carol #dev"])
        bans = status.BAN_DURATIONS
        self.assertEqual(asked, [("Kick bob", ()), ("Ban bob", bans), ("Ban bob", bans), ("Ban Carol", bans)])

    def test_invite_to_an_invite_only_room(self) -> None:
        """
        The menu offers an invitation to each other invite-only room the user operates that the person is not in.
        """
        self.model.apply(events.Joined(T0, "#secret", "alice"))
        self.model.apply(events.Users("#secret", (events.UserInfo("alice", "", 0, events.OPERATOR),
                                                  events.UserInfo("Carol", "", 0))))
        self.model.apply(events.RoomSettings("#secret", invite_only=True))
        self.model.make_current("#dev")
        self.assertIn("Invite to #secret", self.labels("bob"))
        self.assertNotIn("Invite to #secret", self.labels("Carol"))
        self.choose("bob", "Invite to #secret")
        self.assertEqual(self.client.lines, ["/invite bob #secret"])

    def test_right_click_opens_the_menu_of_the_person(self) -> None:
        """
        A right click on a person selects them and opens their menu at the pointer; Shift+F10 opens it by keyboard.
        """
        opened: list[str] = []
        self.window.people._on_menu = lambda nick, x, y: opened.append(nick)
        tree = self.window.people.tree
        x, y = row_middle(tree, "carol")
        tree.event_generate("<Button-3>", x=x, y=y)
        self.root.update()
        self.assertEqual((opened, tree.selection()), (["Carol"], ("carol",)))
        tree.selection_set("bob")
        tree.focus_force()
        self.root.update()
        tree.event_generate("<Shift-F10>")
        self.root.update()
        self.assertEqual(opened, ["Carol", "bob"])

    def test_kicked_out_of_the_current_room(self) -> None:
        """
        When the user is kicked, the room leaves the room list and the line says so wherever the user looks.
        """
        self.model.apply(events.Joined(T0, "#lobby", "alice"))
        self.model.apply(events.Kicked(T0, "#lobby", "alice", "bob", "spam"))
        self.root.update()
        self.assertEqual(list(self.window.rooms.tree.get_children()), ["#dev"])
        self.assertIn("09:30  ← You were kicked from #lobby by bob (spam)", self.window.messages.lines())

    def test_moderation_dialog(self) -> None:
        """
        The kick and ban dialog gives the chosen duration and the reason typed, or nothing when cancelled.
        """
        dialog = dialogs.ModerationDialog(self.root, "Ban bob", "Why?", status.BAN_DURATIONS)
        dialog.reason.set("  spam ")
        dialog.choices["1 day"].invoke()
        dialog.ok_button.invoke()
        self.assertEqual(dialog.result, ("1d", "spam"))
        kick = dialogs.ModerationDialog(self.root, "Kick bob", "Why?")
        self.assertEqual(kick.choices, {})
        kick.cancel()
        self.assertIsNone(kick.result)


class FeatureTests(SynchronousTestCase):
    """
    The features of issue 18 in L{tk_window.ChatWindow}: private conversations, alerts, light formatting, the
    emoji picker, user themes kept in the settings, and the unread divider.
    """

    def setUp(self) -> None:
        # tests/conftest.py gives every test a config folder of its own.
        self.config = Path(os.environ["XDG_CONFIG_HOME"])
        self.root, self.model, self.client, self.clock = online_alice(self)
        self.window = self.make_window()

    def make_window(self, **kwargs: Any) -> Any:
        window = tk_window.ChatWindow(self.root, self.client, clock=self.clock, zone=UTC, **kwargs)
        self.addCleanup(window.close)
        self.bells: list[str] = []
        self.notified: list[tuple[str, str]] = []
        self.opened: list[str] = []
        self.root.bell = lambda *args: self.bells.append("bell")  # type: ignore[method-assign]
        window.notify = lambda summary, body: self.notified.append((summary, body))
        window.open_url = self.opened.append
        self.root.update()
        return window

    def type_line(self, text: str) -> None:
        entry = self.window.compose.entry
        entry.delete(0, "end")
        entry.insert(0, text)
        entry.event_generate("<Return>")
        self.root.update()

    def test_private_conversations_listed_with_unread_counts(self) -> None:
        """
        A private message lists its conversation beside the rooms with an unread count; a click on it shows its
        lines (not the room's), clears the count, and plain lines then go to that person.
        """
        joined(self.model, "#lobby", "bob")
        self.model.apply(message("#lobby", "carol", "room talk"))
        self.model.apply(events.Private(5, T0, "bob", "alice", "psst"))
        self.model.apply(events.Private(6, T0, "bob", "alice", "you there?"))
        self.root.update()
        talks = self.window.rooms.conversations
        self.assertEqual(talks.get_children(), ("bob",))
        self.assertEqual(talks.item("bob", "values"), ("2",))
        self.assertNotIn("09:30  bob → you  psst", self.window.messages.lines())
        x, y = row_middle(talks, "bob")
        talks.event_generate("<ButtonPress-1>", x=x, y=y)
        talks.event_generate("<ButtonRelease-1>", x=x, y=y)
        self.root.update()
        self.assertEqual(self.window.conversation, "bob")
        shown = self.window.messages.lines()
        self.assertIn("09:30  bob → you  psst", shown)
        self.assertNotIn("09:30  carol  room talk", shown)
        self.assertEqual(talks.item("bob", "values"), ("",))
        self.assertEqual(self.window.header.title.cget("text"), "bob")
        self.type_line("hello back")
        self.assertEqual(self.client.lines[-1], "/msg bob hello back")
        self.window.header.part_button.invoke()
        self.root.update()
        self.assertIsNone(self.window.conversation)
        self.assertIn("09:30  carol  room talk", self.window.messages.lines())
        self.type_line("to the room")
        self.assertEqual(self.client.lines[-1], "to the room")

    def test_encrypted_private_messages_show_the_lock(self) -> None:
        """
        In a private conversation an end-to-end encrypted message shows the lock, one that could not be opened
        says so (never its envelope), and a clear one from someone with keys says it is not encrypted.
        """
        self.model.apply(OpenedPrivate(5, T0, "bob", "alice", "sealed words", e2e="ENVELOPE"))
        self.model.apply(OpenedPrivate(6, T0, "bob", "alice", "", e2e="ENVELOPE", secrecy=UNREADABLE,
                                       reason="bad-signature"))
        self.model.apply(OpenedPrivate(7, T0, "bob", "alice", "open words", secrecy=CLEAR))
        self.root.update()
        self.window.open_conversation("bob")
        self.root.update()
        shown = self.window.messages.lines()
        self.assertIn("09:30  bob → you  \N{LOCK} sealed words", shown)
        self.assertIn("09:30  bob → you  an encrypted message that could not be decrypted (bad-signature)", shown)
        self.assertIn("09:30  bob → you  open words  (not encrypted)", shown)
        self.assertFalse(any("ENVELOPE" in line for line in shown))

    def test_msg_and_a_person_lead_to_the_conversation(self) -> None:
        """
        C{/msg NICK TEXT} typed, and a double click on a person, show the conversation with them.
        """
        joined(self.model, "#lobby", "bob", "carol")
        self.type_line("/msg carol lunch?")
        self.assertEqual(self.client.lines, ["/msg carol lunch?"])
        self.assertEqual(self.window.conversation, "carol")
        self.model.apply(events.Private(7, T0, "alice", "carol", "lunch?"))
        self.root.update()
        self.assertIn("09:30  you → carol  lunch?", self.window.messages.lines())
        self.assertEqual(self.window.rooms.conversations.selection(), ("carol",))
        self.window.select_room("#lobby")
        self.assertIsNone(self.window.conversation)
        people = self.window.people.tree
        x, y = row_middle(people, "bob")
        for _ in range(2):
            people.event_generate("<ButtonPress-1>", x=x, y=y)
            people.event_generate("<ButtonRelease-1>", x=x, y=y)
        self.root.update()
        self.assertEqual(self.window.conversation, "bob")
        self.assertEqual(self.window.compose.target.cget("text"), "→ bob")

    def test_mentions_alert_while_not_focused(self) -> None:
        """
        A mention or a private message while the window is not focused rings, notifies and flashes the title until
        the focus comes back; the user's own lines, muted rooms and a focused window do not alert.
        """
        joined(self.model, "#lobby", "bob")
        self.window.focused = lambda: False
        self.model.apply(message("#lobby", "alice", "alice here"))
        self.model.apply(message("#lobby", "bob", "no name in it"))
        self.assertEqual((self.bells, self.notified), ([], []))
        self.model.apply(message("#lobby", "bob", "alice: look"))
        self.assertEqual(self.bells, ["bell"])
        self.assertEqual(self.notified, [("chat: #lobby", "09:30  bob  alice: look")])
        pane = self.window.messages.pane
        self.assertIn("line:mention", pane.tag_names(pane.search("alice: look", "1.0", "end")))
        self.assertTrue(str(pane.tag_cget("line:mention", "background")))
        title = self.root.title()
        self.assertTrue(title.startswith("(1) "), title)
        self.clock.advance(alerts.FLASH_SECONDS)
        self.assertFalse(self.root.title().startswith("(1) "))
        self.clock.advance(alerts.FLASH_SECONDS)
        self.assertTrue(self.root.title().startswith("(1) "))
        self.model.apply(events.Private(5, T0, "bob", "alice", "psst"))
        self.assertEqual(len(self.notified), 2)
        self.assertEqual(self.notified[1][0], "chat: bob (private)")
        self.window.end_alert()
        self.assertFalse(self.root.title().startswith("("))
        self.clock.advance(10 * alerts.FLASH_SECONDS)
        self.assertFalse(self.root.title().startswith("("))
        self.model.mute("#lobby")
        self.model.apply(message("#lobby", "bob", "alice again"))
        self.window.focused = lambda: True
        self.model.apply(events.Private(6, T0, "bob", "alice", "psst again"))
        self.assertEqual(len(self.bells), 2)
        self.assertEqual(len(self.notified), 2)

    def test_desktop_notification_with_notify_send(self) -> None:
        """
        With C{notify-send} on the PATH, a notification runs it through the reactor without waiting; without it,
        or with a reactor that cannot run processes, nothing happens and nothing fails.
        """
        from twisted.internet.interfaces import IReactorProcess
        from zope.interface import implementer

        @implementer(IReactorProcess)
        class Spawner:
            def __init__(self) -> None:
                self.spawned: list[tuple[str, list[str]]] = []

            def spawnProcess(self, protocol: Any, executable: str, args: list[str], env: Any = None,  # noqa: N802
                             *rest: Any, **kwargs: Any) -> None:
                self.spawned.append((executable, args))

        spawner = Spawner()
        self.patch(alerts.shutil, "which", lambda name: "/usr/bin/notify-send" if name == "notify-send" else None)
        self.assertTrue(alerts.desktop_notification(spawner, "chat: #lobby", "-bob: alice?"))
        self.assertEqual(spawner.spawned, [("/usr/bin/notify-send",
                                            ["/usr/bin/notify-send", "--app-name=chat", "--", "chat: #lobby",
                                             "-bob: alice?"])])
        self.assertFalse(alerts.desktop_notification(Clock(), "chat", "text"))
        self.patch(alerts.shutil, "which", lambda name: None)
        self.assertFalse(alerts.desktop_notification(spawner, "chat", "text"))
        self.assertEqual(len(spawner.spawned), 1)

    def test_formatting_and_clickable_links(self) -> None:
        """
        Bold, italic, code and addresses show with their own tags (fonts and colours); clicking an address opens it.
        """
        joined(self.model, "#lobby", "bob")
        self.model.apply(message("#lobby", "bob", "*big* and _slanted_ run `make test` at https://example.org/a."))
        self.root.update()
        pane = self.window.messages.pane

        def tags_of(text: str) -> tuple[str, set[str]]:
            start = pane.search(text, "1.0", "end")
            self.assertTrue(start, f"{text!r} is not in the pane")
            return start, set(pane.tag_names(start))

        self.assertIn("09:30  bob  big and slanted run make test at https://example.org/a.",
                      self.window.messages.lines())
        self.assertIn("bold", tags_of("big")[1])
        self.assertIn("italic", tags_of("slanted")[1])
        self.assertIn("code", tags_of("make test")[1])
        start, tags = tags_of("https://")
        self.assertIn("url", tags)
        self.assertNotIn("url", pane.tag_names(f"{start}+21c"))  # the full stop after the address
        fonts = self.window.fonts
        self.assertEqual(str(pane.tag_cget("bold", "font")), str(fonts.chat_bold))
        self.assertEqual(str(pane.tag_cget("code", "font")), str(fonts.code))
        self.assertEqual(str(pane.tag_cget("url", "foreground")), theme.DARK.link)
        pane.see(start)
        self.root.update()
        x, y, _, height = pane.bbox(f"{start}+3c")
        pane.event_generate("<Motion>", x=x + 1, y=y + height // 2)
        pane.event_generate("<ButtonPress-1>", x=x + 1, y=y + height // 2)
        pane.event_generate("<ButtonRelease-1>", x=x + 1, y=y + height // 2)
        self.root.update()
        self.assertEqual(self.opened, ["https://example.org/a"])

    def test_emoji_picker_inserts_at_the_cursor(self) -> None:
        """
        The emoji button opens a grid of the common emoji; clicking one inserts it at the cursor and closes it.
        """
        self.assertEqual(len(emoji_picker.common_emoji()), len(emoji_picker.EMOJI_CODES))
        self.assertTrue(all(not glyph.startswith(":") for glyph in emoji_picker.common_emoji()))
        entry = self.window.compose.entry
        entry.insert(0, "ab")
        entry.icursor(1)
        self.window.compose.emoji_button.invoke()
        self.root.update()
        picker = self.window.compose.picker
        assert picker is not None
        self.assertTrue(picker.open())
        self.assertEqual([label.cget("text") for label in picker.buttons], list(emoji_picker.common_emoji()))
        self.assertEqual(str(picker.buttons[0].cget("background")), theme.DARK.field)
        picker.buttons[0].event_generate("<ButtonRelease-1>")
        self.root.update()
        self.assertFalse(picker.open())
        entry.insert("insert", "!")  # the cursor is after the emoji
        self.assertEqual(entry.get(), "a😀!b")
        self.window.compose.emoji_button.invoke()
        self.root.update()
        picker = self.window.compose.picker
        assert picker is not None
        picker.window.focus_force()
        self.root.update()
        picker.window.event_generate("<Escape>")
        self.root.update()
        self.assertFalse(picker.open())
        self.assertEqual(entry.get(), "a😀!b")

    def test_emoji_have_a_font(self) -> None:
        """
        The fonts on the machine draw emoji (fontconfig finds a font with the glyphs, e.g. Symbola): each emoji of
        the picker is as wide as a letter at least, not a missing-glyph box of zero width.
        """
        if shutil.which("fc-list") is None:
            raise SkipTest("no fc-list")
        found = subprocess.run(["fc-list", ":charset=1f600"], capture_output=True, text=True, check=False).stdout
        self.assertTrue(found.strip(), "no font draws emoji (Debian: apt-get install fonts-symbola)")
        font = self.window.fonts.chat
        for glyph in emoji_picker.common_emoji():
            self.assertGreaterEqual(font.measure(glyph), font.measure("a"), glyph)

    def test_user_theme_file(self) -> None:
        """
        The user's theme.toml changes the colours and fonts of a built-in theme; choosing it is kept in the settings.
        """
        path = self.config / "chat" / "theme.toml"
        path.parent.mkdir(parents=True)
        path.write_text('base = "light"\n[colours]\npane = "#102030"\ntext = "#F0F0F0"\n'
                        '[fonts]\nchat_size = 15\ncode_family = "Noto Mono"\n', encoding="utf-8")
        self.assertEqual(theme.user_theme_path(), path)
        window = self.make_window(settings=settings.ClientSettings())
        window.set_theme("user")
        self.root.update()
        self.assertEqual(window.theme.name, "user")
        self.assertEqual(str(window.messages.pane.cget("background")), "#102030")
        self.assertEqual(window.theme.text, "#f0f0f0")
        self.assertEqual(window.theme.panel, theme.LIGHT.panel)
        self.assertEqual(window.fonts.chat.actual("size"), 15)
        self.assertEqual(window.fonts.code.cget("family"), "Noto Mono")
        self.assertEqual(settings.ClientSettings.load().theme, "user")
        window.set_theme("light")
        self.assertEqual(window.fonts.chat.cget("size"), 11)
        self.assertEqual(settings.ClientSettings.load().theme, "light")
        again = self.make_window(settings=settings.ClientSettings.load())
        self.assertEqual(again.theme.name, "light")

    def test_theme_and_downloads_saved_through_the_client(self) -> None:
        """
        With the client's settings, the window starts in their theme, and a change of theme or downloads folder is
        written to them and saved with the client's C{save_settings}.
        """
        saved = settings.ClientSettings(theme="light")
        calls: list[str] = []
        window = self.make_window(settings=saved, save_settings=lambda: calls.append("save"))
        self.assertEqual(window.theme, theme.LIGHT)
        self.assertEqual(window._theme_name.get(), "light")
        window.set_theme("light")
        self.assertEqual(calls, [])
        window.set_theme("dark")
        self.assertEqual((saved.theme, calls), ("dark", ["save"]))
        window.choose_folder = lambda: str(self.config / "down")
        window.choose_downloads()
        self.assertEqual((saved.downloads, calls), (str(self.config / "down"), ["save", "save"]))
        self.assertFalse((self.config / "chat" / "settings.json").exists())

    def test_bad_user_theme_gives_the_dark_theme_and_a_notice(self) -> None:
        """
        A theme file that is not TOML, or has an unknown key or a bad colour, leaves the dark theme and a notice
        saying why; the choice is not kept.
        """
        path = self.config / "chat" / "theme.toml"
        path.parent.mkdir(parents=True)
        for text, why in (("pane = ", "not TOML"), ('[colours]\npain = "#000000"\n', "unknown colour pain"),
                          ('[colours]\npane = "red"\n', "colours.pane"), ('base = "pink"\n', "base"),
                          ('[fonts]\nsize = 99\n', "fonts.size")):
            path.write_text(text, encoding="utf-8")
            with self.assertRaises(theme.ThemeError) as caught:
                theme.read_theme_file(path)
            self.assertIn(why, str(caught.exception))
        saved = settings.ClientSettings(theme="dark")
        window = self.make_window(settings=saved)
        window.set_theme("user")
        self.root.update()
        self.assertEqual(window.theme.name, "dark")
        self.assertEqual(window._theme_name.get(), "dark")
        self.assertTrue(any(line.startswith("09:30  ! Your theme is not used") and "fonts.size" in line
                            for line in window.messages.lines()), window.messages.lines())
        self.assertEqual(saved.theme, "dark")
        self.assertEqual(settings.ClientSettings.load().theme, "")
        started = self.make_window(theme="user")
        self.assertEqual(started.theme, theme.DARK)
        self.assertTrue(any("Your theme is not used" in line for line in started.messages.lines()))

    def test_unread_divider_when_coming_back(self) -> None:
        """
        Coming back to a room shows the presenter's "new since you last looked" line before the first message that
        came while away, one per room.
        """
        joined(self.model, "#dev", "bob")
        self.model.apply(message("#dev", "bob", "seen", id=1))
        joined(self.model, "#lobby", "bob")
        self.model.apply(message("#dev", "bob", "while away", id=2))
        self.model.apply(message("#dev", "bob", "still away", id=3))
        self.window.select_room("#dev")
        self.model.make_current("#dev")
        self.root.update()
        shown = [line for line in self.window.messages.lines() if "bob" in line or "looked" in line]
        self.assertEqual(shown, ["09:30  bob  seen", "── new since you last looked ──", "09:30  bob  while away",
                                 "09:30  bob  still away"])
        pane = self.window.messages.pane
        self.assertIn("line:unread", pane.tag_names(pane.search("new since", "1.0", "end")))
        self.model.make_current("#lobby")
        self.model.apply(message("#dev", "bob", "later", id=4))
        self.model.make_current("#dev")
        self.root.update()
        shown = [line for line in self.window.messages.lines() if "bob" in line or "looked" in line]
        self.assertEqual(shown, ["09:30  bob  seen", "09:30  bob  while away", "09:30  bob  still away",
                                 "── new since you last looked ──", "09:30  bob  later"])


class ConnectDialogTests(SynchronousTestCase):
    """
    L{dialogs.ConnectDialog}: the fields become the command line of C{chat-client}.
    """

    def dialog(self, *argv: str) -> Any:
        root = make_root(self)
        root.withdraw()
        options = ClientOptions()
        options.parseOptions(list(argv))
        return dialogs.ConnectDialog(root, options)

    def test_fields_become_options_and_account(self) -> None:
        """
        Host, port, nick, password and TLS give the options and the account to log in with.
        """
        dialog = self.dialog("--host", "chat.example.org")
        dialog.nick.set("alice")
        dialog.password.set("s3cret-pass")
        dialog.tls.set(True)
        dialog._tls_toggled()
        self.assertEqual(dialog.port.get(), "6697")
        dialog.submit()
        assert dialog.result is not None
        options, account = dialog.result
        self.assertEqual((options["host"], options["port"], options["tls"], options["nick"]),
                         ("chat.example.org", 6697, 1, "alice"))
        self.assertEqual(account, Account("alice", "s3cret-pass"))

    def test_guest_without_password(self) -> None:
        """
        An empty password means a guest nick.
        """
        dialog = self.dialog()
        dialog.nick.set("bob")
        dialog.submit()
        assert dialog.result is not None
        self.assertEqual((dialog.result[0]["port"], dialog.result[1]), (8888, Account("bob", None)))

    def test_bad_fields_keep_the_dialog(self) -> None:
        """
        No nick, a bad port or an unreadable CA file say what is wrong, and the dialog stays.
        """
        dialog = self.dialog()
        dialog.submit()
        self.assertEqual(dialog.error.cget("text"), "Choose a nickname.")
        dialog.nick.set("bob")
        dialog.port.set("99999")
        dialog.submit()
        self.assertEqual(dialog.error.cget("text"), "port must be 1 to 65535, not 99999")
        dialog.port.set("6697")
        dialog.tls.set(True)
        dialog.cafile.set("/nonexistent/ca.pem")
        dialog.submit()
        self.assertIn("cannot read cafile /nonexistent/ca.pem", dialog.error.cget("text"))
        self.assertIsNone(dialog.result)
        self.assertTrue(dialog.top.winfo_exists())


class CommandLineTests(SynchronousTestCase):
    """
    C{chat-tk} takes the options of C{chat-client}, under its own name.
    """

    def test_same_options_own_name(self) -> None:
        """
        L{dialogs.TkOptions} parses a command line exactly as L{ClientOptions} does, and says C{chat-tk}.
        """
        argv = ["--host", "h", "--tls", "--cafile", "/x.pem", "--downloads", "/d", "-P", "maya"]
        tk_options, client_options = dialogs.TkOptions(), ClientOptions()
        tk_options.parseOptions(argv)
        client_options.parseOptions(argv)
        self.assertEqual(dict(tk_options), dict(client_options))
        self.assertTrue(str(tk_options).startswith("Usage: chat-tk [options] [NICK]"))

    def test_usage_error(self) -> None:
        """
        A bad command line exits with status 2 and one line saying why, before any window opens.
        """
        written: list[str] = []
        self.patch(sys, "stderr", type("Err", (), {"write": lambda self, text: written.append(text)})())
        error = self.assertRaises(SystemExit, chat_tk.main, ["--cafile", "/x.pem"])
        self.assertEqual(error.code, 2)
        self.assertTrue(written[-1].endswith("\nchat-tk: --cafile and --insecure need --tls or --starttls\n"))

    def test_runs_as_a_module(self) -> None:
        """
        C{python -m chat.client.tk} is C{chat-tk}: a bad command line exits with status 2 and says so.
        """
        done = subprocess.run([sys.executable, "-m", "chat.client.tk", "--insecure"], capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(done.returncode, 2)
        self.assertTrue(done.stderr.startswith("Usage: chat-tk [options] [NICK]"))
        self.assertTrue(done.stderr.endswith("\nchat-tk: --cafile and --insecure need --tls or --starttls\n"))


# The window against a real daemon


class LiveTests(TestCase):
    """
    A L{tk_window.ChatWindow} on a L{ChatClient} connected to a real daemon, with the reactor pumping Tk
    (L{tksupport}); the other side is a blocking JSON client run in a thread.
    """

    timeout = 60

    def setUp(self) -> Deferred[None]:
        self.daemon = Daemon("--in-memory").start()
        self.addCleanup(self.daemon.stop)
        self.root = make_root(self)
        self.root.geometry("1120x700")
        self.downloads = Path(tempfile.mkdtemp(prefix="chat-tk-"))
        self.addCleanup(shutil.rmtree, self.downloads, True)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.daemon.port, timeout=5)
        self.client = ChatClient(reactor, endpoint, Account("alice"), where=f"127.0.0.1:{self.daemon.port}",
                                 downloads=self.downloads, retry_policy=lambda failures: 0.2)
        self.window = tk_window.ChatWindow(self.root, self.client, clock=reactor, on_exit=lambda: None)
        self.addCleanup(self.window.close)
        tksupport.install(self.root)
        self.addCleanup(tksupport.uninstall)
        self.client.startService()
        self.addCleanup(self.stop_client)
        self.others: list[Client] = []
        self.addCleanup(self.close_others)
        return self.until(lambda: self.client.model.state == State.ONLINE and self.room() == "#lobby",
                          "alice online in #lobby")

    def stop_client(self) -> Deferred[None] | None:
        return self.client.stopService() if self.client.running else None

    def close_others(self) -> None:
        for other in self.others:
            other.close()

    def room(self) -> str | None:
        current = self.client.model.current
        return current.name if current is not None else None

    def until(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> Deferred[None]:
        """
        Fires once C{predicate} holds (checked every 20 ms while the reactor and Tk run).
        """
        async def wait() -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                if time.monotonic() > deadline:
                    raise AssertionError(f"not within {timeout} s: {what}\npane:\n"
                                         + "\n".join(self.window.messages.lines(visible=False)))
                await deferLater(reactor, 0.02, lambda: None)

        return Deferred.fromCoroutine(wait())

    async def other(self, nick: str) -> Client:
        """
        Connect another user (JSON) in a thread.
        """
        client: Client = await deferToThread(Client.json, self.daemon.port, nick)
        self.others.append(client)
        return client

    def people(self) -> list[str]:
        return [str(self.window.people.tree.item(i, "text")) for i in self.window.people.tree.get_children()]

    async def type_line(self, text: str) -> None:
        entry = self.window.compose.entry
        entry.focus_force()
        entry.delete(0, "end")
        entry.insert(0, text)
        self.root.update()
        entry.event_generate("<Return>")

    def test_typed_message_reaches_another_client(self) -> Deferred[None]:
        """
        A line typed in the window and sent with Enter reaches another user, and shows in the pane.
        """
        async def run() -> None:
            bob = await self.other("bob")
            await self.type_line("hello bob")
            said = await deferToThread(bob.expect_event, "message", {"from": "alice"}, timeout=WAIT)
            self.assertEqual((said["room"], said["text"]), ("#lobby", "hello bob"))
            await self.until(lambda: any(line.endswith("alice  hello bob") for line in self.window.messages.lines()),
                             "the echo in the pane")
            self.assertEqual(self.window.compose.entry.get(), "")

        return Deferred.fromCoroutine(run())

    def test_people_list_follows_join_and_quit(self) -> None | Deferred[None]:
        """
        Another user joining appears in the people list with the count; quitting removes them; the operator is marked.
        """
        async def run() -> None:
            # alice, first in #lobby, is its operator (PROTOCOL.md section 10): marked, and listed first.
            await self.until(lambda: self.people() == ["@alice"], "alice alone")
            bob = await self.other("bob")
            await self.until(lambda: self.people() == ["@alice", "bob"], "bob in the list")
            self.assertEqual(self.window.people.heading.cget("text"), "PEOPLE · 2 ONLINE")
            await deferToThread(bob.send_line, "/quit")
            await self.until(lambda: self.people() == ["@alice"], "bob gone from the list")
            self.assertEqual(self.window.people.heading.cget("text"), "PEOPLE · 1 ONLINE")
            self.assertTrue(any("bob quit" in line for line in self.window.messages.lines()))

        return Deferred.fromCoroutine(run())

    def test_operator_kicks_from_the_menu(self) -> Deferred[None]:
        """
        The operator's menu kicks bob with the reason asked (bob gets the kick); the window says so and bob leaves.
        """
        async def run() -> None:
            bob = await self.other("bob")
            await self.until(lambda: self.people() == ["@alice", "bob"], "bob in the list")
            self.window.ask_moderation = lambda title, prompt, durations: ("", "off topic")
            [kick] = [a for a in status.person_actions(self.client.model, "bob") if a.kind == "kick"]
            self.window.person_action(kick, "bob")
            kicked = await deferToThread(bob.expect_event, "kick", {"nick": "bob"}, timeout=WAIT)
            self.assertEqual((kicked["room"], kicked["by"], kicked["reason"]), ("#lobby", "alice", "off topic"))
            await self.until(lambda: self.people() == ["@alice"], "bob gone from the list")
            self.assertTrue(any(line.endswith("bob was kicked from #lobby by alice (off topic)")
                                for line in self.window.messages.lines()))

        return Deferred.fromCoroutine(run())

    def test_room_list_switches_rooms(self) -> Deferred[None]:
        """
        A room joined shows in the room list; clicking another room makes it current, where lines then go.
        """
        async def run() -> None:
            bob = await self.other("bob")
            await self.type_line("/join #dev")
            await self.until(lambda: self.room() == "#dev" and self.window.rooms.tree.exists("#dev"), "#dev current")
            self.assertEqual(self.window.rooms.tree.selection(), ("#dev",))
            self.root.update()
            rooms = self.window.rooms.tree
            x, y, _, height = rooms.bbox("#lobby")  # type: ignore[misc]
            rooms.event_generate("<ButtonPress-1>", x=x + 20, y=y + height // 2)
            rooms.event_generate("<ButtonRelease-1>", x=x + 20, y=y + height // 2)
            await self.until(lambda: self.room() == "#lobby", "#lobby current again")
            self.assertEqual(self.window.header.title.cget("text"), "#lobby")
            await self.type_line("back in the lobby")
            said = await deferToThread(bob.expect_event, "message", {"from": "alice"}, timeout=WAIT)
            self.assertEqual((said["room"], said["text"]), ("#lobby", "back in the lobby"))

        return Deferred.fromCoroutine(run())

    def test_file_to_a_person_reaches_100_percent(self) -> Deferred[None]:
        """
        Send file to the person selected uploads the file: its progress bar reaches 100% and they get the offer.
        """
        async def run() -> None:
            bob = await self.other("bob")
            await self.until(lambda: "bob" in self.people(), "bob in the list")
            data = os.urandom(300 * 1024)
            source = self.downloads / "holiday.jpg"
            source.write_bytes(data)
            self.window.people.tree.selection_set("bob")
            self.window.choose_file = lambda: str(source)
            self.root.update()
            self.window.files.send_button.invoke()
            await self.until(lambda: any(float(r.bar.cget("value")) == 100.0 and r.transfer.finished
                                         for r in self.window.files.transfer_rows.values()), "the upload at 100%")
            (row,) = self.window.files.transfer_rows.values()
            self.assertEqual((row.title.cget("text"), row.detail.cget("text")),
                             ("↑ holiday.jpg → bob", "Done · 300.0 KiB"))
            offer = await deferToThread(bob.expect_event, "file-offer", {"from": "alice"}, timeout=WAIT)
            self.assertEqual((offer["to"], offer["name"], offer["size"], offer["sha256"]),
                             ("bob", "holiday.jpg", len(data), hashlib.sha256(data).hexdigest()))

        return Deferred.fromCoroutine(run())

    def test_offer_downloads_with_the_button(self) -> Deferred[None]:
        """
        A file another user offers shows in the files panel; Download saves it in the downloads folder.
        """
        async def run() -> None:
            bob = await self.other("bob")
            data = os.urandom(100 * 1024)

            def upload() -> None:
                bob.send_line(f"/upload alice notes.bin {len(data)} {hashlib.sha256(data).hexdigest()}")
                bob.expect_event("upload-ready")
                bob.send(data)
                bob.expect_event("upload-done")

            await deferToThread(upload)
            await self.until(lambda: len(self.window.files.offer_rows) == 1, "the offer in the panel")
            (row,) = self.window.files.offer_rows.values()
            row.button.invoke()
            await self.until(lambda: any(r.transfer.finished for r in self.window.files.transfer_rows.values()),
                             "the download done")
            (done,) = self.window.files.transfer_rows.values()
            self.assertEqual(done.detail.cget("text"), "Done · 100.0 KiB")
            self.assertEqual(str(row.button.cget("text")), "Saved")
            self.assertEqual((self.downloads / "notes.bin").read_bytes(), data)

        return Deferred.fromCoroutine(run())

    def test_leave_and_reconnect(self) -> Deferred[None]:
        """
        Disconnect leaves while the window stays; Reconnect comes back online in the same room.
        """
        async def run() -> None:
            self.window.rooms.server_button.invoke()
            await self.until(lambda: self.client.model.state == State.DISCONNECTED, "disconnected")
            self.assertEqual(self.window.rooms.server_button.cget("text"), "Reconnect")
            self.assertTrue(self.window.status.label.cget("text").startswith("Disconnected"))
            self.window.rooms.server_button.invoke()
            await self.until(lambda: self.client.model.state == State.ONLINE, "online again")
            self.assertEqual(self.window.rooms.server_button.cget("text"), "Disconnect")

        return Deferred.fromCoroutine(run())

    def test_message_goes_to_the_selected_room_after_reconnect(self) -> Deferred[None]:
        """
        After Reconnect, a line typed goes to the room selected in the window, as before.
        """
        async def run() -> None:
            bob = await self.other("bob")
            await deferToThread(bob.send_line, "/join #dev")
            await self.type_line("/join #dev")
            await self.until(lambda: self.room() == "#dev", "#dev current")
            rooms = self.window.rooms.tree
            self.root.update()
            x, y = row_middle(rooms, "#lobby")
            rooms.event_generate("<ButtonPress-1>", x=x, y=y)
            rooms.event_generate("<ButtonRelease-1>", x=x, y=y)
            await self.until(lambda: self.room() == "#lobby", "#lobby selected")
            self.window.rooms.server_button.invoke()
            await self.until(lambda: self.client.model.state == State.DISCONNECTED, "disconnected")
            self.window.rooms.server_button.invoke()
            await self.until(lambda: self.client.model.state == State.ONLINE
                             and {"#dev", "#lobby"} <= set(self.client.model.rooms), "online again in both rooms")
            await deferLater(reactor, 0.3, lambda: None)  # the joins again are answered
            selected = rooms.selection()[0]
            await self.type_line("which room?")
            said = await deferToThread(bob.expect_event, "message", {"from": "alice"}, timeout=WAIT)
            self.assertEqual((said["room"].lower(), said["text"]), (selected, "which room?"))

        return Deferred.fromCoroutine(run())

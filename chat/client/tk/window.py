# -*- test-case-name: tests.test_client_tk -*-
"""
The C{chat-tk} main window: it lays out the panels, observes the
L{ChatModel}, hands each change to the panels it concerns and the
presenter's lines to the message pane, and calls the client's methods
for what the user asks. No network or disk work happens in it.
"""

from __future__ import annotations

import tkinter as tk
import webbrowser
from collections.abc import Callable, Sequence
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from tkinter import filedialog, simpledialog, ttk
from typing import Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat import events
from chat.client.model import (
    Change,
    ChatModel,
    ConnectionChanged,
    Notice,
    RoomsChanged,
    State,
    TransferChanged,
    UsersChanged,
)
from chat.client.overview import notifies
from chat.client.present import WINDOW, Line, Presenter
from chat.client.settings import ClientSettings
from chat.client.status import BAN_DURATIONS, PersonAction, person_actions, window_title
from chat.client.tk.alerts import TitleAlert, desktop_notification
from chat.client.tk.conversation import (
    Banner,
    InputLine,
    MessagePane,
    RoomHeader,
    conversation_tag,
    room_tag,
)
from chat.client.tk.dialogs import ModerationDialog
from chat.client.tk.files import FilesPanel
from chat.client.tk.panels import PeoplePanel, RoomsPanel, StatusBar
from chat.client.tk.theme import (
    DARK,
    THEME_FILE,
    THEMES,
    USER_THEME,
    Fonts,
    Theme,
    choose_theme,
    style_window,
)

EXIT_GRACE = 2.0
"""Seconds Exit waits for the goodbye to be sent before closing anyway."""

MIN_SIZE = (760, 480)
DEFAULT_SIZE = (1120, 700)
"""The window's first size, made smaller to fit a smaller screen (never below L{MIN_SIZE})."""
"""The smallest the window can be made, in pixels (width, height)."""

WIDE = 1040
"""From this width in pixels on, the side columns take their full width."""

SIDES = {True: (176, 296), False: (164, 256)}
"""The widths in pixels of the left and right columns, wide or not."""

OFFLINE_COMMANDS = ("/quit", "/exit", "/help")
"""What a line may start with to be taken while not connected."""



class ChatSession(Protocol):
    """
    What L{ChatWindow} uses of a L{chat.client.service.ChatClient}.
    """

    model: ChatModel
    downloads: Path
    where: str

    def input(self, line: str) -> None:
        """Run a line typed by the user, as the terminal client does."""

    def send_file(self, target: str, path: Path) -> None:
        """Offer the file at C{path} to C{target}, a nick or C{#room}."""

    def get_file(self, offer_id: int, folder: Path | None = None) -> None:
        """Download an offer into C{folder}, by default L{downloads}."""

    def leave(self) -> Deferred[None]:
        """Disconnect, keeping the session for L{reconnect}."""

    def reconnect(self) -> None:
        """Connect again after L{leave}."""

    def quit(self, reason: str = "") -> Deferred[None]:
        """Say goodbye and stop; fires once the connection is closed."""


class ChatWindow:
    """
    The main window: the server (Disconnect, Exit) and the rooms on the
    left; the room's header (Leave room), a banner while reconnecting, the
    message pane and the input line in the middle; the people and the
    files on the right; a status bar below. It observes C{client.model}
    and calls C{client}'s methods; it never reads a socket or a file.
    Buttons and lists do not keep the keyboard focus: it stays in (or goes
    back to) the input line.

    Plain lines go to the room selected: the daemon sends them to its own
    current room, which after a reconnection (rooms joined again, C{#lobby}
    first) can differ from the one selected; the window then makes the
    selected room current (C{/join}) before the line.

    @ivar rooms: the rooms panel, with the server's buttons.
    @ivar header: the current room's name and topic, and Leave room.
    @ivar banner: the reconnection banner.
    @ivar messages: the message pane.
    @ivar compose: the input line.
    @ivar people: the people of the current room.
    @ivar files: the offers and transfers.
    @ivar status: the status bar.
    @ivar choose_file: asks for a file to send; returns its path, or an
        empty string when the user cancelled.
    @ivar choose_folder: asks for the downloads folder, likewise.
    @ivar ask_room: asks for the name of a room to join; returns it, or
        C{None} or an empty string when the user cancelled.
    @ivar conversation: the nick of the private conversation shown instead
        of the current room, or C{None}.
    @ivar focused: whether the window has the keyboard focus: alerts
        (L{chat.client.overview.notifies}) ring and flash only when it has not.
    @ivar notify: shows a desktop notification (summary, body); by default
        L{desktop_notification}.
    @ivar open_url: opens an address clicked in the pane (the browser).
    """

    _log = Logger()

    def __init__(
        self,
        root: tk.Tk,
        client: ChatSession,
        *,
        clock: IReactorTime | None = None,
        on_exit: Callable[[], None] | None = None,
        theme: str | None = None,
        zone: tzinfo | None = None,
        settings: ClientSettings | None = None,
        save_settings: Callable[[], object] | None = None,
    ) -> None:
        """
        @param clock: schedules the throttled redraws and the end of the
            error shown in the status bar, and dates the lines of events
            without a time of their own; the global reactor by default.
        @param on_exit: called once Exit is done (the goodbye sent, or
            L{EXIT_GRACE} seconds passed): stops the program. By default
            the root window is destroyed.
        @param theme: C{dark}, C{light} or C{user} (L{chat.client.tk.theme.user_theme_path});
            by default the one of C{settings}, else dark.
        @param zone: the time zone of timestamps; the local one by default.
        @param settings: the client's settings, where the theme chosen is
            kept (saved when it changes); none are saved without them.
        @param save_settings: writes C{settings} (the client's
            C{save_settings}, after a change of theme or downloads folder);
            by default C{settings.save}.
        """
        if clock is None:
            from twisted.internet import reactor as global_reactor

            clock = global_reactor
        assert clock is not None
        self.root = root
        self.client = client
        self.model = client.model
        self.presenter = Presenter(self.model, WINDOW, zone)
        self._clock = clock
        self._on_exit = on_exit or root.destroy
        self.settings = settings
        self._save_settings = save_settings or (settings.save if settings is not None else None)
        self.fonts = Fonts.create(root)
        self.theme = DARK
        self._theme_problem: str | None = None
        name = theme or (settings.theme if settings is not None else "") or DARK.name
        self.theme = self._load_theme(name)
        self.style = style_window(root, self.theme, self.fonts)
        self.conversation: str | None = None
        self.focused: Callable[[], bool] = lambda: self.root.focus_displayof() is not None
        self.notify: Callable[[str, str], object] = lambda summary, body: desktop_notification(
            self._clock, summary, body)
        self.open_url: Callable[[str], object] = webbrowser.open
        self._title = TitleAlert(self._clock, self.root.title, lambda: window_title(self.model, self.client.where))
        self._current_key: str | None = None
        self._looked: str | None = None  # the view tag last told to the model
        self.choose_file: Callable[[], str] = lambda: filedialog.askopenfilename(
            parent=self.root, title="Send a file")
        self.choose_folder: Callable[[], str] = lambda: filedialog.askdirectory(
            parent=self.root, title="Downloads folder", initialdir=str(self.client.downloads), mustexist=False)
        self.ask_room: Callable[[], str | None] = lambda: simpledialog.askstring(
            "Join a room", "Room name (#dev):", parent=self.root)
        self.ask_moderation: Callable[[str, str, tuple[tuple[str, str], ...]], tuple[str, str] | None] = (
            lambda title, prompt, durations: ModerationDialog(self.root, title, prompt, durations).run())
        self.person_menu: tk.Menu | None = None
        self._last_state = self.model.state
        self._asserted: str | None = None  # the room the daemon was last told is current, lower case
        self._rejoining = False  # reconnected, and no line sent since
        self._wide: bool | None = None
        self._exiting = False
        self._closed = False

        root.title("chat")
        root.geometry("{}x{}".format(*first_size(root.winfo_screenwidth(), root.winfo_screenheight())))
        root.minsize(*MIN_SIZE)
        root.option_add("*TButton.takeFocus", "0")  # clicking a button leaves the focus in the input
        self._theme_name = tk.StringVar(root, value=self.theme.name)
        self._build_menu()
        self._build()
        self._apply_colours()
        root.protocol("WM_DELETE_WINDOW", self.exit)
        root.bind("<Control-q>", lambda e: self.exit())
        root.bind("<FocusIn>", lambda e: self.end_alert(), add="+")
        self.model.observe(self.show)
        self._refresh_all()
        self.compose.entry.focus_set()
        if self._theme_problem is not None:
            self.model.notice(self._theme_problem, "error")

    # Building

    def _build_menu(self) -> None:
        self.menu = tk.Menu(self.root, tearoff=False, borderwidth=0, relief="flat")
        self.chat_menu = tk.Menu(self.menu, tearoff=False)
        self.chat_menu.add_command(label="Send file…", command=self.send_file)
        self.chat_menu.add_command(label="Downloads folder…", command=self.choose_downloads)
        self.chat_menu.add_separator()
        self.chat_menu.add_command(label="Join room…", command=self.join_room)
        self.chat_menu.add_command(label="Leave room", command=self.part_room)
        self.chat_menu.add_separator()
        self.chat_menu.add_command(label="Disconnect", command=self.leave_or_reconnect)
        self._server_entry = 6
        self.chat_menu.add_command(label="Exit", command=self.exit, accelerator="Ctrl+Q")
        self.view_menu = tk.Menu(self.menu, tearoff=False)
        for name in THEMES:
            self.view_menu.add_radiobutton(label=f"{name.title()} theme", value=name, variable=self._theme_name,
                                           command=lambda: self.set_theme(self._theme_name.get()))
        self.view_menu.add_radiobutton(label=f"Your theme ({THEME_FILE})", value=USER_THEME,
                                       variable=self._theme_name, command=lambda: self.set_theme(USER_THEME))
        self.menu.add_cascade(label="Chat", menu=self.chat_menu)
        self.menu.add_cascade(label="View", menu=self.view_menu)
        self.root.configure(menu=self.menu)

    def _build(self) -> None:
        root, fonts, client = self.root, self.fonts, self.client
        root.columnconfigure(0, weight=1)
        root.rowconfigure(0, weight=1)
        main = ttk.Frame(root)
        main.grid(row=0, column=0, sticky="nsew")
        main.columnconfigure(2, weight=1)
        main.rowconfigure(0, weight=1)

        self.rooms = RoomsPanel(main, self.model, client.where, on_select=self.select_room, on_join=self.join_room,
                                on_server=self.leave_or_reconnect, on_exit=self.exit,
                                on_conversation=self.open_conversation)
        self.rooms.frame.grid(row=0, column=0, sticky="nsew")
        ttk.Frame(main, style="Rule.TFrame", width=1).grid(row=0, column=1, sticky="ns")

        centre = ttk.Frame(main)
        centre.grid(row=0, column=2, sticky="nsew")
        centre.columnconfigure(0, weight=1)
        centre.rowconfigure(2, weight=1)
        self.header = RoomHeader(centre, fonts, on_part=self.part_room)
        self.header.frame.grid(row=0, column=0, sticky="ew")
        self.banner = Banner(centre, fonts)
        self.banner.frame.grid(row=1, column=0, sticky="ew")
        self.banner.hide()
        self.messages = MessagePane(centre, fonts, on_offer=lambda offer_id: self.files.download(offer_id),
                                    on_url=lambda url: self.open_url(url))
        self.messages.frame.grid(row=2, column=0, sticky="nsew")
        self.compose = InputLine(centre, fonts, on_line=self._send_line,
                                 page=lambda pages: self.messages.pane.yview_scroll(pages, "pages"))
        self.compose.frame.grid(row=3, column=0, sticky="ew")
        self.messages.typed = self.compose.type_in
        ttk.Frame(main, style="Rule.TFrame", width=1).grid(row=0, column=3, sticky="ns")

        self.right = right = ttk.Frame(main, style="Panel.TFrame", width=296, padding=(0, 12, 0, 0))
        right.grid(row=0, column=4, sticky="nsew")
        right.grid_propagate(False)
        right.columnconfigure(0, weight=1)
        right.rowconfigure(1, weight=2)
        right.rowconfigure(4, weight=3)
        self.people = PeoplePanel(right, self.model, on_refresh=lambda: client.input("/list"),
                                  on_select=self._show_target,
                                  on_open=self.open_conversation, on_menu=self.open_person_menu)
        self.files = FilesPanel(right, self.model, fonts, self._clock, on_send=self.send_file,
                                on_download=lambda offer_id: client.get_file(offer_id), on_folder=self.choose_downloads)
        self.status = StatusBar(root, fonts, self._clock)
        for tree in (self.rooms.tree, self.people.tree):
            # A list takes the focus when clicked; give it back to the input line.
            tree.bind("<ButtonRelease-1>", lambda e: self._refocus(), add="+")
        root.bind("<Configure>", self._resized, add="+")
        self._resized()

    def _refocus(self) -> None:
        if not self._closed:
            self.compose.entry.focus_set()

    def _resized(self, event: tk.Event[tk.Misc] | None = None) -> None:
        """
        Narrow the side columns below L{WIDE} pixels, so that the middle keeps room at L{MIN_SIZE}.
        """
        if event is not None and event.widget is not self.root:
            return
        width = event.width if event is not None else self.root.winfo_width()
        wide = width >= WIDE or width <= 1  # 1: not drawn yet, at the default size
        if wide != self._wide:
            self._wide = wide
            left, right = SIDES[wide]
            self.rooms.frame.configure(width=left)
            self.right.configure(width=right)
            self.files.set_width(right)
            self.rooms.show_server(self.fonts)

    def _apply_colours(self) -> None:
        """
        Colour what ttk styles do not reach: the pane and its tags, the menus, the canvas, list rows.
        """
        t, f = self.theme, self.fonts
        self.root.configure(background=t.window)
        self.messages.apply_theme(t, f)
        self.compose.apply_theme(t)
        for menu in (self.menu, self.chat_menu, self.view_menu):
            menu.configure(background=t.panel, foreground=t.text, activebackground=t.select,
                           activeforeground=t.text, selectcolor=t.accent, font=f.base)
        self.files.apply_theme(t, f)
        self.people.apply_theme(t, f)
        self.rooms.apply_theme(t, f)

    def _load_theme(self, name: str) -> Theme:
        """
        The theme C{name} with its fonts chosen (L{choose_theme}); why it is
        not the one asked for, if it is not, in L{_theme_problem}.
        """
        theme, fonts, self._theme_problem = choose_theme(name)
        self.fonts.choose(fonts)
        return theme

    def set_theme(self, name: str) -> None:
        """
        Switch to the theme C{name} (C{dark}, C{light} or C{user}), and keep
        the choice in the settings. A user theme that cannot be used leaves
        the dark theme and a notice, and is not kept.
        """
        self.theme = self._load_theme(name)
        self._theme_name.set(self.theme.name)
        self.style = style_window(self.root, self.theme, self.fonts)
        self._apply_colours()
        self._refresh_all()
        if self._theme_problem is not None:
            self.model.notice(self._theme_problem, "error")
        elif self.settings is not None and self.settings.theme != name:
            self.settings.theme = name
            if self._save_settings is not None:
                self._save_settings()

    # Observing the model

    def show(self, change: Change) -> None:
        """
        Render one change of the model: the presenter's lines in the pane,
        and the panels and status bar it concerns. Called by the model, in
        order.
        """
        if self._closed:
            return
        match change:
            case TransferChanged(transfer=transfer):
                self.files.transfer_changed(transfer)
                return
            case RoomsChanged():
                self._refresh_rooms()
                return
            case UsersChanged(room=room):
                current = self.model.current
                if current is not None and current.name.lower() == room.lower():
                    self._refresh_users()
                return
            case ConnectionChanged(state=state):
                if state == State.CONNECTED:
                    # A new connection: the daemon chooses the current room again, and while the client
                    # joins the rooms again its joins and the daemon's current room part ways.
                    self._asserted = None
                    self._rejoining = bool(self.model.rooms)
                if state == State.CONNECTING:
                    self.banner.show(f"Connecting to {self.client.where}…")
                elif self.banner.shown():
                    self.banner.hide()
                self._refresh_status()
                self._refresh_users()
                return
            case Notice() if self.model.state == State.CONNECTING:
                # While connecting, what happens shows in the banner, each notice replacing the last.
                self.banner.show(f"Connecting… {change.text}")
                if change.level == "error":
                    self.status.show_error(change.text)
                return
            case events.Joined(room=room, nick=nick) if nick.lower() == self.model.nick.lower():
                if not self._rejoining:
                    self._asserted = room.lower()
            case events.Parted(nick=nick) | events.Kicked(nick=nick) if nick.lower() == self.model.nick.lower():
                self._asserted = None  # the daemon chooses the next current room
            case Notice(level="error") | events.Error():
                self.status.show_error(change.text if isinstance(change, Notice) else change.message)
            case events.Registered() | events.Welcome():
                self._refresh_status()
            case events.Topic():
                self._refresh_rooms()
            case events.FileOffer():
                self.files.add_offer(change)
            case events.Users() if change.room.lower() in self.model.rooms:
                return  # the people panel shows it
            case events.Private():
                self._refresh_rooms()  # the conversations and their unread counts
        lines = self.presenter.lines(change, self._now())
        self.messages.append(lines)
        self._alert(lines)

    # Alerts

    def _alert(self, lines: Sequence[Line]) -> None:
        """
        Ring, flash the title and show a desktop notification for the lines
        that L{notifies} (a mention, a private message) while the window
        does not have the focus.
        """
        alerting = [line for line in lines if notifies(line, self.model)]
        if not alerting or self.focused():
            return
        self.root.bell()
        line = alerting[-1]
        where = line.room or (f"{line.conversation} (private)" if line.conversation else "chat")
        self.notify(f"chat: {where}", line.text)
        self._title.alert(len(alerting))

    def end_alert(self) -> None:
        """
        The window has the focus: stop flashing and give the title back.
        """
        if not self._closed:
            self._title.end()

    # Views: a room or a private conversation

    def select_room(self, name: str) -> None:
        """
        Show the room C{name} (clicked in the list): the current room again,
        after a private conversation, or another one made current (C{/join}).
        """
        current = self.model.current
        if current is not None and current.name.lower() == name.lower():
            self.conversation = None
            self._refresh_rooms()
        else:
            self._join(name)

    def open_conversation(self, nick: str) -> None:
        """
        Show the private conversation with C{nick}: its lines, and plain
        lines typed go to them (C{/msg}); not with oneself.
        """
        if nick.lower() == self.model.nick.lower():
            return
        self.conversation = nick
        self._refresh_rooms()
        self._refocus()

    def close_conversation(self) -> None:
        """
        Go back from a private conversation to the current room.
        """
        self.conversation = None
        self._refresh_rooms()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), timezone.utc)

    def close(self) -> None:
        """
        Stop rendering and cancel the timers (before the root is destroyed).
        """
        if not self._closed:
            self.model.unobserve(self.show)
        self._title.stop()
        self._closed = True
        self.files.close()
        self.status.close()

    def _refresh_all(self) -> None:
        self._refresh_rooms()
        self._refresh_status()
        self.files.show_downloads(self.client.downloads)
        self.files.redraw()

    def _refresh_rooms(self) -> None:
        current = self.model.current
        key = current.name.lower() if current is not None else None
        if key != self._current_key:
            self._current_key = key
            self.conversation = None  # another room became current: it is shown
        shown = conversation_tag(self.conversation) if self.conversation is not None else (
            room_tag(current.name) if current is not None else None)
        if shown is not None and shown != self._looked:
            self._looked = shown
            self.model.look(self.conversation or (current.name if current is not None else ""))
            return  # the model tells RoomsChanged: shown then
        self.rooms.show(self.conversation)
        if self.conversation is not None:
            self.header.show_conversation(self.conversation)
            self.messages.show_conversation(self.conversation)
        else:
            self.header.show(self.model)
            self.messages.show_room(current.name if current is not None else None)
        self._refresh_users()

    def _refresh_users(self) -> None:
        self.people.show()
        self._show_target()

    def _show_target(self) -> None:
        current = self.model.current
        if self.conversation is not None:
            self.compose.show_target(f"→ {self.conversation}")
        else:
            self.compose.show_target(current.name if current is not None else "")
        self.files.show_target(self.file_target())

    def _refresh_status(self) -> None:
        model = self.model
        if model.state == State.ONLINE and self._last_state != State.ONLINE:
            self.status.clear_error()  # what went wrong before is over
        self._last_state = model.state
        self.status.show(model, self.client.where, self.theme)
        self.rooms.show_state(model.state)
        self.chat_menu.entryconfigure(self._server_entry,
                                      label="Reconnect" if model.state == State.DISCONNECTED else "Disconnect")
        self._title.show()
        self.rooms.show_server(self.fonts)

    # What the user asks

    def _send_line(self, line: str) -> bool:
        """
        Hand a line typed to the client, the selected room made current
        first for a plain line when the daemon may think otherwise.

        @return: whether the line was taken; while not connected, only
            L{OFFLINE_COMMANDS} are, and other lines stay in the input.
        """
        command = line.startswith("/") and not line.startswith("//")
        if self.model.state in (State.DISCONNECTED, State.CONNECTING) and not line.lower().startswith(
                OFFLINE_COMMANDS):
            self.status.show_error(f"Not connected to {self.client.where}: the line stays until you send it again.")
            return False
        self.messages.scroll_to_end()
        current = self.model.current
        word = line.split(maxsplit=1)[0].lower() if line.strip() else ""
        words = line.split(maxsplit=2)
        if word == "/msg" and len(words) > 1:
            self.open_conversation(words[1])
        elif self.conversation is not None and not command:
            # In a private conversation, plain lines go to the other person.
            self.client.input(f"/msg {self.conversation} {line[1:] if line.startswith('//') else line}")
            return True
        if (not command or word == "/me") and current is not None and self._asserted != current.name.lower():
            self._join(current.name)
        if word == "/join" and len(line.split()) > 1:
            self._asserted = line.split()[1].lower()
            self._rejoining = False
        self.client.input(line)
        return True

    # A person's menu (right-click in the people list)

    def build_person_menu(self, nick: str) -> tk.Menu:
        """
        The menu of C{nick}, a member of the current room: the entries of
        L{person_actions} (a private message; for an operator of the room,
        the moderation commands), each doing its action when chosen.
        """
        if self.person_menu is not None:
            self.person_menu.destroy()
        t = self.theme
        menu = self.person_menu = tk.Menu(self.root, tearoff=False, background=t.panel, foreground=t.text,
                                          activebackground=t.select, activeforeground=t.text,
                                          disabledforeground=t.muted, font=self.fonts.base)
        actions = person_actions(self.model, nick)
        for index, action in enumerate(actions):
            if index and actions[index - 1].kind == "message":
                menu.add_separator()
            menu.add_command(label=action.label, command=self._person_command(action, nick))
        if not actions:
            menu.add_command(label="That is you", state="disabled")
        return menu

    def _person_command(self, action: PersonAction, nick: str) -> Callable[[], None]:
        return lambda: self.person_action(action, nick)

    def open_person_menu(self, nick: str, x: int, y: int) -> None:
        """
        Show the menu of C{nick} at C{x}, C{y} (screen pixels).
        """
        menu = self.build_person_menu(nick)
        try:
            menu.tk_popup(x, y)
        finally:
            menu.grab_release()

    def person_action(self, action: PersonAction, nick: str) -> None:
        """
        Do one entry of a person's menu: open the private conversation with
        C{nick}, or send the action's command (asking the reason of a kick,
        the duration and reason of a ban first; nothing is sent when the
        question is cancelled).
        """
        line = action.line
        if action.kind == "message":
            self.open_conversation(nick)
            return
        if action.kind in ("kick", "ban"):
            verb = "Kick" if action.kind == "kick" else "Ban"
            room = self.model.current.name if self.model.current is not None else ""
            answer = self.ask_moderation(f"{verb} {nick}", f"{verb} {nick} from {room}: why? (optional)",
                                         BAN_DURATIONS if action.kind == "ban" else ())
            self._refocus()
            if answer is None:
                return
            line = " ".join(part for part in (line, *answer) if part)
        self._send_line(line)

    def _join(self, name: str) -> None:
        self._asserted = name.lower()
        self._rejoining = False
        self.client.input(f"/join {name}")

    def join_room(self) -> None:
        """
        Ask for a room and join it (C{#} is added when missing); what was typed stays in the input.
        """
        name = (self.ask_room() or "").strip()
        self._refocus()
        if name:
            self._join(name if name.startswith("#") else "#" + name)

    def part_room(self) -> None:
        """
        Leave the current room (C{/part}); in a private conversation, close it (back to the room).
        """
        if self.conversation is not None:
            self.close_conversation()
        elif self.model.current is not None:
            self.client.input("/part")

    def file_target(self) -> str | None:
        """
        Where Send file sends: the person selected (other than the user),
        else the current room; C{None} when neither.
        """
        nick = self.people.selected()
        if nick is not None and nick.lower() != self.model.nick.lower():
            return nick
        current = self.model.current
        return current.name if current is not None else None

    def send_file(self) -> None:
        """
        Ask for a file and send it to L{file_target}.
        """
        target = self.file_target()
        if target is None:
            self.model.notice("Join a room or pick someone in the people list to send a file.", "error")
            return
        path = self.choose_file()
        if path:
            self.client.send_file(target, Path(path))

    def choose_downloads(self) -> None:
        """
        Ask for the folder downloads are saved in.
        """
        folder = self.choose_folder()
        if folder:
            self.client.downloads = Path(folder)
            self.files.show_downloads(self.client.downloads)
            self.model.notice(f"Downloads go to {self.client.downloads}.")
            if self.settings is not None:
                self.settings.downloads = str(self.client.downloads)
            if self._save_settings is not None:
                self._save_settings()

    def leave_or_reconnect(self) -> None:
        """
        Disconnect from the server (the window stays), or connect again after that.
        """
        if self.model.state == State.DISCONNECTED:
            self.client.reconnect()
        else:
            self.client.leave().addErrback(self._failed, "leave")

    def exit(self) -> None:
        """
        Say goodbye and close: L{on_exit} is called once the goodbye is
        sent, or after L{EXIT_GRACE} seconds.
        """
        if self._exiting:
            return
        self._exiting = True
        timer = self._clock.callLater(EXIT_GRACE, self._exited)

        def done(result: object) -> None:
            if timer.active():
                timer.cancel()
            self._exited()

        self.client.quit().addErrback(self._failed, "quit").addBoth(done)

    def _exited(self) -> None:
        if not self._closed:
            self.close()
            self._on_exit()

    def _failed(self, reason: Failure, what: str) -> None:
        self._log.failure("Could not {what}", reason, what=what)


def first_size(screen_width: int, screen_height: int) -> tuple[int, int]:
    """
    The window's first size in pixels on a screen of that size: L{DEFAULT_SIZE},
    less what would not fit (a margin of 40 pixels for the desktop's panels),
    never below L{MIN_SIZE}.
    """
    return (
        max(MIN_SIZE[0], min(DEFAULT_SIZE[0], screen_width - 40)),
        max(MIN_SIZE[1], min(DEFAULT_SIZE[1], screen_height - 40)),
    )


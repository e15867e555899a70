# -*- test-case-name: tests.test_client_tk -*-
"""
The lists around the C{chat-tk} conversation: the rooms joined and the
private conversations with their unread counts, the people of the current room with their
statuses, and the status bar; each shows what the presenter computes
from the L{ChatModel}.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from chat.client.model import ChatModel, State
from chat.client.overview import conversation_rows
from chat.client.present import OPERATOR_MARK
from chat.client.status import (
    people_heading,
    people_rows,
    room_rows,
    state_level,
    status_text,
)
from chat.client.tk.theme import Fonts, Theme, fit, nick_tag

ERROR_SECONDS = 15.0
"""Seconds an error stays in the status bar."""


class RoomsPanel:
    """
    The left column: the server with what concerns it (Disconnect, or
    Reconnect, and Exit), then the rooms joined (the current one selected;
    clicking another makes it current) and Join room…, then the private
    conversations (clicking one shows it). Leaving a room is the room
    header's.

    @ivar tree: the rooms, by lower-case name, with unread counts.
    @ivar conversations: the private conversations, by lower-case nick,
        with unread counts (muted rooms are marked with a bell struck out).
    @ivar server_button: Disconnect while connected, Reconnect once disconnected.
    @ivar exit_button: Exit.
    @ivar join_button: Join room….
    """

    def __init__(self, parent: tk.Misc, model: ChatModel, where: str, on_select: Callable[[str], None],
                 on_join: Callable[[], None], on_server: Callable[[], None], on_exit: Callable[[], None],
                 on_conversation: Callable[[str], None] | None = None) -> None:
        """
        @param where: C{host:port}.
        @param on_select: called with the name of a room clicked that is not the one shown.
        @param on_conversation: called with the nick of a conversation clicked that is not the one shown.
        @param on_join: Join room… was pressed.
        @param on_server: Disconnect (or Reconnect) was pressed.
        @param on_exit: Exit was pressed.
        """
        self.model = model
        self.where = where
        self._on_select = on_select
        self._on_conversation = on_conversation
        self._shown: tuple[str, str] | None = None  # ("room" or "conversation", lower-case key)
        self.frame = left = ttk.Frame(parent, style="Panel.TFrame", width=176, padding=(0, 12, 0, 10))
        left.grid_propagate(False)
        left.columnconfigure(0, weight=1)
        left.rowconfigure(4, weight=1)
        self.server_label = ttk.Label(left, text="chat", style="Server.TLabel", padding=(16, 0, 8, 0))
        self.server_label.grid(row=0, column=0, sticky="w")
        self.where_label = ttk.Label(left, text=where, style="Muted.TLabel", padding=(16, 0, 8, 6))
        self.where_label.grid(row=1, column=0, sticky="w")
        server = ttk.Frame(left, style="Panel.TFrame", padding=(10, 0, 10, 14))
        server.grid(row=2, column=0, sticky="ew")
        server.columnconfigure(0, weight=1)
        self.server_button = ttk.Button(server, text="Disconnect", style="Small.TButton", command=on_server,
                                        padding=(6, 2))
        self.server_button.grid(row=0, column=0, sticky="ew")
        self.exit_button = ttk.Button(server, text="Exit", style="Small.TButton", command=on_exit, padding=(6, 2))
        self.exit_button.grid(row=0, column=1, sticky="ew", padx=(6, 0))
        ttk.Label(left, text="ROOMS", style="Heading.TLabel", padding=(16, 0, 0, 6)).grid(row=3, column=0, sticky="w")
        self.tree = ttk.Treeview(left, style="Rooms.Treeview", columns=("unread",), show="tree", selectmode="browse",
                                 height=4)
        self.tree.column("#0", width=100, stretch=True)
        self.tree.column("unread", width=40, stretch=False, anchor="e")
        self.tree.grid(row=4, column=0, sticky="nsew", padx=(8, 8))
        self.tree.bind("<<TreeviewSelect>>", self._selected)
        buttons = ttk.Frame(left, style="Panel.TFrame", padding=(12, 8, 12, 0))
        buttons.grid(row=5, column=0, sticky="ew")
        buttons.columnconfigure(0, weight=1)
        self.join_button = ttk.Button(buttons, text="Join room…", style="Small.TButton", command=on_join)
        self.join_button.grid(row=0, column=0, sticky="ew")
        ttk.Label(left, text="PRIVATE", style="Heading.TLabel", padding=(16, 12, 0, 6)).grid(
            row=6, column=0, sticky="w")
        self.conversations = ttk.Treeview(left, style="Rooms.Treeview", columns=("unread",), show="tree",
                                          selectmode="browse", height=3)
        self.conversations.column("#0", width=100, stretch=True)
        self.conversations.column("unread", width=40, stretch=False, anchor="e")
        self.conversations.grid(row=7, column=0, sticky="nsew", padx=(8, 8))
        left.rowconfigure(7, weight=1)
        self.conversations.bind("<<TreeviewSelect>>", self._conversation_selected)

    def show_state(self, state: State) -> None:
        """
        Offer Reconnect once disconnected, Disconnect otherwise.
        """
        gone = state == State.DISCONNECTED
        self.server_button.configure(text="Reconnect" if gone else "Disconnect",
                                     style="SmallAccent.TButton" if gone else "Small.TButton")

    def apply_theme(self, t: Theme, f: Fonts) -> None:
        """
        Colour the rows: bold when current or unread, muted otherwise.
        """
        for tree in (self.tree, self.conversations):
            tree.tag_configure("unread", font=f.bold, foreground=t.text)
            tree.tag_configure("read", font=f.base, foreground=t.muted)

    def show(self, conversation: str | None = None) -> None:
        """
        List the rooms joined (a muted one with C{🔕}) and the private
        conversations; select the one shown: C{conversation} (a nick), or
        else the current room.
        """
        tree = self.tree
        for item in tree.get_children():
            tree.delete(item)
        muted = self.model.muted
        for row in room_rows(self.model):
            name = f"{row.name} 🔕" if row.key in muted else row.name
            tree.insert("", "end", iid=row.key, text=name, values=(row.unread,),
                        tags=("unread" if row.marked else "read",))
        talks = self.conversations
        for item in talks.get_children():
            talks.delete(item)
        for row in conversation_rows(self.model):
            talks.insert("", "end", iid=row.key, text=row.name, values=(row.unread,),
                         tags=("unread" if row.marked else "read",))
        current = self.model.current
        if conversation is not None:
            key = conversation.lower()
            self._shown = ("conversation", key)
            tree.selection_set(())
            if not talks.exists(key):
                talks.insert("", "end", iid=key, text=conversation, values=("",), tags=("unread",))
            talks.selection_set(key)
            talks.see(key)
        else:
            talks.selection_set(())
            self._shown = ("room", current.name.lower()) if current is not None else None
            if current is not None:
                tree.selection_set(current.name.lower())
                tree.see(current.name.lower())

    def show_server(self, fonts: Fonts) -> None:
        """
        Name the server, once it said its name, and where it is, fitted to the column's width.
        """
        width = int(self.frame.cget("width"))
        self.where_label.configure(text=fit(self.where, fonts.small, width - 24))
        if self.model.welcome is not None:
            self.server_label.configure(text=fit(self.model.welcome.server, fonts.title, width - 24))

    def _selected(self, event: tk.Event[Any]) -> None:
        selected = self.tree.selection()
        if not selected or self._shown == ("room", selected[0]):
            return
        room = self.model.rooms.get(selected[0])
        if room is not None:
            self._on_select(room.name)

    def _conversation_selected(self, event: tk.Event[Any]) -> None:
        selected = self.conversations.selection()
        if not selected or self._shown == ("conversation", selected[0]) or self._on_conversation is None:
            return
        self._on_conversation(str(self.conversations.item(selected[0], "text")))


class PeoplePanel:
    """
    The people of the current room, with their statuses and how many are
    online; Refresh asks the daemon again.

    @ivar tree: the people, by lower-case nick, the user in bold.
    @ivar heading: C{PEOPLE · 3 ONLINE}.
    """

    def __init__(self, parent: tk.Misc, model: ChatModel, on_refresh: Callable[[], None],
                 on_select: Callable[[], None], on_open: Callable[[str], None],
                 on_menu: Callable[[str, int, int], None] | None = None) -> None:
        """
        Put the heading on row 0 of C{parent}, the list on row 1, a rule on row 2.

        @param on_select: the selection changed.
        @param on_open: called with the nick of a person double-clicked.
        @param on_menu: called with the nick of a person right-clicked (or
            selected, on Shift+F10 or the Menu key) and where to put their
            menu, in screen pixels (x, y).
        """
        self.model = model
        self._on_open = on_open
        self._on_menu = on_menu
        self._nicks: dict[str, str] = {}
        people = ttk.Frame(parent, style="Panel.TFrame", padding=(16, 0, 12, 6))
        people.grid(row=0, column=0, sticky="ew")
        people.columnconfigure(0, weight=1)
        self.heading = ttk.Label(people, text="PEOPLE", style="Heading.TLabel")
        self.heading.grid(row=0, column=0, sticky="w")
        self.refresh_button = ttk.Button(people, text="Refresh", style="Small.TButton", command=on_refresh)
        self.refresh_button.grid(row=0, column=1, sticky="e")
        self.tree = ttk.Treeview(parent, style="Users.Treeview", columns=("status",), show="tree",
                                 selectmode="browse", height=4)
        self.tree.column("#0", width=120, stretch=True)
        self.tree.column("status", width=110, stretch=True)
        self.tree.grid(row=1, column=0, sticky="nsew", padx=(8, 8))
        self.tree.bind("<<TreeviewSelect>>", lambda e: on_select())
        self.tree.bind("<Double-Button-1>", self._double_clicked)
        self.tree.bind("<Escape>", lambda e: self.tree.selection_set(()))
        for button in ("<Button-3>", "<Button-2>" if self.tree.tk.call("tk", "windowingsystem") == "aqua" else ""):
            if button:
                self.tree.bind(button, self._right_clicked)
        for key in ("<Shift-F10>", "<KeyPress-Menu>"):
            self.tree.bind(key, self._menu_key)
        ttk.Frame(parent, style="Rule.TFrame", height=1).grid(row=2, column=0, sticky="ew", pady=(8, 0))

    def apply_theme(self, t: Theme, f: Fonts) -> None:
        """
        Colour the nicks; the user's in bold.
        """
        for index, colour in enumerate(t.nicks):
            self.tree.tag_configure(nick_tag(index), foreground=colour)
        self.tree.tag_configure("me", font=f.bold)
        self.tree.tag_configure("operator", font=f.bold)

    def show(self) -> None:
        """
        List the people of the current room, keeping the selection.
        """
        tree = self.tree
        chosen = self.selected()
        for item in tree.get_children():
            tree.delete(item)
        self._nicks = {}
        for row in people_rows(self.model):
            self._nicks[row.key] = row.nick
            text = OPERATOR_MARK + row.nick if row.operator else row.nick
            tags = (nick_tag(row.nick_colour),) + (("me",) if row.me else ()) + (("operator",) if row.operator else ())
            tree.insert("", "end", iid=row.key, text=text, values=(row.status,), tags=tags)
        if chosen is not None and tree.exists(chosen.lower()):
            tree.selection_set(chosen.lower())
        self.heading.configure(text=people_heading(self.model))

    def selected(self) -> str | None:
        """
        The nick selected, or C{None}.
        """
        selected = self.tree.selection()
        if not selected:
            return None
        return self._nicks.get(selected[0], str(self.tree.item(selected[0], "text")))

    def _double_clicked(self, event: tk.Event[Any]) -> None:
        nick = self.selected()
        if nick is not None:
            self._on_open(nick)

    def _right_clicked(self, event: tk.Event[Any]) -> None:
        """
        Select the person under the pointer and open their menu there.
        """
        item = self.tree.identify_row(event.y)
        if not item or self._on_menu is None:
            return
        self.tree.selection_set(item)
        self.tree.focus(item)
        self._on_menu(self._nicks.get(item, item), event.x_root, event.y_root)

    def _menu_key(self, event: tk.Event[Any]) -> None:
        """
        Open the menu of the person selected, by their row.
        """
        selected = self.tree.selection()
        if not selected or self._on_menu is None:
            return
        box = self.tree.bbox(selected[0])
        x, y = (box[0] + 24, box[1] + box[3]) if box else (0, 0)
        self._on_menu(self._nicks.get(selected[0], selected[0]), self.tree.winfo_rootx() + x,
                      self.tree.winfo_rooty() + y)


class StatusBar:
    """
    The bottom line: a dot coloured by the connection's state, the
    presenter's status text, and the last error for L{ERROR_SECONDS}.
    """

    def __init__(self, parent: tk.Misc, fonts: Fonts, clock: IReactorTime) -> None:
        """
        Put a rule on row 1 of C{parent} and the bar on row 2.

        @param clock: schedules the end of an error.
        """
        self.fonts = fonts
        self._clock = clock
        self._timer: IDelayedCall | None = None
        ttk.Frame(parent, style="Rule.TFrame", height=1).grid(row=1, column=0, sticky="ew")
        status = ttk.Frame(parent, style="Status.TFrame", padding=(12, 4, 12, 5))
        status.grid(row=2, column=0, sticky="ew")
        status.columnconfigure(2, weight=1)
        self.dot = ttk.Label(status, text="●", style="Status.TLabel")
        self.dot.grid(row=0, column=0)
        self.label = ttk.Label(status, text="", style="Status.TLabel")
        self.label.grid(row=0, column=1, padx=(6, 0))
        self.error_label = ttk.Label(status, text="", style="StatusError.TLabel", anchor="e")
        self.error_label.grid(row=0, column=2, sticky="e")

    def show(self, model: ChatModel, where: str, theme: Theme) -> None:
        """
        Show the state of C{model}'s connection to C{where} (C{host:port}).
        """
        self.dot.configure(foreground=theme.level(state_level(model.state)))
        self.label.configure(text=status_text(model, where))

    def show_error(self, text: str) -> None:
        """
        Show C{text} for L{ERROR_SECONDS}, shortened to the room there is.
        """
        room = self.error_label.master.winfo_width() - self.label.winfo_reqwidth() - 60
        self.error_label.configure(text=fit("! " + text, self.fonts.small, max(room, 200)))
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self._clock.callLater(ERROR_SECONDS, self.clear_error)

    def clear_error(self) -> None:
        """
        Remove the error shown, if any.
        """
        self.close()
        self.error_label.configure(text="")

    def close(self) -> None:
        """
        Cancel the end of the error shown (the window closes).
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

# -*- test-case-name: tests.test_client_tk -*-
"""
The middle of the C{chat-tk} window: the current room's header, the
message pane that shows the presenter's lines (the current room's and
those of no room), and the input line.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable, Sequence
from tkinter import ttk
from typing import Any

from chat.client.model import ChatModel, State
from chat.client.present import KINDS, Line, Span
from chat.client.status import topic_text
from chat.client.tk.theme import Fonts, Theme, fit, nick_tag

MAX_LINES = 5000
"""Lines the message pane keeps; older ones are dropped."""

HISTORY_SIZE = 200
"""Lines typed that Up and Down recall."""


def room_tag(room: str) -> str:
    """
    The name of the pane's tag of the lines about C{room}, hidden while
    another room is current.
    """
    return "room:" + room.lower()


def span_tags(span: Span, line: Line) -> tuple[str, ...]:
    """
    The pane's tags of C{span} of C{line}: the style's name (none for
    C{text}); a nick's also names its colour (L{nick_tag}), a link the
    offer it downloads (C{offer:ID}).
    """
    if span.style == "nick" and span.nick_colour is not None:
        return "nick", nick_tag(span.nick_colour)
    if span.style == "link":
        return "link", f"offer:{line.offer}"
    return () if span.style == "text" else (span.style,)


class RoomHeader:
    """
    The current room's name and topic, with the Leave (or Reconnect) and
    Exit buttons.
    """

    def __init__(self, parent: tk.Misc, fonts: Fonts, on_leave: Callable[[], None],
                 on_exit: Callable[[], None]) -> None:
        self.fonts = fonts
        self.frame = header = ttk.Frame(parent, padding=(18, 8, 14, 8))
        header.columnconfigure(0, weight=1)
        self.title = ttk.Label(header, text="", style="Title.TLabel")
        self.title.grid(row=0, column=0, sticky="w")
        self.topic = ttk.Label(header, text="", style="Topic.TLabel")
        self.topic.grid(row=1, column=0, sticky="ew")
        self.leave_button = ttk.Button(header, text="Leave", command=on_leave, width=10)
        self.leave_button.grid(row=0, column=1, rowspan=2, padx=(12, 6))
        self.exit_button = ttk.Button(header, text="Exit", command=on_exit, width=6)
        self.exit_button.grid(row=0, column=2, rowspan=2)
        self._topic = ""
        header.bind("<Configure>", lambda e: self._fit_topic())

    def show(self, model: ChatModel) -> None:
        """
        Show the current room of C{model} and its topic.
        """
        current = model.current
        self.title.configure(text=current.name if current else "No room")
        self._topic = topic_text(model)
        self._fit_topic()

    def _fit_topic(self) -> None:
        width = self.frame.winfo_width() - self.leave_button.winfo_width() - self.exit_button.winfo_width() - 60
        self.topic.configure(text=fit(self._topic, self.fonts.small, max(width, 200)))

    def show_state(self, state: State) -> None:
        """
        Offer Reconnect once disconnected, Leave otherwise.
        """
        gone = state == State.DISCONNECTED
        self.leave_button.configure(text="Reconnect" if gone else "Leave",
                                    style="Accent.TButton" if gone else "TButton")


class MessagePane:
    """
    The read-only pane of lines, with a button to jump to the newest when
    scrolled up.

    @ivar pane: the text widget.
    @ivar jump_button: shown while new lines arrive out of sight.
    """

    def __init__(self, parent: tk.Misc, fonts: Fonts, on_offer: Callable[[int], None]) -> None:
        """
        @param on_offer: called with an offer's id when its link is clicked.
        """
        self._on_offer = on_offer
        self._room_tags: set[str] = set()
        self._shown: str | None = None
        self.frame = frame = ttk.Frame(parent, style="Pane.TFrame")
        frame.columnconfigure(0, weight=1)
        frame.rowconfigure(0, weight=1)
        self.pane = tk.Text(
            frame, wrap="word", state="disabled", borderwidth=0, highlightthickness=0, relief="flat",
            padx=18, pady=12, font=fonts.chat, spacing1=3, spacing3=3, cursor="xterm", undo=False,
        )
        self.pane.grid(row=0, column=0, sticky="nsew")
        self.bar = ttk.Scrollbar(frame, orient="vertical", command=self.pane.yview)
        self.bar.grid(row=0, column=1, sticky="ns")
        self.pane.configure(yscrollcommand=self._scrolled)
        self.jump_button = ttk.Button(frame, text="↓ New messages", style="Accent.TButton",
                                      command=self.scroll_to_end)
        self.pane.tag_bind("link", "<Enter>", lambda e: self.pane.configure(cursor="hand2"))
        self.pane.tag_bind("link", "<Leave>", lambda e: self.pane.configure(cursor="xterm"))

    def apply_theme(self, t: Theme, f: Fonts) -> None:
        """
        Colour the pane and the tags of its lines and spans.
        """
        pane = self.pane
        pane.configure(background=t.pane, foreground=t.text, insertbackground=t.text,
                       selectbackground=t.select, selectforeground=t.text, inactiveselectbackground=t.select)
        indent = f.time.measure("00:00") + f.chat.measure("  ")
        for kind in KINDS:
            pane.tag_configure(f"line:{kind}", lmargin2=indent)
        pane.tag_configure("line:private", background=t.private_bg)
        pane.tag_configure("line:mention", background=t.mention_bg)
        pane.tag_configure("line:history", foreground=t.muted)
        pane.tag_configure("time", foreground=t.muted, font=f.time)
        pane.tag_configure("system", foreground=t.muted)
        pane.tag_configure("error", foreground=t.error)
        pane.tag_configure("arrow", foreground=t.private)
        pane.tag_configure("muted", foreground=t.muted)
        pane.tag_configure("action", foreground=t.action, font=f.chat_italic)
        pane.tag_configure("divider", foreground=t.muted, font=f.time)
        pane.tag_configure("offer", foreground=t.accent, font=f.chat_bold)
        pane.tag_configure("link", foreground=t.link, underline=True)
        pane.tag_configure("nick", font=f.chat_bold)
        for index, colour in enumerate(t.nicks):
            pane.tag_configure(nick_tag(index), foreground=colour)
        for tag in ("line:history", "link", "sel"):
            pane.tag_raise(tag)  # history dims nicks too; links and the selection show over all

    def at_bottom(self) -> bool:
        """
        Whether the pane shows its last line: new lines then scroll it.
        """
        return self.pane.yview()[1] >= 0.999

    def append(self, lines: Sequence[Line]) -> None:
        """
        Add C{lines} to the pane; it scrolls to them only if it was at the
        bottom, and shows the new-messages button otherwise. Beyond
        L{MAX_LINES}, the oldest lines go.
        """
        if not lines:
            return
        follow = self.at_bottom()
        pane = self.pane
        pane.configure(state="normal")
        shown = self._shown
        for line in lines:
            tags: tuple[str, ...] = (f"line:{line.kind}",)
            if line.room is not None:
                tag = room_tag(line.room)
                if tag not in self._room_tags:
                    self._room_tags.add(tag)
                    pane.tag_configure(tag, elide=shown is not None and tag != shown)
                tags += (tag,)
            for span in line.parts:
                pane.insert("end-1c", span.text, (*span_tags(span, line), *tags))
                if span.style == "link" and line.offer is not None:
                    pane.tag_bind(f"offer:{line.offer}", "<Button-1>", self._offer_clicked(line.offer))
            pane.insert("end-1c", "\n", tags)
        excess = int(pane.index("end-1c").split(".")[0]) - 1 - MAX_LINES
        if excess > 0:
            pane.delete("1.0", f"{excess + 1}.0")
        pane.configure(state="disabled")
        if follow:
            pane.see("end")
        elif any(line.room is None or shown is None or room_tag(line.room) == shown for line in lines):
            self.jump_button.place(relx=1.0, rely=1.0, x=-28, y=-12, anchor="se")

    def show_room(self, room: str | None) -> None:
        """
        Show the lines of C{room} (and those of no room) from the end,
        hiding other rooms'; C{None}: show every line.
        """
        shown = room_tag(room) if room is not None else None
        if shown == self._shown:
            return
        self._shown = shown
        for tag in self._room_tags:
            self.pane.tag_configure(tag, elide=shown is not None and tag != shown)
        self.scroll_to_end()

    def scroll_to_end(self) -> None:
        """
        Show the last line of the pane.
        """
        self.pane.see("end")
        self.jump_button.place_forget()

    def _scrolled(self, first: str | float, last: str | float) -> None:
        self.bar.set(first, last)
        if float(last) >= 0.999:
            self.jump_button.place_forget()

    def lines(self, visible: bool = True) -> list[str]:
        """
        The text of the pane's lines (only those of the current room and
        of no room when C{visible}), without line ends.
        """
        if not visible:
            return self.pane.get("1.0", "end-1c").splitlines()
        hidden = {tag for tag in self._room_tags if self.pane.tag_cget(tag, "elide") in ("1", 1, True)}
        shown = []
        for number in range(1, int(self.pane.index("end-1c").split(".")[0])):
            if not hidden.intersection(self.pane.tag_names(f"{number}.0")):
                shown.append(self.pane.get(f"{number}.0", f"{number}.end"))
        return shown

    def _offer_clicked(self, offer_id: int) -> Callable[[tk.Event[Any]], None]:
        def clicked(event: tk.Event[Any]) -> None:
            self._on_offer(offer_id)

        return clicked


class InputLine:
    """
    Where the user types: Enter sends, Up and Down recall the lines sent
    (back to the draft), Page Up and Page Down scroll the pane.

    @ivar entry: the input line.
    @ivar target: shows the room plain lines go to.
    """

    def __init__(self, parent: tk.Misc, fonts: Fonts, on_line: Callable[[str], None],
                 page: Callable[[int], None]) -> None:
        """
        @param on_line: called with each line sent, as typed.
        @param page: scrolls the pane by a number of pages (negative: up).
        """
        self._on_line = on_line
        self._recalled: list[str] = []
        self._recall_at = 0
        self._draft = ""
        self.frame = compose = ttk.Frame(parent, padding=(16, 10, 16, 12))
        compose.columnconfigure(1, weight=1)
        self.target = ttk.Label(compose, text="", style="Target.TLabel")
        self.target.grid(row=0, column=0, padx=(0, 8))
        self.entry = ttk.Entry(compose, font=fonts.chat)
        self.entry.grid(row=0, column=1, sticky="ew")
        self.entry.bind("<Return>", self._entered)
        self.entry.bind("<KP_Enter>", self._entered)
        self.entry.bind("<Up>", lambda e: self._recall(-1))
        self.entry.bind("<Down>", lambda e: self._recall(1))
        self.entry.bind("<Prior>", lambda e: page(-1))
        self.entry.bind("<Next>", lambda e: page(1))
        self.send_button = ttk.Button(compose, text="Send", style="Accent.TButton", command=self.send, width=8)
        self.send_button.grid(row=0, column=2, padx=(8, 0))

    def _entered(self, event: tk.Event[Any]) -> str:
        self.send()
        return "break"

    def send(self) -> None:
        """
        Send the line as typed (a message, or a command) and remember it for Up.
        """
        line = self.entry.get()
        if not line.strip():
            return
        self.entry.delete(0, "end")
        if not self._recalled or self._recalled[-1] != line:
            self._recalled.append(line)
            del self._recalled[:-HISTORY_SIZE]
        self._recall_at = len(self._recalled)
        self._draft = ""
        self._on_line(line)

    def _recall(self, step: int) -> str:
        if not self._recalled:
            return "break"
        if self._recall_at == len(self._recalled):
            self._draft = self.entry.get()
        self._recall_at = max(0, min(len(self._recalled), self._recall_at + step))
        text = self._draft if self._recall_at == len(self._recalled) else self._recalled[self._recall_at]
        self.write(text, focus=False)
        return "break"

    def write(self, text: str, focus: bool = True) -> None:
        """
        Put C{text} in the input line, the cursor at its end, to be completed.
        """
        self.entry.delete(0, "end")
        self.entry.insert(0, text)
        self.entry.icursor("end")
        if focus:
            self.entry.focus_set()

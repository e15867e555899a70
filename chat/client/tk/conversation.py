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

from chat.client.model import ChatModel
from chat.client.present import KINDS, Line, Span
from chat.client.status import topic_text
from chat.client.tk.emoji_picker import EmojiPicker
from chat.client.tk.theme import Fonts, Theme, fit, nick_tag
from chat.client.typed import secret_input

MAX_LINES = 5000
"""Lines the message pane keeps; older ones are dropped."""

HISTORY_SIZE = 200
"""Lines typed that Up and Down recall."""

def room_tag(room: str) -> str:
    """
    The name of the pane's tag of the lines about C{room}, hidden while
    another room (or a private conversation) is shown.
    """
    return "room:" + room.lower()


def conversation_tag(nick: str) -> str:
    """
    The name of the pane's tag of the lines of the private conversation
    with C{nick}, hidden while another room or conversation is shown.
    """
    return "conversation:" + nick.lower()


def view_tag(line: Line) -> str | None:
    """
    The tag of the view C{line} belongs to: its room's, its private
    conversation's, or C{None} for a line shown in every view.
    """
    if line.room is not None:
        return room_tag(line.room)
    if line.conversation is not None:
        return conversation_tag(line.conversation)
    return None


def span_tags(span: Span, line: Line) -> tuple[str, ...]:
    """
    The pane's tags of C{span} of C{line}: the style's name (none for
    C{text}); a nick's also names its colour (L{nick_tag}), a link the
    offer it downloads (C{offer:ID}). The styles of light formatting are
    tags of their own: C{bold}, C{italic}, C{code}, C{url} (the span's
    text is the address a click opens).
    """
    if span.style == "nick" and span.nick_colour is not None:
        return "nick", nick_tag(span.nick_colour)
    if span.style == "link":
        return "link", f"offer:{line.offer}"
    return () if span.style == "text" else (span.style,)


class RoomHeader:
    """
    The current room's name and topic, with the room's own action: Leave
    room. Leaving the server is not here but with the server, in
    L{chat.client.tk.panels.RoomsPanel}.

    @ivar part_button: Leave room (C{/part}), disabled out of a room.
    """

    def __init__(self, parent: tk.Misc, fonts: Fonts, on_part: Callable[[], None]) -> None:
        """
        @param on_part: Leave room was pressed.
        """
        self.fonts = fonts
        self.frame = header = ttk.Frame(parent, padding=(18, 8, 14, 8))
        header.columnconfigure(0, weight=1)
        self.title = ttk.Label(header, text="", style="Title.TLabel")
        self.title.grid(row=0, column=0, sticky="w")
        self.topic = ttk.Label(header, text="", style="Topic.TLabel")
        self.topic.grid(row=1, column=0, sticky="ew")
        self.part_button = ttk.Button(header, text="Leave room", style="Small.TButton", command=on_part)
        self.part_button.grid(row=0, column=1, rowspan=2, padx=(12, 0))
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
        self.part_button.configure(text="Leave room")
        self.part_button.state(["!disabled"] if current is not None else ["disabled"])

    def show_conversation(self, nick: str) -> None:
        """
        Show the private conversation with C{nick}; the button closes it (back to the room).
        """
        self.title.configure(text=f"{nick}")
        self._topic = f"Private conversation with {nick}: only the two of you see it"
        self._fit_topic()
        self.part_button.configure(text="Close")
        self.part_button.state(["!disabled"])

    def _fit_topic(self) -> None:
        width = self.frame.winfo_width() - self.part_button.winfo_width() - 50
        self.topic.configure(text=fit(self._topic, self.fonts.small, max(width, 120)))


class Banner:
    """
    One line above the pane while the connection is being made again: what
    went wrong last and what happens next, each notice replacing the one
    before, instead of a line per attempt in the pane.

    @ivar label: the text of the banner.
    """

    def __init__(self, parent: tk.Misc, fonts: Fonts) -> None:
        self.fonts = fonts
        self.frame = ttk.Frame(parent, style="Banner.TFrame", padding=(18, 5, 14, 5))
        self.frame.columnconfigure(0, weight=1)
        self.label = ttk.Label(self.frame, text="", style="Banner.TLabel", anchor="w")
        self.label.grid(row=0, column=0, sticky="ew")
        self._text = ""
        self.frame.bind("<Configure>", lambda e: self._fit())

    def show(self, text: str) -> None:
        """
        Show the banner (where its frame was gridded) saying C{text}, fitted to its width.
        """
        self._text = text
        self._fit()
        self.frame.grid()

    def _fit(self) -> None:
        width = self.frame.master.winfo_width() - 40  # the frame itself may not be shown yet
        self.label.configure(text=fit(self._text, self.fonts.small, max(width, 300)) if self._text else "")

    def hide(self) -> None:
        """
        Take the banner away.
        """
        self.frame.grid_remove()
        self._text = ""
        self.label.configure(text="")

    def shown(self) -> bool:
        """
        Whether the banner is up.
        """
        return bool(self.frame.winfo_manager()) and bool(self.label.cget("text"))


class MessagePane:
    """
    The read-only pane of lines, with a button to jump to the newest when
    scrolled up. It holds the lines of every room and private
    conversation, and shows those of one view (L{show_view}) and those of
    none.

    @ivar pane: the text widget.
    @ivar jump_button: shown while new lines arrive out of sight.
    """

    def __init__(self, parent: tk.Misc, fonts: Fonts, on_offer: Callable[[int], None],
                 on_url: Callable[[str], object] | None = None) -> None:
        """
        @param on_offer: called with an offer's id when its link is clicked.
        @param on_url: called with the address of a C{url} span clicked.
        """
        self._on_offer = on_offer
        self._on_url = on_url
        self._room_tags: set[str] = set()  # the view tags (rooms' and conversations') seen
        self._shown: str | None = None
        self._follow = True  # at the bottom, as far as the user is concerned
        self._size = (0, 0)
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
        self.typed: Callable[[str], None] | None = None
        self.pane.bind("<KeyPress>", self._key)
        self.pane.tag_bind("link", "<Enter>", lambda e: self.pane.configure(cursor="hand2"))
        self.pane.tag_bind("link", "<Leave>", lambda e: self.pane.configure(cursor="xterm"))
        self.pane.tag_bind("url", "<Enter>", lambda e: self.pane.configure(cursor="hand2"))
        self.pane.tag_bind("url", "<Leave>", lambda e: self.pane.configure(cursor="xterm"))
        self.pane.tag_bind("url", "<ButtonRelease-1>", self._url_clicked)

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
        pane.tag_configure("url", foreground=t.link, underline=True)
        pane.tag_configure("bold", font=f.chat_bold)
        pane.tag_configure("italic", font=f.chat_italic)
        pane.tag_configure("code", font=f.code, background=t.field)
        pane.tag_configure("line:unread", foreground=t.accent, justify="center")
        pane.tag_configure("nick", font=f.chat_bold)
        for index, colour in enumerate(t.nicks):
            pane.tag_configure(nick_tag(index), foreground=colour)
        for tag in ("line:history", "link", "url", "line:unread", "sel"):
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
            tag = view_tag(line)
            if tag is not None:
                if tag not in self._room_tags:
                    self._room_tags.add(tag)
                    pane.tag_configure(tag, elide=shown is not None and tag != shown)
                tags += (tag,)
                if line.kind == "unread":
                    # One "new since you last looked" line per view: the latest.
                    old = pane.tag_ranges(f"unread:{tag}")
                    if old:
                        pane.delete(old[0], old[1])
                    tags += (f"unread:{tag}",)
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
        elif any(view_tag(line) in (None, shown) or shown is None for line in lines):
            self.jump_button.place(relx=1.0, rely=1.0, x=-28, y=-12, anchor="se")

    def show_room(self, room: str | None) -> None:
        """
        Show the lines of C{room} (and those of no room) from the end,
        hiding other rooms' and conversations'; C{None}: show every line.
        """
        self.show_view(room_tag(room) if room is not None else None)

    def show_conversation(self, nick: str) -> None:
        """
        Show the private conversation with C{nick} (and the lines of no room) from the end, hiding the rooms'.
        """
        self.show_view(conversation_tag(nick))

    def show_view(self, shown: str | None) -> None:
        """
        Show the lines tagged C{shown} (a L{room_tag} or a
        L{conversation_tag}) and those of no view, from the end; C{None}:
        every line.
        """
        if shown is not None and shown not in self._room_tags:
            self._room_tags.add(shown)
            self.pane.tag_configure(shown, elide=False)
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
        size = (self.pane.winfo_width(), self.pane.winfo_height())
        if size != self._size:
            # Resized: lines wrap anew; a pane that showed the end shows it still.
            self._size = size
            if self._follow and float(last) < 0.999:
                self.pane.after_idle(self.pane.see, "end")
        else:
            self._follow = float(last) >= 0.999
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

    def _key(self, event: tk.Event[Any]) -> str | None:
        # Typing in the pane (clicked to select text) types in the input line.
        control = int(event.state) & 0x4 if isinstance(event.state, int) else 0
        if self.typed is not None and event.char and event.char.isprintable() and not control:
            self.typed(event.char)
            return "break"
        return None

    def _url_clicked(self, event: tk.Event[Any]) -> None:
        index = self.pane.index(f"@{event.x},{event.y}")
        span = self.pane.tag_prevrange("url", f"{index}+1c")
        if span and self._on_url is not None:
            self._on_url(self.pane.get(span[0], span[1]))

    def _offer_clicked(self, offer_id: int) -> Callable[[tk.Event[Any]], None]:
        def clicked(event: tk.Event[Any]) -> None:
            self._on_offer(offer_id)

        return clicked


class InputLine:
    """
    Where the user types: Enter sends, Up and Down recall the lines sent
    (back to the draft), Page Up and Page Down scroll the pane. A line
    carrying a password (L{secret_input}) is shown as dots while typed,
    and is never recalled. Nothing but sending empties the line.

    @ivar entry: the input line.
    @ivar target: shows the room plain lines go to.
    """

    def __init__(self, parent: tk.Misc, fonts: Fonts, on_line: Callable[[str], bool],
                 page: Callable[[int], None]) -> None:
        """
        @param on_line: called with each line sent, as typed; returns
            whether it was taken (the input then empties) or not (it stays).
        @param page: scrolls the pane by a number of pages (negative: up).
        """
        self._on_line = on_line
        self._recalled: list[str] = []
        self._recall_at = 0
        self._draft = ""
        self.frame = compose = ttk.Frame(parent, padding=(14, 10, 12, 12))
        compose.columnconfigure(1, weight=1)
        self._target = ""
        self.target = ttk.Label(compose, text="", style="Target.TLabel")
        self.target.grid(row=0, column=0, padx=(0, 8))
        self.text = tk.StringVar(compose)
        self.entry = ttk.Entry(compose, font=fonts.chat, textvariable=self.text)
        self.entry.grid(row=0, column=1, sticky="ew")
        self.text.trace_add("write", lambda *args: self._mask())
        self.entry.bind("<Return>", self._entered)
        self.entry.bind("<KP_Enter>", self._entered)
        self.entry.bind("<Up>", lambda e: self._recall(-1))
        self.entry.bind("<Down>", lambda e: self._recall(1))
        self.entry.bind("<Prior>", lambda e: page(-1))
        self.entry.bind("<Next>", lambda e: page(1))
        self.emoji_button = ttk.Button(compose, text="☺", style="Emoji.TButton", command=self.pick_emoji)
        self.emoji_button.grid(row=0, column=2, padx=(4, 0))
        self.send_button = ttk.Button(compose, text="Send", style="Accent.TButton", command=self.send, width=5,
                                      padding=(8, 5))
        self.send_button.grid(row=0, column=3, padx=(8, 0))
        self.picker: EmojiPicker | None = None
        self.fonts = fonts
        self._colours = ("#ffffff", "#000000", "#dddddd")

    def apply_theme(self, t: Theme) -> None:
        """
        Remember the colours of the emoji picker.
        """
        self._colours = (t.field, t.text, t.hover)

    def pick_emoji(self) -> None:
        """
        Open the emoji picker above the button (or close it if open); the
        emoji clicked goes in at the cursor.
        """
        if self.picker is not None and self.picker.open():
            self.picker.close()
            return
        self.picker = EmojiPicker(self.frame, self.fonts, self.insert_emoji)
        self.picker.colour(*self._colours)
        self.picker.place_above(self.emoji_button)

    def insert_emoji(self, text: str) -> None:
        """
        Insert C{text} at the cursor of the input line, which keeps the focus.
        """
        self.entry.insert("insert", text)
        self.entry.focus_set()

    def _entered(self, event: tk.Event[Any]) -> str:
        self.send()
        return "break"

    def send(self) -> None:
        """
        Send the line as typed (a message, or a command) and remember it for
        Up unless it carries a password; the line stays if it was not taken.
        """
        line = self.entry.get()
        if not line.strip():
            return
        if not self._on_line(line):
            return
        self.entry.delete(0, "end")
        if not secret_input(line) and (not self._recalled or self._recalled[-1] != line):
            self._recalled.append(line)
            del self._recalled[:-HISTORY_SIZE]
        self._recall_at = len(self._recalled)
        self._draft = ""

    def show_target(self, target: str) -> None:
        """
        Name where plain lines go (the current room), left of the line.
        """
        self._target = target
        self._mask()

    def _mask(self) -> None:
        secret = secret_input(self.entry.get())
        self.entry.configure(show="•" if secret else "")
        self.target.configure(text="password hidden" if secret else self._target)

    def masked(self) -> bool:
        """
        Whether the line is shown as dots (it carries a password).
        """
        return bool(self.entry.cget("show"))

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
        Up and Down use it; actions use L{prefix}, which keeps what was typed.
        """
        self.entry.delete(0, "end")
        self.entry.insert(0, text)
        self.entry.icursor("end")
        if focus:
            self.entry.focus_set()

    def prefix(self, command: str) -> None:
        """
        Start the line with C{command} (C{/msg bob }), keeping the text
        typed after it, unless that text is a command itself; the cursor
        goes to the end and the focus to the line.
        """
        typed = self.entry.get().lstrip()
        if typed.startswith("/") and not typed.startswith("//"):
            words = typed.split(maxsplit=2)
            typed = words[2] if words and words[0].lower() == "/msg" and len(words) > 2 else ""
            if typed == "" and self.entry.get().strip():
                self._stash(self.entry.get())
        self.write(command + typed)

    def _stash(self, line: str) -> None:
        # A command being typed that an action replaces stays one Up away.
        if not secret_input(line) and (not self._recalled or self._recalled[-1] != line):
            self._recalled.append(line)
            del self._recalled[:-HISTORY_SIZE]
        self._recall_at = len(self._recalled)

    def type_in(self, text: str) -> None:
        """
        Insert C{text} at the cursor and give the line the focus (keys typed elsewhere land here).
        """
        self.entry.insert("insert", text)
        self.entry.focus_set()

# -*- test-case-name: tests.test_client_tk -*-
"""
The emoji picker of the input line: a grid of common emoji (named by their
shortcodes, made emoji by the C{emoji} library) in a small window.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from typing import Any

import emoji

from chat.client.tk.theme import Fonts

EMOJI_CODES = (
    ":grinning_face:", ":face_with_tears_of_joy:", ":slightly_smiling_face:", ":smiling_face_with_smiling_eyes:",
    ":winking_face:", ":smiling_face_with_heart-eyes:", ":smiling_face_with_sunglasses:", ":thinking_face:",
    ":grinning_face_with_sweat:", ":upside-down_face:", ":face_with_open_mouth:", ":crying_face:",
    ":thumbs_up:", ":thumbs_down:", ":clapping_hands:", ":folded_hands:", ":waving_hand:", ":OK_hand:",
    ":party_popper:", ":red_heart:", ":fire:", ":sparkles:", ":check_mark_button:", ":cross_mark:",
    ":eyes:", ":hundred_points:", ":rocket:", ":hot_beverage:", ":pizza:", ":bug:", ":light_bulb:", ":warning:",
)
"""The emoji of the picker, by their CLDR short names in the C{emoji} library."""

EMOJI_COLUMNS = 8
"""Emoji on a row of the picker."""


def common_emoji() -> tuple[str, ...]:
    """
    The emoji of the picker, in order: L{EMOJI_CODES} made emoji by the C{emoji} library.
    """
    return tuple(emoji.emojize(code) for code in EMOJI_CODES)


class EmojiPicker:
    """
    A small window of L{common_emoji} in a grid, under the input line's
    emoji button: a click inserts one and closes it, as do Escape and
    a click elsewhere (closing only).

    @ivar window: the toplevel.
    @ivar buttons: the emoji's labels, in the order of L{common_emoji}.
    """

    def __init__(self, parent: tk.Misc, fonts: Fonts, on_pick: Callable[[str], None]) -> None:
        """
        @param on_pick: called with the emoji clicked.
        """
        self._on_pick = on_pick
        self.window = window = tk.Toplevel(parent)
        window.withdraw()
        window.overrideredirect(True)
        frame = ttk.Frame(window, style="Card.TFrame", padding=6)
        frame.grid(row=0, column=0)
        self.buttons: list[tk.Label] = []
        for index, glyph in enumerate(common_emoji()):
            label = tk.Label(frame, text=glyph, font=fonts.title, width=2, padx=4, pady=2, cursor="hand2",
                             borderwidth=0, highlightthickness=0)
            label.grid(row=index // EMOJI_COLUMNS, column=index % EMOJI_COLUMNS)
            label.bind("<ButtonRelease-1>", self._picked(glyph))
            self.buttons.append(label)
        window.bind("<Escape>", lambda e: self.close())
        window.bind("<FocusOut>", lambda e: self.close())

    def colour(self, background: str, foreground: str, hover: str) -> None:
        """
        Colour the labels: C{background}, C{hover} under the pointer.
        """
        for label in self.buttons:
            label.configure(background=background, foreground=foreground, activebackground=hover)
            label.bind("<Enter>", self._hover(label, hover))
            label.bind("<Leave>", self._hover(label, background))

    @staticmethod
    def _hover(label: tk.Label, colour: str) -> Callable[[tk.Event[Any]], None]:
        def hover(event: tk.Event[Any]) -> None:
            label.configure(background=colour)

        return hover

    def _picked(self, glyph: str) -> Callable[[tk.Event[Any]], None]:
        def picked(event: tk.Event[Any]) -> None:
            self.pick(glyph)

        return picked

    def place_above(self, widget: tk.Misc) -> None:
        """
        Show the picker with its bottom right corner at the top right of C{widget}.
        """
        window = self.window
        window.update_idletasks()
        x = widget.winfo_rootx() + widget.winfo_width() - window.winfo_reqwidth()
        y = widget.winfo_rooty() - window.winfo_reqheight() - 4
        window.geometry(f"+{max(x, 0)}+{max(y, 0)}")
        window.deiconify()
        window.lift()
        window.focus_set()

    def pick(self, glyph: str) -> None:
        """
        Insert C{glyph} (as clicked) and close.
        """
        self.close()
        self._on_pick(glyph)

    def open(self) -> bool:
        """
        Whether the picker is still shown.
        """
        try:
            return bool(self.window.winfo_exists()) and self.window.winfo_viewable() == 1
        except tk.TclError:
            return False

    def close(self) -> None:
        """
        Take the picker away.
        """
        try:
            self.window.destroy()
        except tk.TclError:
            pass

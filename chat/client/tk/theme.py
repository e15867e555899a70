# -*- test-case-name: tests.test_client_tk -*-
"""
The look of C{chat-tk}: the two palettes (one L{Theme}, two instances),
a user's theme file over one of them (L{read_theme_file}), the fonts, the
ttk styles made of them, and L{fit} to shorten text to a width in a font.
"""

from __future__ import annotations

import dataclasses
import tkinter as tk
import tomllib
from dataclasses import dataclass
from pathlib import Path
from tkinter import font as tkfont
from tkinter import ttk
from typing import Any

from chat.client.settings import config_dir
from chat.client.status import NICK_COLOURS

MIN_CONTRAST = 4.5
"""The least contrast ratio of text on its background: WCAG 2 level AA for normal text."""


def luminance(colour: str) -> float:
    """
    The relative luminance of C{colour} (C{#rrggbb}), from 0 (black) to 1
    (white), as WCAG 2 defines it.
    """
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def contrast(first: str, second: str) -> float:
    """
    The WCAG 2 contrast ratio of two C{#rrggbb} colours, from 1 (the same)
    to 21 (black and white), in either order.
    """
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@dataclass(frozen=True)
class Theme:
    """
    The colours of the window, as C{#rrggbb} strings.

    @ivar nicks: the colours nicks are drawn in, by
        L{chat.client.status.nick_colour}: L{NICK_COLOURS} of them, each
        with a contrast of at least L{MIN_CONTRAST} on every background a
        nick is drawn on (L{nick_backgrounds}).
    """

    name: str
    window: str
    panel: str
    pane: str
    field: str
    button: str
    hover: str
    text: str
    muted: str
    border: str
    accent: str
    accent_hover: str
    on_accent: str
    select: str
    ok: str
    warn: str
    error: str
    private: str
    private_bg: str
    mention_bg: str
    action: str
    link: str
    nicks: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.nicks) != NICK_COLOURS:
            raise ValueError(f"theme {self.name} has {len(self.nicks)} nick colours, not {NICK_COLOURS}")

    def nick_backgrounds(self) -> tuple[str, ...]:
        """
        The colours nicks are drawn on: the pane, private and mention lines, the people list and its selection.
        """
        return self.pane, self.private_bg, self.mention_bg, self.panel, self.select

    def level(self, level: str) -> str:
        """
        The colour of a level of L{chat.client.present.state_level}: C{ok}, C{warn} or C{error}.
        """
        return {"ok": self.ok, "warn": self.warn, "error": self.error}[level]


DARK = Theme(
    name="dark",
    window="#16181d",
    panel="#1c1f26",
    pane="#20242c",
    field="#2a2f39",
    button="#2d323d",
    hover="#373d4a",
    text="#dde1e8",
    muted="#8b93a1",
    border="#303644",
    accent="#4c8dff",
    accent_hover="#6aa0ff",
    on_accent="#ffffff",
    select="#2f3d58",
    ok="#3fb950",
    warn="#d29922",
    error="#ff6b6b",
    private="#d2a8ff",
    private_bg="#2a2436",
    mention_bg="#33301f",
    action="#c9a7ff",
    link="#6cb6ff",
    nicks=(  # OKLCH hues 12 degrees apart, each at least 4.7:1 on every background a nick is drawn on
        "#fc8a82", "#fa8d6d", "#f59159", "#ec9746", "#e19d35", "#d4a32a", "#c3aa2a", "#b1b035", "#9bb546", "#84ba59",
        "#68bd6d", "#4ac082", "#1bc196", "#01d3bb", "#01dfdc", "#00ddef", "#00cef3", "#1ab8ee", "#47b3f8", "#69aefd",
        "#83a9fe", "#98a4fe", "#ac9ffe", "#be99f9", "#ce94ee", "#dd90e1", "#e88cd0", "#f28abf", "#f888ab", "#fb8897",
    ),
)
"""The default theme: light text on dark grey-blue."""

LIGHT = Theme(
    name="light",
    window="#eef0f3",
    panel="#f6f7f9",
    pane="#ffffff",
    field="#ffffff",
    button="#ffffff",
    hover="#e6e9ee",
    text="#1f2328",
    muted="#656d76",
    border="#d0d7de",
    accent="#0969da",
    accent_hover="#0a5cc2",
    on_accent="#ffffff",
    select="#dbe8fb",
    ok="#1a7f37",
    warn="#9a6700",
    error="#cf222e",
    private="#8250df",
    private_bg="#f5f0fd",
    mention_bg="#fff5d6",
    action="#8250df",
    link="#0969da",
    nicks=(  # the same hues, darker
        "#b93435", "#b7390b", "#a44b0a", "#96550c", "#8a5b0b", "#80600d", "#75640d", "#69680b", "#5a6c0c", "#41710b",
        "#0a7520", "#087446", "#0e7258", "#117165", "#017170", "#01707a", "#106e82", "#0e6d8f", "#066a9f", "#0365ba",
        "#365ec7", "#5358c7", "#6a51c3", "#7c4bbb", "#8c45af", "#993fa0", "#a53a8e", "#ad357b", "#b43265", "#b7314e",
    ),
)
"""Dark text on white."""

THEMES = {theme.name: theme for theme in (DARK, LIGHT)}
"""The built-in themes by name."""

USER_THEME = "user"
"""The name of the user's theme, read from L{THEME_FILE} in the client's config directory."""

THEME_FILE = "theme.toml"
"""The name of the user's theme file, in L{chat.client.settings.config_dir}."""


@dataclass(frozen=True)
class FontChoice:
    """
    The fonts a theme asks for; C{None}: the default.

    @ivar family: the family of the window's text (lists, buttons, headings).
    @ivar size: its size in points (headings and the status bar one less).
    @ivar chat_family: the family of the message pane and the input line.
    @ivar chat_size: its size in points.
    @ivar code_family: the family of C{`code`} in messages (a monospaced one).
    """

    family: str | None = None
    size: int | None = None
    chat_family: str | None = None
    chat_size: int | None = None
    code_family: str | None = None


class ThemeError(ValueError):
    """
    A theme file that cannot be used; the message says why, for the user.
    """


def _colour(key: str, value: object) -> str:
    if not (isinstance(value, str) and len(value) == 7 and value.startswith("#")
            and all(c in "0123456789abcdefABCDEF" for c in value[1:])):
        raise ThemeError(f"colours.{key} is {value!r}, not a colour like \"#1f2328\"")
    return value.lower()


def read_theme_file(path: Path) -> tuple[Theme, FontChoice]:
    """
    The user's theme in the TOML file at C{path}: a built-in theme
    (C{base = "dark"} or C{"light"}, dark by default) with the colours of
    its C{[colours]} table (any field of L{Theme} but C{name}, as
    C{"#rrggbb"}; C{nicks} a list of L{NICK_COLOURS} of them) and the fonts
    of its C{[fonts]} table (the fields of L{FontChoice}: families as
    strings, sizes as whole points from 6 to 40).

    @raise ThemeError: the file cannot be read, is not TOML, or has a key
        or a value that is not one of those.
    """
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ThemeError(f"cannot read {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ThemeError(f"{path} is not TOML: {e}") from None
    unknown = set(data) - {"base", "colours", "fonts"}
    if unknown:
        raise ThemeError(f"{path}: unknown key {sorted(unknown)[0]} (base, colours and fonts are)")
    base = THEMES.get(data.get("base", "dark")) if isinstance(data.get("base", "dark"), str) else None
    if base is None:
        raise ThemeError(f"{path}: base is {data.get('base')!r}, not \"dark\" or \"light\"")
    colours, fonts = data.get("colours", {}), data.get("fonts", {})
    if not isinstance(colours, dict) or not isinstance(fonts, dict):
        raise ThemeError(f"{path}: colours and fonts are tables ([colours], [fonts])")
    fields = {f.name for f in dataclasses.fields(Theme)} - {"name"}
    changes: dict[str, Any] = {}
    for key, value in colours.items():
        if key not in fields:
            raise ThemeError(f"{path}: unknown colour {key}")
        if key == "nicks":
            if not isinstance(value, list) or len(value) != NICK_COLOURS:
                raise ThemeError(f"{path}: colours.nicks is a list of {NICK_COLOURS} colours")
            changes[key] = tuple(_colour(key, v) for v in value)
        else:
            changes[key] = _colour(key, value)
    choice: dict[str, Any] = {}
    for key, value in fonts.items():
        if key not in {f.name for f in dataclasses.fields(FontChoice)}:
            raise ThemeError(f"{path}: unknown font key {key}")
        if key.endswith("size"):
            if not isinstance(value, int) or isinstance(value, bool) or not 6 <= value <= 40:
                raise ThemeError(f"{path}: fonts.{key} is {value!r}, not a size from 6 to 40 points")
        elif not isinstance(value, str) or not value.strip():
            raise ThemeError(f"{path}: fonts.{key} is {value!r}, not a font family")
        choice[key] = value
    return dataclasses.replace(base, name=USER_THEME, **changes), FontChoice(**choice)


def nick_tag(colour: int) -> str:
    """
    The name of the tag (of the pane and of the lists) of nick colour
    C{colour}: C{nick0} to C{nick29}.
    """
    return f"nick{colour}"


@dataclass
class Fonts:
    """
    The fonts of the window, made once per Tk interpreter.
    """

    base: tkfont.Font
    bold: tkfont.Font
    small: tkfont.Font
    heading: tkfont.Font
    title: tkfont.Font
    chat: tkfont.Font
    chat_bold: tkfont.Font
    chat_italic: tkfont.Font
    time: tkfont.Font
    code: tkfont.Font
    default_family: str
    code_family: str

    @classmethod
    def create(cls, root: tk.Misc, choice: FontChoice | None = None) -> Fonts:
        """
        Fonts of the family of C{TkDefaultFont}, which becomes 10 points,
        and for code of the family of C{TkFixedFont}; then L{choose}
        C{choice}.
        """
        default = tkfont.nametofont("TkDefaultFont", root=root)
        default.configure(size=10)
        family = str(default.actual("family"))
        code_family = str(tkfont.nametofont("TkFixedFont", root=root).actual("family"))

        def make(size: int, weight: str = "normal", slant: str = "roman", face: str = family) -> tkfont.Font:
            return tkfont.Font(root=root, family=face, size=size, weight=weight, slant=slant)  # type: ignore[arg-type]

        fonts = cls(
            base=default, bold=make(10, "bold"), small=make(9), heading=make(9, "bold"), title=make(13, "bold"),
            chat=make(11), chat_bold=make(11, "bold"), chat_italic=make(11, slant="italic"), time=make(9),
            code=make(10, face=code_family), default_family=family, code_family=code_family,
        )
        fonts.choose(choice or FontChoice())
        return fonts

    def choose(self, choice: FontChoice) -> None:
        """
        Change the fonts in place (every widget drawn in them follows):
        the families and sizes of C{choice}, the defaults where it has none.
        """
        family = choice.family or self.default_family
        chat_family = choice.chat_family or family
        size = choice.size or 10
        chat_size = choice.chat_size or size + 1
        for font, face, points in (
            (self.base, family, size), (self.bold, family, size), (self.small, family, size - 1),
            (self.heading, family, size - 1), (self.title, family, size + 3), (self.time, family, size - 1),
            (self.chat, chat_family, chat_size), (self.chat_bold, chat_family, chat_size),
            (self.chat_italic, chat_family, chat_size),
            (self.code, choice.code_family or self.code_family, chat_size - 1),
        ):
            font.configure(family=face, size=points)


def fit(text: str, font: tkfont.Font, pixels: int) -> str:
    """
    C{text}, shortened in the middle with C{…} until it is at most
    C{pixels} wide in C{font}.
    """
    if font.measure(text) <= pixels:
        return text
    keep = len(text)
    while keep > 1:
        keep -= 1
        head = (keep + 1) // 2
        shorter = text[:head] + "…" + text[len(text) - (keep - head):]
        if font.measure(shorter) <= pixels:
            return shorter
    return "…"


def style_window(root: tk.Misc, theme: Theme, fonts: Fonts) -> ttk.Style:
    """
    Configure the ttk styles of C{root}'s interpreter for C{theme} (on
    C{clam}, which takes colours everywhere).
    """
    style = ttk.Style(root)
    style.theme_use("clam")
    t = theme
    style.configure(
        ".", background=t.window, foreground=t.text, fieldbackground=t.field, bordercolor=t.border,
        lightcolor=t.window, darkcolor=t.window, troughcolor=t.panel, selectbackground=t.select,
        selectforeground=t.text, insertcolor=t.text, focuscolor=t.accent, font=fonts.base,
    )
    style.map(".", background=[("disabled", t.window)], foreground=[("disabled", t.muted)])
    for name, colour in (("TFrame", t.window), ("Panel.TFrame", t.panel), ("Pane.TFrame", t.pane),
                         ("Card.TFrame", t.field), ("Status.TFrame", t.panel)):
        style.configure(name, background=colour)
    style.configure("Rule.TFrame", background=t.border)
    style.configure("Banner.TFrame", background=t.mention_bg)
    style.configure("Banner.TLabel", background=t.mention_bg, foreground=t.text, font=fonts.small)
    style.configure("TLabel", background=t.window, foreground=t.text)
    style.configure("Panel.TLabel", background=t.panel, foreground=t.text)
    style.configure("Heading.TLabel", background=t.panel, foreground=t.muted, font=fonts.heading)
    style.configure("Muted.TLabel", background=t.panel, foreground=t.muted, font=fonts.small)
    style.configure("Card.TLabel", background=t.field, foreground=t.text, font=fonts.bold)
    style.configure("CardMuted.TLabel", background=t.field, foreground=t.muted, font=fonts.small)
    style.configure("CardError.TLabel", background=t.field, foreground=t.error, font=fonts.small)
    style.configure("Title.TLabel", background=t.window, foreground=t.text, font=fonts.title)
    style.configure("Server.TLabel", background=t.panel, foreground=t.text, font=fonts.title)
    style.configure("Topic.TLabel", background=t.window, foreground=t.muted, font=fonts.small)
    style.configure("Status.TLabel", background=t.panel, foreground=t.muted, font=fonts.small)
    style.configure("StatusError.TLabel", background=t.panel, foreground=t.error, font=fonts.small)
    style.configure("Target.TLabel", background=t.window, foreground=t.muted)
    style.configure("Dialog.TLabel", background=t.window, foreground=t.muted)
    style.configure("DialogError.TLabel", background=t.window, foreground=t.error)
    style.configure("TCheckbutton", background=t.window, foreground=t.text, indicatorbackground=t.field,
                    indicatorforeground=t.accent, bordercolor=t.border, lightcolor=t.field, darkcolor=t.field)
    style.map("TCheckbutton", background=[("active", t.window)], indicatorbackground=[("pressed", t.hover)])

    button = {"background": t.button, "foreground": t.text, "bordercolor": t.border, "lightcolor": t.button,
              "darkcolor": t.button, "padding": (12, 5), "focusthickness": 0, "anchor": "center"}
    style.configure("TButton", **button)
    style.map("TButton", background=[("disabled", t.panel), ("pressed", t.select), ("active", t.hover)],
              lightcolor=[("active", t.hover)], darkcolor=[("active", t.hover)],
              foreground=[("disabled", t.muted)])
    style.configure("Small.TButton", padding=(10, 2), font=fonts.small, width=0)
    style.configure("Emoji.TButton", padding=(4, 2), font=fonts.chat, width=0)
    style.configure("SmallAccent.TButton", background=t.accent, foreground=t.on_accent, bordercolor=t.accent,
                    lightcolor=t.accent, darkcolor=t.accent, padding=(10, 2), font=fonts.small, width=0)
    style.configure("Accent.TButton", background=t.accent, foreground=t.on_accent, bordercolor=t.accent,
                    lightcolor=t.accent, darkcolor=t.accent)
    for name in ("Accent.TButton", "SmallAccent.TButton"):
        style.map(name, background=[("disabled", t.button), ("pressed", t.accent_hover), ("active", t.accent_hover)],
                  lightcolor=[("disabled", t.button), ("active", t.accent_hover)],
                  darkcolor=[("disabled", t.button), ("active", t.accent_hover)],
                  bordercolor=[("disabled", t.border), ("active", t.accent_hover)],
                  foreground=[("disabled", t.muted)])

    style.configure("TEntry", fieldbackground=t.field, foreground=t.text, insertcolor=t.text,
                    bordercolor=t.border, lightcolor=t.field, darkcolor=t.field, padding=(8, 6))
    style.map("TEntry", bordercolor=[("focus", t.accent)], lightcolor=[("focus", t.field)])

    row = fonts.base.metrics("linespace") + 10
    for name in ("Rooms.Treeview", "Users.Treeview"):
        style.configure(name, background=t.panel, fieldbackground=t.panel, foreground=t.text,
                        bordercolor=t.panel, lightcolor=t.panel, darkcolor=t.panel, rowheight=row, font=fonts.base,
                        indent=0, padding=(8, 0))
        style.map(name, background=[("selected", t.select)], foreground=[("selected", t.text)])
        style.layout(name, [("Treeview.treearea", {"sticky": "nswe"})])

    style.configure("Transfer.Horizontal.TProgressbar", troughcolor=t.panel, background=t.accent,
                    bordercolor=t.field, lightcolor=t.accent, darkcolor=t.accent, thickness=6)
    style.configure("Done.Horizontal.TProgressbar", troughcolor=t.panel, background=t.ok,
                    bordercolor=t.field, lightcolor=t.ok, darkcolor=t.ok, thickness=6)
    style.configure("Failed.Horizontal.TProgressbar", troughcolor=t.panel, background=t.error,
                    bordercolor=t.field, lightcolor=t.error, darkcolor=t.error, thickness=6)
    style.configure("Vertical.TScrollbar", background=t.hover, troughcolor=t.pane, bordercolor=t.pane,
                    arrowcolor=t.muted, lightcolor=t.hover, darkcolor=t.hover, gripcount=0, arrowsize=9)
    style.map("Vertical.TScrollbar", background=[("active", t.muted)])
    style.layout("Vertical.TScrollbar", [("Vertical.Scrollbar.trough", {"sticky": "ns", "children": [
        ("Vertical.Scrollbar.thumb", {"sticky": "nswe"})]})])
    return style


def user_theme_path() -> Path:
    """
    Where the user's theme file is: C{theme.toml} in the client's config directory.
    """
    return config_dir() / THEME_FILE


def choose_theme(name: str) -> tuple[Theme, FontChoice, str | None]:
    """
    The theme C{name} (a built-in one, or L{USER_THEME}: the user's file,
    L{user_theme_path}), its fonts, and C{None}; or the dark theme, the
    default fonts and one line saying why, when the name is unknown or the
    file cannot be used (L{read_theme_file}).
    """
    if name == USER_THEME:
        try:
            theme, fonts = read_theme_file(user_theme_path())
        except ThemeError as e:
            return DARK, FontChoice(), f"Your theme is not used: {e}. The dark theme is."
        return theme, fonts, None
    if name not in THEMES:
        return DARK, FontChoice(), f"There is no theme {name!r}: the dark theme is used."
    return THEMES[name], FontChoice(), None


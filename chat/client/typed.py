# -*- test-case-name: tests.test_client_present,tests.test_client_service -*-
"""
What the user types, before it is sent: which lines carry passwords (kept
out of input history, shown masked), C{:shortcode:} emoji (the C{emoji}
library), and the texts of C{/help} that say how plain lines are read.
Pure functions of strings, shared by both front ends and the client core.
"""

from __future__ import annotations

import re

import emoji

MASK = "********"
"""What a password is shown as."""

SECRET_WORDS = {"login": (2,), "register": (1,), "password": (1, 2)}
"""The commands that carry passwords, and which of their words (after the
command, counting from 1) are passwords: C{/login NICK PASSWORD},
C{/register PASSWORD}, C{/password OLD NEW}."""


def _secret_parts(line: str) -> tuple[list[str], tuple[int, ...]]:
    """
    C{line} split into words and the whitespace between them (words at even
    indexes), with the indexes of the words that are passwords.
    """
    parts = re.split(r"(\s+)", line)
    words = [i for i, part in enumerate(parts) if i % 2 == 0 and part]
    if not words:
        return parts, ()
    first = parts[words[0]]
    if not first.startswith("/") or first.startswith("//"):
        return parts, ()
    places = SECRET_WORDS.get(first[1:].lower(), ())
    return parts, tuple(words[n] for n in places if n < len(words))


def secret_input(line: str) -> bool:
    """
    Whether a line the user typed carries a password (C{/login NICK
    PASSWORD}, C{/register PASSWORD}, C{/password OLD NEW}, any letter
    case, a password only partly typed included): such a line is kept out
    of the input history, and shown only L{masked}.
    """
    return bool(_secret_parts(line)[1])


def masked(line: str) -> str:
    """
    C{line} with each password it carries (see L{secret_input}) replaced by
    L{MASK}; other lines as they are. The command, the nick and the spacing
    are kept: C{/login bob ********}.
    """
    parts, secret = _secret_parts(line)
    return "".join(MASK if i in secret else part for i, part in enumerate(parts))


HABITS_HELP = (
    "A line not starting with / is said to your current room, except the habits of simple chat programs: "
    "send NICK TEXT (/msg), list (/list), help (/help), quit (/quit) and file:PATH (/send to the current room). "
    "Start a line with a space to say such words as they are, and with // to say a line starting with /."
)
"""How plain lines are read, for C{/help}."""

FORMATTING_HELP = (
    "Type :shortcode: for an emoji (:smile: :+1: :tada: :heart:). *bold*, _italic_, `code` and links are shown "
    "formatted; everyone else receives exactly what you typed."
)
"""Emoji and light formatting, for C{/help}."""

EMOJI_TEXT = {"me": 0, "msg": 1, "status": 0, "away": 0, "quit": 0, "exit": 0, "part": -1, "topic": -1}
"""The commands whose text gets emoji (L{with_emoji}): verb to the number
of words before the text (C{-1}: one when it is a C{#room}, else none).
No other command's arguments are touched: nicks, room names, and never
the passwords of C{/login}, C{/register} and C{/password}."""


def with_emoji(line: str) -> str:
    """
    C{line} (as typed, no line end) with each C{:shortcode:} of its text
    turned into its emoji by the C{emoji} library (C{language="alias"}:
    GitHub and Slack names, C{:+1:} and C{:thumbsup:} alike): the whole of
    a plain line (C{//} ones included), the text of the commands of
    L{EMOJI_TEXT}; other commands unchanged. Unknown shortcodes stay as
    typed.
    """
    if not line.startswith("/") or line.startswith("//"):
        return emoji.emojize(line, language="alias")
    verb, space, rest = line[1:].partition(" ")
    skip = EMOJI_TEXT.get(verb.lower())
    if skip is None or not rest:
        return line
    if skip < 0:
        skip = 1 if rest.lstrip().startswith("#") else 0
    kept = re.match(r"\s*" + r"\S+\s+" * skip, rest)
    if kept is None:
        return line
    head = f"/{verb}{space}{rest[:kept.end()]}"
    return head + emoji.emojize(rest[kept.end():], language="alias")

# -*- test-case-name: tests.test_wire -*-
"""
The input language of PROTOCOL.md sections 1 and 3: a decoded line becomes a
L{Command}, with control characters and bidi controls removed. Pure: no
Twisted, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
"""
The bidirectional embeddings, overrides and isolates (LRE, RLE, PDF, LRO,
RLO, LRI, RLI, FSI, PDI; U+202A to U+202E, U+2066 to U+2069): they
reorder the text that follows them, so C{invoice}, RLO, C{txt.exe} shows as
C{invoiceexe.txt} (PROTOCOL.md section 1).
The implicit marks LRM, RLM and ALM (U+200E, U+200F, U+061C) are not among
them: a mark acts as one strong letter of its direction and cannot reorder
other letters (any Hebrew or Arabic letter does as much), and
right-to-left writers need them to place punctuation and numbers.
"""

# C0 controls except TAB, DEL, C1 controls and the bidi controls (PROTOCOL.md section 1).
_CONTROL = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{BIDI_CONTROLS}]")


def clean(text: str) -> str:
    """
    Remove control characters so nobody can send terminal escapes to others
    or disguise text (PROTOCOL.md section 1). Applied by L{parse} to every
    input line, so it covers all relayed text: messages, statuses, topics,
    part reasons, file names.

    Other format characters stay: the zero-width joiner (U+200D) and the
    variation selectors hold emoji sequences together (woman, ZWJ, laptop
    shows one "woman technologist"; heart, U+FE0F one red heart). File
    names lose every format character (L{chat.spool.display_name}).

    @param text: a decoded line, without its line end.
    @return: C{text} without C0 controls (TAB kept), DEL, C1 controls and
        the L{BIDI_CONTROLS}.
    """
    return _CONTROL.sub("", text)


def strip_format(text: str) -> str:
    """
    Remove every format character (Unicode category Cf: the bidi controls
    and marks, zero-width spaces and joiners, soft hyphens, tags), for text
    that must show exactly what it is, such as a file name (PROTOCOL.md
    section 1).

    @param text: any C{str}.
    @return: C{text} without its Cf characters; everything else is kept.
    """
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


@dataclass(frozen=True, slots=True)
class Command:
    """
    One parsed input line.

    @ivar name: the lower-cased command word without its C{/}, or C{None} for
        a plain message (a line not starting with C{/}, or starting with C{//}).
    @ivar args: for a command, the rest of the line after the command word,
        stripped of surrounding spaces; for a message, the message text.
    """

    name: str | None
    args: str

    def split(self, count: int) -> list[str]:
        """
        Split the arguments into at most C{count} words; the last keeps its
        inner spaces (C{/msg bob hello there} gives C{["bob", "hello there"]}).

        @return: a list of 0 to C{count} non-empty C{str}.
        """
        return self.args.split(None, count - 1) if self.args else []


def parse(line: str) -> Command:
    """
    Turn one decoded line into a L{Command} (PROTOCOL.md section 3.5).

    @param line: a line decoded from UTF-8, without its line end.
    @return: the command; control characters are already removed.
    """
    line = clean(line)
    if line.startswith("//"):
        return Command(None, line[1:])
    if line.startswith("/"):
        word, _, rest = line[1:].partition(" ")
        return Command(word.lower(), rest.strip())
    return Command(None, line)

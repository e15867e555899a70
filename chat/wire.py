# -*- test-case-name: tests.test_wire -*-
"""
The input language of PROTOCOL.md sections 1 and 3: a decoded line becomes a
L{Command}. Pure: no Twisted, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# C0 controls except TAB, DEL, and C1 controls (PROTOCOL.md section 1).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """
    Remove control characters so nobody can send terminal escapes to others.

    @param text: a decoded line, without its line end.
    @return: C{text} without C0 controls (TAB kept), DEL and C1 controls.
    """
    return _CONTROL.sub("", text)


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

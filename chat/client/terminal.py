# -*- test-case-name: tests.test_client_terminal -*-
"""
Line editing for C{chat-client} on a terminal: L{LineEditor}, a
L{twisted.conch.recvline.HistoricRecvLine} that keeps the prompt on the
bottom row with what arrives printed above it, moves the cursor, recalls
input history (kept across runs in L{HISTORY_FILE} of
L{chat.client.settings.data_dir}), completes nicks, commands
and room names with Tab, and masks passwords as they are typed.
"""

from __future__ import annotations

import codecs
import os
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from twisted.conch.recvline import HistoricRecvLine
from twisted.logger import Logger
from typing_extensions import override

from chat.client.settings import data_dir
from chat.client.typed import secret_input

HISTORY_SIZE = 500
"""Lines of input history kept (in memory and in the file)."""

HISTORY_FILE = "stdio-history"
"""The name of the input history file in L{chat.client.settings.data_dir}."""

def history_path() -> Path:
    """
    The input history file: L{HISTORY_FILE} in the clients' data folder
    (L{chat.client.settings.data_dir}, e.g. C{~/.local/share/chat}).
    """
    return data_dir() / HISTORY_FILE


MASK = "*"
"""What each character of a password shows as while it is typed."""

_SECRET_WORDS = {"login": 2, "register": 1, "password": 1}
"""Commands that carry passwords: verb to the index of the first secret word
(the verb is word 0); every word from it on is secret."""


def _secret_spans(line: str) -> list[tuple[int, int]]:
    """
    Where C{line} (a typed line, str) carries passwords: C{(start, end)}
    character offsets of the secret words of C{/login NICK PASSWORD},
    C{/register PASSWORD} and C{/password OLD NEW}, also while still typed
    (every word from the first password on, so C{--no-join} too).

    L{chat.client.typed.secret_input} says whether a line carries one;
    this also says where, character by character, for masking as typed.
    """
    if not line.lstrip().startswith("/") or line.lstrip().startswith("//"):
        return []
    spans: list[tuple[int, int]] = []
    index, start, first = 0, None, None
    for i, ch in enumerate(line + " "):
        if ch.isspace():
            if start is not None:
                if index == 0:
                    first = _SECRET_WORDS.get(line[start + 1:i].lower())
                    if first is None:
                        return []
                elif first is not None and index >= first:
                    spans.append((start, i))
                index, start = index + 1, None
        elif start is None:
            start = i
    return spans


def is_secret(line: str) -> bool:
    """
    Whether C{line} (str) is a command that carries a password, complete or
    not (L{chat.client.typed.secret_input}, or a password word begun): it
    stays out of the input history, and Tab does not complete in it.
    """
    return secret_input(line) or bool(_secret_spans(line))


def masked(line: str) -> str:
    """
    C{line} as it is shown while typed: each character of its passwords
    (L{_secret_spans}) shown as L{MASK}. Same length as C{line}, so that the
    cursor stays where it is (unlike L{chat.client.typed.masked}, which
    hides the length too, for lines shown once sent).
    """
    chars = list(line)
    for start, end in _secret_spans(line):
        chars[start:end] = MASK * (end - start)
    return "".join(chars)


def columns(text: str) -> int:
    """
    How many terminal columns C{text} takes, character by character as
    the C library's C{wcwidth} counts them, and so as xterm, VTE, tmux and
    screen draw them: 2 for a wide character (East Asian wide and
    full-width, most emoji, a skin tone), 0 for combining marks, variation
    selectors and joiners, 1 otherwise. So C{❤️} (C{:heart:}, U+2764
    U+FE0F) takes 1 and C{👍🏽} 4; terminals that draw such sequences as one
    glyph (kitty, WezTerm) show them narrower than counted here.
    """
    return sum(_width(ch) for ch in text)


def _joins(ch: str) -> bool:
    """
    Whether C{ch} is drawn as part of the character before it: combining
    marks, variation selectors, zero-width joiners, emoji skin tones.
    """
    return unicodedata.category(ch) in ("Mn", "Me", "Cf") or "\U0001f3fb" <= ch <= "\U0001f3ff"


def _regional(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def clusters(text: str) -> list[str]:
    """
    C{text} (str) cut into what a terminal draws as one thing, each a str:
    a character with the combining marks, variation selectors and skin tones
    after it, emoji joined by U+200D (a family), a pair of regional
    indicators (a flag). The cursor moves, and Backspace deletes, a whole
    cluster at a time.
    """
    found: list[str] = []
    for ch in text:
        if found and (
            _joins(ch) or found[-1].endswith("\u200d")
            or (_regional(ch) and len(found[-1]) == 1 and _regional(found[-1]))
        ):
            found[-1] += ch
        else:
            found.append(ch)
    return found


def _width(ch: str) -> int:
    if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


class History:
    """
    The input history: at most L{HISTORY_SIZE} lines (str, without line
    ends), oldest first, saved to a file (UTF-8, one line each) after each
    line added. Lines with passwords (L{is_secret}) are never added.

    @ivar lines: the lines, oldest first.
    """

    _log = Logger()

    def __init__(self, path: Path | None) -> None:
        """
        @param path: the file to load from and save to; C{None}: kept in
            memory only. A file that cannot be read is treated as empty.
        """
        self.path = path
        self.lines: list[str] = []
        if path is not None:
            try:
                text = path.read_text("utf-8", "replace")
            except OSError:
                text = ""
            self.lines = [line for line in text.splitlines() if line and not is_secret(line)][-HISTORY_SIZE:]

    def add(self, line: str) -> None:
        """
        Add C{line} (unless empty, secret, or the same as the last one) and
        save the file; a file that cannot be written is logged, not raised.
        """
        if not line.strip() or is_secret(line) or (self.lines and self.lines[-1] == line):
            return
        self.lines.append(line)
        del self.lines[:-HISTORY_SIZE]
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(self.path.name + ".new")
            with open(temporary, "w", encoding="utf-8") as f:
                os.chmod(temporary, 0o600)
                f.write("".join(line + "\n" for line in self.lines))
            os.replace(temporary, self.path)
        except OSError as e:
            self._log.warn("Cannot save the input history to {path}: {error}", path=str(self.path), error=e.strerror)


NICK_COMMANDS = frozenset({"msg", "whois", "send", "invite", "unban", "kill"})
"""Commands whose first argument is a nick, completed from everyone known
(L{Completions.people}), not only the current room: C{/invite} (someone
not in the room yet), C{/unban} (someone kicked out) and C{/kill} too
(PROTOCOL.md section 10)."""

ROOM_NICK_COMMANDS = frozenset({"op", "deop", "kick", "ban", "mute", "unmute"})
"""The operators' commands whose first argument is a nick of the room
(PROTOCOL.md section 10): completed from the current room's nicks, which
are listed before a letter is typed."""


@dataclass
class Completions:
    """
    What Tab completes: commands (without C{/}), room names (with C{#}),
    the nicks of the current room, and everyone known (the people of every
    room joined and of the private conversations, for the nick of
    C{/msg NICK}, see L{NICK_COMMANDS}); each an iterable of str.
    """

    commands: Iterable[str] = ()
    rooms: Iterable[str] = ()
    nicks: Iterable[str] = field(default_factory=list)
    people: Iterable[str] = ()


def complete(before: str, completions: Completions) -> tuple[str, list[str]]:
    """
    Complete the word that ends C{before} (the text left of the cursor):
    a command, a room, a nick of the current room, or after C{/msg} (see
    L{NICK_COMMANDS}) anyone known, even before a letter is typed.

    @return: the text to insert at the cursor (C{""} for none) and the
        candidates when more than one matches (to be listed).
    """
    start = max(before.rfind(" "), before.rfind("\t")) + 1
    word = before[start:]
    words = before.split()
    first_argument = len(words) - (word != "") == 1 and words[0].startswith("/")
    nick_argument = first_argument and words[0][1:].lower() in NICK_COMMANDS
    room_nick_argument = first_argument and words[0][1:].lower() in ROOM_NICK_COMMANDS
    if start == 0 and word.startswith("/"):
        pool, prefix = [f"/{c}" for c in completions.commands], "/"
    elif word.startswith("#"):
        pool, prefix = list(completions.rooms), "#"
    elif nick_argument:
        pool, prefix = list(completions.people), ""
    else:
        pool, prefix = list(completions.nicks), ""
    if not word and not (nick_argument or room_nick_argument) or word == prefix and not pool:
        return "", []
    folded = word.casefold()
    found = sorted({c for c in pool if c.casefold().startswith(folded)}, key=str.casefold)
    if not found:
        return "", []
    if len(found) == 1:
        suffix = ": " if start == 0 and not prefix else " "
        return found[0][len(word):] + suffix, []
    common = found[0]
    for other in found[1:]:
        while not other.casefold().startswith(common.casefold()):
            common = common[:-1]
    return common[len(word):], found


class LineEditor(HistoricRecvLine):
    """
    The input line of a terminal, run by
    L{twisted.conch.insults.insults.ServerProtocol}: a prompt on the bottom
    row (under an optional status row, a progress bar), with output written
    above them by L{show}.

    Keys: printable characters insert; Left, Right, Home (Ctrl-A), End
    (Ctrl-E), Backspace, Delete edit, a whole cluster (L{clusters}: an
    emoji, a letter with its accents) at a time, wide ones taking two
    columns; Up and Down walk the history; Tab
    completes; Ctrl-U erases the line; Ctrl-W the word left of the cursor;
    Ctrl-L draws again; Enter submits; Ctrl-C, and Ctrl-D on an empty line,
    quit. The line is kept as characters (str); UTF-8 input is decoded.

    @ivar line: the characters of the line being typed.
    @ivar cursor: the cursor's index into L{line}.
    @ivar status: the status row's text (C{""}: no such row).
    @ivar left: whether L{leave} was called.
    """

    def __init__(
        self,
        submit: Callable[[str], None],
        *,
        quit: Callable[[], None],
        prompt: Callable[[], str] = lambda: "> ",
        completions: Callable[[], Completions] = Completions,
        history: History | None = None,
        size: Callable[[], tuple[int, int]] = lambda: (80, 24),
    ) -> None:
        """
        @param submit: called with each line entered (str, without line end).
        @param quit: called on Ctrl-C, or Ctrl-D on an empty line.
        @param prompt: the prompt to show (str), asked at each redraw.
        @param completions: what Tab completes from, asked at each Tab.
        @param history: the input history (a memory-only one by default).
        @param size: the terminal's C{(columns, rows)}.
        """
        self._submit = submit
        self._quit = quit
        self._prompt = prompt
        self._completions = completions
        self.history = history or History(None)
        self._size = size
        self.line: list[str] = []
        self.cursor = 0
        self.status = ""
        self._status_drawn = False
        self.left = False
        self._draft: list[str] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    # Setting up

    @override
    def connectionMade(self) -> None:
        super().connectionMade()
        self.historyLines = self.history.lines
        self.historyPosition = len(self.historyLines)
        controls = {
            b"\x01": self.handle_HOME, b"\x05": self.handle_END, b"\x08": self.handle_BACKSPACE,
            b"\x15": self.erase_line, b"\x17": self.erase_word, b"\x0c": self.redraw,
            b"\x03": self._quit, b"\x04": self.end_of_input,
        }
        self.keyHandlers.update(controls)

    @override
    def initializeScreen(self) -> None:
        # Unlike RecvLine, keep what the terminal shows, and leave its modes
        # alone (insert mode would outlive the program): each row is drawn whole.
        self.mode = "insert"
        self.draw()

    # Drawing

    def _erase(self) -> None:
        self.terminal.write(b"\r")
        self.terminal.eraseToLineEnd()
        if self._status_drawn:
            self.terminal.cursorUp(1)
            self.terminal.eraseToLineEnd()
            self._status_drawn = False

    def draw(self) -> None:
        """
        Draw the status row (if any) and the prompt row, at the cursor's row,
        which must be empty; nothing after L{leave}.
        """
        if self.left:
            return
        width = max(self._size()[0], 10)
        if self.status:
            self._write(_fit(self.status, width - 1) + "\n")
            self._status_drawn = True
        prompt = _fit(self._prompt(), width // 2)
        room = width - 1 - columns(prompt)
        shown = masked("".join(self.line))
        start = 0
        while columns(shown[start:self.cursor]) > room - 1:
            start += len(clusters(shown[start:self.cursor])[0])
        visible = _fit(shown[start:], room)
        self._write(prompt + visible)
        back = columns(visible[self.cursor - start:])
        if back:
            self.terminal.cursorBackward(back)

    def redraw(self) -> None:
        """
        Draw the status and prompt rows again, in place.
        """
        self._erase()
        self.draw()

    def show(self, text: str) -> None:
        """
        Write C{text} (str, whole lines with their C{"\\n"}) above the
        status and prompt rows, then draw those again under it.
        """
        self._erase()
        self._write(text)
        self.draw()

    def leave(self) -> None:
        """
        Erase the status and prompt rows for good (the program ends): what
        is shown later is written as is, and keys are ignored.
        """
        self._erase()
        self.left = True

    def set_status(self, status: str) -> None:
        """
        Show C{status} (one line, str; C{""}: none) in the row above the prompt.
        """
        if status != self.status:
            self.status = status
            self.redraw()

    def _write(self, text: str) -> None:
        # The tty is raw: no output processing turns "\n" into "\r\n".
        self.terminal.write(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "replace"))

    # Typing

    @override
    def keystrokeReceived(self, keyID: bytes | object, modifier: object) -> None:
        handler = self.keyHandlers.get(keyID)
        if self.left:
            return
        if handler is not None:
            self._decoder.reset()
            handler()
        elif isinstance(keyID, bytes) and (keyID >= b" " and keyID != b"\x7f"):
            text = self._decoder.decode(keyID)
            if text:
                self.insert(text)

    def insert(self, text: str) -> None:
        """
        Insert C{text} (str, no control characters) at the cursor.
        """
        self.line[self.cursor:self.cursor] = list(text)
        self.cursor += len(text)
        self.redraw()

    @override
    def characterReceived(self, ch: bytes, moreCharactersComing: bool) -> None:
        self.insert(ch.decode("utf-8", "replace"))

    @override
    def handle_TAB(self) -> None:
        before = "".join(self.line[:self.cursor])
        if is_secret(before):
            return
        text, candidates = complete(before, self._completions())
        if candidates and not text:
            self.show("  ".join(candidates) + "\n")
        elif text:
            self.insert(text)

    def _move(self, cursor: int) -> None:
        self.cursor = max(0, min(cursor, len(self.line)))
        self.redraw()

    def _previous(self) -> int:
        """
        Where the cluster (see L{clusters}) left of the cursor starts.
        """
        before = clusters("".join(self.line[:self.cursor]))
        return self.cursor - len(before[-1]) if before else 0

    def _next(self) -> int:
        """
        Where the cluster under the cursor ends.
        """
        start = self._previous()
        for cluster in clusters("".join(self.line[start:])):
            start += len(cluster)
            if start > self.cursor:
                return start
        return len(self.line)

    @override
    def handle_LEFT(self) -> None:
        self._move(self._previous())

    @override
    def handle_RIGHT(self) -> None:
        self._move(self._next())

    @override
    def handle_HOME(self) -> None:
        self._move(0)

    @override
    def handle_END(self) -> None:
        self._move(len(self.line))

    @override
    def handle_BACKSPACE(self) -> None:
        if self.cursor > 0:
            start = self._previous()
            del self.line[start:self.cursor]
            self._move(start)

    @override
    def handle_DELETE(self) -> None:
        if self.cursor < len(self.line):
            del self.line[self.cursor:self._next()]
            self.redraw()

    @override
    def handle_INSERT(self) -> None:
        """Always insert: typeover is not offered."""

    def erase_line(self) -> None:
        """
        Erase the whole line (Ctrl-U).
        """
        self.line, self.cursor = [], 0
        self.redraw()

    def erase_word(self) -> None:
        """
        Erase the word left of the cursor, and the blanks after it (Ctrl-W).
        """
        start = self.cursor
        while start > 0 and self.line[start - 1] == " ":
            start -= 1
        while start > 0 and self.line[start - 1] != " ":
            start -= 1
        del self.line[start:self.cursor]
        self._move(start)

    def end_of_input(self) -> None:
        """
        Ctrl-D: quit on an empty line, else delete the character under the cursor.
        """
        if self.line:
            self.handle_DELETE()
        else:
            self._quit()

    # History

    def _recall(self, position: int) -> None:
        if self.historyPosition == len(self.historyLines):
            self._draft = self.line
        self.historyPosition = position
        recalled = self.historyLines[position] if position < len(self.historyLines) else "".join(self._draft)
        self.line = list(recalled)
        self._move(len(self.line))

    @override
    def handle_UP(self) -> None:
        if self.historyPosition > 0:
            self._recall(self.historyPosition - 1)

    @override
    def handle_DOWN(self) -> None:
        if self.historyPosition < len(self.historyLines):
            self._recall(self.historyPosition + 1)

    @override
    def handle_RETURN(self) -> None:
        """
        Submit the line: it leaves the screen (what it does shows above)
        and goes into the history unless it carries a password.
        """
        line = "".join(self.line)
        self.line, self.cursor, self._draft = [], 0, []
        self.history.add(line)
        self.historyLines = self.history.lines
        self.historyPosition = len(self.historyLines)
        self.redraw()
        self._submit(line)

    @override
    def lineReceived(self, line: bytes) -> None:
        self._submit(line.decode("utf-8", "replace"))

    @override
    def terminalSize(self, width: int, height: int) -> None:
        self.redraw()


def _fit(text: str, width: int) -> str:
    """
    The longest start of C{text} that takes at most C{width} columns, whole
    clusters only.
    """
    used, end = 0, 0
    for cluster in clusters(text):
        used += columns(cluster)
        if used > width:
            break
        end += len(cluster)
    return text[:end]

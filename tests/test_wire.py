"""
Tests for L{chat.wire}: a decoded line becomes a L{Command} (PROTOCOL.md
sections 1 and 3.5), and the removal of control and bidi characters from
everything relayed to other users, checked end to end over the line
protocol.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from chat.protocol import ChatFactory
from chat.server import ChatServer
from chat.settings import Settings
from chat.spool import Spool
from chat.wire import BIDI_CONTROLS, Command, clean, parse, strip_format
from tests.support import START, ProtocolTestCase
from tests.test_spool import inline

BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
"""The nine bidi controls of PROTOCOL.md section 1, spelt out independently of L{BIDI_CONTROLS}."""

MARKS = "\u200e\u200f\u061c"
"""LRM, RLM and ALM: implicit direction marks, kept in relayed text."""

EMOJI = "\U0001F469\u200D\U0001F4BB \u2764\uFE0F \U0001F3F3\uFE0F\u200D\U0001F308 \U0001F44D\U0001F3FD"
"""Emoji sequences held together by ZWJ, variation selectors and skin-tone modifiers."""


class ParseTests(SynchronousTestCase):
    """
    L{parse}.
    """

    def test_plain_message(self) -> None:
        """
        A line not starting with / is a message whose text is the whole line, spaces kept.
        """
        self.assertEqual(parse("hello there"), Command(None, "hello there"))
        self.assertEqual(parse("  spaced  "), Command(None, "  spaced  "))
        self.assertEqual(parse(""), Command(None, ""))
        self.assertEqual(parse("a /b"), Command(None, "a /b"))

    def test_command_with_args(self) -> None:
        """
        A /command gives its word and the rest of the line stripped of surrounding spaces.
        """
        self.assertEqual(parse("/msg bob hello  there "), Command("msg", "bob hello  there"))
        self.assertEqual(parse("/join   #x"), Command("join", "#x"))

    def test_command_without_args(self) -> None:
        """
        A bare /command has empty arguments.
        """
        self.assertEqual(parse("/quit"), Command("quit", ""))
        self.assertEqual(parse("/quit   "), Command("quit", ""))

    def test_command_lowercased(self) -> None:
        """
        The command word is lower-cased; the arguments keep their case.
        """
        self.assertEqual(parse("/NICK Alice"), Command("nick", "Alice"))
        self.assertEqual(parse("/Me WAVES"), Command("me", "WAVES"))

    def test_double_slash_is_literal(self) -> None:
        """
        // at the start sends a message beginning with one literal /.
        """
        self.assertEqual(parse("//shrug"), Command(None, "/shrug"))
        self.assertEqual(parse("// x"), Command(None, "/ x"))
        self.assertEqual(parse("///"), Command(None, "//"))

    def test_c0_controls_stripped_tab_kept(self) -> None:
        """
        C0 control characters are removed from messages and commands, TAB is kept.
        """
        self.assertEqual(parse("a\x00b\x07c\x08d\te\x0bf\x0cg\rh\ni\x1fj"), Command(None, "abcd\tefghij"))
        self.assertEqual(parse("/msg bob hi\x07\tthere"), Command("msg", "bob hi\tthere"))

    def test_del_and_c1_stripped(self) -> None:
        """
        DEL and the C1 controls U+0080 to U+009F are removed; U+00A0 and beyond are kept.
        """
        self.assertEqual(parse("a\x7fb\x80c\x85d\x9be\x9ff\xa0g\u00e9"), Command(None, "abcdef\xa0g\u00e9"))

    def test_escape_sequences_defused(self) -> None:
        """
        Terminal escape sequences lose their ESC and CSI introducer, so nothing reaches a terminal as a control.
        """
        self.assertEqual(parse("\x1b[31mred\x1b[0m"), Command(None, "[31mred[0m"))
        self.assertEqual(parse("\x1b]0;title\x07x"), Command(None, "]0;titlex"))
        self.assertEqual(parse("\x9b2Jclear"), Command(None, "2Jclear"))

    def test_controls_stripped_before_command_detection(self) -> None:
        """
        Control characters are removed before the line is classified.
        """
        self.assertEqual(parse("\x00/nick bob"), Command("nick", "bob"))
        self.assertEqual(parse("/\x1bnick bob"), Command("nick", "bob"))

    def test_clean(self) -> None:
        """
        clean() removes exactly C0 except TAB, DEL and C1, keeping other text.
        """
        everything = "".join(chr(c) for c in range(0x00, 0xA1))
        self.assertEqual(clean(everything), "\t" + "".join(chr(c) for c in range(0x20, 0x7F)) + "\xa0")


class BidiTests(SynchronousTestCase):
    """
    L{clean} and L{strip_format} against bidirectional controls and other
    format characters (PROTOCOL.md section 1).
    """

    def test_bidi_controls_removed(self) -> None:
        """
        Each of U+202A to U+202E and U+2066 to U+2069 is removed, wherever it
        is in the line; LRM, RLM, ALM and emoji sequences (ZWJ, variation
        selectors) next to it stay.
        """
        self.assertEqual(BIDI_CONTROLS, "".join(BIDI))
        kept = f"\u05e9\u05dc\u05d5\u05dd{MARKS}! {EMOJI}"
        for control in BIDI:
            self.assertEqual(clean(f"{control}a{control}b{control}"), "ab", repr(control))
            self.assertEqual(clean(f"{control}{kept}{control}"), kept, repr(control))
            self.assertEqual(parse(f"/status a{control}b"), Command("status", "ab"), repr(control))

    def test_bidi_control_cannot_hide_a_command(self) -> None:
        """
        A bidi control before the slash does not turn a command into a message, nor the other way round.
        """
        self.assertEqual(parse("\u202e/nick bob"), Command("nick", "bob"))
        self.assertEqual(parse("/\u2066/x"), Command(None, "/x"))

    def test_only_bidi_controls_removed_in_their_block(self) -> None:
        """
        Of U+2000 to U+206F exactly the nine bidi controls are removed; spaces, marks and joiners stay.
        """
        block = "".join(chr(c) for c in range(0x2000, 0x2070))
        self.assertEqual(clean(block), "".join(c for c in block if c not in BIDI))

    def test_strip_format_removes_every_cf(self) -> None:
        """
        strip_format removes every character of category Cf and nothing else.
        """
        self.assertEqual(strip_format("a\u202eb\u200bc\u200dd\u00ade\ufefff\U000E0067g\u200fh"), "abcdefgh")
        self.assertEqual(strip_format("x\ufe0fy \u00e9\t"), "x\ufe0fy \u00e9\t")


class RelayedTextTests(ProtocolTestCase):
    """
    End to end over the line protocol: no bidi control a user sends reaches
    another user, in any relayed text, while emoji sequences do
    (PROTOCOL.md section 1).
    """

    settings = Settings(flood_burst=10_000, max_file=4096, spool_quota=10_000)

    def setUp(self) -> None:
        """
        As L{ProtocolTestCase}, with a spool in a temporary directory that
        stores uploads at once (no thread), and two json users.
        """
        directory = tempfile.TemporaryDirectory(prefix="chat-wire-test-")
        self.addCleanup(directory.cleanup)
        spool = Spool(os.path.join(directory.name, "spool"), self.settings.spool_quota, inline)
        spool.open()
        self.clock = Clock()
        self.clock.advance(START)
        self.factory = ChatFactory(ChatServer(self.settings, self.clock, files=spool))
        self.server = self.factory.server
        self._port = 40000
        self.alice = self.json_user("alice")
        self.bob = self.json_user("bob")
        self.alice.take()

    def relayed(self, line: str, kind: str, member: str = "text") -> list[Any]:
        """
        Have alice send C{line}; the C{member} of every C{kind} event bob receives.
        """
        self.alice.line(line)
        self.alice.take()
        return [event[member] for event in self.bob.take_json() if event["type"] == kind]

    def test_messages(self) -> None:
        """
        Each bidi control is removed from a room message, an action and a
        private message; emoji sequences and direction marks in it are kept.
        """
        for control in BIDI:
            self.assertEqual(
                self.relayed(f"{EMOJI} invoice{control}txt.exe {MARKS}", "message"),
                [f"{EMOJI} invoicetxt.exe {MARKS}"],
                repr(control),
            )
            self.assertEqual(self.relayed(f"/me wa{control}ves", "message"), ["waves"], repr(control))
            self.assertEqual(self.relayed(f"/msg bob p{control}st", "private"), ["pst"], repr(control))

    def test_statuses(self) -> None:
        """
        Each bidi control is removed from a status; emoji sequences and marks are kept.
        """
        for control in BIDI:
            self.assertEqual(
                self.relayed(f"/status out{control} to lunch {EMOJI}{MARKS}", "status"),
                [f"out to lunch {EMOJI}{MARKS}"],
                repr(control),
            )

    def test_topics(self) -> None:
        """
        Each bidi control is removed from a topic; emoji sequences and marks are kept.
        """
        for control in BIDI:
            self.assertEqual(
                self.relayed(f"/topic re{control}lease {EMOJI}{MARKS}", "topic"),
                [f"release {EMOJI}{MARKS}"],
                repr(control),
            )

    def test_part_reasons(self) -> None:
        """
        Each bidi control is removed from the reason of a part.
        """
        for control in BIDI:
            self.alice.line("/join #x")
            self.bob.line("/join #x")
            self.bob.take()
            self.assertEqual(self.relayed(f"/part #x b{control}ye", "part", "reason"), ["bye"], repr(control))

    def test_file_offer_names(self) -> None:
        """
        A file offered with a bidi control (or any format character) in its
        name is offered under the name without it, its real extension last.
        """
        for number, control in enumerate([*BIDI, "\u200b", "\u200e", "\ufeff"]):
            data = str(number).encode()
            self.alice.line(f"/upload bob invoice{control}txt.exe {len(data)}")
            [ready] = self.alice.take_json()
            self.assertEqual(ready["name"], "invoicetxt.exe", repr(control))
            self.alice.send(data)
            self.alice.take()
            self.assertEqual([offer["name"] for offer in self.bob.take_json()], ["invoicetxt.exe"], repr(control))

    def test_text_format(self) -> None:
        """
        A text-format reader gets the message without bidi controls too.
        """
        carol = self.text_user("carol")
        self.alice.line("".join(f"{control}x" for control in BIDI))
        self.assertEqual(carol.take().decode("utf-8"), "[14:02] #lobby <alice> xxxxxxxxx\r\n")


class SplitTests(SynchronousTestCase):
    """
    L{Command.split}.
    """

    def test_last_word_keeps_inner_spaces(self) -> None:
        """
        The last of at most count words keeps its inner spaces.
        """
        self.assertEqual(parse("/msg bob hello  there").split(2), ["bob", "hello  there"])
        self.assertEqual(Command("upload", "bob f.txt 10 abc").split(4), ["bob", "f.txt", "10", "abc"])
        self.assertEqual(Command("upload", "bob f.txt 10").split(4), ["bob", "f.txt", "10"])

    def test_count_one_keeps_everything(self) -> None:
        """
        split(1) gives the whole argument string as one word.
        """
        self.assertEqual(Command("status", "out to lunch").split(1), ["out to lunch"])

    def test_empty_args(self) -> None:
        """
        Empty arguments split into no words.
        """
        self.assertEqual(Command("part", "").split(2), [])

    def test_runs_of_spaces_separate(self) -> None:
        """
        Runs of spaces and tabs between words count as one separator.
        """
        self.assertEqual(Command("x", "a \t  b   c").split(3), ["a", "b", "c"])

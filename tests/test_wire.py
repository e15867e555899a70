"""
Tests for L{chat.wire}: a decoded line becomes a L{Command} (PROTOCOL.md
sections 1 and 3.5).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from chat.wire import Command, clean, parse


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

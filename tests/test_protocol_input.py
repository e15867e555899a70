"""
Tests for the input side of L{chat.protocol} (PROTOCOL.md section 1): LF,
CR LF and CR NUL line ends, telnet sequences, the line length limit and
input hygiene (bad UTF-8, control characters), fed over L{StringTransport}
one byte at a time and in odd chunk sizes, with time from a L{Clock}.
"""

from __future__ import annotations

from chat.settings import Settings
from tests.support import (
    CHUNK_SIZES,
    DO,
    DONT,
    ECHO,
    IAC,
    IP,
    NAWS,
    NOP,
    SB,
    SE,
    TIMING_MARK,
    TTYPE,
    WELCOME_TEXT,
    WILL,
    WONT,
    Client,
    ProtocolTestCase,
    chunked,
    error_text,
    registered_text,
)


class LineEndTests(ProtocolTestCase):
    """
    PROTOCOL.md section 1: LF, CR LF and CR NUL line ends, however the bytes arrive.
    """

    SCRIPT = ("alice", "hello there", "/ping x", "//slash", "")
    EXPECTED = (
        WELCOME_TEXT
        + registered_text("alice")
        + b"[14:02] #lobby <alice> hello there\r\n"
        + b"*** pong x\r\n"
        + b"[14:02] #lobby <alice> /slash\r\n"
    )

    def run_script(self, data: list[bytes]) -> bytes:
        _, factory = self.make_factory(self.settings)
        client = self.connect(factory=factory)
        for chunk in data:
            client.send(chunk)
        self.assertFalse(client.transport.disconnecting)
        return client.take()

    def check_line_end(self, end: bytes) -> None:
        data = b"".join(line.encode() + end for line in self.SCRIPT)
        self.assertEqual(self.run_script([data]), self.EXPECTED, (end, "whole"))
        for size in CHUNK_SIZES:
            self.assertEqual(self.run_script(list(chunked(data, size))), self.EXPECTED, (end, size))
        for cut in range(1, len(data)):
            self.assertEqual(self.run_script([data[:cut], data[cut:]]), self.EXPECTED, (end, cut))

    def test_lf(self) -> None:
        """
        LF ends lines, fed at once, one byte at a time, in odd chunks and split anywhere.
        """
        self.check_line_end(b"\n")

    def test_crlf(self) -> None:
        """
        CR LF ends lines, fed at once, one byte at a time, in odd chunks and split anywhere.
        """
        self.check_line_end(b"\r\n")

    def test_crnul(self) -> None:
        """
        CR NUL ends lines, fed at once, one byte at a time, in odd chunks and split anywhere.
        """
        self.check_line_end(b"\r\0")

    def test_mixed_line_ends(self) -> None:
        """
        One connection may mix the three line ends.
        """
        data = b"alice\r\nhello there\n/ping x\r\0//slash\r\n\n"
        self.assertEqual(self.run_script([data]), self.EXPECTED)
        self.assertEqual(self.run_script(list(chunked(data, 1))), self.EXPECTED)

    def test_bare_cr_not_line_end(self) -> None:
        """
        A bare CR inside a line is not a line end and is not relayed.
        """
        alice = self.text_user("alice")
        alice.send(b"one\rtwo\n")
        self.assertEqual(alice.take(), b"[14:02] #lobby <alice> onetwo\r\n")


class TelnetTests(ProtocolTestCase):
    """
    PROTOCOL.md section 1: telnet sequences removed and answered as a minimal server.
    """

    def test_timing_mark_answered(self) -> None:
        """
        C{IAC DO TIMING-MARK} is answered C{IAC WILL TIMING-MARK}.
        """
        alice = self.text_user("alice")
        alice.send(IAC + DO + TIMING_MARK)
        self.assertEqual(alice.take(), IAC + WILL + TIMING_MARK)

    def test_timing_mark_every_time(self) -> None:
        """
        C{DO TIMING-MARK} is answered each time, also twice in a row in one chunk.
        """
        alice = self.text_user("alice")
        alice.send(IAC + DO + TIMING_MARK + IAC + DO + TIMING_MARK)
        self.assertEqual(alice.take(), (IAC + WILL + TIMING_MARK) * 2)
        alice.send(IAC + DO + TIMING_MARK)
        self.assertEqual(alice.take(), IAC + WILL + TIMING_MARK)

    def test_ctrl_c_keeps_session(self) -> None:
        """
        Ctrl-C from telnet (C{IAC IP IAC DO TIMING-MARK}) gets C{WILL TIMING-MARK} and the session goes on.
        """
        alice = self.text_user("alice")
        alice.send(b"hal" + IAC + IP + IAC + DO + TIMING_MARK)
        self.assertEqual(alice.take(), IAC + WILL + TIMING_MARK)
        self.assertFalse(alice.transport.disconnecting)
        alice.send(b"lo\r\n")
        self.assertEqual(alice.take(), b"[14:02] #lobby <alice> hallo\r\n")

    def test_ctrl_c_before_registration(self) -> None:
        """
        Ctrl-C at the nickname prompt produces no error and no registration.
        """
        client = self.connect()
        client.take()
        client.send(IAC + IP + IAC + DO + TIMING_MARK)
        self.assertEqual(client.take(), IAC + WILL + TIMING_MARK)
        client.send(b"alice\r\n")
        self.assertEqual(client.take(), registered_text("alice"))

    def test_do_refused(self) -> None:
        """
        C{IAC DO x} for any other option is refused with C{IAC WONT x}.
        """
        alice = self.text_user("alice")
        alice.send(IAC + DO + ECHO + IAC + DO + b"\x03")
        self.assertEqual(alice.take(), IAC + WONT + ECHO + IAC + WONT + b"\x03")

    def test_will_refused(self) -> None:
        """
        C{IAC WILL x} is refused with C{IAC DONT x}.
        """
        alice = self.text_user("alice")
        alice.send(IAC + WILL + TTYPE + IAC + WILL + NAWS)
        self.assertEqual(alice.take(), IAC + DONT + TTYPE + IAC + DONT + NAWS)

    def test_wont_dont_unanswered(self) -> None:
        """
        C{IAC WONT x} and C{IAC DONT x} need no answer and produce none.
        """
        alice = self.text_user("alice")
        alice.send(IAC + WONT + ECHO + IAC + DONT + ECHO + IAC + NOP)
        self.assertEqual(alice.take(), b"")

    def test_iac_iac_is_data(self) -> None:
        """
        C{IAC IAC} is the data byte 0xFF, so what follows it is not a command;
        0xFF is not UTF-8, so the line is C{bad-encoding}.
        """
        alice = self.text_user("alice")
        alice.send(IAC + IAC + DO + TIMING_MARK + b"\n")
        self.assertEqual(alice.take(), error_text("bad-encoding", "lines must be UTF-8"))
        self.assertFalse(alice.transport.disconnecting)

    def test_subnegotiation_removed(self) -> None:
        """
        C{IAC SB ... IAC SE} is removed, with any line ends and IAC IAC inside it.
        """
        alice = self.text_user("alice")
        alice.send(b"he" + IAC + SB + NAWS + b"\x00\x50" + IAC + IAC + b"\n/quit\n" + IAC + SE + b"llo\n")
        self.assertEqual(alice.take(), b"[14:02] #lobby <alice> hello\r\n")
        self.assertFalse(alice.transport.disconnecting)

    def test_split_at_every_position(self) -> None:
        """
        Sequences split across chunks at any position are removed and answered alike.
        """
        data = (
            IAC + WILL + TTYPE + b"ali" + IAC + DO + TIMING_MARK + b"ce"
            + IAC + SB + NAWS + b"\x00\x50\x00\x18" + IAC + SE + b"\r\n"
            + IAC + IP + IAC + DO + TIMING_MARK + b"/pi" + IAC + IAC + IAC + NOP
            + b"\r\0/ping a\r\0"
        )
        expected = (
            WELCOME_TEXT + IAC + DONT + TTYPE + registered_text("alice")
            + error_text("bad-encoding", "lines must be UTF-8") + b"*** pong a\r\n"
        )
        replies = IAC + DONT + TTYPE, IAC + WILL + TIMING_MARK
        pieces = [[data]] + [list(chunked(data, size)) for size in CHUNK_SIZES]
        pieces += [[data[:cut], data[cut:]] for cut in range(1, len(data))]
        for chunks in pieces:
            _, factory = self.make_factory(self.settings)
            client = self.connect(factory=factory)
            for chunk in chunks:
                client.send(chunk)
            output = client.take()
            # Telnet replies are written as soon as their chunk is read, so they
            # may come before the lines of the same chunk: compare without them.
            self.assertEqual(output.count(replies[1]), 2, chunks)
            self.assertEqual(output.replace(replies[1], b""), expected, chunks)


class LineLengthTests(ProtocolTestCase):
    """
    PROTOCOL.md section 1: over-long lines are discarded whole, the connection kept.
    """

    settings = Settings(max_line=16, flood_burst=10_000)
    TOO_LONG = error_text("line-too-long", "a line is at most 16 bytes")

    def fresh_user(self) -> Client:
        _, factory = self.make_factory(self.settings)
        client = self.connect(factory=factory)
        client.line("alice")
        client.take()
        return client

    def test_at_limit_accepted(self) -> None:
        """
        A line of exactly the limit in bytes is accepted, whatever its line end.
        """
        alice = self.fresh_user()
        for end in (b"\n", b"\r\n", b"\r\0"):
            alice.send(b"x" * 16 + end)
            self.assertEqual(alice.take(), b"[14:02] #lobby <alice> " + b"x" * 16 + b"\r\n")

    def test_limit_in_bytes(self) -> None:
        """
        The limit counts UTF-8 bytes, not characters.
        """
        alice = self.fresh_user()
        alice.line("é" * 8)
        self.assertEqual(alice.take(), ("[14:02] #lobby <alice> " + "é" * 8 + "\r\n").encode())
        alice.line("é" * 9)
        self.assertEqual(alice.take(), self.TOO_LONG)

    def test_one_over_limit(self) -> None:
        """
        A line one byte over the limit is C{line-too-long}, and the next line works.
        """
        alice = self.fresh_user()
        for end in (b"\n", b"\r\n", b"\r\0"):
            alice.send(b"x" * 17 + end + b"/ping ok" + end)
            self.assertEqual(alice.take(), self.TOO_LONG + b"*** pong ok\r\n", end)
            self.assertFalse(alice.transport.disconnecting)

    def check_every_chunk_size(self, data: bytes, expected: bytes) -> None:
        for size in range(1, len(data) + 1):
            alice = self.fresh_user()
            for chunk in chunked(data, size):
                alice.send(chunk)
            self.assertEqual(alice.take(), expected, size)
            self.assertFalse(alice.transport.disconnecting, size)
        for cut in range(1, len(data)):
            alice = self.fresh_user()
            alice.send(data[:cut])
            alice.send(data[cut:])
            self.assertEqual(alice.take(), expected, ("cut", cut))

    def test_tail_never_runs(self) -> None:
        """
        What follows the limit up to the line end is part of the long line:
        a C{/quit} there never runs, at any chunk size.
        """
        for end in (b"\n", b"\r\n", b"\r\0"):
            data = b"y" * 17 + b"/quit" + end + b"/ping after" + end
            self.check_every_chunk_size(data, self.TOO_LONG + b"*** pong after\r\n")

    def test_tail_after_bare_cr_never_runs(self) -> None:
        """
        A bare CR is no line end, so a command after it in a long line never runs.
        """
        data = b"y" * 20 + b"\r/quit\n/ping after\n"
        self.check_every_chunk_size(data, self.TOO_LONG + b"*** pong after\r\n")

    def test_very_long_line(self) -> None:
        """
        A line a hundred times the limit gets one error, the lines around it work.
        """
        data = b"/ping a\n" + b"/quit " * 300 + b"\n/ping b\n"
        for size in (*CHUNK_SIZES, 1000, len(data)):
            alice = self.fresh_user()
            for chunk in chunked(data, size):
                alice.send(chunk)
            self.assertEqual(alice.take(), b"*** pong a\r\n" + self.TOO_LONG + b"*** pong b\r\n", size)

    def test_long_and_valid_lines_in_one_chunk(self) -> None:
        """
        Valid lines before, between and after long lines in one chunk all run, in order.
        """
        alice = self.fresh_user()
        alice.send(b"/ping a\n" + b"y" * 30 + b"\n/ping b\n" + b"z" * 40 + b"\r\n/ping c\n/ping d\r\0")
        self.assertEqual(
            alice.take(),
            b"*** pong a\r\n" + self.TOO_LONG + b"*** pong b\r\n" + self.TOO_LONG
            + b"*** pong c\r\n*** pong d\r\n",
        )

    def test_long_lines_back_to_back(self) -> None:
        """
        A long line right after another, the second unfinished in its chunk, is discarded too.
        """
        data = b"y" * 30 + b"\n" + b"z" * 30 + b"/quit\n/ping d\n"
        self.check_every_chunk_size(data, self.TOO_LONG * 2 + b"*** pong d\r\n")

    def test_long_line_before_registration(self) -> None:
        """
        A long first line in text is refused and does not become a nick.
        """
        _, factory = self.make_factory(self.settings)
        client = self.connect(factory=factory)
        client.take()
        client.send(b"a" * 17 + b"\n")
        self.assertEqual(client.take(), self.TOO_LONG)
        self.assertEqual(factory.server.domain.users, {})

    def test_long_line_not_relayed(self) -> None:
        """
        No part of a long line reaches the other users of the room.
        """
        _, factory = self.make_factory(self.settings)
        alice = self.connect(factory=factory)
        alice.line("alice")
        bob = self.connect(factory=factory)
        bob.line("bob")
        bob.take()
        for chunk in chunked(b"spam " * 20 + b"\nok\n", 3):
            alice.send(chunk)
        self.assertEqual(bob.take(), b"[14:02] #lobby <alice> ok\r\n")


class InputHygieneTests(ProtocolTestCase):
    """
    PROTOCOL.md section 1: bad encodings and control characters.
    """

    def test_bad_utf8(self) -> None:
        """
        A line that is not UTF-8 is C{bad-encoding}; the connection stays and the next line works.
        """
        alice = self.text_user("alice")
        bob = self.text_user("bob")
        alice.take()
        for bad in [b"caf\xc3", b"\x80abc", b"\xc0\xaf", b"\xed\xa0\x80", b"\xc3\x28"]:
            alice.send(bad + b"\n")
            self.assertEqual(alice.take(), error_text("bad-encoding", "lines must be UTF-8"), bad)
        self.assertFalse(alice.transport.disconnecting)
        self.assertEqual(bob.take(), b"")
        alice.line("fine")
        self.assertEqual(bob.take(), b"[14:02] #lobby <alice> fine\r\n")

    def test_bad_utf8_json(self) -> None:
        """
        In json, bad UTF-8 is an C{error} object with code C{bad-encoding}.
        """
        alice = self.json_user("alice")
        alice.send(b"\xfe\xfe\n")
        self.assertEqual(
            alice.take_json(), [{"type": "error", "code": "bad-encoding", "message": "lines must be UTF-8"}]
        )

    def test_bad_utf8_first_line(self) -> None:
        """
        A first line that is not UTF-8 does not register a nick.
        """
        client = self.connect()
        client.take()
        client.send(b"al\xe9ice\n")
        self.assertEqual(client.take(), error_text("bad-encoding", "lines must be UTF-8"))
        self.assertEqual(self.server.domain.users, {})

    def test_escapes_never_relayed(self) -> None:
        """
        C0 controls (but TAB), DEL and C1 controls are removed from relayed
        room messages, in text and json alike.
        """
        alice = self.text_user("alice")
        bob = self.text_user("bob")
        carol = self.json_user("carol")
        alice.take()
        bob.take()
        alice.send("hi \x1b[31mred\x1b[0m\x07\x08\x7f\u009b2J\x00\tend\n".encode())
        self.assertEqual(bob.take(), b"[14:02] #lobby <alice> hi [31mred[0m2J\tend\r\n")
        [message] = carol.take_json()
        self.assertEqual(message["text"], "hi [31mred[0m2J\tend")

    def test_escapes_stripped_everywhere(self) -> None:
        """
        Control characters are removed from actions, private messages, status, topic and part reasons.
        """
        alice = self.text_user("alice")
        bob = self.text_user("bob")
        for line in [
            "/me \x1b]0;pwned\x07waves", "/msg bob \x1b[2Jhi", "/status \x1b[5mbusy",
            "/topic \x1b[1mnews", "/join #dev", "/part #dev \x1b[0mbye\x9b",
        ]:
            alice.line(line)
        received = bob.take()
        self.assertNotIn(b"\x1b", received)
        self.assertNotIn("\x9b".encode(), received)
        self.assertEqual(
            received,
            b"[14:02] #lobby * alice ]0;pwnedwaves\r\n"
            b"[14:02] [private alice -> bob] [2Jhi\r\n"
            b"* alice set status: [5mbusy\r\n"
            b"* Topic of #lobby: [1mnews (set by alice)\r\n",
        )
        self.assertIn(b"left #dev ([0mbye)", alice.take())

    def test_junk_does_not_disturb_others(self) -> None:
        """
        Random binary junk from one connection never closes it or reaches a bystander.
        """
        alice = self.text_user("alice")
        bob = self.text_user("bob")
        bob.take()
        junk = bytes((i * 37 + 11) % 256 for i in range(5000)).replace(b"\n", b"")
        for chunk in chunked(junk, 97):
            alice.send(chunk)
        alice.send(b"\n")
        self.assertFalse(alice.transport.disconnecting)
        self.assertEqual(bob.take(), b"")
        alice.line("still here")
        self.assertEqual(bob.take(), b"[14:02] #lobby <alice> still here\r\n")

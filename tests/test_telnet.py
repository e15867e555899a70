"""
Tests for L{chat.telnet.TelnetFilter}: telnet sequences removed from input,
option requests answered, CR NUL and CR LF line ends (PROTOCOL.md section 1).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from chat.telnet import SUBNEGOTIATION_MAX, SUBNEGOTIATION_TIMEOUT, TelnetFilter

IAC = b"\xff"
DONT = b"\xfe"
DO = b"\xfd"
WONT = b"\xfc"
WILL = b"\xfb"
SB = b"\xfa"
AYT = b"\xf6"
IP = b"\xf4"
NOP = b"\xf1"
SE = b"\xf0"
ECHO = b"\x01"
TIMING_MARK = b"\x06"
TTYPE = b"\x18"
NAWS = b"\x1f"

SAMPLES: list[tuple[bytes, bytes, bytes]] = [
    # (input, expected text, expected reply)
    (b"hello\n", b"hello\n", b""),
    (b"a\r\nb\r\0c\rd\n", b"a\nb\nc\rd\n", b""),
    (b"x" + IAC + IAC + b"y\n", b"x\xffy\n", b""),
    (IAC + DO + TIMING_MARK + b"after\r\n", b"after\n", IAC + WILL + TIMING_MARK),
    (b"a" + IAC + IP + IAC + DO + TIMING_MARK + b"b" + IAC + AYT + b"c\r\n",
     b"abc\n", IAC + WILL + TIMING_MARK),
    (IAC + WILL + TTYPE + IAC + WILL + NAWS + IAC + DO + ECHO + b"hi\n",
     b"hi\n", IAC + DONT + TTYPE + IAC + DONT + NAWS + IAC + WONT + ECHO),
    (b"s" + IAC + SB + NAWS + b"\x00\x50\x00\x18\r\n" + IAC + IAC + b"z" + IAC + SE + b"e\r\0",
     b"se\n", b""),
    (b"q\r" + IAC + NOP + b"r\r\r\n", b"q\rr\r\n", b""),
    (IAC + WONT + ECHO + IAC + DONT + ECHO + b"\xc3\xa9\r\n", b"\xc3\xa9\n", b""),
]


def feed_all(chunks: list[bytes]) -> tuple[bytes, bytes]:
    """
    Feed C{chunks} in order to one new filter; return all text and all replies.
    """
    telnet = TelnetFilter()
    text = reply = b""
    for chunk in chunks:
        t, r = telnet.feed(chunk)
        text += t
        reply += r
    return text, reply


def chunks_of(data: bytes, size: int) -> list[bytes]:
    """
    Cut C{data} into pieces of C{size} bytes, the last one possibly shorter.
    """
    return [data[i:i + size] for i in range(0, len(data), size)]


def feed_each(telnet: TelnetFilter, chunks: list[bytes], now: float | None = None) -> tuple[bytes, bytes]:
    """
    Feed C{chunks} in order to C{telnet}, all with the same C{now}; return all text and all replies.
    """
    text = reply = b""
    for chunk in chunks:
        t, r = telnet.feed(chunk, now=now)
        text += t
        reply += r
    return text, reply


class FeedTests(SynchronousTestCase):
    """
    L{TelnetFilter.feed} on whole chunks.
    """

    def test_passthrough(self) -> None:
        """
        A chunk without IAC or CR comes back as the very same bytes, with no reply.
        """
        telnet = TelnetFilter()
        data = b"plain text\nwith \x00 and \xc3\xa9\n"
        text, reply = telnet.feed(data)
        self.assertIs(text, data)
        self.assertEqual(reply, b"")
        self.assertTrue(telnet.idle)

    def test_escaped_iac(self) -> None:
        """
        IAC IAC is one 0xFF data byte.
        """
        self.assertEqual(TelnetFilter().feed(b"a" + IAC + IAC + b"b"), (b"a\xffb", b""))

    def test_do_refused(self) -> None:
        """
        DO of an option other than TIMING-MARK is answered WONT.
        """
        self.assertEqual(TelnetFilter().feed(IAC + DO + ECHO), (b"", IAC + WONT + ECHO))

    def test_will_refused(self) -> None:
        """
        WILL of any option is answered DONT.
        """
        self.assertEqual(TelnetFilter().feed(IAC + WILL + NAWS), (b"", IAC + DONT + NAWS))

    def test_wont_dont_unanswered(self) -> None:
        """
        WONT and DONT need no answer and are removed.
        """
        self.assertEqual(TelnetFilter().feed(b"a" + IAC + WONT + ECHO + IAC + DONT + ECHO + b"b"), (b"ab", b""))

    def test_timing_mark_acknowledged_each_time(self) -> None:
        """
        DO TIMING-MARK is answered WILL TIMING-MARK every time it is asked.
        """
        telnet = TelnetFilter()
        for _ in range(3):
            self.assertEqual(telnet.feed(IAC + DO + TIMING_MARK), (b"", IAC + WILL + TIMING_MARK))
        self.assertEqual(
            telnet.feed(IAC + DO + TIMING_MARK + IAC + DO + TIMING_MARK),
            (b"", (IAC + WILL + TIMING_MARK) * 2),
        )

    def test_ctrl_c_sequence(self) -> None:
        """
        Telnet's Ctrl-C (IAC IP, then DO TIMING-MARK) leaves no text and gets WILL TIMING-MARK.
        """
        self.assertEqual(
            TelnetFilter().feed(IAC + IP + IAC + DO + TIMING_MARK),
            (b"", IAC + WILL + TIMING_MARK),
        )

    def test_commands_dropped(self) -> None:
        """
        IP, AYT and NOP are removed without reply.
        """
        self.assertEqual(TelnetFilter().feed(b"a" + IAC + IP + b"b" + IAC + AYT + b"c" + IAC + NOP), (b"abc", b""))

    def test_subnegotiation_dropped(self) -> None:
        """
        IAC SB ... IAC SE is removed entirely, IAC IAC inside it included.
        """
        self.assertEqual(
            TelnetFilter().feed(b"a" + IAC + SB + TTYPE + b"\x00xterm" + IAC + IAC + b"\n" + IAC + SE + b"b"),
            (b"ab", b""),
        )

    def test_line_ends(self) -> None:
        """
        CR LF and CR NUL become LF; LF stays LF.
        """
        self.assertEqual(TelnetFilter().feed(b"a\r\nb\r\0c\n"), (b"a\nb\nc\n", b""))

    def test_lone_cr_kept(self) -> None:
        """
        A CR followed by anything but LF or NUL is kept as a CR.
        """
        self.assertEqual(TelnetFilter().feed(b"a\rb"), (b"a\rb", b""))
        self.assertEqual(TelnetFilter().feed(b"a\r\r\n"), (b"a\r\n", b""))

    def test_trailing_cr_waits(self) -> None:
        """
        A CR at the end of a chunk is held until the next byte says what it is.
        """
        telnet = TelnetFilter()
        self.assertEqual(telnet.feed(b"a\r"), (b"a", b""))
        self.assertFalse(telnet.idle)
        self.assertEqual(telnet.feed(b"\0"), (b"\n", b""))
        self.assertTrue(telnet.idle)
        self.assertEqual(telnet.feed(b"b\r"), (b"b", b""))
        self.assertEqual(telnet.feed(b"c"), (b"\rc", b""))

    def test_samples_whole(self) -> None:
        """
        Each sample fed whole gives its expected text and reply.
        """
        for data, text, reply in SAMPLES:
            with self.subTest(data=data):
                self.assertEqual(feed_all([data]), (text, reply))


class FeedLineTests(SynchronousTestCase):
    """
    L{TelnetFilter.feed_line}: filtering stops at the first line end, so the
    bytes after it are left as they are (an upload's raw bytes).
    """

    def test_stops_after_first_line(self) -> None:
        """
        Only the first line is filtered and counted as used, whatever its line end.
        """
        for data, text, used in [
            (b"one\nrest\xff\r", b"one\n", 4),
            (b"one\r\n\xff\xfd\x01", b"one\n", 5),
            (b"one\r\x00\r\n", b"one\n", 5),
            (b"o\xff\xf4ne\r\nx", b"one\n", 7),
        ]:
            self.assertEqual(TelnetFilter().feed_line(data), (text, b"", used), data)

    def test_replies_only_for_the_line(self) -> None:
        """
        Option requests in the first line are answered; those after it are not read.
        """
        telnet = TelnetFilter()
        self.assertEqual(telnet.feed_line(b"\xff\xfd\x06hi\n\xff\xfd\x01"), (b"hi\n", b"\xff\xfb\x06", 6))

    def test_no_line_end_uses_all(self) -> None:
        """
        Without a line end all the bytes are used, and a half-read sequence carries over.
        """
        telnet = TelnetFilter()
        self.assertEqual(telnet.feed_line(b"abc\r"), (b"abc", b"", 4))
        self.assertFalse(telnet.idle)
        self.assertEqual(telnet.feed_line(b"\nxyz"), (b"\n", b"", 1))
        self.assertTrue(telnet.idle)


    @given(st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b"\xff", b"\x00", b"\xff\xfd\x06", b"hi "]),
                    max_size=12).map(b"".join))
    @settings(max_examples=300, derandomize=True)
    def test_fast_path_agrees(self, data: bytes) -> None:
        """
        Whatever the bytes, feed_line (with its shortcut for a first line ending in CR LF) gives what
        filtering them byte by byte up to the first line end gives, and leaves the filter in the same
        state; bytes it would not change at all (no IAC, no CR) are used whole.
        """
        fast, slow = TelnetFilter(), TelnetFilter()
        unchanged = b"\xff" not in data and b"\r" not in data
        expected = (data, b"", len(data)) if unchanged else slow._filter(data, True, None)
        self.assertEqual(fast.feed_line(data), expected)
        self.assertEqual(fast.idle, slow.idle)


class SplitTests(SynchronousTestCase):
    """
    Sequences split across chunks give the same result as whole chunks.
    """

    def test_split_at_every_position(self) -> None:
        """
        Feeding a sample in two pieces, split at any position, equals feeding it whole.
        """
        for data, text, reply in SAMPLES:
            for i in range(len(data) + 1):
                with self.subTest(data=data, split=i):
                    self.assertEqual(feed_all([data[:i], data[i:]]), (text, reply))

    def test_byte_at_a_time(self) -> None:
        """
        Feeding a sample one byte at a time equals feeding it whole.
        """
        for data, text, reply in SAMPLES:
            with self.subTest(data=data):
                self.assertEqual(feed_all([data[i:i + 1] for i in range(len(data))]), (text, reply))

    def test_split_sequences_leave_filter_busy(self) -> None:
        """
        A chunk ending inside a sequence leaves the filter not idle until it completes.
        """
        for prefix in [IAC, IAC + DO, IAC + SB, IAC + SB + b"x", IAC + SB + IAC, b"\r"]:
            with self.subTest(prefix=prefix):
                telnet = TelnetFilter()
                telnet.feed(prefix)
                self.assertFalse(telnet.idle)
        telnet = TelnetFilter()
        telnet.feed(IAC + SB + b"x" + IAC)
        self.assertEqual(telnet.feed(SE + b"text"), (b"text", b""))
        self.assertTrue(telnet.idle)


class SubnegotiationBoundTests(SynchronousTestCase):
    """
    A subnegotiation left open (a stray C{IAC SB}) ends past
    L{SUBNEGOTIATION_MAX} bytes at the first LF, or when data comes more than
    L{SUBNEGOTIATION_TIMEOUT} seconds after its C{SB}, so the session resumes.
    """

    def test_overlong_ends_at_first_lf_past_bound(self) -> None:
        """
        Past the bound the first LF ends a stray subnegotiation, the rest of that line is dropped and
        the next line is data again, at every chunk size.
        """
        data = (
            b"before\r\n" + IAC + SB + b"x" * (SUBNEGOTIATION_MAX - 2) + b"\n"  # an LF within the bound: payload
            + b"cut tail\r\n" + b"hello\r\n"
        )
        for size in range(1, len(data) + 1):
            with self.subTest(size=size):
                telnet = TelnetFilter()
                self.assertEqual(feed_each(telnet, chunks_of(data, size)), (b"before\nhello\n", b""))
                self.assertTrue(telnet.idle)

    def test_bound_is_exact(self) -> None:
        """
        An LF that is byte L{SUBNEGOTIATION_MAX} after C{IAC SB} is payload; one that is the byte after it
        ends the subnegotiation.
        """
        self.assertEqual(
            TelnetFilter().feed(IAC + SB + b"x" * (SUBNEGOTIATION_MAX - 1) + b"\n" + b"a\n" + b"b\n"),
            (b"b\n", b""),
        )
        self.assertEqual(
            TelnetFilter().feed(IAC + SB + b"x" * SUBNEGOTIATION_MAX + b"\n" + b"a\n" + b"b\n"),
            (b"a\nb\n", b""),
        )

    def test_overlong_then_naws_removed(self) -> None:
        """
        After an overlong subnegotiation ends at an LF, the line after it is data and a following NAWS
        subnegotiation (10x24: an LF in its payload) is still removed entirely, at every chunk size.
        """
        data = (
            IAC + SB + b"y" * SUBNEGOTIATION_MAX + b"\r\n" + b"first\r\n"
            + IAC + SB + NAWS + b"\x00\x0a\x00\x18" + IAC + SE + b"hi\r\n"
        )
        for size in range(1, len(data) + 1):
            with self.subTest(size=size):
                self.assertEqual(feed_each(TelnetFilter(), chunks_of(data, size)), (b"first\nhi\n", b""))

    def test_escaped_iac_past_bound(self) -> None:
        """
        Past the bound, IAC IAC is still an escaped 0xFF: the SE byte after it does not end the
        subnegotiation, the next LF does, at every chunk size.
        """
        data = IAC + SB + b"z" * SUBNEGOTIATION_MAX + IAC + IAC + SE + b"tail\n" + b"ok\n"
        for size in range(1, len(data) + 1):
            with self.subTest(size=size):
                self.assertEqual(feed_each(TelnetFilter(), chunks_of(data, size)), (b"ok\n", b""))

    def test_naws_with_escaped_iac_and_lf_removed(self) -> None:
        """
        A NAWS report of 255x10 (an escaped IAC and an LF in its payload) fed over 3 seconds is removed
        entirely, at every chunk size.
        """
        data = b"a" + IAC + SB + NAWS + b"\x00" + IAC + IAC + b"\x00\x0a" + IAC + SE + b"b\r\n"
        for size in range(1, len(data) + 1):
            with self.subTest(size=size):
                telnet = TelnetFilter()
                text = b""
                for index, chunk in enumerate(chunks_of(data, size)):
                    t, r = telnet.feed(chunk, now=1000.0 + index * 3.0 / len(data))
                    self.assertEqual(r, b"")
                    text += t
                self.assertEqual(text, b"ab\n")
                self.assertTrue(telnet.idle)

    def test_timed_out_subnegotiation_abandoned(self) -> None:
        """
        Data arriving more than L{SUBNEGOTIATION_TIMEOUT} seconds after a stray C{IAC SB} is read as data,
        even when an IAC was pending, at every chunk size.
        """
        late = b"hello\r\n"
        for stray in [IAC + SB, IAC + SB + b"junk", IAC + SB + b"x" + IAC]:
            early = b"before\r\n" + stray
            for size in range(1, len(early) + 1):
                with self.subTest(stray=stray, size=size):
                    telnet = TelnetFilter()
                    self.assertEqual(feed_each(telnet, chunks_of(early, size), now=100.0), (b"before\n", b""))
                    self.assertFalse(telnet.idle)
                    later = 100.0 + SUBNEGOTIATION_TIMEOUT + 0.5
                    self.assertEqual(feed_each(telnet, chunks_of(late, size), now=later), (b"hello\n", b""))
                    self.assertTrue(telnet.idle)

    def test_within_timeout_still_subnegotiation(self) -> None:
        """
        Data arriving exactly L{SUBNEGOTIATION_TIMEOUT} seconds after C{IAC SB} is still subnegotiation.
        """
        telnet = TelnetFilter()
        self.assertEqual(telnet.feed(IAC + SB + TTYPE, now=100.0), (b"", b""))
        self.assertEqual(telnet.feed(b"\x00xterm\n", now=100.0 + SUBNEGOTIATION_TIMEOUT), (b"", b""))
        self.assertFalse(telnet.idle)
        self.assertEqual(telnet.feed(IAC + SE + b"ok\n", now=100.0 + SUBNEGOTIATION_TIMEOUT), (b"ok\n", b""))

    def test_timed_from_sb_not_from_later_bytes(self) -> None:
        """
        The timeout counts from the chunk holding C{SB}: payload bytes arriving later do not restart it.
        """
        telnet = TelnetFilter()
        telnet.feed(b"a" + IAC, now=90.0)
        self.assertEqual(telnet.feed(SB + b"x", now=100.0), (b"", b""))
        self.assertEqual(telnet.feed(b"y", now=104.0), (b"", b""))
        self.assertEqual(telnet.feed(b"hi\n", now=100.0 + SUBNEGOTIATION_TIMEOUT + 0.5), (b"hi\n", b""))

    def test_no_time_no_timeout(self) -> None:
        """
        Calls without C{now} never time a subnegotiation out; the next call with one does.
        """
        telnet = TelnetFilter()
        telnet.feed(IAC + SB, now=100.0)
        self.assertEqual(telnet.feed(b"hello\n"), (b"", b""))
        self.assertFalse(telnet.idle)
        self.assertEqual(telnet.feed(b"again\n", now=200.0), (b"again\n", b""))

    def test_timed_from_first_time_given(self) -> None:
        """
        A subnegotiation begun in a call without C{now} is timed from the first later call with one.
        """
        telnet = TelnetFilter()
        telnet.feed(IAC + SB)
        self.assertEqual(telnet.feed(b"a\n", now=100.0), (b"", b""))
        self.assertEqual(telnet.feed(b"b\n", now=100.0 + SUBNEGOTIATION_TIMEOUT), (b"", b""))
        self.assertEqual(telnet.feed(b"c\n", now=100.0 + SUBNEGOTIATION_TIMEOUT + 0.5), (b"c\n", b""))

    def test_feed_line_after_timeout(self) -> None:
        """
        L{TelnetFilter.feed_line} reads a timed-out subnegotiation's next chunk as lines, up to the first line
        end only.
        """
        telnet = TelnetFilter()
        self.assertEqual(telnet.feed_line(IAC + SB + b"x", now=0.0), (b"", b"", 3))
        self.assertEqual(
            telnet.feed_line(b"/upload\r\nRAW\xff\r", now=SUBNEGOTIATION_TIMEOUT + 1.0), (b"/upload\n", b"", 9)
        )
        self.assertTrue(telnet.idle)

    def test_feed_line_after_overlong(self) -> None:
        """
        In L{TelnetFilter.feed_line} the LF that ends an overlong subnegotiation is not a line end: the
        line after it is filtered, the bytes after that line are not.
        """
        stray = IAC + SB + b"x" * SUBNEGOTIATION_MAX + b"\n"
        data = stray + b"/upload\r\n" + IAC + DO + ECHO
        self.assertEqual(TelnetFilter().feed_line(data), (b"/upload\n", b"", len(stray) + 9))

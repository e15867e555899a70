# -*- test-case-name: tests.test_protocol_input -*-
"""
The input side of a line front end (PROTOCOL.md sections 1 and 8):
L{LimitedLineReceiver} frames bytes into lines with Twisted's
L{LineReceiver}, removes telnet sequences, refuses over-long lines and bad
UTF-8, delays lines (and telnet commands) beyond the flood limit, and stops
reading while a request completes, so that a connection's lines run in order.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.protocols.basic import LineReceiver
from typing_extensions import override

from chat import errors, wire
from chat.counts import COUNTS
from chat.limits import TokenBucket
from chat.settings import Settings
from chat.telnet import TelnetFilter

LINE_BYTES_PER_TOKEN = 1024
"""
Bytes of a line that one flood token pays for: a line costs
C{max(1, len(line) / LINE_BYTES_PER_TOKEN)} tokens, its line end included,
so the flood limit bounds bytes as well as lines.
"""

TELNET_BYTES_PER_TOKEN = 512
"""
Bytes of telnet commands (RFC 854 sequences the filter removes) that one
flood token pays for: every 512th such byte of a connection takes a token,
so a client's few option requests cost nothing, and an IAC flood is slowed
like a flood of lines.
"""


class LimitedLineReceiver(LineReceiver):
    """
    Lines in, with the limits of PROTOCOL.md section 8; a subclass gets each
    line as a L{wire.Command} in L{command_received} and is told of refused
    input through L{refuse}. Raw mode (an upload's bytes) is
    L{LineReceiver}'s.

    The flood limit is a L{TokenBucket} of C{settings.flood_burst} tokens
    refilled at C{settings.flood_rate} tokens a second. A line is read once
    the bucket holds a token, and costs C{max(1, n / 1024)} tokens for
    C{n} bytes (L{LINE_BYTES_PER_TOKEN}): short lines one each, so the
    limit is C{flood_rate} lines a second for them, and long lines their
    bytes' worth, so at most C{1024 * flood_rate} bytes a second are read
    after the burst (an over-long line, refused unread, costs one). Telnet
    command bytes cost a token per 512 (L{TELNET_BYTES_PER_TOKEN}), taken
    as they are filtered out, each time another 512 have been. While the
    bucket is empty reading stops (the transport is paused), so a flood of
    lines or of telnet bytes slows its sender only; the first delay of an
    episode is announced with error C{flood}.
    """

    delimiter = b"\n"

    # What every connection sets is in slots; what few change (a flood, an
    # upload, a close) defaults here and is set on the instance when it does:
    # an idle connection costs little memory (issue 17).
    __slots__ = ("settings", "clock", "_telnet", "_bucket")

    _throttle: IDelayedCall | None = None
    _telnet_bytes = 0
    """Telnet command bytes filtered out and not yet paid for with a token."""
    _flood_warned = False
    _refeed: bytes | None = None
    _discarding = False
    _closing = False
    """Set once the connection is closing: no more input is read."""
    _waiting = False
    _unread = b""
    """Input not yet telnet-filtered: held while reading is paused."""
    _drop_input = False
    """Set by /starttls: the rest of its packet is dropped, never read as if it came over TLS."""

    def __init__(self, settings: Settings, clock: IReactorTime) -> None:
        self.settings = settings
        self.clock = clock
        self._telnet = TelnetFilter()
        self._bucket = TokenBucket(settings.flood_rate, settings.flood_burst, clock.seconds())

    @property
    def max_line(self) -> int:
        """The longest line taken, in bytes, without its line end."""
        return self.settings.max_line

    @property
    def MAX_LENGTH(self) -> int:  # type: ignore[override]  # noqa: N802 - LineReceiver's name
        """L{LineReceiver}'s limit: L{max_line} and room for a CR before the LF."""
        return self.settings.max_line + 1

    def command_received(self, command: wire.Command) -> None:
        """
        Called with each line, decoded and parsed.

        @raise errors.ChatError: refused; sent back with L{refuse}.
        """
        raise NotImplementedError()

    def refuse(self, error: errors.ChatError) -> None:
        """
        Tell the client its input was refused (C{error} event, wire code C{error.code}).
        """
        raise NotImplementedError()

    def reply_raw(self, data: bytes) -> None:
        """
        Send telnet bytes (an answer to an option request) as they are.
        """
        raise NotImplementedError()

    def flush_output(self) -> None:
        """
        Called at the end of each entry point: write what is pending.
        """

    # Input: bytes to lines

    @override
    def dataReceived(self, data: bytes) -> None:
        """
        Called by the transport with raw bytes: removes telnet sequences (and
        answers them), discards the rest of an over-long line, then frames.
        """
        COUNTS.bytes_in += len(data)
        try:
            self._receive(data)
        finally:
            self.flush_output()

    def _receive(self, data: bytes) -> None:
        if self._drop_input:
            self._drop_input = False
        if self._unread:
            data, self._unread = self._unread + data, b""
        if not self.paused and not self._closing:
            # Lines held back while reading was paused go first.
            super().dataReceived(b"")
            self._read_again()
        while (data or self._unread) and not self._closing:
            if self._drop_input:
                self._unread = b""
                return
            if self._unread:
                data, self._unread = self._unread + data, b""
            if self.paused:
                self._unread = data
                return
            if not self.line_mode:
                # An upload's bytes; what follows its last byte comes back in _unread.
                super().dataReceived(data)
                data = b""
                continue
            lines, data = self._lines(data)
            if self._discarding:
                end = lines.find(self.delimiter)
                if end < 0:
                    continue
                self._discarding = False
                lines = lines[end + 1:]
            super().dataReceived(lines)
            self._read_again()

    def _lines(self, data: bytes) -> tuple[bytes, bytes]:
        """
        Telnet-filter the start of C{data} that is surely lines (see
        L{TelnetFilter.feed_line}), so that the bytes after an C{/upload}
        line are never taken for telnet input.

        @return: the filtered lines, and the rest of C{data}, unfiltered.
        """
        now = self.clock.seconds()
        lines, reply, used = self._telnet.feed_line(data, now=now)
        if reply:
            self.reply_raw(reply)
        if used != len(lines):
            self._charge_telnet(data[:used], lines, now)
        return lines, data[used:]

    def _charge_telnet(self, data: bytes, lines: bytes, now: float) -> None:
        """
        Take the flood tokens of the telnet command bytes filtered out of
        C{data} (giving C{lines}): the bytes removed, less one for each
        CR LF or CR NUL and for a CR at its end (a line end the filter
        turns into LF, not a command). Reading stops while this leaves
        the bucket empty.
        """
        line_ends = data.count(b"\r\n") + data.count(b"\r\0") + data.endswith(b"\r")
        removed = len(data) - len(lines) - line_ends
        if removed <= 0:
            return
        tokens, self._telnet_bytes = divmod(self._telnet_bytes + removed, TELNET_BYTES_PER_TOKEN)
        if not tokens:
            return
        if self._flood_warned and self._bucket.full(now):
            self._flood_warned = False
        self._bucket.take(now, tokens)
        delay = self._bucket.wait(now)
        if delay > 0 and self._throttle is None and not self._closing:
            self._pause_for_flood(delay)

    def _read_again(self) -> None:
        while self._refeed is not None and not self._closing:
            rest, self._refeed = self._refeed, None
            super().dataReceived(rest)

    @override
    def lineLengthExceeded(self, line: bytes) -> None:
        """
        Called by L{LineReceiver} with an over-long line and everything it
        had buffered after it: the line is refused with C{line-too-long}, the
        lines after it are read again, and an unfinished line is discarded up
        to its line end, so its tail never runs as a command.
        """
        self._bucket.take(self.clock.seconds())
        self.refuse(errors.LineTooLong(f"a line is at most {self.max_line} bytes"))
        _, found, rest = line.partition(self.delimiter)
        if found:
            self._refeed = rest
        else:
            self._discarding = True

    @override
    def lineReceived(self, line: bytes) -> None:
        """
        Called by L{LineReceiver} for each complete line, without its LF.
        """
        if self._throttled(line):
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line:
            self.refuse(errors.LineTooLong(f"a line is at most {self.max_line} bytes"))
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.refuse(errors.BadEncoding("lines must be UTF-8"))
            return
        try:
            self.command_received(wire.parse(text))
        except errors.ChatError as e:
            self.refuse(e)

    def _throttled(self, line: bytes) -> bool:
        """
        Apply the flood limit (PROTOCOL.md section 8) to a line about to be
        processed. With no token left the line is put back in front of the
        buffer and reading stops until the bucket allows it: lines are
        delayed, never dropped. The first delay of an episode is announced
        with error C{flood}.

        @return: whether the line was held back.
        """
        now = self.clock.seconds()
        if self._flood_warned and self._bucket.full(now):
            self._flood_warned = False
        delay = self._bucket.wait(now)
        if delay <= 0:
            self._bucket.take(now, max(1.0, (len(line) + 1) / LINE_BYTES_PER_TOKEN))
            return False
        # Put the line back in front of what LineReceiver holds (while it is
        # receiving, dataReceived only appends): it is read again on resumeProducing.
        self._pause_for_flood(delay)
        super().dataReceived(line + self.delimiter + self.clearLineBuffer())
        return True

    def _pause_for_flood(self, delay: float) -> None:
        """
        Stop reading for C{delay} seconds, the flood limit's wait; the
        first wait of an episode is announced with error C{flood}.
        """
        COUNTS.flood_delays += 1
        self.pauseProducing()
        if not self._flood_warned:
            self._flood_warned = True
            self.refuse(errors.Flood("you are sending too fast: your lines are being delayed"))
        self._throttle = self.clock.callLater(delay, self._unthrottle)

    def _unthrottle(self) -> None:
        self._throttle = None
        if not self._closing and not self._waiting:
            self.resumeProducing()

    def hold(self, pending: Deferred[None]) -> None:
        """
        Stop reading until a request that completes later (one that checks
        a password, say) is done: the connection's next lines run after it.
        A request already done (C{pending} has its result) holds nothing.
        """
        self._waiting = True
        pending.addBoth(self._release)
        if self._waiting:
            self.pauseProducing()

    def _release(self, result: object) -> None:
        self._waiting = False
        if self.paused and not self._closing and self._throttle is None:
            self.resumeProducing()
        else:
            self.flush_output()

# -*- test-case-name: tests.test_telnet -*-
"""
Telnet input hygiene (PROTOCOL.md section 1): removes RFC 854 command
sequences from a byte stream, answers option requests as a minimal server,
and turns CR NUL line ends into LF. Pure: no Twisted imports beyond the
telnet byte constants, and time only as the C{now} its callers pass.

L{twisted.conch.telnet.Telnet} is not used as the filter because it raises
C{ValueError} on an unknown command byte (so junk would tear the connection
down with an unhandled error) and walks every byte in Python even when a chunk
holds no IAC at all, which is nearly always.
"""

from __future__ import annotations

from twisted.conch.telnet import DO, DONT, IAC, SB, SE, WILL, WONT

TIMING_MARK = b"\x06"
"""The TIMING-MARK option (RFC 860): telnet sends C{DO TIMING-MARK} after Ctrl-C."""

SUBNEGOTIATION_MAX = 512
"""
Bytes after C{IAC SB} (RFC 855) within which an LF is subnegotiation payload.
Past this many, the first LF ends the subnegotiation (see L{TelnetFilter}).
Real payloads are tiny: NAWS is 5 bytes, TTYPE a terminal name.
"""

SUBNEGOTIATION_TIMEOUT = 5.0
"""
Seconds after its C{IAC SB} after which a subnegotiation still open is
abandoned when more data arrives (see L{TelnetFilter}). A client sends a
whole subnegotiation at once, so it never takes this long.
"""

_NEGOTIATION = (WILL, WONT, DO, DONT)

# Parser states.
_DATA, _IAC, _OPTION, _SUB, _SUB_IAC, _CR = range(6)
_SUBNEGOTIATING = (_SUB, _SUB_IAC)


class TelnetFilter:
    """
    An incremental filter for one connection's inbound bytes.

    Feed it chunks as they arrive with L{feed}; sequences split across chunks
    are handled. Subnegotiations (C{IAC SB ... IAC SE}, RFC 855; C{IAC IAC}
    inside one is an escaped 0xFF, RFC 854) are dropped byte by byte as they
    arrive, so nothing is buffered and memory stays constant.

    A stray C{IAC SB} (junk, or a client that is not telnet) would otherwise
    swallow the session for good, so a subnegotiation is bounded, and ends at
    the first of:
      - its C{IAC SE} (RFC 855);
      - past L{SUBNEGOTIATION_MAX} bytes after C{IAC SB}, the first LF: the
        client is then surely typing lines, not negotiating. The bytes up to
        and including that LF are dropped with the subnegotiation, so the tail
        of a line whose head was swallowed never runs as a command (as with
        an over-long line); the next line is read as data. An LF within the
        first L{SUBNEGOTIATION_MAX} bytes is payload (a NAWS height of 10 is
        an LF byte);
      - a chunk fed with a C{now} more than L{SUBNEGOTIATION_TIMEOUT} seconds
        after the C{now} of the chunk that held its C{SB} byte: that whole
        chunk is read as data (an C{IAC} pending at the end of the previous
        chunk is dropped). A subnegotiation begun in a call without C{now}
        is timed from the first later call with one; calls without C{now}
        never time out.
    """

    __slots__ = ("_state", "_command", "_sub_length", "_sub_started")

    def __init__(self) -> None:
        self._state = _DATA
        self._command = b""
        self._sub_length = 0
        self._sub_started: float | None = None

    @property
    def idle(self) -> bool:
        """
        Whether no sequence is half-read, so a chunk without IAC or CR passes
        through L{feed} unchanged. An open subnegotiation is half-read until
        it ends by one of the rules of L{TelnetFilter}.
        """
        return self._state == _DATA

    def feed(self, data: bytes, now: float | None = None) -> tuple[bytes, bytes]:
        """
        Filter one chunk.

        @param data: bytes as read from the transport.
        @param now: when C{data} arrived, in POSIX seconds (the protocol's
            clock), to time out a subnegotiation left open; L{None} for no
            time check.
        @return: C{(text, reply)}: the application bytes with telnet sequences
            removed and CR NUL or CR LF turned into LF, and the telnet bytes to
            send back (C{WONT}/C{DONT} refusals, C{WILL TIMING-MARK}), possibly
            empty.
        """
        if now is not None and self._state in _SUBNEGOTIATING:
            self._expire(now)
        if self._state == _DATA and IAC not in data and b"\r" not in data:
            return data, b""
        text, reply, _ = self._filter(data, False, now)
        return text, reply

    def feed_line(self, data: bytes, now: float | None = None) -> tuple[bytes, bytes, int]:
        """
        Filter as much of C{data} as can be filtered without changing bytes
        that may not be telnet input at all (the raw bytes of an upload,
        PROTOCOL.md section 6): all of it when the filter would change
        nothing (no IAC or CR, nearly always), else up to the end of its
        first line only. An LF that ends a subnegotiation (see L{TelnetFilter})
        is not a line end: it is dropped, and filtering goes on after it.

        @param now: as for L{feed}.
        @return: C{(text, reply, used)}: as L{feed} returns, for the first
            C{used} bytes of C{data}.
        """
        if now is not None and self._state in _SUBNEGOTIATING:
            self._expire(now)
        if self._state == _DATA:
            if IAC not in data and b"\r" not in data:
                return data, b"", len(data)
            # A first line that ends with CR LF and holds no other CR nor an
            # IAC (what telnet, nc -C and every client send) is turned
            # into the line and LF without looking at each byte.
            end = data.find(b"\n")
            if end > 0 and data[end - 1] == 0x0D:  # CR
                line = data[:end - 1]
                if IAC not in line and b"\r" not in line:
                    return line + b"\n", b"", end + 1
        return self._filter(data, True, now)

    def _expire(self, now: float) -> None:
        """
        Abandon the open subnegotiation if it began more than
        L{SUBNEGOTIATION_TIMEOUT} seconds before C{now}; start timing it if
        it began without a time.
        """
        if self._sub_started is None:
            self._sub_started = now
        elif now - self._sub_started > SUBNEGOTIATION_TIMEOUT:
            self._state = _DATA

    def _filter(self, data: bytes, one_line: bool, now: float | None) -> tuple[bytes, bytes, int]:
        out = bytearray()
        reply = bytearray()
        state = self._state
        sub_length = self._sub_length
        used = len(data)
        for index, byte in enumerate(data):
            b = bytes((byte,))
            if state == _DATA:
                if b == IAC:
                    state = _IAC
                elif b == b"\r":
                    state = _CR
                else:
                    out += b
                    if one_line and b == b"\n":
                        used = index + 1
                        break
            elif state == _CR:
                state = _DATA
                if b in (b"\n", b"\0"):
                    out += b"\n"
                    if one_line:
                        used = index + 1
                        break
                elif b == IAC:
                    out += b"\r"
                    state = _IAC
                elif b == b"\r":
                    out += b"\r"
                    state = _CR
                else:
                    out += b"\r" + b
            elif state == _IAC:
                if b == IAC:
                    out += b  # an escaped 0xFF data byte
                    state = _DATA
                elif b in _NEGOTIATION:
                    self._command = b
                    state = _OPTION
                elif b == SB:
                    state = _SUB
                    sub_length = 0
                    self._sub_started = now
                else:
                    state = _DATA  # IP, AYT, NOP and the like: dropped
            elif state == _OPTION:
                reply += self._answer(self._command, b)
                state = _DATA
            elif state == _SUB or state == _SUB_IAC:
                sub_length += 1
                if b == b"\n" and sub_length > SUBNEGOTIATION_MAX:
                    state = _DATA  # overlong: resynchronise at the line end
                elif state == _SUB_IAC:
                    state = _DATA if b == SE else _SUB
                elif b == IAC:
                    state = _SUB_IAC
        self._state = state
        self._sub_length = sub_length
        return bytes(out), bytes(reply), used

    @staticmethod
    def _answer(command: bytes, option: bytes) -> bytes:
        """
        Answer one option request as a server that supports no option but
        TIMING-MARK (RFC 860), which it acknowledges every time it is asked.
        """
        if command == DO:
            if option == TIMING_MARK:
                return IAC + WILL + option
            return IAC + WONT + option
        if command == WILL:
            return IAC + DONT + option
        return b""  # WONT and DONT need no answer when nothing is enabled.

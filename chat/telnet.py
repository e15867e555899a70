# -*- test-case-name: tests.test_telnet -*-
"""
Telnet input hygiene (PROTOCOL.md section 1): removes RFC 854 command
sequences from a byte stream, answers option requests as a minimal server,
and turns CR NUL line ends into LF. Pure: no Twisted imports beyond the
telnet byte constants.

L{twisted.conch.telnet.Telnet} is not used as the filter because it raises
C{ValueError} on an unknown command byte (so junk would tear the connection
down with an unhandled error) and walks every byte in Python even when a chunk
holds no IAC at all, which is nearly always.
"""

from __future__ import annotations

from twisted.conch.telnet import DO, DONT, IAC, SB, SE, WILL, WONT

TIMING_MARK = b"\x06"
"""The TIMING-MARK option (RFC 860): telnet sends C{DO TIMING-MARK} after Ctrl-C."""

_NEGOTIATION = (WILL, WONT, DO, DONT)

# Parser states.
_DATA, _IAC, _OPTION, _SUB, _SUB_IAC, _CR = range(6)


class TelnetFilter:
    """
    An incremental filter for one connection's inbound bytes.

    Feed it chunks as they arrive with L{feed}; sequences split across chunks
    are handled. Subnegotiations (C{IAC SB ... IAC SE}) are dropped byte by
    byte as they arrive, so nothing is buffered and memory stays constant.
    """

    def __init__(self) -> None:
        self._state = _DATA
        self._command = b""

    @property
    def idle(self) -> bool:
        """
        Whether no sequence is half-read, so a chunk without IAC or CR passes
        through L{feed} unchanged.
        """
        return self._state == _DATA

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """
        Filter one chunk.

        @param data: bytes as read from the transport.
        @return: C{(text, reply)}: the application bytes with telnet sequences
            removed and CR NUL or CR LF turned into LF, and the telnet bytes to
            send back (C{WONT}/C{DONT} refusals, C{WILL TIMING-MARK}), possibly
            empty.
        """
        if self._state == _DATA and IAC not in data and b"\r" not in data:
            return data, b""
        text, reply, _ = self._filter(data, False)
        return text, reply

    def feed_line(self, data: bytes) -> tuple[bytes, bytes, int]:
        """
        Filter as much of C{data} as can be filtered without changing bytes
        that may not be telnet input at all (the raw bytes of an upload,
        PROTOCOL.md section 6): all of it when the filter would change
        nothing (no IAC or CR, nearly always), else up to the end of its
        first line only.

        @return: C{(text, reply, used)}: as L{feed} returns, for the first
            C{used} bytes of C{data}.
        """
        if self._state == _DATA and IAC not in data and b"\r" not in data:
            return data, b"", len(data)
        return self._filter(data, True)

    def _filter(self, data: bytes, one_line: bool) -> tuple[bytes, bytes, int]:
        out = bytearray()
        reply = bytearray()
        state = self._state
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
                else:
                    state = _DATA  # IP, AYT, NOP and the like: dropped
            elif state == _OPTION:
                reply += self._answer(self._command, b)
                state = _DATA
            elif state == _SUB:
                if b == IAC:
                    state = _SUB_IAC
            elif state == _SUB_IAC:
                state = _DATA if b == SE else _SUB
        self._state = state
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

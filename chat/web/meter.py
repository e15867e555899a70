# -*- test-case-name: tests.test_web_socket -*-
"""
A bound on the bytes of a WebSocket message still being received.

Twisted's WebSocket support hands a message to its protocol only once the
message is complete, buffering its frames meanwhile without a limit. The
web listener's connections are wrapped in a L{ReadMeter}. Once its socket
is open (L{IReadMeter.watch}), the meter reads the same bytes with
wsproto's own frame parser, counts the payload of the data message in
progress (control frames, such as pings, do not count), and tells the
socket when it passes the limit, before Twisted buffers those bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import ITransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from typing_extensions import override
from wsproto.frame_protocol import FrameProtocol, ParseFailed
from zope.interface import Interface, alsoProvides


def message_limit(max_line: int) -> int:
    """
    Bytes of payload a message may reach while arriving: four times the
    line limit, so that a frame somewhat over the limit is read whole and
    refused with C{line-too-long}, as on TCP.
    """
    return 4 * max_line


class IReadMeter(Interface):
    """
    Counts the payload of the WebSocket message being received on a connection.
    """

    def watch(limit: int, over: Callable[[], None]) -> None:  # noqa: N805
        """
        From now on (the handshake is done: what follows is frames), call
        C{over} once, and pass on no more bytes, when the data message
        being received passes C{limit} bytes of payload.
        """


class ReadMeter(ProtocolWrapper):
    """
    Wraps a web listener's connection (an C{HTTPChannel}, later the
    WebSocket it turns into) and provides L{IReadMeter} beside what the
    transport provides.

    @ivar message: payload bytes of the data message being received.
    """

    message = 0
    _limit = 0
    _frames: FrameProtocol | None = None
    _over: Callable[[], None] | None = None
    _dropping = False

    @override
    def makeConnection(self, transport: ITransport) -> None:
        super().makeConnection(transport)
        alsoProvides(self, IReadMeter)

    def watch(self, limit: int, over: Callable[[], None]) -> None:
        self._limit = limit
        self._over = over
        self._frames = FrameProtocol(client=False, extensions=[])
        self.message = 0

    @override
    def dataReceived(self, data: bytes) -> None:
        if self._dropping:
            return  # the socket is closing: what follows the message too big is dropped
        frames = self._frames
        if frames is not None:
            try:
                frames.receive_bytes(data)
                for frame in frames.received_frames():
                    if frame.opcode.iscontrol():
                        continue
                    self.message += len(frame.payload)
                    if self.message > self._limit:
                        self._too_big()
                        return
                    if frame.message_finished:
                        self.message = 0
            except ParseFailed:
                self._frames = None  # Twisted's own parser closes the socket
        super().dataReceived(data)

    def _too_big(self) -> None:
        over, self._over = self._over, None
        self._dropping = True
        if over is not None:
            over()


class MeteredFactory(WrappingFactory):
    """
    A L{WrappingFactory} whose connections are L{ReadMeter}s.
    """

    protocol = ReadMeter

    @override
    def logPrefix(self) -> str:  # noqa: N802 - Twisted's name
        """
        The site's name, for the port's log lines (not the wrapper's).
        """
        prefix: str = self.wrappedFactory.logPrefix()
        return prefix

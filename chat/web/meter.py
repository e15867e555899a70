# -*- test-case-name: tests.test_web_socket -*-
"""
A bound on the bytes of a WebSocket message still being received.

Twisted's WebSocket support hands a message to its protocol only once the
message is complete, buffering its frames meanwhile without a limit. The
web listener's connections are wrapped in a L{ReadMeter}, which counts the
bytes read since the socket's last complete message, and tells the socket
(L{IReadMeter.watch}) when they pass L{unframed_limit}, before they are
buffered.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import ITransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from typing_extensions import override
from zope.interface import Interface, alsoProvides

READ_SIZE = 65536
"""The most bytes Twisted's TCP transport reads at once."""


def unframed_limit(max_line: int) -> int:
    """
    Bytes a message may take while arriving: four times the line limit
    (an over-long frame up to that is read and refused with
    C{line-too-long}, as on TCP), plus one read's worth, since one read
    may end a message and begin the next.
    """
    return 4 * max_line + READ_SIZE


class IReadMeter(Interface):
    """
    Counts the bytes read on a connection since its last complete message.
    """

    def watch(limit: int, over: Callable[[], None]) -> None:  # noqa: N805
        """
        From now on, call C{over} (once) instead of passing on bytes read
        when more than C{limit} have come since the last L{framed}.
        """

    def framed() -> None:
        """
        A complete message was read: start counting again.
        """


class ReadMeter(ProtocolWrapper):
    """
    Wraps a web listener's connection (an C{HTTPChannel}, later the
    WebSocket it turns into) and provides L{IReadMeter} beside what the
    transport provides.
    """

    unframed = 0
    _limit: int | None = None
    _over: Callable[[], None] | None = None
    _dropping = False

    @override
    def makeConnection(self, transport: ITransport) -> None:
        super().makeConnection(transport)
        alsoProvides(self, IReadMeter)

    def watch(self, limit: int, over: Callable[[], None]) -> None:
        self._limit = limit
        self._over = over
        self.unframed = 0

    def framed(self) -> None:
        self.unframed = 0

    @override
    def dataReceived(self, data: bytes) -> None:
        if self._dropping:
            return  # the socket is closing: what follows the message too big is dropped
        limit = self._limit
        if limit is not None:
            self.unframed += len(data)
            if self.unframed > limit:
                over, self._over = self._over, None
                self._dropping = True
                if over is not None:
                    over()
                return
        super().dataReceived(data)


class MeteredFactory(WrappingFactory):
    """
    A L{WrappingFactory} whose connections are L{ReadMeter}s.
    """

    protocol = ReadMeter

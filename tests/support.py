"""
Shared fixtures of the test suite: a L{ChatServer} with its line front end
over L{StringTransport} with time from a L{Clock}, clients that feed it
bytes, and helpers to read what they are sent (PROTOCOL.md sections 1 to 5).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from typing_extensions import override

import chat
from chat.protocol import ChatFactory
from chat.server import ChatServer
from chat.settings import Settings

START = 1763733723.5
"""The clock's time when each test starts: 2025-11-21T14:02:03.500Z."""
TS = "2025-11-21T14:02:03.500Z"

IAC, DONT, DO, WONT, WILL = b"\xff", b"\xfe", b"\xfd", b"\xfc", b"\xfb"
SB, SE, IP, NOP = b"\xfa", b"\xf0", b"\xf4", b"\xf1"
TIMING_MARK, ECHO, TTYPE, NAWS = b"\x06", b"\x01", b"\x18", b"\x1f"

WELCOME_TEXT = (
    f"*** Welcome to chat (chat {chat.__version__}). Times are UTC.\r\n"
    "*** Choose a nickname (letters, digits, _ or -), or /help:\r\n"
).encode()
WELCOME_JSON = {
    "type": "welcome",
    "server": "chat",
    "version": chat.__version__,
    "motd": "",
    "limits": {"line": 4096, "nick": 24, "file": 100 * 1024 * 1024},
}

CHUNK_SIZES = (1, 2, 3, 4, 5, 7, 11, 13, 64)


def registered_text(nick: str, others: tuple[str, ...] = ()) -> bytes:
    """
    What a text connection is sent when C{nick} registers into C{#lobby}
    where C{others} already are (its history being empty).
    """
    members = sorted((nick, *others), key=str.lower)
    return (
        f"*** You are {nick}. Type to talk, /help for commands.\r\n"
        f"[14:02] * {nick} joined #lobby\r\n"
        f"* {len(members)} user{'' if len(members) == 1 else 's'} in #lobby:\r\n"
        + "".join(f"*   {m} (idle 0s)\r\n" for m in members)
    ).encode()


def error_text(code: str, message: str) -> bytes:
    return f"*** Error: {message} ({code})\r\n".encode()


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    """
    C{data} in pieces of C{size} bytes (the last may be shorter).
    """
    for start in range(0, len(data), size):
        yield data[start:start + size]


def decode_json(data: bytes) -> list[dict[str, Any]]:
    """
    Decode what a json connection was sent: CR LF terminated JSON objects.
    """
    if not data:
        return []
    assert data.endswith(b"\r\n"), data
    return [json.loads(line) for line in data[:-2].split(b"\r\n")]


class RecordingTransport(StringTransport):
    """
    A L{StringTransport} that also records each C{write} call (so identity of
    the written C{bytes} can be checked) and calls to C{setTcpNoDelay}.
    """

    def __init__(self, peer: IPv4Address) -> None:
        super().__init__(hostAddress=IPv4Address("TCP", "127.0.0.1", 8888), peerAddress=peer)
        self.writes: list[bytes] = []
        self.no_delay: list[bool] = []

    @override
    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)

    def setTcpNoDelay(self, enabled: bool) -> None:  # noqa: N802 - ITCPTransport's name
        self.no_delay.append(enabled)


class Client:
    """
    One connection: a L{ChatProtocol} built by the factory over a
    L{RecordingTransport}.
    """

    def __init__(self, factory: ChatFactory, host: str, port: int) -> None:
        address = IPv4Address("TCP", host, port)
        self.transport = RecordingTransport(address)
        self.protocol = factory.buildProtocol(address)
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        """
        Deliver raw bytes as the transport would.
        """
        self.protocol.dataReceived(data)

    def line(self, text: str, end: bytes = b"\n") -> None:
        """
        Deliver one line of text, encoded as UTF-8, with C{end}.
        """
        self.send(text.encode("utf-8") + end)

    def take(self) -> bytes:
        """
        Everything written since the last call, then clear it.
        """
        value: bytes = self.transport.value()
        self.transport.clear()
        return value

    def take_json(self) -> list[dict[str, Any]]:
        return decode_json(self.take())

    @property
    def producer(self) -> IPushProducer:
        """
        The producer the protocol registered on its transport (its outbox).
        """
        producer = self.transport.producer
        assert producer is not None
        return cast(IPushProducer, producer)

    def lose(self) -> None:
        """
        Tell the protocol its connection is closed, as the reactor would.
        """
        self.protocol.connectionLost(Failure(ConnectionDone()))


class ProtocolTestCase(SynchronousTestCase):
    """
    A server and its line factory with a L{Clock} at L{START}, and helpers
    to connect clients.
    """

    settings = Settings(flood_burst=10_000)

    def setUp(self) -> None:
        self.clock, self.factory = self.make_factory(self.settings)
        self.server = self.factory.server
        self._port = 40000

    @staticmethod
    def make_factory(settings: Settings) -> tuple[Clock, ChatFactory]:
        """
        A line front end over a new L{ChatServer} in memory, with a L{Clock}
        at L{START}.
        """
        clock = Clock()
        clock.advance(START)
        return clock, ChatFactory(ChatServer(settings, clock))

    def connect(self, host: str = "127.0.0.1", factory: ChatFactory | None = None) -> Client:
        self._port += 1
        return Client(factory or self.factory, host, self._port)

    def text_user(self, nick: str, host: str = "127.0.0.1") -> Client:
        """
        A text connection registered as C{nick}, its output cleared.
        """
        client = self.connect(host)
        client.line(nick)
        client.take()
        return client

    def json_user(self, nick: str, host: str = "127.0.0.1") -> Client:
        """
        A json connection registered as C{nick}, its output cleared.
        """
        client = self.connect(host)
        client.line("/format json")
        client.line(f"/nick {nick}")
        client.take()
        return client

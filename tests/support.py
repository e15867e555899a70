"""
Shared fixtures of the test suite: a L{ChatServer} with its line front end
over L{StringTransport} with time from a L{Clock}, clients that feed it
bytes, and helpers to read what they are sent (PROTOCOL.md sections 1 to 5);
and a L{ChatDomain} over a recording bus and a memory store, with fake
participants and literal times.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from typing_extensions import override
from zope.interface import implementer

import chat
from chat import events
from chat.delivery import Directory
from chat.domain import LOBBY, ChatDomain, User
from chat.ids import LocalIds
from chat.interfaces import Address, IBus, IParticipant, Outgoing
from chat.memory_store import MemoryStore
from chat.protocol import ChatFactory
from chat.server import ChatServer
from chat.settings import Settings
from chat.storage import IStore

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


def registered_text(nick: str, others: tuple[str, ...] = (), operator: str | None = None) -> bytes:
    """
    What a text connection is sent when C{nick} registers into C{#lobby}
    where C{others} already are (its history being empty): the first of
    C{others} is #lobby's operator, or C{nick} when alone, who then gets the
    line saying so (PROTOCOL.md section 10); or C{operator} when given (C{nick}
    then also gets that line, as everyone in #lobby does).
    """
    members = sorted((nick, *others), key=str.lower)
    if operator is None:
        operator = others[0] if others else nick
    return (
        f"*** You are {nick}. Type to talk, /help for commands.\r\n"
        f"[14:02] * {nick} joined #lobby\r\n"
        + (f"* {nick} is an operator of #lobby\r\n" if operator == nick else "")
        + f"* {len(members)} user{'' if len(members) == 1 else 's'} in #lobby:\r\n"
        + "".join(f"*   {'@' if m == operator else ''}{m} (idle 0s)\r\n" for m in members)
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


T0 = 1_700_000_000.0
"""A literal time: 2023-11-14T22:13:20Z."""


def at(seconds: float = 0.0) -> datetime:
    """
    The aware UTC datetime C{seconds} after L{T0}.
    """
    return datetime.fromtimestamp(T0 + seconds, timezone.utc)


@implementer(IParticipant)
class FakeParticipant:
    """
    A connection as the domain sees it, named for readable failures.
    """

    front_end = "line"
    nick = ""
    account = None
    peer = "192.0.2.1"

    def __init__(self, name: str, secure: bool = False) -> None:
        self.name = name
        self.secure = secure

    def deliver(self, outgoing: Outgoing) -> None:
        pass

    def close(self, reason: str) -> None:
        pass

    def __repr__(self) -> str:
        return f"<FakeParticipant {self.name}>"


@implementer(IBus)
class RecordingSink:
    """
    A bus that records every publication as C{(event, tuple(recipients))},
    the recipients resolved from its address as the local bus does.
    """

    def __init__(self) -> None:
        self.published: list[tuple[events.Event, tuple[IParticipant, ...]]] = []
        self.directory = Directory()

    def publish(self, event: events.Event, address: Address) -> None:
        self.directory.before(event, address)
        self.published.append((event, tuple(self.directory.resolve(address))))
        self.directory.after(event)


def make_domain(sink: IBus, store: IStore, history_on_join: int = 50) -> ChatDomain:
    """
    A domain over C{sink} and C{store}, its ids counting from the store's last.
    """
    return ChatDomain(sink, store, LocalIds(store.last_id()), history_on_join)


class DomainTestCase(SynchronousTestCase):
    """
    A domain over a recording sink and a memory store, with helpers.
    """

    history_on_join = 50

    def setUp(self) -> None:
        self.sink = RecordingSink()
        self.store = MemoryStore()
        self.domain = make_domain(self.sink, self.store, self.history_on_join)

    def take(self) -> list[tuple[events.Event, tuple[IParticipant, ...]]]:
        """
        Return what was published since the last call, and forget it.
        """
        published, self.sink.published = self.sink.published, []
        return published

    def alice_bob_apart_from_carol(self) -> list[tuple[User, FakeParticipant]]:
        """
        Register alice, bob and carol: alice and bob share #lobby and #x,
        carol is only in #c. Their events are taken.
        """
        users = [self.register(nick) for nick in ("alice", "bob", "carol")]
        (alice, _), (bob, _), (carol, _) = users
        self.domain.join(alice, "#x", T0)
        self.domain.join(bob, "#x", T0)
        self.domain.join(carol, "#c", T0)
        self.domain.part(carol, LOBBY, "", T0)
        self.take()
        return users

    def register(self, nick: str, now: float = T0, secure: bool = False) -> tuple[User, FakeParticipant]:
        """
        Register a new participant as C{nick}, forgetting what was published.
        """
        participant = FakeParticipant(nick, secure)
        user = self.domain.register(participant, nick, now)
        self.take()
        return user, participant

    def assert_same_recipients(
        self, actual: tuple[IParticipant, ...], expected: Iterable[FakeParticipant]
    ) -> None:
        """
        Assert that C{actual} holds exactly C{expected}, each once, in any order.
        """
        key = lambda p: p.name  # noqa: E731
        self.assertEqual(sorted(actual, key=key), sorted(expected, key=key))

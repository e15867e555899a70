"""
Tests for L{chat.web.socket} (the WebSocket participant and the Origin
check, PROTOCOL.md section 9) and L{chat.web.meter}, without a network:
the web listener's real protocol factory (L{chat.web.site.web_factory})
over a L{StringTransport}, spoken to by a C{wsproto} client, beside the
line front end of the same L{ChatServer}, with time from a L{Clock}.
"""

from __future__ import annotations

import json
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IProtocol, ITCPTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from typing_extensions import override
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from zope.interface import alsoProvides

from chat.accounts import Accounts, PasswordHasher
from chat.memory_store import MemoryStore
from chat.outbox import CEILING
from chat.protocol import ChatFactory
from chat.server import ChatServer
from chat.settings import Settings
from chat.tokens import GRACE
from chat.web.meter import IReadMeter, MeteredFactory, ReadMeter, message_limit
from chat.web.site import HTTP_IDLE_TIMEOUT, WebSite, web_factory
from tests.support import START, WELCOME_JSON, ProtocolTestCase
from tests.test_accounts import cheap

HOST = "127.0.0.1:8080"
"""The web listener's address as the tests' requests name it in C{Host}."""


class TCPStringTransport(StringTransport):
    """
    A L{StringTransport} that provides L{ITCPTransport} as a TCP connection
    does, recording C{abortConnection}.
    """

    aborted = False

    def __init__(self, peer: IPv4Address) -> None:
        super().__init__(hostAddress=IPv4Address("TCP", "127.0.0.1", 8080), peerAddress=peer)
        alsoProvides(self, ITCPTransport)

    def abortConnection(self) -> None:  # noqa: N802 - ITCPTransport's name
        self.aborted = True
        self.loseConnection()

    def setTcpNoDelay(self, enabled: bool) -> None:  # noqa: N802 - ITCPTransport's name
        pass

    def getTcpNoDelay(self) -> bool:  # noqa: N802 - ITCPTransport's name
        return True

    def setTcpKeepAlive(self, enabled: bool) -> None:  # noqa: N802 - ITCPTransport's name
        pass

    def getTcpKeepAlive(self) -> bool:  # noqa: N802 - ITCPTransport's name
        return False


class HTTPConnection:
    """
    One connection to the web listener's protocol factory from C{host}.
    """

    def __init__(self, factory: Any, host: str, port: int) -> None:
        address = IPv4Address("TCP", host, port)
        self.transport = TCPStringTransport(address)
        self.protocol: IProtocol = factory.buildProtocol(address)
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def take(self) -> bytes:
        value: bytes = self.transport.value()
        self.transport.clear()
        return value


class WebClient(HTTPConnection):
    """
    A WebSocket client (C{wsproto}) over an L{HTTPConnection}: L{events}
    gives what the daemon sent, decoded.

    @ivar closed: the close code the daemon sent, or C{None}.
    @ivar status: the handshake's answer: 101, or the refusal's status.
    """

    def __init__(
        self, factory: Any, clock: Clock, host: str, port: int, origin: str | None = None, headers: Any = ()
    ) -> None:
        super().__init__(factory, host, port)
        self.clock = clock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.closed: int | None = None
        self.status = 0
        self.body = b""
        extra = [(b"origin", origin.encode())] if origin is not None else []
        self.send(self.ws.send(Request(host=HOST, target="/ws", extra_headers=[*extra, *headers])))
        self._pending: list[Event] = []
        self._pending = self.raw_events()

    def send_text(self, text: str) -> None:
        self.send(self.ws.send(TextMessage(text)))

    def raw_events(self) -> list[Event]:
        """
        What arrived since the last call, as C{wsproto} events (after a
        reactor turn, as the real reactor would give).
        """
        self.clock.advance(0)
        self.ws.receive_data(self.take())
        new = list(self.ws.events())
        for event in new:
            if isinstance(event, AcceptConnection):
                self.status = 101
            elif isinstance(event, RejectConnection):
                self.status = event.status_code
            elif isinstance(event, RejectData):
                self.body += event.data
            elif isinstance(event, CloseConnection):
                self.closed = event.code
        got, self._pending = [*self._pending, *new], []
        return got

    def events(self) -> list[dict[str, Any]]:
        """
        The JSON events that arrived since the last call, in order.
        """
        return [json.loads(e.data) for e in self.raw_events() if isinstance(e, TextMessage)]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]


class WebTestCase(ProtocolTestCase):
    """
    A L{ChatServer} with both front ends: the line factory of
    L{ProtocolTestCase} and the web listener's factory.
    """

    settings = Settings(flood_burst=10_000, web=True)

    def setUp(self) -> None:
        super().setUp()
        self.web = self.web_factory(self.server)

    def web_factory(self, server: ChatServer) -> Any:
        factory = web_factory(server)
        assert isinstance(factory, MeteredFactory)
        site = factory.wrappedFactory
        assert isinstance(site, WebSite)
        site.reactor = self.clock
        return factory

    def web_connect(self, host: str = "127.0.0.1", origin: str | None = None, headers: Any = ()) -> WebClient:
        self._port += 1
        return WebClient(self.web, self.clock, host, self._port, origin, headers)

    def web_user(self, nick: str, host: str = "127.0.0.1") -> tuple[WebClient, dict[str, Any]]:
        """
        A web client registered as C{nick}, its output read; and its C{registered} event.
        """
        client = self.web_connect(host)
        client.send_text(f"/nick {nick}")
        [registered] = [e for e in client.events() if e["type"] == "registered"]
        return client, registered


class SessionTests(WebTestCase):
    """
    The session of section 3 over a WebSocket.
    """

    def test_welcome_first(self) -> None:
        """
        The handshake is accepted (101) and the first frame is welcome, in json.
        """
        client = self.web_connect()
        self.assertEqual(client.events(), [WELCOME_JSON])
        self.assertEqual(client.status, 101)

    def test_registered_with_token(self) -> None:
        """
        /nick registers: registered carries a token on a daemon with a web listener, then join, role (the
        first in #lobby is its operator), users, history.
        """
        client = self.web_connect()
        client.events()
        client.send_text("/nick alice")
        got = client.events()
        self.assertEqual([e["type"] for e in got], ["registered", "join", "role", "users", "history"])
        token = got[0]["token"]
        self.assertIsInstance(token, str)
        self.assertGreaterEqual(len(token), 22)
        bearer = self.server.bearer(token)
        self.assertIsNotNone(bearer.session)

    def test_no_token_without_web(self) -> None:
        """
        A daemon without a web listener (settings.web false) sends registered without a token.
        """
        clock, factory = self.make_factory(Settings(flood_burst=10_000))
        self.clock = clock
        web = self.web_factory(factory.server)
        client = WebClient(web, clock, "127.0.0.1", 40999)
        client.events()
        client.send_text("/nick alice")
        [registered] = [e for e in client.events() if e["type"] == "registered"]
        self.assertEqual(registered, {"type": "registered", "nick": "alice", "account": False})

    def test_token_of_failed_nick_forgotten(self) -> None:
        """
        A socket whose /nick was refused (nick-taken) and which then goes leaves no token (nor its session)
        behind once the grace has passed.
        """
        self.json_user("alice")
        self.assertEqual(len(self.server.tokens), 1)
        client = self.web_connect()
        client.events()
        client.send_text("/nick alice")
        self.assertEqual([e["code"] for e in client.events()], ["nick-taken"])
        client.protocol.connectionLost(_done())
        self.clock.advance(GRACE)
        self.server.tokens.find("", self.clock.seconds())  # sweeps
        self.assertEqual(len(self.server.tokens), 1)

    def test_http_idle_timeout_not_on_socket(self) -> None:
        """
        The HTTP channel's idle timeout does not close a WebSocket that is quiet for longer.
        """
        client, _ = self.web_user("alice")
        self.clock.advance(HTTP_IDLE_TIMEOUT * 3)
        self.assertFalse(client.transport.disconnecting)
        client.send_text("/ping alive")
        self.assertEqual(client.types(), ["pong"])

    def test_message_both_ways(self) -> None:
        """
        A web user and a TCP user in #lobby of the same server see each other's messages.
        """
        tcp = self.json_user("bob")
        web, _ = self.web_user("alice")
        tcp.take()
        web.send_text("hello from the web")
        self.clock.advance(0)
        [message] = [e for e in tcp.take_json() if e["type"] == "message"]
        self.assertEqual((message["from"], message["room"], message["text"]), ("alice", "#lobby", "hello from the web"))
        web.events()
        tcp.line("hello from telnet")
        [message] = [e for e in web.events() if e["type"] == "message"]
        self.assertEqual((message["from"], message["text"]), ("bob", "hello from telnet"))

    def test_format_text_refused(self) -> None:
        """
        /format text gets bad-arguments (a socket is always json); /format json is answered with welcome.
        """
        client = self.web_connect()
        client.events()
        client.send_text("/format text")
        [error] = client.events()
        self.assertEqual(error["type"], "error")
        self.assertEqual(error["code"], "bad-arguments")
        client.send_text("/format json")
        self.assertEqual(client.types(), ["welcome"])

    def test_upload_download_refused(self) -> None:
        """
        /upload and /download get bad-arguments naming the HTTP routes.
        """
        client, _ = self.web_user("alice")
        for line in ("/upload #lobby a.txt 3", "/download 1"):
            client.send_text(line)
            [error] = client.events()
            self.assertEqual(error["code"], "bad-arguments", line)
            self.assertIn("POST /files", error["message"])
            self.assertIn("GET /files/ID", error["message"])

    def test_starttls_refused(self) -> None:
        """
        /starttls gets bad-arguments: a socket cannot switch to TLS.
        """
        client = self.web_connect()
        client.events()
        client.send_text("/starttls")
        [error] = client.events()
        self.assertEqual(error["code"], "bad-arguments")

    def test_line_too_long_goes_on(self) -> None:
        """
        A frame over the line limit gets line-too-long and the session goes on.
        """
        client, _ = self.web_user("alice")
        client.send_text("x" * 4097)
        [error] = client.events()
        self.assertEqual(error["code"], "line-too-long")
        client.send_text("/ping still")
        self.assertEqual(client.events(), [{"type": "pong", "token": "still"}])
        self.assertIsNone(client.closed)

    def test_line_at_limit(self) -> None:
        """
        A frame of exactly the line limit (in UTF-8 bytes) is a line, not an error.
        """
        client, _ = self.web_user("alice")
        client.send_text("é" * 2048)
        [message] = client.events()
        self.assertEqual(message["type"], "message")

    def test_not_registered(self) -> None:
        """
        Before /nick, a message gets not-registered.
        """
        client = self.web_connect()
        client.events()
        client.send_text("hello")
        [error] = client.events()
        self.assertEqual(error["code"], "not-registered")

    def test_binary_frame_closes_1003(self) -> None:
        """
        A binary frame closes the socket with code 1003, and the user quits.
        """
        tcp = self.json_user("bob")
        client, _ = self.web_user("alice")
        tcp.take()
        client.send(client.ws.send(BytesMessage(b"\x00\x01")))
        client.raw_events()
        self.assertEqual(client.closed, 1003)
        self.assertTrue(client.transport.disconnecting)
        client.protocol.connectionLost(_done())
        self.clock.advance(0)
        [quit_event] = [e for e in tcp.take_json() if e["type"] == "quit"]
        self.assertEqual(quit_event["nick"], "alice")

    def test_quit_bye_then_close(self) -> None:
        """
        /quit is answered bye, then the socket is closed with 1000.
        """
        client, _ = self.web_user("alice")
        client.send_text("/quit see you")
        got = client.raw_events()
        texts = [json.loads(e.data) for e in got if isinstance(e, TextMessage)]
        self.assertEqual(texts, [{"type": "bye", "reason": "see you"}])
        self.assertIsInstance(got[-1], CloseConnection)
        self.assertEqual(client.closed, 1000)
        self.assertTrue(client.transport.disconnecting)


class ClosingTests(WebTestCase):
    """
    Events for a socket whose peer has closed it, before its connection is lost.
    """

    def test_events_after_peer_close_dropped(self) -> None:
        """
        When one user leaves while another's close frame has been read but
        its connection not yet lost, the quit for the closing socket is
        dropped quietly: no error is logged and the other users get it.
        """
        leaving, _ = self.web_user("alice")
        closing, _ = self.web_user("bob")
        staying = self.json_user("carol")
        leaving.events()
        closing.events()
        closing.send(closing.ws.send(CloseConnection(1000)))
        closing.raw_events()
        with capturedLogs() as logged:
            leaving.protocol.connectionLost(_done())
            self.clock.advance(0)
        self.assertEqual([e["nick"] for e in staying.take_json() if e["type"] == "quit"], ["alice"])
        self.assertEqual([e for e in logged if e.get("log_level") is not None and e["log_level"].name in
                          ("error", "critical")], [])


class LimitsTests(WebTestCase):
    """
    The limits of section 8 over a WebSocket.
    """

    settings = Settings(flood_burst=3, flood_rate=1.0, registration_timeout=30.0, max_per_ip=2, web=True)

    def test_flood_delays_in_order(self) -> None:
        """
        More than flood_burst frames at once: error flood once, the socket is not read meanwhile, and the
        later frames are run later, in order, none dropped.
        """
        client, _ = self.web_user("alice")
        self.clock.advance(10)  # the bucket is full again
        client.events()
        client.send(b"".join(client.ws.send(TextMessage(f"/ping {n}")) for n in range(8)))
        got = client.events()
        self.assertEqual([e.get("token") for e in got if e["type"] == "pong"], ["0", "1", "2"])
        self.assertEqual([e["code"] for e in got if e["type"] == "error"], ["flood"])
        self.assertEqual(client.transport.producerState, "paused")
        pongs = []
        for _ in range(20):
            self.clock.advance(1)
            got = client.events()
            self.assertNotIn("error", [e["type"] for e in got])
            pongs += [e["token"] for e in got if e["type"] == "pong"]
        self.assertEqual(pongs, ["3", "4", "5", "6", "7"])
        self.assertEqual(client.transport.producerState, "producing")

    def test_registration_timeout(self) -> None:
        """
        No nick within registration_timeout: bye, then close.
        """
        client = self.web_connect()
        client.events()
        self.clock.advance(29)
        self.assertEqual(client.events(), [])
        self.clock.advance(1)
        self.assertEqual(client.types(), ["bye"])
        self.assertEqual(client.closed, 1000)

    def test_registered_no_timeout(self) -> None:
        """
        A user who registered in time is not closed when the timeout would have run out.
        """
        client, _ = self.web_user("alice")
        self.clock.advance(60)
        self.assertEqual(client.events(), [])
        self.assertIsNone(client.closed)
        self.assertFalse(client.transport.disconnecting)

    def test_per_ip_limit(self) -> None:
        """
        A socket over the per-address limit (counted with TCP connections) gets bye "too many connections".
        """
        self.connect("192.0.2.7")
        self.web_connect("192.0.2.7").events()
        client = self.web_connect("192.0.2.7")
        [bye] = client.events()
        self.assertEqual(bye["type"], "bye")
        self.assertIn("too many connections", bye["reason"])
        self.assertEqual(client.closed, 1000)

    def test_per_ip_limit_uses_forwarded_address(self) -> None:
        """
        Behind a trusted proxy the per-address limit counts the X-Forwarded-For address, not the proxy's.
        """
        clock, factory = self.make_factory(Settings(max_per_ip=1, web=True, trusted_proxies=("127.0.0.1",)))
        self.clock = clock
        web = self.web_factory(factory.server)
        first = WebClient(web, clock, "127.0.0.1", 41001, headers=[(b"x-forwarded-for", b"198.51.100.1")])
        second = WebClient(web, clock, "127.0.0.1", 41002, headers=[(b"x-forwarded-for", b"198.51.100.2")])
        third = WebClient(web, clock, "127.0.0.1", 41003, headers=[(b"x-forwarded-for", b"198.51.100.1")])
        self.assertEqual(first.types(), ["welcome"])
        self.assertEqual(second.types(), ["welcome"])
        self.assertEqual(third.types(), ["bye"])
        peers = sorted(session.participant.peer for session in factory.server.sessions.values())
        self.assertEqual(peers, ["198.51.100.1", "198.51.100.1", "198.51.100.2"])

    def test_slow_reader_cut(self) -> None:
        """
        A socket that does not read (its transport paused) and whose queue passes the ceiling is cut.
        """
        clock, factory = self.make_factory(Settings(max_output=8192, flood_burst=10_000, web=True))
        self.clock = clock
        web = self.web_factory(factory.server)
        client = WebClient(web, clock, "127.0.0.1", 41001)
        client.send_text("/nick alice")
        client.events()
        self.factory = factory
        tcp = self.json_user("bob")
        producer = client.transport.producer
        assert producer is not None
        producer.pauseProducing()  # the TCP buffer is full
        for _ in range(CEILING * 8192 // 3000 + 2):
            tcp.line("y" * 3000)
            clock.advance(0)
        self.assertTrue(client.transport.aborted)
        client.protocol.connectionLost(_done())
        clock.advance(0)
        [quit_event] = [e for e in tcp.take_json() if e["type"] == "quit"]
        self.assertEqual((quit_event["nick"], quit_event["reason"]), ("alice", "too slow reading"))

    def test_reader_paused_not_cut_under_limit(self) -> None:
        """
        A paused socket whose queue stays under its limit is not cut.
        """
        client, _ = self.web_user("alice")
        tcp = self.json_user("bob")
        producer = client.transport.producer
        assert producer is not None
        producer.pauseProducing()
        tcp.line("short")
        self.clock.advance(60)
        self.assertFalse(client.transport.aborted)


class PlaintextLoginTests(WebTestCase):
    """
    /login over a WebSocket without TLS: refused from afar, allowed from this machine.
    """

    @staticmethod
    @override
    def make_factory(settings: Settings) -> tuple[Clock, ChatFactory]:
        clock = Clock()
        clock.advance(START)
        store = MemoryStore()
        accounts = Accounts(store, PasswordHasher(None, hasher=cheap()), clock)
        return clock, ChatFactory(ChatServer(settings, clock, store, accounts))

    def setUp(self) -> None:
        super().setUp()
        self.successResultOf(self.server.accounts.create("alice", "password1", START))
        self.server.domain.account_created("alice", None)

    def test_remote_plaintext_refused(self) -> None:
        """
        /login from a non-loopback address over plain HTTP gets auth-needs-tls.
        """
        client = self.web_connect("192.0.2.7")
        client.events()
        client.send_text("/login alice password1")
        [error] = client.events()
        self.assertEqual(error["code"], "auth-needs-tls")

    def test_loopback_allowed(self) -> None:
        """
        /login from loopback over plain HTTP logs in (with a token).
        """
        client = self.web_connect("127.0.0.1")
        client.events()
        client.send_text("/login alice password1")
        [registered] = [e for e in client.events() if e["type"] == "registered"]
        self.assertEqual(registered["account"], True)
        self.assertIn("token", registered)

    def test_loopback_proxy_forwarding_remote_refused(self) -> None:
        """
        Through a trusted proxy on loopback, a remote client (X-Forwarded-For) is refused as remote.
        """
        clock, factory = self.make_factory(Settings(web=True, trusted_proxies=("127.0.0.1",)))
        self.clock = clock
        self.successResultOf(factory.server.accounts.create("alice", "password1", START))
        factory.server.domain.account_created("alice", None)
        web = self.web_factory(factory.server)
        client = WebClient(web, clock, "127.0.0.1", 41001, headers=[(b"x-forwarded-for", b"198.51.100.1")])
        client.events()
        client.send_text("/login alice password1")
        [error] = client.events()
        self.assertEqual(error["code"], "auth-needs-tls")

    def test_https_proxy_allows_remote(self) -> None:
        """
        Through a trusted proxy that says https, a remote client may log in.
        """
        clock, factory = self.make_factory(Settings(web=True, trusted_proxies=("127.0.0.1",)))
        self.clock = clock
        self.successResultOf(factory.server.accounts.create("alice", "password1", START))
        factory.server.domain.account_created("alice", None)
        web = self.web_factory(factory.server)
        headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")]
        client = WebClient(web, clock, "127.0.0.1", 41001, headers=headers)
        client.events()
        client.send_text("/login alice password1")
        self.assertIn("registered", client.types())


class OriginTests(WebTestCase):
    """
    L{chat.web.socket.SocketResource}: the Origin check of the handshake.
    """

    settings = Settings(flood_burst=10_000, web=True, web_origins=("https://chat.example.org",))

    def test_foreign_origin_refused(self) -> None:
        """
        A foreign Origin gets HTTP 403 and no session is started.
        """
        client = self.web_connect(origin="https://evil.example")
        self.assertEqual(client.events(), [])
        self.assertEqual(client.status, 403)
        self.assertEqual(self.server.sessions, {})

    def test_own_origin(self) -> None:
        """
        The Origin the request was addressed to (its Host) is let in.
        """
        client = self.web_connect(origin=f"http://{HOST}")
        self.assertEqual(client.types(), ["welcome"])
        self.assertEqual(client.status, 101)

    def test_own_origin_other_scheme_refused(self) -> None:
        """
        The same host with https is another origin than a plain-HTTP request's.
        """
        client = self.web_connect(origin=f"https://{HOST}")
        client.events()
        self.assertEqual(client.status, 403)

    def test_web_origin(self) -> None:
        """
        An origin given with --web-origin is let in (case and default port not mattering).
        """
        client = self.web_connect(origin="HTTPS://Chat.Example.org:443")
        self.assertEqual(client.types(), ["welcome"])

    def test_no_origin(self) -> None:
        """
        A handshake without Origin (a program) is let in.
        """
        client = self.web_connect()
        self.assertEqual(client.types(), ["welcome"])

    def test_null_origin_refused(self) -> None:
        """
        Origin: null (a sandboxed page, a file) is refused.
        """
        client = self.web_connect(origin="null")
        client.events()
        self.assertEqual(client.status, 403)


class _Recorder(Protocol):
    def __init__(self) -> None:
        self.received = b""

    @override
    def dataReceived(self, data: bytes) -> None:
        self.received += data


class ReadMeterTests(SynchronousTestCase):
    """
    L{ReadMeter}: a bound on the payload of the WebSocket message being received.
    """

    def setUp(self) -> None:
        factory = MeteredFactory(Factory.forProtocol(_Recorder))
        meter = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        assert isinstance(meter, ReadMeter)
        self.meter = meter
        self.meter.makeConnection(StringTransport())
        self.inner = cast(_Recorder, meter.wrappedProtocol)
        self.over: list[bool] = []

    def test_provides(self) -> None:
        """
        A connected meter provides IReadMeter.
        """
        self.assertTrue(IReadMeter.providedBy(self.meter))

    def test_unwatched_passes(self) -> None:
        """
        Until watch is called, any amount of data passes.
        """
        self.meter.dataReceived(b"x" * 100_000)
        self.assertEqual(len(self.inner.received), 100_000)

    def test_over_once_then_dropped(self) -> None:
        """
        A data message whose payload passes the limit, even in pieces: over
        is called once, and its bytes and what follows are not passed on.
        """
        self.meter.watch(10, lambda: self.over.append(True))
        client = Connection(ConnectionType.CLIENT)
        passed = client.send(TextMessage("a" * 6, message_finished=False))
        passed += client.send(TextMessage("b" * 4, message_finished=False))
        self.meter.dataReceived(passed)
        self.assertEqual(self.over, [])
        self.meter.dataReceived(client.send(TextMessage("c", message_finished=True)))
        self.meter.dataReceived(client.send(TextMessage("d")))
        self.assertEqual(self.over, [True])
        self.assertEqual(self.inner.received, passed)

    def test_messages_counted_apart(self) -> None:
        """
        Each complete message starts the count again, so a stream of small
        messages never trips the bound, even when they arrive together.
        """
        self.meter.watch(10, lambda: self.over.append(True))
        client = Connection(ConnectionType.CLIENT)
        data = b"".join(client.send(TextMessage("x" * 8)) for _ in range(10))
        self.meter.dataReceived(data)
        self.assertEqual(self.over, [])
        self.assertEqual(self.inner.received, data)

    def test_pings_not_counted(self) -> None:
        """
        Control frames (pings) carry no message: any number of them between
        small messages never trips the bound.
        """
        self.meter.watch(10, lambda: self.over.append(True))
        client = Connection(ConnectionType.CLIENT)
        for _ in range(1000):
            self.meter.dataReceived(client.send(Ping(b"p" * 125)))
        self.meter.dataReceived(client.send(TextMessage("x" * 8)))
        self.assertEqual(self.over, [])

    def test_message_limit(self) -> None:
        """
        The bound is four times the line limit.
        """
        self.assertEqual(message_limit(4096), 4 * 4096)


class TooBigTests(WebTestCase):
    """
    A message too big to hold closes the socket with 1009.
    """

    settings = Settings(flood_burst=10_000, web=True, max_line=100)

    def test_message_too_big(self) -> None:
        """
        A message whose bytes pass the unframed limit closes the socket with code 1009 and the user quits.
        """
        tcp = self.json_user("bob")
        client, _ = self.web_user("alice")
        tcp.take()
        client.send_text("z" * (message_limit(100) + 10))
        client.raw_events()
        self.assertEqual(client.closed, 1009)
        client.protocol.connectionLost(_done())
        self.clock.advance(0)
        [quit_event] = [e for e in tcp.take_json() if e["type"] == "quit"]
        self.assertEqual(quit_event["reason"], "message too big")

    def test_over_long_under_bound(self) -> None:
        """
        A frame over the line limit but under the unframed bound gets line-too-long, and the next works.
        """
        client, _ = self.web_user("alice")
        client.send_text("z" * 300)
        self.assertEqual([e["code"] for e in client.events()], ["line-too-long"])
        client.send_text("/ping ok")
        self.assertEqual(client.types(), ["pong"])


def _done() -> Any:
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure

    return Failure(ConnectionDone())

"""
Tests for the hardening of the line front end (issue 16, PROTOCOL.md
section 8), over L{StringTransport} with time from a L{Clock}: the
registration, TLS handshake and upload idle timeouts, the per-address
limits keyed per IPv6 network, telnet bytes and long lines against the
flood limit, and the summarised log of refused connections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from twisted.internet import ssl
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from chat.accounts import Account
from chat.limits import RefusalLog, address_key
from chat.protocol import ChatFactory, ChatProtocol
from chat.server import ChatServer
from chat.settings import Settings
from chat.tls import self_signed
from tests.support import (
    IAC,
    NAWS,
    NOP,
    SB,
    SE,
    START,
    WELCOME_TEXT,
    WILL,
    Client,
    ProtocolTestCase,
    RecordingTransport,
)
from tests.test_protocol_accounts import TLSClient
from tests.test_protocol_files import FilesTestCase, sha
from tests.test_protocol_limits import FloodTestCase
from tests.test_tls import RecordingTLSTransport

BYE_NO_NICK = b"*** Bye: no nick chosen within 60 s\r\n"


class RegistrationTimeoutTests(ProtocolTestCase):
    """
    Finding 1: a connection that chooses no nick within
    C{registration_timeout} seconds gets C{bye} and is closed.
    """

    def test_silent_connection_closed(self) -> None:
        """
        A connection that sends nothing gets C{bye} saying why after 60 s, not before, and is closed.
        """
        client = self.connect()
        self.assertEqual(client.take(), WELCOME_TEXT)
        self.clock.advance(59.9)
        self.assertEqual(client.take(), b"")
        self.assertFalse(client.transport.disconnecting)
        self.clock.advance(0.1)
        self.assertEqual(client.take(), BYE_NO_NICK)
        self.assertTrue(client.transport.disconnecting)

    def test_trickle_without_line_end_closed(self) -> None:
        """
        One byte every 10 s and never a line end does not keep an unregistered connection open.
        """
        client = self.connect()
        client.take()
        for _ in range(5):
            self.clock.advance(10)
            client.send(b"a")
        self.clock.advance(9.9)
        client.send(b"a")
        self.assertFalse(client.transport.disconnecting)
        self.clock.advance(0.1)
        self.assertEqual(client.take(), BYE_NO_NICK)
        self.assertTrue(client.transport.disconnecting)

    def test_commands_without_nick_closed(self) -> None:
        """
        Commands that do not register (C{/format}, C{/ping}) do not extend
        the time, and the C{bye} comes in the connection's format.
        """
        client = self.connect()
        client.line("/format json")
        for second in range(0, 60, 20):
            self.clock.advance(20 if second else 0)
            client.line(f"/ping {second}")
        client.take()
        self.clock.advance(20)
        self.assertEqual(client.take_json(), [{"type": "bye", "reason": "no nick chosen within 60 s"}])
        self.assertTrue(client.transport.disconnecting)

    def test_configured_timeout(self) -> None:
        """
        The timeout is C{settings.registration_timeout}, and C{bye} names it.
        """
        clock, factory = self.make_factory(Settings(registration_timeout=2.5))
        client = self.connect(factory=factory)
        client.take()
        clock.advance(2.5)
        self.assertEqual(client.take(), b"*** Bye: no nick chosen within 2.5 s\r\n")

    def test_registered_user_may_idle(self) -> None:
        """
        Registering cancels the timeout: a registered user idle for a day is
        not closed, and no timer is left for it.
        """
        alice = self.text_user("alice")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(86400)
        self.assertEqual(alice.take(), b"")
        self.assertFalse(alice.transport.disconnecting)

    def test_registered_late_in_the_period(self) -> None:
        """
        A nick chosen a moment before the timeout keeps the connection open.
        """
        client = self.connect()
        self.clock.advance(59)
        client.line("alice")
        client.take()
        self.clock.advance(3600)
        self.assertEqual(client.take(), b"")
        self.assertFalse(client.transport.disconnecting)

    def test_lost_connection_leaves_no_timer(self) -> None:
        """
        A connection lost before registering cancels its timeout.
        """
        client = self.connect()
        client.lose()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bystanders_unaffected(self) -> None:
        """
        Closing an unregistered connection shows nothing to registered users.
        """
        alice = self.text_user("alice")
        self.connect()
        self.clock.advance(60)
        self.assertEqual(alice.take(), b"")


class RecordingAccounts:
    """
    Accounts that let everyone in, recording the address each request names.
    """

    def __init__(self) -> None:
        self.addresses: list[str] = []

    def login(self, name: str, password: str, address: str) -> Deferred[Account]:
        self.addresses.append(address)
        return succeed(Account(name))

    def change_password(self, name: str, old: str, new: str, address: str) -> Deferred[None]:
        self.addresses.append(address)
        return succeed(None)


class RecordingAccountsTestCase(ProtocolTestCase):
    """
    A server over L{RecordingAccounts}, passwords allowed over plain TCP.
    """

    settings = Settings(flood_burst=10_000, allow_plaintext_auth=True)

    def setUp(self) -> None:
        super().setUp()
        self.accounts = RecordingAccounts()
        self.factory = ChatFactory(ChatServer(self.settings, self.clock, accounts=cast(Any, self.accounts)))
        self.server = self.factory.server


class LoginRegistersTests(RecordingAccountsTestCase):
    """
    Finding 1: a login (which completes later) registers the connection too.
    """

    def test_login_cancels_timeout(self) -> None:
        """
        A connection that logs in without choosing a nick first is not closed later.
        """
        client = self.connect()
        client.line("/login alice password1")
        self.assertIn(b"logged in to your account", client.take())
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(3600)
        self.assertFalse(client.transport.disconnecting)


class AddressedClient(Client):
    """
    A L{Client} whose peer is any address, IPv6 included.
    """

    def __init__(self, factory: ChatFactory, address: IPv4Address | IPv6Address) -> None:
        self.transport = RecordingTransport(cast(IPv4Address, address))
        self.protocol = factory.buildProtocol(address)
        self.protocol.makeConnection(self.transport)


def connect_from(factory: ChatFactory, address: IPv4Address | IPv6Address) -> Client:
    """
    A L{Client} of C{factory} whose peer is C{address}.
    """
    return AddressedClient(factory, address)


def v6(host: str, port: int = 50000) -> IPv6Address:
    return IPv6Address("TCP", host, port)


class AddressKeyTests(SynchronousTestCase):
    """
    Finding 1: L{address_key} groups IPv6 addresses by network.
    """

    def test_ipv6_grouped_by_prefix(self) -> None:
        """
        IPv6 addresses count per network of the prefix; 128 keeps each apart.
        """
        self.assertEqual(address_key("2001:db8:1:2::7", 64), "2001:db8:1:2::/64")
        self.assertEqual(address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64), "2001:db8:1:2::/64")
        self.assertEqual(address_key("2001:db8:1:3::7", 64), "2001:db8:1:3::/64")
        self.assertEqual(address_key("2001:db8:1:2::7", 48), "2001:db8:1::/48")
        self.assertEqual(address_key("2001:DB8:1:2:0:0:0:7", 128), "2001:db8:1:2::7")

    def test_ipv4_and_mapped(self) -> None:
        """
        IPv4 addresses, and IPv4 addresses mapped into IPv6 (a dual-stack listener), count per address.
        """
        self.assertEqual(address_key("192.0.2.7", 64), "192.0.2.7")
        self.assertEqual(address_key("::ffff:192.0.2.7", 64), "192.0.2.7")
        self.assertEqual(address_key("::ffff:192.0.2.7", 128), "192.0.2.7")

    def test_scope_and_unix_path(self) -> None:
        """
        A link-local address keeps its scope; a UNIX path is its own key.
        """
        self.assertEqual(address_key("fe80::1%eth0", 64), "fe80::/64%eth0")
        self.assertEqual(address_key("/run/chat.sock", 64), "/run/chat.sock")

    def test_bad_prefix(self) -> None:
        """
        A prefix outside 0 to 128 is a C{ValueError}.
        """
        self.assertRaises(ValueError, address_key, "2001:db8::1", 129)


class IPv6LimitTests(ProtocolTestCase):
    """
    Finding 1: the per-address limit applies per IPv6 network.
    """

    settings = Settings(max_per_ip=2, flood_burst=10_000)
    REFUSED = b"*** Bye: too many connections from your address\r\n"

    def test_one_network_limited(self) -> None:
        """
        Three addresses of one /64 share its two connections; another /64 and IPv4 are apart.
        """
        first, second = (connect_from(self.factory, v6(f"2001:db8:1:2::{n}")) for n in (1, 2))
        third = connect_from(self.factory, v6("2001:db8:1:2:ffff::3"))
        self.assertEqual(third.take(), self.REFUSED)
        self.assertTrue(third.transport.disconnecting)
        for client in (first, second):
            self.assertEqual(client.take(), WELCOME_TEXT)
        for other in (v6("2001:db8:1:3::1"), IPv4Address("TCP", "192.0.2.1", 1)):
            self.assertFalse(connect_from(self.factory, other).transport.disconnecting, other)

    def test_mapped_ipv4_counts_with_ipv4(self) -> None:
        """
        An IPv4 client seen through a dual-stack listener counts with the same address over IPv4.
        """
        connect_from(self.factory, IPv4Address("TCP", "192.0.2.1", 1))
        connect_from(self.factory, v6("::ffff:192.0.2.1"))
        self.assertTrue(connect_from(self.factory, v6("::ffff:192.0.2.1")).transport.disconnecting)

    def test_closing_frees_the_network(self) -> None:
        """
        A connection of the network that closes frees its place for another address of it.
        """
        first = connect_from(self.factory, v6("2001:db8:1:2::1"))
        connect_from(self.factory, v6("2001:db8:1:2::2"))
        first.lose()
        self.assertFalse(connect_from(self.factory, v6("2001:db8:1:2::3")).transport.disconnecting)
        self.assertTrue(connect_from(self.factory, v6("2001:db8:1:2::4")).transport.disconnecting)

    def test_prefix_128_each_address_apart(self) -> None:
        """
        With C{ipv6_prefix} 128 each IPv6 address has its own limit.
        """
        _, factory = self.make_factory(Settings(max_per_ip=2, ipv6_prefix=128))
        clients = [connect_from(factory, v6(f"2001:db8:1:2::{n}")) for n in range(1, 6)]
        self.assertEqual([c.transport.disconnecting for c in clients], [False] * 5)


class LoginAddressTests(RecordingAccountsTestCase):
    """
    Finding 1: the failed-login limit sees the same grouped address.
    """

    def test_login_and_password_name_the_network(self) -> None:
        """
        C{/login} and C{/password} from an IPv6 address give the accounts its /64, and an IPv4-mapped one its IPv4.
        """
        client = connect_from(self.factory, v6("2001:db8:1:2::7"))
        client.line("/login alice password1")
        client.line("/password password1 password2")
        mapped = connect_from(self.factory, v6("::ffff:192.0.2.7"))
        mapped.line("/login bob password1")
        self.assertEqual(self.accounts.addresses, ["2001:db8:1:2::/64", "2001:db8:1:2::/64", "192.0.2.7"])


class TLSHandshakeTimeoutTests(ProtocolTestCase):
    """
    Finding 2: a TLS handshake not done within C{tls_handshake_timeout}
    seconds aborts the connection.
    """

    def test_provides_handshake_listener(self) -> None:
        """
        The protocol is an L{IHandshakeListener}, so Twisted's TLS tells it of the handshake.
        """
        client = self.connect()
        self.assertTrue(verifyObject(IHandshakeListener, client.protocol))

    def test_silent_tls_connection_aborted(self) -> None:
        """
        An implicit-TLS connection whose handshake does not complete is aborted after 15 s, not before.
        """
        client = TLSClient(self.factory, "192.0.2.9", 4000)
        self.clock.advance(14.9)
        self.assertFalse(client.transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(client.transport.disconnected)  # abortConnection
        client.lose()
        self.assertEqual(self.server.sessions, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_completed_handshake_kept(self) -> None:
        """
        Once the handshake completes the connection stays, whatever time passes.
        """
        client = TLSClient(self.factory, "192.0.2.9", 4000)
        self.clock.advance(10)
        client.protocol.handshakeCompleted()
        client.line("alice")
        self.clock.advance(3600)
        self.assertFalse(client.transport.disconnecting)

    def test_plain_connection_has_no_handshake_timeout(self) -> None:
        """
        A plain TCP connection that registers has no timer left.
        """
        self.text_user("alice")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_starttls_handshake_timeout(self) -> None:
        """
        After C{/starttls} the handshake must complete within the timeout too;
        a registered user then quits with the reason.
        """
        self.factory = ChatFactory(ChatServer(self.settings, self.clock), starttls=cast(Any, object()))
        watcher = self.text_user("watcher")
        client = self.text_user("alice")
        RecordingTLSTransport(client)
        client.line("/starttls")
        watcher.take()
        self.clock.advance(14.9)
        self.assertFalse(client.transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(client.transport.disconnected)
        client.lose()
        self.assertEqual(watcher.take(), b"[14:02] * alice quit (TLS handshake timed out)\r\n")

    def test_starttls_completed_kept(self) -> None:
        """
        A C{/starttls} handshake that completes keeps the connection.
        """
        self.factory = ChatFactory(ChatServer(self.settings, self.clock), starttls=cast(Any, object()))
        client = self.text_user("alice")
        RecordingTLSTransport(client)
        client.line("/starttls")
        client.protocol.handshakeCompleted()
        self.clock.advance(60)
        self.assertFalse(client.transport.disconnecting)


class Recorder(Protocol):
    """
    A client that keeps what it receives and how it was closed.
    """

    def __init__(self) -> None:
        self.received = b""
        self.lost: Failure | None = None

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Protocol's name
        self.received += data

    def connectionLost(self, reason: Failure | None = None) -> None:  # noqa: N802 - Protocol's name
        self.lost = reason


class TLSLoopbackTests(SynchronousTestCase):
    """
    Finding 2 with Twisted's own TLS (L{TLSMemoryBIOFactory} over iosim),
    as an C{ssl:} listener serves it.
    """

    def setUp(self) -> None:
        certificate, key = self_signed("localhost", 2)
        self.certificate = certificate
        self.clock = Clock()
        self.clock.advance(START)
        self.factory = ChatFactory(ChatServer(Settings(), self.clock))
        options = ssl.PrivateCertificate.loadPEM(certificate + key).options()
        self.tls_factory = TLSMemoryBIOFactory(options, False, self.factory, self.clock)

    def connect(self, client: Protocol) -> tuple[iosim.IOPump, Protocol]:
        """
        Connect C{client} to a TLS-wrapped L{ChatProtocol}; the pump and the wrapper.
        """
        peer = IPv4Address("TCP", "192.0.2.9", 4000)
        server = self.tls_factory.buildProtocol(peer)
        pump = iosim.connect(
            server, iosim.FakeTransport(server, isServer=True, peerAddress=peer),
            client, iosim.FakeTransport(client, isServer=False),
            greet=True, clock=self.clock,
        )
        return pump, server

    def test_handshake_reported_by_twisted(self) -> None:
        """
        A real handshake calls L{ChatProtocol.handshakeCompleted}: the connection outlives the timeout.
        """
        options = ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(self.certificate))
        recorder = Recorder()
        client = TLSMemoryBIOFactory(options, True, Factory.forProtocol(lambda: recorder), self.clock)
        pump, _ = self.connect(client.buildProtocol(None))
        pump.flush()
        self.assertEqual(recorder.received, WELCOME_TEXT)
        self.clock.advance(20)
        pump.flush()
        self.assertIsNone(recorder.lost)

    def test_silent_client_aborted_and_released(self) -> None:
        """
        A client that never shakes hands is cut off after 15 s, not before,
        and its connection is released: no session, no TLS protocol
        registered, no timer left.
        """
        silent = Recorder()
        pump, server = self.connect(silent)
        pump.flush()
        self.assertIsInstance(cast(Any, server).wrappedProtocol, ChatProtocol)
        self.clock.advance(14.9)
        pump.flush()
        self.assertIsNone(silent.lost)
        self.clock.advance(0.1)
        pump.flush()
        self.assertIsNotNone(silent.lost)
        self.assertEqual(self.factory.server.sessions, {})
        self.assertEqual(self.tls_factory.protocols, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])


class UploadIdleTimeoutTests(FilesTestCase):
    """
    Finding 4: an upload that gets no byte for C{upload_idle_timeout}
    seconds is cancelled, its partial file and quota released.
    """

    DATA = b"x" * 1000

    def begin(self) -> int:
        self.alice.line(f"/upload bob a.bin {len(self.DATA)} {sha(self.DATA)}")
        [ready] = self.alice.take_json()
        self.assertEqual(ready["type"], "upload-ready")
        upload_id: int = ready["id"]
        return upload_id

    def test_idle_upload_cancelled(self) -> None:
        """
        Each chunk restarts the 60 s; 60 s without one cancels the upload,
        releases its file and reservation, says C{bye} and closes.
        """
        upload_id = self.begin()
        self.alice.send(self.DATA[:100])
        self.clock.advance(59)
        self.alice.send(self.DATA[100:200])
        self.clock.advance(59)
        self.assertFalse(self.alice.transport.disconnecting)
        self.assertEqual(len(self.partial()), 1)
        self.clock.advance(1)
        self.assertEqual(
            self.alice.take_json(),
            [{"type": "bye", "reason": f"upload {upload_id} cancelled: no data for 60 s"}],
        )
        self.assertTrue(self.alice.transport.disconnecting)
        self.assertEqual(self.partial(), [])
        self.assertEqual(self.spool.reserved, 0)
        self.alice.send(self.DATA[200:])  # too late: dropped
        self.alice.lose()
        self.assertEqual(self.stored(), [])
        self.assertNotIn("file-offer", [e["type"] for e in self.bob.take_json()])

    def test_no_byte_at_all(self) -> None:
        """
        An upload that never gets its first byte is cancelled after 60 s.
        """
        self.begin()
        self.clock.advance(60)
        self.assertTrue(self.alice.transport.disconnecting)
        self.assertEqual(self.spool.reserved, 0)

    def test_finished_upload_leaves_no_timer(self) -> None:
        """
        A completed upload stops the timer: the uploader may then idle.
        """
        self.begin()
        self.alice.send(self.DATA)
        self.assertEqual([e["type"] for e in self.alice.take_json()], ["upload-done"])
        self.clock.advance(3600)
        self.assertFalse(self.alice.transport.disconnecting)
        self.assertEqual(self.alice.take(), b"")


class TelnetFloodTests(FloodTestCase):
    """
    Finding 8: telnet command bytes count against the flood limit, one
    token per 512 bytes, and slow their sender only.
    """

    def said(self) -> list[str]:
        return [e["text"] for e in self.alice.take_json() if e["type"] == "message"]

    def test_iac_flood_delays_sender(self) -> None:
        """
        10240 bytes of IAC NOP (20 tokens, with a burst of 5) pause reading
        and announce C{flood}; the line after them waits 8 s, until the debt
        is paid; meanwhile another user is served at once.
        """
        self.alice.send((IAC + NOP) * 5120 + b"hello\n")
        self.assertEqual(
            [(e["type"], e.get("code")) for e in self.alice.take_json()], [("error", "flood")]
        )
        self.assertEqual(self.alice.transport.producerState, "paused")
        self.bob.line("bob is not slowed")
        self.assertEqual(self.said(), ["bob is not slowed"])
        self.clock.advance(7.99)
        self.assertEqual(self.said(), [])
        self.clock.advance(0.01)
        self.assertEqual(self.said(), ["hello"])
        self.assertEqual(self.alice.transport.producerState, "producing")

    def test_iac_flood_in_chunks(self) -> None:
        """
        Fed in small chunks, an IAC flood stops being read after the burst:
        what arrives meanwhile waits unread, and the C{flood} error is sent once.
        """
        for _ in range(40):
            self.alice.send((IAC + NOP) * 128)
        self.alice.send(b"hello\n")
        self.assertEqual([e.get("code") for e in self.alice.take_json()], ["flood"])
        self.assertEqual(self.alice.transport.producerState, "paused")
        self.clock.advance(1)
        self.assertEqual(self.said(), [])
        self.clock.pump([1] * 30)
        self.assertEqual(self.said(), ["hello"])

    def test_subnegotiation_bytes_count(self) -> None:
        """
        The bytes of subnegotiations count as telnet bytes too.
        """
        sub = IAC + SB + NAWS + b"\x00\x50\x00\x18" + IAC + SE
        self.alice.send(sub * 600 + b"hello\n")
        self.assertEqual(self.alice.transport.producerState, "paused")
        self.assertEqual(self.said(), [])
        self.clock.advance(10)
        self.assertEqual(self.said(), ["hello"])

    def test_negotiation_is_free(self) -> None:
        """
        A telnet client's few option bytes cost nothing: its whole burst of lines runs at once.
        """
        self.bob.take()
        self.alice.send(IAC + WILL + NAWS + IAC + SB + NAWS + b"\x00\x50\x00\x18" + IAC + SE)
        self.alice.send(b"".join(b"m%d\r\n" % n for n in range(5)))
        self.assertEqual(self.bob.take(), b"".join(b"[14:03] #lobby <alice> m%d\r\n" % n for n in range(5)))


class ByteFloodTests(ProtocolTestCase):
    """
    Finding 9: the flood limit bounds bytes as well as lines: a line costs
    C{max(1, bytes / 1024)} tokens.
    """

    settings = Settings()  # a burst of 20, 5 a second, lines up to 4096 bytes

    def setUp(self) -> None:
        super().setUp()
        self.alice = self.text_user("alice")
        self.bob = self.json_user("bob")
        self.alice.take()
        self.clock.advance(60)

    def send_lines(self, size: int) -> None:
        """
        Send 20 lines of C{size} bytes (without LF) at once, each starting with its number.
        """
        self.size = size
        self.alice.send(b"".join(b"%02d" % n + b"x" * (size - 2) + b"\n" for n in range(20)))

    def received(self) -> list[int]:
        """
        The numbers of the lines bob was sent since the last call, each checked whole.
        """
        numbers = []
        for event in self.bob.take_json():
            if event["type"] == "message":
                text = event["text"]
                self.assertEqual(text[2:], "x" * (self.size - 2))
                numbers.append(int(text[:2]))
        return numbers

    def test_long_lines_cost_their_bytes(self) -> None:
        """
        Of 20 lines of 4000 bytes sent at once (20 lines is the burst) only
        5 are read at once; the others follow at 5 KiB a second, in order.
        """
        self.send_lines(4000)
        self.assertEqual(self.received(), list(range(5)))
        self.assertIn(b"(flood)", self.alice.take())
        self.clock.advance(1)  # the 6th line waits 0.11 s, the next ones 0.78 s each
        self.assertEqual(self.received(), [5, 6])
        self.clock.pump([1] * 15)
        self.assertEqual(self.received(), list(range(7, 20)))

    def test_lines_up_to_1024_bytes_cost_one(self) -> None:
        """
        Lines up to 1024 bytes with their line end cost one token: a burst of 20 of them runs at once.
        """
        self.send_lines(1023)
        self.assertEqual(self.received(), list(range(20)))
        self.assertNotIn(b"(flood)", self.alice.take())


class RefusalLogTests(SynchronousTestCase):
    """
    Finding 11: L{RefusalLog} writes at most one line per address per
    minute at C{info}, with a count.
    """

    def lines(self, logged: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(e["log_level"].name, formatEvent(e)) for e in logged]

    def test_flood_summarised(self) -> None:
        """
        57 refusals in a minute: the first logged at once, the 56 others at
        debug and then in one line with their count; one line a minute while
        it goes on; an address refused no more is forgotten.
        """
        refusals = RefusalLog(32)
        first = (
            "info", "refused a connection from 203.0.113.7: 32 connections from there already "
            "(--max-connections-per-ip); further refusals are summarised every 60 s",
        )
        with capturedLogs() as logged:
            for n in range(57):
                refusals.refused("203.0.113.7", n)
        infos = [line for line in self.lines(logged) if line[0] != "debug"]
        self.assertEqual(infos, [first])
        self.assertEqual(len(logged), 57)
        with capturedLogs() as logged:
            refusals.sweep(59.9)
            self.assertEqual(logged, [])
            refusals.sweep(60)
            for n in range(60, 120):
                refusals.refused("203.0.113.7", n)
            refusals.sweep(120)
            refusals.sweep(180)
        infos = [line for line in self.lines(logged) if line[0] != "debug"]
        summary = "refused {} connections from 203.0.113.7 in 60 s (too many connections from there)"
        self.assertEqual(infos, [("info", summary.format(56)), ("info", summary.format(60))])
        with capturedLogs() as logged:
            refusals.refused("203.0.113.7", 240)
        self.assertEqual(self.lines(logged), [first])

    def test_addresses_apart(self) -> None:
        """
        Each address has its own line.
        """
        refusals = RefusalLog(2)
        with capturedLogs() as logged:
            for address in ("192.0.2.1", "2001:db8::/64", "192.0.2.1"):
                refusals.refused(address, 0)
        self.assertEqual([e["address"] for e in logged if e["log_level"] == LogLevel.info],
                         ["192.0.2.1", "2001:db8::/64"])


class RefusalSummaryTests(ProtocolTestCase):
    """
    Finding 11: a connection flood from one address writes one log line a
    minute at C{info} or above, with a count.
    """

    settings = Settings(max_per_ip=2, flood_burst=10_000)

    def test_connection_flood(self) -> None:
        """
        100 refused connections in a minute give one line at once and one
        with the count a minute later; the rest is at debug.
        """
        kept = [self.text_user(nick, "198.51.100.1") for nick in ("alice", "bob")]
        with capturedLogs() as logged:
            for _ in range(100):
                self.connect("198.51.100.1").lose()
                self.clock.advance(0.5)
            self.clock.advance(10)
            self.connect("198.51.100.1").lose()
        shown = [formatEvent(e) for e in logged if e["log_level"] >= LogLevel.info]
        self.assertEqual(shown, [
            "refused a connection from 198.51.100.1: 2 connections from there already "
            "(--max-connections-per-ip); further refusals are summarised every 60 s",
            "refused 99 connections from 198.51.100.1 in 60 s (too many connections from there)",
        ])
        self.assertGreaterEqual(len(logged), 100)
        for client in kept:
            self.assertFalse(client.transport.disconnecting)

"""
Tests for L{chat.web.proxy} (C{X-Forwarded-For} and C{X-Forwarded-Proto}
believed only from trusted proxies, PROTOCOL.md section 9) and the origin
helpers of L{chat.web.socket}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from chat.web.proxy import TrustedProxies, networks
from chat.web.socket import normal_origin, request_origin

PROXIES = TrustedProxies(networks(["10.0.0.0/8", "::1", "127.0.0.1"]))


class NetworksTests(SynchronousTestCase):
    """
    L{networks}: parsing C{--trusted-proxy} values.
    """

    def test_addresses_and_networks(self) -> None:
        """
        A network, a bare IPv4 address and a bare IPv6 address are all accepted (host bits allowed).
        """
        parsed = networks(["10.1.2.3/8", "192.0.2.7", "::1"])
        self.assertEqual([str(n) for n in parsed], ["10.0.0.0/8", "192.0.2.7/32", "::1/128"])

    def test_garbage_named(self) -> None:
        """
        A value that is neither an address nor a network raises ValueError naming it.
        """
        with self.assertRaises(ValueError) as raised:
            networks(["10.0.0.0/8", "proxy.example"])
        self.assertIn("'proxy.example'", str(raised.exception))


class ClientTests(SynchronousTestCase):
    """
    L{TrustedProxies.client}: the client's address.
    """

    def test_untrusted_peer_ignores_header(self) -> None:
        """
        X-Forwarded-For from a peer that is not a trusted proxy is ignored.
        """
        self.assertEqual(PROXIES.client("192.0.2.7", ["198.51.100.1"]), "192.0.2.7")

    def test_no_trusted_proxies(self) -> None:
        """
        With no --trusted-proxy at all, the peer is the client even from loopback.
        """
        self.assertEqual(TrustedProxies().client("127.0.0.1", ["198.51.100.1"]), "127.0.0.1")

    def test_trusted_peer_rightmost_untrusted(self) -> None:
        """
        From a trusted proxy, the right-most address that is not a trusted proxy is the client.
        """
        self.assertEqual(PROXIES.client("10.0.0.1", ["203.0.113.9, 198.51.100.1"]), "198.51.100.1")

    def test_chain_of_trusted(self) -> None:
        """
        Trusted proxies at the right of the header are skipped to reach the client.
        """
        self.assertEqual(PROXIES.client("10.0.0.1", ["198.51.100.1, 10.0.0.2, 10.9.9.9"]), "198.51.100.1")

    def test_all_trusted(self) -> None:
        """
        A header naming only trusted proxies gives its left-most address.
        """
        self.assertEqual(PROXIES.client("10.0.0.1", ["10.0.0.3, 10.0.0.2"]), "10.0.0.3")

    def test_no_header(self) -> None:
        """
        A trusted peer without the header is itself the client.
        """
        self.assertEqual(PROXIES.client("10.0.0.1", []), "10.0.0.1")

    def test_garbage_hop_stops_walk(self) -> None:
        """
        A hop that is not an IP address stops the walk: the address right of it is taken, not anything left of it.
        """
        self.assertEqual(PROXIES.client("10.0.0.1", ["198.51.100.1, unknown, 10.0.0.2"]), "10.0.0.2")
        self.assertEqual(PROXIES.client("10.0.0.1", ["198.51.100.1, garbage"]), "10.0.0.1")

    def test_ipv4_mapped_peer(self) -> None:
        """
        An IPv4-mapped IPv6 peer (a dual-stack listener) counts as its IPv4 address.
        """
        self.assertEqual(PROXIES.client("::ffff:10.0.0.1", ["198.51.100.1"]), "198.51.100.1")
        self.assertEqual(PROXIES.client("::ffff:192.0.2.7", ["198.51.100.1"]), "::ffff:192.0.2.7")

    def test_ipv6_peer(self) -> None:
        """
        An IPv6 trusted proxy (::1) is believed, and an IPv6 client address is taken.
        """
        self.assertEqual(PROXIES.client("::1", ["2001:db8::5"]), "2001:db8::5")

    def test_several_header_values(self) -> None:
        """
        Several X-Forwarded-For headers are read as one list, in the order received.
        """
        self.assertEqual(PROXIES.client("10.0.0.1", ["203.0.113.9", "198.51.100.1, 10.0.0.2"]), "198.51.100.1")
        self.assertEqual(PROXIES.client("10.0.0.1", ["198.51.100.1, 10.0.0.2", "10.0.0.3"]), "198.51.100.1")

    def test_unix_peer_not_trusted(self) -> None:
        """
        A peer that is not an IP address (a UNIX socket) is never a trusted proxy.
        """
        self.assertFalse(PROXIES.trusts("/run/chat.sock"))
        self.assertEqual(PROXIES.client("/run/chat.sock", ["198.51.100.1"]), "/run/chat.sock")


class SecureTests(SynchronousTestCase):
    """
    L{TrustedProxies.secure}: whether the client's connection is encrypted.
    """

    def test_tls(self) -> None:
        """
        TLS to the daemon is secure whatever the headers say.
        """
        self.assertTrue(PROXIES.secure("192.0.2.7", True, ["http"]))

    def test_untrusted_proto_ignored(self) -> None:
        """
        X-Forwarded-Proto https from an untrusted peer is not believed.
        """
        self.assertFalse(PROXIES.secure("192.0.2.7", False, ["https"]))

    def test_trusted_proto(self) -> None:
        """
        X-Forwarded-Proto from a trusted proxy is believed, its last value deciding.
        """
        self.assertTrue(PROXIES.secure("10.0.0.1", False, ["HTTPS"]))
        self.assertTrue(PROXIES.secure("10.0.0.1", False, ["http, https"]))
        self.assertFalse(PROXIES.secure("10.0.0.1", False, ["https, http"]))
        self.assertFalse(PROXIES.secure("10.0.0.1", False, []))


class OriginTests(SynchronousTestCase):
    """
    L{normal_origin} and L{request_origin}.
    """

    def test_normal_origin(self) -> None:
        """
        Origins are lower-cased and lose the scheme's default port; other ports and IPv6 brackets stay.
        """
        self.assertEqual(normal_origin("HTTPS://Chat.Example.ORG:443"), "https://chat.example.org")
        self.assertEqual(normal_origin("http://chat.example.org:80/"), "http://chat.example.org")
        self.assertEqual(normal_origin("http://chat.example.org:8080"), "http://chat.example.org:8080")
        self.assertEqual(normal_origin("https://chat.example.org:80"), "https://chat.example.org:80")
        self.assertEqual(normal_origin("http://[::1]:8080"), "http://[::1]:8080")

    def test_not_an_origin(self) -> None:
        """
        Anything not an http(s) origin normalises to the empty string.
        """
        for origin in ("null", "file://", "ftp://example.org", "http://", "http://host:99999", ""):
            self.assertEqual(normal_origin(origin), "", origin)

    def request(self, host: str, peer: str = "192.0.2.7", proto: str | None = None) -> Any:
        request = _Request([b"ws"])
        request.requestHeaders.setRawHeaders("host", [host])
        if proto is not None:
            request.requestHeaders.setRawHeaders("x-forwarded-proto", [proto])
        request.client = _address(peer)
        return request

    def test_request_origin(self) -> None:
        """
        A plain request's origin is http plus its Host header, normalised.
        """
        self.assertEqual(request_origin(self.request("Chat.Example:80"), PROXIES), "http://chat.example")
        self.assertEqual(request_origin(self.request("127.0.0.1:8080"), PROXIES), "http://127.0.0.1:8080")

    def test_request_origin_behind_trusted_proxy(self) -> None:
        """
        A trusted proxy's X-Forwarded-Proto https makes the origin https; an untrusted peer's does not.
        """
        self.assertEqual(
            request_origin(self.request("chat.example", "10.0.0.1", "https"), PROXIES), "https://chat.example"
        )
        self.assertEqual(
            request_origin(self.request("chat.example", "192.0.2.7", "https"), PROXIES), "http://chat.example"
        )


class _Request(DummyRequest):
    """
    A L{DummyRequest} over plain TCP (it lacks C{isSecure}).
    """

    def isSecure(self) -> bool:  # noqa: N802 - Request's name
        return False


def _address(host: str) -> IPv4Address:
    return IPv4Address("TCP", host, 50000)

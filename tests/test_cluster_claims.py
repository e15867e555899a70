"""
Tests for L{chat.cluster.claims} on a real Redis server (L{tests.servers},
skipped with the reason when it cannot start) and the real reactor, with
short leases (300 ms) so that expiry, renewal and the watch on the nodes
happen within a second or two: two nodes, C{a} and C{b}, claim nicks.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from chat.cluster.claims import ClusterUnavailable, NickClaims, from_url
from tests import servers

LEASE = 0.3
"""Seconds of a lease in these tests."""

WATCH = 0.1
"""Seconds between two looks at the nodes in these tests."""

SETTLE = 0.6
"""Seconds after a (re)connection during which no node is judged gone, in these tests."""


def pause(seconds: float) -> Deferred[None]:
    """
    Fires after C{seconds} of real time.
    """
    return deferLater(reactor, seconds, lambda: None)


@inlineCallbacks
def until(condition: Callable[[], Deferred[bool] | bool], within: float = 5.0) -> Generator[Any, Any, None]:
    """
    Poll C{condition} every 50 ms until it holds; fail after C{within} seconds.
    """
    waited = 0.0
    while True:
        outcome = condition()
        held = (yield outcome) if isinstance(outcome, Deferred) else outcome
        if held:
            return
        if waited > within:
            raise AssertionError(f"not within {within} s")
        yield pause(0.05)
        waited += 0.05


def running(server: servers.RedisServer) -> None:
    """
    Start C{server} again if it does not answer (a test stopped it and failed).
    """
    try:
        server.command("PING")
    except OSError:
        server.start()


class ClaimsTests(TestCase):
    """
    L{NickClaims} of two nodes against one Redis.
    """

    timeout = 20

    def setUp(self) -> Deferred[None]:  # type: ignore[override]
        self.server = servers.redis()
        self.server.flush()
        self.lost: dict[str, list[str]] = {"a": [], "b": []}
        self.gone: dict[str, list[tuple[str, frozenset[str]]]] = {"a": [], "b": []}
        self.a = self.node("a")
        self.b = self.node("b")
        ready: Deferred[None] = self.a.ready().addCallback(lambda _: self.b.ready())
        return ready

    def node(self, name: str) -> NickClaims:
        claims = from_url(
            name, self.server.url, reactor, lease=LEASE, watch_interval=WATCH, timeout=1.0, settle=SETTLE,
            on_lost=self.lost[name].append,
            on_node_gone=lambda node, nicks: self.gone[name].append((node, nicks)),
        )
        claims.startService()
        self.addCleanup(claims.stopService)
        return claims

    @inlineCallbacks
    def test_claim_is_refused_to_another_node_ignoring_case(self) -> Generator[Any, Any, None]:
        """
        A nick a node claimed is refused to another node in any case, and granted again to its holder.
        """
        self.assertTrue((yield self.a.claim("Alice")))
        self.assertFalse((yield self.b.claim("alice")))
        self.assertFalse((yield self.b.claim("ALICE")))
        self.assertTrue((yield self.a.claim("alice")))
        self.assertEqual((yield self.b.holder("aLiCe")), "a")
        self.assertIsNone((yield self.b.holder("bob")))
        self.assertEqual(self.a.holds(), frozenset({"alice"}))
        self.assertEqual(self.b.holds(), frozenset())

    @inlineCallbacks
    def test_release_frees_the_nick(self) -> Generator[Any, Any, None]:
        """
        A nick its holder released can be claimed by another node at once, and the holder stops renewing it.
        """
        yield self.a.claim("Alice")
        yield self.a.release("ALICE")
        self.assertIsNone((yield self.a.holder("alice")))
        self.assertTrue((yield self.b.claim("Alice")))
        yield pause(LEASE)
        self.assertEqual((yield self.a.holder("alice")), "b")
        self.assertEqual((self.lost["a"], self.lost["b"]), ([], []))

    @inlineCallbacks
    def test_other_node_cannot_release(self) -> Generator[Any, Any, None]:
        """
        A node releasing a nick another node holds leaves the claim in place.
        """
        yield self.a.claim("Alice")
        yield self.b.release("alice")
        self.assertEqual((yield self.b.holder("alice")), "a")
        self.assertFalse((yield self.b.claim("alice")))

    @inlineCallbacks
    def test_lease_is_renewed_while_the_node_runs(self) -> Generator[Any, Any, None]:
        """
        A claim outlives several leases while its node runs, never free in between (b tries every 20 ms),
        and its node beats meanwhile.
        """
        yield self.a.claim("Alice")
        for _ in range(int(LEASE * 4 / 0.02)):
            self.assertFalse((yield self.b.claim("alice")))
            yield pause(0.02)
        self.assertEqual((yield self.b.holder("alice")), "a")
        ttl = int(self.server.command("PTTL", "chat:nick:alice").lstrip(b":"))
        self.assertTrue(0 < ttl <= LEASE * 1000, ttl)
        self.assertFalse((yield self.b.claim("alice")))
        self.assertEqual((yield self.b.live_nodes()), {"a", "b"})
        self.assertEqual(self.gone["b"], [])

    @inlineCallbacks
    def test_crashed_node_is_gone_once_and_its_nicks_free(self) -> Generator[Any, Any, None]:
        """
        A node that stops without releasing loses its claims after the lease, and the other node's watcher
        reports it gone once, with its nicks.
        """
        yield self.a.claim("Alice")
        yield self.a.claim("Bob")
        yield self.a.abandon()
        yield until(lambda: self.b.claim("alice"), within=LEASE * 4)
        yield until(lambda: bool(self.gone["b"]), within=LEASE + SETTLE + WATCH * 4)
        yield pause(WATCH * 5)
        self.assertEqual(self.gone["b"], [("a", frozenset({"alice", "bob"}))])
        self.assertEqual((yield self.b.live_nodes()), {"b"})
        self.assertEqual((yield self.b.holder("bob")), None)

    @inlineCallbacks
    def test_clean_stop_releases_everything(self) -> Generator[Any, Any, None]:
        """
        A node stopped cleanly releases its claims and heartbeat at once, and the other reports it gone.
        """
        yield self.a.claim("Alice")
        yield pause(WATCH * 3)  # b's watcher has seen a beat
        yield self.a.stopService()
        self.assertIsNone((yield self.b.holder("alice")))
        self.assertEqual((yield self.b.live_nodes()), {"b"})
        yield until(lambda: bool(self.gone["b"]), within=SETTLE + WATCH * 4)
        self.assertEqual(self.gone["b"], [("a", frozenset())])

    @inlineCallbacks
    def test_unreachable_redis_fails_claims_and_renewals_resume(self) -> Generator[Any, Any, None]:
        """
        While Redis is down a claim fails with ClusterUnavailable; once it is back the node re-asserts
        its claims (Redis lost them) without reporting any lost, nor any node gone.
        """
        yield self.a.claim("Alice")
        self.server.stop()
        self.addCleanup(running, self.server)
        yield until(lambda: not self.a.connected, within=2.0)
        yield self.assertFailure(self.a.claim("carol"), ClusterUnavailable)
        yield self.assertFailure(self.a.holder("alice"), ClusterUnavailable)
        yield self.a.release("nobody")  # never fails
        self.server.start()
        yield until(lambda: self.a.holder("alice").addCallbacks(lambda h: h == "a", lambda _: False))
        self.assertEqual(self.lost["a"], [])
        self.assertTrue((yield self.a.claim("carol")))
        yield pause(SETTLE + WATCH * 2)
        self.assertEqual(self.gone, {"a": [], "b": []})

    @inlineCallbacks
    def test_restart_reasserts_claims_and_reports_taken_ones(self) -> Generator[Any, Any, None]:
        """
        After a Redis restart each holder re-asserts its claims, reports with on_lost the ones
        another node took meanwhile, and no node is reported gone.
        """
        yield self.a.claim("Alice")
        yield self.a.claim("Bob")
        yield self.b.claim("Carol")
        self.server.restart()
        # Before anyone reconnects (the reactor has not run since), b takes Bob.
        self.assertEqual(self.server.command("SET", "chat:nick:bob", "b", "PX", "60000"), b"+OK")
        yield until(lambda: bool(self.lost["a"]))
        self.assertEqual(self.lost["a"], ["Bob"])
        yield until(lambda: self.b.holder("carol").addCallbacks(lambda h: h == "b", lambda _: False))
        self.assertEqual((yield self.b.holder("alice")), "a")
        self.assertEqual(self.a.holds(), frozenset({"alice"}))
        self.assertEqual(self.lost["b"], [])
        self.assertEqual((yield self.a.live_nodes()), {"a", "b"})
        yield pause(SETTLE + WATCH * 2)
        self.assertEqual(self.gone, {"a": [], "b": []}, "a Redis restart is no node's death")

    @inlineCallbacks
    def test_no_node_is_judged_gone_while_settling(self) -> Generator[Any, Any, None]:
        """
        For SETTLE seconds after reconnecting to a restarted Redis, a watcher reports no node gone (a
        node that died meanwhile has no heartbeat); after that it reports that node once (its nick list
        was lost with Redis's data).
        """
        yield self.a.claim("Alice")
        yield pause(WATCH * 3)  # b's watcher has seen a beat
        yield self.a.abandon()
        self.server.restart()
        yield until(lambda: not self.b.connected)
        yield until(lambda: self.b.connected)
        yield pause(SETTLE / 2)
        self.assertEqual(self.gone["b"], [])
        yield until(lambda: bool(self.gone["b"]), within=SETTLE + WATCH * 4)
        yield pause(WATCH * 3)
        self.assertEqual(self.gone["b"], [("a", frozenset())])


class TimeoutTests(TestCase):
    """
    L{NickClaims} against a Redis that accepts connections and never answers.
    """

    @inlineCallbacks
    def test_silent_redis_fails_claim(self) -> Generator[Any, Any, None]:
        """
        A claim Redis does not answer within the timeout fails with ClusterUnavailable.
        """
        silent: ServerFactory[Protocol] = ServerFactory()
        silent.protocol = Protocol
        port = reactor.listenTCP(0, silent, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        claims = from_url("a", f"redis://127.0.0.1:{address.port}/0", reactor, lease=LEASE, timeout=0.3)
        claims.startService()
        self.addCleanup(claims.stopService)
        yield until(lambda: claims.connected, within=2.0)
        failure = yield self.assertFailure(claims.claim("alice"), ClusterUnavailable)
        self.assertEqual(failure.code, "busy")
        self.assertIn("0.3", str(failure))

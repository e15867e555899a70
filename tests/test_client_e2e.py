"""
End-to-end test of L{chat.client.protocol.ChatClientProtocol} against a real
C{twistd -n chat} on loopback: two clients chat and pass a file through the
daemon, with the real reactor and real threads for the file work.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from chat import events
from chat.client.protocol import ChatClientProtocol, IClientHandler
from tests.e2e import Daemon
from tests.test_client_transfer import scratch

WAIT = 10.0
"""Bound, in seconds, on each wait for the daemon."""

T = TypeVar("T")
E = TypeVar("E", bound=events.Event)


def bounded(d: Deferred[T]) -> Deferred[T]:
    """
    C{d}, failing with C{TimeoutError} after L{WAIT} seconds.
    """
    return d.addTimeout(WAIT, reactor)


@implementer(IClientHandler)
class Peer:
    """
    A handler that keeps every event and lets a test wait for the next one of a kind.
    """

    def __init__(self) -> None:
        self.events: list[events.Event] = []
        self.ready: Deferred[ChatClientProtocol] = Deferred()
        self.gone: Deferred[None] = Deferred()
        self.reason: Failure | None = None
        self._waiting: list[tuple[Callable[[events.Event], bool], Deferred[Any]]] = []

    def connected(self, protocol: ChatClientProtocol) -> None:
        self.ready.callback(protocol)

    def event_received(self, event: events.Event) -> None:
        self.events.append(event)
        for waiter in list(self._waiting):
            if waiter[0](event):
                self._waiting.remove(waiter)
                waiter[1].callback(event)

    def disconnected(self, reason: Failure) -> None:
        self.reason = reason
        self.gone.callback(None)

    def next(self, kind: type[E], test: Callable[[E], bool] = lambda e: True) -> Deferred[E]:
        """
        The next event of class C{kind} passing C{test}, within L{WAIT} seconds.
        """
        d: Deferred[E] = Deferred()
        self._waiting.append((lambda e: isinstance(e, kind) and test(e), d))
        return bounded(d)


class TwoClientsTests(TestCase):
    """
    Two L{ChatClientProtocol}s on one real daemon.
    """

    timeout = 60

    def setUp(self) -> None:
        self.daemon = Daemon().start()
        self.addCleanup(self.daemon.stop)

    async def join(self, nick: str) -> tuple[ChatClientProtocol, Peer]:
        """
        Connect, switch to json and register C{nick}; returns once the C{history} of C{#lobby} arrived.
        """
        peer = Peer()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.daemon.port, timeout=5)
        protocol = await bounded(connectProtocol(endpoint, ChatClientProtocol(peer)))
        self.addCleanup(lambda: self.leave(protocol, peer))
        await bounded(peer.ready)
        lobby = peer.next(events.History, lambda e: e.room == "#lobby")
        protocol.send_line(f"/nick {nick}")
        await lobby
        return protocol, peer

    def leave(self, protocol: ChatClientProtocol, peer: Peer) -> Deferred[None]:
        if not peer.gone.called:
            assert protocol.transport is not None
            protocol.transport.loseConnection()
        return bounded(peer.gone)

    def test_chat_and_file_round_trip(self) -> Deferred[None]:
        """
        Alice's message reaches Bob; a 300 KiB file Alice uploads to Bob downloads intact, with progress.
        """
        return Deferred.fromCoroutine(self.round_trip())

    async def round_trip(self) -> None:
        alice, alice_peer = await self.join("alice")
        bob, bob_peer = await self.join("bob")

        heard = bob_peer.next(events.Message, lambda e: e.sender == "alice")
        alice.say("hello bob")
        message = await heard
        self.assertEqual((message.room, message.text, message.action), ("#lobby", "hello bob", False))

        data = random.Random(6).randbytes(300 * 1024)
        source = scratch(self) / "holiday photos.tar"
        source.write_bytes(data)
        sent: list[tuple[int, int]] = []
        offered = bob_peer.next(events.FileOffer)
        done = await bounded(alice.upload("bob", source, lambda n, size: sent.append((n, size))))
        self.assertEqual(done.sha256, hashlib.sha256(data).hexdigest())
        self.assertEqual(sent[-1], (len(data), len(data)))
        offer = await offered
        self.assertEqual(
            (offer.id, offer.sender, offer.to, offer.name, offer.size),
            (done.id, "alice", "bob", "holiday photos.tar", len(data)),
        )

        folder = scratch(self) / "Downloads"
        received: list[tuple[int, int]] = []
        after = bob_peer.next(events.Pong, lambda e: e.token == "after")
        path = await bounded(bob.download(offer.id, offer.name, folder, lambda n, size: received.append((n, size))))
        bob.send_line("/ping after")
        await after
        self.assertEqual(path, folder / "holiday photos.tar")
        self.assertEqual(path.read_bytes(), data)
        self.assertEqual(received[-1], (len(data), len(data)))
        self.assertEqual([p.name for p in folder.iterdir()], ["holiday photos.tar"])
        self.assertFalse([e for e in bob_peer.events + alice_peer.events if isinstance(e, events.Error)])

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
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from chat import events
from chat.client.model import Change
from chat.client.protocol import ChatClientProtocol, IClientHandler
from chat.client.service import Account, ChatClient
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


class DaemonTestCase(TestCase):
    """
    Tests on one real daemon, started for each.
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



class TwoClientsTests(DaemonTestCase):
    """
    Two L{ChatClientProtocol}s on one real daemon.
    """

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


@implementer(IStreamClientEndpoint)
class DaemonEndpoint:
    """
    Connects to the daemon's port of the moment (a restarted daemon listens on another).
    """

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:  # noqa: N803 (the interface's name)
        return TCP4ClientEndpoint(reactor, "127.0.0.1", self.daemon.port, timeout=5).connect(protocolFactory)


class Watcher:
    """
    Keeps every change of a client's model and lets a test wait for the next one passing a test.
    """

    def __init__(self, client: ChatClient) -> None:
        self.changes: list[Change] = []
        self._waiting: list[tuple[Callable[[Change], bool], Deferred[Any]]] = []
        client.model.observe(self.record)

    def record(self, change: Change) -> None:
        self.changes.append(change)
        for waiter in list(self._waiting):
            if waiter[0](change):
                self._waiting.remove(waiter)
                waiter[1].callback(change)

    def next(self, test: Callable[[Change], bool]) -> Deferred[Any]:
        """
        The next change passing C{test}, within L{WAIT} seconds.
        """
        d: Deferred[Any] = Deferred()
        self._waiting.append((test, d))
        return bounded(d)


def history_of(room: str) -> Callable[[Change], bool]:
    return lambda change: isinstance(change, events.History) and change.room == room


class ClientSessionTests(DaemonTestCase):
    """
    A L{ChatClient} (the session both front ends share) on a real daemon.
    """

    def client(self, nick: str) -> tuple[ChatClient, Watcher]:
        """
        A started client for C{nick}, stopped at the end of the test.
        """
        client = ChatClient(reactor, DaemonEndpoint(self.daemon), Account(nick), where="daemon",
                            retry_policy=lambda failures: 0.2)
        watcher = Watcher(client)
        client.startService()
        self.addCleanup(lambda: client.stopService() if client.running else None)
        return client, watcher

    def test_history_of_rooms(self) -> Deferred[None]:
        """
        Joining a room whose messages are older than those seen in #lobby
        shows its whole history, and /history shows messages seen already.
        """
        return Deferred.fromCoroutine(self.history_of_rooms())

    async def history_of_rooms(self) -> None:
        carol, carol_peer = await self.join("carol")
        dev = carol_peer.next(events.History, lambda e: e.room == "#dev")
        carol.send_line("/join #dev")
        await dev
        for text in ("dev one", "dev two"):
            carol.say(text)
        lobby = carol_peer.next(events.Info)
        carol.send_line("/join #lobby")
        await lobby
        said = carol_peer.next(events.Message, lambda e: e.text == "lobby two")
        for text in ("lobby one", "lobby two"):
            carol.say(text)
        await said

        alice, watcher = self.client("alice")
        replay = await watcher.next(history_of("#lobby"))
        self.assertEqual([m.text for m in replay.messages], ["lobby one", "lobby two"])
        joined = watcher.next(history_of("#dev"))
        alice.input("/join #dev")
        self.assertEqual([m.text for m in (await joined).messages], ["dev one", "dev two"])
        asked = watcher.next(history_of("#lobby"))
        alice.input("/history 5 #lobby")
        self.assertEqual([m.text for m in (await asked).messages], ["lobby one", "lobby two"])

    def test_typed_account_survives_restart(self) -> Deferred[None]:
        """
        After a daemon restart the client logs in again to the account
        created with a /register typed in the session.
        """
        return Deferred.fromCoroutine(self.typed_account_survives_restart())

    async def typed_account_survives_restart(self) -> None:
        alice, watcher = self.client("alice")
        await watcher.next(lambda c: isinstance(c, events.Registered))
        registered = watcher.next(lambda c: isinstance(c, events.Registered) and c.account)
        alice.input("/register s3cret-12")
        await registered
        self.daemon.halt()
        again = watcher.next(lambda c: isinstance(c, events.Registered))
        self.daemon.start()
        self.assertEqual(await again, events.Registered("alice", True))

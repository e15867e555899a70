"""
Tests for L{chat.interfaces} and L{chat.ids}: each implementation provides
the interface it stands for (checked with C{verifyObject}, as Twisted
does), and the values an L{IParticipant} exposes are the ones the core
relies on.
"""

from __future__ import annotations

import os
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from chat.accounts import Accounts, PasswordHasher
from chat.delivery import LocalBus
from chat.ids import LocalIds
from chat.interfaces import IBus, IFileStore, IIdAllocator, IParticipant, IUpload
from chat.memory_store import MemoryStore
from chat.server import ChatServer
from chat.settings import Settings
from chat.spool import Spool
from chat.sqlite_store import open_store
from chat.storage import IStore
from tests.support import START
from tests.test_accounts import cheap
from tests.test_protocol_accounts import AccountsTestCase, TLSClient
from tests.test_spool import inline
from tests.test_storage import FakePool


class StoreTests(SynchronousTestCase):
    """
    Both stores provide L{IStore}.
    """

    def test_memory_store(self) -> None:
        """
        L{MemoryStore} provides L{IStore}.
        """
        self.assertTrue(verifyObject(IStore, MemoryStore()))

    def test_sqlite_store(self) -> None:
        """
        The SQLite store, as L{open_store} opens it, provides L{IStore}.
        """
        directory = tempfile.TemporaryDirectory(prefix="chat-interfaces-")
        self.addCleanup(directory.cleanup)
        pools: list[FakePool] = []

        def make_pool(path: str) -> FakePool:
            pools.append(FakePool(path))
            return pools[-1]

        store = open_store(directory.name, Clock(), make_pool=make_pool)
        self.assertTrue(verifyObject(IStore, store))
        closing = store.close()
        pools[0].run()
        self.successResultOf(closing)
        self.assertTrue(pools[0].closed)


class BusTests(SynchronousTestCase):
    """
    The in-process bus provides L{IBus}.
    """

    def test_local_bus(self) -> None:
        """
        L{LocalBus} provides L{IBus}.
        """
        self.assertTrue(verifyObject(IBus, LocalBus()))


class FileStoreTests(SynchronousTestCase):
    """
    The spool provides L{IFileStore}, and its uploads L{IUpload}.
    """

    def test_spool(self) -> None:
        """
        L{Spool} provides L{IFileStore}; what C{begin} returns provides L{IUpload}.
        """
        directory = tempfile.TemporaryDirectory(prefix="chat-interfaces-")
        self.addCleanup(directory.cleanup)
        spool = Spool(os.path.join(directory.name, "spool"), 1000, inline)
        spool.open()
        self.assertTrue(verifyObject(IFileStore, spool))
        upload = spool.begin(10)
        self.addCleanup(spool.abort, upload)
        self.assertTrue(verifyObject(IUpload, upload))
        self.assertEqual((upload.size, upload.remaining), (10, 10))


class IdsTests(SynchronousTestCase):
    """
    L{LocalIds}: the id allocator of one daemon.
    """

    def test_provides(self) -> None:
        """
        L{LocalIds} provides L{IIdAllocator}.
        """
        self.assertTrue(verifyObject(IIdAllocator, LocalIds()))

    def test_counts_from_one(self) -> None:
        """
        Without a last id, ids are 1, 2, 3, ...
        """
        ids = LocalIds()
        self.assertEqual([ids.next_id() for _ in range(3)], [1, 2, 3])

    def test_counts_after_last(self) -> None:
        """
        Ids continue after the last id used.
        """
        ids = LocalIds(41)
        self.assertEqual([ids.next_id() for _ in range(3)], [42, 43, 44])

    def test_server_counts_after_store(self) -> None:
        """
        By default the server's ids continue after its store's last id.
        """
        store = MemoryStore()
        for _ in range(3):
            store.next_id()
        clock = Clock()
        server = ChatServer(Settings(), clock, store, Accounts(store, PasswordHasher(None, hasher=cheap()), clock))
        self.assertTrue(verifyObject(IIdAllocator, server.ids))
        self.assertEqual(server.ids.next_id(), 4)


class ParticipantTests(AccountsTestCase):
    """
    L{ChatProtocol}, built by the line factory and connected, is an
    L{IParticipant} whose facts follow its session.
    """

    def test_provides(self) -> None:
        """
        A connected protocol provides L{IParticipant}.
        """
        client = self.connect()
        self.assertTrue(verifyObject(IParticipant, client.protocol))

    def test_before_registration(self) -> None:
        """
        Before registration: no nick, no account, not secure, and the peer's IP.
        """
        protocol = self.connect("192.0.2.7").protocol
        self.assertEqual(
            (protocol.nick, protocol.account, protocol.secure, protocol.peer), ("", None, False, "192.0.2.7")
        )

    def test_after_registration(self) -> None:
        """
        After C{/nick}: the nick, still no account; a new nick follows.
        """
        client = self.text_user("Alice")
        protocol = client.protocol
        self.assertEqual(
            (protocol.nick, protocol.account, protocol.secure, protocol.peer), ("Alice", None, False, "127.0.0.1")
        )
        client.line("/nick alicia")
        self.assertEqual(protocol.nick, "alicia")

    def test_after_login(self) -> None:
        """
        After C{/login}: the account's nick and its lower-cased name.
        """
        self.successResultOf(self.server.accounts.create("Alice", "password1", START))
        self.server.domain.account_created("Alice", None)
        client = self.connect()
        client.line("/login alice password1")
        self.assertEqual((client.protocol.nick, client.protocol.account), ("Alice", "alice"))

    def test_secure_over_tls(self) -> None:
        """
        Over a TLS transport the participant is secure.
        """
        client = TLSClient(self.factory, "192.0.2.7", 40999)
        self.assertTrue(verifyObject(IParticipant, client.protocol))
        self.assertEqual((client.protocol.secure, client.protocol.peer), (True, "192.0.2.7"))

    def test_after_disconnect(self) -> None:
        """
        Once its connection is gone the participant has no nick any more.
        """
        client = self.text_user("alice")
        client.lose()
        self.assertEqual((client.protocol.nick, client.protocol.account), ("", None))

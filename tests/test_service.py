"""
Tests for L{chat.service.ChatService}: the memory of connections that came
and went is returned by the periodic sweep (issue 16, finding 2).
"""

from __future__ import annotations

import gc
import weakref

from twisted.logger import Logger

from chat.protocol import ChatProtocol
from chat.service import ChatService
from tests.support import ProtocolTestCase


class SweepCollectsTests(ProtocolTestCase):
    """
    The sweep frees closed connections, whose objects refer to each other.
    """

    def test_closed_connections_freed(self) -> None:
        """
        With the automatic collector off, 50 connections that registered,
        talked and closed are still held; one sweep frees every one.
        """
        self.addCleanup(self.server.files.close)
        # Log events name their source: keep them out of the global buffer.
        self.patch(ChatProtocol, "_log", Logger(observer=lambda event: None))
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)
        gone = []
        for number in range(50):
            client = self.text_user(f"user{number}")
            client.line("hello")
            client.lose()
            gone.append(weakref.ref(client.protocol))
            del client
        self.factory.batch.flush()
        self.assertEqual(sum(ref() is not None for ref in gone), 50)
        ChatService(self.server, self.clock).sweep()
        self.assertEqual([ref() for ref in gone if ref() is not None], [])

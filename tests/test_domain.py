"""
Tests for L{chat.domain} as a whole: the test doubles of L{tests.support}
provide the interfaces the domain talks through (PROTOCOL.md sections 3 and
4). The domain's rules are tested by concern in C{test_domain_sessions},
C{test_domain_rooms}, C{test_domain_messages} and C{test_domain_files}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from chat.interfaces import IBus, IParticipant
from tests.support import FakeParticipant, RecordingSink


class SinkTests(SynchronousTestCase):
    """
    The test doubles provide the interfaces they stand in for.
    """

    def test_fakes_provide_interfaces(self) -> None:
        """
        The recording sink provides IBus and the fake participant IParticipant.
        """
        self.assertTrue(verifyObject(IBus, RecordingSink()))
        self.assertTrue(verifyObject(IParticipant, FakeParticipant("a")))

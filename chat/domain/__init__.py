# -*- test-case-name: tests.test_domain_sessions,tests.test_domain_rooms -*-
"""
The chat domain: users, rooms, history and file offers, with the rules of
PROTOCOL.md sections 3, 4 and 6. It never touches a transport, reads no
clock (every call takes C{now}, POSIX seconds) and talks to connections
only by publishing L{chat.events} to addresses (a room, users, one
participant) on an L{IBus}, in order, via a L{chat.sequencer.Sequencer}: a message is
published only once its store has made it durable, and whatever happens
after it waits its turn.

One module per concern: L{state} (users, rooms, names), L{rooms},
L{sessions}, L{messages}, L{files}, L{moderation}, L{keys}.
"""

from __future__ import annotations

from chat.domain.files import Files
from chat.domain.keys import Keys
from chat.domain.messages import Messages
from chat.domain.moderation import Moderation
from chat.domain.remote import Remote
from chat.domain.sessions import Sessions
from chat.domain.state import HISTORY_MAX, LOBBY, NICK_MAX, Room, User, room_name, utc
from chat.interfaces import IBus, IIdAllocator
from chat.storage import IStore

__all__ = ["HISTORY_MAX", "LOBBY", "NICK_MAX", "ChatDomain", "Room", "User", "room_name", "utc"]


class ChatDomain(Moderation, Sessions, Remote, Messages, Files, Keys):
    """
    Every user and room of one server, and the rules between them.

    Each public method is one request of PROTOCOL.md section 4 by a registered
    L{User}: it changes state, stores messages in the L{IStore}, and publishes
    the resulting events, in order, through a L{chat.sequencer.Sequencer}. A refused request
    raises a L{chat.errors.ChatError} subclass and changes nothing.
    """

    def __init__(self, bus: IBus, store: IStore, ids: IIdAllocator, history_on_join: int = 50) -> None:
        """
        @param history_on_join: messages replayed to a user joining a room.
        """
        super().__init__(bus, store, ids, history_on_join)
        self._new_room(LOBBY)

# -*- test-case-name: tests.test_domain_messages -*-
"""
The rules of messages (PROTOCOL.md section 4): room messages and private
messages, each published only once stored, under the id the store gave it
(remembered in the room's history then).
"""

from __future__ import annotations

from collections.abc import Sequence

from chat import errors, events
from chat.domain.state import DomainState, Room, User, utc
from chat.interfaces import ToUsers
from chat.sequencer import Delivery


class Messages(DomainState):
    """
    Saying things to a room or to one user.
    """

    def say(
        self, user: User, text: str, now: float, action: bool = False, room: str | None = None, notice: bool = False
    ) -> None:
        """
        Send a message to the user's current room (or to C{room}, one
        the user is in: the IRC front end names the channel): stored, then, once
        durable, published as C{message} to every member, the sender
        included. If it cannot be stored, nobody gets it and the sender
        gets error C{busy}.

        @param text: cleaned text; an empty or blank one is ignored.
        @param room: a room name (with its C{#}), or C{None} for the current room.
        @param notice: an IRC C{NOTICE} (L{events.Message.notice}).
        @raise errors.NotInRoom: the user is in no room, or not in C{room}.
        @raise errors.NoSuchRoom: C{room} does not exist.
        @raise errors.Muted: the user is muted in the room, or it is
            moderated and they are not an operator of it.
        """
        target = self._room(user, None) if room is None else self._joined(user, room)
        if not text.strip():
            return
        self._check_voice(user, target, now)
        user.active = now
        message = events.Message(
            self._message_ids.next_id(), utc(now), target.name, user.nick, text, action, notice,
            self.account_of(user),
        )
        stored = self._store.add(message)
        self._events.publish_after(stored, message, target.to, self._not_sent, user, then=target.remember)

    def _check_voice(self, user: User, room: Room, now: float) -> None:
        if self.is_operator(user, room):
            return
        key = room.name.lower()
        if self._muted(user, key, now):
            raise errors.Muted(f"you are muted in {room.name}")
        flags = self.flags.get(key)
        if flags is not None and flags.moderated:
            raise errors.Muted(f"{room.name} is moderated: only its operators speak")

    def _not_sent(self, user: User) -> Sequence[Delivery]:
        """
        What a message that could not be stored gives instead: its sender
        gets error C{busy}.
        """
        error = events.Error(errors.Busy.code, "your message could not be stored, so it was not sent; try again")
        return [(error, user.here)]

    def private(
        self, user: User, nick: str, text: str, now: float, action: bool = False, e2e: str = "", notice: bool = False
    ) -> None:
        """
        Send a private message; stored, then published as C{private} to the
        recipient and echoed to the sender. To a registered nick that is
        not connected, it is stored for their next login (C{offline} true),
        and the sender is told.

        @param e2e: the envelope of an end-to-end encrypted message
            (C{/emsg}, PROTOCOL.md section 11), stored and relayed as it is,
            never opened; C{text} is then empty. C{''} for a message in
            clear text.
        @param notice: an IRC C{NOTICE} (L{events.Private.notice}).
        @raise errors.NoSuchNick: nobody with that nick is connected, and
            no account has it.
        @raise errors.BadArguments: C{text} is empty (and there is no C{e2e}).
        """
        target = self.users.get(nick.lower())
        if target is None and nick.lower() not in self.accounts:
            raise errors.NoSuchNick(f"{nick} is not connected")
        if e2e:
            text = ""
        elif not text.strip():
            raise errors.BadArguments("usage: /msg NICK TEXT")
        user.active = now
        to = target.nick if target is not None else self.accounts[nick.lower()]
        message = events.Private(
            self._message_ids.next_id(), utc(now), user.nick, to, text, action, offline=target is None, e2e=e2e,
            notice=notice, account=self.account_of(user), away=target.status if target is not None else "",
        )
        stored = self._store.add(message)
        if target is None or target is user:
            address = user.here
        else:
            address = ToUsers((target.nick.lower(), user.nick.lower()))
        self._events.publish_after(stored, message, address, self._not_sent, user)
        if target is None:
            self._events.publish(
                events.Info(f"{to} is away: your message is stored and will be delivered when they log in"),
                user.here,
            )

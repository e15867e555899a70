# -*- test-case-name: tests.test_domain_rooms -*-
"""
The rules of rooms (PROTOCOL.md sections 3.4 and 4): joining, leaving,
topics and statuses, the lists and C{whois}, history and its replay on join.
"""

from __future__ import annotations

import fnmatch
import re
from collections import deque
from collections.abc import Sequence
from datetime import datetime

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from chat import errors, events
from chat.domain.state import (
    HISTORY_MAX,
    NICK_PATTERN,
    STATUS_MAX,
    TOPIC_MAX,
    DomainState,
    Room,
    User,
    room_name,
    utc,
)
from chat.interfaces import ToNeighbours
from chat.sequencer import Delivery
from chat.storage import AccountRecord, RoomFlags


def _check_count(count: int) -> None:
    """
    @raise errors.BadArguments: C{count} is not 1 to L{HISTORY_MAX}.
    """
    if not 1 <= count <= HISTORY_MAX:
        raise errors.BadArguments(f"N is 1 to {HISTORY_MAX}")


WHO_MAX = 200
"""The most users one L{Rooms.who} lists."""

WHO_MASKS = 16
"""The most masks one L{Rooms.who} reads."""


class Rooms(DomainState):
    """
    Joining and leaving rooms, their topics, and what users ask about them.
    """

    def _new_room(self, name: str) -> Room:
        """
        Create a room and start filling its history from the store, or
        bring back the dormant room of that name (its history loaded).
        """
        room = self._dormant.pop(name.lower(), None)
        if room is not None:
            room.name = name  # the spelling of whoever brings it back
            self.rooms[name.lower()] = room
            return room
        room = self.rooms[name.lower()] = Room(name, self.history_on_join)
        topic = self.topics.get(name.lower())
        if topic is not None:
            _, room.topic, room.topic_by = topic
        if not room.loaded:
            loading = self._store.recent(name, self.history_on_join)
            loading.addCallbacks(self._loaded, self._not_loaded, (room,), errbackArgs=(room,))
        return room

    def _recent_enough(self, messages: Sequence[events.Message]) -> Sequence[events.Message]:
        """
        C{messages} without those older than the last pruning: a read that
        started before a pruning may return them.
        """
        cutoff = self._pruned_before
        if messages and messages[0].ts.timestamp() < cutoff:
            return [m for m in messages if m.ts.timestamp() >= cutoff]
        return messages

    def _loaded(self, messages: Sequence[events.Message], room: Room) -> None:
        messages = self._recent_enough(messages)
        # Messages said while loading came after everything the read saw.
        last = messages[-1].id if messages else 0
        room.history = deque(
            [*messages, *(m for m in room.history if m.id > last)], maxlen=room.history.maxlen
        )
        room.loaded = True

    def _not_loaded(self, failure: Failure, room: Room) -> None:
        self._log.failure("could not read the history of {room}", failure, room=room.name)
        room.loaded = True

    def join(self, user: User, name: str, now: float) -> None:
        """
        Join a room, creating it if new, and make it current. Publishes
        C{join} to everyone in it, then C{users}, C{topic} if set, and
        C{history} (the last C{history_on_join} messages) to the newcomer.
        Joining a room already joined only makes it current.

        A user who becomes an operator by joining (see L{_operator_on_join})
        is announced with C{role} (by C{''}) to the room after the C{join};
        a room with a setting on sends C{room-settings} to the newcomer after
        C{users} and C{topic}.

        @raise errors.BadArguments: the room name is invalid.
        @raise errors.Banned: a ban keeps the user out.
        @raise errors.InviteOnly: invite-only, and the user is not invited.
        """
        name = room_name(name)
        key = name.lower()
        if key in user.rooms:
            user.rooms[key] = user.rooms.pop(key)
            self._events.publish(events.Info(f"{user.rooms[key].name} is now your current room"), user.here)
            return
        self._check_entry(user, name, now)
        room = self.rooms.get(key)
        if room is None:
            room = self._new_room(name)
        operator = self._operator_on_join(user, room)
        room.add(user)
        user.rooms[key] = room
        newcomer = user.here
        self._events.publish(
            events.Joined(utc(now), room.name, user.nick, self.account_of(user), user.status), room.to
        )
        if operator:
            self._events.publish(events.RoleChanged(room.name, user.nick, events.OPERATOR), room.to)
        self._events.publish(self._users(room, now), newcomer)
        if room.topic:
            self._events.publish(events.Topic(room.name, room.topic, room.topic_by), newcomer)
        flags = self.flags.get(key)
        if flags is not None and flags != RoomFlags():
            self._events.publish(
                events.RoomSettings(room.name, flags.invite_only, flags.topic_lock, flags.moderated), newcomer
            )
        if room.loaded:
            # Made once the messages said before the join are stored and remembered.
            self._events.publish_later(lambda: ((events.History(room.name, tuple(room.history)), newcomer),))
            return
        # Still loading: read again. The read sees every message said before
        # it; the ones said after it reach the newcomer live.
        def replay(messages: Sequence[events.Message]) -> Sequence[Delivery]:
            return [(events.History(room.name, tuple(self._recent_enough(messages))), newcomer)]

        reading = self._store.recent(room.name, self.history_on_join).addCallback(replay)
        self._events.publish_when(reading.addErrback(self._unavailable, newcomer, "history"))

    def _check_entry(self, user: User, name: str, now: float) -> None:
        """
        @raise errors.Banned: a ban keeps the user out of the room.
        @raise errors.InviteOnly: the room is invite-only, and the user is
            neither invited nor one of its operators.
        """
        if self.is_admin(user):
            return
        key = name.lower()
        ban = self._ban_of(user, key, now)
        if ban is not None:
            until = "" if ban.expires is None else f" until {utc(ban.expires):%Y-%m-%d %H:%M} UTC"
            reason = f": {ban.reason}" if ban.reason else ""
            raise errors.Banned(f"you are banned from {name}{until}{reason}")
        flags = self.flags.get(key)
        if flags is None or not flags.invite_only:
            return
        if (user.account is not None and (key, user.account) in self.operators) or (
            self._target(user) in self.invited.get(key, ())
        ):
            return
        raise errors.InviteOnly(f"{name} is invite-only: an operator of it can /invite {user.nick}")

    def _operator_on_join(self, user: User, room: Room) -> bool:
        """
        Whether C{user}, about to join C{room}, is an operator there: a
        server administrator, an account made an operator of it, or the
        first to join a room without operators (neither a member who is one
        nor an account made one). A logged-in first joiner's role is stored.
        """
        key = room.name.lower()
        if self.is_admin(user):
            return True
        if user.account is not None and (key, user.account) in self.operators:
            room.operators.add(user)
            return True
        if room.operators or any(self.is_admin(member) for member in room.members.values()):
            return False
        if any(pair[0] == key for pair in self.operators):
            return False
        room.operators.add(user)
        if user.account is not None:
            self._store_operator(room, user.account, True)
        return True

    def _store_operator(self, room: Room, account: str, operator: bool) -> None:
        pair = (room.name.lower(), account)
        if operator:
            self.operators.add(pair)
        else:
            self.operators.discard(pair)
        self._store.set_operator(room.name, account, operator).addErrback(
            lambda failure: self._log.failure("could not store the operators of {room}", failure, room=room.name)
        )
        self._moderated(pair[0])

    def part(self, user: User, name: str | None, reason: str, now: float) -> None:
        """
        Leave a room (the current one when C{name} is C{None}); publishes
        C{part} to everyone in it, the leaver included.

        @raise errors.NotInRoom: the user is not in that room.
        @raise errors.NoSuchRoom: no such room exists.
        """
        room = self._joined(user, name)
        self._leave(user, room)
        self._events.publish(events.Parted(utc(now), room.name, user.nick, reason[:STATUS_MAX]), room.to)

    def _users(self, room: Room, now: float) -> events.Users:
        members = sorted(room.members.values(), key=lambda u: u.nick.lower())
        return events.Users(
            room.name, tuple(events.UserInfo(u.nick, u.status, u.idle(now), self._role(u, room)) for u in members)
        )

    def list_users(self, user: User, name: str | None, now: float) -> None:
        """
        Publish C{users} for a room (default: current) to the requester.

        @raise errors.NotInRoom: no room given and the user is in none.
        @raise errors.NoSuchRoom: the named room does not exist.
        """
        self._events.publish(self._users(self._room(user, name), now), user.here)

    def list_rooms(self, user: User) -> None:
        """
        Publish C{rooms} (every room with members, and C{#lobby}) to the requester.
        """
        rooms = sorted(self.rooms.values(), key=lambda r: r.name.lower())
        self._events.publish(
            events.Rooms(tuple(events.RoomInfo(r.name, r.topic, len(r.members)) for r in rooms)),
            user.here,
        )

    def whois(self, user: User, nick: str, now: float) -> None:
        """
        Publish C{whois} about C{nick} to the requester.

        @raise errors.NoSuchNick: nobody with that nick is connected.
        """
        target = self._user(nick)
        self._events.publish(
            events.Whois(
                target.nick,
                target.status,
                tuple(r.name for r in target.rooms.values()),
                utc(target.since),
                target.idle(now),
                target.account is not None,
                bool(target.participant.secure),
                tuple(r.name for r in target.rooms.values() if self.is_operator(target, r)),
                self.remote.get(target.nick.lower(), self.node),
            ),
            user.here,
        )

    def who(self, user: User, masks: Sequence[str], now: float) -> None:
        """
        Publish C{users} to the requester: the connected users whose nick
        matches one of C{masks} (ignoring case, C{*} and C{?} as in shell
        patterns, no other wildcard), sorted by nick, at most L{WHO_MAX};
        C{room} is the masks joined by spaces. Nobody matching gives an
        empty list.
        """
        patterns = [re.compile(fnmatch.translate(m.lower().replace("[", "[[]"))) for m in masks[:WHO_MASKS]]
        found = [
            u for key, u in sorted(self.users.items()) if any(p.match(key) for p in patterns)
        ][:WHO_MAX]
        self._events.publish(
            events.Users(" ".join(masks), tuple(events.UserInfo(u.nick, u.status, u.idle(now)) for u in found)),
            user.here,
        )

    def set_status(self, user: User, text: str) -> None:
        """
        Set or clear (empty C{text}) the user's status; publishes C{status}
        to them and everyone sharing a room.
        """
        user.status = text[:STATUS_MAX]
        self._events.publish(events.StatusChanged(user.nick, user.status), ToNeighbours(user.nick.lower()))

    def topic(self, user: User, name: str | None, text: str | None) -> None:
        """
        Show a room's topic to the requester (C{text} is C{None}), or set it
        and publish C{topic} to every member.

        @raise errors.NotInRoom: setting the topic of a room not joined, or no
            room given and the user is in none.
        @raise errors.NotOperator: the room's topic is locked (C{topic-lock})
            and the user is not an operator of it.
        @raise errors.NoSuchRoom: the named room does not exist.
        """
        if text is None:
            room = self._room(user, name)
            self._events.publish(events.Topic(room.name, room.topic, room.topic_by), user.here)
            return
        room = self._joined(user, name)
        flags = self.flags.get(room.name.lower())
        if flags is not None and flags.topic_lock and not self.is_operator(user, room):
            raise errors.NotOperator(f"the topic of {room.name} is locked: only its operators set it")
        room.topic = text[:TOPIC_MAX]
        room.topic_by = user.nick
        key = room.name.lower()
        if room.topic:
            self.topics[key] = (room.name, room.topic, room.topic_by)
        else:
            self.topics.pop(key, None)
        self._store.set_topic(room.name, room.topic, room.topic_by).addErrback(
            lambda failure: self._log.failure("could not store the topic of {room}", failure, room=room.name)
        )
        self._events.publish(events.Topic(room.name, room.topic, room.topic_by), room.to)

    def history(
        self,
        user: User,
        count: int,
        name: str | None,
        before: int | None = None,
        after: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        """
        Publish the last C{count} (1 to L{HISTORY_MAX}) messages of a room
        (default: current) to the requester as C{history}, read from the
        store; with C{before} (a message id), the last C{count} with a
        lower id (scrolling back). A room that neither exists nor has
        history (before C{before}) gets error C{no-such-room}; a failed
        read, error C{busy}.

        Forward (IRC's C{CHATHISTORY AFTER}): with C{after} (a message id)
        or C{since} (an aware time), the I{first} C{count} messages with a
        higher id, sent at or after C{since}. With C{until} (an aware
        time), the last C{count} sent before it (and before C{before}):
        found as those before the first message sent at or after it, since
        ids increase with time.

        @raise errors.BadArguments: C{count} is out of range or the name is
            invalid.
        @raise errors.NotInRoom: no room given and the user is in none.
        """
        _check_count(count)
        if name is None:
            display = self._room(user, None).name
        else:
            display = room_name(name)
            known = self.rooms.get(display.lower())
            if known is not None:
                display = known.name
        requester = user.here

        def answer(messages: Sequence[events.Message]) -> Sequence[Delivery]:
            room = self.rooms.get(display.lower())
            if room is not None:
                return [(events.History(room.name, tuple(messages)), requester)]
            if not messages:
                return [(events.Error(errors.NoSuchRoom.code, f"{display} does not exist"), requester)]
            # The spelling it was created with.
            return [(events.History(messages[-1].room, tuple(messages)), requester)]

        store = self._store
        if after is not None or since is not None:
            reading = store.messages(display, since, after or 0, count)
        elif until is not None:

            def before_first(first: Sequence[events.Message]) -> Deferred[Sequence[events.Message]]:
                bound = before
                if first and (bound is None or first[0].id < bound):
                    bound = first[0].id
                return store.recent(display, count, bound)

            reading = store.messages(display, until, 0, 1).addCallback(before_first)
        else:
            reading = store.recent(display, count, before)
        answering = reading.addCallback(answer)
        self._events.publish_when(answering.addErrback(self._unavailable, requester, "history"))

    def private_history(self, user: User, count: int, nick: str, before: int | None = None) -> None:
        """
        Publish the last C{count} (1 to L{HISTORY_MAX}) private messages
        between the requester's account and C{nick} (either one the
        sender), read from the store, to the requester as C{history} with
        C{with} (L{events.PrivateHistory}); with C{before} (a message id),
        the last C{count} with a lower id. Only messages sent since the
        account was created are shown, so a guest who had its name before
        does not leak into it; messages sent while the user wore another
        nick are not found. A failed read gets error C{busy}.

        @param nick: the other side, any nick (connected, an account, or
            neither); named in the reply as the connected user or account
            of that name spells it.
        @raise errors.BadArguments: C{count} is out of range, C{nick} is
            not a valid nick, or the user is a guest: private history is
            kept for logged-in users only.
        """
        _check_count(count)
        if not NICK_PATTERN.match(nick):
            raise errors.BadArguments("invalid nick")
        account = user.account
        if account is None:
            raise errors.BadArguments(
                "private history is kept for logged-in users only: /register or /login first"
            )
        other = self.users.get(nick.lower())
        shown = other.nick if other is not None else self.accounts.get(nick.lower(), nick)
        requester = user.here

        def read(record: AccountRecord | None) -> Deferred[Sequence[events.Private]]:
            if record is None:  # deleted (chat-admin) while logged in
                return succeed(())
            return self._store.conversation(account, nick, count, before, utc(record.created))

        def answer(messages: Sequence[events.Private]) -> Sequence[Delivery]:
            return [(events.PrivateHistory(shown, tuple(messages)), requester)]

        reading = self._store.account(account).addCallback(read).addCallback(answer)
        self._events.publish_when(reading.addErrback(self._unavailable, requester, "history"))

    def prune(self, before: float) -> Deferred[int]:
        """
        Forget messages older than C{before} (POSIX seconds), in memory and
        in the store (C{--history-days}).

        @return: fires with how many the store deleted.
        """
        self._pruned_before = max(self._pruned_before, before)
        for room in (*self.rooms.values(), *self._dormant.values()):
            history = room.history
            while history and history[0].ts.timestamp() < before:
                history.popleft()
        return self._store.prune(before)

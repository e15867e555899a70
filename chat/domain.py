# -*- test-case-name: tests.test_domain -*-
"""
The chat domain: users, rooms, history and flood buckets, with the rules of
PROTOCOL.md sections 3 and 4. Pure state: it never touches a transport, reads
no clock (every call takes C{now}, POSIX seconds) and talks to connections
only by publishing L{chat.events} through an L{IEventSink}.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone

from zope.interface import Attribute, Interface

from chat import errors, events
from chat.storage import IStore

NICK_MAX = 24
"""The longest nick, in characters (PROTOCOL.md section 3.3)."""

HISTORY_MAX = 500
"""The most messages one C{/history} returns (PROTOCOL.md section 4)."""

LOBBY = "#lobby"
"""The room every user joins on registration (PROTOCOL.md section 3.4)."""

_NICK = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,%d}\Z" % (NICK_MAX - 1))
_ROOM = re.compile(r"#[A-Za-z0-9_-]{1,32}\Z")
_STATUS_MAX = 200
"""The longest status or part/quit reason kept, in characters."""
_TOPIC_MAX = 390
"""The longest topic kept, in characters."""


class IParticipant(Interface):
    """
    A connection as the domain sees it: something events are published to.
    """

    secure = Attribute("C{bool}: whether the connection is encrypted (TLS).")


class IEventSink(Interface):
    """
    Where the domain publishes its events; implemented by the protocol layer,
    which renders each event once per output format.
    """

    def publish(event: events.Event, recipients: Iterable[IParticipant]) -> None:  # noqa: N805
        """
        Deliver C{event} to each of C{recipients}, in order, without raising.
        """


def utc(now: float) -> datetime:
    """
    Convert POSIX seconds to an aware UTC C{datetime}.
    """
    return datetime.fromtimestamp(now, timezone.utc)


def room_name(name: str) -> str:
    """
    Validate a room name; a missing leading C{#} is added.

    @return: the name as given, with its C{#}.
    @raise errors.BadArguments: the name is not C{#} and 1 to 32 letters,
        digits, C{_} or C{-}.
    """
    if not name.startswith("#"):
        name = "#" + name
    if not _ROOM.match(name):
        raise errors.BadArguments(
            "a room name is # and 1 to 32 letters, digits, _ or -"
        )
    return name


class TokenBucket:
    """
    The flood limit of PROTOCOL.md section 8: a burst of C{burst} lines, then
    C{rate} lines per second.
    """

    __slots__ = ("rate", "burst", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def _level(self, now: float) -> float:
        return min(self.burst, self._tokens + (now - self._stamp) * self.rate)

    def wait(self, now: float) -> float:
        """
        Seconds until a token is available; 0 when one is available now.
        """
        tokens = self._level(now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, now: float) -> None:
        """
        Spend one token for a line being processed. Taken from an empty
        bucket (for a line that cannot be held back) it goes into debt.
        """
        self._tokens = self._level(now) - 1
        self._stamp = now

    def full(self, now: float) -> bool:
        """
        Whether the bucket has refilled to its burst at C{now}.
        """
        return self._level(now) >= self.burst


class User:
    """
    A registered connection.

    @ivar rooms: the rooms joined, oldest join first; the last is current.
    @ivar since: when the user registered, POSIX seconds.
    @ivar active: when the user last sent a message, POSIX seconds.
    """

    __slots__ = ("nick", "participant", "since", "active", "status", "rooms", "account")

    def __init__(self, nick: str, participant: IParticipant, now: float) -> None:
        self.nick = nick
        self.participant = participant
        self.since = now
        self.active = now
        self.status = ""
        self.rooms: dict[str, Room] = {}
        self.account = False

    @property
    def room(self) -> Room | None:
        """
        The current room: the one most recently joined, or C{None}.
        """
        return next(reversed(self.rooms.values()), None)

    def idle(self, now: float) -> int:
        """
        Whole seconds since the user last sent a message.
        """
        return max(0, int(now - self.active))


class Room:
    """
    A room with its members, keyed by lower-cased nick.
    """

    __slots__ = ("name", "topic", "topic_by", "members", "_audience")

    def __init__(self, name: str) -> None:
        self.name = name
        self.topic = ""
        self.topic_by = ""
        self.members: dict[str, User] = {}
        self._audience: tuple[IParticipant, ...] | None = None

    @property
    def audience(self) -> tuple[IParticipant, ...]:
        """
        The members' participants, cached until membership changes: the
        fan-out path builds no list per message.
        """
        if self._audience is None:
            self._audience = tuple(u.participant for u in self.members.values())
        return self._audience

    def add(self, user: User) -> None:
        self.members[user.nick.lower()] = user
        self._audience = None

    def remove(self, user: User) -> None:
        del self.members[user.nick.lower()]
        self._audience = None


class ChatDomain:
    """
    Every user and room of one server, and the rules between them.

    Each public method is one request of PROTOCOL.md section 4 by a registered
    L{User}: it changes state, stores messages in the L{IStore}, and publishes
    the resulting events to the L{IEventSink}. A refused request raises a
    L{errors.ChatError} subclass and changes nothing.
    """

    def __init__(
        self,
        sink: IEventSink,
        store: IStore,
        history_on_join: int = 50,
    ) -> None:
        self._sink = sink
        self._store = store
        self.history_on_join = history_on_join
        self.users: dict[str, User] = {}
        self.rooms: dict[str, Room] = {LOBBY: Room(LOBBY)}

    # Lookups

    def _user(self, nick: str) -> User:
        user = self.users.get(nick.lower())
        if user is None:
            raise errors.NoSuchNick(f"{nick} is not connected")
        return user

    def _room(self, user: User, name: str | None) -> Room:
        """
        The named room, or the user's current room when C{name} is C{None}.
        """
        if name is None:
            room = user.room
            if room is None:
                raise errors.NotInRoom("you are in no room: /join #ROOM first")
            return room
        name = room_name(name)
        room = self.rooms.get(name.lower())
        if room is None:
            raise errors.NoSuchRoom(f"{name} does not exist")
        return room

    def _joined(self, user: User, name: str | None) -> Room:
        room = self._room(user, name)
        if room.name.lower() not in user.rooms:
            raise errors.NotInRoom(f"you are not in {room.name}")
        return room

    def _neighbours(self, user: User) -> list[IParticipant]:
        """
        The user and everyone sharing a room with them, each once.
        """
        seen = {user.participant: None}
        for room in user.rooms.values():
            seen.update(dict.fromkeys(room.audience))
        return list(seen)

    # Session

    def register(self, participant: IParticipant, nick: str, now: float) -> User:
        """
        Give a connection a nick, then join it to C{#lobby} (PROTOCOL.md
        section 3.4). Publishes C{registered} to it, then the join events.

        @raise errors.NickInvalid: C{nick} breaks the rules of section 3.3.
        @raise errors.NickTaken: another user has C{nick}, ignoring case.
        """
        self._check_nick(nick)
        user = User(nick, participant, now)
        self.users[nick.lower()] = user
        self._sink.publish(events.Registered(nick, user.account), (participant,))
        self.join(user, LOBBY, now)
        return user

    def _check_nick(self, nick: str) -> None:
        if not _NICK.match(nick):
            raise errors.NickInvalid(
                f"a nick is 1 to {NICK_MAX} characters: a letter, then letters,"
                " digits, _ or -"
            )
        if nick.lower() in self.users:
            raise errors.NickTaken(f"{nick} is taken")

    def change_nick(self, user: User, new: str, now: float) -> None:
        """
        Rename a user; publishes C{nick} to them and everyone sharing a room.

        @raise errors.NickInvalid: C{new} breaks the rules of section 3.3.
        @raise errors.NickTaken: another user has C{new}, ignoring case.
        """
        if new == user.nick:
            return
        if new.lower() != user.nick.lower():
            self._check_nick(new)
        elif not _NICK.match(new):
            raise errors.NickInvalid("invalid nick")
        old = user.nick
        rooms = list(user.rooms.values())
        for room in rooms:
            room.remove(user)
        del self.users[old.lower()]
        user.nick = new
        self.users[new.lower()] = user
        for room in rooms:
            room.add(user)
        self._sink.publish(events.NickChanged(utc(now), old, new), self._neighbours(user))

    def quit(self, user: User, reason: str, now: float) -> None:
        """
        Remove a user who disconnected; publishes C{quit} to everyone who
        shared a room with them (not to the user, whose connection is closing).
        """
        audience = self._neighbours(user)
        audience.remove(user.participant)
        for room in list(user.rooms.values()):
            self._leave(user, room)
        del self.users[user.nick.lower()]
        self._sink.publish(events.Quit(utc(now), user.nick, reason[:_STATUS_MAX]), audience)

    # Rooms

    def join(self, user: User, name: str, now: float) -> None:
        """
        Join a room, creating it if new, and make it current. Publishes
        C{join} to everyone in it, then C{users} and C{history} to the
        newcomer. Joining a room already joined only makes it current.

        @raise errors.BadArguments: the room name is invalid.
        """
        name = room_name(name)
        key = name.lower()
        if key in user.rooms:
            user.rooms[key] = user.rooms.pop(key)
            self._sink.publish(events.Info(f"{user.rooms[key].name} is now your current room"), (user.participant,))
            return
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = Room(name)
        room.add(user)
        user.rooms[key] = room
        self._sink.publish(events.Joined(utc(now), room.name, user.nick), room.audience)
        self._sink.publish(self._users(room, now), (user.participant,))
        if room.topic:
            self._sink.publish(events.Topic(room.name, room.topic, room.topic_by), (user.participant,))
        self._sink.publish(
            events.History(room.name, tuple(self._store.recent(room.name, self.history_on_join))),
            (user.participant,),
        )

    def part(self, user: User, name: str | None, reason: str, now: float) -> None:
        """
        Leave a room (the current one when C{name} is C{None}); publishes
        C{part} to everyone in it, the leaver included.

        @raise errors.NotInRoom: the user is not in that room.
        @raise errors.NoSuchRoom: no such room exists.
        """
        room = self._joined(user, name)
        audience = room.audience
        self._leave(user, room)
        self._sink.publish(
            events.Parted(utc(now), room.name, user.nick, reason[:_STATUS_MAX]), audience
        )

    def _leave(self, user: User, room: Room) -> None:
        key = room.name.lower()
        room.remove(user)
        del user.rooms[key]
        if not room.members and key != LOBBY:
            del self.rooms[key]

    # Messages

    def say(self, user: User, text: str, now: float, action: bool = False) -> None:
        """
        Send a message to the user's current room: stored, then published as
        C{message} to every member, the sender included.

        @param text: cleaned text; an empty or blank one is ignored.
        @raise errors.NotInRoom: the user is in no room.
        """
        room = self._room(user, None)
        if not text.strip():
            return
        user.active = now
        message = events.Message(self._store.next_id(), utc(now), room.name, user.nick, text, action)
        self._store.add(message)
        self._sink.publish(message, room.audience)

    def private(self, user: User, nick: str, text: str, now: float, action: bool = False) -> None:
        """
        Send a private message; published as C{private} to the recipient and
        echoed to the sender.

        @raise errors.NoSuchNick: nobody with that nick is connected.
        @raise errors.BadArguments: C{text} is empty.
        """
        target = self._user(nick)
        if not text.strip():
            raise errors.BadArguments("usage: /msg NICK TEXT")
        user.active = now
        message = events.Private(self._store.next_id(), utc(now), user.nick, target.nick, text, action)
        recipients = (target.participant,) if target is user else (target.participant, user.participant)
        self._sink.publish(message, recipients)

    # Queries and settings

    def _users(self, room: Room, now: float) -> events.Users:
        members = sorted(room.members.values(), key=lambda u: u.nick.lower())
        return events.Users(
            room.name, tuple(events.UserInfo(u.nick, u.status, u.idle(now)) for u in members)
        )

    def list_users(self, user: User, name: str | None, now: float) -> None:
        """
        Publish C{users} for a room (default: current) to the requester.

        @raise errors.NotInRoom: no room given and the user is in none.
        @raise errors.NoSuchRoom: the named room does not exist.
        """
        self._sink.publish(self._users(self._room(user, name), now), (user.participant,))

    def list_rooms(self, user: User) -> None:
        """
        Publish C{rooms} (every room with members, and C{#lobby}) to the requester.
        """
        rooms = sorted(self.rooms.values(), key=lambda r: r.name.lower())
        self._sink.publish(
            events.Rooms(tuple(events.RoomInfo(r.name, r.topic, len(r.members)) for r in rooms)),
            (user.participant,),
        )

    def whois(self, user: User, nick: str, now: float) -> None:
        """
        Publish C{whois} about C{nick} to the requester.

        @raise errors.NoSuchNick: nobody with that nick is connected.
        """
        target = self._user(nick)
        self._sink.publish(
            events.Whois(
                target.nick,
                target.status,
                tuple(r.name for r in target.rooms.values()),
                utc(target.since),
                target.idle(now),
                target.account,
                bool(target.participant.secure),
            ),
            (user.participant,),
        )

    def set_status(self, user: User, text: str) -> None:
        """
        Set or clear (empty C{text}) the user's status; publishes C{status}
        to them and everyone sharing a room.
        """
        user.status = text[:_STATUS_MAX]
        self._sink.publish(events.StatusChanged(user.nick, user.status), self._neighbours(user))

    def topic(self, user: User, name: str | None, text: str | None) -> None:
        """
        Show a room's topic to the requester (C{text} is C{None}), or set it
        and publish C{topic} to every member.

        @raise errors.NotInRoom: setting the topic of a room not joined, or no
            room given and the user is in none.
        @raise errors.NoSuchRoom: the named room does not exist.
        """
        if text is None:
            room = self._room(user, name)
            self._sink.publish(events.Topic(room.name, room.topic, room.topic_by), (user.participant,))
            return
        room = self._joined(user, name)
        room.topic = text[:_TOPIC_MAX]
        room.topic_by = user.nick
        self._sink.publish(events.Topic(room.name, room.topic, room.topic_by), room.audience)

    def history(self, user: User, count: int, name: str | None) -> None:
        """
        Publish the last C{count} (1 to L{HISTORY_MAX}) messages of a room
        (default: current) to the requester as C{history}.

        @raise errors.BadArguments: C{count} is out of range.
        @raise errors.NoSuchRoom: the room neither exists nor has history.
        @raise errors.NotInRoom: no room given and the user is in none.
        """
        if not 1 <= count <= HISTORY_MAX:
            raise errors.BadArguments(f"N is 1 to {HISTORY_MAX}")
        if name is None:
            room_display = self._room(user, None).name
        else:
            room_display = room_name(name)
            known = self.rooms.get(room_display.lower())
            if known is not None:
                room_display = known.name
        messages = tuple(self._store.recent(room_display, count))
        if room_display.lower() not in self.rooms:
            if not messages:
                raise errors.NoSuchRoom(f"{room_display} does not exist")
            room_display = messages[-1].room  # the spelling it was created with
        self._sink.publish(events.History(room_display, messages), (user.participant,))


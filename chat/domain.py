# -*- test-case-name: tests.test_domain -*-
"""
The chat domain: users, rooms, history and flood buckets, with the rules of
PROTOCOL.md sections 3 and 4. It never touches a transport, reads no clock
(every call takes C{now}, POSIX seconds) and talks to connections only by
publishing L{chat.events} to addresses (a room, users, one participant) on an
L{IBus}, in order, via a L{Sequencer}: a message is published only once its
store has made it durable, and whatever happens after it waits its turn.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat import errors, events
from chat.interfaces import (
    Address,
    IBus,
    IIdAllocator,
    IParticipant,
    ToNeighbours,
    ToParticipant,
    ToRoom,
    ToUsers,
)
from chat.offers import Offers
from chat.sequencer import Delivery, Sequencer
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


def utc(now: float) -> datetime:
    """
    Convert POSIX seconds to an aware UTC C{datetime}, truncated to the
    millisecond (the precision of events and of storage).
    """
    when = datetime.fromtimestamp(now, timezone.utc)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


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


class User:
    """
    A registered connection.

    @ivar rooms: the rooms joined, oldest join first; the last is current.
    @ivar since: when the user registered, POSIX seconds.
    @ivar active: when the user last sent a message, POSIX seconds.
    @ivar account: the lower-cased name of the account logged in to, or
        C{None} for a guest.
    """

    __slots__ = ("nick", "participant", "here", "since", "active", "status", "rooms", "account")

    def __init__(self, nick: str, participant: IParticipant, now: float) -> None:
        self.nick = nick
        self.participant = participant
        self.here: Address = ToParticipant(participant)
        """The address of replies to this user's requests."""
        self.since = now
        self.active = now
        self.status = ""
        self.rooms: dict[str, Room] = {}
        self.account: str | None = None

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

    @ivar history: the room's latest messages, at most C{keep}, for the
        replay on join; complete once C{loaded} (filled from the store when
        the room is created).
    """

    __slots__ = ("name", "topic", "topic_by", "members", "to", "history", "loaded")

    def __init__(self, name: str, keep: int = 0) -> None:
        self.name = name
        self.topic = ""
        self.topic_by = ""
        self.members: dict[str, User] = {}
        self.to: Address = ToRoom(name.lower())
        """The address of everyone in the room."""
        self.history: deque[events.Message] = deque(maxlen=keep)
        self.loaded = keep == 0

    def add(self, user: User) -> None:
        self.members[user.nick.lower()] = user

    def remove(self, user: User) -> None:
        del self.members[user.nick.lower()]


class ChatDomain:
    """
    Every user and room of one server, and the rules between them.

    Each public method is one request of PROTOCOL.md section 4 by a registered
    L{User}: it changes state, stores messages in the L{IStore}, and publishes
    the resulting events, in order, through a L{Sequencer}. A refused request
    raises a L{errors.ChatError} subclass and changes nothing.

    @ivar accounts: the registered nicks, lower-cased, to their spelling.
    @ivar offers: the file offers by id, expired ones included until
        L{expire_offers} removes them.
    @ivar topics: every room's topic, kept when the room empties and in the
        store: lower-cased room name to C{(room, text, by)}.
    """

    _log = Logger()

    def __init__(
        self,
        bus: IBus,
        store: IStore,
        ids: IIdAllocator,
        history_on_join: int = 50,
    ) -> None:
        self._events = Sequencer(bus)
        self._store = store
        self._ids = ids
        self.history_on_join = history_on_join
        self.users: dict[str, User] = {}
        self.rooms: dict[str, Room] = {}
        self.accounts: dict[str, str] = store.account_names()
        self._offers = Offers(store.offers())
        self.offers = self._offers.by_id
        self.topics: dict[str, tuple[str, str, str]] = store.topics()
        self._pruned_before = 0.0
        self._new_room(LOBBY)

    def tell(self, participant: IParticipant, event: events.Event) -> None:
        """
        Publish C{event} to one participant, after everything published
        before it: a connection's replies keep the order of its requests.
        """
        self._events.publish(event, ToParticipant(participant))

    def then(self, action: Callable[[], object]) -> None:
        """
        Call C{action} once everything published so far is out (e.g. to
        close a connection after its last events).
        """
        self._events.call(action)

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

    # Session

    def register(self, participant: IParticipant, nick: str, now: float, account: str | None = None) -> User:
        """
        Give a connection a nick, then join it to C{#lobby} (PROTOCOL.md
        section 3.4). Publishes C{registered} to it, then the join events.

        @param account: the lower-cased account name when the connection
            logged in (C{nick} is then the account's name), else C{None}.
        @raise errors.NickInvalid: C{nick} breaks the rules of section 3.3.
        @raise errors.NickTaken: another user has C{nick}, ignoring case.
        @raise errors.NickRegistered: C{nick} belongs to an account the
            connection is not logged in to.
        """
        self._check_nick(nick, account)
        user = User(nick, participant, now)
        user.account = account
        self.users[nick.lower()] = user
        self._events.publish(events.Registered(nick, account is not None), user.here)
        self.join(user, LOBBY, now)
        return user

    def _check_nick(self, nick: str, account: str | None) -> None:
        if not _NICK.match(nick):
            raise errors.NickInvalid(
                f"a nick is 1 to {NICK_MAX} characters: a letter, then letters,"
                " digits, _ or -"
            )
        key = nick.lower()
        if key in self.users:
            raise errors.NickTaken(f"{nick} is taken")
        if key in self.accounts and key != account:
            raise errors.NickRegistered(f"{nick} is a registered nick: /login {nick} PASSWORD")

    def change_nick(self, user: User, new: str, now: float) -> None:
        """
        Rename a user; publishes C{nick} to them and everyone sharing a room.

        @raise errors.NickInvalid: C{new} breaks the rules of section 3.3.
        @raise errors.NickTaken: another user has C{new}, ignoring case.
        @raise errors.NickRegistered: C{new} belongs to another account.
        """
        if new == user.nick:
            return
        if new.lower() != user.nick.lower():
            self._check_nick(new, user.account)
        elif not _NICK.match(new):
            raise errors.NickInvalid("invalid nick")
        self._rename(user, new, now)

    def _rename(self, user: User, new: str, now: float) -> None:
        old = user.nick
        rooms = list(user.rooms.values())
        for room in rooms:
            room.remove(user)
        del self.users[old.lower()]
        user.nick = new
        self.users[new.lower()] = user
        for room in rooms:
            room.add(user)
        self._events.publish(events.NickChanged(utc(now), old, new), ToNeighbours(new.lower()))

    def login(self, user: User, name: str, now: float) -> None:
        """
        Log a registered user in to the account C{name} (its password was
        checked): they take the account's nick, and get C{registered} with
        C{account} true.

        @raise errors.NickTaken: another connection holds the account's
            nick (the caller disconnects another session of the same
            account first).
        """
        if name.lower() != user.nick.lower():
            if name.lower() in self.users:
                raise errors.NickTaken(f"{name} is taken")
            self._rename(user, name, now)
        elif name != user.nick:
            self._rename(user, name, now)
        user.account = name.lower()
        self._events.publish(events.Registered(user.nick, True), user.here)

    def session(self, account: str) -> User | None:
        """
        The user logged in to C{account} (lower-cased name), whatever their
        nick now, or C{None}.
        """
        for user in self.users.values():
            if user.account == account:
                return user
        return None

    def reserve(self, name: str) -> None:
        """
        Reserve the nick C{name} for an account being created, so nobody
        takes it meanwhile; L{account_created} or L{release} follows.
        """
        self.accounts[name.lower()] = name

    def release(self, name: str) -> None:
        """
        Free a nick reserved for an account that could not be created.
        """
        self.accounts.pop(name.lower(), None)

    def account_created(self, name: str, user: User | None) -> None:
        """
        Record the new account C{name} (its nick is now reserved), created
        by C{user}, who is now logged in to it and gets C{registered} with
        C{account} true; C{None} if they left meanwhile.
        """
        key = name.lower()
        self.accounts[key] = name
        if user is not None:
            user.account = key
            self._events.publish(events.Registered(user.nick, True), user.here)

    def deliver_waiting(self, user: User) -> None:
        """
        Publish to a user who just logged in the private messages stored
        for them while they were away (C{offline} true), oldest first, and
        mark them delivered.
        """
        pending = self._store.waiting(user.nick)

        def deliver(messages: Sequence[events.Private]) -> Sequence[Delivery]:
            if not messages or self.users.get(user.nick.lower()) is not user:
                return ()
            # The store logs a failure; they are then delivered again next time.
            self._store.delivered([m.id for m in messages])
            count = len(messages)
            note = events.Info(f"{count} private message{'s' if count > 1 else ''} arrived while you were away")
            return [(note, user.here)] + [(m, user.here) for m in messages]

        delivering = pending.addCallback(deliver)
        self._events.publish_when(delivering.addErrback(self._unavailable, user.here, "offline messages"))

    def quit(self, user: User, reason: str, now: float) -> None:
        """
        Remove a user who disconnected; publishes C{quit} to everyone who
        shared a room with them (not to the user, whose connection is closing).
        """
        for room in list(user.rooms.values()):
            self._leave(user, room)
        del self.users[user.nick.lower()]
        self._events.publish(
            events.Quit(utc(now), user.nick, reason[:_STATUS_MAX]), ToNeighbours(user.nick.lower(), itself=False)
        )

    # Rooms

    def _new_room(self, name: str) -> Room:
        """
        Create a room and start filling its history from the store.
        """
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

        @raise errors.BadArguments: the room name is invalid.
        """
        name = room_name(name)
        key = name.lower()
        if key in user.rooms:
            user.rooms[key] = user.rooms.pop(key)
            self._events.publish(events.Info(f"{user.rooms[key].name} is now your current room"), user.here)
            return
        room = self.rooms.get(key)
        if room is None:
            room = self._new_room(name)
        room.add(user)
        user.rooms[key] = room
        newcomer = user.here
        self._events.publish(events.Joined(utc(now), room.name, user.nick), room.to)
        self._events.publish(self._users(room, now), newcomer)
        if room.topic:
            self._events.publish(events.Topic(room.name, room.topic, room.topic_by), newcomer)
        if room.loaded:
            self._events.publish(events.History(room.name, tuple(room.history)), newcomer)
            return
        # Still loading: read again. The read sees every message said before
        # it; the ones said after it reach the newcomer live.
        def replay(messages: Sequence[events.Message]) -> Sequence[Delivery]:
            return [(events.History(room.name, tuple(self._recent_enough(messages))), newcomer)]

        reading = self._store.recent(room.name, self.history_on_join).addCallback(replay)
        self._events.publish_when(reading.addErrback(self._unavailable, newcomer, "history"))

    def _unavailable(self, failure: Failure, recipients: Address, what: str) -> Sequence[Delivery]:
        self._log.failure("could not read {what}", failure, what=what)
        return [(events.Error(errors.Busy.code, f"{what} is unavailable right now; try again later"), recipients)]

    def part(self, user: User, name: str | None, reason: str, now: float) -> None:
        """
        Leave a room (the current one when C{name} is C{None}); publishes
        C{part} to everyone in it, the leaver included.

        @raise errors.NotInRoom: the user is not in that room.
        @raise errors.NoSuchRoom: no such room exists.
        """
        room = self._joined(user, name)
        self._leave(user, room)
        self._events.publish(events.Parted(utc(now), room.name, user.nick, reason[:_STATUS_MAX]), room.to)

    def _leave(self, user: User, room: Room) -> None:
        key = room.name.lower()
        room.remove(user)
        del user.rooms[key]
        if not room.members and key != LOBBY:
            del self.rooms[key]

    # Messages

    def say(self, user: User, text: str, now: float, action: bool = False) -> None:
        """
        Send a message to the user's current room: stored, then, once
        durable, published as C{message} to every member, the sender
        included. If it cannot be stored, nobody gets it and the sender
        gets error C{busy}.

        @param text: cleaned text; an empty or blank one is ignored.
        @raise errors.NotInRoom: the user is in no room.
        """
        room = self._room(user, None)
        if not text.strip():
            return
        user.active = now
        message = events.Message(self._ids.next_id(), utc(now), room.name, user.nick, text, action)
        stored = self._store.add(message)
        room.history.append(message)
        self._events.publish_after(stored, message, room.to, self._not_sent, user, room, message)

    def _not_sent(
        self, user: User, room: Room | None = None, message: events.Message | None = None
    ) -> Sequence[Delivery]:
        """
        What a message that could not be stored gives instead: it leaves the
        replay, and its sender gets error C{busy}.
        """
        if room is not None and message is not None:
            try:
                room.history.remove(message)
            except ValueError:
                pass
        error = events.Error(errors.Busy.code, "your message could not be stored, so it was not sent; try again")
        return [(error, user.here)]

    def private(self, user: User, nick: str, text: str, now: float, action: bool = False) -> None:
        """
        Send a private message; stored, then published as C{private} to the
        recipient and echoed to the sender. To a registered nick that is
        not connected, it is stored for their next login (C{offline} true),
        and the sender is told.

        @raise errors.NoSuchNick: nobody with that nick is connected, and
            no account has it.
        @raise errors.BadArguments: C{text} is empty.
        """
        target = self.users.get(nick.lower())
        if target is None and nick.lower() not in self.accounts:
            raise errors.NoSuchNick(f"{nick} is not connected")
        if not text.strip():
            raise errors.BadArguments("usage: /msg NICK TEXT")
        user.active = now
        to = target.nick if target is not None else self.accounts[nick.lower()]
        message = events.Private(
            self._ids.next_id(), utc(now), user.nick, to, text, action, offline=target is None
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
            ),
            user.here,
        )

    def set_status(self, user: User, text: str) -> None:
        """
        Set or clear (empty C{text}) the user's status; publishes C{status}
        to them and everyone sharing a room.
        """
        user.status = text[:_STATUS_MAX]
        self._events.publish(events.StatusChanged(user.nick, user.status), ToNeighbours(user.nick.lower()))

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
            self._events.publish(events.Topic(room.name, room.topic, room.topic_by), user.here)
            return
        room = self._joined(user, name)
        room.topic = text[:_TOPIC_MAX]
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

    def history(self, user: User, count: int, name: str | None) -> None:
        """
        Publish the last C{count} (1 to L{HISTORY_MAX}) messages of a room
        (default: current) to the requester as C{history}, read from the
        store. A room that neither exists nor has history gets error
        C{no-such-room}; a failed read, error C{busy}.

        @raise errors.BadArguments: C{count} is out of range or the name is
            invalid.
        @raise errors.NotInRoom: no room given and the user is in none.
        """
        if not 1 <= count <= HISTORY_MAX:
            raise errors.BadArguments(f"N is 1 to {HISTORY_MAX}")
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

        reading = self._store.recent(display, count).addCallback(answer)
        self._events.publish_when(reading.addErrback(self._unavailable, requester, "history"))

    def prune(self, before: float) -> Deferred[int]:
        """
        Forget messages older than C{before} (POSIX seconds), in memory and
        in the store (C{--history-days}).

        @return: fires with how many the store deleted.
        """
        self._pruned_before = max(self._pruned_before, before)
        for room in self.rooms.values():
            history = room.history
            while history and history[0].ts.timestamp() < before:
                history.popleft()
        return self._store.prune(before)

    # Files (PROTOCOL.md section 6)

    def next_id(self) -> int:
        """
        Allocate an id, unique across the server and restarts (for an upload).
        """
        return self._ids.next_id()

    def upload_target(self, user: User, target: str) -> str:
        """
        Check the TARGET of an C{/upload}: a room the user is in, or a nick
        connected or registered (an offer then waits for its next login).

        @return: the target as spelled by the server.
        @raise errors.NotInRoom: a room the user is not in.
        @raise errors.NoSuchRoom: a room that does not exist.
        @raise errors.NoSuchNick: nobody has the nick.
        """
        if target.startswith("#"):
            return self._joined(user, target).name
        found = self.users.get(target.lower())
        if found is not None:
            return found.nick
        account = self.accounts.get(target.lower())
        if account is None:
            raise errors.NoSuchNick(f"{target} is not connected")
        return account

    def offer(self, user: User, offer: events.FileOffer) -> None:
        """
        Store a file offer; once durable, publish C{upload-done} to the
        uploader and C{file-offer} to the target nick or to everyone in the
        target room. If it cannot be stored, the uploader gets error C{busy}
        and the offer is dropped.
        """
        self._offers.add(offer)
        stored = self._store.add_offer(offer)
        done = events.UploadDone(offer.id, offer.sha256)
        self._events.publish_after(stored, done, user.here, self._offer_not_stored, user, offer)
        to = offer.to.lower()
        self._events.publish_after(stored, offer, ToRoom(to) if to.startswith("#") else ToUsers((to,)))

    def _offer_not_stored(self, user: User, offer: events.FileOffer) -> Sequence[Delivery]:
        self._offers.drop(offer)
        error = events.Error(errors.Busy.code, "your file could not be stored, so it is not offered; try again")
        return [(error, user.here)]

    def find_offer(self, user: User, offer_id: int, now: float) -> events.FileOffer:
        """
        The offer C{offer_id}, if the user may download it now.

        @raise errors.NoSuchFile: unknown, expired, or not offered to them.
        """
        return self._offers.find(user.nick, user.rooms, offer_id, now)

    def list_offers(self, user: User, now: float) -> None:
        """
        Publish to the user every offer they may download, oldest first, as
        C{file-offer} events, then an C{info} with their count.
        """
        offers = self._offers.open_to(user.nick, user.rooms, now)
        for offer in offers:
            self._events.publish(offer, user.here)
        if offers:
            text = f"{len(offers)} file{'s' if len(offers) > 1 else ''} you may fetch with /download ID"
        else:
            text = "No files are offered to you"
        self._events.publish(events.Info(text), user.here)

    def announce_offers(self, user: User, now: float) -> None:
        """
        Tell a user who just logged in about the files offered to their
        nick while they were away.
        """
        nick = user.nick.lower()
        count = sum(
            1 for offer in self._offers.open_to(user.nick, user.rooms, now)
            if offer.to.lower() == nick and offer.sender.lower() != nick
        )
        if count:
            noun = "file is" if count == 1 else "files are"
            self._events.publish(events.Info(f"{count} {noun} offered to you: /files lists them"), user.here)

    def expire_offers(self, now: float, stored: Callable[[str], bool] = lambda sha256: True) -> list[events.FileOffer]:
        """
        Remove the offers that expired at C{now} (POSIX seconds) or whose
        file is not C{stored}, here and in the store.

        @return: the offers removed.
        """
        gone = self._offers.expire(now, stored)
        if gone:
            self._store.remove_offers([offer.id for offer in gone]).addErrback(
                lambda failure: self._log.failure("could not remove expired offers", failure)
            )
        return gone

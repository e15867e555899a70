# -*- test-case-name: tests.test_domain_sessions,tests.test_domain_rooms -*-
"""
The state of the chat domain and the values it is made of: users, rooms,
nick and room name rules (PROTOCOL.md section 3), and L{DomainState}, which
holds every user and room of one server, the store, the id allocator and
the L{Sequencer} the rules publish through.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TypeVar

from twisted.logger import Logger
from twisted.python.failure import Failure

from chat import errors, events
from chat.domain.offers import Offers
from chat.ids import ProvisionalIds
from chat.interfaces import (
    Address,
    IBus,
    IIdAllocator,
    IParticipant,
    ToParticipant,
    ToRoom,
)
from chat.sequencer import Delivery, Sequencer
from chat.storage import BanRecord, IStore, ModerationRecord, RoomFlags, RoomModeration

NICK_MAX = 24
"""The longest nick, in characters (PROTOCOL.md section 3.3)."""

HISTORY_MAX = 500
"""The most messages one C{/history} returns (PROTOCOL.md section 4)."""

LOBBY = "#lobby"
"""The room every user joins on registration (PROTOCOL.md section 3.4)."""

NICK_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,%d}\Z" % (NICK_MAX - 1))
ROOM_PATTERN = re.compile(r"#[A-Za-z0-9_-]{1,32}\Z")
STATUS_MAX = 200
"""The longest status or part/quit reason kept, in characters."""
TOPIC_MAX = 390

DORMANT_ROOMS = 128
"""
Rooms kept, with their loaded history, after their last member left: a
room that empties and fills again (a chat that comes and goes, a program
that joins and quits) is not read from the store anew each time (issue 17).
"""
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
    if not ROOM_PATTERN.match(name):
        raise errors.BadArguments(
            "a room name is # and 1 to 32 letters, digits, _ or -"
        )
    return name

V = TypeVar("V", bound="dict[str, BanRecord] | dict[str, float | None] | set[str]")


def _keep(held: dict[str, V], key: str, value: V) -> None:
    """C{held[key] = value}, or no C{key} when C{value} is empty."""
    if value:
        held[key] = value
    else:
        held.pop(key, None)


class User:
    """
    A registered connection.

    @ivar rooms: the rooms joined, oldest join first; the last is current.
    @ivar since: when the user registered, POSIX seconds.
    @ivar active: when the user last sent a message, POSIX seconds.
    @ivar account: the lower-cased name of the account logged in to, or
        C{None} for a guest.
    @ivar token: the session's bearer token, sent in C{registered}, or C{''}.
    """

    __slots__ = (
        "nick", "participant", "here", "since", "active", "status", "rooms", "account", "token", "address", "keys",
    )

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
        self.token = ""
        """The session's bearer token for the HTTP file routes, or C{''} (PROTOCOL.md section 9)."""
        self.address = ""
        """The client's address key (L{chat.limits.address_key}), kept out with a guest's ban, or C{''}."""
        self.keys: list[events.DeviceKey] = []
        """A guest's published device keys, oldest first, lost with the session (PROTOCOL.md section 11)."""

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

    __slots__ = ("name", "topic", "topic_by", "members", "to", "history", "loaded", "operators")

    def __init__(self, name: str, keep: int = 0) -> None:
        self.name = name
        self.topic = ""
        self.topic_by = ""
        self.members: dict[str, User] = {}
        self.to: Address = ToRoom(name.lower())
        """The address of everyone in the room."""
        self.history: deque[events.Message] = deque(maxlen=keep)
        self.loaded = keep == 0
        self.operators: set[User] = set()
        """The members who are operators here now (PROTOCOL.md section 10)."""

    def remember(self, message: events.Message) -> None:
        """
        Keep C{message} (as stored, with its final id) in L{history}, in id
        order: after the others, unless a daemon of a cluster delivered one
        with a higher id first.
        """
        history = self.history
        if not history or history[-1].id < message.id:
            history.append(message)
            return
        at = len(history)
        while at and history[at - 1].id > message.id:
            at -= 1
        if at and history[at - 1].id == message.id:
            return
        if history.maxlen is not None and len(history) == history.maxlen:
            if at == 0:
                return  # older than everything kept
            history.popleft()
            at -= 1
        history.insert(at, message)

    def add(self, user: User) -> None:
        self.members[user.nick.lower()] = user

    def remove(self, user: User) -> None:
        del self.members[user.nick.lower()]


class DomainState:
    """
    Every user and room of one server: what the rules of L{chat.domain}
    read and change, and the L{Sequencer} they publish through, in order.

    @ivar accounts: the registered nicks, lower-cased, to their spelling.
    @ivar offers: the file offers by id, expired ones included until
        L{expire_offers} removes them.
    @ivar topics: every room's topic, kept when the room empties and in the
        store: lower-cased room name to C{(room, text, by)}.
    @ivar admins: the lower-cased accounts of server administrators.
    @ivar operators: C{(room, account)}, both lower-cased: accounts that are
        operators of a room whenever they are in it (stored).
    @ivar bans: lower-cased room name to the lower-cased target (account or
        nick) to its ban (stored).
    @ivar flags: lower-cased room name to its settings (stored; absent: all off).
    @ivar device_keys: lower-cased account name to its published device
        keys, oldest first (stored; PROTOCOL.md section 11).
    @ivar mutes: lower-cased room name to the lower-cased target (account, or
        guest nick) to the expiry in POSIX seconds or C{None} (not stored).
    @ivar invited: lower-cased room name to the lower-cased targets invited
        (account, or guest nick; not stored).
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
        self._message_ids: IIdAllocator = ProvisionalIds() if store.numbers_messages else ids
        """Where message ids come from: C{ids}, or provisional ones when the store numbers them as it commits."""
        self.history_on_join = history_on_join
        self.users: dict[str, User] = {}
        self.node = ""
        """This daemon's node name in a cluster (C{--node}), C{''} for a single daemon."""
        self.remote: dict[str, str] = {}
        """
        The users of L{users} connected to another daemon of a cluster
        (lower-cased nick to the daemon's node name), kept by
        L{chat.domain.remote.Remote}; empty for a single daemon.
        """
        self.rooms: dict[str, Room] = {}
        self._dormant: OrderedDict[str, Room] = OrderedDict()
        """Emptied rooms whose history is loaded, by lower-cased name, the most recently emptied last."""
        self.accounts: dict[str, str] = store.account_names()
        self._offers = Offers(store.offers())
        self.offers = self._offers.by_id
        self.topics: dict[str, tuple[str, str, str]] = store.topics()
        self.device_keys: dict[str, list[events.DeviceKey]] = {
            account: list(keys) for account, keys in store.device_keys().items()
        }
        self._pruned_before = 0.0
        self.admins: set[str] = set()
        self.operators: set[tuple[str, str]] = set()
        self.bans: dict[str, dict[str, BanRecord]] = {}
        self.flags: dict[str, RoomFlags] = {}
        self.mutes: dict[str, dict[str, float | None]] = {}
        self.invited: dict[str, set[str]] = {}
        self.load_moderation(store.moderation())
        self.on_moderation: Callable[[RoomModeration], object] | None = None
        """
        Called with a room's moderation after each change here, in the order
        of the events published (a daemon of a cluster publishes it to the
        others: L{chat.cluster.bus.RedisBus.publish_moderation}).
        """

    def load_moderation(self, record: ModerationRecord) -> None:
        """
        Take the stored administrators, operators, bans and room settings
        (at start, and again on a reload, L{chat.server.ChatServer.reload_moderation}).
        Who is an operator in a room now does not change.
        """
        self.admins = set(record.admins)
        self.operators = set(record.operators)
        self.bans = {}
        for ban in record.bans:
            self.bans.setdefault(ban.room, {})[ban.target] = ban
        self.flags = dict(record.rooms)

    def room_moderation(self, key: str) -> RoomModeration:
        """
        The moderation of the room C{key} (lower-cased) as held here.
        """
        return RoomModeration(
            key,
            tuple(sorted(account for room, account in self.operators if room == key)),
            tuple(self.bans.get(key, {}).values()),
            tuple(sorted(self.mutes.get(key, {}).items(), key=lambda item: item[0])),
            tuple(sorted(self.invited.get(key, ()))),
            self.flags.get(key, RoomFlags()),
        )

    def follow_moderation(self, moderation: RoomModeration) -> None:
        """
        Take a room's moderation as another daemon of a cluster holds it
        after a change there (its operators, bans, mutes, invitations and
        settings replace those known here).
        """
        key = moderation.room
        self.operators = {pair for pair in self.operators if pair[0] != key}
        self.operators.update((key, account) for account in moderation.operators)
        _keep(self.bans, key, {ban.target: ban for ban in moderation.bans})
        _keep(self.mutes, key, dict(moderation.mutes))
        _keep(self.invited, key, set(moderation.invited))
        if moderation.flags == RoomFlags():
            self.flags.pop(key, None)
        else:
            self.flags[key] = moderation.flags

    def _moderated(self, key: str) -> None:
        """
        The moderation of the room C{key} changed here: tell
        L{on_moderation}, once the events published before are out.
        """
        tell = self.on_moderation
        if tell is not None:
            moderation = self.room_moderation(key)
            self._events.call(lambda: tell(moderation))

    # Roles

    def account_of(self, user: User) -> str:
        """
        The name of the account C{user} is logged in to, as it was
        registered (IRCv3 C{account-tag}, C{extended-join}), or C{''} for
        a guest.
        """
        if user.account is None:
            return ""
        return self.accounts.get(user.account, user.account)

    def is_admin(self, user: User) -> bool:
        """
        Whether C{user} is logged in to a server administrator's account.
        """
        return user.account is not None and user.account in self.admins

    def is_operator(self, user: User, room: Room) -> bool:
        """
        Whether C{user} is an operator of C{room}: given the role there, or
        a server administrator.
        """
        return user in room.operators or self.is_admin(user)

    def _role(self, user: User, room: Room) -> str:
        return events.OPERATOR if self.is_operator(user, room) else events.MEMBER

    @staticmethod
    def _target(user: User) -> str:
        """
        The key a ban, mute or invitation of C{user} names: the account, else the nick.
        """
        return user.account or user.nick.lower()

    def _ban_of(self, user: User, key: str, now: float) -> BanRecord | None:
        """
        The ban of room C{key} that keeps C{user} out now, or C{None}: the
        account's, or for a guest the nick's or the address's.
        """
        for ban in self.bans.get(key, {}).values():
            if ban.expires is not None and ban.expires <= now:
                continue
            if user.account is not None:
                if ban.account == user.account:
                    return ban
            elif ban.nick == user.nick.lower() or (ban.address and ban.address == user.address):
                return ban
        return None

    def _muted(self, user: User, key: str, now: float) -> bool:
        muted = self.mutes.get(key, {})
        target = self._target(user)
        if target not in muted:
            return False
        expires = muted[target]
        return expires is None or expires > now

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

    def _unavailable(self, failure: Failure, recipients: Address, what: str) -> Sequence[Delivery]:
        self._log.failure("could not read {what}", failure, what=what)
        return [(events.Error(errors.Busy.code, f"{what} is unavailable right now; try again later"), recipients)]

    def _leave(self, user: User, room: Room) -> None:
        key = room.name.lower()
        room.remove(user)
        room.operators.discard(user)
        del user.rooms[key]
        if not room.members and key != LOBBY:
            del self.rooms[key]
            if room.loaded:
                dormant = self._dormant
                dormant[key] = room
                if len(dormant) > DORMANT_ROOMS:
                    dormant.popitem(last=False)

# -*- test-case-name: tests.test_storage -*-
"""
What the domain keeps beyond a connection, as an interface: L{IStore} and
the values it deals in.

The store holds message history, private messages waiting for their
recipient, accounts, room topics, moderation (admins, operators, bans, room
settings), the device keys of accounts (PROTOCOL.md section 11), and file offers (the files themselves are
in L{chat.spool}). L{IStore} is what the domain (and C{chat-admin}) needs;
L{chat.sqlite_store.SQLiteStore} keeps it in SQLite under C{--data-dir}
(the default), L{chat.memory_store.MemoryStore} in memory (C{--in-memory},
and tests). Writes return a L{Deferred} that fires once the write is
durable, so the domain delivers a message only after it is stored
(PROTOCOL.md section 5: ids are kept across restarts).

This module imports neither implementation; they import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

from chat.events import DeviceKey, FileOffer, Message, Private

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """
    A stored account: C{name} as spelled at registration, C{password} the
    encoded password hash, C{created} POSIX seconds.
    """

    name: str
    password: str
    created: float


@dataclass(frozen=True, slots=True)
class BanRecord:
    """
    A ban from a room (PROTOCOL.md section 10): C{room} the room's
    lower-cased name; either C{account}, the lower-cased account name kept
    out (then C{nick} and C{address} are empty), or C{nick}, a lower-cased
    guest nick, and C{address}, the client address key
    (L{chat.limits.address_key}, maybe empty) kept out with it. C{expires}
    is POSIX seconds, or C{None} for never; C{by} the operator's nick;
    C{created} POSIX seconds.
    """

    room: str
    account: str
    nick: str
    address: str
    expires: float | None
    reason: str
    by: str
    created: float

    @property
    def target(self) -> str:
        """
        The lower-cased account or nick the ban names.
        """
        return self.account or self.nick


@dataclass(frozen=True, slots=True)
class RoomFlags:
    """
    The settings of a room (PROTOCOL.md section 10), as stored.
    """

    invite_only: bool = False
    topic_lock: bool = False
    moderated: bool = False


@dataclass(frozen=True, slots=True)
class RoomModeration:
    """
    The moderation of one room as a daemon holds it after a change
    (PROTOCOL.md section 10): C{room} its lower-cased name, C{operators}
    the lower-cased accounts that are its operators, C{bans} its bans,
    C{mutes} each muted target (lower-cased account or nick) with the POSIX
    seconds it expires at (C{None}: never), C{invited} the targets let in,
    C{flags} its settings. A daemon of a cluster publishes it to the others
    (never to a client), whose rules then follow (L{chat.domain.remote}).
    """

    room: str
    operators: tuple[str, ...] = ()
    bans: tuple[BanRecord, ...] = ()
    mutes: tuple[tuple[str, float | None], ...] = ()
    invited: tuple[str, ...] = ()
    flags: RoomFlags = RoomFlags()


@dataclass(frozen=True, slots=True)
class ModerationRecord:
    """
    What moderation keeps across restarts: C{admins} the lower-cased
    accounts of server administrators; C{operators} C{(room, account)}
    pairs, both lower-cased, of accounts that are operators of a room;
    C{bans} every ban (expired ones maybe included); C{rooms} the settings
    of each room whose settings were ever changed, by lower-cased name.
    """

    admins: frozenset[str] = frozenset()
    operators: frozenset[tuple[str, str]] = frozenset()
    bans: tuple[BanRecord, ...] = ()
    rooms: dict[str, RoomFlags] = field(default_factory=dict)


class AccountExists(Exception):
    """
    An account with that name (ignoring case) exists already.
    """


class Numbered:
    """
    The messages of one commit as a store numbered them: for each message
    given to L{IStore.add}, the same message with its final C{id} (and
    C{after}, the id stored just before it).
    """

    __slots__ = ("_by_identity",)

    def __init__(self, pairs: Iterable[tuple[Message | Private, Message | Private]]) -> None:
        """
        @param pairs: each message as given to L{IStore.add}, and as stored.
        """
        self._by_identity = {id(given): (given, stored) for given, stored in pairs}

    def __len__(self) -> int:
        return len(self._by_identity)

    def stored(self, given: E) -> E:
        """
        C{given} as stored, if this commit numbered it; else C{given} itself.
        """
        found = self._by_identity.get(id(given))
        if found is None or found[0] is not given:
            return given
        return found[1]  # type: ignore[return-value]


class IStore(Interface):
    """
    The domain's storage. Methods returning a L{Deferred} may complete later;
    each read sees every write requested before it.
    """

    numbers_messages = Attribute(
        """
        C{True} when the store gives messages their ids as it commits them
        (L{add} fires with a L{Numbered}; the ids given to it are
        provisional), C{False} when it keeps the ids it is given.
        """
    )

    def next_id() -> int:
        """
        Allocate a message id, unique and increasing across the server and
        across restarts: one more than L{last_id}.
        """

    def last_id() -> int:
        """
        The highest message or file offer id the store knows: when opened,
        the highest one stored (0 for none); since then, also every id given
        to L{add} or L{add_offer} or allocated by L{next_id}. An id
        allocator starts after it.
        """

    def add(message: Message | Private) -> Deferred[Numbered | None]:  # noqa: N805
        """
        Store a room message, or a private message (kept as waiting for its
        recipient when C{message.offline}).

        @return: fires once the message is durable, with C{None} when it is
            stored under its own C{id}, or with a L{Numbered} when the store
            numbers messages as it commits them (a cluster's, whose ids
            follow the commits of every daemon: L{chat.postgres_store});
            fails if it could not be stored. Messages stored together may
            share one L{Deferred}: add callbacks right away, and pass the
            result on.
        """

    def recent(room: str, count: int, before: int | None = None) -> Deferred[Sequence[Message]]:  # noqa: N805
        """
        The last C{count} messages of C{room} (ignoring case), oldest first;
        empty for an unknown room. With C{before} (a message id), the last
        C{count} of those with a lower id (scrolling back, PROTOCOL.md
        section 4).
        """

    def conversation(
        a: str, b: str, count: int, before: int | None = None, since: datetime | None = None  # noqa: N805
    ) -> Deferred[Sequence[Private]]:
        """
        The last C{count} private messages between the nicks C{a} and C{b}
        (ignoring case, either one the sender), oldest first, each with
        C{offline} false; delivered and waiting ones alike. With C{before}
        (a message id), only those with a lower id; with C{since} (an aware
        time), only those sent at or after it. L{chat.memory_store.MemoryStore}
        keeps the last 500 of each pair; L{chat.sqlite_store.SQLiteStore}
        all (until pruned).
        """

    def messages(
        room: str, since: datetime | None = None, after: int = 0, limit: int | None = None  # noqa: N805
    ) -> Deferred[Sequence[Message]]:
        """
        The history of C{room} (ignoring case), oldest first, for an export:
        the messages with an id above C{after}, sent at or after C{since}
        (an aware time; C{None} for any), the first C{limit} of them (all
        when C{None}). To page through a long history, pass the last id
        read as C{after}; empty for an unknown room.
        """

    def waiting(nick: str) -> Deferred[Sequence[Private]]:  # noqa: N805
        """
        The private messages stored for C{nick} (ignoring case) while they
        were away and not yet delivered, oldest first, each with C{offline}.
        """

    def delivered(ids: Sequence[int]) -> Deferred[None]:  # noqa: N805
        """
        Mark waiting private messages as delivered.
        """

    def account(name: str) -> Deferred[AccountRecord | None]:  # noqa: N805
        """
        The account called C{name} (ignoring case), or C{None}.
        """

    def create_account(name: str, password: str, created: float) -> Deferred[None]:  # noqa: N805
        """
        Store a new account with its password hash. Private messages
        still waiting for an earlier account of that name, and its device
        keys, are dropped.

        @return: fails with L{AccountExists} if the name is taken.
        """

    def set_password(name: str, password: str) -> Deferred[bool]:  # noqa: N805
        """
        Replace an account's password hash.

        @return: whether the account exists.
        """

    def accounts() -> Deferred[list[AccountRecord]]:
        """
        Every account, sorted by name ignoring case.
        """

    def delete_account(name: str) -> Deferred[tuple[AccountRecord, int] | None]:  # noqa: N805
        """
        Delete the account called C{name} (ignoring case) and the private
        messages still waiting for it and its device keys, together. Its room messages and its
        delivered private messages stay.

        @return: the account deleted and how many waiting private messages
            went with it, or C{None} when there is no such account.
        """

    def account_names() -> dict[str, str]:
        """
        Every account's name, keyed by its lower-cased form, as known when
        the store was opened (the reserved nicks of PROTOCOL.md section 3.3).
        """

    def set_topic(room: str, text: str, by: str) -> Deferred[None]:  # noqa: N805
        """
        Store the topic of C{room} (ignoring case; the spelling given is
        kept), replacing any earlier one, or clear it when C{text} is empty.
        Topics outlive the room's members and the daemon's restarts.

        @param by: the nick that set it.
        @return: fires once it is durable, like L{add}, in order with the
            messages added before and after it, and may be shared the same way.
        """

    def topics() -> dict[str, tuple[str, str, str]]:
        """
        Every room topic, keyed by the room's lower-cased name, as
        C{(room, text, by)}: the room as spelled when the topic was set, the
        topic (never empty), and the nick that set it. For
        L{chat.sqlite_store.SQLiteStore} as known when the store was opened,
        for L{chat.memory_store.MemoryStore} as they are now.
        """

    def moderation() -> ModerationRecord:
        """
        Admins, operators of rooms, bans and room settings (PROTOCOL.md
        section 10): for L{chat.sqlite_store.SQLiteStore} as known when the
        store was opened, for L{chat.memory_store.MemoryStore} as they are now.
        """

    def read_moderation() -> Deferred[ModerationRecord]:
        """
        The same as L{moderation}, read afresh (changes by C{chat-admin}
        while the daemon runs), after every write asked for before.
        """

    def set_admin(name: str, admin: bool) -> Deferred[None]:  # noqa: N805
        """
        Mark the account C{name} (ignoring case) as a server administrator,
        or not. Does not check that the account exists.

        @return: fires once durable.
        """

    def set_operator(room: str, account: str, operator: bool) -> Deferred[None]:  # noqa: N805
        """
        Make the account C{account} an operator of C{room} (both ignoring
        case), or not.

        @return: fires once durable, like L{set_topic}, and may be shared
            the same way.
        """

    def add_ban(ban: BanRecord) -> Deferred[None]:  # noqa: N805
        """
        Store a ban, replacing one of the same room and target.

        @return: fires once durable, like L{set_topic}.
        """

    def remove_ban(room: str, account: str, nick: str) -> Deferred[None]:  # noqa: N805
        """
        Delete the ban of C{room} naming C{account} or C{nick} (all
        lower-cased, one of the two empty, as in L{BanRecord}).

        @return: fires once durable, like L{set_topic}.
        """

    def set_room_flags(room: str, flags: RoomFlags) -> Deferred[None]:  # noqa: N805
        """
        Store the settings of C{room} (ignoring case).

        @return: fires once durable, like L{set_topic}.
        """

    def device_keys() -> dict[str, tuple[DeviceKey, ...]]:
        """
        The published device keys of every account that has any (PROTOCOL.md
        section 11), keyed by the lower-cased account name, oldest first: for
        L{chat.sqlite_store.SQLiteStore} as known when the store was opened,
        for L{chat.memory_store.MemoryStore} as they are now.
        """

    def add_device_key(account: str, key: DeviceKey) -> Deferred[None]:  # noqa: N805
        """
        Keep C{key} with the account C{account} (ignoring case), replacing
        one of the same device id. Does not check that the account exists.

        @return: fires once durable, like L{set_topic}, and may be shared
            the same way.
        """

    def remove_device_key(account: str, device: str) -> Deferred[None]:  # noqa: N805
        """
        Forget the key of device C{device} of the account C{account}
        (ignoring case); nothing happens when there is none.

        @return: fires once durable, like L{set_topic}.
        """

    def add_offer(offer: FileOffer) -> Deferred[None]:  # noqa: N805
        """
        Store a file offer (PROTOCOL.md section 6).

        @return: fires once it is durable, like L{add}, and may be shared
            the same way.
        """

    def remove_offers(ids: Sequence[int]) -> Deferred[None]:  # noqa: N805
        """
        Delete file offers (expired ones).
        """

    def offers() -> list[FileOffer]:
        """
        Every file offer stored when the store was opened, oldest first,
        expired ones included.
        """

    def prune(before: float) -> Deferred[int]:  # noqa: N805
        """
        Delete room and private messages older than C{before} (POSIX seconds).

        @return: how many were deleted.
        """

    def close() -> Deferred[None]:
        """
        Write what is pending and release the storage.
        """


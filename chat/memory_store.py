# -*- test-case-name: tests.test_storage -*-
"""
The in-memory L{IStore}: everything lost on restart, for C{--in-memory}
and for tests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from chat.events import DeviceKey, FileOffer, Message, Private
from chat.storage import (
    AccountExists,
    AccountRecord,
    BanRecord,
    IStore,
    ModerationRecord,
    Numbered,
    RoomFlags,
)

_Kept = TypeVar("_Kept", Message, Private)


@implementer(IStore)
class MemoryStore:
    """
    Everything in memory, lost on restart: the last C{keep} messages per room
    and per pair of nicks talking in private, waiting private messages,
    accounts, topics, moderation, device keys and file offers.
    """

    numbers_messages = False

    def __init__(self, keep: int = 500) -> None:
        self._keep = keep
        self._last_id = 0
        self._rooms: dict[str, deque[Message]] = {}
        self._waiting: dict[str, list[Private]] = {}
        self._conversations: dict[tuple[str, str], deque[Private]] = {}
        self._accounts: dict[str, AccountRecord] = {}
        self._offers: dict[int, FileOffer] = {}
        self._topics: dict[str, tuple[str, str, str]] = {}
        self._admins: set[str] = set()
        self._operators: set[tuple[str, str]] = set()
        self._bans: dict[tuple[str, str, str], BanRecord] = {}
        self._room_flags: dict[str, RoomFlags] = {}
        self._keys: dict[str, dict[str, DeviceKey]] = {}

    def next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def last_id(self) -> int:
        return self._last_id

    def add(self, message: Message | Private) -> Deferred[Numbered | None]:
        self._last_id = max(self._last_id, message.id)
        if isinstance(message, Private):
            if message.offline:
                self._waiting.setdefault(message.to.lower(), []).append(message)
            pair = _pair(message.sender, message.to)
            conversation = self._conversations.get(pair)
            if conversation is None:
                conversation = self._conversations[pair] = deque(maxlen=self._keep)
            conversation.append(replace(message, offline=False))
            return succeed(None)
        key = message.room.lower()
        history = self._rooms.get(key)
        if history is None:
            history = self._rooms[key] = deque(maxlen=self._keep)
        history.append(message)
        return succeed(None)

    def recent(self, room: str, count: int, before: int | None = None) -> Deferred[Sequence[Message]]:
        history = self._rooms.get(room.lower())
        if not history or count <= 0:
            return succeed(())
        return succeed(_last(history, count, before))

    def conversation(
        self, a: str, b: str, count: int, before: int | None = None, since: datetime | None = None
    ) -> Deferred[Sequence[Private]]:
        found = self._conversations.get(_pair(a, b))
        if not found or count <= 0:
            return succeed(())
        if since is not None:
            found = deque(m for m in found if m.ts >= since)
        return succeed(_last(found, count, before))

    def messages(
        self, room: str, since: datetime | None = None, after: int = 0, limit: int | None = None
    ) -> Deferred[Sequence[Message]]:
        found = [
            m for m in self._rooms.get(room.lower(), ())
            if m.id > after and (since is None or m.ts >= since)
        ]
        return succeed(found if limit is None else found[:limit])

    def waiting(self, nick: str) -> Deferred[Sequence[Private]]:
        return succeed(list(self._waiting.get(nick.lower(), ())))

    def delivered(self, ids: Sequence[int]) -> Deferred[None]:
        done = set(ids)
        for key, messages in list(self._waiting.items()):
            left = [m for m in messages if m.id not in done]
            if left:
                self._waiting[key] = left
            else:
                del self._waiting[key]
        return succeed(None)

    def account(self, name: str) -> Deferred[AccountRecord | None]:
        return succeed(self._accounts.get(name.lower()))

    def create_account(self, name: str, password: str, created: float) -> Deferred[None]:
        if name.lower() in self._accounts:
            return fail(AccountExists(name))
        self._waiting.pop(name.lower(), None)
        self._keys.pop(name.lower(), None)
        self._accounts[name.lower()] = AccountRecord(name, password, created)
        return succeed(None)

    def set_password(self, name: str, password: str) -> Deferred[bool]:
        record = self._accounts.get(name.lower())
        if record is None:
            return succeed(False)
        self._accounts[name.lower()] = AccountRecord(record.name, password, record.created)
        return succeed(True)

    def accounts(self) -> Deferred[list[AccountRecord]]:
        return succeed([record for _, record in sorted(self._accounts.items())])

    def delete_account(self, name: str) -> Deferred[tuple[AccountRecord, int] | None]:
        record = self._accounts.pop(name.lower(), None)
        if record is None:
            return succeed(None)
        self._keys.pop(name.lower(), None)
        return succeed((record, len(self._waiting.pop(name.lower(), ()))))

    def account_names(self) -> dict[str, str]:
        return {key: record.name for key, record in self._accounts.items()}

    def set_topic(self, room: str, text: str, by: str) -> Deferred[None]:
        if text:
            self._topics[room.lower()] = (room, text, by)
        else:
            self._topics.pop(room.lower(), None)
        return succeed(None)

    def topics(self) -> dict[str, tuple[str, str, str]]:
        return dict(self._topics)

    def moderation(self) -> ModerationRecord:
        return ModerationRecord(
            frozenset(self._admins), frozenset(self._operators), tuple(self._bans.values()), dict(self._room_flags)
        )

    def read_moderation(self) -> Deferred[ModerationRecord]:
        return succeed(self.moderation())

    def set_admin(self, name: str, admin: bool) -> Deferred[None]:
        if admin:
            self._admins.add(name.lower())
        else:
            self._admins.discard(name.lower())
        return succeed(None)

    def set_operator(self, room: str, account: str, operator: bool) -> Deferred[None]:
        pair = (room.lower(), account.lower())
        if operator:
            self._operators.add(pair)
        else:
            self._operators.discard(pair)
        return succeed(None)

    def add_ban(self, ban: BanRecord) -> Deferred[None]:
        self._bans[(ban.room, ban.account, ban.nick)] = ban
        return succeed(None)

    def remove_ban(self, room: str, account: str, nick: str) -> Deferred[None]:
        self._bans.pop((room, account, nick), None)
        return succeed(None)

    def set_room_flags(self, room: str, flags: RoomFlags) -> Deferred[None]:
        self._room_flags[room.lower()] = flags
        return succeed(None)

    def device_keys(self) -> dict[str, tuple[DeviceKey, ...]]:
        return {account: tuple(keys.values()) for account, keys in self._keys.items() if keys}

    def add_device_key(self, account: str, key: DeviceKey) -> Deferred[None]:
        self._keys.setdefault(account.lower(), {})[key.device] = key
        return succeed(None)

    def remove_device_key(self, account: str, device: str) -> Deferred[None]:
        keys = self._keys.get(account.lower(), {})
        keys.pop(device, None)
        if not keys:
            self._keys.pop(account.lower(), None)
        return succeed(None)

    def add_offer(self, offer: FileOffer) -> Deferred[None]:
        self._last_id = max(self._last_id, offer.id)
        self._offers[offer.id] = offer
        return succeed(None)

    def remove_offers(self, ids: Sequence[int]) -> Deferred[None]:
        for offer_id in ids:
            self._offers.pop(offer_id, None)
        return succeed(None)

    def offers(self) -> list[FileOffer]:
        return sorted(self._offers.values(), key=lambda offer: offer.id)

    def prune(self, before: float) -> Deferred[int]:
        count = 0
        for history in self._rooms.values():
            while history and history[0].ts.timestamp() < before:
                history.popleft()
                count += 1
        private: set[int] = set()  # a waiting message is in its conversation too: count it once
        for key, messages in list(self._waiting.items()):
            left = [m for m in messages if m.ts.timestamp() >= before]
            private.update(m.id for m in messages if m.ts.timestamp() < before)
            self._waiting[key] = left
        for conversation in self._conversations.values():
            while conversation and conversation[0].ts.timestamp() < before:
                private.add(conversation.popleft().id)
        return succeed(count + len(private))

    def close(self) -> Deferred[None]:
        return succeed(None)


def _pair(a: str, b: str) -> tuple[str, str]:
    """
    The key of the private conversation between nicks C{a} and C{b}: both
    lower-cased, in order.
    """
    first, second = sorted((a.lower(), b.lower()))
    return first, second


def _last(messages: deque[_Kept], count: int, before: int | None) -> list[_Kept]:
    """
    The last C{count} of C{messages} (in id order), of those with an id
    below C{before} when given.
    """
    if before is None:
        return list(messages)[-count:]
    return [m for m in messages if m.id < before][-count:]

# -*- test-case-name: tests.test_storage,tests.test_postgres_store -*-
"""
The SQL of the stores on a database (L{chat.pooled_store.PooledStore}):
L{Dialect}, the statements written once with qmark placeholders and
spelled by each engine (SQLite's in L{chat.sqlite_store}, PostgreSQL's in
L{chat.postgres_store}), and the interactions that run them in the
database's thread.

Times are stored as integer milliseconds since the POSIX epoch (UTC); names
as spelled, with a lower-cased C{*_key} column for lookups that ignore case
(PROTOCOL.md section 3.3), as in L{chat.schema}.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from chat.events import FileOffer, Message, Private
from chat.schema import from_ms, to_ms
from chat.storage import AccountExists, AccountRecord

__all__ = ["Dialect", "Pending", "columns"]

Pending = Message | Private | FileOffer | tuple[str, tuple[Any, ...]]
"""What waits for the next group commit: messages, offers, or other statements."""



def columns(*names: str) -> str:
    """
    The columns and values of an C{INSERT}: C{columns("a", "b")} is
    C{"(a, b) VALUES (?, ?)"} (placeholders in the qmark style, see L{Dialect}).
    """
    return f"({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"


def _message(row: tuple[Any, ...]) -> Message:
    id_, ts, room, sender, text, action = row
    return Message(id_, from_ms(ts), room, sender, text, bool(action))


class Dialect:
    """
    The SQL of L{PooledStore} as one database engine (its DB-API module)
    spells it, and the interactions that run it: each method taking a
    C{transaction} is called with a cursor in the pool's thread.

    The statements are written once, here, with qmark placeholders (C{?});
    the dialect spells them with its own C{placeholder} (none contains a
    C{?} or C{%} otherwise). What engines spell differently is given:
    C{upsert} and C{insert_or_ignore} build whole statements (with qmark
    placeholders, see L{columns}), C{no_limit} is the C{LIMIT} parameter that
    means none.
    """

    def __init__(
        self,
        placeholder: str,
        upsert: Callable[[str, Sequence[str], Sequence[str]], str],
        insert_or_ignore: Callable[[str, Sequence[str]], str],
        no_limit: int | None,
    ) -> None:
        """
        @param placeholder: the module's placeholder: C{"?"} (sqlite3),
            C{"%s"} (psycopg).
        @param upsert: called with a table, its key columns and its other
            columns, returns the statement that inserts a row or replaces
            the one with the same key.
        @param insert_or_ignore: called with a table and its columns, returns
            the statement that inserts a row unless one with the same key exists.
        @param no_limit: the value of a C{LIMIT ?} that does not limit:
            C{-1} (SQLite), C{None} (PostgreSQL, C{LIMIT NULL}).
        """

        def sql(statement: str) -> str:
            return statement.replace("?", placeholder)

        self.no_limit = no_limit
        self.insert_message = sql(
            "INSERT INTO messages " + columns("id", "ts", "room", "room_key", "sender", "text", "action")
        )
        self.insert_private = sql("INSERT INTO private " + columns(
            "id", "ts", "sender", "sender_key", "recipient", "recipient_key", "text", "action", "pending", "e2e",
        ))
        self.insert_offer = sql(
            "INSERT INTO offers " + columns("id", "sender", "target", "name", "size", "sha256", "expires")
        )
        self.delivered = sql("UPDATE private SET pending = ? WHERE id = ?")  # with False: 0 in SQLite
        self.remove_offer = sql("DELETE FROM offers WHERE id = ?")
        self.set_topic = sql(upsert("topics", ("room_key",), ("room", "text", "set_by")))
        self.clear_topic = sql("DELETE FROM topics WHERE room_key = ?")
        self.set_operator = sql(insert_or_ignore("operators", ("room_key", "account_key")))
        self.clear_operator = sql("DELETE FROM operators WHERE room_key = ? AND account_key = ?")
        self.add_ban = sql(upsert(
            "bans", ("room_key", "account_key", "nick_key"), ("address", "expires", "reason", "set_by", "created"),
        ))
        self.remove_ban = sql("DELETE FROM bans WHERE room_key = ? AND account_key = ? AND nick_key = ?")
        self.set_room_flags = sql(
            upsert("room_settings", ("room_key",), ("invite_only", "topic_lock", "moderated"))
        )
        self.add_device_key = sql(upsert("device_keys", ("account_key", "device"), ("bundle", "fingerprint", "added")))
        self.remove_device_key = sql("DELETE FROM device_keys WHERE account_key = ? AND device = ?")
        self._recent = sql(
            "SELECT id, ts, room, sender, text, action FROM messages WHERE room_key = ? AND id < ?"
            " ORDER BY id DESC LIMIT ?"
        )
        one_way = (
            "SELECT * FROM (SELECT id, ts, sender, recipient, text, action, e2e FROM private"
            " WHERE sender_key = ? AND recipient_key = ? AND id < ? AND ts >= ? ORDER BY id DESC LIMIT ?)"
        )
        self._conversation = sql(f"{one_way} AS there UNION {one_way} AS back ORDER BY id DESC LIMIT ?")
        self._messages = sql(
            "SELECT id, ts, room, sender, text, action FROM messages"
            " WHERE room_key = ? AND id > ? AND ts >= ? ORDER BY id LIMIT ?"
        )
        self._waiting = sql(
            "SELECT id, ts, sender, recipient, text, action, e2e FROM private"
            " WHERE recipient_key = ? AND pending ORDER BY id"
        )
        self._account = sql("SELECT name, password, created FROM accounts WHERE name_key = ?")
        self._accounts = sql("SELECT name, password, created FROM accounts ORDER BY name_key")
        self._insert_account = sql(insert_or_ignore("accounts", ("name_key", "name", "password", "created")))
        self._delete_account = sql("DELETE FROM accounts WHERE name_key = ?")
        self._drop_waiting = sql("DELETE FROM private WHERE pending AND recipient_key = ?")
        self._drop_device_keys = sql("DELETE FROM device_keys WHERE account_key = ?")
        self._set_password = sql("UPDATE accounts SET password = ? WHERE name_key = ?")
        self._add_admin = sql(insert_or_ignore("admins", ("name_key",)))
        self._remove_admin = sql("DELETE FROM admins WHERE name_key = ?")
        self._prune = tuple(
            sql(f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE ts < ? LIMIT ?)")
            for table in ("messages", "private")
        )

    # Writes

    def statement(self, item: Pending) -> tuple[str, tuple[Any, ...]]:
        """
        The statement and parameters that write C{item}.
        """
        if isinstance(item, Message):
            return self.insert_message, (
                item.id, to_ms(item.ts), item.room, item.room.lower(), item.sender, item.text, item.action,
            )
        if isinstance(item, Private):
            return self.insert_private, (
                item.id, to_ms(item.ts), item.sender, item.sender.lower(), item.to, item.to.lower(),
                item.text, item.action, item.offline, item.e2e,
            )
        if isinstance(item, FileOffer):
            return self.insert_offer, (
                item.id, item.sender, item.to, item.name, item.size, item.sha256, to_ms(item.expires),
            )
        return item

    def write(self, transaction: Any, items: Sequence[Pending]) -> None:
        """
        One transaction for a whole group, the statements in the order
        asked, rows built here in the database thread rather than on the
        reactor's.
        """
        for sql, group in itertools.groupby(map(self.statement, items), key=lambda s: s[0]):
            transaction.executemany(sql, [params for _, params in group])

    # Reads and the rest

    def recent(self, transaction: Any, room_key: str, count: int, before: int) -> list[Message]:
        transaction.execute(self._recent, (room_key, before, count))
        return [_message(row) for row in reversed(transaction.fetchall())]

    def conversation(
        self, transaction: Any, a: str, b: str, count: int, before: int, since_ms: int
    ) -> list[Private]:
        """
        Each direction of the pair through the index C{private_by_pair}, at
        most C{count} rows each, then the last C{count} of both (C{UNION}
        drops the repeat when C{a} and C{b} are the same nick).
        """
        transaction.execute(self._conversation, (a, b, before, since_ms, count, b, a, before, since_ms, count, count))
        return [
            Private(id_, from_ms(ts), sender, recipient, text, bool(action), e2e=e2e)
            for id_, ts, sender, recipient, text, action, e2e in reversed(transaction.fetchall())
        ]

    def messages(
        self, transaction: Any, room_key: str, since_ms: int, after: int, limit: int | None
    ) -> list[Message]:
        transaction.execute(self._messages, (room_key, after, since_ms, self.no_limit if limit is None else limit))
        return [_message(row) for row in transaction.fetchall()]

    def waiting(self, transaction: Any, recipient_key: str) -> list[Private]:
        transaction.execute(self._waiting, (recipient_key,))
        return [
            Private(id_, from_ms(ts), sender, recipient, text, bool(action), offline=True, e2e=e2e)
            for id_, ts, sender, recipient, text, action, e2e in transaction.fetchall()
        ]

    def account(self, transaction: Any, name_key: str) -> AccountRecord | None:
        transaction.execute(self._account, (name_key,))
        row = transaction.fetchone()
        return None if row is None else AccountRecord(row[0], row[1], row[2] / 1000)

    def accounts(self, transaction: Any) -> list[AccountRecord]:
        transaction.execute(self._accounts)
        return [AccountRecord(name, password, created / 1000) for name, password, created in transaction.fetchall()]

    def delete_account(self, transaction: Any, name_key: str) -> tuple[AccountRecord, int] | None:
        """
        Delete the account, what waits for it and its device keys.

        @return: the account and how many waiting messages went with it, or
            C{None} when there is none (or another process deleted it since
            it was read).
        """
        record = self.account(transaction, name_key)
        if record is None:
            return None
        transaction.execute(self._delete_account, (name_key,))
        if not transaction.rowcount:
            return None  # deleted by another process since the SELECT
        transaction.execute(self._drop_waiting, (name_key,))
        count: int = transaction.rowcount
        transaction.execute(self._drop_device_keys, (name_key,))
        return record, count

    def create_account(self, transaction: Any, name: str, password: str, created: float) -> None:
        """
        Insert the account, or raise L{AccountExists} (nothing changed);
        then drop what an earlier account of that name left (waiting
        messages, device keys: deleted with C{chat-admin} while the daemon ran).
        """
        transaction.execute(self._insert_account, (name.lower(), name, password, int(created * 1000)))
        if not transaction.rowcount:
            raise AccountExists(name)
        transaction.execute(self._drop_waiting, (name.lower(),))
        transaction.execute(self._drop_device_keys, (name.lower(),))

    def set_password(self, transaction: Any, name_key: str, password: str) -> bool:
        transaction.execute(self._set_password, (password, name_key))
        return bool(transaction.rowcount)

    def set_admin(self, transaction: Any, name_key: str, admin: bool) -> None:
        transaction.execute(self._add_admin if admin else self._remove_admin, (name_key,))

    def prune(self, transaction: Any, cutoff_ms: int, batch: int) -> int:
        """
        Delete up to C{batch} messages and C{batch} private messages older
        than C{cutoff_ms}.

        @return: how many rows were deleted.
        """
        deleted = 0
        for statement in self._prune:
            transaction.execute(statement, (cutoff_ms, batch))
            deleted += transaction.rowcount
        return deleted

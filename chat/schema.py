# -*- test-case-name: tests.test_schema -*-
"""
The SQLite database under C{--data-dir}: its file name, its connection
settings and its schema, versioned with C{PRAGMA user_version} and brought up
to date by forward migrations.

Everything here is synchronous: it runs when L{chat.sqlite_store.open_store}
opens the database, at the daemon's start-up before the reactor serves
anyone, and in the C{chat-admin} tool. After that, both reach the database
only through L{chat.sqlite_store.SQLiteStore}.

Times are stored as integer milliseconds since the POSIX epoch (UTC); names
are stored as spelled, with a lower-cased C{*_key} column for lookups that
ignore case (PROTOCOL.md section 3.3).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

from chat.events import DeviceKey, FileOffer
from chat.storage import BanRecord, ModerationRecord, RoomFlags

FILENAME = "chat.sqlite3"
"""The database's file name inside the data directory."""

BUSY_TIMEOUT = 10.0
"""Seconds a statement waits for another process's lock (e.g. C{chat-admin})."""

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # Version 1: room history.
    (
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            ts INTEGER NOT NULL,
            room TEXT NOT NULL,
            room_key TEXT NOT NULL,
            sender TEXT NOT NULL,
            text TEXT NOT NULL,
            action INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX messages_by_room ON messages (room_key, id)",
    ),
    # Version 2: accounts, and private messages (sharing the message ids).
    (
        """CREATE TABLE accounts (
            name_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            password TEXT NOT NULL,
            created INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE private (
            id INTEGER PRIMARY KEY,
            ts INTEGER NOT NULL,
            sender TEXT NOT NULL,
            recipient TEXT NOT NULL,
            recipient_key TEXT NOT NULL,
            text TEXT NOT NULL,
            action INTEGER NOT NULL DEFAULT 0,
            pending INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX private_pending ON private (recipient_key, id) WHERE pending",
    ),
    # Version 3: file offers (PROTOCOL.md section 6); the file itself is in
    # the spool directory, named by its sha256.
    (
        """CREATE TABLE offers (
            id INTEGER PRIMARY KEY,
            sender TEXT NOT NULL,
            target TEXT NOT NULL,
            name TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            expires INTEGER NOT NULL
        )""",
    ),
    # Version 4: room topics, kept while a room is empty and across restarts.
    (
        """CREATE TABLE topics (
            room_key TEXT PRIMARY KEY,
            room TEXT NOT NULL,
            text TEXT NOT NULL,
            set_by TEXT NOT NULL
        ) WITHOUT ROWID""",
    ),
    # Version 5: private history (PROTOCOL.md section 4, /history NICK): the
    # sender's lower-cased nick (nicks are ASCII, so SQL lower() is
    # Python's), and an index for one direction of a pair's conversation.
    (
        "ALTER TABLE private ADD COLUMN sender_key TEXT NOT NULL DEFAULT ''",
        "UPDATE private SET sender_key = lower(sender)",
        "CREATE INDEX private_by_pair ON private (sender_key, recipient_key, id)",
    ),
    # Version 6: moderation (PROTOCOL.md section 10): server administrators,
    # operators of rooms (accounts), bans (of an account, or of a guest nick
    # with its address; expires NULL for never) and room settings.
    (
        "CREATE TABLE admins (name_key TEXT PRIMARY KEY) WITHOUT ROWID",
        """CREATE TABLE operators (
            room_key TEXT NOT NULL,
            account_key TEXT NOT NULL,
            PRIMARY KEY (room_key, account_key)
        ) WITHOUT ROWID""",
        """CREATE TABLE bans (
            room_key TEXT NOT NULL,
            account_key TEXT NOT NULL,
            nick_key TEXT NOT NULL,
            address TEXT NOT NULL,
            expires INTEGER,
            reason TEXT NOT NULL,
            set_by TEXT NOT NULL,
            created INTEGER NOT NULL,
            PRIMARY KEY (room_key, account_key, nick_key)
        ) WITHOUT ROWID""",
        """CREATE TABLE room_settings (
            room_key TEXT PRIMARY KEY,
            invite_only INTEGER NOT NULL,
            topic_lock INTEGER NOT NULL,
            moderated INTEGER NOT NULL
        ) WITHOUT ROWID""",
    ),
    # Version 7: end-to-end encryption (PROTOCOL.md section 11): the device
    # keys of accounts (the bundle in base64, its fingerprint, added in
    # milliseconds), and the envelope of an encrypted private message ('' for
    # one in clear text), which the daemon stores as it came.
    (
        """CREATE TABLE device_keys (
            account_key TEXT NOT NULL,
            device TEXT NOT NULL,
            bundle TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            added INTEGER NOT NULL,
            PRIMARY KEY (account_key, device)
        ) WITHOUT ROWID""",
        "ALTER TABLE private ADD COLUMN e2e TEXT NOT NULL DEFAULT ''",
    ),
)
"""Forward migrations: C{MIGRATIONS[n]} takes a database from version C{n}
to C{n + 1}. Append only; never edit a step that has shipped."""

VERSION = len(MIGRATIONS)
"""The schema version this code reads and writes."""


class DatabaseError(Exception):
    """
    The database cannot be used: it is newer than this code, not a database,
    or cannot be opened. The message is one line meant for the operator.
    """


def to_ms(when: datetime) -> int:
    """
    An aware C{datetime} as integer milliseconds since the epoch, exactly.
    """
    return (when - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """
    Integer milliseconds since the epoch as an aware UTC C{datetime}.
    """
    return EPOCH + timedelta(milliseconds=ms)


def configure(connection: sqlite3.Connection) -> None:
    """
    Settings every connection needs: write-ahead logging (readers never wait
    for the writer), C{synchronous=FULL} (a commit is on disk, so what was
    delivered survives a crash of the process or of the machine) and a busy
    timeout. Used as adbapi's C{cp_openfun} too.

    @raise DatabaseError: the file is not a database or WAL is impossible.
    """
    try:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    except sqlite3.DatabaseError as e:
        raise DatabaseError(f"cannot use the database: {e}") from None
    if mode.lower() != "wal":
        raise DatabaseError(f"cannot switch the database to WAL (journal mode stays {mode})")


def migrate(connection: sqlite3.Connection) -> tuple[int, int]:
    """
    Bring the schema up to L{VERSION}, one step per transaction.

    @param connection: a connection in autocommit mode (C{isolation_level=None}).
    @return: the versions before and after.
    @raise DatabaseError: the database is newer than this code.
    """
    before = connection.execute("PRAGMA user_version").fetchone()[0]
    if before > VERSION:
        raise DatabaseError(
            f"the database has schema version {before}, newer than this chat"
            f" (version {VERSION}): upgrade chat"
        )
    for version in range(before, VERSION):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version={version + 1}")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    return before, VERSION


def path_in(data_dir: str) -> str:
    """
    The database's path inside C{data_dir}.
    """
    return os.path.join(data_dir, FILENAME)


def open_database(path: str, create: bool = True, check: bool = False) -> sqlite3.Connection:
    """
    Open (and with C{create}, create) the database at C{path}, configured
    and migrated to L{VERSION}, in autocommit mode.

    @param check: also make sure that it can be written and is sound
        (L{check_database}): the daemon does, at start-up.
    @raise DatabaseError: the file is missing (without C{create}), not a
        database, locked for longer than L{BUSY_TIMEOUT}, or newer than
        this code; with C{check}, read-only or damaged.
    """
    if not create and not os.path.exists(path):
        raise DatabaseError(f"no database at {path}")
    try:
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise DatabaseError(f"cannot open {path}: {e}") from None
    try:
        configure(connection)
        migrate(connection)
        if check:
            check_database(connection, path)
    except sqlite3.Error as e:
        connection.close()
        raise DatabaseError(f"cannot use {path}: {e}") from None
    except DatabaseError:
        connection.close()
        raise
    return connection


def check_database(connection: sqlite3.Connection, path: str) -> None:
    """
    Make sure that the database at C{path}, open on C{connection} (in
    autocommit mode, at L{VERSION}), can be written, and that its pages are
    sound (C{PRAGMA quick_check}, which reads the whole file once), so that
    a daemon does not start on a database that would fail every message.
    Writes nothing: the test write is rolled back.

    @raise DatabaseError: it cannot be written (a read-only file or
        directory, or another program holding its write lock for longer
        than L{BUSY_TIMEOUT}), or it is damaged; one line naming the file
        and what to do.
    """
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Rewrites the first page; a read-only file fails here, not at BEGIN.
            connection.execute(f"PRAGMA user_version={VERSION}")
        finally:
            connection.execute("ROLLBACK")
    except sqlite3.Error as e:
        if getattr(e, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
            advice = "another program (chat-admin?) kept it locked; try again once it is done"
        else:
            advice = (
                "let the daemon's user write to it and to its directory (chown, chmod), or restore it from a backup"
            )
        raise DatabaseError(f"cannot write to the database {path}: {e}; {advice}") from None
    try:
        rows = connection.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.DatabaseError as e:
        problem = str(e)
    else:
        if rows == [("ok",)]:
            return
        lines = "\n".join(str(row[0]) for row in rows).splitlines()
        problem = "; ".join(line for line in lines if not line.startswith("***")) or "quick_check failed"
    raise DatabaseError(
        f"the database {path} is damaged ({problem}): restore it from a backup, or save what can be read"
        f" (sqlite3 {path} .recover, or chat-admin export ROOM) and start with a new database"
    )


def last_id(connection: sqlite3.Connection) -> int:
    """
    The highest id used, by a room or private message or a file offer; 0 for none.
    """
    row = connection.execute(
        "SELECT max(coalesce((SELECT max(id) FROM messages), 0), coalesce((SELECT max(id) FROM private), 0),"
        " coalesce((SELECT max(id) FROM offers), 0))"
    ).fetchone()
    return int(row[0])


def account_names(connection: sqlite3.Connection) -> dict[str, str]:
    """
    Every account's name keyed by its lower-cased form: the reserved nicks.
    """
    return dict(connection.execute("SELECT name_key, name FROM accounts"))


def topics(connection: sqlite3.Connection) -> dict[str, tuple[str, str, str]]:
    """
    Every stored room topic, keyed by the room's lower-cased name: the room's
    name as spelled when the topic was set, the topic's text (never empty),
    and the nick that set it.
    """
    return {key: (room, text, by) for key, room, text, by in connection.execute(
        "SELECT room_key, room, text, set_by FROM topics"
    )}


def offers(connection: sqlite3.Connection) -> list[FileOffer]:
    """
    Every stored file offer, oldest first, expired ones included.
    """
    return [
        FileOffer(id_, sender, target, name, size, sha256, from_ms(expires))
        for id_, sender, target, name, size, sha256, expires in connection.execute(
            "SELECT id, sender, target, name, size, sha256, expires FROM offers ORDER BY id"
        )
    ]


def device_keys(connection: sqlite3.Connection) -> dict[str, tuple[DeviceKey, ...]]:
    """
    Every stored device key, by lower-cased account name, oldest first
    (PROTOCOL.md section 11).
    """
    found: dict[str, list[DeviceKey]] = {}
    for account, device, bundle, print_, added in connection.execute(
        "SELECT account_key, device, bundle, fingerprint, added FROM device_keys ORDER BY added, device"
    ):
        found.setdefault(account, []).append(DeviceKey(device, bundle, print_, from_ms(added)))
    return {account: tuple(keys) for account, keys in found.items()}


def moderation(connection: Any) -> ModerationRecord:
    """
    Every administrator, operator of a room, ban and room setting.

    @param connection: an C{sqlite3.Connection}, or a cursor of one (in the
        store's database thread): anything whose C{execute} returns a cursor.
    """
    admins = frozenset(key for (key,) in connection.execute("SELECT name_key FROM admins").fetchall())
    operators = frozenset(
        (room, account) for room, account in connection.execute(
            "SELECT room_key, account_key FROM operators"
        ).fetchall()
    )
    bans = tuple(
        BanRecord(room, account, nick, address, None if expires is None else expires / 1000, reason, by, created / 1000)
        for room, account, nick, address, expires, reason, by, created in connection.execute(
            "SELECT room_key, account_key, nick_key, address, expires, reason, set_by, created FROM bans"
            " ORDER BY created"
        ).fetchall()
    )
    rooms = {
        room: RoomFlags(bool(invite_only), bool(topic_lock), bool(moderated))
        for room, invite_only, topic_lock, moderated in connection.execute(
            "SELECT room_key, invite_only, topic_lock, moderated FROM room_settings"
        ).fetchall()
    }
    return ModerationRecord(admins, operators, bans, rooms)

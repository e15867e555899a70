# -*- test-case-name: tests.test_admin_postgres -*-
"""
From one daemon to a cluster (PROTOCOL.md section 13): L{copy_to_postgres}
copies a single daemon's SQLite database (L{chat.schema}, C{chat.sqlite3}
in its data directory) into an empty PostgreSQL database
(L{chat.postgres_store}), keeping every id, time and password hash, so that
C{twistd chat --postgres DSN --data-dir DIR} then serves the same chat. The
offered files stay in the data directory's C{spool/}. It is
C{chat-admin copy-to-postgres DSN} (L{chat.admin}).

Everything here is synchronous and blocking; it runs from a shell, without
a reactor. The SQLite database is read in one read transaction (a
consistent snapshot), the PostgreSQL database written in one transaction
with C{COPY} per table: either everything is copied, or nothing.

Times stay integer milliseconds since the POSIX epoch (UTC); SQLite's
integer flags become PostgreSQL booleans.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.conninfo

from chat import schema
from chat.datadir import DataDirectory
from chat.postgres_pool import CONNECT_TIMEOUT
from chat.postgres_store import describe_database, migrate
from chat.schema import DatabaseError

__all__ = ["TABLES", "CopyRefused", "Copied", "Table", "copy_to_postgres"]

_BATCH = 5000
"""Rows read from SQLite at a time: memory stays bounded whatever the history's size."""


class CopyRefused(Exception):
    """
    The copy cannot start: the PostgreSQL database is not empty, or a
    daemon runs on the data directory. The message is one line for the
    operator; nothing was written.
    """


@dataclass(frozen=True)
class Table:
    """
    One table copied: its name (the same in both schemas), its columns in
    the order read and written, those that are booleans in PostgreSQL
    (integers in SQLite), the order rows are read in, and what a row is
    called in the summary (singular, plural).
    """

    name: str
    columns: tuple[str, ...]
    booleans: frozenset[str]
    order: str
    noun: tuple[str, str]

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """
        An SQLite row as PostgreSQL takes it: flags as C{bool}, the rest as read.
        """
        return tuple(
            bool(value) if name in self.booleans and value is not None else value
            for name, value in zip(self.columns, row, strict=True)
        )


def _table(name: str, columns: str, order: str, noun: tuple[str, str], booleans: str = "") -> Table:
    return Table(name, tuple(columns.split()), frozenset(booleans.split()), order, noun)


TABLES: tuple[Table, ...] = (
    _table("messages", "id ts room room_key sender text action", "id", ("room message", "room messages"), "action"),
    _table(
        "private", "id ts sender sender_key recipient recipient_key text action pending e2e", "id",
        ("private message", "private messages"), "action pending",
    ),
    _table("accounts", "name_key name password created", "name_key", ("account", "accounts")),
    _table("offers", "id sender target name size sha256 expires", "id", ("file offer", "file offers")),
    _table("topics", "room_key room text set_by", "room_key", ("topic", "topics")),
    _table("admins", "name_key", "name_key", ("server administrator", "server administrators")),
    _table("operators", "room_key account_key", "room_key, account_key", ("room operator", "room operators")),
    _table(
        "bans", "room_key account_key nick_key address expires reason set_by created",
        "room_key, account_key, nick_key", ("ban", "bans"),
    ),
    _table(
        "room_settings", "room_key invite_only topic_lock moderated", "room_key",
        ("room with settings", "rooms with settings"), "invite_only topic_lock moderated",
    ),
    _table(
        "device_keys", "account_key device bundle fingerprint added", "account_key, device",
        ("device key", "device keys"),
    ),
)
"""Every table of chat's data, in the order copied (C{schema_version} and
PostgreSQL's C{id_blocks} are each database's own)."""


@dataclass(frozen=True)
class Copied:
    """
    What L{copy_to_postgres} copied: C{counts} rows per table of L{TABLES}
    (same order), C{waiting} of the private messages still waiting for
    their recipient, C{last_id} the highest message or offer id (PostgreSQL
    hands out ids above it from now on), C{database} the PostgreSQL
    database (no password) and C{source} the SQLite file.
    """

    counts: tuple[tuple[Table, int], ...]
    waiting: int
    last_id: int
    database: str
    source: str

    def lines(self) -> list[str]:
        """
        The summary for the operator, one line each, without line ends:
        C{"4 room messages"}, C{"3 private messages (1 waiting)"}, ...
        """
        found = []
        for table, count in self.counts:
            line = f"{count} {table.noun[0] if count == 1 else table.noun[1]}"
            if table.name == "private":
                line += f" ({self.waiting} waiting)"
            found.append(line)
        return found


def one_line(error: BaseException) -> str:
    """
    An error's message on one line (psycopg's span several: C{DETAIL:}, C{HINT:}).
    """
    return " ".join(str(error).split())


def connect(dsn: str) -> psycopg.Connection[Any]:
    """
    Connect to the PostgreSQL database of C{dsn} (blocking, at most
    L{CONNECT_TIMEOUT} seconds), not in autocommit mode.

    @raise DatabaseError: it cannot be reached; one line naming it, never
        its password.
    """
    try:
        return psycopg.connect(dsn, connect_timeout=max(2, int(CONNECT_TIMEOUT)))
    except psycopg.Error as e:
        raise DatabaseError(f"cannot use the {describe_database(dsn)}: {one_line(e)}") from None


def _lock(data_dir: str) -> DataDirectory:
    """
    Take the data directory's lock as a daemon does, so that no daemon
    writes the database while it is copied.

    @return: the L{DataDirectory} to release.
    @raise CopyRefused: a daemon runs on it.
    """
    directory = DataDirectory(data_dir)
    try:
        directory.lock()
    except BlockingIOError as e:
        raise CopyRefused(f"cannot copy {directory.path}: {e.strerror}") from None
    return directory


def _refuse_unless_empty(cursor: Any, name: str) -> None:
    """
    @raise CopyRefused: a table of chat's data holds a row, or ids were
        reserved (a daemon has used the database).
    """
    held = []
    for table in TABLES:
        cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table.name} LIMIT 1) AS one")
        if cursor.fetchone()[0]:
            held.append(table.noun[1])
    if held:
        raise CopyRefused(
            f"the {name} is not empty (it holds {', '.join(held)}): copy into a new, empty database"
        )
    cursor.execute("SELECT top FROM id_blocks")
    top = int(cursor.fetchone()[0])
    if top:
        raise CopyRefused(
            f"the {name} has been used by a chat daemon (message ids up to {top} reserved):"
            " copy into a new, empty database, with no daemon on it"
        )


def _copy_table(source: sqlite3.Connection, cursor: Any, table: Table) -> int:
    names = ", ".join(table.columns)
    rows = source.execute(f"SELECT {names} FROM {table.name} ORDER BY {table.order}")
    count = 0
    with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        while batch := rows.fetchmany(_BATCH):
            for row in batch:
                copy.write_row(table.convert(row))
            count += len(batch)
    return count


def copy_to_postgres(data_dir: str, dsn: str) -> Copied:
    """
    Copy the SQLite database of the data directory C{data_dir} into the
    empty PostgreSQL database of C{dsn}: create its schema when it has none,
    copy every table of L{TABLES} with its ids, times and password hashes,
    and set the id counter (C{id_blocks}: C{top} and C{last_message}) to
    the highest id copied, so that daemons on it hand out ids above every
    copied one. One PostgreSQL
    transaction: all or nothing. The data directory is locked meanwhile, as
    by a daemon; its files (C{spool/}) are not touched.

    @param data_dir: a daemon's C{--data-dir}; its database is migrated to
        the current SQLite schema first, as a daemon would.
    @param dsn: a libpq connection string or URI; its password is never in
        a message.
    @return: what was copied.
    @raise DatabaseError: either database cannot be used (there is no
        SQLite database, PostgreSQL cannot be reached, a schema is newer
        than this code, a statement failed); one line.
    @raise CopyRefused: a daemon runs on C{data_dir}, or the PostgreSQL
        database is not empty; one line.
    @raise OSError: the data directory cannot be opened.
    """
    path = schema.path_in(data_dir)
    if not os.path.exists(path):
        raise DatabaseError(f"no database at {path}")
    directory = _lock(data_dir)  # before the database is touched: it may migrate it
    try:
        source = schema.open_database(path, create=False)
        try:
            return _copy(source, path, dsn)
        finally:
            source.close()
    finally:
        directory.release()


def _copy(source: sqlite3.Connection, path: str, dsn: str) -> Copied:
    name = describe_database(dsn)
    target = connect(dsn)
    try:
        source.execute("BEGIN")  # one snapshot of every table
        try:
            with target.transaction(), target.cursor() as cursor:
                migrate(cursor)  # creates the schema; its advisory lock holds starting daemons back
                _refuse_unless_empty(cursor, name)
                counts = tuple((table, _copy_table(source, cursor, table)) for table in TABLES)
                last_id = schema.last_id(source)
                cursor.execute(
                    "UPDATE id_blocks SET top = greatest(top, %s), last_message = greatest(last_message, %s)",
                    (last_id, last_id),
                )
            (waiting,) = source.execute("SELECT count(*) FROM private WHERE pending").fetchone()
        finally:
            source.execute("ROLLBACK")
    except psycopg.Error as e:
        raise DatabaseError(f"cannot copy into the {name}: {one_line(e)}") from None
    except sqlite3.Error as e:
        raise DatabaseError(f"cannot read {path}: {e}") from None
    finally:
        target.close()
    return Copied(counts, int(waiting), last_id, name, path)

"""
Tests for L{chat.schema}: opening, configuring and migrating the database.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import closing
from datetime import datetime, timezone

from twisted.trial.unittest import SynchronousTestCase

from chat import schema
from chat.events import DeviceKey, FileOffer
from chat.storage import BanRecord, ModerationRecord, RoomFlags


def tables(connection: sqlite3.Connection) -> set[str]:
    return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}


class DatabaseTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-schema-")
        self.addCleanup(directory.cleanup)
        self.path = os.path.join(directory.name, schema.FILENAME)

    def at_version(self, version: int) -> sqlite3.Connection:
        """
        A database built by the first C{version} migration steps only, as an
        older chat left it.
        """
        connection = sqlite3.connect(self.path, isolation_level=None)
        for step in schema.MIGRATIONS[:version]:
            for statement in step:
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version={version}")
        return connection


class MigrationTests(DatabaseTestCase):
    def test_empty_file_migrated_to_current(self) -> None:
        """
        A new database gets every table of the current version and its user_version.
        """
        with closing(schema.open_database(self.path)) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], schema.VERSION)
            self.assertTrue(
                {"messages", "accounts", "private", "messages_by_room", "private_pending", "offers", "topics"}
                <= tables(db)
            )

    def test_from_each_earlier_version_data_kept(self) -> None:
        """
        From every earlier version, migration reaches the current one and keeps the rows already there.
        """
        for version in range(1, schema.VERSION):
            if os.path.exists(self.path):
                os.remove(self.path)
            with closing(self.at_version(version)) as old:
                old.execute(
                    "INSERT INTO messages (id, ts, room, room_key, sender, text, action)"
                    " VALUES (7, 1700000000123, '#Dev', '#dev', 'alice', 'kept', 0)"
                )
            with closing(schema.open_database(self.path)) as db:
                self.assertEqual(schema.migrate(db), (schema.VERSION, schema.VERSION))
                self.assertEqual(
                    db.execute("SELECT id, ts, room, sender, text FROM messages").fetchall(),
                    [(7, 1700000000123, "#Dev", "alice", "kept")],
                )
                self.assertEqual(schema.last_id(db), 7)
                self.assertEqual(db.execute("SELECT count(*) FROM accounts").fetchone()[0], 0)

    def test_from_version_3_topics_added(self) -> None:
        """
        A version 3 database (before topics) gets an empty topics table,
        keeping its offers; topics are then stored once per room ignoring case.
        """
        with closing(self.at_version(3)) as old:
            old.execute("INSERT INTO offers VALUES (12, 'alice', '#Dev', 'f.txt', 1, 'ab', 1700000000000)")
            self.assertNotIn("topics", tables(old))
        with closing(schema.open_database(self.path)) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], schema.VERSION)
            self.assertEqual(schema.topics(db), {})
            self.assertEqual([offer.id for offer in schema.offers(db)], [12])
            db.execute("INSERT INTO topics VALUES ('#dev', '#Dev', 'Release on Friday', 'alice')")
            self.assertRaises(
                sqlite3.IntegrityError, db.execute, "INSERT INTO topics VALUES ('#dev', '#DEV', 'other', 'bob')"
            )
            self.assertEqual(schema.topics(db), {"#dev": ("#Dev", "Release on Friday", "alice")})

    def test_from_version_4_private_sender_key(self) -> None:
        """
        A version 4 database's private messages get their lower-cased sender
        as sender_key and the pair index, and stay readable as a conversation
        in both directions.
        """
        with closing(self.at_version(4)) as old:
            old.executemany(
                "INSERT INTO private VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                [
                    (5, 1700000000000, "Alice", "Bob", "bob", "hi bob", 0),
                    (6, 1700000001000, "BOB", "alice", "alice", "hi alice", 1),
                    (7, 1700000002000, "carol", "Bob", "bob", "other pair", 0),
                ],
            )
            self.assertNotIn("private_by_pair", tables(old))
        with closing(schema.open_database(self.path)) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], schema.VERSION)
            self.assertIn("private_by_pair", tables(db))
            self.assertEqual(
                db.execute("SELECT id, sender, sender_key, pending FROM private ORDER BY id").fetchall(),
                [(5, "Alice", "alice", 0), (6, "BOB", "bob", 1), (7, "carol", "carol", 0)],
            )
            self.assertEqual(schema.last_id(db), 7)
            plan = " ".join(str(row) for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM private WHERE sender_key = 'bob' AND recipient_key = 'alice'"
                " AND id < 9 ORDER BY id DESC LIMIT 3"
            ))
            self.assertIn("private_by_pair", plan)

    def test_from_version_5_moderation_tables(self) -> None:
        """
        A version 5 database keeps its accounts and gains the empty moderation tables of version 6,
        which read back as an empty record and then hold what is written.
        """
        with closing(self.at_version(5)) as old:
            old.execute("INSERT INTO accounts VALUES ('alice', 'Alice', 'h', 1700000000000)")
            self.assertNotIn("bans", tables(old))
        with closing(schema.open_database(self.path)) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], schema.VERSION)
            self.assertTrue({"admins", "operators", "bans", "room_settings"} <= set(tables(db)))
            self.assertEqual(schema.account_names(db), {"alice": "Alice"})
            self.assertEqual(schema.moderation(db), ModerationRecord())
            db.execute("INSERT INTO admins VALUES ('alice')")
            db.execute("INSERT INTO operators VALUES ('#dev', 'alice')")
            db.execute("INSERT INTO bans VALUES ('#dev', '', 'eve', '192.0.2.7', NULL, 'spam', 'Alice', 1700000000500)")
            db.execute("INSERT INTO room_settings VALUES ('#dev', 1, 0, 1)")
            self.assertEqual(
                schema.moderation(db),
                ModerationRecord(
                    frozenset({"alice"}), frozenset({("#dev", "alice")}),
                    (BanRecord("#dev", "", "eve", "192.0.2.7", None, "spam", "Alice", 1700000000.5),),
                    {"#dev": RoomFlags(True, False, True)},
                ),
            )

    def test_from_version_6_device_keys_and_e2e(self) -> None:
        """
        A version 6 database keeps its private messages (their envelope empty) and gains the empty
        device_keys table of version 7, whose rows read back by account, oldest first.
        """
        with closing(self.at_version(6)) as old:
            old.execute(
                "INSERT INTO private (id, ts, sender, recipient, recipient_key, text, sender_key)"
                " VALUES (4, 1700000000000, 'Bob', 'Alice', 'alice', 'psst', 'bob')"
            )
            self.assertNotIn("device_keys", tables(old))
        with closing(schema.open_database(self.path)) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], schema.VERSION)
            self.assertEqual(db.execute("SELECT text, e2e FROM private WHERE id = 4").fetchall(), [("psst", "")])
            self.assertEqual(schema.device_keys(db), {})
            db.execute("INSERT INTO device_keys VALUES ('alice', 'dev2', 'S2', '2', 1700000000500)")
            db.execute("INSERT INTO device_keys VALUES ('alice', 'dev1', 'S1', '1', 1700000000000)")
            added = datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
            self.assertEqual(schema.device_keys(db), {"alice": (
                DeviceKey("dev1", "S1", "1", added),
                DeviceKey("dev2", "S2", "2", added.replace(microsecond=500_000)),
            )})

    def test_migrate_reports_versions(self) -> None:
        """
        migrate returns the version found and the version reached; a current database is left alone.
        """
        with closing(self.at_version(1)) as db:
            self.assertEqual(schema.migrate(db), (1, schema.VERSION))
            self.assertEqual(schema.migrate(db), (schema.VERSION, schema.VERSION))

    def test_newer_database_refused(self) -> None:
        """
        A database newer than the code is refused with a one-line DatabaseError, untouched.
        """
        with closing(sqlite3.connect(self.path)) as db:
            db.execute(f"PRAGMA user_version={schema.VERSION + 3}")
        error = self.assertRaises(schema.DatabaseError, schema.open_database, self.path)
        self.assertEqual(
            str(error),
            f"the database has schema version {schema.VERSION + 3}, newer than this chat"
            f" (version {schema.VERSION}): upgrade chat",
        )
        with closing(sqlite3.connect(self.path)) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], schema.VERSION + 3)

    def test_failed_step_rolled_back(self) -> None:
        """
        A migration step that fails leaves the database at the version before it, with none of its changes.
        """
        self.patch(schema, "MIGRATIONS", schema.MIGRATIONS + (("CREATE TABLE extra (x)", "NOT SQL"),))
        self.patch(schema, "VERSION", len(schema.MIGRATIONS))
        self.assertRaises(schema.DatabaseError, schema.open_database, self.path)
        with closing(sqlite3.connect(self.path)) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], schema.VERSION - 1)
            self.assertNotIn("extra", tables(db))


class OpenTests(DatabaseTestCase):
    def test_wal_and_full_sync(self) -> None:
        """
        Connections use write-ahead logging and synchronous=FULL (2).
        """
        with closing(schema.open_database(self.path)) as db:
            self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
            self.assertEqual(db.execute("PRAGMA synchronous").fetchone()[0], 2)

    def test_missing_not_created(self) -> None:
        """
        Without create, a missing database is an error and no file appears.
        """
        error = self.assertRaises(schema.DatabaseError, schema.open_database, self.path, create=False)
        self.assertEqual(str(error), f"no database at {self.path}")
        self.assertFalse(os.path.exists(self.path))

    def test_not_a_database(self) -> None:
        """
        A file that is not a database gives a one-line DatabaseError naming the path.
        """
        with open(self.path, "wb") as f:
            f.write(b"hello, this is not SQLite" * 200)
        error = self.assertRaises(schema.DatabaseError, schema.open_database, self.path)
        self.assertIn("not a database", str(error))
        self.assertNotIn("\n", str(error))

    def test_last_id_over_rooms_and_private(self) -> None:
        """
        The last id is the highest of room and private messages, 0 when empty.
        """
        with closing(schema.open_database(self.path)) as db:
            self.assertEqual(schema.last_id(db), 0)
            db.execute("INSERT INTO messages VALUES (3, 0, '#a', '#a', 'x', 't', 0)")
            self.assertEqual(schema.last_id(db), 3)
            db.execute(
                "INSERT INTO private (id, ts, sender, recipient, recipient_key, text, action, pending)"
                " VALUES (9, 0, 'x', 'Y', 'y', 't', 0, 1)"
            )
            self.assertEqual(schema.last_id(db), 9)

    def test_last_id_counts_offers(self) -> None:
        """
        File offers share the id sequence: the last id is at least the highest offer id.
        """
        with closing(schema.open_database(self.path)) as db:
            db.execute("INSERT INTO messages VALUES (3, 0, '#a', '#a', 'x', 't', 0)")
            db.execute("INSERT INTO offers VALUES (12, 'alice', '#a', 'f', 1, 'ab', 0)")
            self.assertEqual(schema.last_id(db), 12)

    def test_offers_read_back(self) -> None:
        """
        Stored offers are read back oldest first, with their expiry as an aware UTC time.
        """
        with closing(schema.open_database(self.path)) as db:
            db.execute("INSERT INTO offers VALUES (5, 'bob', 'alice', 'b.txt', 2, 'cd', 1700000000123)")
            db.execute("INSERT INTO offers VALUES (4, 'alice', '#Dev', 'a b.pdf', 10, 'ab', 1700000000000)")
            self.assertEqual(schema.offers(db), [
                FileOffer(4, "alice", "#Dev", "a b.pdf", 10, "ab", schema.from_ms(1700000000000)),
                FileOffer(
                    5, "bob", "alice", "b.txt", 2, "cd", datetime(2023, 11, 14, 22, 13, 20, 123000, timezone.utc)
                ),
            ])

    def test_account_names(self) -> None:
        """
        Account names are keyed by their lower-cased form.
        """
        with closing(schema.open_database(self.path)) as db:
            db.execute("INSERT INTO accounts VALUES ('alice', 'Alice', 'h', 0)")
            self.assertEqual(schema.account_names(db), {"alice": "Alice"})


class TimeTests(SynchronousTestCase):
    def test_milliseconds_round_trip(self) -> None:
        """
        Times go to integer milliseconds and back exactly.
        """
        when = datetime(2026, 11, 21, 14, 2, 3, 120000, tzinfo=timezone.utc)
        self.assertEqual(schema.to_ms(when), 1795269723120)
        self.assertEqual(schema.from_ms(1795269723120), when)
        self.assertEqual(schema.from_ms(0), datetime(1970, 1, 1, tzinfo=timezone.utc))

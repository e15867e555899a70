"""
Tests for C{chat-admin} on the real PostgreSQL server of L{tests.servers}
(skipped, with the reason, when it cannot start): every command of
L{tests.test_admin} again with C{--postgres DSN} (the same tests, their
fixture database in PostgreSQL), and C{chat-admin copy-to-postgres}
(L{chat.migrate}): a single daemon's SQLite data copied with its ids,
times and hashes, then served by C{twistd chat --postgres}.
"""

from __future__ import annotations

import io
import os
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
from twisted.internet.task import Clock

from chat import admin, postgres_store
from chat.events import DeviceKey, FileOffer, Message, Private
from chat.pooled_store import PooledStore
from chat.postgres_store import PostgresStore
from chat.schema import open_database
from chat.sqlite_store import open_store
from chat.storage import BanRecord, RoomFlags
from tests import servers, test_admin
from tests.e2e import EXITED_ON_SIGTERM, Client, Daemon
from tests.test_admin import OLD_HASH, T1, T2, T3, AdminTestCase

NEW_HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$bmV3LWhhc2g"


class PostgresAdmin(AdminTestCase):
    """
    L{AdminTestCase} with its fixture database in the emptied test database
    of the real PostgreSQL, and C{chat-admin --postgres DSN}.
    """

    def setUp(self) -> None:
        super().setUp()
        self.server = servers.postgres()
        self.server.reset()

    def target(self) -> list[str]:
        return ["--postgres", self.server.dsn]

    def create_empty(self) -> None:
        with psycopg.connect(self.server.dsn) as connection, connection.cursor() as cursor:
            postgres_store.migrate(cursor)

    def execute(self, sql: str, rows: list[tuple[Any, ...]] | None = None) -> None:
        with psycopg.connect(self.server.dsn) as connection, connection.cursor() as cursor:
            if rows is None:
                cursor.execute(sql)
            else:
                cursor.executemany(sql.replace("?", "%s"), rows)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.server.dsn) as connection:
            return connection.execute(sql).fetchall()


class PostgresAccountsTests(PostgresAdmin, test_admin.AccountsTests):
    """
    C{chat-admin --postgres DSN accounts}.
    """


class PostgresResetPasswordTests(PostgresAdmin, test_admin.ResetPasswordTests):
    """
    C{chat-admin --postgres DSN reset-password}.
    """


class PostgresDeleteAccountTests(PostgresAdmin, test_admin.DeleteAccountTests):
    """
    C{chat-admin --postgres DSN delete-account}.
    """


class PostgresAdminRoleTests(PostgresAdmin, test_admin.AdminRoleTests):
    """
    C{chat-admin --postgres DSN grant-admin} and C{revoke-admin}.
    """


class PostgresExportTests(PostgresAdmin, test_admin.ExportTests):
    """
    C{chat-admin --postgres DSN export}.
    """


class PostgresProcessTests(PostgresAdmin, test_admin.ProcessTests):
    """
    C{chat-admin --postgres DSN} as a process.
    """


class PostgresDatabaseTests(PostgresAdmin):
    """
    A PostgreSQL database that cannot be used: one line, status 1, no password.
    """

    def test_unreachable(self) -> None:
        """
        A server that cannot be reached gives one line naming the database, without its password or a traceback.
        """
        dsn = "postgresql://chat:hunter22@127.0.0.1:1/nowhere?connect_timeout=2"
        for argv in (["accounts"], ["export", "lobby"], ["grant-admin", "bob"]):
            stdout, stderr = io.StringIO(), io.StringIO()
            status = admin.main(["--postgres", dsn, *argv], io.StringIO(), stdout, stderr)
            err = stderr.getvalue()
            self.assertEqual((status, stdout.getvalue(), err.count("\n")), (1, "", 1), err)
            self.assertTrue(err.startswith("chat-admin: cannot use the PostgreSQL database nowhere on 127.0.0.1:1: "))
            self.assertNotIn("hunter22", err)

    def test_no_such_database(self) -> None:
        """
        A database the server does not have gives one line saying so.
        """
        dsn = self.server.conninfo("nowhere")
        status, out, err = self.run_admin("--postgres", dsn, "accounts")
        self.assertEqual((status, out, err.count("\n")), (1, b"", 1), err)
        self.assertIn('database "nowhere" does not exist', err)

    def test_empty_database_not_created(self) -> None:
        """
        A database without chat's schema is refused, and chat-admin creates no table in it.
        """
        self.assertEqual(
            self.run_admin("accounts"),
            (
                1, b"",
                f"chat-admin: no chat database in the PostgreSQL database chat_test on 127.0.0.1:{self.server.port}:"
                " a daemon creates it at its first start (twistd chat --postgres DSN), or copy-to-postgres fills it\n",
            ),
        )
        self.assertEqual(self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"), [])

    def test_newer_schema(self) -> None:
        """
        A database from a newer chat is refused with one line.
        """
        self.create_empty()
        self.execute(f"UPDATE schema_version SET version = {postgres_store.VERSION + 1}")
        status, out, err = self.run_admin("accounts")
        self.assertEqual((status, out), (1, b""))
        self.assertIn(f"has schema version {postgres_store.VERSION + 1}, newer than this chat", err)
        self.assertEqual(err.count("\n"), 1)

    def test_reserves_no_ids(self) -> None:
        """
        Commands leave the cluster's id counter alone: they make no message.
        """
        self.make_database()
        self.assertEqual(self.run_admin("grant-admin", "bob")[0], 0)
        self.assertEqual(self.run_admin("accounts")[0], 0)
        self.assertEqual(self.query("SELECT top FROM id_blocks"), [(0,)])


KEY = DeviceKey("AAAAAAAAAAAAAAAA", "a2V5LWJ1bmRsZQ==", "00001 00002 00003 00004 00005 00006", T2)
EXPIRES = datetime(2026, 11, 28, 12, 0, 0, 123000, tzinfo=timezone.utc)


class CopyToPostgresTests(PostgresAdmin):
    """
    C{chat-admin copy-to-postgres DSN}: a data directory filled through the
    real L{chat.sqlite_store.SQLiteStore}, copied into the emptied test database.
    """

    def target(self) -> list[str]:
        return ["-d", self.data_dir]  # copy-to-postgres reads the data directory

    def fill(self) -> dict[str, Any]:
        """
        Fill the data directory's database through the SQLite store: room
        messages in two rooms, private messages (one delivered, one waiting,
        one encrypted), two accounts, a topic, bans, an operator, an
        administrator, room settings, a device key and a file offer.

        @return: what was written, by kind.
        """
        clock = Clock()
        store = open_store(self.data_dir, clock, make_pool=admin.SynchronousPool)

        def settle() -> None:
            while clock.getDelayedCalls():
                clock.advance(0)

        store.create_account("alice", OLD_HASH, T1.timestamp())
        store.create_account("Bob", NEW_HASH, T3.timestamp())
        rooms = [
            Message(store.next_id(), T1, "#Lobby", "alice", "first \u263a"),
            Message(store.next_id(), T2, "#other", "Bob", "elsewhere", action=True),
            Message(store.next_id(), T3, "#Lobby", "Bob", "third"),
        ]
        delivered = Private(store.next_id(), T2, "alice", "Bob", "seen")
        waiting = Private(store.next_id(), T3, "Bob", "alice", "while you were away", offline=True)
        sealed = Private(store.next_id(), T3, "alice", "Bob", "", offline=True, e2e="ZW52ZWxvcGU")
        offer = FileOffer(store.next_id(), "alice", "Bob", "notes.txt", 12, "ab" * 32, EXPIRES)
        items: list[Message | Private] = [*rooms, delivered, waiting, sealed]
        for item in items:
            store.add(item)
        store.add_offer(offer)
        store.delivered([delivered.id])
        store.set_topic("#Lobby", "Welcome here", "alice")
        bans = [
            BanRecord("#lobby", "", "troll", "127.0.0.0/24", None, "spam", "alice", T2.timestamp()),
            BanRecord("#other", "bob", "", "", EXPIRES.timestamp(), "", "alice", T3.timestamp()),
        ]
        for ban in bans:
            store.add_ban(ban)
        store.set_operator("#Lobby", "alice", True)
        store.set_room_flags("#Lobby", RoomFlags(invite_only=True, topic_lock=False, moderated=True))
        store.add_device_key("alice", KEY)
        settle()
        admin._now(store.set_admin("Bob", True))
        accounts = admin._now(store.accounts())
        moderation = admin._now(store.read_moderation())
        admin._now(store.close())
        return {
            "rooms": rooms, "private": [delivered, waiting, sealed], "offer": offer, "bans": bans,
            "accounts": accounts, "moderation": moderation,
        }

    def open_postgres(self) -> PostgresStore:
        store = admin.open_postgres(self.server.dsn)
        self.addCleanup(lambda: admin._now(store.close()))
        return store

    def test_copies_everything(self) -> None:
        """
        Every item arrives with its id, time and hash, the counts are printed, and new ids are above the copied ones.
        """
        written = self.fill()
        status, out, err = self.run_admin("copy-to-postgres", self.server.dsn)
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(
            out.decode(),
            f"Copied {self.path} into the PostgreSQL database chat_test on 127.0.0.1:{self.server.port}:\n"
            "  3 room messages\n  3 private messages (2 waiting)\n  2 accounts\n  1 file offer\n  1 topic\n"
            "  1 server administrator\n  1 room operator\n  2 bans\n  1 room with settings\n  1 device key\n"
            f"Message ids continue above 7. Start the daemon with --postgres DSN --data-dir {self.data_dir}"
            " (the offered files stay in its spool/).\n",
        )
        store = self.open_postgres()
        lobby, other = admin._now(store.messages("#lobby")), admin._now(store.messages("#OTHER"))
        rooms = written["rooms"]
        self.assertEqual((list(lobby), list(other)), ([rooms[0], rooms[2]], [rooms[1]]))
        delivered, waiting, sealed = written["private"]
        for_alice, for_bob = admin._now(store.waiting("ALICE")), admin._now(store.waiting("bob"))
        self.assertEqual((list(for_alice), list(for_bob)), ([waiting], [sealed]))
        self.assertEqual(
            [(p.id, p.ts, p.sender, p.to, p.text, p.e2e) for p in admin._now(store.conversation("alice", "bob", 10))],
            [(p.id, p.ts, p.sender, p.to, p.text, p.e2e) for p in written["private"]],
        )
        accounts = admin._now(store.accounts())
        self.assertEqual(accounts, written["accounts"])  # as the SQLite store read them back
        self.assertEqual([(a.name, a.password) for a in accounts], [("alice", OLD_HASH), ("Bob", NEW_HASH)])
        self.assertEqual([round(a.created) for a in accounts], [round(T1.timestamp()), round(T3.timestamp())])
        self.assertEqual(store.account_names(), {"alice": "alice", "bob": "Bob"})
        self.assertEqual(store.offers(), [written["offer"]])
        self.assertEqual(store.topics(), {"#lobby": ("#Lobby", "Welcome here", "alice")})
        self.assertEqual(store.device_keys(), {"alice": (KEY,)})
        moderation = store.moderation()
        self.assertEqual(moderation.admins, frozenset({"bob"}))
        self.assertEqual(moderation.operators, frozenset({("#lobby", "alice")}))
        self.assertEqual(moderation, written["moderation"])
        self.assertEqual(
            [(b.room, b.account, b.nick, b.address, b.reason, b.by) for b in moderation.bans],
            [(b.room, b.account, b.nick, b.address, b.reason, b.by) for b in written["bans"]],
        )
        self.assertEqual([b.expires is None for b in moderation.bans], [True, False])
        self.assertEqual(moderation.rooms, {"#lobby": RoomFlags(True, False, True)})
        self.assertEqual(store.last_id(), 7)
        self.assertEqual(self.query("SELECT top FROM id_blocks"), [(7,)])
        daemon_store = self.daemon_store()
        self.assertEqual(daemon_store.next_id(), 8)

    def daemon_store(self) -> PooledStore:
        """
        A store opened on the test database as a daemon opens it (on a synchronous pool), its first block of
        ids reserved.
        """
        opening = postgres_store.open_postgres_store(self.server.dsn, Clock(), make_pool=admin.SynchronousPostgresPool)
        store = self.successResultOf(opening)
        self.addCleanup(lambda: admin._now(store.close()))
        return store

    def test_refuses_non_empty(self) -> None:
        """
        A second copy into the now non-empty database is refused with one line, and changes nothing.
        """
        self.fill()
        self.assertEqual(self.run_admin("copy-to-postgres", self.server.dsn)[0], 0)
        before = self.query("SELECT id, text FROM messages ORDER BY id")
        self.assertEqual(
            self.run_admin("copy-to-postgres", self.server.dsn),
            (
                1, b"",
                f"chat-admin: the PostgreSQL database chat_test on 127.0.0.1:{self.server.port} is not empty"
                " (it holds room messages, private messages, accounts, file offers, topics, server administrators,"
                " room operators, bans, rooms with settings, device keys): copy into a new, empty database\n",
            ),
        )
        self.assertEqual(self.query("SELECT id, text FROM messages ORDER BY id"), before)
        self.assertEqual(self.query("SELECT top FROM id_blocks"), [(7,)])

    def test_refuses_used_by_daemon(self) -> None:
        """
        A database without data whose ids a daemon reserved is refused: that daemon may hand them out.
        """
        self.fill()
        self.daemon_store()
        self.assertEqual(
            self.run_admin("copy-to-postgres", self.server.dsn),
            (
                1, b"",
                f"chat-admin: the PostgreSQL database chat_test on 127.0.0.1:{self.server.port} has been used by a"
                " chat daemon (message ids up to 1000 reserved): copy into a new, empty database, with no daemon"
                " on it\n",
            ),
        )
        self.assertEqual(self.query("SELECT count(*) FROM accounts"), [(0,)])

    def test_empty_data_dir(self) -> None:
        """
        A database without data is copied as such: zero counts, ids from 1.
        """
        self.create_sqlite()
        status, out, err = self.run_admin("copy-to-postgres", self.server.dsn)
        self.assertEqual((status, err), (0, ""))
        self.assertIn(b"  0 room messages\n  0 private messages (0 waiting)\n  0 accounts\n", out)
        self.assertEqual(self.daemon_store().next_id(), 1)

    def create_sqlite(self) -> None:
        """
        An empty SQLite database in the data directory.
        """
        open_database(self.path).close()

    def test_all_or_nothing(self) -> None:
        """
        A row PostgreSQL refuses fails the copy with one line and leaves nothing behind, not even the schema.
        """
        self.fill()
        with closing(sqlite3.connect(self.path)) as db, db:
            db.execute("INSERT INTO topics VALUES ('#bad', '#bad', ?, 'alice')", ("nul \x00 here",))
        status, out, err = self.run_admin("copy-to-postgres", self.server.dsn)
        self.assertEqual((status, out, err.count("\n")), (1, b"", 1), err)
        self.assertTrue(
            err.startswith(
                f"chat-admin: cannot copy into the PostgreSQL database chat_test on 127.0.0.1:{self.server.port}: "
            ),
            err,
        )
        # Not even the schema it created: the next copy starts afresh.
        self.assertEqual(self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"), [])


@pytest.mark.slow
class CopyServedTests(PostgresAdmin):
    """
    The copy end to end: a real SQLite daemon's data directory, copied,
    then served by C{twistd -n chat --postgres DSN --data-dir DIR}.
    """

    def test_daemon_serves_the_copy(self) -> None:
        """
        After the copy the PostgreSQL daemon replays the room history to a new user, keeps accounts and ids,
        and delivers a private message left waiting before the move.
        """
        daemon = Daemon()
        self.addCleanup(daemon.stop)
        daemon.start()
        alice = Client.json(daemon.port, "alice")
        alice.send_line("/register password2")
        alice.expect_event("registered", account=True)
        alice.send_line("/quit")
        alice.read_until_closed()
        bob = Client.json(daemon.port, "bob")
        bob.send_line("/register password1")
        bob.expect_event("info")
        bob.send_line("hello before the move")
        first = bob.expect_event("message")
        bob.send_line("/msg alice while you were away")
        waiting = bob.expect_event("private")
        self.assertIs(waiting["offline"], True)
        bob.close()
        self.assertIn(daemon.halt(), EXITED_ON_SIGTERM)
        stdout, stderr = io.StringIO(), io.StringIO()
        argv = ["-d", daemon.data_dir, "copy-to-postgres", self.server.dsn]
        status = admin.main(argv, io.StringIO(), stdout, stderr)
        self.assertEqual((status, stderr.getvalue()), (0, ""))
        self.assertIn("  2 accounts\n  0 file offers\n", stdout.getvalue())
        self.assertIn("  1 private message (1 waiting)\n", stdout.getvalue())
        daemon.start(extra=("--postgres", self.server.dsn))
        carol = Client.json(daemon.port, "carol")
        self.addCleanup(carol.close)
        history = next(e for e in carol.registration if e.get("type") == "history")
        self.assertEqual(
            [(m["id"], m["ts"], m["from"], m["text"]) for m in history["messages"]],
            [(first["id"], first["ts"], "bob", "hello before the move")],
        )
        carol.send_line("hello after the move")
        self.assertGreater(carol.expect_event("message")["id"], first["id"])
        bob = Client.json_connect(daemon.port)
        self.addCleanup(bob.close)
        bob.send_line("/login bob password1")
        registered = bob.expect_event("registered")
        self.assertEqual((registered["nick"], registered["account"]), ("bob", True))
        alice = Client.json_connect(daemon.port)
        self.addCleanup(alice.close)
        alice.send_line("/login alice password2")
        delivered = alice.expect_event("private")
        self.assertEqual(delivered, waiting)
        self.assertIn(f"(PostgreSQL database chat_test on 127.0.0.1:{self.server.port})", daemon.log())
        self.assertTrue(os.path.isdir(os.path.join(daemon.data_dir, "spool")))
        daemon.assert_clean()


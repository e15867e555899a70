"""
Tests for L{chat.admin}: the C{chat-admin} operator tool, run in-process
through L{chat.admin.main} against a database made in a temporary data
directory, and once as a real process. L{AdminTestCase} reaches its
database through a few methods, which L{tests.test_admin_postgres}
overrides to run the same tests with C{--postgres} on a real PostgreSQL.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import argon2
from twisted.trial.unittest import SynchronousTestCase

from chat import __version__, admin
from chat.accounts import owasp_hasher
from chat.events import Message, Private
from chat.render import render_json
from chat.schema import FILENAME, MIGRATIONS, VERSION, open_database, path_in, to_ms
from tests.test_storage import SQLiteStoreTestCase

ROOT = Path(__file__).resolve().parent.parent

OLD_HASH = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("old-password")

T1 = datetime(2026, 11, 20, 23, 59, 59, 999000, tzinfo=timezone.utc)
T2 = datetime(2026, 11, 21, 0, 0, 0, tzinfo=timezone.utc)
T3 = datetime(2026, 11, 21, 14, 2, 3, 120000, tzinfo=timezone.utc)

MESSAGES = (
    Message(1, T1, "#Lobby", "alice", "first"),
    Message(2, T2, "#other", "bob", "elsewhere"),
    Message(3, T2, "#Lobby", "Bob", "waves", action=True),
    Message(5, T3, "#Lobby", "alice", "caf\u00e9 \u263a \"quoted\" \\ back"),
)


def cheap_hasher() -> argon2.PasswordHasher:
    """
    An argon2id hasher with tiny parameters, to keep tests fast.
    """
    return argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class AdminTestCase(SynchronousTestCase):
    """
    A data directory with a database holding accounts, room messages and
    private messages, and a way to run C{chat-admin} against it.
    """

    def setUp(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="chat-admin-test-")
        self.addCleanup(shutil.rmtree, self.data_dir)
        self.path = path_in(self.data_dir)
        self.patch(admin, "owasp_hasher", cheap_hasher)

    def target(self) -> list[str]:
        """
        The options of C{chat-admin} that name the fixture's database.
        """
        return ["-d", self.data_dir]

    def create_empty(self) -> None:
        """
        Create the fixture's database, empty, at the current schema.
        """
        open_database(self.path).close()

    def execute(self, sql: str, rows: list[tuple[Any, ...]] | None = None) -> None:
        """
        Run C{sql} on the fixture's database (once, or once per row of
        C{rows}, with C{?} placeholders) and commit.
        """
        with closing(sqlite3.connect(self.path)) as db, db:
            if rows is None:
                db.execute(sql)
            else:
                db.executemany(sql, rows)

    def make_database(self) -> None:
        """
        Create the database with three accounts, four room messages, and
        private messages: two waiting for Bob, one delivered to him, one
        waiting for alice.
        """
        self.create_empty()
        self.execute(
            "INSERT INTO accounts (name_key, name, password, created) VALUES (?, ?, ?, ?)",
            [
                ("bob", "Bob", OLD_HASH, to_ms(T2)),
                ("alice", "alice", OLD_HASH, to_ms(T1)),
                ("carol-2", "Carol-2", OLD_HASH, to_ms(T3)),
            ],
        )
        self.execute(
            "INSERT INTO messages (id, ts, room, room_key, sender, text, action) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(m.id, to_ms(m.ts), m.room, m.room.lower(), m.sender, m.text, m.action) for m in MESSAGES],
        )
        self.execute(
            "INSERT INTO private (id, ts, sender, sender_key, recipient, recipient_key, text, action, pending)"
            " VALUES (?, ?, 'alice', 'alice', ?, ?, 'hi', ?, ?)",
            [
                (4, to_ms(T2), "Bob", "bob", False, True),
                (6, to_ms(T3), "Bob", "bob", False, True),
                (7, to_ms(T3), "Bob", "bob", False, False),
                (8, to_ms(T3), "alice", "alice", False, True),
            ],
        )

    def run_admin(self, *argv: str, stdin: str = "") -> tuple[int, bytes, str]:
        """
        Run C{chat-admin -d DATA_DIR ARGV...} (L{target}) in-process.

        @return: the exit status, standard output's bytes, standard error's text.
        """
        stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="")
        stderr = io.StringIO()
        status = admin.main([*self.target(), *argv], io.StringIO(stdin), stdout, stderr)
        stdout.flush()
        buffer = stdout.buffer
        assert isinstance(buffer, io.BytesIO)
        return status, buffer.getvalue(), stderr.getvalue()

    def query(self, sql: str) -> list[tuple[object, ...]]:
        """
        Rows of a query on the fixture database.
        """
        with closing(sqlite3.connect(self.path)) as db:
            return db.execute(sql).fetchall()

    def stored_hash(self, key: str) -> str:
        rows = self.query(f"SELECT password FROM accounts WHERE name_key = '{key}'")
        return str(rows[0][0])


class AccountsTests(AdminTestCase):
    """
    C{chat-admin accounts}.
    """

    def test_lists_sorted_with_count(self) -> None:
        """
        Accounts are listed by name ignoring case, with their creation time in UTC, then counted.
        """
        self.make_database()
        self.assertEqual(
            self.run_admin("accounts"),
            (
                0,
                b"alice    2026-11-20 23:59:59 UTC\n"
                b"Bob      2026-11-21 00:00:00 UTC\n"
                b"Carol-2  2026-11-21 14:02:03 UTC\n"
                b"3 accounts\n",
                "",
            ),
        )

    def test_none(self) -> None:
        """
        A database without accounts gives only the count.
        """
        self.create_empty()
        self.assertEqual(self.run_admin("accounts"), (0, b"0 accounts\n", ""))

    def test_one(self) -> None:
        """
        The count of a single account is singular.
        """
        self.create_empty()
        self.execute("INSERT INTO accounts VALUES ('zed', 'Zed', 'x', 0)")
        self.assertEqual(self.run_admin("accounts"), (0, b"Zed  1970-01-01 00:00:00 UTC\n1 account\n", ""))


class ResetPasswordTests(AdminTestCase):
    """
    C{chat-admin reset-password}.
    """

    def fake_getpass(self, *answers: str) -> list[str]:
        """
        Answer the prompts with C{answers} in turn.

        @return: the list the prompts asked are appended to.
        """
        prompts: list[str] = []
        replies = list(answers)

        def getpass(prompt: str = "Password: ") -> str:
            prompts.append(prompt)
            return replies.pop(0)

        self.patch(admin, "getpass", getpass)
        return prompts

    def test_from_stdin(self) -> None:
        """
        --password-stdin takes the first line as the new password; the stored hash verifies it, not the old one.
        """
        self.make_database()
        status, out, err = self.run_admin("reset-password", "--password-stdin", "BOB", stdin="new-secret\r\nmore\n")
        self.assertEqual(
            (status, out, err), (0, b"The password of Bob is reset: it applies at the next /login.\n", "")
        )
        stored = self.stored_hash("bob")
        self.assertTrue(argon2.PasswordHasher().verify(stored, "new-secret"))
        with self.assertRaises(argon2.exceptions.VerifyMismatchError):
            argon2.PasswordHasher().verify(stored, "old-password")
        self.assertEqual(self.stored_hash("alice"), OLD_HASH)

    def test_prompted_twice(self) -> None:
        """
        Without --password-stdin the password is asked twice and set when both answers match.
        """
        self.make_database()
        prompts = self.fake_getpass("s3cret-pass", "s3cret-pass")
        self.assertEqual(
            self.run_admin("reset-password", "alice"),
            (0, b"The password of alice is reset: it applies at the next /login.\n", ""),
        )
        self.assertEqual(prompts, ["New password for alice: ", "The same password again: "])
        self.assertTrue(argon2.PasswordHasher().verify(self.stored_hash("alice"), "s3cret-pass"))

    def test_prompted_mismatch(self) -> None:
        """
        Two different answers fail with one line and status 1, leaving the password as it was.
        """
        self.make_database()
        self.fake_getpass("s3cret-pass", "s3cret-past")
        self.assertEqual(
            self.run_admin("reset-password", "alice"),
            (1, b"", "chat-admin: the passwords differ; nothing changed\n"),
        )
        self.assertEqual(self.stored_hash("alice"), OLD_HASH)

    def test_interrupted_prompt(self) -> None:
        """
        Ctrl-C or end of input at the prompt changes nothing and exits with status 1 without a traceback.
        """
        self.make_database()

        def interrupted(prompt: str = "") -> str:
            raise KeyboardInterrupt()

        self.patch(admin, "getpass", interrupted)
        self.assertEqual(
            self.run_admin("reset-password", "alice"), (1, b"", "\nchat-admin: interrupted; nothing changed\n")
        )
        self.assertEqual(self.stored_hash("alice"), OLD_HASH)

    def test_too_short(self) -> None:
        """
        A password breaking the daemon's length rule is refused with the daemon's message.
        """
        self.make_database()
        self.assertEqual(
            self.run_admin("reset-password", "--password-stdin", "alice", stdin="short\n"),
            (1, b"", "chat-admin: a password is 8 to 256 characters, without spaces\n"),
        )
        self.assertEqual(self.stored_hash("alice"), OLD_HASH)

    def test_spaces_refused(self) -> None:
        """
        A password with a space, which /login could not send, is refused.
        """
        self.make_database()
        self.assertEqual(
            self.run_admin("reset-password", "--password-stdin", "alice", stdin="two words here\n"),
            (1, b"", "chat-admin: a password is 8 to 256 characters, without spaces\n"),
        )
        self.assertEqual(self.stored_hash("alice"), OLD_HASH)

    def test_empty_stdin(self) -> None:
        """
        --password-stdin with nothing on standard input fails.
        """
        self.make_database()
        self.assertEqual(
            self.run_admin("reset-password", "--password-stdin", "alice"),
            (1, b"", "chat-admin: no password on standard input\n"),
        )

    def test_unknown_nick(self) -> None:
        """
        An unknown nick fails before any password is asked.
        """
        self.make_database()
        prompts = self.fake_getpass()
        self.assertEqual(self.run_admin("reset-password", "zed"), (1, b"", "chat-admin: no account zed\n"))
        self.assertEqual(prompts, [])

    def test_deleted_while_prompting(self) -> None:
        """
        An account deleted while its new password is asked for fails with status 1 and is not brought back.
        """
        self.make_database()

        def delete_meanwhile(prompt: str = "") -> str:
            self.execute("DELETE FROM accounts WHERE name_key = 'alice'")
            return "s3cret-pass"

        self.patch(admin, "getpass", delete_meanwhile)
        self.assertEqual(
            self.run_admin("reset-password", "alice"),
            (1, b"", "chat-admin: no account alice: it was deleted meanwhile\n"),
        )
        self.assertEqual(self.query("SELECT name FROM accounts ORDER BY name_key"), [("Bob",), ("Carol-2",)])

    def test_owasp_hash(self) -> None:
        """
        The real hasher stores an argon2id hash with OWASP's parameters that verifies the new password.
        """
        self.patch(admin, "owasp_hasher", owasp_hasher)
        self.make_database()
        status, _, err = self.run_admin("reset-password", "--password-stdin", "alice", stdin="a-long-password\n")
        self.assertEqual((status, err), (0, ""))
        stored = self.stored_hash("alice")
        self.assertTrue(stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored)
        self.assertTrue(argon2.PasswordHasher().verify(stored, "a-long-password"))
        self.assertFalse(owasp_hasher().check_needs_rehash(stored))


class DeleteAccountTests(AdminTestCase):
    """
    C{chat-admin delete-account}.
    """

    def test_deletes_account_and_waiting(self) -> None:
        """
        The account goes with the private messages waiting for it; delivered ones and others' stay.
        """
        self.make_database()
        self.assertEqual(
            self.run_admin("delete-account", "bob"),
            (
                0,
                b"Deleted the account Bob and 2 waiting private messages;"
                b" a running daemon keeps the nick reserved until it restarts.\n",
                "",
            ),
        )
        self.assertEqual(self.query("SELECT name FROM accounts ORDER BY name_key"), [("alice",), ("Carol-2",)])
        self.assertEqual(self.query("SELECT id, pending FROM private ORDER BY id"), [(7, 0), (8, 1)])
        self.assertEqual(self.query("SELECT count(*) FROM messages"), [(4,)])

    def test_singular(self) -> None:
        """
        One waiting message is counted in the singular; none in the plural.
        """
        self.make_database()
        self.assertEqual(
            self.run_admin("delete-account", "ALICE")[1],
            b"Deleted the account alice and 1 waiting private message;"
            b" a running daemon keeps the nick reserved until it restarts.\n",
        )
        self.assertEqual(
            self.run_admin("delete-account", "carol-2")[1],
            b"Deleted the account Carol-2 and 0 waiting private messages;"
            b" a running daemon keeps the nick reserved until it restarts.\n",
        )

    def test_unknown_nick(self) -> None:
        """
        An unknown nick fails with status 1 and deletes nothing.
        """
        self.make_database()
        self.assertEqual(self.run_admin("delete-account", "zed"), (1, b"", "chat-admin: no account zed\n"))
        self.assertEqual(self.query("SELECT count(*) FROM accounts"), [(3,)])
        self.assertEqual(self.query("SELECT count(*) FROM private"), [(4,)])


class AdminRoleTests(AdminTestCase):
    """
    C{chat-admin grant-admin} and C{revoke-admin} (PROTOCOL.md section 10).
    """

    def test_grant_then_revoke(self) -> None:
        """
        grant-admin marks the account (case ignored) in the admins table, revoke-admin removes the mark.
        """
        self.make_database()
        self.assertEqual(
            self.run_admin("grant-admin", "BOB"),
            (0, b"Bob is now a server administrator; a running daemon takes it on SIGHUP or at its next start.\n", ""),
        )
        self.assertEqual(self.query("SELECT name_key FROM admins"), [("bob",)])
        self.assertEqual(self.run_admin("grant-admin", "bob")[0], 0)  # again: still one row
        self.assertEqual(self.query("SELECT name_key FROM admins"), [("bob",)])
        self.assertEqual(
            self.run_admin("revoke-admin", "bob"),
            (0, b"Bob is no longer a server administrator; a running daemon takes it on SIGHUP or at its next start.\n",
             ""),
        )
        self.assertEqual(self.query("SELECT name_key FROM admins"), [])

    def test_grant_unknown_account(self) -> None:
        """
        Granting to a nick without an account fails with status 1 and marks nothing.
        """
        self.make_database()
        self.assertEqual(self.run_admin("grant-admin", "zed"), (1, b"", "chat-admin: no account zed\n"))
        self.assertEqual(self.query("SELECT count(*) FROM admins"), [(0,)])

    def test_revoke_not_admin(self) -> None:
        """
        Revoking from an account that is no administrator fails with status 1.
        """
        self.make_database()
        self.assertEqual(
            self.run_admin("revoke-admin", "alice"), (1, b"", "chat-admin: alice is not a server administrator\n")
        )

    def test_one_nick(self) -> None:
        """
        grant-admin takes exactly one NICK: anything else is a usage error (status 2).
        """
        self.make_database()
        status, _, err = self.run_admin("grant-admin", "bob", "alice")
        self.assertEqual(status, 2)
        self.assertIn("grant-admin takes one NICK", err)


class ExportTests(AdminTestCase):
    """
    C{chat-admin export}.
    """

    @staticmethod
    def lines(*messages: Message) -> bytes:
        """
        The JSON lines expected for C{messages}: render_json's, ending in LF.
        """
        return b"".join(render_json(m).removesuffix(b"\r\n") + b"\n" for m in messages)

    def test_room_history(self) -> None:
        """
        A room's messages, oldest first, one render_json message object per line in UTF-8.
        """
        self.make_database()
        status, out, err = self.run_admin("export", "#lobby")
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(out, self.lines(MESSAGES[0], MESSAGES[2], MESSAGES[3]))
        self.assertEqual(
            json.loads(out.splitlines()[2]),
            {
                "type": "message", "id": 5, "ts": "2026-11-21T14:02:03.120Z", "room": "#Lobby",
                "from": "alice", "text": "caf\u00e9 \u263a \"quoted\" \\ back", "action": False,
            },
        )
        self.assertIn("caf\u00e9 \u263a".encode(), out)

    def test_name_without_hash(self) -> None:
        """
        The room name ignores case and may leave out its #.
        """
        self.make_database()
        self.assertEqual(self.run_admin("export", "LOBBY"), (0, self.lines(MESSAGES[0], MESSAGES[2], MESSAGES[3]), ""))

    def test_since(self) -> None:
        """
        --since keeps the messages from 00:00 UTC of that day on.
        """
        self.make_database()
        self.assertEqual(
            self.run_admin("export", "--since", "2026-11-21", "lobby"), (0, self.lines(MESSAGES[2], MESSAGES[3]), "")
        )

    def test_in_batches(self) -> None:
        """
        A history longer than a batch, or exactly a batch long, is exported whole, in order, without repeats.
        """
        self.make_database()
        for batch in (1, 2, 3):
            self.patch(admin, "_EXPORT_BATCH", batch)
            self.assertEqual(
                self.run_admin("export", "lobby"), (0, self.lines(MESSAGES[0], MESSAGES[2], MESSAGES[3]), ""), batch
            )
            self.assertEqual(
                self.run_admin("export", "--since", "2026-11-21", "lobby"),
                (0, self.lines(MESSAGES[2], MESSAGES[3]), ""), batch,
            )

    def test_since_nothing_after(self) -> None:
        """
        --since after the last message exports nothing, successfully.
        """
        self.make_database()
        self.assertEqual(self.run_admin("export", "--since", "2027-01-01", "#lobby"), (0, b"", ""))

    def test_text_stream(self) -> None:
        """
        A standard output without a byte buffer gets the same lines as text.
        """
        self.make_database()
        stdout, stderr = io.StringIO(), io.StringIO()
        status = admin.main([*self.target(), "export", "other"], io.StringIO(), stdout, stderr)
        self.assertEqual(
            (status, stdout.getvalue(), stderr.getvalue()), (0, self.lines(MESSAGES[1]).decode("utf-8"), "")
        )

    def test_unknown_room(self) -> None:
        """
        A room without any history fails with status 1.
        """
        self.make_database()
        self.assertEqual(self.run_admin("export", "#nope"), (1, b"", "chat-admin: no history for #nope\n"))

    def test_broken_pipe(self) -> None:
        """
        A reader that goes away (| head) ends the export quietly with status 1.
        """
        self.make_database()

        class Closed(io.StringIO):
            def write(self, text: str) -> int:
                raise BrokenPipeError(32, "Broken pipe")

        stderr = io.StringIO()
        self.assertEqual(admin.main([*self.target(), "export", "lobby"], io.StringIO(), Closed(), stderr), 1)
        self.assertEqual(stderr.getvalue(), "")


class DatabaseTests(AdminTestCase):
    """
    The database that cannot be used: every command fails with one line.
    """

    def test_missing(self) -> None:
        """
        A missing database is an error, and no database is created.
        """
        for argv in (["accounts"], ["delete-account", "bob"], ["export", "x"], ["reset-password", "bob"]):
            self.assertEqual(
                self.run_admin(*argv), (1, b"", f"chat-admin: no database at {self.path}\n")
            )
        self.assertEqual(os.listdir(self.data_dir), [])

    def test_missing_data_dir(self) -> None:
        """
        A data directory that does not exist is not created.
        """
        missing = os.path.join(self.data_dir, "nowhere")
        stderr = io.StringIO()
        status = admin.main(["--data-dir", missing, "accounts"], io.StringIO(), io.StringIO(), stderr)
        self.assertEqual(
            (status, stderr.getvalue()), (1, f"chat-admin: no database at {os.path.join(missing, FILENAME)}\n")
        )
        self.assertFalse(os.path.exists(missing))

    def test_newer_schema(self) -> None:
        """
        A database from a newer chat is refused with the schema's message.
        """
        with closing(sqlite3.connect(self.path)) as db:
            db.execute(f"PRAGMA user_version={VERSION + 1}")
        self.assertEqual(
            self.run_admin("accounts"),
            (
                1,
                b"",
                f"chat-admin: the database has schema version {VERSION + 1}, newer than this chat"
                f" (version {VERSION}): upgrade chat\n",
            ),
        )

    def test_not_a_database(self) -> None:
        """
        A file that is not SQLite gives one line, not a traceback.
        """
        with open(self.path, "wb") as f:
            f.write(b"this is not a database, just some text padding it out" * 10)
        status, out, err = self.run_admin("accounts")
        self.assertEqual((status, out, err.count("\n")), (1, b"", 1))
        self.assertTrue(err.startswith("chat-admin: cannot use the database: "), err)

    def test_old_schema_migrated(self) -> None:
        """
        A database at schema version 1 is migrated, then has no accounts.
        """
        with closing(sqlite3.connect(self.path, isolation_level=None)) as db:
            for statement in MIGRATIONS[0]:
                db.execute(statement)
            db.execute("PRAGMA user_version=1")
        self.assertEqual(self.run_admin("accounts"), (0, b"0 accounts\n", ""))
        self.assertEqual(self.query("PRAGMA user_version"), [(VERSION,)])


class SynchronousPoolTests(AdminTestCase):
    """
    L{admin.SynchronousPool}: the store's database work, done at once.
    """

    def test_interaction_committed_at_once(self) -> None:
        """
        An interaction runs before runInteraction returns, and its writes are committed.
        """
        open_database(self.path).close()
        pool = admin.SynchronousPool(self.path)
        self.addCleanup(pool.close)

        def insert(cursor: sqlite3.Cursor, name: str) -> int:
            cursor.execute("INSERT INTO accounts VALUES (?, ?, 'h', 0)", (name.lower(), name))
            return int(cursor.rowcount)

        self.assertEqual(self.successResultOf(pool.runInteraction(insert, "Zed")), 1)
        self.assertEqual(self.query("SELECT name FROM accounts"), [("Zed",)])

    def test_failed_interaction_rolled_back(self) -> None:
        """
        An interaction that raises fails its Deferred with the exception and leaves none of its writes.
        """
        open_database(self.path).close()
        pool = admin.SynchronousPool(self.path)
        self.addCleanup(pool.close)

        def insert(cursor: sqlite3.Cursor, name: str, error: BaseException | None) -> None:
            cursor.execute("INSERT INTO accounts VALUES (?, ?, 'h', 0)", (name.lower(), name))
            if error is not None:
                raise error

        # Each committed insert after a failure would commit what the failure left over.
        self.failureResultOf(pool.runInteraction(insert, "Zed", ValueError("no")), ValueError)
        self.successResultOf(pool.runInteraction(insert, "Amy", None))
        self.assertEqual(self.query("SELECT name FROM accounts ORDER BY name_key"), [("Amy",)])
        self.assertRaises(KeyboardInterrupt, pool.runInteraction, insert, "Yan", KeyboardInterrupt())
        self.successResultOf(pool.runInteraction(insert, "Bea", None))
        self.assertEqual(self.query("SELECT name FROM accounts ORDER BY name_key"), [("Amy",), ("Bea",)])


ROOT_SYNOPSIS = "Usage: chat-admin [options] COMMAND [command options]"
EXPORT_SYNOPSIS = "Usage: chat-admin [options] export [options] ROOM"


class UsageTests(AdminTestCase):
    """
    The command line: help, version and usage errors.
    """

    def assert_usage_error(self, argv: list[str], message: str, synopsis: str) -> None:
        """
        C{argv} exits with status 2, nothing on standard output, and on
        standard error the usage starting with C{synopsis} then C{message}.
        """
        status, out, err = self.run_admin(*argv)
        self.assertEqual((status, out), (2, b""), err)
        self.assertTrue(err.startswith(synopsis + "\n"), err)
        self.assertTrue(err.endswith(f"\nchat-admin: {message}\n"), err)

    def test_no_command(self) -> None:
        """
        A command is required.
        """
        self.assert_usage_error(
            [],
            "give a command: accounts, reset-password, delete-account, export, grant-admin, revoke-admin,"
            " copy-to-postgres",
            ROOT_SYNOPSIS,
        )

    def test_unknown_command(self) -> None:
        """
        An unknown command is a usage error.
        """
        self.assert_usage_error(["frob"], "Unknown command: frob", ROOT_SYNOPSIS)

    def test_unknown_option(self) -> None:
        """
        An unknown option of a command gives that command's usage.
        """
        self.assert_usage_error(
            ["accounts", "--all"], "option --all not recognized", "Usage: chat-admin [options] accounts"
        )

    def test_argument_counts(self) -> None:
        """
        Each command takes exactly its arguments.
        """
        self.assert_usage_error(
            ["accounts", "x"], "Wrong number of arguments.", "Usage: chat-admin [options] accounts"
        )
        self.assert_usage_error(
            ["reset-password"], "reset-password takes one NICK",
            "Usage: chat-admin [options] reset-password [options] NICK",
        )
        self.assert_usage_error(
            ["delete-account", "a", "b"], "delete-account takes one NICK",
            "Usage: chat-admin [options] delete-account NICK",
        )
        self.assert_usage_error(["export"], "export takes one ROOM", EXPORT_SYNOPSIS)
        self.assert_usage_error(
            ["copy-to-postgres"], "copy-to-postgres takes one DSN", "Usage: chat-admin [options] copy-to-postgres DSN"
        )

    def test_copy_with_postgres_option(self) -> None:
        """
        copy-to-postgres takes its target after the command; --postgres with it is a usage error.
        """
        self.assert_usage_error(
            ["--postgres", "dbname=x", "copy-to-postgres", "dbname=y"],
            "copy-to-postgres reads --data-dir's SQLite database: give the PostgreSQL database"
            " after the command, not with --postgres",
            "Usage: chat-admin [options] copy-to-postgres DSN",
        )

    def test_bad_room(self) -> None:
        """
        A room name the daemon would refuse is a usage error.
        """
        self.assert_usage_error(
            ["export", "no room"], "'no room': a room name is # and 1 to 32 letters, digits, _ or -",
            EXPORT_SYNOPSIS,
        )

    def test_bad_since(self) -> None:
        """
        --since takes a day as YYYY-MM-DD.
        """
        self.assert_usage_error(
            ["export", "--since", "yesterday", "x"], "--since takes a day as YYYY-MM-DD (UTC), not 'yesterday'",
            EXPORT_SYNOPSIS,
        )

    def test_help(self) -> None:
        """
        --help prints the commands and the note on the running daemon, with status 0.
        """
        status, out, err = self.run_admin("--help")
        self.assertEqual((status, err), (0, ""))
        text = " ".join(out.decode().split())
        self.assertTrue(text.startswith("Usage: chat-admin [options] COMMAND [command options] Options:"), text)
        self.assertIn(
            "a deleted account's nick stays reserved until the daemon restarts,"
            " while a reset password applies at the account's next /login.",
            text,
        )
        for command in ("accounts", "reset-password", "delete-account", "export", "copy-to-postgres"):
            self.assertIn(f" {command} ", text)
        self.assertIn(" --postgres= ", text)

    def test_command_help(self) -> None:
        """
        COMMAND --help prints that command's usage, with status 0.
        """
        status, out, err = self.run_admin("export", "--help")
        self.assertEqual((status, err), (0, ""))
        self.assertTrue(out.startswith(b"Usage: chat-admin [options] export [options] ROOM\n"), out)
        self.assertIn(b"--since=", out)

    def test_version(self) -> None:
        """
        --version names chat's version.
        """
        self.assertEqual(self.run_admin("--version"), (0, f"chat-admin (chat {__version__})\n".encode(), ""))


class ProcessTests(AdminTestCase):
    """
    C{chat-admin} as a process: the installed console script, or
    C{python -m chat.admin} when it is not installed.
    """

    def command(self) -> list[str]:
        script = Path(sys.executable).parent / "chat-admin"
        if script.exists():
            return [str(script)]
        return [sys.executable, "-m", "chat.admin"]

    def spawn(self, *argv: str) -> subprocess.CompletedProcess[bytes]:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="ascii")
        return subprocess.run(
            [*self.command(), *self.target(), *argv],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
        )

    def test_process(self) -> None:
        """
        The process lists accounts, exports UTF-8 JSON lines whatever the locale, and fails with status 1 and one line.
        """
        self.make_database()
        done = self.spawn("accounts")
        self.assertEqual((done.returncode, done.stderr), (0, b""))
        self.assertTrue(done.stdout.endswith(b"\n3 accounts\n"), done.stdout)
        done = self.spawn("export", "lobby")
        self.assertEqual(
            (done.returncode, done.stdout, done.stderr),
            (0, ExportTests.lines(MESSAGES[0], MESSAGES[2], MESSAGES[3]), b""),
        )
        done = self.spawn("delete-account", "zed")
        self.assertEqual((done.returncode, done.stdout, done.stderr), (1, b"", b"chat-admin: no account zed\n"))


class CopyRefusedTests(AdminTestCase):
    """
    C{chat-admin copy-to-postgres} refusing before it reaches PostgreSQL
    (the copy itself: L{tests.test_admin_postgres}).
    """

    UNREACHABLE = "host=127.0.0.1 port=1 dbname=chat user=chat password=hunter22 connect_timeout=2"

    def test_no_database(self) -> None:
        """
        A data directory without a database is refused with one line, and nothing is created in it.
        """
        self.assertEqual(
            self.run_admin("copy-to-postgres", self.UNREACHABLE),
            (1, b"", f"chat-admin: no database at {self.path}\n"),
        )
        self.assertEqual(os.listdir(self.data_dir), [])

    def test_daemon_running(self) -> None:
        """
        A data directory locked by a running daemon is refused with one line, before PostgreSQL is reached.
        """
        self.make_database()
        fd = os.open(self.data_dir, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a daemon holds (chat.datadir.DataDirectory)
        self.assertEqual(
            self.run_admin("copy-to-postgres", self.UNREACHABLE),
            (
                1, b"",
                f"chat-admin: cannot copy {self.data_dir}: another chat daemon is using it (stop that one first)\n",
            ),
        )

    def test_unreachable(self) -> None:
        """
        A PostgreSQL server that cannot be reached gives one line naming the database, without its password.
        """
        self.make_database()
        status, out, err = self.run_admin("copy-to-postgres", self.UNREACHABLE)
        self.assertEqual((status, out, err.count("\n")), (1, b"", 1), err)
        self.assertTrue(err.startswith("chat-admin: cannot use the PostgreSQL database chat on 127.0.0.1:1: "), err)
        self.assertNotIn("hunter22", err)


class DeletedNickTests(SQLiteStoreTestCase):
    """
    What a running daemon does with the nick of an account deleted by C{chat-admin delete-account}.
    """

    def test_new_account_gets_no_stale_messages(self) -> None:
        """
        Private messages stored for a deleted account's nick are not delivered to whoever registers it next.
        """
        # A running daemon still counts a deleted nick as registered, so /msg to it is stored as waiting.
        stale = Private(9, T3, "carol", "Zed", "for the old Zed only", offline=True)
        self.store.add(stale)
        self.settle()
        self.store.create_account("zed", OLD_HASH, T3.timestamp())
        self.settle()
        found: list[Private] = []
        read = self.store.waiting("zed").addCallback(found.extend)
        self.settle()
        self.successResultOf(read)
        self.assertEqual(found, [])

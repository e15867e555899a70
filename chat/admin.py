# -*- test-case-name: tests.test_admin -*-
"""
C{chat-admin}: the operator's tool for the daemon's database (list
accounts, reset a password, delete an account, export a room's history as
JSON lines, grant or revoke server administrators), run from a shell as C{chat-admin} or C{python -m chat.admin}:
the SQLite database of a data directory (C{--data-dir}), or with
C{--postgres DSN} the PostgreSQL database of a cluster (PROTOCOL.md section
13). C{copy-to-postgres} moves a single daemon's SQLite data into an empty
PostgreSQL database (L{chat.migrate}).

It opens the database with L{chat.sqlite_store.open_store} or
L{open_postgres}, never creating one, and works through the store's
interface like the daemon, but synchronously, without a reactor: the store
runs on a L{SynchronousPool} (SQLite) or a L{SynchronousPostgresPool}.
SQLite's write-ahead log and busy timeout, and PostgreSQL's transactions,
let it run while the daemon runs. Every failure is one line on standard
error and exit status 1; a command line it cannot parse gives the usage and
status 2.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from getpass import getpass
from typing import Any, NoReturn, Protocol, TextIO, TypeVar

import psycopg
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.python.failure import Failure
from typing_extensions import override

from chat import __version__, errors
from chat.accounts import check_password, owasp_hasher
from chat.domain import room_name
from chat.migrate import CopyRefused, connect, copy_to_postgres, one_line
from chat.pooled_store import Contents
from chat.postgres_store import PostgresStore, describe_database, migrate
from chat.render import CRLF, render_json
from chat.schema import BUSY_TIMEOUT, FILENAME, DatabaseError, configure, from_ms
from chat.sqlite_store import open_store
from chat.storage import IStore

PROGRAM = "chat-admin"

EX_OK = 0
EX_FAILED = 1
EX_USAGE = 2

_EXPORT_BATCH = 1000
"""Messages read per transaction by L{export}: memory stays bounded, and the daemon's writes interleave."""

_T = TypeVar("_T")


class Failed(Exception):
    """
    A command cannot be done; the message is one line for the operator.
    """


class _Options(usage.Options):
    """
    What every command line of C{chat-admin} shares: C{--version}.
    """

    @override
    def opt_version(self) -> NoReturn:
        """
        Display the version of chat and exit.
        """
        print(f"{PROGRAM} (chat {__version__})")
        sys.exit(0)


class _Command(_Options):
    """
    The options and arguments of one command, after the global options.

    @cvar argument: the key of the command's one argument (C{"nick"},
        C{"dsn"}), named in L{synopsis}; C{""} for a command without one.
    """

    synopsis = ""
    argument = ""

    @override
    def parseArgs(self, *args: str) -> None:
        if not self.argument:
            super().parseArgs(*args)
            return
        if len(args) != 1:
            command = self.parent.subCommand if self.parent is not None else "this command"
            raise usage.UsageError(f"{command} takes one {self.argument.upper()}")
        self[self.argument] = args[0]

    @override
    def getSynopsis(self) -> str:
        command = "COMMAND" if self.parent is None else self.parent.subCommand
        return f"Usage: {PROGRAM} [options] {command} {self.synopsis}".rstrip()


class AccountsOptions(_Command):
    """
    C{chat-admin accounts}.
    """

    longdesc = "Lists every account, sorted by name ignoring case, with the time it was created (UTC)."


class ResetPasswordOptions(_Command):
    """
    C{chat-admin reset-password [--password-stdin] NICK}.
    """

    synopsis = "[options] NICK"
    argument = "nick"
    longdesc = (
        "Gives the account NICK (case does not matter) a new password, asked twice at the terminal, "
        "or read from the first line of standard input with --password-stdin. It takes effect at the "
        "account's next /login; sessions logged in now stay logged in."
    )
    optFlags = [  # noqa: N815 (usage.Options reads this name)
        ["password-stdin", None, "Read the new password from the first line of standard input, without asking."],
    ]



class DeleteAccountOptions(_Command):
    """
    C{chat-admin delete-account NICK}.
    """

    synopsis = "NICK"
    argument = "nick"
    longdesc = (
        "Deletes the account NICK (case does not matter) and the private messages still waiting for it. "
        "Its room and delivered private messages stay in the history. A running daemon keeps the nick "
        "reserved (and keeps storing private messages sent to it) until it restarts."
    )



class GrantAdminOptions(_Command):
    """
    C{chat-admin grant-admin NICK}.
    """

    synopsis = "NICK"
    argument = "nick"
    longdesc = (
        "Makes the account NICK (case does not matter) a server administrator: an operator of every room, "
        "who may also /kill, /announce and /stats. A running daemon takes it on SIGHUP or at its next start."
    )



class RevokeAdminOptions(_Command):
    """
    C{chat-admin revoke-admin NICK}.
    """

    synopsis = "NICK"
    argument = "nick"
    longdesc = (
        "Makes the account NICK (case does not matter) no longer a server administrator. "
        "A running daemon takes it on SIGHUP or at its next start."
    )



class ExportOptions(_Command):
    """
    C{chat-admin export [--since YYYY-MM-DD] ROOM}.
    """

    synopsis = "[options] ROOM"
    longdesc = (
        "Writes the history of ROOM (case does not matter, the # may be left out) to standard output, "
        "oldest first, as JSON lines in UTF-8: each line is a 'message' object of the protocol "
        "(id, ts, room, from, text, action)."
    )
    optParameters = [  # noqa: N815 (usage.Options reads this name)
        ["since", None, None, "Only messages from this day on, as YYYY-MM-DD (UTC)."],
    ]

    @override
    def parseArgs(self, *args: str) -> None:
        if len(args) != 1:
            raise usage.UsageError("export takes one ROOM")
        try:
            self["room"] = room_name(args[0])
        except errors.BadArguments as e:
            raise usage.UsageError(f"{args[0]!r}: {e}") from None

    @override
    def postOptions(self) -> None:
        since = self["since"]
        if since is not None:
            try:
                day = datetime.strptime(since, "%Y-%m-%d")
            except ValueError:
                raise usage.UsageError(f"--since takes a day as YYYY-MM-DD (UTC), not {since!r}") from None
            self["since"] = day.replace(tzinfo=timezone.utc)


class CopyToPostgresOptions(_Command):
    """
    C{chat-admin copy-to-postgres DSN}.
    """

    synopsis = "DSN"
    argument = "dsn"
    longdesc = (
        "Copies the SQLite database of --data-dir (history, waiting private messages, accounts with their "
        "passwords, topics, operators, administrators, bans, room settings, device keys, file offers) into the "
        "empty PostgreSQL database DSN (a libpq connection string or URI; a password is better in PGPASSWORD or "
        "~/.pgpass), keeping every id, in one transaction, then says what it copied. Stop the daemon first. "
        "Then 'twistd chat --postgres DSN --data-dir DIR' serves the same chat: the offered files stay in "
        "the data directory's spool/. A database that is not empty is refused."
    )



class Options(_Options):
    """
    The command line of C{chat-admin}: global options, then a command.
    """

    synopsis = f"Usage: {PROGRAM} [options] COMMAND [command options]"
    longdesc = (
        "Looks after the chat daemon's database (" + FILENAME + " in the data directory); "
        f"'{PROGRAM} COMMAND --help' describes each command. It may run while the daemon runs. "
        "The daemon reads the accounts' nicks when it starts: a deleted account's nick stays reserved "
        "until the daemon restarts, while a reset password applies at the account's next /login. "
        "With --postgres it looks after the PostgreSQL database of a cluster instead."
    )
    optParameters = [  # noqa: N815 (usage.Options reads this name)
        ["data-dir", "d", "chat-data",
         "The daemon's data directory, as given to 'twistd chat --data-dir'."],
        ["postgres", None, None,
         "The PostgreSQL database (a libpq connection string or URI), as given to 'twistd chat --postgres', "
         "instead of --data-dir's SQLite database."],
    ]
    subCommands = [  # noqa: N815 (usage.Options reads this name)
        ("accounts", None, AccountsOptions, "List the accounts."),
        ("reset-password", None, ResetPasswordOptions, "Set a new password for an account."),
        ("delete-account", None, DeleteAccountOptions, "Delete an account and its waiting private messages."),
        ("export", None, ExportOptions, "Write a room's history as JSON lines."),
        ("grant-admin", None, GrantAdminOptions, "Make an account a server administrator."),
        ("revoke-admin", None, RevokeAdminOptions, "Make an account no longer a server administrator."),
        ("copy-to-postgres", None, CopyToPostgresOptions,
         "Copy --data-dir's SQLite database into an empty PostgreSQL database."),
    ]

    @override
    def postOptions(self) -> None:
        if self.subCommand is None:
            raise usage.UsageError("give a command: " + ", ".join(c[0] for c in self.subCommands))
        if self.subCommand == "copy-to-postgres" and self["postgres"] is not None:
            raise usage.UsageError(
                "copy-to-postgres reads --data-dir's SQLite database: give the PostgreSQL database"
                " after the command, not with --postgres"
            )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class _Connection(Protocol):
    """What L{SynchronousPool} uses of a DB-API connection (C{sqlite3}'s or psycopg's)."""

    def cursor(self) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


class SynchronousPool:
    """
    The L{chat.sqlite_store.Pool} of C{chat-admin}, which has no reactor: each
    interaction runs at once on the calling thread, in a transaction of its
    own as in adbapi's C{ConnectionPool}, on a connection set up like the
    daemon's. So the store's L{Deferred}s have fired by the time its
    methods return (see L{_now}).
    """

    def __init__(self, path: str) -> None:
        """
        Connect to the database at C{path}, which L{open_store} has checked
        and migrated.

        @raise DatabaseError: it cannot be configured.
        """
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
        self._connection: _Connection = connection
        try:
            configure(connection)
        except BaseException:
            self._connection.close()
            raise

    def runInteraction(self, interaction: Callable[..., Any], *args: Any) -> Deferred[Any]:  # noqa: N802
        """
        Call C{interaction(cursor, *args)} now, then commit; roll back if it
        raises.

        @return: a L{Deferred} that has fired with the result, or failed with
            the exception (an interrupt is raised, after the rollback).
        """
        cursor = self._connection.cursor()
        try:
            result = interaction(cursor, *args)
            self._connection.commit()
        except Exception:
            self._connection.rollback()
            return fail()
        except BaseException:
            self._connection.rollback()
            raise
        finally:
            cursor.close()
        return succeed(result)

    def close(self) -> None:
        """
        Close the connection.
        """
        self._connection.close()


class SynchronousPostgresPool(SynchronousPool):
    """
    L{SynchronousPool} for PostgreSQL (C{chat-admin --postgres}): one psycopg
    connection; each interaction runs at once on the calling thread, in a
    transaction of its own, committed when it returns, rolled back when it
    raises.
    """

    def __init__(self, dsn: str) -> None:  # not SynchronousPool's: a DSN, not a path
        """
        Connect to the database of C{dsn} (blocking).

        @raise DatabaseError: it cannot be reached (one line, no password).
        """
        self._connection = connect(dsn)


def _read_postgres(transaction: Any, name: str) -> Contents:
    """
    Migrate the schema of a database that has one, and read what a store
    keeps in memory.

    @raise Failed: the database has no chat schema (C{chat-admin} never
        creates one).
    """
    transaction.execute("SELECT to_regclass('schema_version') IS NOT NULL")
    if not transaction.fetchone()[0]:
        raise Failed(
            f"no chat database in the {name}: a daemon creates it at its first start"
            " (twistd chat --postgres DSN), or copy-to-postgres fills it"
        )
    migrate(transaction)
    transaction.execute(
        "SELECT greatest((SELECT max(id) FROM messages), (SELECT max(id) FROM private),"
        " (SELECT max(id) FROM offers), 0)"
    )
    return Contents.read(transaction, int(transaction.fetchone()[0]))


def open_postgres(dsn: str) -> PostgresStore:
    """
    Open the PostgreSQL database of C{dsn} for C{chat-admin --postgres}: a
    L{PostgresStore} on a L{SynchronousPostgresPool}, its schema migrated
    (never created). It reserves no ids: no command makes a message.

    @raise DatabaseError: the database cannot be reached or used, or is
        newer than this code (one line, no password).
    @raise Failed: it has no chat schema.
    @raise psycopg.Error: a statement failed.
    """
    pool = SynchronousPostgresPool(dsn)
    name = describe_database(dsn)
    try:
        contents = _now(pool.runInteraction(_read_postgres, name))
    except BaseException:
        pool.close()
        raise
    return PostgresStore(pool, Clock(), contents, reserved=contents.last_id, block=1, name=name)


def copy_data_dir(data_dir: str, dsn: str, stdout: TextIO) -> None:
    """
    C{chat-admin copy-to-postgres}: L{copy_to_postgres}, then what was
    copied, one count per line, and how to start the daemon on it.

    @raise CopyRefused: a daemon runs on C{data_dir}, or the PostgreSQL
        database is not empty.
    @raise DatabaseError: either database cannot be used.
    """
    copied = copy_to_postgres(data_dir, dsn)
    stdout.write(f"Copied {copied.source} into the {copied.database}:\n")
    for line in copied.lines():
        stdout.write(f"  {line}\n")
    stdout.write(
        f"Message ids continue above {copied.last_id}. Start the daemon with"
        f" --postgres DSN --data-dir {os.path.abspath(data_dir)} (the offered files stay in its spool/).\n"
    )


def _now(deferred: Deferred[_T]) -> _T:
    """
    The result of one of the store's L{Deferred}s, which have all fired
    when the store runs on a L{SynchronousPool}. (Grouped writes, such as
    L{IStore.add}, would wait for a clock that nothing advances here; no
    command makes one.)

    @raise Exception: what the store's call failed with.
    """
    outcome: list[_T | Failure] = []
    deferred.addBoth(outcome.append)
    if not outcome:
        raise RuntimeError("the store did not answer at once")
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result


def list_accounts(store: IStore, stdout: TextIO) -> None:
    """
    Write one line per account, sorted by name ignoring case, then a count::

        alice  2026-11-21 14:02:03 UTC
        Bob    2026-11-22 09:00:00 UTC
        2 accounts
    """
    records = _now(store.accounts())
    width = max((len(record.name) for record in records), default=0)
    for record in records:
        created = from_ms(round(record.created * 1000))
        stdout.write(f"{record.name:<{width}}  {created:%Y-%m-%d %H:%M:%S} UTC\n")
    stdout.write(_plural(len(records), "account") + "\n")


def _new_password(name: str, from_stdin: bool, stdin: TextIO) -> str:
    if from_stdin:
        line = stdin.readline()
        if not line:
            raise Failed("no password on standard input")
        password = line.rstrip("\r\n")
    else:
        password = getpass(f"New password for {name}: ")
        if getpass("The same password again: ") != password:
            raise Failed("the passwords differ; nothing changed")
    check_password(password)
    return password


def reset_password(store: IStore, nick: str, from_stdin: bool, stdin: TextIO, stdout: TextIO) -> None:
    """
    Replace the password of the account C{nick} (ignoring case) with one
    asked twice with L{getpass}, or read from the first line of C{stdin};
    it is hashed with L{owasp_hasher}, as the daemon hashes.

    @raise Failed: no such account, the two passwords differ, or no
        password on C{stdin}.
    @raise errors.BadArguments: the password breaks the daemon's rules.
    """
    record = _now(store.account(nick))
    if record is None:
        raise Failed(f"no account {nick}")
    encoded = owasp_hasher().hash(_new_password(record.name, from_stdin, stdin))
    if not _now(store.set_password(record.name, encoded)):
        raise Failed(f"no account {nick}: it was deleted meanwhile")
    stdout.write(f"The password of {record.name} is reset: it applies at the next /login.\n")


def delete_account(store: IStore, nick: str, stdout: TextIO) -> None:
    """
    Delete the account C{nick} (ignoring case) and the private messages
    waiting for it, in one transaction.

    @raise Failed: no such account.
    """
    deleted = _now(store.delete_account(nick))
    if deleted is None:
        raise Failed(f"no account {nick}")
    record, waiting = deleted
    stdout.write(
        f"Deleted the account {record.name} and {_plural(waiting, 'waiting private message')};"
        " a running daemon keeps the nick reserved until it restarts.\n"
    )


def set_admin(store: IStore, nick: str, admin: bool, stdout: TextIO) -> None:
    """
    Make the account C{nick} (ignoring case) a server administrator, or no
    longer one (PROTOCOL.md section 10).

    @raise Failed: no such account (granting), or it is not an administrator
        (revoking).
    """
    record = _now(store.account(nick))
    if admin and record is None:
        raise Failed(f"no account {nick}")
    name = nick if record is None else record.name
    admins = _now(store.read_moderation()).admins
    if not admin and name.lower() not in admins:
        raise Failed(f"{name} is not a server administrator")
    _now(store.set_admin(name, admin))
    what = "now a server administrator" if admin else "no longer a server administrator"
    stdout.write(f"{name} is {what}; a running daemon takes it on SIGHUP or at its next start.\n")


def _write_bytes(stream: TextIO, data: bytes) -> None:
    binary = getattr(stream, "buffer", None)
    if binary is None:
        stream.write(data.decode("utf-8"))
    else:
        binary.write(data)


def export(store: IStore, room: str, since: datetime | None, stdout: TextIO) -> None:
    """
    Write the history of C{room} (ignoring case), oldest first, one
    C{message} object of PROTOCOL.md section 5 per line, as
    L{chat.render.render_json} makes it, ending in LF. Messages are read
    L{_EXPORT_BATCH} at a time, not gathered in memory.

    @param since: only messages at or after this aware time.
    @raise Failed: the room has no history at all.
    """
    stdout.flush()  # the text layer's buffer before the bytes
    end = CRLF.encode("ascii")
    count = after = 0
    while True:
        batch = _now(store.messages(room, since, after, _EXPORT_BATCH))
        for message in batch:
            _write_bytes(stdout, render_json(message).removesuffix(end) + b"\n")
        count += len(batch)
        if len(batch) < _EXPORT_BATCH:
            break
        after = batch[-1].id
    if not count and since is None:
        raise Failed(f"no history for {room}")


def _run(options: Options, stdin: TextIO, stdout: TextIO) -> None:
    command, sub = options.subCommand, options.subOptions
    if command == "copy-to-postgres":
        copy_data_dir(options["data-dir"], sub["dsn"], stdout)
        return
    store: IStore
    if options["postgres"] is not None:
        store = open_postgres(options["postgres"])
    else:
        store = open_store(options["data-dir"], Clock(), create=False, make_pool=SynchronousPool)
    try:
        if command == "accounts":
            list_accounts(store, stdout)
        elif command == "reset-password":
            reset_password(store, sub["nick"], bool(sub["password-stdin"]), stdin, stdout)
        elif command == "delete-account":
            delete_account(store, sub["nick"], stdout)
        elif command == "export":
            export(store, sub["room"], sub["since"], stdout)
        elif command in ("grant-admin", "revoke-admin"):
            set_admin(store, sub["nick"], command == "grant-admin", stdout)
    finally:
        _now(store.close())


def _quiet(stdout: TextIO) -> None:
    # The reader went away (`chat-admin export ... | head`): stop without a
    # word, and keep Python from complaining when it flushes at exit.
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())


def main(
    argv: Sequence[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """
    Run C{chat-admin}: the console script's entry point.

    @param argv: the arguments, without the program name; C{sys.argv[1:]}
        if C{None}.
    @param stdin: read by C{reset-password --password-stdin}.
    @param stdout: where results go (C{export} writes UTF-8 to its
        C{buffer} when it has one).
    @param stderr: where errors go, one line each, and the usage.
    @return: the exit status: 0 done, 1 failed, 2 bad command line.
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        return _main(list(sys.argv[1:] if argv is None else argv), stdin, stdout, stderr)
    except BrokenPipeError:
        _quiet(stdout)
        return EX_FAILED


def _main(argv: list[str], stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    options = Options()
    try:
        with contextlib.redirect_stdout(stdout):
            options.parseOptions(argv)
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else EX_OK
    except usage.UsageError as e:
        parser = getattr(options, "subOptions", options)
        stderr.write(f"{parser}\n{PROGRAM}: {e}\n")
        return EX_USAGE
    try:
        _run(options, stdin, stdout)
        stdout.flush()
    except BrokenPipeError:
        raise
    except (Failed, DatabaseError, CopyRefused, errors.BadArguments) as e:
        stderr.write(f"{PROGRAM}: {e}\n")
        return EX_FAILED
    except sqlite3.Error as e:
        stderr.write(f"{PROGRAM}: database error: {e}\n")
        return EX_FAILED
    except psycopg.Error as e:
        stderr.write(f"{PROGRAM}: database error: {one_line(e)}\n")
        return EX_FAILED
    except OSError as e:
        stderr.write(f"{PROGRAM}: {e}\n")
        return EX_FAILED
    except (KeyboardInterrupt, EOFError):
        # After a password prompt: end its line first.
        stderr.write(f"\n{PROGRAM}: interrupted; nothing changed\n")
        return EX_FAILED
    except Exception as e:  # a bug: still one line, as promised
        stderr.write(f"{PROGRAM}: unexpected error: {type(e).__name__}: {e}\n")
        return EX_FAILED
    return EX_OK


if __name__ == "__main__":
    sys.exit(main())

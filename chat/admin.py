# -*- test-case-name: tests.test_admin -*-
"""
C{chat-admin}: the operator's tool for the daemon's SQLite database (list
accounts, reset a password, delete an account, export a room's history as
JSON lines), run from a shell as C{chat-admin} or C{python -m chat.admin}.

It opens the database with L{chat.schema.open_database}, never creating
one, and works synchronously: SQLite's write-ahead log and busy timeout let
it run while the daemon runs. Every failure is one line on standard error
and exit status 1; a command line it cannot parse gives the usage and
status 2.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from getpass import getpass
from typing import NoReturn, TextIO

from twisted.python import usage
from typing_extensions import override

from chat import __version__, errors
from chat.accounts import check_password, owasp_hasher
from chat.domain import room_name
from chat.events import Message
from chat.render import CRLF, render_json
from chat.schema import FILENAME, DatabaseError, from_ms, open_database, path_in, to_ms

PROGRAM = "chat-admin"

EX_OK = 0
EX_FAILED = 1
EX_USAGE = 2


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
    """

    synopsis = ""

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
    longdesc = (
        "Gives the account NICK (case does not matter) a new password, asked twice at the terminal, "
        "or read from the first line of standard input with --password-stdin. It takes effect at the "
        "account's next /login; sessions logged in now stay logged in."
    )
    optFlags = [
        ["password-stdin", None, "Read the new password from the first line of standard input, without asking."],
    ]

    @override
    def parseArgs(self, *args: str) -> None:
        if len(args) != 1:
            raise usage.UsageError("reset-password takes one NICK")
        self["nick"] = args[0]


class DeleteAccountOptions(_Command):
    """
    C{chat-admin delete-account NICK}.
    """

    synopsis = "NICK"
    longdesc = (
        "Deletes the account NICK (case does not matter) and the private messages still waiting for it. "
        "Its room and delivered private messages stay in the history. A running daemon keeps the nick "
        "reserved (and keeps storing private messages sent to it) until it restarts."
    )

    @override
    def parseArgs(self, *args: str) -> None:
        if len(args) != 1:
            raise usage.UsageError("delete-account takes one NICK")
        self["nick"] = args[0]


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
    optParameters = [
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


class Options(_Options):
    """
    The command line of C{chat-admin}: global options, then a command.
    """

    synopsis = f"Usage: {PROGRAM} [options] COMMAND [command options]"
    longdesc = (
        "Looks after the chat daemon's database (" + FILENAME + " in the data directory); "
        f"'{PROGRAM} COMMAND --help' describes each command. It may run while the daemon runs. "
        "The daemon reads the accounts' nicks when it starts: a deleted account's nick stays reserved "
        "until the daemon restarts, while a reset password applies at the account's next /login."
    )
    optParameters = [
        ["data-dir", "d", "chat-data",
         "The daemon's data directory, as given to 'twistd chat --data-dir'."],
    ]
    subCommands = [
        ("accounts", None, AccountsOptions, "List the accounts."),
        ("reset-password", None, ResetPasswordOptions, "Set a new password for an account."),
        ("delete-account", None, DeleteAccountOptions, "Delete an account and its waiting private messages."),
        ("export", None, ExportOptions, "Write a room's history as JSON lines."),
    ]

    @override
    def postOptions(self) -> None:
        if self.subCommand is None:
            raise usage.UsageError("give a command: " + ", ".join(c[0] for c in self.subCommands))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def list_accounts(connection: sqlite3.Connection, stdout: TextIO) -> None:
    """
    Write one line per account, sorted by name ignoring case, then a count::

        alice  2026-11-21 14:02:03 UTC
        Bob    2026-11-22 09:00:00 UTC
        2 accounts
    """
    rows = connection.execute("SELECT name, created FROM accounts ORDER BY name_key").fetchall()
    width = max((len(name) for name, _ in rows), default=0)
    for name, created in rows:
        stdout.write(f"{name:<{width}}  {from_ms(created):%Y-%m-%d %H:%M:%S} UTC\n")
    stdout.write(_plural(len(rows), "account") + "\n")


def _account_name(connection: sqlite3.Connection, nick: str) -> str:
    row = connection.execute("SELECT name FROM accounts WHERE name_key = ?", (nick.lower(),)).fetchone()
    if row is None:
        raise Failed(f"no account {nick}")
    return str(row[0])


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


def reset_password(
    connection: sqlite3.Connection, nick: str, from_stdin: bool, stdin: TextIO, stdout: TextIO
) -> None:
    """
    Replace the password of the account C{nick} (ignoring case) with one
    asked twice with L{getpass}, or read from the first line of C{stdin};
    it is hashed with L{owasp_hasher}, as the daemon hashes.

    @raise Failed: no such account, the two passwords differ, or no
        password on C{stdin}.
    @raise errors.BadArguments: the password breaks the daemon's rules.
    """
    name = _account_name(connection, nick)
    encoded = owasp_hasher().hash(_new_password(name, from_stdin, stdin))
    changed = connection.execute("UPDATE accounts SET password = ? WHERE name_key = ?", (encoded, name.lower()))
    if not changed.rowcount:
        raise Failed(f"no account {nick}: it was deleted meanwhile")
    stdout.write(f"The password of {name} is reset: it applies at the next /login.\n")


def delete_account(connection: sqlite3.Connection, nick: str, stdout: TextIO) -> None:
    """
    Delete the account C{nick} (ignoring case) and the private messages
    waiting for it, in one transaction.

    @raise Failed: no such account.
    """
    key = nick.lower()
    connection.execute("BEGIN IMMEDIATE")
    try:
        row = connection.execute("SELECT name FROM accounts WHERE name_key = ?", (key,)).fetchone()
        if row is None:
            raise Failed(f"no account {nick}")
        connection.execute("DELETE FROM accounts WHERE name_key = ?", (key,))
        waiting = connection.execute("DELETE FROM private WHERE pending AND recipient_key = ?", (key,)).rowcount
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    stdout.write(
        f"Deleted the account {row[0]} and {_plural(waiting, 'waiting private message')};"
        " a running daemon keeps the nick reserved until it restarts.\n"
    )


def _write_bytes(stream: TextIO, data: bytes) -> None:
    binary = getattr(stream, "buffer", None)
    if binary is None:
        stream.write(data.decode("utf-8"))
    else:
        binary.write(data)


def export(connection: sqlite3.Connection, room: str, since: datetime | None, stdout: TextIO) -> None:
    """
    Write the history of C{room} (ignoring case), oldest first, one
    C{message} object of PROTOCOL.md section 5 per line, as
    L{chat.render.render_json} makes it, ending in LF. Rows are streamed,
    not gathered in memory.

    @param since: only messages at or after this aware time.
    @raise Failed: the room has no history at all.
    """
    key = room.lower()
    after = -(2**63) if since is None else to_ms(since)
    stdout.flush()  # the text layer's buffer before the bytes
    count = 0
    rows = connection.execute(
        "SELECT id, ts, room, sender, text, action FROM messages WHERE room_key = ? AND ts >= ? ORDER BY id",
        (key, after),
    )
    end = CRLF.encode("ascii")
    for id_, ts, spelled, sender, text, action in rows:
        message = Message(id_, from_ms(ts), spelled, sender, text, bool(action))
        _write_bytes(stdout, render_json(message).removesuffix(end) + b"\n")
        count += 1
    if not count and since is None:
        raise Failed(f"no history for {room}")


def _run(options: Options, stdin: TextIO, stdout: TextIO) -> None:
    command, sub = options.subCommand, options.subOptions
    connection = open_database(path_in(options["data-dir"]), create=False)
    try:
        if command == "accounts":
            list_accounts(connection, stdout)
        elif command == "reset-password":
            reset_password(connection, sub["nick"], bool(sub["password-stdin"]), stdin, stdout)
        elif command == "delete-account":
            delete_account(connection, sub["nick"], stdout)
        elif command == "export":
            export(connection, sub["room"], sub["since"], stdout)
    finally:
        connection.close()


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
    except (Failed, DatabaseError, errors.BadArguments) as e:
        stderr.write(f"{PROGRAM}: {e}\n")
        return EX_FAILED
    except sqlite3.Error as e:
        stderr.write(f"{PROGRAM}: database error: {e}\n")
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

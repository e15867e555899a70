"""
Real PostgreSQL and Redis servers for the tests of the cluster (issue 23),
each started once per test process in a temporary directory on a free
loopback port, and emptied between tests.

L{postgres} and L{redis} start their server on first use and return the same
one afterwards; it stops when the process exits (C{atexit}, and the kernel's
parent-death signal if the test process is killed). When a server cannot
start they raise C{unittest.SkipTest} naming what failed (pytest and trial
both report it as a skip with that reason), and keep raising it, without
trying again, for the rest of the process. The pytest fixtures
L{postgres_server} and L{redis_server} give the same servers, emptied before
each test.

PostgreSQL refuses to run as root, and CI runs as root: then C{initdb} and
C{postgres} run as the user C{nobody} (group C{nogroup}) through C{setpriv},
in a temporary directory handed to that user. The programs come from
C{PATH}, else from the newest C{/usr/lib/postgresql/*/bin} (Debian package
C{postgresql}); Redis is C{redis-server} (Debian package C{redis-server}).
Both run without durability (PostgreSQL C{fsync=off}; Redis C{--save ''
--appendonly no}), which the tests do not need.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import pytest

START_TIMEOUT = 30.0
"""Seconds a server may take to accept connections before the tests skip."""

UNPRIVILEGED = "nobody"
"""The user PostgreSQL runs as when the tests run as root."""

DATABASE = "chat_test"
"""The database L{PostgresServer} creates for the tests."""


def free_port() -> int:
    """
    A TCP port on 127.0.0.1 free right now (the kernel's pick for port 0).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _program(name: str) -> str | None:
    """
    The path of PostgreSQL's program C{name}: on C{PATH}, else under the
    newest C{/usr/lib/postgresql/VERSION/bin}; C{None} when missing.
    """
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: [int(part) if part.isdigit() else 0 for part in path.split("/")[4].split(".")],
    )
    return candidates[-1] if candidates else None


def _as_user(argv: Sequence[str], user: str | None) -> list[str]:
    """
    C{argv} run through C{setpriv}: as C{user} (when given: the tests run
    as root), and killed with SIGQUIT (PostgreSQL's immediate shutdown) if
    the test process dies first.
    """
    prefix = ["setpriv", "--pdeathsig", "QUIT"]
    if user is not None:
        entry = pwd.getpwnam(user)
        prefix += ["--reuid", str(entry.pw_uid), "--regid", str(entry.pw_gid), "--clear-groups"]
    return [*prefix, "--", *argv] if shutil.which("setpriv") else list(argv)


def _tail(path: str, lines: int = 8) -> str:
    """
    The last lines of a log file, on one line, for a skip reason.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            return " | ".join(log.read().strip().splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def _spawn(argv: Sequence[str], user: str | None, log: str) -> subprocess.Popen[bytes]:
    """
    Start a server (L{_as_user}), its output appended to the file C{log}.
    """
    output = open(log, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            _as_user(argv, user), stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    finally:
        output.close()


class _Server(Protocol):
    port: int
    log: str

    def start(self) -> None: ...


def _start_on_a_free_port(server: _Server, port_taken: str, give_up: Callable[[], object]) -> None:
    """
    Start C{server} on a free port of 127.0.0.1, trying another (three at
    most) when the one found was taken meanwhile (its log says
    C{port_taken}); C{give_up} cleans up before the error is raised.

    @raise RuntimeError: it could not start.
    """
    for attempt in range(3):
        server.port = free_port()
        try:
            server.start()
            return
        except RuntimeError:
            if attempt == 2 or port_taken not in _tail(server.log, 30):
                give_up()
                raise


def _wait(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: str) -> None:
    """
    Poll C{ready} until it holds.

    @raise RuntimeError: C{process} exited, or L{START_TIMEOUT} passed;
        the message names C{what} and ends with the tail of C{log}.
    """
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}: {_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not accept connections within {START_TIMEOUT:.0f} s: {_tail(log)}")
        time.sleep(0.02)


def _stop(process: subprocess.Popen[bytes] | None, sig: int) -> None:
    """
    Stop a server process with C{sig}, then SIGKILL if it lingers.
    """
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PostgresServer:
    """
    A PostgreSQL server of its own in a temporary directory: superuser
    C{postgres} with trust authentication, listening on 127.0.0.1:L{port}
    and on a unix socket in L{socket_dir}, with the empty database
    L{DATABASE}.

    @ivar dsn: the libpq connection string of the test database (TCP).
    @ivar started_in: seconds the first start took (initdb included).
    """

    def __init__(self) -> None:
        """
        Create the cluster and start the server.

        @raise RuntimeError: a program is missing, C{initdb} failed, or the
            server did not start (the message says which, with its log).
        """
        initdb, postgres = _program("initdb"), _program("postgres")
        if initdb is None or postgres is None:
            raise RuntimeError(
                "PostgreSQL is not installed (no initdb/postgres on PATH or in /usr/lib/postgresql/*/bin):"
                " apt-get install postgresql"
            )
        self._postgres = postgres
        began = time.monotonic()
        self._user = UNPRIVILEGED if os.geteuid() == 0 else None
        self.directory = tempfile.mkdtemp(prefix="chat-pg-")
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self.data_dir = os.path.join(self.directory, "data")
        self.socket_dir = self.directory
        self.log = os.path.join(self.directory, "server.log")
        self._process: subprocess.Popen[bytes] | None = None
        result = subprocess.run(
            _as_user([initdb, "-D", self.data_dir, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync", "--no-instructions"], self._user),
            capture_output=True, text=True, check=False,
        )
        if result.returncode:
            output = " | ".join((result.stderr or result.stdout).strip().splitlines()[-6:])
            shutil.rmtree(self.directory, ignore_errors=True)
            raise RuntimeError(f"initdb failed with status {result.returncode}: {output}")
        self.port = 0

        def give_up() -> None:
            self.stop()
            shutil.rmtree(self.directory, ignore_errors=True)

        _start_on_a_free_port(self, "could not bind", give_up)
        self.dsn = self.conninfo(DATABASE)
        self._admin(f"CREATE DATABASE {DATABASE}")
        self.started_in = time.monotonic() - began

    def conninfo(self, database: str = DATABASE) -> str:
        """
        The libpq connection string of C{database} on this server, over TCP.
        """
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database} connect_timeout=10"

    def start(self) -> None:
        """
        Start the server on L{port} (again, after L{stop}) and wait until it
        accepts connections.

        @raise RuntimeError: it exited or did not answer within L{START_TIMEOUT}.
        """
        self._process = _spawn(
            [self._postgres, "-D", self.data_dir, "-p", str(self.port), "-k", self.socket_dir, "-h", "127.0.0.1",
             "-F", "-c", "full_page_writes=off", "-c", "shared_buffers=32MB", "-c", "max_connections=200"],
            self._user, self.log,
        )
        _wait(self._accepts, self._process, f"PostgreSQL ({self._postgres}) on port {self.port}", self.log)

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.conninfo("postgres"), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        """
        Stop the server at once (immediate shutdown; the data stays for L{start}).
        """
        _stop(self._process, signal.SIGQUIT)
        self._process = None

    def restart(self) -> None:
        """
        Stop the server and start it again on the same port with the same data.
        """
        self.stop()
        self.start()

    def _admin(self, *statements: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.conninfo(database), autocommit=True) as connection:
            connection.execute("SET lock_timeout = '10s'")
            for statement in statements:
                connection.execute(statement)

    def reset(self) -> None:
        """
        Empty the test database: drop its schema C{public} with every table
        and sequence in it, and create it again.

        @raise psycopg.errors.LockNotAvailable: a connection still holds a
            table (a store left open) for more than 10 s.
        """
        self._admin("DROP SCHEMA public CASCADE", "CREATE SCHEMA public", database=DATABASE)

    def shutdown(self) -> None:
        """
        Stop the server and delete its directory.
        """
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class RedisServer:
    """
    A Redis server of its own on 127.0.0.1:L{port}, without persistence,
    its working directory a temporary one.

    @ivar url: C{redis://127.0.0.1:PORT/0}.
    @ivar started_in: seconds the first start took.
    """

    def __init__(self) -> None:
        """
        Start the server.

        @raise RuntimeError: C{redis-server} is missing or did not start.
        """
        program = shutil.which("redis-server")
        if program is None:
            raise RuntimeError("redis-server is not installed: apt-get install redis-server")
        self._program = program
        began = time.monotonic()
        self.directory = tempfile.mkdtemp(prefix="chat-redis-")
        self.log = os.path.join(self.directory, "server.log")
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        _start_on_a_free_port(self, "Address already in use", self.shutdown)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.started_in = time.monotonic() - began

    def start(self) -> None:
        """
        Start the server on L{port} (again, after L{stop}, empty) and wait
        until it answers C{PING}.

        @raise RuntimeError: it exited or did not answer within L{START_TIMEOUT}.
        """
        self._process = _spawn(
            [self._program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.directory, "--daemonize", "no"],
            None, self.log,
        )
        _wait(self._answers, self._process, f"redis-server on port {self.port}", self.log)

    def _answers(self) -> bool:
        try:
            return self.command("PING") == b"+PONG"
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        """
        Send one command and return the first line of the reply, without
        CR LF (C{b"+OK"}, C{b"+PONG"}, C{b":3"}, ...).

        @raise OSError: the server cannot be reached.
        """
        request = f"*{len(words)}\r\n".encode() + b"".join(
            f"${len(word.encode())}\r\n".encode() + word.encode() + b"\r\n" for word in words
        )
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            connection.sendall(request)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = connection.recv(4096)
                if not chunk:
                    raise ConnectionError("redis closed the connection")
                reply += chunk
        return reply.split(b"\r\n", 1)[0]

    def flush(self) -> None:
        """
        Empty every database of the server.

        @raise RuntimeError: the server did not say C{+OK}.
        """
        reply = self.command("FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL answered {reply!r}")

    def stop(self) -> None:
        """
        Stop the server (what it held is lost).
        """
        _stop(self._process, signal.SIGTERM)
        self._process = None

    def restart(self) -> None:
        """
        Stop the server and start it again, empty, on the same port.
        """
        self.stop()
        self.start()

    def shutdown(self) -> None:
        """
        Stop the server and delete its directory.
        """
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


_servers: dict[str, PostgresServer | RedisServer | str] = {}
"""Started servers by kind, or why one could not start."""


def _once(kind: str, make: Callable[[], PostgresServer | RedisServer]) -> PostgresServer | RedisServer:
    found = _servers.get(kind)
    if isinstance(found, str):
        raise unittest.SkipTest(found)
    if found is not None:
        return found
    try:
        server = make()
    except (RuntimeError, OSError, KeyError, ImportError) as e:
        reason = _servers[kind] = f"cannot start {kind} for the tests because {e}"
        raise unittest.SkipTest(reason) from None
    _servers[kind] = server
    atexit.register(server.shutdown)
    return server


def postgres() -> PostgresServer:
    """
    The test process's PostgreSQL server, started on first use; not emptied
    here (call L{PostgresServer.reset}).

    @raise unittest.SkipTest: it cannot start; the reason says why.
    """
    server = _once("PostgreSQL", PostgresServer)
    assert isinstance(server, PostgresServer)
    return server


def redis() -> RedisServer:
    """
    The test process's Redis server, started on first use; not emptied here
    (call L{RedisServer.flush}).

    @raise unittest.SkipTest: it cannot start; the reason says why.
    """
    server = _once("Redis", RedisServer)
    assert isinstance(server, RedisServer)
    return server


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """
    The PostgreSQL server with its test database emptied, for a pytest test.
    """
    server = postgres()
    server.reset()
    yield server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """
    The Redis server, flushed, for a pytest test.
    """
    server = redis()
    server.flush()
    yield server

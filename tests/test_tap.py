"""
Tests for L{chat.tap}: the command line and the service tree of C{twistd chat}.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import sqlite3
import tempfile
from contextlib import closing

from twisted.application.service import IService, MultiService
from twisted.internet.task import Clock
from twisted.internet.error import CannotListenError
from twisted.internet.testing import (
    MemoryReactor,
    MemoryReactorClock,
    RaisingMemoryReactor,
)
from twisted.logger import capturedLogs, formatEvent
from twisted.python import usage
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from chat.limits import DESCRIPTORS_CAP
from chat.listener import LISTEN_BACKLOG, with_backlog, Listener
from chat.memory_store import MemoryStore
from chat.protocol import ChatFactory
from chat.schema import VERSION
from chat.server import ChatServer
from chat.service import ChatService
from chat.settings import Settings
from chat.sqlite_store import SQLiteStore
from chat.tap import DEFAULT_LISTEN, Options, makeService

DEFAULTS = {
    "web": [],
    "irc": [],
    "web-origin": [],
    "trusted-proxy": [],
    "metrics": None,
    "config": None,
    "data-dir": "chat-data",
    "postgres": None,
    "redis": None,
    "node": None,
    "spool": None,
    "server-name": "chat",
    "motd": "",
    "max-line": 4096,
    "flood-burst": 20,
    "flood-rate": 5.0,
    "max-connections-per-ip": 32,
    "max-output": 4 * 1024 * 1024,
    "max-file-size": 100 * 1024 * 1024,
    "spool-quota": 2048 * 1024 * 1024,
    "history-on-join": 50,
    "history-days": 0.0,
    "file-ttl": 24.0,
    "tls-cert": None,
    "tls-key": None,
    "in-memory": 0,
    "allow-plaintext-auth": 0,
    "listen": ["tcp:8888:interface=127.0.0.1"],
    "log-level": "info",
    "log-format": "text",
    "registration-timeout": 60.0,
    "tls-handshake-timeout": 15.0,
    "upload-idle-timeout": 60.0,
    "disk-reserve": None,
    "max-output-total": 256 * 1024 * 1024,
    "ipv6-prefix": 64,
}

POSITIVE = [
    "max-line", "flood-burst", "flood-rate", "max-connections-per-ip",
    "max-output", "max-file-size", "spool-quota",
]
"""The options that take only values above 0."""


def parse(*argv: str) -> Options:
    """
    Parse C{argv} with a new L{Options}.
    """
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """
    L{Options}: C{twistd chat}'s command line.
    """

    def test_defaults(self) -> None:
        """
        With no arguments every option has its PROTOCOL.md section 8 default.
        """
        self.assertEqual(dict(parse()), DEFAULTS)
        self.assertEqual(DEFAULT_LISTEN, "tcp:8888:interface=127.0.0.1")

    def test_listen_repeatable_replaces_default(self) -> None:
        """
        Each --listen (or -l) adds an endpoint, in order, instead of the default.
        """
        self.assertEqual(
            parse("--listen", "tcp:6667", "-l", "tcp6:6668", "--listen=unix:/tmp/c.sock")["listen"],
            ["tcp:6667", "tcp6:6668", "unix:/tmp/c.sock"],
        )

    def test_postgres_excludes_in_memory(self) -> None:
        """
        --postgres takes a connection string, and cannot go with --in-memory.
        """
        self.assertEqual(parse("--postgres", "postgresql://chat@db/chat")["postgres"], "postgresql://chat@db/chat")
        error = self.assertRaises(UsageError, parse, "--postgres", "dbname=chat", "--in-memory")
        self.assertIn("--postgres and --in-memory exclude each other", str(error))
        error = self.assertRaises(UsageError, parse, "--redis", "redis://localhost")
        self.assertIn("--redis needs --postgres", str(error))
        error = self.assertRaises(UsageError, parse, "--node", "a")
        self.assertIn("--node names a daemon of a cluster: it goes with --redis", str(error))

    def test_listen_fresh_per_instance(self) -> None:
        """
        Endpoints given to one Options do not leak into another.
        """
        parse("--listen", "tcp:6667")
        self.assertEqual(parse()["listen"], [DEFAULT_LISTEN])

    def test_coercion(self) -> None:
        """
        Every option given is coerced to its type.
        """
        options = parse(
            "--data-dir", "/srv/chat", "--server-name", "example", "--motd", "hi all",
            "--max-line", "512", "--flood-burst", "3", "--flood-rate", "2.5",
            "--max-connections-per-ip", "4", "--max-output", "65536",
            "--max-file-size", "1000", "--spool-quota", "5K", "--history-on-join", "0",
            "--history-days", "7.5", "--in-memory", "--allow-plaintext-auth", "--file-ttl", "0.5",
        )
        self.assertEqual(dict(options), {
            "data-dir": "/srv/chat", "server-name": "example", "motd": "hi all",
            "max-line": 512, "flood-burst": 3, "flood-rate": 2.5,
            "max-connections-per-ip": 4, "max-output": 65536, "max-file-size": 1000,
            "spool-quota": 5120, "history-on-join": 0, "listen": [DEFAULT_LISTEN],
            "history-days": 7.5, "in-memory": 1, "allow-plaintext-auth": 1, "file-ttl": 0.5,
            "tls-cert": None, "tls-key": None, "log-level": "info", "log-format": "text",
            "registration-timeout": 60.0, "tls-handshake-timeout": 15.0, "upload-idle-timeout": 60.0,
            "disk-reserve": None, "max-output-total": 256 * 1024 * 1024, "ipv6-prefix": 64,
            "web": [], "irc": [], "web-origin": [], "trusted-proxy": [], "metrics": None, "config": None,
            "postgres": None, "redis": None, "node": None, "spool": None,
        })
        self.assertEqual(options.settings(), Settings(
            server_name="example", motd="hi all", max_line=512, flood_burst=3, flood_rate=2.5,
            max_per_ip=4, max_output=65536, max_file=1000, spool_quota=5120, history_on_join=0,
            history_days=7.5, allow_plaintext_auth=True, file_ttl=1800.0,
        ))

    def test_sizes(self) -> None:
        """
        File sizes take bytes or K, M, G, T units in powers of 1024, in any case, with an optional B or iB.
        """
        for text, expected in [("1000", 1000), ("512K", 512 * 1024), ("100m", 100 * 1024**2), ("2G", 2 * 1024**3),
                               ("1T", 1024**4), ("5MiB", 5 * 1024**2), ("7kb", 7 * 1024)]:
            self.assertEqual(parse("--max-file-size", text)["max-file-size"], expected, text)
        for bad in ("0", "-1", "1.5M", "M", "10X", "", "１０"):
            error = self.assertRaises(usage.UsageError, parse, "--spool-quota", bad)
            self.assertIn("must be a size above 0 such as 5000000, 512K, 100M or 2G", str(error), bad)

    def test_default_settings(self) -> None:
        """
        The default options describe the default Settings.
        """
        self.assertEqual(parse().settings(), Settings())

    def test_positive_only(self) -> None:
        """
        Zero, negative and non-numeric values of the positive options are refused with UsageError.
        """
        for name in POSITIVE:
            for value in ["0", "-1", "abc", ""]:
                with self.subTest(option=name, value=value):
                    self.assertRaises(UsageError, parse, f"--{name}", value)
        self.assertRaises(UsageError, parse, "--max-line", "1.5")
        self.assertEqual(parse("--flood-rate", "0.5")["flood-rate"], 0.5)

    def test_flood_rate_nan_refused(self) -> None:
        """
        A flood rate of nan, which is not a positive number, is refused with UsageError.
        """
        self.assertRaises(UsageError, parse, "--flood-rate", "nan")

    def test_history_on_join_not_negative(self) -> None:
        """
        A negative --history-on-join is refused with UsageError; 0 is accepted.
        """
        self.assertRaises(UsageError, parse, "--history-on-join", "-1")
        self.assertRaises(UsageError, parse, "--history-on-join=-5")
        self.assertRaises(UsageError, parse, "--history-on-join", "x")
        self.assertEqual(parse("--history-on-join", "0")["history-on-join"], 0)

    def test_unknown_option(self) -> None:
        """
        An unknown option or a stray argument is refused with UsageError.
        """
        self.assertRaises(UsageError, parse, "--port", "8888")
        self.assertRaises(UsageError, parse, "extra")

    def test_help_documents_every_option(self) -> None:
        """
        The help text names every option and how to listen on all interfaces.
        """
        text = " ".join(str(Options()).split())
        for name in list(DEFAULTS) + ["listen"]:
            self.assertIn(f"--{name}", text)
        self.assertIn("--listen tcp:8888", text)


class MakeServiceTests(SynchronousTestCase):
    """
    L{makeService}: a L{ChatService} and one strports listener per C{--listen}.
    """

    def setUp(self) -> None:
        self.data = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.data)

    def make(self, *argv: str, reactor: object | None = None) -> tuple[IService, MemoryReactor]:
        """
        Build the service for C{argv} over a memory reactor, data in a
        temporary directory, history in memory (the SQLite store needs
        threads, which a memory reactor cannot run).
        """
        memory = MemoryReactorClock() if reactor is None else reactor
        options = parse("--data-dir", self.data, "--in-memory", *argv)
        return makeService(options, reactor=memory), memory  # type: ignore[return-value]

    def test_service_tree(self) -> None:
        """
        The service is a MultiService of one ChatService, then one listener per --listen, all over one server.
        """
        top, memory = self.make("--listen", "tcp:6667:interface=127.0.0.1", "--listen", "tcp:6668")
        self.assertIsInstance(top, MultiService)
        children = list(top)  # type: ignore[call-overload]
        self.assertEqual(len(children), 3)
        chat, first, second = children
        self.assertIsInstance(chat, ChatService)
        self.assertIsInstance(chat.server, ChatServer)
        self.assertIsInstance(first, Listener)
        self.assertIsInstance(second, Listener)
        self.assertIsInstance(first.factory, ChatFactory)
        self.assertIs(first.factory, second.factory)
        self.assertIs(first.factory.server, chat.server)
        self.assertIs(chat.server.clock, memory)

    def test_default_listener(self) -> None:
        """
        Without --listen the daemon listens on 127.0.0.1 port 8888.
        """
        top, memory = self.make()
        top.privilegedStartService()
        top.startService()
        [(port, factory, _, interface)] = memory.tcpServers
        self.assertEqual((port, interface), (8888, "127.0.0.1"))
        self.successResultOf(top.stopService())

    def test_start_listens(self) -> None:
        """
        Starting the service listens on every --listen endpoint with the one chat factory.
        """
        socket = os.path.join(self.data, "chat.sock")
        top, memory = self.make(
            "--listen", "tcp:6667:interface=127.0.0.1", "--listen", "tcp:6668", "--listen", f"unix:{socket}"
        )
        chat = list(top)[0]  # type: ignore[call-overload]
        self.assertEqual(memory.tcpServers, [])
        top.privilegedStartService()
        self.assertEqual(
            [(port, interface) for port, _, _, interface in memory.tcpServers],
            [(6667, "127.0.0.1"), (6668, "")],
        )
        self.assertEqual([address for address, *_ in memory.unixServers], [socket])
        factories = [f for _, f, _, _ in memory.tcpServers] + [f for _, f, *_ in memory.unixServers]
        self.assertEqual(len(set(factories)), 1)
        self.assertIs(factories[0].server, chat.server)
        top.startService()
        self.assertTrue(top.running)
        self.assertEqual(len(memory.tcpServers), 2)
        self.successResultOf(top.stopService())
        self.assertFalse(chat.running)

    def test_start_without_privileged_start(self) -> None:
        """
        startService alone also makes every listener listen.
        """
        top, memory = self.make("--listen", "tcp:6667", "--listen", "tcp:6668")
        top.startService()
        self.assertEqual([port for port, *_ in memory.tcpServers], [6667, 6668])
        self.successResultOf(top.stopService())

    def test_backlog_default_and_explicit(self) -> None:
        """
        A TCP or UNIX listener gets a backlog of LISTEN_BACKLOG (1024), not Twisted's 50, unless its
        description names one.
        """
        socket = os.path.join(self.data, "chat.sock")
        top, memory = self.make("--listen", "tcp:6667", "--listen", "tcp:6668:backlog=7", "--listen", f"unix:{socket}")
        top.privilegedStartService()
        self.assertEqual([(port, backlog) for port, _, backlog, _ in memory.tcpServers], [(6667, 1024), (6668, 7)])
        [(_, _, backlog, *_)] = memory.unixServers
        self.assertEqual(backlog, LISTEN_BACKLOG)
        self.successResultOf(top.stopService())

    def test_with_backlog(self) -> None:
        """
        with_backlog adds backlog= to the endpoint types that take it, after escaped colons, and
        leaves a description that names a backlog, or whose type takes none, as it is.
        """
        cases = {
            "tcp:8888": "tcp:8888:backlog=1024",
            "tcp6:0:interface=\\:\\:1": "tcp6:0:interface=\\:\\:1:backlog=1024",
            "ssl:6697:privateKey=k.pem:certKey=c.pem": "ssl:6697:privateKey=k.pem:certKey=c.pem:backlog=1024",
            "tcp:8888:backlog=5:interface=127.0.0.1": "tcp:8888:backlog=5:interface=127.0.0.1",
            "systemd:domain=INET:index=0": "systemd:domain=INET:index=0",
        }
        self.assertEqual({description: with_backlog(description) for description in cases}, cases)

    def test_descriptor_limit_logged(self) -> None:
        """
        Starting raises the soft limit of open files to the hard limit and logs it, with the room it
        leaves for connections.
        """
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        top, _ = self.make("--listen", "tcp:6667")
        with capturedLogs() as logged:
            top.privilegedStartService()
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.assertEqual(limit, min(hard, DESCRIPTORS_CAP) if hard != resource.RLIM_INFINITY else DESCRIPTORS_CAP)
        self.assertIn(
            f"open files limit {limit} (raised from 256): room for about {limit - 32} connections",
            [formatEvent(e) for e in logged],
        )
        self.successResultOf(top.stopService())

    def test_listening_logged(self) -> None:
        """
        Once a listener is up and the reactor runs (its signal handlers in
        place), the service logs "chat listening on HOST:PORT" for it.
        """
        top, memory = self.make("--listen", "tcp:6667", "--listen", "tcp:6668")
        with capturedLogs() as logged:
            top.privilegedStartService()
            top.startService()
            self.assertEqual([e for e in logged if "listening" in formatEvent(e)], [])
            memory.run()
        messages = [formatEvent(e) for e in logged]
        # MemoryReactor reports 0.0.0.0 as the host of any IPv4 port.
        self.assertEqual(
            [m for m in messages if m.startswith("chat listening")],
            ["chat listening on 0.0.0.0:6667", "chat listening on 0.0.0.0:6668"],
        )
        self.successResultOf(top.stopService())

    def test_irc_listeners(self) -> None:
        """
        Each --irc is a listener of the IRC front end on the same server,
        logged as "chat irc listening on HOST:PORT".
        """
        top, memory = self.make("--irc", "tcp:6667", "--irc", "tcp:6697")
        with capturedLogs() as logged:
            top.privilegedStartService()
            top.startService()
            memory.run()
        messages = [formatEvent(e) for e in logged]
        self.assertEqual(
            [m for m in messages if m.startswith("chat irc listening")],
            ["chat irc listening on 0.0.0.0:6667", "chat irc listening on 0.0.0.0:6697"],
        )
        chat = list(top)[0]  # type: ignore[call-overload]
        factories = [entry[1] for entry in memory.tcpServers[1:]]
        self.assertEqual([type(f).__name__ for f in factories], ["IRCFactory", "IRCFactory"])
        self.assertIs(factories[0].server, chat.server)
        self.successResultOf(top.stopService())

    def test_settings_reach_factory(self) -> None:
        """
        The factory gets the Settings the options describe.
        """
        top, _ = self.make("--max-line", "100", "--server-name", "here")
        chat = list(top)[0]  # type: ignore[call-overload]
        self.assertEqual(chat.server.settings, Settings(server_name="here", max_line=100))
        self.assertEqual(chat.server.domain.history_on_join, 50)

    def test_data_dir_and_database_created(self) -> None:
        """
        A missing data directory is created with the database in it, at the
        current schema version; an existing one is opened again.
        """
        path = os.path.join(self.data, "sub")
        for _ in range(2):
            top = makeService(parse("--data-dir", path), reactor=MemoryReactorClock())
            store = list(top)[0].server.store  # type: ignore[call-overload]
            self.assertIsInstance(store, SQLiteStore)
            store._pool.close()
        with closing(sqlite3.connect(os.path.join(path, "chat.sqlite3"))) as db:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], VERSION)

    def test_in_memory_touches_no_database(self) -> None:
        """
        With --in-memory no database file is created.
        """
        top, _ = self.make()
        self.assertIsInstance(list(top)[0].server.store, MemoryStore)  # type: ignore[call-overload]
        self.assertEqual(os.listdir(self.data), [])

    def test_unusable_database_is_one_clear_line(self) -> None:
        """
        A data directory that cannot be created, a file that is not a
        database, or a database newer than the code ends startup with one
        line naming the problem.
        """
        blocker = os.path.join(self.data, "file")
        with open(blocker, "w") as f:
            f.write("x")
        error = self.assertRaises(SystemExit, makeService, parse("--data-dir", os.path.join(blocker, "sub")))
        self.assertIn("chat: ", str(error))
        self.assertIn("Not a directory", str(error))
        with open(os.path.join(self.data, "chat.sqlite3"), "wb") as f:
            f.write(b"this is not a database" * 100)
        error = self.assertRaises(SystemExit, makeService, parse("--data-dir", self.data))
        self.assertIn("not a database", str(error))
        os.remove(os.path.join(self.data, "chat.sqlite3"))
        with closing(sqlite3.connect(os.path.join(self.data, "chat.sqlite3"))) as db:
            db.execute(f"PRAGMA user_version={VERSION + 1}")
        error = self.assertRaises(SystemExit, makeService, parse("--data-dir", self.data))
        self.assertEqual(
            str(error),
            f"chat: the database has schema version {VERSION + 1}, newer than this chat (version {VERSION}):"
            " upgrade chat",
        )

    def test_malformed_endpoint(self) -> None:
        """
        A malformed endpoint description ends startup with one line naming it, not a traceback.
        """
        error = self.assertRaises(SystemExit, self.make, "--listen", "nonsense:1")
        self.assertEqual(
            str(error), "chat: --listen 'nonsense:1' is not a valid endpoint: Unknown endpoint type: 'nonsense'"
        )
        error = self.assertRaises(SystemExit, self.make, "--listen", "tcp:notaport")
        self.assertTrue(str(error).startswith("chat: --listen 'tcp:notaport' is not a valid endpoint: "))

    def test_busy_port_fails_startup(self) -> None:
        """
        A listener that cannot listen ends startup with one clear line, rather
        than running without it or printing a traceback.
        """
        # The real reactor's listenTCP raises CannotListenError synchronously
        # when the port is busy; RaisingMemoryReactor does the same without a
        # socket. A real busy port is left to the end-to-end tests.
        busy = CannotListenError("127.0.0.1", 8888, OSError(errno.EADDRINUSE, "Address already in use"))
        top, _ = self.make(reactor=_RaisingClockReactor(busy))
        error = self.assertRaises(SystemExit, top.privilegedStartService)
        self.assertEqual(str(error), "chat: cannot listen on 127.0.0.1:8888: [Errno 98] Address already in use")


class _RaisingClockReactor(RaisingMemoryReactor, Clock):
    """
    A L{RaisingMemoryReactor} that also tells the time, as the server asks
    it when it is built (its start time, for C{/stats}).
    """

    def __init__(self, listen_exception: Exception) -> None:
        RaisingMemoryReactor.__init__(self, listenException=listen_exception)
        Clock.__init__(self)

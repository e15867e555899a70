# -*- test-case-name: tests.test_tap -*-
"""
The composition root of C{twistd chat}: L{Options} and L{makeService}.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, ClassVar

from twisted.application.service import IService, MultiService
from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IAddress, IProtocolFactory
from twisted.logger import Logger
from twisted.python import usage
from typing_extensions import override

from chat import config, logs, metrics
from chat.cluster.bus import RedisBus
from chat.cluster.claims import from_url as claims_from_url
from chat.datadir import DataDirectory
from chat.interfaces import IIdAllocator
from chat.irc.protocol import IRCFactory
from chat.limits import DESCRIPTORS_RESERVED, raise_descriptor_limit
from chat.listener import LISTEN_BACKLOG, Listener, needs_backlog, with_backlog
from chat.memory_store import MemoryStore
from chat.postgres_store import open_postgres_store_now
from chat.protocol import ChatFactory
from chat.schema import FILENAME, DatabaseError
from chat.server import ChatServer
from chat.service import ChatService
from chat.settings import DEFAULT_LISTEN, Settings
from chat.spool import PARTIAL, SPOOL, Spool
from chat.sqlite_store import open_store
from chat.storage import IStore
from chat.tls import ServerTLS, TLSError, endpoint_files, load, ssl_endpoint
from chat.web.proxy import networks
from chat.web.site import WEB_ALPN, web_factory
from chat.web.socket import normal_origin

_DEFAULTS = Settings()


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def size(value: str) -> int:
    """
    A size in bytes from C{--max-file-size} or C{--spool-quota}: a whole
    number, optionally followed by K, M, G or T (powers of 1024; a trailing
    C{B} or C{iB} is allowed), e.g. C{100M}.

    @raise ValueError: anything else, or 0.
    """
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = text.rstrip("KMGT"), text[len(text.rstrip("KMGT")):]
    if not (number.isascii() and number.isdigit()) or unit not in _UNITS or int(number) == 0:
        raise ValueError(f"must be a size above 0 such as 5000000, 512K, 100M or 2G, not {value!r}")
    return int(number) * _UNITS[unit]


size.coerceDoc = "A size in bytes, or with K, M, G (powers of 1024)."  # type: ignore[attr-defined]


def _positive(kind: type[int] | type[float]) -> Any:
    def coerce(value: str) -> int | float:
        number = kind(value)
        if not 0 < number < float("inf"):
            raise ValueError(f"must be a finite number above 0, not {value}")
        return number

    coerce.coerceDoc = f"A positive {'integer' if kind is int else 'number'}."  # type: ignore[attr-defined]
    return coerce


class Options(usage.Options):
    """
    The command line of C{twistd chat}; C{twistd chat --help} prints it.
    """

    synopsis = "[options]"
    longdesc = (
        "Serves chat to telnet, nc and JSON clients (see docs/protocol.md), and with "
        "--web to browsers. Listens on " + DEFAULT_LISTEN + " unless --listen is given; "
        "to serve every interface use --listen tcp:8888 (IPv4) or --listen tcp6:8888 "
        "(IPv6 and usually IPv4). --web tcp:8080 serves the web client at http://HOST:8080/ "
        "(add --web-origin for pages served elsewhere, --trusted-proxy behind a reverse proxy). "
        "Sizes are in bytes unless a unit is given. --config FILE reads any of these options from a "
        "TOML file under their long names (docs/chat.toml); the command line wins. SIGHUP reloads the "
        "file, the TLS certificates and keys, and the bans."
    )
    optFlags = [
        ["in-memory", None,
         "Keep history, accounts and offers in memory only, and offered files in a "
         "temporary directory: nothing survives a restart (for tests and throwaway servers)."],
        ["allow-plaintext-auth", None,
         "Accept /login, /register and /password over plain TCP from other machines "
         "(passwords then cross the network in clear text)."],
    ]
    optParameters = [
        ["data-dir", "d", "chat-data",
         "Directory for the daemon's data (the SQLite database " + FILENAME + " and the spool/ "
         "of offered files), created if missing."],
        ["postgres", None, None,
         "Keep history, accounts and offers in this PostgreSQL database (a libpq connection string or "
         "URI, e.g. postgresql://chat@db/chat) instead of SQLite; its schema is created when it is empty. "
         "Offered files stay in --data-dir's spool/ (PROTOCOL.md section 13; docs/cluster.md)."],
        ["redis", None, None,
         "Share the chat with the other daemons on this Redis (redis://[:PASSWORD@]HOST[:PORT][/DB]): events "
         "cross daemons, and a daemon that dies is noticed within 20 s. Needs --postgres (the same database "
         "for every daemon) and --node. Not complete yet (docs/cluster.md)."],
        ["spool", None, None,
         "Directory of the offered files (default: spool/ in --data-dir). In a cluster (--redis), a directory "
         "every daemon mounts, so that any daemon serves any offer (docs/cluster.md)."],
        ["node", None, None,
         "This daemon's name in a cluster (--redis), unique among its daemons (default: the host name)."],
        ["server-name", None, _DEFAULTS.server_name, "Server name sent in welcome."],
        ["motd", None, "", "Message of the day, sent in welcome."],
        ["max-line", None, _DEFAULTS.max_line, "Longest input line in bytes.", _positive(int)],
        ["flood-burst", None, _DEFAULTS.flood_burst,
         "Lines a connection may send at once before being slowed.", _positive(int)],
        ["flood-rate", None, _DEFAULTS.flood_rate,
         "Lines per second a connection may send after its burst.", _positive(float)],
        ["max-connections-per-ip", None, _DEFAULTS.max_per_ip,
         "Connections allowed from one address.", _positive(int)],
        ["max-output", None, _DEFAULTS.max_output,
         "Output queued for one connection, in bytes, judged over time: a connection over it is "
         "disconnected after 10 s without reading, or at 4 times it.", _positive(int)],
        ["max-file-size", None, "100M",
         "Largest file that may be offered (/upload).", size],
        ["spool-quota", None, "2G",
         "Total size of the offered files kept, uploads in progress included.", size],
        ["file-ttl", None, _DEFAULTS.file_ttl / 3600,
         "Hours a file offer lasts; the file is deleted when its last offer expires.", _positive(float)],
        ["history-on-join", None, _DEFAULTS.history_on_join,
         "Messages replayed to a user joining a room (0 for none).", int],
        ["tls-cert", None, None,
         "PEM certificate (its chain may follow) for /starttls on plain listeners; checked at start-up."],
        ["tls-key", None, None, "PEM private key of --tls-cert (default: read from the --tls-cert file)."],
        ["history-days", None, _DEFAULTS.history_days,
         "Days room and private messages are kept, pruned at start-up and hourly (0 keeps them forever).", float],
        ["log-level", None, "info",
         "Lowest level logged: debug (every connection), info (start-up, listeners, shutdown), "
         "warn, error or critical. The log goes where twistd sends it (stdout with -n, "
         "else twistd.log or --logfile, or --syslog)."],
        ["log-format", None, "text", "Log lines as text (twistd's usual lines) or json (one JSON object a line)."],
        ["registration-timeout", None, _DEFAULTS.registration_timeout,
         "Seconds a connection may stay without a nick before it is closed.", _positive(float)],
        ["tls-handshake-timeout", None, _DEFAULTS.tls_handshake_timeout,
         "Seconds a TLS handshake (ssl: listeners and /starttls) may take.", _positive(float)],
        ["upload-idle-timeout", None, _DEFAULTS.upload_idle_timeout,
         "Seconds an upload may go without a byte before it is cancelled.", _positive(float)],
        ["disk-reserve", None, None,
         "Free disk space kept for history: /upload is refused when a file would eat into it "
         "[default: 256M or 5% of the file system, the smaller].", size],
        ["max-output-total", None, "256M",
         "Output queued for all connections together; beyond it the connections holding the most "
         "are disconnected first.", size],
        ["ipv6-prefix", None, _DEFAULTS.ipv6_prefix,
         "IPv6 addresses in one network of this prefix length count as one address for the "
         "per-address limits (128: each address apart).", int],
        ["metrics", None, None,
         "Serve Prometheus metrics at /metrics on this Twisted endpoint, e.g. tcp:9108:interface=127.0.0.1 "
         "[default: none]."],
        [config.CONFIG, None, None,
         "Read options from this TOML file, each under its long name (max-line = 4096, "
         "listen = [\"tcp:8888\"], in-memory = true); options on the command line win. SIGHUP reads it again."],
    ]

    REPEATED: ClassVar[tuple[str, ...]] = ("listen", "web", "irc", "web-origin", "trusted-proxy")
    """The repeatable options: lists in a configuration file."""

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["web"] = []
        self["irc"] = []
        self["web-origin"] = []
        self["trusted-proxy"] = []
        self.argv: tuple[str, ...] = ()
        """The command line parsed, read again with the configuration file on SIGHUP (L{reparsed})."""
        self._from_file: dict[str, list[str]] = {}

    @override
    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Parse a command line, with the file of C{--config} read first for
        the defaults. A configuration file that cannot be used stops
        start-up with one line naming it.

        @raise SystemExit: the configuration file cannot be used.
        @raise usage.UsageError: an option is refused.
        """
        try:
            self.parse(sys.argv[1:] if options is None else options)
        except config.ConfigError as e:
            raise SystemExit(f"chat: {e}") from None

    def parse(self, argv: Sequence[str]) -> None:
        """
        L{parseOptions}, raising L{config.ConfigError} for a bad
        configuration file.

        @raise config.ConfigError: the configuration file cannot be used.
        @raise usage.UsageError: an option is refused.
        """
        self.argv = tuple(argv)
        path = config.path_in(argv)
        if path is not None:
            # Read again by absolute path: twistd may change directory (--rundir).
            self.argv += (f"--{config.CONFIG}={os.path.abspath(path)}",)
            self._from_file = config.apply(self, path, config.read(path), self.REPEATED)
        super().parseOptions(list(argv))

    def reparsed(self) -> Options:
        """
        These options parsed again from the same command line: the
        configuration file read again (SIGHUP).

        @raise config.ConfigError: the file cannot be used, or an option
            in it is refused.
        """
        again = Options()
        try:
            again.parse(self.argv)
        except usage.UsageError as e:
            raise config.ConfigError(f"{self[config.CONFIG]}: {e}") from None
        return again

    def opt_listen(self, description: str) -> None:
        """Listen on this Twisted endpoint (repeatable), e.g. tcp:8888, tcp6:8888, unix:/run/chat.sock, \
or TLS: ssl:6697:privateKey=KEY.pem:certKey=CERT.pem. [default: tcp:8888:interface=127.0.0.1]"""
        self["listen"].append(description)

    opt_l = opt_listen

    def opt_web(self, description: str) -> None:
        """Serve the web client (HTTP and its WebSocket) on this Twisted endpoint (repeatable), e.g. \
tcp:8080:interface=127.0.0.1, or with TLS: ssl:8443:privateKey=KEY.pem:certKey=CERT.pem. [default: none]"""
        self["web"].append(description)

    def opt_irc(self, description: str) -> None:
        """Serve IRC clients (docs/irc.md) on this Twisted endpoint (repeatable), e.g. \
tcp:6667:interface=127.0.0.1, or with TLS: ssl:6697:privateKey=KEY.pem:certKey=CERT.pem. [default: none]"""
        self["irc"].append(description)

    def opt_web_origin(self, origin: str) -> None:
        """Also let pages from this origin (scheme://host[:port]) open the web client's socket \
(repeatable); the web listener's own origin always may."""
        if not normal_origin(origin):
            raise usage.UsageError(f"--web-origin must be an origin such as https://chat.example.org, not {origin!r}")
        self["web-origin"].append(normal_origin(origin))

    def opt_trusted_proxy(self, cidr: str) -> None:
        """Believe X-Forwarded-For and X-Forwarded-Proto from this address or network (repeatable), \
e.g. 127.0.0.1 or 10.0.0.0/8: a reverse proxy in front of the web listener."""
        try:
            networks([cidr])
        except ValueError as e:
            raise usage.UsageError(f"--trusted-proxy: {e}") from None
        self["trusted-proxy"].append(cidr)

    @override
    def postOptions(self) -> None:
        for name, values in self._from_file.items():
            if not self[name]:  # the command line's win
                self[name] = values
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        for name in ("max-file-size", "spool-quota", "max-output-total"):
            if isinstance(self[name], str):  # the default, written as people would
                self[name] = size(self[name])
        if self["history-on-join"] < 0:
            raise usage.UsageError("--history-on-join must be 0 or more")
        if self["redis"] and not self["postgres"]:
            raise usage.UsageError("--redis needs --postgres: the daemons of a cluster share one database")
        if self["node"] and not self["redis"]:
            raise usage.UsageError("--node names a daemon of a cluster: it goes with --redis")
        if self["spool"] and self["in-memory"]:
            raise usage.UsageError("--spool and --in-memory exclude each other")
        if self["postgres"] and self["in-memory"]:
            raise usage.UsageError("--postgres and --in-memory exclude each other")
        if self["tls-key"] and not self["tls-cert"]:
            raise usage.UsageError("--tls-key needs --tls-cert")
        if not 0 <= self["ipv6-prefix"] <= 128:
            raise usage.UsageError("--ipv6-prefix must be 0 to 128")
        if not 0 <= self["history-days"] < float("inf"):
            raise usage.UsageError("--history-days must be 0 (forever) or a positive number")
        self["log-level"] = self["log-level"].lower()
        if self["log-level"] not in logs.LEVELS:
            raise usage.UsageError(f"--log-level must be one of {', '.join(logs.LEVELS)}, not {self['log-level']!r}")
        self["log-format"] = self["log-format"].lower()
        if self["log-format"] not in logs.FORMATS:
            raise usage.UsageError(f"--log-format must be one of {', '.join(logs.FORMATS)}, not {self['log-format']!r}")

    def settings(self) -> Settings:
        """
        The L{Settings} these options describe.
        """
        return Settings(
            server_name=self["server-name"],
            motd=self["motd"],
            max_line=self["max-line"],
            flood_burst=self["flood-burst"],
            flood_rate=self["flood-rate"],
            max_per_ip=self["max-connections-per-ip"],
            max_output=self["max-output"],
            max_file=self["max-file-size"],
            spool_quota=self["spool-quota"],
            file_ttl=self["file-ttl"] * 3600,
            history_on_join=self["history-on-join"],
            history_days=self["history-days"],
            allow_plaintext_auth=bool(self["allow-plaintext-auth"]),
            registration_timeout=self["registration-timeout"],
            tls_handshake_timeout=self["tls-handshake-timeout"],
            upload_idle_timeout=self["upload-idle-timeout"],
            disk_reserve=self["disk-reserve"],
            max_output_total=self["max-output-total"],
            ipv6_prefix=self["ipv6-prefix"],
            web=bool(self["web"]),
            web_origins=tuple(self["web-origin"]),
            trusted_proxies=tuple(self["trusted-proxy"]),
        )


LIVE_SETTINGS = (
    "server_name", "motd", "max_line", "flood_burst", "flood_rate", "max_per_ip", "max_output", "max_file",
    "file_ttl", "allow_plaintext_auth", "registration_timeout", "tls_handshake_timeout", "upload_idle_timeout",
    "max_output_total",
)
"""The L{Settings} a reload changes (L{ChatServer.reconfigure}); the others keep their values until a restart."""

RESTART_OPTIONS = (
    "data-dir", "in-memory", "postgres", "redis", "node", "spool", "listen", "web", "irc", "web-origin",
    "trusted-proxy", "metrics", "tls-cert", "tls-key", "spool-quota", "disk-reserve", "history-days",
    "history-on-join", "ipv6-prefix", "log-level", "log-format",
)
"""The options whose change takes a restart: a reload logs that it needs one."""


def reloaded(running: Options, settings: Settings) -> tuple[Settings, list[str]]:
    """
    The settings after reading the configuration file again (SIGHUP).

    @param running: the options the daemon started with.
    @param settings: the settings in force.
    @return: C{settings} with the L{LIVE_SETTINGS} read again, and the
        L{RESTART_OPTIONS} whose value changed (the command line's order).
    @raise config.ConfigError: the file cannot be used.
    """
    again = running.reparsed()
    changed = [name for name in RESTART_OPTIONS if again[name] != running[name]]
    fresh = again.settings()
    return replace(settings, **{name: getattr(fresh, name) for name in LIVE_SETTINGS}), changed


class CannotStart(SystemExit, Exception):
    """
    The daemon cannot start (a listener cannot listen): one line for the
    operator, raised from L{Daemon.privilegedStartService}.

    It is a L{SystemExit}, so that, uncaught, Python prints only the
    message and exits with status 1. It is also an L{Exception} because
    twistd's start-up (C{UnixApplicationRunner.postApplication}) catches
    C{Exception}: then twistd removes the pid file it has just written and
    tells the parent of a daemonizing twistd that the start failed. A bare
    C{SystemExit} escapes that handler: the pid file stays behind, and the
    waiting parent, which keeps the status pipe's write end open, never
    returns.
    """


class Daemon(MultiService):
    """
    The root service: a listener that cannot listen (a busy port, a
    forbidden one) ends startup with one clear line instead of a traceback,
    and the data directory L{makeService} created for this start is
    removed again (L{DataDirectory.discard}).

    Under twistd it also installs the daemon's logging (L{chat.logs}) when
    twistd makes it the child of its application.
    """

    _log = Logger()

    def __init__(
        self,
        data: DataDirectory | None = None,
        install_logging: Callable[[object], None] | None = None,
        database: str = "SQLite",
    ) -> None:
        """
        @param data: the data directory; C{None} for C{--in-memory}.
        @param install_logging: called with the service parent before the
            service joins it (L{chat.logs.for_twistd}); none when C{None}.
        @param database: where history and accounts are kept, for the log:
            C{"SQLite"} (in the data directory) or the PostgreSQL database.
        """
        super().__init__()
        self.data = data
        self.install_logging = install_logging
        self.database = database

    @override
    def setServiceParent(self, parent: Any) -> None:
        if self.install_logging is not None:
            self.install_logging(parent)
        super().setServiceParent(parent)

    @override
    def privilegedStartService(self) -> None:
        before, limit = raise_descriptor_limit()
        self._log.info(
            "open files limit {limit}{raised}: room for about {connections} connections",
            limit=limit, raised=f" (raised from {before})" if limit != before else "",
            connections=max(0, limit - DESCRIPTORS_RESERVED),
        )
        if self.data is None:
            self._log.info("chat data in memory: nothing is kept after the daemon stops")
        else:
            self._log.info("chat data in {directory} ({database})", directory=self.data.path, database=self.database)
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            self._discard()
            raise CannotStart(f"chat: cannot listen on {e.interface or '*'}:{e.port}: {e.socketError}") from None
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        if self.data is not None:
            self.data.discard()


def _listener(
    description: str,
    factory: IProtocolFactory,
    reactor: Any,
    kind: str = "",
    on_listening: Callable[[IAddress, bool], None] | None = None,
) -> tuple[Listener, ServerTLS | None]:
    """
    The listener for one C{--listen} (or C{--web}, C{kind} C{"web"},
    C{--irc}, C{kind} C{"irc"}, or
    C{--metrics}, C{kind} C{"metrics"}); an
    C{ssl:} endpoint is served with L{ServerTLS} (L{chat.tls.ssl_endpoint}).

    @return: the listener, and its L{ServerTLS} for an C{ssl:} endpoint.
    @raise TLSError: the C{ssl:} endpoint's files cannot be used.
    @raise ValueError: the description is not a valid endpoint.
    """
    with endpoint_files(description):
        endpoint = endpoints.serverFromString(reactor, with_backlog(description))
    if isinstance(endpoint, endpoints.SSL4ServerEndpoint):
        backlog = LISTEN_BACKLOG if needs_backlog(description) else None
        endpoint, tls = ssl_endpoint(reactor, description, backlog, WEB_ALPN if kind == "web" else ())
        return Listener(endpoint, factory, reactor, secure=True, kind=kind, on_listening=on_listening), tls
    return Listener(endpoint, factory, reactor, kind=kind, on_listening=on_listening), None


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    Build the daemon: a L{ChatService} and one listener per C{--listen}.

    Called by twistd with parsed L{Options}. A busy port makes startup fail
    instead of running with no listener (L{Listener}).

    @param reactor: provides C{IReactorCore} and C{IReactorTime}; the global
        reactor when C{None}.

    @raise SystemExit: an endpoint description is malformed (twistd prints
        the message and exits with status 1).
    @raise SystemExit: the data directory or the database cannot be used.
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    settings = options.settings()
    tls = None
    if options["tls-cert"]:
        cert, key = options["tls-cert"], options["tls-key"]
        try:
            tls = ServerTLS(lambda: load(cert, key), "/starttls")
        except TLSError as e:
            raise SystemExit(f"chat: {e}") from None
    store: IStore
    ids: IIdAllocator | None = None
    postgres = None
    database = "SQLite"
    node = (options["node"] or socket.gethostname()) if options["redis"] else ""  # the name in a cluster
    data = None if options["in-memory"] else DataDirectory(options["data-dir"])
    try:
        if data is None:
            store = MemoryStore()
            spool = Spool.in_temporary_directory(settings.spool_quota, reserve=settings.disk_reserve)
        else:
            data.create()
            data.lock()  # before anything in it is touched: partial/ is emptied next
            # In a cluster, offered files are on storage every daemon shares (--spool), each its own partial/.
            spool = Spool(
                options["spool"] or os.path.join(data.path, SPOOL), settings.spool_quota,
                reserve=settings.disk_reserve, partial=os.path.join(PARTIAL, node) if node else PARTIAL,
            )
            spool.open()
            if options["postgres"]:
                # Also the id allocator, for file offers (reserve_id: one at a time); messages are
                # numbered as they are committed. next_id's blocks go unused: block=1.
                postgres = open_postgres_store_now(options["postgres"], reactor, reactor, block=1)
                store = ids = postgres
                database = postgres.name
            else:
                store = open_store(data.path, reactor, reactor, check=True)
            reactor.addSystemEventTrigger("after", "shutdown", data.release)
    except OSError as e:
        if data is None:
            raise SystemExit(f"chat: {e}") from None
        data.discard()
        raise SystemExit(
            f"chat: cannot use the data directory {data.path} (--data-dir): {e.strerror or e}; "
            "choose another with --data-dir DIR, or run with --in-memory"
        ) from None
    except DatabaseError as e:
        if data is not None:
            data.discard()
        raise SystemExit(f"chat: {e}") from None
    cluster: list[IService] = []
    if options["redis"]:
        try:
            bus = RedisBus.from_url(options["redis"], node, reactor=reactor, log=postgres)
        except ValueError as e:
            raise SystemExit(f"chat: --redis {e}") from None
        server = ChatServer(settings, reactor, store, files=spool, ids=ids, bus=bus)
        server.cluster = True
        server.domain.node = node
        server.local_bus = bus.local
        bus.on_remote = server.remote_event
        server.domain.on_moderation = bus.publish_moderation
        bus.on_new_node = server.new_node
        bus.ready.addCallback(lambda _: server.domain.announce_node(node))
        claims = claims_from_url(
            node, options["redis"], reactor, on_node_gone=server.node_gone, on_lost=server.nick_lost
        )
        server.claims = claims
        cluster += [bus, claims]
    else:
        server = ChatServer(settings, reactor, store, files=spool, ids=ids)
    factory = ChatFactory(server, starttls=tls)
    factory.noisy = False  # no line per listener start and stop: the Listener says where it listens
    top = Daemon(data, logs.for_twistd(options, options.parent, reactor), database)
    for service in cluster:  # started before the listeners, stopped after them
        service.setServiceParent(top)
    listeners = []
    certificates = [tls] if tls is not None else []
    web = web_factory(server) if options["web"] else None
    wanted: list[tuple[str, str, IProtocolFactory]] = [("listen", d, factory) for d in options["listen"]]
    if web is not None:
        wanted += [("web", d, web) for d in options["web"]]
    if options["irc"]:
        irc = IRCFactory(server)
        wanted += [("irc", d, irc) for d in options["irc"]]
    if options["metrics"]:
        wanted.append(("metrics", options["metrics"], metrics.MetricsSite(metrics.registry(server, spool))))
    for option, description, serving in wanted:
        try:
            listener, endpoint_tls = _listener(
                description, serving, reactor, "" if option == "listen" else option,
                server.web_listening if option == "web" else None,
            )
        except (TLSError, ValueError, TypeError, KeyError) as e:
            if data is not None:
                data.discard()
            if isinstance(e, TLSError):
                raise SystemExit(f"chat: --{option} {e}") from None
            raise SystemExit(f"chat: --{option} {description!r} is not a valid endpoint: {e}") from None
        listeners.append(listener)
        if endpoint_tls is not None:
            certificates.append(endpoint_tls)
    reread = partial(reloaded, options) if options[config.CONFIG] else None
    ChatService(server, reactor, certificates, reread).setServiceParent(top)
    for listener in listeners:
        listener.setServiceParent(top)
    return top

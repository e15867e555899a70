# -*- test-case-name: tests.test_tap -*-
"""
The composition root of C{twistd chat}: L{Options} and L{makeService}.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application import strports
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.python import usage
from typing_extensions import override

from chat.protocol import ChatFactory
from chat.schema import FILENAME, DatabaseError
from chat.service import ChatService
from chat.settings import DEFAULT_LISTEN, Settings
from chat.spool import SPOOL, Spool
from chat.storage import IStore, MemoryStore, open_store
from chat.tls import ServerTLS, TLSError, endpoint_files, from_endpoint, load

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
        "Serves chat to telnet, nc and JSON clients (see docs/protocol.md). "
        "Listens on " + DEFAULT_LISTEN + " unless --listen is given; to serve "
        "every interface use --listen tcp:8888 (IPv4) or --listen tcp6:8888 "
        "(IPv6 and usually IPv4). Sizes are in bytes unless a unit is given. "
        "SIGHUP reloads the TLS certificates and keys."
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
         "Output queued for a slow reader before it is disconnected, in bytes.", _positive(int)],
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
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """Listen on this Twisted endpoint (repeatable), e.g. tcp:8888, tcp6:8888, unix:/run/chat.sock, \
or TLS: ssl:6697:privateKey=KEY.pem:certKey=CERT.pem. [default: tcp:8888:interface=127.0.0.1]"""
        self["listen"].append(description)

    opt_l = opt_listen

    @override
    def postOptions(self) -> None:
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        for name in ("max-file-size", "spool-quota"):
            if isinstance(self[name], str):  # the default, written as people would
                self[name] = size(self[name])
        if self["history-on-join"] < 0:
            raise usage.UsageError("--history-on-join must be 0 or more")
        if self["tls-key"] and not self["tls-cert"]:
            raise usage.UsageError("--tls-key needs --tls-cert")
        if not 0 <= self["history-days"] < float("inf"):
            raise usage.UsageError("--history-days must be 0 (forever) or a positive number")

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
        )


class Daemon(MultiService):
    """
    The root service: a listener that cannot listen (a busy port, a
    forbidden one) ends startup with one clear line instead of a traceback.
    """

    @override
    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except CannotListenError as e:
            raise SystemExit(f"chat: cannot listen on {e.interface or '*'}:{e.port}: {e.socketError}") from None


def _listener(description: str, factory: ChatFactory, reactor: Any) -> StreamServerEndpointService:
    """
    The listener for one C{--listen}; an C{ssl:} endpoint is served with
    L{ServerTLS} (TLS 1.2 at least, the ciphers of Mozilla's intermediate
    profile, reloaded on SIGHUP) instead of the options Twisted's parser
    builds, which allow non-forward-secret and CBC suites.

    @raise TLSError: the C{ssl:} endpoint's files cannot be used.
    @raise ValueError: the description is not a valid endpoint.
    """
    with endpoint_files(description):
        listener = strports.service(description, factory, reactor)
    if isinstance(listener.endpoint, SSL4ServerEndpoint):
        # The endpoint has no public way to change its context factory.
        listener.endpoint._sslContextFactory = ServerTLS(lambda: from_endpoint(reactor, description), description)
    return listener


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    Build the daemon: a L{ChatService} and one listener per C{--listen}.

    Called by twistd with parsed L{Options}. Listeners are strports services,
    so a busy port makes startup fail instead of running with no listener.

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
    try:
        if options["in-memory"]:
            store = MemoryStore()
            spool = Spool.in_temporary_directory(settings.spool_quota)
        else:
            os.makedirs(options["data-dir"], exist_ok=True)
            spool = Spool(os.path.join(options["data-dir"], SPOOL), settings.spool_quota)
            spool.open()
            store = open_store(options["data-dir"], reactor, reactor)
    except (OSError, DatabaseError) as e:
        raise SystemExit(f"chat: {e}") from None
    factory = ChatFactory(settings, reactor, store, spool=spool, tls=tls)
    top = Daemon()
    listeners = []
    certificates = [tls] if tls is not None else []
    for description in options["listen"]:
        try:
            listener = _listener(description, factory, reactor)
        except TLSError as e:
            raise SystemExit(f"chat: --listen {e}") from None
        except (ValueError, TypeError, KeyError) as e:
            raise SystemExit(f"chat: --listen {description!r} is not a valid endpoint: {e}") from None
        listeners.append(listener)
        endpoint = listener.endpoint
        if isinstance(endpoint, SSL4ServerEndpoint):
            certificates.append(endpoint._sslContextFactory)
    ChatService(factory, reactor, listeners, certificates).setServiceParent(top)
    for listener in listeners:
        listener.setServiceParent(top)
    return top

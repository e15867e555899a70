# -*- test-case-name: tests.test_client_service -*-
"""
The command line shared by C{chat-client} and C{chat-tk}, and the
endpoint it describes: TCP, TLS verified with service_identity against
the system's CAs or C{--cafile}, or C{--insecure} (PROTOCOL.md section 7).
What the command line leaves out comes from the user's settings
(L{chat.client.settings}): the last server, nick and downloads folder.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from cryptography import x509
from OpenSSL import crypto
from twisted.internet import ssl
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python import usage
from typing_extensions import override

from chat import __version__
from chat.client.service import Account, default_downloads
from chat.client.settings import ClientSettings

DEFAULT_PORT = 8888
DEFAULT_TLS_PORT = 6697

INSECURE_WARNING = (
    "WARNING: --insecure: the server's certificate is NOT checked. Anyone on the way can read and change "
    "everything, passwords included. Use --cafile FILE to trust a self-signed server instead."
)


class ClientOptions(usage.Options):
    """
    C{[options] [NICK]}: where to connect, how, and as whom. What is not
    given comes from L{settings}: the host and port of the last server
    (unless C{--host} or C{--port} is given; a saved default port follows
    C{--tls}), the last nick, the downloads folder; the command line wins.

    @ivar settings: the user's settings, read when the options are made.
    """

    program = "chat-client"
    synopsis = "Usage: chat-client [options] [NICK]"
    longdesc = (
        "Connects to a chat daemon as NICK (when not given: the nick used last time, else asked for). The "
        "last server, nick, theme, muted rooms and downloads folder are kept in settings.json in the "
        "config folder (~/.config/chat on Linux); options given here win. With --tls the server's "
        "certificate and host name are verified against the system's CAs, or --cafile."
    )
    optFlags = [  # noqa: N815 (usage.Options dictates the name)
        ["tls", None, "Connect with TLS (implicit TLS, port 6697 by default), verifying the server's certificate."],
        ["starttls", None, "Connect in clear text, then upgrade with /starttls before anything else is sent."],
        ["insecure", None, "With --tls or --starttls: do not verify the certificate (dangerous: says so loudly)."],
        ["password-prompt", "P", "Ask for the account's password and log in (/login) instead of a guest /nick."],
    ]
    optParameters = [  # noqa: N815 (usage.Options dictates the name)
        ["host", "H", None, "The daemon's host name or address [default: the last server's, or localhost]."],
        ["port", "p", None, "The daemon's port [default: the last server's, or 8888, or 6697 with --tls].", int],
        ["cafile", None, None, "Trust the CA certificate(s) in this PEM file (e.g. a chat-cert certificate)."],
        ["downloads", None, None, "Folder for /get [default: the last one set, or ~/Downloads/chat]."],
    ]

    def __init__(self, settings: ClientSettings | None = None) -> None:
        """
        @param settings: the user's settings; read from the platform's
            config directory (L{ClientSettings.load}) by default.
        """
        super().__init__()
        self.settings = ClientSettings.load() if settings is None else settings

    def opt_version(self) -> None:
        """Display the version and exit."""
        print(f"{self.program} {__version__}")
        raise SystemExit(0)

    @override
    def parseArgs(self, nick: str | None = None) -> None:
        self["nick"] = nick

    @override
    def postOptions(self) -> None:
        if self["host"] is None and self["port"] is None:
            self["host"], self["port"] = self._last_server()
        if self["host"] is None:
            self["host"] = "localhost"
        if self["port"] is None:
            self["port"] = DEFAULT_TLS_PORT if self["tls"] else DEFAULT_PORT
        if not 0 < self["port"] < 65536:
            raise usage.UsageError(f"--port must be 1 to 65535, not {self['port']}")
        if self["tls"] and self["starttls"]:
            raise usage.UsageError("--tls and --starttls exclude each other")
        if (self["cafile"] or self["insecure"]) and not (self["tls"] or self["starttls"]):
            raise usage.UsageError("--cafile and --insecure need --tls or --starttls")
        if self["cafile"] and self["insecure"]:
            raise usage.UsageError("--cafile and --insecure exclude each other")
        downloads = self["downloads"] or self.settings.downloads
        self["downloads"] = Path(downloads).expanduser() if downloads else default_downloads()
        if not self["nick"] and self.settings.nick:
            self["nick"] = self.settings.nick

    def _last_server(self) -> tuple[str | None, int | None]:
        """
        The host and port of L{ClientSettings.server} (C{HOST:PORT}, the
        port after the last colon), C{(None, None)} when none is saved or
        it cannot be read. A saved default port (8888 or 6697) follows
        C{--tls}: the other default is used when the mode differs.
        """
        host, colon, port_text = self.settings.server.rpartition(":")
        if not colon or not host or not port_text.isdigit():
            return None, None
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        port = int(port_text)
        if port == DEFAULT_PORT and self["tls"]:
            port = DEFAULT_TLS_PORT
        elif port == DEFAULT_TLS_PORT and not self["tls"]:
            port = DEFAULT_PORT
        return host, port

    @property
    def where(self) -> str:
        """
        C{host:port}, for messages.
        """
        return f"{self['host']}:{self['port']}"


def read_cafile(path: str) -> Any:
    """
    The trust root made of the certificates in the PEM file C{path}.

    @raise usage.UsageError: the file cannot be read or holds no certificate.
    """
    try:
        with open(path, "rb") as f:
            certificates = x509.load_pem_x509_certificates(f.read())
    except OSError as e:
        raise usage.UsageError(f"cannot read --cafile {path}: {e.strerror}") from None
    except ValueError:
        raise usage.UsageError(f"--cafile {path} holds no PEM certificate") from None
    return ssl.trustRootFromCertificates(
        [ssl.Certificate(crypto.X509.from_cryptography(c)) for c in certificates]
    )


def tls_options(options: ClientOptions) -> Any:
    """
    The client TLS options the command line asks for: verify the host name
    against the system's CAs or C{--cafile}, or nothing with C{--insecure}.

    @raise usage.UsageError: C{--cafile} cannot be used.
    """
    if options["insecure"]:
        return ssl.CertificateOptions(verify=False, raiseMinimumTo=ssl.TLSVersion.TLSv1_2)
    trust = read_cafile(options["cafile"]) if options["cafile"] else None
    return ssl.optionsForClientTLS(options["host"], trustRoot=trust)


def endpoint(reactor: Any, options: ClientOptions) -> tuple[IStreamClientEndpoint, Any]:
    """
    The endpoint to the daemon, and the options for C{/starttls} (or
    C{None}).

    @raise usage.UsageError: C{--cafile} cannot be used.
    """
    tcp = HostnameEndpoint(reactor, options["host"], options["port"], timeout=15)
    if options["tls"]:
        return wrapClientTLS(tls_options(options), tcp), None
    if options["starttls"]:
        return tcp, tls_options(options)
    return tcp, None


def account(options: ClientOptions, ask: Any = input, ask_password: Any = getpass.getpass) -> Account:
    """
    Who to be: NICK, or asked for; with C{--password-prompt}, the password
    too. Called before the reactor runs.

    @raise SystemExit: the user gave no nick (end of input).
    """
    nick = options["nick"]
    while not nick:
        try:
            nick = ask("Nickname: ").strip()
        except EOFError:
            raise SystemExit(1) from None
    password = None
    if options["password-prompt"]:
        try:
            password = ask_password(f"Password for {nick}: ")
        except EOFError:
            raise SystemExit(1) from None
    return Account(nick, password)

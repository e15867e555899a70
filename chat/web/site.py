# -*- test-case-name: tests.test_web_site -*-
"""
The web listener's HTTP site (PROTOCOL.md section 9): the browser client's
static files at C{/} (from the package's C{static/} directory), the
shortcode table the page completes emoji with at C{/emoji.json}, the
WebSocket at C{/ws} and the file routes at C{/files}; every response with
a strict Content-Security-Policy.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import emoji
from twisted.internet.interfaces import IProtocolFactory
from twisted.logger import Logger
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from twisted.web.static import File
from typing_extensions import override

from chat import logs
from chat.server import ChatServer
from chat.web.files import FilesResource, WebRequest
from chat.web.meter import MeteredFactory
from chat.web.proxy import TrustedProxies, networks
from chat.web.socket import SocketFactory, SocketResource

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
"""The page's policy: its own scripts and styles only (no inline script, no
third-party origin), images from the daemon (file previews) or made by the
page, and sockets to the daemon. C{connect-src 'self'} alone does not cover
C{ws:} in every browser, hence the schemes (the Origin check guards the socket)."""

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
"""Set on every response of the web listener (a download narrows the policy further)."""

WEB_ALPN = (b"http/1.1",)
"""The application protocol a TLS web listener answers over ALPN (RFC 7301):
HTTP/1.1 only (WebSocket upgrades are HTTP/1.1's)."""

HTTP_IDLE_TIMEOUT = 60.0
"""Seconds an HTTP connection may stay idle between requests (a WebSocket is not subject to it)."""

STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


@cache
def emoji_table() -> bytes:
    """
    C{/emoji.json}: every shortcode of the C{emoji} library's C{alias}
    language (the one the Tk and terminal clients use), without its colons,
    mapped to its emoji, as UTF-8 JSON; computed once.
    """
    table: dict[str, str] = {}
    for char, data in emoji.EMOJI_DATA.items():
        if data.get("status", emoji.STATUS["fully_qualified"]) != emoji.STATUS["fully_qualified"]:
            continue
        for name in [data["en"], *data.get("alias", [])]:
            table.setdefault(name.strip(":"), char)
    return json.dumps(table, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


class _Emoji(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's name
        request.setHeader("content-type", "application/json; charset=utf-8")
        request.setHeader("cache-control", "public, max-age=86400")
        return emoji_table()


class _Static(File):
    """
    The page's files: no directory listings, no-cache (revalidated with
    C{Last-Modified}, so an upgraded daemon serves its new page).
    """

    contentTypes = STATIC_TYPES

    @override
    def directoryListing(self) -> Resource:  # noqa: N802 - Twisted's name
        return self.childNotFound

    @override
    def render_GET(self, request: Any) -> Any:  # noqa: N802 - Twisted's name
        request.setHeader("cache-control", "no-cache")
        return super().render_GET(request)


def static_directory() -> str:
    """
    The directory of the page's files, inside the installed package.
    """
    return str(resources.files("chat.web").joinpath("static"))


class WebSite(Site):
    """
    The site of the web listeners of one L{ChatServer}.

    @ivar server: the chat, for the file routes and the sockets.
    @ivar security_headers: set on every response.
    """

    requestFactory = WebRequest
    _log = Logger()

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        proxies = TrustedProxies(networks(server.settings.trusted_proxies))
        root = _Static(static_directory())
        root.putChild(b"ws", SocketResource(SocketFactory(server, proxies)))
        root.putChild(b"files", FilesResource(server))
        root.putChild(b"emoji.json", _Emoji())
        super().__init__(root, timeout=HTTP_IDLE_TIMEOUT)
        self.displayTracebacks = False
        self.security_headers = SECURITY_HEADERS
        """Set on every response (L{WebRequest})."""


    @override
    def log(self, request: http.Request) -> None:
        """
        One line per request, at C{debug} like the line listener's connections.
        """
        if logs.debugging:
            self._log.debug(
                "{peer} {method} {uri} {code}",
                peer=request.getClientAddress(), method=request.method.decode("ascii", "replace"),
                uri=request.uri.decode("ascii", "replace")[:200], code=request.code,
            )


def web_factory(server: ChatServer) -> IProtocolFactory:
    """
    The protocol factory of a C{--web} listener: the L{WebSite}, each
    connection wrapped in a read meter (L{chat.web.meter}).
    """
    site = WebSite(server)
    site.noisy = False
    factory = MeteredFactory(site)
    factory.noisy = False
    return factory

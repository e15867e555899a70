"""
End-to-end tests of the web listener (PROTOCOL.md section 9) against a
real C{twistd -n chat --web tcp:0:interface=127.0.0.1} process: a blocking
WebSocket client built on C{wsproto} chats with a line-protocol user,
files cross between the HTTP routes and raw mode, and a foreign Origin is
refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from typing import Any, ClassVar

from twisted.trial.unittest import TestCase
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from tests.e2e import TIMEOUT, Client, Daemon, twistd_command

WEB_LISTENING = re.compile(r"chat web listening on 127\.0\.0\.1:(\d+)")
"""The log line the daemon writes once its web listener is up."""


def web_port(daemon: Daemon) -> int:
    """
    The port of the daemon's web listener, from its log.
    """
    line = daemon.wait_for_line(lambda text: WEB_LISTENING.search(text) is not None)
    match = WEB_LISTENING.search(line)
    assert match is not None
    return int(match.group(1))


class WebSocketClient:
    """
    A blocking WebSocket client of the daemon's C{/ws}.

    @ivar status: 101 once accepted, or the HTTP status of the refusal.
    @ivar closed: the close code the daemon sent, or C{None}.
    """

    def __init__(self, port: int, origin: str | None = None, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events: deque[dict[str, Any]] = deque()
        self.status = 0
        self.closed: int | None = None
        self.eof = False
        self._text = ""
        headers = [(b"origin", origin.encode())] if origin is not None else []
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target="/ws", extra_headers=headers)))
        deadline = time.monotonic() + timeout
        while not self.status:
            self._fill(deadline)

    def _fill(self, deadline: float) -> None:
        """
        Receive one chunk and decode what it completes.
        """
        if self.eof:
            raise AssertionError(f"closed (code {self.closed}); pending: {list(self.events)}")
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"timed out; pending: {list(self.events)}") from None
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.status = 101
            elif isinstance(event, RejectConnection):
                self.status = event.status_code
            elif isinstance(event, TextMessage):
                self._text += event.data
                if event.message_finished:
                    self.events.append(json.loads(self._text))
                    self._text = ""
            elif isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.closed = event.code

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(text)))

    def until(self, kind: str, **members: Any) -> dict[str, Any]:
        """
        Read events until one of type C{kind} with C{members}; those before it are dropped.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            while self.events:
                event = self.events.popleft()
                if event["type"] == kind and all(event.get(k) == v for k, v in members.items()):
                    return event
            self._fill(deadline)

    def close(self) -> None:
        self.sock.close()


class WebEndToEndTests(TestCase):
    """
    One daemon with a web listener for the module.
    """

    daemon: ClassVar[Daemon]
    port: ClassVar[int]

    @classmethod
    def setUpClass(cls) -> None:
        cls.daemon = Daemon("--in-memory", "--web", "tcp:0:interface=127.0.0.1").start()
        cls.port = web_port(cls.daemon)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.stop()

    def tearDown(self) -> None:
        self.daemon.assert_clean()

    def web_user(self, nick: str) -> tuple[WebSocketClient, str]:
        """
        A WebSocket registered as C{nick}, and its token.
        """
        client = WebSocketClient(self.port)
        self.addCleanup(client.close)
        self.assertEqual(client.until("welcome")["server"], "chat")
        client.send(f"/nick {nick}")
        token: str = client.until("registered", nick=nick)["token"]
        client.until("history", room="#lobby")
        return client, token

    def tcp_user(self, nick: str) -> Client:
        client = Client.json(self.daemon.port, nick)
        self.addCleanup(client.close)
        return client

    def fetch(self, request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read()

    def test_messages_both_ways(self) -> None:
        """
        A web user and a TCP user in #lobby see each other's messages.
        """
        web, _ = self.web_user("webby")
        tcp = self.tcp_user("telly")
        web.until("join", nick="telly")
        web.send("hello from the browser")
        self.assertEqual(tcp.expect_event("message", text="hello from the browser")["from"], "webby")
        tcp.send_line("hello from the terminal")
        self.assertEqual(web.until("message", text="hello from the terminal")["from"], "telly")

    def test_http_upload_to_tcp_download(self) -> None:
        """
        An HTTP upload with the bearer token arrives intact at the TCP user's /download.
        """
        _, token = self.web_user("uploader")
        tcp = self.tcp_user("fetcher")
        data = bytes(range(256)) * 1000 + b"\r\n\xff tail"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/files?to=fetcher&name=data.bin", data=data, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
        )
        status, _, body = self.fetch(request)
        self.assertEqual(status, 201, body)
        answer = json.loads(body)
        self.assertEqual((answer["size"], answer["sha256"]), (len(data), hashlib.sha256(data).hexdigest()))
        offer = tcp.expect_event("file-offer", id=answer["id"])
        self.assertEqual((offer["from"], offer["name"]), ("uploader", "data.bin"))
        tcp.send_line(f"/download {answer['id']}")
        header = tcp.expect_event("file")
        received = tcp.read_exact(header["size"], timeout=10)
        self.assertEqual(hashlib.sha256(received).hexdigest(), offer["sha256"])
        self.assertEqual(received, data)

    def test_raw_upload_to_http_download(self) -> None:
        """
        A raw-mode upload by a TCP user is fetched by the web user over GET /files/ID.
        """
        web, token = self.web_user("reader")
        tcp = self.tcp_user("writer")
        data = b"raw mode bytes \x00\xff\r\n" * 500
        tcp.send_line(f"/upload reader raw.bin {len(data)} {hashlib.sha256(data).hexdigest()}")
        ready = tcp.expect_event("upload-ready")
        tcp.send(data)
        tcp.expect_event("upload-done", id=ready["id"])
        offer = web.until("file-offer", id=ready["id"])
        status, headers, body = self.fetch(urllib.request.Request(f"http://127.0.0.1:{self.port}/files/{offer['id']}?token={token}"))
        self.assertEqual(status, 200)
        self.assertEqual(body, data)
        self.assertTrue(headers["Content-Disposition"].startswith("attachment;"))
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        ranged = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/files/{offer['id']}",
            headers={"Authorization": f"Bearer {token}", "Range": "bytes=100-"},
        )
        status, _, body = self.fetch(ranged)
        self.assertEqual((status, body), (206, data[100:]))

    def test_foreign_origin_refused(self) -> None:
        """
        A handshake from a foreign Origin gets HTTP 403; the daemon's own origin is let in.
        """
        refused = WebSocketClient(self.port, origin="https://evil.example")
        self.addCleanup(refused.close)
        self.assertEqual(refused.status, 403)
        own = WebSocketClient(self.port, origin=f"http://127.0.0.1:{self.port}")
        self.addCleanup(own.close)
        self.assertEqual(own.status, 101)
        self.assertEqual(own.until("welcome")["type"], "welcome")

    def test_page_and_csp(self) -> None:
        """
        GET /emoji.json answers with the site's Content-Security-Policy.
        """
        status, headers, body = self.fetch(urllib.request.Request(f"http://127.0.0.1:{self.port}/emoji.json"))
        self.assertEqual(status, 200)
        self.assertIn("script-src 'self'", headers["Content-Security-Policy"])
        self.assertIn("wave", json.loads(body))


class HelpTests(TestCase):
    def test_help_lists_web_options(self) -> None:
        """
        twistd chat --help lists --web, --web-origin and --trusted-proxy.
        """
        result = subprocess.run(
            [*twistd_command(), "chat", "--help"], capture_output=True, text=True, timeout=30, check=False
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        for option in ("--web=", "--web-origin=", "--trusted-proxy="):
            self.assertIn(option, result.stdout)

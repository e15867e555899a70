"""
Tests for L{chat.web.files} (C{POST /files} and C{GET /files/ID},
PROTOCOL.md section 9) and the headers of L{chat.web.site}: HTTP requests
written by an C{h11} client into the web listener's real protocol factory
over a L{StringTransport}, beside line-protocol users of the same
L{ChatServer}, whose time comes from a L{Clock}. A download is streamed by
Twisted's producer machinery, which runs on the global reactor: hence a
trial L{TestCase}, each response awaited a reactor turn at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Generator, Sequence
from typing import Any

import h11
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from chat.memory_store import MemoryStore
from chat.protocol import ChatFactory
from chat.server import ChatServer
from chat.settings import Settings
from chat.spool import PARTIAL, Spool
from chat.tokens import GRACE
from chat.web.files import SMALL_BODY, content_disposition
from chat.web.site import CONTENT_SECURITY_POLICY
from tests.support import START, Client
from tests.test_hardening_storage import statvfs
from tests.test_spool import inline
from tests.test_web_socket import HOST, HTTPConnection, WebClient, WebTestCase

MAX_FILE = 200_000
QUOTA = 300_000
BIG = bytes(range(256)) * 400
"""102400 bytes: more than SMALL_BODY, so streamed to the spool."""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Response:
    """
    An HTTP response as the client read it.
    """

    def __init__(self, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = {name.decode().lower(): value.decode("latin-1") for name, value in headers}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


class FilesTestCase(WebTestCase, TestCase):
    """
    A server with a spool in a temporary directory that stores at once,
    two line-protocol users C{alice} and C{bob} in json, and their tokens.
    """

    settings = Settings(flood_burst=10_000, web=True, max_file=MAX_FILE, spool_quota=QUOTA)

    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-web-files-test-")
        self.addCleanup(directory.cleanup)
        self.spool = Spool(
            os.path.join(directory.name, "spool"), QUOTA, inline, statvfs=lambda path: statvfs(10**12)
        )
        self.spool.open()
        self.clock = Clock()
        self.clock.advance(START)
        self.factory = ChatFactory(ChatServer(self.settings, self.clock, MemoryStore(), files=self.spool))
        self.server = self.factory.server
        self.web = self.web_factory(self.server)
        self._port = 40000
        self.alice, self.alice_token = self.token_user("alice")
        self.bob, self.bob_token = self.token_user("bob")
        self.alice.take()

    def token_user(self, nick: str) -> tuple[Client, str]:
        """
        A json line-protocol user and the token of its C{registered}.
        """
        client = self.connect()
        client.take()
        client.line("/format json")
        client.line(f"/nick {nick}")
        [registered] = [e for e in client.take_json() if e["type"] == "registered"]
        token: str = registered["token"]
        return client, token

    @inlineCallbacks
    def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        token: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        chunked: bool = False,
    ) -> Generator[Deferred[Any], Any, Response]:
        """
        Send one request on a new connection and read its whole response.
        """
        self._port += 1
        connection = HTTPConnection(self.web, "127.0.0.1", self._port)
        client = h11.Connection(h11.CLIENT)
        sent = [("host", HOST), *headers]
        if token is not None:
            sent.append(("authorization", f"Bearer {token}"))
        if chunked:
            sent.append(("transfer-encoding", "chunked"))
        elif method == "POST" or body:
            sent.append(("content-length", str(len(body))))
        data = client.send(h11.Request(method=method, target=target, headers=sent))
        if body:
            data += client.send(h11.Data(data=body))
        data += client.send(h11.EndOfMessage())
        connection.send(data)
        response: Response = yield self.response(connection, client)
        return response

    @inlineCallbacks
    def response(
        self, connection: HTTPConnection, client: h11.Connection
    ) -> Generator[Deferred[Any], Any, Response]:
        """
        Read a response, giving the reactor turns (a download's producer needs them).
        """
        status, headers, body = 0, [], b""
        for _ in range(2000):
            self.clock.advance(0)
            data = connection.take()
            if data:  # h11 takes b"" for the end of the connection
                client.receive_data(data)
            while True:
                event = client.next_event()
                if isinstance(event, h11.Response):
                    status, headers = event.status_code, list(event.headers)
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return Response(status, headers, body)
                else:
                    break
            yield deferLater(reactor, 0, lambda: None)
        raise AssertionError(f"no complete response: {status} {headers} {body[:200]!r}")

    def upload(
        self, data: bytes = BIG, to: str = "bob", name: str = "a.bin", token: str | None = None
    ) -> Deferred[Response]:
        target = f"/files?to={to}&name={name}"
        return self.request("POST", target, data, token=self.alice_token if token is None else token)

    def stored(self) -> list[str]:
        return sorted(name for name in os.listdir(self.spool.directory) if name != PARTIAL)

    def assert_nothing_stored(self) -> None:
        """
        No file in the spool, no partial file, nothing reserved or used.
        """
        self.assertEqual(self.stored(), [])
        self.assertEqual(os.listdir(os.path.join(self.spool.directory, PARTIAL)), [])
        self.assertEqual((self.spool.reserved, self.spool.used), (0, 0))


class UploadTests(FilesTestCase):
    """
    C{POST /files?to=TARGET&name=NAME}.
    """

    @inlineCallbacks
    def test_upload_to_nick(self) -> Generator[Deferred[Any], Any, None]:
        """
        A streamed upload answers 201 with id, name, size and sha256; the uploader gets upload-done, the
        target file-offer, and the file is stored under its sha256.
        """
        response = yield self.upload()
        self.assertEqual(response.status, 201, response)
        body = response.json()
        self.assertEqual(body, {"id": body["id"], "name": "a.bin", "size": len(BIG), "sha256": sha(BIG)})
        self.assertEqual(response.headers["location"], f"/files/{body['id']}")
        self.assertEqual(self.alice.take_json(), [{"type": "upload-done", "id": body["id"], "sha256": sha(BIG)}])
        [offer] = self.bob.take_json()
        self.assertEqual(
            (offer["type"], offer["id"], offer["from"], offer["to"], offer["size"], offer["sha256"]),
            ("file-offer", body["id"], "alice", "bob", len(BIG), sha(BIG)),
        )
        self.assertEqual(self.stored(), [sha(BIG)])
        self.assertEqual(self.spool.reserved, 0)

    @inlineCallbacks
    def test_upload_small_to_room(self) -> Generator[Deferred[Any], Any, None]:
        """
        A small body (held in memory) to a room is offered to everyone in it.
        """
        response = yield self.upload(b"hello", to="%23lobby", name="hi.txt")
        self.assertEqual(response.status, 201, response)
        [offer] = self.bob.take_json()
        self.assertEqual((offer["to"], offer["name"], offer["size"]), ("#lobby", "hi.txt", 5))
        self.assertEqual(self.stored(), [sha(b"hello")])

    @inlineCallbacks
    def test_upload_from_web_user(self) -> Generator[Deferred[Any], Any, None]:
        """
        A web user's upload by HTTP with its socket's token gets upload-done over its socket.
        """
        web = self.web_connect()
        web.send_text("/nick carol")
        [token] = [e["token"] for e in web.events() if e["type"] == "registered"]
        response = yield self.upload(BIG, token=token)
        self.assertEqual(response.status, 201, response)
        self.assertEqual(web.events(), [{"type": "upload-done", "id": response.json()["id"], "sha256": sha(BIG)}])
        [offer] = [e for e in self.bob.take_json() if e["type"] == "file-offer"]
        self.assertEqual(offer["from"], "carol")

    @inlineCallbacks
    def test_no_token(self) -> Generator[Deferred[Any], Any, None]:
        """
        Without a token: 401 auth-failed with WWW-Authenticate, and the body is not stored.
        """
        for body in (b"small", BIG):
            response = yield self.request("POST", "/files?to=bob&name=a", body)
            self.assertEqual(response.status, 401, response)
            self.assertEqual(response.json()["code"], "auth-failed")
            self.assertIn("Bearer", response.headers["www-authenticate"])
            self.assert_nothing_stored()
        self.assertEqual(self.bob.take_json(), [])

    @inlineCallbacks
    def test_bad_token(self) -> Generator[Deferred[Any], Any, None]:
        """
        With a wrong token: 401, nothing stored, nothing offered.
        """
        for body in (b"small", BIG):
            response = yield self.upload(body, token="x" * 32)
            self.assertEqual(response.status, 401, response)
            self.assert_nothing_stored()
        self.assertEqual(self.bob.take_json(), [])

    @inlineCallbacks
    def test_query_token_not_for_upload(self) -> Generator[Deferred[Any], Any, None]:
        """
        An upload does not take its token from the query (only the Authorization header).
        """
        response = yield self.request("POST", f"/files?to=bob&name=a&token={self.alice_token}", BIG)
        self.assertEqual(response.status, 401, response)
        self.assert_nothing_stored()

    @inlineCallbacks
    def test_unknown_nick(self) -> Generator[Deferred[Any], Any, None]:
        """
        An unknown target nick: 404 no-such-nick, and the streamed body is dropped.
        """
        for body in (b"small", BIG):
            response = yield self.upload(body, to="nobody")
            self.assertEqual(response.status, 404, response)
            self.assertEqual(response.json()["code"], "no-such-nick")
            self.assert_nothing_stored()

    @inlineCallbacks
    def test_too_large(self) -> Generator[Deferred[Any], Any, None]:
        """
        A Content-Length over --max-file-size: 413 file-too-large, decided before any byte is stored.
        """
        response = yield self.upload(b"\0" * (MAX_FILE + 1))
        self.assertEqual(response.status, 413, response)
        self.assertEqual(response.json()["code"], "file-too-large")
        self.assert_nothing_stored()

    @inlineCallbacks
    def test_over_quota(self) -> Generator[Deferred[Any], Any, None]:
        """
        A Content-Length over what the quota leaves: 507 quota, and nothing stored.
        """
        first = yield self.upload(b"\1" * MAX_FILE)
        self.assertEqual(first.status, 201, first)
        self.alice.take()
        response = yield self.upload(b"\2" * (QUOTA - MAX_FILE + 1))
        self.assertEqual(response.status, 507, response)
        self.assertEqual(response.json()["code"], "quota")
        self.assertEqual(self.stored(), [sha(b"\1" * MAX_FILE)])
        self.assertEqual(self.spool.reserved, 0)
        self.assertEqual(self.alice.take_json(), [])

    def test_refused_from_headers(self) -> None:
        """
        A body over the size limit is refused once its headers are in: nothing is reserved while it arrives.
        """
        connection = HTTPConnection(self.web, "127.0.0.1", 45000)
        client = h11.Connection(h11.CLIENT)
        size = MAX_FILE + 10
        head = h11.Request(
            method="POST", target="/files?to=bob&name=a",
            headers=[("host", HOST), ("authorization", f"Bearer {self.alice_token}"), ("content-length", str(size))],
        )
        connection.send(client.send(head) + client.send(h11.Data(data=b"\0" * (SMALL_BODY + 1))))
        self.assertEqual((self.spool.reserved, os.listdir(os.path.join(self.spool.directory, PARTIAL))), (0, []))

    @inlineCallbacks
    def test_chunked(self) -> Generator[Deferred[Any], Any, None]:
        """
        A body without Content-Length (chunked): 411, nothing stored.
        """
        response = yield self.request("POST", "/files?to=bob&name=a", BIG, token=self.alice_token, chunked=True)
        self.assertEqual(response.status, 411, response)
        self.assert_nothing_stored()

    @inlineCallbacks
    def test_no_target(self) -> Generator[Deferred[Any], Any, None]:
        """
        An upload without ?to= gets 400 bad-arguments and is dropped.
        """
        response = yield self.request("POST", "/files?name=a", BIG, token=self.alice_token)
        self.assertEqual(response.status, 400, response)
        self.assertEqual(response.json()["code"], "bad-arguments")
        self.assert_nothing_stored()

    def test_cut_off_mid_body(self) -> None:
        """
        A request cut off mid-body leaves no file, no offer and no reservation.
        """
        connection = HTTPConnection(self.web, "127.0.0.1", 45000)
        client = h11.Connection(h11.CLIENT)
        head = h11.Request(
            method="POST", target="/files?to=bob&name=a",
            headers=[
                ("host", HOST), ("authorization", f"Bearer {self.alice_token}"), ("content-length", str(len(BIG)))
            ],
        )
        connection.send(client.send(head) + client.send(h11.Data(data=BIG[: len(BIG) // 2])))
        self.assertEqual(self.spool.reserved, len(BIG))
        connection.protocol.connectionLost(Failure(ConnectionLost()))
        self.clock.advance(0)
        self.assert_nothing_stored()
        self.assertEqual(self.alice.take_json(), [])
        self.assertEqual(self.bob.take_json(), [])

    @inlineCallbacks
    def test_uploader_gone(self) -> Generator[Deferred[Any], Any, None]:
        """
        A token whose session has ended cannot upload (401), though it may still download.
        """
        self.alice.lose()
        response = yield self.upload(BIG)
        self.assertEqual(response.status, 401, response)
        self.assert_nothing_stored()


class DownloadTests(FilesTestCase):
    """
    C{GET /files/ID}.
    """

    @inlineCallbacks
    def offer(
        self, data: bytes = BIG, name: str = "a.bin", to: str = "bob"
    ) -> Generator[Deferred[Any], Any, int]:
        response = yield self.upload(data, to=to, name=name)
        self.assertEqual(response.status, 201, response)
        self.alice.take()
        self.bob.take()
        offer_id: int = response.json()["id"]
        return offer_id

    @inlineCallbacks
    def test_download(self) -> Generator[Deferred[Any], Any, None]:
        """
        The target gets 200 with the bytes, Content-Length, an attachment disposition and nosniff.
        """
        offer_id = yield self.offer()
        response = yield self.request("GET", f"/files/{offer_id}", token=self.bob_token)
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.body, BIG)
        self.assertEqual(response.headers["content-length"], str(len(BIG)))
        self.assertEqual(
            response.headers["content-disposition"], "attachment; filename=\"a.bin\"; filename*=UTF-8''a.bin"
        )
        self.assertEqual(response.headers["x-content-type-options"], "nosniff")
        self.assertEqual(response.headers["content-type"], "application/octet-stream")

    @inlineCallbacks
    def test_download_query_token(self) -> Generator[Deferred[Any], Any, None]:
        """
        The token may be given as ?token= (for links and images).
        """
        offer_id = yield self.offer()
        response = yield self.request("GET", f"/files/{offer_id}?token={self.bob_token}")
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.body, BIG)

    @inlineCallbacks
    def test_uploader_may_download(self) -> Generator[Deferred[Any], Any, None]:
        """
        The uploader may fetch its own offer, as with /download.
        """
        offer_id = yield self.offer()
        response = yield self.request("GET", f"/files/{offer_id}", token=self.alice_token)
        self.assertEqual(response.status, 200, response)

    @inlineCallbacks
    def test_utf8_name(self) -> Generator[Deferred[Any], Any, None]:
        """
        A non-ASCII name is given as an ASCII fallback and an RFC 8187 UTF-8 name.
        """
        offer_id = yield self.offer(b"x", name="%C3%A9t%C3%A9%20%22ok%22.bin")
        response = yield self.request("GET", f"/files/{offer_id}", token=self.bob_token)
        self.assertEqual(
            response.headers["content-disposition"],
            "attachment; filename=\"_t_ _ok_.bin\"; filename*=UTF-8''%C3%A9t%C3%A9%20%22ok%22.bin",
        )
        self.assertEqual(content_disposition(""), "attachment; filename=\"file\"; filename*=UTF-8''")

    @inlineCallbacks
    def test_range(self) -> Generator[Deferred[Any], Any, None]:
        """
        Range: bytes=N- answers 206 from byte N with Content-Range.
        """
        offer_id = yield self.offer()
        response = yield self.request(
            "GET", f"/files/{offer_id}", token=self.bob_token, headers=[("range", "bytes=1000-")]
        )
        self.assertEqual(response.status, 206, response)
        self.assertEqual(response.body, BIG[1000:])
        self.assertEqual(response.headers["content-range"], f"bytes 1000-{len(BIG) - 1}/{len(BIG)}")
        self.assertEqual(response.headers["content-length"], str(len(BIG) - 1000))

    @inlineCallbacks
    def test_range_past_end(self) -> Generator[Deferred[Any], Any, None]:
        """
        A range starting at or past the end (a resumed download that was complete) gets 416 with
        Content-Range: bytes */SIZE (RFC 9110 section 14.4).
        """
        offer_id = yield self.offer()
        for start in (len(BIG), len(BIG) + 1):
            response = yield self.request(
                "GET", f"/files/{offer_id}", token=self.bob_token, headers=[("range", f"bytes={start}-")]
            )
            self.assertEqual(response.status, 416, response)
            self.assertEqual(response.headers["content-range"], f"bytes */{len(BIG)}")
            self.assertEqual(response.json()["code"], "bad-arguments")

    @inlineCallbacks
    def test_range_last_byte(self) -> Generator[Deferred[Any], Any, None]:
        """
        Range: bytes=SIZE-1- answers 206 with the last byte.
        """
        offer_id = yield self.offer()
        response = yield self.request(
            "GET", f"/files/{offer_id}", token=self.bob_token, headers=[("range", f"bytes={len(BIG) - 1}-")]
        )
        self.assertEqual(response.status, 206, response)
        self.assertEqual(response.body, BIG[-1:])
        self.assertEqual(response.headers["content-range"], f"bytes {len(BIG) - 1}-{len(BIG) - 1}/{len(BIG)}")

    @inlineCallbacks
    def test_other_range_forms_ignored(self) -> Generator[Deferred[Any], Any, None]:
        """
        A range of another form (bytes=0-9) is ignored: the whole file, 200.
        """
        offer_id = yield self.offer()
        response = yield self.request(
            "GET", f"/files/{offer_id}", token=self.bob_token, headers=[("range", "bytes=0-9")]
        )
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.body, BIG)

    @inlineCallbacks
    def test_not_offered(self) -> Generator[Deferred[Any], Any, None]:
        """
        A user the file was not offered to gets 404, as an unknown id does.
        """
        offer_id = yield self.offer()
        _, carol_token = self.token_user("carol")
        response = yield self.request("GET", f"/files/{offer_id}", token=carol_token)
        self.assertEqual(response.status, 404, response)
        self.assertEqual(response.json()["code"], "no-such-file")
        response = yield self.request("GET", "/files/999", token=self.bob_token)
        self.assertEqual(response.status, 404, response)
        response = yield self.request("GET", "/files/abc", token=self.bob_token)
        self.assertEqual(response.status, 404, response)

    @inlineCallbacks
    def test_no_token(self) -> Generator[Deferred[Any], Any, None]:
        """
        A download without a valid token gets 401.
        """
        offer_id = yield self.offer()
        response = yield self.request("GET", f"/files/{offer_id}")
        self.assertEqual(response.status, 401, response)
        response = yield self.request("GET", f"/files/{offer_id}", token="nope")
        self.assertEqual(response.status, 401, response)

    @inlineCallbacks
    def test_token_grace(self) -> Generator[Deferred[Any], Any, None]:
        """
        A token still downloads 10 minutes less a second after its session ended, and not at 10 minutes.
        """
        offer_id = yield self.offer()
        self.bob.lose()
        self.clock.advance(GRACE - 1)
        response = yield self.request("GET", f"/files/{offer_id}", token=self.bob_token)
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.body, BIG)
        self.clock.advance(1)
        response = yield self.request("GET", f"/files/{offer_id}", token=self.bob_token)
        self.assertEqual(response.status, 401, response)

    @inlineCallbacks
    def test_room_offer_after_session_ended(self) -> Generator[Deferred[Any], Any, None]:
        """
        A room's offer can be fetched within the grace by a token whose user was in the room.
        """
        offer_id = yield self.offer(to="%23lobby")
        self.bob.lose()
        self.clock.advance(60)
        response = yield self.request("GET", f"/files/{offer_id}", token=self.bob_token)
        self.assertEqual(response.status, 200, response)

    @inlineCallbacks
    def test_mixed_case_room_after_session_ended(self) -> Generator[Deferred[Any], Any, None]:
        """
        An offer to a room whose name has capitals is still found for a token whose session ended in it.
        """
        self.alice.line("/join #Dev")
        self.bob.line("/join #Dev")
        offer_id = yield self.offer(to="%23Dev")
        self.bob.lose()
        response = yield self.request("GET", f"/files/{offer_id}", token=self.bob_token)
        self.assertEqual(response.status, 200, response)
        _, carol_token = self.token_user("carol")
        response = yield self.request("GET", f"/files/{offer_id}", token=carol_token)
        self.assertEqual(response.status, 404, response)

    @inlineCallbacks
    def test_types(self) -> Generator[Deferred[Any], Any, None]:
        """
        Images are served as their type (for previews); SVG, HTML and the rest as application/octet-stream.
        """
        expected = {
            "p.png": "image/png", "p.JPG": "image/jpeg", "p.gif": "image/gif", "p.webp": "image/webp",
            "p.svg": "application/octet-stream", "p.html": "application/octet-stream",
            "p.txt": "application/octet-stream", "noext": "application/octet-stream",
        }
        for name, kind in expected.items():
            offer_id = yield self.offer(name.encode(), name=name)
            response = yield self.request("GET", f"/files/{offer_id}", token=self.bob_token)
            self.assertEqual(response.headers["content-type"], kind, name)
            self.assertEqual(response.headers["x-content-type-options"], "nosniff")

    @inlineCallbacks
    def test_raw_mode_upload_fetched(self) -> Generator[Deferred[Any], Any, None]:
        """
        A file offered through raw mode (/upload) can be fetched over GET /files/ID.
        """
        self.alice.line(f"/upload bob r.bin 5 {sha(b'12345')}")
        [ready] = self.alice.take_json()
        self.alice.send(b"12345")
        response = yield self.request("GET", f"/files/{ready['id']}", token=self.bob_token)
        self.assertEqual(response.status, 200, response)
        self.assertEqual(response.body, b"12345")


class SiteTests(FilesTestCase):
    """
    The site's headers and C{/emoji.json}.
    """

    @inlineCallbacks
    def test_csp_on_page(self) -> Generator[Deferred[Any], Any, None]:
        """
        GET / carries the strict Content-Security-Policy and nosniff.
        """
        response = yield self.request("GET", "/")
        self.assertEqual(response.headers["content-security-policy"], CONTENT_SECURITY_POLICY)
        self.assertIn("script-src 'self'", CONTENT_SECURITY_POLICY)
        self.assertNotIn("unsafe-inline", CONTENT_SECURITY_POLICY)
        self.assertEqual(response.headers["x-content-type-options"], "nosniff")

    @inlineCallbacks
    def test_emoji_table(self) -> Generator[Deferred[Any], Any, None]:
        """
        GET /emoji.json maps shortcodes without colons to emoji.
        """
        response = yield self.request("GET", "/emoji.json")
        self.assertEqual(response.status, 200, response)
        table = response.json()
        self.assertEqual(table["thumbs_up"], "\N{THUMBS UP SIGN}")
        self.assertEqual(table["wave"], "\N{WAVING HAND SIGN}")
        self.assertFalse([name for name in table if name.startswith(":")])

    @inlineCallbacks
    def test_error_headers(self) -> Generator[Deferred[Any], Any, None]:
        """
        An error answer of the file routes is JSON and carries the site's headers too.
        """
        response = yield self.request("GET", "/files/1")
        self.assertEqual(response.headers["content-type"], "application/json")
        self.assertEqual(response.headers["content-security-policy"], CONTENT_SECURITY_POLICY)


del WebTestCase  # imported for its helpers: not collected again here
del WebClient

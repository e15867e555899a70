"""
Tests for file sharing in L{chat.protocol} (PROTOCOL.md section 6):
C{/upload} through the raw-mode switch, C{/download} streamed between
lines, C{/files}, limits and errors, over L{StringTransport} with time from
a L{Clock}, and the service's sweep of expired offers.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import timedelta
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from chat import events
from chat.domain import utc
from chat.memory_store import MemoryStore
from chat.protocol import MAX_DOWNLOADS, ChatFactory
from chat.server import ChatServer
from chat.service import SWEEP_INTERVAL, ChatService
from chat.settings import Settings
from chat.spool import PARTIAL, Spool
from tests.support import START, Client, ProtocolTestCase, chunked, decode_json, error_text
from tests.test_spool import inline

TTL = 24 * 3600
EXPIRES = "2025-11-22T14:02:03.500Z"
"""START plus the default file TTL, as sent in C{file-offer}."""

# Bytes that a telnet filter or a line reader would mangle.
DATA = b"line one\r\nIAC \xff\xfd\x06 NUL \x00 CR \r end\n" * 37


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def offer_json(
    offer_id: int, to: str, data: bytes = DATA, name: str = "a.bin", sender: str = "alice"
) -> dict[str, Any]:
    return {
        "type": "file-offer", "id": offer_id, "from": sender, "to": to, "name": name,
        "size": len(data), "sha256": sha(data), "expires": EXPIRES,
    }


class FilesTestCase(ProtocolTestCase):
    """
    A factory whose spool lives in a temporary directory and stores
    uploads at once (no thread).
    """

    settings = Settings(flood_burst=10_000, max_file=4096, spool_quota=10_000)

    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-files-test-")
        self.addCleanup(directory.cleanup)
        self.spool = Spool(os.path.join(directory.name, "spool"), self.settings.spool_quota, self.run_in_thread)
        self.spool.open()
        self.clock = Clock()
        self.clock.advance(START)
        self.store = MemoryStore()
        self.factory = ChatFactory(ChatServer(self.settings, self.clock, self.store, files=self.spool))
        self.server = self.factory.server
        self._port = 40000
        self.alice = self.json_user("alice")
        self.bob = self.json_user("bob")
        self.alice.take()

    def run_in_thread(self, function: Any, *args: Any) -> Deferred[Any]:
        return inline(function, *args)

    def upload(self, client: Client, target: str, data: bytes = DATA, name: str = "a.bin") -> int:
        """
        Upload C{data} with its sha256 (what C{client} was sent before is
        dropped); the offer's id.
        """
        client.take()
        client.line(f"/upload {target} {name} {len(data)} {sha(data)}")
        [ready] = client.take_json()
        self.assertEqual(ready["type"], "upload-ready", ready)
        client.send(data)
        offer_id: int = ready["id"]
        return offer_id

    def download(self, client: Client) -> bytes:
        """
        Let the transport pull the file being sent until it is done, as the
        reactor would; everything written.
        """
        transport = client.transport
        for _ in range(10_000):
            producer = transport.producer
            if producer is None or transport.streaming:
                break
            producer.resumeProducing()
        return client.take()

    def stored(self) -> list[str]:
        return sorted(name for name in os.listdir(self.spool.directory) if name != PARTIAL)

    def partial(self) -> list[str]:
        return os.listdir(os.path.join(self.spool.directory, PARTIAL))


class UploadTests(FilesTestCase):
    def test_upload_to_nick(self) -> None:
        """
        An upload is answered upload-ready, then, after exactly SIZE bytes,
        upload-done; the target nick gets file-offer, and the file is
        stored under its sha256.
        """
        self.alice.line(f"/upload bob a.bin {len(DATA)} {sha(DATA)}")
        self.assertEqual(
            self.alice.take_json(), [{"type": "upload-ready", "id": 1, "name": "a.bin", "size": len(DATA)}]
        )
        for piece in chunked(DATA[:-1], 100):
            self.alice.send(piece)
        self.assertEqual(self.alice.take(), b"")
        self.assertEqual(self.bob.take(), b"")
        self.alice.send(DATA[-1:])
        self.assertEqual(self.alice.take_json(), [{"type": "upload-done", "id": 1, "sha256": sha(DATA)}])
        self.assertEqual(self.bob.take_json(), [offer_json(1, "bob")])
        self.assertEqual(self.stored(), [sha(DATA)])
        with open(os.path.join(self.spool.directory, sha(DATA)), "rb") as f:
            self.assertEqual(f.read(), DATA)

    def test_upload_to_room(self) -> None:
        """
        An upload to a room is offered to everyone in it, the uploader included, and to nobody else.
        """
        carol = self.json_user("carol")
        self.bob.line("/join #dev")
        self.alice.line("/join #dev")
        self.alice.take(), self.bob.take(), carol.take()
        offer_id = self.upload(self.alice, "#DEV")
        self.assertEqual(
            self.alice.take_json(),
            [{"type": "upload-done", "id": offer_id, "sha256": sha(DATA)}, offer_json(offer_id, "#dev")],
        )
        self.assertEqual(self.bob.take_json(), [offer_json(offer_id, "#dev")])
        self.assertEqual(carol.take(), b"")

    def test_lines_after_last_byte(self) -> None:
        """
        Bytes after the SIZE-th are lines again, telnet line ends included,
        even in the same packet as the file's bytes and the command.
        """
        data = b"\xff\xfd\x06\r\n"
        self.alice.send(f"/upload bob a.bin {len(data)}\n".encode() + data + b"/ping one\r\n/ping two\n")
        replies = self.alice.take_json()
        self.assertEqual([r["type"] for r in replies], ["upload-ready", "upload-done", "pong", "pong"])
        self.assertEqual([r["token"] for r in replies[2:]], ["one", "two"])
        self.assertEqual(replies[1]["sha256"], sha(data))
        self.assertEqual(self.stored(), [sha(data)])

    def test_upload_after_telnet_line(self) -> None:
        """
        Raw bytes that follow a CR LF ended /upload line in the same packet
        are taken as they are, not as telnet input.
        """
        data = b"a\r\x00b\xff\xffc\r\n"
        self.alice.send(f"/upload bob a.bin {len(data)} {sha(data)}\r\n".encode() + data + b"hi\r\n")
        replies = self.alice.take_json()
        self.assertEqual([r["type"] for r in replies], ["upload-ready", "upload-done", "message"])
        self.assertEqual(replies[2]["text"], "hi")

    def test_empty_file(self) -> None:
        """
        A zero-byte upload completes at once, and the next line is a line.
        """
        self.alice.send(f"/upload bob empty 0 {sha(b'')}\n/ping x\n".encode())
        self.assertEqual(
            [r["type"] for r in self.alice.take_json()], ["upload-ready", "upload-done", "pong"]
        )
        self.assertEqual(self.bob.take_json(), [offer_json(1, "bob", b"", "empty")])

    def test_name_with_spaces(self) -> None:
        """
        NAME may hold spaces: SIZE and SHA256 are read from the end.
        """
        self.alice.line(f"/upload bob my holiday 2 photo.jpg 3 {sha(b'abc')}")
        [ready] = self.alice.take_json()
        self.assertEqual(ready["name"], "my holiday 2 photo.jpg")
        self.alice.send(b"abc")
        self.assertEqual(self.bob.take_json()[0]["name"], "my holiday 2 photo.jpg")

    def test_name_is_only_a_label(self) -> None:
        """
        A NAME with a path or control characters is shown cleaned, and the
        file is stored by its sha256 only.
        """
        self.alice.line("/upload bob ../../x 1")
        self.assertEqual(self.alice.take_json()[0]["name"], "x")
        self.alice.send(b"1")
        self.alice.take()
        self.alice.line("/upload bob a\x1b[31mb\x07 1")
        self.assertEqual(self.alice.take_json()[0]["name"], "a[31mb")
        self.alice.send(b"2")
        self.assertEqual(self.stored(), sorted([sha(b"1"), sha(b"2")]))

    def test_checksum_mismatch(self) -> None:
        """
        Bytes that do not match the announced sha256 get C{checksum-mismatch}; nothing is offered or kept.
        """
        self.alice.line(f"/upload bob a.bin 3 {'ab' * 32}")
        self.alice.take()
        self.alice.send(b"abc/ping after\n")
        replies = self.alice.take_json()
        self.assertEqual([r["type"] for r in replies], ["error", "pong"])
        self.assertEqual(replies[0]["code"], "checksum-mismatch")
        self.assertEqual(self.bob.take(), b"")
        self.assertEqual((self.stored(), self.partial()), ([], []))
        self.assertEqual(self.server.domain.offers, {})

    def test_too_large(self) -> None:
        """
        A file over the size limit gets C{file-too-large}, and the connection stays in line mode.
        """
        self.alice.line("/upload bob a.bin 4097")
        self.alice.line("/ping still lines")
        self.assertEqual(self.alice.take_json(), [
            {"type": "error", "code": "file-too-large",
             "message": "a file is at most 4096 bytes on this server, not 4097"},
            {"type": "pong", "token": "still lines"},
        ])
        self.assertEqual(self.partial(), [])

    def test_quota(self) -> None:
        """
        An upload that would take the spool past its quota gets C{quota}; stored files and uploads in progress count.
        """
        self.upload(self.alice, "bob", b"x" * 4000)
        self.bob.line("/upload alice b.bin 4000")
        self.bob.send(b"y" * 10)
        self.alice.take(), self.bob.take()
        carol = self.json_user("carol", "192.0.2.9")  # another address: its share is untouched
        carol.line("/upload bob c.bin 2001")
        [error] = carol.take_json()
        self.assertEqual((error["type"], error["code"]), ("error", "quota"))
        carol.line("/upload bob c.bin 2000")
        self.assertEqual(carol.take_json()[0]["type"], "upload-ready")

    def test_bad_arguments(self) -> None:
        """
        Malformed /upload arguments get C{bad-arguments} with the usage.
        """
        for args in ("", "bob", "bob a.bin", "bob a.bin -3", "bob a.bin 3 nothex", "bob a.bin 3x", "bob a.bin ３"):
            self.alice.line(f"/upload {args}")
            self.assertEqual(self.alice.take_json(), [{
                "type": "error", "code": "bad-arguments", "message": "usage: /upload TARGET NAME SIZE [SHA256]",
            }], args)

    def test_bad_targets(self) -> None:
        """
        The target must be a connected or registered nick, or a room the uploader is in.
        """
        self.json_user("carol").line("/join #other")
        self.alice.take()
        for target, code in [("nobody", "no-such-nick"), ("#nowhere", "no-such-room"), ("#other", "not-in-room")]:
            self.alice.line(f"/upload {target} a.bin 3")
            [error] = self.alice.take_json()
            self.assertEqual(error["code"], code, target)
        self.assertEqual(self.partial(), [])

    def test_offline_registered_nick(self) -> None:
        """
        An upload to a registered nick that is away is offered when they
        log in (they are told), and nobody is sent file-offer meanwhile.
        """
        self.server.domain.accounts["dave"] = "Dave"
        offer_id = self.upload(self.alice, "DAVE")
        self.assertEqual(self.alice.take_json(), [{"type": "upload-done", "id": offer_id, "sha256": sha(DATA)}])
        self.assertEqual(self.server.domain.offers[offer_id].to, "Dave")

    def test_not_registered(self) -> None:
        """
        File commands need a nick.
        """
        client = self.connect()
        client.take()
        client.line("/upload bob a 1")
        client.line("/files")
        self.assertEqual(client.take().count(b"(not-registered)"), 2)

    def test_lines_wait_for_the_commit(self) -> None:
        """
        Lines after an upload run once it is stored: their replies follow upload-done.
        """
        pending: list[Deferred[None]] = []

        def later(function: Any, *args: Any) -> Deferred[Any]:
            waiting: Deferred[None] = Deferred()
            pending.append(waiting)
            return waiting.addCallback(lambda _: function(*args))

        self.run_in_thread = later  # type: ignore[method-assign]
        self.spool._run = later
        self.alice.send(b"/upload bob a.bin 3\nabc/ping after\n")
        self.assertEqual([r["type"] for r in self.alice.take_json()], ["upload-ready"])
        pending[0].callback(None)
        self.assertEqual([r["type"] for r in self.alice.take_json()], ["upload-done", "pong"])

    def test_connection_lost_mid_upload(self) -> None:
        """
        A connection lost mid-upload leaves no file, no offer, and no reservation.
        """
        self.alice.line("/upload bob a.bin 100")
        self.alice.send(b"x" * 50)
        self.assertEqual(len(self.partial()), 1)
        self.alice.lose()
        self.assertEqual((self.partial(), self.stored()), ([], []))
        self.assertEqual(self.spool.reserved, 0)
        self.assertEqual(self.server.domain.offers, {})
        self.assertNotIn(b"file-offer", self.bob.take())


class DownloadTests(FilesTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.offer_id = self.upload(self.alice, "bob")
        self.alice.take(), self.bob.take()

    def header(self, offset: int = 0) -> bytes:
        return (
            f'{{"type":"file","id":{self.offer_id},"name":"a.bin","size":{len(DATA)},'
            f'"offset":{offset},"sha256":"{sha(DATA)}"}}\r\n'
        ).encode()

    def test_download(self) -> None:
        """
        /download sends one file line, then exactly the file's bytes, then lines again.
        """
        self.bob.line(f"/download {self.offer_id}")
        self.bob.line("/ping after")
        self.assertEqual(self.download(self.bob), self.header() + DATA + b'{"type":"pong","token":"after"}\r\n')

    def test_lines_wait_for_the_last_byte(self) -> None:
        """
        Events and replies that come during a download are sent after its
        last byte, in order; commands are still read meanwhile.
        """
        self.bob.line(f"/download {self.offer_id}")
        sender = self.bob.transport.producer
        sender.resumeProducing()  # the first 64 KiB: here, the whole file
        self.alice.line("hello bob")
        self.bob.line("/ping during")
        self.assertEqual(self.bob.take(), self.header() + DATA)
        lines = decode_json(self.download(self.bob))  # the sender finds the end of the file
        self.assertEqual([(e["type"], e.get("text") or e.get("token")) for e in lines],
                         [("message", "hello bob"), ("pong", "during")])

    def test_big_file_interleaved_with_chat(self) -> None:
        """
        A file of many chunks arrives whole, however much is said during it.
        """
        data = os.urandom(300_000)
        settings = Settings(flood_burst=10_000, max_file=1_000_000, spool_quota=2_000_000)
        factory = ChatFactory(ChatServer(settings, self.clock, MemoryStore(), files=self.spool))
        self.spool.quota = settings.spool_quota
        alice = self.json_user_of(factory, "alice")
        bob = self.json_user_of(factory, "bob")
        offer_id = self.upload(alice, "bob", data)
        bob.take()
        bob.line(f"/download {offer_id}")
        sender = bob.transport.producer
        for count in range(20):
            if count % 3 == 0 and bob.transport.producer is sender:
                sender.resumeProducing()
            alice.line(f"message {count}")
        written = self.download(bob)
        header, _, rest = written.partition(b"\r\n")
        self.assertEqual(json.loads(header)["offset"], 0)
        self.assertEqual(rest[:len(data)], data)
        texts = [e["text"] for e in decode_json(rest[len(data):])]
        self.assertEqual(texts, [f"message {count}" for count in range(20)])

    def json_user_of(self, factory: ChatFactory, nick: str) -> Client:
        self._port += 1
        client = Client(factory, "127.0.0.1", self._port)
        client.line("/format json")
        client.line(f"/nick {nick}")
        client.take()
        return client

    def test_resume(self) -> None:
        """
        With OFFSET only the bytes from OFFSET are sent; OFFSET = SIZE sends none.
        """
        self.bob.line(f"/download {self.offer_id} 100")
        self.assertEqual(self.download(self.bob), self.header(100) + DATA[100:])
        self.bob.line(f"/download {self.offer_id} {len(DATA)}")
        self.assertEqual(self.download(self.bob), self.header(len(DATA)))

    def test_offset_past_end(self) -> None:
        """
        An OFFSET past the file's size is C{bad-arguments}.
        """
        self.bob.line(f"/download {self.offer_id} {len(DATA) + 1}")
        [error] = self.bob.take_json()
        self.assertEqual(
            (error["code"], error["message"]), ("bad-arguments", f"OFFSET is 0 to {len(DATA)}, the file's size")
        )

    def test_uploader_may_download(self) -> None:
        """
        The uploader may fetch their own offer.
        """
        self.alice.line(f"/download {self.offer_id}")
        self.assertEqual(self.download(self.alice), self.header() + DATA)

    def test_not_offered_to_requester(self) -> None:
        """
        Someone the file was not offered to, or an unknown id, gets C{no-such-file}.
        """
        carol = self.json_user("carol")
        for line in (f"/download {self.offer_id}", "/download 999"):
            carol.line(line)
            [error] = carol.take_json()
            self.assertEqual(error["code"], "no-such-file", line)

    def test_room_offer_for_members_only(self) -> None:
        """
        A room's offer may be fetched by its members, not by someone who left the room.
        """
        self.bob.line("/part #lobby")
        self.bob.take()
        offer_id = self.upload(self.alice, "#lobby", b"for the room")
        carol = self.json_user("carol")
        carol.line(f"/download {offer_id}")
        self.assertIn(b"for the room", self.download(carol))
        self.bob.line(f"/download {offer_id}")
        self.assertEqual(self.bob.take_json()[0]["code"], "no-such-file")

    def test_expired(self) -> None:
        """
        Once the offer's time is up, /download is C{no-such-file} even before the sweep.
        """
        self.clock.advance(TTL)
        self.bob.line(f"/download {self.offer_id}")
        self.assertEqual(self.bob.take_json()[0]["code"], "no-such-file")

    def test_text_format_refused(self) -> None:
        """
        In the text format /download is refused: raw bytes would garble a terminal.
        """
        self.bob.line("/format text")
        self.bob.take()
        self.bob.line(f"/download {self.offer_id}")
        self.assertEqual(self.bob.take(), error_text(
            "bad-arguments",
            "/download sends the file's raw bytes, which a terminal cannot show: "
            "fetch files with a chat client (chat-client), or switch to /format json",
        ))

    def test_downloads_queue_up_to_limit(self) -> None:
        """
        Downloads asked for during one are sent after it, in order, up to a
        limit per connection; beyond, C{busy}.
        """
        for _ in range(MAX_DOWNLOADS + 1):
            self.bob.line(f"/download {self.offer_id} {len(DATA) - 1}")
        written = self.download(self.bob)
        one = self.header(len(DATA) - 1) + DATA[-1:]
        busy = b'{"type":"error","code":"busy","message":"at most 4 downloads at a time: wait for one to finish"}\r\n'
        self.assertEqual(written, one * MAX_DOWNLOADS + busy)
        self.bob.line(f"/download {self.offer_id} {len(DATA)}")
        self.assertEqual(self.download(self.bob), self.header(len(DATA)))

    def test_connection_lost_mid_download(self) -> None:
        """
        A connection lost mid-download stops the file and closes it; nothing more is written.
        """
        offer_id = self.upload(self.alice, "bob", b"y" * 4000)
        self.bob.take()
        self.bob.line(f"/download {offer_id}")
        sender = self.bob.transport.producer
        file = sender.file
        self.bob.transport.loseConnection()
        sender.stopProducing()  # as the transport does when the connection goes
        self.bob.lose()
        self.assertTrue(file.closed)
        self.assertEqual(self.bob.protocol._downloads, 0)
        self.alice.line("still here")
        self.assertNotIn(b"still here", self.bob.take())


class FilesListTests(FilesTestCase):
    def test_files_lists_open_offers(self) -> None:
        """
        /files lists, oldest first, the offers the user may fetch (to them,
        to their rooms, or their own), then their count.
        """
        first = self.upload(self.alice, "bob", b"one")
        second = self.upload(self.alice, "#lobby", b"two")
        self.upload(self.bob, "alice", b"not for bob? it is his own")
        carol = self.json_user("carol")
        self.upload(carol, "alice", b"for alice only")
        self.bob.take()
        self.bob.line("/files")
        listed = self.bob.take_json()
        self.assertEqual([e.get("id") for e in listed], [first, second, 3, None])
        self.assertEqual(listed[-1], {
            "type": "info",
            "text": "3 files offered to you, listed above: /get ID fetches one in chat-client or chat-tk",
        })

    def test_files_none(self) -> None:
        """
        With nothing offered, /files says so.
        """
        self.bob.line("/files")
        self.assertEqual(self.bob.take_json(), [{"type": "info", "text": "No files are offered to you"}])

    def test_files_text(self) -> None:
        """
        A text user sees an offer with its name, size and id, and how to fetch it.
        """
        bob = self.text_user("carol")
        self.upload(self.alice, "carol", b"x" * 2048, "notes.txt")
        self.assertEqual(bob.take(), (
            b"*** alice offers a file to carol: notes.txt (2.0 KiB), id 1, until 2025-11-22 14:02 UTC\r\n"
            b"***   fetch it with a chat client (chat-client or chat-tk: /get 1); /download 1 sends raw bytes, so only "
            b"after /format json\r\n"
        ))


class SweepTests(FilesTestCase):
    def test_expired_offers_and_files_removed(self) -> None:
        """
        The periodic sweep removes offers past their time and the files no offer points to.
        """
        service = ChatService(self.server, self.clock)
        self.patch(self.server.accounts.hasher, "start", lambda: None)
        service.startService()
        self.addCleanup(service.stopService)
        early = self.upload(self.alice, "bob", b"early")
        self.clock.advance(TTL / 2)
        late = self.upload(self.alice, "bob", b"late")
        shared = self.upload(self.alice, "#lobby", b"early")
        self.clock.advance(TTL / 2)  # early's time is up
        self.clock.advance(SWEEP_INTERVAL)
        self.assertEqual(sorted(self.server.domain.offers), [late, shared])
        self.assertEqual(self.stored(), sorted([sha(b"early"), sha(b"late")]))
        self.clock.advance(TTL / 2)
        self.assertEqual(self.server.domain.offers, {})
        self.assertEqual((self.stored(), self.spool.used), ([], 0))
        self.assertEqual(self.store.offers(), [])
        del early

    def test_offers_without_files_dropped_at_start(self) -> None:
        """
        At start, offers whose file is gone are dropped, and files without an offer are removed.
        """
        orphan = os.path.join(self.spool.directory, "ab" * 32)
        with open(orphan, "wb") as f:
            f.write(b"orphan")
        self.spool.open()
        lost = events.FileOffer(7, "alice", "bob", "lost", 3, "cd" * 32, utc(START) + timedelta(hours=1))
        self.server.domain.offers[7] = lost
        service = ChatService(self.server, self.clock)
        self.patch(self.server.accounts.hasher, "start", lambda: None)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(self.server.domain.offers, {})
        self.assertFalse(os.path.exists(orphan))

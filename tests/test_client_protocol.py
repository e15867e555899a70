"""
Tests for L{chat.client.protocol.ChatClientProtocol} over L{StringTransport}:
the exact bytes it sends, the events it hands to its handler, and file
transfers and C{/starttls} across the raw-mode switch. Blocking file work
runs inline instead of in a thread.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import ITLSTransport
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from chat import events
from chat.client.protocol import ChatClientProtocol, IClientHandler, ServerError
from chat.client.transfer import ChecksumMismatch
from chat.codec import ProtocolError
from chat.render import render_json, render_text
from tests.test_client_transfer import scratch

WELCOME = events.Welcome("chat", "0.1.0", "be nice", events.Limits(4096, 24, 104857600))
DATA = bytes(range(256)) * 20 + b"\r\n{\"type\":\"info\"}\r\n\xff\xfd\x06" * 10
"""File bytes that a line reader would mangle: CR LF, JSON-looking lines, telnet bytes."""
HELLO = events.Message(5, datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=timezone.utc), "#lobby", "bob", "hello")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inline(f: Callable[..., Any], *args: Any) -> Deferred[Any]:
    """
    A C{run_in_thread} that runs C{f} at once.
    """
    try:
        return succeed(f(*args))
    except Exception:
        return fail()


def wire(*items: events.Event | bytes) -> bytes:
    """
    What the daemon sends: events in json, raw bytes as they are.
    """
    return b"".join(item if isinstance(item, bytes) else render_json(item) for item in items)


@implementer(IClientHandler)
class Recorder:
    """
    A handler that records every call, in order.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def connected(self, protocol: ChatClientProtocol) -> None:
        self.calls.append(("connected", protocol))

    def event_received(self, event: events.Event) -> None:
        self.calls.append(("event", event))

    def disconnected(self, reason: Failure) -> None:
        self.calls.append(("disconnected", reason))

    @property
    def events(self) -> list[events.Event]:
        return [value for kind, value in self.calls if kind == "event"]


@implementer(ITLSTransport)
class TLSTransport(StringTransport):  # type: ignore[misc]  # ITCPTransport's members are not needed here
    """
    A L{StringTransport} that records C{startTLS}, and what had been written before it.
    """

    tls: Any = None
    before_tls = b""

    def startTLS(self, contextFactory: Any, normal: bool = True) -> None:  # noqa: N802, N803
        self.tls = contextFactory
        self.before_tls = self.value()


def pump(transport: StringTransport) -> int:
    """
    Drive a registered pull producer (a L{FileSender}) to its end.

    @return: how many times it was asked for data.
    """
    rounds = 0
    while transport.producer is not None:
        transport.producer.resumeProducing()
        rounds += 1
    return rounds


class ClientTestCase(SynchronousTestCase):
    """
    A client protocol on a L{TLSTransport}, welcomed in json.
    """

    def setUp(self) -> None:
        self.handler = Recorder()
        self.client = ChatClientProtocol(self.handler, inline)
        self.transport = TLSTransport()
        self.client.makeConnection(self.transport)
        self.folder = scratch(self) / "downloads"

    def welcome(self) -> None:
        self.receive(render_text(WELCOME) + render_json(WELCOME))
        self.transport.clear()
        del self.handler.calls[:]

    def receive(self, data: bytes, chunk: int = 0) -> None:
        if not chunk:
            self.client.dataReceived(data)
            return
        for i in range(0, len(data), chunk):
            self.client.dataReceived(data[i:i + chunk])

    def sent(self) -> bytes:
        value: bytes = self.transport.value()
        self.transport.clear()
        return value

    def file(self, data: bytes = DATA, name: str = "report.pdf") -> Path:
        path = scratch(self) / name
        path.write_bytes(data)
        return path


class ConnectionTests(ClientTestCase):
    """
    Asking for json, ignoring the text greeting, and handing over events.
    """

    def test_asks_for_json(self) -> None:
        """
        The first bytes sent are exactly C{/format json} and CR LF.
        """
        self.assertEqual(self.transport.value(), b"/format json\r\n")

    def test_text_preamble_ignored(self) -> None:
        """
        The text greeting is ignored; the json welcome goes to the handler, then C{connected}.
        """
        greeting = render_text(WELCOME)
        self.assertIn(b"Choose a nickname", greeting)
        with capturedLogs() as logged:
            self.receive(greeting + render_json(WELCOME), chunk=3)
        self.assertEqual(self.handler.calls, [("event", WELCOME), ("connected", self.client)])
        self.assertEqual(list(logged), [])

    def test_connected_once(self) -> None:
        """
        A later welcome (another C{/format json}) is an event, not a second C{connected}.
        """
        self.welcome()
        self.receive(render_json(WELCOME))
        self.assertEqual(self.handler.calls, [("event", WELCOME)])

    def test_events_in_order(self) -> None:
        """
        Events arriving a byte at a time reach the handler whole and in order.
        """
        self.welcome()
        sent: list[events.Event] = [HELLO, events.StatusChanged("bob", "lunch"), events.Info("a\nb"), events.Pong("1")]
        self.receive(wire(*sent), chunk=1)
        self.assertEqual(self.handler.events, sent)

    def test_bad_line_logged_and_dropped(self) -> None:
        """
        A line that is not a json event is logged and dropped; the next one arrives.
        """
        self.welcome()
        with capturedLogs() as logged:
            self.receive(b'{"type":"message","id":"x"}\r\nnot json\r\n' + render_json(HELLO))
        self.assertEqual(self.handler.events, [HELLO])
        messages = [formatEvent(e) for e in logged]
        self.assertEqual(len(messages), 2, messages)
        self.assertIn("'id'", messages[0])
        self.assertIn("not JSON", messages[1])

    def test_unknown_type_dropped_silently(self) -> None:
        """
        An event of an unknown type is dropped without a log line.
        """
        self.welcome()
        with capturedLogs() as logged:
            self.receive(b'{"type":"reaction","id":1}\r\n' + render_json(HELLO))
        self.assertEqual(self.handler.events, [HELLO])
        self.assertEqual(list(logged), [])

    def test_handler_failure_contained(self) -> None:
        """
        An exception in the handler is logged, and later events still arrive.
        """
        self.welcome()
        calls: list[events.Event] = []

        def explode(event: events.Event) -> None:
            calls.append(event)
            raise RuntimeError("frontend bug")

        self.handler.event_received = explode  # type: ignore[method-assign]
        with capturedLogs() as logged:
            self.receive(wire(HELLO, HELLO))
        self.assertEqual(calls, [HELLO, HELLO])
        self.assertEqual(len([e for e in logged if e.get("log_failure")]), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertFalse(self.transport.disconnecting)

    def test_line_too_long(self) -> None:
        """
        A line over the limit (8 MiB) is logged and the connection dropped.
        """
        self.assertEqual(ChatClientProtocol.MAX_LENGTH, 8 * 1024 * 1024)
        self.welcome()
        self.client.MAX_LENGTH = 100
        with capturedLogs() as logged:
            self.receive(b'{"type":"info","text":"' + b"x" * 200)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(len(logged), 1)

    def test_disconnected(self) -> None:
        """
        Losing the connection tells the handler, with the reason.
        """
        self.welcome()
        reason = Failure(ConnectionDone())
        self.client.connectionLost(reason)
        self.assertEqual(self.handler.calls, [("disconnected", reason)])


class SendTests(ClientTestCase):
    """
    Lines and messages, byte for byte.
    """

    def test_send_line(self) -> None:
        """
        A line goes out as UTF-8 with CR LF.
        """
        self.welcome()
        self.client.send_line("/join #d\u00e9v")
        self.client.send_line("/msg bob caf\u00e9 \U0001f600")
        self.assertEqual(self.sent(), "/join #d\u00e9v\r\n/msg bob caf\u00e9 \U0001f600\r\n".encode())

    def test_line_ends_refused(self) -> None:
        """
        CR, LF or NUL in a line raise C{ValueError}, and nothing is sent.
        """
        self.welcome()
        for text in ["a\rb", "a\nb", "a\0b", "hi\r\n/quit"]:
            self.assertRaises(ValueError, self.client.send_line, text)
        self.assertEqual(self.sent(), b"")

    def test_client_commands_refused(self) -> None:
        """
        C{/upload}, C{/download}, C{/starttls} and C{/format}, which would desynchronise the client, are refused.
        """
        self.welcome()
        for text in ["/upload bob x 3", "/DOWNLOAD 7", "/starttls", "\x01/format text", "/format"]:
            self.assertRaises(ValueError, self.client.send_line, text)
        self.client.send_line("//upload is a word")
        self.client.send_line("/uploads")
        self.assertEqual(self.sent(), b"//upload is a word\r\n/uploads\r\n")

    def test_say(self) -> None:
        """
        C{say} sends text as is, and a text starting with C{/} (after control characters) as C{//}.
        """
        self.welcome()
        self.client.say("hello")
        self.client.say("/me is not a command")
        self.client.say("//two")
        self.client.say("\x1b/quit")
        self.client.say(" /indented")
        self.assertEqual(
            self.sent(), b"hello\r\n//me is not a command\r\n///two\r\n/\x1b/quit\r\n /indented\r\n"
        )


class UploadTests(ClientTestCase):
    """
    C{upload}: the announcement, the raw bytes, lines held meanwhile, and the answers.
    """

    def test_upload(self) -> None:
        """
        The C{/upload} line and the file's bytes are exact; lines sent meanwhile follow C{upload-done}.
        """
        self.welcome()
        data = DATA * 8
        path = self.file(data)
        progress: list[tuple[int, int]] = []
        d = self.client.upload("bob", path, lambda done, size: progress.append((done, size)))
        self.assertEqual(
            self.sent(), f"/ping chat-client-1\r\n/upload bob report.pdf {len(data)} {sha(data)}\r\n".encode()
        )
        self.client.send_line("typed during the upload")
        self.client.say("/and this")
        self.receive(wire(events.Pong("chat-client-1"), events.UploadReady(12, "report.pdf", len(data)), HELLO))
        self.assertEqual(self.handler.events, [HELLO])
        self.assertEqual(pump(self.transport), 4)
        self.assertEqual(self.sent(), data)
        self.assertEqual(progress, [(16384, len(data)), (32768, len(data)), (len(data), len(data))])
        self.assertNoResult(d)
        done = events.UploadDone(12, sha(data))
        self.receive(wire(done))
        self.assertEqual(self.successResultOf(d), done)
        self.assertEqual(self.sent(), b"typed during the upload\r\n//and this\r\n")
        self.assertEqual(self.handler.events, [HELLO])

    def test_lines_held_before_ready(self) -> None:
        """
        Lines sent between C{/upload} and C{upload-ready} wait too: the daemon would read them as the file.
        """
        self.welcome()
        self.client.upload("#dev", self.file(b"abc"))
        self.sent()
        self.client.send_line("early")
        self.receive(wire(events.Pong("chat-client-1"), events.UploadReady(3, "report.pdf", 3)))
        pump(self.transport)
        self.assertEqual(self.sent(), b"abc")

    def test_name_cleaned(self) -> None:
        """
        NAME keeps its spaces but not control characters or runs of white space.
        """
        self.welcome()
        self.client.upload("#dev", self.file(b"x", name="my  \x1b[1mfile\tv2 .txt"))
        self.assertEqual(self.sent().splitlines()[1], f"/upload #dev my [1mfile v2 .txt 1 {sha(b'x')}".encode())

    def test_empty_file(self) -> None:
        """
        A file of 0 bytes sends no bytes: C{upload-done} follows C{upload-ready}.
        """
        self.welcome()
        d = self.client.upload("bob", self.file(b""))
        self.assertIn(f" 0 {sha(b'')}\r\n".encode(), self.sent())
        self.receive(wire(events.Pong("chat-client-1"), events.UploadReady(4, "report.pdf", 0)))
        self.assertIsNone(self.transport.producer)
        self.receive(wire(events.UploadDone(4, sha(b""))))
        self.assertEqual(self.successResultOf(d), events.UploadDone(4, sha(b"")))

    def test_refused(self) -> None:
        """
        Each error answering C{/upload} fails it with L{ServerError}, is not passed on, and releases held lines.
        """
        self.welcome()
        codes = ["bad-arguments", "no-such-nick", "no-such-room", "not-in-room", "not-registered",
                 "file-too-large", "quota", "busy", "unknown-command"]
        for number, code in enumerate(codes, 1):
            d = self.client.upload("bob", self.file(b"abc"))
            self.client.send_line(f"line {number}")
            self.receive(wire(events.Pong(f"chat-client-{number}"), events.Error(code, f"no: {code}")))
            error = self.failureResultOf(d, ServerError).value
            self.assertEqual((error.code, error.message, str(error)), (code, f"no: {code}", f"no: {code}"))
            self.assertTrue(self.sent().endswith(f"line {number}\r\n".encode()))
        self.assertEqual(self.handler.events, [])
        self.assertIsNone(self.transport.producer)

    def test_checksum_mismatch(self) -> None:
        """
        C{checksum-mismatch} after the bytes fails the upload with L{ServerError}.
        """
        self.welcome()
        d = self.client.upload("bob", self.file(b"abc"))
        self.receive(wire(events.Pong("chat-client-1"), events.UploadReady(3, "report.pdf", 3)))
        pump(self.transport)
        self.receive(wire(events.Error("checksum-mismatch", "dropped")))
        self.assertEqual(self.failureResultOf(d, ServerError).value.code, "checksum-mismatch")

    def test_file_shrinks(self) -> None:
        """
        A file cut short after hashing still sends SIZE bytes (padded), and fails with the local cause.
        """
        self.welcome()
        path = self.file()
        d = self.client.upload("bob", path)
        self.sent()
        path.write_bytes(b"short")
        self.receive(wire(events.Pong("chat-client-1"), events.UploadReady(3, "report.pdf", len(DATA))))
        pump(self.transport)
        self.assertEqual(self.sent(), b"short" + bytes(len(DATA) - 5))
        self.receive(wire(events.Error("checksum-mismatch", "dropped")))
        self.assertIn("became shorter", str(self.failureResultOf(d, OSError).value))

    def test_error_before_barrier_not_taken(self) -> None:
        """
        An error that arrives before the barrier's C{pong} answers an earlier line and goes to the handler.
        """
        self.welcome()
        self.client.send_line("/msg nobody hi")
        d = self.client.upload("nobody", self.file(b"abc"))
        earlier = events.Error("no-such-nick", "nobody is not connected")
        self.receive(wire(earlier, events.Pong("chat-client-1")))
        self.assertEqual(self.handler.events, [earlier])
        self.assertNoResult(d)

    def test_missing_file(self) -> None:
        """
        A file that cannot be read fails the upload with its C{OSError}, and nothing is sent.
        """
        self.welcome()
        d = self.client.upload("bob", scratch(self) / "missing")
        self.failureResultOf(d, FileNotFoundError)
        self.assertEqual(self.sent(), b"")

    def test_bad_target(self) -> None:
        """
        A target that is not one word fails with C{ValueError}, and nothing is sent.
        """
        self.welcome()
        for target in ["", "bob alice", " bob", "bo\x1bb", "/quit"]:
            self.failureResultOf(self.client.upload(target, self.file(b"x")), ValueError)
        self.assertEqual(self.sent(), b"")

    def test_lost_mid_upload(self) -> None:
        """
        Losing the connection mid-upload stops the sender and fails the upload with the reason.
        """
        self.welcome()
        d = self.client.upload("bob", self.file())
        self.receive(wire(events.Pong("chat-client-1"), events.UploadReady(3, "report.pdf", len(DATA))))
        assert self.transport.producer is not None
        self.transport.producer.resumeProducing()
        reason = Failure(ConnectionLost("gone"))
        self.client.connectionLost(reason)
        self.assertIs(self.failureResultOf(d), reason)
        self.assertEqual(self.handler.calls, [("disconnected", reason)])


class DownloadTests(ClientTestCase):
    """
    C{download}: the request, raw bytes assembled from any chunking, and what follows.
    """

    def header(self, offer_id: int = 7, offset: int = 0, data: bytes = DATA, name: str = "a.bin") -> events.FileHeader:
        return events.FileHeader(offer_id, name, len(data), offset, sha(data))

    def test_download(self) -> None:
        """
        Header, bytes and the next line in one chunk: the file is written, the next event delivered.
        """
        self.welcome()
        progress: list[tuple[int, int]] = []
        d = self.client.download(7, "a.bin", self.folder, lambda got, size: progress.append((got, size)))
        self.assertEqual(self.sent(), b"/ping chat-client-1\r\n/download 7 0\r\n")
        self.receive(wire(events.Pong("chat-client-1"), self.header(), DATA, HELLO))
        self.assertEqual(self.successResultOf(d), self.folder / "a.bin")
        self.assertEqual((self.folder / "a.bin").read_bytes(), DATA)
        self.assertEqual(os.listdir(self.folder), ["a.bin"])
        self.assertEqual(self.handler.events, [HELLO])
        self.assertEqual(progress, [(len(DATA), len(DATA))])

    def test_any_chunking(self) -> None:
        """
        However the stream is cut, the file is assembled exactly and the line after it arrives.
        """
        self.welcome()
        stream_prefix = wire(events.Pong("chat-client-1"), self.header())
        stream = stream_prefix + DATA + render_json(HELLO)
        sizes = [1, 2, 3, 7, 4095, len(stream_prefix) - 1, len(stream_prefix), len(stream_prefix) + 1]
        for n, size in enumerate(sizes):
            folder = self.folder / str(n)
            progress: list[tuple[int, int]] = []

            def record(got: int, total: int, seen: list[tuple[int, int]] = progress) -> None:
                seen.append((got, total))

            d = self.client.download(7, "a.bin", folder, record)
            self.receive(stream.replace(b"chat-client-1", f"chat-client-{n + 1}".encode()), chunk=size)
            self.assertEqual(self.successResultOf(d).read_bytes(), DATA, size)
            self.assertEqual(self.handler.events, [HELLO], size)
            self.assertEqual(progress[-1], (len(DATA), len(DATA)))
            self.assertEqual([got for got, _ in progress], sorted({got for got, _ in progress}))
            del self.handler.calls[:]

    def test_resume(self) -> None:
        """
        A partial file is resumed: OFFSET is its size, and the whole passes the checksum.
        """
        self.welcome()
        self.folder.mkdir(parents=True)
        (self.folder / "a.bin.7.part").write_bytes(DATA[:1000])
        d = self.client.download(7, "a.bin", self.folder)
        self.assertEqual(self.sent(), b"/ping chat-client-1\r\n/download 7 1000\r\n")
        self.receive(wire(events.Pong("chat-client-1"), self.header(offset=1000), DATA[1000:]))
        self.assertEqual(self.successResultOf(d).read_bytes(), DATA)
        self.assertEqual(os.listdir(self.folder), ["a.bin"])

    def test_nothing_left(self) -> None:
        """
        A partial file already complete: no raw mode, the next line is read as a line.
        """
        self.welcome()
        self.folder.mkdir(parents=True)
        (self.folder / "a.bin.7.part").write_bytes(DATA)
        d = self.client.download(7, "a.bin", self.folder)
        self.receive(wire(events.Pong("chat-client-1"), self.header(offset=len(DATA)), HELLO))
        self.assertEqual(self.successResultOf(d).read_bytes(), DATA)
        self.assertEqual(self.handler.events, [HELLO])

    def test_checksum_mismatch(self) -> None:
        """
        Bytes that do not match the header's SHA-256 fail with L{ChecksumMismatch} and leave no file.
        """
        self.welcome()
        d = self.client.download(7, "a.bin", self.folder)
        wrong = events.FileHeader(7, "a.bin", len(DATA), 0, "0" * 64)
        self.receive(wire(events.Pong("chat-client-1"), wrong, DATA, HELLO))
        self.failureResultOf(d, ChecksumMismatch)
        self.assertEqual(os.listdir(self.folder), [])
        self.assertEqual(self.handler.events, [HELLO])

    def test_hostile_names(self) -> None:
        """
        Offers named C{../x}, C{/etc/x} or with control characters land inside the folder, never overwriting.
        """
        self.welcome()
        names = ["../x", "/etc/x", "\x1b[2J\x1b]0;pwned\x07x", "..", ".bashrc"]
        paths = []
        for number, name in enumerate(names, 1):
            d = self.client.download(number, name, self.folder)
            header = events.FileHeader(number, name, len(DATA), 0, sha(DATA))
            self.receive(wire(events.Pong(f"chat-client-{number}"), header, DATA))
            paths.append(self.successResultOf(d))
        self.assertEqual(
            [p.name for p in paths], ["x", "x (1)", "[2J]0;pwnedx", "file", "bashrc"]
        )
        self.assertEqual(sorted(os.listdir(self.folder)), sorted(p.name for p in paths))
        self.assertEqual(os.listdir(self.folder.parent), ["downloads"])

    def test_never_overwrites(self) -> None:
        """
        An existing file of the same name is kept; the download becomes C{name (1).ext}.
        """
        self.welcome()
        self.folder.mkdir(parents=True)
        (self.folder / "a.bin").write_bytes(b"mine")
        d = self.client.download(7, "a.bin", self.folder)
        self.receive(wire(events.Pong("chat-client-1"), self.header(), DATA))
        self.assertEqual(self.successResultOf(d), self.folder / "a (1).bin")
        self.assertEqual((self.folder / "a.bin").read_bytes(), b"mine")

    def test_refused(self) -> None:
        """
        Errors answering C{/download} fail it with L{ServerError} and are not passed on.
        """
        self.welcome()
        for number, code in enumerate(["no-such-file", "bad-arguments", "busy"], 1):
            d = self.client.download(number, "a.bin", self.folder)
            self.receive(wire(events.Pong(f"chat-client-{number}"), events.Error(code, "no")))
            self.assertEqual(self.failureResultOf(d, ServerError).value.code, code)
        self.assertEqual(self.handler.events, [])

    def test_other_errors_passed_on(self) -> None:
        """
        An error with another code while a download waits (a C{flood} warning) goes to the handler.
        """
        self.welcome()
        d = self.client.download(7, "a.bin", self.folder)
        flood = events.Error("flood", "slow down")
        self.receive(wire(events.Pong("chat-client-1"), flood, self.header(), DATA))
        self.assertEqual(self.handler.events, [flood])
        self.successResultOf(d)

    def test_header_mismatch(self) -> None:
        """
        A C{file} line for another offer fails with L{ProtocolError}; its bytes are skipped, not read as lines.
        """
        self.welcome()
        d = self.client.download(7, "a.bin", self.folder)
        self.receive(wire(events.Pong("chat-client-1"), self.header(offer_id=8), DATA, HELLO))
        self.failureResultOf(d, ProtocolError)
        self.assertEqual(self.handler.events, [HELLO])

    def test_unrequested_file_skipped(self) -> None:
        """
        A C{file} line nobody asked for is not passed on, and its bytes are skipped.
        """
        self.welcome()
        with capturedLogs():
            self.receive(wire(self.header(), DATA, HELLO), chunk=1000)
        self.assertEqual(self.handler.events, [HELLO])

    def test_transfers_serialized(self) -> None:
        """
        A second transfer waits for the first to end, then sends its request.
        """
        self.welcome()
        first = self.client.download(7, "a.bin", self.folder)
        second = self.client.upload("bob", self.file(b"abc"))
        third = self.client.download(8, "b.bin", self.folder)
        self.assertEqual(self.sent(), b"/ping chat-client-1\r\n/download 7 0\r\n")
        self.receive(wire(events.Pong("chat-client-1"), self.header(), DATA))
        self.successResultOf(first)
        self.assertEqual(self.sent(), f"/ping chat-client-2\r\n/upload bob report.pdf 3 {sha(b'abc')}\r\n".encode())
        self.receive(wire(events.Pong("chat-client-2"), events.Error("no-such-nick", "bob left")))
        self.failureResultOf(second, ServerError)
        self.assertEqual(self.sent(), b"/ping chat-client-3\r\n/download 8 0\r\n")
        self.assertNoResult(third)

    def test_lost_mid_download(self) -> None:
        """
        Losing the connection mid-download keeps the partial file and fails every waiting transfer.
        """
        self.welcome()
        d = self.client.download(7, "a.bin", self.folder)
        queued = self.client.download(8, "b.bin", self.folder)
        self.receive(wire(events.Pong("chat-client-1"), self.header()) + DATA[:1500])
        reason = Failure(ConnectionLost("gone"))
        self.client.connectionLost(reason)
        self.assertIs(self.failureResultOf(d), reason)
        self.assertIs(self.failureResultOf(queued), reason)
        self.assertEqual(self.handler.calls, [("disconnected", reason)])
        self.assertEqual((self.folder / "a.bin.7.part").read_bytes(), DATA[:1500])
        self.assertIs(self.failureResultOf(self.client.download(9, "c", self.folder)), reason)

    def test_disk_failure(self) -> None:
        """
        A partial file that cannot be opened fails the download; its bytes are skipped, not read as lines.
        """
        self.welcome()
        d = self.client.download(7, "a.bin", self.folder)
        (self.folder / "a.bin.7.part").mkdir()
        self.receive(wire(events.Pong("chat-client-1"), self.header(), DATA, HELLO))
        self.failureResultOf(d, OSError)
        self.assertEqual(self.handler.events, [HELLO])


class StartTLSTests(ClientTestCase):
    """
    C{start_tls}: C{/starttls}, lines held until TLS is started.
    """

    def test_start_tls(self) -> None:
        """
        On the C{info} answer the transport starts TLS, then the held lines go out.
        """
        self.welcome()
        options = object()
        d = self.client.start_tls(options)
        self.client.send_line("/nick alice")
        self.assertEqual(self.sent(), b"/ping chat-client-1\r\n/starttls\r\n")
        self.receive(wire(events.Pong("chat-client-1"), events.Info("Starting TLS: begin the handshake")))
        self.assertIs(self.transport.tls, options)
        self.assertEqual(self.transport.before_tls, b"")
        self.assertEqual(self.sent(), b"/nick alice\r\n")
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.handler.events, [])

    def test_info_before_barrier(self) -> None:
        """
        An C{info} answering an earlier line (C{/help}) does not start TLS and goes to the handler.
        """
        self.welcome()
        self.client.send_line("/help")
        d = self.client.start_tls(object())
        help_text = events.Info("commands: ...")
        self.receive(wire(help_text))
        self.assertIsNone(self.transport.tls)
        self.assertEqual(self.handler.events, [help_text])
        self.assertNoResult(d)

    def test_unavailable(self) -> None:
        """
        C{tls-unavailable} fails with L{ServerError}; held lines then go out in clear text.
        """
        self.welcome()
        d = self.client.start_tls(object())
        self.client.send_line("/nick alice")
        self.sent()
        self.receive(wire(events.Pong("chat-client-1"), events.Error("tls-unavailable", "no certificate")))
        self.assertEqual(self.failureResultOf(d, ServerError).value.code, "tls-unavailable")
        self.assertIsNone(self.transport.tls)
        self.assertEqual(self.sent(), b"/nick alice\r\n")

    def test_lost(self) -> None:
        """
        Losing the connection while C{/starttls} waits fails it with the reason.
        """
        self.welcome()
        d = self.client.start_tls(object())
        reason = Failure(ConnectionLost())
        self.client.connectionLost(reason)
        self.assertIs(self.failureResultOf(d), reason)

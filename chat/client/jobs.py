# -*- test-case-name: tests.test_client_protocol -*-
"""
The operations of the client protocol that own the answers to their
command until they end (PROTOCOL.md sections 6 and 7): an upload, a
download, C{/starttls}; each runs in its turn, behind a C{/ping} barrier,
on a L{JobHost}, the client protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Generic, Protocol, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ITLSTransport
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure
from typing_extensions import override

from chat import events
from chat.client.transfer import Download, Upload
from chat.codec import ProtocolError
from chat.wire import clean

T = TypeVar("T")

Progress = Callable[[int, int], None]
"""Called as C{progress(done, size)}, both in bytes, after each chunk of a transfer."""

RunInThread = Callable[..., "Deferred[Any]"]
"""Runs C{f(*args)} off the reactor thread: L{deferToThread}'s shape."""

UPLOAD_ERRORS = frozenset({
    "bad-arguments", "no-such-nick", "no-such-room", "not-in-room", "not-registered", "file-too-large",
    "quota", "busy", "checksum-mismatch", "unknown-command",
})
"""Error codes that answer C{/upload} (PROTOCOL.md section 6); C{unknown-command}
from a daemon without file transfer."""

DOWNLOAD_ERRORS = frozenset({"no-such-file", "bad-arguments", "busy", "not-registered", "unknown-command"})
"""Error codes that answer C{/download} (PROTOCOL.md section 6)."""

STARTTLS_ERRORS = frozenset({"tls-unavailable", "bad-arguments", "unknown-command"})
"""Error codes that answer C{/starttls} (PROTOCOL.md section 7)."""

class ServerError(Exception):
    """
    The daemon refused a request with an C{error} event (PROTOCOL.md section 5).

    @ivar code: the error code, e.g. C{no-such-file}.
    @ivar message: the daemon's explanation, meant to be read; also C{str(e)}.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @override
    def __str__(self) -> str:
        return self.message



class JobHost(Protocol):
    """
    What a job uses of the client protocol it runs on
    (L{chat.client.protocol.ChatClientProtocol}).
    """

    transport: Any
    run_in_thread: RunInThread

    def write_line(self, text: str) -> None:
        """Send one command line."""

    def sync(self, job: Job[Any]) -> None:
        """Send the C{/ping} barrier after which C{job}'s answers come."""

    def hold_input(self) -> None:
        """Stop reading lines until the job switches modes."""

    def end_job(self, job: Job[Any], result: Any) -> None:
        """End C{job} with C{result} (a value or a L{Failure}) and start the next."""

    def report_progress(self, progress: Progress | None, done: int, size: int) -> None:
        """Call C{progress(done, size)}, if any, without letting it raise."""

    def setRawMode(self) -> None:  # noqa: N802 - LineReceiver's name
        """Read raw bytes (a download's)."""

    def setLineMode(self, extra: bytes = b"") -> Any:  # noqa: N802 - LineReceiver's name
        """Read lines again, starting with C{extra}."""


class Job(Generic[T]):
    """
    One operation that owns the answers to its command until it ends: an
    upload, a download, or C{/starttls}.

    @ivar deferred: fires with the outcome.
    @ivar barrier: the token of the C{/ping} whose C{pong} is awaited, or
        C{None}.
    @ivar ended: whether L{deferred} has fired or been failed.
    """

    def __init__(self, client: JobHost) -> None:
        self.client = client
        self.deferred: Deferred[T] = Deferred()
        self.barrier: str | None = None
        self.ended = False

    def start(self) -> None:
        """
        Called when the job's turn comes.
        """
        raise NotImplementedError

    def take(self, event: events.Event) -> bool:
        """
        Called with each event after the barrier's C{pong}.

        @return: whether the event answered the job (and is consumed).
        """
        return False

    def lost(self, reason: Failure) -> None:
        """
        Called when the connection is lost while the job is the current one.
        """
        self.client.end_job(self, reason)

    def _failed(self, failure: Failure) -> None:
        self.client.end_job(self, failure)

    def _error(self, event: events.Event, codes: frozenset[str]) -> ServerError | None:
        if isinstance(event, events.Error) and event.code in codes:
            return ServerError(event.code, event.message)
        return None


class StartTLSJob(Job[None]):
    def __init__(self, client: JobHost, options: Any) -> None:
        super().__init__(client)
        self.options = options

    @override
    def start(self) -> None:
        self.client.sync(self)
        self.client.hold_input()
        self.client.write_line("/starttls")

    @override
    def take(self, event: events.Event) -> bool:
        if isinstance(event, events.Info):
            transport = self.client.transport
            assert transport is not None
            try:
                ITLSTransport(transport).startTLS(self.options)
            except Exception:
                failure = Failure()
                transport.loseConnection()
                self.client.end_job(self, failure)
            else:
                self.client.end_job(self, None)
            return True
        error = self._error(event, STARTTLS_ERRORS)
        if error is None:
            return False
        self.client.end_job(self, Failure(error))
        return True


class _Exactly:
    """
    A file reader for L{FileSender} that gives exactly C{size} bytes: the
    file's, cut at C{size}, then NULs if it turned out shorter (the
    daemon then answers C{checksum-mismatch}).

    @ivar problem: why the file gave fewer bytes, or C{None}.
    """

    def __init__(self, upload: Upload) -> None:
        assert upload.file is not None
        self._upload = upload
        self._file: BinaryIO = upload.file
        self._left = upload.size
        self.problem: OSError | None = None

    def read(self, count: int) -> bytes:
        if self._left <= 0:
            return b""
        count = min(count, self._left)
        chunk = b""
        if self.problem is None:
            try:
                chunk = self._file.read(count)
            except OSError as e:
                self.problem = e
            else:
                if not chunk:
                    self.problem = OSError(f"{self._upload.path} became shorter while it was sent")
        if not chunk:
            chunk = bytes(count)
        self._left -= len(chunk)
        return chunk


class UploadJob(Job[events.UploadDone]):
    def __init__(self, client: JobHost, target: str, upload: Upload, progress: Progress | None) -> None:
        super().__init__(client)
        self.target = target
        self.upload = upload
        self.progress = progress
        self.state = "preparing"
        self.id: int | None = None
        self.sent = 0
        self.sender: FileSender | None = None
        self.reader: _Exactly | None = None

    @override
    def start(self) -> None:
        preparing = self.client.run_in_thread(self.upload.prepare)
        preparing.addCallbacks(self._prepared, self._failed)

    def _prepared(self, ignored: object) -> None:
        if self.ended:
            self.upload.close()
            return
        upload = self.upload
        self.client.sync(self)
        self.client.hold_input()
        self.client.write_line(f"/upload {self.target} {_label(upload.name)} {upload.size} {upload.sha256}")
        self.state = "ready"

    @override
    def take(self, event: events.Event) -> bool:
        if self.state == "ready" and isinstance(event, events.UploadReady):
            self.id = event.id
            if self.upload.size:
                self._send()
            else:
                self.upload.close()
                self.state = "done"
            return True
        if self.state == "done" and isinstance(event, events.UploadDone) and event.id == self.id:
            self.client.end_job(self, event)
            return True
        if self.state in ("ready", "done"):
            error = self._error(event, UPLOAD_ERRORS)
            if error is not None:
                self.upload.close()
                problem = self.reader.problem if self.reader is not None else None
                cause: Exception = problem if problem is not None and error.code == "checksum-mismatch" else error
                self.client.end_job(self, Failure(cause))
                return True
        return False

    def _send(self) -> None:
        self.state = "sending"
        self.reader = _Exactly(self.upload)
        self.sender = FileSender()
        sending: Deferred[bytes] = self.sender.beginFileTransfer(self.reader, self.client.transport, self._count)
        sending.addCallbacks(self._sent, self._stopped)

    def _count(self, chunk: bytes) -> bytes:
        self.sent += len(chunk)
        self.client.report_progress(self.progress, self.sent, self.upload.size)
        return chunk

    def _sent(self, ignored: object) -> None:
        self.sender = None
        self.upload.close()
        if not self.ended:
            self.state = "done"

    def _stopped(self, failure: Failure) -> None:
        # The transport stopped the sender: the connection is going, and
        # connectionLost fails the upload.
        self.sender = None
        self.upload.close()

    @override
    def lost(self, reason: Failure) -> None:
        if self.sender is not None:
            self.sender.stopProducing()
        self.upload.close()
        super().lost(reason)


class DownloadJob(Job[Path]):
    def __init__(self, client: JobHost, download: Download, progress: Progress | None) -> None:
        super().__init__(client)
        self.download = download
        self.progress = progress
        self.state = "preparing"
        self.size = 0
        self.left = 0
        self.problem: Failure | None = None

    @override
    def start(self) -> None:
        preparing = self.client.run_in_thread(self.download.prepare)
        preparing.addCallbacks(self._prepared, self._failed)

    def _prepared(self, ignored: object) -> None:
        if self.ended:
            return
        self.client.sync(self)
        self.client.write_line(f"/download {self.download.offer_id} {self.download.offset}")
        self.state = "header"

    @override
    def take(self, event: events.Event) -> bool:
        if self.state != "header":
            return False
        if isinstance(event, events.FileHeader):
            try:
                self.download.begin(event)
            except (ProtocolError, OSError):
                self.problem = Failure()
            self.size = event.size
            self.left = max(event.size - event.offset, 0)
            if self.left:
                self.state = "receiving"
                self.client.setRawMode()
            else:
                self._complete()
            return True
        error = self._error(event, DOWNLOAD_ERRORS)
        if error is None:
            return False
        self.client.end_job(self, Failure(error))
        return True

    def receive(self, data: bytes) -> None:
        """
        Take raw bytes of the file; those after its last byte are read as
        lines again.
        """
        count = min(self.left, len(data))
        self.left -= count
        if self.problem is None:
            try:
                self.download.write(data[:count])
            except OSError:
                self.problem = Failure()
                self.download.abort()
            else:
                self.client.report_progress(self.progress, self.download.received, self.size)
        if not self.left:
            self.client.setLineMode(data[count:])
            self._complete()

    def _complete(self) -> None:
        if self.problem is not None:
            self.download.abort()
            self.client.end_job(self, self.problem)
            return
        self.state = "finishing"
        finishing = self.client.run_in_thread(self.download.finish)
        finishing.addCallbacks(lambda path: self.client.end_job(self, path), self._failed)

    @override
    def lost(self, reason: Failure) -> None:
        if self.state == "finishing":
            return  # every byte is here: the file is finished all the same
        self.download.abort()
        super().lost(reason)


def _label(name: str) -> str:
    """
    The NAME of C{/upload} for a file called C{name}: without control
    characters, white space runs as one space, lone surrogates (from
    undecodable file names) as U+FFFD; C{file} when nothing is left.
    """
    name = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in name)
    return " ".join(clean(name).split()) or "file"

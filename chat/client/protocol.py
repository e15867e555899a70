# -*- test-case-name: tests.test_client_protocol -*-
"""
The client's side of the wire (PROTOCOL.md): L{ChatClientProtocol} speaks
the C{json} format, hands each event to an L{IClientHandler}, and runs file
transfers and C{/starttls} across the raw-mode switch. It never prints or
draws.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.protocol import connectionDone
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import Interface

from chat import events
from chat.client.jobs import (
    DownloadJob,
    Job,
    Progress,
    RunInThread,
    StartTLSJob,
    T,
    UploadJob,
)
from chat.client.jobs import ServerError as ServerError
from chat.client.transfer import Download, Upload
from chat.codec import ProtocolError
from chat.codec import decode as parse_event
from chat.wire import clean

_CLIENT_COMMANDS = {
    "upload": "/upload is sent by the client's file transfer, which then sends the file's bytes",
    "download": "/download is sent by the client's file transfer, which then receives the file's bytes",
    "starttls": "/starttls is sent by the client, which then starts TLS",
    "format": "this client reads the json format only, which /format would change",
}
"""Commands that change how the connection is read, so L{ChatClientProtocol.send_line} refuses them."""

_TRANSFER_EVENTS = (events.UploadReady, events.UploadDone, events.FileHeader)


class IClientHandler(Interface):
    """
    What a L{ChatClientProtocol} tells about its connection: the client's
    model implements it. Called in the reactor thread, one event at a time.
    """

    def connected(protocol: ChatClientProtocol) -> None:  # noqa: N805
        """
        The daemon answered C{/format json} with a C{json} C{welcome}
        (PROTOCOL.md section 2): C{protocol} is ready for commands. The
        C{welcome} itself went to L{event_received} just before. Called at
        most once per connection.
        """

    def event_received(event: events.Event) -> None:  # noqa: N805
        """
        An event arrived (PROTOCOL.md section 5). Events that answer the
        protocol's own transfers and C{/starttls} (C{upload-ready},
        C{upload-done}, C{file} and the C{info}, C{error} or C{pong} that
        answer them) are not passed: their L{Deferred}s tell.
        """

    def disconnected(reason: Failure) -> None:  # noqa: N805
        """
        The connection is closed, for C{reason} (C{ConnectionDone} when
        cleanly). Called once, after every pending transfer and
        C{start_tls} L{Deferred} failed with C{reason}.
        """


class ChatClientProtocol(LineReceiver):
    """
    One connection to the daemon, in the C{json} format (PROTOCOL.md
    sections 2, 5, 6 and 7).

    Lines from the daemon become L{chat.events} values for the handler.
    Transfers and C{start_tls} run one at a time, in the order asked for;
    each first sends C{/ping TOKEN} and consumes its C{pong}, so that the
    C{error} answering it cannot be confused with that of a line sent
    before it.

    @ivar handler: told of the connection and its events.
    """

    delimiter = b"\r\n"
    MAX_LENGTH = 8 * 1024 * 1024
    """The longest line accepted from the daemon, in bytes: a C{history} of
    500 long messages fits."""

    _log = Logger()

    def __init__(self, handler: IClientHandler, run_in_thread: RunInThread = deferToThread) -> None:
        """
        @param handler: told of the connection and its events.
        @param run_in_thread: runs the blocking file work of transfers;
            tests pass one that runs it at once.
        """
        self.handler = handler
        self.run_in_thread = run_in_thread
        self._json = False
        self._welcomed = False
        self._held: list[bytes] | None = None
        self._jobs: deque[Job[Any]] = deque()
        self._current: Job[Any] | None = None
        self._tokens = itertools.count(1)
        self._lost: Failure | None = None
        self._skip = 0

    # Twisted's hooks

    @override
    def connectionMade(self) -> None:
        """
        Called by Twisted once connected: asks for the C{json} format.
        """
        self.write_line("/format json")

    @override
    def lineReceived(self, line: bytes) -> None:
        """
        Called by L{LineReceiver} for each line from the daemon, without its
        CR LF. Lines before the first that starts with C{{} are the text
        format's greeting and are ignored; a line that is not a valid event
        is logged and dropped, and one of an unknown type dropped silently.
        """
        if not self._json:
            if not line.startswith(b"{"):
                return
            self._json = True
        try:
            event = parse_event(line)
        except ProtocolError as e:
            self._log.warn("dropped a line from the daemon ({length} bytes): {error}", length=len(line), error=str(e))
            return
        if event is not None:
            self._dispatch(event)

    @override
    def rawDataReceived(self, data: bytes) -> None:
        """
        Called by L{LineReceiver} in raw mode with the bytes after a C{file}
        line: they go to the download; the bytes after its last one are read
        as lines again.
        """
        if self._skip:
            count = min(self._skip, len(data))
            self._skip -= count
            if not self._skip:
                self.setLineMode(data[count:])
            return
        job = self._current
        if isinstance(job, DownloadJob) and job.state == "receiving":
            job.receive(data)
            return
        self._log.error("raw bytes with no download to take them")
        self.setLineMode(data)

    @override
    def lineLengthExceeded(self, line: bytes) -> None:
        """
        Called by L{LineReceiver} with a line longer than L{MAX_LENGTH}
        bytes: it is logged and the connection dropped.
        """
        self._log.error("the daemon sent a line of over {limit} bytes: disconnecting", limit=self.MAX_LENGTH)
        assert self.transport is not None
        self.transport.loseConnection()

    @override
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Called by Twisted when the connection is gone: the download under
        way is closed (its partial file kept for a resume), an upload is
        stopped, every transfer and C{start_tls} waiting fails with
        C{reason}, then L{IClientHandler.disconnected} is called.
        """
        self._lost = reason
        self._held = None
        if self._current is not None:
            self._current.lost(reason)
        while self._jobs:
            job = self._jobs.popleft()
            job.ended = True
            job.deferred.errback(reason)
        self._tell("disconnected", self.handler.disconnected, reason)

    # Sending

    def send_line(self, text: str) -> None:
        """
        Send one command or message line, UTF-8 with CR LF (PROTOCOL.md
        section 3). While an upload's bytes are on their way, or C{/starttls}
        awaits its answer, lines wait and then go out in order.

        @param text: the line without its line end.
        @raise ValueError: C{text} holds CR, LF or NUL, or a lone surrogate
            (C{UnicodeEncodeError}), or is one of the commands the client
            sends itself: C{/upload}, C{/download}, C{/starttls},
            C{/format}.
        """
        if any(c in text for c in "\r\n\0"):
            raise ValueError("a line cannot hold CR, LF or NUL")
        cleaned = clean(text)
        if cleaned.startswith("/") and not cleaned.startswith("//"):
            refused = _CLIENT_COMMANDS.get(cleaned[1:].partition(" ")[0].lower())
            if refused is not None:
                raise ValueError(refused)
        data = text.encode("utf-8")
        if self._held is not None:
            self._held.append(data)
        else:
            self._send(data)

    def say(self, text: str) -> None:
        """
        Send C{text} as a message to the current room: a text starting with
        C{/} goes out as C{//…} so that it is not read as a command
        (PROTOCOL.md section 3.5).

        @raise ValueError: as L{send_line}.
        """
        if clean(text).startswith("/"):
            text = "/" + text
        self.send_line(text)

    def start_tls(self, options: Any) -> Deferred[None]:
        """
        Upgrade the connection to TLS (PROTOCOL.md section 7): send
        C{/starttls}, hold later lines, and on the daemon's C{info} start
        TLS with C{options} (an C{IOpenSSLClientConnectionCreator}, from
        C{optionsForClientTLS}), then send the held lines over TLS.

        @return: fires with C{None} once TLS is started (the handshake
            follows; a failed handshake closes the connection); fails with
            L{ServerError} (C{tls-unavailable}, C{bad-arguments}) or the
            reason the connection was lost.
        """
        return self._enqueue(StartTLSJob(self, options))

    def upload(self, target: str, path: Path, progress: Progress | None = None) -> Deferred[events.UploadDone]:
        """
        Offer the file at C{path} to C{target}, a nick or C{#room}
        (PROTOCOL.md section 6): hash it in a thread, send C{/upload TARGET
        NAME SIZE SHA256} (NAME the file's name without control characters),
        wait for C{upload-ready}, stream the bytes from disk, then wait for
        C{upload-done}. Lines sent meanwhile wait until then.

        @param progress: called as C{progress(sent, size)} in bytes as the
            bytes are handed to the transport.
        @return: fires with the C{upload-done} event; fails with
            C{ValueError} for a C{target} that is not one word, the
            C{OSError} of reading the file, L{ServerError} for the daemon's
            refusal (codes in L{UPLOAD_ERRORS}), or the reason the
            connection was lost.
        """
        if len(target.split()) != 1 or target != clean(target).strip() or target.startswith("/"):
            return fail(ValueError("the target of an upload is a nick or #room"))
        return self._enqueue(UploadJob(self, target, Upload(path), progress))

    def download(
        self, offer_id: int, name: str, folder: Path, progress: Progress | None = None
    ) -> Deferred[Path]:
        """
        Fetch the offer C{offer_id} into C{folder} (PROTOCOL.md section 6)
        under a safe version of C{name} (L{chat.client.transfer.safe_name}),
        resuming from its partial file if there is one, never writing
        outside C{folder} nor over an existing file.

        @param progress: called as C{progress(received, size)} in bytes, the
            bytes already on disk included, after each chunk.
        @return: fires with the final path; fails with L{ServerError}
            (codes in L{DOWNLOAD_ERRORS}),
            L{chat.client.transfer.ChecksumMismatch} (the partial file is
            deleted), L{ProtocolError} (a C{file} line that does not match),
            C{OSError}, or the reason the connection was lost (the partial
            file is kept).
        """
        return self._enqueue(DownloadJob(self, Download(offer_id, name, folder), progress))

    # Inside

    def _send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data + self.delimiter)

    def write_line(self, text: str) -> None:
        """
        Send a line now, even while lines are held.
        """
        self._send(text.encode("utf-8"))

    def sync(self, job: Job[Any]) -> None:
        """
        Send C{/ping TOKEN}: what answers C{job}'s command comes after its C{pong}.
        """
        job.barrier = f"chat-client-{next(self._tokens)}"
        self.write_line(f"/ping {job.barrier}")

    def hold_input(self) -> None:
        if self._held is None:
            self._held = []

    def _release(self) -> None:
        held, self._held = self._held, None
        for data in held or ():
            self._send(data)

    def _enqueue(self, job: Job[T]) -> Deferred[T]:
        if self._lost is not None:
            return fail(self._lost)
        self._jobs.append(job)
        self._next()
        return job.deferred

    def _next(self) -> None:
        if self._current is None and self._jobs and self._lost is None:
            self._current = self._jobs.popleft()
            self._current.start()

    def end_job(self, job: Job[T], result: T | Failure) -> None:
        """
        End C{job}: send the lines it held, fire its L{Deferred}, start the next.
        """
        if job.ended:
            return
        job.ended = True
        if self._current is job:
            self._current = None
        if self._lost is None:
            self._release()
        if isinstance(result, Failure):
            job.deferred.errback(result)
        else:
            job.deferred.callback(result)
        self._next()

    def _dispatch(self, event: events.Event) -> None:
        job = self._current
        if job is not None:
            if job.barrier is not None:
                if isinstance(event, events.Pong) and event.token == job.barrier:
                    job.barrier = None
                    return
            elif job.take(event):
                return
        if isinstance(event, _TRANSFER_EVENTS):
            self._log.warn("ignored a {kind} event no transfer asked for", kind=type(event).__name__)
            if isinstance(event, events.FileHeader):
                self._skip = max(event.size - event.offset, 0)
                if self._skip:
                    self.setRawMode()
            return
        self._tell("event_received", self.handler.event_received, event)
        if isinstance(event, events.Welcome) and not self._welcomed:
            self._welcomed = True
            self._tell("connected", self.handler.connected, self)

    def _tell(self, what: str, call: Callable[[Any], None], argument: Any) -> None:
        """
        Call the handler; an exception it raises is logged, never passed to Twisted.
        """
        try:
            call(argument)
        except Exception:
            self._log.failure("the client handler failed in {what}", what=what)

    def report_progress(self, progress: Progress | None, done: int, size: int) -> None:
        if progress is None:
            return
        try:
            progress(done, size)
        except Exception:
            self._log.failure("a transfer's progress callback failed")

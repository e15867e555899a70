# -*- test-case-name: tests.test_protocol -*-
"""
The line front end of PROTOCOL.md: L{ChatProtocol}, one per TCP or TLS
connection, and L{ChatFactory}, which builds them for one L{ChatServer}.
It frames, decodes and limits the input (sections 1 and 8), handles telnet,
the raw-mode upload and the streamed download (section 6) and C{/starttls}
(section 7), turns each line into one request of L{chat.commands} for the
server, and renders what it is delivered in its own format. It closes
connections that hold resources without using them (section 8): no nick
within C{--registration-timeout}, a TLS handshake unfinished after
C{--tls-handshake-timeout}, an upload without a byte for
C{--upload-idle-timeout}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHandshakeListener,
    ITCPTransport,
)
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from chat import commands, errors, events, logs, wire
from chat.accounts import is_local
from chat.counts import COUNTS
from chat.framing import LimitedLineReceiver
from chat.interfaces import IParticipant, Outgoing
from chat.outbox import Batch, Outbox
from chat.participant import SessionParticipant, accept_tcp
from chat.render import RENDERERS, Renderer, render_text
from chat.server import ChatServer
from chat.tls import ServerTLS
from chat.transfers import Incoming

MAX_DOWNLOADS = 4
"""Downloads one connection may have sent or waiting at once."""


@implementer(IParticipant, IHandshakeListener)
class ChatProtocol(LimitedLineReceiver, SessionParticipant):
    """
    One connection: a participant of the L{ChatServer}.

    @ivar secure: whether the connection is encrypted (or its TLS
        handshake under way).
    @ivar peer: the client's address (IP or UNIX path), from which the
        server takes the key of the per-address limits.

    File transfer (PROTOCOL.md section 6): during an upload the protocol is
    in L{LineReceiver}'s raw mode for exactly the announced bytes; a
    download is streamed by the L{Outbox} while commands keep being read.

    Timeouts (PROTOCOL.md section 8), each a C{callLater} of the server's
    clock, cancelled when the connection is lost:
      - registration: a connection without a nick C{settings.registration_timeout}
        seconds after it was made gets C{bye} ("no nick chosen within 60 s")
        and is closed, whatever bytes it sent meanwhile; once registered it
        may idle for ever;
      - TLS handshake: an C{ssl:} connection, or one after C{/starttls},
        whose handshake has not completed (L{handshakeCompleted}) within
        C{settings.tls_handshake_timeout} seconds is aborted;
      - upload: an upload that gets no byte for C{settings.upload_idle_timeout}
        seconds is cancelled (its partial file and quota released), and the
        connection gets C{bye} and is closed.
    """

    delimiter = b"\n"
    transport: ITCPTransport
    _log = Logger()

    __slots__ = ("factory", "server", "_batch", "outbox", "deliver", "session", "peer", "_registration_call")

    front_end = "line"
    secure = False
    _quit_reason = "connection lost"
    _abort_call: IDelayedCall | None = None
    _handshake_call: IDelayedCall | None = None
    _upload_call: IDelayedCall | None = None
    _upload: Incoming | None = None
    _downloads = 0

    def __init__(self, factory: ChatFactory) -> None:
        self.factory = factory
        self.server = server = factory.server
        self._batch = factory.batch
        super().__init__(server.settings, server.clock)
        self.outbox: Outbox
        self.peer = ""
        self._registration_call: IDelayedCall | None = None

    @property
    def _where(self) -> str:
        """C{host:port}, for the log."""
        return f"{self.peer}:{getattr(self.transport.getPeer(), 'port', '')}"

    # The participant (chat.interfaces.IParticipant; nick, account and
    # close are SessionParticipant's)

    deliver: Callable[[Outgoing], None]
    """
    Called by the bus with each event: once connected, the outbox's own
    L{Outbox.deliver}, which renders the event in this connection's format
    and queues it, so that the fan-out path makes one call per recipient.
    """

    @property
    def renderer(self) -> Renderer:
        """
        The output format's renderer, L{render_text} until C{/format json}.
        """
        return self.outbox.renderer

    @renderer.setter
    def renderer(self, renderer: Renderer) -> None:
        self.outbox.renderer = renderer

    def _stop_reading(self) -> None:
        self.pauseProducing()

    # Connection lifecycle

    @override
    def connectionMade(self) -> None:
        self.peer, secure = accept_tcp(self.transport)
        if secure:
            self.secure = True  # a class default otherwise: no instance dictionary for plain connections
        self.outbox = Outbox(
            self.transport, self._batch, self.settings.max_output, self._slow_reader, render_text,
            self.server.output_budget,
        )
        self.deliver = self.outbox.deliver
        self.session = self.server.connect(self, is_local(self.transport.getPeer()))
        if self.secure:
            self._expect_handshake()
        if not self.session.allowed:
            if logs.debugging:
                self._log.debug("refused {peer}: too many connections from its address", peer=self._where)
            self.close("too many connections from your address")
            return
        if logs.debugging:
            self._log.debug("connection from {peer}", peer=self._where)
        self._expect_registration()
        self.send(self.server.welcome(registered=False))
        self.outbox.flush()

    def _expect_handshake(self) -> None:
        """
        A TLS handshake has begun: abort the connection unless it completes
        within C{settings.tls_handshake_timeout} seconds.
        """
        self._handshake_call = self.clock.callLater(self.settings.tls_handshake_timeout, self._handshake_timed_out)

    def handshakeCompleted(self) -> None:  # noqa: N802 - IHandshakeListener's name
        """
        Called by Twisted's TLS layer once the handshake is done (an
        C{ssl:} listener's, or after C{/starttls}): stops its timeout.
        """
        call, self._handshake_call = self._handshake_call, None
        if call is not None and call.active():
            call.cancel()

    def _handshake_timed_out(self) -> None:
        """
        Abort a connection whose TLS handshake did not complete in time:
        nothing can be said to it, not even C{bye}, and a close already
        under way could not finish either (its C{bye} waits for the
        handshake).
        """
        self._handshake_call = None
        timeout = self.settings.tls_handshake_timeout
        self._log.debug("{peer}: no TLS handshake within {timeout} s: aborted", peer=self._where, timeout=timeout)
        if not self._closing:
            self._quit_reason = "TLS handshake timed out"
            self._closing = self.session.closing = True
        self.transport.abortConnection()

    @override
    def connectionLost(self, reason: Failure | None = None) -> None:
        self._closing = self.session.closing = True
        for call in (
            self._throttle, self._abort_call, self._registration_call, self._handshake_call, self._upload_call
        ):
            if call is not None and call.active():
                call.cancel()
        if self._upload is not None:
            incoming, self._upload = self._upload, None
            self.server.abort_upload(incoming)
            upload = incoming.upload
            self._log.debug(
                "{peer} left during upload {id}: {got} of {size} bytes, dropped",
                peer=self._where, id=incoming.id, got=upload.size - upload.remaining, size=upload.size,
            )
        if logs.debugging:
            self._log.debug("{peer} disconnected", peer=self._where)
        self.server.disconnect(self.session, self._quit_reason)
        self._batch.flush()

    def send(self, event: events.Event) -> None:
        """
        Send C{event} to this connection in its format, after the events
        published before it (a message waiting for its commit, for one).
        """
        self.server.tell(self.session, event)

    @override
    def refuse(self, error: errors.ChatError) -> None:
        self.send(events.Error.of(error))

    @override
    def reply_raw(self, data: bytes) -> None:
        self.outbox.write(data)

    @override
    def flush_output(self) -> None:
        self._batch.flush()

    def _close_now(self, reason: str) -> None:
        self.outbox.finish(self.renderer(events.Bye(reason)))
        self.outbox.flush()
        # Over TLS the connection ends once the peer's close_notify is read:
        # read again (what comes is dropped). A peer that never answers, or
        # never reads its output, is cut off.
        self.transport.resumeProducing()  # type: ignore[attr-defined]
        self.transport.loseConnection()
        self._abort_call = self.clock.callLater(self.settings.shutdown_timeout, self.transport.abortConnection)

    def _slow_reader(self) -> None:
        COUNTS.slow_readers += 1
        self._log.warn(
            "disconnecting {peer}: it does not read its output ({why})",
            peer=self._where, why=self.outbox.overflow_reason,
        )
        self._quit_reason = "too slow reading"
        self._closing = self.session.closing = True
        if not self.outbox.streaming:  # never inside a file's bytes
            self.transport.write(self.renderer(events.Bye("you are not reading fast enough")))
        self.transport.abortConnection()

    # Lines to requests

    @override
    def command_received(self, command: wire.Command) -> None:
        """
        Turn a line into a request: the line front end's own (format,
        TLS, file bytes, quit) are done here, the others by the server.
        """
        session = self.session
        if command.name is None and session.user is None:
            nick = command.args.strip()
            if nick and self.renderer is render_text:
                command = wire.Command("nick", nick)  # a person typing their nick
            elif nick:
                raise errors.NotRegistered("choose a nick first: /nick NAME")
            else:
                return
        request = commands.parse(command, session.user is not None)
        if isinstance(request, commands.Format):
            self.renderer = RENDERERS[request.name]
            self.send(self.server.welcome(registered=session.user is not None))
        elif isinstance(request, commands.StartTLS):
            self.hold(self._start_tls())
        elif isinstance(request, commands.Upload):
            self._begin_upload(request)
        elif isinstance(request, commands.Download):
            self._download(request)
        elif isinstance(request, commands.Quit):
            self.close(request.reason)
        else:
            pending = self.server.execute(session, request)
            if pending is not None:
                pending.addCallback(lambda _: self._registered())
                self.hold(pending)
            else:
                self._registered()

    # Files (PROTOCOL.md section 6)

    def _begin_upload(self, request: commands.Upload) -> None:
        incoming = self.server.begin_upload(self.session, request)
        if not request.size:
            self.hold(self.server.finish_upload(self.session, incoming))
            return
        self._upload = incoming
        self.setRawMode()
        self._upload_call = self.clock.callLater(self.settings.upload_idle_timeout, self._upload_timed_out)

    def _upload_timed_out(self) -> None:
        """
        Cancel an upload that got no byte for C{settings.upload_idle_timeout}
        seconds: its partial file and its share of the quota are released,
        and the connection gets C{bye} and is closed.
        """
        self._upload_call = None
        incoming = self._upload
        if incoming is None or self._closing:
            return
        self._upload = None
        self.server.abort_upload(incoming)
        upload = incoming.upload
        timeout = self.settings.upload_idle_timeout
        self._log.debug(
            "{peer}: upload {id} idle for {timeout} s after {got} of {size} bytes: cancelled",
            peer=self._where, id=incoming.id, timeout=timeout, got=upload.size - upload.remaining, size=upload.size,
        )
        self.close(f"upload {incoming.id} cancelled: no data for {timeout:g} s")

    @override
    def rawDataReceived(self, data: bytes) -> None:
        """
        Called by L{LineReceiver} in raw mode with bytes of the upload in
        progress; the bytes after its last one are read as lines again.
        """
        incoming = self._upload
        assert incoming is not None, "raw mode is only for uploads"
        upload = incoming.upload
        if len(data) > upload.remaining:
            self._unread = data[upload.remaining:] + self._unread
            data = data[:upload.remaining]
        upload.write(data)
        call = self._upload_call
        if upload.remaining:
            if call is not None and call.active():
                call.reset(self.settings.upload_idle_timeout)
        else:
            self._upload = self._upload_call = None
            if call is not None and call.active():
                call.cancel()
            self.setLineMode()
            self.hold(self.server.finish_upload(self.session, incoming))

    def _download(self, request: commands.Download) -> None:
        if self.renderer is render_text:
            raise errors.BadArguments(
                "/download sends the file's raw bytes, which a terminal cannot show: "
                "fetch files with a chat client (chat-client), or switch to /format json"
            )
        if self._downloads >= MAX_DOWNLOADS:
            raise errors.Busy(f"at most {MAX_DOWNLOADS} downloads at a time: wait for one to finish")
        header, source = self.server.open_download(self.session, request)
        self._downloads += 1
        rendered = self.renderer(header)
        self.server.then(lambda: self._stream(rendered, source, header))

    def _stream(self, rendered: bytes, source: IO[bytes], header: events.FileHeader) -> None:
        def sent(result: object) -> None:
            self._downloads -= 1
            outcome = "broken off" if isinstance(result, Failure) else "sent"
            self._log.debug(
                "download {id} to {peer} {outcome} ({count} bytes from {offset})",
                id=header.id, peer=self._where, outcome=outcome,
                count=header.size - header.offset, offset=header.offset,
            )

        self.outbox.stream(rendered, source).addBoth(sent)

    # TLS (PROTOCOL.md section 7)

    def _start_tls(self) -> Deferred[None]:
        """
        Upgrade to TLS: C{info} in clear text, then the handshake. Whatever
        the client sent after the command before the handshake is dropped
        (STARTTLS command injection, RFC 3207 section 6), and reading waits
        until TLS is in place.
        """
        if self.secure:
            raise errors.BadArguments("this connection is encrypted already")
        options = self.factory.starttls
        if options is None:
            raise errors.TLSUnavailable("this server has no TLS certificate configured")
        self.send(events.Info("Starting TLS: begin the handshake"))
        self._drop_input = True
        self.clearLineBuffer()
        self._unread = b""
        started: Deferred[None] = Deferred()

        def start() -> None:
            if not self._closing:
                self.outbox.flush()
                self.outbox.stop_direct()
                self.transport.startTLS(options)  # type: ignore[attr-defined]
                self.secure = True
                self._expect_handshake()
                self._log.debug("{peer} started TLS", peer=self._where)
            started.callback(None)

        self.server.then(start)
        return started


class ChatFactory(ServerFactory):
    """
    Builds a L{ChatProtocol} per connection of a line listener.

    @ivar server: the chat they are participants of.
    @ivar starttls: the server side of TLS for C{/starttls}; without it
        C{/starttls} gets C{tls-unavailable}.
    @ivar batch: the lines written during one reactor turn, flushed at the
        end of each entry point of the protocols.
    """

    def __init__(self, server: ChatServer, starttls: ServerTLS | None = None) -> None:
        self.server = server
        self.starttls = starttls
        self.batch = Batch(server.clock)

    @override
    def buildProtocol(self, addr: IAddress | None) -> ChatProtocol:
        return ChatProtocol(self)

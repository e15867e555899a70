# -*- test-case-name: tests.test_web_socket -*-
"""
The WebSocket of the web front end (PROTOCOL.md section 9): one
L{WebParticipant} per socket, built by L{SocketFactory} for
L{SocketResource}, which refuses foreign origins. Each text frame in is one
input line in the command language of sections 3 and 4; each frame out is
one event in the C{json} format of section 5.

The limits of section 8 apply as on TCP: a frame longer than the line
limit gets C{line-too-long} and the session goes on; frames beyond the
flood limit wait (the socket is not read meanwhile); output goes through
the same L{Outbox} as a TCP connection's, which judges slow readers and
counts in the server's output budget. A message still being received can
hold at most L{chat.web.meter.message_limit} bytes: past it the socket is
closed with code 1009 (message too big), so that memory stays bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from urllib.parse import urlsplit

from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IProducer,
    IPushProducer,
    ITCPTransport,
    ITransport,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from twisted.web.websocket import WebSocketResource, WebSocketTransport
from wsproto.frame_protocol import FrameProtocol
from zope.interface import implementer

from chat import commands, errors, events, logs, wire
from chat.accounts import is_loopback
from chat.codec import encode
from chat.counts import COUNTS
from chat.framing import LINE_BYTES_PER_TOKEN
from chat.interfaces import IParticipant, Outgoing
from chat.limits import TokenBucket
from chat.outbox import Batch, Outbox
from chat.participant import SessionParticipant
from chat.server import ChatServer
from chat.web.meter import IReadMeter, message_limit
from chat.web.proxy import TrustedProxies

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
"""RFC 6455 section 7.4.1: a binary frame, which this protocol does not use."""
CLOSE_TOO_BIG = 1009
"""RFC 6455 section 7.4.1: a message too big to process."""


_FRAMES = FrameProtocol(client=False, extensions=[])
"""Builds the daemon's frames: no extension is ever negotiated (no compression)."""


def render_frame(event: events.Event) -> bytes:
    """
    An event as one WebSocket text frame (RFC 6455 section 5.2) holding its
    C{json} line (section 5 of PROTOCOL.md) without CR LF. A server's frames
    are not masked and the socket has no extension, so the frame is the
    same bytes for every recipient: the web front end's renderer, called
    once per event for all of them (L{chat.interfaces.Outgoing}), like the
    line protocol's.
    """
    return bytes(_FRAMES.send_data(encode(event)))


@implementer(ITransport, IConsumer)
class FrameWriter:
    """
    What an L{Outbox} writes to for a WebSocket: frames rendered already
    (L{render_frame}), written to the connection's transport as they are,
    in order with what Twisted's WebSocket writes there itself (its answers
    to pings, the close frame). The outbox's producer is registered with
    the HTTP request, whose channel pauses it when the TCP buffer is full.
    L{loseConnection} closes the socket (code 1000) once the outbox's queue
    is empty.
    """

    def __init__(self, socket: WebSocketTransport, request: Request) -> None:
        self._socket = socket
        self._request = request
        transport = request.transport
        assert transport is not None, "a WebSocket has a connection"
        self._transport: ITransport = transport
        self.queued = lambda: 0
        """Bytes the outbox still holds (set once the outbox exists)."""
        self._closing = False
        self.closed = False

    def write(self, data: bytes) -> None:
        """
        Send C{data}, whole frames. After the close frame nothing is sent.
        """
        if self.closed:
            return
        self._transport.write(data)
        if self._closing:
            self._close_when_drained()

    def writeSequence(self, data: Iterable[bytes]) -> None:  # noqa: N802 - ITransport's name
        self.write(b"".join(data))

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:  # noqa: N802
        self._request.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:  # noqa: N802 - IConsumer's name
        self._request.unregisterProducer()

    def loseConnection(self) -> None:  # noqa: N802 - ITransport's name
        self._closing = True
        self._close_when_drained()

    def _close_when_drained(self) -> None:
        if not self.closed and not self.queued():
            self.closed = True
            self._socket.loseConnection(CLOSE_NORMAL)

    def getPeer(self) -> IAddress:  # noqa: N802 - ITransport's name
        address: IAddress = self._request.getClientAddress()
        return address

    def getHost(self) -> IAddress:  # noqa: N802 - ITransport's name
        address: IAddress = self._request.getHost()
        return address


@implementer(IParticipant)
class WebParticipant(SessionParticipant):
    """
    One WebSocket session: a participant of the L{ChatServer}, like a TCP
    connection in C{json} format.

    @ivar peer: the client's address, after trusted proxies (L{TrustedProxies}).
    @ivar secure: whether the client's connection is encrypted (TLS to
        this daemon, or HTTPS to a trusted proxy).
    """

    _log = Logger()
    front_end = "web"

    def __init__(self, factory: SocketFactory, request: Request, peer: str, secure: bool) -> None:
        self.factory = factory
        self.server = server = factory.server
        self.settings = server.settings
        self.clock = server.clock
        self.peer = peer
        self.secure = secure
        self._request = request
        self._socket: WebSocketTransport | None = None
        self._writer: FrameWriter | None = None
        self.outbox: Outbox | None = None
        self.session = server.connect(self, is_loopback(peer))
        self._bucket = TokenBucket(self.settings.flood_rate, self.settings.flood_burst, self.clock.seconds())
        self._inbox: deque[str] = deque()
        self._throttle: IDelayedCall | None = None
        self._flood_warned = False
        self._waiting = False
        self._reading = True
        self._closing = False
        self._quit_reason = "connection lost"
        self._registration_call: IDelayedCall | None = None
        self._abort_call: IDelayedCall | None = None

    # The participant (chat.interfaces.IParticipant; nick, account and
    # close are SessionParticipant's)

    def deliver(self, outgoing: Outgoing) -> None:
        """
        Queue an event in C{json} for the socket (L{Outbox.deliver}).
        """
        if self.outbox is not None:
            self.outbox.deliver(outgoing)

    def _stop_reading(self) -> None:
        self._pause()

    # The socket (twisted.web.websocket.WebSocketProtocol)

    def negotiationStarted(self, transport: WebSocketTransport) -> None:  # noqa: N802 - Twisted's name
        self._socket = transport

    def negotiationFinished(self) -> None:  # noqa: N802 - Twisted's name
        """
        The handshake is answered: the session begins with C{welcome}.
        """
        socket = self._socket
        assert socket is not None
        # The HTTP channel's idle timeout no longer sees this connection's bytes.
        self._request.channel.setTimeout(None)
        meter = IReadMeter(self._request.transport, None)
        if meter is not None:
            meter.watch(message_limit(self.settings.max_line), self._too_big)
        self._writer = writer = FrameWriter(socket, self._request)
        self.outbox = outbox = Outbox(
            writer, self.factory.batch, self.settings.max_output, self._slow_reader, render_frame,
            self.server.output_budget,
        )
        writer.queued = lambda: outbox.queued
        if not self.session.allowed:
            self._log.debug("refused {peer} (web): too many connections from its address", peer=self.peer)
            self.close("too many connections from your address")
            self._flush()
            return
        if logs.debugging:
            self._log.debug("web connection from {peer}", peer=self.peer)
        self._expect_registration()
        self._send(self.server.welcome(registered=False))
        self._flush()

    def textMessageReceived(self, message: str) -> None:  # noqa: N802 - Twisted's name
        """
        One input line: read in order, within the flood limit.
        """
        COUNTS.bytes_in += len(message.encode("utf-8"))
        if self._closing:
            return
        self._inbox.append(message)
        try:
            self._read()
        finally:
            self._flush()

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:  # noqa: N802 - Twisted's name
        """
        Binary frames are not part of the protocol: close with 1003.
        """
        self._log.debug("{peer} (web) sent a binary frame: closed", peer=self.peer)
        self._quit_reason = "sent a binary frame"
        self._closing = self.session.closing = True
        if self._socket is not None:
            self._socket.loseConnection(CLOSE_UNSUPPORTED)

    def pongReceived(self, payload: bytes) -> None:  # noqa: N802 - Twisted's name
        pass

    def connectionLost(self, reason: Failure) -> None:  # noqa: N802 - Twisted's name
        self._closing = self.session.closing = True
        for call in (self._throttle, self._registration_call, self._abort_call):
            if call is not None and call.active():
                call.cancel()
        if self.outbox is not None:
            self.outbox.stopProducing()
        if logs.debugging:
            self._log.debug("{peer} (web) disconnected", peer=self.peer)
        self.server.disconnect(self.session, self._quit_reason)
        self.factory.batch.flush()

    # Input

    def _read(self) -> None:
        """
        Run the waiting lines while the flood limit allows and no request
        is pending; stop reading the socket while any wait.
        """
        inbox = self._inbox
        while inbox and not (self._closing or self._waiting or self._throttle is not None):
            text = inbox[0]
            now = self.clock.seconds()
            if self._flood_warned and self._bucket.full(now):
                self._flood_warned = False
            delay = self._bucket.wait(now)
            if delay > 0:
                COUNTS.flood_delays += 1
                self._throttle = self.clock.callLater(delay, self._unthrottle)
                if not self._flood_warned:
                    self._flood_warned = True
                    self._refuse(errors.Flood("you are sending too fast: your lines are being delayed"))
                break
            inbox.popleft()
            size = len(text.encode("utf-8"))
            self._bucket.take(now, max(1.0, (size + 1) / LINE_BYTES_PER_TOKEN))
            try:
                self._line(text, size)
            except errors.ChatError as e:
                self._refuse(e)
        if inbox and not self._closing:
            self._pause()
        else:
            self._resume()

    def _unthrottle(self) -> None:
        self._throttle = None
        self._read()
        self._flush()

    def _pause(self) -> None:
        if self._reading:
            self._reading = False
            producer = IPushProducer(self._request.transport, None)
            if producer is not None:
                producer.pauseProducing()

    def _resume(self) -> None:
        if not self._reading and not self._closing:
            self._reading = True
            producer = IPushProducer(self._request.transport, None)
            if producer is not None:
                producer.resumeProducing()

    def _line(self, text: str, size: int) -> None:
        if text.endswith("\n"):
            text = text[:-2] if text.endswith("\r\n") else text[:-1]
        if size > self.settings.max_line:
            raise errors.LineTooLong(f"a line is at most {self.settings.max_line} bytes")
        command = wire.parse(text)
        session = self.session
        if command.name is None and session.user is None:
            if command.args.strip():
                raise errors.NotRegistered("choose a nick first: /nick NAME")
            return
        request = commands.parse(command, session.user is not None)
        if isinstance(request, commands.Format):
            if request.name != "json":
                raise errors.BadArguments("a WebSocket session is always in the json format")
            self._send(self.server.welcome(registered=session.user is not None))
        elif isinstance(request, (commands.Upload, commands.Download)):
            raise errors.BadArguments(
                "files go over HTTP on the web: POST /files?to=TARGET&name=NAME to offer one, "
                "GET /files/ID to fetch one (with your token)"
            )
        elif isinstance(request, commands.StartTLS):
            raise errors.BadArguments("a WebSocket cannot switch to TLS: open the page over https (wss://)")
        elif isinstance(request, commands.Quit):
            self.close(request.reason)
        else:
            pending = self.server.execute(session, request)
            if pending is None:
                self._registered()
                return
            self._waiting = True
            pending.addBoth(self._released)

    def _released(self, result: object) -> None:
        self._waiting = False
        self._registered()
        self._read()
        self._flush()

    def _too_big(self) -> None:
        """
        Called by the read meter: a message too big to hold is arriving.
        """
        self._log.info("{peer} (web) sent a message too big to hold: closed", peer=self.peer)
        self._quit_reason = "message too big"
        self._closing = self.session.closing = True
        if self._socket is not None:
            self._socket.loseConnection(CLOSE_TOO_BIG)

    # Output

    def _send(self, event: events.Event) -> None:
        self.server.tell(self.session, event)

    def _refuse(self, error: errors.ChatError) -> None:
        self._send(events.Error.of(error))

    def _flush(self) -> None:
        self.factory.batch.flush()

    def _close_now(self, reason: str) -> None:
        outbox, writer = self.outbox, self._writer
        if outbox is None or writer is None:
            return
        outbox.finish(render_frame(events.Bye(reason)))
        outbox.flush()
        writer.loseConnection()
        transport = ITCPTransport(self._request.transport, None)
        if transport is not None:
            self._abort_call = self.clock.callLater(self.settings.shutdown_timeout, transport.abortConnection)

    def _slow_reader(self) -> None:
        COUNTS.slow_readers += 1
        outbox = self.outbox
        self._log.warn(
            "disconnecting {peer} (web): it does not read its output ({why})",
            peer=self.peer, why=outbox.overflow_reason if outbox is not None else "",
        )
        self._quit_reason = "too slow reading"
        self._closing = self.session.closing = True
        transport = ITCPTransport(self._request.transport, None)
        if transport is not None:
            transport.abortConnection()


class SocketFactory:
    """
    Builds a L{WebParticipant} for each WebSocket of the web listeners of
    one L{ChatServer}.

    @ivar batch: the frames written during one reactor turn, flushed at the
        end of each entry point.
    """

    def __init__(self, server: ChatServer, proxies: TrustedProxies) -> None:
        self.server = server
        self.proxies = proxies
        self.batch = Batch(server.clock)

    def buildProtocol(self, request: Request) -> WebParticipant:  # noqa: N802 - Twisted's name
        address = request.getClientAddress()
        host = str(getattr(address, "host", address))
        peer = self.proxies.client(host, request.requestHeaders.getRawHeaders("x-forwarded-for", []))
        secure = self.proxies.secure(
            host, request.isSecure(), request.requestHeaders.getRawHeaders("x-forwarded-proto", [])
        )
        return WebParticipant(self, request, peer, secure)


def request_origin(request: Request, proxies: TrustedProxies) -> str:
    """
    The origin a request was addressed to: its scheme (C{https} over TLS,
    or when a trusted proxy says so) and its C{Host} header, lower-cased,
    with the scheme's default port left out (RFC 6454).
    """
    address = request.getClientAddress()
    host = str(getattr(address, "host", address))
    forwarded = request.requestHeaders.getRawHeaders("x-forwarded-proto", [])
    scheme = "https" if proxies.secure(host, request.isSecure(), forwarded) else "http"
    header = (request.getHeader("host") or "").strip().lower()
    return normal_origin(f"{scheme}://{header}")


def normal_origin(origin: str) -> str:
    """
    An origin as compared (RFC 6454 section 4): lower-cased
    C{scheme://host[:port]}, without the scheme's default port; C{''} for
    anything that is not an http or https origin.
    """
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


class SocketResource(Resource):
    """
    C{GET /ws}: the WebSocket handshake, refused with 403 when the request
    has an C{Origin} that is neither the page's own nor one of
    C{settings.web_origins} (cross-site WebSocket hijacking).
    """

    isLeaf = True

    def __init__(self, factory: SocketFactory) -> None:
        super().__init__()
        self._factory = factory
        self._socket = WebSocketResource(factory)
        self._allowed = frozenset(normal_origin(origin) for origin in factory.server.settings.web_origins)

    def render_GET(self, request: Request) -> bytes | int:  # noqa: N802 - Twisted's name
        origin = request.getHeader("origin")
        if origin is not None:
            given = normal_origin(origin)
            if not given or (given != request_origin(request, self._factory.proxies) and given not in self._allowed):
                self._log_refusal(request, origin)
                request.setResponseCode(403)
                request.setHeader("content-type", "text/plain; charset=utf-8")
                return b"this page's origin may not open the chat socket (see --web-origin)\n"
        result = self._socket.render_GET(request)
        return NOT_DONE_YET if result == NOT_DONE_YET else result

    _log = Logger()

    def _log_refusal(self, request: Request, origin: str) -> None:
        self._log.info("refused a WebSocket from the origin {origin!r} (not this site's, nor a --web-origin)",
                       origin=origin[:200])

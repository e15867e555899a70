# -*- test-case-name: tests.test_cluster_bus -*-
"""
L{RedisBus}: the L{IBus} of a daemon in a cluster. An event published is
delivered at once to this process's participants by a L{LocalBus} (the
same resolution by L{chat.delivery.Directory} as a single daemon), and,
unless it is addressed to one participant of this process
(L{ToParticipant}), published through Redis for the other daemons, each
of which delivers it to its own participants.

On Redis, a publication is one atomic script (C{EVAL}) that appends the
envelope (L{chat.cluster.wire}) to the capped stream L{STREAM} (the last
L{STREAM_LENGTH} or so publications of the whole cluster) and publishes
C{"STREAM-ID ENVELOPE"} on the channel L{CHANNEL}. Every daemon subscribes
to L{CHANNEL} and delivers the envelopes of the other nodes (its own are
skipped by node name). When its subscription comes back after being lost,
it first reads from the stream what was published since the last entry
it saw, so that a publication made while it was away (by a node that got
back to Redis sooner) is still delivered; duplicates (a publication sent
again because its acknowledgement was lost) are dropped by the node's run
and sequence number.

Two connections, each kept by a txredisapi factory (which reconnects with
Twisted's C{ClientService} and a capped exponential backoff): one for the
publications and the catch-up reads, one for the subscription. While the
publishing connection is down, publications wait in a queue of at most
C{queue_limit} (beyond that they are dropped, counted in L{RedisBus.dropped}
and logged once per outage); a publication leaves the queue only when
Redis has acknowledged it, so those in flight when the connection drops
are sent again, in order, on reconnection.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import txredisapi  # type: ignore[import-untyped]
from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import HostnameEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from chat import events
from chat.cluster import wire
from chat.cluster.order import LOCAL, MessageLog, Orderer
from chat.cluster.redis import Connection, Subscriber, parse_url
from chat.delivery import Directory, LocalBus
from chat.interfaces import Address, IBus, ToParticipant, ToUsers
from chat.storage import RoomModeration

CHANNEL = "chat:events"
"""The Redis channel of the cluster's publications."""

NOBODY = ToUsers(())
"""The address of a publication that no participant receives."""

STREAM = "chat:log"
"""The Redis stream holding the cluster's recent publications, for a node catching up after a lost subscription."""

STREAM_LENGTH = 10_000
"""About how many publications L{STREAM} keeps (C{XADD MAXLEN ~}): a node away for longer misses some."""

BATCH = 200
"""
The most publications sent in one Redis message (one line each): those of
one reactor turn go together, so that a node receiving them delivers them
in one turn (one write per participant, not one per publication).
"""

QUEUE_LIMIT = 10_000
"""Publications a node keeps while Redis cannot take them; later ones are dropped until it is back."""

PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
redis.call('PUBLISH', KEYS[2], id .. ' ' .. ARGV[1])
return id
"""
"""The script of one publication: KEYS = (stream, channel), ARGV = (envelope, stream length); returns the entry id."""

StreamId = tuple[int, int]
"""A Redis stream entry id C{"MS-SEQ"} as a pair of integers, which orders entries."""

Entry = tuple[StreamId, str, bytes]
"""One publication read from Redis: its stream id parsed and as text, and its envelope."""


def _text(value: object) -> str:
    """
    A reply item as text: txredisapi hands over C{str} when it decodes as
    UTF-8, else C{bytes}.
    """
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _stream_id(text: str) -> StreamId:
    """
    @raise ValueError: not C{"MS-SEQ"}.
    """
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence)


@implementer(IBus)
class RedisBus(Service):
    """
    The bus of one daemon (node) of a cluster, through Redis at
    C{host:port}; a twisted service (L{startService} connects,
    L{stopService} disconnects).

    @ivar node: this daemon's name in the cluster (C{--node}).
    @ivar run: a random token of this process, new at each start, which
        tells a node's publications after a restart from those before.
    @ivar local: the L{LocalBus} delivering to this process's participants.
    @ivar connected: whether Redis takes publications and the subscription
        is up to date (C{False} before the first connection).
    @ivar ready: fires (with C{None}) once Redis was first reached and the
        subscription established.
    @ivar published: publications sent to Redis and acknowledged.
    @ivar received: publications of other nodes delivered here.
    @ivar duplicates: publications of other nodes received again and dropped.
    @ivar dropped: publications dropped because the queue was full.
    """

    _log = Logger()

    def __init__(
        self,
        host: str,
        port: int,
        node: str,
        *,
        db: int | None = None,
        password: str | None = None,
        local: LocalBus | None = None,
        reactor: Any = None,
        queue_limit: int = QUEUE_LIMIT,
        stream_length: int = STREAM_LENGTH,
        retry_delays: tuple[float, float] = (0.2, 5.0),
        reply_timeout: float = 10.0,
        log: MessageLog | None = None,
    ) -> None:
        """
        @param log: where messages are numbered (the cluster's
            L{chat.postgres_store.PostgresStore}): with it, what is
            delivered here is put in order (L{chat.cluster.order}).
        @param reply_timeout: seconds Redis may take to acknowledge a
            publication or answer a catch-up read before the publishing
            connection is dropped and made again (a hung server).
        @param retry_delays: seconds before the first attempt to reconnect,
            and at most between attempts (the delay grows by e each time).
        @param reactor: the reactor to connect with (the global one by default).
        """
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.name = f"redis-bus-{node}"
        self.host, self.port, self.node = host, port, node
        self.address = f"{host}:{port}"
        self.run = secrets.token_hex(8)
        self.local = local or LocalBus()
        self.on_new_node: Callable[[str, bool], None] | None = None
        """
        Called with a node's name, before its first publication seen here is
        delivered, and whether it is a new run of a node seen before (it
        restarted): how the daemons learn each other's users
        (L{chat.server.ChatServer.new_node}).
        """
        self._runs: dict[str, str] = {}
        """The run of each other node, as last seen."""
        self.on_remote: Callable[[wire.Carried, str], None] | None = None
        """
        Called with each event another node published, and its node name,
        before it is delivered here: how the domain follows the other
        daemons' users (L{chat.server.ChatServer.remote_event}).
        """
        self._reactor = reactor
        self._db, self._password = db, password
        self._queue_limit, self._stream_length = queue_limit, str(stream_length)
        self._delays = retry_delays
        self._reply_timeout = reply_timeout
        self.connected = False
        self.ready: Deferred[None] = Deferred()
        self.published = self.received = self.duplicates = self.dropped = 0
        self._seq = 0
        self._sent = 0
        """The sequence number of the last publication sent to Redis (acknowledged or not)."""
        self._flush_call: Any = None
        self._pending: deque[tuple[int, bytes]] = deque()
        """Publications not yet acknowledged by Redis, by sequence number, oldest first."""
        self._publisher: Any = None
        self._subscriber: Any = None
        self._subscribed = False
        self._epoch = 0
        """Counts subscriptions: a catch-up read made for an older one must be made again."""
        self._catching_up = False
        self._fetching = False
        self._buffer: list[Entry] = []
        """Live messages received while catching up, and the catch-up's entries, delivered together in stream order."""
        self._cursor: StreamId | None = None
        """The last stream entry seen (delivered or skipped); C{None} until the first subscription's read."""
        self._seen: dict[tuple[str, str], int] = {}
        """The last sequence number delivered of each (node, run)."""
        self._outage = False
        self._drop_logged = False
        self._twin_logged = False
        self._stopping = False
        self._factories: list[Connection] = []
        self.order = None if log is None else Orderer(log, reactor, self._deliver_here)
        """What puts deliveries here in order, when given a L{MessageLog}."""

    @classmethod
    def from_url(cls, url: str, node: str, **options: Any) -> RedisBus:
        """
        A bus through the Redis of C{url} (see L{parse_url}); C{options} as for the constructor.

        @raise ValueError: a bad URL.
        """
        host, port, db, password = parse_url(url)
        return cls(host, port, node, db=db, password=password, **options)

    @property
    def directory(self) -> Directory:
        """
        This process's participants and their rooms (the L{LocalBus}'s).
        """
        return self.local.directory

    @property
    def queued(self) -> int:
        """
        Publications waiting for Redis to acknowledge them.
        """
        return len(self._pending)

    # Publishing

    def publish(self, event: events.Event, address: Address) -> None:
        """
        Deliver C{event} to this process's participants at C{address} now,
        and, unless C{address} is a L{ToParticipant}, to those of the other
        nodes through Redis (queued while Redis is away). Never raises.
        """
        order = self.order
        fresh = order is not None and order.is_new(event)
        if order is None:
            self.local.publish(event, address)
        else:
            order.arrive(LOCAL, event, address)
        if isinstance(address, ToParticipant):
            if not fresh:
                return
            address = NOBODY  # the other daemons only learn that its id is taken (a message waiting offline)
        self._enqueue(event, address)

    def _enqueue(self, event: wire.Carried, address: wire.RemoteAddress) -> None:
        """
        Queue one publication for Redis (see L{publish}).
        """
        self._seq += 1
        try:
            data = wire.encode(wire.Envelope(self.node, self.run, self._seq, event, address))
        except ValueError:
            self._log.failure("cannot publish {event!r} to the cluster", event=event)
            return
        if len(self._pending) >= self._queue_limit:
            self.dropped += 1
            if not self._drop_logged:
                self._drop_logged = True
                self._log.error(
                    "Redis bus queue full ({limit} publications): dropping publications until Redis at {address}"
                    " takes them again",
                    limit=self._queue_limit, address=self.address,
                )
            return
        self._pending.append((self._seq, data))
        if self._publisher is not None and self._flush_call is None:
            self._flush_call = self._reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        """
        Send the publications of this reactor turn not sent yet, in Redis
        messages of at most L{BATCH} each (one line per publication): a
        node receiving them delivers a whole batch in one turn, and writes
        once to each of its participants.
        """
        self._flush_call = None
        if self._publisher is None:
            return
        unsent = [(seq, data) for seq, data in self._pending if seq > self._sent]
        self._send_batches(self._publisher, unsent)

    def _send_batches(self, connection: Any, items: list[tuple[int, bytes]]) -> None:
        for start in range(0, len(items), BATCH):
            batch = items[start:start + BATCH]
            self._send(connection, batch[-1][0], b"\n".join(data for _, data in batch))
            self._sent = batch[-1][0]

    def _send(self, connection: Any, seq: int, data: bytes) -> None:
        try:
            sent = connection.execute_command("EVAL", PUBLISH, 2, STREAM, CHANNEL, data, self._stream_length)
        except txredisapi.ConnectionError:
            return  # lost: delConnection follows, the reconnection sends it again
        sent.addCallbacks(self._acknowledged, self._refused, callbackArgs=(seq,), errbackArgs=(seq,))

    def _acknowledged(self, reply: object, seq: int) -> None:
        pending = self._pending
        while pending and pending[0][0] <= seq:
            pending.popleft()
            self.published += 1

    def _refused(self, failure: Failure, seq: int) -> None:
        if failure.check(txredisapi.ConnectionError):
            return  # sent again on reconnection
        self._log.failure("Redis at {address} refused publication {seq}", failure, address=self.address, seq=seq)

    def _publisher_ready(self, connection: Any) -> None:
        self._publisher = connection
        self._send_batches(connection, list(self._pending))
        self._catch_up()
        self._check()

    def _publisher_lost(self, connection: Any) -> None:
        if connection is self._publisher:
            self._publisher = None
            self._check()

    # Receiving

    def _subscriber_ready(self, connection: Any) -> None:
        self._subscriber = connection
        self._epoch += 1
        subscribing = connection.subscribe(CHANNEL)
        subscribing.addCallbacks(self._subscription, self._not_subscribed, callbackArgs=(connection,))

    def _subscription(self, reply: object, connection: Any) -> None:
        if connection is not self._subscriber:
            return
        self._subscribed = True
        self._catching_up = True
        self._catch_up()

    def _not_subscribed(self, failure: Failure) -> None:
        if not failure.check(txredisapi.ConnectionError):
            self._log.failure("cannot subscribe to {channel} on Redis at {address}", failure,
                              channel=CHANNEL, address=self.address)

    def _subscriber_lost(self, connection: Any) -> None:
        if connection is self._subscriber:
            self._subscriber = None
            self._subscribed = False
            self._check()

    def _message(self, message: object) -> None:
        """
        One message on L{CHANNEL}: C{"STREAM-ID ENVELOPE"}.
        """
        try:
            data = message if isinstance(message, bytes) else str(message).encode("utf-8")
            head, _, payload = data.partition(b" ")
            text = head.decode("ascii")
            entry = (_stream_id(text), text, payload)
        except ValueError:
            self._log.warn("not a cluster publication on {channel}: {message!r:.200}", channel=CHANNEL,
                           message=message)
            return
        if self._catching_up:
            self._buffer.append(entry)
        else:
            self._accept(entry)

    def _catch_up(self) -> None:
        """
        Read what the stream holds since the last entry seen (or, the first
        time, only where it ends), once subscribed and able to send.
        """
        connection = self._publisher
        if not (self._catching_up and self._subscribed) or connection is None or self._fetching:
            return
        first = self._cursor is None
        try:
            if self._cursor is None:
                reading = connection.execute_command("XREVRANGE", STREAM, "+", "-", "COUNT", 1)
            else:
                reading = connection.execute_command("XRANGE", STREAM, "({}-{}".format(*self._cursor), "+")
        except txredisapi.ConnectionError:
            return
        self._fetching = True
        reading.addCallbacks(
            self._read, self._not_read, callbackArgs=(self._epoch, first), errbackArgs=(self._epoch, first),
        )

    def _read(self, reply: object, epoch: int, first: bool) -> None:
        self._fetching = False
        entries: list[Entry] = []
        try:
            for item in reply if isinstance(reply, list) else ():
                text = _text(item[0])
                fields = item[1]
                payload = next(
                    (fields[i + 1] for i in range(0, len(fields) - 1, 2) if _text(fields[i]) == "e"), b"",
                )
                data = payload if isinstance(payload, bytes) else str(payload).encode("utf-8")
                entries.append((_stream_id(text), text, data))
        except (ValueError, TypeError, IndexError):
            self._log.failure("unreadable reply from Redis at {address} catching up", address=self.address)
        if first:
            last = max((entry[0] for entry in entries), default=(0, 0))
            self._cursor = max(self._cursor or (0, 0), last)
        else:
            self._buffer.extend(entries)
        self._deliver_buffer(epoch)

    def _not_read(self, failure: Failure, epoch: int, first: bool) -> None:
        self._fetching = False
        if failure.check(txredisapi.ConnectionError):
            return  # read again when the publishing connection is back
        self._log.failure("cannot catch up from Redis at {address}", failure, address=self.address)
        if first:
            self._cursor = self._cursor or (0, 0)
        self._deliver_buffer(epoch)

    def _deliver_buffer(self, epoch: int) -> None:
        if epoch != self._epoch or not self._subscribed:
            # subscribed again since (or lost): read again from the cursor before delivering anything
            self._catch_up()
            return
        buffer, self._buffer = sorted(self._buffer, key=lambda entry: entry[0]), []
        self._catching_up = False
        for entry in buffer:
            self._accept(entry)
        self._check()

    def _accept(self, entry: Entry) -> None:
        """
        Deliver the publications of one Redis message here (one line each,
        L{BATCH}), unless they are this node's own or delivered already.
        """
        key, _, payload = entry
        if self._cursor is None or key > self._cursor:
            self._cursor = key
        for line in payload.split(b"\n"):
            try:
                envelope = wire.decode(line)
            except ValueError as e:
                self._log.warn("dropped a bad cluster publication: {error}", error=e)
                continue
            self._deliver(envelope)

    def _deliver(self, envelope: wire.Envelope) -> None:
        """Deliver one publication of another node here, unless it is this node's own or one delivered already."""
        if envelope.node == self.node:
            if envelope.run != self.run and not self._twin_logged:
                self._twin_logged = True
                self._log.error("another daemon publishes as node {node}: give each daemon its own --node",
                                node=self.node)
            return
        origin = (envelope.node, envelope.run)
        if envelope.seq <= self._seen.get(origin, 0):
            self.duplicates += 1
            return
        self._seen[origin] = envelope.seq
        self.received += 1
        try:
            if self._runs.get(envelope.node) != envelope.run:
                restarted = envelope.node in self._runs
                self._runs[envelope.node] = envelope.run
                if self.on_new_node is not None:
                    self.on_new_node(envelope.node, restarted)
            if self.order is None:
                self._deliver_here(origin, envelope.event, envelope.address)
            else:
                self.order.arrive(origin, envelope.event, envelope.address)
        except Exception:
            self._log.failure("delivering a publication of node {node}", node=envelope.node)

    def _deliver_here(self, origin: Hashable | None, event: wire.Carried, address: Address) -> None:
        """
        Deliver an event here: this node's own (from L{LOCAL}), another
        node's (from C{(node, run)}), or a message read from the database
        (from C{None}), which the replica follows too. A room's moderation
        goes to the replica alone.
        """
        local = origin == LOCAL
        if not local and self.on_remote is not None:
            self.on_remote(event, "" if origin is None else origin[0])  # type: ignore[index]
        if not isinstance(event, RoomModeration):
            self.local.deliver(event, address, counted=local)  # each message counted by its own daemon

    def publish_moderation(self, moderation: RoomModeration) -> None:
        """
        Tell the other nodes the moderation of a room after a change here
        (L{chat.domain.state.DomainState.on_moderation}); nobody here or
        there is told. Never raises.
        """
        self._enqueue(moderation, NOBODY)

    # State

    def _check(self) -> None:
        """
        Follow whether the bus is connected, and say when it is lost and back.
        """
        now = self._publisher is not None and self._subscribed and not self._catching_up
        if now == self.connected:
            return
        self.connected = now
        if now:
            self._drop_logged = False
            if self._outage:
                self._outage = False
                self._log.info("Redis is back at {address} ({queued} publications still queued, {dropped} dropped)",
                               address=self.address, queued=len(self._pending), dropped=self.dropped)
                if self.order is not None:
                    self.order.catch_up()  # what was committed meanwhile and is no longer on Redis
            else:
                self._log.info("cluster bus of node {node} on Redis at {address}", node=self.node,
                               address=self.address)
            if not self.ready.called:
                self.ready.callback(None)
        elif not self._stopping:
            self._outage = True
            self._log.warn("lost Redis at {address}: publications are queued (at most {limit}) until it is back",
                           address=self.address, limit=self._queue_limit)

    @override
    def startService(self) -> None:
        """
        Connect to Redis (and keep reconnecting): one connection to publish, one to subscribe.
        """
        super().startService()
        self._stopping = False
        endpoint = HostnameEndpoint(self._reactor, self.host, self.port, timeout=10)
        self._factories = [
            Connection(self.address, txredisapi.RedisProtocol, self._db, self._password, self._delays,
                       self._publisher_ready, self._publisher_lost, reply_timeout=self._reply_timeout),
            Connection(self.address, Subscriber, self._db, self._password, self._delays,
                       self._subscriber_ready, self._subscriber_lost, self._message),
        ]
        for factory in self._factories:
            factory.startConnecting(endpoint)

    @override
    def stopService(self) -> Deferred[None]:
        """
        Disconnect from Redis; publications still queued are lost.

        @return: fires once both connections are closed.
        """
        super().stopService()
        self._stopping = True
        factories, self._factories = self._factories, []
        closing = gatherResults([factory.disconnect() for factory in factories], consumeErrors=True)
        done: Deferred[None] = closing.addCallback(lambda _: None)
        return done

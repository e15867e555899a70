# -*- test-case-name: tests.test_cluster_claims -*-
"""
Nick claims and node liveness shared by the daemons of a cluster through
Redis (issue 23, PROTOCOL.md section 13): a nick is held by one node at a
time under a lease that node renews, and a node that stops renewing is
noticed as gone by the others within a bound.

Keys (one cluster per Redis database, every key prefixed C{chat:}):

  - C{chat:nick:<nick lower-cased>}: string, the name of the node holding
    the nick; expires after the lease (milliseconds, C{PX}).
  - C{chat:nicks:<node>}: set of the lower-cased nicks the node holds,
    kept with the claims; expires after L{NICKS_LEASES} leases, so that
    the others can still read it once the node's heartbeat has expired.
  - C{chat:node:<node>}: string, the node's heartbeat; expires after the
    lease.
  - C{chat:nodes}: set of the names of the nodes that have beaten; a name
    whose heartbeat and nick set are both gone is dropped by the watchers.

Every change is one Lua script (C{EVAL}), so that each is atomic in Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

import txredisapi  # type: ignore[import-untyped]
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from chat import errors
from chat.cluster.redis import Connection, parse_url
from chat.interfaces import INickClaims

T = TypeVar("T")

LEASE = 15.0
"""Default lease of a claim and of a heartbeat, in seconds."""

WATCH_INTERVAL = 5.0
"""Default interval between two looks at the other nodes' heartbeats, in seconds."""

TIMEOUT = 5.0
"""Default time a Redis request may take before it fails, in seconds."""

RECONNECT_DELAY = 10.0
"""The longest delay between two attempts to reconnect to Redis, in seconds (C{txredisapi}'s C{maxDelay})."""

NICKS_LEASES = 4
"""A node's nick set outlives its last heartbeat by this many leases less one."""

_CLAIM = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""
"""KEYS: nick key, nick set of the node; ARGV: node, lease ms, lower nick, nick set ms. 1 if held."""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 0
"""
"""KEYS: nick key, nick set of the node; ARGV: node, lower nick. Compare-and-delete."""

_RENEW = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
local lost = {}
for i = 4, #KEYS do
  local nick = ARGV[i]
  local holder = redis.call('GET', KEYS[i])
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    redis.call('SADD', KEYS[3], nick)
  elseif not holder then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
    redis.call('SADD', KEYS[3], nick)
  else
    redis.call('SREM', KEYS[3], nick)
    lost[#lost + 1] = nick
  end
end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return lost
"""
"""
KEYS: heartbeat, node set, nick set of the node, then one nick key per held
nick; ARGV: node, lease ms, nick set ms, then the lower nicks (ARGV[i] goes
with KEYS[i] from 4 on). Beats, renews what is still ours, re-asserts what
expired, returns the lower nicks another node holds now.
"""

_FORGET = """
local mine = redis.call('SMEMBERS', KEYS[2])
for _, nick in ipairs(mine) do
  local key = ARGV[2] .. nick
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return #mine
"""
"""
KEYS: heartbeat, nick set of the node, node set; ARGV: node, nick key prefix.
Deletes every claim the node holds, its nick set and its heartbeat.
"""

_NODES = """
local live, dead = {}, {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. node) == 1 then
    live[#live + 1] = node
  else
    local nicks = ARGV[2] .. node
    if redis.call('EXISTS', nicks) == 0 then redis.call('SREM', KEYS[1], node) end
    dead[#dead + 1] = node
  end
end
return {live, dead}
"""
"""KEYS: node set; ARGV: heartbeat key prefix, nick set key prefix. Returns live and dead node names."""


class ClusterUnavailable(errors.Busy):
    """
    Redis cannot be reached (not connected, or no answer within the
    timeout): the cluster cannot say whether a nick is free. Wire code
    C{busy}: the user may try again later.
    """


class _Redis(Protocol):
    """
    The part of a C{txredisapi} connection handler this module calls.
    """

    def eval(self, script: str, keys: list[str], args: list[str]) -> Deferred[Any]: ...

    def get(self, key: str) -> Deferred[Any]: ...


def _lost_by_default(nick: str) -> None:
    """
    The default of L{NickClaims}'s C{on_lost}: nothing.
    """


def _gone_by_default(node: str, nicks: frozenset[str]) -> None:
    """
    The default of L{NickClaims}'s C{on_node_gone}: nothing.
    """


@implementer(INickClaims)
class NickClaims(Service):
    """
    This node's nick claims in the cluster, their leases, its heartbeat,
    and a watch on the other nodes' heartbeats.

    Started, it connects to Redis (and reconnects whenever the connection
    is lost, with C{txredisapi}'s back-off), and every C{lease / 3} seconds
    beats and renews all its claims in one script: a claim that expired
    meanwhile (Redis restarted, or was unreachable longer than the lease)
    is set again if nobody took it, and reported to C{on_lost} if another
    node did. Every C{watch_interval} seconds it reads which nodes beat and
    reports each node whose heartbeat expired to C{on_node_gone}, once.
    A node that dies is therefore noticed within C{lease + watch_interval}
    seconds (20 s by default); its claims are free after C{lease} seconds.
    Within C{settle} seconds of its own (re)connection to Redis it reports
    no node gone (the others may still be reconnecting after a restart of
    Redis, which lost every key).

    @ivar node: this node's name (C{--node}).
    """

    _log = Logger()

    def __init__(
        self,
        node: str,
        endpoint: IStreamClientEndpoint,
        reactor: IReactorTime,
        *,
        dbid: int = 0,
        password: str | None = None,
        lease: float = LEASE,
        watch_interval: float = WATCH_INTERVAL,
        timeout: float = TIMEOUT,
        settle: float | None = None,
        on_lost: Callable[[str], object] = _lost_by_default,
        on_node_gone: Callable[[str, frozenset[str]], object] = _gone_by_default,
    ) -> None:
        """
        @param node: this node's name, unique in the cluster.
        @param endpoint: where Redis listens (see L{from_url}).
        @param reactor: the clock of the renewals, the watch and the
            timeouts (C{txredisapi} itself schedules its reconnections and
            reply timeouts on the global reactor).
        @param dbid: the Redis database number.
        @param password: Redis's password, or C{None}.
        @param lease: seconds a claim or a heartbeat lives without renewal;
            renewed every C{lease / 3} seconds.
        @param watch_interval: seconds between two looks at the other
            nodes' heartbeats.
        @param settle: seconds after each (re)connection to Redis during
            which no node is judged gone: after a Redis restart every
            heartbeat is lost until the nodes reconnect and beat again.
            C{None}: C{lease + RECONNECT_DELAY} (25 s by default).
        @param timeout: seconds a Redis request may take before it fails
            with L{ClusterUnavailable} (also C{txredisapi}'s reply timeout,
            after which it drops and reopens the connection).
        @param on_lost: called with a nick (as claimed, or lower-cased if
            claimed under another case since) this node held and another
            node holds now; the server renames or disconnects its user.
        @param on_node_gone: called once with the name of another node whose
            heartbeat expired and the lower-cased nicks it held (some may
            have been claimed by others since); the server makes that node's
            users quit.
        """
        self.node = node
        self._endpoint = endpoint
        self._reactor = reactor
        self._lease_ms = str(max(1, round(lease * 1000)))
        self._nicks_ms = str(max(1, round(lease * 1000 * NICKS_LEASES)))
        self._timeout = timeout
        self._on_lost = on_lost
        self._on_node_gone = on_node_gone
        self._held: dict[str, str] = {}  # lower nick -> nick as claimed
        self._known: set[str] = set()
        self._reported: set[str] = set()
        self._fresh = True
        self._renewing: Deferred[None] | None = None
        self._factory = Connection(
            None, dbid=dbid or None, password=password, reply_timeout=timeout, on_ready=lambda _: self._connected()
        )
        self._redis: _Redis = self._factory.handler
        self._renewal = LoopingCall(self.renew)
        self._renewal.clock = reactor
        self._renew_interval = lease / 3
        self._watch = LoopingCall(self.watch)
        self._watch.clock = reactor
        self._watch_interval = watch_interval
        self._abandoned = False
        self._settle = lease + RECONNECT_DELAY if settle is None else settle
        self._since = reactor.seconds()
        self._waiting: list[Deferred[None]] = []
        self._beaten = False

    # Keys

    @staticmethod
    def _nick_key(lower: str) -> str:
        return "chat:nick:" + lower

    def _nicks_key(self, node: str | None = None) -> str:
        return "chat:nicks:" + (node or self.node)

    def _beat_key(self) -> str:
        return "chat:node:" + self.node

    # Lifecycle

    @override
    def startService(self) -> None:
        """
        Connect to Redis, and start renewing and watching. Forgets, once
        connected, the claims a previous run of this node left behind.
        """
        super().startService()
        self._factory.startConnecting(self._endpoint)
        self._renewal.start(self._renew_interval, now=False)
        self._watch.start(self._watch_interval, now=False)

    @override
    def stopService(self) -> Deferred[None]:
        """
        Stop renewing and watching, delete this node's claims, nick set and
        heartbeat (when Redis answers within the timeout), and disconnect.

        @return: fires with C{None} when disconnected; never fails.
        """
        super().stopService()
        self._stop_loops()
        if self._abandoned:
            return succeed(None)
        self._held.clear()
        leaving = self._call(
            lambda: self._redis.eval(
                _FORGET, [self._beat_key(), self._nicks_key(), "chat:nodes"], [self.node, "chat:nick:"]
            )
        )

        def failed(failure: Failure) -> None:
            self._log.warn("node {node} left without releasing its claims: {why}", node=self.node,
                           why=failure.getErrorMessage())

        def disconnect(_: object) -> Deferred[None]:
            return self._factory.disconnect().addBoth(lambda _: None)  # type: ignore[no-any-return]

        return leaving.addCallbacks(lambda _: None, failed).addCallback(disconnect)

    def abandon(self) -> Deferred[None]:
        """
        Stop renewing and watching and drop the connection, releasing
        nothing: what a crash looks like to the rest of the cluster (for
        tests, and for a daemon that must stop at once). A later
        L{stopService} does nothing more.

        @return: fires with C{None} when the connection is closed.
        """
        self._abandoned = True
        self._stop_loops()
        self._held.clear()
        return self._factory.disconnect().addBoth(lambda _: None)  # type: ignore[no-any-return]

    def _stop_loops(self) -> None:
        for loop in (self._renewal, self._watch):
            if loop.running:
                loop.stop()

    def _connected(self) -> None:
        """
        A connection became usable: forget a previous run's claims (first
        connection only), then beat and re-assert the claims at once.
        """
        self._since = self._reactor.seconds()
        if self._fresh:
            self._fresh = False
            forgetting: Deferred[object] = self._call(
                lambda: self._redis.eval(
                    _FORGET, [self._beat_key(), self._nicks_key(), "chat:nodes"], [self.node, "chat:nick:"]
                )
            )
            forgetting.addErrback(self._log_failure, "forgetting the claims of node {node}'s previous run")
        if self.running:
            self.renew()

    def ready(self) -> Deferred[None]:
        """
        Fires with C{None} once connected to Redis and this node has beaten
        (at once when it has already); never fails, and may never fire
        while Redis stays unreachable.
        """
        if self._beaten:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiting.append(waiter)
        return waiter

    def _log_failure(self, failure: Failure, what: str) -> None:
        self._log.warn(what + " failed: {why}", node=self.node, why=failure.getErrorMessage())

    # Requests

    @property
    def connected(self) -> bool:
        """
        Whether a connection to Redis is open now.
        """
        return bool(self._factory.size)

    def _call(self, request: Callable[[], Deferred[T]]) -> Deferred[T]:
        """
        Send a request now, and fail it with L{ClusterUnavailable} when
        there is no connection, when it fails with a C{txredisapi} error,
        or when no answer came within the timeout.
        """
        if not self.connected:
            return fail(ClusterUnavailable("the cluster is unreachable now (no connection to Redis); try again later"))
        try:
            sent = request()
        except txredisapi.RedisError as e:
            return fail(ClusterUnavailable(f"the cluster is unreachable now ({e}); try again later"))
        result: Deferred[T] = Deferred()

        def settled(outcome: T | Failure) -> None:
            if timer.active():
                timer.cancel()
            if result.called:
                return
            if isinstance(outcome, Failure) and outcome.check(txredisapi.ConnectionError):
                result.errback(ClusterUnavailable(f"the cluster is unreachable now ({outcome.getErrorMessage()})"))
            elif isinstance(outcome, Failure):
                result.errback(outcome)
            else:
                result.callback(outcome)

        def late() -> None:
            if not result.called:
                result.errback(ClusterUnavailable(f"Redis did not answer within {self._timeout:g} s; try again later"))

        timer = self._reactor.callLater(self._timeout, late)
        sent.addBoth(settled)
        return result

    def claim(self, nick: str) -> Deferred[bool]:
        """
        Claim C{nick} (compared ignoring case) for this node, atomically
        across the cluster (C{SET NX PX}), and keep renewing it until
        L{release}.

        @param nick: a valid nick (PROTOCOL.md section 3.3), any case.
        @return: fires with C{True} when this node holds it now (it may have
            held it already), C{False} when another node holds it (the
            server answers C{nick-taken}).
        @raise ClusterUnavailable: (as the L{Deferred}'s failure) Redis is
            unreachable; the server answers C{busy}.
        """
        lower = nick.lower()
        claiming = self._call(
            lambda: self._redis.eval(
                _CLAIM, [self._nick_key(lower), self._nicks_key()], [self.node, self._lease_ms, lower, self._nicks_ms]
            )
        )

        def claimed(reply: object) -> bool:
            if reply == 1:
                self._held[lower] = nick
                return True
            return False

        return claiming.addCallback(claimed)

    def release(self, nick: str) -> Deferred[None]:
        """
        Give up C{nick} (ignoring case): stop renewing it, and delete its
        claim if, and only if, this node holds it (compare-and-delete in one
        script).

        @return: fires with C{None}; never fails: when Redis is unreachable
            the claim, no longer renewed, lapses within the lease.
        """
        lower = nick.lower()
        self._held.pop(lower, None)
        if not self.running:
            return succeed(None)  # stopped: every claim of this node was given up at once (or lapses)
        releasing = self._call(
            lambda: self._redis.eval(_RELEASE, [self._nick_key(lower), self._nicks_key()], [self.node, lower])
        )
        return releasing.addCallbacks(
            lambda _: None, lambda failure: self._log_failure(failure, "releasing a nick of node {node}")
        )

    def holder(self, nick: str) -> Deferred[str | None]:
        """
        The node holding C{nick} (ignoring case) now.

        @return: fires with the node's name, or C{None} when nobody holds it.
        @raise ClusterUnavailable: (as the failure) Redis is unreachable.
        """
        return self._call(lambda: self._redis.get(self._nick_key(nick.lower()))).addCallback(
            lambda reply: None if reply is None else str(reply)
        )

    def holds(self) -> frozenset[str]:
        """
        The lower-cased nicks this node claims and renews now.
        """
        return frozenset(self._held)

    def live_nodes(self) -> Deferred[set[str]]:
        """
        The names of the nodes whose heartbeat has not expired (this one
        included once it has beaten).

        @raise ClusterUnavailable: (as the failure) Redis is unreachable.
        """
        return self._nodes().addCallback(lambda nodes: set(nodes[0]))

    def _nodes(self) -> Deferred[tuple[list[str], list[str]]]:
        listing = self._call(lambda: self._redis.eval(_NODES, ["chat:nodes"], ["chat:node:", "chat:nicks:"]))
        return listing.addCallback(lambda reply: ([str(n) for n in reply[0]], [str(n) for n in reply[1]]))

    # Timers

    def renew(self) -> Deferred[None]:
        """
        Beat, and renew every claim of this node in one script (called every
        C{lease / 3} seconds and on each new connection): a claim that
        expired is set again when nobody took it; one another node holds
        now is forgotten and reported to C{on_lost}. Skipped while Redis is
        unreachable or while the previous renewal is still under way.

        @return: fires with C{None} when done; never fails.
        """
        if self._renewing is not None or not self.connected or self._abandoned:
            return succeed(None)
        held = sorted(self._held)
        keys = [self._beat_key(), "chat:nodes", self._nicks_key(), *(self._nick_key(lower) for lower in held)]
        args = [self.node, self._lease_ms, self._nicks_ms, *held]
        renewing = self._call(lambda: self._redis.eval(_RENEW, keys, args))

        def renewed(lost: Iterable[object]) -> None:
            self._beaten = True
            waiting, self._waiting = self._waiting, []
            for waiter in waiting:
                waiter.callback(None)
            for lower in map(str, lost):
                nick = self._held.pop(lower, None)
                if nick is not None:
                    self._log.info("node {node} lost the nick {nick} to another node", node=self.node, nick=nick)
                    self._notify(self._on_lost, nick)

        def done(_: object) -> None:
            self._renewing = None

        outcome = renewing.addCallbacks(
            renewed, lambda failure: self._log_failure(failure, "renewing the claims of node {node}")
        )
        self._renewing = outcome
        outcome.addBoth(done)
        return outcome

    def watch(self) -> Deferred[None]:
        """
        Look at the other nodes' heartbeats (called every
        C{watch_interval} seconds) and report each node seen without one
        to C{on_node_gone}, with the nicks it held, once (again only after
        it beat anew). Reports nothing within C{settle} seconds of this
        node's last (re)connection to Redis.

        @return: fires with C{None} when done; never fails.
        """
        looking = self._nodes()

        def seen(nodes: tuple[list[str], list[str]]) -> Deferred[None]:
            live, dead = set(nodes[0]), set(nodes[1])
            self._reported -= live
            self._known |= live | dead  # a dead one is dropped from chat:nodes: remember it
            if self._reactor.seconds() - self._since < self._settle:
                return succeed(None)  # the others may not have beaten since Redis came back
            gone = sorted(self._known - live - self._reported - {self.node})
            self._known &= live
            if not gone:
                return succeed(None)
            self._reported.update(gone)
            return self._report(gone)

        return looking.addCallback(seen).addErrback(self._log_failure, "watching the nodes from node {node}")

    def _report(self, gone: list[str]) -> Deferred[None]:
        def listed(members: object, node: str) -> None:
            nicks = frozenset(str(nick) for nick in members) if isinstance(members, list | set | tuple) else frozenset()
            self._log.info("node {gone} is gone with {count} nicks", gone=node, count=len(nicks))
            self._notify(self._on_node_gone, node, nicks)

        def one(_: object, node: str) -> Deferred[None]:
            key = self._nicks_key(node)
            listing = self._call(lambda: self._redis.eval("return redis.call('SMEMBERS', KEYS[1])", [key], []))
            return listing.addCallback(listed, node)

        reporting: Deferred[None] = succeed(None)
        for node in gone:
            reporting.addCallback(one, node)
        return reporting

    def _notify(self, callback: Callable[..., object], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            self._log.failure("a cluster callback of node {node} failed", node=self.node)


def from_url(node: str, url: str, reactor: Any = None, **options: Any) -> NickClaims:
    """
    A L{NickClaims} for the Redis at C{url} (C{redis://[:PASSWORD@]HOST[:PORT][/DB]},
    the form of C{--redis}).

    @param reactor: the reactor (TCP and time); C{None}: the global one.
    @param options: the keyword arguments of L{NickClaims}.
    @raise ValueError: C{url} is not a C{redis://} URL.
    """
    if reactor is None:
        from twisted.internet import reactor as default

        reactor = default
    host, port, dbid, password = parse_url(url)
    endpoint = HostnameEndpoint(reactor, host, port, timeout=options.get("timeout", TIMEOUT))
    return NickClaims(node, endpoint, reactor, dbid=dbid or 0, password=password, **options)

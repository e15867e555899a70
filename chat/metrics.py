# -*- test-case-name: tests.test_metrics -*-
"""
The daemon's Prometheus metrics (PROTOCOL.md section 12, C{--metrics}):
the counters the daemon's code bumps where things happen (L{COUNTS}), and
a L{ChatCollector} that turns them and the server's live state into
metric families when C{/metrics} is scraped, served by L{metrics_site}.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from twisted.internet.interfaces import IReactorTime
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from typing_extensions import override

if TYPE_CHECKING:
    from chat.server import ChatServer
    from chat.spool import Spool

COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds, in seconds, of the store commit latency histogram's buckets (C{+Inf} follows)."""

_Result = TypeVar("_Result")


class Counts:
    """
    The daemon's event counters, plain integers bumped by one short line
    where the event happens (the cheapest hook: no lock, no label lookup),
    read by L{ChatCollector} at scrape time. They count for the whole
    process since it started: one daemon per process, so per daemon.

    @ivar bytes_in: bytes received from clients (the line front end's
        bytes, uploads included; the web front end's text frames, UTF-8).
    @ivar bytes_out: bytes of events written to clients by the outboxes
        (file downloads not included).
    @ivar room_messages: room messages published.
    @ivar private_messages: private messages published (a stored one again
        when its recipient logs in).
    @ivar deliveries: events handed to participants, one per recipient.
    @ivar flood_delays: times a connection's input was delayed by the flood limit.
    @ivar slow_readers: connections cut for not reading their output.
    @ivar login_failures: logins refused for a wrong nick or password.
    @ivar commit_buckets: store commits per bucket of L{COMMIT_BUCKETS}
        (not cumulative; the last counts those over the last bound).
    @ivar commit_seconds: the total time of those commits, in seconds.
    """

    __slots__ = (
        "bytes_in", "bytes_out", "room_messages", "private_messages", "deliveries",
        "flood_delays", "slow_readers", "login_failures", "commit_buckets", "commit_seconds",
    )

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.room_messages = 0
        self.private_messages = 0
        self.deliveries = 0
        self.flood_delays = 0
        self.slow_readers = 0
        self.login_failures = 0
        self.commit_buckets = [0] * (len(COMMIT_BUCKETS) + 1)
        self.commit_seconds = 0.0

    def commit(self, seconds: float) -> None:
        """
        Count one store commit (a group of writes) that took C{seconds}.
        """
        self.commit_buckets[bisect_left(COMMIT_BUCKETS, seconds)] += 1
        self.commit_seconds += seconds

    def timed(self, result: _Result, clock: IReactorTime, started: float) -> _Result:
        """
        A callback counting a commit started at C{started} (C{clock}'s
        seconds) as done now, passing C{result} on: added with
        C{addBoth(COUNTS.timed, clock, clock.seconds())} in the store's
        commit path.
        """
        self.commit(max(0.0, clock.seconds() - started))
        return result


COUNTS = Counts()
"""The counters of this process."""


class ChatCollector(Collector):
    """
    The daemon's metrics, read when scraped: gauges from the live state of
    a L{ChatServer} (its sessions, the domain's users and rooms, the
    spool's bytes) and counters from L{Counts}.
    """

    def __init__(self, server: ChatServer, spool: Spool | None = None, counts: Counts = COUNTS) -> None:
        """
        @param spool: the file store, for C{chat_file_bytes}; none if C{None}.
        """
        self.server = server
        self.spool = spool
        self.counts = counts

    @override
    def collect(self) -> Iterator[Metric]:
        from chat.web.socket import WebParticipant

        server = self.server
        counts = self.counts
        connections = {(front, tls): 0 for front in ("line", "web") for tls in ("false", "true")}
        for participant in server.sessions:
            front = "web" if isinstance(participant, WebParticipant) else "line"
            connections[front, "true" if participant.secure else "false"] += 1
        family = GaugeMetricFamily(
            "chat_connections", "Open client connections, by front end and TLS.", labels=["front_end", "tls"]
        )
        for (front, tls), count in sorted(connections.items()):
            family.add_metric([front, tls], count)
        yield family
        domain = server.domain
        yield GaugeMetricFamily("chat_users", "Users connected with a nick.", value=len(domain.users))
        yield GaugeMetricFamily("chat_accounts", "Registered accounts.", value=len(domain.accounts))
        yield GaugeMetricFamily("chat_rooms", "Rooms with someone in them.", value=len(domain.rooms))
        if self.spool is not None:
            yield GaugeMetricFamily("chat_file_bytes", "Bytes of offered files stored.", value=self.spool.used)
            yield GaugeMetricFamily("chat_file_quota_bytes", "The file store's quota (--spool-quota).",
                                    value=self.spool.quota)
        messages = CounterMetricFamily("chat_messages", "Messages published, room or private.", labels=["kind"])
        messages.add_metric(["room"], counts.room_messages)
        messages.add_metric(["private"], counts.private_messages)
        yield messages
        yield CounterMetricFamily(
            "chat_deliveries", "Events handed to connections, one per recipient.", value=counts.deliveries
        )
        yield CounterMetricFamily("chat_received_bytes", "Bytes received from clients.", value=counts.bytes_in)
        yield CounterMetricFamily("chat_sent_bytes", "Bytes of events sent to clients.", value=counts.bytes_out)
        yield CounterMetricFamily(
            "chat_flood_delays", "Times a connection's input was delayed by the flood limit.",
            value=counts.flood_delays,
        )
        yield CounterMetricFamily(
            "chat_slow_readers", "Connections cut for not reading their output.", value=counts.slow_readers
        )
        yield CounterMetricFamily(
            "chat_login_failures", "Logins refused for a wrong nick or password.", value=counts.login_failures
        )
        cumulative, total = [], 0
        for bound, count in zip((*map(str, COMMIT_BUCKETS), "+Inf"), counts.commit_buckets, strict=True):
            total += count
            cumulative.append((bound, total))
        yield HistogramMetricFamily(
            "chat_store_commit_seconds", "Time a group commit of the SQLite store took, in seconds.",
            buckets=cumulative, sum_value=counts.commit_seconds,
        )


def registry(server: ChatServer, spool: Spool | None = None) -> CollectorRegistry:
    """
    A registry of its own for one daemon: its L{ChatCollector} and the
    process's (CPU, memory, open files; on Linux).
    """
    owned = CollectorRegistry()
    owned.register(ChatCollector(server, spool))
    ProcessCollector(registry=owned)
    return owned


class MetricsPage(Resource):
    """
    C{GET /metrics}: the Prometheus text exposition of a registry, made in
    the reactor's thread (the collector reads the server's state).
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - twisted.web's name
        """
        The metrics, in the text format (C{text/plain; version=...}).
        """
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self.registry)


class MetricsSite(Site):
    """
    The HTTP site of C{--metrics}: C{/metrics}, and 404 elsewhere. Scrapes
    are not logged (one every 15 s or so would drown the log).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        root = Resource()
        root.putChild(b"metrics", MetricsPage(registry))
        super().__init__(root, timeout=60)
        self.noisy = False
        self.displayTracebacks = False

    @override
    def log(self, request: http.Request) -> None:
        pass

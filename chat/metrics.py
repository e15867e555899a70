# -*- test-case-name: tests.test_metrics -*-
"""
The daemon's Prometheus metrics (PROTOCOL.md section 12, C{--metrics}):
the counters the daemon's code bumps where things happen
(L{chat.counts.COUNTS}), and a L{ChatCollector} that turns them and the server's live state into
metric families when C{/metrics} is scraped, served by L{metrics_site}.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from typing_extensions import override

from chat.counts import COMMIT_BUCKETS, COUNTS, Counts

FRONT_ENDS = ("line", "web", "irc")
"""The front ends reported even with no connection (C{IParticipant.front_end})."""

if TYPE_CHECKING:
    from chat.server import ChatServer
    from chat.spool import Spool



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
        server = self.server
        counts = self.counts
        connections = {(front, tls): 0 for front in FRONT_ENDS for tls in ("false", "true")}
        for participant in server.sessions:
            key = (participant.front_end, "true" if participant.secure else "false")
            connections[key] = connections.get(key, 0) + 1
        family = GaugeMetricFamily(
            "chat_connections", "Open client connections, by front end and TLS.", labels=["front_end", "tls"]
        )
        for (front, tls), count in sorted(connections.items()):
            family.add_metric([front, tls], count)
        yield family
        domain = server.domain
        yield GaugeMetricFamily(
            "chat_users", "Users connected with a nick to this daemon.", value=len(domain.users) - len(domain.remote)
        )
        if server.cluster:  # PROTOCOL.md section 13
            node = GaugeMetricFamily("chat_node_info", "This daemon's node name in its cluster (--node).",
                                     labels=["node"])
            node.add_metric([domain.node], 1)
            yield node
            yield GaugeMetricFamily(
                "chat_cluster_users", "Users connected with a nick to any daemon of the cluster, as this one knows.",
                value=len(domain.users),
            )
        yield GaugeMetricFamily("chat_accounts", "Registered accounts.", value=len(domain.accounts))
        yield GaugeMetricFamily("chat_rooms", "Rooms with someone in them.", value=len(domain.rooms))
        if self.spool is not None:
            yield GaugeMetricFamily("chat_file_bytes", "Bytes of offered files stored.", value=self.spool.used)
            yield GaugeMetricFamily("chat_file_quota_bytes", "The file store's quota (--spool-quota).",
                                    value=self.spool.quota)
        messages = CounterMetricFamily(
            "chat_messages", "Messages published by this daemon's users, room or private.", labels=["kind"]
        )
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

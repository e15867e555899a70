"""
The daemon's Prometheus metrics (L{chat.metrics}): the collector reads the
server's live state and the counters, and the C{--metrics} site serves
them at C{/metrics} only.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from chat import events, metrics
from chat.delivery import LocalBus
from chat.counts import COMMIT_BUCKETS, COUNTS, Counts
from chat.spool import Spool
from tests.support import at
from tests.test_web_socket import WebTestCase


def samples(registry: Any) -> dict[str, float]:
    """
    The registry's metrics as C{{"name{label=value,...}": value}}, parsed
    back from its text exposition.
    """
    from prometheus_client import generate_latest

    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode("utf-8")):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


class CollectorTests(WebTestCase):
    """
    L{metrics.ChatCollector} over a server with both front ends.
    """

    def test_live_state(self) -> None:
        """
        The gauges count the connections by front end and TLS, the users
        and the rooms as they are when scraped.
        """
        registry = metrics.registry(self.server)
        self.json_user("alice")
        self.text_user("bob")
        self.web_user("carol")
        found = samples(registry)
        self.assertEqual(found["chat_connections{front_end=line,tls=false}"], 2)
        self.assertEqual(found["chat_connections{front_end=web,tls=false}"], 1)
        self.assertEqual(found["chat_connections{front_end=line,tls=true}"], 0)
        self.assertEqual(found["chat_users"], 3)
        self.assertEqual(found["chat_rooms"], 1)
        self.assertNotIn("chat_file_bytes", found)

    def test_cluster(self) -> None:
        """
        In a cluster, chat_users counts this daemon's users, chat_cluster_users
        every daemon's, and chat_node_info names the node; a single daemon has neither.
        """
        registry = metrics.registry(self.server)
        self.json_user("alice")
        self.assertNotIn("chat_node_info{node=a}", samples(registry))
        self.server.cluster = True
        self.server.domain.node = "a"
        self.server.remote_event(events.StatusChanged("zed", ""), "b")
        found = samples(registry)
        self.assertEqual(found["chat_users"], 1)
        self.assertEqual(found["chat_cluster_users"], 2)
        self.assertEqual(found["chat_node_info{node=a}"], 1)

    def test_counters_move(self) -> None:
        """
        A room message to three counts one message and three deliveries, a
        private message one; the bytes read and written grow.
        """
        registry = metrics.registry(self.server)
        alice = self.json_user("alice")
        self.json_user("bob")
        self.web_user("carol")
        before = samples(registry)
        alice.line("hello")
        alice.line("/msg bob psst")
        after = samples(registry)
        self.assertEqual(after["chat_messages_total{kind=room}"] - before["chat_messages_total{kind=room}"], 1)
        self.assertEqual(after["chat_messages_total{kind=private}"] - before["chat_messages_total{kind=private}"], 1)
        self.assertEqual(after["chat_deliveries_total"] - before["chat_deliveries_total"], 3 + 2)
        self.assertEqual(after["chat_received_bytes_total"] - before["chat_received_bytes_total"],
                         len(b"hello\n/msg bob psst\n"))
        self.assertGreater(after["chat_sent_bytes_total"], before["chat_sent_bytes_total"])

    def test_spool(self) -> None:
        """
        With a spool, the bytes stored and the quota are gauges.
        """
        spool = Spool.in_temporary_directory(12345)
        self.addCleanup(spool.close)
        found = samples(metrics.registry(self.server, spool))
        self.assertEqual(found["chat_file_bytes"], 0)
        self.assertEqual(found["chat_file_quota_bytes"], 12345)

    def test_several_registries(self) -> None:
        """
        Each daemon has its own registry: two servers in one process can
        each be scraped.
        """
        other = self.make_factory(self.settings)[1].server
        self.json_user("alice")
        self.assertEqual(samples(metrics.registry(self.server))["chat_users"], 1)
        self.assertEqual(samples(metrics.registry(other))["chat_users"], 0)


class CountsTests(SynchronousTestCase):
    """
    L{Counts}: the counters and the commit latency histogram.
    """

    def test_histogram(self) -> None:
        """
        Commits fall in the bucket of the first bound at or above their
        time, cumulated in the exposition, with their sum and count.
        """
        counts = Counts()
        counts.commit(0.001)
        counts.commit(0.003)
        counts.commit(60.0)
        self.assertEqual(counts.commit_buckets[0], 1)
        self.assertEqual(counts.commit_buckets[COMMIT_BUCKETS.index(0.005)], 1)
        self.assertEqual(counts.commit_buckets[-1], 1)
        collector = metrics.ChatCollector(WebTestCase.make_factory(WebTestCase.settings)[1].server, counts=counts)
        found = {}
        for family in collector.collect():
            for sample in family.samples:
                found[(sample.name, sample.labels.get("le"))] = sample.value
        self.assertEqual(found[("chat_store_commit_seconds_bucket", "0.001")], 1)
        self.assertEqual(found[("chat_store_commit_seconds_bucket", "0.005")], 2)
        self.assertEqual(found[("chat_store_commit_seconds_bucket", "10.0")], 2)
        self.assertEqual(found[("chat_store_commit_seconds_bucket", "+Inf")], 3)
        self.assertEqual(found[("chat_store_commit_seconds_count", None)], 3)
        self.assertAlmostEqual(found[("chat_store_commit_seconds_sum", None)], 60.004)

    def test_timed(self) -> None:
        """
        L{Counts.timed} counts the time since its start on the clock and
        passes the result on.
        """
        counts = Counts()
        clock = Clock()
        clock.advance(100)
        started = clock.seconds()
        clock.advance(0.02)
        result = object()
        self.assertIs(counts.timed(result, clock, started), result)
        self.assertEqual(counts.commit_buckets[COMMIT_BUCKETS.index(0.025)], 1)

    def test_bus_counts_once_per_event(self) -> None:
        """
        The bus counts a room message once and its deliveries per recipient
        (here none: an empty room).
        """
        from chat import events
        from chat.interfaces import ToRoom

        before = (COUNTS.room_messages, COUNTS.deliveries)
        LocalBus().publish(events.Message(1, at(), "#r", "a", "hi"), ToRoom("#r"))
        self.assertEqual((COUNTS.room_messages, COUNTS.deliveries), (before[0] + 1, before[1]))


class SiteTests(SynchronousTestCase):
    """
    L{metrics.MetricsSite}: C{/metrics} serves the exposition.
    """

    def test_metrics_page(self) -> None:
        """
        C{GET /metrics} answers the registry's text with its content type.
        """
        registry = metrics.CollectorRegistry()
        site = metrics.MetricsSite(registry)
        request = DummyRequest([b"metrics"])
        resource = site.getResourceFor(request)
        body = resource.render(request)
        self.assertIsInstance(resource, metrics.MetricsPage)
        self.assertEqual(body, metrics.generate_latest(registry))
        self.assertTrue(request.responseHeaders.getRawHeaders(b"content-type")[0].startswith(b"text/plain"))

    def test_elsewhere_not_found(self) -> None:
        """
        Any other path is not found.
        """
        site = metrics.MetricsSite(metrics.CollectorRegistry())
        request = DummyRequest([b"other"])
        resource = site.getResourceFor(request)
        self.assertNotIsInstance(resource, metrics.MetricsPage)


class DashboardTests(WebTestCase):
    """
    docs/grafana-dashboard.json, the dashboard of the operator's guide.
    """

    def test_queries_name_served_metrics(self) -> None:
        """
        Every metric the dashboard queries is one the daemon serves.
        """
        import json
        import os
        import re

        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                            "grafana-dashboard.json")
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
        queried = {
            name
            for panel in dashboard["panels"]
            for target in panel["targets"]
            for name in re.findall(r"\b(?:chat|process)_[a-z_]+", target["expr"])
        }
        spool = Spool.in_temporary_directory(1000)
        self.addCleanup(spool.close)
        served = {name.split("{")[0] for name in samples(metrics.registry(self.server, spool))}
        self.assertTrue(queried)
        self.assertEqual(queried - served, set())

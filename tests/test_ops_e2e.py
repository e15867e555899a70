"""
Operations end to end (PROTOCOL.md section 12): a real C{twistd chat}
daemon with C{--config FILE} and C{--metrics}: C{/metrics} parsed with the
Prometheus client library moves when messages flow, and SIGHUP puts a
changed file in force for a connection kept open, or refuses a bad one.
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
import urllib.request
from typing import ClassVar

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import TestCase

from tests.e2e import Client, Daemon, eventually

METRICS_LISTENING = re.compile(r"chat metrics listening on 127\.0\.0\.1:(\d+)")

RELOADED = "SIGHUP: reloaded the configuration file"
KEPT = "SIGHUP: kept the settings in force"

FIRST = 'motd = "first"\nmax-line = 4096\n'


class OperationsTests(TestCase):
    """
    One daemon started with a configuration file (C{motd}, C{max-line})
    and a metrics listener, shared by the tests, each of which writes the
    file it needs before signalling.
    """

    daemon: ClassVar[Daemon]
    directory: ClassVar[tempfile.TemporaryDirectory[str]]
    config: ClassVar[str]
    metrics_port: ClassVar[int]

    @classmethod
    def setUpClass(cls) -> None:
        cls.directory = tempfile.TemporaryDirectory(prefix="chat-ops-")
        cls.config = os.path.join(cls.directory.name, "chat.toml")
        cls.write(FIRST)
        cls.daemon = Daemon("--metrics", "tcp:0:interface=127.0.0.1", "--config", cls.config).start()
        line = cls.daemon.wait_for_line(lambda text: METRICS_LISTENING.search(text) is not None)
        match = METRICS_LISTENING.search(line)
        assert match is not None
        cls.metrics_port = int(match.group(1))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.stop()
        cls.directory.cleanup()

    def tearDown(self) -> None:
        self.daemon.assert_clean()

    @classmethod
    def write(cls, text: str) -> None:
        with open(cls.config, "w", encoding="utf-8") as f:
            f.write(text)

    def scrape(self) -> dict[str, float]:
        """
        The metrics as C{{"name{label=value,...}": value}}.
        """
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as response:
            self.assertTrue(response.headers["Content-Type"].startswith("text/plain; version="))
            text = response.read().decode("utf-8")
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def reload(self, needle: str) -> None:
        """
        Send SIGHUP, and wait for one more log line holding C{needle}.
        """
        before = self.daemon.log().count(needle)
        assert self.daemon.process is not None
        self.daemon.process.send_signal(signal.SIGHUP)
        eventually(lambda: self.daemon.log().count(needle) > before, f"a new {needle!r} line")

    def test_metrics_move_with_messages(self) -> None:
        """
        /metrics counts the connections and users there are, and its
        message, delivery and byte counters grow when a room message reaches
        two connections.
        """
        alice = Client.json(self.daemon.port, "metalice")
        self.addCleanup(alice.close)
        bob = Client.json(self.daemon.port, "metbob")
        self.addCleanup(bob.close)
        alice.join("#metrics")
        bob.join("#metrics")
        before = self.scrape()
        self.assertGreaterEqual(before['chat_connections{front_end=line,tls=false}'], 2)
        self.assertGreaterEqual(before["chat_users"], 2)
        self.assertGreaterEqual(before["chat_rooms"], 1)
        alice.send_line("counted")
        bob.expect_event("message", text="counted")
        alice.expect_event("message", text="counted")
        after = self.scrape()
        self.assertEqual(after["chat_messages_total{kind=room}"], before["chat_messages_total{kind=room}"] + 1)
        self.assertGreaterEqual(after["chat_deliveries_total"], before["chat_deliveries_total"] + 2)
        self.assertGreater(after["chat_received_bytes_total"], before["chat_received_bytes_total"])
        self.assertGreater(after["chat_sent_bytes_total"], before["chat_sent_bytes_total"])
        self.assertGreater(after["chat_store_commit_seconds_count"], before["chat_store_commit_seconds_count"])
        self.assertIn("process_resident_memory_bytes", after)

    def test_sighup_changes_limits_for_a_kept_connection(self) -> None:
        """
        After the file changes and SIGHUP, a connection made before stays
        connected and is held to the new longest line, and a new
        connection is welcomed with the new message of the day and limits.
        """
        kept = Client.json(self.daemon.port, "keeper")
        self.addCleanup(kept.close)
        self.write('motd = "second"\nmax-line = 64\n')
        self.addCleanup(self.reload, RELOADED)
        self.addCleanup(self.write, FIRST)
        self.reload(RELOADED)
        self.assertIn("motd, max-line changed", self.daemon.log().split(RELOADED)[-1].splitlines()[0])
        kept.send_line("/ping " + "x" * 100)
        self.assertEqual(kept.errors_before_pong("still-here"), ["line-too-long"])
        fresh = Client.json_connect(self.daemon.port)
        self.addCleanup(fresh.close)
        welcome = fresh.registration[-1]
        self.assertEqual(welcome["motd"], "second")
        self.assertEqual(welcome["limits"]["line"], 64)

    def test_sighup_refuses_a_bad_file(self) -> None:
        """
        A file that does not parse is refused on SIGHUP with one line naming
        it and the line at fault, and the settings in force stay.
        """
        self.write(FIRST)
        self.reload(RELOADED)
        kept = Client.json(self.daemon.port, "steady")
        self.addCleanup(kept.close)
        self.write('motd = "third"\nmax-line = \n')
        self.addCleanup(self.write, FIRST)
        self.reload(KEPT)
        line = [text for text in self.daemon.log().splitlines() if KEPT in text][-1]
        self.assertIn(f"{self.config}: ", line)
        self.assertIn("line 2", line)
        kept.send_line("/ping " + "y" * 100)
        self.assertEqual(kept.errors_before_pong("fine"), [])
        fresh = Client.json_connect(self.daemon.port)
        self.addCleanup(fresh.close)
        self.assertEqual(fresh.registration[-1]["motd"], "first")

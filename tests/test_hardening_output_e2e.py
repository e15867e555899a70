"""
End-to-end tests of the bounds on queued output (issue 16, findings 9 and
10; PROTOCOL.md section 8) against a real C{twistd -n chat}: a room-wide
burst cuts no client that reads, and the daemon's memory stays within
C{--max-output-total} plus a fixed overhead while many clients never read.
"""

from __future__ import annotations

import selectors
import threading
import time
from pathlib import Path

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests.e2e import Client, Daemon

MiB = 1 << 20


def rss(pid: int) -> int:
    """
    The resident memory of process C{pid} in bytes (C{VmRSS} of C{/proc/PID/status}).
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


class Readers:
    """
    Reads every given client in a loop, in a thread, as fast as the data
    comes: counts the complete lines containing C{marker} each received,
    and notes which were closed and whether they got a C{Bye}.
    """

    def __init__(self, clients: list[Client], marker: bytes) -> None:
        self.counts = [0] * len(clients)
        self.closed = [False] * len(clients)
        self.bye = [False] * len(clients)
        self._marker = marker
        self._tails = [b""] * len(clients)
        self._selector = selectors.DefaultSelector()
        for i, client in enumerate(clients):
            client.sock.setblocking(False)
            self._selector.register(client.sock, selectors.EVENT_READ, i)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.1):
                i = key.data
                try:
                    chunk = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    self.closed[i] = True
                    self._selector.unregister(key.fileobj)
                    continue
                *complete, self._tails[i] = (self._tails[i] + chunk).split(b"\n")
                for line in complete:
                    if self._marker in line:
                        self.counts[i] += 1
                    elif line.startswith(b"*** Bye"):
                        self.bye[i] = True

    def stop(self) -> None:
        """
        Stop reading.
        """
        self._stop.set()
        self._thread.join(5)
        self._selector.close()


class RoomBurstTests(SynchronousTestCase):
    """
    Finding 9 scaled down: the 150-client burst with 40 clients, each
    member getting 3.2 MB at once against a 1 MiB C{--max-output}.
    """

    CLIENTS = 40
    LINES = 20

    def test_burst_cuts_no_reader(self) -> None:
        """
        40 clients in one room each send 20 lines of 4000 bytes in one
        write, all at once, and read in a loop: none is cut, and each
        receives all 800 lines.
        """
        daemon = Daemon(
            "--flood-burst", "100000", "--flood-rate", "100000", "--max-connections-per-ip", "100",
            "--max-output", str(MiB),
        ).start()
        self.addCleanup(daemon.stop)
        clients = [Client.text(daemon.port, f"burst{i}") for i in range(self.CLIENTS)]
        for client in clients:
            self.addCleanup(client.close)
        payloads = [
            b"".join(b"B%02d-%02d " % (i, k) + b"x" * 3990 + b"\n" for k in range(self.LINES))
            for i in range(self.CLIENTS)
        ]
        readers = Readers(clients, b"> B")
        self.addCleanup(readers.stop)
        for client, payload in zip(clients, payloads, strict=True):
            client.sock.sendall(payload)
        want = self.CLIENTS * self.LINES
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            count == want or closed for count, closed in zip(readers.counts, readers.closed, strict=True)
        ):
            time.sleep(0.05)
        self.assertEqual([i for i, closed in enumerate(readers.closed) if closed], [])
        self.assertEqual(readers.counts, [want] * self.CLIENTS)
        self.assertNotIn("does not read its output", daemon.log())


@pytest.mark.slow
class MemoryStormTests(SynchronousTestCase):
    """
    Finding 10: 150 clients in one room never read while 20 others send
    4000-byte lines at 20 a second each, on a daemon with
    C{--max-output-total 32M}.
    """

    IDLE = 150
    SENDERS = 20
    RATE = 20.0
    """Lines a second per sender, within C{--flood-rate}."""
    BUDGET = 32 * MiB
    OVERHEAD = 16 * MiB + 128 * 1024 * (IDLE + SENDERS)
    """
    Memory allowed beyond the budget: the transport's own buffer of each
    connection (64 KiB and one write) and the interpreter's slack.
    """

    def test_memory_within_budget(self) -> None:
        """
        The daemon's resident memory grows by less than the budget plus a
        fixed overhead; every client that never reads is cut as a slow
        reader, and no sender (they read) is.
        """
        daemon = Daemon(
            "--flood-burst", "20", "--flood-rate", "100", "--max-connections-per-ip", "1000",
            "--max-output-total", "32M",
        ).start()
        self.addCleanup(daemon.stop)
        assert daemon.process is not None
        pid = daemon.process.pid
        idle = []
        for i in range(self.IDLE):
            client = Client(daemon.port, rcvbuf=4096)
            self.addCleanup(client.close)
            client.read_lines_until(lambda line: "Choose a nickname" in line)
            client.send_line(f"idle{i}")
            client.read_lines_until(lambda line: line.startswith("*** You are"))
            idle.append(client)
        senders = [Client.text(daemon.port, f"sender{i}") for i in range(self.SENDERS)]
        for client in senders:
            self.addCleanup(client.close)
        readers = Readers(senders, b"> M")
        self.addCleanup(readers.stop)
        baseline = peak = rss(pid)
        line = b"M " + b"m" * 3997 + b"\n"
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < 60 and daemon.log().count("does not read its output") < self.IDLE:
            for client in senders:
                client.sock.sendall(line)
            tick += 1
            time.sleep(max(0.0, start + tick / self.RATE - time.monotonic()))
            peak = max(peak, rss(pid))
        self.assertLess(peak - baseline, self.BUDGET + self.OVERHEAD, f"RSS {baseline} -> {peak}")
        self.assertEqual(daemon.log().count("does not read its output"), self.IDLE)
        self.assertFalse(any(readers.closed) or any(readers.bye))

"""
End-to-end test of the failed-login limit (PROTOCOL.md section 8) against a
real C{twistd -n chat}: a burst of password guesses sent at once on many
connections from two loopback addresses, as an attacker would (issue 16,
finding 3), with the real argon2id hasher on its threads.
"""

from __future__ import annotations

import json
import re
import socket
import time
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.e2e import TIMEOUT, Client, Daemon

WAIT = re.compile(r"too many failed logins for alice: try again in (\d+) s")
"""The refusal of an attempt over the limit, with the seconds to wait."""


def attempt(port: int, source: str, password: str) -> socket.socket:
    """
    Connect from the loopback address C{source} and send, in one write,
    C{/format json} and C{/login alice PASSWORD}, without waiting for the
    welcome.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT, source_address=(source, 0))
    sock.sendall(f"/format json\r\n/login alice {password}\r\n".encode())
    return sock


def answer(sock: socket.socket) -> dict[str, Any]:
    """
    The first C{error} or C{registered} event the daemon sends on C{sock}
    (the text welcome before C{/format json} is skipped); the socket is
    closed.

    @raise AssertionError: none within L{TIMEOUT} seconds or before the
        daemon closed the connection.
    """
    buffer = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.startswith(b"{"):
                    event: dict[str, Any] = json.loads(line)
                    if event["type"] in ("error", "registered"):
                        return event
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"no answer to /login within {TIMEOUT}s; got {buffer!r}") from None
            if not chunk:
                raise AssertionError(f"closed before answering /login; got {buffer!r}")
            buffer += chunk
    finally:
        sock.close()


class ParallelGuessesTests(SynchronousTestCase):
    """
    A daemon with the account C{alice} (password C{password1}) and a
    bystander C{bob} in C{#lobby}.
    """

    def setUp(self) -> None:
        self.daemon = Daemon().start()
        self.addCleanup(self.daemon.stop)
        self.addCleanup(self.daemon.assert_clean)
        owner = Client.text(self.daemon.port, "alice")
        owner.send_line("/register password1")
        owner.read_lines_until(lambda line: "Account alice created" in line)
        owner.close()
        self.bob = Client.json(self.daemon.port, "bob")
        self.addCleanup(self.bob.close)

    def test_burst_of_guesses(self) -> None:
        """
        60 guesses sent at once from two addresses: 5 are checked and answered C{wrong nick or password}, 55 are
        refused at once saying to wait at most 61 s, the chat answers meanwhile, and the owner from a third address
        is told to wait at most 61 s.
        """
        port = self.daemon.port
        sockets = [attempt(port, f"127.0.0.{2 + index % 2}", f"guess-{index:04d}") for index in range(60)]
        started = time.monotonic()
        self.bob.ping("during the burst")
        self.assertLess(time.monotonic() - started, 2.0)
        messages = [answer(sock) for sock in sockets]
        self.assertEqual({event["code"] for event in messages}, {"auth-failed"})
        texts = [event["message"] for event in messages]
        self.assertEqual(texts.count("wrong nick or password"), 5, texts)
        waits = [int(match.group(1)) for match in map(WAIT.fullmatch, texts) if match is not None]
        self.assertEqual(len(waits), 55, texts)
        self.assertLessEqual(max(waits), 61)
        owner = answer(attempt(port, "127.0.0.4", "password1"))
        self.assertEqual(owner["code"], "auth-failed")
        wait = WAIT.fullmatch(owner["message"])
        assert wait is not None, owner
        self.assertLessEqual(int(wait.group(1)), 61)

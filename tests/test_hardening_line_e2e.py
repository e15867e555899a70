"""
End-to-end tests of the line front end's hardening (issue 16, PROTOCOL.md
section 8) against a real C{twistd -n chat} with short timeouts: the
registration timeout, the TLS handshake timeout (an C{ssl:} listener and
C{/starttls}) with the daemon's file descriptors returned, the upload idle
timeout releasing the quota, an IAC flood slowing its sender only, and
refused connections summarised in the log.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import time
from typing import ClassVar

from twisted.trial.unittest import TestCase

from chat.tls import self_signed
from tests.e2e import IAC, Client, Daemon, eventually
from tests.test_tls_e2e import TLS_LISTENING

NOP = b"\xf1"


LISTEN = "0A"
"""The state of a listening socket in C{/proc/net/tcp}."""


def connections_on(daemon: Daemon, port: int) -> int:
    """
    How many file descriptors the daemon holds for TCP connections
    accepted on its local C{port} (its listening socket not counted),
    from C{/proc/PID/fd} and C{/proc/PID/net/tcp}.
    """
    assert daemon.process is not None
    pid = daemon.process.pid
    inodes = set()
    with open(f"/proc/{pid}/net/tcp") as table:
        for row in list(table)[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == port and state != LISTEN:
                inodes.add(f"socket:[{inode}]")
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            held += os.readlink(f"/proc/{pid}/fd/{fd}") in inodes
        except FileNotFoundError:
            pass  # closed meanwhile
    return held


class TimeoutTests(TestCase):
    """
    A daemon with a plain listener (C{/starttls} available) and an C{ssl:}
    listener, each timeout 1 s.
    """

    daemon: ClassVar[Daemon]
    tls_port: ClassVar[int]
    directory: ClassVar[tempfile.TemporaryDirectory[str]]

    @classmethod
    def setUpClass(cls) -> None:
        cls.directory = tempfile.TemporaryDirectory(prefix="chat-hardening-e2e-")
        certificate, key = self_signed("localhost", 2)
        cert_path = os.path.join(cls.directory.name, "localhost.pem")
        key_path = os.path.join(cls.directory.name, "localhost.key")
        with open(cert_path, "wb") as f:
            f.write(certificate)
        with open(key_path, "wb") as f:
            f.write(key)
        cls.daemon = Daemon(
            "--in-memory",
            "--registration-timeout", "1",
            "--tls-handshake-timeout", "1",
            "--upload-idle-timeout", "1",
            "--spool-quota", "1500",
            "--max-file-size", "1000",
            "--tls-cert", cert_path, "--tls-key", key_path,
            "--listen", f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}",
        ).start()
        line = cls.daemon.wait_for_line(lambda text: TLS_LISTENING.search(text) is not None)
        match = TLS_LISTENING.search(line)
        assert match is not None
        cls.tls_port = int(match.group(1))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.stop()
        cls.directory.cleanup()

    def client(self, port: int | None = None) -> Client:
        client = Client(port or self.daemon.port)
        self.addCleanup(client.close)
        return client

    def test_trickling_connection_closed(self) -> None:
        """
        A connection that sends a byte every 0.3 s and never a line end gets
        C{bye} after the 1 s without a nick and is closed; a registered user
        idle meanwhile stays.
        """
        idle = Client.text(self.daemon.port, "idler")
        self.addCleanup(idle.close)
        client = self.client()
        client.read_lines_until(lambda line: "Choose a nickname" in line)
        started = time.monotonic()
        received = b""
        for _ in range(10):
            client.send(b"a")
            time.sleep(0.3)
            received += client.drain()
            if client.eof:
                break
        self.assertTrue(client.eof, "still open after 3 s")
        self.assertEqual(received, b"*** Bye: no nick chosen within 1 s\r\n")
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        time.sleep(0.5)
        idle.ping("still-here", json_mode=False)

    def test_silent_tls_connections_closed_and_fds_returned(self) -> None:
        """
        20 TCP connections to the TLS port that never start a handshake are
        all closed after the 1 s, and the daemon's descriptors for them are
        closed.
        """
        sockets = []
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
            self.addCleanup(sock.close)
            sockets.append(sock)
        eventually(lambda: connections_on(self.daemon, self.tls_port) == 20, "the daemon accepted the 20 connections")
        started = time.monotonic()
        for index, sock in enumerate(sockets):
            try:
                self.assertEqual(sock.recv(100), b"")
            except ConnectionResetError:
                pass  # aborted: a reset is a close too
            except TimeoutError:
                self.fail(f"connection {index} still open after {time.monotonic() - started:.1f} s")
        self.assertLess(time.monotonic() - started, 4)
        eventually(lambda: connections_on(self.daemon, self.tls_port) == 0, "the daemon closed their descriptors")

    def test_starttls_without_handshake_closed(self) -> None:
        """
        A client that asks for C{/starttls} and then never shakes hands is closed after the 1 s.
        """
        client = self.client()
        client.read_lines_until(lambda line: "Choose a nickname" in line)
        client.send_line("/starttls")
        client.read_lines_until(lambda line: line == "*** Starting TLS: begin the handshake")
        started = time.monotonic()
        client.read_until_closed(timeout=4)
        self.assertGreaterEqual(time.monotonic() - started, 0.9)

    def test_idle_upload_cancelled_and_quota_released(self) -> None:
        """
        An upload that stops sending is cancelled after 1 s with C{bye};
        its reservation is released, so another upload that needs the
        quota is accepted and completes.
        """
        data = b"z" * 1000
        digest = hashlib.sha256(data).hexdigest()
        stalled = Client.json(self.daemon.port, "stalled")
        self.addCleanup(stalled.close)
        stalled.send_line(f"/upload #lobby a.bin {len(data)} {digest}")
        ready = stalled.expect_event("upload-ready")
        stalled.send(data[:10])
        bye = stalled.expect_event("bye", timeout=4)
        self.assertEqual(bye["reason"], f"upload {ready['id']} cancelled: no data for 1 s")
        stalled.read_until_closed()
        other = Client.json(self.daemon.port, "other")
        self.addCleanup(other.close)
        other.send_line(f"/upload #lobby b.bin {len(data)} {digest}")
        other.expect_event("upload-ready")
        other.send(data)
        self.assertEqual(other.expect_event("upload-done")["sha256"], digest)

    def test_iac_flood_slows_its_sender_only(self) -> None:
        """
        After 64 KiB of IAC NOP (128 flood tokens) the sender's next command
        waits (about 20 s at 5 a second), while another user's is answered at once.
        """
        bystander = Client.json(self.daemon.port, "bystander")
        self.addCleanup(bystander.close)
        flooder = Client.text(self.daemon.port, "flooder")
        self.addCleanup(flooder.close)
        flooder.send((IAC + NOP) * 32768 + b"/ping after-flood\r\n")
        started = time.monotonic()
        bystander.ping("unaffected")
        self.assertLess(time.monotonic() - started, 1)
        time.sleep(2)
        self.assertEqual(
            flooder.drain(), b"*** Error: you are sending too fast: your lines are being delayed (flood)\r\n"
        )


class RefusalLogTests(TestCase):
    """
    A daemon allowing 2 connections per address, logging at info.
    """

    def test_refusals_summarised(self) -> None:
        """
        30 connections refused from one address write one line at info
        (not one per connection), naming the address and the limit.
        """
        daemon = Daemon("--in-memory", "--max-connections-per-ip", "2").start()
        self.addCleanup(daemon.stop)
        kept = [Client.text(daemon.port, nick) for nick in ("one", "two")]
        for client in kept:
            self.addCleanup(client.close)
        for _ in range(30):
            refused = Client(daemon.port)
            self.assertIn(b"too many connections from your address", refused.read_until_closed())
            refused.close()
        kept[0].ping("after", json_mode=False)
        refusals = [line for line in daemon.log().splitlines() if re.search(r"refused", line)]
        self.assertEqual(len(refusals), 1, daemon.log())
        self.assertIn("refused a connection from 127.0.0.1: 2 connections from there already", refusals[0])

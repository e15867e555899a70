"""
End-to-end tests of C{/starttls} (PROTOCOL.md section 7) against a real
C{twistd -n chat} started with C{--tls-cert} and C{--tls-key}, using Python's
C{ssl} module as a verifying client.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import tempfile
import time
from typing import Any, ClassVar

from twisted.trial.unittest import TestCase

from chat.tls import self_signed
from tests.e2e import Client, Daemon


class TLSClient:
    """
    A JSON-lines client on a socket that may be upgraded to TLS.
    """

    def __init__(self, port: int, nick: str | None = None) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""
        self.send(b"/format json\n")
        self.until("welcome")
        if nick is not None:
            self.send(f"/nick {nick}\n".encode())
            self.until("history")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def until(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if line.startswith(b"{"):
                    event: dict[str, Any] = json.loads(line)
                    if event["type"] == kind:
                        return event
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} within {timeout} s")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed before {kind}")
            self.buffer += chunk

    def starttls(self, context: ssl.SSLContext, host: str = "localhost") -> None:
        """
        Ask for TLS, wait for the daemon's go-ahead, then shake hands.
        """
        self.send(b"/starttls\n")
        info = self.until("info")
        assert info["text"] == "Starting TLS: begin the handshake", info
        assert self.buffer == b"", self.buffer
        self.sock = context.wrap_socket(self.sock, server_hostname=host)

    def close(self) -> None:
        self.sock.close()


class StartTLSTests(TestCase):
    daemon: ClassVar[Daemon]
    cafile: ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls.directory = tempfile.TemporaryDirectory(prefix="chat-tls-e2e-")
        certificate, key = self_signed("localhost", 2)
        cls.cafile = os.path.join(cls.directory.name, "localhost.pem")
        key_path = os.path.join(cls.directory.name, "localhost.key")
        with open(cls.cafile, "wb") as f:
            f.write(certificate)
        with open(key_path, "wb") as f:
            f.write(key)
        cls.daemon = Daemon("--in-memory", "--tls-cert", cls.cafile, "--tls-key", key_path).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.stop()
        cls.directory.cleanup()

    def client(self, nick: str | None = None) -> TLSClient:
        client = TLSClient(self.daemon.port, nick)
        self.addCleanup(client.close)
        return client

    def verifying(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def test_starttls_then_chat_with_plain_user(self) -> None:
        """
        After /starttls a verifying client chats with a plain-TCP user in
        the same room, and /whois shows it on TLS.
        """
        plain = Client.json(self.daemon.port, "plain")
        self.addCleanup(plain.close)
        secure = self.client("secure")
        secure.starttls(self.verifying())
        self.assertEqual(secure.sock.version(), "TLSv1.3")
        secure.send(b"hello over TLS\n")
        self.assertEqual(plain.expect_event("message", text="hello over TLS")["from"], "secure")
        plain.send_line("hi back in clear text")
        self.assertEqual(secure.until("message")["text"], "hello over TLS")  # its own echo first
        self.assertEqual(secure.until("message")["text"], "hi back in clear text")
        plain.send_line("/whois secure")
        self.assertTrue(plain.expect_event("whois")["secure"])
        secure.send(b"/starttls\n")
        self.assertEqual(secure.until("error")["code"], "bad-arguments")

    def test_injected_command_not_run(self) -> None:
        """
        A command sent in clear text right after /starttls, in the same packet, is never run.
        """
        watcher = Client.json(self.daemon.port, "watcher")
        self.addCleanup(watcher.close)
        victim = self.client()
        victim.send(b"/starttls\r\n/nick mallory\r\n")
        victim.until("info")
        victim.sock = self.verifying().wrap_socket(victim.sock, server_hostname="localhost")
        victim.send(b"/ping after\n")
        victim.until("pong")
        watcher.send_line("/whois mallory")
        self.assertEqual(watcher.expect_event("error")["code"], "no-such-nick")

    def test_wrong_host_and_untrusted_ca_rejected(self) -> None:
        """
        A verifying client refuses the certificate for another host name, or without the CA file.
        """
        for context, host in [(self.verifying(), "chat.example"), (ssl.create_default_context(), "localhost")]:
            client = self.client()
            with self.assertRaises(ssl.SSLCertVerificationError):
                client.starttls(context, host)

    def test_tls_1_1_refused(self) -> None:
        """
        A client that offers at most TLS 1.1 cannot shake hands.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(self.cafile)
        try:
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
            context.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as e:  # a client library without TLS 1.1 at all
            self.skipTest(f"this OpenSSL cannot even offer TLS 1.1: {e}")
        client = self.client()
        with self.assertRaises(ssl.SSLError):
            client.starttls(context)

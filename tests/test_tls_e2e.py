"""
End-to-end tests of TLS (PROTOCOL.md section 7) against a real
C{twistd -n chat}: C{/starttls} with C{--tls-cert} and C{--tls-key}, and an
implicit-TLS C{ssl:} listener with a certificate from a test CA, reloaded
on SIGHUP; Python's C{ssl} module and C{openssl s_client} as verifying clients.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from twisted.trial.unittest import TestCase
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

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


TLS_LISTENING = re.compile(r"chat listening on 127\.0\.0\.1:(\d+) \(TLS\)")


def make_test_ca(directory: str) -> tuple[str, Callable[[str, str], None]]:
    """
    A test CA in C{directory}, and a function writing a server certificate
    for C{localhost} signed by it (RSA, so that a suite without forward
    secrecy could be negotiated if the daemon allowed one) with its key.

    @return: the CA file's path, and C{issue(cert_path, key_path)}.
    """
    now = datetime.now(timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chat test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = os.path.join(directory, "ca.pem")
    with open(ca_path, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))

    def issue(cert_path: str, key_path: str) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        with open(cert_path + ".new", "wb") as f:
            f.write(leaf.public_bytes(serialization.Encoding.PEM))
        with open(key_path + ".new", "wb") as f:
            f.write(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ))
        os.replace(key_path + ".new", key_path)
        os.replace(cert_path + ".new", cert_path)

    return ca_path, issue


class ImplicitTLSTests(TestCase):
    """
    A daemon with a plain listener and an C{ssl:} listener in Twisted's
    syntax, its server certificate signed by a test CA.
    """

    daemon: ClassVar[Daemon]
    tls_port: ClassVar[int]

    @classmethod
    def setUpClass(cls) -> None:
        cls.directory = tempfile.TemporaryDirectory(prefix="chat-tls-e2e-")
        cls.cafile, issue = make_test_ca(cls.directory.name)
        cls.issue = staticmethod(issue)
        cls.cert_path = os.path.join(cls.directory.name, "server.pem")
        cls.key_path = os.path.join(cls.directory.name, "server.key")
        cls.issue(cls.cert_path, cls.key_path)
        description = f"ssl:0:interface=127.0.0.1:privateKey={cls.key_path}:certKey={cls.cert_path}"
        cls.daemon = Daemon("--in-memory", "--listen", description).start()
        match = TLS_LISTENING.search(cls.daemon.wait_for_line(lambda line: TLS_LISTENING.search(line) is not None))
        assert match is not None
        cls.tls_port = int(match.group(1))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.stop()
        cls.directory.cleanup()

    def connect(self, context: ssl.SSLContext) -> ssl.SSLSocket:
        sock = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        try:
            secure = context.wrap_socket(sock, server_hostname="localhost")
        except BaseException:
            sock.close()
            raise
        self.addCleanup(secure.close)
        return secure

    def verifying(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def test_verified_client_chats_with_plain_user(self) -> None:
        """
        A client verifying the host name against the test CA chats over the
        TLS listener with a plain-TCP user in the same room; /whois says it is on TLS.
        """
        plain = Client.json(self.daemon.port, "plainuser")
        self.addCleanup(plain.close)
        client = TLSClient.__new__(TLSClient)
        client.sock, client.buffer = self.connect(self.verifying()), b""
        client.send(b"/format json\n/nick tlsuser\n")
        client.until("history")
        client.send(b"over the TLS listener\n")
        self.assertEqual(plain.expect_event("message", text="over the TLS listener")["from"], "tlsuser")
        plain.send_line("/whois tlsuser")
        self.assertTrue(plain.expect_event("whois")["secure"])
        plain.send_line("back in clear text")
        client.until("message")  # its own
        self.assertEqual(client.until("message")["text"], "back in clear text")
        client.send(b"/starttls\n")
        self.assertEqual(client.until("error")["code"], "bad-arguments")

    def test_client_offering_alpn_served(self) -> None:
        """
        A client offering ALPN protocols (as browsers and curl do) gets its
        handshake, with no protocol chosen: the line protocol has none.
        """
        context = self.verifying()
        context.set_alpn_protocols(["h2", "http/1.1"])
        secure = self.connect(context)
        self.assertIsNone(secure.selected_alpn_protocol())
        client = TLSClient.__new__(TLSClient)
        client.sock, client.buffer = secure, b""
        client.send(b"/format json\n")
        self.assertEqual(client.until("welcome")["server"], "chat")

    def test_wrong_host_untrusted_ca_and_weak_suites_refused(self) -> None:
        """
        Verifying clients refuse another host name or a certificate without
        the CA file; the daemon refuses TLS 1.2 suites without forward
        secrecy or with CBC, and accepts an ECDHE AEAD one.
        """
        with self.assertRaises(ssl.SSLCertVerificationError):
            sock = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
            self.addCleanup(sock.close)
            self.verifying().wrap_socket(sock, server_hostname="chat.example")
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.connect(ssl.create_default_context())
        for suite, accepted in [
            ("AES128-GCM-SHA256", False), ("AES256-SHA256", False),
            ("ECDHE-RSA-AES128-SHA", False), ("ECDHE-RSA-AES128-GCM-SHA256", True),
        ]:
            context = self.verifying()
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(suite)
            if accepted:
                self.assertEqual(self.connect(context).cipher()[0], suite)
            else:
                with self.assertRaises(ssl.SSLError, msg=suite):
                    self.connect(context)

    def test_openssl_s_client(self) -> None:
        """
        openssl s_client, verifying against the CA file, chats with a plain user.
        """
        openssl = shutil.which("openssl")
        if openssl is None:
            self.skipTest("openssl is not installed")
        plain = Client.json(self.daemon.port, "watcher")
        self.addCleanup(plain.close)
        result = subprocess.run(
            [openssl, "s_client", "-connect", f"127.0.0.1:{self.tls_port}", "-servername", "localhost",
             "-verify_hostname", "localhost", "-CAfile", self.cafile, "-verify_return_error", "-quiet"],
            input=b"/nick openssl\r\nhello from s_client\r\n/quit\r\n", capture_output=True, timeout=20,
        )
        self.assertEqual(plain.expect_event("message", text="hello from s_client")["from"], "openssl")
        self.assertIn(b"<openssl> hello from s_client", result.stdout)

    def test_sighup_reloads_certificate(self) -> None:
        """
        After the files change and SIGHUP, new connections get the new
        certificate; a connection made before keeps working.
        """
        before = self.connect(self.verifying())
        first = before.getpeercert(binary_form=True)
        self.issue(self.cert_path, self.key_path)
        assert self.daemon.process is not None
        self.daemon.process.send_signal(signal.SIGHUP)
        self.daemon.wait_for_line(lambda line: "SIGHUP: reloaded the TLS certificate of ssl:" in line)
        after = self.connect(self.verifying())
        self.assertNotEqual(after.getpeercert(binary_form=True), first)
        with open(self.cert_path, "rb") as f:
            expected = x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)
        self.assertEqual(after.getpeercert(binary_form=True), expected)
        before.sendall(b"/ping still-here\n")
        self.assertIn(b"still-here", before.recv(4096) + before.recv(4096))


WEB_TLS_LISTENING = re.compile(r"chat web listening on 127\.0\.0\.1:(\d+) \(TLS\)")


class WebTLSTests(TestCase):
    """
    A daemon whose web listener serves HTTPS (C{--web ssl:...}), as a
    browser reaches it: offering ALPN, then upgrading to a WebSocket (wss).
    """

    daemon: ClassVar[Daemon]
    web_port: ClassVar[int]

    @classmethod
    def setUpClass(cls) -> None:
        cls.directory = tempfile.TemporaryDirectory(prefix="chat-web-tls-")
        cls.cafile, issue = make_test_ca(cls.directory.name)
        cert_path = os.path.join(cls.directory.name, "server.pem")
        key_path = os.path.join(cls.directory.name, "server.key")
        issue(cert_path, key_path)
        description = f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}"
        cls.daemon = Daemon("--in-memory", "--web", description).start()
        line = cls.daemon.wait_for_line(lambda text: WEB_TLS_LISTENING.search(text) is not None)
        match = WEB_TLS_LISTENING.search(line)
        assert match is not None
        cls.web_port = int(match.group(1))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.stop()
        cls.directory.cleanup()

    def connect(self) -> ssl.SSLSocket:
        context = ssl.create_default_context(cafile=self.cafile)
        context.set_alpn_protocols(["h2", "http/1.1"])
        sock = socket.create_connection(("127.0.0.1", self.web_port), timeout=5)
        secure = context.wrap_socket(sock, server_hostname="localhost")
        self.addCleanup(secure.close)
        return secure

    def test_page_over_https_with_alpn(self) -> None:
        """
        A client offering h2 and http/1.1 gets http/1.1 and the page.
        """
        secure = self.connect()
        self.assertEqual(secure.selected_alpn_protocol(), "http/1.1")
        secure.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := secure.recv(65536):
            answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:100])
        self.assertIn(b"content-security-policy: default-src 'self'", answer.lower())

    def test_secure_websocket_session(self) -> None:
        """
        Over wss the session counts as encrypted: /whois says so, so a
        password would be accepted from any address.
        """
        secure = self.connect()
        ws = WSConnection(ConnectionType.CLIENT)
        origin = [(b"origin", f"https://localhost:{self.web_port}".encode())]
        secure.sendall(ws.send(Request(host=f"localhost:{self.web_port}", target="/ws", extra_headers=origin)))
        accepted, whois = False, None
        deadline = time.monotonic() + 5
        while whois is None and time.monotonic() < deadline:
            ws.receive_data(secure.recv(65536))
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    accepted = True
                    secure.sendall(ws.send(TextMessage("/nick wss_user")) + ws.send(TextMessage("/whois wss_user")))
                elif isinstance(event, TextMessage) and json.loads(event.data)["type"] == "whois":
                    whois = json.loads(event.data)
        self.assertTrue(accepted)
        assert whois is not None
        self.assertTrue(whois["secure"])

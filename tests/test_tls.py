"""
Tests for L{chat.tls} and C{chat-cert} (L{chat.cert}): certificates checked
at start-up with one-line errors, modern server options, self-signed
certificates; and C{/starttls} in L{chat.protocol} over L{StringTransport}
(PROTOCOL.md section 7).
"""

from __future__ import annotations

import io
import ipaddress
import os
import signal
import stat
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from OpenSSL import SSL
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from chat import cert, tap, tls
from chat.protocol import ChatFactory
from chat.server import ChatServer
from tests.support import Client, ProtocolTestCase, error_text

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


class FilesTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-tls-test-")
        self.addCleanup(directory.cleanup)
        self.dir = directory.name

    def write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def pair(self, host: str = "localhost", days: int = 30, now: datetime = NOW) -> tuple[str, str]:
        certificate, key = tls.self_signed(host, days, now)
        return self.write(f"{host}.pem", certificate), self.write(f"{host}.key", key)


class LoadTests(FilesTestCase):
    def test_valid_pair(self) -> None:
        """
        A matching, current certificate and key load, and give server options refusing TLS below 1.2.
        """
        cert_path, key_path = self.pair()
        loaded = tls.load(cert_path, key_path, NOW)
        self.assertEqual(loaded.chain, ())
        flags = loaded.options().getContext().set_options(0)  # adds nothing, returns the options set
        self.assertTrue(flags & SSL.OP_NO_TLSv1_1)
        self.assertTrue(flags & SSL.OP_NO_TLSv1)

    def test_key_in_certificate_file(self) -> None:
        """
        Without a key file the key is read from the certificate file.
        """
        certificate, key = tls.self_signed("localhost", 30, NOW)
        path = self.write("both.pem", certificate + key)
        self.assertEqual(tls.load(path, None, NOW).certificate, x509.load_pem_x509_certificate(certificate))

    def test_errors_are_one_line(self) -> None:
        """
        Missing files, files without PEM, a key of another certificate, an
        encrypted key, a key that cannot sign, and an expired or future
        certificate each give one clear line.
        """
        cert_path, key_path = self.pair()
        other_cert, other_key = self.pair("other.example")
        encrypted = serialization.load_pem_private_key(open(key_path, "rb").read(), None).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        old_cert, old_key = self.pair("old.example", 1, NOW - timedelta(days=10))
        garbage = self.write("garbage.pem", b"hello")
        x25519_key = self.write("x25519.key", x25519.X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
        ))
        cases = [
            ((os.path.join(self.dir, "missing.pem"), key_path),
             f"cannot read the certificate {self.dir}/missing.pem: No such file or directory"),
            ((cert_path, os.path.join(self.dir, "missing.key")),
             f"cannot read the private key {self.dir}/missing.key: No such file or directory"),
            ((garbage, key_path), f"{garbage} holds no PEM certificate"),
            ((cert_path, garbage), f"{garbage} holds no PEM private key"),
            ((cert_path, other_key), f"the private key in {other_key} does not match the certificate in {cert_path}"),
            ((cert_path, self.write("enc.key", encrypted)),
             f"the private key in {self.dir}/enc.key is encrypted: give an unencrypted key"),
            ((old_cert, old_key), f"the certificate in {old_cert} expired on 2026-11-12 12:00 UTC"),
            ((cert_path, x25519_key),
             f"the private key in {x25519_key} cannot sign (X25519PrivateKey): use an RSA or EC key"),
        ]
        for args, message in cases:
            error = self.assertRaises(tls.TLSError, tls.load, *args, NOW)
            self.assertEqual(str(error), message)
        error = self.assertRaises(tls.TLSError, tls.load, cert_path, key_path, NOW - timedelta(days=1))
        self.assertIn("is not valid before 2026-11-21 11:55 UTC", str(error))
        del other_cert


class SelfSignedTests(FilesTestCase):
    def test_names_and_use(self) -> None:
        """
        The certificate names its host (DNS or IP) in subjectAltName, is its own CA, and is for servers.
        """
        for host, name in [("chat.example", x509.DNSName("chat.example")),
                           ("127.0.0.1", x509.IPAddress(ipaddress.ip_address("127.0.0.1")))]:
            certificate = x509.load_pem_x509_certificate(tls.self_signed(host, 10, NOW)[0])
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            self.assertEqual(list(san), [name])
            self.assertTrue(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
            self.assertEqual(certificate.issuer, certificate.subject)
            self.assertEqual(certificate.not_valid_after_utc, NOW + timedelta(days=10))


class CertCommandTests(FilesTestCase):
    def run_cert(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        status = cert.main(list(argv), out, err)
        return status, out.getvalue(), err.getvalue()

    def test_writes_pair(self) -> None:
        """
        chat-cert HOST writes HOST.pem and a private HOST.key that load together, and says what to do with them.
        """
        status, out, err = self.run_cert("--out", self.dir, "localhost")
        self.assertEqual((status, err), (0, ""))
        cert_path, key_path = os.path.join(self.dir, "localhost.pem"), os.path.join(self.dir, "localhost.key")
        self.assertEqual(stat.S_IMODE(os.stat(key_path).st_mode), 0o600)
        tls.load(cert_path, key_path)
        self.assertIn(f"clients must be given {cert_path} as their CA file", out)
        self.assertIn(f"--tls-cert {cert_path} --tls-key {key_path}", out)

    def test_never_overwrites(self) -> None:
        """
        An existing file is never overwritten: one line, status 1.
        """
        existing = self.write("localhost.key", b"mine")
        status, _, err = self.run_cert("-o", self.dir, "localhost")
        self.assertEqual((status, err), (1, f"chat-cert: {existing} exists: remove it first, or use --out\n"))
        self.assertEqual(open(existing, "rb").read(), b"mine")

    def test_usage(self) -> None:
        """
        No host, two hosts or a path get the usage and status 2.
        """
        for argv in ((), ("a", "b"), ("../x",)):
            status, _, err = self.run_cert(*argv)
            self.assertEqual(status, 2, argv)
            self.assertIn("Usage: chat-cert [options] HOST", err)


class TapTests(FilesTestCase):
    def test_bad_certificate_stops_start_up(self) -> None:
        """
        A bad --tls-cert ends start-up with one line, before anything listens.
        """
        options = tap.Options()
        options.parseOptions(["--in-memory", "--tls-cert", os.path.join(self.dir, "none.pem")])
        error = self.assertRaises(SystemExit, tap.makeService, options)
        self.assertEqual(
            str(error), f"chat: cannot read the certificate {self.dir}/none.pem: No such file or directory"
        )

    def test_key_needs_certificate(self) -> None:
        """
        --tls-key alone is a usage error.
        """
        self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["--tls-key", "k.pem"])


def serial(connection: SSL.Connection) -> int:
    certificate = connection.get_certificate()
    assert certificate is not None
    return certificate.to_cryptography().serial_number


class EndpointTests(FilesTestCase):
    def description(self, cert_path: str, key_path: str) -> str:
        return f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}"

    def test_from_endpoint(self) -> None:
        """
        The certificate and key of an ssl: description in Twisted's syntax are read and checked.
        """
        cert_path, key_path = self.pair()
        loaded = tls.from_endpoint(None, self.description(cert_path, key_path), NOW)
        with open(cert_path, "rb") as f:
            self.assertEqual(loaded.certificate, x509.load_pem_x509_certificate(f.read()))

    def test_endpoint_errors_are_one_line(self) -> None:
        """
        Missing files, garbage, a key of another certificate and an expired
        certificate behind an ssl: description each give one line naming it.
        """
        cert_path, key_path = self.pair()
        _, other_key = self.pair("other.example")
        old_cert, old_key = self.pair("old.example", days=1, now=NOW - timedelta(days=10))
        garbage = self.write("garbage.pem", b"not a certificate\n")
        missing = os.path.join(self.dir, "none.pem")
        cases = [
            (cert_path, missing, f"cannot read {missing}: No such file or directory"),
            (garbage, key_path, "the files do not hold a PEM certificate and private key"),
            (cert_path, other_key, "the private key does not match the certificate"),
        ]
        for certificate, key, expected in cases:
            description = self.description(certificate, key)
            error = self.assertRaises(tls.TLSError, tls.from_endpoint, None, description, NOW)
            self.assertEqual(str(error), f"{description}: {expected}")
        description = self.description(old_cert, old_key)
        error = self.assertRaises(tls.TLSError, tls.from_endpoint, None, description, NOW)
        self.assertEqual(str(error), f"the certificate of {description} expired on 2026-11-12 12:00 UTC")
        self.assertRaises(ValueError, tls.from_endpoint, None, "tcp:0", NOW)

    def test_listener_served_with_hardened_options(self) -> None:
        """
        An ssl: --listen is served by a ServerTLS offering only TLS 1.3's
        suites and the intermediate profile's ones, and is reloaded on SIGHUP.
        """
        cert_path, key_path = self.pair(now=datetime.now(timezone.utc))
        options = tap.Options()
        options.parseOptions(["--in-memory", "--listen", self.description(cert_path, key_path)])
        reactor = MemoryReactorClock()
        top = tap.makeService(options, reactor)
        self.addCleanup(lambda: list(top)[0].server.files.close())  # type: ignore[call-overload]
        listener = list(top)[1]  # type: ignore[call-overload]
        listener.privilegedStartService()
        [(_, _, server, _, _)] = reactor.sslServers
        self.assertIsInstance(server, tls.ServerTLS)
        ciphers = set(server.serverConnectionForTLS(None).get_cipher_list())
        allowed = set(tls.INTERMEDIATE_CIPHERS.split(":")) | {
            "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256",
        }
        self.assertLessEqual(ciphers, allowed)
        self.assertIn("ECDHE-RSA-AES128-GCM-SHA256", ciphers)
        self.assertEqual(list(top)[0]._certificates, [server])  # type: ignore[call-overload]

    def test_bad_listener_stops_start_up(self) -> None:
        """
        An ssl: --listen whose files cannot be used ends start-up with one line.
        """
        cert_path, _ = self.pair()
        description = self.description(cert_path, os.path.join(self.dir, "none.key"))
        options = tap.Options()
        options.parseOptions(["--in-memory", "--listen", description])
        error = self.assertRaises(SystemExit, tap.makeService, options)
        self.assertEqual(
            str(error), f"chat: --listen {description}: cannot read {self.dir}/none.key: No such file or directory"
        )


class ReloadTests(FilesTestCase):
    def test_reload_serves_new_certificate(self) -> None:
        """
        After reload new connections get the certificate now in the files;
        a file that cannot be used raises and the old certificate stays.
        """
        cert_path, key_path = self.pair()
        server = tls.ServerTLS(lambda: tls.load(cert_path, key_path, NOW), "/starttls")
        first = serial(server.serverConnectionForTLS(None))
        os.unlink(cert_path)
        os.unlink(key_path)
        self.pair()
        server.reload()
        second = serial(server.serverConnectionForTLS(None))
        self.assertNotEqual(first, second)
        self.write("localhost.pem", b"garbage")
        self.assertRaises(tls.TLSError, server.reload)
        self.assertEqual(serial(server.serverConnectionForTLS(None)), second)

    def test_sighup_reloads(self) -> None:
        """
        The service installs a SIGHUP handler that reloads every
        certificate in the reactor's next turn, logs each outcome, and
        restores the previous handler on stop.
        """
        cert_path, key_path = self.pair(now=datetime.now(timezone.utc))
        options = tap.Options()
        options.parseOptions(["--in-memory", "--tls-cert", cert_path, "--tls-key", key_path])
        memory = MemoryReactorClock()
        called: list[Any] = []
        memory.callFromThread = lambda f, *a: called.append(f)  # type: ignore[method-assign]
        top = tap.makeService(options, memory)
        service = list(top)[0]  # type: ignore[call-overload]
        before = signal.getsignal(signal.SIGHUP)
        top.startService()
        try:
            handler = signal.getsignal(signal.SIGHUP)
            assert callable(handler)
            handler(signal.SIGHUP, None)
            self.assertEqual(called, [service.reload])
            with open(cert_path, "wb") as f:
                f.write(b"garbage")
            with capturedLogs() as logged:
                service.reload_certificates()
            self.assertEqual(
                [formatEvent(e) for e in logged],
                [f"SIGHUP: kept the TLS certificate served so far: {cert_path} holds no PEM certificate"],
            )
        finally:
            self.successResultOf(top.stopService())
        self.assertEqual(signal.getsignal(signal.SIGHUP), before)


class RecordingTLSTransport:
    """
    Adds C{startTLS} to a test transport, recording its argument and what
    had been written before it.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.started: list[tuple[Any, bytes]] = []
        client.transport.startTLS = self.start  # type: ignore[attr-defined]

    def start(self, options: Any) -> None:
        self.started.append((options, self.client.transport.value()))


class StartTLSTests(ProtocolTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.options = object()
        self.factory = ChatFactory(ChatServer(self.settings, self.clock), starttls=self.options)  # type: ignore[arg-type]
        self.server = self.factory.server

    def test_unavailable_without_certificate(self) -> None:
        """
        Without a certificate /starttls gets tls-unavailable.
        """
        _, factory = self.make_factory(self.settings)
        client = self.connect(factory=factory)
        client.take()
        client.line("/starttls")
        self.assertEqual(client.take(), error_text("tls-unavailable", "this server has no TLS certificate configured"))

    def test_info_then_handshake(self) -> None:
        """
        /starttls answers info in clear text, then starts TLS with the
        server's options; the connection then counts as secure.
        """
        client = self.connect()
        tls_transport = RecordingTLSTransport(client)
        client.take()
        client.line("/starttls")
        [(options, before)] = tls_transport.started
        self.assertIs(options, self.options)
        self.assertEqual(before, b"*** Starting TLS: begin the handshake\r\n")
        self.assertTrue(client.protocol.secure)
        client.line("/starttls")
        self.assertIn(b"this connection is encrypted already (bad-arguments)", client.take())

    def test_injected_commands_dropped(self) -> None:
        """
        Lines sent after /starttls in the same packet are dropped, never run
        as if they had come over TLS; lines after the handshake run.
        """
        for end in (b"\n", b"\r\n"):
            client = self.connect()
            RecordingTLSTransport(client)
            client.take()
            client.send(b"/starttls" + end + b"/nick mallory" + end + b"/quit" + end)
            self.assertNotIn("mallory", self.server.domain.users)
            self.assertFalse(client.transport.disconnecting)
            client.take()
            client.line("alice" + str(len(end)))
            self.assertIn(b"You are alice", client.take())

# -*- test-case-name: tests.test_tls -*-
"""
The daemon's TLS (PROTOCOL.md section 7): its certificate and key, checked
at start-up so that a bad file is one clear line instead of a traceback at
the first connection, and the server options built from them with modern
defaults: TLS 1.2 at least, forward-secret AEAD cipher suites only
(Mozilla's "intermediate" profile).

Also L{self_signed}, behind the C{chat-cert} command: a certificate and key
for a host name, for tests and small servers.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL, crypto
from twisted.internet import endpoints, ssl
from twisted.internet.error import VerifyError
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IReactorSSL
from twisted.internet.protocol import ServerFactory
from zope.interface import implementer

INTERMEDIATE_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
])
"""TLS 1.2 cipher suites of Mozilla's intermediate profile (v5.7): forward
secret and AEAD only. TLS 1.3's suites are all both, and always enabled."""

SigningKey = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey | dsa.DSAPrivateKey
)
"""The private keys that can sign a TLS handshake."""


class TLSError(Exception):
    """
    The certificate or key cannot be used; the message is one line for the
    operator.
    """


@dataclass(frozen=True)
class ServerCertificate:
    """
    A certificate, the chain that follows it, and its private key, checked
    to belong together and to be valid now.
    """

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: SigningKey
    dh_parameters: ssl.DiffieHellmanParameters | None = None
    """Parameters for the DHE suites; without them only the ECDHE ones serve TLS 1.2."""

    def options(self) -> ssl.CertificateOptions:
        """
        Twisted's server options for it: TLS 1.2 at least, the ciphers of
        L{INTERMEDIATE_CIPHERS}, the chain sent after the certificate.
        """
        return ssl.CertificateOptions(
            privateKey=crypto.PKey.from_cryptography_key(self.key),
            certificate=crypto.X509.from_cryptography(self.certificate),
            extraCertChain=[crypto.X509.from_cryptography(c) for c in self.chain],
            dhParameters=self.dh_parameters,
            acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(INTERMEDIATE_CIPHERS),
            raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        )


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TLSError(f"cannot read the {what} {path}: {e.strerror}") from None


def load(cert_path: str, key_path: str | None = None, now: datetime | None = None) -> ServerCertificate:
    """
    Load a PEM certificate (followed by its chain, if any) and its PEM
    private key, and check them.

    @param key_path: the key's file; C{None} when it is in C{cert_path}.
    @param now: the time to check validity at (aware); the current time by default.
    @raise TLSError: a file is missing or unreadable, holds no PEM
        certificate or key, the key is encrypted, cannot sign, or does not match the
        certificate, or the certificate has expired or is not yet valid.
    """
    data = _read(cert_path, "certificate")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TLSError(f"{cert_path} holds no PEM certificate") from None
    key_path = key_path or cert_path
    key_data = data if key_path == cert_path else _read(key_path, "private key")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise TLSError(f"the private key in {key_path} is encrypted: give an unencrypted key") from None
    except ValueError:
        raise TLSError(f"{key_path} holds no PEM private key") from None
    return check(
        certificates[0], certificates[1:], key,
        f"the certificate in {cert_path}", f"the private key in {key_path}", now,
    )


def check(
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    key: object,
    certificate_source: str,
    key_source: str,
    now: datetime | None = None,
    dh_parameters: ssl.DiffieHellmanParameters | None = None,
) -> ServerCertificate:
    """
    Check that C{key} can sign, belongs to C{certificate}, and that the
    certificate is valid at C{now} (aware; the current time by default).

    @param certificate_source: names the certificate in error messages,
        e.g. C{"the certificate in cert.pem"}; C{key_source} likewise.
    @raise TLSError: one line saying what is wrong.
    """
    if not isinstance(key, SigningKey):
        raise TLSError(f"{key_source} cannot sign ({type(key).__name__}): use an RSA or EC key")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if certificate.public_key().public_bytes(encoding, public) != key.public_key().public_bytes(encoding, public):
        raise TLSError(f"{key_source} does not match {certificate_source}")
    now = now or datetime.now(timezone.utc)
    if certificate.not_valid_after_utc < now:
        raise TLSError(f"{certificate_source} expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if certificate.not_valid_before_utc > now:
        raise TLSError(
            f"{certificate_source} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    return ServerCertificate(certificate, tuple(chain), key, dh_parameters)


@contextmanager
def endpoint_files(description: str) -> Iterator[None]:
    """
    Turn the errors Twisted's C{ssl:} endpoint parser raises for the files
    it reads into one-line L{TLSError}s.
    """
    try:
        yield
    except OSError as e:
        raise TLSError(f"{description}: cannot read {e.filename}: {e.strerror}") from None
    except crypto.Error:
        raise TLSError(f"{description}: the files do not hold a PEM certificate and private key") from None
    except VerifyError:
        raise TLSError(f"{description}: the private key does not match the certificate") from None


def from_endpoint(reactor: Any, description: str, now: datetime | None = None) -> ServerCertificate:
    """
    The certificate of an C{ssl:} endpoint description in Twisted's own
    syntax (C{ssl:6697:privateKey=key.pem:certKey=cert.pem}, with optional
    C{extraCertChain=} and C{dhParameters=}), read by Twisted's parser and
    checked like L{load}. Twisted's parser allows ciphers this daemon does
    not: serve the result's L{ServerCertificate.options} instead.

    @raise TLSError: a file is missing or unreadable, or does not hold a
        PEM certificate or key; or as L{check}.
    @raise ValueError: C{description} is not a valid C{ssl:} endpoint.
    """
    options = parse_ssl_endpoint(description).options
    if options.certificate is None or options.privateKey is None:
        raise TLSError(f"{description}: no certificate and private key")
    return check(
        options.certificate.to_cryptography(),
        [c.to_cryptography() for c in options.extraCertChain],
        options.privateKey.to_cryptography_key(),
        f"the certificate of {description}",
        f"the private key of {description}",
        now,
        options.dhParameters,
    )


@dataclass(frozen=True)
class SSLEndpoint:
    """
    What an C{ssl:} endpoint description says: the port (0 for any), the
    listen backlog, the interface (empty for all) and the TLS options
    Twisted's parser built from its files.
    """

    port: int
    backlog: int
    interface: str
    options: ssl.CertificateOptions


@implementer(IReactorSSL)
class _ListenRecorder:
    """
    A stand-in reactor that records what an C{ssl:} endpoint would listen
    with, instead of listening.
    """

    endpoint: SSLEndpoint | None = None

    def listenSSL(  # noqa: N802 - IReactorSSL's name
        self, port: int, factory: Any, contextFactory: Any, backlog: int = 50, interface: str = ""  # noqa: N803
    ) -> Any:
        self.endpoint = SSLEndpoint(port, backlog, interface, contextFactory)
        return None

    def connectSSL(  # noqa: N802 - IReactorSSL's name
        self, host: str, port: int, factory: Any, contextFactory: Any,  # noqa: N803
        timeout: float = 30, bindAddress: tuple[str, int] | None = None,  # noqa: N803
    ) -> Any:
        raise NotImplementedError("only listening is recorded")


def parse_ssl_endpoint(description: str) -> SSLEndpoint:
    """
    Parse an C{ssl:} endpoint description with Twisted's own parser, reading
    its files, without listening: Twisted's endpoint is asked to listen on a
    stand-in reactor (L{IReactorSSL}) that records its arguments.

    @raise TLSError: a file is missing or unreadable, or does not hold a
        PEM certificate or key.
    @raise ValueError: C{description} is not a valid C{ssl:} endpoint.
    """
    recorder = _ListenRecorder()
    with endpoint_files(description):
        endpoint = endpoints.serverFromString(recorder, description)
    if not isinstance(endpoint, endpoints.SSL4ServerEndpoint):
        raise ValueError(f"not an ssl: endpoint: {description}")
    endpoint.listen(ServerFactory())
    assert recorder.endpoint is not None
    return recorder.endpoint


def ssl_endpoint(
    reactor: Any, description: str, backlog: int | None = None, alpn: Sequence[bytes] = ()
) -> tuple[endpoints.SSL4ServerEndpoint, ServerTLS]:
    """
    The endpoint of an C{ssl:} description served with L{ServerTLS} (TLS
    1.2 at least, the ciphers of Mozilla's intermediate profile, reloaded on
    SIGHUP) instead of the options Twisted's parser builds, which allow
    non-forward-secret and CBC suites.

    @param backlog: the listen backlog instead of the description's.
    @param alpn: the application protocols the listener speaks (L{ServerTLS}).
    @return: the endpoint, and its L{ServerTLS} (to reload).
    @raise TLSError: the endpoint's files cannot be used.
    @raise ValueError: C{description} is not a valid C{ssl:} endpoint.
    """
    parsed = parse_ssl_endpoint(description)
    server_tls = ServerTLS(lambda: from_endpoint(reactor, description), description, alpn)
    endpoint = endpoints.SSL4ServerEndpoint(
        reactor, parsed.port, server_tls, parsed.backlog if backlog is None else backlog, parsed.interface
    )
    return endpoint, server_tls


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """
    The server side of TLS for a listener or for C{/starttls}, with a
    certificate that L{reload} replaces (on SIGHUP): connections made
    afterwards get the new one, those already up keep theirs.

    Given to C{transport.startTLS} or as an C{ssl:} endpoint's context
    factory; Twisted calls L{serverConnectionForTLS} once per connection.

    ALPN (RFC 7301): a client offering protocols gets the first of
    C{alpn} it offers, or no protocol at all and the handshake goes on.
    (Twisted's own selection answers an empty protocol when nothing
    matches, which OpenSSL turns into an C{internal_error} alert: every
    browser and C{curl} offer ALPN, so they could not connect at all.)
    """

    def __init__(self, loader: Callable[[], ServerCertificate], name: str, alpn: Sequence[bytes] = ()) -> None:
        """
        @param loader: reads and checks the certificate; called now and on
            every L{reload}. Raises L{TLSError}.
        @param name: what is served, for the log, e.g. C{"/starttls"}.
        @param alpn: the application protocols served, by preference (the
            web listener's C{b"http/1.1"}); none for the line protocol.
        @raise TLSError: the certificate cannot be used.
        """
        self.name = name
        self._loader = loader
        self._alpn = tuple(alpn)
        self.certificate = loader()
        self._context = self._context_of(self.certificate)

    def _context_of(self, certificate: ServerCertificate) -> SSL.Context:
        context = certificate.options().getContext()
        context.set_alpn_select_callback(self._select_protocol)
        return context

    def _select_protocol(self, connection: SSL.Connection, offered: list[bytes]) -> Any:
        """
        OpenSSL's ALPN callback: the first of ours the client offers, else
        no protocol (L{SSL.NO_OVERLAPPING_PROTOCOLS}), never a failed handshake.
        """
        for protocol in self._alpn:
            if protocol in offered:
                return protocol
        return SSL.NO_OVERLAPPING_PROTOCOLS

    def reload(self) -> ServerCertificate:
        """
        Read the certificate again and serve it to new connections.

        @raise TLSError: it cannot be used; the one served so far stays.
        """
        certificate = self._loader()
        self._context = self._context_of(certificate)
        self.certificate = certificate
        return certificate

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        """
        A connection on the current certificate's context.
        """
        return SSL.Connection(self._context, None)


def self_signed(host: str, days: int = 365, now: datetime | None = None) -> tuple[bytes, bytes]:
    """
    A self-signed certificate for C{host} (a DNS name or an IP address),
    valid for C{days} from C{now}, with a new P-256 key. The certificate is
    its own CA: clients trust it by being given it as their CA file.

    @return: C{(certificate, key)}, both PEM.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alternative = x509.DNSName(host)
    now = now or datetime.now(timezone.utc)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, crl_sign=False, encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def write_private(path: str, data: bytes) -> None:
    """
    Write C{data} to a new file readable by its owner only.

    @raise FileExistsError: the file exists (nothing is overwritten).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)

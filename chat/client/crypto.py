# -*- test-case-name: tests.test_client_crypto -*-
"""
End-to-end encryption of private messages and files between devices, as the
envelope contract v1 of C{docs/protocol.md} section 11 says: device keys
(X25519 + Ed25519), envelopes (HPKE base mode key wrapping, AES-256-GCM,
Ed25519 signatures) and files (STREAM over AES-256-GCM in 65536-byte chunks).

Everything here is composed from C{cryptography}'s primitives
(C{hazmat.primitives.hpke}, X25519, Ed25519, AESGCM, SHA-256); nothing
here is a cipher of its own. Pure: no Twisted, no I/O beyond the file
objects handed in, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
"""The envelope version, C{"v"} in every envelope."""

BUNDLE_SIZE = 64
"""Bytes in a public bundle: X25519 public (32) then Ed25519 public (32)."""

KEY_SIZE = 32
"""Bytes in a message key, a file key, and each private key."""

NONCE_SIZE = 12
"""Bytes in an envelope's AES-GCM nonce C{n}."""

TAG_SIZE = 16
"""Bytes in an AES-GCM tag."""

WRAP_SIZE = 32 + KEY_SIZE + TAG_SIZE
"""Bytes in a wrapped message key: HPKE C{enc} (32) then the sealed key (48)."""

CHUNK_SIZE = 65536
"""Plaintext bytes in each chunk of an encrypted file (the last may be shorter)."""

ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
"""Bytes in each encrypted chunk of a file but the last."""

FILE_MAGIC = b"CHATE2E1"
"""The first 8 bytes of an encrypted file."""

PREFIX_SIZE = 7
"""Bytes in a file's nonce prefix, written after L{FILE_MAGIC}."""

FILE_HEADER_SIZE = len(FILE_MAGIC) + PREFIX_SIZE
"""Bytes before the first encrypted chunk of a file (15)."""

MAX_CHUNKS = 2**32
"""Chunks a file may have: the counter is 4 bytes (256 TiB of plaintext)."""

FINGERPRINT_LABEL = b"chat-e2e-v1 fingerprint"
WRAP_INFO = b"chat-e2e-v1 wrap"
SIGNATURE_LABEL = b"chat-e2e-v1 sig\n"

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)

# Why an envelope or a file could not be decrypted (L{CannotDecrypt.reason}); the
# same words are the "expect" of the negative test vectors (tests/vectors/e2e-v1.json).
MALFORMED = "malformed"
NOT_FOR_THIS_DEVICE = "not-for-this-device"
UNKNOWN_SENDER_DEVICE = "unknown-sender-device"
BAD_SIGNATURE = "bad-signature"
CORRUPTED = "corrupted"
TRUNCATED = "truncated"
UNSUPPORTED = "unsupported"

REASONS = (MALFORMED, NOT_FOR_THIS_DEVICE, UNKNOWN_SENDER_DEVICE, BAD_SIGNATURE, CORRUPTED, TRUNCATED, UNSUPPORTED)
"""Every L{CannotDecrypt.reason}."""


class CannotDecrypt(Exception):
    """
    An envelope or an encrypted file that this device cannot (or must not)
    turn into plaintext. The client shows the message as "could not be
    decrypted" (with L{reason} for the curious), never as text.

    @ivar reason: one of L{REASONS}: C{malformed} (not an envelope v1, or a
        plaintext of the wrong shape), C{not-for-this-device} (no wrapped key
        for this device), C{unknown-sender-device} (the sender's device is
        not among the sender's published keys), C{bad-signature} (the
        signature does not verify: forged or changed in transit),
        C{corrupted} (a key or ciphertext fails authentication; for a file
        also reordered chunks or a wrong key), C{truncated} (a file that
        ends before its final chunk), C{unsupported} (a plaintext C{type}
        this client does not know).
    @ivar detail: a short English explanation, never secret material.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# -- encodings ---------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 section 4) of C{data}, as C{str}."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """
    Decode standard base64 with padding, strictly.

    @raise ValueError: not canonical base64 of that alphabet.
    """
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError(f"not base64: {e}") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise ValueError("not canonical base64")
    return data


def b64url_encode(data: bytes) -> str:
    """URL-safe base64 without padding (RFC 4648 section 5) of C{data}, as C{str}."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """
    Decode URL-safe base64 without padding.

    @raise ValueError: padding, a character outside the alphabet, or a
        length that is not a whole number of bytes.
    """
    if "=" in text or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        return base64.b64decode(text.encode("ascii") + b"=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError(f"not base64url: {e}") from None


def canonical_json(value: Any) -> bytes:
    """
    The contract's canonical JSON of C{value}: keys sorted, separators
    C{","} and C{":"}, no spaces, ASCII only (any other character written
    as a C{\\uXXXX} escape), as bytes.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


# -- device keys ---------------------------------------------------------------


def split_bundle(bundle: bytes) -> tuple[X25519PublicKey, Ed25519PublicKey]:
    """
    The two public keys of a 64-byte public bundle.

    @raise ValueError: not 64 bytes, or not valid public keys.
    """
    if len(bundle) != BUNDLE_SIZE:
        raise ValueError(f"a bundle is {BUNDLE_SIZE} bytes, not {len(bundle)}")
    return (X25519PublicKey.from_public_bytes(bundle[:32]), Ed25519PublicKey.from_public_bytes(bundle[32:]))


def _digest(bundle: bytes) -> bytes:
    return hashlib.sha256(FINGERPRINT_LABEL + bundle).digest()


def device_id(bundle: bytes) -> str:
    """
    The device id of a public bundle: b64url of the first 12 bytes of
    SHA-256(C{b"chat-e2e-v1 fingerprint"} || bundle), 16 characters.
    Computed from the bundle by every client; a device id the server
    states is never trusted instead.
    """
    return b64url_encode(_digest(bundle)[:12])


def fingerprint(bundle: bytes) -> str:
    """
    The fingerprint of a public bundle that people compare aloud: 6 groups
    of 5 decimal digits separated by single spaces (35 characters), group
    i being int(digest[5i:5i+5]) mod 100000 of the same digest as
    L{device_id}.
    """
    digest = _digest(bundle)
    return " ".join(f"{int.from_bytes(digest[5 * i:5 * i + 5], 'big') % 100000:05d}" for i in range(6))


def decode_bundle(text: str) -> bytes:
    """
    The bundle of a published key (C{/key publish} and the C{key} of a
    C{keys} event: base64 of 64 bytes), checked.

    @raise ValueError: not base64 of a valid 64-byte bundle.
    """
    bundle = b64decode(text)
    split_bundle(bundle)
    return bundle


class Device:
    """
    One client installation's key pair: X25519 for receiving wrapped keys,
    Ed25519 for signing what it sends. Holds private keys: never log it.
    """

    def __init__(self, x25519: X25519PrivateKey, ed25519: Ed25519PrivateKey) -> None:
        self.x25519 = x25519
        self.ed25519 = ed25519
        self.bundle: bytes = (x25519.public_key().public_bytes_raw() + ed25519.public_key().public_bytes_raw())
        """The public bundle (64 bytes), published as C{/key publish b64(bundle)}."""
        self.device_id: str = device_id(self.bundle)
        """This device's id (16 characters), see L{device_id}."""
        self.fingerprint: str = fingerprint(self.bundle)
        """This device's fingerprint (35 characters), see L{fingerprint}."""

    @classmethod
    def generate(cls) -> Device:
        """A new device with fresh random keys."""
        return cls(X25519PrivateKey.generate(), Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, x25519: bytes, ed25519: bytes) -> Device:
        """
        The device with these raw private keys (32 bytes each).

        @raise ValueError: a key of the wrong length.
        """
        if len(x25519) != KEY_SIZE or len(ed25519) != KEY_SIZE:
            raise ValueError("private keys are 32 bytes each")
        return cls(X25519PrivateKey.from_private_bytes(x25519), Ed25519PrivateKey.from_private_bytes(ed25519))

    def private_bytes(self) -> tuple[bytes, bytes]:
        """The raw private keys (X25519, Ed25519), 32 bytes each: secret."""
        raw = serialization.Encoding.Raw
        fmt = serialization.PrivateFormat.Raw
        none = serialization.NoEncryption()
        return (self.x25519.private_bytes(raw, fmt, none), self.ed25519.private_bytes(raw, fmt, none))

    def published_key(self) -> str:
        """The argument of C{/key publish}: standard base64 of L{bundle}."""
        return b64encode(self.bundle)

    def __repr__(self) -> str:
        return f"<Device {self.device_id}>"


# -- plaintexts ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextMessage:
    """
    A private text message (or, with C{action}, a C{/me} action).

    @ivar text: the message text, any Unicode.
    """

    text: str
    action: bool = False


@dataclass(frozen=True, slots=True)
class FileMessage:
    """
    What a receiver needs to fetch and decrypt a private file.

    @ivar key: the file key, 32 bytes (secret).
    @ivar prefix: the file's nonce prefix, 7 bytes.
    @ivar name: the file's name as the sender wants it shown.
    @ivar offer: the daemon's offer id of the encrypted file.
    @ivar sha256: lower-case hex SHA-256 of the I{encrypted} file (what the
        daemon stores and checks).
    @ivar size: the plaintext size in bytes.
    """

    key: bytes
    prefix: bytes
    name: str
    offer: int
    sha256: str
    size: int


Plaintext = TextMessage | FileMessage
"""What an envelope carries."""


def encode_plaintext(message: Plaintext) -> bytes:
    """
    The plaintext bytes P of a message: canonical JSON of
    C{{"text", "type": "text"}} (plus C{"action": true} for an action) or
    C{{"key", "name", "offer", "prefix", "sha256", "size", "type": "file"}}.
    """
    value: dict[str, Any]
    if isinstance(message, TextMessage):
        value = {"text": message.text, "type": "text"}
        if message.action:
            value["action"] = True
    else:
        value = {"key": b64encode(message.key), "name": message.name, "offer": message.offer,
                 "prefix": b64encode(message.prefix), "sha256": message.sha256, "size": message.size,
                 "type": "file"}
    return canonical_json(value)


def decode_plaintext(data: bytes) -> Plaintext:
    """
    The message whose plaintext bytes are C{data} (any valid UTF-8 JSON of
    the right shape; canonical form is not required: P is never rebuilt).

    @raise CannotDecrypt: C{malformed} (not a JSON object of a known shape)
        or C{unsupported} (an unknown C{type}).
    """
    try:
        value = json.loads(data.decode("utf-8"))
    except ValueError:
        raise CannotDecrypt(MALFORMED, "the plaintext is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise CannotDecrypt(MALFORMED, "the plaintext is not a JSON object")
    kind = value.get("type")
    if kind == "text":
        text, action = value.get("text"), value.get("action", False)
        if not isinstance(text, str) or not isinstance(action, bool):
            raise CannotDecrypt(MALFORMED, "a text plaintext needs a string text")
        return TextMessage(text, action)
    if kind == "file":
        try:
            key, prefix = b64decode(value["key"]), b64decode(value["prefix"])
            name, offer, sha256, size = value["name"], value["offer"], value["sha256"], value["size"]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CannotDecrypt(MALFORMED, "a file plaintext lacks a field") from None
        if (len(key) != KEY_SIZE or len(prefix) != PREFIX_SIZE or not isinstance(name, str)
                or type(offer) is not int or type(size) is not int or size < 0 or not isinstance(sha256, str)
                or len(sha256) != 64 or sha256.strip("0123456789abcdef")):
            raise CannotDecrypt(MALFORMED, "a file plaintext has a field of the wrong shape")
        return FileMessage(key, prefix, name, offer, sha256, size)
    raise CannotDecrypt(UNSUPPORTED, "an unknown plaintext type")


# -- envelopes -----------------------------------------------------------------


def _header(sender: str, nonce: str, to: Mapping[str, str]) -> bytes:
    return canonical_json({"from": sender, "n": nonce, "to": dict(to), "v": VERSION})


def _signed(header: bytes, ciphertext: bytes) -> bytes:
    return SIGNATURE_LABEL + header + b"\n" + ciphertext


def seal(message: Plaintext, sender: Device, recipients: Mapping[str, bytes]) -> str:
    """
    Encrypt C{message} from C{sender} to each recipient device: a fresh
    message key and nonce, the key wrapped to each device with HPKE, the
    message under AES-256-GCM with the header as associated data, all
    signed with the sender's Ed25519 key (contract steps 1 to 6).

    @param recipients: device id to 64-byte bundle, for the recipient's
        devices and the sender's own other devices (the sender's own device
        may be included: it can then read its sent message back from the
        daemon's history).
    @return: the envelope, ASCII (b64url), the C{ENVELOPE} of C{/emsg}.
    @raise ValueError: no recipients, or a device id that is not that of
        its bundle (never wrap a key to a bundle under another's name).
    """
    if not recipients:
        raise ValueError("an envelope needs at least one recipient device")
    key = os.urandom(KEY_SIZE)
    nonce = os.urandom(NONCE_SIZE)
    to = {}
    for rid, bundle in recipients.items():
        if device_id(bundle) != rid:
            raise ValueError(f"device id {rid!r} is not that of its bundle")
        to[rid] = b64encode(_SUITE.encrypt(key, split_bundle(bundle)[0], info=WRAP_INFO))
    nonce_b64 = b64encode(nonce)
    header = _header(sender.device_id, nonce_b64, to)
    ciphertext = AESGCM(key).encrypt(nonce, encode_plaintext(message), header)
    signature = sender.ed25519.sign(_signed(header, ciphertext))
    return b64url_encode(canonical_json({"c": b64encode(ciphertext), "from": sender.device_id, "n": nonce_b64,
                                         "s": b64encode(signature), "to": to, "v": VERSION}))


@dataclass(frozen=True, slots=True)
class Envelope:
    """
    The parts of an envelope, decoded but not yet verified.

    @ivar sender: the sender's device id (C{"from"}).
    @ivar recipients: the device ids it is addressed to, sorted.
    """

    sender: str
    nonce: bytes
    wraps: Mapping[str, bytes]
    ciphertext: bytes
    signature: bytes
    header: bytes

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(sorted(self.wraps))


def parse_envelope(envelope: str) -> Envelope:
    """
    Decode an envelope and rebuild its header H, without any key.

    @raise CannotDecrypt: C{malformed}: not b64url of a JSON object with
        C{c}, C{from}, C{n}, C{s}, C{to} and C{"v": 1} of the right shapes.
    """
    try:
        value = json.loads(b64url_decode(envelope).decode("ascii"))
        if not isinstance(value, dict) or type(value.get("v")) is not int:
            raise ValueError("not an envelope")
        if value["v"] != VERSION:
            raise ValueError(f"envelope version {value['v']}")
        sender, nonce_b64, to = value["from"], value["n"], value["to"]
        if not isinstance(sender, str) or not isinstance(nonce_b64, str) or not isinstance(to, dict) or not to:
            raise ValueError("bad from, n or to")
        nonce = b64decode(nonce_b64)
        ciphertext, signature = b64decode(value["c"]), b64decode(value["s"])
        wraps = {rid: b64decode(wrap) for rid, wrap in to.items() if isinstance(wrap, str)}
        if (len(wraps) != len(to) or len(nonce) != NONCE_SIZE or len(signature) != 64
                or len(ciphertext) < TAG_SIZE or any(len(w) != WRAP_SIZE for w in wraps.values())):
            raise ValueError("a part of the wrong size")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise CannotDecrypt(MALFORMED, str(e)) from None
    return Envelope(sender, nonce, wraps, ciphertext, signature, _header(sender, nonce_b64, to))


def unwrap(wrap: bytes, device: Device) -> bytes:
    """
    The message key of a wrapped key C{wrap} (C{enc} || ciphertext, 80
    bytes) addressed to C{device}: HPKE base mode single-shot Open with
    info C{b"chat-e2e-v1 wrap"}, empty aad.

    @raise CannotDecrypt: C{corrupted}.
    """
    try:
        key = _SUITE.decrypt(wrap, device.x25519, info=WRAP_INFO)
    except (InvalidTag, ValueError):
        raise CannotDecrypt(CORRUPTED, "the wrapped key fails authentication") from None
    if len(key) != KEY_SIZE:
        raise CannotDecrypt(CORRUPTED, "a message key of the wrong size")
    return key


def open_envelope(envelope: str, device: Device, sender_bundle: Callable[[str], bytes | None]) -> Plaintext:
    """
    Verify and decrypt an envelope addressed to C{device} (the C{e2e} of a
    C{private} event).

    @param sender_bundle: called with the sender's device id; answers the
        64-byte bundle of that device among the sender nick's known keys
        (trust on first use, L{chat.client.keystore.ContactStore}), or
        C{None}. A bundle whose own device id is not the one asked for is
        treated as unknown.
    @raise CannotDecrypt: C{malformed}, C{not-for-this-device},
        C{unknown-sender-device}, C{bad-signature}, C{corrupted} or
        C{unsupported}, checked in that order.
    """
    parsed = parse_envelope(envelope)
    wrap = parsed.wraps.get(device.device_id)
    if wrap is None:
        raise CannotDecrypt(NOT_FOR_THIS_DEVICE, "no key for this device")
    bundle = sender_bundle(parsed.sender)
    if bundle is None or len(bundle) != BUNDLE_SIZE or device_id(bundle) != parsed.sender:
        raise CannotDecrypt(UNKNOWN_SENDER_DEVICE, "the sender's device is not among its known keys")
    try:
        split_bundle(bundle)[1].verify(parsed.signature, _signed(parsed.header, parsed.ciphertext))
    except InvalidSignature:
        raise CannotDecrypt(BAD_SIGNATURE, "the signature does not verify") from None
    key = unwrap(wrap, device)
    try:
        plaintext = AESGCM(key).decrypt(parsed.nonce, parsed.ciphertext, parsed.header)
    except (InvalidTag, ValueError):
        raise CannotDecrypt(CORRUPTED, "the message fails authentication") from None
    return decode_plaintext(plaintext)


# -- files (STREAM) ------------------------------------------------------------


def new_file_key() -> tuple[bytes, bytes]:
    """A fresh random file key (32 bytes) and nonce prefix (7 bytes)."""
    return os.urandom(KEY_SIZE), os.urandom(PREFIX_SIZE)


def chunk_count(size: int) -> int:
    """Chunks of a file of C{size} plaintext bytes: at least one (an empty file has one empty final chunk)."""
    return max(1, -(-size // CHUNK_SIZE))


def encrypted_size(size: int) -> int:
    """Bytes of the encrypted file of C{size} plaintext bytes: header, then every chunk with its tag."""
    return FILE_HEADER_SIZE + size + TAG_SIZE * chunk_count(size)


def encrypted_offset(chunk: int) -> int:
    """
    Where encrypted chunk C{chunk} (from 0) starts in the encrypted file, in
    bytes: plaintext chunk C{chunk} starts at C{chunk * CHUNK_SIZE}. A
    download resumed at chunk k asks the daemon for this offset and feeds
    a L{StreamDecryptor} made with C{first_chunk=k}.
    """
    return FILE_HEADER_SIZE + chunk * ENCRYPTED_CHUNK_SIZE


def resume_point(plaintext_done: int) -> tuple[int, int, int]:
    """
    Where to resume a download of which C{plaintext_done} bytes of
    plaintext were written: C{(chunk, plaintext offset to truncate the
    output to, encrypted offset to download from)}, the last whole chunk
    boundary at or before C{plaintext_done}. Before the end of chunk 0
    the download starts over from encrypted offset 0 (the header is then
    checked too): C{(0, 0, 0)}.
    """
    chunk = max(0, plaintext_done) // CHUNK_SIZE
    return chunk, chunk * CHUNK_SIZE, encrypted_offset(chunk) if chunk else 0


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= MAX_CHUNKS:
        raise ValueError("a file of more than 2**32 chunks")
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _check_file_key(key: bytes, prefix: bytes) -> None:
    if len(key) != KEY_SIZE or len(prefix) != PREFIX_SIZE:
        raise ValueError("a file key is 32 bytes and its prefix 7")


def _read_full(source: BinaryIO, size: int) -> bytes:
    parts = []
    while size > 0:
        part = source.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class EncryptedFile:
    """
    What L{encrypt_stream} wrote.

    @ivar size: plaintext bytes read.
    @ivar encrypted_size: encrypted bytes written (the size to offer).
    @ivar sha256: lower-case hex SHA-256 of the encrypted bytes (the
        C{sha256} to offer and to put in the L{FileMessage}).
    """

    size: int
    encrypted_size: int
    sha256: str


def encrypt_stream(source: BinaryIO, sink: BinaryIO, key: bytes, prefix: bytes) -> EncryptedFile:
    """
    Encrypt everything C{source} reads into C{sink}: L{FILE_MAGIC}, the
    prefix, then each 65536-byte chunk sealed with AES-256-GCM under nonce
    prefix || counter (4 bytes, big-endian) || final flag, no associated
    data. Reads one chunk ahead to know the last one; memory stays within
    two chunks whatever the size.

    @raise ValueError: a key or prefix of the wrong size.
    """
    _check_file_key(key, prefix)
    aead = AESGCM(key)
    digest = hashlib.sha256()
    written = 0

    def write(data: bytes) -> None:
        nonlocal written
        sink.write(data)
        digest.update(data)
        written += len(data)

    write(FILE_MAGIC + prefix)
    size = 0
    index = 0
    chunk = _read_full(source, CHUNK_SIZE)
    while True:
        following = _read_full(source, CHUNK_SIZE) if len(chunk) == CHUNK_SIZE else b""
        last = not following
        write(aead.encrypt(_nonce(prefix, index, last), chunk, None))
        size += len(chunk)
        if last:
            return EncryptedFile(size, written, digest.hexdigest())
        chunk = following
        index += 1


class StreamDecryptor:
    """
    Decrypts an encrypted file fed in pieces of any size (as a download
    arrives), in bounded memory (at most one encrypted chunk plus a piece
    is held), giving plaintext only once its chunk has authenticated.

    @ivar chunk: the index of the next chunk to decrypt.
    @ivar size: plaintext bytes given out so far (from C{first_chunk}).
    """

    def __init__(self, key: bytes, prefix: bytes, first_chunk: int = 0) -> None:
        """
        @param first_chunk: 0 to decrypt from the start of the file, byte 0
            (its magic and prefix are checked), or k > 0 to resume from
            encrypted offset L{encrypted_offset}(k) (no header is expected).
        @raise ValueError: a key or prefix of the wrong size.
        """
        _check_file_key(key, prefix)
        self._aead = AESGCM(key)
        self._prefix = prefix
        self._header = first_chunk == 0
        self._buffer = bytearray()
        self._done = False
        self.chunk = first_chunk
        self.size = 0

    def feed(self, data: bytes) -> bytes:
        """
        Take more encrypted bytes; answer the plaintext of every chunk now
        known not to be the last (possibly C{b""}).

        @raise CannotDecrypt: C{corrupted} (a wrong header, prefix, or a
            chunk that fails authentication) or C{malformed} (data after
            the end).
        """
        if self._done:
            raise CannotDecrypt(MALFORMED, "data after the end of the file")
        self._buffer += data
        if self._header:
            if len(self._buffer) < FILE_HEADER_SIZE:
                return b""
            if bytes(self._buffer[:FILE_HEADER_SIZE]) != FILE_MAGIC + self._prefix:
                raise CannotDecrypt(CORRUPTED, "not an encrypted file with this prefix")
            del self._buffer[:FILE_HEADER_SIZE]
            self._header = False
        out = []
        # A whole chunk is not the last only if more bytes follow it.
        while len(self._buffer) > ENCRYPTED_CHUNK_SIZE:
            out.append(self._open(bytes(self._buffer[:ENCRYPTED_CHUNK_SIZE]), last=False))
            del self._buffer[:ENCRYPTED_CHUNK_SIZE]
        return b"".join(out)

    def finish(self) -> bytes:
        """
        The end of the encrypted bytes: answer the plaintext of the final
        chunk.

        @raise CannotDecrypt: C{truncated} (the file stops before its final
            chunk) or C{corrupted}.
        """
        if self._header:
            raise CannotDecrypt(TRUNCATED, "the file stops inside its header")
        chunk = bytes(self._buffer)
        if len(chunk) < TAG_SIZE:
            raise CannotDecrypt(TRUNCATED if not chunk else CORRUPTED, "the file stops before its final chunk")
        try:
            plaintext = self._open(chunk, last=True)
        except CannotDecrypt:
            try:
                self._aead.decrypt(_nonce(self._prefix, self.chunk, False), chunk, None)
            except InvalidTag:
                raise CannotDecrypt(CORRUPTED, f"chunk {self.chunk} fails authentication") from None
            raise CannotDecrypt(TRUNCATED, "the file stops before its final chunk") from None
        self._buffer.clear()
        self._done = True
        return plaintext

    def _open(self, chunk: bytes, last: bool) -> bytes:
        try:
            plaintext = self._aead.decrypt(_nonce(self._prefix, self.chunk, last), chunk, None)
        except (InvalidTag, ValueError):
            raise CannotDecrypt(CORRUPTED, f"chunk {self.chunk} fails authentication") from None
        self.chunk += 1
        self.size += len(plaintext)
        return plaintext


def decrypt_stream(source: BinaryIO, sink: BinaryIO, key: bytes, prefix: bytes, first_chunk: int = 0) -> int:
    """
    Decrypt everything C{source} reads (from the start of the encrypted
    file, or from L{encrypted_offset}(C{first_chunk}) when resuming) into
    C{sink}, a chunk at a time; C{sink} gets only authenticated plaintext,
    but on an error may already hold the chunks before the bad one (the
    caller discards the output).

    @return: plaintext bytes written.
    @raise CannotDecrypt: C{corrupted} (changed, reordered or foreign
        chunks, a wrong key) or C{truncated}.
    @raise ValueError: a key or prefix of the wrong size.
    """
    decryptor = StreamDecryptor(key, prefix, first_chunk)
    while True:
        data = source.read(ENCRYPTED_CHUNK_SIZE)
        if not data:
            break
        sink.write(decryptor.feed(data))
    sink.write(decryptor.finish())
    return decryptor.size

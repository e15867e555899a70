"""
Tests for L{chat.client.crypto} (device keys, envelopes, encrypted files)
and L{chat.client.keystore} (the device file and the known contacts), and
the shared test vectors tests/vectors/e2e-v1.json that the browser's tests
check too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import io
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any
from unittest import skipIf

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from twisted.trial.unittest import SynchronousTestCase

from chat.client import crypto, keystore
from chat.client.crypto import (
    CHUNK_SIZE,
    ENCRYPTED_CHUNK_SIZE,
    FILE_HEADER_SIZE,
    CannotDecrypt,
    Device,
    FileMessage,
    StreamDecryptor,
    TextMessage,
    decrypt_stream,
    encrypt_stream,
    encrypted_offset,
    open_envelope,
    seal,
)
from chat.client.keystore import ContactStore, KeyFileError, load_device, write_private

VECTORS_DIR = Path(__file__).with_name("vectors")
VECTORS: dict[str, Any] = json.loads((VECTORS_DIR / "e2e-v1.json").read_text(encoding="ascii"))
POSIX = os.name == "posix"


def pattern(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def vector_device(name: str) -> Device:
    entry = VECTORS["devices"][name]
    return Device.from_private_bytes(bytes.fromhex(entry["x25519_private_hex"]),
                                     bytes.fromhex(entry["ed25519_private_hex"]))


def lookup(*devices: Device) -> Any:
    bundles = {device.device_id: device.bundle for device in devices}
    return bundles.get


def encrypt(plaintext: bytes, key: bytes, prefix: bytes) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plaintext), out, key, prefix)
    return out.getvalue()


def decrypt(encrypted: bytes, key: bytes, prefix: bytes, first_chunk: int = 0) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(encrypted), out, key, prefix, first_chunk)
    return out.getvalue()


class ShortReads(io.RawIOBase):
    """A readable file that answers at most 1000 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 1000) if size >= 0 else 1000)


class VectorTests(SynchronousTestCase):
    """The shared vectors, checked from their private keys."""

    def setUp(self) -> None:
        self.devices = {name: vector_device(name) for name in VECTORS["devices"]}
        self.file_key = bytes.fromhex(VECTORS["file_key_hex"])
        self.file_prefix = bytes.fromhex(VECTORS["file_prefix_hex"])
        self.files = {vector["name"]: vector for vector in VECTORS["files"]}

    def test_devices(self) -> None:
        """Each vector device's bundle, device id and fingerprint follow from its private keys."""
        for name, entry in VECTORS["devices"].items():
            device = self.devices[name]
            self.assertEqual((device.published_key(), device.device_id, device.fingerprint),
                             (entry["bundle"], entry["device_id"], entry["fingerprint"]), name)

    def test_envelopes_open(self) -> None:
        """Each vector envelope opens on bob-1 and alice-2 to its plaintext, with its header H and message key."""
        sender = lookup(self.devices["alice-1"])
        for vector in VECTORS["envelopes"]:
            parsed = crypto.parse_envelope(vector["envelope"])
            self.assertEqual(parsed.header, vector["header"].encode("ascii"))
            key = bytes.fromhex(vector["message_key_hex"])
            alice2 = self.devices["alice-2"]
            self.assertEqual(crypto.unwrap(parsed.wraps[alice2.device_id], alice2), key)
            plaintext = AESGCM(key).decrypt(parsed.nonce, parsed.ciphertext, parsed.header)
            self.assertEqual(plaintext, crypto.b64decode(vector["plaintext_b64"]))
            for name in vector["to"]:
                opened = open_envelope(vector["envelope"], self.devices[name], sender)
                self.assertEqual(json.loads(crypto.encode_plaintext(opened)), vector["plaintext"])
                self.assertEqual(crypto.encode_plaintext(opened), crypto.b64decode(vector["plaintext_b64"]))
        self.assertEqual(VECTORS["envelopes"][1]["plaintext"], {"action": True, "text": "waves 👋", "type": "text"})

    def test_envelope_failures(self) -> None:
        """Each negative envelope vector fails with its expected reason."""
        self.assertEqual(len(VECTORS["envelope_failures"]), 8)
        for vector in VECTORS["envelope_failures"]:
            known = lookup(*(self.devices[name] for name in vector["sender_keys"]))
            with self.assertRaises(CannotDecrypt, msg=vector["name"]) as caught:
                open_envelope(vector["envelope"], self.devices[vector["open_with"]], known)
            self.assertEqual(caught.exception.reason, vector["expect"], vector["name"])

    def test_files_encrypt(self) -> None:
        """Encrypting each file vector's plaintext with the fixed key and prefix gives its size, hash and bytes."""
        for vector in VECTORS["files"]:
            plaintext = pattern(vector["plaintext_size"])
            self.assertEqual(hashlib.sha256(plaintext).hexdigest(), vector["plaintext_sha256"])
            encrypted = encrypt(plaintext, self.file_key, self.file_prefix)
            self.assertEqual((len(encrypted), hashlib.sha256(encrypted).hexdigest()),
                             (vector["encrypted_size"], vector["encrypted_sha256"]), vector["name"])
            self.assertEqual(crypto.chunk_count(len(plaintext)), vector["chunks"])
            if "encrypted_b64" in vector:
                self.assertEqual(encrypted, crypto.b64decode(vector["encrypted_b64"]))

    def test_files_decrypt(self) -> None:
        """The given encrypted bytes of the file vectors decrypt to their plaintext."""
        for name in ("two-chunks", "empty"):
            vector = self.files[name]
            plaintext = decrypt(crypto.b64decode(vector["encrypted_b64"]), self.file_key, self.file_prefix)
            self.assertEqual(hashlib.sha256(plaintext).hexdigest(), vector["plaintext_sha256"])

    def test_file_message_envelope(self) -> None:
        """The file envelope carries the file vector's key, prefix and the encrypted file's hash and size."""
        opened = open_envelope(VECTORS["envelopes"][2]["envelope"], self.devices["bob-1"],
                               lookup(self.devices["alice-1"]))
        assert isinstance(opened, FileMessage)
        vector = self.files["two-chunks"]
        self.assertEqual((opened.key, opened.prefix, opened.sha256, opened.size, opened.offer, opened.name),
                         (self.file_key, self.file_prefix, vector["encrypted_sha256"], vector["plaintext_size"], 42,
                          "résumé.bin"))

    def test_file_failures(self) -> None:
        """Each negative file vector, made as its change says, has its hash and fails with its reason."""
        encrypted = crypto.b64decode(self.files["two-chunks"]["encrypted_b64"])
        chunk1 = encrypted_offset(1)
        flipped = bytearray(encrypted)
        flipped[1000] ^= 1
        changed = {
            "flipped-byte": bytes(flipped),
            "missing-final-chunk": encrypted[:chunk1],
            "swapped-chunks": encrypted[:FILE_HEADER_SIZE] + encrypted[chunk1:] + encrypted[FILE_HEADER_SIZE:chunk1],
            "wrong-prefix-in-header": encrypted[:8] + bytes([encrypted[8] ^ 1]) + encrypted[9:],
        }
        self.assertEqual(sorted(changed), sorted(v["name"] for v in VECTORS["file_failures"]))
        for vector in VECTORS["file_failures"]:
            data = changed[vector["name"]]
            self.assertEqual(hashlib.sha256(data).hexdigest(), vector["encrypted_sha256"], vector["name"])
            with self.assertRaises(CannotDecrypt, msg=vector["name"]) as caught:
                decrypt(data, self.file_key, self.file_prefix)
            self.assertEqual(caught.exception.reason, vector["expect"], vector["name"])

    def test_resume(self) -> None:
        """Decrypting the vector file from its resume point's encrypted offset gives the rest of the plaintext."""
        resume = VECTORS["resume"]
        self.assertEqual(crypto.resume_point(resume["plaintext_offset"] + 5),
                         (resume["chunk"], resume["plaintext_offset"], resume["encrypted_offset"]))
        encrypted = crypto.b64decode(self.files[resume["file"]]["encrypted_b64"])
        rest = decrypt(encrypted[resume["encrypted_offset"]:], self.file_key, self.file_prefix, resume["chunk"])
        self.assertEqual(rest, pattern(self.files[resume["file"]]["plaintext_size"])[resume["plaintext_offset"]:])

    def test_generator_reproducible(self) -> None:
        """The generator rebuilds the same devices and file vectors, and envelopes that open to the same plaintexts."""
        spec = importlib.util.spec_from_file_location("make_e2e_vectors", VECTORS_DIR / "make_e2e_vectors.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rebuilt = module.build()
        for key in ("devices", "files", "file_failures", "resume", "file_key_hex", "file_prefix_hex"):
            self.assertEqual(rebuilt[key], VECTORS[key], key)
        self.assertEqual([(e["name"], e["plaintext"], e["plaintext_b64"]) for e in rebuilt["envelopes"]],
                         [(e["name"], e["plaintext"], e["plaintext_b64"]) for e in VECTORS["envelopes"]])
        self.assertEqual([(e["name"], e["expect"]) for e in rebuilt["envelope_failures"]],
                         [(e["name"], e["expect"]) for e in VECTORS["envelope_failures"]])


def rfc9180_open(wrap: bytes, device: Device, info: bytes) -> bytes:
    """
    HPKE base mode single-shot Open of RFC 9180 (DHKEM(X25519, HKDF-SHA256),
    HKDF-SHA256, AES-256-GCM, empty aad) written out from the RFC's
    sections 4.1, 5.1 and 5.2, as a browser composes it from WebCrypto.
    """
    def extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return hmac.new(salt, b"HPKE-v1" + suite + label + ikm, "sha256").digest()

    def expand(suite: bytes, prk: bytes, label: bytes, info: bytes, size: int) -> bytes:
        labeled = size.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info
        return HKDFExpand(hashes.SHA256(), size, labeled).derive(prk)

    enc, ciphertext = wrap[:32], wrap[32:]
    kem = b"KEM" + (0x0020).to_bytes(2, "big")
    dh = device.x25519.exchange(X25519PublicKey.from_public_bytes(enc))
    context = enc + device.bundle[:32]
    shared = expand(kem, extract(kem, b"", b"eae_prk", dh), b"shared_secret", context, 32)
    suite = b"HPKE" + (0x0020).to_bytes(2, "big") + (0x0001).to_bytes(2, "big") + (0x0002).to_bytes(2, "big")
    key_context = b"\x00" + extract(suite, b"", b"psk_id_hash", b"") + extract(suite, b"", b"info_hash", info)
    secret = extract(suite, shared, b"secret", b"")
    key = expand(suite, secret, b"key", key_context, 32)
    nonce = expand(suite, secret, b"base_nonce", key_context, 12)
    return AESGCM(key).decrypt(nonce, ciphertext, b"")


class HPKETests(SynchronousTestCase):
    """The key wrapping is RFC 9180 HPKE exactly, as the browser rebuilds it."""

    def test_wrap_is_rfc9180(self) -> None:
        """Each vector wrap opens with HPKE written out from RFC 9180 to the vector's message key."""
        for vector in VECTORS["envelopes"]:
            parsed = crypto.parse_envelope(vector["envelope"])
            for name in vector["to"]:
                device = vector_device(name)
                self.assertEqual(rfc9180_open(parsed.wraps[device.device_id], device, crypto.WRAP_INFO).hex(),
                                 vector["message_key_hex"])

    def test_wrong_info_fails(self) -> None:
        """The written-out Open fails with another info string, so the check above depends on the info."""
        parsed = crypto.parse_envelope(VECTORS["envelopes"][0]["envelope"])
        bob = vector_device("bob-1")
        self.assertRaises(InvalidTag, rfc9180_open, parsed.wraps[bob.device_id], bob, b"chat-e2e-v2 wrap")


class DeviceTests(SynchronousTestCase):
    """Device keys, ids and fingerprints."""

    def test_shapes(self) -> None:
        """A bundle is 64 bytes, a device id 16 b64url characters, a fingerprint six groups of five digits."""
        device = Device.generate()
        self.assertEqual(len(device.bundle), 64)
        self.assertRegex(device.device_id, r"\A[A-Za-z0-9_-]{16}\Z")
        self.assertRegex(device.fingerprint, r"\A\d{5}( \d{5}){5}\Z")
        self.assertEqual(crypto.decode_bundle(device.published_key()), device.bundle)

    def test_fingerprint_digits(self) -> None:
        """The fingerprint groups are 5-byte big-endian slices of the labelled SHA-256, modulo 100000."""
        bundle = bytes(range(64))
        digest = hashlib.sha256(b"chat-e2e-v1 fingerprint" + bundle).digest()
        self.assertEqual(crypto.fingerprint(bundle).split(" ")[2],
                         f"{int.from_bytes(digest[10:15], 'big') % 100000:05d}")
        self.assertEqual(crypto.device_id(bundle), base64.urlsafe_b64encode(digest[:12]).decode())

    def test_private_bytes_round_trip(self) -> None:
        """A device rebuilt from its private bytes has the same bundle."""
        device = Device.generate()
        self.assertEqual(Device.from_private_bytes(*device.private_bytes()).bundle, device.bundle)

    def test_bad_bundle(self) -> None:
        """A published key that is not base64 of 64 bytes is refused."""
        for text in ("", "AAAA", base64.b64encode(bytes(63)).decode(), "not base64!"):
            self.assertRaises(ValueError, crypto.decode_bundle, text)


class EnvelopeTests(SynchronousTestCase):
    """Sealing and opening private messages."""

    def setUp(self) -> None:
        self.alice, self.alice2, self.bob, self.eve = (Device.generate() for _ in range(4))
        self.to = {self.bob.device_id: self.bob.bundle, self.alice2.device_id: self.alice2.bundle}

    def test_round_trip(self) -> None:
        """Every recipient device opens a sealed text, action and file message to what was sealed."""
        messages = [TextMessage("héllo ☃ \x00 \U0001f512"), TextMessage("waves", action=True),
                    FileMessage(bytes(32), bytes(7), "a.txt", 3, "ab" * 32, 0)]
        for message in messages:
            envelope = seal(message, self.alice, self.to)
            for device in (self.bob, self.alice2):
                self.assertEqual(open_envelope(envelope, device, lookup(self.alice)), message)

    def test_canonical_form(self) -> None:
        """An envelope is unpadded b64url of canonical ASCII JSON with exactly the contract's keys."""
        envelope = seal(TextMessage("x"), self.alice, self.to)
        self.assertRegex(envelope, r"\A[A-Za-z0-9_-]+\Z")
        raw = crypto.b64url_decode(envelope)
        value = json.loads(raw)
        self.assertEqual(raw, json.dumps(value, sort_keys=True, separators=(",", ":")).encode("ascii"))
        self.assertEqual(sorted(value), ["c", "from", "n", "s", "to", "v"])
        self.assertEqual((value["v"], value["from"], sorted(value["to"])),
                         (1, self.alice.device_id, sorted(self.to)))
        self.assertEqual({len(crypto.b64decode(w)) for w in value["to"].values()}, {80})

    def test_canonical_plaintext(self) -> None:
        """A text plaintext is canonical JSON with non-ASCII escaped, and an action adds action true."""
        self.assertEqual(crypto.encode_plaintext(TextMessage("é", action=True)),
                         b'{"action":true,"text":"\\u00e9","type":"text"}')

    def test_fresh_randomness(self) -> None:
        """Sealing the same message twice gives different envelopes."""
        self.assertNotEqual(seal(TextMessage("x"), self.alice, self.to), seal(TextMessage("x"), self.alice, self.to))

    def test_not_for_this_device(self) -> None:
        """A device the envelope is not addressed to cannot open it, and says why."""
        envelope = seal(TextMessage("x"), self.alice, self.to)
        with self.assertRaises(CannotDecrypt) as caught:
            open_envelope(envelope, self.eve, lookup(self.alice))
        self.assertEqual(caught.exception.reason, crypto.NOT_FOR_THIS_DEVICE)

    def test_sender_bundle_under_another_id(self) -> None:
        """A lookup answering a bundle that is not the sender device's own counts as an unknown sender."""
        envelope = seal(TextMessage("x"), self.alice, self.to)
        with self.assertRaises(CannotDecrypt) as caught:
            open_envelope(envelope, self.bob, lambda device: self.eve.bundle)
        self.assertEqual(caught.exception.reason, crypto.UNKNOWN_SENDER_DEVICE)

    def test_forged_sender(self) -> None:
        """An envelope sealed by eve but claiming alice's device id fails the signature check."""
        envelope = seal(TextMessage("x"), self.eve, self.to)
        value = json.loads(crypto.b64url_decode(envelope))
        value["from"] = self.alice.device_id
        with self.assertRaises(CannotDecrypt) as caught:
            open_envelope(crypto.b64url_encode(crypto.canonical_json(value)), self.bob, lookup(self.alice))
        self.assertEqual(caught.exception.reason, crypto.BAD_SIGNATURE)

    def test_malformed(self) -> None:
        """Strings that are not envelopes v1 fail as malformed."""
        good = json.loads(crypto.b64url_decode(seal(TextMessage("x"), self.alice, self.to)))
        bad = ["", "!!!!", crypto.b64url_encode(b"[]"), crypto.b64url_encode(b"{}"),
               crypto.b64url_encode(crypto.canonical_json({**good, "n": "AAAA"})),
               crypto.b64url_encode(crypto.canonical_json({**good, "to": {}})),
               crypto.b64url_encode(crypto.canonical_json({**good, "v": True})),
               crypto.b64url_encode(crypto.canonical_json(good)) + "="]
        for envelope in bad:
            with self.assertRaises(CannotDecrypt, msg=envelope) as caught:
                open_envelope(envelope, self.bob, lookup(self.alice))
            self.assertEqual(caught.exception.reason, crypto.MALFORMED, envelope)

    def test_seal_refuses_mislabelled_bundle(self) -> None:
        """Sealing refuses a recipient whose device id is not that of its bundle, and an empty recipient list."""
        self.assertRaises(ValueError, seal, TextMessage("x"), self.alice, {self.bob.device_id: self.eve.bundle})
        self.assertRaises(ValueError, seal, TextMessage("x"), self.alice, {})

    def test_plaintext_shapes(self) -> None:
        """Plaintexts of an unknown type are unsupported, and of a wrong shape malformed."""
        self.assertEqual(crypto.decode_plaintext(b'{"type":"text","text":"a"}'), TextMessage("a"))
        cases = {b'{"type":"poll"}': crypto.UNSUPPORTED, b'{"type":"text"}': crypto.MALFORMED,
                 b'{"type":"text","text":"a","action":1}': crypto.MALFORMED, b"[1]": crypto.MALFORMED,
                 b"\xff": crypto.MALFORMED,
                 b'{"type":"file","key":"AAAA","prefix":"AAAAAAAAAA==","name":"a","offer":1,"sha256":"0","size":1}':
                     crypto.MALFORMED}
        for data, reason in cases.items():
            with self.assertRaises(CannotDecrypt, msg=repr(data)) as caught:
                crypto.decode_plaintext(data)
            self.assertEqual(caught.exception.reason, reason, repr(data))


class FileTests(SynchronousTestCase):
    """Encrypted files in chunks (STREAM)."""

    def setUp(self) -> None:
        self.key, self.prefix = crypto.new_file_key()

    def test_round_trip_sizes(self) -> None:
        """Files of sizes around the chunk size come back whole, read in short pieces, with the right sizes."""
        for size in (0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5):
            plaintext = os.urandom(size)
            out = io.BytesIO()
            info = encrypt_stream(ShortReads(plaintext), out, self.key, self.prefix)  # type: ignore[arg-type]
            encrypted = out.getvalue()
            self.assertEqual((info.size, info.encrypted_size, len(encrypted)),
                             (size, crypto.encrypted_size(size), crypto.encrypted_size(size)), size)
            self.assertEqual(info.sha256, hashlib.sha256(encrypted).hexdigest())
            self.assertEqual(encrypted[:FILE_HEADER_SIZE], b"CHATE2E1" + self.prefix)
            self.assertEqual(decrypt(encrypted, self.key, self.prefix), plaintext, size)

    def test_incremental_bounded(self) -> None:
        """Fed in small pieces, the decryptor gives out each chunk once the next begins and holds at most one chunk."""
        plaintext = os.urandom(3 * CHUNK_SIZE + 10)
        encrypted = encrypt(plaintext, self.key, self.prefix)
        decryptor = StreamDecryptor(self.key, self.prefix)
        out = []
        for start in range(0, len(encrypted), 7000):
            out.append(decryptor.feed(encrypted[start:start + 7000]))
            self.assertLessEqual(len(decryptor._buffer), ENCRYPTED_CHUNK_SIZE + 7000)
            if start + 7000 <= encrypted_offset(1):
                self.assertEqual(out[-1], b"")
        out.append(decryptor.finish())
        self.assertEqual(b"".join(out), plaintext)
        self.assertEqual((decryptor.chunk, decryptor.size), (4, len(plaintext)))
        self.assertRaises(CannotDecrypt, decryptor.feed, b"x")

    def test_resume_from_any_chunk(self) -> None:
        """Decrypting from a resume point's encrypted offset and chunk gives the plaintext from its offset on."""
        plaintext = os.urandom(4 * CHUNK_SIZE + 3)
        encrypted = encrypt(plaintext, self.key, self.prefix)
        for done in (0, CHUNK_SIZE - 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 7, 3 * CHUNK_SIZE, 4 * CHUNK_SIZE + 2):
            chunk, plaintext_offset, offset = crypto.resume_point(done)
            self.assertEqual(decrypt(encrypted[offset:], self.key, self.prefix, chunk),
                             plaintext[plaintext_offset:], done)

    def test_resume_at_wrong_chunk(self) -> None:
        """Bytes of chunk 2 fed as if they were chunk 1 fail authentication."""
        encrypted = encrypt(os.urandom(3 * CHUNK_SIZE), self.key, self.prefix)
        self.assertRaises(CannotDecrypt, decrypt, encrypted[encrypted_offset(2):], self.key, self.prefix, 1)

    def test_truncation(self) -> None:
        """A file cut at a chunk boundary is truncated; cut inside a chunk or extended, it is corrupted."""
        encrypted = encrypt(os.urandom(2 * CHUNK_SIZE + 1), self.key, self.prefix)
        cases = {encrypted[:encrypted_offset(2)]: crypto.TRUNCATED, encrypted[:encrypted_offset(1)]: crypto.TRUNCATED,
                 encrypted[:FILE_HEADER_SIZE]: crypto.TRUNCATED, encrypted[:5]: crypto.TRUNCATED,
                 encrypted[:-1]: crypto.CORRUPTED, encrypted + bytes(20): crypto.CORRUPTED}
        for data, reason in cases.items():
            with self.assertRaises(CannotDecrypt, msg=len(data)) as caught:
                decrypt(data, self.key, self.prefix)
            self.assertEqual(caught.exception.reason, reason, len(data))

    def test_reordering_and_foreign_chunks(self) -> None:
        """Swapped chunks, a chunk from another file, or the wrong key fail as corrupted."""
        plaintext = os.urandom(3 * CHUNK_SIZE)
        encrypted = encrypt(plaintext, self.key, self.prefix)
        chunks = [encrypted[encrypted_offset(i):encrypted_offset(i + 1)] for i in range(3)]
        header = encrypted[:FILE_HEADER_SIZE]
        other_prefix = bytes(b ^ 1 for b in self.prefix)
        other = encrypt(plaintext, self.key, other_prefix)
        cases = [(header + chunks[1] + chunks[0] + chunks[2], self.key),
                 (header + other[encrypted_offset(0):encrypted_offset(1)] + chunks[1] + chunks[2], self.key),
                 (encrypted, os.urandom(32))]
        for data, key in cases:
            with self.assertRaises(CannotDecrypt) as caught:
                decrypt(data, key, self.prefix)
            self.assertEqual(caught.exception.reason, crypto.CORRUPTED)

    def test_offsets(self) -> None:
        """Chunk k starts at 15 + k * 65552; resume points fall on chunk boundaries, chunk 0 from byte 0."""
        self.assertEqual([encrypted_offset(k) for k in range(3)], [15, 15 + 65552, 15 + 2 * 65552])
        self.assertEqual(crypto.resume_point(CHUNK_SIZE - 1), (0, 0, 0))
        self.assertEqual(crypto.resume_point(2 * CHUNK_SIZE), (2, 2 * CHUNK_SIZE, 15 + 2 * 65552))
        self.assertEqual(crypto.encrypted_size(0), 31)


class TemporaryFolder(SynchronousTestCase):
    def setUp(self) -> None:
        made = tempfile.TemporaryDirectory()
        self.addCleanup(made.cleanup)
        self.folder = Path(made.name)


class DeviceFileTests(TemporaryFolder):
    """This installation's device file."""

    def test_default_path(self) -> None:
        """The device file lives in the clients' config folder, the contacts file in the data folder."""
        from chat.client.settings import config_dir, data_dir
        self.assertEqual(keystore.device_path(), config_dir() / "device.json")
        self.assertEqual(keystore.contacts_path(), data_dir() / "contacts.json")

    def test_created_once(self) -> None:
        """The first load makes and saves a device; later loads give the same device."""
        path = self.folder / "config" / "device.json"
        device = load_device(path)
        self.assertTrue(path.exists())
        self.assertEqual(load_device(path).bundle, device.bundle)
        self.assertNotIn(device.private_bytes()[0].hex(), repr(device))

    @skipIf(not POSIX, "POSIX permissions")
    def test_owner_only_even_with_open_umask(self) -> None:
        """With umask 0 the device file and its folder are still owner-only, made with O_CREAT|O_EXCL mode 0600."""
        calls = []
        real_open = os.open

        def recording_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
            fd = real_open(path, flags, mode, **kwargs)
            calls.append((flags, mode, stat.S_IMODE(os.fstat(fd).st_mode)))
            return fd

        self.patch(keystore.os, "open", recording_open)
        old = os.umask(0)
        try:
            path = self.folder / "config" / "device.json"
            load_device(path)
        finally:
            os.umask(old)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(path.parent.stat().st_mode), 0o700)
        flags, mode, created = calls[0]
        self.assertEqual((flags & (os.O_CREAT | os.O_EXCL), mode, created), (os.O_CREAT | os.O_EXCL, 0o600, 0o600))
        self.assertEqual([p.name for p in path.parent.iterdir()], ["device.json"])

    @skipIf(not POSIX, "POSIX permissions")
    def test_loose_permissions_tightened(self) -> None:
        """A device file others can read is made owner-only when loaded."""
        path = self.folder / "device.json"
        device = load_device(path)
        os.chmod(path, 0o644)
        self.assertEqual(load_device(path).bundle, device.bundle)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)

    def test_damaged_file_kept(self) -> None:
        """A device file that is not a device raises KeyFileError and is not replaced by a new device."""
        path = self.folder / "device.json"
        path.write_text("{not json")
        self.assertRaises(KeyFileError, load_device, path)
        self.assertEqual(path.read_text(), "{not json")

    def test_no_overwrite(self) -> None:
        """Writing without replace leaves an existing file alone and reports it; with replace it is replaced."""
        path = self.folder / "f"
        self.assertTrue(write_private(path, b"one", replace=False))
        self.assertFalse(write_private(path, b"two", replace=False))
        self.assertEqual(path.read_bytes(), b"one")
        self.assertTrue(write_private(path, b"three", replace=True))
        self.assertEqual(path.read_bytes(), b"three")
        self.assertEqual(sorted(p.name for p in self.folder.iterdir()), ["f"])


class ContactStoreTests(TemporaryFolder):
    """Trust on first use: the known contacts' devices."""

    def setUp(self) -> None:
        super().setUp()
        self.path = self.folder / "data" / "contacts.json"
        self.store = ContactStore.load(self.path)
        self.phone, self.laptop, self.other = (Device.generate() for _ in range(3))

    def test_first_use(self) -> None:
        """An unknown contact's devices are all new on first use, with nothing to confirm."""
        changes = self.store.compare("Bob", [self.phone.bundle, self.laptop.bundle])
        self.assertTrue(changes.first_use)
        self.assertEqual(changes.new, tuple(sorted([self.phone.device_id, self.laptop.device_id])))
        self.assertFalse(changes.needs_confirmation)

    def test_added_device(self) -> None:
        """A device added beside the known ones is new, not changed, and needs no confirmation if unverified."""
        self.store.accept("bob", [self.phone.bundle])
        changes = self.store.compare("BOB", [self.phone.bundle, self.laptop.bundle])
        self.assertEqual((changes.first_use, changes.unchanged, changes.new, changes.changed, changes.removed),
                         (False, (self.phone.device_id,), (self.laptop.device_id,), (), ()))
        self.assertFalse(changes.needs_confirmation)

    def test_replaced_device(self) -> None:
        """A known device gone and an unknown one published is a change that needs confirmation."""
        self.store.accept("bob", [self.phone.bundle, self.laptop.bundle])
        changes = self.store.compare("bob", [self.phone.bundle, self.other.bundle])
        self.assertEqual((changes.unchanged, changes.new, changes.changed, changes.removed),
                         ((self.phone.device_id,), (), (self.other.device_id,), (self.laptop.device_id,)))
        self.assertTrue(changes.needs_confirmation)

    def test_removed_only(self) -> None:
        """A known device gone with nothing new is a removal, nothing to confirm."""
        self.store.accept("bob", [self.phone.bundle, self.laptop.bundle])
        changes = self.store.compare("bob", [self.phone.bundle])
        self.assertEqual((changes.new, changes.changed, changes.removed), ((), (), (self.laptop.device_id,)))
        self.assertFalse(changes.needs_confirmation)

    def test_verified_contact_new_device(self) -> None:
        """For a verified contact even an added device needs confirmation; trust survives accepting the same devices."""
        self.store.accept("bob", [self.phone.bundle])
        self.assertFalse(self.store.is_verified("bob"))
        self.assertTrue(self.store.trust("Bob"))
        self.assertTrue(self.store.compare("bob", [self.phone.bundle, self.laptop.bundle]).needs_confirmation)
        self.store.accept("bob", [self.phone.bundle, self.laptop.bundle])
        self.assertEqual({did: d.verified for did, d in self.store.devices("bob").items()},
                         {self.phone.device_id: True, self.laptop.device_id: False})
        self.assertFalse(self.store.is_verified("bob"))
        self.assertFalse(self.store.trust("nobody"))
        self.assertEqual(self.store.devices("nobody"), {})

    def test_saved_owner_only(self) -> None:
        """The store survives a save and a load, and its file is owner-only."""
        self.store.accept("Bob", [self.phone.bundle])
        self.store.trust("bob")
        self.store.save()
        loaded = ContactStore.load(self.path)
        known = keystore.KnownDevice(self.phone.bundle, True)
        self.assertEqual(loaded.contacts, {"bob": {self.phone.device_id: known}})
        if POSIX:
            self.assertEqual(stat.S_IMODE(self.path.stat().st_mode), 0o600)

    def test_load_drops_mislabelled(self) -> None:
        """An entry whose device id is not that of its bundle is dropped on load; a damaged file raises."""
        entry = {"bundle": crypto.b64encode(self.phone.bundle), "verified": True}
        self.path.parent.mkdir(parents=True)
        self.path.write_text(json.dumps({"v": 1, "contacts": {"bob": {self.other.device_id: entry}}}))
        self.assertEqual(ContactStore.load(self.path).devices("bob"), {})
        self.path.write_text("[]")
        self.assertRaises(KeyFileError, ContactStore.load, self.path)

    def test_bad_bundle(self) -> None:
        """A keys answer with an invalid bundle is refused."""
        self.assertRaises(ValueError, self.store.compare, "bob", [bytes(10)])
        self.assertRaises(ValueError, self.store.accept, "bob", [bytes(10)])

    def test_opens_with_store(self) -> None:
        """Envelopes open with the store's bundle lookup only from accepted devices of the sender."""
        me = Device.generate()
        envelope = seal(TextMessage("hi"), self.phone, {me.device_id: me.bundle})
        with self.assertRaises(CannotDecrypt) as caught:
            open_envelope(envelope, me, lambda did: self.store.bundle("bob", did))
        self.assertEqual(caught.exception.reason, crypto.UNKNOWN_SENDER_DEVICE)
        self.store.accept("bob", [self.phone.bundle])
        self.assertEqual(open_envelope(envelope, me, lambda did: self.store.bundle("Bob", did)), TextMessage("hi"))


def test_reasons_documented() -> None:
    """Every failure reason appears in the envelope section of docs/protocol.md."""
    text = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    missing = [reason for reason in crypto.REASONS if not re.search(f"`{reason}`", text)]
    assert not missing, missing

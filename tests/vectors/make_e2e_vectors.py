"""
Write tests/vectors/e2e-v1.json, the test vectors of the end-to-end envelope
contract v1 (docs/protocol.md section 11) that the Python tests
(tests/test_client_crypto.py) and the browser's tests both check.

Run from the repository's root: C{python tests/vectors/make_e2e_vectors.py}.
Everything is reproducible from fixed seeds except an envelope's random
message key, nonce and HPKE ephemeral keys, which the written envelopes
capture; the file vectors are fully deterministic.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

from chat.client import crypto
from chat.client.crypto import Device, FileMessage, TextMessage

OUTPUT = Path(__file__).with_name("e2e-v1.json")

DEVICES = {"alice-1": "alice", "alice-2": "alice", "bob-1": "bob"}
"""The vectors' devices and their owners' nicks."""

FILE_KEY = hashlib.sha256(b"chat-e2e-v1 test vector file key").digest()
FILE_PREFIX = hashlib.sha256(b"chat-e2e-v1 test vector file prefix").digest()[:crypto.PREFIX_SIZE]


def private_keys(name: str) -> tuple[bytes, bytes]:
    """The fixed X25519 and Ed25519 private keys of vector device C{name}."""
    return (hashlib.sha256(f"chat-e2e-v1 test vector {name} x25519".encode()).digest(),
            hashlib.sha256(f"chat-e2e-v1 test vector {name} ed25519".encode()).digest())


def pattern(size: int) -> bytes:
    """The plaintext of a file vector: bytes(range(256)) repeated, cut to C{size} bytes."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def encrypt(plaintext: bytes) -> bytes:
    """The encrypted file of C{plaintext} under the vectors' file key and prefix."""
    out = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(plaintext), out, FILE_KEY, FILE_PREFIX)
    return out.getvalue()


def plaintext_object(message: crypto.Plaintext) -> Any:
    return json.loads(crypto.encode_plaintext(message))


def resign(sender: Device, value: dict[str, Any]) -> str:
    """Re-sign an envelope's JSON object (after a change) exactly as the contract says, and encode it."""
    header = crypto.canonical_json({"from": value["from"], "n": value["n"], "to": value["to"], "v": value["v"]})
    value["s"] = crypto.b64encode(sender.ed25519.sign(
        crypto.SIGNATURE_LABEL + header + b"\n" + crypto.b64decode(value["c"])))
    return crypto.b64url_encode(crypto.canonical_json(value))


def decoded(envelope: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(crypto.b64url_decode(envelope))
    return value


def flip(text: str, offset: int) -> str:
    """C{text} (base64) with the byte at C{offset} of what it encodes XORed with 1."""
    data = bytearray(crypto.b64decode(text))
    data[offset] ^= 1
    return crypto.b64encode(bytes(data))


def build() -> dict[str, Any]:
    """All the vectors, as the JSON object written."""
    devices = {name: Device.from_private_bytes(*private_keys(name)) for name in DEVICES}
    alice1, alice2, bob1 = devices["alice-1"], devices["alice-2"], devices["bob-1"]
    recipients = {bob1.device_id: bob1.bundle, alice2.device_id: alice2.bundle}

    two_chunks = pattern(crypto.CHUNK_SIZE + 100)
    two_chunks_encrypted = encrypt(two_chunks)
    file_sha256 = hashlib.sha256(two_chunks_encrypted).hexdigest()
    messages = [
        ("text-non-ascii", TextMessage("Grüße, Zoë! ☕ 日本語 🔐 \"quoted\" \\ back\nslash")),
        ("action", TextMessage("waves 👋", action=True)),
        ("file", FileMessage(FILE_KEY, FILE_PREFIX, "résumé.bin", 42, file_sha256, len(two_chunks))),
    ]
    envelopes = [{"name": name, "from": "alice-1", "to": ["alice-2", "bob-1"],
                  "envelope": crypto.seal(message, alice1, recipients),
                  "plaintext": plaintext_object(message),
                  "plaintext_b64": crypto.b64encode(crypto.encode_plaintext(message))}
                 for name, message in messages]
    for vector in envelopes:
        parsed = crypto.parse_envelope(vector["envelope"])
        vector["header"] = parsed.header.decode("ascii")
        vector["message_key_hex"] = crypto.unwrap(parsed.wraps[bob1.device_id], bob1).hex()
    base = envelopes[0]["envelope"]

    flipped_c = decoded(base)
    flipped_c["c"] = flip(flipped_c["c"], 0)
    fewer = decoded(base)
    del fewer["to"][alice2.device_id]
    bad_wrap = decoded(base)
    bad_wrap["to"][bob1.device_id] = flip(bad_wrap["to"][bob1.device_id], 40)
    bad_text = decoded(base)
    bad_text["c"] = flip(bad_text["c"], 0)
    version2 = decoded(base)
    version2["v"] = 2
    everyone = ["alice-1", "alice-2", "bob-1"]
    envelope_failures = [
        {"name": "not-addressed-to-the-sender", "envelope": base, "open_with": "alice-1", "sender_keys": everyone,
         "expect": crypto.NOT_FOR_THIS_DEVICE},
        {"name": "sender-device-not-published", "envelope": base, "open_with": "bob-1",
         "sender_keys": ["alice-2", "bob-1"], "expect": crypto.UNKNOWN_SENDER_DEVICE},
        {"name": "flipped-ciphertext-byte", "envelope": crypto.b64url_encode(crypto.canonical_json(flipped_c)),
         "open_with": "bob-1", "sender_keys": everyone, "expect": crypto.BAD_SIGNATURE},
        {"name": "recipient-removed", "envelope": crypto.b64url_encode(crypto.canonical_json(fewer)),
         "open_with": "bob-1", "sender_keys": everyone, "expect": crypto.BAD_SIGNATURE},
        {"name": "signed-by-another-device", "envelope": resign(alice2, decoded(base)),
         "open_with": "bob-1", "sender_keys": everyone, "expect": crypto.BAD_SIGNATURE},
        {"name": "bad-wrap-validly-signed", "envelope": resign(alice1, bad_wrap),
         "open_with": "bob-1", "sender_keys": everyone, "expect": crypto.CORRUPTED},
        {"name": "bad-ciphertext-validly-signed", "envelope": resign(alice1, bad_text),
         "open_with": "bob-1", "sender_keys": everyone, "expect": crypto.CORRUPTED},
        {"name": "version-2", "envelope": crypto.b64url_encode(crypto.canonical_json(version2)),
         "open_with": "bob-1", "sender_keys": everyone, "expect": crypto.MALFORMED},
    ]

    def file_vector(name: str, plaintext: bytes, with_bytes: bool) -> dict[str, Any]:
        encrypted = encrypt(plaintext)
        vector: dict[str, Any] = {
            "name": name, "plaintext_size": len(plaintext),
            "plaintext_sha256": hashlib.sha256(plaintext).hexdigest(),
            "chunks": crypto.chunk_count(len(plaintext)),
            "encrypted_size": len(encrypted), "encrypted_sha256": hashlib.sha256(encrypted).hexdigest()}
        if with_bytes:
            vector["encrypted_b64"] = crypto.b64encode(encrypted)
        return vector

    chunk1 = crypto.encrypted_offset(1)
    swapped = two_chunks_encrypted[:crypto.FILE_HEADER_SIZE] + two_chunks_encrypted[chunk1:] \
        + two_chunks_encrypted[crypto.FILE_HEADER_SIZE:chunk1]
    flipped = bytearray(two_chunks_encrypted)
    flipped[1000] ^= 1
    mutations = [
        ("flipped-byte", "the byte at offset 1000 XOR 0x01", bytes(flipped), crypto.CORRUPTED),
        ("missing-final-chunk", f"cut to its first {chunk1} bytes (header and chunk 0)",
         two_chunks_encrypted[:chunk1], crypto.TRUNCATED),
        ("swapped-chunks", f"header, then bytes [{chunk1}:] (chunk 1), then bytes [15:{chunk1}] (chunk 0)",
         swapped, crypto.CORRUPTED),
        ("wrong-prefix-in-header", "the byte at offset 8 (first byte of the prefix) XOR 0x01",
         two_chunks_encrypted[:8] + bytes([two_chunks_encrypted[8] ^ 1]) + two_chunks_encrypted[9:],
         crypto.CORRUPTED),
    ]
    return {
        "contract": "chat envelope v1, docs/protocol.md section 11 (The envelope)",
        "generator": "tests/vectors/make_e2e_vectors.py",
        "notes": ["Private keys are raw 32-byte keys in hex; bundles standard base64 (as published).",
                  "Envelopes hold random message keys, nonces and HPKE ephemerals: regenerating changes them.",
                  "header is H (signed, and the AES-GCM aad); message_key_hex is mk, to debug HPKE.",
                  "A failure's sender_keys are the devices whose bundles the receiver knows for the sender.",
                  "File plaintexts are bytes(range(256)) repeated, cut to plaintext_size.",
                  "Failure names (expect) are chat.client.crypto.CannotDecrypt reasons."],
        "devices": {name: {"nick": DEVICES[name], "x25519_private_hex": private_keys(name)[0].hex(),
                           "ed25519_private_hex": private_keys(name)[1].hex(),
                           "bundle": device.published_key(), "device_id": device.device_id,
                           "fingerprint": device.fingerprint}
                    for name, device in devices.items()},
        "envelopes": envelopes,
        "envelope_failures": envelope_failures,
        "file_key_hex": FILE_KEY.hex(),
        "file_prefix_hex": FILE_PREFIX.hex(),
        "files": [file_vector("two-chunks", two_chunks, True), file_vector("empty", b"", True),
                  file_vector("exactly-one-chunk", pattern(crypto.CHUNK_SIZE), False),
                  file_vector("exactly-two-chunks", pattern(2 * crypto.CHUNK_SIZE), False)],
        "resume": {"file": "two-chunks", "chunk": 1, "plaintext_offset": crypto.CHUNK_SIZE,
                   "encrypted_offset": chunk1},
        "file_failures": [{"name": name, "file": "two-chunks", "change": change, "encrypted_size": len(data),
                           "encrypted_sha256": hashlib.sha256(data).hexdigest(), "expect": expect}
                          for name, change, data, expect in mutations],
    }


def main() -> None:
    OUTPUT.write_text(json.dumps(build(), indent=1, ensure_ascii=True) + "\n", encoding="ascii")
    sys.stdout.write(f"wrote {OUTPUT}\n")


if __name__ == "__main__":
    main()

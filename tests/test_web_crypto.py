"""
The browser's end-to-end encryption (chat/web/static/crypto.js and hpke.js,
issue 21, envelope contract v1) in Debian's Chromium driven by Playwright,
on a page served by a real C{twistd chat --web ...} process: RFC 9180's
test vector A.1.1, device ids and fingerprints, envelopes and encrypted
files exchanged both ways with the Python implementation
(L{chat.client.crypto}) and the shared vectors of C{tests/vectors/e2e-v1.json},
the device keys kept non-extractable in IndexedDB, and the flag a page
without a secure context raises.

The module is skipped, saying why, when Playwright or C{/usr/bin/chromium}
is missing. Browsers are never downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chat.client import crypto
from tests.browser import CHROMIUM, CHROMIUM_ARGS, need_browser  # noqa: F401 (the fixtures come from conftest)
from tests.e2e import Daemon

pytestmark = pytest.mark.slow

VECTORS = Path(__file__).parent / "vectors" / "e2e-v1.json"

need_browser("the web crypto tests")

from playwright.sync_api import Browser, Page, Playwright  # noqa: E402

from tests.test_web_page import web_port  # noqa: E402  (after the skips: it needs Playwright too)

PRELUDE = """
const c = await import("/crypto.js");
const h = await import("/hpke.js");
const fromHex = (s) => Uint8Array.from(s.match(/../g) || [], (b) => parseInt(b, 16));
"""
"""Bound in every evaluated function: the two modules and a hex decoder."""


def run(page: Page, body: str, arg: Any = None) -> Any:
    """Evaluate C{body} (JavaScript statements ending in a C{return}) in the page, with C{arg} bound."""
    return page.evaluate(f"async (arg) => {{ {PRELUDE}\n{body} }}", arg)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    daemon = Daemon("--web", "tcp:0:interface=127.0.0.1").start()
    yield web_port(daemon)
    daemon.stop()


@pytest.fixture(scope="module")
def page(browser: Browser, port: int) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{port}/")
    yield page
    context.close()


# Two fixed devices, the same in Python and in the page.
ALICE = crypto.Device.from_private_bytes(bytes(range(1, 33)), bytes(range(33, 65)))
BOB = crypto.Device.from_private_bytes(bytes(range(65, 97)), bytes(range(97, 129)))
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
"""The envelope's HPKE suite (contract v1), from Python's cryptography."""
EVE = crypto.Device.from_private_bytes(bytes(range(129, 161)), bytes(range(161, 193)))


def device_arg(device: crypto.Device) -> dict[str, str]:
    x, e = device.private_bytes()
    return {"x": b64(x), "e": b64(e)}


def test_rfc9180_a11(page: Page) -> None:
    """
    hpke.js reproduces RFC 9180 A.1.1 (X25519, HKDF-SHA256, AES-128-GCM,
    base mode): its enc and first ciphertext, opens it, and refuses it changed.
    """
    vector = {
        "skEm": "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
        "pkEm": "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
        "skRm": "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
        "pkRm": "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
        "info": "4f6465206f6e2061204772656369616e2055726e",
        "pt": "4265617574792069732074727574682c20747275746820626561757479",
        "aad": "436f756e742d30",
        "ct": "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
    }
    result = run(page, """
        const suite = {kem: h.KEM_X25519_HKDF_SHA256, kdf: h.KDF_HKDF_SHA256, aead: h.AEAD_AES_128_GCM};
        const ephemeral = {privateKey: await h.importX25519Private(fromHex(arg.skEm)),
                           publicKey: await h.importX25519Public(fromHex(arg.pkEm))};
        const sealed = await h.seal(suite, fromHex(arg.pkRm), fromHex(arg.info), fromHex(arg.aad),
                                    fromHex(arg.pt), ephemeral);
        const opened = await h.open(suite, fromHex(arg.pkEm), await h.importX25519Private(fromHex(arg.skRm)),
                                    fromHex(arg.pkRm), fromHex(arg.info), fromHex(arg.aad), fromHex(arg.ct));
        let tampered = "opened";
        const bad = fromHex(arg.ct); bad[0] ^= 1;
        try {
            await h.open(suite, fromHex(arg.pkEm), await h.importX25519Private(fromHex(arg.skRm)),
                         fromHex(arg.pkRm), fromHex(arg.info), fromHex(arg.aad), bad);
        } catch (e) { tampered = "rejected"; }
        return {enc: c.hex(sealed.enc), ct: c.hex(sealed.ciphertext), pt: c.hex(opened), tampered};
    """, vector)
    assert result == {"enc": vector["pkEm"], "ct": vector["ct"], "pt": vector["pt"], "tampered": "rejected"}


def test_hpke_suite_v1_with_python(page: Page) -> None:
    """
    An AES-256-GCM HPKE wrap sealed by Python's cryptography opens in the
    page, and one sealed in the page opens in Python.
    """
    secret = os.urandom(32)
    wrapped = SUITE.encrypt(secret, BOB.x25519.public_key(), info=crypto.WRAP_INFO)
    result = run(page, """
        const info = new TextEncoder().encode("chat-e2e-v1 wrap");
        const wrapped = c.b64decode(arg.wrapped);
        const sk = await h.importX25519Private(c.b64decode(arg.x));
        const pk = c.b64decode(arg.bundle).subarray(0, 32);
        const opened = await h.open(h.SUITE_V1, wrapped.subarray(0, 32), sk, pk, info, new Uint8Array(0),
                                    wrapped.subarray(32));
        const sealed = await h.seal(h.SUITE_V1, pk, info, new Uint8Array(0), fromHex("00112233"));
        return {opened: c.b64encode(opened), sealed: c.b64encode(c.concat(sealed.enc, sealed.ciphertext))};
    """, {"wrapped": b64(wrapped), "bundle": b64(BOB.bundle), **device_arg(BOB)})
    assert base64.b64decode(result["opened"]) == secret
    assert SUITE.decrypt(base64.b64decode(result["sealed"]), BOB.x25519, info=crypto.WRAP_INFO) == bytes.fromhex(
        "00112233")


def test_device_id_and_fingerprint(page: Page) -> None:
    """The page derives the same bundle, device id and fingerprint as Python from the same private keys."""
    for device in (ALICE, BOB):
        result = run(page, """
            const d = await c.importDevice(arg.x, arg.e);
            return {bundle: c.b64encode(d.bundle), id: d.id, fp: await c.fingerprint(c.b64encode(d.bundle))};
        """, device_arg(device))
        assert result == {"bundle": device.published_key(), "id": device.device_id, "fp": device.fingerprint}


OPEN_JS = """
    const me = await c.importDevice(arg.x, arg.e);
    const bundles = arg.bundles;
    try {
        const opened = await c.openEnvelope(arg.envelope, me, (id) => bundles[id] || null);
        return {ok: true, from: opened.from, plaintext: opened.plaintext};
    } catch (e) {
        return {ok: false, error: e.name, reason: e.reason, message: e.message};
    }
"""
"""Open C{arg.envelope} as the device C{arg.x}/C{arg.e}, sender bundles by device id in C{arg.bundles}."""


def open_in_page(page: Page, envelope: str, device: crypto.Device, senders: list[crypto.Device]) -> Any:
    bundles = {s.device_id: s.published_key() for s in senders}
    return run(page, OPEN_JS, {"envelope": envelope, "bundles": bundles, **device_arg(device)})


def test_python_envelopes_open_in_page(page: Page) -> None:
    """Envelopes sealed by Python (a text with non-ASCII, an action, a file) open in the page as the same objects."""
    recipients = {BOB.device_id: BOB.bundle, ALICE.device_id: ALICE.bundle}
    messages: list[crypto.Plaintext] = [
        crypto.TextMessage("héllo 👋 \"quoted\"\n\x7f"),
        crypto.TextMessage("waves", action=True),
        crypto.FileMessage(bytes(32), bytes(7), "photo é.png", 42, "ab" * 32, 123456),
    ]
    for message in messages:
        envelope = crypto.seal(message, ALICE, recipients)
        for reader in (BOB, ALICE):
            result = open_in_page(page, envelope, reader, [ALICE])
            assert result == {"ok": True, "from": ALICE.device_id,
                              "plaintext": json.loads(crypto.encode_plaintext(message))}


def test_page_refuses_bad_envelopes(page: Page) -> None:
    """
    The page refuses, with Python's reasons, an envelope not for its device,
    from an unknown sender or a key posing as it, or with a changed byte.
    """
    envelope = crypto.seal(crypto.TextMessage("secret"), ALICE, {BOB.device_id: BOB.bundle})
    assert open_in_page(page, envelope, EVE, [ALICE])["reason"] == "not-for-this-device"
    assert open_in_page(page, envelope, BOB, [])["reason"] == "unknown-sender-device"
    # EVE's bundle offered under ALICE's device id does not pass as ALICE.
    lying = run(page, OPEN_JS, {"envelope": envelope, "bundles": {ALICE.device_id: EVE.published_key()},
                                **device_arg(BOB)})
    assert lying["reason"] == "unknown-sender-device"
    fields = json.loads(crypto.b64url_decode(envelope))
    for field in ("c", "n", "s"):
        raw = bytearray(base64.b64decode(fields[field]))
        raw[0] ^= 1
        changed = dict(fields, **{field: b64(bytes(raw))})
        result = open_in_page(page, crypto.b64url_encode(crypto.canonical_json(changed)), BOB, [ALICE])
        assert result["ok"] is False and result["error"] == "E2EError", field
        assert result["reason"] == "bad-signature", field
    assert open_in_page(page, envelope, BOB, [ALICE])["plaintext"] == {"text": "secret", "type": "text"}


def test_page_envelopes_open_in_python(page: Page) -> None:
    """
    An envelope sealed in the page opens in Python for each recipient device,
    and its JSON, header and plaintext are canonical byte for byte.
    """
    text = "from the browser é 👋 \x7f \"q\" \\"
    plaintext = {"type": "text", "text": text, "action": True}
    envelope = run(page, """
        const me = await c.importDevice(arg.x, arg.e);
        return c.sealEnvelope(arg.plaintext, me, [arg.bob, arg.alice, arg.bob]);
    """, {"plaintext": plaintext, "bob": BOB.published_key(), "alice": ALICE.published_key(), **device_arg(ALICE)})
    bundles = {ALICE.device_id: ALICE.bundle}
    for reader in (BOB, ALICE):
        assert crypto.open_envelope(envelope, reader, bundles.get) == crypto.TextMessage(text, True)
    raw = crypto.b64url_decode(envelope)
    fields = json.loads(raw)
    assert raw == crypto.canonical_json(fields)
    assert crypto.b64url_encode(raw) == envelope
    assert sorted(fields["to"]) == sorted([ALICE.device_id, BOB.device_id])
    parsed = crypto.parse_envelope(envelope)
    key = SUITE.decrypt(parsed.wraps[BOB.device_id], BOB.x25519, info=crypto.WRAP_INFO)
    assert AESGCM(key).decrypt(parsed.nonce, parsed.ciphertext, parsed.header) == crypto.canonical_json(plaintext)


def test_files_agree_with_python(page: Page) -> None:
    """The page encrypts files of 0, 1, 65536, 65537 and 200000 bytes to Python's exact bytes, and decrypts Python's."""
    key, prefix = os.urandom(32), os.urandom(7)
    for size in (0, 1, 65536, 65537, 200000):
        plain = os.urandom(size)
        sink = io.BytesIO()
        made = crypto.encrypt_stream(io.BytesIO(plain), sink, key, prefix)
        result = run(page, """
            const key = c.b64decode(arg.key), prefix = c.b64decode(arg.prefix);
            const mine = await c.encryptFile(new Blob([c.b64decode(arg.plain)]), {key, prefix});
            const theirs = await c.decryptFile(c.b64decode(arg.encrypted), key, prefix);
            return {data: c.b64encode(mine.data), sha256: mine.sha256, size: mine.size, plain: c.b64encode(theirs)};
        """, {"key": b64(key), "prefix": b64(prefix), "plain": b64(plain), "encrypted": b64(sink.getvalue())})
        assert base64.b64decode(result["data"]) == sink.getvalue(), size
        assert (result["sha256"], result["size"]) == (made.sha256, size)
        assert base64.b64decode(result["plain"]) == plain


def test_file_tampering_detected(page: Page) -> None:
    """Decryption fails on a dropped final chunk, swapped chunks, a changed byte, a wrong prefix, and an empty body."""
    key, prefix = os.urandom(32), os.urandom(7)
    sink = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(os.urandom(3 * 65536 + 10)), sink, key, prefix)
    data = sink.getvalue()
    head, size = crypto.FILE_HEADER_SIZE, crypto.ENCRYPTED_CHUNK_SIZE
    chunks = [data[head + i * size:head + (i + 1) * size] for i in range(4)]
    changed = bytearray(data)
    changed[head + 5] ^= 1
    bad = {
        "truncated": data[:head + 3 * size],
        "reordered": data[:head] + chunks[1] + chunks[0] + chunks[2] + chunks[3],
        "changed": bytes(changed),
        "cut-in-chunk": data[:-1],
        "header-only": data[:head],
    }
    result = run(page, """
        const key = c.b64decode(arg.key), prefix = c.b64decode(arg.prefix);
        const out = {};
        for (const [name, data] of Object.entries(arg.bad)) {
            try { await c.decryptFile(c.b64decode(data), key, prefix); out[name] = "decrypted"; }
            catch (e) { out[name] = `${e.name} ${e.reason}`; }
        }
        const other = c.b64decode(arg.prefix); other[0] ^= 1;
        try { await c.decryptFile(c.b64decode(arg.good), key, other); out.prefix = "decrypted"; }
        catch (e) { out.prefix = `${e.name} ${e.reason}`; }
        out.good = (await c.decryptFile(c.b64decode(arg.good), key, prefix)).length;
        return out;
    """, {"key": b64(key), "prefix": b64(prefix), "good": b64(data), "bad": {k: b64(v) for k, v in bad.items()}})
    assert result == {"truncated": "E2EError truncated", "reordered": "E2EError corrupted",
                      "changed": "E2EError corrupted", "cut-in-chunk": "E2EError corrupted",
                      "header-only": "E2EError truncated", "prefix": "E2EError corrupted", "good": 3 * 65536 + 10}


def test_device_keys_stay_non_extractable(browser: Browser, port: int) -> None:
    """
    A generated device survives IndexedDB (in a new page of the same
    profile) with its private keys non-extractable and still working.
    """
    context = browser.new_context()
    try:
        first = context.new_page()
        first.goto(f"http://127.0.0.1:{port}/")
        created = run(first, """
            const d = await c.loadOrCreateDevice("test-e2e");
            return {id: d.id, bundle: c.b64encode(d.bundle)};
        """)
        first.close()
        second = context.new_page()
        second.goto(f"http://127.0.0.1:{port}/")
        result = run(second, """
            const d = await c.loadDevice("test-e2e");
            const again = await c.loadOrCreateDevice("test-e2e");
            const out = {id: d.id, again: again.id, extractable: [d.x25519.extractable, d.ed25519.extractable],
                         types: [d.x25519.type, d.ed25519.type]};
            try { await crypto.subtle.exportKey("pkcs8", d.x25519); out.exported = true; }
            catch (e) { out.exported = e.name; }
            const envelope = await c.sealEnvelope({type: "text", text: "to myself"}, d, [d.bundle]);
            out.opened = (await c.openEnvelope(envelope, d, (id) => (id === d.id ? d.bundle : null))).plaintext;
            return out;
        """)
    finally:
        context.close()
    assert created["id"] == crypto.device_id(base64.b64decode(created["bundle"]))
    assert result == {"id": created["id"], "again": created["id"], "extractable": [False, False],
                      "types": ["private", "private"], "exported": "InvalidAccessError",
                      "opened": {"text": "to myself", "type": "text"}}


def test_availability_flag(page: Page, playwright: Playwright, port: int) -> None:
    """
    A page on http://127.0.0.1 has end-to-end encryption; a plain-HTTP page
    under another host name says it has not, and why.
    """
    assert run(page, "return c.e2eStatus();") == {"available": True, "reason": ""}
    # A host name mapped to the loopback address is not a potentially
    # trustworthy origin, so the page is no secure context (as a LAN address).
    other = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                       args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP chat.example 127.0.0.1"])
    try:
        insecure = other.new_page()
        insecure.goto(f"http://chat.example:{port}/")
        result = insecure.evaluate("""async () => {
            const c = await import("/crypto.js");
            return {subtle: Boolean(globalThis.crypto.subtle), available: c.e2eAvailable(), status: c.e2eStatus()};
        }""")
    finally:
        other.close()
    assert result["subtle"] is False and result["available"] is False
    assert "TLS web listener" in result["status"]["reason"]


def file_plaintext(size: int) -> bytes:
    """A vector file's plaintext: C{bytes(range(256))} repeated, cut to C{size} bytes (the vectors' notes)."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def mutated(vector: dict[str, Any], data: bytes) -> bytes:
    """
    The bytes of a failing file vector, rebuilt from the file it changes
    (checked against the vector's SHA-256 by the caller).
    """
    head, size = crypto.FILE_HEADER_SIZE, crypto.ENCRYPTED_CHUNK_SIZE
    name = vector["name"]
    if name == "flipped-byte":
        return data[:1000] + bytes([data[1000] ^ 1]) + data[1001:]
    if name == "missing-final-chunk":
        return data[:head + size]
    if name == "swapped-chunks":
        return data[:head] + data[head + size:] + data[head:head + size]
    if name == "wrong-prefix-in-header":
        return data[:8] + bytes([data[8] ^ 1]) + data[9:]
    raise AssertionError(f"a file failure this test does not know: {name}")


SHARED_JS = """
    const out = {devices: {}, envelopes: [], failures: [], files: [], fileFailures: [], resume: null};
    const devices = {};
    for (const [name, d] of Object.entries(arg.devices)) {
        devices[name] = await c.importDevice(fromHex(d.x), fromHex(d.e));
        out.devices[name] = {bundle: c.b64encode(devices[name].bundle), id: devices[name].id,
                             fp: await c.fingerprint(d.bundle)};
    }
    const lookupOf = (names) => (id) => {
        const found = names.map((n) => devices[n]).find((d) => d.id === id);
        return found ? found.bundle : null;
    };
    for (const e of arg.envelopes) {
        const row = {name: e.name, canonical: c.canonicalJson(e.plaintext) === atob(e.plaintext_b64), opened: {}};
        for (const reader of e.to) {
            try {
                const opened = await c.openEnvelope(e.envelope, devices[reader], lookupOf(e.senders));
                row.opened[reader] = opened.plaintext;
            } catch (err) { row.opened[reader] = err.message; }
        }
        out.envelopes.push(row);
    }
    for (const f of arg.envelope_failures) {
        try {
            await c.openEnvelope(f.envelope, devices[f.open_with], lookupOf(f.sender_keys));
            out.failures.push([f.name, "opened"]);
        } catch (err) { out.failures.push([f.name, err.reason || err.message]); }
    }
    const key = fromHex(arg.key), prefix = fromHex(arg.prefix);
    for (const f of arg.files) {
        const plain = c.b64decode(f.plain);
        const mine = await c.encryptFile(plain, {key, prefix});
        const row = {name: f.name, sha256: mine.sha256, size: mine.data.length};
        if (f.encrypted) row.plain = await c.sha256Hex(await c.decryptFile(c.b64decode(f.encrypted), key, prefix));
        out.files.push(row);
    }
    for (const f of arg.file_failures) {
        try { await c.decryptFile(c.b64decode(f.data), key, prefix); out.fileFailures.push([f.name, "decrypted"]); }
        catch (err) { out.fileFailures.push([f.name, err.reason || err.message]); }
    }
    const r = arg.resume;
    out.resume = {offset: c.encryptedOffset(r.chunk),
                  tail: await c.sha256Hex(await c.decryptFile(c.b64decode(r.data), key, prefix, r.chunk))};
    return out;
"""
"""Check every part of tests/vectors/e2e-v1.json in the page; answer what it found."""


def test_shared_vectors(page: Page) -> None:
    """
    The page checks tests/vectors/e2e-v1.json as the Python tests do: device
    ids and fingerprints, Python's envelopes opened by each addressee, each
    failing envelope refused for the same reason, the files encrypted to the
    same bytes and decrypted, the failing files refused, and a resumed download.
    """
    if not VECTORS.exists():  # pragma: no cover - the file is in the repository
        pytest.skip(f"{VECTORS} is missing (written by tests/vectors/make_e2e_vectors.py)")
    vectors = json.loads(VECTORS.read_text())
    devices = vectors["devices"]
    files = {f["name"]: f for f in vectors["files"]}
    by_nick = {d["nick"]: [n for n, o in devices.items() if o["nick"] == d["nick"]] for d in devices.values()}
    arg = {
        "devices": {name: {"x": d["x25519_private_hex"], "e": d["ed25519_private_hex"], "bundle": d["bundle"]}
                    for name, d in devices.items()},
        "envelopes": [dict(e, senders=by_nick[devices[e["from"]]["nick"]]) for e in vectors["envelopes"]],
        "envelope_failures": vectors["envelope_failures"],
        "key": vectors["file_key_hex"],
        "prefix": vectors["file_prefix_hex"],
        "files": [{"name": f["name"], "plain": b64(file_plaintext(f["plaintext_size"])),
                   "encrypted": f.get("encrypted_b64")} for f in vectors["files"]],
        "file_failures": [],
        "resume": None,
    }
    for failure in vectors["file_failures"]:
        data = mutated(failure, base64.b64decode(files[failure["file"]]["encrypted_b64"]))
        assert hashlib.sha256(data).hexdigest() == failure["encrypted_sha256"], failure["name"]
        arg["file_failures"].append({"name": failure["name"], "data": b64(data)})
    resume = vectors["resume"]
    whole = base64.b64decode(files[resume["file"]]["encrypted_b64"])
    arg["resume"] = {"chunk": resume["chunk"], "data": b64(whole[resume["encrypted_offset"]:])}

    result = run(page, SHARED_JS, arg)

    assert result["devices"] == {name: {"bundle": d["bundle"], "id": d["device_id"], "fp": d["fingerprint"]}
                                 for name, d in devices.items()}
    assert result["envelopes"] == [
        {"name": e["name"], "canonical": True, "opened": {reader: e["plaintext"] for reader in e["to"]}}
        for e in vectors["envelopes"]]
    assert result["failures"] == [[f["name"], f["expect"]] for f in vectors["envelope_failures"]]
    assert result["files"] == [
        {"name": f["name"], "sha256": f["encrypted_sha256"], "size": f["encrypted_size"],
         **({"plain": f["plaintext_sha256"]} if "encrypted_b64" in f else {})} for f in vectors["files"]]
    assert result["fileFailures"] == [[f["name"], f["expect"]] for f in vectors["file_failures"]]
    tail = file_plaintext(files[resume["file"]]["plaintext_size"])[resume["plaintext_offset"]:]
    assert result["resume"] == {"offset": resume["encrypted_offset"],
                                "tail": hashlib.sha256(tail).hexdigest()}

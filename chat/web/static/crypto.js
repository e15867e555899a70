/**
 * End-to-end encryption of private messages and files in the browser
 * (issue 21; the envelope contract v1 of docs/protocol.md), on WebCrypto
 * only: X25519 + Ed25519 device keys kept as non-extractable CryptoKeys in
 * IndexedDB, HPKE (hpke.js) to wrap each message key per device, AES-256-GCM
 * for the message, Ed25519 signatures, and STREAM-chunked AES-256-GCM for
 * files. The Python side is chat/client/crypto.py; both open each other's
 * envelopes (tests/vectors/e2e-v1.json).
 *
 * WebCrypto exists only in a secure context (HTTPS, or http://localhost /
 * http://127.0.0.1): `e2eAvailable()` says whether this page has it.
 */

import * as hpke from "./hpke.js";

export { concat } from "./hpke.js";
const { concat } = hpke;

const subtle = () => globalThis.crypto.subtle;
const ascii = (text) => new TextEncoder().encode(text);

const FINGERPRINT_LABEL = ascii("chat-e2e-v1 fingerprint");
const WRAP_INFO = ascii("chat-e2e-v1 wrap");
const SIGNATURE_LABEL = ascii("chat-e2e-v1 sig\n");
const NEWLINE = ascii("\n");
const FILE_MAGIC = ascii("CHATE2E1");
/** Plaintext bytes per file chunk. */
export const CHUNK_SIZE = 65536;
const TAG_SIZE = 16;
const PREFIX_SIZE = 7;
const KEY_SIZE = 32;
const NONCE_SIZE = 12;
const MAX_CHUNKS = 2 ** 32;

/** The reasons of E2EError, the same as chat.client.crypto.CannotDecrypt's. */
export const MALFORMED = "malformed";
export const NOT_FOR_THIS_DEVICE = "not-for-this-device";
export const UNKNOWN_SENDER_DEVICE = "unknown-sender-device";
export const BAD_SIGNATURE = "bad-signature";
export const CORRUPTED = "corrupted";
export const TRUNCATED = "truncated";
export const UNSUPPORTED = "unsupported";

/**
 * An envelope or encrypted file this device cannot (or must not) turn into
 * plaintext: show "could not be decrypted", never text. `reason` is one of
 * the constants above: malformed (not an envelope v1, or a plaintext of the
 * wrong shape), not-for-this-device, unknown-sender-device, bad-signature,
 * corrupted (fails authentication; for a file also reordered chunks or a
 * wrong key), truncated (a file ending before its final chunk), unsupported
 * (an unknown plaintext type). `detail` is short English, never secret.
 */
export class E2EError extends Error {
  constructor(reason, detail = "") {
    super(detail ? `${reason}: ${detail}` : reason);
    this.name = "E2EError";
    this.reason = reason;
    this.detail = detail;
  }
}

/* ---------- availability ---------- */

/**
 * Whether this page can do end-to-end encryption, and why not.
 * @returns {{available: boolean, reason: string}} reason is "" when available
 */
export function e2eStatus() {
  if (!globalThis.isSecureContext) {
    return {
      available: false,
      reason: "this page is not a secure context: encrypted private messages need the TLS web listener (https://)",
    };
  }
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    return { available: false, reason: "this browser has no WebCrypto (crypto.subtle)" };
  }
  if (!globalThis.indexedDB) {
    return { available: false, reason: "this browser has no IndexedDB to keep the device keys" };
  }
  return { available: true, reason: "" };
}

/** Whether `e2eStatus().available`: false on a plain-HTTP page from a LAN address. */
export function e2eAvailable() {
  return e2eStatus().available;
}

/* ---------- encodings ---------- */

function bytesOf(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("expected bytes (Uint8Array or ArrayBuffer)");
}

/** Standard base64 with padding (RFC 4648 section 4). */
export function b64encode(data) {
  const bytes = bytesOf(data);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Strict standard base64 (padding required) to bytes; throws E2EError. */
export function b64decode(text) {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new E2EError(MALFORMED, "bad base64");
  }
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) out[i] = binary.charCodeAt(i);
  if (b64encode(out) !== text) throw new E2EError(MALFORMED, "bad base64");
  return out;
}

/** base64url without padding (RFC 4648 section 5). */
export function b64urlEncode(data) {
  return b64encode(data).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** base64url without padding to bytes; throws E2EError. */
export function b64urlDecode(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new E2EError(MALFORMED, "bad base64url");
  }
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice(0, (4 - (text.length % 4)) % 4);
  return b64decode(padded);
}

/** Lower-case hex of bytes. */
export function hex(data) {
  return Array.from(bytesOf(data), (b) => b.toString(16).padStart(2, "0")).join("");
}

function sortedCopy(value) {
  if (Array.isArray(value)) return value.map(sortedCopy);
  if (value !== null && typeof value === "object") {
    // No prototype: a key "__proto__" (from a received envelope) stays a key.
    const out = Object.create(null);
    for (const key of Object.keys(value).sort()) out[key] = sortedCopy(value[key]);
    return out;
  }
  return value;
}

/**
 * Canonical JSON of the contract: keys sorted, no spaces, ASCII only (other
 * characters as lower-case \uXXXX escapes, as Python's json.dumps(...,
 * sort_keys=True, separators=(",", ":")) writes them).
 * @returns {string}
 */
export function canonicalJson(value) {
  return JSON.stringify(sortedCopy(value)).replace(/[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

async function sha256(data) {
  return new Uint8Array(await subtle().digest("SHA-256", data));
}

/* ---------- bundles, device ids, fingerprints ---------- */

/** A bundle given as bytes or standard base64, as 64 bytes; throws E2EError. */
export function bundleBytes(bundle) {
  const bytes = typeof bundle === "string" ? b64decode(bundle) : bytesOf(bundle);
  if (bytes.length !== 64) throw new E2EError(MALFORMED, "a key bundle is 64 bytes");
  return bytes;
}

async function bundleDigest(bundle) {
  return sha256(concat(FINGERPRINT_LABEL, bundleBytes(bundle)));
}

/**
 * The device id of a public bundle: b64url(SHA-256("chat-e2e-v1 fingerprint" || bundle)[0:12]).
 * @param {Uint8Array|string} bundle 64 bytes, or their standard base64
 * @returns {Promise<string>} 16 characters
 */
export async function deviceId(bundle) {
  return b64urlEncode((await bundleDigest(bundle)).subarray(0, 12));
}

/**
 * The fingerprint to compare aloud: 6 groups of 5 digits, space-separated.
 * @param {Uint8Array|string} bundle
 * @returns {Promise<string>} e.g. "04823 99120 00417 31337 55555 12345"
 */
export async function fingerprint(bundle) {
  const digest = await bundleDigest(bundle);
  const groups = [];
  for (let i = 0; i < 6; i += 1) {
    let n = 0n;
    for (const byte of digest.subarray(5 * i, 5 * i + 5)) n = (n << 8n) | BigInt(byte);
    groups.push(String(n % 100000n).padStart(5, "0"));
  }
  return groups.join(" ");
}

/* ---------- device keys ---------- */

/**
 * A device: its private keys (CryptoKey: X25519 for deriveBits, Ed25519 for
 * sign), its public bundle (64 bytes) and id.
 * @typedef {{x25519: CryptoKey, ed25519: CryptoKey, bundle: Uint8Array, id: string}} Device
 */

async function deviceFromKeys(x25519, ed25519, bundle) {
  const bytes = bundleBytes(bundle);
  return { x25519, ed25519, bundle: bytes, id: await deviceId(bytes) };
}

/**
 * A new device key pair; private keys are non-extractable unless asked.
 * @returns {Promise<Device>}
 */
export async function generateDevice(extractable = false) {
  const x = await subtle().generateKey({ name: "X25519" }, extractable, ["deriveBits"]);
  const ed = await subtle().generateKey({ name: "Ed25519" }, extractable, ["sign", "verify"]);
  const bundle = concat(new Uint8Array(await subtle().exportKey("raw", x.publicKey)),
    new Uint8Array(await subtle().exportKey("raw", ed.publicKey)));
  return deviceFromKeys(x.privateKey, ed.privateKey, bundle);
}

/**
 * A device from fixed private keys (test vectors): 32-byte X25519 private
 * key and 32-byte Ed25519 seed (RFC 8032), raw bytes or standard base64.
 * @returns {Promise<Device>}
 */
export async function importDevice(x25519Private, ed25519Private, extractable = false) {
  const raw = (v) => (typeof v === "string" ? b64decode(v) : bytesOf(v));
  const xs = raw(x25519Private);
  const es = raw(ed25519Private);
  if (xs.length !== 32 || es.length !== 32) throw new TypeError("private keys are 32 bytes");
  const header = (oid) => Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, oid,
    0x04, 0x22, 0x04, 0x20);
  // Imported extractable once to learn the public halves (JWK "x"), then
  // imported again as asked.
  const xOpen = await subtle().importKey("pkcs8", concat(header(0x6e), xs), { name: "X25519" }, true, ["deriveBits"]);
  const eOpen = await subtle().importKey("pkcs8", concat(header(0x70), es), { name: "Ed25519" }, true, ["sign"]);
  const xJwk = await subtle().exportKey("jwk", xOpen);
  const eJwk = await subtle().exportKey("jwk", eOpen);
  const bundle = concat(b64urlDecode(xJwk.x), b64urlDecode(eJwk.x));
  const x = await subtle().importKey("jwk", xJwk, { name: "X25519" }, extractable, ["deriveBits"]);
  const e = await subtle().importKey("jwk", eJwk, { name: "Ed25519" }, extractable, ["sign"]);
  return deviceFromKeys(x, e, bundle);
}

const DB_NAME = "chat-e2e";
const DB_STORE = "devices";
const DB_KEY = "this-device";

function database(name) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(name, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(DB_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function transact(db, mode, work) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(DB_STORE, mode);
    const request = work(tx.objectStore(DB_STORE));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/**
 * Store a device in IndexedDB (the CryptoKeys by structured clone: a
 * non-extractable key stays non-extractable).
 * @param {Device} device
 * @param {string} [name] the database name
 */
export async function saveDevice(device, name = DB_NAME) {
  const db = await database(name);
  try {
    await transact(db, "readwrite", (store) => store.put(
      { x25519: device.x25519, ed25519: device.ed25519, bundle: device.bundle }, DB_KEY));
  } finally {
    db.close();
  }
}

/**
 * The device stored in IndexedDB, or null when there is none.
 * @returns {Promise<Device|null>}
 */
export async function loadDevice(name = DB_NAME) {
  const db = await database(name);
  try {
    const record = await transact(db, "readonly", (store) => store.get(DB_KEY));
    return record ? deviceFromKeys(record.x25519, record.ed25519, record.bundle) : null;
  } finally {
    db.close();
  }
}

/**
 * This browser's device: the stored one, or a new non-extractable one,
 * stored. Publish `b64encode(device.bundle)` with `/key publish`.
 * @returns {Promise<Device>}
 */
export async function loadOrCreateDevice(name = DB_NAME) {
  const stored = await loadDevice(name);
  if (stored) return stored;
  const device = await generateDevice(false);
  await saveDevice(device, name);
  return device;
}

/* ---------- envelopes ---------- */

function headerBytes(from, n, to) {
  return ascii(canonicalJson({ from, n, to, v: 1 }));
}

async function aesKey(raw, usages) {
  return subtle().importKey("raw", raw, { name: "AES-GCM" }, false, usages);
}

/**
 * Seal a plaintext object (e.g. {type: "text", text}) from `device` to each
 * recipient device (the recipient's and the sender's own other devices; a
 * bundle given twice is wrapped once).
 * @param {object} plaintext encoded as canonical JSON, UTF-8
 * @param {Device} device the sender's
 * @param {Array<Uint8Array|string>} recipients public bundles
 * @returns {Promise<string>} the envelope, base64url without padding
 */
export async function sealEnvelope(plaintext, device, recipients) {
  const rng = (size) => globalThis.crypto.getRandomValues(new Uint8Array(size));
  const mk = rng(KEY_SIZE);
  const n = rng(NONCE_SIZE);
  if (!recipients.length) throw new TypeError("an envelope needs at least one recipient device");
  const to = Object.create(null);
  for (const recipient of recipients) {
    const bundle = bundleBytes(recipient);
    const id = await deviceId(bundle);
    if (id in to) continue;
    const { enc, ciphertext } = await hpke.seal(hpke.SUITE_V1, bundle.subarray(0, 32), WRAP_INFO,
      new Uint8Array(0), mk);
    to[id] = b64encode(concat(enc, ciphertext));
  }
  const nb64 = b64encode(n);
  const header = headerBytes(device.id, nb64, to);
  const c = new Uint8Array(await subtle().encrypt({ name: "AES-GCM", iv: n, additionalData: header },
    await aesKey(mk, ["encrypt"]), ascii(canonicalJson(plaintext))));
  const s = new Uint8Array(await subtle().sign("Ed25519", device.ed25519,
    concat(SIGNATURE_LABEL, header, NEWLINE, c)));
  return b64urlEncode(ascii(canonicalJson({ c: b64encode(c), from: device.id, n: nb64, s: b64encode(s), to, v: 1 })));
}

/**
 * The sender device id of an envelope, without opening it (to look its key
 * up with `/keys NICK`).
 * @returns {string}
 * @throws {E2EError} when it is not an envelope v1
 */
export function envelopeSender(envelope) {
  return parseEnvelope(envelope).from;
}

function parseEnvelope(envelope) {
  let fields;
  try {
    const raw = b64urlDecode(envelope);
    if (raw.some((b) => b > 0x7f)) throw new Error("not ASCII");
    fields = JSON.parse(new TextDecoder().decode(raw));
  } catch (e) {
    throw new E2EError(MALFORMED, `not an envelope: ${e.message}`);
  }
  if (!fields || typeof fields !== "object" || Array.isArray(fields) || !Number.isInteger(fields.v)) {
    throw new E2EError(MALFORMED, "not an envelope");
  }
  if (fields.v !== 1) throw new E2EError(MALFORMED, `envelope version ${fields.v}`);
  const { c, from, n, s, to } = fields;
  if (typeof from !== "string" || typeof n !== "string" || !to || typeof to !== "object" || Array.isArray(to)
      || !Object.keys(to).length || typeof c !== "string" || typeof s !== "string"
      || !Object.values(to).every((v) => typeof v === "string")) {
    throw new E2EError(MALFORMED, "bad from, n, to, c or s");
  }
  const parsed = {
    from, n, to, nonce: b64decode(n), ciphertext: b64decode(c), signature: b64decode(s), wraps: new Map(),
  };
  for (const [id, wrap] of Object.entries(to)) parsed.wraps.set(id, b64decode(wrap));
  if (parsed.nonce.length !== NONCE_SIZE || parsed.signature.length !== 64 || parsed.ciphertext.length < TAG_SIZE
      || [...parsed.wraps.values()].some((w) => w.length !== 32 + KEY_SIZE + TAG_SIZE)) {
    throw new E2EError(MALFORMED, "a part of the wrong size");
  }
  parsed.header = headerBytes(from, n, to);
  return parsed;
}

function checkPlaintext(value) {
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new E2EError(MALFORMED, "the plaintext is not a JSON object");
  }
  if (value.type === "text") {
    if (typeof value.text !== "string" || !["undefined", "boolean"].includes(typeof value.action)) {
      throw new E2EError(MALFORMED, "a text plaintext needs a string text");
    }
    return value;
  }
  if (value.type === "file") {
    let key, prefix;
    try {
      key = b64decode(value.key);
      prefix = b64decode(value.prefix);
    } catch (e) {
      throw new E2EError(MALFORMED, "a file plaintext lacks a field");
    }
    if (key.length !== KEY_SIZE || prefix.length !== PREFIX_SIZE || typeof value.name !== "string"
        || !Number.isInteger(value.offer) || !Number.isInteger(value.size) || value.size < 0
        || typeof value.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(value.sha256)) {
      throw new E2EError(MALFORMED, "a file plaintext has a field of the wrong shape");
    }
    return value;
  }
  throw new E2EError(UNSUPPORTED, "an unknown plaintext type");
}

/**
 * Open an envelope addressed to `device`; checks in the order of the
 * Python implementation (malformed, not-for-this-device,
 * unknown-sender-device, bad-signature, corrupted, malformed/unsupported
 * plaintext).
 * @param {string} envelope
 * @param {Device} device this browser's
 * @param {(deviceId: string) => (Uint8Array|string|null|Promise<Uint8Array|string|null>)} lookup
 *   the sender's public bundle by device id, among the sender nick's known
 *   keys (from `/keys NICK`, trust on first use), or null; a bundle whose
 *   own device id differs counts as unknown
 * @returns {Promise<{from: string, bundle: Uint8Array, plaintext: object}>}
 *   the sender's device id and bundle, and the plaintext object:
 *   {type: "text", text, action?} or {type: "file", key, name, offer,
 *   prefix, sha256, size} (key and prefix standard base64)
 * @throws {E2EError} on any failure: show "could not be decrypted"
 */
export async function openEnvelope(envelope, device, lookup) {
  const parsed = parseEnvelope(envelope);
  const wrapped = parsed.wraps.get(device.id);
  if (!wrapped) throw new E2EError(NOT_FOR_THIS_DEVICE, "no key for this device");
  let bundle = null;
  try {
    const found = await lookup(parsed.from);
    bundle = found ? bundleBytes(found) : null;
  } catch (e) {
    bundle = null;
  }
  if (!bundle || await deviceId(bundle) !== parsed.from) {
    throw new E2EError(UNKNOWN_SENDER_DEVICE, "the sender's device is not among its known keys");
  }
  let valid = false;
  try {
    const verifyKey = await subtle().importKey("raw", bundle.subarray(32), { name: "Ed25519" }, false, ["verify"]);
    valid = await subtle().verify("Ed25519", verifyKey, parsed.signature,
      concat(SIGNATURE_LABEL, parsed.header, NEWLINE, parsed.ciphertext));
  } catch (e) {
    valid = false;
  }
  if (!valid) throw new E2EError(BAD_SIGNATURE, "the signature does not verify");
  let p;
  try {
    const mk = await hpke.open(hpke.SUITE_V1, wrapped.subarray(0, 32), device.x25519, device.bundle.subarray(0, 32),
      WRAP_INFO, new Uint8Array(0), wrapped.subarray(32));
    p = await subtle().decrypt({ name: "AES-GCM", iv: parsed.nonce, additionalData: parsed.header },
      await aesKey(mk, ["decrypt"]), parsed.ciphertext);
  } catch (e) {
    throw new E2EError(CORRUPTED, "the message fails authentication");
  }
  let value;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(p));
  } catch (e) {
    throw new E2EError(MALFORMED, "the plaintext is not UTF-8 JSON");
  }
  return { from: parsed.from, bundle, plaintext: checkPlaintext(value) };
}

/* ---------- files (STREAM) ---------- */

function chunkNonce(prefix, index, last) {
  const nonce = new Uint8Array(NONCE_SIZE);
  nonce.set(prefix, 0);
  new DataView(nonce.buffer).setUint32(PREFIX_SIZE, index, false);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

function checkKeyAndPrefix(key, prefix) {
  if (key.length !== KEY_SIZE || prefix.length !== PREFIX_SIZE) {
    throw new TypeError("a file key is 32 bytes and its prefix 7");
  }
}

/** Bytes of the encrypted file of `size` plaintext bytes. */
export function encryptedSize(size) {
  return FILE_MAGIC.length + PREFIX_SIZE + size + TAG_SIZE * Math.max(1, Math.ceil(size / CHUNK_SIZE));
}

/** Offset in the encrypted file where chunk `index` starts (to resume a download there). */
export function encryptedOffset(index) {
  return FILE_MAGIC.length + PREFIX_SIZE + index * (CHUNK_SIZE + TAG_SIZE);
}

async function readBytes(source, start, end) {
  if (typeof Blob !== "undefined" && source instanceof Blob) {
    return new Uint8Array(await source.slice(start, end).arrayBuffer());
  }
  return bytesOf(source).subarray(start, end);
}

function sizeOf(source) {
  return typeof Blob !== "undefined" && source instanceof Blob ? source.size : bytesOf(source).length;
}

/**
 * Encrypt a file for upload: "CHATE2E1" || prefix || chunks of 65536
 * plaintext bytes, each AES-256-GCM with nonce prefix || index (4 bytes,
 * big-endian) || final flag.
 * @param {Blob|ArrayBuffer|Uint8Array} source the plaintext
 * @param {{key?: Uint8Array, prefix?: Uint8Array}} [fixed] fixed key and
 *   prefix (test vectors); by default random ones
 * @returns {Promise<{data: Uint8Array, key: Uint8Array, prefix: Uint8Array, size: number, sha256: string}>}
 *   the encrypted file, its key (32 bytes) and prefix (7 bytes), the
 *   plaintext size in bytes and the hex SHA-256 of the encrypted file
 */
export async function encryptFile(source, fixed = {}) {
  const key = fixed.key ? bytesOf(fixed.key) : globalThis.crypto.getRandomValues(new Uint8Array(KEY_SIZE));
  const prefix = fixed.prefix ? bytesOf(fixed.prefix) : globalThis.crypto.getRandomValues(new Uint8Array(PREFIX_SIZE));
  checkKeyAndPrefix(key, prefix);
  const size = sizeOf(source);
  const chunks = Math.max(1, Math.ceil(size / CHUNK_SIZE));
  if (chunks > MAX_CHUNKS) throw new RangeError("file too large");
  const handle = await aesKey(key, ["encrypt"]);
  const data = new Uint8Array(FILE_MAGIC.length + PREFIX_SIZE + size + chunks * TAG_SIZE);
  data.set(FILE_MAGIC, 0);
  data.set(prefix, FILE_MAGIC.length);
  let offset = FILE_MAGIC.length + PREFIX_SIZE;
  for (let i = 0; i < chunks; i += 1) {
    const plain = await readBytes(source, i * CHUNK_SIZE, Math.min(size, (i + 1) * CHUNK_SIZE));
    const sealed = new Uint8Array(await subtle().encrypt(
      { name: "AES-GCM", iv: chunkNonce(prefix, i, i === chunks - 1) }, handle, plain));
    data.set(sealed, offset);
    offset += sealed.length;
  }
  return { data, key, prefix, size, sha256: hex(await sha256(data)) };
}

/**
 * Incremental STREAM decryption, for a download arriving in pieces: feed
 * bytes with `update`, end with `finish`. A chunk is held back until more
 * bytes follow it, since only the end of the file says which is final.
 * Plaintext is given out only once its chunk has authenticated.
 */
export class FileDecryptor {
  /**
   * @param {Uint8Array} key the file key, 32 bytes
   * @param {Uint8Array} prefix the nonce prefix the message announced, 7
   *   bytes; the file's header must hold the same
   * @param {number} [firstChunk] 0 to decrypt from the start of the file
   *   (its header is checked), or k to resume at encryptedOffset(k) (no
   *   header expected)
   * @throws {TypeError} a key or prefix of the wrong size
   */
  constructor(key, prefix, firstChunk = 0) {
    this.key = bytesOf(key);
    this.prefix = bytesOf(prefix);
    checkKeyAndPrefix(this.key, this.prefix);
    this.handle = null;
    this.header = firstChunk === 0;
    this.pending = new Uint8Array(0);
    /** The index of the next chunk to decrypt. */
    this.chunk = firstChunk;
    /** Plaintext bytes given out so far. */
    this.size = 0;
    this.done = false;
  }

  async decrypt(chunk, last) {
    if (this.chunk >= MAX_CHUNKS) throw new E2EError(CORRUPTED, "a file of more than 2**32 chunks");
    if (!this.handle) this.handle = await aesKey(this.key, ["decrypt"]);
    const plain = new Uint8Array(await subtle().decrypt(
      { name: "AES-GCM", iv: chunkNonce(this.prefix, this.chunk, last) }, this.handle, chunk));
    this.chunk += 1;
    this.size += plain.length;
    return plain;
  }

  async open(chunk, last) {
    try {
      return await this.decrypt(chunk, last);
    } catch (e) {
      if (e instanceof E2EError) throw e;
      throw new E2EError(CORRUPTED, `chunk ${this.chunk} fails authentication`);
    }
  }

  /**
   * @param {Uint8Array|ArrayBuffer} bytes the next bytes of the encrypted file
   * @returns {Promise<Uint8Array>} the plaintext of every chunk now known not
   *   to be the last (possibly empty)
   * @throws {E2EError} corrupted (a wrong header or prefix, a chunk failing
   *   authentication) or malformed (data after the end)
   */
  async update(bytes) {
    if (this.done) throw new E2EError(MALFORMED, "data after the end of the file");
    this.pending = concat(this.pending, bytesOf(bytes));
    if (this.header) {
      const size = FILE_MAGIC.length + PREFIX_SIZE;
      if (this.pending.length < size) return new Uint8Array(0);
      if (hex(this.pending.subarray(0, size)) !== hex(concat(FILE_MAGIC, this.prefix))) {
        throw new E2EError(CORRUPTED, "not an encrypted file with this prefix");
      }
      this.pending = this.pending.slice(size);
      this.header = false;
    }
    const out = [];
    const sealedSize = CHUNK_SIZE + TAG_SIZE;
    while (this.pending.length > sealedSize) {
      out.push(await this.open(this.pending.subarray(0, sealedSize), false));
      this.pending = this.pending.slice(sealedSize);
    }
    return concat(...out);
  }

  /**
   * The end of the encrypted bytes.
   * @returns {Promise<Uint8Array>} the plaintext of the final chunk
   * @throws {E2EError} truncated (the file stops before its final chunk) or corrupted
   */
  async finish() {
    if (this.done) throw new E2EError(MALFORMED, "the file is already finished");
    if (this.header) throw new E2EError(TRUNCATED, "the file stops inside its header");
    const chunk = this.pending;
    if (chunk.length < TAG_SIZE) {
      throw new E2EError(chunk.length ? CORRUPTED : TRUNCATED, "the file stops before its final chunk");
    }
    let plain;
    try {
      plain = await this.decrypt(chunk, true);
    } catch (e) {
      try {
        await subtle().decrypt({ name: "AES-GCM", iv: chunkNonce(this.prefix, this.chunk, false) }, this.handle, chunk);
      } catch (e2) {
        throw new E2EError(CORRUPTED, `chunk ${this.chunk} fails authentication`);
      }
      throw new E2EError(TRUNCATED, "the file stops before its final chunk");
    }
    this.pending = new Uint8Array(0);
    this.done = true;
    return plain;
  }
}

/**
 * Decrypt a whole encrypted file (a download).
 * @param {Blob|ArrayBuffer|Uint8Array} source the encrypted file
 * @param {Uint8Array} key 32 bytes
 * @param {Uint8Array} prefix the announced nonce prefix, 7 bytes
 * @param {number} [firstChunk] 0, or the chunk a resumed download starts at
 *   (source then holds the encrypted file from encryptedOffset(firstChunk))
 * @returns {Promise<Uint8Array>} the plaintext
 * @throws {E2EError} truncated or corrupted (reordering, any changed byte,
 *   a wrong key or prefix)
 */
export async function decryptFile(source, key, prefix, firstChunk = 0) {
  const decryptor = new FileDecryptor(key, prefix, firstChunk);
  const size = sizeOf(source);
  const parts = [];
  const step = 16 * (CHUNK_SIZE + TAG_SIZE);
  for (let offset = 0; offset < size; offset += step) {
    parts.push(await decryptor.update(await readBytes(source, offset, Math.min(size, offset + step))));
  }
  parts.push(await decryptor.finish());
  return concat(...parts);
}

/** The hex SHA-256 of bytes (to check an encrypted download against the message's "sha256"). */
export async function sha256Hex(data) {
  return hex(await sha256(bytesOf(data)));
}

/**
 * HPKE (RFC 9180) base mode, single-shot Seal and Open, on WebCrypto only:
 * KEM DHKEM(X25519, HKDF-SHA256) (0x0020), KDF HKDF-SHA256 (0x0001), AEAD
 * AES-128-GCM (0x0001) or AES-256-GCM (0x0002). The end-to-end envelope
 * (crypto.js, issue 21) wraps its message keys with the AES-256-GCM suite;
 * AES-128-GCM is here for RFC 9180's test vector A.1.1.
 *
 * WebCrypto's HKDF does extract and expand in one step, and HPKE needs them
 * apart (LabeledExtract / LabeledExpand, RFC 9180 section 4), so both are
 * built from HMAC-SHA256 as RFC 5869 defines them.
 *
 * Keys: X25519 public keys are 32 raw bytes; private keys are WebCrypto
 * CryptoKey objects (usage "deriveBits", extractable or not).
 */

const subtle = () => globalThis.crypto.subtle;
const ascii = (text) => new TextEncoder().encode(text);

/** Suite ids of RFC 9180 section 7. */
export const KEM_X25519_HKDF_SHA256 = 0x0020;
export const KDF_HKDF_SHA256 = 0x0001;
export const AEAD_AES_128_GCM = 0x0001;
export const AEAD_AES_256_GCM = 0x0002;

/** Key lengths (Nk), in bytes, of the AEADs supported. */
const AEAD_KEY_LENGTH = { [AEAD_AES_128_GCM]: 16, [AEAD_AES_256_GCM]: 32 };
const NONCE_LENGTH = 12;
const HASH_LENGTH = 32;
const X25519_LENGTH = 32;
const MODE_BASE = 0x00;

/** The suite of the envelope contract v1: X25519, HKDF-SHA256, AES-256-GCM. */
export const SUITE_V1 = Object.freeze({
  kem: KEM_X25519_HKDF_SHA256, kdf: KDF_HKDF_SHA256, aead: AEAD_AES_256_GCM,
});

/** The byte strings given, one after the other, in a new Uint8Array. */
export function concat(...parts) {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** I2OSP(n, width): n as `width` bytes, big-endian. */
export function i2osp(n, width) {
  const out = new Uint8Array(width);
  for (let i = width - 1; i >= 0; i -= 1) {
    out[i] = n & 0xff;
    n = Math.floor(n / 256);
  }
  return out;
}

function bytesOf(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("expected bytes (Uint8Array or ArrayBuffer)");
}

/** HMAC-SHA256(key, data) as a Uint8Array of 32 bytes. */
async function hmac(key, data) {
  const handle = await subtle().importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle().sign("HMAC", handle, data));
}

/** HKDF-Extract (RFC 5869 2.2); an empty salt is HashLen zero bytes. */
export async function hkdfExtract(salt, ikm) {
  return hmac(salt.length ? salt : new Uint8Array(HASH_LENGTH), ikm);
}

/** HKDF-Expand (RFC 5869 2.3) to `length` bytes (at most 255 * 32). */
export async function hkdfExpand(prk, info, length) {
  if (length > 255 * HASH_LENGTH) throw new RangeError("HKDF-Expand length too large");
  const out = new Uint8Array(length);
  let previous = new Uint8Array(0);
  for (let i = 1, offset = 0; offset < length; i += 1) {
    previous = await hmac(prk, concat(previous, info, Uint8Array.of(i)));
    out.set(previous.subarray(0, Math.min(HASH_LENGTH, length - offset)), offset);
    offset += HASH_LENGTH;
  }
  return out;
}

async function labeledExtract(suiteId, salt, label, ikm) {
  return hkdfExtract(salt, concat(ascii("HPKE-v1"), suiteId, ascii(label), ikm));
}

async function labeledExpand(suiteId, prk, label, info, length) {
  return hkdfExpand(prk, concat(i2osp(length, 2), ascii("HPKE-v1"), suiteId, ascii(label), info), length);
}

const KEM_SUITE_ID = concat(ascii("KEM"), i2osp(KEM_X25519_HKDF_SHA256, 2));

function checkSuite(suite) {
  if (suite.kem !== KEM_X25519_HKDF_SHA256 || suite.kdf !== KDF_HKDF_SHA256 || !(suite.aead in AEAD_KEY_LENGTH)) {
    throw new Error(`unsupported HPKE suite ${JSON.stringify(suite)}`);
  }
}

/** An X25519 public key (32 raw bytes) as a CryptoKey. */
export async function importX25519Public(raw) {
  const bytes = bytesOf(raw);
  if (bytes.length !== X25519_LENGTH) throw new Error("an X25519 public key is 32 bytes");
  return subtle().importKey("raw", bytes, { name: "X25519" }, true, []);
}

/**
 * An X25519 private key (32 raw bytes, RFC 7748) as a CryptoKey for
 * deriveBits, through its PKCS #8 form (WebCrypto imports no raw private
 * keys). For test vectors and fixed keys.
 */
export async function importX25519Private(raw, extractable = false) {
  const bytes = bytesOf(raw);
  if (bytes.length !== X25519_LENGTH) throw new Error("an X25519 private key is 32 bytes");
  const pkcs8 = concat(Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e,
    0x04, 0x22, 0x04, 0x20), bytes);
  return subtle().importKey("pkcs8", pkcs8, { name: "X25519" }, extractable, ["deriveBits"]);
}

async function dh(privateKey, publicKey) {
  return new Uint8Array(await subtle().deriveBits({ name: "X25519", public: publicKey }, privateKey, 256));
}

async function extractAndExpand(dhValue, kemContext) {
  const prk = await labeledExtract(KEM_SUITE_ID, new Uint8Array(0), "eae_prk", dhValue);
  return labeledExpand(KEM_SUITE_ID, prk, "shared_secret", kemContext, HASH_LENGTH);
}

async function keySchedule(suite, sharedSecret, info) {
  const suiteId = concat(ascii("HPKE"), i2osp(suite.kem, 2), i2osp(suite.kdf, 2), i2osp(suite.aead, 2));
  const empty = new Uint8Array(0);
  const pskIdHash = await labeledExtract(suiteId, empty, "psk_id_hash", empty);
  const infoHash = await labeledExtract(suiteId, empty, "info_hash", info);
  const context = concat(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
  const secret = await labeledExtract(suiteId, sharedSecret, "secret", empty);
  const key = await labeledExpand(suiteId, secret, "key", context, AEAD_KEY_LENGTH[suite.aead]);
  const baseNonce = await labeledExpand(suiteId, secret, "base_nonce", context, NONCE_LENGTH);
  const aeadKey = await subtle().importKey("raw", key, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  return { aeadKey, baseNonce };
}

/**
 * Single-shot HPKE base-mode Seal (RFC 9180 sections 5.1.1 and 6.1).
 *
 * @param {{kem: number, kdf: number, aead: number}} suite e.g. SUITE_V1
 * @param {Uint8Array} recipientPublic the recipient's X25519 public key, 32 bytes
 * @param {Uint8Array} info
 * @param {Uint8Array} aad
 * @param {Uint8Array} plaintext
 * @param {CryptoKeyPair} [ephemeral] a fixed ephemeral X25519 key pair (test
 *   vectors only; by default a new one is generated)
 * @returns {Promise<{enc: Uint8Array, ciphertext: Uint8Array}>} enc: 32 bytes;
 *   ciphertext: the plaintext's length plus the 16-byte tag
 */
export async function seal(suite, recipientPublic, info, aad, plaintext, ephemeral = null) {
  checkSuite(suite);
  const pkR = bytesOf(recipientPublic);
  const pair = ephemeral || await subtle().generateKey({ name: "X25519" }, false, ["deriveBits"]);
  const enc = new Uint8Array(await subtle().exportKey("raw", pair.publicKey));
  const sharedSecret = await extractAndExpand(await dh(pair.privateKey, await importX25519Public(pkR)),
    concat(enc, pkR));
  const { aeadKey, baseNonce } = await keySchedule(suite, sharedSecret, bytesOf(info));
  const ciphertext = new Uint8Array(await subtle().encrypt(
    { name: "AES-GCM", iv: baseNonce, additionalData: bytesOf(aad) }, aeadKey, bytesOf(plaintext)));
  return { enc, ciphertext };
}

/**
 * Single-shot HPKE base-mode Open (RFC 9180 sections 5.1.1 and 6.1).
 *
 * @param {{kem: number, kdf: number, aead: number}} suite
 * @param {Uint8Array} enc the sender's encapsulated key, 32 bytes
 * @param {CryptoKey} recipientPrivate the recipient's X25519 private key
 * @param {Uint8Array} recipientPublic its public key, 32 bytes (part of the KEM context)
 * @param {Uint8Array} info
 * @param {Uint8Array} aad
 * @param {Uint8Array} ciphertext
 * @returns {Promise<Uint8Array>} the plaintext
 * @throws when the enc is malformed or authentication fails
 */
export async function open(suite, enc, recipientPrivate, recipientPublic, info, aad, ciphertext) {
  checkSuite(suite);
  const encBytes = bytesOf(enc);
  const sharedSecret = await extractAndExpand(await dh(recipientPrivate, await importX25519Public(encBytes)),
    concat(encBytes, bytesOf(recipientPublic)));
  const { aeadKey, baseNonce } = await keySchedule(suite, sharedSecret, bytesOf(info));
  return new Uint8Array(await subtle().decrypt(
    { name: "AES-GCM", iv: baseNonce, additionalData: bytesOf(aad) }, aeadKey, bytesOf(ciphertext)));
}

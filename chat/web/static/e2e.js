/**
 * The page's end-to-end encryption of private messages (issue 21,
 * PROTOCOL.md section 11, the envelope contract v1 of docs/protocol.md):
 * this browser's device (crypto.js, kept non-extractable in IndexedDB),
 * published with `/key publish` after every `registered`; the known
 * contacts' devices, trusted on first use (localStorage); sealing a private
 * message to the recipient's devices and the user's own, opening what
 * arrives, `/verify NICK` and `/trust NICK`.
 *
 * Trust on first use: the first devices seen of a nick are accepted. Later,
 * a new device of a contact whose keys were verified, or a new device
 * appearing where a known one vanished (a changed key), is *held*: nothing
 * is sealed to it and nothing it signs is opened until the user says
 * `/trust NICK` ("Trust new key"). A new extra device of a contact not
 * verified is accepted (the same person on a second browser).
 *
 * `/keys NICK` requests are bracketed by `/ping ksN` and `/ping kN` like the
 * history requests (history.js): an `error` between the two answers the
 * request (say `no-such-nick`) and is not the user's business; a `kN` pong
 * without a `keys` event before it ends the request with no answer.
 *
 * On a page without a secure context (plain HTTP from a LAN address) there
 * is no WebCrypto: `available` is false, private messages go in the clear
 * and the page says so in every private conversation.
 */

import {
  CORRUPTED, E2EError, b64decode, b64encode, bundleBytes, concat, decryptFile, deviceId, e2eStatus, encryptFile,
  encryptedSize, fingerprint, loadOrCreateDevice, openEnvelope, sealEnvelope, sha256Hex, UNKNOWN_SENDER_DEVICE,
} from "./crypto.js";

const STORE = "chat.e2e.contacts";
/** The name an encrypted file is uploaded under (its real name travels sealed). */
export const ENCRYPTED_NAME = "encrypted.chate2e";
const PUBLISHED_INFO = /^(Your key is published|This key is published already)/;

/** Short English for the reasons of crypto.js's E2EError. */
const REASONS = {
  malformed: "malformed envelope",
  "not-for-this-device": "not sealed to this browser's key",
  "unknown-sender-device": "the sender's key is not known or not trusted",
  "bad-signature": "bad signature",
  corrupted: "corrupted",
  truncated: "truncated",
  unsupported: "unsupported content",
  "no-secure-context": "this page cannot decrypt: it needs the TLS web listener (https://…)",
};

/** The words for an E2EError (or any failure) in "could not be decrypted (WHY)". */
export function reasonText(error) {
  if (error instanceof E2EError) return REASONS[error.reason] || error.reason;
  return "error";
}

function lower(nick) {
  return String(nick).toLowerCase();
}

/**
 * The known contacts: lower nick -> {devices: {id: bundle b64}, verified,
 * pending: {id: bundle b64}} kept in localStorage (public keys only).
 */
export class ContactStore {
  constructor(storage = globalThis.localStorage) {
    this.storage = storage;
    this.contacts = {};
    try {
      const raw = storage && storage.getItem(STORE);
      if (raw) this.contacts = JSON.parse(raw) || {};
    } catch (e) {
      this.contacts = {};
    }
  }

  get(nick) {
    return this.contacts[lower(nick)] || null;
  }

  put(nick, record) {
    this.contacts[lower(nick)] = record;
    try {
      if (this.storage) this.storage.setItem(STORE, JSON.stringify(this.contacts));
    } catch (e) {
      /* not remembered: trust starts again next time */
    }
  }
}

/** Times an encrypted download resumes after its connection broke. */
const RESUME_ATTEMPTS = 3;

/** The daemon refused the download (an HTTP error): resuming would not help. */
class DownloadRefused extends Error {}

export class E2E {
  /**
   * @param {object} hooks
   * @param {(line: string) => void} hooks.send one input line to the daemon
   * @param {() => string} hooks.me the user's nick
   * @param {(nick: string, kind: string, text: string) => void} hooks.note a line in the private conversation with nick
   * @param {(nick: string) => void} hooks.changed the warning state of nick's conversation changed
   * @param {() => number} [hooks.limit] the daemon's line limit in bytes
   * @param {(nick: string) => void} [hooks.trusted] the user trusted nick's keys (/trust): open again what failed
   */
  constructor(hooks) {
    this.hooks = hooks;
    const status = e2eStatus();
    this.available = status.available;
    this.unavailableReason = status.reason;
    this.store = new ContactStore();
    /** Promise<Device> once started */
    this.devicePromise = null;
    this.device = null;
    /** whether the daemon confirmed our key on this socket */
    this.published = false;
    this.seq = 0;
    /** seq -> {nick, resolve, answered} */
    this.pending = new Map();
    this.active = null;
    /** lower nick -> the warning shown in their conversation, or null */
    this.warnings = new Map();
    /** lower nick -> texts held until /trust */
    this.held = new Map();
    /** envelope -> plaintext of what this page sealed (to show its echo) */
    this.sent = new Map();
    /** lower nick -> a send chain, so messages leave in the order typed */
    this.chains = new Map();
    /** lower nicks told "not encrypted: NICK has no key" since they last had one */
    this.toldClear = new Set();
  }

  /** The device of this browser (loaded or created once). */
  deviceReady() {
    if (!this.available) return Promise.resolve(null);
    if (!this.devicePromise) {
      this.devicePromise = loadOrCreateDevice().then((device) => {
        this.device = device;
        return device;
      });
    }
    return this.devicePromise;
  }

  /** After every `registered`: publish this device's key. */
  async registered() {
    this.published = false;
    if (!this.available) return;
    try {
      const device = await this.deviceReady();
      this.hooks.send(`/key publish ${b64encode(device.bundle)}`);
    } catch (e) {
      console.error("chat: no device key", e);
      this.available = false;
      this.unavailableReason = `this browser could not make a key (${e.message})`;
    }
  }

  /**
   * A new socket: requests in flight are lost. They fail (a message waiting
   * for keys is not sent) rather than count as "no key", which would send
   * it in the clear.
   */
  reset() {
    for (const req of this.pending.values()) req.reject(new Error("the connection was lost"));
    this.pending.clear();
    this.active = null;
    this.published = false;
  }

  /** An `info` event: true when it is ours to swallow (the key publication). */
  info(ev) {
    if (PUBLISHED_INFO.test(ev.text || "")) {
      this.published = true;
      return true;
    }
    return false;
  }

  /** Whether an `error` arriving now answers our own `/keys`. */
  get answering() {
    return !!this.active && !this.active.answered;
  }

  /** A `pong`: true when it was one of ours. */
  pong(token) {
    const m = /^k(s?)(\d+)$/.exec(token || "");
    if (!m) return false;
    const req = this.pending.get(Number(m[2]));
    if (!req) return true;
    if (m[1]) {
      this.active = req;
      return true;
    }
    if (this.active === req) this.active = null;
    this.pending.delete(req.seq);
    if (!req.answered) {
      req.answered = true;
      req.resolve(null);
    }
    return true;
  }

  /** A `keys` event: true when it answers one of our requests. */
  keys(ev) {
    for (const req of this.pending.values()) {
      if (!req.answered && lower(req.nick) === lower(ev.nick || "")) {
        req.answered = true;
        req.resolve(ev);
        return true;
      }
    }
    return false;
  }

  /**
   * Ask the daemon for a nick's published keys.
   * @returns {Promise<object|null>} the `keys` event, or null (no such nick);
   *   rejects when the socket closes first
   */
  fetchKeys(nick) {
    return new Promise((resolve, reject) => {
      this.seq += 1;
      const req = { seq: this.seq, nick, resolve, reject, answered: false };
      this.pending.set(req.seq, req);
      this.hooks.send(`/ping ks${req.seq}`);
      this.hooks.send(`/keys ${nick}`);
      this.hooks.send(`/ping k${req.seq}`);
    });
  }

  /**
   * The devices of a `keys` event, by ids computed here (the daemon's
   * `device` field is not trusted): Map id -> bundle b64.
   */
  async published_(ev) {
    const found = new Map();
    for (const k of (ev && ev.keys) || []) {
      try {
        const bundle = bundleBytes(k.key);
        found.set(await deviceId(bundle), b64encode(bundle));
      } catch (e) {
        /* a key of the wrong shape is no key */
      }
    }
    return found;
  }

  /**
   * Apply trust on first use to the devices a nick publishes now.
   * @returns {{trusted: string[], held: string[]}} bundles (b64) trusted, and device ids held
   */
  trustState(nick, current) {
    let record = this.store.get(nick);
    if (!record) {
      record = { devices: Object.fromEntries(current), verified: false, pending: {} };
      if (current.size) this.store.put(nick, record);
      return { trusted: [...current.values()], held: [] };
    }
    const known = record.devices || {};
    const fresh = [...current.keys()].filter((id) => !(id in known));
    const vanished = Object.keys(known).filter((id) => !current.has(id));
    let held = [];
    if (fresh.length && (record.verified || vanished.length)) {
      held = fresh;
      record.pending = Object.fromEntries(fresh.map((id) => [id, current.get(id)]));
      this.store.put(nick, record);
    } else if (fresh.length) {
      for (const id of fresh) known[id] = current.get(id);
      record.devices = known;
      this.store.put(nick, record);
    }
    const trusted = [...current.entries()].filter(([id]) => id in known).map(([, b]) => b);
    this.setWarning(nick, held.length ? this.warningText(nick, record, vanished.length > 0) : null);
    return { trusted, held };
  }

  warningText(nick, record, changed) {
    const what = changed ? `The encryption key of ${nick} has changed` : `${nick} has a new device`;
    const verified = record.verified ? " (you had verified their keys)" : "";
    return `⚠ ${what}${verified}. This may be a new browser of theirs, or someone listening in. `
      + `Check with /verify ${nick}; nothing is sent to the new key until you trust it.`;
  }

  setWarning(nick, text) {
    const key = lower(nick);
    const before = this.warnings.get(key) || null;
    if (text) this.warnings.set(key, { nick, text });
    else this.warnings.delete(key);
    if ((before && before.text) !== (text || null)) this.hooks.changed(nick);
  }

  /** The warning for a private conversation with nick, or null. */
  warning(nick) {
    return this.warnings.get(lower(nick)) || null;
  }

  /**
   * Send a private message: sealed to the recipient's trusted devices and
   * the user's own, or in the clear (saying so) when the recipient has no
   * key. In the order called, per recipient.
   */
  sendPrivate(nick, text, action = false) {
    const key = lower(nick);
    const chain = (this.chains.get(key) || Promise.resolve())
      .then(() => this.sendNow(nick, text, action))
      .catch((e) => {
        console.error("chat: could not encrypt", e);
        this.hooks.note(nick, "error", `Not sent: could not encrypt (${e.message}).`);
      });
    this.chains.set(key, chain);
    return chain;
  }

  /**
   * Where a private message to nick goes now: "clear" (this page cannot
   * encrypt, or nick has no key: said once in the conversation), "held"
   * (nick's key changed and is not trusted yet) or "sealed" with the
   * bundles to seal to (nick's trusted devices, the user's own, this one).
   * @returns {Promise<{mode: string, bundles: Array, device: object|null}>}
   */
  async recipients(nick) {
    if (!this.available) return { mode: "clear", bundles: [], device: null };
    const device = await this.deviceReady();
    const [theirs, mine] = await Promise.all([this.fetchKeys(nick), this.fetchKeys(this.hooks.me())]);
    const current = await this.published_(theirs);
    if (!theirs || !current.size) {
      if (!this.toldClear.has(lower(nick))) {
        this.toldClear.add(lower(nick));
        this.hooks.note(nick, "warning", `not encrypted: ${nick} has no key (their client cannot decrypt)`);
      }
      return { mode: "clear", bundles: [], device };
    }
    this.toldClear.delete(lower(nick));
    const { trusted, held } = this.trustState(nick, current);
    if (!trusted.length) return { mode: "held", bundles: [], device };
    if (held.length) {
      this.hooks.note(nick, "warning", `Sent only to ${nick}'s devices you trust, not to the new key.`);
    }
    const own = this.trustState(this.hooks.me(), await this.published_(mine));
    return { mode: "sealed", bundles: [...trusted, ...own.trusted, device.bundle], device };
  }

  /** Seal a plaintext object to `to` and send it with /emsg (false when too long). */
  async seal(nick, plaintext, to) {
    const envelope = await sealEnvelope(plaintext, to.device, to.bundles);
    const line = `/emsg ${nick} ${envelope}`;
    const limit = this.hooks.limit ? this.hooks.limit() : Infinity;
    if (line.length > limit) {
      this.hooks.note(nick, "error", `Not sent: the message is longer than ${limit} bytes once encrypted.`);
      return false;
    }
    this.sent.set(envelope, plaintext);
    this.hooks.send(line);
    return true;
  }

  async sendNow(nick, text, action) {
    const to = await this.recipients(nick);
    if (to.mode === "clear") {
      this.hooks.send(`/msg ${nick} ${action ? `* ${this.hooks.me()} ` : ""}${text}`);
      return;
    }
    if (to.mode === "held") {
      const queue = this.held.get(lower(nick)) || [];
      queue.push({ text, action });
      this.held.set(lower(nick), queue);
      this.hooks.note(nick, "warning",
        `Not sent yet: ${nick}'s key changed. Press "Trust new key" (or /trust ${nick}) to send it.`);
      return;
    }
    await this.seal(nick, action ? { action: true, text, type: "text" } : { text, type: "text" }, to);
  }

  /**
   * Send a file to nick: encrypted in the browser (STREAM chunks), uploaded
   * as "encrypted.chate2e", its key and name sealed in an /emsg; in the clear
   * (said so) when nick has no key.
   * @param {File} file
   * @param {(blob: Blob, name: string) => Promise<object>} upload uploads to nick, resolves with the offer {id, ...}
   * @returns {Promise<string>} "sealed", "clear" or "held" (not sent)
   */
  async sendFile(nick, file, upload) {
    const to = await this.recipients(nick);
    if (to.mode === "clear") {
      await upload(file, file.name || "file");
      return "clear";
    }
    if (to.mode === "held") {
      this.hooks.note(nick, "warning",
        `${file.name} was not sent: ${nick}'s key changed. Check with /verify ${nick}, then trust it and send again.`);
      return "held";
    }
    const sealed = await encryptFile(file);
    const offer = await upload(new Blob([sealed.data]), ENCRYPTED_NAME);
    await this.seal(nick, {
      key: b64encode(sealed.key), name: file.name || "file", offer: offer.id, prefix: b64encode(sealed.prefix),
      sha256: sealed.sha256, size: sealed.size, type: "file",
    }, to);
    return "sealed";
  }

  /**
   * Fetch an encrypted file and decrypt it, checking the SHA-256 the sealed
   * message announced and every chunk's authentication. The download is
   * read as it arrives, telling `onProgress(received, total)` (bytes of the
   * encrypted file); when the connection breaks it resumes from the byte it
   * reached (`Range: bytes=N-`, PROTOCOL.md section 9), up to
   * RESUME_ATTEMPTS times, one second apart.
   * @param {object} file the plaintext of the message: {key, prefix, offer, sha256, name, size}
   * @param {string} token the session's bearer token
   * @param {(received: number, total: number) => void} [onProgress]
   * @returns {Promise<Blob>} the plaintext file
   * @throws {E2EError|Error} corrupted, truncated, or the download failed
   */
  async fetchFile(file, token, onProgress = () => {}) {
    const total = encryptedSize(file.size);
    const parts = [];
    let received = 0;
    for (let attempt = 0; received < total; attempt += 1) {
      const headers = { Authorization: `Bearer ${token}` };
      if (received > 0) headers.Range = `bytes=${received}-`;
      try {
        const response = await fetch(`/files/${encodeURIComponent(file.offer)}`, { headers });
        if (!response.ok || (received > 0 && response.status !== 206)) {
          throw new DownloadRefused(`the download failed (HTTP ${response.status})`);
        }
        const reader = response.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parts.push(value);
          received += value.length;
          onProgress(received, total);
        }
        if (received < total) throw new Error("the download ended early");
      } catch (e) {
        if (e instanceof DownloadRefused || attempt >= RESUME_ATTEMPTS) throw e;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    const data = concat(...parts);
    if (await sha256Hex(data) !== file.sha256) throw new E2EError(CORRUPTED, "the file is not the one announced");
    const plain = await decryptFile(data, b64decode(file.key), b64decode(file.prefix));
    if (plain.length !== file.size) throw new E2EError(CORRUPTED, "the file has another size than announced");
    return new Blob([plain]);
  }

  /**
   * `/trust NICK`: the devices NICK publishes now become the known ones,
   * verified; what was held is sent.
   */
  async trust(nick) {
    if (!this.available) {
      this.hooks.note(nick, "error", `No encryption on this page: ${this.unavailableReason}.`);
      return;
    }
    const current = await this.published_(await this.fetchKeys(nick));
    if (!current.size) {
      this.hooks.note(nick, "error", `${nick} has published no encryption key.`);
      return;
    }
    this.store.put(nick, { devices: Object.fromEntries(current), verified: true, pending: {} });
    this.setWarning(nick, null);
    const fps = await Promise.all([...current.values()].map((b) => fingerprint(b)));
    this.hooks.note(nick, "info", `You trust ${nick}'s keys now (verified): ${fps.join("; ")}`);
    if (this.hooks.trusted) this.hooks.trusted(nick);
    const queue = this.held.get(lower(nick)) || [];
    this.held.delete(lower(nick));
    for (const { text, action } of queue) this.sendPrivate(nick, text, action);
  }

  /**
   * `/verify NICK`: both sides' fingerprints, per device, to compare aloud.
   * @returns {Promise<string[]>} the lines shown
   */
  async verify(nick) {
    if (!this.available) {
      const line = `No encryption on this page: ${this.unavailableReason}.`;
      this.hooks.note(nick, "error", line);
      return [line];
    }
    const device = await this.deviceReady();
    const current = await this.published_(await this.fetchKeys(nick));
    const record = this.store.get(nick);
    const lines = [`Compare these fingerprints with ${nick} (aloud, or another way you trust):`];
    lines.push(`Yours (this browser, device ${device.id}): ${await fingerprint(device.bundle)}`);
    if (!current.size) lines.push(`${nick} has published no encryption key: messages to them are not encrypted.`);
    for (const [id, bundle] of current) {
      let state = "new";
      if (record && record.devices && id in record.devices) state = record.verified ? "verified" : "trusted on first use";
      else if (record && record.pending && id in record.pending) state = "NOT trusted: new key";
      lines.push(`${nick} (device ${id}, ${state}): ${await fingerprint(bundle)}`);
    }
    if (current.size) lines.push(`When they match, type /trust ${nick}.`);
    this.hooks.note(nick, "verify", lines.join("\n"));
    return lines;
  }

  /**
   * Open a private message's envelope: the plaintext object, or throws
   * E2EError. An unknown sender device makes one `/keys SENDER` and a retry.
   */
  async open(ev) {
    const known = this.sent.get(ev.e2e);
    if (known) return known;
    const device = await this.deviceReady();
    if (!device) throw new E2EError("no-secure-context", "no encryption on this page");
    const sender = ev.from;
    const lookup = (id) => {
      if (id === device.id) return device.bundle;
      const record = this.store.get(sender);
      return (record && record.devices && record.devices[id]) || null;
    };
    try {
      return (await openEnvelope(ev.e2e, device, lookup)).plaintext;
    } catch (e) {
      if (!(e instanceof E2EError) || e.reason !== UNKNOWN_SENDER_DEVICE) throw e;
    }
    this.trustState(sender, await this.published_(await this.fetchKeys(sender)));
    return (await openEnvelope(ev.e2e, device, lookup)).plaintext;
  }
}

/**
 * The page's state: conversations (rooms and private conversations), their
 * messages by id (de-duplicated, kept in id order), people, unread counts
 * and mentions. No DOM here: the model tells its listener what changed.
 *
 * A conversation's key is the lower-cased room name ("#lobby") or "@" and
 * the lower-cased nick ("@bob"). Message ids are the daemon's (integers,
 * increasing across the server); file offers take ids from the same counter,
 * so they are ordered with the messages.
 */

import { mentions } from "./format.js";

/** The key of a room or nick. */
export function keyOf(name) {
  return name.startsWith("#") ? name.toLowerCase() : `@${name.toLowerCase()}`;
}

export class Conversation {
  constructor(kind, name) {
    /** "room" or "private" */
    this.kind = kind;
    /** the room name as the server spells it, or the other nick */
    this.name = name;
    this.key = keyOf(name);
    /** items in display order: {type: "message"|"private"|"file"|"event", id?, ...} */
    this.items = [];
    /** ids of messages and file offers present */
    this.ids = new Set();
    this.unread = 0;
    this.mentions = 0;
    this.topic = "";
    this.topicBy = "";
    /** room members: Map lower nick -> {nick, status, idle} */
    this.users = new Map();
    this.joined = kind === "room";
    /** no older messages to fetch */
    this.exhausted = false;
    /** an older-history request is on its way */
    this.loadingOlder = false;
    this.localSeq = 0;
  }

  /** The smallest message id held (not file offers), or null. */
  oldestMessageId() {
    for (const item of this.items) {
      if (item.id !== undefined && item.type !== "file") return item.id;
    }
    return null;
  }

  /** The largest message id held (not file offers), or 0. */
  newestMessageId() {
    for (let i = this.items.length - 1; i >= 0; i -= 1) {
      const item = this.items[i];
      if (item.id !== undefined && item.type !== "file") return item.id;
    }
    return 0;
  }

  /**
   * Insert an item; items with an id go in id order and only once.
   * @returns {number} the index it went to, or -1 when it was there already
   */
  insert(item) {
    if (item.id === undefined) {
      item.localKey = `l${(this.localSeq += 1)}`;
      this.items.push(item);
      return this.items.length - 1;
    }
    if (this.ids.has(item.id)) return -1;
    this.ids.add(item.id);
    let i = this.items.length;
    // Walk back over items with a larger id; events without id that came
    // after a larger id stay after it.
    while (i > 0) {
      const prev = this.items[i - 1];
      if (prev.id !== undefined && prev.id < item.id) break;
      if (prev.id === undefined && !this._hasLargerIdBefore(i - 1, item.id)) break;
      i -= 1;
    }
    this.items.splice(i, 0, item);
    return i;
  }

  _hasLargerIdBefore(index, id) {
    for (let j = index - 1; j >= 0; j -= 1) {
      const it = this.items[j];
      if (it.id !== undefined) return it.id > id;
    }
    return false;
  }
}

export class ChatModel {
  constructor() {
    /** Map key -> Conversation, in creation order */
    this.conversations = new Map();
    this.me = "";
    this.account = false;
    this.token = "";
    this.currentKey = null;
    this.limits = { line: 4096, nick: 24, file: 104857600 };
    /** the largest message id seen in any conversation (ids are server-wide) */
    this.newestId = 0;
    /** whether the user is looking at the page (visible tab) */
    this.visible = true;
  }

  isMe(nick) {
    return !!nick && nick.toLowerCase() === this.me.toLowerCase();
  }

  get current() {
    return this.currentKey ? this.conversations.get(this.currentKey) || null : null;
  }

  room(name, create = true) {
    const key = keyOf(name);
    let conv = this.conversations.get(key);
    if (!conv && create) {
      conv = new Conversation("room", name);
      this.conversations.set(key, conv);
    }
    return conv || null;
  }

  privateWith(nick, create = true) {
    const key = keyOf(nick);
    let conv = this.conversations.get(key);
    if (!conv && create) {
      conv = new Conversation("private", nick);
      this.conversations.set(key, conv);
    }
    return conv || null;
  }

  /** Conversations in sidebar order: rooms, then private ones. */
  ordered() {
    const all = [...this.conversations.values()];
    return [...all.filter((c) => c.kind === "room"), ...all.filter((c) => c.kind === "private")];
  }

  /**
   * Add a room message or private message event (live or from history).
   * @param {object} event a `message` or `private` event of the protocol
   * @param {boolean} live whether it arrived now (counts as unread)
   * @returns {{conv: Conversation, index: number, item: object}|null}
   */
  addMessage(event, live) {
    let conv;
    if (event.type === "private") {
      const other = this.isMe(event.from) ? event.to : event.from;
      conv = this.privateWith(other);
    } else {
      conv = this.room(event.room);
    }
    const fromMe = this.isMe(event.from);
    const mention = !fromMe && (event.type === "private" || mentions(event.text, this.me));
    const item = { ...event, fromMe, mention };
    if (typeof event.id === "number" && event.id > this.newestId) this.newestId = event.id;
    const index = conv.insert(item);
    if (index === -1) return null;
    if (live && !fromMe && !(conv.key === this.currentKey && this.visible)) {
      conv.unread += 1;
      if (mention) conv.mentions += 1;
    }
    return { conv, index, item };
  }

  /** Add a file offer to its conversation. */
  addFile(offer) {
    let conv;
    if (String(offer.to).startsWith("#")) conv = this.room(offer.to);
    else if (this.isMe(offer.to)) conv = this.privateWith(offer.from);
    else conv = this.privateWith(offer.to);
    const item = { ...offer, type: "file", id: offer.id, fromMe: this.isMe(offer.from) };
    const index = conv.insert(item);
    if (index === -1) return null;
    if (!item.fromMe && !(conv.key === this.currentKey && this.visible)) conv.unread += 1;
    return { conv, index, item };
  }

  /** Add a line without id (join, part, info, error...) to a conversation. */
  addEvent(conv, kind, text) {
    const item = { type: "event", kind, text, ts: new Date().toISOString() };
    const index = conv.insert(item);
    return { conv, index, item };
  }

  /** Mark a conversation read. */
  markRead(conv) {
    if (!conv) return;
    conv.unread = 0;
    conv.mentions = 0;
  }

  /** Total unread count (for the title). */
  totalUnread() {
    let n = 0;
    for (const c of this.conversations.values()) n += c.unread;
    return n;
  }

  /** Rename a nick everywhere (members, private conversation, self). */
  renameNick(oldNick, newNick) {
    if (this.isMe(oldNick)) this.me = newNick;
    for (const conv of this.conversations.values()) {
      const user = conv.users.get(oldNick.toLowerCase());
      if (user) {
        conv.users.delete(oldNick.toLowerCase());
        user.nick = newNick;
        conv.users.set(newNick.toLowerCase(), user);
      }
    }
    const oldKey = keyOf(oldNick);
    const conv = this.conversations.get(oldKey);
    if (conv && conv.kind === "private" && !this.conversations.has(keyOf(newNick))) {
      const entries = [...this.conversations.entries()].map(([k, v]) => (k === oldKey ? [keyOf(newNick), v] : [k, v]));
      conv.name = newNick;
      conv.key = keyOf(newNick);
      this.conversations = new Map(entries);
      if (this.currentKey === oldKey) this.currentKey = conv.key;
    }
  }

  /** Remove a conversation from the sidebar. */
  remove(key) {
    this.conversations.delete(key);
    if (this.currentKey === key) this.currentKey = null;
  }
}

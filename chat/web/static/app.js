/**
 * The web client's wiring: the login form, the socket's events into the
 * model, the model into the view, and what the user types into lines for
 * the daemon (PROTOCOL.md sections 3-5 and 9).
 *
 * Lines typed with "/" are sent as they are. A plain line goes to the
 * conversation shown: in a room, after a `/join` that makes that room the
 * daemon's current one when it is not already; in a private conversation
 * (and a typed `/msg NICK TEXT`), sealed to NICK's devices and the user's
 * own as `/emsg NICK ENVELOPE` when NICK has a key, else as `/msg NICK TEXT`
 * said to be "not encrypted" (e2e.js; `/verify NICK` and `/trust NICK` are
 * the page's own commands).
 *
 * After a reconnection the page logs in again with the same nick (or the
 * login typed), joins its rooms again and fetches what it missed by id
 * (`/history N #room before ID` until it reaches the last id it had);
 * messages are de-duplicated by id, so nothing is shown twice.
 */

import { Connection } from "./connection.js";
import { ChatModel, keyOf } from "./model.js";
import { View } from "./view.js";
import { EmojiUI, loadEmoji, mayReplace, replaceShortcodes } from "./emoji.js";
import { upload } from "./files.js";
import { HistoryRequests } from "./history.js";
import { NickCompletion, Recall } from "./keys.js";
import { askPermissionOnce, notify, setTitle } from "./notify.js";
import { formatSize } from "./format.js";
import { OPERATOR, PersonMenu, personActions, settingsWords } from "./people.js";
import { E2E, ENCRYPTED_NAME, reasonText } from "./e2e.js";

const NICK_RE = /^[A-Za-z][A-Za-z0-9_-]{0,23}$/;
const ROOM_RE = /^#[A-Za-z0-9_-]{1,32}$/;
const OLDER_BATCH = 50;
const GAP_BATCH = 100;
/** at most this many gap requests in a row per room (the rest: scroll up) */
const MAX_GAP_REQUESTS = 20;
const CURRENT_INFO = /is now your current room$/;
/** commands that act on the daemon's current room when they name none */
const CURRENT_ROOM_COMMANDS = new Set([
  "me", "part", "topic", "list", "users", "history",
  "op", "deop", "kick", "ban", "unban", "bans", "mute", "unmute", "room", "invite",
]);
const STORED_NICK = "chat.nick";
const STORED_THEME = "chat.theme";

const model = new ChatModel();
const view = new View();

/** What logs us in: {nick, password} (the password only in memory). */
let login = null;
/** a typed /login or /register, remembered once the daemon accepts it */
let pendingLogin = null;
/** a typed /password's new password, remembered once the daemon says it is changed */
let pendingPassword = null;
/** registered at least once since the page loaded */
let everRegistered = false;
/** registered on the current socket */
let sessionRegistered = false;
/** the daemon's current room on this socket (a key), or null when unknown */
let daemonCurrent = null;
/** rooms joined on this socket (keys) */
let sessionJoined = new Set();
/** "is now your current room" infos to swallow (caused by our own /join) */
let swallowCurrentInfo = 0;
/** a conversation to show once it appears (typed /join, /msg) */
let pendingSelect = null;
/** how many `rooms` / `users` replies the user asked to see */
let showRooms = 0;
let showUsers = 0;
/** info lines are not shown (until the pong "quiet-files") */
let quietInfo = false;
/** the user typed /quit: no reconnection */
let quitting = false;
/** a connection-lost line was shown for this outage */
let outageShown = false;
let nickRetries = 0;
/** lines typed while offline: {line, key} */
let outbox = [];
/** key -> the newest message id held before a reconnection */
const gapFrom = new Map();

const requests = new HistoryRequests((line) => conn.send(line));
const e2e = new E2E({
  send: (line) => conn.send(line),
  me: () => model.me,
  limit: () => model.limits.line,
  note: (nick, kind, text) => add(model.privateWith(nick), kind, text),
  changed: () => scheduleRefresh(),
  trusted: (nick) => {
    const conv = model.privateWith(nick, false);
    if (!conv) return;
    for (const item of conv.items) {
      if (item.e2e && item.e2eState === "failed") openItem(conv, item);
    }
  },
});
const conn = new Connection({
  onOpen: () => {
    sessionRegistered = false;
    daemonCurrent = null;
    sessionJoined = new Set();
    swallowCurrentInfo = 0;
    e2e.reset();
    for (const req of requests.reset()) unanswered(req, false);
  },
  onEvent: (event) => {
    try {
      handle(event);
    } catch (e) {
      // One odd event must not stop the page; say it where a developer looks.
      console.error("chat: could not show an event", event, e);
    }
  },
  onClose: () => lost(),
  onState: (state, seconds) => view.setConnection(state, seconds),
});

// ---------------------------------------------------------------- login

function startLogin(nick, password) {
  login = { nick, password: password || "" };
  quitting = false;
  view.setLoginBusy(true, "Connecting…");
  conn.open();
}

function sendLogin() {
  if (!login) return;
  if (login.password) conn.send(`/login ${login.nick} ${login.password}`);
  else conn.send(`/nick ${login.nick}`);
}

view.loginForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const nick = view.nickInput.value.trim();
  if (!NICK_RE.test(nick)) {
    view.showLogin("A nick is 1 to 24 letters, digits, _ or -, starting with a letter.");
    return;
  }
  askPermissionOnce();
  view.loginError.textContent = "";
  startLogin(nick, view.passwordInput.value);
});

function registrationFailed(event) {
  const code = event.code;
  if (everRegistered && code === "nick-taken" && nickRetries < 20) {
    // Our old session may not be gone yet: try the same nick again.
    nickRetries += 1;
    setTimeout(() => {
      if (conn.isOpen && !sessionRegistered) sendLogin();
    }, 3000);
    return;
  }
  conn.close();
  outbox = [];
  view.showLogin(event.message || code);
  view.setLoginBusy(false, "");
}

// ---------------------------------------------------------------- events

function handle(ev) {
  switch (ev.type) {
    case "welcome":
      if (ev.limits) model.limits = { ...model.limits, ...ev.limits };
      if (!sessionRegistered) sendLogin();
      break;
    case "registered":
      registered(ev);
      break;
    case "message":
    case "private":
      liveMessage(ev);
      break;
    case "join":
      joined(ev);
      break;
    case "part":
      parted(ev);
      break;
    case "quit":
      quit(ev);
      break;
    case "nick":
      nickChanged(ev);
      break;
    case "status":
      statusChanged(ev);
      break;
    case "topic":
      topic(ev);
      break;
    case "users":
      users(ev);
      break;
    case "rooms":
      rooms(ev);
      break;
    case "whois":
      whois(ev);
      break;
    case "history":
      history(ev);
      break;
    case "file-offer":
      fileOffer(ev);
      break;
    case "keys":
      if (!e2e.keys(ev)) showKeys(ev);
      break;
    case "info":
      info(ev);
      break;
    case "error":
      error(ev);
      break;
    case "pong":
      pong(ev);
      break;
    case "bye":
      note("info", `The server closed the connection: ${ev.reason || "goodbye"}`);
      break;
    case "upload-ready":
    case "upload-done":
      break;
    case "kick":
      kicked(ev);
      break;
    case "role":
      roleChanged(ev);
      break;
    case "room-settings":
      roomSettings(ev);
      break;
    default:
      break;
  }
  scheduleRefresh();
}

function registered(ev) {
  const first = !sessionRegistered;
  // Every registration (a login, a guest's nick): the daemon keeps keys per
  // account or per session, so publish this browser's again.
  e2e.registered();
  model.me = ev.nick;
  model.account = !!ev.account;
  if (ev.token) {
    model.token = ev.token;
    view.token = ev.token;
    view.refreshFileLinks(ev.token);
  }
  if (login) login.nick = ev.nick;
  if (ev.account && pendingLogin) {
    login = { nick: ev.nick, password: pendingLogin.password };
    pendingLogin = null;
  }
  if (!first) return;
  sessionRegistered = true;
  nickRetries = 0;
  conn.succeeded();
  try {
    localStorage.setItem(STORED_NICK, ev.nick);
  } catch (e) {
    /* no storage */
  }
  if (!everRegistered) {
    everRegistered = true;
    view.showApp();
    view.setLoginBusy(false, "");
    view.message.focus();
    conn.send("/rooms");
    return;
  }
  // A reconnection: join the rooms again, catch up by id, then send what
  // was typed meanwhile.
  outageShown = false;
  note("info", "Reconnected.");
  // The daemon joins #lobby on registration, then our /joins below: by the
  // time it reads the lines typed meanwhile, these rooms are joined.
  daemonCurrent = "#lobby";
  sessionJoined.add("#lobby");
  for (const conv of model.conversations.values()) {
    if (conv.kind !== "room") continue;
    // Ids are server-wide and increasing: a room that showed no message
    // yet missed everything after the newest id seen anywhere.
    gapFrom.set(conv.key, conv.newestMessageId() || model.newestId);
    if (conv.key !== "#lobby" && conv.joined) conv.rejoining = true;
  }
  for (const conv of model.conversations.values()) {
    if (conv.kind === "room" && conv.rejoining) {
      conv.rejoining = false;
      conn.send(`/join ${conv.name}`);
      daemonCurrent = conv.key;
      sessionJoined.add(conv.key);
    }
  }
  if (model.account) {
    for (const conv of model.conversations.values()) {
      if (conv.kind === "private") requestHistory(conv, "gap", GAP_BATCH, null, conv.newestMessageId());
    }
  }
  // Offers made while away come again as file-offer events (shown once:
  // by id); the info lines of that listing are not news.
  conn.send("/files");
  conn.send("/ping quiet-files");
  quietInfo = true;
  conn.send("/rooms");
  const waiting = outbox;
  outbox = [];
  for (const { line, key } of waiting) sendTyped(line, model.conversations.get(key) || model.current);
}

function lost() {
  sessionRegistered = false;
  if (quitting || !everRegistered) {
    if (quitting) {
      everRegistered = false;
      model.conversations.clear();
      model.currentKey = null;
      view.renderLog(null, model);
      outbox = [];
    }
    if (!everRegistered && !quitting) {
      conn.close();
      view.showLogin(view.loginError.textContent || "Could not reach the chat server. Try again.");
      view.setLoginBusy(false, "");
    } else {
      view.showLogin("You left the chat.");
    }
    return;
  }
  if (!outageShown) {
    outageShown = true;
    note("error", "Connection lost. Reconnecting…");
  }
}

function add(conv, kind, text) {
  const r = model.addEvent(conv, kind, text);
  view.insertItem(r.conv, r.index, r.item, model);
}

/** A line in the conversation shown (or the first one). */
function note(kind, text) {
  const conv = model.current || model.ordered()[0];
  if (!conv) return;
  add(conv, kind, text);
}

function show(result) {
  if (!result) return;
  view.insertItem(result.conv, result.index, result.item, model);
}

/**
 * Show a message; an encrypted one shows "decrypting…" until its envelope
 * is opened, then its text with a lock, or why it could not be decrypted.
 * @returns {Promise<void>} settled once the item shows its final text
 */
function showMessage(result) {
  if (!result) return Promise.resolve();
  const { conv, item } = result;
  if (!item.e2e) {
    show(result);
    return Promise.resolve();
  }
  item.e2eState = "pending";
  item.text = "";
  show(result);
  return openItem(conv, item);
}

/** Open an encrypted item's envelope and show the result in its place. */
function openItem(conv, item) {
  return e2e.open(item).then(
    (plain) => {
      item.e2eState = "ok";
      item.action = !!plain.action;
      item.text = plain.type === "text" ? plain.text : "";
      if (plain.type === "file") item.file = plain;
    },
    (e) => {
      item.e2eState = "failed";
      item.reason = reasonText(e);
      if (!(e && e.reason)) console.error("chat: could not decrypt", e);
    },
  ).then(() => view.updateItem(conv, item, model));
}

function liveMessage(ev) {
  const result = model.addMessage(ev, true);
  if (!result) return;
  const shown = showMessage(result);
  const { conv, item } = result;
  if (pendingSelect === conv.key) {
    pendingSelect = null;
    select(conv.key);
  }
  if (item.e2e) {
    shown.then(() => {
      if (item.mention && !item.fromMe && item.e2eState === "ok") {
        notify(`${item.from} (private)`, item.action ? `* ${item.from} ${item.text}` : item.text, () => select(conv.key));
      }
    });
    return;
  }
  if (item.mention && !item.fromMe) {
    const where = conv.kind === "room" ? `${item.from} in ${conv.name}` : `${item.from} (private)`;
    notify(where, item.action ? `* ${item.from} ${item.text}` : item.text, () => select(conv.key));
  }
}

function joined(ev) {
  const conv = model.room(ev.room);
  const key = conv.key;
  if (model.isMe(ev.nick)) {
    const fresh = !conv.everJoined;
    conv.name = ev.room;
    conv.joined = true;
    conv.everJoined = true;
    sessionJoined.add(key);
    daemonCurrent = key;
    if (fresh) add(conv, "join", `You joined ${ev.room}`);
    if (pendingSelect === key || !model.current) {
      pendingSelect = null;
      select(key);
    }
    return;
  }
  conv.users.set(ev.nick.toLowerCase(), { nick: ev.nick, status: "", idle: 0 });
  add(conv, "join", `${ev.nick} joined ${conv.name}`);
}

function parted(ev) {
  const conv = model.room(ev.room, false);
  if (!conv) return;
  if (model.isMe(ev.nick)) {
    sessionJoined.delete(conv.key);
    daemonCurrent = null;
    const wasCurrent = model.currentKey === conv.key;
    model.remove(conv.key);
    if (wasCurrent) {
      const next = model.ordered()[0];
      select(next ? next.key : null);
    }
    note("part", `You left ${conv.name}${ev.reason ? ` (${ev.reason})` : ""}`);
    return;
  }
  conv.users.delete(ev.nick.toLowerCase());
  add(conv, "part", `${ev.nick} left ${conv.name}${ev.reason ? ` (${ev.reason})` : ""}`);
}

/** A kick (PROTOCOL.md section 10): the person leaves the room; when it is the user, the room leaves the sidebar. */
function kicked(ev) {
  const conv = model.room(ev.room, false);
  if (!conv) return;
  const why = ev.reason ? ` (${ev.reason})` : "";
  if (!model.isMe(ev.nick)) {
    conv.users.delete(ev.nick.toLowerCase());
    add(conv, "kick", `${ev.nick} was kicked from ${conv.name} by ${ev.by}${why}`);
    return;
  }
  const text = `You were kicked from ${conv.name} by ${ev.by}${why}`;
  sessionJoined.delete(conv.key);
  if (daemonCurrent === conv.key) daemonCurrent = null;
  const wasCurrent = model.currentKey === conv.key;
  const others = model.ordered().filter((c) => c.key !== conv.key);
  if (!others.length) {
    // Nowhere else to say it: the room stays, greyed out as not joined, with the line.
    conv.joined = false;
    conv.users = new Map();
    add(conv, "kick", `${text}. You are no longer in ${conv.name}.`);
    return;
  }
  model.remove(conv.key);
  if (wasCurrent) select(others[0].key);
  note("kick", `${text}. You are no longer in ${conv.name}.`);
}

function roleChanged(ev) {
  const conv = model.room(ev.room, false);
  if (!conv) return;
  const user = conv.users.get(ev.nick.toLowerCase());
  if (user) user.role = ev.role;
  const whom = model.isMe(ev.nick) ? "you" : ev.nick;
  const by = ev.by && model.isMe(ev.by) ? "You" : ev.by;
  const subject = whom === "you" ? "You are" : `${whom} is`;
  let text;
  if (ev.role === OPERATOR) text = by ? `${by} made ${whom} an operator of ${conv.name}` : `${subject} now an operator of ${conv.name}`;
  else {
    const self = ev.by && ev.by.toLowerCase() === ev.nick.toLowerCase();
    text = `${subject} no longer an operator of ${conv.name}${by && !self ? ` (by ${by})` : ""}`;
  }
  add(conv, "role", text);
}

function roomSettings(ev) {
  const conv = model.room(ev.room, false);
  if (!conv) return;
  const before = conv.settings || null;
  conv.settings = { "invite-only": !!ev["invite-only"], "topic-lock": !!ev["topic-lock"], moderated: !!ev.moderated };
  for (const text of settingsWords(ev, before)) add(conv, "settings", text);
}

function quit(ev) {
  for (const conv of model.conversations.values()) {
    if (conv.users.delete(ev.nick.toLowerCase())) {
      add(conv, "part", `${ev.nick} quit${ev.reason ? ` (${ev.reason})` : ""}`);
    }
  }
  const priv = model.conversations.get(keyOf(ev.nick));
  if (priv && priv.kind === "private") add(priv, "part", `${ev.nick} quit${ev.reason ? ` (${ev.reason})` : ""}`);
}

function nickChanged(ev) {
  const shared = [...model.conversations.values()].filter((c) => c.users.has(ev.old.toLowerCase()));
  model.renameNick(ev.old, ev.new);
  if (login && model.isMe(ev.new)) login.nick = ev.new;
  const text = model.isMe(ev.new) ? `You are now known as ${ev.new}` : `${ev.old} is now known as ${ev.new}`;
  for (const conv of shared) add(conv, "nick", text);
}

function statusChanged(ev) {
  for (const conv of model.conversations.values()) {
    const u = conv.users.get(ev.nick.toLowerCase());
    if (u) u.status = ev.text || "";
  }
}

function topic(ev) {
  const conv = model.room(ev.room);
  const changed = conv.topic !== (ev.text || "");
  conv.topic = ev.text || "";
  conv.topicBy = ev.by || "";
  if (changed) {
    add(conv, "topic", ev.text ? `Topic: ${ev.text}${ev.by ? ` (set by ${ev.by})` : ""}` : `${ev.by || "Someone"} cleared the topic`);
  }
}

function users(ev) {
  const conv = model.room(ev.room);
  const list = ev.users || [];
  conv.users = new Map(list.map((u) => [u.nick.toLowerCase(), { ...u }]));
  if (showUsers > 0) {
    showUsers -= 1;
    const names = list
      .map((u) => `${u.role === OPERATOR ? "@" : ""}${u.nick}${u.status ? ` (${u.status})` : ""}`)
      .join(", ");
    add(model.current || conv, "info", `${ev.count} in ${ev.room}: ${names}`);
  }
}

function rooms(ev) {
  view.setKnownRooms(ev.rooms || []);
  if (showRooms > 0) {
    showRooms -= 1;
    const lines = (ev.rooms || []).map((r) => `${r.room} (${r.count})${r.topic ? ` ${r.topic}` : ""}`);
    note("info", lines.length ? `Rooms: ${lines.join(" · ")}` : "No rooms.");
  }
}

function whois(ev) {
  const parts = [
    `${ev.nick}${ev.status ? ` (${ev.status})` : ""}`,
    ev.account ? "logged in" : "guest",
    `in ${(ev.rooms || []).join(", ") || "no room"}`,
    `idle ${ev.idle}s`,
    ev.secure ? "secure connection" : "plain connection",
  ];
  note("info", parts.join(" · "));
}

/** A `keys` event the user asked for (a typed /keys). */
function showKeys(ev) {
  const keys = ev.keys || [];
  const head = keys.length ? `Encryption keys of ${ev.nick}${ev.account ? " (account)" : " (guest)"}:`
    : `${ev.nick} has published no encryption keys`;
  const lines = keys.map((k) => `device ${k.device}, fingerprint ${k.fingerprint}, added ${k.added}`);
  note("info", [head, ...lines].join("\n"));
}

function fileOffer(ev) {
  // An encrypted private file is shown by its sealed message (its name, a Save button), not as bytes to fetch.
  if (ev.name === ENCRYPTED_NAME && !String(ev.to || "").startsWith("#")) return;
  show(model.addFile(ev));
}

/** Save an encrypted file a sealed message offers: fetched, checked, decrypted here, then saved. */
function saveEncryptedFile(item, button) {
  const file = item.file;
  button.disabled = true;
  button.textContent = `Downloading ${file.name}…`;
  const progress = (received, total) => {
    button.textContent = received < total
      ? `Downloading ${file.name}… ${Math.floor((received / total) * 100)}%`
      : `Decrypting ${file.name}…`;
  };
  e2e.fetchFile(file, model.token, progress).then(
    (blob) => {
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = file.name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      button.textContent = `Saved ${file.name}`;
      button.disabled = false;
    },
    (e) => {
      button.textContent = `${file.name} could not be decrypted (${e && e.reason ? reasonText(e) : e.message})`;
      button.classList.add("failed");
      button.disabled = false;
    },
  );
}
view.onSaveFile = saveEncryptedFile;

function info(ev) {
  if (pendingPassword !== null && login && /password/i.test(ev.text || "")) {
    login.password = pendingPassword;
    pendingPassword = null;
  }
  if (e2e.info(ev)) return;
  if (quietInfo) return;
  if (swallowCurrentInfo > 0 && CURRENT_INFO.test(ev.text || "")) {
    swallowCurrentInfo -= 1;
    return;
  }
  note("info", ev.text || "");
}

function error(ev) {
  if (!sessionRegistered) {
    registrationFailed(ev);
    return;
  }
  if (pendingLogin && ["auth-failed", "bad-arguments", "nick-registered", "auth-needs-tls"].includes(ev.code)) {
    pendingLogin = null;
  }
  if (pendingPassword !== null && ["auth-failed", "bad-arguments", "auth-needs-tls"].includes(ev.code)) {
    pendingPassword = null;
  }
  if (e2e.answering) {
    // The answer to our own /keys (say no-such-nick): the send goes on in the clear, the daemon says why.
    return;
  }
  if (requests.answering) {
    // The answer to our own /history (say, no history for a guest's
    // private conversation): not the user's business.
    console.debug("history request refused", ev);
    return;
  }
  note("error", ev.message ? `${ev.message} (${ev.code})` : ev.code);
}

// ---------------------------------------------------------------- history

/**
 * Ask for history and put a /ping barrier after it: the pong tells the
 * request is over (it failed if no history came first).
 * @param kind "older" (scrolling back) or "gap" (catching up)
 * @param before an id, or null for the newest
 * @param floor for "gap": the newest id held before the outage
 */
function requestHistory(conv, kind, n, before, floor, depth = 1) {
  if (!sessionRegistered) return;
  requests.ask(conv.key, conv.name, { kind, n, floor: floor || 0, depth }, before);
  if (kind === "older") {
    conv.loadingOlder = true;
    view.renderOlderState(conv);
  }
}

/**
 * A request ended without history: refused (then there is nothing older to
 * ask for, say a guest's private conversation), or its socket closed.
 */
function unanswered(req, refused = true) {
  const conv = model.conversations.get(req.key);
  if (conv && req.kind === "older") {
    conv.loadingOlder = false;
    conv.exhausted = refused;
    view.renderOlderState(conv);
  }
}

function pong(ev) {
  if (ev.token === "quiet-files") quietInfo = false;
  if (e2e.pong(ev.token)) return;
  const failed = requests.pong(ev.token);
  if (failed) unanswered(failed);
}

function history(ev) {
  if (!ev.room && !ev.with) return;
  const conv = ev.room ? model.room(ev.room) : model.privateWith(ev.with);
  const messages = ev.messages || [];
  const req = requests.answered(conv.key);
  for (const m of messages) showMessage(model.addMessage(m, false));
  const ids = messages.map((m) => m.id).filter((id) => typeof id === "number");
  const lowest = ids.length ? Math.min(...ids) : null;
  if (req && req.kind === "older") {
    conv.loadingOlder = false;
    if (messages.length < req.n) conv.exhausted = true;
    view.renderOlderState(conv);
  } else if (req && req.kind === "gap") {
    if (messages.length >= req.n && lowest !== null && lowest > req.floor && req.depth < MAX_GAP_REQUESTS) {
      requestHistory(conv, "gap", GAP_BATCH, lowest, req.floor, req.depth + 1);
    }
  } else {
    // History on joining (or typed /history).
    if (gapFrom.has(conv.key)) {
      const floor = gapFrom.get(conv.key);
      gapFrom.delete(conv.key);
      if (lowest !== null && lowest > floor) requestHistory(conv, "gap", GAP_BATCH, lowest, floor);
    }
    if (!messages.length && conv.oldestMessageId() === null) conv.exhausted = true;
    view.renderOlderState(conv);
  }
  if (conv.key === model.currentKey) setTimeout(fillIfShort, 0);
}

/** Scrolled to the top (or nothing to scroll): ask for older messages. */
function requestOlder() {
  const conv = model.current;
  if (!conv || conv.loadingOlder || conv.exhausted || !sessionRegistered) return;
  if (conv.kind === "private" && !model.account) {
    conv.exhausted = true;
    view.renderOlderState(conv);
    return;
  }
  if (conv.kind === "room" && !conv.joined) return;
  const oldest = conv.oldestMessageId();
  if (oldest === null && conv.kind === "room") return; // the join's history comes
  requestHistory(conv, "older", OLDER_BATCH, oldest, 0);
}

function fillIfShort() {
  const wrap = view.logWrap;
  if (wrap.scrollHeight <= wrap.clientHeight + 8 || wrap.scrollTop < 60) requestOlder();
}

view.logWrap.addEventListener("scroll", () => {
  if (view.logWrap.scrollTop < 60) requestOlder();
});

// ---------------------------------------------------------------- selection and refresh

function select(key) {
  model.currentKey = key && model.conversations.has(key) ? key : null;
  const conv = model.current;
  if (conv && model.visible) model.markRead(conv);
  completion.reset();
  emoji.close();
  view.renderLog(conv, model);
  view.closeDrawers();
  refresh();
  if (conv) setTimeout(fillIfShort, 0);
}

let refreshQueued = false;
function scheduleRefresh() {
  if (refreshQueued) return;
  refreshQueued = true;
  queueMicrotask(() => {
    refreshQueued = false;
    refresh();
  });
}

function refresh() {
  const conv = model.current;
  if (conv && model.visible) model.markRead(conv);
  view.renderSidebar(model, select);
  view.renderHeader(conv);
  view.renderE2E(conv, e2e, (nick) => e2e.trust(nick));
  view.renderPeople(conv, model, openPersonMenu, (nick) => personActions(model, conv, nick).length > 0);
  setTitle(model.totalUnread());
}

const personMenu = new PersonMenu(document.getElementById("person-menu"), {
  onMessage: (nick) => openPrivate(nick),
  onCommand: (line) => {
    sendTyped(line, model.current);
    view.message.focus();
  },
  anchorOf: (nick) => view.personButton(nick),
});

/** A person clicked (or right-clicked at `point`) in the people list: their menu. */
function openPersonMenu(nick, button, point) {
  const actions = personActions(model, model.current, nick);
  if (!actions.length) return;
  personMenu.open(nick, actions, button, point);
}

function openPrivate(nick) {
  const conv = model.privateWith(nick);
  select(conv.key);
  view.message.focus();
}

document.addEventListener("visibilitychange", () => {
  model.visible = !document.hidden;
  refresh();
});

// ---------------------------------------------------------------- sending

/** Make the daemon's current room the one shown (for plain lines, /me, /part...). */
function syncCurrent(conv) {
  if (conv.kind !== "room" || daemonCurrent === conv.key) return;
  if (sessionJoined.has(conv.key)) swallowCurrentInfo += 1;
  conn.send(`/join ${conv.name}`);
  daemonCurrent = conv.key;
}

function byteLength(text) {
  return new TextEncoder().encode(text).length;
}

/**
 * Send one typed line from a conversation (or queue it while offline).
 * @returns {boolean} whether it was taken (sent or queued)
 */
function sendTyped(line, conv) {
  if (!sessionRegistered || !conn.isOpen) {
    outbox.push({ line, key: conv ? conv.key : null });
    if (outbox.length === 1) note("info", "Not connected: what you type is sent once the chat is back.");
    return true;
  }
  let out = line;
  if (line.startsWith("/") && !line.startsWith("//")) {
    const [verb, ...rest] = line.slice(1).split(" ");
    const cmd = verb.toLowerCase();
    const args = rest.filter((w) => w !== "");
    if (cmd === "join" && args[0]) {
      const key = keyOf(args[0]);
      if (model.conversations.has(key) && sessionJoined.has(key)) {
        select(key);
        swallowCurrentInfo += 1;
        daemonCurrent = key;
      } else {
        pendingSelect = key;
      }
    } else if ((cmd === "msg" || cmd === "query") && args[0]) {
      if (cmd === "query" || args.length === 1) {
        openPrivate(args[0]);
        return true;
      }
      pendingSelect = keyOf(args[0]);
      if (!args[0].startsWith("#")) {
        const text = line.slice(1).replace(/^\S+\s+\S+\s/, "");
        sendPrivate(args[0], replaceShortcodes(text), false);
        return true;
      }
    } else if ((cmd === "verify" || cmd === "trust") && args[0]) {
      const nick = args[0];
      if (!model.conversations.has(keyOf(nick))) openPrivate(nick);
      if (cmd === "verify") e2e.verify(nick);
      else e2e.trust(nick);
      return true;
    } else if (cmd === "login" && args.length >= 2) {
      pendingLogin = { nick: args[0], password: args[1] };
    } else if (cmd === "register" && args.length === 1) {
      pendingLogin = { nick: model.me, password: args[0] };
    } else if (cmd === "password" && args.length === 2) {
      pendingPassword = args[1];
    } else if (cmd === "quit" || cmd === "exit") {
      quitting = true;
      conn.wanted = false;
    } else if (cmd === "rooms") {
      showRooms += 1;
    } else if (cmd === "list" || cmd === "users") {
      showUsers += 1;
    } else if (cmd === "me" && conv && conv.kind === "private") {
      sendPrivate(conv.name, replaceShortcodes(rest.join(" ")), true);
      return true;
    } else if (cmd === "clear" && conv) {
      conv.items = [];
      conv.ids = new Set();
      view.renderLog(conv, model);
      return true;
    }
    if (out === line && conv && conv.kind === "room" && CURRENT_ROOM_COMMANDS.has(cmd)) {
      syncCurrent(conv);
    }
    if (mayReplace(out)) out = replaceShortcodes(out);
  } else {
    if (!conv) {
      note("error", "Join a room or open a conversation first.");
      return false;
    }
    const text = replaceShortcodes(line);
    if (conv.kind === "room") {
      syncCurrent(conv);
      out = text;
    } else {
      sendPrivate(conv.name, text.startsWith("//") ? text.slice(1) : text, false);
      return true;
    }
  }
  if (byteLength(out) > model.limits.line) {
    note("error", `Not sent: the line is longer than ${model.limits.line} bytes.`);
    return false;
  }
  conn.send(out);
  return true;
}

/**
 * A private message: sealed when both sides have keys (e2e.js), else in the
 * clear, said so in the conversation.
 */
function sendPrivate(nick, text, action) {
  if (byteLength(text) > model.limits.line) {
    note("error", `Not sent: the line is longer than ${model.limits.line} bytes.`);
    return;
  }
  e2e.sendPrivate(nick, text, action);
}

document.getElementById("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const line = view.message.value;
  if (!line.trim()) return;
  if (sendTyped(line, model.current)) {
    recall.push(line);
    view.message.value = "";
    emoji.close();
  }
  view.message.focus();
});

// ---------------------------------------------------------------- keyboard

const emoji = new EmojiUI(
  view.message,
  document.getElementById("completion"),
  document.getElementById("emoji-button"),
  document.getElementById("emoji-picker"),
);
loadEmoji();
const recall = new Recall();
const completion = new NickCompletion(view.message);

function switchConversation(step) {
  const list = model.ordered();
  if (!list.length) return;
  const i = list.findIndex((c) => c.key === model.currentKey);
  const next = list[(i + step + list.length) % list.length];
  select(next.key);
}

/** The nicks Tab may complete: the conversation's people first, then everyone seen. */
function knownNicks() {
  const conv = model.current;
  const nicks = [];
  if (conv && conv.kind === "room") for (const u of conv.users.values()) nicks.push(u.nick);
  if (conv && conv.kind === "private") nicks.push(conv.name);
  for (const c of model.conversations.values()) for (const u of c.users.values()) nicks.push(u.nick);
  return nicks.filter((n) => !model.isMe(n));
}

function putLine(text) {
  view.message.value = text;
  const end = text.length;
  view.message.setSelectionRange(end, end);
}

view.message.addEventListener("keydown", (e) => {
  if (emoji.handleKey(e)) {
    e.preventDefault();
    return;
  }
  if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
    e.preventDefault();
    switchConversation(e.key === "ArrowUp" ? -1 : 1);
    return;
  }
  if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && !e.altKey) {
    if (completion.complete(knownNicks())) e.preventDefault();
    return;
  }
  if (e.key !== "Shift") completion.reset();
  const plain = !e.shiftKey && !e.ctrlKey && !e.metaKey;
  const line = plain && e.key === "ArrowUp" ? recall.up(view.message.value)
    : plain && e.key === "ArrowDown" ? recall.down() : null;
  if (line !== null) {
    e.preventDefault();
    putLine(line);
  }
});

// ---------------------------------------------------------------- join form

document.getElementById("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("join-room");
  let room = input.value.trim();
  if (!room) return;
  if (!room.startsWith("#")) room = `#${room}`;
  if (!ROOM_RE.test(room)) {
    note("error", "A room name is # and 1 to 32 letters, digits, _ or -.");
    return;
  }
  input.value = "";
  sendTyped(`/join ${room}`, model.current);
  view.closeDrawers();
});

// ---------------------------------------------------------------- files

function uploadFiles(files, conv) {
  if (!conv) {
    note("error", "Open a room or conversation to send a file to.");
    return;
  }
  if (!model.token) {
    note("error", "This server gave no upload token: files cannot be sent from the page.");
    return;
  }
  for (const file of files) {
    if (model.limits.file && file.size > model.limits.file) {
      add(conv, "error", `${file.name} is too large: ${formatSize(file.size)}, the limit is ${formatSize(model.limits.file)}.`);
      continue;
    }
    if (conv.kind === "private" && e2e.available) {
      uploadSealed(file, conv);
      continue;
    }
    const row = view.uploadRow(file.name, conv.name);
    const job = upload(file, conv.name, model.token, (sentBytes, total) => row.update(sentBytes, total));
    job.promise.then(
      (offer) => {
        row.done();
        if (offer && offer.id !== undefined) {
          show(model.addFile({ ...offer, from: model.me, to: conv.name, ts: new Date().toISOString() }));
          scheduleRefresh();
        }
      },
      (err) => {
        row.fail(err.message);
        add(conv, "error", `${file.name} was not sent: ${err.message}`);
      },
    );
  }
}

/**
 * A private file from a page that can encrypt: sealed when the other side
 * has a key (e2e.js sendFile), else uploaded in the clear as before.
 */
function uploadSealed(file, conv) {
  const row = view.uploadRow(file.name, conv.name);
  const send = (blob, name) => upload(new File([blob], name), conv.name, model.token,
    (sentBytes, total) => row.update(sentBytes, total)).promise;
  e2e.sendFile(conv.name, file, send).then(
    (mode) => {
      if (mode === "held") row.fail("not sent: key changed");
      else row.done();
    },
    (err) => {
      row.fail(err.message);
      add(conv, "error", `${file.name} was not sent: ${err.message}`);
    },
  );
}

const fileInput = document.getElementById("file-input");
document.getElementById("attach-button").addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", () => {
  uploadFiles([...fileInput.files], model.current);
  fileInput.value = "";
});

const dropHint = document.getElementById("drop-hint");
const main = document.getElementById("main");
let dragDepth = 0;
const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
main.addEventListener("dragenter", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth += 1;
  dropHint.hidden = false;
});
main.addEventListener("dragover", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = "copy";
});
main.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) dropHint.hidden = true;
});
main.addEventListener("drop", (e) => {
  if (!e.dataTransfer || !e.dataTransfer.files.length) return;
  e.preventDefault();
  dragDepth = 0;
  dropHint.hidden = true;
  uploadFiles([...e.dataTransfer.files], model.current);
});
// A file dropped elsewhere must not navigate away from the chat.
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());

// ---------------------------------------------------------------- theme and notifications

const themeButton = document.getElementById("theme-button");
const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");

function effectiveTheme() {
  return document.documentElement.dataset.theme || (darkQuery.matches ? "dark" : "light");
}

function labelTheme() {
  const next = effectiveTheme() === "dark" ? "light" : "dark";
  themeButton.textContent = next === "dark" ? "☾ Dark theme" : "☀ Light theme";
  themeButton.setAttribute("aria-label", `Switch to the ${next} theme`);
}

themeButton.addEventListener("click", () => {
  const next = effectiveTheme() === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  try {
    localStorage.setItem(STORED_THEME, next);
  } catch (e) {
    /* not remembered */
  }
  labelTheme();
});
darkQuery.addEventListener("change", labelTheme);
labelTheme();

const notifyButton = document.getElementById("notify-button");
if ("Notification" in window && Notification.permission === "default") {
  notifyButton.hidden = false;
  notifyButton.addEventListener("click", () => {
    const asked = Notification.requestPermission();
    if (asked && asked.then) asked.then(() => (notifyButton.hidden = Notification.permission !== "default"));
  });
}

// ---------------------------------------------------------------- start

try {
  const stored = localStorage.getItem(STORED_NICK);
  if (stored) view.nickInput.value = stored;
} catch (e) {
  /* no storage */
}
view.showLogin("");
setTitle(0);

// For tests and debugging: the model, read-only use.
window.chatPage = { model, conn, e2e };

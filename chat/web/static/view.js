/**
 * DOM rendering of the model. User text is always inserted with
 * textContent / createTextNode (through format.js), never as HTML.
 */

import { formatText, formatSize, formatTime } from "./format.js";
import { fileUrl, isImageName } from "./files.js";

const $ = (id) => document.getElementById(id);

/** One of eight colour classes for a nick, stable. */
export function nickClass(nick) {
  let h = 0;
  for (const ch of String(nick).toLowerCase()) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `nick-c${h % 8}`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function timeNode(ts) {
  const t = el("time", "ts", formatTime(ts));
  if (ts) {
    t.dateTime = ts;
    const d = new Date(ts);
    if (!Number.isNaN(d.getTime())) t.title = d.toLocaleString();
  }
  return t;
}

export class View {
  constructor() {
    this.loginScreen = $("login-screen");
    this.loginForm = $("login-form");
    this.nickInput = $("nick");
    this.passwordInput = $("password");
    this.loginError = $("login-error");
    this.loginState = $("login-state");
    this.loginButton = $("login-button");
    this.app = $("app");
    this.rooms = $("rooms");
    this.people = $("people");
    this.peopleCount = $("people-count");
    this.peopleButtonCount = $("people-button-count");
    this.log = $("log");
    this.logWrap = $("log-wrap");
    this.olderState = $("older-state");
    this.title = $("conv-title");
    this.topic = $("topic");
    this.connState = $("conn-state");
    this.message = $("message");
    this.meNick = $("me-nick");
    this.uploads = $("uploads");
    this.sidebar = $("sidebar");
    this.peoplePanel = $("people-panel");
    this.scrim = $("scrim");
    this.menuButton = $("menu-button");
    this.peopleButton = $("people-button");
    this.knownRooms = $("known-rooms");
    this.e2eBanner = $("e2e-banner");
    /** what the encryption banner shows now (rebuilt only when it changes) */
    this.e2eShown = "";
    /** the key of the conversation the log shows */
    this.shownKey = null;
    /** item -> li, for the shown conversation */
    this.nodes = new Map();
    this.token = "";
    /** (item, button) => void: save the encrypted file of a sealed message */
    this.onSaveFile = null;
    this.menuButton.addEventListener("click", () => this.toggleDrawer(this.sidebar, this.menuButton));
    $("sidebar-close").addEventListener("click", () => this.closeDrawers());
    $("people-close").addEventListener("click", () => this.closeDrawers());
    this.peopleButton.addEventListener("click", () => this.toggleDrawer(this.peoplePanel, this.peopleButton));
    this.scrim.addEventListener("click", () => this.closeDrawers());
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !this.scrim.hidden) this.closeDrawers();
    });
  }

  // Login

  showLogin(error) {
    this.app.hidden = true;
    this.loginScreen.hidden = false;
    this.loginButton.disabled = false;
    this.loginError.textContent = error || "";
    this.nickInput.focus();
  }

  showApp() {
    this.loginScreen.hidden = true;
    this.app.hidden = false;
  }

  setLoginBusy(busy, text) {
    this.loginButton.disabled = busy;
    this.loginState.textContent = text || "";
  }

  // Connection state

  setConnection(state, seconds) {
    const texts = {
      offline: "Offline",
      connecting: "Connecting…",
      online: "Online",
      reconnecting: seconds ? `Reconnecting in ${seconds}s` : "Reconnecting…",
    };
    this.connState.textContent = texts[state] || state;
    this.connState.dataset.state = state;
    if (!this.loginScreen.hidden && state !== "online") this.loginState.textContent = texts[state] || "";
  }

  // Drawers (phone layout)

  toggleDrawer(panel, button) {
    const open = !panel.classList.contains("open");
    this.closeDrawers();
    if (open) {
      panel.classList.add("open");
      button.setAttribute("aria-expanded", "true");
      this.scrim.hidden = false;
    }
  }

  closeDrawers() {
    for (const [panel, button] of [[this.sidebar, this.menuButton], [this.peoplePanel, this.peopleButton]]) {
      panel.classList.remove("open");
      button.setAttribute("aria-expanded", "false");
    }
    this.scrim.hidden = true;
  }

  // Sidebar

  /**
   * @param {import("./model.js").ChatModel} model
   * @param {(key: string) => void} onSelect
   */
  renderSidebar(model, onSelect) {
    this.meNick.textContent = model.me;
    this.rooms.replaceChildren();
    for (const conv of model.ordered()) {
      const li = el("li", `conv conv-${conv.kind}`);
      const b = el("button", "conv-button");
      b.type = "button";
      b.dataset.key = conv.key;
      if (conv.key === model.currentKey) b.setAttribute("aria-current", "true");
      const icon = el("span", "conv-icon", conv.kind === "room" ? "#" : "@");
      icon.setAttribute("aria-hidden", "true");
      const name = el("span", "conv-name", conv.kind === "room" ? conv.name.replace(/^#/, "") : conv.name);
      name.title = conv.name;
      const label = conv.kind === "room" ? conv.name : `${conv.name} (private)`;
      b.append(icon, name);
      let described = label;
      if (conv.mentions > 0) {
        const m = el("span", "badge mention-badge", "@");
        m.title = `${conv.mentions} mention${conv.mentions === 1 ? "" : "s"}`;
        b.appendChild(m);
        described += `, ${conv.mentions} mention${conv.mentions === 1 ? "" : "s"}`;
      }
      if (conv.unread > 0) {
        b.appendChild(el("span", "badge unread-badge", conv.unread > 99 ? "99+" : String(conv.unread)));
        described += `, ${conv.unread} unread`;
        b.classList.add("has-unread");
      }
      if (conv.kind === "room" && !conv.joined) b.classList.add("left");
      b.setAttribute("aria-label", described);
      b.addEventListener("click", () => onSelect(conv.key));
      li.appendChild(b);
      this.rooms.appendChild(li);
    }
  }

  setKnownRooms(rooms) {
    this.knownRooms.replaceChildren();
    for (const r of rooms) {
      const o = document.createElement("option");
      o.value = r.room;
      if (r.topic) o.label = `${r.room} (${r.count}) ${r.topic}`;
      this.knownRooms.appendChild(o);
    }
  }

  // Header and people

  renderHeader(conv) {
    if (!conv) {
      this.title.textContent = "";
      this.topic.textContent = "";
      return;
    }
    this.title.textContent = conv.kind === "room" ? conv.name : `${conv.name} · private`;
    this.topic.replaceChildren();
    if (conv.kind === "room") {
      if (conv.topic) {
        this.topic.appendChild(formatText(conv.topic));
        this.topic.title = conv.topicBy ? `${conv.topic} (set by ${conv.topicBy})` : conv.topic;
      } else {
        this.topic.textContent = conv.joined ? "No topic" : "You are not in this room";
        this.topic.title = "";
      }
    } else {
      this.topic.textContent = "Private conversation";
      this.topic.title = "";
    }
    this.message.placeholder = conv.kind === "room" ? `Message ${conv.name}` : `Message ${conv.name}`;
  }

  /**
   * The people of `conv`: operators of a room first (marked "@", and
   * "NICK, operator" to screen readers), then by nick. Each person is a button
   * that opens their menu (click, Enter, or a right click at the pointer);
   * the user's own is disabled when their menu would be empty.
   * @param {import("./model.js").Conversation|null} conv
   * @param {import("./model.js").ChatModel} model
   * @param {(nick: string, button: HTMLElement, point: {x: number, y: number}|null) => void} onPerson
   * @param {(nick: string) => boolean} hasMenu whether `nick`'s menu has entries
   */
  renderPeople(conv, model, onPerson, hasMenu = (nick) => !model.isMe(nick)) {
    this.people.replaceChildren();
    let users = [];
    if (conv && conv.kind === "room") users = [...conv.users.values()];
    else if (conv) {
      const other = model.conversations.get(conv.key);
      users = [{ nick: model.me, status: "" }, { nick: other.name, status: this.statusOf(model, other.name) }];
    }
    const rank = (u) => (u.role === "operator" ? 0 : 1);
    users.sort((a, b) => rank(a) - rank(b) || a.nick.toLowerCase().localeCompare(b.nick.toLowerCase()));
    for (const user of users) {
      const li = el("li", "person");
      const b = el("button", "person-button");
      b.type = "button";
      b.dataset.nick = user.nick;
      const dot = el("span", `presence ${user.status ? "away" : "here"}`);
      dot.setAttribute("aria-hidden", "true");
      b.appendChild(dot);
      if (user.role === "operator") {
        const mark = el("span", "op-mark", "@");
        mark.setAttribute("aria-hidden", "true");
        mark.title = "operator";
        b.appendChild(mark);
        li.classList.add("operator");
      }
      b.appendChild(el("span", `person-nick ${nickClass(user.nick)}`, user.nick));
      if (model.isMe(user.nick)) b.appendChild(el("span", "you", "(you)"));
      if (user.status) b.appendChild(el("span", "person-status", user.status));
      const said = [user.nick + (user.role === "operator" ? ", operator" : ""), model.isMe(user.nick) ? "(you)" : "",
        user.status ? `, ${user.status}` : ""];
      b.setAttribute("aria-label", said.filter((w) => w).join(" ").replace(" ,", ","));
      if (hasMenu(user.nick)) {
        b.title = model.isMe(user.nick) ? "Your actions" : `Message or act on ${user.nick}`;
        b.setAttribute("aria-haspopup", "menu");
        b.addEventListener("click", () => onPerson(user.nick, b, null));
        b.addEventListener("contextmenu", (e) => {
          e.preventDefault();
          onPerson(user.nick, b, { x: e.clientX, y: e.clientY });
        });
      } else {
        b.disabled = true;
      }
      li.appendChild(b);
      this.people.appendChild(li);
    }
    const n = users.length;
    this.peopleCount.textContent = n ? String(n) : "";
    this.peopleButtonCount.textContent = n ? String(n) : "";
    this.peopleButton.setAttribute("aria-label", `Show people (${n})`);
  }

  /** The button of `nick` in the people list now, or null. */
  personButton(nick) {
    const lower = nick.toLowerCase();
    for (const b of this.people.querySelectorAll("button.person-button")) {
      if (b.dataset.nick.toLowerCase() === lower) return b;
    }
    return null;
  }

  statusOf(model, nick) {
    for (const conv of model.conversations.values()) {
      const u = conv.users.get(nick.toLowerCase());
      if (u) return u.status || "";
    }
    return "";
  }

  // The log

  /** Whether the log is scrolled to (near) the bottom. */
  atBottom() {
    const w = this.logWrap;
    return w.scrollHeight - w.scrollTop - w.clientHeight < 40;
  }

  scrollToBottom() {
    this.logWrap.scrollTop = this.logWrap.scrollHeight;
  }

  renderLog(conv, model) {
    this.shownKey = conv ? conv.key : null;
    this.nodes = new Map();
    this.log.replaceChildren();
    if (!conv) return;
    const frag = document.createDocumentFragment();
    for (const item of conv.items) {
      const node = this.itemNode(item, model);
      this.nodes.set(item, node);
      frag.appendChild(node);
    }
    this.log.appendChild(frag);
    this.renderOlderState(conv);
    this.scrollToBottom();
  }

  /**
   * Show an item that was inserted at `index` of the shown conversation.
   * Keeps the view at the bottom when it was there, and keeps what the
   * reader sees in place when older items are inserted above.
   */
  insertItem(conv, index, item, model) {
    if (conv.key !== this.shownKey) return;
    const stick = this.atBottom();
    const before = conv.items[index + 1] ? this.nodes.get(conv.items[index + 1]) : null;
    const node = this.itemNode(item, model);
    this.nodes.set(item, node);
    const oldHeight = this.logWrap.scrollHeight;
    const oldTop = this.logWrap.scrollTop;
    this.log.insertBefore(node, before || null);
    if (stick && !before) this.scrollToBottom();
    else if (before && !stick) this.logWrap.scrollTop = oldTop + (this.logWrap.scrollHeight - oldHeight);
    else if (stick) this.scrollToBottom();
  }

  renderOlderState(conv) {
    if (!conv || conv.key !== this.shownKey) return;
    if (conv.loadingOlder) this.olderState.textContent = "Loading older messages…";
    else if (conv.exhausted) this.olderState.textContent = conv.items.length ? "Beginning of the conversation" : "";
    else this.olderState.textContent = "";
  }

  itemNode(item, model) {
    if (item.type === "event") {
      const li = el("li", `event event-${item.kind}`);
      li.appendChild(timeNode(item.ts));
      const text = el("span", "event-text");
      text.textContent = item.text;
      li.appendChild(text);
      return li;
    }
    if (item.type === "file") return this.fileNode(item, model);
    const classes = ["msg"];
    if (item.action) classes.push("action");
    if (item.fromMe) classes.push("self");
    if (item.mention && item.type === "message") classes.push("mention");
    if (item.offline) classes.push("offline");
    const li = el("li", classes.join(" "));
    li.dataset.id = String(item.id);
    li.appendChild(timeNode(item.ts));
    const nick = el("span", `nick ${nickClass(item.from)}`, item.action ? `* ${item.from}` : item.from);
    li.appendChild(nick);
    if (item.e2eState === "ok") {
      const lock = el("span", "lock", "🔒");
      lock.setAttribute("role", "img");
      lock.setAttribute("aria-label", "encrypted");
      lock.title = "End-to-end encrypted";
      nick.prepend(lock);
    }
    const text = el("span", "text");
    if (item.e2eState === "pending") {
      text.classList.add("undecrypted");
      text.textContent = "decrypting…";
    } else if (item.e2eState === "ok" && item.file) {
      text.classList.add("file-body");
      text.appendChild(document.createTextNode(
        item.fromMe && item.type === "private" ? `sends ${item.to} a file: ` : "sends a file: "));
      const save = el("button", "save-file", `Save ${item.file.name}`);
      save.type = "button";
      save.title = "Fetch, check and decrypt the file, then save it";
      save.addEventListener("click", () => this.onSaveFile && this.onSaveFile(item, save));
      text.appendChild(save);
      text.appendChild(document.createTextNode(` (${formatSize(item.file.size)})`));
    } else if (item.e2eState === "failed") {
      text.classList.add("undecrypted");
      text.textContent = `encrypted message that could not be decrypted (${item.reason})`;
    } else {
      text.appendChild(formatText(item.text || "", item.fromMe ? "" : model.me));
    }
    li.appendChild(text);
    if (item.type === "private" && !item.e2e) {
      li.classList.add("clear");
      li.appendChild(el("span", "tag not-encrypted", "not encrypted"));
    }
    if (item.offline) li.appendChild(el("span", "tag", "sent while you were away"));
    return li;
  }

  /** Show an item of the shown conversation again (an envelope opened). */
  updateItem(conv, item, model) {
    if (conv.key !== this.shownKey) return;
    const old = this.nodes.get(item);
    if (!old) return;
    const stick = this.atBottom();
    const node = this.itemNode(item, model);
    this.nodes.set(item, node);
    old.replaceWith(node);
    if (stick) this.scrollToBottom();
  }

  /**
   * The encryption banner of a private conversation: a loud warning with
   * "Trust new key" when the other's key changed, or a notice that this
   * page cannot encrypt (no secure context).
   * @param {import("./e2e.js").E2E} e2e
   * @param {(nick: string) => void} onTrust
   */
  renderE2E(conv, e2e, onTrust) {
    let kind = "";
    let text = "";
    if (conv && conv.kind === "private") {
      const warning = e2e.warning(conv.name);
      if (!e2e.available) {
        kind = "insecure";
        text = "Encrypted private messages need the TLS web listener (https://…): this conversation is not encrypted"
          + (e2e.unavailableReason ? ` (${e2e.unavailableReason}).` : ".");
      } else if (warning) {
        kind = "warning";
        text = warning.text;
      }
    }
    const shown = `${kind}|${conv ? conv.key : ""}|${text}`;
    if (shown === this.e2eShown) return;
    this.e2eShown = shown;
    const banner = this.e2eBanner;
    banner.replaceChildren();
    banner.hidden = !kind;
    banner.className = `e2e-banner ${kind}`;
    if (!kind) return;
    banner.appendChild(el("span", "e2e-banner-text", text));
    if (kind === "warning") {
      const b = el("button", "danger", "Trust new key");
      b.type = "button";
      const nick = conv.name;
      b.addEventListener("click", () => onTrust(nick));
      banner.appendChild(b);
    }
  }

  fileNode(item, model) {
    const li = el("li", `msg file${item.fromMe ? " self" : ""}`);
    li.dataset.id = String(item.id);
    li.appendChild(timeNode(item.ts || new Date().toISOString()));
    li.appendChild(el("span", `nick ${nickClass(item.from)}`, item.from));
    const body = el("span", "text file-body");
    const target = String(item.to || "");
    body.appendChild(document.createTextNode(item.fromMe && !target.startsWith("#") ? `offers ${target} a file: ` : "offers a file: "));
    const a = el("a", "file-link", item.name);
    a.href = fileUrl(item.id, model.token);
    a.setAttribute("download", item.name);
    a.dataset.fileId = String(item.id);
    body.appendChild(a);
    body.appendChild(document.createTextNode(` (${formatSize(item.size)})`));
    li.appendChild(body);
    if (isImageName(item.name)) {
      const fig = el("a", "preview");
      fig.href = a.href;
      fig.dataset.fileId = String(item.id);
      fig.target = "_blank";
      fig.rel = "noopener";
      const img = document.createElement("img");
      img.alt = item.name;
      img.loading = "lazy";
      img.decoding = "async";
      img.src = fileUrl(item.id, model.token);
      img.addEventListener("error", () => fig.classList.add("broken"));
      fig.appendChild(img);
      li.appendChild(fig);
    }
    return li;
  }

  /** Point download links at a new token (after a reconnection). */
  refreshFileLinks(token) {
    for (const a of this.log.querySelectorAll("a[data-file-id]")) {
      a.href = fileUrl(a.dataset.fileId, token);
    }
  }

  // Uploads

  /** A progress row; returns {update(sent,total), done(text), fail(text)}. */
  uploadRow(name, target) {
    const row = el("div", "upload");
    const label = el("span", "upload-name", `${name} → ${target}`);
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", `Uploading ${name}`);
    const pct = el("span", "upload-pct", "0%");
    row.append(label, bar, pct);
    this.uploads.appendChild(row);
    const remove = (ms) => setTimeout(() => row.remove(), ms);
    return {
      update: (sent, total) => {
        const p = total ? Math.floor((sent / total) * 100) : 100;
        bar.value = p;
        pct.textContent = `${p}%`;
      },
      done: () => {
        bar.value = 100;
        pct.textContent = "sent";
        row.classList.add("ok");
        remove(2500);
      },
      fail: (text) => {
        row.classList.add("failed");
        pct.textContent = text;
        const close = el("button", "icon-button", "✕");
        close.type = "button";
        close.setAttribute("aria-label", "Dismiss");
        close.addEventListener("click", () => row.remove());
        row.appendChild(close);
      },
    };
  }
}

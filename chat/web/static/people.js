/**
 * A person's menu in the people list (PROTOCOL.md section 10): Private
 * message for everyone, and for an operator of the room shown the
 * moderation commands (/op, /deop, /kick, /ban, /mute, /unmute, /invite).
 * Kick and Ban ask a reason (and Ban a duration) in the menu itself before
 * the command is sent.
 *
 * The menu is one element outside the people list (`#person-menu`), so the
 * list can be drawn again while it is open. It is a `role="menu"` of
 * `menuitem` buttons: Up/Down/Home/End move, Escape or Tab closes it and
 * gives the focus back to the person's button.
 */

/** The roles of PROTOCOL.md section 10. */
export const OPERATOR = "operator";

/** [what the user reads, the DURATION of /ban ("": none, forever)] */
export const BAN_DURATIONS = [
  ["10 minutes", "10m"],
  ["1 hour", "1h"],
  ["1 day", "1d"],
  ["7 days", "7d"],
  ["Forever", ""],
];

/** Whether `nick` is an operator of the room `conv` (a Conversation), as the last users/role events said. */
export function isOperator(conv, nick) {
  if (!conv || conv.kind !== "room" || !nick) return false;
  const user = conv.users.get(nick.toLowerCase());
  return !!user && user.role === OPERATOR;
}

/**
 * What the user can do with `nick`, a person of the conversation `conv`:
 * [{label, kind, line}], kind "message" (open the private conversation),
 * "command" (send `line`), "kick" (ask a reason, then send `line REASON`)
 * or "ban" (ask a duration and a reason: `line [DURATION] [REASON]`).
 * Operators of the room get the moderation commands (not on themselves,
 * but for giving up their own operator status), and an invitation to each
 * other invite-only room they operate that `nick` is not in.
 */
export function personActions(model, conv, nick) {
  const me = model.isMe(nick);
  const actions = me ? [] : [
    { label: "Private message", kind: "message", line: "" },
    { label: "Verify", kind: "command", line: `/verify ${nick}` },
  ];
  if (!conv || conv.kind !== "room" || !conv.joined || !isOperator(conv, model.me)) return actions;
  const room = conv.name;
  if (isOperator(conv, nick)) actions.push({ label: "Remove operator", kind: "command", line: `/deop ${nick} ${room}` });
  else actions.push({ label: "Make operator", kind: "command", line: `/op ${nick} ${room}` });
  if (me) return actions;
  actions.push(
    { label: "Kick…", kind: "kick", line: `/kick ${nick} ${room}` },
    { label: "Ban…", kind: "ban", line: `/ban ${nick} ${room}` },
    { label: "Mute", kind: "command", line: `/mute ${nick} ${room}` },
    { label: "Unmute", kind: "command", line: `/unmute ${nick} ${room}` },
  );
  for (const other of model.conversations.values()) {
    if (other === conv || other.kind !== "room" || !other.joined) continue;
    if (other.settings && other.settings["invite-only"] && isOperator(other, model.me)
        && !other.users.has(nick.toLowerCase())) {
      actions.push({ label: `Invite to ${other.name}`, kind: "command", line: `/invite ${nick} ${other.name}` });
    }
  }
  return actions;
}

/**
 * The words of a room-settings event, one string a line: "#dev is now
 * invite-only", "#dev is no longer moderated" for each setting changed
 * since `before` (the last room-settings of that room). The daemon tells
 * settings after a change only, so with no `before` the change is from all
 * off ("#dev is now moderated"; all off: "#dev is no longer invite-only,
 * topic-locked or moderated").
 */
export function settingsWords(ev, before) {
  const words = [["invite-only", "invite-only"], ["topic-lock", "topic-locked"], ["moderated", "moderated"]];
  if (!before && !words.some(([key]) => ev[key])) {
    return [`${ev.room} is no longer invite-only, topic-locked or moderated`];
  }
  const was = before || {};
  return words
    .filter(([key]) => !!ev[key] !== !!was[key])
    .map(([key, word]) => `${ev.room} is ${ev[key] ? "now" : "no longer"} ${word}`);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class PersonMenu {
  /**
   * @param {HTMLElement} root the menu's element (hidden while closed)
   * @param {{onMessage: (nick: string) => void, onCommand: (line: string) => void,
   *          anchorOf: (nick: string) => HTMLElement|null}} hooks
   *   anchorOf: the person's button now (the list may have been drawn again), for the focus on close
   */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.nick = null;
    /** [anchor, point] of the last placement, to place the Kick/Ban form the same way */
    this.placement = [null, null];
    root.addEventListener("keydown", (e) => this.key(e));
    document.addEventListener("mousedown", (e) => {
      if (this.nick !== null && !root.contains(e.target)) this.close(false);
    });
  }

  get isOpen() {
    return this.nick !== null;
  }

  /**
   * Open the menu of `nick` with `actions` (personActions) next to `anchor`
   * (an element) or at `point` ({x, y}, client pixels, a right click).
   */
  open(nick, actions, anchor, point = null) {
    this.nick = nick;
    this.root.replaceChildren();
    const list = el("ul", "person-menu-list");
    list.setAttribute("role", "menu");
    list.setAttribute("aria-label", nick);
    for (const action of actions) {
      const li = el("li");
      li.setAttribute("role", "none");
      const b = el("button", "person-menu-item", action.label);
      b.type = "button";
      b.setAttribute("role", "menuitem");
      b.tabIndex = -1;
      b.addEventListener("click", () => this.choose(action));
      li.appendChild(b);
      list.appendChild(li);
    }
    this.root.appendChild(list);
    this.place(anchor, point);
    const first = list.querySelector("button");
    if (first) first.focus();
  }

  place(anchor, point) {
    this.placement = [anchor, point];
    this.root.hidden = false;
    const box = anchor ? anchor.getBoundingClientRect() : null;
    let x = point ? point.x : box ? box.left + 16 : 16;
    let y = point ? point.y : box ? box.bottom : 16;
    const { width, height } = this.root.getBoundingClientRect();
    x = Math.max(4, Math.min(x, window.innerWidth - width - 4));
    y = Math.max(4, Math.min(y, window.innerHeight - height - 4));
    this.root.style.left = `${x}px`;
    this.root.style.top = `${y}px`;
  }

  choose(action) {
    const nick = this.nick;
    if (action.kind === "message") {
      this.close(false);
      this.hooks.onMessage(nick);
    } else if (action.kind === "command") {
      this.close();
      this.hooks.onCommand(action.line);
    } else {
      this.ask(action);
    }
  }

  /** Kick…, Ban…: the menu becomes a small form asking why (and for how long). */
  ask(action) {
    const ban = action.kind === "ban";
    const verb = ban ? "Ban" : "Kick";
    const form = el("form", "person-form");
    form.setAttribute("aria-label", `${verb} ${this.nick}`);
    form.appendChild(el("p", "person-form-title", `${verb} ${this.nick}`));
    const label = el("label", "person-form-label", "Reason (optional)");
    const reason = el("input", "person-reason");
    reason.type = "text";
    reason.maxLength = 200;
    label.appendChild(reason);
    form.appendChild(label);
    let duration = null;
    if (ban) {
      const how = el("label", "person-form-label", "For how long");
      duration = el("select", "person-duration");
      for (const [text, value] of BAN_DURATIONS) {
        const option = el("option", "", text);
        option.value = value;
        duration.appendChild(option);
      }
      how.appendChild(duration);
      form.appendChild(how);
    }
    const buttons = el("div", "person-form-buttons");
    const cancel = el("button", "person-cancel", "Cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => this.close());
    const ok = el("button", "person-ok", verb);
    ok.type = "submit";
    buttons.append(cancel, ok);
    form.appendChild(buttons);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const words = [action.line, duration ? duration.value : "", reason.value.trim()].filter((w) => w);
      this.close();
      this.hooks.onCommand(words.join(" "));
    });
    this.root.replaceChildren(form);
    this.place(...this.placement);
    reason.focus();
  }

  /** Close the menu; give the focus back to the person's button unless `refocus` is false. */
  close(refocus = true) {
    if (this.nick === null) return;
    const nick = this.nick;
    this.nick = null;
    this.root.hidden = true;
    this.root.replaceChildren();
    if (refocus) {
      const anchor = this.hooks.anchorOf(nick);
      if (anchor) anchor.focus();
    }
  }

  key(e) {
    if (e.key === "Escape") {
      e.preventDefault();
      this.close();
      return;
    }
    const items = [...this.root.querySelectorAll('[role="menuitem"]')];
    if (!items.length) return;
    const at = items.indexOf(document.activeElement);
    let next = null;
    if (e.key === "ArrowDown") next = (at + 1) % items.length;
    else if (e.key === "ArrowUp") next = (at - 1 + items.length) % items.length;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = items.length - 1;
    else if (e.key === "Tab") this.close();
    if (next !== null) {
      e.preventDefault();
      items[next].focus();
    }
  }
}

/**
 * Emoji: the daemon's shortcode table (GET /emoji.json, {"shortcode": "😀"},
 * shortcodes without colons), `:shortcode:` replacement in what is sent,
 * a completion popup while typing `:wa`, and a picker.
 */

/** Used until (or if never) /emoji.json arrives. */
const FALLBACK = {
  smile: "😄", grin: "😁", joy: "😂", wink: "😉", heart: "❤️", thumbs_up: "👍", "+1": "👍",
  thumbs_down: "👎", wave: "👋", tada: "🎉", fire: "🔥", eyes: "👀", thinking: "🤔", ok_hand: "👌",
  clap: "👏", pray: "🙏", rocket: "🚀", sob: "😭", sweat_smile: "😅", rofl: "🤣", coffee: "☕",
  white_check_mark: "✅", x: "❌", warning: "⚠️", star: "⭐", sparkles: "✨", smiley: "😃",
};

/** Shown first in the picker. */
const FAVOURITES = [
  "thumbs_up", "heart", "joy", "smile", "wink", "tada", "wave", "fire", "eyes", "thinking", "clap", "pray",
  "ok_hand", "rocket", "sob", "sweat_smile", "rofl", "coffee", "white_check_mark", "x", "warning", "star",
  "sparkles", "smiley", "grin", "thumbs_down", "100", "muscle", "party_popper", "sunglasses", "upside_down_face",
  "slightly_smiling_face", "heart_eyes", "kissing_heart", "blush", "cry", "angry", "scream", "sleeping", "zzz",
];

let table = { ...FALLBACK };
let names = Object.keys(table).sort();
let loading = null;

/** Fetch the daemon's table once; resolves with it (the fallback on failure). */
export function loadEmoji() {
  if (!loading) {
    loading = fetch("/emoji.json", { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((data) => {
        if (data && typeof data === "object") {
          const clean = {};
          for (const [k, v] of Object.entries(data)) {
            if (typeof v === "string") clean[String(k).replace(/^:|:$/g, "")] = v;
          }
          if (Object.keys(clean).length) {
            table = { ...FALLBACK, ...clean };
            names = Object.keys(table).sort();
          }
        }
        return table;
      })
      .catch(() => table);
  }
  return loading;
}

/** The emoji of a shortcode (without colons), or undefined. */
export function emojiFor(code) {
  return Object.prototype.hasOwnProperty.call(table, code) ? table[code] : undefined;
}

/** `:shortcode:` -> emoji in text; unknown shortcodes stay as typed. */
export function replaceShortcodes(text) {
  return text.replace(/:([A-Za-z0-9_+\-]+):/g, (whole, code) => emojiFor(code) || emojiFor(code.toLowerCase()) || whole);
}

/**
 * Whether a typed line's emoji may be replaced: not in commands that carry
 * nicks, rooms or passwords.
 */
export function mayReplace(line) {
  return !/^\/(login|register|password|nick|join|part|key|emsg|upload|download|history|whois|kick|ban|op|deop)\b/i.test(line);
}

/**
 * Up to `limit` shortcodes matching `query` (prefix matches first).
 * @returns {string[]}
 */
export function searchEmoji(query, limit = 8) {
  const q = query.toLowerCase();
  const prefix = [];
  const inside = [];
  for (const name of names) {
    const lower = name.toLowerCase();
    if (lower.startsWith(q)) prefix.push(name);
    else if (q.length >= 2 && lower.includes(q)) inside.push(name);
  }
  // Shortest first: ":thu" offers :thumbs_up: before its skin tones.
  const byLength = (a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  return [...prefix.sort(byLength), ...inside.sort(byLength)].slice(0, limit);
}

/** The `:query` being typed before the caret, or null: {start, query}. */
export function typedShortcode(value, caret) {
  const before = value.slice(0, caret);
  const m = before.match(/(^|[\s(])(:[A-Za-z0-9_+\-]{2,})$/);
  if (!m) return null;
  return { start: caret - m[2].length, query: m[2].slice(1) };
}

/**
 * The completion popup and the picker, wired to the message input.
 */
export class EmojiUI {
  /**
   * @param {HTMLInputElement} input the message input
   * @param {HTMLElement} popup a role=listbox element for completions
   * @param {HTMLButtonElement} button the picker button
   * @param {HTMLElement} picker the picker panel (holds a search input and a grid)
   */
  constructor(input, popup, button, picker) {
    this.input = input;
    this.popup = popup;
    this.button = button;
    this.picker = picker;
    this.search = picker.querySelector("input");
    this.grid = picker.querySelector(".emoji-grid");
    this.matches = [];
    this.selected = 0;
    this.context = null;
    input.addEventListener("input", () => this.update());
    input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    button.addEventListener("click", () => this.togglePicker());
    this.search.addEventListener("input", () => this.fillPicker());
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        this.togglePicker(false);
        this.input.focus();
      } else if (e.key === "Enter") {
        e.preventDefault();
        const first = this.grid.querySelector("button");
        if (first) first.click();
      }
    });
    document.addEventListener("click", (e) => {
      if (!this.picker.hidden && !this.picker.contains(e.target) && !this.button.contains(e.target)) {
        this.togglePicker(false);
      }
    });
  }

  get isOpen() {
    return !this.popup.hidden;
  }

  /** Recompute the popup from the input's value and caret. */
  update() {
    const ctx = typedShortcode(this.input.value, this.input.selectionStart ?? this.input.value.length);
    if (!ctx) {
      this.close();
      return;
    }
    this.context = ctx;
    const glyphs = new Set();
    this.matches = searchEmoji(ctx.query, 40)
      .filter((name) => !glyphs.has(emojiFor(name)) && glyphs.add(emojiFor(name)))
      .slice(0, 8);
    this.selected = 0;
    if (!this.matches.length) {
      this.close();
      return;
    }
    this.render();
  }

  render() {
    this.popup.replaceChildren();
    this.matches.forEach((name, i) => {
      const li = document.createElement("li");
      li.setAttribute("role", "option");
      li.id = `emoji-option-${i}`;
      li.setAttribute("aria-selected", i === this.selected ? "true" : "false");
      const glyph = document.createElement("span");
      glyph.className = "emoji-glyph";
      glyph.textContent = emojiFor(name);
      const label = document.createElement("span");
      label.textContent = `:${name}:`;
      li.append(glyph, label);
      li.addEventListener("mousedown", (e) => {
        e.preventDefault();
        this.selected = i;
        this.accept();
      });
      this.popup.appendChild(li);
    });
    this.popup.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.input.setAttribute("aria-activedescendant", `emoji-option-${this.selected}`);
  }

  close() {
    if (this.popup.hidden) return;
    this.popup.hidden = true;
    this.popup.replaceChildren();
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  /**
   * Keys for the popup: arrows move, Enter/Tab accept, Escape closes.
   * @returns {boolean} whether the key was used
   */
  handleKey(e) {
    if (!this.isOpen) return false;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      const step = e.key === "ArrowDown" ? 1 : -1;
      this.selected = (this.selected + step + this.matches.length) % this.matches.length;
      this.render();
      return true;
    }
    if (e.key === "Enter" || e.key === "Tab") {
      this.accept();
      return true;
    }
    if (e.key === "Escape") {
      this.close();
      return true;
    }
    return false;
  }

  accept() {
    const name = this.matches[this.selected];
    if (!name || !this.context) return;
    const value = this.input.value;
    const caret = this.input.selectionStart ?? value.length;
    const glyph = emojiFor(name);
    this.input.value = value.slice(0, this.context.start) + glyph + " " + value.slice(caret);
    const pos = this.context.start + glyph.length + 1;
    this.input.setSelectionRange(pos, pos);
    this.close();
    this.input.focus();
  }

  /** Insert text at the caret of the input. */
  insert(text) {
    const value = this.input.value;
    const start = this.input.selectionStart ?? value.length;
    const end = this.input.selectionEnd ?? value.length;
    this.input.value = value.slice(0, start) + text + value.slice(end);
    const pos = start + text.length;
    this.input.focus();
    this.input.setSelectionRange(pos, pos);
  }

  togglePicker(show) {
    const open = show ?? this.picker.hidden;
    this.picker.hidden = !open;
    this.button.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      this.search.value = "";
      this.fillPicker();
      this.search.focus();
    }
  }

  fillPicker() {
    const q = this.search.value.trim().replace(/^:|:$/g, "");
    const list = q ? searchEmoji(q, 120) : [...FAVOURITES.filter((n) => emojiFor(n)), ...names].slice(0, 120);
    const seen = new Set();
    this.grid.replaceChildren();
    for (const name of list) {
      const glyph = emojiFor(name);
      if (!glyph || seen.has(glyph)) continue;
      seen.add(glyph);
      const b = document.createElement("button");
      b.type = "button";
      b.className = "emoji-cell";
      b.textContent = glyph;
      b.title = `:${name}:`;
      b.setAttribute("aria-label", name.replace(/_/g, " "));
      b.addEventListener("click", () => {
        this.insert(glyph);
        this.togglePicker(false);
      });
      this.grid.appendChild(b);
    }
    if (!this.grid.childElementCount) {
      const p = document.createElement("p");
      p.className = "emoji-none";
      p.textContent = "No emoji found";
      this.grid.appendChild(p);
    }
  }
}

/**
 * Light formatting of message text into DOM nodes, safely.
 *
 * `*bold*`, `_italic_`, `` `code` `` and http(s) links become elements; every
 * piece of user text is inserted with document.createTextNode, never as HTML,
 * so `<b>x</b>` shows literally. A nick to highlight is wrapped in <mark>.
 */

const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/;

/**
 * Split text into tokens: {kind: "text"|"bold"|"italic"|"code"|"url", text}.
 * Code spans and URLs are taken first and never formatted inside.
 * @param {string} text
 * @returns {{kind: string, text: string}[]}
 */
export function tokenize(text) {
  const out = [];
  // First pass: code spans and URLs.
  const re = /`([^`\n]+)`|\bhttps?:\/\/[^\s<>"]+/gi;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    let whole = m[0];
    let end = m.index + whole.length;
    if (m[1] === undefined) {
      // A URL: leave trailing punctuation out of it.
      const trail = whole.match(TRAILING);
      if (trail) {
        // keep a closing ) when the URL holds an opening (
        let cut = trail[0].length;
        if (trail[0].startsWith(")") && whole.slice(0, -cut).includes("(")) cut -= 1;
        whole = whole.slice(0, whole.length - cut);
        end = m.index + whole.length;
        re.lastIndex = end;
      }
      if (!/^https?:\/\/[^/?#\s]+/i.test(whole)) continue;
    }
    if (m.index > last) out.push(...emphasis(text.slice(last, m.index)));
    out.push(m[1] !== undefined ? { kind: "code", text: m[1] } : { kind: "url", text: whole });
    last = end;
  }
  if (last < text.length) out.push(...emphasis(text.slice(last)));
  return out;
}

/** *bold* and _italic_ in plain text (no nesting). */
function emphasis(text) {
  const out = [];
  const re = /(^|[\s([{"'])([*_])(?=\S)([^*_\n]*?\S)\2(?=$|[\s)\]}"'.,;:!?])/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    const start = m.index + m[1].length;
    if (start > last) out.push({ kind: "text", text: text.slice(last, start) });
    out.push({ kind: m[2] === "*" ? "bold" : "italic", text: m[3] });
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push({ kind: "text", text: text.slice(last) });
  return out;
}

/**
 * Append `text` to `node` with the highlight of `nick` (case-insensitive,
 * whole words) as <mark> elements.
 */
function appendHighlighted(node, text, nick) {
  if (!nick) {
    node.appendChild(document.createTextNode(text));
    return;
  }
  const lower = text.toLowerCase();
  const needle = nick.toLowerCase();
  let last = 0;
  let i = lower.indexOf(needle);
  while (i !== -1) {
    const before = i === 0 ? "" : lower[i - 1];
    const after = lower[i + needle.length] || "";
    if (!/[a-z0-9_-]/.test(before) && !/[a-z0-9_-]/.test(after)) {
      if (i > last) node.appendChild(document.createTextNode(text.slice(last, i)));
      const mark = document.createElement("mark");
      mark.textContent = text.slice(i, i + needle.length);
      node.appendChild(mark);
      last = i + needle.length;
    }
    i = lower.indexOf(needle, i + needle.length);
  }
  if (last < text.length) node.appendChild(document.createTextNode(text.slice(last)));
}

/**
 * Whether `text` mentions `nick` as a whole word (case-insensitive).
 * @param {string} text
 * @param {string} nick
 */
export function mentions(text, nick) {
  if (!nick || !text) return false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  return new RegExp(`(^|[^A-Za-z0-9_-])${escaped}($|[^A-Za-z0-9_-])`, "i").test(text);
}

/**
 * The formatted DOM of a message's text.
 * @param {string} text the message text as received
 * @param {string} [highlight] a nick to mark
 * @returns {DocumentFragment}
 */
export function formatText(text, highlight) {
  const frag = document.createDocumentFragment();
  for (const token of tokenize(text)) {
    switch (token.kind) {
      case "bold":
      case "italic": {
        const el = document.createElement(token.kind === "bold" ? "strong" : "em");
        appendHighlighted(el, token.text, highlight);
        frag.appendChild(el);
        break;
      }
      case "code": {
        const el = document.createElement("code");
        el.textContent = token.text;
        frag.appendChild(el);
        break;
      }
      case "url": {
        const a = document.createElement("a");
        let href = null;
        try {
          const url = new URL(token.text);
          if (url.protocol === "http:" || url.protocol === "https:") href = url.href;
        } catch (e) {
          href = null;
        }
        if (href) {
          a.href = href;
          a.target = "_blank";
          a.rel = "noopener noreferrer nofollow";
          a.textContent = token.text;
          frag.appendChild(a);
        } else {
          frag.appendChild(document.createTextNode(token.text));
        }
        break;
      }
      default:
        appendHighlighted(frag, token.text, highlight);
    }
  }
  return frag;
}

/** A byte count for people: "2.0 KiB". */
export function formatSize(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let n = Number(bytes) || 0;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} ${n === 1 ? "byte" : "bytes"}` : `${n.toFixed(1)} ${units[i]}`;
}

/** HH:MM local time of an RFC 3339 string ("" if unparseable). */
export function formatTime(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

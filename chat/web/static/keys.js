/**
 * Editing keys of the message input: Up/Down recall the lines sent, Tab
 * completes nicks (repeated Tab cycles through the candidates).
 */

/** The lines the user sent, for Up and Down. */
export class Recall {
  constructor(limit = 200) {
    this.limit = limit;
    this.lines = [];
    /** -1: editing a new line; else how far back */
    this.index = -1;
    this.draft = "";
  }

  /** Remember a line sent (not twice in a row). */
  push(line) {
    if (this.lines[this.lines.length - 1] !== line) this.lines.push(line);
    if (this.lines.length > this.limit) this.lines.shift();
    this.index = -1;
    this.draft = "";
  }

  /** The previous line (Up), or null when there is none. */
  up(current) {
    if (!this.lines.length) return null;
    if (this.index === -1) this.draft = current;
    this.index = Math.min(this.index + 1, this.lines.length - 1);
    return this.lines[this.lines.length - 1 - this.index];
  }

  /** The next line (Down), the draft after the newest, or null when not recalling. */
  down() {
    if (this.index < 0) return null;
    this.index -= 1;
    return this.index === -1 ? this.draft : this.lines[this.lines.length - 1 - this.index];
  }
}

/** Tab completion of nicks in an <input>. */
export class NickCompletion {
  constructor(input) {
    this.input = input;
    this.state = null;
  }

  /** Any other key ends a completion. */
  reset() {
    this.state = null;
  }

  /**
   * Complete the word before the caret from `nicks`, or cycle to the next
   * candidate; a nick at the start of the line gets ": ".
   * @param {string[]} nicks candidates (the user's own left out by the caller)
   * @returns {boolean} whether the input changed
   */
  complete(nicks) {
    const input = this.input;
    const caret = input.selectionStart ?? input.value.length;
    let state = this.state;
    if (state && state.value === input.value && state.caret === caret) {
      state.index = (state.index + 1) % state.candidates.length;
    } else {
      const m = /(^|\s)@?([A-Za-z][A-Za-z0-9_-]*)$/.exec(input.value.slice(0, caret));
      if (!m) return false;
      const prefix = m[2].toLowerCase();
      const candidates = [...new Set(nicks)]
        .filter((n) => n.toLowerCase().startsWith(prefix))
        .sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
      if (!candidates.length) return false;
      const start = caret - m[2].length;
      state = { candidates, index: 0, start, rest: input.value.slice(caret), atStart: m[1] === "" && start === 0 };
    }
    const head = input.value.slice(0, state.start) + state.candidates[state.index] + (state.atStart ? ": " : " ");
    input.value = head + state.rest;
    input.setSelectionRange(head.length, head.length);
    state.value = input.value;
    state.caret = head.length;
    this.state = state;
    return true;
  }
}

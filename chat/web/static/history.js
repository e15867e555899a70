/**
 * The page's own `/history` requests and their answers.
 *
 * Each request is sent between two `/ping` barriers: `/ping hsN`, then
 * `/history ...`, then `/ping hN`. The daemon answers a connection's lines
 * in order, so the `history` event between the two pongs answers request N,
 * an `error` between them is its refusal (not the user's business), and a
 * request whose closing pong comes without a `history` failed.
 */

export class HistoryRequests {
  /** @param {(line: string) => boolean} send sends one input line */
  constructor(send) {
    this.send = send;
    this.seq = 0;
    /** seq -> request */
    this.pending = new Map();
    /** conversation key -> requests in the order sent */
    this.queues = new Map();
    /** the request whose answer is being received */
    this.active = null;
  }

  /**
   * Send a request.
   * @param {string} key the conversation's key
   * @param {string} target "#room" or a nick
   * @param {object} info kept on the request: {kind, n, floor, depth}
   * @param {number|null} before only messages older than this id
   * @returns {object} the request {seq, key, done, ...info}
   */
  ask(key, target, info, before) {
    this.seq += 1;
    const req = { ...info, seq: this.seq, key, done: false };
    this.pending.set(req.seq, req);
    if (!this.queues.has(key)) this.queues.set(key, []);
    this.queues.get(key).push(req);
    this.send(`/ping hs${req.seq}`);
    this.send(`/history ${info.n} ${target}${before ? ` before ${before}` : ""}`);
    this.send(`/ping h${req.seq}`);
    return req;
  }

  /**
   * A `history` event arrived for a conversation.
   * @returns {object|null} the request it answers, or null (history on
   *   joining, or a /history the user typed)
   */
  answered(key) {
    const queue = this.queues.get(key) || [];
    const req = queue.length ? queue.shift() : null;
    if (req) {
      req.done = true;
      this.pending.delete(req.seq);
    }
    return req;
  }

  /**
   * A `pong` arrived.
   * @returns {object|null} a request that ended without an answer
   */
  pong(token) {
    const m = /^h(s?)(\d+)$/.exec(token || "");
    if (!m) return null;
    const req = this.pending.get(Number(m[2]));
    if (!req) return null;
    if (m[1]) {
      this.active = req;
      return null;
    }
    if (this.active === req) this.active = null;
    return this.drop(req) ? req : null;
  }

  /** Whether an `error` arriving now answers one of our requests. */
  get answering() {
    return !!this.active && !this.active.done;
  }

  /**
   * Forget every request (the socket is new).
   * @returns {object[]} those that were not answered
   */
  reset() {
    const unanswered = [...this.pending.values()].filter((req) => this.drop(req));
    this.active = null;
    return unanswered;
  }

  /** Forget a request; false when it was answered already. */
  drop(req) {
    if (req.done) return false;
    req.done = true;
    this.pending.delete(req.seq);
    const queue = this.queues.get(req.key) || [];
    const i = queue.indexOf(req);
    if (i >= 0) queue.splice(i, 1);
    return true;
  }
}

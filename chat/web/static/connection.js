/**
 * The WebSocket to the daemon, with reconnection.
 *
 * Each text frame out is one input line; each frame in is one JSON event
 * (PROTOCOL.md section 9). When the socket drops (and the user did not quit)
 * it reconnects after an exponential backoff with jitter: 0.5 s doubled per
 * failed attempt up to 30 s, each delay drawn between half and all of it.
 * The state is told to `onState(state, secondsLeft)`:
 * "offline", "connecting", "online", "reconnecting".
 */

const BASE_DELAY = 500;
const MAX_DELAY = 30000;
const PING_EVERY = 45000;

/** The /ws URL of this page's origin. */
export function socketUrl(loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/ws`;
}

export class Connection {
  /**
   * @param {object} handlers
   * @param {(event: object) => void} handlers.onEvent each JSON event
   * @param {() => void} handlers.onOpen the socket opened (before welcome)
   * @param {(state: string, seconds?: number) => void} handlers.onState
   * @param {string} [url]
   */
  constructor(handlers, url = socketUrl()) {
    this.handlers = handlers;
    this.url = url;
    this.ws = null;
    this.state = "offline";
    this.attempts = 0;
    this.wanted = false;
    this.timer = null;
    this.countdown = null;
    this.pinger = null;
    this.pingSeq = 0;
    this.opened = false;
  }

  /** Start (or restart now) connecting. */
  open() {
    this.wanted = true;
    this._clearTimers();
    this._connect();
  }

  /** Close for good: no reconnection. */
  close() {
    this.wanted = false;
    this._clearTimers();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.close(1000);
      } catch (e) {
        /* closing anyway */
      }
    }
    this._setState("offline");
  }

  /** Send one line; false when the socket is not open. */
  send(line) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(line);
    return true;
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** The socket worked (registered): reset the backoff. */
  succeeded() {
    this.attempts = 0;
  }

  _connect() {
    this._setState(this.opened ? "reconnecting" : "connecting", 0);
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.opened = true;
      this._setState("online");
      this._startPing();
      this.handlers.onOpen();
    });
    ws.addEventListener("message", (msg) => {
      if (this.ws !== ws || typeof msg.data !== "string") return;
      let event;
      try {
        event = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      if (event && typeof event === "object" && typeof event.type === "string") this.handlers.onEvent(event);
    });
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._stopPing();
      if (this.handlers.onClose) this.handlers.onClose();
      if (this.wanted) this._scheduleReconnect();
      else this._setState("offline");
    });
  }

  /** The delay before the next attempt, in milliseconds (with jitter). */
  nextDelay() {
    const ceiling = Math.min(MAX_DELAY, BASE_DELAY * 2 ** this.attempts);
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  _scheduleReconnect() {
    const delay = this.nextDelay();
    this.attempts += 1;
    const until = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      this._setState("reconnecting", left);
    };
    tick();
    this.countdown = setInterval(tick, 250);
    this.timer = setTimeout(() => {
      this._clearTimers();
      if (this.wanted) this._connect();
    }, delay);
  }

  _startPing() {
    this._stopPing();
    this.pinger = setInterval(() => {
      this.pingSeq += 1;
      this.send(`/ping keepalive-${this.pingSeq}`);
    }, PING_EVERY);
  }

  _stopPing() {
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = null;
  }

  _clearTimers() {
    if (this.timer) clearTimeout(this.timer);
    if (this.countdown) clearInterval(this.countdown);
    this.timer = null;
    this.countdown = null;
  }

  _setState(state, seconds) {
    const changed = state !== this.state || seconds !== this._seconds;
    this.state = state;
    this._seconds = seconds;
    if (changed) this.handlers.onState(state, seconds);
  }
}

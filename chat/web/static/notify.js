/**
 * Alerts: desktop notifications (Notification API) for mentions and private
 * messages while the tab is hidden, and the unread count in the title.
 * Permission is asked once, on a user action (the login), and the answer is
 * remembered by the browser; "asked" is kept in localStorage.
 */

const ASKED = "chat.notifications-asked";
const BASE_TITLE = "chat";

/** Ask for notification permission, once ever, from a user gesture. */
export function askPermissionOnce() {
  if (!("Notification" in window)) return;
  if (Notification.permission !== "default") return;
  try {
    if (localStorage.getItem(ASKED)) return;
    localStorage.setItem(ASKED, "1");
  } catch (e) {
    /* storage unavailable: ask anyway */
  }
  try {
    const asked = Notification.requestPermission();
    if (asked && asked.catch) asked.catch(() => {});
  } catch (e) {
    /* old API shapes */
  }
}

/**
 * Show a notification when the page is hidden and allowed to.
 * @param {string} title
 * @param {string} body
 * @param {() => void} onClick called (and the window focused) on click
 * @returns {boolean} whether one was shown
 */
export function notify(title, body, onClick) {
  if (!document.hidden) return false;
  if (!("Notification" in window) || Notification.permission !== "granted") return false;
  try {
    const n = new Notification(title, { body, icon: "/icon.svg", tag: title });
    n.onclick = () => {
      window.focus();
      if (onClick) onClick();
      n.close();
    };
    return true;
  } catch (e) {
    return false;
  }
}

/** "(3) chat", or "chat" with nothing unread. */
export function titleFor(unread, where) {
  const base = where ? `${where} · ${BASE_TITLE}` : BASE_TITLE;
  return unread > 0 ? `(${unread}) ${base}` : base;
}

export function setTitle(unread, where) {
  const title = titleFor(unread, where);
  if (document.title !== title) document.title = title;
}

/*
 * Applies the remembered theme before the page is painted (a classic
 * script in <head>, so there is no flash of the other theme). The switch
 * itself lives in app.js.
 */
(function () {
  try {
    var theme = localStorage.getItem("chat.theme");
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  } catch (e) {
    /* no storage: follow the system */
  }
})();

"""
The web page's end-to-end encrypted private messages (issue 21; the page's
logic is chat/web/static/e2e.js) in Debian's Chromium driven by Playwright,
against a real C{twistd chat --web ...} process: two pages exchange an
encrypted message the daemon's database never holds in clear; a page and a
Python client (L{chat.client.crypto} over a raw JSON connection) read each
other's envelopes; a user without a key gets clear text and the page says
so; a changed key is a loud warning and nothing goes to the new key until
"Trust new key".

The module is skipped, saying why, when Playwright or C{/usr/bin/chromium}
is missing. Browsers are never downloaded.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chat.client import crypto
from tests.browser import CHROMIUM, CHROMIUM_ARGS, need_browser  # noqa: F401 (the fixtures come from conftest)
from tests.e2e import Client, Daemon

pytestmark = pytest.mark.slow

need_browser("the web page e2e tests")

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect  # noqa: E402

from tests.test_web_page import WAIT_MS, PageUser, open_user, web_port  # noqa: E402

PUBLISHED = "window.chatPage && window.chatPage.e2e.published"
"""True once the daemon confirmed the page's key on this socket."""


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    daemon = Daemon("--web", "tcp:0:interface=127.0.0.1").start()
    yield daemon
    daemon.stop()


def keyed_user(browser: Browser, daemon: Daemon, nick: str, password: str = "") -> PageUser:
    """A page logged in as C{nick} (registered as an account with C{password}) whose key is published."""
    user = open_user(browser, daemon, nick)
    if password:
        user.say(f"/register {password}")
        user.page.wait_for_function(f"() => window.chatPage.model.account && {PUBLISHED}", timeout=WAIT_MS)
    else:
        user.page.wait_for_function(f"() => {PUBLISHED}", timeout=WAIT_MS)
    return user


class ReturningUser(PageUser):
    """A page logging in to an account (nick and password) in a browser context used before."""

    def __init__(self, page: Page, base: str, nick: str, password: str) -> None:
        self.page = page
        self.nick = nick
        self.errors = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.goto(base)
        page.get_by_role("textbox", name="Nick").fill(nick)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Enter chat").click()
        expect(page.get_by_role("textbox", name="Message")).to_be_visible(timeout=WAIT_MS)


def login_again(context: BrowserContext, daemon: Daemon, nick: str, password: str) -> PageUser:
    """A new page of C{context} (the same IndexedDB, so the same device key) logged in to C{nick}'s account."""
    return ReturningUser(context.new_page(), f"http://127.0.0.1:{web_port(daemon)}/", nick, password)


def close(user: PageUser) -> None:
    """Close C{user}'s page and browser context."""
    user.page.context.close()


class KeyedClient:
    """A raw JSON TCP user with a device of L{chat.client.crypto} (what the Python clients do, by hand)."""

    def __init__(self, port: int, nick: str) -> None:
        self.client = Client.json(port, nick)
        self.nick = nick
        self.device = crypto.Device.generate()
        self.publish(self.device)

    def publish(self, device: crypto.Device) -> None:
        """Publish C{device}'s key; returns once the daemon confirmed it."""
        self.client.send_line(f"/key publish {device.published_key()}")
        self.client.read_events_until(lambda e: e["type"] == "info" and "published" in e["text"])

    def bundles(self, nick: str) -> dict[str, bytes]:
        """The bundles C{nick} publishes, by the device id computed here."""
        self.client.send_line(f"/keys {nick}")
        event = self.client.expect_event("keys", nick=nick)
        bundles = [crypto.decode_bundle(k["key"]) for k in event["keys"]]
        return {crypto.device_id(b): b for b in bundles}

    def receive(self, sender: str) -> dict[str, Any]:
        """The next C{private} event from C{sender}."""
        return self.client.expect_event("private", {"from": sender})

    def open(self, event: dict[str, Any], sender: str) -> crypto.Plaintext:
        """Open the envelope of C{event} with this client's device and C{sender}'s published keys."""
        known = self.bundles(sender)
        return crypto.open_envelope(event["e2e"], self.device, known.get)

    def privates_before_pong(self, token: str) -> list[dict[str, Any]]:
        """The C{private} events read before the pong of C{/ping TOKEN}."""
        return [e for e in self.client.ping(token) if e["type"] == "private"]


def open_private(user: PageUser, nick: str) -> None:
    """Show C{user}'s private conversation with C{nick} (its button in the sidebar, once it is there)."""
    button = user.page.get_by_role("button", name=re.compile(rf"^{nick} \(private\)"))
    button.click(timeout=WAIT_MS)


def locked(user: PageUser, text: str) -> Any:
    """The message lines of C{user} holding C{text} and a lock named "encrypted"."""
    return user.message(text).filter(has=user.page.get_by_role("img", name="encrypted"))


def stored_bytes(daemon: Daemon) -> bytes:
    """Every byte of every file under the daemon's data directory (the SQLite database and its journal)."""
    return b"".join(p.read_bytes() for p in sorted(Path(daemon.data_dir).rglob("*")) if p.is_file())


def stored_envelopes(daemon: Daemon) -> list[str]:
    """The C{e2e} column of the stored private messages, read from the daemon's SQLite file."""
    envelopes: list[str] = []
    for path in Path(daemon.data_dir).rglob("*"):
        if not path.is_file() or path.suffix in (".db-wal", ".db-shm") or path.name.endswith(("-wal", "-shm")):
            continue
        if path.read_bytes()[:16] != b"SQLite format 3\x00":
            continue
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            envelopes += [row[0] for row in db.execute("SELECT e2e FROM private WHERE e2e != ''")]
        finally:
            db.close()
    return envelopes


def test_two_pages_exchange_an_encrypted_message(browser: Browser, daemon: Daemon) -> None:
    """
    A private message between two pages is sealed: the receiver shows it with a lock named "encrypted", the daemon
    stores an envelope, and no file of the daemon's data directory holds the text.
    """
    alice = keyed_user(browser, daemon, "alice", "alicepw123")
    bob = keyed_user(browser, daemon, "bob", "bobpw12345")
    try:
        secret = "the eagle lands at noon"
        alice.say(f"/msg bob {secret}")
        open_private(bob, "alice")
        expect(locked(bob, secret)).to_have_count(1, timeout=WAIT_MS)
        expect(locked(alice, secret)).to_have_count(1, timeout=WAIT_MS)
        expect(bob.message(secret).locator(".not-encrypted")).to_have_count(0)
        bob.say("and the owl at midnight")
        expect(locked(alice, "and the owl at midnight")).to_have_count(1, timeout=WAIT_MS)
        assert len(stored_envelopes(daemon)) >= 2
        data = stored_bytes(daemon)
        assert secret.encode() not in data
        assert b"owl at midnight" not in data
        assert alice.errors == [] and bob.errors == []
    finally:
        close(alice)
        close(bob)


def test_page_and_python_client_read_each_other(browser: Browser, daemon: Daemon) -> None:
    """
    A page and a Python client (chat.client.crypto) exchange encrypted private messages both ways, and /verify on
    the page shows the fingerprints of both sides.
    """
    carol = keyed_user(browser, daemon, "carol")
    py = KeyedClient(daemon.port, "pyc")
    try:
        carol.say("/msg pyc hello from the page")
        event = py.receive("carol")
        assert event["text"] == "" and event["e2e"]
        assert py.open(event, "carol") == crypto.TextMessage("hello from the page")
        carol.say("/me waves")
        assert py.open(py.receive("carol"), "carol") == crypto.TextMessage("waves", action=True)

        envelope = crypto.seal(crypto.TextMessage("hi from python"), py.device, py.bundles("carol"))
        py.client.send_line(f"/emsg carol {envelope}")
        open_private(carol, "pyc")
        expect(locked(carol, "hi from python")).to_have_count(1, timeout=WAIT_MS)

        carol.say("/verify pyc")
        block = carol.log.locator("li.event-verify")
        expect(block).to_contain_text(crypto.fingerprint(py.device.bundle), timeout=WAIT_MS)
        own = carol.page.evaluate("window.chatPage.e2e.device.bundle.length")
        assert own == 64
        assert carol.errors == []
    finally:
        close(carol)
        py.client.close()


def test_user_without_key_gets_clear_text(browser: Browser, daemon: Daemon) -> None:
    """A private message to a user with no key goes in the clear, and the page says plainly it is not encrypted."""
    dora = keyed_user(browser, daemon, "dora")
    tel = Client.json(daemon.port, "tel")
    try:
        dora.say("/msg tel plain words")
        event = tel.expect_event("private", {"from": "dora"})
        assert event["text"] == "plain words" and "e2e" not in event
        expect(dora.log.get_by_text("not encrypted: tel has no key")).to_be_visible(timeout=WAIT_MS)
        expect(dora.message("plain words").locator(".not-encrypted")).to_have_text("not encrypted", timeout=WAIT_MS)
        open_private(dora, "tel")
        tel.send_line("/msg dora clear reply")
        expect(dora.message("clear reply").locator(".not-encrypted")).to_have_count(1, timeout=WAIT_MS)
        expect(locked(dora, "clear reply")).to_have_count(0)
    finally:
        close(dora)
        tel.close()


def test_key_change_warns_and_holds_until_trusted(browser: Browser, daemon: Daemon) -> None:
    """
    When a contact's key changes, the page shows a loud warning with "Trust new key" and seals nothing to the new
    key until it is pressed; then the held message goes to the new key only.
    """
    erin = keyed_user(browser, daemon, "erin")
    py = KeyedClient(daemon.port, "pyk")
    try:
        erin.say("/msg pyk first")
        assert py.open(py.receive("erin"), "erin") == crypto.TextMessage("first")
        old = py.device
        py.device = crypto.Device.generate()
        py.publish(py.device)
        py.client.send_line(f"/key remove {old.device_id}")
        py.client.expect_event("info")

        erin.say("second")
        banner = erin.page.get_by_role("alert").filter(has_text="The encryption key of pyk has changed")
        expect(banner).to_be_visible(timeout=WAIT_MS)
        expect(erin.log.get_by_text("Not sent yet")).to_be_visible(timeout=WAIT_MS)
        assert py.privates_before_pong("nothing-yet") == []
        # What the new key signs is not opened either before it is trusted.
        erin_keys = py.bundles("erin")
        py.client.send_line(f"/emsg erin {crypto.seal(crypto.TextMessage('from the new key'), py.device, erin_keys)}")
        refused = erin.log.get_by_text("encrypted message that could not be decrypted (the sender's key is not known")
        expect(refused).to_be_visible(timeout=WAIT_MS)
        expect(erin.message("from the new key")).to_have_count(0)

        banner.get_by_role("button", name="Trust new key").click()
        event = py.receive("erin")
        envelope = crypto.parse_envelope(event["e2e"])
        assert py.device.device_id in envelope.recipients and old.device_id not in envelope.recipients
        assert py.open(event, "erin") == crypto.TextMessage("second")
        expect(banner).to_have_count(0, timeout=WAIT_MS)
        expect(locked(erin, "from the new key")).to_have_count(1, timeout=WAIT_MS)
        assert erin.errors == []
    finally:
        close(erin)
        py.client.close()


def test_page_without_secure_context_says_not_encrypted(playwright: Playwright, daemon: Daemon) -> None:
    """
    A page served over plain HTTP from a name that is not localhost has no WebCrypto: a private conversation says
    it needs the TLS web listener, messages go in the clear marked "not encrypted", and an envelope that arrives is
    shown as not decryptable, never as text.
    """
    # Any name other than localhost / 127.0.0.1 over plain HTTP is no secure context, as a LAN address.
    other = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                       args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP chat.example 127.0.0.1"])
    py = KeyedClient(daemon.port, "pyl")
    try:
        user = PageUser(other.new_context().new_page(), f"http://chat.example:{web_port(daemon)}/", "lan")
        assert user.page.evaluate("() => window.chatPage.e2e.available") is False
        user.say("/msg pyl over plain http")
        event = py.receive("lan")
        assert event["text"] == "over plain http" and "e2e" not in event
        notice = user.page.get_by_role("alert").filter(has_text="Encrypted private messages need the TLS web listener")
        expect(notice).to_contain_text("this conversation is not encrypted", timeout=WAIT_MS)
        expect(user.message("over plain http").locator(".not-encrypted")).to_have_text("not encrypted")

        own = {py.device.device_id: py.device.bundle}
        py.client.send_line(f"/emsg lan {crypto.seal(crypto.TextMessage('sealed words'), py.device, own)}")
        expect(user.log.get_by_text("encrypted message that could not be decrypted")).to_be_visible(timeout=WAIT_MS)
        expect(user.message("sealed words")).to_have_count(0)
        assert user.errors == []
    finally:
        other.close()
        py.client.close()


def test_offline_and_history_are_decrypted(browser: Browser, daemon: Daemon) -> None:
    """
    An encrypted message to an account that is away is delivered at its next login and opened with the key kept in
    the browser; older encrypted messages fetched as history are opened too.
    """
    frank = keyed_user(browser, daemon, "frank", "frankpw123")
    gail = keyed_user(browser, daemon, "gail", "gailpw1234")
    context = frank.page.context
    try:
        gail.say("/msg frank said while you were here")
        open_private(frank, "gail")
        expect(locked(frank, "said while you were here")).to_have_count(1, timeout=WAIT_MS)
        frank.page.close()
        expect(gail.log.get_by_text("frank quit")).to_be_visible(timeout=WAIT_MS)
        gail.say("said while you were away")
        expect(locked(gail, "said while you were away")).to_have_count(1, timeout=WAIT_MS)

        again = login_again(context, daemon, "frank", "frankpw123")
        open_private(again, "gail")
        away = locked(again, "said while you were away")
        expect(away).to_have_count(1, timeout=WAIT_MS)
        expect(away.locator(".tag", has_text="sent while you were away")).to_have_count(1)
        expect(locked(again, "said while you were here")).to_have_count(1, timeout=WAIT_MS)
        assert again.errors == [] and gail.errors == []
    finally:
        context.close()
        close(gail)


def test_pages_exchange_an_encrypted_file(browser: Browser, daemon: Daemon, tmp_path: Path) -> None:
    """
    A private file between two pages is encrypted before upload: the receiver saves it intact through "Save NAME"
    (fetched, checked and decrypted in the page), the daemon's data directory never holds its bytes, and the
    ciphertext's offer is not shown as a file of its own.
    """
    hana = keyed_user(browser, daemon, "hana")
    ivan = keyed_user(browser, daemon, "ivan")
    try:
        content = b"the plans of the secret garden\n" * 5000  # 155 000 bytes: three chunks
        source = tmp_path / "garden.txt"
        source.write_bytes(content)
        hana.say("/msg ivan a file follows")
        open_private(ivan, "hana")
        expect(locked(ivan, "a file follows")).to_have_count(1, timeout=WAIT_MS)
        hana.page.locator("#file-input").set_input_files(str(source))

        save = ivan.log.get_by_role("button", name="Save garden.txt")
        expect(save).to_be_visible(timeout=WAIT_MS)
        row = ivan.log.locator("li.msg", has=ivan.page.get_by_role("button", name="Save garden.txt"))
        expect(row.get_by_role("img", name="encrypted")).to_have_count(1)
        expect(ivan.log.locator("a.file-link")).to_have_count(0)
        with ivan.page.expect_download(timeout=WAIT_MS) as download:
            save.click()
        saved = tmp_path / "saved.txt"
        download.value.save_as(saved)
        assert download.value.suggested_filename == "garden.txt"
        assert saved.read_bytes() == content
        sizes = [p.stat().st_size for p in Path(daemon.data_dir).rglob("*") if p.is_file()]
        assert crypto.encrypted_size(len(content)) in sizes  # the daemon holds the ciphertext...
        assert b"secret garden" not in stored_bytes(daemon)  # ...and never the plaintext
        assert hana.errors == [] and ivan.errors == []
    finally:
        close(hana)
        close(ivan)


def test_encrypted_download_resumes(browser: Browser, daemon: Daemon, tmp_path: Path) -> None:
    """
    An encrypted file's download that breaks off resumes where it stopped (Range), shows its progress, and the
    file is saved intact.
    """
    kira = keyed_user(browser, daemon, "kira")
    lars = keyed_user(browser, daemon, "lars")
    try:
        content = bytes(range(256)) * 800  # 204 800 bytes: four chunks
        source = tmp_path / "table.bin"
        source.write_bytes(content)
        kira.say("/msg lars a table follows")
        open_private(lars, "kira")
        expect(locked(lars, "a table follows")).to_have_count(1, timeout=WAIT_MS)
        kira.page.locator("#file-input").set_input_files(str(source))
        save = lars.log.get_by_role("button", name="Save table.bin")
        expect(save).to_be_visible(timeout=WAIT_MS)

        ranges: list[str | None] = []

        def break_first(route: Any) -> None:
            ranges.append(route.request.headers.get("range"))
            if len(ranges) > 1:
                route.continue_()
                return
            whole = route.fetch()
            route.fulfill(status=200, headers={"content-type": "application/octet-stream"}, body=whole.body()[:70000])

        lars.page.route("**/files/*", break_first)
        with lars.page.expect_download(timeout=WAIT_MS) as download:
            save.click()
        saved = tmp_path / "saved.bin"
        download.value.save_as(saved)
        assert saved.read_bytes() == content
        assert ranges == [None, "bytes=70000-"]
        assert kira.errors == [] and lars.errors == []
    finally:
        close(kira)
        close(lars)

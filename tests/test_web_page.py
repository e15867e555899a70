"""
The web client (chat/web/static/) in a real browser: Debian's Chromium
driven by Playwright for Python, against a real C{twistd chat --web ...}
process (L{tests.e2e.Daemon}), with raw TCP users (L{tests.e2e.Client}) in
the same rooms (issue 19, "Tests").

The module is skipped, saying why, when Playwright or C{/usr/bin/chromium}
is missing. Browsers are never downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, need_browser  # noqa: F401 (the fixtures come from conftest)
from tests.e2e import Client, Daemon

pytestmark = pytest.mark.slow

WEB_LISTENING = re.compile(r"chat web listening on 127\.0\.0\.1:(\d+)")
"""The log line of the web listener (notes: daemon contract)."""
WAIT_MS = 10_000
"""Bound, in milliseconds, on any wait for the page."""

need_browser("the web page tests")

from playwright.sync_api import Browser, ConsoleMessage, Page, expect  # noqa: E402

FLOOD = ("--flood-burst", "400")
"""The TCP users below send 80 lines at once; the page is not slowed either."""


def web_port(daemon: Daemon) -> int:
    """
    The port of the daemon's C{--web} listener, from its log line.
    """
    line = daemon.wait_for_line(lambda text: WEB_LISTENING.search(text) is not None)
    match = WEB_LISTENING.search(line)
    assert match is not None
    return int(match.group(1))


def free_port() -> int:
    """
    A TCP port free on 127.0.0.1 right now (for a listener that must keep
    its port across a restart).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PageUser:
    """
    One browser page logged in to the chat, and the console errors it
    logged (a CSP violation or an exception is one).
    """

    def __init__(self, page: Page, base: str, nick: str) -> None:
        self.page = page
        self.nick = nick
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.goto(base)
        page.get_by_role("textbox", name="Nick").fill(nick)
        page.get_by_role("button", name="Enter chat").click()
        expect(page.get_by_role("textbox", name="Message")).to_be_visible(timeout=WAIT_MS)
        expect(self.log.locator("li", has_text="You joined #lobby")).to_have_count(1, timeout=WAIT_MS)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    @property
    def log(self) -> Any:
        """The messages, a C{log} role."""
        return self.page.get_by_role("log")

    def say(self, text: str) -> None:
        """Type C{text} in the Message box and press Send."""
        self.page.get_by_role("textbox", name="Message").fill(text)
        self.page.get_by_role("button", name="Send").click()

    def message(self, text: str) -> Any:
        """The message lines holding C{text}."""
        return self.log.locator("li.msg", has_text=text)


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    daemon = Daemon("--web", "tcp:0:interface=127.0.0.1", *FLOOD).start()
    yield daemon
    daemon.stop()


def open_user(browser: Browser, daemon_or_port: Daemon | int, nick: str) -> PageUser:
    """A new browser context with a page logged in as C{nick}."""
    port = daemon_or_port if isinstance(daemon_or_port, int) else web_port(daemon_or_port)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    return PageUser(context.new_page(), f"http://127.0.0.1:{port}/", nick)


def close_user(user: PageUser, allowed: str | None = None) -> None:
    """Close the user's context; its console must show no error (but C{allowed})."""
    errors = [e for e in user.errors if not (allowed and re.search(allowed, e))]
    user.page.context.close()
    assert errors == [], f"the page of {user.nick} logged errors: {errors}"


def test_pages_and_tcp_user_talk(browser: Browser, daemon: Daemon) -> None:
    """Two pages and a raw TCP user in #lobby each see what the others say, and the people list shows all three."""
    alice = open_user(browser, daemon, "alice")
    carol = open_user(browser, daemon, "carol")
    bob = Client.json(daemon.port, "bob")
    try:
        bob.send_line("hello from bob")
        for page in (alice, carol):
            expect(page.message("hello from bob")).to_have_count(1, timeout=WAIT_MS)
        alice.say("hi from alice")
        bob.expect_event("message", {"from": "alice"}, text="hi from alice")
        expect(carol.message("hi from alice")).to_have_count(1, timeout=WAIT_MS)
        carol.say("/me waves")
        bob.expect_event("message", {"from": "carol"}, text="waves", action=True)
        expect(alice.message("waves")).to_contain_text("carol", timeout=WAIT_MS)
        people = alice.page.get_by_role("list", name="People")
        for nick in ("alice", "bob", "carol"):
            expect(people).to_contain_text(nick, timeout=WAIT_MS)
        expect(alice.page.get_by_role("list", name="Rooms")).to_contain_text("lobby")
    finally:
        bob.close()
        close_user(alice)
        close_user(carol)


def test_history_scrolls_back(browser: Browser, daemon: Daemon) -> None:
    """
    Of 80 messages, the page shows the last ones on joining, and the older
    ones, in order and once each, after scrolling to the top.
    """
    dave = Client.json(daemon.port, "dave")
    try:
        dave.join("#scroll")
        for i in range(1, 81):
            dave.send_line(f"line {i:03d}")
        dave.read_events_until(lambda e: e["type"] == "message" and e["text"] == "line 080", timeout=15)
        erin = open_user(browser, daemon, "erin")
        erin.say("/join #scroll")
        expect(erin.message("line 080")).to_have_count(1, timeout=WAIT_MS)
        expect(erin.page.get_by_role("heading", name="#scroll")).to_be_visible()
        wrap = erin.page.locator("#log-wrap")
        for _ in range(10):
            if erin.message("line 001").count():
                break
            wrap.evaluate("element => { element.scrollTop = 0; }")
            erin.page.wait_for_timeout(300)
        expect(erin.message("line 001")).to_have_count(1, timeout=WAIT_MS)
        texts = erin.log.locator("li.msg .text").all_inner_texts()
        assert texts == [f"line {i:03d}" for i in range(1, 81)]
        close_user(erin)
    finally:
        dave.close()


def test_formatting_is_text_not_html(browser: Browser, daemon: Daemon) -> None:
    """
    Markup sent by a TCP user shows literally; only the light formatting
    becomes elements, and links are http(s) only.
    """
    frank = open_user(browser, daemon, "frank")
    mallory = Client.json(daemon.port, "mallory")
    try:
        mallory.send_line('<b>x</b> <img src=x onerror="document.title=1"> *bold* `c` javascript:alert(1)')
        line = frank.message("<b>x</b>")
        expect(line).to_have_count(1, timeout=WAIT_MS)
        expect(line).to_contain_text('<img src=x onerror="document.title=1">')
        assert line.locator("b, img").count() == 0
        assert line.locator("strong").inner_text() == "bold"
        assert line.locator("code").inner_text() == "c"
        assert line.locator("a").count() == 0
        mallory.send_line("see https://example.com/a_b_c.")
        link = frank.message("see https://").locator("a")
        expect(link).to_have_attribute("href", "https://example.com/a_b_c", timeout=WAIT_MS)
    finally:
        mallory.close()
        close_user(frank)


def png(width: int = 4, height: int = 3) -> bytes:
    """A small valid PNG image (red pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


DROP = """([name, data]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name));
    const main = document.getElementById("main");
    for (const type of ["dragenter", "dragover", "drop"]) {
        main.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }
}"""


def download(client: Client, offer_id: int) -> bytes:
    """The bytes of an offer, fetched with C{/download} (json format)."""
    client.send_line(f"/download {offer_id}")
    header = client.expect_event("file", id=offer_id)
    return client.read_exact(header["size"] - header["offset"], timeout=10)


def test_dropped_file_arrives_intact(browser: Browser, daemon: Daemon) -> None:
    """
    Files dropped on the conversation reach a TCP user's /download byte for
    byte, and an image is previewed in the page.
    """
    gina = open_user(browser, daemon, "gina")
    hank = Client.json(daemon.port, "hank")
    try:
        data = os.urandom(300_000)
        gina.page.evaluate(DROP, ["data.bin", base64.b64encode(data).decode("ascii")])
        offer = hank.expect_event("file-offer", name="data.bin", timeout=15)
        assert offer["from"] == "gina" and offer["to"] == "#lobby" and offer["size"] == len(data)
        assert offer["sha256"] == hashlib.sha256(data).hexdigest()
        received = download(hank, offer["id"])
        assert hashlib.sha256(received).hexdigest() == hashlib.sha256(data).hexdigest()
        link = gina.log.locator("a.file-link", has_text="data.bin")
        expect(link).to_have_count(1, timeout=WAIT_MS)
        assert re.fullmatch(rf"/files/{offer['id']}\?token=.+", link.get_attribute("href") or "")

        image = png()
        gina.page.evaluate(DROP, ["red.png", base64.b64encode(image).decode("ascii")])
        offer = hank.expect_event("file-offer", name="red.png", timeout=15)
        assert download(hank, offer["id"]) == image
        preview = gina.log.locator("img[alt='red.png']")
        expect(preview).to_have_count(1, timeout=WAIT_MS)
        gina.page.wait_for_function("img => img.complete && img.naturalWidth === 4", arg=preview.element_handle(),
                                    timeout=WAIT_MS)
    finally:
        hank.close()
        close_user(gina)


def test_page_survives_restart(browser: Browser, tmp_path: Any) -> None:
    """
    Across a daemon restart the page reconnects by itself, joins its rooms
    again, shows every message said while it was away (more than a join's
    history replays) and shows nothing twice.
    """
    port = free_port()
    daemon = Daemon("--web", f"tcp:{port}:interface=127.0.0.1", *FLOOD, data_dir=str(tmp_path / "data")).start()
    user = None
    try:
        user = open_user(browser, port, "ivan")
        user.say("/join #dev")
        expect(user.page.get_by_role("heading", name="#dev")).to_be_visible(timeout=WAIT_MS)
        user.page.get_by_role("list", name="Rooms").get_by_role("button", name="#lobby").click()
        judy = Client.json(daemon.port, "judy")
        judy.send_line("before the restart")
        expect(user.message("before the restart")).to_have_count(1, timeout=WAIT_MS)
        judy.close()
        daemon.halt()
        state = user.page.get_by_role("status")
        expect(state).to_contain_text("Reconnecting", timeout=WAIT_MS)
        user.say("typed while offline")
        daemon.start()
        judy = Client.json(daemon.port, "judy")
        judy.send_line("while the page was away")
        judy.join("#dev")
        for i in range(1, 71):
            judy.send_line(f"gap {i:03d}")
        judy.send_line("/join #lobby")
        judy.ping("said")
        expect(state).to_have_text("Online", timeout=20_000)
        expect(user.message("while the page was away")).to_have_count(1, timeout=WAIT_MS)
        expect(user.message("typed while offline")).to_have_count(1, timeout=WAIT_MS)
        user.page.get_by_role("list", name="Rooms").get_by_role("button", name="#dev").click()
        expect(user.message("gap 001")).to_have_count(1, timeout=WAIT_MS)
        expect(user.message("gap 070")).to_have_count(1, timeout=WAIT_MS)
        assert user.log.locator("li.msg .text").all_inner_texts() == [f"gap {i:03d}" for i in range(1, 71)]
        user.page.get_by_role("list", name="Rooms").get_by_role("button", name="#lobby").click()
        user.say("back again")
        judy.expect_event("message", {"from": "ivan"}, text="back again")
        judy.send_line("after the restart")
        expect(user.message("after the restart")).to_have_count(1, timeout=WAIT_MS)
        expect(user.message("before the restart")).to_have_count(1)
        ids = user.log.locator("li.msg").evaluate_all("nodes => nodes.map(n => Number(n.dataset.id))")
        assert ids == sorted(set(ids)), f"messages out of order or twice: {ids}"
        judy.close()
    finally:
        if user is not None:
            close_user(user, allowed=r"WebSocket connection to .* failed")
        daemon.stop()


def test_rooms_private_conversations_and_keys(browser: Browser, daemon: Daemon) -> None:
    """
    A line typed in a room goes to that room even when another was joined
    last; a person clicked opens their menu, whose Private message opens a private conversation; what arrives
    elsewhere is counted in the sidebar and the title; Up, Tab and Alt+Up work.
    """
    kim = open_user(browser, daemon, "kim")
    leo = Client.json(daemon.port, "leo")
    try:
        page = kim.page
        box = page.get_by_role("textbox", name="Message")
        page.get_by_role("combobox", name="Room to join").fill("kitchen")
        page.get_by_role("button", name="Join", exact=True).click()
        expect(page.get_by_role("heading", name="#kitchen")).to_be_visible(timeout=WAIT_MS)
        leo.join("#kitchen")
        box.focus()
        page.keyboard.press("Alt+ArrowUp")
        expect(page.get_by_role("heading", name="#lobby")).to_be_visible()
        kim.say("said in the lobby")
        assert leo.expect_event("message", {"from": "kim"})["room"] == "#lobby"
        box.press("ArrowUp")
        assert box.input_value() == "said in the lobby"
        box.fill("le")
        box.press("Tab")
        assert box.input_value() == "leo: "
        box.fill("")
        page.get_by_role("list", name="People").get_by_role("button", name="leo").click()
        page.get_by_role("menu", name="leo").get_by_role("menuitem", name="Private message").click()
        expect(page.get_by_role("heading", name="leo · private")).to_be_visible()
        kim.say("psst :wave:")
        assert leo.expect_event("private", {"from": "kim"})["text"] == "psst \N{WAVING HAND SIGN}"
        page.get_by_role("list", name="Rooms").get_by_role("button", name="#lobby").click()
        leo.send_line("/msg kim answer")
        leo.send_line("/join #kitchen")
        leo.send_line("kim: come to the kitchen")
        rooms = page.get_by_role("list", name="Rooms")
        expect(rooms.get_by_role("button", name="leo (private), 1 mention, 1 unread")).to_be_visible(timeout=WAIT_MS)
        expect(rooms.get_by_role("button", name="#kitchen, 1 mention, 1 unread")).to_be_visible(timeout=WAIT_MS)
        expect(page).to_have_title("(2) chat")
        rooms.get_by_role("button", name="#kitchen").click()
        expect(kim.message("come to the kitchen")).to_have_class(re.compile(r"\bmention\b"))
        expect(page).to_have_title("(1) chat")
        box.fill("/join #bad!")
        box.press("Enter")
        expect(kim.log.locator("li.event-error")).to_contain_text("bad-arguments", timeout=WAIT_MS)
    finally:
        leo.close()
        close_user(kim)


MODERATION_CASES = """async () => {
    const { personActions, settingsWords } = await import("/people.js");
    const room = (name, users, settings) => ({
        kind: "room", name, key: name, joined: true, settings,
        users: new Map(users.map(([nick, role]) => [nick.toLowerCase(), { nick, role }])),
    });
    const dev = room("#dev", [["ann", "operator"], ["Bob", "member"], ["cy", "operator"]]);
    const secret = room("#secret", [["ann", "operator"]], { "invite-only": true });
    const open = room("#open", [["ann", "operator"]], { "invite-only": false });
    const model = (me) => ({
        me, conversations: new Map([["#dev", dev], ["#secret", secret], ["#open", open]]),
        isMe: (nick) => nick.toLowerCase() === me.toLowerCase(),
    });
    const show = (me, nick) => personActions(model(me), dev, nick).map((a) => `${a.kind}:${a.label}:${a.line}`);
    return {
        operator: show("ann", "Bob"),
        otherOperator: show("ann", "cy"),
        self: show("ann", "ann"),
        member: show("Bob", "ann"),
        memberSelf: show("Bob", "Bob"),
        words: [
            settingsWords({ room: "#dev", "invite-only": true, moderated: false, "topic-lock": false },
                          { "invite-only": false, moderated: false, "topic-lock": false }),
            settingsWords({ room: "#dev", "invite-only": false, moderated: false, "topic-lock": true },
                          { "invite-only": false, moderated: true, "topic-lock": false }),
            settingsWords({ room: "#dev", "invite-only": true, moderated: true, "topic-lock": false }, null),
            settingsWords({ room: "#dev", "invite-only": false, moderated: false, "topic-lock": false }, null),
        ],
    };
}"""


def test_person_menu_actions(browser: Browser, daemon: Daemon) -> None:
    """
    The page's person menu offers Private message and Verify to everyone, and to an operator of the room the moderation
    commands naming the room (and invitations to the other invite-only rooms they operate); settings read as words.
    """
    ann = open_user(browser, daemon, "ann")
    try:
        cases = ann.page.evaluate(MODERATION_CASES)
        assert cases["operator"] == [
            "message:Private message:", "command:Verify:/verify Bob", "command:Make operator:/op Bob #dev",
            "kick:Kick…:/kick Bob #dev",
            "ban:Ban…:/ban Bob #dev", "command:Mute:/mute Bob #dev", "command:Unmute:/unmute Bob #dev",
            "command:Invite to #secret:/invite Bob #secret",
        ]
        assert cases["otherOperator"][:3] == [
            "message:Private message:", "command:Verify:/verify cy", "command:Remove operator:/deop cy #dev"]
        assert cases["self"] == ["command:Remove operator:/deop ann #dev"]
        assert cases["member"] == ["message:Private message:", "command:Verify:/verify ann"]
        assert cases["memberSelf"] == []
        assert cases["words"] == [
            ["#dev is now invite-only"], ["#dev is now topic-locked", "#dev is no longer moderated"],
            ["#dev is now invite-only", "#dev is now moderated"],
            ["#dev is no longer invite-only, topic-locked or moderated"],
        ]
    finally:
        close_user(ann)


def test_operator_kicks_from_the_page_and_the_page_is_kicked(browser: Browser, daemon: Daemon) -> None:
    """
    An operator's page marks operators, kicks a TCP user through the person's menu with a reason, and shows role
    and settings changes as lines; a page kicked by a TCP operator says so and the room leaves its sidebar.
    """
    opal = open_user(browser, daemon, "opal")
    vic = Client.json(daemon.port, "vic")
    tom = Client.json(daemon.port, "tom")
    try:
        page = opal.page
        page.get_by_role("combobox", name="Room to join").fill("modroom")
        page.get_by_role("button", name="Join", exact=True).click()
        expect(page.get_by_role("heading", name="#modroom")).to_be_visible(timeout=WAIT_MS)
        people = page.get_by_role("list", name="People")
        expect(people.get_by_role("button", name="opal, operator")).to_be_visible(timeout=WAIT_MS)
        vic.send_line("/join #modroom")
        vic.expect_event("join", {"room": "#modroom", "nick": "vic"})
        people.get_by_role("button", name="vic").click()
        menu = page.get_by_role("menu", name="vic")
        expect(menu.get_by_role("menuitem")).to_have_text(
            ["Private message", "Verify", "Make operator", "Kick…", "Ban…", "Mute", "Unmute"])
        menu.get_by_role("menuitem", name="Make operator").click()
        expect(opal.log.locator("li.event-role").first).to_contain_text("You are now an operator of #modroom")
        expect(opal.log.locator("li.event-role").last).to_contain_text("You made vic an operator of #modroom",
                                                                      timeout=WAIT_MS)
        expect(people.get_by_role("button", name="vic, operator")).to_be_visible(timeout=WAIT_MS)
        people.get_by_role("button", name="vic").press("Enter")
        page.get_by_role("menu", name="vic").get_by_role("menuitem", name="Remove operator").press("Enter")
        expect(opal.log.locator("li.event-role").last).to_contain_text("vic is no longer an operator of #modroom",
                                                                      timeout=WAIT_MS)
        people.get_by_role("button", name="vic").click(button="right")
        page.get_by_role("menu", name="vic").get_by_role("menuitem", name="Kick…").click()
        form = page.get_by_role("form", name="Kick vic")
        form.get_by_role("textbox", name="Reason").fill("spam links")
        form.get_by_role("button", name="Kick").click()
        kick = vic.expect_event("kick", {"room": "#modroom", "nick": "vic"})
        assert (kick["by"], kick["reason"]) == ("opal", "spam links")
        expect(opal.log.locator("li.event-kick")).to_contain_text(
            "vic was kicked from #modroom by opal (spam links)", timeout=WAIT_MS)
        expect(people).not_to_contain_text("vic")
        opal.say("/room #modroom moderated on")
        expect(opal.log.locator("li.event-settings")).to_contain_text("#modroom is now moderated", timeout=WAIT_MS)

        tom.send_line("/join #tomsroom")
        tom.expect_event("join", {"room": "#tomsroom", "nick": "tom"})
        page.get_by_role("combobox", name="Room to join").fill("tomsroom")
        page.get_by_role("button", name="Join", exact=True).click()
        tom.expect_event("join", {"room": "#tomsroom", "nick": "opal"})
        rooms = page.get_by_role("list", name="Rooms")
        expect(rooms.get_by_role("button", name="#tomsroom")).to_be_visible(timeout=WAIT_MS)
        tom.send_line("/kick opal #tomsroom enough")
        expect(opal.log.locator("li.event-kick").last).to_contain_text(
            "You were kicked from #tomsroom by tom (enough)", timeout=WAIT_MS)
        expect(rooms.get_by_role("button", name="#tomsroom")).to_have_count(0)
    finally:
        vic.close()
        tom.close()
        close_user(opal)


FORMAT_CASES = """async () => {
    const { tokenize, mentions } = await import("/format.js");
    const show = (text) => tokenize(text).map((t) => `${t.kind}:${t.text}`);
    return {
        plain: show("a*b*c snake_case_name 2*3*4"),
        emphasis: show("*bold* and _it_, (*x*)"),
        code: show("`*not bold*` *b*"),
        urls: show("(see https://e.com/a_(b)) http://x.org/p?q=1, ftp://no"),
        mention: [mentions("hi Kim!", "kim"), mentions("kimberly", "kim"), mentions("@kim:", "kim")],
    };
}"""


def test_format_rules(browser: Browser, daemon: Daemon) -> None:
    """
    The light formatting only takes whole words, never formats code, trims
    URLs' punctuation, and finds mentions by word.
    """
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{web_port(daemon)}/")
        result = page.evaluate(FORMAT_CASES)
    finally:
        context.close()
    assert result["plain"] == ["text:a*b*c snake_case_name 2*3*4"]
    assert result["emphasis"] == ["bold:bold", "text: and ", "italic:it", "text:, (", "bold:x", "text:)"]
    assert result["code"] == ["code:*not bold*", "text: ", "bold:b"]
    assert result["urls"] == [
        "text:(see ", "url:https://e.com/a_(b)", "text:) ", "url:http://x.org/p?q=1", "text:, ftp://no",
    ]
    assert result["mention"] == [True, False, True]


def upgrade(port: int, origin: str) -> str:
    """The status line of a WebSocket handshake on /ws sent with C{Origin: origin}."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    request = (
        "GET /ws HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n"
        "\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode("ascii"))
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode("ascii", "replace")


def test_foreign_origin_refused(daemon: Daemon) -> None:
    """A WebSocket handshake from a foreign Origin gets 403, one from the page's own origin is switched."""
    port = web_port(daemon)
    assert upgrade(port, "http://evil.example").split()[1] == "403"
    assert upgrade(port, f"http://127.0.0.1:{port}").split()[1] == "101"


def test_page_files_are_served_for_the_manifest(daemon: Daemon) -> None:
    """The page's manifest names icons the daemon serves, PNG at 192 and 512 pixels among them, so it installs."""
    import urllib.request

    base = f"http://127.0.0.1:{web_port(daemon)}"
    with urllib.request.urlopen(f"{base}/manifest.webmanifest", timeout=5) as answer:
        manifest = json.load(answer)
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    sizes = set()
    for icon in manifest["icons"]:
        with urllib.request.urlopen(base + icon["src"], timeout=5) as answer:
            body = answer.read()
            assert answer.status == 200 and answer.headers["content-type"].startswith(icon["type"])
        assert body.startswith(b"\x89PNG") if icon["type"] == "image/png" else b"<svg" in body
        sizes.add(icon["sizes"])
    # Chromium offers to install a page with a 192 and a 512 pixel icon.
    assert {"192x192", "512x512"} <= sizes

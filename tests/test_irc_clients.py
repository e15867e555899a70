"""
Real IRC clients against a real C{twistd -n chat --irc ... --web ...}
(issue 22, "Tests"): irssi (in tmux) and WeeChat (headless) join C{#lobby}
and talk with an nc-style line user and, for irssi, the web page in
Debian's Chromium. A missing client, tmux, Playwright or Chromium skips the
test that needs it, saying which and how to install it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM
from tests.e2e import Client, Daemon
from tests.irc_clients import (
    IRC_LISTENING,
    IRSSI,
    WEB_LISTENING,
    WEECHAT,
    Irssi,
    WeeChat,
    listener_port,
    missing,
)

WAIT_MS = 10_000
"""Bound, in milliseconds, on any wait for the page."""


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    """A daemon in memory with line, IRC and web listeners on free loopback ports."""
    daemon = Daemon(
        "--in-memory", "--irc", "tcp:0:interface=127.0.0.1", "--web", "tcp:0:interface=127.0.0.1"
    ).start()
    yield daemon
    daemon.stop()


@pytest.fixture
def chromium(request: pytest.FixtureRequest) -> Any:
    """Debian's Chromium through Playwright (the module's C{browser}), or a loud skip."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"the irssi/web test needs Playwright for Python: {e}")
    if not os.access(CHROMIUM, os.X_OK):  # pragma: no cover - depends on the machine
        pytest.skip(f"the irssi/web test needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    return request.getfixturevalue("browser")


def need(program: str, package: str) -> None:
    """Skip the calling test, saying why, when C{program} (or tmux for irssi) is missing."""
    reason = missing(program, package)
    if reason is not None:  # pragma: no cover - depends on the machine
        pytest.skip(f"real IRC client test skipped because {reason}")


def open_page(browser: Any, port: int, nick: str) -> Any:
    """A page of the web client logged in as C{nick}, once it shows that it joined #lobby."""
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"http://127.0.0.1:{port}/")
    page.get_by_role("textbox", name="Nick").fill(nick)
    page.get_by_role("textbox", name="Nick").press("Enter")
    expect(page.get_by_role("log").locator("li", has_text="You joined #lobby")).to_have_count(1, timeout=WAIT_MS)
    return page


def test_irssi_talks_with_line_user_and_web_page(daemon: Daemon, chromium: Any, tmp_path: Path) -> None:
    """irssi shows #lobby's topic and a line user's and a page's lines; they see its line and /me; a /msg reaches it."""
    need(IRSSI, "irssi")
    from playwright.sync_api import expect

    irssi = Irssi(tmp_path / "irssi", "ivy")
    tina = Client.text(daemon.port, "tina")
    page = None
    try:
        tina.send_line("/topic #lobby weekly chat")
        tina.read_lines_until(lambda line: "weekly chat" in line)
        irssi.start(listener_port(daemon, IRC_LISTENING))
        irssi.type("/join #lobby")
        irssi.wait_for(r"ivy \[ivy@chat\] has joined #lobby")
        irssi.wait_for(r"Topic for #lobby: weekly chat$")
        tina.read_lines_until(lambda line: "ivy joined #lobby" in line)
        page = open_page(chromium, listener_port(daemon, WEB_LISTENING), "wanda")
        irssi.wait_for(r"wanda \[wanda@chat\] has joined #lobby")

        tina.send_line("hello from tina")
        irssi.wait_for(r"^<.tina> hello from tina$")
        page.get_by_role("textbox", name="Message").fill("hello from the web")
        page.get_by_role("textbox", name="Message").press("Enter")
        irssi.wait_for(r"^<.wanda> hello from the web$")

        irssi.type("hi from irssi")
        tina.read_lines_until(lambda line: line.endswith("#lobby <ivy> hi from irssi"))
        expect(page.get_by_role("log").locator("li.msg", has_text="hi from irssi")).to_contain_text(
            "ivy", timeout=WAIT_MS
        )
        irssi.type("/me waves")
        tina.read_lines_until(lambda line: line.endswith("#lobby * ivy waves"))
        tina.send_line("after the wave")
        irssi.wait_for(r"^<.tina> after the wave$")
        assert len(re.findall(r"(?m)^<.ivy> hi from irssi$", irssi.screen())) == 1, irssi.screen()
        assert len(re.findall(r"(?m)^ \* ivy waves$", irssi.screen())) == 1, irssi.screen()

        tina.send_line("/msg ivy psst ivy")
        irssi.wait_for_raw(":tina!tina@chat PRIVMSG ivy :psst ivy")
        irssi.type("/window goto tina")
        irssi.wait_for(r"^<tina> psst ivy$")
        assert "PRIVMSG #lobby :\x01ACTION waves\x01" in irssi.raw(), irssi.raw()
    finally:
        irssi.stop()
        tina.close()
        if page is not None:
            page.context.close()
    daemon.assert_clean()


def test_irssi_join_gets_topic_before_names(daemon: Daemon, tmp_path: Path) -> None:
    """Joining a channel with a topic, irssi gets the topic (332) before the names (353, 366), as Modern IRC says."""
    need(IRSSI, "irssi")
    irssi = Irssi(tmp_path / "irssi", "ivy")
    tina = Client.text(daemon.port, "tina")
    try:
        tina.send_line("/topic #lobby weekly chat")
        tina.read_lines_until(lambda line: "weekly chat" in line)
        irssi.start(listener_port(daemon, IRC_LISTENING))
        irssi.type("/join #lobby")
        irssi.wait_for_raw(" 366 ivy #lobby ")
        irssi.wait_for(r"Topic for #lobby: weekly chat$")
        received = [line for line in irssi.raw().splitlines() if line.startswith(">> ")]
        burst = [line.split()[2] for line in received if re.match(r">> :chat (332|353|366) ivy (= )?#lobby ", line)]
        assert burst == ["332", "353", "366"], irssi.raw()
    finally:
        irssi.stop()
        tina.close()


@pytest.fixture
def weechat(tmp_path: Path) -> Iterator[WeeChat]:
    """A headless WeeChat in a temporary directory, quit at the end (or a loud skip when missing)."""
    need(WEECHAT, "weechat-headless")
    client = WeeChat(tmp_path / "weechat", "wendy")
    yield client
    client.stop()


def test_weechat_negotiates_caps_and_talks_with_line_user(daemon: Daemon, weechat: WeeChat) -> None:
    """WeeChat enables server-time and message-tags, talks with a line user in #lobby, and shows its own line once."""
    tina = Client.text(daemon.port, "tina")
    try:
        weechat.start(listener_port(daemon, IRC_LISTENING))
        offered = weechat.wait_for("server.chat", r"client capability, server supports: ")
        assert "echo-message" in offered.split("supports: ", 1)[1].split(), offered
        enabled = weechat.wait_for("server.chat", r"client capability, enabled: ")
        caps = set(enabled.split("enabled: ", 1)[1].split())
        # WeeChat 3.8 (Debian bookworm) takes every capability it knows and does not know echo-message:
        # it shows its own lines itself, so "once" below checks that the daemon sends them back only on request.
        assert {"server-time", "message-tags", "away-notify", "multi-prefix", "userhost-in-names"} <= caps, enabled
        weechat.wait_for("chat.#lobby", r"\twendy (\(wendy_on_weechat\) )?\(wendy@chat\) has joined #lobby$")
        tina.read_lines_until(lambda line: "wendy joined #lobby" in line)

        tina.send_line("hello from tina")
        weechat.wait_for("chat.#lobby", r"\t@?tina\thello from tina$")
        weechat.send("chat.#lobby", "hi from weechat")
        tina.read_lines_until(lambda line: line.endswith("#lobby <wendy> hi from weechat"))
        weechat.send("chat.#lobby", "/me waves")
        tina.read_lines_until(lambda line: line.endswith("#lobby * wendy waves"))
        tina.send_line("after the wave")
        weechat.wait_for("chat.#lobby", r"\t@?tina\tafter the wave$")
        lobby = weechat.log("chat.#lobby")
        assert len(re.findall(r"(?m)\t@?wendy\thi from weechat$", lobby)) == 1, lobby
        assert len(re.findall(r"(?m)\t \*\twendy waves$", lobby)) == 1, lobby

        tina.send_line("/msg wendy psst wendy")
        weechat.wait_for("chat.tina", r"\ttina\tpsst wendy$")
    finally:
        tina.close()
    weechat.stop()
    daemon.assert_clean()

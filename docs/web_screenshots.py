"""
Screenshots of the web client for the docs: a real daemon (C{--in-memory
--web tcp:0}), three people on raw TCP, and the page in Debian's Chromium
driven by Playwright, at desktop (1280x800) and phone (390x844) sizes, in
the light and the dark theme.

    python docs/web_screenshots.py [--output DIR]

writes C{web-client-desktop-light.png}, C{web-client-desktop-dark.png},
C{web-client-phone-light.png} and C{web-client-phone-dark.png} (into
C{docs/} by default). C{--icons} instead renders the page's C{icon.svg} as
the PNG icons its manifest lists (C{icon-192.png}, C{icon-512.png}, in
C{chat/web/static/}). Needs C{/usr/bin/chromium} (Debian: chromium,
fonts-noto-color-emoji) and Playwright for Python; no browser is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.e2e import Client, Daemon  # noqa: E402
from tests.test_web_page import DROP, web_port  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}

CHART = """() => {
    const canvas = document.createElement("canvas");
    canvas.width = 320; canvas.height = 180;
    const g = canvas.getContext("2d");
    g.fillStyle = "#ffffff"; g.fillRect(0, 0, 320, 180);
    [62, 88, 71, 120, 104, 150].forEach((h, i) => {
        g.fillStyle = i === 5 ? "#2f6fde" : "#9bb8ee";
        g.fillRect(24 + i * 48, 160 - h, 32, h);
    });
    g.fillStyle = "#444"; g.fillRect(16, 160, 288, 2);
    return canvas.toDataURL("image/png").split(",")[1];
}"""
"""Draws a small bar chart in the page and gives it as base64 PNG: the image the screenshots offer."""


def converse(page: Page, nick: str, people: dict[str, Client], chart: str, complete: bool) -> None:
    """
    Log the page in as C{nick} and hold a short conversation around it;
    with C{complete}, leave the emoji completion open in the input.
    """
    page.get_by_role("textbox", name="Nick").fill(nick)
    page.get_by_role("button", name="Enter chat").click()
    message = page.get_by_role("textbox", name="Message")
    message.wait_for()
    bob, carol = people["bob"], people["carol"]
    bob.send_line("here are this week's numbers")
    page.evaluate(DROP, ["chart.png", chart])
    time.sleep(0.5)
    bob.send_line(f"morning {nick}! the *new* build is up, `make test` passes :)")
    carol.send_line("/me brings coffee ☕")
    message.fill("great, trying it now :rocket:")
    page.get_by_role("button", name="Send").click()
    carol.send_line("the release notes: https://example.org/notes _draft_")
    bob.send_line(f"/msg {nick} lunch at noon?")
    time.sleep(1.0)
    message.fill("thanks :thu" if complete else "see you at the demo")
    time.sleep(0.4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE, help="directory of the PNG files [docs/]")
    parser.add_argument("--icons", action="store_true", help="render the manifest's PNG icons from icon.svg")
    args = parser.parse_args()
    if args.icons:
        render_icons()
        return
    for scheme in ("light", "dark"):
        for size, (width, height) in SIZES.items():
            path = args.output / f"web-client-{size}-{scheme}.png"
            shoot(path, scheme, width, height, complete=(size, scheme) == ("desktop", "light"))
            print(path)


def render_icons() -> None:
    """
    Render C{icon.svg} as C{icon-192.png} and C{icon-512.png}, beside it.
    """
    static = HERE.parent / "chat" / "web" / "static"
    svg = (static / "icon.svg").read_text()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for size in (192, 512):
            page = browser.new_page(viewport={"width": size, "height": size})
            page.set_content(
                f"<body style='margin:0'><img src='data:image/svg+xml;utf8,{svg.replace(chr(35), '%23')}'"
                f" width={size} height={size}></body>"
            )
            path = static / f"icon-{size}.png"
            page.locator("img").screenshot(path=str(path), omit_background=True)
            print(path)
        browser.close()


def shoot(path: Path, scheme: str, width: int, height: int, complete: bool) -> None:
    """
    One screenshot, of a daemon of its own, so that each shows the same conversation.
    """
    daemon = Daemon("--in-memory", "--web", "tcp:0:interface=127.0.0.1").start()
    try:
        web = f"http://127.0.0.1:{web_port(daemon)}/"
        people = {nick: Client.json(daemon.port, nick) for nick in ("bob", "carol", "dave")}
        people["carol"].send_line("/status in a meeting")
        people["dave"].send_line("/status away")
        people["bob"].send_line("/topic Friday release — notes at https://example.org/notes")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            phone = width < 600
            context = browser.new_context(
                viewport={"width": width, "height": height}, color_scheme=scheme, is_mobile=phone, has_touch=phone,
            )
            page = context.new_page()
            page.goto(web)
            converse(page, "alice", people, page.evaluate(CHART), complete)
            page.screenshot(path=str(path))
            browser.close()
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()

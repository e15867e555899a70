"""
End to end between the two kinds of client (issue 21, "Tests": the same
between a stdio client and a browser page): alice runs C{chat-client} on a
pseudo-terminal (L{tests.test_client_stdio_e2e.Terminal}, config and data
folders of her own), connected through a capturing relay
(L{tests.test_client_e2e_crypto.Capture}); bob is a page in Debian's
Chromium driven by Playwright on C{http://127.0.0.1} (a secure context),
both against one real C{twistd -n chat --web ...}. Private messages both
ways are shown with the lock and are in neither the daemon's files nor the
capture; a private file each way is saved intact by the other side.

The module is skipped, saying why, when Playwright or C{/usr/bin/chromium}
is missing (by the modules it imports). Browsers are never downloaded.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from chat.client import crypto, keystore
from chat.client.present import LOCK
from tests.e2e import Client, Daemon
from tests.test_client_e2e_crypto import Capture, files_holding
from tests.test_client_stdio_e2e import Terminal

pytestmark = pytest.mark.slow

try:
    from playwright.sync_api import Browser, expect
except ImportError as e:  # pragma: no cover - depends on the machine
    pytest.skip(f"the stdio/page e2e tests need Playwright for Python: {e}", allow_module_level=True)

# Skips this module, saying why, when Chromium is missing; the daemon fixture is shared by import, not copied
# (playwright and browser come from tests/conftest.py).
from tests.test_web_e2e_page import (  # noqa: E402,F401
    close,
    daemon,
    keyed_user,
    locked,
    open_private,
    stored_envelopes,
)
from tests.test_web_page import WAIT_MS  # noqa: E402

TIMEOUT = 15.0


def alice_terminal(capture: Capture, home: Path) -> Terminal:
    """alice's C{chat-client}, with folders of her own under C{home}, connected through C{capture}."""
    terminal = Terminal("--port", str(capture.port), "alice", cwd=str(home), data=str(home / "data"))
    terminal.wait_for("You are alice.")
    return terminal


def wait_published(server: Daemon, home: Path, nick: str) -> None:
    """Wait (asking as a telnet user) until the daemon lists the device kept under C{home} among C{nick}'s keys."""
    [path] = (home / "data" / "config").rglob(keystore.DEVICE_FILE)
    device = keystore.load_device(path)
    observer = Client(server.port)
    try:
        observer.send_line("/nick watcher")
        observer.read_lines_until(lambda line: "watcher" in line)
        deadline = time.monotonic() + TIMEOUT
        while True:
            observer.send_line(f"/keys {nick}")
            if any(device.device_id in line for line in observer.ping(f"k{time.monotonic()}", json_mode=False)):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{nick}'s key is not published")
            time.sleep(0.1)
    finally:
        observer.sock.close()


def test_stdio_client_and_page_exchange_messages_and_files(
    browser: Browser, daemon: Daemon, tmp_path: Path,  # noqa: F811
) -> None:
    """
    A stdio client and a page exchange encrypted private messages and files: each side shows the other's text with
    the lock, saves the other's file intact, and neither the daemon's files nor the bytes between the stdio client
    and the daemon hold the texts or the files' bytes.
    """
    capture = Capture(daemon.port)
    alice = alice_terminal(capture, tmp_path)
    bob = keyed_user(browser, daemon, "bob")
    try:
        wait_published(daemon, tmp_path, "alice")

        alice.type("/msg bob the eagle lands at noon")
        alice.wait_for(f"{LOCK} the eagle lands at noon")
        open_private(bob, "alice")
        expect(locked(bob, "the eagle lands at noon")).to_have_count(1, timeout=WAIT_MS)
        expect(bob.message("the eagle lands at noon").locator(".not-encrypted")).to_have_count(0)
        bob.say("copy that, over")
        expect(locked(bob, "copy that, over")).to_have_count(1, timeout=WAIT_MS)
        alice.wait_for(f"{LOCK} copy that, over")
        assert len(stored_envelopes(daemon)) >= 2  # the daemon stored both messages, sealed
        for text in (b"eagle lands", b"copy that"):
            assert files_holding(daemon.data_dir, text) == []
            assert not capture.holds(text)

        payload = os.urandom(150 * 1024 + 7)  # three chunks, the last one short
        (tmp_path / "plans.bin").write_bytes(payload)
        alice.type(f"/send bob {tmp_path / 'plans.bin'}")
        alice.wait_for("Sent plans.bin to bob, end-to-end encrypted (offer ")
        save = bob.log.get_by_role("button", name="Save plans.bin")
        expect(save).to_be_visible(timeout=WAIT_MS)
        row = bob.log.locator("li.msg", has=bob.page.get_by_role("button", name="Save plans.bin"))
        expect(row.get_by_role("img", name="encrypted")).to_have_count(1)
        with bob.page.expect_download(timeout=WAIT_MS) as download:
            save.click()
        saved = tmp_path / "saved-by-page.bin"
        download.value.save_as(saved)
        assert download.value.suggested_filename == "plans.bin"
        assert saved.read_bytes() == payload

        content = b"the plans of the secret garden\n" * 5000  # 155 000 bytes: three chunks
        (tmp_path / "garden.txt").write_bytes(content)
        bob.page.locator("#file-input").set_input_files(str(tmp_path / "garden.txt"))
        offer = alice.wait_for("encrypted: /get ")
        offer += alice.wait_for(" to download it")
        match = re.search(r"offers garden\.txt \(151\.4 KiB\), encrypted: /get (\d+) to download it", offer)
        assert match is not None, offer
        alice.type(f"/get {match.group(1)}")
        downloaded = tmp_path / "Downloads" / "chat" / "garden.txt"
        alice.wait_for(f"Saved {downloaded} (decrypted, checked).")
        assert downloaded.read_bytes() == content

        sizes = [p.stat().st_size for p in Path(daemon.data_dir).rglob("*") if p.is_file()]
        assert crypto.encrypted_size(len(content)) in sizes  # the daemon holds the ciphertexts...
        assert crypto.encrypted_size(len(payload)) in sizes
        for piece in (payload[:4096], payload[100000:104096], payload[-4096:], b"secret garden"):
            assert files_holding(daemon.data_dir, piece) == []  # ...and never the plaintexts
            assert not capture.holds(piece)
        for name in (b"plans.bin", b"garden.txt"):
            assert files_holding(daemon.data_dir, name) == []
            assert not capture.holds(name)
        # The capture sees the stdio client's traffic: the encrypted file went through it.
        assert capture.holds(b"CHATE2E1")
        assert bob.errors == []
    finally:
        alice.close()
        close(bob)
        capture.close()

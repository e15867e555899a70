"""
End to end: two C{chat-client} processes (alice and bob, each with config
and data folders of their own, hence a device of their own) and a telnet
user (carol) against a real C{twistd -n chat}: private messages between
the two clients are end-to-end encrypted (the receiver shows the text with
the lock; the daemon's files never hold it), a message to carol goes in
clear text and alice is told, and a replaced key of bob warns alice and
holds her message back until C{/trust bob}.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from twisted.trial.unittest import TestCase

from chat.client import keystore
from chat.client.present import LOCK
from tests.e2e import Client, Daemon
from tests.test_client_stdio_e2e import Terminal

TIMEOUT = 15.0


def files_holding(directory: str, needle: bytes) -> list[str]:
    """The files under C{directory} (the daemon's database, its -wal, spool...) whose bytes contain C{needle}."""
    found = []
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                if needle in f.read():
                    found.append(path)
    return found


class Capture:
    """
    A TCP relay on 127.0.0.1 in front of the daemon that records every byte
    passing between its clients and the daemon, both ways: what an observer
    of the network sees of connections without TLS.
    """

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.data = bytearray()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                chunk = source.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            with self.lock:
                self.data += chunk
            try:
                sink.sendall(chunk)
            except OSError:
                break
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def holds(self, needle: bytes) -> bool:
        """Whether the bytes seen so far contain C{needle}."""
        with self.lock:
            return needle in self.data

    def close(self) -> None:
        self.listener.close()


@pytest.mark.slow
class EncryptedPrivateMessageTests(TestCase):
    def setUp(self) -> None:
        self.daemon = Daemon().start()
        self.addCleanup(self.daemon.stop)
        directory = tempfile.TemporaryDirectory(prefix="chat-client-e2e-crypto-")
        self.addCleanup(directory.cleanup)
        self.dir = directory.name
        self.carol = Client(self.daemon.port)
        self.addCleanup(self.carol.sock.close)
        self.carol.send_line("/nick carol")
        self.carol.read_lines_until(lambda line: "carol" in line)
        self.capture = Capture(self.daemon.port)
        self.addCleanup(self.capture.close)

    def terminal(self, nick: str) -> Terminal:
        """The stdio client of C{nick}, connected through the capturing relay."""
        terminal = Terminal("--port", str(self.capture.port), nick, cwd=self.dir, data=self.data(nick))
        self.addCleanup(terminal.close)
        terminal.wait_for(f"You are {nick}.")
        return terminal

    def data(self, nick: str) -> str:
        return os.path.join(self.dir, nick)

    def device_file(self, nick: str) -> Path:
        [path] = Path(self.data(nick), "config").rglob(keystore.DEVICE_FILE)
        return path

    def wait_published(self, nick: str) -> None:
        """Wait (asking as carol) until the daemon lists the device in C{nick}'s device file among their keys."""
        device = keystore.load_device(self.device_file(nick))
        deadline = time.monotonic() + TIMEOUT
        while True:
            self.carol.send_line(f"/keys {nick}")
            if any(device.device_id in line for line in self.carol.ping(f"k{time.monotonic()}", json_mode=False)):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{nick}'s key is not published")
            time.sleep(0.1)

    def test_private_messages_encrypted_clear_and_key_change(self) -> None:
        """
        alice's message reaches bob with the lock and is in none of the
        daemon's files nor in the bytes between the clients and the daemon,
        nor is the file she sends him, which he saves intact; carol (telnet) gets hers in clear text, alice being
        told; after bob's device is replaced alice is warned and nothing is
        sent until /trust bob.
        """
        alice = self.terminal("alice")
        bob = self.terminal("bob")
        self.wait_published("bob")
        self.wait_published("alice")

        alice.type("/msg bob the eagle lands at noon")
        bob.wait_for(f"{LOCK} the eagle lands at noon")
        alice.wait_for(f"{LOCK} the eagle lands at noon")
        bob.type("/msg alice copy that, over")
        alice.wait_for(f"{LOCK} copy that, over")
        self.assertEqual(files_holding(self.daemon.data_dir, b"eagle lands"), [])
        self.assertEqual(files_holding(self.daemon.data_dir, b"copy that"), [])
        self.assertFalse(self.capture.holds(b"eagle lands"))
        self.assertFalse(self.capture.holds(b"copy that"))

        payload = os.urandom(200 * 1024 + 5)
        original = Path(self.dir, "plans.bin")
        original.write_bytes(payload)
        alice.type(f"/send bob {original}")
        alice.wait_for("Sent plans.bin to bob, end-to-end encrypted (offer ")
        offer = bob.wait_for("encrypted: /get ")
        offer += bob.wait_for(" to download it")
        match = re.search(r"offers plans\.bin \(200\.0 KiB\), encrypted: /get (\d+) to download it", offer)
        assert match is not None, offer
        bob.type(f"/get {match.group(1)}")
        saved = Path(self.dir, "Downloads", "chat", "plans.bin")
        bob.wait_for(f"Saved {saved} (decrypted, checked).")
        self.assertEqual(saved.read_bytes(), payload)
        for piece in (payload[:4096], payload[100000:104096], payload[-4096:]):
            self.assertEqual(files_holding(self.daemon.data_dir, piece), [])
            self.assertFalse(self.capture.holds(piece))
        self.assertEqual(files_holding(self.daemon.data_dir, b"plans.bin"), [])
        self.assertFalse(self.capture.holds(b"plans.bin"))

        alice.type("/msg carol plain words here")
        alice.wait_for("not encrypted: carol's client has no key.")
        self.carol.read_lines_until(lambda line: "plain words here" in line)
        # The checks above can fail: a message in clear text is in the daemon's files and on the wire.
        self.assertNotEqual(files_holding(self.daemon.data_dir, b"plain words here"), [])
        self.assertTrue(self.capture.holds(b"plain words here"))

        alice.type("/verify bob")
        alice.wait_for("(accepted, not verified)")

        bob.process.terminate()
        bob.process.wait(5)
        self.device_file("bob").unlink()
        bob = self.terminal("bob")
        self.wait_published("bob")
        alice.type("/msg bob after the change")
        alice.wait_for("WARNING: the encryption keys of bob changed")
        alice.wait_for("Not sent to bob")
        alice.type("/trust bob")
        alice.wait_for("Trusted bob")
        alice.type("/msg bob after the trust")
        bob.wait_for(f"{LOCK} after the trust")
        self.assertNotIn("after the change", bob.screen)
        self.assertEqual(files_holding(self.daemon.data_dir, b"after the"), [])
        self.assertFalse(self.capture.holds(b"after the"))

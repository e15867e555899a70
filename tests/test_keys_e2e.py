"""
End-to-end test of the daemon's side of PROTOCOL.md section 11 against a
real C{twistd -n chat} on loopback: two JSON users with accounts publish
keys of the shared test vectors, C{/keys} answers with the device ids and
fingerprints the clients' generator computed, and C{/emsg} envelopes are
delivered online and, to an account that is away, at its next login. The
database holds the envelopes as sent and none of their plaintext, which the
test never sent: the daemon neither opens nor invents text.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from chat import schema
from tests.e2e import Client, Daemon

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "e2e-v1.json").read_text("ascii"))


class EncryptedPrivateEndToEndTests(SynchronousTestCase):
    """
    One daemon with its database in its data directory.
    """

    def user(self, daemon: Daemon, nick: str, password: str) -> Client:
        """
        A JSON client registered as C{nick} with a new account.
        """
        client = Client.json(daemon.port, nick)
        self.addCleanup(client.close)
        client.send_line(f"/register {password}")
        client.expect_event("info")
        return client

    def test_keys_and_envelopes(self) -> None:
        """
        Keys are published and listed; envelopes arrive online and offline unchanged, and only they are stored.
        """
        daemon = Daemon()
        self.addCleanup(daemon.stop)
        daemon.start()
        alice = self.user(daemon, "alice", "alice-secret-1")
        bob = self.user(daemon, "bob", "bob-secret-1")
        devices = VECTORS["devices"]
        for client, name in ((alice, "alice-1"), (alice, "alice-2"), (bob, "bob-1")):
            client.send_line(f"/key publish {devices[name]['bundle']}")
            info = client.expect_event("info")
            self.assertIn(devices[name]["device_id"], info["text"])
        bob.send_line("/keys alice")
        listed = bob.expect_event("keys")
        self.assertEqual((listed["nick"], listed["account"]), ("alice", True))
        self.assertEqual(
            [(k["device"], k["key"], k["fingerprint"]) for k in listed["keys"]],
            [
                (devices[n]["device_id"], devices[n]["bundle"], devices[n]["fingerprint"])
                for n in ("alice-1", "alice-2")
            ],
        )

        online, offline = (vector["envelope"] for vector in VECTORS["envelopes"][:2])
        bob.send_line(f"/emsg alice {online}")
        for client in (alice, bob):
            got = client.expect_event("private", e2e=online)
            self.assertEqual((got["from"], got["to"], got["text"], got["offline"]), ("bob", "alice", "", False))

        alice.send_line("/quit")
        alice.read_until_closed()
        bob.send_line(f"/emsg alice {offline}")
        bob.expect_event("info")
        again = Client.json_connect(daemon.port)
        self.addCleanup(again.close)
        again.send_line("/login alice alice-secret-1")
        got = again.expect_event("private", e2e=offline)
        self.assertEqual((got["from"], got["text"], got["offline"]), ("bob", "", True))
        again.send_line("/keys alice")
        self.assertEqual(len(again.expect_event("keys")["keys"]), 2)

        path = schema.path_in(daemon.data_dir)
        with closing(sqlite3.connect(path)) as db:
            self.assertEqual(
                db.execute("SELECT text, e2e FROM private ORDER BY id").fetchall(), [("", online), ("", offline)]
            )
        stored = b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if os.path.exists(p))
        self.assertIn(online.encode(), stored)
        for vector in VECTORS["envelopes"][:2]:
            self.assertNotIn(vector["plaintext"]["text"].encode("utf-8"), stored)

"""
Tests for end-to-end encryption over the line front end (PROTOCOL.md
section 11): C{/key publish}, C{/key remove}, C{/keys} and C{/emsg}, what
each connection is sent in json and text, offline delivery and private
history of envelopes, over L{StringTransport} with a L{Clock}.
"""

from __future__ import annotations

import base64

from chat import commands, keys
from chat.codec import rfc3339
from chat.domain import utc
from tests.support import START, chunked
from tests.test_protocol_accounts import AccountsTestCase

BUNDLE = bytes(range(64))
KEY = base64.b64encode(BUNDLE).decode()
DEVICE = keys.device_id(BUNDLE)
FINGERPRINT = keys.fingerprint(BUNDLE)
ENVELOPE = "eyJjIjoiY2lwaGVydGV4dCJ9_-x"
ADDED = rfc3339(utc(START))


class KeyCommandTests(AccountsTestCase):
    """
    alice logged in (json), bob a guest (json).
    """

    def setUp(self) -> None:
        super().setUp()
        self.create_account("alice")
        self.alice = self.login_user("alice", json=True)
        self.bob = self.json_user("bob")
        self.alice.take()

    def test_publish_then_keys(self) -> None:
        """
        /key publish (fed a byte at a time) is answered with info; /keys gives the key, its device and fingerprint.
        """
        for piece in chunked(f"/key publish {KEY}\n".encode(), 1):
            self.alice.send(piece)
        self.assertEqual(self.alice.take_json(), [{
            "type": "info", "text": f"Your key is published: device {DEVICE}, fingerprint {FINGERPRINT}",
        }])
        self.bob.line("/keys ALICE")
        self.assertEqual(self.bob.take_json(), [{
            "type": "keys", "nick": "alice", "account": True,
            "keys": [{"device": DEVICE, "key": KEY, "fingerprint": FINGERPRINT, "added": ADDED}],
        }])
        self.bob.line("/keys bob")
        self.assertEqual(self.bob.take_json(), [{"type": "keys", "nick": "bob", "account": False, "keys": []}])

    def test_bad_keys(self) -> None:
        """
        A key that is not base64 of 64 bytes, or a /key without a known word, is bad-arguments.
        """
        for line in (f"/key publish {KEY[:-4]}", "/key publish", f"/key send {KEY}", f"/key publish {KEY} {KEY}"):
            self.alice.line(line)
            [error] = self.alice.take_json()
            self.assertEqual(error["code"], "bad-arguments", line)
        self.bob.line("/keys alice")
        self.assertEqual(self.bob.take_json()[0]["keys"], [])

    def test_remove(self) -> None:
        """
        /key remove DEVICE forgets one's own key.
        """
        self.alice.line(f"/key publish {KEY}")
        self.alice.line(f"/key remove {DEVICE}")
        self.assertEqual(self.alice.take_json()[1], {"type": "info", "text": f"The key of device {DEVICE} is removed"})
        self.assertEqual(self.server.store.device_keys(), {})

    def test_keys_unknown_nick(self) -> None:
        """
        /keys of a nick nobody has is no-such-nick.
        """
        self.bob.line("/keys nobody")
        [error] = self.bob.take_json()
        self.assertEqual(error["code"], "no-such-nick")

    def test_emsg_relayed(self) -> None:
        """
        /emsg goes to the recipient and back to the sender as private with e2e and empty text.
        """
        self.bob.line(f"/emsg alice {ENVELOPE}")
        expected = {
            "type": "private", "id": 1, "ts": ADDED, "from": "bob", "to": "alice", "text": "",
            "action": False, "offline": False, "e2e": ENVELOPE,
        }
        self.assertEqual(self.bob.take_json(), [expected])
        self.assertEqual(self.alice.take_json(), [expected])

    def test_emsg_refused(self) -> None:
        """
        An envelope with other characters than base64url, or a missing one, is bad-arguments and sends nothing.
        """
        for line in ("/emsg alice abc=", "/emsg alice ab+c/", "/emsg alice", f"/emsg alice {ENVELOPE} more"):
            self.bob.line(line)
            [error] = self.bob.take_json()
            self.assertEqual(error["code"], "bad-arguments", line)
        self.assertEqual(self.alice.take(), b"")

    def test_emsg_longer_than_a_line(self) -> None:
        """
        An envelope longer than the line limit (possible from the web socket) is bad-arguments.
        """
        [session] = [s for s in self.server.sessions.values() if s.user is not None and s.user.nick == "bob"]
        self.server.execute(session, commands.Emsg("alice", "A" * (self.server.settings.max_line + 1)))
        self.clock.advance(0)
        [error] = self.bob.take_json()
        self.assertEqual(error["code"], "bad-arguments")
        self.assertEqual(self.alice.take(), b"")

    def test_offline_and_history(self) -> None:
        """
        An envelope to an away account waits, comes at its next login unchanged, and is in private history.
        """
        self.alice.lose()
        self.bob.take()
        self.bob.line(f"/emsg alice {ENVELOPE}")
        self.assertEqual([e["type"] for e in self.bob.take_json()], ["private", "info"])
        alice = self.connect()
        alice.line("/format json")
        alice.take()
        alice.line("/login alice password1")
        waiting = [e for e in alice.take_json() if e["type"] == "private"]
        self.assertEqual(
            [(e["from"], e["text"], e["offline"], e["e2e"]) for e in waiting], [("bob", "", True, ENVELOPE)]
        )
        alice.line("/history bob")
        [history] = alice.take_json()
        self.assertEqual([(m["text"], m["e2e"]) for m in history["messages"]], [("", ENVELOPE)])


class KeyTextTests(AccountsTestCase):
    """
    The text format of keys and envelopes.
    """

    def test_keys_and_envelope_in_text(self) -> None:
        """
        /keys lists device, fingerprint and time; an envelope shows as an encrypted message, not as text.
        """
        alice = self.text_user("alice")
        bob = self.text_user("bob")
        alice.take()
        alice.line(f"/key publish {KEY}")
        alice.take()
        bob.line("/keys alice")
        self.assertEqual(
            bob.take(),
            b"* Encryption keys of alice (guest): 1 device\r\n"
            + f"*   device {DEVICE}, fingerprint {FINGERPRINT}, added 2025-11-21 14:02 UTC\r\n".encode(),
        )
        bob.line(f"/emsg alice {ENVELOPE}")
        self.assertEqual(
            alice.take(),
            b"[14:02] [private bob -> alice] (end-to-end encrypted: only a chat client with a key of the recipient"
            b" can read it)\r\n",
        )

    def test_help(self) -> None:
        """
        /help names the three commands with their usage.
        """
        alice = self.text_user("alice")
        alice.line("/help")
        listing = alice.take()
        for usage in (b"/emsg NICK ENVELOPE", b"/key publish KEY | /key remove DEVICE", b"/keys NICK"):
            self.assertIn(usage, listing)
        alice.line("/help keys")
        self.assertEqual(
            alice.take(), b"*** /keys NICK: lists the public keys NICK published, with their fingerprints\r\n"
        )


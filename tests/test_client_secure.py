"""
Tests for end-to-end encrypted private messages in the client core
(L{chat.client.secure.Secure} through L{chat.client.service.ChatClient}):
publishing the device, sealing C{/msg}, trust on first use and the change
warning, C{/verify} and C{/trust}, opening received messages and private
history, and how the presenter shows them, with the daemon played by
writing its json lines into the client's protocol.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from chat import events
from chat.client import crypto
from chat.client.keystore import ContactStore
from chat.client.model import ENCRYPTED, UNREADABLE, OpenedPrivate
from chat.client.present import LOCK, WINDOW, Presenter
from chat.client.secure import OFFERED_NAME, Secure, decrypt_file, encrypt_file
from chat.client.service import ChatClient
from tests.test_client_service import TS, ClientTestCase

ALICE_DEVICE = crypto.Device.generate()
BOB_DEVICE = crypto.Device.generate()


def keys(nick: str, *devices: crypto.Device) -> events.Keys:
    return events.Keys(nick, True, tuple(events.DeviceKey(d.device_id, d.published_key(), d.fingerprint, TS)
                                         for d in devices))


class SecureTests(ClientTestCase):
    def make_secure(self, device: crypto.Device = ALICE_DEVICE) -> ChatClient:
        folder = tempfile.TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        self.contacts_file = Path(folder.name) / "contacts.json"
        self.secure = Secure(device, ContactStore(self.contacts_file))
        client = self.make(e2e=self.secure)
        self.online(client)
        self.written()
        return client

    def answer_keys(self, *answers: events.Keys) -> None:
        """Answer the client's /keys batch: check what it asked, then answer and close it."""
        lines = self.written()
        self.assertEqual(lines[:-1], [f"/keys {a.nick}" for a in answers])
        self.assertTrue(lines[-1].startswith("/ping e2e-"))
        self.server(*answers, events.Pong(lines[-1].split()[1]))

    def lines_text(self, client: ChatClient) -> list[str]:
        presenter = Presenter(client.model, WINDOW)
        return [line.text for change in self.recorder.take() for line in presenter.lines(change, TS)]

    def test_publishes_device_after_registration(self) -> None:
        """After registered the client publishes its device's key, and the daemon's acknowledgement is not shown."""
        client = self.make(e2e=Secure(ALICE_DEVICE, ContactStore(Path(tempfile.mkdtemp()) / "c.json")))
        client.startService()
        self.welcome()
        self.server(events.Registered("alice"))
        self.assertIn(f"/key publish {ALICE_DEVICE.published_key()}", self.written())
        self.recorder.take()
        self.server(events.Info(f"Your key is published: device {ALICE_DEVICE.device_id}, fingerprint "
                                f"{ALICE_DEVICE.fingerprint}"))
        self.assertEqual(self.recorder.take(), [])

    def test_msg_is_sealed_to_recipient_and_own_device(self) -> None:
        """/msg asks the keys of both, then sends /emsg with an envelope both devices open; the keys are not shown."""
        client = self.make_secure()
        client.input("/msg bob hello :wave:")
        self.recorder.take()
        self.answer_keys(keys("bob", BOB_DEVICE), keys("alice", ALICE_DEVICE))
        self.assertEqual(self.recorder.take(), [])
        [line] = self.written()
        verb, nick, envelope = line.split(" ")
        self.assertEqual((verb, nick), ("/emsg", "bob"))
        self.assertNotIn("hello", line)
        opened = crypto.open_envelope(envelope, BOB_DEVICE, {ALICE_DEVICE.device_id: ALICE_DEVICE.bundle}.get)
        self.assertEqual(opened, crypto.TextMessage("hello 👋"))
        self.assertEqual(crypto.open_envelope(envelope, ALICE_DEVICE, {ALICE_DEVICE.device_id: ALICE_DEVICE.bundle}
                                              .get), crypto.TextMessage("hello 👋"))
        self.assertEqual(set(ContactStore.load(self.contacts_file).devices("bob")), {BOB_DEVICE.device_id})

    def test_msg_to_someone_without_keys_goes_clear_saying_so(self) -> None:
        """A recipient who published no key gets /msg in clear text, and the user is told it is not encrypted."""
        client = self.make_secure()
        client.input("/msg carol hi")
        self.answer_keys(events.Keys("carol", False, ()), keys("alice", ALICE_DEVICE))
        self.assertEqual(self.written(), ["/msg carol hi"])
        self.assertIn("not encrypted: carol's client has no key.", self.recorder.notices())

    def test_unknown_nick_is_not_sent(self) -> None:
        """When the daemon has no keys answer for the nick (an error), nothing is sent and the user is told."""
        client = self.make_secure()
        client.input("/msg nobody hi")
        lines = self.written()
        self.server(events.Error("no-such-nick", "nobody is not here"), keys("alice", ALICE_DEVICE),
                    events.Pong(lines[-1].split()[1]))
        self.assertEqual(self.written(), [])
        self.assertIn("Not sent to nobody.", self.recorder.notices())

    def test_changed_key_warns_and_waits_for_trust(self) -> None:
        """A replaced key is a loud warning and nothing is sent to it; after /trust the message goes to the new key."""
        client = self.make_secure()
        self.secure.contacts.accept("bob", [BOB_DEVICE.bundle])
        new_bob = crypto.Device.generate()
        client.input("/msg bob secret")
        self.recorder.take()
        self.answer_keys(keys("bob", new_bob), keys("alice", ALICE_DEVICE))
        self.assertEqual(self.written(), [])
        notices = self.recorder.notices()
        self.assertTrue(any(n.startswith("WARNING: the encryption keys of bob changed") for n in notices), notices)
        self.assertTrue(any(n.startswith("Not sent to bob") for n in notices), notices)
        client.input("/trust bob")
        self.answer_keys(keys("bob", new_bob))
        self.assertTrue(self.secure.contacts.is_verified("bob"))
        self.assertEqual(set(ContactStore.load(self.contacts_file).devices("bob")), {new_bob.device_id})
        client.input("/msg bob secret")
        self.answer_keys(keys("bob", new_bob), keys("alice", ALICE_DEVICE))
        [line] = self.written()
        self.assertEqual(crypto.open_envelope(line.split()[2], new_bob, {ALICE_DEVICE.device_id: ALICE_DEVICE.bundle}
                                              .get), crypto.TextMessage("secret"))

    def test_added_device_still_sent_to_unchanged_when_verified(self) -> None:
        """A new device of a verified contact is not encrypted to before /trust; the known device still is."""
        client = self.make_secure()
        self.secure.contacts.accept("bob", [BOB_DEVICE.bundle])
        self.secure.contacts.trust("bob")
        second = crypto.Device.generate()
        client.input("/msg bob hi")
        self.answer_keys(keys("bob", BOB_DEVICE, second), keys("alice", ALICE_DEVICE))
        [line] = self.written()
        recipients = crypto.parse_envelope(line.split()[2]).recipients
        self.assertEqual(set(recipients), {BOB_DEVICE.device_id, ALICE_DEVICE.device_id})
        self.assertTrue(any(n.startswith("WARNING") for n in self.recorder.notices()))

    def test_receives_encrypted_message_with_lock(self) -> None:
        """A private with e2e from a known device is shown decrypted with the lock, never the envelope."""
        client = self.make_secure()
        self.secure.contacts.accept("bob", [BOB_DEVICE.bundle])
        envelope = crypto.seal(crypto.TextMessage("the plan"), BOB_DEVICE,
                               {ALICE_DEVICE.device_id: ALICE_DEVICE.bundle})
        self.recorder.take()
        self.server(events.Private(7, TS, "bob", "alice", "", e2e=envelope))
        [text] = [t for t in self.lines_text(client) if "bob" in t]
        self.assertIn(f"{LOCK} the plan", text)
        self.assertNotIn(envelope[:20], text)

    def test_unknown_sender_device_asks_keys_then_opens(self) -> None:
        """A message from a sender device not known yet asks the sender's keys, then opens it (first use)."""
        self.make_secure()
        envelope = crypto.seal(crypto.TextMessage("hi"), BOB_DEVICE, {ALICE_DEVICE.device_id: ALICE_DEVICE.bundle})
        self.server(events.Private(7, TS, "bob", "alice", "", e2e=envelope))
        self.recorder.take()
        self.answer_keys(keys("bob", BOB_DEVICE))
        [opened] = [c for c in self.recorder.take() if isinstance(c, events.Private)]
        self.assertIsInstance(opened, OpenedPrivate)
        self.assertEqual((opened.text, opened.secrecy), ("hi", ENCRYPTED))  # type: ignore[attr-defined]

    def test_unreadable_message_says_why(self) -> None:
        """An envelope not addressed to this device is shown as could not be decrypted, with the reason."""
        client = self.make_secure()
        self.secure.contacts.accept("bob", [BOB_DEVICE.bundle])
        other = crypto.Device.generate()
        envelope = crypto.seal(crypto.TextMessage("not yours"), BOB_DEVICE, {other.device_id: other.bundle})
        self.recorder.take()
        self.server(events.Private(7, TS, "bob", "alice", "", e2e=envelope))
        [text] = [t for t in self.lines_text(client) if "bob" in t]
        self.assertIn("an encrypted message that could not be decrypted (not-for-this-device)", text)
        self.assertNotIn("not yours", text)

    def test_history_opens_what_it_can(self) -> None:
        """A private history shows the messages this device can open, and says which it cannot."""
        client = self.make_secure()
        self.secure.contacts.accept("bob", [BOB_DEVICE.bundle])
        mine = crypto.seal(crypto.TextMessage("mine"), ALICE_DEVICE, {ALICE_DEVICE.device_id: ALICE_DEVICE.bundle,
                                                                        BOB_DEVICE.device_id: BOB_DEVICE.bundle})
        lost = crypto.seal(crypto.TextMessage("lost"), BOB_DEVICE, {BOB_DEVICE.device_id: BOB_DEVICE.bundle})
        self.recorder.take()
        self.server(events.PrivateHistory("bob", (events.Private(1, TS, "alice", "bob", "", e2e=mine),
                                                  events.Private(2, TS, "bob", "alice", "", e2e=lost),
                                                  events.Private(3, TS, "bob", "alice", "plain"))))
        texts = self.lines_text(client)
        self.assertTrue(any(f"{LOCK} mine" in t for t in texts), texts)
        self.assertTrue(any("could not be decrypted (not-for-this-device)" in t for t in texts), texts)
        self.assertTrue(any("plain" in t and "(not encrypted)" in t for t in texts), texts)
        self.assertFalse(any("lost" in t for t in texts), texts)

    def test_verify_shows_both_fingerprints(self) -> None:
        """/verify shows this device's fingerprint and the contact's, with whether each is accepted or verified."""
        client = self.make_secure()
        self.secure.contacts.accept("bob", [BOB_DEVICE.bundle])
        client.input("/verify bob")
        self.answer_keys(keys("bob", BOB_DEVICE))
        notices = self.recorder.notices()
        self.assertIn(f"Your device {ALICE_DEVICE.device_id}: {ALICE_DEVICE.fingerprint}", notices)
        self.assertIn(f"bob's device {BOB_DEVICE.device_id}: {BOB_DEVICE.fingerprint} (accepted, not verified)",
                      notices)

    def test_help_lists_verify_and_trust(self) -> None:
        """The client's /help lists /verify and /trust."""
        client = self.make_secure()
        client.input("/help")
        notices = "\n".join(self.recorder.notices())
        self.assertIn("/verify NICK", notices)
        self.assertIn("/trust NICK", notices)

    def test_disconnect_fails_pending_send(self) -> None:
        """A send waiting for keys when the connection ends is not sent, and the user is told."""
        client = self.make_secure()
        client.input("/msg bob hi")
        from twisted.internet import error
        from twisted.python.failure import Failure
        self.lose(Failure(error.ConnectionDone()))
        self.assertIn("Not sent to bob: disconnected.", self.recorder.notices())

    def test_unreadable_kind_is_marked(self) -> None:
        """An opened message that failed keeps the reason (UNREADABLE), for the presenter."""
        client = self.make_secure()
        self.server(events.Private(7, TS, "bob", "alice", "", e2e="!!"))
        [opened] = [c for c in self.recorder.take() if isinstance(c, events.Private)]
        self.assertEqual((opened.secrecy, opened.reason), (UNREADABLE, "malformed"))  # type: ignore[attr-defined]
        self.assertIs(client.secure, self.secure)


class FileTests(ClientTestCase):
    def folder(self) -> Path:
        made = tempfile.TemporaryDirectory()
        self.addCleanup(made.cleanup)
        return Path(made.name)

    def test_file_round_trip(self) -> None:
        """encrypt_file writes ciphertext only; decrypt_file restores the bytes under the sender's name and cleans up."""
        folder = self.folder()
        original = folder / "notes.txt"
        original.write_bytes(b"top secret " * 10000)
        encrypted, message = encrypt_file(original, folder / "staging")
        self.assertEqual(encrypted.name, OFFERED_NAME)
        self.assertNotIn(b"top secret", encrypted.read_bytes())
        self.assertEqual((message.name, message.size), ("notes.txt", 110000))
        saved = decrypt_file(encrypted, folder / "downloads", message)
        self.assertEqual(saved, folder / "downloads" / "notes.txt")
        self.assertEqual(saved.read_bytes(), original.read_bytes())
        self.assertFalse(encrypted.exists())

    def test_changed_file_is_refused(self) -> None:
        """A downloaded file that is not the one the message names is not decrypted, and nothing is saved."""
        folder = self.folder()
        original = folder / "notes.txt"
        original.write_bytes(b"x" * 70000)
        encrypted, message = encrypt_file(original, folder / "staging")
        data = bytearray(encrypted.read_bytes())
        data[100] ^= 1
        encrypted.write_bytes(bytes(data))
        with self.assertRaises(crypto.CannotDecrypt) as caught:
            decrypt_file(encrypted, folder / "downloads", message)
        self.assertEqual(caught.exception.reason, crypto.CORRUPTED)
        self.assertEqual(list((folder / "downloads").glob("*")) if (folder / "downloads").exists() else [], [])

    def test_file_message_offers_the_real_name(self) -> None:
        """An encrypted offer is not shown under its neutral name; its envelope shows the real name and /get."""
        secure = Secure(ALICE_DEVICE, ContactStore(self.folder() / "c.json"))
        client = self.make(e2e=secure)
        self.online(client)
        secure.contacts.accept("bob", [BOB_DEVICE.bundle])
        self.recorder.take()
        offer = events.FileOffer(9, "bob", "alice", OFFERED_NAME, 2000, "ab" * 32, TS)
        self.server(offer)
        self.assertEqual(self.recorder.take(), [])
        self.assertEqual(client.model.offers[9], offer)
        sealed = crypto.FileMessage(b"k" * 32, b"p" * 7, "plans.pdf", 9, "ab" * 32, 1234)
        envelope = crypto.seal(sealed, BOB_DEVICE, {ALICE_DEVICE.device_id: ALICE_DEVICE.bundle})
        self.server(events.Private(10, TS, "bob", "alice", "", e2e=envelope))
        presenter = Presenter(client.model, WINDOW)
        texts = [line.text for change in self.recorder.take() for line in presenter.lines(change, TS)]
        self.assertTrue(any(f"{LOCK} offers plans.pdf (1.2 KiB), encrypted: /get 9 to download it" in t
                            for t in texts), texts)
        self.assertEqual(secure.files[9], sealed)

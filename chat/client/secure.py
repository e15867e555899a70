# -*- test-case-name: tests.test_client_secure -*-
"""
End-to-end encrypted private messages in the client core (PROTOCOL.md
section 11, the envelope contract of C{docs/protocol.md}): L{Secure}
publishes this installation's device after each registration, seals what
C{/msg} says to the devices of the recipient (and the user's own), opens
the C{private} events and private histories that carry an envelope, keeps
trust on first use (L{chat.client.keystore.ContactStore}) and runs
C{/verify} and C{/trust}. Pure of Twisted: it sends lines and tells the
model through the callables it is given.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from chat import events
from chat.client import crypto, keystore
from chat.client.model import CLEAR, ENCRYPTED, UNREADABLE, ChatModel, OpenedPrivate
from chat.client.status import size_text
from chat.client.transfer import place, safe_name

TOKEN = "e2e-"
"""Prefix of the C{/ping} tokens that close a batch of C{/keys} requests;
their C{pong}s and the C{keys} answers inside a batch are not shown."""

KeysAnswer = dict[str, "events.Keys"]
"""The C{keys} answers of a batch, by lower-case nick (absent: the daemon
answered an error, e.g. C{no-such-nick})."""


@dataclass
class _Batch:
    nicks: set[str]
    then: Callable[[KeysAnswer | None], None]
    answers: KeysAnswer = field(default_factory=dict)


def _key(nick: str) -> str:
    return nick.lower()


class Secure:
    """
    One client's end-to-end encryption: its L{crypto.Device}, the devices
    it accepted for each contact, and the requests in flight.

    @ivar device: this installation's device (L{keystore.load_device}).
    @ivar contacts: the accepted devices of each nick, saved as they change.
    """

    _log = Logger()

    def __init__(self, device: crypto.Device, contacts: keystore.ContactStore) -> None:
        self.device = device
        self.contacts = contacts
        self._send: Callable[[str], None] = lambda line: None
        self._model: ChatModel | None = None
        self._tokens = itertools.count(1)
        self._batches: dict[str, _Batch] = {}
        self.files: dict[int, crypto.FileMessage] = {}
        """The encrypted files offered to the user, by offer id: how to decrypt them (secret keys)."""

    @classmethod
    def load(cls) -> Secure:
        """
        The device and contacts of this installation (made on first use).

        @raise keystore.KeyFileError: a damaged device or contacts file.
        @raise OSError: they cannot be read or written.
        """
        return cls(keystore.load_device(), keystore.ContactStore.load())

    def attach(self, send: Callable[[str], None], model: ChatModel) -> None:
        """
        Send lines with C{send} (to the daemon; may raise C{ValueError} for a
        line too long) and tell C{model}.
        """
        self._send = send
        self._model = model

    @property
    def model(self) -> ChatModel:
        assert self._model is not None
        return self._model

    def _save(self) -> None:
        try:
            self.contacts.save()
        except OSError as e:
            self.model.notice(f"Could not save the contacts' keys: {e.strerror or e}.", "error")

    # Connection

    def registered(self) -> None:
        """
        The nick is registered (again): publish this device (C{/key publish}).
        """
        self._send(f"/key publish {self.device.published_key()}")

    def disconnected(self) -> None:
        """
        The connection ended: every batch in flight fails (C{None}).
        """
        batches, self._batches = self._batches, {}
        for batch in batches.values():
            batch.then(None)

    def event_received(self, event: events.Event) -> events.Event | None:
        """
        See an event of the daemon before the model does.

        @return: the event for the model (a private message opened, as an
            L{OpenedPrivate}), or C{None} when it is this object's (the
            answers to its own requests, a C{private} waiting for the
            sender's keys: applied later).
        """
        match event:
            case events.Pong(token=token) if token.startswith(TOKEN):
                batch = self._batches.pop(token, None)
                if batch is not None:
                    batch.then(batch.answers)
                return None
            case events.Keys():
                for batch in self._batches.values():
                    if _key(event.nick) in batch.nicks and _key(event.nick) not in batch.answers:
                        batch.answers[_key(event.nick)] = event
                        return None
                return event
            case events.Info(text=text) if (
                    text.startswith(f"Your key is published: device {self.device.device_id},")
                    or text == f"This key is published already (device {self.device.device_id})"):
                return None
            case events.FileOffer(name=name) if name == OFFERED_NAME:
                self.model.offers[event.id] = event  # shown by the envelope that follows, under its real name
                return None
            case events.Private() if event.e2e:
                self._open_later([event], lambda opened: self.model.apply(opened[0]))
                return None
            case events.Private():
                return self._clear(event)
            case events.PrivateHistory():
                self._open_later(list(event.messages),
                                 lambda opened: self.model.apply(events.PrivateHistory(event.with_, tuple(opened))))
                return None
        return event

    def ask_keys(self, nicks: list[str], then: Callable[[KeysAnswer | None], None]) -> None:
        """
        Ask the daemon for the keys of C{nicks} (C{/keys NICK} each, then a
        C{/ping} closing the batch); C{then} gets the answers once the
        C{pong} comes, or C{None} if the connection ends first.
        """
        token = f"{TOKEN}{next(self._tokens)}"
        wanted = list(dict.fromkeys(_key(n) for n in nicks))
        self._batches[token] = _Batch(set(wanted), then)
        try:
            for nick in wanted:
                self._send(f"/keys {nick}")
            self._send(f"/ping {token}")
        except ValueError:
            del self._batches[token]
            then(None)

    # Trust

    def _bundles(self, answer: events.Keys) -> list[bytes]:
        bundles = []
        for key in answer.keys:
            try:
                bundles.append(crypto.decode_bundle(key.key))
            except ValueError:
                self.model.notice(f"{answer.nick} published a key that is not a valid key: ignored.", "error")
        return bundles

    def _trusted(self, nick: str, bundles: list[bytes], warn: bool = True) -> dict[str, bytes]:
        """
        The devices of C{nick} to encrypt to now, by id: all of them on
        first use or when a device was only added (accepted and saved), the
        unchanged ones when the user must agree to a change first (with a
        loud warning; C{/trust} accepts the change).
        """
        own = self.device.device_id
        bundles = [b for b in bundles if crypto.device_id(b) != own]
        changes = self.contacts.compare(nick, bundles)
        everyone = {crypto.device_id(b): b for b in bundles}
        if changes.needs_confirmation:
            if warn:
                unknown = ", ".join(changes.changed or changes.new)
                self.model.notice(
                    f"WARNING: the encryption keys of {nick} changed (new device {unknown}). It may be a new "
                    f"installation of theirs, or someone (the server?) trying to read their messages. Nothing is "
                    f"encrypted to the new key until you agree: compare fingerprints with /verify {nick} "
                    f"(by phone, in person), then /trust {nick}.", "error")
            return {did: everyone[did] for did in changes.unchanged}
        if changes.first_use or changes.new or changes.removed:
            self.contacts.accept(nick, bundles)
            self._save()
        if changes.new and not changes.first_use and warn:
            self.model.notice(f"{nick} has a new device ({', '.join(changes.new)}): encrypting to it too. "
                              f"/verify {nick} shows its fingerprint.")
        return everyone

    # Sending

    def send_private(self, nick: str, text: str, action: bool = False) -> None:
        """
        Send C{text} to C{nick}, encrypted when their client has keys: ask
        the keys of C{nick} and of the user (their other devices), then
        send C{/emsg NICK ENVELOPE}, or C{/msg NICK TEXT} in clear text
        when C{nick} has none (saying so), or nothing (saying why).
        """
        me = self.model.nick
        self.ask_keys([nick, me], lambda answers: self._seal(nick, text, action, answers))

    def _seal(self, nick: str, text: str, action: bool, answers: KeysAnswer | None) -> None:
        recipients = self.recipients(nick, answers)
        if recipients is None:
            return
        if not recipients:
            self._send_line(f"/msg {nick} {text}")
            self.model.notice(f"not encrypted: {nick}'s client has no key.")
            return
        self.send_sealed(nick, crypto.TextMessage(text, action), recipients)

    def recipients(self, nick: str, answers: KeysAnswer | None) -> dict[str, bytes] | None:
        """
        The devices to encrypt to for C{nick}, from the answers of
        L{ask_keys} for C{nick} and the user: theirs that are trusted, the
        user's other devices, and this device, by id; C{{}} when C{nick}
        has no key at all (send in clear text, and say so); C{None} when
        nothing must be sent (the user was told why).
        """
        if answers is None:
            self.model.notice(f"Not sent to {nick}: disconnected.", "error")
            return None
        answer = answers.get(_key(nick))
        if answer is None:
            self.model.notice(f"Not sent to {nick}.", "error")
            return None
        me = self.model.nick
        bundles = self._bundles(answer)
        if not bundles:
            if self.contacts.devices(nick) and _key(nick) != _key(me):
                self.model.notice(
                    f"Not sent: {nick} published encryption keys before, and has none now (a client without "
                    f"encryption, or a server removing their keys). To send in clear text anyway: /trust {nick}, "
                    f"then send again.", "error")
                return None
            return {}
        recipients = self._trusted(nick, bundles)
        if not recipients and _key(nick) != _key(me):
            self.model.notice(f"Not sent to {nick}: none of their keys is one you accepted. /verify {nick}, "
                              f"then /trust {nick}, then send again.", "error")
            return None
        mine = answers.get(_key(me))
        if mine is not None and _key(nick) != _key(me):
            recipients.update(self._trusted(me, self._bundles(mine)))
        recipients[self.device.device_id] = self.device.bundle
        return recipients

    def send_sealed(self, nick: str, message: crypto.Plaintext, recipients: dict[str, bytes]) -> None:
        """Seal C{message} to C{recipients} (L{recipients}) and send it with C{/emsg NICK ENVELOPE}."""
        envelope = crypto.seal(message, self.device, recipients)
        self._send_line(f"/emsg {nick} {envelope}")

    def _send_line(self, line: str) -> None:
        try:
            self._send(line)
        except ValueError as e:
            self.model.notice(f"Not sent: {e}", "error")

    # Receiving

    def _bundle_of(self, nick: str, device: str) -> bytes | None:
        if _key(nick) == _key(self.model.nick) and device == self.device.device_id:
            return self.device.bundle
        return self.contacts.bundle(nick, device)

    def _open(self, private: events.Private) -> tuple[OpenedPrivate, bool]:
        """
        Open one C{private} with an envelope; also whether it failed only
        for want of the sender's device (worth asking their keys).
        """
        try:
            message = crypto.open_envelope(private.e2e, self.device, lambda d: self._bundle_of(private.sender, d))
        except crypto.CannotDecrypt as e:
            return (OpenedPrivate(**_fields(private), secrecy=UNREADABLE, reason=e.reason),
                    e.reason == crypto.UNKNOWN_SENDER_DEVICE)
        if isinstance(message, crypto.FileMessage):
            if _key(private.sender) == _key(self.model.nick):
                text = f"offered {message.name} ({size_text(message.size)}), encrypted"
            else:
                self.files[message.offer] = message
                text = (f"offers {message.name} ({size_text(message.size)}), encrypted: /get {message.offer} "
                        f"to download it")
            return (OpenedPrivate(**{**_fields(private), "text": text}, secrecy=ENCRYPTED), False)
        return (OpenedPrivate(**{**_fields(private), "text": message.text, "action": message.action},
                              secrecy=ENCRYPTED), False)

    def _open_later(self, privates: list[events.Private], then: Callable[[list[events.Private]], None]) -> None:
        """
        Open the envelopes of C{privates} (clear ones pass through
        L{_clear}); those from a sender device not known yet are tried once
        more after asking the sender's keys; C{then} gets them in order.
        """
        opened: list[events.Private] = []
        retry: list[int] = []
        for i, private in enumerate(privates):
            if not private.e2e:
                opened.append(self._clear(private))
                continue
            result, unknown = self._open(private)
            opened.append(result)
            if unknown:
                retry.append(i)
        if not retry:
            then(opened)
            return
        senders = list(dict.fromkeys(privates[i].sender for i in retry))

        def answered(answers: KeysAnswer | None) -> None:
            for sender in senders:
                answer = (answers or {}).get(_key(sender))
                if answer is not None:
                    self._trusted(sender, self._bundles(answer))
            for i in retry:
                opened[i] = self._open(privates[i])[0]
            then(opened)

        self.ask_keys(senders, answered)

    def _clear(self, private: events.Private) -> events.Private:
        """A clear-text private message, marked when the other person's client has keys known here."""
        other = private.to if _key(private.sender) == _key(self.model.nick) else private.sender
        if self.contacts.devices(other):
            return OpenedPrivate(**_fields(private), secrecy=CLEAR)
        return private

    # /verify and /trust

    def verify(self, nick: str) -> None:
        """
        C{/verify NICK}: show this device's fingerprint and those of the
        devices C{nick} publishes, and whether each is verified, accepted,
        or not accepted yet.
        """
        def show(answers: KeysAnswer | None) -> None:
            answer = (answers or {}).get(_key(nick))
            if answer is None:
                self.model.notice(f"Cannot verify {nick}: no answer from the server.", "error")
                return
            notice = self.model.notice
            notice(f"Your device {self.device.device_id}: {self.device.fingerprint}")
            bundles = self._bundles(answer)
            if not bundles:
                notice(f"{nick} has published no encryption key: messages to them are not encrypted.")
                return
            known = self.contacts.devices(nick)
            for bundle in bundles:
                did = crypto.device_id(bundle)
                entry = known.get(did)
                state = ("verified" if entry is not None and entry.verified else
                         "accepted, not verified" if entry is not None else "NOT accepted yet")
                notice(f"{nick}'s device {did}: {crypto.fingerprint(bundle)} ({state})")
            notice(f"Compare these aloud with {nick} (who runs /verify {self.model.nick}); "
                   f"if they match: /trust {nick}.")

        self.ask_keys([nick], show)

    def trust(self, nick: str) -> None:
        """
        C{/trust NICK}: accept the devices C{nick} publishes now (also after
        a change warning) and mark them verified.
        """
        def accept(answers: KeysAnswer | None) -> None:
            answer = (answers or {}).get(_key(nick))
            if answer is None:
                self.model.notice(f"Cannot trust {nick}: no answer from the server.", "error")
                return
            own = self.device.device_id
            bundles = [b for b in self._bundles(answer) if crypto.device_id(b) != own]
            self.contacts.accept(nick, bundles)
            self.contacts.trust(nick)
            self._save()
            if bundles:
                self.model.notice(f"Trusted {nick}: {len(bundles)} device(s) verified; private messages to "
                                  f"{nick} are encrypted to them.")
            else:
                self.model.notice(f"{nick} has no encryption key: messages to them go in clear text.")

        self.ask_keys([nick], accept)


def _fields(private: events.Private) -> dict[str, Any]:
    """The fields of an L{events.Private} (not of a subclass), to build an L{OpenedPrivate}."""
    return {name: getattr(private, name) for name in events.Private.__dataclass_fields__}



OFFERED_NAME = "encrypted.chate2e"
"""The name an encrypted file is offered under: the real name travels inside the envelope."""


def encrypt_file(path: Path, staging: Path) -> tuple[Path, crypto.FileMessage]:
    """
    Encrypt the file at C{path} (L{crypto.encrypt_stream}, a fresh file key)
    into a new owner-only folder in C{staging}, as L{OFFERED_NAME}.
    Blocking: run it in a thread.

    @return: the encrypted file, and the L{crypto.FileMessage} to seal once
        the daemon gave the offer its id (C{offer} 0 until then).
    @raise OSError: reading C{path} or writing C{staging} failed.
    """
    key, prefix = crypto.new_file_key()
    staging.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="up-", dir=staging))
    encrypted = folder / OFFERED_NAME
    try:
        with open(path, "rb") as source, open(encrypted, "xb") as sink:
            info = crypto.encrypt_stream(source, sink, key, prefix)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return encrypted, crypto.FileMessage(key, prefix, path.name, 0, info.sha256, info.size)


def decrypt_file(encrypted: Path, folder: Path, message: crypto.FileMessage) -> Path:
    """
    Check the downloaded C{encrypted} file against C{message} (its SHA-256),
    decrypt it (L{crypto.decrypt_stream}) into C{folder} under a safe
    version of the sender's name (never over an existing file), and delete
    C{encrypted}. Blocking: run it in a thread.

    @return: the decrypted file.
    @raise crypto.CannotDecrypt: C{corrupted} (another file, a changed
        byte, a wrong key) or C{truncated}; nothing is left in C{folder}.
    @raise OSError: a file cannot be read or written.
    """
    digest = hashlib.sha256()
    with open(encrypted, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != message.sha256:
        raise crypto.CannotDecrypt(crypto.CORRUPTED, "the file downloaded is not the one the message names")
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{secrets.token_hex(8)}.{message.offer}.decrypting"
    try:
        with open(encrypted, "rb") as source, open(part, "xb") as sink:
            size = crypto.decrypt_stream(source, sink, message.key, message.prefix)
        if size != message.size:
            raise crypto.CannotDecrypt(crypto.CORRUPTED, f"{size} bytes decrypted, not {message.size}")
        final = place(part, folder, safe_name(message.name))
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    encrypted.unlink(missing_ok=True)
    return final

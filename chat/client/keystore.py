# -*- test-case-name: tests.test_client_crypto -*-
"""
Where a client keeps its end-to-end keys: this installation's device
(private keys, in the config folder, owner-only) and the devices it has
seen for each contact (trust on first use, in the data folder, owner-only).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.logger import Logger

from chat.client.crypto import Device, b64decode, b64encode, device_id, split_bundle
from chat.client.settings import config_dir, data_dir

DEVICE_FILE = "device.json"
"""The device's private keys, in L{chat.client.settings.config_dir}."""

CONTACTS_FILE = "contacts.json"
"""The known contacts' devices, in L{chat.client.settings.data_dir}."""

PRIVATE_MODE = 0o600
"""Permissions of both files: read and write by their owner only."""

_log = Logger()


class KeyFileError(Exception):
    """
    The device file exists but cannot be read as a device: the client must
    not silently make a new device (its contacts would see a changed key).
    """


def device_path() -> Path:
    """The device file: L{DEVICE_FILE} in L{chat.client.settings.config_dir}."""
    return config_dir() / DEVICE_FILE


def contacts_path() -> Path:
    """The contacts file: L{CONTACTS_FILE} in L{chat.client.settings.data_dir}."""
    return data_dir() / CONTACTS_FILE


def write_private(path: Path, data: bytes, replace: bool) -> bool:
    """
    Write C{data} to C{path} so that no other user can read it at any
    moment: a new file beside it, made with C{O_CREAT | O_EXCL} and mode
    0600 (and its folder 0700 if made here), written and flushed to disk,
    then moved into place: renamed over C{path} when C{replace}, else
    linked (an existing C{path} is then left alone).

    @return: whether C{path} now holds C{data} (C{False}: it existed and
        C{replace} was false).
    @raise OSError: the file cannot be written.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}.new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(partial, path)
            return True
        try:
            os.link(partial, path)
        except FileExistsError:
            return False
        return True
    finally:
        partial.unlink(missing_ok=True)


def _tighten(path: Path) -> None:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        _log.warn("{path} was readable by others: now owner-only", path=str(path))
        os.chmod(path, PRIVATE_MODE)


def load_device(path: Path | None = None) -> Device:
    """
    This installation's device: read from C{path} (L{device_path} by
    default), or, when there is none, made with fresh keys and saved there
    (JSON C{{"v": 1, "x25519": b64, "ed25519": b64}}, owner-only; two
    clients starting at once end up with the same device). A file others
    could read is made owner-only, with a warning logged.

    @raise KeyFileError: the file exists but is not a device.
    @raise OSError: the file cannot be read or written.
    """
    path = device_path() if path is None else path
    try:
        return _read_device(path)
    except FileNotFoundError:
        pass
    device = Device.generate()
    x25519, ed25519 = device.private_bytes()
    data = json.dumps({"v": 1, "x25519": b64encode(x25519), "ed25519": b64encode(ed25519)}).encode("ascii")
    if write_private(path, data + b"\n", replace=False):
        _log.info("Made this client's encryption device {device}", device=device.device_id)
        return device
    return _read_device(path)


def _read_device(path: Path) -> Device:
    data = path.read_bytes()
    _tighten(path)
    try:
        value = json.loads(data)
        return Device.from_private_bytes(b64decode(value["x25519"]), b64decode(value["ed25519"]))
    except (ValueError, KeyError, TypeError) as e:
        raise KeyFileError(f"{path} is not this client's device ({e.__class__.__name__})") from None


@dataclass(frozen=True, slots=True)
class KnownDevice:
    """
    A device of a contact this client has accepted.

    @ivar bundle: its 64-byte public bundle.
    @ivar verified: whether the user compared its fingerprint (C{/trust}).
    """

    bundle: bytes
    verified: bool = False


@dataclass(frozen=True, slots=True)
class KeyChanges:
    """
    How a contact's published devices (a C{keys} answer) differ from the
    ones this client accepted before; device ids in each tuple, sorted.

    @ivar first_use: nothing was known of this contact: everything is in
        C{new}, accepted on first use without a warning.
    @ivar unchanged: devices known and still published.
    @ivar new: devices not known, while every known device is still
        published: the contact added a device (a notice).
    @ivar changed: devices not known, while at least one known device is
        no longer published: a device was replaced, which is what a server
        substituting its own key looks like (the loud warning).
    @ivar removed: known devices no longer published.
    """

    first_use: bool
    unchanged: tuple[str, ...] = ()
    new: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    verified_before: bool = False
    """Whether every device accepted before was verified."""

    @property
    def needs_confirmation(self) -> bool:
        """
        Whether the client must ask the user before encrypting to the
        unknown devices: when any is C{changed}, or when the contact was
        verified and any is C{new}. Until then it encrypts only to the
        C{unchanged} devices (or not at all if there are none).
        """
        return bool(self.changed) or (self.verified_before and bool(self.new))


@dataclass(slots=True)
class ContactStore:
    """
    The devices accepted for each contact, by lower-case nick, saved as
    JSON C{{"v": 1, "contacts": {nick: {device id: {"bundle": b64,
    "verified": bool}}}}} in L{contacts_path}, owner-only.
    """

    path: Path | None = None
    contacts: dict[str, dict[str, KnownDevice]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> ContactStore:
        """
        Read the store from C{path} (L{contacts_path} by default); a missing
        file is an empty store. Entries whose device id is not that of
        their bundle are dropped.

        @raise KeyFileError: the file exists but is not a contacts store
            (the client must not forget whom it verified silently).
        @raise OSError: it cannot be read.
        """
        path = contacts_path() if path is None else path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls(path)
        _tighten(path)
        try:
            value = json.loads(data)
            contacts: dict[str, dict[str, KnownDevice]] = {}
            for nick, devices in value["contacts"].items():
                known = {}
                for did, entry in devices.items():
                    bundle = b64decode(entry["bundle"])
                    if device_id(bundle) == did and type(entry.get("verified", False)) is bool:
                        known[did] = KnownDevice(bundle, entry.get("verified", False))
                contacts[nick.lower()] = known
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise KeyFileError(f"{path} is not a contacts store ({e.__class__.__name__})") from None
        return cls(path, contacts)

    def save(self) -> None:
        """
        Write the store whole (owner-only, replaced atomically).

        @raise OSError: it cannot be written.
        """
        path = contacts_path() if self.path is None else self.path
        value: dict[str, Any] = {"v": 1, "contacts": {
            nick: {did: {"bundle": b64encode(d.bundle), "verified": d.verified} for did, d in sorted(devices.items())}
            for nick, devices in sorted(self.contacts.items())}}
        write_private(path, json.dumps(value, indent=1, sort_keys=True).encode("ascii") + b"\n", replace=True)

    def devices(self, nick: str) -> dict[str, KnownDevice]:
        """The accepted devices of C{nick} (any case), by device id (a copy; empty if none)."""
        return dict(self.contacts.get(nick.lower(), {}))

    def compare(self, nick: str, bundles: Iterable[bytes]) -> KeyChanges:
        """
        Compare a C{keys} answer for C{nick} with the accepted devices,
        without changing anything. Device ids are computed from the bundles
        (the daemon's C{device} field is not trusted).

        @param bundles: the published 64-byte bundles.
        @raise ValueError: a bundle that is not a valid bundle.
        """
        published = {device_id(bundle) for bundle in bundles for _ in [split_bundle(bundle)]}
        known = self.contacts.get(nick.lower(), {})
        if not known:
            return KeyChanges(first_use=True, new=tuple(sorted(published)))
        unknown = tuple(sorted(published - known.keys()))
        removed = tuple(sorted(known.keys() - published))
        replaced = bool(removed) and bool(unknown)
        return KeyChanges(first_use=False, unchanged=tuple(sorted(published & known.keys())),
                          new=() if replaced else unknown, changed=unknown if replaced else (),
                          removed=removed, verified_before=all(d.verified for d in known.values()))

    def accept(self, nick: str, bundles: Iterable[bytes]) -> None:
        """
        Make C{bundles} the accepted devices of C{nick} (on first use, or
        once the user agreed to a change): devices no longer published are
        forgotten, those kept keep their verified mark, new ones are
        unverified. Not saved until L{save}.

        @raise ValueError: a bundle that is not a valid bundle.
        """
        known = self.contacts.get(nick.lower(), {})
        accepted = {}
        for bundle in bundles:
            split_bundle(bundle)
            did = device_id(bundle)
            accepted[did] = known.get(did, KnownDevice(bundle))
        self.contacts[nick.lower()] = accepted

    def trust(self, nick: str) -> bool:
        """
        Mark every accepted device of C{nick} verified (C{/trust NICK},
        after comparing fingerprints). Not saved until L{save}.

        @return: whether C{nick} had any accepted device.
        """
        known = self.contacts.get(nick.lower(), {})
        if not known:
            return False
        self.contacts[nick.lower()] = {did: KnownDevice(d.bundle, True) for did, d in known.items()}
        return True

    def is_verified(self, nick: str) -> bool:
        """Whether C{nick} has accepted devices and all are verified."""
        known = self.contacts.get(nick.lower(), {})
        return bool(known) and all(d.verified for d in known.values())

    def bundle(self, nick: str, device: str) -> bytes | None:
        """
        The accepted bundle of device id C{device} of C{nick}, or C{None}:
        the C{sender_bundle} of L{chat.client.crypto.open_envelope}.
        """
        known = self.contacts.get(nick.lower(), {}).get(device)
        return None if known is None else known.bundle

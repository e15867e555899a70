# -*- test-case-name: tests.test_domain_keys -*-
"""
The rules of device keys (PROTOCOL.md section 11): publishing, removing and
listing the public keys clients encrypt private messages to. The daemon only
keeps and hands out keys; it never encrypts or opens anything.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from chat import errors, events, keys
from chat.domain.state import DomainState, User, utc
from chat.sequencer import Delivery


class Keys(DomainState):
    """
    The device keys of accounts (L{DomainState.device_keys}, stored, at
    most L{keys.DEVICES_MAX} each) and of guests (L{User.keys}, lost with the
    session, as many at most).
    """

    def _keys_of(self, user: User) -> list[events.DeviceKey]:
        if user.account is None:
            return user.keys
        return self.device_keys.setdefault(user.account, [])

    def publish_key(self, user: User, bundle: bytes, now: float) -> None:
        """
        Publish a device's public key bundle (C{/key publish KEY}): kept
        with the user's account (stored; the answer waits until it is
        durable) or, for a guest, with the session. The requester gets
        C{info} naming the device id and fingerprint. Publishing a key that
        is published already changes nothing (its C{added} time stays);
        one more than L{keys.DEVICES_MAX} drops the oldest, and says so.
        A key that cannot be stored is forgotten again and the requester
        gets error C{busy}.

        @param bundle: the L{keys.BUNDLE_SIZE} bytes of the bundle
            (L{keys.parse_bundle}).
        """
        device = keys.device_id(bundle)
        published = self._keys_of(user)
        if any(key.device == device for key in published):
            self._events.publish(events.Info(f"This key is published already (device {device})"), user.here)
            return
        key = events.DeviceKey(device, base64.b64encode(bundle).decode("ascii"), keys.fingerprint(bundle), utc(now))
        dropped = published[:max(0, len(published) + 1 - keys.DEVICES_MAX)]
        del published[:len(dropped)]
        published.append(key)
        text = f"Your key is published: device {device}, fingerprint {key.fingerprint}"
        if dropped:
            names = ", ".join(old.device for old in dropped)
            text += f" (at most {keys.DEVICES_MAX} devices: the oldest, {names}, is dropped)"
        account = user.account
        if account is None:
            text += "; it lasts while you are connected (log in to keep keys with your account)"
            self._events.publish(events.Info(text), user.here)
            return
        for old in dropped:
            self._store.remove_device_key(account, old.device).addErrback(
                lambda failure: self._log.failure("could not remove a key of {account}", failure, account=account)
            )
        stored = self._store.add_device_key(account, key)
        self._events.publish_after(stored, events.Info(text), user.here, self._key_not_stored, user, account, key)

    def _key_not_stored(self, user: User, account: str, key: events.DeviceKey) -> Sequence[Delivery]:
        published = self.device_keys.get(account, [])
        if key in published:
            published.remove(key)
        error = events.Error(errors.Busy.code, "your key could not be stored, so it is not published; try again")
        return [(error, user.here)]

    def remove_key(self, user: User, device: str) -> None:
        """
        Forget one of the user's own device keys (C{/key remove DEVICE}):
        from the account (stored) or the session. The requester gets C{info}.

        @raise errors.BadArguments: the user has no key of that device id.
        """
        published = self._keys_of(user)
        found = [key for key in published if key.device == device]
        if not found:
            raise errors.BadArguments(f"you have no key of device {device}: /keys {user.nick} lists yours")
        published.remove(found[0])
        done = events.Info(f"The key of device {device} is removed")
        if user.account is None:
            self._events.publish(done, user.here)
            return
        stored = self._store.remove_device_key(user.account, device)
        self._events.publish_after(stored, done, user.here, self._key_not_removed, user)

    def _key_not_removed(self, user: User) -> Sequence[Delivery]:
        error = events.Error(errors.Busy.code, "the key could not be removed from the store; try again")
        return [(error, user.here)]

    def list_keys(self, user: User, nick: str) -> None:
        """
        Publish to the requester C{keys} (L{events.Keys}) with the device
        keys of C{nick}, oldest first: a connected user's (their account's
        when logged in, else their session's), or an account's while it is
        away.

        @raise errors.NoSuchNick: nobody with that nick is connected, and
            no account has it.
        """
        target = self.users.get(nick.lower())
        if target is not None:
            answer = events.Keys(target.nick, target.account is not None, tuple(self._keys_of(target)))
        elif nick.lower() in self.accounts:
            found = self.device_keys.get(nick.lower(), [])
            answer = events.Keys(self.accounts[nick.lower()], True, tuple(found))
        else:
            raise errors.NoSuchNick(f"{nick} is not connected and has no account")
        self._events.publish(answer, user.here)

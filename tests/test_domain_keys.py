"""
Tests for the device keys of L{chat.domain} (PROTOCOL.md section 11): a
guest's keys live with the session, an account's in the store; C{keys}
answers; the bound per account; and encrypted private messages (C{e2e}),
relayed and stored like any private message, with a recording sink, a
L{MemoryStore} and literal times.
"""

from __future__ import annotations

import base64

from twisted.internet.defer import Deferred, fail

from chat import errors, events, keys
from chat.domain import User
from chat.memory_store import MemoryStore
from tests.support import T0, DomainTestCase, FakeParticipant, RecordingSink, at, make_domain

ENVELOPE = "eyJjIjoiY2lwaGVydGV4dCJ9"


def bundle(n: int) -> bytes:
    """
    A 64-byte key bundle, different for each C{n}.
    """
    return bytes([n]) * 64


def device_key(n: int, seconds: float = 0.0) -> events.DeviceKey:
    """
    The published key of L{bundle}(C{n}), added C{seconds} after T0.
    """
    b = bundle(n)
    return events.DeviceKey(keys.device_id(b), base64.b64encode(b).decode(), keys.fingerprint(b), at(seconds))


class KeysTestCase(DomainTestCase):
    def account(self, nick: str, now: float = T0) -> tuple[User, FakeParticipant]:
        """
        Register C{nick} logged in to its (new) account.
        """
        self.domain.account_created(nick, None)
        participant = FakeParticipant(nick)
        user = self.domain.register(participant, nick, now, account=nick.lower())
        self.take()
        return user, participant

    def keys_of(self, asker: User, nick: str) -> events.Event:
        self.domain.list_keys(asker, nick)
        [(answer, _)] = self.take()
        return answer


class GuestKeyTests(KeysTestCase):
    """
    A guest's keys: kept with the session.
    """

    def test_published_and_listed(self) -> None:
        """
        A guest's key is answered with info naming device and fingerprint, and listed by keys to others.
        """
        alice, pa = self.register("alice")
        bob, _ = self.register("bob")
        self.domain.publish_key(alice, bundle(1), T0)
        [(info, to)] = self.take()
        assert isinstance(info, events.Info)
        self.assertEqual(to, (pa,))
        self.assertIn(f"device {keys.device_id(bundle(1))}, fingerprint {keys.fingerprint(bundle(1))}", info.text)
        self.assertIn("while you are connected", info.text)
        self.assertEqual(self.keys_of(bob, "ALICE"), events.Keys("alice", False, (device_key(1),)))
        self.assertEqual(self.store.device_keys(), {})

    def test_republish_idempotent(self) -> None:
        """
        Publishing the same key again keeps one copy with its first added time.
        """
        alice, _ = self.register("alice")
        self.domain.publish_key(alice, bundle(1), T0)
        self.domain.publish_key(alice, bundle(1), T0 + 60)
        [_, (info, _)] = self.take()
        assert isinstance(info, events.Info)
        self.assertIn("published already", info.text)
        self.assertEqual(self.keys_of(alice, "alice"), events.Keys("alice", False, (device_key(1),)))

    def test_gone_with_the_session(self) -> None:
        """
        When a guest quits, its keys are gone: keys of the nick is no-such-nick.
        """
        alice, _ = self.register("alice")
        bob, _ = self.register("bob")
        self.domain.publish_key(alice, bundle(1), T0)
        self.domain.quit(alice, "bye", T0)
        self.assertRaises(errors.NoSuchNick, self.domain.list_keys, bob, "alice")

    def test_no_keys(self) -> None:
        """
        A connected user without keys is listed with none.
        """
        alice, _ = self.register("alice")
        self.register("bob")
        self.assertEqual(self.keys_of(alice, "bob"), events.Keys("bob", False, ()))

    def test_remove(self) -> None:
        """
        A guest removes its own key by device id; an unknown device is bad-arguments.
        """
        alice, _ = self.register("alice")
        self.domain.publish_key(alice, bundle(1), T0)
        self.domain.publish_key(alice, bundle(2), T0)
        self.take()
        self.domain.remove_key(alice, keys.device_id(bundle(1)))
        [(info, _)] = self.take()
        self.assertEqual(info, events.Info(f"The key of device {keys.device_id(bundle(1))} is removed"))
        self.assertEqual(self.keys_of(alice, "alice"), events.Keys("alice", False, (device_key(2),)))
        self.assertRaises(errors.BadArguments, self.domain.remove_key, alice, keys.device_id(bundle(1)))


class AccountKeyTests(KeysTestCase):
    """
    A logged-in user's keys: kept with the account, in the store.
    """

    def test_stored_and_listed_while_away(self) -> None:
        """
        An account's keys are stored and still listed (account true) after it quits.
        """
        alice, _ = self.account("Alice")
        bob, _ = self.register("bob")
        self.domain.publish_key(alice, bundle(1), T0)
        self.domain.publish_key(alice, bundle(2), T0 + 1)
        self.assertEqual(self.store.device_keys(), {"alice": (device_key(1), device_key(2, 1))})
        self.domain.quit(alice, "bye", T0)
        self.take()
        self.assertEqual(self.keys_of(bob, "alice"), events.Keys("Alice", True, (device_key(1), device_key(2, 1))))

    def test_loaded_from_the_store(self) -> None:
        """
        A domain made over a store lists the account keys stored there.
        """
        store = MemoryStore()
        self.successResultOf(store.create_account("Alice", "h", 1.0))
        self.successResultOf(store.add_device_key("alice", device_key(3)))
        sink = RecordingSink()
        domain = make_domain(sink, store)
        bob = domain.register(FakeParticipant("bob"), "bob", T0)
        sink.published.clear()
        domain.list_keys(bob, "alice")
        self.assertEqual([event for event, _ in sink.published], [events.Keys("Alice", True, (device_key(3),))])

    def test_oldest_dropped_over_the_bound(self) -> None:
        """
        Publishing one key more than DEVICES_MAX drops the oldest, in memory and in the store, and says so.
        """
        alice, _ = self.account("alice")
        for n in range(keys.DEVICES_MAX + 1):
            self.domain.publish_key(alice, bundle(n), T0 + n)
        *_, (info, _) = self.take()
        assert isinstance(info, events.Info)
        self.assertIn(f"the oldest, {keys.device_id(bundle(0))}, is dropped", info.text)
        expected = tuple(device_key(n, n) for n in range(1, keys.DEVICES_MAX + 1))
        self.assertEqual(self.keys_of(alice, "alice"), events.Keys("alice", True, expected))
        self.assertEqual(self.store.device_keys(), {"alice": expected})

    def test_not_stored(self) -> None:
        """
        A key the store cannot keep is not published: the requester gets busy, and keys lists none.
        """
        def failing(account: str, key: events.DeviceKey) -> Deferred[None]:
            return fail(OSError("disk full"))

        self.patch(self.store, "add_device_key", failing)
        alice, pa = self.account("alice")
        self.domain.publish_key(alice, bundle(1), T0)
        [(error, to)] = self.take()
        assert isinstance(error, events.Error)
        self.assertEqual((error.code, to), ("busy", (pa,)))
        self.assertEqual(self.keys_of(alice, "alice"), events.Keys("alice", True, ()))

    def test_remove_stored(self) -> None:
        """
        Removing an account's key removes it from the store.
        """
        alice, _ = self.account("alice")
        self.domain.publish_key(alice, bundle(1), T0)
        self.domain.remove_key(alice, keys.device_id(bundle(1)))
        self.assertEqual(self.store.device_keys(), {})

    def test_new_account_of_an_old_name_has_no_keys(self) -> None:
        """
        Keys left in memory for a name whose account was deleted do not pass to a new account of it.
        """
        alice, _ = self.account("alice")
        self.domain.publish_key(alice, bundle(1), T0)
        self.domain.quit(alice, "bye", T0)
        self.domain.account_created("alice", None)
        bob, _ = self.register("bob")
        self.assertEqual(self.keys_of(bob, "alice"), events.Keys("alice", True, ()))

    def test_unknown_nick(self) -> None:
        """
        keys of a nick nobody has and no account has is no-such-nick.
        """
        alice, _ = self.register("alice")
        self.assertRaises(errors.NoSuchNick, self.domain.list_keys, alice, "nobody")


class EncryptedPrivateTests(KeysTestCase):
    """
    C{private} with C{e2e}: relayed and stored as it came.
    """

    def test_delivered_to_both(self) -> None:
        """
        An envelope goes to the recipient and back to the sender, text empty, and is stored.
        """
        alice, pa = self.register("alice")
        _, pb = self.register("bob")
        self.domain.private(alice, "bob", "", T0, e2e=ENVELOPE)
        [(event, to)] = self.take()
        self.assertEqual(event, events.Private(1, at(), "alice", "bob", "", e2e=ENVELOPE))
        self.assert_same_recipients(to, [pa, pb])
        [stored] = self.successResultOf(self.store.conversation("alice", "bob", 10))
        self.assertEqual(stored.e2e, ENVELOPE)

    def test_offline_then_delivered_at_login(self) -> None:
        """
        An envelope to an away account waits and is delivered, unchanged, when it logs in.
        """
        away, _ = self.account("bob")
        self.domain.quit(away, "bye", T0)
        alice, _ = self.register("alice")
        self.take()
        self.domain.private(alice, "bob", "", T0, e2e=ENVELOPE)
        self.take()
        bob, pb = self.account("bob")
        self.domain.deliver_waiting(bob)
        delivered = [event for event, to in self.take() if isinstance(event, events.Private)]
        self.assertEqual(delivered, [events.Private(1, at(), "alice", "bob", "", offline=True, e2e=ENVELOPE)])

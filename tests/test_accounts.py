"""
Tests for L{chat.accounts} without a network: the argon2id L{PasswordHasher}
run inline, L{is_local}, the C{twisted.cred} checker and realm behind a real
L{Portal}, L{LoginLimiter} with literal times, and the L{Accounts} facade
with failures answered on a L{Clock}.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, cast

import argon2
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import Interface, implementer
from zope.interface.verify import verifyObject

from chat import errors
from chat.accounts import (
    ADDRESS_FAILURES,
    FAILURE_DELAY,
    NICK_FAILURES,
    PASSWORD_MAX,
    PASSWORD_MIN,
    Account,
    AccountChecker,
    AccountRealm,
    Accounts,
    AttemptBucket,
    IAccount,
    LoginLimiter,
    PasswordHasher,
    check_password,
    is_local,
    owasp_hasher,
)
from chat.memory_store import MemoryStore

T0 = 1_700_000_000.0
"""A literal time: 2023-11-14T22:13:20Z."""

OWASP_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"
CHEAP_PREFIX = "$argon2id$v=19$m=8,t=1,p=1$"


def cheap() -> argon2.PasswordHasher:
    """
    An argon2id hasher with the smallest parameters, so tests run fast.
    """
    return argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def older() -> argon2.PasswordHasher:
    """
    A cheap argon2id hasher with other parameters than L{cheap}: the hashes
    it makes count as made with "old" parameters.
    """
    return argon2.PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)


def inline() -> PasswordHasher:
    """
    A L{PasswordHasher} hashing inline with L{cheap} parameters.
    """
    return PasswordHasher(None, hasher=cheap())


class PendingHasher:
    """
    Stands in for argon2-cffi's hasher: each call returns a L{Deferred} the
    test fires, so hashes can be kept "running".
    """

    def __init__(self) -> None:
        self.calls: list[Deferred[Any]] = []

    def hash(self, password: str) -> Deferred[Any]:
        pending: Deferred[Any] = Deferred()
        self.calls.append(pending)
        return pending

    def verify(self, encoded: str, password: str) -> Deferred[Any]:
        return self.hash(password)

    def check_needs_rehash(self, encoded: str) -> bool:
        return False


@implementer(IReactorFromThreads)
class ThreadReports:
    """
    Stands in for the reactor a thread pool reports to: C{callFromThread}
    keeps each call for the test to run on its own thread, and sets
    C{reported}.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., object], tuple[object, ...], dict[str, object]]] = []
        self.reported = threading.Event()

    def callFromThread(self, callable: Callable[..., object], *args: object, **kwargs: object) -> None:  # noqa: N802
        self.calls.append((callable, args, kwargs))
        self.reported.set()


class ThreadRecordingHasher:
    """
    Stands in for argon2-cffi's hasher: hashes with L{cheap} parameters and
    records the thread each hash ran on.
    """

    def __init__(self) -> None:
        self.threads: list[int] = []
        self._hasher = cheap()

    def hash(self, password: str) -> str:
        self.threads.append(threading.get_ident())
        return self._hasher.hash(password)


class PasswordHasherTests(SynchronousTestCase):
    """
    L{PasswordHasher} with C{reactor=None}: argon2id run inline.
    """

    def setUp(self) -> None:
        self.hasher = inline()

    def test_owasp_parameters(self) -> None:
        """
        L{owasp_hasher}, the default, makes argon2id hashes with m=19 MiB, t=2, p=1.
        """
        self.assertTrue(owasp_hasher().hash("correct horse").startswith(OWASP_PREFIX))
        encoded = self.successResultOf(PasswordHasher(None).hash("correct horse"))
        self.assertTrue(encoded.startswith(OWASP_PREFIX), encoded)

    def test_hash_is_argon2id_and_salted(self) -> None:
        """
        C{hash} fires with an encoded argon2id hash, different each time for the same password.
        """
        first = self.successResultOf(self.hasher.hash("password1"))
        second = self.successResultOf(self.hasher.hash("password1"))
        self.assertTrue(first.startswith(CHEAP_PREFIX), first)
        self.assertNotEqual(first, second)
        self.assertNotIn("password1", first)

    def test_verify_right_password(self) -> None:
        """
        C{verify} fires with C{True} for the password that was hashed.
        """
        encoded = self.successResultOf(self.hasher.hash("password1"))
        self.assertIs(self.successResultOf(self.hasher.verify(encoded, "password1")), True)

    def test_verify_wrong_password(self) -> None:
        """
        C{verify} fires with C{False} for another password, one differing only in case included.
        """
        encoded = self.successResultOf(self.hasher.hash("password1"))
        self.assertIs(self.successResultOf(self.hasher.verify(encoded, "password2")), False)
        self.assertIs(self.successResultOf(self.hasher.verify(encoded, "PASSWORD1")), False)
        self.assertIs(self.successResultOf(self.hasher.verify(encoded, "")), False)

    def test_verify_garbage_hash(self) -> None:
        """
        C{verify} fires with C{False}, not an error, for an unreadable or truncated hash.
        """
        encoded = self.successResultOf(self.hasher.hash("password1"))
        for garbage in ["", "garbage", "$2b$12$abcdefghijklmnopqrstuv", CHEAP_PREFIX + "bad", encoded[:-4]]:
            self.assertIs(self.successResultOf(self.hasher.verify(garbage, "password1")), False, garbage)

    def test_verify_hash_of_other_parameters(self) -> None:
        """
        C{verify} accepts a hash made with other argon2id parameters.
        """
        encoded = older().hash("password1")
        self.assertIs(self.successResultOf(self.hasher.verify(encoded, "password1")), True)

    def test_needs_rehash(self) -> None:
        """
        C{needs_rehash} is false for today's parameters, true for others and for garbage.
        """
        encoded = self.successResultOf(self.hasher.hash("password1"))
        self.assertFalse(self.hasher.needs_rehash(encoded))
        self.assertTrue(self.hasher.needs_rehash(older().hash("password1")))
        self.assertTrue(PasswordHasher(None).needs_rehash(encoded))
        self.assertTrue(self.hasher.needs_rehash("garbage"))

    def test_limit_busy(self) -> None:
        """
        Beyond C{limit} hashes running at once, requests fail with L{errors.Busy}; a finished one frees a place.
        """
        pending = PendingHasher()
        hasher = PasswordHasher(None, limit=2, hasher=cast(argon2.PasswordHasher, pending))
        first = hasher.hash("password1")
        second = hasher.verify("encoded", "password2")
        refused = hasher.hash("password3")
        failure = self.failureResultOf(refused, errors.Busy)
        self.assertEqual(str(failure.value), "the server is busy checking passwords; try again in a moment")
        self.failureResultOf(hasher.verify("encoded", "password3"), errors.Busy)
        self.assertEqual(len(pending.calls), 2)
        pending.calls[0].callback("hashed")
        self.assertEqual(self.successResultOf(first), "hashed")
        third = hasher.hash("password4")
        self.assertNoResult(third)
        self.assertEqual(len(pending.calls), 3)
        self.assertNoResult(second)

    def test_limit_freed_by_failure(self) -> None:
        """
        A hash that fails frees its place too.
        """
        pending = PendingHasher()
        hasher = PasswordHasher(None, limit=1, hasher=cast(argon2.PasswordHasher, pending))
        first = hasher.hash("password1")
        self.failureResultOf(hasher.hash("password2"), errors.Busy)
        pending.calls[0].errback(RuntimeError("out of memory"))
        self.failureResultOf(first, RuntimeError)
        self.assertNoResult(hasher.hash("password3"))

    def test_limit_zero(self) -> None:
        """
        With C{limit} 0 every request fails with L{errors.Busy} without hashing.
        """
        hasher = PasswordHasher(None, limit=0, hasher=cheap())
        self.failureResultOf(hasher.hash("password1"), errors.Busy)
        self.failureResultOf(hasher.verify(cheap().hash("password1"), "password1"), errors.Busy)

    def test_runs_on_its_own_threads(self) -> None:
        """
        Given a reactor, hashing runs on a thread of the hasher's, not the caller's, and reports through the reactor.
        """
        reports = ThreadReports()
        recording = ThreadRecordingHasher()
        hasher = PasswordHasher(reports, hasher=cast(argon2.PasswordHasher, recording))
        hasher.start()
        self.addCleanup(hasher.stop)
        hashed = hasher.hash("password1")
        self.assertTrue(reports.reported.wait(10), "the pool never reported")
        self.assertNoResult(hashed)
        self.assertEqual(len(recording.threads), 1)
        self.assertNotEqual(recording.threads[0], threading.get_ident())
        for function, args, kwargs in reports.calls:
            function(*args, **kwargs)
        self.assertTrue(self.successResultOf(hashed).startswith(CHEAP_PREFIX))

    def test_start_stop_inline(self) -> None:
        """
        C{start} and C{stop} do nothing inline, and hashing still works after them.
        """
        self.hasher.start()
        self.hasher.stop()
        encoded = self.successResultOf(self.hasher.hash("password1"))
        self.assertTrue(self.successResultOf(self.hasher.verify(encoded, "password1")))


class CheckPasswordTests(SynchronousTestCase):
    """
    L{check_password}: the length rules for a new password.
    """

    def test_bounds(self) -> None:
        """
        8 to 256 characters are accepted.
        """
        self.assertEqual((PASSWORD_MIN, PASSWORD_MAX), (8, 256))
        for password in ["x" * 8, "x" * 256, "pässwörd", "日本語のパスワード"]:
            check_password(password)

    def test_too_short_or_long(self) -> None:
        """
        7 characters, 257 characters or none are L{errors.BadArguments} (code C{bad-arguments}).
        """
        for password in ["", "x" * 7, "x" * 257]:
            error = self.assertRaises(errors.BadArguments, check_password, password)
            self.assertEqual(str(error), "a password is 8 to 256 characters, without spaces")
            self.assertEqual(error.code, "bad-arguments")

    def test_counts_characters_not_bytes(self) -> None:
        """
        The bounds are in characters: 8 two-byte characters pass, 257 do not.
        """
        check_password("é" * 8)
        self.assertRaises(errors.BadArguments, check_password, "é" * 257)


class IsLocalTests(SynchronousTestCase):
    """
    L{is_local}: which peers may authenticate in plain text (PROTOCOL.md section 7).
    """

    def test_ipv4_loopback(self) -> None:
        """
        127.0.0.1 and the rest of 127.0.0.0/8 are local.
        """
        self.assertTrue(is_local(IPv4Address("TCP", "127.0.0.1", 5555)))
        self.assertTrue(is_local(IPv4Address("TCP", "127.0.0.2", 5555)))
        self.assertTrue(is_local(IPv4Address("TCP", "127.255.255.254", 5555)))

    def test_ipv6_loopback(self) -> None:
        """
        ::1 and the IPv4-mapped ::ffff:127.0.0.1 are local.
        """
        self.assertTrue(is_local(IPv6Address("TCP", "::1", 5555)))
        self.assertTrue(is_local(IPv6Address("TCP", "::ffff:127.0.0.1", 5555)))

    def test_other_addresses(self) -> None:
        """
        LAN, public, unspecified and IPv4-mapped non-loopback addresses are not local.
        """
        for address in [
            IPv4Address("TCP", "192.168.1.20", 5555),
            IPv4Address("TCP", "10.0.0.1", 5555),
            IPv4Address("TCP", "192.0.2.7", 5555),
            IPv4Address("TCP", "0.0.0.0", 5555),
            IPv6Address("TCP", "2001:db8::1", 5555),
            IPv6Address("TCP", "::ffff:192.0.2.7", 5555),
            IPv6Address("TCP", "fe80::1%eth0", 5555),
            IPv6Address("TCP", "::", 5555),
        ]:
            self.assertFalse(is_local(address), address)

    def test_unreadable_host(self) -> None:
        """
        A host that is not an IP address is not local.
        """
        self.assertFalse(is_local(IPv4Address("TCP", "localhost", 5555)))

    def test_unix(self) -> None:
        """
        A UNIX socket peer, named or not, is local.
        """
        self.assertTrue(is_local(UNIXAddress(b"/run/chat.sock")))
        self.assertTrue(is_local(UNIXAddress(None)))

    def test_unknown_address_type(self) -> None:
        """
        An address of another kind is not local.
        """
        self.assertFalse(is_local(cast(Any, object())))


class PortalTests(SynchronousTestCase):
    """
    L{AccountChecker} and L{AccountRealm} behind a real C{twisted.cred} L{Portal}.
    """

    def setUp(self) -> None:
        self.store = MemoryStore()
        self.hasher = inline()
        self.checker = AccountChecker(self.store, self.hasher)
        self.portal = Portal(AccountRealm(), [self.checker])
        self.successResultOf(self.store.create_account("Alice", cheap().hash("password1"), T0))

    def login(self, name: str, password: str) -> Deferred[Any]:
        credentials = UsernamePassword(name.encode("utf-8"), password.encode("utf-8"))
        return self.portal.login(credentials, None, IAccount)

    def test_interfaces(self) -> None:
        """
        The checker provides L{ICredentialsChecker} and the realm L{IRealm}.
        """
        self.assertTrue(verifyObject(ICredentialsChecker, self.checker))
        self.assertTrue(verifyObject(IRealm, AccountRealm()))

    def test_success(self) -> None:
        """
        The right password gives an L{Account} avatar named as registered, whatever case was typed.
        """
        for typed in ["Alice", "alice", "ALICE"]:
            interface, avatar, logout = self.successResultOf(self.login(typed, "password1"))
            self.assertIs(interface, IAccount)
            self.assertEqual(avatar, Account("Alice"))
            self.assertTrue(IAccount.providedBy(avatar))
            self.assertIsNone(logout())

    def test_non_ascii_name(self) -> None:
        """
        Names travel as UTF-8 through cred and come back as C{str}.
        """
        self.successResultOf(self.store.create_account("Zoë", cheap().hash("password1"), T0))
        _, avatar, _ = self.successResultOf(self.login("zoë", "password1"))
        self.assertEqual(avatar, Account("Zoë"))

    def test_wrong_password(self) -> None:
        """
        A wrong password fails with L{UnauthorizedLogin}.
        """
        self.failureResultOf(self.login("alice", "password2"), UnauthorizedLogin)

    def test_unknown_nick(self) -> None:
        """
        An unknown nick fails with L{UnauthorizedLogin}.
        """
        self.failureResultOf(self.login("mallory", "password1"), UnauthorizedLogin)

    def test_busy_is_not_unauthorized(self) -> None:
        """
        When the hasher is full the login fails with L{errors.Busy}, not L{UnauthorizedLogin}.
        """
        self.hasher.limit = 0
        self.failureResultOf(self.login("alice", "password1"), errors.Busy)

    def test_rehash_old_parameters(self) -> None:
        """
        A hash made with old parameters is replaced by one with today's at a successful login.
        """
        self.successResultOf(self.store.create_account("Bob", older().hash("password1"), T0))
        _, avatar, _ = self.successResultOf(self.login("BOB", "password1"))
        self.assertEqual(avatar, Account("Bob"))
        record = self.successResultOf(self.store.account("bob"))
        assert record is not None
        self.assertTrue(record.password.startswith(CHEAP_PREFIX), record.password)
        self.assertEqual((record.name, record.created), ("Bob", T0))
        self.assertTrue(cheap().verify(record.password, "password1"))

    def test_no_rehash_of_current_or_on_failure(self) -> None:
        """
        A current hash is kept, and a failed login never replaces an old one.
        """
        before = self.successResultOf(self.store.account("alice"))
        self.successResultOf(self.login("alice", "password1"))
        self.assertEqual(self.successResultOf(self.store.account("alice")), before)
        old = older().hash("password1")
        self.successResultOf(self.store.create_account("Bob", old, T0))
        self.failureResultOf(self.login("bob", "password2"), UnauthorizedLogin)
        record = self.successResultOf(self.store.account("bob"))
        assert record is not None
        self.assertEqual(record.password, old)

    def test_realm_only_account_avatars(self) -> None:
        """
        The realm refuses any interface but L{IAccount}.
        """

        class IOther(Interface):
            pass

        self.assertRaises(NotImplementedError, AccountRealm().requestAvatar, b"Alice", None, IOther)
        self.failureResultOf(
            self.portal.login(UsernamePassword(b"alice", b"password1"), None, IOther), NotImplementedError
        )


class LoginLimiterTests(SynchronousTestCase):
    """
    L{LoginLimiter}: failed logins per nick and per address, with literal times.
    """

    def setUp(self) -> None:
        self.limiter = LoginLimiter()

    def fail_logins(self, nick: str, address: str, count: int, now: float = T0) -> None:
        for _ in range(count):
            self.limiter.check(nick, address, now)
            self.limiter.failed(nick, address, now)

    def wait_in(self, error: errors.AuthFailed, what: str) -> int:
        """
        The seconds an L{errors.AuthFailed} from the limiter says to wait.
        """
        match = re.fullmatch(rf"too many failed logins {what}: try again in (\d+) s", str(error))
        assert match is not None, str(error)
        return int(match.group(1))

    def test_defaults(self) -> None:
        """
        5 failures per nick then one a minute; 20 per address then one every 10 s.
        """
        self.assertEqual(NICK_FAILURES, (5, 1 / 60))
        self.assertEqual(ADDRESS_FAILURES, (20, 1 / 10))

    def test_nick_burst(self) -> None:
        """
        After 5 failures for a nick (any case) it is refused from any address, saying to wait 61 s.
        """
        self.fail_logins("alice", "192.0.2.1", 4)
        self.limiter.check("alice", "192.0.2.1", T0)
        self.fail_logins("ALICE", "192.0.2.2", 1)
        for nick, address in [("alice", "192.0.2.1"), ("Alice", "198.51.100.9")]:
            error = self.assertRaises(errors.AuthFailed, self.limiter.check, nick, address, T0)
            self.assertEqual(self.wait_in(error, f"for {nick}"), 61)
            self.assertEqual(error.code, "auth-failed")
        self.limiter.check("bob", "192.0.2.1", T0)

    def test_address_burst(self) -> None:
        """
        After 20 failures from an address it is refused for any nick, saying to wait 11 s.
        """
        for index in range(20):
            self.fail_logins(f"user{index}", "192.0.2.1", 1)
        error = self.assertRaises(errors.AuthFailed, self.limiter.check, "newcomer", "192.0.2.1", T0)
        self.assertEqual(self.wait_in(error, "from your address"), 11)
        self.limiter.check("newcomer", "192.0.2.2", T0)

    def test_recovery(self) -> None:
        """
        A blocked nick recovers one attempt a minute; the wait announced shrinks as time passes.
        """
        self.fail_logins("alice", "192.0.2.1", 5)
        error = self.assertRaises(errors.AuthFailed, self.limiter.check, "alice", "192.0.2.1", T0 + 30)
        self.assertEqual(self.wait_in(error, "for alice"), 31)
        self.limiter.check("alice", "192.0.2.1", T0 + 60)
        self.limiter.failed("alice", "192.0.2.1", T0 + 60)
        error = self.assertRaises(errors.AuthFailed, self.limiter.check, "alice", "192.0.2.1", T0 + 61)
        self.assertEqual(self.wait_in(error, "for alice"), 60)
        self.limiter.check("alice", "192.0.2.1", T0 + 120)

    def test_address_recovery(self) -> None:
        """
        A blocked address recovers one attempt every 10 s.
        """
        for index in range(20):
            self.fail_logins(f"user{index}", "192.0.2.1", 1)
        self.assertRaises(errors.AuthFailed, self.limiter.check, "bob", "192.0.2.1", T0 + 9)
        self.limiter.check("bob", "192.0.2.1", T0 + 10)

    def test_memory_bound(self) -> None:
        """
        At most C{max_entries} buckets of each kind are kept, however many nicks and addresses fail.
        """
        limiter = LoginLimiter(max_entries=3)
        for index in range(50):
            limiter.failed(f"user{index}", f"192.0.2.{index}", T0 + index)
        self.assertLessEqual(len(limiter._nicks), 3)
        self.assertLessEqual(len(limiter._addresses), 3)

    def test_memory_bound_drops_recovered_first(self) -> None:
        """
        When full, the buckets that have recovered are dropped before those still blocking.
        """
        limiter = LoginLimiter(max_entries=2)
        limiter.failed("early", "192.0.2.1", T0)
        for _ in range(5):
            limiter.failed("blocked", "192.0.2.2", T0 + 100)
        limiter.failed("late", "192.0.2.3", T0 + 130)
        self.assertRaises(errors.AuthFailed, limiter.check, "blocked", "192.0.2.9", T0 + 130)
        self.assertNotIn("early", limiter._nicks)

    def test_reserve_counts_before_the_check(self) -> None:
        """
        Five attempts reserved for a nick and not yet answered refuse a sixth, from any address, saying to wait 61 s.
        """
        for index in range(5):
            self.limiter.reserve("alice", f"192.0.2.{index}", T0)
        for nick, address in [("alice", "192.0.2.0"), ("ALICE", "198.51.100.9")]:
            error = self.assertRaises(errors.AuthFailed, self.limiter.reserve, nick, address, T0)
            self.assertEqual(self.wait_in(error, f"for {nick}"), 61)
        self.limiter.reserve("bob", "192.0.2.0", T0)

    def test_refused_reservation_counts_nothing(self) -> None:
        """
        An attempt refused for its nick takes nothing from its address, and one refused for its address nothing from
        its nick.
        """
        for _ in range(5):
            self.limiter.reserve("alice", "192.0.2.1", T0)
        for _ in range(30):
            self.assertRaises(errors.AuthFailed, self.limiter.reserve, "alice", "198.51.100.9", T0)
        for index in range(20):
            self.limiter.reserve(f"user{index}", "198.51.100.9", T0)
        error = self.assertRaises(errors.AuthFailed, self.limiter.reserve, "bob", "198.51.100.9", T0)
        self.assertEqual(self.wait_in(error, "from your address"), 11)
        for _ in range(5):
            self.limiter.reserve("bob", "203.0.113.1", T0)

    def test_refund(self) -> None:
        """
        A refunded attempt is given back: attempts reserved and refunded one after another never lock anyone.
        """
        for _ in range(50):
            self.limiter.reserve("alice", "192.0.2.1", T0).refund(T0)
        for _ in range(5):
            self.limiter.reserve("alice", "192.0.2.1", T0)
        self.assertRaises(errors.AuthFailed, self.limiter.reserve, "alice", "192.0.2.1", T0)

    def test_refund_once(self) -> None:
        """
        Refunding one reservation twice gives back one attempt, not two.
        """
        first = self.limiter.reserve("alice", "192.0.2.1", T0)
        self.limiter.reserve("alice", "192.0.2.1", T0)
        first.refund(T0)
        first.refund(T0)
        for _ in range(4):
            self.limiter.reserve("alice", "192.0.2.1", T0)
        self.assertRaises(errors.AuthFailed, self.limiter.reserve, "alice", "192.0.2.1", T0)

    def test_debt_capped_at_one_period(self) -> None:
        """
        However many failures are counted at once, a nick waits at most 60 s and an address at most 10 s.
        """
        self.limiter.failed("bob", "198.51.100.9", T0)
        for _ in range(60):
            self.limiter.failed("alice", "192.0.2.1", T0)
        error = self.assertRaises(errors.AuthFailed, self.limiter.check, "alice", "198.51.100.9", T0)
        self.assertEqual(self.wait_in(error, "for alice"), 61)
        error = self.assertRaises(errors.AuthFailed, self.limiter.check, "bob", "192.0.2.1", T0)
        self.assertEqual(self.wait_in(error, "from your address"), 11)
        self.limiter.check("bob", "192.0.2.1", T0 + 10)
        self.assertRaises(errors.AuthFailed, self.limiter.check, "alice", "198.51.100.9", T0 + 59)
        self.limiter.reserve("alice", "198.51.100.9", T0 + 60)


class AttemptBucketTests(SynchronousTestCase):
    """
    L{AttemptBucket}: a token bucket that never goes below empty, with literal times.
    """

    def test_never_below_empty(self) -> None:
        """
        Taken from when empty, the bucket stays empty: the wait is one period from the last take, never more.
        """
        bucket = AttemptBucket(1 / 60, 5, T0)
        for _ in range(100):
            bucket.take(T0)
        self.assertEqual(bucket.wait(T0), 60.0)
        self.assertEqual(bucket.wait(T0 + 30), 30.0)
        bucket.take(T0 + 30)
        self.assertEqual(bucket.wait(T0 + 30), 60.0)
        self.assertEqual(bucket.wait(T0 + 90), 0.0)

    def test_give_back_up_to_burst(self) -> None:
        """
        C{give_back} returns an attempt, but never fills the bucket beyond its burst.
        """
        bucket = AttemptBucket(1 / 60, 2, T0)
        bucket.take(T0)
        bucket.take(T0)
        self.assertGreater(bucket.wait(T0), 0)
        bucket.give_back(T0)
        self.assertEqual(bucket.wait(T0), 0.0)
        bucket.give_back(T0)
        bucket.give_back(T0)
        self.assertTrue(bucket.full(T0))
        bucket.take(T0)
        bucket.take(T0)
        self.assertGreater(bucket.wait(T0), 0)


class AccountsTests(SynchronousTestCase):
    """
    The L{Accounts} facade over a L{MemoryStore}, with a L{Clock} for failure delays.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.store = MemoryStore()
        self.hasher = inline()
        self.accounts = Accounts(self.store, self.hasher, self.clock)
        self.successResultOf(self.accounts.create("Alice", "password1", T0))

    def test_create(self) -> None:
        """
        C{create} stores the account with its spelling, time and an argon2id hash of the password.
        """
        record = self.successResultOf(self.store.account("ALICE"))
        assert record is not None
        self.assertEqual((record.name, record.created), ("Alice", T0))
        self.assertTrue(record.password.startswith(CHEAP_PREFIX), record.password)
        self.assertTrue(cheap().verify(record.password, "password1"))
        self.assertEqual(self.store.account_names(), {"alice": "Alice"})

    def test_create_short_password(self) -> None:
        """
        C{create} with a password of fewer than 8 characters fails with L{errors.BadArguments}, storing nothing.
        """
        self.failureResultOf(self.accounts.create("bob", "short", T0), errors.BadArguments)
        self.assertIsNone(self.successResultOf(self.store.account("bob")))

    def test_create_existing(self) -> None:
        """
        C{create} of an existing name, in any case, fails with L{errors.NickRegistered}, keeping the old password.
        """
        failure = self.failureResultOf(self.accounts.create("ALICE", "password2", T0), errors.NickRegistered)
        self.assertEqual(str(failure.value), "ALICE is registered already")
        self.successResultOf(self.accounts.login("alice", "password1", "127.0.0.1"))

    def test_create_busy(self) -> None:
        """
        C{create} fails with L{errors.Busy} when the hasher is full.
        """
        self.hasher.limit = 0
        self.failureResultOf(self.accounts.create("bob", "password1", T0), errors.Busy)

    def test_login(self) -> None:
        """
        C{login} fires at once with the L{Account} named as registered.
        """
        self.assertEqual(self.successResultOf(self.accounts.login("aLiCe", "password1", "127.0.0.1")), Account("Alice"))

    def test_login_failure_delayed(self) -> None:
        """
        A wrong password fails with L{errors.AuthFailed} only after L{FAILURE_DELAY} (1 s).
        """
        self.assertEqual(FAILURE_DELAY, 1.0)
        for name, password in [("alice", "password2"), ("mallory", "password1")]:
            attempt = self.accounts.login(name, password, "127.0.0.1")
            self.assertNoResult(attempt)
            self.clock.advance(0.999)
            self.assertNoResult(attempt)
            self.clock.advance(0.001)
            failure = self.failureResultOf(attempt, errors.AuthFailed)
            self.assertEqual(str(failure.value), "wrong nick or password")

    def test_login_too_many_failures(self) -> None:
        """
        After 5 failures the nick is refused at once, even with the right password.
        """
        for _ in range(5):
            attempt = self.accounts.login("alice", "wrong-password", "192.0.2.1")
            self.clock.advance(FAILURE_DELAY)
            self.failureResultOf(attempt, errors.AuthFailed)
        failure = self.failureResultOf(self.accounts.login("alice", "password1", "198.51.100.2"), errors.AuthFailed)
        self.assertRegex(str(failure.value), r"^too many failed logins for alice: try again in \d+ s$")
        self.clock.advance(60)
        self.successResultOf(self.accounts.login("alice", "password1", "198.51.100.2"))

    def test_login_busy(self) -> None:
        """
        C{login} fails with L{errors.Busy} at once when the hasher is full, and that is no failed login.
        """
        self.hasher.limit = 0
        for _ in range(6):
            self.failureResultOf(self.accounts.login("alice", "password1", "192.0.2.1"), errors.Busy)
        self.hasher.limit = 64
        self.successResultOf(self.accounts.login("alice", "password1", "192.0.2.1"))

    def test_change_password(self) -> None:
        """
        C{change_password} with the right old password replaces it: the new one logs in, the old one not.
        """
        self.successResultOf(self.accounts.change_password("alice", "password1", "new-password!", "127.0.0.1"))
        self.successResultOf(self.accounts.login("alice", "new-password!", "127.0.0.1"))
        attempt = self.accounts.login("alice", "password1", "127.0.0.1")
        self.clock.advance(FAILURE_DELAY)
        self.failureResultOf(attempt, errors.AuthFailed)

    def test_change_password_wrong_old(self) -> None:
        """
        A wrong old password fails with L{errors.AuthFailed} after the delay, and changes nothing.
        """
        attempt = self.accounts.change_password("alice", "password2", "new-password!", "127.0.0.1")
        self.assertNoResult(attempt)
        self.clock.advance(FAILURE_DELAY)
        self.failureResultOf(attempt, errors.AuthFailed)
        self.successResultOf(self.accounts.login("alice", "password1", "127.0.0.1"))

    def test_change_password_short_new(self) -> None:
        """
        A new password that is too short fails with L{errors.BadArguments} at once, changing nothing.
        """
        self.failureResultOf(
            self.accounts.change_password("alice", "password1", "short", "127.0.0.1"), errors.BadArguments
        )
        self.successResultOf(self.accounts.login("alice", "password1", "127.0.0.1"))


class ParallelLoginTests(SynchronousTestCase):
    """
    L{Accounts.login} with password checks that stay pending until the test fires them, as when many logins arrive
    at once: the limits count an attempt before its password is checked.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.store = MemoryStore()
        self.successResultOf(self.store.create_account("Alice", "encoded", T0))
        self.pending = PendingHasher()
        self.hasher = PasswordHasher(None, hasher=cast(argon2.PasswordHasher, self.pending))
        self.accounts = Accounts(self.store, self.hasher, self.clock)

    def wait_in(self, error: BaseException) -> int:
        """
        The seconds a refusal for C{alice} says to wait.
        """
        match = re.fullmatch(r"too many failed logins for alice: try again in (\d+) s", str(error))
        assert match is not None, str(error)
        return int(match.group(1))

    def test_parallel_guesses_reach_the_hasher_at_most_five(self) -> None:
        """
        60 guesses for one nick sent at once from two addresses: 5 passwords are checked, 55 are refused at once.
        """
        attempts = [
            self.accounts.login("alice", f"guess-{index}", f"192.0.2.{index % 2}") for index in range(60)
        ]
        self.assertEqual(len(self.pending.calls), 5)
        for attempt in attempts[:5]:
            self.assertNoResult(attempt)
        for attempt in attempts[5:]:
            self.assertEqual(self.wait_in(self.failureResultOf(attempt, errors.AuthFailed).value), 61)

    def test_owner_waits_at_most_one_period_after_a_burst(self) -> None:
        """
        After a burst of 60 failed guesses, the owner from an address with no failures waits at most 60 s.
        """
        attempts = [
            self.accounts.login("alice", f"guess-{index}", f"192.0.2.{index % 2}") for index in range(60)
        ]
        for call in list(self.pending.calls):
            call.callback(False)
        self.clock.advance(FAILURE_DELAY)
        for attempt in attempts:
            self.failureResultOf(attempt, errors.AuthFailed)
        refused = self.failureResultOf(self.accounts.login("alice", "password1", "203.0.113.5"), errors.AuthFailed)
        self.assertLessEqual(self.wait_in(refused.value), 60)
        self.clock.advance(60 - FAILURE_DELAY)
        owner = self.accounts.login("alice", "password1", "203.0.113.5")
        self.pending.calls[-1].callback(True)
        self.assertEqual(self.successResultOf(owner), Account("Alice"))

    def test_attempts_in_flight_count(self) -> None:
        """
        While 5 logins for a nick are being checked a sixth is refused, right password or not; once they succeed the
        next is checked at once.
        """
        attempts = [self.accounts.login("alice", "password1", "192.0.2.1") for _ in range(5)]
        self.failureResultOf(self.accounts.login("alice", "password1", "198.51.100.9"), errors.AuthFailed)
        self.assertEqual(len(self.pending.calls), 5)
        for call in self.pending.calls:
            call.callback(True)
        for attempt in attempts:
            self.assertEqual(self.successResultOf(attempt), Account("Alice"))
        self.assertNoResult(self.accounts.login("alice", "password1", "198.51.100.9"))
        self.assertEqual(len(self.pending.calls), 6)

    def test_successful_logins_refunded(self) -> None:
        """
        Successful logins are given back: 20 in a row lock nobody, and 5 failures are still allowed after them.
        """
        for _ in range(20):
            attempt = self.accounts.login("alice", "password1", "192.0.2.1")
            self.pending.calls[-1].callback(True)
            self.successResultOf(attempt)
        for _ in range(5):
            attempt = self.accounts.login("alice", "wrong-password", "192.0.2.1")
            self.pending.calls[-1].callback(False)
            self.clock.advance(FAILURE_DELAY)
            self.assertEqual(str(self.failureResultOf(attempt, errors.AuthFailed).value), "wrong nick or password")
        self.failureResultOf(self.accounts.login("alice", "password1", "192.0.2.1"), errors.AuthFailed)
        self.assertEqual(len(self.pending.calls), 25)

    def test_store_failure_refunded(self) -> None:
        """
        A login that fails for another reason than a wrong password (the store failed) is no failed login.
        """
        self.store.account = lambda name: Deferred.fromCoroutine(self._broken())  # type: ignore[method-assign]
        for _ in range(10):
            self.failureResultOf(self.accounts.login("alice", "password1", "192.0.2.1"), RuntimeError)
        del self.store.account
        attempt = self.accounts.login("alice", "password1", "192.0.2.1")
        self.pending.calls[-1].callback(True)
        self.assertEqual(self.successResultOf(attempt), Account("Alice"))

    async def _broken(self) -> None:
        raise RuntimeError("the store is unreachable")

    def test_burst_bounded_by_hasher_limit(self) -> None:
        """
        200 logins to 200 accounts at once: C{limit} (64) are checked, the others get L{errors.Busy} at once and are
        not counted as failures.
        """
        for index in range(200):
            self.successResultOf(self.store.create_account(f"user{index}", "encoded", T0))
        attempts = [
            self.accounts.login(f"user{index}", "password1", f"192.0.2.{index // 10}") for index in range(200)
        ]
        self.assertEqual(self.hasher.limit, 64)
        self.assertEqual(len(self.pending.calls), 64)
        for attempt in attempts[64:]:
            self.failureResultOf(attempt, errors.Busy)
        for call in self.pending.calls:
            call.callback(True)
        for index, attempt in enumerate(attempts[:64]):
            self.assertEqual(self.successResultOf(attempt), Account(f"user{index}"))
        retried = [self.accounts.login(f"user{index}", "password1", "192.0.2.19") for index in range(180, 200)]
        self.assertEqual(len(self.pending.calls), 84)
        for call in self.pending.calls[64:]:
            call.callback(True)
        for index, attempt in zip(range(180, 200), retried, strict=True):
            self.assertEqual(self.successResultOf(attempt), Account(f"user{index}"))

# -*- test-case-name: tests.test_accounts -*-
"""
Accounts (PROTOCOL.md sections 3.3, 4 and 7) with C{twisted.cred}: a
L{Portal} over an L{AccountRealm}, whose avatars are L{Account}s, and an
L{AccountChecker} that verifies passwords against the store.

Passwords are hashed with argon2id (argon2-cffi) using OWASP's password
storage parameters (19 MiB of memory, 2 iterations, 1 lane), on a small
thread pool of its own: hashing never runs on the reactor thread, and a
flood of logins waits in a bounded queue instead of taking all memory.
Login attempts are limited per nick and per address (L{LoginLimiter}): each
is counted before its password is checked, and given back if it succeeds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import argon2
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IAddress, IReactorFromThreads, IReactorTime
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from typing_extensions import override
from zope.interface import Attribute, Interface, implementer

from chat import errors
from chat.counts import COUNTS
from chat.limits import TokenBucket
from chat.storage import AccountExists, IStore

PASSWORD_MIN = 8
"""The shortest password accepted, in characters (OWASP, NIST SP 800-63B)."""
PASSWORD_MAX = 256
"""The longest password accepted, in characters."""

FAILURE_DELAY = 1.0
"""Seconds before a failed login is answered."""
NICK_FAILURES = (5, 1 / 60)
"""Failed logins allowed for one nick: a burst, then this many per second
(one period, the longest a nick ever waits, is 60 s)."""
ADDRESS_FAILURES = (20, 1 / 10)
"""Failed logins allowed from one address: a burst, then this many per second
(one period, the longest an address ever waits, is 10 s)."""


def owasp_hasher() -> argon2.PasswordHasher:
    """
    An argon2id hasher with OWASP's minimum parameters (Password Storage
    Cheat Sheet): m = 19 MiB, t = 2, p = 1.
    """
    return argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def check_password(password: str) -> None:
    """
    Apply the rules for a new password.

    @raise errors.BadArguments: it is shorter than L{PASSWORD_MIN} or
        longer than L{PASSWORD_MAX} characters, or holds a space or a
        control character (which C{/login} could not send).
    """
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX or not password.isprintable() or " " in password:
        raise errors.BadArguments(
            f"a password is {PASSWORD_MIN} to {PASSWORD_MAX} characters, without spaces"
        )


def is_local(address: IAddress) -> bool:
    """
    Whether C{address} is this machine: a loopback IP address or a UNIX
    socket. Plaintext authentication from it is allowed (PROTOCOL.md
    section 7).
    """
    if isinstance(address, UNIXAddress):
        return True
    if isinstance(address, (IPv4Address, IPv6Address)):
        return is_loopback(address.host)
    return False


@lru_cache(maxsize=4096)
def is_loopback(host: str) -> bool:
    """
    Whether C{host}, an IP address as a transport reports it, is a loopback
    address (also IPv4-mapped, or with an IPv6 C{%scope}); cached, as
    every connection asks.
    """
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


class PasswordHasher:
    """
    argon2id hashing and verification on a thread pool of its own.

    @ivar limit: how many hashes may be running or waiting at once; beyond
        it requests fail with L{errors.Busy}.
    """

    def __init__(
        self,
        reactor: IReactorFromThreads | None,
        threads: int = 2,
        limit: int = 64,
        hasher: argon2.PasswordHasher | None = None,
    ) -> None:
        """
        @param reactor: the reactor the pool's threads report to; C{None}
            hashes inline, blocking (for tests and command-line tools).
        @param threads: hashes computed at once (each takes 19 MiB).
        @param hasher: argon2-cffi's hasher; L{owasp_hasher} by default.
        """
        self._reactor = reactor
        self._pool = None if reactor is None else ThreadPool(0, threads, name="chat-passwords")
        self._hasher = hasher or owasp_hasher()
        self.limit = limit
        self._busy = 0

    def start(self) -> None:
        if self._pool is not None:
            self._pool.start()

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.stop()

    def _call(self, function: Callable[..., Any], *args: object) -> Deferred[Any]:
        if self._busy >= self.limit:
            return fail(errors.Busy("the server is busy checking passwords; try again in a moment"))
        self._busy += 1
        if self._pool is None or self._reactor is None:
            done = maybeDeferred(function, *args)
        else:
            done = deferToThreadPool(self._reactor, self._pool, function, *args)

        def finished(result: object) -> object:
            self._busy -= 1
            return result

        return done.addBoth(finished)

    def hash(self, password: str) -> Deferred[str]:
        """
        Hash a password; fires with the encoded hash (C{$argon2id$...}).
        """
        return self._call(self._hasher.hash, password)

    def verify(self, encoded: str, password: str) -> Deferred[bool]:
        """
        Check a password against an encoded hash; fires with C{False} for a
        wrong password or an unreadable hash.
        """
        return self._call(self._verify, encoded, password)

    def _verify(self, encoded: str, password: str) -> bool:
        try:
            return self._hasher.verify(encoded, password)
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """
        Whether a hash was made with other parameters than today's.
        """
        try:
            return self._hasher.check_needs_rehash(encoded)
        except argon2.exceptions.InvalidHashError:
            return True


class IAccount(Interface):
    """
    The avatar of a logged-in user.
    """

    name = Attribute("C{str}: the account's name, as spelled when registered.")


@implementer(IAccount)
@dataclass(frozen=True)
class Account:
    name: str


@implementer(IRealm)
class AccountRealm:
    """
    Produces an L{Account} avatar for the account name the checker vouched for.
    """

    def requestAvatar(
        self, avatarId: bytes | tuple[()], mind: object, *interfaces: type[Interface]
    ) -> tuple[type[Interface], Account, Callable[[], None]]:
        """
        @param avatarId: the account's name in UTF-8, from L{AccountChecker}.
        """
        if IAccount in interfaces and isinstance(avatarId, bytes):
            return IAccount, Account(avatarId.decode("utf-8")), lambda: None
        raise NotImplementedError("chat offers only IAccount avatars")


@implementer(ICredentialsChecker)
class AccountChecker:
    """
    Checks a nick and password against the stored accounts. Fires with the
    account's name as registered, in UTF-8 (cred's avatar ids are bytes), or
    fails with L{UnauthorizedLogin}. A hash
    made with older parameters is replaced after a successful check.
    """

    credentialInterfaces = (IUsernamePassword,)
    _log = Logger()

    def __init__(self, store: IStore, hasher: PasswordHasher) -> None:
        self._store = store
        self._hasher = hasher

    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[bytes | tuple[()]]:
        return Deferred.fromCoroutine(self._check(credentials))

    async def _check(self, credentials: IUsernamePassword) -> bytes | tuple[()]:
        name = credentials.username.decode("utf-8")
        password = credentials.password.decode("utf-8")
        record = await self._store.account(name)
        if record is None:
            raise UnauthorizedLogin(f"no account {name}")
        if not await self._hasher.verify(record.password, password):
            raise UnauthorizedLogin(f"wrong password for {name}")
        if self._hasher.needs_rehash(record.password):
            rehashed = await self._hasher.hash(password)
            await self._store.set_password(name, rehashed)
            self._log.debug("rehashed the password of {name} with today's parameters", name=record.name)
        return record.name.encode("utf-8")


class AttemptBucket(TokenBucket):
    """
    A token bucket of login attempts: C{burst} attempts, refilled at C{rate}
    per second, that never goes below empty. Its debt is therefore capped at
    one period: once emptied, it holds an attempt again at most C{1 / rate}
    seconds later, however many attempts were taken from it. (The flood
    limit's L{TokenBucket} goes into debt instead.) Times are POSIX seconds
    given by the caller.
    """

    __slots__ = ()

    @override
    def take(self, now: float, tokens: float = 1.0) -> None:
        """
        Spend C{tokens} attempts; taken from an empty bucket it stays empty
        (its refill starts again from C{now}).
        """
        super().take(now, tokens)
        self._tokens = max(0.0, self._tokens)

    def give_back(self, now: float) -> None:
        """
        Return one attempt taken earlier, up to C{burst}.
        """
        super().take(now, -1.0)
        self._tokens = min(float(self.burst), self._tokens)


class Reservation:
    """
    One login attempt counted by L{LoginLimiter.reserve} against a nick and
    an address before the password is checked. A failed attempt leaves it
    spent; any other outcome hands it back with L{refund}.
    """

    __slots__ = ("_buckets", "_refunded")

    def __init__(self, buckets: tuple[AttemptBucket, ...]) -> None:
        self._buckets = buckets
        self._refunded = False

    def refund(self, now: float) -> None:
        """
        Give the attempt back to the nick's and the address's buckets; a
        second call does nothing.

        @param now: POSIX seconds.
        """
        if self._refunded:
            return
        self._refunded = True
        for bucket in self._buckets:
            bucket.give_back(now)


class LoginLimiter:
    """
    Counts login attempts in token buckets per nick (case-insensitive) and
    per address (PROTOCOL.md section 8): L{NICK_FAILURES} and
    L{ADDRESS_FAILURES}. An attempt is counted before its password is
    checked (L{reserve}) and given back if it did not fail, so attempts sent
    in parallel are limited like attempts sent one after another. While
    either bucket is empty, logins for that nick or from that address are
    refused without checking the password; a bucket is never more than
    empty, so nobody waits longer than one period. Memory stays bounded: at
    most C{max_entries} buckets of each kind, the recovered ones dropped
    first. Times are POSIX seconds given by the caller.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._nicks: dict[str, AttemptBucket] = {}
        self._addresses: dict[str, AttemptBucket] = {}
        self._max = max_entries

    def check(self, nick: str, address: str, now: float) -> None:
        """
        Refuse a login for C{nick} from C{address} that may not be tried now,
        counting nothing.

        @param address: the client's address as a string (an IP address or
            a UNIX socket path).
        @raise errors.AuthFailed: too many recent attempts for C{nick} or
            from C{address}; the message says how many seconds to wait
            (C{auth-failed}).
        """
        for buckets, key, what in (
            (self._nicks, nick.lower(), f"for {nick}"),
            (self._addresses, address, "from your address"),
        ):
            bucket = buckets.get(key)
            if bucket is not None:
                wait = bucket.wait(now)
                if wait > 0:
                    raise errors.AuthFailed(f"too many failed logins {what}: try again in {int(wait) + 1} s")

    def reserve(self, nick: str, address: str, now: float) -> Reservation:
        """
        Count an attempt to log in to C{nick} from C{address}, before its
        password is checked: one attempt is taken from both buckets, or from
        neither when the attempt is refused.

        @return: the attempt, to be refunded unless the password was wrong.
        @raise errors.AuthFailed: as L{check}.
        """
        self.check(nick, address, now)
        buckets = (
            self._bucket(self._nicks, nick.lower(), NICK_FAILURES, now),
            self._bucket(self._addresses, address, ADDRESS_FAILURES, now),
        )
        for bucket in buckets:
            bucket.take(now)
        return Reservation(buckets)

    def failed(self, nick: str, address: str, now: float) -> None:
        """
        Count a failed login for C{nick} from C{address} that was not
        reserved, even where the buckets are empty already (they stay
        empty: the debt is capped at one period).
        """
        self._bucket(self._nicks, nick.lower(), NICK_FAILURES, now).take(now)
        self._bucket(self._addresses, address, ADDRESS_FAILURES, now).take(now)

    def _bucket(
        self, buckets: dict[str, AttemptBucket], key: str, limits: tuple[int, float], now: float
    ) -> AttemptBucket:
        bucket = buckets.get(key)
        if bucket is None:
            self._bound(buckets, now)
            burst, rate = limits
            bucket = buckets[key] = AttemptBucket(rate, burst, now)
        return bucket

    def _bound(self, buckets: dict[str, AttemptBucket], now: float) -> None:
        if len(buckets) < self._max:
            return
        for key in [k for k, b in buckets.items() if b.full(now)]:
            del buckets[key]
        while len(buckets) >= self._max:
            del buckets[next(iter(buckets))]


class Accounts:
    """
    Account requests (PROTOCOL.md section 4: C{/register}, C{/login}, and
    C{/password}) over a store: the protocol calls these, then tells the
    domain. Every method returns a L{Deferred}; the errors listed fail it.
    """

    _log = Logger()

    def __init__(self, store: IStore, hasher: PasswordHasher, clock: IReactorTime) -> None:
        self._store = store
        self.hasher = hasher
        self._clock = clock
        self.portal = Portal(AccountRealm(), [AccountChecker(store, hasher)])
        self.limiter = LoginLimiter()

    def create(self, name: str, password: str, now: float) -> Deferred[None]:
        """
        Create the account C{name} with C{password}.

        @raise errors.BadArguments: the password breaks L{check_password}.
        @raise errors.NickRegistered: the account exists.
        @raise errors.Busy: too many passwords are being hashed.
        """
        return Deferred.fromCoroutine(self._create(name, password, now))

    async def _create(self, name: str, password: str, now: float) -> None:
        check_password(password)
        encoded = await self.hasher.hash(password)
        try:
            await self._store.create_account(name, encoded, now)
        except AccountExists:
            raise errors.NickRegistered(f"{name} is registered already") from None
        self._log.info("account {name} created", name=name)

    def login(self, name: str, password: str, address: str) -> Deferred[Account]:
        """
        Check C{password} for the account C{name}, asked from C{address}.

        The attempt is counted against the nick and the address before the
        password is checked (L{LoginLimiter.reserve}), and given back unless
        the password is wrong; the check runs on the hasher's threads, at
        most L{PasswordHasher.limit} at once.

        @param address: the client's address as a string.
        @return: fires with the L{Account} avatar.
        @raise errors.AuthFailed: wrong name or password (answered after
            L{FAILURE_DELAY} seconds), or too many recent attempts
            (answered at once, saying how many seconds to wait).
        @raise errors.Busy: too many passwords are being hashed (answered
            at once; not counted as a failed login).
        """
        return Deferred.fromCoroutine(self._login(name, password, address))

    async def _login(self, name: str, password: str, address: str) -> Account:
        reservation = self.limiter.reserve(name, address, self._clock.seconds())
        credentials = UsernamePassword(name.encode("utf-8"), password.encode("utf-8"))
        try:
            _, avatar, _ = await self.portal.login(credentials, None, IAccount)
        except UnauthorizedLogin:
            # The attempt stays counted.
            COUNTS.login_failures += 1
            self._log.info("failed login for {name} from {address}", name=name, address=address)
            await deferLater(self._clock, FAILURE_DELAY)
            raise errors.AuthFailed("wrong nick or password") from None
        except BaseException:
            # Not a wrong password (busy, the store failed): no failed login.
            reservation.refund(self._clock.seconds())
            raise
        reservation.refund(self._clock.seconds())
        assert isinstance(avatar, Account)
        return avatar

    def change_password(self, name: str, old: str, new: str, address: str) -> Deferred[None]:
        """
        Replace the password of the account C{name}, given the old one.

        @raise errors.BadArguments: the new password breaks L{check_password}.
        @raise errors.AuthFailed: C{old} is wrong (slowed down like a login).
        """
        return Deferred.fromCoroutine(self._change_password(name, old, new, address))

    async def _change_password(self, name: str, old: str, new: str, address: str) -> None:
        check_password(new)
        await self._login(name, old, address)
        encoded = await self.hasher.hash(new)
        if not await self._store.set_password(name, encoded):
            raise errors.AuthFailed(f"the account {name} no longer exists")
        self._log.info("password of {name} changed", name=name)

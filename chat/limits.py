# -*- test-case-name: tests.test_limits -*-
"""
Rate and connection limits of PROTOCOL.md section 8, shared by every front
end: the L{TokenBucket} of the flood limit (and of login attempts), the
per-address connection count L{AddressCounter} with the L{address_key}
that groups addresses, and the L{RefusalLog} that summarises its refusals;
and the process's own limit of open files (L{raise_descriptor_limit}).
"""

from __future__ import annotations

import ipaddress
import resource
from functools import lru_cache

from twisted.logger import Logger

REFUSAL_PERIOD = 60.0
"""Seconds over which the refusals from one address are summarised in one log line."""


DESCRIPTORS_CAP = 1 << 20
"""The most open files asked for when the hard limit is unlimited."""

DESCRIPTORS_RESERVED = 32
"""
Open files kept for other than connections (the log, the database, the
listening sockets, files being uploaded or downloaded), in the number of
connections the log line announces.
"""


def raise_descriptor_limit() -> tuple[int, int]:
    """
    Raise this process's soft limit of open files (C{RLIMIT_NOFILE}) to its
    hard limit (at most L{DESCRIPTORS_CAP}): each connection holds one, and
    a soft limit of 1024, the common default, would refuse connections long
    before memory runs out (issue 17). A limit that cannot be raised is left
    as it is.

    @return: the soft limit before and after, in open files.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = DESCRIPTORS_CAP if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, soft
        return soft, target
    return soft, soft


@lru_cache(maxsize=4096)
def address_key(address: str, ipv6_prefix: int) -> str:
    """
    The key under which a client address counts for the per-address limits
    (connections per address, failed logins): IPv6 addresses in one network
    of C{ipv6_prefix} bits count as one address, since a single client
    commonly holds a whole /64.

    @param address: an IP address as the transport reports it (IPv4,
        IPv6, IPv6 with a C{%scope}), or a UNIX socket path.
    @param ipv6_prefix: the prefix length, 0 to 128 (128: each address apart).
    @return: an IPv4 address (also for an IPv4-mapped IPv6 address, as a
        dual-stack listener reports IPv4 clients), an IPv6 network such as
        C{"2001:db8:1:2::/64"} (the scope kept after a C{%}), an IPv6
        address in its compressed form when C{ipv6_prefix} is 128, or
        C{address} as it is when it is no IP address (a UNIX path).
    @raise ValueError: C{ipv6_prefix} is not 0 to 128.

    Results are cached (the last 4,096 addresses): every connection and
    login asks, mostly for addresses seen before.
    """
    if not 0 <= ipv6_prefix <= 128:
        raise ValueError(f"an IPv6 prefix is 0 to 128 bits, not {ipv6_prefix}")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ipv6_prefix == 128:
        return str(ip)
    network = str(ipaddress.IPv6Network((ip.packed, ipv6_prefix), strict=False))
    return network if ip.scope_id is None else f"{network}%{ip.scope_id}"


MIN_WAIT = 0.001
"""The shortest wait L{TokenBucket.wait} gives, in seconds: the float time of
today's clocks steps by about 2.4e-7 s, so a shorter wait could schedule the
next look at the same instant, for ever."""


class TokenBucket:
    """
    The flood limit of PROTOCOL.md section 8: a burst of C{burst} tokens,
    then C{rate} tokens per second. A line is read once a token is left
    (L{wait}) and then L{take}s what it costs, which may be more than one
    token (a long line, say), leaving a debt the following lines wait for.
    Times are POSIX seconds given by the caller.
    """

    __slots__ = ("rate", "burst", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def _level(self, now: float) -> float:
        return min(self.burst, self._tokens + (now - self._stamp) * self.rate)

    def wait(self, now: float) -> float:
        """
        Seconds until a token is available; 0 when one is available now.
        """
        tokens = self._level(now)
        return 0.0 if tokens >= 1 else max((1 - tokens) / self.rate, MIN_WAIT)

    def take(self, now: float, tokens: float = 1.0) -> None:
        """
        Spend C{tokens} (one line's worth by default) for input being
        processed. Taken beyond what the bucket holds (for a line that
        cannot be held back, or one costing more than one token) it goes
        into debt.
        """
        self._tokens = self._level(now) - tokens
        self._stamp = now

    def full(self, now: float) -> bool:
        """
        Whether the bucket has refilled to its burst at C{now}.
        """
        return self._level(now) >= self.burst


class _Period:
    """
    The refusals from one address since C{start} (POSIX seconds).
    """

    __slots__ = ("start", "count")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0


class RefusalLog:
    """
    The log of refused connections, bounded under a connection flood: at
    most one line at C{info} per address (an L{address_key}) per C{period}
    seconds, with a count; each refusal beyond that is logged at C{debug}.

    The first refusal from an address is logged at once. The refusals that
    follow within C{period} seconds of it are counted and summarised in one
    line (C{"refused 57 connections from 203.0.113.7 in 60 s"}) once the
    period is over, written by the first call to L{refused} or L{sweep}
    after that (from any address); the next period then starts. An address
    that was refused no more in a whole period starts afresh.
    """

    _log = Logger()

    def __init__(self, limit: int, period: float = REFUSAL_PERIOD) -> None:
        """
        @param limit: the connections allowed per address, for the log.
        @param period: seconds over which refusals are summarised.
        """
        self.limit = limit
        self.period = period
        self._periods: dict[str, _Period] = {}
        """Each refused address's period under way, oldest first."""

    def refused(self, address: str, now: float) -> None:
        """
        Note one connection from C{address} refused at C{now} (POSIX seconds).
        """
        self.sweep(now)
        current = self._periods.get(address)
        if current is None:
            self._periods[address] = _Period(now)
            self._log.info(
                "refused a connection from {address}: {limit} connections from there already "
                "(--max-connections-per-ip); further refusals are summarised every {period:g} s",
                address=address, limit=self.limit, period=self.period,
            )
        else:
            current.count += 1
            self._log.debug("refused a connection from {address}", address=address)

    def sweep(self, now: float) -> None:
        """
        Summarise the periods over at C{now} (POSIX seconds): one line per
        address refused during its period, which then starts again; an
        address refused no more is forgotten.
        """
        periods = self._periods
        while periods:
            address = next(iter(periods))
            period = periods[address]
            if now < period.start + self.period:
                return
            del periods[address]
            if period.count:
                self._log.info(
                    "refused {count} connections from {address} in {period:g} s "
                    "(too many connections from there)",
                    count=period.count, address=address, period=self.period,
                )
                periods[address] = _Period(now)


class AddressCounter:
    """
    Connections per client address (C{--max-connections-per-ip}), keyed by
    the caller (see L{address_key}), with a L{RefusalLog} of the refusals.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.refusals = RefusalLog(limit)
        self._counts: dict[str, int] = {}

    def add(self, address: str, now: float | None = None) -> bool:
        """
        Count one more connection from C{address} (an L{address_key}).

        @param now: when, in POSIX seconds: a refusal is then noted in
            L{refusals}; without it a refusal is not logged.
        @return: C{False} when that puts the address over the limit (the
            connection is counted all the same: L{remove} it when it closes).
        """
        count = self._counts.get(address, 0) + 1
        self._counts[address] = count
        allowed = count <= self.limit
        if not allowed and now is not None:
            self.refusals.refused(address, now)
        return allowed

    def remove(self, address: str, now: float | None = None) -> None:
        """
        Forget one connection from C{address}.

        @param now: when, in POSIX seconds: the refusal summaries that are
            due are then written (L{RefusalLog.sweep}).
        """
        count = self._counts.pop(address, 1) - 1
        if count:
            self._counts[address] = count
        if now is not None:
            self.refusals.sweep(now)

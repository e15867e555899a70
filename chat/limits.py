# -*- test-case-name: tests.test_limits -*-
"""
Rate and connection limits of PROTOCOL.md section 8, shared by every front
end: the L{TokenBucket} of the flood limit (and of login attempts), and the
per-address connection count L{AddressCounter}.
"""

from __future__ import annotations


class TokenBucket:
    """
    The flood limit of PROTOCOL.md section 8: a burst of C{burst} lines, then
    C{rate} lines per second. Times are POSIX seconds given by the caller.
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
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, now: float) -> None:
        """
        Spend one token for a line being processed. Taken from an empty
        bucket (for a line that cannot be held back) it goes into debt.
        """
        self._tokens = self._level(now) - 1
        self._stamp = now

    def full(self, now: float) -> bool:
        """
        Whether the bucket has refilled to its burst at C{now}.
        """
        return self._level(now) >= self.burst


class AddressCounter:
    """
    Connections per client address (C{--max-connections-per-ip}).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def add(self, address: str) -> bool:
        """
        Count one more connection from C{address} (an IP or a UNIX path).

        @return: C{False} when that puts the address over the limit (the
            connection is counted all the same: L{remove} it when it closes).
        """
        count = self._counts.get(address, 0) + 1
        self._counts[address] = count
        return count <= self.limit

    def remove(self, address: str) -> None:
        """
        Forget one connection from C{address}.
        """
        count = self._counts.pop(address, 1) - 1
        if count:
            self._counts[address] = count

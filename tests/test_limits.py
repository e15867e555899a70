"""
Tests for L{chat.limits}: the token bucket of the flood limit and the
per-address connection count (PROTOCOL.md section 8).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from chat.limits import MIN_WAIT, AddressCounter, TokenBucket


class TokenBucketTests(SynchronousTestCase):
    """
    L{TokenBucket}: a burst, then a steady rate (PROTOCOL.md section 8).
    """

    def test_burst(self) -> None:
        """
        A burst of lines needs no wait; the line after it waits 1/rate seconds.
        """
        bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
        waits = []
        for _ in range(3):
            waits.append(bucket.wait(0.0))
            bucket.take(0.0)
        self.assertEqual(waits, [0.0, 0.0, 0.0])
        self.assertEqual(bucket.wait(0.0), 0.5)

    def test_rate(self) -> None:
        """
        After the burst, one line per 1/rate seconds needs no wait.
        """
        bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
        for _ in range(3):
            bucket.take(0.0)
        waits = []
        for t in (0.5, 1.0, 1.5):
            waits.append(bucket.wait(t))
            bucket.take(t)
        self.assertEqual(waits, [0.0, 0.0, 0.0])
        self.assertEqual(bucket.wait(1.5), 0.5)

    def test_partial_refill(self) -> None:
        """
        A line read early waits for the rest of its token.
        """
        bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
        for _ in range(3):
            bucket.take(0.0)
        self.assertEqual(bucket.wait(0.25), 0.25)

    def test_debt(self) -> None:
        """
        A token taken from an empty bucket (a line that cannot be held) is a
        debt the following lines wait for.
        """
        bucket = TokenBucket(rate=2.0, burst=1, now=0.0)
        bucket.take(0.0)
        bucket.take(0.0)
        self.assertEqual(bucket.wait(0.0), 1.0)

    def test_refill_capped_at_burst(self) -> None:
        """
        A long pause refills the bucket to its burst and no further.
        """
        bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
        for _ in range(3):
            bucket.take(0.0)
        for _ in range(3):
            self.assertEqual(bucket.wait(100.0), 0.0)
            bucket.take(100.0)
        self.assertEqual(bucket.wait(100.0), 0.5)

    def test_full(self) -> None:
        """
        full() is true exactly when the bucket has refilled to its burst.
        """
        bucket = TokenBucket(rate=2.0, burst=3, now=10.0)
        self.assertTrue(bucket.full(10.0))
        bucket.take(10.0)
        self.assertFalse(bucket.full(10.0))
        self.assertFalse(bucket.full(10.25))
        self.assertTrue(bucket.full(10.5))
        self.assertTrue(bucket.full(99.0))


class AddressCounterTests(SynchronousTestCase):
    """
    L{AddressCounter}: connections per address, up to a limit.
    """

    def test_limit(self) -> None:
        """
        Up to C{limit} connections from one address are allowed, the next is
        not, other addresses are counted apart, and a removal frees a place.
        """
        counter = AddressCounter(2)
        self.assertEqual([counter.add("192.0.2.1") for _ in range(3)], [True, True, False])
        self.assertTrue(counter.add("192.0.2.2"))
        counter.remove("192.0.2.1")
        counter.remove("192.0.2.1")
        self.assertTrue(counter.add("192.0.2.1"))
        self.assertFalse(counter.add("192.0.2.1"))


class MinimumWaitTests(SynchronousTestCase):
    """
    L{TokenBucket.wait} never gives a wait too short for a float clock to step.
    """

    def test_hair_under_one_token(self) -> None:
        """
        A bucket a rounding error short of a token waits L{MIN_WAIT}, not a
        wait the clock of today's timestamps cannot represent.
        """
        now = 1763733723.5
        bucket = TokenBucket(rate=50.0, burst=20, now=now)
        for _ in range(20):
            bucket.take(now)
        later = now + (1 - 1e-9) / 50.0
        self.assertEqual(bucket.wait(later), MIN_WAIT)
        self.assertGreater(later + bucket.wait(later), later)

# -*- test-case-name: tests.test_metrics -*-
"""
The daemon's event counters (PROTOCOL.md section 12): plain integers that
the front ends, the bus and the store bump where things happen, read by
L{chat.metrics} when C{/metrics} is scraped. A leaf module: the hot paths
import it, and it imports nothing of the daemon.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TypeVar

from twisted.internet.interfaces import IReactorTime

COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds, in seconds, of the store commit latency histogram's buckets (C{+Inf} follows)."""

_Result = TypeVar("_Result")


class Counts:
    """
    The daemon's event counters, plain integers bumped by one short line
    where the event happens (the cheapest hook: no lock, no label lookup),
    read by L{ChatCollector} at scrape time. They count for the whole
    process since it started: one daemon per process, so per daemon.

    @ivar bytes_in: bytes received from clients (the line front end's
        bytes, uploads included; the web front end's text frames, UTF-8).
    @ivar bytes_out: bytes of events written to clients by the outboxes
        (file downloads not included).
    @ivar room_messages: room messages published.
    @ivar private_messages: private messages published (a stored one again
        when its recipient logs in).
    @ivar deliveries: events handed to participants, one per recipient.
    @ivar flood_delays: times a connection's input was delayed by the flood limit.
    @ivar slow_readers: connections cut for not reading their output.
    @ivar login_failures: logins refused for a wrong nick or password.
    @ivar commit_buckets: store commits per bucket of L{COMMIT_BUCKETS}
        (not cumulative; the last counts those over the last bound).
    @ivar commit_seconds: the total time of those commits, in seconds.
    """

    __slots__ = (
        "bytes_in", "bytes_out", "room_messages", "private_messages", "deliveries",
        "flood_delays", "slow_readers", "login_failures", "commit_buckets", "commit_seconds",
    )

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.room_messages = 0
        self.private_messages = 0
        self.deliveries = 0
        self.flood_delays = 0
        self.slow_readers = 0
        self.login_failures = 0
        self.commit_buckets = [0] * (len(COMMIT_BUCKETS) + 1)
        self.commit_seconds = 0.0

    def commit(self, seconds: float) -> None:
        """
        Count one store commit (a group of writes) that took C{seconds}.
        """
        self.commit_buckets[bisect_left(COMMIT_BUCKETS, seconds)] += 1
        self.commit_seconds += seconds

    def timed(self, result: _Result, clock: IReactorTime, started: float) -> _Result:
        """
        A callback counting a commit started at C{started} (C{clock}'s
        seconds) as done now, passing C{result} on: added with
        C{addBoth(COUNTS.timed, clock, clock.seconds())} in the store's
        commit path.
        """
        self.commit(max(0.0, clock.seconds() - started))
        return result


COUNTS = Counts()
"""The counters of this process."""

"""
How the PostgreSQL store should talk to the database (issue 23): three
pools under the store's own workload, in one run.

The variants, each in a child process of its own (this script run again
with C{--only VARIANT}), on a PostgreSQL server of the run (L{tests.servers}:
a real server on a free port of 127.0.0.1, run with C{fsync=off}), its
database emptied (schema dropped and migrated again) before each:

  - C{thread}: the daemon's L{chat.postgres_store.PsycopgPool}: one psycopg
    connection held by C{psycopg_pool.ConnectionPool} (which checks it with
    an empty statement before each use: one more round trip per
    transaction) and used from a thread of its own. The store is the real
    L{chat.postgres_store.PostgresStore}, opened by C{open_postgres_store}.
  - C{adbapi}: Twisted's C{adbapi.ConnectionPool("psycopg", dsn, cp_min=1,
    cp_max=1)} (one connection, one thread: interactions stay in order;
    C{cp_reconnect} as C{--adbapi-reconnect} says, adbapi's default off),
    given to the same C{open_postgres_store} as its C{make_pool}.
  - C{asyncio}: one psycopg C{AsyncConnection} on Twisted's asyncio reactor
    (installed first thing in the child), reconnected when found closed or
    broken, no check before use. The store is again the real
    C{PostgresStore} from C{open_postgres_store}, on L{AsyncPool}, which
    runs the store's own synchronous interactions without a thread: each
    runs first on a recording cursor (L{Replay}), the statements it asked
    for are sent on the async connection up to the first result it needs
    (awaited: C{Deferred.fromFuture} of an asyncio task), and it runs again
    with that result, and so on; one interaction at a time, in order, under
    a lock. The group write is so the store's own (numbering, then one
    C{executemany} per run of the same statement), with the same round trips.

The workload, the same for each, is the fan-out's store load: S senders
(C{--senders}, default 4) each add one room message (C{store.add(Message(...))}
with a provisional id, numbered as committed as the daemon's are,
C{--text-size} bytes of text) on every
reactor turn (a C{callLater(0)} chain), as long as that sender has fewer
than C{--window} (default 32) messages not yet committed, as the fan-out's
closed loop keeps its window in flight. The store does what it does in the
daemon: the messages of one turn gather into a group written on the next
turn, one transaction and one C{executemany}, while the next group gathers.
When every sender's window is full the turns stop until a commit comes back
(the reactor then waits in C{select} rather than spinning).

Measured over C{--seconds} (default 3) after the store opened, per variant:

  - msgs/s: messages whose commit was reported (the group's L{Deferred}
    fired) within the run, per second;
  - commits/s: groups committed within the run, per second; msgs/commit is
    their ratio (the group size);
  - p50, p99 (ms): commit latency, from C{store.add} to the group's
    callback, over every message committed (including those of the drain
    after the run, at most C{--drain} seconds);
  - failed: messages whose group failed (the store logged it); a run
    without C{--restart} should have none;
  - CPU %: CPU time of the child process (the reactor, and the pool's
    thread if any; not PostgreSQL's) over the run, as a share of one core;
    CPU us/msg: that CPU time per message stored, microseconds;
  - x msgs/s, x p50: the ratios of msgs/s and of p50 to C{thread}'s.

C{--restart} stops PostgreSQL (immediate shutdown) half-way through each
variant's run and starts it again at once (L{tests.servers.PostgresServer.restart},
which waits until it accepts connections), then prints what each variant
logged (warnings and errors, each distinct line once with its count), how
many messages failed, and the outage: from the first failed group to the
first commit after it (C{never recovered} if no commit came after it within
the run and the drain). The log lines are shown most frequent first, eight
at most (C{--verbose}: every child's whole log on stderr).

Run with the project's Python, from anywhere (the repository root, for
C{tests.servers}, is put on C{sys.path})::

    /work/venv/bin/python bench/postgres_pools.py --quick       # 1 s per variant
    /work/venv/bin/python bench/postgres_pools.py               # 3 s per variant
    /work/venv/bin/python bench/postgres_pools.py --repeat 5    # 5 runs each, taking turns
    /work/venv/bin/python bench/postgres_pools.py --restart --seconds 6

PostgreSQL (C{initdb}, C{postgres}; Debian package C{postgresql}) must be
installed; when it cannot start, the script says why on stderr, prints
C{SKIPPED}, and exits with status 0. A variant's child that fails or hangs
is reported as such in the table (and its stderr shown), the other
variants still run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The repository, whose C{tests.servers} starts PostgreSQL."""
VARIANTS = ("thread", "adbapi", "asyncio")
"""The pools compared, in the order they run and appear in the table; C{thread} is the reference."""
READY = "READY"
"""What a child prints on stdout (one line) once its store is open and the run begins."""
RESULT = "RESULT "
"""The prefix of the child's last stdout line, followed by its L{Result} as JSON."""
ROOM = "#bench"
"""The room every message goes to."""


@dataclass
class Result:
    """
    What one variant measured (a child's report to the parent).

    @ivar seconds: the length of the run, seconds (measured).
    @ivar cpu: CPU seconds the child (all its threads) used during the run.
    @ivar stored: messages committed within the run.
    @ivar commits: groups committed within the run.
    @ivar latencies_ms: add-to-commit latency of every message committed
        (run and drain), milliseconds, in the order committed.
    @ivar failed: messages whose group failed (run and drain).
    @ivar failed_groups: groups that failed.
    @ivar unfinished: messages neither committed nor failed when the drain ended.
    @ivar outage: seconds from the first failed group to the first commit
        after it; C{None} without failures, C{-1.0} if none came after.
    @ivar log: warnings and errors logged (Twisted's log), each distinct
        line with how many times it came.
    @ivar error: why the child could not measure, when it could not.
    """

    seconds: float = 0.0
    cpu: float = 0.0
    stored: int = 0
    commits: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0
    failed_groups: int = 0
    unfinished: int = 0
    outage: float | None = None
    log: list[tuple[str, int]] = field(default_factory=list)
    error: str = ""


def build_parser() -> argparse.ArgumentParser:
    """
    The command line (see the module docstring).
    """
    parser = argparse.ArgumentParser(
        description="The PostgreSQL store's group commit on three pools: the daemon's thread pool (PsycopgPool),"
        " Twisted's adbapi, and psycopg's AsyncConnection on the asyncio reactor; each variant in a child"
        " process, on a fresh database of a PostgreSQL server of its own (fsync=off). Prints messages and"
        " commits per second, commit latency p50/p99, the child's CPU, and ratios against 'thread';"
        " --restart restarts PostgreSQL half-way through each run and reports what each variant logged.",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each variant's run (default 3)")
    parser.add_argument("--quick", action="store_true", help="a short run: 1 s per variant (overrides --seconds)")
    parser.add_argument("--senders", type=int, default=4,
                        help="senders, each adding one message per reactor turn while its window has room (default 4)")
    parser.add_argument("--window", type=int, default=32,
                        help="messages each sender may have waiting for their commit (default 32)")
    parser.add_argument("--text-size", type=int, default=64, help="bytes of text per message (default 64)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of every variant, taking turns; the table shows each variant's run of median"
                        " msgs/s and the spread (default 1)")
    parser.add_argument("--drain", type=float, default=15.0,
                        help="seconds to wait after the run for the commits still on their way (default 15)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated variants to run, in this order (default {','.join(VARIANTS)})")
    parser.add_argument("--restart", action="store_true",
                        help="restart PostgreSQL half-way through each variant's run; report logs, failures, outage")
    parser.add_argument("--adbapi-reconnect", action="store_true",
                        help="give adbapi's pool cp_reconnect=True (its default, and this script's, is False)")
    parser.add_argument("--only", choices=VARIANTS, help="run this variant in this process against --dsn"
                        " and print its result as JSON (what the script runs its children with)")
    parser.add_argument("--dsn", help="with --only: the libpq connection string of an empty or migrated database")
    parser.add_argument("--verbose", action="store_true", help="children copy their whole log to stderr")
    return parser


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """
    Validate the options; return the variants to run.
    """
    if args.quick:
        args.seconds = 1.0
    if min(args.repeat, args.senders, args.window, args.text_size) < 1 or args.seconds <= 0 or args.drain < 0:
        parser.error("--seconds, --repeat, --senders, --window and --text-size must be positive, --drain not negative")
    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown or not variants:
        parser.error(f"unknown variants {unknown}: choose among {', '.join(VARIANTS)}")
    if args.only and not args.dsn:
        parser.error("--only needs --dsn")
    return variants


# The child: one variant.


class NeedResult(Exception):
    """
    L{Replay} was asked for a result it has not been given yet.
    """


class Replay:
    """
    A synchronous DB-API cursor for the store's interactions that talks to no
    database: it records the statements asked for, and answers C{fetchone},
    C{fetchall}, iteration and C{rowcount} from the results it was given, in
    order, raising L{NeedResult} for the first one it lacks (see
    L{AsyncPool._run}, which runs the interaction again once it has it).

    @ivar calls: the statements asked for, as C{(method, sql, params)}.
    @ivar reads: the kind of each result asked for, with the number of
        statements before it (C{("fetchone", 3)}).
    """

    def __init__(self, results: Sequence[Any]) -> None:
        self._results = results
        self.calls: list[tuple[str, str, Any]] = []
        self._used = 0
        self.needed = ""

    def execute(self, sql: str, params: Any = None) -> Replay:
        self.calls.append(("execute", sql, params))
        return self

    def executemany(self, sql: str, params: Any) -> None:
        self.calls.append(("executemany", sql, list(params)))

    def _result(self, kind: str) -> Any:
        if self._used < len(self._results):
            self._used += 1
            return self._results[self._used - 1]
        self.needed = kind
        raise NeedResult(kind)

    def fetchone(self) -> Any:
        return self._result("fetchone")

    def fetchall(self) -> Any:
        return self._result("fetchall")

    def __iter__(self) -> Any:
        return iter(self._result("fetchall"))

    @property
    def rowcount(self) -> int:
        count: int = self._result("rowcount")
        return count


class AsyncPool:
    """
    A L{chat.pooled_store.Pool} on one psycopg C{AsyncConnection}, for the
    asyncio reactor, that runs the store's own (synchronous) interactions:
    each runs as an asyncio task, one at a time in the order asked for, in a
    transaction committed when it returns and rolled back when it raises. An
    interaction is first run on a L{Replay} cursor; the statements it asked
    for are then sent on the async connection up to the first result it
    needs, which is awaited and given to it when it runs again, and so on
    (the interactions are deterministic: the same results, the same
    statements). The store's group write thus costs what it costs on the
    other pools: its reads and its writes, the writes of each run of the
    same statement in one C{executemany}. A connection found closed (the
    server went away) is replaced before the next interaction; there is no
    check before each use (C{psycopg_pool}'s costs a round trip).
    """

    def __init__(self, dsn: str) -> None:
        import asyncio

        self._dsn = dsn
        self._lock = asyncio.Lock()
        self._connection: Any = None
        self._closed = False

    def runInteraction(self, interaction: Callable[..., Any], *args: Any) -> Any:  # noqa: N802, RUF100 - the Pool protocol's (adbapi's) name
        import asyncio

        from twisted.internet.defer import Deferred

        return Deferred.fromFuture(asyncio.ensure_future(self._run(interaction, args)))

    async def _run(self, interaction: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        import psycopg

        async with self._lock:
            if self._closed:
                raise RuntimeError("the pool is closed")
            if self._connection is None or self._connection.closed:
                self._connection = None
                self._connection = await psycopg.AsyncConnection.connect(self._dsn, connect_timeout=10)
            connection = self._connection
            try:
                async with connection.cursor() as cursor:
                    result = await self._interact(cursor, interaction, args)
                await connection.commit()
            except BaseException:
                if not connection.closed:
                    try:
                        await connection.rollback()
                    except psycopg.Error:
                        pass
                raise
            return result

    @staticmethod
    async def _interact(cursor: Any, interaction: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        results: list[Any] = []
        sent = 0
        while True:
            replay = Replay(results)
            try:
                result = interaction(replay, *args)
            except NeedResult:
                needed = replay.needed
            else:
                needed = ""
            for method, sql, params in replay.calls[sent:]:
                await getattr(cursor, method)(sql, params)
            sent = len(replay.calls)
            if not needed:
                return result
            if needed == "rowcount":
                results.append(cursor.rowcount)
            else:
                results.append(await getattr(cursor, needed)())

    def close(self) -> None:
        import asyncio

        self._closed = True
        if self._connection is not None:
            asyncio.ensure_future(self._connection.close())


class Load:
    """
    The senders: each turn, every sender whose window has room adds one
    message; counts commits, failures and latencies.
    """

    def __init__(self, store: Any, reactor: Any, args: argparse.Namespace) -> None:
        from chat.events import Message
        from chat.ids import ProvisionalIds

        self._message = Message
        self._provisional = ProvisionalIds()
        self._store = store
        self._reactor = reactor
        self._senders = [f"s{i}" for i in range(args.senders)]
        self._window = args.window
        self._text = "x" * args.text_size
        self._in_flight = [0] * args.senders
        self._group: Any = None
        self._scheduled: Any = None
        self.running = False
        self.result = Result()
        self.failed_since: float | None = None
        self._began = 0.0
        self._cpu = 0.0

    def start(self) -> None:
        self._began = time.perf_counter()
        self._cpu = time.process_time()
        self.running = True
        self._schedule()

    def stop(self) -> None:
        self.running = False
        self.result.seconds = time.perf_counter() - self._began
        self.result.cpu = time.process_time() - self._cpu

    def waiting(self) -> int:
        return sum(self._in_flight)

    def _schedule(self) -> None:
        if self._scheduled is None and self.running:
            self._scheduled = self._reactor.callLater(0, self._turn)

    def _turn(self) -> None:
        self._scheduled = None
        if not self.running:
            return
        now = datetime.now(UTC)
        added = False
        for index, sender in enumerate(self._senders):
            if self._in_flight[index] >= self._window:
                continue
            id_ = self._provisional.next_id()  # numbered as committed, as the daemon's messages are
            added_at = time.perf_counter()
            group = self._store.add(self._message(id_, now, ROOM, sender, self._text))
            self._in_flight[index] += 1
            added = True
            if group is not self._group:
                self._group = group
                group.addBoth(self._group_done)
            group.addBoth(self._message_done, index, added_at)
        if added:
            self._schedule()

    def _group_done(self, result: object) -> object:
        from twisted.python.failure import Failure

        now = time.perf_counter()
        if isinstance(result, Failure):
            self.result.failed_groups += 1
            if self.failed_since is None:
                self.failed_since = now
        else:
            if self.running:
                self.result.commits += 1
            if self.failed_since is not None and self.result.outage is None:
                self.result.outage = now - self.failed_since
        return result

    def _message_done(self, result: object, index: int, added_at: float) -> object:
        from twisted.python.failure import Failure

        self._in_flight[index] -= 1
        if isinstance(result, Failure):
            self.result.failed += 1
        else:
            self.result.latencies_ms.append((time.perf_counter() - added_at) * 1000)
            if self.running:
                self.result.stored += 1
        self._schedule()
        return result


def run_child(variant: str, args: argparse.Namespace) -> int:
    """
    Measure one variant in this process; print L{READY} when the run
    begins and L{RESULT} with the JSON of its L{Result} at the end.
    """
    if variant == "asyncio":
        import asyncio

        from twisted.internet import asyncioreactor

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # for asyncio.ensure_future before the loop runs
        asyncioreactor.install(loop)
    from twisted.internet import reactor as global_reactor
    from twisted.internet.defer import Deferred, ensureDeferred
    from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogBeginner
    from twisted.python.failure import Failure
    from zope.interface import provider

    from chat import postgres_store

    reactor: Any = global_reactor
    logged: Counter[str] = Counter()

    @provider(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        level = event.get("log_level")
        text = " ".join((formatEvent(event) or "").split())
        if "log_failure" in event:
            text += " | " + " ".join(event["log_failure"].getErrorMessage().split())
        if args.verbose:
            print(f"[{variant}] {level.name if level else '?'}: {text}", file=sys.stderr)
        if level in (LogLevel.warn, LogLevel.error, LogLevel.critical) or "log_failure" in event:
            logged[text[:300]] += 1

    globalLogBeginner.beginLoggingTo([observe], redirectStandardIO=False)
    result = Result()

    def sleep(seconds: float) -> Deferred[None]:
        waited: Deferred[None] = Deferred()
        reactor.callLater(seconds, waited.callback, None)
        return waited

    async def measure() -> None:
        nonlocal result
        store: Any
        if variant == "thread":
            store = await open_postgres_store_d(reactor)
        elif variant == "adbapi":
            from twisted.enterprise import adbapi

            def make_pool(dsn: str) -> Any:
                return adbapi.ConnectionPool(
                    "psycopg", dsn, cp_min=1, cp_max=1, cp_reconnect=args.adbapi_reconnect,
                )

            store = await open_postgres_store_d(reactor, make_pool)
        else:
            store = await open_postgres_store_d(reactor, AsyncPool)
        load = Load(store, reactor, args)
        print(READY, flush=True)
        load.start()
        await sleep(args.seconds)
        load.stop()
        deadline = time.monotonic() + args.drain
        while load.waiting() and time.monotonic() < deadline:
            await sleep(0.01)
        result = load.result
        result.unfinished = load.waiting()
        if load.failed_since is not None and result.outage is None:
            result.outage = -1.0  # no commit after the first failure
        if not result.unfinished:
            try:
                await store.close()
            except Exception as error:  # noqa: BLE001 - reported with the figures, which still count
                logged["closing the store failed: " + " ".join(str(error).split())] += 1

    def open_postgres_store_d(reactor: Any, make_pool: Any = None) -> Deferred[Any]:
        return postgres_store.open_postgres_store(args.dsn, reactor, reactor, make_pool=make_pool)

    def finish(outcome: object) -> None:
        if isinstance(outcome, Failure):
            result.error = " ".join(outcome.getErrorMessage().split()) or repr(outcome.value)
        result.log = sorted(logged.items(), key=lambda item: -item[1])
        reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(measure()).addBoth(finish))
    reactor.run()
    print(RESULT + json.dumps(asdict(result)), flush=True)
    return 0


# The parent: the server and the table.


def load_servers() -> Any:
    """
    The repository's C{tests.servers}, the repository put on C{sys.path} first.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests import servers

    return servers


def run_variant(variant: str, server: Any, args: argparse.Namespace) -> tuple[Result, str]:
    """
    Empty the database, run one child, restart the server half-way if
    asked; return its result and a note (the restart's timing).
    """
    server.reset()
    argv = [
        sys.executable, str(Path(__file__).resolve()), "--only", variant, "--dsn", server.dsn,
        "--seconds", str(args.seconds), "--senders", str(args.senders), "--window", str(args.window),
        "--text-size", str(args.text_size), "--drain", str(args.drain),
    ]
    argv += ["--adbapi-reconnect"] * args.adbapi_reconnect + ["--verbose"] * args.verbose
    note = ""
    result: Result | None = None
    with tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=str(ROOT))
        assert child.stdout is not None
        # Opening, the run, the drain, closing: a child that takes far longer hangs.
        watchdog = threading.Timer(args.seconds + args.drain + 60, child.kill)
        watchdog.start()
        with child:
            for line in child.stdout:
                if line.strip() == READY and args.restart:
                    time.sleep(args.seconds / 2)
                    began = time.monotonic()
                    server.restart()
                    note = f"PostgreSQL restarted at {args.seconds / 2:g} s, back in {time.monotonic() - began:.2f} s"
                elif line.startswith(RESULT):
                    result = Result(**json.loads(line[len(RESULT):]))
        watchdog.cancel()
        stderr.seek(0)
        errors = stderr.read()
    if args.verbose and errors.strip():
        print(errors, file=sys.stderr, end="")
    if result is not None and not result.error and not result.seconds:
        result.error = f"the child ended (status {child.returncode}) before its run began"
    if result is None or (result.error and not result.seconds):
        tail = " | ".join(errors.strip().splitlines()[-8:])
        reason = result.error if result is not None else f"child exited with status {child.returncode} without a result"
        return Result(error=f"{reason}; its stderr: {tail or '(empty)'}"), note
    return result, note


def median_run(results: Sequence[Result]) -> Result:
    """
    The run of median msgs/s (the lower middle one of an even count); a
    failed run counts as 0 msgs/s.
    """
    ordered = sorted(results, key=lambda r: r.stored / r.seconds if r.seconds and not r.error else 0.0)
    return ordered[(len(ordered) - 1) // 2]


def percentile(values: Sequence[float], fraction: float) -> float:
    """
    The C{fraction} quantile of C{values} (nearest rank); NaN when empty.
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def print_table(results: dict[str, Result]) -> None:
    """
    The table of figures and the ratios against C{thread}.
    """
    header = ("variant", "msgs/s", "commits/s", "msgs/commit", "p50 ms", "p99 ms", "failed", "CPU %", "CPU us/msg",
              "x msgs/s", "x p50")
    print("  ".join(f"{cell:>10}" for cell in header))
    reference = results.get("thread")
    for variant, result in results.items():
        if result.error:
            print(f"{variant:>10}  failed: {result.error}")
            continue
        rate = result.stored / result.seconds
        commits = result.commits / result.seconds
        p50 = percentile(result.latencies_ms, 0.5)
        p99 = percentile(result.latencies_ms, 0.99)
        if reference is not None and not reference.error and reference.stored:
            ratio = f"{rate / (reference.stored / reference.seconds):.2f}"
            ratio_p50 = f"{p50 / percentile(reference.latencies_ms, 0.5):.2f}"
        else:
            ratio = ratio_p50 = "-"
        cells = (
            variant, f"{rate:.0f}", f"{commits:.0f}", f"{result.stored / max(1, result.commits):.1f}",
            f"{p50:.2f}", f"{p99:.2f}", str(result.failed), f"{100 * result.cpu / result.seconds:.0f}",
            f"{1e6 * result.cpu / max(1, result.stored):.0f}", ratio, ratio_p50,
        )
        print("  ".join(f"{cell:>10}" for cell in cells))


def print_restart(results: dict[str, Result], notes: dict[str, str]) -> None:
    """
    What each variant did around the restart: failures, outage, log lines.
    """
    for variant, result in results.items():
        if result.outage is None:
            outage = "no failure"
        elif result.outage < 0:
            outage = "never recovered"
        else:
            outage = f"{result.outage:.2f} s from the first failed group to the next commit"
        print(f"\n{variant}: {notes.get(variant, '')}; {result.failed} messages failed in {result.failed_groups}"
              f" groups; {result.unfinished} unfinished; outage: {outage}")
        for line, count in result.log[:8]:
            print(f"    {count:>6} x {line}")
        if len(result.log) > 8:
            print(f"    ... and {len(result.log) - 8} other distinct lines")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    variants = check_args(args, parser)
    if args.only:
        return run_child(args.only, args)
    servers = load_servers()
    try:
        server = servers.postgres()
    except unittest.SkipTest as error:
        print(f"SKIPPED: PostgreSQL cannot start: {error}", file=sys.stderr)
        print("SKIPPED")
        return 0
    import psycopg
    import psycopg_pool

    import twisted

    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, psycopg"
          f" {psycopg.__version__} (libpq {psycopg.pq.version()}), psycopg_pool {psycopg_pool.__version__},"
          f" Twisted {twisted.__version__}")
    print(f"# PostgreSQL on 127.0.0.1:{server.port} (fsync=off), started in {server.started_in:.1f} s;"
          f" {args.senders} senders, window {args.window}, {args.text_size}-byte texts, {args.seconds:g} s each"
          f"{'; restart half-way' if args.restart else ''}")
    runs: dict[str, list[Result]] = {variant: [] for variant in variants}
    notes: dict[str, str] = {}
    try:
        for _ in range(args.repeat):
            for variant in variants:
                result, notes[variant] = run_variant(variant, server, args)
                runs[variant].append(result)
    finally:
        server.shutdown()
    results = {variant: median_run(found) for variant, found in runs.items()}
    if args.repeat > 1:
        for variant, found in runs.items():
            rates = sorted(f"{r.stored / r.seconds:.0f}" if r.seconds else "failed" for r in found)
            print(f"# {variant}: msgs/s of the {len(found)} runs: {' '.join(rates)}")
    print_table(results)
    if args.restart:
        print_restart(results, notes)
    else:
        for variant, result in results.items():
            if result.failed or result.unfinished or result.log:
                print(f"# {variant}: {result.failed} failed, {result.unfinished} unfinished; log: {result.log[:4]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""
What durability costs: the fan-out benchmark of L{fanout} run twice in one
go, once on a daemon with C{--in-memory} history and once on a daemon that
stores every message in SQLite (WAL, C{synchronous=FULL}, group commit)
before delivering it, and the two compared.

For each N (C{-n}, default 100 and 1000) it runs the in-memory daemon first
(C{--storage-first} swaps the order), each in its own temporary directory,
so the SQLite daemon starts on a fresh C{--data-dir}. Both run the same
phases: the closed-loop C{max K=...} phases (default K = 8, 32 and 128: a
message waits for its commit, so more must be in flight to keep the SQLite
daemon busy), then the open-loop phases at the same absolute rates,
fractions of the first daemon's best C{max} rate, so their latencies
compare at equal load. It prints both full tables (with the CPU columns
that tell whether a run was disturbed), then a comparison: deliveries per
second of each and their ratio (SQLite over memory), latency p50 and p99 of
each and the difference, and the daemon's CPU per delivery. The verdict
compares the best C{max} rates: durability should cost under C{--budget}
(default 15%).

As a sanity check that storage was really on, it counts the rows of
C{data/chat.sqlite3} after the SQLite daemon has stopped (every message
sent should be there) and prints the database's file sizes while the daemon
ran and after it stopped; it checks that the in-memory daemon left no
database behind.

Run with the project's Python::

    /tmp/v/bin/python bench/storage.py                       # N = 100 and 1000, S = 4, about 3 minutes
    /tmp/v/bin/python bench/storage.py -n 1000 --seconds 5
    /tmp/v/bin/python bench/storage.py -n 1000 --load 0.1 --profile py-spy

Every option of L{fanout} applies (C{--help}); C{--profile} profiles an
extra phase of both daemons, and C{--keep-profile PATH} keeps their raw
profiles as C{PATH.memory} and C{PATH.sqlite}.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fanout import (
    Bench,
    Measurement,
    PhaseResult,
    build_parser,
    check_args,
    loads,
    measure,
    print_daemon,
    print_profile,
    print_table,
)

DATABASE = "chat.sqlite3"
"""The database's file name in the daemon's C{--data-dir} (C{chat.schema.FILENAME})."""
SUFFIXES = ("", "-wal", "-shm")
"""The database file and its write-ahead log and shared-memory index."""
MEMORY = "memory"
SQLITE = "sqlite"
WINDOWS = (8, 32, 128)
"""Default C{--window}s: with storage a message waits for its commit, so at
N = 100 the daemon is only CPU-bound from about K = 128."""
DISTURBED = 0.25
"""Share of a core used by other processes during a phase above which the run is flagged as disturbed."""


@dataclass
class Storage:
    """
    What the SQLite daemon left on disk.

    @ivar running: bytes of each database file (by suffix, see L{SUFFIXES})
        after the last phase, while the daemon still ran; absent files are
        left out.
    @ivar stopped: the same after the daemon stopped.
    @ivar rows: rows per table (C{messages}, C{private}) after the daemon
        stopped; empty if there was no database.
    @ivar last_id: the highest message id stored, or 0.
    """

    running: dict[str, int] = field(default_factory=dict)
    stopped: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    last_id: int = 0


def file_sizes(data_dir: Path) -> dict[str, int]:
    """
    Bytes of each database file present in C{data_dir}, keyed by suffix
    (C{""}, C{"-wal"}, C{"-shm"}).
    """
    sizes = {}
    for suffix in SUFFIXES:
        path = data_dir / (DATABASE + suffix)
        if path.exists():
            sizes[suffix] = path.stat().st_size
    return sizes


def count_rows(path: Path) -> tuple[dict[str, int], int]:
    """
    Rows in the C{messages} and C{private} tables of the database at
    C{path}, and the highest message id. Call it after the daemon stopped:
    opening the database may recreate its C{-wal} and C{-shm} files.
    """
    connection = sqlite3.connect(path)
    try:
        rows = {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("messages", "private")}
        last = connection.execute(
            "SELECT max(id) FROM (SELECT max(id) AS id FROM messages UNION ALL SELECT max(id) FROM private)"
        ).fetchone()[0]
    finally:
        connection.close()
    return rows, last or 0


def filesystem(path: Path) -> str:
    """
    The type and device of the file system holding C{path}, from
    C{/proc/mounts}, e.g. C{"ext4 on /dev/vda"}; C{"unknown"} if not found.
    """
    target = os.path.realpath(path)
    best, found = "", "unknown"
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                device, mount, kind = line.split()[:3]
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, found = mount, f"{kind} on {device}"
    except OSError:
        pass
    return found


def load_average() -> str:
    """
    The 1, 5 and 15 minute load averages of the machine, as in C{uptime}.
    """
    with open("/proc/loadavg") as averages:
        return " ".join(averages.read().split()[:3])


def sent(measurement: Measurement) -> int:
    """
    Messages the senders sent over every phase of C{measurement}, the
    profiled one included.
    """
    phases = [*measurement.results, *([measurement.profiled] if measurement.profiled else [])]
    return sum(r.sent for r in phases)


def per_delivery(result: PhaseResult) -> float:
    """
    The daemon's CPU microseconds per delivery in C{result} (NaN without
    deliveries).
    """
    return result.daemon_cpu_seconds / result.deliveries * 1e6 if result.deliveries else math.nan


def best_max(results: Sequence[PhaseResult]) -> PhaseResult | None:
    """
    The closed-loop C{max} phase with the most deliveries per second, or
    C{None} if there was none.
    """
    closed = [r for r in results if r.name.startswith("max ")]
    return max(closed, key=lambda r: r.rate, default=None)


def size(count: int) -> str:
    """
    A byte count for people: C{B}, C{KiB} or C{MiB}.
    """
    if count < 1024:
        return f"{count} B"
    if count < 1 << 20:
        return f"{count / 1024:.0f} KiB"
    return f"{count / (1 << 20):.1f} MiB"


def sizes(files: dict[str, int]) -> str:
    """
    The database files and their sizes, in one line.
    """
    if not files:
        return "no database files"
    return ", ".join(f"{DATABASE}{suffix} {size(count)}" for suffix, count in files.items())


def run_config(
    args: argparse.Namespace,
    receivers: int,
    label: str,
    rates: Sequence[tuple[str, float]] | None,
) -> tuple[Measurement, Storage]:
    """
    Run every phase on one daemon (C{label} L{MEMORY} adds C{--in-memory})
    in a fresh temporary directory under C{args.data_root}, print its
    table, and look at what it left in its data directory.

    @param rates: the open-loop phases, as for L{measure}.
    """
    extra = ["--in-memory"] if label == MEMORY else []
    storage = Storage()

    def ready(bench: Bench, took: float) -> None:
        print(f"\n[{label}] daemon pid {bench.daemon.pid}, twistd chat {' '.join(extra) or '(SQLite storage)'}; "
              f"{bench.bulk_count} counting receivers, {bench.probe_count} probes, {args.senders} senders; "
              f"set up in {took:.1f} s; load average {load_average()}")

    def running(bench: Bench) -> None:
        storage.running = file_sizes(bench.daemon.workdir / "data")

    with tempfile.TemporaryDirectory(prefix=f"chat-storage-{label}-", dir=args.data_root) as tmp:
        workdir = Path(tmp)
        measurement = measure(args, receivers, workdir, extra, rates, on_ready=ready, before_close=running)
        data = workdir / "data"
        storage.stopped = file_sizes(data)
        if (data / DATABASE).exists():
            storage.rows, storage.last_id = count_rows(data / DATABASE)
        print_table(measurement.results)
        print_daemon(measurement)
        print_profile(args, measurement, f"{args.keep_profile}.{label}" if args.keep_profile else None)
    return measurement, storage


def print_comparison(memory: Measurement, sqlite: Measurement) -> None:
    """
    One line per phase run by both daemons: deliveries per second and their
    ratio, latency p50 and p99 of each and the difference (SQLite minus
    memory), and the daemon's CPU per delivery of each.
    """
    print(f"{'phase':<14}{'memory/s':>11}{'sqlite/s':>11}{'ratio':>7}{'p50 mem':>9}{'p50 sql':>9}{'Δp50':>8}"
          f"{'p99 mem':>9}{'p99 sql':>9}{'Δp99':>8}{'us/del mem':>11}{'us/del sql':>11}")
    theirs = {r.name: r for r in sqlite.results}
    for mine in memory.results:
        other = theirs.get(mine.name)
        if other is None:
            continue
        ratio = other.rate / mine.rate if mine.rate else math.nan
        p50, p99 = mine.percentile(0.5), mine.percentile(0.99)
        q50, q99 = other.percentile(0.5), other.percentile(0.99)
        flags = [f"{who} OVERLOADED" for who, r in ((MEMORY, mine), (SQLITE, other)) if r.overloaded]
        print(f"{mine.name:<14}{mine.rate:>11,.0f}{other.rate:>11,.0f}{ratio:>7.3f}{p50:>9.2f}{q50:>9.2f}"
              f"{q50 - p50:>+8.2f}{p99:>9.2f}{q99:>9.2f}{q99 - p99:>+8.2f}{per_delivery(mine):>11.2f}"
              f"{per_delivery(other):>11.2f}{'  ' + ', '.join(flags) if flags else ''}")


def verdict(memory: Measurement, sqlite: Measurement, budget: float) -> list[str]:
    """
    Lines that judge the run: the cost of durability at the best C{max}
    rates against C{budget} (a fraction), and warnings about phases that
    lost deliveries or shared the machine with other work.
    """
    lines = []
    mine, other = best_max(memory.results), best_max(sqlite.results)
    if mine is not None and other is not None and mine.rate:
        ratio = other.rate / mine.rate
        cost = 1 - ratio
        cpu = per_delivery(other) / per_delivery(mine) - 1
        within = "within" if cost < budget else "OVER"
        lines.append(f"best max: memory {mine.rate:,.0f}/s ({mine.name}), sqlite {other.rate:,.0f}/s ({other.name}): "
                     f"ratio {ratio:.3f}, durability costs {cost:.1%} of throughput ({within} the {budget:.0%} "
                     f"budget) and {cpu:+.1%} daemon CPU per delivery")
    for label, measurement in ((MEMORY, memory), (SQLITE, sqlite)):
        for r in measurement.results:
            if r.deliveries < r.expected:
                lines.append(f"warning: [{label}] {r.name} lost {r.expected - r.deliveries} deliveries")
            if r.other_cpu > DISTURBED or r.steal_cpu > DISTURBED:
                lines.append(f"warning: [{label}] {r.name}: other processes used {r.other_cpu:.0%} of a core and "
                             f"steal was {r.steal_cpu:.0%}: run again on a quiet machine")
    return lines


def print_storage(measurement: Measurement, storage: Storage, label: str) -> None:
    """
    What a daemon left on disk: for the SQLite daemon, the rows stored
    against the messages sent and the database's sizes; for the in-memory
    one, that it left no database.
    """
    if label == MEMORY:
        found = "no database file (as it should be)" if not storage.stopped else f"UNEXPECTED {sizes(storage.stopped)}"
        print(f"[{label}] data directory after stop: {found}")
        return
    total = sent(measurement)
    stored = storage.rows.get("messages", 0)
    check = "every message sent is stored" if stored == total else f"MISMATCH: {stored - total:+d}"
    print(f"[{label}] database after stop: {stored} rows in messages, {storage.rows.get('private', 0)} in private, "
          f"highest id {storage.last_id}; {total} messages sent: {check}")
    print(f"[{label}] files while running: {sizes(storage.running)}; after stop: {sizes(storage.stopped)}")


def run_pair(args: argparse.Namespace, receivers: int) -> None:
    """
    For one N: run both daemons, the second with the first one's open-loop
    rates, and print their tables, the comparison and the verdict.
    """
    print(f"\nN = {receivers} receivers, S = {args.senders} senders, {args.text_size}-byte texts, "
          f"{args.seconds:g} s per phase")
    order = [SQLITE, MEMORY] if args.storage_first else [MEMORY, SQLITE]
    runs: dict[str, tuple[Measurement, Storage]] = {}
    rates: Sequence[tuple[str, float]] | None = None
    for label in order:
        runs[label] = run_config(args, receivers, label, rates)
        if rates is None:
            best = best_max(runs[label][0].results)
            rates = loads(args, best.sent / best.elapsed if best and best.elapsed else 0.0)
    print()
    for label in (MEMORY, SQLITE):
        print_storage(*runs[label], label)
    memory, sqlite = runs[MEMORY][0], runs[SQLITE][0]
    print(f"\nN = {receivers}: SQLite against memory (ratio = sqlite/memory deliveries per second; "
          f"Δ = sqlite - memory, ms)")
    print_comparison(memory, sqlite)
    for line in verdict(memory, sqlite, args.budget):
        print(line)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser("Fan-out throughput with SQLite storage against --in-memory, in one run "
                          "(see the module docstring; the options are those of fanout.py plus a few, "
                          "but --window defaults to 8, 32 and 128).")
    parser.add_argument("--storage-first", action="store_true",
                        help="run the SQLite daemon first (its best max rate then sets the open-loop rates)")
    parser.add_argument("--data-root", metavar="DIR",
                        help="make the daemons' temporary directories (and so the database) in DIR "
                             "(default: the system's temporary directory)")
    parser.add_argument("--budget", type=float, default=0.15,
                        help="the throughput durability may cost, a fraction (default 0.15)")
    args = parser.parse_args(argv)
    args.window = args.window or list(WINDOWS)
    return check_args(parser, args)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    where = Path(args.data_root or tempfile.gettempdir())
    print(f"chat durability benchmark: fan-out with --in-memory against SQLite storage (sqlite "
          f"{sqlite3.sqlite_version}, WAL, synchronous=FULL), on {os.cpu_count()} CPU cores; "
          f"data directories in {where} ({filesystem(where)}); load average {load_average()}.")
    print("Per run: deliveries are messages received summed over the N receivers; latency is send -> probe read;")
    print("us/del is the daemon's CPU microseconds per delivery (its database thread included); CPU columns as in")
    print("fanout.py: a max phase is valid when daemon is near 100% and others/steal near 0%.")
    for receivers in args.receivers:
        run_pair(args, receivers)


if __name__ == "__main__":
    main()

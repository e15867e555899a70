"""
Cross-daemon fan-out (issue 23): what the Redis bus costs, against a single
daemon, in one run.

For each N (C{--users}, default 100 and 1000) two set-ups take turns, each
started fresh on a PostgreSQL server and a Redis server of their own
(L{tests.servers}, real servers on free ports of 127.0.0.1; the database is
emptied and Redis flushed before each set-up):

  - C{single}: one C{twistd -n chat --postgres DSN} (no C{--redis}), every
    client on it: C{compare.py}'s fan-out as it is.
  - C{cluster}: three daemons C{--postgres DSN --redis URL --node n1|n2|n3}
    on the same database and Redis, each used once its log says C{cluster bus
    of node NAME on Redis at ...}. The S senders are on daemon 1; the N
    receivers are spread evenly over daemons 1, 2 and 3 (receiver I on
    daemon I mod 3, the counting child processes being three times
    C{--procs}, each on one daemon; the probes in turn), and the witness,
    which closes the loop, is on daemon 3, last to join there. A message is
    delivered by daemon 1 to its own receivers at once, and reaches the two
    others through Redis (an C{EVAL} per message: C{XADD} to a capped stream
    and C{PUBLISH}); so the closed loop waits for the bus.

Both run L{compare.Room.closed_loop} with S senders (C{--senders}, default 1
and 4), C{--window} (default 32) messages in flight per sender, 64-byte
texts, and the daemons get L{fanout.Daemon}'s options (flood limits and
C{--max-connections-per-ip} lifted, C{--history-on-join 0}, C{--max-output}
64 MiB). Once every client is ready, the phases wait until the receivers
have heard nothing for 0.3 s (L{compare.quiet}): in the cluster, each join
also crosses the bus to the other daemons, which deliver it to their
members seconds after the joiner's own daemon has answered. Everything but
where a client connects is C{compare.py}'s, imported: the sessions, the
room, the closed loop, the counting receivers, samples, medians and table
cells.

The figures, medians over C{--repeat} runs:

  - deliveries/s: messages received per second, summed over the N receivers
    of all daemons (the senders' copies are not counted). A delivery that
    never arrives within C{--drain} seconds is printed as missing.
  - cluster / single: the ratio of the two; below 1 is what the bus costs.
    The cluster has three processes to fan out with, but the machine may
    have fewer cores than processes, so the ratio says what the bus costs
    on this machine, not what three machines would do.
  - CPU of each daemon, of C{redis-server} and of PostgreSQL (the postmaster
    and its backends), and of the load generator and of every other process
    of the machine, each as a share of one core over the phase: a daemon near
    100% was the limit; shares adding up to about the number of cores mean
    the machine was (then every process waits for a core, and none reaches
    100%); C{others} well above 0 means other work shared the machine, and
    the figures are worth less.

Each phase's line also notes the daemons' error and warning lines (and the
bus's complaints) written while measuring and when stopped, and warnings of
PostgreSQL's and Redis's logs.

Run with the project's Python, from anywhere (bench/ is on C{sys.path} when
run as a script; the repository root, for C{tests.servers}, is added)::

    /work/venv/bin/python bench/cluster.py --quick      # one run, 1.5 s phases
    /work/venv/bin/python bench/cluster.py              # 3 runs, 3 s phases
    /work/venv/bin/python bench/cluster.py --users 1000 --senders 4 --repeat 1

C{compare.py}'s fan-out options apply (C{--users}, C{--senders},
C{--window}, C{--seconds}, C{--repeat}, C{--quick}, C{--text-size},
C{--probes}, C{--procs}, C{--drain}, C{--setup-timeout}, C{--stop-timeout},
C{--no-quickack}, C{--max-output}, C{--daemon-arg} for every daemon,
C{--twistd}); its other options are accepted and ignored. PostgreSQL
(C{initdb}, C{postgres}) and C{redis-server} must be installed (Debian
packages C{postgresql}, C{redis-server}).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import platform
import re
import signal
import statistics
import sys
import time
import unittest
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from unittest import mock

import compare
from compare import Kind, Peer, Row, Sample, Session, fanout_key, log_tail, median, short
from fanout import ROOM, Daemon, other_cpu, process_ticks

if TYPE_CHECKING:
    from tests.servers import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parent.parent
"""The repository, whose C{tests.servers} starts PostgreSQL and Redis."""
NODES = ("n1", "n2", "n3")
"""The cluster's daemons, by C{--node}: the senders are on the first, the witness on the last."""
SINGLE = Kind("single")
CLUSTER = Kind("cluster")
KINDS = (SINGLE, CLUSTER)
"""The set-ups, in the order they take turns and appear in the table."""
WITNESS = "w"
"""The nick L{compare.Room} gives the witness."""
BUS_READY = re.compile(r"cluster bus of node \S+ on Redis at \S+:(\d+)")
"""The log line of a daemon whose bus is connected (group 1: Redis's port)."""
BUS_TROUBLE = re.compile(r"#warn\]|lost Redis|Redis is back|queue full|dropp|refused publication|cannot publish"
                         r"|not a cluster publication|cannot subscribe|cannot catch up|another daemon publishes")
"""Log lines a run should not have besides errors: warnings, and the bus's complaints at whatever level."""
SERVICE_TROUBLE = re.compile(r" # |ERROR|FATAL|PANIC")
"""Lines of Redis's log (C{#} marks a warning) or PostgreSQL's that are worth showing."""
RECEIVE = compare.receive
"""The child receivers' function, kept before L{ClusterSession.spawn} patches it."""
DESCRIPTION = ("Cross-daemon fan-out on 127.0.0.1: senders on one daemon, receivers on three, with PostgreSQL "
               "and Redis, against a single daemon (see the module docstring and bench/README.md).")


# The servers.


def load_servers() -> ModuleType:
    """
    The repository's C{tests.servers}, the repository put on C{sys.path}
    first.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests import servers

    return servers


@dataclass
class Services:
    """
    The PostgreSQL and Redis servers of the run (L{tests.servers}), and the
    processes to count as theirs.

    @ivar dsn: PostgreSQL's libpq connection string of the database.
    @ivar url: Redis's URL.
    @ivar logs: the two servers' log files.
    """

    postgres: PostgresServer
    redis: RedisServer
    dsn: str
    url: str
    logs: tuple[Path, Path]

    @classmethod
    def start(cls) -> Services:
        """
        Start both servers (or take those already started).

        @raise RuntimeError: one cannot start; the message says why.
        """
        servers = load_servers()
        try:
            postgres, redis = servers.postgres(), servers.redis()
        except unittest.SkipTest as error:
            raise RuntimeError(str(error)) from None
        return cls(postgres, redis, postgres.dsn, redis.url, (Path(postgres.log), Path(redis.log)))

    def empty(self) -> None:
        """
        Drop the database's tables and flush Redis, for a fresh set-up.
        """
        self.postgres.reset()
        self.redis.flush()

    def log_sizes(self) -> tuple[int, int]:
        """
        The two logs' sizes now, for L{news}.
        """
        return self.logs[0].stat().st_size, self.logs[1].stat().st_size

    def news(self, sizes: tuple[int, int]) -> list[str]:
        """
        Lines of warning or worse written to either log since C{sizes}.
        """
        found = []
        for name, path, size in zip(("PostgreSQL", "Redis"), self.logs, sizes, strict=True):
            with path.open("rb") as log:
                log.seek(size)
                text = log.read().decode(errors="replace")
            found += [f"{name}: {line.strip()}" for line in text.splitlines() if SERVICE_TROUBLE.search(line)]
        return found

    def pids(self) -> dict[str, set[int]]:
        """
        The processes of each server now: C{redis-server}, and PostgreSQL's
        postmaster with its children (backends and helpers), found by their
        ports in C{/proc}.
        """
        found: dict[str, set[int]] = {"redis-server": set(), "PostgreSQL": set()}
        parents: dict[int, int] = {}
        postmaster = 0
        redis_port, postgres_port = str(self.redis.port), str(self.postgres.port)
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                parents[pid] = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            program = os.path.basename(words[0].decode(errors="replace").split()[0]) if words[0] else ""
            arguments = [word.decode(errors="replace") for word in words]
            if program == "redis-server" and ("--port" in arguments and redis_port in arguments
                                              or any(word.endswith(f":{redis_port}") for word in arguments)):
                found["redis-server"].add(pid)
            elif program == "postgres" and "-p" in arguments and postgres_port in arguments:
                postmaster = pid
        if postmaster:
            found["PostgreSQL"] = {postmaster, *(pid for pid, parent in parents.items() if parent == postmaster)}
        return found


class ClusterDaemon(Daemon):
    """
    L{fanout.Daemon}, which with C{--redis} among its arguments is ready only
    once its bus is on Redis (L{BUS_READY}), and whose L{errors} include
    warnings and the bus's complaints (L{BUS_TROUBLE}).
    """

    clustered = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # waits for the line listener's log line
        if self.clustered:
            self.listening = BUS_READY
            try:
                self._wait_for_port(timeout=30)
            except BaseException:
                self.stop(timeout=5)
                raise

    def command(self, args: argparse.Namespace, room_size: int, extra: Sequence[str]) -> list[str]:
        self.clustered = "--redis" in extra
        return super().command(args, room_size, extra)

    def errors(self) -> list[str]:
        """
        L{fanout.Daemon.errors}, warnings, and the bus's complaints.
        """
        failures = set(super().errors())
        text = self.log_path.read_text(errors="replace")
        return [line for line in text.splitlines() if line in failures or BUS_TROUBLE.search(line)]


def receive_on(ports: dict[str, int], port: int, nicks: Sequence[str], *args: Any, **kwargs: Any) -> None:
    """
    Child process: L{compare.receive} of C{nicks}, all on the daemon of
    C{ports[nicks[0]]} (rather than C{port}).
    """
    RECEIVE(ports[nicks[0]], nicks, *args, **kwargs)


class ClusterSession(Session):
    """
    A L{compare.Session} of one daemon (C{others} empty) or of several: the
    first is the session's L{server} and L{port} (where the senders are),
    the daemons of C{others} (each given those extra arguments) take a
    share of the receivers and probes, the last one the witness.

    @ivar daemons: every daemon, the first the session's own.
    @ivar ports: their line ports, in order.
    @ivar marks: a snapshot of CPU ticks by process group at each L{cpu}
        call (the start and end of each phase), with its C{monotonic} time.
    @ivar placed: probes placed so far (L{add}), to take turns.
    """

    def __init__(self, args: argparse.Namespace, kind: Kind, room_size: int, services: Services,
                 others: Sequence[Sequence[str]] = ()) -> None:
        with mock.patch.object(compare, "Daemon", ClusterDaemon):
            super().__init__(args, kind, room_size)
        self.services = services
        self.daemons: list[Daemon] = [self.server]
        self.marks: list[tuple[float, dict[str, dict[int, int]]]] = []
        self.placed = 0
        try:
            for index, extra in enumerate(others, start=2):
                workdir = self.workdir / f"daemon{index}"
                workdir.mkdir()
                self.daemons.append(ClusterDaemon(args, room_size, workdir, extra))
        except BaseException:
            self.close()
            raise
        self.ports = [daemon.port for daemon in self.daemons]

    def names(self) -> list[str]:
        """
        The daemons' names in the table: C{daemon} alone, else by node.
        """
        return ["daemon"] if len(self.daemons) == 1 else [f"daemon {i}" for i in range(1, len(self.daemons) + 1)]

    def log(self) -> str:
        """
        Every daemon's output so far, each under its name.
        """
        return "\n".join(f"--- {name} ---\n{daemon.log_path.read_text(errors='replace')}"
                         for name, daemon in zip(self.names(), self.daemons, strict=True))

    def add(self, nick: str, room: str | None = ROOM, padding: bytes | None = None) -> Peer:
        """
        L{compare.Session.add} on the daemon of its part: a sender on the
        first, the witness on the last, probes in turn.
        """
        if padding is not None:
            index = 0
        elif nick == WITNESS:
            index = len(self.ports) - 1
        else:
            index, self.placed = self.placed % len(self.ports), self.placed + 1
        first, self.port = self.port, self.ports[index]
        try:
            return super().add(nick, room, padding)
        finally:
            self.port = first

    def spawn(self, nicks: Sequence[str], room: str | None, processes: int) -> None:
        """
        L{compare.Session.spawn} with receiver I of C{nicks} on daemon I
        modulo their number, in C{processes} child processes per daemon.
        """
        if len(self.ports) == 1:
            return super().spawn(nicks, room, processes)
        ports = {nick: self.ports[i % len(self.ports)] for i, nick in enumerate(nicks)}
        with mock.patch.object(compare, "receive", functools.partial(receive_on, ports)):
            return super().spawn(nicks, room, processes * len(self.ports))

    def groups(self) -> dict[str, set[int]]:
        """
        The processes whose CPU the table shows, by name: the daemons and
        the two servers.
        """
        return {**{name: {daemon.pid} for name, daemon in zip(self.names(), self.daemons, strict=True)},
                **self.services.pids()}

    def cpu(self) -> tuple[float, float]:
        """
        L{compare.Session.cpu}, the server's CPU being all the daemons'; a
        snapshot of every group's ticks goes to L{marks}.
        """
        _, clients = super().cpu()
        ticks = process_ticks(set())
        groups = {name: {pid: ticks[pid] for pid in pids if pid in ticks} for name, pids in self.groups().items()}
        self.marks.append((time.monotonic(), groups))
        servers = sum(groups[name].get(daemon.pid, 0) for name, daemon in zip(self.names(), self.daemons,
                                                                              strict=True))
        return servers / os.sysconf("SC_CLK_TCK"), clients

    def others(self) -> dict[int, int]:
        """
        L{compare.Session.others}, without the other daemons and the servers.
        """
        found = super().others()
        for pids in self.groups().values():
            for pid in pids:
                found.pop(pid, None)
        return found

    def shares(self) -> dict[str, float]:
        """
        Each group's CPU between the last two L{marks}, as a share of one core.
        """
        (started, before), (ended, after) = self.marks[-2:]
        seconds = (ended - started) * os.sysconf("SC_CLK_TCK")
        return {name: other_cpu(before.get(name, {}), ticks) / seconds for name, ticks in after.items()}

    def errors(self) -> list[str]:
        """
        Every daemon's error and warning lines so far (L{ClusterDaemon.errors}),
        each after its daemon's name when there are several.
        """
        several = len(self.daemons) > 1
        return [f"{name}: {line}" if several else line
                for name, daemon in zip(self.names(), self.daemons, strict=True) for line in daemon.errors()]

    def close(self) -> None:
        """
        Stop the other daemons (SIGTERM, then SIGKILL after C{--stop-timeout}
        seconds) while the clients still read, then the first as
        L{compare.Session.close} does; L{log_errors} gets every daemon's
        error lines, each after its daemon's name.
        """
        errors: list[str] = []
        try:
            others = list(zip(self.names()[1:], self.daemons[1:], strict=True))
            for _, daemon in others:
                if daemon.process.poll() is None:
                    daemon.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.args.stop_timeout
            while any(daemon.process.poll() is None for _, daemon in others) and time.monotonic() < deadline:
                self.pump(0.05)
            for name, daemon in others:
                daemon.stop(timeout=1)
                errors += [f"{name}: {line}" for line in daemon.errors()]
        finally:
            super().close()
        first = self.names()[0] if len(self.daemons) > 1 else ""
        self.log_errors = [f"{first}: {line}" if first else line for line in self.log_errors] + errors


# The measurements.


@dataclass
class Measured:
    """
    One phase of one set-up: its sample, and each process group's CPU
    (L{ClusterSession.shares}).
    """

    sample: Sample
    cpu: dict[str, float]


def kinds(services: Services) -> list[tuple[Kind, list[list[str]]]]:
    """
    The set-ups with their daemons' arguments: the first daemon's in the
    L{Kind}, the others' in the list.
    """
    common = ["--postgres", services.dsn]
    cluster = [[*common, "--redis", services.url, "--node", node] for node in NODES]
    return [(dataclasses.replace(SINGLE, extra=tuple(common)), []),
            (dataclasses.replace(CLUSTER, extra=tuple(cluster[0])), cluster[1:])]


def measure(args: argparse.Namespace, kind: Kind, others: Sequence[Sequence[str]], users: int,
            services: Services) -> dict[str, Measured]:
    """
    One set-up started fresh on emptied servers, C{users} receivers: a
    closed-loop phase for each of C{--senders}.

    @return: the phases by L{compare.fanout_key}.
    @raise RuntimeError: a daemon did not start, or the room could not be
        set up (the message holds the daemons' logs).
    """
    services.empty()
    sizes = services.log_sizes()
    senders = max(args.senders)
    found: dict[str, Measured] = {}
    with ClusterSession(args, kind, users + senders + 1, services, others) as session:
        began = time.monotonic()
        room = compare.Room(session, users, senders)
        ready = time.monotonic()
        compare.quiet(session, args.setup_timeout)
        placed = f"room set up in {ready - began:.1f} s, quiet {time.monotonic() - ready:.1f} s later"
        for count in args.senders:
            sample = room.closed_loop(count, args.window)
            sample.notes.append(placed)
            found[fanout_key(users, count)] = Measured(sample, session.shares())
        measuring = set(session.errors())
    stopping = [line for line in session.log_errors if line not in measuring]
    news = services.news(sizes)
    for measured in found.values():
        for lines, when in ((sorted(measuring), "while measuring"), (stopping, "when stopped"),
                            (news, "in PostgreSQL's or Redis's log")):
            if lines:
                measured.sample.notes.append(f"{len(lines)} error or warning lines {when}, first: {lines[0]}")
    return found


def rows(args: argparse.Namespace) -> list[Row]:
    """
    The table's rows, in order.
    """
    return [Row(fanout_key(users, senders), f"{users:,} receivers, {senders} sender{'s' * (senders > 1)}", True)
            for users in args.users for senders in args.senders]


def share(found: Sequence[Measured], name: str) -> str:
    """
    The median CPU share of the group C{name} over C{found}, for a cell.
    """
    values = [measured.cpu[name] for measured in found if name in measured.cpu]
    return f"{statistics.median(values):.0%}" if values else "-"


def print_report(args: argparse.Namespace, results: dict[str, dict[str, list[Measured]]]) -> None:
    """
    The Markdown table of medians: deliveries/s of both set-ups, cluster /
    single, and the CPU of every process group, the load generator's and
    the other processes', as shares of one core.
    """
    cluster_names = [f"daemon {i}" for i in range(1, len(NODES) + 1)]
    header = ["fan-out", "single deliveries/s", "cluster deliveries/s", "cluster ÷ single",
              "single CPU daemon / PostgreSQL",
              f"cluster CPU {' / '.join(cluster_names)} / redis-server / PostgreSQL",
              "clients CPU single / cluster", "others CPU single / cluster"]
    print(f"\n| {' | '.join(header)} |")
    print(f"|{' --- |' * len(header)}")
    for row in rows(args):
        single = results.get(row.key, {}).get(SINGLE.label, [])
        cluster = results.get(row.key, {}).get(CLUSTER.label, [])
        values = [median([measured.sample for measured in found]) for found in (single, cluster)]
        ratio = values[1] / values[0] if values[0] and not math.isnan(values[0]) else float("nan")
        cells = [row.title]
        for value, found in zip(values, (single, cluster), strict=True):
            cells.append(short(value, 0) + ("" if len(found) == args.repeat else f" ({len(found)} runs)"))
        cells.append("-" if math.isnan(ratio) else f"{ratio:.2f}")
        cells.append(" / ".join(share(single, name) for name in ("daemon", "PostgreSQL")))
        cells.append(" / ".join(share(cluster, name) for name in (*cluster_names, "redis-server", "PostgreSQL")))
        for attribute in ("client_cpu", "other_cpu"):
            shares = [median([measured.sample for measured in found], attribute) for found in (single, cluster)]
            cells.append(" / ".join("-" if math.isnan(value) else f"{value:.0%}" for value in shares))
        print(f"| {' | '.join(cells)} |")


def print_phase(kind: Kind, row: Row, measured: Measured) -> None:
    """
    One phase's figures as they come, with every process group's CPU.
    """
    compare.print_progress(kind, row, measured.sample)
    print(f"    {'':<17} (CPU {', '.join(f'{name} {value:.0%}' for name, value in measured.cpu.items())})")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    C{compare.py}'s options; C{--quick}: one repeat of 1.5 s phases.
    """
    parser = compare.build_parser()
    parser.description = DESCRIPTION
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1
        args.seconds = min(args.seconds, 1.5)
    if args.repeat < 1 or args.seconds <= 0 or args.window < 1 or args.probes < 1 or args.procs < 1:
        parser.error("--repeat, --window, --probes and --procs must be at least 1, --seconds above 0")
    if not os.access(args.twistd, os.X_OK):
        parser.error(f"--twistd: {args.twistd} is not an executable file")
    return args


def run(args: argparse.Namespace) -> int:
    """
    Every measurement C{--repeat} times, the set-ups taking turns; each
    figure as it comes, then the table.

    @return: the exit status: 1 if some measurement failed or the servers
        could not start.
    """
    started = time.monotonic()
    limit = compare.raise_fd_limit()
    print(f"one daemon against three (Redis bus) on 127.0.0.1: {os.cpu_count()} cores shared by the daemons, "
          f"PostgreSQL, Redis and the load generator; load average {os.getloadavg()[0]:.2f}; "
          f"Python {platform.python_version()}; open files {limit:,}")
    try:
        services = Services.start()
    except RuntimeError as error:
        print(f"cannot measure: {error}")
        return 1
    print(f"PostgreSQL on port {services.postgres.port}, Redis on port {services.redis.port} "
          f"(started in {services.postgres.started_in + services.redis.started_in:.1f} s)")
    print(f"{args.repeat} run(s) of each measurement, in turn: {', '.join(kind.label for kind in KINDS)}; "
          f"phases {args.seconds:g} s, window {args.window}, texts {args.text_size} bytes")
    results: dict[str, dict[str, list[Measured]]] = {}
    titles = {row.key: row for row in rows(args)}
    failed = 0
    for repeat in range(args.repeat):
        for users in args.users:
            print(f"[run {repeat + 1}/{args.repeat}, {time.monotonic() - started:.0f} s] fan-out N={users}",
                  flush=True)
            for kind, others in kinds(services):
                try:
                    found = measure(args, kind, others, users, services)
                except (RuntimeError, OSError) as error:
                    failed += 1
                    first, _, log = str(error).partition("\n")
                    print(f"    {kind.label:<17} FAILED: {first or type(error).__name__}")
                    if first.endswith("log:"):
                        print(log_tail(log, 30) if log.strip() else "    (empty)")
                    continue
                for key, measured in found.items():
                    results.setdefault(key, {}).setdefault(kind.label, []).append(measured)
                    print_phase(kind, titles[key], measured)
                sys.stdout.flush()
    print_report(args, results)
    shares = [measured.sample.other_cpu for found in results.values() for runs in found.values()
              for measured in runs if not math.isnan(measured.sample.other_cpu)]
    print()
    if shares:
        print(f"other processes on the machine used {statistics.median(shares):.0%} of a core "
              f"(median over the phases, at most {max(shares):.0%}).")
    print(f"medians of {args.repeat} run(s); elapsed {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """
    Parse the options and L{run}; Ctrl-C or SIGTERM stop the measurement
    under way, its daemons and clients (PostgreSQL and Redis stop when this
    process exits).
    """
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, compare.interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: the daemons and clients of the measurement under way were stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())

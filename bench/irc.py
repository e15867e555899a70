"""
The daemon's IRC front end (C{--irc}, docs/irc.md) beside its line protocol
and ngIRCd, in one run: the loads, load generator and figures of
C{web.py}, three servers taking turns, each started fresh for each
measurement.

  - C{ours irc}: C{twistd -n chat --irc tcp:0:interface=127.0.0.1} (and
    C{compare.py}'s options, L{fanout.Daemon}), every client (receivers,
    probes, witness, senders) on the IRC listener, speaking IRC exactly as
    the ngIRCd clients do (L{compare.IrcDialect}: C{NICK}, C{USER}, C{JOIN
    #bench}, ready at C{366}; C{PRIVMSG #bench :TEXT}; counted at C{PRIVMSG
    #bench :P<phase>|}), except the senders' set-up (L{OursIrcDialect}).
  - C{ours line}: the same daemon with the same options, every client on
    the line protocol in the C{json} format (C{compare.py}'s C{ours}).
  - C{ngIRCd}: as in C{compare.py}.

The figures, each the median over C{--repeat} runs (L{web.rows}):

  1. Fan-out: deliveries per second with N receivers (C{--users}, default
     100 and 1000) and S senders (C{--senders}, default 1 and 4), the closed
     loop of L{compare.Room.closed_loop} (window 32, 64-byte texts).
  2. Idle memory per registered connection, C{--room-connections} (default
     1,000) all in C{#bench}: L{compare.measure_memory}.

Everything but the daemon's IRC port and the senders' set-up is
C{compare.py}'s and C{web.py}'s, imported: sessions, rooms, measurements,
ngIRCd's configuration, rows, medians and table cells. Neither server
echoes a message to its sender (no C{echo-message} is asked for), so the
witness counts the same way on both. The daemon's flood limits
(C{--flood-burst}, C{--flood-rate}) and C{--max-connections-per-ip}, lifted
by L{fanout.Daemon}, apply to the IRC listener too.

Run with the project's Python (bench/ is on C{sys.path} when run as a
script)::

    /work/venv/bin/python bench/irc.py            # 3 runs of everything
    /work/venv/bin/python bench/irc.py --quick    # one run, 1.5 s phases
    /work/venv/bin/python bench/irc.py --only fanout --users 1000 --repeat 1

Every option of C{compare.py} is accepted (C{--only} takes C{fanout} and
C{memory}).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

import compare
import web
from compare import NGIRCD, Dialect, IrcDialect, Kind, Sample, Session, log_tail, median, print_progress, short
from fanout import HOST, Daemon

IRC = Kind("ours irc")
LINE = web.LINE
KINDS = (IRC, LINE, NGIRCD)
"""The servers, in the order they take turns and appear in the table."""
IRC_LISTENING = re.compile(r"chat irc listening on 127\.0\.0\.1:(\d+)")
DESCRIPTION = ("The daemon's IRC front end beside its line protocol and ngIRCd on 127.0.0.1: "
               "fan-out and idle memory, medians and ratios (see the docstring and bench/README.md).")


class OursIrcDialect(IrcDialect):
    """
    L{compare.IrcDialect} for the daemon's IRC listener: the same lines and
    markers, but a sender registers and joins as a receiver does. The
    daemon has no C{OPER} (it answers C{491}) and no user mode C{+F}; its
    flood limits are lifted by its options instead.
    """

    def setup(self, nick: str, room: str | None, sender: bool) -> list[tuple[bytes, bytes]]:
        """
        One step for every client: L{hello}, then wait for L{ready}.
        """
        return Dialect.setup(self, nick, room, sender)


class IrcDaemon(Daemon):
    """
    L{fanout.Daemon} (C{compare.py}'s options) with an IRC listener on a
    free port of 127.0.0.1 too.

    @ivar irc_port: that listener's port (L{port} stays the line
        listener's).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # waits for the line listener's log line
        self.listening = IRC_LISTENING
        try:
            self.irc_port = self._wait_for_port(timeout=30)
        except BaseException:
            self.stop(timeout=5)
            raise

    def command(self, args: argparse.Namespace, room_size: int, extra: Sequence[str]) -> list[str]:
        return [*super().command(args, room_size, extra), "--irc", f"tcp:0:interface={HOST}"]


class IrcSession(Session):
    """
    A L{compare.Session} whose daemon is an L{IrcDaemon}; for L{IRC}, its
    port and dialect are the IRC listener's and L{OursIrcDialect}, so that
    its peers and child receivers (which take both from the session) speak
    IRC to it.
    """

    def __init__(self, args: argparse.Namespace, kind: Kind, room_size: int,
                 history_on_join: int | None = 0) -> None:
        with mock.patch.object(compare, "Daemon", IrcDaemon):
            super().__init__(args, kind, room_size, history_on_join)
        if kind is IRC:
            assert isinstance(self.server, IrcDaemon)
            self.port = self.server.irc_port
            self.dialect = OursIrcDialect()


class Parser(argparse.ArgumentParser):
    """
    C{compare.py}'s parser whose description stays L{DESCRIPTION} when
    L{web.parse_args} sets its own.
    """

    @property
    def description(self) -> str:
        return DESCRIPTION

    @description.setter
    def description(self, value: str | None) -> None:
        pass


BUILD_PARSER = compare.build_parser


def build_parser() -> argparse.ArgumentParser:
    """
    L{compare.build_parser}'s options, described as this script.
    """
    parser = BUILD_PARSER()
    parser.__class__ = Parser
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    L{web.parse_args}: C{compare.py}'s options, C{--only fanout,memory},
    memory at 1,000 connections in one room, C{--quick} one repeat of 1.5 s
    phases.
    """
    with mock.patch.object(compare, "build_parser", build_parser):
        return web.parse_args(argv)


def print_report(args: argparse.Namespace, results: dict[str, dict[str, list[Sample]]]) -> None:
    """
    The Markdown table of medians: each server's figure, irc ÷ line and
    irc ÷ ngIRCd, which way is better, the servers' and the load
    generator's median CPU (share of one core).
    """
    labels = [kind.label for kind in KINDS]
    print(f"\n| figure | {' | '.join(labels)} | irc ÷ line | irc ÷ ngIRCd | better "
          f"| server CPU {' / '.join(labels)} | clients CPU {' / '.join(labels)} |")
    print("|" + " --- |" * (len(labels) + 6))
    for row in web.rows(args):
        by_label = {label: results.get(row.key, {}).get(label, []) for label in labels}
        value = {label: median(samples) for label, samples in by_label.items()}
        figures = [short(value[label], row.digits) + ("" if len(by_label[label]) == args.repeat
                                                      else f" ({len(by_label[label])} runs)") for label in labels]
        shares = [" / ".join("-" if math.isnan(share) else f"{share:.0%}"
                             for share in (median(samples, attribute) for samples in by_label.values()))
                  for attribute in ("server_cpu", "client_cpu")]
        cells = [row.title, *figures, web.ratio(value[IRC.label], value[LINE.label]),
                 web.ratio(value[IRC.label], value[NGIRCD.label]), "higher" if row.higher_is_better else "lower",
                 *shares]
        print(f"| {' | '.join(cells)} |")


def measure(kind: Kind, name: str, function: Callable[[Kind], dict[str, Sample]],
            results: dict[str, dict[str, list[Sample]]], titles: dict[str, compare.Row]) -> bool:
    """
    One measurement of one server, its figures printed and kept in
    C{results}.

    @return: whether it succeeded (a failure is printed with the end of the
        server's log).
    """
    try:
        samples = function(kind)
    except (RuntimeError, OSError) as error:
        message, _, log = str(error).partition("\n")
        print(f"    {kind.label:<17} {name} FAILED: {message or type(error).__name__}")
        if message.endswith("log:"):
            print(log_tail(log) if log.strip() else "    (empty)")
        return False
    for key, sample in samples.items():
        results.setdefault(key, {}).setdefault(kind.label, []).append(sample)
        print_progress(kind, titles[key], sample)
    sys.stdout.flush()
    return True


def run(args: argparse.Namespace) -> int:
    """
    Every measurement C{--repeat} times, the servers taking turns; each
    figure as it comes, then the table.

    @return: the exit status: 1 if some measurement failed.
    """
    started = time.monotonic()
    limit = compare.raise_fd_limit()
    print(f"IRC listener, line protocol, ngIRCd on 127.0.0.1: {os.cpu_count()} cores shared by the servers and "
          f"the load generator; load average {os.getloadavg()[0]:.2f}; Python {platform.python_version()}; "
          f"open files {limit:,}")
    print(compare.versions(args))
    print(f"{args.repeat} run(s) of each measurement, servers in turn: {', '.join(k.label for k in KINDS)}; "
          f"phases {args.seconds:g} s, window {args.window}, texts {args.text_size} bytes")
    results: dict[str, dict[str, list[Sample]]] = {}
    titles = {row.key: row for row in web.rows(args)}
    succeeded = True
    with mock.patch.object(compare, "Session", IrcSession):
        for repeat in range(1, args.repeat + 1):
            for name, function in web.measurements(args):
                print(f"[run {repeat}/{args.repeat}, {time.monotonic() - started:.0f} s] {name}", flush=True)
                for kind in KINDS:
                    succeeded = measure(kind, name, function, results, titles) and succeeded
    print_report(args, results)
    compare.print_footer(args, results, started)
    return 0 if succeeded else 1


def main(argv: Sequence[str] | None = None) -> int:
    """L{web.main_of} L{run}, with this script's options."""
    return web.main_of(run, argv, parse_args)


if __name__ == "__main__":
    sys.exit(main())

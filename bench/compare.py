"""
The chat daemon beside ngIRCd (issue 17): one load generator, the same
loads, both servers in one run, and each figure as ours, ngIRCd's, and
their ratio.

The servers take turns (ours, ngIRCd, ours, ngIRCd, ...), each started
fresh for each measurement in its own temporary directory on a free port of
127.0.0.1, and stopped afterwards (SIGTERM, SIGKILL after
C{--stop-timeout}). Ours is C{twistd -n chat} with only the limits lifted
that would refuse the load (see L{fanout.Daemon}), SQLite by default;
C{--in-memory} adds a second "ours" with C{--in-memory}. ngIRCd runs in the
foreground (C{ngircd -n}) with the configuration L{NGIRCD_CONF}, which lifts
its limits; its senders also set user mode C{+F}, which exempts them from
its throttling.

The figures, each the median over C{--repeat} runs:

  1. Fan-out: deliveries per second (messages received, summed over the N
     receivers of C{#bench}; the senders' copies are not counted) at N =
     100 and 1000 with S = 1 and 4 senders, in a closed loop: each sender
     keeps at most C{--window} messages in flight, a message being done when
     the witness (the receiver that joined last, last in both servers'
     fan-out order) has it. IRC does not echo a message to its sender, so
     the loop cannot count echoes.
  2. Latency p50 and p99 in milliseconds (send to read, on the probe
     receivers, which time every message) at a paced 25,000 deliveries per
     second with N = 1000: 25 messages a second from 4 senders together,
     an open loop.
  3. Idle memory per registered connection: the server's C{VmRSS} after the
     clients registered and C{--settle} seconds of quiet, minus its
     C{VmRSS} before they connected, over their number: C{--connections}
     in no room, C{--room-connections} all in one room.
  4. Churn: connect, register, join C{#churn}, wait for the join, quit, wait
     for the server to close; C{--churn-clients} such loops at once, cycles
     completed per second.

Most receivers run in child processes (L{fanout.receive_bulk}) that only
count a marker with C{bytes.count}; the probes, the witness and the senders
run in this process, on one monotonic clock. The two protocols differ only
in a L{Dialect}: a few lines and markers. Receivers acknowledge at once
(C{TCP_QUICKACK}; C{--no-quickack} turns it off): ngIRCd does not set
C{TCP_NODELAY}, so with delayed acknowledgements its writes wait up to
40 ms and a closed loop measures that timer instead of the server. The
server's CPU is printed as a share of one core for every measurement, so a
reader sees whether the server (near 100%) or the clients were the
bottleneck.

Run with the project's Python (bench/ is on C{sys.path} when run as a
script)::

    /work/venv/bin/python bench/compare.py                   # the default run, under 10 minutes
    /work/venv/bin/python bench/compare.py --quick           # one short run of everything, about a minute
    /work/venv/bin/python bench/compare.py --only fanout,latency --repeat 1
"""

from __future__ import annotations

import argparse
import functools
import math
import multiprocessing
import os
import platform
import re
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from fanout import (
    HOST,
    PONG,
    READ_SIZE,
    ROOM,
    Daemon,
    connect,
    cpu_seconds,
    memory_kib,
    other_cpu,
    phase_marker,
    process_ticks,
    pump,
    read_lines,
    receive_bulk,
    send_pending,
)

CHURN_ROOM = "#churn"
FIGURES = ("fanout", "latency", "memory", "churn")
"""What C{--only} chooses from."""
LATENCY_SENDERS = 4
"""Senders of the paced phase."""
LATENCY_P50 = "latency p50"
LATENCY_P99 = "latency p99"
CHURN = "churn"
"""Row keys (with L{fanout_key} and L{memory_key})."""
SOCKETS_PER_PROCESS = 2500
"""Most client connections one child process holds in the memory measurement."""
NGIRCD_CONF = """\
# Written by bench/compare.py for one run; see bench/README.md for each choice.
[Global]
Name = ngircd.bench
Info = bench/compare.py peer
AdminInfo1 = bench
AdminInfo2 = bench
AdminEMail = bench@localhost
Listen = {host}
Ports = {port}
MotdPhrase = bench

[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxPenaltyTime = 0
PingTimeout = 3600
PongTimeout = 3600

[Options]
PAM = no
DNS = no
Ident = no
RequireAuthPing = no
IncludeDir = {include}

[Operator]
Name = {operator}
Password = {operator}
"""
"""ngIRCd's configuration: loopback, no lookups, no PAM, no connection or
channel limits, no penalty times (C{MaxPenaltyTime = 0}), no pings within a
run, and an operator, so that the senders can set user mode C{+F} (no flood
protection). C{IncludeDir} points at an empty directory so that nothing
from C{/etc/ngircd} is read."""
OPERATOR = "bench"
"""Name and password of ngIRCd's operator."""


# The two protocols.


class Dialect(ABC):
    """
    What a client says to one kind of server: the few lines and markers by
    which the load generator's clients differ. All lines end in CR LF; all
    markers are bytes found in what the server sends.

    @ivar quit: the line that asks the server to close the connection.
    """

    quit: bytes

    @abstractmethod
    def hello(self, nick: str, room: str | None = ROOM) -> bytes:
        """
        What a receiver sends on connect: register C{nick} and join C{room}
        (none if C{None}).
        """

    @abstractmethod
    def ready(self, room: str | None = ROOM) -> bytes:
        """
        Bytes that arrive once per connection, when its L{hello} for
        C{room} has been handled.
        """

    def setup(self, nick: str, room: str | None, sender: bool) -> list[tuple[bytes, bytes]]:
        """
        The steps of a client of this process: (lines to send, marker to
        wait for), in order. A sender may need more than a receiver.
        """
        return [(self.hello(nick, room), self.ready(room))]

    @abstractmethod
    def register(self, nick: str) -> bytes:
        """
        The lines that register C{nick} and join no room.
        """

    @abstractmethod
    def join(self, room: str) -> bytes:
        """
        The line that joins C{room} and makes it the one messages go to.
        """

    @abstractmethod
    def joined(self, nick: str, room: str) -> bytes:
        """
        The marker of the server's confirmation to C{nick} that it joined
        C{room}.
        """

    @abstractmethod
    def say(self, text: bytes) -> bytes:
        """
        The line that sends C{text} (no CR or LF) to the room last joined.
        """

    @abstractmethod
    def marker(self, phase: int) -> bytes:
        """
        The bytes just before the send time in every message of C{phase}
        that a receiver gets (the text starts C{P<phase>|}).
        """

    def answer(self, lines: bytes) -> bytes:
        """
        Replies to the server's keep-alive requests among C{lines} (complete
        lines, CR LF included); empty when there are none.
        """
        return b""


class ChatDialect(Dialect):
    """
    The chat daemon's line protocol with JSON events (PROTOCOL.md sections
    3 to 5).

    @ivar no_join: whether the daemon knows C{/nick NAME --no-join}; without
        it the client registers with C{/nick NAME} and leaves C{#lobby}.
    """

    quit = b"/quit\r\n"

    def __init__(self, no_join: bool) -> None:
        self.no_join = no_join

    def hello(self, nick: str, room: str | None = ROOM) -> bytes:
        """
        Register, join, then C{/ping}: its C{pong} says all of it is done.
        """
        return self.register(nick) + (self.join(room) if room else b"") + b"/ping ready\r\n"

    def ready(self, room: str | None = ROOM) -> bytes:
        return PONG

    def register(self, nick: str) -> bytes:
        if self.no_join:
            return b"/format json\r\n/nick %s --no-join\r\n" % nick.encode()
        return b"/format json\r\n/nick %s\r\n/part #lobby\r\n" % nick.encode()

    def join(self, room: str) -> bytes:
        return b"/join %s\r\n" % room.encode()

    def joined(self, nick: str, room: str) -> bytes:
        return b'"room":"%s","nick":"%s"}' % (room.encode(), nick.encode())

    def say(self, text: bytes) -> bytes:
        return text + b"\r\n"

    def marker(self, phase: int) -> bytes:
        return phase_marker(phase)


class IrcDialect(Dialect):
    """
    IRC (RFC 2812) as ngIRCd speaks it: registered at C{001}, joined at
    C{366} (end of NAMES), C{PING} answered with C{PONG}.

    No client sends more than three commands at once: ngIRCd handles at
    most three per connection and pass of its loop, and one left over for
    the next pass may wait for its one-second poll timeout.
    """

    quit = b"QUIT\r\n"
    _pings = re.compile(rb"^PING (.*?)\r?$", re.MULTILINE)

    def hello(self, nick: str, room: str | None = ROOM) -> bytes:
        return self.register(nick) + (self.join(room) if room else b"")

    def ready(self, room: str | None = ROOM) -> bytes:
        return b" 366 " if room else b" 001 "

    def setup(self, nick: str, room: str | None, sender: bool) -> list[tuple[bytes, bytes]]:
        """
        A sender also becomes an operator and sets user mode C{+F}, which
        exempts it from ngIRCd's throttling (see L{NGIRCD_CONF}).
        """
        if not sender:
            return super().setup(nick, room, sender)
        operator = OPERATOR.encode()
        return [
            (self.register(nick) + b"OPER %s %s\r\n" % (operator, operator), b" 381 "),
            (b"MODE %s +F\r\n" % nick.encode() + (self.join(room) if room else b""), self.ready(room)),
        ]

    def register(self, nick: str) -> bytes:
        return b"NICK %s\r\nUSER %s 0 * :%s\r\n" % ((nick.encode(),) * 3)

    def join(self, room: str) -> bytes:
        return b"JOIN %s\r\n" % room.encode()

    def joined(self, nick: str, room: str) -> bytes:
        return b" 366 %s %s " % (nick.encode(), room.encode())

    def say(self, text: bytes) -> bytes:
        return b"PRIVMSG %s :%s\r\n" % (ROOM.encode(), text)

    def marker(self, phase: int) -> bytes:
        return b"PRIVMSG %s :P%d|" % (ROOM.encode(), phase)

    def answer(self, lines: bytes) -> bytes:
        return b"".join(b"PONG %s\r\n" % token for token in self._pings.findall(lines))


# The servers.


@dataclass(frozen=True)
class Kind:
    """
    One server of the comparison.

    @ivar label: its name in the output.
    @ivar irc: C{True} for ngIRCd, C{False} for ours.
    @ivar extra: more arguments for C{twistd chat}.
    @ivar backlog: connections its listening socket queues before it
        accepts them (more are dropped and retried a second later).
    """

    label: str
    irc: bool = False
    extra: tuple[str, ...] = ()
    backlog: int = 50


OURS = Kind("ours")
IN_MEMORY = Kind("ours --in-memory", extra=("--in-memory",))
NGIRCD = Kind("ngIRCd", irc=True, backlog=10)


def free_port() -> int:
    """
    A TCP port of 127.0.0.1 that was free a moment ago.
    """
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


class Ngircd(Daemon):
    """
    C{ngircd -n -f ngircd.conf} on a free port of 127.0.0.1, configured by
    L{NGIRCD_CONF}, logging to C{ngircd.log} in C{workdir}. Started as root,
    ngIRCd switches to the user C{nobody} by itself (its PID stays the same).
    """

    listening = re.compile(r"Now listening on \[127\.0\.0\.1\]:(\d+)")
    log_name = "ngircd.log"
    _error = re.compile(r"^\[\d+:[0-3] |Write buffer space exhausted|Receive buffer space exhausted")

    def command(self, args: argparse.Namespace, room_size: int, extra: Sequence[str]) -> list[str]:
        include = self.workdir / "conf.d"
        include.mkdir(exist_ok=True)
        config = self.workdir / "ngircd.conf"
        config.write_text(NGIRCD_CONF.format(host=HOST, port=free_port(), include=include, operator=OPERATOR))
        return [args.ngircd, "-n", "-f", str(config)]

    def errors(self) -> list[str]:
        """
        Log lines of level error or worse, and the notices of a connection
        closed for a full buffer.
        """
        text = self.log_path.read_text(errors="replace")
        return [line for line in text.splitlines() if self._error.search(line)]


def chat_dialect(port: int, timeout: float = 10.0) -> ChatDialect:
    """
    Ask the daemon on C{port} whether it knows C{/nick NAME --no-join}.

    @raise RuntimeError: if it does not answer within C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    heard = b""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(b"/format json\r\n/nick nojoinprobe --no-join\r\n/quit\r\n")
        while time.monotonic() < deadline:
            data = sock.recv(READ_SIZE)
            if not data:
                return ChatDialect(no_join=b'"bad-arguments"' not in heard)
            heard += data
    raise RuntimeError("the daemon did not answer a registration")


def start_server(args: argparse.Namespace, kind: Kind, workdir: Path, room_size: int,
                 history_on_join: int | None) -> tuple[Daemon, Dialect]:
    """
    Start one server in C{workdir} for C{room_size} connections.

    @param history_on_join: ours' C{--history-on-join}, C{None} for its
        default.
    @return: the running server and how to speak to it.
    @raise RuntimeError: if it does not start (the message holds its log).
    """
    if kind.irc:
        for attempt in range(3):  # another process may take the free port first
            try:
                return Ngircd(args, room_size, workdir), IrcDialect()
            except RuntimeError:
                if attempt == 2:
                    raise
    server = Daemon(args, room_size, workdir, kind.extra, history_on_join)
    try:
        return server, chat_dialect(server.port)
    except BaseException:
        server.stop(timeout=5)
        raise


def log_tail(text: str, lines: int = 15) -> str:
    """
    The last C{lines} lines of C{text}, indented.
    """
    return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])


# The coordinator's connections.


class Peer:
    """
    A connection of this process: a sender (given C{padding} for its
    texts), a probe, or the witness. It is ready once the steps of its
    L{Dialect.setup} are done.

    @ivar count: messages of the current phase received (receivers only).
    @ivar seen: for the witness, those messages by sender nick.
    @ivar latencies: when timing, nanoseconds from send to read of each of them.
    @ivar last_ns: C{monotonic_ns} of the last read that held one.
    @ivar sent: messages sent in the current phase (senders only).
    """

    def __init__(self, port: int, nick: str, dialect: Dialect, room: str | None, padding: bytes | None = None,
                 quickack: bool = False) -> None:
        self.nick = nick
        self.dialect = dialect
        self.quickack = quickack
        self.sock = connect(port)
        self.fd = self.sock.fileno()
        self.padding = padding or b""
        self.inbox = bytearray()
        self.steps = dialect.setup(nick, room, sender=padding is not None)
        lines, self.awaited = self.steps.pop(0)
        self.outbox = bytearray(lines)
        self.ready = False
        self.marker = b""
        self.pattern: re.Pattern[bytes] | None = None
        self.timing = self.witness = False
        self.phase = self.count = self.last_ns = self.sent = 0
        self.seen: Counter[bytes] = Counter()
        self.latencies: list[int] = []
        self.flush()

    def start_phase(self, phase: int, receiving: bool, timing: bool) -> None:
        """
        Count (if C{receiving}) and time (if C{timing}) the messages of
        C{phase} from now on; a sender starts its sequence again.
        """
        self.phase = phase
        self.count = self.last_ns = self.sent = 0
        self.seen = Counter()
        self.latencies = []
        self.timing = timing
        self.marker = self.dialect.marker(phase) if receiving else b""
        self.pattern = re.compile(re.escape(self.marker) + rb"(\d+)\|([^|]+)\|") if receiving else None

    def read(self) -> bool:
        """
        Read what is there, account for the complete lines, answer pings.

        @return: C{False} once the server has closed the connection.
        """
        lines = read_lines(self.sock, self.inbox, self.quickack)
        if lines is None:
            return False
        if not lines:
            return True
        now = time.monotonic_ns()
        if not self.ready and self.awaited in lines:
            if self.steps:
                more, self.awaited = self.steps.pop(0)
                self.outbox += more
                self.flush()
            else:
                self.ready = True
        reply = self.dialect.answer(lines)
        if reply:
            self.outbox += reply
            self.flush()
        if self.pattern is None:
            return True
        if self.witness or self.timing:
            found = self.pattern.findall(lines)
            if found:
                self.count += len(found)
                self.last_ns = now
                if self.witness:
                    self.seen.update(sender for _, sender in found)
                if self.timing:
                    self.latencies.extend(now - int(stamp) for stamp, _ in found)
        else:
            counted = lines.count(self.marker)
            if counted:
                self.count += counted
                self.last_ns = now
        return True

    def send(self, how_many: int) -> None:
        """
        Send C{how_many} messages of the current phase, each stamped with
        the C{monotonic_ns} at which it is queued.
        """
        nick, phase, padding = self.nick.encode(), self.phase, self.padding
        say, clock = self.dialect.say, time.monotonic_ns
        first = self.sent + 1
        self.sent += how_many
        self.outbox += b"".join(say(b"P%d|%d|%s|%d|%s" % (phase, clock(), nick, sequence, padding))
                                for sequence in range(first, self.sent + 1))
        self.flush()

    def flush(self) -> None:
        """
        Write as much of the pending output as the socket takes.
        """
        send_pending(self.sock, self.outbox)


# One server and its clients.


def receive(*args: Any, **kwargs: Any) -> None:
    """
    Child process: L{fanout.receive_bulk}, ended by SIGTERM without
    cleanup (the handler of L{main} is for the parent only).
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    receive_bulk(*args, **kwargs)


class Session:
    """
    One started server, the connections of this process, and the child
    processes holding the others. A context manager: leaving it stops the
    server and the children and removes the server's directory.
    """

    def __init__(self, args: argparse.Namespace, kind: Kind, room_size: int,
                 history_on_join: int | None = 0) -> None:
        self.args = args
        self.kind = kind
        self._tmp = tempfile.TemporaryDirectory(prefix="chat-compare-")
        self.workdir = Path(self._tmp.name)
        self.poller = select.epoll()
        self.peers: dict[int, Peer] = {}
        self.workers: list[tuple[BaseProcess, Connection, int]] = []
        self.log_errors: list[str] = []
        try:
            self.server, self.dialect = start_server(args, kind, self.workdir, room_size, history_on_join)
        except BaseException:
            self.poller.close()
            self._tmp.cleanup()
            raise
        self.pid = self.server.pid
        self.port = self.server.port

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """
        Stop everything (L{close}); after a L{RuntimeError}, raise another
        whose message adds the server's log.
        """
        if error is None:
            self.close()
            return
        self.end_children()  # they may still be connecting: end them before the server
        log = self.log()
        self.close()
        failed = error if isinstance(error, RuntimeError) else None
        if failed is not None:
            raise RuntimeError(f"{failed}; the server's log:\n{log}") from failed

    def log(self) -> str:
        """
        The server's output so far.
        """
        return self.server.log_path.read_text(errors="replace")

    def add(self, nick: str, room: str | None = ROOM, padding: bytes | None = None) -> Peer:
        """
        Connect a peer of this process (a sender if given C{padding}) and
        start its L{Dialect.setup}.
        """
        peer = Peer(self.port, nick, self.dialect, room, padding, self.args.quickack)
        self.peers[peer.fd] = peer
        self.poller.register(peer.fd, select.EPOLLIN)
        return peer

    def settle(self, peers: Sequence[Peer]) -> None:
        """
        Wait until every one of C{peers} is ready.

        @raise RuntimeError: after C{--setup-timeout} seconds.
        """
        deadline = time.monotonic() + self.args.setup_timeout
        while not all(peer.ready for peer in peers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{sum(not p.ready for p in peers)} clients did not register in time")
            self.pump(0.02)

    def spawn(self, nicks: Sequence[str], room: str | None, processes: int) -> None:
        """
        Connect one counting receiver per nick, spread over C{processes}
        child processes, and wait until all are ready.

        @raise RuntimeError: if a child dies, if they take longer than
            C{--setup-timeout} seconds, or if some connection was closed.
        """
        context = multiprocessing.get_context("fork")
        options = {"hello": functools.partial(self.dialect.hello, room=room), "ready": self.dialect.ready(room),
                   "marker_of": self.dialect.marker, "quickack": self.args.quickack,
                   "batch": max(1, (self.kind.backlog - 2) // processes)}
        for index in range(min(processes, len(nicks))):
            mine, theirs = context.Pipe()
            share = nicks[index::processes]
            child = context.Process(target=receive, args=(self.port, share, theirs, 0.0), kwargs=options,
                                    daemon=True)
            child.start()
            theirs.close()
            self.workers.append((child, mine, len(share)))
        deadline = time.monotonic() + self.args.setup_timeout
        for worker, control, expected in self.workers:
            while not control.poll(0):
                self.pump(0.02)
                if not worker.is_alive():
                    raise RuntimeError("a receiver process died (see its traceback above)")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the receivers did not all register in {self.args.setup_timeout:g} s")
            _, connected = control.recv()
            if connected != expected:
                raise RuntimeError(f"only {connected} of {expected} receivers stayed connected")

    def ask(self, command: tuple[object, ...]) -> list[Any]:
        """
        Send C{command} to every child and return their answers, reading
        the peers meanwhile.
        """
        for _, control, _ in self.workers:
            control.send(command)
        answers = []
        deadline = time.monotonic() + self.args.drain
        for worker, control, _ in self.workers:
            while not control.poll(0):
                if not worker.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("a receiver process stopped answering")
                self.pump(0.001)
            try:
                answers.append(control.recv())
            except EOFError:
                raise RuntimeError("a receiver process died") from None
        return answers

    def pump(self, timeout: float) -> None:
        """
        Wait up to C{timeout} seconds for input, read it, and flush output.
        """
        pump(self.poller, self.peers, timeout)

    def cpu(self) -> tuple[float, float]:
        """
        CPU seconds used so far by the server and by the clients (this
        process and the children).
        """
        children = sum(answer[2] for answer in self.ask(("report",)))
        return cpu_seconds(self.pid), time.process_time() + children

    def others(self) -> dict[int, int]:
        """
        CPU ticks used so far by every other process of the machine, by
        PID (for L{fanout.other_cpu}).
        """
        ours = {os.getpid(), self.pid, *(worker.pid or 0 for worker, _, _ in self.workers)}
        return process_ticks(ours)

    def others_share(self, before: dict[int, int], seconds: float) -> float:
        """
        The CPU other processes used since C{before}, as a share of one core
        over C{seconds}.
        """
        return other_cpu(before, self.others()) / os.sysconf("SC_CLK_TCK") / seconds

    def close(self) -> None:
        """
        Stop the server with SIGTERM (SIGKILL after C{--stop-timeout}
        seconds) while the clients still read, keep the error lines of its
        log in L{log_errors}, then end the children and remove the
        directory.
        """
        try:
            process = self.server.process
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + self.args.stop_timeout
                while process.poll() is None and time.monotonic() < deadline:
                    self.pump(0.05)
            self.server.stop(timeout=1)
            self.log_errors = self.server.errors()
        finally:
            self.end_children()
            for peer in self.peers.values():
                peer.sock.close()
            self.poller.close()
            self._tmp.cleanup()

    def end_children(self) -> None:
        """
        Ask the children to close their connections and exit; terminate
        those that have not within 5 s.
        """
        for _, control, _ in self.workers:
            try:
                control.send(("quit",))
            except OSError:
                pass
        for worker, _, _ in self.workers:
            worker.join(5)
            if worker.is_alive():
                worker.terminate()
                worker.join(5)
        self.workers = []


# Measurements.


@dataclass
class Sample:
    """
    One figure of one server in one run.

    @ivar value: in the figure's unit.
    @ivar server_cpu: the server's CPU over the measurement, as a share of
        one core.
    @ivar client_cpu: the load generator's, likewise.
    @ivar other_cpu: every other process's on the machine, likewise: work
        that competed for the cores.
    @ivar notes: anything a reader should know (missing deliveries, ...).
    """

    value: float
    server_cpu: float
    client_cpu: float = float("nan")
    other_cpu: float = float("nan")
    notes: list[str] = field(default_factory=list)


class Room:
    """
    C{users} receivers and C{senders} senders in C{#bench} on one server.

    Join order, which is both servers' fan-out order: half the probes, the
    counting receivers (in child processes), the other probes, the senders,
    and last the witness (itself a probe). Every receiver counts the
    messages of the current phase; probes time them in the latency phase.
    """

    def __init__(self, session: Session, users: int, senders: int) -> None:
        args = session.args
        self.session = session
        self.users = users
        padding_size = max(0, args.text_size - 40)
        padding = (b"abcdefghij" * (padding_size // 10 + 1))[:padding_size]
        probes = max(1, min(args.probes, users))
        early = (probes - 1) // 2
        self.probes = [session.add(f"p{i}") for i in range(early)]
        session.settle(self.probes)
        session.spawn([f"r{i}" for i in range(users - probes)], ROOM, args.procs)
        late = [session.add(f"p{i}") for i in range(early, probes - 1)]
        session.settle(late)
        self.senders = [session.add(f"s{i}", padding=padding) for i in range(senders)]
        session.settle(self.senders)
        self.witness = session.add("w")
        self.witness.witness = True
        session.settle([self.witness])
        self.probes += [*late, self.witness]
        self.phase = 0

    def closed_loop(self, senders: int, window: int) -> Sample:
        """
        The first C{senders} senders send flat out, each with at most
        C{window} messages not yet at the witness, for C{--seconds}.

        @return: deliveries per second.
        """
        active = [(sender, sender.nick.encode()) for sender in self.senders[:senders]]

        def drive(end: float) -> bool:
            seen = self.witness.seen
            while time.monotonic() < end:
                for sender, nick in active:
                    room = window - (sender.sent - seen[nick])
                    if room > 0:
                        sender.send(room)
                self.session.pump(0.05)
            return False

        return self._measure([sender for sender, _ in active], drive, timing=False, seconds=self.session.args.seconds)

    def paced(self, deliveries: float, seconds: float, senders: int) -> tuple[Sample, list[float]]:
        """
        The first C{senders} senders together send C{deliveries / users}
        messages per second, evenly spaced and taking turns, for C{seconds}.

        @return: deliveries per second, and the probes' latencies in
            milliseconds, sorted.
        """
        active = self.senders[:senders]
        rate = deliveries / self.users
        gap = 1.0 / rate

        def drive(end: float) -> bool:
            due = time.monotonic()
            turn = 0
            while due < end:
                wait = due - time.monotonic()
                if wait > 0:
                    self.session.pump(wait)
                    continue
                active[turn % len(active)].send(1)
                turn += 1
                due += gap
                if turn - self.witness.count > rate * 2:
                    return True  # two seconds behind: the server cannot keep up
            return False

        sample = self._measure(active, drive, timing=True, seconds=seconds)
        return sample, sorted(ns / 1e6 for probe in self.probes for ns in probe.latencies)

    def _measure(self, active: Sequence[Peer], drive: Callable[[float], bool], timing: bool,
                 seconds: float) -> Sample:
        session = self.session
        self.phase += 1
        session.ask(("phase", self.phase))
        for probe in self.probes:
            probe.start_phase(self.phase, receiving=True, timing=timing)
        for sender in self.senders:
            sender.start_phase(self.phase, receiving=False, timing=False)
        server_cpu, client_cpu = session.cpu()
        others = session.others()
        started_ns = time.monotonic_ns()
        start = time.monotonic()
        overloaded = drive(start + seconds)
        sent = sum(sender.sent for sender in active)
        expected = sent * self.users
        deadline = time.monotonic() + session.args.drain
        while True:
            session.pump(0.02)
            reports = session.ask(("report",))
            counted = sum(report[0] for report in reports) + sum(probe.count for probe in self.probes)
            if counted >= expected or time.monotonic() > deadline:
                break
        last_ns = max([report[1] for report in reports] + [probe.last_ns for probe in self.probes])
        elapsed = (last_ns - started_ns) / 1e9 if last_ns > started_ns else time.monotonic() - start
        wall = time.monotonic() - start
        server_after, client_after = session.cpu()
        sample = Sample(counted / elapsed, (server_after - server_cpu) / wall, (client_after - client_cpu) / wall,
                        session.others_share(others, wall))
        if counted < expected:
            sample.notes.append(f"{expected - counted} of {expected} deliveries missing "
                                f"after {session.args.drain:g} s")
        if overloaded:
            sample.notes.append("overloaded: stopped two seconds behind")
        return sample


def percentile(values: Sequence[float], fraction: float) -> float:
    """
    The value below which C{fraction} of the sorted C{values} lie; NaN when
    there are none.
    """
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))]


class Churn:
    """
    C{clients} loops on one server, each repeating: connect, register and
    join C{#churn} (sent at once), wait for the join's confirmation, quit,
    wait for the server to close.

    @ivar cycles: cycles completed within the measured time.
    @ivar failures: cycles that ended otherwise (closed early, or no answer
        within C{--drain} seconds).
    """

    def __init__(self, session: Session, clients: int) -> None:
        self.session = session
        self.clients = clients
        self.poller = select.epoll()
        self.loops: dict[int, tuple[socket.socket, int, int, bytes, float]] = {}
        """By file descriptor: the socket, the loop's slot, its cycle, the
        join marker still awaited (empty once C{quit} was sent), and when
        the cycle started."""
        self.tails: dict[int, bytes] = {}
        self.cycles = self.failures = 0

    def _begin(self, slot: int, cycle: int) -> None:
        nick = f"c{slot}x{cycle % 1000}"
        dialect = self.session.dialect
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect((HOST, self.session.port))
        sock.setblocking(False)
        sock.send(dialect.register(nick) + dialect.join(CHURN_ROOM))
        self.loops[sock.fileno()] = (sock, slot, cycle, dialect.joined(nick, CHURN_ROOM), time.monotonic())
        self.tails[sock.fileno()] = b""
        self.poller.register(sock.fileno(), select.EPOLLIN)

    def _end(self, fd: int, counted: int, failed: int, again: bool) -> None:
        sock, slot, cycle, _, _ = self.loops.pop(fd)
        del self.tails[fd]
        self.poller.unregister(fd)
        sock.close()
        self.cycles += counted
        self.failures += failed
        if again:
            self._begin(slot, cycle + 1)

    def run(self, seconds: float) -> None:
        """
        Run the loops for C{seconds}, then give up the cycles under way
        (not counted).
        """
        start = time.monotonic()
        end = start + seconds
        timeout = self.session.args.drain
        quit_line = self.session.dialect.quit
        for slot in range(self.clients):
            self._begin(slot, 0)
        while self.loops:
            now = time.monotonic()
            if now > end + timeout:
                break
            for fd, _ in self.poller.poll(0.05):
                sock, slot, cycle, awaited, began = self.loops[fd]
                try:
                    data = sock.recv(READ_SIZE)
                except OSError:
                    data = b""
                now = time.monotonic()
                if not data:  # closed: done if it had quit, else failed
                    self._end(fd, counted=int(not awaited and now <= end), failed=int(bool(awaited)), again=now < end)
                elif awaited:
                    seen = self.tails[fd] + data
                    if awaited in seen:
                        sock.send(quit_line)
                        self.loops[fd] = (sock, slot, cycle, b"", began)
                    else:
                        self.tails[fd] = seen[-len(awaited):]
            for fd, (_, _, _, _, began) in list(self.loops.items()):
                if now - began > timeout:
                    self._end(fd, counted=0, failed=1, again=now < end)
        for fd in list(self.loops):  # still under way when time was up
            self._end(fd, counted=0, failed=0, again=False)
        self.poller.close()


# The measurements, one server each.


def measure_fanout(args: argparse.Namespace, kind: Kind, users: int, fanout: bool, latency: bool,
                   ) -> dict[str, Sample]:
    """
    One server, C{users} receivers: if C{fanout}, a closed-loop phase for
    each of C{--senders}; then, if C{latency}, the paced phase with
    L{LATENCY_SENDERS} senders.

    @return: samples by row key (L{fanout_key}, L{LATENCY_P50}, L{LATENCY_P99}).
    """
    samples: dict[str, Sample] = {}
    senders = max([*args.senders, LATENCY_SENDERS] if latency else args.senders)
    with Session(args, kind, users + senders + 1) as session:
        room = Room(session, users, senders)
        if fanout:
            for count in args.senders:
                samples[fanout_key(users, count)] = room.closed_loop(count, args.window)
        if latency:
            time.sleep(0.3)
            sample, latencies = room.paced(args.latency_rate, args.latency_seconds, LATENCY_SENDERS)
            sample.notes.append(f"{len(latencies)} latencies; {sample.value:,.0f} deliveries/s")
            for key, fraction in ((LATENCY_P50, 0.5), (LATENCY_P99, 0.99)):
                samples[key] = Sample(percentile(latencies, fraction), sample.server_cpu, sample.client_cpu,
                                      sample.other_cpu, list(sample.notes))
    add_log_errors(session, samples.values())
    return samples


def measure_memory(args: argparse.Namespace, kind: Kind, count: int, in_room: bool) -> dict[str, Sample]:
    """
    One fresh server: its C{VmRSS} before and after C{count} clients
    registered (and joined C{#bench} if C{in_room}) and went quiet.

    @return: KiB per connection, by L{memory_key}.
    """
    with Session(args, kind, count) as session:
        time.sleep(args.settle / 2)
        before = memory_kib(session.pid)["VmRSS"]
        cpu = cpu_seconds(session.pid)
        others = session.others()
        start = time.monotonic()
        processes = max(args.procs, math.ceil(count / SOCKETS_PER_PROCESS))
        session.spawn([f"m{i}" for i in range(count)], ROOM if in_room else None, processes)
        quiet(session, args.setup_timeout)
        took = time.monotonic() - start
        busy = (cpu_seconds(session.pid) - cpu) / took
        other = session.others_share(others, took)
        time.sleep(args.settle)
        after = memory_kib(session.pid)["VmRSS"]
        sample = Sample((after - before) / count, busy, other_cpu=other)
        sample.notes.append(f"registered in {took:.1f} s; VmRSS {before / 1024:.1f} -> {after / 1024:.1f} MiB")
    add_log_errors(session, [sample])
    return {memory_key(count, in_room): sample}


def quiet(session: Session, timeout: float) -> None:
    """
    Wait until the children have received nothing for 0.3 s (the server has
    sent all it had queued), at most C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    received = -1
    while time.monotonic() < deadline:
        total = sum(answer[3] for answer in session.ask(("report",)))
        if total == received:
            return
        received = total
        time.sleep(0.3)


def measure_churn(args: argparse.Namespace, kind: Kind) -> dict[str, Sample]:
    """
    One fresh server (ours with its default history on join): L{Churn}
    for C{--seconds}.

    @return: cycles per second, by L{CHURN}.
    """
    with Session(args, kind, args.churn_clients * 2 + 16, history_on_join=None) as session:
        cpu = cpu_seconds(session.pid)
        client_cpu = time.process_time()
        others = session.others()
        start = time.monotonic()
        churn = Churn(session, args.churn_clients)
        churn.run(args.seconds)
        wall = time.monotonic() - start
        sample = Sample(churn.cycles / args.seconds, (cpu_seconds(session.pid) - cpu) / wall,
                        (time.process_time() - client_cpu) / wall, session.others_share(others, wall))
        if churn.failures:
            sample.notes.append(f"{churn.failures} cycles failed")
    add_log_errors(session, [sample])
    return {CHURN: sample}


def add_log_errors(session: Session, samples: Iterable[Sample]) -> None:
    """
    Note the first error lines of the server's log on each of C{samples}.
    """
    errors = session.log_errors
    if errors:
        for sample in samples:
            sample.notes.append(f"{len(errors)} error lines in the server's log, first: {errors[0].strip()}")


# Rows of the report.


def fanout_key(users: int, senders: int) -> str:
    """
    The row key of a fan-out figure.
    """
    return f"fanout {users} {senders}"


def memory_key(count: int, in_room: bool) -> str:
    """
    The row key of a memory figure.
    """
    return f"memory {count} {'room' if in_room else 'none'}"


@dataclass(frozen=True)
class Row:
    """
    One line of the report.

    @ivar key: the samples' key.
    @ivar title: what it measures, with its unit.
    @ivar higher_is_better: for the ratio's reading.
    @ivar digits: decimals to print (values of 10,000 and more are
        abbreviated to k or M).
    """

    key: str
    title: str
    higher_is_better: bool
    digits: int = 0


def rows(args: argparse.Namespace) -> list[Row]:
    """
    The report's rows for the figures this run measures, in order.
    """
    found = []
    if args.run_fanout:
        for users in args.users:
            for senders in args.senders:
                found.append(Row(fanout_key(users, senders),
                                 f"fan-out deliveries/s, {users:,} users, {senders} sender{'s' * (senders > 1)}", True))
    if args.run_latency:
        rate, users = f"{args.latency_rate:,.0f}", f"{args.latency_users:,}"
        found.append(Row(LATENCY_P50, f"latency p50 ms, paced {rate} deliveries/s, {users} users", False, 1))
        found.append(Row(LATENCY_P99, f"latency p99 ms, paced {rate} deliveries/s, {users} users", False, 1))
    if args.run_memory:
        for count, in_room in memory_points(args):
            where = "in one room" if in_room else "in no room"
            found.append(Row(memory_key(count, in_room), f"KiB per idle connection, {count:,} {where}", False, 2))
    if args.run_churn:
        found.append(Row(CHURN, f"connect-register-join-quit cycles/s, {args.churn_clients} loops", True))
    return found


def memory_points(args: argparse.Namespace) -> list[tuple[int, bool]]:
    """
    The memory measurements: (connections, in one room), by size.
    """
    return sorted([(count, False) for count in args.connections] + [(count, True) for count in args.room_connections])


def measurements(args: argparse.Namespace) -> list[tuple[str, Callable[[Kind], dict[str, Sample]]]]:
    """
    The measurements of one repeat, in order, as (name, function of the
    server): each function starts its own server.
    """
    found: list[tuple[str, Callable[[Kind], dict[str, Sample]]]] = []
    users = list(args.users) if args.run_fanout else []
    if args.run_latency and args.latency_users not in users:
        users.append(args.latency_users)
    for n in users:
        latency = args.run_latency and n == args.latency_users
        fanout = args.run_fanout and n in args.users
        name = " + ".join([f"fan-out N={n}"] * fanout + [f"latency N={n}"] * latency)
        found.append((name, functools.partial(measure_fanout, args, users=n, fanout=fanout, latency=latency)))
    if args.run_memory:
        for count, in_room in memory_points(args):
            found.append((f"memory {count:,} {'in a room' if in_room else 'no room'}",
                          functools.partial(measure_memory, args, count=count, in_room=in_room)))
    if args.run_churn:
        found.append(("churn", functools.partial(measure_churn, args)))
    return found


def short(value: float, digits: int) -> str:
    """
    C{value} for a table: NaN as a dash, large values as k or M.
    """
    if math.isnan(value):
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    return f"{value:,.{digits}f}"


def median(samples: Sequence[Sample], attribute: str = "value") -> float:
    """
    The median of one attribute over C{samples}; NaN when there are none.
    """
    values = [getattr(sample, attribute) for sample in samples]
    return statistics.median(values) if values else float("nan")


def print_progress(kind: Kind, row: Row, sample: Sample) -> None:
    """
    One measured figure, as it comes.
    """
    clients = "" if math.isnan(sample.client_cpu) else f", clients {sample.client_cpu:.0%}"
    others = "" if math.isnan(sample.other_cpu) else f", others {sample.other_cpu:.0%}"
    print(f"    {kind.label:<17} {row.title:<62} {short(sample.value, row.digits):>8}"
          f"   server CPU {sample.server_cpu:.0%}{clients}{others}")
    for note in sample.notes:
        print(f"    {'':<17} ({note})")


def print_report(args: argparse.Namespace, kinds: Sequence[Kind], results: dict[str, dict[str, list[Sample]]],
                 repeats: int) -> None:
    """
    The Markdown table of medians: each server's figure, ours over
    ngIRCd's, which way is better, and the servers' median CPU.
    """
    ours = [kind for kind in kinds if not kind.irc]
    header = ["figure", *(kind.label for kind in kinds), *(f"{kind.label} ÷ ngIRCd" for kind in ours),
              "better", "server CPU " + " / ".join(kind.label for kind in kinds)]
    print(f"\n| {' | '.join(header)} |")
    print(f"|{' --- |' * len(header)}")
    for row in rows(args):
        found = results.get(row.key, {})
        values = {kind.label: median(found.get(kind.label, [])) for kind in kinds}
        cells = [row.title]
        for kind in kinds:
            runs = len(found.get(kind.label, []))
            cells.append(short(values[kind.label], row.digits) + ("" if runs == repeats else f" ({runs} of {repeats})"))
        for kind in ours:
            ratio = values[kind.label] / values[NGIRCD.label] if values[NGIRCD.label] else float("nan")
            cells.append("-" if math.isnan(ratio) else f"{ratio:.2f}")
        cells.append("higher" if row.higher_is_better else "lower")
        cpu = [median(found.get(kind.label, []), "server_cpu") for kind in kinds]
        cells.append(" / ".join("-" if math.isnan(share) else f"{share:.0%}" for share in cpu))
        print(f"| {' | '.join(cells)} |")


# Command line.


def int_list(text: str) -> list[int]:
    """
    A comma-separated list of positive integers, for argparse.
    """
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"each value must be at least 1: {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    """
    The command-line options.
    """
    parser = argparse.ArgumentParser(
        description="The chat daemon beside ngIRCd on 127.0.0.1, the same loads, medians and ratios "
                    "(see the module docstring and bench/README.md).")
    parser.add_argument("--twistd", default=str(Path(sys.executable).with_name("twistd")),
                        help="the twistd executable (default: next to this Python)")
    parser.add_argument("--ngircd", default="/usr/sbin/ngircd", help="the ngIRCd executable (default %(default)s)")
    parser.add_argument("--in-memory", action="store_true", help="also measure ours with --in-memory (adds a column)")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help="figures to measure, comma-separated, of: " + ", ".join(FIGURES))
    parser.add_argument("--quick", action="store_true",
                        help="one repeat, 1.5 s phases, memory at 100 and 1,000 connections only")
    parser.add_argument("--repeat", type=int, default=3, help="runs of every measurement per server (default 3)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of a fan-out or churn phase (default 3)")
    parser.add_argument("--users", type=int_list, default=[100, 1000],
                        help="fan-out receivers, comma-separated (default 100,1000)")
    parser.add_argument("--senders", type=int_list, default=[1, 4],
                        help="fan-out senders, comma-separated (default 1,4)")
    parser.add_argument("--window", type=int, default=32,
                        help="fan-out: messages each sender keeps in flight (default 32)")
    parser.add_argument("--text-size", type=int, default=64, help="bytes of message text (default 64)")
    parser.add_argument("--probes", type=int, default=8,
                        help="receivers in this process, the witness included; they time messages (default 8)")
    parser.add_argument("--procs", type=int, default=1,
                        help="child processes for the fan-out's counting receivers (default 1)")
    parser.add_argument("--latency-rate", type=float, default=25000.0,
                        help="latency: deliveries per second, paced (default 25000)")
    parser.add_argument("--latency-users", type=int, default=1000, help="latency: receivers (default 1000)")
    parser.add_argument("--latency-seconds", type=float, default=5.0, help="latency: length of the phase (default 5)")
    parser.add_argument("--connections", type=int_list, default=[1000, 10000],
                        help="memory: connections in no room, comma-separated (default 1000,10000)")
    parser.add_argument("--room-connections", type=int_list, default=[1000],
                        help="memory: connections all in one room, comma-separated (default 1000; every join is "
                             "sent to everyone in the room, so 10,000 take minutes)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="memory: quiet seconds before reading the server's RSS (default 1)")
    parser.add_argument("--churn-clients", type=int, default=8,
                        help="churn: loops at once (default 8: ngIRCd queues at most 11 connections not yet accepted)")
    parser.add_argument("--drain", type=float, default=10.0,
                        help="seconds allowed for deliveries after a phase, and for a churn cycle (default 10)")
    parser.add_argument("--setup-timeout", type=float, default=120.0,
                        help="seconds allowed to connect and register a measurement's clients (default 120)")
    parser.add_argument("--stop-timeout", type=float, default=15.0,
                        help="seconds a server has to exit after SIGTERM before SIGKILL (default 15)")
    parser.add_argument("--no-quickack", dest="quickack", action="store_false",
                        help="receivers leave TCP's delayed acknowledgements on (then ngIRCd, which does not set "
                             "TCP_NODELAY, waits up to 40 ms for them before its next write)")
    parser.add_argument("--max-output", type=int, default=64 << 20,
                        help="ours' --max-output, bytes (default 64 MiB)")
    parser.add_argument("--daemon-arg", action="append", metavar="ARG",
                        help="one more argument for twistd chat (repeatable)")
    parser.set_defaults(profile=None)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    Parse and check the options, applying C{--quick}.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if not only or only - set(FIGURES):
        parser.error(f"--only takes some of: {', '.join(FIGURES)}")
    for name in FIGURES:
        setattr(args, f"run_{name}", name in only)
    if args.quick:
        args.repeat = 1
        args.seconds = min(args.seconds, 1.5)
        args.latency_seconds = min(args.latency_seconds, 2.0)
        args.connections = args.room_connections = [100, 1000]
    if args.repeat < 1 or args.seconds <= 0 or args.window < 1 or args.probes < 1 or args.procs < 1:
        parser.error("--repeat, --window, --probes and --procs must be at least 1, --seconds above 0")
    if args.latency_rate <= 0 or args.latency_users < 1 or args.churn_clients < 1:
        parser.error("--latency-rate, --latency-users and --churn-clients must be positive")
    for executable, option in ((args.twistd, "--twistd"), (args.ngircd, "--ngircd")):
        if not os.access(executable, os.X_OK):
            parser.error(f"{option}: {executable} is not an executable file")
    return args


def raise_fd_limit() -> int:
    """
    Raise this process's soft limit of open files to the hard limit (the
    servers and the children inherit it).

    @return: the soft limit now.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = int(Path("/proc/sys/fs/nr_open").read_text()) if hard == resource.RLIM_INFINITY else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def versions(args: argparse.Namespace) -> str:
    """
    The servers' versions, for the header.
    """
    found = []
    for command in ([args.ngircd, "--version"], [args.twistd, "--version"]):
        try:
            output = subprocess.run(command, check=False, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            output = ""
        found.append(output.splitlines()[0] if output else f"{command[0]}: no version")
    return "; ".join(found)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run every measurement C{--repeat} times, the servers taking turns,
    print each figure as it comes, then the table of medians.

    @return: the exit status: 1 if some measurement failed.
    """
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: the servers and clients of the measurement under way were stopped")
        return 130


def interrupt(signum: int, frame: object) -> None:
    """
    SIGTERM handler: stop as Ctrl-C does, so that the servers are stopped
    and their directories removed.
    """
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """
    The body of L{main}.
    """
    started = time.monotonic()
    limit = raise_fd_limit()
    if args.run_memory:
        for option in ("connections", "room_connections"):
            counts = getattr(args, option)
            for count in sorted({count for count in counts if count + 64 > limit}):
                print(f"skipping memory at {count:,} connections: the open-files limit is {limit:,}")
            setattr(args, option, [count for count in counts if count + 64 <= limit])
    kinds = [OURS, *([IN_MEMORY] if args.in_memory else []), NGIRCD]
    print(f"chat beside ngIRCd on 127.0.0.1: {os.cpu_count()} cores shared by the servers and the load generator; "
          f"load average {os.getloadavg()[0]:.2f}; Python {platform.python_version()}; open files {limit:,}")
    print(f"{versions(args)}")
    print(f"{args.repeat} run(s) of each measurement, servers in turn: {', '.join(k.label for k in kinds)}; "
          f"phases {args.seconds:g} s, window {args.window}, texts {args.text_size} bytes")
    results: dict[str, dict[str, list[Sample]]] = {}
    titles = {row.key: row for row in rows(args)}
    failed = 0
    for repeat in range(args.repeat):
        for name, run in measurements(args):
            print(f"[run {repeat + 1}/{args.repeat}, {time.monotonic() - started:.0f} s] {name}", flush=True)
            for kind in kinds:
                try:
                    samples = run(kind)
                except (RuntimeError, OSError) as error:
                    failed += 1
                    first, _, log = str(error).partition("\n")
                    print(f"    {kind.label:<17} FAILED: {first or type(error).__name__}")
                    if first.endswith("log:"):
                        print(log_tail(log) if log.strip() else "    (empty)")
                    continue
                for key, sample in samples.items():
                    results.setdefault(key, {}).setdefault(kind.label, []).append(sample)
                    print_progress(kind, titles[key], sample)
                sys.stdout.flush()
    print_report(args, kinds, results, args.repeat)
    print_footer(
        args, results, started, ": the more, the less the figures mean",
        "; ratio = ours ÷ ngIRCd, ahead when >= 1 for \"higher\", <= 1 for \"lower\"",
    )
    return 1 if failed else 0


def print_footer(
    args: argparse.Namespace,
    results: dict[str, dict[Any, list[Any]]],
    started: float,
    busy_note: str = "",
    medians_note: str = "",
) -> None:
    """
    The last lines of a report: how busy the rest of the machine was, and
    how many runs and seconds it took (C{started}: C{time.monotonic()});
    the notes end those two lines.
    """
    others = [sample.other_cpu for found in results.values() for samples in found.values() for sample in samples
              if not math.isnan(sample.other_cpu)]
    print()
    if others:
        print(f"other processes on the machine used {statistics.median(others):.0%} of a core "
              f"(median over the measurements, at most {max(others):.0%}){busy_note}.")
    print(f"medians of {args.repeat} run(s){medians_note}; elapsed {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""
Fan-out benchmark of the chat daemon: N receivers and S senders in one room
over loopback, printing deliveries per second and end-to-end latency.

For each N it starts a real C{twistd -n chat} on a free port of 127.0.0.1
(flood limits raised, history on join off, output cap and per-address limit
raised), connects the clients (all C{/format json}, all in C{#bench}), then
runs these phases, each for C{--seconds}:

  - C{max K=...}: a closed loop, once per C{--window} K (default 8 and
    32). Each sender sends flat out but keeps at most K messages in flight,
    counting its own echoes (the daemon echoes a room message to its
    sender, who joined last). Queues stay bounded, so the throughput is the
    daemon's and the latency still means something (by Little's law about
    K * S * N / throughput). Pure flat-out sending would only grow queues.
  - C{load NN%}: an open loop at a fixed total rate, a fraction of the best
    C{max} rate (C{--load}, default 2%, 10%, 25%, 50%), or given in messages
    per second per sender (C{--rate}). A phase that falls more than two
    seconds behind stops early, marked overloaded.

The daemon batches: a message fanned out alone costs each receiver a
C{send} system call, while messages that arrive together share it. So
the daemon's CPU per delivery (column C{us/del}) is lowest in the C{max}
phases, and a low fixed rate can keep the daemon busier than its share of
the maximum suggests.

Each message text carries its phase, its send time (C{time.monotonic_ns},
comparable across processes) and a sequence number. Most receivers run in
C{--procs} child processes and only count a marker with C{bytes.count},
so they cost little CPU; a few probe receivers (C{--probes}, spread over
the fan-out order) and the senders run in the coordinating process, which
parses the send time of every message a probe gets: latency is sampled on
the probes only. Deliveries are messages received, summed over the N
receivers (the senders' echoes are not counted).

The machine may have few cores: the clients compete with the single-threaded
daemon for CPU, and the output says how busy the daemon, the clients, the
other processes of the machine and the kernel's interrupt handling were, so
a reader can tell whether the daemon was the bottleneck (daemon CPU near
100%) and whether other work disturbed the run.

C{--profile py-spy} or C{--profile cprofile} adds a profiled C{max} phase
(or, with C{--profile-load}, an open-loop one) at the end, after the
reported phases, which are never profiled, and prints the hot spots.
C{py-spy} samples the daemon from outside; C{cprofile} runs the daemon
under a small launcher that switches C{cProfile} on and off with SIGUSR1
and SIGUSR2.

Everything is bounded: phases by C{--seconds}, draining by C{--drain}, the
daemon is stopped with SIGTERM (SIGKILL after C{--drain} seconds) and the
child processes are joined or terminated. Run with the project's Python::

    /tmp/v/bin/python bench/fanout.py                # N = 100 and 1000, S = 4
    /tmp/v/bin/python bench/fanout.py -n 1000 --seconds 5 --profile py-spy
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol, TypeVar

HOST = "127.0.0.1"
ROOM = "#bench"
READ_SIZE = 1 << 18
"""Bytes asked of one C{recv}."""
CONNECT_BATCH = 32
"""Connections a process opens before waiting for their registration (the listen backlog is 50)."""
PONG = b'"type":"pong"'
LISTENING = re.compile(r"chat listening on 127\.0\.0\.1:(\d+)")
OVERLOAD_SECONDS = 2.0
"""An open-loop phase stops once a sender is this far behind."""

LAUNCHER = """\
import cProfile, signal, sys
from twisted.scripts.twistd import run
out = sys.argv[1]
sys.argv = ["twistd", *sys.argv[2:]]
profile = cProfile.Profile()
def start(signum, frame):
    profile.enable()
def stop(signum, frame):
    profile.disable()
    profile.dump_stats(out)
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, stop)
run()
"""
"""Runs twistd with cProfile switched on by SIGUSR1 and off (and dumped) by SIGUSR2."""


def registration(nick: str) -> bytes:
    """
    The lines one client sends on connect: JSON format, its nick, into
    C{#bench} and out of C{#lobby} (so joins are not fanned out twice), then
    a ping whose C{pong} tells that all of it is done.
    """
    return f"/format json\r\n/nick {nick}\r\n/join {ROOM}\r\n/part #lobby\r\n/ping ready\r\n".encode()


def phase_marker(phase: int) -> bytes:
    """
    The bytes that start the JSON C{text} member of every message of
    C{phase}, counted by the receivers.
    """
    return b'"text":"P%d|' % phase


def connect(port: int) -> socket.socket:
    """
    A non-blocking TCP connection to the daemon on 127.0.0.1, with
    C{TCP_NODELAY}.
    """
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def read_lines(sock: socket.socket, inbox: bytearray, quickack: bool = False) -> bytes | None:
    """
    Read what is available on the non-blocking C{sock}, add it to C{inbox}
    and take the complete lines out of it. With C{quickack}, acknowledge at
    once (C{TCP_QUICKACK}).

    @return: the complete lines, LF included (empty if none is complete
        yet), or C{None} once the other end has closed the connection.
    """
    try:
        data = sock.recv(READ_SIZE)
        if quickack:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    except BlockingIOError:
        return b""
    except OSError:
        data = b""
    if not data:
        return None
    inbox += data
    end = inbox.rfind(b"\n") + 1
    lines = bytes(inbox[:end])
    del inbox[:end]
    return lines


def send_pending(sock: socket.socket, outbox: bytearray) -> None:
    """
    Write as much of C{outbox} as the non-blocking C{sock} takes, and take
    that out of C{outbox}.
    """
    if outbox:
        try:
            written = sock.send(outbox)
        except BlockingIOError:
            return
        del outbox[:written]


class Pollable(Protocol):
    """
    A client connection that L{pump} serves.
    """

    outbox: bytearray

    def read(self) -> bool:
        """
        Read what is available; C{False} once the server has closed.
        """

    def flush(self) -> None:
        """
        Write what the socket takes of C{outbox}.
        """


PollableT = TypeVar("PollableT", bound=Pollable)


def pump(poller: select.epoll, clients: dict[int, PollableT], timeout: float) -> None:
    """
    Wait up to C{timeout} seconds for input on C{poller}, have each client
    with input read it (forgetting those the server closed), then flush the
    clients' pending output. C{clients} are by file descriptor.
    """
    for fd, _ in poller.poll(timeout):
        if not clients[fd].read():
            poller.unregister(fd)
            del clients[fd]
    for client in clients.values():
        if client.outbox:
            client.flush()


# The bulk receivers: a child process that counts.


def receive_bulk(
    port: int,
    nicks: Sequence[str],
    control: Connection,
    lazy: float,
    hello: Callable[[str], bytes] = registration,
    ready: bytes = PONG,
    marker_of: Callable[[int], bytes] = phase_marker,
    batch: int = CONNECT_BATCH,
    quickack: bool = False,
) -> None:
    """
    Child process: connects and registers one receiver per nick, then counts
    the current phase's messages until told to quit.

    By default it speaks the chat daemon's protocol; another server's
    clients give C{hello} (the bytes a receiver sends on connect, given its
    nick), C{ready} (bytes that arrive once its registration and join are
    done) and C{marker_of} (the counted marker of a phase), as
    C{compare.py} does for IRC. C{batch} is how many connections it opens
    before waiting for their registration (keep it under the server's listen
    backlog). With C{quickack} it sets C{TCP_QUICKACK} after every read, so
    the kernel acknowledges at once rather than up to 40 ms later: a server
    without C{TCP_NODELAY} (ngIRCd) holds small writes until then.

    Commands on C{control}: C{("phase", n)} switches the counted marker and
    zeroes the count (answered C{"ok"}); C{("report",)} is answered with
    C{(count, last_ns, cpu_seconds, bytes)}, C{last_ns} being the
    C{monotonic_ns} of the last read that held a counted message;
    C{("quit",)} closes everything. Sends C{("ready", connected)} once all
    have registered.
    With C{lazy} seconds above 0 it sleeps that long after each round of
    reads, so it is not woken for every single write of the daemon.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator cleans up
    poller = select.epoll()
    control_fd = control.fileno()
    poller.register(control_fd, select.EPOLLIN)
    socks: dict[int, socket.socket] = {}
    tails: dict[int, bytes] = {}
    waiting: set[int] = set()
    todo = list(reversed(nicks))
    buf = bytearray(READ_SIZE)
    marker = marker_of(0)
    keep = len(marker) - 1
    count = total_bytes = last_ns = 0
    announced = False
    clock = time.monotonic_ns
    while True:
        while todo and len(waiting) < batch:
            sock = connect(port)
            sock.sendall(hello(todo.pop()))
            fd = sock.fileno()
            socks[fd], tails[fd] = sock, b""
            waiting.add(fd)
            poller.register(fd, select.EPOLLIN)
        if not announced and not todo and not waiting:
            control.send(("ready", len(socks)))
            announced = True
        if lazy and announced:
            time.sleep(lazy)
        for fd, _ in poller.poll(1.0):
            if fd == control_fd:
                command = control.recv()
                if command[0] == "phase":
                    marker = marker_of(command[1])
                    keep = len(marker) - 1
                    count = last_ns = 0
                    control.send("ok")
                elif command[0] == "report":
                    control.send((count, last_ns, time.process_time(), total_bytes))
                else:
                    for sock in socks.values():
                        sock.close()
                    control.close()
                    return
                continue
            sock = socks[fd]
            try:
                n = sock.recv_into(buf)
                if quickack:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                n = 0
            if n == 0:
                poller.unregister(fd)
                sock.close()
                del socks[fd]
                waiting.discard(fd)
                continue
            total_bytes += n
            tail = tails[fd]
            if fd in waiting:
                if ready in tail + buf[:n]:
                    waiting.discard(fd)
            found = buf.count(marker, 0, n)
            if n >= keep:
                found += (tail + buf[:keep]).count(marker)
                tails[fd] = bytes(buf[n - keep:n])
            else:
                joined = tail + buf[:n]
                found += joined.count(marker)
                tails[fd] = joined[-keep:]
            if found:
                count += found
                last_ns = clock()


# The coordinator's own connections: probes and senders.


class Client:
    """
    A connection of the coordinating process: a sender, or a probe receiver
    that measures latency.

    @ivar latencies: for a probe, nanoseconds from send to read of every
        message of the current phase.
    @ivar count: for a probe, the current phase's messages received; for a
        sender, its own messages echoed back.
    """

    def __init__(self, port: int, nick: str, padding: bytes) -> None:
        self.nick = nick
        self.sock = connect(port)
        self.fd = self.sock.fileno()
        self.inbox = bytearray()
        self.outbox = bytearray(registration(nick))
        self.ready = False
        self.padding = padding
        self.pattern: re.Pattern[bytes] | None = None
        self.echo = b""
        self.count = self.sent = 0
        self.last_ns = 0
        self.latencies: list[int] = []
        self.due = 0.0
        self.flush()

    def start_phase(self, phase: int, probe: bool) -> None:
        """
        Count (and, for a probe, time) the messages of C{phase} from now on.
        """
        self.count = self.sent = self.last_ns = 0
        self.latencies = []
        if probe:
            self.pattern = re.compile(rb'"text":"P%d\|(\d+)\|' % phase)
        else:
            self.echo = b'"from":"%s",%s' % (self.nick.encode(), phase_marker(phase))

    def read(self) -> bool:
        """
        Read what is available and account for the complete lines.

        @return: C{False} once the daemon has closed the connection.
        """
        lines = read_lines(self.sock, self.inbox)
        if lines is None:
            return False
        if not lines:
            return True
        now = time.monotonic_ns()
        if not self.ready and PONG in lines:
            self.ready = True
        if self.pattern is not None:
            stamps = self.pattern.findall(lines)
            if stamps:
                self.count += len(stamps)
                self.last_ns = now
                self.latencies.extend(now - int(stamp) for stamp in stamps)
        elif self.echo:
            self.count += lines.count(self.echo)
        return True

    def send_messages(self, phase: int, how_many: int) -> None:
        """
        Queue and send C{how_many} messages of C{phase}, each stamped with
        the time it is written.
        """
        nick = self.nick.encode()
        for _ in range(how_many):
            self.sent += 1
            self.outbox += b"P%d|%d|%s|%d|%s\r\n" % (phase, time.monotonic_ns(), nick, self.sent, self.padding)
        self.flush()

    def flush(self) -> None:
        """
        Write as much of the pending output as the socket takes.
        """
        send_pending(self.sock, self.outbox)


@dataclass
class PhaseResult:
    """
    What one phase measured; times in seconds unless named otherwise.
    """

    name: str
    sent: int
    deliveries: int
    expected: int
    elapsed: float
    latencies_ms: list[float]
    daemon_cpu: float
    daemon_cpu_seconds: float
    client_cpu: float
    other_cpu: float
    interrupt_cpu: float
    steal_cpu: float
    overloaded: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.deliveries / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        values = self.latencies_ms
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(fraction * len(values)))]


def cpu_seconds(pid: int) -> float:
    """
    User plus system CPU seconds used by process C{pid} (from /proc/PID/stat).
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict[str, int]:
    """
    C{VmRSS} and C{VmHWM} (peak resident set) of process C{pid}, in KiB.
    """
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


def machine_ticks() -> tuple[int, int, int]:
    """
    (interrupt, steal, total) CPU ticks of the whole machine since boot, from
    /proc/stat: interrupt is irq plus softirq (where loopback TCP is mostly
    processed), steal is time the hypervisor gave to other machines.
    """
    with open("/proc/stat") as stat:
        numbers = [int(x) for x in stat.readline().split()[1:]]
    return numbers[5] + numbers[6], numbers[7], sum(numbers)


def process_ticks(exclude: set[int]) -> dict[int, int]:
    """
    CPU ticks (user plus system) of every process but C{exclude}, by pid.
    """
    ticks = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    return ticks


def other_cpu(before: dict[int, int], after: dict[int, int]) -> int:
    """
    Ticks used between two L{process_ticks} snapshots (a process new in
    C{after} counts from zero; one gone from it is missed).
    """
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items())


class Daemon:
    """
    A C{twistd -n chat} child process on a free loopback port, logging to a
    file in C{workdir}, with its C{--data-dir} in C{workdir / "data"}.

    The daemon's arguments end with C{args.daemon_arg} (C{--daemon-arg},
    if the namespace has it), then C{extra}, e.g. C{["--in-memory"]}.
    C{history_on_join} is its C{--history-on-join}; C{None} leaves the
    daemon's default.

    A subclass runs another server the same way by overriding L{command}
    (and L{listening}, L{log_name}, L{errors}), as C{compare.py} does for
    ngIRCd.
    """

    listening: re.Pattern[str] = LISTENING
    """The log line that tells the server is ready, its port as group 1."""
    log_name = "chat.log"
    """The file in C{workdir} that gets the server's output."""

    def __init__(
        self,
        args: argparse.Namespace,
        room_size: int,
        workdir: Path,
        extra: Sequence[str] = (),
        history_on_join: int | None = 0,
    ) -> None:
        self.workdir = workdir
        self.log_path = workdir / self.log_name
        self.profile_path = workdir / "daemon.cprofile"
        self.history_on_join = history_on_join
        command = self.command(args, room_size, extra)
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid = self.process.pid
        try:
            self.port = self._wait_for_port(timeout=30)
        except BaseException:
            self.stop(timeout=5)
            raise

    def command(self, args: argparse.Namespace, room_size: int, extra: Sequence[str]) -> list[str]:
        """
        The server's command line: C{twistd -n chat} on a free port with the
        limits out of the way for C{room_size} connections from one address.
        """
        history = () if self.history_on_join is None else ("--history-on-join", str(self.history_on_join))
        options = [
            "-n", "--pidfile=", "chat",
            "--listen", f"tcp:0:interface={HOST}",
            "--data-dir", str(self.workdir / "data"),
            "--flood-burst", "1000000", "--flood-rate", "1000000",
            "--max-output", str(args.max_output),
            *history,
            "--max-connections-per-ip", str(room_size + 16),
            *(getattr(args, "daemon_arg", None) or ()),
            *extra,
        ]
        if args.profile == "cprofile":
            return [sys.executable, "-c", LAUNCHER, str(self.profile_path), *options]
        return [args.twistd, *options]

    def _wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = self.listening.search(self.log_path.read_text(errors="replace"))
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"the daemon did not start; its log:\n{self.log_path.read_text(errors='replace')}")

    def stop(self, timeout: float) -> float:
        """
        SIGTERM, then SIGKILL after C{timeout} seconds.

        @return: seconds the daemon took to exit.
        """
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return time.monotonic() - started

    def errors(self) -> list[str]:
        """
        Log lines that report a failure.
        """
        text = self.log_path.read_text(errors="replace")
        return [line for line in text.splitlines() if "Traceback" in line or "Unhandled" in line
                or "#critical" in line or "#error" in line]


class Bench:
    """
    One daemon and its clients for one value of N: sets the room up, runs
    phases, and tears everything down. C{extra} is passed on to L{Daemon}.
    """

    def __init__(self, args: argparse.Namespace, receivers: int, workdir: Path, extra: Sequence[str] = ()) -> None:
        self.args = args
        self.n = receivers
        self.probe_count = min(args.probes, receivers)
        self.bulk_count = receivers - self.probe_count
        self.phase = 0
        self.workers: list[tuple[multiprocessing.process.BaseProcess, Connection, int]] = []
        self.clients: dict[int, Client] = {}
        self.probes: list[Client] = []
        self.senders: list[Client] = []
        self.poller = select.epoll()
        padding_size = max(0, args.text_size - 40)
        self.padding = (b"abcdefghij" * (padding_size // 10 + 1))[:padding_size]
        self.daemon = Daemon(args, receivers + args.senders + 1, workdir, extra)

    # Setup

    def setup(self) -> float:
        """
        Connect half the probes, then the bulk receivers, then the other
        probes, then the senders, so probes sit early, late and between in
        the fan-out order.

        @return: seconds it took.
        """
        started = time.monotonic()
        port = self.daemon.port
        early = self.probe_count // 2
        self.probes = [self._add(Client(port, f"p{i}", self.padding)) for i in range(early)]
        self._settle(self.probes)
        context = multiprocessing.get_context("fork")
        procs = max(1, min(self.args.procs, self.bulk_count))
        nicks = [f"r{i}" for i in range(self.bulk_count)]
        for index in range(procs if self.bulk_count else 0):
            mine, theirs = context.Pipe()
            share = nicks[index::procs]
            process = context.Process(target=receive_bulk, args=(port, share, theirs, self.args.lazy / 1000),
                                      daemon=True)
            process.start()
            theirs.close()
            self.workers.append((process, mine, len(share)))
        for worker, control, _ in self.workers:
            while not control.poll(0):
                self._pump(0.02)
                if not worker.is_alive():
                    raise RuntimeError("a receiver process died")
                if time.monotonic() - started > self.args.setup_timeout:
                    raise RuntimeError("the receivers did not all register in time")
        for _, control, expected in self.workers:
            _, connected = control.recv()
            if connected != expected:
                raise RuntimeError(f"only {connected} of {expected} receivers stayed connected: see the daemon's log")
        late = [self._add(Client(port, f"p{i}", self.padding)) for i in range(early, self.probe_count)]
        self.probes += late
        self._settle(late)
        self.senders = [self._add(Client(port, f"s{i}", self.padding)) for i in range(self.args.senders)]
        self._settle(self.senders)
        self._pump(0.2)
        return time.monotonic() - started

    def _add(self, client: Client) -> Client:
        self.clients[client.fd] = client
        self.poller.register(client.fd, select.EPOLLIN)
        return client

    def _settle(self, clients: Sequence[Client]) -> None:
        deadline = time.monotonic() + self.args.setup_timeout
        while not all(c.ready for c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("clients did not register in time")
            self._pump(0.02)

    def _pump(self, timeout: float) -> None:
        """
        Wait up to C{timeout} seconds for input, read it, and flush output.
        """
        pump(self.poller, self.clients, timeout)

    def _ask(self, command: tuple[object, ...]) -> list[Any]:
        for _, control, _ in self.workers:
            control.send(command)
        answers = []
        for _, control, _ in self.workers:
            while not control.poll(0):
                self._pump(0.001)
            answers.append(control.recv())
        return answers

    # Phases

    def run_phase(self, name: str, window: int = 0, rate: float = 0.0, profile: bool = False) -> PhaseResult:
        """
        Run one phase: closed loop with C{window} messages in flight per
        sender, or open loop at C{rate} messages per second per sender.
        """
        self.phase += 1
        phase = self.phase
        self._ask(("phase", phase))
        for probe in self.probes:
            probe.start_phase(phase, probe=True)
        for sender in self.senders:
            sender.start_phase(phase, probe=False)
        seconds = self.args.seconds
        spy = self._start_profile(seconds) if profile else None
        worker_cpu = sum(answer[2] for answer in self._ask(("report",)))
        client_cpu = time.process_time()
        daemon_cpu = cpu_seconds(self.daemon.pid)
        ours = {os.getpid(), self.daemon.pid, *(process.pid or 0 for process, _, _ in self.workers)}
        if spy is not None:
            ours.add(spy.pid)
        others = process_ticks(ours)
        interrupt, steal, total = machine_ticks()
        started_ns = time.monotonic_ns()
        start = time.monotonic()
        end = start + seconds
        overloaded = False
        senders = self.senders
        for index, sender in enumerate(senders):
            sender.due = start + index / (len(senders) * rate) if rate else start
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if window:
                for sender in senders:
                    room = window - (sender.sent - sender.count)
                    if room > 0:
                        sender.send_messages(phase, room)
                self._pump(0.05)
            else:
                for sender in senders:
                    due = int((now - sender.due) * rate) + 1 if now >= sender.due else 0
                    if due:
                        sender.send_messages(phase, due)
                        sender.due += due / rate
                    if sender.sent - sender.count > rate * OVERLOAD_SECONDS:
                        overloaded = True
                if overloaded:
                    break
                self._pump(max(0.0, min(min(s.due for s in senders), end) - time.monotonic()))
        sent = sum(s.sent for s in senders)
        expected = sent * self.n
        deadline = time.monotonic() + self.args.drain
        while True:
            self._pump(0.05)
            reports = self._ask(("report",))
            counts = sum(r[0] for r in reports) + sum(p.count for p in self.probes)
            done = counts >= expected and all(s.count >= s.sent for s in senders)
            if done or time.monotonic() > deadline:
                break
        if spy is not None:
            self._stop_profile(spy)
        last_ns = max([r[1] for r in reports] + [p.last_ns for p in self.probes])
        elapsed = (last_ns - started_ns) / 1e9 if last_ns else time.monotonic() - start
        wall = time.monotonic() - start
        others_after = process_ticks(ours)
        interrupt2, steal2, total2 = machine_ticks()
        cores = os.cpu_count() or 1
        tick = os.sysconf("SC_CLK_TCK")
        latencies = sorted(lat / 1e6 for p in self.probes for lat in p.latencies)
        result = PhaseResult(
            name=name,
            sent=sent,
            deliveries=counts,
            expected=expected,
            elapsed=elapsed,
            latencies_ms=latencies,
            daemon_cpu=(cpu_seconds(self.daemon.pid) - daemon_cpu) / wall,
            daemon_cpu_seconds=cpu_seconds(self.daemon.pid) - daemon_cpu,
            client_cpu=(time.process_time() - client_cpu
                        + sum(r[2] for r in reports) - worker_cpu) / wall,
            other_cpu=other_cpu(others, others_after) / tick / wall,
            interrupt_cpu=(interrupt2 - interrupt) / max(1, total2 - total) * cores,
            steal_cpu=(steal2 - steal) / max(1, total2 - total) * cores,
            overloaded=overloaded,
        )
        if counts < expected:
            result.notes.append(f"{expected - counts} deliveries missing after draining {self.args.drain:g} s")
        return result

    # Profiling

    def _start_profile(self, seconds: float) -> subprocess.Popen[bytes] | None:
        if self.args.profile == "cprofile":
            os.kill(self.daemon.pid, signal.SIGUSR1)
            return None
        out = self.daemon.workdir / "daemon.pyspy"
        command = [self.args.py_spy, "record", "--pid", str(self.daemon.pid), "--duration", str(max(1, round(seconds))),
                   "--rate", "250", "--idle", "--format", "raw", "--output", str(out),
                   *(getattr(self.args, "py_spy_arg", None) or ())]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _stop_profile(self, spy: subprocess.Popen[bytes] | None) -> None:
        if spy is not None:
            try:
                spy.wait(self.args.seconds + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()

    def stop_cprofile(self) -> None:
        """
        Switch the daemon's profiler off and have it dump its statistics.
        """
        os.kill(self.daemon.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while not self.daemon.profile_path.exists() and time.monotonic() < deadline:
            self._pump(0.05)
        time.sleep(0.5)  # let the dump finish writing

    # Teardown

    def close(self) -> tuple[float, dict[str, int], list[str]]:
        """
        Stop the daemon with SIGTERM while the clients still read (so the
        goodbyes are exercised), then end the client processes.

        @return: seconds the daemon took to stop, its memory figures, and
            error lines from its log.
        """
        memory = memory_kib(self.daemon.pid) if self.daemon.process.poll() is None else {}
        stopping = self.daemon.process
        if stopping.poll() is None:
            stopping.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.args.drain
        while stopping.poll() is None and time.monotonic() < deadline:
            self._pump(0.05)
        took = self.daemon.stop(timeout=1)
        for process, control, _ in self.workers:
            try:
                control.send(("quit",))
            except OSError:
                pass
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join()
        for client in self.clients.values():
            client.sock.close()
        self.poller.close()
        return took, memory, self.daemon.errors()

    def abort(self) -> None:
        """
        Best-effort cleanup after a failure: kill what this run started.
        """
        if self.daemon.process.poll() is None:
            self.daemon.stop(timeout=5)
        for process, _, _ in self.workers:
            if process.is_alive():
                process.terminate()
                process.join(5)


# Reporting


def print_table(results: Sequence[PhaseResult]) -> None:
    header = (f"{'phase':<14}{'msgs sent':>10}{'deliveries':>12}{'deliv/s':>11}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'max ms':>9}{'us/del':>7}{'daemon':>8}{'clients':>8}{'others':>8}{'irq':>6}{'steal':>6}")
    print(header)
    for r in results:
        flag = " OVERLOADED" if r.overloaded else ""
        worst = r.latencies_ms[-1] if r.latencies_ms else float("nan")
        per_delivery = r.daemon_cpu_seconds / r.deliveries * 1e6 if r.deliveries else float("nan")
        print(f"{r.name:<14}{r.sent:>10}{r.deliveries:>12}{r.rate:>11,.0f}{r.percentile(0.5):>9.2f}"
              f"{r.percentile(0.99):>9.2f}{worst:>9.2f}{per_delivery:>7.2f}{r.daemon_cpu:>8.0%}{r.client_cpu:>8.0%}"
              f"{r.other_cpu:>8.0%}{r.interrupt_cpu:>6.0%}{r.steal_cpu:>6.0%}{flag}")
        for note in r.notes:
            print(f"{'':<14}({note})")


def print_pyspy(path: Path, top: int) -> None:
    """
    Summarize py-spy's raw (collapsed) stacks: the share of samples per
    function, as the innermost frame (self) and anywhere on the stack.
    """
    if not path.exists():
        print("py-spy wrote no profile (is ptrace allowed?)")
        return
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack:
            continue
        samples = int(number)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    print(f"py-spy: {total} samples at 250 Hz (idle included)")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"  top {top} by {title} time:")
        for frame, samples in counter.most_common(top):
            print(f"    {samples / total:6.1%}  {shorten(frame)}")


def shorten(frame: str) -> str:
    """
    A py-spy frame C{function (path)} with the path cut after
    C{site-packages/} or the repository root.
    """
    for cut in ("site-packages/", "/work/main/", "/lib/python3."):
        if cut in frame:
            head, _, rest = frame.partition("(")
            return f"{head}({rest.split(cut, 1)[1]}"
    return frame


def print_cprofile(path: Path, top: int) -> None:
    """
    Print the daemon's cProfile statistics, by own time and by cumulative time.
    """
    import pstats

    if not path.exists():
        print("cProfile wrote no statistics")
        return
    stats = pstats.Stats(str(path))
    stats.strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


# Main


def loads(args: argparse.Namespace, best_rate: float) -> list[tuple[str, float]]:
    """
    The open-loop phases: (name, messages per second per sender).
    """
    if args.rate:
        return [(f"rate {rate:g}/s", rate) for rate in args.rate]
    per_sender = best_rate / max(1, args.senders)
    return [(f"load {fraction:.0%}", per_sender * fraction) for fraction in args.load]


@dataclass
class Measurement:
    """
    What one daemon measured for one N, from L{measure}.

    @ivar workdir: the daemon's directory: its log C{chat.log}, its
        C{--data-dir} C{data/}, and any raw profile.
    @ivar setup_seconds: time to connect and register every client.
    @ivar results: the reported phases, in the order they ran.
    @ivar profiled: the extra profiled phase (C{--profile}), or C{None}.
    @ivar stop_seconds: time the daemon took to exit after SIGTERM.
    @ivar memory_kib: the daemon's C{VmRSS} and C{VmHWM} just before it was
        stopped (empty if it had died).
    @ivar log_errors: lines of the daemon's log that report a failure.
    """

    receivers: int
    workdir: Path
    setup_seconds: float
    results: list[PhaseResult]
    profiled: PhaseResult | None
    stop_seconds: float
    memory_kib: dict[str, int]
    log_errors: list[str]


def measure(
    args: argparse.Namespace,
    receivers: int,
    workdir: Path,
    extra: Sequence[str] = (),
    rates: Sequence[tuple[str, float]] | None = None,
    on_ready: Callable[[Bench, float], object] | None = None,
    before_close: Callable[[Bench], object] | None = None,
) -> Measurement:
    """
    Start a daemon in C{workdir} (C{extra} added to its arguments), connect
    C{receivers} receivers and the senders, run the C{max} phases, then the
    open-loop phases and the profiled phase if C{args.profile}, stop the
    daemon and end the clients. Prints nothing; leaves C{workdir} to the
    caller.

    @param rates: the open-loop phases as (name, messages per second per
        sender); by default L{loads} of this run's best C{max} rate.
    @param on_ready: called with the bench and the set-up seconds once
        every client is registered, before the first phase.
    @param before_close: called with the bench after the last phase, while
        the daemon still runs.
    """
    bench = Bench(args, receivers, workdir, extra)
    try:
        if args.pin:
            os.sched_setaffinity(bench.daemon.pid, {0})
            os.sched_setaffinity(0, {1})
        took = bench.setup()
        if on_ready is not None:
            on_ready(bench, took)
        results = []
        if not args.no_max:
            for window in args.window:
                results.append(bench.run_phase(f"max K={window}", window=window))
        best = max((r.sent / r.elapsed for r in results), default=0.0)
        for name, rate in loads(args, best) if rates is None else rates:
            if rate > 0:
                results.append(bench.run_phase(name, rate=rate))
        profiled = None
        if args.profile and args.profile_load:
            name, rate = loads(args, best)[0] if args.rate else (
                f"load {args.profile_load:.0%}", best / args.senders * args.profile_load)
            profiled = bench.run_phase(f"profiled {name}", rate=rate, profile=True)
        elif args.profile:
            window = max(args.window)
            profiled = bench.run_phase(f"profiled max K={window}", window=window, profile=True)
            if args.profile == "cprofile":
                bench.stop_cprofile()
        if before_close is not None:
            before_close(bench)
        stop_took, memory, log_errors = bench.close()
    except BaseException:
        bench.abort()
        raise
    return Measurement(receivers, workdir, took, results, profiled, stop_took, memory, log_errors)


def print_daemon(measurement: Measurement) -> None:
    """
    Print the daemon's peak memory, how it stopped, and the first errors of
    its log.
    """
    memory, errors = measurement.memory_kib, measurement.log_errors
    print(f"daemon memory: peak RSS {memory.get('VmHWM', 0) / 1024:.0f} MiB; stopped by SIGTERM in "
          f"{measurement.stop_seconds:.1f} s; log errors: {len(errors)}")
    for line in errors[:5]:
        print(f"  {line}")


def print_profile(args: argparse.Namespace, measurement: Measurement, keep: str | None = None) -> None:
    """
    Print the profiled phase of C{measurement}, if any, and its hot spots;
    copy the raw profile to C{keep} if given.
    """
    profiled = measurement.profiled
    if profiled is None:
        return
    print(f"\n{profiled.name} (not in the table): {profiled.rate:,.0f} deliveries/s, "
          f"p50 {profiled.percentile(0.5):.2f} ms, daemon CPU {profiled.daemon_cpu:.0%}")
    source = measurement.workdir / ("daemon.pyspy" if args.profile == "py-spy" else "daemon.cprofile")
    if args.profile == "py-spy":
        print_pyspy(source, args.top)
    else:
        print_cprofile(source, args.top)
    if keep and source.exists():
        shutil.copy(source, keep)
        print(f"profile kept in {keep}")


def run_one(args: argparse.Namespace, receivers: int) -> None:
    """
    Run every phase for one N, print the results, and clean up.
    """

    def ready(bench: Bench, took: float) -> None:
        print(f"\nN = {receivers} receivers ({bench.bulk_count} counting in {len(bench.workers)} process(es), "
              f"{bench.probe_count} probes timing every message), S = {args.senders} senders, "
              f"{args.text_size}-byte texts; daemon pid {bench.daemon.pid} on port {bench.daemon.port}; "
              f"set up in {took:.1f} s")

    with tempfile.TemporaryDirectory(prefix="chat-fanout-") as tmp:
        measurement = measure(args, receivers, Path(tmp), on_ready=ready)
        print_table(measurement.results)
        print_daemon(measurement)
        print_profile(args, measurement, args.keep_profile)


def build_parser(description: str = "Fan-out benchmark of twistd chat over 127.0.0.1 (see the module docstring).",
                 ) -> argparse.ArgumentParser:
    """
    The command-line options, for L{parse_args} and for scripts that build
    on this one (they add theirs and call L{check_args}).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-n", "--receivers", type=int, action="append",
                        help="receivers in the room (repeatable; default: 100 and 1000)")
    parser.add_argument("-s", "--senders", type=int, default=4, help="senders (default 4)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each phase (default 3)")
    parser.add_argument("--window", type=int, action="append",
                        help="closed loop: messages in flight per sender in a max phase "
                             "(repeatable; default 8 and 32)")
    parser.add_argument("--load", type=float, action="append",
                        help="open loop: fraction of the best max rate (repeatable; default 0.02, 0.1, 0.25, 0.5)")
    parser.add_argument("--rate", type=float, action="append",
                        help="open loop: messages per second per sender (repeatable; replaces --load)")
    parser.add_argument("--no-max", action="store_true", help="skip the closed-loop max phase (needs --rate)")
    parser.add_argument("--text-size", type=int, default=64, help="bytes of message text (default 64)")
    parser.add_argument("--probes", type=int, default=8, help="receivers that time every message (default 8)")
    parser.add_argument("--procs", type=int, default=1, help="processes for the counting receivers (default 1)")
    parser.add_argument("--lazy", type=float, default=0.0, metavar="MS",
                        help="counting receivers sleep MS milliseconds between reads, so the kernel does not wake "
                             "them for every write (default 0; the probes always read at once)")
    parser.add_argument("--pin", action="store_true",
                        help="pin the daemon to CPU 0 and the clients to CPU 1")
    parser.add_argument("--max-output", type=int, default=64 << 20,
                        help="the daemon's --max-output, bytes (default 64 MiB)")
    parser.add_argument("--daemon-arg", action="append", metavar="ARG",
                        help="one more argument for twistd chat, e.g. --daemon-arg=--in-memory (repeatable)")
    parser.add_argument("--drain", type=float, default=15.0,
                        help="seconds to wait for deliveries after a phase, and for the daemon to stop (default 15)")
    parser.add_argument("--setup-timeout", type=float, default=120.0, help="seconds allowed to register everyone")
    parser.add_argument("--profile", choices=("py-spy", "cprofile"),
                        help="add a profiled max phase and print the daemon's hot spots")
    parser.add_argument("--profile-load", type=float, metavar="FRACTION",
                        help="profile an open-loop phase at this fraction of the max rate instead of the max phase")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy", help="the py-spy executable")
    parser.add_argument("--py-spy-arg", action="append", metavar="ARG",
                        help="one more argument for py-spy record, e.g. --py-spy-arg=--threads (repeatable)")
    parser.add_argument("--top", type=int, default=25, help="hot spots to print (default 25)")
    parser.add_argument("--keep-profile", metavar="PATH", help="copy the raw profile to PATH")
    parser.add_argument("--twistd", default=str(Path(sys.executable).with_name("twistd")),
                        help="the twistd executable (default: next to this Python)")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """
    Fill in the defaults of the repeatable options and reject impossible
    combinations (exits through C{parser.error}).
    """
    args.receivers = args.receivers or [100, 1000]
    args.window = args.window or [8, 32]
    args.load = args.load or [0.02, 0.1, 0.25, 0.5]
    if args.no_max and not args.rate:
        parser.error("--no-max needs --rate")
    if min(args.receivers) < 1 or args.senders < 1 or min(args.window) < 1 or args.seconds <= 0:
        parser.error("receivers, senders and window must be at least 1, seconds above 0")
    return args


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    return check_args(parser, parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    cores = os.cpu_count()
    print(f"chat fan-out benchmark on 127.0.0.1; {cores} CPU cores shared by the daemon and the clients"
          f"{' (daemon pinned to CPU 0, clients to CPU 1)' if args.pin else ''}.")
    print("Clients are kept cheap: counting receivers only count a marker per read; probes parse every line.")
    print("Deliveries are messages received summed over the N receivers; latency is send -> probe read.")
    print("us/del is the daemon's CPU microseconds per delivery.")
    print("CPU columns are shares of one core over the phase: daemon, clients (this script's processes),")
    print("others (every other process on the machine: other work competing for the cores) and irq")
    print("(kernel interrupt time, where loopback TCP is mostly processed), steal (taken by the hypervisor).")
    for receivers in args.receivers:
        run_one(args, receivers)


if __name__ == "__main__":
    main()

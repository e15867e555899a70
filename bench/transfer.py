#!/usr/bin/env python3
"""
File transfer benchmark of the chat daemon: upload and download of a large
file through a real C{twistd -n chat} over 127.0.0.1, against a plain
loopback copy of the same bytes, with the daemon's memory and CPU.

For each size (C{--sizes}, default 20 and 200 MiB) it starts a fresh daemon
(its C{--data-dir} in a temporary directory, C{--max-file-size} and
C{--spool-quota} raised to fit), connects two clients, C{alice} and C{bob}
(C{/format json}), and runs C{--runs} rounds (default 3) of four phases:

  - C{loopback}: the physical reference. A TCP connection over 127.0.0.1:
    a forked child of this script C{sendall}s the bytes, this process
    C{recv_into}s them into a preallocated buffer. The daemon is idle.
  - C{to disk}: the same copy, but the receiver does what the daemon must
    do with an upload and nothing else: 64 KiB reads, each hashed (SHA-256)
    and written to a file next to the daemon's spool, then C{fsync},
    rename and C{fsync} of the directory. The ceiling for an upload.
  - C{upload}: alice C{/upload bob big.bin SIZE SHA256}, waits for
    C{upload-ready}, then sends the bytes; timed from the first byte sent to
    C{upload-done} received, so it includes the daemon's hashing, its
    writes to the spool and the C{fsync} and rename of the commit.
  - C{download}: bob waits for the C{file-offer}, sends C{/download ID},
    reads the C{file} line and then exactly SIZE bytes into a preallocated
    buffer; timed from sending the command to the last byte. The bytes'
    SHA-256 is then compared with the upload's (not timed).

Speeds are the best of the runs, in MiB/s. The bytes are generated before
anything is timed: 1 MiB of C{os.urandom} repeated, each MiB starting with
its index, and a run number written into the first MiB, so every run
uploads a different file (no two runs share a spool file).

While each phase runs a thread samples the daemon's C{VmRSS} (from
C{/proc/PID/status}) every 20 ms; the table shows the peak per phase (the
highest over the runs), after an idle phase right after start-up, and the
daemon's C{VmHWM} at the end. Each size has its own daemon, so C{VmHWM}
belongs to that size alone, and comparing the sizes tells whether the
daemon's memory grows with the file size (it must not: PROTOCOL.md section
6). The daemon's CPU seconds (user plus system, all its threads, from
C{/proc/PID/stat}) are printed per phase too, with this script's own CPU
(the forked sender of the reference copies included).

Run with the project's Python (the daemon is the C{twistd} next to it)::

    /tmp/v/bin/python bench/transfer.py                      # 20 and 200 MiB, 3 runs each
    /tmp/v/bin/python bench/transfer.py --size 50 --runs 5
    /tmp/v/bin/python bench/transfer.py --sizes 20,200,500

Everything is bounded: each socket operation times out after C{--timeout}
seconds, and the daemon is stopped with SIGTERM (SIGKILL after 10 s) and
its temporary directory removed, whatever happens.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import platform
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Self

from fanout import Daemon, memory_kib

HOST = "127.0.0.1"
MIB = 1 << 20
SAMPLE_SECONDS = 0.02
"""How often the daemon's RSS is sampled during a phase."""
IDLE_SECONDS = 0.5
"""Length of the idle phase after start-up."""
RECV_SIZE = 1 << 16
"""Bytes asked of one C{recv} while waiting for a line."""
READ_SIZE = 1 << 16
"""Bytes the to-disk reference reads at a time: Twisted's TCP read size."""
GO = b"g"
"""The byte that tells the sender of a reference copy to start."""
STOP_SECONDS = 10.0
"""Seconds the daemon gets to exit after SIGTERM before it is killed."""


# The daemon


def cpu_times(pid: int) -> tuple[float, float, int]:
    """
    User and system CPU seconds used by process C{pid}, all its threads,
    and its minor page faults (from C{/proc/PID/stat}).
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick, int(fields[7])


def start_daemon(args: argparse.Namespace, workdir: Path, max_file: int, quota: int) -> Daemon:
    """
    A daemon from L{fanout.Daemon} (free loopback port, log and data in
    C{workdir}), taking files of C{max_file} bytes up to C{quota} in all.
    """
    options = argparse.Namespace(twistd=args.twistd, max_output=4 * MIB, profile=None, daemon_arg=args.daemon_arg)
    sizes = ["--max-file-size", f"{-(-max_file // MIB)}M", "--spool-quota", f"{-(-quota // MIB)}M"]
    return Daemon(options, 2, workdir, sizes)


class Watch:
    """
    A context manager measuring one phase: the daemon's peak C{VmRSS}
    (sampled every L{SAMPLE_SECONDS} by a thread), its CPU seconds, this
    process's CPU seconds, and the daemon's C{VmHWM} at the end.

    @ivar peak_kib: highest C{VmRSS} seen, KiB.
    @ivar hwm_kib: C{VmHWM} at the end of the phase, KiB.
    @ivar daemon_user: the daemon's user CPU seconds during the phase.
    @ivar daemon_system: the daemon's system CPU seconds during the phase.
    @ivar daemon_faults: the daemon's minor page faults during the phase.
    @ivar client_user: this process's user CPU seconds during the phase, all
        its threads and the children it reaped meanwhile (a reference copy's
        sender).
    @ivar client_system: the same, system CPU seconds.
    @ivar wall: seconds the phase lasted.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self.hwm_kib = 0
        self.daemon_user = self.daemon_system = 0.0
        self.daemon_faults = 0
        self.client_user = self.client_system = 0.0
        self.wall = 0.0
        self._cpu: tuple[float, float, int] = (0.0, 0.0, 0)
        self._own = (0.0, 0.0)
        self._started = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            try:
                self.peak_kib = max(self.peak_kib, memory_kib(self.pid)["VmRSS"])
            except (OSError, KeyError):  # the daemon is gone: the phase fails on its own
                return
            if self._stop.wait(SAMPLE_SECONDS):
                return

    @property
    def daemon_cpu(self) -> float:
        """
        The daemon's CPU seconds during the phase, user plus system.
        """
        return self.daemon_user + self.daemon_system

    @property
    def client_cpu(self) -> float:
        """
        This process's CPU seconds during the phase, user plus system.
        """
        return self.client_user + self.client_system

    def __enter__(self) -> Self:
        self._cpu = cpu_times(self.pid)
        own = os.times()
        self._own = (own.user + own.children_user, own.system + own.children_system)
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.wall = time.perf_counter() - self._started
        self._stop.set()
        self._thread.join()
        memory = memory_kib(self.pid)
        self.peak_kib = max(self.peak_kib, memory["VmRSS"])
        self.hwm_kib = memory["VmHWM"]
        user, system, faults = cpu_times(self.pid)
        self.daemon_user, self.daemon_system = user - self._cpu[0], system - self._cpu[1]
        self.daemon_faults = faults - self._cpu[2]
        own = os.times()
        self.client_user = own.user + own.children_user - self._own[0]
        self.client_system = own.system + own.children_system - self._own[1]


# The clients


class Client:
    """
    A blocking JSON-format client: C{/format json}, C{/nick NICK}, then lines
    and raw bytes on demand. The text lines sent before the switch (those
    not starting with C{{}) are skipped.
    """

    def __init__(self, port: int, nick: str, timeout: float) -> None:
        self.nick = nick
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self._pending = bytearray()
        self.send_line(f"/format json\r\n/nick {nick}")
        self.expect("registered")

    def send_line(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def expect(self, kind: str) -> dict[str, Any]:
        """
        Read lines until an event of type C{kind}, skipping other events.

        @return: the event, decoded.
        @raise RuntimeError: an C{error} event came first.
        @raise ConnectionError: the daemon closed the connection.
        """
        while True:
            end = self._pending.find(b"\n")
            if end < 0:
                chunk = self.sock.recv(RECV_SIZE)
                if not chunk:
                    raise ConnectionError(f"{self.nick}: the daemon closed the connection")
                self._pending += chunk
                continue
            line = bytes(self._pending[:end]).strip()
            del self._pending[:end + 1]
            if not line.startswith(b"{"):
                continue
            event: dict[str, Any] = json.loads(line)
            if event.get("type") == kind:
                return event
            if event.get("type") == "error":
                raise RuntimeError(f"{self.nick} got an error waiting for {kind}: {event}")

    def read_into(self, view: memoryview) -> None:
        """
        Fill C{view} with the next raw bytes: those already read after the
        last line first, then straight from the socket.
        """
        have = min(len(self._pending), len(view))
        view[:have] = self._pending[:have]
        del self._pending[:have]
        filled, total = have, len(view)
        while filled < total:
            n = self.sock.recv_into(view[filled:])
            if not n:
                raise ConnectionError(f"{self.nick}: the daemon closed the connection mid-file")
            filled += n

    def close(self) -> None:
        self.sock.close()


# The phases


def make_payload(size: int) -> bytearray:
    """
    C{size} pseudo-random bytes: 1 MiB of C{os.urandom} repeated, each MiB
    starting with its index (8 bytes, little-endian), so no two MiB are
    equal.
    """
    block = os.urandom(MIB)
    count = -(-size // MIB)
    payload = bytearray(block) * count
    del payload[size:]
    for index in range(count):
        payload[index * MIB:index * MIB + 8] = struct.pack("<Q", index)
    return payload


def receive_buffer(size: int) -> memoryview:
    """
    C{size} bytes of anonymous memory that forked children do not inherit
    (C{MADV_DONTFORK}), so that this process writing into it while the
    sender of a reference copy (L{copy}) runs costs no copy-on-write faults.
    """
    area = mmap.mmap(-1, size)
    area.madvise(mmap.MADV_DONTFORK)
    return memoryview(area)


def vary(payload: memoryview, run: int) -> str:
    """
    Write C{run} into bytes 8 to 15 of C{payload}, so each run's file is
    new to the daemon.

    @return: the SHA-256 of C{payload}, hex.
    """
    payload[8:16] = struct.pack("<Q", run)
    return hashlib.sha256(payload).hexdigest()


def copy(payload: memoryview, receive: Callable[[socket.socket], None], timeout: float) -> float:
    """
    Send C{payload} over one TCP connection on 127.0.0.1 from a forked child
    process that C{sendall}s (its own process, so the two ends do not share
    a GIL), while C{receive} takes it in this process.

    @param receive: called with the receiving socket; returns once it has
        read C{len(payload)} bytes.
    @return: seconds from the go signal to the child to C{receive}'s
        return (the fork and the connection are not timed).
    """
    server = socket.create_server((HOST, 0))
    address = server.getsockname()
    pid = os.fork()
    if not pid:
        send_and_exit(server, address, payload, timeout)
    done = False
    try:
        with server:
            server.settimeout(timeout)
            receiver, _ = server.accept()
        with receiver:
            receiver.settimeout(timeout)
            started = time.perf_counter()
            receiver.sendall(GO)
            receive(receiver)
            took = time.perf_counter() - started
        done = True
    finally:
        if not done:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return took


def send_and_exit(server: socket.socket, address: tuple[str, int], payload: memoryview, timeout: float) -> NoReturn:
    """
    In the child forked by L{copy}: connect to C{address}, wait for the go
    byte, send C{payload}, exit.
    """
    code = 1
    try:
        server.close()
        with socket.create_connection(address, timeout=timeout) as sock:
            if sock.recv(1) == GO:
                sock.sendall(payload)
                code = 0
    finally:
        os._exit(code)


def loopback(payload: memoryview, into: memoryview, timeout: float) -> float:
    """
    Copy C{payload} into C{into} over loopback TCP (L{copy}), with
    C{recv_into} straight into C{into}: the physical ceiling.

    @return: seconds.
    """

    def receive(sock: socket.socket) -> None:
        filled, total = 0, len(into)
        while filled < total:
            n = sock.recv_into(into[filled:])
            if not n:
                raise ConnectionError("the loopback sender closed early")
            filled += n

    return copy(payload, receive, timeout)


def to_disk(payload: memoryview, sha256: str, final: Path, timeout: float) -> float:
    """
    Copy C{payload} over loopback TCP (L{copy}) into the file C{final} the
    way the daemon stores an upload, with nothing else: 64 KiB reads
    (Twisted's read size), each hashed (SHA-256) and written to a partial
    file, then C{fsync}, rename to C{final}, C{fsync} of the directory. The
    ceiling for an upload.

    The file is left in place, as the daemon keeps its uploads: removing it
    would hand its page-cache pages to the next upload, which on a virtual
    machine is much cheaper than writing to pages never used before.

    @return: seconds.
    @raise RuntimeError: the bytes received do not have the SHA-256 C{sha256}.
    """
    directory, partial = final.parent, final.with_suffix(".partial")

    def receive(sock: socket.socket) -> None:
        chunk = memoryview(bytearray(READ_SIZE))
        digest = hashlib.sha256()
        remaining = len(payload)
        with open(partial, "wb") as file:
            while remaining:
                n = sock.recv_into(chunk, min(remaining, READ_SIZE))
                if not n:
                    raise ConnectionError("the loopback sender closed early")
                digest.update(chunk[:n])
                file.write(chunk[:n])
                remaining -= n
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, final)
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if digest.hexdigest() != sha256:
            raise RuntimeError("the to-disk copy received other bytes")

    try:
        return copy(payload, receive, timeout)
    finally:
        partial.unlink(missing_ok=True)


@dataclass
class Upload:
    """
    One timed upload.

    @ivar id: the offer's id.
    @ivar seconds: first byte sent to C{upload-done} received.
    @ivar sent: first byte sent to the last byte handed to the kernel.
    """

    id: int
    seconds: float
    sent: float


def upload(alice: Client, payload: memoryview, sha256: str) -> Upload:
    """
    Upload C{payload} from C{alice} to C{bob}, announcing its SHA-256.

    @raise RuntimeError: the daemon refused it or stored other bytes.
    """
    alice.send_line(f"/upload bob big.bin {len(payload)} {sha256}")
    ready = alice.expect("upload-ready")
    started = time.perf_counter()
    alice.sock.sendall(payload)
    sent = time.perf_counter()
    done = alice.expect("upload-done")
    finished = time.perf_counter()
    if done["sha256"] != sha256:
        raise RuntimeError(f"the daemon stored sha256 {done['sha256']}, not {sha256}")
    return Upload(int(ready["id"]), finished - started, sent - started)


@dataclass
class Download:
    """
    One timed download.

    @ivar seconds: C{/download} sent to the last byte received.
    @ivar header: C{/download} sent to the C{file} line received.
    """

    seconds: float
    header: float


def download(bob: Client, offer_id: int, into: memoryview) -> Download:
    """
    Wait for the offer C{offer_id}, download it into C{into} (exactly its
    size).

    @raise RuntimeError: the offer or the C{file} line is not the one expected.
    """
    offer = bob.expect("file-offer")
    if offer["id"] != offer_id or offer["size"] != len(into):
        raise RuntimeError(f"unexpected offer {offer}")
    started = time.perf_counter()
    bob.send_line(f"/download {offer_id}")
    header = bob.expect("file")
    headed = time.perf_counter()
    if header["size"] != len(into) or header["offset"] != 0:
        raise RuntimeError(f"unexpected file line {header}")
    bob.read_into(into)
    return Download(time.perf_counter() - started, headed - started)


# One size


@dataclass
class Phase:
    """
    The runs of one phase at one size.

    @ivar seconds: each run's time, seconds.
    @ivar watches: each run's L{Watch}.
    """

    seconds: list[float] = field(default_factory=list)
    watches: list[Watch] = field(default_factory=list)

    def add(self, seconds: float, watch: Watch) -> None:
        self.seconds.append(seconds)
        self.watches.append(watch)

    def best(self) -> int:
        """
        Index of the fastest run.
        """
        return min(range(len(self.seconds)), key=self.seconds.__getitem__)

    def speed(self, size: int) -> float:
        """
        MiB/s of the fastest run.
        """
        return size / MIB / self.seconds[self.best()]

    @property
    def peak_kib(self) -> int:
        return max(watch.peak_kib for watch in self.watches)


@dataclass
class SizeResult:
    """
    Everything measured at one size.
    """

    size: int
    idle: Watch
    loopback: Phase = field(default_factory=Phase)
    disk: Phase = field(default_factory=Phase)
    upload: Phase = field(default_factory=Phase)
    download: Phase = field(default_factory=Phase)
    hwm_kib: int = 0
    stop_seconds: float = 0.0
    log_errors: list[str] = field(default_factory=list)


def run_size(args: argparse.Namespace, size: int, payload: memoryview, into: memoryview) -> SizeResult:
    """
    Start a daemon, run C{args.runs} rounds of loopback, to-disk, upload
    and download of C{size} bytes, print each run, stop the daemon and remove its
    directory.
    """
    workdir = Path(tempfile.mkdtemp(prefix="chat-transfer-", dir=args.data_root))
    daemon: Daemon | None = None
    clients: list[Client] = []
    try:
        daemon = start_daemon(args, workdir, max_file=size + MIB, quota=(args.runs + 1) * size + 64 * MIB)
        alice = Client(daemon.port, "alice", args.timeout)
        clients.append(alice)
        bob = Client(daemon.port, "bob", args.timeout)
        clients.append(bob)
        with Watch(daemon.pid) as idle:
            time.sleep(IDLE_SECONDS)
        result = SizeResult(size, idle)
        print(f"\n{size / MIB:g} MiB: daemon pid {daemon.pid} on port {daemon.port}, idle RSS "
              f"{mib(idle.peak_kib)} MiB")
        for run in range(1, args.runs + 1):
            sha256 = vary(payload, run)
            with Watch(daemon.pid) as watch:
                took = loopback(payload, into, args.timeout)
            result.loopback.add(took, watch)
            with Watch(daemon.pid) as watch:
                stored = to_disk(payload, sha256, workdir / f"to-disk-{run}", args.timeout)
            result.disk.add(stored, watch)
            with Watch(daemon.pid) as watch:
                sent = upload(alice, payload, sha256)
            result.upload.add(sent.seconds, watch)
            up = watch
            into[:16] = bytes(16)  # so stale bytes of the loopback copy cannot pass the check
            with Watch(daemon.pid) as watch:
                got = download(bob, sent.id, into)
            result.download.add(got.seconds, watch)
            equal = hashlib.sha256(into).hexdigest() == sha256
            print(f"  run {run}: MiB/s loopback {size / MIB / took:,.0f}, to disk {size / MIB / stored:,.0f}, "
                  f"upload {size / MIB / sent.seconds:,.0f}, download {size / MIB / got.seconds:,.0f}; "
                  f"sha256 {'equal' if equal else 'DIFFERENT'}")
            print(f"         upload: bytes sent in {sent.sent:.2f} s, upload-done {sent.seconds - sent.sent:.2f} s "
                  f"later, daemon CPU {up.daemon_cpu:.2f} s, {up.daemon_faults} page faults, peak RSS "
                  f"{mib(up.peak_kib)} MiB; download: file line after {got.header * 1000:.1f} ms, daemon CPU "
                  f"{watch.daemon_cpu:.2f} s, {watch.daemon_faults} page faults, peak RSS {mib(watch.peak_kib)} MiB")
            if not equal:
                raise RuntimeError("the downloaded bytes differ from the uploaded ones")
        result.hwm_kib = memory_kib(daemon.pid)["VmHWM"]
        for client in clients:
            client.close()
        clients.clear()
        result.stop_seconds = daemon.stop(STOP_SECONDS)
        result.log_errors = daemon.errors()
        return result
    finally:
        for client in clients:
            client.close()
        if daemon is not None:
            daemon.stop(STOP_SECONDS)
        shutil.rmtree(workdir, ignore_errors=True)


# Reporting


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def print_tables(results: Sequence[SizeResult]) -> None:
    """
    Print the speeds and memory per size, then the CPU of the fastest run
    of each phase.
    """
    print("\nSpeeds are the best run; RSS is the daemon's peak VmRSS in each phase over all runs, in MiB;")
    print("HWM is its VmHWM (peak since start) at the end. Ratios: upload and download against the loopback")
    print("copy (loop), upload against the to-disk copy (disk). Speeds in MiB/s.")
    print(f"{'size MiB':>9}{'upload':>8}{'download':>9}{'loopback':>9}{'to disk':>8}{'up/loop':>8}{'down/loop':>10}"
          f"{'up/disk':>8}{'RSS idle':>9}{'RSS up':>8}{'RSS down':>9}{'HWM':>7}")
    for r in results:
        loop, disk = r.loopback.speed(r.size), r.disk.speed(r.size)
        up, down = r.upload.speed(r.size), r.download.speed(r.size)
        print(f"{r.size / MIB:>9g}{up:>8,.0f}{down:>9,.0f}{loop:>9,.0f}{disk:>8,.0f}{up / loop:>8.2f}"
              f"{down / loop:>10.2f}{up / disk:>8.2f}{mib(r.idle.peak_kib):>9}{mib(r.upload.peak_kib):>8}"
              f"{mib(r.download.peak_kib):>9}{mib(r.hwm_kib):>7}")
    print("\nCPU of the fastest run of each phase, seconds, with its share of one core over the phase's wall")
    print("time; user and system seconds; ms/MiB = CPU milliseconds per MiB moved. daemon = all its threads,")
    print("client = this script, all threads and the sender of the loopback and to-disk copies.")
    print("faults = the daemon's minor page faults.")
    print(f"{'size MiB':>9}{'phase':>9}{'wall s':>7}{'daemon':>12}{'user':>6}{'sys':>6}{'ms/MiB':>7}{'faults':>8}"
          f"{'client':>12}{'user':>6}{'sys':>6}{'ms/MiB':>7}")
    for r in results:
        phases = (("loopback", r.loopback), ("to disk", r.disk), ("upload", r.upload), ("download", r.download))
        for name, phase in phases:
            w = phase.watches[phase.best()]
            daemon = f"{w.daemon_cpu:.2f} ({w.daemon_cpu / w.wall:.0%})"
            client = f"{w.client_cpu:.2f} ({w.client_cpu / w.wall:.0%})"
            per_mib = 1000 / (r.size / MIB)
            print(f"{r.size / MIB:>9g}{name:>9}{w.wall:>7.2f}{daemon:>12}{w.daemon_user:>6.2f}"
                  f"{w.daemon_system:>6.2f}{w.daemon_cpu * per_mib:>7.2f}{w.daemon_faults:>8}{client:>12}"
                  f"{w.client_user:>6.2f}{w.client_system:>6.2f}{w.client_cpu * per_mib:>7.2f}")


def print_memory_verdict(results: Sequence[SizeResult], tolerance: float) -> None:
    """
    Compare the daemon's peak RSS above idle during the transfers at the
    smallest and the largest size: it should not grow with the file.
    """
    for r in results:
        print(f"daemon at {r.size / MIB:g} MiB: stopped by SIGTERM in {r.stop_seconds:.1f} s; "
              f"log errors: {len(r.log_errors)}")
        for line in r.log_errors[:5]:
            print(f"  {line}")
    if len(results) < 2:
        return
    small, large = results[0], results[-1]

    def growth(r: SizeResult) -> float:
        """Peak RSS during the transfers above the idle peak, MiB."""
        return (max(r.upload.peak_kib, r.download.peak_kib) - r.idle.peak_kib) / 1024

    more_file = (large.size - small.size) / MIB
    more_rss = growth(large) - growth(small)
    grows = more_rss > tolerance * more_file
    print(f"\nPeak RSS above idle during the transfers: {growth(small):+.1f} MiB at {small.size / MIB:g} MiB, "
          f"{growth(large):+.1f} MiB at {large.size / MIB:g} MiB: {more_rss:+.1f} MiB for {more_file:g} MiB more "
          f"file ({more_rss / more_file:+.1%} of it).")
    print("The daemon's memory " + ("GROWS with the file size." if grows else
                                    f"does not grow with the file size (under {tolerance:.0%} of it)."))


# Command line


def parse_sizes(text: str) -> list[int]:
    """
    A comma-separated list of sizes in MiB, e.g. C{"20,200"}.
    """
    try:
        sizes = [int(word) for word in text.split(",") if word.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole MiB: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes are whole MiB, at least 1")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="File transfer benchmark of twistd chat over 127.0.0.1 (see the module docstring).")
    parser.add_argument("--size", type=int, action="append", metavar="MIB",
                        help="file size in MiB (repeatable; default: 20 and 200)")
    parser.add_argument("--sizes", type=parse_sizes, metavar="LIST",
                        help="file sizes in MiB, comma-separated, e.g. 20,200 (added to --size)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; speeds are the best (default 3)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds any one socket operation may wait (default 120)")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="RSS growth, as a share of the extra file size, above which the memory "
                             "is said to grow with the file (default 0.05)")
    parser.add_argument("--data-root", metavar="DIR",
                        help="where to make the daemon's temporary directory (default: the system's)")
    parser.add_argument("--daemon-arg", action="append", metavar="ARG",
                        help="one more argument for twistd chat, e.g. --daemon-arg=--in-memory (repeatable)")
    parser.add_argument("--twistd", default=str(Path(sys.executable).with_name("twistd")),
                        help="the twistd executable (default: next to this Python)")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    sizes = {*(args.size or ()), *(args.sizes or ())} or {20, 200}
    if min(sizes) < 1 or args.runs < 1:
        parser.error("sizes are at least 1 MiB, runs at least 1")
    args.sizes = [mib_count * MIB for mib_count in sorted(sizes)]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with open("/proc/loadavg") as averages:
        load = " ".join(averages.read().split()[:3])
    print(f"chat file transfer benchmark on 127.0.0.1; {os.cpu_count()} CPU cores shared by the daemon and "
          f"this script; Python {platform.python_version()}; load average {load}.")
    print(f"Sizes {', '.join(f'{s / MIB:g}' for s in args.sizes)} MiB, best of {args.runs} runs; each size on a "
          "fresh daemon. Upload: first byte sent -> upload-done (hash, spool writes, fsync, rename).")
    print("Download: /download sent -> last byte received. Loopback: the same bytes over one TCP connection "
          "between two processes of this script (the ceiling).")
    print("To disk: the same, the receiver hashing and writing 64 KiB at a time to a file, then fsync and rename "
          "(an upload's ceiling).")
    started = time.monotonic()
    largest = max(args.sizes)
    payload = memoryview(make_payload(largest))
    into = receive_buffer(largest)
    into[:] = payload  # fault its pages in now, not in the first timed copy
    results = [run_size(args, size, payload[:size], into[:size]) for size in args.sizes]
    print_tables(results)
    print()
    print_memory_verdict(results, args.tolerance)
    print(f"\ntotal {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()

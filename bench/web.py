"""
The daemon's WebSocket front end (issue 19) beside its line protocol and
ngIRCd, in one run: the same loads and load generator as C{compare.py},
three servers taking turns.

  - C{ours web}: C{twistd -n chat --web tcp:0:interface=127.0.0.1}, every
    client (receivers, probes, witness, senders) on C{/ws}: one text frame
    per input line, one JSON event per frame out (PROTOCOL.md section 9).
  - C{ours line}: the same daemon with the same options, every client on
    the line protocol in the C{json} format (C{compare.py}'s C{ours}).
  - C{ngIRCd}: as in C{compare.py}.

The figures, each the median over C{--repeat} runs:

  1. Fan-out: deliveries per second with N receivers (C{--users}, default
     100 and 1000) and S senders (C{--senders}, default 1 and 4), the closed
     loop of L{compare.Room.closed_loop}.
  2. Idle memory per registered connection, C{--room-connections} (default
     1,000) all in C{#bench}: L{compare.measure_memory}.

Everything but the WebSocket client is C{compare.py}'s: its sessions,
rooms, measurements, ngIRCd configuration, medians and table cells. The
WebSocket client is cheap on purpose, so that 1,000 of them do not make the
load generator the bottleneck: raw non-blocking sockets, no WebSocket
library. After the HTTP upgrade, a client's frames are built once with a
zero masking key (RFC 6455 section 5.3 requires a key, any key; XOR with
zero leaves the payload as it is), and the counting receivers of
L{fanout.receive_bulk} count their marker in the raw byte stream: the
server's frames are not masked, and no event is split over frames, so a
marker never straddles a frame header. Only the probes, the witness and
the senders of this process (L{WebPeer}) unframe what they read. The daemon
does not read frames sent before its C{101} answer, so every WebSocket
client waits for that answer before its first frame.

Run with the project's Python (bench/ is on C{sys.path} when run as a
script)::

    /work/venv/bin/python bench/web.py            # 3 runs of everything, about 5 minutes
    /work/venv/bin/python bench/web.py --quick    # one run, 1.5 s phases, about 75 s
    /work/venv/bin/python bench/web.py --only fanout --users 1000 --repeat 1

Every option of C{compare.py} is accepted (C{--only} takes C{fanout} and
C{memory}); C{--flood-burst}, C{--flood-rate} and C{--max-connections-per-ip}
are set as in C{compare.py} (L{fanout.Daemon}): they apply to the web
listener too.
"""

from __future__ import annotations

import argparse
import base64
import functools
import math
import os
import platform
import re
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

import compare
import fanout
from compare import (
    NGIRCD,
    ChatDialect,
    Kind,
    Peer,
    Row,
    Sample,
    Session,
    fanout_key,
    log_tail,
    measure_fanout,
    measure_memory,
    median,
    memory_key,
    print_progress,
    raise_fd_limit,
    receive,
    short,
    versions,
)
from fanout import HOST, ROOM, Daemon

WEB = Kind("ours web")
LINE = Kind("ours line")
KINDS = (WEB, LINE, NGIRCD)
"""The servers, in the order they take turns and appear in the table."""
FIGURES = ("fanout", "memory")
WEB_LISTENING = re.compile(r"chat web listening on 127\.0\.0\.1:(\d+)")
KEY = base64.b64encode(b"bench/web.py key").decode()
"""The C{Sec-WebSocket-Key} of every client (16 bytes, base64)."""
END_OF_HEADERS = b"\r\n\r\n"


# The WebSocket client's bytes.


def handshake(port: int) -> bytes:
    """
    The HTTP request that opens C{/ws} on C{port}: no C{Origin} (not a
    browser, so no cross-site check applies) and no extension offered, so
    the frames come uncompressed.
    """
    return (f"GET /ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def frame(text: bytes) -> bytes:
    """
    One masked, final text frame of C{text}, masking key zero.
    """
    size = len(text)
    if size < 126:
        head = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    return head + b"\0\0\0\0" + text


def frames(lines: bytes) -> bytes:
    """
    The line protocol's CR LF terminated C{lines} as one frame each,
    C{/format json} left out (a WebSocket session is always in that format).
    """
    return b"".join(frame(line) for line in lines.split(b"\r\n") if line and line != b"/format json")


def unframe(buffer: bytearray) -> bytes:
    """
    Take the complete server frames out of C{buffer}.

    @return: their payloads, each followed by LF (a JSON event holds no raw
        LF), empty if none is complete.
    """
    payloads = []
    start, end = 0, len(buffer)
    while end - start >= 2:
        size = buffer[start + 1] & 0x7F
        head = 2
        if size == 126:
            if end - start < 4:
                break
            (size,), head = struct.unpack_from("!H", buffer, start + 2), 4
        elif size == 127:
            if end - start < 10:
                break
            (size,), head = struct.unpack_from("!Q", buffer, start + 2), 10
        if end - start < head + size:
            break
        payloads.append(bytes(buffer[start + head:start + head + size]))
        start += head + size
    del buffer[:start]
    return b"".join(payload + b"\n" for payload in payloads)


def web_connect(port: int, timeout: float = 30.0) -> socket.socket:
    """
    L{fanout.connect} for C{/ws}: connect, upgrade (blocking until the
    C{101} headers are in), then non-blocking. Bytes after the headers (the
    C{welcome} frame) are dropped: they hold no counted marker.

    @raise RuntimeError: if the daemon answers otherwise.
    """
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(handshake(port))
    answer = b""
    while END_OF_HEADERS not in answer:
        data = sock.recv(4096)
        if not data:
            break
        answer += data
    if not answer.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise RuntimeError(f"the WebSocket upgrade failed: {answer[:200]!r}")
    sock.setblocking(False)
    return sock


def receive_web(*args: Any, **kwargs: Any) -> None:
    """
    Child process: L{compare.receive} (L{fanout.receive_bulk}) with each
    connection opened by L{web_connect}; C{hello} then sends only frames.
    """
    fanout.connect = web_connect  # this child's copy of the module only
    receive(*args, **kwargs)


class WebDialect(ChatDialect):
    """
    The daemon's commands and events over C{/ws}: the line protocol's
    lines, one frame each. The connections of this process send the
    upgrade first (L{setup}); the child processes' are upgraded by
    L{web_connect}.
    """

    quit = frame(b"/quit")

    def __init__(self, no_join: bool, port: int) -> None:
        super().__init__(no_join)
        self.port = port

    def setup(self, nick: str, room: str | None, sender: bool) -> list[tuple[bytes, bytes]]:
        """
        Upgrade, and once the C{101} is in, L{hello}.
        """
        return [(handshake(self.port), b" 101 "), (self.hello(nick, room), self.ready(room))]

    def hello(self, nick: str, room: str | None = ROOM) -> bytes:
        lines = ChatDialect.register(self, nick) + (ChatDialect.join(self, room) if room else b"")
        return frames(lines + b"/ping ready\r\n")

    def register(self, nick: str) -> bytes:
        return frames(ChatDialect.register(self, nick))

    def join(self, room: str) -> bytes:
        return frames(ChatDialect.join(self, room))

    def say(self, text: bytes) -> bytes:
        return frame(text)


class Unframed:
    """
    A non-blocking socket to C{/ws} read as the line protocol: L{recv}
    returns the HTTP answer's headers as they are, then each complete
    frame's payload as one LF-terminated line, so that L{fanout.read_lines}
    and L{compare.Peer.read} work unchanged. Everything else is the
    socket's.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.upgraded = False

    def recv(self, size: int) -> bytes:
        """
        Read up to C{size} raw bytes.

        @return: what is complete of them (see the class), C{b""} once the
            server has closed.
        @raise BlockingIOError: if nothing is complete yet.
        """
        data = self.sock.recv(size)
        if not data:
            return b""
        self.buffer += data
        out = b""
        if not self.upgraded:
            end = self.buffer.find(END_OF_HEADERS)
            if end < 0:
                raise BlockingIOError
            end += len(END_OF_HEADERS)
            out = bytes(self.buffer[:end])
            del self.buffer[:end]
            self.upgraded = True
        out += unframe(self.buffer)
        if not out:
            raise BlockingIOError
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class WebPeer(Peer):
    """
    A L{compare.Peer} (sender, probe or witness) on C{/ws}.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # connects and sends the upgrade
        self.sock = Unframed(self.sock)  # type: ignore[assignment]


# The servers.


class WebDaemon(Daemon):
    """
    L{fanout.Daemon} (C{compare.py}'s options) with a web listener on a
    free port of 127.0.0.1 too.

    @ivar web_port: that listener's port.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        deadline = time.monotonic() + 30
        while True:
            match = WEB_LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.web_port = int(match.group(1))
                return
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop(timeout=5)
                raise RuntimeError(f"the web listener did not start; the log:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def command(self, args: argparse.Namespace, room_size: int, extra: Sequence[str]) -> list[str]:
        return [*super().command(args, room_size, extra), "--web", f"tcp:0:interface={HOST}"]


class WebSession(Session):
    """
    A L{compare.Session} whose daemon is a L{WebDaemon}; for L{WEB}, its
    port, dialect, peers and child receivers are the WebSocket ones.
    """

    def __init__(self, args: argparse.Namespace, kind: Kind, room_size: int,
                 history_on_join: int | None = 0) -> None:
        with mock.patch.object(compare, "Daemon", WebDaemon):
            super().__init__(args, kind, room_size, history_on_join)
        self.web = kind is WEB
        if self.web:
            assert isinstance(self.server, WebDaemon) and isinstance(self.dialect, ChatDialect)
            self.port = self.server.web_port
            self.dialect = WebDialect(self.dialect.no_join, self.port)

    def add(self, nick: str, room: str | None = ROOM, padding: bytes | None = None) -> Peer:
        if not self.web:
            return super().add(nick, room, padding)
        peer = WebPeer(self.port, nick, self.dialect, room, padding, self.args.quickack)
        self.peers[peer.fd] = peer
        self.poller.register(peer.fd, select.EPOLLIN)
        return peer

    def spawn(self, nicks: Sequence[str], room: str | None, processes: int) -> None:
        if not self.web:
            return super().spawn(nicks, room, processes)
        with mock.patch.object(compare, "receive", receive_web):
            return super().spawn(nicks, room, processes)


# The run.


def rows(args: argparse.Namespace) -> list[Row]:
    """
    The report's rows for the figures this run measures, in order.
    """
    found = []
    if args.run_fanout:
        for users in args.users:
            for senders in args.senders:
                found.append(Row(fanout_key(users, senders),
                                 f"fan-out deliveries/s, {users:,} receivers, {senders} sender{'s' * (senders > 1)}",
                                 True))
    if args.run_memory:
        for count in args.room_connections:
            found.append(Row(memory_key(count, True), f"KiB per idle connection, {count:,} in one room", False, 2))
    return found


def measurements(args: argparse.Namespace) -> list[tuple[str, Callable[[Kind], dict[str, Sample]]]]:
    """
    The measurements of one repeat, in order, as (name, function of the
    server); each starts its own server.
    """
    found: list[tuple[str, Callable[[Kind], dict[str, Sample]]]] = []
    if args.run_fanout:
        for users in args.users:
            found.append((f"fan-out N={users}",
                          functools.partial(measure_fanout, args, users=users, fanout=True, latency=False)))
    if args.run_memory:
        for count in args.room_connections:
            found.append((f"memory {count:,} in a room",
                          functools.partial(measure_memory, args, count=count, in_room=True)))
    return found


def ratio(top: float, bottom: float) -> str:
    """
    C{top / bottom} for the table, a dash when either is missing.
    """
    if math.isnan(top) or math.isnan(bottom) or not bottom:
        return "-"
    return f"{top / bottom:.2f}"


def print_report(args: argparse.Namespace, results: dict[str, dict[str, list[Sample]]]) -> None:
    """
    The Markdown table of medians: each server's figure, web ÷ line and
    web ÷ ngIRCd, which way is better, the servers' and the load
    generator's median CPU (share of one core).
    """
    labels = [kind.label for kind in KINDS]
    header = ["figure", *labels, "web ÷ line", "web ÷ ngIRCd", "better",
              "server CPU " + " / ".join(labels), "clients CPU " + " / ".join(labels)]
    print(f"\n| {' | '.join(header)} |")
    print(f"|{' --- |' * len(header)}")
    for row in rows(args):
        found = results.get(row.key, {})
        values = {label: median(found.get(label, [])) for label in labels}
        cells = [row.title]
        for label in labels:
            runs = len(found.get(label, []))
            cells.append(short(values[label], row.digits) + ("" if runs == args.repeat else f" ({runs} runs)"))
        cells += [ratio(values[WEB.label], values[LINE.label]), ratio(values[WEB.label], values[NGIRCD.label]),
                  "higher" if row.higher_is_better else "lower"]
        for attribute in ("server_cpu", "client_cpu"):
            shares = [median(found.get(label, []), attribute) for label in labels]
            cells.append(" / ".join("-" if math.isnan(share) else f"{share:.0%}" for share in shares))
        print(f"| {' | '.join(cells)} |")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    C{compare.py}'s options with this script's defaults (C{--only
    fanout,memory}, memory at 1,000 connections in one room), and
    C{--quick}: one repeat of 1.5 s phases.
    """
    parser = compare.build_parser()
    parser.description = ("The daemon's WebSocket front end beside its line protocol and ngIRCd on 127.0.0.1: "
                          "fan-out and idle memory, medians and ratios (see the docstring and bench/README.md).")
    parser.set_defaults(only=",".join(FIGURES), room_connections=[1000])
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if not only or only - set(FIGURES):
        parser.error(f"--only takes some of: {', '.join(FIGURES)}")
    for name in compare.FIGURES:
        setattr(args, f"run_{name}", name in only)
    if args.quick:
        args.repeat = 1
        args.seconds = min(args.seconds, 1.5)
    if args.repeat < 1 or args.seconds <= 0 or args.window < 1 or args.probes < 1 or args.procs < 1:
        parser.error("--repeat, --window, --probes and --procs must be at least 1, --seconds above 0")
    for executable, option in ((args.twistd, "--twistd"), (args.ngircd, "--ngircd")):
        if not os.access(executable, os.X_OK):
            parser.error(f"{option}: {executable} is not an executable file")
    return args


def run(args: argparse.Namespace) -> int:
    """
    Every measurement C{--repeat} times, the servers taking turns; each
    figure as it comes, then the table.

    @return: the exit status: 1 if some measurement failed.
    """
    started = time.monotonic()
    limit = raise_fd_limit()
    print(f"web socket, line protocol, ngIRCd on 127.0.0.1: {os.cpu_count()} cores shared by the servers and the "
          f"load generator; load average {os.getloadavg()[0]:.2f}; Python {platform.python_version()}; "
          f"open files {limit:,}")
    print(versions(args))
    print(f"{args.repeat} run(s) of each measurement, servers in turn: {', '.join(k.label for k in KINDS)}; "
          f"phases {args.seconds:g} s, window {args.window}, texts {args.text_size} bytes")
    results: dict[str, dict[str, list[Sample]]] = {}
    titles = {row.key: row for row in rows(args)}
    failed = 0
    with mock.patch.object(compare, "Session", WebSession):
        for repeat in range(args.repeat):
            for name, measure in measurements(args):
                print(f"[run {repeat + 1}/{args.repeat}, {time.monotonic() - started:.0f} s] {name}", flush=True)
                for kind in KINDS:
                    try:
                        samples = measure(kind)
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
    print_report(args, results)
    compare.print_footer(args, results, started)
    return 1 if failed else 0


def main_of(
    run: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None = None,
    parse: Callable[[Sequence[str] | None], argparse.Namespace] | None = None,
) -> int:
    """
    Parse the options (with C{parse}, by default L{parse_args}) and
    C{run}; Ctrl-C or SIGTERM stop the measurement under way, its servers
    and clients.
    """
    args = (parse or parse_args)(argv)
    signal.signal(signal.SIGTERM, compare.interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: the servers and clients of the measurement under way were stopped")
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """L{main_of} L{run}."""
    return main_of(run, argv)


if __name__ == "__main__":
    sys.exit(main())

"""
End-to-end helpers: a real C{twistd -n chat} process on a free loopback port
(L{Daemon}) and blocking socket clients that speak to it (L{Client}).

Every wait here is bounded: a helper that does not get what it waits for
within its timeout raises C{AssertionError} with what it did get, so a hung
daemon fails a test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

TIMEOUT = 5.0
"""Default bound, in seconds, on any single wait for the daemon."""

LISTENING = re.compile(r"chat listening on 127\.0\.0\.1:(\d+)")
"""The log line the daemon writes once its listener is up."""

UNHANDLED = re.compile(r"Unhandled|Traceback|CRITICAL|#critical\]|#error\]")
"""Log lines that betray an unhandled error (C{Unhandled Error},
C{Unhandled error in Deferred}, a traceback, a critical or error log event)."""

TS = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
"""An RFC 3339 UTC time with milliseconds (PROTOCOL.md section 5)."""

T = TypeVar("T")

IAC = b"\xff"
WILL, WONT, DO, DONT = b"\xfb", b"\xfc", b"\xfd", b"\xfe"
SB, SE, IP = b"\xfa", b"\xf0", b"\xf4"
TIMING_MARK = b"\x06"


def twistd_command() -> list[str]:
    """
    The C{twistd} next to the running interpreter, as an argument list.

    @raise AssertionError: no C{twistd} script is installed there or on PATH.
    """
    beside = Path(sys.executable).parent / "twistd"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("twistd")
    if found is None:
        raise AssertionError(f"no twistd next to {sys.executable} nor on PATH")
    return [found]


EXITED_ON_SIGTERM = (0, -signal.SIGTERM)
"""Exit statuses of a clean stop: twistd re-raises the signal that stopped it."""


class LineCollector:
    """
    Reads a text stream (a child's stdout) line by line in a daemon thread,
    so the test can wait for a line with a bound.

    @ivar lines: every line read so far, without line ends.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self.done = False
        self._stream = stream
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for raw in iter(self._stream.readline, b""):
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self._changed.notify_all()
        with self._changed:
            self.done = True
            self._changed.notify_all()

    def text(self) -> str:
        """
        Everything read so far, one line per line.
        """
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = TIMEOUT) -> str:
        """
        Wait for a line matching C{predicate}, among those read so far or to come.

        @return: the first matching line.
        @raise AssertionError: none within C{timeout} seconds, or the stream ended.
        """
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self.done or left <= 0:
                    raise AssertionError(
                        f"no expected line within {timeout}s (ended: {self.done}); got:\n"
                        + "\n".join(self.lines)
                    )
                self._changed.wait(left)

    def join(self, timeout: float = TIMEOUT) -> None:
        """
        Wait for the stream to end.
        """
        self._thread.join(timeout)


class Daemon:
    """
    One C{twistd -n chat} child on C{127.0.0.1} and a free port, in its own
    temporary directory (cwd and C{--data-dir}), without a pid file, so
    several can run at once.

    It can be stopped (L{halt}, SIGTERM) or killed (L{kill}, SIGKILL) and
    started again on the same data directory: each L{start} listens on a new
    free port. L{stop} ends it for good and removes its directory.

    @ivar port: the TCP port it listens on, once L{start} returned.
    @ivar data_dir: the C{--data-dir} it runs with: the one given, else
        C{data} inside its temporary directory (set by the first L{start}).
    @ivar runs: how many times it was started.
    """

    def __init__(self, *options: str, data_dir: str | None = None) -> None:
        """
        @param options: C{twistd chat} options added to every start.
        @param data_dir: the data directory to use, kept by L{stop}; a new
            one in the temporary directory when C{None}.
        """
        self.options: Sequence[str] = options
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.output: LineCollector | None = None
        self.data_dir = data_dir or ""
        self.runs = 0
        self._given_dir = data_dir is not None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._earlier_logs: list[str] = []

    def start(self, timeout: float = 15.0, extra: Sequence[str] = ()) -> Daemon:
        """
        Spawn the daemon and wait for its C{chat listening on} log line. If
        it ran before (and was halted or killed), it starts again on the
        same data directory.

        @param extra: options added for this start only, after L{options}.
        @raise AssertionError: it did not listen within C{timeout} seconds
            (the child is then killed), or it is running already.
        """
        if self.process is not None:
            if self.process.poll() is None:
                raise AssertionError("the daemon is running already")
            self._earlier_logs.append(self._close_output())
            self.process = None
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="chat-e2e-")
        if not self._given_dir:
            self.data_dir = os.path.join(self._tmp.name, "data")
        argv = twistd_command() + [
            "-n", "--pidfile", "", "chat",
            "--listen", "tcp:0:interface=127.0.0.1",
            "--data-dir", self.data_dir,
            *self.options,
            *extra,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.runs += 1
        self.process = subprocess.Popen(
            argv,
            cwd=self._tmp.name,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self.output = LineCollector(self.process.stdout)
        try:
            line = self.output.wait_for(lambda text: LISTENING.search(text) is not None, timeout)
        except AssertionError:
            self._kill()
            raise
        match = LISTENING.search(line)
        assert match is not None
        self.port = int(match.group(1))
        return self

    @property
    def directory(self) -> str:
        """
        The daemon's temporary directory: its working directory, holding
        C{data} (the default C{--data-dir}); empty before the first L{start}.
        """
        return self._tmp.name if self._tmp is not None else ""

    def log(self) -> str:
        """
        The daemon's log so far: that of every run, oldest first, each
        after the first preceded by a C{--- restart ---} line.
        """
        current = self.output.text() if self.output is not None else ""
        return "\n--- restart ---\n".join([*self._earlier_logs, current])

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float = TIMEOUT) -> str:
        """
        Wait for a log line of the current run matching C{predicate}.

        @return: the first matching line.
        @raise AssertionError: none within C{timeout} seconds, or the daemon
            exited.
        """
        assert self.output is not None, "the daemon was never started"
        return self.output.wait_for(predicate, timeout)

    def unhandled_errors(self) -> list[str]:
        """
        The log lines so far that show an unhandled error.
        """
        return [line for line in self.log().splitlines() if UNHANDLED.search(line)]

    def assert_clean(self) -> None:
        """
        @raise AssertionError: the log shows an unhandled error.
        """
        bad = self.unhandled_errors()
        if bad:
            raise AssertionError("the daemon logged unhandled errors:\n" + self.log())

    def terminate(self) -> None:
        """
        Send SIGTERM, without waiting.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 10.0) -> int:
        """
        Wait for the daemon to exit.

        @return: its exit status.
        @raise AssertionError: it is still running after C{timeout} seconds
            (it is then killed).
        """
        assert self.process is not None
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise AssertionError(f"the daemon ignored SIGTERM for {timeout}s:\n{self.log()}") from None
        assert self.output is not None
        self.output.join()
        return status

    def halt(self, timeout: float = 10.0) -> int:
        """
        Stop the daemon with SIGTERM and wait for it (bounded), keeping its
        data directory for another L{start}.

        @return: its exit status.
        @raise AssertionError: it did not stop in time.
        """
        self.terminate()
        return self.wait(timeout)

    def kill(self) -> int:
        """
        Kill the daemon with SIGKILL (no chance to write or close anything)
        and reap it, keeping its data directory for another L{start}.

        @return: its exit status (C{-SIGKILL} unless it had exited already).
        """
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        status = self.process.wait(5)
        assert self.output is not None
        self.output.join()
        return status

    def stop(self) -> None:
        """
        SIGTERM the daemon, wait for it (bounded), remove its directory, and
        check its whole log.

        @raise AssertionError: it did not stop in time, or logged an unhandled error.
        """
        try:
            if self.process is not None:
                self.terminate()
                self.wait()
                assert self.process.stdout is not None
                self.process.stdout.close()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None
        self.assert_clean()

    def _close_output(self) -> str:
        """
        Close the stdout of the exited child; returns its whole log.
        """
        assert self.process is not None and self.output is not None
        self.output.join()
        text = self.output.text()
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.output = None
        return text

    def _kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


class Closed(Exception):
    """
    The server closed the connection while a client waited for more.
    """


class Client:
    """
    A blocking TCP client of the daemon, with C{TCP_NODELAY} so each send
    leaves at once.

    @ivar buffer: bytes received and not yet consumed.
    @ivar received: every byte received, for checks on the raw stream.
    @ivar eof: whether the server closed the connection.
    """

    def __init__(self, port: int, *, timeout: float = TIMEOUT, rcvbuf: int | None = None) -> None:
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""
        self.received = b""
        self.eof = False
        self.registration: list[dict[str, Any]] = []

    # Sending

    def send(self, data: bytes) -> None:
        """
        Send raw bytes.
        """
        self.sock.sendall(data)

    def send_line(self, text: str, end: bytes = b"\n") -> None:
        """
        Send C{text} as UTF-8 followed by the line end C{end}.
        """
        self.send(text.encode("utf-8") + end)

    # Receiving

    def _fill(self, deadline: float, waiting_for: str) -> None:
        """
        Receive one chunk into L{buffer}.

        @raise Closed: the server closed the connection.
        @raise AssertionError: nothing arrived before C{deadline}.
        """
        if self.eof:
            raise Closed(f"closed while waiting for {waiting_for}; left: {self.buffer!r}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {waiting_for}; unread: {self.buffer[-2000:]!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise AssertionError(
                f"timed out waiting for {waiting_for}; unread: {self.buffer[-2000:]!r}"
            ) from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed(f"closed while waiting for {waiting_for}; left: {self.buffer!r}")
        self.buffer += chunk
        self.received += chunk

    def read_raw_until(self, needle: bytes, timeout: float | None = None) -> bytes:
        """
        Read until C{needle} arrives.

        @return: the bytes up to and including C{needle}, consumed.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        while needle not in self.buffer:
            self._fill(deadline, repr(needle))
        end = self.buffer.index(needle) + len(needle)
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def read_exact(self, count: int, timeout: float | None = None) -> bytes:
        """
        Read exactly C{count} raw bytes (a file's bytes after its C{file}
        line, say): those in L{buffer} first, then from the socket, never
        receiving a byte past them, so what follows stays unread.

        @return: the C{count} bytes, consumed (and added to L{received}).
        @raise Closed: the server closed the connection first.
        @raise AssertionError: they did not all arrive within C{timeout}
            seconds; the message tells how many did.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        data = bytearray(count)
        view = memoryview(data)
        got = min(count, len(self.buffer))
        view[:got] = self.buffer[:got]
        self.buffer = self.buffer[got:]
        fresh = got
        try:
            while got < count:
                if self.eof:
                    raise Closed(f"closed after {got} of {count} raw bytes")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {got} of {count} raw bytes")
                self.sock.settimeout(left)
                try:
                    received = self.sock.recv_into(view[got:], min(count - got, 1 << 20))
                except TimeoutError:
                    raise AssertionError(f"timed out after {got} of {count} raw bytes") from None
                except ConnectionResetError:
                    received = 0
                if not received:
                    self.eof = True
                    raise Closed(f"closed after {got} of {count} raw bytes")
                got += received
        finally:
            self.received += bytes(view[fresh:got])
            view.release()
        return bytes(data)

    def read_line(self, timeout: float | None = None) -> str:
        """
        Read one line.

        @return: the line decoded from UTF-8, without its CR LF.
        """
        raw = self.read_raw_until(b"\n", timeout)
        return raw.decode("utf-8").removesuffix("\n").removesuffix("\r")

    def read_lines_until(self, predicate: Callable[[str], bool], timeout: float | None = None) -> list[str]:
        """
        Read lines until one matches C{predicate}.

        @return: every line read, the matching one last.
        """
        return self._read_until(self.read_line, predicate, timeout, "lines")

    def read_event(self, timeout: float | None = None) -> dict[str, Any]:
        """
        Read one line and decode it as a JSON object.
        """
        line = self.read_line(timeout)
        try:
            event = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        if not isinstance(event, dict) or "type" not in event:
            raise AssertionError(f"not an event: {line!r}")
        return event

    def read_events_until(
        self, predicate: str | Callable[[dict[str, Any]], bool], timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """
        Read JSON events until one matches C{predicate} (a function, or an
        event type).

        @return: every event read, the matching one last.
        """
        if isinstance(predicate, str):
            wanted = predicate

            def predicate(event: dict[str, Any]) -> bool:
                return bool(event["type"] == wanted)

        return self._read_until(self.read_event, predicate, timeout, "events")

    def _read_until(
        self, read: Callable[[float], T], predicate: Callable[[T], bool], timeout: float | None, what: str
    ) -> list[T]:
        """
        Call C{read} with the time left until what it returns matches
        C{predicate}, within C{timeout} seconds in all.

        @return: everything read, the matching one last.
        @raise AssertionError: time ran out; the message lists what was read.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        found: list[T] = []
        while True:
            try:
                item = read(max(deadline - time.monotonic(), 0.001))
            except AssertionError as e:
                raise AssertionError(f"{e}\n{what} read: {found!r}") from None
            found.append(item)
            if predicate(item):
                return found

    def expect_event(
        self,
        kind: str,
        match: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        **members: Any,
    ) -> dict[str, Any]:
        """
        Read events until one of type C{kind} whose members include those of
        C{match} and C{members} (C{match} is for names like C{from}).

        @return: that event.
        """
        wanted = {**(match or {}), **members}

        def matches(event: dict[str, Any]) -> bool:
            return event["type"] == kind and all(event.get(k) == v for k, v in wanted.items())

        return self.read_events_until(matches, timeout)[-1]

    def ping(self, token: str, json_mode: bool = True, end: bytes = b"\n") -> list[Any]:
        """
        A barrier: send C{/ping TOKEN} and read up to its C{pong}.

        @return: the events (JSON mode) or lines (text mode) read before the pong.
        """
        self.send_line(f"/ping {token}", end)
        if json_mode:
            events = self.read_events_until(lambda e: e["type"] == "pong" and e["token"] == token)
            return events[:-1]
        lines = self.read_lines_until(lambda line: line == f"*** pong {token}")
        return lines[:-1]

    def join(self, room: str) -> list[dict[str, Any]]:
        """
        Join C{room} (JSON mode); returns the events up to its C{history}.
        """
        self.send_line(f"/join {room}")
        return self.read_events_until(lambda e: e["type"] == "history" and e["room"] == room)

    def errors_before_pong(self, token: str) -> list[str]:
        """
        The error codes read (JSON mode) before the pong of C{/ping TOKEN}.
        """
        return [e["code"] for e in self.ping(token) if e["type"] == "error"]

    def read_until_closed(self, timeout: float | None = None) -> bytes:
        """
        Read until the server closes the connection (EOF or reset).

        @return: everything unread before the close.
        @raise AssertionError: still open after C{timeout} seconds.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self._fill(deadline, "the server to close the connection")
        except Closed:
            pass
        data, self.buffer = self.buffer, b""
        return data

    def drain(self) -> bytes:
        """
        Consume whatever has arrived, without waiting.
        """
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    chunk = self.sock.recv(65536)
                except (BlockingIOError, ConnectionResetError):
                    break
                if not chunk:
                    self.eof = True
                    break
                self.buffer += chunk
                self.received += chunk
        finally:
            self.sock.setblocking(True)
        data, self.buffer = self.buffer, b""
        return data

    def close(self) -> None:
        """
        Close the socket.
        """
        self.sock.close()

    # Sessions

    @classmethod
    def text(cls, port: int, nick: str, end: bytes = b"\n") -> Client:
        """
        Connect in the text format and register C{nick} with a bare first
        line ending in C{end}; returns once registration is complete.
        """
        client = cls(port)
        client.read_lines_until(lambda line: "Choose a nickname" in line)
        client.send_line(nick, end)
        client.read_lines_until(lambda line: line.startswith(f"*** You are {nick}."))
        client.ping("registered", json_mode=False, end=end)
        return client

    @classmethod
    def json(cls, port: int, nick: str) -> Client:
        """
        Connect, switch to JSON, and register C{nick}; returns once the
        C{history} of C{#lobby} arrived. L{registration} holds the events
        from C{welcome} to that C{history}.
        """
        client = cls.json_connect(port)
        client.send_line(f"/nick {nick}")
        rest = client.read_events_until(lambda e: e["type"] == "history" and e["room"] == "#lobby")
        client.registration += rest
        return client

    @classmethod
    def json_connect(cls, port: int) -> Client:
        """
        Connect and switch to JSON, without registering; returns once the
        C{welcome} in JSON arrived. L{registration} holds that C{welcome}.
        """
        client = cls(port)
        client.read_lines_until(lambda line: "Choose a nickname" in line)
        client.send_line("/format json")
        client.registration = client.read_events_until("welcome")[-1:]
        return client


def eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """
    Wait, polling every 20 ms, until C{check()} holds.

    @raise AssertionError: it still does not after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.02)

"""
Tests for the operational side of C{twistd chat} (L{chat.tap}, L{chat.logs}):
C{--log-level} and C{--log-format}, an unusable data directory, and what a
failed start leaves behind; in-process, then with real C{twistd} processes.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

from twisted.application.service import Application, IService
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import (
    ILogObserver,
    Logger,
    capturedLogs,
    eventFromJSON,
    formatEvent,
)
from twisted.python.usage import UsageError
from twisted.scripts.twistd import ServerOptions  # type: ignore[attr-defined]
from twisted.trial.unittest import SynchronousTestCase, TestCase

from chat import tap
from chat.schema import DatabaseError
from chat.tap import CannotStart, Options, makeService
from tests.e2e import (
    EXITED_ON_SIGTERM,
    LISTENING,
    Client,
    Daemon,
    LineCollector,
    eventually,
    twistd_command,
)

ROOT = Path(__file__).resolve().parents[1]
"""The checkout: its C{chat} package is the one the child processes run."""

UNWRITABLE = "; choose another with --data-dir DIR, or run with --in-memory"
"""How the message about an unusable data directory ends."""


def parse(*argv: str) -> Options:
    """
    Parse C{argv} with a new L{Options}.
    """
    options = Options()
    options.parseOptions(list(argv))
    return options


def temporary_directory(case: SynchronousTestCase) -> str:
    """
    A new directory removed after the test C{case}, even when made read-only.
    """
    path = tempfile.mkdtemp(prefix="chat-ops-")

    def remove() -> None:
        for directory, _, _ in os.walk(path):
            os.chmod(directory, stat.S_IRWXU)
        shutil.rmtree(path)

    case.addCleanup(remove)
    return path


class BusyReactor(MemoryReactorClock):
    """
    A memory reactor whose TCP ports are all in use, as a real one's
    C{listenTCP} says synchronously.
    """

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:  # noqa: N802
        raise CannotListenError(interface, port, OSError(errno.EADDRINUSE, "Address already in use"))


def user_observer() -> Any:
    """
    A log observer factory for twistd's C{--logger}: the operator's own choice.
    """
    return lambda event: None


class OptionsTests(SynchronousTestCase):
    """
    C{--log-level} and C{--log-format} of L{Options}.
    """

    def test_defaults(self) -> None:
        """
        By default the level is info and the format text.
        """
        options = parse()
        self.assertEqual((options["log-level"], options["log-format"]), ("info", "text"))

    def test_values(self) -> None:
        """
        Every level and format is accepted, in any case, and kept in lower case.
        """
        for name in ["debug", "info", "warn", "error", "critical"]:
            self.assertEqual(parse("--log-level", name)["log-level"], name)
            self.assertEqual(parse("--log-level", name.upper())["log-level"], name)
        for name in ["text", "json"]:
            self.assertEqual(parse("--log-format", name)["log-format"], name)
        self.assertEqual(parse("--log-format=JSON")["log-format"], "json")

    def test_unknown_values(self) -> None:
        """
        Another level or format is refused with UsageError listing the choices.
        """
        error = self.assertRaises(UsageError, parse, "--log-level", "verbose")
        self.assertEqual(str(error), "--log-level must be one of debug, info, warn, error, critical, not 'verbose'")
        error = self.assertRaises(UsageError, parse, "--log-format", "xml")
        self.assertEqual(str(error), "--log-format must be one of text, json, not 'xml'")

    def test_help(self) -> None:
        """
        The help text documents both options and where the log goes.
        """
        text = " ".join(str(Options()).split())
        self.assertIn("--log-level", text)
        self.assertIn("--log-format", text)
        self.assertIn("stdout with -n", text)


class DataDirectoryTests(SynchronousTestCase):
    """
    L{makeService} with a data directory that cannot be used, and what it
    leaves behind when it fails.
    """

    def setUp(self) -> None:
        self.root = temporary_directory(self)

    def test_parent_is_a_file(self) -> None:
        """
        A data directory under a regular file ends start-up with one line
        naming it, --data-dir and --in-memory.
        """
        blocker = os.path.join(self.root, "file")
        Path(blocker).write_text("mine")
        path = os.path.join(blocker, "data")
        error = self.assertRaises(SystemExit, makeService, parse("--data-dir", path), MemoryReactorClock())
        self.assertEqual(
            str(error), f"chat: cannot use the data directory {path} (--data-dir): Not a directory{UNWRITABLE}"
        )
        self.assertEqual(Path(blocker).read_text(), "mine")

    def test_read_only_parent(self) -> None:
        """
        A data directory that cannot be created in a read-only directory ends
        start-up with one line saying so.
        """
        parent = os.path.join(self.root, "read-only")
        os.mkdir(parent, 0o555)
        os.chmod(self.root, 0o755)
        path = os.path.join(parent, "data")
        reading, writing = os.pipe()
        child = os.fork()
        if child == 0:  # as nobody: root writes to read-only directories
            os.close(reading)
            try:
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                makeService(parse("--data-dir", path), MemoryReactorClock())
                message = "started"
            except SystemExit as e:
                message = str(e)
            except BaseException as e:  # noqa: B036 - reported to the parent
                message = repr(e)
            os.write(writing, message.encode())
            os._exit(0)
        os.close(writing)
        with os.fdopen(reading, "rb") as answer:
            message = answer.read().decode()
        os.waitpid(child, 0)
        self.assertEqual(
            message, f"chat: cannot use the data directory {path} (--data-dir): Permission denied{UNWRITABLE}"
        )

    def test_relative_path_is_absolute(self) -> None:
        """
        A relative --data-dir is named absolutely in the message.
        """
        Path(self.root, "file").write_text("")
        here = os.getcwd()
        os.chdir(self.root)
        self.addCleanup(os.chdir, here)
        error = self.assertRaises(SystemExit, makeService, parse("--data-dir", "file/data"), MemoryReactorClock())
        self.assertIn(f"the data directory {self.root}/file/data (--data-dir)", str(error))

    def test_created_directories_removed_on_failure(self) -> None:
        """
        When the database cannot be opened, the directories makeService
        created for the data directory are removed again, up to the first
        that existed.
        """

        def fail(*args: object, **kwargs: object) -> None:
            raise DatabaseError("cannot use the database: boom")

        self.patch(tap, "open_store", fail)
        path = os.path.join(self.root, "a", "b", "data")
        error = self.assertRaises(SystemExit, makeService, parse("--data-dir", path), MemoryReactorClock())
        self.assertEqual(str(error), "chat: cannot use the database: boom")
        self.assertEqual(os.listdir(self.root), [])

    def test_os_error_after_creating(self) -> None:
        """
        An OSError after the directory was created is the data directory's
        one-line error, and the directory is removed.
        """

        def fail(*args: object, **kwargs: object) -> None:
            raise PermissionError(errno.EACCES, "Permission denied")

        self.patch(tap, "open_store", fail)
        path = os.path.join(self.root, "data")
        error = self.assertRaises(SystemExit, makeService, parse("--data-dir", path), MemoryReactorClock())
        self.assertEqual(
            str(error), f"chat: cannot use the data directory {path} (--data-dir): Permission denied{UNWRITABLE}"
        )
        self.assertEqual(os.listdir(self.root), [])

    def test_existing_directory_kept(self) -> None:
        """
        A data directory that existed keeps what it held when start-up fails.
        """
        Path(self.root, "notes.txt").write_text("mine")
        Path(self.root, "chat.sqlite3").write_bytes(b"this is not a database" * 100)
        error = self.assertRaises(SystemExit, makeService, parse("--data-dir", self.root), MemoryReactorClock())
        self.assertIn("not a database", str(error))
        self.assertEqual(sorted(os.listdir(self.root)), ["chat.sqlite3", "notes.txt", "spool"])
        self.assertEqual(Path(self.root, "chat.sqlite3").read_bytes(), b"this is not a database" * 100)
        self.assertEqual(Path(self.root, "notes.txt").read_text(), "mine")


class FailedStartTests(SynchronousTestCase):
    """
    L{chat.tap.Daemon.privilegedStartService} when a port is busy: one line,
    an exception twistd handles, and no data directory left that start-up
    created.
    """

    def setUp(self) -> None:
        self.root = temporary_directory(self)

    def start(self, path: str) -> CannotStart:
        """
        Build the daemon on C{path}, start it on a busy port, and return the error.
        """
        top = makeService(parse("--data-dir", path, "--listen", "tcp:8888:interface=127.0.0.1"), BusyReactor())
        error: CannotStart = self.assertRaises(CannotStart, top.privilegedStartService)
        return error

    def test_error(self) -> None:
        """
        The error is one line naming the address; a SystemExit, so that
        Python prints just that, and an Exception, so that twistd's start-up
        handler removes its pid file and reports the failure.
        """
        error = self.start(os.path.join(self.root, "data"))
        self.assertEqual(str(error), "chat: cannot listen on 127.0.0.1:8888: [Errno 98] Address already in use")
        self.assertIsInstance(error, SystemExit)
        self.assertIsInstance(error, Exception)

    def test_created_directory_removed(self) -> None:
        """
        The data directory start-up created, and the parents it created, are removed.
        """
        self.start(os.path.join(self.root, "new", "data"))
        self.assertEqual(os.listdir(self.root), [])

    def test_existing_directory_kept(self) -> None:
        """
        A data directory that existed keeps what it held and what start-up put in it.
        """
        Path(self.root, "notes.txt").write_text("mine")
        self.start(self.root)
        self.assertEqual(sorted(os.listdir(self.root)), ["chat.sqlite3", "notes.txt", "spool"])
        self.assertEqual(Path(self.root, "notes.txt").read_text(), "mine")

    def test_directory_with_other_files_kept(self) -> None:
        """
        A directory start-up created but that holds something else by the
        time start-up fails is kept, with that thing.
        """
        path = os.path.join(self.root, "data")
        top = makeService(parse("--data-dir", path, "--listen", "tcp:8888"), BusyReactor())
        Path(path, "notes.txt").write_text("mine")
        self.assertRaises(CannotStart, top.privilegedStartService)
        self.assertEqual(os.listdir(path), ["notes.txt"])

    def test_data_directory_logged(self) -> None:
        """
        Starting logs where the data is at info: the absolute data directory,
        or memory.
        """
        here = os.getcwd()
        os.chdir(self.root)
        self.addCleanup(os.chdir, here)
        for argv, expected in [
            (["--data-dir", "data"], f"chat data in {self.root}/data (SQLite)"),
            (["--in-memory"], "chat data in memory: nothing is kept after the daemon stops"),
        ]:
            top = makeService(parse(*argv, "--listen", "tcp:8888"), MemoryReactorClock())
            with capturedLogs() as logged:
                top.privilegedStartService()
            found = [e for e in logged if formatEvent(e).startswith("chat data in")]
            self.assertEqual([formatEvent(e) for e in found], [expected])
            self.assertEqual(found[0]["log_level"].name, "info")
            if "--in-memory" in argv:
                # Removes the temporary spool; the SQLite store would wait for its thread.
                self.successResultOf(top.stopService())


class TwistdLoggingTests(SynchronousTestCase):
    """
    The log observer the daemon gives twistd's application, with the
    options parsed by twistd's own command line.
    """

    def build(self, *argv: str) -> Any:
        """
        Parse C{twistd argv} and add the service built to a new application,
        as twistd does; return the application.
        """
        config = ServerOptions()
        config.parseOptions(list(argv))
        top = makeService(config.subOptions, reactor=MemoryReactorClock())
        application = Application("chat")
        top.setServiceParent(application)
        self.assertIn(top, list(IService(application)))  # type: ignore[call-overload]
        return application

    def test_observer_filters_and_formats(self) -> None:
        """
        Under -n the application's observer writes to stdout the events at
        --log-level and above, in --log-format.
        """
        stdout = io.StringIO()
        self.patch(sys, "stdout", stdout)
        application = self.build("-n", "chat", "--in-memory", "--log-level", "warn", "--log-format", "json")
        log = Logger(namespace="chat.test", observer=application.getComponent(ILogObserver))
        log.info("{who} connected", who="someone")
        log.warn("{what} is slow", what="something")
        [line] = stdout.getvalue().splitlines()
        record = json.loads(line)
        self.assertEqual((record["log_level"]["name"], record["what"]), ("warn", "something"))

    def test_logger_option_wins(self) -> None:
        """
        With twistd's --logger the application gets no observer from the daemon.
        """
        application = self.build("-n", "--logger", f"{__name__}.user_observer", "chat", "--in-memory")
        self.assertIsNone(application.getComponent(ILogObserver, None))

    def test_not_under_twistd(self) -> None:
        """
        Options not parsed by twistd (a .tac file's) give the application no observer.
        """
        top = makeService(parse("--in-memory"), reactor=MemoryReactorClock())
        application = Application("chat")
        top.setServiceParent(application)
        self.assertIsNone(application.getComponent(ILogObserver, None))


def child_environment() -> dict[str, str]:
    """
    The environment of a C{twistd} child: this checkout first on its path
    (an editable install lists only the modules it had when it was made).
    """
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(paths))




class EndToEndTests(TestCase):
    """
    Real C{twistd chat} processes: the one-line errors, what a failed start
    leaves behind, and the log's level, format and destination.
    """

    def setUp(self) -> None:
        self.cwd = temporary_directory(self)

    def twistd(self, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """
        Run C{twistd argv} to its end in the test's directory.
        """
        return subprocess.run(
            twistd_command() + list(argv), cwd=self.cwd, env=child_environment(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )

    def spawn(self, *argv: str) -> tuple[subprocess.Popen[bytes], LineCollector]:
        """
        Start C{twistd argv} in the test's directory, its output collected;
        it is killed after the test if still running.
        """
        process = subprocess.Popen(
            twistd_command() + list(argv), cwd=self.cwd, env=child_environment(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        assert process.stdout is not None
        output = LineCollector(process.stdout)

        def end() -> None:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            output.join()
            assert process.stdout is not None
            process.stdout.close()

        self.addCleanup(end)
        return process, output

    def busy_port(self) -> int:
        """
        A loopback port someone else listens on, for the rest of the test.
        """
        holder = socket.socket()
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        return int(holder.getsockname()[1])

    def daemon(self, *options: str) -> Daemon:
        """
        A started L{Daemon} with C{options}, running this checkout, stopped after the test.
        """
        daemon = Daemon(*options)
        with mock.patch.dict(os.environ, {"PYTHONPATH": child_environment()["PYTHONPATH"]}):
            daemon.start()
        self.addCleanup(daemon.stop)
        return daemon

    def test_unusable_data_dir(self) -> None:
        """
        twistd -n chat with a data directory that cannot be created prints
        one line naming --data-dir and --in-memory, exits with status 1, and
        leaves no pid file.
        """
        if os.geteuid() == 0:
            # Permissions do not stop root: a regular file as the parent does.
            Path(self.cwd, "parent").write_text("")
            reason = "Not a directory"
        else:
            os.mkdir(os.path.join(self.cwd, "parent"), 0o500)
            reason = "Permission denied"
        path = os.path.join(self.cwd, "parent", "data")
        done = self.twistd("-n", "--pidfile", "twistd.pid", "chat", "--data-dir", path)
        self.assertEqual(
            (done.returncode, done.stderr, done.stdout),
            (1, f"chat: cannot use the data directory {path} (--data-dir): {reason}{UNWRITABLE}\n", ""),
        )
        self.assertEqual(os.listdir(self.cwd), ["parent"])

    def test_busy_port_in_foreground(self) -> None:
        """
        twistd -n chat on a busy port logs one line, exits with status 1, and
        leaves neither its pid file nor the data directory it created.
        """
        port = self.busy_port()
        done = self.twistd(
            "-n", "--pidfile", "twistd.pid", "chat", "--listen", f"tcp:{port}:interface=127.0.0.1", "--data-dir", "data"
        )
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        message = f"chat: cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use"
        output = done.stdout + done.stderr
        [line] = [line for line in output.splitlines() if "cannot listen" in line]
        self.assertTrue(line.endswith(f" [stderr#error] {message}"), output)
        self.assertNotIn("Traceback", output)
        self.assertEqual(os.listdir(self.cwd), [])

    def test_busy_port_daemonized(self) -> None:
        """
        A daemonizing twistd chat on a busy port exits with status 1 saying
        why, instead of waiting forever; its pid file and the data directory
        it created are removed, and its log file has the line.
        """
        port = self.busy_port()
        done = self.twistd(
            "--pidfile", "twistd.pid", "--logfile", "chat.log",
            "chat", "--listen", f"tcp:{port}:interface=127.0.0.1", "--data-dir", "data",
        )
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        self.assertIn("An error has occurred", done.stderr)
        self.assertIn(f"chat: cannot listen on 127.0.0.1:{port}", done.stderr)
        eventually(lambda: os.listdir(self.cwd) == ["chat.log"], "only chat.log to be left")
        message = f"chat: cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use"
        eventually(lambda: message in Path(self.cwd, "chat.log").read_text(), "the log line")

    def test_debug_shows_connections(self) -> None:
        """
        At --log-level debug a connection is logged.
        """
        daemon = self.daemon("--log-level", "debug")
        client = Client(daemon.port)
        self.addCleanup(client.close)
        client.read_lines_until(lambda line: "Choose a nickname" in line)
        daemon.wait_for_line(lambda line: "connection from 127.0.0.1:" in line)

    def test_info_shows_start_up(self) -> None:
        """
        At the default level, info, start-up logs the absolute data directory
        and the listener, and a connection that comes and goes logs nothing.
        """
        daemon = self.daemon()
        expected = f"[chat.tap.Daemon#info] chat data in {daemon.data_dir} (SQLite)"
        daemon.wait_for_line(lambda line: line.endswith(expected))
        daemon.wait_for_line(lambda line: f"#info] chat listening on 127.0.0.1:{daemon.port}" in line)
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as client:
            client.sendall(b"alice\r\n/quit\r\n")
            while client.recv(4096):
                pass
        daemon.terminate()
        self.assertIn(daemon.wait(), EXITED_ON_SIGTERM)
        log = daemon.log()
        self.assertIn("Main loop terminated.", log)
        self.assertNotIn("connection from", log)
        self.assertNotIn("disconnected", log)
        self.assertNotIn("alice", log)

    def test_warn_hides_info(self) -> None:
        """
        At --log-level warn a daemon that starts, serves and stops logs no
        info line: not twistd's, not the listener's, not the connection's.
        """
        path = os.path.join(self.cwd, "chat.sock")
        process, output = self.spawn(
            "-n", "--pidfile", "", "chat", "--listen", f"unix:{path}", "--data-dir", "data", "--log-level", "warn"
        )
        client = socket.socket(socket.AF_UNIX)
        self.addCleanup(client.close)

        def connected() -> bool:
            try:
                client.connect(path)
            except OSError:
                return process.poll() is not None
            return True

        eventually(connected, "the daemon to listen", 15)
        client.settimeout(10)
        self.assertIn(b"Choose a nickname", client.recv(4096), output.text())
        client.close()
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(10), -signal.SIGTERM)  # twistd ends by the signal it got
        output.join()
        self.assertEqual([line for line in output.lines if "#info]" in line or "#debug]" in line], [])
        self.assertNotIn("chat listening", output.text())

    def test_json_to_stdout(self) -> None:
        """
        With --log-format json under -n every line on stdout is a JSON event,
        with its level, that formats as the text line would.
        """
        process, output = self.spawn(
            "-n", "--pidfile", "", "chat", "--listen", "tcp:0:interface=127.0.0.1", "--data-dir", "data",
            "--log-format", "json",
        )
        line = output.wait_for(lambda text: "chat listening on" in text, 15)
        match = LISTENING.search(formatEvent(eventFromJSON(line)))
        assert match is not None, line
        client = Client(int(match.group(1)))
        self.addCleanup(client.close)
        client.read_lines_until(lambda text: "Choose a nickname" in text)
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(10), -signal.SIGTERM)
        output.join()
        records = [json.loads(text) for text in output.lines]
        self.assertTrue(all(record["log_level"]["name"] in {"info", "warn", "debug"} for record in records), records)
        texts = [formatEvent(eventFromJSON(text)) for text in output.lines]
        self.assertIn(f"chat data in {self.cwd}/data (SQLite)", texts)
        self.assertIn("Server Shut Down.", texts)

    def test_json_to_log_file_when_daemonized(self) -> None:
        """
        A daemonized twistd chat logs to twistd's --logfile, in JSON with
        --log-format json, and its pid file goes when it stops.
        """
        done = self.twistd(
            "--pidfile", "twistd.pid", "--logfile", "chat.log",
            "chat", "--listen", "tcp:0:interface=127.0.0.1", "--data-dir", "data", "--log-format", "json",
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        log = Path(self.cwd, "chat.log")
        pid = int(Path(self.cwd, "twistd.pid").read_text())

        def stop() -> None:
            if os.path.exists(os.path.join(self.cwd, "twistd.pid")):
                os.kill(pid, signal.SIGKILL)

        self.addCleanup(stop)
        eventually(lambda: "chat listening on" in log.read_text(), "the listener's line")
        os.kill(pid, signal.SIGTERM)
        eventually(lambda: not os.path.exists(os.path.join(self.cwd, "twistd.pid")), "the pid file to go")
        eventually(lambda: "Server Shut Down." in log.read_text(), "the last line")
        texts = [formatEvent(eventFromJSON(text)) for text in log.read_text().splitlines()]
        self.assertIn(f"chat data in {self.cwd}/data (SQLite)", texts)
        self.assertTrue(any(text.startswith("chat listening on 127.0.0.1:") for text in texts), texts)

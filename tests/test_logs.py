"""
Tests for L{chat.logs}: the level filter, the text and JSON formats, the
destination twistd's options choose, and the hand-over to twistd's
application.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sys
import tempfile
from typing import Any

from twisted.application.service import Application, MultiService
from twisted.logger import ILogObserver, Logger, LogLevel, eventFromJSON, formatEvent
from twisted.python.logfile import LogFile
from twisted.python.syslog import SyslogObserver
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from chat import logs


@implementer(ILogObserver)
class Recorder:
    """
    A list of the events it observes.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)


class Maker:
    """
    Makes a L{Recorder} per call, and keeps them.
    """

    def __init__(self) -> None:
        self.made: list[Recorder] = []

    def __call__(self) -> Recorder:
        self.made.append(Recorder())
        return self.made[-1]


def emit_every_level(observer: Any, namespace: str = "chat.test") -> None:
    """
    Log one event per level to C{observer}, each saying its level.
    """
    log = Logger(namespace=namespace, observer=observer)
    for level in LogLevel.iterconstants():
        log.emit(level, "{what} happened at {level_name}", what="something", level_name=level.name)


class LevelsTests(SynchronousTestCase):
    """
    L{logs.LEVELS} and L{logs.FORMATS}: the values of C{--log-level} and C{--log-format}.
    """

    def test_levels(self) -> None:
        """
        The level names are Twisted's, lowest first, each naming its LogLevel.
        """
        self.assertEqual(list(logs.LEVELS), ["debug", "info", "warn", "error", "critical"])
        self.assertEqual(list(logs.LEVELS.values()), list(LogLevel.iterconstants()))

    def test_formats(self) -> None:
        """
        The formats are text and json.
        """
        self.assertEqual(logs.FORMATS, ("text", "json"))


class FileObserverTests(SynchronousTestCase):
    """
    L{logs.file_observer}: events at a level and above, as text or JSON lines.
    """

    def test_text_at_info(self) -> None:
        """
        At info, a debug event is dropped and the others are written as twistd's text lines.
        """
        stream = io.StringIO()
        emit_every_level(logs.file_observer(stream, LogLevel.info, "text"))
        lines = stream.getvalue().splitlines()
        self.assertEqual(
            [line.split(" ", 1)[1] for line in lines],
            [
                "[chat.test#info] something happened at info",
                "[chat.test#warn] something happened at warn",
                "[chat.test#error] something happened at error",
                "[chat.test#critical] something happened at critical",
            ],
        )

    def test_text_at_debug(self) -> None:
        """
        At debug every event is written.
        """
        stream = io.StringIO()
        emit_every_level(logs.file_observer(stream, LogLevel.debug, "text"))
        self.assertIn("[chat.test#debug] something happened at debug", stream.getvalue())
        self.assertEqual(len(stream.getvalue().splitlines()), 5)

    def test_each_level_keeps_itself_and_above(self) -> None:
        """
        Each level keeps the events at that level and above, and drops the rest.
        """
        names = list(logs.LEVELS)
        for position, name in enumerate(names):
            stream = io.StringIO()
            emit_every_level(logs.file_observer(stream, logs.LEVELS[name], "text"))
            written = [line.rsplit(" ", 1)[1] for line in stream.getvalue().splitlines()]
            self.assertEqual(written, names[position:], name)

    def test_json_lines(self) -> None:
        """
        In JSON each kept event is one line holding one JSON object, with no
        record separator, carrying its level's name and what formats it again.
        """
        stream = io.StringIO()
        emit_every_level(logs.file_observer(stream, LogLevel.warn, "json"))
        lines = stream.getvalue().splitlines()
        self.assertEqual(len(lines), 3)
        records = [json.loads(line) for line in lines]
        self.assertEqual([record["log_level"]["name"] for record in records], ["warn", "error", "critical"])
        self.assertEqual({record["log_namespace"] for record in records}, {"chat.test"})
        self.assertEqual(records[0]["what"], "something")
        self.assertEqual(formatEvent(eventFromJSON(lines[0])), "something happened at warn")
        self.assertFalse(stream.getvalue().startswith("\x1e"))

    def test_unknown_format(self) -> None:
        """
        A format other than text and json is refused with ValueError.
        """
        self.assertRaises(ValueError, logs.file_observer, io.StringIO(), LogLevel.info, "xml")


class TwistdObserverTests(SynchronousTestCase):
    """
    L{logs.twistd_observer}: the destination twistd's options choose, as
    C{UnixAppLogger} chooses it.
    """

    def setUp(self) -> None:
        self.stdout = io.StringIO()
        self.rotated: list[LogFile] = []
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)

    def observer(self, twistd: dict[str, Any], level: LogLevel = LogLevel.info, log_format: str = "text") -> Any:
        """
        The observer for C{twistd}'s options, with a fake stdout and a recorder of rotations.
        """
        return logs.twistd_observer(twistd, level, log_format, self.rotated.append, stdout=self.stdout)

    def test_nodaemon_logs_to_stdout(self) -> None:
        """
        With -n and no --logfile, the kept events go to stdout and no file is rotated.
        """
        emit_every_level(self.observer({"nodaemon": True, "logfile": None}, LogLevel.error))
        self.assertEqual(len(self.stdout.getvalue().splitlines()), 2)
        self.assertIn("[chat.test#error]", self.stdout.getvalue())
        self.assertEqual(self.rotated, [])

    def test_dash_with_nodaemon_is_stdout(self) -> None:
        """
        --logfile - with -n also means stdout.
        """
        emit_every_level(self.observer({"nodaemon": True, "logfile": "-"}, LogLevel.critical, "json"))
        [line] = self.stdout.getvalue().splitlines()
        self.assertEqual(json.loads(line)["log_level"]["name"], "critical")

    def test_dash_without_nodaemon_left_to_twistd(self) -> None:
        """
        --logfile - without -n is left to twistd, which refuses it.
        """
        self.assertIsNone(self.observer({"nodaemon": False, "logfile": "-"}))

    def test_logger_left_to_twistd(self) -> None:
        """
        With --logger twistd uses the observer it names, so none is made.
        """
        self.assertIsNone(self.observer({"nodaemon": True, "logger": "some.module.observer"}))
        self.assertEqual(self.stdout.getvalue(), "")

    def test_logfile(self) -> None:
        """
        --logfile names the file written, which is handed over for rotation.
        """
        path = os.path.join(self.directory, "chat.log")
        observer = self.observer({"nodaemon": False, "logfile": path}, LogLevel.warn)
        emit_every_level(observer)
        [opened] = self.rotated
        self.assertEqual(opened.path, path)
        opened.close()
        with open(path) as f:
            self.assertEqual(len(f.read().splitlines()), 3)
        self.assertEqual(self.stdout.getvalue(), "")

    def test_daemon_default_is_twistd_log(self) -> None:
        """
        Daemonized without --logfile the log is twistd.log in the working directory.
        """
        here = os.getcwd()
        os.chdir(self.directory)
        self.addCleanup(os.chdir, here)
        emit_every_level(self.observer({"nodaemon": False, "logfile": ""}, LogLevel.critical))
        [opened] = self.rotated
        self.assertEqual(opened.path, os.path.join(self.directory, "twistd.log"))
        opened.close()
        with open(os.path.join(self.directory, "twistd.log")) as f:
            self.assertIn("[chat.test#critical] something happened at critical", f.read())

    def test_syslog(self) -> None:
        """
        With --syslog the kept events go to syslog under twistd's --prefix.
        """
        opened: list[str] = []
        sent: list[str] = []
        self.patch(SyslogObserver, "openlog", staticmethod(lambda prefix, options, facility: opened.append(prefix)))
        self.patch(SyslogObserver, "syslog", staticmethod(lambda priority, text: sent.append(text)))
        emit_every_level(self.observer({"syslog": True, "prefix": "chatd", "nodaemon": True}, LogLevel.error))
        self.assertEqual(opened, ["chatd"])
        self.assertEqual([text.split("] ", 1)[1] for text in sent], [
            "something happened at error", "something happened at critical",
        ])
        self.assertEqual(self.stdout.getvalue(), "")


class RotationTests(SynchronousTestCase):
    """
    L{logs.rotate_on_sigusr1}: SIGUSR1 rotates the log file, as under twistd.
    """

    def setUp(self) -> None:
        previous = signal.getsignal(signal.SIGUSR1)
        self.addCleanup(signal.signal, signal.SIGUSR1, previous)
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)

    def test_handler_rotates_in_reactor_thread(self) -> None:
        """
        Without a SIGUSR1 handler one is installed that asks the reactor to rotate the file.
        """
        calls: list[Any] = []

        class Reactor:
            def callFromThread(self, f: Any) -> None:  # noqa: N802 - IReactorThreads
                calls.append(f)

        logfile = LogFile("chat.log", self.directory)
        self.addCleanup(logfile.close)
        logs.rotate_on_sigusr1(logfile, Reactor())
        handler = signal.getsignal(signal.SIGUSR1)
        assert callable(handler), handler
        handler(signal.SIGUSR1, None)
        self.assertEqual(calls, [logfile.rotate])

    def test_existing_handler_kept(self) -> None:
        """
        A SIGUSR1 handler set already is kept.
        """

        def mine(signum: int, frame: object) -> None:
            pass

        signal.signal(signal.SIGUSR1, mine)
        logfile = LogFile("chat.log", self.directory)
        self.addCleanup(logfile.close)
        logs.rotate_on_sigusr1(logfile, object())
        self.assertIs(signal.getsignal(signal.SIGUSR1), mine)


class InstallTests(SynchronousTestCase):
    """
    L{logs.install} and L{logs.for_twistd}: the observer handed to twistd's
    application as its ILogObserver component.
    """

    def setUp(self) -> None:
        # A hook sets the process-wide logs.debugging: put it back afterwards.
        self.patch(logs, "debugging", logs.debugging)

    def test_sets_component(self) -> None:
        """
        An application without an observer gets the one made.
        """
        application = Application("chat")
        observer = Recorder()
        logs.install(application, lambda: observer)
        self.assertIs(application.getComponent(ILogObserver), observer)

    def test_existing_component_kept(self) -> None:
        """
        An application with an observer already keeps it, and none is made.
        """
        application = Application("chat")
        theirs = Recorder()
        application.setComponent(ILogObserver, theirs)
        made = Maker()
        logs.install(application, made)
        self.assertIs(application.getComponent(ILogObserver), theirs)
        self.assertEqual(made.made, [])

    def test_not_an_application(self) -> None:
        """
        A plain service parent is left alone, and no observer is made.
        """
        made = Maker()
        logs.install(MultiService(), made)
        self.assertEqual(made.made, [])

    def test_none_made(self) -> None:
        """
        When no observer is made (twistd decides) the application gets none.
        """
        application = Application("chat")
        logs.install(application, lambda: None)
        self.assertIsNone(application.getComponent(ILogObserver, None))

    def test_for_twistd(self) -> None:
        """
        The hook installs an observer at the options' level and in their format,
        to the destination of twistd's options.
        """
        stdout = io.StringIO()
        self.patch(sys, "stdout", stdout)
        hook = logs.for_twistd({"log-level": "error", "log-format": "json"}, {"nodaemon": True}, object())
        assert hook is not None
        application = Application("chat")
        hook(application)
        emit_every_level(application.getComponent(ILogObserver))
        self.assertEqual(
            [json.loads(line)["log_level"]["name"] for line in stdout.getvalue().splitlines()], ["error", "critical"]
        )

    def test_debugging_follows_level(self) -> None:
        """
        Installing the hook sets logs.debugging: false above debug (per-connection lines are then
        not built), true at debug.
        """
        self.patch(sys, "stdout", io.StringIO())
        for level, expected in (("info", False), ("debug", True), ("warn", False)):
            hook = logs.for_twistd({"log-level": level, "log-format": "text"}, {"nodaemon": True}, object())
            assert hook is not None
            hook(Application("chat"))
            self.assertIs(logs.debugging, expected, level)

    def test_not_under_twistd(self) -> None:
        """
        Options that twistd did not parse give no hook.
        """
        self.assertIsNone(logs.for_twistd({"log-level": "info", "log-format": "text"}, None, object()))

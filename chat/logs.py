# -*- test-case-name: tests.test_logs -*-
"""
The daemon's log output: which events C{twistd chat} writes
(C{--log-level}), in which form (C{--log-format}), to the destination
twistd chose.

How it reaches twistd, and why this way (Twisted 26.10, read from
C{twisted/application/app.py}, C{twisted/scripts/_twistd_unix.py} and
C{twisted/logger/_global.py}):

  - twistd runs C{ApplicationRunner.run}: C{preApplication} (pid file
    check), then C{createOrGetApplication}, which calls the plugin's
    C{makeService} and only then creates the L{Application
    <twisted.application.service.Application>} and calls
    C{service.setServiceParent(application)}; then C{AppLogger.start},
    which builds the one observer and calls
    C{globalLogBeginner.beginLoggingTo([observer])}. So C{makeService} runs
    I{before} logging begins (what it logs is buffered and replayed), and
    every later hook (C{privilegedStartService}, C{startService}) runs
    I{after} the observer is in place.
  - Filtering twistd's own observer from outside is impossible with public
    API: L{LogPublisher <twisted.logger.LogPublisher>} calls every observer
    it holds, offers no list of them, and twistd keeps its observer in a
    private attribute. An observer added beside it only adds output. Calling
    C{beginLoggingTo} from C{makeService} is no better: twistd calls it again,
    which adds its unfiltered observer too and logs a "primary log target
    selected twice" warning. And twistd's own observer is always text.
  - The public hook is the application's L{ILogObserver} component:
    C{AppLogger.start} uses it, when the command line has no C{--logger},
    instead of building its own. A C{.tac} file sets it directly; a
    L{ServiceMaker <twisted.application.service.ServiceMaker>} plugin never
    sees the application, which twistd creates after C{makeService}
    returns, except as the argument of the root service's
    C{setServiceParent}. So the root service (L{chat.tap.Daemon}) calls
    L{install} from C{setServiceParent}, which sets the component with
    L{Componentized.setComponent
    <twisted.python.components.Componentized.setComponent>}, just before
    C{AppLogger.start} reads it.
  - Setting the component replaces twistd's choice of destination, so
    L{twistd_observer} makes the same choice from twistd's own options
    (C{options.parent} of the plugin's options), as C{UnixAppLogger} does:
    C{--syslog}; C{--logfile -} (stdout, C{-n} only); stdout under C{-n}
    without C{--logfile}; else the file C{--logfile} or C{twistd.log},
    rotated on SIGUSR1 unless SIGUSR1 already has a handler. Two cases are
    left to twistd: C{--logger} (twistd ignores the component; the
    observers it names get every event, unfiltered) and C{--logfile -}
    without C{-n} (twistd refuses it: "Daemons cannot log to stdout").

Text lines are those of twistd's default observer
(L{textFileLogObserver <twisted.logger.textFileLogObserver>}); JSON lines
are L{eventAsJSON <twisted.logger.eventAsJSON>} objects, one a line with no
record separator (JSON Lines), which
L{eventsFromJSONLogFile <twisted.logger.eventsFromJSONLogFile>} reads back.
Syslog formats its own lines, so C{--log-format} does not apply there.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any, cast

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LegacyLogObserverWrapper,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)
from twisted.python.components import Componentized
from twisted.python.log import ILogObserver as ILegacyLogObserver
from twisted.python.logfile import LogFile

LEVELS: dict[str, LogLevel] = {level.name: level for level in LogLevel.iterconstants()}
"""The values of C{--log-level}, lowest first, and the L{LogLevel} each
keeps: that level and those above it."""

FORMATS = ("text", "json")
"""The values of C{--log-format}."""


def file_observer(stream: IO[Any], level: LogLevel, log_format: str) -> ILogObserver:
    """
    An observer writing each event at C{level} or above to C{stream}, one
    line per event.

    @param stream: a text file (stdout, a L{LogFile}); flushed after each
        event.
    @param log_format: C{"text"} for twistd's usual
        C{TIME [NAMESPACE#LEVEL] MESSAGE} lines, C{"json"} for one
        L{eventAsJSON <twisted.logger.eventAsJSON>} object per line (its
        C{log_level} is C{{"name": "info", ...}}, its C{log_format} and
        fields give the message).
    @raise ValueError: C{log_format} is not one of L{FORMATS}.
    """
    if log_format == "text":
        sink = textFileLogObserver(stream)
    elif log_format == "json":
        sink = jsonFileLogObserver(stream, recordSeparator="")
    else:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    return filtered(sink, level)


debugging = True
"""
Whether C{debug} events may be written: false once the daemon's logging is
installed with C{--log-level} above C{debug}. The per-connection lines
(connected, registered, disconnected) are emitted only while it is true: a
filtered event still costs its arguments, the event and the observers'
filtering, a tenth of a connect-register-quit cycle (issue 17).
"""


def filtered(observer: ILogObserver, level: LogLevel) -> ILogObserver:
    """
    C{observer}, given only the events at C{level} or above. Events with
    no level or no namespace are dropped too (L{LogLevelFilterPredicate}).
    """
    return FilteringLogObserver(observer, [LogLevelFilterPredicate(defaultLogLevel=level)])


def rotate_on_sigusr1(logfile: LogFile, reactor: Any) -> None:
    """
    Rotate C{logfile} on SIGUSR1, in the reactor's thread, unless SIGUSR1
    already has a handler; what C{UnixAppLogger} does for its own log file.

    @param reactor: provides C{IReactorThreads} (C{callFromThread}).
    """
    if not signal.getsignal(signal.SIGUSR1):

        def rotate(signum: int, frame: object) -> None:
            reactor.callFromThread(logfile.rotate)

        signal.signal(signal.SIGUSR1, rotate)


def twistd_observer(
    twistd: Mapping[str, Any],
    level: LogLevel,
    log_format: str,
    rotate: Callable[[LogFile], None],
    stdout: IO[str] | None = None,
) -> ILogObserver | None:
    """
    The observer for the destination twistd's command line chooses,
    keeping C{level} and above, in C{log_format}.

    @param twistd: twistd's parsed options (C{ServerOptions}): C{logger},
        C{syslog}, C{prefix}, C{logfile}, C{nodaemon} are read.
    @param rotate: called with the L{LogFile} when the destination is a
        file (L{rotate_on_sigusr1} in the daemon).
    @param stdout: the terminal; C{sys.stdout} as it is now (before
        twistd redirects it into the log) when C{None}.
    @return: C{None} where twistd must decide itself: C{--logger} given,
        or C{--logfile -} without C{-n}.
    @raise OSError: the log file cannot be opened.
    """
    if twistd.get("logger"):
        return None
    if twistd.get("syslog"):
        from twisted.python.syslog import SyslogObserver

        # A legacy observer, as twistd builds it; Twisted's annotations
        # do not count a plain callable as one.
        emit = cast(ILegacyLogObserver, SyslogObserver(twistd.get("prefix") or "twisted").emit)
        return filtered(LegacyLogObserverWrapper(emit), level)
    logfile = twistd.get("logfile") or ""
    nodaemon = bool(twistd.get("nodaemon"))
    if logfile == "-" and not nodaemon:
        return None
    if logfile == "-" or (nodaemon and not logfile):
        return file_observer(sys.stdout if stdout is None else stdout, level, log_format)
    opened = LogFile.fromFullPath(logfile or "twistd.log")
    rotate(opened)
    return file_observer(opened, level, log_format)


def install(application: object, make_observer: Callable[[], ILogObserver | None]) -> None:
    """
    Give twistd's C{application} the observer C{make_observer} returns, as
    its L{ILogObserver} component, which C{AppLogger.start} uses instead
    of its own; called by the root service's C{setServiceParent}.

    Nothing happens when C{application} is not a L{Componentized} (a
    service parent in a test or in a C{.tac} file's tree), when it has an
    observer already (a C{.tac} file's choice wins), or when
    C{make_observer} returns C{None}.

    @raise OSError: from C{make_observer}: the log file cannot be opened.
    """
    if not isinstance(application, Componentized):
        return
    if application.getComponent(ILogObserver, None) is not None:
        return
    observer = make_observer()
    if observer is not None:
        application.setComponent(ILogObserver, observer)


def for_twistd(options: Mapping[str, Any], twistd: Mapping[str, Any] | None, reactor: Any) -> (
    Callable[[object], None] | None
):
    """
    The hook the root service calls with its parent to install this
    daemon's logging (see the module docstring).

    @param options: C{twistd chat}'s options: C{log-level} (a key of
        L{LEVELS}) and C{log-format} (one of L{FORMATS}).
    @param twistd: twistd's own options (the C{parent} of C{options});
        C{None} when twistd did not parse the command line (tests, C{.tac}
        files), and then there is no hook.
    @param reactor: provides C{IReactorThreads}, for log rotation.
    @return: a callable taking the service parent, or C{None}.
    """
    if twistd is None:
        return None
    level = LEVELS[options["log-level"]]
    log_format = options["log-format"]
    command_line = twistd

    def hook(parent: object) -> None:
        global debugging
        debugging = level == LogLevel.debug
        install(
            parent,
            lambda: twistd_observer(command_line, level, log_format, lambda opened: rotate_on_sigusr1(opened, reactor)),
        )

    return hook

"""
irctest controller for this project's daemon: runs C{twistd chat --irc} so
that irctest's server tests (U{https://github.com/progval/irctest}) can be
pointed at it with C{--controller chat_controller}.

Not collected by the project's own pytest run (its name is not C{test_*.py})
and not imported by it: it needs irctest on C{sys.path}, which only
C{.ci/irctest} provides (see README.md in this directory).

Modelled on irctest's C{irctest/controllers/ngircd.py}. The daemon is started
once per irctest test case, in a fresh temporary directory, with
C{--in-memory} (nothing survives the test) and the IRC listener on the
address and port irctest chose; the line listener gets a second port from
irctest's allocator (parallel runs never collide on the default 8888), used
by L{ChatController.registerUser} to create accounts.

Environment:
  - C{CHAT_TWISTD}: the C{twistd} to run (default: C{twistd} next to the
    Python running irctest, else the one on C{PATH}).
  - C{IRCTEST_DEBUG_LOGS=1} (irctest's own): the daemon's log is copied to
    pytest's output.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any, Optional, Set, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities
from typing_extensions import override

# The IRCv3 capabilities of PROTOCOL.md section 14 that irctest knows by name
# (draft/chathistory, sasl and cap-notify are not in its Capabilities enum;
# irctest finds those from CAP LS).
SECTION_14_CAPABILITIES = frozenset(
    {
        Capabilities.SERVER_TIME,
        Capabilities.MESSAGE_TAGS,
        Capabilities.ECHO_MESSAGE,
        Capabilities.BATCH,
        Capabilities.ACCOUNT_TAG,
        Capabilities.AWAY_NOTIFY,
        Capabilities.EXTENDED_JOIN,
    }
)


# Daemons started by this process and not yet killed. irctest calls kill() from
# tearDown, which unittest skips when setUp raises (bot_mode.py skips from its
# setUp, bouncer.py fails there): such a daemon, in its own session, would
# outlive pytest. Tests run one at a time per process (per xdist worker), so a
# daemon still here when the next one starts is a leftover.
_running: "set[ChatController]" = set()


def _kill_leftovers() -> None:
    """
    Kill every daemon of L{_running} (at the next C{run} and at exit).
    """
    for controller in list(_running):
        controller.kill()


atexit.register(_kill_leftovers)


def twistd_command() -> str:
    """
    The C{twistd} executable that runs the daemon.

    @return: C{$CHAT_TWISTD} if set; else C{twistd} beside C{sys.executable}
        (the virtual environment running irctest, into which C{.ci/irctest}
        installs the project); else C{twistd} from C{PATH}.
    @raise FileNotFoundError: when none of these exists.
    """
    explicit = os.environ.get("CHAT_TWISTD")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "twistd"
    if beside.exists():
        return str(beside)
    found = shutil.which("twistd")
    if found is None:
        raise FileNotFoundError("no twistd: set CHAT_TWISTD or install the project")
    return found


class ChatController(BaseServerController, DirectoryBasedController):
    """
    Starts and stops one C{twistd -n chat} per irctest test case.

    Not implemented (irctest skips the tests that need them, with
    C{NotImplementedByController}): the WebSocket transport of IRC (our
    C{--web} socket speaks PROTOCOL.md section 9, not IRC) and a server-wide
    connection password (C{PASS} is a login here, section 14).

    Services: accounts are the daemon's own (like Ergo's), so irctest's
    C{run_services} needs no second process; L{registerUser} creates an
    account through the daemon's line listener (C{/register}, PROTOCOL.md
    section 4), which is what SASL PLAIN then checks against.
    """

    software_name = "chat"
    supported_sasl_mechanisms: Set[str] = {"PLAIN"}
    supports_sts = False
    capabilities = SECTION_14_CAPABILITIES
    line_port: int

    @override
    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        """
        Start the daemon with its IRC listener on C{hostname}:C{port}.

        irctest then waits for the port itself (C{wait_for_port}, which sends
        C{QUIT :chkport} and expects C{ERROR} or a closed connection).

        @param hostname: the address irctest chose, usually C{0.0.0.0} (it binds
            C{""} to find a free port); the daemon listens on 127.0.0.1
            instead, which irctest's clients reach the same way on Linux.
        @param port: the TCP port for the IRC listener.
        @param password: a server password; none is supported.
        @param ssl: serve TLS on the port (a self-signed certificate made by
            irctest's C{gen_ssl}).
        @param run_services: whether the test needs accounts (always there).
        @param faketime: a libfaketime C{FAKETIME} spec, used when the
            C{faketime} command exists.
        @param websocket_hostname: IRC over WebSocket; not supported.
        @param websocket_port: see C{websocket_hostname}.
        @raise NotImplementedByController: for the features above.
        """
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        if password is not None:
            raise NotImplementedByController("server password (PASS is a login here)")
        _kill_leftovers()
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        assert self.directory is not None
        interface = "127.0.0.1" if hostname in ("", "0.0.0.0") else hostname
        # From irctest's allocator (released by kill()), for registerUser.
        (_, self.line_port) = self.get_hostname_and_port()

        if ssl:
            self.gen_ssl()
            irc = f"ssl:{port}:interface={interface}:privateKey={self.key_path}:certKey={self.pem_path}"
        else:
            irc = f"tcp:{port}:interface={interface}"

        if faketime and shutil.which("faketime"):
            faketime_cmd = ["faketime", "-f", faketime]
            self.faketime_enabled = True
        else:
            faketime_cmd = []

        self.proc = self.execute(
            [
                *faketime_cmd,
                twistd_command(),
                "-n",
                "--pidfile",
                "",
                "chat",
                "--in-memory",
                "--data-dir",
                str(self.directory / "data"),
                "--listen",
                f"tcp:{self.line_port}:interface=127.0.0.1",
                "--irc",
                irc,
                "--server-name",
                "My.Little.Server",
                # irctest's clients all come from 127.0.0.1 and send in bursts.
                "--max-connections-per-ip",
                "1000",
                "--flood-burst",
                "1000",
                "--flood-rate",
                "1000",
                "--log-level",
                "debug" if self.debug_mode else "info",
            ],
            proc_name="chat",
            cwd=self.directory,
        )
        _running.add(self)

    @override
    def kill(self) -> None:
        """
        Stop the daemon, free its ports and remove its directory.
        """
        _running.discard(self)
        super().kill()

    @override
    def wait_for_services(self) -> None:
        """
        Accounts are built in: services are up when the IRC port is.
        """
        self.wait_for_port()

    @override
    def registerUser(
        self,
        case: Any,
        username: str,
        password: Optional[str] = None,
    ) -> None:
        """
        Create the account C{username} with C{password}, as a user of the line
        listener would: C{/format json}, C{/nick}, C{/register}, then C{/whois}
        until it reports the account, then C{/quit}.

        @param case: the irctest test case (unused: no IRC client is needed).
        @param username: the nick to register (PROTOCOL.md section 3 rules).
        @param password: its password; required.
        @raise NotImplementedByController: when the daemon refuses the password
            (C{bad-arguments}: 8 to 256 characters without spaces; irctest's
            SASL tests use C{sesame}, or hundreds of characters): the test is
            skipped, not failed.
        @raise AssertionError: when the daemon answers an C{error} event, or
            does not confirm the account within 10 seconds.
        """
        assert password, "registerUser needs a password"
        self.wait_for_port()
        deadline = time.monotonic() + 10
        with socket.create_connection(("127.0.0.1", self.line_port), timeout=10) as conn:
            conn.sendall(
                f"/format json\r\n/nick {username}\r\n/register {password}\r\n/whois {username}\r\n".encode()
            )
            buffered = b""
            while True:
                assert time.monotonic() < deadline, f"no account confirmation for {username}: {buffered!r}"
                chunk = conn.recv(65536)
                assert chunk, f"line listener closed while registering {username}: {buffered!r}"
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue  # the text-format welcome before /format json
                    if event.get("type") == "error" and event.get("code") == "bad-arguments":
                        # The daemon's passwords are 8 to 256 characters without spaces;
                        # irctest's are "sesame", or 300 and more for its long-SASL tests.
                        raise NotImplementedByController(
                            f"an account password the daemon refuses: {event.get('message')}"
                        )
                    assert event.get("type") != "error", f"registering {username}: {event}"
                    if event.get("type") == "whois":
                        if event.get("account"):
                            conn.sendall(b"/quit\r\n")
                            return
                        # /register may finish after /whois (password hashing): ask again.
                        time.sleep(0.05)
                        conn.sendall(f"/whois {username}\r\n".encode())


def get_irctest_controller_class() -> Type[ChatController]:
    """
    The entry point irctest's C{conftest.py} calls on the C{--controller} module.

    @return: L{ChatController}.
    """
    return ChatController

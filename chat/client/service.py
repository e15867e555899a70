# -*- test-case-name: tests.test_client_service -*-
"""
L{ChatClient}: one user's session with a daemon, shared by the stdio and
Tk frontends. It keeps a connection with Twisted's L{ClientService}
(reconnecting with backoff), registers the nick (or logs in), joins the
rooms again after a reconnection, upgrades with C{/starttls} when asked,
measures the round-trip time, turns C{:shortcode:}s typed into emoji,
runs the client's own commands (C{/msg}, C{/verify}, C{/trust}, C{/send},
C{/get}, C{/mute}, C{/unmute}, C{/quit}, C{/help}), encrypts private
messages and files end to end through L{Secure} (PROTOCOL.md section 11),
and keeps the user's L{ClientSettings}. Everything
the user should know reaches the L{ChatModel} as an event or a
L{Notice}; nothing here prints or draws.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import emoji
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

from chat import events
from chat.client.crypto import CannotDecrypt, FileMessage
from chat.client.failures import describe_failure, transfer_failure
from chat.client.jobs import RunInThread, ServerError
from chat.client.model import ChatModel, State
from chat.client.protocol import ChatClientProtocol, IClientHandler
from chat.client.secure import Secure, decrypt_file, encrypt_file
from chat.client.settings import ClientSettings, data_dir, settings_path
from chat.client.typed import FORMATTING_HELP, HABITS_HELP, secret_input, with_emoji

PING_INTERVAL = 15.0
"""Seconds between two round-trip measurements (C{/ping}), which also keep
the connection alive through NAT and firewalls."""

RTT_TOKEN = "rtt-"
"""Prefix of the tokens of the client's own C{/ping}s, whose C{pong}s the
user does not see."""

CLIENT_COMMANDS = {
    "send": ("/send NICK|#ROOM PATH", "offers a file: uploads it with its SHA-256, showing progress"),
    "get": ("/get ID [DIR]", "downloads offer ID into the downloads folder or DIR, resuming, checked by SHA-256"),
    "msg": ("/msg NICK TEXT", "a private message, end-to-end encrypted when NICK's client has keys (says so if not)"),
    "verify": ("/verify NICK", "shows your fingerprint and NICK's, to compare aloud, and whether they are verified"),
    "trust": ("/trust NICK", "accepts NICK's keys as they are now (also after a change warning), marked verified"),
    "mute": ("/mute [#ROOM]", "a room's messages (default: the current room's) no longer alert you; remembered"),
    "unmute": ("/unmute [#ROOM]", "a muted room's mentions alert you again (default: the current room)"),
    "quit": ("/quit [REASON]", "says goodbye and exits (alias /exit)"),
    "help": ("/help [COMMAND]", "lists the client's commands, then the server's"),
}
"""The commands this client runs itself: usage and what they do."""

NICK_ERRORS = frozenset({"nick-invalid", "nick-taken", "nick-registered", "auth-failed", "auth-needs-tls"})


def default_downloads() -> Path:
    """
    Where downloads go by default: C{~/Downloads/chat}.
    """
    return Path.home() / "Downloads" / "chat"


@dataclass(frozen=True)
class Account:
    """
    Who to be: a nick, and a password to log in with (C{None}: a guest),
    kept in memory only and never shown in its C{repr} (which a log or a
    traceback may print).
    """

    nick: str
    password: str | None = field(default=None, repr=False)


@implementer(IStreamClientEndpoint)
class _ReportingEndpoint:
    """
    Wraps an endpoint to tell the model why a connection attempt failed;
    L{ClientService} only logs it.
    """

    def __init__(self, endpoint: IStreamClientEndpoint, report: Callable[[Failure], None]) -> None:
        self._endpoint = endpoint
        self._report = report

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:  # noqa: N803 (IStreamClientEndpoint)
        def failed(reason: Failure) -> Failure:
            self._report(reason)
            return reason

        return self._endpoint.connect(protocolFactory).addErrback(failed)


class _Factory(Factory):
    def __init__(self, handler: IClientHandler, run_in_thread: RunInThread) -> None:
        self._handler = handler
        self._run_in_thread = run_in_thread

    @override
    def buildProtocol(self, addr: Any) -> ChatClientProtocol:
        return ChatClientProtocol(self._handler, self._run_in_thread)


@implementer(IClientHandler)
class ChatClient(Service):
    """
    A user's session with one daemon, kept across reconnections.

    @ivar model: what the frontends observe.
    @ivar protocol: the current connection, once the daemon welcomed it.
    @ivar done: fires with C{None} once the user quit and the connection
        is closed (the frontend then exits).
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        endpoint: IStreamClientEndpoint,
        account: Account,
        *,
        where: str,
        secure: bool = False,
        starttls: Any = None,
        downloads: Path | None = None,
        model: ChatModel | None = None,
        retry_policy: Callable[[int], float] | None = None,
        run_in_thread: RunInThread = deferToThread,
        settings: ClientSettings | None = None,
        settings_file: Path | None = None,
        e2e: Secure | bool = False,
    ) -> None:
        """
        @param endpoint: how to connect (TLS included when C{secure}).
        @param where: C{host:port}, for messages.
        @param secure: whether C{endpoint} is a TLS one.
        @param starttls: client TLS options (C{optionsForClientTLS}) to
            upgrade each connection with C{/starttls}; C{None}: no upgrade.
        @param downloads: the default folder of C{/get}.
        @param retry_policy: seconds to wait before attempt N+1 after N
            failures; exponential backoff from 1 s to 30 s by default.
        @param run_in_thread: runs the file work of transfers (hashing,
            checking); the reactor's thread pool by default.
        @param settings: what to remember across runs (the command line's,
            L{chat.client.options.ClientOptions.settings}): its muted rooms
            become the model's; L{save_settings} writes it back. C{None}:
            nothing is remembered.
        @param settings_file: where L{save_settings} writes; the platform's
            (L{chat.client.settings.settings_path}) by default.
        @param e2e: end-to-end encryption of private messages: a
            L{Secure}, or C{True} for this installation's
            (L{Secure.load}; a damaged key file is told, and private
            messages then go in clear text, saying so), or C{False}: none.
        """
        self._reactor = reactor
        self.account = account
        self.where = where
        self.model = model or ChatModel(account.nick)
        self.model.nick = self.model.nick or account.nick
        self.downloads = downloads or default_downloads()
        self.settings = settings
        self._settings_file = settings_file
        self._theme_read = settings.theme if settings is not None else ""
        if settings is not None:
            self.model.muted = set(settings.muted)
            if settings.notice:
                self.model.notice(settings.notice, "error")
        self._registered_once = False
        self.protocol: ChatClientProtocol | None = None
        self.done: Deferred[None] = Deferred()
        self._secure = secure
        self._starttls = starttls
        self._policy = retry_policy or backoffPolicy(initialDelay=1.0, maxDelay=30.0)
        self._service = ClientService(
            _ReportingEndpoint(endpoint, self._connect_failed), _Factory(self, run_in_thread),
            retryPolicy=self._retry_in, clock=reactor,
        )
        self._run_in_thread = run_in_thread
        self._rejoin: list[str] = []
        self._typed_login: tuple[str | None, str] | None = None
        self._typed_password: str | None = None
        self._quitting = False
        self._bye = ""
        self._welcomed_once = False
        self._pings = itertools.count(1)
        self._sent_pings: dict[str, float] = {}
        self._pinger = LoopingCall(self.ping)
        self._pinger.clock = reactor
        self.secure: Secure | None = None
        if e2e is True:
            try:
                e2e = Secure.load()
            except Exception as e:  # a damaged key file (KeyFileError) or an OSError
                self.model.notice(f"End-to-end encryption is off: {e}", "error")
                e2e = False
        if isinstance(e2e, Secure):
            self.secure = e2e
            e2e.attach(self._send_raw, self.model)

    # Lifecycle

    @override
    def startService(self) -> None:
        super().startService()
        self._quitting = False
        self.model.set_state(State.CONNECTING)
        self.model.notice(f"Connecting to {self.where}…")
        self._service.startService()

    @override
    def stopService(self) -> Deferred[None]:
        """
        Close the connection (without C{/quit}) and stop reconnecting.
        """
        super().stopService()
        self._quitting = True
        if self._pinger.running:
            self._pinger.stop()
        stopped: Deferred[None] = self._service.stopService()

        def stopped_service(result: object) -> None:
            self.model.set_state(State.DISCONNECTED)

        return stopped.addCallback(stopped_service)

    def save_settings(self) -> bool:
        """
        Write L{settings} back (nothing without them): the server
        (L{where}) and nick once registered this session, the model's muted
        rooms, L{downloads} (C{""} for the default), and the theme as the
        front end set it in C{settings.theme}; while C{settings.theme} is
        unchanged, the file's theme is kept (another writer may have
        changed it). Called on registration, on C{/mute} and C{/unmute},
        and on L{quit}; a front end calls it after changing the theme or
        the downloads folder. Never raises.

        @return: whether they were saved.
        """
        settings = self.settings
        if settings is None:
            return False
        if self._registered_once:
            settings.server = self.where
            settings.nick = self.model.nick
        settings.muted = set(self.model.muted)
        settings.downloads = "" if self.downloads == default_downloads() else str(self.downloads)
        path = self._settings_file or settings_path()
        if settings.theme == self._theme_read and path.exists():
            on_disk = ClientSettings.load(path)
            if not on_disk.notice:
                settings.theme = on_disk.theme
        self._theme_read = settings.theme
        return settings.save(path)

    def quit(self, reason: str = "") -> Deferred[None]:
        """
        Say goodbye (C{/quit REASON}), remember the settings
        (L{save_settings}) and stop; L{done} fires once closed.
        """
        self.save_settings()
        if self.protocol is not None:
            try:
                self.protocol.send_line(f"/quit {reason}".rstrip())
            except ValueError:
                self.protocol.send_line("/quit")
        if self.running:
            self.stopService().addBoth(self._finished)
        else:
            self._finished(None)
        return self.done

    def _finished(self, result: object) -> None:
        if not self.done.called:
            self.done.callback(None)

    def leave(self) -> Deferred[None]:
        """
        Disconnect with C{/quit}, but keep the session: L{reconnect} later.
        """
        if self.protocol is not None:
            self.protocol.send_line("/quit")
        self.model.notice("Left the server: reconnect when you want to.")
        return self.stopService()

    def reconnect(self) -> None:
        """
        Connect again after L{leave}.
        """
        if not self.running:
            self.startService()

    # What the connection tells (IClientHandler)

    def connected(self, protocol: ChatClientProtocol) -> None:
        """
        The daemon welcomed a new connection: upgrade it if asked, then
        register the nick or log in.
        """
        self.protocol = protocol
        self._bye = ""
        self.model.set_state(State.CONNECTED)
        self.model.set_secure(self._secure)
        if self._starttls is not None:
            protocol.start_tls(self._starttls).addCallbacks(
                lambda _: self._upgraded(protocol), lambda f: self._upgrade_failed(protocol, f)
            )
        else:
            self._register(protocol)

    def _upgraded(self, protocol: ChatClientProtocol) -> None:
        self.model.set_secure(True)
        self._register(protocol)

    def _upgrade_failed(self, protocol: ChatClientProtocol, reason: Failure) -> None:
        if reason.check(ServerError):
            # Never go on in clear text when TLS was asked for.
            self.model.notice(f"The server cannot start TLS: {reason.value}. Not connecting in clear text.", "error")
            self.stopService()

    def _register(self, protocol: ChatClientProtocol) -> None:
        self._rejoin = [room.name for room in self.model.rooms.values()]
        self._typed_login = self._typed_password = None
        if self.account.password is not None:
            protocol.send_line(f"/login {self.account.nick} {self.account.password}")
        else:
            protocol.send_line(f"/nick {self.model.nick or self.account.nick}")

    def _send_raw(self, line: str) -> None:
        """
        Send a line for L{secure}.

        @raise ValueError: too long, or not connected.
        """
        if self.protocol is None:
            raise ValueError(f"not connected to {self.where}")
        self.protocol.send_line(line)

    def event_received(self, event: events.Event) -> None:
        """
        One event from the daemon: measure pings, join rooms again after a
        reconnection, let L{secure} open private messages (and take the
        answers to its own requests), then update the model (which tells
        the frontends).
        """
        if self.secure is not None:
            seen = self.secure.event_received(event)
            if seen is None:
                return
            event = seen
        match event:
            case events.Pong(token=token) if token.startswith(RTT_TOKEN):
                sent = self._sent_pings.pop(token, None)
                if sent is not None:
                    self.model.set_rtt(self._reactor.seconds() - sent)
                return
            case events.Registered():
                self._remember_login(event)
                self.model.apply(event)
                self._registered_once = True
                self.save_settings()
                self._registered()
                if self.secure is not None:
                    self.secure.registered()
                return
            case events.Bye():
                self._bye = event.reason
            case events.Info(text="Your password is changed") if self._typed_password is not None:
                if self.account.password is not None:
                    self.account = Account(self.account.nick, self._typed_password)
                self._typed_password = None
            case events.Error(code="nick-registered"):
                self._typed_login = None
                self.model.apply(event)
                hint = self._registered_hint(event.message)
                if hint:
                    self.model.notice(hint)
                return
            case events.Error(code=code) if code in NICK_ERRORS and self.model.state == State.CONNECTED:
                self._typed_login = None
                self.model.apply(event)
                self.model.notice("Choose another nick with /nick NAME (or log in with /login NICK PASSWORD).")
                return
            case events.Error(code="auth-failed" | "auth-needs-tls" | "bad-arguments" | "busy"):
                self._typed_login = self._typed_password = None
        self.model.apply(event)

    def _remember_login(self, event: events.Registered) -> None:
        """
        A C{/login} or C{/register} the user typed succeeded: remember the
        account and password (in memory only) to log in again after a
        reconnection.
        """
        typed, self._typed_login = self._typed_login, None
        if event.account and typed is not None:
            self.account = Account(event.nick, typed[1])

    def _registered_hint(self, message: str) -> str:
        """
        The hint after C{nick-registered} (PROTOCOL.md section 3.3: C{bob is
        a registered nick: /login bob PASSWORD}): how to log in to that
        nick, or choose another; C{""} when the user is logged in already.
        """
        nick = message.split(" ", 1)[0]
        if not nick or nick.lower() == "you":
            return ""
        if self.model.state == State.ONLINE:
            return f"{nick} has an account: /login {nick} PASSWORD if it is yours."
        return f"{nick} has an account: /login {nick} PASSWORD if it is yours, or choose another nick with /nick NAME."

    def _registered(self) -> None:
        assert self.protocol is not None
        rooms, self._rejoin = self._rejoin, []
        if rooms and rooms[0].lower() == "#lobby":
            del rooms[0]  # the daemon joins everyone to #lobby first
        elif rooms and "#lobby" not in {room.lower() for room in rooms}:
            self.protocol.send_line("/part #lobby")  # the user had left it
        if rooms:
            self.model.notice("Joining " + ", ".join(rooms) + " again.")
            for room in rooms:
                self.protocol.send_line(f"/join {room}")
        if not self._pinger.running:
            self._pinger.start(PING_INTERVAL, now=True)

    def disconnected(self, reason: Failure) -> None:
        """
        The connection ended: say why; L{ClientService} reconnects unless
        the user quit.
        """
        was_welcomed = self.protocol is not None
        self.protocol = None
        self._sent_pings.clear()
        if self.secure is not None:
            self.secure.disconnected()
        if self._pinger.running:
            self._pinger.stop()
        if self._quitting:
            self.model.notice("Disconnected.")
            return
        why = f"the server said goodbye: {self._bye}" if self._bye else describe_failure(reason)
        if was_welcomed:
            self.model.notice(f"Disconnected from {self.where}: {why}.", "error")
        else:
            self.model.notice(f"Could not talk to {self.where}: {why}.", "error")
        self.model.set_state(State.CONNECTING)

    def _connect_failed(self, reason: Failure) -> None:
        if not self._quitting:
            self.model.notice(f"Cannot connect to {self.where}: {describe_failure(reason)}.", "error")

    def _retry_in(self, failures: int) -> float:
        delay = self._policy(failures)
        if not self._quitting:
            self.model.notice(f"Trying again in {delay:.0f} s.")
        return delay

    # What the user asks

    def ping(self) -> None:
        """
        Measure the round-trip time (C{/ping rtt-N}); L{ChatModel.rtt}
        gets it when the C{pong} comes.
        """
        if self.protocol is not None:
            token = f"{RTT_TOKEN}{next(self._pings)}"
            self._sent_pings[token] = self._reactor.seconds()
            self.protocol.send_line(f"/ping {token}")

    def input(self, line: str) -> None:
        """
        One line the user typed: a client command (L{CLIENT_COMMANDS}),
        or a command or message for the daemon, sent as typed, except the
        habits of simple chat programs (L{HABITS_HELP}), run as the
        commands they meant, and a plain line carrying a password
        (L{chat.client.typed.secret_input}), never said. A C{/login} or
        C{/register} the daemon accepts is remembered, in memory only, to
        log in again after a reconnection. C{:shortcode:}s become emoji
        (L{with_emoji}) in what is said, never in a command's nick, room
        or password. Problems are told as notices; nothing is raised, and
        no notice repeats a password.
        """
        line = line.rstrip("\r\n")
        if not line.strip():
            return
        if line.startswith("/") and not line.startswith("//"):
            name, _, args = line[1:].partition(" ")
            handler = getattr(self, f"_cmd_{name.lower()}", None)
            if name.lower() == "exit":
                handler = self._cmd_quit
            if name.lower() in ("mute", "unmute") and self._names_person(args):
                handler = None  # an operator's /mute NICK [#ROOM] [DURATION] (PROTOCOL.md section 10)
            if handler is not None:
                handler(args.strip())
                return
            if name.lower() == "join" and args.strip():
                self.model.make_current(args.split()[0])
            self._typed(name.lower(), args.split())
        elif secret_input(line):
            self.model.notice("Not sent: that line holds a password. Type commands without a space before the /.",
                              "error")
            return
        elif self._habit(line):
            return
        self._send(with_emoji(line))

    def _typed(self, verb: str, args: list[str]) -> None:
        """
        Note a C{/login}, C{/register} or C{/password} typed, so that its
        password logs in again after a reconnection once the daemon took it.
        """
        if verb == "login" and len(args) >= 2:
            self._typed_login = (args[0], args[1])
        elif verb == "register" and len(args) == 1:
            self._typed_login = (None, args[0])
        elif verb == "password" and len(args) == 2:
            self._typed_password = args[1]

    def _habit(self, line: str) -> bool:
        """
        Run a plain line that is a habit of simple chat programs (see
        L{HABITS_HELP}) as the command it meant, or tell how to; a line
        starting with a space is never one.

        @return: whether C{line} was one (and must not be said).
        """
        word, _, rest = line.partition(" ")
        verb = word.lower()
        if not rest.strip() and verb in ("list", "help", "quit"):
            self.input(f"/{verb}")
            return True
        if verb == "send" and rest.strip():
            nick, _, text = rest.strip().partition(" ")
            known = {n.lower() for room in self.model.rooms.values() for n in room.members} | set(
                self.model.conversations)
            if text.strip() and nick.lower() in known:
                self._cmd_msg(f"{nick} {text.strip()}")
            else:
                self.model.notice("To message someone: /msg NICK TEXT. To say a line starting with send, "
                                  "start it with a space.")
            return True
        if verb.startswith("file:") and len(line) > len("file:"):
            path = line[len("file:"):].strip()
            current = self.model.current
            if current is None:
                self.model.notice(f"To offer a file: /send NICK|#ROOM {path}", "error")
            else:
                self.send_file(current.name, Path(os.path.expanduser(path)))
            return True
        return False

    def _send(self, line: str) -> None:
        if self.protocol is None:
            self.model.notice(f"Not connected to {self.where}: not sent.", "error")
            return
        try:
            self.protocol.send_line(line)
        except ValueError as e:
            self.model.notice(str(e), "error")

    def _cmd_help(self, args: str) -> None:
        topic = args.lstrip("/").lower()
        if topic in CLIENT_COMMANDS:
            usage, does = CLIENT_COMMANDS[topic]
            self.model.notice(f"{usage}: {does}")
            return
        if not topic:
            self.model.notice("This client's commands:")
            for usage, does in CLIENT_COMMANDS.values():
                self.model.notice(f"  {usage}: {does}")
            self.model.notice(HABITS_HELP)
            self.model.notice(FORMATTING_HELP)
            self.model.notice("The server's commands:")
        self._send(f"/help {args}".rstrip())

    def _cmd_msg(self, args: str) -> None:
        nick, _, text = args.partition(" ")
        if not nick or not text.strip():
            self._send(f"/msg {args}".rstrip())  # the daemon's usage error
            return
        line = with_emoji(f"/msg {nick} {text}")
        if self.secure is None:
            self._send(line)
            return
        text = line.split(" ", 2)[2]
        if self.protocol is None:
            self.model.notice(f"Not connected to {self.where}: not sent.", "error")
            return
        self.secure.send_private(nick, text)

    def _nick_argument(self, verb: str, args: str) -> str | None:
        nick = args.split()[0] if args.split() else ""
        if not nick:
            self.model.notice("Usage: " + CLIENT_COMMANDS[verb][0], "error")
            return None
        if self.secure is None:
            self.model.notice("End-to-end encryption is off in this client.", "error")
            return None
        if self.protocol is None:
            self.model.notice(f"Not connected to {self.where}.", "error")
            return None
        return nick

    def _cmd_verify(self, args: str) -> None:
        nick = self._nick_argument("verify", args)
        if nick is not None and self.secure is not None:
            self.secure.verify(nick)

    def _cmd_trust(self, args: str) -> None:
        nick = self._nick_argument("trust", args)
        if nick is not None and self.secure is not None:
            self.secure.trust(nick)

    def _cmd_quit(self, args: str) -> None:
        self.quit(emoji.emojize(args, language="alias"))

    def _names_person(self, args: str) -> bool:
        """
        Whether the arguments of a C{/mute} or C{/unmute} are the daemon's
        (an operator muting someone: C{NICK [#ROOM] [DURATION]}) rather
        than the client's (C{[#ROOM]}, the C{#} optional): more than one
        word, or one word that is not a room but the nick of someone in a
        room joined.
        """
        words = args.split()
        if len(words) > 1:
            return True
        if not words or words[0].startswith("#"):
            return False
        return any(words[0].lower() == nick.lower() for room in self.model.rooms.values() for nick in room.members)

    def _room_argument(self, verb: str, args: str) -> str | None:
        """
        The room a C{/mute} or C{/unmute} names (C{#} added when left
        out), or the current one; C{None} (after a usage notice) when
        neither.
        """
        if args:
            word = args.split()[0]
            return word if word.startswith("#") else f"#{word}"
        current = self.model.current
        if current is None:
            self.model.notice("Usage: " + CLIENT_COMMANDS[verb][0], "error")
            return None
        return current.name

    def _cmd_mute(self, args: str) -> None:
        room = self._room_argument("mute", args)
        if room is None:
            return
        if self.model.mute(room):
            self.model.notice(f"Muted {room}: its messages no longer alert you (/unmute {room} to undo).")
            self.save_settings()
        else:
            self.model.notice(f"{room} is muted already.")

    def _cmd_unmute(self, args: str) -> None:
        room = self._room_argument("unmute", args)
        if room is None:
            return
        if self.model.unmute(room):
            self.model.notice(f"Unmuted {room}: mentions of you there alert you again.")
            self.save_settings()
        else:
            muted = ", ".join(sorted(self.model.muted)) or "none"
            self.model.notice(f"{room} is not muted (muted rooms: {muted}).")

    def _cmd_send(self, args: str) -> None:
        target, _, path_text = args.partition(" ")
        if not target or not path_text.strip():
            self.model.notice("Usage: " + CLIENT_COMMANDS["send"][0], "error")
            return
        self.send_file(target, Path(os.path.expanduser(path_text.strip())))

    def _cmd_get(self, args: str) -> None:
        parts = args.split(maxsplit=1)
        if not parts or not parts[0].isdigit():
            self.model.notice("Usage: " + CLIENT_COMMANDS["get"][0], "error")
            return
        folder = Path(os.path.expanduser(parts[1])) if len(parts) > 1 else None
        self.get_file(int(parts[0]), folder)

    def send_file(self, target: str, path: Path) -> None:
        """
        Upload C{path} to C{target} (a nick or C{#room}); progress and the
        outcome reach the model as a transfer. To a nick whose client has
        keys (with L{secure}), the file is encrypted first and its key sent
        in an envelope (L{_send_file_sealed}); to one without, in clear
        text, saying so.
        """
        if self.protocol is None:
            self.model.notice(f"Not connected to {self.where}: not sent.", "error")
            return
        secure = self.secure
        if secure is not None and not target.startswith("#"):
            secure.ask_keys([target, self.model.nick], lambda answers: self._send_file_sealed(target, path, answers))
            return
        self._upload(target, path)

    def _send_file_sealed(self, target: str, path: Path, answers: Any) -> None:
        """
        Offer C{path} to C{target} end-to-end encrypted (when they have
        keys): encrypt it in a thread into the data folder, upload that,
        then send its key and name in an envelope (C{/emsg}) naming the
        offer; in clear text (saying so) when C{target} has no key.
        """
        assert self.secure is not None
        secure = self.secure
        recipients = secure.recipients(target, answers)
        if recipients is None:
            return
        if not recipients:
            self.model.notice(f"not encrypted: {target}'s client has no key.")
            self._upload(target, path)
            return
        transfer = self.model.add_transfer("upload", path.name, target)
        staging = data_dir() / "encrypted-uploads"

        def encrypted(made: tuple[Path, FileMessage]) -> Deferred[None]:
            encrypted_path, message = made
            if self.protocol is None:
                shutil.rmtree(encrypted_path.parent, ignore_errors=True)
                raise ConnectionError("disconnected")

            def uploaded(event: events.UploadDone) -> None:
                secure.send_sealed(target, replace(message, offer=event.id), recipients)
                self.model.finish(transfer, result=str(path))
                self.model.notice(f"Sent {path.name} to {target}, end-to-end encrypted (offer {event.id}).")

            def cleanup(result: object) -> object:
                shutil.rmtree(encrypted_path.parent, ignore_errors=True)
                return result

            return self.protocol.upload(
                target, encrypted_path, lambda sent, size: self.model.progress(transfer, sent, size)
            ).addCallback(uploaded).addBoth(cleanup)

        def failed(reason: Failure) -> None:
            self.model.finish(transfer, error=transfer_failure(reason))
            self.model.notice(f"Could not send {path.name} to {target}: {transfer.error}.", "error")

        self._run_in_thread(encrypt_file, path, staging).addCallback(encrypted).addErrback(failed)

    def _upload(self, target: str, path: Path) -> None:
        assert self.protocol is not None
        transfer = self.model.add_transfer("upload", path.name, target)

        def done(event: events.UploadDone) -> None:
            self.model.finish(transfer, result=str(path))
            self.model.notice(f"Sent {path.name} to {target} (offer {event.id}).")

        def failed(reason: Failure) -> None:
            self.model.finish(transfer, error=transfer_failure(reason))
            self.model.notice(f"Could not send {path.name} to {target}: {transfer.error}.", "error")

        self.protocol.upload(
            target, path, lambda sent, size: self.model.progress(transfer, sent, size)
        ).addCallbacks(done, failed)

    def get_file(self, offer_id: int, folder: Path | None = None) -> None:
        """
        Download offer C{offer_id} into C{folder} (default: L{downloads}),
        resuming a partial download; the outcome reaches the model. An
        offer an envelope gave the key of (L{Secure.files}) is fetched
        encrypted into the data folder, then decrypted into C{folder}.
        """
        if self.protocol is None:
            self.model.notice(f"Not connected to {self.where}: cannot download.", "error")
            return
        offer = self.model.offers.get(offer_id)
        sealed = self.secure.files.get(offer_id) if self.secure is not None else None
        if sealed is not None:
            self._get_sealed(offer_id, sealed, offer, folder or self.downloads)
            return
        if offer is None:
            self.model.notice(f"No offer {offer_id} known here: /files lists the ones for you.", "error")
            return
        folder = folder or self.downloads
        transfer = self.model.add_transfer("download", offer.name, offer.sender, offer.size, offer=offer_id)

        def done(path: Path) -> None:
            self.model.finish(transfer, result=str(path))
            self.model.notice(f"Saved {path} (SHA-256 checked).")

        def failed(reason: Failure) -> None:
            self.model.finish(transfer, error=transfer_failure(reason))
            self.model.notice(f"Could not download {offer.name}: {transfer.error}.", "error")

        self.protocol.download(
            offer_id, offer.name, folder, lambda got, size: self.model.progress(transfer, got, size)
        ).addCallbacks(done, failed)

    def _get_sealed(self, offer_id: int, message: FileMessage, offer: events.FileOffer | None, folder: Path) -> None:
        """
        Download the end-to-end encrypted offer C{offer_id} into the data
        folder (resumable, SHA-256 checked), then decrypt it in a thread
        into C{folder} under the name inside its envelope.
        """
        assert self.protocol is not None
        if offer is not None and offer.sha256 != message.sha256:
            self.model.notice(f"Not downloaded: offer {offer_id} is not the file its encrypted message names.",
                              "error")
            return
        sender = offer.sender if offer is not None else "?"
        transfer = self.model.add_transfer("download", message.name, sender, message.size, offer=offer_id)
        staging = data_dir() / "encrypted-downloads"

        def downloaded(encrypted: Path) -> Deferred[Path]:
            return self._run_in_thread(decrypt_file, encrypted, folder, message)

        def done(path: Path) -> None:
            self.model.finish(transfer, result=str(path))
            self.model.notice(f"Saved {path} (decrypted, checked).")

        def failed(reason: Failure) -> None:
            if reason.check(CannotDecrypt):
                error = f"it could not be decrypted ({reason.value.reason})"  # type: ignore[union-attr]
            else:
                error = transfer_failure(reason)
            self.model.finish(transfer, error=error)
            self.model.notice(f"Could not download {message.name}: {error}.", "error")

        self.protocol.download(
            offer_id, f"{offer_id}.chate2e", staging, lambda got, size: self.model.progress(transfer, got, size)
        ).addCallback(downloaded).addCallbacks(done, failed)

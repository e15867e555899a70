# -*- test-case-name: tests.test_protocol -*-
"""
The chat protocol of PROTOCOL.md: L{ChatProtocol}, one per connection, and
L{ChatFactory}, which builds them over one L{ChatDomain}. The only place where
bytes meet the domain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IReactorTime,
    ISSLTransport,
    ITCPTransport,
)
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from typing_extensions import override
from zope.interface import implementer

import chat
from chat import errors, events, wire
from chat.accounts import Account, Accounts, PasswordHasher, is_local
from chat.domain import (
    NICK_MAX,
    ChatDomain,
    IEventSink,
    IParticipant,
    TokenBucket,
    User,
    utc,
)
from chat.outbox import Batch, Outbox
from chat.render import RENDERERS, Renderer, render_text
from chat.settings import Settings
from chat.spool import Spool, Upload, display_name, is_sha256
from chat.storage import IStore, MemoryStore
from chat.telnet import TelnetFilter
from chat.tls import ServerTLS

# Commands: name -> (usage, what it does). The order is the order /help lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("/help [COMMAND]", "lists the commands, or explains one"),
    "nick": ("/nick NEW", "picks your nick, or changes it"),
    "msg": ("/msg NICK TEXT", "sends a private message"),
    "me": ("/me TEXT", "sends an action to the current room"),
    "join": ("/join #ROOM", "joins a room (creating it if new) and makes it current"),
    "part": ("/part [#ROOM] [REASON]", "leaves a room (default: the current one)"),
    "rooms": ("/rooms", "lists the rooms with topic and user count"),
    "list": ("/list [#ROOM]", "lists a room's users with status and idle time (alias /users)"),
    "whois": ("/whois NICK", "tells about a user"),
    "status": ("/status [TEXT]", "sets your status, or clears it without TEXT (alias /away)"),
    "topic": ("/topic [#ROOM] [TEXT]", "shows or sets a room's topic"),
    "history": ("/history [N] [#ROOM]", "shows the last N messages (default 20, at most 500)"),
    "register": ("/register PASSWORD", "creates an account for your nick"),
    "login": ("/login NICK PASSWORD", "logs in to an account"),
    "password": ("/password OLD NEW", "changes your account's password"),
    "upload": ("/upload TARGET NAME SIZE [SHA256]", "offers a file to a nick or #room"),
    "download": ("/download ID [OFFSET]", "fetches an offered file"),
    "files": ("/files", "lists the files offered to you"),
    "format": ("/format text|json", "switches the output format"),
    "starttls": ("/starttls", "upgrades the connection to TLS"),
    "ping": ("/ping [TOKEN]", "answers pong"),
    "quit": ("/quit [REASON]", "says goodbye and closes the connection (alias /exit)"),
}
ALIASES = {"users": "list", "away": "status", "exit": "quit"}
UNREGISTERED = frozenset({"help", "format", "starttls", "ping", "nick", "login", "quit"})
"""Commands that work before registration (PROTOCOL.md section 3.2)."""

MAX_DOWNLOADS = 4
"""Downloads one connection may have sent or waiting at once."""


def _usage(name: str) -> errors.BadArguments:
    return errors.BadArguments(f"usage: {COMMANDS[name][0]}")


def _is_count(word: str) -> bool:
    return word.isascii() and word.isdigit() and len(word) <= 18


def _upload_arguments(args: str) -> tuple[str, str, int, str | None]:
    """
    Split the arguments of C{/upload TARGET NAME SIZE [SHA256]}. SIZE and
    SHA256 are read from the end, so NAME may hold spaces.

    @return: C{(target, name, size, sha256 or None)}.
    @raise errors.BadArguments: they do not fit that shape.
    """
    words = args.split()
    expected = None
    if len(words) >= 4 and is_sha256(words[-1]) and _is_count(words[-2]):
        expected = words.pop().lower()
    if len(words) < 3 or not _is_count(words[-1]):
        raise _usage("upload")
    return words[0], " ".join(words[1:-1]), int(words[-1]), expected


class _Incoming:
    """
    An upload this connection is sending: its id, target, label and bytes.
    """

    __slots__ = ("id", "to", "name", "upload")

    def __init__(self, id: int, to: str, name: str, upload: Upload) -> None:
        self.id = id
        self.to = to
        self.name = name
        self.upload = upload


@implementer(IEventSink)
class Broadcaster:
    """
    Publishes domain events: renders each once per output format, then
    writes the same bytes to every recipient's outbox.
    """

    def publish(self, event: events.Event, recipients: Iterable[IParticipant]) -> None:
        rendered: dict[Renderer, bytes] = {}
        for recipient in cast(Iterable[ChatProtocol], recipients):
            renderer = recipient.renderer
            data = rendered.get(renderer)
            if data is None:
                data = rendered[renderer] = renderer(event)
            recipient.outbox.write(data)


@implementer(IParticipant)
class ChatProtocol(LineReceiver):
    """
    One connection: frames, decodes and limits its input (PROTOCOL.md
    sections 1 and 8), turns each line into one domain call, and renders
    what it is sent in its own format.

    @ivar renderer: the output format's renderer, L{render_text} by default.
    @ivar user: the domain's user once registered, else C{None}.
    @ivar secure: whether the connection is encrypted.
    @ivar host: the peer's address (IP or UNIX path), the key of the
        per-address limits.

    File transfer (PROTOCOL.md section 6): during an upload the protocol is
    in L{LineReceiver}'s raw mode for exactly the announced bytes; a
    download is streamed by the L{Outbox} while commands keep being read.
    """

    delimiter = b"\n"
    transport: ITCPTransport
    _log = Logger()

    def __init__(self, factory: ChatFactory) -> None:
        self.factory = factory
        self.settings = factory.settings
        self.clock = factory.clock
        self.MAX_LENGTH = self.settings.max_line + 1  # room for a CR before the LF
        self.renderer: Renderer = render_text
        self.user: User | None = None
        self.secure = False
        self.outbox: Outbox
        self.peer = ""
        self.host = ""
        self._telnet = TelnetFilter()
        self._bucket = TokenBucket(self.settings.flood_rate, self.settings.flood_burst, self.clock.seconds())
        self._throttle: IDelayedCall | None = None
        self._flood_warned = False
        self._refeed: bytes | None = None
        self._discarding = False
        self._quit_reason = "connection lost"
        self._closing = False
        self._abort_call: IDelayedCall | None = None
        self._waiting = False
        self._unread = b""
        """Input not yet telnet-filtered: held while reading is paused."""
        self._upload: _Incoming | None = None
        self._downloads = 0
        self._drop_input = False
        """Set by /starttls: the rest of its packet is dropped, never read as if it came over TLS."""
        self._commands: dict[str, Callable[[wire.Command], Deferred[Any] | None]] = {
            name: getattr(self, f"_cmd_{name}") for name in COMMANDS
        }

    # Connection lifecycle

    @override
    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.host = str(getattr(peer, "host", peer))
        self.peer = f"{self.host}:{getattr(peer, 'port', '')}"
        self.secure = ISSLTransport.providedBy(self.transport)
        set_nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            set_nodelay(True)
        self.outbox = Outbox(self.transport, self.factory.batch, self.settings.max_output, self._slow_reader)
        if not self.factory.connection_made(self):
            self._log.info("refused {peer}: too many connections from its address", peer=self.peer)
            self.close("too many connections from your address")
            return
        self._log.info("connection from {peer}", peer=self.peer)
        self.send(self.factory.welcome(registered=False))
        self.outbox.flush()

    @override
    def connectionLost(self, reason: Failure | None = None) -> None:
        self._closing = True
        if self._throttle is not None and self._throttle.active():
            self._throttle.cancel()
        if self._abort_call is not None and self._abort_call.active():
            self._abort_call.cancel()
        if self._upload is not None:
            incoming, self._upload = self._upload, None
            self.factory.spool.abort(incoming.upload)
            upload = incoming.upload
            self._log.info(
                "{peer} left during upload {id}: {got} of {size} bytes, dropped",
                peer=self.peer, id=incoming.id, got=upload.size - upload.remaining, size=upload.size,
            )
        if self.user is not None:
            self.factory.domain.quit(self.user, self._quit_reason, self.clock.seconds())
            self._log.info("{nick} at {peer} quit", nick=self.user.nick, peer=self.peer)
            self.user = None
        else:
            self._log.info("{peer} disconnected", peer=self.peer)
        self.factory.connection_lost(self)
        self.factory.batch.flush()

    def send(self, event: events.Event) -> None:
        """
        Send C{event} to this connection in its format, after the events
        published before it (a message waiting for its commit, for one).
        """
        self.factory.domain.tell(self, event)

    def close(self, reason: str) -> None:
        """
        Stop reading; once the events published before are out, say C{bye}
        with C{reason} and close when the output has drained.
        """
        if self._closing:
            return
        self._closing = True
        self._quit_reason = reason
        self.pauseProducing()
        self.factory.domain.then(lambda: self._close_now(reason))

    def _close_now(self, reason: str) -> None:
        self.outbox.finish(self.renderer(events.Bye(reason)))
        self.outbox.flush()
        # Over TLS the connection ends once the peer's close_notify is read:
        # read again (what comes is dropped). A peer that never answers, or
        # never reads its output, is cut off.
        self.transport.resumeProducing()  # type: ignore[attr-defined]
        self.transport.loseConnection()
        self._abort_call = self.clock.callLater(self.settings.shutdown_timeout, self.transport.abortConnection)

    def kick(self, reason: str) -> None:
        """
        Remove this connection's user from the domain now (others see it
        quit with C{reason}), then close the connection.
        """
        if self.user is not None:
            self.factory.domain.quit(self.user, reason, self.clock.seconds())
            self.user = None
        self.close(reason)

    def _slow_reader(self) -> None:
        self._log.warn("disconnecting {peer}: it does not read its output", peer=self.peer)
        self._quit_reason = "too slow reading"
        self._closing = True
        if not self.outbox.streaming:  # never inside a file's bytes
            self.transport.write(self.renderer(events.Bye("you are not reading fast enough")))
        self.transport.abortConnection()

    # Input: bytes to lines

    @override
    def dataReceived(self, data: bytes) -> None:
        """
        Called by the transport with raw bytes: removes telnet sequences (and
        answers them), discards the rest of an over-long line, then frames.
        """
        try:
            self._receive(data)
        finally:
            self.factory.batch.flush()

    def _receive(self, data: bytes) -> None:
        self._drop_input = False
        if self._unread:
            data, self._unread = self._unread + data, b""
        if self._buffer and not self.paused and not self._closing:
            # Lines held back while reading was paused go first.
            super().dataReceived(b"")
            self._read_again()
        while (data or self._unread) and not self._closing:
            if self._drop_input:
                self._unread = b""
                return
            if self._unread:
                data, self._unread = self._unread + data, b""
            if self.paused:
                self._unread = data
                return
            if not self.line_mode:
                # An upload's bytes; what follows its last byte comes back in _unread.
                super().dataReceived(data)
                data = b""
                continue
            lines, data = self._lines(data)
            if self._discarding:
                end = lines.find(self.delimiter)
                if end < 0:
                    continue
                self._discarding = False
                lines = lines[end + 1:]
            super().dataReceived(lines)
            self._read_again()

    def _lines(self, data: bytes) -> tuple[bytes, bytes]:
        """
        Telnet-filter the start of C{data} that is surely lines (see
        L{TelnetFilter.feed_line}), so that the bytes after an C{/upload}
        line are never taken for telnet input.

        @return: the filtered lines, and the rest of C{data}, unfiltered.
        """
        lines, reply, used = self._telnet.feed_line(data)
        if reply:
            self.outbox.write(reply)
        return lines, data[used:]

    def _read_again(self) -> None:
        while self._refeed is not None and not self._closing:
            rest, self._refeed = self._refeed, None
            super().dataReceived(rest)

    @override
    def rawDataReceived(self, data: bytes) -> None:
        """
        Called by L{LineReceiver} in raw mode with bytes of the upload in
        progress; the bytes after its last one are read as lines again.
        """
        incoming = self._upload
        assert incoming is not None, "raw mode is only for uploads"
        upload = incoming.upload
        if len(data) > upload.remaining:
            self._unread = data[upload.remaining:] + self._unread
            data = data[:upload.remaining]
        upload.write(data)
        if not upload.remaining:
            self._upload = None
            self.setLineMode()
            self._hold(self._finish_upload(incoming))

    @override
    def lineLengthExceeded(self, line: bytes) -> None:
        """
        Called by L{LineReceiver} with an over-long line and everything it
        had buffered after it: the line is refused with C{line-too-long}, the
        lines after it are read again, and an unfinished line is discarded up
        to its line end, so its tail never runs as a command.
        """
        self._bucket.take(self.clock.seconds())
        self.send(events.Error("line-too-long", f"a line is at most {self.settings.max_line} bytes"))
        _, found, rest = line.partition(self.delimiter)
        if found:
            self._refeed = rest
        else:
            self._discarding = True

    @override
    def lineReceived(self, line: bytes) -> None:
        """
        Called by L{LineReceiver} for each complete line, without its LF.
        """
        if self._throttled(line):
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.settings.max_line:
            self.send(events.Error("line-too-long", f"a line is at most {self.settings.max_line} bytes"))
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.send(events.Error("bad-encoding", "lines must be UTF-8"))
            return
        command = wire.parse(text)
        try:
            self._dispatch(command)
        except errors.ChatError as e:
            self.send(events.Error(e.code, str(e)))

    def _throttled(self, line: bytes) -> bool:
        """
        Apply the flood limit (PROTOCOL.md section 8) to a line about to be
        processed. With no token left the line is put back in front of the
        buffer and reading stops until the bucket allows it: lines are
        delayed, never dropped. The first delay of an episode is announced
        with error C{flood}.

        @return: whether the line was held back.
        """
        now = self.clock.seconds()
        if self._flood_warned and self._bucket.full(now):
            self._flood_warned = False
        delay = self._bucket.wait(now)
        if delay <= 0:
            self._bucket.take(now)
            return False
        # LineReceiver reads its buffer again on resumeProducing.
        self._buffer = line + self.delimiter + self._buffer
        if not self._flood_warned:
            self._flood_warned = True
            self.send(events.Error("flood", "you are sending too fast: your lines are being delayed"))
        self.pauseProducing()
        self._throttle = self.clock.callLater(delay, self._unthrottle)
        return True

    def _unthrottle(self) -> None:
        self._throttle = None
        if not self._closing and not self._waiting:
            self.resumeProducing()

    def _hold(self, pending: Deferred[Any]) -> None:
        """
        Stop reading until a command that completes later (one that checks
        a password, say) is done: the connection's next lines run after it.
        A L{errors.ChatError} it fails with is sent as C{error}; anything
        else is logged and sent as error C{busy}. A command already done
        (C{pending} has its result) holds nothing.
        """
        self._waiting = True
        pending.addErrback(self._failed)
        pending.addBoth(self._release)
        if self._waiting:
            self.pauseProducing()

    def _failed(self, failure: Failure) -> None:
        error = failure.check(errors.ChatError)
        if error is not None:
            self.send(events.Error(cast(errors.ChatError, failure.value).code, str(failure.value)))
            return
        self._log.failure("request from {peer} failed", failure, peer=self.peer)
        self.send(events.Error(errors.Busy.code, "the server could not do that now; try again later"))

    def _release(self, result: object) -> None:
        self._waiting = False
        if self.paused and not self._closing and self._throttle is None:
            self.resumeProducing()
        else:
            self.factory.batch.flush()

    # Lines to domain calls

    def _dispatch(self, command: wire.Command) -> None:
        name = command.name
        if name is None:
            if self.user is not None:
                self.factory.domain.say(self.user, command.args, self.clock.seconds())
            elif self.renderer is render_text and command.args.strip():
                self._register(command.args.strip())
            elif command.args.strip():
                self.send(events.Error("not-registered", "choose a nick first: /nick NAME"))
            return
        name = ALIASES.get(name, name)
        handler = self._commands.get(name)
        if handler is None:
            self.send(events.Error("unknown-command", f"unknown command /{command.name}: try /help"))
        elif self.user is None and name not in UNREGISTERED:
            self.send(events.Error("not-registered", f"choose a nick before /{name}: /nick NAME"))
        else:
            pending = handler(command)
            if pending is not None:
                self._hold(pending)

    def _registered(self) -> User:
        assert self.user is not None
        return self.user

    def _register(self, nick: str) -> None:
        self.user = self.factory.domain.register(self, nick, self.clock.seconds())
        self._log.info("{peer} registered as {nick}", peer=self.peer, nick=nick)

    def _cmd_help(self, command: wire.Command) -> None:
        topic = command.args.lstrip("/").lower()
        if topic:
            name = ALIASES.get(topic, topic)
            if name not in COMMANDS:
                raise errors.BadArguments(f"no command /{topic}: /help lists them")
            usage, what = COMMANDS[name]
            self.send(events.Info(f"{usage}: {what}"))
            return
        width = max(len(usage) for usage, _ in COMMANDS.values())
        lines = ["Commands (a line not starting with / is said to your current room; // sends a literal /):"]
        lines += [f"  {usage:<{width}}  {what}" for usage, what in COMMANDS.values()]
        self.send(events.Info("\n".join(lines)))

    def _cmd_nick(self, command: wire.Command) -> None:
        words = command.split(2)
        if len(words) != 1:
            raise _usage("nick")
        if self.user is None:
            self._register(words[0])
        else:
            old = self.user.nick
            self.factory.domain.change_nick(self.user, words[0], self.clock.seconds())
            self._log.info("{old} is now {new}", old=old, new=self.user.nick)

    def _cmd_msg(self, command: wire.Command) -> None:
        words = command.split(2)
        if len(words) != 2:
            raise _usage("msg")
        self.factory.domain.private(self._registered(), words[0], words[1], self.clock.seconds())

    def _cmd_me(self, command: wire.Command) -> None:
        if not command.args:
            raise _usage("me")
        self.factory.domain.say(self._registered(), command.args, self.clock.seconds(), action=True)

    def _cmd_join(self, command: wire.Command) -> None:
        words = command.split(2)
        if len(words) != 1:
            raise _usage("join")
        self.factory.domain.join(self._registered(), words[0], self.clock.seconds())

    def _cmd_part(self, command: wire.Command) -> None:
        room, rest = _optional_room(command)
        self.factory.domain.part(self._registered(), room, rest, self.clock.seconds())

    def _cmd_rooms(self, command: wire.Command) -> None:
        self.factory.domain.list_rooms(self._registered())

    def _cmd_list(self, command: wire.Command) -> None:
        words = command.split(2)
        if len(words) > 1:
            raise _usage("list")
        self.factory.domain.list_users(self._registered(), words[0] if words else None, self.clock.seconds())

    def _cmd_whois(self, command: wire.Command) -> None:
        words = command.split(2)
        if len(words) != 1:
            raise _usage("whois")
        self.factory.domain.whois(self._registered(), words[0], self.clock.seconds())

    def _cmd_status(self, command: wire.Command) -> None:
        self.factory.domain.set_status(self._registered(), command.args)

    def _cmd_topic(self, command: wire.Command) -> None:
        room, text = _optional_room(command)
        self.factory.domain.topic(self._registered(), room, text or None)

    def _cmd_history(self, command: wire.Command) -> None:
        count: int | None = None
        room: str | None = None
        for word in command.split(3):
            if word.startswith("#") and room is None:
                room = word
            elif word.isdigit() and word.isascii() and count is None:
                count = int(word)
            else:
                raise _usage("history")
        if count is None:
            count = 20
        self.factory.domain.history(self._registered(), count, room)

    # Accounts (PROTOCOL.md sections 3.3 and 7)

    def _require_private_channel(self) -> None:
        """
        @raise errors.AuthNeedsTLS: a password would cross the network in
            clear text: plain TCP, not from this machine, and the operator
            did not allow it (C{--allow-plaintext-auth}).
        """
        if self.secure or self.settings.allow_plaintext_auth or is_local(self.transport.getPeer()):
            return
        raise errors.AuthNeedsTLS(
            "passwords are accepted only over TLS (or from this machine): connect with TLS or use /starttls"
        )

    def _cmd_register(self, command: wire.Command) -> Deferred[None]:
        words = command.split(2)
        if len(words) != 1:
            raise _usage("register")
        user = self._registered()
        domain = self.factory.domain
        if user.account is not None:
            raise errors.NickRegistered(f"you are logged in to the account {domain.accounts[user.account]} already")
        if user.nick.lower() in domain.accounts:
            raise errors.NickRegistered(f"{user.nick} is registered already")
        self._require_private_channel()
        nick = user.nick
        domain.reserve(nick)

        def created(_: None) -> None:
            self._log.info("{peer} registered the account {nick}", peer=self.peer, nick=nick)
            domain.account_created(nick, user if self.user is user else None)
            self.send(events.Info(f"Account {nick} created: from now on log in with /login {nick} PASSWORD"))

        def failed(failure: Failure) -> Failure:
            if not failure.check(errors.NickRegistered):  # someone else's account: keep it reserved
                domain.release(nick)
            return failure

        creating: Deferred[None] = self.factory.accounts.create(nick, words[0], self.clock.seconds())
        return creating.addCallbacks(created, failed)

    def _cmd_login(self, command: wire.Command) -> Deferred[None]:
        words = command.split(3)
        if len(words) != 2:
            raise _usage("login")
        self._require_private_channel()
        checking: Deferred[Account] = self.factory.accounts.login(words[0], words[1], self.host)
        return checking.addCallback(self._logged_in)

    def _logged_in(self, account: Account) -> None:
        if self._closing:
            return
        domain = self.factory.domain
        key = account.name.lower()
        holder = domain.session(key)
        if holder is not None and holder is not self.user:
            cast(ChatProtocol, holder.participant).kick("you logged in from another connection")
        if self.user is None:
            self.user = domain.register(self, account.name, self.clock.seconds(), account=key)
        else:
            domain.login(self.user, account.name, self.clock.seconds())
        self._log.info("{peer} logged in as {nick}", peer=self.peer, nick=account.name)
        domain.deliver_waiting(self.user)
        domain.announce_offers(self.user, self.clock.seconds())

    def _cmd_password(self, command: wire.Command) -> Deferred[None]:
        words = command.split(3)
        if len(words) != 2:
            raise _usage("password")
        user = self._registered()
        if user.account is None:
            raise errors.AuthFailed("you are not logged in: /register or /login first")
        self._require_private_channel()
        name = self.factory.domain.accounts.get(user.account, user.account)
        changed: Deferred[None] = self.factory.accounts.change_password(name, words[0], words[1], self.host)
        return changed.addCallback(lambda _: self.send(events.Info("Your password is changed")))

    # Files (PROTOCOL.md section 6)

    def _cmd_upload(self, command: wire.Command) -> Deferred[None] | None:
        target, name, size, expected = _upload_arguments(command.args)
        user = self._registered()
        domain = self.factory.domain
        to = domain.upload_target(user, target)
        limit = self.settings.max_file
        if size > limit:
            raise errors.FileTooLarge(f"a file is at most {limit} bytes on this server, not {size}")
        upload = self.factory.spool.begin(size, expected)
        incoming = _Incoming(domain.next_id(), to, display_name(name), upload)
        self.send(events.UploadReady(incoming.id, incoming.name, size))
        if not size:
            return self._finish_upload(incoming)
        self._upload = incoming
        self.setRawMode()
        return None

    def _finish_upload(self, incoming: _Incoming) -> Deferred[None]:
        """
        Store a complete upload, then offer it.
        """
        user = self._registered()
        upload = incoming.upload

        def offer(sha256: str) -> None:
            expires = utc(self.clock.seconds() + self.settings.file_ttl)
            offer = events.FileOffer(incoming.id, user.nick, incoming.to, incoming.name, upload.size, sha256, expires)
            self.factory.domain.offer(user, offer)
            self._log.info(
                "{nick} offered {name!r} ({size} bytes, id {id}) to {to}",
                nick=user.nick, name=incoming.name, size=upload.size, id=incoming.id, to=incoming.to,
            )

        storing: Deferred[str] = self.factory.spool.commit(upload)
        return storing.addCallback(offer)

    def _cmd_download(self, command: wire.Command) -> None:
        words = command.split(3)
        if not 1 <= len(words) <= 2 or not all(_is_count(word) for word in words):
            raise _usage("download")
        user = self._registered()
        if self.renderer is render_text:
            raise errors.BadArguments(
                "/download sends the file's raw bytes, which a terminal cannot show: "
                "fetch files with a chat client (chat-client), or switch to /format json"
            )
        offer = self.factory.domain.find_offer(user, int(words[0]), self.clock.seconds())
        offset = int(words[1]) if len(words) == 2 else 0
        if offset > offer.size:
            raise errors.BadArguments(f"OFFSET is 0 to {offer.size}, the file's size")
        if self._downloads >= MAX_DOWNLOADS:
            raise errors.Busy(f"at most {MAX_DOWNLOADS} downloads at a time: wait for one to finish")
        source = self.factory.spool.read(offer.sha256)
        source.seek(offset)
        header = self.renderer(events.FileHeader(offer.id, offer.name, offer.size, offset, offer.sha256))
        self._downloads += 1
        self.factory.domain.then(lambda: self._stream(header, source, offer, offset))

    def _stream(self, header: bytes, source: Any, offer: events.FileOffer, offset: int) -> None:
        def sent(result: object) -> None:
            self._downloads -= 1
            outcome = "broken off" if isinstance(result, Failure) else "sent"
            self._log.info(
                "download {id} to {peer} {outcome} ({count} bytes from {offset})",
                id=offer.id, peer=self.peer, outcome=outcome, count=offer.size - offset, offset=offset,
            )

        self.outbox.stream(header, source).addBoth(sent)

    def _cmd_files(self, command: wire.Command) -> None:
        self.factory.domain.list_offers(self._registered(), self.clock.seconds())

    def _cmd_format(self, command: wire.Command) -> None:
        renderer = RENDERERS.get(command.args.lower())
        if renderer is None:
            raise _usage("format")
        self.renderer = renderer
        self.send(self.factory.welcome(registered=self.user is not None))

    def _cmd_starttls(self, command: wire.Command) -> Deferred[None]:
        """
        Upgrade to TLS (PROTOCOL.md section 7): C{info} in clear text, then
        the handshake. Whatever the client sent after the command before
        the handshake is dropped (STARTTLS command injection, RFC 3207
        section 6), and reading waits until TLS is in place.
        """
        if self.secure:
            raise errors.BadArguments("this connection is encrypted already")
        options = self.factory.tls
        if options is None:
            raise errors.TLSUnavailable("this server has no TLS certificate configured")
        self.send(events.Info("Starting TLS: begin the handshake"))
        self._drop_input = True
        self._buffer = b""
        self._unread = b""
        started: Deferred[None] = Deferred()

        def start() -> None:
            if not self._closing:
                self.outbox.flush()
                self.transport.startTLS(options)  # type: ignore[attr-defined]
                self.secure = True
                self._log.info("{peer} started TLS", peer=self.peer)
            started.callback(None)

        self.factory.domain.then(start)
        return started

    def _cmd_ping(self, command: wire.Command) -> None:
        self.send(events.Pong(command.args))

    def _cmd_quit(self, command: wire.Command) -> None:
        self.close(command.args or "goodbye")


def _optional_room(command: wire.Command) -> tuple[str | None, str]:
    """
    Split C{[#ROOM] [TEXT]} arguments into the room (or C{None}) and the text.
    """
    first, _, rest = command.args.partition(" ")
    if first.startswith("#"):
        return first, rest.strip()
    return None, command.args


class ChatFactory(ServerFactory):
    """
    Builds a L{ChatProtocol} per connection over one L{ChatDomain}; counts
    connections per address and says goodbye to all of them on shutdown.

    @ivar clock: the reactor's clock, for flood buckets and times.
    """

    _log = Logger()

    def __init__(
        self,
        settings: Settings,
        clock: IReactorTime,
        store: IStore | None = None,
        accounts: Accounts | None = None,
        spool: Spool | None = None,
        tls: ServerTLS | None = None,
    ) -> None:
        """
        @param store: where history and accounts live; in memory if C{None}.
        @param accounts: account requests over C{store}; by default with an
            argon2id L{PasswordHasher} on threads, so C{clock} must then be
            a reactor.
        @param spool: where offered files live; by default a temporary
            directory, made on first use.
        @param tls: the server side of TLS for C{/starttls}; without it
            C{/starttls} gets C{tls-unavailable}.
        """
        self.tls = tls
        self.settings = settings
        self.clock = clock
        self._spool = spool
        self.store = store or MemoryStore()
        self.domain = ChatDomain(Broadcaster(), self.store, settings.history_on_join)
        self.accounts = accounts or Accounts(self.store, PasswordHasher(cast(Any, clock)), clock)
        self.batch = Batch(clock)
        """Lines written during this reactor turn, flushed at the end of each entry point."""
        self.connections: set[ChatProtocol] = set()
        self._per_host: dict[str, int] = {}
        self._drained: Deferred[None] | None = None

    @property
    def spool(self) -> Spool:
        """
        The offered files' L{Spool}.
        """
        if self._spool is None:
            self._spool = Spool.in_temporary_directory(self.settings.spool_quota)
        return self._spool

    @override
    def buildProtocol(self, addr: IAddress | None) -> ChatProtocol:
        return ChatProtocol(self)

    def welcome(self, registered: bool) -> events.Welcome:
        """
        The C{welcome} event for this server.
        """
        return events.Welcome(
            self.settings.server_name,
            chat.__version__,
            self.settings.motd,
            events.Limits(self.settings.max_line, NICK_MAX, self.settings.max_file),
            registered,
        )

    def connection_made(self, protocol: ChatProtocol) -> bool:
        """
        Count a new connection.

        @return: C{False} when its address is over the per-address limit.
        """
        host = protocol.host
        count = self._per_host.get(host, 0) + 1
        self._per_host[host] = count
        self.connections.add(protocol)
        return count <= self.settings.max_per_ip

    def connection_lost(self, protocol: ChatProtocol) -> None:
        """
        Forget a closed connection.
        """
        host = protocol.host
        count = self._per_host.pop(host, 1) - 1
        if count:
            self._per_host[host] = count
        self.connections.discard(protocol)
        if not self.connections and self._drained is not None:
            drained, self._drained = self._drained, None
            drained.callback(None)

    def shutdown(self, reactor: IReactorTime, reason: str = "server shutting down") -> Deferred[None]:
        """
        Send C{bye} to every connection and close it.

        @return: a L{Deferred} that fires once all are closed; connections
            still open after C{settings.shutdown_timeout} seconds are aborted.
        """
        if not self.connections:
            return succeed(None)
        self._log.info("saying goodbye to {count} connections", count=len(self.connections))
        drained: Deferred[None] = Deferred()
        self._drained = drained
        for protocol in list(self.connections):
            protocol.close(reason)

        def abort(result: object, timeout: float) -> None:
            self._drained = None
            for protocol in list(self.connections):
                protocol.transport.abortConnection()

        drained.addTimeout(self.settings.shutdown_timeout, reactor, onTimeoutCancel=abort)
        return drained

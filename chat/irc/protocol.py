# -*- test-case-name: tests.test_irc -*-
"""
The IRC front end (PROTOCOL.md section 14, docs/irc.md): L{IRCProtocol},
one per connection of an C{--irc} listener, a participant of the same
L{ChatServer} as the line and web front ends; and L{IRCFactory}, which
builds them. It frames and limits the input like the line front end
(L{LimitedLineReceiver}: flood control as fake lag, the per-address limit,
the registration timeout), parses IRC messages with Twisted's
L{twisted.words.protocols.irc.parsemsg}, maps IRC commands onto the
requests of L{chat.commands}, and renders what it is delivered: the events
that are the same for every recipient once per event
(L{chat.irc.render}), the replies to one user as numerics
(L{chat.irc.replies}).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from weakref import WeakSet

from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    ITCPTransport,
)
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols import irc
from typing_extensions import override
from zope.interface import implementer

from chat import commands, errors, events, wire
from chat.accounts import is_local
from chat.domain import NICK_MAX
from chat.framing import LimitedLineReceiver
from chat.interfaces import IParticipant, Outgoing, Renderer
from chat.irc import numerics as n
from chat.irc.history import Query
from chat.irc.render import SHAPING, SHARED, line, renderer
from chat.irc.replies import LINE_MAX, NO_CONTEXT, Context
from chat.irc.sasl import MECHANISMS, PlainResponse, SASLFailed
from chat.irc.user_commands import UserCommands
from chat.outbox import Batch, Outbox
from chat.participant import accept_tcp
from chat.server import ChatServer

TAGS_MAX = 4096
"""
The longest tag section (C{@...} and its space) a client may put before a
message, in bytes: IRCv3 message-tags lets clients send 4094 bytes of tags.
Client tags are accepted (C{message-tags}) and ignored: none is passed on.
"""

CAPABILITIES = (
    "account-tag", "away-notify", "batch", "cap-notify", "draft/chathistory", "echo-message", "extended-join",
    "message-tags", "multi-prefix", "sasl", "server-time", "userhost-in-names",
)
"""
The IRCv3 capabilities offered by C{CAP LS} and acknowledged by C{CAP REQ}
(sorted): C{multi-prefix} is trivially true (C{@} is the only prefix),
C{cap-notify} is implied by C{CAP LS 302} (the list never changes),
C{userhost-in-names} gives C{nick!user@chat} in 353, C{sasl} offers
PLAIN (L{chat.irc.sasl}; C{sasl=PLAIN} in C{CAP LS 302}),
C{draft/chathistory} the C{CHATHISTORY} command (L{chat.irc.history}).
"""

@implementer(IParticipant)
class IRCProtocol(LimitedLineReceiver, UserCommands):
    """
    One IRC connection: a participant of the L{ChatServer}.

    Registration: C{NICK} and C{USER} (and C{CAP END} once C{CAP LS} or
    C{CAP REQ} began a negotiation) register the nick with
    C{commands.Nick(join=False)}, or with C{PASS} log in with
    C{commands.Login}: IRC users are not joined to C{#lobby}. The welcome
    burst (001 to 005 and the MOTD) follows the C{registered} event.

    Replies: each request is run with its L{Context} (the IRC command and
    its target) at the end of L{_contexts} until every event it published
    is delivered (L{ChatServer.then}), so an C{error} or a C{users} event
    is rendered as the numerics of the command that asked for it.

    @ivar secure: whether the connection is encrypted (TLS).
    @ivar peer: the client's address, the key of the per-address limits.
    @ivar caps: the IRCv3 capabilities enabled (names of L{CAPABILITIES}).
    @ivar username: C{USER}'s user name, C{''} before it.
    @ivar realname: C{USER}'s real name, C{''} before it.
    """

    delimiter = b"\n"
    transport: ITCPTransport
    _log = Logger()

    front_end = "irc"
    secure = False
    _quit_reason = "connection lost"
    _abort_call: IDelayedCall | None = None
    _echo = False
    """Whether C{echo-message} is on: the user's own messages are sent back."""

    # Per connection, set when they change: class defaults keep an idle
    # connection's instance dictionary small (bench/irc.py's memory figure).
    caps: frozenset[str] = frozenset()
    username = ""
    realname = ""
    _wanted_nick = ""
    _user_given = False
    _password = ""
    _negotiating = False
    _registering = False
    _sasl: PlainResponse | None = None
    _queries: deque[Query] | None = None
    """The C{CHATHISTORY} queries waiting for their history, oldest first (made on the first)."""
    _batches = 0
    _welcome_held = ""

    def __init__(self, factory: IRCFactory) -> None:
        self.factory = factory
        self.server = server = factory.server
        super().__init__(server.settings, server.clock)
        self.outbox: Outbox
        self.peer = ""
        self._registration_call: IDelayedCall | None = None
        self._contexts: deque[Context] = deque()

    # Limits: IRC's, not the line front end's --max-line

    @property
    @override
    def max_line(self) -> int:
        """The longest line taken, in bytes, without its line end: a tag section and an IRC message."""
        return TAGS_MAX + LINE_MAX

    @property
    def MAX_LENGTH(self) -> int:  # type: ignore[override]  # noqa: N802 - LineReceiver's name
        """L{LineReceiver}'s limit: L{max_line} and room for a CR before the LF."""
        return self.max_line + 1

    # The participant (chat.interfaces.IParticipant)

    def deliver(self, outgoing: Outgoing) -> None:
        """
        Called by the bus with each event: those in L{SHARED} are queued
        as rendered once for every IRC recipient, the others rendered
        here for this user (numerics, notices). Must not raise.
        """
        event = outgoing.event
        if type(event) is events.Message:  # the fan-out path first: shared, never a reply
            user = self.session.user  # not the nick property: this runs once per recipient
            if self._echo or user is None or event.sender != user.nick:
                self.outbox.deliver(outgoing)
            return
        if event is None:
            self.outbox.deliver(outgoing)
            return
        if isinstance(event, SHARED) and not self._personal(event):
            self.outbox.deliver(outgoing)
            return
        if isinstance(event, events.StatusChanged) and event.nick != self.nick:
            if "away-notify" in self.caps:
                self.outbox.deliver(outgoing)
            return
        data = self._render(event)
        if data:
            self.outbox.write(data)

    # Connection lifecycle

    def _stop_reading(self) -> None:
        self.pauseProducing()

    @override
    def connectionMade(self) -> None:
        self.peer, secure = accept_tcp(self.transport)
        if secure:
            self.secure = True  # a class default otherwise: no instance dictionary for plain connections
        self.outbox = Outbox(
            self.transport, self.factory.batch, self.settings.max_output, self._slow_reader,
            self.factory.renderer, self.server.output_budget,
        )
        self.session = self.server.connect(self, is_local(self.transport.getPeer()))
        if not self.session.allowed:
            self.close("too many connections from your address")
            return
        self._expect_registration()

    @override
    def connectionLost(self, reason: Failure | None = None) -> None:
        self._closing = self.session.closing = True
        for call in (self._throttle, self._abort_call, self._registration_call):
            if call is not None and call.active():
                call.cancel()
        self.server.disconnect(self.session, self._quit_reason)
        self.factory.batch.flush()

    def _close_now(self, reason: str) -> None:
        self.outbox.finish(line("", "ERROR", f"Closing Link: {reason}"))
        self.outbox.flush()
        self.transport.resumeProducing()  # type: ignore[attr-defined]
        self.transport.loseConnection()
        self._abort_call = self.clock.callLater(self.settings.shutdown_timeout, self.transport.abortConnection)

    def _slow_reader(self) -> None:
        self._log.warn(
            "disconnecting IRC client {peer}: it does not read its output ({why})",
            peer=self.peer, why=self.outbox.overflow_reason,
        )
        self._quit_reason = "too slow reading"
        self._closing = self.session.closing = True
        self.transport.write(line("", "ERROR", "Closing Link: you are not reading fast enough"))
        self.transport.abortConnection()

    @override
    def refuse(self, error: errors.ChatError) -> None:
        """Input refused by the framing: an over-long line (417), bad UTF-8 or a flood (a C{NOTICE})."""
        self.outbox.write(self._error(events.Error.of(error), NO_CONTEXT))

    @override
    def reply_raw(self, data: bytes) -> None:
        pass  # no telnet negotiation on IRC: TelnetFilter only removes IAC sequences

    @override
    def flush_output(self) -> None:
        self.factory.batch.flush()

    @override
    def command_received(self, command: wire.Command) -> None:
        raise AssertionError("IRCProtocol reads IRC messages in lineReceived")

    # Input: lines to IRC messages

    @override
    def lineReceived(self, line: bytes) -> None:
        """
        Called by L{LineReceiver} for each complete line, without its LF:
        the flood limit, then the tag section is set aside (no capability
        that uses it is offered), the message limited to L{LINE_MAX} bytes
        (417 otherwise), decoded and run.
        """
        if self._throttled(line):
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.startswith(b"@"):
            tags, _, line = line.partition(b" ")
            if len(tags) + 1 > TAGS_MAX:
                self.refuse(errors.LineTooLong("Input line was too long"))
                return
        if len(line) > LINE_MAX:
            self.refuse(errors.LineTooLong("Input line was too long"))
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            verb = line.split(b" ", 1)[0]
            shown = verb.decode("ascii").upper() if verb.isalnum() and verb.isascii() else "*"
            self.outbox.write(self._fail(shown, "INVALID_UTF8", "Message rejected: lines must be UTF-8"))
            return
        if not text.strip():
            return
        try:
            _, verb, params = irc.parsemsg(text.lstrip(" "))
        except (irc.IRCBadMessage, ValueError, IndexError):
            return
        self._run_message(verb.upper(), params)

    def _run_message(self, verb: str, params: list[str]) -> None:
        registered = self.session.user is not None
        handler = _BEFORE.get(verb)
        if handler is None and registered:
            handler = _AFTER.get(verb)
        if handler is None:
            if not registered and verb in _AFTER:
                self.outbox.write(self._reply(n.ERR_NOTREGISTERED, "You have not registered"))
            else:
                self.outbox.write(self._reply(n.ERR_UNKNOWNCOMMAND, verb, "Unknown command"))
            return
        if len(params) < handler.needs:
            self.outbox.write(self._reply(n.ERR_NEEDMOREPARAMS, verb, "Not enough parameters"))
            return
        if verb not in ("PRIVMSG", "NOTICE"):  # they keep CTCP's \x01 until it is read
            params = [wire.clean(p) for p in params]
        handler.run(self, params)

    def _execute(self, request: commands.Request, context: Context) -> None:
        """
        Hand C{request} to the server with C{context} current for the
        replies it publishes; reading waits for a request that completes
        later (a password check).
        """
        contexts = self._contexts
        contexts.append(context)
        pending = self.server.execute(self.session, request)
        if pending is None:
            self._registered()
            self.server.then(self._finished)
            return

        def done(_: object) -> None:
            self._registered()
            self.server.then(self._finished)

        pending.addCallback(done)
        self.hold(pending)

    def _finished(self) -> None:
        """A request's events are all delivered: what was held for its end is sent, and its context ends."""
        if self._names_held:
            self.outbox.write(self._names_held)
            self._names_held = b""
        self._contexts.popleft()

    # Registration

    def _try_register(self) -> None:
        if self._welcome_held and self._user_given and not self._negotiating:
            self.outbox.write(self._welcome(self._welcome_held))  # logged in by SASL
            self._welcome_held = ""
            return
        if not self._wanted_nick or not self._user_given or self._negotiating or self._closing:
            return
        if self.session.user is not None:
            return
        if self._password:
            nick, password = self._wanted_nick, self._password
            if ":" in password:
                nick, _, password = password.partition(":")
            request: commands.Request = commands.Login(nick, password, join=False)
        else:
            nick = self._wanted_nick
            request = commands.Nick(nick, join=False)
        self._execute(request, ("NICK", nick))

    def irc_NICK(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """
        C{NICK new}: the nick to register, or a nick change (after SASL,
        the account's nick is kept until registration ends).
        """
        if self.session.user is None or self._welcome_held:
            self._wanted_nick = params[0]
            self._try_register()
        else:
            self._execute(commands.Nick(params[0]), ("NICK", params[0]))

    def irc_USER(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """
        C{USER user 0 * :realname}: kept for WHOIS (311) and WHO (352); an
        empty user or real name gets 461.
        """
        if (self.session.user is not None and not self._welcome_held) or self._user_given:
            self.outbox.write(self._reply(n.ERR_ALREADYREGISTERED, "You may not reregister"))
            return
        if not params[0] or not params[3]:
            self.outbox.write(self._reply(n.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters"))
            return
        self.username = params[0][:NICK_MAX]
        self.realname = params[3][:200]
        self._user_given = True
        self._try_register()

    def irc_PASS(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{PASS password} or C{PASS nick:password}: log in when registering."""
        if self.session.user is not None:
            self.outbox.write(self._reply(n.ERR_ALREADYREGISTERED, "You may not reregister"))
            return
        self._password = params[0]

    def irc_CAP(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """
        C{CAP LS [302]} (L{CAPABILITIES}; 302 also enables C{cap-notify}),
        C{CAP LIST} (those enabled), C{CAP REQ :a -b} (all acknowledged, or
        the whole request refused with C{NAK} if one is unknown), C{CAP END}.
        """
        sub = params[0].upper()
        server = self.settings.server_name
        if sub == "LS":
            self._negotiating = self.session.user is None
            offered: tuple[str, ...] = CAPABILITIES
            if len(params) > 1 and params[1].isdigit() and int(params[1]) >= 302:
                self._set_caps(self.caps | {"cap-notify"})
                offered = tuple(f"sasl={','.join(MECHANISMS)}" if cap == "sasl" else cap for cap in offered)
            self.outbox.write(line(server, "CAP", self._me, "LS", " ".join(offered), text=True))
        elif sub == "LIST":
            self.outbox.write(line(server, "CAP", self._me, "LIST", " ".join(sorted(self.caps)), text=True))
        elif sub == "REQ":
            self._negotiating = self.session.user is None
            asked = params[1] if len(params) > 1 else ""
            wanted = set(self.caps)
            for name in asked.split():
                if name.lstrip("-") not in CAPABILITIES:
                    self.outbox.write(line(server, "CAP", self._me, "NAK", asked, text=True))
                    return
                if name.startswith("-"):
                    wanted.discard(name[1:])
                else:
                    wanted.add(name)
            self._set_caps(frozenset(wanted))
            self.outbox.write(line(server, "CAP", self._me, "ACK", asked, text=True))
        elif sub == "END":
            self._negotiating = False
            self._try_register()
        else:
            self.outbox.write(self._reply("410", sub, "Invalid CAP command"))

    def irc_AUTHENTICATE(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """
        IRCv3 SASL (C{sasl} 3.1): C{AUTHENTICATE PLAIN}, answered
        C{AUTHENTICATE +}; then the response in base64 chunks, checked as
        C{/login} (the plaintext rule of PROTOCOL.md section 7 holds): 900
        and 903, or 904. C{AUTHENTICATE *} aborts (906); another mechanism
        gets 908 and 904; after registration, 907. The welcome burst waits
        for C{CAP END}.
        """
        if self.session.user is not None:
            self.outbox.write(self._reply(n.ERR_SASLALREADY, "You have already authenticated using SASL"))
            return
        if "sasl" not in self.caps:
            self.outbox.write(self._reply(n.ERR_SASLFAIL, "SASL authentication failed: CAP REQ sasl first"))
            return
        argument = params[0]
        if argument == "*":
            self._sasl = None
            self.outbox.write(self._reply(n.ERR_SASLABORTED, "SASL authentication aborted"))
            return
        if self._sasl is None:
            if argument.upper() not in MECHANISMS:
                self.outbox.write(
                    self._reply(n.RPL_SASLMECHS, ",".join(MECHANISMS), "are available SASL mechanisms")
                    + self._reply(n.ERR_SASLFAIL, "SASL authentication failed")
                )
                return
            self._sasl = PlainResponse()
            self.outbox.write(line("", "AUTHENTICATE", "+"))
            return
        try:
            credentials = self._sasl.feed(argument)
        except SASLFailed as failed:
            self._sasl = None
            self.outbox.write(self._reply(n.ERR_SASLTOOLONG if failed.too_long else n.ERR_SASLFAIL, str(failed)))
            return
        if credentials is not None:
            self._sasl = None
            account, password = credentials
            self._execute(commands.Login(account, password, join=False), ("AUTHENTICATE", account))

    def _set_caps(self, caps: frozenset[str] | set[str]) -> None:
        """Enable C{caps}, and render the shared events with the renderer of their L{SHAPING} part."""
        self.caps = frozenset(caps)
        self._echo = "echo-message" in self.caps
        self.outbox.renderer = self.factory.renderer_for(self.caps)

    def irc_PING(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{PING token}: C{PONG server token}."""
        server = self.settings.server_name
        self.outbox.write(line(server, "PONG", server, params[0]))

    def irc_PONG(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{PONG}: nothing to do (the daemon sends no PING)."""

    def irc_QUIT(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{QUIT [:reason]}: others see the user quit with C{reason}."""
        self.close(params[0] if params and params[0] else "quit")


class _Verb:
    """One IRC command: the method running it and the parameters it needs."""

    def __init__(self, run: Callable[[IRCProtocol, list[str]], None], needs: int = 0) -> None:
        self.run = run
        self.needs = needs


_BEFORE: dict[str, _Verb] = {
    "CAP": _Verb(IRCProtocol.irc_CAP, 1),
    "NICK": _Verb(IRCProtocol.irc_NICK, 1),
    "USER": _Verb(IRCProtocol.irc_USER, 4),
    "PASS": _Verb(IRCProtocol.irc_PASS, 1),
    "PING": _Verb(IRCProtocol.irc_PING, 1),
    "PONG": _Verb(IRCProtocol.irc_PONG),
    "AUTHENTICATE": _Verb(IRCProtocol.irc_AUTHENTICATE, 1),
    "QUIT": _Verb(IRCProtocol.irc_QUIT),
}
"""The commands taken before registration (and after)."""

_AFTER: dict[str, _Verb] = {
    "JOIN": _Verb(IRCProtocol.irc_JOIN, 1),
    "PART": _Verb(IRCProtocol.irc_PART, 1),
    "PRIVMSG": _Verb(IRCProtocol.irc_PRIVMSG),
    "NOTICE": _Verb(IRCProtocol.irc_NOTICE),
    "KICK": _Verb(IRCProtocol.irc_KICK, 2),
    "INVITE": _Verb(IRCProtocol.irc_INVITE, 2),
    "TOPIC": _Verb(IRCProtocol.irc_TOPIC, 1),
    "NAMES": _Verb(IRCProtocol.irc_NAMES),
    "WHO": _Verb(IRCProtocol.irc_WHO, 1),
    "WHOIS": _Verb(IRCProtocol.irc_WHOIS, 1),
    "USERHOST": _Verb(IRCProtocol.irc_USERHOST, 1),
    "ISON": _Verb(IRCProtocol.irc_ISON, 1),
    "LIST": _Verb(IRCProtocol.irc_LIST),
    "AWAY": _Verb(IRCProtocol.irc_AWAY),
    "MOTD": _Verb(IRCProtocol.irc_MOTD),
    "TIME": _Verb(IRCProtocol.irc_TIME),
    "OPER": _Verb(IRCProtocol.irc_OPER),
    "CHATHISTORY": _Verb(IRCProtocol.irc_CHATHISTORY),
    "MODE": _Verb(IRCProtocol.irc_MODE, 1),
}
"""The commands of a registered user; before registration they get 451."""


class IRCFactory(ServerFactory):
    """
    Builds an L{IRCProtocol} per connection of the C{--irc} listeners.

    @ivar server: the chat they are participants of.
    @ivar batch: the lines written during one reactor turn, flushed at the
        end of each entry point of the protocols.
    @ivar renderer: the IRC renderer the participants without
        capabilities share (L{chat.irc.render.renderer}), so each event is
        rendered once; L{renderer_for} gives those of the others.
    """

    noisy = False

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.batch = Batch(server.clock)
        self.protocols: WeakSet[IRCProtocol] = WeakSet()
        self._renderers: dict[frozenset[str], Renderer] = {}
        self.renderer = self.renderer_for(frozenset())

    def renderer_for(self, caps: frozenset[str]) -> Renderer:
        """
        The renderer shared by the participants whose capabilities of
        L{SHAPING} are those of C{caps}: each event is rendered at most once
        per such set (at most 2**5 of them).
        """
        key = caps & SHAPING
        found = self._renderers.get(key)
        if found is None:
            realname = self.realname
            found = self._renderers[key] = renderer(
                self.server.settings.server_name, key, self.server.clock.seconds, realname
            )
        return found

    def realname(self, nick: str) -> str:
        """The real name of C{nick} (L{names}), for C{extended-join}."""
        return self.names(nick)[1]

    @override
    def buildProtocol(self, addr: IAddress | None) -> IRCProtocol:
        protocol = IRCProtocol(self)
        self.protocols.add(protocol)
        return protocol

    def names(self, nick: str) -> tuple[str, str]:
        """
        The user and real names (C{USER}) of the IRC user with C{nick}, for
        WHOIS and WHO; C{(nick, nick)} for a user of another front end.
        """
        key = nick.lower()
        for protocol in self.protocols:
            if protocol.nick.lower() == key and protocol.username:
                return protocol.username, protocol.realname
        return nick, nick

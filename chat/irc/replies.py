# -*- test-case-name: tests.test_irc -*-
"""
What an IRC user alone is shown (PROTOCOL.md section 14, docs/irc.md): the
replies to its requests as numerics, the registration burst, private
messages and notices, rendered for that user. L{Replies} is the part of
L{chat.irc.protocol.IRCProtocol} that does it; the lines shared by every
recipient are L{chat.irc.render}'s.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from twisted.internet.interfaces import ITCPTransport

import chat
from chat import errors, events
from chat.domain import NICK_MAX
from chat.irc import numerics as n
from chat.irc.history import LIMIT, Query
from chat.irc.render import USER_HOST, line, message_text, render, source, tagged, tags
from chat.participant import SessionParticipant

if TYPE_CHECKING:
    from chat.irc.protocol import IRCFactory

LINE_MAX = 510
"""
The longest IRC message taken, in bytes, without its CR LF and without a
tag section: RFC 1459's 512 bytes, line end included.
"""

CHANNEL_MAX = 33
"""The longest channel name, C{#} included (PROTOCOL.md: C{#} and 1 to 32 characters)."""

Context = tuple[str, str]
"""The IRC command a request came from and its target (a nick or a channel), for the numerics of its replies."""

NO_CONTEXT: Context = ("", "")



class Replies(SessionParticipant):
    """
    The replies to one IRC user, a mixin of L{chat.irc.protocol.IRCProtocol}.
    """

    caps: frozenset[str]
    factory: IRCFactory
    transport: ITCPTransport
    _contexts: deque[Context]
    _welcome_held: str
    _names_held = b""
    """The names (353, 366) of a channel joined, held until its topic (332) or the end of the JOIN."""
    token = ""
    """The session's bearer token (C{registered}), in the links to files; C{''} without a web listener."""
    _queries: deque[Query] | None
    _batches: int

    def _personal(self, event: events.Event) -> bool:
        """
        Whether a shared event is here a reply to this user's own request:
        the topic asked for or shown on joining, the modes asked for.
        """
        verb, target = self._context
        if isinstance(event, events.Topic):
            return verb in ("JOIN", "TOPIC?") and target.lower() == event.room.lower()
        if isinstance(event, events.RoomSettings):
            return verb == "MODE?" and target.lower() == event.room.lower()
        return False

    @property
    def _context(self) -> Context:
        return self._contexts[0] if self._contexts else NO_CONTEXT

    @property
    def _me(self) -> str:
        """The client's nick in numerics: C{*} before registration."""
        return self.nick or "*"

    def _reply(self, numeric: str, *params: str, me: str = "", text: bool = False) -> bytes:
        """A numeric to this client: C{:server NUMERIC nick params...}; C{me} the nick when it is new."""
        return line(self.settings.server_name, numeric, me or self._me, *params, text=text)

    def _render(self, event: events.Event) -> bytes:
        """
        A reply to this user, or an event shown to this user alone, as
        IRC lines; C{b''} for what IRC does not show.
        """
        verb, target = self._context
        match event:
            case events.Registered() if verb == "AUTHENTICATE":
                self._welcome_held = event.nick  # sent at CAP END (IRCProtocol._try_register)
                self.token = event.token
                return self._reply(
                    n.RPL_LOGGEDIN, source(event.nick), event.nick, f"You are now logged in as {event.nick}",
                    me=event.nick,
                ) + self._reply(n.RPL_SASLSUCCESS, "SASL authentication successful", me=event.nick)
            case events.Registered():
                self.token = event.token
                return self._welcome(event.nick)
            case events.Error():
                return self._error(event, self._context)
            case events.Private():
                return self._private(event)
            case events.History() | events.PrivateHistory() if verb == "CHATHISTORY" and self._queries:
                return self._history(self._queries.popleft(), event.messages)
            case events.Users() if verb == "JOIN":
                self._names_held = self._users(event, False)  # after the topic (Modern IRC: JOIN, 332, 353, 366)
                return b""
            case events.Users() if verb in ("USERHOST", "ISON"):
                asked = {nick.lower() for nick in target.split()}
                found = [u for u in event.users if u.nick.lower() in asked]
                if verb == "ISON":
                    return self._reply(n.RPL_ISON, " ".join(u.nick for u in found), text=True)
                user_of = self.factory.names
                hosts = (f"{u.nick}={'-' if u.status else '+'}{user_of(u.nick)[0]}@{USER_HOST}" for u in found)
                return self._reply(n.RPL_USERHOST, " ".join(hosts), text=True)
            case events.Users():
                return self._users(event, verb == "WHO", target)
            case events.Topic() if verb == "JOIN":
                names, self._names_held = self._names_held, b""
                return self._reply(n.RPL_TOPIC, event.room, event.text) + names
            case events.Topic():
                if not event.text:
                    return self._reply(n.RPL_NOTOPIC, event.room, "No topic is set")
                return self._reply(n.RPL_TOPIC, event.room, event.text)
            case events.RoomSettings():
                return self._reply(n.RPL_CHANNELMODEIS, event.room, _modes_set(event))
            case events.Rooms():
                return (
                    self._reply(n.RPL_LISTSTART, "Channel", "Users  Name")
                    + b"".join(
                        self._reply(n.RPL_LIST, r.room, str(r.count), r.topic) for r in event.rooms
                        if r.count and (not target or r.room.lower() in target.lower().split(","))
                    )
                    + self._reply(n.RPL_LISTEND, "End of /LIST")
                )
            case events.Whois():
                return self._whois(event)
            case events.StatusChanged():
                if event.text:
                    return self._reply(n.RPL_NOWAWAY, "You have been marked as being away")
                return self._reply(n.RPL_UNAWAY, "You are no longer marked as being away")
            case events.FileOffer():
                return self._offer(event)
            case events.Info() if verb == "BANS":
                notices = b"".join(self._notice(text.strip()) for text in event.text.splitlines() if text.strip())
                return notices + self._reply(n.RPL_ENDOFBANLIST, target, "End of channel ban list")
            case events.Info() if verb == "INVITE":
                return self._reply(n.RPL_INVITING, *target.split(" ", 1))
            case events.Info() if (invited := _INVITED.fullmatch(event.text)) is not None:
                return line(source(invited[1]), "INVITE", self._me, invited[2])
            case events.Info():
                return b"".join(self._notice(text) for text in event.text.splitlines() if text)
            case events.Bye():
                return line("", "ERROR", f"Closing Link: {event.reason}")
        return b""

    def _offer(self, offer: events.FileOffer) -> bytes:
        """
        A file offer as a C{NOTICE}: with the HTTP link of the web listener
        when there is one (L{ChatServer.file_link}), else the way clients of
        this project fetch it.
        """
        about = f"{offer.sender} offers a file to {offer.to}: {offer.name} ({offer.size} bytes), id {offer.id}"
        link = self.server.file_link(offer.id, self.token, self.transport.getHost().host)
        if link:
            return self._notice(f"{about}; download it from {link}")
        return self._notice(
            f"{about}; fetch it with a chat client (chat-client or chat-tk: /get {offer.id}) "
            f"on the line listener (/download {offer.id} after /format json)"
        )

    def _fail(self, command: str, code: str, *context: str) -> bytes:
        """
        An IRCv3 standard reply C{FAIL command code context... :text}
        (the last of C{context} is the text).
        """
        return line(self.settings.server_name, "FAIL", command, code, *context, text=True)

    def _history(self, query: Query, messages: Sequence[events.Message | events.Private]) -> bytes:
        """
        The messages a C{CHATHISTORY} asked for (L{Query.cut}), in a
        C{chathistory} batch with C{batch}, each with the tags of this
        user's capabilities (C{msgid}, C{time}, C{account}).
        """
        server = self.settings.server_name
        reference = ""
        out = b""
        if "batch" in self.caps:
            self._batches += 1
            reference = f"history{self._batches}"
            out = line(server, "BATCH", f"+{reference}", "chathistory", query.target)
        for message in query.cut(messages):
            out += tagged(_history_line(message, server), tags(message, self.caps, message.ts, reference))
        if reference:
            out += line(server, "BATCH", f"-{reference}")
        return out

    def _notice(self, text: str) -> bytes:
        return line(self.settings.server_name, "NOTICE", self._me, text, text=True)

    def _welcome(self, me: str) -> bytes:
        """The registration burst to C{me}: 001 to 005, then the MOTD (375, 372, 376) or 422."""
        server = self.settings.server_name
        version = f"chat-{chat.__version__}"
        created = datetime.fromtimestamp(self.server.started, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        supported = (
            "AWAYLEN=200", "CASEMAPPING=ascii", "CHANMODES=b,,,imnt", f"CHANNELLEN={CHANNEL_MAX}", "CHANTYPES=#",
            f"CHATHISTORY={LIMIT}", "KICKLEN=200", f"LINELEN={LINE_MAX + 2}", "MSGREFTYPES=msgid,timestamp",
            f"NETWORK={server}", f"NICKLEN={NICK_MAX}", "PREFIX=(o)@", "TOPICLEN=390", "UTF8ONLY",
        )
        return (
            self._reply(n.RPL_WELCOME, f"Welcome to the {server} IRC network, {me}", me=me)
            + self._reply(n.RPL_YOURHOST, f"Your host is {server}, running version {version}", me=me)
            + self._reply(n.RPL_CREATED, f"This server was created {created}", me=me)
            + self._reply(n.RPL_MYINFO, server, version, "i", "bimnot", "bo", me=me)
            + b"".join(
                self._reply(n.RPL_ISUPPORT, *supported[i:i + 12], "are supported by this server", me=me)
                for i in range(0, len(supported), 12)
            )
            + self._motd(me)
        )

    def _motd(self, me: str = "") -> bytes:
        motd = self.settings.motd
        if not motd:
            return self._reply(n.ERR_NOMOTD, "MOTD File is missing", me=me)
        server = self.settings.server_name
        return (
            self._reply(n.RPL_MOTDSTART, f"- {server} Message of the day - ", me=me)
            + b"".join(self._reply(n.RPL_MOTD, f"- {text}", me=me) for text in motd.splitlines())
            + self._reply(n.RPL_ENDOFMOTD, "End of /MOTD command.", me=me)
        )

    def _error(self, event: events.Error, context: Context) -> bytes:
        """
        A refusal as its IRC numeric (L{numerics.ERRORS}), the request's
        target its first parameter where the numeric has one; a refusal
        without a numeric as a C{NOTICE}. Refusals of a C{NOTICE} are not
        shown (RFC 2812 section 3.3.2).
        """
        verb, target = context
        if verb == "NOTICE":
            return b""
        if verb == "CHATHISTORY" and self._queries:
            self._queries.popleft()
            if event.code == errors.Busy.code:
                return self._fail("CHATHISTORY", "MESSAGE_ERROR", target, event.message)
            return self._fail("CHATHISTORY", "INVALID_TARGET", target, event.message)
        if verb == "AUTHENTICATE":
            return self._reply(n.ERR_SASLFAIL, f"SASL authentication failed: {event.message}")
        if verb == "NAMES" and event.code == errors.NoSuchRoom.code:
            return self._reply(n.RPL_ENDOFNAMES, target, "End of /NAMES list")
        if verb == "INVITE":
            nick, _, target = target.partition(" ")
            if event.code == errors.NoSuchNick.code:
                target = nick
        numeric = n.ERRORS.get(event.code)
        if verb == "JOIN" and event.code == errors.BadArguments.code:
            numeric = n.ERR_NOSUCHCHANNEL
        if verb == "PRIVMSG" and event.code == errors.NotInRoom.code:
            numeric = n.ERR_CANNOTSENDTOCHAN  # +n: a channel takes messages from its members only
        if numeric is None:
            return self._notice(event.message)
        if numeric == n.ERR_NEEDMOREPARAMS or numeric == n.ERR_UNKNOWNCOMMAND:
            target = verb or target
        end = self._reply(n.RPL_ENDOFWHOIS, target, "End of /WHOIS list") if verb == "WHOIS" else b""
        if numeric in n.TARGETED:
            return self._reply(numeric, target or "*", event.message) + end
        return self._reply(numeric, event.message) + end

    def _private(self, event: events.Private) -> bytes:
        """
        A private message to this user as C{PRIVMSG} (or C{NOTICE}); one
        this user sent is echoed (to the recipient) only with
        C{echo-message}. The line carries the tags of the user's
        capabilities (L{chat.irc.render.tags}). The sender of a
        C{PRIVMSG} to someone away is told so first (301).
        """
        data = tagged(self._private_line(event), tags(event, self.caps, event.ts))
        if event.away and event.sender == self.nick and event.to != self.nick and not event.notice:
            return self._reply(n.RPL_AWAY, event.to, event.away) + data
        return data

    def _private_line(self, event: events.Private) -> bytes:
        if event.sender == self.nick and event.to != self.nick:
            if "echo-message" not in self.caps or event.e2e:
                return b""
            text = message_text(event.text, event.action)
            return line(source(event.sender), _command(event), event.to, text, text=True)
        if event.e2e:
            return line(
                source(event.sender), "NOTICE", self.nick,
                "sent you an end-to-end encrypted message, which IRC cannot show: read it with a chat client",
                text=True,
            )
        return line(source(event.sender), _command(event), self.nick, message_text(event.text, event.action), text=True)

    def _users(self, event: events.Users, who: bool, mask: str = "") -> bytes:
        """
        NAMES (353 in lines of at most 400 bytes of nicks, 366) or WHO (352
        each, 315 with the C{mask} as the client gave it; the channel is
        C{*} for a nick mask).
        """
        room = event.room
        server = self.settings.server_name
        if who:
            channel = room if room.startswith("#") else "*"
            out = b""
            for u in event.users:
                username, realname = self.factory.names(u.nick)
                out += self._reply(
                    n.RPL_WHOREPLY, channel, username, USER_HOST, server, u.nick,
                    ("G" if u.status else "H") + ("@" if u.role == events.OPERATOR else ""), f"0 {realname}",
                )
            return out + self._reply(n.RPL_ENDOFWHO, mask or room, "End of /WHO list")
        full = "userhost-in-names" in self.caps
        names = [
            ("@" if u.role == events.OPERATOR else "")
            + (f"{u.nick}!{self.factory.names(u.nick)[0]}@{USER_HOST}" if full else u.nick)
            for u in event.users
        ]
        out = b""
        while names:
            chunk: list[str] = []
            while names and sum(len(name) + 1 for name in chunk) + len(names[0]) < 400:
                chunk.append(names.pop(0))
            out += self._reply(n.RPL_NAMREPLY, "=", room, " ".join(chunk), text=True)
        return out + self._reply(n.RPL_ENDOFNAMES, room, "End of /NAMES list")

    def _whois(self, event: events.Whois) -> bytes:
        server = self.settings.server_name
        username, realname = self.factory.names(event.nick)
        out = self._reply(n.RPL_WHOISUSER, event.nick, username, USER_HOST, "*", realname)
        if event.rooms:
            operator_of = {room.lower() for room in event.operator_of}
            shown = (("@" if room.lower() in operator_of else "") + room for room in event.rooms)
            out += self._reply(n.RPL_WHOISCHANNELS, event.nick, " ".join(shown), text=True)
        out += self._reply(n.RPL_WHOISSERVER, event.nick, server, f"chat {chat.__version__}")
        if event.status:
            out += self._reply(n.RPL_AWAY, event.nick, event.status)
        if event.secure:
            out += self._reply(n.RPL_WHOISSECURE, event.nick, "is using a secure connection")
        if event.account:
            out += self._reply(n.RPL_WHOISACCOUNT, event.nick, event.nick, "is logged in as")
        out += self._reply(
            n.RPL_WHOISIDLE, event.nick, str(event.idle), str(int(event.since.timestamp())),
            "seconds idle, signon time",
        )
        return out + self._reply(n.RPL_ENDOFWHOIS, event.nick, "End of /WHOIS list")


_INVITED = re.compile(r"(\S+) invites you to (#\S+): /join \2")
"""
The C{info} the domain sends an invited user (L{chat.domain.moderation}),
shown on IRC as C{:inviter INVITE you #room}; the chat has no invitation
event of its own.
"""

def _history_line(message: events.Message | events.Private, server: str) -> bytes:
    """A message of a C{CHATHISTORY} batch, as it was sent: C{PRIVMSG} (or C{NOTICE}) to its channel or nick."""
    if isinstance(message, events.Message):
        return render(message, server)
    if message.e2e:
        return line(source(message.sender), "NOTICE", message.to, "(an end-to-end encrypted message)", text=True)
    text = message_text(message.text, message.action)
    return line(source(message.sender), _command(message), message.to, text, text=True)


def _command(event: events.Private) -> str:
    """A private message's IRC command: C{NOTICE} for one sent as a notice, else C{PRIVMSG}."""
    return "NOTICE" if event.notice else "PRIVMSG"


def _modes_set(settings: events.RoomSettings) -> str:
    """The channel modes that are on, for 324: C{+}, C{i}, C{m}, C{n} (always), C{t}."""
    return "+" + "".join(sorted(
        letter for letter, on in (
            ("i", settings.invite_only), ("t", settings.topic_lock), ("m", settings.moderated), ("n", True)
        ) if on
    ))

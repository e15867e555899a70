# -*- test-case-name: tests.test_irc,tests.test_irc_queries,tests.test_irc_history -*-
"""
The IRC commands of a registered user (PROTOCOL.md section 14,
docs/irc.md): channels, messages, queries, modes and history, each mapped
onto the requests of L{chat.commands}. L{UserCommands} is the part of
L{chat.irc.protocol.IRCProtocol} that runs them; registration, the input
and the connection are the protocol's.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from chat import commands, wire
from chat.irc import numerics as n
from chat.irc.history import Query, QueryError, query
from chat.irc.render import ACTION, MODE_LETTERS
from chat.irc.replies import Context, Replies
from chat.outbox import Outbox


class UserCommands(Replies):
    """
    The commands of a registered IRC user, a mixin of
    L{chat.irc.protocol.IRCProtocol}.
    """

    outbox: Outbox
    _queries: deque[Query] | None

    if TYPE_CHECKING:  # the protocol's

        def _execute(self, request: commands.Request, context: Context) -> None: ...


    def irc_JOIN(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{JOIN #a,#b}: each joined in turn (keys are ignored)."""
        for room in params[0].split(","):
            if room:
                self._execute(commands.Join(room), ("JOIN", room))

    def irc_PART(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{PART #a,#b [:reason]}."""
        reason = params[1] if len(params) > 1 else ""
        for room in params[0].split(","):
            if room:
                self._execute(commands.Part(room, reason), ("PART", room))

    def irc_PRIVMSG(self, params: list[str], verb: str = "PRIVMSG") -> None:  # noqa: N802 - IRC's verb
        """
        C{PRIVMSG target[,target] :text}: to a channel the user is in
        (C{say} to that room, not the current one), or to a nick (a
        private message). A CTCP ACTION is a C{/me}.
        """
        if not params or not params[0]:
            if verb == "PRIVMSG":
                self.outbox.write(self._reply(n.ERR_NORECIPIENT, f"No recipient given ({verb})"))
            return
        if len(params) < 2 or not params[1]:
            if verb == "PRIVMSG":
                self.outbox.write(self._reply(n.ERR_NOTEXTTOSEND, "No text to send"))
            return
        text = params[1]
        action = False
        if text.startswith(ACTION) or text == ACTION.rstrip():
            action = True
            text = text[len(ACTION):].rstrip("\x01")
        elif text.startswith("\x01"):
            return  # other CTCP requests are not answered
        text = wire.clean(text)
        for target in wire.clean(params[0]).split(","):
            if not target:
                continue
            notice = verb == "NOTICE"
            if target.startswith("#"):
                self._execute(commands.Say(text, action, room=target, notice=notice), (verb, target))
            else:
                self._execute(commands.Msg(target, text, action, notice), (verb, target))

    def irc_NOTICE(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{NOTICE target :text}: as C{PRIVMSG}, but never answered with an error."""
        self.irc_PRIVMSG(params, "NOTICE")

    def irc_KICK(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{KICK #room nick[,nick] [:reason]}: C{/kick} each (the room's members see C{KICK})."""
        room = params[0]
        reason = params[2] if len(params) > 2 else ""
        for nick in params[1].split(","):
            if nick:
                self._execute(commands.Kick(nick, room, reason), ("KICK", room))

    def irc_INVITE(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{INVITE nick #room}: C{/invite}; 341 to the inviter, a C{NOTICE} to the invited user."""
        nick, room = params[0], params[1]
        self._execute(commands.Invite(nick, room), ("INVITE", f"{nick} {room}"))

    def irc_TOPIC(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{TOPIC #room} shows the topic (332 or 331); C{TOPIC #room :text} sets it."""
        room = params[0]
        if len(params) > 1:
            self._execute(commands.Topic(room, params[1]), ("TOPIC", room))
        else:
            self._execute(commands.Topic(room, None), ("TOPIC?", room))

    def irc_NAMES(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{NAMES #a,#b}: 353 and 366 for each; without a channel, only 366."""
        if not params:
            self.outbox.write(self._reply(n.RPL_ENDOFNAMES, "*", "End of /NAMES list"))
            return
        for room in params[0].split(","):
            if room:
                self._execute(commands.ListUsers(room), ("NAMES", room))

    def irc_WHO(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """
        C{WHO #room}: 352 for each member, then 315; C{WHO mask}: 352
        (channel C{*}) for each connected user whose nick matches (C{*},
        C{?}), then 315.
        """
        mask = params[0]
        if mask.startswith("#"):
            self._execute(commands.ListUsers(mask), ("WHO", mask))
        else:
            self._execute(commands.Who((mask,)), ("WHO", mask))

    def irc_USERHOST(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{USERHOST nick [nick...]}: 302 with C{nick=+user@chat} (C{-} when away) for up to 5 connected nicks."""
        nicks = tuple(nick for nick in params[:5] if "*" not in nick and "?" not in nick)
        self._execute(commands.Who(nicks), ("USERHOST", " ".join(nicks)))

    def irc_ISON(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{ISON nick [nick...]}: 303 with those connected."""
        nicks = tuple(nick for param in params for nick in param.split() if "*" not in nick and "?" not in nick)
        self._execute(commands.Who(nicks[:16]), ("ISON", " ".join(nicks)))

    def irc_WHOIS(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{WHOIS [server] nick}: 311, 319, 312, 301, 671, 330, 317, 318 (or 401 and 318)."""
        nick = params[-1]
        self._execute(commands.Whois(nick), ("WHOIS", nick))

    def irc_LIST(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """
        C{LIST [#a,#b]}: 321, 322 for every room with members (or those
        of them named), 323. Other filters (ELIST) are not offered.
        """
        named = params[0] if params and params[0].startswith("#") else ""
        self._execute(commands.ListRooms(), ("LIST", named))

    def irc_AWAY(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{AWAY [:text]}: the status of the other front ends; 306, or 305 when cleared."""
        self._execute(commands.Status(params[0] if params else ""), ("AWAY", ""))

    def irc_MODE(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """
        C{MODE #room} (324), C{MODE #room +o|-o nick} (C{/op}, C{/deop}),
        C{MODE #room +i|-i|+t|-t|+m|-m} (C{/room} settings), C{MODE #room b}
        (368: the ban list is not shown yet), C{+n} (always on); C{MODE
        nick} (221, no user modes; C{+i} and C{+w} are taken and change
        nothing, another letter gets 501).
        """
        target = params[0]
        if not target.startswith("#"):
            if len(params) > 1 and params[1].strip("+-iw"):
                self.outbox.write(self._reply(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag"))
            elif len(params) == 1:
                self.outbox.write(self._reply(n.RPL_UMODEIS, "+"))
            return  # +i and +w (invisible, wallops), which clients set on connecting, change nothing here
        if len(params) == 1:
            self._execute(commands.RoomSet(target, None), ("MODE?", target))
            return
        change, arguments = params[1], params[2:]
        sign = True
        for letter in change:
            if letter in "+-":
                sign = letter == "+"
            elif letter == "b" and not arguments:
                self._execute(commands.Bans(target), ("BANS", target))
            elif letter == "b":
                nick = _banned_nick(arguments.pop(0))
                if nick is None:
                    self.outbox.write(self._reply(
                        n.ERR_UNKNOWNMODE, "b", "bans are of a nick (nick or nick!*@*), not of other masks"
                    ))
                elif sign:
                    self._execute(commands.Ban(nick, target, None, ""), ("MODE", target))
                else:
                    self._execute(commands.Unban(nick, target), ("MODE", target))
            elif letter == "o" and arguments:
                self._execute(commands.Op(arguments.pop(0), target, sign), ("MODE", target))
            elif letter == "n" and sign:
                pass  # no messages from outside: always so (PRIVMSG #room needs membership)
            elif letter in _MODE_SETTINGS:
                self._execute(commands.RoomSet(target, _MODE_SETTINGS[letter], sign), ("MODE", target))
            else:
                self.outbox.write(self._reply(n.ERR_UNKNOWNMODE, letter, "is unknown mode char to me"))

    def irc_CHATHISTORY(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """
        IRCv3 C{draft/chathistory}: C{CHATHISTORY LATEST|BEFORE|AFTER|BETWEEN
        target refs... limit} (L{chat.irc.history}), answered with a
        C{chathistory} batch of the messages, or C{FAIL CHATHISTORY ...}.
        """
        try:
            asked = query(params)
        except QueryError as refused:
            self.outbox.write(self._fail("CHATHISTORY", refused.code, *refused.context, refused.text))
            return
        if self._queries is None:
            self._queries = deque()
        self._queries.append(asked)
        self._execute(asked.request, ("CHATHISTORY", asked.target))

    def irc_OPER(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """
        C{OPER}: 491. Server administrators are accounts (C{chat-admin
        grant-admin}); their rights come with logging in to them (C{PASS},
        SASL), not with a second password.
        """
        self.outbox.write(self._reply(
            n.ERR_NOOPERHOST, "No O-lines: administrators log in to their account (SASL or PASS) instead"
        ))

    def irc_TIME(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{TIME}: 391 with the server's clock, in UTC (RFC 3339 to the second)."""
        server = self.settings.server_name
        now = datetime.fromtimestamp(self.server.clock.seconds(), timezone.utc)
        self.outbox.write(self._reply(n.RPL_TIME, server, f"{now:%Y-%m-%dT%H:%M:%SZ}", text=True))

    def irc_MOTD(self, params: list[str]) -> None:  # noqa: N802 - IRC's verb
        """C{MOTD}: 375, 372, 376, or 422."""
        self.outbox.write(self._motd())


def _banned_nick(mask: str) -> str | None:
    """
    The nick a C{+b} mask bans: C{nick}, C{nick!*@*} or C{nick!*} (the
    chat bans an account, or a guest's nick and address: PROTOCOL.md
    section 10); C{None} for any other mask.
    """
    nick, _, rest = mask.partition("!")
    if rest not in ("", "*", "*@*") or not nick or "*" in nick or "?" in nick:
        return None
    return nick


_MODE_SETTINGS = {letter: setting for setting, letter in MODE_LETTERS.items()}
"""The channel modes that are room settings (PROTOCOL.md section 10)."""

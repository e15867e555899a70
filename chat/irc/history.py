# -*- test-case-name: tests.test_irc_history -*-
"""
IRCv3 C{draft/chathistory} (PROTOCOL.md section 14): a C{CHATHISTORY}
command read into the chat's history request (L{commands.History}, by id
or by time, from the store), and the messages it gives back cut to what
was asked and wrapped in a C{batch} (IRCv3 C{batch}).

Message references are C{msgid=ID} (the chat's message ids, sent as the
C{msgid} tag with C{message-tags}) and C{timestamp=T} (RFC 3339, UTC).
Rooms take C{LATEST}, C{BEFORE}, C{AFTER} and C{BETWEEN}; a private
conversation (a nick as the target: logged-in users only, as C{/history
NICK}) C{LATEST} and C{BEFORE}. C{AROUND} and C{TARGETS} are not offered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from chat import commands, events
from chat.codec import parse_time
from chat.domain.state import HISTORY_MAX

LIMIT = HISTORY_MAX
"""The most messages one C{CHATHISTORY} gives (C{CHATHISTORY} in ISUPPORT)."""

SUBCOMMANDS = ("LATEST", "BEFORE", "AFTER", "BETWEEN")

_MILLISECOND = timedelta(milliseconds=1)

Shown = events.Message | events.Private


class QueryError(Exception):
    """
    A C{CHATHISTORY} that cannot be run: C{FAIL CHATHISTORY code context... :text}.
    """

    def __init__(self, code: str, context: tuple[str, ...], text: str) -> None:
        super().__init__(text)
        self.code = code
        self.context = context
        self.text = text


@dataclass(frozen=True)
class Reference:
    """
    A message reference: C{id} (C{msgid=}) or C{time} (C{timestamp=},
    aware), exactly one of them set.
    """

    id: int | None = None
    time: datetime | None = None

    def before(self, message: Shown) -> bool:
        """Whether C{message} is older than this reference."""
        if self.id is not None:
            return message.id < self.id
        assert self.time is not None
        return message.ts < self.time

    def after(self, message: Shown) -> bool:
        """
        Whether C{message} is newer than this reference; a time is taken to
        the millisecond clients see (C{server-time}), so the message a
        client read the time from is not newer than it.
        """
        if self.id is not None:
            return message.id > self.id
        assert self.time is not None
        return message.ts >= self.time + _MILLISECOND


def reference(text: str, subcommand: str) -> Reference:
    """
    Read C{msgid=ID} or C{timestamp=T}.

    @raise QueryError: C{INVALID_MSGREFTYPE} for another kind,
        C{INVALID_PARAMS} for a value that does not read.
    """
    kind, _, value = text.partition("=")
    try:
        if kind == "msgid" and value.isdigit() and int(value) > 0:
            return Reference(id=int(value))
        if kind == "timestamp":
            return Reference(time=parse_time(value).astimezone(timezone.utc))
    except ValueError:
        pass
    if kind in ("msgid", "timestamp"):
        raise QueryError("INVALID_PARAMS", (subcommand,), f"{text} is not a valid message reference")
    raise QueryError("INVALID_MSGREFTYPE", (subcommand, text), "Use msgid= or timestamp=")


@dataclass(frozen=True)
class Query:
    """
    One C{CHATHISTORY}: the chat's request, and L{cut}, which keeps of
    what it gives back what was asked (oldest first).
    """

    target: str
    request: commands.History
    keep: Callable[[Shown], bool]
    limit: int
    last: bool

    def cut(self, messages: Sequence[Shown]) -> list[Shown]:
        """The messages asked for, oldest first: at most C{limit}, the last ones or the first ones."""
        kept = [m for m in messages if self.keep(m)]
        return kept[-self.limit:] if self.last else kept[:self.limit]


def query(params: Sequence[str]) -> Query:
    """
    Read C{CHATHISTORY}'s parameters (after the verb).

    @param params: C{[SUBCOMMAND, target, ref..., limit]}.
    @raise QueryError: C{INVALID_PARAMS} (a missing or bad parameter, an
        unsupported subcommand), C{INVALID_TARGET} (neither a channel nor
        a nick), C{INVALID_MSGREFTYPE}.
    """
    if not params:
        raise QueryError("INVALID_PARAMS", (), "Not enough parameters")
    sub = params[0].upper()
    if sub not in SUBCOMMANDS:
        raise QueryError("INVALID_PARAMS", (params[0],), f"{params[0]} is not supported: use {', '.join(SUBCOMMANDS)}")
    wanted = 5 if sub == "BETWEEN" else 4
    if len(params) < wanted:
        raise QueryError("INVALID_PARAMS", (sub,), "Not enough parameters")
    target, limit_text = params[1], params[wanted - 1]
    if not limit_text.isdigit() or int(limit_text) < 1:
        raise QueryError("INVALID_PARAMS", (sub, limit_text), "The limit must be a positive number")
    limit = min(int(limit_text), LIMIT)
    room = target if target.startswith("#") else None
    nick = None if room else target
    if not target or target == "*":
        raise QueryError("INVALID_TARGET", (sub, target), "No such channel or nick")

    latest = commands.History(limit, room, nick=nick)
    if sub == "LATEST":
        if params[2] == "*":
            return Query(target, latest, lambda m: True, limit, last=True)
        ref = reference(params[2], sub)
        return Query(target, latest, ref.after, limit, last=True)
    ref = reference(params[2], sub)
    if sub == "BEFORE":
        if nick is not None and ref.id is None:
            # A conversation is read back by id only: by time, among its last LIMIT messages.
            return Query(target, replace(latest, count=LIMIT), ref.before, limit, last=True)
        return Query(target, _backward(latest, ref), ref.before, limit, last=True)
    if nick is not None:
        raise QueryError("INVALID_PARAMS", (sub,), f"{sub} is for channels; use LATEST or BEFORE with a nick")
    if sub == "AFTER":
        return Query(target, _forward(latest, ref), ref.after, limit, last=False)
    end = reference(params[3], sub)
    if _earlier(ref, end):
        return Query(target, _forward(latest, ref), lambda m: ref.after(m) and end.before(m), limit, last=False)
    return Query(target, _backward(latest, ref), lambda m: ref.before(m) and end.after(m), limit, last=True)


def _earlier(a: Reference, b: Reference) -> bool:
    if a.id is not None and b.id is not None:
        return a.id < b.id
    if a.time is not None and b.time is not None:
        return a.time < b.time
    raise QueryError("INVALID_PARAMS", ("BETWEEN",), "Both references must be of the same kind")


def _backward(latest: commands.History, ref: Reference) -> commands.History:
    """The messages before C{ref}, the last ones."""
    if ref.id is not None:
        return replace(latest, before=ref.id)
    return replace(latest, until=ref.time)


def _forward(latest: commands.History, ref: Reference) -> commands.History:
    """The messages after C{ref}, the first ones (L{Reference.after}: a time to the millisecond)."""
    if ref.id is not None:
        return replace(latest, after=ref.id)
    assert ref.time is not None
    return replace(latest, since=ref.time + _MILLISECOND)

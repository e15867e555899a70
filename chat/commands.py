# -*- test-case-name: tests.test_commands -*-
"""
The command language of PROTOCOL.md sections 3, 4, 10 and 11: the verbs with their
usage and help, and L{parse}, which turns a L{wire.Command} into one typed
request value. Every front end that takes typed lines (the line protocol,
later the WebSocket) uses it as is. Pure: no Twisted, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Union

from chat import errors, keys, wire
from chat.domain.state import NICK_PATTERN, ROOM_PATTERN
from chat.spool import is_sha256

COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("/help [COMMAND]", "lists the commands, or explains one"),
    "nick": ("/nick NEW [--no-join]", "picks your nick (and joins #lobby, unless --no-join), or changes it"),
    "msg": ("/msg NICK TEXT", "sends a private message"),
    "emsg": (
        "/emsg NICK ENVELOPE",
        "sends an end-to-end encrypted private message (an envelope made by a chat client, base64url)",
    ),
    "key": (
        "/key publish KEY | /key remove DEVICE",
        "publishes your device's public key (base64 of 64 bytes) for encrypted messages, or removes one of yours",
    ),
    "keys": ("/keys NICK", "lists the public keys NICK published, with their fingerprints"),
    "me": ("/me TEXT", "sends an action to the current room"),
    "join": ("/join #ROOM", "joins a room (creating it if new) and makes it current"),
    "part": ("/part [#ROOM] [REASON]", "leaves a room (default: the current one)"),
    "rooms": ("/rooms", "lists the rooms with topic and user count"),
    "list": ("/list [#ROOM]", "lists a room's users with status and idle time (alias /users)"),
    "whois": ("/whois NICK", "tells about a user"),
    "status": ("/status [TEXT]", "sets your status, or clears it without TEXT (alias /away)"),
    "topic": ("/topic [#ROOM] [TEXT]", "shows or sets a room's topic"),
    "history": (
        "/history [N] [#ROOM|NICK] [before ID]",
        "shows the last N messages (default 20, at most 500) of a room, or of your private conversation with NICK"
        " (logged-in users); with before ID, the N messages just older than message ID",
    ),
    "register": ("/register PASSWORD", "creates an account for your nick"),
    "login": ("/login NICK PASSWORD [--no-join]", "logs in to an account (joining #lobby, unless --no-join)"),
    "password": ("/password OLD NEW", "changes your account's password"),
    "upload": ("/upload TARGET NAME SIZE [SHA256]", "offers a file to a nick or #room"),
    "download": ("/download ID [OFFSET]", "fetches an offered file"),
    "files": ("/files", "lists the files offered to you"),
    "format": ("/format text|json", "switches the output format"),
    "starttls": ("/starttls", "upgrades the connection to TLS"),
    "ping": ("/ping [TOKEN]", "answers pong"),
    "op": ("/op NICK [#ROOM]", "makes NICK an operator of the room (operators)"),
    "deop": ("/deop NICK [#ROOM]", "takes operator status from NICK (operators)"),
    "kick": ("/kick NICK [#ROOM] [REASON]", "removes NICK from the room (operators)"),
    "ban": (
        "/ban NICK [#ROOM] [DURATION] [REASON]",
        "kicks NICK and keeps them out, for DURATION (like 10m, 2h, 7d) or for good (operators)",
    ),
    "unban": ("/unban NICK [#ROOM]", "lifts a ban (operators)"),
    "bans": ("/bans [#ROOM]", "lists the room's bans (operators)"),
    "mute": ("/mute NICK [#ROOM] [DURATION]", "keeps NICK from speaking in the room (operators)"),
    "unmute": ("/unmute NICK [#ROOM]", "lets NICK speak again (operators)"),
    "room": (
        "/room [#ROOM] [SETTING on|off]",
        "shows the room's settings, or turns invite-only, topic-lock or moderated on or off (operators)",
    ),
    "invite": ("/invite NICK [#ROOM]", "lets NICK into an invite-only room (operators)"),
    "kill": ("/kill NICK [REASON]", "disconnects NICK (administrators)"),
    "announce": ("/announce TEXT", "tells every connected user (administrators)"),
    "stats": ("/stats", "shows uptime, connections, messages per minute and store size (administrators)"),
    "quit": ("/quit [REASON]", "says goodbye and closes the connection (alias /exit)"),
}
"""Verb to C{(usage, what it does)}, in the order C{/help} lists them."""

ALIASES = {"users": "list", "away": "status", "exit": "quit"}
UNREGISTERED = frozenset({"help", "format", "starttls", "ping", "nick", "login", "quit"})
"""Verbs that work before registration (PROTOCOL.md section 3.2)."""

FORMATS = ("text", "json")
"""The output formats C{/format} takes (PROTOCOL.md section 2)."""

HISTORY_DEFAULT = 20
"""Messages C{/history} shows without N."""


@dataclass(frozen=True, slots=True)
class Say:
    """
    A line of text for the current room (an action for C{/me}); C{room}
    names another room the user is in (the IRC front end's C{PRIVMSG
    #room}; the line language has no way to say it), else C{None}.
    C{notice} marks an IRC C{NOTICE} (L{chat.events.Message.notice}).
    """

    text: str
    action: bool = False
    room: str | None = None
    notice: bool = False


@dataclass(frozen=True, slots=True)
class Help:
    """C{/help [COMMAND]}: C{topic} is a verb without its C{/}, or empty."""

    topic: str


@dataclass(frozen=True, slots=True)
class Nick:
    """
    C{/nick NEW [--no-join]}: C{join} is false when C{--no-join} asks a
    registration to skip the automatic C{#lobby} join (for programs); it
    means nothing to a nick change.
    """

    nick: str
    join: bool = True


@dataclass(frozen=True, slots=True)
class Msg:
    """
    C{/msg NICK TEXT}. From the IRC front end also a CTCP ACTION
    (C{action}) or a C{NOTICE} (C{notice}), which the line language cannot say.
    """

    nick: str
    text: str
    action: bool = False
    notice: bool = False


@dataclass(frozen=True, slots=True)
class Emsg:
    """C{/emsg NICK ENVELOPE}: C{envelope} checked by L{keys.check_envelope}."""

    nick: str
    envelope: str


@dataclass(frozen=True, slots=True)
class PublishKey:
    """C{/key publish KEY}: C{bundle} the key's bytes (L{keys.parse_bundle})."""

    bundle: bytes


@dataclass(frozen=True, slots=True)
class RemoveKey:
    """C{/key remove DEVICE}."""

    device: str


@dataclass(frozen=True, slots=True)
class ListKeys:
    """C{/keys NICK}."""

    nick: str


@dataclass(frozen=True, slots=True)
class Join:
    """C{/join #ROOM}."""

    room: str


@dataclass(frozen=True, slots=True)
class Part:
    """C{/part [#ROOM] [REASON]}; C{room} C{None} for the current one."""

    room: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ListRooms:
    """C{/rooms}."""


@dataclass(frozen=True, slots=True)
class ListUsers:
    """C{/list [#ROOM]}."""

    room: str | None


@dataclass(frozen=True, slots=True)
class Whois:
    """C{/whois NICK}."""

    nick: str


@dataclass(frozen=True, slots=True)
class Who:
    """
    The connected users whose nick matches one of C{masks} (ignoring
    case; C{*} any characters, C{?} one): IRC's C{WHO mask}, C{USERHOST}
    and C{ISON} (PROTOCOL.md section 14); the line language has no such
    command.
    """

    masks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """C{/status [TEXT]}; empty C{text} clears it."""

    text: str


@dataclass(frozen=True, slots=True)
class Topic:
    """C{/topic [#ROOM] [TEXT]}; C{text} C{None} shows the topic."""

    room: str | None
    text: str | None


@dataclass(frozen=True, slots=True)
class History:
    """
    C{/history [N] [#ROOM|NICK] [before ID]}: C{room} a room name with its
    C{#}, or C{nick} the other side of a private conversation, or neither
    (the current room); C{before} a message id (at least 1): only messages
    older than it, or C{None} for the latest.

    The IRC front end's C{CHATHISTORY} (PROTOCOL.md section 14) also
    pages forward and by time, which the line language cannot say (rooms
    only): C{after} a message id, or C{since} an aware time (at or after
    it), gives the first C{count} messages from there, oldest first;
    C{until} (an aware time) the last C{count} sent before it.
    """

    count: int
    room: str | None
    before: int | None = None
    nick: str | None = None
    after: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Register:
    """C{/register PASSWORD}."""

    password: str


@dataclass(frozen=True, slots=True)
class Login:
    """C{/login NICK PASSWORD [--no-join]}: C{join} as for L{Nick}."""

    nick: str
    password: str
    join: bool = True


@dataclass(frozen=True, slots=True)
class Password:
    """C{/password OLD NEW}."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Upload:
    """C{/upload TARGET NAME SIZE [SHA256]}: C{size} in bytes, C{sha256} lower-case hex or C{None}."""

    target: str
    name: str
    size: int
    sha256: str | None


@dataclass(frozen=True, slots=True)
class Download:
    """C{/download ID [OFFSET]}: C{offset} in bytes."""

    id: int
    offset: int


@dataclass(frozen=True, slots=True)
class Files:
    """C{/files}."""


@dataclass(frozen=True, slots=True)
class Format:
    """C{/format text|json}: C{name} is one of L{FORMATS}."""

    name: str


@dataclass(frozen=True, slots=True)
class StartTLS:
    """C{/starttls}."""


@dataclass(frozen=True, slots=True)
class Ping:
    """C{/ping [TOKEN]}."""

    token: str


@dataclass(frozen=True, slots=True)
class Op:
    """C{/op NICK [#ROOM]}, or C{/deop} when C{operator} is false; C{room} C{None} for the current one."""

    nick: str
    room: str | None
    operator: bool = True


@dataclass(frozen=True, slots=True)
class Kick:
    """C{/kick NICK [#ROOM] [REASON]}."""

    nick: str
    room: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Ban:
    """C{/ban NICK [#ROOM] [DURATION] [REASON]}: C{duration} in seconds, C{None} for good."""

    nick: str
    room: str | None
    duration: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class Unban:
    """C{/unban NICK [#ROOM]}."""

    nick: str
    room: str | None


@dataclass(frozen=True, slots=True)
class Bans:
    """C{/bans [#ROOM]}."""

    room: str | None


@dataclass(frozen=True, slots=True)
class Mute:
    """C{/mute NICK [#ROOM] [DURATION]}: C{duration} in seconds, C{None} until unmuted."""

    nick: str
    room: str | None
    duration: float | None


@dataclass(frozen=True, slots=True)
class Unmute:
    """C{/unmute NICK [#ROOM]}."""

    nick: str
    room: str | None


@dataclass(frozen=True, slots=True)
class RoomSet:
    """
    C{/room [#ROOM] [SETTING on|off]}: C{setting} (lower-cased) C{None} to
    show the settings.
    """

    room: str | None
    setting: str | None
    on: bool = False


@dataclass(frozen=True, slots=True)
class Invite:
    """C{/invite NICK [#ROOM]}."""

    nick: str
    room: str | None


@dataclass(frozen=True, slots=True)
class Kill:
    """C{/kill NICK [REASON]}."""

    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class Announce:
    """C{/announce TEXT}."""

    text: str


@dataclass(frozen=True, slots=True)
class Stats:
    """C{/stats}."""


@dataclass(frozen=True, slots=True)
class Quit:
    """C{/quit [REASON]}."""

    reason: str


Request = Union[
    Say, Help, Nick, Msg, Join, Part, ListRooms, ListUsers, Whois, Who, Status, Topic, History,
    Register, Login, Password, Upload, Download, Files, Format, StartTLS, Ping, Quit,
    Op, Kick, Ban, Unban, Bans, Mute, Unmute, RoomSet, Invite, Kill, Announce, Stats,
    Emsg, PublishKey, RemoveKey, ListKeys,
]
"""One request of a user, as the server takes it."""


def usage(verb: str) -> errors.BadArguments:
    """
    The C{bad-arguments} error giving C{verb}'s usage.
    """
    return errors.BadArguments(f"usage: {COMMANDS[verb][0]}")


def help_text(topic: str) -> str:
    """
    The text of C{/help}: every verb with its usage, or one verb's.

    @param topic: a verb or alias, with or without its C{/}; empty for all.
    @raise errors.BadArguments: no such verb.
    """
    topic = topic.lstrip("/").lower()
    if topic:
        verb = ALIASES.get(topic, topic)
        if verb not in COMMANDS:
            raise errors.BadArguments(f"no command /{topic}: /help lists them")
        usage_line, what = COMMANDS[verb]
        return f"{usage_line}: {what}"
    width = max(len(usage_line) for usage_line, _ in COMMANDS.values())
    lines = ["Commands (a line not starting with / is said to your current room; // sends a literal /):"]
    lines += [f"  {usage_line:<{width}}  {what}" for usage_line, what in COMMANDS.values()]
    return "\n".join(lines)


def is_count(word: str) -> bool:
    """
    Whether C{word} is a non-negative whole number of at most 18 ASCII digits.
    """
    return word.isascii() and word.isdigit() and len(word) <= 18


def _optional_room(args: str) -> tuple[str | None, str]:
    first, _, rest = args.partition(" ")
    if first.startswith("#"):
        return first, rest.strip()
    return None, args


def _msg(args: str) -> Msg:
    nick, text = _words(args, 2, "msg", 2)
    return Msg(nick, text)


def _words(args: str, count: int, verb: str, low: int, high: int | None = None) -> list[str]:
    words = args.split(None, count - 1) if args else []
    if not low <= len(words) <= (low if high is None else high):
        raise usage(verb)
    return words


NO_JOIN = "--no-join"
"""The registration flag that skips the automatic C{#lobby} join (PROTOCOL.md section 3.4)."""


def _registration(args: str, verb: str, count: int) -> tuple[list[str], bool]:
    """
    The C{count} words of C{/nick} or C{/login}, and whether to join
    C{#lobby}: not when a last word L{NO_JOIN} follows them.
    """
    words = _words(args, count + 1, verb, count, count + 1)
    if len(words) == count:
        return words, True
    if words.pop() != NO_JOIN:
        raise usage(verb)
    return words, False


def _nick(args: str) -> Nick:
    (nick,), join = _registration(args, "nick", 1)
    return Nick(nick, join)


def _login(args: str) -> Login:
    (nick, password), join = _registration(args, "login", 2)
    return Login(nick, password, join)


HISTORY_BEFORE = "before"
"""The word of C{/history} that a message id follows (PROTOCOL.md section 4)."""


def _history(args: str) -> History:
    """
    N, C{#ROOM} or C{NICK}, and C{before ID}, in any order, each at most
    once; a bare word that is a valid nick names a private conversation,
    and the word C{before} (any case) always takes the id after it.
    """
    count: int | None = None
    room: str | None = None
    nick: str | None = None
    before: int | None = None
    words = iter(args.split())
    for word in words:
        target = room is None and nick is None
        if word.lower() == HISTORY_BEFORE:
            following = next(words, "")
            if before is not None or not is_count(following) or int(following) < 1:
                raise usage("history")
            before = int(following)
        elif word.startswith("#") and target:
            room = word
        elif word.isdigit() and word.isascii() and count is None:
            count = int(word)
        elif NICK_PATTERN.match(word) and target:
            nick = word
        elif target and not word.isdigit() and word[0] != "-" and ROOM_PATTERN.match("#" + word):
            raise errors.BadArguments(f"{word} is not a nick; for a room put # before it: /history #{word}")
        else:
            raise usage("history")
    return History(HISTORY_DEFAULT if count is None else count, room, before, nick)


def _upload(args: str) -> Upload:
    """
    SIZE and SHA256 are read from the end, so NAME may hold spaces.
    """
    words = args.split()
    expected = None
    if len(words) >= 4 and is_sha256(words[-1]) and is_count(words[-2]):
        expected = words.pop().lower()
    if len(words) < 3 or not is_count(words[-1]):
        raise usage("upload")
    return Upload(words[0], " ".join(words[1:-1]), int(words[-1]), expected)


def _download(args: str) -> Download:
    words = args.split(None, 2) if args else []
    if not 1 <= len(words) <= 2 or not all(is_count(word) for word in words):
        raise usage("download")
    return Download(int(words[0]), int(words[1]) if len(words) == 2 else 0)


def _format(args: str) -> Format:
    name = args.lower()
    if name not in FORMATS:
        raise usage("format")
    return Format(name)


def _me(args: str) -> Say:
    if not args:
        raise usage("me")
    return Say(args, action=True)


def _part(args: str) -> Part:
    room, reason = _optional_room(args)
    return Part(room, reason)


def _topic(args: str) -> Topic:
    room, text = _optional_room(args)
    return Topic(room, text or None)


def _list(args: str) -> ListUsers:
    words = _words(args, 2, "list", 0, 1)
    return ListUsers(words[0] if words else None)


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
"""The units of a DURATION (C{/ban}, C{/mute}) in seconds."""

_DURATION = re.compile(r"([0-9]{1,6})([smhdw])\Z")


def duration(word: str) -> float | None:
    """
    The seconds of a DURATION such as C{90s}, C{10m}, C{2h}, C{7d} or
    C{2w} (1 to 6 digits, then a unit of L{UNITS}, lower case), or C{None}
    when C{word} is not one.
    """
    match = _DURATION.match(word)
    if match is None or int(match.group(1)) == 0:
        return None
    return float(int(match.group(1)) * UNITS[match.group(2)])


def _nick_room(args: str, verb: str) -> tuple[str, str | None, str]:
    """
    NICK, then an optional C{#ROOM}, then the rest of the line.
    """
    nick, _, rest = args.strip().partition(" ")
    if not nick:
        raise usage(verb)
    room, rest = _optional_room(rest.strip())
    return nick, room, rest.strip()


def _nick_room_only(args: str, verb: str) -> tuple[str, str | None]:
    nick, room, rest = _nick_room(args, verb)
    if rest:
        raise usage(verb)
    return nick, room


def _op(args: str, verb: str) -> Op:
    return Op(*_nick_room_only(args, verb), operator=verb == "op")


def _kick(args: str) -> Kick:
    return Kick(*_nick_room(args, "kick"))


def _ban(args: str) -> Ban:
    nick, room, rest = _nick_room(args, "ban")
    first, _, reason = rest.partition(" ")
    seconds = duration(first)
    if seconds is None:
        return Ban(nick, room, None, rest)
    return Ban(nick, room, seconds, reason.strip())


def _mute(args: str) -> Mute:
    nick, room, rest = _nick_room(args, "mute")
    if not rest:
        return Mute(nick, room, None)
    seconds = duration(rest)
    if seconds is None:
        raise usage("mute")
    return Mute(nick, room, seconds)


SWITCHES = {"on": True, "off": False}
"""The values of a C{/room} setting."""


def _room(args: str) -> RoomSet:
    room, rest = _optional_room(args.strip())
    words = rest.split()
    if not words:
        return RoomSet(room, None)
    if len(words) != 2 or words[1].lower() not in SWITCHES:
        raise usage("room")
    return RoomSet(room, words[0].lower(), SWITCHES[words[1].lower()])


def _bans(args: str) -> Bans:
    words = _words(args, 2, "bans", 0, 1)
    if words and not words[0].startswith("#"):
        raise usage("bans")
    return Bans(words[0] if words else None)


def _kill(args: str) -> Kill:
    nick, _, reason = args.strip().partition(" ")
    if not nick:
        raise usage("kill")
    return Kill(nick, reason.strip() or "killed by a server administrator")


def _announce(args: str) -> Announce:
    if not args.strip():
        raise usage("announce")
    return Announce(args.strip())


def _emsg(args: str) -> Emsg:
    words = args.split()
    if len(words) != 2:
        raise usage("emsg")
    return Emsg(words[0], keys.check_envelope(words[1]))


def _key(args: str) -> PublishKey | RemoveKey:
    words = args.split()
    if len(words) == 2 and words[0].lower() == "publish":
        return PublishKey(keys.parse_bundle(words[1]))
    if len(words) == 2 and words[0].lower() == "remove":
        return RemoveKey(words[1])
    raise usage("key")


_PARSERS: dict[str, Callable[[str], Request]] = {
    "help": Help,
    "nick": _nick,
    "msg": _msg,
    "emsg": _emsg,
    "key": _key,
    "keys": lambda args: ListKeys(*_words(args, 2, "keys", 1)),
    "me": _me,
    "join": lambda args: Join(*_words(args, 2, "join", 1)),
    "part": _part,
    "rooms": lambda args: ListRooms(),
    "list": _list,
    "whois": lambda args: Whois(*_words(args, 2, "whois", 1)),
    "status": Status,
    "topic": _topic,
    "history": _history,
    "register": lambda args: Register(*_words(args, 2, "register", 1)),
    "login": _login,
    "password": lambda args: Password(*_words(args, 3, "password", 2)),
    "upload": _upload,
    "download": _download,
    "files": lambda args: Files(),
    "format": _format,
    "starttls": lambda args: StartTLS(),
    "ping": Ping,
    "quit": lambda args: Quit(args or "goodbye"),
    "op": lambda args: _op(args, "op"),
    "deop": lambda args: _op(args, "deop"),
    "kick": _kick,
    "ban": _ban,
    "unban": lambda args: Unban(*_nick_room_only(args, "unban")),
    "bans": _bans,
    "mute": _mute,
    "unmute": lambda args: Unmute(*_nick_room_only(args, "unmute")),
    "room": _room,
    "invite": lambda args: Invite(*_nick_room_only(args, "invite")),
    "kill": _kill,
    "announce": _announce,
    "stats": lambda args: Stats(),
}
assert set(_PARSERS) == set(COMMANDS)


def parse(command: wire.Command, registered: bool) -> Request:
    """
    Turn a parsed line into a request (PROTOCOL.md sections 3.5 and 4).

    @param registered: whether the connection has a nick: before that, only
        L{UNREGISTERED} verbs are taken.
    @return: the request; a line that is not a command gives L{Say}.
    @raise errors.UnknownCommand: no such verb (C{unknown-command}).
    @raise errors.NotRegistered: a verb that needs a nick, before there is
        one (C{not-registered}).
    @raise errors.BadArguments: the arguments do not fit the verb's usage.
    """
    if command.name is None:
        return Say(command.args)
    verb = ALIASES.get(command.name, command.name)
    parser = _PARSERS.get(verb)
    if parser is None:
        raise errors.UnknownCommand(f"unknown command /{command.name}: try /help")
    if not registered and verb not in UNREGISTERED:
        raise errors.NotRegistered(f"choose a nick before /{verb}: /nick NAME")
    return parser(command.args)

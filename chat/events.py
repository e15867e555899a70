# -*- test-case-name: tests.test_render -*-
"""
Events: the immutable values the chat domain emits, one per thing that happened.

Each maps to one event type of PROTOCOL.md section 5. Times are timezone-aware
UTC C{datetime}s; idle times are whole seconds; text is C{str} already cleaned
of control characters. Renderers in L{chat.render} turn each into bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Limits:
    """
    The limits announced in C{welcome}: C{line} in bytes, C{nick} in
    characters, C{file} in bytes.
    """

    line: int
    nick: int
    file: int


@dataclass(frozen=True, slots=True)
class Welcome:
    """
    Sent on connect and after C{/format}.
    """

    server: str
    version: str
    motd: str
    limits: Limits
    registered: bool = field(default=False, compare=False)
    """Whether the connection has a nick already: the text format then skips its nickname prompt."""


@dataclass(frozen=True, slots=True)
class Registered:
    """
    The connection now has a nick; C{account} is true when logged in.
    C{token} is the session's bearer token for the HTTP file routes when
    the daemon has a web listener, else C{''} (PROTOCOL.md section 9).
    """

    nick: str
    account: bool = False
    token: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    """
    A room message, stored in history. C{id} is server-wide and increasing.

    Off the wire and out of the store (the IRC front end's, PROTOCOL.md
    section 14): C{notice} for an IRC C{NOTICE} (other front ends show
    it as a message), C{account} the sender's account name when logged
    in, else C{''} (IRCv3 C{account-tag}); history read back has neither,
    so neither takes part in comparisons. Off the wire too: C{after}, the
    id of the message stored just before this one in a cluster's
    database (L{chat.postgres_store}), by which every daemon delivers
    messages in id order (L{chat.cluster.order}); C{0} when unknown.
    """

    id: int
    ts: datetime
    room: str
    sender: str
    text: str
    action: bool = False
    notice: bool = field(default=False, compare=False)
    account: str = field(default="", compare=False)
    after: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Private:
    """
    A private message, sent to the recipient and echoed to the sender.
    C{e2e} is the envelope of an end-to-end encrypted message (base64url,
    never opened by the daemon; C{text} is then empty), else C{''}
    (PROTOCOL.md section 11). C{notice} and C{account} as in L{Message}:
    off the wire and out of the store, as is C{away}: the recipient's
    status when it was sent, or C{''} (IRC's 301 to the sender), and
    C{after} (as in L{Message}).
    """

    id: int
    ts: datetime
    sender: str
    to: str
    text: str
    action: bool = False
    offline: bool = False
    e2e: str = ""
    notice: bool = field(default=False, compare=False)
    account: str = field(default="", compare=False)
    away: str = field(default="", compare=False)
    after: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Joined:
    """
    C{nick} joined C{room}; sent to everyone in it, the newcomer included.
    Off the wire (IRCv3 C{extended-join} and C{away-notify}, PROTOCOL.md
    section 14): C{account} the newcomer's account name, or C{''} for a
    guest; C{status} their away text, or C{''}.
    """

    ts: datetime
    room: str
    nick: str
    account: str = field(default="", compare=False)
    status: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Parted:
    """
    C{nick} left C{room}; sent to everyone in it, the leaver included.
    """

    ts: datetime
    room: str
    nick: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Quit:
    """
    C{nick} disconnected; sent to everyone who shared a room with them.
    """

    ts: datetime
    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class NickChanged:
    """
    C{old} is now known as C{new}; sent to the user and everyone sharing a room.
    """

    ts: datetime
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """
    C{nick} set a status; C{text} is empty when cleared.
    """

    nick: str
    text: str


@dataclass(frozen=True, slots=True)
class Topic:
    """
    The topic of C{room}, as shown or newly set by C{by} (empty if never set).
    """

    room: str
    text: str
    by: str


@dataclass(frozen=True, slots=True)
class UserInfo:
    """
    One entry of a C{users} list; C{idle} in whole seconds; C{role} the
    user's role in the room, C{operator} or C{member} (PROTOCOL.md section 10).
    """

    nick: str
    status: str
    idle: int
    role: str = "member"


@dataclass(frozen=True, slots=True)
class Users:
    """
    The members of C{room}, sorted by nick ignoring case.
    """

    room: str
    users: tuple[UserInfo, ...]


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """
    One entry of a C{rooms} list.
    """

    room: str
    topic: str
    count: int


@dataclass(frozen=True, slots=True)
class Rooms:
    """
    Every room with members, sorted by name ignoring case.
    """

    rooms: tuple[RoomInfo, ...]


@dataclass(frozen=True, slots=True)
class Whois:
    """
    What is known of a connected user; C{idle} in whole seconds. Off the
    wire: C{operator_of}, the rooms of C{rooms} where they are an
    operator (IRC's C{@#room} in 319).
    """

    nick: str
    status: str
    rooms: tuple[str, ...]
    since: datetime
    idle: int
    account: bool
    secure: bool
    operator_of: tuple[str, ...] = field(default=(), compare=False)
    node: str = ""
    """The daemon of a cluster the user is connected to (PROTOCOL.md section 13), C{''} for a single daemon."""


@dataclass(frozen=True, slots=True)
class History:
    """
    The last messages of C{room}, oldest first.
    """

    room: str
    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class PrivateHistory:
    """
    The last private messages between the requester and C{with_} (the
    other nick), oldest first: on the wire a C{history} event with C{with}
    instead of C{room} and C{private} objects (PROTOCOL.md section 5).
    Their C{offline} is false: history does not tell how they were delivered.
    """

    with_: str
    messages: tuple[Private, ...]


@dataclass(frozen=True, slots=True)
class FileOffer:
    """
    A file offered to C{to}, a nick or a C{#room} (PROTOCOL.md section 6);
    also the stored record of the offer. C{size} in bytes, C{sha256} in
    lower-case hex, C{name} a display label only (never a path).
    """

    id: int
    sender: str
    to: str
    name: str
    size: int
    sha256: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class UploadReady:
    """
    The daemon now reads exactly C{size} raw bytes of the upload C{id}.
    """

    id: int
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class UploadDone:
    """
    The upload C{id} is stored and offered; C{sha256} of its bytes.
    """

    id: int
    sha256: str


@dataclass(frozen=True, slots=True)
class FileHeader:
    """
    The C{file} line: exactly C{size - offset} raw bytes of the offer
    C{id} follow it (PROTOCOL.md section 6).
    """

    id: int
    name: str
    size: int
    offset: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Info:
    """
    Text meant to be read: help, acknowledgements. May hold several lines.
    """

    text: str


@dataclass(frozen=True, slots=True)
class Error:
    """
    A refused request or bad input; C{code} is one of PROTOCOL.md section 5.
    """

    code: str
    message: str

    @classmethod
    def of(cls, error: Exception) -> Error:
        """
        The event for a refusal: C{error} is a L{chat.errors.ChatError}, whose
        C{code} is the wire code and whose text is the message.
        """
        return cls(getattr(error, "code", "internal"), str(error))


@dataclass(frozen=True, slots=True)
class Pong:
    """
    The answer to C{/ping}, echoing its token (empty if none).
    """

    token: str


@dataclass(frozen=True, slots=True)
class Bye:
    """
    Sent just before the daemon closes the connection.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class Kicked:
    """
    C{nick} was removed from C{room} by the operator C{by} (a kick, or the
    kick of a ban), with C{reason} (maybe empty); to the room, the user
    included (PROTOCOL.md section 10).
    """

    ts: datetime
    room: str
    nick: str
    by: str
    reason: str = ""


OPERATOR = "operator"
MEMBER = "member"
ROLES = (OPERATOR, MEMBER)
"""The roles of a user in a room (PROTOCOL.md section 10)."""


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """
    C{nick} is now C{role} (L{OPERATOR} or L{MEMBER}) in C{room}, by C{by}
    (C{''} when the server gave it: the first to join); to the room.
    """

    room: str
    nick: str
    role: str
    by: str = ""


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """
    The settings of C{room} (PROTOCOL.md section 10), after a change; to the room.
    Off the wire: C{changed}, the setting that changed (C{invite-only},
    C{topic-lock}, C{moderated}) or C{''} when none did (the settings
    shown), and C{by}, the operator who changed it (IRC's C{MODE} line of
    the change alone).
    """

    room: str
    invite_only: bool = False
    topic_lock: bool = False
    moderated: bool = False
    changed: str = field(default="", compare=False)
    by: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """
    One device's published public key (PROTOCOL.md section 11): C{device}
    its id (16 base64url characters), C{key} the bundle in base64, its
    C{fingerprint} (six groups of five digits, L{chat.keys.fingerprint})
    and when it was C{added}.
    """

    device: str
    key: str
    fingerprint: str
    added: datetime


@dataclass(frozen=True, slots=True)
class Keys:
    """
    The answer to C{/keys NICK}: the device keys C{nick} published, oldest
    first; C{account} is true when they are kept with an account (else they
    are a connected guest's).
    """

    nick: str
    account: bool
    keys: tuple[DeviceKey, ...]


Event = (
    Welcome | Registered | Message | Private | Joined | Parted | Quit | NickChanged
    | StatusChanged | Topic | Users | Rooms | Whois | History | PrivateHistory | FileOffer | UploadReady | UploadDone
    | FileHeader | Info | Error | Pong | Bye | Kicked | RoleChanged | RoomSettings | Keys
)

# -*- test-case-name: tests.test_client_service -*-
"""
What a client knows, built from the daemon's events: the connection's
state, the nick, the rooms joined (the current one last) with their
members and unread counts, the file offers, and the transfers under way.

L{ChatModel} is pure: no reactor, no transport, no drawing. The client
service (L{chat.client.service}) feeds it; frontends observe it, each
change reaching them once as a L{Change} to render.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from chat import events


class State(Enum):
    """
    Where the connection stands.
    """

    DISCONNECTED = "disconnected"
    """Not connected, and not trying (before start, after /quit or Leave)."""
    CONNECTING = "connecting"
    """Connecting, or waiting to connect again after a failure."""
    CONNECTED = "connected"
    """Connected; the nick is not registered yet."""
    ONLINE = "online"
    """Registered: chatting."""


@dataclass(frozen=True, slots=True)
class Notice:
    """
    Something the client itself tells the user, one line: C{level} is
    C{"info"} or C{"error"}.
    """

    text: str
    level: str = "info"


ENCRYPTED = "encrypted"
"""L{OpenedPrivate.secrecy}: end-to-end encrypted and opened here (the lock)."""
UNREADABLE = "unreadable"
"""L{OpenedPrivate.secrecy}: end-to-end encrypted, and this device could not open it."""
CLEAR = "clear"
"""L{OpenedPrivate.secrecy}: in clear text, between people whose clients have keys."""


@dataclass(frozen=True, slots=True)
class OpenedPrivate(events.Private):
    """
    A private message as this client read it (L{chat.client.secure}): an
    end-to-end encrypted one with C{text} and C{action} from inside its
    envelope (C{e2e} still the envelope), or one that could not be opened
    (C{text} empty, C{reason} one of L{chat.client.crypto.REASONS} or
    C{"not-supported"}), or a clear-text one from someone whose client has
    keys. A L{events.Private} for everything else.

    @ivar secrecy: L{ENCRYPTED}, L{UNREADABLE} or L{CLEAR}.
    @ivar reason: why it is L{UNREADABLE}; C{""} otherwise.
    """

    secrecy: str = ENCRYPTED
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """
    The connection's L{ChatModel.state}, C{secure} or C{rtt} changed.
    """

    state: State


@dataclass(slots=True)
class Transfer:
    """
    A file going up or down. C{size} and C{done} are in bytes; C{result}
    is the saved path of a finished download, C{error} why it failed.
    """

    id: int
    """The client's own number for it (not the daemon's offer id)."""
    kind: str
    """C{"upload"} or C{"download"}."""
    name: str
    peer: str
    """The upload's target (nick or #room), or the download's sender."""
    size: int = 0
    done: int = 0
    finished: bool = False
    result: str = ""
    error: str = ""
    offer: int | None = None
    """The daemon's offer id, for a download."""

    @property
    def fraction(self) -> float:
        """
        How much is done, from 0.0 to 1.0 (1.0 for an empty file).
        """
        return 1.0 if self.size <= 0 else min(1.0, self.done / self.size)


@dataclass(frozen=True, slots=True)
class TransferChanged:
    """
    A transfer progressed, ended or failed.
    """

    transfer: Transfer


@dataclass(frozen=True, slots=True)
class RoomsChanged:
    """
    The rooms joined, the current one, the private conversations, what the
    user looks at (L{ChatModel.look}), the muted rooms, or an unread count
    changed.
    """


@dataclass(frozen=True, slots=True)
class UnreadMark:
    """
    The first message that the user has not seen in a room or private
    conversation they looked at before (L{ChatModel.look}) comes next:
    told just before that message, once each time the user looks away.
    The presenter makes it a "new since you last looked" line.

    @ivar room: the room's name, or C{None} for a conversation.
    @ivar conversation: the other person's nick, or C{None} for a room.
    """

    room: str | None = None
    conversation: str | None = None


@dataclass(frozen=True, slots=True)
class UsersChanged:
    """
    The members of C{room}, or their statuses, changed.
    """

    room: str


@dataclass(frozen=True, slots=True)
class Departed:
    """
    Someone quit the server: told instead of their C{quit} event, with
    where the user shared something with them when they quit.

    @ivar quit: the daemon's event.
    @ivar rooms: the names of the rooms joined that they were in.
    @ivar private: whether the user exchanged private messages with them
        this session (see L{ChatModel.conversations}).
    """

    quit: events.Quit
    rooms: tuple[str, ...]
    private: bool


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """
    A room's settings were told (PROTOCOL.md section 10): told instead of
    the C{room-settings} event, with what the model knew before, so that
    the change can be put in words.

    @ivar settings: the daemon's event, the settings now.
    @ivar before: the settings known before, or C{None} when none were
        told since the room was joined.
    """

    settings: events.RoomSettings
    before: events.RoomSettings | None


Change = (events.Event | Notice | ConnectionChanged | TransferChanged | RoomsChanged | UsersChanged | Departed
          | UnreadMark | SettingsChanged)
"""What an observer is told: an event from the daemon (a C{quit} as a
L{Departed}, a C{room-settings} as a L{SettingsChanged}), or a change of
the model."""

Observer = Callable[[Change], None]


@dataclass(slots=True)
class Room:
    """
    A room joined: its members by nick (as the daemon spells them), its
    topic, and how many messages from others arrived while the user looked
    at something else (L{ChatModel.look}; before any look, while the room
    was not current).
    """

    name: str
    topic: str = ""
    members: dict[str, events.UserInfo] = field(default_factory=dict)
    unread: int = 0
    last_id: int = 0
    """The highest id of the messages of this room seen: the C{history}
    replayed when it is joined again (a reconnection) is passed on without
    them."""
    replay: int | None = None
    """While the C{history} the daemon sends after a join is still to come,
    the L{last_id} when joined: only its later messages are new (an answer
    to C{/history} is passed on whole)."""
    settings: events.RoomSettings | None = None
    """The room's settings from its last C{room-settings} event
    (PROTOCOL.md section 10), or C{None}: none told, all off."""

    def is_operator(self, nick: str) -> bool:
        """
        Whether C{nick} (any case) is a member of the room with the role
        L{events.OPERATOR}, as the last C{users} and C{role} events said.
        """
        wanted = nick.lower()
        return any(n.lower() == wanted and info.role == events.OPERATOR for n, info in self.members.items())

    @property
    def invite_only(self) -> bool:
        """
        Whether the room is invite-only (only those invited may join).
        """
        return self.settings is not None and self.settings.invite_only


def _key(name: str) -> str:
    return name.lower()


class ChatModel:
    """
    The client's state, kept from events (PROTOCOL.md section 5).

    @ivar state: the connection's L{State}.
    @ivar nick: the nick the daemon registered, or the one asked for.
    @ivar welcome: the last C{welcome}, or C{None} before the first.
    @ivar secure: whether the connection is on TLS.
    @ivar rooms: the rooms joined, by lower-case name, oldest join first:
        the last is the current room, where plain lines go.
    @ivar offers: the file offers received, by offer id.
    @ivar transfers: the transfers, by the client's own number.
    @ivar rtt: the last round-trip time measured with C{/ping}, in seconds.
    @ivar last_id: the highest message id seen, in any room (each room's
        own is L{Room.last_id}, which filters the history of a join).
    @ivar conversations: the people the user exchanged private messages
        with this session, by lower-case nick, as last spelled, in the
        order the conversations began (see L{conversation_unread}).
    @ivar conversation_unread: how many private messages of each
        conversation (by lower-case nick, as L{conversations}) arrived while
        the user looked at something else; absent: none. Counted only once
        a front end calls L{look}.
    @ivar muted: the muted rooms, lower-case names with their C{#}: their
        messages never alert the user (L{chat.client.overview.notifies}).
        Kept in the client's settings by the client service.
    @ivar looking: what the user looks at, as given to L{look} in lower
        case (a C{#room}, or the nick of a private conversation); C{None}
        until a front end calls L{look}: then a room's messages are unread
        while it is not L{current}, and conversations are never unread.
    @ivar listed: the last C{rooms} event (C{/rooms}), or C{None}: the only
        counts of the server as a whole the protocol gives.
    """

    def __init__(self, nick: str = "") -> None:
        self.state = State.DISCONNECTED
        self.nick = nick
        self.welcome: events.Welcome | None = None
        self.secure = False
        self.rooms: dict[str, Room] = {}
        self.offers: dict[int, events.FileOffer] = {}
        self.transfers: dict[int, Transfer] = {}
        self.rtt: float | None = None
        self.last_id = 0
        self.conversations: dict[str, str] = {}
        self.conversation_unread: dict[str, int] = {}
        self.muted: set[str] = set()
        self.looking: str | None = None
        self.listed: events.Rooms | None = None
        self._away: set[str] = set()
        self._observers: list[Observer] = []
        self._transfer_ids = 0

    # Observers

    def observe(self, observer: Observer) -> None:
        """
        Call C{observer} with every later L{Change}, in order.
        """
        self._observers.append(observer)

    def unobserve(self, observer: Observer) -> None:
        """
        Stop calling C{observer} (a window closed).
        """
        self._observers.remove(observer)

    def _tell(self, change: Change) -> None:
        for observer in list(self._observers):
            observer(change)

    def notice(self, text: str, level: str = "info") -> None:
        """
        Tell the observers a L{Notice}: one line from the client itself.
        """
        self._tell(Notice(text, level))

    # The connection

    def set_state(self, state: State) -> None:
        """
        Record the connection's state; observers are told when it changed.
        Leaving L{State.ONLINE} forgets the members of rooms (the room list
        stays, so that they can be joined again).
        """
        if state == self.state:
            return
        self.state = state
        if state in (State.DISCONNECTED, State.CONNECTING):
            self.secure = False
            for room in self.rooms.values():
                room.members.clear()
        self._tell(ConnectionChanged(state))

    def set_secure(self, secure: bool) -> None:
        """
        Record whether the connection is on TLS.
        """
        self.secure = secure
        self._tell(ConnectionChanged(self.state))

    def set_rtt(self, seconds: float) -> None:
        """
        Record a round-trip time measured with C{/ping}, in seconds.
        """
        self.rtt = seconds
        self._tell(ConnectionChanged(self.state))

    @property
    def current(self) -> Room | None:
        """
        The current room: the one most recently joined.
        """
        return next(reversed(self.rooms.values()), None)

    def make_current(self, name: str) -> bool:
        """
        Make a joined room current, as the daemon does when it is joined
        again; its unread count goes back to zero.

        @return: whether C{name} is a room joined.
        """
        room = self.rooms.pop(_key(name), None)
        if room is None:
            return False
        room.unread = 0
        self.rooms[_key(name)] = room
        self._tell(RoomsChanged())
        return True

    def look(self, room_or_conversation: str) -> None:
        """
        Record what the user looks at now: a room (C{#name}) or the private
        conversation with a nick, any letter case. Its unread count goes
        back to zero; what the user looked at before becomes "away": the
        next message from someone else that arrives there is told after an
        L{UnreadMark}, once (until the user looks at it again and away
        again). Observers are told L{RoomsChanged}.

        Front ends call it when they show a room or conversation (Tk: on
        selection, when the current room changes, and for a conversation
        opened by C{/msg} or a click on a person). A front end that shows
        everything in one stream need not call it at all.
        """
        key = _key(room_or_conversation)
        if key != self.looking:
            if self.looking is not None:
                self._away.add(self.looking)
            self._away.discard(key)
            self.looking = key
        room = self.rooms.get(key)
        if room is not None:
            room.unread = 0
        self.conversation_unread.pop(key, None)
        self._tell(RoomsChanged())

    def _unseen(self, key: str, sender: str) -> list[Change]:
        """
        What to tell before a message from C{sender} arriving in room or
        conversation C{key}: an L{UnreadMark} when it is the first from
        someone else since the user looked away from there; else nothing.
        """
        if _key(sender) == _key(self.nick) or key not in self._away:
            return []
        self._away.discard(key)
        room = self.rooms.get(key)
        if room is not None:
            return [UnreadMark(room=room.name)]
        return [UnreadMark(conversation=self.conversations.get(key, sender))]

    def _is_unread(self, key: str, sender: str) -> bool:
        if _key(sender) == _key(self.nick):
            return False
        if self.looking is None:
            room = self.rooms.get(key)
            return room is not None and room is not self.current
        return key != self.looking

    def operator_of(self, room: str | None = None) -> bool:
        """
        Whether the user is an operator of C{room} (C{#name}, any case; the
        current room by default), as far as the daemon told: C{False} for a
        room not joined.
        """
        named = self.current if room is None else self.rooms.get(_key(room))
        return named is not None and named.is_operator(self.nick)

    def mute(self, room: str) -> bool:
        """
        Mute C{room} (C{#name}, any case): its messages no longer alert the
        user. Observers are told L{RoomsChanged}.

        @return: whether it was not muted before.
        """
        key = _key(room)
        if key in self.muted:
            return False
        self.muted.add(key)
        self._tell(RoomsChanged())
        return True

    def unmute(self, room: str) -> bool:
        """
        Unmute C{room} (C{#name}, any case). Observers are told
        L{RoomsChanged}.

        @return: whether it was muted.
        """
        key = _key(room)
        if key not in self.muted:
            return False
        self.muted.discard(key)
        self._tell(RoomsChanged())
        return True

    def forget_conversation(self, nick: str) -> bool:
        """
        Close the private conversation with C{nick} (any case): it leaves
        L{conversations} until a private message is exchanged again.
        Observers are told L{RoomsChanged}.

        @return: whether there was one.
        """
        key = _key(nick)
        if self.conversations.pop(key, None) is None:
            return False
        self.conversation_unread.pop(key, None)
        self._away.discard(key)
        self._tell(RoomsChanged())
        return True

    def forget_rooms(self) -> None:
        """
        Forget every room (a new session that will not join them again).
        """
        self.rooms.clear()
        self._tell(RoomsChanged())

    # Events

    def apply(self, event: events.Event) -> None:
        """
        Update the state from one event of the daemon, then tell the
        observers the event (a C{history} without the messages seen
        already) and what it changed.
        """
        changes: list[Change] = []
        before: list[Change] = []
        told: Change = event
        match event:
            case events.Welcome():
                self.welcome = event
            case events.Registered():
                self.nick = event.nick
                self.set_state(State.ONLINE)
            case events.Joined():
                changes += self._joined(event)
            case events.Parted():
                changes += self._parted(event.room, event.nick)
            case events.Quit():
                shared = []
                for room in self.rooms.values():
                    if room.members.pop(event.nick, None) is not None:
                        shared.append(room.name)
                        changes.append(UsersChanged(room.name))
                told = Departed(event, tuple(shared), _key(event.nick) in self.conversations)
            case events.NickChanged():
                if _key(event.old) == _key(self.nick):
                    self.nick = event.new
                elif self.conversations.pop(_key(event.old), None) is not None:
                    self._renamed(_key(event.old), _key(event.new))
                    self.conversations[_key(event.new)] = event.new
                    changes.append(RoomsChanged())
                for room in self.rooms.values():
                    info = room.members.pop(event.old, None)
                    if info is not None:
                        room.members[event.new] = replace(info, nick=event.new)
                        changes.append(UsersChanged(room.name))
            case events.StatusChanged():
                for room in self.rooms.values():
                    info = room.members.get(event.nick)
                    if info is not None:
                        room.members[event.nick] = replace(info, status=event.text)
                        changes.append(UsersChanged(room.name))
            case events.Topic():
                named = self.rooms.get(_key(event.room))
                if named is not None:
                    named.topic = event.text
                    changes.append(RoomsChanged())
            case events.Users():
                named = self.rooms.get(_key(event.room))
                if named is not None:
                    named.members = {u.nick: u for u in event.users}
                    changes.append(UsersChanged(named.name))
            case events.Message():
                named = self.rooms.get(_key(event.room))
                if named is not None:
                    named.last_id = max(named.last_id, event.id)
                    before += self._unseen(_key(named.name), event.sender)
                    if self._is_unread(_key(named.name), event.sender):
                        named.unread += 1
                        changes.append(RoomsChanged())
            case events.Private():
                other = event.to if _key(event.sender) == _key(self.nick) else event.sender
                if _key(other) != _key(self.nick):
                    key = _key(other)
                    opened = key not in self.conversations
                    self.conversations[key] = other
                    before += self._unseen(key, event.sender)
                    if self._is_unread(key, event.sender):
                        self.conversation_unread[key] = self.conversation_unread.get(key, 0) + 1
                        opened = True
                    if opened:
                        changes.append(RoomsChanged())
            case events.Kicked():
                changes += self._parted(event.room, event.nick)
            case events.RoleChanged():
                named = self.rooms.get(_key(event.room))
                if named is not None:
                    nick = next((n for n in named.members if _key(n) == _key(event.nick)), None)
                    if nick is not None:
                        named.members[nick] = replace(named.members[nick], role=event.role)
                        changes.append(UsersChanged(named.name))
            case events.RoomSettings():
                named = self.rooms.get(_key(event.room))
                told = SettingsChanged(event, named.settings if named is not None else None)
                if named is not None:
                    named.settings = event
                    changes.append(RoomsChanged())
            case events.Rooms():
                self.listed = event
            case events.FileOffer():
                self.offers[event.id] = event
            case events.History():
                told = event = self._history(event)
        if isinstance(event, (events.Message, events.Private, events.History)):
            ids = [m.id for m in event.messages] if isinstance(event, events.History) else [event.id]
            self.last_id = max([self.last_id, *ids])
        for change in before:
            self._tell(change)
        self._tell(told)
        for change in changes:
            self._tell(change)

    def _renamed(self, old: str, new: str) -> None:
        """
        Move what is kept about the conversation C{old} (lower-case nick) to
        C{new}: its unread count, whether the user looks at it or away.
        """
        count = self.conversation_unread.pop(old, None)
        if count is not None:
            self.conversation_unread[new] = count
        if old in self._away:
            self._away.discard(old)
            self._away.add(new)
        if self.looking == old:
            self.looking = new

    def _history(self, event: events.History) -> events.History:
        """
        The C{history} to pass on: the one that follows a join without the
        messages of that room seen already (after a reconnection the daemon
        replays them); an answer to C{/history} whole.
        """
        room = self.rooms.get(_key(event.room))
        if room is None:
            return event
        if room.replay is not None:
            seen, room.replay = room.replay, None
            event = events.History(event.room, tuple(m for m in event.messages if m.id > seen))
        room.last_id = max([room.last_id, *(m.id for m in event.messages)])
        return event

    def _joined(self, event: events.Joined) -> list[Change]:
        key = _key(event.room)
        if _key(event.nick) == _key(self.nick):
            room = self.rooms.pop(key, None) or Room(event.room)
            room.name = event.room
            room.unread = 0
            room.replay = room.last_id
            self.rooms[key] = room
            changed: list[Change] = [RoomsChanged()]
        else:
            found = self.rooms.get(key)
            if found is None:
                return []
            room, changed = found, []
        room.members[event.nick] = events.UserInfo(event.nick, "", 0)
        return [*changed, UsersChanged(room.name)]

    def _parted(self, name: str, nick: str) -> list[Change]:
        """
        C{nick} left the room C{name}, or was kicked from it: the room is
        forgotten when it is the user, else they leave its members.
        """
        key = _key(name)
        if _key(nick) == _key(self.nick):
            if self.rooms.pop(key, None) is None:
                return []
            self._away.discard(key)
            return [RoomsChanged()]
        room = self.rooms.get(key)
        if room is None or room.members.pop(nick, None) is None:
            return []
        return [UsersChanged(room.name)]

    # Transfers

    def add_transfer(self, kind: str, name: str, peer: str, size: int = 0, offer: int | None = None) -> Transfer:
        """
        Record a new transfer and tell the observers.
        """
        self._transfer_ids += 1
        transfer = Transfer(self._transfer_ids, kind, name, peer, size, offer=offer)
        self.transfers[transfer.id] = transfer
        self._tell(TransferChanged(transfer))
        return transfer

    def progress(self, transfer: Transfer, done: int, size: int) -> None:
        """
        C{done} of C{size} bytes of C{transfer} are through.
        """
        transfer.done, transfer.size = done, size
        self._tell(TransferChanged(transfer))

    def finish(self, transfer: Transfer, result: str = "", error: str = "") -> None:
        """
        C{transfer} ended: with C{result} (the saved path of a download),
        or failed with C{error}, one line.
        """
        transfer.finished = True
        transfer.result, transfer.error = result, error
        if not error:
            transfer.done = transfer.size
        self._tell(TransferChanged(transfer))

# -*- test-case-name: tests.test_domain_sessions -*-
"""
The rules of sessions (PROTOCOL.md sections 3 and 7): registering a nick,
changing it, logging in to an account, and quitting.
"""

from __future__ import annotations

from collections.abc import Sequence

from chat import errors, events
from chat.domain.rooms import Rooms
from chat.domain.state import LOBBY, NICK_MAX, NICK_PATTERN, STATUS_MAX, User, utc
from chat.interfaces import IParticipant, ToNeighbours
from chat.sequencer import Delivery


class Sessions(Rooms):
    """
    Users coming, renaming, logging in and going.
    """

    def register(
        self,
        participant: IParticipant,
        nick: str,
        now: float,
        account: str | None = None,
        join: bool = True,
        token: str = "",
        address: str = "",
    ) -> User:
        """
        Give a connection a nick, then join it to C{#lobby} (PROTOCOL.md
        section 3.4). Publishes C{registered} to it, then the join events.

        @param account: the lower-cased account name when the connection
            logged in (C{nick} is then the account's name), else C{None}.
        @param join: false to skip the C{#lobby} join (C{--no-join}).
        @param token: the session's bearer token, sent in C{registered} (C{''} for none).
        @param address: the client's address key, kept out with a guest's
            ban (L{chat.limits.address_key}). A user kept out of C{#lobby}
            (C{banned}, C{invite-only}) is registered all the same and gets
            the error.
        @raise errors.NickInvalid: C{nick} breaks the rules of section 3.3.
        @raise errors.NickTaken: another user has C{nick}, ignoring case.
        @raise errors.NickRegistered: C{nick} belongs to an account the
            connection is not logged in to.
        """
        self._check_nick(nick, account)
        user = User(nick, participant, now)
        user.account = account
        user.token = token
        self.users[nick.lower()] = user
        user.address = address
        self._events.publish(events.Registered(nick, account is not None, token), user.here)
        if join:
            try:
                self.join(user, LOBBY, now)
            except (errors.Banned, errors.InviteOnly) as e:
                self._events.publish(events.Error.of(e), user.here)
        return user

    def check_nick(self, nick: str, account: str | None = None) -> None:
        """
        Whether C{nick} may be taken now by a user logged in to C{account}
        (or a guest): before it is claimed across a cluster.

        @raise errors.NickInvalid: C{nick} breaks the rules of section 3.3.
        @raise errors.NickTaken: another user has C{nick}, ignoring case.
        @raise errors.NickRegistered: C{nick} belongs to another account.
        """
        self._check_nick(nick, account)

    def _check_nick(self, nick: str, account: str | None) -> None:
        if not NICK_PATTERN.match(nick):
            raise errors.NickInvalid(
                f"a nick is 1 to {NICK_MAX} characters: a letter, then letters,"
                " digits, _ or -"
            )
        key = nick.lower()
        if key in self.users:
            raise errors.NickTaken(f"{nick} is taken")
        if key in self.accounts and key != account:
            raise errors.NickRegistered(f"{nick} is a registered nick: /login {nick} PASSWORD")

    def change_nick(self, user: User, new: str, now: float) -> None:
        """
        Rename a user; publishes C{nick} to them and everyone sharing a room.

        @raise errors.NickInvalid: C{new} breaks the rules of section 3.3.
        @raise errors.NickTaken: another user has C{new}, ignoring case.
        @raise errors.NickRegistered: C{new} belongs to another account.
        """
        if new == user.nick:
            return
        if new.lower() != user.nick.lower():
            self._check_nick(new, user.account)
        elif not NICK_PATTERN.match(new):
            raise errors.NickInvalid("invalid nick")
        self._rename(user, new, now)

    def _rename(self, user: User, new: str, now: float) -> None:
        old = user.nick
        rooms = list(user.rooms.values())
        for room in rooms:
            room.remove(user)
        del self.users[old.lower()]
        user.nick = new
        self.users[new.lower()] = user
        for room in rooms:
            room.add(user)
        self._events.publish(events.NickChanged(utc(now), old, new), ToNeighbours(new.lower()))

    def login(self, user: User, name: str, now: float) -> None:
        """
        Log a registered user in to the account C{name} (its password was
        checked): they take the account's nick, and get C{registered} with
        C{account} true. Operator roles follow the account (L{_operator_on_login}).

        @raise errors.NickTaken: another connection holds the account's
            nick (the caller disconnects another session of the same
            account first).
        """
        if name.lower() != user.nick.lower():
            if name.lower() in self.users:
                raise errors.NickTaken(f"{name} is taken")
            self._rename(user, name, now)
        elif name != user.nick:
            self._rename(user, name, now)
        user.account = name.lower()
        self._events.publish(events.Registered(user.nick, True, user.token), user.here)
        self._operator_on_login(user)

    def _operator_on_login(self, user: User) -> None:
        """
        A guest who logs in keeps an operator's role as the account's (it
        is stored), and gets the roles the account holds in the rooms
        they are in (C{role} to each room).
        """
        account = user.account
        assert account is not None
        for room in user.rooms.values():
            if user in room.operators:
                if (room.name.lower(), account) not in self.operators:
                    self._store_operator(room, account, True)
            elif (room.name.lower(), account) in self.operators or self.is_admin(user):
                if not self.is_admin(user):
                    room.operators.add(user)
                self._events.publish(events.RoleChanged(room.name, user.nick, events.OPERATOR), room.to)

    def session(self, account: str) -> User | None:
        """
        The user logged in to C{account} (lower-cased name), whatever their
        nick now, or C{None}.
        """
        for user in self.users.values():
            if user.account == account:
                return user
        return None

    def reserve(self, name: str) -> None:
        """
        Reserve the nick C{name} for an account being created, so nobody
        takes it meanwhile; L{account_created} or L{release} follows.
        """
        self.accounts[name.lower()] = name

    def release(self, name: str) -> None:
        """
        Free a nick reserved for an account that could not be created.
        """
        self.accounts.pop(name.lower(), None)

    def account_created(self, name: str, user: User | None) -> None:
        """
        Record the new account C{name} (its nick is now reserved), created
        by C{user}, who is now logged in to it and gets C{registered} with
        C{account} true (their operator roles now stored with the account);
        C{None} if they left meanwhile.
        """
        key = name.lower()
        self.accounts[key] = name
        self.device_keys.pop(key, None)  # of an earlier account of that name, deleted by chat-admin
        if user is not None:
            user.account = key
            self._events.publish(events.Registered(user.nick, True, user.token), user.here)
            self._operator_on_login(user)

    def deliver_waiting(self, user: User) -> None:
        """
        Publish to a user who just logged in the private messages stored
        for them while they were away (C{offline} true), oldest first, and
        mark them delivered.
        """
        pending = self._store.waiting(user.nick)

        def deliver(messages: Sequence[events.Private]) -> Sequence[Delivery]:
            if not messages or self.users.get(user.nick.lower()) is not user:
                return ()
            # The store logs a failure; they are then delivered again next time.
            self._store.delivered([m.id for m in messages])
            count = len(messages)
            note = events.Info(f"{count} private message{'s' if count > 1 else ''} arrived while you were away")
            return [(note, user.here)] + [(m, user.here) for m in messages]

        delivering = pending.addCallback(deliver)
        self._events.publish_when(delivering.addErrback(self._unavailable, user.here, "offline messages"))

    def quit(self, user: User, reason: str, now: float) -> None:
        """
        Remove a user who disconnected; publishes C{quit} to everyone who
        shared a room with them (not to the user, whose connection is closing).
        """
        for room in list(user.rooms.values()):
            self._leave(user, room)
        del self.users[user.nick.lower()]
        self._events.publish(
            events.Quit(utc(now), user.nick, reason[:STATUS_MAX]), ToNeighbours(user.nick.lower(), itself=False)
        )

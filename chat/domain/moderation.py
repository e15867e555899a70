# -*- test-case-name: tests.test_domain_moderation -*-
"""
The rules of moderation (PROTOCOL.md section 10): operators give and take
the role, kick, ban, mute, invite and change a room's settings; server
administrators announce. Every action is logged at C{info} with who did what.
"""

from __future__ import annotations

from dataclasses import replace

from chat import errors, events
from chat.domain.rooms import Rooms
from chat.domain.state import NICK_PATTERN, STATUS_MAX, Room, User, utc
from chat.interfaces import ToUsers
from chat.storage import BanRecord, RoomFlags

SETTINGS = {"invite-only": "invite_only", "topic-lock": "topic_lock", "moderated": "moderated"}
"""The settings of C{/room}, by wire name, to the field of L{RoomFlags}."""


def _until(expires: float | None) -> str:
    """
    C{" until 2026-12-06 08:00 UTC"}, or C{" for good"} for C{None}.
    """
    if expires is None:
        return " for good"
    return f" until {utc(expires):%Y-%m-%d %H:%M} UTC"


class Moderation(Rooms):
    """
    What room operators and server administrators do.
    """

    def _operated(self, user: User, name: str | None) -> Room:
        """
        The named room (default: current), if C{user} is an operator of it.

        @raise errors.NotOperator: the user is not.
        @raise errors.NoSuchRoom: no such room.
        @raise errors.NotInRoom: no room given and the user is in none.
        """
        room = self._room(user, name)
        if not self.is_operator(user, room):
            raise errors.NotOperator(f"you are not an operator of {room.name}")
        return room

    def _member(self, room: Room, nick: str) -> User:
        """
        @raise errors.NoSuchNick: nobody with that nick is connected.
        @raise errors.NotInRoom: they are not in C{room}.
        """
        target = self._user(nick)
        if target.nick.lower() not in room.members:
            raise errors.NotInRoom(f"{target.nick} is not in {room.name}")
        return target

    def _not_admin(self, user: User, target: User, what: str) -> None:
        """
        @raise errors.NotOperator: C{target} is a server administrator and
            C{user} is not: only administrators act on administrators.
        """
        if self.is_admin(target) and not self.is_admin(user):
            raise errors.NotOperator(f"{target.nick} is a server administrator: you cannot {what} them")

    def require_admin(self, user: User, verb: str) -> None:
        """
        @raise errors.NotOperator: C{user} is not a server administrator.
        """
        if not self.is_admin(user):
            raise errors.NotOperator(f"only server administrators may /{verb}")

    def op(self, user: User, nick: str, name: str | None) -> None:
        """
        Make C{nick}, a member of the room (default: current), an operator
        of it; stored for a logged-in user. Publishes C{role} to the room.

        @raise errors.ChatError: C{not-operator}, C{no-such-nick},
            C{not-in-room}, C{no-such-room}.
        """
        room = self._operated(user, name)
        target = self._member(room, nick)
        if self.is_operator(target, room):
            self._events.publish(events.Info(f"{target.nick} is an operator of {room.name} already"), user.here)
            return
        room.operators.add(target)
        if target.account is not None:
            self._store_operator(room, target.account, True)
        self._log.info("{by} made {nick} an operator of {room}", by=user.nick, nick=target.nick, room=room.name)
        self._events.publish(events.RoleChanged(room.name, target.nick, events.OPERATOR, user.nick), room.to)

    def deop(self, user: User, nick: str, name: str | None) -> None:
        """
        Take operator status in the room (default: current) from C{nick};
        for a logged-in user, the stored role too. Publishes C{role} to the room.

        @raise errors.ChatError: C{not-operator} (also for a server
            administrator as the target), C{no-such-nick}, C{not-in-room},
            C{no-such-room}.
        """
        room = self._operated(user, name)
        target = self._member(room, nick)
        if self.is_admin(target):
            raise errors.NotOperator(f"{target.nick} is a server administrator, an operator everywhere")
        if not self.is_operator(target, room):
            self._events.publish(events.Info(f"{target.nick} is not an operator of {room.name}"), user.here)
            return
        room.operators.discard(target)
        if target.account is not None:
            self._store_operator(room, target.account, False)
        self._log.info(
            "{by} took operator status in {room} from {nick}", by=user.nick, nick=target.nick, room=room.name
        )
        self._events.publish(events.RoleChanged(room.name, target.nick, events.MEMBER, user.nick), room.to)

    def _remove(self, user: User, target: User, room: Room, reason: str, now: float) -> None:
        """
        Publish C{kick} to the room, the target included, then take the
        target out of it.
        """
        self._events.publish(events.Kicked(utc(now), room.name, target.nick, user.nick, reason), room.to)
        self._leave(target, room)

    def kick(self, user: User, nick: str, name: str | None, reason: str, now: float) -> None:
        """
        Remove C{nick} from the room (default: current): C{kick} to the
        room, the user included, who is then no longer in it.

        @raise errors.ChatError: C{not-operator} (also for a server
            administrator as the target of a non-administrator),
            C{no-such-nick}, C{not-in-room}, C{no-such-room}.
        """
        room = self._operated(user, name)
        target = self._member(room, nick)
        self._not_admin(user, target, "kick")
        self._log.info("{by} kicked {nick} from {room}", by=user.nick, nick=target.nick, room=room.name)
        self._remove(user, target, room, reason[:STATUS_MAX], now)

    def ban(self, user: User, nick: str, name: str | None, duration: float | None, reason: str, now: float) -> None:
        """
        Keep C{nick} out of the room (default: current) for C{duration}
        seconds (C{None}: for good), and kick them if they are in it: a
        logged-in user's (or a registered nick's) account, else the guest
        nick and the address it connects from. The ban is stored and
        replaces an earlier one of the same target; the banned user loses
        operator status there. The operator gets an C{info}.

        @raise errors.ChatError: C{not-operator}, C{no-such-room},
            C{not-in-room} (no room given and the operator is in none),
            C{bad-arguments} (C{nick} is not a valid nick).
        """
        room = self._operated(user, name)
        if not NICK_PATTERN.match(nick):
            raise errors.BadArguments(f"{nick} is not a nick")
        key = room.name.lower()
        target = self.users.get(nick.lower())
        if target is not None:
            self._not_admin(user, target, "ban")
            account = target.account or ""
            shown = target.nick
            guest, address = ("", "") if account else (target.nick.lower(), target.address)
        elif nick.lower() in self.accounts:
            account, guest, address, shown = nick.lower(), "", "", self.accounts[nick.lower()]
        else:
            account, guest, address, shown = "", nick.lower(), "", nick
        reason = reason[:STATUS_MAX]
        expires = None if duration is None else now + duration
        ban = BanRecord(key, account, guest, address, expires, reason, user.nick, now)
        self.bans.setdefault(key, {})[ban.target] = ban
        self._store.add_ban(ban).addErrback(
            lambda failure: self._log.failure("could not store a ban from {room}", failure, room=room.name)
        )
        if account and (key, account) in self.operators:
            self._store_operator(room, account, False)
        self._log.info(
            "{by} banned {nick} from {room}{until}", by=user.nick, nick=shown, room=room.name, until=_until(expires)
        )
        self._events.publish(events.Info(f"{shown} is banned from {room.name}{_until(expires)}"), user.here)
        if target is not None and target.nick.lower() in room.members:
            self._remove(user, target, room, reason, now)
        self._moderated(key)

    def unban(self, user: User, nick: str, name: str | None) -> None:
        """
        Lift the ban of C{nick} (a nick or an account, or the account of
        the user connected as C{nick}) from the room (default: current).

        @raise errors.ChatError: C{not-operator}, C{no-such-room},
            C{bad-arguments} (no such ban).
        """
        room = self._operated(user, name)
        key = room.name.lower()
        bans = self.bans.get(key, {})
        targets = {nick.lower()}
        connected = self.users.get(nick.lower())
        if connected is not None and connected.account is not None:
            targets.add(connected.account)
        lifted = [bans.pop(target) for target in targets if target in bans]
        if not lifted:
            raise errors.BadArguments(f"{nick} is not banned from {room.name}")
        for ban in lifted:
            self._store.remove_ban(key, ban.account, ban.nick).addErrback(
                lambda failure: self._log.failure("could not lift a ban from {room}", failure, room=room.name)
            )
        self._log.info("{by} lifted the ban of {nick} from {room}", by=user.nick, nick=nick, room=room.name)
        self._events.publish(events.Info(f"{nick} is no longer banned from {room.name}"), user.here)
        self._moderated(key)

    def list_bans(self, user: User, name: str | None, now: float) -> None:
        """
        Publish the bans in force in the room (default: current) to the
        operator as one C{info}: a first line, then one line per ban, oldest first.

        @raise errors.ChatError: C{not-operator}, C{no-such-room}, C{not-in-room}.
        """
        room = self._operated(user, name)
        bans = [
            ban for ban in self.bans.get(room.name.lower(), {}).values()
            if ban.expires is None or ban.expires > now
        ]
        if not bans:
            self._events.publish(events.Info(f"No bans in {room.name}"), user.here)
            return
        lines = [f"Bans in {room.name}:"]
        for ban in sorted(bans, key=lambda b: b.created):
            who = f"account {self.accounts.get(ban.account, ban.account)}" if ban.account else f"guest {ban.nick}"
            if ban.address:
                who += f" and address {ban.address}"
            reason = f": {ban.reason}" if ban.reason else ""
            lines.append(f"  {who}{_until(ban.expires)}, by {ban.by}{reason}")
        self._events.publish(events.Info("\n".join(lines)), user.here)

    def mute(self, user: User, nick: str, name: str | None, duration: float | None, now: float) -> None:
        """
        Keep C{nick}, a member of the room (default: current), from
        speaking there for C{duration} seconds (C{None}: until unmuted or
        the daemon restarts): they get error C{muted} when they try. Told
        to both with C{info}.

        @raise errors.ChatError: C{not-operator}, C{no-such-nick},
            C{not-in-room}, C{no-such-room}.
        """
        room = self._operated(user, name)
        target = self._member(room, nick)
        self._not_admin(user, target, "mute")
        expires = None if duration is None else now + duration
        self.mutes.setdefault(room.name.lower(), {})[self._target(target)] = expires
        self._log.info(
            "{by} muted {nick} in {room}{until}", by=user.nick, nick=target.nick, room=room.name, until=_until(expires)
        )
        self._events.publish(events.Info(f"{user.nick} muted you in {room.name}{_until(expires)}"), target.here)
        self._events.publish(events.Info(f"{target.nick} is muted in {room.name}{_until(expires)}"), user.here)
        self._moderated(room.name.lower())

    def unmute(self, user: User, nick: str, name: str | None) -> None:
        """
        Let C{nick} speak in the room (default: current) again; told to
        both with C{info}.

        @raise errors.ChatError: C{not-operator}, C{no-such-nick},
            C{not-in-room}, C{no-such-room}, C{bad-arguments} (not muted).
        """
        room = self._operated(user, name)
        target = self._member(room, nick)
        muted = self.mutes.get(room.name.lower(), {})
        if muted.pop(self._target(target), 0.0) == 0.0:
            raise errors.BadArguments(f"{target.nick} is not muted in {room.name}")
        self._log.info("{by} unmuted {nick} in {room}", by=user.nick, nick=target.nick, room=room.name)
        self._events.publish(events.Info(f"{user.nick} unmuted you in {room.name}"), target.here)
        self._events.publish(events.Info(f"{target.nick} may speak in {room.name} again"), user.here)
        self._moderated(room.name.lower())

    def room_settings(self, user: User, name: str | None, setting: str | None, on: bool) -> None:
        """
        Show the settings of the room (default: current) to anyone
        (C{setting} is C{None}), or turn one of L{SETTINGS} on or off:
        stored, and C{room-settings} published to the room.

        @raise errors.ChatError: C{not-operator} (changing), C{no-such-room},
            C{not-in-room}, C{bad-arguments} (no such setting).
        """
        if setting is None:
            room = self._room(user, name)
            flags = self.flags.get(room.name.lower(), RoomFlags())
            self._events.publish(
                events.RoomSettings(room.name, flags.invite_only, flags.topic_lock, flags.moderated), user.here
            )
            return
        if setting not in SETTINGS:
            raise errors.BadArguments(f"the settings are {', '.join(SETTINGS)}")
        room = self._operated(user, name)
        key = room.name.lower()
        flags = replace(self.flags.get(key, RoomFlags()), **{SETTINGS[setting]: on})
        self.flags[key] = flags
        self._store.set_room_flags(room.name, flags).addErrback(
            lambda failure: self._log.failure("could not store the settings of {room}", failure, room=room.name)
        )
        self._log.info(
            "{by} turned {setting} {state} in {room}", by=user.nick, setting=setting, state="on" if on else "off",
            room=room.name,
        )
        self._events.publish(
            events.RoomSettings(
                room.name, flags.invite_only, flags.topic_lock, flags.moderated, changed=setting, by=user.nick
            ),
            room.to,
        )
        self._moderated(key)

    def invite(self, user: User, nick: str, name: str | None) -> None:
        """
        Let C{nick} (connected) into the invite-only room (default:
        current) until the daemon restarts; the invitee gets an C{info}
        naming the room, the operator an acknowledgement. An invitation
        does not lift a ban.

        @raise errors.ChatError: C{not-operator}, C{no-such-nick}, C{no-such-room}.
        """
        room = self._operated(user, name)
        target = self._user(nick)
        self.invited.setdefault(room.name.lower(), set()).add(self._target(target))
        self._log.info("{by} invited {nick} to {room}", by=user.nick, nick=target.nick, room=room.name)
        self._events.publish(
            events.Info(f"{user.nick} invites you to {room.name}: /join {room.name}"), target.here
        )
        self._events.publish(events.Info(f"{target.nick} is invited to {room.name}"), user.here)
        self._moderated(room.name.lower())

    def announce(self, user: User, text: str) -> None:
        """
        Publish C{text} as an C{info} to every registered user.

        @raise errors.NotOperator: C{user} is not a server administrator.
        @raise errors.BadArguments: C{text} is blank.
        """
        self.require_admin(user, "announce")
        if not text.strip():
            raise errors.BadArguments("usage: /announce TEXT")
        self._log.info("{by} announced to {count} users", by=user.nick, count=len(self.users))
        self._events.publish(events.Info(f"Announcement from {user.nick}: {text}"), ToUsers(tuple(self.users)))

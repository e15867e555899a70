# -*- test-case-name: tests.test_domain_remote -*-
"""
The users of the other daemons of a cluster (PROTOCOL.md section 13), as
this daemon's domain knows them: L{Remote.apply_remote} follows the events
the other daemons publish (a presence, a join, a part, a kick, a quit, a
nick change, a status, a topic, a message) and keeps a replica of their
users and of their rooms' members, so that this daemon's rules see them:
a nick in use elsewhere is taken here, a room's members and history
include them, a private message reaches them (the bus carries it to their
daemon), C{/whois} finds them.

A user of another daemon is a L{User} whose participant is a
L{RemoteParticipant}: events addressed to them are delivered by their own
daemon, never here (their C{here} is their nick, L{ToUsers}, which the bus
carries to that daemon). Their daemon alone changes them; applying an event
here publishes nothing (the bus delivers that very event to this daemon's
participants). A room's moderation changed on another daemon
(L{RoomModeration}) replaces the one known here.
"""

from __future__ import annotations

from zope.interface import implementer

from chat import events
from chat.domain.rooms import Rooms
from chat.domain.state import User, utc
from chat.interfaces import IParticipant, Outgoing, ToUsers
from chat.storage import RoomModeration


@implementer(IParticipant)
class RemoteParticipant:
    """
    The stand-in of a user connected to another daemon, C{node}: delivering
    to it does nothing (their daemon delivers), closing it does nothing
    (their daemon closes them).
    """

    front_end = "remote"
    secure = False
    account: str | None = None

    def __init__(self, node: str, nick: str) -> None:
        self.node = node
        self.peer = f"node {node}"
        self.nick = nick

    def deliver(self, outgoing: Outgoing) -> None:
        """Nothing: the user's own daemon delivers to them."""

    def close(self, reason: str) -> None:
        """Nothing: the user's own daemon closes them."""


def presence(user: User) -> tuple[events.StatusChanged, ToUsers]:
    """
    The publication that tells the other daemons of a cluster that C{user}
    is connected here: their status, addressed to nobody, so that only the
    other daemons' replicas take it in (L{Remote.apply_remote}).
    """
    return events.StatusChanged(user.nick, user.status), ToUsers(())


class Remote(Rooms):
    """
    The replica of the other daemons' users (see the module's docstring).
    """

    def apply_remote(self, event: events.Event | RoomModeration, node: str, now: float) -> None:
        """
        Follow C{event}, published by the daemon C{node}, in this daemon's
        replica of the users there. Events about users of this daemon
        (a private message to one of them, a message in a room they are
        in) change nothing but a room's history. Never raises for an
        event that does not fit (a nick taken here meanwhile, an unknown
        user): it is left out.
        """
        match event:
            case events.StatusChanged(nick=nick, text=text):
                user = self._remote_user(nick, node, now)
                if user is not None:
                    user.status = text
            case events.Joined(room=name, nick=nick, ts=ts):
                self._joined_remote(name, nick, node, ts.timestamp(), event.status)
            case events.Kicked(room=name, nick=nick) if nick.lower() in self.users and nick.lower() not in self.remote:
                # A user of this daemon kicked by an operator elsewhere: out of the room here too.
                user, room = self.users[nick.lower()], self.rooms.get(name.lower())
                if room is not None and name.lower() in user.rooms:
                    self._leave(user, room)
            case events.Parted(room=name, nick=nick) | events.Kicked(room=name, nick=nick):
                self._left_remote(name, nick, node)
            case events.Quit(nick=nick):
                quitting = self._remote(nick, node)
                if quitting is not None:
                    self.forget_remote(quitting)
            case events.NickChanged(old=old, new=new):
                self._renamed_remote(old, new, node)
            case events.Topic(room=name, text=text, by=by):
                self._topic_remote(name, text, by)
            case events.FileOffer():
                if event.id not in self.offers:
                    self._offers.add(event)  # its bytes are on storage the daemons share (--spool)
            case events.RoleChanged(room=name, nick=nick, role=role):
                self._role_remote(name, nick, node, role)
            case events.Message(room=name):
                room = self.rooms.get(name.lower())
                if room is not None and room.loaded:
                    room.remember(event)
            case RoomModeration():
                self.follow_moderation(event)

    def _joined_remote(self, name: str, nick: str, node: str, when: float, status: str) -> None:
        user = self._remote_user(nick, node, when)
        if user is None:
            return
        user.status = status
        key = name.lower()
        room = self.rooms.get(key) or self._new_room(name)
        room.add(user)
        user.rooms[key] = room

    def _left_remote(self, name: str, nick: str, node: str) -> None:
        user = self._remote(nick, node)
        room = self.rooms.get(name.lower())
        if user is not None and room is not None and name.lower() in user.rooms:
            self._leave(user, room)

    def _renamed_remote(self, old: str, new: str, node: str) -> None:
        user = self._remote(old, node)
        if user is None or (new.lower() != old.lower() and new.lower() in self.users):
            return
        del self.users[old.lower()]
        del self.remote[old.lower()]
        for room in user.rooms.values():
            room.remove(user)
        user.nick = new
        user.here = ToUsers((new.lower(),))
        self.users[new.lower()] = user
        self.remote[new.lower()] = node
        for room in user.rooms.values():
            room.add(user)

    def _role_remote(self, name: str, nick: str, node: str, role: str) -> None:
        user = self._remote(nick, node)
        room = self.rooms.get(name.lower())
        if user is None or room is None or name.lower() not in user.rooms:
            return
        if role == events.OPERATOR:
            room.operators.add(user)
        else:
            room.operators.discard(user)

    def _topic_remote(self, name: str, text: str, by: str) -> None:
        room = self.rooms.get(name.lower())
        if room is not None:
            room.topic, room.topic_by = text, by
        if text:
            self.topics[name.lower()] = (name, text, by)
        else:
            self.topics.pop(name.lower(), None)

    def announce_presence(self, user: User) -> None:
        """
        Tell the other daemons of a cluster that C{user} registered here
        (L{presence}); nobody here is told.
        """
        self._events.publish(*presence(user))

    def announce_node(self, node: str) -> None:
        """
        Tell the other daemons of a cluster that this daemon, C{node}, is
        on the bus (when it starts): nobody is told, but the others answer
        with their users (L{reannounce}).
        """
        self._events.publish(events.Info(f"node {node} joined the cluster"), ToUsers(()))

    def reannounce(self) -> None:
        """
        Tell the other daemons of a cluster about every user of this one
        (a daemon that joined the cluster, or restarted, knows none of
        them): their presence and each room they are in, addressed to
        nobody, so that only the other daemons' replicas take them in.
        """
        nobody = ToUsers(())
        for key, user in list(self.users.items()):
            if key in self.remote:
                continue
            self._events.publish(*presence(user))
            for room in user.rooms.values():
                joined = events.Joined(utc(user.since), room.name, user.nick, self.account_of(user), user.status)
                self._events.publish(joined, nobody)
                if user in room.operators:
                    self._events.publish(events.RoleChanged(room.name, user.nick, events.OPERATOR), nobody)

    def node_gone(self, node: str) -> list[User]:
        """
        Forget every user of the daemon C{node} (it stopped, or lost the
        cluster): returns them, with the rooms they were in, for their
        C{quit} to be told to their neighbours here.
        """
        gone = self.remote_users(node)
        for user in gone:
            self.forget_remote(user)
        return gone

    def forget_remote(self, user: User) -> None:
        """
        Take a user of another daemon out of the replica: their rooms and
        their nick (they quit, or their daemon is gone).
        """
        for room in list(user.rooms.values()):
            self._leave(user, room)
        key = user.nick.lower()
        if self.users.get(key) is user:
            del self.users[key]
            self.remote.pop(key, None)

    def remote_users(self, node: str) -> list[User]:
        """The users of the daemon C{node} this daemon knows, in no order."""
        return [self.users[nick] for nick, where in self.remote.items() if where == node]

    def _remote(self, nick: str, node: str) -> User | None:
        """The user C{nick} of the daemon C{node}, if this daemon knows them."""
        if self.remote.get(nick.lower()) != node:
            return None
        return self.users[nick.lower()]

    def _remote_user(self, nick: str, node: str, now: float) -> User | None:
        """
        The user C{nick} of the daemon C{node}, added to the replica when
        new; C{None} when a user of another daemon (this one included) has
        that nick here.
        """
        key = nick.lower()
        user = self.users.get(key)
        if user is None:
            user = self.users[key] = User(nick, RemoteParticipant(node, nick), now)
            user.here = ToUsers((key,))  # reaches them through their daemon
            self.remote[key] = node
            return user
        return user if self.remote.get(key) == node else None

# -*- test-case-name: tests.test_delivery -*-
"""
Delivery in one process: L{LocalBus} resolves each event's address to the
participants connected here (kept by a L{Directory} that follows the
membership events in the order they are delivered) and hands each one the
event in an L{Outgoing}, which renders it at most once per format.
"""

from __future__ import annotations

from collections.abc import Callable

from zope.interface import implementer

from chat import events
from chat.counts import COUNTS
from chat.interfaces import (
    Address,
    IBus,
    IParticipant,
    Outgoing,
    ToNeighbours,
    ToParticipant,
    ToRoom,
    ToUsers,
)


class Directory:
    """
    Who is connected to this process, by nick, and in which rooms: the
    participants an address resolves to. It changes only as membership
    events pass (L{before} and L{after} each delivery), so an event reaches
    exactly the members of its room at that point of the order, whatever
    the domain has done since.
    """

    def __init__(self) -> None:
        self._participants: dict[str, IParticipant] = {}
        self._rooms: dict[str, dict[IParticipant, None]] = {}
        self._audiences: dict[str, tuple[IParticipant, ...]] = {}
        self._fan_outs: dict[str, tuple[Callable[[Outgoing], None], ...]] = {}
        self._joined: dict[str, tuple[str, ...]] = {}
        """
        The rooms of each nick (lower-cased names), of this process or
        (in a cluster) of another daemon: a tuple, which costs less memory
        than a set for few rooms.
        """

    def before(self, event: events.Event, address: Address) -> None:
        """
        Apply what must hold when C{event} is delivered: a registration, a
        newcomer to a room (who sees their own join), a new nick.
        """
        if isinstance(event, events.Joined):
            nick, room = event.nick.lower(), event.room.lower()
            participant = self._participants.get(nick)
            if participant is not None:
                self._rooms.setdefault(room, {})[participant] = None
                self._forget(room)
            # A user of another daemon of a cluster too: their neighbours here are found by their rooms.
            rooms = self._joined.get(nick, ())
            if room not in rooms:
                self._joined[nick] = (*rooms, room)
        elif isinstance(event, events.Registered) and isinstance(address, ToParticipant):
            self._participants[event.nick.lower()] = address.participant
        elif isinstance(event, events.NickChanged):
            old, new = event.old.lower(), event.new.lower()
            if old != new:
                participant = self._participants.pop(old, None)
                if participant is not None:
                    self._participants[new] = participant
                rooms = self._joined.pop(old, ())
                if rooms:
                    self._joined[new] = rooms

    def after(self, event: events.Event) -> None:
        """
        Apply what the delivery of C{event} ends: a part, a kick, a quit.
        """
        if isinstance(event, (events.Parted, events.Kicked)):
            self._leave(event.nick.lower(), event.room.lower())
        elif isinstance(event, events.Quit):
            nick = event.nick.lower()
            for room in self._joined.get(nick, ()):
                self._leave(nick, room)
            self._joined.pop(nick, None)
            self._participants.pop(nick, None)

    def _leave(self, nick: str, room: str) -> None:
        participant = self._participants.get(nick)
        members = self._rooms.get(room)
        if participant is not None and members is not None:
            members.pop(participant, None)
            self._forget(room)
            if not members:
                del self._rooms[room]
        rooms = self._joined.get(nick)
        if rooms is not None and room in rooms:
            self._joined[nick] = tuple(name for name in rooms if name != room)

    def _forget(self, room: str) -> None:
        self._audiences.pop(room, None)
        self._fan_outs.pop(room, None)

    def fan_out(self, room: str) -> tuple[Callable[[Outgoing], None], ...]:
        """
        The C{deliver} of each participant in C{room} (lower-cased), cached
        until the room changes: the path of every room message, which then
        looks up no attribute per recipient.
        """
        fan_out = self._fan_outs.get(room)
        if fan_out is None:
            fan_out = self._fan_outs[room] = tuple(participant.deliver for participant in self.audience(room))
        return fan_out

    def audience(self, room: str) -> tuple[IParticipant, ...]:
        """
        The participants in C{room} (lower-cased), cached until it changes:
        the fan-out path builds no list per message.
        """
        audience = self._audiences.get(room)
        if audience is None:
            audience = self._audiences[room] = tuple(self._rooms.get(room, ()))
        return audience

    def resolve(self, address: Address) -> tuple[IParticipant, ...] | list[IParticipant]:
        """
        The participants of this process at C{address}, each once.
        """
        if isinstance(address, ToRoom):
            return self.audience(address.room)
        if isinstance(address, ToParticipant):
            return (address.participant,)
        found: dict[IParticipant, None] = {}
        if isinstance(address, ToUsers):
            for nick in address.nicks:
                participant = self._participants.get(nick)
                if participant is not None:
                    found[participant] = None
            return list(found)
        assert isinstance(address, ToNeighbours)
        participant = self._participants.get(address.nick)
        if participant is not None and address.itself:
            found[participant] = None
        for room in self._joined.get(address.nick, ()):
            found.update(dict.fromkeys(self.audience(room)))
        if participant is not None and not address.itself:
            found.pop(participant, None)
        return list(found)


@implementer(IBus)
class LocalBus:
    """
    The bus of a single daemon: an event published is delivered right away
    to the participants of this process at its address. Each publication
    is counted for the metrics (L{chat.metrics.COUNTS}): the messages, and
    how many participants it reached.
    """

    def __init__(self, directory: Directory | None = None) -> None:
        self.directory = directory or Directory()

    def publish(self, event: events.Event, address: Address) -> None:
        self.deliver(event, address)

    def deliver(self, event: events.Event, address: Address, counted: bool = True) -> None:
        """
        Deliver C{event} to the participants of this process at C{address}.

        @param counted: count a room or private message in
            L{chat.metrics.COUNTS} (C{False}: one another daemon of a
            cluster published, and counts); deliveries are always counted.
        """
        outgoing = Outgoing(event)
        directory = self.directory
        if type(event) is events.Message and type(address) is ToRoom:
            # The fan-out path: no membership change to apply.
            fan_out = directory.fan_out(address.room)
            COUNTS.room_messages += counted
            COUNTS.deliveries += len(fan_out)
            for deliver in fan_out:
                deliver(outgoing)
            return
        directory.before(event, address)
        recipients = directory.resolve(address)
        COUNTS.deliveries += len(recipients)
        if type(event) is events.Private:
            COUNTS.private_messages += counted
        for participant in recipients:
            participant.deliver(outgoing)
        directory.after(event)

# -*- test-case-name: tests.test_interfaces -*-
"""
The seams of the daemon (ARCHITECTURE.md): what the core may do with a
connected user (L{IParticipant}), where it publishes events (L{IBus}), and
the backends a cluster would replace (L{IIdAllocator}; the store's
L{chat.storage.IStore} and the file store's L{IFileStore}), plus the
addresses events are published to.

An event is published to an I{address} (a room, some users, a user's
neighbours, or one participant), never to a list of connections: the bus
resolves the address to the participants of this process when it delivers,
so a second process can take part by delivering the same events to its own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import IO, Union

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

from chat import events

Renderer = Callable[[events.Event], bytes]
"""Turns an event into UTF-8 bytes ending in CR LF (possibly several lines, or none)."""


class Outgoing(dict[Renderer, bytes]):
    """
    One event on its way to its recipients, with its renderings:
    C{outgoing[renderer]} is the event rendered by C{renderer} (C{bytes},
    CR LF included), computed on first use and shared by every recipient
    using that format.

    @ivar event: the event (C{None} for bytes rendered already).
    """

    __slots__ = ("event",)

    def __init__(self, event: events.Event | None) -> None:
        super().__init__()
        self.event = event

    def __missing__(self, renderer: Renderer) -> bytes:
        assert self.event is not None
        data = self[renderer] = renderer(self.event)
        return data


class IParticipant(Interface):
    """
    A connected user as the core sees it, whatever the front end (line
    protocol, later WebSocket or IRC): something events are delivered to and
    that can be closed.
    """

    front_end = Attribute(
        "C{str}: the front end the user came by, for the metrics: C{'line'} (TCP or TLS), C{'web'}"
        " (WebSocket) or C{'irc'}."
    )
    nick = Attribute("C{str}: the nick once registered, else C{''}.")
    account = Attribute("C{str | None}: the lower-cased account name when logged in, else C{None}.")
    secure = Attribute("C{bool}: whether the connection is encrypted (TLS).")
    peer = Attribute(
        "C{str}: the client's address (an IP, or a UNIX socket path), the key of per-address limits."
    )

    def deliver(outgoing: Outgoing) -> None:  # noqa: N805
        """
        Send one event, rendered in the participant's own format with
        C{outgoing[renderer]}, which renders it at most once per format
        for all its recipients. Must not raise. The bus may keep the
        bound C{deliver} while the participant is in a room: it must not
        change after registration.
        """

    def close(reason: str) -> None:  # noqa: N805
        """
        Say C{bye} with C{reason} once the events delivered before are out,
        then close the connection. Called for a session taken over by
        another login, and on shutdown. Idempotent.
        """


@dataclass(frozen=True, slots=True)
class ToRoom:
    """
    Every member of C{room} (lower-cased name), as membership stands when
    the event is delivered.
    """

    room: str


@dataclass(frozen=True, slots=True)
class ToUsers:
    """
    The users with these nicks (lower-cased), each once; absent ones are skipped.
    """

    nicks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ToNeighbours:
    """
    Everyone sharing a room with C{nick} (lower-cased), each once, and the
    user too when C{itself}.
    """

    nick: str
    itself: bool = True


@dataclass(frozen=True, slots=True)
class ToParticipant:
    """
    One connection of this process: a reply to its request, or anything
    for a connection without a nick yet. Never crosses processes.
    """

    participant: IParticipant


Address = Union[ToRoom, ToUsers, ToNeighbours, ToParticipant]
"""Where an event goes."""


class IBus(Interface):
    """
    Carries published events to the participants they are addressed to: the
    in-process bus delivers directly; a cluster bus would publish to every
    daemon, each delivering to its own participants.
    """

    def publish(event: events.Event, address: Address) -> None:  # noqa: N805
        """
        Deliver C{event} to the participants at C{address}, in publication
        order, after those of every event published before. Must not raise.
        """


class INickClaims(Interface):
    """
    The nicks of a cluster's daemons (PROTOCOL.md section 13): a nick is
    claimed by one daemon at a time, across all of them
    (L{chat.cluster.claims.NickClaims}, on Redis).
    """

    def claim(nick: str) -> Deferred[bool]:  # noqa: N805
        """
        Claim C{nick} (ignoring case) for this daemon.

        @return: fires with C{True} when this daemon holds it (now or
            already), C{False} when another does; fails with
            L{chat.errors.Busy} when the cluster cannot be reached.
        """

    def release(nick: str) -> Deferred[None]:  # noqa: N805
        """
        Give C{nick} up, if this daemon holds it. Never fails.
        """


class IIdAllocator(Interface):
    """
    Allocates message and file offer ids (PROTOCOL.md section 5).
    """

    def next_id() -> int:
        """
        A new id: unique and greater than every id allocated before, across
        restarts.
        """

    def reserve_id() -> Deferred[int]:
        """
        A new id for a file offer, as L{next_id}, and greater than every
        message id stored before it, even where messages are numbered as
        they are committed (a cluster's database, one round trip): so that
        an offer sorts after the messages said before it.
        """


class IUpload(Interface):
    """
    An upload in progress in an L{IFileStore}.
    """

    size = Attribute("C{int}: the announced size, in bytes.")
    remaining = Attribute("C{int}: the bytes still expected.")

    def write(data: bytes) -> None:  # noqa: N805
        """
        Take the next C{data} (at most C{remaining} bytes) of the upload.
        """


class IFileStore(Interface):
    """
    Where offered files are kept, by their SHA-256 (PROTOCOL.md section 6).
    """

    def begin(size: int, expected: str | None = None, owner: str | None = None) -> IUpload:  # noqa: N805
        """
        Reserve C{size} bytes for an upload, checked against C{expected}
        (lower-case hex SHA-256) when given, and counted against the share
        of the quota of C{owner} (a client address, as
        L{chat.limits.address_key} gives it) when given.

        @raise chat.errors.Quota: the store has no room for it, C{owner}'s
            uploads in progress hold their share already, or the disk
            would be left with less than its reserve.
        """

    def abort(upload: IUpload) -> None:  # noqa: N805
        """
        Drop an upload in progress and free its reservation.
        """

    def commit(upload: IUpload) -> Deferred[str]:  # noqa: N805
        """
        Store a complete upload.

        @return: fires with its SHA-256 (lower-case hex) once durable; fails
            with L{chat.errors.ChecksumMismatch} when it is not the expected one.
        """

    def read(sha256: str) -> IO[bytes]:  # noqa: N805
        """
        Open a stored file for reading.

        @raise chat.errors.NoSuchFile: it is not stored.
        """

    def has(sha256: str) -> bool:  # noqa: N805
        """
        Whether a file is stored.
        """

    def collect(referenced: Collection[str]) -> int:  # noqa: N805
        """
        Delete the stored files not in C{referenced}.

        @return: the bytes freed.
        """

    def close() -> None:
        """
        Release the store's resources (a temporary directory is removed).
        """

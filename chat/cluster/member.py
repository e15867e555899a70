# -*- test-case-name: tests.test_server_cluster,tests.test_cluster_e2e -*-
"""
What a L{chat.server.ChatServer} does as one daemon of a cluster
(PROTOCOL.md section 13, docs/cluster.md): it follows the other daemons'
users from their events (through its domain's replica,
L{chat.domain.remote}), tells a daemon that appears about its own users,
makes a gone daemon's users quit, and drops a user whose nick another
daemon took. L{ClusterMember} is that part of the server; the cluster's
bus and nick claims call it (C{twistd chat --redis}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger

from chat import events
from chat.cluster.wire import Carried
from chat.domain import ChatDomain, utc
from chat.interfaces import IBus, IParticipant, ToNeighbours
from chat.session import Session


class ClusterMember:
    """
    The server's part in a cluster, a mixin of L{chat.server.ChatServer}.
    """

    domain: ChatDomain
    sessions: dict[IParticipant, Session]
    local_bus: IBus
    _log: Logger

    if TYPE_CHECKING:  # the server's

        def _now(self) -> float: ...

        def kick(self, session: Session, reason: str) -> None: ...

    def remote_event(self, event: Carried, node: str) -> None:
        """
        Called by the cluster's bus with each event another daemon
        published, before it is delivered here: the domain follows that
        daemon's users (L{chat.domain.remote.Remote.apply_remote}).
        """
        self.domain.apply_remote(event, node, self._now())

    def new_node(self, node: str, restarted: bool) -> None:
        """
        Called by the cluster's bus before the first event of a daemon
        seen here (one that started, or this daemon's first sight of it):
        this daemon's users are told to it (and the others). When it
        C{restarted}, the users of its previous run quit here first.
        """
        if restarted:
            self.node_gone(node)
        self.domain.reannounce()

    def nick_lost(self, nick: str) -> None:
        """
        Called when this daemon's claim of C{nick} was found taken by
        another daemon (Redis was unreachable longer than the lease): its
        user here is disconnected, so that the nick stays one user's.
        """
        user = self.domain.users.get(nick.lower())
        if user is None or nick.lower() in self.domain.remote:
            return
        session = self.sessions.get(user.participant)
        if session is not None:
            self.kick(session, "your nick was taken on another server while the cluster was unreachable")

    def node_gone(self, node: str, nicks: frozenset[str] = frozenset()) -> None:
        """
        Called when the daemon C{node} is gone (its heartbeat expired,
        L{chat.cluster.claims.NickClaims}): its users quit, as this daemon's
        users sharing a room with them are told.

        @param nicks: the nicks it held (unused: the replica knows its users).
        """
        gone = self.domain.node_gone(node)
        if gone:
            self._log.warn("node {node} is gone: {count} of its users quit", node=node, count=len(gone))
        now = utc(self._now())
        for user in gone:
            quit = events.Quit(now, user.nick, f"server {node} is unreachable")
            self.local_bus.publish(quit, ToNeighbours(user.nick.lower(), itself=False))

    def cluster_stats(self) -> tuple[str, str]:
        """
        The lines C{/stats} adds in a cluster (PROTOCOL.md section 13): this
        daemon's node, and the cluster's users, servers and rooms as this
        daemon knows them.
        """
        domain = self.domain
        nodes = sorted({domain.node, *domain.remote.values()})
        return f"Node: {domain.node}", (
            f"Cluster: {len(domain.users)} registered users on {len(nodes)} servers with users"
            f" ({', '.join(nodes)}), {len(domain.rooms)} rooms"
        )

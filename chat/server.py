# -*- test-case-name: tests.test_server -*-
"""
L{ChatServer}: the composition root of the chat (ARCHITECTURE.md), built
once by C{makeService}. It owns the domain, the store, the bus, accounts,
the file store, the per-address limit and the id allocator, keeps one
L{Session} per connected participant, and carries out the requests of
L{chat.commands} for every front end: a front end makes one call per
command and never touches the domain.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

import chat
from chat import commands, errors, events, logs
from chat.accounts import Account, Accounts, PasswordHasher
from chat.budget import OutputBudget
from chat.cluster.member import ClusterMember
from chat.delivery import LocalBus
from chat.domain import NICK_MAX, ChatDomain, User
from chat.ids import LocalIds
from chat.interfaces import (
    IBus,
    IFileStore,
    IIdAllocator,
    INickClaims,
    IParticipant,
)
from chat.limits import AddressCounter, address_key
from chat.memory_store import MemoryStore
from chat.session import Session
from chat.settings import Settings
from chat.spool import Spool
from chat.sqlite_store import SQLiteStore
from chat.storage import IStore, ModerationRecord
from chat.tokens import Tokens
from chat.transfers import Transfers


def _store_size(store: IStore) -> int | None:
    """
    The bytes of an SQLite store's database and its write-ahead log, or
    C{None} for a store in memory.
    """
    if not isinstance(store, SQLiteStore):
        return None
    total = 0
    for path in (store.path, store.path + "-wal"):
        try:
            total += os.path.getsize(path)
        except OSError:
            pass
    return total


class ChatServer(Transfers, ClusterMember):
    """
    Every front end's way into the chat.

    Replies and refusals are events sent to the requesting session, in
    order after what was published before; a request that completes later
    (a password check, say) returns a L{Deferred} that fires when it is
    done and never fails: its refusal is sent as an C{error} event too.
    """

    _log = Logger()

    def __init__(
        self,
        settings: Settings,
        clock: IReactorTime,
        store: IStore | None = None,
        accounts: Accounts | None = None,
        files: IFileStore | None = None,
        bus: IBus | None = None,
        ids: IIdAllocator | None = None,
    ) -> None:
        """
        @param store: where history and accounts live; in memory if C{None}.
        @param accounts: account requests over C{store}; by default with an
            argon2id L{PasswordHasher} on threads, so C{clock} must then be
            a reactor.
        @param files: where offered files live; by default a temporary
            directory, made on first use.
        @param bus: where events go; the in-process L{LocalBus} by default.
        @param ids: the id allocator; by default counting from the store's last id.
        """
        self.settings = settings
        self.clock = clock
        self.store = store or MemoryStore()
        self.bus = bus or LocalBus()
        self.ids = ids or LocalIds(self.store.last_id())
        self.domain = ChatDomain(self.bus, self.store, self.ids, settings.history_on_join)
        self.accounts = accounts or Accounts(self.store, PasswordHasher(cast(Any, clock)), clock)
        self._files = files
        self.sessions: dict[IParticipant, Session] = {}
        self._addresses = AddressCounter(settings.max_per_ip)
        self.output_budget = OutputBudget(settings.max_output_total)
        """The bound on output queued for all connections of every front end together."""
        self._drained: Deferred[None] | None = None
        self.tokens = Tokens()
        """The bearer tokens of the HTTP file routes, issued when C{settings.web} (PROTOCOL.md section 9)."""
        self.web_ports: list[tuple[int, bool]] = []
        """The C{(port, secure)} of each C{--web} listener listening (L{web_listening})."""
        self.claims: INickClaims | None = None
        """The nicks claimed across a cluster's daemons (C{--redis}), or C{None} for a single daemon."""
        self.cluster = False
        """Whether other daemons share the chat (C{--redis}, PROTOCOL.md section 13): registrations are announced."""
        self.local_bus: IBus = self.bus
        """Where the events of this daemon alone go (the quits of another daemon's users when it is gone)."""
        self._requests: dict[type, Callable[[Session, Any], Deferred[None] | None]] = {
            commands.Say: self._say,
            commands.Help: lambda session, r: self.tell(session, events.Info(commands.help_text(r.topic))),
            commands.Nick: self._nick,
            commands.Msg: self._msg,
            commands.Join: lambda session, r: self.domain.join(self._user(session), r.room, self._now()),
            commands.Part: lambda session, r: self.domain.part(self._user(session), r.room, r.reason, self._now()),
            commands.ListRooms: lambda session, r: self.domain.list_rooms(self._user(session)),
            commands.ListUsers: lambda session, r: self.domain.list_users(self._user(session), r.room, self._now()),
            commands.Whois: lambda session, r: self.domain.whois(self._user(session), r.nick, self._now()),
            commands.Who: lambda session, r: self.domain.who(self._user(session), r.masks, self._now()),
            commands.Status: lambda session, r: self.domain.set_status(self._user(session), r.text),
            commands.Topic: lambda session, r: self.domain.topic(self._user(session), r.room, r.text),
            commands.History: lambda session, r: (
                self.domain.history(self._user(session), r.count, r.room, r.before, r.after, r.since, r.until)
                if r.nick is None
                else self.domain.private_history(self._user(session), r.count, r.nick, r.before)
            ),
            commands.Register: self._register,
            commands.Login: self._login,
            commands.Password: self._password,
            commands.Files: lambda session, r: self.domain.list_offers(self._user(session), self._now()),
            commands.Ping: lambda session, r: self.tell(session, events.Pong(r.token)),
            commands.Op: lambda session, r: (self.domain.op if r.operator else self.domain.deop)(
                self._user(session), r.nick, r.room
            ),
            commands.Kick: lambda session, r: self.domain.kick(
                self._user(session), r.nick, r.room, r.reason, self._now()
            ),
            commands.Ban: lambda session, r: self.domain.ban(
                self._user(session), r.nick, r.room, r.duration, r.reason, self._now()
            ),
            commands.Unban: lambda session, r: self.domain.unban(self._user(session), r.nick, r.room),
            commands.Bans: lambda session, r: self.domain.list_bans(self._user(session), r.room, self._now()),
            commands.Mute: lambda session, r: self.domain.mute(
                self._user(session), r.nick, r.room, r.duration, self._now()
            ),
            commands.Unmute: lambda session, r: self.domain.unmute(self._user(session), r.nick, r.room),
            commands.RoomSet: lambda session, r: self.domain.room_settings(
                self._user(session), r.room, r.setting, r.on
            ),
            commands.Invite: lambda session, r: self.domain.invite(self._user(session), r.nick, r.room),
            commands.Kill: self._kill,
            commands.Announce: lambda session, r: self.domain.announce(self._user(session), r.text),
            commands.Stats: self._stats,
            commands.Emsg: self._emsg,
            commands.PublishKey: lambda session, r: self.domain.publish_key(self._user(session), r.bundle, self._now()),
            commands.RemoveKey: lambda session, r: self.domain.remove_key(self._user(session), r.device),
            commands.ListKeys: lambda session, r: self.domain.list_keys(self._user(session), r.nick),
        }
        self.started = clock.seconds()
        """When the server started, POSIX seconds (for C{/stats})."""
        self._said: deque[float] = deque()
        """When each room or private message of the last minute was sent, POSIX seconds."""

    @property
    def files(self) -> IFileStore:
        """
        The offered files' store.
        """
        if self._files is None:
            self._files = Spool.in_temporary_directory(self.settings.spool_quota)
        return self._files

    def _now(self) -> float:
        return self.clock.seconds()

    @staticmethod
    def _user(session: Session) -> User:
        user = session.user
        if user is None:
            raise errors.NotRegistered("choose a nick first: /nick NAME")
        return user

    # Sessions

    def welcome(self, registered: bool) -> events.Welcome:
        """
        The C{welcome} event of this server (PROTOCOL.md section 3.1).
        """
        settings = self.settings
        return events.Welcome(
            settings.server_name,
            chat.__version__,
            settings.motd,
            events.Limits(settings.max_line, NICK_MAX, settings.max_file),
            registered,
        )

    def connect(self, participant: IParticipant, local: bool) -> Session:
        """
        Start the session of a new connection. When its address is over the
        per-address limit (C{--max-connections-per-ip}; IPv6 addresses
        counted per network of C{--ipv6-prefix} bits, see L{address_key})
        the session is not C{allowed}: the front end closes it (and still
        calls L{disconnect}). Refusals are summarised in the log (at most
        one line a minute per address, L{chat.limits.RefusalLog}).
        """
        session = self.sessions[participant] = Session(participant, local)
        session.allowed = self._addresses.add(address_key(participant.peer, self.settings.ipv6_prefix), self._now())
        return session

    def disconnect(self, session: Session, reason: str) -> None:
        """
        End a session whose connection is gone: its user quits with
        C{reason} (others see C{quit}).
        """
        user = session.user
        if user is not None:
            self.tokens.ended(session, user.nick, user.rooms, self._now())
            self.domain.quit(user, reason, self._now())
            if self.claims is not None:
                self.claims.release(user.nick)
            if logs.debugging:
                self._log.debug("{nick} quit", nick=user.nick)
            session.user = None
        else:
            self.tokens.forget(session)  # issued for a /nick or /login that was refused
        self._addresses.remove(address_key(session.participant.peer, self.settings.ipv6_prefix), self._now())
        self.sessions.pop(session.participant, None)
        if not self.sessions and self._drained is not None:
            drained, self._drained = self._drained, None
            drained.callback(None)

    def tell(self, session: Session, event: events.Event) -> None:
        """
        Send C{event} to one session, after the events published before it.
        """
        self.domain.tell(session.participant, event)

    def then(self, action: Callable[[], object]) -> None:
        """
        Call C{action} once every event published so far is delivered (to
        close a connection after its last events, say).
        """
        self.domain.then(action)

    def kick(self, session: Session, reason: str) -> None:
        """
        Remove a session's user now (others see it quit with C{reason}),
        then close its connection.
        """
        user = session.user
        if user is not None:
            self.tokens.ended(session, user.nick, user.rooms, self._now())
            self.domain.quit(user, reason, self._now())
            if self.claims is not None:
                self.claims.release(user.nick)
            session.user = None
        session.participant.close(reason)

    def shutdown(self, reactor: IReactorTime, reason: str = "server shutting down") -> Deferred[None]:
        """
        Close every session with C{bye}.

        @return: fires once all are disconnected, or after
            C{settings.shutdown_timeout} seconds (each front end cuts off
            what is still open by then).
        """
        if not self.sessions:
            return succeed(None)
        self._log.info("saying goodbye to {count} connections", count=len(self.sessions))
        drained: Deferred[None] = Deferred()
        self._drained = drained
        for session in list(self.sessions.values()):
            session.participant.close(reason)

        def timed_out(result: object, timeout: float) -> None:
            self._drained = None

        drained.addTimeout(self.settings.shutdown_timeout, reactor, onTimeoutCancel=timed_out)
        return drained

    # Requests

    def execute(self, session: Session, request: commands.Request) -> Deferred[None] | None:
        """
        Carry out one request of a session (PROTOCOL.md section 4). A
        refusal is sent to the session as an C{error} event.

        @param request: anything but the front end's own requests
            (C{Format}, C{StartTLS}, C{Upload}, C{Download}, C{Quit}).
        @return: C{None} when done, or a L{Deferred} that fires (never
            fails) when a request that completes later is done; the
            front end reads the session's next line after it.
        """
        try:
            pending = self._requests[type(request)](session, request)
        except errors.ChatError as e:
            self.tell(session, events.Error.of(e))
            return None
        if pending is None:
            return None
        return pending.addErrback(self._failed, session)

    def _failed(self, failure: Failure, session: Session) -> None:
        if isinstance(failure.value, errors.ChatError):
            self.tell(session, events.Error.of(failure.value))
            return
        self._log.failure("request from {peer} failed", failure, peer=session.participant.peer)
        self.tell(session, events.Error(errors.Busy.code, "the server could not do that now; try again later"))

    def _say(self, session: Session, request: commands.Say) -> None:
        now = self._now()
        self.domain.say(self._user(session), request.text, now, request.action, request.room, request.notice)
        self._count_message(now)

    def _msg(self, session: Session, request: commands.Msg) -> None:
        now = self._now()
        self.domain.private(
            self._user(session), request.nick, request.text, now, request.action, notice=request.notice
        )
        self._count_message(now)

    def _emsg(self, session: Session, request: commands.Emsg) -> None:
        limit = self.settings.max_line
        if len(request.envelope) > limit:
            raise errors.BadArguments(f"ENVELOPE is at most {limit} characters, the longest line")
        now = self._now()
        self.domain.private(self._user(session), request.nick, "", now, e2e=request.envelope)
        self._count_message(now)

    def _count_message(self, now: float) -> None:
        self._said.append(now)
        self._forget_messages(now)

    def _forget_messages(self, now: float) -> None:
        said = self._said
        while said and said[0] <= now - 60:
            said.popleft()

    # Moderation (PROTOCOL.md section 10)

    def _address(self, session: Session) -> str:
        return address_key(session.participant.peer, self.settings.ipv6_prefix)

    def _kill(self, session: Session, request: commands.Kill) -> None:
        user = self._user(session)
        self.domain.require_admin(user, "kill")
        target = self.domain.users.get(request.nick.lower())
        victim = None if target is None else self.sessions.get(target.participant)
        if target is None or victim is None:
            raise errors.NoSuchNick(f"{request.nick} is not connected")
        self._log.info("{by} killed {nick}: {reason}", by=user.nick, nick=target.nick, reason=request.reason)
        self.tell(session, events.Info(f"{target.nick} is disconnected"))
        self.kick(victim, request.reason)

    def stats(self) -> str:
        """
        The text of C{/stats}: uptime, connections (and registered users),
        rooms, messages (room and private) in the last minute, and the
        store's size on disk, one per line; in a cluster also
        L{cluster_stats}.
        """
        now = self._now()
        self._forget_messages(now)
        uptime = int(now - self.started)
        days, rest = divmod(uptime, 86400)
        hours, rest = divmod(rest, 3600)
        size = _store_size(self.store)
        domain = self.domain
        here = len(domain.users) - len(domain.remote)
        lines = [
            f"Uptime: {days}d {hours:02d}h {rest // 60:02d}m ({uptime} s)",
            f"Connections: {len(self.sessions)} ({here} registered users)",
            f"Rooms: {len(domain.rooms)}",
            f"Messages in the last minute: {len(self._said)}",
            "Store: in memory" if size is None else f"Store: {size} bytes on disk",
        ]
        if self.cluster:
            node, cluster = self.cluster_stats()
            lines.insert(1, node)
            lines.append(cluster)
        return "\n".join(lines)

    def _stats(self, session: Session, request: commands.Stats) -> None:
        self.domain.require_admin(self._user(session), "stats")
        self.tell(session, events.Info(self.stats()))

    def reload_moderation(self) -> Deferred[None]:
        """
        Read the administrators, operators of accounts, bans and room
        settings from the store again, so that changes made by C{chat-admin}
        while the daemon runs (C{grant-admin}, C{revoke-admin}) take effect
        (on C{SIGHUP}). Who is an operator in a room now does not change,
        and nobody is kicked.

        @return: fires once loaded; fails (the old ones staying) when the
            store cannot be read.
        """
        def loaded(record: ModerationRecord) -> None:
            self.domain.load_moderation(record)
            self._log.info(
                "moderation reloaded: {admins} administrators, {bans} bans",
                admins=len(record.admins), bans=len(record.bans),
            )

        return self.store.read_moderation().addCallback(loaded)

    def _nick(self, session: Session, request: commands.Nick) -> Deferred[None] | None:
        """
        C{/nick}: in a cluster, the nick is claimed across its daemons
        first (L{NickClaims}); a change of case only is not.
        """
        claims = self.claims
        user = session.user
        if claims is None or (user is not None and user.nick.lower() == request.nick.lower()):
            self._set_nick(session, request)
            return None
        self.domain.check_nick(request.nick, None if user is None else user.account)
        old = None if user is None else user.nick

        def claimed(ok: bool) -> None:
            if not ok:
                raise errors.NickTaken(f"{request.nick} is taken")
            if session.closing or session.participant not in self.sessions:
                claims.release(request.nick)
                return
            try:
                self._set_nick(session, request)
            except errors.ChatError:
                claims.release(request.nick)
                raise
            if old is not None:
                claims.release(old)

        return claims.claim(request.nick).addCallback(claimed)

    def _set_nick(self, session: Session, request: commands.Nick) -> None:
        if session.user is None:
            session.user = self.domain.register(
                session.participant, request.nick, self._now(), join=request.join, token=self._token(session),
                address=self._address(session),
            )
            if self.cluster:
                self.domain.announce_presence(session.user)
            if logs.debugging:
                self._log.debug("{peer} registered as {nick}", peer=session.participant.peer, nick=request.nick)
        else:
            old = session.user.nick
            self.domain.change_nick(session.user, request.nick, self._now())
            self._log.debug("{old} is now {new}", old=old, new=session.user.nick)

    def _token(self, session: Session) -> str:
        """
        The session's bearer token when the daemon has a web listener, else C{''}.
        """
        return self.tokens.issue(session) if self.settings.web else ""

    # Accounts (PROTOCOL.md sections 3.3 and 7)

    def _require_private_channel(self, session: Session) -> None:
        """
        @raise errors.AuthNeedsTLS: a password would cross the network in
            clear text: plain TCP, not from this machine, and the operator
            did not allow it (C{--allow-plaintext-auth}).
        """
        if session.participant.secure or session.local or self.settings.allow_plaintext_auth:
            return
        raise errors.AuthNeedsTLS(
            "passwords are accepted only over TLS (or from this machine): connect with TLS or use /starttls"
        )

    def _register(self, session: Session, request: commands.Register) -> Deferred[None]:
        user = self._user(session)
        domain = self.domain
        if user.account is not None:
            raise errors.NickRegistered(f"you are logged in to the account {domain.accounts[user.account]} already")
        if user.nick.lower() in domain.accounts:
            raise errors.NickRegistered(
                f"{user.nick} is registered already: /login {user.nick} PASSWORD if it is yours, else /nick NAME"
            )
        self._require_private_channel(session)
        nick = user.nick
        domain.reserve(nick)

        def created(_: None) -> None:
            self._log.info("{peer} registered the account {nick}", peer=session.participant.peer, nick=nick)
            domain.account_created(nick, user if session.user is user else None)
            self.tell(session, events.Info(f"Account {nick} created: from now on log in with /login {nick} PASSWORD"))

        def failed(failure: Failure) -> Failure:
            if not failure.check(errors.NickRegistered):  # someone else's account: keep it reserved
                domain.release(nick)
            return failure

        creating: Deferred[None] = self.accounts.create(nick, request.password, self._now())
        return creating.addCallbacks(created, failed)

    def _login(self, session: Session, request: commands.Login) -> Deferred[None]:
        self._require_private_channel(session)
        checking: Deferred[Account] = self.accounts.login(
            request.nick, request.password, address_key(session.participant.peer, self.settings.ipv6_prefix)
        )
        return checking.addCallback(self._logged_in, session, request.join)

    def _logged_in(self, account: Account, session: Session, join: bool) -> Deferred[None] | None:
        """
        The password was right: in a cluster, the account's nick is
        claimed across its daemons first (it may be connected on another).
        """
        claims = self.claims
        user = session.user
        if claims is None or (user is not None and user.nick.lower() == account.name.lower()):
            self._log_in(account, session, join)
            return None
        old = None if user is None else user.nick

        def claimed(ok: bool) -> None:
            if not ok:
                raise errors.NickTaken(f"{account.name} is connected to another server of this chat")
            if session.closing or session.participant not in self.sessions:
                claims.release(account.name)
                return
            self._log_in(account, session, join)
            if old is not None:
                claims.release(old)

        return claims.claim(account.name).addCallback(claimed)

    def _log_in(self, account: Account, session: Session, join: bool) -> None:
        if session.closing or session.participant not in self.sessions:
            return  # gone meanwhile
        domain = self.domain
        key = account.name.lower()
        holder = domain.session(key)
        if holder is not None and holder is not session.user:
            self.kick(self.sessions[holder.participant], "you logged in from another connection")
        now = self._now()
        if session.user is None:
            session.user = domain.register(
                session.participant, account.name, now, account=key, join=join, token=self._token(session),
                address=self._address(session),
            )
            if self.cluster:
                domain.announce_presence(session.user)
        else:
            domain.login(session.user, account.name, now)
        self._log.debug("{peer} logged in as {nick}", peer=session.participant.peer, nick=account.name)
        domain.deliver_waiting(session.user)
        domain.announce_offers(session.user, now)

    def _password(self, session: Session, request: commands.Password) -> Deferred[None]:
        user = self._user(session)
        if user.account is None:
            raise errors.AuthFailed("you are not logged in: /register or /login first")
        self._require_private_channel(session)
        name = self.domain.accounts.get(user.account, user.account)
        changed: Deferred[None] = self.accounts.change_password(
            name, request.old, request.new, address_key(session.participant.peer, self.settings.ipv6_prefix)
        )
        return changed.addCallback(lambda _: self.tell(session, events.Info("Your password is changed")))

    # Operations (PROTOCOL.md section 12)

    def reconfigure(self, settings: Settings) -> None:
        """
        Put new settings in force without dropping a connection (SIGHUP
        with C{--config}, L{chat.service.ChatService.reload_settings}).

        What is read when used takes effect at once for every connection:
        the message of the day and server name (in the next C{welcome}),
        the longest line, the per-address connection limit, the largest
        file, the offers' lifetime, C{--allow-plaintext-auth}, the timeouts
        started from now on, and the output bound of all connections
        together. The flood limit and the output bound of one connection
        are set when a connection is made: connections made from now on
        get the new ones.

        @param settings: the new settings; the caller keeps those that need
            a restart (the data, the listeners, C{--ipv6-prefix}) as they are.
        """
        from chat.participant import SessionParticipant

        self.settings = settings
        self._addresses.limit = settings.max_per_ip
        self.output_budget.limit = settings.max_output_total
        self.output_budget.floor = settings.max_output_total - settings.max_output_total // 8
        for participant in self.sessions:
            if isinstance(participant, SessionParticipant):
                participant.settings = settings

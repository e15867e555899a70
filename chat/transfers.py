# -*- test-case-name: tests.test_server,tests.test_web_files,tests.test_protocol_files -*-
"""
The file transfers of L{chat.server.ChatServer} (PROTOCOL.md sections 6
and 9): uploads and downloads by the line protocol's raw mode, and by the
web listener's HTTP routes with a session's bearer token. L{Transfers} is
the part of the server that does them; L{Incoming} is an upload in
progress.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IAddress
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat import commands, errors, events
from chat.domain import ChatDomain, User, utc
from chat.interfaces import IFileStore, IParticipant, IUpload
from chat.limits import address_key
from chat.session import Session
from chat.settings import Settings
from chat.spool import display_name
from chat.tokens import Bearer, Tokens


class Incoming:
    """
    An upload a session is sending (PROTOCOL.md section 6): its id, the
    target as the server spells it, its display name and its bytes so far.
    The id comes from L{IIdAllocator.reserve_id}: at once, or after a
    round trip to a cluster's database (C{0} until then, see L{numbered}).
    """

    __slots__ = ("id", "to", "name", "upload", "_refused", "_waiting")

    def __init__(self, numbering: Deferred[int], to: str, name: str, upload: IUpload) -> None:
        self.id = 0
        self.to = to
        self.name = name
        self.upload = upload
        self._refused: Failure | None = None
        self._waiting: list[Deferred[int]] = []
        numbering.addCallbacks(self._numbered, self._not_numbered)

    def numbered(self) -> Deferred[int]:
        """
        Fires with the id once it has come; fails when it could not be had.
        """
        if self.id:
            return succeed(self.id)
        if self._refused is not None:
            return fail(self._refused)
        waiting: Deferred[int] = Deferred()
        self._waiting.append(waiting)
        return waiting

    def _numbered(self, id_: int) -> None:
        self.id = id_
        waiting, self._waiting = self._waiting, []
        for done in waiting:
            done.callback(id_)

    def _not_numbered(self, failure: Failure) -> None:
        self._refused = failure
        waiting, self._waiting = self._waiting, []
        for done in waiting:
            done.errback(failure)


class Transfers:
    """
    The file transfers of a L{chat.server.ChatServer}, a mixin of it.
    """

    domain: ChatDomain
    settings: Settings
    sessions: dict[IParticipant, Session]
    tokens: Tokens
    web_ports: list[tuple[int, bool]]
    _log: Logger

    if TYPE_CHECKING:  # the server's

        @property
        def files(self) -> IFileStore: ...

        def _now(self) -> float: ...

        @staticmethod
        def _user(session: Session) -> User: ...

        def tell(self, session: Session, event: events.Event) -> None: ...

        def _failed(self, failure: Failure, session: Session) -> None: ...

    # Files (PROTOCOL.md section 6)

    def begin_upload(self, session: Session, request: commands.Upload, announce: bool = True) -> Incoming:
        """
        Accept an upload: its bytes are then written to the returned
        L{Incoming}'s C{upload} by the front end, which calls
        L{finish_upload} after the last. Sends C{upload-ready} when C{announce}
        (raw mode; an HTTP upload answers with its response instead).

        The upload counts against the share of the file store's quota of
        the session's client address (L{chat.spool.SHARE_DIVISOR}; IPv6
        addresses per network, L{address_key}), and against the disk
        reserve (C{--disk-reserve}).

        @raise errors.ChatError: refused (C{not-in-room}, C{no-such-room},
            C{no-such-nick}, C{file-too-large}, C{quota}, C{busy}).
        """
        user = self._user(session)
        to = self.domain.upload_target(user, request.target)
        limit = self.settings.max_file
        if request.size > limit:
            raise errors.FileTooLarge(f"a file is at most {limit} bytes on this server, not {request.size}")
        owner = address_key(session.participant.peer, self.settings.ipv6_prefix)
        upload = self.files.begin(request.size, request.sha256, owner=owner)
        incoming = Incoming(self.domain.offer_id(), to, display_name(request.name), upload)
        if announce:
            # With a cluster's database, once the id has come (C{busy} if it cannot).
            incoming.numbered().addCallbacks(
                lambda id_: self.tell(session, events.UploadReady(id_, incoming.name, request.size)),
                self._failed, errbackArgs=(session,),
            )
        return incoming

    def finish_upload(self, session: Session, incoming: Incoming) -> Deferred[None]:
        """
        Store a complete upload, then offer it: C{upload-done} to the
        uploader, C{file-offer} to the target.

        @return: fires (never fails) once done; a refusal (C{checksum-mismatch},
            C{busy}) is sent as an C{error} event.
        """
        storing = self._store_upload(session, incoming)
        return storing.addCallback(lambda _: None).addErrback(self._failed, session)

    def _store_upload(self, session: Session, incoming: Incoming) -> Deferred[events.FileOffer]:
        """
        Store a complete upload, then offer it.

        @return: fires with the offer; fails when it could not be stored,
            or with L{errors.Busy} when the uploader left meanwhile.
        """
        upload = incoming.upload

        def offer(sha256: str) -> events.FileOffer:
            user = session.user
            if user is None:
                raise errors.Busy("the uploader left before the file was stored")
            expires = utc(self._now() + self.settings.file_ttl)
            offer = events.FileOffer(incoming.id, user.nick, incoming.to, incoming.name, upload.size, sha256, expires)
            self.domain.offer(user, offer)
            self._log.debug(
                "{nick} offered {size} bytes (id {id}) to {to}",
                nick=user.nick, size=upload.size, id=incoming.id, to=incoming.to,
            )
            return offer

        def commit(_: int) -> Deferred[str]:
            return self.files.commit(upload)

        storing: Deferred[str] = incoming.numbered().addCallback(commit)
        return storing.addCallback(offer)

    def abort_upload(self, incoming: Incoming) -> None:
        """
        Drop an upload whose sender left before its last byte.
        """
        self.files.abort(incoming.upload)

    def open_download(self, session: Session, request: commands.Download) -> tuple[events.FileHeader, IO[bytes]]:
        """
        Open an offered file for C{/download}, positioned at the request's offset.

        @return: the C{file} event announcing the bytes, and the file.
        @raise errors.NoSuchFile: not offered to this user, or no longer stored.
        @raise errors.BadArguments: the offset is past the file's end.
        """
        offer = self.domain.find_offer(self._user(session), request.id, self._now())
        if request.offset > offer.size:
            raise errors.BadArguments(f"OFFSET is 0 to {offer.size}, the file's size")
        source = self.files.read(offer.sha256)
        source.seek(request.offset)
        return events.FileHeader(offer.id, offer.name, offer.size, request.offset, offer.sha256), source

    # The HTTP file routes (PROTOCOL.md section 9)

    def web_listening(self, address: IAddress, secure: bool) -> None:
        """
        Called by a C{--web} listener once it listens on C{address}, with
        TLS when C{secure}: where L{file_link} points (a TCP port; other
        addresses are not linked to).
        """
        if isinstance(address, (IPv4Address, IPv6Address)):
            self.web_ports.append((address.port, secure))

    def file_link(self, offer: int, token: str, host: str) -> str:
        """
        The HTTP link to offer C{offer}'s bytes for the holder of C{token}
        (C{GET /files/ID?token=TOKEN}, PROTOCOL.md section 9), for the
        front ends that cannot fetch files otherwise (IRC, section 14):
        under the first C{--web-origin} when there is one (the public
        address behind a proxy), else on the first web listener at
        C{host}, the address the client reached this daemon on.

        @param host: an IP address or host name (an IPv6 one is bracketed).
        @return: an C{http} or C{https} URL, or C{''} without a web
            listener or without a token.
        """
        if not token:
            return ""
        if self.settings.web_origins:
            base = self.settings.web_origins[0].rstrip("/")
        elif self.web_ports:
            port, secure = self.web_ports[0]
            shown = f"[{host}]" if ":" in host else host
            base = f"{'https' if secure else 'http'}://{shown}:{port}"
        else:
            return ""
        return f"{base}/files/{offer}?token={token}"

    def bearer(self, token: str) -> Bearer:
        """
        Who a bearer token of the HTTP file routes stands for.

        @raise errors.AuthFailed: no such token, or its session ended more
            than L{chat.tokens.GRACE} seconds ago.
        """
        bearer = self.tokens.find(token, self._now()) if token else None
        if bearer is None:
            raise errors.AuthFailed("no valid token: log in on the web page (or reconnect) for a new one")
        return bearer

    def _live(self, bearer: Bearer) -> Session:
        session = bearer.session
        if not isinstance(session, Session) or session.user is None or session.closing:
            raise errors.AuthFailed("this token's session has ended: uploads need a connected session")
        return session

    def reserve_upload(self, bearer: Bearer, size: int) -> tuple[Session, IUpload]:
        """
        Reserve room for an upload of C{size} bytes by HTTP (C{POST /files})
        from the bearer's live session, before any byte is stored: the size
        limit and the quota are checked as for C{/upload}.

        @raise errors.ChatError: refused: C{auth-failed} when the session has
            ended, C{file-too-large}, C{quota}.
        """
        session = self._live(bearer)
        limit = self.settings.max_file
        if size > limit:
            raise errors.FileTooLarge(f"a file is at most {limit} bytes on this server, not {size}")
        owner = address_key(session.participant.peer, self.settings.ipv6_prefix)
        return session, self.files.begin(size, None, owner=owner)

    def offer_upload(self, session: Session, upload: IUpload, target: str, name: str) -> Deferred[events.FileOffer]:
        """
        Offer a complete upload by HTTP to C{target} (a nick, or a room the
        uploader is in): stored, then C{upload-done} to the uploader and
        C{file-offer} to the target, as for raw mode.

        @return: fires with the offer once stored; fails with a
            L{errors.ChatError} (C{busy}) when it could not be. The caller
            drops the upload when this raises.
        @raise errors.ChatError: the target is refused (C{no-such-nick},
            C{no-such-room}, C{not-in-room}).
        """
        to = self.domain.upload_target(self._user(session), target)
        incoming = Incoming(self.domain.offer_id(), to, display_name(name), upload)
        return self._store_upload(session, incoming)

    def open_http_download(
        self, bearer: Bearer, offer_id: int, offset: int
    ) -> tuple[events.FileOffer, IO[bytes]]:
        """
        Open an offered file for C{GET /files/ID} from byte C{offset}: the
        same access rules as C{/download}, for a live session or one that
        ended within the token's grace.

        @return: the offer, and the file positioned at C{offset}.
        @raise errors.NoSuchFile: not offered to the bearer, or no longer stored.
        @raise errors.BadArguments: C{offset} is past the file's end.
        """
        now = self._now()
        session = bearer.session
        if isinstance(session, Session) and session.user is not None:
            offer = self.domain.find_offer(session.user, offer_id, now)
        else:
            offer = self.domain.find_offer_for(bearer.nick, bearer.rooms, offer_id, now)
        if offset > offer.size:
            raise errors.BadArguments(f"the file has {offer.size} bytes")
        source = self.files.read(offer.sha256)
        source.seek(offset)
        return offer, source

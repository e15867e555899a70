# -*- test-case-name: tests.test_web_files -*-
"""
The HTTP file routes of the web listener (PROTOCOL.md section 9):
C{POST /files?to=TARGET&name=NAME} offers a file, C{GET /files/ID} fetches
one, both with the bearer token of a session (C{registered.token}).

An upload's body is never held whole: L{WebRequest} streams it into the
file store as it arrives. Twisted's HTTP channel hands a request its body
before its path, so what the headers tell is checked before a byte is
stored (the token in C{Authorization}, the size against C{--max-file-size}
and the quota, from C{Content-Length}); the target is checked once the body
is in, and a refused upload is dropped. A body refused from its headers is
read and discarded, never stored, and the refusal answered at its end.
"""

from __future__ import annotations

import json
import mimetypes
from typing import IO, Any
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from typing_extensions import override

from chat import errors, events
from chat.interfaces import IUpload
from chat.server import ChatServer
from chat.session import Session
from chat.tokens import Bearer

SMALL_BODY = 64 * 1024
"""Bytes of a request body held in memory: a bigger one is an upload, streamed to the file store."""

PREVIEWABLE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Types a download is served as, so that a page can show the image; anything else is
C{application/octet-stream} (never C{text/html} or C{image/svg+xml}, which could run script)."""

_STATUS = {
    errors.AuthFailed.code: 401,
    errors.NoSuchNick.code: 404,
    errors.NoSuchRoom.code: 404,
    errors.NotInRoom.code: 404,
    errors.NoSuchFile.code: 404,
    errors.FileTooLarge.code: 413,
    errors.Quota.code: 507,
    errors.NotRegistered.code: 401,
    errors.Busy.code: 503,
}
"""The HTTP status of each error code the file routes answer; any other is 400."""


def bearer_token(request: Request, query: bool = True) -> str:
    """
    The bearer token of a request: from C{Authorization: Bearer TOKEN}, or
    (when C{query}) from C{?token=TOKEN}; C{''} for none.
    """
    header = request.getHeader("authorization") or ""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if query:
        return _query(request, b"token")
    return ""


def respond_error(request: Request, error: errors.ChatError, status: int | None = None) -> bytes:
    """
    Answer C{request} with C{error} as a JSON body C{{"code", "message"}}.

    @return: the body, for a C{render} method to return.
    """
    request.setResponseCode(status or _STATUS.get(error.code, 400))
    request.setHeader("content-type", "application/json")
    if status == 401 or error.code == errors.AuthFailed.code:
        request.setHeader("www-authenticate", 'Bearer realm="chat"')
    return json.dumps({"code": error.code, "message": str(error)}).encode("utf-8")


class _Discard:
    """
    The body of a request refused from its headers: counted, never stored.
    """

    def __init__(self, error: errors.ChatError, status: int | None = None) -> None:
        self.error = error
        self.status = status
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)

    def tell(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


class _Streamed:
    """
    The body of an upload, written to the file store as it arrives.
    """

    def __init__(self, server: ChatServer, session: Session, upload: IUpload) -> None:
        self.chat = server
        self.session = session
        self.upload = upload
        self.done = False
        """Set once the upload is handed on (offered) or dropped."""

    def write(self, data: bytes) -> None:
        upload = self.upload
        if not self.done and data:
            upload.write(data[:upload.remaining])

    def tell(self) -> int:
        received: int = self.upload.size - self.upload.remaining
        return received

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""

    def drop(self) -> None:
        if not self.done:
            self.done = True
            self.chat.files.abort(self.upload)

    def close(self) -> None:
        self.drop()


class WebRequest(Request):
    """
    A request of the web listener: a body bigger than L{SMALL_BODY} is an
    upload, streamed to the file store (see the module's docstring); every
    response carries the site's C{security_headers}
    (L{chat.web.site.SECURITY_HEADERS}).
    """

    _log = Logger()

    @override
    def gotLength(self, length: int | None) -> None:  # noqa: N802 - Twisted's name
        """
        Called by the HTTP channel once the headers are in: choose where
        the body goes.
        """
        if length is None:
            self.content = _Discard(errors.BadArguments("send the file with a Content-Length"), 411)
        elif length <= SMALL_BODY:
            super().gotLength(length)
        else:
            self.content = self._reserve(length)

    def _reserve(self, size: int) -> _Discard | _Streamed:
        server: ChatServer = self.channel.site.server  # type: ignore[attr-defined]  # set by Site.buildProtocol
        try:
            bearer = server.bearer(bearer_token(self, query=False))
            session, upload = server.reserve_upload(bearer, size)
        except errors.ChatError as e:
            return _Discard(e)
        return _Streamed(server, session, upload)

    def streamed(self) -> _Streamed | None:
        """
        The upload this request's body went into, or C{None} (a small body,
        held in memory, or a body refused from its headers).
        """
        content = self.content
        return content if isinstance(content, _Streamed) else None

    def refused(self) -> _Discard | None:
        """
        Why the body was refused from its headers, or C{None}.
        """
        content = self.content
        return content if isinstance(content, _Discard) else None

    @override
    def process(self) -> None:
        site = self.channel.site  # type: ignore[attr-defined]  # set by Site.buildProtocol
        for name, value in site.security_headers.items():
            self.setHeader(name, value)
        super().process()

    @override
    def finish(self) -> None:
        """
        The response is complete: an upload not handed on (the body was
        sent to another route, or refused) is dropped.
        """
        streamed = self.streamed()
        if streamed is not None:
            streamed.drop()
        super().finish()

    @override
    def connectionLost(self, reason: Failure) -> None:  # noqa: N802 - Twisted's name
        """
        The connection broke: an upload cut off mid-body leaves nothing.
        """
        streamed = self.streamed()
        if streamed is not None and not streamed.done:
            self._log.debug("an HTTP upload was cut off: dropped")
            streamed.drop()
        super().connectionLost(reason)


class FilesResource(Resource):
    """
    C{/files}: C{POST} offers a file, C{GET /files/ID} fetches one.

    @ivar chat: the server (not C{server}, which L{Resource} keeps for
        Twisted's own use).
    """

    def __init__(self, server: ChatServer) -> None:
        super().__init__()
        self.chat = server

    @override
    def getChild(self, path: bytes, request: Any) -> Resource:  # noqa: N802 - Twisted's name
        if not request.postpath and path.isdigit() and len(path) < 20:
            return OfferResource(self.chat, int(path))
        return _NotFound()

    def render_POST(self, request: WebRequest) -> bytes | int:  # noqa: N802 - Twisted's name
        refused = request.refused()
        if refused is not None:
            return respond_error(request, refused.error, refused.status)
        target = _query(request, b"to")
        name = _query(request, b"name") or "file"
        streamed = request.streamed()
        server = self.chat
        try:
            if streamed is None:
                # A small body, held in memory: stored now, through the same checks.
                content = request.content
                body = content.read() if content is not None else b""
                bearer = server.bearer(bearer_token(request, query=False))
                session, upload = server.reserve_upload(bearer, len(body))
                streamed = _Streamed(server, session, upload)
                streamed.write(body)
            if not target:
                streamed.drop()
                raise errors.BadArguments("say where the file goes: POST /files?to=NICK_OR_ROOM&name=NAME")
            if streamed.upload.remaining:
                streamed.drop()
                raise errors.BadArguments("the body is shorter than its Content-Length")
            storing = server.offer_upload(streamed.session, streamed.upload, target, name)
            streamed.done = True  # only once offered: a refused target drops the upload below
        except errors.ChatError as e:
            if streamed is not None:
                streamed.drop()
            return respond_error(request, e)
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        storing.addCallbacks(
            self._stored, self._not_stored, callbackArgs=(request, gone), errbackArgs=(request, gone)
        )
        return NOT_DONE_YET

    @staticmethod
    def _stored(offer: events.FileOffer, request: Request, gone: list[bool]) -> None:
        request.setResponseCode(201)
        request.setHeader("content-type", "application/json")
        request.setHeader("location", f"/files/{offer.id}")
        body = {"id": offer.id, "name": offer.name, "size": offer.size, "sha256": offer.sha256}
        _finish(request, gone, json.dumps(body, ensure_ascii=False).encode("utf-8"))

    @staticmethod
    def _not_stored(failure: Failure, request: Request, gone: list[bool]) -> None:
        error = failure.value if isinstance(failure.value, errors.ChatError) else errors.Busy(
            "the file could not be stored; try again later"
        )
        _finish(request, gone, respond_error(request, error))


class OfferResource(Resource):
    """
    C{GET /files/ID}: an offered file's bytes, from byte N with
    C{Range: bytes=N-}.
    """

    isLeaf = True

    def __init__(self, server: ChatServer, offer_id: int) -> None:
        super().__init__()
        self.chat = server
        self.offer_id = offer_id

    def render_GET(self, request: Request) -> bytes | int:  # noqa: N802 - Twisted's name
        offset = _range_start(request.getHeader("range"))
        try:
            bearer: Bearer = self.chat.bearer(bearer_token(request))
            offer, source = self.chat.open_http_download(bearer, self.offer_id, 0)
        except errors.ChatError as e:
            return respond_error(request, e)
        if offset is not None and offset >= offer.size:
            # Unsatisfiable (RFC 9110 section 15.5.17): a resumed download that was complete, say.
            source.close()
            request.setHeader("content-range", f"bytes */{offer.size}")
            return respond_error(
                request, errors.BadArguments(f"the range starts at or past the file's end ({offer.size} bytes)"), 416
            )
        source.seek(offset or 0)
        return self._send(request, offer, source, offset)

    @staticmethod
    def _send(request: Request, offer: events.FileOffer, source: IO[bytes], offset: int | None) -> int:
        kind = mimetypes.guess_type(offer.name, strict=False)[0]
        request.setHeader("content-type", kind if kind in PREVIEWABLE else "application/octet-stream")
        request.setHeader("content-disposition", content_disposition(offer.name))
        request.setHeader("x-content-type-options", "nosniff")
        request.setHeader("content-security-policy", "default-src 'none'; sandbox")
        request.setHeader("cache-control", "private, no-store")
        request.setHeader("accept-ranges", "bytes")
        request.setHeader("x-sha256", offer.sha256)
        start = offset or 0
        request.setHeader("content-length", str(offer.size - start))
        if offset is not None:
            request.setResponseCode(206)
            request.setHeader("content-range", f"bytes {start}-{offer.size - 1}/{offer.size}")
        sending: Deferred[bytes] = FileSender().beginFileTransfer(source, request)

        def sent(result: object) -> None:
            source.close()
            if not isinstance(result, Failure):
                request.finish()

        sending.addBoth(sent)
        return NOT_DONE_YET


class _NotFound(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        return respond_error(request, errors.NoSuchFile("no such file: /files/ID takes a file offer's id"))


def content_disposition(name: str) -> str:
    """
    C{Content-Disposition: attachment} with C{name}: an ASCII fallback and
    the UTF-8 name (RFC 6266, RFC 8187).
    """
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _range_start(header: str | None) -> int | None:
    """
    N of C{Range: bytes=N-}; C{None} for no range, or any other form
    (which is then ignored: the whole file is sent, RFC 9110 section 14.2).
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    start, dash, end = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash or end.strip() or not start.isdigit() or "," in spec:
        return None
    return int(start)


def _query(request: Request, name: bytes) -> str:
    """
    The first value of query parameter C{name}, decoded; C{''} for none.
    """
    values: list[bytes] | None = request.args.get(name) if request.args else None
    return values[0].decode("utf-8", "replace").strip() if values else ""


def _finish(request: Request, gone: list[bool], body: bytes) -> None:
    """
    Write C{body} and finish, unless the client has gone (C{gone} non-empty).
    """
    if gone:
        return
    request.write(body)
    request.finish()


# -*- test-case-name: tests.test_spool -*-
"""
The spool: the bytes of offered files (PROTOCOL.md section 6), kept in a
directory (C{DATA_DIR/spool}) under names the server chooses: a stored
file is named by the SHA-256 of its bytes, never by the name a client gave,
and two offers of the same bytes share one file.

An upload is written to C{partial/} while it arrives, hashed as it goes,
then flushed to disk and renamed into place once complete (L{Spool.commit}),
so a lost connection or a crash never leaves a partial file where an offer
could point; C{partial/} is emptied at start-up.

The quota (C{--spool-quota}, bytes) counts the stored files plus the
announced size of every upload in progress, so the disk use stays under it
whatever the uploads do.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Collection
from typing import IO, Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from zope.interface import implementer

from chat import errors, wire
from chat.interfaces import IFileStore, IUpload

SPOOL = "spool"
"""The spool's directory inside the data directory."""

PARTIAL = "partial"
"""The sub-directory of uploads in progress."""

NAME_MAX = 255
"""The longest file name shown, in characters."""

_STORED = re.compile(r"[0-9a-f]{64}\Z")
_SEPARATOR = re.compile(r"[/\\]")

RunInThread = Callable[..., "Deferred[Any]"]
"""Runs a blocking function away from the reactor: L{deferToThread}'s shape."""


def display_name(name: str) -> str:
    """
    The label shown for a file a client called C{name}: its last path
    component (after C{/} or C{\\}), without control characters or
    surrounding spaces, at most L{NAME_MAX} characters; C{file} when nothing
    is left (C{..}, say). It is never used as a path.
    """
    name = wire.clean(_SEPARATOR.split(name)[-1]).strip()
    if name in ("", ".", ".."):
        return "file"
    return name[:NAME_MAX]


def is_sha256(text: str) -> bool:
    """
    Whether C{text} is a SHA-256 digest in hex (either case).
    """
    return _STORED.match(text.lower()) is not None


@implementer(IUpload)
class Upload:
    """
    One upload in progress: its bytes go to a partial file and into a
    SHA-256 as they arrive.

    @ivar size: the announced size in bytes.
    @ivar remaining: bytes still expected.
    @ivar expected: the SHA-256 (lower-case hex) the client announced, or
        C{None}.
    @ivar failed: the error that stopped writing to disk, or C{None}; the
        bytes are still counted, so the connection finds its next line.
    """

    def __init__(self, file: IO[bytes], size: int, expected: str | None) -> None:
        self.size = size
        self.remaining = size
        self.expected = expected
        self.failed: OSError | None = None
        self._file = file
        self._hash = hashlib.sha256()

    @property
    def path(self) -> str:
        return self._file.name

    def write(self, data: bytes) -> None:
        """
        Take the next C{data} (at most L{remaining} bytes) of the upload.
        """
        self.remaining -= len(data)
        if self.failed is not None:
            return
        self._hash.update(data)
        try:
            self._file.write(data)
        except OSError as e:
            self.failed = e

    @property
    def sha256(self) -> str:
        """
        The SHA-256 of the bytes taken so far, lower-case hex.
        """
        return self._hash.hexdigest()


@implementer(IFileStore)
class Spool:
    """
    The stored files of one daemon and the uploads in progress.

    @ivar directory: where the files are.
    @ivar quota: the most bytes stored and announced together.
    @ivar used: bytes of the stored files.
    @ivar reserved: bytes announced by the uploads in progress.
    """

    _log = Logger()

    def __init__(
        self,
        directory: str,
        quota: int,
        run_in_thread: RunInThread | None = None,
        temporary: bool = False,
    ) -> None:
        """
        @param run_in_thread: runs the blocking end of an upload (C{fsync},
            rename); the reactor's thread pool by default.
        @param temporary: remove C{directory} on L{close} (C{--in-memory}).
        """
        self.directory = directory
        self.quota = quota
        self.used = 0
        self.reserved = 0
        self._run = run_in_thread or deferToThread
        self._temporary = temporary
        self._stored: dict[str, int] = {}
        self._committing: Counter[str] = Counter()

    @classmethod
    def in_temporary_directory(cls, quota: int, run_in_thread: RunInThread | None = None) -> Spool:
        """
        A spool in a new temporary directory, removed on L{close}.
        """
        spool = cls(tempfile.mkdtemp(prefix="chat-spool-"), quota, run_in_thread, temporary=True)
        spool.open()
        return spool

    def open(self) -> None:
        """
        Create the directories if needed, remove what a crash left in
        C{partial/}, and count the stored files. Blocking: at start-up.

        @raise OSError: the directory cannot be used.
        """
        partial = os.path.join(self.directory, PARTIAL)
        os.makedirs(partial, exist_ok=True)
        for entry in os.scandir(partial):
            os.unlink(entry.path)
        self._stored = {
            entry.name: entry.stat().st_size
            for entry in os.scandir(self.directory)
            if entry.is_file() and _STORED.match(entry.name)
        }
        self.used = sum(self._stored.values())

    def close(self) -> None:
        """
        Remove the directory if it is temporary.
        """
        if self._temporary:
            shutil.rmtree(self.directory, ignore_errors=True)

    def path(self, sha256: str) -> str:
        return os.path.join(self.directory, sha256)

    def has(self, sha256: str) -> bool:
        """
        Whether the file with these bytes is stored.
        """
        return sha256 in self._stored

    # Uploads

    def begin(self, size: int, expected: str | None = None) -> Upload:
        """
        Start receiving C{size} bytes, reserving them against the quota.

        @param expected: the SHA-256 the client announced, hex, or C{None}.
        @raise errors.Quota: the spool has no room for C{size} more bytes.
        @raise errors.Busy: the partial file cannot be created.
        """
        free = self.quota - self.used - self.reserved
        if size > free:
            raise errors.Quota(
                f"the server's file space is full ({max(free, 0)} bytes free, {size} needed): try a smaller file later"
            )
        try:
            file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by commit or abort
                dir=os.path.join(self.directory, PARTIAL), delete=False
            )
        except OSError as e:
            self._log.error("cannot create a file in the spool: {error}", error=e)
            raise errors.Busy("the server cannot store files right now; try again later") from None
        self.reserved += size
        return Upload(file, size, expected.lower() if expected else None)

    def abort(self, upload: IUpload) -> None:
        """
        Drop an upload: its partial file and its reservation.
        """
        assert isinstance(upload, Upload), "an upload of this spool"
        self.reserved -= upload.size
        upload._file.close()
        try:
            os.unlink(upload.path)
        except OSError as e:
            self._log.error("cannot remove {path}: {error}", path=upload.path, error=e)

    def commit(self, upload: IUpload) -> Deferred[str]:
        """
        Store a complete upload: flush it to disk and rename it to its
        SHA-256, in a thread.

        @return: fires with the SHA-256 (lower-case hex) once the file is
            durable; fails with L{errors.ChecksumMismatch} if it differs
            from the announced one, or L{errors.Busy} if it could not be
            written (the partial file is then removed).
        """
        assert isinstance(upload, Upload), "an upload of this spool"
        sha256 = upload.sha256
        if upload.failed is not None or (upload.expected is not None and upload.expected != sha256):
            self.abort(upload)
            if upload.failed is not None:
                self._log.error("cannot write to the spool: {error}", error=upload.failed)
                return fail(errors.Busy("the server could not store the file; try again later"))
            return fail(errors.ChecksumMismatch(
                f"the bytes received have sha256 {sha256}, not {upload.expected}: the file is dropped"
            ))
        self._committing[sha256] += 1
        storing: Deferred[None] = self._run(_store, upload._file, self.path(sha256), self.directory)

        def stored(_: None) -> str:
            self._done(upload, sha256)
            if sha256 not in self._stored:
                self._stored[sha256] = upload.size
                self.used += upload.size
            return sha256

        def failed(failure: Any) -> Deferred[str]:
            self._done(upload, sha256)
            self._log.failure("cannot store an upload in the spool", failure)
            try:
                os.unlink(upload.path)
            except OSError:
                pass
            return fail(errors.Busy("the server could not store the file; try again later"))

        return storing.addCallbacks(stored, failed)

    def _done(self, upload: Upload, sha256: str) -> None:
        self.reserved -= upload.size
        self._committing[sha256] -= 1
        if not self._committing[sha256]:
            del self._committing[sha256]

    # Downloads and clean-up

    def read(self, sha256: str) -> IO[bytes]:
        """
        Open a stored file for reading, at its start.

        @raise errors.NoSuchFile: it is not stored (or cannot be read).
        """
        try:
            return open(self.path(sha256), "rb")  # noqa: SIM115 - closed by the download
        except OSError as e:
            self._log.error("cannot read {sha256} from the spool: {error}", sha256=sha256, error=e)
            raise errors.NoSuchFile("that file is no longer stored") from None

    def collect(self, referenced: Collection[str]) -> int:
        """
        Remove the stored files no offer points to (not those being
        stored right now). A download in progress keeps reading its open
        file.

        @param referenced: the SHA-256s the remaining offers point to.
        @return: how many bytes were freed.
        """
        freed = 0
        for sha256, size in list(self._stored.items()):
            if sha256 in referenced or sha256 in self._committing:
                continue
            try:
                os.unlink(self.path(sha256))
            except FileNotFoundError:
                pass
            except OSError as e:
                self._log.error("cannot remove {sha256} from the spool: {error}", sha256=sha256, error=e)
                continue
            del self._stored[sha256]
            self.used -= size
            freed += size
        return freed


def _store(file: IO[bytes], destination: str, directory: str) -> None:
    """
    In a thread: make a complete partial file durable, then move it to
    C{destination} (replacing a file with the same bytes) and make the
    rename durable.
    """
    try:
        file.flush()
        os.fsync(file.fileno())
    finally:
        file.close()
    os.replace(file.name, destination)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

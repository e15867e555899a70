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
whatever the uploads do. Two more limits keep one client, or the spool as a
whole, from taking what others need (PROTOCOL.md section 8):

  - I{an owner's share}: the uploads in progress of one owner (the server
    passes the client's address) together reserve at most a
    L{SHARE_DIVISOR}th of the quota; a single upload is allowed whatever
    its size, so a file up to C{--max-file-size} can always be sent alone.
  - I{the disk reserve} (C{--disk-reserve}): an upload is refused when its
    size, plus the bytes the uploads in progress have still to write, would
    leave less than the reserve free on the spool's file system, which the
    history database shares, so that messages can still be stored.
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

SHARE_DIVISOR = 4
"""The uploads in progress of one owner (one client address) reserve at most
C{quota // SHARE_DIVISOR} bytes together, unless it is their only upload."""

RESERVE_MAX = 256 * 1024 * 1024
"""The default disk reserve, in bytes, on a file system of over 5 GiB."""

RESERVE_PERCENT = 5
"""The default disk reserve on a smaller file system: this percentage of its size."""

_STORED = re.compile(r"[0-9a-f]{64}\Z")
_SEPARATOR = re.compile(r"[/\\]")

RunInThread = Callable[..., "Deferred[Any]"]
"""Runs a blocking function away from the reactor: L{deferToThread}'s shape."""


def display_name(name: str) -> str:
    """
    The label shown for a file a client called C{name} (PROTOCOL.md
    sections 1 and 6): its last path component (after C{/} or C{\\}),
    without control characters or any format character (category Cf: bidi
    controls, zero-width characters), each run of white space as one space
    and none at either end; C{file} when nothing is left (C{..}, say). So
    the label shows the name's real end: C{invoice}, RLO, C{txt.exe}
    becomes C{invoicetxt.exe}, not a name that looks like C{.txt}.

    A name longer than L{NAME_MAX} characters is cut before its extension
    (the text after its last dot), which is kept whole; an extension too
    long for that keeps the name's last L{NAME_MAX} characters. It is never
    used as a path.
    """
    name = " ".join(wire.strip_format(wire.clean(_SEPARATOR.split(name)[-1])).split())
    if name in ("", ".", ".."):
        return "file"
    if len(name) > NAME_MAX:
        stem, dot, extension = name.rpartition(".")
        tail = dot + extension if stem else ""
        name = name[:NAME_MAX - len(tail)] + tail if len(tail) < NAME_MAX else name[-NAME_MAX:]
    return name


def disk_reserve(total: int, reserve: int | None = None) -> int:
    """
    The free bytes an upload must leave on a file system of C{total} bytes:
    C{reserve} (C{--disk-reserve}) when given, else L{RESERVE_MAX} or
    L{RESERVE_PERCENT} % of C{total}, the smaller.
    """
    if reserve is not None:
        return reserve
    return min(RESERVE_MAX, total * RESERVE_PERCENT // 100)


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
    @ivar owner: whose share of the quota it counts against (a client
        address), or C{None}.
    """

    def __init__(self, file: IO[bytes], size: int, expected: str | None, owner: str | None = None) -> None:
        self.size = size
        self.remaining = size
        self.expected = expected
        self.owner = owner
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
    @ivar reserved: bytes announced by the uploads in progress (until they
        are stored or dropped).
    @ivar reserve: the free bytes to leave on the file system
        (C{--disk-reserve}), or C{None} for L{disk_reserve}'s default.
    """

    _log = Logger()

    def __init__(
        self,
        directory: str,
        quota: int,
        run_in_thread: RunInThread | None = None,
        temporary: bool = False,
        *,
        reserve: int | None = None,
        partial: str = PARTIAL,
        statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
    ) -> None:
        """
        @param run_in_thread: runs the blocking end of an upload (C{fsync},
            rename); the reactor's thread pool by default.
        @param temporary: remove C{directory} on L{close} (C{--in-memory}).
        @param reserve: free bytes to keep on the file system, in bytes;
            C{None} for L{disk_reserve}'s default.
        @param partial: the directory of the uploads in progress, inside
            C{directory}: one of its own for each daemon sharing the
            directory (a cluster, PROTOCOL.md section 13), since each
            empties it at start.
        @param statvfs: tells the free space of the file system holding a
            path: L{os.statvfs} (the free bytes are C{f_bavail * f_frsize},
            its size C{f_blocks * f_frsize}).
        """
        self.directory = directory
        self.quota = quota
        self.used = 0
        self.reserved = 0
        self.reserve = reserve
        self._statvfs = statvfs
        self._run = run_in_thread or deferToThread
        self._temporary = temporary
        self._partial = os.path.join(directory, partial)
        self._stored: dict[str, int] = {}
        self._committing: Counter[str] = Counter()
        self._uploads: set[Upload] = set()
        self._owners: Counter[str] = Counter()
        self._disk_low = False

    @classmethod
    def in_temporary_directory(
        cls, quota: int, run_in_thread: RunInThread | None = None, reserve: int | None = None
    ) -> Spool:
        """
        A spool in a new temporary directory, removed on L{close}.
        """
        spool = cls(tempfile.mkdtemp(prefix="chat-spool-"), quota, run_in_thread, temporary=True, reserve=reserve)
        spool.open()
        return spool

    def open(self) -> None:
        """
        Create the directories if needed, remove what a crash left in
        C{partial/}, and count the stored files. Blocking: at start-up.

        @raise OSError: the directory cannot be used.
        """
        partial = self._partial
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
        Whether the file with these bytes is stored: by this daemon, or
        by another one sharing the directory (a cluster).
        """
        return sha256 in self._stored or (_STORED.match(sha256) is not None and os.path.isfile(self.path(sha256)))

    # Uploads

    def begin(self, size: int, expected: str | None = None, owner: str | None = None) -> Upload:
        """
        Start receiving C{size} bytes, reserving them against the quota,
        against C{owner}'s share of it, and against the free disk space.

        @param expected: the SHA-256 the client announced, hex, or C{None}.
        @param owner: whose share the upload counts against (the client's
            address), or C{None} for no share.
        @raise errors.Quota: the spool has no room for C{size} more bytes;
            C{owner}'s other uploads in progress hold their share already
            (L{SHARE_DIVISOR}); or the file system would be left with
            less than the disk reserve free.
        @raise errors.Busy: the free space cannot be known, or the partial
            file cannot be created.
        """
        free = self.quota - self.used - self.reserved
        if size > free:
            raise errors.Quota(
                f"the server's file space is full ({max(free, 0)} bytes free, {size} needed): try a smaller file later"
            )
        if owner is not None:
            held, share = self._owners[owner], self.quota // SHARE_DIVISOR
            if held and held + size > share:
                raise errors.Quota(
                    f"uploads from your address hold {held} bytes of the server's file space already,"
                    f" and one address may hold at most {share} bytes at once: wait for them to finish"
                )
        self._check_disk(size)
        try:
            file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by commit or abort
                dir=self._partial, delete=False
            )
        except OSError as e:
            self._log.error("cannot create a file in the spool: {error}", error=e)
            raise errors.Busy("the server cannot store files right now; try again later") from None
        upload = Upload(file, size, expected.lower() if expected else None, owner)
        self.reserved += size
        self._uploads.add(upload)
        if owner is not None:
            self._owners[owner] += size
        return upload

    def _check_disk(self, size: int) -> None:
        """
        Refuse an upload of C{size} bytes that would leave less than the
        disk reserve free, counting the bytes the uploads in progress have
        yet to write. Logs a warning when uploads start being refused, and
        once they are accepted again.

        @raise errors.Quota: it would.
        @raise errors.Busy: the free space cannot be known.
        """
        try:
            stat = self._statvfs(self.directory)
        except OSError as e:
            self._log.error("cannot tell the free space of {directory}: {error}", directory=self.directory, error=e)
            raise errors.Busy("the server cannot store files right now; try again later") from None
        free = stat.f_bavail * stat.f_frsize
        reserve = disk_reserve(stat.f_blocks * stat.f_frsize, self.reserve)
        pending = sum(upload.remaining for upload in self._uploads)
        low = free - pending - size < reserve
        if low != self._disk_low:
            self._disk_low = low
            if low:
                self._log.warn(
                    "the disk of {directory} is nearly full ({free} bytes free, {pending} more promised to uploads):"
                    " uploads are refused to keep {reserve} bytes (--disk-reserve) for messages",
                    directory=self.directory, free=free, pending=pending, reserve=reserve,
                )
            else:
                self._log.info("the disk of {directory} has room for uploads again", directory=self.directory)
        if low:
            raise errors.Quota(
                f"the server's disk is nearly full ({max(free - pending - reserve, 0)} bytes free for files,"
                f" {size} needed): try a smaller file later"
            )

    def _release(self, upload: Upload) -> None:
        """
        Give back the reservation of an upload in progress (nothing if it
        was given back already).
        """
        if upload not in self._uploads:
            return
        self._uploads.remove(upload)
        self.reserved -= upload.size
        if upload.owner is not None:
            self._owners[upload.owner] -= upload.size
            if not self._owners[upload.owner]:
                del self._owners[upload.owner]

    def abort(self, upload: IUpload) -> None:
        """
        Drop an upload: its partial file and its reservation (once, however
        often it is called).
        """
        assert isinstance(upload, Upload), "an upload of this spool"
        if upload not in self._uploads:
            return  # dropped or stored already
        self._release(upload)
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
        self._release(upload)
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

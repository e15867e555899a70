# -*- test-case-name: tests.test_client_transfer -*-
"""
The disk side of file transfers (PROTOCOL.md section 6): where a download's
bytes go, how it resumes and is checked, and what an upload announces.
Blocking file I/O, no reactor: the client protocol runs the slow parts in a
thread.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

from chat import events
from chat.codec import ProtocolError

NAME_MAX = 255
"""The longest file name, in UTF-8 bytes, that a download is given."""

_EXTENSION_MAX = 32
"""A suffix longer than this, in UTF-8 bytes, is not kept as an extension."""

_CHUNK = 1 << 20
"""Bytes read at a time when hashing a file."""

_SEPARATOR = re.compile(r"[/\\]")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LEADING = re.compile(r"^[\s.]+")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


class ChecksumMismatch(ValueError):
    """
    The bytes of a finished download do not have the SHA-256 the daemon
    announced in its C{file} line; the partial file was deleted.
    """


def _cut(text: str, limit: int) -> str:
    """
    C{text} shortened to at most C{limit} UTF-8 bytes, never splitting a
    character, without trailing white space.
    """
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore").rstrip()


def _split(name: str) -> tuple[str, str]:
    """
    C{name} as stem and extension (C{.pdf}, with its dot), the extension
    empty when there is none or it is too long to be one.
    """
    dot = name.rfind(".")
    if dot <= 0 or len(name[dot:].encode("utf-8")) > _EXTENSION_MAX:
        return name, ""
    return name[:dot], name[dot:]


def _fit(name: str, mark: str = "") -> str:
    """
    C{name} with C{mark} inserted before its extension, its stem shortened
    so that the whole is at most L{NAME_MAX} UTF-8 bytes.
    """
    stem, extension = _split(name)
    tail = mark + extension
    return _cut(stem, NAME_MAX - len(tail.encode("utf-8"))) + tail


def safe_name(name: str) -> str:
    """
    What a file offered as C{name} may be called on disk: a single plain
    file name, never a path, never hidden.

    Keeps the last path component (after C{/} or C{\\}), removes control
    characters (C0, DEL, C1) and lone surrogates, strips white space at
    either end and leading dots (so never C{.}, C{..} or a hidden file),
    and shortens the name to L{NAME_MAX} UTF-8 bytes keeping its extension.

    @param name: the C{name} of a C{file-offer} or C{file} event (PROTOCOL.md
        section 6), any C{str}.
    @return: a non-empty file name without separators; C{file} when
        nothing is left.
    """
    name = _UNSAFE.sub("", _SEPARATOR.split(name)[-1])
    name = _LEADING.sub("", name).rstrip()
    if not name:
        return "file"
    return _fit(name)


def _sha256_of(file: BinaryIO, digest: hashlib._Hash) -> int:
    """
    Feed the rest of C{file} to C{digest}.

    @return: how many bytes were read.
    """
    total = 0
    while chunk := file.read(_CHUNK):
        digest.update(chunk)
        total += len(chunk)
    return total


def place(part: Path, folder: Path, name: str) -> Path:
    """
    Move the finished file C{part} into C{folder} under the safe name
    C{name} (L{safe_name}), or the first of C{name (1).ext}, C{name
    (2).ext}... that does not exist (reserved by creating it exclusively, so
    two downloads never take the same name). Blocking: run it in a thread.

    @return: the final path.
    @raise OSError: it cannot be moved; C{part} stays.
    """
    number = 0
    while True:
        candidate = folder / (_fit(name, f" ({number})") if number else name)
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o666)
        except FileExistsError:
            number += 1
            continue
        os.close(fd)
        try:
            os.replace(part, candidate)
        except BaseException:
            candidate.unlink(missing_ok=True)
            raise
        return candidate


class Download:
    """
    Receives the bytes of offer C{offer_id} into C{folder}, never outside it,
    never over an existing file, resumable (PROTOCOL.md section 6).

    Bytes go to L{part}, C{FOLDER/<safe name>.<id>.part}, which a later
    download of the same offer resumes from. Once they are all there and
    their SHA-256 is right, L{finish} moves them to the safe name, or to
    C{name (1).ext}, C{name (2).ext}... whichever does not exist yet.

    The calls, in order: L{prepare} (blocking, in a thread), L{begin} with
    the daemon's C{file} line, L{write} for each chunk of raw bytes, then
    L{finish} (blocking, in a thread), or L{abort} at any time after
    L{begin}.

    @ivar offer_id: the offer's id.
    @ivar name: the file's safe name (L{safe_name} of the offered name).
    @ivar folder: the folder the file ends up in.
    @ivar part: the partial file.
    @ivar offset: bytes already in L{part}: the OFFSET of C{/download ID
        OFFSET}; 0 until L{prepare}.
    @ivar header: the daemon's C{file} line, once L{begin} took it.
    """

    def __init__(self, offer_id: int, name: str, folder: Path) -> None:
        self.offer_id = offer_id
        self.name = safe_name(name)
        self.folder = folder
        suffix = f".{offer_id}.part"
        self.part = folder / (_cut(self.name, NAME_MAX - len(suffix)) + suffix)
        self.offset = 0
        self.header: events.FileHeader | None = None
        self._digest = hashlib.sha256()
        self._written = 0
        self._file: BinaryIO | None = None

    def prepare(self) -> None:
        """
        Create the folder (and its parents) if needed, and if L{part}
        exists, hash its bytes and set L{offset} to its size. Blocking: run
        it in a thread.

        @raise OSError: the folder cannot be created, or L{part} cannot be
            read (a symbolic link, say).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        try:
            fd = os.open(self.part, os.O_RDONLY | _NOFOLLOW | _BINARY)
        except FileNotFoundError:
            self.offset = 0
        else:
            with os.fdopen(fd, "rb") as file:
                self.offset = _sha256_of(file, digest)
        self._digest = digest

    def begin(self, header: events.FileHeader) -> None:
        """
        Take the daemon's C{file} line and open L{part} for appending the
        C{header.size - header.offset} bytes that follow it.

        @raise ProtocolError: the header is for another offer, or starts at
            another offset than L{offset}, or past its own size.
        @raise OSError: L{part} cannot be opened, or it changed since
            L{prepare} read it.
        """
        if header.id != self.offer_id:
            raise ProtocolError(f"the daemon sent file {header.id} when file {self.offer_id} was asked for")
        if header.offset != self.offset or header.offset > header.size:
            raise ProtocolError(
                f"the daemon sent file {header.id} from byte {header.offset} of {header.size}, "
                f"not from byte {self.offset}"
            )
        fd = os.open(self.part, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _BINARY, 0o666)
        file = os.fdopen(fd, "ab")
        if os.fstat(fd).st_size != self.offset:
            file.close()
            raise OSError(errno.EAGAIN, "the partial file changed while the download started", str(self.part))
        self._file = file
        self.header = header

    @property
    def received(self) -> int:
        """
        The bytes of the file on disk so far: L{offset} plus those written.
        """
        return self.offset + self._written

    @property
    def remaining(self) -> int:
        """
        The bytes still expected after L{begin}; 0 before it.
        """
        if self.header is None:
            return 0
        return self.header.size - self.received

    def write(self, data: bytes) -> int:
        """
        Append the first of C{data}'s bytes, at most L{remaining} of them,
        to L{part}. Called for each chunk of raw bytes after the C{file} line.

        @return: how many bytes of C{data} were taken; the rest follow the
            file on the wire.
        @raise OSError: the disk refused them (full, say).
        """
        if self._file is None:
            raise ValueError("write() before begin() or after finish()")
        chunk = data[: self.remaining]
        self._file.write(chunk)
        self._digest.update(chunk)
        self._written += len(chunk)
        return len(chunk)

    def finish(self) -> Path:
        """
        Check the whole file's SHA-256 against the C{file} line's, then move
        L{part} to its final name in L{folder}: the safe name, or the first
        of C{name (1).ext}, C{name (2).ext}... that does not exist (reserved
        by creating it exclusively, so two downloads never take the same
        name). Blocking: run it in a thread.

        @return: the final path.
        @raise ChecksumMismatch: the SHA-256 differs; L{part} is deleted.
        @raise OSError: the file cannot be written or renamed; L{part} stays.
        @raise ValueError: called before all bytes arrived.
        """
        header = self.header
        if header is None or self._file is None or self.remaining:
            raise ValueError(f"finish() with {self.remaining} bytes still expected")
        file, self._file = self._file, None
        with file:
            file.flush()
            os.fsync(file.fileno())
        received = self._digest.hexdigest()
        if received != header.sha256.lower():
            self.part.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"the bytes received have sha256 {received}, not {header.sha256}: the partial file is deleted"
            )
        return self._move()

    def _move(self) -> Path:
        return place(self.part, self.folder, self.name)

    def abort(self) -> None:
        """
        Close L{part}, keeping its bytes for a later resume. Does nothing
        when it is not open.
        """
        file, self._file = self._file, None
        if file is not None:
            file.close()


class Upload:
    """
    A file to offer (PROTOCOL.md section 6): what C{/upload TARGET NAME SIZE
    SHA256} announces, and the open file its bytes are then read from.

    @ivar path: the file.
    @ivar name: its display name, C{path.name}.
    @ivar size: its size in bytes, once L{prepare} ran.
    @ivar sha256: the SHA-256 of its bytes in lower-case hex, once
        L{prepare} ran.
    @ivar file: the file opened for reading at its first byte, once
        L{prepare} ran, until L{close}. Reading the open file sends the
        bytes that were hashed even if the path is renamed or deleted.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.size = 0
        self.sha256 = ""
        self.file: BinaryIO | None = None

    def prepare(self) -> None:
        """
        Open the file, hash it, and set L{size} and L{sha256}. Blocking: run
        it in a thread. L{close} must follow.

        @raise OSError: as raised for the path: missing, unreadable, or not
            a regular file (C{EINVAL}).
        """
        if not stat.S_ISREG(os.stat(self.path).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(self.path))
        file = open(self.path, "rb")  # kept open for sending: closed by close()
        try:
            digest = hashlib.sha256()
            self.size = _sha256_of(file, digest)
            self.sha256 = digest.hexdigest()
            file.seek(0)
        except BaseException:
            file.close()
            raise
        self.file = file

    def close(self) -> None:
        """
        Close L{file}, if open.
        """
        file, self.file = self.file, None
        if file is not None:
            file.close()

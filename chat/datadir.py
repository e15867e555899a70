# -*- test-case-name: tests.test_hardening_storage,tests.test_tap -*-
"""
The data directory of C{twistd chat} (C{--data-dir}): L{DataDirectory}
creates it, locks it for one daemon, and after a failed start removes what
the start made.
"""

from __future__ import annotations

import errno
import fcntl
import os
import weakref
from typing import Any, ClassVar

from twisted.logger import Logger

from chat.schema import FILENAME
from chat.spool import PARTIAL, SPOOL

__all__ = ["DataDirectory"]


class DataDirectory:
    """
    The directory of C{--data-dir}, and which directories L{makeService}
    had to create for it, so that a failed start removes what it made and
    never what a user put there.

    One daemon per data directory (PROTOCOL.md section 1): L{lock} takes an
    exclusive C{flock} on the directory itself, held on an open descriptor
    for the daemon's life. The kernel releases it when the process ends,
    however it ends (a C{kill -9} included), so there is no stale lock to
    remove; it survives twistd's daemonizing forks, which share the
    descriptor; and it leaves no file in the directory.

    @ivar path: the directory, absolute (twistd's C{--rundir} and
        C{--chroot} change the working directory after L{makeService}).
    @ivar created: the directories L{create} made, the data directory
        first, then its missing parents; empty when it existed already.
    """

    _log = Logger()

    _held: ClassVar[dict[tuple[int, int], tuple[int, int]]] = {}
    """The directories this process holds locked, by (device, inode): the
    locked descriptor and how many L{DataDirectory} objects hold it. A
    process takes a directory's lock once; building the service again in
    the same process (a test, a C{.tac} file) shares it."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.created: list[str] = []
        self._unlock: weakref.finalize[Any, DataDirectory] | None = None

    def create(self) -> None:
        """
        Create the directory and any missing parent, recording which.

        @raise OSError: it cannot be created.
        """
        missing = []
        here = self.path
        while not os.path.lexists(here):
            missing.append(here)
            here = os.path.dirname(here)
        os.makedirs(self.path, exist_ok=True)
        self.created = missing

    def lock(self) -> None:
        """
        Take the data directory's lock for this process, until L{release}
        (or until this object is garbage, or the process ends).

        On a file system that has no locks it logs a warning and goes on
        without one.

        @raise OSError: it cannot be opened; or, with C{errno.EWOULDBLOCK}
            and a message saying so, another process holds the lock (a
            daemon on the same directory): then L{created} is emptied, as
            the directory is that daemon's and L{discard} must leave it.
        """
        if self._unlock is not None:
            return
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        status = os.fstat(fd)
        key = (status.st_dev, status.st_ino)
        held = self._held.get(key)
        if held is not None and os.fstat(held[0]).st_nlink == 0:
            DataDirectory._release(key)  # a directory removed since, whose inode is reused
            held = None
        if held is not None:
            os.close(fd)
            self._held[key] = (held[0], held[1] + 1)
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    # A file system without locks (some network ones): run, but say so.
                    self._log.warn(
                        "cannot lock the data directory {directory} ({error}): make sure that no other"
                        " chat daemon uses it", directory=self.path, error=e.strerror or e,
                    )
                    return
                self.created = []
                raise BlockingIOError(
                    errno.EWOULDBLOCK, "another chat daemon is using it (stop that one first)"
                ) from None
            self._held[key] = (fd, 1)
        self._unlock = weakref.finalize(self, DataDirectory._release, key)

    def release(self) -> None:
        """
        Give up the lock L{lock} took; nothing if it holds none. Called
        when the reactor has shut down, and by L{discard}.
        """
        if self._unlock is not None:
            self._unlock()
            self._unlock = None

    @classmethod
    def _release(cls, key: tuple[int, int]) -> None:
        fd, holders = cls._held.pop(key)
        if holders > 1:
            cls._held[key] = (fd, holders - 1)
        else:
            os.close(fd)  # releases the flock

    def discard(self) -> None:
        """
        After a failed start, remove what L{create} created: only if it
        created the data directory, the database and the empty spool
        opened in it, then the created directories, deepest first,
        stopping at the first that holds anything else. Errors are
        ignored: the start failed already. Then the lock is released.
        """
        try:
            self._discard()
        finally:
            self.release()

    def _discard(self) -> None:
        if not self.created:
            return
        database = os.path.join(self.path, FILENAME)
        for leftover in (database, database + "-wal", database + "-shm", database + "-journal"):
            try:
                os.remove(leftover)
            except OSError:
                pass
        spool = os.path.join(self.path, SPOOL)
        for directory in [os.path.join(spool, PARTIAL), spool, *self.created]:
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                continue
            except OSError:
                return

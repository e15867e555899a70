"""
Tests for the storage side of issue 16 (hardening), in process: the share
of the spool's quota one client address may hold (finding 4), the disk
reserve that uploads leave for messages and the one-line log of a failed
group commit (finding 5), and the start-up checks of the database and the
lock on the data directory (finding 6). The same findings against real
C{twistd} processes are in L{tests.test_hardening_storage_e2e}.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from chat import commands, errors, schema
from chat.events import FileOffer, Message
from chat.settings import MiB, Settings
from chat.spool import RESERVE_MAX, SHARE_DIVISOR, Spool, disk_reserve
from chat.sqlite_store import SQLiteStore, open_store
from chat.datadir import DataDirectory
from chat.transfers import Incoming
from tests.test_server import REMOTE, ServerTestCase
from tests.test_spool import inline
from tests.test_storage import TS, FakePool
from tests.test_tap_ops import child_environment

NOBODY = 65534
"""The uid and gid of C{nobody}, which permissions do stop (they do not stop root)."""


def statvfs(free: int, total: int = 10**12, block: int = 1) -> os.statvfs_result:
    """
    What C{os.statvfs} says of a file system of C{total} bytes with C{free}
    bytes available, in blocks of C{block} bytes.
    """
    return os.statvfs_result((block, block, total // block, free // block, free // block, 0, 0, 0, 0, 255))


def as_nobody(function: Callable[[], str]) -> str:
    """
    Call C{function} in a forked child running as C{nobody} (when this runs
    as root), and return what it returned, or the text of what it raised.
    """
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(reading)
        try:
            if os.geteuid() == 0:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            message = function()
        except SystemExit as e:
            message = str(e)
        except BaseException as e:  # noqa: B036 - reported to the parent
            message = f"{type(e).__name__}: {e}"
        os.write(writing, message.encode())
        os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as answer:
        message = answer.read().decode()
    os.waitpid(child, 0)
    return message


def many_pages(path: str, rows: int = 5000) -> int:
    """
    Create the database at C{path} with C{rows} room messages, checkpointed
    into the file and closed; return its number of pages.
    """
    with closing(schema.open_database(path)) as db:
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO messages (id, ts, room, room_key, sender, text, action) VALUES (?, 0, '#a', '#a', 'x', ?, 0)",
            [(i, f"message number {i} " * 3) for i in range(1, rows + 1)],
        )
        db.execute("COMMIT")
        page_size: int = db.execute("PRAGMA page_size").fetchone()[0]
    return os.path.getsize(path) // page_size


def corrupt_a_middle_page(path: str) -> None:
    """
    Overwrite the page in the middle of the database at C{path} with
    garbage, as a failing disk might.
    """
    with closing(sqlite3.connect(path)) as db:
        page_size: int = db.execute("PRAGMA page_size").fetchone()[0]
    pages = os.path.getsize(path) // page_size
    with open(path, "r+b") as f:
        f.seek(pages // 2 * page_size)
        f.write(b"\xa5" * page_size)


class ShareTests(SynchronousTestCase):
    """
    The share of the quota that the uploads in progress of one owner (a
    client address) may hold together (finding 4).
    """

    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-share-")
        self.addCleanup(directory.cleanup)
        self.spool = Spool(os.path.join(directory.name, "spool"), 100, inline, statvfs=lambda path: statvfs(10**9))
        self.spool.open()

    def test_share_is_a_quarter(self) -> None:
        """
        One owner's uploads in progress hold at most a quarter of the quota;
        beyond it C{/upload} is refused with C{quota} and a message saying
        why; other owners are not affected.
        """
        self.assertEqual(SHARE_DIVISOR, 4)
        self.spool.begin(20, owner="192.0.2.7")
        self.spool.begin(5, owner="192.0.2.7")
        error = self.assertRaises(errors.Quota, self.spool.begin, 1, owner="192.0.2.7")
        self.assertEqual(error.code, "quota")
        self.assertEqual(
            str(error),
            "uploads from your address hold 25 bytes of the server's file space already,"
            " and one address may hold at most 25 bytes at once: wait for them to finish",
        )
        self.spool.begin(25, owner="198.51.100.1")
        self.assertEqual(self.spool.reserved, 50)

    def test_one_upload_of_any_size(self) -> None:
        """
        An owner with nothing in progress may send one file bigger than its
        share (up to what the quota has room for), but nothing beside it.
        """
        self.spool.begin(90, owner="192.0.2.7")
        self.assertRaises(errors.Quota, self.spool.begin, 1, owner="192.0.2.7")

    def test_share_given_back(self) -> None:
        """
        An upload stored or dropped gives its bytes back to its owner's
        share; dropping it twice gives them back once.
        """
        stored = self.spool.begin(20, owner="192.0.2.7")
        dropped = self.spool.begin(5, owner="192.0.2.7")
        stored.write(b"x" * 20)
        self.successResultOf(self.spool.commit(stored))
        self.spool.abort(dropped)
        self.spool.abort(dropped)
        self.assertEqual(self.spool.reserved, 0)
        self.spool.begin(20, owner="192.0.2.7")
        self.spool.begin(5, owner="192.0.2.7")
        self.assertRaises(errors.Quota, self.spool.begin, 1, owner="192.0.2.7")

    def test_no_owner_no_share(self) -> None:
        """
        Uploads without an owner are held to the quota only.
        """
        for _ in range(4):
            self.spool.begin(25)
        self.assertEqual(self.spool.reserved, 100)


class OneAddressTests(ServerTestCase):
    """
    The attack of finding 4 against L{chat.server.ChatServer}: many
    connections from one address announce uploads and send nothing.
    """

    settings = Settings(flood_burst=10_000, max_file=4096, spool_quota=10_000)

    def test_one_address_cannot_take_the_quota(self) -> None:
        """
        21 connections from one address announcing uploads hold at most a
        quarter of the quota: the 21st is refused with C{quota}, and a user
        from another address can still upload.
        """
        accepted: list[Incoming] = []
        refusals: list[str] = []
        for number in range(21):
            participant, session = self.connect(f"attacker{number}", REMOTE, local=False)
            self.server.execute(session, commands.Nick(f"attacker{number}"))
            try:
                accepted.append(self.server.begin_upload(session, commands.Upload("#lobby", "x.bin", 476, None)))
            except errors.Quota as e:
                refusals.append(str(e))
        self.assertEqual(len(accepted), 5)
        self.assertEqual(len(refusals), 16)
        self.assertIn("one address may hold at most 2500 bytes at once", refusals[-1])
        alice, session = self.user("alice")
        incoming = self.server.begin_upload(session, commands.Upload("#lobby", "report.pdf", 4096, None))
        self.assertEqual(alice.types(), ["upload-ready"])
        self.addCleanup(self.server.abort_upload, incoming)

    def test_ipv6_network_is_one_address(self) -> None:
        """
        IPv6 clients in one /64 (C{--ipv6-prefix}) share one share.
        """
        for number, peer in enumerate(["2001:db8:1:2::1", "2001:db8:1:2::2"]):
            participant, session = self.connect(f"v6user{number}", peer, local=False)
            self.server.execute(session, commands.Nick(f"v6user{number}"))
            if number == 0:
                self.server.begin_upload(session, commands.Upload("#lobby", "a.bin", 2500, None))
            else:
                self.assertRaises(
                    errors.Quota, self.server.begin_upload, session, commands.Upload("#lobby", "b.bin", 1, None)
                )


class DiskReserveTests(SynchronousTestCase):
    """
    The free disk space an upload must leave for messages (finding 5),
    with the file system's answer injected.
    """

    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-reserve-")
        self.addCleanup(directory.cleanup)
        self.directory = os.path.join(directory.name, "spool")
        self.free = 1000
        self.spool = self.make(reserve=300)

    def make(self, reserve: int | None = None, total: int = 10**12) -> Spool:
        spool = Spool(
            self.directory, 10**12, inline, reserve=reserve, statvfs=lambda path: statvfs(self.free, total)
        )
        spool.open()
        return spool

    def test_refused_within_the_reserve(self) -> None:
        """
        An upload that would leave less than the reserve free is refused
        with C{quota}, however much room the quota has.
        """
        error = self.assertRaises(errors.Quota, self.spool.begin, 701)
        self.assertEqual(error.code, "quota")
        self.assertEqual(
            str(error),
            "the server's disk is nearly full (700 bytes free for files, 701 needed): try a smaller file later",
        )
        self.spool.begin(700)

    def test_uploads_in_progress_counted(self) -> None:
        """
        The bytes that the uploads in progress have still to write count as
        used: what they have written is in the free space already.
        """
        first = self.spool.begin(500)
        self.assertRaises(errors.Quota, self.spool.begin, 201)
        first.write(b"x" * 100)
        self.free -= 100
        self.assertRaises(errors.Quota, self.spool.begin, 201)
        self.spool.abort(first)
        self.free += 100
        self.spool.begin(700)

    def test_default_reserve(self) -> None:
        """
        Without C{--disk-reserve} the reserve is 256 MiB or 5 % of the file
        system, the smaller.
        """
        self.assertEqual(disk_reserve(100 * 1024 * MiB), RESERVE_MAX)
        self.assertEqual(RESERVE_MAX, 256 * MiB)
        self.assertEqual(disk_reserve(1000 * MiB), 50 * MiB)
        self.assertEqual(disk_reserve(1000 * MiB, 7), 7)
        self.free = 60 * MiB
        spool = self.make(total=1000 * MiB)
        spool.begin(10 * MiB)
        self.assertRaises(errors.Quota, spool.begin, 1)

    def test_logged_once_per_shortage(self) -> None:
        """
        Refusals for the disk log one warning naming the directory until an
        upload is accepted again, which logs one line too.
        """
        with capturedLogs() as logged:
            self.assertRaises(errors.Quota, self.spool.begin, 800)
            self.assertRaises(errors.Quota, self.spool.begin, 900)
            self.spool.begin(10)
        self.assertEqual(
            [(event["log_level"], formatEvent(event)) for event in logged],
            [
                (LogLevel.warn, f"the disk of {self.directory} is nearly full (1000 bytes free, 0 more promised to"
                 " uploads): uploads are refused to keep 300 bytes (--disk-reserve) for messages"),
                (LogLevel.info, f"the disk of {self.directory} has room for uploads again"),
            ],
        )

    def test_free_space_unknown_is_busy(self) -> None:
        """
        When the free space cannot be known (the spool directory is gone),
        C{/upload} is refused with C{busy} and the error logged in one line.
        """

        def gone(path: str) -> os.statvfs_result:
            raise FileNotFoundError(2, "No such file or directory")

        spool = Spool(self.directory, 1000, inline, statvfs=gone)
        with capturedLogs() as logged:
            self.assertRaises(errors.Busy, spool.begin, 1)
        self.assertEqual(
            [formatEvent(event) for event in logged],
            [f"cannot tell the free space of {self.directory}: [Errno 2] No such file or directory"],
        )


class FailedWriteLogTests(SynchronousTestCase):
    """
    A group commit that fails logs one line naming the database and the
    error, not a traceback (finding 5).
    """

    def test_one_line_per_failed_group(self) -> None:
        """
        A failed group of messages, an offer and other changes logs one
        error line saying what was lost, where and why, and no failure.
        """
        directory = tempfile.TemporaryDirectory(prefix="chat-store-")
        self.addCleanup(directory.cleanup)
        path = os.path.join(directory.name, schema.FILENAME)
        schema.open_database(path).close()
        pool = FakePool(path)
        self.addCleanup(pool.close)
        clock = Clock()
        store = SQLiteStore(pool, clock, 0, {}, path=path)
        groups = [store.add(Message(store.next_id(), TS, "#a", "alice", f"m{i}")) for i in range(12)]
        groups.append(store.add_offer(FileOffer(store.next_id(), "alice", "bob", "a.txt", 3, "ab" * 32, TS)))
        groups.append(store.set_topic("#a", "new topic", "alice"))
        groups.append(store.delivered([1]))
        self.assertEqual(len({id(group) for group in groups[:12]}), 1)  # the messages share one
        results: list[object] = []
        for group in groups[11:]:
            group.addBoth(results.append)
        clock.advance(0)
        pool.broken = True
        with capturedLogs() as logged:
            pool.run()
        self.assertEqual(len(results), 4)
        for failure in results:
            self.assertIsInstance(failure, Failure)
        self.assertEqual(
            [(event["log_level"], formatEvent(event)) for event in logged],
            [(LogLevel.error, f"could not store 12 messages, 1 file offer and 2 other changes in {path}:"
              " disk I/O error; the senders got busy")],
        )
        self.assertNotIn("log_failure", logged[0])


class DatabaseCheckTests(SynchronousTestCase):
    """
    The start-up checks of the database (finding 6): writable and sound.
    """

    def setUp(self) -> None:
        self.root = tempfile.mkdtemp(prefix="chat-check-")
        os.chmod(self.root, 0o755)
        self.addCleanup(self.remove)
        self.path = os.path.join(self.root, schema.FILENAME)

    def remove(self) -> None:
        os.chmod(self.root, 0o755)
        for name in os.listdir(self.root):
            os.remove(os.path.join(self.root, name))
        os.rmdir(self.root)

    def test_sound_database_passes_and_is_unchanged(self) -> None:
        """
        A sound, writable database passes the check, which changes nothing in it.
        """
        many_pages(self.path, 50)
        before = Path(self.path).read_bytes()
        schema.open_database(self.path, check=True).close()
        self.assertEqual(Path(self.path).read_bytes(), before)

    def test_corrupt_page_refused(self) -> None:
        """
        A database with a damaged page in the middle is refused, in one line
        naming the file, what is wrong and what to do.
        """
        self.assertGreater(many_pages(self.path), 20)
        corrupt_a_middle_page(self.path)
        error = self.assertRaises(schema.DatabaseError, schema.open_database, self.path, check=True)
        message = str(error)
        self.assertTrue(message.startswith(f"the database {self.path} is damaged (Page "), message)
        self.assertTrue(message.endswith(
            f"): restore it from a backup, or save what can be read (sqlite3 {self.path} .recover,"
            " or chat-admin export ROOM) and start with a new database"
        ), message)
        self.assertNotIn("\n", message)

    def test_corrupt_page_readable_without_check(self) -> None:
        """
        Without the check (C{chat-admin}), a damaged database still opens,
        so that what is left can be read.
        """
        many_pages(self.path)
        corrupt_a_middle_page(self.path)
        store = open_store(self.root, Clock(), create=False, make_pool=FakePool)
        self.addCleanup(store._pool.close)
        self.assertEqual(store.last_id(), 5000)

    def test_locked_by_another_program(self) -> None:
        """
        A database another program keeps locked for writing is refused in
        one line saying so, after the busy timeout.
        """
        self.patch(schema, "BUSY_TIMEOUT", 0.01)
        many_pages(self.path, 10)
        with closing(sqlite3.connect(self.path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            error = self.assertRaises(schema.DatabaseError, schema.open_database, self.path, check=True)
            other.execute("ROLLBACK")
        self.assertEqual(
            str(error),
            f"cannot write to the database {self.path}: database is locked; another program (chat-admin?)"
            " kept it locked; try again once it is done",
        )

    def test_read_only_file_refused(self) -> None:
        """
        A database file the daemon's user cannot write is refused in one
        line naming the file and what to do.
        """
        many_pages(self.path, 10)
        os.chmod(self.path, 0o444)
        if os.geteuid() == 0:
            os.chown(self.root, NOBODY, NOBODY)  # nobody may make the -wal and -shm files beside it

        def check() -> str:
            try:
                open_store(self.root, Clock(), create=False, make_pool=FakePool, check=True)
            except schema.DatabaseError as e:
                return str(e)
            return "opened"

        self.assertEqual(
            as_nobody(check),
            f"cannot write to the database {self.path}: attempt to write a readonly database; let the daemon's"
            " user write to it and to its directory (chown, chmod), or restore it from a backup",
        )


LOCK = """
import sys
from chat.datadir import DataDirectory
data = DataDirectory(sys.argv[1])
try:
    data.lock()
except OSError as e:
    print(e)
else:
    print("locked")
"""
"""A program that tries to lock the data directory given as its argument."""


class DataDirectoryLockTests(SynchronousTestCase):
    """
    L{DataDirectory.lock}: one process per data directory (finding 6).
    """

    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-lock-")
        self.addCleanup(directory.cleanup)
        self.path = directory.name

    def other_process(self) -> str:
        """
        What another process gets when it tries to lock the directory.
        """
        done = subprocess.run(
            [sys.executable, "-c", LOCK, self.path], env=child_environment(), capture_output=True, text=True,
            timeout=30, check=True,
        )
        return done.stdout.strip()

    def test_other_process_refused_until_released(self) -> None:
        """
        While this process holds the lock another is refused, saying that
        another daemon uses the directory; once released it may lock it.
        """
        data = DataDirectory(self.path)
        data.lock()
        self.addCleanup(data.release)
        self.assertEqual(self.other_process(), "[Errno 11] another chat daemon is using it (stop that one first)")
        data.release()
        self.assertEqual(self.other_process(), "locked")

    def test_shared_within_a_process(self) -> None:
        """
        Two L{DataDirectory} objects of one process share the lock: it is
        held until both are released.
        """
        first, second = DataDirectory(self.path), DataDirectory(self.path)
        first.lock()
        second.lock()
        self.addCleanup(first.release)
        self.addCleanup(second.release)
        first.release()
        self.assertNotEqual(self.other_process(), "locked")
        second.release()
        self.assertEqual(self.other_process(), "locked")

    def test_released_when_garbage(self) -> None:
        """
        A L{DataDirectory} dropped without being released gives up its lock.
        """
        data = DataDirectory(self.path)
        data.lock()
        del data
        self.assertEqual(self.other_process(), "locked")

    def test_refused_start_leaves_the_directory(self) -> None:
        """
        A start refused because another daemon holds the directory removes
        nothing from it, even if it thought it had created it.
        """
        holder = subprocess.Popen(
            [sys.executable, "-c", LOCK + "sys.stdout.flush(); sys.stdin.read()", self.path],
            env=child_environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.addCleanup(holder.wait, 10)
        self.addCleanup(holder.stdin.close)  # type: ignore[union-attr]
        self.assertEqual(holder.stdout.readline().strip(), "locked")  # type: ignore[union-attr]
        Path(self.path, schema.FILENAME).write_text("the other daemon's")
        data = DataDirectory(self.path)
        data.created = [self.path]
        error = self.assertRaises(BlockingIOError, data.lock)
        self.assertEqual(error.strerror, "another chat daemon is using it (stop that one first)")
        data.discard()
        self.assertEqual(Path(self.path, schema.FILENAME).read_text(), "the other daemon's")

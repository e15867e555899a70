"""
Tests for L{chat.spool}: display names, quota and reservations, partial
files, commit by content hash, and the removal of unused files (PROTOCOL.md
sections 6 and 8).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.trial.unittest import SynchronousTestCase

from chat import errors
from chat.spool import PARTIAL, Spool, display_name, is_sha256


def inline(function: Any, *args: Any) -> Deferred[Any]:
    """
    Run the blocking part of a commit at once, on this thread.
    """
    return maybeDeferred(function, *args)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DisplayNameTests(SynchronousTestCase):
    def test_last_path_component(self) -> None:
        """
        Only the last component of a path is kept, after / or \\.
        """
        self.assertEqual(display_name("../../x"), "x")
        self.assertEqual(display_name("/etc/passwd"), "passwd")
        self.assertEqual(display_name("C:\\Users\\bob\\report.pdf"), "report.pdf")

    def test_control_characters_removed(self) -> None:
        """
        Control characters (terminal escapes) are removed, spaces around trimmed.
        """
        self.assertEqual(display_name(" a\x1b[31mb\x07c.txt\r\n "), "a[31mbc.txt")

    def test_nothing_left_is_file(self) -> None:
        """
        A name with nothing usable left is shown as C{file}.
        """
        for name in ("", "..", ".", "dir/", "\x1b", "a/.."):
            self.assertEqual(display_name(name), "file", name)

    def test_length_bounded(self) -> None:
        """
        A name is cut to 255 characters.
        """
        self.assertEqual(display_name("é" * 300), "é" * 255)

    def test_is_sha256(self) -> None:
        """
        A SHA-256 is 64 hex digits in either case.
        """
        self.assertTrue(is_sha256("AB" * 32))
        self.assertFalse(is_sha256("ab" * 31))
        self.assertFalse(is_sha256("zz" * 32))
        self.assertFalse(is_sha256("ab" * 32 + "\n"))


class SpoolTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-spool-test-")
        self.addCleanup(directory.cleanup)
        self.directory = os.path.join(directory.name, "spool")
        self.spool = Spool(self.directory, 100, inline)
        self.spool.open()

    def store(self, data: bytes, expected: str | None = None) -> str:
        upload = self.spool.begin(len(data), expected)
        upload.write(data)
        result: str = self.successResultOf(self.spool.commit(upload))
        return result

    def partial(self) -> list[str]:
        return os.listdir(os.path.join(self.directory, PARTIAL))

    def stored(self) -> list[str]:
        return sorted(name for name in os.listdir(self.directory) if name != PARTIAL)


class SpoolTests(SpoolTestCase):
    def test_commit_stores_by_content(self) -> None:
        """
        A complete upload is stored under its sha256, with nothing left in partial/.
        """
        digest = self.store(b"hello")
        self.assertEqual(digest, sha(b"hello"))
        self.assertEqual(self.stored(), [digest])
        with self.spool.read(digest) as f:
            self.assertEqual(f.read(), b"hello")
        self.assertEqual(self.partial(), [])
        self.assertEqual((self.spool.used, self.spool.reserved), (5, 0))
        self.assertTrue(self.spool.has(digest))

    def test_upload_in_partial_until_commit(self) -> None:
        """
        An upload in progress lives in partial/ and reserves its announced size.
        """
        upload = self.spool.begin(10)
        upload.write(b"12345")
        self.assertEqual(len(self.partial()), 1)
        self.assertEqual(self.stored(), [])
        self.assertEqual((self.spool.used, self.spool.reserved, upload.remaining), (0, 10, 5))

    def test_quota_counts_stored_and_reserved(self) -> None:
        """
        An upload that would take stored plus announced bytes past the quota is refused with C{quota}.
        """
        self.store(b"x" * 40)
        self.spool.begin(50)
        error = self.assertRaises(errors.Quota, self.spool.begin, 11)
        self.assertEqual(error.code, "quota")
        self.assertIn("10 bytes free, 11 needed", str(error))
        self.spool.begin(10)

    def test_abort_removes_and_releases(self) -> None:
        """
        An aborted upload leaves no file and gives its reservation back.
        """
        upload = self.spool.begin(100)
        upload.write(b"part")
        self.spool.abort(upload)
        self.assertEqual(self.partial(), [])
        self.assertEqual(self.spool.reserved, 0)
        self.spool.begin(100)

    def test_checksum_mismatch(self) -> None:
        """
        Bytes whose sha256 differs from the announced one fail the commit with C{checksum-mismatch}, and are dropped.
        """
        upload = self.spool.begin(5, "AB" * 32)
        upload.write(b"hello")
        failure = self.failureResultOf(self.spool.commit(upload), errors.ChecksumMismatch)
        self.assertIn(sha(b"hello"), str(failure.value))
        self.assertEqual((self.partial(), self.stored()), ([], []))
        self.assertEqual((self.spool.used, self.spool.reserved), (0, 0))

    def test_announced_checksum_any_case(self) -> None:
        """
        The announced sha256 may be upper case.
        """
        self.assertEqual(self.store(b"hello", sha(b"hello").upper()), sha(b"hello"))

    def test_same_bytes_stored_once(self) -> None:
        """
        Two uploads of the same bytes share one file, counted once.
        """
        first = self.store(b"same")
        second = self.store(b"same")
        self.assertEqual(first, second)
        self.assertEqual(self.stored(), [first])
        self.assertEqual(self.spool.used, 4)

    def test_write_failure_is_busy(self) -> None:
        """
        A spool that cannot be written fails the commit with C{busy}, and the partial file is removed.
        """
        upload = self.spool.begin(3)

        def full(data: bytes) -> int:
            raise OSError(28, "No space left on device")

        self.patch(upload._file, "write", full)
        upload.write(b"abc")
        self.assertEqual(upload.remaining, 0)
        self.failureResultOf(self.spool.commit(upload), errors.Busy)
        self.assertEqual((self.partial(), self.spool.reserved), ([], 0))
        self.assertEqual(self.stored(), [])

    def test_failed_store_is_busy(self) -> None:
        """
        A commit whose flush or rename fails is C{busy}, and leaves no file.
        """
        spool = Spool(self.directory, 100, lambda *a: maybeDeferred(self.fail_store))
        upload = spool.begin(2)
        upload.write(b"ab")
        self.failureResultOf(spool.commit(upload), errors.Busy)
        self.assertEqual((self.partial(), spool.reserved, spool.used), ([], 0, 0))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def fail_store(self) -> None:
        raise OSError("disk on fire")

    def test_read_missing(self) -> None:
        """
        Reading a file that is not stored is C{no-such-file}.
        """
        self.assertRaises(errors.NoSuchFile, self.spool.read, "ab" * 32)


class SharedSpoolTests(SpoolTestCase):
    """
    A directory shared by the daemons of a cluster (C{--spool}, PROTOCOL.md section 13).
    """

    def test_files_of_another_daemon(self) -> None:
        """A file another daemon stored in the shared directory is had and read here; unknown names are not."""
        other = Spool(self.directory, 100, inline, partial=os.path.join(PARTIAL, "b"))
        other.open()
        upload = other.begin(5)
        upload.write(b"hello")
        sha256 = self.successResultOf(other.commit(upload))
        self.assertTrue(self.spool.has(sha256))
        with self.spool.read(sha256) as file:
            self.assertEqual(file.read(), b"hello")
        self.assertFalse(self.spool.has("0" * 64))
        self.assertFalse(self.spool.has("../" + sha256))

    def test_each_daemon_empties_only_its_partial(self) -> None:
        """Opening a daemon's spool empties its own partial directory, not another daemon's upload in progress."""
        mine = Spool(self.directory, 100, inline, partial=os.path.join(PARTIAL, "a"))
        mine.open()
        theirs = Spool(self.directory, 100, inline, partial=os.path.join(PARTIAL, "b"))
        theirs.open()
        upload = theirs.begin(5)
        upload.write(b"he")
        mine.open()
        self.assertEqual(len(os.listdir(os.path.join(self.directory, PARTIAL, "b"))), 1)


class CollectTests(SpoolTestCase):
    def test_unreferenced_removed(self) -> None:
        """
        collect removes the files no offer points to and counts the bytes freed.
        """
        keep = self.store(b"keep")
        drop = self.store(b"drop me")
        self.assertEqual(self.spool.collect({keep}), 7)
        self.assertEqual(self.stored(), [keep])
        self.assertEqual(self.spool.used, 4)
        self.assertFalse(self.spool.has(drop))

    def test_file_being_stored_kept(self) -> None:
        """
        A file whose upload is being committed is kept, though no offer points to it yet.
        """
        pending: Deferred[None] = Deferred()
        spool = Spool(self.directory, 100, lambda function, *args: pending.addCallback(lambda _: function(*args)))
        upload = spool.begin(3)
        upload.write(b"new")
        committing = spool.commit(upload)
        spool.collect(set())
        pending.callback(None)
        self.assertEqual(self.successResultOf(committing), sha(b"new"))
        self.assertEqual(self.stored(), [sha(b"new")])

    def test_open_counts_and_cleans(self) -> None:
        """
        Opening a spool removes what a crash left in partial/ and counts the stored files.
        """
        digest = self.store(b"stored")
        self.spool.begin(3).write(b"abc")
        with open(os.path.join(self.directory, "notes.txt"), "w") as f:
            f.write("not ours")
        spool = Spool(self.directory, 100, inline)
        spool.open()
        self.assertEqual(self.partial(), [])
        self.assertEqual((spool.used, spool.reserved), (6, 0))
        self.assertTrue(spool.has(digest))

    def test_temporary_removed_on_close(self) -> None:
        """
        A temporary spool's directory is removed on close; a real one is kept.
        """
        spool = Spool.in_temporary_directory(10)
        self.assertTrue(os.path.isdir(os.path.join(spool.directory, PARTIAL)))
        spool.close()
        self.assertFalse(os.path.exists(spool.directory))
        self.spool.close()
        self.assertTrue(os.path.isdir(self.directory))


class DisguisedNameTests(SynchronousTestCase):
    """
    L{display_name} against names that disguise what a file is (PROTOCOL.md
    section 1): format characters, white space padding, and names cut to
    L{NAME_MAX}.
    """

    def test_bidi_controls_removed(self) -> None:
        """
        Each bidi override, embedding and isolate is removed, so the real extension shows.
        """
        for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)):
            self.assertEqual(display_name(f"invoice{chr(code)}txt.exe"), "invoicetxt.exe", hex(code))

    def test_every_format_character_removed(self) -> None:
        """
        Every character of category Cf goes (marks, zero-width characters,
        soft hyphen, BOM, tags); letters of any script, combining marks and
        variation selectors stay.
        """
        cf = "\u200b\u200c\u200d\u200e\u200f\u061c\u2060\u00ad\ufeff\U000e0041\u180e"
        self.assertEqual(display_name(f"re{cf}port{cf}.pdf{cf}"), "report.pdf")
        self.assertEqual(display_name(f"{cf}/{cf}"), "file")
        self.assertEqual(display_name(f".{cf}."), "file")
        kept = "\u05e9\u05dc\u05d5\u05dd e\u0301t\u00e9 \u2764\ufe0f.txt"
        self.assertEqual(display_name(f"{cf}{kept}{cf}"), kept)

    def test_white_space_runs_collapsed(self) -> None:
        """
        A run of white space (tabs and Unicode spaces too) shows as one space,
        so padding cannot push the extension out of sight.
        """
        self.assertEqual(display_name("invoice.pdf" + " " * 200 + ".exe"), "invoice.pdf .exe")
        self.assertEqual(display_name("a\t\u3000\u2003\xa0b.txt"), "a b.txt")

    def test_long_name_keeps_its_extension(self) -> None:
        """
        A name cut to 255 characters is cut before its extension, which stays
        whole; an extension too long for that leaves the name's last 255.
        """
        self.assertEqual(display_name("a" * 300 + ".exe"), "a" * 251 + ".exe")
        self.assertEqual(display_name("a" * 300 + ".tar.gz"), "a" * 252 + ".gz")
        self.assertEqual(display_name("a" * 255), "a" * 255)
        self.assertEqual(display_name("x." + "b" * 300), "b" * 255)
        self.assertEqual(display_name("." + "b" * 300), "." + "b" * 254)

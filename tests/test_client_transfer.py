"""
Tests for L{chat.client.transfer}: safe file names for offers, downloads
that stay inside their folder, resume, never overwrite and check SHA-256,
and uploads hashed from disk.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from chat import events
from chat.client.transfer import NAME_MAX, ChecksumMismatch, Download, Upload, safe_name
from chat.codec import ProtocolError

DATA = b"0123456789abcdef\r\n\xff\x00" * 500


def scratch(case: SynchronousTestCase) -> Path:
    """
    A new empty directory outside the source tree, removed after C{case}.
    """
    path = Path(tempfile.mkdtemp(prefix="chat-client-test-"))
    case.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def header(offer_id: int = 7, offset: int = 0, data: bytes = DATA, name: str = "a.bin") -> events.FileHeader:
    return events.FileHeader(offer_id, name, len(data), offset, sha(data))


class SafeNameTests(SynchronousTestCase):
    """
    L{safe_name} turns any offered name into one plain, visible file name.
    """

    def test_plain(self) -> None:
        """
        An ordinary name, spaces and Unicode included, is kept.
        """
        self.assertEqual(safe_name("Notes for Friday \u00e9t\u00e9.pdf"), "Notes for Friday \u00e9t\u00e9.pdf")

    def test_paths(self) -> None:
        """
        Only the last path component is kept, with either separator.
        """
        self.assertEqual(safe_name("../x"), "x")
        self.assertEqual(safe_name("/etc/x"), "x")
        self.assertEqual(safe_name("..\\..\\win.ini"), "win.ini")
        self.assertEqual(safe_name("a/b\\c/../d.txt"), "d.txt")
        self.assertEqual(safe_name("dir/"), "file")

    def test_control_characters(self) -> None:
        """
        C0, DEL and C1 control characters (terminal escapes) are removed.
        """
        self.assertEqual(safe_name("\x1b[31mred"), "[31mred")
        self.assertEqual(safe_name("a\tb\x00c\x7fd\x9be\nf"), "abcdef")

    def test_surrogates(self) -> None:
        """
        Lone surrogates, which no file system name can hold as UTF-8, are removed.
        """
        self.assertEqual(safe_name("a\udcffb"), "ab")

    def test_nothing_left(self) -> None:
        """
        Empty, dot-only and separator-only names become C{file}.
        """
        for name in ["", ".", "..", "...", "  ", "/", "../", "\x1b", " . "]:
            self.assertEqual(safe_name(name), "file", repr(name))

    def test_hidden(self) -> None:
        """
        Leading dots and surrounding spaces are stripped: no hidden files.
        """
        self.assertEqual(safe_name(".bashrc"), "bashrc")
        self.assertEqual(safe_name(" . .profile "), "profile")
        self.assertEqual(safe_name("  spaced name.txt  "), "spaced name.txt")

    def test_long_keeps_extension(self) -> None:
        """
        A 400-character name is cut to 255 UTF-8 bytes, keeping its extension.
        """
        name = safe_name("x" * 400 + ".tar.gz")
        self.assertEqual(len(name.encode("utf-8")), NAME_MAX)
        self.assertTrue(name.endswith("x.gz"))
        self.assertEqual(safe_name("y" * 400), "y" * 255)

    def test_long_multibyte(self) -> None:
        """
        Cutting never splits a multi-byte character.
        """
        name = safe_name("\u6f22" * 400 + ".txt")
        self.assertLessEqual(len(name.encode("utf-8")), NAME_MAX)
        self.assertEqual(name, "\u6f22" * 83 + ".txt")

    def test_long_extension_not_kept(self) -> None:
        """
        A suffix too long to be an extension is cut like the rest.
        """
        name = safe_name("a." + "b" * 400)
        self.assertEqual(name, "a." + "b" * 253)


class DownloadTests(SynchronousTestCase):
    """
    L{Download} writes into its folder only, resumes, checks, and never overwrites.
    """

    def setUp(self) -> None:
        self.folder = scratch(self) / "Downloads" / "chat"

    def fetch(self, download: Download, data: bytes = DATA, chunk: int = 1000) -> Path:
        download.prepare()
        download.begin(header(download.offer_id, download.offset, data))
        rest = data[download.offset:]
        for i in range(0, len(rest), chunk):
            self.assertEqual(download.write(rest[i:i + chunk]), len(rest[i:i + chunk]))
        self.assertEqual(download.remaining, 0)
        return download.finish()

    def files(self) -> list[str]:
        return sorted(os.listdir(self.folder))

    def test_download(self) -> None:
        """
        The bytes land under the safe name in the folder (created with its parents), and no partial file is left.
        """
        path = self.fetch(Download(7, "a.bin", self.folder))
        self.assertEqual(path, self.folder / "a.bin")
        self.assertEqual(path.read_bytes(), DATA)
        self.assertEqual(self.files(), ["a.bin"])

    def test_partial_name(self) -> None:
        """
        Partial bytes go to C{<safe name>.<id>.part} in the folder.
        """
        download = Download(7, "../../a.bin", self.folder)
        download.prepare()
        download.begin(header())
        download.write(DATA[:10])
        download.abort()
        self.assertEqual(download.part, self.folder / "a.bin.7.part")
        self.assertEqual(self.files(), ["a.bin.7.part"])
        self.assertEqual(download.part.read_bytes(), DATA[:10])

    def test_hostile_names_stay_inside(self) -> None:
        """
        Offers named with paths or control characters land inside the folder, under a plain name.
        """
        long = "z" * 400 + ".txt"
        cases = [
            ("../x", "x"), ("/etc/x", "x (1)"), ("..\\..\\win.ini", "win.ini"), ("\x1b[31mred", "[31mred"),
            ("", "file"), ("..", "file (1)"), (".bashrc", "bashrc"), (long, "z" * 251 + ".txt"),
        ]
        for offer_id, (name, expected) in enumerate(cases, 1):
            path = self.fetch(Download(offer_id, name, self.folder))
            self.assertEqual(path, self.folder / expected)
            self.assertEqual(path.read_bytes(), DATA)
        self.assertEqual(self.files(), sorted(expected for _, expected in cases))
        self.assertFalse((self.folder.parent / "x").exists())

    def test_never_overwrites(self) -> None:
        """
        An existing file is kept: the download becomes C{name (1).ext}, then C{name (2).ext}.
        """
        self.folder.mkdir(parents=True)
        (self.folder / "a.bin").write_bytes(b"mine")
        (self.folder / "a (1).bin").write_bytes(b"mine too")
        path = self.fetch(Download(7, "a.bin", self.folder))
        self.assertEqual(path, self.folder / "a (2).bin")
        self.assertEqual((self.folder / "a.bin").read_bytes(), b"mine")
        self.assertEqual((self.folder / "a (1).bin").read_bytes(), b"mine too")
        self.assertEqual(path.read_bytes(), DATA)

    def test_numbered_long_name(self) -> None:
        """
        A numbered name is cut to fit 255 bytes, keeping its mark and extension.
        """
        name = "n" * 300 + ".txt"
        first = self.fetch(Download(1, name, self.folder))
        second = self.fetch(Download(2, name, self.folder))
        self.assertEqual(len(second.name.encode()), NAME_MAX)
        self.assertTrue(second.name.endswith("n (1).txt"))
        self.assertNotEqual(first, second)

    def test_resume(self) -> None:
        """
        A partial file sets the offset to its size, and the rest completes it with the right checksum.
        """
        self.folder.mkdir(parents=True)
        (self.folder / "a.bin.7.part").write_bytes(DATA[:1234])
        download = Download(7, "a.bin", self.folder)
        download.prepare()
        self.assertEqual(download.offset, 1234)
        with self.assertRaises(ProtocolError):
            download.begin(header(offset=0))
        path = self.fetch(download)
        self.assertEqual(path.read_bytes(), DATA)

    def test_write_takes_only_the_file(self) -> None:
        """
        C{write} takes at most the bytes still expected and says how many.
        """
        download = Download(7, "a.bin", self.folder)
        download.prepare()
        download.begin(header())
        self.assertEqual(download.write(DATA[:-5]), len(DATA) - 5)
        self.assertEqual(download.remaining, 5)
        self.assertEqual(download.write(DATA[-5:] + b"{next line}"), 5)
        self.assertEqual(download.remaining, 0)
        self.assertEqual(download.received, len(DATA))
        self.assertEqual(download.finish().read_bytes(), DATA)

    def test_checksum_mismatch(self) -> None:
        """
        Bytes whose SHA-256 differs from the header's raise L{ChecksumMismatch}, and the partial file is deleted.
        """
        download = Download(7, "a.bin", self.folder)
        download.prepare()
        download.begin(events.FileHeader(7, "a.bin", len(DATA), 0, "0" * 64))
        download.write(DATA)
        self.assertRaises(ChecksumMismatch, download.finish)
        self.assertEqual(self.files(), [])

    def test_resume_from_wrong_bytes(self) -> None:
        """
        A partial file holding other bytes fails the checksum after resuming, and is deleted.
        """
        self.folder.mkdir(parents=True)
        (self.folder / "a.bin.7.part").write_bytes(b"X" * 100)
        self.assertRaises(ChecksumMismatch, self.fetch, Download(7, "a.bin", self.folder))
        self.assertEqual(self.files(), [])

    def test_begin_checks_header(self) -> None:
        """
        A header for another offer, or from another offset than the partial file's, is refused.
        """
        download = Download(7, "a.bin", self.folder)
        download.prepare()
        with self.assertRaises(ProtocolError):
            download.begin(header(offer_id=8))
        with self.assertRaises(ProtocolError):
            download.begin(events.FileHeader(7, "a.bin", 3, 5, sha(b"")))

    def test_empty_file(self) -> None:
        """
        A file of 0 bytes is finished at once.
        """
        path = self.fetch(Download(7, "empty", self.folder), b"")
        self.assertEqual(path.read_bytes(), b"")

    def test_part_symlink_refused(self) -> None:
        """
        A partial file that is a symbolic link is not followed.
        """
        self.folder.mkdir(parents=True)
        outside = scratch(self) / "outside"
        outside.write_bytes(b"secret")
        (self.folder / "a.bin.7.part").symlink_to(outside)
        download = Download(7, "a.bin", self.folder)
        with self.assertRaises(OSError) as caught:
            download.prepare()
        self.assertEqual(caught.exception.errno, errno.ELOOP)
        self.assertEqual(outside.read_bytes(), b"secret")


class UploadTests(SynchronousTestCase):
    """
    L{Upload} reads the size and SHA-256 of a file.
    """

    def test_prepare(self) -> None:
        """
        C{prepare} sets size and sha256 and leaves the file open at its first byte.
        """
        path = scratch(self) / "data.bin"
        path.write_bytes(DATA)
        upload = Upload(path)
        self.assertEqual((upload.path, upload.name), (path, path.name))
        upload.prepare()
        self.assertEqual((upload.size, upload.sha256), (len(DATA), sha(DATA)))
        assert upload.file is not None
        self.assertEqual(upload.file.read(), DATA)
        upload.close()
        self.assertIsNone(upload.file)

    def test_missing(self) -> None:
        """
        A missing file raises its C{OSError} as is.
        """
        upload = Upload(scratch(self) / "missing")
        with self.assertRaises(FileNotFoundError):
            upload.prepare()

    def test_not_regular(self) -> None:
        """
        A directory is refused with C{EINVAL}, and nothing stays open.
        """
        path = scratch(self) / "folder"
        path.mkdir()
        upload = Upload(path)
        with self.assertRaises(OSError) as caught:
            upload.prepare()
        self.assertEqual(caught.exception.errno, errno.EINVAL)
        self.assertIsNone(upload.file)

"""
End-to-end tests of file sharing (PROTOCOL.md section 6, issue 4) against
real C{twistd -n chat} processes on loopback: uploads through the raw-mode
switch, downloads streamed between lines, resume, limits, names, lost
connections, chat during a download, expiry and restarts.

Each test runs its own daemon (they start in well under a second), and
fails if that daemon logs an unhandled error.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.e2e import TS, Client, Daemon, eventually

FAST = ("--flood-burst", "100000", "--flood-rate", "100000")
"""Flood limits out of the way, for tests that send many lines."""

EXITED_ON_SIGTERM = (0, -signal.SIGTERM)
"""Exit statuses of a clean stop: twistd re-raises the signal that stopped it."""

TRICKY = b"\r\n\xff\x00\r\x00\xff\xfd\x06/ping inside\r\n/quit\n\xff\xff\x00"
"""Bytes every payload starts with: line ends (LF, CR LF, CR NUL), NUL,
telnet commands (IAC, IAC DO TIMING-MARK, an escaped IAC) and command lines,
none of which may be taken for input while they are a file's bytes."""

OFFER_MEMBERS = {"type", "id", "from", "to", "name", "size", "sha256", "expires"}
"""The members of a C{file-offer} event (PROTOCOL.md section 5)."""

NO_FILES = "No files are offered to you"
"""The C{info} that ends an empty C{/files} answer."""


def payload(size: int, seed: int) -> bytes:
    """
    C{size} bytes: L{TRICKY} first, then pseudo-random bytes from C{seed}.
    """
    body = random.Random(seed).randbytes(max(size - len(TRICKY), 0))
    return (TRICKY + body)[:size]


def sha256(data: bytes) -> str:
    """
    The SHA-256 of C{data}, lower-case hex.
    """
    return hashlib.sha256(data).hexdigest()


def of_type(events: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """
    The events of type C{kind}, in order.
    """
    return [e for e in events if e["type"] == kind]


def all_said(texts: Sequence[str]) -> Callable[[dict[str, Any]], bool]:
    """
    An event predicate true once C{message}s with every one of C{texts}
    have been seen (they come from several connections, in any order).
    """
    waiting = set(texts)

    def seen(event: dict[str, Any]) -> bool:
        if event["type"] == "message":
            waiting.discard(event["text"])
        return not waiting

    return seen


def parse_ts(text: str) -> datetime:
    """
    The aware UTC time of an RFC 3339 C{ts} with milliseconds.
    """
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)




def open_files(daemon: Daemon) -> dict[int, str]:
    """
    The daemon's open file descriptors and what each points to (a path,
    C{socket:[...]}, C{pipe:[...]}), from C{/proc}.
    """
    assert daemon.process is not None
    directory = f"/proc/{daemon.process.pid}/fd"
    found = {}
    for name in os.listdir(directory):
        try:
            found[int(name)] = os.readlink(os.path.join(directory, name))
        except FileNotFoundError:  # closed meanwhile
            pass
    return found


def spool_dir(daemon: Daemon) -> str:
    """
    The daemon's spool directory, C{DATA_DIR/spool}.
    """
    return os.path.join(daemon.data_dir, "spool")


def partial_dir(daemon: Daemon) -> str:
    """
    The daemon's directory of uploads in progress, C{DATA_DIR/spool/partial}.
    """
    return os.path.join(daemon.data_dir, "spool", "partial")


class FilesTestCase(SynchronousTestCase):
    """
    Helpers for tests that run their own daemon and clients, all closed
    (and the daemon's log checked) after the test.
    """

    def start_daemon(self, *options: str) -> Daemon:
        """
        A started daemon with C{options}, stopped and checked after the test.
        """
        daemon = Daemon(*options)
        self.addCleanup(daemon.stop)
        return daemon.start()

    def client(self, daemon: Daemon, nick: str, rcvbuf: int | None = None) -> Client:
        """
        A JSON client registered as C{nick}, with a receive buffer of
        C{rcvbuf} bytes if given (so a download it does not read stalls).
        """
        client = Client(daemon.port, rcvbuf=rcvbuf)
        self.addCleanup(client.close)
        client.read_lines_until(lambda line: "Choose a nickname" in line)
        client.send_line("/format json")
        client.registration = client.read_events_until("welcome")[-1:]
        client.send_line(f"/nick {nick}")
        client.registration += client.read_events_until(
            lambda e: e["type"] == "history" and e["room"] == "#lobby"
        )
        return client

    def answer(self, client: Client, *kinds: str) -> dict[str, Any]:
        """
        Read events until one of type C{error} or one of C{kinds}; returns it.
        """
        return client.read_events_until(lambda e: e["type"] in ("error", *kinds))[-1]

    def begin_upload(
        self, client: Client, target: str, name: str, size: int, checksum: str | None
    ) -> dict[str, Any]:
        """
        Send C{/upload TARGET NAME SIZE [SHA256]}; returns its C{upload-ready}.
        """
        line = f"/upload {target} {name} {size}" + (f" {checksum}" if checksum else "")
        client.send_line(line)
        ready = self.answer(client, "upload-ready")
        self.assertEqual(ready["type"], "upload-ready", ready)
        return ready

    def upload(
        self, client: Client, target: str, name: str, data: bytes, checksum: str | None = ""
    ) -> dict[str, Any]:
        """
        Upload C{data} to C{target} as C{name}, announcing C{checksum} (its
        SHA-256 when C{""}, none when C{None}); returns the C{upload-done},
        checked against the C{upload-ready} before it.
        """
        digest = sha256(data)
        ready = self.begin_upload(client, target, name, len(data), digest if checksum == "" else checksum)
        self.assertEqual(ready["size"], len(data))
        client.send(data)
        done = self.answer(client, "upload-done")
        self.assertEqual(done, {"type": "upload-done", "id": ready["id"], "sha256": digest})
        return done

    def refused_upload(self, client: Client, target: str, name: str, size: int) -> str:
        """
        Send C{/upload TARGET NAME SIZE} that must be refused; returns the
        error code, after checking that no C{upload-ready} came and that the
        connection reads lines (a ping sent in the same packet is answered).
        """
        client.send(f"/upload {target} {name} {size}\n/ping still-lines\n".encode())
        events = client.read_events_until(lambda e: e["type"] == "pong")
        self.assertEqual(events[-1], {"type": "pong", "token": "still-lines"})
        self.assertEqual(of_type(events, "upload-ready"), [])
        errors = of_type(events, "error")
        self.assertEqual(len(errors), 1, events)
        return str(errors[0]["code"])

    def download(
        self, client: Client, offer_id: int, offset: int | None = None
    ) -> tuple[dict[str, Any], bytes]:
        """
        Send C{/download ID [OFFSET]}; returns its C{file} line and the raw
        bytes after it (its C{size} minus its C{offset}).
        """
        client.send_line(f"/download {offer_id}" + ("" if offset is None else f" {offset}"))
        header = self.answer(client, "file")
        self.assertEqual(header["type"], "file", header)
        return header, client.read_exact(header["size"] - header["offset"], timeout=15)

    def error(self, client: Client, line: str) -> str:
        """
        Send C{line}, which must fail; returns the error code, after checking
        nothing else (raw bytes above all) came before the next pong.
        """
        client.ping("before")
        client.send_line(line)
        events = client.ping("after")
        self.assertEqual([e["type"] for e in events], ["error"], events)
        return str(events[0]["code"])

    def files(self, client: Client) -> list[dict[str, Any]]:
        """
        Send C{/files}; returns the C{file-offer} events of its answer.
        """
        client.ping("before-files")
        client.send_line("/files")
        events = client.read_events_until(lambda e: e["type"] == "info")
        offers = of_type(events, "file-offer")
        self.assertEqual(len(offers), len(events) - 1, events)
        if not offers:
            self.assertEqual(events[-1]["text"], NO_FILES)
        return offers

    def assert_no_offer(self, client: Client) -> None:
        """
        @raise AssertionError: C{client} got a C{file-offer} so far, or
            C{/files} lists one.
        """
        self.assertEqual(of_type(client.ping("no-offer"), "file-offer"), [])
        self.assertEqual(self.files(client), [])

    def assert_offer(
        self, offer: dict[str, Any], done: dict[str, Any], sender: str, to: str, name: str, size: int
    ) -> None:
        """
        @raise AssertionError: C{offer} is not the C{file-offer} of upload
            C{done}, expiring about 24 hours from now.
        """
        self.assertEqual(set(offer), OFFER_MEMBERS)
        self.assertEqual(
            {k: v for k, v in offer.items() if k != "expires"},
            {
                "type": "file-offer", "id": done["id"], "from": sender, "to": to,
                "name": name, "size": size, "sha256": done["sha256"],
            },
        )
        self.assertRegex(offer["expires"], TS)
        expires = parse_ts(offer["expires"])
        ahead = expires - datetime.now(UTC)
        self.assertLess(abs(ahead - timedelta(hours=24)), timedelta(minutes=1), offer["expires"])


class RoundTripTests(FilesTestCase):
    """
    Files go from one user to a nick or a room, byte for byte.
    """

    def test_round_trip_to_a_nick(self) -> None:
        """
        A file uploaded to a nick is answered upload-ready then upload-done
        with its sha256, offered to that nick with every member right, and
        downloads as one file line then exactly its bytes, after which lines
        resume.
        """
        daemon = self.start_daemon()
        alice = self.client(daemon, "alice")
        bob = self.client(daemon, "bob")
        data = payload(100_000, 1)
        ready = self.begin_upload(alice, "bob", "report.bin", len(data), sha256(data))
        self.assertEqual(set(ready), {"type", "id", "name", "size"})
        self.assertEqual((ready["name"], ready["size"]), ("report.bin", len(data)))
        alice.send(data)
        events = alice.read_events_until(lambda e: e["type"] in ("upload-done", "error"))
        self.assertEqual(events[-1], {"type": "upload-done", "id": ready["id"], "sha256": sha256(data)})
        self.assertEqual([e for e in events if e["type"] not in ("join",)], events[-1:])
        self.assertEqual(alice.ping("after-upload"), [])  # the bytes were no lines: no pong "inside"

        offer = bob.expect_event("file-offer")
        self.assert_offer(offer, events[-1], "alice", "bob", "report.bin", len(data))
        header, received = self.download(bob, offer["id"])
        self.assertEqual(
            header,
            {
                "type": "file", "id": offer["id"], "name": "report.bin", "size": len(data),
                "offset": 0, "sha256": sha256(data),
            },
        )
        self.assertEqual(sha256(received), sha256(data))
        self.assertEqual(received, data)
        self.assertEqual(bob.ping("after-download"), [])
        self.assertEqual(bob.buffer, b"")
        daemon.assert_clean()

    def test_round_trip_to_a_room(self) -> None:
        """
        A file uploaded to a room is offered to everyone in it, the sender
        included, and each of them may download it; a user not in the room
        gets no offer and no-such-file for its id.
        """
        daemon = self.start_daemon()
        alice = self.client(daemon, "alice")
        bob = self.client(daemon, "bob")
        carol = self.client(daemon, "carol")
        dave = self.client(daemon, "dave")
        dave.send_line("/join #other")
        dave.send_line("/part #lobby")
        dave.expect_event("part", room="#lobby", nick="dave")
        for client in (alice, bob, carol):
            client.expect_event("part", room="#lobby", nick="dave")

        data = payload(70_000, 2)
        done = self.upload(alice, "#lobby", "slides.pdf", data)
        for client in (alice, bob, carol):
            offer = client.expect_event("file-offer")
            self.assert_offer(offer, done, "alice", "#lobby", "slides.pdf", len(data))
            self.assertEqual(self.files(client), [offer])
        for client in (bob, carol, alice):
            header, received = self.download(client, done["id"])
            self.assertEqual((header["offset"], header["sha256"]), (0, sha256(data)))
            self.assertEqual(received, data)
            self.assertEqual(client.ping("after"), [])

        self.assert_no_offer(dave)
        self.assertEqual(self.error(dave, f"/download {done['id']}"), "no-such-file")
        self.assertEqual(self.error(dave, f"/download {done['id']} 10"), "no-such-file")
        self.assertEqual(self.error(dave, "/download 999999"), "no-such-file")

    def test_resume_from_offset(self) -> None:
        """
        /download ID OFFSET sends exactly the bytes from OFFSET on; OFFSET
        equal to the size gives a file line and no bytes; OFFSET past the
        size is bad-arguments.
        """
        daemon = self.start_daemon()
        alice = self.client(daemon, "alice")
        bob = self.client(daemon, "bob")
        data = payload(50_000, 3)
        done = self.upload(alice, "bob", "big.iso", data)
        offer_id = done["id"]
        bob.expect_event("file-offer", id=offer_id)

        header, received = self.download(bob, offer_id, 12_345)
        self.assertEqual(
            header,
            {"type": "file", "id": offer_id, "name": "big.iso", "size": 50_000, "offset": 12_345,
             "sha256": sha256(data)},
        )
        self.assertEqual(received, data[12_345:])
        self.assertEqual(bob.ping("after-tail"), [])
        header, received = self.download(bob, offer_id, 50_000)
        self.assertEqual((header["size"], header["offset"]), (50_000, 50_000))
        self.assertEqual(received, b"")
        self.assertEqual(bob.ping("after-nothing"), [])
        self.assertEqual(bob.buffer, b"")
        header, received = self.download(bob, offer_id, 0)
        self.assertEqual(received, data)
        self.assertEqual(self.error(bob, f"/download {offer_id} 50001"), "bad-arguments")
        self.assertEqual(self.error(bob, f"/download {offer_id} -1"), "bad-arguments")


class RefusalTests(FilesTestCase):
    """
    Uploads that are refused leave nothing behind and the connection usable.
    """

    def test_checksum_mismatch_drops_the_file(self) -> None:
        """
        An upload whose bytes do not match the announced SHA256 is answered
        checksum-mismatch after its bytes, offers nothing, and leaves the
        spool empty.
        """
        daemon = self.start_daemon()
        alice = self.client(daemon, "alice")
        bob = self.client(daemon, "bob")
        data = payload(30_000, 4)
        ready = self.begin_upload(alice, "bob", "wrong.bin", len(data), sha256(b"other bytes"))
        self.assertEqual(len(os.listdir(partial_dir(daemon))), 1)
        alice.send(data)
        events = alice.read_events_until(lambda e: e["type"] in ("upload-done", "error"))
        self.assertEqual(events[-1]["code"], "checksum-mismatch", events)
        self.assertEqual(of_type(events, "upload-done"), [])
        self.assertEqual(alice.ping("line-mode"), [])
        self.assert_no_offer(bob)
        self.assertEqual(self.error(bob, f"/download {ready['id']}"), "no-such-file")
        self.assertEqual(os.listdir(spool_dir(daemon)), ["partial"])
        self.assertEqual(os.listdir(partial_dir(daemon)), [])

    def test_oversize_upload_refused_in_line_mode(self) -> None:
        """
        With --max-file-size 1K, /upload of 1025 bytes is file-too-large and
        the next line in the same packet is read as a line; 1024 bytes are
        accepted.
        """
        daemon = self.start_daemon("--max-file-size", "1K")
        alice = self.client(daemon, "alice")
        self.client(daemon, "bob")
        self.assertEqual(alice.registration[0]["limits"]["file"], 1024)
        self.assertEqual(self.refused_upload(alice, "bob", "big.bin", 1025), "file-too-large")
        self.assertEqual(os.listdir(partial_dir(daemon)), [])
        self.upload(alice, "bob", "fits.bin", payload(1024, 5))

    def test_quota(self) -> None:
        """
        With --spool-quota 3K, after a 2000-byte upload a second one of 2000
        bytes is refused with quota (in line mode), while one of exactly the
        1072 bytes left is accepted, and then even 1 byte is quota.
        """
        daemon = self.start_daemon("--spool-quota", "3K", "--max-file-size", "2K")
        alice = self.client(daemon, "alice")
        self.client(daemon, "bob")
        self.upload(alice, "bob", "one.bin", payload(2000, 6))
        self.assertEqual(self.refused_upload(alice, "bob", "two.bin", 2000), "quota")
        self.upload(alice, "bob", "three.bin", payload(1072, 7))
        self.assertEqual(self.refused_upload(alice, "bob", "four.bin", 1), "quota")
        self.assertEqual(os.listdir(partial_dir(daemon)), [])

    def test_names_are_labels_only(self) -> None:
        """
        A NAME is shown as its last path component without control
        characters (../../x as x, a ESC [31m b as a[31mb), and the spool
        holds only files named by their sha256: nothing is created under
        the client's name, inside or outside the data directory.
        """
        daemon = self.start_daemon()
        alice = self.client(daemon, "alice")
        bob = self.client(daemon, "bob")
        before = set(self.walk(daemon.directory))
        names = {
            "../../x": "x",
            "a\x1b[31mb": "a[31mb",
            "..\\..\\evil.txt": "evil.txt",
            "/etc/passwd": "passwd",
            "..": "file",
        }
        stored = set()
        for seed, (name, shown) in enumerate(names.items()):
            data = payload(1000 + seed, 10 + seed)
            ready = self.begin_upload(alice, "bob", name, len(data), sha256(data))
            self.assertEqual(ready["name"], shown)
            alice.send(data)
            done = self.answer(alice, "upload-done")
            self.assertEqual(done["sha256"], sha256(data))
            offer = bob.expect_event("file-offer", id=done["id"])
            self.assertEqual(offer["name"], shown)
            self.assertEqual(self.download(bob, done["id"])[0]["name"], shown)
            stored.add(os.path.join("data", "spool", sha256(data)))

        spool = sorted(os.listdir(spool_dir(daemon)))
        self.assertEqual(spool, sorted([*(os.path.basename(path) for path in stored), "partial"]))
        self.assertEqual(os.listdir(partial_dir(daemon)), [])
        # ../../x would be DATA_DIR/x from partial/, or the daemon's directory's x from spool/.
        created = set(self.walk(daemon.directory)) - before
        sqlite = {path for path in created if os.path.dirname(path) == "data" and "chat.sqlite3" in path}
        self.assertEqual(created - sqlite, stored)

    def walk(self, top: str) -> Iterable[str]:
        """
        Every file and directory under C{top}, relative to it.
        """
        for directory, subdirectories, files in os.walk(top):
            for name in subdirectories + files:
                yield os.path.relpath(os.path.join(directory, name), top)


class LostConnectionTests(FilesTestCase):
    """
    A connection lost in the middle of a transfer leaves the daemon clean.
    """

    def test_disconnect_mid_upload_leaves_nothing(self) -> None:
        """
        An uploader that closes its connection after half the bytes leaves
        no partial file, no offer and no error in the daemon's log.
        """
        daemon = self.start_daemon()
        alice = self.client(daemon, "alice")
        bob = self.client(daemon, "bob")
        data = payload(200_000, 20)
        ready = self.begin_upload(alice, "bob", "half.bin", len(data), sha256(data))
        self.assertEqual(len(os.listdir(partial_dir(daemon))), 1)
        alice.send(data[:100_000])
        alice.close()
        bob.expect_event("quit", nick="alice")
        eventually(lambda: os.listdir(partial_dir(daemon)) == [], "spool/partial is emptied")
        self.assertEqual(os.listdir(spool_dir(daemon)), ["partial"])
        self.assert_no_offer(bob)
        self.assertEqual(self.error(bob, f"/download {ready['id']}"), "no-such-file")
        daemon.assert_clean()

        again = self.client(daemon, "alice")  # the nick is free and uploads work
        done = self.upload(again, "bob", "whole.bin", data)
        self.assertEqual(self.download(bob, bob.expect_event("file-offer", id=done["id"])["id"])[1], data)

    def test_disconnect_mid_download_then_resume(self) -> None:
        """
        A downloader that closes its connection early, with a second
        download queued, leaves the daemon chatting, with neither the file
        nor the connection open, and can resume from the bytes it has to
        reassemble the file exactly.
        """
        daemon = self.start_daemon()
        alice = self.client(daemon, "alice")
        carol = self.client(daemon, "carol")
        bob = self.client(daemon, "bob", rcvbuf=65536)
        data = payload(20 * 1024 * 1024, 21)
        done = self.upload(alice, "bob", "movie.mkv", data)
        offer_id = bob.expect_event("file-offer", id=done["id"])["id"]
        stored = os.path.realpath(os.path.join(spool_dir(daemon), done["sha256"]))
        before = open_files(daemon)
        self.assertNotIn(stored, before.values())

        # A second download waits in the queue behind the first, its file open.
        bob.send(f"/download {offer_id}\n/download {offer_id} 5\n".encode())
        header = self.answer(bob, "file")
        self.assertEqual((header["type"], header["size"], header["offset"]), ("file", len(data), 0))
        head = bob.read_exact(300_000)
        self.assertEqual(head, data[:300_000])
        eventually(lambda: list(open_files(daemon).values()).count(stored) == 2, "both downloads are under way")
        bob.close()
        alice.expect_event("quit", nick="bob")

        def back_to_before() -> bool:
            now = open_files(daemon)
            # Everything open before but bob's socket, and nothing else.
            return stored not in now.values() and len(now) == len(before) - 1 and set(now) < set(before)

        eventually(back_to_before, f"the daemon's descriptors are back to {before}")
        carol.send_line("still chatting")
        self.assertEqual(alice.expect_event("message", text="still chatting")["from"], "carol")
        daemon.assert_clean()

        bob = self.client(daemon, "bob")
        header, tail = self.download(bob, offer_id, len(head))
        self.assertEqual(
            (header["offset"], header["size"], header["sha256"]), (len(head), len(data), done["sha256"])
        )
        self.assertEqual(sha256(head + tail), sha256(data))
        self.assertEqual(bob.ping("after-resume"), [])
        eventually(lambda: stored not in open_files(daemon).values(), "the stored file is closed")


class StreamTests(FilesTestCase):
    """
    The byte stream of a transfer is never mixed with lines.
    """

    def test_chat_during_download_never_corrupts_the_stream(self) -> None:
        """
        While a multi-MiB download stalls on its reader, room messages and
        the reader's own pings are queued: its stream is exactly the file
        line, the file's bytes, then every message in order and every pong.
        """
        daemon = self.start_daemon(*FAST)
        alice = self.client(daemon, "alice")
        carol = self.client(daemon, "carol")
        bob = self.client(daemon, "bob", rcvbuf=65536)
        data = payload(8 * 1024 * 1024, 30)
        done = self.upload(alice, "bob", "big.tar", data)
        bob.expect_event("file-offer", id=done["id"])
        stored = os.path.realpath(os.path.join(spool_dir(daemon), done["sha256"]))
        bob.ping("ready")

        bob.send_line(f"/download {done['id']}")
        header = self.answer(bob, "file")
        self.assertEqual((header["type"], header["size"], header["offset"]), ("file", len(data), 0))
        received = [bob.read_exact(256 * 1024)]
        said: list[dict[str, Any]] = []
        pongs: list[str] = []
        last_of_round: list[dict[str, Any]] = []
        for round_ in range(3):
            tokens = [f"r{round_}-{n}" for n in range(5)]
            texts = [f"{who} says {n} in round {round_}" for n in range(25) for who in ("alice", "carol")]
            for n, text in enumerate(texts):
                (alice if text.startswith("alice") else carol).send_line(text)
                if n % 10 == 0:
                    bob.send_line(f"/ping {tokens[n // 10]}")
            pongs += tokens
            # Every message is published (alice sees them all) while bob's download is still being sent.
            seen = alice.read_events_until(all_said(texts))
            said += of_type(seen, "message")
            last_of_round.append(said[-1])
            carol.read_events_until(all_said(texts))
            self.assertIn(stored, open_files(daemon).values())
            received.append(bob.read_exact(1024 * 1024))
        self.assertEqual(sorted(m["text"] for m in said), sorted(
            f"{who} says {n} in round {r}" for r in range(3) for n in range(25) for who in ("alice", "carol")
        ))

        received.append(bob.read_exact(len(data) - sum(map(len, received)), timeout=15))
        self.assertEqual(sha256(b"".join(received)), sha256(data))
        after = bob.ping("end")
        self.assertEqual({e["type"] for e in after}, {"message", "pong"}, after)
        self.assertEqual(of_type(after, "message"), said)
        self.assertEqual([e["token"] for e in of_type(after, "pong")], pongs)
        # A pong comes after every message published before its ping was read.
        for round_ in (1, 2):
            self.assertGreater(after.index({"type": "pong", "token": f"r{round_}-0"}),
                               after.index(last_of_round[round_ - 1]))
        self.assertEqual(bob.buffer, b"")
        start = bob.received.index(b'{"type":"file"')
        line_end = bob.received.index(b"\r\n", start) + 2
        self.assertEqual(bob.received[line_end:line_end + len(data)], data)

    def test_pipelined_upload(self) -> None:
        """
        An /upload line, its bytes and a line after them sent in one packet
        store the file intact and answer the line.
        """
        daemon = self.start_daemon()
        alice = self.client(daemon, "alice")
        bob = self.client(daemon, "bob")
        data = payload(40_000, 40) + b"\r"  # ends in a CR: the ping's line must still be read alone
        alice.send(f"/upload bob piped.bin {len(data)} {sha256(data)}\n".encode() + data + b"/ping x\n")
        events = alice.read_events_until(lambda e: e["type"] == "pong")
        self.assertEqual(
            [e["type"] for e in events if e["type"] != "join"],
            ["upload-ready", "upload-done", "pong"],
            events,
        )
        done = events[-2]
        self.assertEqual(done["sha256"], sha256(data))
        self.assertEqual(events[-1], {"type": "pong", "token": "x"})
        offer = bob.expect_event("file-offer", id=done["id"])
        self.assertEqual(self.download(bob, offer["id"])[1], data)

        # Zero bytes: nothing raw at all, the next line is a line.
        alice.send(b"/upload bob empty.txt 0\n/ping y\n")
        events = alice.read_events_until(lambda e: e["type"] == "pong")
        self.assertEqual([e["type"] for e in events], ["upload-ready", "upload-done", "pong"], events)
        self.assertEqual(events[1]["sha256"], sha256(b""))


class LifetimeTests(FilesTestCase):
    """
    Offers expire, and outlive the daemon's restarts until then.
    """

    def test_offers_expire(self) -> None:
        """
        With --file-ttl 0.001 (3.6 s) an offer listed at first is, once its
        expires time passed, gone from /files and its download no-such-file.
        """
        daemon = self.start_daemon("--file-ttl", "0.001")
        alice = self.client(daemon, "alice")
        bob = self.client(daemon, "bob")
        data = payload(5000, 50)
        done = self.upload(alice, "bob", "soon-gone.txt", data)
        offer = bob.expect_event("file-offer", id=done["id"])
        expires = parse_ts(offer["expires"])
        left = (expires - datetime.now(UTC)).total_seconds()
        self.assertTrue(0 < left <= 3.7, left)
        self.assertEqual(self.files(bob), [offer])
        self.assertEqual(self.download(bob, done["id"])[1], data)

        time.sleep(left + 0.2)
        self.assertEqual(self.error(bob, f"/download {done['id']}"), "no-such-file")
        self.assertEqual(self.files(bob), [])
        self.assertEqual(self.files(alice), [])

    def test_offers_survive_restart(self) -> None:
        """
        After SIGTERM and a restart on the same data directory, the nick an
        offer was for sees it in /files unchanged and downloads the same
        bytes.
        """
        daemon = self.start_daemon()
        alice = self.client(daemon, "alice")
        bob = self.client(daemon, "bob")
        data = payload(60_000, 60)
        done = self.upload(alice, "bob", "keep.zip", data)
        offer = bob.expect_event("file-offer", id=done["id"])
        self.assertIn(daemon.halt(), EXITED_ON_SIGTERM)
        alice.read_until_closed()
        bob.read_until_closed()

        daemon.start()
        bob = self.client(daemon, "bob")
        self.assertEqual(self.files(bob), [offer])
        header, received = self.download(bob, offer["id"])
        self.assertEqual((header["sha256"], header["name"]), (sha256(data), "keep.zip"))
        self.assertEqual(received, data)
        self.assertEqual(bob.ping("after"), [])


class TextFormatTests(FilesTestCase):
    """
    People on a terminal see offers but cannot receive raw bytes.
    """

    def test_text_user_sees_offer_and_cannot_download(self) -> None:
        """
        A text-format user gets a readable offer naming the file, its id
        and a client to fetch it with, and /download is bad-arguments
        without a raw byte sent.
        """
        daemon = self.start_daemon()
        alice = self.client(daemon, "alice")
        tom = Client.text(daemon.port, "tom")
        self.addCleanup(tom.close)
        data = payload(3000, 70)
        done = self.upload(alice, "tom", "notes.txt", data)
        lines = tom.read_lines_until(lambda line: "offers a file" in line)
        offer = lines[-1]
        self.assertIn("alice", offer)
        self.assertIn("notes.txt", offer)
        self.assertIn(f"id {done['id']}", offer)
        more = tom.ping("after-offer", json_mode=False)
        self.assertTrue(any("client" in line for line in more), more)

        tom.send_line(f"/download {done['id']}")
        lines = tom.ping("after-download", json_mode=False)
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("*** Error: "), lines)
        self.assertTrue(lines[0].endswith("(bad-arguments)"), lines)
        self.assertEqual(tom.buffer, b"")
        self.assertNotIn(data[len(TRICKY):len(TRICKY) + 64], tom.received)

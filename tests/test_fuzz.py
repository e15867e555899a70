"""
A property-based test (hypothesis) of the line protocol (PROTOCOL.md
sections 1, 6 and 8; issue 16): arbitrary byte streams, split at arbitrary
points and interleaved between a text and a json connection of one
L{ChatServer}, with time from a L{Clock} moving between the pieces. Whatever
arrives, the protocol never raises or logs an error, only ever writes whole
CR LF lines (valid JSON in json format) and telnet replies between them,
relays no control or bidi character, stays within its memory bounds, and
still answers C{/ping} afterwards.

Memory is checked through what a real transport would see, with no private
attribute: input is delivered only while the transport is not paused (so
the protocol must stop reading, not buffer, when it falls behind, and must
start again: else no C{pong}); a reader that stops reading (its producer
paused, as by a full socket buffer) is written nothing until it reads
again, and what its queue then releases at once is at most the
per-connection cap (C{--max-output}); once every connection is closed, no
session, quota reservation or partial upload file is left.

The streams are biased towards the bytes that matter: telnet sequences
(C{IAC SB} left open, C{IAC SE}, option requests, C{IAC IAC}), CR, LF, CR
NUL, NUL, invalid UTF-8, runs around the line limit, bidi controls and
emoji, commands (C{/format} and C{/quit} included), and C{/upload} lines
with sizes valid and not, followed by some bytes. A connection the server
closes (after C{/quit}, or when another logs in to its account) must end
with C{bye}; it is then not pinged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from typing_extensions import override

from chat.accounts import Accounts, PasswordHasher
from chat.memory_store import MemoryStore
from chat.protocol import ChatFactory
from chat.server import ChatServer
from chat.settings import Settings
from chat.spool import PARTIAL, Spool
from chat.telnet import SUBNEGOTIATION_TIMEOUT
from chat.wire import BIDI_CONTROLS
from tests.support import START, Client, RecordingTransport
from tests.test_accounts import cheap
from tests.test_spool import inline

SETTINGS = Settings(
    flood_burst=20,
    flood_rate=50.0,
    max_file=16,
    spool_quota=1024,
    registration_timeout=3600.0,
    upload_idle_timeout=3600.0,
)
"""
The limits of the fuzzed server: the default line limit (4096 bytes) and
output cap (4 MiB), a flood limit that delays a burst yet drains a few
thousand lines within the test's clock budget, and files of at most 16
bytes, so that the final ping can always be reached past an upload in
progress (see L{PING}). The registration and upload idle timeouts are far
beyond the clock budget: they have tests of their own, and here a
connection closed by them would leave nothing to ping.
"""

PING = b"\r\n" + b"\n" * SETTINGS.max_file + b"\r\n/ping fuzz\r\n"
"""
What each connection is sent after the junk. It ends any line left open;
then at least C{max_file} bytes end an upload whose bytes are still
expected (as empty lines, which do nothing, when none is); then the ping,
on a line of its own.

It is sent once every connection has read all of its junk (its transport
not paused, so the protocol holds no input back: the flood limit may have
delayed it) and then read nothing for more than L{SUBNEGOTIATION_TIMEOUT}
seconds, so that an C{IAC SB} left open by the junk is abandoned and this
chunk is read as data (L{chat.telnet}); without that wait, 512 bytes of
subnegotiation payload would swallow the ping, as they would a real
client's line. The clock moves in steps of one second meanwhile, so that
each flood delay ends at about its time and the subnegotiation's time is
when its bytes were read.
"""

CLOCK_BUDGET = 900
"""Seconds (of the L{Clock}) the junk and the ping may take to be read, in steps of one second."""

CONTROL = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
"""What no output line may hold: the characters L{chat.wire.clean} removes from input."""

JSON_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
"""
What no string of a JSON event may hold: as L{CONTROL}, but LF is allowed,
for the server's own text of several lines (C{/help}); no input line can
bring one.
"""

ERROR_LEVELS = (LogLevel.error, LogLevel.critical)
"""Log levels no junk may cause (C{Logger.failure} logs at C{critical})."""

TELNET_VERBS = frozenset(b"\xfb\xfc\xfd\xfe")
"""WILL, WONT, DO, DONT: the commands of the daemon's telnet replies (IAC, verb, option)."""

BIDI = [c.encode() for c in BIDI_CONTROLS]
EMOJI = "\U0001F469\u200D\U0001F4BB\u2764\uFE0F".encode()

NEGOTIATION = [
    b"\xff\xfd\x06", b"\xff\xfd\x01", b"\xff\xfd\x03", b"\xff\xfb\x18", b"\xff\xfb\x1f", b"\xff\xfe\x03",
    b"\xff\xfc\x01", b"\xff\xf4", b"\xff\xf1", b"\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0",
    b"\xff\xfa\x18\x00xterm\xff\xf0",
]
"""Well-formed telnet commands: option requests (DO TIMING-MARK among them), IP, NOP, subnegotiations."""

INTERESTING = [
    b"\r\n", b"\n", b"\r", b"\r\x00", b"\x00", b"\t", b" ",
    b"\xff", b"\xff\xff", b"\xff\xfa", b"\xff\xf0", b"\xff\xfa\x18\x00", b"\xff\x00", b"\xff\r", b"\xff\n",
    b"\x1b[31m", b"\x9b", b"\xc2\x9b", b"\x7f",
    b"\xc3", b"\xc3\x28", b"\x80", b"\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xef\xbb\xbf",
    "\u00e9".encode(), EMOJI, "\u200e\u200b\u00ad".encode(), *BIDI,
]
"""Bytes a line reader or a telnet filter could get wrong, and characters the text rules are about."""

COMMANDS = [
    b"/ping x", b"/nick carol", b"/nick alice", b"/nick bob", b"alice", b"hello", b"//slash", b"/", b"/unknown",
    b"/join #x", b"/join nope", b"/part", b"/part #x bye", b"/topic hi", b"/topic", b"/status away", b"/away",
    b"/msg alice hi", b"/msg bob hi", b"/me waves", b"/help", b"/help upload", b"/list", b"/rooms",
    b"/whois alice", b"/history 5", b"/history 500 #lobby", b"/files", b"/download 1", b"/download 2 1",
    b"/download 3 999", b"/starttls", b"/format json", b"/format text", b"/format xml",
    b"/register password1", b"/login alice password1", b"/login bob wrongpass1", b"/password password1 password2",
    b"/quit", b"/exit gone",
]
"""Command lines without their line end."""

ENDS = [b"\n", b"\r\n", b"\r\x00", b"\r", b""]
STARTS = [b"\n", b"\r\n", b""]
"""What goes before a command: mostly a line end, so that it often starts a line after junk."""
RUN_BYTES = [b"a", b"\xff", b"\n", b"\r", b"\r\n", b"\xff\xfa", b"\xff\xf1", b"\x00", "\u00e9".encode(), BIDI[4]]
RUN_LENGTHS = [64, SETTINGS.max_line - 1, SETTINGS.max_line, SETTINGS.max_line + 1, SETTINGS.max_line + 600]
ADVANCES = [0.0, 0.0, 0.0, 0.001, 0.1, 0.5, 2.0]
"""Seconds the clock moves after a piece arrives."""


@st.composite
def uploads(draw: st.DrawFn) -> bytes:
    """
    An C{/upload} line, its arguments valid or not, then a few bytes: often
    as many as it announces (its file), else any.
    """
    target = draw(st.sampled_from(["alice", "bob", "#lobby", "#x", "nobody", "/"]))
    name = draw(st.sampled_from(["a.bin", "invoice\u202etxt.exe", "../../x", "my file.txt", "\u200b", "..", "\u00e9"]))
    size = draw(st.integers(0, SETTINGS.max_file + 2) | st.sampled_from(["-1", "x", "1e3", "9" * 25]))
    digest = draw(st.sampled_from(["", " " + "0" * 64, " zz", " " + hashlib.sha256(b"").hexdigest()]))
    line = f"/upload {target} {name} {size}{digest}".encode() + draw(st.sampled_from(ENDS))
    line = draw(st.sampled_from(STARTS)) + line
    body = st.binary(max_size=SETTINGS.max_file + 4)
    if isinstance(size, int):
        body |= st.binary(min_size=size, max_size=size)
    return line + draw(body)


@st.composite
def transfers(draw: st.DrawFn) -> bytes:
    """
    A well-formed C{/upload} to the room with its exact bytes, or a
    C{/download} of a likely id, or both.
    """
    data = draw(st.binary(max_size=SETTINGS.max_file))
    upload = f"\r\n/upload #lobby f.txt {len(data)}\r\n".encode() + data
    offset = draw(st.sampled_from(["", " 0", " 2", " 99"]))
    download = f"\r\n/download {draw(st.integers(1, 4))}{offset}\r\n".encode()
    return draw(st.sampled_from([upload, download, upload + download]))


commands = st.lists(
    st.tuples(st.sampled_from(STARTS), st.sampled_from(COMMANDS), st.sampled_from(ENDS)).map(b"".join),
    min_size=1,
    max_size=4,
).map(b"".join)
"""A few command lines, most often each on a line of its own."""

telnet = st.lists(st.sampled_from(NEGOTIATION), min_size=1, max_size=6).map(b"".join)
"""A burst of telnet commands, as a telnet client sends on connecting or after Ctrl-C."""

tokens = st.one_of(
    st.binary(max_size=32),
    st.sampled_from(INTERESTING),
    telnet,
    commands,
    uploads(),
    transfers(),
    st.tuples(st.sampled_from(RUN_BYTES), st.sampled_from(RUN_LENGTHS)).map(lambda run: run[0] * run[1]),
    st.text(max_size=12).map(lambda text: text.encode("utf-8", "surrogatepass")),
)
"""One piece of junk: arbitrary bytes, or one of the biased kinds above."""


@dataclass(frozen=True)
class Step:
    """
    One event of a script: C{data} arrives on connection C{peer} (0 is the
    text one, 1 the json one), then the clock moves C{advance} seconds; then
    the reader of C{peer} stops reading (C{"pause"}: its transport's buffer
    is full) or reads again (C{"resume"}), or neither (C{""}).
    """

    peer: int
    data: bytes
    advance: float = 0.0
    reader: str = ""


@dataclass(frozen=True)
class Script:
    """
    What a fuzzed run does: which connections register before the junk
    (text as C{alice}, json as C{bob}), then the steps.
    """

    registered: tuple[bool, bool]
    steps: tuple[Step, ...]


@st.composite
def pieces(draw: st.DrawFn) -> list[bytes]:
    """
    A junk stream cut at arbitrary points.
    """
    data = b"".join(draw(st.lists(tokens, max_size=24)))
    cuts = sorted(draw(st.sets(st.integers(0, len(data)), max_size=16)))
    bounds = [0, *cuts, len(data)]
    return [data[start:end] for start, end in pairwise(bounds) if end > start]


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    """
    Two junk streams, each cut into pieces, interleaved, with clock moves
    and reader pauses between them.
    """
    queues = [draw(pieces()), draw(pieces())]
    steps = []
    while queues[0] or queues[1]:
        peer = draw(st.sampled_from([i for i in (0, 1) if queues[i]]))
        steps.append(
            Step(
                peer,
                queues[peer].pop(0),
                draw(st.sampled_from(ADVANCES)),
                draw(st.sampled_from(["", "", "", "pause", "resume"])),
            )
        )
    registered = draw(st.sampled_from([(True, True), (True, True), (True, False), (False, True), (False, False)]))
    return Script(registered, tuple(steps))


class GuardedClock(Clock):
    """
    A L{Clock} that fails, instead of looping for ever in L{Clock.advance},
    when timers keep being set for the instant it is at: a positive delay
    below the clock's resolution (about 2.4e-7 s at today's POSIX time)
    schedules a call for now, and a timer that sets itself again that way
    never lets time move.
    """

    SAME_INSTANT_MAX = 10_000
    """Calls set for the current instant beyond which time is taken to be stuck."""

    def __init__(self) -> None:
        super().__init__()
        self.instant = -1.0
        self.same_instant = 0

    @override
    def callLater(self, delay: float, callable: Any, *args: Any, **kw: Any) -> Any:
        now = self.seconds()
        if now + delay <= now:
            self.same_instant = self.same_instant + 1 if now == self.instant else 1
            self.instant = now
            if self.same_instant > self.SAME_INSTANT_MAX:
                raise AssertionError(f"time is stuck: {callable!r} keeps being called at {now!r} (delay {delay!r})")
        return super().callLater(delay, callable, *args, **kw)


def strings(value: object) -> list[str]:
    """
    Every C{str} in a decoded JSON value, keys included.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (key, *strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def is_pong(line: str) -> bool:
    """
    Whether C{line}, an output line in either format, answers C{/ping fuzz}.
    """
    if line == "*** pong fuzz":
        return True
    try:
        return bool(json.loads(line) == {"type": "pong", "token": "fuzz"})
    except ValueError:
        return False


def is_bye(line: str) -> bool:
    """
    Whether C{line}, an output line in either format, is a C{bye}.
    """
    if line.startswith("*** Bye: "):
        return True
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("type") == "bye"


@dataclass
class Peer:
    """
    One fuzzed connection, and what the test knows of it: the bytes the
    transport has not yet let through (a real transport does not read while
    paused), the output format (followed through each C{welcome}), the file
    bytes still expected after a C{file} line, and every output line.
    """

    client: Client
    format: str = "text"
    inbox: list[bytes] = field(default_factory=list)
    raw: int = 0
    lines: list[str] = field(default_factory=list)
    checked: int = 0
    """How many of the transport's writes have been checked."""
    paused: IPushProducer | None = None
    """The producer this test paused (the reader's transport is full), or None."""
    reader_paused: bool = False
    writes_at_pause: int = 0
    closed: bool = False

    @property
    def transport(self) -> RecordingTransport:
        """
        The connection's transport, which records each write.
        """
        return self.client.transport


COVERAGE = [
    ("upload done", "upload-done"),
    ("upload done", "is stored and offered"),
    ("download", '"type":"file"'),
    ("flood", "(flood)"),
    ("flood", '"code":"flood"'),
    ("line too long", "line-too-long"),
    ("bad UTF-8", "bad-encoding"),
]
"""What to count in the statistics (C{--hypothesis-show-statistics}), by a mark in an output line."""


def record_coverage(peers: list[Peer]) -> None:
    """
    Tell hypothesis which paths a run took, for its statistics: whether the
    generated streams keep reaching uploads, downloads, the flood limit,
    telnet replies and format switches.
    """
    for index, peer in enumerate(peers):
        for name in {name for line in peer.lines for name, mark in COVERAGE if mark in line}:
            event(name)
        if any(b"\xff" in data for data in peer.transport.writes):
            event("telnet reply")
        if peer.format != ("text", "json")[index]:
            event("format switched")


class OutputError(AssertionError):
    """
    The protocol wrote something that breaks the output rules.
    """


class FuzzTests(SynchronousTestCase):
    """
    The line protocol under arbitrary input.
    """

    def check_writes(self, peer: Peer) -> None:
        """
        Check every transport write of C{peer} not yet checked: each holds
        whole CR LF lines and telnet replies (IAC, WILL/WONT/DO/DONT,
        option) between them, or a downloaded file's bytes after its
        C{file} line; each line is UTF-8 without control or bidi characters,
        in the connection's format (valid JSON with a C{type} in json).
        """
        writes = peer.transport.writes
        for data in writes[peer.checked:]:
            at = 0
            while at < len(data):
                if peer.raw:
                    taken = min(peer.raw, len(data) - at)
                    peer.raw -= taken
                    at += taken
                elif data[at] == 0xFF:
                    if len(data) - at < 3 or data[at + 1] not in TELNET_VERBS:
                        raise OutputError(f"a broken telnet reply at {at}: {data[at:at + 3]!r} in {data!r}")
                    at += 3
                else:
                    end = data.find(b"\r\n", at)
                    if end < 0:
                        raise OutputError(f"a write ends inside a line: {data[at:]!r}")
                    self.check_line(peer, data[at:end])
                    at = end + 2
        peer.checked = len(writes)

    def check_line(self, peer: Peer, data: bytes) -> None:
        """
        Check one output line (without its CR LF) and follow the format and
        a C{file} line's bytes.
        """
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise OutputError(f"not UTF-8: {data!r}") from e
        if CONTROL.search(line):
            raise OutputError(f"a control or bidi character in {line!r}")
        peer.lines.append(line)
        decoded: Any = None
        if line.startswith("{"):
            try:
                decoded = json.loads(line)
            except ValueError:
                decoded = None
        if not isinstance(decoded, dict) or not isinstance(decoded.get("type"), str):
            if line.startswith("*** Welcome to "):
                peer.format = "text"
            elif peer.format == "json":
                raise OutputError(f"not a JSON event on a json connection: {line!r}")
            return
        for text in strings(decoded):
            if JSON_CONTROL.search(text):
                raise OutputError(f"a control or bidi character in {text!r} of {line!r}")
        if decoded["type"] == "welcome":
            peer.format = "json"
        elif peer.format == "text":
            raise OutputError(f"a JSON event on a text connection: {line!r}")
        if decoded["type"] == "file":
            peer.raw = decoded["size"] - decoded["offset"]

    def settle(self, peers: list[Peer], clock: Clock) -> None:
        """
        Do what the reactor would between events: deliver input held while
        a transport was paused, let each transport pull a file being sent
        (unless its reader is paused), close what the protocol closed; and
        check the output.
        """
        for peer in peers:
            for _ in range(10_000):
                if peer.closed:
                    break
                transport = peer.transport
                if peer.inbox and transport.producerState == "producing" and not transport.disconnecting:
                    peer.client.send(peer.inbox.pop(0))
                elif transport.producer is not None and not transport.streaming and not peer.reader_paused:
                    transport.producer.resumeProducing()  # a file being sent: TCP pulls the next chunk
                else:
                    break
            else:
                self.fail("the protocol keeps the transport busy for ever")
            self.check_writes(peer)
            if peer.reader_paused and not peer.transport.disconnecting:
                self.assertEqual(
                    len(peer.transport.writes), peer.writes_at_pause, "written while the reader was not reading"
                )
            if peer.transport.disconnecting and not peer.closed:
                self.close(peer)

    def close(self, peer: Peer) -> None:
        """
        The protocol closed C{peer}'s connection: as the reactor does, let
        the output drain (unless aborted), then tell the protocol the
        connection is lost. The last line must be a C{bye}.
        """
        if peer.paused is not None and not peer.transport.disconnected:
            self.resume(peer)
        self.check_writes(peer)
        self.assertTrue(peer.lines and is_bye(peer.lines[-1]), f"closed without bye: {peer.lines[-3:]!r}")
        event("closed by the server")
        peer.closed = True
        peer.client.lose()

    def pause(self, peer: Peer) -> None:
        """
        The reader stops reading: its transport pauses the protocol's
        output producer (a file's pull producer is simply not pulled).
        """
        if peer.reader_paused:
            return
        peer.reader_paused = True
        peer.writes_at_pause = len(peer.transport.writes)
        producer = peer.transport.producer
        if producer is not None and peer.transport.streaming:
            producer.pauseProducing()
            peer.paused = producer

    def resume(self, peer: Peer) -> None:
        """
        The reader reads again: what the output queue releases at once is
        at most the per-connection cap (C{max_output}).
        """
        peer.reader_paused = False
        producer, peer.paused = peer.paused, None
        if producer is None:
            return
        before = len(peer.transport.writes)
        producer.resumeProducing()
        released = sum(len(data) for data in peer.transport.writes[before:])
        self.assertLessEqual(released, SETTINGS.max_output, "more output queued than the cap")

    def run_script(self, script: Script) -> None:
        """
        Run C{script} against a new server and check everything the module docstring promises.
        """
        with tempfile.TemporaryDirectory(prefix="chat-fuzz-") as directory, capturedLogs() as logged:
            spool = Spool(os.path.join(directory, "spool"), SETTINGS.spool_quota, inline)
            spool.open()
            clock = GuardedClock()
            clock.advance(START)
            store = MemoryStore()
            accounts = Accounts(store, PasswordHasher(None, hasher=cheap()), clock)
            factory = ChatFactory(ChatServer(SETTINGS, clock, store, accounts, files=spool))
            peers = [Peer(Client(factory, "127.0.0.1", 40001)), Peer(Client(factory, "127.0.0.1", 40002))]
            peers[1].inbox.append(b"/format json\r\n")
            if script.registered[0]:
                peers[0].inbox.append(b"alice\r\n")
            if script.registered[1]:
                peers[1].inbox.append(b"/nick bob\r\n")
            self.settle(peers, clock)

            for step in script.steps:
                peer = peers[step.peer]
                if not peer.closed:
                    peer.inbox.append(step.data)
                self.settle(peers, clock)
                clock.advance(step.advance)
                self.settle(peers, clock)
                if step.reader == "pause":
                    self.pause(peer)
                elif step.reader == "resume":
                    self.resume(peer)
                self.settle(peers, clock)

            for peer in peers:
                self.resume(peer)
            self.settle(peers, clock)
            reading = 0
            for _ in range(CLOCK_BUDGET):
                if any(peer.inbox or peer.transport.producerState != "producing" for peer in peers if not peer.closed):
                    reading = 0
                else:
                    reading += 1
                    if reading > SUBNEGOTIATION_TIMEOUT + 1:
                        break
                clock.advance(1)
                self.settle(peers, clock)

            open_peers = [peer for peer in peers if not peer.closed]
            marks = {id(peer): len(peer.lines) for peer in open_peers}
            for peer in open_peers:
                peer.inbox.append(PING)

            def answered(peer: Peer) -> bool:
                return peer.closed or any(is_pong(line) for line in peer.lines[marks[id(peer)]:])

            self.settle(peers, clock)
            for _ in range(CLOCK_BUDGET):
                if all(answered(peer) for peer in open_peers):
                    break
                clock.advance(1)
                self.settle(peers, clock)
            for peer in open_peers:
                self.assertTrue(answered(peer), f"no pong; last lines: {peer.lines[-5:]!r}")
                if not peer.closed:
                    self.assertEqual(peer.client.protocol.clearLineBuffer(), b"", "input left unread")

            for peer in peers:
                if not peer.closed:
                    peer.closed = True
                    peer.client.lose()
            clock.advance(SETTINGS.shutdown_timeout + 1)
            self.assertEqual(factory.server.sessions, {}, "sessions left after every connection closed")
            self.assertEqual(spool.reserved, 0, "quota still reserved after every connection closed")
            self.assertEqual(os.listdir(os.path.join(spool.directory, PARTIAL)), [], "partial files left")
        record_coverage(peers)
        errors = [logged_event for logged_event in logged if logged_event.get("log_level") in ERROR_LEVELS]
        self.assertEqual(errors, [], "errors logged")
        self.assertEqual(self.flushLoggedErrors(), [])

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(scripts())
    # Found by this test: 64 empty lines beyond the flood burst, and a flood
    # delay shorter than the clock's resolution that re-arms itself for ever.
    @example(Script((False, False), (Step(1, b"\n" * 64, 0.1),)))
    def test_junk_never_breaks_the_protocol(self, script: Script) -> None:
        """
        Arbitrary bytes, cut anywhere and interleaved on two connections,
        never make the protocol raise, log an error, write anything but
        whole lines (JSON in json format) and telnet replies, relay a
        control or bidi character, queue more than its cap for a reader
        that stops, or leave anything behind once closed; and each
        connection still answers C{/ping}.
        """
        self.run_script(script)

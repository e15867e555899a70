"""
Render the main window of C{chat-tk} with a realistic conversation, without
a network, and save it as a PNG (C{docs/tk-client.png} by default).

    python docs/screenshot.py [--theme dark|light] [--output PATH]

Without C{DISPLAY}, it starts C{Xvfb} on a free display for the time of the
capture. The window is read back from the X server with C{XGetImage}
(libX11 through ctypes) and written as a PNG with zlib: no ImageMagick, no
Pillow.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import time
import tkinter as tk
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet.defer import Deferred, succeed  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from chat import events  # noqa: E402
from chat.client.model import ChatModel, State  # noqa: E402
from chat.client.tk import ChatWindow  # noqa: E402

HERE = Path(__file__).resolve().parent


def start_xvfb(size: str = "1280x800x24") -> subprocess.Popen[bytes]:
    """
    Start Xvfb on a free display (a random number from 100 to 999, with its
    lock file), wait until it accepts connections, and point C{DISPLAY} at it.
    """
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise SystemExit("screenshot: no DISPLAY and no Xvfb (apt-get install xvfb)")
    deadline = time.monotonic() + 10
    for number in random.sample(range(100, 1000), 50):
        path = f"/tmp/.X11-unix/X{number}"
        if time.monotonic() > deadline:
            break
        if os.path.exists(f"/tmp/.X{number}-lock") or os.path.exists(path):
            continue
        process = subprocess.Popen([xvfb, f":{number}", "-screen", "0", size, "-nolisten", "tcp"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while time.monotonic() < deadline and process.poll() is None:
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(path)
                except OSError:
                    time.sleep(0.05)
                    continue
            os.environ["DISPLAY"] = f":{number}"
            return process
        if process.poll() is None:
            process.kill()
        process.wait(5)
    raise SystemExit("screenshot: Xvfb did not start")


class XImage(ctypes.Structure):
    """
    The start of Xlib's C{XImage}, as far as the pixels.
    """

    _fields_ = [
        ("width", ctypes.c_int), ("height", ctypes.c_int), ("xoffset", ctypes.c_int), ("format", ctypes.c_int),
        ("data", ctypes.POINTER(ctypes.c_ubyte)), ("byte_order", ctypes.c_int), ("bitmap_unit", ctypes.c_int),
        ("bitmap_bit_order", ctypes.c_int), ("bitmap_pad", ctypes.c_int), ("depth", ctypes.c_int),
        ("bytes_per_line", ctypes.c_int), ("bits_per_pixel", ctypes.c_int), ("red_mask", ctypes.c_ulong),
        ("green_mask", ctypes.c_ulong), ("blue_mask", ctypes.c_ulong),
    ]


def capture(window_id: int) -> tuple[int, int, bytes]:
    """
    The pixels of an X window: width, height and rows of RGB bytes.
    """
    x11 = ctypes.cdll.LoadLibrary(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    pointers: list[Any] = [ctypes.c_void_p] * 7
    x11.XGetGeometry.argtypes = [ctypes.c_void_p, ctypes.c_ulong, *pointers]
    x11.XGetImage.restype = ctypes.POINTER(XImage)
    x11.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                              ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong, *pointers[:4]]
    display = x11.XOpenDisplay(None)
    if not display:
        raise SystemExit("screenshot: cannot open the display")
    # Tk puts a toplevel and its menu bar in a wrapper window: capture that.
    root_id, parent, children, count = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_void_p(), ctypes.c_uint()
    x11.XQueryTree(display, window_id, ctypes.byref(root_id), ctypes.byref(parent), ctypes.byref(children),
                   ctypes.byref(count))
    if parent.value and parent.value != root_id.value:
        window_id = parent.value
    root, x, y = ctypes.c_ulong(), ctypes.c_int(), ctypes.c_int()
    width, height, border, depth = ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()
    x11.XGetGeometry(display, window_id, ctypes.byref(root), ctypes.byref(x), ctypes.byref(y),
                     ctypes.byref(width), ctypes.byref(height), ctypes.byref(border), ctypes.byref(depth))
    image = x11.XGetImage(display, window_id, 0, 0, width.value, height.value, 0xFFFFFFFF, 2).contents  # ZPixmap
    if image.bits_per_pixel != 32:
        raise SystemExit(f"screenshot: {image.bits_per_pixel} bits per pixel: need a 24-bit screen")
    raw = ctypes.string_at(image.data, image.bytes_per_line * image.height)
    rows = []
    for row in range(image.height):
        line = raw[row * image.bytes_per_line:row * image.bytes_per_line + image.width * 4]
        rgb = bytearray(image.width * 3)
        rgb[0::3], rgb[1::3], rgb[2::3] = line[2::4], line[1::4], line[0::4]  # BGRX, least significant first
        rows.append(b"\x00" + bytes(rgb))
    x11.XCloseDisplay(display)
    return image.width, image.height, b"".join(rows)


def write_png(path: Path, width: int, height: int, rows: bytes) -> None:
    """
    Write filtered RGB rows (a zero byte before each) as an 8-bit PNG.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
                     + chunk(b"IEND", b""))


class StubClient:
    """
    A client that is not connected to anything: the window only needs a
    model and methods to call.
    """

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.downloads = Path.home() / "Downloads" / "chat"
        self.where = "chat.example.org:6697"

    def input(self, line: str) -> None:
        pass

    def send_file(self, target: str, path: Path) -> None:
        pass

    def get_file(self, offer_id: int, folder: Path | None = None) -> None:
        pass

    def leave(self) -> Deferred[None]:
        return succeed(None)

    def reconnect(self) -> None:
        pass

    def quit(self, reason: str = "") -> Deferred[None]:
        return succeed(None)


def converse(model: ChatModel, clock: Clock) -> None:
    """
    Feed the model a morning of chat, as the daemon would have sent it,
    with C{clock} following the time of the messages.
    """
    base = datetime(2026, 5, 11, 9, 12, tzinfo=timezone.utc)
    ids = iter(range(100, 1000))

    def at(minutes: float) -> datetime:
        clock.advance(max(0.0, (base + timedelta(minutes=minutes)).timestamp() - clock.seconds()))
        return base + timedelta(minutes=minutes)

    def say(minutes: float, room: str, sender: str, text: str, action: bool = False) -> None:
        model.apply(events.Message(next(ids), at(minutes), room, sender, text, action))

    def user(nick: str, status: str = "") -> events.UserInfo:
        return events.UserInfo(nick, status, 0)

    expires = base + timedelta(days=1)
    at(0)
    model.apply(events.Welcome("chat", "0.1.0", "Welcome to the Northwind community chat.",
                               events.Limits(4096, 24, 100 << 20)))
    model.apply(events.Registered("maya", account=True))
    model.set_secure(True)
    for room, topic, people in (
        ("#dev", "Release 0.4 on Friday · CI is green", ("wen", "dana", "maya", "felix")),
        ("#design", "Icons, colours, and the new onboarding", ("dana", "maya")),
        ("#lobby", "Welcome! Be kind · files expire after a day", ("bob", "wen", "dana", "eli", "maya", "priya")),
    ):
        model.apply(events.Joined(at(0), room, "maya"))
        model.apply(events.Users(room, tuple(
            user(n, {"bob": "on the train", "priya": "in a meeting"}.get(n, "")) for n in people)))
        model.apply(events.Topic(room, topic, "dana"))
    model.apply(events.History("#lobby", (
        events.Message(41, base - timedelta(hours=15), "#lobby", "priya", "Night all, see you tomorrow"),
        events.Message(42, base - timedelta(hours=14, minutes=50), "#lobby", "bob", "good night!"),
    )))
    say(1, "#lobby", "wen", "morning everyone ☕")
    say(2, "#lobby", "dana", "hi maya! did the 0.4 build land?")
    say(2.5, "#lobby", "maya", "yes, it's up: release notes are in #dev")
    model.apply(events.Joined(at(3), "#lobby", "eli"))
    say(3.2, "#lobby", "eli", "hello hello, sorry I'm late")
    say(4, "#lobby", "bob", "waves from the train", action=True)
    say(5, "#dev", "felix", "the flaky test is fixed on main")
    model.apply(events.Private(next(ids), at(5.5), "dana", "maya", "can you look at my PR when you have a minute?"))
    model.apply(events.Private(next(ids), at(6), "maya", "dana", "sure, right after lunch"))
    say(6.5, "#lobby", "wen", "maya, the deploy script handles the new certificates now")
    at(7)
    model.apply(events.FileOffer(7, "dana", "#lobby", "onboarding-review.pdf", 2_516_582, "0" * 64, expires))
    say(7.5, "#dev", "wen", "pushed the migration, please review")
    say(8, "#design", "dana", "new icon set is in the shared folder")
    model.apply(events.Parted(at(8.5), "#lobby", "priya", "back after the meeting"))
    at(8.7)
    model.apply(events.FileOffer(8, "wen", "maya", "deploy-logs.tar.gz", 18_874_368, "1" * 64, expires))
    say(9, "#lobby", "eli", "does anyone have the slides from Thursday?")
    say(9.5, "#dev", "felix", "CI is green again 🎉")
    at(9.7)
    notes = model.add_transfer("download", "meeting-notes.md", "wen", 14_336)
    model.finish(notes, result=str(Path.home() / "Downloads" / "chat" / "meeting-notes.md"))
    upload = model.add_transfer("upload", "thursday-slides.pdf", "#lobby", 6_291_456)
    model.progress(upload, 3_774_874, 6_291_456)
    model.apply(events.Message(next(ids), at(10), "#lobby", "maya", "uploading them now", False))
    model.set_rtt(0.023)


def main() -> None:
    """
    Render, capture, save, exit.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--theme", choices=("dark", "light"), default="dark")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    output = args.output or HERE / ("tk-client.png" if args.theme == "dark" else f"tk-client-{args.theme}.png")
    xvfb = start_xvfb() if not os.environ.get("DISPLAY") else None
    try:
        root = tk.Tk(className="Chat")
        model = ChatModel("maya")
        model.set_state(State.ONLINE)
        clock = Clock()
        window = ChatWindow(root, StubClient(model), clock=clock, theme=args.theme, zone=timezone.utc)
        converse(model, clock)
        clock.advance(1)
        root.update()
        frame = int(root.wm_frame(), 16)
        width, height, rows = capture(frame)
        write_png(output, width, height, rows)
        window.close()
        root.destroy()
        print(f"{output} ({width}x{height})")
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)


if __name__ == "__main__":
    main()

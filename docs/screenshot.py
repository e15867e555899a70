"""
Render the main window of C{chat-tk} with a realistic conversation, without
a network, and save it as a PNG.

    python docs/screenshot.py [--theme dark|light|user] [--view room|private] [--output PATH]
    python docs/screenshot.py --all

C{--all} writes the four screenshots of the docs: C{tk-client.png} (dark),
C{tk-client-light.png}, C{tk-client-theme.png} (a user theme, the
L{EXAMPLE_THEME} file) and C{tk-client-private.png} (a private
conversation). C{--theme user} reads L{EXAMPLE_THEME} from a temporary
config directory, not the user's own.

Without C{DISPLAY}, it runs itself again under C{xvfb-run}. The window is
captured with ImageMagick's C{import} (Debian: xvfb, imagemagick); emoji
need a font that has them (Debian: fonts-symbola).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tkinter as tk
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet.defer import Deferred, succeed  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from chat import events  # noqa: E402
from chat.client.model import ChatModel, State  # noqa: E402
from chat.client.tk.window import ChatWindow  # noqa: E402

HERE = Path(__file__).resolve().parent

EXAMPLE_THEME = """\
# A user theme: ~/.config/chat/theme.toml (on Linux), chosen with View → Your theme.
base = "dark"            # the built-in theme it changes: "dark" or "light"

[colours]                # any colour of the theme, as "#rrggbb"
window = "#1b1a26"
panel = "#211f30"
pane = "#262338"
field = "#302c45"
button = "#332f4a"
hover = "#3d3858"
border = "#3a3552"
select = "#433a66"
text = "#ece8ff"
muted = "#a39dc4"
accent = "#e0719a"
accent_hover = "#eb8aae"
link = "#7fd1c7"
mention_bg = "#3d2f3f"
private_bg = "#2c2a45"

[fonts]                  # families and sizes in points; any may be left out
chat_size = 12
code_family = "Noto Mono"
"""
"""The user theme of C{tk-client-theme.png}."""

SHOTS = {"tk-client.png": ("dark", "room"), "tk-client-light.png": ("light", "room"),
         "tk-client-theme.png": ("user", "room"), "tk-client-private.png": ("dark", "private")}
"""The screenshots of C{--all}: file name, theme, view."""


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
    model.make_current("#dev")  # maya looks at #dev for a while, then comes back to #lobby
    say(6.2, "#dev", "felix", "release notes are *done*, see https://example.org/notes/0.4")
    say(6.3, "#lobby", "dana", "maya, *lunch* at 12? the `#design` review can wait")
    model.make_current("#lobby")
    say(6.5, "#lobby", "wen", "maya, the deploy script handles the new certificates now 👍")
    at(7)
    model.apply(events.FileOffer(7, "dana", "#lobby", "onboarding-review.pdf", 2_516_582, "0" * 64, expires))
    say(7.5, "#dev", "wen", "pushed the migration, please review")
    say(8, "#design", "dana", "new icon set is in the shared folder")
    model.apply(events.Parted(at(8.5), "#lobby", "priya", "back after the meeting"))
    at(8.7)
    model.apply(events.FileOffer(8, "wen", "maya", "deploy-logs.tar.gz", 18_874_368, "1" * 64, expires))
    say(9, "#lobby", "eli", "does anyone have the slides from Thursday? _asking for a friend_ 😅")
    model.apply(events.Private(next(ids), at(9.2), "wen", "maya", "run `make certs` after the pull, then restart 🚀"))
    say(9.5, "#dev", "felix", "CI is green again 🎉")
    at(9.7)
    notes = model.add_transfer("download", "meeting-notes.md", "wen", 14_336)
    model.finish(notes, result=str(Path.home() / "Downloads" / "chat" / "meeting-notes.md"))
    upload = model.add_transfer("upload", "thursday-slides.pdf", "#lobby", 6_291_456)
    model.progress(upload, 3_774_874, 6_291_456)
    model.apply(events.Message(next(ids), at(10), "#lobby", "maya", "uploading them now 🎉", False))
    model.set_rtt(0.023)


def shoot(theme: str, view: str, output: Path) -> None:
    """
    Render the window in C{theme} showing C{view} (C{room}: #lobby; C{private}: the conversation with dana) and
    capture it to C{output}.
    """
    importer = shutil.which("import")
    if importer is None:
        raise SystemExit("screenshot: ImageMagick's import is missing (apt-get install imagemagick)")
    root = tk.Tk(className="Chat")
    model = ChatModel("maya")
    model.set_state(State.ONLINE)
    clock = Clock()
    window = ChatWindow(root, StubClient(model), clock=clock, theme=theme, zone=timezone.utc)
    converse(model, clock)
    if view == "private":
        window.open_conversation("dana")
        model.apply(events.Private(990, datetime(2026, 5, 11, 9, 23, tzinfo=timezone.utc), "dana", "maya",
                                   "thanks! *no rush*, the PR is https://example.org/pr/212 🙏"))
    clock.advance(1)
    root.geometry("+0+0")
    root.update()
    # The menu bar is drawn above the toplevel, in a wrapper at the window's
    # position: take the screen from there to the toplevel's bottom right.
    width, bottom = root.winfo_width() + root.winfo_rootx(), root.winfo_height() + root.winfo_rooty()
    subprocess.run([importer, "-window", "root", "-crop", f"{width}x{bottom}+0+0", "+repage", str(output)], check=True)
    window.close()
    root.destroy()
    print(output)


def main() -> None:
    """
    Render, capture, save, exit.
    """
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--theme", choices=("dark", "light", "user"), default="dark")
    parser.add_argument("--view", choices=("room", "private"), default="room")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--all", action="store_true", help="write the four screenshots of the docs")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        # No screen: run again on a virtual one, for the time of the capture.
        if shutil.which("xvfb-run") is None:
            raise SystemExit("screenshot: no DISPLAY and no xvfb-run (apt-get install xvfb)")
        os.execvp("xvfb-run", ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, *sys.argv])
    with tempfile.TemporaryDirectory(prefix="chat-screenshot-") as config:
        os.environ["XDG_CONFIG_HOME"] = config  # the example theme, never the user's own settings
        (Path(config) / "chat").mkdir()
        (Path(config) / "chat" / "theme.toml").write_text(EXAMPLE_THEME, encoding="utf-8")
        if args.all:
            for name, (theme, view) in SHOTS.items():
                shoot(theme, view, HERE / name)
            return
        suffix = {"dark": "", "light": "-light", "user": "-theme"}[args.theme]
        default = HERE / (f"tk-client{suffix}.png" if args.view == "room" else f"tk-client{suffix}-private.png")
        shoot(args.theme, args.view, args.output or default)


if __name__ == "__main__":
    main()

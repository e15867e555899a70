# -*- test-case-name: tests.test_client_settings -*-
"""
What the clients remember between runs: the last server, nick, theme,
muted rooms and downloads folder, as JSON in the platform's config
directory (L{config_dir}); and where the clients keep their data
(L{data_dir}: input history).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from twisted.logger import Logger

APP_NAME = "chat"
"""The name of the clients' folders under the platform's config and data directories."""

SETTINGS_FILE = "settings.json"
"""The name of the settings file in L{config_dir}."""

_log = Logger()


def config_dir() -> Path:
    """
    The clients' config folder: C{$XDG_CONFIG_HOME/chat} (by default
    C{~/.config/chat}) on Linux and BSDs, C{~/Library/Application
    Support/chat} on macOS, C{%APPDATA%\\chat} on Windows, read from the
    environment at each call. Not created here.
    """
    return platformdirs.user_config_path(APP_NAME, appauthor=False, roaming=True)


def data_dir() -> Path:
    """
    The clients' data folder (input history): C{$XDG_DATA_HOME/chat} (by
    default C{~/.local/share/chat}) on Linux and BSDs, C{~/Library/Application
    Support/chat} on macOS, C{%APPDATA%\\chat} on Windows, read from the
    environment at each call. Not created here.
    """
    return platformdirs.user_data_path(APP_NAME, appauthor=False, roaming=True)


def settings_path() -> Path:
    """
    The settings file: L{SETTINGS_FILE} in L{config_dir}.
    """
    return config_dir() / SETTINGS_FILE


@dataclass(slots=True)
class ClientSettings:
    """
    What the clients remember, saved as one JSON object with these keys
    (any missing key, or one of the wrong type, takes its default; unknown
    keys are ignored).

    @ivar server: the last server, C{HOST:PORT} (C{[ADDRESS]:PORT} for an
        IPv6 address), or C{""}: none yet.
    @ivar nick: the last nick registered, or C{""}.
    @ivar theme: the Tk client's theme name (C{dark}, C{light}, or a user
        theme's), or C{""}: the default.
    @ivar muted: the muted rooms, lower-case names with their C{#}: their
        messages never alert (see L{chat.client.overview.notifies}).
    @ivar downloads: the downloads folder (a path, C{~} allowed), or C{""}:
        the default, C{~/Downloads/chat}.
    @ivar notice: why the file could not be read (one line, for the user),
        or C{""}; not saved.
    """

    server: str = ""
    nick: str = ""
    theme: str = ""
    muted: set[str] = field(default_factory=set)
    downloads: str = ""
    notice: str = field(default="", compare=False)

    @classmethod
    def load(cls, path: Path | None = None) -> ClientSettings:
        """
        Read the settings from C{path} (L{settings_path} by default). A
        missing file gives the defaults silently; a file that cannot be read
        or is not a JSON object gives the defaults with L{notice} saying so
        (never raises).
        """
        path = settings_path() if path is None else path
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except OSError as e:
            return cls(notice=f"Cannot read the settings in {path} ({e.strerror}): using the defaults.")
        except ValueError:
            return cls(notice=f"The settings in {path} are not valid JSON: using the defaults.")
        if not isinstance(data, dict):
            return cls(notice=f"The settings in {path} are not a JSON object: using the defaults.")

        def text(key: str) -> str:
            value = data.get(key, "")
            return value if isinstance(value, str) else ""

        muted = data.get("muted", [])
        rooms = {room.lower() for room in muted if isinstance(room, str) and room} if isinstance(muted, list) else set()
        return cls(server=text("server"), nick=text("nick"), theme=text("theme"), muted=rooms,
                   downloads=text("downloads"))

    def save(self, path: Path | None = None) -> bool:
        """
        Write the settings to C{path} (L{settings_path} by default) as a
        JSON object (C{muted} a sorted list), creating its folder; the file
        is replaced whole (written beside it, then renamed). A failure is
        logged, not raised.

        @return: whether they were saved.
        """
        path = settings_path() if path is None else path
        data = {"server": self.server, "nick": self.nick, "theme": self.theme, "muted": sorted(self.muted),
                "downloads": self.downloads}
        partial = path.with_name(path.name + ".new")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            partial.replace(path)
        except OSError as e:
            _log.warn("Cannot save the client settings to {path}: {error}", path=str(path), error=e.strerror)
            return False
        return True

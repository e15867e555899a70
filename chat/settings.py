# -*- test-case-name: tests.test_tap -*-
"""
The daemon's settings: the limits of PROTOCOL.md section 8 and what the
welcome announces, as one immutable value built by L{chat.tap}.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024

DEFAULT_LISTEN = "tcp:8888:interface=127.0.0.1"
"""The daemon's listener when no C{--listen} is given: this machine only."""


@dataclass(frozen=True, slots=True)
class Settings:
    """
    Everything configurable about one daemon. Sizes are in bytes, rates in
    lines per second, times in seconds.
    """

    server_name: str = "chat"
    motd: str = ""
    max_line: int = 4096
    """The longest line accepted, in bytes, without its line end."""
    flood_burst: int = 20
    flood_rate: float = 5.0
    max_per_ip: int = 32
    max_output: int = 4 * MiB
    """Output queued for a slow reader beyond which it is disconnected."""
    max_file: int = 100 * MiB
    """The largest file offered, in bytes (PROTOCOL.md section 8)."""
    spool_quota: int = 2048 * MiB
    """The total size of stored files and uploads in progress, in bytes."""
    file_ttl: float = 24 * 3600.0
    """Seconds a file offer lasts (PROTOCOL.md section 6)."""
    history_on_join: int = 50
    history_days: float = 0.0
    """Days messages are kept; 0 keeps them forever."""
    allow_plaintext_auth: bool = False
    """Whether passwords may cross plain TCP from other machines (PROTOCOL.md section 7)."""
    shutdown_timeout: float = 5.0
    """How long shutdown waits for goodbyes to drain before cutting connections."""

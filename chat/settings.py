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
    """Output queued for one connection, in bytes, judged over time: over it, the connection is
    disconnected after 10 s without reading, or at once at 4 times it (PROTOCOL.md section 8)."""
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
    registration_timeout: float = 60.0
    """Seconds a connection may stay without a nick before it is closed (PROTOCOL.md section 8)."""
    tls_handshake_timeout: float = 15.0
    """Seconds a TLS handshake (implicit TLS or C{/starttls}) may take before the connection is closed."""
    upload_idle_timeout: float = 60.0
    """Seconds an upload may go without a byte before it is cancelled and the connection closed."""
    disk_reserve: int | None = None
    """Free bytes kept on the spool's file system for history: C{/upload} is refused with C{quota}
    when the declared size would eat into them; C{None} for 256 MiB or 5 % of the file system,
    the smaller."""
    max_output_total: int = 256 * MiB
    """Output queued for all connections together, in bytes, beyond which the connections
    holding the most are disconnected first (PROTOCOL.md section 8)."""
    ipv6_prefix: int = 64
    """IPv6 addresses in one network of this prefix length count as one address for the
    per-address limits (PROTOCOL.md section 8)."""
    web: bool = False
    """Whether the daemon has a web listener (C{--web}): C{registered} then carries a bearer
    token for the HTTP file routes (PROTOCOL.md section 9)."""
    web_origins: tuple[str, ...] = ()
    """Origins (C{scheme://host[:port]}, lower-cased) whose pages may open the WebSocket besides
    the web listener's own (C{--web-origin}, PROTOCOL.md section 9)."""
    trusted_proxies: tuple[str, ...] = ()
    """Networks (CIDR) whose C{X-Forwarded-For} is believed (C{--trusted-proxy}, PROTOCOL.md section 9)."""

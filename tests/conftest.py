"""
Every test runs with the clients' config and data folders in a temporary
directory of its own (C{XDG_CONFIG_HOME}, C{XDG_DATA_HOME}): no test reads
or writes the settings, theme or input history of the user running it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.browser"]
"""The C{playwright} and C{browser} fixtures of the browser tests (L{tests.browser})."""


@pytest.fixture(autouse=True)
def _client_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path_factory.mktemp("client-home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(Path(home, "config")))
    monkeypatch.setenv("XDG_DATA_HOME", str(Path(home, "data")))
    yield

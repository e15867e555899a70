# -*- test-case-name: tests.test_client_tk -*-
"""
How the window tells the user of what alerts them (L{chat.client.overview.notifies})
while it is in the background: its title, flashing a count, and a desktop
notification through C{notify-send}.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorProcess, IReactorTime
from twisted.internet.protocol import ProcessProtocol

FLASH_SECONDS = 1.0
"""Seconds between two changes of the flashing title of an alert."""

FLASHES = 10
"""Changes of the title an alert flashes; it then stays marked until the window has the focus."""


def desktop_notification(reactor: Any, summary: str, body: str) -> bool:
    """
    Show a desktop notification with C{notify-send} when it is on the
    C{PATH}, in a child process the reactor runs (nothing waits for it).

    @param reactor: an L{IReactorProcess}; nothing is shown with another.
    @return: whether one was asked for; never raises for want of it.
    """
    program = shutil.which("notify-send")
    if program is None or not IReactorProcess.providedBy(reactor):
        return False
    try:
        reactor.spawnProcess(ProcessProtocol(), program, [program, "--app-name=chat", "--", summary, body],
                             env=dict(os.environ))
    except OSError:
        return False
    return True


class TitleAlert:
    """
    The window's title with the count of alerts not yet seen: C{(2) ✉ TITLE},
    flashing (L{FLASHES} changes, L{FLASH_SECONDS} apart), then marked
    until L{end}.
    """

    def __init__(self, clock: IReactorTime, set_title: Callable[[str], object], title: Callable[[], str]) -> None:
        """
        @param set_title: sets the window's title.
        @param title: the title without alerts, as it is now.
        """
        self._clock = clock
        self._set_title = set_title
        self._title = title
        self.count = 0
        """Alerts since the window last had the focus."""
        self._flashes = 0
        self._on = False
        self._timer: IDelayedCall | None = None

    def alert(self, count: int) -> None:
        """
        C{count} more alerts: flash the title again.
        """
        self.count += count
        self._flashes = 0
        if self._timer is None or not self._timer.active():
            self._flash()

    def _flash(self) -> None:
        self._timer = None
        if not self.count:
            return
        self._on = not self._on if self._flashes < FLASHES else True
        self._flashes += 1
        self.show()
        if self._flashes <= FLASHES:
            self._timer = self._clock.callLater(FLASH_SECONDS, self._flash)

    def end(self) -> None:
        """
        The user has seen them: stop flashing and give the title back.
        """
        self.stop()
        if self.count:
            self.count = 0
            self._on = False
            self.show()

    def stop(self) -> None:
        """
        Stop flashing (the window closes).
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def show(self) -> None:
        """
        Set the window's title, with the count while it is flashed on.
        """
        title = self._title()
        self._set_title(f"({self.count}) ✉ {title}" if self.count and self._on else title)

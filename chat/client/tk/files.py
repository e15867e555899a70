# -*- test-case-name: tests.test_client_tk -*-
"""
The files panel of C{chat-tk}: a card per file offered to the user with
its Download button, a card per transfer with its progress bar (redrawn
at most every L{PROGRESS_INTERVAL} seconds), and the downloads folder.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from tkinter import ttk
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from chat import events
from chat.client.model import ChatModel, Transfer
from chat.client.present import WINDOW, transfer_detail, transfer_title
from chat.client.status import offer_detail, short_path
from chat.client.tk.theme import Fonts, Theme, fit

PROGRESS_INTERVAL = 0.1
"""Seconds between two redraws of the transfers (about ten a second)."""

MAX_OFFERS = 20
"""Offers listed; older ones are dropped from the panel."""

MAX_TRANSFERS = 8
"""Transfers listed; the oldest finished ones go first."""

CARD_WIDTH = 248
"""Pixels of text across a card in a panel 296 pixels wide (296 - 2 × 8 - 2 × 10 - 2, less 10 for the scroll
bar); see L{FilesPanel.set_width}."""


class Scrolled:
    """
    A frame in a canvas, scrolled vertically; its scroll bar shows only
    when the contents do not fit.

    @ivar inner: where the contents go.
    """

    def __init__(self, parent: tk.Misc, style: str) -> None:
        self.outer = ttk.Frame(parent, style=style)
        self.canvas = tk.Canvas(self.outer, highlightthickness=0, borderwidth=0)
        self.bar = ttk.Scrollbar(self.outer, orient="vertical", command=self.canvas.yview)
        self.inner = ttk.Frame(self.canvas, style=style)
        self._item = self.canvas.create_window(0, 0, window=self.inner, anchor="nw")
        self.canvas.configure(yscrollcommand=self._scrolled)
        self.canvas.grid(row=0, column=0, sticky="nsew")
        self.bar.grid(row=0, column=1, sticky="ns")
        self.bar.grid_remove()
        self.outer.columnconfigure(0, weight=1)
        self.outer.rowconfigure(0, weight=1)
        self.inner.bind("<Configure>", self._inner_resized)
        self.canvas.bind("<Configure>", self._canvas_resized)
        for widget in (self.canvas, self.inner):
            widget.bind("<Button-4>", lambda e: self._wheel(-1))
            widget.bind("<Button-5>", lambda e: self._wheel(1))

    def _scrolled(self, first: str | float, last: str | float) -> None:
        self.bar.set(first, last)
        if float(first) <= 0.0 and float(last) >= 1.0:
            self.bar.grid_remove()
        else:
            self.bar.grid()

    def _inner_resized(self, event: tk.Event[Any]) -> None:
        self.canvas.configure(scrollregion=(0, 0, event.width, event.height))

    def _canvas_resized(self, event: tk.Event[Any]) -> None:
        self.canvas.itemconfigure(self._item, width=event.width)

    def _wheel(self, steps: int) -> None:
        if self.bar.winfo_ismapped():
            self.canvas.yview_scroll(steps, "units")


@dataclass
class TransferRow:
    """
    The widgets of one transfer.
    """

    frame: ttk.Frame
    title: ttk.Label
    bar: ttk.Progressbar
    detail: ttk.Label
    transfer: Transfer


@dataclass
class OfferRow:
    """
    The widgets of one offer.
    """

    frame: ttk.Frame
    title: ttk.Label
    detail: ttk.Label
    button: ttk.Button
    offer: events.FileOffer


class FilesPanel:
    """
    The files offered to the user and the transfers, newest first.

    @ivar offer_rows: the offers listed, by offer id.
    @ivar transfer_rows: the transfers listed, by the model's number.
    @ivar send_button: Send file…, naming where it sends.
    @ivar downloads_label: the downloads folder.
    """

    def __init__(self, parent: tk.Misc, model: ChatModel, fonts: Fonts, clock: IReactorTime, *,
                 on_send: Callable[[], None], on_download: Callable[[int], None],
                 on_folder: Callable[[], None]) -> None:
        """
        Put the heading on row 3 of C{parent}, the cards on row 4 and the
        downloads folder on row 5.

        @param clock: schedules the throttled redraws.
        @param on_send: Send file… was pressed.
        @param on_download: called with the id of an offer whose Download was pressed.
        @param on_folder: Change… (the downloads folder) was pressed.
        """
        self.model = model
        self.fonts = fonts
        self._clock = clock
        self._on_download = on_download
        self.offer_rows: dict[int, OfferRow] = {}
        self.transfer_rows: dict[int, TransferRow] = {}
        self._dirty: dict[int, Transfer] = {}
        self._redraw: IDelayedCall | None = None
        self._drawn_at = -PROGRESS_INTERVAL
        self._closed = False
        self.card_width = CARD_WIDTH
        self._target: str | None = None
        self._folder: Path | None = None

        files = ttk.Frame(parent, style="Panel.TFrame", padding=(16, 10, 12, 6))
        files.grid(row=3, column=0, sticky="ew")
        files.columnconfigure(0, weight=1)
        ttk.Label(files, text="FILES", style="Heading.TLabel").grid(row=0, column=0, sticky="w")
        self.send_button = ttk.Button(files, text="Send file…", style="Small.TButton", command=on_send)
        self.send_button.grid(row=0, column=1, sticky="e")
        self.area = Scrolled(parent, "Panel.TFrame")
        self.area.outer.grid(row=4, column=0, sticky="nsew", padx=(8, 0))
        self.area.inner.columnconfigure(0, weight=1)
        self.offers_box = ttk.Frame(self.area.inner, style="Panel.TFrame")
        self.offers_box.grid(row=0, column=0, sticky="ew")
        self.offers_box.columnconfigure(0, weight=1)
        self.transfers_box = ttk.Frame(self.area.inner, style="Panel.TFrame")
        self.transfers_box.grid(row=1, column=0, sticky="ew")
        self.transfers_box.columnconfigure(0, weight=1)
        self.no_files = ttk.Label(self.area.inner, text="Files offered to you and your transfers show here.",
                                  style="Muted.TLabel", wraplength=240, padding=(8, 4))
        self.no_files.grid(row=2, column=0, sticky="ew")
        downloads = ttk.Frame(parent, style="Panel.TFrame", padding=(16, 8, 12, 12))
        downloads.grid(row=5, column=0, sticky="ew")
        downloads.columnconfigure(0, weight=1)
        self.downloads_label = ttk.Label(downloads, text="", style="Muted.TLabel")
        self.downloads_label.grid(row=0, column=0, sticky="w")
        ttk.Button(downloads, text="Change…", style="Small.TButton", command=on_folder).grid(
            row=0, column=1, sticky="e")

    def apply_theme(self, t: Theme, f: Fonts) -> None:
        """
        Colour what ttk styles do not reach: the canvas.
        """
        self.area.canvas.configure(background=t.panel)

    def redraw(self) -> None:
        """
        Draw every transfer listed again (after a change of theme).
        """
        for row in self.transfer_rows.values():
            self._draw(row)

    def show_target(self, target: str | None) -> None:
        """
        Name where Send file sends: a nick or a room, or nowhere yet.
        """
        self._target = target
        self.send_button.configure(text=f"Send file to {fit(target, self.fonts.small, self.card_width - 148)}…"
                                   if target else "Send file…")

    def show_downloads(self, folder: Path) -> None:
        """
        Show the folder downloads go to.
        """
        self._folder = folder
        self.downloads_label.configure(text=fit("Save to " + short_path(folder), self.fonts.small,
                                                self.card_width - 88))

    def set_width(self, panel: int) -> None:
        """
        Fit the texts to a panel C{panel} pixels wide (the window was resized).
        """
        self.card_width = panel - (296 - CARD_WIDTH)
        self.no_files.configure(wraplength=self.card_width - 18)
        self.show_target(self._target)
        if self._folder is not None:
            self.show_downloads(self._folder)
        for row in self.offer_rows.values():
            self._fit_offer(row)
        for transfer_row in self.transfer_rows.values():
            transfer_row.title.configure(text=self._transfer_title(transfer_row.transfer))

    def _fit_offer(self, row: OfferRow) -> None:
        row.title.configure(text=fit(row.offer.name, self.fonts.bold, self.card_width))
        room = self.card_width - row.button.winfo_reqwidth() - 10
        row.detail.configure(text=fit(offer_detail(row.offer, self.model.nick), self.fonts.small, room))

    def _transfer_title(self, transfer: Transfer) -> str:
        room = self.card_width - self.fonts.bold.measure(transfer_title(transfer, WINDOW, ""))
        return transfer_title(transfer, WINDOW, fit(transfer.name, self.fonts.bold, max(room, 60)))

    def download(self, offer_id: int) -> None:
        """
        Download an offer: its button waits, and the window is asked to.
        """
        row = self.offer_rows.get(offer_id)
        if row is not None:
            row.button.state(["disabled"])
        self._on_download(offer_id)

    def add_offer(self, offer: events.FileOffer) -> None:
        """
        A card for an offer to the user (or to a room of theirs); none for their own.
        """
        if offer.sender.lower() == self.model.nick.lower() or offer.id in self.offer_rows:
            return
        frame = ttk.Frame(self.offers_box, style="Card.TFrame", padding=(10, 8, 10, 8))
        frame.columnconfigure(0, weight=1)
        title = ttk.Label(frame, text="", style="Card.TLabel")
        title.grid(row=0, column=0, columnspan=2, sticky="w")
        button = ttk.Button(frame, text="Download", style="SmallAccent.TButton",
                            command=lambda: self.download(offer.id))
        button.grid(row=1, column=1, sticky="e", padx=(8, 0))
        detail = ttk.Label(frame, text="", style="CardMuted.TLabel")
        detail.grid(row=1, column=0, sticky="w", pady=(2, 0))
        self.offer_rows[offer.id] = row = OfferRow(frame, title, detail, button, offer)
        self._fit_offer(row)
        while len(self.offer_rows) > MAX_OFFERS:
            self.offer_rows.pop(min(self.offer_rows)).frame.destroy()
        self._layout()

    def transfer_changed(self, transfer: Transfer) -> None:
        """
        Redraw C{transfer}: at once when it is new or finished, else at
        most every L{PROGRESS_INTERVAL} seconds.
        """
        self._dirty[transfer.id] = transfer
        if transfer.finished or transfer.id not in self.transfer_rows:
            self._draw_dirty()
            return
        if self._redraw is not None and self._redraw.active():
            return
        wait = self._drawn_at + PROGRESS_INTERVAL - self._clock.seconds()
        if wait <= 0:
            self._draw_dirty()
        else:
            self._redraw = self._clock.callLater(wait, self._draw_dirty)

    def close(self) -> None:
        """
        Stop redrawing (the window closes).
        """
        self._closed = True
        if self._redraw is not None and self._redraw.active():
            self._redraw.cancel()
        self._redraw = None

    def _draw_dirty(self) -> None:
        if self._redraw is not None and self._redraw.active():
            self._redraw.cancel()
        self._redraw = None
        if self._closed:
            return
        self._drawn_at = self._clock.seconds()
        added = False
        for transfer in self._dirty.values():
            row = self.transfer_rows.get(transfer.id)
            if row is None:
                row = self._transfer_row(transfer)
                added = True
            self._draw(row)
            if transfer.kind == "download" and transfer.finished:
                offer_row = self.offer_rows.get(transfer.offer) if transfer.offer is not None else None
                if offer_row is not None:
                    # Failed: it can be tried again; else it is saved.
                    offer_row.button.configure(text="Download" if transfer.error else "Saved")
                    offer_row.button.state(["!disabled"] if transfer.error else ["disabled"])
        self._dirty.clear()
        if added:
            self._layout()

    def _transfer_row(self, transfer: Transfer) -> TransferRow:
        frame = ttk.Frame(self.transfers_box, style="Card.TFrame", padding=(10, 8, 10, 8))
        frame.columnconfigure(0, weight=1)
        title = ttk.Label(frame, style="Card.TLabel", text=self._transfer_title(transfer))
        title.grid(row=0, column=0, sticky="w")
        bar = ttk.Progressbar(frame, style="Transfer.Horizontal.TProgressbar", maximum=100.0, mode="determinate")
        bar.grid(row=1, column=0, sticky="ew", pady=(5, 4))
        detail = ttk.Label(frame, text="", style="CardMuted.TLabel")
        detail.grid(row=2, column=0, sticky="w")
        row = TransferRow(frame, title, bar, detail, transfer)
        self.transfer_rows[transfer.id] = row
        while len(self.transfer_rows) > MAX_TRANSFERS:
            finished = [tid for tid, r in self.transfer_rows.items() if r.transfer.finished]
            if not finished:
                break
            self.transfer_rows.pop(min(finished)).frame.destroy()
        return row

    def _draw(self, row: TransferRow) -> None:
        transfer = row.transfer
        row.bar.configure(value=transfer.fraction * 100.0)
        if transfer.error:
            row.bar.configure(style="Failed.Horizontal.TProgressbar")
        elif transfer.finished:
            row.bar.configure(style="Done.Horizontal.TProgressbar")
        row.detail.configure(text=transfer_detail(transfer),
                             style="CardError.TLabel" if transfer.error else "CardMuted.TLabel")

    def _layout(self) -> None:
        for index, offer_id in enumerate(sorted(self.offer_rows, reverse=True)):
            self.offer_rows[offer_id].frame.grid(row=index, column=0, sticky="ew", padx=(0, 8), pady=(0, 6))
        for index, tid in enumerate(sorted(self.transfer_rows, reverse=True)):
            self.transfer_rows[tid].frame.grid(row=index, column=0, sticky="ew", padx=(0, 8), pady=(0, 6))
        if self.offer_rows or self.transfer_rows:
            self.no_files.grid_remove()
        else:
            self.no_files.grid()

# -*- test-case-name: tests.test_client_tk -*-
"""
Before the C{chat-tk} window: its command line (L{TkOptions}) and the
dialog that asks where to connect and as whom (L{ConnectDialog}).
"""

from __future__ import annotations

import tkinter as tk
from tkinter import filedialog, ttk
from typing import Any

from twisted.python import usage

from chat.client import options as client_options
from chat.client.service import Account


class TkOptions(client_options.ClientOptions):
    """
    The options of C{chat-client}, under the name C{chat-tk}.
    """

    program = "chat-tk"
    synopsis = "Usage: chat-tk [options] [NICK]"
    longdesc = (
        "Opens a chat window connected to a chat daemon as NICK. Without NICK, or with --password-prompt, "
        "a dialog asks for the server, the nick, a password and TLS first. With --tls the server's "
        "certificate and host name are verified against the system's CAs, or --cafile."
    )


class ConnectDialog:
    """
    Asks where to connect and as whom: host, port, nick, an optional
    password, TLS and a CA file. Used before the reactor runs.

    @ivar result: the options and account chosen, or C{None} if the user
        closed the dialog.
    """

    def __init__(self, root: tk.Tk, options: client_options.ClientOptions) -> None:
        self.root = root
        self.options = options
        self.result: tuple[client_options.ClientOptions, Account] | None = None
        top = self.top = tk.Toplevel(root)
        top.title("Connect — chat")
        top.resizable(False, False)
        top.protocol("WM_DELETE_WINDOW", self.cancel)
        frame = ttk.Frame(top, padding=(22, 18, 22, 16))
        frame.grid(row=0, column=0, sticky="nsew")
        frame.columnconfigure(1, weight=1)
        ttk.Label(frame, text="Connect to a chat server", style="Title.TLabel").grid(
            row=0, column=0, columnspan=3, sticky="w", pady=(0, 14))
        self.host = tk.StringVar(top, value=options["host"])
        self.port = tk.StringVar(top, value=str(options["port"]))
        self.nick = tk.StringVar(top, value=options["nick"] or "")
        self.password = tk.StringVar(top, value="")
        self.tls = tk.BooleanVar(top, value=bool(options["tls"]))
        self.cafile = tk.StringVar(top, value=options["cafile"] or "")
        rows: list[tuple[str, tk.StringVar, dict[str, Any]]] = [
            ("Server", self.host, {}),
            ("Port", self.port, {"width": 8}),
            ("Nickname", self.nick, {}),
            ("Password", self.password, {"show": "•"}),
        ]
        self.entries: dict[str, ttk.Entry] = {}
        for index, (label, variable, extra) in enumerate(rows, start=1):
            ttk.Label(frame, text=label).grid(row=index, column=0, sticky="w", padx=(0, 12), pady=4)
            entry = ttk.Entry(frame, textvariable=variable, width=extra.pop("width", 28), **extra)
            entry.grid(row=index, column=1, columnspan=2 if label != "Port" else 1, sticky="ew" if label != "Port"
                       else "w", pady=4)
            self.entries[label.lower()] = entry
        ttk.Label(frame, text="Leave the password empty to join as a guest.", style="Dialog.TLabel").grid(
            row=5, column=1, columnspan=2, sticky="w")
        ttk.Checkbutton(frame, text="Use TLS (encrypted)", variable=self.tls, command=self._tls_toggled).grid(
            row=6, column=1, columnspan=2, sticky="w", pady=(10, 4))
        ttk.Label(frame, text="CA file").grid(row=7, column=0, sticky="w", padx=(0, 12), pady=4)
        self.cafile_entry = ttk.Entry(frame, textvariable=self.cafile, width=28)
        self.cafile_entry.grid(row=7, column=1, sticky="ew", pady=4)
        self.browse_button = ttk.Button(frame, text="Browse…", command=self._browse)
        self.browse_button.grid(row=7, column=2, padx=(6, 0))
        self.error = ttk.Label(frame, text="", style="DialogError.TLabel", wraplength=380)
        self.error.grid(row=8, column=0, columnspan=3, sticky="w", pady=(8, 0))
        buttons = ttk.Frame(frame)
        buttons.grid(row=9, column=0, columnspan=3, sticky="e", pady=(14, 0))
        ttk.Button(buttons, text="Quit", command=self.cancel).pack(side="right")
        ttk.Button(buttons, text="Connect", style="Accent.TButton", command=self.submit).pack(side="right", padx=6)
        top.bind("<Return>", lambda e: self.submit())
        top.bind("<Escape>", lambda e: self.cancel())
        self._tls_toggled(swap_port=False)
        (self.entries["nickname"] if not self.nick.get() else self.entries["password"]).focus_set()

    def _tls_toggled(self, swap_port: bool = True) -> None:
        state = ["!disabled"] if self.tls.get() else ["disabled"]
        self.cafile_entry.state(state)
        self.browse_button.state(state)
        if swap_port:
            defaults = {str(client_options.DEFAULT_PORT), str(client_options.DEFAULT_TLS_PORT)}
            if self.port.get().strip() in defaults:
                port = client_options.DEFAULT_TLS_PORT if self.tls.get() else client_options.DEFAULT_PORT
                self.port.set(str(port))

    def _browse(self) -> None:
        path = filedialog.askopenfilename(parent=self.top, title="CA certificate (PEM)",
                                          filetypes=[("PEM certificates", "*.pem *.crt"), ("All files", "*")])
        if path:
            self.cafile.set(path)

    def argv(self) -> list[str]:
        """
        The command line the fields describe, keeping C{--starttls},
        C{--insecure} and C{--downloads} from the original one.
        """
        argv = ["--host", self.host.get().strip(), "--port", self.port.get().strip() or "0"]
        tls = self.tls.get()
        if tls:
            argv.append("--tls")
        elif self.options["starttls"]:
            argv.append("--starttls")
        if (tls or self.options["starttls"]) and self.cafile.get().strip():
            argv += ["--cafile", self.cafile.get().strip()]
        elif (tls or self.options["starttls"]) and self.options["insecure"]:
            argv.append("--insecure")
        argv += ["--downloads", str(self.options["downloads"]), "--", self.nick.get().strip()]
        return argv

    def submit(self) -> None:
        """
        Check the fields; close the dialog with L{result} set if they are good.
        """
        if not self.nick.get().strip():
            self.error.configure(text="Choose a nickname.")
            return
        options = TkOptions()
        try:
            options.parseOptions(self.argv())
            if options["cafile"]:
                client_options.read_cafile(options["cafile"])
        except (usage.UsageError, ValueError) as e:
            self.error.configure(text=str(e).replace("--", "") if isinstance(e, usage.UsageError) else str(e))
            return
        self.result = options, Account(options["nick"], self.password.get() or None)
        self.top.destroy()

    def cancel(self) -> None:
        """
        Close the dialog without connecting.
        """
        self.result = None
        self.top.destroy()

    def run(self) -> tuple[client_options.ClientOptions, Account] | None:
        """
        Wait (in Tk's own loop, before the reactor runs) until the dialog closes.
        """
        self.top.wait_window()
        return self.result


class ModerationDialog:
    """
    Asks an operator why (and for a ban, for how long) before a kick or a
    ban of someone (PROTOCOL.md section 10): a reason to type, maybe empty,
    and the durations of L{chat.client.status.BAN_DURATIONS} to choose from.

    @ivar result: C{(duration, reason)} once confirmed (C{duration} is
        C{""} without durations, or for Forever), or C{None} if cancelled.
    """

    def __init__(self, root: tk.Misc, title: str, prompt: str,
                 durations: tuple[tuple[str, str], ...] = ()) -> None:
        """
        @param title: the window's title, e.g. C{Kick bob}.
        @param prompt: the sentence above the reason.
        @param durations: (what the user reads, the command's DURATION),
            the first chosen at first; none for a kick.
        """
        self.result: tuple[str, str] | None = None
        top = self.top = tk.Toplevel(root)
        top.title(title)
        top.resizable(False, False)
        top.transient(root.winfo_toplevel())
        top.protocol("WM_DELETE_WINDOW", self.cancel)
        frame = ttk.Frame(top, padding=(22, 18, 22, 16))
        frame.grid(row=0, column=0, sticky="nsew")
        frame.columnconfigure(0, weight=1)
        ttk.Label(frame, text=prompt).grid(row=0, column=0, sticky="w", pady=(0, 6))
        self.reason = tk.StringVar(top, value="")
        self.entry = ttk.Entry(frame, textvariable=self.reason, width=36)
        self.entry.grid(row=1, column=0, sticky="ew")
        self.duration = tk.StringVar(top, value=durations[0][1] if durations else "")
        self.choices: dict[str, ttk.Radiobutton] = {}
        if durations:
            ttk.Label(frame, text="For how long:").grid(row=2, column=0, sticky="w", pady=(12, 4))
            row = ttk.Frame(frame)
            row.grid(row=3, column=0, sticky="w")
            for label, value in durations:
                choice = ttk.Radiobutton(row, text=label, value=value, variable=self.duration)
                choice.pack(side="left", padx=(0, 10))
                self.choices[label] = choice
        buttons = ttk.Frame(frame)
        buttons.grid(row=4, column=0, sticky="e", pady=(14, 0))
        ttk.Button(buttons, text="Cancel", command=self.cancel).pack(side="right")
        self.ok_button = ttk.Button(buttons, text=title.split()[0], style="Accent.TButton", command=self.submit)
        self.ok_button.pack(side="right", padx=6)
        top.bind("<Return>", lambda e: self.submit())
        top.bind("<Escape>", lambda e: self.cancel())
        self.entry.focus_set()

    def submit(self) -> None:
        """
        Close the dialog with L{result} set to the duration and the reason.
        """
        self.result = self.duration.get(), self.reason.get().strip()
        self.top.destroy()

    def cancel(self) -> None:
        """
        Close the dialog; nothing is done.
        """
        self.result = None
        self.top.destroy()

    def run(self) -> tuple[str, str] | None:
        """
        Wait (modal, in Tk's loop) until the dialog closes; return L{result}.
        """
        self.top.grab_set()
        self.top.wait_window()
        return self.result

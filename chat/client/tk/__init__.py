# -*- test-case-name: tests.test_client_tk -*-
"""
C{chat-tk}: the desktop frontend, a ttk window on the client core shared
with C{chat-client}, run by Twisted's reactor through
L{twisted.internet.tksupport}.

What the window shows is computed by L{chat.client.present}; the modules
here only draw it: L{theme} (palettes, fonts, ttk styles), L{window}
(the main window and its wiring), L{conversation} (header, message
pane, input line), L{panels} (rooms, people, status bar), L{files} (the
files panel) and L{dialogs} (the command line and the connection
dialog). This module runs the program.
"""

from __future__ import annotations

import sys
import tkinter as tk
from collections.abc import Sequence
from typing import Any

from twisted.python import usage

from chat.client import options as client_options
from chat.client.service import Account, ChatClient
from chat.client.tk.dialogs import ConnectDialog, TkOptions
from chat.client.tk.theme import DARK, Fonts, style_window
from chat.client.tk.window import ChatWindow


def run(reactor: Any, root: tk.Tk, options: client_options.ClientOptions, account: Account) -> None:
    """
    Connect and show the window, in the theme of the user's settings
    (C{options.settings}, which the client keeps); return once the user exits.
    """
    from twisted.internet import tksupport

    endpoint, starttls = client_options.endpoint(reactor, options)
    client = ChatClient(
        reactor, endpoint, account, where=options.where, secure=bool(options["tls"]),
        starttls=starttls, downloads=options["downloads"], settings=options.settings, e2e=True,
    )

    def stop() -> None:
        tksupport.uninstall()
        root.destroy()
        if reactor.running:
            reactor.stop()

    ChatWindow(root, client, clock=reactor, on_exit=stop, settings=options.settings,
               save_settings=client.save_settings)
    if options["insecure"]:
        client.model.notice(client_options.INSECURE_WARNING, "error")
    root.deiconify()
    tksupport.install(root)
    reactor.callWhenRunning(client.startService)
    reactor.run()


def main(argv: Sequence[str] | None = None) -> None:
    """
    The C{chat-tk} console script (also C{python -m chat.client.tk}): the
    options of C{chat-client}; without a NICK (or with
    C{--password-prompt}) a dialog asks for the connection first.
    """
    options: client_options.ClientOptions = TkOptions()
    try:
        options.parseOptions(list(sys.argv[1:] if argv is None else argv))
        if options["cafile"]:
            client_options.read_cafile(options["cafile"])
    except usage.UsageError as e:
        sys.stderr.write(f"{options}\nchat-tk: {e}\n")
        raise SystemExit(2) from None
    try:
        root = tk.Tk(className="Chat")
    except tk.TclError as e:
        sys.stderr.write(f"chat-tk: cannot open a window: {e}\n")
        raise SystemExit(1) from None
    root.withdraw()
    style_window(root, DARK, Fonts.create(root))
    root.configure(background=DARK.window)
    if not options["nick"] or options["password-prompt"]:
        chosen = ConnectDialog(root, options).run()
        if chosen is None:
            root.destroy()
            return
        options, account = chosen
    else:
        account = Account(options["nick"])
    from twisted.internet import reactor

    run(reactor, root, options, account)

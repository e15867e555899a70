"""
The twistd plugin for the chat daemon: C{twistd chat}.

This file is imported by every C{twistd} run on the machine, so it stays one
lazy L{ServiceMaker}; the real work is in L{chat.tap}.
"""

from twisted.application.service import ServiceMaker

chat = ServiceMaker(
    "chat",
    "chat.tap",
    "A chat daemon reachable from telnet, nc and JSON clients.",
    "chat",
)

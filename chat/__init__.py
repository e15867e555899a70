"""
chat: a chat daemon and its clients, on Twisted.
"""

__version__ = "0.1.0"

# -*- test-case-name: tests.test_domain -*-
"""
Domain errors: the exceptions the chat domain raises for a request it refuses.

The protocol maps each class to a wire error code (PROTOCOL.md section 5) in
one table, L{chat.protocol.ERROR_CODES}; the exception's C{str} is the
human-readable message sent with it.
"""


class ChatError(Exception):
    """
    Base of every refusal the domain reports to the requesting user.
    """


class BadArguments(ChatError):
    """
    A command's arguments are malformed (wire code C{bad-arguments}).
    """


class NickInvalid(ChatError):
    """
    A nick breaks the rules of PROTOCOL.md section 3 (C{nick-invalid}).
    """


class NickTaken(ChatError):
    """
    Another connection already uses the nick, ignoring case (C{nick-taken}).
    """


class NoSuchNick(ChatError):
    """
    No user with that nick is connected (C{no-such-nick}).
    """


class NoSuchRoom(ChatError):
    """
    No room with that name exists (C{no-such-room}).
    """


class NotInRoom(ChatError):
    """
    The user is not a member of the room the request needs (C{not-in-room}).
    """

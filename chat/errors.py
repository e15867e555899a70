# -*- test-case-name: tests.test_commands -*-
"""
Every wire error code (PROTOCOL.md section 5), each defined once, next to
the exception that carries it: what the domain, the server and the front
ends raise for a request they refuse or input they cannot take.

Each class carries its wire error code as C{code}; the exception's C{str}
is the human-readable message sent with it (L{chat.events.Error.of}).
"""


class ChatError(Exception):
    """
    Base of every refusal the domain reports to the requesting user.
    """

    code = "internal"
    """The wire error code (PROTOCOL.md section 5) sent with the message."""


class BadArguments(ChatError):
    """
    A command's arguments are malformed (wire code C{bad-arguments}).
    """

    code = "bad-arguments"


class NickInvalid(ChatError):
    """
    A nick breaks the rules of PROTOCOL.md section 3 (C{nick-invalid}).
    """

    code = "nick-invalid"


class NickTaken(ChatError):
    """
    Another connection already uses the nick, ignoring case (C{nick-taken}).
    """

    code = "nick-taken"


class NoSuchNick(ChatError):
    """
    No user with that nick is connected (C{no-such-nick}).
    """

    code = "no-such-nick"


class NoSuchRoom(ChatError):
    """
    No room with that name exists (C{no-such-room}).
    """

    code = "no-such-room"


class NotInRoom(ChatError):
    """
    The user is not a member of the room the request needs (C{not-in-room}).
    """

    code = "not-in-room"


class NickRegistered(ChatError):
    """
    The nick belongs to an account and the user is not logged in to it
    (C{nick-registered}).
    """

    code = "nick-registered"


class AuthFailed(ChatError):
    """
    A login or password change was refused: wrong nick or password, too many
    failures, or not logged in (C{auth-failed}).
    """

    code = "auth-failed"


class AuthNeedsTLS(ChatError):
    """
    A password would cross the network in clear text (C{auth-needs-tls},
    PROTOCOL.md section 7).
    """

    code = "auth-needs-tls"


class Busy(ChatError):
    """
    The server cannot do it now: storage failed or too much work is queued
    (C{busy}). Trying again later may work.
    """

    code = "busy"


class FileTooLarge(ChatError):
    """
    An upload is larger than C{--max-file-size} (C{file-too-large}).
    """

    code = "file-too-large"


class Quota(ChatError):
    """
    An upload would take the spool past C{--spool-quota} (C{quota}).
    """

    code = "quota"


class NoSuchFile(ChatError):
    """
    No offer with that id is open to the requester: unknown, expired, or
    offered to someone else (C{no-such-file}).
    """

    code = "no-such-file"


class ChecksumMismatch(ChatError):
    """
    The uploaded bytes do not have the SHA-256 announced (C{checksum-mismatch}).
    """

    code = "checksum-mismatch"


class TLSUnavailable(ChatError):
    """
    C{/starttls} on a server without a certificate (C{tls-unavailable}).
    """

    code = "tls-unavailable"


class UnknownCommand(ChatError):
    """
    No command has that name (C{unknown-command}).
    """

    code = "unknown-command"


class NotRegistered(ChatError):
    """
    The command needs a nick and the connection has none yet (C{not-registered}).
    """

    code = "not-registered"


class LineTooLong(ChatError):
    """
    An input line is longer than C{--max-line} bytes (C{line-too-long}).
    """

    code = "line-too-long"


class BadEncoding(ChatError):
    """
    An input line is not UTF-8 (C{bad-encoding}).
    """

    code = "bad-encoding"


class Flood(ChatError):
    """
    Lines arrive faster than the flood limit: they are delayed (C{flood}).
    """

    code = "flood"


class NotOperator(ChatError):
    """
    The command needs a room operator, or a server administrator, and the
    user is neither (C{not-operator}, PROTOCOL.md section 10).
    """

    code = "not-operator"


class Banned(ChatError):
    """
    The user is banned from the room (C{banned}, PROTOCOL.md section 10).
    """

    code = "banned"


class Muted(ChatError):
    """
    The user may not speak in the room: muted, or the room is moderated
    (C{muted}, PROTOCOL.md section 10).
    """

    code = "muted"


class InviteOnly(ChatError):
    """
    The room is invite-only and the user was not invited (C{invite-only},
    PROTOCOL.md section 10).
    """

    code = "invite-only"

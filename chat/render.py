# -*- test-case-name: tests.test_render -*-
"""
The two output formats of PROTOCOL.md section 2: each renderer turns one
L{chat.events} value into the complete bytes to send, CR LF line ends
included. Pure: called once per event and format, however many recipients.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chat import events
from chat.codec import encode

Renderer = Callable[[events.Event], bytes]
"""Turns an event into UTF-8 bytes ending in CR LF (possibly several lines, or none)."""

CRLF = "\r\n"


# JSON


def render_json(event: events.Event) -> bytes:
    """
    Render an event as one JSON object with a C{type} member (L{chat.codec.encode}),
    then CR LF.
    """
    return (encode(event) + CRLF).encode("utf-8")


# Text


def _clock(ts: datetime) -> str:
    return f"[{ts.hour:02d}:{ts.minute:02d}]"


def _message_text(m: events.Message, stamp: str) -> str:
    if m.action:
        return f"{stamp} {m.room} * {m.sender} {m.text}"
    return f"{stamp} {m.room} <{m.sender}> {m.text}"


def _private_text(m: events.Private, stamp: str) -> str:
    head = f"{stamp} [private {m.sender} -> {m.to}]"
    if m.e2e:
        return f"{head} (end-to-end encrypted: only a chat client with a key of the recipient can read it)"
    if m.action:
        return f"{head} * {m.sender} {m.text}"
    return f"{head} {m.text}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _idle(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _size(count: int) -> str:
    """
    A byte count for people: C{512 bytes}, C{1.5 KiB}, C{12.0 MiB}.
    """
    if count < 1024:
        return _plural(count, "byte")
    value = count / 1024
    unit = "KiB"
    for larger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value /= 1024
        unit = larger
    return f"{value:.1f} {unit}"


def _to_text(event: events.Event) -> list[str]:
    match event:
        case events.Message():
            return [_message_text(event, _clock(event.ts))]
        case events.Private():
            note = " (offline message)" if event.offline else ""
            when = event.ts.strftime("[%Y-%m-%d %H:%M]") if event.offline else _clock(event.ts)
            return [_private_text(event, when) + note]
        case events.Joined():
            return [f"{_clock(event.ts)} * {event.nick} joined {event.room}"]
        case events.Parted():
            reason = f" ({event.reason})" if event.reason else ""
            return [f"{_clock(event.ts)} * {event.nick} left {event.room}{reason}"]
        case events.Quit():
            reason = f" ({event.reason})" if event.reason else ""
            return [f"{_clock(event.ts)} * {event.nick} quit{reason}"]
        case events.NickChanged():
            return [f"{_clock(event.ts)} * {event.old} is now known as {event.new}"]
        case events.StatusChanged():
            if event.text:
                return [f"* {event.nick} set status: {event.text}"]
            return [f"* {event.nick} cleared their status"]
        case events.Topic():
            if event.text:
                return [f"* Topic of {event.room}: {event.text} (set by {event.by})"]
            return [f"* {event.room} has no topic"]
        case events.Users():
            lines = [f"* {_plural(len(event.users), 'user')} in {event.room}:"]
            for u in event.users:
                status = f" - {u.status}" if u.status else ""
                at = "@" if u.role == events.OPERATOR else ""
                lines.append(f"*   {at}{u.nick} (idle {_idle(u.idle)}){status}")
            return lines
        case events.Rooms():
            lines = [f"* {_plural(len(event.rooms), 'room')}:"]
            for r in event.rooms:
                topic = f" - {r.topic}" if r.topic else ""
                lines.append(f"*   {r.room} ({r.count}){topic}")
            return lines
        case events.Whois():
            return [
                f"* {event.nick}" + (f" - {event.status}" if event.status else ""),
                f"*   rooms: {' '.join(event.rooms) or '(none)'}",
                f"*   connected since {event.since.strftime('%Y-%m-%d %H:%M')} UTC, idle {_idle(event.idle)}",
                f"*   {'logged in' if event.account else 'guest'}, {'TLS' if event.secure else 'not encrypted'}"
                + (f", on node {event.node}" if event.node else ""),
            ]
        case events.History():
            if not event.messages:
                return []
            return (
                [f"--- last {_plural(len(event.messages), 'message')} in {event.room} ---"]
                + [_message_text(m, m.ts.strftime("[%Y-%m-%d %H:%M]")) for m in event.messages]
                + ["--- end of history ---"]
            )
        case events.PrivateHistory():
            if not event.messages:
                return [f"--- no private messages with {event.with_} ---"]
            return (
                [f"--- last {_plural(len(event.messages), 'private message')} with {event.with_} ---"]
                + [_private_text(m, m.ts.strftime("[%Y-%m-%d %H:%M]")) for m in event.messages]
                + ["--- end of history ---"]
            )
        case events.FileOffer():
            return [
                f"*** {event.sender} offers a file to {event.to}: {event.name} ({_size(event.size)}), "
                f"id {event.id}, until {event.expires.strftime('%Y-%m-%d %H:%M')} UTC",
                f"***   fetch it with a chat client (chat-client or chat-tk: /get {event.id}); "
                f"/download {event.id} sends raw bytes, so only after /format json",
            ]
        case events.UploadReady():
            return [f"*** Upload {event.id}: send the {_plural(event.size, 'byte')} of {event.name} now"]
        case events.UploadDone():
            return [f"*** Upload {event.id} is stored and offered (sha256 {event.sha256})"]
        case events.FileHeader():
            return [
                f"*** File {event.id}: {event.name}, bytes {event.offset} to {event.size} "
                f"(sha256 {event.sha256}) follow"
            ]
        case events.Welcome():
            lines = [f"*** Welcome to {event.server} (chat {event.version}). Times are UTC."]
            lines += [f"*** {line}" for line in event.motd.splitlines()]
            if not event.registered:
                lines.append("*** Choose a nickname (letters, digits, _ or -), or /help:")
            return lines
        case events.Registered():
            if event.account:
                return [f"*** You are {event.nick}, logged in to your account. Type to talk, /help for commands."]
            return [f"*** You are {event.nick}. Type to talk, /help for commands."]
        case events.Info():
            return [f"*** {line}" for line in event.text.splitlines()]
        case events.Error():
            return [f"*** Error: {event.message} ({event.code})"]
        case events.Pong():
            return [f"*** pong {event.token}".rstrip()]
        case events.Bye():
            return [f"*** Bye: {event.reason}"]
        case events.Kicked():
            reason = f" ({event.reason})" if event.reason else ""
            return [f"{_clock(event.ts)} * {event.nick} was kicked from {event.room} by {event.by}{reason}"]
        case events.RoleChanged():
            what = "an operator" if event.role == events.OPERATOR else "no longer an operator"
            by = f" (by {event.by})" if event.by else ""
            return [f"* {event.nick} is {what} of {event.room}{by}"]
        case events.RoomSettings():
            settings = ", ".join(
                f"{name} {'on' if on else 'off'}"
                for name, on in (
                    ("invite-only", event.invite_only), ("topic-lock", event.topic_lock),
                    ("moderated", event.moderated),
                )
            )
            return [f"* Settings of {event.room}: {settings}"]
        case events.Keys():
            whose = "account" if event.account else "guest"
            if not event.keys:
                return [f"* {event.nick} ({whose}) has published no encryption keys"]
            lines = [f"* Encryption keys of {event.nick} ({whose}): {_plural(len(event.keys), 'device')}"]
            lines += [
                f"*   device {k.device}, fingerprint {k.fingerprint}, added {k.added.strftime('%Y-%m-%d %H:%M')} UTC"
                for k in event.keys
            ]
            return lines
    raise TypeError(f"not an event: {event!r}")


def render_text(event: events.Event) -> bytes:
    """
    Render an event for people: zero or more readable lines, each ending in
    CR LF, times in UTC.
    """
    lines = _to_text(event)
    if not lines:
        return b""
    return (CRLF.join(lines) + CRLF).encode("utf-8")


RENDERERS: dict[str, Renderer] = {"text": render_text, "json": render_json}
"""The output formats by the name C{/format} takes."""

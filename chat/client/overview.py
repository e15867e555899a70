# -*- test-case-name: tests.test_client_present -*-
"""
What the front ends show beside the transcript, computed from the
L{ChatModel}: how many people are here and online, the rows of the private
conversations, and whether a line should alert the user. Pure, like
L{chat.client.present}.
"""

from __future__ import annotations

from chat.client.model import ChatModel
from chat.client.present import Line, names
from chat.client.status import RoomRow


def online_at_least(model: ChatModel) -> int:
    """
    How many people are on the server at least: the protocol has no count
    of the whole server, so this is the larger of the distinct people in
    the rooms joined (kept live) and the largest room of the last C{/rooms}
    (L{ChatModel.listed}, a snapshot; everyone is in C{#lobby} unless they
    left it).
    """
    everyone = {nick.lower() for room in model.rooms.values() for nick in room.members}
    largest = max((info.count for info in model.listed.rooms), default=0) if model.listed is not None else 0
    return max(len(everyone), largest)


def people_count(model: ChatModel) -> str:
    """
    The people of the current room beside the server's: C{3 here · 12+
    online} (C{+}: a lower bound, see L{online_at_least}), C{3 here} when
    the room holds everyone known, C{12+ online} outside any room.
    """
    total = online_at_least(model)
    current = model.current
    if current is None:
        return f"{total}+ online"
    here = len(current.members)
    return f"{here} here" if total <= here else f"{here} here · {total}+ online"


def notifies(line: Line, model: ChatModel) -> bool:
    """
    Whether C{line} should alert the user (a bell, a highlight, a desktop
    notification, as the front end can): a message or action naming the
    user's nick as a word (L{names}) in a room that is not muted
    (L{ChatModel.muted}), or a private message, in either case from
    someone else. Lines of history never alert.
    """
    sender = line.sender
    if sender is None or sender.lower() == model.nick.lower():
        return False
    if line.kind == "private":
        return True
    if line.room is not None and line.room.lower() in model.muted:
        return False
    if line.kind == "mention":
        return True
    return line.kind == "action" and names(line.text, model.nick)


def conversation_rows(model: ChatModel) -> list[RoomRow]:
    """
    The private conversations of this session, to list beside the rooms,
    by nick ignoring case: each a L{RoomRow} whose C{key} is the
    lower-case nick (as in L{ChatModel.conversations}; never starting
    with C{#}, so it cannot collide with a room's), C{name} the nick as
    last spelled, C{unread} the count of L{ChatModel.conversation_unread}
    (C{""} for none), C{marked} whether it has unread messages or is
    looked at (L{ChatModel.looking}).
    """
    rows = []
    for key, nick in sorted(model.conversations.items()):
        unread = model.conversation_unread.get(key, 0)
        rows.append(RoomRow(key, nick, str(unread) if unread else "", bool(unread) or model.looking == key))
    return rows

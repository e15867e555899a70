"""
Tests for C{/history} over the line protocol (PROTOCOL.md sections 4 and 5):
a room's history scrolled back with C{before ID}, and a logged-in user's
private conversation with a nick, over L{StringTransport} with time from a
L{Clock}.
"""

from __future__ import annotations

from tests.support import error_text
from tests.test_protocol_accounts import AccountsTestCase


class HistoryProtocolTests(AccountsTestCase):
    """
    C{/history [N] [#ROOM|NICK] [before ID]} as a client sees it.
    """

    def test_private_conversation(self) -> None:
        """
        A logged-in user's C{/history NICK} answers a json C{history} with C{with} and C{private}
        objects, both directions, oldest first; C{before ID} scrolls back.
        """
        self.create_account("alice")
        self.create_account("bob")
        alice = self.login_user("alice", json=True)
        bob = self.login_user("bob", json=True)
        alice.line("/msg bob one")
        bob.line("/msg alice two")
        alice.line("/msg bob three")
        alice.take()
        bob.take()
        alice.line("/history BOB")
        [history] = alice.take_json()
        self.assertEqual((history["type"], history["with"]), ("history", "bob"))
        self.assertNotIn("room", history)
        self.assertEqual(
            [(m["type"], m["from"], m["to"], m["text"], m["offline"]) for m in history["messages"]],
            [("private", "alice", "bob", "one", False), ("private", "bob", "alice", "two", False),
             ("private", "alice", "bob", "three", False)],
        )
        last = history["messages"][-1]["id"]
        alice.line(f"/history 1 before {last} bob")
        [older] = alice.take_json()
        self.assertEqual([m["text"] for m in older["messages"]], ["two"])
        self.assertEqual(bob.take(), b"")

    def test_guest_refused(self) -> None:
        """
        A guest's C{/history NICK} is C{bad-arguments} telling them to log in.
        """
        guest = self.text_user("visitor")
        guest.line("/history bob")
        self.assertEqual(
            guest.take(),
            error_text("bad-arguments", "private history is kept for logged-in users only: /register or /login first"),
        )

    def test_room_before(self) -> None:
        """
        C{/history N before ID} shows the N messages of the current room older than ID; a bare before is refused.
        """
        alice = self.json_user("alice")
        for text in ("a", "b", "c", "d"):
            alice.line(text)
        ids = [event["id"] for event in alice.take_json() if event["type"] == "message"]
        alice.line(f"/history 2 before {ids[3]}")
        [history] = alice.take_json()
        self.assertEqual((history["room"], [m["text"] for m in history["messages"]]), ("#lobby", ["b", "c"]))
        alice.line("/history before x")
        self.assertEqual(
            alice.take_json(),
            [{"type": "error", "code": "bad-arguments", "message": "usage: /history [N] [#ROOM|NICK] [before ID]"}],
        )

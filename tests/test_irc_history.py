"""
Tests of IRCv3 draft/chathistory and batch on the IRC front end (PROTOCOL.md
section 14, docs/irc.md): L{chat.irc.history.query} alone, and
C{CHATHISTORY} over L{StringTransport} against history in the store.
"""

from __future__ import annotations

from datetime import UTC, datetime

from twisted.trial.unittest import SynchronousTestCase

from chat import commands, events
from chat.irc.history import QueryError, Reference, query
from tests.test_irc import IRCClient
from tests.test_irc_ircv3 import IRCv3TestCase


class QueryTests(SynchronousTestCase):
    """
    L{query}: CHATHISTORY's parameters to the chat's history request.
    """

    def test_requests(self) -> None:
        """Each subcommand asks the store for the right page: the latest, before, after, since, until."""
        when = datetime(2025, 11, 21, 14, 2, 3, 123000, tzinfo=UTC)
        self.assertEqual(query(["LATEST", "#a", "*", "10"]).request, commands.History(10, "#a"))
        self.assertEqual(query(["BEFORE", "#a", "msgid=7", "10"]).request, commands.History(10, "#a", before=7))
        self.assertEqual(query(["AFTER", "#a", "msgid=7", "10"]).request, commands.History(10, "#a", after=7))
        before = query(["BEFORE", "#a", "timestamp=2025-11-21T14:02:03.123Z", "5"]).request
        self.assertEqual(before, commands.History(5, "#a", until=when))
        after = query(["AFTER", "#a", "timestamp=2025-11-21T14:02:03.123Z", "5"]).request
        self.assertEqual(after.since, datetime(2025, 11, 21, 14, 2, 3, 124000, tzinfo=UTC))
        self.assertEqual(query(["LATEST", "bob", "*", "3"]).request, commands.History(3, None, nick="bob"))
        self.assertEqual(query(["LATEST", "#a", "*", "100000"]).limit, 500)

    def test_refusals(self) -> None:
        """Bad subcommands, targets, references and limits give the FAIL codes of the specification."""
        cases = {
            ("AROUND", "#a", "msgid=1", "5"): "INVALID_PARAMS",
            ("LATEST", "#a", "*"): "INVALID_PARAMS",
            ("LATEST", "#a", "*", "0"): "INVALID_PARAMS",
            ("BEFORE", "#a", "id=4", "5"): "INVALID_MSGREFTYPE",
            ("BEFORE", "#a", "timestamp=yesterday", "5"): "INVALID_PARAMS",
            ("LATEST", "*", "*", "5"): "INVALID_TARGET",
            ("AFTER", "bob", "msgid=1", "5"): "INVALID_PARAMS",
            ("BETWEEN", "#a", "msgid=1", "timestamp=2025-11-21T14:02:03Z", "5"): "INVALID_PARAMS",
        }
        for params, code in cases.items():
            with self.assertRaises(QueryError, msg=params) as caught:
                query(list(params))
            self.assertEqual(caught.exception.code, code, params)

    def test_reference_after_to_the_millisecond(self) -> None:
        """A time reference is not before a message sent within its millisecond (the server-time a client saw)."""
        ref = Reference(time=datetime(2025, 1, 1, 0, 0, 0, 5000, tzinfo=UTC))

        def sent(microsecond: int) -> events.Message:
            return events.Message(1, datetime(2025, 1, 1, 0, 0, 0, microsecond, tzinfo=UTC), "#a", "b", "x")

        self.assertFalse(ref.after(sent(5900)))
        self.assertTrue(ref.after(sent(6000)))
        self.assertTrue(ref.before(sent(4999)))
        self.assertFalse(ref.before(sent(5000)))


class ChatHistoryTests(IRCv3TestCase):
    """
    CHATHISTORY against the history of a room and of a conversation.
    """

    def setUp(self) -> None:
        super().setUp()
        self.bob = self.text_user("bob")
        for number in range(1, 11):
            self.bob.line(f"message {number}")
            self.clock.advance(1)
        self.ids = [m.id for m in self.server.domain.rooms["#lobby"].history if m.text.startswith("message")]

    def history(self, client: IRCClient, command: str) -> list[str]:
        client.send(command)
        return client.lines()

    def texts(self, lines: list[str]) -> list[str]:
        return [text.rsplit(":", 1)[1] for text in lines if " PRIVMSG " in text]

    def test_latest_in_a_batch(self) -> None:
        """LATEST * 3 gives the last 3 messages, oldest first, in a chathistory batch with msgid and time tags."""
        alice = self.cap_user("alice", "batch draft/chathistory message-tags server-time")
        lines = self.history(alice, "CHATHISTORY LATEST #lobby * 3")
        self.assertEqual(lines[0], ":chat BATCH +history1 chathistory #lobby")
        self.assertEqual(lines[-1], ":chat BATCH -history1")
        self.assertEqual(self.texts(lines), ["message 8", "message 9", "message 10"])
        self.assertTrue(lines[1].startswith(f"@batch=history1;msgid={self.ids[7]};time=2025-11-21T14:02:10.500Z "))
        self.assertTrue(lines[1].endswith(" :bob!bob@chat PRIVMSG #lobby :message 8"), lines[1])

    def test_before_after_between_by_id(self) -> None:
        """BEFORE, AFTER and BETWEEN by msgid give the pages around the ids, each message once."""
        alice = self.cap_user("alice", "batch draft/chathistory")
        ids = self.ids
        self.assertEqual(
            self.texts(self.history(alice, f"CHATHISTORY BEFORE #lobby msgid={ids[5]} 2")), ["message 4", "message 5"]
        )
        self.assertEqual(
            self.texts(self.history(alice, f"CHATHISTORY AFTER #lobby msgid={ids[5]} 2")), ["message 7", "message 8"]
        )
        self.assertEqual(
            self.texts(self.history(alice, f"CHATHISTORY BETWEEN #lobby msgid={ids[1]} msgid={ids[5]} 10")),
            ["message 3", "message 4", "message 5"],
        )
        self.assertEqual(
            self.texts(self.history(alice, f"CHATHISTORY BETWEEN #lobby msgid={ids[5]} msgid={ids[1]} 2")),
            ["message 4", "message 5"],
        )
        self.assertEqual(
            self.texts(self.history(alice, f"CHATHISTORY LATEST #lobby msgid={ids[7]} 10")), ["message 9", "message 10"]
        )

    def test_by_time(self) -> None:
        """BEFORE and AFTER by timestamp give the messages strictly before and after the time seen."""
        alice = self.cap_user("alice", "batch draft/chathistory")
        # message 5 was sent at 14:02:07.500 (one per second from 14:02:03.500).
        self.assertEqual(
            self.texts(self.history(alice, "CHATHISTORY BEFORE #lobby timestamp=2025-11-21T14:02:07.500Z 2")),
            ["message 3", "message 4"],
        )
        self.assertEqual(
            self.texts(self.history(alice, "CHATHISTORY AFTER #lobby timestamp=2025-11-21T14:02:07.500Z 2")),
            ["message 6", "message 7"],
        )

    def test_without_batch_and_unknown_room(self) -> None:
        """Without batch the messages come bare; a room that never existed gets FAIL INVALID_TARGET."""
        alice = self.cap_user("alice", "draft/chathistory")
        lines = self.history(alice, "CHATHISTORY LATEST #lobby * 1")
        self.assertEqual(lines, [":bob!bob@chat PRIVMSG #lobby :message 10"])
        [fail] = self.history(alice, "CHATHISTORY LATEST #nowhere * 1")
        self.assertTrue(fail.startswith(":chat FAIL CHATHISTORY INVALID_TARGET #nowhere :"), fail)
        [fail] = self.history(alice, "CHATHISTORY AROUND #lobby msgid=1 1")
        self.assertTrue(fail.startswith(":chat FAIL CHATHISTORY INVALID_PARAMS AROUND :"), fail)

    def test_private_conversation(self) -> None:
        """A logged-in user's conversation with a nick comes back as PRIVMSGs both ways; a guest's is refused."""
        self.account("carol")
        carol = self.irc_client()
        carol.send("CAP REQ :batch draft/chathistory", "PASS carol:password1", "NICK carol", "USER c 0 * :C", "CAP END")
        carol.take()
        carol.send("PRIVMSG bob :hi bob")
        self.bob.line("/msg carol hi carol")
        carol.take()
        lines = self.history(carol, "CHATHISTORY LATEST bob * 10")
        self.assertEqual(lines[1:-1], [
            "@batch=history1 :carol!carol@chat PRIVMSG bob :hi bob",
            "@batch=history1 :bob!bob@chat PRIVMSG carol :hi carol",
        ])
        guest = self.cap_user("dave", "draft/chathistory", join=False)
        [fail] = self.history(guest, "CHATHISTORY LATEST bob * 10")
        self.assertTrue(fail.startswith(":chat FAIL CHATHISTORY INVALID_TARGET bob :private history"), fail)

"""
Tests for the client's model (L{chat.client.model}), its session
(L{chat.client.service.ChatClient}: registration, reconnection with
backoff and re-joining, C{/starttls}, client commands, round-trip time),
its command line (L{chat.client.options}) and the terminal's rendering
(L{chat.client.stdio.Screen}), without a network: the daemon's side is
played by writing its json lines into the client's protocol.
"""

from __future__ import annotations

import tempfile
from copy import copy
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from OpenSSL import SSL
from twisted.internet import error
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from chat import events
from chat.client import options as client_options
from chat.client.failures import describe_failure
from chat.client.model import (
    Change,
    ChatModel,
    ConnectionChanged,
    Departed,
    Notice,
    RoomsChanged,
    SettingsChanged,
    State,
    TransferChanged,
    UnreadMark,
    UsersChanged,
)
from chat.client.protocol import ChatClientProtocol
from chat.client.service import Account, ChatClient
from chat.client.settings import ClientSettings
from chat.client.status import nick_colour
from chat.client.stdio import NICK_ANSI, Screen, use_colour
from chat.client.typed import FORMATTING_HELP, HABITS_HELP, with_emoji
from chat.render import render_json
from tests.test_client_protocol import TLSTransport

TS = datetime(2026, 11, 21, 14, 2, 3, tzinfo=timezone.utc)
LIMITS = events.Limits(4096, 24, 100 * 1024 * 1024)
ALICE = Account("alice")


def inline(f: Any, *args: Any) -> Deferred[Any]:
    try:
        return succeed(f(*args))
    except Exception:
        return fail()


def message(id: int, sender: str, text: str, room: str = "#lobby", action: bool = False) -> events.Message:
    return events.Message(id, TS, room, sender, text, action)


class Recorder:
    def __init__(self, model: ChatModel) -> None:
        self.changes: list[Change] = []
        model.observe(self.record)

    def record(self, change: Change) -> None:
        # A transfer is one mutable object: keep what it was when told.
        self.changes.append(TransferChanged(copy(change.transfer)) if isinstance(change, TransferChanged) else change)

    def notices(self) -> list[str]:
        return [c.text for c in self.changes if isinstance(c, Notice)]

    def take(self) -> list[Change]:
        changes, self.changes = self.changes, []
        return changes


class ModelTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.model = ChatModel("alice")
        self.recorder = Recorder(self.model)
        self.model.apply(events.Registered("alice"))

    def join(self, room: str, nick: str = "alice") -> None:
        self.model.apply(events.Joined(TS, room, nick))

    def test_current_room_is_last_joined(self) -> None:
        """
        The current room is the one joined last; joining a room again, or
        make_current, moves it last; parting it makes the previous current.
        """
        self.join("#lobby")
        self.join("#dev")
        self.assertEqual(self.model.current.name, "#dev")  # type: ignore[union-attr]
        self.assertTrue(self.model.make_current("#LOBBY"))
        self.assertEqual(self.model.current.name, "#lobby")  # type: ignore[union-attr]
        self.assertFalse(self.model.make_current("#nowhere"))
        self.model.apply(events.Parted(TS, "#lobby", "alice"))
        self.assertEqual(list(self.model.rooms), ["#dev"])

    def test_roles_follow_users_and_role_events(self) -> None:
        """
        Members keep their role from users and role events, through status and nick changes (operator_of: the user's).
        """
        self.join("#dev")
        self.model.apply(events.Users("#dev", (events.UserInfo("alice", "", 0, events.OPERATOR),
                                               events.UserInfo("bob", "", 0))))
        self.assertTrue(self.model.operator_of())
        self.assertTrue(self.model.operator_of("#DEV"))
        self.assertFalse(self.model.operator_of("#nowhere"))
        room = self.model.rooms["#dev"]
        self.assertFalse(room.is_operator("bob"))
        self.recorder.take()
        self.model.apply(events.RoleChanged("#dev", "BOB", events.OPERATOR, "alice"))
        self.assertTrue(room.is_operator("bob"))
        self.assertEqual(self.recorder.take(), [events.RoleChanged("#dev", "BOB", events.OPERATOR, "alice"),
                                                UsersChanged("#dev")])
        self.model.apply(events.StatusChanged("bob", "away"))
        self.model.apply(events.NickChanged(TS, "bob", "robert"))
        self.assertEqual(room.members["robert"], events.UserInfo("robert", "away", 0, events.OPERATOR))
        self.model.apply(events.RoleChanged("#dev", "alice", events.MEMBER, "robert"))
        self.assertFalse(self.model.operator_of("#dev"))

    def test_kick_removes_the_member_or_the_room(self) -> None:
        """
        A kick removes the user kicked from the room; when it is the user, the room is no longer joined.
        """
        self.join("#lobby")
        self.join("#dev")
        self.join("#dev", "bob")
        self.recorder.take()
        bob = events.Kicked(TS, "#dev", "bob", "alice", "spam")
        self.model.apply(bob)
        self.assertNotIn("bob", self.model.rooms["#dev"].members)
        self.assertEqual(self.recorder.take(), [bob, UsersChanged("#dev")])
        me = events.Kicked(TS, "#dev", "Alice", "carol", "")
        self.model.apply(me)
        self.assertEqual(list(self.model.rooms), ["#lobby"])
        self.assertEqual(self.model.current.name, "#lobby")  # type: ignore[union-attr]
        self.assertEqual(self.recorder.take(), [me, RoomsChanged()])

    def test_room_settings_are_kept(self) -> None:
        """
        A room-settings event is kept on its room and told with the settings known before.
        """
        self.join("#dev")
        self.assertFalse(self.model.rooms["#dev"].invite_only)
        self.recorder.take()
        first = events.RoomSettings("#dev", invite_only=True)
        self.model.apply(first)
        second = events.RoomSettings("#dev", invite_only=False, moderated=True)
        self.model.apply(second)
        self.assertEqual(self.recorder.take(), [SettingsChanged(first, None), RoomsChanged(),
                                                SettingsChanged(second, first), RoomsChanged()])
        self.assertEqual(self.model.rooms["#dev"].settings, second)
        self.assertFalse(self.model.rooms["#dev"].invite_only)

    def test_members_follow_events(self) -> None:
        """
        users, join, part, quit, nick and status events keep each room's members.
        """
        self.join("#lobby")
        self.model.apply(events.Users("#lobby", (events.UserInfo("alice", "", 0), events.UserInfo("bob", "", 5))))
        self.join("#lobby", "carol")
        self.model.apply(events.StatusChanged("bob", "lunch"))
        self.model.apply(events.NickChanged(TS, "carol", "caro"))
        members = self.model.rooms["#lobby"].members
        self.assertEqual(sorted(members), ["alice", "bob", "caro"])
        self.assertEqual(members["bob"].status, "lunch")
        self.model.apply(events.Quit(TS, "bob", "bye"))
        self.model.apply(events.Parted(TS, "#lobby", "caro"))
        self.assertEqual(list(self.model.rooms["#lobby"].members), ["alice"])

    def test_own_nick_change(self) -> None:
        """
        A nick event for the user's own nick changes the model's nick.
        """
        self.model.apply(events.NickChanged(TS, "alice", "alicia"))
        self.assertEqual(self.model.nick, "alicia")

    def test_unread_counts(self) -> None:
        """
        Messages to a room that is not current count as unread until it becomes current.
        """
        self.join("#lobby")
        self.join("#dev")
        self.model.apply(message(1, "bob", "in lobby"))
        self.model.apply(message(2, "bob", "in dev", "#dev"))
        self.assertEqual((self.model.rooms["#lobby"].unread, self.model.rooms["#dev"].unread), (1, 0))
        self.model.make_current("#lobby")
        self.assertEqual(self.model.rooms["#lobby"].unread, 0)

    def test_history_without_seen_messages(self) -> None:
        """
        A history replayed after a reconnection reaches observers without
        the messages seen already.
        """
        self.join("#lobby")
        self.model.apply(message(1, "bob", "one"))
        self.model.apply(message(2, "bob", "two"))
        self.model.set_state(State.CONNECTING)
        self.model.apply(events.Registered("alice"))
        self.join("#lobby")  # joined again after the reconnection: its history follows
        self.recorder.take()
        self.model.apply(events.History("#lobby", (message(1, "bob", "one"), message(2, "bob", "two"),
                                                   message(3, "bob", "three"))))
        [history] = [c for c in self.recorder.take() if isinstance(c, events.History)]
        self.assertEqual([m.text for m in history.messages], ["three"])
        self.assertEqual(self.model.last_id, 3)

    def test_history_of_a_second_room_is_whole(self) -> None:
        """
        Joining a room whose messages are older than those seen in another
        room shows its whole history: what was seen is kept per room.
        """
        self.join("#lobby")
        for id in (10, 11, 12):
            self.model.apply(message(id, "bob", f"lobby {id}"))
        self.join("#dev")
        self.recorder.take()
        self.model.apply(events.History("#dev", tuple(message(id, "carol", f"dev {id}", "#dev") for id in (3, 5, 9))))
        [history] = [c for c in self.recorder.take() if isinstance(c, events.History)]
        self.assertEqual([m.text for m in history.messages], ["dev 3", "dev 5", "dev 9"])
        self.assertEqual((self.model.rooms["#dev"].last_id, self.model.rooms["#lobby"].last_id), (9, 12))

    def test_asked_history_is_whole(self) -> None:
        """
        The answer to /history (a history that does not follow a join) is
        passed on whole, messages seen included; only the join's replay is
        filtered.
        """
        self.join("#lobby")
        self.model.apply(message(1, "bob", "one"))
        self.model.apply(events.History("#lobby", (message(1, "bob", "one"),)))
        self.recorder.take()
        self.model.apply(events.History("#lobby", (message(1, "bob", "one"),)))
        [history] = [c for c in self.recorder.take() if isinstance(c, events.History)]
        self.assertEqual([m.text for m in history.messages], ["one"])

    def test_history_after_live_message(self) -> None:
        """
        A message arriving between the join and its history does not hide
        the history's older messages.
        """
        self.join("#dev")
        self.model.apply(message(7, "bob", "live", "#dev"))
        self.recorder.take()
        self.model.apply(events.History("#dev", (message(4, "bob", "old", "#dev"),)))
        [history] = [c for c in self.recorder.take() if isinstance(c, events.History)]
        self.assertEqual([m.text for m in history.messages], ["old"])

    def test_quit_says_where_it_was_shared(self) -> None:
        """
        A quit reaches observers as Departed, with the rooms the person
        shared with the user and whether they talked privately.
        """
        self.join("#lobby")
        self.model.apply(events.Users("#lobby", (events.UserInfo("alice", "", 0), events.UserInfo("bob", "", 0))))
        self.model.apply(events.Private(1, TS, "Carol", "alice", "psst"))
        self.recorder.take()
        for nick in ("bob", "carol", "zed"):
            self.model.apply(events.Quit(TS, nick, "bye"))
        departed = [c for c in self.recorder.take() if isinstance(c, Departed)]
        self.assertEqual([(d.quit.nick, d.rooms, d.private) for d in departed],
                         [("bob", ("#lobby",), False), ("carol", (), True), ("zed", (), False)])
        self.assertEqual(self.model.conversations, {"carol": "Carol"})

    def test_private_message_opens_conversation_with_unread_count(self) -> None:
        """
        A private message from someone opens a conversation with them, counted unread while the user looks elsewhere.
        """
        self.join("#lobby")
        self.model.look("#lobby")
        self.recorder.take()
        self.model.apply(events.Private(1, TS, "Bob", "alice", "psst"))
        self.model.apply(events.Private(2, TS, "Bob", "alice", "still there?"))
        self.assertEqual(self.model.conversations, {"bob": "Bob"})
        self.assertEqual(self.model.conversation_unread, {"bob": 2})
        self.assertIn(RoomsChanged(), self.recorder.take())
        self.model.look("bob")
        self.assertEqual(self.model.conversation_unread, {})
        self.model.apply(events.Private(3, TS, "Bob", "alice", "here"))
        self.assertEqual(self.model.conversation_unread, {})

    def test_own_private_message_opens_conversation_read(self) -> None:
        """
        The echo of the user's own private message opens the conversation with no unread count.
        """
        self.model.look("#lobby")
        self.model.apply(events.Private(1, TS, "alice", "Carol", "hi"))
        self.assertEqual((self.model.conversations, self.model.conversation_unread), ({"carol": "Carol"}, {}))

    def test_without_look_rooms_count_when_not_current(self) -> None:
        """
        Until a front end calls look, a room's messages are unread while it is not current; conversations never.
        """
        self.join("#lobby")
        self.join("#dev")
        self.model.apply(message(1, "bob", "hi", "#lobby"))
        self.model.apply(message(2, "bob", "hi", "#dev"))
        self.model.apply(events.Private(3, TS, "bob", "alice", "psst"))
        self.assertEqual((self.model.rooms["#lobby"].unread, self.model.rooms["#dev"].unread), (1, 0))
        self.assertEqual(self.model.conversation_unread, {})

    def test_looking_at_a_conversation_makes_current_room_unread(self) -> None:
        """
        While the user looks at a conversation, messages of the current room count as unread; looking clears them.
        """
        self.join("#lobby")
        self.model.look("bob")
        self.model.apply(message(1, "bob", "hi", "#lobby"))
        self.assertEqual(self.model.rooms["#lobby"].unread, 1)
        self.model.look("#LOBBY")
        self.assertEqual((self.model.looking, self.model.rooms["#lobby"].unread), ("#lobby", 0))

    def test_unread_mark_before_first_unseen_message(self) -> None:
        """
        After the user looks away from a room, the first message from someone else there follows an UnreadMark, once.
        """
        self.join("#lobby")
        self.model.look("#lobby")
        self.model.apply(message(1, "bob", "seen", "#lobby"))
        self.model.look("#dev")
        self.recorder.take()
        self.model.apply(message(2, "alice", "my own", "#lobby"))
        self.model.apply(message(3, "bob", "new", "#lobby"))
        self.model.apply(message(4, "bob", "newer", "#lobby"))
        changes = [c for c in self.recorder.take() if not isinstance(c, RoomsChanged)]
        self.assertEqual(changes, [message(2, "alice", "my own", "#lobby"), UnreadMark(room="#lobby"),
                                   message(3, "bob", "new", "#lobby"), message(4, "bob", "newer", "#lobby")])
        self.model.look("#lobby")
        self.model.apply(message(5, "bob", "live", "#lobby"))
        self.assertNotIn(UnreadMark(room="#lobby"), self.recorder.take())

    def test_unread_mark_of_conversation_follows_rename(self) -> None:
        """
        A conversation looked away from gets its UnreadMark under the other person's new nick after a rename.
        """
        self.model.apply(events.Private(1, TS, "bob", "alice", "psst"))
        self.model.look("bob")
        self.model.look("#lobby")
        self.model.apply(events.NickChanged(TS, "bob", "Robert"))
        self.recorder.take()
        self.model.apply(events.Private(2, TS, "Robert", "alice", "it's me"))
        self.assertEqual(self.recorder.take()[0], UnreadMark(conversation="Robert"))
        self.assertEqual((self.model.conversations, self.model.conversation_unread), ({"robert": "Robert"},
                                                                                    {"robert": 1}))

    def test_returning_before_new_messages_places_no_mark(self) -> None:
        """
        Looking back at a room before anything new arrived there places no UnreadMark later.
        """
        self.join("#lobby")
        self.model.look("#lobby")
        self.model.look("#dev")
        self.model.look("#lobby")
        self.recorder.take()
        self.model.apply(message(1, "bob", "hi", "#lobby"))
        self.assertEqual([c for c in self.recorder.take() if isinstance(c, UnreadMark)], [])

    def test_mute_and_unmute(self) -> None:
        """
        Muting keeps a lower-case room name and tells RoomsChanged; muting twice, or unmuting an unmuted room, is False.
        """
        self.assertTrue(self.model.mute("#Dev"))
        self.assertFalse(self.model.mute("#dev"))
        self.assertEqual(self.model.muted, {"#dev"})
        self.assertEqual(self.recorder.take()[-1], RoomsChanged())
        self.assertTrue(self.model.unmute("#DEV"))
        self.assertFalse(self.model.unmute("#dev"))
        self.assertEqual(self.model.muted, set())

    def test_forget_conversation(self) -> None:
        """
        A conversation closed leaves the list with its unread count, until a message is exchanged again.
        """
        self.model.look("#lobby")
        self.model.apply(events.Private(1, TS, "bob", "alice", "psst"))
        self.assertTrue(self.model.forget_conversation("BOB"))
        self.assertFalse(self.model.forget_conversation("bob"))
        self.assertEqual((self.model.conversations, self.model.conversation_unread), ({}, {}))

    def test_rooms_listed_kept(self) -> None:
        """
        The last /rooms answer is kept: the only counts of the whole server the protocol gives.
        """
        listed = events.Rooms((events.RoomInfo("#lobby", "", 7), events.RoomInfo("#dev", "", 2)))
        self.model.apply(listed)
        self.assertIs(self.model.listed, listed)

    def test_disconnection_forgets_members_keeps_rooms(self) -> None:
        """
        Leaving ONLINE forgets members and TLS, keeps the room list, and tells observers once.
        """
        self.join("#lobby")
        self.model.set_secure(True)
        self.recorder.take()
        self.model.set_state(State.CONNECTING)
        self.model.set_state(State.CONNECTING)
        self.assertEqual(self.recorder.take(), [ConnectionChanged(State.CONNECTING)])
        self.assertEqual(list(self.model.rooms), ["#lobby"])
        self.assertEqual(self.model.rooms["#lobby"].members, {})
        self.assertFalse(self.model.secure)

    def test_transfers(self) -> None:
        """
        A transfer's progress and end reach observers; a finished one is whole.
        """
        transfer = self.model.add_transfer("upload", "a.bin", "bob")
        self.model.progress(transfer, 50, 200)
        self.assertEqual(transfer.fraction, 0.25)
        self.model.finish(transfer, result="/x/a.bin")
        self.assertEqual((transfer.finished, transfer.done, transfer.fraction), (True, 200, 1.0))
        self.assertEqual(
            [c.transfer.done for c in self.recorder.take() if isinstance(c, TransferChanged)], [0, 50, 200]
        )


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    """
    Connects each protocol to a new StringTransport at once, or fails with
    the next of C{failures}.
    """

    def __init__(self) -> None:
        self.protocols: list[Any] = []
        self.failures: list[Exception] = []

    def connect(self, factory: IProtocolFactory) -> Deferred[Any]:
        if self.failures:
            return Deferred.fromCoroutine(self._fail(self.failures.pop(0)))
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        transport = TLSTransport()
        protocol.makeConnection(transport)
        self.protocols.append(protocol)
        return succeed(protocol)

    async def _fail(self, e: Exception) -> None:
        raise e


class ClientTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.endpoint = FakeEndpoint()

    def settings_file(self) -> Path:
        made = tempfile.TemporaryDirectory()
        self.addCleanup(made.cleanup)
        return Path(made.name) / "settings.json"

    def make(self, account: Account = ALICE, **kwargs: Any) -> ChatClient:
        client = ChatClient(self.clock, self.endpoint, account, where="chat.example:8888",
                            retry_policy=lambda failures: 2.0, **kwargs)
        self.recorder = Recorder(client.model)
        return client

    @property
    def protocol(self) -> ChatClientProtocol:
        # ClientService wraps each protocol in a proxy.
        return self.endpoint.protocols[-1]._protocol  # type: ignore[no-any-return]

    def lose(self, reason: Failure) -> None:
        self.endpoint.protocols[-1].connectionLost(reason)

    def written(self) -> list[str]:
        transport = self.protocol.transport
        assert isinstance(transport, StringTransport)
        data = transport.value().decode()
        transport.clear()
        return data.splitlines()

    def server(self, *sent: events.Event) -> None:
        self.protocol.dataReceived(b"".join(render_json(e) for e in sent))

    def welcome(self) -> None:
        self.server(events.Welcome("chat", "0.1.0", "hi", LIMITS))

    def online(self, client: ChatClient, nick: str = "alice") -> None:
        client.startService()
        self.welcome()
        self.server(events.Registered(nick), events.Joined(TS, "#lobby", nick))


class SessionTests(ClientTestCase):
    def test_registers_nick(self) -> None:
        """
        Once welcomed in json the client registers its nick; states follow.
        """
        client = self.make()
        client.startService()
        self.assertEqual(client.model.state, State.CONNECTING)
        self.assertEqual(self.written(), ["/format json"])
        self.welcome()
        self.assertEqual(self.written(), ["/nick alice"])
        self.assertEqual(client.model.state, State.CONNECTED)
        self.server(events.Registered("alice"))
        self.assertEqual(client.model.state, State.ONLINE)
        self.assertEqual(self.written(), ["/ping rtt-1"])
        self.clock.advance(0.25)
        self.server(events.Pong("rtt-1"))
        self.assertEqual(client.model.rtt, 0.25)
        self.assertNotIn(events.Pong("rtt-1"), self.recorder.changes)

    def test_login_with_password(self) -> None:
        """
        With a password the client logs in instead.
        """
        client = self.make(Account("alice", "s3cret"))
        client.startService()
        self.welcome()
        self.assertEqual(self.written(), ["/format json", "/login alice s3cret"])

    def test_nick_taken_asks_for_another(self) -> None:
        """
        nick-taken at registration is shown, with how to choose another.
        """
        client = self.make()
        client.startService()
        self.welcome()
        self.server(events.Error("nick-taken", "alice is taken"))
        self.assertIn(events.Error("nick-taken", "alice is taken"), self.recorder.changes)
        self.assertEqual(
            self.recorder.notices()[-1],
            "Choose another nick with /nick NAME (or log in with /login NICK PASSWORD).",
        )

    def restart(self) -> list[str]:
        """
        The daemon restarts: the connection drops, the client connects
        again after its backoff; returns what it then writes.
        """
        self.lose(Failure(error.ConnectionDone()))
        self.clock.advance(2)
        self.welcome()
        return self.written()

    def test_typed_login_logs_in_again(self) -> None:
        """
        A /login typed in the session logs in again after a restart, in
        memory only, with the account's nick.
        """
        client = self.make()
        self.online(client, "guest1")
        client.input("/login alice s3cret")
        self.server(events.NickChanged(TS, "guest1", "Alice"), events.Registered("Alice", True))
        self.assertEqual(self.restart(), ["/format json", "/login Alice s3cret"])
        self.assertEqual(client.account, Account("Alice", "s3cret"))
        self.assertNotIn("s3cret", repr(client.account))

    def test_typed_register_logs_in_again(self) -> None:
        """
        After /register PASSWORD, a restart logs in to the new account; a
        /password change is followed.
        """
        client = self.make()
        self.online(client)
        client.input("/register s3cret12")
        self.server(events.Registered("alice", True))
        client.input("/password s3cret12 n3wpassw")
        self.server(events.Info("Your password is changed"))
        self.assertEqual(self.restart(), ["/format json", "/login alice n3wpassw"])

    def test_failed_login_is_forgotten(self) -> None:
        """
        A /login the daemon refused is not tried again after a restart.
        """
        client = self.make()
        self.online(client)
        client.input("/login alice wrong")
        self.server(events.Error("auth-failed", "wrong nick or password"))
        self.server(events.Registered("alice", True))  # a later registration cannot pick it up
        self.assertEqual(self.restart(), ["/format json", "/nick alice"])

    def test_registered_nick_hint(self) -> None:
        """
        A guest taking a registered nick is told to /login NICK PASSWORD, at
        registration and once online.
        """
        client = self.make()
        client.startService()
        self.welcome()
        self.server(events.Error("nick-registered", "alice is a registered nick: /login alice PASSWORD"))
        self.assertEqual(self.recorder.notices()[-1], "alice has an account: /login alice PASSWORD if it is yours, "
                         "or choose another nick with /nick NAME.")
        self.server(events.Registered("guest"), events.Joined(TS, "#lobby", "guest"))
        client.input("/nick bob")
        self.server(events.Error("nick-registered", "bob is a registered nick: /login bob PASSWORD"))
        self.assertEqual(self.recorder.notices()[-1], "bob has an account: /login bob PASSWORD if it is yours.")

    def test_habits_are_commands(self) -> None:
        """
        send NICK TEXT, list, help and quit typed alone run as /msg, /list,
        /help and /quit; a leading space says them as they are.
        """
        client = self.make()
        self.online(client)
        self.server(events.Users("#lobby", (events.UserInfo("alice", "", 0), events.UserInfo("Bob", "", 0))))
        self.written()
        for line in ["send bob hi there", "List", "help", " list", "send me the file", "listen"]:
            client.input(line)
        self.assertEqual(self.written(), ["/msg bob hi there", "/list", "/help", " list", "listen"])
        self.assertEqual(self.recorder.notices()[-1],
                         "To message someone: /msg NICK TEXT. To say a line starting with send, start it with a space.")
        client.input("quit")
        self.assertEqual(self.written(), ["/quit"])
        self.lose(Failure(error.ConnectionDone()))
        self.assertEqual(self.successResultOf(client.done), None)

    def test_file_habit_never_said(self) -> None:
        """
        file:PATH typed alone offers the file to the current room, and
        never says the path to the room.
        """
        client = self.make(run_in_thread=inline)
        self.online(client)
        self.written()
        client.input("file:/home/me/report.pdf")
        self.assertFalse([line for line in self.written() if "report.pdf" in line])
        [transfer] = client.model.transfers.values()
        self.assertEqual((transfer.kind, transfer.name, transfer.peer), ("upload", "report.pdf", "#lobby"))
        self.assertEqual(self.recorder.notices()[-1],
                         "Could not send report.pdf to #lobby: No such file or directory: /home/me/report.pdf.")

    def test_password_never_said(self) -> None:
        """
        A password command typed after a space is not said to the room.
        """
        client = self.make()
        self.online(client)
        self.written()
        client.input(" /login alice s3cret")
        self.assertEqual(self.written(), [])
        self.assertNotIn("s3cret", " ".join(self.recorder.notices()))

    def test_reconnects_and_rejoins(self) -> None:
        """
        After the server goes away the client says why, waits the backoff,
        connects again, registers the nick it had, and joins its rooms
        again in the same order (#lobby comes by itself).
        """
        client = self.make()
        self.online(client)
        self.server(events.Joined(TS, "#dev", "alice"), events.NickChanged(TS, "alice", "alicia"))
        self.server(events.Bye("server shutting down"))
        self.lose(Failure(error.ConnectionDone()))
        self.assertEqual(client.model.state, State.CONNECTING)
        self.assertEqual(
            self.recorder.notices()[-2:],
            ["Disconnected from chat.example:8888: the server said goodbye: server shutting down.",
             "Trying again in 2 s."],
        )
        self.endpoint.failures.append(error.ConnectionRefusedError())
        self.clock.advance(2)
        self.assertEqual(
            self.recorder.notices()[-2:],
            ["Cannot connect to chat.example:8888: connection refused (is the daemon running?).",
             "Trying again in 2 s."],
        )
        self.clock.advance(2)
        self.assertEqual(len(self.endpoint.protocols), 2)
        self.written()
        self.welcome()
        self.assertEqual(self.written(), ["/nick alicia"])
        self.server(events.Registered("alicia"))
        self.assertEqual(self.written(), ["/join #dev", "/ping rtt-2"])

    def test_rejoin_leaves_lobby_if_it_was_left(self) -> None:
        """
        A user who had left #lobby leaves it again after reconnecting.
        """
        client = self.make()
        self.online(client)
        self.server(events.Joined(TS, "#dev", "alice"), events.Parted(TS, "#lobby", "alice"))
        self.lose(Failure(error.ConnectionLost()))
        self.clock.advance(2)
        self.welcome()
        self.written()
        self.server(events.Registered("alice"))
        self.assertEqual(self.written(), ["/part #lobby", "/join #dev", "/ping rtt-2"])

    def test_starttls_before_registering(self) -> None:
        """
        With starttls options the client upgrades before sending its nick,
        and the model says TLS.
        """
        options = object()
        client = self.make(starttls=options)
        client.startService()
        self.welcome()
        _, ping, starttls = self.written()
        self.assertEqual(starttls, "/starttls")
        self.server(events.Pong(ping.split()[1]), events.Info("Starting TLS: begin the handshake"))
        self.assertIs(self.protocol.transport.tls, options)  # type: ignore[union-attr]
        self.assertEqual(self.protocol.transport.before_tls, b"")  # type: ignore[union-attr]
        self.assertEqual(self.written(), ["/nick alice"])
        self.assertTrue(client.model.secure)

    def test_starttls_refused_never_goes_on_in_clear(self) -> None:
        """
        A server without TLS: the client says so and stops, without sending the nick.
        """
        client = self.make(starttls=object())
        client.startService()
        self.welcome()
        _, ping, _ = self.written()
        self.server(events.Pong(ping.split()[1]), events.Error("tls-unavailable", "no certificate"))
        self.assertEqual(self.written(), [])
        self.assertIn("The server cannot start TLS: no certificate. Not connecting in clear text.",
                      self.recorder.notices())
        self.assertFalse(client.running)

    def test_quit(self) -> None:
        """
        /quit REASON says goodbye, stops reconnecting, and fires done.
        """
        client = self.make()
        self.online(client)
        self.written()
        client.input("/quit see you")
        self.assertEqual(self.written(), ["/quit see you"])
        self.lose(Failure(error.ConnectionDone()))
        self.assertEqual(self.successResultOf(client.done), None)
        self.clock.advance(60)
        self.assertEqual(len(self.endpoint.protocols), 1)
        self.assertEqual(client.model.state, State.DISCONNECTED)

    def test_input_passes_lines_as_typed(self) -> None:
        """
        Messages, //-escaped text and daemon commands go out as typed;
        blank lines are not sent; without a connection the user is told.
        """
        client = self.make()
        self.online(client)
        self.written()
        for line in ["hello", "//not a command", "/msg bob hi", "   ", "/join #dev"]:
            client.input(line)
        self.assertEqual(self.written(), ["hello", "//not a command", "/msg bob hi", "/join #dev"])
        client.input("/format text")
        self.assertEqual(self.written(), [])
        self.assertEqual(
            self.recorder.notices()[-1], "this client reads the json format only, which /format would change"
        )
        self.lose(Failure(error.ConnectionLost()))
        client.input("anyone?")
        self.assertEqual(self.recorder.notices()[-1], "Not connected to chat.example:8888: not sent.")

    def test_help_lists_client_commands_then_asks_server(self) -> None:
        """
        /help shows the client's commands, then asks the daemon for its own.
        """
        client = self.make()
        self.online(client)
        self.written()
        client.input("/help")
        self.assertIn("  /send NICK|#ROOM PATH: offers a file: uploads it with its SHA-256, showing progress",
                      self.recorder.notices())
        self.assertIn(HABITS_HELP, self.recorder.notices())
        self.assertIn("Start a line with a space to say such words as they are", HABITS_HELP)
        self.assertEqual(self.written(), ["/help"])
        client.input("/help get")
        self.assertEqual(self.written(), [])

    def test_help_lists_mute_and_formatting(self) -> None:
        """
        /help lists /mute and /unmute among the client's commands, and how emoji and formatting are typed.
        """
        client = self.make()
        self.online(client)
        client.input("/help")
        notices = self.recorder.notices()
        self.assertIn("  /mute [#ROOM]: a room's messages (default: the current room's) no longer alert you; "
                      "remembered", notices)
        self.assertIn("  /unmute [#ROOM]: a muted room's mentions alert you again (default: the current room)", notices)
        self.assertIn(FORMATTING_HELP, notices)

    def test_mute_current_or_named_room_is_saved(self) -> None:
        """
        /mute mutes the current room (or the one named, # optional) and saves it; /unmute undoes it; nothing is sent.
        """
        path = self.settings_file()
        client = self.make(settings=ClientSettings(), settings_file=path)
        self.online(client)
        self.written()
        client.input("/mute")
        self.assertEqual(client.model.muted, {"#lobby"})
        self.assertEqual(self.recorder.notices()[-1],
                         "Muted #lobby: its messages no longer alert you (/unmute #lobby to undo).")
        client.input("/mute Dev")
        self.assertEqual(ClientSettings.load(path).muted, {"#lobby", "#dev"})
        client.input("/mute #dev")
        self.assertEqual(self.recorder.notices()[-1], "#dev is muted already.")
        client.input("/unmute #DEV")
        self.assertEqual(ClientSettings.load(path).muted, {"#lobby"})
        client.input("/unmute #dev")
        self.assertEqual(self.recorder.notices()[-1], "#dev is not muted (muted rooms: #lobby).")
        self.assertEqual(self.written(), [])

    def test_mute_of_a_person_goes_to_the_daemon(self) -> None:
        """
        /mute and /unmute naming a person in a room (or with more words) are the operator's commands, sent as typed.
        """
        client = self.make(settings=ClientSettings(), settings_file=self.settings_file())
        self.online(client)
        client.model.apply(events.Users("#lobby", (events.UserInfo("alice", "", 0), events.UserInfo("bob", "", 0))))
        self.written()
        client.input("/mute bob #lobby 10m")
        client.input("/mute Bob")
        client.input("/unmute bob")
        self.assertEqual(self.written(), ["/mute bob #lobby 10m", "/mute Bob", "/unmute bob"])
        self.assertEqual(client.model.muted, set())

    def test_mute_outside_a_room_is_usage(self) -> None:
        """
        /mute with no room named and none current tells its usage and mutes nothing.
        """
        client = self.make()
        client.input("/mute")
        self.assertEqual(self.recorder.notices()[-1], "Usage: /mute [#ROOM]")
        self.assertEqual(client.model.muted, set())

    def test_settings_muted_rooms_and_saving(self) -> None:
        """
        The settings' muted rooms are the model's; registering saves the server and nick; quitting saves again.
        """
        path = self.settings_file()
        settings = ClientSettings(muted={"#dev"}, theme="light")
        client = self.make(settings=settings, settings_file=path, downloads=Path("/tmp/dl"))
        self.assertEqual(client.model.muted, {"#dev"})
        self.assertFalse(path.exists())
        self.online(client, "Alice")
        self.assertEqual(ClientSettings.load(path),
                         ClientSettings("chat.example:8888", "Alice", "light", {"#dev"}, "/tmp/dl"))
        client.settings.theme = "dark"  # type: ignore[union-attr]
        client.downloads = Path.home() / "Downloads" / "chat"
        client.quit()
        self.assertEqual((ClientSettings.load(path).theme, ClientSettings.load(path).downloads), ("dark", ""))

    def test_theme_saved_by_another_writer_is_kept(self) -> None:
        """
        A theme another writer saved is kept when the client saves, unless the client's own settings changed it.
        """
        path = self.settings_file()
        client = self.make(settings=ClientSettings(theme="dark"), settings_file=path)
        ClientSettings(theme="light", muted={"#old"}).save(path)
        client.input("/mute #dev")
        self.assertEqual(ClientSettings.load(path), ClientSettings(theme="light", muted={"#dev"}))
        client.settings.theme = "solarized"  # type: ignore[union-attr]
        client.save_settings()
        self.assertEqual(ClientSettings.load(path).theme, "solarized")

    def test_server_not_saved_before_registration(self) -> None:
        """
        A server never registered with is not remembered; a bad settings file is told as an error notice.
        """
        path = self.settings_file()
        model = ChatModel("alice")
        early = Recorder(model)
        client = self.make(settings=ClientSettings("old:1", "old", notice="The settings are bad."),
                           settings_file=path, model=model)
        self.assertEqual(early.take(), [Notice("The settings are bad.", "error")])
        client.quit()
        self.assertEqual((ClientSettings.load(path).server, ClientSettings.load(path).nick), ("old:1", "old"))

    def test_without_settings_nothing_is_saved(self) -> None:
        """
        A client made without settings saves nothing.
        """
        client = self.make()
        self.assertFalse(client.save_settings())

    def test_emoji_shortcodes_in_what_is_said(self) -> None:
        """
        Shortcodes become emoji in plain lines and the text of /me, /msg, /status, /topic and /part, nowhere else.
        """
        client = self.make()
        self.online(client)
        self.written()
        for typed in ("hi :smile: :+1:", "//x :tada:", "/me waves :wave:", "/msg bob :heart: you",
                      "/status lunch :pizza:", "/topic #dev new :fire:", "/topic ok :fire:", "/part #dev bye :wave:",
                      "/join #:smile:", "/nick :smile:", "at 10:30: fine :not_an_emoji:"):
            client.input(typed)
        self.assertEqual(self.written(), [
            "hi 😄 👍", "//x 🎉", "/me waves 👋", "/msg bob ❤️ you", "/status lunch 🍕", "/topic #dev new 🔥",
            "/topic ok 🔥", "/part #dev bye 👋", "/join #:smile:", "/nick :smile:", "at 10:30: fine :not_an_emoji:",
        ])
        self.server(events.Users("#lobby", (events.UserInfo("alice", "", 0), events.UserInfo("bob", "", 0))))
        client.input("send bob :wave:")
        self.assertEqual(self.written(), ["/msg bob 👋"])

    def test_no_emoji_in_passwords(self) -> None:
        """
        /login, /register and /password are sent exactly as typed, shortcodes and all.
        """
        client = self.make()
        self.online(client)
        self.written()
        for typed in ("/login alice :smile:", "/register :tada:pw", "/password :a: :smile:"):
            client.input(typed)
        self.assertEqual(self.written(), ["/login alice :smile:", "/register :tada:pw", "/password :a: :smile:"])

    def test_with_emoji_function(self) -> None:
        """
        with_emoji changes only the text part and keeps the spacing typed.
        """
        self.assertEqual(with_emoji("/msg  bob  :smile:"), "/msg  bob  😄")
        self.assertEqual(with_emoji("/msg bob"), "/msg bob")
        self.assertEqual(with_emoji("/away"), "/away")
        self.assertEqual(with_emoji("/quit :wave:"), "/quit 👋")

    def test_get_unknown_offer_and_usage(self) -> None:
        """
        /get of an offer never seen, and bad /get and /send, are one line each.
        """
        client = self.make()
        self.online(client)
        client.input("/get 12")
        client.input("/get")
        client.input("/send bob")
        self.assertEqual(self.recorder.notices()[-3:], [
            "No offer 12 known here: /files lists the ones for you.",
            "Usage: /get ID [DIR]",
            "Usage: /send NICK|#ROOM PATH",
        ])

    def test_send_missing_file(self) -> None:
        """
        /send of a file that does not exist fails with one line, and the transfer says so.
        """
        client = self.make(run_in_thread=inline)
        self.online(client)
        missing = Path(tempfile.mkdtemp(prefix="chat-client-test-")) / "none.bin"
        self.addCleanup(missing.parent.rmdir)
        client.input(f"/send bob {missing}")
        self.assertEqual(
            self.recorder.notices()[-1], f"Could not send none.bin to bob: No such file or directory: {missing}."
        )
        [transfer] = client.model.transfers.values()
        self.assertTrue(transfer.finished)
        self.assertEqual(transfer.error, f"No such file or directory: {missing}")


class DescribeTests(SynchronousTestCase):
    def test_failures_are_one_line(self) -> None:
        """
        Connection failures read as short sentences, TLS ones included.
        """
        cases = [
            (error.ConnectionRefusedError(), "connection refused (is the daemon running?)"),
            (error.DNSLookupError(), "unknown host"),
            (error.ConnectionDone(), "the server closed the connection"),
            (SSL.Error([("SSL routines", "", "certificate verify failed")]),
             "TLS failed (certificate verify failed): the server's certificate is not trusted; "
             "for a self-signed server use --cafile"),
            (SSL.Error([("SSL routines", "", "wrong version number")]),
             "TLS failed (wrong version number): is this port serving TLS? Try --starttls, or the TLS port"),
            (SSL.Error([("SSL routines", "", "no shared cipher")]), "TLS failed: no shared cipher"),
        ]
        for exception, expected in cases:
            self.assertEqual(describe_failure(Failure(exception)), expected)


class OptionsTests(SynchronousTestCase):
    def parse(self, *argv: str) -> client_options.ClientOptions:
        options = client_options.ClientOptions(settings=ClientSettings())
        options.parseOptions(list(argv))
        return options

    def test_defaults_and_tls_port(self) -> None:
        """
        Port 8888 by default, 6697 with --tls; NICK is optional.
        """
        self.assertEqual((self.parse()["port"], self.parse()["nick"]), (8888, None))
        self.assertEqual(self.parse("--tls", "bob")["port"], 6697)
        self.assertEqual(self.parse("--tls", "bob")["nick"], "bob")

    def test_bad_combinations(self) -> None:
        """
        Contradictory or incomplete TLS options are usage errors.
        """
        for argv in (["--tls", "--starttls"], ["--cafile", "x.pem"], ["--insecure"],
                     ["--tls", "--insecure", "--cafile", "x"], ["--port", "0"]):
            self.assertRaises(usage.UsageError, self.parse, *argv)

    def test_cafile_errors(self) -> None:
        """
        A missing or non-PEM --cafile is one usage line.
        """
        error_ = self.assertRaises(usage.UsageError, client_options.read_cafile, "/nonexistent.pem")
        self.assertEqual(str(error_), "cannot read --cafile /nonexistent.pem: No such file or directory")

    def test_account_prompts(self) -> None:
        """
        Without NICK the nick is asked for; --password-prompt asks the password.
        """
        answers = iter(["", "dora"])
        options = self.parse("--password-prompt")
        account = client_options.account(options, lambda prompt: next(answers), lambda prompt: "pw")
        self.assertEqual(account, Account("dora", "pw"))


class ScreenTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.model = ChatModel("alice")
        self.out: list[str] = []
        self.now = 0.0
        self.screen = Screen(self.model, self.out.append, colour=False, terminal=True,
                             seconds=lambda: self.now, zone=timezone.utc)
        self.model.observe(self.screen.show)

    def text(self) -> str:
        text = "".join(self.out)
        self.out.clear()
        return text

    def test_lines(self) -> None:
        """
        Messages, actions, private lines both ways, system lines and errors
        each have their own look, with timestamps.
        """
        self.model.apply(events.Registered("alice"))
        self.model.apply(message(1, "bob", "hello"))
        self.model.apply(message(2, "bob", "waves", action=True))
        self.model.apply(events.Private(3, TS, "bob", "alice", "psst"))
        self.model.apply(events.Private(4, TS, "alice", "bob", "hi back"))
        self.model.apply(events.Joined(TS, "#lobby", "carol"))
        self.model.apply(events.Error("no-such-nick", "no user named dave"))
        self.model.notice("Trying again in 2 s.")
        self.model.apply(events.FileOffer(5, "bob", "alice", "notes.pdf", 300_000, "ab" * 32, TS))
        self.assertEqual(self.text(), (
            "*** You are alice. Type to talk, /help for commands.\n"
            "[14:02] <bob> hello\n"
            "[14:02] * bob waves\n"
            "[14:02] *bob* psst\n"
            "[14:02] -> *bob* hi back\n"
            "[14:02] --> carol joined #lobby\n"
            "!!! no user named dave (no-such-nick)\n"
            "*** Trying again in 2 s.\n"
            "*** bob offers notes.pdf (293.0 KiB) to you: /get 5 to download it\n"
        ))

    def test_colours(self) -> None:
        """
        In colour, a nick has the same colour every time, the ANSI one of its presenter colour, and private
        lines are bold.
        """
        self.screen.colour = True
        self.model.apply(message(1, "bob", "one"))
        self.model.apply(message(2, "bob", "two"))
        self.model.apply(events.Private(3, TS, "bob", "alice", "psst"))
        first, second, private = self.text().splitlines()
        bob = f"\x1b[{NICK_ANSI[nick_colour('bob')]}mbob\x1b[0m"
        self.assertEqual(first, f"\x1b[2m[14:02]\x1b[0m <{bob}> one")
        self.assertEqual(first.split("<")[1].split(">")[0], second.split("<")[1].split(">")[0])
        self.assertTrue(private.endswith(" \x1b[1mpsst\x1b[0m"))
        self.assertIn(bob, private)

    def test_history_and_lists(self) -> None:
        """
        History comes between two dividers, each message with its room and, from another day, its date;
        lists of people and rooms are one line each, marked.
        """
        self.now = TS.timestamp()
        self.model.apply(events.Joined(TS, "#lobby", "alice"))
        self.text()
        self.model.apply(events.History("#lobby", (message(1, "bob", "today"),
                                                   events.Message(2, TS - timedelta(days=1), "#lobby", "bob", "old"))))
        self.model.apply(events.Users("#lobby", (events.UserInfo("alice", "", 0), events.UserInfo("bob", "away", 0))))
        self.model.apply(events.Rooms((events.RoomInfo("#lobby", "hi", 2),)))
        self.assertEqual(self.text(), (
            "--- earlier in #lobby ---\n"
            "[14:02] #lobby <bob> today\n"
            "[20 Nov 14:02] #lobby <bob> old\n"
            "--- now ---\n"
            "*** #lobby, 2 users: alice, bob (away)\n"
            "*** Rooms:\n"
            "***   #lobby (2) hi\n"
        ))

    def test_no_colour_environment(self) -> None:
        """
        NO_COLOR, TERM=dumb or an output that is not a terminal turn colours off.
        """
        class Tty:
            def isatty(self) -> bool:
                return True

        self.assertTrue(use_colour(Tty(), {}))
        self.assertFalse(use_colour(Tty(), {"NO_COLOR": "1"}))
        self.assertFalse(use_colour(Tty(), {"TERM": "dumb"}))

    def test_progress_bar(self) -> None:
        """
        A transfer's bar is redrawn in place at most ten times a second,
        other lines go above it, and the end is one line at 100%.
        """
        transfer = self.model.add_transfer("upload", "a.bin", "bob")
        self.now = 1.0
        self.model.progress(transfer, 512 * 1024, 1024 * 1024)
        self.assertEqual(self.text(), "\r\x1b[K↑ a.bin to bob [############............]  50% 512.0 KiB of 1.0 MiB")
        self.now = 1.05
        self.model.progress(transfer, 600 * 1024, 1024 * 1024)
        self.assertEqual(self.text(), "")
        self.model.notice("hello")
        self.assertEqual(
            self.text(), "\r\x1b[K*** hello\n↑ a.bin to bob [############............]  50% 512.0 KiB of 1.0 MiB"
        )
        self.model.finish(transfer, result="done")
        self.assertEqual(self.text(), "\r\x1b[K↑ a.bin to bob [########################] 100% 1.0 MiB\n")

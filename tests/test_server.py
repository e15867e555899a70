"""
Tests for L{chat.server}: the L{ChatServer} as every front end uses it,
without any network: fake participants record the events they are
delivered (rendered as JSON) and the reasons they are closed with; time
comes from a L{Clock}; passwords are hashed inline with cheap argon2id
parameters and files go to a spool in a temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any, cast

import argon2
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from chat import commands, errors, events
from chat.accounts import FAILURE_DELAY, Accounts, PasswordHasher
from chat.interfaces import IParticipant, Outgoing
from chat.memory_store import MemoryStore
from chat.render import render_json
from chat.server import ChatServer
from chat.session import Session
from chat.settings import Settings
from chat.spool import Spool
from tests.support import START, TS
from tests.test_accounts import PendingHasher, cheap
from tests.test_spool import inline

LOCAL = "127.0.0.1"
REMOTE = "192.0.2.7"
"""A peer address that is not this machine (TEST-NET-1)."""

DATA = b"line one\r\nIAC \xff\xfd\x06 NUL \x00 end\n" * 11
EXPIRES = "2025-11-22T14:02:03.500Z"
"""L{START} plus the default file TTL, as sent in C{file-offer}."""

TAKEN_OVER = "you logged in from another connection"
NEEDS_TLS = "passwords are accepted only over TLS (or from this machine): connect with TLS or use /starttls"


def sha(data: bytes) -> str:
    """
    The SHA-256 of C{data}, lower-case hex.
    """
    return hashlib.sha256(data).hexdigest()


@implementer(IParticipant)
class Participant:
    """
    A connection as the server sees it: records each event delivered (as
    the JSON object it renders to) and each reason it is closed with.
    """

    nick = ""
    account = None

    def __init__(self, name: str, peer: str = LOCAL, secure: bool = False) -> None:
        self.name = name
        self.peer = peer
        self.secure = secure
        self.received: list[dict[str, Any]] = []
        self.closed: list[str] = []

    def deliver(self, outgoing: Outgoing) -> None:
        data = outgoing[render_json]
        assert data.endswith(b"\r\n"), data
        self.received.append(json.loads(data))

    def close(self, reason: str) -> None:
        self.closed.append(reason)

    def take(self) -> list[dict[str, Any]]:
        """
        The events delivered since the last call, then forget them.
        """
        received, self.received = self.received, []
        return received

    def types(self) -> list[str]:
        """
        The types of the events delivered since the last call, then forget them.
        """
        return [event["type"] for event in self.take()]

    def __repr__(self) -> str:
        return f"<Participant {self.name}>"


def error(code: str, message: str) -> dict[str, Any]:
    """
    The JSON C{error} event with C{code} and C{message}.
    """
    return {"type": "error", "code": code, "message": message}


class ServerTestCase(SynchronousTestCase):
    """
    A server over a memory store, a clock at L{START}, inline cheap
    hashing, and a spool in a temporary directory storing at once.
    """

    settings = Settings(flood_burst=10_000, max_file=4096, spool_quota=10_000)

    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-server-test-")
        self.addCleanup(directory.cleanup)
        self.spool = Spool(os.path.join(directory.name, "spool"), self.settings.spool_quota, inline)
        self.spool.open()
        self.clock = Clock()
        self.clock.advance(START)
        self.store = MemoryStore()
        self.accounts = Accounts(self.store, PasswordHasher(None, hasher=cheap()), self.clock)
        self.server = ChatServer(self.settings, self.clock, self.store, self.accounts, files=self.spool)

    def connect(
        self, name: str, peer: str = LOCAL, local: bool = True, secure: bool = False
    ) -> tuple[Participant, Session]:
        """
        A new connection's participant and session.
        """
        participant = Participant(name, peer, secure)
        return participant, self.server.connect(participant, local)

    def user(self, nick: str) -> tuple[Participant, Session]:
        """
        A connection registered as C{nick} (in C{#lobby}), what it was sent dropped.
        """
        participant, session = self.connect(nick)
        self.assertIsNone(self.server.execute(session, commands.Nick(nick)))
        participant.take()
        return participant, session

    def create_account(self, name: str, password: str = "password1") -> None:
        """
        Create the account C{name}, with nobody logged in to it.
        """
        self.successResultOf(self.accounts.create(name, password, START))
        self.server.domain.account_created(name, None)


class ConnectTests(ServerTestCase):
    """
    L{ChatServer.connect} and L{ChatServer.disconnect}: sessions and the per-address limit.
    """

    settings = Settings(max_per_ip=2)

    def test_connect_starts_session(self) -> None:
        """
        A connection gets an allowed session without a user, kept by the server; nothing is sent yet.
        """
        participant, session = self.connect("a", local=False)
        self.assertIs(session.participant, participant)
        self.assertIs(session.allowed, True)
        self.assertIs(session.local, False)
        self.assertIsNone(session.user)
        self.assertIs(session.closing, False)
        self.assertIs(self.server.sessions[participant], session)
        self.assertEqual(participant.received, [])

    def test_disconnect_forgets_session(self) -> None:
        """
        A disconnected session is no longer kept.
        """
        participant, session = self.connect("a")
        self.server.disconnect(session, "connection lost")
        self.assertNotIn(participant, self.server.sessions)
        self.assertEqual(self.server.sessions, {})

    def test_per_address_limit(self) -> None:
        """
        Beyond C{max_per_ip} connections from one address, sessions are not allowed; closed ones free a place.
        """
        _, first = self.connect("a", REMOTE)
        _, second = self.connect("b", REMOTE)
        _, third = self.connect("c", REMOTE)
        _, elsewhere = self.connect("d", "192.0.2.8")
        self.assertEqual([first.allowed, second.allowed, third.allowed], [True, True, False])
        self.assertIs(elsewhere.allowed, True)
        self.server.disconnect(third, "too many connections from your address")
        self.server.disconnect(first, "connection lost")
        _, fourth = self.connect("e", REMOTE)
        _, fifth = self.connect("f", REMOTE)
        self.assertEqual([fourth.allowed, fifth.allowed], [True, False])

    def test_disconnect_of_registered_user(self) -> None:
        """
        When a registered user's connection is gone, those sharing a room see them quit with the reason,
        and their nick is free again.
        """
        alice, alice_session = self.user("alice")
        bob, _ = self.user("bob")
        alice.take()
        self.server.disconnect(alice_session, "connection reset")
        self.assertEqual(bob.take(), [{"type": "quit", "ts": TS, "nick": "alice", "reason": "connection reset"}])
        self.assertEqual(alice.take(), [])
        self.assertIsNone(alice_session.user)
        again, session = self.connect("again")
        self.server.execute(session, commands.Nick("alice"))
        self.assertEqual(again.take()[0], {"type": "registered", "nick": "alice", "account": False})


class ExecuteTests(ServerTestCase):
    """
    L{ChatServer.execute}: one request of a session; replies and refusals as events.
    """

    def test_nick_registers(self) -> None:
        """
        C{Nick} before registration gives the session a user; it gets registered, then #lobby's join,
        its role as the first operator of #lobby, users and history.
        """
        alice, session = self.connect("alice")
        self.assertIsNone(self.server.execute(session, commands.Nick("alice")))
        self.assertEqual(alice.take(), [
            {"type": "registered", "nick": "alice", "account": False},
            {"type": "join", "ts": TS, "room": "#lobby", "nick": "alice"},
            {"type": "role", "room": "#lobby", "nick": "alice", "role": "operator", "by": ""},
            {"type": "users", "room": "#lobby", "count": 1,
             "users": [{"nick": "alice", "status": "", "idle": 0, "role": "operator"}]},
            {"type": "history", "room": "#lobby", "messages": []},
        ])
        assert session.user is not None
        self.assertEqual(session.user.nick, "alice")

    def test_nick_without_lobby(self) -> None:
        """
        C{Nick} with C{join=False} registers without joining #lobby: the newcomer gets only
        C{registered}, and those in #lobby see nothing.
        """
        bob, _ = self.user("bob")
        alice, session = self.connect("alice")
        self.assertIsNone(self.server.execute(session, commands.Nick("alice", join=False)))
        self.assertEqual(alice.take(), [{"type": "registered", "nick": "alice", "account": False}])
        self.assertEqual(bob.take(), [])
        assert session.user is not None
        self.assertEqual(session.user.rooms, {})

    def test_newcomer_announced(self) -> None:
        """
        Those in #lobby see a newcomer's join.
        """
        alice, _ = self.user("alice")
        self.user("bob")
        self.assertEqual(alice.take(), [{"type": "join", "ts": TS, "room": "#lobby", "nick": "bob"}])

    def test_nick_changes(self) -> None:
        """
        C{Nick} once registered renames the user, for them and their neighbours.
        """
        alice, session = self.user("alice")
        bob, _ = self.user("bob")
        alice.take()
        self.assertIsNone(self.server.execute(session, commands.Nick("alicia")))
        changed = {"type": "nick", "ts": TS, "old": "alice", "new": "alicia"}
        self.assertEqual(alice.take(), [changed])
        self.assertEqual(bob.take(), [changed])
        assert session.user is not None
        self.assertEqual(session.user.nick, "alicia")

    def test_refused_request_sends_error(self) -> None:
        """
        A refused request sends an error event with its code, returns C{None} and changes nothing.
        """
        alice, session = self.connect("alice")
        self.assertIsNone(self.server.execute(session, commands.Nick("9lives")))
        [refusal] = alice.take()
        self.assertEqual(refusal["type"], "error")
        self.assertEqual(refusal["code"], "nick-invalid")
        self.assertIsNone(session.user)

    def test_nick_taken(self) -> None:
        """
        A nick in use, ignoring case, is refused with C{nick-taken}.
        """
        self.user("alice")
        other, session = self.connect("other")
        self.assertIsNone(self.server.execute(session, commands.Nick("ALICE")))
        self.assertEqual(other.take(), [error("nick-taken", "ALICE is taken")])
        self.assertIsNone(session.user)

    def test_request_needing_nick(self) -> None:
        """
        A request of a user before registration is refused with C{not-registered}.
        """
        participant, session = self.connect("x")
        self.assertIsNone(self.server.execute(session, commands.Join("#x")))
        self.assertIsNone(self.server.execute(session, commands.Say("hello")))
        refusal = error("not-registered", "choose a nick first: /nick NAME")
        self.assertEqual(participant.take(), [refusal, refusal])

    def test_help_and_ping(self) -> None:
        """
        C{Help} answers with the help text as info, C{Ping} with pong echoing the token.
        """
        participant, session = self.connect("x")
        self.server.execute(session, commands.Help(""))
        self.server.execute(session, commands.Help("nick"))
        self.server.execute(session, commands.Ping("t-42"))
        self.server.execute(session, commands.Help("frobnicate"))
        self.assertEqual(participant.take(), [
            {"type": "info", "text": commands.help_text("")},
            {"type": "info", "text": "/nick NEW [--no-join]: picks your nick (and joins #lobby, unless --no-join), or changes it"},
            {"type": "pong", "token": "t-42"},
            error("bad-arguments", "no command /frobnicate: /help lists them"),
        ])

    def test_say_reaches_room(self) -> None:
        """
        C{Say} sends a message to everyone in the user's current room, the sender included.
        """
        alice, session = self.user("alice")
        bob, _ = self.user("bob")
        alice.take()
        self.assertIsNone(self.server.execute(session, commands.Say("hello", action=True)))
        [said] = alice.take()
        self.assertEqual(bob.take(), [said])
        self.assertEqual(
            {key: said[key] for key in ("type", "room", "from", "text", "action")},
            {"type": "message", "room": "#lobby", "from": "alice", "text": "hello", "action": True},
        )


class LoginTests(ServerTestCase):
    """
    C{Login} and C{Register} through the server's L{Accounts}.
    """

    def test_login_before_registration(self) -> None:
        """
        C{Login} returns a L{Deferred} firing with C{None}; the session is then the account's user.
        """
        self.create_account("alice")
        alice, session = self.connect("alice")
        pending = self.server.execute(session, commands.Login("ALICE", "password1"))
        assert pending is not None
        self.assertIsNone(self.successResultOf(pending))
        received = alice.take()
        self.assertEqual(received[0], {"type": "registered", "nick": "alice", "account": True})
        self.assertEqual(received[1], {"type": "join", "ts": TS, "room": "#lobby", "nick": "alice"})
        assert session.user is not None
        self.assertEqual(session.user.account, "alice")

    def test_login_without_lobby(self) -> None:
        """
        C{Login} with C{join=False} registers the account's user in no room.
        """
        self.create_account("alice")
        alice, session = self.connect("alice")
        pending = self.server.execute(session, commands.Login("alice", "password1", join=False))
        assert pending is not None
        self.successResultOf(pending)
        self.assertEqual(alice.take(), [{"type": "registered", "nick": "alice", "account": True}])

    def test_login_takes_over(self) -> None:
        """
        Logging in to an account in use elsewhere closes the other session, whose user others see quit;
        the new session takes the nick.
        """
        self.create_account("alice")
        old, old_session = self.connect("old")
        first = self.server.execute(old_session, commands.Login("alice", "password1"))
        assert first is not None
        self.successResultOf(first)
        bob, _ = self.user("bob")
        old.take()
        new, new_session = self.connect("new")
        pending = self.server.execute(new_session, commands.Login("alice", "password1"))
        assert pending is not None
        self.assertIsNone(self.successResultOf(pending))
        self.assertEqual(old.closed, [TAKEN_OVER])
        self.assertEqual(old.take(), [])
        self.assertIsNone(old_session.user)
        self.assertEqual(bob.take()[:2], [
            {"type": "quit", "ts": TS, "nick": "alice", "reason": TAKEN_OVER},
            {"type": "join", "ts": TS, "room": "#lobby", "nick": "alice"},
        ])
        self.assertEqual(new.take()[0], {"type": "registered", "nick": "alice", "account": True})
        assert new_session.user is not None
        self.assertEqual(new_session.user.nick, "alice")
        # The old connection's end quits nobody a second time.
        self.server.disconnect(old_session, TAKEN_OVER)
        self.assertEqual(bob.take(), [])
        self.assertEqual(new.take(), [])

    def test_wrong_password(self) -> None:
        """
        A wrong password is answered after the failure delay with C{auth-failed}; the Deferred fires with
        C{None}.
        """
        self.create_account("alice")
        participant, session = self.connect("x")
        pending = self.server.execute(session, commands.Login("alice", "wrong-one"))
        assert pending is not None
        self.assertNoResult(pending)
        self.assertEqual(participant.take(), [])
        self.clock.advance(FAILURE_DELAY)
        self.assertIsNone(self.successResultOf(pending))
        self.assertEqual(participant.take(), [error("auth-failed", "wrong nick or password")])
        self.assertIsNone(session.user)

    def test_login_needs_tls(self) -> None:
        """
        C{Login} from another machine over plain TCP is refused with C{auth-needs-tls}, at once.
        """
        self.create_account("alice")
        participant, session = self.connect("x", REMOTE, local=False)
        self.assertIsNone(self.server.execute(session, commands.Login("alice", "password1")))
        self.assertEqual(participant.take(), [error("auth-needs-tls", NEEDS_TLS)])
        self.assertIsNone(session.user)

    def test_register_needs_tls(self) -> None:
        """
        C{Register} from another machine over plain TCP is refused with C{auth-needs-tls}, and frees the nick.
        """
        participant, session = self.connect("x", REMOTE, local=False)
        self.server.execute(session, commands.Nick("alice"))
        participant.take()
        self.assertIsNone(self.server.execute(session, commands.Register("password1")))
        self.assertEqual(participant.take(), [error("auth-needs-tls", NEEDS_TLS)])
        self.assertNotIn("alice", self.server.domain.accounts)

    def test_login_over_tls_from_afar(self) -> None:
        """
        Over TLS a password is taken from another machine.
        """
        self.create_account("alice")
        participant, session = self.connect("x", REMOTE, local=False, secure=True)
        pending = self.server.execute(session, commands.Login("alice", "password1"))
        assert pending is not None
        self.successResultOf(pending)
        self.assertEqual(participant.take()[0], {"type": "registered", "nick": "alice", "account": True})

    def pending_login(self) -> tuple[Participant, Session, Deferred[None], PendingHasher]:
        """
        Start a login to the account C{alice} on a server whose password checks complete when the
        test fires them: the participant, its session, the request's Deferred and the hasher.
        """
        self.successResultOf(self.store.create_account("alice", cheap().hash("password1"), START))
        hasher = PendingHasher()
        accounts = Accounts(self.store, PasswordHasher(None, hasher=cast(argon2.PasswordHasher, hasher)), self.clock)
        self.server = ChatServer(self.settings, self.clock, self.store, accounts, files=self.spool)
        participant, session = self.connect("x")
        pending = self.server.execute(session, commands.Login("alice", "password1"))
        assert pending is not None
        self.assertNoResult(pending)
        return participant, session, pending, hasher

    def test_login_completing_after_close(self) -> None:
        """
        A login whose check completes after the front end began closing the session is dropped.
        """
        participant, session, pending, hasher = self.pending_login()
        session.closing = True
        hasher.calls[0].callback(True)
        self.assertIsNone(self.successResultOf(pending))
        self.assertEqual(participant.take(), [])
        self.assertIsNone(session.user)
        self.assertNotIn("alice", self.server.domain.users)

    def test_login_completing_after_disconnect(self) -> None:
        """
        A login whose check completes after the session disconnected is dropped.
        """
        participant, session, pending, hasher = self.pending_login()
        self.server.disconnect(session, "connection lost")
        hasher.calls[0].callback(True)
        self.assertIsNone(self.successResultOf(pending))
        self.assertEqual(participant.take(), [])
        self.assertNotIn("alice", self.server.domain.users)

    def test_register(self) -> None:
        """
        C{Register} creates the account of the user's nick and logs them in to it.
        """
        alice, session = self.user("alice")
        pending = self.server.execute(session, commands.Register("password1"))
        assert pending is not None
        self.assertIsNone(self.successResultOf(pending))
        self.assertEqual(alice.take(), [
            {"type": "registered", "nick": "alice", "account": True},
            {"type": "info", "text": "Account alice created: from now on log in with /login alice PASSWORD"},
        ])
        self.assertEqual(self.server.domain.accounts, {"alice": "alice"})


class RegisteredGuestTests(ServerTestCase):
    """
    A guest whose nick got an account meanwhile (made by the admin tool, say).
    """

    def test_register_hints_login(self) -> None:
        """
        C{Register} of a nick that has an account is refused with the way in: /login, or another nick.
        """
        alice, session = self.user("alice")
        self.create_account("alice")
        self.server.execute(session, commands.Register("password2"))
        self.assertEqual(alice.take()[-1], {
            "type": "error", "code": "nick-registered",
            "message": "alice is registered already: /login alice PASSWORD if it is yours, else /nick NAME",
        })


class BrokenAccounts:
    """
    Stands in for L{Accounts} whose store fails: each call fails with C{error}.
    """

    def __init__(self, error: Exception) -> None:
        self.error = error

    def login(self, name: str, password: str, address: str) -> Deferred[Any]:
        """
        Fail with the error.
        """
        return fail(self.error)


class FailureTests(ServerTestCase):
    """
    A request completing later never fails its L{Deferred}.
    """

    def use_accounts(self, accounts: BrokenAccounts) -> None:
        """
        Replace the server with one over C{accounts}.
        """
        self.server = ChatServer(self.settings, self.clock, self.store, cast(Accounts, accounts), files=self.spool)

    def test_unexpected_failure(self) -> None:
        """
        A failure that is not a refusal is logged with the peer, and the session gets C{busy}.
        """
        self.use_accounts(BrokenAccounts(RuntimeError("the store is unreachable")))
        participant, session = self.connect("x")
        with capturedLogs() as logged:
            pending = self.server.execute(session, commands.Login("alice", "password1"))
            assert pending is not None
            self.assertIsNone(self.successResultOf(pending))
        self.assertEqual(
            participant.take(), [error("busy", "the server could not do that now; try again later")]
        )
        failures = [event for event in logged if "log_failure" in event]
        self.assertEqual(len(failures), 1)
        self.assertEqual(failures[0]["log_format"], "request from {peer} failed")
        self.assertEqual(failures[0]["peer"], LOCAL)
        self.assertIsInstance(failures[0]["log_failure"].value, RuntimeError)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_refusal_later_not_logged(self) -> None:
        """
        A refusal arriving later is sent as its error event, and not logged as a failure.
        """
        self.use_accounts(BrokenAccounts(errors.Busy("the server is busy checking passwords; try again in a moment")))
        participant, session = self.connect("x")
        with capturedLogs() as logged:
            pending = self.server.execute(session, commands.Login("alice", "password1"))
            assert pending is not None
            self.assertIsNone(self.successResultOf(pending))
        self.assertEqual(
            participant.take(), [error("busy", "the server is busy checking passwords; try again in a moment")]
        )
        self.assertEqual([event for event in logged if "log_failure" in event], [])


class FilesTests(ServerTestCase):
    """
    L{ChatServer.begin_upload}, L{ChatServer.finish_upload} and L{ChatServer.open_download}.
    """

    def setUp(self) -> None:
        super().setUp()
        self.alice, self.alice_session = self.user("alice")
        self.bob, self.bob_session = self.user("bob")
        self.carol, self.carol_session = self.user("carol")
        self.alice.take()
        self.bob.take()

    def upload(self, target: str, data: bytes = DATA, expected: str | None = None) -> int:
        """
        Upload C{data} from alice to C{target}, announcing C{expected} (by default its SHA-256); the offer id.
        """
        request = commands.Upload(target, "dir/a file.bin", len(data), expected or sha(data))
        incoming = self.server.begin_upload(self.alice_session, request)
        self.assertEqual(
            self.alice.take(), [{"type": "upload-ready", "id": incoming.id, "name": "a file.bin", "size": len(data)}]
        )
        incoming.upload.write(data)
        self.assertIsNone(self.successResultOf(self.server.finish_upload(self.alice_session, incoming)))
        return incoming.id

    def download(self, session: Session, offer_id: int, offset: int = 0) -> tuple[events.FileHeader, bytes]:
        """
        Open the offer C{offer_id} for C{session} from C{offset}: the header and the bytes read.
        """
        header, source = self.server.open_download(session, commands.Download(offer_id, offset))
        self.addCleanup(source.close)
        return header, source.read()

    def test_offer_to_nick(self) -> None:
        """
        A finished upload to a nick is acknowledged to the uploader and offered to the nick only.
        """
        offer_id = self.upload("BOB")
        self.assertEqual(self.alice.take(), [{"type": "upload-done", "id": offer_id, "sha256": sha(DATA)}])
        self.assertEqual(self.bob.take(), [{
            "type": "file-offer", "id": offer_id, "from": "alice", "to": "bob", "name": "a file.bin",
            "size": len(DATA), "sha256": sha(DATA), "expires": EXPIRES,
        }])
        self.assertEqual(self.carol.take(), [])

    def test_download(self) -> None:
        """
        The target opens the offered file: the header announces it, and the bytes are the upload's.
        """
        offer_id = self.upload("bob")
        header, data = self.download(self.bob_session, offer_id)
        self.assertEqual(header, events.FileHeader(offer_id, "a file.bin", len(DATA), 0, sha(DATA)))
        self.assertEqual(data, DATA)

    def test_download_from_offset(self) -> None:
        """
        A download from an offset starts there; the end of the file is a valid offset.
        """
        offer_id = self.upload("bob")
        header, data = self.download(self.bob_session, offer_id, 100)
        self.assertEqual(header, events.FileHeader(offer_id, "a file.bin", len(DATA), 100, sha(DATA)))
        self.assertEqual(data, DATA[100:])
        self.assertEqual(self.download(self.bob_session, offer_id, len(DATA))[1], b"")

    def test_offset_past_end(self) -> None:
        """
        An offset past the file's end is C{bad-arguments}.
        """
        offer_id = self.upload("bob")
        refusal = self.assertRaises(
            errors.BadArguments, self.server.open_download, self.bob_session,
            commands.Download(offer_id, len(DATA) + 1),
        )
        self.assertEqual(str(refusal), f"OFFSET is 0 to {len(DATA)}, the file's size")

    def test_not_offered(self) -> None:
        """
        Someone the file was not offered to cannot open it, nor anyone an unknown id.
        """
        offer_id = self.upload("bob")
        self.assertRaises(
            errors.NoSuchFile, self.server.open_download, self.carol_session, commands.Download(offer_id, 0)
        )
        self.assertRaises(
            errors.NoSuchFile, self.server.open_download, self.bob_session, commands.Download(offer_id + 1, 0)
        )

    def test_offer_to_room(self) -> None:
        """
        An upload to a room is offered to its members, who may open it; others neither.
        """
        self.server.execute(self.alice_session, commands.Join("#x"))
        self.server.execute(self.bob_session, commands.Join("#x"))
        self.alice.take()
        self.bob.take()
        self.carol.take()
        offer_id = self.upload("#x")
        [offer] = self.bob.take()
        self.assertEqual((offer["type"], offer["to"], offer["id"]), ("file-offer", "#x", offer_id))
        self.assertEqual(self.alice.types(), ["upload-done", "file-offer"])
        self.assertEqual(self.carol.take(), [])
        self.assertEqual(self.download(self.bob_session, offer_id)[1], DATA)
        self.assertRaises(
            errors.NoSuchFile, self.server.open_download, self.carol_session, commands.Download(offer_id, 0)
        )

    def test_checksum_mismatch(self) -> None:
        """
        Bytes that do not match the announced SHA-256 are refused with C{checksum-mismatch} and not offered.
        """
        offer_id = self.upload("bob", expected="0" * 64)
        [refusal] = self.alice.take()
        self.assertEqual((refusal["type"], refusal["code"]), ("error", "checksum-mismatch"))
        self.assertEqual(self.bob.take(), [])
        self.assertRaises(
            errors.NoSuchFile, self.server.open_download, self.bob_session, commands.Download(offer_id, 0)
        )
        self.assertEqual(self.spool.reserved, 0)

    def test_too_large(self) -> None:
        """
        An upload over C{max_file} is refused with C{file-too-large} before anything is reserved.
        """
        request = commands.Upload("bob", "big.bin", self.settings.max_file + 1, None)
        refusal = self.assertRaises(errors.FileTooLarge, self.server.begin_upload, self.alice_session, request)
        self.assertEqual(str(refusal), f"a file is at most 4096 bytes on this server, not {self.settings.max_file + 1}")
        self.assertEqual(self.alice.take(), [])
        self.assertEqual(self.spool.reserved, 0)

    def test_largest_allowed(self) -> None:
        """
        An upload of exactly C{max_file} bytes is accepted.
        """
        request = commands.Upload("bob", "big.bin", self.settings.max_file, None)
        incoming = self.server.begin_upload(self.alice_session, request)
        self.addCleanup(self.server.abort_upload, incoming)
        self.assertEqual(self.alice.types(), ["upload-ready"])
        self.assertEqual(self.spool.reserved, self.settings.max_file)

    def test_unknown_target(self) -> None:
        """
        An upload to a nick nobody has is refused with C{no-such-nick}.
        """
        request = commands.Upload("nobody", "a.bin", 10, None)
        self.assertRaises(errors.NoSuchNick, self.server.begin_upload, self.alice_session, request)
        self.assertEqual(self.spool.reserved, 0)

    def test_abort(self) -> None:
        """
        An aborted upload frees its reservation and offers nothing.
        """
        incoming = self.server.begin_upload(self.alice_session, commands.Upload("bob", "a.bin", 10, None))
        self.assertEqual(self.spool.reserved, 10)
        incoming.upload.write(b"12345")
        self.server.abort_upload(incoming)
        self.assertEqual(self.spool.reserved, 0)
        self.assertEqual(self.bob.take(), [])


class ShutdownTests(ServerTestCase):
    """
    L{ChatServer.shutdown}: every session is closed; done when all are gone or after the timeout.
    """

    settings = Settings(shutdown_timeout=5.0)

    def test_nobody_connected(self) -> None:
        """
        With no sessions, shutdown is done at once.
        """
        self.assertIsNone(self.successResultOf(self.server.shutdown(self.clock)))

    def test_closes_all_and_fires_when_all_gone(self) -> None:
        """
        Every participant is closed with the reason; the Deferred fires once the last disconnects.
        """
        alice, alice_session = self.user("alice")
        guest, guest_session = self.connect("guest")
        done = self.server.shutdown(self.clock)
        self.assertEqual(alice.closed, ["server shutting down"])
        self.assertEqual(guest.closed, ["server shutting down"])
        self.assertNoResult(done)
        self.server.disconnect(alice_session, "server shutting down")
        self.assertNoResult(done)
        self.server.disconnect(guest_session, "server shutting down")
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reason(self) -> None:
        """
        The participants are closed with the reason given.
        """
        alice, _ = self.connect("alice")
        self.server.shutdown(self.clock, "restarting for an upgrade")
        self.assertEqual(alice.closed, ["restarting for an upgrade"])

    def test_timeout(self) -> None:
        """
        A session that never disconnects holds shutdown back only until C{shutdown_timeout} seconds.
        """
        _, stuck = self.connect("stuck")
        done = self.server.shutdown(self.clock)
        self.clock.advance(4.999)
        self.assertNoResult(done)
        self.clock.advance(0.001)
        self.assertIsNone(self.successResultOf(done))
        # Its late end is taken quietly.
        self.server.disconnect(stuck, "connection lost")
        self.assertEqual(self.server.sessions, {})

"""
Tests for the account commands of L{chat.protocol} (PROTOCOL.md sections 3.3,
4 and 7): C{/register}, C{/login}, C{/password}, nick protection, the
plaintext-authentication rule, take-over of a session and offline private
messages, over L{StringTransport} with time from a L{Clock}. Passwords are
hashed inline with cheap argon2id parameters.
"""

from __future__ import annotations

import re
from typing import cast

import argon2
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from zope.interface import alsoProvides

from chat.accounts import Accounts, PasswordHasher
from chat.memory_store import MemoryStore
from chat.protocol import ChatFactory
from chat.server import ChatServer
from chat.settings import Settings
from tests.support import (
    START,
    TS,
    Client,
    ProtocolTestCase,
    RecordingTransport,
    error_text,
    registered_text,
)
from tests.test_accounts import PendingHasher, cheap

REMOTE = "192.0.2.7"
"""A peer address that is not this machine (TEST-NET-1)."""

NEEDS_TLS = error_text(
    "auth-needs-tls",
    "passwords are accepted only over TLS (or from this machine): connect with TLS or use /starttls",
)
WRONG = error_text("auth-failed", "wrong nick or password")


def logged_in_text(nick: str, others: tuple[str, ...] = (), operator: str | None = None) -> bytes:
    """
    What a text connection is sent when it logs in as C{nick} before
    registering, into C{#lobby} where C{others} already are (the operator
    as for L{registered_text}).
    """
    return registered_text(nick, others, operator).replace(
        f"*** You are {nick}.".encode(), f"*** You are {nick}, logged in to your account.".encode(), 1
    )


def account_line(nick: str) -> bytes:
    """
    The text C{registered} line for a connection now logged in as C{nick}.
    """
    return f"*** You are {nick}, logged in to your account. Type to talk, /help for commands.\r\n".encode()


class TLSClient(Client):
    """
    A L{Client} whose transport provides L{ISSLTransport}, as a TLS connection's does.
    """

    def __init__(self, factory: ChatFactory, host: str, port: int) -> None:
        address = IPv4Address("TCP", host, port)
        self.transport = RecordingTransport(address)
        alsoProvides(self.transport, ISSLTransport)
        self.protocol = factory.buildProtocol(address)
        self.protocol.makeConnection(self.transport)


class AccountsTestCase(ProtocolTestCase):
    """
    A factory whose accounts hash inline with cheap argon2id parameters over
    a L{MemoryStore}, and helpers to create accounts and log in.
    """

    @staticmethod
    def make_factory(settings: Settings) -> tuple[Clock, ChatFactory]:
        clock = Clock()
        clock.advance(START)
        store = MemoryStore()
        accounts = Accounts(store, PasswordHasher(None, hasher=cheap()), clock)
        return clock, ChatFactory(ChatServer(settings, clock, store, accounts))

    def create_account(self, name: str, password: str = "password1", factory: ChatFactory | None = None) -> None:
        """
        Create the account C{name} as C{/register} would, with nobody logged in to it.
        """
        server = (factory or self.factory).server
        self.successResultOf(server.accounts.create(name, password, START))
        server.domain.account_created(name, None)

    def login_user(
        self, nick: str, password: str = "password1", host: str = "127.0.0.1", json: bool = False
    ) -> Client:
        """
        A connection logged in to C{nick} with C{/login}, its output cleared.
        """
        client = self.connect(host)
        if json:
            client.line("/format json")
        client.line(f"/login {nick} {password}")
        client.take()
        return client

    def use_pending_hasher(self) -> PendingHasher:
        """
        Replace the factory with one whose hashes complete when the test
        fires them, with the account C{alice} (password C{password1}).

        @return: the hasher, whose C{calls} are the hashes under way.
        """
        pending = PendingHasher()
        self.clock = Clock()
        self.clock.advance(START)
        store = MemoryStore()
        self.successResultOf(store.create_account("alice", cheap().hash("password1"), START))
        hasher = PasswordHasher(None, hasher=cast(argon2.PasswordHasher, pending))
        self.factory = ChatFactory(ChatServer(self.settings, self.clock, store, Accounts(store, hasher, self.clock)))
        self.server = self.factory.server
        return pending

    def password_of(self, name: str) -> str:
        record = self.successResultOf(self.server.store.account(name))
        assert record is not None
        return record.password


class RegisterTests(AccountsTestCase):
    """
    C{/register PASSWORD}: an account for the current nick.
    """

    def test_register_json(self) -> None:
        """
        C{/register} answers C{registered} with C{account} true, then an C{info}.
        """
        alice = self.json_user("alice")
        alice.line("/register password1")
        self.assertEqual(
            alice.take_json(),
            [
                {"type": "registered", "nick": "alice", "account": True},
                {"type": "info", "text": "Account alice created: from now on log in with /login alice PASSWORD"},
            ],
        )
        self.assertTrue(cheap().verify(self.password_of("ALICE"), "password1"))

    def test_register_text(self) -> None:
        """
        In text the new account is announced in two lines; nobody else is told.
        """
        bob = self.text_user("bob")
        alice = self.text_user("Alice")
        bob.take()
        alice.line("/register password1")
        self.assertEqual(
            alice.take(),
            account_line("Alice") + b"*** Account Alice created: from now on log in with /login Alice PASSWORD\r\n",
        )
        self.assertEqual(bob.take(), b"")

    def test_register_then_whois(self) -> None:
        """
        After C{/register} the user shows as logged in.
        """
        alice = self.json_user("alice")
        alice.line("/register password1")
        alice.take()
        alice.line("/whois alice")
        [whois] = alice.take_json()
        self.assertIs(whois["account"], True)

    def test_register_twice(self) -> None:
        """
        C{/register} when logged in already is C{nick-registered}, and keeps the password.
        """
        alice = self.text_user("alice")
        alice.line("/register password1")
        alice.take()
        alice.line("/register password2")
        self.assertEqual(
            alice.take(), error_text("nick-registered", "you are logged in to the account alice already")
        )
        self.assertTrue(cheap().verify(self.password_of("alice"), "password1"))

    def test_register_short_password(self) -> None:
        """
        A password shorter than 8 characters is C{bad-arguments}; no account is made.
        """
        alice = self.text_user("alice")
        alice.line("/register short")
        self.assertEqual(
            alice.take(), error_text("bad-arguments", "a password is 8 to 256 characters, without spaces")
        )
        self.assertIsNone(self.successResultOf(self.server.store.account("alice")))
        self.assertNotIn("alice", self.server.domain.accounts)

    def test_register_usage(self) -> None:
        """
        C{/register} without a password, or with spaces in it, is C{bad-arguments}.
        """
        alice = self.text_user("alice")
        for line in ["/register", "/register two words"]:
            alice.line(line)
            self.assertEqual(alice.take(), error_text("bad-arguments", "usage: /register PASSWORD"))

    def test_register_before_nick(self) -> None:
        """
        C{/register} before choosing a nick is C{not-registered}.
        """
        client = self.connect()
        client.take()
        client.line("/register password1")
        self.assertEqual(client.take(), error_text("not-registered", "choose a nick before /register: /nick NAME"))

    def test_lines_held_while_hashing(self) -> None:
        """
        Lines after C{/register} wait until its password is hashed, then run in order.
        """
        pending = self.use_pending_hasher()
        bob = self.text_user("bob")
        bob.send(b"/register password1\r\nhello\r\n")
        self.assertEqual(bob.take(), b"")
        bob.line("/ping 1")
        self.assertEqual(bob.take(), b"")
        pending.calls[0].callback(cheap().hash("password1"))
        self.assertEqual(
            bob.take(),
            account_line("bob")
            + b"*** Account bob created: from now on log in with /login bob PASSWORD\r\n"
            + b"[14:02] #lobby <bob> hello\r\n*** pong 1\r\n",
        )

    def test_register_completing_after_disconnect(self) -> None:
        """
        An account whose hashing ends after its creator left is still created, and nobody is logged in.
        """
        pending = self.use_pending_hasher()
        bob = self.text_user("bob")
        bob.line("/register password1")
        bob.lose()
        pending.calls[0].callback(cheap().hash("password1"))
        self.assertEqual(self.server.domain.accounts, {"alice": "alice", "bob": "bob"})
        self.assertIsNotNone(self.successResultOf(self.server.store.account("bob")))
        self.assertNotIn("bob", self.server.domain.users)

    def test_nick_taken_while_hashing(self) -> None:
        """
        A guest who took the nick while its account was being created does not keep the owner out of it.
        """
        # The nick is reserved while the account is being created.
        pending = self.use_pending_hasher()
        creator = self.text_user("bob")
        creator.line("/register password1")
        creator.lose()
        self.text_user("bob")
        pending.calls[0].callback(cheap().hash("password1"))
        owner = self.connect()
        owner.take()
        owner.line("/login bob password1")
        pending.calls[1].callback(True)
        self.assertTrue(owner.take().startswith(account_line("bob")))


class NickProtectionTests(AccountsTestCase):
    """
    A registered nick is reserved for whoever logs in to it (PROTOCOL.md section 3.3).
    """

    def setUp(self) -> None:
        super().setUp()
        self.create_account("Alice")

    def test_nick_command(self) -> None:
        """
        A guest's C{/nick} with a registered nick, in any case, is C{nick-registered}.
        """
        client = self.connect()
        client.take()
        client.line("/nick aLiCe")
        self.assertEqual(
            client.take(), error_text("nick-registered", "aLiCe is a registered nick: /login aLiCe PASSWORD")
        )
        client.line("/rooms")
        self.assertEqual(client.take(), error_text("not-registered", "choose a nick before /rooms: /nick NAME"))

    def test_first_text_line(self) -> None:
        """
        A registered nick as the bare first line is C{nick-registered}; another nick then works.
        """
        client = self.connect()
        client.take()
        client.line("alice")
        self.assertEqual(
            client.take(), error_text("nick-registered", "alice is a registered nick: /login alice PASSWORD")
        )
        client.line("bob")
        self.assertEqual(client.take(), registered_text("bob"))

    def test_nick_change(self) -> None:
        """
        A registered guest cannot change to a registered nick; nobody sees a change.
        """
        bob = self.text_user("bob")
        carol = self.text_user("carol")
        bob.take()
        bob.line("/nick ALICE")
        self.assertEqual(bob.take(), error_text("nick-registered", "ALICE is a registered nick: /login ALICE PASSWORD"))
        self.assertEqual(carol.take(), b"")
        self.assertIn("bob", self.server.domain.users)

    def test_json(self) -> None:
        """
        In json the refusal is an C{error} object with code C{nick-registered}.
        """
        client = self.connect()
        client.line("/format json")
        client.take()
        client.line("/nick alice")
        self.assertEqual(
            client.take_json(),
            [{"type": "error", "code": "nick-registered",
              "message": "alice is a registered nick: /login alice PASSWORD"}],
        )


class LoginTests(AccountsTestCase):
    """
    C{/login NICK PASSWORD}, before and after registering as a guest.
    """

    def setUp(self) -> None:
        super().setUp()
        self.create_account("Alice")

    def test_login_before_registering(self) -> None:
        """
        C{/login} registers the connection with the account's spelling and joins C{#lobby}.
        """
        carol = self.text_user("carol")
        client = self.connect()
        client.take()
        client.line("/login alice password1")
        self.assertEqual(client.take(), logged_in_text("Alice", ("carol",)))
        self.assertEqual(carol.take(), b"[14:02] * Alice joined #lobby\r\n")

    def test_login_json(self) -> None:
        """
        In json, C{/login} gives C{registered} with C{account} true, then the C{#lobby} join.
        """
        client = self.connect()
        client.line("/format json")
        client.take()
        client.line("/login ALICE password1")
        self.assertEqual(
            client.take_json(),
            [
                {"type": "registered", "nick": "Alice", "account": True},
                {"type": "join", "ts": TS, "room": "#lobby", "nick": "Alice"},
                {"type": "role", "room": "#lobby", "nick": "Alice", "role": "operator", "by": ""},
                {"type": "users", "room": "#lobby", "count": 1,
                 "users": [{"nick": "Alice", "status": "", "idle": 0, "role": "operator"}]},
                {"type": "history", "room": "#lobby", "messages": []},
            ],
        )

    def test_login_after_guest(self) -> None:
        """
        A guest logging in is renamed to the account's nick; room-mates get a C{nick} event.
        """
        bob = self.text_user("bob")
        carol = self.json_user("carol")
        bob.take()
        bob.line("/login alice password1")
        self.assertEqual(bob.take(), b"[14:02] * bob is now known as Alice\r\n" + account_line("Alice"))
        self.assertEqual(carol.take_json(), [{"type": "nick", "ts": TS, "old": "bob", "new": "Alice"}])
        self.assertEqual(sorted(self.server.domain.users), ["alice", "carol"])

    def test_login_again(self) -> None:
        """
        Logging in again to the account one is logged in to only repeats C{registered}.
        """
        bob = self.login_user("alice")
        bob.line("/login alice password1")
        self.assertEqual(bob.take(), account_line("Alice"))
        self.assertEqual(list(self.server.domain.users), ["alice"])

    def test_wrong_password_delayed(self) -> None:
        """
        A wrong password or unknown nick is answered C{auth-failed} only after 1 s; the client stays unregistered.
        """
        for line in ["/login alice password2", "/login mallory password1"]:
            client = self.connect()
            client.take()
            client.line(line)
            self.assertEqual(client.take(), b"")
            self.clock.advance(0.999)
            self.assertEqual(client.take(), b"")
            self.clock.advance(0.001)
            self.assertEqual(client.take(), WRONG)
            self.assertIsNone(client.protocol.session.user)

    def test_wrong_password_json(self) -> None:
        """
        In json the refusal is an C{error} object with code C{auth-failed}.
        """
        client = self.connect()
        client.line("/format json")
        client.take()
        client.line("/login alice password2")
        self.clock.advance(1)
        self.assertEqual(
            client.take_json(), [{"type": "error", "code": "auth-failed", "message": "wrong nick or password"}]
        )

    def test_pipelined_lines_wait_for_failed_login(self) -> None:
        """
        Lines sent with a failing C{/login} in one packet run only after its answer, in order.
        """
        bob = self.text_user("bob")
        bob.send(b"/login alice wrong-password\r\n/join #x\r\nhello\r\n")
        self.assertEqual(bob.take(), b"")
        self.assertNotIn("#x", self.server.domain.rooms)
        bob.send(b"/ping 1\r\n")
        self.assertEqual(bob.take(), b"")
        self.clock.advance(1)
        self.assertEqual(
            bob.take(),
            WRONG
            + b"[14:02] * bob joined #x\r\n* bob is an operator of #x\r\n* 1 user in #x:\r\n*   @bob (idle 1s)\r\n"
            + b"[14:02] #x <bob> hello\r\n*** pong 1\r\n",
        )

    def test_pipelined_nick_after_failed_login(self) -> None:
        """
        A client that pipelines a fallback nick after a failing C{/login} gets the error, then that nick.
        """
        client = self.connect()
        client.take()
        client.send(b"/login alice wrong-password\r\nbob\r\n")
        self.assertEqual(client.take(), b"")
        self.assertNotIn("bob", self.server.domain.users)
        self.clock.advance(1)
        self.assertEqual(client.take(), WRONG + registered_text("bob"))

    def test_pipelined_lines_after_login(self) -> None:
        """
        Lines sent with a successful C{/login} run after it, as the logged-in user.
        """
        client = self.connect()
        client.take()
        client.send(b"/login alice password1\r\n/join #x\r\nhello\r\n")
        self.assertEqual(
            client.take(),
            logged_in_text("Alice")
            + b"[14:02] * Alice joined #x\r\n* Alice is an operator of #x\r\n"
            + b"* 1 user in #x:\r\n*   @Alice (idle 0s)\r\n"
            + b"[14:02] #x <Alice> hello\r\n",
        )

    def test_too_many_failures(self) -> None:
        """
        After 5 failures the nick is refused at once, right password or not, with C{auth-failed} saying when to retry.
        """
        client = self.connect()
        client.take()
        for _ in range(5):
            client.line("/login alice wrong-password")
            self.clock.advance(1)
            self.assertEqual(client.take(), WRONG)
        for password in ["wrong-password", "password1"]:
            client.line(f"/login alice {password}")
            text = client.take().decode()
            self.assertRegex(
                text, r"^\*\*\* Error: too many failed logins for alice: try again in \d+ s \(auth-failed\)\r\n$"
            )
        self.assertIsNone(client.protocol.session.user)
        wait = re.search(r"in (\d+) s", text)
        assert wait is not None
        self.clock.advance(int(wait.group(1)))
        retry = self.connect()  # the first may have met the registration timeout meanwhile
        retry.take()
        retry.line("/login alice password1")
        self.assertTrue(retry.take().startswith(account_line("Alice")))

    def test_login_usage(self) -> None:
        """
        C{/login} without exactly a nick and a password is C{bad-arguments}, answered at once.
        """
        client = self.connect()
        client.take()
        for line in ["/login", "/login alice", "/login alice pass word"]:
            client.line(line)
            self.assertEqual(client.take(), error_text("bad-arguments", "usage: /login NICK PASSWORD [--no-join]"))

    def test_login_completing_after_disconnect(self) -> None:
        """
        A login whose check ends after the connection closed registers nobody and tells nobody.
        """
        pending = self.use_pending_hasher()
        carol = self.text_user("carol")
        client = self.connect()
        client.line("/login alice password1")
        client.lose()
        pending.calls[0].callback(True)
        self.assertEqual(carol.take(), b"")
        self.assertEqual(list(self.server.domain.users), ["carol"])


class ParallelLoginTests(AccountsTestCase):
    """
    Many C{/login}s at once, on as many connections, while their password checks are pending (PROTOCOL.md
    section 8: an attempt is counted before its password is checked, and a nick never waits longer than one period).
    """

    def setUp(self) -> None:
        super().setUp()
        self.pending = self.use_pending_hasher()

    def burst(self, line: str, count: int, hosts: list[str]) -> list[Client]:
        """
        C{count} connections, spread over C{hosts} in turn, each sending C{line} at once.
        """
        clients = []
        for index in range(count):
            client = self.connect(hosts[index % len(hosts)])
            client.take()
            client.line(line)
            clients.append(client)
        return clients

    def test_parallel_guesses_checked_at_most_five(self) -> None:
        """
        60 guesses for one nick from two addresses at once: 5 passwords are checked, the 55 others are refused at
        once with C{auth-failed} saying to wait 61 s.
        """
        clients = self.burst("/login alice wrong-password", 60, ["127.0.0.2", "127.0.0.3"])
        self.assertEqual(len(self.pending.calls), 5)
        for client in clients[:5]:
            self.assertEqual(client.take(), b"")
        refused = error_text("auth-failed", "too many failed logins for alice: try again in 61 s")
        for client in clients[5:]:
            self.assertEqual(client.take(), refused)
        for call in self.pending.calls:
            call.callback(False)
        self.clock.advance(1)
        for client in clients[:5]:
            self.assertEqual(client.take(), WRONG)

    def test_owner_not_locked_out_by_a_burst(self) -> None:
        """
        After a burst of 60 failed guesses from two addresses, the owner from a third waits at most 60 s, then logs in.
        """
        self.burst("/login alice wrong-password", 60, ["127.0.0.2", "127.0.0.3"])
        for call in self.pending.calls:
            call.callback(False)
        self.clock.advance(1)
        owner = self.connect("127.0.0.4")
        owner.take()
        owner.line("/login alice password1")
        text = owner.take().decode()
        wait = re.fullmatch(
            r"\*\*\* Error: too many failed logins for alice: try again in (\d+) s \(auth-failed\)\r\n", text
        )
        assert wait is not None, text
        self.assertLessEqual(int(wait.group(1)), 60)
        self.clock.advance(59)
        again = self.connect("127.0.0.4")
        again.take()
        again.line("/login alice password1")
        self.assertEqual(len(self.pending.calls), 6)
        self.pending.calls[-1].callback(True)
        self.assertTrue(again.take().startswith(account_line("alice")))

    def test_burst_of_logins_does_not_stall_the_chat(self) -> None:
        """
        200 logins to 200 accounts at once: 64 are checked, the others get C{busy} at once, and the chat goes on.
        """
        for index in range(200):
            self.successResultOf(self.server.store.create_account(f"user{index}", "encoded", START))
        bob = self.text_user("bob")
        carol = self.text_user("carol")
        bob.take()
        clients = []
        for index in range(200):
            client = self.connect(f"127.0.0.{2 + index % 10}")
            client.take()
            client.line(f"/login user{index} password1")
            clients.append(client)
        self.assertEqual(len(self.pending.calls), 64)
        busy = error_text("busy", "the server is busy checking passwords; try again in a moment")
        for client in clients[64:]:
            self.assertEqual(client.take(), busy)
        bob.line("hello")
        bob.line("/ping 1")
        self.assertEqual(bob.take(), b"[14:02] #lobby <bob> hello\r\n*** pong 1\r\n")
        self.assertEqual(carol.take(), b"[14:02] #lobby <bob> hello\r\n")
        for call in self.pending.calls:
            call.callback(True)
        for index, client in enumerate(clients[:64]):
            self.assertTrue(client.take().startswith(f"*** You are user{index}, logged in".encode()))


class PasswordTests(AccountsTestCase):
    """
    C{/password OLD NEW}: changing a logged-in account's password.
    """

    def setUp(self) -> None:
        super().setUp()
        self.create_account("alice")

    def test_change(self) -> None:
        """
        The right old password changes it: the new one logs in, the old one fails.
        """
        alice = self.login_user("alice")
        alice.line("/password password1 new-password")
        self.assertEqual(alice.take(), b"*** Your password is changed\r\n")
        self.assertTrue(cheap().verify(self.password_of("alice"), "new-password"))
        alice.line("/quit")
        alice.lose()
        again = self.connect()
        again.take()
        again.line("/login alice password1")
        self.clock.advance(1)
        self.assertEqual(again.take(), WRONG)
        again.line("/login alice new-password")
        self.assertEqual(again.take(), logged_in_text("alice"))

    def test_change_after_register(self) -> None:
        """
        C{/password} works right after C{/register}, for the account's spelling.
        """
        bob = self.text_user("Bob")
        bob.line("/register password1")
        bob.take()
        bob.line("/password password1 new-password")
        self.assertEqual(bob.take(), b"*** Your password is changed\r\n")
        self.assertTrue(cheap().verify(self.password_of("bob"), "new-password"))

    def test_wrong_old(self) -> None:
        """
        A wrong old password is C{auth-failed} after 1 s, and the password is unchanged.
        """
        alice = self.login_user("alice")
        before = self.password_of("alice")
        alice.line("/password password2 new-password")
        self.assertEqual(alice.take(), b"")
        self.clock.advance(1)
        self.assertEqual(alice.take(), WRONG)
        self.assertEqual(self.password_of("alice"), before)

    def test_short_new(self) -> None:
        """
        A new password that is too short is C{bad-arguments}.
        """
        alice = self.login_user("alice")
        alice.line("/password password1 short")
        self.assertEqual(
            alice.take(), error_text("bad-arguments", "a password is 8 to 256 characters, without spaces")
        )

    def test_not_logged_in(self) -> None:
        """
        C{/password} from a guest is C{auth-failed}.
        """
        bob = self.text_user("bob")
        bob.line("/password password1 new-password")
        self.assertEqual(
            bob.take(), error_text("auth-failed", "you are not logged in: /register or /login first")
        )

    def test_before_nick(self) -> None:
        """
        C{/password} before choosing a nick is C{not-registered}.
        """
        client = self.connect()
        client.take()
        client.line("/password password1 new-password")
        self.assertEqual(client.take(), error_text("not-registered", "choose a nick before /password: /nick NAME"))

    def test_usage(self) -> None:
        """
        C{/password} without exactly two words is C{bad-arguments}.
        """
        alice = self.login_user("alice")
        for line in ["/password", "/password password1", "/password a b c"]:
            alice.line(line)
            self.assertEqual(alice.take(), error_text("bad-arguments", "usage: /password OLD NEW"))


class PlaintextTests(AccountsTestCase):
    """
    PROTOCOL.md section 7: passwords over plain TCP only from this machine,
    unless the operator allows it or the connection is TLS.
    """

    def setUp(self) -> None:
        super().setUp()
        self.create_account("alice")

    def test_login_refused(self) -> None:
        """
        C{/login} from a remote plain connection is C{auth-needs-tls} at once; the next line runs.
        """
        client = self.connect(REMOTE)
        client.take()
        client.send(b"/login alice password1\r\n/ping 1\r\n")
        self.assertEqual(client.take(), NEEDS_TLS + b"*** pong 1\r\n")
        self.assertIsNone(client.protocol.session.user)

    def test_register_refused(self) -> None:
        """
        C{/register} from a remote plain connection is C{auth-needs-tls}; no account is made.
        """
        bob = self.text_user("bob", REMOTE)
        bob.line("/register password1")
        self.assertEqual(bob.take(), NEEDS_TLS)
        self.assertIsNone(self.successResultOf(self.server.store.account("bob")))

    def test_password_refused(self) -> None:
        """
        C{/password} from a remote plain connection is C{auth-needs-tls}; the password is unchanged.
        """
        bob = self.text_user("bob", REMOTE)
        user = bob.protocol.session.user
        assert user is not None
        self.server.domain.login(user, "alice", START)
        self.factory.batch.flush()
        bob.take()
        before = self.password_of("alice")
        bob.line("/password password1 new-password")
        self.assertEqual(bob.take(), NEEDS_TLS)
        self.assertEqual(self.password_of("alice"), before)

    def test_loopback_allowed(self) -> None:
        """
        Any 127.0.0.0/8 peer may log in over plain TCP.
        """
        client = self.connect("127.0.0.2")
        client.take()
        client.line("/login alice password1")
        self.assertEqual(client.take(), logged_in_text("alice"))

    def test_allowed_by_setting(self) -> None:
        """
        With C{allow_plaintext_auth}, a remote plain connection may register, log in and change its password.
        """
        self.clock, self.factory = self.make_factory(Settings(flood_burst=10_000, allow_plaintext_auth=True))
        self.create_account("alice")
        client = self.connect(REMOTE)
        client.take()
        client.line("/login alice password1")
        self.assertEqual(client.take(), logged_in_text("alice"))
        client.line("/password password1 new-password")
        self.assertEqual(client.take(), b"*** Your password is changed\r\n")
        bob = self.text_user("bob", REMOTE)
        bob.line("/register password1")
        self.assertEqual(
            bob.take(),
            account_line("bob") + b"*** Account bob created: from now on log in with /login bob PASSWORD\r\n",
        )

    def test_allowed_over_tls(self) -> None:
        """
        A remote connection whose transport is TLS may log in, register and change its password.
        """
        client = TLSClient(self.factory, REMOTE, 5555)
        client.take()
        client.line("/login alice password1")
        self.assertEqual(client.take(), logged_in_text("alice"))
        client.line("/password password1 new-password")
        self.assertEqual(client.take(), b"*** Your password is changed\r\n")
        client.line("/whois alice")
        self.assertIn(b"*   logged in, TLS\r\n", client.take())
        bob = TLSClient(self.factory, REMOTE, 5556)
        bob.line("bob")
        bob.take()
        bob.line("/register password1")
        self.assertEqual(
            bob.take(),
            account_line("bob") + b"*** Account bob created: from now on log in with /login bob PASSWORD\r\n",
        )


class TakeOverTests(AccountsTestCase):
    """
    Logging in to an account that another connection is logged in to takes the session over.
    """

    def setUp(self) -> None:
        super().setUp()
        self.create_account("alice")
        self.first = self.login_user("alice")
        self.carol = self.text_user("carol")
        self.first.take()

    def test_take_over(self) -> None:
        """
        The first connection gets C{bye} and is closed, others see it quit, the second gets the nick.
        """
        second = self.connect()
        second.take()
        second.line("/login alice password1")
        reason = "you logged in from another connection"
        self.assertEqual(self.first.take(), f"*** Bye: {reason}\r\n".encode())
        self.assertTrue(self.first.transport.disconnecting)
        # alice, the first in #lobby and logged in, is its operator for good
        self.assertEqual(second.take(), logged_in_text("alice", ("carol",), operator="alice"))
        self.assertEqual(
            self.carol.take(),
            f"[14:02] * alice quit ({reason})\r\n[14:02] * alice joined #lobby\r\n"
            "* alice is an operator of #lobby\r\n".encode(),
        )
        self.first.lose()
        self.assertEqual(self.carol.take(), b"")
        second.line("still here")
        self.assertEqual(self.carol.take(), b"[14:02] #lobby <alice> still here\r\n")
        self.assertIs(self.server.domain.users["alice"].participant, second.protocol)

    def test_take_over_by_guest(self) -> None:
        """
        A guest taking over the account is renamed once the first session has quit.
        """
        bob = self.text_user("bob")
        self.carol.take()
        self.first.take()
        bob.line("/login alice password1")
        self.assertEqual(self.first.take(), b"*** Bye: you logged in from another connection\r\n")
        self.assertEqual(
            self.carol.take(),
            b"[14:02] * alice quit (you logged in from another connection)\r\n"
            b"[14:02] * bob is now known as alice\r\n"
            b"* alice is an operator of #lobby\r\n",  # the account's role follows the login
        )
        self.assertEqual(
            bob.take(),
            b"[14:02] * alice quit (you logged in from another connection)\r\n"
            b"[14:02] * bob is now known as alice\r\n" + account_line("alice")
            + b"* alice is an operator of #lobby\r\n",
        )

    def test_take_over_after_nick_change(self) -> None:
        """
        A session of the account that changed its nick is taken over too: one session per account.
        """
        self.first.line("/nick alice2")
        self.first.take()
        second = self.connect()
        second.line("/login alice password1")
        self.assertEqual(self.first.take(), b"*** Bye: you logged in from another connection\r\n")
        self.assertEqual([u.nick for u in self.server.domain.users.values() if u.account == "alice"], ["alice"])


class OfflineMessageTests(AccountsTestCase):
    """
    Private messages to a registered user who is away wait for their next login.
    """

    def setUp(self) -> None:
        super().setUp()
        self.create_account("Alice")
        self.bob = self.json_user("bob")

    def test_stored_for_offline_account(self) -> None:
        """
        The sender gets its C{private} echo with C{offline} true, then an C{info} saying it was stored.
        """
        self.bob.line("/msg alice see you later")
        private, info = self.bob.take_json()
        self.assertEqual(
            private,
            {"type": "private", "id": private["id"], "ts": TS, "from": "bob", "to": "Alice",
             "text": "see you later", "action": False, "offline": True},
        )
        self.assertIsInstance(private["id"], int)
        self.assertEqual(
            info,
            {"type": "info", "text": "Alice is away: your message is stored and will be delivered when they log in"},
        )

    def test_delivered_at_login_once(self) -> None:
        """
        At login the recipient gets an C{info} then the waiting messages, oldest first, and not at the next login.
        """
        self.bob.line("/msg alice first")
        self.bob.line("/msg ALICE second")
        ids = [event["id"] for event in self.bob.take_json() if event["type"] == "private"]
        alice = self.connect()
        alice.line("/format json")
        alice.take()
        alice.line("/login alice password1")
        received = alice.take_json()
        self.assertEqual(
            [event["type"] for event in received],
            ["registered", "join", "users", "history", "info", "private", "private"],
        )
        self.assertEqual(received[4], {"type": "info", "text": "2 private messages arrived while you were away"})
        self.assertEqual(
            received[5:],
            [
                {"type": "private", "id": ids[0], "ts": TS, "from": "bob", "to": "Alice", "text": "first",
                 "action": False, "offline": True},
                {"type": "private", "id": ids[1], "ts": TS, "from": "bob", "to": "Alice", "text": "second",
                 "action": False, "offline": True},
            ],
        )
        alice.line("/quit")
        alice.lose()
        again = self.connect()
        again.line("/format json")
        again.take()
        again.line("/login alice password1")
        self.assertEqual([event["type"] for event in again.take_json()], ["registered", "join", "users", "history"])

    def test_delivered_in_text(self) -> None:
        """
        In text the waiting message is shown with its date and marked as an offline message.
        """
        self.bob.line("/msg alice hi there")
        self.clock.advance(3600)
        alice = self.connect()
        alice.take()
        alice.line("/login alice password1")
        self.assertEqual(
            alice.take(),
            account_line("Alice")
            + b"[15:02] * Alice joined #lobby\r\n"
            + b"* 2 users in #lobby:\r\n*   Alice (idle 0s)\r\n*   @bob (idle 1h00m)\r\n"
            + b"*** 1 private message arrived while you were away\r\n"
            + b"[2025-11-21 14:02] [private bob -> Alice] hi there (offline message)\r\n",
        )

    def test_delivered_after_guest_login(self) -> None:
        """
        A guest who logs in to the account gets its waiting messages too.
        """
        self.bob.line("/msg alice hi there")
        carol = self.text_user("carol")
        carol.line("/login alice password1")
        self.assertEqual(
            carol.take(),
            b"[14:02] * carol is now known as Alice\r\n"
            + account_line("Alice")
            + b"*** 1 private message arrived while you were away\r\n"
            + b"[2025-11-21 14:02] [private bob -> Alice] hi there (offline message)\r\n",
        )

    def test_online_account_not_offline(self) -> None:
        """
        To a logged-in recipient the message is live (C{offline} false) and not delivered again at next login.
        """
        alice = self.login_user("alice")
        self.bob.take()
        self.bob.line("/msg alice now")
        self.assertEqual(alice.take(), b"[14:02] [private bob -> Alice] now\r\n")
        [echo] = self.bob.take_json()
        self.assertIs(echo["offline"], False)
        alice.lose()
        again = self.login_user("alice", json=False)
        again.line("/ping")
        self.assertEqual(again.take(), b"*** pong\r\n")
        self.assertEqual(self.successResultOf(self.server.store.waiting("alice")), [])

    def test_unknown_unregistered_nick(self) -> None:
        """
        C{/msg} to a nick neither connected nor registered is C{no-such-nick}, and nothing is stored.
        """
        self.bob.line("/msg nobody hello")
        self.assertEqual(
            self.bob.take_json(), [{"type": "error", "code": "no-such-nick", "message": "nobody is not connected"}]
        )
        self.assertEqual(self.successResultOf(self.server.store.waiting("nobody")), [])


class WhoisAndHelpTests(AccountsTestCase):
    """
    C{/whois} tells logged-in from guest; C{/help} lists C{/password}.
    """

    def test_whois_account(self) -> None:
        """
        C{/whois} shows C{account} true for a logged-in user and false for a guest.
        """
        self.create_account("alice")
        self.login_user("alice")
        bob = self.json_user("bob")
        bob.line("/whois alice")
        bob.line("/whois bob")
        alice_info, bob_info = bob.take_json()
        self.assertEqual(
            alice_info,
            {"type": "whois", "nick": "alice", "status": "", "rooms": ["#lobby"], "since": TS,
             "idle": 0, "account": True, "secure": False},
        )
        self.assertIs(bob_info["account"], False)

    def test_whois_text(self) -> None:
        """
        In text C{/whois} says "logged in" for an account.
        """
        self.create_account("alice")
        alice = self.login_user("alice")
        alice.line("/whois alice")
        self.assertEqual(
            alice.take(),
            b"* alice\r\n*   rooms: #lobby\r\n*   connected since 2025-11-21 14:02 UTC, idle 0s\r\n"
            b"*   logged in, not encrypted\r\n",
        )

    def test_help_lists_password(self) -> None:
        """
        C{/help} lists C{/register}, C{/login} and C{/password}; C{/help password} explains it.
        """
        bob = self.text_user("bob")
        bob.line("/help")
        lines = bob.take().decode().split("\r\n")
        for usage, what in [
            ("/register PASSWORD", "creates an account for your nick"),
            ("/login NICK PASSWORD [--no-join]", "logs in to an account (joining #lobby, unless --no-join)"),
            ("/password OLD NEW", "changes your account's password"),
        ]:
            self.assertTrue(
                any(re.fullmatch(rf"\*\*\*   {re.escape(usage)} +{re.escape(what)}", line) for line in lines), usage
            )
        bob.line("/help password")
        self.assertEqual(bob.take(), b"*** /password OLD NEW: changes your account's password\r\n")


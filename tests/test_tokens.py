"""
Tests for L{chat.tokens}: the bearer tokens of the HTTP file routes
(PROTOCOL.md section 9), with literal times.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from chat.tokens import GRACE, Tokens

T0 = 1_700_000_000.0


class TokensTests(SynchronousTestCase):
    """
    L{Tokens}: issue, find, ended and the grace after a session ends.
    """

    def setUp(self) -> None:
        self.tokens = Tokens()
        self.session = object()

    def test_issue_is_long_and_random(self) -> None:
        """
        A token has at least 128 random bits (32 URL-safe characters) and two sessions get different ones.
        """
        first = self.tokens.issue(self.session)
        second = self.tokens.issue(object())
        self.assertGreaterEqual(len(first), 32)
        self.assertNotEqual(first, second)
        self.assertEqual(len(self.tokens), 2)

    def test_same_token_for_a_session(self) -> None:
        """
        Issuing again for the same session gives the same token, not a second one.
        """
        token = self.tokens.issue(self.session)
        self.assertEqual(self.tokens.issue(self.session), token)
        self.assertEqual(len(self.tokens), 1)

    def test_find_live_session(self) -> None:
        """
        A live session's token stands for that session, with no expiry.
        """
        token = self.tokens.issue(self.session)
        bearer = self.tokens.find(token, T0)
        assert bearer is not None
        self.assertIs(bearer.session, self.session)
        self.assertEqual(bearer.expires, float("inf"))

    def test_unknown_token(self) -> None:
        """
        A token never issued (or the empty string) stands for nobody.
        """
        self.tokens.issue(self.session)
        self.assertIsNone(self.tokens.find("not-a-token", T0))
        self.assertIsNone(self.tokens.find("", T0))

    def test_ended_keeps_nick_and_rooms_for_grace(self) -> None:
        """
        After its session ends a token stands for the nick and rooms given, until GRACE seconds later.
        """
        token = self.tokens.issue(self.session)
        self.tokens.ended(self.session, "alice", ["#lobby", "#x"], T0)
        bearer = self.tokens.find(token, T0 + GRACE - 1)
        assert bearer is not None
        self.assertIsNone(bearer.session)
        self.assertEqual(
            (bearer.nick, bearer.rooms, bearer.expires), ("alice", frozenset({"#lobby", "#x"}), T0 + GRACE)
        )

    def test_grace_expiry(self) -> None:
        """
        GRACE (10 minutes) after the session ended the token is refused, and forgotten.
        """
        self.assertEqual(GRACE, 600.0)
        token = self.tokens.issue(self.session)
        self.tokens.ended(self.session, "alice", ["#lobby"], T0)
        self.assertIsNone(self.tokens.find(token, T0 + GRACE))
        self.assertEqual(len(self.tokens), 0)

    def test_ended_without_token(self) -> None:
        """
        Ending a session that never had a token changes nothing.
        """
        token = self.tokens.issue(self.session)
        self.tokens.ended(object(), "bob", ["#lobby"], T0)
        self.assertEqual(len(self.tokens), 1)
        self.assertIsNotNone(self.tokens.find(token, T0 + 2 * GRACE))

    def test_new_token_after_end(self) -> None:
        """
        A session issued a token again after it ended gets a new one; the old one runs out on its own.
        """
        old = self.tokens.issue(self.session)
        self.tokens.ended(self.session, "alice", [], T0)
        new = self.tokens.issue(self.session)
        self.assertNotEqual(new, old)
        self.assertIsNone(self.tokens.find(old, T0 + GRACE))
        self.assertIsNotNone(self.tokens.find(new, T0 + GRACE))

    def test_sweep_on_end(self) -> None:
        """
        Ending a session sweeps tokens whose grace ran out before.
        """
        first, second = object(), object()
        self.tokens.issue(first)
        self.tokens.issue(second)
        self.tokens.ended(first, "a", [], T0)
        self.tokens.ended(second, "b", [], T0 + GRACE + 1)
        self.assertEqual(len(self.tokens), 1)

    def test_forget(self) -> None:
        """
        A session forgotten (it never had a user) loses its token at once; other tokens stay.
        """
        token = self.tokens.issue(self.session)
        other = self.tokens.issue(object())
        self.tokens.forget(self.session)
        self.tokens.forget(object())
        self.assertIsNone(self.tokens.find(token, T0))
        self.assertIsNotNone(self.tokens.find(other, T0))
        self.assertEqual(len(self.tokens), 1)

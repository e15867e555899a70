"""
Tests for the file offers of L{chat.domain}: who is sent an offer, who may
fetch it, upload targets, offers announced at login, and expiry
(PROTOCOL.md section 6), with a recording event sink, a L{MemoryStore} and
literal times.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from chat import errors, events
from chat.domain import User, utc
from tests.support import T0, DomainTestCase


class OfferTests(DomainTestCase):
    """
    File offers (PROTOCOL.md section 6): who gets them, who may fetch
    them, and their expiry.
    """

    def offer(self, sender: User, to: str, offer_id: int = 1, sha256: str = "ab" * 32) -> events.FileOffer:
        offer = events.FileOffer(offer_id, sender.nick, to, "f.txt", 3, sha256, utc(T0 + 3600))
        self.domain.offer(sender, offer)
        return offer

    def test_offer_to_nick_and_room(self) -> None:
        """
        The uploader gets upload-done; a nick's offer goes to that nick, a room's to its members.
        """
        (alice, a), (bob, b), (carol, c) = self.alice_bob_apart_from_carol()
        offer = self.offer(alice, "carol")
        self.assertEqual(self.take(), [(events.UploadDone(1, "ab" * 32), (a,)), (offer, (c,))])
        room_offer = self.offer(alice, "#x", 2)
        [done, (event, recipients)] = self.take()
        self.assertEqual((done, event), ((events.UploadDone(2, "ab" * 32), (a,)), room_offer))
        self.assert_same_recipients(recipients, [a, b])

    def test_offer_waits_for_its_commit(self) -> None:
        """
        Nothing is published before the offer is stored; a failed store sends busy to the uploader only.
        """
        (alice, a), (bob, b) = self.register("alice"), self.register("bob")
        stored: Deferred[None] = Deferred()
        self.patch(self.store, "add_offer", lambda offer: stored)
        self.offer(alice, "bob")
        self.assertEqual(self.take(), [])
        stored.errback(OSError("disk"))
        [(error, recipients)] = self.take()
        self.assertEqual((error.code, recipients), ("busy", (a,)))  # type: ignore[union-attr]
        self.assertEqual(self.domain.offers, {})

    def test_who_may_fetch(self) -> None:
        """
        The uploader, the target nick and the target room's members may fetch; others get no-such-file.
        """
        (alice, _), (bob, _), (carol, _) = self.alice_bob_apart_from_carol()
        to_bob = self.offer(alice, "bob", 1)
        to_c = self.offer(carol, "#c", 2)
        self.assertIs(self.domain.find_offer(alice, 1, T0), to_bob)
        self.assertIs(self.domain.find_offer(bob, 1, T0), to_bob)
        self.assertRaises(errors.NoSuchFile, self.domain.find_offer, carol, 1, T0)
        self.assertIs(self.domain.find_offer(carol, 2, T0), to_c)
        self.assertRaises(errors.NoSuchFile, self.domain.find_offer, bob, 2, T0)
        self.assertRaises(errors.NoSuchFile, self.domain.find_offer, bob, 1, T0 + 3600)

    def test_upload_targets(self) -> None:
        """
        A target is a connected or registered nick, spelled as the server knows it, or a joined room.
        """
        (alice, _), _, _ = self.alice_bob_apart_from_carol()
        self.domain.accounts["dave"] = "Dave"
        self.assertEqual(self.domain.upload_target(alice, "BOB"), "bob")
        self.assertEqual(self.domain.upload_target(alice, "dave"), "Dave")
        self.assertEqual(self.domain.upload_target(alice, "#X"), "#x")
        self.assertRaises(errors.NoSuchNick, self.domain.upload_target, alice, "erin")
        self.assertRaises(errors.NotInRoom, self.domain.upload_target, alice, "#c")
        self.assertRaises(errors.NoSuchRoom, self.domain.upload_target, alice, "#none")

    def test_announce_at_login(self) -> None:
        """
        A user is told how many files wait for their nick, not counting room offers or their own.
        """
        (alice, _), (bob, b) = self.register("alice"), self.register("bob")
        self.offer(alice, "bob", 1)
        self.offer(alice, "bob", 2)
        self.offer(alice, "#lobby", 3)
        self.offer(bob, "bob", 4)
        self.take()
        self.domain.announce_offers(bob, T0)
        self.assertEqual(self.take(), [(events.Info("2 files are offered to you: /files lists them"), (b,))])
        self.domain.announce_offers(alice, T0)
        self.assertEqual(self.take(), [])

    def test_expire(self) -> None:
        """
        Expired offers and offers whose file is gone are removed, here and in the store.
        """
        (alice, _), _ = self.register("alice"), self.register("bob")
        self.offer(alice, "bob", 1, "aa" * 32)
        kept = self.offer(alice, "bob", 2, "bb" * 32)
        self.domain.offers[3] = events.FileOffer(3, "alice", "bob", "old", 1, "cc" * 32, utc(T0))
        self.store.add_offer(self.domain.offers[3])
        gone = self.domain.expire_offers(T0, lambda sha256: sha256 != "aa" * 32)
        self.assertEqual(sorted(offer.id for offer in gone), [1, 3])
        self.assertEqual(self.domain.offers, {2: kept})
        self.assertEqual(self.store.offers(), [kept])

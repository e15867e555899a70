# -*- test-case-name: tests.test_domain_files -*-
"""
The rules of file offers (PROTOCOL.md section 6): who may fetch an offer,
which offers are open to a user, and their expiry. Pure state: the domain
stores and announces offers, the file store keeps their bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from chat import errors, events


class Offers:
    """
    The file offers by id, expired ones included until L{expire} removes them.

    A user is given as their nick and the lower-cased names of their rooms.
    """

    def __init__(self, offers: Iterable[events.FileOffer] = ()) -> None:
        self.by_id: dict[int, events.FileOffer] = {offer.id: offer for offer in offers}

    def add(self, offer: events.FileOffer) -> None:
        """
        Open an offer.
        """
        self.by_id[offer.id] = offer

    def drop(self, offer: events.FileOffer) -> None:
        """
        Forget an offer (one that could not be stored).
        """
        self.by_id.pop(offer.id, None)

    @staticmethod
    def may_download(nick: str, rooms: Collection[str], offer: events.FileOffer) -> bool:
        """
        Whether C{nick} may fetch C{offer}: the uploader, the target nick,
        or a member of the target room.
        """
        if offer.sender.lower() == nick.lower():
            return True
        if offer.to.startswith("#"):
            return offer.to.lower() in rooms
        return offer.to.lower() == nick.lower()

    def open_to(self, nick: str, rooms: Collection[str], now: float) -> list[events.FileOffer]:
        """
        The unexpired offers C{nick} may fetch at C{now} (POSIX seconds), oldest first.
        """
        return sorted(
            (
                offer for offer in self.by_id.values()
                if offer.expires.timestamp() > now and self.may_download(nick, rooms, offer)
            ),
            key=lambda offer: offer.id,
        )

    def find(self, nick: str, rooms: Collection[str], offer_id: int, now: float) -> events.FileOffer:
        """
        The offer C{offer_id}, if C{nick} may fetch it at C{now}.

        @raise errors.NoSuchFile: unknown, expired, or not offered to them.
        """
        offer = self.by_id.get(offer_id)
        if offer is None or offer.expires.timestamp() <= now or not self.may_download(nick, rooms, offer):
            raise errors.NoSuchFile(f"no file {offer_id} is offered to you: /files lists them")
        return offer

    def expire(self, now: float, stored: Callable[[str], bool]) -> list[events.FileOffer]:
        """
        Remove the offers expired at C{now} or whose file is not C{stored}
        (a predicate on the SHA-256).

        @return: the offers removed.
        """
        gone = [
            offer for offer in self.by_id.values()
            if offer.expires.timestamp() <= now or not stored(offer.sha256)
        ]
        for offer in gone:
            del self.by_id[offer.id]
        return gone

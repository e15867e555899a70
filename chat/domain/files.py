# -*- test-case-name: tests.test_domain_files -*-
"""
The rules of file offers in the domain (PROTOCOL.md section 6): upload
targets, offers stored then announced, who may fetch, and expiry.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from chat import errors, events
from chat.domain.state import DomainState, User
from chat.interfaces import ToRoom, ToUsers
from chat.sequencer import Delivery


class Files(DomainState):
    """
    File offers: the domain's part (the bytes are in the file store).
    """

    def offer_id(self) -> Deferred[int]:
        """
        Allocate an id for an upload, unique across the server and restarts
        and above every message stored before (L{IIdAllocator.reserve_id}:
        at once, or after a round trip to a cluster's database).

        @return: fires with the id; fails with L{errors.Busy} when the
            database cannot give one (logged here in one line).
        """

        def busy(failure: Failure) -> int:
            self._log.warn("no id for an upload: {error}", error=failure.getErrorMessage())
            raise errors.Busy("the server cannot take files now; try again later")

        return self._ids.reserve_id().addErrback(busy)

    def upload_target(self, user: User, target: str) -> str:
        """
        Check the TARGET of an C{/upload}: a room the user is in, or a nick
        connected or registered (an offer then waits for its next login).

        @return: the target as spelled by the server.
        @raise errors.NotInRoom: a room the user is not in.
        @raise errors.NoSuchRoom: a room that does not exist.
        @raise errors.NoSuchNick: nobody has the nick.
        """
        if target.startswith("#"):
            return self._joined(user, target).name
        found = self.users.get(target.lower())
        if found is not None:
            return found.nick
        account = self.accounts.get(target.lower())
        if account is None:
            raise errors.NoSuchNick(f"{target} is not connected")
        return account

    def offer(self, user: User, offer: events.FileOffer) -> None:
        """
        Store a file offer; once durable, publish C{upload-done} to the
        uploader and C{file-offer} to the target nick or to everyone in the
        target room. If it cannot be stored, the uploader gets error C{busy}
        and the offer is dropped.
        """
        self._offers.add(offer)
        stored = self._store.add_offer(offer)
        done = events.UploadDone(offer.id, offer.sha256)
        self._events.publish_after(stored, done, user.here, self._offer_not_stored, user, offer)
        to = offer.to.lower()
        self._events.publish_after(stored, offer, ToRoom(to) if to.startswith("#") else ToUsers((to,)))

    def _offer_not_stored(self, user: User, offer: events.FileOffer) -> Sequence[Delivery]:
        self._offers.drop(offer)
        error = events.Error(errors.Busy.code, "your file could not be stored, so it is not offered; try again")
        return [(error, user.here)]

    def find_offer(self, user: User, offer_id: int, now: float) -> events.FileOffer:
        """
        The offer C{offer_id}, if the user may download it now.

        @raise errors.NoSuchFile: unknown, expired, or not offered to them.
        """
        return self._offers.find(user.nick, user.rooms, offer_id, now)

    def find_offer_for(self, nick: str, rooms: Collection[str], offer_id: int, now: float) -> events.FileOffer:
        """
        The offer C{offer_id}, if C{nick}, a member of C{rooms} (lower-cased
        names), may download it now: for a user who has left (a web
        token used after its session ended, PROTOCOL.md section 9).

        @raise errors.NoSuchFile: unknown, expired, or not offered to them.
        """
        return self._offers.find(nick, rooms, offer_id, now)

    def list_offers(self, user: User, now: float) -> None:
        """
        Publish to the user every offer they may download, oldest first, as
        C{file-offer} events, then an C{info} with their count.
        """
        offers = self._offers.open_to(user.nick, user.rooms, now)
        for offer in offers:
            self._events.publish(offer, user.here)
        if offers:
            text = (f"{len(offers)} file{'s' if len(offers) > 1 else ''} offered to you, listed above: "
                    "/get ID fetches one in chat-client or chat-tk")
        else:
            text = "No files are offered to you"
        self._events.publish(events.Info(text), user.here)

    def announce_offers(self, user: User, now: float) -> None:
        """
        Tell a user who just logged in about the files offered to their
        nick while they were away.
        """
        nick = user.nick.lower()
        count = sum(
            1 for offer in self._offers.open_to(user.nick, user.rooms, now)
            if offer.to.lower() == nick and offer.sender.lower() != nick
        )
        if count:
            noun = "file is" if count == 1 else "files are"
            self._events.publish(events.Info(f"{count} {noun} offered to you: /files lists them"), user.here)

    def expire_offers(self, now: float, stored: Callable[[str], bool] = lambda sha256: True) -> list[events.FileOffer]:
        """
        Remove the offers that expired at C{now} (POSIX seconds) or whose
        file is not C{stored}, here and in the store.

        @return: the offers removed.
        """
        gone = self._offers.expire(now, stored)
        if gone:
            self._store.remove_offers([offer.id for offer in gone]).addErrback(
                lambda failure: self._log.failure("could not remove expired offers", failure)
            )
        return gone

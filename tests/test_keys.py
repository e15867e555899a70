"""
Tests for L{chat.keys}: the daemon computes the device ids and fingerprints
of the shared test vectors (tests/vectors/e2e-v1.json, made by the clients'
side), and takes only well-formed keys and envelopes (PROTOCOL.md section 11).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from chat import errors, keys

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "e2e-v1.json").read_text("ascii"))


class IdentityTests(SynchronousTestCase):
    """
    L{keys.device_id} and L{keys.fingerprint}.
    """

    def test_vectors(self) -> None:
        """
        Every device of the shared vectors gets the device id and fingerprint written there.
        """
        self.assertTrue(VECTORS["devices"])
        for name, device in VECTORS["devices"].items():
            bundle = base64.b64decode(device["bundle"])
            self.assertEqual(keys.device_id(bundle), device["device_id"], name)
            self.assertEqual(keys.fingerprint(bundle), device["fingerprint"], name)

    def test_shape(self) -> None:
        """
        A device id is 16 base64url characters; a fingerprint six groups of five digits.
        """
        bundle = bytes(range(64))
        self.assertRegex(keys.device_id(bundle), r"\A[A-Za-z0-9_-]{16}\Z")
        self.assertRegex(keys.fingerprint(bundle), r"\A\d{5}( \d{5}){5}\Z")
        self.assertNotEqual(keys.device_id(bundle), keys.device_id(bytes(64)))


class ParseTests(SynchronousTestCase):
    """
    L{keys.parse_bundle} and L{keys.check_envelope}.
    """

    def test_bundle(self) -> None:
        """
        Base64 of 64 bytes gives the bytes back.
        """
        bundle = bytes(range(64))
        self.assertEqual(keys.parse_bundle(base64.b64encode(bundle).decode()), bundle)

    def test_bad_bundles(self) -> None:
        """
        Other lengths, missing padding, base64url and stray characters are bad-arguments.
        """
        good = base64.b64encode(bytes(range(64))).decode()
        for text in (
            "", base64.b64encode(bytes(63)).decode(), base64.b64encode(bytes(65)).decode(), good.rstrip("="),
            base64.urlsafe_b64encode(bytes([251]) * 64).decode(), good[:-3] + "*==", good + " ",
        ):
            with self.assertRaises(errors.BadArguments, msg=text):
                keys.parse_bundle(text)

    def test_envelopes(self) -> None:
        """
        The vectors' envelopes are taken as they are; other characters are bad-arguments.
        """
        for vector in VECTORS["envelopes"]:
            self.assertEqual(keys.check_envelope(vector["envelope"]), vector["envelope"])
        for text in ("", "abc=", "ab+c", "ab/c", "a b", "abc\u00e9", "abc\n"):
            with self.assertRaises(errors.BadArguments, msg=text):
                keys.check_envelope(text)

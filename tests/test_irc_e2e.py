"""
End-to-end test of the IRC listener (PROTOCOL.md section 14) against a real
C{twistd -n chat --irc tcp:0:...}: a raw-socket IRC client and an
nc-style line user exchange messages in C{#lobby}.
"""

from __future__ import annotations

import re
import socket
import time
import urllib.request

from twisted.trial.unittest import TestCase

from tests.e2e import Client, Daemon

IRC_LISTENING = re.compile(r"chat irc listening on 127\.0\.0\.1:(\d+)")
WEB_LISTENING = re.compile(r"chat web listening on 127\.0\.0\.1:(\d+)")


class IRCSocket:
    """
    An IRC client on a plain socket: sends lines, reads them until one matches.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def until(self, needle: str, timeout: float = 5.0) -> list[str]:
        """
        The lines read up to and including the first containing C{needle}.

        @raise AssertionError: none within C{timeout} seconds.
        """
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            while b"\r\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\r\n", 1)
                lines.append(raw.decode())
                if needle in lines[-1]:
                    return lines
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line with {needle!r}; got {lines!r}")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"closed before {needle!r}; got {lines!r}")
            self.buffer += data

    def close(self) -> None:
        self.sock.close()


class IRCEndToEndTests(TestCase):
    """
    A real daemon with an IRC listener and a line listener.
    """

    def test_irc_and_line_users_talk(self) -> None:
        """An IRC client and a line user in #lobby see each other's messages, joins and quits."""
        daemon = Daemon("--in-memory", "--irc", "tcp:0:interface=127.0.0.1").start()
        self.addCleanup(daemon.stop)
        match = IRC_LISTENING.search(daemon.wait_for_line(lambda text: IRC_LISTENING.search(text) is not None))
        assert match is not None
        bob = Client.text(daemon.port, "bob")
        self.addCleanup(bob.close)
        irc = IRCSocket(int(match.group(1)))
        self.addCleanup(irc.close)
        irc.send("CAP LS 302")
        irc.send("NICK alice")
        irc.send("USER alice 0 * :Alice")
        irc.send("CAP END")
        burst = irc.until(" 422 alice ")
        self.assertTrue(burst[1].startswith(":chat 001 alice "), burst)
        irc.send("JOIN #lobby")
        names = irc.until(" 366 alice #lobby ")
        self.assertIn(":chat 353 alice = #lobby :alice @bob", names)
        bob.read_lines_until(lambda text: "alice joined #lobby" in text)
        irc.send("PRIVMSG #lobby :hello from irc")
        bob.read_lines_until(lambda text: text.endswith("#lobby <alice> hello from irc"))
        bob.send_line("hello from the line")
        irc.until(":bob!bob@chat PRIVMSG #lobby :hello from the line")
        irc.send("QUIT :done")
        irc.until("ERROR :Closing Link: done")
        bob.read_lines_until(lambda text: "alice quit (done)" in text)
        daemon.assert_clean()

    def test_file_offer_link(self) -> None:
        """With --web, an IRC user is offered a file as a NOTICE whose HTTP link gives its bytes."""
        daemon = Daemon(
            "--in-memory", "--irc", "tcp:0:interface=127.0.0.1", "--web", "tcp:0:interface=127.0.0.1"
        ).start()
        self.addCleanup(daemon.stop)
        irc_port = int(IRC_LISTENING.findall(daemon.wait_for_line(lambda text: IRC_LISTENING.search(text) is not None))[0])
        web_port = int(WEB_LISTENING.findall(daemon.wait_for_line(lambda text: WEB_LISTENING.search(text) is not None))[0])
        irc = IRCSocket(irc_port)
        self.addCleanup(irc.close)
        irc.send("NICK alice")
        irc.send("USER alice 0 * :Alice")
        irc.until(" 422 alice ")
        bob = Client.json(daemon.port, "bob")
        self.addCleanup(bob.close)
        token = next(e["token"] for e in bob.registration if e.get("type") == "registered")
        body = bytes(range(256)) * 40
        request = urllib.request.Request(
            f"http://127.0.0.1:{web_port}/files?to=alice&name=blob.bin", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            self.assertEqual(answer.status, 201)
        [notice] = [text for text in irc.until("offers a file") if "offers a file" in text]
        link = re.search(r"download it from (http://\S+)", notice)
        assert link is not None, notice
        self.assertTrue(link.group(1).startswith(f"http://127.0.0.1:{web_port}/files/"), notice)
        with urllib.request.urlopen(link.group(1), timeout=5) as download:
            self.assertEqual(download.read(), body)
        daemon.assert_clean()

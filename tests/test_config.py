"""
The configuration file (C{--config}, L{chat.config}), its reload on
SIGHUP (L{chat.tap.reloaded}, L{chat.service.ChatService.reload_settings})
and L{chat.server.ChatServer.reconfigure}.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import replace
from typing import Any

from twisted.logger import capturedLogs, formatEvent
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from chat import config, tap
from chat.service import ChatService
from chat.settings import DEFAULT_LISTEN, Settings
from tests.support import ProtocolTestCase

GOOD = """\
# every kind of value
motd = "Welcome to the test"
max-line = 2048
flood-rate = 2
file-ttl = 1.5
max-file-size = "5M"
spool-quota = 10000000
in-memory = true
allow-plaintext-auth = false
listen = ["tcp:0:interface=127.0.0.1", "tcp6:0:interface=\\\\:\\\\:1"]
web-origin = ["HTTPS://Chat.Example.org"]
metrics = "tcp:9108:interface=127.0.0.1"
"""


class ConfigFileTests(SynchronousTestCase):
    """
    C{--config FILE}: a TOML table of long option names, checked as the
    command line is, with the command line winning.
    """

    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory(prefix="chat-config-")
        self.addCleanup(directory.cleanup)
        self.path = os.path.join(directory.name, "chat.toml")

    def parse(self, text: str | bytes, *argv: str) -> tap.Options:
        with open(self.path, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        options = tap.Options()
        options.parseOptions(["--config", self.path, *argv])
        return options

    def refused(self, text: str | bytes, *argv: str) -> str:
        """
        The one line start-up stops with for C{text}.
        """
        with self.assertRaises(SystemExit) as raised:
            self.parse(text, *argv)
        message = str(raised.exception.code)
        self.assertNotIn("\n", message)
        return message

    def test_good_file(self) -> None:
        """
        Each option of the file is set as its command-line form would set it.
        """
        options = self.parse(GOOD)
        settings = options.settings()
        self.assertEqual(settings.motd, "Welcome to the test")
        self.assertEqual(settings.max_line, 2048)
        self.assertEqual(settings.flood_rate, 2.0)
        self.assertEqual(settings.file_ttl, 1.5 * 3600)
        self.assertEqual(settings.max_file, 5 * 1024 * 1024)
        self.assertEqual(settings.spool_quota, 10_000_000)
        self.assertTrue(options["in-memory"])
        self.assertFalse(settings.allow_plaintext_auth)
        self.assertEqual(options["listen"], ["tcp:0:interface=127.0.0.1", "tcp6:0:interface=\\:\\:1"])
        self.assertEqual(options["web-origin"], ["https://chat.example.org"])
        self.assertEqual(options["metrics"], "tcp:9108:interface=127.0.0.1")
        self.assertEqual(options["config"], self.path)

    def test_example_file_is_the_defaults(self) -> None:
        """
        docs/chat.toml, the commented example, names every option; with its
        C{#name = value} lines uncommented it parses, and gives the defaults.
        """
        example = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "chat.toml")
        with open(example, encoding="utf-8") as f:
            text = f.read()
        uncommented = re.sub(r"(?m)^#(?=[a-z][a-z0-9-]* = )", "", text)
        defaults = tap.Options()
        defaults.parseOptions([])
        options = self.parse(uncommented)
        self.assertEqual(options.settings(), defaults.settings())
        for name in ("listen", "web", "web-origin", "trusted-proxy", "data-dir", "in-memory", "log-level"):
            self.assertEqual(options[name], defaults[name])
        documented = set(re.findall(r"(?m)^# ?([a-z][a-z0-9-]*) = ", text))
        names = {p[0] for p in tap.Options.optParameters} | {f[0] for f in tap.Options.optFlags}
        self.assertEqual(names | set(tap.Options.REPEATED), documented | {"config"})

    def test_command_line_wins(self) -> None:
        """
        An option given on the command line wins over the file, before or
        after C{--config}; a repeatable one replaces the file's list.
        """
        with open(self.path, "w") as f:
            f.write('motd = "from the file"\nmax-line = 100\nlisten = ["tcp:1234"]\n')
        options = tap.Options()
        options.parseOptions(["--max-line", "200", "--config", self.path, "--listen", "tcp:5678"])
        self.assertEqual(options["max-line"], 200)
        self.assertEqual(options["motd"], "from the file")
        self.assertEqual(options["listen"], ["tcp:5678"])
        options = tap.Options()
        options.parseOptions([f"--config={self.path}", "--motd", "from the command line"])
        self.assertEqual(options["motd"], "from the command line")
        self.assertEqual(options["listen"], ["tcp:1234"])

    def test_without_lists_the_defaults_stay(self) -> None:
        """
        A file without C{listen} leaves the default listener.
        """
        self.assertEqual(self.parse('motd = "hi"\n')["listen"], [DEFAULT_LISTEN])

    def test_unknown_key(self) -> None:
        """
        An unknown key stops start-up with one line naming the file and the key.
        """
        self.assertEqual(
            self.refused('motd = "hi"\ncolour = "blue"\n'),
            f"chat: {self.path}: unknown key 'colour' (keys are the long option names of --help)",
        )

    def test_table_is_unknown(self) -> None:
        """
        A TOML table is no option: refused as an unknown key.
        """
        self.assertIn("unknown key 'limits'", self.refused("[limits]\nmax-line = 10\n"))

    def test_wrong_types(self) -> None:
        """
        A value of the wrong type stops start-up naming the file, the key
        and what it must be.
        """
        cases = {
            'max-line = "big"': "max-line must be an integer, not a string",
            "max-line = 10.5": "max-line must be an integer, not a number",
            "flood-rate = true": "flood-rate must be a number, not a boolean",
            'in-memory = "yes"': "in-memory must be true or false, not a string",
            "motd = 5": "motd must be a string, not an integer",
            'listen = "tcp:8888"': "listen must be a list of strings, not a string",
            "listen = [8888]": "listen must be a list of strings, not a list",
            "max-file-size = [1]": 'max-file-size must be an integer or a size such as "100M", not a list',
        }
        for line, expected in cases.items():
            self.assertEqual(self.refused(line + "\n"), f"chat: {self.path}: {expected}")

    def test_refused_values(self) -> None:
        """
        A value its option refuses stops start-up naming the file and the key.
        """
        self.assertEqual(
            self.refused("max-line = 0\n"), f"chat: {self.path}: max-line: must be a finite number above 0, not 0"
        )
        self.assertIn(f"chat: {self.path}: max-file-size: must be a size", self.refused('max-file-size = "lots"\n'))
        self.assertIn(f"chat: {self.path}: web-origin: --web-origin must be an origin",
                      self.refused('web-origin = ["chat.example.org"]\n'))
        self.assertIn("cannot name another one", self.refused('config = "other.toml"\n'))

    def test_parse_error_names_the_line(self) -> None:
        """
        A file that does not parse stops start-up with one line naming the
        file and the line.
        """
        message = self.refused('motd = "hi"\nmax-line 100\n')
        self.assertTrue(message.startswith(f"chat: {self.path}: "), message)
        self.assertIn("line 2", message)

    def test_not_utf8(self) -> None:
        """
        A file that is not UTF-8 stops start-up with one line naming it.
        """
        self.assertTrue(self.refused(b'motd = "\xff"\n').startswith(f"chat: {self.path}: "))

    def test_missing_file(self) -> None:
        """
        A file that cannot be read stops start-up naming it.
        """
        options = tap.Options()
        with self.assertRaises(SystemExit) as raised:
            options.parseOptions(["--config", self.path + ".missing"])
        self.assertEqual(str(raised.exception.code), f"chat: {self.path}.missing: No such file or directory")

    def test_path_in(self) -> None:
        """
        The file is found in both spellings, the last one winning, and not
        after C{--}.
        """
        self.assertEqual(config.path_in(["--motd", "x", "--config", "a.toml"]), "a.toml")
        self.assertEqual(config.path_in(["--config=a.toml", "--config", "b.toml"]), "b.toml")
        self.assertIsNone(config.path_in(["--", "--config", "a.toml"]))
        self.assertIsNone(config.path_in(["--config"]))

    def test_reloaded(self) -> None:
        """
        Reading the file again changes the live settings, keeps those that
        need a restart as they are and names their options, and the
        command line still wins.
        """
        options = self.parse(
            'motd = "one"\nmax-line = 100\nin-memory = true\nipv6-prefix = 64\n', "--max-output", "9000"
        )
        running = options.settings()
        with open(self.path, "w") as f:
            f.write('motd = "two"\nmax-line = 50\nmax-output = 1\nipv6-prefix = 48\nlisten = ["tcp:1"]\n')
        settings, restart = tap.reloaded(options, running)
        self.assertEqual((settings.motd, settings.max_line, settings.max_output), ("two", 50, 9000))
        self.assertEqual(settings.ipv6_prefix, 64)
        self.assertEqual(restart, ["in-memory", "listen", "ipv6-prefix"])

    def test_reloaded_bad_file(self) -> None:
        """
        Reading a bad file again raises L{config.ConfigError} naming it,
        whether it does not parse or an option in it is refused.
        """
        options = self.parse('motd = "one"\n')
        with open(self.path, "w") as f:
            f.write("motd = \n")
        self.assertRaises(config.ConfigError, tap.reloaded, options, options.settings())
        with open(self.path, "w") as f:
            f.write("history-on-join = -1\n")
        with self.assertRaises(config.ConfigError) as raised:
            tap.reloaded(options, options.settings())
        self.assertEqual(str(raised.exception), f"{self.path}: --history-on-join must be 0 or more")

    def test_options_without_file(self) -> None:
        """
        Without C{--config} nothing is read, and a usage error is still one.
        """
        options = tap.Options()
        options.parseOptions(["--motd", "plain"])
        self.assertEqual(options["motd"], "plain")
        self.assertIsNone(options["config"])
        self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["--history-on-join", "-1"])


class ReloadTests(ProtocolTestCase):
    """
    L{ChatService.reload_settings} and L{chat.server.ChatServer.reconfigure}
    over the line front end.
    """

    settings = Settings(flood_burst=10_000, max_line=100, motd="before")

    def service(self, reread: Any) -> ChatService:
        return ChatService(self.server, self.clock, reread=reread)

    def test_reconfigure_reaches_connections(self) -> None:
        """
        A connection made before the new settings is held to the new
        longest line and stays connected; the next welcome has the new
        message of the day; the per-address limit changes.
        """
        kept = self.json_user("kept")
        kept.line("/ping " + "x" * 150)
        self.assertEqual([e["code"] for e in kept.take_json() if e["type"] == "error"], ["line-too-long"])
        new = replace(self.settings, max_line=200, motd="after", max_per_ip=2, max_output_total=8000)
        with capturedLogs() as logged:
            self.service(lambda settings: (new, ["listen"])).reload_settings()
        self.assertEqual(
            [formatEvent(e) for e in logged],
            ["SIGHUP: --listen changed: it needs a restart to take effect",
             "SIGHUP: reloaded the configuration file: motd, max-line, max-per-ip, max-output-total changed"],
        )
        self.assertIs(self.server.settings, new)
        kept.line("/ping " + "x" * 150)
        self.assertEqual(kept.take_json()[-1], {"type": "pong", "token": "x" * 150})
        self.assertFalse(kept.transport.disconnecting)
        self.assertEqual(self.server.output_budget.limit, 8000)
        fresh = self.connect()
        self.assertIn(b"*** after\r\n", fresh.take())
        self.assertFalse(fresh.transport.disconnecting)
        self.assertTrue(self.connect().transport.disconnecting)  # a third: over the new per-address limit of 2

    def test_bad_file_keeps_settings(self) -> None:
        """
        A file refused on reload is logged in one line and the settings in
        force stay.
        """
        def reread(settings: Settings) -> tuple[Settings, list[str]]:
            raise config.ConfigError("chat.toml: unknown key 'colour'")

        with capturedLogs() as logged:
            self.service(reread).reload_settings()
        self.assertEqual(
            [formatEvent(e) for e in logged],
            ["SIGHUP: kept the settings in force: chat.toml: unknown key 'colour'"],
        )
        self.assertIs(self.server.settings, self.settings)

    def test_without_file_nothing(self) -> None:
        """
        Without C{--config} a reload leaves the settings alone.
        """
        with capturedLogs() as logged:
            self.service(None).reload_settings()
        self.assertEqual(list(logged), [])
        self.assertIs(self.server.settings, self.settings)


class RelativePathTests(SynchronousTestCase):
    """
    A relative C{--config} path is read again from where it was first found.
    """

    def test_reparsed_after_chdir(self) -> None:
        """
        After the working directory changes (twistd's C{--rundir}), reading
        the file again still finds it.
        """
        directory = tempfile.TemporaryDirectory(prefix="chat-config-")
        self.addCleanup(directory.cleanup)
        here = os.getcwd()
        self.addCleanup(os.chdir, here)
        os.chdir(directory.name)
        with open("chat.toml", "w") as f:
            f.write('motd = "relative"\n')
        options = tap.Options()
        options.parseOptions(["--config", "chat.toml"])
        os.chdir(here)
        self.assertEqual(options.reparsed()["motd"], "relative")

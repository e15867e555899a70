"""
Tests for L{chat.client.settings}: where the clients keep their settings
and data, and what survives a save and a load; and how the command line
(L{chat.client.options}) takes its defaults from them.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from chat.client import options as client_options
from chat.client.settings import ClientSettings, config_dir, data_dir, settings_path


class TemporaryFolder(SynchronousTestCase):
    def setUp(self) -> None:
        made = tempfile.TemporaryDirectory()
        self.addCleanup(made.cleanup)
        self.folder = Path(made.name)

    def set_environ(self, name: str, value: str) -> None:
        old = os.environ.get(name)
        os.environ[name] = value
        self.addCleanup(lambda: os.environ.pop(name) if old is None else os.environ.__setitem__(name, old))


class DirectoryTests(TemporaryFolder):
    def test_xdg_variables_are_honoured(self) -> None:
        """
        On Linux the config and data folders are chat/ under XDG_CONFIG_HOME and XDG_DATA_HOME, read at each call.
        """
        if not sys.platform.startswith("linux"):
            self.skipTest("XDG variables are the Linux convention")
        self.set_environ("XDG_CONFIG_HOME", str(self.folder / "config"))
        self.set_environ("XDG_DATA_HOME", str(self.folder / "data"))
        self.assertEqual(config_dir(), self.folder / "config" / "chat")
        self.assertEqual(data_dir(), self.folder / "data" / "chat")
        self.assertEqual(settings_path(), self.folder / "config" / "chat" / "settings.json")
        self.assertFalse((self.folder / "config").exists())


class LoadSaveTests(TemporaryFolder):
    def test_missing_file_gives_defaults_silently(self) -> None:
        """
        Without a settings file every field has its default and there is no notice.
        """
        self.assertEqual(ClientSettings.load(self.folder / "none.json"), ClientSettings())
        self.assertEqual(ClientSettings.load(self.folder / "none.json").notice, "")

    def test_round_trip(self) -> None:
        """
        What is saved (creating the folder) is loaded back; the file is a JSON object with muted sorted.
        """
        path = self.folder / "deep" / "settings.json"
        settings = ClientSettings("chat.example:6697", "alice", "light", {"#dev", "#lobby"}, "~/dl")
        self.assertTrue(settings.save(path))
        self.assertEqual(ClientSettings.load(path), settings)
        self.assertEqual(json.loads(path.read_text("utf-8")), {
            "server": "chat.example:6697", "nick": "alice", "theme": "light", "muted": ["#dev", "#lobby"],
            "downloads": "~/dl",
        })
        self.assertEqual(sorted(p.name for p in path.parent.iterdir()), ["settings.json"])

    def test_default_path_is_in_config_dir(self) -> None:
        """
        Without a path, save and load use settings.json in the config folder.
        """
        if not sys.platform.startswith("linux"):
            self.skipTest("XDG variables are the Linux convention")
        self.set_environ("XDG_CONFIG_HOME", str(self.folder))
        ClientSettings(nick="bob").save()
        self.assertTrue((self.folder / "chat" / "settings.json").exists())
        self.assertEqual(ClientSettings.load().nick, "bob")

    def test_bad_files_give_defaults_and_a_notice(self) -> None:
        """
        A file that is not JSON, or not an object, gives the defaults and a notice naming it.
        """
        path = self.folder / "settings.json"
        for content, why in (("{nope", "are not valid JSON"), ("[1, 2]", "are not a JSON object")):
            path.write_text(content, "utf-8")
            loaded = ClientSettings.load(path)
            self.assertEqual(loaded, ClientSettings())
            self.assertEqual(loaded.notice, f"The settings in {path} {why}: using the defaults.")

    def test_unreadable_file_gives_a_notice(self) -> None:
        """
        A settings path that cannot be read (a folder) gives the defaults and a notice.
        """
        loaded = ClientSettings.load(self.folder)
        self.assertEqual(loaded, ClientSettings())
        self.assertIn(f"Cannot read the settings in {self.folder}", loaded.notice)

    def test_wrong_types_take_defaults(self) -> None:
        """
        A key of the wrong type takes its default, others are kept; muted rooms are lower-cased; unknown keys ignored.
        """
        path = self.folder / "settings.json"
        path.write_text(json.dumps({"server": 5, "nick": "Bob", "theme": None, "muted": ["#Dev", 3, ""],
                                    "downloads": ["x"], "colour": "red"}), "utf-8")
        self.assertEqual(ClientSettings.load(path), ClientSettings(nick="Bob", muted={"#dev"}))

    def test_failed_save_is_false(self) -> None:
        """
        Saving where a folder cannot be made returns False and raises nothing.
        """
        (self.folder / "file").write_text("", "utf-8")
        self.assertFalse(ClientSettings(nick="bob").save(self.folder / "file" / "settings.json"))


class OptionsDefaultsTests(SynchronousTestCase):
    def parse(self, settings: ClientSettings, *argv: str) -> client_options.ClientOptions:
        options = client_options.ClientOptions(settings=settings)
        options.parseOptions(list(argv))
        return options

    def test_settings_fill_what_is_not_given(self) -> None:
        """
        The last server, nick and downloads folder are the defaults of --host, --port, NICK and --downloads.
        """
        options = self.parse(ClientSettings("chat.example:7000", "bob", downloads="/tmp/dl"))
        self.assertEqual((options["host"], options["port"], options["nick"], options["downloads"]),
                         ("chat.example", 7000, "bob", Path("/tmp/dl")))

    def test_command_line_wins(self) -> None:
        """
        --host (the saved port then not used), --port, NICK and --downloads override the settings.
        """
        settings = ClientSettings("chat.example:7000", "bob", downloads="/tmp/dl")
        options = self.parse(settings, "--host", "other", "--downloads", "/tmp/x", "carol")
        self.assertEqual((options["host"], options["port"], options["nick"], options["downloads"]),
                         ("other", 8888, "carol", Path("/tmp/x")))
        options = self.parse(settings, "--port", "9000")
        self.assertEqual((options["host"], options["port"]), ("localhost", 9000))

    def test_saved_default_port_follows_tls(self) -> None:
        """
        A saved default port becomes the other default when --tls differs; another port is kept.
        """
        self.assertEqual(self.parse(ClientSettings("h:8888"), "--tls")["port"], 6697)
        self.assertEqual(self.parse(ClientSettings("h:6697"))["port"], 8888)
        self.assertEqual(self.parse(ClientSettings("h:7000"), "--tls")["port"], 7000)
        self.assertEqual(self.parse(ClientSettings("[::1]:7000"))["host"], "::1")

    def test_no_settings_no_change(self) -> None:
        """
        With empty settings the built-in defaults stand: localhost, 8888, no nick, ~/Downloads/chat.
        """
        options = self.parse(ClientSettings())
        self.assertEqual((options["host"], options["port"], options["nick"], options["downloads"]),
                         ("localhost", 8888, None, Path.home() / "Downloads" / "chat"))

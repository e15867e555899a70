"""
Packaging: the wheel ships the twistd plugin without clobbering Twisted's
own C{twisted/plugins}, and C{twistd chat} works from a fresh virtual
environment where the wheel alone is installed (not the source tree).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import ClassVar

from twisted.trial.unittest import SynchronousTestCase

SOURCE = Path(__file__).resolve().parent.parent
"""The project's source tree."""

SUBPROCESS_TIMEOUT = 300
"""Bound, in seconds, on each build or install step (they take seconds)."""

_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", "dropin.cache",
)


def _environment() -> dict[str, str]:
    """
    The environment for child processes: the caller's (pip's index settings
    included), without anything that would put the source tree on the path.
    """
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def _run(argv: list[str], cwd: Path) -> str:
    """
    Run a command to completion.

    @return: its stdout and stderr, decoded.
    @raise AssertionError: it failed or timed out.
    """
    try:
        done = subprocess.run(
            argv, check=False, cwd=cwd, env=_environment(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=SUBPROCESS_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{argv} ran over {SUBPROCESS_TIMEOUT}s:\n{e.output!r}") from None
    output = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        raise AssertionError(f"{argv} exited {done.returncode}:\n{output}")
    return output


class WheelTests(SynchronousTestCase):
    """
    Builds the wheel from a copy of the source tree once, and installs it
    (with its dependencies) into a fresh, plain virtual environment.
    """

    tmp: ClassVar[Path]
    wheel: ClassVar[Path]
    venv: ClassVar[Path]

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp(prefix="chat-packaging-"))
        try:
            cls._build()
            cls._install()
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def _build(cls) -> None:
        # A copy, so the build writes no build/ or egg-info into the checkout.
        source = cls.tmp / "source"
        shutil.copytree(SOURCE, source, ignore=_IGNORED)
        out = cls.tmp / "dist"
        if importlib.util.find_spec("build") is not None:
            _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)], cls.tmp)
        else:
            _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(source)], cls.tmp)
        wheels = list(out.glob("chat-*.whl"))
        if len(wheels) != 1:
            raise AssertionError(f"expected one chat wheel, got {wheels}")
        cls.wheel = wheels[0]

    @classmethod
    def _install(cls) -> None:
        cls.venv = cls.tmp / "venv"
        _run([sys.executable, "-m", "venv", str(cls.venv)], cls.tmp)
        cls.pip("install", str(cls.wheel))

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def pip(cls, *args: str) -> str:
        """
        Run the fresh environment's pip.
        """
        return _run([str(cls.venv / "bin" / "python"), "-m", "pip", *args], cls.tmp)

    def twistd(self, *args: str) -> str:
        """
        Run the fresh environment's twistd, from a directory that is not the
        source tree.
        """
        return _run([str(self.venv / "bin" / "twistd"), *args], self.tmp)

    def test_wheel_ships_plugin_without_init_files(self) -> None:
        """
        The wheel holds twisted/plugins/chat_plugin.py and the chat package,
        and no twisted/__init__.py, twisted/plugins/__init__.py or dropin.cache.
        """
        with zipfile.ZipFile(self.wheel) as wheel:
            names = set(wheel.namelist())
        self.assertIn("twisted/plugins/chat_plugin.py", names)
        self.assertIn("chat/__init__.py", names)
        self.assertIn("chat/tap.py", names)
        for name in ("twisted/__init__.py", "twisted/plugins/__init__.py", "twisted/plugins/dropin.cache"):
            self.assertNotIn(name, names)

    def test_wheel_ships_every_module(self) -> None:
        """
        Every module of the source tree's chat package is in the wheel (a
        package missing from setup.cfg's packages would be left out).
        """
        with zipfile.ZipFile(self.wheel) as wheel:
            names = set(wheel.namelist())
        modules = {path.relative_to(SOURCE).as_posix() for path in (SOURCE / "chat").rglob("*.py")}
        self.assertEqual(modules - names, set())
        self.assertEqual(
            sorted(n for n in names if n.startswith("twisted/")), ["twisted/plugins/chat_plugin.py"]
        )

    def test_installed_from_the_wheel_not_the_source_tree(self) -> None:
        """
        In the fresh environment chat and its plugin are imported from the
        environment's site-packages.
        """
        output = _run(
            [str(self.venv / "bin" / "python"), "-c",
             "import chat, twisted.plugins.chat_plugin as p; print(chat.__file__); print(p.__file__)"],
            self.tmp,
        )
        venv = str(self.venv.resolve())
        for path in output.split():
            self.assertTrue(str(Path(path).resolve()).startswith(venv), output)

    def test_twistd_lists_chat(self) -> None:
        """
        twistd --help in the fresh environment lists the chat plugin, next to
        Twisted's own plugins.
        """
        output = self.twistd("--help")
        commands = re.findall(r"^ {4}(\S+) ", output, re.MULTILINE)
        self.assertIn("chat", commands, output)
        self.assertIn("web", commands, output)

    def test_twistd_chat_help_documents_options(self) -> None:
        """
        twistd chat --help documents --listen and the other options.
        """
        output = self.twistd("chat", "--help")
        for option in ("--listen", "--data-dir", "--motd", "--max-line", "--flood-burst",
                       "--flood-rate", "--max-connections-per-ip", "--max-output",
                       "--in-memory", "--history-days", "--allow-plaintext-auth", "--file-ttl", "--tls-cert"):
            self.assertIn(option, output)

    def test_chat_admin_console_script(self) -> None:
        """
        The wheel installs the chat-admin console script, and it runs from
        the fresh environment (argon2-cffi installed with it).
        """
        output = _run([str(self.venv / "bin" / "chat-admin"), "--version"], self.tmp)
        self.assertEqual(output, "chat-admin (chat 0.1.0)\n")
        _run([str(self.venv / "bin" / "python"), "-c", "import argon2; argon2.PasswordHasher().hash('x' * 8)"], self.tmp)

    def test_chat_cert_console_script(self) -> None:
        """
        The wheel installs chat-cert, which writes a certificate and key from the fresh environment.
        """
        output = _run([str(self.venv / "bin" / "chat-cert"), "--out", str(self.tmp), "localhost"], self.tmp)
        self.assertIn("clients must be given", output)
        self.assertTrue((self.tmp / "localhost.pem").is_file())
        self.assertTrue((self.tmp / "localhost.key").is_file())

    def test_uninstall_leaves_twisted_plugins_working(self) -> None:
        """
        Uninstalling the wheel removes the chat plugin and leaves twistd and
        Twisted's own plugins working (the wheel owns no twisted/plugins/__init__.py).
        """
        self.pip("uninstall", "--yes", "chat")
        try:
            output = self.twistd("--help")
            commands = re.findall(r"^ {4}(\S+) ", output, re.MULTILINE)
            self.assertNotIn("chat", commands, output)
            self.assertIn("web", commands, output)
        finally:
            self.pip("install", "--no-deps", str(self.wheel))

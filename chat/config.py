# -*- test-case-name: tests.test_config -*-
"""
The daemon's configuration file (C{--config FILE}, PROTOCOL.md section
12): a TOML table of options under their long names, checked against the
daemon's L{usage.Options} and applied as its defaults, so that options
given on the command line win.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from twisted.python import usage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the backport, before 3.11
    import tomli as tomllib

CONFIG = "config"
"""The option naming the file (C{--config}); not allowed in the file itself."""


class ConfigError(Exception):
    """
    The configuration file cannot be used: its message is one line naming
    the file, and the key or the line at fault.
    """


def path_in(argv: Sequence[str]) -> str | None:
    """
    The file C{--config FILE} (or C{--config=FILE}) names in a command line
    (the last one given), before the command line is parsed.

    @param argv: the options, without the program name.
    @return: the path as given, or C{None} when there is none.
    """
    found = None
    arguments = iter(argv)
    for argument in arguments:
        if argument == "--":
            break
        if argument == "--" + CONFIG:
            found = next(arguments, None)
        elif argument.startswith(f"--{CONFIG}="):
            found = argument.split("=", 1)[1]
    return found


def read(path: str) -> dict[str, Any]:
    """
    Read and parse a TOML file.

    @return: its top-level table.
    @raise ConfigError: it cannot be read (C{"FILE: No such file or
        directory"}) or does not parse (C{"FILE: Expected '=' after a key
        in a key/value pair (at line 3, column 7)"}).
    """
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def apply(options: usage.Options, path: str, table: dict[str, Any], lists: Sequence[str]) -> dict[str, list[str]]:
    """
    Set the options a configuration file holds on C{options} before its
    command line is parsed, checked and converted as the command line's
    are (C{optParameters}' coercions, the C{opt_*} methods of the
    repeatable options).

    Flags (C{optFlags}) take booleans; parameters take what their
    coercion reads: a string, an integer for an integer default, an
    integer or a float for a float default, and an integer or a size
    string (C{"100M"}) for sizes; the repeatable options (C{lists}) take
    lists of strings.

    @param lists: the repeatable options, whose values are returned rather
        than set: the caller uses them unless the command line gives some.
    @return: the repeatable options' values from the file, by option name.
    @raise ConfigError: an unknown key, a value of the wrong type, or one
        its option refuses; the message names the file and the key.
    """
    flags = {flag[0] for flag in getattr(options, "optFlags", ())}
    parameters = {parameter[0]: parameter for parameter in getattr(options, "optParameters", ())}
    repeated: dict[str, list[str]] = {}
    for key, value in table.items():
        if key == CONFIG:
            raise ConfigError(f"{path}: {key}: a configuration file cannot name another one")
        if key in flags:
            if not isinstance(value, bool):
                raise ConfigError(f"{path}: {key} must be true or false, not {_kind(value)}")
            options[key] = 1 if value else 0
        elif key in parameters:
            options[key] = _parameter(path, key, value, parameters[key])
        elif key in lists:
            repeated[key] = _repeated(options, path, key, value)
        else:
            raise ConfigError(f"{path}: unknown key {key!r} (keys are the long option names of --help)")
    return repeated


def _parameter(path: str, key: str, value: object, parameter: Sequence[Any]) -> Any:
    default = parameter[2]
    coerce: Callable[[str], Any] | None = parameter[4] if len(parameter) > 4 else None
    if coerce is None:
        accepted: tuple[type, ...] = (str,)
        wanted = "a string"
    elif isinstance(default, bool) or not isinstance(default, (int, float)):
        accepted, wanted = (int, str), "an integer or a size such as \"100M\""
    elif isinstance(default, int):
        accepted, wanted = (int,), "an integer"
    else:
        accepted, wanted = (int, float), "a number"
    if isinstance(value, bool) or not isinstance(value, accepted):
        raise ConfigError(f"{path}: {key} must be {wanted}, not {_kind(value)}")
    if coerce is None:
        return value
    try:
        return coerce(str(value))
    except ValueError as e:
        raise ConfigError(f"{path}: {key}: {e}") from None


def _repeated(options: usage.Options, path: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path}: {key} must be a list of strings, not {_kind(value)}")
    add = getattr(options, "opt_" + key.replace("-", "_"))
    kept = options[key]
    options[key] = []
    try:
        for item in value:
            add(item)
        return list(options[key])
    except usage.UsageError as e:
        raise ConfigError(f"{path}: {key}: {e}") from None
    finally:
        options[key] = kept

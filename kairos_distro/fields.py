"""Fields of release.yaml read one at a time; ConfigError names the file and field.

config (the whole file's rules) and yamlfile (the text itself) both refuse
through ConfigError, so every refusal is the same one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .cells import BootCheck
from .words import one_line, show, suggest

# A number where a version goes: 1.10 -> "v1.10.0" (semver wants three parts).
NUMBER_VERSION = re.compile(r"\d+(\.\d+){0,2}\Z")
CHANNEL = re.compile(r"^[a-z][a-z0-9]{0,19}\Z")


class ConfigError(ValueError):
    """A release.yaml problem: the file, the field's path (e.g. `cells[2].arch`), why.

    str() is the one line users see: `release.yaml: cells[2].arch: ...`; `at`
    is a `:line:column` position when the problem is in the YAML text itself.
    """

    def __init__(
        self, message: str, *, field: str = "", file: str | Path = "release.yaml", at: str = ""
    ) -> None:
        self.message, self.field, self.file = message, field, Path(file)
        line = f"{file}{at}: " + (f"{field}: " if field else "") + message
        super().__init__(one_line(line))


def field_name(where: str, key: Any) -> str:
    """`cells[1].model`; a key that is not a plain name is shown as YAML writes it."""
    name = key if isinstance(key, str) and key.isidentifier() else show(key)
    return f"{where}.{name}" if where else name


def no_unknown(data: dict, known: tuple[str, ...], where: str, path: Path) -> None:
    """Refuse the first key of `data` not in `known`, with the field it may be a typo of."""
    for key in data:
        if key not in known:
            hint = suggest(key, known)
            raise ConfigError(f"unknown field{hint}", field=field_name(where, key), file=path)


def text(data: dict, key: str, path: Path, where: str = "", *, required: bool = True) -> str:
    """The text at `key`: "" when absent and optional, refused when not text."""
    value = data.get(key)
    if isinstance(value, str) and value:
        return value
    if value is None or value == "":
        if required:
            raise ConfigError("is required", field=field_name(where, key), file=path)
        return ""
    raise ConfigError(not_text(value, key), field=field_name(where, key), file=path)


def not_text(value: Any, key: str) -> str:
    """Why `value` is not text, and how to write it so it is."""
    shown = show(value)
    if isinstance(value, bool):  # yes, no, on, off read as true/false too
        return f"expected text, got {shown} (quote it if it is text)"
    if isinstance(value, (int, float)):
        source = str(getattr(value, "source", shown))
        if key == "version" and NUMBER_VERSION.match(source):
            parts = source.split(".") + ["0"] * (2 - source.count("."))
            return f'expected text, got the number {source}; write "v{".".join(parts)}"'
        return f"expected text, got {shown}; quote it if it is text: {show(source)}"
    return f"expected text, got {shown}"


def flag(data: dict, key: str, path: Path, where: str, default: bool = False) -> bool:
    """true or false at `key`; `default` when absent."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        name = field_name(where, key)
        raise ConfigError(f"expected true or false, got {show(value)}", field=name, file=path)
    return value


def channels(raw: Any, path: Path) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise ConfigError(
            "expected a list of names such as [edge, stable]", field="channels", file=path
        )
    for i, name in enumerate(raw):
        if not CHANNEL.match(name):
            raise ConfigError(
                f"{show(name)} is not a lowercase name", field=f"channels[{i}]", file=path
            )
    if len(set(raw)) != len(raw):
        raise ConfigError("names repeat", field="channels", file=path)
    return tuple(raw)


def boot_checks(raw: Any, where: str, path: Path) -> tuple[BootCheck, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("expected a list of {run, expect}", field=where, file=path)
    checks = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError("expected a mapping with run and expect", field=at, file=path)
        no_unknown(item, ("run", "expect"), at, path)
        checks.append(BootCheck(text(item, "run", path, at), text(item, "expect", path, at)))
    return tuple(checks)

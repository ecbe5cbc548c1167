"""Words of refusals: a value as the user wrote it, and the near miss they meant.

Every message that quotes a user's value goes through here, never repr(), and
nothing shown carries a login (hosts.redact masks it):
- show(): a value from release.yaml (or any data file), in YAML's spelling
  (1.10, null, true, "text"), one line, cut short when long;
- clip(): text typed as a flag or setting, or a command's output, unquoted,
  one line, cut short when long;
- suggest(): "did you mean" for typos (and other tools' names) of field names
  and choices; the suggestion names a choice, unquoted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .hosts import redact

SHOWN_MAX = 200  # characters of a value a message quotes (an image reference fits)
CLIP_MAX = 80  # characters of typed text or output a message quotes
ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def suggest(word: Any, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """'; did you mean model?' when `word` is a near miss of one of `choices`, else ''.

    `aliases` maps names other tools use (x86_64) to the choice meant (amd64).
    """
    choices = tuple(choices)
    alias = aliases.get(word.lower()) if aliases and isinstance(word, str) else None
    near = alias if alias in choices else nearest(word, choices)
    return f"; did you mean {near}?" if near else ""


def nearest(word: Any, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The one of `choices` `word` is a near miss of (case aside), if any."""
    if not isinstance(word, str) or not word:
        return None
    known = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(known), n=1, cutoff=cutoff)
    return known[close[0]] if close else None


def show(value: Any) -> str:
    """`value` as YAML writes it, one line: "text", 1.10 (its source), true, null, [a, b]."""
    text = redact(_show(value, depth=3))  # a value may carry a login: never shown
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 3] + "..."


def clip(text: str, limit: int = CLIP_MAX) -> str:
    """`text` unquoted, on one line (see one_line), cut at `limit` characters."""
    # A long text is cut anyway: escape only what shows (and never a login in it).
    line = redact(one_line(text[: 4 * limit]))
    return line if len(line) <= limit else line[: limit - 3] + "..."


def one_line(text: str) -> str:
    """`text` with line breaks, control characters and lone surrogates escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def quoted(text: str) -> str:
    """A YAML double-quoted scalar of `text`, in UTF-8: YAML's short escapes, and
    \\xXX, \\uXXXX or \\UXXXXXXXX for what YAML may not hold raw (controls, line
    separators, lone surrogates), which YAML reads back. The bake writes answers so."""
    return (
        '"' + "".join(ESCAPES.get(c) or (c if c.isprintable() else _escape(c)) for c in text) + '"'
    )


def _escape(char: str) -> str:
    if char in ESCAPES:
        return ESCAPES[char]
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def _show(value: Any, depth: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quoted(value[: SHOWN_MAX * 2])
    if isinstance(value, (int, float)):
        return one_line(str(getattr(value, "source", value)))
    if isinstance(value, (list, tuple, dict)):
        return _show_collection(value, depth)
    return one_line(type(value).__name__)


def _show_collection(value: list | tuple | dict, depth: int) -> str:
    if depth == 0:
        return "{...}" if isinstance(value, dict) else "[...]"
    if isinstance(value, dict):
        items = list(value.items())[:8]
        inner = ", ".join(f"{_show(k, depth - 1)}: {_show(v, depth - 1)}" for k, v in items)
        return "{" + inner + (", ..." if len(value) > 8 else "") + "}"
    inner = ", ".join(_show(v, depth - 1) for v in value[:8])
    return "[" + inner + (", ..." if len(value) > 8 else "") + "]"

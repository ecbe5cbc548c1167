"""Line-preserving edits of release.yaml: one value changes, every other byte stays.

Comments, quoting, key order and line endings are the owner's; a YAML dump would
lose them. Pure functions over text; `pins` validates the result before writing.
"""

from __future__ import annotations

import json
import re

from . import yamlfile

_KEY = r"[A-Za-z_][A-Za-z0-9_]*"


class EditError(ValueError):
    """No single line holds the value to change; str() is one line."""


_LINE = re.compile(
    r"^(?P<head>[ \t]*(?:-[ \t]+)?(?P<key>" + _KEY + r"):[ \t]*)"
    r"(?P<value>\"[^\"\\]*\"|'[^']*'|[^\s#'\"][^#]*?)"
    r"(?P<tail>[ \t]*(?:#.*)?)$"
)


def _swap(line: str, key: str, old: str, new: str, *, top: bool) -> str | None:
    """`line` with `key`'s value `old` made `new`, same quoting; None if it is not that line."""
    body = line.rstrip("\r\n")  # the line ending (LF, CRLF or none) stays as it was
    end = line[len(body) :]
    found = _LINE.match(body)
    if not found or found["key"] != key or (top and found["head"][:1] in (" ", "\t", "-")):
        return None
    raw = found["value"]
    quote = raw[0] if raw[0] in "\"'" else ""
    value = raw[1:-1] if quote else raw
    if value != old:
        return None
    return f"{found['head']}{quote}{new}{quote}{found['tail']}{end}"


def rewrite(text: str, field: str, old: str, new: str) -> str:
    """`text` with the top-level `field: old` line made `field: new`; nothing else changes.

    A field the file leaves out (its default applies) is added at the end.
    """
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if _swap(line, field, old, new, top=True)]
    if not hits and field not in yamlfile.loads(text):
        return add(text, field, new)
    if len(hits) != 1:
        where = "no line" if not hits else f"{len(hits)} lines"
        raise EditError(f"{field}: found {where} reading `{field}: {old}` to rewrite")
    lines[hits[0]] = _swap(lines[hits[0]], field, old, new, top=True) or ""
    return "".join(lines)


def rewrite_provider(text: str, old: str, new: str) -> str:
    """`text` with every cell's `provider_version: old` made `new`; nothing else changes."""
    lines = text.splitlines(keepends=True)
    count = 0
    for i, line in enumerate(lines):
        swapped = _swap(line, "provider_version", old, new, top=False)
        if swapped is not None:
            lines[i] = swapped
            count += 1
    if not count:
        raise EditError(f"provider_version: found no line reading `provider_version: {old}`")
    return "".join(lines)


def add(text: str, field: str, value: str) -> str:
    """`text` with a top-level `field: value` line at the end, in the file's line ending."""
    newline = "\r\n" if "\r\n" in text else "\n"
    if text and not text.endswith("\n"):
        text += newline
    plain = f"{field}: {value}"
    line = plain if yamlfile.loads(plain) == {field: value} else f"{field}: {json.dumps(value)}"
    return f"{text}{line}{newline}"

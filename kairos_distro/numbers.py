"""Numbers from flags and machine settings: typed, range-checked, refused in one line.

A flag arrives as the text typed after it; a setting (invoke config `kairos.*`)
as the text of an INVOKE_KAIROS_* variable or as whatever YAML made of an
invoke.yaml value. Both are read the same strict way (ASCII digits, a decimal
point where a fraction makes sense: no 1e3, 1_000, inf or nan) and must fall in
the Span that says what the number is. A refusal names the flag or setting,
shows the value as written and the range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .words import clip

WHOLE = re.compile(r"[+-]?[0-9]+")
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class NumberError(ValueError):
    """A flag or setting that is not a number in its range; str() is one line."""


@dataclass(frozen=True)
class Span:
    """What a number counts and the range it must fall in (both ends allowed)."""

    low: int
    high: int
    unit: str
    whole: bool = True  # False: a fraction is fine (seconds)

    def __str__(self) -> str:
        return f"{self.low}..{self.high} {self.unit}"


# test-boot's guest: nothing boots in less than 256 MiB; 1 TiB is beyond any test host.
MEMORY = Span(256, 1_048_576, "MiB")
# A bound on what a boot test needs, well inside QEMU's per-machine CPU limits.
CPUS = Span(1, 256, "CPUs")
TIMEOUT = Span(1, 86_400, "seconds", whole=False)  # at most a day
DAYS = Span(1, 36_500, "days")  # certificates: at least a day, at most a century


def setting(key: str) -> str:
    """How a setting is named in messages: `kairos.boot.memory (INVOKE_KAIROS_BOOT_MEMORY)`."""
    return f"kairos.{key} (INVOKE_KAIROS_{key.replace('.', '_').upper()})"


def text_of(value: object) -> str:
    """A flag's or setting's value as the user wrote it (YAML values spelled as in YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    return "a list" if isinstance(value, (list, tuple)) else "a mapping"


def shown(value: object) -> str:
    """`value` for a one-line message: as typed (words.clip), or "an empty value"."""
    return clip(text_of(value)) or "an empty value"


def number(name: str, value: object, span: Span) -> int | float:
    """`value` as an int (a float where `span.whole` is false) within `span`; else NumberError."""
    text = text_of(value)
    pattern, kind = (WHOLE, "a whole number") if span.whole else (DECIMAL, "a number")
    if not pattern.fullmatch(text):
        raise NumberError(
            f"{name}: {shown(value)} is not {kind} of {span.unit} ({span.low}..{span.high})"
        )
    try:
        found: int | float = int(text) if span.whole else float(text)
    except ValueError:  # more digits than int() reads: far out of range anyway
        found = span.high + 1
    if not span.low <= found <= span.high:
        raise NumberError(f"{name}: {shown(value)} is outside {span}")
    return found

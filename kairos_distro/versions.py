"""Which of two package versions is newer, as the distro's own package manager says.

One rule per purl type (deb, rpm, apk), from univers (aboutcode), which ports
dpkg's, rpm's and apk's comparisons; the freshness probe and the package
changelog both ask here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from univers.versions import AlpineLinuxVersion, DebianVersion, InvalidVersion, RpmVersion

KINDS: dict[str, Any] = {"deb": DebianVersion, "rpm": RpmVersion, "apk": AlpineLinuxVersion}


@cache
def _parse(kind: str, version: str) -> Any:
    return KINDS[kind](version)


def compare(kind: str, a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is older than, equal to or newer than `b`.

    ValueError when `kind` is not one of KINDS or a version does not parse:
    the caller says which package.
    """
    if kind not in KINDS:
        raise ValueError(f"no version rule for {kind} packages")
    try:
        left, right = _parse(kind, a), _parse(kind, b)
    except InvalidVersion as err:
        raise ValueError(str(err)) from None
    return (left > right) - (left < right)


def newer(kind: str, candidate: str, installed: str) -> bool:
    """True when `candidate` would replace `installed` in an upgrade."""
    return compare(kind, candidate, installed) > 0

"""Package changelog: what changed in a cell's packages since its last release.

The packages come from the cell's CycloneDX SBOMs (the purls syft writes),
so the last released SBOM and the new one are compared as the package manager
would: versions.compare on the purl type says upgraded or downgraded. Release
summaries group identical changes across cells, so sixty cells with the same
openssl bump read as one line. Pure: documents and packages in, changes out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packageurl import PackageURL

from . import versions
from .sbom import Package
from .words import clip, show

KINDS = ("added", "removed", "upgraded", "downgraded")  # the order of the JSON lists
HEADLINE = ("upgraded", "added", "removed", "downgraded")  # the order a headline counts in
FIELDS = {"added": ("package", "version"), "removed": ("package", "version")}
MOVED = ("package", "from", "to")  # an upgraded or downgraded entry
FEW_CELLS = 3  # a grouped line names its cells up to this many, else counts them
ARROW = "->"  # as `invoke bump` prints a move


@dataclass(frozen=True)
class Change:
    package: str  # the name; "name:arch" when the cell has the name for several arches
    old: str  # "" when added
    new: str  # "" when removed
    kind: str  # one of KINDS


def _order(c: Change) -> tuple[str, int, str, str]:
    return (c.package, KINDS.index(c.kind), c.old, c.new)


# --- packages of an SBOM -------------------------------------------------------


def _document(doc: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError as err:
            raise ValueError(f"SBOM is not JSON ({clip(str(err))})") from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise ValueError(f"SBOM is not a CycloneDX JSON document ({show(doc)})")
    return doc


def _components(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every component, nested ones included."""
    stack = [doc]
    while stack:
        parent = stack.pop()
        children = parent.get("components", [])
        if not isinstance(children, list) or not all(isinstance(c, dict) for c in children):
            raise ValueError(f"SBOM components are not a list of objects ({show(children)})")
        yield from children
        stack.extend(reversed(children))


def _license(component: dict[str, Any]) -> str:
    """The license as the SBOM gives it: an SPDX id, a name or an expression."""
    found = []
    for entry in component.get("licenses") or []:
        if isinstance(entry, dict):
            lic = entry.get("license") or {}
            found.append(entry.get("expression") or lic.get("id") or lic.get("name") or "")
    return " AND ".join(f for f in found if f)


def _package(component: dict[str, Any]) -> Package | None:
    ref = component.get("purl")
    if not ref:
        return None
    try:
        purl = PackageURL.from_string(str(ref))
    except ValueError as err:
        raise ValueError(f"SBOM purl {clip(str(ref))}: {clip(str(err))}") from None
    if purl.type not in versions.KINDS:
        return None
    q = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    version = purl.version or ""
    if purl.type == "rpm" and q.get("epoch"):  # rpm's own form: [epoch:]version-release
        version = f"{q['epoch']}:{version}"
    source = q.get("upstream", "")
    return Package(purl.name, version, q.get("arch", ""), purl.type, _license(component), source)


def sbom_packages(doc: str | dict[str, Any]) -> list[Package]:
    """The deb, rpm and apk packages of one of our CycloneDX SBOMs, read from the purls.

    Components without a purl, or of another purl type, are not packages and
    are skipped. ValueError (one line) when `doc` is not a CycloneDX document.
    """
    found = (_package(c) for c in _components(_document(doc)))
    return [p for p in found if p is not None]


# --- the diff ------------------------------------------------------------------

# name -> arch -> version -> purl type
Index = dict[str, dict[str, dict[str, str]]]


def _index(packages: Sequence[Package]) -> Index:
    index: Index = {}
    for p in packages:
        index.setdefault(p.name, {}).setdefault(p.arch, {})[p.version] = p.manager
    return index


def _moved(package: str, old: str, new: str, manager: str) -> list[Change]:
    try:
        order = versions.compare(manager, new, old)
    except ValueError:  # univers names its class, not the package: say which one
        raise ValueError(
            f"{package}: {clip(old)} and {clip(new)} are not both {manager} versions"
        ) from None
    if order == 0:  # two spellings of one version (an rpm epoch of 0 or none)
        return []
    return [Change(package, old, new, "upgraded" if order > 0 else "downgraded")]


def _changes(package: str, before: dict[str, str], after: dict[str, str]) -> list[Change]:
    """The change of one package; several versions (rpm's installonly kernels) add and remove."""
    gone = sorted(set(before) - set(after))
    came = sorted(set(after) - set(before))
    if len(gone) == 1 and len(came) == 1:
        return _moved(package, gone[0], came[0], after[came[0]])
    return [Change(package, "", v, "added") for v in came] + [
        Change(package, v, "", "removed") for v in gone
    ]


def diff(old: Sequence[Package], new: Sequence[Package]) -> list[Change]:
    """What changed from `old` to `new` (two SBOMs of a cell), sorted by package.

    A package is its name; a name installed for several arches (multiarch
    dpkg, rpm's i686 next to x86_64) is one package per arch, "name:arch".
    ValueError naming the package when its versions cannot be ordered.
    """
    before, after = _index(old), _index(new)
    changes: list[Change] = []
    for name in sorted(before.keys() | after.keys()):
        was, now = before.get(name, {}), after.get(name, {})
        if len(was) <= 1 and len(now) <= 1:  # one arch each: an arch switch is no new package
            changes += _changes(name, _only(was), _only(now))
            continue
        for arch in sorted(was.keys() | now.keys()):
            label = f"{name}:{arch}" if arch else name
            changes += _changes(label, was.get(arch, {}), now.get(arch, {}))
    return sorted(changes, key=_order)


def _only(arches: dict[str, dict[str, str]]) -> dict[str, str]:
    return next(iter(arches.values()), {})


# --- JSON: what a summary and a release record keep per cell ----------------------


def _entry(c: Change) -> dict[str, str]:
    if c.kind == "added":
        return {"package": c.package, "version": c.new}
    if c.kind == "removed":
        return {"package": c.package, "version": c.old}
    return {"package": c.package, "from": c.old, "to": c.new}


def to_json(changes: Sequence[Change], since: str) -> dict[str, Any]:
    """{"since": release, "added": [...], "removed": [...], "upgraded": [...], "downgraded": ...}.

    added and removed entries are {package, version}; the others {package, from, to}.
    """
    out: dict[str, Any] = {"since": since, **{kind: [] for kind in KINDS}}
    for c in sorted(changes, key=_order):
        out[c.kind].append(_entry(c))
    return out


def first_release() -> dict[str, Any]:
    """The JSON of a cell with no earlier release: there is nothing to compare with."""
    return {"since": ""}


def _change(kind: str, index: int, entry: Any) -> Change:
    keys = FIELDS.get(kind, MOVED)
    values = [entry.get(k) for k in keys] if isinstance(entry, dict) else []
    if len(values) != len(keys) or not values[0] or not all(isinstance(v, str) for v in values):
        wanted = ", ".join(keys)
        raise ValueError(f"package changes: {kind}[{index}] is not {{{wanted}}} ({show(entry)})")
    if kind == "added":
        return Change(values[0], "", values[1], kind)
    if kind == "removed":
        return Change(values[0], values[1], "", kind)
    return Change(values[0], values[1], values[2], kind)


def from_json(data: Any) -> list[Change]:
    """The changes of to_json's form (lists may be missing); ValueError on anything else."""
    if not isinstance(data, dict) or not isinstance(data.get("since", ""), str):
        raise ValueError(f"package changes: not a changelog ({show(data)})")
    changes = []
    for kind in KINDS:
        entries = data.get(kind, [])
        if not isinstance(entries, list):
            raise ValueError(f"package changes: {kind} is not a list ({show(entries)})")
        changes += [_change(kind, i, entry) for i, entry in enumerate(entries)]
    return sorted(changes, key=_order)


def headline(data: Mapping[str, Any]) -> str:
    """A cell's changes in a few words: "3 upgraded, 1 added"; "" when none is known."""
    if not data:
        return ""
    if not data.get("since"):
        return "first release"
    counts = Counter(c.kind for c in from_json(data))
    return ", ".join(f"{counts[k]} {k}" for k in HEADLINE if counts[k]) or "no package changes"


# --- across cells ----------------------------------------------------------------


def group(per_cell: Mapping[str, Sequence[Change]]) -> list[tuple[Change, list[str]]]:
    """Each distinct change once, with the cells that have it: most shared first, then by name."""
    cells: dict[Change, list[str]] = {}
    for cell, changes in per_cell.items():
        for change in changes:
            have = cells.setdefault(change, [])
            if cell not in have:
                have.append(cell)
    return sorted(cells.items(), key=lambda kv: (-len(kv[1]), *_order(kv[0])))


def describe(change: Change) -> str:
    """One change in words: upgraded openssl 3.0.11-1 -> 3.0.13-1, added kdt-hello 1.1."""
    if change.kind == "added":
        return f"added {change.package} {change.new}"
    if change.kind == "removed":
        return f"removed {change.package} {change.old}"
    return f"{change.kind} {change.package} {change.old} {ARROW} {change.new}"


def where(cells: Sequence[str], cells_total: int) -> str:
    """Which cells: all 60 cells, 2 cells: a, b (a few are named) or 12 cells."""
    n = len(cells)
    if n == cells_total and n > 1:
        return f"all {n} cells"
    noun = "cell" if n == 1 else "cells"
    return f"{n} {noun}: {', '.join(cells)}" if n <= FEW_CELLS else f"{n} {noun}"


def lines(grouped: Sequence[tuple[Change, Sequence[str]]], cells_total: int) -> list[str]:
    """One readable line per grouped change, e.g. "added kdt-hello 1.1 (2 cells: a, b)"."""
    return [f"{describe(c)} ({where(cells, cells_total)})" for c, cells in grouped]

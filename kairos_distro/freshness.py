"""The freshness probe: do a published cell's distro mirrors now carry newer packages?

kairos-init's install stage refreshes and upgrades every installed package
before it installs its own (yip's Packages with Refresh and Upgrade), so a
rebuild takes every newer candidate the mirrors offer. The probe asks the
distro's own package manager, in a throwaway container of the pinned base
image on the build's network, for the candidates of the packages the cell's
published SBOM lists; probes.py holds the script and reads its answer.

Cells sharing a base image and arch share one probe (their mirrors are the
same); probes of different bases run in parallel. A probe that cannot reach
its mirrors fails its cells: it must never read as "up to date".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import probes
from .config import Cell
from .runner import Runner, StepError
from .sbom import Package

WORKERS = 4  # probes at once: each is one container, mostly waiting on its mirror
TIMEOUT = 900.0  # seconds one probe may take (a slow mirror's metadata is large)
HELD = 5  # held-back updates a skip reason names


@dataclass
class Found:
    """What one cell's probe said: its updates, or the one-line error that failed it."""

    updates: list[probes.Update] = field(default_factory=list)
    manager: str = ""  # apt | dnf | zypper | apk | none
    checked: int = 0  # packages asked about
    error: Exception | None = None  # a StepError, or a client's error (docker's)


def _group(
    cells: Mapping[Cell, Sequence[Package]], image_of: Callable[[Cell], str]
) -> dict[tuple[str, str], list[Cell]]:
    """Cells by (base image, arch): one probe each."""
    groups: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((image_of(cell), cell.arch), []).append(cell)
    return groups


def _names(cells: list[Cell], packages: Mapping[Cell, Sequence[Package]]) -> list[str]:
    return probes.names([p for cell in cells for p in packages[cell]])


def probe(
    runner: Runner,
    packages: Mapping[Cell, Sequence[Package]],
    image_of: Callable[[Cell], str],
    network: str = "",
) -> dict[str, Found]:
    """Probe each cell's packages; by cell id. Failures are in `Found.error`, per cell."""
    groups = _group(packages, image_of)
    found: dict[str, Found] = {}

    def one(key: tuple[str, str]) -> None:
        (image, arch), cells = key, groups[key]
        names = _names(cells, packages)
        label = cells[0].id if len(cells) == 1 else f"{cells[0].id} +{len(cells) - 1}"
        if not names:  # no dpkg, rpm or apk database: nothing a mirror can update
            found.update({c.id: Found(manager="none") for c in cells})
            return
        runner.say(label, f"probing {len(names)} packages for newer versions in {image}")
        try:
            argv = probes.command(names)
            answer = runner.output(
                label,
                "probe",
                image,
                argv,
                network=network,
                platform=f"linux/{arch}",
                timeout=TIMEOUT,
            )
            result = probes.parse(answer.code, answer.out)
            updates = {c.id: probes.updates(packages[c], result) for c in cells}
        except (probes.ProbeError, StepError) as err:
            # Each cell of the group fails alone, named as itself.
            step, why = (
                (err.step, err.reason) if isinstance(err, StepError) else ("probe", str(err))
            )
            found.update({c.id: Found(error=StepError(c.id, step, why)) for c in cells})
            return
        for cell in cells:
            found[cell.id] = Found(updates[cell.id], result.manager, len(packages[cell]))
        runner.say(label, f"{result.manager}: {_count(found[cells[0].id].updates)}")

    with ThreadPoolExecutor(max_workers=min(WORKERS, len(groups) or 1)) as pool:
        list(pool.map(one, groups))
    return found


def _count(updates: Sequence[probes.Update]) -> str:
    if not updates:
        return "no newer packages"
    return f"{len(updates)} newer package" + ("s" if len(updates) > 1 else "")


def key(update: probes.Update) -> str:
    """How a release record remembers an update it was built with: name, arch, candidate."""
    name = f"{update.name}:{update.arch}" if update.arch else update.name
    return f"{name}={update.candidate}"


def pending(updates: Sequence[probes.Update], built_with: object) -> list[probes.Update]:
    """The updates the last release was not already made with.

    A release made while a candidate was available and still without it (apt
    holds back an upgrade that needs a new package) must not rebuild forever.
    """
    seen = set(built_with) if isinstance(built_with, list) else set()
    return [u for u in updates if key(u) not in seen]


def summary(found: Found, held: Sequence[probes.Update] = ()) -> str:
    """What a skip's reason adds: the probe ran, and what it found."""
    if found.manager == "none":
        return "no package manager in the image (only its base digest can move it)"
    said = f"no newer packages ({found.manager}, {found.checked} packages)"
    if held:
        names = ", ".join(u.name for u in held[:HELD])
        said += f"; held back since released: {names}"
    return said

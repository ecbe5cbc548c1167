"""Release stage: the matrix as CI systems read it, and running a stage per cell.

The matrix here is derived from release.yaml only; CI shards it with its own
matrix feature (GitHub `strategy.matrix`, GitLab `parallel:matrix`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml
from docker.errors import DockerException

from . import naming
from .config import Cell, Release
from .naming import NamingError
from .registry import RegistryError
from .runner import Runner, Skip, StepError, summary, timed

# GitHub-hosted runners per arch; riscv64 has none, so it builds emulated.
GITHUB_RUNNER = {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm", "riscv64": "ubuntu-24.04"}


def cell_row(release: Release, cell: Cell) -> dict[str, str]:
    ident = naming.Identity.expected(release, cell)
    return {
        "cell": cell.id,
        "arch": cell.arch,
        "model": cell.model,
        "variant": cell.variant,
        "provider": f"{cell.provider} {cell.provider_version}" if cell.provider else "none",
        "trusted_boot": "yes" if cell.trusted_boot else "no",
        "fips": "yes" if cell.fips else "no",
        "image": naming.image_ref(release, ident),
    }


def matrix_json(release: Release) -> str:
    rows = [
        {
            "cell": c.id,
            "arch": c.arch,
            "platform": f"linux/{c.arch}",
            "model": c.model,
            "variant": c.variant,
            "provider": c.provider or "none",
            "provider_version": c.provider_version or "",
            "trusted_boot": c.trusted_boot,
            "fips": c.fips,
        }
        for c in release.cells
    ]
    return json.dumps(rows, indent=2)


def github_matrix(release: Release) -> str:
    """One line for `$GITHUB_OUTPUT`, read back with fromJSON() as strategy.matrix."""
    include = [
        {"cell": c.id, "arch": c.arch, "runner": GITHUB_RUNNER[c.arch]} for c in release.cells
    ]
    return json.dumps({"include": include}, separators=(",", ":"))


def gitlab_pipeline(release: Release) -> str:
    """A child pipeline whose parallel:matrix has one job per cell."""
    job = {
        "extends": ".cell",
        "parallel": {"matrix": [{"CELL": [c.id for c in release.cells]}]},
    }
    return yaml.safe_dump(
        {"include": [{"local": ".gitlab/cell.yml"}], "cell": job}, sort_keys=False
    )


@dataclass
class Outcome:
    cell: Cell
    ok: bool
    detail: str
    seconds: float
    error: StepError | None = field(default=None, repr=False)
    skipped: bool = False

    @property
    def result(self) -> str:
        return "skipped" if self.skipped else "ok" if self.ok else "FAILED"


def for_each_cell(
    runner: Runner,
    cells: list[Cell],
    stage: str,
    act: Callable[[Cell], str],
) -> list[Outcome]:
    """Run `act` per cell; a failing cell stops itself only, the others go on."""
    outcomes = []
    for cell in cells:
        with timed() as elapsed:
            try:
                detail = act(cell)
                outcomes.append(Outcome(cell, True, detail, elapsed()))
            except Skip as why:
                runner.say(cell.id, f"SKIPPED {stage}: {why}")
                outcomes.append(Outcome(cell, True, f"skipped: {why}", elapsed(), skipped=True))
            except (NamingError, RegistryError, DockerException) as err:
                err = StepError(cell.id, stage, _one_line(err))
                runner.say(cell.id, f"FAILED {err.step}: {err.reason}")
                outcomes.append(Outcome(cell, False, str(err), elapsed(), err))
            except StepError as err:
                runner.say(cell.id, f"FAILED {err.step}: {err.reason}")
                for line in err.tail[-5:]:
                    runner.say(cell.id, f"  | {line}")
                outcomes.append(Outcome(cell, False, str(err), elapsed(), err))
    rows = [
        {
            "cell": o.cell.id,
            "result": o.result,
            "seconds": f"{o.seconds:.1f}",
            "detail": o.detail
            if o.ok
            else f"{o.error.step if o.error else stage}: {o.error.reason if o.error else o.detail}",
        }
        for o in outcomes
    ]
    if not runner.dry:
        summary(f"{stage} summary", rows, runner.out)
    return outcomes


def _one_line(err: Exception) -> str:
    text = getattr(err, "explanation", None) or str(err)
    return " ".join(str(text).split())

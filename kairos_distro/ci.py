"""The release matrix as CI systems read it, derived from release.yaml only.

CI shards it with its own matrix feature (GitHub `strategy.matrix`, GitLab
`parallel:matrix`); `invoke matrix --format` prints these.
"""

from __future__ import annotations

import json

import yaml

from . import naming
from .config import Cell, Release

# Jobs one matrix may make. GitHub: "A matrix will generate a maximum of 256 jobs per
# workflow run" (docs.github.com, Running variations of jobs in a workflow). GitLab:
# parallel:matrix permutations, PARALLEL_LIMIT in lib/gitlab/ci/config/entry/product/parallel.rb.
GITHUB_MATRIX_LIMIT = 256
GITLAB_MATRIX_LIMIT = 200
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
        {
            "cell": c.id,
            "arch": c.arch,
            "runner": GITHUB_RUNNER[c.arch],
            "trusted_boot": c.trusted_boot,
        }
        for c in release.cells
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


class MatrixError(ValueError):
    """A matrix CI cannot run; str() is one line saying what to do."""


FORMATS = {"json": matrix_json, "github": github_matrix, "gitlab": gitlab_pipeline}
# One job per cell, so a release file with more cells than this is refused before CI is.
LIMITS = {
    "github": ("GitHub Actions", GITHUB_MATRIX_LIMIT),
    "gitlab": ("GitLab", GITLAB_MATRIX_LIMIT),
}


def render(release: Release, format: str) -> str:
    """The matrix in `format` (json, github or gitlab), refused where CI would refuse it."""
    if format not in FORMATS:
        raise MatrixError(f"--format must be table, json, github or gitlab (got {format})")
    system, limit = LIMITS.get(format, ("", 0))
    jobs = len(release.cells)
    if limit and jobs > limit:
        raise MatrixError(
            f"{release.path}: {jobs} cells make {jobs} {system} jobs, more than the {limit} "
            "one matrix may have; split the cells across release files (--release-file)"
        )
    return FORMATS[format](release)

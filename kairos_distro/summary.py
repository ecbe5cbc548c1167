"""What a release run says at its end: per cell, its result and the ledger's reason.

The same rows three ways: a terminal table, Markdown (GitHub's step summary,
artifacts/release-summary.md) and JSON (artifacts/release-summary.json, which
`invoke summary` reads back to sum up a release sharded over CI jobs).
"""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

from .config import Cell
from .runner import StepError

MARKDOWN, JSON = "release-summary.md", "release-summary.json"
NO_SUMMARY = "no summary (job stopped early)"


@dataclass
class Report:
    """One cell's outcome, for the terminal, Markdown and JSON summaries."""

    cell: str
    status: str = "pending"  # published | up to date | failed | dry run
    steps: dict[str, str] = field(default_factory=dict)
    image: str = ""
    artifacts: list[str] = field(default_factory=list)
    media: str = ""  # kinds of artifacts: iso / uki iso / raw (+ oci), sbom
    boot: str = ""
    signature: str = ""
    seconds: float = 0.0
    error: str = ""
    reason: str = ""  # the ledger's: why skipped, released, rebuilt or reused

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        """A cell of release-summary.json; keys this version does not know are dropped."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def table(title: str, rows: list[dict[str, str]], out: TextIO | None = None) -> None:
    """A plain table, readable in a terminal and in CI logs."""
    if not rows:
        return
    out = out or sys.stdout
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in cols}
    print(f"\n{title}", file=out)
    print("  ".join(c.upper().ljust(widths[c]) for c in cols).rstrip(), file=out)
    for r in rows:
        print("  ".join(r.get(c, "").ljust(widths[c]) for c in cols).rstrip(), file=out)


def rows(reports: list[Report]) -> list[dict[str, str]]:
    return [
        {
            "cell": r.cell,
            "result": r.status,
            "reason": r.reason or "-",
            "image": r.image or "-",
            "artifacts": r.media or "-",
            "boot": r.boot or "-",
            "signature": r.signature or "-",
            "seconds": f"{r.seconds:.1f}",
            "error": r.error or "-",
        }
        for r in reports
    ]


def markdown(reports: list[Report], version: str, title: str = "") -> str:
    table = rows(reports)
    head = "| " + " | ".join(table[0]) + " |" if table else ""
    lines = [
        f"## {title or f'Release {version}'}",
        "",
        head,
        "|" + "---|" * len(table[0] if table else []),
    ]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in r.values()) + " |" for r in table]
    return "\n".join(lines) + "\n"


def as_json(reports: list[Report], version: str) -> str:
    return json.dumps({"version": version, "cells": [asdict(r) for r in reports]}, indent=2)


def write(reports: list[Report], version: str, out: Path) -> list[Path]:
    """artifacts/release-summary.{md,json}, and the GitHub step summary when set."""
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / MARKDOWN, out / JSON
    md.write_text(markdown(reports, version))
    js.write_text(as_json(reports, version) + "\n")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as f:
            f.write(markdown(reports, version))
    return [md, js]


FORMATS = ("table", "markdown", "json")


def render(form: str, reports: list[Report], version: str, what: str = "") -> str:
    """One of FORMATS as text; `what` adds to the title (e.g. "all cells")."""
    title = f"Release {version}" + (f": {what}" if what else "")
    if form == "markdown":
        return markdown(reports, version, title)
    if form == "json":
        return as_json(reports, version) + "\n"
    out = io.StringIO()
    table(title[0].lower() + title[1:], rows(reports), out)
    return out.getvalue()


class SummaryError(ValueError):
    """A summary file that cannot be read; one line naming it."""


def collect(directory: Path, cells: list[str]) -> tuple[str, list[Report]]:
    """(version, one report per cell) from every release-summary.json under `directory`.

    Cells listed in `cells` with no summary (a job that stopped early) say so;
    cells found beyond them follow in file order.
    """
    found: dict[str, Report] = {}
    version = ""
    for path in sorted(directory.rglob(JSON)):
        try:
            data = json.loads(path.read_text())
            version = str(data["version"])
            found.update((c["cell"], Report.from_json(c)) for c in data["cells"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise SummaryError(f"{path}: not a release summary ({err})") from None
    ordered = [found.pop(cell, Report(cell, NO_SUMMARY)) for cell in cells]
    return version or "?", ordered + list(found.values())


# -- one stage over cells (`invoke build`, `iso`, ...): its own small table ----------------
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


def stage_rows(outcomes: list[Outcome]) -> list[dict[str, str]]:
    return [
        {
            "cell": o.cell.id,
            "result": o.result,
            "seconds": f"{o.seconds:.1f}",
            "detail": f"{o.error.step}: {o.error.reason}" if o.error else o.detail,
        }
        for o in outcomes
    ]

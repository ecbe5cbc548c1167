"""What a release run says at its end: per cell, its result and the ledger's reason.

The same rows three ways: a terminal table, Markdown (GitHub's step summary,
artifacts/release-summary.md) and JSON (artifacts/release-summary.json, which
`invoke summary` reads back to sum up a release sharded over CI jobs). Each way
then lists the package changes since the last release, grouped across cells
(changelog.py), so one bump in every cell reads as one line.
"""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TextIO

from . import changelog, vulns
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
    # changelog.to_json of the packages since the last release; {} when none is known
    # (nothing built), changelog.first_release() when there is no earlier release
    packages: dict[str, Any] = field(default_factory=dict)
    vulnerabilities: str = ""  # counts by severity (vulns.Report.headline), "" unscanned
    # vulns.changes_json of what this release fixed and what is new; {} when unknown
    vulnerability_changes: dict[str, Any] = field(default_factory=dict)

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
    """One row per cell; the packages and vulnerabilities columns only when some cell has one."""
    packages = any(r.packages for r in reports)
    scanned = any(r.vulnerabilities for r in reports)
    return [
        {
            "cell": r.cell,
            "result": r.status,
            "reason": r.reason or "-",
            **({"packages": changelog.headline(r.packages) or "-"} if packages else {}),
            **({"vulnerabilities": r.vulnerabilities or "-"} if scanned else {}),
            "image": r.image or "-",
            "artifacts": r.media or "-",
            "boot": r.boot or "-",
            "signature": r.signature or "-",
            "seconds": f"{r.seconds:.1f}",
            "error": r.error or "-",
        }
        for r in reports
    ]


def package_changes(reports: list[Report]) -> list[tuple[changelog.Change, list[str]]]:
    """The cells' package changes, each distinct one once with the cells that have it."""
    return changelog.group({r.cell: changelog.from_json(r.packages) for r in reports})


def package_lines(reports: list[Report]) -> list[str]:
    """The terminal's section after the table: one line per grouped change."""
    return changelog.lines(package_changes(reports), len(reports))


def vulnerability_changes(
    reports: list[Report], kind: str
) -> list[tuple[vulns.Finding, list[str]]]:
    """What the release fixed (kind "fixed") or brought (kind "new"), grouped across cells."""
    per_cell = {r.cell: vulns.changes_from_json(r.vulnerability_changes) for r in reports}
    return vulns.grouped(per_cell, kind)


def vulnerability_lines(reports: list[Report], kind: str) -> list[str]:
    return [vulns.line(f, cells) for f, cells in vulnerability_changes(reports, kind)]


VULN_SECTIONS = {"fixed": "vulnerabilities fixed", "new": "new vulnerabilities"}


def _md_row(values: list[str]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"


def _md_changes(reports: list[Report]) -> list[str]:
    grouped = package_changes(reports)
    if not grouped:
        return []
    head = ["change", "package", "from", "to", "cells"]
    lines = ["", "### Package changes", "", _md_row(head), "|" + "---|" * len(head)]
    for c, cells in grouped:
        where = changelog.where(cells, len(reports))
        lines.append(_md_row([c.kind, c.package, c.old or "-", c.new or "-", where]))
    return lines


def markdown(reports: list[Report], version: str, title: str = "") -> str:
    table = rows(reports)
    head = "| " + " | ".join(table[0]) + " |" if table else ""
    lines = [
        f"## {title or f'Release {version}'}",
        "",
        head,
        "|" + "---|" * len(table[0] if table else []),
    ]
    lines += [_md_row(list(r.values())) for r in table]
    lines += _md_changes(reports)
    for kind, title in VULN_SECTIONS.items():
        found = vulnerability_lines(reports, kind)
        if found:
            lines += ["", f"### {title.capitalize()}", "", *(f"- {line}" for line in found)]
    return "\n".join(lines) + "\n"


def _json_cell(r: Report) -> dict[str, Any]:
    cell = asdict(r)
    for key in ("packages", "vulnerabilities", "vulnerability_changes"):
        if not cell[key]:  # nothing known: the key is left out, as summaries before it had
            del cell[key]
    return cell


def as_json(reports: list[Report], version: str) -> str:
    grouped = [
        {"kind": c.kind, "package": c.package, "from": c.old, "to": c.new, "cells": cells}
        for c, cells in package_changes(reports)
    ]
    cells = [_json_cell(r) for r in reports]
    fixes = {
        k: [{**asdict(f), "cells": cells} for f, cells in vulnerability_changes(reports, k)]
        for k in VULN_SECTIONS
    }
    doc = {"version": version, "cells": cells, "package_changes": grouped}
    return json.dumps(doc | {"vulnerability_changes": fixes}, indent=2)


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
    print_package_changes(reports, out)
    return out.getvalue()


def print_package_changes(reports: list[Report], out: TextIO | None = None) -> None:
    """After the terminal table: the package changes, one line each, when there are any."""
    sections = {"package changes": package_lines(reports)}
    sections |= {t: vulnerability_lines(reports, k) for k, t in VULN_SECTIONS.items()}
    for title, found in sections.items():
        if found:
            print(f"\n{title}", file=out or sys.stdout)
            for line in found:
                print(f"  {line}", file=out or sys.stdout)


class SummaryError(ValueError):
    """A summary file that cannot be read; one line naming it."""


def collect(directory: Path, cells: list[str]) -> tuple[str, list[Report]]:
    """(version, one report per cell) from every release-summary.json under `directory`.

    Cells listed in `cells` with no summary (a job that stopped early) say so;
    cells found beyond them follow in file order. Each cell keeps its own package
    changes; render() groups them again over all cells.
    """
    found: dict[str, Report] = {}
    version = ""
    for path in sorted(directory.rglob(JSON)):
        try:
            data = json.loads(path.read_text())
            version = str(data["version"])
            for c in data["cells"]:
                found[c["cell"]] = report = Report.from_json(c)
                changelog.from_json(report.packages)  # garbage fails here, naming the file
                vulns.changes_from_json(report.vulnerability_changes)
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

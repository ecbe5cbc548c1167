"""Vulnerability reports: what grype found in a cell's SBOM, counted and compared.

grype's JSON report (`grype sbom:FILE -o json`) becomes a Report: one Finding
per vulnerability and package, and the database it was judged against. The
release record keeps the findings, so the next release says what it fixed
and what is new, grouped across cells like the package changelog. Pure:
documents in, reports and lines out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .words import clip

# Most severe first: the order counts and lists are shown in.
SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unknown")
FEW_CELLS = 3  # a grouped line names its cells up to this many, else counts them


class ReportError(ValueError):
    """A report that cannot be read; str() is one line."""


@dataclass(frozen=True, order=True)
class Finding:
    id: str  # CVE-2026-0001, GHSA-..., as grype names it
    package: str
    version: str
    severity: str  # one of SEVERITIES
    fix: str = ""  # the first fixed version, "" when none is known
    kind: str = ""  # the package's purl type: deb, rpm, apk, go-module, ...

    @property
    def key(self) -> tuple[str, str]:
        """What "the same vulnerability" means across releases: the ID in that package."""
        return (self.id, self.package)

    def line(self) -> str:
        fix = f", fixed in {self.fix}" if self.fix else ", no fix yet"
        return f"{self.id} ({self.severity}) in {self.package} {self.version}{fix}"


@dataclass(frozen=True)
class Database:
    built: datetime | None  # when the database was built: its age says how current a report is
    schema: str = ""
    checksum: str = ""  # sha256:... of the archive it came from, "" when unknown

    def age_days(self, now: datetime) -> int | None:
        return None if self.built is None else max((now - self.built).days, 0)


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    database: Database

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            found[f.severity] += 1
        return found

    def headline(self) -> str:
        """`2 critical, 1 high, 5 low` (nothing said of zeros); `none` when clean."""
        parts = [f"{n} {s}" for s, n in self.counts().items() if n]
        return ", ".join(parts) or "none"


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _severity(text: Any) -> str:
    name = str(text or "").lower()
    return name if name in SEVERITIES else "unknown"


def _finding(match: Any) -> Finding:
    vuln = match.get("vulnerability") if isinstance(match, dict) else None
    artifact = match.get("artifact") if isinstance(match, dict) else None
    if not isinstance(vuln, dict) or not isinstance(artifact, dict):
        vuln = artifact = {}  # not a match: refused below, never skipped (or a crash)
    fix = vuln.get("fix")
    fixes = fix.get("versions") if isinstance(fix, dict) else None
    fixes = fixes if isinstance(fixes, list) else []
    if not vuln.get("id") or not artifact.get("name"):
        raise ReportError(f"grype match without an ID or a package ({clip(json.dumps(match))})")
    return Finding(
        id=str(vuln["id"]),
        package=str(artifact["name"]),
        version=str(artifact.get("version", "")),
        severity=_severity(vuln.get("severity")),
        fix=str(fixes[0]) if fixes else "",
        kind=str(artifact.get("type", "")),
    )


def database_of(descriptor: Mapping[str, Any], checksum: str = "") -> Database:
    """The database a grype JSON report names (descriptor.db.status)."""
    db = descriptor.get("db") or {}
    status = db.get("status") or db
    return Database(_time(status.get("built")), str(status.get("schemaVersion", "")), checksum)


def parse(text: str | bytes, checksum: str = "") -> Report:
    """A grype JSON report; ReportError (one line) when it is not one."""
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise ReportError(f"grype wrote no JSON report ({clip(str(err))})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("matches"), list):
        raise ReportError("grype's report has no list of matches")
    findings = {_finding(m) for m in doc["matches"]}
    return Report(
        tuple(sorted(findings, key=_order)), database_of(doc.get("descriptor") or {}, checksum)
    )


def _order(f: Finding) -> tuple[int, str, str, str]:
    return (SEVERITIES.index(f.severity), f.id, f.package, f.version)


# --- the release record -----------------------------------------------------------


def to_record(report: Report) -> dict[str, Any]:
    """What a release record keeps of a report: counts, the database, every finding."""
    db = report.database
    return {
        "counts": report.counts(),
        "database": {
            "built": db.built.strftime("%Y-%m-%dT%H:%M:%SZ") if db.built else "",
            "schema": db.schema,
            "checksum": db.checksum,
        },
        "findings": [
            [f.id, f.package, f.version, f.severity, f.fix, f.kind] for f in report.findings
        ],
    }


def from_record(raw: Any) -> Report | None:
    """The report a release record kept; None when it kept none or it is unreadable."""
    if not isinstance(raw, dict) or not isinstance(raw.get("findings"), list):
        return None
    try:
        findings = tuple(_from_row(row) for row in raw["findings"])
    except TypeError:
        return None
    db = raw.get("database") if isinstance(raw.get("database"), dict) else {}
    return Report(findings, Database(_time(db.get("built")), str(db.get("schema", ""))))


# --- what a release fixed --------------------------------------------------------


def diff(before: Report, after: Report) -> dict[str, list[Finding]]:
    """Findings the release fixed (gone since `before`) and the new ones."""
    old = {f.key: f for f in before.findings}
    new = {f.key: f for f in after.findings}
    return {
        "fixed": sorted((old[k] for k in old.keys() - new.keys()), key=_order),
        "new": sorted((new[k] for k in new.keys() - old.keys()), key=_order),
    }


def grouped(
    per_cell: Mapping[str, Mapping[str, Iterable[Finding]]], kind: str
) -> list[tuple[Finding, list[str]]]:
    """Each finding of `kind` (fixed or new) once, with the cells it concerns."""
    cells: dict[Finding, list[str]] = {}
    for cell, changes in per_cell.items():
        for f in changes.get(kind, ()):
            cells.setdefault(f, []).append(cell)
    return [(f, cells[f]) for f in sorted(cells, key=_order)]


def line(finding: Finding, cells: list[str]) -> str:
    where = ", ".join(cells) if len(cells) <= FEW_CELLS else f"{len(cells)} cells"
    return f"{finding.line()}: {where}"


def changes_json(changes: Mapping[str, Iterable[Finding]]) -> dict[str, list[list[str]]]:
    """diff()'s result as a summary keeps it: rows as the record keeps findings."""
    return {k: [_row(f) for f in changes.get(k, ())] for k in ("fixed", "new")}


def changes_from_json(raw: Any) -> dict[str, list[Finding]]:
    """changes_json read back; ReportError (one line) when it is not that."""
    if not raw:
        return {}
    try:
        return {k: [_from_row(row) for row in raw.get(k, [])] for k in ("fixed", "new")}
    except (AttributeError, TypeError):
        raise ReportError(f"not a list of vulnerability changes ({clip(str(raw))})") from None


def _row(f: Finding) -> list[str]:
    return [f.id, f.package, f.version, f.severity, f.fix, f.kind]


def _from_row(row: Any) -> Finding:
    """A row _row wrote; TypeError when it is not one (a severity this version cannot rank
    would fail counts() and every sort later, far from the record it came from)."""
    found = Finding(*map(str, row))
    if found.severity not in SEVERITIES:
        raise TypeError(f"unknown severity {found.severity}")
    return found

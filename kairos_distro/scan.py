"""Scan stage: each cell's vulnerability report, from its SBOM, judged by the policy.

grype reads the SBOM syft wrote (never the image again), against the pinned
database; its whole JSON report is kept beside the SBOM as an artifact (and
attested by publish), the counts go to the summaries, and the policy decides
before anything is pushed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import artifacts, naming, policy, vulndb, vulns
from .build import Built
from .config import Cell, Release
from .runner import Runner, Skip, StepError
from .sbom import write_atomically
from .summary import Report

REPORT_SUFFIX = ".grype.json"
PREDICATE = "https://cosign.sigstore.dev/attestation/vuln/v1"  # cosign's `--type vuln`


@dataclass(frozen=True)
class Database:
    """The database of this run: where grype reads it, and what pinned it."""

    path: Path
    pin: vulndb.Pin
    followed: bool  # no pin in release.yaml: the listing's latest at run time


def predicate(report: Path) -> dict[str, Any]:
    """cosign's vuln predicate (`cosign attest --type vuln`) around grype's whole report."""
    doc = json.loads(report.read_text(encoding="utf-8"))
    descriptor = doc.get("descriptor") or {}
    status = (descriptor.get("db") or {}).get("status") or {}
    version = str(descriptor.get("version", ""))
    when = descriptor.get("timestamp") or ""
    return {
        "invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": f"pkg:golang/github.com/anchore/grype@v{version.removeprefix('v')}",
            "version": version,
            "db": {
                "uri": str(status.get("from", "")),
                "version": str(status.get("schemaVersion", "")),
            },
            "result": doc,
        },
        "metadata": {"scanStartedOn": when, "scanFinishedOn": when},
    }


def report_file(artifacts_dir: Path | None, cell: Cell) -> Path | None:
    if artifacts_dir is None:
        return None
    found = sorted((artifacts_dir / cell.id).glob(f"*{REPORT_SUFFIX}"))
    return found[0] if found else None


def database(runner: Runner, release: Release) -> Database:
    """The pinned database, fetched and imported once; refused when missing or empty."""
    artifacts.docker_socket("grype")  # it reads the SBOM and the database through bind mounts
    try:
        pin = vulndb.parse_pin(release.vulndb) if release.vulndb else vulndb.latest()
        path = vulndb.installed(runner, release.grype, pin)
        _not_empty(path / vulndb.SCHEMA_DIR / vulndb.DB_FILE)
    except vulndb.VulnDbError as err:
        raise StepError("vulndb", "scan", str(err)) from None
    if not release.vulndb:
        today = f"vulndb is not pinned: scanning against today's {pin.url}"
        runner.say("vulndb", f"{today} (`invoke bump vulndb` pins it)")
    return Database(path, pin, not release.vulndb)


def once(fetch: Callable[[], Database]) -> Callable[[], Database]:
    """`fetch`, asked at most once: its database, or its refusal, serves every cell of a run."""
    kept: list[Database | StepError | Skip] = []

    def get() -> Database:
        if not kept:
            try:
                kept.append(fetch())
            except (StepError, Skip) as err:
                kept.append(err)
        if isinstance(kept[0], Exception):
            raise kept[0]
        return kept[0]

    return get


def _not_empty(db: Path) -> None:
    """A database without advisories would report every image clean: refuse it."""
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
            count = conn.execute("SELECT count(*) FROM vulnerability_handles").fetchone()[0]
    except sqlite3.Error as err:
        raise vulndb.VulnDbError(f"vulndb: {db} is not a grype v6 database ({err})") from None
    if not count:
        raise vulndb.VulnDbError(
            f"vulndb: {db} holds no vulnerabilities: refusing to call images clean"
        )


def scan_cell(
    runner: Runner, release: Release, built: Built, db: Database, out: Path
) -> vulns.Report:
    """grype's report of the cell's SBOM, written beside it, and read."""
    cell = built.cell
    bom = artifacts.sbom_file(out, cell)
    if bom is None:
        raise StepError(cell.id, "scan", f"no SBOM in {out / cell.id}: run `invoke iso` first")
    raw = vulndb.scan(runner, cell.id, release.grype, db.path, bom)
    try:
        report = vulns.parse(raw, db.pin.checksum)
    except vulns.ReportError as err:
        raise StepError(cell.id, "scan", str(err)) from None
    dest = out / cell.id / (naming.artifact_name(built.identity) + REPORT_SUFFIX)
    write_atomically(dest, raw.decode("utf-8", errors="replace"))
    runner.say(cell.id, f"vulnerabilities: {shown(release, report)} ({dest.name})")
    return report


def shown(release: Release, report: vulns.Report, now: datetime | None = None) -> str:
    """The counts and the database's age, as every summary shows them."""
    age = report.database.age_days(now or datetime.now(UTC))
    if age is None:
        return f"{report.headline()}; database of unknown age"
    days = f"{age} day{'' if age == 1 else 's'} old"
    limit = release.vulnerabilities.max_age
    return f"{report.headline()}; database {days}" + (
        f", over max_age {limit}" if age > limit else ""
    )


def age_warning(release: Release, report: vulns.Report, now: datetime | None = None) -> str:
    """A loud line when the database is older than vulnerabilities.max_age; else ""."""
    age = report.database.age_days(now or datetime.now(UTC))
    limit = release.vulnerabilities.max_age
    if age is None or age <= limit:
        return ""
    return (
        f"WARNING: vulnerability database is {age} days old (max_age {limit}): "
        "run `invoke bump vulndb`"
    )


def judge(release: Release, cell: Cell, report: vulns.Report) -> None:
    """The policy's verdict; a refusal is the cell's one-line scan failure."""
    why = policy.verdict(release.vulnerabilities, report, datetime.now(UTC).date())
    if why:
        raise StepError(cell.id, "scan", why)


def warned_and_judged(runner: Runner, release: Release, cell: Cell, report: vulns.Report) -> None:
    """The database's age said loudly when too old, then the policy's verdict."""
    warning = age_warning(release, report)
    if warning:
        runner.say(cell.id, warning)
    judge(release, cell, report)


def unjudged(release: Release, cell: Cell, why: Skip) -> None:
    """A scan that cannot run: a refusal when the policy has something to judge."""
    if release.vulnerabilities.fail_on:
        reason = f"vulnerabilities.fail_on is set, but the scan cannot run: {why}"
        raise StepError(cell.id, "scan", reason) from None


def checked(
    runner: Runner, release: Release, built: Built, db: Database, out: Path
) -> vulns.Report:
    """scan_cell, then warned_and_judged."""
    report = scan_cell(runner, release, built, db, out)
    warned_and_judged(runner, release, built.cell, report)
    return report


def for_release(
    plan: Any, cell: Cell, built: Built, report: Report, record: dict[str, Any] | None
) -> dict[str, Any]:
    """`invoke release`'s scan of a cell: its report's summary and its record's part.

    `plan` is the release's stages.Plan (which imports this module). The policy
    refuses here, after the summary has the counts and before anything is pushed.
    """
    try:
        db = plan.vulndb()
    except Skip as why:
        report.steps["scan"] = report.vulnerabilities = f"skipped: {why}"
        unjudged(plan.release, cell, why)
        return {}
    found = plan.stages.scan(plan.runner, plan.release, built, db, plan.artifacts)
    report.vulnerabilities = shown(plan.release, found)
    before = vulns.from_record((record or {}).get("vulnerabilities"))
    if before is not None:
        report.vulnerability_changes = vulns.changes_json(vulns.diff(before, found))
    warned_and_judged(plan.runner, plan.release, cell, found)
    report.steps["scan"] = "done"
    return {"vulnerabilities": vulns.to_record(found)}


def before_publish(
    runner: Runner, release: Release, built: Built, out: Path, database: Callable[[], Database]
) -> vulns.Report | None:
    """`invoke publish`: the cell's report (scanned now if `invoke scan` was not run), judged."""
    found = report_file(out, built.cell)
    if found is None:
        try:
            db = database()
        except Skip as why:
            unjudged(release, built.cell, why)
            runner.say(built.cell.id, f"SKIPPED scan: {why}")
            return None
        return checked(runner, release, built, db, out)
    try:
        report = vulns.parse(found.read_bytes())
    except vulns.ReportError as err:
        raise StepError(built.cell.id, "scan", f"{found}: {err}") from None
    judge(release, built.cell, report)
    return report

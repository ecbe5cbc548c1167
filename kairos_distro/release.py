"""`invoke release`: every stage per cell, incrementally; and one stage over many cells.

What a cell's rerun redoes is the ledger's decision (ledger.py); the effects
go through `Stages` (stages.py), one method per stage, so a test passes a recorder in
its place. One cell's failure stops that cell only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from . import artifacts, changelog, freshness, ledger, naming, scan, sign, vulns
from .config import Cell
from .naming import NamingError
from .registry import RegistryError
from .runner import Runner, Skip, StepError, timed
from .stages import Plan
from .summary import Outcome, Report, stage_rows, table


def failures() -> tuple[type[Exception], ...]:
    """What fails a cell (and only it): a step's own error, or one of the clients'.

    A function, so docker-py is imported only when something failed: `invoke --list`
    and every `--dry` run stay quick.
    """
    from docker.errors import DockerException

    return (StepError, NamingError, RegistryError, DockerException)


STEPS = ("build", "iso", "test-boot", "scan", "publish")
# Finer step names in errors, and the summary step they belong to.
STEP_OF = {
    "sign": "publish",
    "resolve": "build",
    "identity": "build",
    "connect": "build",
    "find build": "build",
    "checksum": "iso",
    "sbom": "iso",
    "probe": "build",  # the freshness probe decides whether the cell builds at all
}
DRY_SKIP = {  # what --dry says of the skip, by refresh mode
    "inputs": "skip this cell if its release key is already published and verifies",
    "packages": "skip this cell if its release key is already published and verifies, "
    "and {base} has no newer version of its packages",
    "always": "rebuild this cell even if its release key is already published (refresh: always)",
}
NO_BOARD_BOOT = "boards boot from their raw disk image, which is not boot-tested here"


def failed(runner: Runner, cell: str, step: str, err: Exception) -> StepError:
    """Any of failures() as a one-line StepError, told with the last lines of its output."""
    if not isinstance(err, StepError):
        text = getattr(err, "explanation", None) or str(err)
        err = StepError(cell, step, " ".join(str(text).split()))
    runner.say(cell, f"FAILED {err.step}: {err.reason}")
    for line in err.tail[-5:]:
        runner.say(cell, f"  | {line}")
    return err


def for_each_cell(
    runner: Runner, cells: list[Cell], stage: str, act: Callable[[Cell], str]
) -> list[Outcome]:
    """Run `act` per cell; a failing cell stops itself only, the others go on."""
    outcomes = []
    for cell in cells:
        with timed() as elapsed:
            try:
                outcomes.append(Outcome(cell, True, act(cell), elapsed()))
            except Skip as why:
                runner.say(cell.id, f"SKIPPED {stage}: {why}")
                outcomes.append(Outcome(cell, True, f"skipped: {why}", elapsed(), skipped=True))
            except failures() as err:
                error = failed(runner, cell.id, stage, err)
                outcomes.append(Outcome(cell, False, str(error), elapsed(), error))
    if not runner.dry:
        table(f"{stage} summary", stage_rows(outcomes), runner.out)
    return outcomes


@dataclass
class Verdict:
    """A cell's ledger decision, the record it read, and what the probe found."""

    decision: ledger.Decision
    record: dict[str, Any] | None
    sbom: str | None = None  # the record's SBOM, once read
    found: freshness.Found | None = None


def run_release(plan: Plan, cells: list[Cell]) -> list[Report]:
    """Each cell: build, ISO, boot test, sign + publish; a failure stops its cell only.

    Every cell is decided first (records, signatures, then one parallel round
    of freshness probes), then released one after another.
    """
    reports = {cell.id: Report(cell.id) for cell in cells}
    if plan.runner.dry:
        for cell in cells:
            _dry(plan, cell)
            reports[cell.id].status = "dry run"
        return list(reports.values())
    with timed() as elapsed:
        verdicts = _verdicts(plan, cells, reports)
    share = elapsed() / max(len(cells), 1)
    for cell in cells:
        report = reports[cell.id]
        with timed() as own:
            if cell.id in verdicts:
                act = partial(_release_cell, plan, cell, report, verdicts)
                _guarded(plan, cell, report, act)
        report.seconds = round(own() + share, 1)
    return list(reports.values())


def _guarded(plan: Plan, cell: Cell, report: Report, act: Callable[[], Any]) -> Any:
    """Run one cell's part; any of failures() fails that cell's report in one line."""
    try:
        return act()
    except failures() as err:
        error = failed(plan.runner, cell.id, _current(report), err)
        step = error.step if error.step in STEPS else _current(report)
        report.status, report.error = "failed", f"{error.step}: {error.reason}"
        report.steps[STEP_OF.get(error.step, step)] = "failed"
        return None


def _verdicts(plan: Plan, cells: list[Cell], reports: dict[str, Report]) -> dict[str, Verdict]:
    """Decide every cell; cells whose deciding failed are left out (their reports say why)."""
    verdicts: dict[str, Verdict] = {}
    for cell in cells:
        found = _guarded(plan, cell, reports[cell.id], partial(_decide, plan, cell))
        if found is not None:
            verdicts[cell.id] = found
    if plan.mode == "packages":
        _probe(plan, cells, verdicts, reports)
    return verdicts


def _probe(
    plan: Plan, cells: list[Cell], verdicts: dict[str, Verdict], reports: dict[str, Report]
) -> None:
    """Probe the mirrors of every cell that would be skipped; newer packages release it."""
    wanted: dict[Cell, list[Any]] = {}
    for cell in cells:
        verdict = verdicts.get(cell.id)
        if verdict is None or verdict.decision.redo or verdict.record is None:
            continue
        packages = _guarded(plan, cell, reports[cell.id], partial(_sbom_of, plan, cell, verdict))
        if packages is None and reports[cell.id].status == "failed":
            del verdicts[cell.id]
        elif packages is not None:
            wanted[cell] = packages
    if not wanted:
        return
    try:  # e.g. the base image cannot be resolved: every probe fails alike
        found = plan.stages.probe(plan.runner, plan.release, plan.network, wanted)
    except failures() as err:
        found = {cell.id: freshness.Found(error=err) for cell in wanted}
    for cell in wanted:
        verdict, result = verdicts[cell.id], found[cell.id]
        if result.error is not None:
            _guarded(plan, cell, reports[cell.id], partial(_raise, result.error))
            del verdicts[cell.id]
            continue
        verdict.found = result
        verdict.decision = _after_probe(verdict, result)


def _raise(err: Exception) -> None:
    raise err


def _sbom_of(plan: Plan, cell: Cell, verdict: Verdict) -> list[Any] | None:
    """The packages of the cell's published SBOM; None (the cell releases) without one."""
    assert verdict.record is not None
    try:
        verdict.sbom = plan.stages.read_sbom(plan.release, cell, verdict.record)
    except RegistryError as err:
        raise StepError(cell.id, "probe", f"cannot read the published SBOM ({err})") from None
    try:
        packages = changelog.sbom_packages(verdict.sbom) if verdict.sbom is not None else None
    except ValueError:
        packages = None
    if packages is None:
        verdict.decision = ledger.unprobed(verdict.record)
    return packages


def _after_probe(verdict: Verdict, found: freshness.Found) -> ledger.Decision:
    assert verdict.record is not None
    new = freshness.pending(found.updates, verdict.record.get("updates"))
    if new:
        return ledger.updated(verdict.record, new)
    held = [u for u in found.updates if u not in new]
    decision = verdict.decision
    return replace(decision, reason=f"{decision.reason}; {freshness.summary(found, held)}")


def _current(report: Report) -> str:
    return next((s for s in STEPS if s not in report.steps), STEPS[-1])


def _release_cell(plan: Plan, cell: Cell, report: Report, verdicts: dict[str, Verdict]) -> None:
    runner, rel, stages = plan.runner, plan.release, plan.stages
    verdict = verdicts[cell.id]
    decision, record = verdict.decision, verdict.record
    stamp, key = plan.stamp(cell), plan.key(cell)
    report.reason = str(decision)
    if not decision.redo and record is not None:
        _up_to_date(plan, cell, record, report)
        runner.say(cell.id, f"up to date: {report.image} (release key {key[:12]})")
        return
    fresh = decision.fresh
    label = None if plan.force or fresh else stages.local_label(runner, rel, cell)
    rebuild = ledger.decide_build(label, stamp, plan.force, fresh)
    report.reason += f"; {rebuild}"
    if rebuild.redo:
        built = stages.build(runner, rel, cell, plan.network, plan.context, stamp, bool(fresh))
        report.steps["build"] = "done"
    else:
        built = stages.adopt(runner, rel, cell)
        report.steps["build"] = "reused"
    made = _artifacts(plan, cell, built, report, fresh)
    _boot(plan, cell, made, key, report, fresh)
    scanned = scan.for_release(plan, cell, built, report, verdict.record)
    report.packages = _changelog(plan, cell, verdict)  # reads the registry: publish's part
    extra = {"packages": report.packages, "updates": _updates(verdict), **scanned}
    done = stages.publish(runner, rel, cell, built, plan, key, extra)
    report.steps["publish"] = "done"
    report.status, report.image = "published", done.ref if done else ""
    if done and done.raw_digest:
        raw_tag = naming.raw_tag(built.identity, rel.tags)
        report.media = report.media.replace("raw", f"raw (+ {raw_tag})")
    report.signature = "verified" if plan.sigstore else "unsigned"


def _updates(verdict: Verdict) -> list[str]:
    """What the record remembers of the probe: every update seen when this was built."""
    return [freshness.key(u) for u in verdict.found.updates] if verdict.found else []


def _changelog(plan: Plan, cell: Cell, verdict: Verdict) -> dict[str, Any]:
    """The package changes since the last release ({} when they cannot be known)."""
    new = artifacts.sbom_file(plan.artifacts, cell)
    if new is None:
        return {}
    record = verdict.record
    if record is None:
        return changelog.first_release() if not plan.force else {}
    old = verdict.sbom
    if old is None:
        old = plan.stages.read_sbom(plan.release, cell, record)
    if old is None:
        return {}
    try:
        after = changelog.sbom_packages(new.read_text(encoding="utf-8"))
        changes = changelog.diff(changelog.sbom_packages(old), after)
    except ValueError as err:  # an SBOM this version cannot compare: say so, publish anyway
        plan.runner.say(cell.id, f"no package changelog: {err}")
        return {}
    return changelog.to_json(changes, since=ledger.since(record))


def _decide(plan: Plan, cell: Cell) -> Verdict:
    """The ledger's decision on the published record; a skip must also verify."""
    key = plan.key(cell)
    if plan.force:
        return Verdict(ledger.decide(None, key, {}, force=True), _record_or_none(plan, cell))
    try:
        record = plan.stages.read_record(plan.release, cell)
    except RegistryError as err:  # unknown: do the work; publish will say if it is down
        plan.runner.say(cell.id, f"cannot read the release record ({err}): releasing")
        return Verdict(ledger.unreadable(err), None)
    decision = ledger.decide(record, key, plan.inputs(cell), refresh=plan.mode)
    image = ledger.published_image(record) if record else None
    if decision.redo or not plan.sigstore or record is None or image is None:
        return Verdict(decision, record)
    try:
        plan.stages.verify_image(plan.sigstore, plan.release, image)
    except (sign.SignError, RegistryError) as err:
        return Verdict(ledger.unverified(record, err), record)  # redo publish (and signing)
    return Verdict(decision, record)


def _record_or_none(plan: Plan, cell: Cell) -> dict[str, Any] | None:
    """--force decides nothing from the record, but the changelog still reads it."""
    try:
        return plan.stages.read_record(plan.release, cell)
    except RegistryError:
        return None


def _artifacts(plan: Plan, cell: Cell, built: Any, report: Report, fresh: str = "") -> Any:
    stamp = plan.media_stamp(cell)
    made = None if plan.force or fresh else plan.stages.earlier_media(plan.artifacts, cell)
    text = ledger.read_media_stamp(made.directory) if made else None
    complete = made is not None and artifacts.complete(made)
    if not ledger.decide_media(text, stamp, complete, plan.force, fresh).redo:
        report.steps["iso"] = "reused"
    else:
        made = plan.stages.make_media(plan.runner, plan.release, built, cell, plan, stamp)
        done = f"skipped: {made.skipped}" if made and made.skipped else "done"
        report.steps["iso"] = done if cell.media else "no boot media"
    report.artifacts = [str(p) for p in made.files] if made else []
    report.media = ", ".join(made.kinds) if made else ""
    return made


def _boot(plan: Plan, cell: Cell, made: Any, key: str, report: Report, fresh: str = "") -> None:
    why = _no_boot(cell, made)
    if why:
        report.steps["test-boot"] = report.boot = f"skipped: {why}"
        return
    iso = next(iter(made.isos), None)
    if iso is None:
        raise StepError(cell.id, "test-boot", f"no ISO in {made.directory}")
    earlier = None if plan.force or fresh else ledger.read_boot(made.directory)
    decision = ledger.decide_boot(earlier, key, plan.force, fresh)
    if not decision.redo:
        report.steps["test-boot"], report.boot = "reused", decision.reason
        return
    try:
        result = plan.stages.boot(plan.runner, plan.release, cell, iso, plan)
    except Skip as skip:
        report.steps["test-boot"] = report.boot = f"skipped: {skip}"
        return
    last = result.results[-1].seconds if result.results else 0.0
    report.boot = f"passed ({result.accel}, {len(result.results)} checks, {last:.0f} s)"
    ledger.write_boot(made.directory, key, report.boot)
    report.steps["test-boot"] = "done"


def _no_boot(cell: Cell, made: Any) -> str:
    """Why a cell's artifacts get no boot test; empty when they get one."""
    if made is None:
        return "no ISO"
    if made.skipped:
        return made.skipped
    if not {"iso", "uki"} & set(cell.media):
        return NO_BOARD_BOOT
    return ""


def _up_to_date(plan: Plan, cell: Cell, record: dict[str, Any], report: Report) -> None:
    """Fill the report of a cell skipped because its release key is published."""
    report.status, report.image = "up to date", record["image"]
    report.boot = "passed when released"
    report.signature = "verified" if plan.sigstore else "unsigned"
    report.steps = dict.fromkeys(STEPS, "up to date")
    kept = vulns.from_record(record.get("vulnerabilities"))
    report.vulnerabilities = f"{kept.headline()} (when released)" if kept else ""
    names = [n for k in ("checksums", "sbom") if isinstance(record.get(k), dict) for n in record[k]]
    report.artifacts = sorted(names)
    files = [n.removesuffix(".sha256") for n in names]  # a checksum names its file
    report.media = ", ".join(artifacts.kinds(files, cell.trusted_boot))
    if record.get("raw_image"):
        report.media = report.media.replace("raw", "raw (+ oci)")


def _dry(plan: Plan, cell: Cell) -> None:
    runner, rel, stages = plan.runner, plan.release, plan.stages
    runner.would(cell.id, DRY_SKIP[plan.mode].format(base=rel.base_image))
    stages.build(runner, rel, cell, plan.network, plan.context, "")
    try:
        stages.make_media(runner, rel, None, cell, plan, "")
    except Skip as why:
        runner.say(cell.id, f"SKIPPED boot media and test-boot: {why}")
    else:
        kind = next((k for k in cell.media if k != "raw"), "")
        ident = naming.Identity.expected(rel, cell)
        try:
            if not kind:
                raise Skip(NO_BOARD_BOOT)
            iso = plan.artifacts / cell.id / naming.media_file(ident, kind)
            stages.boot(runner, rel, cell, iso, plan)
        except Skip as why:
            runner.say(cell.id, f"SKIPPED test-boot: {why}")
    against = rel.vulndb or "the listing's latest database"
    runner.would(cell.id, f"scan its SBOM with {rel.grype} against {against}")
    stages.publish(runner, rel, cell, None, plan)

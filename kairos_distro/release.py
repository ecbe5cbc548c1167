"""Release stage: the matrix as CI systems read it, and running a stage per cell.

The matrix here is derived from release.yaml only; CI shards it with its own
matrix feature (GitHub `strategy.matrix`, GitLab `parallel:matrix`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from docker.errors import DockerException

from . import artifacts, boot, build, keys, naming, publish, sign
from .config import Cell, Release
from .naming import NamingError
from .ref import ImageRef
from .registry import Registry, RegistryError
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


# -- invoke release: every stage per cell, incrementally ------------------------------
STEPS = ("build", "iso", "test-boot", "publish")
# Finer step names in errors, and the summary step they belong to.
STEP_OF = {
    "sign": "publish",
    "resolve": "build",
    "identity": "build",
    "connect": "build",
    "find build": "build",
    "checksum": "iso",
    "sbom": "iso",
}
BOOT_STAMP = ".test-boot"


@dataclass
class Report:
    """One cell's outcome, for the terminal, Markdown and JSON summaries."""

    cell: str
    status: str = "pending"  # published | up to date | failed
    steps: dict[str, str] = field(default_factory=dict)
    image: str = ""
    artifacts: list[str] = field(default_factory=list)
    media: str = ""  # kinds of artifacts: iso / uki iso / raw (+ oci), sbom
    boot: str = ""
    signature: str = ""
    seconds: float = 0.0
    error: str = ""


@dataclass
class Plan:
    """What a release run needs besides the cells; effects go through `runner`."""

    runner: Runner
    release: Release
    artifacts: Path
    network: str
    boot: Any  # boot.Settings
    user_data: bytes
    sigstore: Any = None  # sign.Sigstore when signing is on
    force: bool = False
    context: Path = Path(".")
    keys: Path = Path(keys.DEFAULT_DIR)
    _stamps: dict[str, str] = field(default_factory=dict)

    def stamp(self, cell: Cell) -> str:
        """The artifact fingerprint: what the image and ISO are made from."""
        if not self._stamps:
            digests = build.input_digests(self.runner, self.release)
            tree = build.tree_digest(self.context)
            for one in self.release.cells:
                self._stamps[one.id] = build.fingerprint(self.release, one, digests, tree)
        return self._stamps[cell.id]

    def media_stamp(self, cell: Cell) -> str:
        """The artifacts' fingerprint: the image's, plus what shapes the boot media.

        A UKI is signed with the owner's db key: a new key remakes it (and only it).
        The tag formats name the image in its SBOM (and where it is published).
        """
        extra: dict[str, Any] = {"media": cell.media, "tags": vars(self.release.tags)}
        if "uki" in cell.media:
            extra["db_certificate"] = keys.certificate_digest(self.keys)
        blob = json.dumps([self.stamp(cell), extra], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def key(self, cell: Cell) -> str:
        """The release key: the artifacts plus what the boot test checks.

        A new boot check re-runs the boot test (and republishes the same image
        digest) without rebuilding anything.
        """
        checks = [vars(c) for c in boot.checks_for(self.release, cell)]
        inputs = [
            self.media_stamp(cell),
            self.release.publish_raw,
            checks,
            self.boot.marker,
            self.user_data.decode(errors="replace"),
        ]
        blob = json.dumps(inputs, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:32]


def run_release(plan: Plan, cells: list[Cell]) -> list[Report]:
    """Each cell: build, ISO, boot test, sign + publish; a failure stops its cell only."""
    reports = []
    for cell in cells:
        report = Report(cell.id)
        with timed() as elapsed:
            try:
                _release_cell(plan, cell, report)
            except (StepError, NamingError, RegistryError, DockerException) as err:
                step = err.step if isinstance(err, StepError) else _current(report)
                reason = err.reason if isinstance(err, StepError) else _one_line(err)
                report.status, report.error = "failed", f"{step}: {reason}"
                report.steps[STEP_OF.get(step, step if step in STEPS else _current(report))] = (
                    "failed"
                )
                plan.runner.say(cell.id, f"FAILED {step}: {reason}")
                for line in getattr(err, "tail", [])[-5:]:
                    plan.runner.say(cell.id, f"  | {line}")
        report.seconds = round(elapsed(), 1)
        reports.append(report)
    return reports


def _current(report: Report) -> str:
    return next((s for s in STEPS if s not in report.steps), STEPS[-1])


def _release_cell(plan: Plan, cell: Cell, report: Report) -> None:
    runner, rel = plan.runner, plan.release
    if runner.dry:
        _dry(plan, cell)
        report.status = "dry run"
        return
    stamp, key = plan.stamp(cell), plan.key(cell)
    if not plan.force and _up_to_date(plan, cell, key, report):
        runner.say(cell.id, f"up to date: {report.image} (release key {key[:12]})")
        return
    built = None if plan.force else build.reuse(runner, rel, cell, stamp)
    if built:
        report.steps["build"] = "reused"
    else:
        built = build.run(
            runner, rel, cell, network=plan.network, context=plan.context, stamp=stamp
        )
        report.steps["build"] = "done"
    made = _artifacts(plan, cell, built, plan.media_stamp(cell), report)
    _boot(plan, cell, made, key, report)
    done = publish.publish(runner, rel, cell, built, plan.sigstore, plan.artifacts, key)
    report.steps["publish"] = "done"
    report.status, report.image = "published", done.ref if done else ""
    if done and done.raw_digest:
        report.media = report.media.replace(
            "raw", f"raw (+ {naming.raw_tag(built.identity, rel.tags)})"
        )
    report.signature = "verified" if plan.sigstore else "unsigned"


def _artifacts(plan: Plan, cell: Cell, built: Any, stamp: str, report: Report) -> Any:
    made = None if plan.force else artifacts.stamped(plan.artifacts, cell, stamp)
    if made:
        report.steps["iso"] = "reused"
    else:
        made = artifacts.make_artifacts(
            plan.runner,
            plan.release,
            built,
            cell,
            plan.artifacts,
            plan.network,
            stamp,
            plan.keys,
        )
        done = f"skipped: {made.skipped}" if made and made.skipped else "done"
        report.steps["iso"] = done if cell.media else "no boot media"
    report.artifacts = [str(p) for p in made.files] if made else []
    report.media = ", ".join(made.kinds) if made else ""
    return made


def _boot(plan: Plan, cell: Cell, made: Any, stamp: str, report: Report) -> None:
    why = _no_boot(cell, made)
    if why:
        report.steps["test-boot"] = report.boot = f"skipped: {why}"
        return
    iso = next(iter(made.isos), None)
    if iso is None:
        raise StepError(cell.id, "test-boot", f"no ISO in {made.directory}")
    record = made.directory / BOOT_STAMP
    previous = record.read_text().split("\n") if record.exists() else []
    if not plan.force and previous[:1] == [stamp]:
        report.steps["test-boot"] = "reused"
        report.boot = (previous[1:2] or ["passed"])[0].strip() or "passed"
        return
    try:
        result = boot.boot_iso(plan.runner, plan.release, cell, iso, plan.boot, plan.user_data)
    except Skip as why:
        report.steps["test-boot"] = report.boot = f"skipped: {why}"
        return
    last = result.results[-1].seconds if result.results else 0.0
    report.boot = f"passed ({result.accel}, {len(result.results)} checks, {last:.0f} s)"
    record.write_text(f"{stamp}\n{report.boot}\n")
    report.steps["test-boot"] = "done"


NO_BOARD_BOOT = "boards boot from their raw disk image, which is not boot-tested here"


def _no_boot(cell: Cell, made: Any) -> str:
    """Why a cell's artifacts get no boot test; empty when they get one."""
    if made is None:
        return "no ISO"
    if made.skipped:
        return made.skipped
    if not {"iso", "uki"} & set(cell.media):
        return NO_BOARD_BOOT
    return ""


def _up_to_date(plan: Plan, cell: Cell, stamp: str, report: Report) -> bool:
    """Published with this fingerprint, and (signing on) its signature verifies."""
    try:
        record = publish.read_record(Registry(plan.release.registry), plan.release, cell)
    except RegistryError as err:  # unknown: do the work; publish will say if it is down
        plan.runner.say(cell.id, f"cannot read the release record ({err}): releasing")
        return False
    if not record or record.get("fingerprint") != stamp:
        return False
    image = ImageRef.pinned(record.get("image"))
    if image is None:
        return False  # an unreadable record: release again
    if plan.sigstore:
        try:
            sign.verify_image(
                plan.sigstore, Registry(image.api_host), image.repository, image.digest
            )
        except (sign.SignError, RegistryError):
            return False  # published but not verifiable: redo publish (and signing)
    report.status, report.image = "up to date", record["image"]
    report.boot = "passed when released"
    report.signature = "verified" if plan.sigstore else "unsigned"
    report.steps = dict.fromkeys(STEPS, "up to date")
    names = [n for k in ("checksums", "sbom") if isinstance(record.get(k), dict) for n in record[k]]
    report.artifacts = sorted(names)
    files = [n.removesuffix(".sha256") for n in names]  # a checksum names its file
    report.media = ", ".join(artifacts.kinds(files, cell.trusted_boot))
    if record.get("raw_image"):
        report.media = report.media.replace("raw", "raw (+ oci)")
    return True


def _dry(plan: Plan, cell: Cell) -> None:
    runner, rel = plan.runner, plan.release
    runner.would(cell.id, "skip this cell if its release key is already published and verifies")
    build.run(runner, rel, cell, network=plan.network, context=plan.context)
    try:
        artifacts.make_artifacts(
            runner, rel, None, cell, plan.artifacts, plan.network, keys=plan.keys
        )
    except Skip as why:
        runner.say(cell.id, f"SKIPPED boot media and test-boot: {why}")
    else:
        kind = next((k for k in cell.media if k != "raw"), "")
        ident = naming.Identity.expected(rel, cell)
        try:
            if not kind:
                raise Skip(NO_BOARD_BOOT)
            iso = plan.artifacts / cell.id / naming.media_file(ident, kind)
            boot.boot_iso(runner, rel, cell, iso, plan.boot, plan.user_data)
        except Skip as why:
            runner.say(cell.id, f"SKIPPED test-boot: {why}")
    publish.publish(runner, rel, cell, None, plan.sigstore, plan.artifacts)


# -- summaries ---------------------------------------------------------------------
def summary_rows(reports: list[Report]) -> list[dict[str, str]]:
    return [
        {
            "cell": r.cell,
            "result": r.status,
            "image": r.image or "-",
            "artifacts": r.media or "-",
            "boot": r.boot or "-",
            "signature": r.signature or "-",
            "seconds": f"{r.seconds:.1f}",
            "error": r.error or "-",
        }
        for r in reports
    ]


def markdown(reports: list[Report], version: str) -> str:
    rows = summary_rows(reports)
    head = "| " + " | ".join(rows[0]) + " |" if rows else ""
    lines = [f"## Release {version}", "", head, "|" + "---|" * len(rows[0] if rows else [])]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in r.values()) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def as_json(reports: list[Report], version: str) -> str:
    return json.dumps({"version": version, "cells": [asdict(r) for r in reports]}, indent=2)


def write_summaries(reports: list[Report], version: str, out: Path) -> list[Path]:
    """artifacts/release-summary.{md,json}, and the GitHub step summary when set."""
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "release-summary.md", out / "release-summary.json"
    md.write_text(markdown(reports, version))
    js.write_text(as_json(reports, version) + "\n")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as f:
            f.write(markdown(reports, version))
    return [md, js]

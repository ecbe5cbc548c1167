"""Artifacts stage: AuroraBoot turns a built image into an ISO and its checksum.

AuroraBoot runs in a container as the factory runs it: the Docker socket
mounted (it reads `docker:<image>` from the local engine) and an output
directory. Output lands in a staging directory and is moved into
`artifacts/<cell>/` only once the ISO matches its `.sha256`, so a failed or
interrupted run never leaves a half-written cell directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import docker

from . import naming
from .build import Built
from .config import Cell, Release
from .runner import TAIL, Runner, Skip, StepError

STAMP = ".fingerprint"


def stamped(artifacts: Path, cell: Cell, stamp: str) -> Artifacts | None:
    """The cell's artifacts if they were made from inputs with this fingerprint."""
    final = artifacts / cell.id
    try:
        if (final / STAMP).read_text().strip() != stamp:
            return None
    except OSError:
        return None
    files = tuple(sorted(p for p in final.iterdir() if not p.name.startswith(".")))
    isos = [p for p in files if p.suffix == ".iso"]
    if not isos or not all(iso.with_name(iso.name + ".sha256").exists() for iso in isos):
        return None  # the stamp outlived its files: make them again
    return Artifacts(cell, final, files)


@dataclass(frozen=True)
class IsoPlan:
    cell: Cell
    image: str
    command: list[str]
    iso_name: str


@dataclass(frozen=True)
class Artifacts:
    cell: Cell
    directory: Path
    files: tuple[Path, ...]


def docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):  # e.g. GitLab's docker-in-docker over TCP
        raise Skip(f"AuroraBoot needs a local Docker socket (DOCKER_HOST is {host})")
    return host.removeprefix("unix://")


def plan_iso(release: Release, cell: Cell, ref: str, iso_name: str) -> IsoPlan:
    """The AuroraBoot invocation for a cell; cells that get no ISO are skipped, with why."""
    if cell.model != "generic":
        raise Skip(f"model {cell.model} boots from a raw disk image, not an ISO (not built yet)")
    if cell.trusted_boot:
        raise Skip("trusted-boot cells need a signed UKI ISO (not built yet)")
    command = ["--debug", "build-iso", "--output", "/output/", "--arch", cell.arch]
    command.append(f"docker:{ref}")
    return IsoPlan(cell, release.auroraboot, command, f"{iso_name}.iso")


def check_sha256(iso: Path) -> None:
    """The checksum file must name the ISO and match its bytes."""
    sums = iso.with_name(iso.name + ".sha256")
    if not sums.exists():
        raise StepError("iso", "checksum", f"{sums.name} was not written")
    fields = sums.read_text().split()
    if len(fields) != 2 or Path(fields[1]).name != iso.name:
        raise StepError("iso", "checksum", f"{sums.name} does not name {iso.name}")
    digest = hashlib.sha256()
    with iso.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != fields[0]:
        raise StepError("iso", "checksum", f"{iso.name} does not match {sums.name}")


def replace_dir(staging: Path, final: Path) -> None:
    """Swap staging into place; the old directory is removed only after the swap."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".old-{final.name}-"))
        final.rename(old / final.name)
    staging.rename(final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _run_auroraboot(runner: Runner, iso_plan: IsoPlan, staging: Path, network: str) -> None:
    client = runner.docker()
    sock = docker_socket()
    volumes = {
        sock: {"bind": "/var/run/docker.sock", "mode": "rw"},
        str(staging.resolve()): {"bind": "/output", "mode": "rw"},
    }
    try:
        container = client.containers.run(
            iso_plan.image,
            iso_plan.command,
            volumes=volumes,
            detach=True,
            network_mode=network or None,
        )
    except docker.errors.APIError as err:
        reason = " ".join(str(err.explanation).split())
        raise StepError(iso_plan.cell.id, "iso", f"AuroraBoot did not start: {reason}") from None
    tail: deque[str] = deque(maxlen=TAIL)
    try:
        for chunk in container.logs(stream=True, follow=True):
            for line in chunk.decode(errors="replace").splitlines():
                runner.say(iso_plan.cell.id, line)
                if line.strip():
                    tail.append(line.strip())
        status = container.wait().get("StatusCode", 1)
    finally:
        container.remove(force=True)
    if status != 0:
        last = f": {tail[-1][:200]}" if tail else ""
        raise StepError(iso_plan.cell.id, "iso", f"AuroraBoot exited {status}{last}", tail)


def build_iso(
    runner: Runner,
    release: Release,
    built: Built | None,
    cell: Cell,
    artifacts: Path = Path("artifacts"),
    network: str = "",
    stamp: str = "",
) -> Artifacts | None:
    """Make `artifacts/<cell>/<name>.iso` and its `.sha256` from a built image.

    `stamp` (the release fingerprint) is written as `.fingerprint` inside the
    same atomic swap, so a rerun knows these artifacts match their inputs.
    """
    ident = built.identity if built else naming.Identity.expected(release, cell)
    ref = built.ref if built else naming.image_ref(release, ident)
    iso_plan = plan_iso(release, cell, ref, naming.artifact_name(ident))
    final = artifacts / cell.id
    if runner.dry:
        mounts = f"{docker_socket()}:/var/run/docker.sock, {final}:/output"
        runner.would(cell.id, f"run {iso_plan.image} {' '.join(iso_plan.command)} ({mounts})")
        return None
    artifacts.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=artifacts, prefix=f".staging-{cell.id}-"))
    staging.chmod(0o755)  # mkdtemp makes it private; the cell directory is not
    try:
        _run_auroraboot(runner, iso_plan, staging, network)
        iso = staging / iso_plan.iso_name
        if not iso.exists():
            found = ", ".join(sorted(p.name for p in staging.iterdir())) or "nothing"
            raise StepError(cell.id, "iso", f"expected {iso.name}, AuroraBoot wrote {found}")
        try:
            check_sha256(iso)
        except StepError as err:
            raise StepError(cell.id, "iso", err.reason) from None
        if stamp:
            (staging / STAMP).write_text(stamp + "\n")
        replace_dir(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = tuple(sorted(p for p in final.iterdir() if not p.name.startswith(".")))
    runner.say(cell.id, f"wrote {final / iso_plan.iso_name}")
    return Artifacts(cell, final, files)

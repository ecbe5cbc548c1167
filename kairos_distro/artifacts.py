"""Artifacts stage: boot media from AuroraBoot, checksums, and the image's SBOM.

Per cell (see `Cell.media`): an ISO (`build-iso`) for generic cells, a raw
disk image (legacy mode with `disk.efi`) for boards or cells asking for one,
a UKI ISO signed with the owner's keys (`build-uki --output-type iso`) for
trusted boot; and for every image a CycloneDX SBOM read from its own package
database. AuroraBoot runs as the factory runs it: the Docker socket mounted
(it reads `docker:<image>` from the local engine) and an output directory.
Everything lands in a staging directory that replaces `artifacts/<cell>/`
only once each file matches its `.sha256`, so a failed or interrupted run
never leaves a half-written cell directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import keys as keyset
from . import ledger, naming, sbom
from .build import Built
from .config import Cell, Release
from .hosts import redact
from .registry import sha256_file
from .runner import Runner, Skip, StepError

KEYS_MOUNT = "/keys"


@dataclass(frozen=True)
class MediaPlan:
    """One AuroraBoot run: the image, its argv and the file it must write."""

    cell: Cell
    kind: str  # iso | raw | uki
    image: str
    command: list[str]
    output: str
    privileged: bool = False  # the raw disk build partitions and formats a disk file
    keys: Path | None = None  # mounted read-only at /keys for build-uki


@dataclass(frozen=True)
class Artifacts:
    cell: Cell
    directory: Path
    files: tuple[Path, ...]
    skipped: str = ""  # why no boot media was made (the SBOM still was)

    @property
    def isos(self) -> list[Path]:
        return [p for p in self.files if p.suffix == ".iso"]

    @property
    def kinds(self) -> list[str]:
        return kinds([p.name for p in self.files], self.cell.trusted_boot)


def kinds(names: list[str], trusted_boot: bool) -> list[str]:
    """What a summary shows of a cell's files: iso or uki iso, raw, sbom."""
    found = ["uki iso" if trusted_boot else "iso"] if any(n.endswith(".iso") for n in names) else []
    found += ["raw"] if any(n.endswith(".raw") for n in names) else []
    return found + (["sbom"] if any(n.endswith(naming.SBOM_SUFFIX) for n in names) else [])


def _listing(directory: Path) -> tuple[Path, ...]:
    return tuple(sorted(p for p in directory.iterdir() if not p.name.startswith(".")))


def earlier(artifacts: Path, cell: Cell) -> Artifacts | None:
    """What an earlier run left in artifacts/<cell>/, if anything."""
    final = artifacts / cell.id
    if not final.is_dir():
        return None
    return Artifacts(cell, final, _listing(final))


def complete(made: Artifacts) -> bool:
    """Every kind of boot media the cell gets, each with its `.sha256`, and the SBOM."""
    suffixes = {naming.MEDIA_SUFFIX[kind] for kind in made.cell.media}
    media = [p for p in made.files if p.suffix in suffixes]
    if {p.suffix for p in media} != suffixes or "sbom" not in made.kinds:
        return False
    return all(p.with_name(p.name + ".sha256").exists() for p in media)


def iso_of(release: Release, cell: Cell, artifacts: Path, dry: bool) -> Path:
    """The cell's ISO under artifacts/<cell>/ (named by AuroraBoot from the image)."""
    found = sorted((artifacts / cell.id).glob("*.iso"))
    if found or not dry:
        return found[0] if found else artifacts / cell.id / "missing.iso"
    ident = naming.Identity.expected(release, cell)
    return artifacts / cell.id / f"{naming.artifact_name(ident)}.iso"


def sbom_file(artifacts: Path | None, cell: Cell) -> Path | None:
    if not artifacts:
        return None
    return next(iter(sorted((artifacts / cell.id).glob(f"*{naming.SBOM_SUFFIX}"))), None)


def checksum_files(artifacts: Path | None, cell: Cell) -> list[Path]:
    return sorted((artifacts / cell.id).glob("*.sha256")) if artifacts else []


# -- pure: what AuroraBoot is asked to do ---------------------------------------------
def plan_media(
    release: Release, cell: Cell, ref: str, ident: naming.Identity, keys: Path = Path("keys")
) -> list[MediaPlan]:
    """The AuroraBoot runs for a cell's boot media, in the order they are made."""
    source = f"docker:{ref}"
    plans = []
    for kind in cell.media:
        output = naming.media_file(ident, kind)
        if kind == "iso":
            command = ["--debug", "build-iso", "--output", "/output/", "--arch", cell.arch]
            plans.append(MediaPlan(cell, kind, release.auroraboot, [*command, source], output))
        elif kind == "raw":
            settings = [
                "disable_http_server=true",
                "disable_netboot=true",
                f"container_image={source}",
                "state_dir=/output",
                "disk.efi=true",
            ]
            command = ["--debug", *(arg for s in settings for arg in ("--set", s))]
            plans.append(MediaPlan(cell, kind, release.auroraboot, command, output, True))
        else:
            command = uki_command(source)
            plans.append(MediaPlan(cell, kind, release.auroraboot, command, output, keys=keys))
    return plans


def uki_command(source: str) -> list[str]:
    k = KEYS_MOUNT
    return [
        "--debug",
        "build-uki",
        "--output-dir",
        "/output/",
        "--output-type",
        "iso",
        "--public-keys",
        k,
        "--tpm-pcr-private-key",
        f"{k}/tpm2-pcr-private.pem",
        "--sb-key",
        f"{k}/db.key",
        "--sb-cert",
        f"{k}/db.pem",
        source,
    ]


def docker_socket(tool: str = "AuroraBoot") -> str:
    """The local engine's socket, for a tool that bind-mounts local paths; else Skip."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):  # e.g. GitLab's docker-in-docker over TCP
        raise Skip(f"{tool} needs a local Docker socket (DOCKER_HOST is {redact(host)})")
    return host.removeprefix("unix://")


def volumes(plan: MediaPlan, socket: str, output: Path) -> dict[str, dict[str, str]]:
    mounts = {
        socket: {"bind": "/var/run/docker.sock", "mode": "rw"},
        str(output): {"bind": "/output", "mode": "rw"},
    }
    if plan.keys is not None:
        mounts[str(plan.keys)] = {"bind": KEYS_MOUNT, "mode": "ro"}
    return mounts


# -- checksums -----------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    """The file's hex digest, as sha256sum writes it."""
    return sha256_file(path).removeprefix("sha256:")


def check_sha256(iso: Path) -> None:
    """The checksum file must name the file and match its bytes."""
    sums = iso.with_name(iso.name + ".sha256")
    if not sums.exists():
        raise StepError("iso", "checksum", f"{sums.name} was not written")
    fields = sums.read_text().split()
    if len(fields) != 2 or Path(fields[1]).name != iso.name:
        raise StepError("iso", "checksum", f"{sums.name} does not name {iso.name}")
    if sha256_of(iso) != fields[0]:
        raise StepError("iso", "checksum", f"{iso.name} does not match {sums.name}")


def ensure_sha256(path: Path) -> None:
    """Check AuroraBoot's checksum file; write one (sha256sum format) where it writes none."""
    sums = path.with_name(path.name + ".sha256")
    if not sums.exists():
        sums.write_text(f"{sha256_of(path)}  {path.name}\n")
    check_sha256(path)


def replace_dir(staging: Path, final: Path) -> None:
    """Swap staging into place; the old directory is removed only after the swap."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".old-{final.name}-"))
        final.rename(old / final.name)
    staging.rename(final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


# -- effects ---------------------------------------------------------------------------
def _make_media(runner: Runner, plan: MediaPlan, staging: Path, network: str) -> Path:
    """One AuroraBoot run in its own directory; only the expected file is kept."""
    work = Path(tempfile.mkdtemp(dir=staging, prefix=f".{plan.kind}-"))
    work.chmod(0o755)  # AuroraBoot may run as another user than ours
    runner.say(plan.cell.id, f"AuroraBoot: making the {plan.kind} ({plan.output})")
    runner.container(
        plan.cell.id,
        "iso",
        plan.image,
        plan.command,
        volumes(plan, docker_socket(), work),
        label="AuroraBoot",
        network=network,
        privileged=plan.privileged,
    )
    made = work / plan.output
    if not made.exists():
        found = ", ".join(sorted(p.name for p in work.iterdir())) or "nothing"
        raise StepError(plan.cell.id, "iso", f"expected {plan.output}, AuroraBoot wrote {found}")
    for path in (made, made.with_name(made.name + ".sha256")):
        if path.exists():
            path.rename(staging / path.name)
    shutil.rmtree(work, ignore_errors=True)
    try:
        ensure_sha256(staging / plan.output)
    except StepError as err:
        raise StepError(plan.cell.id, "iso", err.reason) from None
    return staging / plan.output


def write_sbom(runner: Runner, release: Release, built: Built, directory: Path) -> Path:
    """The image's CycloneDX SBOM, catalogued by syft, into `directory`."""
    ident, cell = built.identity, built.cell
    try:
        path, count = sbom.write_sbom(
            runner,
            cell.id,
            release.syft,
            built.image_id,
            directory / naming.sbom_file(ident),
            name=naming.repository(release, ident),
            version=naming.image_tag(ident, release.tags),
        )
    except sbom.SbomError as err:
        raise StepError(cell.id, "sbom", str(err)) from None
    runner.say(cell.id, f"SBOM: {count} packages in {path.name}")
    return path


def ensure_sbom(runner: Runner, release: Release, built: Built, artifacts: Path) -> Path:
    """The cell's SBOM; written now when it was published without `invoke iso`."""
    found = sbom_file(artifacts, built.cell)
    if found:
        return found
    directory = artifacts / built.cell.id
    directory.mkdir(parents=True, exist_ok=True)
    return write_sbom(runner, release, built, directory)


def _check_keys(cell: Cell, keys: Path) -> None:
    try:
        keyset.check(keys)
    except keyset.KeysError as err:
        raise StepError(cell.id, "iso", str(err)) from None


def make_artifacts(
    runner: Runner,
    release: Release,
    built: Built | None,
    cell: Cell,
    artifacts: Path = Path("artifacts"),
    network: str = "",
    stamp: str = "",
    keys: Path = Path(keyset.DEFAULT_DIR),
) -> Artifacts | None:
    """Make `artifacts/<cell>/`: boot media with their `.sha256`, and the SBOM.

    `stamp` (the media fingerprint, see ledger) is written inside the same
    atomic swap, so a rerun knows these artifacts match their inputs; a run
    whose boot media were skipped says so there and is never reused. None
    under --dry (nothing is built then).
    """
    ident = built.identity if built else naming.Identity.expected(release, cell)
    ref = built.ref if built else naming.image_ref(release, ident)
    plans = plan_media(release, cell, ref, ident, keys)
    final = artifacts / cell.id
    return runner.act(
        cell.id,
        lambda: _shown(runner, release, plans, final, naming.sbom_file(ident)),
        lambda: _make(runner, release, built, cell, plans, final, network, stamp, keys),
    )


def _shown(
    runner: Runner, release: Release, plans: list[MediaPlan], final: Path, sbom_name: str
) -> list[str]:
    """The plan --dry prints: each AuroraBoot run, then the SBOM."""
    socket = docker_socket()  # a remote engine: Skip, as a real run would skip the media
    lines = []
    for plan in plans:
        mounts = volumes(plan, socket, final)
        lines.append(
            runner.container_plan(plan.image, plan.command, mounts, privileged=plan.privileged)
        )
    name, version = "NAME", "TAG"  # the published name and tag, known once built
    syft = runner.container_plan(release.syft, sbom.command("IMAGE", name, version), sbom.volumes())
    return [*lines, f"{syft} > {final / sbom_name}"]


def _make(
    runner: Runner,
    release: Release,
    built: Built | None,
    cell: Cell,
    plans: list[MediaPlan],
    final: Path,
    network: str,
    stamp: str,
    keys: Path,
) -> Artifacts:
    if built is None:  # only --dry has nothing built, and it never gets here
        raise StepError(cell.id, "iso", "no image was built")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".staging-{cell.id}-"))
    staging.chmod(0o755)  # mkdtemp makes it private; the cell directory is not
    try:
        write_sbom(runner, release, built, staging)
        skipped = ""
        try:
            if plans:
                docker_socket()  # no local engine socket: no boot media, the SBOM still
            if "uki" in cell.media:
                _check_keys(cell, keys)
            for plan in plans:
                _make_media(runner, plan, staging, network)
        except Skip as why:
            skipped = str(why)
            runner.say(cell.id, f"SKIPPED boot media: {why}")
        if stamp:
            ledger.write_media_stamp(staging, stamp, skipped)
        replace_dir(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    made = Artifacts(cell, final, _listing(final), skipped)
    for path in made.files:
        runner.say(cell.id, f"wrote {path}")
    return made

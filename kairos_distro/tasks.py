"""Build and publish this Kairos distro: `invoke --list` shows every task.

Each task reads release.yaml, then hands one pipeline stage to the
kairos_distro package. `invoke --dry TASK` prints what would run and touches
nothing. Settings that belong to a machine rather than to the release go in
invoke's own config (invoke.yaml or INVOKE_KAIROS_* variables):
  kairos.network     build/run network for containers (e.g. host); default: engine's
  kairos.docker_cli  docker client used for BuildKit builds; default: docker
  kairos.privileged  run AuroraBoot's raw disk build --privileged, as the factory does;
                     default: true (false where the engine refuses privileged containers)
  kairos.artifacts   where ISOs, raw images, SBOMs and checksums land; default: artifacts
  kairos.keys        trusted boot: the owner's key directory (a secret); default: keys
  kairos.boot.*      test-boot: accel, memory, cpus, timeout, marker (invoke --help test-boot);
                     uefi_vars: trusted boot on this OVMF variable store, not setup mode
"""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Collection, Exit, task

from kairos_distro import (
    artifacts,
    boot,
    build,
    ci,
    config,
    invocation,
    keys,
    numbers,
    pins,
    promote,
    publish,
    release,
    stages,
    summary,
)
from kairos_distro import scan as scan_stage
from kairos_distro.invocation import CELL_HELP, FILE_HELP, TOKEN_HELP
from kairos_distro.runner import StepError
from kairos_distro.tasks_trust import scan, sign_, trusted_root, verify

# kairos.boot.*, numbers as text: invoke casts INVOKE_KAIROS_* to its default's type, and
# int("abc") would fail inside invoke; invocation.boot_settings reads them (numbers.py).
BOOT = {"accel": "auto", "memory": "2048", "cpus": "2", "timeout": "900", "marker": "login:"}
BOOT |= {"cloud_config": "cloud-config.yaml", "uefi_vars": ""}  # cidata user-data; qemu.Settings


@task(help={"format": "table (default), json, github or gitlab.", "release-file": FILE_HELP})
def matrix(c, format="table", release_file=""):
    """List the release matrix's cells and image names; CI reads --format github/gitlab."""
    _, rel = invocation.setup(c, release_file)
    if format == "table":
        return summary.table("cells", [ci.cell_row(rel, cell) for cell in rel.cells])
    try:
        print(ci.render(rel, format).rstrip("\n"))
    except ci.MatrixError as err:
        raise Exit(f"matrix: {err}", code=2) from None


@task(name="build", iterable=["cell"], help={**CELL_HELP, "release-file": FILE_HELP})
def build_(c, cell=None, release_file=""):
    """Convert the base image with kairos-init into one Kairos image per cell."""
    runner, rel = invocation.setup(c, release_file)

    def act(one: config.Cell) -> str:
        built = build.run(runner, rel, one, network=c.config.kairos.network)
        return built.ref if built else "dry run"

    invocation.each(runner, rel, cell, "build", act)


@task(iterable=["cell"], help={**CELL_HELP, "release-file": FILE_HELP})
def iso(c, cell=None, release_file=""):
    """Make each built cell's boot media (ISO, board raw image, UKI ISO) and SBOM."""
    runner, rel = invocation.setup(c, release_file)
    out = Path(c.config.kairos.artifacts)

    def act(one: config.Cell, key_dir: Path) -> str:
        built, network = build.local(runner, rel, one), c.config.kairos.network
        made = artifacts.make_artifacts(runner, rel, built, one, out, network, keys=key_dir)
        if made is None:
            return "dry run"
        return f"{', '.join(made.kinds)} in {made.directory}" + (
            f" (boot media skipped: {made.skipped})" if made.skipped else ""
        )

    with invocation.key_dir(c) as key_dir:
        invocation.each(runner, rel, cell, "iso", lambda one: act(one, key_dir))


@task(
    name="keys",
    help={
        "name": "Name in the certificates (default: the project name).",
        "days": f"Certificates' lifetime, {numbers.DAYS} (default {keys.DAYS}, as AuroraBoot).",
        "export": f"Print the key set build-uki needs as the {keys.ENV} CI secret "
        "(pipe it, e.g. into `gh secret set KAIROS_KEYS`); makes no keys.",
        "release-file": FILE_HELP,
    },
)
def keys_(c, name="", days="", export=False, release_file=""):
    """Create your Secure Boot and TPM PCR keys for trusted boot (AuroraBoot genkey) in keys/."""
    runner, rel = invocation.setup(c, release_file)
    directory = Path(c.config.kairos.keys)
    lifetime = int(invocation.number("keys", "--days", days or keys.DAYS, numbers.DAYS))
    try:
        if export:
            if sys.stdout.isatty():
                why = f"--export prints secret keys; pipe it (e.g. | gh secret set {keys.ENV})"
                raise Exit(f"keys: {why}", code=2)
            print(keys.export(directory))
            return
        keys.generate(runner, rel, directory, name or rel.name, lifetime)
    except keys.KeysError as err:
        raise Exit(str(err), code=2) from None
    except StepError as err:
        raise Exit(str(err), code=1) from None
    if not runner.dry:
        print(f"wrote a key set to {directory}/: keep it secret (git-ignored); back it up.")
        print(f"CI: invoke keys --export | gh secret set {keys.ENV}")


@task(
    name="publish",
    iterable=["cell"],
    help={**CELL_HELP, "token": TOKEN_HELP, "release-file": FILE_HELP},
)
def publish_(c, cell=None, token="", release_file=""):
    """Apply the vulnerability policy, push each built cell by digest, sign and verify, tag."""
    runner, rel = invocation.setup(c, release_file)
    sigstore = invocation.sigstore(rel, required=False, token=token)
    out = Path(c.config.kairos.artifacts)

    database = scan_stage.once(lambda: scan_stage.database(runner, rel))  # for the first scan

    def act(one: config.Cell) -> str:
        built = build.local(runner, rel, one)
        if built is not None:  # the policy decides before anything is pushed
            scan_stage.before_publish(runner, rel, built, out, database)
        else:
            runner.would(one.id, f"scan its SBOM with {rel.grype} unless scanned; apply the policy")
        done = publish.publish(runner, rel, one, built, sigstore, out)
        return done.ref if done else "dry run"

    invocation.each(runner, rel, cell, "publish", act)


@task(
    name="release",
    iterable=["cell"],
    help={
        **CELL_HELP,
        "force": "Redo every step even where the inputs are already published.",
        "refresh": "What rebuilds a published cell, this run only: packages (its inputs, or "
        "newer packages on its mirrors), inputs, or always (default: release.yaml's refresh).",
        "token": TOKEN_HELP,
        "accel": "test-boot acceleration: auto, kvm or tcg.",
        "release-file": FILE_HELP,
    },
)
def release_(c, cell=None, force=False, refresh="", token="", accel="", release_file=""):
    """Build, ISO, boot-test, scan, sign, publish each cell; skips what is published and current."""
    runner, rel = invocation.setup(c, release_file)
    invocation.choice("release", "--refresh", refresh, config.REFRESH_MODES)
    settings, user_data = invocation.boot_settings(c, "release", accel)
    out = Path(c.config.kairos.artifacts)
    with invocation.key_dir(c) as key_dir:
        plan = stages.Plan(
            runner,
            rel,
            out,
            c.config.kairos.network,
            settings,
            user_data,
            sigstore=invocation.sigstore(rel, required=False, token=token),
            force=force,
            refresh=refresh,
            context=rel.path.parent,
            keys=key_dir,
        )
        reports = release.run_release(plan, invocation.cells(rel, cell))
    if runner.dry:
        return
    print(summary.render("table", reports, rel.version), end="")
    for path in summary.write(reports, rel.version, out):
        print(f"summary: {path}")
    invocation.finish_release(reports)


@task(
    name="summary",
    iterable=["cell"],
    help={
        "from": "Directory searched for release-summary.json files (default: artifacts).",
        "format": "table (default), markdown or json.",
        **CELL_HELP,
        "release-file": FILE_HELP,
    },
)
def summary_(c, from_="", format="table", cell=None, release_file=""):
    """Sum up a release from the release-summary.json its cells wrote (e.g. in CI jobs)."""
    rel = invocation.load(c, release_file)
    if format not in summary.FORMATS:
        raise Exit(f"summary: --format must be table, markdown or json (got {format})", code=2)
    cells = [one.id for one in invocation.cells(rel, cell)]
    try:
        version, reports = summary.collect(Path(from_ or c.config.kairos.artifacts), cells)
    except summary.SummaryError as err:
        raise Exit(f"summary: {err}", code=1) from None
    print(summary.render(format, reports, version, "all cells"), end="")


@task(
    name="test-boot",
    iterable=["cell"],
    help={
        **CELL_HELP,
        "iso": "Boot this ISO instead of artifacts/<cell>/*.iso (needs one cell).",
        "accel": "auto (KVM when it really works, else TCG), kvm or tcg.",
        "memory": f"Guest memory, {numbers.MEMORY} (default {BOOT['memory']}: kairos.boot.memory).",
        "cpus": f"Guest processors, {numbers.CPUS} (default {BOOT['cpus']}: kairos.boot.cpus).",
        "timeout": f"Time a boot may take, {numbers.TIMEOUT} (default {BOOT['timeout']}).",
        "release-file": FILE_HELP,
    },
)
def test_boot(c, cell=None, iso="", accel="", memory="", cpus="", timeout="", release_file=""):
    """Boot each cell's ISO in QEMU and check SSH, boot state and provider version."""
    runner, rel = invocation.setup(c, release_file)
    cells = invocation.cells(rel, cell)
    if iso and len(cells) != 1:
        raise Exit("test-boot: --iso needs exactly one cell (--cell ID)", code=2)
    settings, user_data = invocation.boot_settings(c, "test-boot", accel, memory, cpus, timeout)
    out = Path(c.config.kairos.artifacts)

    def act(one: config.Cell) -> str:
        path = Path(iso) if iso else artifacts.iso_of(rel, one, out, runner.dry)
        plan = boot.boot_iso(runner, rel, one, path, settings, user_data)
        if runner.dry:
            return "dry run"
        passed = ", ".join(f"{r.name} {r.seconds:.0f}s" for r in plan.results)
        return f"{plan.accel}: {passed}"

    invocation.finish("test-boot", release.for_each_cell(runner, cells, "test-boot", act))


@task(
    help={
        "what": "The pin to move: base, kairos-init[-riscv64], auroraboot, syft, grype, k3s, k0s "
        "or vulndb (the newest vulnerability database grype's listing names).",
        "to": "Images: a tag, or name:tag[@sha256:...] (default: the current tag's digest "
        "now). k3s/k0s: the full upstream tag (required).",
        "from": "k3s/k0s: the version to replace when cells carry several.",
        "release-file": FILE_HELP,
    }
)
def bump(c, what, to="", from_="", release_file=""):
    """Move one pin of release.yaml in place: an image, a k3s/k0s version, the vulnerability db."""
    path = Path(release_file or c.config.kairos.release_file)
    dry = bool(c.config.run.dry)
    try:
        change = pins.plan(path, what, to=to, from_=from_)
        pins.apply(change, dry=dry)
    except pins.ResolveError as err:
        raise Exit(f"bump: {err}", code=1) from None
    except pins.PinError as err:
        raise Exit(f"bump: {err}", code=2) from None
    if not change.changed:
        print(f"{what} is already {change.new}: {path} unchanged")
    elif dry:
        print(f"would bump {what}: {change.old} -> {change.new} ({path} unchanged)")
    else:
        print(f"bumped {what}: {change.old or '(none)'} -> {change.new}")


@task(
    name="promote",
    iterable=["cell"],
    help={
        **CELL_HELP,
        "from": "Channel whose tag gives the digest (e.g. edge).",
        "to": "Channel whose tag moves to that digest (e.g. stable).",
        "release-file": FILE_HELP,
    },
)
def promote_(c, from_="", to="", cell=None, release_file=""):
    """Point a channel tag at the digest another channel carries, verified, without rebuilding."""
    runner, rel = invocation.setup(c, release_file)
    try:
        promote.check_channels(rel.channels, from_, to)
    except promote.PromoteError as err:
        raise Exit(f"promote: {rel.path}: {err}", code=2) from None
    sigstore = invocation.sigstore(rel, required=False)

    def act(one: config.Cell) -> str:
        done = promote.promote_cell(runner, rel, one, from_, to, sigstore)
        if done is None:
            return "dry run"
        checked = "verified" if done.verified else "unsigned"
        return f"{done.to_tag} -> {done.ref} ({checked})"

    invocation.each(runner, rel, cell, "promote", act)


ns = Collection(
    matrix,
    build_,
    iso,
    test_boot,
    scan,
    sign_,
    verify,
    trusted_root,
    publish_,
    release_,
    summary_,
    keys_,
    bump,
    promote_,
)
ns.configure(
    {
        "kairos": {
            "release_file": "release.yaml",
            "artifacts": "artifacts",
            "keys": keys.DEFAULT_DIR,
            "network": "",
            "docker_cli": "docker",
            # Text, not a bool: invoke would read INVOKE_KAIROS_PRIVILEGED=false as true.
            "privileged": "true",
            "boot": BOOT,
        }
    }
)

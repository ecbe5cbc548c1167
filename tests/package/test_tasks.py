"""The invoke tasks as a user runs them: subprocesses in the repository root.

Everything runs with DOCKER_HOST pointing at a socket that does not exist, so
a task that touched the engine would fail: `--dry` must not need one. The
invocations start together once per module; each takes about half a second.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from package_helpers import RISCV64_KAIROS_INIT, ROOT, run_invoke

from kairos_distro import ci, config, naming, qemu

NO_ENGINE = "unix:///nonexistent.sock"
VULNDB_PIN = f"https://grype.anchore.io/databases/v6/db.tar.zst?checksum=sha256:{'5' * 64}"
Runs = dict[str, subprocess.CompletedProcess[str]]


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return run_invoke(*args, env={"DOCKER_HOST": NO_ENGINE})


def report(run: subprocess.CompletedProcess[str]) -> str:
    """What a failed assertion shows: the call, its exit code and both streams."""
    return f"{run.args[3:]} exited {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"


def write(path: Path, cells: list[dict[str, object]]) -> Path:
    """A release file with the repo's own top-level fields and these cells."""
    data = yaml.safe_load((ROOT / "release.yaml").read_text())
    if any(c.get("arch") == "riscv64" for c in cells):
        data.setdefault("kairos_init_riscv64", RISCV64_KAIROS_INIT)
    path.write_text(yaml.safe_dump({**data, "cells": cells}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def rel() -> config.Release:
    """The repository's own release.yaml, whatever the template was baked with."""
    return config.load(ROOT / "release.yaml")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    tmp = tmp_path_factory.mktemp("tasks")
    broken = write(tmp / "broken.yaml", [{"arch": "arm64"}, {"arch": "amd64", "model": "rpi4"}])
    # An ISO-less board between two generic cells: the cell after it must still run.
    mixed = write(
        tmp / "mixed.yaml",
        [{"arch": "amd64"}, {"arch": "arm64", "model": "rpi4"}, {"arch": "arm64"}],
    )
    pinned = tmp / "pinned.yaml"
    data = yaml.safe_load((ROOT / "release.yaml").read_text())
    pinned.write_text(yaml.safe_dump({**data, "vulndb": VULNDB_PIN}, sort_keys=False))
    calls = {
        "list": ["--list"],
        "json": ["matrix", "--format", "json"],
        "github": ["matrix", "--format", "github"],
        "gitlab": ["matrix", "--format", "gitlab"],
        # The whole pipeline in one call; iso goes last as it may fail (see below).
        "pipeline": ["--dry", "build", "publish", "iso"],
        "unknown-cell": ["--dry", "build", "--cell", "s390x-generic"],
        "broken": ["matrix", "--release-file", str(broken)],
        "mixed-iso": ["--dry", "iso", "--release-file", str(mixed)],
        "scan": ["--dry", "scan"],
        "scan-pinned": ["--dry", "scan", "--release-file", str(pinned)],
    }
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {name: pool.submit(invoke, *args) for name, args in calls.items()}
    return {name: future.result() for name, future in futures.items()}


def lines_of(text: str, cell: config.Cell) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"[{cell.id}] ")]


def test_list_shows_every_task_with_a_description(runs) -> None:
    run = runs["list"]
    assert run.returncode == 0, report(run)
    for name in ("build", "iso", "keys", "matrix", "publish", "release", "scan", "verify"):
        assert re.search(rf"^\s+{name}\s+\w", run.stdout, re.MULTILINE), report(run)


def test_matrix_json_lists_every_cell(runs, rel) -> None:
    run = runs["json"]
    assert run.returncode == 0, report(run)
    rows = json.loads(run.stdout)
    assert [row["cell"] for row in rows] == [cell.id for cell in rel.cells]
    for row, cell in zip(rows, rel.cells, strict=True):
        assert row["platform"] == f"linux/{cell.arch}"
        assert (row["arch"], row["model"], row["variant"]) == (cell.arch, cell.model, cell.variant)
        assert row["provider"] == (cell.provider or "none")
        assert row["provider_version"] == (cell.provider_version or "")
        assert (row["trusted_boot"], row["fips"]) == (cell.trusted_boot, cell.fips)


def test_matrix_github_is_one_output_line(runs, rel) -> None:
    run = runs["github"]
    assert run.returncode == 0, report(run)
    assert len(run.stdout.splitlines()) == 1  # $GITHUB_OUTPUT needs key=value on one line
    include = json.loads(run.stdout)["include"]
    assert include == [
        {
            "cell": cell.id,
            "arch": cell.arch,
            "runner": ci.GITHUB_RUNNER[cell.arch],
            "trusted_boot": cell.trusted_boot,
        }
        for cell in rel.cells
    ]


def test_matrix_gitlab_is_a_child_pipeline(runs, rel) -> None:
    run = runs["gitlab"]
    assert run.returncode == 0, report(run)
    pipeline = yaml.safe_load(run.stdout)
    assert pipeline["include"] == [{"local": ".gitlab/cell.yml"}]
    assert pipeline["cell"]["parallel"]["matrix"] == [{"CELL": [cell.id for cell in rel.cells]}]


# One job per cell: one past each CI's limit is refused in one line, the limit itself is not.
GITHUB_OVER = (
    "{path}: 257 cells make 257 GitHub Actions jobs, more than the 256 one matrix may have"
)
GITLAB_OVER = "{path}: 201 cells make 201 GitLab jobs, more than the 200 one matrix may have"
SPLIT = "; split the cells across release files (--release-file)"


def k3s_cells(count: int) -> list[dict[str, object]]:
    return [
        {"arch": "amd64", "provider": "k3s", "provider_version": f"v1.33.{n}+k3s1"}
        for n in range(count)
    ]


@pytest.mark.parametrize(
    "format, count, refusal",
    [
        ("github", 256, ""),
        ("github", 257, GITHUB_OVER),
        ("gitlab", 200, ""),
        ("gitlab", 201, GITLAB_OVER),
        ("json", 257, ""),  # no CI reads it as a matrix
    ],
)
def test_matrix_refuses_more_jobs_than_ci_runs(make_release, format, count, refusal) -> None:
    rel = make_release(*k3s_cells(count))
    if not refusal:
        assert ci.render(rel, format) == ci.FORMATS[format](rel)
        return
    with pytest.raises(ci.MatrixError) as caught:
        ci.render(rel, format)
    assert str(caught.value) == refusal.format(path=rel.path) + SPLIT


@pytest.mark.parametrize(
    "format, count, line", [("github", 257, GITHUB_OVER), ("gitlab", 201, GITLAB_OVER)]
)
def test_matrix_over_the_limit_ends_the_ci_step_in_one_line(tmp_path, format, count, line) -> None:
    path = write(tmp_path / "many.yaml", k3s_cells(count))
    run = invoke("matrix", "--format", format, "--release-file", str(path))
    assert run.returncode == 2, report(run)
    assert (run.stdout, run.stderr) == ("", f"matrix: {line.format(path=path)}{SPLIT}\n")


def stages(
    run: subprocess.CompletedProcess[str], cell: config.Cell, rel: config.Release
) -> dict[str, list[str]]:
    """A cell's lines of `--dry build publish iso`: build 2; publish 3 (+1 raw image,
    +1 signing); iso one per boot medium and one for the SBOM."""
    lines = lines_of(run.stdout, cell)
    raw = "raw" in cell.media and rel.publish_raw
    publish = 3 + raw + rel.signing.enabled  # the scan, the push and the tags (+1, +1)
    assert len(lines) == 2 + publish + len(cell.media) + 1, report(run)
    return {"build": lines[:2], "publish": lines[2 : 2 + publish], "iso": lines[2 + publish :]}


def test_dry_build_needs_no_engine(runs, rel) -> None:
    run = runs["pipeline"]
    for cell in rel.cells:
        build, tag = stages(run, cell, rel)["build"]
        assert build.startswith(f"[{cell.id}] would run: docker build "), build
        assert f" --platform linux/{cell.arch} " in build
        assert f" --tag {naming.local_tag(rel, cell)} " in build
        expected = naming.image_ref(rel, naming.Identity.expected(rel, cell))
        assert tag == f"[{cell.id}] would tag {naming.local_tag(rel, cell)} as {expected}"
    assert "summary" not in run.stdout  # dry runs print plans, not results


def test_dry_publish_needs_no_engine(runs, rel) -> None:
    run = runs["pipeline"]
    for cell in rel.cells:
        ident = naming.Identity.expected(rel, cell)
        scan, push, *middle, tag = stages(run, cell, rel)["publish"]
        local, repository = naming.local_tag(rel, cell), naming.repository(rel, ident)
        # The policy decides before anything is pushed: scan first (unless `invoke scan` ran).
        assert scan == (
            f"[{cell.id}] would scan its SBOM with {rel.grype} unless scanned; apply the policy"
        )
        assert push == f"[{cell.id}] would push {local} to {repository} by digest"
        if "raw" in cell.media and rel.publish_raw:  # boards: the raw image beside it
            raw = middle.pop(0)
            raw_tag = naming.raw_tag(ident, rel.tags)
            assert raw == f"[{cell.id}] would push the raw disk image as {repository}:{raw_tag}"
        if rel.signing.enabled:  # signing comes between the push and the tag
            assert middle == [
                f"[{cell.id}] would sign those digests, attest the SBOM, sign the artifact "
                "checksums, then verify"
            ]
        tags = [naming.image_tag(ident, rel.tags)]  # the version, then the first channel
        tags += [naming.channel_tag(ident, rel.tags, channel) for channel in rel.channels[:1]]
        assert tag == f"[{cell.id}] would then tag it {', '.join(tags)}"


def test_dry_iso_needs_no_engine(runs, rel) -> None:
    # Generic cells get an ISO, boards a raw disk image (AuroraBoot --privileged),
    # trusted boot a UKI ISO with the keys mounted read-only; all get an SBOM.
    run = runs["pipeline"]
    assert run.returncode == 0, report(run)
    for cell in rel.cells:
        *media, sbom = stages(run, cell, rel)["iso"]
        mounts = f"(/nonexistent.sock:/var/run/docker.sock, artifacts/{cell.id}:/output"
        for kind, line in zip(cell.media, media, strict=True):
            flags = "--privileged " if kind == "raw" else ""
            assert line.startswith(f"[{cell.id}] would run {flags}{rel.auroraboot} "), line
            assert mounts in line
            assert ("build-uki" in line) == (kind == "uki")
            assert line.endswith(", keys:/keys:ro)" if kind == "uki" else ")")
        name = naming.artifact_name(naming.Identity.expected(rel, cell))
        # syft catalogues the built image through the engine's socket (no engine asked:
        # IMAGE, NAME and TAG stand for its ID, published name and tag).
        assert sbom == (
            f"[{cell.id}] would run {rel.syft} scan docker:IMAGE --output cyclonedx-json@1.6 "
            "--source-name NAME --source-version TAG --quiet "
            f"(/nonexistent.sock:/var/run/docker.sock) > artifacts/{cell.id}/{name}.cdx.json"
        )
    assert run.stderr == ""


def test_dry_scan_names_the_scanner_and_the_database_and_fetches_nothing(runs, rel) -> None:
    for name, against in [("scan", "the listing's latest database"), ("scan-pinned", VULNDB_PIN)]:
        run = runs[name]
        assert (run.returncode, run.stderr) == (0, ""), report(run)
        assert run.stdout.splitlines() == [
            f"[{cell.id}] would scan its SBOM with {rel.grype} against {against}"
            for cell in rel.cells
        ]


def test_unknown_cell_is_refused_before_any_work(runs, rel) -> None:
    run = runs["unknown-cell"]
    assert run.returncode == 2, report(run)
    assert run.stdout == ""
    ids = ", ".join(cell.id for cell in rel.cells)
    assert run.stderr == f"release.yaml: no cell s390x-generic; cells are: {ids}\n"


def test_broken_release_file_is_one_line_naming_file_and_field(runs) -> None:
    run = runs["broken"]
    assert run.returncode == 2, report(run)
    assert run.stdout == ""
    path = run.args[-1]  # the --release-file argument
    assert run.stderr == f'{path}: cells[1].model: rpi4 needs arch arm64 (got "amd64")\n'


@pytest.mark.parametrize("value, flag", [("false", ""), ("0", ""), ("true", "--privileged ")])
def test_privileged_setting_is_read_as_written(tmp_path, value, flag) -> None:
    board = write(tmp_path / "board.yaml", [{"arch": "arm64", "model": "rpi4"}])
    env = {"DOCKER_HOST": NO_ENGINE, "INVOKE_KAIROS_PRIVILEGED": value}
    run = run_invoke("--dry", "iso", "--release-file", str(board), env=env)
    assert run.returncode == 0, report(run)
    assert run.stdout.startswith(f"[arm64-rpi4] would run {flag}quay.io/"), run.stdout


def test_privileged_setting_refuses_other_words(tmp_path) -> None:
    env = {"DOCKER_HOST": NO_ENGINE, "INVOKE_KAIROS_PRIVILEGED": "maybe"}
    run = run_invoke("--dry", "iso", env=env)
    assert run.returncode == 2
    assert run.stderr == (
        "kairos.privileged (INVOKE_KAIROS_PRIVILEGED): expected true or false, got maybe\n"
    )


def test_dry_iso_makes_the_raw_image_for_a_board(runs) -> None:
    run = runs["mixed-iso"]
    assert run.returncode == 0, report(run)
    lines = run.stdout.splitlines()
    assert [line.split("]")[0] + "]" for line in lines] == [
        "[amd64-generic]",
        "[amd64-generic]",
        "[arm64-rpi4]",
        "[arm64-rpi4]",
        "[arm64-generic]",
        "[arm64-generic]",
    ]
    assert " would run " in lines[0] and " build-iso " in lines[0]
    assert lines[2].startswith("[arm64-rpi4] would run --privileged ")
    assert " --set disk.efi=true " in lines[2]
    assert " would run " in lines[4] and " --arch arm64 " in lines[4]
    assert run.stderr == ""


# -- test-boot ------------------------------------------------------------------------------

TRAPPED = ("qemu-system-x86_64", "qemu-system-aarch64", "qemu-system-riscv64", "qemu-img")


@pytest.fixture(scope="module")
def boot_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runs, Path]:
    """test-boot calls with PATH leading to fake QEMU programs that record being run.

    Returns the runs and the directory the fakes write to; it stays empty unless a
    task started one of them.
    """
    tmp = tmp_path_factory.mktemp("boot")
    trap, ran = tmp / "bin", tmp / "ran"
    trap.mkdir()
    ran.mkdir()
    for name in (*TRAPPED, "swtpm", "docker"):
        fake = trap / name
        fake.write_text(f'#!/bin/sh\ntouch "{ran}/{name}"\nexit 1\n')
        fake.chmod(0o755)
    empty = tmp / "empty"
    empty.mkdir()
    two = write(tmp / "two.yaml", [{"arch": "amd64"}, {"arch": "arm64"}])
    mixed = write(
        tmp / "mixed.yaml",
        [{"arch": "amd64"}, {"arch": "arm64", "model": "rpi4"}, {"arch": "riscv64"}],
    )
    first = config.load(ROOT / "release.yaml").cells[0].id
    trapped = {"PATH": f"{trap}{os.pathsep}{os.environ.get('PATH', '')}"}
    calls: dict[str, tuple[list[str], dict[str, str]]] = {
        "dry": (["--dry", "test-boot"], trapped),
        "dry-options": (
            ["--dry", "test-boot", "--accel", "tcg", "--memory", "4096", "--cpus", "3"],
            trapped,
        ),
        # Machine settings also come from invoke's config, here its environment variables.
        "dry-iso": (
            ["--dry", "test-boot", "--cell", first, "--iso", "/srv/my.iso"],
            {**trapped, "INVOKE_KAIROS_BOOT_MEMORY": "1536"},
        ),
        "bad-accel": (["--dry", "test-boot", "--accel", "xen"], trapped),
        "iso-needs-one-cell": (
            ["--dry", "test-boot", "--iso", "/srv/my.iso", "--release-file", str(two)],
            trapped,
        ),
        # Not dry: no QEMU on PATH at all, so every cell is skipped, and that is no failure.
        "no-qemu": (["test-boot", "--release-file", str(mixed)], {"PATH": str(empty)}),
    }

    def call(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return run_invoke(*args, env={"DOCKER_HOST": NO_ENGINE, **env})

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {name: pool.submit(call, *args) for name, args in calls.items()}
    return {name: future.result() for name, future in futures.items()}, ran


def test_list_shows_test_boot(runs) -> None:
    run = runs["list"]
    assert run.returncode == 0, report(run)
    assert re.search(r"^\s+test-boot\s+Boot each cell's ISO in QEMU", run.stdout, re.MULTILINE), (
        report(run)
    )


def boot_line(run: subprocess.CompletedProcess[str], cell: config.Cell) -> str:
    (line,) = lines_of(run.stdout, cell)
    return line


def test_dry_test_boot_touches_neither_docker_nor_qemu(boot_runs, rel) -> None:
    runs_, ran = boot_runs
    run = runs_["dry"]
    assert run.returncode == 0, report(run)
    assert run.stderr == ""
    assert list(ran.iterdir()) == []  # no fake qemu, qemu-img, swtpm or docker ran
    assert "summary" not in run.stdout
    assert len(run.stdout.splitlines()) == len(rel.cells)
    for cell in rel.cells:
        line = boot_line(run, cell)
        if cell.model != "generic":
            continue  # boards are skipped when not dry; what dry says of them is not pinned
        assert line.startswith(f"[{cell.id}] would boot: {qemu.QEMU[cell.arch]} "), line
        assert " -m 2048 -smp 2 " in line  # invoke config defaults
        iso = f"artifacts/{cell.id}/{naming.artifact_name(naming.Identity.expected(rel, cell))}.iso"
        assert f" -drive file={iso},media=cdrom,readonly=on " in line, line
        assert ",hostfwd=tcp:127.0.0.1:" in line


def test_dry_test_boot_options(boot_runs, rel) -> None:
    runs_, ran = boot_runs
    run = runs_["dry-options"]
    assert run.returncode == 0, report(run)
    assert list(ran.iterdir()) == []
    for cell in rel.cells:
        if cell.model == "generic":
            line = boot_line(run, cell)
            assert " -accel tcg -cpu max " in line, line
            assert " -m 4096 -smp 3 " in line, line


def test_dry_test_boot_given_iso_and_config(boot_runs, rel) -> None:
    runs_, ran = boot_runs
    run = runs_["dry-iso"]
    assert run.returncode == 0, report(run)
    assert list(ran.iterdir()) == []
    cell = rel.cells[0]
    assert len(run.stdout.splitlines()) == 1, report(run)
    if cell.model == "generic":
        line = boot_line(run, cell)
        assert " -drive file=/srv/my.iso,media=cdrom,readonly=on " in line, line
        assert " -m 1536 -smp 2 " in line, line  # INVOKE_KAIROS_BOOT_MEMORY


def test_test_boot_refusals(boot_runs) -> None:
    runs_, ran = boot_runs
    accel, many = runs_["bad-accel"], runs_["iso-needs-one-cell"]
    assert accel.returncode == 2, report(accel)
    assert accel.stderr == "test-boot: --accel: xen is not auto, kvm or tcg\n"
    assert many.returncode == 2, report(many)
    assert many.stderr == "test-boot: --iso needs exactly one cell (--cell ID)\n"
    assert accel.stdout == many.stdout == ""
    assert list(ran.iterdir()) == []


def test_test_boot_without_qemu_skips_every_cell(boot_runs) -> None:
    runs_, _ = boot_runs
    run = runs_["no-qemu"]
    assert run.returncode == 0, report(run)  # skipped cells are shown, not failed
    assert run.stderr == ""
    lines = run.stdout.splitlines()
    assert lines[:3] == [
        "[amd64-generic] SKIPPED test-boot: qemu-system-x86_64 is not installed",
        "[arm64-rpi4] SKIPPED test-boot: model rpi4 boots from its raw disk image, which is not "
        "boot-tested",
        "[riscv64-generic] SKIPPED test-boot: qemu-system-riscv64 is not installed",
    ]
    summary = lines[lines.index("test-boot summary") :]
    assert [line.split()[:2] for line in summary[2:]] == [
        ["amd64-generic", "skipped"],
        ["arm64-rpi4", "skipped"],
        ["riscv64-generic", "skipped"],
    ]


def test_setup_turns_sigterm_into_an_interrupt_on_the_main_thread_only() -> None:
    from invoke import Config, Context

    from kairos_distro import invocation, tasks

    context = Context(Config(overrides=tasks.ns.configuration()))
    release_file = str(ROOT / "release.yaml")
    before = signal.getsignal(signal.SIGTERM)
    try:
        answers: list[object] = []
        worker = threading.Thread(
            target=lambda: answers.append(invocation.setup(context, release_file))
        )
        worker.start()
        worker.join()
        assert len(answers) == 1  # no ValueError: only the main thread may set a handler
        assert signal.getsignal(signal.SIGTERM) == before
        invocation.setup(context, release_file)
        assert signal.getsignal(signal.SIGTERM) == invocation._terminated
    finally:
        signal.signal(signal.SIGTERM, before)

"""The invoke tasks as a user runs them: subprocesses in the repository root.

Everything runs with DOCKER_HOST pointing at a socket that does not exist, so
a task that touched the engine would fail: `--dry` must not need one. The
invocations start together once per module; each takes about half a second.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from kairos_distro import config, naming, release

ROOT = Path(__file__).resolve().parent.parent
NO_ENGINE = "unix:///nonexistent.sock"
Runs = dict[str, subprocess.CompletedProcess[str]]


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": NO_ENGINE}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def report(run: subprocess.CompletedProcess[str]) -> str:
    """What a failed assertion shows: the call, its exit code and both streams."""
    return f"{run.args[3:]} exited {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"


def write(path: Path, cells: list[dict[str, object]]) -> Path:
    """A release file with the repo's own top-level fields and these cells."""
    data = yaml.safe_load((ROOT / "release.yaml").read_text())
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
    }
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {name: pool.submit(invoke, *args) for name, args in calls.items()}
    return {name: future.result() for name, future in futures.items()}


def lines_of(text: str, cell: config.Cell) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"[{cell.id}] ")]


def test_list_shows_every_task_with_a_description(runs) -> None:
    run = runs["list"]
    assert run.returncode == 0, report(run)
    for name in ("build", "iso", "matrix", "publish"):
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
        {"cell": cell.id, "arch": cell.arch, "runner": release.GITHUB_RUNNER[cell.arch]}
        for cell in rel.cells
    ]


def test_matrix_gitlab_is_a_child_pipeline(runs, rel) -> None:
    run = runs["gitlab"]
    assert run.returncode == 0, report(run)
    pipeline = yaml.safe_load(run.stdout)
    assert pipeline["include"] == [{"local": ".gitlab/cell.yml"}]
    assert pipeline["cell"]["parallel"]["matrix"] == [{"CELL": [cell.id for cell in rel.cells]}]


def stages(run: subprocess.CompletedProcess[str], cell: config.Cell) -> dict[str, list[str]]:
    """A cell's lines of `--dry build publish iso`, by stage: two, two, then one."""
    lines = lines_of(run.stdout, cell)
    assert len(lines) == 5, report(run)
    return {"build": lines[:2], "publish": lines[2:4], "iso": lines[4:]}


def test_dry_build_needs_no_engine(runs, rel) -> None:
    run = runs["pipeline"]
    for cell in rel.cells:
        build, tag = stages(run, cell)["build"]
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
        push, tag = stages(run, cell)["publish"]
        local, repository = naming.local_tag(rel, cell), naming.repository(rel, ident)
        assert push == f"[{cell.id}] would push {local} to {repository} by digest"
        assert tag == f"[{cell.id}] would then tag it {naming.image_tag(ident)}"


def test_dry_iso_needs_no_engine(runs, rel) -> None:
    # Boards boot from raw disk images and trusted boot needs a signed UKI ISO:
    # neither gets an ISO yet, so those cells fail even in a dry run.
    run = runs["pipeline"]
    has_iso = [c for c in rel.cells if c.model == "generic" and not c.trusted_boot]
    failed = len(rel.cells) - len(has_iso)
    assert run.returncode == (1 if failed else 0), report(run)
    for cell in rel.cells:
        (line,) = stages(run, cell)["iso"]
        if cell in has_iso:
            assert line.startswith(f"[{cell.id}] would run {rel.auroraboot} "), line
            assert f"(/nonexistent.sock:/var/run/docker.sock, artifacts/{cell.id}:/output)" in line
        else:
            assert line.startswith(f"[{cell.id}] FAILED iso: "), line
    if failed:
        assert run.stderr.startswith(f"iso: {failed} of {len(rel.cells)} cells failed; first: ")
        assert len(run.stderr.splitlines()) == 1
    else:
        assert run.stderr == ""


def test_unknown_cell_is_refused_before_any_work(runs, rel) -> None:
    run = runs["unknown-cell"]
    assert run.returncode == 2, report(run)
    assert run.stdout == ""
    ids = ", ".join(cell.id for cell in rel.cells)
    assert run.stderr == f"release.yaml: no cell 's390x-generic'; cells are: {ids}\n"


def test_broken_release_file_is_one_line_naming_file_and_field(runs) -> None:
    run = runs["broken"]
    assert run.returncode == 2, report(run)
    assert run.stdout == ""
    path = run.args[-1]  # the --release-file argument
    assert run.stderr == f"{path}: cells[1].model: rpi4 needs arch arm64 (got amd64)\n"


def test_dry_iso_goes_on_after_a_refused_cell(runs) -> None:
    run = runs["mixed-iso"]
    assert run.returncode == 1, report(run)
    lines = run.stdout.splitlines()
    assert [line.split("]")[0] + "]" for line in lines] == [
        "[amd64-generic]",
        "[arm64-rpi4]",
        "[arm64-generic]",
    ]
    assert " would run " in lines[0]
    assert lines[1].startswith("[arm64-rpi4] FAILED iso: model rpi4 boots from a raw disk image")
    assert " would run " in lines[2] and " --arch arm64 " in lines[2]
    assert run.stderr.startswith("iso: 1 of 3 cells failed; first: arm64-rpi4: iso: model rpi4")
    assert len(run.stderr.splitlines()) == 1

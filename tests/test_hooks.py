"""The hooks refuse what kairos-init or AuroraBoot would refuse, and keep answers as data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException

from tests.conftest import run
from tests.support.bake import TEMPLATE, bake
from tests.support.template_clone import clone_template

REFUSED = [
    ({"model": "rpi4"}, "model", "needs arch arm64"),
    ({"architectures": "riscv64", "fips": "yes"}, "fips", "riscv64"),
    (
        {"architectures": "arm64", "model": "nvidia-jetson-agx-orin"},
        "model",
        "needs base image ubuntu:22.04",
    ),
    (
        {"architectures": "arm64", "model": "nvidia-jetson-orin-nx", "base_image": "debian:12"},
        "model",
        "needs base image ubuntu:22.04",
    ),
    ({"provider": "k3s", "provider_versions": "v1.34.3"}, "provider_versions", "v1.35.1+k3s1"),
    ({"provider": "k0s", "provider_versions": "v1.32.1+k3s1"}, "provider_versions", "k0s tag"),
    ({"provider_versions": "v1.32.1+k3s1"}, "provider_versions", "provider is none"),
    ({"architectures": "amd64,x86"}, "architectures", "x86 is not one of"),
    ({"architectures": "amd64,amd64"}, "architectures", "duplicate"),
    ({"project": "Bad Slug!"}, "project", "lowercase slug"),
    ({"publisher": "bad org"}, "publisher", "organisation"),
    ({"registry": "ghcr.io"}, "registry", "is required"),
    ({"registry": "ghcr.io/My-Org"}, "registry", "lowercase path"),
    ({"registry": "bad host!/org"}, "registry", "registry host"),
    ({"version": "1.0.0"}, "version", "leading v"),
    ({"base_image": "custom"}, "custom_base_image", "is required"),
    ({"base_image": "custom", "custom_base_image": "Not A Ref"}, "custom_base_image", "image"),
    ({"custom_base_image": "debian:12"}, "custom_base_image", "not 'custom'"),
    ({"kairos_init_version": "v0.17.3 latest"}, "kairos_init_version", "image reference"),
    ({"description": "two\nlines"}, "description", "one line"),
]


@pytest.mark.parametrize(("answers", "answer", "message"), REFUSED, ids=lambda v: str(v)[:40])
def test_refused_bake_names_the_answer_and_leaves_nothing(
    tmp_path: Path, capfd, answers: dict, answer: str, message: str
) -> None:
    with pytest.raises(FailedHookException):
        bake(tmp_path, **answers)
    errors = [
        line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR: answer")
    ]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"ERROR: answer {answer!r}: ")
    assert message in errors[0]
    assert list(tmp_path.iterdir()) == []


TRICKY = 'it\'s "quoted" $(touch /tmp/kdt-pwned) `touch /tmp/kdt-pwned` \\ {{ 7*7 }} {% raw %}'


def assert_literal(repo: Path, text: str) -> None:
    assert yaml.safe_load((repo / "release.yaml").read_text())["description"] == text
    assert text in (repo / "README.md").read_text()
    assert recorded_answers(repo)["description"] == text
    assert _label(run(repo, "invoke", "--dry", "build").stdout) == text
    assert not Path("/tmp/kdt-pwned").exists()


def recorded_answers(repo: Path) -> dict:
    """The answers of the bake, as .cruft.json records them for cruft."""
    return json.loads((repo / ".cruft.json").read_text())["context"]["cookiecutter"]


def _label(planned: str) -> str:
    import shlex

    line = next(x for x in planned.splitlines() if "would run: " in x)
    argv = shlex.split(line.split("would run: ", 1)[1])
    labels = [argv[i + 1] for i, a in enumerate(argv) if a == "--label"]
    return next(
        v.split("=", 1)[1] for v in labels if v.startswith("org.opencontainers.image.description=")
    )


def test_typed_answers_stay_literal_jinja_included(tmp_path: Path) -> None:
    """Typed at the prompt, even Jinja stays literal in every generated file."""
    answers = "\n" + TRICKY + "\n" + "\n" * 16
    subprocess.run(
        ["cookiecutter", "-o", str(tmp_path), str(TEMPLATE)],
        input=answers,
        text=True,
        capture_output=True,
        check=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    (repo,) = tmp_path.iterdir()
    assert_literal(repo, TRICKY)


def test_no_input_answers_stay_literal_without_jinja(baked) -> None:
    """With --no-input cookiecutter renders answers as Jinja itself; the rest stays data."""
    text = TRICKY.split(" {{")[0]
    assert_literal(baked(description=text), text)


def test_answers_are_recorded_for_regeneration(baked, tmp_path: Path) -> None:
    """.cruft.json is the one record of the answers: its context replays the bake."""
    repo = baked(provider="k3s", ci="gitlab")
    assert not (repo / ".cookiecutter.json").exists()
    answers = recorded_answers(repo)
    assert answers["provider"] == "k3s"
    assert "_output_dir" not in answers and "_repo_dir" not in answers
    replay = tmp_path / "answers.json"
    replay.write_text(json.dumps({"cookiecutter": answers}))
    again = tmp_path / "again"
    subprocess.run(
        ["cookiecutter", "--replay-file", str(replay), "-o", str(again), str(TEMPLATE)],
        check=True,
        capture_output=True,
    )
    assert (again / repo.name / "release.yaml").read_text() == (repo / "release.yaml").read_text()


@pytest.mark.parametrize(
    ("ci", "kept", "gone"),
    [
        ("github", [".github"], [".gitlab-ci.yml", ".gitlab"]),
        ("gitlab", [".gitlab-ci.yml", ".gitlab"], [".github"]),
        ("none", [], [".github", ".gitlab-ci.yml", ".gitlab"]),
    ],
)
def test_unused_ci_files_are_removed(baked, ci: str, kept: list[str], gone: list[str]) -> None:
    repo = baked(ci=ci)
    assert all((repo / k).exists() for k in kept)
    assert not any((repo / g).exists() for g in gone)
    readme = (repo / "README.md").read_text()
    assert all(k in readme for k in kept), "the README documents the CI files it has"
    assert not any(g in readme for g in gone), "the README documents CI files it lacks"


UPSTREAM = "https://github.com/OWNER/kairos-distro-template"


@pytest.mark.parametrize(("cwd", "template"), [("", "."), ("hooks", "..")])
def test_bakes_from_a_clone_with_a_relative_path(tmp_path: Path, cwd: str, template: str) -> None:
    """`cookiecutter .` as a newcomer types it, in a clone, with no absolute path anywhere."""
    clone = clone_template(tmp_path / "kairos-distro-template", UPSTREAM)
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(out), template],
        cwd=clone / cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    (repo,) = out.iterdir()
    recorded = (repo / ".cruft.json").read_text()
    assert json.loads(recorded)["template"] == UPSTREAM
    assert recorded_answers(repo)["_template"] == UPSTREAM
    assert str(tmp_path) not in recorded, "no path of the baking machine is recorded"
    run(repo, "invoke", "--list")


def test_a_clone_without_remote_records_no_template_path(tmp_path: Path) -> None:
    clone = clone_template(tmp_path / "tpl", None)
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path / "out"), "."],
        cwd=clone,
        capture_output=True,
        check=True,
    )
    (repo,) = (tmp_path / "out").iterdir()
    recorded = (repo / ".cruft.json").read_text()
    assert json.loads(recorded)["template"] is None
    assert "_template" not in recorded_answers(repo)
    assert str(tmp_path) not in recorded


def test_refusal_from_a_relative_path_names_the_answer(tmp_path: Path) -> None:
    clone = clone_template(tmp_path / "tpl", UPSTREAM)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(out), ".", "model=rpi4"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "ERROR: answer 'model': " in proc.stderr
    assert "StopIteration" not in proc.stderr
    assert not out.exists() or list(out.iterdir()) == []

"""The hooks refuse what kairos-init or AuroraBoot would refuse, and keep answers as data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cookiecutter.exceptions import CookiecutterException

from tests.conftest import run
from tests.support.bake import TEMPLATE, bake, default_answers
from tests.support.template_clone import clone_template

CANARY = "s3cr3t-canary"
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
    (
        {"architectures": "amd64,x86"},
        "architectures",
        '"x86" is not one of amd64, arm64, riscv64; did you mean amd64?',
    ),
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
    ({"description": "two\nlines"}, "description", 'one line of printable text, got "two\\nlines"'),
    ({"description": "bell\x07"}, "description", "one line of printable text"),
    ({"description": "half \ud83d"}, "description", "is not UTF-8 text"),
    ({"fips": "maybe"}, "fips", 'expected yes or no, got "maybe"'),
    ({"trusted_boot": ""}, "trusted_boot", 'expected yes or no, got ""'),
    # Credentials are refused by name, never shown.
    ({"registry": f"user:{CANARY}@ghcr.io/org"}, "registry", "e.g. ghcr.io/my-org"),
    ({"registry": f"https://user:{CANARY}@ghcr.io/org"}, "registry", "carries credentials"),
    ({"registry": f"https://{CANARY}@ghcr.io/org"}, "registry", "carries credentials"),
    ({"publisher": f"user:{CANARY}@org"}, "publisher", "carries credentials"),
    (
        {"base_image": "custom", "custom_base_image": f"me:{CANARY}@quay.io/os:1"},
        "custom_base_image",
        "carries credentials",
    ),
    ({"description": f"see https://me:{CANARY}@example.com"}, "description", "credentials"),
    ({"description": "ghp_" + "A1b2" * 9}, "description", "carries credentials"),
    ({"kairos_init_version": "glpat-" + "x" * 20}, "kairos_init_version", "credentials"),
    # A project name is one directory: nothing of a path gets made, then left behind.
    ({"publisher": "a/b"}, "publisher", '"a/b" is not an organisation or user name'),
    ({"project": "a/b"}, "project", '"a/b" is not a lowercase slug'),
    ({"project": ".."}, "project", '".." is not a lowercase slug'),
    ({"project": "a/../b"}, "project", '"a/../b" is not a lowercase slug'),
    ({"project": "/tmp/kdt-abs"}, "project", '"/tmp/kdt-abs" is not a lowercase slug'),
    ({"project": "a\\b"}, "project", "is not a lowercase slug"),
    ({"project": ""}, "project", "is required"),
    ({"project": "x" * 300}, "project", "is not a lowercase slug"),
]


@pytest.mark.parametrize(("answers", "answer", "message"), REFUSED, ids=lambda v: str(v)[:40])
def test_refused_bake_names_the_answer_and_leaves_nothing(
    tmp_path: Path, capfd, answers: dict, answer: str, message: str
) -> None:
    with pytest.raises(CookiecutterException) as refused:
        bake(tmp_path / "out", **answers)
    line = str(refused.value)
    assert line.startswith(f"answer '{answer}': ") and message in line, line
    assert "\n" not in line and CANARY not in line
    assert capfd.readouterr() == ("", ""), "a library caller gets the line, nothing printed"
    assert list(tmp_path.iterdir()) == []
    assert not Path("/tmp/kdt-abs").exists()


def cookiecutter_cli(tmp_path: Path, *answers: str) -> subprocess.CompletedProcess:
    """`cookiecutter --no-input` as typed, with a HOME of its own (its replay files)."""
    (tmp_path / "home").mkdir(exist_ok=True)
    out = str(tmp_path / "out")
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", out, str(TEMPLATE), *answers],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HOME": str(tmp_path / "home"), "NO_COLOR": "1"},
    )


@pytest.mark.parametrize(
    ("answer", "line"),
    [
        (f"registry=user:{CANARY}@ghcr.io/org", "ERROR: answer 'registry': carries credentials"),
        ("publisher=a/b", "ERROR: answer 'publisher': \"a/b\" is not an organisation"),
        ("project=../up", "ERROR: answer 'project': \"../up\" is not a lowercase slug"),
        ("fips=maybe", "ERROR: answer 'fips': expected yes or no, got \"maybe\""),
        ("model=rpi4", "ERROR: answer 'model': rpi4 needs arch arm64"),
    ],
)
def test_command_line_refusal_is_one_line_and_leaves_nothing(
    tmp_path: Path, answer: str, line: str
) -> None:
    """The installed cookiecutter: one line on stderr, exit 1, no file anywhere."""
    proc = cookiecutter_cli(tmp_path, answer)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(line), proc.stderr
    assert not (tmp_path / "out").exists()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in written if CANARY in p.read_text(errors="replace")], written


@pytest.mark.parametrize(
    ("typed", "value"),
    [("yes", True), ("no", False), ("Y", True), ("off", False), ("1", True), ("false", False)],
)
def test_yes_no_answers_are_accepted_in_every_spelling(baked, typed: str, value: bool) -> None:
    """cookiecutter's yes/no words (2.6 and 2.7 alike: these answers are text)."""
    repo = baked(trusted_boot=typed, fips=typed, base_image="fedora:42")
    (cell,) = yaml.safe_load((repo / "release.yaml").read_text())["cells"]
    assert (cell["trusted_boot"], cell["fips"]) == (value, value)


def test_yes_no_on_the_command_line(tmp_path: Path) -> None:
    proc = cookiecutter_cli(tmp_path, "trusted_boot=yes", "fips=no", "base_image=fedora:42")
    assert proc.returncode == 0, proc.stderr
    (repo,) = (tmp_path / "out").iterdir()
    (cell,) = yaml.safe_load((repo / "release.yaml").read_text())["cells"]
    assert (cell["trusted_boot"], cell["fips"]) == (True, False)


@pytest.mark.parametrize(
    "description", ["Kairos 🚀", "Ωmega — “quoted” ✓ 'single' \\ back", "Kairos 日本語 \U0001d542"]
)
def test_unicode_descriptions_bake_as_utf8(baked, description: str) -> None:
    """Written as the characters themselves (not \\ud83d escapes), read back equal."""
    repo = baked(description=description)
    text = (repo / "release.yaml").read_text(encoding="utf-8")
    assert f'description: "{description.replace(chr(92), chr(92) * 2)}"' in text
    assert_literal(repo, description)


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
    # As the README writes paths: `.github/...` (api.github.com is no CI file)
    assert all(f"`{k}" in readme for k in kept), "the README documents the CI files it has"
    assert not any(f"`{g}" in readme for g in gone), "the README documents CI files it lacks"


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


@pytest.mark.parametrize(
    ("answers", "line", "suggested"),
    [
        ({"ci": "gitub"}, "answer 'ci': \"gitub\" is not one of github, gitlab, none", "github"),
        (
            {"base_image": "ubuntu:24.4"},
            "answer 'base_image': \"ubuntu:24.4\" is not one of",
            "ubuntu:24.04",
        ),
        ({"model": "rpi5"}, "answer 'model': \"rpi5\" is not one of generic, rpi3, rpi4,", "rpi4"),
        ({"provider": "k8s"}, "answer 'provider': \"k8s\" is not one of none, k3s, k0s", "k3s"),
        ({"ci": "jenkins"}, "answer 'ci': \"jenkins\" is not one of github, gitlab, none", None),
        ({"fips": None}, "answer 'fips': expected yes or no, got null", None),
        ({"description": 7}, "answer 'description': must be text", None),
    ],
)
def test_replayed_answers_are_checked_by_the_hook_rules(
    answers: dict, line: str, suggested: str | None
) -> None:
    """A replay skips prompting (and cookiecutter's own check of choices): the check
    names the answer, with a suggestion for a near miss."""
    from local_extensions import refusal

    refused = refusal({**default_answers(), **answers})
    assert refused is not None and refused.startswith(line), refused
    if suggested:
        assert refused.endswith(f"; did you mean {suggested}?"), refused
    else:
        assert "did you mean" not in refused


@pytest.mark.parametrize(
    ("answers", "line"),
    [
        (
            {"ci": "gitub"},
            "answer 'ci': \"gitub\" is not one of github, gitlab, none; did you mean",
        ),
        ({"project": "a/b"}, "answer 'project': \"a/b\" is not a lowercase slug"),
        ({"registry": f"me:{CANARY}@ghcr.io/x"}, "answer 'registry': carries credentials"),
    ],
)
def test_a_replayed_refusal_is_one_line_and_makes_nothing(
    tmp_path: Path, answers: dict, line: str
) -> None:
    """--replay-file skips prompting; the project directory's name is checked instead."""
    replay = tmp_path / "answers.json"
    replay.write_text(json.dumps({"cookiecutter": {**default_answers(), **answers}}))
    out, tpl = str(tmp_path / "out"), str(TEMPLATE)
    proc = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--replay-file", str(replay), "-o", out, tpl],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"ERROR: {line}") and CANARY not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "text",
    [
        "Kairos 🚀",
        'q"uote \\ back',
        "tab\there",
        "nul\0",
        "del\x7f",
        "nel\x85",
        "ls\u2028ps\u2029",
        "bom\ufeff",
        "lone \ud83d",
        "\U000e0001tag",
        "",
        "  spaced  ",
        "'single'",
        "#hash: colon",
    ],
)
def test_yamlstr_reads_back_as_written(text: str) -> None:
    """Every string, printable or not, is a YAML scalar that reads back equal."""
    from local_extensions import yamlstr

    scalar = yamlstr(text)
    assert yaml.safe_load(f"k: {scalar}")["k"] == text
    assert all(c.isprintable() for c in scalar), "what YAML may not hold raw is escaped"

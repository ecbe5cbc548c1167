"""The template's own GitHub workflows: lint, audit, schema, and the upstream job's plan.

They cannot run here (no GitHub, no upstream images); what can be checked
offline is checked: actionlint, zizmor's offline audits, the workflow schema,
and that the weekly upstream job bakes and plans exactly the three cells it
promises, against the real upstream images.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import run

TEMPLATE = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((TEMPLATE / ".github" / "workflows").glob("*.yml"))


def test_the_template_has_its_test_and_upstream_workflows() -> None:
    assert [w.name for w in WORKFLOWS] == ["package.yml", "tests.yml", "upstream.yml"]
    tests = (TEMPLATE / ".github/workflows/tests.yml").read_text()
    assert "pull_request:" in tests and "bash .ci/run" in tests
    upstream = (TEMPLATE / ".github/workflows/upstream.yml").read_text()
    assert "schedule:" in upstream and "id-token: write" in upstream


def test_package_workflow_publishes_by_trusted_publishing_on_its_version_tag() -> None:
    jobs = yaml.safe_load((TEMPLATE / ".github/workflows/package.yml").read_text())["jobs"]
    check = "\n".join(step.get("run", "") for step in jobs["build"]["steps"])
    assert '"$TAG" != "v$version"' in check  # tag and package version are one number
    # The wheel uploaded is the wheel baked locks name: built and checked by .ci/lock.py.
    runs = [step.get("run", "").strip() for step in jobs["build"]["steps"]]
    build = runs.index(next(r for r in runs if "python .ci/lock.py build dist" in r))
    assert runs[build + 1] == "python .ci/lock.py check dist"
    # The build frontend the tests and `nox -s lock` use (requirements.txt), no other.
    pinned = re.search(r"^build==\S+", (TEMPLATE / "requirements.txt").read_text(), re.M)[0]
    assert any(f"pip install {pinned}" in r for r in runs)
    assert jobs["build"]["steps"][build + 2]["uses"].startswith("actions/upload-artifact@")
    publish = jobs["publish"]
    assert publish["permissions"] == {"id-token": "write", "attestations": "write"}
    assert publish["environment"]["name"] == "pypi"
    uses = [step["uses"].split("@")[0] for step in publish["steps"]]
    assert uses[-2:] == ["actions/attest-build-provenance", "pypa/gh-action-pypi-publish"]
    assert "with" not in publish["steps"][-1]  # no password: OIDC only


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint_zizmor_and_schema(workflow: Path) -> None:
    run(TEMPLATE, "actionlint", str(workflow))
    run(TEMPLATE, "zizmor", "--offline", "--persona", "auditor", str(workflow))
    run(TEMPLATE, "check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(workflow))
    run(TEMPLATE, "yamllint", "-d", "relaxed", str(workflow))


def test_upstream_job_plans_core_k3s_and_trusted_boot_from_upstream_images(tmp_path) -> None:
    planned = run(
        TEMPLATE,
        sys.executable,
        "-m",
        "tests.support.upstream",
        "--registry",
        "ghcr.io/kdt-owner",
        "--identity-regexp",
        r"^https://github\.com/kdt-owner/t/\.github/workflows/upstream\.yml@refs/heads/main$",
        "--out",
        str(tmp_path),
        "--dry",
    ).stdout
    builds = [line for line in planned.splitlines() if "would run: docker build" in line]
    assert [b.split("]")[0].lstrip("[") for b in builds] == [
        "amd64-generic",
        "amd64-generic-k3s-v1.35.1-k3s1",
        "amd64-generic-uki",
    ]
    for line in builds:
        assert "BASE_IMAGE=ubuntu:24.04 " in line
        assert "KAIROS_INIT_IMAGE=quay.io/kairos/kairos-init:v4." in line
        assert "kdt-standin" not in line
    assert "TRUSTED_BOOT=true" in builds[2]
    assert "quay.io/kairos/auroraboot:v0.26.2 --debug build-uki" in planned
    assert "would push" in planned and "ghcr.io/kdt-owner/" in planned


# -- The generated CI: hashed installs, environments, least privilege ----------------------------

GITHUB_FILES = (".github/workflows/ci.yml", ".github/workflows/release.yml")
GITHUB_FILES += (".github/workflows/template-update.yml",)
GITLAB_FILES = (".gitlab-ci.yml", ".gitlab/cell.yml", ".gitlab/release.yml")
HASHED = ["--require-hashes", "--no-deps", "--only-binary", ":all:"]
PROTECTED = '$CI_COMMIT_REF_PROTECTED == "true"'
RELEASE_ENVIRONMENT = {"name": "release", "deployment_tier": "production"}


@pytest.fixture(scope="module")
def bakes(tmp_path_factory) -> dict[str, Path]:
    """One bake per CI choice, every arch (so the workflows see every kind of cell)."""
    from tests.support.bake import bake

    out = tmp_path_factory.mktemp("ci-bakes")
    return {
        ci: bake(out / ci, ci=ci, architectures="amd64,arm64,riscv64")
        for ci in ("github", "gitlab", "none")
    }


def pip_installs(repo: Path, files: tuple[str, ...]) -> list[list[str]]:
    """Every `pip install` command line in these files, split as the shell splits it."""
    lines = [line for f in files for line in (repo / f).read_text().splitlines()]
    return [shlex.split(line.strip().lstrip("- ")) for line in lines if "pip install" in line]


@pytest.mark.parametrize(
    ("ci", "files", "locks"),
    [
        # ci.yml: matrix, cell; release.yml: matrix, release, summary; template-update: cruft.
        ("github", GITHUB_FILES, {"requirements.lock": 5, "cruft.lock": 1}),
        # matrix, .cell-base, summary; the template-update job and the steps it prints.
        ("gitlab", GITLAB_FILES, {"requirements.lock": 3, "cruft.lock": 2}),
    ],
)
def test_every_pip_install_of_the_generated_ci_is_hashed_from_a_lock(
    ci: str, files: tuple[str, ...], locks: dict[str, int], bakes: dict[str, Path]
) -> None:
    repo = bakes[ci]
    installs = pip_installs(repo, files)
    used: dict[str, int] = {}
    for argv in installs:
        start = argv.index("install") + 1
        options = [a for a in argv[start:] if a != "--break-system-packages"]
        assert options[:4] == HASHED and options[4] == "-r" and len(options) == 6, argv
        used[options[5]] = used.get(options[5], 0) + 1
    assert used == locks
    for lock in locks:
        assert "--hash=sha256:" in (repo / lock).read_text()


@pytest.mark.parametrize(
    ("workflow", "job", "environment", "permissions"),
    [
        ("ci.yml", "matrix", None, {"contents": "read"}),
        ("ci.yml", "cell", None, {"contents": "read"}),
        ("release.yml", "matrix", None, {"contents": "read"}),
        (
            "release.yml",
            "release",
            "release",
            {"contents": "read", "packages": "write", "id-token": "write"},
        ),
        ("release.yml", "summary", None, {"contents": "read"}),
        (
            "template-update.yml",
            "update",
            "template-update",
            {"contents": "write", "pull-requests": "write"},
        ),
    ],
)
def test_github_jobs_hold_least_privilege_and_secrets_only_in_an_environment(
    workflow: str,
    job: str,
    environment: str | None,
    permissions: dict[str, str],
    bakes: dict[str, Path],
) -> None:
    doc = yaml.safe_load((bakes["github"] / ".github/workflows" / workflow).read_text())
    assert doc["permissions"] == {}
    assert set(doc["jobs"]) >= {job}
    spec = doc["jobs"][job]
    assert spec.get("environment") == environment
    assert spec["permissions"] == permissions
    secrets = set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(spec))) - {"GITHUB_TOKEN"}
    assert not secrets or environment, f"{workflow} {job} reads {secrets} outside an environment"


@pytest.mark.parametrize(
    ("path", "job", "field", "expected"),
    [
        (".gitlab/release.yml", ".cell", "environment", RELEASE_ENVIRONMENT),
        (".gitlab/release.yml", ".cell", "rules", [{"if": PROTECTED}]),
        (".gitlab/release.yml", "summary", "rules", [{"if": PROTECTED, "when": "always"}]),
        (".gitlab/cell.yml", ".cell", "environment", None),
        (".gitlab/cell.yml", ".cell-base", "id_tokens", None),
    ],
)
def test_gitlab_release_jobs_run_on_protected_refs_in_the_release_environment(
    path: str, job: str, field: str, expected: object, bakes: dict[str, Path]
) -> None:
    doc = yaml.safe_load((bakes["gitlab"] / path).read_text())
    assert doc[job].get(field) == expected


@pytest.mark.parametrize(("trigger", "when"), [("release", None), ("cells", "never")])
def test_gitlab_releases_only_protected_tags_and_schedules(
    trigger: str, when: str | None, bakes: dict[str, Path]
) -> None:
    rule = yaml.safe_load((bakes["gitlab"] / ".gitlab-ci.yml").read_text())[trigger]["rules"][0]
    assert rule["if"].endswith(f"&& {PROTECTED}") and rule.get("when") == when


def test_no_gitlab_job_outside_the_release_environment_names_a_secret(bakes) -> None:
    """KAIROS_KEYS and the OIDC token appear only in .gitlab/release.yml's .cell."""
    for path in GITLAB_FILES:
        doc = yaml.safe_load((bakes["gitlab"] / path).read_text())
        for name, job in doc.items():
            if (path, name) == (".gitlab/release.yml", ".cell") or not isinstance(job, dict):
                continue
            text = yaml.safe_dump(job)
            assert "id_tokens" not in job and "$KAIROS_KEYS" not in text, (path, name)


@pytest.mark.parametrize("workflow", GITHUB_FILES, ids=lambda p: Path(p).name)
def test_generated_workflow_passes_zizmor_auditor_actionlint_and_schema(
    workflow: str, bakes: dict[str, Path]
) -> None:
    repo = bakes["github"]
    run(repo, "zizmor", "--offline", "--persona", "auditor", workflow)
    run(repo, "actionlint", workflow)
    run(repo, "check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow)
    run(repo, "yamllint", "-d", "relaxed", workflow)


@pytest.mark.parametrize("path", GITLAB_FILES)
def test_generated_gitlab_files_pass_schema_and_yamllint(path: str, bakes: dict[str, Path]) -> None:
    run(bakes["gitlab"], "check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", path)
    run(bakes["gitlab"], "yamllint", "-d", "relaxed", path)


@pytest.mark.parametrize(
    ("ci", "text"),
    [
        ("github", "gh secret set KAIROS_KEYS --env release"),
        ("github", "*Required reviewers*"),
        ("github", "*Deployment branches and tags*"),
        ("gitlab", "*Protected* and *Masked*"),
        ("gitlab", "*Environment scope* `release`"),
        ("gitlab", '`$CI_COMMIT_REF_PROTECTED == "true"`'),
        ("none", "uv pip compile --universal --generate-hashes"),
    ],
)
def test_readme_says_who_may_release_and_how_the_lock_is_made(
    ci: str, text: str, bakes: dict[str, Path]
) -> None:
    assert text in (bakes[ci] / "README.md").read_text()

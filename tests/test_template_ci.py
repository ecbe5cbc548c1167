"""The template's own GitHub workflows: lint, audit, schema, and the upstream job's plan.

They cannot run here (no GitHub, no upstream images); what can be checked
offline is checked: actionlint, zizmor's offline audits, the workflow schema,
and that the weekly upstream job bakes and plans exactly the three cells it
promises, against the real upstream images.
"""

from __future__ import annotations

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
    publish = jobs["publish"]
    assert publish["permissions"] == {"id-token": "write", "attestations": "write"}
    assert publish["environment"]["name"] == "pypi"
    uses = [step["uses"].split("@")[0] for step in publish["steps"]]
    assert uses[-2:] == ["actions/attest-build-provenance", "pypa/gh-action-pypi-publish"]
    assert "with" not in publish["steps"][-1]  # no password: OIDC only


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint_zizmor_and_schema(workflow: Path) -> None:
    run(TEMPLATE, "actionlint", str(workflow))
    run(TEMPLATE, "zizmor", "--offline", str(workflow))
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

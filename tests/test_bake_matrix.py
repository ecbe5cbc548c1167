"""Every cell of kairos-init's distro matrix bakes into a repo that plans its build."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import run
from tests.matrix import BASES, CELLS, HADRON, SAMPLE, MatrixCell

TEMPLATE = Path(__file__).resolve().parent.parent
LEFTOVER = re.compile(r"\{\{\s*cookiecutter|\{%|cookiecutter\.project")
# ci.yml tests pull requests with a read-only token; release.yml publishes;
# template-update.yml proposes template updates.
WORKFLOWS = ("ci.yml", "release.yml", "template-update.yml")
DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())
KAIROS_INIT = f"quay.io/kairos/kairos-init:{DEFAULTS['kairos_init_version']}"
# Kairos release images of kairos-init have no riscv64; the archived v0.17.3 has.
KAIROS_INIT_RISCV64 = "quay.io/kairos/kairos-init:v0.17.3"


def build_argv(output: str) -> list[str]:
    """The docker build argv from `invoke --dry build` output."""
    for line in output.splitlines():
        if "would run: " in line and " build " in line:
            return shlex.split(line.split("would run: ", 1)[1])
    raise AssertionError(f"no planned build in:\n{output}")


def build_args(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "--build-arg"]
    return dict(p.split("=", 1) for p in pairs)


def test_base_image_choices_are_the_matrix_bases() -> None:
    choices = json.loads((TEMPLATE / "cookiecutter.json").read_text())["base_image"]
    matrix_bases = {c.base for c in CELLS} | set(BASES) | set(HADRON)
    assert set(choices) - {"custom"} == matrix_bases
    assert choices[-1] == "custom"


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.id)
def test_cell_bakes_and_plans(cell: MatrixCell, baked) -> None:
    repo = baked(**cell.answers())
    for path in repo.rglob("*"):
        if path.is_file():
            assert not LEFTOVER.search(path.read_text(errors="replace")), path

    listed = run(repo, "invoke", "--list").stdout
    for task in ("build", "iso", "matrix", "publish"):
        assert re.search(rf"^\s+{task}\s+\S", listed, re.M), listed

    (planned,) = json.loads(run(repo, "invoke", "matrix", "--format", "json").stdout)
    assert planned["arch"] == cell.arch
    assert planned["model"] == cell.model
    assert planned["provider"] == cell.provider
    assert planned["provider_version"] == cell.provider_version
    assert planned["trusted_boot"] is cell.trusted_boot
    assert planned["fips"] is cell.fips

    argv = build_argv(run(repo, "invoke", "--dry", "build").stdout)
    assert argv[argv.index("--platform") + 1] == f"linux/{cell.arch}"
    assert build_args(argv) == {
        "BASE_IMAGE": cell.base,
        "KAIROS_INIT_IMAGE": KAIROS_INIT_RISCV64 if cell.arch == "riscv64" else KAIROS_INIT,
        "MODEL": cell.model,
        "TRUSTED_BOOT": "true" if cell.trusted_boot else "false",
        "KUBERNETES_DISTRO": "" if cell.provider == "none" else cell.provider,
        "KUBERNETES_VERSION": cell.provider_version,
        "VERSION": "v0.1.0",
        "FIPS": "fips" if cell.fips else "no-fips",
    }

    workflows = repo / ".github" / "workflows"
    for name in WORKFLOWS:
        assert (workflows / name).exists(), name
        run(repo, "actionlint", str(workflows / name))


def test_default_kairos_init_is_a_kairos_v4_release() -> None:
    assert re.fullmatch(r"v4\.\d+\.\d+", DEFAULTS["kairos_init_version"])


@pytest.mark.parametrize("base", HADRON)
def test_hadron_trusted_boot_bakes_from_hadron_trusted(base: str, baked) -> None:
    """Upstream builds Hadron's trusted-boot cells from hadron-trusted, not hadron."""
    repo = baked(base_image=base, trusted_boot="yes")
    argv = build_argv(run(repo, "invoke", "--dry", "build").stdout)
    trusted = base.replace("/hadron:", "/hadron-trusted:")
    assert build_args(argv)["BASE_IMAGE"] == trusted
    assert f"`{trusted}`" in (repo / "README.md").read_text()


@pytest.mark.parametrize("cell", SAMPLE, ids=lambda c: c.id)
def test_sample_repo_passes_its_own_tests_and_lint(cell: MatrixCell, baked) -> None:
    repo = baked(**cell.answers())
    tests = run(repo, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert re.search(r"\d+ passed", tests.stdout), tests.stdout
    run(repo, "ruff", "check", "--no-cache", ".")
    run(repo, "ruff", "format", "--check", "--no-cache", ".")


def test_github_workflow_passes_schema_and_audit(baked) -> None:
    repo = baked(architectures="amd64,arm64,riscv64", ci="github")
    for name in WORKFLOWS:
        workflow = f".github/workflows/{name}"
        run(repo, "check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow)
        run(repo, "zizmor", "--offline", workflow)
        run(repo, "yamllint", "-d", "relaxed", workflow)


def test_gitlab_pipeline_and_its_child_pass_schema_and_yamllint(baked) -> None:
    repo = baked(
        ci="gitlab",
        architectures="amd64,arm64",
        provider="k3s",
        provider_versions="v1.35.1+k3s1,v1.34.3+k3s1",
    )
    child = run(repo, "invoke", "matrix", "--format", "gitlab").stdout
    (repo / "child.yml").write_text(child)
    assert child.count("v1.3") == 4  # 2 arches x 2 versions, one CELL each
    for path in (".gitlab-ci.yml", ".gitlab/cell.yml", ".gitlab/release.yml", "child.yml"):
        run(repo, "check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", path)
        run(repo, "yamllint", "-d", "relaxed", path)


@pytest.mark.parametrize("ci", ["github", "gitlab", "none"])
def test_readme_verification_block_matches_release_yaml(ci: str, baked) -> None:
    """The README's cosign variables are release.yaml's signing identity and issuer."""
    import yaml

    from tests.support.readme import verification

    repo = baked(ci=ci)
    block = verification((repo / "README.md").read_text())
    signing = yaml.safe_load((repo / "release.yaml").read_text())["signing"]
    assert block.variables["ISSUER"] == signing["issuer"]
    if ci == "none":
        assert "IDENTITY" in block.variables  # a placeholder: release.yaml's is still empty
    else:
        assert block.variables["IDENTITY_REGEXP"] == signing["identity_regexp"]
    release = yaml.safe_load((repo / "release.yaml").read_text())
    image = block.variables["IMAGE"]
    assert image.startswith(f"{release['registry']}/{release['namespace']}/")
    assert block.v3[0].startswith("invoke trusted-root")
    commands = [line.split()[1] for line in block.v3[1:]]
    assert commands == ["verify", "verify-attestation", "verify-blob"]
    assert [line.split()[1:3] for line in block.v2] == [
        ["verify", "--new-bundle-format"],
        ["verify-attestation", "--new-bundle-format"],
    ]

"""invoke release: fingerprints, what a rerun reuses, per-cell failures, summaries, records.

No Docker, network or QEMU: the stage functions run_release calls are replaced
by recorders, the registry lives in memory, and git runs on throwaway
repositories. What these tests pin is what this repository owns: which inputs
make a fingerprint (what the image and ISO are made from) and a release key
(that plus what the boot test checks), when a cell counts as up to date, the
order of the stages, that one cell's failure stops that cell only, and what
the summaries say.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import syft_bom
import yaml
from docker.errors import APIError, DockerException
from package_helpers import ROOT, run_invoke

from kairos_distro import (
    artifacts,
    boot,
    build,
    freshness,
    ledger,
    naming,
    publish,
    release,
    scan,
    sign,
    summary,
    vulndb,
    vulns,
)
from kairos_distro.build import Built
from kairos_distro.config import SEMVER, Cell, Release
from kairos_distro.naming import Identity, NamingError
from kairos_distro.ref import ImageRef
from kairos_distro.registry import OCI_MANIFEST, Registry, RegistryError
from kairos_distro.registry import manifest_bytes as canonical
from kairos_distro.runner import Runner, Skip, StepError
from kairos_distro.stages import Plan, Stages
from kairos_distro.tagformat import TagFormats

K3S = {"provider": "k3s", "provider_version": "v1.35.1+k3s1"}
DIGEST = "sha256:" + "d" * 64
DIGESTS = {
    "base": "sha256:" + "1" * 64,
    "kairos_init": "sha256:" + "2" * 64,
    "auroraboot": "sha256:" + "3" * 64,
}
TREE = {"Dockerfile": "0o644:" + "4" * 64, "overlay/etc/motd": "0o644:" + "5" * 64}
REPOSITORY = "ghcr.io/my-org/ubuntu"
SETTINGS = boot.Settings(accel="tcg", memory=1024)
USER_DATA = b"#cloud-config\n"
SIGSTORE: Any = object()  # stands in for sign.Sigstore: only its truth is read here
STEPS = release.STEPS
GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
GIT_ID = ["-c", "user.name=Release Test", "-c", "user.email=release@example.test"]

TAGS = TagFormats()  # the default: Kairos's factory convention


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def stamp_of(
    rel: Release,
    cell: Cell | None = None,
    digests: dict[str, str] | None = None,
    tree: dict[str, str] | None = None,
) -> str:
    return build.fingerprint(
        rel, cell or rel.cells[0], DIGESTS if digests is None else digests, tree or TREE
    )


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity and neither global nor system config."""
    done = subprocess.run(
        ["git", *GIT_ID, "-C", str(repo), *args],
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def git_repo(path: Path, files: dict[str, str]) -> Path:
    """A repository at `path` with `files` in its first commit."""
    path.mkdir(parents=True)
    git(path, "init", "-q")
    commit(path, files, "first")
    return path


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


# -- fingerprint ----------------------------------------------------------------------


def test_fingerprint_is_32_hex_and_stable_for_equal_inputs(make_release) -> None:
    one, two = make_release({"arch": "amd64"}), make_release({"arch": "amd64"})
    stamp = stamp_of(one)
    assert re.fullmatch(r"[0-9a-f]{32}", stamp)
    assert stamp_of(two, digests=dict(DIGESTS), tree=dict(TREE)) == stamp
    # Equal content in another order is the same input.
    assert stamp_of(one, digests=dict(reversed(DIGESTS.items()))) == stamp
    assert stamp_of(one, tree=dict(reversed(TREE.items()))) == stamp


@pytest.mark.parametrize("name", ["base", "kairos_init", "auroraboot"])
def test_fingerprint_follows_each_input_image_digest(make_release, name) -> None:
    rel = make_release({"arch": "amd64"})
    assert stamp_of(rel, digests={**DIGESTS, name: "sha256:" + "9" * 64}) != stamp_of(rel)


def test_riscv64_kairos_init_pin_moves_riscv64_cells_only(make_release) -> None:
    rel = make_release(
        {"arch": "amd64"},
        {"arch": "riscv64"},
        kairos_init_riscv64="quay.io/kairos/kairos-init:v0.17.3",
    )
    amd64, riscv64 = rel.cells
    before = {**DIGESTS, "kairos_init_riscv64": "sha256:" + "1" * 64}
    after = {**DIGESTS, "kairos_init_riscv64": "sha256:" + "2" * 64}
    assert stamp_of(rel, amd64, before) == stamp_of(rel, amd64, after) == stamp_of(rel, amd64)
    assert stamp_of(rel, riscv64, before) != stamp_of(rel, riscv64, after)
    # riscv64 cells do not follow the amd64/arm64 pin when they have their own.
    moved = {**before, "kairos_init": "sha256:" + "9" * 64}
    assert stamp_of(rel, riscv64, moved) == stamp_of(rel, riscv64, before)


@pytest.mark.parametrize(
    "tree",
    [
        {**TREE, "Dockerfile": "0o644:" + "6" * 64},  # Dockerfile content
        {**TREE, "overlay/etc/motd": "0o755:" + "5" * 64},  # an overlay file's mode
        {**TREE, "overlay/etc/motd": "0o644:" + "7" * 64},  # an overlay file's content
        {**TREE, "overlay/etc/issue": "0o644:" + "8" * 64},  # a new overlay file
        {"Dockerfile": TREE["Dockerfile"]},  # an overlay file removed
    ],
    ids=["dockerfile", "mode", "content", "added", "removed"],
)
def test_fingerprint_follows_the_build_context(make_release, tree) -> None:
    rel = make_release({"arch": "amd64"})
    assert stamp_of(rel, tree=tree) != stamp_of(rel)


@pytest.mark.parametrize(
    "top",
    [
        {"version": "v0.2.0"},
        {"description": "Another line about this distro"},
        {"source": "https://github.com/my-org/another-repo"},
        {"base_image": "ubuntu:22.04"},
        {"kairos_init": "quay.io/kairos/kairos-init:v0.18.0"},
    ],
    ids=["version", "description", "source", "base-image", "kairos-init"],
)
def test_fingerprint_follows_release_fields(make_release, top) -> None:
    before = make_release({"arch": "amd64"})
    after = make_release({"arch": "amd64"}, **top)
    assert stamp_of(after) != stamp_of(before)


@pytest.mark.parametrize(
    "top",
    [
        {"registry": "quay.io"},
        {"namespace": "another-org"},
        {"repository": "distro"},
        {"channels": ["edge", "stable"]},
        {"auroraboot": "quay.io/kairos/auroraboot:v0.27.0"},  # its digest is the input
    ],
    ids=["registry", "namespace", "repository", "channels", "auroraboot-tag"],
)
def test_fingerprint_ignores_where_a_cell_is_published(make_release, top) -> None:
    # Moving to another registry must not rebuild: `build.reuse` retags for that.
    before = make_release({"arch": "amd64"})
    after = make_release({"arch": "amd64"}, **top)
    assert stamp_of(after) == stamp_of(before)


@pytest.mark.parametrize(
    "before, after",
    [
        ({"arch": "arm64"}, {"arch": "arm64", "model": "rpi4"}),
        (
            {"arch": "amd64", **K3S},
            {"arch": "amd64", "provider": "k3s", "provider_version": "v1.34.2+k3s1"},
        ),
        ({"arch": "amd64"}, {"arch": "amd64", "fips": True}),
        ({"arch": "amd64"}, {"arch": "amd64", "trusted_boot": True}),
    ],
    ids=["model", "provider-version", "fips", "trusted-boot"],
)
def test_fingerprint_follows_the_cells_build_args(make_release, before, after) -> None:
    rel = make_release(before, after, base_image="debian:13")  # FIPS: not on Ubuntu
    assert stamp_of(rel, rel.cells[0]) != stamp_of(rel, rel.cells[1])


def test_fingerprint_follows_build_args_the_cell_id_cannot_tell_apart(make_release) -> None:
    # `+` becomes `-` in ids: these two cells share an id but not a build arg.
    rel = make_release({"arch": "amd64", **K3S})
    plus = rel.cells[0]
    minus = Cell(arch="amd64", provider="k3s", provider_version="v1.35.1-k3s1")
    assert plus.id == minus.id
    assert stamp_of(rel, plus) != stamp_of(rel, minus)


class RealTree(Stages):
    """Input digests known; the build context read from disk, as a release reads it."""

    def input_digests(self, runner: Runner, rel: Release) -> dict[str, str]:
        return dict(DIGESTS)


def test_stamp_ignores_commits_that_change_nothing_a_cell_consumes(make_release, tmp_path) -> None:
    repo = git_repo(
        tmp_path / "repo",
        {"Dockerfile": "FROM scratch\n", "overlay/etc/motd": "hello\n", "README.md": "one\n"},
    )
    rel = make_release({"arch": "amd64"})

    def stamp() -> str:
        runner = Runner(out=io.StringIO())
        plan = Plan(runner, rel, tmp_path / "a", "", SETTINGS, b"", context=repo, stages=RealTree())
        return plan.stamp(rel.cells[0])

    first, revision = stamp(), build.git_revision(repo)
    commit(repo, {"README.md": "two\n"})
    assert build.git_revision(repo) != revision  # a new commit ...
    assert stamp() == first  # ... that changes nothing a cell consumes
    commit(repo, {"overlay/etc/motd": "changed\n"})
    assert stamp() != first


# -- release key: the fingerprint plus what the boot test checks -----------------------

CHECK = {"run": "cat /etc/os-release", "expect": "ID=ubuntu"}


def plan_of(
    rel: Release,
    settings: boot.Settings = SETTINGS,
    user_data: bytes = USER_DATA,
    digests: dict[str, str] | None = None,
) -> Plan:
    """A plan whose input digests and tree are known, so key() touches no engine."""
    stages = Recorder(digests=dict(DIGESTS if digests is None else digests))
    runner = Runner(out=io.StringIO())
    return Plan(runner, rel, Path("artifacts"), "", settings, user_data, stages=stages)


def media_stamp_of(rel: Release, cell: Cell | None = None) -> str:
    """The artifacts' fingerprint: the image's, plus the kinds of boot media (and keys)."""
    return plan_of(rel).media_stamp(cell or rel.cells[0])


def key_of(
    rel: Release,
    cell: Cell | None = None,
    settings: boot.Settings = SETTINGS,
    user_data: bytes = USER_DATA,
) -> str:
    return plan_of(rel, settings, user_data).key(cell or rel.cells[0])


def test_key_is_32_hex_stable_and_not_the_fingerprint(make_release) -> None:
    rel = make_release({"arch": "amd64"})
    key = key_of(rel)
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert key != stamp_of(rel)
    assert key_of(make_release({"arch": "amd64"})) == key


def test_key_is_a_digest_of_fingerprint_checks_marker_and_cloud_config(make_release) -> None:
    rel = make_release({"arch": "amd64", **K3S, "boot_checks": [CHECK]}, boot_checks=[CHECK])
    cell = rel.cells[0]
    checks = [
        {"name": c.name, "command": c.command, "expect": c.expect}
        for c in boot.checks_for(rel, cell)
    ]
    assert len(checks) == 5  # ssh, boot state, k3s version, the release's, the cell's
    inputs = [media_stamp_of(rel, cell), True, checks, SETTINGS.marker, USER_DATA.decode()]
    blob = json.dumps(inputs, sort_keys=True).encode()
    assert key_of(rel, cell) == hashlib.sha256(blob).hexdigest()[:32]


@pytest.mark.parametrize(
    "change",
    ["release-check", "cell-check", "check-expect", "marker", "cloud-config"],
)
def test_key_follows_what_the_boot_test_checks_but_the_fingerprint_does_not(
    make_release, change
) -> None:
    cell: dict[str, Any] = {"arch": "amd64"}
    before, settings, user_data = make_release(cell), SETTINGS, USER_DATA
    after = before
    if change == "release-check":
        after = make_release(cell, boot_checks=[CHECK])
    elif change == "cell-check":
        after = make_release({**cell, "boot_checks": [CHECK]})
    elif change == "check-expect":
        before = make_release(cell, boot_checks=[CHECK])
        after = make_release(cell, boot_checks=[{**CHECK, "expect": "ID=debian"}])
    elif change == "marker":
        settings = boot.Settings(accel="tcg", memory=1024, marker="localhost login:")
    else:
        user_data = USER_DATA + b"users: [{name: kairos, passwd: kairos}]\n"
    # The image and ISO are made from the same inputs: reuse them ...
    assert stamp_of(after) == stamp_of(before)
    # ... but boot them again and publish under a new key.
    assert key_of(after, settings=settings, user_data=user_data) != key_of(before)


def test_key_follows_the_fingerprint(make_release) -> None:
    rel = make_release({"arch": "amd64"})
    plan = plan_of(rel)
    other = plan_of(rel, digests={**DIGESTS, "base": "sha256:" + "0" * 64})
    assert plan.stamp(rel.cells[0]) != other.stamp(rel.cells[0])
    assert plan.key(rel.cells[0]) != other.key(rel.cells[0])


def test_a_syft_bump_remakes_the_artifacts_and_releases_again(make_release) -> None:
    # syft writes the SBOM, one of the artifacts: a new syft is new artifacts.
    rel = make_release({"arch": "amd64"})
    bumped = make_release({"arch": "amd64"}, syft=f"docker.io/anchore/syft:v1.58.0@{DIGEST}")
    cell = rel.cells[0]
    assert stamp_of(bumped) == stamp_of(rel)  # the image stays: its build is reused
    assert media_stamp_of(bumped) != media_stamp_of(rel)
    assert key_of(bumped) != key_of(rel)
    moved = ledger.changed(plan_of(rel).inputs(cell), plan_of(bumped).inputs(cell))
    assert moved == "boot media kinds, UKI key, tag formats or syft"


@pytest.mark.parametrize(
    "field, value",
    [
        ("grype", f"docker.io/anchore/grype:v0.122.0@{DIGEST}"),
        ("vulndb", f"https://grype.anchore.io/v6/db.tar.zst?checksum=sha256:{'5' * 64}"),
        ("vulnerabilities", {"fail_on": "high", "max_age": 1}),
    ],
    ids=["grype", "vulndb", "policy"],
)
def test_the_scanner_its_database_and_the_policy_release_nothing_again(
    make_release, field, value
) -> None:
    # They judge a release when it is made; a published cell is not remade for them.
    rel = make_release({"arch": "amd64"})
    moved = make_release({"arch": "amd64"}, **{field: value})
    assert (media_stamp_of(moved), key_of(moved)) == (media_stamp_of(rel), key_of(rel))


def test_key_ignores_machine_settings_other_than_the_marker(make_release) -> None:
    rel = make_release({"arch": "amd64"})
    machine = boot.Settings(
        accel="kvm", memory=8192, cpus=8, timeout=60.0, user="me", password="secret"
    )
    assert machine.marker == SETTINGS.marker
    assert key_of(rel, settings=machine) == key_of(rel)


def test_cell_boot_check_changes_that_cells_key_only(make_release) -> None:
    before = make_release({"arch": "amd64"}, {"arch": "arm64"})
    after = make_release({"arch": "amd64"}, {"arch": "arm64", "boot_checks": [CHECK]})
    assert [stamp_of(after, c) for c in after.cells] == [stamp_of(before, c) for c in before.cells]
    assert key_of(after, after.cells[0]) == key_of(before, before.cells[0])
    assert key_of(after, after.cells[1]) != key_of(before, before.cells[1])


def test_release_boot_check_changes_every_cells_key(make_release) -> None:
    cells = ({"arch": "amd64"}, {"arch": "arm64"})
    before, after = make_release(*cells), make_release(*cells, boot_checks=[CHECK])
    for old, new in zip(before.cells, after.cells, strict=True):
        assert stamp_of(after, new) == stamp_of(before, old)
        assert key_of(after, new) != key_of(before, old)


# -- tree_digest -------------------------------------------------------------------------


DOCKERIGNORE = b"*\n!overlay/\noverlay/README.md\n"


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def context_dir(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "overlay" / "etc").mkdir(parents=True)
    (ctx / "overlay" / "etc").chmod(0o755)
    files = {
        "Dockerfile": b"FROM scratch\n",
        ".dockerignore": DOCKERIGNORE,
        "overlay/etc/motd": b"hello\n",
        "overlay/README.md": b"excluded by .dockerignore\n",
        "README.md": b"the repository's own README\n",
        "release.yaml": b"name: x\n",
    }
    for name, data in files.items():
        (ctx / name).write_bytes(data)
        (ctx / name).chmod(0o644)
    return ctx


def test_tree_digest_is_the_dockerfile_dockerignore_and_overlay_entries(tmp_path) -> None:
    ctx = context_dir(tmp_path)
    dockerfile, motd = digest_of(b"FROM scratch\n"), digest_of(b"hello\n")
    assert build.tree_digest(ctx) == {
        "Dockerfile": f"0o644:{dockerfile}",
        ".dockerignore": f"0o644:{digest_of(DOCKERIGNORE)}",
        "overlay/etc": "dir:0o755",
        "overlay/etc/motd": f"0o644:{motd}",
    }


def test_the_templates_dockerignore_leaves_out_what_tree_digest_leaves_out() -> None:
    # tree_digest mirrors .dockerignore: everything but overlay/, minus its README.
    assert (ROOT / ".dockerignore").is_file()
    kept = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert kept == ["*", "!overlay/", *build.NOT_IN_CONTEXT]
    assert build.NOT_IN_CONTEXT == ("overlay/README.md",)


def test_tree_digest_of_an_empty_context(tmp_path) -> None:
    assert build.tree_digest(tmp_path) == {}


@pytest.mark.parametrize(
    "change",
    ["dockerfile", "dockerignore", "content", "mode", "added", "removed", "renamed"],
)
def test_tree_digest_changes_with_a_consumed_file(tmp_path, change) -> None:
    ctx = context_dir(tmp_path)
    before = build.tree_digest(ctx)
    motd = ctx / "overlay" / "etc" / "motd"
    if change == "dockerfile":
        (ctx / "Dockerfile").write_text("FROM scratch\nLABEL x=y\n")
    elif change == "dockerignore":
        (ctx / ".dockerignore").write_bytes(DOCKERIGNORE + b"overlay/etc/secret\n")
    elif change == "content":
        motd.write_text("hello again\n")
    elif change == "mode":
        motd.chmod(0o755)
    elif change == "added":
        (ctx / "overlay" / "etc" / "issue").write_text("Kairos\n")
    elif change == "removed":
        motd.unlink()
    else:
        motd.rename(motd.with_name("motd.d"))
    after = build.tree_digest(ctx)
    assert after != before
    if change == "mode":
        assert after["overlay/etc/motd"] == before["overlay/etc/motd"].replace("0o644", "0o755")


def test_tree_digest_ignores_what_the_image_does_not_get(tmp_path) -> None:
    ctx = context_dir(tmp_path)
    before = build.tree_digest(ctx)
    (ctx / "overlay" / "README.md").write_text("rewritten\n")
    (ctx / "overlay" / "README.md").chmod(0o600)
    (ctx / "README.md").write_text("rewritten\n")
    (ctx / "release.yaml").write_text("name: y\n")
    (ctx / "artifacts").mkdir()
    (ctx / "artifacts" / "k.iso").write_bytes(b"iso")
    assert build.tree_digest(ctx) == before


def test_tree_digest_keeps_a_nested_readme(tmp_path) -> None:
    # Only overlay/README.md itself is left out; a README deeper down lands in the image.
    ctx = context_dir(tmp_path)
    nested = ctx / "overlay" / "etc" / "README.md"
    nested.write_bytes(b"kept\n")
    nested.chmod(0o644)
    tree = build.tree_digest(ctx)
    kept = digest_of(b"kept\n")
    assert tree["overlay/etc/README.md"] == f"0o644:{kept}"
    assert "overlay/README.md" not in tree
    nested.write_bytes(b"changed\n")
    assert build.tree_digest(ctx)["overlay/etc/README.md"] != tree["overlay/etc/README.md"]


def test_tree_digest_records_symlinks_by_target(tmp_path) -> None:
    ctx = context_dir(tmp_path)
    etc = ctx / "overlay" / "etc"
    (etc / "localtime").symlink_to("/usr/share/zoneinfo/Nowhere/Nothing")  # dangling here
    (etc / "issue.net").symlink_to("motd")  # to a file in the overlay
    (etc / "current").symlink_to(tmp_path)  # to a directory: never followed
    tree = build.tree_digest(ctx)
    assert tree["overlay/etc/localtime"] == "link:/usr/share/zoneinfo/Nowhere/Nothing"
    assert tree["overlay/etc/issue.net"] == "link:motd"
    assert tree["overlay/etc/current"] == f"link:{tmp_path}"
    assert not [name for name in tree if name.startswith("overlay/etc/current/")]
    # Retargeting a link changes the digest; the file it points at keeps its own entry.
    (etc / "issue.net").unlink()
    (etc / "issue.net").symlink_to("issue")
    after = build.tree_digest(ctx)
    assert after["overlay/etc/issue.net"] == "link:issue"
    assert after["overlay/etc/motd"] == tree["overlay/etc/motd"]


def test_tree_digest_records_directories_empty_ones_too(tmp_path) -> None:
    ctx = context_dir(tmp_path)
    before = build.tree_digest(ctx)
    empty = ctx / "overlay" / "var" / "lib" / "data"
    empty.mkdir(parents=True)
    for directory in (empty, empty.parent, empty.parent.parent):
        directory.chmod(0o755)
    added = build.tree_digest(ctx)
    assert added == {
        **before,
        "overlay/var": "dir:0o755",
        "overlay/var/lib": "dir:0o755",
        "overlay/var/lib/data": "dir:0o755",
    }
    empty.chmod(0o700)
    assert build.tree_digest(ctx)["overlay/var/lib/data"] == "dir:0o700"


def test_tree_digest_modes_keep_the_special_bits(tmp_path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "overlay" / "etc" / "motd").chmod(0o4755)
    (ctx / "overlay" / "etc").chmod(0o1777)
    tree = build.tree_digest(ctx)
    motd = digest_of(b"hello\n")
    assert tree["overlay/etc/motd"] == f"0o4755:{motd}"
    assert tree["overlay/etc"] == "dir:0o1777"


# -- git_version -------------------------------------------------------------------------


def test_git_version_is_the_tag(tmp_path) -> None:
    repo = git_repo(tmp_path / "repo", {"release.yaml": "version: git\n"})
    git(repo, "tag", "v1.2.3")
    assert build.git_version(repo) == "v1.2.3"


def test_git_version_adds_the_leading_v(tmp_path) -> None:
    repo = git_repo(tmp_path / "repo", {"release.yaml": "version: git\n"})
    git(repo, "tag", "1.2.3")
    assert build.git_version(repo) == "v1.2.3"


def test_git_version_after_the_tag_counts_commits(tmp_path) -> None:
    repo = git_repo(tmp_path / "repo", {"release.yaml": "version: git\n"})
    git(repo, "tag", "v1.2.3")
    head = commit(repo, {"README.md": "more\n"})
    version = build.git_version(repo)
    found = re.fullmatch(r"v1\.2\.3-1-g([0-9a-f]{7,40})", version)
    assert found, version
    assert head.startswith(found.group(1))
    assert SEMVER.match(version)  # a prerelease of v1.2.3, as kairos-init needs


def test_git_version_without_a_tag(tmp_path) -> None:
    repo = git_repo(tmp_path / "repo", {"release.yaml": "version: git\n"})
    version = build.git_version(repo)
    found = re.fullmatch(r"v0\.0\.0-([0-9a-f]{7,40})", version)
    assert found, version
    assert git(repo, "rev-parse", "HEAD").startswith(found.group(1))
    assert SEMVER.match(version)


@pytest.mark.parametrize("tag", ["v1.2.3", ""], ids=["tagged", "untagged"])
def test_git_version_of_a_dirty_tree(tmp_path, tag) -> None:
    repo = git_repo(tmp_path / "repo", {"release.yaml": "version: git\n"})
    if tag:
        git(repo, "tag", tag)
    clean = build.git_version(repo)
    (repo / "release.yaml").write_text("version: git\n# edited\n")
    assert build.git_version(repo) == f"{clean}-dirty"
    assert SEMVER.match(f"{clean}-dirty")


@pytest.mark.parametrize("tag", ["2024", "cafe", "deadbeef", "1234567"])
def test_git_version_of_a_hex_looking_tag_is_that_tag(tmp_path, tag) -> None:
    # A tag made of hex digits is still a tag, not a commit sha without one.
    repo = git_repo(tmp_path / "repo", {"release.yaml": "version: git\n"})
    git(repo, "tag", tag)
    assert build.git_version(repo) == f"v{tag}"
    head = commit(repo, {"README.md": "more\n"})
    found = re.fullmatch(rf"v{tag}-1-g([0-9a-f]{{7,40}})", build.git_version(repo))
    assert found and head.startswith(found.group(1))


def test_git_version_of_an_annotated_tag(tmp_path) -> None:
    repo = git_repo(tmp_path / "repo", {"release.yaml": "version: git\n"})
    git(repo, "tag", "-a", "v1.2.3", "-m", "release")
    assert build.git_version(repo) == "v1.2.3"


@pytest.mark.parametrize("tag", ["v1.2.3", ""], ids=["tagged", "untagged"])
def test_git_version_ignores_untracked_files(tmp_path, tag) -> None:
    repo = git_repo(tmp_path / "repo", {"release.yaml": "version: git\n"})
    if tag:
        git(repo, "tag", tag)
    clean = build.git_version(repo)
    (repo / "notes.txt").write_text("not tracked\n")
    assert build.git_version(repo) == clean
    assert not clean.endswith("-dirty")


@pytest.mark.parametrize("tag", ["v1.2.3", ""], ids=["tagged", "untagged"])
def test_git_version_of_a_staged_change_is_dirty(tmp_path, tag) -> None:
    repo = git_repo(tmp_path / "repo", {"release.yaml": "version: git\n"})
    if tag:
        git(repo, "tag", tag)
    clean = build.git_version(repo)
    (repo / "new.txt").write_text("staged\n")
    git(repo, "add", "new.txt")
    assert build.git_version(repo) == f"{clean}-dirty"


def test_git_version_untagged_is_the_short_head(tmp_path) -> None:
    repo = git_repo(tmp_path / "repo", {"release.yaml": "version: git\n"})
    short = git(repo, "rev-parse", "--short", "HEAD")
    assert build.git_version(repo) == f"v0.0.0-{short}"
    (repo / "release.yaml").write_text("version: git\n# edited\n")
    assert build.git_version(repo) == f"v0.0.0-{short}-dirty"


def test_git_version_of_a_repository_without_commits(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(StepError) as caught:
        build.git_version(empty)
    assert (caught.value.cell, caught.value.step) == ("version", "git")


def test_git_version_outside_a_checkout(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(StepError) as caught:
        build.git_version(plain)
    assert (caught.value.cell, caught.value.step) == ("version", "git")
    assert caught.value.reason == "version is git but this is not a git checkout"


def test_git_version_without_git(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no git on it
    with pytest.raises(StepError) as caught:
        build.git_version(tmp_path)
    assert caught.value.reason == "version is git but git is not installed"


# -- run_release: every stage replaced by a recorder ------------------------------------


def identity_of(cell: Cell) -> Identity:
    return Identity(
        "ubuntu",
        "24.04",
        cell.variant,
        cell.arch,
        cell.model,
        "v0.1.0",
        cell.provider or "",
        cell.provider_version or "",
        cell.trusted_boot,
        cell.fips,
    )


def built_for(cell: Cell) -> Built:
    ident = identity_of(cell)
    return Built(cell, "sha256:" + "e" * 64, f"{REPOSITORY}:{naming.image_tag(ident, TAGS)}", ident)


def write_artifacts(directory: Path, cell: Cell, stamp: str) -> artifacts.Artifacts:
    """What make_artifacts leaves in artifacts/<cell>/: media, checksums, SBOM, the stamp."""
    final = directory / cell.id
    final.mkdir(parents=True, exist_ok=True)
    for kind in cell.media:
        media = final / f"kairos-{cell.id}{naming.MEDIA_SUFFIX[kind]}"
        media.write_bytes(kind.encode())
        digest = hashlib.sha256(kind.encode()).hexdigest()
        (final / f"{media.name}.sha256").write_text(f"{digest}  {media.name}\n")
    (final / f"kairos-{cell.id}{naming.SBOM_SUFFIX}").write_text(EMPTY_SBOM)
    if stamp:
        (final / ledger.MEDIA_STAMP).write_text(stamp + "\n")
    files = tuple(sorted(p for p in final.iterdir() if not p.name.startswith(".")))
    return artifacts.Artifacts(cell, final, files)


EMPTY_SBOM = '{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}'
VULNDB_URL = "http://127.0.0.1:9/vulnerability-db_v6.1.10.tar.zst"
VULNDB_SUM = "sha256:" + "5" * 64
VULNDB_BUILT = datetime.now(UTC) - timedelta(days=1)
CLEAN = vulns.Report((), vulns.Database(VULNDB_BUILT, "v6.1.10", VULNDB_SUM))


@dataclass
class Recorder(Stages):
    """The release's stages as recorders, passed in through `Plan.stages`.

    Set `raises`, `records`, `reused`, `media` to steer them; `calls` and
    `args` hold what the release asked for, in order.
    """

    tmp: Path = Path(".")
    calls: list[tuple[str, str]] = field(default_factory=list)
    args: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    raises: dict[tuple[str, str], Exception] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)  # cell id -> record or error
    reused: set[str] = field(default_factory=set)  # cells whose local build matches
    media: dict[str, Any] = field(default_factory=dict)  # cell id -> its own make_media
    verify_error: Exception | None = None
    digests: dict[str, str] = field(default_factory=lambda: dict(DIGESTS))
    current: str = ""
    sboms: dict[str, Any] = field(default_factory=dict)  # cell id -> record's SBOM, None or error
    found: dict[str, freshness.Found] = field(default_factory=dict)  # cell id -> probe's
    fresh: set[str] = field(default_factory=set)  # cells built without the build cache
    extras: dict[str, Any] = field(default_factory=dict)  # cell id -> what publish adds
    scans: dict[str, Any] = field(default_factory=dict)  # cell id -> vulns.Report or error
    databases: int = 0  # how often the run asked for its vulnerability database
    database_error: Exception | None = None

    def hit(self, stage: str, cell: str, *args: Any) -> None:
        self.calls.append((stage, cell))
        self.args[(stage, cell)] = args
        error = self.raises.get((stage, cell))
        if error is not None:
            raise error

    def of(self, cell: Cell) -> list[str]:
        return [stage for stage, one in self.calls if one == cell.id]

    def input_digests(self, runner: Runner, rel: Release) -> dict[str, str]:
        self.hit("input_digests", "*", runner, rel)
        return dict(self.digests)

    def tree_digest(self, context: Path) -> dict[str, str]:
        self.hit("tree_digest", "*", context)
        return dict(TREE)

    def read_record(self, rel: Release, cell: Cell) -> dict[str, Any] | None:
        self.current = cell.id
        self.hit("read_record", cell.id, rel.registry, rel)
        found = self.records.get(cell.id)
        if isinstance(found, Exception):
            raise found
        return found

    def read_sbom(self, rel: Release, cell: Cell, record: dict[str, Any]) -> str | None:
        self.hit("read_sbom", cell.id, record)
        found = self.sboms.get(cell.id, EMPTY_SBOM)
        if isinstance(found, Exception):
            raise found
        return found

    def probe(
        self, runner: Runner, rel: Release, network: str, packages: dict[Cell, list[Any]]
    ) -> dict[str, freshness.Found]:
        self.hit("probe", "*", network, {c.id: list(p) for c, p in packages.items()})
        none = {c.id: freshness.Found(manager="apt", checked=len(p)) for c, p in packages.items()}
        return {one: self.found.get(one, none[one]) for one in none}

    def verify_image(self, sigstore: Any, rel: Release, image: ImageRef) -> None:
        args = (image.api_host, image.repository, image.digest)
        self.hit("verify_image", self.current, sigstore, *args)
        if self.verify_error:
            raise self.verify_error

    def local_label(self, runner: Runner, rel: Release, cell: Cell) -> str | None:
        self.hit("local_label", cell.id, runner, rel)
        return build.fingerprint(rel, cell, self.digests, TREE) if cell.id in self.reused else None

    def adopt(self, runner: Runner, rel: Release, cell: Cell) -> Built:
        self.hit("adopt", cell.id, runner, rel)
        return built_for(cell)

    def build(
        self,
        runner: Runner,
        rel: Release,
        cell: Cell,
        network: str,
        context: Path,
        stamp: str,
        fresh: bool = False,
    ) -> Built | None:
        self.hit("build", cell.id, runner, rel, network, context, stamp)
        if fresh:
            self.fresh.add(cell.id)
        return None if runner.dry else built_for(cell)

    def earlier_media(self, directory: Path, cell: Cell) -> artifacts.Artifacts | None:
        self.hit("earlier_media", cell.id, directory)
        return super().earlier_media(directory, cell)

    def make_media(
        self, runner: Runner, rel: Release, built: Any, cell: Cell, plan: Any, stamp: str
    ) -> artifacts.Artifacts | None:
        args = (runner, rel, built, plan.artifacts, plan.network, stamp, plan.keys)
        self.hit("iso", cell.id, *args)
        if cell.id in self.media:
            return self.media[cell.id](plan.artifacts, cell, stamp)
        return None if runner.dry else write_artifacts(plan.artifacts, cell, stamp)

    def vulndb(self, runner: Runner, rel: Release) -> scan.Database:
        self.databases += 1
        if self.database_error:
            raise self.database_error
        return scan.Database(self.tmp / "vulndb", vulndb.Pin(VULNDB_URL, VULNDB_SUM), False)

    def scan(self, runner: Runner, rel: Release, built: Built, db: Any, out: Path) -> vulns.Report:
        self.hit("scan", built.cell.id, runner, rel, db, out)
        found = self.scans.get(built.cell.id, CLEAN)
        if isinstance(found, Exception):
            raise found
        return found

    def boot(self, runner: Runner, rel: Release, cell: Cell, iso: Path, plan: Any) -> boot.BootPlan:
        self.hit("test-boot", cell.id, runner, rel, iso, plan.boot, plan.user_data)
        results = [boot.Result("ssh echo ping", True, 3.2), boot.Result("boot state", True, 41.6)]
        log = iso.with_suffix(".serial.log")
        return boot.BootPlan(cell, iso, log, [], 0, "tcg", [], results=results)

    def publish(
        self,
        runner: Runner,
        rel: Release,
        cell: Cell,
        built: Any,
        plan: Any,
        key: str = "",
        extra: dict[str, Any] | None = None,
    ) -> publish.Published | None:
        self.hit("publish", cell.id, runner, rel, built, plan.sigstore, plan.artifacts, key)
        self.extras[cell.id] = extra
        if built is None:
            return None
        return publish.Published(cell, REPOSITORY, DIGEST, (built.ref.rpartition(":")[2],))


@pytest.fixture
def stages(tmp_path) -> Recorder:
    return Recorder(tmp=tmp_path)


def plan_for(
    s: Recorder,
    rel: Release,
    *,
    sigstore: Any = None,
    force: bool = False,
    dry: bool = False,
    settings: boot.Settings = SETTINGS,
    user_data: bytes = USER_DATA,
    refresh: str = "",
) -> Plan:
    runner = Runner(dry=dry, out=io.StringIO())
    return Plan(
        runner,
        rel,
        s.tmp / "artifacts",
        "host",
        settings,
        user_data,
        sigstore=sigstore,
        force=force,
        refresh=refresh,
        context=s.tmp / "ctx",
        stages=s,
    )


def output(plan: Plan) -> str:
    return plan.runner.out.getvalue()  # type: ignore[attr-defined]


FRESH = [
    "read_record",
    "local_label",
    "build",
    "earlier_media",
    "iso",
    "test-boot",
    "scan",
    "publish",
]
# A cell with a record reads the SBOM it names: to probe a skip, for the changelog of a redo.
REDONE = [*FRESH[:-1], "read_sbom", "publish"]  # the scan, then the changelog reads the SBOM


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_fresh_cell_runs_every_stage_in_order(stages, make_release, signed) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    sigstore = SIGSTORE if signed else None
    plan = plan_for(stages, rel, sigstore=sigstore)
    (report,) = release.run_release(plan, [cell])
    stamp, key = stamp_of(rel), key_of(rel)
    assert plan.key(cell) == key
    assert stages.calls == [("input_digests", "*"), ("tree_digest", "*")] + [
        (stage, cell.id) for stage in FRESH
    ]
    assert report.cell == cell.id
    assert report.status == "published"
    assert report.reason == "released: never released; rebuilt: no local build"
    assert report.steps == dict.fromkeys(STEPS, "done")
    assert list(report.steps) == list(STEPS)
    assert report.signature == ("verified" if signed else "unsigned")
    assert report.image == f"{REPOSITORY}@{DIGEST}"
    assert report.boot == "passed (tcg, 2 checks, 42 s)"
    assert report.error == ""
    assert isinstance(report.seconds, float) and report.seconds >= 0
    directory = plan.artifacts / cell.id
    iso = directory / f"kairos-{cell.id}.iso"
    sbom = directory / f"kairos-{cell.id}.cdx.json"
    assert report.artifacts == [str(sbom), str(iso), f"{iso}.sha256"]
    assert report.media == "iso, sbom"
    # The build got this cell's fingerprint, the artifacts theirs (it plus the
    # kinds of media), publish (the record) its release key.
    media = plan.media_stamp(cell)
    runner, built = plan.runner, built_for(cell)
    assert stages.args[("tree_digest", "*")] == (plan.context,)
    assert stages.args[("read_record", cell.id)] == (rel.registry, rel)
    assert stages.args[("local_label", cell.id)] == (runner, rel)
    assert stages.args[("build", cell.id)] == (runner, rel, "host", plan.context, stamp)
    assert stages.args[("earlier_media", cell.id)] == (plan.artifacts,)
    assert stages.args[("iso", cell.id)] == (
        runner,
        rel,
        built,
        plan.artifacts,
        "host",
        media,
        plan.keys,
    )
    assert stages.args[("test-boot", cell.id)] == (runner, rel, iso, SETTINGS, USER_DATA)
    assert stages.args[("publish", cell.id)] == (
        runner,
        rel,
        built,
        sigstore,
        plan.artifacts,
        key,
    )
    # The ISO keeps the fingerprint it was made from.
    assert (plan.artifacts / cell.id / ledger.MEDIA_STAMP).read_text() == f"{media}\n"


def test_boot_stamp_is_written_after_a_passing_boot(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    plan = plan_for(stages, rel)
    (report,) = release.run_release(plan, list(rel.cells))
    written = (plan.artifacts / rel.cells[0].id / ledger.BOOT_STAMP).read_text()
    assert written == f"{key_of(rel)}\n{report.boot}\n"


def test_fingerprints_are_computed_once_per_run(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"}, {"arch": "amd64", **K3S})
    plan = plan_for(stages, rel)
    reports = release.run_release(plan, list(rel.cells))
    assert [r.status for r in reports] == ["published"] * 3
    assert [s for s, _ in stages.calls].count("input_digests") == 1
    assert [s for s, _ in stages.calls].count("tree_digest") == 1
    stamps = [stages.args[("build", cell.id)][-1] for cell in rel.cells]
    assert stamps == [stamp_of(rel, cell) for cell in rel.cells]
    assert len(set(stamps)) == 3  # the cell is an input too
    keys = [stages.args[("publish", cell.id)][-1] for cell in rel.cells]
    assert keys == [key_of(rel, cell) for cell in rel.cells]
    assert len(set(keys)) == 3


def test_up_to_date_summary_names_the_published_artifacts(stages, make_release) -> None:
    rel = make_release({"arch": "arm64", "model": "rpi4"})
    cell = rel.cells[0]
    key = key_of(rel)
    stages.records[cell.id] = {
        **record_for(rel, cell, key),
        "checksums": {"k.raw.sha256": "1" * 64},
        "sbom": {"k.cdx.json": "2" * 64},
        "raw_image": f"{REPOSITORY}@sha256:{'3' * 64}",
    }
    (report,) = release.run_release(plan_for(stages, rel), [cell])
    assert report.status == "up to date"
    assert report.artifacts == ["k.cdx.json", "k.raw.sha256"]
    assert report.media == "raw (+ oci), sbom"


def record_for(rel: Release, cell: Cell, key: str) -> dict[str, Any]:
    return {
        "cell": cell.id,
        "fingerprint": key,  # the release key, not the artifact fingerprint
        "version": rel.version,
        "image": f"{REPOSITORY}@{DIGEST}",
        "tags": ["24.04-core-amd64-generic-v0.1.0"],
        "checksums": {"b.iso.sha256": "1" * 64, "a.iso.sha256": "2" * 64},
    }


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_published_cell_with_the_same_release_key_is_up_to_date(
    stages, make_release, signed
) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    key = key_of(rel)
    stages.records[cell.id] = record_for(rel, cell, key)
    plan = plan_for(stages, rel, sigstore=SIGSTORE if signed else None)
    (report,) = release.run_release(plan, [cell])
    # No stage ran: only the record was read (and, signing on, its signature checked),
    # then the SBOM it names, for the probe of the mirrors.
    verified = ["verify_image"] if signed else []
    assert stages.of(cell) == ["read_record", *verified, "read_sbom"]
    if signed:
        assert stages.args[("verify_image", cell.id)] == (
            SIGSTORE,
            "ghcr.io",
            "my-org/ubuntu",
            DIGEST,
        )
    assert report.status == "up to date"
    assert report.reason == (
        "skipped: inputs unchanged since v0.1.0 (sha256:dddddddddddd…); "
        "no newer packages (apt, 0 packages)"
    )
    assert report.steps == dict.fromkeys(STEPS, "up to date")
    assert report.image == f"{REPOSITORY}@{DIGEST}"
    assert report.signature == ("verified" if signed else "unsigned")
    assert report.artifacts == ["a.iso.sha256", "b.iso.sha256"]
    assert report.media == "iso"  # the kinds of the files those checksums name
    assert report.error == ""
    expected = f"[{cell.id}] up to date: {REPOSITORY}@{DIGEST} (release key {key[:12]})\n"
    assert output(plan) == expected
    assert not plan.artifacts.exists()


@pytest.mark.parametrize(
    "record, verify_error",
    [
        (None, None),
        ({"fingerprint": "0" * 32}, None),
        ("artifact-fingerprint", None),
        ({}, sign.SignError(f"no signature of {REPOSITORY}@{DIGEST}")),
        ({}, RegistryError("registry ghcr.io refused referrers: DENIED")),
    ],
    ids=[
        "never-released",
        "other-key",
        "artifact-fingerprint",
        "signature-refused",
        "registry-refused",
    ],
)
def test_cell_is_redone_unless_published_and_verified(
    stages, make_release, record, verify_error
) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    if record == "artifact-fingerprint":  # a record holding the fingerprint is not the key
        stages.records[cell.id] = record_for(rel, cell, stamp_of(rel))
    elif record is not None:
        stages.records[cell.id] = {**record_for(rel, cell, key_of(rel)), **record}
    stages.verify_error = verify_error
    plan = plan_for(stages, rel, sigstore=SIGSTORE)
    (report,) = release.run_release(plan, [cell])
    verified = ["verify_image"] if verify_error else []
    expected = REDONE if record is not None else FRESH
    assert stages.of(cell) == [expected[0], *verified, *expected[1:]]
    assert report.status == "published"
    assert report.steps == dict.fromkeys(STEPS, "done")
    assert stages.args[("publish", cell.id)][-1] == key_of(rel)


@pytest.mark.parametrize(
    "image",
    [
        "missing",
        None,
        "",
        42,
        "ghcr.io",
        "ghcr.io/my-org/ubuntu",
        "ghcr.io/my-org/ubuntu:24.04-core-amd64-generic-v0.1.0",
        f"ghcr.io@{DIGEST}",
        f"/my-org/ubuntu@{DIGEST}",
        f"ghcr.io/@{DIGEST}",
        "ghcr.io/my-org/ubuntu@md5:" + "d" * 32,
    ],
    ids=[
        "missing",
        "null",
        "empty",
        "number",
        "host-only",
        "no-digest",
        "tag-not-digest",
        "no-repository",
        "no-host",
        "empty-repository",
        "not-sha256",
    ],
)
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_record_without_a_usable_image_means_release_again(
    stages, make_release, image, signed
) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    record = record_for(rel, cell, key_of(rel))
    if image == "missing":
        del record["image"]
    else:
        record["image"] = image
    stages.records[cell.id] = record
    plan = plan_for(stages, rel, sigstore=SIGSTORE if signed else None)
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == REDONE  # no signature check of a name that is not one
    assert (report.status, report.error) == ("published", "")
    assert report.steps == dict.fromkeys(STEPS, "done")
    assert report.image == f"{REPOSITORY}@{DIGEST}"


@pytest.mark.parametrize(
    "checksums", ["missing", None, [], ["a.iso.sha256"], "a.iso.sha256", {}], ids=str
)
def test_up_to_date_record_with_unreadable_checksums_lists_no_artifacts(
    stages, make_release, checksums
) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    record = record_for(rel, cell, key_of(rel))
    if checksums == "missing":
        del record["checksums"]
    else:
        record["checksums"] = checksums
    stages.records[cell.id] = record
    plan = plan_for(stages, rel)
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == ["read_record", "read_sbom"]
    assert (report.status, report.image) == ("up to date", f"{REPOSITORY}@{DIGEST}")
    assert report.artifacts == []


def test_record_that_cannot_be_read_means_release(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    stages.records[cell.id] = RegistryError("registry ghcr.io unreachable (connection refused)")
    plan = plan_for(stages, rel, sigstore=SIGSTORE)
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == FRESH
    assert report.status == "published"
    assert (
        f"[{cell.id}] cannot read the release record "
        "(registry ghcr.io unreachable (connection refused)): releasing\n"
    ) in output(plan)


def leave_a_released_cell(stages: Recorder, plan: Plan, cell: Cell) -> artifacts.Artifacts:
    """Everything a finished release leaves: record, local build, stamped ISO, boot stamp."""
    rel = plan.release
    key = key_of(rel, cell)
    stages.records[cell.id] = record_for(rel, cell, key)
    stages.reused.add(cell.id)
    made = write_artifacts(plan.artifacts, cell, plan.media_stamp(cell))
    (made.directory / ledger.BOOT_STAMP).write_text(f"{key}\npassed (kvm, 2 checks, 30 s)\n")
    return made


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_force_redoes_every_step_of_a_cell_that_is_up_to_date(stages, make_release, signed) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    plan = plan_for(stages, rel, sigstore=SIGSTORE if signed else None, force=True)
    made = leave_a_released_cell(stages, plan, cell)
    (report,) = release.run_release(plan, [cell])
    # No build reuse, no ISO reuse, no boot stamp reuse; the record and its SBOM are
    # read for the package changelog only.
    assert stages.of(cell) == [
        "read_record",
        "build",
        "iso",
        "test-boot",
        "scan",
        "read_sbom",
        "publish",
    ]
    assert report.steps == dict.fromkeys(STEPS, "done")
    assert (report.status, report.error) == ("published", "")
    assert report.boot == "passed (tcg, 2 checks, 42 s)"
    assert stages.args[("build", cell.id)][-1] == stamp_of(rel)
    assert stages.args[("iso", cell.id)][-2] == plan.media_stamp(cell)
    assert stages.args[("publish", cell.id)][-1] == key_of(rel)
    boot_stamp = (made.directory / ledger.BOOT_STAMP).read_text()
    assert boot_stamp == f"{key_of(rel)}\n{report.boot}\n"


def test_without_force_the_same_leftovers_are_up_to_date(stages, make_release) -> None:
    # The control for the test above: what --force redid was all reusable.
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    plan = plan_for(stages, rel)
    leave_a_released_cell(stages, plan, cell)
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == ["read_record", "read_sbom"]
    assert report.status == "up to date"


def test_matching_build_iso_and_boot_are_reused(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    key = key_of(rel)
    plan = plan_for(stages, rel)
    stages.reused.add(cell.id)
    made = write_artifacts(plan.artifacts, cell, plan.media_stamp(cell))
    (made.directory / ledger.BOOT_STAMP).write_text(f"{key}\npassed (kvm, 2 checks, 30 s)\n")
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == [
        "read_record",
        "local_label",
        "adopt",
        "earlier_media",
        "scan",
        "publish",
    ]
    assert report.steps == {
        "build": "reused",
        "iso": "reused",
        "test-boot": "reused",
        "scan": "done",
        "publish": "done",
    }
    assert report.boot == "passed (kvm, 2 checks, 30 s)"
    assert report.reason.endswith("; reused build: image label matches")
    assert report.artifacts == [str(p) for p in made.files]
    assert report.status == "published"
    assert stages.args[("publish", cell.id)][2] == built_for(cell)  # the reused build
    assert stages.args[("publish", cell.id)][-1] == key


def test_boot_stamp_holding_the_fingerprint_is_not_reused(stages, make_release) -> None:
    # A boot stamp from before release keys (the fingerprint) proves no current check.
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    stamp = stamp_of(rel)
    plan = plan_for(stages, rel)
    stages.reused.add(cell.id)
    made = write_artifacts(plan.artifacts, cell, plan.media_stamp(cell))
    (made.directory / ledger.BOOT_STAMP).write_text(f"{stamp}\npassed (kvm, 2 checks, 30 s)\n")
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == [
        "read_record",
        "local_label",
        "adopt",
        "earlier_media",
        "test-boot",
        "scan",
        "publish",
    ]
    assert report.steps["test-boot"] == "done"
    assert (made.directory / ledger.BOOT_STAMP).read_text().splitlines()[0] == key_of(rel)


@pytest.mark.parametrize(
    "change", ["release-check", "cell-check", "check-expect", "marker", "cloud-config"]
)
def test_new_boot_inputs_rerun_test_boot_and_publish_only(stages, make_release, change) -> None:
    cells = ({"arch": "amd64"}, {"arch": "arm64"})
    before = make_release(*cells, boot_checks=[CHECK])
    settings, user_data, after = SETTINGS, USER_DATA, before
    if change == "release-check":
        after = make_release(*cells, boot_checks=[CHECK, {"run": "uname -m", "expect": "x"}])
    elif change == "cell-check":
        after = make_release(
            {"arch": "amd64", "boot_checks": [{"run": "uname -m", "expect": "x86_64"}]},
            cells[1],
            boot_checks=[CHECK],
        )
    elif change == "check-expect":
        after = make_release(*cells, boot_checks=[{**CHECK, "expect": "VERSION_ID=24.04"}])
    elif change == "marker":
        settings = boot.Settings(accel="tcg", memory=1024, marker="kairos login:")
    else:
        user_data = USER_DATA + b"stages: {boot: [{commands: [true]}]}\n"
    old = plan_for(stages, before)
    for cell in before.cells:
        leave_a_released_cell(stages, old, cell)
    plan = plan_for(stages, after, settings=settings, user_data=user_data)
    first, second = after.cells
    reports = release.run_release(plan, list(after.cells))
    new_key = key_of(after, first, settings, user_data)
    assert new_key != key_of(before, before.cells[0])
    # The image and the ISO are reused; the boot test and publish run with the new key.
    assert stages.of(first) == [
        "read_record",
        "local_label",
        "adopt",
        "earlier_media",
        "test-boot",
        "scan",
        "read_sbom",
        "publish",
    ]
    assert reports[0].steps == {
        "build": "reused",
        "iso": "reused",
        "test-boot": "done",
        "scan": "done",
        "publish": "done",
    }
    media = (plan.artifacts / first.id / ledger.MEDIA_STAMP).read_text()
    assert media == f"{old.media_stamp(before.cells[0])}\n"  # the artifacts kept
    assert stages.args[("test-boot", first.id)][-2:] == (settings, user_data)
    assert stages.args[("publish", first.id)][-1] == new_key
    boot_stamp = plan.artifacts / first.id / ledger.BOOT_STAMP
    assert boot_stamp.read_text().splitlines() == [new_key, reports[0].boot]
    # A check added to one cell leaves the other cell up to date.
    if change == "cell-check":
        assert stages.of(second) == ["read_record", "read_sbom"]
        assert reports[1].status == "up to date"
    else:
        assert stages.of(second) == stages.of(first)
        assert stages.args[("publish", second.id)][-1] == key_of(after, second, settings, user_data)


def test_stale_iso_is_remade_and_booted_again(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    plan = plan_for(stages, rel)
    made = write_artifacts(plan.artifacts, cell, "0" * 32)
    (made.directory / ledger.BOOT_STAMP).write_text("0" * 32 + "\npassed (kvm, 2 checks, 30 s)\n")
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == FRESH
    assert report.steps == dict.fromkeys(STEPS, "done")
    assert report.boot == "passed (tcg, 2 checks, 42 s)"
    assert (made.directory / ledger.BOOT_STAMP).read_text().split("\n")[0] == key_of(rel)
    assert (made.directory / ledger.MEDIA_STAMP).read_text() == f"{plan.media_stamp(cell)}\n"


def test_reused_iso_with_a_stale_boot_stamp_is_booted_again(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    plan = plan_for(stages, rel)
    made = write_artifacts(plan.artifacts, cell, plan.media_stamp(cell))
    (made.directory / ledger.BOOT_STAMP).write_text("0" * 32 + "\npassed (kvm, 2 checks, 30 s)\n")
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == [
        "read_record",
        "local_label",
        "build",
        "earlier_media",
        "test-boot",
        "scan",
        "publish",
    ]
    assert report.steps == {
        "build": "done",
        "iso": "reused",
        "test-boot": "done",
        "scan": "done",
        "publish": "done",
    }
    iso = next(p for p in made.files if p.suffix == ".iso")
    assert stages.args[("test-boot", cell.id)][2] == iso
    boot_stamp = (made.directory / ledger.BOOT_STAMP).read_text().splitlines()
    assert boot_stamp == [key_of(rel), report.boot]


@pytest.mark.parametrize(
    "after_key",
    ["", "\n", "\n\n", "\n   \n", "\r\n"],
    ids=["one-line", "newline", "empty-second-line", "blank-second-line", "crlf"],
)
def test_boot_stamp_without_a_result_line_reads_as_passed(stages, make_release, after_key) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    plan = plan_for(stages, rel)
    stages.reused.add(cell.id)
    made = write_artifacts(plan.artifacts, cell, plan.media_stamp(cell))
    (made.directory / ledger.BOOT_STAMP).write_text(key_of(rel) + after_key, newline="")
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == [
        "read_record",
        "local_label",
        "adopt",
        "earlier_media",
        "scan",
        "publish",
    ]
    assert (report.steps["test-boot"], report.boot) == ("reused", "passed")
    assert (report.status, report.error) == ("published", "")


@pytest.mark.parametrize("text", ["", "\n", "garbage", "0" * 32])
def test_boot_stamp_without_the_key_boots_again(stages, make_release, text) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    plan = plan_for(stages, rel)
    made = write_artifacts(plan.artifacts, cell, plan.media_stamp(cell))
    (made.directory / ledger.BOOT_STAMP).write_text(text)
    (report,) = release.run_release(plan, [cell])
    assert report.steps["test-boot"] == "done"
    assert (made.directory / ledger.BOOT_STAMP).read_text().splitlines()[0] == key_of(rel)


@pytest.mark.parametrize("missing", ["iso", "sha256", "both"])
def test_stamp_that_outlived_its_iso_makes_it_again(stages, make_release, missing) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    plan = plan_for(stages, rel)
    made = write_artifacts(plan.artifacts, cell, plan.media_stamp(cell))
    iso = next(p for p in made.files if p.suffix == ".iso")
    if missing in ("iso", "both"):
        iso.unlink()
    if missing in ("sha256", "both"):
        iso.with_name(f"{iso.name}.sha256").unlink()
    assert not artifacts.complete(artifacts.earlier(plan.artifacts, cell))  # type: ignore[arg-type]
    stages.calls.clear()
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == FRESH
    assert report.steps["iso"] == "done"
    assert iso.exists() and iso.with_name(f"{iso.name}.sha256").exists()
    assert (report.status, report.error) == ("published", "")


def test_artifacts_without_an_iso_fail_the_boot_test(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"})
    first, second = rel.cells

    def make_media(directory: Path, cell: Cell, stamp: str) -> artifacts.Artifacts:
        made = write_artifacts(directory, cell, stamp)
        raw = made.directory / "disk.raw"
        raw.write_bytes(b"raw")
        return artifacts.Artifacts(cell, made.directory, (raw,))

    stages.media[first.id] = make_media
    plan = plan_for(stages, rel)
    failed, other = release.run_release(plan, list(rel.cells))
    directory = plan.artifacts / first.id
    assert failed.status == "failed"
    assert failed.error == f"test-boot: no ISO in {directory}"
    assert failed.steps == {"build": "done", "iso": "done", "test-boot": "failed"}
    assert "test-boot" not in stages.of(first) and "publish" not in stages.of(first)
    assert f"[{first.id}] FAILED test-boot: no ISO in {directory}\n" in output(plan)
    assert not (directory / ledger.BOOT_STAMP).exists()
    assert stages.of(second) == FRESH
    assert (other.status, other.error) == ("published", "")


LATER = {
    "build": ["earlier_media", "iso", "test-boot", "scan", "publish"],
    "iso": ["test-boot", "scan", "publish"],
    "test-boot": ["scan", "publish"],
    "scan": ["publish"],
    "publish": [],
}


@pytest.mark.parametrize("step", STEPS)
def test_step_error_fails_only_its_cell(stages, make_release, step) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"})
    first, second = rel.cells
    tail = [f"line {i}" for i in range(8)]
    stages.raises[(step, first.id)] = StepError(first.id, step, "it broke", tail)
    plan = plan_for(stages, rel, sigstore=SIGSTORE)
    failed, other = release.run_release(plan, list(rel.cells))
    assert failed.status == "failed"
    assert failed.error == f"{step}: it broke"
    # Done up to the failing step, which failed; nothing left "running".
    assert failed.steps == {**dict.fromkeys(STEPS[: STEPS.index(step)], "done"), step: "failed"}
    assert [s for s in stages.of(first) if s in LATER[step]] == []  # nothing after it ran
    assert (failed.image, failed.signature) == ("", "")
    # A failing boot (or anything before it) leaves no boot stamp behind.
    boot_stamp = plan.artifacts / first.id / ledger.BOOT_STAMP
    assert boot_stamp.exists() == (step in ("scan", "publish"))
    text = output(plan)
    assert f"[{first.id}] FAILED {step}: it broke\n" in text
    assert f"[{first.id}]   | line 3\n" in text and f"[{first.id}]   | line 7\n" in text
    assert f"[{first.id}]   | line 2\n" not in text  # the last five lines only
    # The next cell went on as if nothing happened.
    assert stages.of(second) == FRESH
    assert (other.status, other.error) == ("published", "")


@pytest.mark.parametrize(
    "error, reason",
    [
        (
            NamingError("image tag 'x y' is not a valid OCI tag"),
            "image tag 'x y' is not a valid OCI tag",
        ),
        (
            RegistryError("registry ghcr.io unreachable (connection refused)"),
            "registry ghcr.io unreachable (connection refused)",
        ),
        (
            DockerException("500 Server Error:\n  no space left on device"),
            "500 Server Error: no space left on device",
        ),
        (
            APIError("500 Server Error", explanation="write /var/lib:\n no space"),
            "write /var/lib: no space",
        ),
    ],
    ids=["naming", "registry", "docker", "docker-api"],
)
@pytest.mark.parametrize("step", STEPS)
def test_other_errors_fail_only_their_cell_at_their_step(
    stages, make_release, step, error, reason
) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"})
    first, second = rel.cells
    stages.raises[(step, first.id)] = error
    plan = plan_for(stages, rel)
    failed, other = release.run_release(plan, list(rel.cells))
    assert failed.status == "failed"
    assert failed.error == f"{step}: {reason}"
    assert failed.steps == {**dict.fromkeys(STEPS[: STEPS.index(step)], "done"), step: "failed"}
    assert [s for s in stages.of(first) if s in LATER[step]] == []
    assert f"[{first.id}] FAILED {step}: {reason}\n" in output(plan)
    assert stages.of(second) == FRESH
    assert (other.status, other.steps) == ("published", dict.fromkeys(STEPS, "done"))


def test_every_finer_step_belongs_to_a_summary_step() -> None:
    assert set(release.STEP_OF.values()) <= set(STEPS)
    assert not set(release.STEP_OF) & set(STEPS)


@pytest.mark.parametrize(
    "stage, where, step, filed_under",
    [
        ("publish", "", "sign", "publish"),
        ("build", "base", "resolve", "build"),
        ("local_label", "", "identity", "build"),
        ("build", "", "identity", "build"),
        ("local_label", "engine", "connect", "build"),
        ("input_digests", "engine", "connect", "build"),
        ("build", "", "find build", "build"),
        ("iso", "iso", "checksum", "iso"),
        ("iso", "", "git", "iso"),  # a step summaries do not know: the current one
        ("test-boot", "", "verify", "test-boot"),
        ("publish", "", "promote", "publish"),
    ],
    ids=[
        "sign",
        "resolve",
        "identity-on-reuse",
        "identity",
        "connect",
        "connect-on-inputs",
        "find-build",
        "checksum",
        "unknown-at-iso",
        "unknown-at-boot",
        "unknown-at-publish",
    ],
)
def test_finer_step_errors_are_filed_under_their_summary_step(
    stages, make_release, stage, where, step, filed_under
) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    key = (stage, "*" if stage == "input_digests" else cell.id)
    stages.raises[key] = StepError(where or cell.id, step, "it broke")
    plan = plan_for(stages, rel, sigstore=SIGSTORE)
    (report,) = release.run_release(plan, [cell])
    assert report.status == "failed"
    assert report.error == f"{step}: it broke"  # the error names the finer step
    before = STEPS[: STEPS.index(filed_under)]
    assert report.steps == {**dict.fromkeys(before, "done"), filed_under: "failed"}
    assert f"[{cell.id}] FAILED {step}: it broke\n" in output(plan)
    row = summary.rows([report])[0]
    assert (row["result"], row["error"]) == ("failed", f"{step}: it broke")


def test_unresolvable_inputs_fail_every_cell_before_any_stage(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"})
    error = StepError("base", "resolve", "cannot resolve ubuntu:24.04: manifest unknown")
    stages.raises[("input_digests", "*")] = error
    plan = plan_for(stages, rel)
    reports = release.run_release(plan, list(rel.cells))
    assert [r.status for r in reports] == ["failed", "failed"]
    assert {r.error for r in reports} == {"resolve: cannot resolve ubuntu:24.04: manifest unknown"}
    # The error keeps its own step; the summary files it under build.
    assert [r.steps for r in reports] == [{"build": "failed"}] * 2
    assert [s for s, _ in stages.calls] == ["input_digests", "input_digests"]


def test_board_gets_its_raw_image_and_is_published_without_a_boot(stages, make_release) -> None:
    rel = make_release({"arch": "arm64", "model": "rpi4"})
    cell = rel.cells[0]
    plan = plan_for(stages, rel)
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == [
        "read_record",
        "local_label",
        "build",
        "earlier_media",
        "iso",
        "scan",
        "publish",
    ]
    why = "boards boot from their raw disk image, which is not boot-tested here"
    assert report.steps == {
        "build": "done",
        "iso": "done",
        "test-boot": f"skipped: {why}",
        "scan": "done",
        "publish": "done",
    }
    directory = plan.artifacts / cell.id
    raw, sbom = directory / "kairos-arm64-rpi4.raw", directory / "kairos-arm64-rpi4.cdx.json"
    assert report.artifacts == [str(sbom), str(raw), f"{raw}.sha256"]
    assert (report.media, report.status) == ("raw, sbom", "published")
    assert stages.args[("publish", cell.id)][-2:] == (plan.artifacts, key_of(rel))


def test_cell_whose_media_are_skipped_keeps_its_sbom_and_is_published(stages, make_release) -> None:
    # A remote engine (GitLab's dind): AuroraBoot cannot run, the SBOM is still made.
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    why = "AuroraBoot needs a local Docker socket (DOCKER_HOST is tcp://docker:2376)"

    def make_media(directory: Path, cell: Cell, stamp: str) -> artifacts.Artifacts:
        final = directory / cell.id
        final.mkdir(parents=True)
        sbom = final / "k.cdx.json"
        sbom.write_text("{}")
        return artifacts.Artifacts(cell, final, (sbom,), skipped=why)

    stages.media[cell.id] = make_media
    plan = plan_for(stages, rel)
    (report,) = release.run_release(plan, [cell])
    assert report.steps == {
        "build": "done",
        "iso": f"skipped: {why}",
        "test-boot": f"skipped: {why}",
        "scan": "done",
        "publish": "done",
    }
    assert (report.media, report.status) == ("sbom", "published")


def test_cell_whose_boot_is_skipped_is_still_published(stages, make_release) -> None:
    rel = make_release({"arch": "riscv64"})
    cell = rel.cells[0]
    stages.raises[("test-boot", cell.id)] = Skip("qemu-system-riscv64 is not installed")
    plan = plan_for(stages, rel)
    (report,) = release.run_release(plan, [cell])
    assert stages.of(cell) == FRESH
    assert report.steps["test-boot"] == "skipped: qemu-system-riscv64 is not installed"
    assert report.boot == "skipped: qemu-system-riscv64 is not installed"
    assert (report.steps["publish"], report.status) == ("done", "published")
    assert not (plan.artifacts / cell.id / ledger.BOOT_STAMP).exists()  # nothing passed


def test_dry_run_calls_each_stage_dry(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64", "model": "rpi4"})
    generic, board = rel.cells
    why = "boards boot from their raw disk image, which is not boot-tested here"
    plan = plan_for(stages, rel, sigstore=SIGSTORE, dry=True)
    reports = release.run_release(plan, list(rel.cells))
    assert [(r.status, r.error) for r in reports] == [("dry run", ""), ("dry run", "")]
    # No fingerprint, no record: a dry run reads nothing from engine or registry.
    assert stages.calls == [
        ("build", generic.id),
        ("iso", generic.id),
        ("test-boot", generic.id),
        ("publish", generic.id),
        ("build", board.id),
        ("iso", board.id),
        ("publish", board.id),
    ]
    assert all(args[0].dry for args in stages.args.values())
    runner = plan.runner
    assert stages.args[("build", generic.id)] == (runner, rel, "host", plan.context, "")
    assert stages.args[("iso", generic.id)] == (
        runner,
        rel,
        None,
        plan.artifacts,
        "host",
        "",
        plan.keys,
    )
    # The ISO the real run would boot, by the name AuroraBoot would write.
    name = naming.artifact_name(Identity.expected(rel, generic))
    iso = plan.artifacts / generic.id / f"{name}.iso"
    assert iso.name == "kairos-FLAVOR-FLAVOR_RELEASE-core-amd64-generic-v0.1.0.iso"
    assert stages.args[("test-boot", generic.id)] == (runner, rel, iso, SETTINGS, USER_DATA)
    assert stages.args[("publish", generic.id)] == (
        runner,
        rel,
        None,
        SIGSTORE,
        plan.artifacts,
        "",
    )
    skip = release.DRY_SKIP["packages"].format(base="ubuntu:24.04")
    # The scan is said, not asked for: no database is fetched, no SBOM read.
    scan_line = f"would scan its SBOM with {rel.grype} against the listing's latest database"
    assert output(plan).splitlines() == [
        f"[{generic.id}] would {skip}",
        f"[{generic.id}] {scan_line}",
        f"[{board.id}] would {skip}",
        f"[{board.id}] SKIPPED test-boot: {why}",
        f"[{board.id}] {scan_line}",
    ]
    assert stages.databases == 0
    assert not plan.artifacts.exists()


# -- summaries ---------------------------------------------------------------------------


REASON1 = (
    "released: base image digest changed since v1.2.2; rebuilt: the local build has other inputs"
)
REASON3 = "skipped: inputs unchanged since v1.2.2 (sha256:1234567890ab…)"


def reports() -> list[summary.Report]:
    return [
        summary.Report(
            "amd64-generic",
            "published",
            dict.fromkeys(STEPS, "done"),
            image=f"{REPOSITORY}@{DIGEST}",
            artifacts=["artifacts/amd64-generic/k.iso", "artifacts/amd64-generic/k.iso.sha256"],
            media="iso, sbom",
            boot="passed (kvm, 2 checks, 40 s)",
            signature="verified",
            seconds=12.34,
            reason=REASON1,
        ),
        summary.Report(
            "arm64-generic",
            "failed",
            {"build": "done", "iso": "failed"},
            seconds=3.0,
            error="iso: AuroraBoot exited 1: a | b",
        ),
        summary.Report(
            "riscv64-generic",
            "up to date",
            dict.fromkeys(STEPS, "up to date"),
            reason=REASON3,
        ),
    ]


def test_summary_rows() -> None:
    rows = summary.rows(reports())
    assert rows[:2] == [
        {
            "cell": "amd64-generic",
            "result": "published",
            "reason": REASON1,
            "image": f"{REPOSITORY}@{DIGEST}",
            "artifacts": "iso, sbom",
            "boot": "passed (kvm, 2 checks, 40 s)",
            "signature": "verified",
            "seconds": "12.3",
            "error": "-",
        },
        {
            "cell": "arm64-generic",
            "result": "failed",
            "reason": "-",
            "image": "-",
            "artifacts": "-",
            "boot": "-",
            "signature": "-",
            "seconds": "3.0",
            "error": "iso: AuroraBoot exited 1: a | b",
        },
    ]
    assert [list(row) for row in rows] == [
        ["cell", "result", "reason", "image", "artifacts", "boot", "signature", "seconds", "error"]
    ] * 3
    assert (rows[2]["result"], rows[2]["reason"]) == ("up to date", REASON3)


def test_markdown_is_one_table_row_per_cell() -> None:
    text = summary.markdown(reports(), "v1.2.3")
    assert text.endswith("\n")
    lines = text.splitlines()
    assert lines[:4] == [
        "## Release v1.2.3",
        "",
        "| cell | result | reason | image | artifacts | boot | signature | seconds | error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    assert lines[4:] == [
        f"| amd64-generic | published | {REASON1} | {REPOSITORY}@{DIGEST} | iso, sbom "
        "| passed (kvm, 2 checks, 40 s) | verified | 12.3 | - |",
        r"| arm64-generic | failed | - | - | - | - | - | 3.0 | iso: AuroraBoot exited 1: a \| b |",
        f"| riscv64-generic | up to date | {REASON3} | - | - | - | - | 0.0 | - |",
    ]
    # An escaped `|` in a value never makes an extra column.
    for line in lines[2:]:
        assert len(re.findall(r"(?<!\\)\|", line)) == 10, line


def test_json_summary_round_trips() -> None:
    data = json.loads(summary.as_json(reports(), "v1.2.3"))
    assert data["version"] == "v1.2.3"
    assert data["cells"][0] == {
        "cell": "amd64-generic",
        "status": "published",
        "steps": dict.fromkeys(STEPS, "done"),
        "image": f"{REPOSITORY}@{DIGEST}",
        "artifacts": ["artifacts/amd64-generic/k.iso", "artifacts/amd64-generic/k.iso.sha256"],
        "media": "iso, sbom",
        "boot": "passed (kvm, 2 checks, 40 s)",
        "signature": "verified",
        "seconds": 12.34,
        "error": "",
        "reason": REASON1,
    }
    assert data["cells"][1]["steps"] == {"build": "done", "iso": "failed"}
    assert [summary.Report(**cell) for cell in data["cells"]] == reports()


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_write_summaries_without_a_github_step_summary(monkeypatch, tmp_path, value) -> None:
    if value is None:
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    else:
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", value)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "artifacts" / "summaries"
    paths = summary.write(reports(), "v1.2.3", out)
    assert paths == [out / "release-summary.md", out / "release-summary.json"]
    assert paths[0].read_text() == summary.markdown(reports(), "v1.2.3")
    assert paths[1].read_text() == summary.as_json(reports(), "v1.2.3") + "\n"
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [p.relative_to(tmp_path) for p in sorted(paths)]


def test_write_summaries_appends_to_the_github_step_summary(monkeypatch, tmp_path) -> None:
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("## Build\n\nan earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    summary.write(reports(), "v1.2.3", tmp_path / "out")
    table = summary.markdown(reports(), "v1.2.3")
    assert step_summary.read_text() == "## Build\n\nan earlier step\n" + table
    assert (tmp_path / "out" / "release-summary.md").read_text() == table


# -- release records ---------------------------------------------------------------------------


class MemoryRegistry(Registry):
    """Blobs and manifests in memory, per repository; `puts` records manifest writes in order."""

    def __init__(self, host: str = "registry.test") -> None:
        super().__init__(host)
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.puts: list[tuple[str, str, str]] = []

    def _send(self, *args: Any, **kw: Any) -> Any:
        raise AssertionError("the in-memory registry went to the network")

    def push_blob(self, repo: str, digest: str, data: Any, size: int) -> None:
        assert isinstance(data, bytes) and len(data) == size and sha(data) == digest
        self.blobs[(repo, digest)] = data

    def get_blob(self, repo: str, digest: str) -> bytes:
        if (repo, digest) not in self.blobs:
            raise RegistryError(f"registry {self.host} refused blob {digest}: BLOB_UNKNOWN")
        return self.blobs[(repo, digest)]

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        self.manifests[(repo, reference)] = (body, media_type)
        self.manifests[(repo, sha(body))] = (body, media_type)
        self.puts.append((repo, reference, media_type))
        return sha(body)

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str] | None:
        found = self.manifests.get((repo, reference))
        return None if found is None else (found[0], found[1], sha(found[0]))

    def image(self, repo: str) -> str:
        """Push an image manifest by digest; return the digest."""
        body = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})
        return self.put_manifest(repo, sha(body), body, OCI_MANIFEST)

    def tags(self, repo: str) -> list[str]:
        """Tag writes to `repo`, in order (digest references left out)."""
        return [ref for r, ref, _ in self.puts if r == repo and not ref.startswith("sha256:")]


RECORD = {
    "cell": "amd64-generic",
    "fingerprint": "f" * 32,
    "version": "v0.1.0",
    "image": f"registry.test/ns/distro@{DIGEST}",
    "tags": ["24.04-core-amd64-generic-v0.1.0", "24.04-core-amd64-generic-edge"],
    "checksums": {"k.iso.sha256": "a" * 64},
}


@pytest.fixture
def record_release(make_release) -> Release:
    return make_release({"arch": "amd64"}, registry="registry.test", namespace="ns")


def test_record_location_is_beside_the_images_by_cell(make_release) -> None:
    rel = make_release({"arch": "amd64", **K3S}, namespace="acme/os", repository="distro")
    assert ledger.record_location(rel, rel.cells[0]) == (
        "acme/os/my-org-kairos-ubuntu",
        "release-amd64-generic-k3s-v1.35.1-k3s1",
    )


def test_release_record_fields(make_release, tmp_path) -> None:
    rel = make_release({"arch": "amd64"})
    one, two = tmp_path / "a.iso.sha256", tmp_path / "b.iso.sha256"
    one.write_text(f"{'1' * 64}  /output/a.iso\n")
    two.write_text(f"{'2' * 64}  b.iso\n")
    tags = ["24.04-core-amd64-generic-v0.1.0", "24.04-core-amd64-generic-edge"]
    record = ledger.release_record(
        rel.cells[0], "f" * 32, "v0.1.0", "ghcr.io/my-org/ubuntu", DIGEST, tags, [one, two]
    )
    assert record == {
        "cell": "amd64-generic",
        "fingerprint": "f" * 32,
        "version": "v0.1.0",
        "image": f"ghcr.io/my-org/ubuntu@{DIGEST}",
        "tags": tags,
        "checksums": {"a.iso.sha256": "1" * 64, "b.iso.sha256": "2" * 64},
    }


def test_write_record_is_an_artifact_manifest_under_the_cells_tag(record_release) -> None:
    rel, cell = record_release, record_release.cells[0]
    registry = MemoryRegistry()
    ledger.write_record(registry, rel, cell, dict(RECORD))
    repo, tag = ledger.record_location(rel, cell)
    assert registry.puts == [(repo, tag, OCI_MANIFEST)]
    body, media_type, _ = registry.get_manifest(repo, tag) or (b"", "", "")
    assert media_type == OCI_MANIFEST
    manifest = json.loads(body)
    blob = json.dumps(RECORD, sort_keys=True).encode()
    assert manifest == {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.kairos.release.v1+json",
        "config": {"mediaType": ledger.EMPTY_TYPE, "digest": sha(b"{}"), "size": 2},
        "layers": [{"mediaType": ledger.RECORD_TYPE, "digest": sha(blob), "size": len(blob)}],
        "annotations": {"io.kairos.release.fingerprint": "f" * 32},
    }
    assert ledger.RECORD_TYPE == "application/vnd.kairos.release.v1+json"
    assert registry.get_blob(repo, sha(blob)) == blob
    assert body == canonical(manifest)  # canonical bytes: the same record, the same digest


def test_read_record_returns_what_write_record_wrote(record_release) -> None:
    rel = record_release
    registry = MemoryRegistry()
    ledger.write_record(registry, rel, rel.cells[0], dict(RECORD))
    assert ledger.read_record(registry, rel, rel.cells[0]) == RECORD


def put_raw(registry: MemoryRegistry, rel: Release, body: bytes) -> None:
    repo, tag = ledger.record_location(rel, rel.cells[0])
    registry.put_manifest(repo, tag, body, OCI_MANIFEST)


def layer_manifest(registry: MemoryRegistry, rel: Release, blob: bytes, kind: str) -> bytes:
    repo, _ = ledger.record_location(rel, rel.cells[0])
    layer = registry.push_bytes(repo, blob, ledger.RECORD_TYPE).as_json()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [layer]}
    if kind:
        manifest["artifactType"] = kind
    return canonical(manifest)


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "another-cell",
        "image-manifest",
        "other-artifact",
        "blob-not-json",
        "no-layers",
        "manifest-not-json",
    ],
)
def test_read_record_none_when_there_is_no_readable_record(make_release, case) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"}, registry="registry.test")
    registry = MemoryRegistry()
    record = json.dumps(RECORD).encode()
    if case == "another-cell":
        ledger.write_record(registry, rel, rel.cells[1], dict(RECORD))
    elif case == "image-manifest":
        put_raw(registry, rel, layer_manifest(registry, rel, record, ""))
    elif case == "other-artifact":
        put_raw(registry, rel, layer_manifest(registry, rel, record, "application/x-other"))
    elif case == "blob-not-json":
        put_raw(registry, rel, layer_manifest(registry, rel, b"\x00garbage", ledger.RECORD_TYPE))
    elif case == "no-layers":
        manifest = {"mediaType": OCI_MANIFEST, "artifactType": ledger.RECORD_TYPE, "layers": []}
        put_raw(registry, rel, canonical(manifest))
    elif case == "manifest-not-json":
        put_raw(registry, rel, b"<html>not a manifest</html>")
    assert ledger.read_record(registry, rel, rel.cells[0]) is None


@pytest.mark.parametrize(
    "body",
    [b"[]", b'["artifactType"]', b'"a record"', b"null", b"42", b"true"],
    ids=["empty-array", "array", "string", "null", "number", "bool"],
)
def test_read_record_none_when_the_manifest_is_not_an_object(record_release, body) -> None:
    rel = record_release
    registry = MemoryRegistry()
    put_raw(registry, rel, body)
    assert ledger.read_record(registry, rel, rel.cells[0]) is None


@pytest.mark.parametrize(
    "layers",
    [None, "layers", ["not a layer"], [None], [["digest"]], 7, {"digest": "x"}],
    ids=["null", "string", "string-layer", "null-layer", "list-layer", "number", "mapping"],
)
def test_read_record_none_when_the_layers_are_malformed(record_release, layers) -> None:
    rel = record_release
    registry = MemoryRegistry()
    manifest = {"mediaType": OCI_MANIFEST, "artifactType": ledger.RECORD_TYPE, "layers": layers}
    put_raw(registry, rel, canonical(manifest))
    assert ledger.read_record(registry, rel, rel.cells[0]) is None


@pytest.mark.parametrize(
    "blob",
    [b"[]", json.dumps([RECORD]).encode(), b'"a record"', b"null", b"42", b"false"],
    ids=["empty-array", "array-of-record", "string", "null", "number", "bool"],
)
def test_read_record_none_when_the_record_is_not_an_object(record_release, blob) -> None:
    rel = record_release
    registry = MemoryRegistry()
    put_raw(registry, rel, layer_manifest(registry, rel, blob, ledger.RECORD_TYPE))
    assert ledger.read_record(registry, rel, rel.cells[0]) is None


def test_read_record_with_its_blob_gone_is_a_registry_error(record_release) -> None:
    # Not None: run_release treats it as "cannot read the release record: releasing".
    rel = record_release
    registry = MemoryRegistry()
    ledger.write_record(registry, rel, rel.cells[0], dict(RECORD))
    registry.blobs.clear()
    with pytest.raises(RegistryError, match="BLOB_UNKNOWN"):
        ledger.read_record(registry, rel, rel.cells[0])


# -- publish: the version tag, the first channel, then the record -------------------------------

UBUNTU = Identity("ubuntu", "24.04", "core", "amd64", "generic", "v0.1.0")
VERSION_TAG = "24.04-core-amd64-generic-v0.1.0"


def publish_into(
    monkeypatch: pytest.MonkeyPatch,
    rel: Release,
    artifacts_dir: Path | None = None,
    stamp: str = "",
) -> tuple[MemoryRegistry, publish.Published | None]:
    registry = MemoryRegistry()

    def registry_for(host: str, login: str = "") -> MemoryRegistry:
        assert (host, login) == ("registry.test", rel.registry)  # the login goes home only
        return registry

    def push(runner: Runner, reg: Registry, repo: str, built: Built) -> str:
        assert (reg, repo) == (registry, "ns/distro")
        return registry.image(repo)

    monkeypatch.setattr(publish, "Registry", registry_for)
    monkeypatch.setattr(publish, "push_image", push)
    cell = rel.cells[0]
    built = Built(cell, "sha256:" + "e" * 64, "local", UBUNTU)
    runner = Runner(out=io.StringIO())
    return registry, publish.publish(runner, rel, cell, built, None, artifacts_dir, stamp)


@pytest.mark.parametrize(
    "channels, tags",
    [
        ([], [VERSION_TAG]),
        (["edge"], [VERSION_TAG, "24.04-core-amd64-generic-edge"]),
        (["edge", "stable"], [VERSION_TAG, "24.04-core-amd64-generic-edge"]),
        (["beta", "edge", "stable"], [VERSION_TAG, "24.04-core-amd64-generic-beta"]),
    ],
    ids=["none", "one", "two", "three"],
)
def test_publish_moves_the_version_tag_and_the_first_channel_only(
    make_release, monkeypatch, channels, tags
) -> None:
    rel = make_release(
        {"arch": "amd64"},
        registry="registry.test",
        namespace="ns",
        repository="distro",
        channels=channels,
    )
    registry, done = publish_into(monkeypatch, rel)
    assert registry.tags("ns/distro") == tags
    assert done is not None and list(done.tags) == tags
    for tag in tags:  # every tag points at the pushed digest
        assert (registry.get_manifest("ns/distro", tag) or ("", "", ""))[2] == done.digest
    assert registry.tags(f"ns/{rel.name}") == []  # no stamp: no release record


def test_publish_with_a_stamp_writes_the_record_last(make_release, monkeypatch, tmp_path) -> None:
    rel = make_release(
        {"arch": "amd64"},
        registry="registry.test",
        namespace="ns",
        repository="distro",
        channels=["edge", "stable"],
    )
    cell = rel.cells[0]
    (tmp_path / cell.id).mkdir()
    (tmp_path / cell.id / "k.iso.sha256").write_text(f"{'a' * 64}  k.iso\n")
    registry, done = publish_into(monkeypatch, rel, tmp_path, "f" * 32)
    assert done is not None
    record_repo, record_tag = ledger.record_location(rel, cell)
    assert [ref for _, ref, _ in registry.puts if not ref.startswith("sha256:")] == [
        VERSION_TAG,
        "24.04-core-amd64-generic-edge",
        record_tag,
    ]
    assert ledger.read_record(registry, rel, cell) == {
        "cell": cell.id,
        "fingerprint": "f" * 32,
        "version": "v0.1.0",
        "image": f"registry.test/ns/distro@{done.digest}",
        "tags": [VERSION_TAG, "24.04-core-amd64-generic-edge"],
        "checksums": {"k.iso.sha256": "a" * 64},
        "identity": {  # promote names channel tags from it
            "flavor": "ubuntu",
            "flavor_release": "24.04",
            "variant": "core",
            "arch": "amd64",
            "model": "generic",
            "version": "v0.1.0",
            "provider": "",
            "provider_version": "",
            "trusted_boot": False,
            "fips": False,
        },
    }
    assert registry.tags(record_repo) == [record_tag]


# -- tasks: `version: git` resolved before any stage ---------------------------------------------

Runs = dict[str, tuple[subprocess.CompletedProcess[str], Path]]


def report_of(run: subprocess.CompletedProcess[str]) -> str:
    return f"{run.args[3:]} exited {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"


@pytest.fixture(scope="module")
def git_runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """`invoke --dry build` (and release) with `version: git`, in repositories made here."""
    tmp = tmp_path_factory.mktemp("git-version")
    data = yaml.safe_load((ROOT / "release.yaml").read_text())
    text = yaml.safe_dump({**data, "version": "git", "cells": [{"arch": "amd64"}]})
    files = {"release.yaml": text, "README.md": "one\n"}
    tagged = git_repo(tmp / "tagged", files)
    git(tagged, "tag", "v2.3.4")
    ahead = git_repo(tmp / "ahead", files)
    git(ahead, "tag", "v2.3.4")
    commit(ahead, {"README.md": "two\n"})
    (ahead / "README.md").write_text("dirty\n")
    untagged = git_repo(tmp / "untagged", files)
    odd = git_repo(tmp / "odd", files)
    git(odd, "tag", "release-7")
    plain = tmp / "plain"
    plain.mkdir()
    (plain / "release.yaml").write_text(text)
    env = {
        **os.environ,
        **GIT_ENV,
        "DOCKER_HOST": "unix:///nonexistent.sock",
        "GIT_CEILING_DIRECTORIES": str(tmp),
        "INVOKE_KAIROS_ARTIFACTS": str(tmp / "artifacts"),
    }
    calls = {
        "ahead": (["--dry", "build"], ahead),
        "untagged": (["--dry", "build"], untagged),
        "odd": (["--dry", "build"], odd),
        "plain": (["--dry", "build"], plain),
        "release": (["--dry", "release"], tagged),
    }

    def call(args: list[str], repo: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
        path = repo / "release.yaml"
        return run_invoke(*args, "--release-file", str(path), env=env), repo

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {name: pool.submit(call, *args) for name, args in calls.items()}
    return {name: future.result() for name, future in futures.items()}


def build_args_of(run: subprocess.CompletedProcess[str]) -> dict[str, str]:
    (line,) = [x for x in run.stdout.splitlines() if " would run: " in x]
    argv = shlex.split(line.split(" would run: ", 1)[1])
    pairs = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--build-arg"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_version_git_is_the_tag_in_the_build(git_runs) -> None:
    run, _ = git_runs["release"]
    assert run.returncode == 0, report_of(run)
    assert build_args_of(run)["VERSION"] == "v2.3.4"
    assert "org.opencontainers.image.version=v2.3.4" in run.stdout
    assert "-v2.3.4\n" in run.stdout  # the tag the image would get


def test_version_git_after_the_tag_with_edits(git_runs) -> None:
    run, repo = git_runs["ahead"]
    assert run.returncode == 0, report_of(run)
    version = build_args_of(run)["VERSION"]
    found = re.fullmatch(r"v2\.3\.4-1-g([0-9a-f]{7,40})-dirty", version)
    assert found, version
    assert git(repo, "rev-parse", "HEAD").startswith(found.group(1))


def test_version_git_before_the_first_tag(git_runs) -> None:
    run, repo = git_runs["untagged"]
    assert run.returncode == 0, report_of(run)
    version = build_args_of(run)["VERSION"]
    assert version == f"v0.0.0-{git(repo, 'rev-parse', '--short', 'HEAD')}"


def test_version_git_refusals_are_one_line(git_runs) -> None:
    plain, plain_repo = git_runs["plain"]
    odd, odd_repo = git_runs["odd"]
    assert plain.returncode == 2, report_of(plain)
    assert plain.stderr == (
        f"{plain_repo / 'release.yaml'}: version: version is git but this is not a git checkout\n"
    )
    assert odd.returncode == 2, report_of(odd)
    assert odd.stderr == (
        f"{odd_repo / 'release.yaml'}: version: git describe gave vrelease-7, not semver\n"
    )
    assert plain.stdout == odd.stdout == ""


def test_dry_release_with_version_git(git_runs) -> None:
    run, repo = git_runs["release"]
    assert run.returncode == 0, report_of(run)
    assert run.stderr == ""
    lines = run.stdout.splitlines()
    assert lines[0] == (
        "[amd64-generic] would skip this cell if its release key is already published and "
        "verifies, and ubuntu:24.04 has no newer version of its packages"
    )
    assert build_args_of(run)["VERSION"] == "v2.3.4"
    assert "summary" not in run.stdout  # dry runs print plans, not results
    assert not (repo.parent / "artifacts").exists()


def test_reason_names_the_input_that_moved_since_the_published_release(
    stages, make_release
) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    published = plan_for(stages, rel)
    stages.records[cell.id] = {
        **record_for(rel, cell, published.key(cell)),
        "inputs": published.inputs(cell),
    }
    stages.digests = {**DIGESTS, "base": "sha256:" + "9" * 64}  # a base image CVE fix
    (report,) = release.run_release(plan_for(stages, rel), [cell])
    assert report.status == "published"
    assert report.reason == (
        "released: base image digest changed since v0.1.0; rebuilt: no local build"
    )
    assert summary.rows([report])[0]["reason"] == report.reason


# -- refresh: the freshness probe and the package changelog ----------------------------
def sbom_of(*packages: tuple[str, str]) -> str:
    """A CycloneDX SBOM as syft writes it, of deb packages (name, version)."""
    return syft_bom.debs(*packages)


def update(name: str, installed: str, candidate: str) -> Any:
    from kairos_distro import probes

    return probes.Update(name, "amd64", installed, candidate)


def published_cells(stages: Recorder, rel: Release, sbom: str) -> None:
    for cell in rel.cells:
        stages.records[cell.id] = record_for(rel, cell, key_of(rel, cell))
        stages.sboms[cell.id] = sbom


def test_a_published_cell_is_probed_once_with_its_sboms_packages(stages, make_release) -> None:
    rel = make_release(
        {"arch": "amd64"}, {"arch": "amd64", "provider": "k3s", "provider_version": "v1.35.1+k3s1"}
    )
    published_cells(stages, rel, sbom_of(("openssl", "3.0.13-1"), ("zlib1g", "1:1.3-1")))
    reports = release.run_release(plan_for(stages, rel), list(rel.cells))
    assert [r.status for r in reports] == ["up to date", "up to date"]
    probes = [one for one in stages.calls if one[0] == "probe"]
    assert probes == [("probe", "*")]  # one round for every cell
    network, packages = stages.args[("probe", "*")]
    assert network == "host" and sorted(packages) == sorted(c.id for c in rel.cells)
    assert [p.name for p in packages[rel.cells[0].id]] == ["openssl", "zlib1g"]
    assert reports[0].reason == (
        "skipped: inputs unchanged since v0.1.0 (sha256:dddddddddddd…); "
        "no newer packages (apt, 2 packages)"
    )


def test_newer_packages_rebuild_the_cell_from_scratch_and_record_them(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    (cell,) = rel.cells
    published_cells(stages, rel, sbom_of(("openssl", "3.0.13-1")))
    newer = [update("openssl", "3.0.13-1", "3.0.13-2")]
    stages.found[cell.id] = freshness.Found(newer, "apt", 1)
    (report,) = release.run_release(plan_for(stages, rel), [cell])
    assert report.status == "published"
    assert report.reason == (
        "released: package updates since v0.1.0: openssl 3.0.13-1 -> 3.0.13-2; "
        "rebuilt: newer packages"
    )
    # No local build, media or boot test of the same inputs is reused: the image is new.
    assert stages.of(cell) == [
        "read_record", "read_sbom", "build", "iso", "test-boot", "scan", "publish"
    ]  # fmt: skip
    assert stages.fresh == {cell.id}
    assert report.steps == dict.fromkeys(STEPS, "done")
    extra = stages.extras[cell.id]
    assert extra["updates"] == ["openssl:amd64=3.0.13-2"]
    # The new SBOM (the stand-in artifacts list no package) against the published one.
    assert extra["packages"] == {
        "since": "v0.1.0",
        "added": [],
        "removed": [{"package": "openssl", "version": "3.0.13-1"}],
        "upgraded": [],
        "downgraded": [],
    }
    assert report.packages == extra["packages"]


def test_an_update_the_last_release_was_built_with_is_held_back_not_rebuilt(
    stages, make_release
) -> None:
    rel = make_release({"arch": "amd64"})
    (cell,) = rel.cells
    published_cells(stages, rel, sbom_of(("libc6", "2.36-9")))
    stages.records[cell.id]["updates"] = ["libc6:amd64=2.36-10"]
    stages.found[cell.id] = freshness.Found([update("libc6", "2.36-9", "2.36-10")], "apt", 1)
    (report,) = release.run_release(plan_for(stages, rel), [cell])
    assert report.status == "up to date"
    assert report.reason.endswith(
        "; no newer packages (apt, 1 packages); held back since released: libc6"
    ), report.reason


def test_a_failed_probe_fails_its_cell_in_one_line_and_publishes_nothing(
    stages, make_release
) -> None:
    rel = make_release(
        {"arch": "amd64"}, {"arch": "amd64", "provider": "k3s", "provider_version": "v1.35.1+k3s1"}
    )
    published_cells(stages, rel, sbom_of(("openssl", "3.0.13-1")))
    dead = StepError(rel.cells[0].id, "probe", "apt-get update cannot reach http://x/ (refused)")
    stages.found[rel.cells[0].id] = freshness.Found(error=dead)
    plan = plan_for(stages, rel)
    first, second = release.run_release(plan, list(rel.cells))
    assert first.status == "failed"
    assert first.error == "probe: apt-get update cannot reach http://x/ (refused)"
    assert first.steps == {"build": "failed"}
    assert "publish" not in stages.of(rel.cells[0])
    assert second.status == "up to date"  # a failed probe stops its own cell only
    assert f"[{rel.cells[0].id}] FAILED probe: apt-get update cannot reach" in output(plan)


def test_a_record_without_an_sbom_is_released_fresh_once(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    (cell,) = rel.cells
    published_cells(stages, rel, sbom_of())
    stages.sboms[cell.id] = None  # written before records kept their SBOM
    (report,) = release.run_release(plan_for(stages, rel), [cell])
    assert report.reason.startswith(
        "released: the record of v0.1.0 keeps no SBOM to check packages against; rebuilt: "
    )
    assert "probe" not in [stage for stage, _ in stages.calls] and stages.fresh == {cell.id}
    assert report.packages == {}  # nothing to compare with


def test_refresh_inputs_asks_no_mirror(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    published_cells(stages, rel, sbom_of(("openssl", "3.0.13-1")))
    (report,) = release.run_release(plan_for(stages, rel, refresh="inputs"), list(rel.cells))
    assert report.status == "up to date"
    assert report.reason == "skipped: inputs unchanged since v0.1.0 (sha256:dddddddddddd…)"
    assert [stage for stage, _ in stages.calls if stage in ("probe", "read_sbom")] == []


def test_refresh_always_rebuilds_published_cells_fresh(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"}, refresh="inputs")  # --refresh wins over the file
    (cell,) = rel.cells
    published_cells(stages, rel, sbom_of(("openssl", "3.0.13-1")))
    (report,) = release.run_release(plan_for(stages, rel, refresh="always"), [cell])
    assert report.status == "published"
    assert report.reason == "released: refresh: always; rebuilt: refresh: always"
    assert stages.fresh == {cell.id} and "probe" not in [s for s, _ in stages.calls]


def test_the_changelog_compares_the_last_released_sbom(stages, make_release, tmp_path) -> None:
    rel = make_release({"arch": "amd64"})
    (cell,) = rel.cells
    stages.records[cell.id] = record_for(rel, cell, "another key")  # inputs moved
    stages.sboms[cell.id] = sbom_of(("openssl", "3.0.13-1"), ("gone", "1.0"))

    def with_sbom(directory: Path, one: Cell, stamp: str) -> artifacts.Artifacts:
        made = write_artifacts(directory, one, stamp)
        (directory / one.id / f"kairos-{one.id}{naming.SBOM_SUFFIX}").write_text(
            sbom_of(("openssl", "3.0.13-2"), ("new", "2.0"))
        )
        return made

    stages.media[cell.id] = with_sbom
    (report,) = release.run_release(plan_for(stages, rel), [cell])
    assert report.packages == {
        "since": "v0.1.0",
        "added": [{"package": "new", "version": "2.0"}],
        "removed": [{"package": "gone", "version": "1.0"}],
        "upgraded": [{"package": "openssl", "from": "3.0.13-1", "to": "3.0.13-2"}],
        "downgraded": [],
    }
    assert stages.extras[cell.id]["updates"] == []  # no probe ran: its inputs moved


def test_a_first_release_says_so_in_its_changelog(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    (report,) = release.run_release(plan_for(stages, rel), list(rel.cells))
    assert report.packages == {"since": ""}
    assert "read_sbom" not in [stage for stage, _ in stages.calls]


def test_a_probe_that_cannot_start_fails_the_cells_it_was_for(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    (cell,) = rel.cells
    published_cells(stages, rel, sbom_of(("openssl", "3.0.13-1")))
    stages.raises[("probe", "*")] = StepError("base", "resolve", "cannot resolve ubuntu:24.04")
    (report,) = release.run_release(plan_for(stages, rel), [cell])
    assert (report.status, report.error) == ("failed", "resolve: cannot resolve ubuntu:24.04")
    assert "publish" not in stages.of(cell)


# -- scan: each cell's vulnerability report, judged before anything is pushed ----------------

OPENSSL_CVE = vulns.Finding("CVE-2026-0001", "openssl", "3.0.11", "critical", "3.0.13", "deb")
ZLIB_CVE = vulns.Finding("CVE-2026-0002", "zlib1g", "1.2.13", "high", "", "deb")
NET_CVE = vulns.Finding("GHSA-qppj-fm5r-hxr3", "golang.org/x/net", "v0.23.0", "medium", "0.33.0")
NO_SOCKET = "grype needs a local Docker socket (DOCKER_HOST is tcp://docker:2376)"


def found(*findings: vulns.Finding, days: int = 1) -> vulns.Report:
    built = datetime.now(UTC) - timedelta(days=days)
    return vulns.Report(findings, vulns.Database(built, "v6.1.10", VULNDB_SUM))


def test_each_cell_is_scanned_against_the_runs_database_and_its_report_recorded(
    stages, make_release
) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"}, {"arch": "amd64", **K3S})
    first = rel.cells[0]
    stages.scans[first.id] = found(OPENSSL_CVE, ZLIB_CVE)
    plan = plan_for(stages, rel)
    reports = release.run_release(plan, list(rel.cells))
    assert [r.status for r in reports] == ["published"] * 3
    assert stages.databases == 1  # fetched and imported once for every cell
    database = scan.Database(stages.tmp / "vulndb", vulndb.Pin(VULNDB_URL, VULNDB_SUM), False)
    for cell in rel.cells:
        assert stages.args[("scan", cell.id)] == (plan.runner, rel, database, plan.artifacts)
    assert [r.vulnerabilities for r in reports] == [
        "1 critical, 1 high; database 1 day old",
        "none; database 1 day old",
        "none; database 1 day old",
    ]
    assert [r.steps["scan"] for r in reports] == ["done"] * 3
    # The record keeps the whole report: the next release says what it fixed.
    assert stages.extras[first.id]["vulnerabilities"] == vulns.to_record(stages.scans[first.id])
    assert reports[0].vulnerability_changes == {}  # a first release has nothing to compare
    assert summary.rows(reports)[0]["vulnerabilities"] == "1 critical, 1 high; database 1 day old"


def test_a_policy_refusal_fails_only_that_cell_at_scan_and_publishes_nothing(
    stages, make_release
) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"}, vulnerabilities={"fail_on": "high"})
    first, second = rel.cells
    stages.scans[first.id] = found(ZLIB_CVE, NET_CVE)
    stages.scans[second.id] = found(NET_CVE)  # below the line
    plan = plan_for(stages, rel, sigstore=SIGSTORE)
    failed, other = release.run_release(plan, list(rel.cells))
    line = "CVE-2026-0002 (high) in zlib1g 1.2.13, no fix yet: at or above fail_on: high"
    assert (failed.status, failed.error) == ("failed", f"scan: {line}")
    assert failed.steps == {"build": "done", "iso": "done", "test-boot": "done", "scan": "failed"}
    assert "publish" not in stages.of(first) and first.id not in stages.extras
    assert (failed.image, failed.signature) == ("", "")
    assert (
        failed.vulnerabilities == "1 high, 1 medium; database 1 day old"
    )  # the summary still has the counts
    assert f"[{first.id}] FAILED scan: {line}\n" in output(plan)
    assert (other.status, other.vulnerabilities) == ("published", "1 medium; database 1 day old")


def test_an_allow_listed_finding_is_published(stages, make_release) -> None:
    allow = [{"id": ZLIB_CVE.id, "reason": "not built in", "expires": "2999-01-01"}]
    rel = make_release({"arch": "amd64"}, vulnerabilities={"fail_on": "high", "allow": allow})
    stages.scans[rel.cells[0].id] = found(ZLIB_CVE)
    (report,) = release.run_release(plan_for(stages, rel), list(rel.cells))
    assert (report.status, report.vulnerabilities) == ("published", "1 high; database 1 day old")


def test_an_expired_allow_list_entry_fails_every_cell_it_releases(stages, make_release) -> None:
    allow = [{"id": ZLIB_CVE.id, "reason": "not built in", "expires": "2020-01-31"}]
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"}, vulnerabilities={"allow": allow})
    reports = release.run_release(plan_for(stages, rel), list(rel.cells))  # clean reports
    assert {r.error for r in reports} == {
        "scan: vulnerabilities.allow[0]: CVE-2026-0002 expired on 2020-01-31 "
        "(reason was: not built in); remove it or give a new date"
    }
    assert [s for s, _ in stages.calls].count("publish") == 0


def test_vulnerability_changes_compare_the_records_previous_report(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    (cell,) = rel.cells
    stages.records[cell.id] = {
        **record_for(rel, cell, "another key"),  # inputs moved: released again
        "vulnerabilities": vulns.to_record(found(OPENSSL_CVE, ZLIB_CVE)),
    }
    stages.scans[cell.id] = found(ZLIB_CVE, NET_CVE)
    (report,) = release.run_release(plan_for(stages, rel), [cell])
    assert report.status == "published"
    assert report.vulnerability_changes == {
        "fixed": [["CVE-2026-0001", "openssl", "3.0.11", "critical", "3.0.13", "deb"]],
        "new": [["GHSA-qppj-fm5r-hxr3", "golang.org/x/net", "v0.23.0", "medium", "0.33.0", ""]],
    }
    assert summary.vulnerability_lines([report], "fixed") == [
        "CVE-2026-0001 (critical) in openssl 3.0.11, fixed in 3.0.13: amd64-generic"
    ]
    assert stages.extras[cell.id]["vulnerabilities"] == vulns.to_record(stages.scans[cell.id])


@pytest.mark.parametrize(
    "kept",
    [None, {"findings": [["CVE-2026-0001", "openssl", "3.0.11", "catastrophic", "", "deb"]]}],
    ids=["record-before-the-scan", "unreadable"],
)
def test_a_record_without_a_readable_report_compares_nothing(stages, make_release, kept) -> None:
    rel = make_release({"arch": "amd64"})
    (cell,) = rel.cells
    stages.records[cell.id] = {**record_for(rel, cell, "another key"), "vulnerabilities": kept}
    stages.scans[cell.id] = found(NET_CVE)
    (report,) = release.run_release(plan_for(stages, rel), [cell])
    assert (report.status, report.vulnerabilities) == ("published", "1 medium; database 1 day old")
    assert report.vulnerability_changes == {}


def test_without_a_local_docker_socket_the_scan_is_skipped_and_publish_goes_on(
    stages, make_release
) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"})
    stages.database_error = Skip(NO_SOCKET)
    plan = plan_for(stages, rel)
    reports = release.run_release(plan, list(rel.cells))
    assert [r.status for r in reports] == ["published"] * 2
    assert [r.steps["scan"] for r in reports] == [f"skipped: {NO_SOCKET}"] * 2
    assert [r.vulnerabilities for r in reports] == [f"skipped: {NO_SOCKET}"] * 2
    assert stages.databases == 1  # the refusal is asked for once too
    assert "scan" not in [s for s, _ in stages.calls]
    assert all("vulnerabilities" not in extra for extra in stages.extras.values())


def test_with_fail_on_set_a_skipped_scan_fails_the_cell(stages, make_release) -> None:
    rel = make_release(
        {"arch": "amd64"}, {"arch": "arm64"}, vulnerabilities={"fail_on": "critical"}
    )
    stages.database_error = Skip(NO_SOCKET)
    plan = plan_for(stages, rel)
    reports = release.run_release(plan, list(rel.cells))
    assert [(r.status, r.error) for r in reports] == [
        ("failed", f"scan: vulnerabilities.fail_on is set, but the scan cannot run: {NO_SOCKET}")
    ] * 2
    assert [r.steps["scan"] for r in reports] == ["failed"] * 2
    assert [s for s, _ in stages.calls].count("publish") == 0


def test_a_database_that_cannot_be_had_fails_every_cell_at_scan(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"})
    listing = "https://grype.anchore.io/databases/v6/latest.json"
    why = f"vulndb: cannot read the listing {listing} (HTTP 503)"
    stages.database_error = StepError("vulndb", "scan", why)
    plan = plan_for(stages, rel)
    reports = release.run_release(plan, list(rel.cells))
    assert [(r.status, r.error) for r in reports] == [("failed", f"scan: {why}")] * 2
    assert [r.steps.get("scan") for r in reports] == ["failed"] * 2
    assert stages.databases == 1
    assert [s for s, _ in stages.calls].count("publish") == 0


def test_a_report_from_an_old_database_says_so_in_the_summary(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"}, vulnerabilities={"max_age": 7})
    (cell,) = rel.cells
    stages.scans[cell.id] = found(days=30)
    plan = plan_for(stages, rel)
    (report,) = release.run_release(plan, [cell])
    assert report.status == "published"  # loud, not fatal
    assert report.vulnerabilities == "none; database 30 days old, over max_age 7"
    assert (
        f"[{cell.id}] WARNING: vulnerability database is 30 days old (max_age 7): "
        "run `invoke bump vulndb`\n"
    ) in output(plan)


def test_up_to_date_cells_show_the_counts_the_record_kept(stages, make_release) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"}, {"arch": "amd64", **K3S})
    first, second, third = rel.cells
    stages.records[first.id] = {
        **record_for(rel, first, key_of(rel, first)),
        "vulnerabilities": vulns.to_record(found(OPENSSL_CVE, ZLIB_CVE)),
    }
    stages.records[second.id] = record_for(rel, second, key_of(rel, second))  # before the scan
    stages.records[third.id] = {  # a record this version cannot count: no crash, no counts
        **record_for(rel, third, key_of(rel, third)),
        "vulnerabilities": {"findings": [["CVE-1-2", "x", "1", "catastrophic", "", "deb"]]},
    }
    reports = release.run_release(plan_for(stages, rel), list(rel.cells))
    assert [r.status for r in reports] == ["up to date"] * 3
    assert [r.vulnerabilities for r in reports] == ["1 critical, 1 high (when released)", "", ""]
    assert [r.steps["scan"] for r in reports] == ["up to date"] * 3
    assert stages.databases == 0  # nothing to scan: nothing fetched
    assert [r.vulnerability_changes for r in reports] == [{}, {}, {}]

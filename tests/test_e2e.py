"""End to end, offline, on the real engine: bake debian:12, build, ISO, publish.

Stand-ins replace the upstream kairos-init and AuroraBoot images (which cannot
be pulled here); everything else is real: BuildKit, the registry on
127.0.0.1, the pull back.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import run
from tests.support.bake import bake, retarget
from tests.support.registry import LocalRegistry
from tests.support.standins import docker_cli

TAG = "12-core-amd64-generic-v0.1.0"
ISO = "kairos-debian-12-core-amd64-generic-v0.1.0.iso"
CELL = "amd64-generic"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> LocalRegistry:
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return {"INVOKE_KAIROS_NETWORK": "host", "INVOKE_KAIROS_DOCKER_CLI": docker_cli()}


@pytest.fixture(scope="module")
def repo(tmp_path_factory, standins, registry, env) -> Path:
    """A debian:12 repo pointed at the stand-ins and the local registry, built once."""
    path = bake(
        tmp_path_factory.mktemp("bake"), base_image="debian:12", registry=f"{registry.host}/kdt"
    )
    retarget(path, **standins)
    out = run(path, "invoke", "build", **env).stdout
    assert f"built {registry.host}/kdt/debian:{TAG}" in out
    return path


def layer_paths(docker_client, ref: str) -> set[str]:
    """Every path in every layer of an image."""
    blob = b"".join(docker_client.images.get(ref).save(named=False))
    names: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(blob)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                names.update(m.name.lstrip("./") for m in inner.getmembers())
    return names


def test_build_names_the_image_from_its_kairos_release(repo, docker_client, registry) -> None:
    image = docker_client.images.get(f"{registry.host}/kdt/debian:{TAG}")
    labels = image.labels
    assert labels["org.opencontainers.image.version"] == "v0.1.0"
    assert labels["org.opencontainers.image.base.name"] == "kdt-standin/debian:12"
    assert labels["org.opencontainers.image.base.digest"].startswith("sha256:")
    assert labels["io.kairos.init.image"].startswith("kdt-standin/kairos-init:")
    assert labels["org.opencontainers.image.source"].endswith("/my-org-kairos-debian")


def test_no_kairos_init_in_any_layer(repo, docker_client, registry) -> None:
    paths = layer_paths(docker_client, f"{registry.host}/kdt/debian:{TAG}")
    assert "boot/vmlinuz" in paths and "etc/kairos-release" in paths
    assert not [p for p in paths if p.endswith("kairos-init")]


def test_iso_matches_its_checksum(repo, env) -> None:
    run(repo, "invoke", "iso", **env)
    cell_dir = repo / "artifacts" / CELL
    assert sorted(p.name for p in cell_dir.iterdir()) == [ISO, f"{ISO}.sha256"]
    digest, name = (cell_dir / f"{ISO}.sha256").read_text().split()
    assert name == ISO
    assert hashlib.sha256((cell_dir / ISO).read_bytes()).hexdigest() == digest
    assert (cell_dir / ISO).read_bytes()[0x8001:0x8006] == b"CD001"  # ISO 9660
    assert not [p for p in (repo / "artifacts").iterdir() if p.name.startswith(".")]


BOOT_ENV = {"INVOKE_KAIROS_BOOT_ACCEL": "tcg"}  # KVM guests hang on these machines


def qemu_running(iso: Path) -> bool:
    return subprocess.run(["pgrep", "-f", str(iso)], capture_output=True).returncode == 0


def test_iso_boots_into_the_live_system(repo, env) -> None:
    out = run(repo, "invoke", "test-boot", **env, **BOOT_ENV).stdout
    for check in ("console marker", "ssh echo ping", "boot state"):
        assert f"pass {check}" in out, out
    iso = repo / "artifacts" / CELL / ISO
    assert not qemu_running(iso)
    log = iso.with_name(ISO.removesuffix(".iso") + ".serial.log").read_text()
    assert "kairos login:" in log


def boot_failure(repo: Path, env: dict, iso: Path, timeout: int) -> str:
    proc = run(
        repo,
        "invoke",
        "test-boot",
        "--iso",
        str(iso),
        "--timeout",
        str(timeout),
        check=False,
        **env,
        **BOOT_ENV,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert not qemu_running(iso)
    assert iso.with_name(iso.stem + ".serial.log").exists()
    return line


def test_iso_that_never_boots_fails_within_the_timeout(repo, env, tmp_path) -> None:
    from tests.support.standins import unbootable_iso

    iso = unbootable_iso(tmp_path / "noboot.iso")
    line = boot_failure(repo, env, iso, timeout=20)
    assert "test-boot: console never showed 'login:' (timed out after 20 s)" in line


def test_ssh_that_never_answers_fails(repo, env, tmp_path, docker_client, standins) -> None:
    from tests.support.standins import fault_iso

    image = f"kairos-local/my-org-kairos-debian:{CELL}"
    iso = fault_iso(docker_client, standins["auroraboot"], image, tmp_path / "nossh", "nossh")
    line = boot_failure(repo, env, iso, timeout=45)
    assert "test-boot: SSH as kairos never answered" in line


def test_wrong_boot_state_fails(repo, env, tmp_path, docker_client, standins) -> None:
    from tests.support.standins import fault_iso

    image = f"kairos-local/my-org-kairos-debian:{CELL}"
    iso = fault_iso(docker_client, standins["auroraboot"], image, tmp_path / "state", "wrongstate")
    line = boot_failure(repo, env, iso, timeout=120)
    assert "test-boot: boot state: expected 'livecd_boot', got 'active_boot'" in line


def test_failed_iso_keeps_the_previous_artifacts(repo, env, standins) -> None:
    before = (repo / "artifacts" / CELL / f"{ISO}.sha256").read_text()
    retarget(repo, auroraboot=standins["base_image"])  # no AuroraBoot in it: fails
    try:
        proc = run(repo, "invoke", "iso", check=False, **env)
    finally:
        retarget(repo, auroraboot=standins["auroraboot"])
    assert proc.returncode == 1
    assert "amd64-generic: iso: AuroraBoot did not start" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert (repo / "artifacts" / CELL / f"{ISO}.sha256").read_text() == before
    assert not [p for p in (repo / "artifacts").iterdir() if p.name.startswith(".")]


def test_publish_then_pull_back(repo, env, registry, docker_client) -> None:
    out = run(repo, "invoke", "publish", **env).stdout
    assert f"pushed {registry.host}/kdt/debian@sha256:" in out
    assert registry.tags("kdt/debian") == [TAG]
    ref = f"{registry.host}/kdt/debian:{TAG}"
    docker_client.images.remove(ref)
    pulled = docker_client.images.pull(ref)
    release = docker_client.containers.run(
        pulled.id, ["cat", "/etc/kairos-release"], remove=True, network_mode="none"
    ).decode()
    assert 'KAIROS_FLAVOR="debian"' in release
    assert 'KAIROS_FLAVOR_RELEASE="12"' in release
    assert 'KAIROS_VERSION="v0.1.0"' in release
    assert pulled.labels["org.opencontainers.image.version"] == "v0.1.0"


def test_dead_registry_leaves_no_tag(repo, env, tmp_path) -> None:
    dead = LocalRegistry(tmp_path / "dead")  # never started: connection refused
    retarget(repo, registry=dead.host)
    proc = run(repo, "invoke", "publish", check=False, **env)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert f"amd64-generic: publish: registry {dead.host} unreachable" in line
    with dead:
        assert dead.tags("kdt/debian") == []


def test_registry_stopping_mid_run_keeps_the_old_tag(repo, env, registry) -> None:
    """A publish that fails after an earlier success leaves the old tag as it was."""
    retarget(repo, registry=registry.host)
    old = registry.tags("kdt/debian")
    registry.stop()
    try:
        proc = run(repo, "invoke", "publish", check=False, **env)
    finally:
        registry.start()
    assert proc.returncode == 1 and "unreachable" in proc.stderr
    assert registry.tags("kdt/debian") == old


SECRET = "pa55-w0rd-never-printed"


@pytest.fixture
def locked(tmp_path) -> LocalRegistry:
    with LocalRegistry(tmp_path / "locked", login=("kdt", SECRET)) as reg:
        yield reg


def test_publish_needs_a_login_and_never_prints_it(repo, env, locked, tmp_path) -> None:
    retarget(repo, registry=locked.host)
    refused = run(repo, "invoke", "publish", check=False, DOCKER_CONFIG=str(tmp_path), **env)
    assert refused.returncode == 1
    assert f"registry {locked.host} needs a login" in refused.stderr
    assert locked.tags("kdt/debian") == []

    creds = {"KAIROS_REGISTRY_USERNAME": "kdt", "KAIROS_REGISTRY_PASSWORD": SECRET}
    done = run(repo, "invoke", "publish", DOCKER_CONFIG=str(tmp_path), **creds, **env)
    assert SECRET not in done.stdout + done.stderr
    assert locked.tags("kdt/debian") == [TAG]


def test_publish_reads_the_docker_config_login(repo, env, locked, tmp_path) -> None:
    import base64

    token = base64.b64encode(f"kdt:{SECRET}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {locked.host: {"auth": token}}}))
    retarget(repo, registry=locked.host)
    done = run(repo, "invoke", "publish", DOCKER_CONFIG=str(tmp_path), **env)
    assert SECRET not in done.stdout + done.stderr
    assert locked.tags("kdt/debian") == [TAG]

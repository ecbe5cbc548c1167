"""End to end, offline: a board's raw disk image and a trusted-boot UKI ISO.

An arm64 rpi4 cell is built under qemu-user emulation from the arm64 Debian
stand-in, gets a raw disk image (GPT, checksum) and an SBOM, and is published
with the raw image beside it as `<tag>-img`, signed. A trusted-boot cell gets
the owner's keys from `invoke keys` (AuroraBoot stand-in's genkey) and a UKI
ISO whose signature sbverify accepts with the owner's certificate only. Keys
never reach an image layer, a log or git.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import run
from tests.support.bake import bake, retarget, set_signing
from tests.support.efi import ESP_TYPE, esp_of, gpt_partitions, mcopy, sbverify
from tests.support.registry import LocalRegistry
from tests.support.sigstore_local import IDENTITY, ISSUER, LocalSigstore
from tests.support.standins import fault_iso

# Docker engine, QEMU, the pinned clients: what .ci/setup provides (`nox -s fast` skips these).
pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]  # local image names of this run alone
BOARD, UKI, ARM64 = "arm64-rpi4", "amd64-generic-uki", "arm64-generic"
BOARD_NAME = "kairos-debian-12-core-arm64-rpi4-v0.1.0"
BOARD_TAG = "12-core-arm64-rpi4-v0.1.0"
UKI_ISO = "kairos-debian-12-core-amd64-generic-v0.1.0-uki.iso"
# The engine here refuses --privileged (no CAP_SYS_RESOURCE); the stand-in needs none.
NO_PRIVILEGE = {"INVOKE_KAIROS_PRIVILEGED": "false"}


@pytest.fixture(scope="module")
def env(env, tmp_path_factory) -> dict[str, str]:
    # The boots' work directories go under a TMPDIR of this module's own, so the
    # leak checks see only what these runs made, not another run on the machine.
    tmp = tmp_path_factory.mktemp("tmp")
    return {**env, **NO_PRIVILEGE, "TMPDIR": str(tmp)}


def baked(tmp: Path, registry: LocalRegistry, sigstore: LocalSigstore, **answers: str) -> Path:
    path = bake(tmp, base_image="debian:12", registry=f"{registry.host}/kdt", **answers)
    set_signing(
        path, enabled=True, trust=str(sigstore.trust_config), identity=IDENTITY, issuer=ISSUER
    )
    return path


@contextlib.contextmanager
def removed_after(client: docker.DockerClient, *refs: str) -> Iterator[None]:
    try:
        yield
    finally:
        for ref in refs:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(ref, force=True)


@pytest.fixture(scope="module")
def arm64_repo(tmp_path_factory, standins, arm64_standins, registry, sigstore):
    """make(name, model) -> (project, path): an arm64 repo on the arm64 stand-ins."""

    def make(name: str, model: str) -> tuple[str, Path]:
        project = f"kdt-{name}-{RUN}"
        tmp = tmp_path_factory.mktemp(name)
        path = baked(tmp, registry, sigstore, project=project, architectures="arm64", model=model)
        tools = {k: standins[k] for k in ("auroraboot", "syft", "grype", "vulndb")}
        retarget(path, **arm64_standins, **tools)
        return project, path

    return make


# -- a board: raw disk image ------------------------------------------------------------
@pytest.fixture(scope="module")
def board(arm64_repo, env, docker_client) -> Iterator[Path]:
    """An arm64 rpi4 repo, built under emulation, with its artifacts made."""
    project, path = arm64_repo("board", "rpi4")
    with removed_after(docker_client, f"kairos-local/{project}:{BOARD}"):
        run(path, "invoke", "build", **env)
        out = run(path, "invoke", "iso", **env).stdout
        assert f"[{BOARD}] AuroraBoot: making the raw ({BOARD_NAME}.raw)" in out
        yield path


def test_board_gets_a_raw_disk_image_with_its_checksum(board) -> None:
    cell = board / "artifacts" / BOARD
    names = sorted(p.name for p in cell.iterdir())
    assert names == [f"{BOARD_NAME}.cdx.json", f"{BOARD_NAME}.raw", f"{BOARD_NAME}.raw.sha256"]
    raw = cell / f"{BOARD_NAME}.raw"
    digest, name = (cell / f"{raw.name}.sha256").read_text().split()
    assert name == raw.name
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == digest
    parts = gpt_partitions(raw)
    assert parts[0]["type"] == ESP_TYPE and len(parts) >= 2
    assert all(p["start"] + p["size"] <= raw.stat().st_size for p in parts)


def test_board_image_is_arm64_and_its_sbom_matches_dpkg(board, docker_client) -> None:
    from packageurl import PackageURL

    image = docker_client.images.get(f"kairos-local/kdt-board-{RUN}:{BOARD}")
    assert image.attrs["Architecture"] == "arm64"
    bom = json.loads((board / "artifacts" / BOARD / f"{BOARD_NAME}.cdx.json").read_text())
    listed = {
        (p.name, p.version, p.qualifiers["arch"])
        for p in (PackageURL.from_string(c["purl"]) for c in bom["components"] if "purl" in c)
        if p.type == "deb"
    }
    fmt = "${db:Status-Status} ${Package} ${Version} ${Architecture}\\n"
    out = docker_client.containers.run(
        image.id, ["dpkg-query", "-W", "-f", fmt], remove=True, network_mode="none"
    ).decode()  # runs under qemu-user: the image's own dpkg, on its own database
    rows = [line.split() for line in out.splitlines()]
    installed = {(n, v, a) for status, n, v, a in rows if status == "installed"}
    assert listed == installed
    assert ("busybox-static", "arm64") in {(n, a) for n, _, a in installed}


def layer_files(client: docker.DockerClient, ref: str) -> dict[str, bytes]:
    """The regular files in an image's layers (path -> bytes)."""
    blob = b"".join(client.images.get(ref).save(named=False))
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(blob)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                for member in inner.getmembers():
                    if member.isfile():
                        files[member.name.lstrip("./")] = inner.extractfile(member).read()
    return files


def test_release_publishes_the_raw_image_as_img_signed(board, env, registry, docker_client) -> None:
    out = run(board, "invoke", "release", **env).stdout
    assert f"verified signature of {registry.host}/kdt/debian@sha256:" in out
    assert "(raw disk image)" in out and "verified SBOM attestation (" in out
    summary = json.loads((board / "artifacts" / "release-summary.json").read_text())
    (cell,) = summary["cells"]
    assert cell["status"] == "published"
    assert cell["media"] == f"raw (+ {BOARD_TAG}-img), sbom"
    assert cell["boot"].startswith("skipped: boards boot from their raw disk image")
    assert f"{BOARD_TAG}-img" in registry.tags("kdt/debian")
    # The factory's recipe gets the file back: docker create, then copy /artifacts/.
    ref = f"{registry.host}/kdt/debian:{BOARD_TAG}-img"
    with removed_after(docker_client, ref):
        pulled = docker_client.images.pull(ref)
        assert pulled.attrs["Architecture"] == "arm64"
        files = layer_files(docker_client, ref)
    raw = board / "artifacts" / BOARD / f"{BOARD_NAME}.raw"
    assert list(files) == [f"artifacts/{raw.name}"]
    assert files[f"artifacts/{raw.name}"] == raw.read_bytes()
    verified = run(board, "invoke", "verify", **env).stdout
    assert "(raw disk image)" in verified


def test_crane_and_cosign_read_the_img_artifact_back(board, registry, sigstore, tmp_path) -> None:
    """crane exports the -img artifact by digest: the raw image, byte for byte; cosign
    verifies its signature."""
    from tests.support.clients import call, cosign_argv, cosign_env, tool, trusted_root

    name = f"{registry.host}/kdt/debian"
    resolved = call([tool("crane"), "digest", f"{name}:{BOARD_TAG}-img"])
    assert resolved.returncode == 0, resolved.stderr
    ref = f"{name}@{resolved.stdout.strip()}"
    tar = tmp_path / "img.tar"
    exported = call([tool("crane"), "export", ref, tar])
    assert exported.returncode == 0, exported.stderr
    raw = board / "artifacts" / BOARD / f"{BOARD_NAME}.raw"
    with tarfile.open(tar) as archive:
        member = archive.getmember(f"artifacts/{raw.name}")
        assert archive.extractfile(member).read() == raw.read_bytes()
    root = trusted_root(sigstore.trust_config, tmp_path / "trusted_root.json")
    argv = cosign_argv("cosign", "verify", root, IDENTITY, ISSUER, ref)
    verified = call(argv, cosign_env(tmp_path / "home"))
    assert verified.returncode == 0, verified.stderr


# -- trusted boot: the owner's keys and a signed UKI ISO ------------------------------------
@pytest.fixture(scope="module")
def trusted(tmp_path_factory, standins, registry, sigstore, env, docker_client) -> Iterator[Path]:
    """An amd64 trusted-boot repo in git, built, with keys made by `invoke keys`."""
    project = f"kdt-uki-{RUN}"
    path = baked(
        tmp_path_factory.mktemp("uki"), registry, sigstore, project=project, trusted_boot=True
    )
    retarget(path, **standins)
    # Six checks in all: one SSH connection serves them (dropbear limits open channels).
    conf = path / "release.yaml"
    conf.write_text(conf.read_text().replace("boot_checks: []\n", UKI_CHECKS, 1))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-qm", "baked"], cwd=path, check=True)
    with removed_after(docker_client, f"kairos-local/{project}:{UKI}"):
        run(path, "invoke", "build", **env)
        yield path


UKI_CHECKS = """boot_checks:
  - run: "cat /proc/cmdline"
    expect: "rd.immucore.uki"
  - run: "uname -m"
    expect: "x86_64"
"""
LOGS: list[str] = []  # every output of the trusted-boot tasks, checked for key material


def logged(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    LOGS.append(proc.stdout + proc.stderr)
    return proc


def test_iso_without_keys_is_one_line_naming_the_gap(trusted, env) -> None:
    proc = logged(run(trusted, "invoke", "iso", check=False, **env))
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line == (
        f"iso: 1 of 1 cells failed; first: {UKI}: iso: keys: no key directory keys "
        "(run `invoke keys`, or set KAIROS_KEYS in CI)"
    )
    assert not (trusted / "artifacts" / UKI).exists()


def test_keys_makes_a_private_git_ignored_key_set(trusted, env) -> None:
    out = logged(run(trusted, "invoke", "keys", **env)).stdout
    assert "wrote a key set to keys/" in out
    keys = trusted / "keys"
    assert keys.stat().st_mode & 0o777 == 0o700
    assert (keys / "db.key").stat().st_mode & 0o777 == 0o600
    assert {"db.key", "db.pem", "tpm2-pcr-private.pem", "PK.auth", "KEK.auth", "db.auth"} <= {
        p.name for p in keys.iterdir()
    }
    ignored = subprocess.run(["git", "check-ignore", "keys/db.key"], cwd=trusted, check=False)
    assert ignored.returncode == 0
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored=no"],
        cwd=trusted,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "keys" not in status.stdout
    again = logged(run(trusted, "invoke", "keys", check=False, **env))
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "keys: keys already holds keys; machines enrolled with them would refuse new ones, "
        "so move it away first to make a new set"
    )


def uki_of(trusted: Path, tmp: Path) -> Path:
    iso = trusted / "artifacts" / UKI / UKI_ISO
    esp = esp_of(iso, tmp / "esp.img")
    name = UKI_ISO.removesuffix("-uki.iso")
    return mcopy(str(esp), f"/EFI/Linux/{name}.efi", tmp / "uki.efi")


def test_uki_iso_is_signed_with_the_owners_key_only(trusted, env, tmp_path) -> None:
    out = logged(run(trusted, "invoke", "iso", **env)).stdout
    assert f"AuroraBoot: making the uki ({UKI_ISO})" in out
    cell = trusted / "artifacts" / UKI
    assert sorted(p.name for p in cell.iterdir()) == sorted(
        [UKI_ISO, f"{UKI_ISO}.sha256", UKI_ISO.replace("-uki.iso", "-uki.cdx.json")]
    )
    digest, _ = (cell / f"{UKI_ISO}.sha256").read_text().split()
    assert hashlib.sha256((cell / UKI_ISO).read_bytes()).hexdigest() == digest
    uki = uki_of(trusted, tmp_path)
    accepted = sbverify(trusted / "keys" / "db.pem", uki)
    assert accepted.returncode == 0, accepted.stderr
    # Another owner's certificate (a second genkey set) does not accept it.
    other = tmp_path / "other"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=other",
            "-keyout",
            str(tmp_path / "other.key"),
            "-out",
            str(other),
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    refused = sbverify(other, uki)
    assert refused.returncode != 0


TCG = {"INVOKE_KAIROS_BOOT_ACCEL": "tcg"}


def left_behind(env: dict[str, str]) -> list[str]:
    """QEMU or swtpm processes, or boot work directories, still there after a boot.

    Both are the runs' own: the work directories live in env's TMPDIR, and the
    processes' command lines name their files there.
    """
    tmp = env["TMPDIR"]
    procs = subprocess.run(["pgrep", "-af", tmp], capture_output=True, text=True)
    work = [str(p) for p in Path(tmp).glob("kairos-boot-*")]
    return procs.stdout.splitlines() + work


def test_trusted_release_enrolls_the_keys_and_boots_under_secure_boot(trusted, env) -> None:
    """OVMF in setup mode: the ISO's systemd-boot enrolls the owner's keys, resets, and
    the signed UKI boots under enforced Secure Boot with swtpm's TPM 2.0."""
    proc = logged(run(trusted, "invoke", "release", "--cell", UKI, **{**env, **TCG}))
    checks = ("ssh echo ping", "boot state", "secure boot", "tpm", "cat /proc/cmdline", "uname -m")
    for check in ("console marker", *checks):
        assert f"pass {check}" in proc.stdout, proc.stdout
    summary = json.loads((trusted / "artifacts" / "release-summary.json").read_text())
    (cell,) = summary["cells"]
    assert (cell["cell"], cell["status"]) == (UKI, "published")
    assert cell["boot"].startswith("passed (tcg, "), cell["boot"]
    log = next((trusted / "artifacts" / UKI).glob("*.serial.log")).read_text()
    # systemd-boot's and the kernel's own words, not our checks'.
    assert "Enrolling secure boot keys from directory: \\loader\\keys\\auto" in log
    assert "secureboot: Secure boot enabled" in log
    assert not left_behind(env)


def test_missing_key_file_is_named_and_keeps_the_uki(trusted, env) -> None:
    keys = trusted / "keys"
    before = (trusted / "artifacts" / UKI / f"{UKI_ISO}.sha256").read_text()
    (keys / "db.key").rename(trusted / "db.key.away")
    try:
        proc = logged(run(trusted, "invoke", "iso", check=False, **env))
    finally:
        (trusted / "db.key.away").rename(keys / "db.key")
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.endswith(
        f"{UKI}: iso: keys: keys/db.key is missing (run `invoke keys`, or set KAIROS_KEYS in CI)"
    )
    assert (trusted / "artifacts" / UKI / f"{UKI_ISO}.sha256").read_text() == before


def test_ci_secret_carries_the_keys(trusted, env, tmp_path) -> None:
    """`invoke keys --export` is the KAIROS_KEYS secret; with it, no keys/ is needed."""
    secret = run(trusted, "invoke", "keys", "--export", **env).stdout.strip()
    shutil.move(trusted / "keys", tmp_path / "keys")
    try:
        proc = logged(run(trusted, "invoke", "iso", KAIROS_KEYS=secret, **env))
    finally:
        shutil.move(tmp_path / "keys", trusted / "keys")
    assert secret not in proc.stdout + proc.stderr
    accepted = sbverify(trusted / "keys" / "db.pem", uki_of(trusted, tmp_path))
    assert accepted.returncode == 0, accepted.stderr


def test_uki_of_other_keys_is_refused_by_firmware_enrolled_with_the_owners(
    trusted, env, tmp_path
) -> None:
    """The owner's fleet: OVMF enrolled with their PK, KEK and db (by virt-fw-vars, as
    Kairos's own suite makes its stores). A UKI ISO made with another key set fails."""
    keys, guid = trusted / "keys", str(uuid.uuid4())
    enrolled = tmp_path / "enrolled.fd"
    subprocess.run(
        [
            "virt-fw-vars",
            *("-i", "/usr/share/OVMF/OVMF_VARS_4M.fd", "-o", str(enrolled), "--sb"),
            *("--set-pk", guid, str(keys / "PK.pem")),
            *("--add-kek", guid, str(keys / "KEK.pem")),
            *("--add-db", guid, str(keys / "db.pem")),
        ],
        check=True,
        capture_output=True,
    )
    other = {**env, "INVOKE_KAIROS_KEYS": str(tmp_path / "other-keys")}
    logged(run(trusted, "invoke", "keys", **other))
    logged(run(trusted, "invoke", "iso", "--cell", UKI, **other))
    fleet = {**env, **TCG, "INVOKE_KAIROS_BOOT_UEFI_VARS": str(enrolled)}
    proc = logged(run(trusted, "invoke", "test-boot", "--cell", UKI, check=False, **fleet))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert f"{UKI}: test-boot: Secure Boot refused to run it" in line, line
    assert "Access Denied" in line and "serial log:" in line, line
    assert not left_behind(env)


def test_keys_never_reach_an_image_layer_or_a_log(trusted, docker_client) -> None:
    keys = trusted / "keys"
    secrets = [(keys / n).read_bytes() for n in ("db.key", "tpm2-pcr-private.pem", "PK.key")]
    files = layer_files(docker_client, f"kairos-local/kdt-uki-{RUN}:{UKI}")
    assert "etc/kairos-release" in files
    for data in files.values():
        assert not any(secret in data for secret in secrets)
    assert LOGS and not [log for log in LOGS if "PRIVATE KEY" in log]
    body = secrets[0].decode().splitlines()[1]  # a line of the key itself
    assert not [log for log in LOGS if body in log]


# -- an arm64 generic cell: its ISO boots under qemu-system-aarch64 -------------------------
def test_arm64_generic_iso_boots_and_passes_its_checks(
    arm64_repo, standins, env, docker_client
) -> None:
    """Built under emulation, its EFI ISO booted on QEMU's virt machine (TCG, UEFI firmware)."""
    project, path = arm64_repo("arm64", "generic")
    image = f"kairos-local/{project}:{ARM64}"
    with removed_after(docker_client, image):
        run(path, "invoke", "release", **{**env, **TCG})
        # Also an ISO whose live system's init dies (the stand-in's test-only fault).
        iso = fault_iso(docker_client, standins["auroraboot"], image, path / "panic", "panic")
    summary = json.loads((path / "artifacts" / "release-summary.json").read_text())
    (cell,) = summary["cells"]
    assert (cell["cell"], cell["status"]) == (ARM64, "published")
    assert cell["boot"].startswith("passed (tcg, "), cell["boot"]
    log = next((path / "artifacts" / ARM64).glob("*.serial.log")).read_text()
    assert "(kairos-init STAND-IN live system)" in log and "kairos login:" in log
    # The kernel's panic fails the boot at once, not at the timeout.
    argv = ["invoke", "test-boot", "--cell", ARM64, "--iso", str(iso)]
    proc = run(path, *argv, check=False, **{**env, **TCG})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert f"{ARM64}: test-boot: the kernel panicked: Kernel panic - not syncing" in line, line
    assert not left_behind(env)

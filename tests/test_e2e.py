"""End to end, offline, on the real engine: bake debian:12, build, ISO, publish.

Stand-ins replace the upstream kairos-init and AuroraBoot images (which cannot
be pulled here); everything else is real: BuildKit, the registry on
127.0.0.1, the pull back.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from tests.conftest import run
from tests.support.bake import bake, retarget, set_signing
from tests.support.registry import FaultProxy, LocalRegistry
from tests.support.sigstore_local import IDENTITY, ISSUER, LocalSigstore

# Docker engine, QEMU, the pinned clients: what .ci/setup provides (`nox -s fast` skips these).
pytestmark = pytest.mark.e2e

TAG = "12-core-amd64-generic-v0.1.0"
ISO = "kairos-debian-12-core-amd64-generic-v0.1.0.iso"
SBOM = "kairos-debian-12-core-amd64-generic-v0.1.0.cdx.json"
CYCLONEDX = "https://cyclonedx.org/bom"
VULN = "https://cosign.sigstore.dev/attestation/vuln/v1"
CELL = "amd64-generic"
PROJECT = f"kdt-e2e-{uuid.uuid4().hex[:8]}"  # local image names of this run alone
COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"


def sign_with(repo: Path, local: LocalSigstore, identity: str = IDENTITY) -> None:
    set_signing(repo, enabled=True, trust=str(local.trust_config), identity=identity, issuer=ISSUER)


@pytest.fixture(scope="module")
def repo(tmp_path_factory, standins, registry, env, sigstore, docker_client) -> Iterator[Path]:
    """A debian:12 repo pointed at the stand-ins, the local registry and Sigstore, built once."""
    path = bake(
        tmp_path_factory.mktemp("bake"),
        base_image="debian:12",
        project=PROJECT,
        registry=f"{registry.host}/kdt",
    )
    retarget(path, **standins)
    sign_with(path, sigstore)
    out = run(path, "invoke", "build", **env).stdout
    assert f"built {registry.host}/kdt/debian:{TAG}" in out
    yield path
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(f"kairos-local/{PROJECT}:{CELL}", force=True)


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
    assert labels["org.opencontainers.image.source"].endswith(f"/{PROJECT}")


def test_no_kairos_init_in_any_layer(repo, docker_client, registry) -> None:
    paths = layer_paths(docker_client, f"{registry.host}/kdt/debian:{TAG}")
    assert "boot/vmlinuz" in paths and "etc/kairos-release" in paths
    assert not [p for p in paths if p.endswith("kairos-init")]


def test_built_image_passes_validate_with_lsinitrd(repo, docker_client, registry) -> None:
    """validate.go's checks, rerun in the built image: the initrd check really ran
    (lsinitrd from dracut-core), and every kairos-release key upstream writes is there."""
    from tests.support.standins import go_binary

    log = docker_client.containers.run(
        f"{registry.host}/kdt/debian:{TAG}",
        ["/kairos-init", "validate", "-t", "false"],
        volumes={str(go_binary("kairos-init", "amd64")): {"bind": "/kairos-init", "mode": "ro"}},
        network_mode="none",
        remove=True,
        stderr=True,
    ).decode()
    assert "validation passed" in log
    assert "[INITRD] found immucore in the initrd" in log
    assert "[INITRD] found kairos-agent in the initrd" in log
    assert "lsinitrd not found" not in log
    release = docker_client.containers.run(
        f"{registry.host}/kdt/debian:{TAG}",
        ["cat", "/etc/kairos-release"],
        network_mode="none",
        remove=True,
    ).decode()
    assert 'KAIROS_BUG_REPORT_URL="https://github.com/kairos-io/kairos/issues"' in release
    assert 'KAIROS_HOME_URL="https://github.com/kairos-io/kairos"' in release
    assert 'KAIROS_FLAVOR="debian"' in release and 'KAIROS_FAMILY="debian"' in release


def test_iso_matches_its_checksum(repo, env) -> None:
    run(repo, "invoke", "iso", **env)
    cell_dir = repo / "artifacts" / CELL
    assert sorted(p.name for p in cell_dir.iterdir()) == [SBOM, ISO, f"{ISO}.sha256"]
    digest, name = (cell_dir / f"{ISO}.sha256").read_text().split()
    assert name == ISO
    assert hashlib.sha256((cell_dir / ISO).read_bytes()).hexdigest() == digest
    assert (cell_dir / ISO).read_bytes()[0x8001:0x8006] == b"CD001"  # ISO 9660
    assert not [p for p in (repo / "artifacts").iterdir() if p.name.startswith(".")]


def installed_packages(docker_client, image: str) -> set[tuple[str, str, str]]:
    """(name, version, arch) of what dpkg says is installed, asked inside the image."""
    fmt = "${db:Status-Status} ${Package} ${Version} ${Architecture}\\n"
    out = docker_client.containers.run(
        image, ["dpkg-query", "-W", "-f", fmt], remove=True, network_mode="none"
    ).decode()
    rows = [line.split() for line in out.splitlines()]
    return {(name, version, arch) for status, name, version, arch in rows if status == "installed"}


def test_sbom_lists_what_dpkg_lists_in_the_image(repo, docker_client) -> None:
    from packageurl import PackageURL

    bom = json.loads((repo / "artifacts" / CELL / SBOM).read_text())
    assert bom["bomFormat"] == "CycloneDX"
    debs = [c for c in bom["components"] if c.get("purl", "").startswith("pkg:deb/")]
    purls = [PackageURL.from_string(c["purl"]) for c in debs]
    # syft names the distro as precisely as the image does (/etc/debian_version: 12.x)
    assert {p.namespace for p in purls} == {"debian"}
    assert all(p.qualifiers["distro"].startswith("debian-12") for p in purls)
    listed = {(p.name, p.version, p.qualifiers["arch"]) for p in purls}
    assert [(c["name"], c["version"]) for c in debs] == [(p.name, p.version) for p in purls]
    systems = [c for c in bom["components"] if c["type"] == "operating-system"]
    # The distro grype matches advisories against: Debian 12 (the point release, 12.x, too)
    assert [(c["name"], c["version"].split(".")[0]) for c in systems] == [("debian", "12")]
    expected = installed_packages(docker_client, f"kairos-local/{PROJECT}:{CELL}")
    assert len(expected) > 50  # a real package database, not a toy
    assert listed == expected


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


def test_sigterm_stops_the_boot_and_leaves_nothing(repo, env, tmp_path) -> None:
    """`timeout`, a service manager or a CI cancel: QEMU and the work files go too."""
    tmp = tmp_path / "tmp"  # the boot's work directory lands here, and QEMU's argv names it
    tmp.mkdir()
    proc = subprocess.Popen(
        ["invoke", "test-boot"],
        cwd=repo,
        env={**os.environ, **env, **BOOT_ENV, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert any("booting " in line for line in proc.stdout)  # reads up to QEMU's start
    deadline = time.monotonic() + 30
    while not named(tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert named(tmp), "QEMU never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip().splitlines() == ["stopped by SIGTERM"]
    assert not named(tmp)
    assert not list(tmp.iterdir())


def named(tmp: Path) -> list[str]:
    """Processes whose command line names `tmp`."""
    found = subprocess.run(["pgrep", "-af", str(tmp)], capture_output=True, text=True)
    return found.stdout.splitlines()


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
    assert 'test-boot: console never showed "login:" (timed out after 20 s)' in line


def test_ssh_that_never_answers_fails(repo, env, tmp_path, docker_client, standins) -> None:
    from tests.support.standins import fault_iso

    image = f"kairos-local/{PROJECT}:{CELL}"
    iso = fault_iso(docker_client, standins["auroraboot"], image, tmp_path / "nossh", "nossh")
    line = boot_failure(repo, env, iso, timeout=90)  # room for a slow, loaded TCG boot
    assert "test-boot: SSH as kairos never answered" in line


def test_wrong_boot_state_fails(repo, env, tmp_path, docker_client, standins) -> None:
    from tests.support.standins import fault_iso

    image = f"kairos-local/{PROJECT}:{CELL}"
    iso = fault_iso(docker_client, standins["auroraboot"], image, tmp_path / "state", "wrongstate")
    line = boot_failure(repo, env, iso, timeout=120)
    assert 'test-boot: boot state: expected "livecd_boot", got active_boot' in line


def test_failed_iso_keeps_the_previous_artifacts(repo, env, standins, docker_client) -> None:
    before = (repo / "artifacts" / CELL / f"{ISO}.sha256").read_text()
    containers = {c.id for c in docker_client.containers.list(all=True)}
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
    # The container that could not start is removed, not left "Created".
    left = {c.id for c in docker_client.containers.list(all=True)} - containers
    assert not left, left


def test_publish_then_pull_back(repo, env, registry, docker_client) -> None:
    out = run(repo, "invoke", "publish", **env).stdout
    assert f"pushed {registry.host}/kdt/debian@sha256:" in out
    assert f"verified signature of {registry.host}/kdt/debian@sha256:" in out
    assert f"verified {ISO}.sha256.sigstore.json" in out
    assert "verified SBOM attestation (" in out
    digest = out.split(f"pushed {registry.host}/kdt/debian@", 1)[1].split()[0]
    edge = TAG.replace("v0.1.0", "edge")  # the first channel of release.yaml moves too
    assert sorted(registry.tags("kdt/debian")) == sorted([TAG, edge, fallback(digest)])
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
    assert TAG in locked.tags("kdt/debian")


def test_publish_reads_the_docker_config_login(repo, env, locked, tmp_path) -> None:
    import base64

    token = base64.b64encode(f"kdt:{SECRET}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {locked.host: {"auth": token}}}))
    retarget(repo, registry=locked.host)
    done = run(repo, "invoke", "publish", DOCKER_CONFIG=str(tmp_path), **env)
    assert SECRET not in done.stdout + done.stderr
    assert TAG in locked.tags("kdt/debian")


def fallback(digest: str) -> str:
    return digest.replace(":", "-")


def fetch(registry: LocalRegistry, path: str) -> requests.Response:
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    resp = requests.get(f"http://{registry.host}/v2/{path}", headers={"Accept": accept}, timeout=10)
    resp.raise_for_status()
    return resp


def manifest(registry: LocalRegistry, ref: str) -> tuple[dict, str]:
    resp = fetch(registry, f"kdt/debian/manifests/{ref}")
    return resp.json(), "sha256:" + hashlib.sha256(resp.content).hexdigest()


@pytest.fixture
def signed(repo, registry) -> Path:
    """The repo pointed back at the module's registry, where publish signed the image."""
    retarget(repo, registry=registry.host)
    return repo


def referrer_of(registry: LocalRegistry, digest: str, predicate_type: str) -> dict:
    index, _ = manifest(registry, fallback(digest))
    (entry,) = [
        m
        for m in index["manifests"]
        if m["annotations"]["dev.sigstore.bundle.predicateType"] == predicate_type
    ]
    return entry


def statement_of(registry: LocalRegistry, entry: dict) -> dict:
    referrer, _ = manifest(registry, entry["digest"])
    bundle = fetch(registry, f"kdt/debian/blobs/{referrer['layers'][0]['digest']}").json()
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def test_referrer_and_fallback_index_match_the_oci_and_cosign_formats(signed, registry) -> None:
    image, digest = manifest(registry, TAG)
    index, _ = manifest(registry, fallback(digest))
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert len(index["manifests"]) == 3  # the signature, the SBOM and vulnerability attestations
    entry = referrer_of(registry, digest, COSIGN_SIGN)
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert entry["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
    assert entry["annotations"]["dev.sigstore.bundle.predicateType"] == COSIGN_SIGN
    referrer, referrer_digest = manifest(registry, entry["digest"])
    assert referrer_digest == entry["digest"]
    assert referrer["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert referrer["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert referrer["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    (layer,) = referrer["layers"]
    assert layer["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert referrer["subject"]["digest"] == digest
    assert referrer["subject"]["mediaType"] == image["mediaType"]
    assert referrer["annotations"] == entry["annotations"]
    bundle = fetch(registry, f"kdt/debian/blobs/{layer['digest']}").json()
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert json.loads(base64.b64decode(envelope["payload"])) == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"{registry.host}/kdt/debian", "digest": {"sha256": digest[7:]}}],
        "predicateType": COSIGN_SIGN,
        "predicate": {},
    }


def test_sbom_attestation_is_what_cosign_verify_attestation_reads(signed, registry) -> None:
    _, digest = manifest(registry, TAG)
    entry = referrer_of(registry, digest, CYCLONEDX)
    assert entry["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    statement = statement_of(registry, entry)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == CYCLONEDX
    assert statement["subject"][0]["digest"] == {"sha256": digest[7:]}
    local = json.loads((signed / "artifacts" / CELL / SBOM).read_text())
    assert statement["predicate"] == local


def test_verify_task_accepts_cell_and_image(signed, env, registry) -> None:
    out = run(signed, "invoke", "verify", **env).stdout
    assert "verified signature of" in out and f"verified {ISO}.sha256.sigstore.json" in out
    assert "verified SBOM attestation (" in out
    image = f"{registry.host}/kdt/debian:{TAG}"
    out = run(signed, "invoke", "verify", "--image", image, **env).stdout
    assert f"verified {registry.host}/kdt/debian@sha256:" in out


def test_stock_sigstore_cli_accepts_the_blob_bundle(signed, sigstore) -> None:
    checksum = signed / "artifacts" / CELL / f"{ISO}.sha256"
    argv = [sys.executable, "-m", "sigstore", "--trust-config", str(sigstore.trust_config)]
    argv += ["verify", "identity", "--bundle", f"{checksum}.sigstore.json"]
    argv += ["--cert-identity", IDENTITY, "--cert-oidc-issuer", ISSUER, str(checksum)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


# -- third-party clients on what publish pushed and signed ---------------------------------
@pytest.fixture(scope="module")
def clients_dir(tmp_path_factory, sigstore) -> Path:
    """trusted_root.json (taken out of the trust config) and a private HOME for the clients."""
    from tests.support.clients import trusted_root

    path = tmp_path_factory.mktemp("clients")
    trusted_root(sigstore.trust_config, path / "trusted_root.json")
    return path


def push_unsigned_copy(registry: LocalRegistry, mark: str) -> str:
    """The published image's manifest with one more annotation: another digest, unsigned."""
    image, _ = manifest(registry, TAG)
    image.setdefault("annotations", {})["test.kdt.copy"] = mark
    body = json.dumps(image).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    put_manifest(registry, digest, body, image["mediaType"])
    return digest


@pytest.fixture(scope="module")
def others(repo, registry) -> dict[str, str]:
    """An unsigned image, and one whose fallback tag lists the real image's referrers."""
    _, digest = manifest(registry, TAG)
    forged = push_unsigned_copy(registry, "forged")
    index = fetch(registry, f"kdt/debian/manifests/{fallback(digest)}").content
    put_manifest(registry, fallback(forged), index, "application/vnd.oci.image.index.v1+json")
    return {"unsigned": push_unsigned_copy(registry, "unsigned"), "forged": forged}


def test_trusted_root_task_writes_what_cosign_reads(signed, env, clients_dir) -> None:
    out = clients_dir / "from-task.json"
    run(signed, "invoke", "trusted-root", "--output", str(out), **env)
    expected = json.loads((clients_dir / "trusted_root.json").read_text())
    assert json.loads(out.read_text()) == expected


@pytest.mark.parametrize("cosign", ["cosign", "cosign2"])
def test_readme_cosign_lines_pass_as_written(cosign, signed, env, registry, tmp_path) -> None:
    """The baked README's verification block, run by bash verbatim with local values."""
    from tests.support.clients import cosign_env, tool
    from tests.support.readme import verification

    block = verification((signed / "README.md").read_text())
    checksum = signed / "artifacts" / CELL / f"{ISO}.sha256"
    values = {
        "IMAGE": f"{registry.host}/kdt/debian:{TAG}",
        "IDENTITY_REGEXP": "^" + IDENTITY.replace(".", r"\.") + "$",
        "ISSUER": ISSUER,
        "CHECKSUM": str(checksum),
    }
    assert set(block.variables) == set(values)  # the README sets exactly these
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cosign").symlink_to(tool(cosign))
    script = block.script(cosign, values)
    assert script.count("\ncosign ") == 3, script
    path = f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin"
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=signed,
        capture_output=True,
        text=True,
        env={**os.environ, **env, **cosign_env(tmp_path / "home"), "PATH": path},
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
    assert (signed / "trusted_root.json").exists()  # written by the README's invoke line
    assert proc.stderr.count("Verified OK") == 1  # verify-blob
    assert proc.stdout.count('"https://sigstore.dev/cosign/sign/v1"') >= 1


COSIGN_REFUSALS = ["wrong identity", "wrong issuer", "tampered digest", "missing signature"]


def cosign_case(case: str, subject: str, tampered: str, missing: str) -> tuple[str, str, str]:
    """(identity, issuer, subject) of one refusal case."""
    return {
        "wrong identity": ("someone-else@example.com", ISSUER, subject),
        "wrong issuer": (IDENTITY, "https://evil.test", subject),
        "tampered digest": (IDENTITY, ISSUER, tampered),
        "missing signature": (IDENTITY, ISSUER, missing),
    }[case]


@pytest.mark.parametrize("cosign", ["cosign", "cosign2"])
@pytest.mark.parametrize("kind", ["signature", "cyclonedx", "vuln"])
def test_cosign_verifies_the_image_and_refuses_the_rest(
    cosign, kind, signed, registry, others, clients_dir, tmp_path
) -> None:
    """The signature, the SBOM attestation and the vulnerability report's (cosign's vuln type)."""
    from tests.support.clients import call, cosign_argv, cosign_env

    _, digest = manifest(registry, TAG)
    name = f"{registry.host}/kdt/debian"
    root = clients_dir / "trusted_root.json"
    home = cosign_env(tmp_path / "home")
    command = "verify" if kind == "signature" else "verify-attestation"
    extra = [] if kind == "signature" else ["--type", kind]

    def attempt(identity: str, issuer: str, ref: str) -> subprocess.CompletedProcess:
        return call(cosign_argv(cosign, command, root, identity, issuer, *extra, ref), home)

    ok = attempt(IDENTITY, ISSUER, f"{name}@{digest}")
    assert ok.returncode == 0, ok.stderr
    payloads = [json.loads(line) for line in ok.stdout.splitlines() if line.strip()]
    if command == "verify":
        types = {p["critical"]["type"] for p in payloads[0]}
        assert COSIGN_SIGN in types
        assert {p["critical"]["image"]["docker-manifest-digest"] for p in payloads[0]} == {digest}
    else:
        (envelope,) = payloads
        statement = json.loads(base64.b64decode(envelope["payload"]))
        assert statement["predicateType"] == (CYCLONEDX if kind == "cyclonedx" else VULN)
        assert statement["subject"][0]["digest"] == {"sha256": digest[7:]}
        if kind == "vuln":  # grype's whole report, as written beside the SBOM
            assert statement["predicate"]["scanner"]["result"]["matches"] == []
            assert statement["predicate"]["scanner"]["version"] == "0.121.2"
    for case in COSIGN_REFUSALS:
        identity, issuer, ref = cosign_case(
            case, f"{name}@{digest}", f"{name}@{others['forged']}", f"{name}@{others['unsigned']}"
        )
        refused = attempt(identity, issuer, ref)
        assert refused.returncode != 0, f"{cosign} {command} accepted a {case}: {refused.stdout}"


@pytest.mark.parametrize("cosign", ["cosign", "cosign2"])
def test_cosign_verifies_the_checksum_blob_and_refuses_the_rest(
    cosign, signed, clients_dir, tmp_path
) -> None:
    from tests.support.clients import call, cosign_argv, cosign_env

    checksum = signed / "artifacts" / CELL / f"{ISO}.sha256"
    bundle = checksum.with_name(checksum.name + ".sigstore.json")
    tampered = tmp_path / checksum.name
    tampered.write_text(checksum.read_text().replace(ISO, "other.iso"))
    unsigned = tmp_path / "unsigned" / checksum.name
    unsigned.parent.mkdir()
    unsigned.write_bytes(checksum.read_bytes())
    root = clients_dir / "trusted_root.json"
    home = cosign_env(tmp_path / "home")

    def attempt(identity: str, issuer: str, path: Path) -> subprocess.CompletedProcess:
        sigstore_json = path.with_name(path.name + ".sigstore.json")
        argv = cosign_argv(cosign, "verify-blob", root, identity, issuer)
        return call([*argv, "--bundle", sigstore_json, path], home)

    shutil.copy(bundle, tmp_path / bundle.name)  # the tampered file keeps the real bundle
    ok = attempt(IDENTITY, ISSUER, checksum)
    assert ok.returncode == 0 and "Verified OK" in ok.stderr, ok.stderr
    for case in COSIGN_REFUSALS:
        identity, issuer, path = cosign_case(case, checksum, tampered, unsigned)
        refused = attempt(identity, issuer, path)
        assert refused.returncode != 0, f"{cosign} verify-blob accepted a {case}"


def test_sigstore_js_verifies_every_bundle_and_refuses_the_rest(
    signed, registry, clients_dir, tmp_path
) -> None:
    from tests.support.clients import js_verify, referrer_bundles, tampered_bundle

    _, digest = manifest(registry, TAG)
    root = clients_dir / "trusted_root.json"
    bundles = referrer_bundles(registry.host, "kdt/debian", digest)
    assert set(bundles) == {COSIGN_SIGN, CYCLONEDX, VULN}
    checksum = signed / "artifacts" / CELL / f"{ISO}.sha256"
    tampered = tmp_path / "tampered.sha256"
    tampered.write_text(checksum.read_text().replace(ISO, "other.iso"))
    cases = [(checksum.with_name(checksum.name + ".sigstore.json"), "artifact", str(checksum))]
    for predicate, data in bundles.items():
        path = tmp_path / f"{predicate.rsplit('/', 2)[-2]}.sigstore.json"
        path.write_bytes(data)
        bad = tmp_path / f"tampered-{path.name}"
        bad.write_bytes(tampered_bundle(data))
        cases.append((path, "digest", digest))
        assert js_verify(root, bad, identity=IDENTITY, issuer=ISSUER, digest=digest).startswith(
            "FAIL"
        )
        other = js_verify(root, path, identity=IDENTITY, issuer=ISSUER, digest="sha256:" + "0" * 64)
        assert "no subject" in other
    for bundle, key, target in cases:
        ok = js_verify(root, bundle, identity=IDENTITY, issuer=ISSUER, **{key: target})
        assert ok == f"OK {IDENTITY} {ISSUER}"
        for identity, issuer in (("x@example.com", ISSUER), (IDENTITY, "https://evil.test")):
            line = js_verify(root, bundle, identity=identity, issuer=issuer, **{key: target})
            assert line.startswith("FAIL UNTRUSTED_SIGNER_ERROR"), line
    line = js_verify(root, cases[0][0], identity=IDENTITY, issuer=ISSUER, artifact=str(tampered))
    assert line.startswith("FAIL"), line


def test_regctl_lists_the_signature_and_sbom_attestation(signed, registry, tmp_path) -> None:
    from tests.support.clients import call, tool

    _, digest = manifest(registry, TAG)
    config = {"REGCTL_CONFIG": str(tmp_path / "regctl.json")}  # a private config file
    regctl = tool("regctl")
    done = call([regctl, "registry", "set", registry.host, "--tls", "disabled"], config)
    assert done.returncode == 0, done.stderr
    ref = f"{registry.host}/kdt/debian@{digest}"
    listed = call([regctl, "artifact", "list", ref, "--format", "{{json .Descriptors}}"], config)
    assert listed.returncode == 0, listed.stderr
    descriptors = json.loads(listed.stdout)
    assert {d["artifactType"] for d in descriptors} == {
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    }
    predicates = {d["annotations"]["dev.sigstore.bundle.predicateType"] for d in descriptors}
    assert predicates == {COSIGN_SIGN, CYCLONEDX, VULN}


def test_crane_pulls_the_image_back_by_digest(signed, registry, docker_client, tmp_path) -> None:
    from tests.support.clients import call, tool

    _, digest = manifest(registry, TAG)
    ref = f"{registry.host}/kdt/debian@{digest}"
    crane = tool("crane")  # plain HTTP to a loopback registry, no --insecure needed
    raw = call([crane, "manifest", ref])
    assert raw.returncode == 0, raw.stderr
    assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == digest
    layout = tmp_path / "oci"
    pulled = call([crane, "pull", "--format", "oci", ref, layout])
    assert pulled.returncode == 0, pulled.stderr
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["digest"] == digest
    image = json.loads((layout / "blobs" / "sha256" / digest[7:]).read_bytes())
    for blob in [image["config"], *image["layers"]]:
        data = (layout / "blobs" / "sha256" / blob["digest"][7:]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == blob["digest"]
        assert len(data) == blob["size"]
    local = docker_client.images.get(f"kairos-local/{PROJECT}:{CELL}")
    assert image["config"]["digest"] == local.id  # the built image, byte for byte


def verify_fails(repo: Path, env: dict, *args: str) -> str:
    proc = run(repo, "invoke", "verify", *args, check=False, **env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def test_verify_refuses_a_wrong_identity(signed, env, sigstore) -> None:
    sign_with(signed, sigstore, identity="someone-else@example.com")
    try:
        line = verify_fails(signed, env)
    finally:
        sign_with(signed, sigstore)
    assert "verify: no valid signature for" in line and "someone-else@example.com" in line


def test_verify_refuses_a_foreign_trust_root(signed, env, sigstore, tmp_path) -> None:
    with LocalSigstore(tmp_path / "foreign") as foreign:
        sign_with(signed, foreign)
        try:
            line = verify_fails(signed, env)
        finally:
            sign_with(signed, sigstore)
    assert "verify: no valid signature for" in line


def test_verify_refuses_a_tampered_digest_and_a_missing_signature(signed, env, registry) -> None:
    other = "sha256:" + "0" * 64
    line = verify_fails(signed, env, "--image", f"{registry.host}/kdt/debian@{other}")
    assert f"no signature attached to {registry.host}/kdt/debian@{other}" in line
    checksum = signed / "artifacts" / CELL / f"{ISO}.sha256"
    bundle = checksum.with_name(checksum.name + ".sigstore.json")
    saved = bundle.read_bytes()
    bundle.unlink()
    try:
        line = verify_fails(signed, env)
    finally:
        bundle.write_bytes(saved)
    assert f"has no {bundle.name}" in line


def push_blob(registry: LocalRegistry, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = requests.post(f"http://{registry.host}/v2/kdt/debian/blobs/uploads/", timeout=10)
    start.raise_for_status()
    location = start.headers["Location"]
    location = location if location.startswith("http") else f"http://{registry.host}{location}"
    sep = "&" if "?" in location else "?"
    requests.put(f"{location}{sep}digest={digest}", data=data, timeout=10).raise_for_status()
    return digest


def put_manifest(registry: LocalRegistry, ref: str, body: bytes, media_type: str) -> None:
    url = f"http://{registry.host}/v2/kdt/debian/manifests/{ref}"
    headers = {"Content-Type": media_type}
    requests.put(url, data=body, headers=headers, timeout=10).raise_for_status()


def test_tampered_sbom_attestation_fails_verify(signed, env, registry) -> None:
    """Someone swaps the attested SBOM for one that hides a package: verify refuses."""
    _, digest = manifest(registry, TAG)
    index_body = fetch(registry, f"kdt/debian/manifests/{fallback(digest)}").content
    entry = referrer_of(registry, digest, CYCLONEDX)
    referrer, _ = manifest(registry, entry["digest"])
    bundle = fetch(registry, f"kdt/debian/blobs/{referrer['layers'][0]['digest']}").json()
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["components"] = statement["predicate"]["components"][1:]
    payload = json.dumps(statement).encode()
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    layer = push_blob(registry, json.dumps(bundle).encode())
    referrer["layers"][0].update(digest=layer, size=len(json.dumps(bundle).encode()))
    body = json.dumps(referrer).encode()
    tampered = "sha256:" + hashlib.sha256(body).hexdigest()
    put_manifest(registry, tampered, body, referrer["mediaType"])
    index = json.loads(index_body)
    for m in index["manifests"]:
        if m["digest"] == entry["digest"]:
            m.update(digest=tampered, size=len(body))
    put_manifest(registry, fallback(digest), json.dumps(index).encode(), index["mediaType"])
    try:
        line = verify_fails(signed, env)
    finally:
        put_manifest(registry, fallback(digest), index_body, index["mediaType"])
    assert f"verify: no valid {CYCLONEDX} attestation for" in line
    assert "signature" in line.lower()  # the DSSE signature no longer covers the payload


@pytest.fixture
def fresh(tmp_path) -> LocalRegistry:
    with LocalRegistry(tmp_path / "fresh") as reg:
        yield reg


def publish_fails(repo: Path, env: dict, host: str, **extra: str) -> str:
    retarget(repo, registry=host)
    proc = run(repo, "invoke", "publish", check=False, **{**env, **extra})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def test_expired_token_tags_nothing(repo, env, sigstore, fresh) -> None:
    line = publish_fails(repo, env, fresh.host, SIGSTORE_ID_TOKEN=sigstore.token(expired=True))
    assert "amd64-generic: sign: identity token:" in line
    assert fresh.tags("kdt/debian") == []


def test_unreachable_sigstore_tags_nothing(repo, env, sigstore, fresh) -> None:
    sigstore.fail("fulcio")
    try:
        line = publish_fails(repo, env, fresh.host)
    finally:
        sigstore.fail(None)
    assert "amd64-generic: sign: signing certificate:" in line
    assert fresh.tags("kdt/debian") == []


def test_registry_refusing_the_referrer_tags_nothing(repo, env, fresh) -> None:
    with FaultProxy(fresh.host, refuse_referrers=True) as proxy:
        line = publish_fails(repo, env, proxy.host)
    assert "amd64-generic: sign: registry" in line and "no referrers here" in line
    assert fresh.tags("kdt/debian") == []

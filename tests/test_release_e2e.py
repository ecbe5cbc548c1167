"""`invoke release` end to end over a multi-cell debian:12 repo, offline.

Stand-ins for kairos-init and AuroraBoot, everything else real: BuildKit,
QEMU boots under TCG, a registry on 127.0.0.1 (behind a fault-injecting
proxy), a local Sigstore. The tests run in order and share one repository,
as an owner's successive releases would: first release, no-op release, a
failing boot, a base-image digest bump with signing failing, the registry
dying mid-run, and the reruns that complete each time.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import run
from tests.support.bake import bake, retarget, set_cells, set_signing
from tests.support.registry import FaultProxy, LocalRegistry
from tests.support.sigstore_local import IDENTITY, ISSUER, LocalSigstore

# Docker engine, QEMU, the pinned clients: what .ci/setup provides (`nox -s fast` skips these).
pytestmark = pytest.mark.e2e

CELLS = [
    {"arch": "amd64", "model": "generic", "provider": "none"},
    {"arch": "amd64", "model": "generic", "provider": "k3s", "provider_version": "v1.35.1+k3s1"},
    {"arch": "amd64", "model": "generic", "provider": "k0s", "provider_version": "v1.35.1+k0s.0"},
]
IDS = ["amd64-generic", "amd64-generic-k3s-v1.35.1-k3s1", "amd64-generic-k0s-v1.35.1-k0s.0"]
STEPS = ["build", "iso", "test-boot", "scan", "publish"]
TAGS = {
    IDS[0]: "12-core-amd64-generic-v0.1.0",
    IDS[1]: "12-standard-amd64-generic-v0.1.0-k3s-v1.35.1-k3s1",
    IDS[2]: "12-standard-amd64-generic-v0.1.0-k0s-v1.35.1-k0s.0",
}
EDGE = {one: tag.replace("v0.1.0", "edge") for one, tag in TAGS.items()}
STABLE = {one: tag.replace("v0.1.0", "stable") for one, tag in TAGS.items()}


@pytest.fixture(scope="module")
def proxy(registry) -> FaultProxy:
    with FaultProxy(registry.host) as front:
        yield front


@pytest.fixture(scope="module")
def env(env, sigstore, tmp_path_factory) -> dict[str, str]:
    return {
        **env,
        "INVOKE_KAIROS_BOOT_ACCEL": "tcg",
        "GITHUB_STEP_SUMMARY": str(tmp_path_factory.mktemp("gh") / "summary.md"),
        "TRUST": str(sigstore.trust_config),  # read back by tests that switch trust roots
    }


# Local image names of this run alone: no other run's build is reused, and
# test runs sharing an engine do not retag each other's images.
RUN = uuid.uuid4().hex[:8]
PROJECT = f"kdt-release-e2e-{RUN}"


def remove_images(client, refs: list[str]) -> None:
    import docker

    for ref in refs:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(ref, force=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory, standins, proxy, sigstore, docker_client) -> Iterator[Path]:
    path = bake(
        tmp_path_factory.mktemp("bake"),
        base_image="debian:12",
        project=PROJECT,
        registry=f"{proxy.host}/kdt",
    )
    retarget(path, **standins)
    set_signing(
        path, enabled=True, trust=str(sigstore.trust_config), identity=IDENTITY, issuer=ISSUER
    )
    set_cells(path, CELLS)
    yield path
    remove_images(docker_client, [f"kairos-local/{PROJECT}:{one}" for one in IDS])


def release(repo: Path, env: dict[str, str], ok: bool = True) -> dict[str, dict]:
    """Run `invoke release`; return the JSON summary's cells by id."""
    proc = run(repo, "invoke", "release", check=ok, **env)
    if not ok:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    summary = json.loads((repo / "artifacts" / "release-summary.json").read_text())
    (repo / "artifacts" / "last-release.log").write_text(proc.stdout + proc.stderr)
    return {cell["cell"]: cell for cell in summary["cells"]}


def tags(registry: LocalRegistry) -> set[str]:
    return {t for t in registry.tags("kdt/debian") if not t.startswith("sha256-")}


def digest_of(registry: LocalRegistry, tag: str) -> str:
    resp = requests.get(
        f"http://{registry.host}/v2/kdt/debian/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    resp.raise_for_status()
    return resp.headers["Docker-Content-Digest"]


def test_first_release_publishes_and_signs_every_cell(repo, env, registry) -> None:
    cells = release(repo, env)
    for one in IDS:
        assert cells[one]["status"] == "published"
        assert cells[one]["signature"] == "verified"
        assert cells[one]["boot"].startswith("passed (tcg")
        assert cells[one]["steps"] == dict.fromkeys(STEPS, "done")
    assert tags(registry) == {*TAGS.values(), *EDGE.values()}
    for one in IDS:  # the channel tag and the version tag name one digest
        assert digest_of(registry, EDGE[one]) == digest_of(registry, TAGS[one])


def test_the_tested_image_is_the_pushed_image(repo, registry, docker_client) -> None:
    for one in IDS:
        local = docker_client.images.get(f"kairos-local/{PROJECT}:{one}")
        manifest = requests.get(
            f"http://{registry.host}/v2/kdt/debian/manifests/{TAGS[one]}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            timeout=10,
        ).json()
        assert manifest["config"]["digest"] == local.id  # same image, byte for byte


def test_second_release_skips_every_cell(repo, env) -> None:
    cells = release(repo, env)
    assert {one: cells[one]["status"] for one in IDS} == dict.fromkeys(IDS, "up to date")
    markdown = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert markdown.count("| up to date |") >= 3 and "## Release v0.1.0" in markdown


def test_sigstore_js_verifies_every_cells_bundles(repo, registry, sigstore, tmp_path) -> None:
    """sigstore-js, not our code, on each cell's image signature, SBOM and ISO checksum."""
    from tests.support.clients import js_verify, referrer_bundles, tampered_bundle, trusted_root

    root = trusted_root(sigstore.trust_config, tmp_path / "trusted_root.json")
    who = {"identity": IDENTITY, "issuer": ISSUER}
    for one in IDS:
        digest = digest_of(registry, TAGS[one])
        bundles = referrer_bundles(registry.host, "kdt/debian", digest)
        assert set(bundles) == {
            "https://sigstore.dev/cosign/sign/v1",
            "https://cyclonedx.org/bom",
            "https://cosign.sigstore.dev/attestation/vuln/v1",
        }
        for n, data in enumerate(bundles.values()):
            path = tmp_path / f"{one}-{n}.sigstore.json"
            path.write_bytes(data)
            assert js_verify(root, path, digest=digest, **who).startswith("OK "), one
            wrong = js_verify(root, path, digest=digest, identity="x@example.com", issuer=ISSUER)
            assert wrong.startswith("FAIL UNTRUSTED_SIGNER_ERROR"), wrong
            path.write_bytes(tampered_bundle(data))
            assert js_verify(root, path, digest=digest, **who).startswith("FAIL "), one
        (checksum,) = (repo / "artifacts" / one).glob("*.iso.sha256")
        bundle = checksum.with_name(checksum.name + ".sigstore.json")
        assert js_verify(root, bundle, artifact=str(checksum), **who).startswith("OK ")
        evil = js_verify(
            root, bundle, artifact=str(checksum), identity=IDENTITY, issuer="https://evil.test"
        )
        assert evil.startswith("FAIL UNTRUSTED_SIGNER_ERROR"), evil
        tampered = tmp_path / checksum.name
        tampered.write_bytes(checksum.read_bytes() + b" ")
        assert js_verify(root, bundle, artifact=str(tampered), **who).startswith("FAIL "), one


def with_check(expect: str) -> list[dict]:
    check = {"run": "k3s --version", "expect": expect}
    return [CELLS[0], {**CELLS[1], "boot_checks": [check]}, CELLS[2]]


def test_a_failing_boot_fails_only_its_cell_and_moves_nothing(repo, env, registry) -> None:
    before = {one: digest_of(registry, TAGS[one]) for one in IDS}
    set_cells(repo, with_check("v9.9.9"))  # a new boot check: only that cell re-boots
    cells = release(repo, env, ok=False)
    assert cells[IDS[1]]["status"] == "failed"
    assert cells[IDS[1]]["error"].startswith('test-boot: k3s --version: expected "v9.9.9"')
    assert cells[IDS[1]]["steps"] == {"build": "reused", "iso": "reused", "test-boot": "failed"}
    for one in (IDS[0], IDS[2]):
        assert cells[one]["status"] == "up to date"
    assert {one: digest_of(registry, TAGS[one]) for one in IDS} == before


def test_rerun_redoes_only_what_failed(repo, env) -> None:
    set_cells(repo, with_check("v1.35.1+k3s1"))
    cells = release(repo, env)
    assert cells[IDS[1]]["status"] == "published"
    assert cells[IDS[1]]["steps"] == {
        "build": "reused",
        "iso": "reused",
        "test-boot": "done",
        "scan": "done",
        "publish": "done",
    }
    for one in (IDS[0], IDS[2]):
        assert cells[one]["status"] == "up to date"


@pytest.fixture(scope="module")
def bumped_base(docker_client, standins) -> Iterator[str]:
    """The base image with a security patch on top: a new digest, same tag name."""
    dockerfile = f"FROM {standins['base_image']}\nRUN echo patched > /etc/kdt-cve-fix\n"
    ref = f"kdt-standin/debian:12-patched-{RUN}"
    docker_client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True, network_mode="host"
    )
    yield ref
    remove_images(docker_client, [ref])


def test_base_bump_rebuilds_and_failed_signing_tags_nothing(
    repo, env, registry, sigstore, bumped_base
) -> None:
    before = {one: digest_of(registry, TAGS[one]) for one in IDS}
    retarget(repo, base_image=bumped_base)
    sigstore.fail("rekor")
    try:
        cells = release(repo, env, ok=False)
    finally:
        sigstore.fail(None)
    for one in IDS:
        assert cells[one]["status"] == "failed"
        assert cells[one]["error"].startswith("sign: ")
        assert cells[one]["steps"]["build"] == "done"  # the new base digest rebuilt it
        assert digest_of(registry, TAGS[one]) == before[one]  # tags did not move


def test_registry_dying_mid_run_fails_the_rest_and_a_rerun_completes(
    repo, env, registry, proxy
) -> None:
    first_record = f"/v2/kdt/{PROJECT}/manifests/release-{IDS[0]}"
    proxy.die_after(lambda method, path: method == "PUT" and path == first_record)
    try:
        cells = release(repo, env, ok=False)
    finally:
        proxy.revive()
    assert cells[IDS[0]]["status"] == "published"
    for one in IDS[1:]:
        assert cells[one]["status"] == "failed"
        assert cells[one]["steps"]["publish"] == "failed"
        assert "unreachable" in cells[one]["error"]
    cells = release(repo, env)
    assert cells[IDS[0]]["status"] == "up to date"
    for one in IDS[1:]:
        assert cells[one]["status"] == "published"
        assert cells[one]["steps"] == {
            "build": "reused",
            "iso": "reused",
            "test-boot": "reused",
            "scan": "done",
            "publish": "done",
        }
    cells = release(repo, env)
    assert {one: cells[one]["status"] for one in IDS} == dict.fromkeys(IDS, "up to date")


def test_promote_moves_stable_to_the_verified_edge_digest(repo, env, registry) -> None:
    out = run(repo, "invoke", "promote", "--from", "edge", "--to", "stable", **env).stdout
    assert "promote summary" in out
    for one in IDS:
        assert digest_of(registry, STABLE[one]) == digest_of(registry, EDGE[one])


def test_promote_refuses_what_does_not_verify(repo, env, registry, tmp_path) -> None:
    before = {one: digest_of(registry, STABLE[one]) for one in IDS}
    with LocalSigstore(
        tmp_path / "foreign"
    ) as foreign:  # another trust root: no signature verifies
        set_signing(
            repo, enabled=True, trust=str(foreign.trust_config), identity=IDENTITY, issuer=ISSUER
        )
        try:
            proc = run(
                repo, "invoke", "promote", "--from", "edge", "--to", "stable", check=False, **env
            )
        finally:
            sign_again = {"enabled": True, "identity": IDENTITY, "issuer": ISSUER}
            set_signing(repo, trust=str(env["TRUST"]), **sign_again)
    assert proc.returncode == 1
    assert "promote: 3 of 3 cells failed" in proc.stderr
    assert {one: digest_of(registry, STABLE[one]) for one in IDS} == before

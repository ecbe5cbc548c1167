"""Package freshness end to end: a real apt mirror on 127.0.0.1 moves, releases follow.

The stand-in base image is Debian with one package, kdt-hello 1.0-1, from a
flat apt repository the test builds with Debian's tools and serves on
127.0.0.1 (tests/support/repos.py); its sources list names that mirror, as a
distro base names its own. A real grype database, built by the tests with
grype's own builder (tests/support/vulndb.py) and served on 127.0.0.1, says
kdt-hello before 1.1-1 has a critical CVE. Everything else is as in test_release_e2e:
BuildKit, the kairos-init and AuroraBoot stand-ins (kairos-init's refreshes
and upgrades every package, as upstream's install stage does), QEMU boots, a
real registry, a local Sigstore. The tests run in order and share one
repository and mirror, as an owner's successive releases would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.conftest import run
from tests.support import vulndb
from tests.support.bake import bake, retarget, set_cells, set_signing, set_vulnerabilities
from tests.support.repos import AptRepo
from tests.support.sigstore_local import IDENTITY, ISSUER
from tests.support.standins import image_from_dockerfile
from tests.support.vulnserver import VulnDbServer

pytestmark = pytest.mark.e2e

CELLS = [
    {"arch": "amd64", "model": "generic", "provider": "none"},
    {"arch": "amd64", "model": "generic", "provider": "k3s", "provider_version": "v1.35.1+k3s1"},
]
EARLY, LATE = "amd64-generic", "amd64-generic-k3s-v1.35.1-k3s1"
RUN = uuid.uuid4().hex[:8]
CVE = "CVE-2026-4242"
FINDING = f"{CVE} (critical) in kdt-hello 1.0-1, fixed in 1.1-1"
FRESH_DB = "database 0 days old"  # built by the module's fixture, minutes ago
PROJECT = f"kdt-fresh-e2e-{RUN}"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Iterator[AptRepo]:
    with AptRepo(tmp_path_factory.mktemp("mirror")) as repo:
        repo.add("kdt-hello", "1.0-1")
        yield repo


@pytest.fixture(scope="module")
def base(docker_client, standins, mirror) -> Iterator[str]:
    """Debian with kdt-hello 1.0-1 installed from, and its sources naming, the mirror."""
    ref = f"kdt-standin/debian:12-mirror-{RUN}"
    dockerfile = (
        f"FROM {standins['base_image']}\n"
        "COPY kdt-hello.deb /tmp/\n"
        "RUN dpkg -i /tmp/kdt-hello.deb && rm /tmp/kdt-hello.deb\n"
        f"RUN echo '{mirror.sources_line}' > /etc/apt/sources.list.d/kdt-mirror.list\n"
    )
    deb = mirror.deb_path("kdt-hello", "1.0-1").read_bytes()
    image_from_dockerfile(docker_client, ref, dockerfile, {"kdt-hello.deb": deb})
    yield ref
    docker_client.images.remove(ref, force=True)


@pytest.fixture(scope="module")
def advisories(tmp_path_factory) -> Iterator[VulnDbServer]:
    """grype's listing with a real database: kdt-hello before 1.1-1 has a critical CVE."""
    advisory = vulndb.debian_advisory(CVE, "kdt-hello", "1.1-1", "Critical")
    with VulnDbServer(tmp_path_factory.mktemp("vulndb")) as server:
        server.publish({"debian": [advisory]}, datetime.now(UTC).replace(microsecond=0))
        yield server


@pytest.fixture(scope="module")
def repo(
    tmp_path_factory, standins, base, registry, sigstore, docker_client, advisories
) -> Iterator[Path]:
    path = bake(
        tmp_path_factory.mktemp("bake"),
        base_image="debian:12",
        project=PROJECT,
        registry=f"{registry.host}/kdt",
    )
    retarget(path, **{**standins, "base_image": base, "vulndb": advisories.pin})
    set_signing(
        path, enabled=True, trust=str(sigstore.trust_config), identity=IDENTITY, issuer=ISSUER
    )
    set_cells(path, CELLS)
    yield path
    from tests.test_release_e2e import remove_images

    remove_images(docker_client, [f"kairos-local/{PROJECT}:{one}" for one in (EARLY, LATE)])


@pytest.fixture(scope="module")
def env(env) -> dict[str, str]:
    return {**env, "INVOKE_KAIROS_BOOT_ACCEL": "tcg"}


def release(repo: Path, env: dict[str, str], *args: str, ok: bool = True) -> dict:
    """`invoke release ARGS`; the JSON summary, with its cells by id."""
    proc = run(repo, "invoke", "release", *args, check=ok, **env)
    if not ok:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    summary = json.loads((repo / "artifacts" / "release-summary.json").read_text())
    summary["by_cell"] = {cell["cell"]: cell for cell in summary["cells"]}
    summary["stdout"], summary["stderr"] = proc.stdout, proc.stderr
    return summary


def published(registry) -> dict[str, str]:
    """Every tag of the images' repository and the digest it names."""
    out = {}
    for tag in registry.tags("kdt/debian"):
        if tag.startswith("sha256-"):
            continue
        resp = requests.head(
            f"http://{registry.host}/v2/kdt/debian/manifests/{tag}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            timeout=10,
        )
        out[tag] = resp.headers["Docker-Content-Digest"]
    return out


def advisories_checksum(repo: Path) -> str:
    """The sha256 release.yaml pins the database by."""
    line = next(
        x for x in (repo / "release.yaml").read_text().splitlines() if x.startswith("vulndb:")
    )
    return line.split("?checksum=", 1)[1].strip('"')


def record(registry, cell: str) -> dict:
    """The cell's release record, read as any OCI client reads it."""
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    url = f"http://{registry.host}/v2/kdt/{PROJECT}"
    manifest = requests.get(f"{url}/manifests/release-{cell}", headers=accept, timeout=10).json()
    layer = manifest["layers"][0]["digest"]
    data = json.loads(requests.get(f"{url}/blobs/{layer}", timeout=10).content)
    data["layer_types"] = [layer["mediaType"] for layer in manifest["layers"]]
    return data


def test_the_policy_refuses_the_critical_finding_and_publishes_nothing(repo, env, registry) -> None:
    set_vulnerabilities(repo, fail_on="critical")
    cell = release(repo, env, "--cell", EARLY, ok=False)["by_cell"][EARLY]
    assert cell["status"] == "failed"
    assert cell["error"] == f"scan: {FINDING}: at or above fail_on: critical"
    assert cell["vulnerabilities"] == f"1 critical; {FRESH_DB}"
    assert cell["steps"]["scan"] == "failed" and "publish" not in cell["steps"]
    assert published(registry) == {}
    # An exception past its date fails too, in one line naming it.
    expired = {"id": CVE, "reason": "fixed upstream soon", "expires": "2020-01-31"}
    set_vulnerabilities(repo, fail_on="critical", allow=[expired])
    cell = release(repo, env, "--cell", EARLY, ok=False)["by_cell"][EARLY]
    assert cell["error"] == (
        f"scan: vulnerabilities.allow[0]: {CVE} expired on 2020-01-31 "
        "(reason was: fixed upstream soon); remove it or give a new date"
    )
    assert published(registry) == {}


def test_first_cell_is_released_with_the_mirrors_package(repo, env, registry) -> None:
    allowed = {"id": CVE, "reason": "a test of the allow-list", "expires": "2099-12-31"}
    set_vulnerabilities(repo, fail_on="critical", allow=[allowed])
    summary = release(repo, env, "--cell", EARLY)
    cell = summary["by_cell"][EARLY]
    assert cell["status"] == "published"
    assert cell["packages"] == {"since": ""}  # a first release has nothing to compare
    assert cell["vulnerabilities"] == f"1 critical; {FRESH_DB}"
    assert "vulnerability_changes" not in cell  # nothing earlier to compare with
    (report,) = (repo / "artifacts" / EARLY).glob("*.grype.json")
    (match,) = json.loads(report.read_text())["matches"]  # grype's own report, kept whole
    assert (match["vulnerability"]["id"], match["artifact"]["version"]) == (CVE, "1.0-1")
    kept = record(registry, EARLY)
    assert kept["layer_types"] == [
        "application/vnd.kairos.release.v1+json",
        "application/vnd.cyclonedx+json",
    ]
    assert kept["vulnerabilities"]["findings"] == [
        [CVE, "kdt-hello", "1.0-1", "critical", "1.1-1", "deb"]
    ]
    assert kept["vulnerabilities"]["database"]["checksum"] == advisories_checksum(repo)


def test_second_cell_is_released_after_the_mirror_moved(repo, env, mirror) -> None:
    mirror.add("kdt-hello", "1.1-1")  # the fix lands in the mirror
    mirror.add("kdt-unused", "2.0-1")  # installed nowhere: must change nothing
    summary = release(repo, env, "--cell", LATE)
    assert summary["by_cell"][LATE]["status"] == "published"


def test_the_mirror_update_rebuilds_exactly_the_cell_that_lacks_it(repo, env, registry) -> None:
    before = published(registry)
    summary = release(repo, env)
    early, late = summary["by_cell"][EARLY], summary["by_cell"][LATE]
    assert early["status"] == "published"
    assert early["reason"].startswith(
        "released: package updates since v0.1.0: kdt-hello 1.0-1 -> 1.1-1; rebuilt: newer packages"
    ), early["reason"]
    assert early["steps"] == dict.fromkeys(["build", "iso", "test-boot", "scan", "publish"], "done")
    # What the rebuild fixed: in the cell, grouped in every summary, in the terminal.
    assert early["vulnerabilities"] == f"none; {FRESH_DB}"
    assert early["vulnerability_changes"]["fixed"] == [
        [CVE, "kdt-hello", "1.0-1", "critical", "1.1-1", "deb"]
    ]
    assert summary["vulnerability_changes"]["fixed"] == [
        {
            "id": CVE,
            "package": "kdt-hello",
            "version": "1.0-1",
            "severity": "critical",
            "fix": "1.1-1",
            "kind": "deb",
            "cells": [EARLY],
        }
    ]
    assert f"vulnerabilities fixed\n  {FINDING}: {EARLY}" in summary["stdout"]
    assert "### Vulnerabilities fixed" in (repo / "artifacts" / "release-summary.md").read_text()
    assert early["packages"]["upgraded"] == [
        {"package": "kdt-hello", "from": "1.0-1", "to": "1.1-1"}
    ]
    assert not any(early["packages"].get(kind) for kind in ("added", "removed", "downgraded"))
    assert late["status"] == "up to date"
    assert "no newer packages (apt, " in late["reason"], late["reason"]
    # The changelog, grouped, in every summary; and in the cell's release record.
    assert summary["package_changes"] == [
        {
            "kind": "upgraded",
            "package": "kdt-hello",
            "from": "1.0-1",
            "to": "1.1-1",
            "cells": [EARLY],
        }
    ]
    assert "kdt-hello 1.0-1 -> 1.1-1" in summary["stdout"]
    markdown = (repo / "artifacts" / "release-summary.md").read_text()
    assert "Package changes" in markdown and "kdt-hello" in markdown
    kept = record(registry, EARLY)
    assert kept["packages"]["upgraded"] == early["packages"]["upgraded"]
    assert kept["updates"] == ["kdt-hello:amd64=1.1-1"]
    after = published(registry)
    moved = {tag for tag in after if after[tag] != before.get(tag)}
    assert moved and all("k3s" not in tag for tag in moved), moved  # the late cell kept its tags


def test_a_third_release_skips_every_cell(repo, env) -> None:
    summary = release(repo, env)
    for cell in (EARLY, LATE):
        assert summary["by_cell"][cell]["status"] == "up to date"
        assert "no newer packages (apt, " in summary["by_cell"][cell]["reason"]
    assert summary["package_changes"] == []


def test_a_dead_mirror_fails_every_probe_and_publishes_nothing(repo, env, registry, mirror):
    before = published(registry)
    records = {cell: record(registry, cell) for cell in (EARLY, LATE)}
    mirror.stop()
    try:
        summary = release(repo, env, ok=False)
        inputs_only = release(repo, env, "--refresh", "inputs")  # asks no mirror
    finally:
        mirror.start()
    for cell in (EARLY, LATE):
        error = summary["by_cell"][cell]["error"]
        assert error.startswith("probe: apt-get update cannot reach "), error
        assert mirror.url in error and "\n" not in error
        assert inputs_only["by_cell"][cell]["status"] == "up to date"
    assert summary["stderr"].startswith("release: 2 of 2 cells failed; first: ")
    assert published(registry) == before
    assert {cell: record(registry, cell) for cell in (EARLY, LATE)} == records

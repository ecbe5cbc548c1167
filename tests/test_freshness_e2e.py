"""Package freshness end to end: a real apt mirror on 127.0.0.1 moves, releases follow.

The stand-in base image is Debian with one package, kdt-hello 1.0-1, from a
flat apt repository the test builds with Debian's tools and serves on
127.0.0.1 (tests/support/repos.py); its sources list names that mirror, as a
distro base names its own. Everything else is as in test_release_e2e:
BuildKit, the kairos-init and AuroraBoot stand-ins (kairos-init's refreshes
and upgrades every package, as upstream's install stage does), QEMU boots, a
real registry, a local Sigstore. The tests run in order and share one
repository and mirror, as an owner's successive releases would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import run
from tests.support.bake import bake, retarget, set_cells, set_signing
from tests.support.repos import AptRepo
from tests.support.sigstore_local import IDENTITY, ISSUER
from tests.support.standins import image_from_dockerfile

pytestmark = pytest.mark.e2e

CELLS = [
    {"arch": "amd64", "model": "generic", "provider": "none"},
    {"arch": "amd64", "model": "generic", "provider": "k3s", "provider_version": "v1.35.1+k3s1"},
]
EARLY, LATE = "amd64-generic", "amd64-generic-k3s-v1.35.1-k3s1"
RUN = uuid.uuid4().hex[:8]
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
def repo(tmp_path_factory, standins, base, registry, sigstore, docker_client) -> Iterator[Path]:
    path = bake(
        tmp_path_factory.mktemp("bake"),
        base_image="debian:12",
        project=PROJECT,
        registry=f"{registry.host}/kdt",
    )
    retarget(path, **{**standins, "base_image": base})
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


def record(registry, cell: str) -> dict:
    """The cell's release record, read as any OCI client reads it."""
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    url = f"http://{registry.host}/v2/kdt/{PROJECT}"
    manifest = requests.get(f"{url}/manifests/release-{cell}", headers=accept, timeout=10).json()
    layer = manifest["layers"][0]["digest"]
    data = json.loads(requests.get(f"{url}/blobs/{layer}", timeout=10).content)
    data["layer_types"] = [layer["mediaType"] for layer in manifest["layers"]]
    return data


def test_first_cell_is_released_with_the_mirrors_package(repo, env, registry) -> None:
    summary = release(repo, env, "--cell", EARLY)
    cell = summary["by_cell"][EARLY]
    assert cell["status"] == "published"
    assert cell["packages"] == {"since": ""}  # a first release has nothing to compare
    kept = record(registry, EARLY)
    assert kept["layer_types"] == [
        "application/vnd.kairos.release.v1+json",
        "application/vnd.cyclonedx+json",
    ]


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
    assert early["steps"] == dict.fromkeys(["build", "iso", "test-boot", "publish"], "done")
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

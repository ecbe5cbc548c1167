"""Shared fixtures: baking, the Docker engine, stand-ins, a local registry."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.bake import bake
from tests.support.registry import LocalRegistry


def run(repo: Path, *argv: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """Run a command in a baked repo; output captured as text."""
    proc = subprocess.run(
        list(argv),
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def baked(tmp_path: Path):
    """A factory: baked(**answers) -> path of a freshly generated repo."""
    return lambda **answers: bake(tmp_path / "out", **answers)


@pytest.fixture(scope="session")
def docker_client():
    import docker

    client = docker.from_env(timeout=600)
    client.ping()  # a missing engine is a failure, not a skip: CI starts one
    return client


@pytest.fixture(scope="session")
def vulndb_server(tmp_path_factory) -> Iterator[Any]:
    """grype's listing on 127.0.0.1 with a real database that matches no test image."""
    from tests.support.vulnserver import with_nobody

    server = with_nobody(tmp_path_factory.mktemp("vulndb"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def standins(docker_client, vulndb_server) -> dict[str, str]:
    """release.yaml's images for the tests: the stand-ins (kairos-init, AuroraBoot,
    the base), the real syft and grype (tests/support/tools.py) and a local database."""
    from tests.support.standins import all_standins
    from tests.support.tools import tool_images

    found = {**all_standins(docker_client), **tool_images(docker_client)}
    return found | {"vulndb": vulndb_server.pin}


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[LocalRegistry]:
    """A real registry (distribution) on 127.0.0.1, one per test module."""
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def sigstore(tmp_path_factory):
    """The local Sigstore test instance (Fulcio-like CA, Rekor v1), one per test module."""
    from tests.support.sigstore_local import LocalSigstore

    with LocalSigstore(tmp_path_factory.mktemp("sigstore")) as local:
        yield local


@pytest.fixture(scope="module")
def env(sigstore) -> dict[str, str]:
    """What end-to-end invoke calls need here: host network, a BuildKit client, a token.

    Modules that need more override it and ask for this one by the same name.
    """
    from tests.support.standins import docker_cli

    return {
        "INVOKE_KAIROS_NETWORK": "host",
        "INVOKE_KAIROS_DOCKER_CLI": docker_cli(),
        "SIGSTORE_ID_TOKEN": sigstore.token(lifetime=3600),
    }


@pytest.fixture(scope="session")
def arm64_standins(docker_client) -> dict[str, str]:
    """The arm64 base (debootstrap under emulation, once) and kairos-init stand-ins."""
    from tests.support.standins import debian_base, kairos_init

    return {
        "base_image": debian_base(docker_client, "arm64"),
        "kairos_init": kairos_init(docker_client, "arm64"),
    }

"""Pushing for real: the engine's `docker save`, a registry on 127.0.0.1, crane reading back.

Cells on one base share its layers; a run compresses and uploads each shared
layer once. crane's `validate` (go-containerregistry's own check of every
layer's digest and diff id against the config) judges what was pushed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterator

import pytest

from kairos_distro import publish
from kairos_distro.build import Built
from kairos_distro.cells import Cell
from kairos_distro.naming import Identity
from kairos_distro.registry import Registry
from kairos_distro.runner import Runner
from tests.support.clients import call, tool
from tests.support.standins import image_from_dockerfile, image_from_files

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]


def built(client, ref: str, arch: str) -> Built:
    identity = Identity("debian", "12", "core", arch, "generic", "v0.1.0")
    return Built(Cell(arch), client.images.get(ref).id, ref, identity)


@pytest.fixture(scope="module")
def images(docker_client) -> Iterator[list[str]]:
    """Two images on one base of 4 MiB (random, so gzip cannot hide it)."""
    base = image_from_files(
        docker_client, f"kdt-push/base:{RUN}", {"/etc/base": os.urandom(4 << 20)}
    )
    tops = [
        image_from_dockerfile(
            docker_client,
            f"kdt-push/top:{RUN}-{i}",
            f"FROM {base}\nCOPY top /top\n",
            {"top": b"%d" % i},
        )
        for i in range(2)
    ]
    yield tops
    for ref in [*tops, base]:
        docker_client.images.remove(ref, force=True)


def test_cells_on_one_base_push_its_layer_once(images, docker_client, registry) -> None:
    out = io.StringIO()
    runner = Runner(out=out)
    client = Registry(registry.host)
    digests = [
        publish.push_image(runner, client, "kdt/push", built(docker_client, ref, "amd64"))
        for ref in images
    ]
    log = out.getvalue()
    assert log.count("pushing layer 1/2") == 1, log
    assert log.count("layer 1/2 is in the registry already") == 1, log
    assert log.count("pushing layer 2/2") == 2, log
    crane = tool("crane")
    layers = []
    for digest, ref in zip(digests, images, strict=True):
        pushed = f"{registry.host}/kdt/push@{digest}"
        checked = call([crane, "validate", "--remote", pushed])
        assert checked.returncode == 0, checked.stdout + checked.stderr
        config = call([crane, "config", pushed])
        assert config.returncode == 0, config.stderr
        assert (
            f"sha256:{hashlib.sha256(config.stdout.encode()).hexdigest()}"
            == docker_client.images.get(ref).id
        )
        manifest = call([crane, "manifest", pushed])
        layers.append([layer["digest"] for layer in json.loads(manifest.stdout)["layers"]])
    assert layers[0][0] == layers[1][0]  # one blob for the base
    assert layers[0][1] != layers[1][1]


def test_a_registry_without_the_layer_gets_it_again(
    images, docker_client, registry, tmp_path
) -> None:
    """The run's memory of a layer is only a hint: the registry's own answer decides."""
    from tests.support.registry import LocalRegistry

    cell = built(docker_client, images[0], "amd64")
    publish.push_image(Runner(out=io.StringIO()), Registry(registry.host), "kdt/push", cell)
    with LocalRegistry(tmp_path / "other") as other:
        out = io.StringIO()
        digest = publish.push_image(Runner(out=out), Registry(other.host), "kdt/push", cell)
        assert "pushing layer 1/2" in out.getvalue(), out.getvalue()
        checked = call([tool("crane"), "validate", "--remote", f"{other.host}/kdt/push@{digest}"])
        assert checked.returncode == 0, checked.stdout + checked.stderr

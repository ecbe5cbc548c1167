"""Benchmarks that print figures (no timed assertions live in the tests).

- seconds to bake every cell of kairos-init's matrix (in-process cookiecutter);
- the built stand-in image's size over its base, and kairos-init residue.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import docker

from tests.matrix import CELLS
from tests.support.bake import bake, retarget
from tests.support.standins import all_standins, docker_cli


def bake_all() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        for i, cell in enumerate(CELLS):
            bake(Path(tmp) / str(i), **cell.answers())
        total = time.monotonic() - start
    per_cell = total / len(CELLS) * 1000
    print(f"bake: {len(CELLS)} matrix cells in {total:.2f} s ({per_cell:.0f} ms/cell)")


def image_size() -> None:
    client = docker.from_env(timeout=600)
    images = all_standins(client)
    with tempfile.TemporaryDirectory() as tmp:
        repo = bake(Path(tmp), base_image="debian:12", registry="127.0.0.1:1/bench")
        retarget(repo, **images)
        env = {
            **os.environ,
            "INVOKE_KAIROS_NETWORK": "host",
            "INVOKE_KAIROS_DOCKER_CLI": docker_cli(),
        }
        subprocess.run(
            ["invoke", "build"], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL
        )
    built = client.images.get("kairos-local/my-org-kairos-debian:amd64-generic")
    base = client.images.get(images["base_image"])
    ratio = built.attrs["Size"] / base.attrs["Size"]
    history = built.history()
    residue = [
        h
        for h in history
        if "kairos-init" in (h.get("CreatedBy") or "") and "COPY" in (h.get("CreatedBy") or "")
    ]
    print(
        f"image: base {base.attrs['Size'] / 1e6:.1f} MB, built {built.attrs['Size'] / 1e6:.1f} MB,"
        f" ratio {ratio:.2f} (stand-in conversion adds kernel + initrd)"
    )
    print(f"image: {len(history)} layers, kairos-init copied into a layer: {bool(residue)}")


if __name__ == "__main__":
    bake_all()
    image_size()

"""Shared fixtures: a valid release.yaml as data, and ways to turn it into a file or a Release.

Tests build their own releases so they hold for every baked variant of this
repository, whatever its own release.yaml says.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kairos_distro import config
from kairos_distro.naming import Identity

ROOT = Path(__file__).resolve().parent.parent
# What a plain Ubuntu 24.04 core image says in /etc/kairos-release, for naming tests.
UBUNTU_CORE = Identity(
    flavor="ubuntu",
    flavor_release="24.04",
    variant="core",
    arch="amd64",
    model="generic",
    version="v0.1.0",
)


def run_invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`invoke ARGS` as a user runs it, from the repository root; output captured."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


RISCV64_KAIROS_INIT = "quay.io/kairos/kairos-init:v0.17.3"


def valid_release() -> dict[str, Any]:
    """A release.yaml as the template renders it with the default answers."""
    return {
        "name": "my-org-kairos-ubuntu",
        "source": "https://github.com/my-org/my-org-kairos-ubuntu",
        "description": "Kairos images of my distro",
        "version": "v0.1.0",
        "base_image": "ubuntu:24.04",
        "kairos_init": "quay.io/kairos/kairos-init:v4.3.0",
        "auroraboot": "quay.io/kairos/auroraboot:v0.26.2",
        "registry": "ghcr.io",
        "namespace": "my-org",
        "repository": "",
        "cells": [
            {
                "arch": "amd64",
                "model": "generic",
                "provider": "none",
                "trusted_boot": False,
                "fips": False,
            }
        ],
    }


@pytest.fixture
def release_data() -> dict[str, Any]:
    """A fresh, valid release mapping each test may change freely."""
    return valid_release()


@pytest.fixture
def write_release(tmp_path: Path) -> Callable[[Any], Path]:
    """Write a mapping (or raw text) as tmp_path/release.yaml and return its path."""

    def write(data: Any) -> Path:
        path = tmp_path / "release.yaml"
        text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_release() -> Callable[..., config.Release]:
    """make_release(*cells, **top): a validated Release with those cells and top fields."""

    def make(*cells: dict[str, Any], **top: Any) -> config.Release:
        data = valid_release()
        data.update(top)
        if cells:
            data["cells"] = list(cells)
        if any(c.get("arch") == "riscv64" for c in data["cells"]):
            # As the template renders it when riscv64 is chosen.
            data.setdefault("kairos_init_riscv64", RISCV64_KAIROS_INIT)
        return config.parse(data)

    return make

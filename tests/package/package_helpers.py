"""What the package's tests share: a default bake to run tasks in, a valid release as data.

ROOT is a repository baked from this checkout's template with the default answers,
so the tasks run against the files a user gets (release.yaml, tasks.py,
cloud-config.yaml, .dockerignore, renovate.json), not a copy of them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from kairos_distro.naming import Identity
from tests.support.bake import bake


def _default_bake() -> Path:
    out = Path(tempfile.mkdtemp(prefix="kdt-default-bake-"))
    atexit.register(shutil.rmtree, out, True)
    return bake(out)


ROOT = _default_bake()
# What a plain Ubuntu 24.04 core image says in /etc/kairos-release, for naming tests.
UBUNTU_CORE = Identity(
    flavor="ubuntu",
    flavor_release="24.04",
    variant="core",
    arch="amd64",
    model="generic",
    version="v0.1.0",
)
# The factory action's own example for its tag format.
UPSTREAM = Identity(
    flavor="alpine",
    flavor_release="3.21",
    variant="standard",
    arch="arm64",
    model="rpi4",
    version="v3.5.0",
    provider="k3s",
    provider_version="v1.33.2+k3s1",
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

"""This repository's own files, checked with the pinned pipeline (its tests live in the package)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from kairos_distro import config

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_release_file_is_valid() -> None:
    release = config.load(ROOT / "release.yaml")
    assert release.cells, "release.yaml lists no cells"


def test_matrix_lists_every_cell() -> None:
    run = invoke("matrix", "--format", "json")
    assert run.returncode == 0, run.stderr
    ids = [cell["cell"] for cell in json.loads(run.stdout)]
    assert ids == [c.id for c in config.load(ROOT / "release.yaml").cells]


def test_every_task_explains_itself() -> None:
    run = invoke("--list")
    assert run.returncode == 0, run.stderr
    for name in ("build", "iso", "test-boot", "sign", "publish", "release"):
        assert f"  {name} " in run.stdout, f"`invoke --list` lacks {name}"


def test_overlay_holds_no_private_key() -> None:
    """overlay/ lands in every image: a key there is published to everyone."""
    for path in (ROOT / "overlay").rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY-----" not in path.read_bytes(), f"{path} holds a private key"


def test_requirements_lock_pins_what_pyproject_pins() -> None:
    """CI installs requirements.lock: a pin moved in pyproject.toml alone never reaches it."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        (pin,) = tomllib.load(f)["project"]["dependencies"]
    lock = (ROOT / "requirements.lock").read_text()
    assert re.search(rf"^{re.escape(pin)} \\\n\s+--hash=sha256:", lock, re.M), (
        f"requirements.lock lacks {pin}: rerun the uv command in its header"
    )

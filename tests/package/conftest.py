"""Fixtures of the package's tests: a valid release as data, as a file, as a Release."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from package_helpers import RISCV64_KAIROS_INIT, valid_release

from kairos_distro import config


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

"""Bake the template and point a baked repo at local stand-ins."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[2]


# Tool caches a local ruff or pytest run may leave in the template dir; they
# are git-ignored (so never in a clone) but cookiecutter would try to render them.
CACHES = (".ruff_cache", ".pytest_cache", "__pycache__", ".benchmarks")


def bake(output: Path, **answers: Any) -> Path:
    """Bake with --no-input semantics and return the generated repo."""
    for name in CACHES:
        for junk in list((TEMPLATE / "{{cookiecutter.project}}").rglob(name)):
            shutil.rmtree(junk, ignore_errors=True)
    return Path(
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output))
    )


def default_answers() -> dict[str, Any]:
    """The answers of a --no-input bake, as cookiecutter hands them to the check."""
    from cookiecutter.generate import generate_context
    from cookiecutter.prompt import prompt_for_config

    context = generate_context(context_file=str(TEMPLATE / "cookiecutter.json"))
    return dict(prompt_for_config(context, no_input=True))


def retarget(repo: Path, **fields: str) -> None:
    """Set top-level scalars of release.yaml in place, keeping its comments."""
    path = repo / "release.yaml"
    text = path.read_text()
    for key, value in fields.items():
        text, count = re.subn(
            rf"^{key}: .*$", f"{key}: {json.dumps(value)}", text, count=1, flags=re.M
        )
        if count != 1:
            raise KeyError(f"release.yaml has no top-level {key}")
    path.write_text(text)


def set_signing(repo: Path, **fields: Any) -> None:
    """Replace release.yaml's signing block (e.g. with a local Sigstore)."""
    path = repo / "release.yaml"
    text = path.read_text()
    block = yaml.safe_dump({"signing": fields}, sort_keys=False)
    new, count = re.subn(r"^signing:\n(?:  .*\n)+", block, text, count=1, flags=re.M)
    if count != 1:
        raise KeyError("release.yaml has no signing block")
    path.write_text(new)


def set_vulnerabilities(repo: Path, **fields: Any) -> None:
    """Replace release.yaml's vulnerabilities block (the policy)."""
    path = repo / "release.yaml"
    block = yaml.safe_dump({"vulnerabilities": fields}, sort_keys=False)
    new, count = re.subn(
        r"^vulnerabilities:\n(?:  .*\n)+", block, path.read_text(), count=1, flags=re.M
    )
    if count != 1:
        raise KeyError("release.yaml has no vulnerabilities block")
    path.write_text(new)


def set_cells(repo: Path, cells: list[dict[str, Any]]) -> None:
    """Replace the cells list (the last block of release.yaml)."""
    path = repo / "release.yaml"
    head = path.read_text().split("\ncells:", 1)[0]
    path.write_text(head + "\n" + yaml.safe_dump({"cells": cells}, sort_keys=False))

"""Checks for this repository: `nox` runs lint then tests; `nox --list` shows them."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check (settings in pyproject.toml)."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests and the invoke tasks in --dry mode (no Docker engine needed)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)

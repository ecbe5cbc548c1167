"""The baked repository's lock files, and the wheel their kairos-distro line names.

Every CI job of a baked repository installs `requirements.lock` with
`pip install --require-hashes`: kairos-distro pinned exactly, with the sha256 of
its wheel, and every dependency with the hashes of its files on PyPI. The lock
is written before PyPI has the wheel, so the wheel is built reproducibly (fixed
SOURCE_DATE_EPOCH, a clean copy of its sources, the exact setuptools of
pyproject.toml's build-system) and package.yml refuses to publish a wheel whose
sha256 is not the lock's: PyPI serves the bytes the lock names.

    python .ci/lock.py build OUTDIR    # sdist and wheel, as package.yml publishes them
    python .ci/lock.py check OUTDIR    # the wheel in OUTDIR is the one the lock names
    python .ci/lock.py write           # both lock files (`nox -s lock`: needs build and uv)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "{{cookiecutter.project}}"
LOCK = PROJECT / "requirements.lock"
# cruft, for the template-update job only: a lock of its own keeps cookiecutter
# and GitPython out of the jobs that sign and publish.
CRUFT_LOCK = PROJECT / "cruft.lock"
# What the wheel is made of; anything else in the checkout never reaches it.
WHEEL_SOURCES = ("kairos_distro", "pyproject.toml")
# 1980-01-01, the earliest time a zip entry can carry: every file of the wheel
# gets it, so the same sources give the same bytes on any machine.
SOURCE_DATE_EPOCH = "315532800"
# The command each lock's header records: what Renovate's pip-compile manager
# reruns in the baked repository (its options with arguments need `=`).
COMPILE = "uv pip compile --universal --generate-hashes --python-version=3.11"


def version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["version"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(outdir: Path) -> Path:
    """Build the sdist and wheel from a clean copy of their sources; the wheel's path."""
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "kairos-distro"
        for name in WHEEL_SOURCES:
            if (ROOT / name).is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(ROOT / name, source / name, ignore=ignore)
            else:
                shutil.copy(ROOT / name, source / name)
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        argv = [sys.executable, "-m", "build", "--outdir", str(outdir), str(source)]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise SystemExit(f"python -m build of kairos-distro failed: {last[0]}")
    return outdir / f"kairos_distro-{version()}-py3-none-any.whl"


def pinned(text: str, name: str) -> tuple[str, list[str]]:
    """(version, sha256 hashes) of `name==VERSION` in a lock file's text."""
    match = re.search(rf"^{re.escape(name)}==(\S+)((?: \\\n\s+--hash=sha256:\w+)+)", text, re.M)
    if not match:
        raise SystemExit(f"{LOCK.relative_to(ROOT)}: no hashed {name}== line")
    return match[1], re.findall(r"sha256:(\w+)", match[2])


def check(outdir: Path) -> str:
    """One line: the wheel in outdir is the lock's kairos-distro, or why not."""
    wheel = outdir / f"kairos_distro-{version()}-py3-none-any.whl"
    lock = LOCK.relative_to(ROOT)
    if not wheel.is_file():
        raise SystemExit(f"{wheel}: no wheel of kairos-distro {version()} to check")
    locked_version, hashes = pinned(LOCK.read_text(), "kairos-distro")
    if locked_version != version():
        raise SystemExit(f"{lock}: kairos-distro=={locked_version}, pyproject.toml {version()}")
    if hashes != [sha256(wheel)]:
        raise SystemExit(
            f"{wheel.name}: sha256 {sha256(wheel)} is not {lock}'s {' '.join(hashes)}:"
            " run `nox -s lock` and commit the lock before tagging"
        )
    return f"{wheel.name}: sha256 {sha256(wheel)}, as {lock} names it"


def compile_lock(workdir: Path, source: str, output: Path, *extra: str) -> None:
    """`uv pip compile` of workdir/source into output.

    The header names the command as a baked repository runs it, on its own
    pyproject.toml or cruft.in, so that is what Renovate reruns.
    """
    header = f"{COMPILE} --output-file={output.name} {source}"
    argv = [*COMPILE.split(), "--quiet", "--custom-compile-command", header, *extra]
    subprocess.run([*argv, "--output-file", output.name, source], check=True, cwd=workdir)
    text = (workdir / output.name).read_text()
    # The annotation a bake's own run writes: its project, not this stand-in.
    output.write_text(text.replace("# via lock (", "# via {{ cookiecutter.project }} ("))


def write() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        wheel = build(workdir / "wheels")
        # A stand-in for the baked pyproject.toml: the one pin it carries.
        (workdir / "pyproject.toml").write_text(
            '[project]\nname = "lock"\nversion = "0"\nrequires-python = ">=3.11"\n'
            f'dependencies = ["kairos-distro=={version()}"]\n'
        )
        # kairos-distro from the wheel just built (PyPI gets it at the tag), the rest from PyPI.
        find = ["--find-links", str(wheel.parent), "--no-emit-find-links"]
        compile_lock(workdir, "pyproject.toml", LOCK, *find)
        shutil.copy(PROJECT / "cruft.in", workdir / "cruft.in")
        compile_lock(workdir, "cruft.in", CRUFT_LOCK)
        print(check(wheel.parent))


def main(argv: list[str]) -> None:
    match argv:
        case ["build", outdir]:
            print(build(Path(outdir)))
        case ["check", outdir]:
            print(check(Path(outdir)))
        case ["write"]:
            write()
        case _:
            raise SystemExit(__doc__.split("\n\n")[-1])


if __name__ == "__main__":
    main(sys.argv[1:])

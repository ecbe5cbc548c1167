"""This checkout as a fresh git clone holds it, and baking from such a clone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.bake import TEMPLATE

# Commits made by the tests, whatever the machine's git config says.
IDENTITY = {
    "GIT_AUTHOR_NAME": "kdt-test",
    "GIT_AUTHOR_EMAIL": "kdt-test@localhost",
    "GIT_COMMITTER_NAME": "kdt-test",
    "GIT_COMMITTER_EMAIL": "kdt-test@localhost",
}


def git(repo: Path, *args: str) -> str:
    """Run git in repo with the test identity; its stdout, stripped."""
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **IDENTITY},
    )
    return proc.stdout.strip()


def clone_template(dest: Path, remote: str | None) -> Path:
    """A copy of this checkout's files (committed or not) as a fresh git clone would hold them."""
    listed = subprocess.run(
        [
            "git",
            "-C",
            str(TEMPLATE),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = TEMPLATE / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(source.read_bytes())
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    if remote:
        subprocess.run(["git", "-C", str(dest), "remote", "add", "origin", remote], check=True)
    return dest


def commit_all(repo: Path, message: str) -> str:
    """Commit every change in repo; the new HEAD."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def bake_clone(clone: Path, out: Path, *answers: str) -> Path:
    """`cookiecutter --no-input .` in the clone, as a newcomer types it; the baked repo."""
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(out), ".", *answers],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    )
    (repo,) = out.iterdir()
    return repo

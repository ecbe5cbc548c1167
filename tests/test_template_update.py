"""Template updates reach baked repos through cruft, keeping the owner's edits.

All local: the template is a git clone of this checkout that is its own
upstream (its `origin` is its own file:// URL), so cruft clones it by URL as
it would clone GitHub, and a commit to it is the template moving on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.bake import retarget
from tests.support.template_clone import bake_clone, clone_template, commit_all, git

UPSTREAM = "https://github.com/OWNER/kairos-distro-template"
KEYS = {"template", "commit", "checkout", "context", "directory", "skip"}
README_LINE = "Template change: a line every baked README gains."
DOCKERFILE_LINE = "# Template change: a line every baked Dockerfile gains."
RELEASE_LINE = "# Template change: a comment at the end of release.yaml."
MOTD = "Welcome to the owner's distro.\n"
OWNER_NOTE = "Owner's note: our overlay files.\n"
OVERLAY_TITLE = "# overlay/ (files for /)"


def cruft(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The cruft CLI of this environment, in the baked repo."""
    return subprocess.run(
        [sys.executable, "-m", "cruft", *args], cwd=repo, capture_output=True, text=True
    )


def state(repo: Path) -> dict:
    return json.loads((repo / ".cruft.json").read_text())


def own_upstream(tmp_path: Path) -> tuple[Path, str]:
    """A committed template clone whose origin is itself; its HEAD."""
    clone = tmp_path / "kairos-distro-template"
    clone.mkdir()
    clone_template(clone, clone.as_uri())
    return clone, commit_all(clone, "template as of this checkout")


def baked_and_owned(tmp_path: Path, clone: Path) -> Path:
    """Bake from the clone, commit the bake, then commit the owner's edits."""
    repo = bake_clone(clone, tmp_path / "out")
    git(repo, "init", "-q")
    commit_all(repo, "bake")
    retarget(repo, version="v0.2.0")
    (repo / "overlay/etc").mkdir()
    (repo / "overlay/etc/motd").write_text(MOTD)
    with (repo / "overlay/README.md").open("a") as readme:
        readme.write(OWNER_NOTE)
    commit_all(repo, "owner's edits")
    return repo


def move_template(clone: Path, edits: dict[str, str]) -> str:
    """Append a line to each template file named; commit; the new HEAD."""
    for name, line in edits.items():
        path = clone / "{{cookiecutter.project}}" / name
        path.write_text(path.read_text() + line + "\n")
    return commit_all(clone, "template moves on")


def test_fresh_bake_records_the_template_for_cruft(tmp_path: Path) -> None:
    clone = clone_template(tmp_path / "kairos-distro-template", UPSTREAM)
    head = commit_all(clone, "template")
    repo = bake_clone(clone, tmp_path / "out")
    recorded = (repo / ".cruft.json").read_text()
    cruft_state = json.loads(recorded)
    assert set(cruft_state) == KEYS
    assert cruft_state["template"] == UPSTREAM
    assert cruft_state["commit"] == head
    assert cruft_state["checkout"] is None and cruft_state["directory"] is None
    assert cruft_state["skip"] == [".cruft.json"]
    answers = cruft_state["context"]["cookiecutter"]
    assert answers["_template"] == UPSTREAM and answers["_commit"] == head
    assert not {"_output_dir", "_repo_dir", "_checkout"} & set(answers)
    assert answers["publisher"] == "my-org"
    assert str(tmp_path) not in recorded, "no path of the baking machine is recorded"
    assert not (repo / ".cookiecutter.json").exists(), ".cruft.json is the one record"


def test_template_update_arrives_and_keeps_the_owners_edits(tmp_path: Path) -> None:
    clone, _ = own_upstream(tmp_path)
    repo = baked_and_owned(tmp_path, clone)
    assert cruft(repo, "check").returncode == 0

    # overlay/ is the owner's, and still takes the template's edits by merge.
    overlay = clone / "{{cookiecutter.project}}/overlay/README.md"
    overlay.write_text(overlay.read_text().replace("# overlay/\n", OVERLAY_TITLE + "\n"))
    new = move_template(
        clone,
        {"README.md": README_LINE, "Dockerfile": DOCKERFILE_LINE, "release.yaml": RELEASE_LINE},
    )
    check = cruft(repo, "check")
    assert check.returncode != 0 and "out of date" in check.stdout, check.stdout + check.stderr
    update = cruft(repo, "update", "-y")
    assert update.returncode == 0, update.stdout + update.stderr

    assert (repo / "README.md").read_text().endswith(README_LINE + "\n")
    assert (repo / "Dockerfile").read_text().endswith(DOCKERFILE_LINE + "\n")
    release = (repo / "release.yaml").read_text()
    assert release.endswith(RELEASE_LINE + "\n")
    assert 'version: "v0.2.0"' in release, "the owner's value is kept"
    assert (repo / "overlay/etc/motd").read_text() == MOTD
    overlay_readme = (repo / "overlay/README.md").read_text()
    assert overlay_readme.startswith(OVERLAY_TITLE) and overlay_readme.endswith(OWNER_NOTE)
    assert not list(repo.rglob("*.rej")) and "<<<<<<<" not in release
    assert state(repo)["commit"] == new
    assert state(repo)["context"]["cookiecutter"]["_commit"] == new

    commit_all(repo, "template update")
    after = cruft(repo, "check")
    assert after.returncode == 0, after.stdout + after.stderr
    assert cruft(repo, "update", "-y").stdout.startswith("Nothing to do")


def test_a_clash_is_left_as_a_conflict_to_resolve(tmp_path: Path) -> None:
    """Owner and template edit the same line: the update marks it, never drops either side."""
    clone, _ = own_upstream(tmp_path)
    repo = baked_and_owned(tmp_path, clone)
    owner = (repo / "Dockerfile").read_text().replace("ARG MODEL=generic", "ARG MODEL=rpi4")
    (repo / "Dockerfile").write_text(owner)
    commit_all(repo, "owner's default model")
    dockerfile = clone / "{{cookiecutter.project}}/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("ARG MODEL=generic", "ARG MODEL=rpi3"))
    new = move_template(clone, {"README.md": README_LINE})

    update = cruft(repo, "update", "-y")
    assert update.returncode == 0, update.stdout + update.stderr
    conflicted = git(repo, "diff", "--name-only", "--diff-filter=U").split()
    assert conflicted == ["Dockerfile"], update.stderr
    merged = (repo / "Dockerfile").read_text()
    assert "<<<<<<<" in merged and "ARG MODEL=rpi4" in merged and "ARG MODEL=rpi3" in merged
    assert (repo / "README.md").read_text().endswith(README_LINE + "\n")
    assert state(repo)["commit"] == new


def test_a_typed_url_is_recorded_as_git_clones_it(tmp_path: Path) -> None:
    """`git+file://` (like `gh:`) is cookiecutter's form; .cruft.json gets the URL git cloned."""
    clone, head = own_upstream(tmp_path)
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(f"cookiecutters_dir: {tmp_path / 'cc'}\nreplay_dir: {tmp_path / 'rp'}\n")
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", "out", f"git+{clone.as_uri()}"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
        env={**os.environ, "COOKIECUTTER_CONFIG": str(config)},
    )
    (repo,) = (tmp_path / "out").iterdir()
    assert state(repo)["template"] == clone.as_uri()
    assert state(repo)["commit"] == head

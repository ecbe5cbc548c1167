"""Drop what the answers don't use and record the bake for cruft (`.cruft.json`)."""

import json
import shutil
import subprocess
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
TEMPLATE = Path(json.loads(r"""[{{ template_dir | tojson }}]""")[0])
CI_FILES = {
    "github": [".github"],
    "gitlab": [".gitlab-ci.yml", ".gitlab"],
}
# Machine-specific context that must not land in the repo; _template and
# _commit are set below to what cruft itself records.
PRIVATE = ("_output_dir", "_repo_dir", "_checkout", "_template", "_commit")
# Paths `cruft update` leaves alone. Only .cruft.json: cruft rewrites it after
# an update, and the copy this hook writes into cruft's own renders differs
# (another commit) and must not be merged. Everything else the template made,
# release.yaml and overlay/ included, takes template changes by a 3-way merge
# that keeps the owner's edits (a clash is left as a conflict to resolve, never
# silently dropped), so skipping them would only hide template fixes. What the
# owner alone makes (keys/, artifacts/, new overlay files) the template never
# renders, so updates cannot touch it.
SKIP = [".cruft.json"]


def prune_ci(chosen: str) -> None:
    for system, paths in CI_FILES.items():
        if system == chosen:
            continue
        for name in paths:
            path = Path(name)
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


def git(*args: str) -> str | None:
    """`git -C TEMPLATE ...`'s output, or None when it fails or git is missing."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(TEMPLATE), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    out = proc.stdout.strip()
    return out if proc.returncode == 0 and out else None


def is_checkout() -> bool:
    """The template is the top of a git work tree (not a plain directory inside one)."""
    top = git("rev-parse", "--show-toplevel")
    return top is not None and Path(top).resolve() == TEMPLATE.resolve()


def template_source() -> str | None:
    """Where the template comes from, the same on every machine, as `git clone` takes it.

    The checkout's `origin` comes first: for `gh:OWNER/REPO` or a URL it is the
    URL cookiecutter cloned (abbreviations expanded, which cruft needs: it runs
    `git clone` on this), and a local clone (`cookiecutter .`) is recorded by its
    remote, never by this machine's path. A URL typed for a template that is not
    a checkout stays as typed; a local directory without a remote is not recorded.
    """
    remote = git("remote", "get-url", "origin") if is_checkout() else None
    if remote and not Path(remote).expanduser().exists():
        return remote
    typed = ANSWERS.get("_template", "")
    if typed and not Path(typed).expanduser().exists():
        return typed
    return None


def template_commit() -> str | None:
    """The commit baked from, when the template is a git checkout with one."""
    return git("rev-parse", "HEAD") if is_checkout() else None


def record_bake() -> None:
    """`.cruft.json` as `cruft create` writes it: `cruft check`/`update` read it."""
    source, commit = template_source(), template_commit()
    answers = {k: v for k, v in ANSWERS.items() if k not in PRIVATE}
    # cruft sets these two in the context it renders and writes back on update.
    if source:
        answers["_template"] = source
    if commit:
        answers["_commit"] = commit
    state = {
        "template": source,
        "commit": commit,
        "checkout": ANSWERS.get("_checkout"),
        "context": {"cookiecutter": answers},
        "directory": None,
        "skip": SKIP,
    }
    text = json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": "))
    Path(".cruft.json").write_text(text + "\n")


prune_ci(ANSWERS["ci"])
record_bake()

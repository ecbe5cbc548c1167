"""Drop what the answers don't use and record the answers for regeneration."""

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
# Machine-specific context that must not land in the repo.
PRIVATE = ("_output_dir", "_repo_dir", "_template")


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


def template_source() -> str | None:
    """Where the template comes from, the same on every machine.

    `gh:OWNER/REPO` or a URL stays as typed; a local clone (`cookiecutter .`)
    is recorded by its git remote, never by this machine's path; a local
    directory without a remote is not recorded.
    """
    typed = ANSWERS.get("_template", "")
    if typed and not Path(typed).expanduser().exists():
        return typed
    try:
        remote = subprocess.run(
            ["git", "-C", str(TEMPLATE), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # no git on this machine
        return None
    url = remote.stdout.strip()
    return url if remote.returncode == 0 and url and not Path(url).exists() else None


def record_answers() -> None:
    """`cookiecutter --replay-file .cookiecutter.json TEMPLATE` bakes this repo again."""
    kept = {k: v for k, v in ANSWERS.items() if k not in PRIVATE}
    source = template_source()
    if source:
        kept["_template"] = source
    Path(".cookiecutter.json").write_text(json.dumps({"cookiecutter": kept}, indent=2) + "\n")


prune_ci(ANSWERS["ci"])
record_answers()

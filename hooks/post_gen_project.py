"""Drop what the answers don't use and record the answers for regeneration."""

import json
import shutil
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
CI_FILES = {
    "github": [".github"],
    "gitlab": [".gitlab-ci.yml", ".gitlab"],
}
# Machine-specific context that must not land in the repo.
PRIVATE = ("_output_dir", "_repo_dir")


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


def record_answers() -> None:
    """`cookiecutter --replay-file .cookiecutter.json TEMPLATE` bakes this repo again."""
    kept = {k: v for k, v in ANSWERS.items() if k not in PRIVATE}
    Path(".cookiecutter.json").write_text(json.dumps({"cookiecutter": kept}, indent=2) + "\n")


prune_ci(ANSWERS["ci"])
record_answers()

"""A Jinja extension for this template's hooks: where the template itself is.

cookiecutter hands hooks `_repo_dir` as typed (`cookiecutter .` gives "."),
relative to a directory the hooks do not run in. cookiecutter imports this
module from the template directory (its local-extensions feature puts that
directory on sys.path), so the module's own path names the template.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from jinja2 import Environment
from jinja2.ext import Extension

HERE = Path(__file__).resolve().parent


def package_version() -> str:
    """kairos-distro's version in this checkout: what a bake pins."""
    with (HERE / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["version"]


class TemplateDir(Extension):
    """`{{ template_dir }}`: the template's absolute directory; `{{ package_version }}`:
    the kairos-distro version of this checkout (its pyproject.toml), which a bake pins."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["template_dir"] = str(HERE)
        environment.globals["package_version"] = package_version()

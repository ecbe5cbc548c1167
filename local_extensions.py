"""The Jinja extension of this template: where it is, YAML strings, yes/no answers, the check.

cookiecutter hands hooks `_repo_dir` as typed (`cookiecutter .` gives "."),
relative to a directory the hooks do not run in. cookiecutter imports this
module from the template directory (its local-extensions feature puts that
directory on sys.path), so the module's own path names the template.
"""

from __future__ import annotations

import functools
import json
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from cookiecutter.exceptions import CookiecutterException
from jinja2 import Environment
from jinja2.ext import Extension

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "{{cookiecutter.project}}"


def package_version() -> str:
    """kairos-distro's version in this checkout: what a bake pins."""
    with (HERE / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["version"]


def tool_images() -> dict[str, str]:
    """The syft and grype images the package defaults to: what a bake pins."""
    ours()
    from kairos_distro import sbom, vulndb

    return {"syft": sbom.SYFT_IMAGE, "grype": vulndb.GRYPE_IMAGE}


def ours() -> None:
    """Put this checkout first on sys.path, so `kairos_distro` is the version the bake
    pins (cookiecutter appends the template directory, after any installed one)."""
    if sys.path[:1] != [str(HERE)]:
        sys.path.insert(0, str(HERE))


def yamlstr(value: Any) -> str:
    """A YAML double-quoted scalar of `value`, in UTF-8 (`tojson` writes
    "\\ud83d\\ude80" for 🚀, which PyYAML reads as two lone surrogates)."""
    if not isinstance(value, str):
        return json.dumps(value)
    ours()
    from kairos_distro.words import quoted

    return quoted(value)


def as_bool(value: Any) -> Any:
    """A yes/no answer as true/false (cookiecutter 2.6 passes `fips=no` on as text);
    any other value as it is, for the check to refuse."""
    ours()
    from kairos_distro.answers import as_bool as convert

    converted = convert(value)
    return value if converted is None else converted


class AnswerRefused(CookiecutterException, click.ClickException):
    """A refused answer: cookiecutter's command line (click) prints the one line
    to stderr and exits 1; a library caller catches a CookiecutterException."""

    def show(self, file: Any = None) -> None:
        click.echo(f"ERROR: {self.message}", err=True)


def render_release(answers: Mapping[str, Any]) -> str:
    """release.yaml as the bake writes it."""
    from cookiecutter.environment import StrictEnvironment

    env = StrictEnvironment(context={"cookiecutter": answers}, keep_trailing_newline=True)
    return env.from_string((PROJECT / "release.yaml").read_text()).render(cookiecutter=answers)


@functools.cache
def questions() -> dict[str, Any]:
    """cookiecutter.json: the answers asked for and their defaults or choices."""
    return json.loads((HERE / "cookiecutter.json").read_text(encoding="utf-8"))


def choices() -> dict[str, list[str]]:
    """The choice answers and their choices."""
    return {k: v for k, v in questions().items() if isinstance(v, list) and not k.startswith("_")}


def refusal(answers: Mapping[str, Any]) -> str | None:
    """The one line refusing these answers, or None when the bake may go on."""
    ours()
    from kairos_distro import answers as rules

    try:
        rules.check(answers, choices(), lambda: render_release(answers))
    except rules.AnswerError as err:
        return str(err)
    return None


def check_answers(answers: Mapping[str, Any]) -> str:
    """cookiecutter.json's last private variable renders this after every answer is in,
    before cookiecutter records them (its replay file) or makes anything. A replayed
    bake has only some answers here: `project_dir` checks them all."""
    visible = [k for k in questions() if k[0] != "_"]
    if not all(k in answers for k in visible):
        return ""
    line = refusal(answers)
    if line:
        raise AnswerRefused(line)
    return ""


def project_dir(answers: Mapping[str, Any]) -> str:
    """The project directory's name, once the answers pass: cookiecutter renders it,
    then makes the directory (generate.py, render_and_create_dir), so a refusal here
    leaves nothing behind, on a replayed bake (which skips `__checked`) too."""
    line = refusal(answers)
    if line:
        raise AnswerRefused(line)
    return answers["project"]


class TemplateDir(Extension):
    """`{{ template_dir }}`: the template's absolute directory; `{{ package_version }}`:
    the kairos-distro version of this checkout (its pyproject.toml), which a bake pins;
    `{{ tool_images }}`: the package's syft and grype images;
    filters `yamlstr` (a YAML string) and `as_bool` (a yes/no answer); `check_answers`."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["template_dir"] = str(HERE)
        environment.globals["package_version"] = package_version()
        environment.globals["tool_images"] = tool_images()
        environment.filters["yamlstr"] = yamlstr
        environment.filters["as_bool"] = as_bool
        environment.filters["check_answers"] = check_answers
        environment.filters["project_dir"] = project_dir

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        # The template directory's name, as cookiecutter renders it for the project's.
        return "{{ cookiecutter | project_dir }}" if source == PROJECT.name else source

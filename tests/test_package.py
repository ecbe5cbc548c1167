"""The kairos-distro package as PyPI would get it, and as a bake pins it."""

from __future__ import annotations

import json
import shutil
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

from local_extensions import package_version
from tests.conftest import run
from tests.support.bake import TEMPLATE


def test_the_wheel_carries_every_module_at_the_project_version(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves build/ and *.egg-info next to its sources.
    source = tmp_path / "source"
    shutil.copytree(TEMPLATE / "kairos_distro", source / "kairos_distro")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(TEMPLATE / name, source / name)
    run(source, sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), ".")
    (wheel,) = tmp_path.glob("kairos_distro-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = Parser().parsestr(
            z.read(f"kairos_distro-{package_version()}.dist-info/METADATA").decode()
        )
    assert meta["Name"] == "kairos-distro" and meta["Version"] == package_version()
    modules = {f"kairos_distro/{p.name}" for p in (TEMPLATE / "kairos_distro").glob("*.py")}
    assert modules <= names, modules - names
    assert not any(n.startswith("tests/") for n in names)


def test_a_bake_pins_this_version_exactly(baked) -> None:
    repo = baked()
    with (repo / "pyproject.toml").open("rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    assert deps == [f"kairos-distro=={package_version()}"]
    assert not (repo / "kairos_distro").exists()


def test_renovate_proposes_each_new_version_of_the_package(baked) -> None:
    rules = json.loads((baked() / "renovate.json").read_text())["packageRules"]
    (rule,) = [r for r in rules if r.get("matchPackageNames") == ["kairos-distro"]]
    assert rule["matchManagers"] == ["pep621"] and rule["rangeStrategy"] == "pin"
    assert rule.get("enabled", True)


def test_a_default_bake_is_under_1000_lines_of_python_and_yaml(baked) -> None:
    repo = baked()
    sizes = {
        str(p.relative_to(repo)): len(p.read_text().splitlines())
        for p in repo.rglob("*")
        if p.suffix in (".py", ".yml", ".yaml") and p.is_file()
    }
    assert "tasks.py" in sizes and "release.yaml" in sizes
    assert sum(sizes.values()) < 1000, sizes


def test_tasks_py_adds_and_overrides_tasks_as_its_docstring_shows(baked) -> None:
    repo = baked()
    tasks = repo / "tasks.py"
    tasks.write_text(
        tasks.read_text()
        + "\nfrom invoke import task\n\n\n@task\ndef hello(c):\n"
        + '    "Say hello."\n    print("hello")\n\n\n@task\ndef my_matrix(c):\n'
        + '    "Mine."\n    print("my matrix")\n\n\n'
        + 'ns.add_task(hello)\nns.add_task(my_matrix, name="matrix")\n'
    )
    assert run(repo, "invoke", "hello").stdout == "hello\n"
    assert run(repo, "invoke", "matrix").stdout == "my matrix\n"
    assert "release" in run(repo, "invoke", "--list").stdout  # the pipeline's tasks stay

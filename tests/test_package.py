"""The kairos-distro package as PyPI would get it, and as a bake pins it."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from local_extensions import package_version
from tests.conftest import run
from tests.support.bake import TEMPLATE


def test_the_wheel_carries_every_module_at_the_project_version(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves build/ and *.egg-info next to its sources.
    source = tmp_path / "source"
    shutil.copytree(TEMPLATE / "kairos_distro", source / "kairos_distro")
    for name in ("pyproject.toml",):
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
    renovate = json.loads((baked() / "renovate.json").read_text())
    (rule,) = [
        r for r in renovate["packageRules"] if r.get("matchPackageNames") == ["kairos-distro"]
    ]
    assert rule["matchManagers"] == ["pip-compile"] and rule["rangeStrategy"] == "pin"
    assert rule.get("enabled", True)
    # pip-compile reads pyproject.toml through the lock's header and re-locks; pep621 would not.
    assert renovate["pep621"]["enabled"] is False
    patterns = [p.strip("/") for p in renovate["pip-compile"]["managerFilePatterns"]]
    for lock in LOCKS:
        assert any(re.search(p, lock) for p in patterns), lock


# -- The baked lock files ---------------------------------------------------------------------

LOCK_SCRIPT = TEMPLATE / ".ci" / "lock.py"
# Renovate's pip-compile manager reruns the command of a lock's header only if it
# can parse it: `uv` with these options, those with a value written `--opt=value`
# (renovatebot/renovate lib/modules/manager/pip-compile/common.ts, allowedOptions.uv).
RENOVATE_UV_FLAGS = {"--universal", "--generate-hashes"}
RENOVATE_UV_VALUES = {"--python-version", "--output-file"}
HEADER = re.compile(r"^(#.*?\n)+# {4}(?P<command>\S*)(?P<arguments> .*?)?\n")
ENTRY = re.compile(r"^(?P<name>[\w.-]+)==(?P<version>\S+)(?: ; (?P<marker>[^\\]+?))? \\$")


def cruft_pin() -> str:
    """The template's own cruft pin (requirements.txt), which cruft.in must carry too."""
    text = (TEMPLATE / "requirements.txt").read_text()
    return re.search(r"^cruft==(\S+)", text, re.M)[1]


def locked(text: str) -> dict[str, dict]:
    """name -> version, marker, hashes, and the packages it is `# via`, per lock entry."""
    entries: dict[str, dict] = {}
    current: dict = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if not line.startswith(" "):
            match = ENTRY.match(line)
            assert match, f"not a pinned, hashed requirement: {line}"
            current = {**match.groupdict(), "hashes": [], "via": []}
            entries[canonicalize_name(match["name"])] = current
        elif line.strip().startswith("--hash=sha256:"):
            current["hashes"].append(line.split(":", 1)[1].rstrip(" \\"))
        elif line.strip() not in ("# via",):
            current["via"].append(re.sub(r"^#\s+(via )?", "", line.strip()).split(" (")[0])
    return entries


LOCKS = {
    "requirements.lock": ("kairos-distro", package_version, "pyproject.toml"),
    "cruft.lock": ("cruft", cruft_pin, "cruft.in"),
}


@pytest.mark.parametrize(("lock", "root", "version", "source"), [(k, *v) for k, v in LOCKS.items()])
def test_lock_is_the_hashed_closure_of_its_root(lock, root, version, source, baked) -> None:
    repo = baked()
    text = (repo / lock).read_text()
    entries = locked(text)
    assert entries[root]["version"] == version()
    if root == "kairos-distro":  # PyPI has one file of it: the wheel package.yml checked
        assert len(entries[root]["hashes"]) == 1
        requires = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())["project"]
        requires = [Requirement(r) for r in requires["dependencies"]]
    else:
        requires = [Requirement(r) for r in metadata.requires(root) or []]
    for entry in entries.values():
        assert entry["hashes"] and all(len(h) == 64 for h in entry["hashes"]), entry
    # Every dependency of the root, at a version its range allows.
    for req in requires:
        if req.marker and not any(
            req.marker.evaluate({"python_version": v, "sys_platform": "linux", "extra": ""})
            for v in ("3.11", "3.12")
        ):
            continue
        name = canonicalize_name(req.name)
        assert name in entries, f"{lock} lacks {req}"
        assert req.specifier.contains(entries[name]["version"], prereleases=True), req
        assert root in entries[name]["via"], (name, entries[name]["via"])
    # Nothing else: each entry is the root or needed by another entry (uv's `# via`).
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["name"]
    for name, entry in entries.items():
        if name == root:
            assert entry["via"] in ([project], ["-r cruft.in"]), entry["via"]
        else:
            assert entry["via"] and set(entry["via"]) <= set(entries), (name, entry["via"])


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_header_is_a_command_renovate_can_rerun(lock: str, baked) -> None:
    repo = baked()
    header = HEADER.match((repo / lock).read_text())
    assert header and header["command"] == "uv", lock
    argv = shlex.split(header["arguments"])
    assert argv[:2] == ["pip", "compile"]
    options = [a for a in argv[2:] if a.startswith("-")]
    sources = [a for a in argv[2:] if not a.startswith("-")]
    assert sources == [LOCKS[lock][2]] and (repo / sources[0]).is_file()
    for option in options:
        name, _, value = option.partition("=")
        assert option in RENOVATE_UV_FLAGS or (name in RENOVATE_UV_VALUES and value), option
    assert f"--output-file={lock}" in options


def test_the_wheel_builds_byte_for_byte_into_the_hash_the_lock_names(tmp_path: Path) -> None:
    """Two builds in two places give the same bytes: the ones requirements.lock names."""
    hashes = set()
    for place in ("one", "two"):
        out = tmp_path / place
        run(TEMPLATE, sys.executable, str(LOCK_SCRIPT), "build", str(out))
        (wheel,) = out.glob("kairos_distro-*.whl")
        hashes.add(hashlib.sha256(wheel.read_bytes()).hexdigest())
    checked = run(TEMPLATE, sys.executable, str(LOCK_SCRIPT), "check", str(out), check=False)
    assert checked.returncode == 0, (
        f"{checked.stderr.strip()}\n(the lock names the wheel of the sources at their last"
        " `nox -s lock`: rerun it after changing kairos_distro/ or pyproject.toml)"
    )
    (built,) = hashes
    assert checked.stdout.split("sha256 ")[1].split(",")[0] == built


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda h: "0" * 64, "is not {{cookiecutter.project}}/requirements.lock's " + "0" * 64),
        (lambda h: h, "as {{cookiecutter.project}}/requirements.lock names it"),
    ],
)
def test_package_workflow_check_refuses_any_other_wheel(tmp_path: Path, edit, expected) -> None:
    """`lock.py check` against a copy of the lock whose kairos-distro hash is edited."""
    lock_py = tmp_path / ".ci" / "lock.py"
    lock_py.parent.mkdir()
    shutil.copy(LOCK_SCRIPT, lock_py)
    shutil.copy(TEMPLATE / "pyproject.toml", tmp_path / "pyproject.toml")
    project = tmp_path / "{{cookiecutter.project}}"
    project.mkdir()
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = dist / f"kairos_distro-{package_version()}-py3-none-any.whl"
    wheel.write_bytes(b"a wheel")
    digest = hashlib.sha256(b"a wheel").hexdigest()
    (project / "requirements.lock").write_text(
        f"kairos-distro=={package_version()} \\\n    --hash=sha256:{edit(digest)}\n"
    )
    checked = run(tmp_path, sys.executable, str(lock_py), "check", str(dist), check=False)
    out = (checked.stdout + checked.stderr).strip()
    assert len(out.splitlines()) == 1 and expected in out, out
    assert (checked.returncode == 0) == (edit(digest) == digest)


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

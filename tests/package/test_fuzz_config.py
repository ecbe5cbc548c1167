"""Fuzz release.yaml loading: any text ends in a Release or one line, in bounded time and memory.

CI runs a fixed (derandomized) set of examples; for a longer hunt locally:
    KAIROS_FUZZ=long python -m pytest tests/package/test_fuzz_config.py
"""

from __future__ import annotations

import json
import os
import tracemalloc
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from package_helpers import ROOT

from kairos_distro import config
from kairos_distro.config import ConfigError

MEMORY_MAX = 64 * 2**20  # bytes a single load may allocate at its peak
settings.register_profile(
    "ci",
    max_examples=300,  # about 4 s
    derandomize=True,
    database=None,
    deadline=2000,  # ms per example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("long", settings.get_profile("ci"), max_examples=5000, derandomize=False)
PROFILE = settings.get_profile(os.environ.get("KAIROS_FUZZ", "ci"))

RELEASE = (ROOT / "release.yaml").read_text(encoding="utf-8")
# Pieces with a meaning to YAML or to the loader's limits.
TOKENS = [
    "&a ", "*a", "&b [*a, *a, *a, *a]", "<<: *a", "[", "]", "{", "}", ",", ": ", "- ", "? ",
    '"', "'", "\t", "\n", "  ", "#", "!!binary ", "!!timestamp ", "!!python/tuple ", "!x ",
    "!!int ", "!!str ", "1.10", "null", "~", "2024-01-01", "yes", "0x1F", "1:2:3",
    '"\\ud83d\\ude80"', '"\\ud83d"', '"\\ude80"', "\\u0000", "---\n", "...\n", "%YAML 1.1\n",
    "\ufeff", "🚀", "é", "\x85", "\u2028", "cells:", "arch: amd46", "modle: rpi4", "version: 1.10",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(st.characters(codec=None), max_size=20),  # lone surrogates too
    st.sampled_from(["amd64", "arm64", "riscv64", "rpi4", "k3s", "v1.35.1+k3s1", "edge"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(["arch", "model", "cells", "name", "x", "1"]), inner)
    ),
    max_leaves=30,
)


@st.composite
def mutated_release(draw: st.DrawFn) -> str:
    """The baked release.yaml with pieces cut, repeated or replaced by hostile tokens."""
    text = RELEASE
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        end = draw(st.integers(at, min(len(text), at + 40)))
        piece = draw(st.sampled_from(TOKENS) | st.just(text[at:end]))
        text = text[:at] + piece + text[draw(st.sampled_from([at, end])) :]
    return text


@st.composite
def aliases(draw: st.DrawFn) -> str:
    """Anchored lists, each aliasing the one above a few times: small text, large expansion."""
    fan, depth = draw(st.integers(1, 12)), draw(st.integers(1, 8))
    lines = [f"a0: &a0 [{', '.join(['x'] * fan)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, depth)]
    return RELEASE + "\n".join(lines) + "\n"


texts = st.one_of(
    values.map(json.dumps),  # JSON is YAML; tojson's surrogate escapes too
    values.map(lambda v: yaml.safe_dump(v, allow_unicode=True) if _dumpable(v) else json.dumps(v)),
    mutated_release(),
    aliases(),
    st.integers(0, 3000).map(lambda n: "cells: " + "[" * n + "]" * n),
    st.integers(0, 300).map(lambda n: "".join(" " * i + "k:\n" for i in range(n))),
    st.lists(st.sampled_from(TOKENS), max_size=30).map("".join),
    st.text(max_size=200),
)


def _dumpable(value: object) -> bool:
    try:
        yaml.safe_dump(value)
    except (yaml.YAMLError, UnicodeEncodeError):
        return False
    return True


@pytest.fixture(scope="module")
def release_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "release.yaml"


@PROFILE
@given(text=texts)
def test_any_text_is_a_release_or_one_line(release_path: Path, text: str) -> None:
    # Through a file (raw surrogates become bytes that are not UTF-8), and as text (the hook).
    release_path.write_bytes(text.encode("utf-8", "surrogatepass"))
    for load in (lambda: config.load(release_path), lambda: config.loads(text, release_path)):
        tracemalloc.start()
        try:
            outcome: config.Release | ConfigError = load()
        except ConfigError as err:
            outcome = err
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak < MEMORY_MAX, f"{peak} bytes"
        check(outcome, release_path)


def check(outcome: config.Release | ConfigError, path: Path) -> None:
    """A refusal is one printable line naming the file; a release's text can be written."""
    if isinstance(outcome, ConfigError):
        line = str(outcome)
        assert "\n" not in line and line.isprintable(), line
        assert line.startswith(str(path)), line
        line.encode("utf-8")  # no lone surrogates: any UTF-8 terminal prints it
        return
    for field in fields(outcome):
        value = getattr(outcome, field.name)
        if isinstance(value, str):
            value.encode("utf-8")  # image labels and build arguments can carry it

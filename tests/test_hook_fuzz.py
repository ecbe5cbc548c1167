"""Fuzz the answers' check: any answers end accepted or in one line naming one answer.

The check is what cookiecutter runs in-process before it writes anything
(local_extensions.refusal). Never an exception, never a credential echoed,
within a time bound per example; derandomized so CI sees the same examples.
"""

from __future__ import annotations

import json
from datetime import timedelta

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_extensions import refusal, yamlstr
from tests.support.bake import TEMPLATE, default_answers

CANARY = "s3cr3t-canary"
DEFAULTS = default_answers()
VISIBLE = [k for k in json.loads((TEMPLATE / "cookiecutter.json").read_text()) if k[0] != "_"]
# Every character, lone surrogates and controls included.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
PIECES = [
    "/", "..", "\\", "@", ":", ",", " ", "\n", "\r", "\x00", "\x1b[31m", "\ud83d", "🚀", "{{",
    f"user:{CANARY}@", f"https://u:{CANARY}@", f"https://{CANARY}@", "ghp_" + "A1" * 12,
    "yes", "no", "amd64", "arm64", "riscv64", "custom", "ghcr.io/", "my-org", "v1.35.1+k3s1",
    "ubuntu:24.04", "@sha256:" + "a" * 64, "x" * 300,
]  # fmt: skip
TEXT = st.lists(st.one_of(st.text(ANY_CHAR, max_size=8), st.sampled_from(PIECES)), max_size=6).map(
    "".join
)
VALUE = st.one_of(
    TEXT,
    st.sampled_from(sorted({str(v) for v in DEFAULTS.values()} | set(PIECES))),
    st.booleans(),
    st.none(),
    st.integers(),
    st.lists(st.text(max_size=3), max_size=2),
)
FUZZ = settings(
    derandomize=True,
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(st.dictionaries(st.sampled_from(VISIBLE), VALUE, max_size=4))
def test_any_answers_are_accepted_or_refused_in_one_line(answers: dict) -> None:
    line = refusal({**DEFAULTS, **answers})
    if line is None:
        return
    assert line.split(":", 1)[0] in {f"answer '{name}'" for name in VISIBLE}, line
    assert len(line.splitlines()) == 1 and line.isprintable(), line
    assert CANARY not in line, line
    line.encode("utf-8")  # a terminal can show it


@FUZZ
@given(st.text(ANY_CHAR))
def test_yamlstr_reads_back_any_text(text: str) -> None:
    assert yaml.safe_load(f"k: {yamlstr(text)}")["k"] == text

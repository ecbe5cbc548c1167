"""How a message writes a value: show (release.yaml's spelling), clip (as typed), suggest."""

from __future__ import annotations

import pytest

from kairos_distro import words
from kairos_distro.yamlfile import loads


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("abc", "abc"),
        ("", ""),
        ("a\nb\tc", "a\\nb\\tc"),
        ("\x1b[2J", "\\x1b[2J"),
        ("\ud83d", "\\ud83d"),  # a lone surrogate, as a bad decode leaves it
        ("Kairos 🚀", "Kairos 🚀"),
        ("x" * 80, "x" * 80),
        ("x" * 81, "x" * 77 + "..."),
        ("\n" * 100, "\\n" * 38 + "\\..."),
    ],
)
def test_clip_writes_typed_text_unquoted_on_one_line(text: str, line: str) -> None:
    assert words.clip(text) == line


@pytest.mark.parametrize(
    ("yaml_text", "shown"),
    [
        ("v: x86", '"x86"'),
        ("v: 1.10", "1.10"),
        ("v: null", "null"),
        ("v: yes", "true"),
        ("v: [a, 2]", '["a", 2]'),
        ('v: "a\\"b\\n"', '"a\\"b\\n"'),
    ],
)
def test_show_writes_release_values_as_yaml_does(yaml_text: str, shown: str) -> None:
    assert words.show(loads(yaml_text)["v"]) == shown


ARCHES = ("amd64", "arm64", "riscv64")
ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}


@pytest.mark.parametrize(
    ("word", "aliases", "hint"),
    [
        ("amd46", None, "; did you mean amd64?"),
        ("AMD64", None, "; did you mean amd64?"),
        ("x86_64", ALIASES, "; did you mean amd64?"),
        ("X86_64", ALIASES, "; did you mean amd64?"),
        ("x86_64", None, ""),  # no alias given: no near miss either
        ("aarch64", {"aarch64": "arm"}, "; did you mean arm64?"),  # alias to no choice: ignored
        ("s390x", ALIASES, ""),
        (None, ALIASES, ""),
        (3, ALIASES, ""),
    ],
)
def test_suggest_names_the_choice_meant(word: object, aliases: dict | None, hint: str) -> None:
    assert words.suggest(word, ARCHES, aliases) == hint

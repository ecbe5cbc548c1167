"""The one YAML loader: hostile or broken release.yaml text ends in one line, never a traceback.

Each table row is the text of a release.yaml and the line users see (after the file name).
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from package_helpers import valid_release

from kairos_distro import config, yamlfile
from kairos_distro.config import ConfigError
from kairos_distro.words import show, suggest

BASE = yaml.safe_dump(valid_release(), sort_keys=False)
# Billion laughs: each line nine aliases of the one above (9**6 values once expanded).
BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcde", "bcdef", strict=True)
)
DEEP_MAPPINGS = "".join("  " * i + f"k{i}:\n" for i in range(100))


def refused(path: Path) -> str:
    """The one line config.load refuses `path` with, after the file name."""
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    line = str(caught.value)
    assert "\n" not in line and line.isprintable(), line
    assert line.startswith(str(path)), line
    return line.removeprefix(str(path))


def edited(*edits: tuple[str, str]) -> str:
    """The default release.yaml with each (line, replacement) applied once."""
    text = BASE
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


CELL = "- arch: amd64\n  model: generic\n"


@pytest.mark.parametrize(
    "text, line",
    [
        (BOMB, ":5:8: aliases expand to more than 10,000 values"),
        ("name: " + "[" * 5000 + "]" * 5000, ":1:1006: nests deeper than 64 levels"),
        ("name: " + "{a: " * 5000 + "}" * 5000, ":1:256: nests deeper than 64 levels"),
        (DEEP_MAPPINGS, ":64:127: nests deeper than 64 levels"),
        ("a: &a [*a]\n", ":1:8: alias *a is inside the value it names"),
        ("a: *b\n", ":1:4: alias *b has no anchor &b before it"),
        ("a: &x 1\nb: &x 2\n", ":2:4: anchor &x is repeated (first on line 1)"),
        (
            edited(("version: v0.1.0\n", "version: v0.1.0\nname: x\n")),
            ':5:1: key "name" is repeated (first on line 1)',
        ),
        (
            edited((CELL, CELL + "  arch: arm64\n")),
            ':14:3: key "arch" is repeated (first on line 12)',
        ),
        ("1: a\n0x1: b\n", ":2:1: key 0x1 is repeated (first on line 1)"),
        ("? [a]\n: b\n", ":1:3: a key must be text, not a list or mapping"),
        (
            'description: "Kairos \\ud83d"\n',
            ':1:14: "\\ud83d" is half of a surrogate pair: write the character itself',
        ),
        (
            'description: "\\ude80\\ud83d"\n',
            ':1:14: "\\ude80" is half of a surrogate pair: write the character itself',
        ),
        (
            "name: !!binary aGVsbG8=\n",
            ":1:7: tag !!binary is not allowed: write text, numbers, "
            "true/false, lists and mappings",
        ),
        (
            "version: !!timestamp 2024-01-01\n",
            ":1:10: tag !!timestamp is not allowed: write "
            "text, numbers, true/false, lists and mappings",
        ),
        (
            "name: !!python/object/apply:os.system [id]\n",
            ":1:7: tag "
            "!!python/object/apply:os.system is not allowed: write text, numbers, true/false, "
            "lists and mappings",
        ),
        (
            "cells: !!set {a: null}\n",
            ":1:8: tag !!set is not allowed: write text, numbers, true/false, lists and mappings",
        ),
        (
            "name: !distro x\n",
            ":1:7: tag !distro is not allowed: write text, numbers, true/false, lists and mappings",
        ),
        ("name: !!int abc\n", ':1:7: "abc" is not a number (!!int)'),
        ("name: !!bool maybe\n", ':1:7: "maybe" is not true or false'),
        ("name: " + ":".join(["1"] * 40) + "\n", ":1:7: a number of more than 64 characters"),
        ('name: x\nversion: "v1\ncells: []\n', ":2:10: this quote is never closed"),
        ("name: x\ndescription: 'it''s\n", ":2:14: this quote is never closed"),
        (
            'name: x\ndescription: "Kairos\nversion: "v1"\ncells: []\n',
            ":2:14: this quote runs on to line 3: is its closing quote missing?",
        ),
        (
            "name: x\ncells:\n\t- arch: amd64\n",
            ":3:1: a tab where YAML wants spaces (indent with spaces)",
        ),
        ("name: x\n  bad: [\n", ":2:6: mapping values are not allowed in this context"),
        (
            "cells: [a, b\nname: x\n",
            ":2:5: did not find expected ',' or ']' (while parsing a flow sequence on line 1)",
        ),
        ("name: a\x07b\n", ':1:8: character "\\x07" is not allowed in YAML'),
        ("name: @x\n", ':1:7: "@" cannot start a value (quote the value)'),
        (
            "name: x\n---\nname: y\n",
            ":2:1: expected a single document in the stream, but found another document",
        ),
        ("", ": is empty; expected a mapping (name, version, cells, ...)"),
        ("# nothing yet\n", ": is empty; expected a mapping (name, version, cells, ...)"),
        (
            "- arch: amd64\n",
            ': holds [{"arch": "amd64"}]; expected a mapping (name, version, cells, ...)',
        ),
    ],
    ids=[
        "alias-bomb",
        "5000-brackets",
        "5000-braces",
        "deep-mappings",
        "recursive-alias",
        "undefined-alias",
        "repeated-anchor",
        "duplicate-top-key",
        "duplicate-cell-key",
        "duplicate-number-key",
        "list-key",
        "lone-high-surrogate",
        "reversed-pair",
        "binary",
        "timestamp",
        "python",
        "set",
        "custom-tag",
        "bad-int",
        "bad-bool",
        "long-base-60",
        "unclosed-double-quote",
        "unclosed-single-quote",
        "quote-closed-lines-later",
        "tab",
        "bad-indent",
        "unclosed-bracket",
        "control-character",
        "reserved-indicator",
        "two-documents",
        "empty",
        "comment-only",
        "top-level-list",
    ],
)
def test_hostile_text_is_refused_in_one_line(write_release, text, line) -> None:
    assert refused(write_release(text)) == line


@pytest.mark.parametrize(
    "raw, line",
    [
        (b"name: \xff\n", ":1:7: is not UTF-8 text (byte 0xff)"),
        (b"name: x\ndescription: caf\xe9\n", ":2:17: is not UTF-8 text (byte 0xe9)"),
        ("\ufeffname: x\n".encode("utf-16"), ":1:1: is not UTF-8 text (byte 0xff)"),
        (b"#" * (yamlfile.MAX_BYTES + 1), ": is larger than 2 MiB"),
    ],
    ids=["latin-1-byte", "latin-1-word", "utf-16", "too-big"],
)
def test_bytes_that_are_not_a_release_file(tmp_path, raw, line) -> None:
    path = tmp_path / "release.yaml"
    path.write_bytes(raw)
    assert refused(path) == line


@pytest.mark.parametrize(
    "text, expected",
    [
        # Jinja's tojson writes one emoji as a JSON surrogate pair.
        ('d: "Kairos \\ud83d\\ude80"\n', {"d": "Kairos 🚀"}),
        ('d: "\\ud83d\\ude80\\ud83d\\udc27 \\u00e9"\n', {"d": "🚀🐧 é"}),
        ("d: 'Kairos \\ud83d'\n", {"d": "Kairos \\ud83d"}),  # no escapes in single quotes
        ("d: Kairos 🚀\n", {"d": "Kairos 🚀"}),
        ("d: 2024-01-01\n", {"d": "2024-01-01"}),  # a date stays the text written
        ("d: 2024-01-01 10:00:00\n", {"d": "2024-01-01 10:00:00"}),
        ("d: =\n", {"d": "="}),
        ("d: <<\n", {"d": "<<"}),
        ("base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n", {"base": {"x": 1}, "d": {"x": 1, "y": 2}}),
        ("d: !!str 1.10\n", {"d": "1.10"}),
        ("\ufeffd: 1\n", {"d": 1}),
    ],
    ids=[
        "emoji-pair",
        "pairs-and-bmp",
        "single-quoted",
        "raw-emoji",
        "date",
        "datetime",
        "equals",
        "merge-word",
        "merge-key",
        "str-tag",
        "bom",
    ],
)
def test_text_read_as_written(text, expected) -> None:
    assert yamlfile.loads(text) == expected


@pytest.mark.parametrize(
    "text, shown",
    [
        ("d: 1.10\n", "1.10"),
        ("d: 1_000\n", "1_000"),
        ("d: 0x1F\n", "0x1F"),
        ("d: .inf\n", ".inf"),
        ("d: null\n", "null"),
        ("d: ~\n", "null"),
        ("d: true\n", "true"),
        ("d: [1.0, {a: b}]\n", '[1.0, {"a": "b"}]'),
        ('d: "two\\nlines"\n', '"two\\nlines"'),
        ("d: ''\n", '""'),
    ],
)
def test_values_are_shown_as_written(text, shown) -> None:
    assert show(yamlfile.loads(text)["d"]) == shown


@pytest.mark.parametrize(
    "edits, line",
    [
        (
            ("version: v0.1.0", "version: 1.10"),
            'version: expected text, got the number 1.10; write "v1.10.0"',
        ),
        (
            ("version: v0.1.0", "version: 2"),
            'version: expected text, got the number 2; write "v2.0.0"',
        ),
        (("version: v0.1.0", "version: null"), "version: is required"),
        (
            ("version: v0.1.0", "version: 0.1.0"),
            'version: "0.1.0" is not semver with a leading v, '
            'such as v1.2.3, or "git"; write "v0.1.0"',
        ),
        (
            ("version: v0.1.0", "version: 2024-01-01"),
            'version: "2024-01-01" is not semver with a leading v, such as v1.2.3, or "git"',
        ),
        (
            ("name: my-org-kairos-ubuntu", "name: 12"),
            'name: expected text, got 12; quote it if it is text: "12"',
        ),
        (("fips: false", "fips: 'no'"), 'cells[0].fips: expected true or false, got "no"'),
        (
            ("arch: amd64", "arch: yes"),
            "cells[0].arch: expected text, got true (quote it if it is text)",
        ),
        (("fips: false", "fips: null"), "cells[0].fips: expected true or false, got null"),
        (("version: v0.1.0", "verison: v0.1.0"), "verison: unknown field; did you mean version?"),
        (("base_image:", "baseimage:"), "baseimage: unknown field; did you mean base_image?"),
        (
            ("model: generic", "modle: generic"),
            "cells[0].modle: unknown field; did you mean model?",
        ),
        (("fips: false", "Fips: false"), "cells[0].Fips: unknown field; did you mean fips?"),
        (("fips: false", "colour: red"), "cells[0].colour: unknown field"),
        (
            ("fips: false", "fips: false\n  boot_checks: [{run: uname, expct: Linux}]"),
            "cells[0].boot_checks[0].expct: unknown field; did you mean expect?",
        ),
        (
            ("cells:", "boot_checks:\n- {command: uname, expect: Linux}\ncells:"),
            "boot_checks[0].command: unknown field",
        ),
        (
            ("cells:", "signing: {enabeld: true}\ncells:"),
            "signing.enabeld: unknown field; did you mean enabled?",
        ),
        (
            ("cells:", "signing: {identity-regexp: x}\ncells:"),
            'signing."identity-regexp": unknown field; did you mean identity_regexp?',
        ),
        (
            ("cells:", "tags: {imgae: '{version}'}\ncells:"),
            "tags.imgae: unknown field; did you mean image?",
        ),
        (
            (
                "cells:",
                "signing: {enabled: true, trust: stagging, identity: me, issuer: 'https://x'}\n"
                "cells:",
            ),
            'signing.trust: "stagging" is not production, staging or a ClientTrustConfig '
            ".json file; did you mean staging?",
        ),
        (
            ("cells:", "channels: [edge, 7]\ncells:"),
            "channels: expected a list of names such as [edge, stable]",
        ),
    ],
    ids=[
        "version-float",
        "version-int",
        "version-null",
        "version-without-v",
        "version-date",
        "name-number",
        "flag-text",
        "text-bool",
        "flag-null",
        "top-typo",
        "top-typo-underscore",
        "cell-typo",
        "cell-typo-case",
        "cell-unknown",
        "cell-check-typo",
        "check-unknown",
        "signing-typo",
        "signing-dash",
        "tags-typo",
        "trust-typo",
        "channel-number",
    ],
)
def test_field_refusals_show_what_was_written(write_release, edits, line) -> None:
    path = write_release(edited(edits))
    assert refused(path) == f": {line}"


def test_an_emoji_description_loads(write_release) -> None:
    text = edited(
        ("description: Kairos images of my distro", 'description: "Kairos \\ud83d\\ude80"')
    )
    assert config.load(write_release(text)).description == "Kairos 🚀"
    assert config.loads(text).description == "Kairos 🚀"


@pytest.mark.parametrize(
    "word, choices, hint",
    [
        ("amd46", ("amd64", "arm64", "riscv64"), "; did you mean amd64?"),
        ("RISCV64", ("amd64", "arm64", "riscv64"), "; did you mean riscv64?"),
        ("x86_64", ("amd64", "arm64", "riscv64"), ""),
        ("", ("amd64",), ""),
        (7, ("amd64",), ""),
    ],
)
def test_suggest(word, choices, hint) -> None:
    assert suggest(word, choices) == hint


def test_twenty_thousand_cells_load_in_linear_time(write_release) -> None:
    """A guard against quadratic checks (153 s before), not a benchmark."""
    versions = [f"v1.{i // 100}.{i % 100}+k3s1" for i in range(20_000)]
    cells = "".join(f"- {{arch: amd64, provider: k3s, provider_version: {v}}}\n" for v in versions)
    path = write_release(BASE[: BASE.index("cells:")] + "cells:\n" + cells)
    start = time.monotonic()
    rel = config.load(path)
    assert time.monotonic() - start < 40  # about 2 s on an idle CI runner
    assert [c.provider_version for c in rel.cells] == versions
    cells = [{"arch": "amd64", "provider": "k3s", "provider_version": v} for v in versions]
    data = {**valid_release(), "cells": [*cells, {"arch": "amd64"}] * 2}
    with pytest.raises(ConfigError) as caught:
        config.parse(data)
    assert str(caught.value) == (
        "release.yaml: cells[20001]: duplicate of cell amd64-generic-k3s-v1.0.0-k3s1 (cells[0])"
    )


@pytest.mark.parametrize(
    "text",
    [BOMB, "cells: " + "[" * 5000 + "]" * 5000, "cells: " + "{a: " * 5000, DEEP_MAPPINGS],
    ids=["alias-bomb", "5000-brackets", "5000-braces", "deep-mappings"],
)
def test_costly_text_is_refused_cheaply(text) -> None:
    """Refused before anything grows: the bomb once cost 2.5 GB and a MemoryError."""
    tracemalloc.start()
    start = time.monotonic()
    with pytest.raises(ConfigError):
        yamlfile.loads(text)
    seconds, peak = time.monotonic() - start, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 2
    assert peak < 8 * 2**20, f"{peak} bytes"


def test_values_are_counted(monkeypatch) -> None:
    monkeypatch.setattr(yamlfile, "MAX_NODES", 1000)
    text = "cells: [" + "a, " * 997 + "]\n"  # the mapping, its key, the list: 1,000 values
    assert yamlfile.loads(text)["cells"] == ["a"] * 997
    with pytest.raises(ConfigError, match=r"^release\.yaml:1:\d+: holds more than 1,000 values$"):
        yamlfile.loads(text.replace("[", "[a, ", 1))

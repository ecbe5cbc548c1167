"""The rule table of what kairos-init refuses: each input -> the one line release.yaml gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from package_helpers import RISCV64_KAIROS_INIT, valid_release

from kairos_distro import bases, cells, config, words
from kairos_distro.cells import Cell

TEMPLATE = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "a" * 64
UBUNTU_FIPS = (
    "release.yaml: cells[0].fips: FIPS is not supported on Ubuntu without a PRO account "
    "and extra packages (kairos-init's install stage refuses it); see "
    "https://github.com/kairos-io/kairos/blob/master/examples/builds/ubuntu-fips/Dockerfile"
)


def outcome(cell: dict[str, Any], base_image: str) -> str:
    """'' when release.yaml with `cell` on `base_image` loads, else its one-line refusal."""
    data = {**valid_release(), "base_image": base_image, "cells": [cell]}
    data["kairos_init_riscv64"] = RISCV64_KAIROS_INIT
    try:
        config.parse(data)
    except config.ConfigError as err:
        assert "\n" not in str(err), str(err)
        return str(err)
    return ""


# -- FIPS, by distro: kairos-init's install stage refuses it on Ubuntu only ----------------
FIPS = [
    ("ubuntu:20.04", UBUNTU_FIPS),
    ("ubuntu:22.04", UBUNTU_FIPS),
    ("ubuntu:24.04", UBUNTU_FIPS),
    ("ubuntu:25.10", UBUNTU_FIPS),
    ("ubuntu:26.04", UBUNTU_FIPS),
    (f"ubuntu:24.04@{DIGEST}", UBUNTU_FIPS),
    ("docker.io/library/ubuntu:24.04", UBUNTU_FIPS),
    ("debian:12", ""),
    ("debian:13", ""),
    ("fedora:41", ""),  # kairos-init's own matrix builds fedora:41 with FIPS
    ("fedora:43", ""),
    ("alpine:3.23", ""),
    ("opensuse/leap:16.0", ""),
    ("opensuse/tumbleweed", ""),
    ("rockylinux/rockylinux:10", ""),
    ("almalinux:10", ""),
    ("oraclelinux:9", ""),
    ("quay.io/centos/centos:stream10", ""),
    ("registry.suse.com/suse/sle-micro-rancher/5.4:latest", ""),
    ("ghcr.io/kairos-io/hadron:v0.5.1", ""),  # Hadron skips the install stage's check
    ("registry.example.com/ubuntu:24.04", ""),  # a custom base: not known to be Ubuntu
]


@pytest.mark.parametrize(("base", "line"), FIPS, ids=[b for b, _ in FIPS])
def test_fips_is_refused_on_ubuntu_only(base: str, line: str) -> None:
    assert outcome({"arch": "amd64", "fips": True}, base) == line
    assert outcome({"arch": "amd64"}, base) == ""


def test_fips_on_riscv64_is_refused_before_the_distro() -> None:
    line = "release.yaml: cells[0].fips: FIPS is not available on riscv64"
    assert outcome({"arch": "riscv64", "fips": True}, "debian:13") == line
    assert outcome({"arch": "riscv64", "fips": True}, "ubuntu:24.04") == line


# -- trusted boot, by model: generic only ------------------------------------------------
def no_uki(model: str) -> str:
    return (
        f"release.yaml: cells[0].trusted_boot: kairos-init has no trusted boot for boards "
        f"(model {model}): trusted boot needs model generic"
    )


TRUSTED = [
    ("amd64", "generic", ""),
    ("arm64", "generic", ""),
    ("arm64", "rpi3", no_uki("rpi3")),
    ("arm64", "rpi4", no_uki("rpi4")),
    ("arm64", "nvidia-jetson-agx-orin", no_uki("nvidia-jetson-agx-orin")),
    ("arm64", "nvidia-jetson-orin-nx", no_uki("nvidia-jetson-orin-nx")),
    ("arm64", "nvidia-jetson-thor", no_uki("nvidia-jetson-thor")),
    ("arm64", "nvidia-dgx-spark", no_uki("nvidia-dgx-spark")),
]


@pytest.mark.parametrize(("arch", "model", "line"), TRUSTED, ids=[m for _, m, _ in TRUSTED])
def test_trusted_boot_is_refused_on_every_board(arch: str, model: str, line: str) -> None:
    cell = {"arch": arch, "model": model, "trusted_boot": True}
    assert outcome(cell, "ubuntu:22.04") == line  # the base Jetson Orin boards need
    assert outcome({**cell, "trusted_boot": False}, "ubuntu:22.04") == ""


def test_every_model_is_in_the_trusted_boot_table() -> None:
    assert [m for _, m, _ in TRUSTED[1:]] == list(cells.MODELS)


# -- base image architectures -----------------------------------------------------------
# (base, arch) pairs the base image is not published for; every other pair of
# the table builds. Sources are in kairos_distro/bases.py.
MISSING = {
    ("debian:12", "riscv64"): "amd64, arm64",
    ("fedora:41", "riscv64"): "amd64, arm64",
    ("fedora:42", "riscv64"): "amd64, arm64",
    ("fedora:43", "riscv64"): "amd64, arm64",
    ("almalinux:9", "riscv64"): "amd64, arm64",
    ("almalinux:10", "riscv64"): "amd64, arm64",
    ("oraclelinux:9", "riscv64"): "amd64, arm64",
    ("oraclelinux:10", "riscv64"): "amd64, arm64",
    ("fedorariscv/base:42", "amd64"): "riscv64",
    ("fedorariscv/base:42", "arm64"): "riscv64",
}
PAIRS = [(base, arch) for base in bases.BASES for arch in cells.ARCHES]


@pytest.mark.parametrize(("base", "arch"), PAIRS, ids=[f"{b}-{a}" for b, a in PAIRS])
def test_every_base_image_and_arch(base: str, arch: str) -> None:
    line = ""
    if (base, arch) in MISSING:
        published = MISSING[base, arch]
        line = (
            f"release.yaml: cells[0].arch: base image {base} has no {arch} image "
            f"(published for {published})"
        )
    assert outcome({"arch": arch}, base) == line


@pytest.mark.parametrize(
    ("base", "arch", "line"),
    [
        (
            f"fedorariscv/base:42@{DIGEST}",
            "amd64",
            "base image fedorariscv/base:42 has no amd64 image (published for riscv64)",
        ),
        (
            "docker.io/library/debian:12",
            "riscv64",
            "base image debian:12 has no riscv64 image (published for amd64, arm64)",
        ),
        # Not in the table: not refused (a build then fails when it pulls).
        ("registry.example.com/os:1.0", "riscv64", ""),
        ("debian:11", "riscv64", ""),
        ("ghcr.io/kairos-io/hadron-trusted:v0.5.1", "riscv64", ""),
    ],
)
def test_base_image_spellings_and_bases_outside_the_table(base: str, arch: str, line: str) -> None:
    got = outcome({"arch": arch}, base)
    assert got == (f"release.yaml: cells[0].arch: {line}" if line else "")


def test_the_table_is_the_templates_base_image_choices() -> None:
    choices = json.loads((TEMPLATE / "cookiecutter.json").read_text())["base_image"]
    assert [c for c in choices if c != "custom"] == list(bases.BASES)
    for base in bases.BASES.values():
        assert set(base.arches) <= set(cells.ARCHES) and base.source


# -- typos and values as written ----------------------------------------------------------
ARCH = "is not one of amd64, arm64, riscv64; did you mean"


@pytest.mark.parametrize(
    ("cell", "line"),
    [
        ({"arch": "x86_64"}, f'cells[0].arch: "x86_64" {ARCH} amd64?'),
        ({"arch": "aarch64"}, f'cells[0].arch: "aarch64" {ARCH} arm64?'),
        ({"arch": "x86"}, f'cells[0].arch: "x86" {ARCH} amd64?'),
        ({"arch": "amd"}, f'cells[0].arch: "amd" {ARCH} amd64?'),
        ({"arch": "amd\n64"}, f'cells[0].arch: "amd\\n64" {ARCH} amd64?'),
        ({"arch": "arm64", "model": "rpi5"}, 'cells[0].model: "rpi5" is not one of generic, '),
        (
            {"arch": "amd64", "provider": "k3z"},
            'cells[0].provider: "k3z" is not one of none, k3s, k0s; did you mean k3s?',
        ),
    ],
)
def test_unknown_values_read_as_written_with_a_suggestion(cell: dict, line: str) -> None:
    got = outcome(cell, "debian:13")
    assert got.startswith(f"release.yaml: {line}"), got
    assert got.count("did you mean") == 1, got


@pytest.mark.parametrize(
    ("word", "choices", "hint"),
    [
        ("x86_64", cells.ARCHES, "; did you mean amd64?"),
        ("aarch64", cells.ARCHES, "; did you mean arm64?"),
        ("arm46", cells.ARCHES, "; did you mean arm64?"),
        ("rpi5", cells.MODELS, "; did you mean rpi4?"),
        ("nvidia-jetson-orin", cells.MODELS, "; did you mean nvidia-jetson-orin-nx?"),
        ("k3z", cells.PROVIDER_CHOICES, "; did you mean k3s?"),
        ("rke2", cells.PROVIDER_CHOICES, ""),
        ("s390x", cells.ARCHES, ""),
    ],
)
def test_suggest(word: str, choices: tuple[str, ...], hint: str) -> None:
    assert words.suggest(word, choices, cells.ALIASES) == hint


def test_a_long_value_is_cut_short() -> None:
    got = outcome({"arch": "a" * 500}, "debian:13")
    assert f'cells[0].arch: "{"a" * 196}... is not one of' in got  # words.SHOWN_MAX


# -- the table itself ---------------------------------------------------------------------
# One cell breaking each rule (on its base image), and the message it gets.
EXAMPLES = [
    (Cell("s390x"), "debian:13", "arch", '"s390x" is not one of amd64, arm64, riscv64'),
    (Cell("riscv64"), "debian:12", "arch", "base image debian:12 has no riscv64 image"),
    (Cell("arm64", "rpi9"), "debian:13", "model", '"rpi9" is not one of generic, rpi3'),
    (Cell("amd64", "rpi4"), "debian:13", "model", 'rpi4 needs arch arm64 (got "amd64")'),
    (
        Cell("arm64", "nvidia-jetson-orin-nx"),
        "debian:13",
        "model",
        "nvidia-jetson-orin-nx needs base image ubuntu:22.04 (got debian:13)",
    ),
    (Cell("riscv64", fips=True), "debian:13", "fips", "FIPS is not available on riscv64"),
    (Cell("amd64", fips=True), "ubuntu:24.04", "fips", "FIPS is not supported on Ubuntu"),
    (
        Cell("arm64", "rpi4", trusted_boot=True),
        "debian:13",
        "trusted_boot",
        "kairos-init has no trusted boot for boards (model rpi4)",
    ),
    (
        Cell("amd64", trusted_boot=True, raw=True),
        "debian:13",
        "raw",
        "trusted-boot cells ship a signed UKI ISO, not a raw disk image",
    ),
    (
        Cell("amd64", trusted_boot=True),
        "ghcr.io/kairos-io/hadron:v0.5.1",
        "trusted_boot",
        "Hadron trusted-boot cells are built from ghcr.io/kairos-io/hadron-trusted",
    ),
    (
        Cell("amd64", provider_version="v1.35.1+k3s1"),
        "debian:13",
        "provider_version",
        "is set but provider is none",
    ),
    (Cell("amd64", provider="rke2"), "debian:13", "provider", '"rke2" is not one of none, k3s'),
    (
        Cell("amd64", provider="k3s", provider_version="v1.35.1"),
        "debian:13",
        "provider_version",
        '"v1.35.1" is not a full k3s tag such as v1.35.1+k3s1',
    ),
    (
        Cell("amd64", provider="k0s"),
        "debian:13",
        "provider_version",
        "is required for k0s: a full tag such as v1.35.1+k0s.0",
    ),
]


@pytest.mark.parametrize(("cell", "base", "field", "message"), EXAMPLES)
def test_each_example_breaks_one_rule(cell: Cell, base: str, field: str, message: str) -> None:
    [(got_field, got)] = cells.cell_problems(cell, base)
    assert got_field == field and got.startswith(message), got


@pytest.mark.parametrize("rule", cells.RULES, ids=[r.source[:40] for r in cells.RULES])
def test_every_rule_has_an_example_a_cell_field_and_a_source(rule: cells.Rule) -> None:
    assert any(rule.broken(cell, base) for cell, base, _, _ in EXAMPLES)
    assert rule.field in config.CELL_FIELDS and rule.source


def test_cell_problems_lists_every_broken_rule_in_table_order() -> None:
    cell = Cell(arch="riscv64", model="nvidia-jetson-orin-nx", fips=True, trusted_boot=True)
    fields = [field for field, _ in cells.cell_problems(cell, "debian:12")]
    assert fields == ["arch", "model", "model", "fips", "trusted_boot"]
    assert cells.cell_problems(Cell(arch="amd64"), "debian:12") == []

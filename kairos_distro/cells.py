"""Cells of the release matrix, and the rules kairos-init would enforce on them.

Each rule is checked here rather than late (after minutes of building); config
names the field of release.yaml a broken rule comes from, and the template's
answer check (kairos_distro.answers, run in-process by local_extensions.py)
refuses the answer that fed it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from . import bases
from .ref import ImageRef, RefError, safe
from .words import show, suggest

ARCHES = ("amd64", "arm64", "riscv64")
MODELS = (
    "generic",
    "rpi3",
    "rpi4",
    "nvidia-jetson-agx-orin",
    "nvidia-jetson-orin-nx",
    "nvidia-jetson-thor",
    "nvidia-dgx-spark",
)
# Upstream builds Hadron's trusted-boot cells from a distinct base with the
# TPM and measured-boot parts (kairos-io/kairos .github/workflows/release.yaml).
HADRON = "ghcr.io/kairos-io/hadron"
HADRON_TRUSTED = "ghcr.io/kairos-io/hadron-trusted"
# Jetson Orin board support packages exist for Ubuntu 22.04 only.
JETSON_ORIN = ("nvidia-jetson-agx-orin", "nvidia-jetson-orin-nx")
JETSON_BASE = "ubuntu:22.04"
# kairos-init downloads the provider by its full upstream tag; a bare
# "v1.34.3" fails to download, so the suffix is required.
PROVIDER_VERSION = {
    "k3s": re.compile(r"^v\d+\.\d+\.\d+\+k3s\d+\Z"),
    "k0s": re.compile(r"^v\d+\.\d+\.\d+\+k0s\.\d+\Z"),
}
PROVIDER_EXAMPLE = {"k3s": "v1.35.1+k3s1", "k0s": "v1.35.1+k0s.0"}
PROVIDER_CHOICES = ("none", *PROVIDER_VERSION)
UBUNTU = "ubuntu"  # Docker Hub's official image, as Docker prints its name
UBUNTU_FIPS_EXAMPLE = (
    "https://github.com/kairos-io/kairos/blob/master/examples/builds/ubuntu-fips/Dockerfile"
)
# Names other tools give an arch, for "did you mean" (kairos-init builds no 32-bit
# x86, so a bare "x86" means amd64 here).
ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "x86": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True)
class BootCheck:
    """A command `invoke test-boot` runs over SSH, and text its output must contain."""

    run: str
    expect: str


@dataclass(frozen=True)
class Cell:
    """One image to build: a point of the release matrix."""

    arch: str
    model: str = "generic"
    provider: str | None = None
    provider_version: str | None = None
    trusted_boot: bool = False
    fips: bool = False
    raw: bool | None = None  # None: boards get a raw disk image, others do not
    boot_checks: tuple[BootCheck, ...] = ()

    @property
    def id(self) -> str:
        """A stable id known before building: arch-model[-provider-version][-uki][-fips]."""
        parts = [self.arch, self.model]
        if self.provider:
            parts += [self.provider, safe(self.provider_version or "")]
        if self.trusted_boot:
            parts.append("uki")
        if self.fips:
            parts.append("fips")
        return "-".join(parts)

    @property
    def board(self) -> bool:
        return self.model != "generic"

    @property
    def media(self) -> tuple[str, ...]:
        """Boot media AuroraBoot makes: `uki` (trusted boot), `iso` and/or `raw`.

        Boards never get an ISO: they boot from a raw disk image.
        """
        if self.trusted_boot:
            return ("uki",)
        raw = self.board if self.raw is None else self.raw
        return (() if self.board else ("iso",)) + (("raw",) if raw else ())

    @property
    def variant(self) -> str:
        """kairos-init makes any image with a provider `standard`."""
        return "standard" if self.provider else "core"


def base_name(ref: str) -> str:
    """`docker.io/library/ubuntu:22.04@sha256:...` -> `ubuntu:22.04`, as Docker prints it."""
    try:
        return str(ImageRef.parse(ref).with_digest(""))
    except RefError:
        return ref


def _name(ref: str) -> str:
    try:
        return ImageRef.parse(ref).name
    except RefError:
        return ""


def _one_of(value: str, choices: tuple[str, ...]) -> str:
    return f"{show(value)} is not one of {', '.join(choices)}{suggest(value, choices, ALIASES)}"


@dataclass(frozen=True)
class Rule:
    """A combination kairos-init or AuroraBoot refuses, or that cannot boot.

    `broken(cell, base_image)` is true when the cell breaks the rule; `field` is
    the cell field it is reported on; `source` is where upstream says so.
    """

    field: str
    broken: Callable[[Cell, str], bool]
    message: Callable[[Cell, str], str]
    source: str


def _provider_version_wrong(cell: Cell) -> bool:
    pattern = PROVIDER_VERSION.get(cell.provider or "")
    return pattern is not None and not pattern.match(cell.provider_version or "")


def _provider_version_message(cell: Cell) -> str:
    provider = cell.provider or ""
    example = PROVIDER_EXAMPLE[provider]
    if not cell.provider_version:
        return f"is required for {provider}: a full tag such as {example}"
    return f"{show(cell.provider_version)} is not a full {provider} tag such as {example}"


def _base_arch_message(cell: Cell, base_image: str) -> str:
    base = bases.BASES[base_name(base_image)]
    return (
        f"base image {base_name(base_image)} has no {cell.arch} image "
        f"(published for {', '.join(base.arches)})"
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "arch",
        lambda c, b: c.arch not in ARCHES,
        lambda c, b: _one_of(c.arch, ARCHES),
        "kairos-init/pkg/values/values.go:17@ca022425 (amd64, arm64, riscv64)",
    ),
    Rule(
        "arch",
        lambda c, b: c.arch in ARCHES and bases.missing_arch(base_name(b), c.arch) is not None,
        _base_arch_message,
        "kairos_distro/bases.py: the base's published architectures",
    ),
    Rule(
        "model",
        lambda c, b: c.model not in MODELS,
        lambda c, b: _one_of(c.model, MODELS),
        "kairos-init/main.go:28@ca022425 (modelFlag: values.SupportedModels)",
    ),
    Rule(
        "model",
        lambda c, b: c.model in MODELS and c.board and c.arch != "arm64",
        lambda c, b: f"{c.model} needs arch arm64 (got {show(c.arch)})",
        "kairos-init/main.go:129@ca022425 (values.go:82 modelArch)",
    ),
    Rule(
        "model",
        lambda c, b: c.model in JETSON_ORIN and base_name(b) != JETSON_BASE,
        lambda c, b: f"{c.model} needs base image {JETSON_BASE} (got {base_name(b)})",
        "kairos-init test.yml@v0.17.3: Jetson Orin cells are built from ubuntu:22.04 only",
    ),
    Rule(
        "fips",
        lambda c, b: c.fips and c.arch == "riscv64",
        lambda c, b: "FIPS is not available on riscv64",
        "kairos-init/main.go:125@ca022425",
    ),
    Rule(
        "fips",
        lambda c, b: c.fips and _name(b) == UBUNTU,
        lambda c, b: (
            "FIPS is not supported on Ubuntu without a PRO account and extra packages "
            f"(kairos-init's install stage refuses it); see {UBUNTU_FIPS_EXAMPLE}"
        ),
        "kairos-init/pkg/stages/steps_install.go:40@ca022425 (and @v0.17.3)",
    ),
    Rule(
        "trusted_boot",
        lambda c, b: c.trusted_boot and c.board,
        lambda c, b: (
            f"kairos-init has no trusted boot for boards (model {c.model}): "
            "trusted boot needs model generic"
        ),
        "kairos-init/pkg/values/packagemaps.go:1233@ca022425 (no trusted boot on models yet)",
    ),
    Rule(
        "raw",
        lambda c, b: c.trusted_boot and bool(c.raw),
        lambda c, b: "trusted-boot cells ship a signed UKI ISO, not a raw disk image",
        "Cell.media: a trusted-boot cell gets a UKI ISO (AuroraBoot build-uki) only",
    ),
    Rule(
        "trusted_boot",
        lambda c, b: c.trusted_boot and _name(b) == HADRON,
        lambda c, b: f"Hadron trusted-boot cells are built from {HADRON_TRUSTED}, not hadron",
        "kairos-io/kairos .github/workflows/master.yaml:107@ca022425 (hadron-trusted)",
    ),
    Rule(
        "provider_version",
        lambda c, b: c.provider is None and bool(c.provider_version),
        lambda c, b: "is set but provider is none",
        "kairos-init/main.go:40@ca022425 (versions are per --provider)",
    ),
    Rule(
        "provider",
        lambda c, b: c.provider is not None and c.provider not in PROVIDER_VERSION,
        lambda c, b: _one_of(c.provider or "", PROVIDER_CHOICES),
        "the provider plugins kairos-init downloads: k3s, k0s",
    ),
    Rule(
        "provider_version",
        lambda c, b: _provider_version_wrong(c),
        lambda c, b: _provider_version_message(c),
        "kairos-init downloads the provider by its full upstream tag",
    ),
)


def cell_problems(cell: Cell, base_image: str) -> list[tuple[str, str]]:
    """(field, message) for each rule `cell` breaks; empty when it is buildable."""
    return [
        (rule.field, rule.message(cell, base_image))
        for rule in RULES
        if rule.broken(cell, base_image)
    ]

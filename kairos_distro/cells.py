"""Cells of the release matrix, and the rules kairos-init would enforce on them.

Each rule is checked here rather than late (after minutes of building); config
names the field of release.yaml a broken rule comes from, and the template's
pre-generation hook refuses the answer that fed it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .ref import ImageRef, RefError, safe

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


def cell_problems(cell: Cell, base_image: str) -> list[tuple[str, str]]:
    """(field, message) for each rule `cell` breaks; empty when it is buildable."""
    problems: list[tuple[str, str]] = []
    if cell.arch not in ARCHES:
        problems.append(("arch", f"{cell.arch!r} is not one of {', '.join(ARCHES)}"))
    if cell.model not in MODELS:
        problems.append(("model", f"{cell.model!r} is not one of {', '.join(MODELS)}"))
    elif cell.model != "generic" and cell.arch != "arm64":
        problems.append(("model", f"{cell.model} needs arch arm64 (got {cell.arch})"))
    if cell.model in JETSON_ORIN and base_name(base_image) != JETSON_BASE:
        problems.append(
            ("model", f"{cell.model} needs base image {JETSON_BASE} (got {base_image})")
        )
    if cell.fips and cell.arch == "riscv64":
        problems.append(("fips", "FIPS is not available on riscv64"))
    if cell.trusted_boot and cell.raw:
        problems.append(("raw", "trusted-boot cells ship a signed UKI ISO, not a raw disk image"))
    if cell.trusted_boot and _name(base_image) == HADRON:
        why = f"Hadron trusted-boot cells are built from {HADRON_TRUSTED}, not hadron"
        problems.append(("trusted_boot", why))
    problems += _provider_problems(cell)
    return problems


def _provider_problems(cell: Cell) -> list[tuple[str, str]]:
    if cell.provider is None:
        if cell.provider_version:
            return [("provider_version", "is set but provider is none")]
        return []
    if cell.provider not in PROVIDER_VERSION:
        names = ", ".join(["none", *PROVIDER_VERSION])
        return [("provider", f"{cell.provider!r} is not one of {names}")]
    pattern = PROVIDER_VERSION[cell.provider]
    if not cell.provider_version or not pattern.match(cell.provider_version):
        example = PROVIDER_EXAMPLE[cell.provider]
        return [
            (
                "provider_version",
                f"{cell.provider_version!r} is not a full {cell.provider} tag such as {example}",
            )
        ]
    return []

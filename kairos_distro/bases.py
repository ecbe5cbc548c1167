"""The base images the template offers, and the architectures each is published for.

One table: cells refuses a cell whose arch its base image has no image for, and
the template's base_image choices (cookiecutter.json) are its keys. `complete`
says the list is the image's whole manifest list (Docker Official Images'
library files list every architecture of a tag); otherwise only the listed
arches were checked and the others are not refused: a build from such a base,
or from any base not listed here, fails when it pulls, in one line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Base:
    """Of amd64, arm64 and riscv64: the arches a base image is published for."""

    arches: tuple[str, ...]
    source: str
    complete: bool = True  # False: arches not listed were not checked


# docker-library/official-images, library/<name>: its Architectures line for the
# tag (arm64v8 is arm64), at the commit named; a tag dropped from the file is
# read at the last commit that listed it.
LIBRARY = "docker-library/official-images library/{}@{}"
LIB_HEAD = "37079fb3"  # 2026-08-21
# kairos-io/kairos-init .github/workflows/test.yml@v0.17.3 builds every base of
# its matrix on native amd64 and arm64 runners; riscv64 is not checked there.
TESTED = "kairos-init test.yml@v0.17.3 (amd64, arm64); riscv64 not checked"
ALL = ("amd64", "arm64", "riscv64")
NO_RISCV = ("amd64", "arm64")

BASES: dict[str, Base] = {
    "ubuntu:24.04": Base(ALL, LIBRARY.format("ubuntu", LIB_HEAD)),
    "ubuntu:20.04": Base(ALL, LIBRARY.format("ubuntu", "2d96d3b4")),  # 2025-05-15
    "ubuntu:22.04": Base(ALL, LIBRARY.format("ubuntu", LIB_HEAD)),
    "ubuntu:25.10": Base(ALL, LIBRARY.format("ubuntu", "719d88fb")),  # 2026-07-01
    "ubuntu:26.04": Base(ALL, LIBRARY.format("ubuntu", LIB_HEAD)),
    "debian:12": Base(NO_RISCV, LIBRARY.format("debian", LIB_HEAD)),
    "debian:13": Base(ALL, LIBRARY.format("debian", LIB_HEAD)),
    "fedora:41": Base(NO_RISCV, LIBRARY.format("fedora", "7119dd23")),  # 2025-12-04
    "fedora:42": Base(NO_RISCV, LIBRARY.format("fedora", "573b0eae")),  # 2026-04-27
    "fedora:43": Base(NO_RISCV, LIBRARY.format("fedora", LIB_HEAD)),
    "alpine:3.21": Base(ALL, LIBRARY.format("alpine", LIB_HEAD)),
    "alpine:3.23": Base(ALL, LIBRARY.format("alpine", LIB_HEAD)),
    "opensuse/leap:15.6": Base(NO_RISCV, TESTED, complete=False),
    "opensuse/leap:16.0": Base(NO_RISCV, TESTED, complete=False),
    "opensuse/tumbleweed": Base(NO_RISCV, TESTED, complete=False),
    "rockylinux/rockylinux:9": Base(NO_RISCV, TESTED, complete=False),
    "rockylinux/rockylinux:10": Base(NO_RISCV, TESTED, complete=False),
    "almalinux:9": Base(NO_RISCV, LIBRARY.format("almalinux", LIB_HEAD)),
    # almalinux's riscv64 images are the 10-kitten tags, not 10.
    "almalinux:10": Base(NO_RISCV, LIBRARY.format("almalinux", LIB_HEAD)),
    "oraclelinux:9": Base(NO_RISCV, LIBRARY.format("oraclelinux", LIB_HEAD)),
    "oraclelinux:10": Base(NO_RISCV, LIBRARY.format("oraclelinux", LIB_HEAD)),
    "quay.io/centos/centos:stream9": Base(NO_RISCV, TESTED, complete=False),
    "quay.io/centos/centos:stream10": Base(NO_RISCV, TESTED, complete=False),
    "registry.suse.com/suse/sle-micro-rancher/5.4:latest": Base(NO_RISCV, TESTED, complete=False),
    "ghcr.io/kairos-io/hadron:v0.5.1": Base(NO_RISCV, TESTED, complete=False),
    "ghcr.io/kairos-io/hadron:main": Base(NO_RISCV, TESTED, complete=False),
    # Fedora's RISC-V port publishes riscv64 only; kairos-init's test.yml@v0.17.3
    # builds it on riscv64 alone (and refusing amd64 is issue 12's example).
    "fedorariscv/base:42": Base(("riscv64",), "kairos-init test.yml@v0.17.3 riscv64 cell"),
}


def missing_arch(name: str, arch: str) -> Base | None:
    """The table's entry when base `name` (as Docker prints it) has no `arch` image."""
    base = BASES.get(name)
    if base is None or not base.complete or arch in base.arches:
        return None
    return base

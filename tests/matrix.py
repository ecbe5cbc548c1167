"""kairos-init's distro test matrix (.github/workflows/test.yml), cell by cell.

Listed explicitly: upstream's GitHub `include` rules merge its trusted-boot
cells into the plain ubuntu amd64 cells, so it never tests plain amd64
ubuntu 24.04/25.10/26.04. Here every cell stands on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

BASES = (
    "ubuntu:20.04",
    "ubuntu:24.04",
    "ubuntu:25.10",
    "ubuntu:26.04",
    "debian:12",
    "debian:13",
    "fedora:42",
    "fedora:43",
    "alpine:3.21",
    "alpine:3.23",
    "opensuse/leap:15.6",
    "opensuse/leap:16.0",
    "opensuse/tumbleweed",
    "rockylinux/rockylinux:9",
    "rockylinux/rockylinux:10",
    "almalinux:9",
    "almalinux:10",
    "oraclelinux:9",
    "oraclelinux:10",
    "quay.io/centos/centos:stream9",
    "quay.io/centos/centos:stream10",
    "registry.suse.com/suse/sle-micro-rancher/5.4:latest",
)
HADRON = ("ghcr.io/kairos-io/hadron:v0.5.1", "ghcr.io/kairos-io/hadron:main")


@dataclass(frozen=True)
class MatrixCell:
    arch: str
    base: str
    model: str = "generic"
    provider: str = "none"
    provider_version: str = ""
    trusted_boot: bool = False
    fips: bool = False

    @property
    def id(self) -> str:
        parts = [self.arch, self.base.replace("/", "_").replace(":", "-"), self.model]
        if self.provider != "none":
            parts.append(self.provider)
        parts += ["uki"] * self.trusted_boot + ["fips"] * self.fips
        return "-".join(parts)

    def answers(self) -> dict[str, str]:
        """The cookiecutter answers that bake this cell."""
        return {
            "base_image": self.base,
            "architectures": self.arch,
            "model": self.model,
            "provider": self.provider,
            "provider_versions": self.provider_version,
            "trusted_boot": "yes" if self.trusted_boot else "no",
            "fips": "yes" if self.fips else "no",
        }


CELLS: tuple[MatrixCell, ...] = (
    *(MatrixCell(arch, base) for arch in ("amd64", "arm64") for base in BASES),
    MatrixCell("amd64", "ubuntu:22.04", provider="k3s", provider_version="v1.32.1+k3s1"),
    MatrixCell("amd64", "ubuntu:22.04", provider="k0s", provider_version="v1.32.1+k0s.0"),
    MatrixCell("amd64", "fedora:41", fips=True),
    *(
        MatrixCell("amd64", base, trusted_boot=True)
        for base in ("ubuntu:24.04", "ubuntu:25.10", "ubuntu:26.04", "fedora:41")
    ),
    *(
        MatrixCell("arm64", "ubuntu:22.04", model=model)
        for model in ("nvidia-jetson-agx-orin", "nvidia-jetson-orin-nx", "rpi4")
    ),
    *(MatrixCell(arch, base) for arch in ("amd64", "arm64") for base in HADRON),
    *(MatrixCell("arm64", base, model="rpi4") for base in HADRON),
    *(MatrixCell("riscv64", base) for base in ("ubuntu:24.04", "debian:13", "fedorariscv/base:42")),
)

# Baked repos that also run their own test suite and lint (each takes seconds).
SAMPLE = (
    MatrixCell("amd64", "debian:12"),
    MatrixCell("amd64", "ubuntu:22.04", provider="k3s", provider_version="v1.32.1+k3s1"),
    MatrixCell("amd64", "fedora:41", fips=True),
    MatrixCell("arm64", "ubuntu:22.04", model="nvidia-jetson-agx-orin"),
    MatrixCell("amd64", "ubuntu:24.04", trusted_boot=True),
)

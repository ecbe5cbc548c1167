"""The bake refuses what kairos-init refuses (cells.RULES), naming the answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from cookiecutter.exceptions import CookiecutterException

from tests.support.bake import bake

CUSTOM = {"base_image": "custom"}
REFUSED = [
    ({"fips": "yes"}, "fips", "FIPS is not supported on Ubuntu without a PRO account"),
    (
        {**CUSTOM, "custom_base_image": "docker.io/library/ubuntu:24.04", "fips": "yes"},
        "fips",
        "FIPS is not supported on Ubuntu",
    ),
    (
        {"architectures": "arm64", "model": "rpi4", "trusted_boot": "yes"},
        "trusted_boot",
        "kairos-init has no trusted boot for boards (model rpi4): trusted boot needs model generic",
    ),
    (
        {
            "architectures": "arm64",
            "base_image": "ubuntu:22.04",
            "model": "nvidia-jetson-orin-nx",
            "trusted_boot": "yes",
        },
        "trusted_boot",
        "no trusted boot for boards (model nvidia-jetson-orin-nx)",
    ),
    (
        {"base_image": "fedorariscv/base:42"},
        "architectures",
        "base image fedorariscv/base:42 has no amd64 image (published for riscv64)",
    ),
    (
        {"base_image": "debian:12", "architectures": "amd64,riscv64"},
        "architectures",
        "base image debian:12 has no riscv64 image (published for amd64, arm64)",
    ),
    (
        {**CUSTOM, "custom_base_image": "fedorariscv/base:42", "architectures": "arm64"},
        "architectures",
        "base image fedorariscv/base:42 has no arm64 image",
    ),
    (
        {"architectures": "x86_64"},
        "architectures",
        '"x86_64" is not one of amd64, arm64, riscv64; did you mean amd64?',
    ),
]


@pytest.mark.parametrize(("answers", "answer", "message"), REFUSED, ids=lambda v: str(v)[:48])
def test_refusal_names_the_answer_in_one_line_and_leaves_nothing(
    tmp_path: Path, capfd, answers: dict, answer: str, message: str
) -> None:
    with pytest.raises(CookiecutterException) as refused:
        bake(tmp_path, **answers)
    errors = [f"ERROR: {refused.value}"]  # what cookiecutter's command line prints
    assert capfd.readouterr().err == ""
    assert errors[0].startswith(f"ERROR: answer {answer!r}: "), errors[0]
    assert message in errors[0], errors[0]
    assert list(tmp_path.iterdir()) == []


ACCEPTED = [
    {"base_image": "debian:12", "fips": "yes"},
    {"base_image": "fedorariscv/base:42", "architectures": "riscv64"},
    {"base_image": "debian:13", "architectures": "amd64,arm64,riscv64"},
    {"base_image": "ubuntu:22.04", "architectures": "arm64", "model": "rpi4"},
    # Not in the table: the build fails at pull if the image has no such arch.
    {**CUSTOM, "custom_base_image": "registry.example.com/os:1.0", "architectures": "riscv64"},
]


@pytest.mark.parametrize("answers", ACCEPTED, ids=lambda v: str(v)[:48])
def test_allowed_combinations_bake(tmp_path: Path, answers: dict) -> None:
    repo = bake(tmp_path, **answers)
    assert (repo / "release.yaml").is_file()

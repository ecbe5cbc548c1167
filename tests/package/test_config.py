"""release.yaml loading and validation: every rule refuses with one line naming file and field."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from package_helpers import RISCV64_KAIROS_INIT, ROOT

from kairos_distro import cells, config, fields, policy, sbom, vulndb
from kairos_distro.config import Cell, ConfigError
from kairos_distro.ref import ImageRef

DIGEST = "sha256:" + "a" * 64
JETSON_ORIN = ["nvidia-jetson-agx-orin", "nvidia-jetson-orin-nx"]
BOARDS = [m for m in cells.MODELS if m != "generic"]


def refusal(write_release: Callable[[Any], Path], data: Any) -> tuple[Path, str]:
    """Load `data` from a file, expecting a refusal; return the path and the message."""
    path = write_release(data)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}"), message
    return path, message


def assert_refused(
    write_release: Callable[[Any], Path], data: Any, field: str, fragment: str
) -> None:
    """The message reads `<file>: <field>: ...` and says why."""
    path, message = refusal(write_release, data)
    assert message.startswith(f"{path}: {field}: "), message
    assert fragment in message, message


def with_cell(data: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
    """Put `cell` second, after a valid one, so field paths must carry the right index."""
    data["cells"] = [{"arch": "arm64"}, cell]
    return data


# -- accepted --------------------------------------------------------------------


def test_valid_release_loads(write_release, release_data) -> None:
    path = write_release(release_data)
    rel = config.load(path)
    assert rel.path == path
    assert rel.name == "my-org-kairos-ubuntu"
    assert rel.version == "v0.1.0"
    assert rel.base_image == "ubuntu:24.04"
    assert rel.repository == ""
    # provider "none" is spelled None inside; every other field keeps its value.
    assert rel.cells == (Cell(arch="amd64"),)


def test_minimal_cell_gets_defaults(write_release, release_data) -> None:
    del release_data["description"], release_data["repository"]
    release_data["cells"] = [{"arch": "riscv64"}]
    release_data["kairos_init_riscv64"] = RISCV64_KAIROS_INIT
    rel = config.load(write_release(release_data))
    assert rel.description == ""
    assert rel.repository == ""
    assert rel.cells == (
        Cell(arch="riscv64", model="generic", provider=None, trusted_boot=False, fips=False),
    )


@pytest.mark.parametrize(
    "cell",
    [
        {"arch": "amd64", "provider": "k3s", "provider_version": "v1.32.1+k3s1"},
        {"arch": "amd64", "provider": "k3s", "provider_version": "v1.35.1+k3s12"},
        {"arch": "arm64", "provider": "k0s", "provider_version": "v1.32.1+k0s.0"},
        {"arch": "amd64", "trusted_boot": True, "fips": True},
        {"arch": "riscv64", "trusted_boot": True},
        {"arch": "arm64", "model": "rpi3"},
        {"arch": "arm64", "model": "rpi4", "fips": True},
        # Only the Orin boards are tied to one base image.
        {"arch": "arm64", "model": "nvidia-jetson-thor"},
        {"arch": "arm64", "model": "nvidia-dgx-spark"},
    ],
    ids=lambda cell: "-".join(str(v) for v in cell.values()),
)
def test_buildable_cells_are_accepted(write_release, release_data, cell) -> None:
    release_data["cells"] = [cell]
    release_data["kairos_init_riscv64"] = RISCV64_KAIROS_INIT
    release_data["base_image"] = "debian:13"  # FIPS is refused on Ubuntu
    assert len(config.load(write_release(release_data)).cells) == 1


@pytest.mark.parametrize("model", JETSON_ORIN)
@pytest.mark.parametrize(
    "base",
    ["ubuntu:22.04", f"ubuntu:22.04@{DIGEST}", "docker.io/library/ubuntu:22.04"],
)
def test_jetson_orin_accepted_on_ubuntu_22_04(write_release, release_data, model, base) -> None:
    release_data["base_image"] = base
    release_data["cells"] = [{"arch": "arm64", "model": model}]
    assert config.load(write_release(release_data)).cells[0].model == model


@pytest.mark.parametrize(
    "field, value",
    [
        ("version", "v1.2.3-rc.1"),
        ("version", "v1.2.3+build.5"),
        ("base_image", f"ubuntu:24.04@{DIGEST}"),
        ("base_image", "registry.example.com:5000/os/base:1.0"),
        ("kairos_init", f"quay.io/kairos/kairos-init@{DIGEST}"),
        ("registry", "127.0.0.1:5000"),
        ("namespace", "my-org/team_a"),
        ("repository", "my-distro"),
    ],
)
def test_accepted_top_fields(write_release, release_data, field, value) -> None:
    release_data[field] = value
    assert getattr(config.load(write_release(release_data)), field) == value


# -- refused: cells ----------------------------------------------------------------


@pytest.mark.parametrize("arch", ["amd64", "riscv64"])
@pytest.mark.parametrize("model", BOARDS)
def test_board_models_need_arm64(write_release, release_data, model, arch) -> None:
    data = with_cell(release_data, {"arch": arch, "model": model})
    assert_refused(write_release, data, "cells[1].model", f"{model} needs arch arm64")


def test_fips_refused_on_riscv64(write_release, release_data) -> None:
    data = with_cell(release_data, {"arch": "riscv64", "fips": True})
    assert_refused(write_release, data, "cells[1].fips", "not available on riscv64")


@pytest.mark.parametrize(
    "ref",
    [
        "quay.io/kairos/kairos-init:v4.3.0",
        f"quay.io/kairos/kairos-init:v4.3.0@{DIGEST}",
        "ghcr.io/kairos-io/kairos/kairos-init:v4.3.1",
    ],
)
def test_riscv64_refused_with_a_kairos_release_kairos_init(
    write_release, release_data, ref
) -> None:
    """Kairos release images of kairos-init are built for amd64 and arm64 only."""
    release_data["kairos_init"] = ref
    data = with_cell(release_data, {"arch": "riscv64"})
    assert_refused(write_release, data, "cells[1].arch", "kairos_init_riscv64")


def test_riscv64_pin_of_the_wrong_line_is_named(write_release, release_data) -> None:
    release_data["kairos_init_riscv64"] = "quay.io/kairos/kairos-init:v4.3.0"
    data = with_cell(release_data, {"arch": "riscv64"})
    assert_refused(write_release, data, "kairos_init_riscv64", "amd64 and arm64 only")


@pytest.mark.parametrize(
    ("kairos_init", "riscv64"),
    [
        ("quay.io/kairos/kairos-init:v4.3.0", "quay.io/kairos/kairos-init:v0.17.3"),
        ("quay.io/kairos/kairos-init:v0.17.3", ""),  # the standalone line has riscv64
        ("registry.example.com/my/kairos-init:v4.3.0", ""),  # your own build: your call
    ],
)
def test_riscv64_accepted_with_a_riscv64_kairos_init(
    write_release, release_data, kairos_init, riscv64
) -> None:
    release_data["kairos_init"] = kairos_init
    if riscv64:
        release_data["kairos_init_riscv64"] = riscv64
    rel = config.load(write_release(with_cell(release_data, {"arch": "riscv64"})))
    arm64, cell = rel.cells
    assert rel.kairos_init_for(cell) == (riscv64 or kairos_init)
    assert rel.kairos_init_for(arm64) == kairos_init


@pytest.mark.parametrize("tag", ["v0.5.1", "main"])
def test_hadron_trusted_boot_needs_hadron_trusted(write_release, release_data, tag) -> None:
    release_data["base_image"] = f"ghcr.io/kairos-io/hadron:{tag}"
    data = with_cell(release_data, {"arch": "amd64", "trusted_boot": True})
    assert_refused(write_release, data, "cells[1].trusted_boot", "hadron-trusted")
    release_data["base_image"] = f"ghcr.io/kairos-io/hadron-trusted:{tag}"
    assert config.load(write_release(data)).cells[1].trusted_boot


@pytest.mark.parametrize("model", JETSON_ORIN)
@pytest.mark.parametrize(
    "base", ["ubuntu:24.04", "ubuntu:20.04", "debian:12", f"ubuntu:24.04@{DIGEST}"]
)
def test_jetson_orin_refused_on_other_bases(write_release, release_data, model, base) -> None:
    release_data["base_image"] = base
    data = with_cell(release_data, {"arch": "arm64", "model": model})
    assert_refused(write_release, data, "cells[1].model", "needs base image ubuntu:22.04")


@pytest.mark.parametrize(
    "provider, version",
    [
        ("k3s", "v1.34.3"),  # bare Kubernetes version: kairos-init cannot download it
        ("k3s", "1.34.3+k3s1"),
        ("k3s", "v1.32.1+k0s.0"),
        ("k0s", "v1.32.1+k0s1"),
        ("k0s", "v1.32.1+k3s1"),
        ("k0s", "v1.32.1"),
    ],
)
def test_provider_version_needs_upstream_suffix(
    write_release, release_data, provider, version
) -> None:
    cell = {"arch": "amd64", "provider": provider, "provider_version": version}
    data = with_cell(release_data, cell)
    assert_refused(
        write_release, data, "cells[1].provider_version", f"is not a full {provider} tag"
    )


def test_provider_needs_a_version(write_release, release_data) -> None:
    data = with_cell(release_data, {"arch": "amd64", "provider": "k3s"})
    assert_refused(write_release, data, "cells[1].provider_version", "such as v1.35.1+k3s1")


@pytest.mark.parametrize("provider", [{"provider": "none"}, {}])
def test_provider_version_without_provider(write_release, release_data, provider) -> None:
    cell = {"arch": "amd64", **provider, "provider_version": "v1.32.1+k3s1"}
    data = with_cell(release_data, cell)
    assert_refused(write_release, data, "cells[1].provider_version", "provider is none")


@pytest.mark.parametrize(
    "cell, field, fragment",
    [
        (
            {"arch": "x86_64"},
            "cells[1].arch",
            '"x86_64" is not one of amd64, arm64, riscv64; did you mean amd64?',
        ),
        ({"arch": "arm64", "model": "rpi5"}, "cells[1].model", '"rpi5" is not one of'),
        ({"arch": "amd64", "provider": "rke2"}, "cells[1].provider", '"rke2" is not one of'),
        ({"model": "generic"}, "cells[1].arch", "is required"),
        ({"arch": 64}, "cells[1].arch", "expected text, got 64"),
        ({"arch": "amd64", "fips": "yes"}, "cells[1].fips", "expected true or false"),
        ({"arch": "amd64", "trusted_boot": 1}, "cells[1].trusted_boot", "expected true or false"),
        ({"arch": "amd64", "colour": "red"}, "cells[1].colour", "unknown field"),
    ],
)
def test_bad_cell_fields(write_release, release_data, cell, field, fragment) -> None:
    assert_refused(write_release, with_cell(release_data, cell), field, fragment)


def test_cell_must_be_a_mapping(write_release, release_data) -> None:
    data = with_cell(release_data, "amd64")  # type: ignore[arg-type]
    assert_refused(write_release, data, "cells[1]", "expected a mapping")


@pytest.mark.parametrize("cells", [[], None, "amd64", {"arch": "amd64"}])
def test_cells_must_be_a_non_empty_list(write_release, release_data, cells) -> None:
    release_data["cells"] = cells
    assert_refused(write_release, release_data, "cells", "non-empty list")


@pytest.mark.parametrize(
    "first, second, dup",
    [
        ({"arch": "amd64"}, {"arch": "amd64"}, "amd64-generic"),
        # Spelled differently, the same image: defaults and "none" do not make a new cell.
        (
            {"arch": "amd64"},
            {"arch": "amd64", "model": "generic", "provider": "none"},
            "amd64-generic",
        ),
        (
            {"arch": "arm64", "provider": "k3s", "provider_version": "v1.35.1+k3s1"},
            {"arch": "arm64", "provider": "k3s", "provider_version": "v1.35.1+k3s1"},
            "arm64-generic-k3s-v1.35.1-k3s1",
        ),
    ],
)
def test_duplicate_cells_refused(write_release, release_data, first, second, dup) -> None:
    release_data["cells"] = [{"arch": "riscv64"}, first, second]
    assert_refused(write_release, release_data, "cells[2]", f"duplicate of cell {dup}")


def test_cells_differing_only_in_provider_version_are_distinct(write_release, release_data) -> None:
    release_data["cells"] = [
        {"arch": "amd64", "provider": "k3s", "provider_version": "v1.35.1+k3s1"},
        {"arch": "amd64", "provider": "k3s", "provider_version": "v1.34.2+k3s1"},
    ]
    rel = config.load(write_release(release_data))
    assert [c.id for c in rel.cells] == [
        "amd64-generic-k3s-v1.35.1-k3s1",
        "amd64-generic-k3s-v1.34.2-k3s1",
    ]


# -- refused: top level --------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("version", "0.1.0", "semver with a leading v"),
        ("version", "v1.2", "semver with a leading v"),
        ("version", "v01.2.3", "semver with a leading v"),
        ("version", "latest", "semver with a leading v"),
        ("version", 1.0, 'expected text, got the number 1.0; write "v1.0.0"'),
        ("base_image", "Ubuntu:24.04", "an image reference"),
        ("base_image", "ubuntu:24.04@sha256:abc", "an image reference"),
        ("base_image", "ubuntu::24.04", "an image reference"),
        ("base_image", "ubuntu 24.04", "an image reference"),
        ("kairos_init", "quay.io/kairos/kairos-init:v0.17.3 ", "an image reference"),
        ("auroraboot", "https://quay.io/kairos/auroraboot", "an image reference"),
        ("namespace", "My-Org", "a lowercase path"),
        ("namespace", "my org", "a lowercase path"),
        ("repository", "My-Distro", "a lowercase path"),
        ("registry", "https://ghcr.io", "a registry host"),
        ("registry", "ghcr.io/my-org", "a registry host"),
        ("name", "My Distro", "a lowercase slug"),
        ("name", "-distro", "a lowercase slug"),
        ("source", "github.com/my-org/my-distro", "a web address without a login"),
        ("source", "https://", "a web address without a login"),
    ],
)
def test_bad_top_fields(write_release, release_data, field, value, fragment) -> None:
    release_data[field] = value
    assert_refused(write_release, release_data, field, fragment)


CANARY = "hunter2canary"


@pytest.mark.parametrize(
    "field, value, line",
    [
        (
            "source",
            f"https://bob:{CANARY}@github.com/my-org/x",
            'source: "https://***@github.com/my-org/x" is not a web address without a login,'
            " such as https://github.com/o/r",
        ),
        (
            "source",
            f"https://{CANARY}@github.com/my-org/x",
            'source: "https://***@github.com/my-org/x" is not a web address without a login,'
            " such as https://github.com/o/r",
        ),
        (
            "registry",
            f"bob:{CANARY}@ghcr.io",
            'registry: "***@ghcr.io" is not a registry host such as ghcr.io or 127.0.0.1:5000',
        ),
        (
            "base_image",
            f"bob:{CANARY}@ghcr.io/x:1",
            'base_image: "***@ghcr.io/x:1" is not an image reference such as ubuntu:24.04',
        ),
    ],
)
def test_a_login_in_a_value_is_refused_and_never_shown(
    write_release, release_data, field, value, line
) -> None:
    release_data[field] = value
    with pytest.raises(config.ConfigError) as err:
        config.load(write_release(release_data))
    assert str(err.value).split(": ", 1)[1] == line
    assert CANARY not in str(err.value)


@pytest.mark.parametrize(
    "field", ["name", "source", "version", "base_image", "kairos_init", "registry", "namespace"]
)
def test_required_top_fields(write_release, release_data, field) -> None:
    del release_data[field]
    assert_refused(write_release, release_data, field, "is required")


def test_unknown_top_level_key_is_named(write_release, release_data) -> None:
    release_data["arches"] = ["amd64"]
    assert_refused(write_release, release_data, "arches", "unknown field")


@pytest.mark.parametrize(
    "text, got",
    [
        ("- name: x\n", 'holds [{"name": "x"}]'),
        ("just text\n", 'holds "just text"'),
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
    ],
)
def test_top_level_must_be_a_mapping(write_release, text, got) -> None:
    path, message = refusal(write_release, text)
    assert message == f"{path}: {got}; expected a mapping (name, version, cells, ...)"


# -- refused: the file itself -----------------------------------------------------------


@pytest.mark.parametrize(
    "text, where, problem",
    [
        ("name: x\n  bad: [\n", ":2:6: ", "mapping values are not allowed"),
        ('name: x\nversion: "v1\n', ":2:10: ", "this quote is never closed"),
        ("name: x\ncells:\n\t- arch: amd64\n", ":3:1: ", "a tab where YAML wants spaces"),
    ],
)
def test_yaml_syntax_error_gives_line_and_column(write_release, text, where, problem) -> None:
    path, message = refusal(write_release, text)
    assert message.startswith(f"{path}{where}"), message
    assert problem in message


def test_missing_file(tmp_path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert str(caught.value) == f"{path}: cannot read (No such file or directory)"


def test_directory_is_not_a_release_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(tmp_path))}: cannot read \("):
        config.load(tmp_path)


# -- rules and helpers ------------------------------------------------------------------


def test_cell_problems_lists_every_broken_rule() -> None:
    cell = Cell(arch="riscv64", model="nvidia-jetson-orin-nx", fips=True)
    fields = [field for field, _ in cells.cell_problems(cell, "debian:13")]
    assert fields == ["model", "model", "fips"]
    assert cells.cell_problems(Cell(arch="amd64"), "debian:12") == []


@pytest.mark.parametrize(
    "ref, name",
    [
        ("ubuntu:22.04", "ubuntu:22.04"),
        (f"ubuntu:22.04@{DIGEST}", "ubuntu:22.04"),
        ("docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
        ("docker.io/ubuntu:22.04", "ubuntu:22.04"),
        ("index.docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
        ("ghcr.io/acme/ubuntu:22.04", "ghcr.io/acme/ubuntu:22.04"),
    ],
)
def test_base_name(ref, name) -> None:
    assert cells.base_name(ref) == name


def test_variant_follows_provider() -> None:
    assert Cell(arch="amd64").variant == "core"
    assert Cell(arch="amd64", provider="k0s", provider_version="v1.35.1+k0s.0").variant == (
        "standard"
    )


def test_select_keeps_file_order(make_release) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"}, {"arch": "riscv64"})
    assert rel.select() == list(rel.cells)
    picked = rel.select(["riscv64-generic", "amd64-generic"])
    assert [c.id for c in picked] == ["amd64-generic", "riscv64-generic"]


@pytest.mark.parametrize(
    "ids, message",
    [
        (
            ["amd64-generic", "s390x-generic"],
            "no cell s390x-generic; cells are: amd64-generic, arm64-generic",
        ),
        (
            ["amd46-generic"],
            "no cell amd46-generic (did you mean amd64-generic?); "
            "cells are: amd64-generic, arm64-generic",
        ),
    ],
)
def test_select_refuses_unknown_cell(make_release, ids, message) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"})
    with pytest.raises(ConfigError) as caught:
        rel.select(ids)
    assert str(caught.value) == f"release.yaml: {message}"


# -- boot_checks -----------------------------------------------------------------------------

OS_RELEASE = {"run": "cat /etc/os-release", "expect": "ID="}


def test_boot_checks_parse_into_tuples(write_release, release_data) -> None:
    release_data["boot_checks"] = [OS_RELEASE, {"run": "uname -m", "expect": "x86_64"}]
    release_data["cells"] = [
        {"arch": "amd64", "boot_checks": [{"run": "k3s check-config", "expect": "pass"}]},
        {"arch": "arm64"},
    ]
    rel = config.load(write_release(release_data))
    assert rel.boot_checks == (
        config.BootCheck("cat /etc/os-release", "ID="),
        config.BootCheck("uname -m", "x86_64"),
    )
    assert rel.cells[0].boot_checks == (config.BootCheck("k3s check-config", "pass"),)
    assert rel.cells[1].boot_checks == ()
    # Cells and releases stay frozen and hashable with their checks.
    assert len({*rel.cells}) == 2


@pytest.mark.parametrize("checks", [{}, {"boot_checks": None}, {"boot_checks": []}])
def test_boot_checks_are_optional(write_release, release_data, checks) -> None:
    release_data.update(checks)
    release_data["cells"] = [{"arch": "amd64", **checks}]
    rel = config.load(write_release(release_data))
    assert rel.boot_checks == ()
    assert rel.cells[0].boot_checks == ()


def test_boot_checks_do_not_make_a_new_cell(write_release, release_data) -> None:
    # The checks test an image; they do not change it, so the cell id is the same.
    release_data["cells"] = [{"arch": "amd64"}, {"arch": "amd64", "boot_checks": [OS_RELEASE]}]
    assert_refused(write_release, release_data, "cells[1]", "duplicate of cell amd64-generic")


@pytest.mark.parametrize(
    "checks, field, fragment",
    [
        ("cat /etc/os-release", "boot_checks", "expected a list of {run, expect}"),
        (OS_RELEASE, "boot_checks", "expected a list of {run, expect}"),
        (["cat /etc/os-release"], "boot_checks[0]", "expected a mapping with run and expect"),
        ([{"run": "uname"}], "boot_checks[0].expect", "is required"),
        ([{"run": "uname", "expect": ""}], "boot_checks[0].expect", "is required"),
        ([{"expect": "Linux"}], "boot_checks[0].run", "is required"),
        ([OS_RELEASE, {"run": "uname"}], "boot_checks[1].expect", "is required"),
        ([{"run": ["uname", "-a"], "expect": "Linux"}], "boot_checks[0].run", "expected text"),
        ([{"run": "nproc", "expect": 2}], "boot_checks[0].expect", "expected text, got 2"),
        ([{**OS_RELEASE, "timeout": 5}], "boot_checks[0].timeout", "unknown field"),
        ([{"command": "uname", "expect": "Linux"}], "boot_checks[0].command", "unknown field"),
    ],
)
def test_bad_top_level_boot_checks(write_release, release_data, checks, field, fragment) -> None:
    release_data["boot_checks"] = checks
    assert_refused(write_release, release_data, field, fragment)


@pytest.mark.parametrize(
    "checks, field, fragment",
    [
        ("uname", "boot_checks", "expected a list of {run, expect}"),
        ([{"run": "uname"}], "boot_checks[0].expect", "is required"),
        ([None], "boot_checks[0]", "expected a mapping with run and expect"),
        ([{**OS_RELEASE, "exp": "x"}], "boot_checks[0].exp", "unknown field"),
    ],
)
def test_bad_cell_boot_checks(write_release, release_data, checks, field, fragment) -> None:
    data = with_cell(release_data, {"arch": "amd64", "boot_checks": checks})
    assert_refused(write_release, data, f"cells[1].{field}", fragment)


def test_first_cell_boot_checks_refusal_names_cells_0(write_release, release_data) -> None:
    release_data["cells"] = [{"arch": "amd64", "boot_checks": {"run": "uname"}}]
    path, message = refusal(write_release, release_data)
    assert message == f"{path}: cells[0].boot_checks: expected a list of {{run, expect}}"


# -- signing ---------------------------------------------------------------------------------

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
WORKFLOW = r"^https://github\.com/my-org/distro/\.github/workflows/build\.yml@refs/tags/v.*$"


def signing_block(**fields: Any) -> dict[str, Any]:
    """An enabled signing block with an identity regexp; `fields` change it (None drops one)."""
    block = {
        "enabled": True,
        "trust": "production",
        "identity_regexp": WORKFLOW,
        "issuer": GITHUB_ISSUER,
        **fields,
    }
    return {k: v for k, v in block.items() if v is not None}


@pytest.mark.parametrize("signing", [{}, {"signing": None}], ids=["absent", "null"])
def test_signing_defaults_to_disabled(write_release, release_data, signing) -> None:
    release_data.update(signing)
    rel = config.load(write_release(release_data))
    assert rel.signing == config.Signing()
    assert rel.signing.enabled is False
    assert rel.signing.trust == "production"


@pytest.mark.parametrize(
    "fields, expected",
    [
        (
            {},
            config.Signing(True, "production", "", WORKFLOW, GITHUB_ISSUER),
        ),
        (
            {"identity_regexp": None, "identity": "me@example.com"},
            config.Signing(True, "production", "me@example.com", "", GITHUB_ISSUER),
        ),
        (
            {"trust": "staging", "issuer": "https://gitlab.com"},
            config.Signing(True, "staging", "", WORKFLOW, "https://gitlab.com"),
        ),
        (
            # A private Sigstore: its trust config next to release.yaml, a local issuer.
            {"trust": "sigstore/trust.json", "issuer": "http://127.0.0.1:5556/auth"},
            config.Signing(True, "sigstore/trust.json", "", WORKFLOW, "http://127.0.0.1:5556/auth"),
        ),
        (
            {"trust": None},
            config.Signing(True, "production", "", WORKFLOW, GITHUB_ISSUER),
        ),
        (
            {"trust": ""},
            config.Signing(True, "production", "", WORKFLOW, GITHUB_ISSUER),
        ),
    ],
    ids=["regexp", "identity", "staging", "trust-file", "trust-absent", "trust-empty"],
)
def test_signing_accepted(write_release, release_data, fields, expected) -> None:
    release_data["signing"] = signing_block(**fields)
    assert config.load(write_release(release_data)).signing == expected


@pytest.mark.parametrize(
    "block",
    [
        {"enabled": False},
        {},
        {"identity": "me@example.com"},  # enabled defaults to false
        {
            "enabled": False,
            "trust": "nowhere",
            "identity": "me@example.com",
            "identity_regexp": "(",
            "issuer": "not a URL",
        },
    ],
    ids=["only-enabled", "empty", "no-enabled", "all-wrong"],
)
def test_disabled_signing_skips_the_other_checks(write_release, release_data, block) -> None:
    release_data["signing"] = block
    signing = config.load(write_release(release_data)).signing
    assert signing.enabled is False
    assert signing == config.Signing(**{"trust": "production", **block})


@pytest.mark.parametrize(
    "fields, field, fragment",
    [
        (
            {"identity": "me@example.com"},
            "signing.identity",
            "set exactly one of identity, identity_regexp",
        ),
        (
            {"identity_regexp": None},
            "signing.identity",
            "set exactly one of identity, identity_regexp",
        ),
        (
            {"identity_regexp": ""},
            "signing.identity",
            "set exactly one of identity, identity_regexp",
        ),
        ({"issuer": None}, "signing.issuer", "expected the OIDC issuer URL"),
        ({"issuer": "token.actions.githubusercontent.com"}, "signing.issuer", "issuer URL"),
        ({"issuer": "https://"}, "signing.issuer", "issuer URL"),
        (
            {"trust": "prod"},
            "signing.trust",
            '"prod" is not production, staging or a ClientTrustConfig .json file',
        ),
        ({"trust": "trust.yaml"}, "signing.trust", '"trust.yaml" is not production, staging'),
        ({"identity_regexp": "^https://(github"}, "signing.identity_regexp", "invalid ("),
        ({"identity_regexp": "[z-a]"}, "signing.identity_regexp", "invalid ("),
        ({"key": "cosign.key"}, "signing.key", "unknown field"),
        (
            {"identity-regexp": ".*"},
            'signing."identity-regexp"',
            "unknown field; did you mean identity_regexp?",
        ),
        ({"enabled": "yes"}, "signing.enabled", 'expected true or false, got "yes"'),
        ({"enabled": 1}, "signing.enabled", "expected true or false, got 1"),
        ({"identity": 42, "identity_regexp": None}, "signing.identity", "expected text, got 42"),
        ({"trust": ["production"]}, "signing.trust", 'expected text, got ["production"]'),
        ({"issuer": True}, "signing.issuer", "expected text, got true"),
    ],
    ids=[
        "both",
        "neither",
        "empty-regexp",
        "no-issuer",
        "issuer-not-a-url",
        "issuer-without-host",
        "trust-unknown-name",
        "trust-not-json",
        "regexp-unbalanced",
        "regexp-bad-range",
        "unknown-field",
        "unknown-dashed-field",
        "enabled-text",
        "enabled-number",
        "identity-number",
        "trust-list",
        "issuer-bool",
    ],
)
def test_signing_refusals(write_release, release_data, fields, field, fragment) -> None:
    release_data["signing"] = signing_block(**fields)
    assert_refused(write_release, release_data, field, fragment)


@pytest.mark.parametrize("block", [True, "enabled", ["enabled"]])
def test_signing_must_be_a_mapping(write_release, release_data, block) -> None:
    release_data["signing"] = block
    path, message = refusal(write_release, release_data)
    assert message == f"{path}: signing: expected a mapping"


def test_signing_keeps_release_and_cells_hashable(write_release, release_data) -> None:
    release_data["signing"] = signing_block()
    rel = config.load(write_release(release_data))
    assert hash(rel.signing) == hash(
        config.Signing(True, "production", "", WORKFLOW, GITHUB_ISSUER)
    )
    assert rel.cells == (Cell(arch="amd64"),)  # signing changes no cell


# -- channels ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "block, expected",
    [
        ({}, ()),
        ({"channels": None}, ()),
        ({"channels": []}, ()),
        ({"channels": ["edge"]}, ("edge",)),
        ({"channels": ["edge", "stable", "lts2"]}, ("edge", "stable", "lts2")),
        ({"channels": ["a" * 20]}, ("a" * 20,)),
    ],
    ids=["absent", "null", "empty", "one", "in-order", "twenty-chars"],
)
def test_channels_are_optional_lowercase_names(
    write_release, release_data, block, expected
) -> None:
    release_data.pop("channels", None)
    release_data.update(block)
    rel = config.load(write_release(release_data))
    assert rel.channels == expected
    assert rel.cells == (Cell(arch="amd64"),)  # channels make no cell


@pytest.mark.parametrize(
    "channels, field, fragment",
    [
        ("edge", "channels", "expected a list of names such as [edge, stable]"),
        ({"edge": True}, "channels", "expected a list of names"),
        (True, "channels", "expected a list of names"),
        (["edge", 1], "channels", "expected a list of names"),
        ([["edge"]], "channels", "expected a list of names"),
        (["Edge"], "channels[0]", '"Edge" is not a lowercase name'),
        (["edge", "my-channel"], "channels[1]", '"my-channel" is not a lowercase name'),
        (["edge", "stable", ""], "channels[2]", '"" is not a lowercase name'),
        (["1st"], "channels[0]", '"1st" is not a lowercase name'),
        (["edge stable"], "channels[0]", "is not a lowercase name"),
        (["a" * 21], "channels[0]", "is not a lowercase name"),
        (["edge", "stable", "edge"], "channels", "names repeat"),
    ],
    ids=[
        "text",
        "mapping",
        "bool",
        "number-item",
        "list-item",
        "uppercase",
        "dash",
        "empty-name",
        "digit-first",
        "space",
        "too-long",
        "repeated",
    ],
)
def test_channels_refusals(write_release, release_data, channels, field, fragment) -> None:
    release_data["channels"] = channels
    assert_refused(write_release, release_data, field, fragment)


# -- version: git --------------------------------------------------------------------------


def test_version_git_is_accepted(write_release, release_data) -> None:
    # Resolved by the tasks (git describe), not by the loader: the file says "git".
    release_data["version"] = "git"
    assert config.load(write_release(release_data)).version == "git"


@pytest.mark.parametrize("version", ["Git", "GIT", "git ", "git-describe", "vgit", "head"])
def test_version_git_is_spelled_exactly(write_release, release_data, version) -> None:
    release_data["version"] = version
    assert_refused(write_release, release_data, "version", 'such as v1.2.3, or "git"')


# -- a trailing newline is not part of a value ------------------------------------------
# `$` matches before a final newline; the patterns end with `\Z` so "v1.2.3\n" (as a
# YAML block scalar writes it) is refused rather than baked into a tag or build arg.


@pytest.mark.parametrize(
    "module, pattern, value",
    [
        (config, "SEMVER", "v1.2.3"),
        (config, "SEMVER", "v1.2.3-rc.1+build.5"),
        (config, "VERSION", "v1.2.3"),
        (config, "VERSION", "git"),
        (fields, "CHANNEL", "edge"),
        (config, "SLUG", "my-distro"),
        (vulndb, "PIN", f"https://grype.anchore.io/v6/db.tar.zst?checksum=sha256:{'a' * 64}"),
    ],
    ids=["semver", "semver-pre", "version", "version-git", "channel", "slug", "vulndb-pin"],
)
def test_patterns_refuse_a_trailing_newline(module, pattern, value) -> None:
    regex = getattr(module, pattern)
    assert regex.match(value)
    assert not regex.match(f"{value}\n")
    assert not regex.match(f"{value}\n\n")


@pytest.mark.parametrize("provider, version", [("k3s", "v1.35.1+k3s1"), ("k0s", "v1.35.1+k0s.0")])
def test_provider_version_patterns_refuse_a_trailing_newline(provider, version) -> None:
    assert cells.PROVIDER_VERSION[provider].match(version)
    assert not cells.PROVIDER_VERSION[provider].match(f"{version}\n")


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("version", "v1.2.3\n", "semver with a leading v"),
        ("version", "v1.2.3-rc.1\n", "semver with a leading v"),
        ("version", "git\n", 'such as v1.2.3, or "git"'),
        ("base_image", "ubuntu:24.04\n", "an image reference"),
        ("kairos_init", f"quay.io/kairos/kairos-init@{DIGEST}\n", "an image reference"),
        ("auroraboot", "quay.io/kairos/auroraboot:v0.26.2\n", "an image reference"),
        ("registry", "ghcr.io\n", "a registry host"),
        ("namespace", "my-org\n", "a lowercase path"),
        ("repository", "my-distro\n", "a lowercase path"),
        ("name", "my-distro\n", "a lowercase slug"),
    ],
)
def test_top_fields_with_a_trailing_newline_are_refused(
    write_release, release_data, field, value, fragment
) -> None:
    release_data[field] = value
    path, message = refusal(write_release, release_data)
    shown = value.replace("\n", "\\n")  # as a YAML double-quoted scalar writes it
    assert message.startswith(f'{path}: {field}: "{shown}" is not '), message
    assert fragment in message, message


def test_version_from_a_block_scalar_is_refused(write_release, release_data) -> None:
    # `version: |` keeps the line break: the version read is "v1.2.3\n".
    text = yaml.safe_dump({**release_data, "version": "PLACEHOLDER"}, sort_keys=False)
    text = text.replace("version: PLACEHOLDER\n", "version: |\n  v1.2.3\n")
    assert yaml.safe_load(text)["version"] == "v1.2.3\n"
    assert_refused(write_release, text, "version", '"v1.2.3\\n" is not semver')


@pytest.mark.parametrize("channel", ["edge\n", "edge\n\n"])
def test_channel_with_a_trailing_newline_is_refused(write_release, release_data, channel) -> None:
    release_data["channels"] = ["stable", channel]
    shown = channel.replace("\n", "\\n")
    assert_refused(write_release, release_data, "channels[1]", f'"{shown}" is not a lowercase name')


@pytest.mark.parametrize(
    "provider, version", [("k3s", "v1.35.1+k3s1\n"), ("k0s", "v1.35.1+k0s.0\n")]
)
def test_provider_version_with_a_trailing_newline_is_refused(
    write_release, release_data, provider, version
) -> None:
    data = with_cell(
        release_data, {"arch": "amd64", "provider": provider, "provider_version": version}
    )
    assert_refused(
        write_release,
        data,
        "cells[1].provider_version",
        f'"{version.strip()}\\n" is not a full {provider} tag',
    )


@pytest.mark.parametrize(
    "change, field, message",
    [
        (
            {"cells": [{"arch": "amd64"}, {"arch": "arm64"}, {"arch": "amd64", "provider": "k3s"}]},
            "cells[2].provider_version",
            "is required for k3s: a full tag such as v1.35.1+k3s1",
        ),
        ({"channels": ["edge", "Stable"]}, "channels[1]", '"Stable" is not a lowercase name'),
        ({"base_image": "Ubuntu"}, "base_image", '"Ubuntu" is not an image reference'),
        ({"signing": {"enabled": True, "identity": "me", "issuer": "x"}}, "signing.issuer", ""),
        ({"tags": {"image": "{arch}"}}, "tags.image", "has no {version}"),
    ],
)
def test_config_error_carries_its_field_path(release_data, change, field, message) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse({**release_data, **change}, Path("dir/release.yaml"))
    err = caught.value
    assert (err.field, err.file) == (field, Path("dir/release.yaml"))
    assert err.message.startswith(message)
    assert str(err) == f"dir/release.yaml: {field}: {err.message}"  # the line users see


def test_config_error_without_a_field_is_file_and_message(write_release) -> None:
    path = write_release("name: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.field == ""
    assert re.match(
        rf"^{re.escape(str(path))}:\d+:\d+: {re.escape(caught.value.message)}$", str(caught.value)
    )


# -- refresh: what makes a published cell release again -----------------------------------
@pytest.mark.parametrize("mode", config.REFRESH_MODES)
def test_refresh_modes_are_read(write_release, release_data, mode) -> None:
    release_data["refresh"] = mode
    assert config.load(write_release(release_data)).refresh == mode


def test_refresh_defaults_to_packages(write_release, release_data) -> None:
    release_data.pop("refresh", None)
    assert config.load(write_release(release_data)).refresh == "packages"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "package",
            'refresh: "package" is not one of packages, inputs, always; did you mean packages?',
        ),
        ("never", 'refresh: "never" is not one of packages, inputs, always'),
        (True, "refresh: expected text, got true (quote it if it is text)"),
    ],
)
def test_refresh_refuses_other_modes(write_release, release_data, value, message) -> None:
    release_data["refresh"] = value
    with pytest.raises(config.ConfigError) as err:
        config.load(write_release(release_data))
    assert str(err.value).endswith(message), str(err.value)


# -- syft, grype, the vulnerability database ------------------------------------------------

VULNDB_PIN = (
    "https://grype.anchore.io/databases/v6/vulnerability-db_v6.1.10_2026-05-01T03:21:47Z.tar.zst"
    f"?checksum=sha256:{'5' * 64}"
)


def test_syft_and_grype_default_to_the_packages_images(write_release, release_data) -> None:
    rel = config.load(write_release(release_data))
    assert (rel.syft, rel.grype, rel.vulndb) == (sbom.SYFT_IMAGE, vulndb.GRYPE_IMAGE, "")
    assert rel.vulnerabilities == policy.Policy()
    # Written empty, they are the defaults too (a template that names none).
    rel = config.load(write_release({**release_data, "syft": "", "grype": None, "vulndb": ""}))
    assert (rel.syft, rel.grype, rel.vulndb) == (sbom.SYFT_IMAGE, vulndb.GRYPE_IMAGE, "")


def test_the_default_tool_images_are_pinned_by_tag() -> None:
    for image in (sbom.SYFT_IMAGE, vulndb.GRYPE_IMAGE):
        ref = ImageRef.parse(image)
        assert ref.tag.startswith("v") and ref.api_host == "registry-1.docker.io", image


@pytest.mark.parametrize(
    "field, value",
    [
        ("syft", f"docker.io/anchore/syft:v1.58.0@{DIGEST}"),
        ("syft", "127.0.0.1:5000/mirror/syft:v1.57.0"),
        ("grype", f"ghcr.io/anchore/grype:v0.122.0@{DIGEST}"),
        ("vulndb", VULNDB_PIN),
        ("vulndb", f"http://127.0.0.1:8080/v6/db.tar.zst?checksum=sha256:{'a' * 64}"),
    ],
    ids=["syft-digest", "syft-mirror", "grype", "vulndb", "vulndb-local-mirror"],
)
def test_tool_pins_are_read(write_release, release_data, field, value) -> None:
    release_data[field] = value
    assert getattr(config.load(write_release(release_data)), field) == value


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("syft", "anchore/syft:v1.57.0 --debug", "is not an image reference"),
        ("grype", "https://ghcr.io/anchore/grype", "is not an image reference"),
        ("syft", True, "expected text, got true"),
        (
            "vulndb",
            VULNDB_PIN.split("?")[0],
            "is not a database URL ending ?checksum=sha256:<64 hex>",
        ),
        ("vulndb", VULNDB_PIN.replace("sha256:", "sha512:"), "is not a database URL ending"),
        ("vulndb", VULNDB_PIN + "0", "is not a database URL ending"),
        ("vulndb", VULNDB_PIN.upper(), "is not a database URL ending"),
        ("vulndb", "file:///srv/db.tar.zst?checksum=sha256:" + "5" * 64, "is not a database URL"),
        ("vulndb", "latest", 'vulndb: "latest" is not a database URL ending ?checksum='),
    ],
    ids=[
        "syft-argument",
        "grype-url",
        "syft-bool",
        "no-checksum",
        "sha512",
        "long-checksum",
        "uppercase",
        "file-url",
        "word",
    ],
)
def test_bad_tool_pins_are_refused(write_release, release_data, field, value, fragment) -> None:
    release_data[field] = value
    assert_refused(write_release, release_data, field, fragment)


def test_a_login_in_the_vulndb_pin_is_never_shown(write_release, release_data) -> None:
    release_data["vulndb"] = f"https://bob:{CANARY}@mirror.example/db.tar.zst"  # no checksum
    with pytest.raises(config.ConfigError) as err:
        config.load(write_release(release_data))
    assert CANARY not in str(err.value)
    assert '"https://***@mirror.example/db.tar.zst" is not a database URL' in str(err.value)


def test_vulnerabilities_refusals_name_the_file_and_field(write_release, release_data) -> None:
    release_data["vulnerabilities"] = {"allow": [{"id": "CVE-2026-0001", "reason": "r"}]}
    path, message = refusal(write_release, release_data)
    assert message == (
        f"{path}: vulnerabilities.allow[0].expires: null is not a date such as 2027-01-31 "
        "(every exception expires)"
    )


def test_the_baked_release_file_reads_with_the_default_policy() -> None:
    rel = config.load(ROOT / "release.yaml")
    assert (rel.syft, rel.grype) == (sbom.SYFT_IMAGE, vulndb.GRYPE_IMAGE)  # what the bake pins
    assert rel.vulndb == ""  # follows the listing until `invoke bump vulndb`
    assert rel.vulnerabilities == policy.Policy()

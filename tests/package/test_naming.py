"""Cell ids, image tags and artifact names, and reading /etc/kairos-release."""

from __future__ import annotations

import dataclasses

import pytest
from package_helpers import UBUNTU_CORE, UPSTREAM

from kairos_distro import naming, ref
from kairos_distro.config import Cell
from kairos_distro.naming import Identity, NamingError
from kairos_distro.tagformat import TagFormats

K3S = {"provider": "k3s", "provider_version": "v1.35.1+k3s1"}
K0S = {"provider": "k0s", "provider_version": "v1.35.1+k0s.0"}

# An /etc/kairos-release as kairos-init writes it (trimmed), quoting and all.
KAIROS_RELEASE = """\
# Kairos release information
KAIROS_NAME="kairos-core-ubuntu-24.04"
KAIROS_FLAVOR="ubuntu"
KAIROS_FLAVOR_RELEASE="24.04"

KAIROS_VARIANT="standard"
KAIROS_TARGETARCH="amd64"
KAIROS_ARCH="amd64"
KAIROS_MODEL="generic"
KAIROS_VERSION="v0.1.0"
KAIROS_SOFTWARE_VERSION_PREFIX="k3s"
KAIROS_SOFTWARE_VERSION="v1.35.1+k3s1"
KAIROS_TRUSTED_BOOT="false"
KAIROS_FIPS="false"
"""


TAGS = TagFormats()  # the default: Kairos's factory convention


def release_values(**changes: str | None) -> dict[str, str]:
    """The parsed KAIROS_RELEASE, with keys changed (or removed when None)."""
    values = naming.parse_release_file(KAIROS_RELEASE)
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values


@pytest.mark.parametrize(
    "cell, expected",
    [
        (Cell(arch="amd64"), "amd64-generic"),
        (Cell(arch="arm64", model="rpi4"), "arm64-rpi4"),
        (Cell(arch="amd64", **K3S), "amd64-generic-k3s-v1.35.1-k3s1"),
        (Cell(arch="arm64", **K0S), "arm64-generic-k0s-v1.35.1-k0s.0"),
        (Cell(arch="amd64", trusted_boot=True), "amd64-generic-uki"),
        (Cell(arch="amd64", fips=True), "amd64-generic-fips"),
        (
            Cell(arch="amd64", trusted_boot=True, fips=True, **K3S),
            "amd64-generic-k3s-v1.35.1-k3s1-uki-fips",
        ),
    ],
)
def test_cell_id(cell, expected) -> None:
    assert cell.id == expected
    assert cell.id == expected


@pytest.mark.parametrize(
    "ident, tag",
    [
        (UPSTREAM, "3.21-standard-arm64-rpi4-v3.5.0-k3s-v1.33.2-k3s1"),
        (UBUNTU_CORE, "24.04-core-amd64-generic-v0.1.0"),
        (
            dataclasses.replace(UBUNTU_CORE, trusted_boot=True),
            "24.04-core-amd64-generic-v0.1.0-uki",
        ),
        (dataclasses.replace(UBUNTU_CORE, fips=True), "24.04-core-amd64-generic-v0.1.0-fips"),
        (
            dataclasses.replace(UPSTREAM, trusted_boot=True, fips=True),
            "3.21-standard-arm64-rpi4-v3.5.0-k3s-v1.33.2-k3s1-uki-fips",
        ),
        # Build metadata in the release version: `+` is not allowed in a tag either.
        (
            dataclasses.replace(UBUNTU_CORE, version="v1.0.0+b7"),
            "24.04-core-amd64-generic-v1.0.0-b7",
        ),
    ],
)
def test_image_tag(ident, tag) -> None:
    assert naming.image_tag(ident, TAGS) == tag
    assert ref.TAG.match(tag)


@pytest.mark.parametrize(
    "change",
    [{"flavor_release": "24.04/lts"}, {"model": "my board"}, {"version": "v" + "1" * 130}],
)
def test_image_tag_refuses_an_invalid_tag(change) -> None:
    with pytest.raises(NamingError, match="is not a valid OCI tag"):
        naming.image_tag(dataclasses.replace(UBUNTU_CORE, **change), TAGS)


@pytest.mark.parametrize(
    "ident, name",
    [
        (UPSTREAM, "kairos-alpine-3.21-standard-arm64-rpi4-v3.5.0-k3sv1.33.2+k3s1"),
        (UBUNTU_CORE, "kairos-ubuntu-24.04-core-amd64-generic-v0.1.0"),
        (
            dataclasses.replace(
                UBUNTU_CORE, variant="standard", provider="k3s", provider_version="v1.35.1+k3s1"
            ),
            "kairos-ubuntu-24.04-standard-amd64-generic-v0.1.0-k3sv1.35.1+k3s1",
        ),
        (
            dataclasses.replace(UBUNTU_CORE, trusted_boot=True),
            "kairos-ubuntu-24.04-core-amd64-generic-v0.1.0-uki",
        ),
    ],
)
def test_artifact_name_keeps_plus_as_auroraboot_writes_it(ident, name) -> None:
    assert naming.artifact_name(ident) == name


def test_image_ref_and_repository(make_release) -> None:
    rel = make_release(registry="127.0.0.1:5000", namespace="dev/team")
    assert naming.repository(rel, UBUNTU_CORE) == "127.0.0.1:5000/dev/team/ubuntu"
    assert naming.image_ref(rel, UBUNTU_CORE) == (
        "127.0.0.1:5000/dev/team/ubuntu:24.04-core-amd64-generic-v0.1.0"
    )
    # An explicit repository wins over the flavor.
    named = make_release(repository="my-distro")
    assert naming.repository(named, UBUNTU_CORE) == "ghcr.io/my-org/my-distro"


def test_local_tag(make_release) -> None:
    rel = make_release({"arch": "arm64", **K3S})
    cell = rel.cells[0]
    assert naming.local_tag(rel, cell) == (
        "kairos-local/my-org-kairos-ubuntu:arm64-generic-k3s-v1.35.1-k3s1"
    )


def test_expected_identity_uses_placeholders(make_release) -> None:
    rel = make_release(
        {"arch": "arm64", "fips": True, **K0S}, version="v2.0.0", base_image="debian:13"
    )
    ident = Identity.expected(rel, rel.cells[0])
    assert ident == Identity(
        flavor="FLAVOR",
        flavor_release="FLAVOR_RELEASE",
        variant="standard",
        arch="arm64",
        model="generic",
        version="v2.0.0",
        provider="k0s",
        provider_version="v1.35.1+k0s.0",
        fips=True,
    )
    assert naming.image_tag(ident, TAGS) == (
        "FLAVOR_RELEASE-standard-arm64-generic-v2.0.0-k0s-v1.35.1-k0s.0-fips"
    )


# -- /etc/kairos-release ------------------------------------------------------------------


def test_parse_release_file_quoting_comments_and_blanks() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "   ",
            'DOUBLE="two words"',
            "SINGLE='it is'",
            "BARE=plain",
            'ESCAPED="say \\"hi\\""',
            "EMPTY=",
            'EMPTY_QUOTED=""',
            '  INDENTED="yes"  ',
            "not a pair",
            "HASH=a#b",
        ]
    )
    assert naming.parse_release_file(text) == {
        "DOUBLE": "two words",
        "SINGLE": "it is",
        "BARE": "plain",
        "ESCAPED": 'say "hi"',
        "EMPTY": "",
        "EMPTY_QUOTED": "",
        "INDENTED": "yes",
        "HASH": "a#b",
    }


def test_identity_from_kairos_release() -> None:
    ident = Identity.from_kairos_release(naming.parse_release_file(KAIROS_RELEASE))
    assert ident == Identity(
        flavor="ubuntu",
        flavor_release="24.04",
        variant="standard",
        arch="amd64",
        model="generic",
        version="v0.1.0",
        provider="k3s",
        provider_version="v1.35.1+k3s1",
        trusted_boot=False,
        fips=False,
    )


def test_identity_flags_and_arch_fallback() -> None:
    values = release_values(
        KAIROS_TARGETARCH=None, KAIROS_ARCH="arm64", KAIROS_TRUSTED_BOOT="true", KAIROS_FIPS="true"
    )
    ident = Identity.from_kairos_release(values)
    assert (ident.arch, ident.trusted_boot, ident.fips) == ("arm64", True, True)
    # TARGETARCH wins when both are present.
    both = release_values(KAIROS_TARGETARCH="riscv64", KAIROS_ARCH="arm64")
    assert Identity.from_kairos_release(both).arch == "riscv64"


@pytest.mark.parametrize(
    "missing, reported",
    [
        (["KAIROS_FLAVOR"], "KAIROS_FLAVOR"),
        (["KAIROS_FLAVOR_RELEASE"], "KAIROS_FLAVOR_RELEASE"),
        (["KAIROS_VARIANT"], "KAIROS_VARIANT"),
        (["KAIROS_MODEL"], "KAIROS_MODEL"),
        (["KAIROS_VERSION"], "KAIROS_VERSION"),
        (["KAIROS_TARGETARCH", "KAIROS_ARCH"], "KAIROS_TARGETARCH"),
        (
            ["KAIROS_VERSION", "KAIROS_VARIANT", "KAIROS_ARCH", "KAIROS_TARGETARCH"],
            "KAIROS_VARIANT",
        ),
    ],
)
def test_identity_reports_first_missing_key(missing, reported) -> None:
    values = release_values(**dict.fromkeys(missing))
    with pytest.raises(NamingError) as caught:
        Identity.from_kairos_release(values)
    assert str(caught.value) == f"/etc/kairos-release lacks {reported}"


def test_empty_value_counts_as_missing() -> None:
    with pytest.raises(NamingError, match=r"lacks KAIROS_MODEL$"):
        Identity.from_kairos_release(release_values(KAIROS_MODEL=""))


def test_mismatches_empty_when_image_matches_cell() -> None:
    ident = Identity.from_kairos_release(release_values())
    assert ident.mismatches(Cell(arch="amd64", **K3S)) == []


def test_mismatches_name_each_disagreement() -> None:
    ident = Identity.from_kairos_release(release_values())
    cell = Cell(arch="arm64", model="rpi4", fips=True)
    assert ident.mismatches(cell) == [
        'KAIROS_VARIANT="standard", cell wants "core"',
        'KAIROS_TARGETARCH="amd64", cell wants "arm64"',
        'KAIROS_MODEL="generic", cell wants "rpi4"',
        'KAIROS_SOFTWARE_VERSION_PREFIX="k3s", cell wants ""',
        'KAIROS_SOFTWARE_VERSION="v1.35.1+k3s1", cell wants ""',
        "KAIROS_FIPS=false, cell wants true",
    ]


def test_mismatches_catches_another_provider_version() -> None:
    ident = Identity.from_kairos_release(release_values())
    cell = Cell(arch="amd64", provider="k3s", provider_version="v1.34.2+k3s1")
    assert ident.mismatches(cell) == [
        'KAIROS_SOFTWARE_VERSION="v1.35.1+k3s1", cell wants "v1.34.2+k3s1"'
    ]


# -- channel tags --------------------------------------------------------------------------

K0S_UBUNTU = dataclasses.replace(
    UBUNTU_CORE, variant="standard", provider="k0s", provider_version="v1.35.1+k0s.0"
)


@pytest.mark.parametrize(
    "ident, channel, tag",
    [
        (UBUNTU_CORE, "edge", "24.04-core-amd64-generic-edge"),
        (UPSTREAM, "stable", "3.21-standard-arm64-rpi4-stable-k3s-v1.33.2-k3s1"),
        (K0S_UBUNTU, "edge", "24.04-standard-amd64-generic-edge-k0s-v1.35.1-k0s.0"),
        (
            dataclasses.replace(UBUNTU_CORE, trusted_boot=True),
            "edge",
            "24.04-core-amd64-generic-edge-uki",
        ),
        (dataclasses.replace(UBUNTU_CORE, fips=True), "lts", "24.04-core-amd64-generic-lts-fips"),
        (
            dataclasses.replace(UPSTREAM, trusted_boot=True, fips=True),
            "edge",
            "3.21-standard-arm64-rpi4-edge-k3s-v1.33.2-k3s1-uki-fips",
        ),
        (
            dataclasses.replace(UBUNTU_CORE, version="v1.0.0+b7"),
            "edge",
            "24.04-core-amd64-generic-edge",
        ),
    ],
    ids=["core", "k3s", "k0s", "uki", "fips", "k3s-uki-fips", "build-metadata"],
)
def test_channel_tag_puts_the_channel_where_the_version_was(ident, channel, tag) -> None:
    assert naming.channel_tag(ident, TAGS, channel) == tag
    assert ref.TAG.match(tag)
    # The version tag is the same name with the version in that place.
    version = ref.safe(ident.version)
    assert naming.image_tag(ident, TAGS) == tag.replace(f"-{channel}", f"-{version}", 1)


def test_channel_tag_leaves_the_identity_alone() -> None:
    before = dataclasses.replace(UPSTREAM)
    naming.channel_tag(UPSTREAM, TAGS, "edge")
    assert before == UPSTREAM
    assert naming.image_tag(UPSTREAM, TAGS) == "3.21-standard-arm64-rpi4-v3.5.0-k3s-v1.33.2-k3s1"


def test_channel_tag_of_an_expected_identity(make_release) -> None:
    # What `invoke --dry publish` prints before the flavor is known.
    rel = make_release({"arch": "arm64", **K3S})
    ident = Identity.expected(rel, rel.cells[0])
    assert naming.channel_tag(ident, TAGS, "edge") == (
        "FLAVOR_RELEASE-standard-arm64-generic-edge-k3s-v1.35.1-k3s1"
    )


def test_channel_tag_refuses_an_invalid_tag() -> None:
    with pytest.raises(NamingError, match="is not a valid OCI tag"):
        naming.channel_tag(UBUNTU_CORE, TAGS, "edge/stable")


# -- a trailing newline is not part of a tag -------------------------------------------


@pytest.mark.parametrize("tag", ["edge", "24.04-core-amd64-generic-v0.1.0", "_x", "a" * 128])
def test_tag_pattern_refuses_a_trailing_newline(tag) -> None:
    assert ref.TAG.match(tag)
    assert not ref.TAG.match(f"{tag}\n")
    assert not ref.TAG.match(f"{tag}\n\n")


@pytest.mark.parametrize(
    "ident",
    [
        dataclasses.replace(UBUNTU_CORE, version="v0.1.0\n"),
        dataclasses.replace(UPSTREAM, provider_version="v1.33.2+k3s1\n"),
    ],
    ids=["version", "provider-version"],
)
def test_image_tag_refuses_a_trailing_newline(ident) -> None:
    # Each value ends its tag, where `$` used to let a final "\n" by.
    with pytest.raises(NamingError, match="is not a valid OCI tag"):
        naming.image_tag(ident, TAGS)


def test_channel_tag_refuses_a_trailing_newline() -> None:
    assert naming.channel_tag(UBUNTU_CORE, TAGS, "edge") == "24.04-core-amd64-generic-edge"
    with pytest.raises(NamingError, match=r'"24\.04-core-amd64-generic-edge\\n" is not a valid'):
        naming.channel_tag(UBUNTU_CORE, TAGS, "edge\n")

"""release.yaml's `tags`: formats checked in config, rendered by naming for publish and promote."""

from __future__ import annotations

import dataclasses

import pytest
from package_helpers import UPSTREAM

from kairos_distro import naming, tagformat
from kairos_distro.config import ConfigError
from kairos_distro.naming import Identity
from kairos_distro.tagformat import TagFormats


def test_the_default_is_the_factory_convention() -> None:
    """kairos-factory-action's own example, and its channel twin."""
    tags = TagFormats()
    assert naming.image_tag(UPSTREAM, tags) == "3.21-standard-arm64-rpi4-v3.5.0-k3s-v1.33.2-k3s1"
    assert naming.channel_tag(UPSTREAM, tags, "edge") == (
        "3.21-standard-arm64-rpi4-edge-k3s-v1.33.2-k3s1"
    )
    uki_fips = dataclasses.replace(UPSTREAM, trusted_boot=True, fips=True)
    assert naming.image_tag(uki_fips, tags).endswith("-v1.33.2-k3s1-uki-fips")
    core = dataclasses.replace(UPSTREAM, variant="core", provider="", provider_version="")
    assert naming.image_tag(core, tags) == "3.21-core-arm64-rpi4-v3.5.0"
    assert naming.raw_tag(core, tags) == "3.21-core-arm64-rpi4-v3.5.0-img"


def test_optional_parts_need_every_field_they_name() -> None:
    values = {**UPSTREAM.values(), "provider_version": ""}
    assert tagformat.render("{version}[-{provider}-{provider_version}]", values) == "v3.5.0"
    assert tagformat.render("{version}[-{provider}]", values) == "v3.5.0-k3s"
    assert tagformat.render("{version}[-x]", values) == "v3.5.0-x"  # no field: always kept


def test_a_release_yaml_format_names_the_published_tags(make_release) -> None:
    rel = make_release(
        {"arch": "amd64", "provider": "k3s", "provider_version": "v1.35.1+k3s1"},
        tags={"image": "{version}_{flavor}-{arch}[-{provider_version}]"},
        channels=["edge"],
    )
    ident = Identity.expected(rel, rel.cells[0])
    assert naming.image_tag(ident, rel.tags) == "v0.1.0_FLAVOR-amd64-v1.35.1-k3s1"
    # No channel format given: the image's, with {channel} where {version} was.
    assert rel.tags.channel == "{channel}_{flavor}-{arch}[-{provider_version}]"
    assert naming.channel_tag(ident, rel.tags, "edge") == "edge_FLAVOR-amd64-v1.35.1-k3s1"


def test_the_default_needs_no_tags_in_release_yaml(make_release) -> None:
    assert make_release().tags == TagFormats()
    assert make_release(tags={}).tags == TagFormats()


@pytest.mark.parametrize(
    "tags, field, message",
    [
        ("{version}", "tags", "expected a mapping with image and channel"),
        ({"raw": "{version}-img"}, "tags.raw", "unknown field"),
        ({"image": 7}, "tags.image", "expected text, got 7"),
        ({"image": "{arch}-{model}"}, "tags.image", "has no {version}"),
        ({"channel": "{arch}-{model}"}, "tags.channel", "has no {channel}"),
        ({"image": "{version}-{kernel}"}, "tags.image", "unknown field {kernel}"),
        ({"image": "{version}-{channel}"}, "tags.image", "{channel} has no place in a version"),
        (
            {"channel": "{channel}-{version}"},
            "tags.channel",
            "{version} has no place in a channel",
        ),
        ({"image": "{version}+{arch}"}, "tags.image", r'"\+" cannot be in a tag'),
        ({"image": "{version}/{arch}"}, "tags.image", '"/" cannot be in a tag'),
        ({"image": "{version} {arch}"}, "tags.image", '" " cannot be in a tag'),
        ({"image": "{version}-{arch"}, "tags.image", "unbalanced { }"),
        ({"image": "{version}[-{uki}"}, "tags.image", r"unbalanced or nested \[ \]"),
        ({"image": "{version}[-[{uki}]]"}, "tags.image", r"unbalanced or nested \[ \]"),
        ({"image": "-{version}"}, "tags.image", "cannot start with - or ."),
        (
            {"image": "{version}-" + "x" * 130},
            "tags.image",
            "makes tags of at least 137 characters for cell amd64-generic",
        ),
        (
            {"channel": "{channel}-" + "x" * 124},
            "tags.channel",
            "makes tags of at least 131 characters for cell amd64-generic",
        ),
    ],
)
def test_config_refuses_a_bad_format_in_one_line(make_release, tags, field, message) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        make_release(tags=tags, channels=["edge", "stable"])
    assert caught.value.field == field
    assert str(caught.value).startswith(f"release.yaml: {field}: ")
    assert "\n" not in str(caught.value)


def test_a_long_channel_format_without_channels_is_never_rendered(make_release) -> None:
    rel = make_release(tags={"channel": "{channel}-" + "x" * 124}, channels=[])
    assert rel.channels == ()

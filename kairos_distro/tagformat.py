"""Tag formats: how release.yaml's `tags` turn an image's identity into tags.

A format is text with `{field}` for a value of the built image's
/etc/kairos-release and `[...]` for a part left out when a field in it is
empty. The default is Kairos's factory convention (kairos-factory-action,
now kairos-io/kairos reusable-factory.yaml):
  $FLAVOR_RELEASE-$VARIANT-$ARCH-$MODEL-$VERSION[-$K8S_DISTRO-$K8S_VERSION][-uki]
plus `-fips`, so a FIPS image never shares a tag with its twin. A channel tag
is the same with `{channel}` where the version was. `+` becomes `-`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .ref import safe
from .words import show

# The fields every format may use (naming.Identity fills them).
FIELDS = (
    "flavor",
    "flavor_release",
    "variant",
    "arch",
    "model",
    "version",
    "provider",
    "provider_version",
    "uki",  # "uki" on trusted-boot images, else empty
    "fips",  # "fips" on FIPS images, else empty
)
_TAIL = "[-{provider}-{provider_version}][-{uki}][-{fips}]"
IMAGE = "{flavor_release}-{variant}-{arch}-{model}-{version}" + _TAIL
CHANNEL = "{flavor_release}-{variant}-{arch}-{model}-{channel}" + _TAIL
TAG_MAX = 128  # characters in an OCI tag
# Literal text: what an OCI tag may hold, and the brackets and braces above.
_PART = re.compile(r"\[([^\[\]]*)\]|([^\[\]]+)")
_FIELD = re.compile(r"\{([^{}]*)\}")
_LITERAL = re.compile(r"^[A-Za-z0-9_.-]*\Z")


class TagFormatError(ValueError):
    """A format that cannot make tags; str() is one line."""


def _fields(text: str) -> list[str]:
    """The fields `text` names, once its brackets and literal characters are checked."""
    parts = list(_PART.finditer(text))
    if "".join(p.group(0) for p in parts) != text:
        raise TagFormatError("unbalanced or nested [ ]")
    names = []
    for part in parts:
        body = part.group(1) if part.group(1) is not None else part.group(2)
        literal = _FIELD.sub("", body)
        if "{" in literal or "}" in literal:
            raise TagFormatError("unbalanced { }")
        if not _LITERAL.match(literal):
            bad = next(c for c in literal if not _LITERAL.match(c))
            raise TagFormatError(f"{show(bad)} cannot be in a tag (letters, digits, _ . - only)")
        names += _FIELD.findall(body)
    return names


def check(text: str, own: str) -> None:
    """Refuse a format with unknown fields, stray characters, or without `{own}`.

    `own` is the field that makes the tag the format's own: `version` for
    image tags, `channel` for channel tags (the other of the two is refused,
    since a channel tag that carried the version would never move).
    """
    other = "channel" if own == "version" else "version"
    names = _fields(text)
    known = (*FIELDS, "channel")
    for name in names:
        if name not in known:
            fields = ", ".join(known if own == "channel" else FIELDS)
            raise TagFormatError(f"unknown field {{{name}}}; fields: {fields}")
    if own not in names:
        raise TagFormatError(f"has no {{{own}}}")
    if other in names:
        raise TagFormatError(f"{{{other}}} has no place in a {own} tag")
    if text[:1] in ("-", "."):
        raise TagFormatError("a tag cannot start with - or .")


def render(text: str, values: Mapping[str, str]) -> str:
    """The tag `text` makes from `values`: optional parts kept only when all fields are set."""
    out = []
    for part in _PART.finditer(text):
        optional, body = part.group(1) is not None, part.group(1) or part.group(2) or ""
        names = _FIELD.findall(body)
        if optional and not all(values[n] for n in names):
            continue
        out.append(_FIELD.sub(lambda m: values[m.group(1)], body))
    return safe("".join(out))


def values(
    *,
    variant: str,
    arch: str,
    model: str,
    version: str,
    provider: str = "",
    provider_version: str = "",
    trusted_boot: bool = False,
    fips: bool = False,
    flavor: str = "",
    flavor_release: str = "",
) -> dict[str, str]:
    """What each field of a format stands for, from an image's identity."""
    return {
        "flavor": flavor,
        "flavor_release": flavor_release,
        "variant": variant,
        "arch": arch,
        "model": model,
        "version": version,
        "provider": provider,
        "provider_version": provider_version,
        "uki": "uki" if trusted_boot else "",
        "fips": "fips" if fips else "",
    }


def channel_of(image: str) -> str:
    """The channel format that goes with an image format: {channel} for {version}."""
    return CHANNEL if image == IMAGE else image.replace("{version}", "{channel}")


@dataclass(frozen=True)
class TagFormats:
    """release.yaml's `tags` (checked by config): the image and the channel tag."""

    image: str = IMAGE
    channel: str = CHANNEL

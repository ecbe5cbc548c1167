"""The naming rule: cell ids, image tags and artifact names.

Published names come from /etc/kairos-release of the built image, never from
the base image string (the factory action gets Rocky and CentOS wrong that way).
Tags follow release.yaml's `tags` formats (tagformat: by default
kairos-factory-action's convention, plus `-fips`).
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import tagformat
from .ref import TAG, ImageRef
from .words import clip, show

if TYPE_CHECKING:
    from .cells import Cell
    from .config import Release
    from .tagformat import TagFormats


class NamingError(ValueError):
    """The built image's identity cannot make a valid name."""


def parse_release_file(text: str) -> dict[str, str]:
    """Parse an os-release style file (KEY="value" lines, shell quoting)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw, posix=True) if raw else [""]
        except ValueError as err:
            raise NamingError(f"unreadable line {clip(line)} ({err})") from None
        values[key.strip()] = words[0] if words else ""
    return values


BOOLS = ("trusted_boot", "fips")


@dataclass(frozen=True)
class Identity:
    """What a built image says it is, from its /etc/kairos-release."""

    flavor: str
    flavor_release: str
    variant: str
    arch: str
    model: str
    version: str
    provider: str = ""
    provider_version: str = ""
    trusted_boot: bool = False
    fips: bool = False

    @classmethod
    def from_kairos_release(cls, values: dict[str, str]) -> Identity:
        required = ("FLAVOR", "FLAVOR_RELEASE", "VARIANT", "MODEL", "VERSION")
        missing = [k for k in required if not values.get(f"KAIROS_{k}")]
        arch = values.get("KAIROS_TARGETARCH") or values.get("KAIROS_ARCH", "")
        if not arch:
            missing.append("TARGETARCH")
        if missing:
            raise NamingError(f"/etc/kairos-release lacks KAIROS_{missing[0]}")
        return cls(
            flavor=values["KAIROS_FLAVOR"],
            flavor_release=values["KAIROS_FLAVOR_RELEASE"],
            variant=values["KAIROS_VARIANT"],
            arch=arch,
            model=values["KAIROS_MODEL"],
            version=values["KAIROS_VERSION"],
            provider=values.get("KAIROS_SOFTWARE_VERSION_PREFIX", ""),
            provider_version=values.get("KAIROS_SOFTWARE_VERSION", ""),
            trusted_boot=values.get("KAIROS_TRUSTED_BOOT") == "true",
            fips=values.get("KAIROS_FIPS") == "true",
        )

    @classmethod
    def expected(cls, release: Release, cell: Cell) -> Identity:
        """The identity a cell should produce, with the flavor still unknown.

        Used by --dry output (FLAVOR and FLAVOR_RELEASE stand for what the
        built image will say); real names always come from the built image.
        """
        return cls(
            flavor="FLAVOR",
            flavor_release="FLAVOR_RELEASE",
            variant=cell.variant,
            arch=cell.arch,
            model=cell.model,
            version=release.version,
            provider=cell.provider or "",
            provider_version=cell.provider_version or "",
            trusted_boot=cell.trusted_boot,
            fips=cell.fips,
        )

    @classmethod
    def from_record(cls, data: Any) -> Identity:
        """The identity a release record keeps (see `values`), or NamingError."""
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != set(fields):
            raise NamingError("the release record keeps no identity of the image")
        wrong = [k for k, v in data.items() if not isinstance(v, bool if k in BOOLS else str)]
        if wrong:
            raise NamingError(f"the release record's identity has a bad {wrong[0]}")
        return cls(**data)

    def record(self) -> dict[str, Any]:
        """What a release record keeps, so promote can name tags by the current formats."""
        return dataclasses.asdict(self)

    def values(self) -> dict[str, str]:
        """The fields of a tag format."""
        return tagformat.values(**self.record())

    def mismatches(self, cell: Cell) -> list[str]:
        """Where the image disagrees with the cell it was built for."""
        want = {
            "VARIANT": (self.variant, cell.variant),
            "TARGETARCH": (self.arch, cell.arch),
            "MODEL": (self.model, cell.model),
            "SOFTWARE_VERSION_PREFIX": (self.provider, cell.provider or ""),
            "SOFTWARE_VERSION": (self.provider_version, cell.provider_version or ""),
            "TRUSTED_BOOT": (self.trusted_boot, cell.trusted_boot),
            "FIPS": (self.fips, cell.fips),
        }
        return [
            f"KAIROS_{k}={show(got)}, cell wants {show(exp)}"
            for k, (got, exp) in want.items()
            if got != exp
        ]


def _tag(text: str) -> str:
    if not TAG.match(text):
        raise NamingError(f"image tag {show(text)} is not a valid OCI tag")
    return text


def image_tag(ident: Identity, tags: TagFormats) -> str:
    return _tag(tagformat.render(tags.image, ident.values()))


def channel_tag(ident: Identity, tags: TagFormats, channel: str) -> str:
    """The tag a channel moves: the channel format, with the channel named."""
    return _tag(tagformat.render(tags.channel, {**ident.values(), "channel": channel}))


def raw_tag(ident: Identity, tags: TagFormats) -> str:
    """The OCI artifact carrying a raw disk image, as kairos-factory-action names it."""
    return _tag(f"{image_tag(ident, tags)}-img")


def _repository(release: Release, ident: Identity) -> ImageRef:
    path = f"{release.namespace}/{release.repository or ident.flavor}"
    return ImageRef(release.registry, path)


def repository(release: Release, ident: Identity) -> str:
    """<registry>/<namespace>/<repository or FLAVOR>, without the tag."""
    return _repository(release, ident).full_name


def image(release: Release, ident: Identity) -> ImageRef:
    """Where the image is published, by its version tag."""
    return _repository(release, ident).with_tag(image_tag(ident, release.tags))


def image_ref(release: Release, ident: Identity) -> str:
    return image(release, ident).canonical


def artifact_name(ident: Identity) -> str:
    """AuroraBoot's artifact base name (ISO and checksum), `+` kept as it writes it."""
    name = (
        f"kairos-{ident.flavor}-{ident.flavor_release}-{ident.variant}-"
        f"{ident.arch}-{ident.model}-{ident.version}"
    )
    if ident.provider:
        name += f"-{ident.provider}{ident.provider_version}"
    if ident.trusted_boot:
        name += "-uki"
    return name


# What AuroraBoot writes per kind of boot media (the UKI's name already ends in -uki).
MEDIA_SUFFIX = {"iso": ".iso", "uki": ".iso", "raw": ".raw"}
SBOM_SUFFIX = ".cdx.json"


def media_file(ident: Identity, kind: str) -> str:
    return artifact_name(ident) + MEDIA_SUFFIX[kind]


def sbom_file(ident: Identity) -> str:
    return artifact_name(ident) + SBOM_SUFFIX


def local_tag(release: Release, cell: Cell) -> str:
    """The local-engine handle of a cell's last build; later stages start from it."""
    return f"kairos-local/{release.name}:{cell.id}"

"""Load and validate release.yaml, the one file that says what to build.

Every rule kairos-init or AuroraBoot would enforce late (after minutes of
building) is checked here first, so a bad cell fails in milliseconds with the
file and field path in the message. The template checks its answers with the
same rules (kairos_distro.answers, run in-process by local_extensions.py, renders
release.yaml and loads it here), so a refused answer and a refused config read alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import fields, policy, tagformat, yamlfile
from .cells import BootCheck, Cell, cell_problems
from .fields import ConfigError
from .fields import flag as _flag
from .fields import no_unknown as _no_unknown
from .fields import text as _text
from .ref import COMPONENT, HOST, PATH, ImageRef, RefError
from .sbom import SYFT_IMAGE
from .vulndb import GRYPE_IMAGE
from .vulndb import PIN as vulndb_pin
from .words import nearest, show, suggest

# Kairos release images of kairos-init (v1 and later, from the kairos-io/kairos
# monorepo) are built for linux/amd64 and linux/arm64 only
# (.github/workflows/_build-image-kairos-init.yaml); riscv64 needs the archived
# standalone v0.17.3.
KAIROS_INIT_NAMES = ("quay.io/kairos/kairos-init", "ghcr.io/kairos-io/kairos/kairos-init")
KAIROS_INIT_NO_RISCV64 = re.compile(r"^v?[1-9]\d*\.")
SEMVER = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?\Z"
)
VERSION = re.compile(rf"{SEMVER.pattern}|^git\Z")
# A project slug doubles as a repository path component of local image names.
SLUG = re.compile(rf"(?=.{{1,100}}\Z){COMPONENT.pattern}")

CELL_FIELDS = (
    "arch",
    "model",
    "provider",
    "provider_version",
    "trusted_boot",
    "fips",
    "raw",
    "boot_checks",
)
TOP_FIELDS = (
    "name",
    "source",
    "description",
    "version",
    "base_image",
    "kairos_init",
    "kairos_init_riscv64",
    "auroraboot",
    "syft",
    "grype",
    "vulndb",
    "vulnerabilities",
    "registry",
    "namespace",
    "repository",
    "channels",
    "publish_raw",
    "signing",
    "boot_checks",
    "tags",
    "refresh",
    "cells",
)
SIGNING_FIELDS = ("enabled", "trust", "identity", "identity_regexp", "issuer")
TRUST_NAMES = ("production", "staging")
# What makes an already published cell release again (ledger.py, freshness.py):
#   packages  its inputs moved, or its distro's mirrors carry newer packages (default)
#   inputs    its inputs moved (image digests, Dockerfile, overlay, build args)
#   always    every run rebuilds every cell, as Kairos's own factory does
REFRESH_MODES = ("packages", "inputs", "always")


TAG_FIELDS = ("image", "channel")


@dataclass(frozen=True)
class Signing:
    """Keyless Sigstore signing, and the identity `invoke verify` expects."""

    enabled: bool = False
    trust: str = "production"  # production | staging | path to a ClientTrustConfig JSON
    identity: str = ""  # the certificate's exact identity (SAN) ...
    identity_regexp: str = ""  # ... or a pattern it must fully match
    issuer: str = ""  # the OIDC issuer that vouched for it


@dataclass(frozen=True)
class Release:
    """The validated content of release.yaml."""

    name: str
    source: str
    description: str
    version: str
    base_image: str
    kairos_init: str
    auroraboot: str
    registry: str
    namespace: str
    repository: str
    cells: tuple[Cell, ...]
    channels: tuple[str, ...] = ()
    publish_raw: bool = True  # push raw disk images as OCI artifacts <tag>-img
    signing: Signing = Signing()
    boot_checks: tuple[BootCheck, ...] = ()
    kairos_init_riscv64: str = ""  # riscv64 cells' own kairos-init, when set
    refresh: str = "packages"  # one of REFRESH_MODES
    tags: tagformat.TagFormats = field(default_factory=tagformat.TagFormats)
    syft: str = SYFT_IMAGE  # catalogues each image into its SBOM
    grype: str = GRYPE_IMAGE  # scans each SBOM for known vulnerabilities
    vulndb: str = ""  # grype's database: URL?checksum=sha256:...; "" follows the latest
    vulnerabilities: policy.Policy = field(default_factory=policy.Policy)
    path: Path = Path("release.yaml")

    def kairos_init_for(self, cell: Cell) -> str:
        """The kairos-init image that converts `cell`."""
        if cell.arch == "riscv64" and self.kairos_init_riscv64:
            return self.kairos_init_riscv64
        return self.kairos_init

    def select(self, ids: list[str] | tuple[str, ...] = ()) -> list[Cell]:
        """The cells named by `ids` (all cells when empty), in file order."""
        if not ids:
            return list(self.cells)
        known = {c.id: c for c in self.cells}
        unknown = [i for i in ids if i not in known]
        if unknown:
            # Ids share their -generic tails: only a closer match is a likely typo.
            near = nearest(unknown[0], known, cutoff=0.8)
            hint = f" (did you mean {near}?)" if near else ""
            why = f"no cell {unknown[0]}{hint}; cells are: {', '.join(known)}"
            raise ConfigError(why, file=self.path)
        return [c for c in self.cells if c.id in ids]


def load(path: str | Path = "release.yaml") -> Release:
    """Read and validate `path`; raise ConfigError naming the field on any problem."""
    path = Path(path)
    return parse(yamlfile.read(path), path)


def loads(text: str, path: Path = Path("release.yaml")) -> Release:
    """Validate release.yaml text (the hook's rendered file) as if read from `path`."""
    return parse(yamlfile.loads(text, path), path)


def parse(data: Any, path: Path = Path("release.yaml")) -> Release:
    """Validate an already-loaded mapping (the hook uses this on its answers)."""
    if not isinstance(data, dict):
        got = "is empty" if data is None else f"holds {show(data)}"
        raise ConfigError(f"{got}; expected a mapping (name, version, cells, ...)", file=path)
    _no_unknown(data, TOP_FIELDS, "", path)
    optional = ("description", "repository", "kairos_init_riscv64", "syft", "grype", "vulndb")
    skip = ("cells", "boot_checks", "signing", "channels", "publish_raw", "tags", "refresh")
    skip = (*skip, *optional, "vulnerabilities")
    top = {k: _text(data, k, path) for k in TOP_FIELDS if k not in skip}
    top.update({k: _text(data, k, path, required=False) for k in optional})
    _check_top(top, path)
    top["syft"] = top["syft"] or SYFT_IMAGE
    top["grype"] = top["grype"] or GRYPE_IMAGE
    cells = _cells(data.get("cells"), top["base_image"], path)
    _check_kairos_init_arches(cells, top["kairos_init"], top["kairos_init_riscv64"], path)
    checks = fields.boot_checks(data.get("boot_checks"), "boot_checks", path)
    signing = _signing(data.get("signing"), path)
    channels = fields.channels(data.get("channels"), path)
    named = {"cells": cells, "version": top["version"], "channels": channels}
    tags = _tags(data.get("tags"), named, path)
    return Release(
        cells=cells,
        channels=channels,
        tags=tags,
        publish_raw=_flag(data, "publish_raw", path, "", default=True),
        refresh=refresh_mode(_text(data, "refresh", path, required=False) or "packages", path),
        signing=signing,
        boot_checks=checks,
        vulnerabilities=policy.parse(data.get("vulnerabilities"), path),
        path=path,
        **top,
    )


def refresh_mode(mode: str, path: Path) -> str:
    """One of REFRESH_MODES."""
    if mode not in REFRESH_MODES:
        why = f"{show(mode)} is not one of {', '.join(REFRESH_MODES)}"
        raise ConfigError(why + suggest(mode, REFRESH_MODES), field="refresh", file=path)
    return mode


def _signing(raw: Any, path: Path) -> Signing:
    if raw is None:
        return Signing()
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping", field="signing", file=path)
    _no_unknown(raw, SIGNING_FIELDS, "signing", path)
    text = {k: _text(raw, k, path, "signing", required=False) for k in SIGNING_FIELDS[1:]}
    signing = Signing(enabled=_flag(raw, "enabled", path, "signing"), **text)
    signing = replace(signing, trust=signing.trust or "production")
    if not signing.enabled:
        return signing
    if signing.trust not in TRUST_NAMES and not signing.trust.endswith(".json"):
        raise ConfigError(
            f"{show(signing.trust)} is not production, staging or a ClientTrustConfig .json file"
            + suggest(signing.trust, TRUST_NAMES),
            field="signing.trust",
            file=path,
        )
    if bool(signing.identity) == bool(signing.identity_regexp):
        raise ConfigError(
            "set exactly one of identity, identity_regexp", field="signing.identity", file=path
        )
    if signing.identity_regexp:
        try:
            re.compile(signing.identity_regexp)
        except re.error as err:
            raise ConfigError(
                f"invalid ({err})", field="signing.identity_regexp", file=path
            ) from None
    issuer = urlsplit(signing.issuer)
    if issuer.scheme not in ("https", "http") or not issuer.netloc:
        raise ConfigError("expected the OIDC issuer URL", field="signing.issuer", file=path)
    return signing


def _is_public_url(text: str) -> bool:
    try:
        url = urlsplit(text)
    except ValueError:
        return False
    return url.scheme in ("https", "http") and bool(url.hostname) and "@" not in url.netloc


def _is_image(text: str) -> bool:
    try:
        ImageRef.parse(text)
    except RefError:
        return False
    return True


def _check_top(top: dict[str, str], path: Path) -> None:
    checks = {
        "version": (VERSION.match, 'semver with a leading v, such as v1.2.3, or "git"'),
        "base_image": (_is_image, "an image reference such as ubuntu:24.04"),
        "kairos_init": (_is_image, "an image reference"),
        "auroraboot": (_is_image, "an image reference"),
        "kairos_init_riscv64": (_is_image, "an image reference"),
        "syft": (_is_image, "an image reference"),
        "grype": (_is_image, "an image reference"),
        "vulndb": (vulndb_pin.match, "a database URL ending ?checksum=sha256:<64 hex>"),
        # Stamped into every image's labels: a login in it would be published.
        "source": (_is_public_url, "a web address without a login, such as https://github.com/o/r"),
        "registry": (HOST.match, "a registry host such as ghcr.io or 127.0.0.1:5000"),
        "namespace": (PATH.match, "a lowercase path such as my-org"),
        # Last: the default project name derives from the base image.
        "name": (SLUG.match, "a lowercase slug such as my-distro"),
    }
    for key, (valid, want) in checks.items():
        if top[key] and not valid(top[key]):  # optional ones may be empty
            hint = (
                f'; write "v{top[key]}"'
                if key == "version" and VERSION.match("v" + top[key])
                else ""
            )
            raise ConfigError(f"{show(top[key])} is not {want}{hint}", field=key, file=path)
    repo = top["repository"]
    if repo and not PATH.match(repo):
        raise ConfigError(f"{show(repo)} is not a lowercase path", field="repository", file=path)


def _check_kairos_init_arches(
    cells: tuple[Cell, ...], kairos_init: str, riscv64: str, path: Path
) -> None:
    text = riscv64 or kairos_init
    ref = ImageRef.parse(text)
    if ref.name not in KAIROS_INIT_NAMES or not KAIROS_INIT_NO_RISCV64.match(ref.tag):
        return
    for i, cell in enumerate(cells):
        if cell.arch == "riscv64":
            raise ConfigError(
                f"riscv64 needs a kairos-init built for riscv64; {text} is "
                "built for amd64 and arm64 only: set kairos_init_riscv64 to "
                "quay.io/kairos/kairos-init:v0.17.3 (the last riscv64 release)",
                field="kairos_init_riscv64" if riscv64 else f"cells[{i}].arch",
                file=path,
            )


def _tags(raw: Any, rel: dict[str, Any], path: Path) -> tagformat.TagFormats:
    """release.yaml's `tags`, checked: known fields, tag characters, short enough."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping with image and channel", field="tags", file=path)
    _no_unknown(raw, TAG_FIELDS, "tags", path)
    image = _text(raw, "image", path, "tags", required=False) or tagformat.IMAGE
    channel = _text(raw, "channel", path, "tags", required=False) or tagformat.channel_of(image)
    longest = max(rel["channels"], key=len, default="")
    for key, text, own in (("image", image, "version"), ("channel", channel, "channel")):
        try:
            tagformat.check(text, own)
        except tagformat.TagFormatError as err:
            raise ConfigError(str(err), field=f"tags.{key}", file=path) from None
        for cell in rel["cells"] if own == "version" or longest else ():
            _check_length(text, cell, {"version": rel["version"], "channel": longest}, key, path)
    return tagformat.TagFormats(image, channel)


def _check_length(text: str, cell: Cell, named: dict[str, str], key: str, path: Path) -> None:
    """Refuse a format whose tags are too long even before the flavor is known."""
    values = tagformat.values(
        variant=cell.variant,
        arch=cell.arch,
        model=cell.model,
        version=named["version"],
        provider=cell.provider or "",
        provider_version=cell.provider_version or "",
        trusted_boot=cell.trusted_boot,
        fips=cell.fips,
    )
    tag = tagformat.render(text, {**values, "channel": named["channel"]})
    if len(tag) > tagformat.TAG_MAX:
        raise ConfigError(
            f"makes tags of at least {len(tag)} characters for cell {cell.id} "
            f"(an OCI tag holds {tagformat.TAG_MAX})",
            field=f"tags.{key}",
            file=path,
        )


def _cells(raw: Any, base_image: str, path: Path) -> tuple[Cell, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("expected a non-empty list of cells", field="cells", file=path)
    cells: list[Cell] = []
    seen: dict[str, int] = {}  # cell id -> index: linear in the number of cells
    for i, item in enumerate(raw):
        where = f"cells[{i}]"
        cell = _cell(item, where, path)
        for name, message in cell_problems(cell, base_image):
            raise ConfigError(message, field=f"{where}.{name}", file=path)
        first = seen.setdefault(cell.id, i)
        if first != i:
            why = f"duplicate of cell {cell.id} (cells[{first}])"
            raise ConfigError(why, field=where, file=path)
        cells.append(cell)
    return tuple(cells)


def _cell(item: Any, where: str, path: Path) -> Cell:
    if not isinstance(item, dict):
        raise ConfigError("expected a mapping", field=where, file=path)
    _no_unknown(item, CELL_FIELDS, where, path)
    provider = _text(item, "provider", path, where, required=False) or "none"
    return Cell(
        arch=_text(item, "arch", path, where),
        model=_text(item, "model", path, where, required=False) or "generic",
        provider=None if provider == "none" else provider,
        provider_version=_text(item, "provider_version", path, where, required=False) or None,
        trusted_boot=_flag(item, "trusted_boot", path, where),
        fips=_flag(item, "fips", path, where),
        raw=_flag(item, "raw", path, where) if "raw" in item else None,
        boot_checks=fields.boot_checks(item.get("boot_checks"), f"{where}.boot_checks", path),
    )

"""Load and validate release.yaml, the one file that says what to build.

Every rule kairos-init or AuroraBoot would enforce late (after minutes of
building) is checked here first, so a bad cell fails in milliseconds with the
file and field path in the message. The template's pre-generation hook calls
the same rules, so a refused answer and a refused config read alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from . import naming

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
HADRON = "ghcr.io/kairos-io/hadron:"
HADRON_TRUSTED = "ghcr.io/kairos-io/hadron-trusted"
# Kairos release images of kairos-init (v1 and later, from the kairos-io/kairos
# monorepo) are built for linux/amd64 and linux/arm64 only
# (.github/workflows/_build-image-kairos-init.yaml); riscv64 needs the archived
# standalone v0.17.3.
KAIROS_INIT_NO_RISCV64 = re.compile(
    r"^(?:quay\.io/kairos|ghcr\.io/kairos-io/kairos)/kairos-init:v?[1-9]\d*\."
)
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
SEMVER = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?\Z"
)
# The distribution reference grammar (docker/distribution reference.go).
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
HOST = re.compile(rf"^{_HOST}\Z")
NAMESPACE = re.compile(rf"^{_PATH}(?:/{_PATH})*\Z")
IMAGE_REF = re.compile(
    rf"^(?:{_HOST}/)?{_PATH}(?:/{_PATH})*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?\Z"
)
# A project slug doubles as a repository path component of local image names.
VERSION = re.compile(rf"{SEMVER.pattern}|^git\Z")
CHANNEL = re.compile(r"^[a-z][a-z0-9]{0,19}\Z")
SLUG = re.compile(rf"^(?=.{{1,100}}\Z){_PATH}\Z")

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
    "registry",
    "namespace",
    "repository",
    "channels",
    "publish_raw",
    "signing",
    "boot_checks",
    "cells",
)
SIGNING_FIELDS = ("enabled", "trust", "identity", "identity_regexp", "issuer")
TRUST_NAMES = ("production", "staging")


class ConfigError(ValueError):
    """A release.yaml problem; str() is one line naming the file and field."""


@dataclass(frozen=True)
class Signing:
    """Keyless Sigstore signing, and the identity `invoke verify` expects."""

    enabled: bool = False
    trust: str = "production"  # production | staging | path to a ClientTrustConfig JSON
    identity: str = ""  # the certificate's exact identity (SAN) ...
    identity_regexp: str = ""  # ... or a pattern it must fully match
    issuer: str = ""  # the OIDC issuer that vouched for it


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
        return naming.cell_id(self)

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
            raise ConfigError(f"{self.path}: no cell {unknown[0]!r}; cells are: {', '.join(known)}")
        return [c for c in self.cells if c.id in ids]


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
    if cell.trusted_boot and base_image.startswith(HADRON):
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


def base_name(ref: str) -> str:
    """`ubuntu:22.04@sha256:...` -> `ubuntu:22.04`, docker.io spelling folded."""
    name = ref.split("@", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def load(path: str | Path = "release.yaml") -> Release:
    """Read and validate `path`; raise ConfigError naming the field on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{where}: {problem}") from None
    return parse(data, path)


def parse(data: Any, path: Path = Path("release.yaml")) -> Release:
    """Validate an already-loaded mapping (the hook uses this on its answers)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    _no_unknown(data, TOP_FIELDS, "", path)
    optional = ("description", "repository", "kairos_init_riscv64")
    skip = ("cells", "boot_checks", "signing", "channels", "publish_raw", *optional)
    top = {k: _text(data, k, path) for k in TOP_FIELDS if k not in skip}
    top.update({k: _text(data, k, path, required=False) for k in optional})
    _check_top(top, path)
    cells = _cells(data.get("cells"), top["base_image"], path)
    _check_kairos_init_arches(cells, top["kairos_init"], top["kairos_init_riscv64"], path)
    checks = _boot_checks(data.get("boot_checks"), "boot_checks", path)
    signing = _signing(data.get("signing"), path)
    channels = _channels(data.get("channels"), path)
    return Release(
        cells=cells,
        channels=channels,
        publish_raw=_flag(data, "publish_raw", path, "", default=True),
        signing=signing,
        boot_checks=checks,
        path=path,
        **top,
    )


def _channels(raw: Any, path: Path) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise ConfigError(f"{path}: channels: expected a list of names such as [edge, stable]")
    for i, name in enumerate(raw):
        if not CHANNEL.match(name):
            raise ConfigError(f"{path}: channels[{i}]: {name!r} is not a lowercase name")
    if len(set(raw)) != len(raw):
        raise ConfigError(f"{path}: channels: names repeat")
    return tuple(raw)


def _signing(raw: Any, path: Path) -> Signing:
    if raw is None:
        return Signing()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: signing: expected a mapping")
    _no_unknown(raw, SIGNING_FIELDS, "signing.", path)
    text = {k: _text(raw, k, path, "signing", required=False) for k in SIGNING_FIELDS[1:]}
    signing = Signing(enabled=_flag(raw, "enabled", path, "signing"), **text)
    signing = replace(signing, trust=signing.trust or "production")
    if not signing.enabled:
        return signing
    if signing.trust not in TRUST_NAMES and not signing.trust.endswith(".json"):
        raise ConfigError(
            f"{path}: signing.trust: {signing.trust!r} is not production, staging "
            "or a ClientTrustConfig .json file"
        )
    if bool(signing.identity) == bool(signing.identity_regexp):
        raise ConfigError(f"{path}: signing.identity: set exactly one of identity, identity_regexp")
    if signing.identity_regexp:
        try:
            re.compile(signing.identity_regexp)
        except re.error as err:
            raise ConfigError(f"{path}: signing.identity_regexp: invalid ({err})") from None
    issuer = urlsplit(signing.issuer)
    if issuer.scheme not in ("https", "http") or not issuer.netloc:
        raise ConfigError(f"{path}: signing.issuer: expected the OIDC issuer URL")
    return signing


def _check_top(top: dict[str, str], path: Path) -> None:
    checks = {
        "version": (VERSION, 'semver with a leading v, such as v1.2.3, or "git"'),
        "base_image": (IMAGE_REF, "an image reference such as ubuntu:24.04"),
        "kairos_init": (IMAGE_REF, "an image reference"),
        "auroraboot": (IMAGE_REF, "an image reference"),
        "kairos_init_riscv64": (IMAGE_REF, "an image reference"),
        "registry": (HOST, "a registry host such as ghcr.io or 127.0.0.1:5000"),
        "namespace": (NAMESPACE, "a lowercase path such as my-org"),
        # Last: the default project name derives from the base image.
        "name": (SLUG, "a lowercase slug such as my-distro"),
    }
    for key, (pattern, want) in checks.items():
        if top[key] and not pattern.match(top[key]):  # optional ones may be empty
            raise ConfigError(f"{path}: {key}: {top[key]!r} is not {want}")
    repo = top["repository"]
    if repo and not NAMESPACE.match(repo):
        raise ConfigError(f"{path}: repository: {repo!r} is not a lowercase path")


def _check_kairos_init_arches(
    cells: tuple[Cell, ...], kairos_init: str, riscv64: str, path: Path
) -> None:
    for i, cell in enumerate(cells):
        ref = riscv64 or kairos_init
        if cell.arch == "riscv64" and KAIROS_INIT_NO_RISCV64.match(ref):
            field = "kairos_init_riscv64" if riscv64 else f"cells[{i}].arch"
            raise ConfigError(
                f"{path}: {field}: riscv64 needs a kairos-init built for riscv64; {ref} is "
                "built for amd64 and arm64 only: set kairos_init_riscv64 to "
                "quay.io/kairos/kairos-init:v0.17.3 (the last riscv64 release)"
            )


def _cells(raw: Any, base_image: str, path: Path) -> tuple[Cell, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: cells: expected a non-empty list of cells")
    cells: list[Cell] = []
    for i, item in enumerate(raw):
        where = f"cells[{i}]"
        cell = _cell(item, where, path)
        for field, message in cell_problems(cell, base_image):
            raise ConfigError(f"{path}: {where}.{field}: {message}")
        if cell.id in {c.id for c in cells}:
            raise ConfigError(f"{path}: {where}: duplicate of cell {cell.id}")
        cells.append(cell)
    return tuple(cells)


def _cell(item: Any, where: str, path: Path) -> Cell:
    if not isinstance(item, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping")
    _no_unknown(item, CELL_FIELDS, f"{where}.", path)
    provider = _text(item, "provider", path, where, required=False) or "none"
    return Cell(
        arch=_text(item, "arch", path, where),
        model=_text(item, "model", path, where, required=False) or "generic",
        provider=None if provider == "none" else provider,
        provider_version=_text(item, "provider_version", path, where, required=False) or None,
        trusted_boot=_flag(item, "trusted_boot", path, where),
        fips=_flag(item, "fips", path, where),
        raw=_flag(item, "raw", path, where) if "raw" in item else None,
        boot_checks=_boot_checks(item.get("boot_checks"), f"{where}.boot_checks", path),
    )


def _boot_checks(raw: Any, where: str, path: Path) -> tuple[BootCheck, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: {where}: expected a list of {{run, expect}}")
    checks = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: {at}: expected a mapping with run and expect")
        _no_unknown(item, ("run", "expect"), f"{at}.", path)
        checks.append(BootCheck(_text(item, "run", path, at), _text(item, "expect", path, at)))
    return tuple(checks)


def _no_unknown(data: dict, known: tuple[str, ...], prefix: str, path: Path) -> None:
    for key in data:
        if key not in known:
            name = key if isinstance(key, str) and key.isidentifier() else repr(key)
            raise ConfigError(f"{path}: {prefix}{name}: unknown field")


def _text(data: dict, key: str, path: Path, where: str = "", *, required: bool = True) -> str:
    value = data.get(key)
    name = f"{where}.{key}" if where else key
    if value is None or value == "":
        if required:
            raise ConfigError(f"{path}: {name}: is required")
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {name}: expected text, got {value!r}")
    return value


def _flag(data: dict, key: str, path: Path, where: str, default: bool = False) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        name = f"{where}.{key}" if where else key
        raise ConfigError(f"{path}: {name}: expected true or false, got {value!r}")
    return value

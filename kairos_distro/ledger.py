"""The ledger: why a cell is skipped, reused or redone, and where that is written down.

Four stores, one reader and writer each:
  image label    `io.kairos.fingerprint` on the local build: its fingerprint
  .fingerprint   in artifacts/<cell>/: the media fingerprint they were made from
  .test-boot     in artifacts/<cell>/: the release key that booted, and the result
  release record an OCI artifact `release-<cell>` beside the images: the key, the
                 image digest and tags, checksums, the named inputs, the package
                 changelog, and (a second layer) the SBOM, which the next run's
                 freshness probe and changelog read

Keys: the fingerprint (what the image is made from, `build.fingerprint`), the
media fingerprint (that plus the kinds of boot media and the UKI key), the
release key (that plus what the boot test checks). The decisions are pure
functions of what a store holds and the current key; they say why.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Cell, Release
from .ref import ImageRef, api_host
from .registry import OCI_MANIFEST, Registry, RegistryError, manifest_bytes, sha256_file

LABEL = "io.kairos.fingerprint"
MEDIA_STAMP = ".fingerprint"
BOOT_STAMP = ".test-boot"
RECORD_TYPE = "application/vnd.kairos.release.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
SBOM_TYPE = "application/vnd.cyclonedx+json"
# The named inputs a record keeps, as a summary says they changed.
INPUT_NAMES = {
    "base": "base image digest",
    "kairos_init": "kairos-init digest",
    "auroraboot": "AuroraBoot digest",
    "context": "Dockerfile or overlay",
    "build": "build args",
    "media": "boot media kinds, UKI key, tag formats or syft",
    "boot": "boot checks",
}


@dataclass(frozen=True)
class Decision:
    """Redo a step (or the cell) or not, and the reason a summary shows."""

    redo: bool
    action: str  # what a summary says: released, skipped, rebuilt, reused build, ...
    reason: str
    # Why the image must be made anew although its inputs did not move (newer
    # packages, refresh: always): no local build, media or boot test is reused.
    fresh: str = ""

    def __str__(self) -> str:
        return f"{self.action}: {self.reason}"


# -- keys: pure digests of inputs -------------------------------------------------------
def _digest(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def media_stamp(stamp: str, media: dict[str, Any]) -> str:
    """The artifacts' fingerprint: the image's, plus `media_inputs`."""
    return _digest([stamp, media])


def media_inputs(
    kinds: tuple[str, ...] | list[str],
    db_certificate: str = "",
    tags: dict[str, Any] | None = None,
    syft: str = "",
) -> dict[str, Any]:
    """What shapes the boot media besides the image: their kinds, a UKI's key, the
    tag formats (they name the image in its SBOM) and the syft that writes the SBOM.
    A new key remakes UKIs only."""
    extra: dict[str, Any] = {"media": list(kinds), "tags": tags or {}}
    if syft:
        extra["syft"] = syft
    if "uki" in kinds:
        extra["db_certificate"] = db_certificate
    return extra


def boot_inputs(
    publish_raw: bool, checks: list[dict[str, Any]], marker: str, user_data: bytes
) -> list[Any]:
    """What the boot test checks (and whether a raw image is pushed): the key's own part."""
    return [publish_raw, checks, marker, user_data.decode(errors="replace")]


def release_key(media: str, boot: list[Any]) -> str:
    """The release key: the media fingerprint plus `boot_inputs`.

    A new boot check re-runs the boot test (and republishes the same image
    digest) without rebuilding anything.
    """
    return _digest([media, *boot])


def inputs(fingerprint: dict[str, Any], media: dict[str, Any], boot: list[Any]) -> dict[str, str]:
    """The named inputs a record keeps, so a later run can say which one moved."""
    named = dict(fingerprint["digests"])
    named["context"] = _digest(fingerprint["tree"])
    named["build"] = _digest(
        [fingerprint["cell"], fingerprint["build_args"], fingerprint["labels"]]
    )
    named["media"] = _digest(media)
    named["boot"] = _digest(boot)
    return named


def changed(before: Any, now: dict[str, str]) -> str:
    """Which named inputs differ, in words; "inputs" when the record kept none."""
    if not isinstance(before, dict):
        return "inputs"
    names = [INPUT_NAMES.get(k, k) for k in now if before.get(k) != now[k]]
    names += [INPUT_NAMES.get(k, k) for k in before if k not in now]
    if not names:
        return "inputs"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# -- decisions: pure ---------------------------------------------------------------------
def published_image(record: dict[str, Any]) -> ImageRef | None:
    """The image the record names by digest; None when it names none."""
    return ImageRef.pinned(record.get("image"))


def since(record: dict[str, Any]) -> str:
    """The version a record was released as, in words."""
    version = record.get("version")
    return version if isinstance(version, str) and version else "the last release"


def decide(
    record: dict[str, Any] | None,
    key: str,
    named: dict[str, str],
    force: bool = False,
    refresh: str = "packages",
) -> Decision:
    """Skip the cell (its key is published) or release it, and why.

    A skip still waits on the signature (`unverified` when it fails) and, with
    refresh `packages`, on the freshness probe (`updated`).
    """
    if force:
        return Decision(True, "released", "forced (--force)")
    decision = _decide(record, key, named)
    if refresh != "always":
        return decision
    reason = decision.reason if decision.redo else "refresh: always"
    return Decision(True, "released", reason, fresh="refresh: always")


def _decide(record: dict[str, Any] | None, key: str, named: dict[str, str]) -> Decision:
    if record is None:
        return Decision(True, "released", "never released")
    when = since(record)
    if record.get("fingerprint") != key:
        return Decision(
            True, "released", f"{changed(record.get('inputs'), named)} changed since {when}"
        )
    image = published_image(record)
    if image is None:
        return Decision(True, "released", f"the record of {when} names no image by digest")
    return Decision(False, "skipped", f"inputs unchanged since {when} ({image.digest[:19]}…)")


def updated(record: dict[str, Any], updates: list[Any]) -> Decision:
    """Inputs unchanged, but the mirrors carry newer versions of these packages."""
    shown = ", ".join(str(u) for u in updates[:3])
    more = f" (+{len(updates) - 3} more)" if len(updates) > 3 else ""
    why = f"package updates since {since(record)}: {shown}{more}"
    return Decision(True, "released", why, fresh="newer packages")


def unprobed(record: dict[str, Any]) -> Decision:
    """A record without an SBOM (written before records kept one): nothing to probe."""
    why = f"the record of {since(record)} keeps no SBOM to check packages against"
    return Decision(True, "released", why, fresh="no SBOM to check packages against")


def unreadable(err: Exception) -> Decision:
    return Decision(True, "released", f"release record unreadable ({err})")


def unverified(record: dict[str, Any], err: Exception) -> Decision:
    return Decision(True, "released", f"{since(record)} is published but does not verify ({err})")


def decide_build(label: str | None, stamp: str, force: bool = False, fresh: str = "") -> Decision:
    """Reuse the local build when its label holds this fingerprint (and nothing says fresh)."""
    if force or fresh:
        return Decision(True, "rebuilt", fresh or "forced (--force)")
    if label is None:
        return Decision(True, "rebuilt", "no local build")
    if label != stamp:
        return Decision(True, "rebuilt", "the local build has other inputs")
    return Decision(False, "reused build", "image label matches")


def decide_media(
    text: str | None, stamp: str, complete: bool, force: bool = False, fresh: str = ""
) -> Decision:
    """Reuse artifacts/<cell>/ when it was made, whole, with this media fingerprint."""
    if force or fresh:
        return Decision(True, "remade media", fresh or "forced (--force)")
    if text is None:
        return Decision(True, "remade media", "none made yet")
    lines = text.split("\n")
    if lines[:1] != [stamp]:
        return Decision(True, "remade media", "made from other inputs")
    if lines != [stamp, ""]:
        return Decision(True, "remade media", "boot media were skipped when they were made")
    if not complete:
        return Decision(True, "remade media", "files are missing")  # the stamp outlived them
    return Decision(False, "reused media", "fingerprint matches")


def decide_boot(text: str | None, key: str, force: bool = False, fresh: str = "") -> Decision:
    """Reuse a passed boot test of this release key; the reason is its result line."""
    if force or fresh:
        return Decision(True, "booted", fresh or "forced (--force)")
    lines = (text or "").split("\n")
    if lines[:1] != [key]:
        return Decision(True, "booted", "no passed boot test of this release key")
    return Decision(False, "reused boot test", (lines[1:2] or [""])[0].strip() or "passed")


# -- stores: artifacts/<cell>/.fingerprint and .test-boot -----------------------------------
def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def read_media_stamp(directory: Path) -> str | None:
    return _read(directory / MEDIA_STAMP)


def write_media_stamp(directory: Path, stamp: str, skipped: str = "") -> None:
    """Written inside the staging swap; a run whose media were skipped says so (never reused)."""
    note = f"skipped: {skipped}\n" if skipped else ""
    (directory / MEDIA_STAMP).write_text(f"{stamp}\n{note}")


def read_boot(directory: Path) -> str | None:
    return _read(directory / BOOT_STAMP)


def write_boot(directory: Path, key: str, result: str) -> None:
    (directory / BOOT_STAMP).write_text(f"{key}\n{result}\n")


# -- store: release records, what `invoke release` published, per cell --------------------
def record_location(release: Release, cell: Cell) -> tuple[str, str]:
    """(repository path, tag) of a cell's release record: beside the images, by cell id."""
    return f"{release.namespace}/{release.name}", f"release-{cell.id}"


def release_record(
    cell: Cell,
    stamp: str,
    version: str,
    repository: str,
    digest: str,
    tags: list[str],
    checksums: list[Path],
) -> dict[str, Any]:
    return {
        "cell": cell.id,
        "fingerprint": stamp,
        "version": version,
        "image": f"{repository}@{digest}",
        "tags": tags,
        "checksums": {p.name: p.read_text().split()[0] for p in checksums},
    }


def extras(repository: str, raw_digest: str, sbom: Path | None) -> dict[str, Any]:
    """What a release record adds for a raw disk image and an SBOM."""
    found: dict[str, Any] = {}
    if raw_digest:
        found["raw_image"] = f"{repository}@{raw_digest}"
    if sbom:
        found["sbom"] = {sbom.name: sha256_file(sbom).removeprefix("sha256:")}
    return found


def write_record(
    registry: Registry, release: Release, cell: Cell, record: dict[str, Any], sbom: bytes = b""
) -> None:
    """The record, and the SBOM it names (`record["sbom"]`) as a second layer."""
    repo, tag = record_location(release, cell)
    blob = json.dumps(record, sort_keys=True).encode()
    layers = [registry.push_bytes(repo, blob, RECORD_TYPE).as_json()]
    if sbom:
        layers.append(registry.push_bytes(repo, sbom, SBOM_TYPE).as_json())
    config = registry.push_bytes(repo, b"{}", EMPTY_TYPE)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": RECORD_TYPE,
        "config": config.as_json(),
        "layers": layers,
        "annotations": {"io.kairos.release.fingerprint": record["fingerprint"]},
    }
    registry.put_manifest(repo, tag, manifest_bytes(manifest), OCI_MANIFEST)


def read_record(registry: Registry, release: Release, cell: Cell) -> dict[str, Any] | None:
    """The cell's last release record, or None (never released, or unreadable)."""
    repo, tag = record_location(release, cell)
    found = registry.get_manifest(repo, tag)
    if found is None:
        return None
    try:
        manifest = json.loads(found[0])
        if not isinstance(manifest, dict) or manifest.get("artifactType") != RECORD_TYPE:
            return None
        record = json.loads(registry.get_blob(repo, manifest["layers"][0]["digest"]))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


def read_sbom(
    registry: Registry, release: Release, cell: Cell, record: dict[str, Any]
) -> str | None:
    """The SBOM a record names, kept beside it; None when it keeps none (older records).

    The record names the SBOM by its sha256, which the blob must match.
    """
    named = record.get("sbom")
    if not isinstance(named, dict) or len(named) != 1:
        return None
    hexdigest = next(iter(named.values()))
    if not isinstance(hexdigest, str) or len(hexdigest) != 64:
        return None
    repo, _ = record_location(release, cell)
    digest = f"sha256:{hexdigest}"
    if not registry.has_blob(repo, digest):
        return None
    blob = registry.get_blob(repo, digest)
    if hashlib.sha256(blob).hexdigest() != hexdigest:
        raise RegistryError(f"registry {registry.host} served another SBOM than {digest}")
    return blob.decode("utf-8", errors="replace")


def records_registry(release: Release) -> Registry:
    """The registry the release records live in: the configured one, at its API host."""
    return Registry(api_host(release.registry), login=release.registry)

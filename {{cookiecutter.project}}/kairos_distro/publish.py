"""Publish stage: push a built image by digest, then point its tags at it.

Blobs go first, then the manifest under its digest; tags are written only
after that succeeded, so a dead registry or a refused blob never leaves a tag
pointing at a partial image. Credentials come from the environment or the
docker config and are never printed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import naming, sign
from .build import Built
from .config import Cell, Release
from .registry import OCI_MANIFEST, Registry, RegistryError, manifest_bytes
from .runner import Runner, StepError

CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Published:
    cell: Cell
    repository: str
    digest: str
    tags: tuple[str, ...]

    @property
    def ref(self) -> str:
        return f"{self.repository}@{self.digest}"


def split_repository(repository: str) -> tuple[str, str]:
    """`host/ns/name` -> (`host`, `ns/name`)."""
    host, _, path = repository.partition("/")
    return host, path


def oci_manifest(
    config: dict[str, Any], layers: list[dict[str, Any]], labels: dict[str, str]
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers,
    }
    keep = (
        "org.opencontainers.image.source",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.version",
    )
    annotations = {k: v for k, v in labels.items() if k in keep and v}
    if annotations:
        manifest["annotations"] = annotations
    return manifest


def _gzip(src: Any, dest: Path) -> None:
    # mtime=0 and a fixed level keep the compressed digest stable across runs.
    with (
        dest.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
    ):
        shutil.copyfileobj(src, gz, 1 << 20)


def push_image(runner: Runner, registry: Registry, repo: str, built: Built) -> str:
    """Upload the image's blobs and manifest by digest; return the digest."""
    image = runner.docker().images.get(built.image_id)
    with tempfile.TemporaryDirectory(prefix="kairos-push-") as tmp:
        saved = Path(tmp) / "image.tar"
        with saved.open("wb") as f:
            for chunk in image.save(named=False):
                f.write(chunk)
        with tarfile.open(saved) as tar:
            entry = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
            config = tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
            layers = []
            for i, name in enumerate(entry["Layers"]):
                runner.say(built.cell.id, f"pushing layer {i + 1}/{len(entry['Layers'])}")
                packed = Path(tmp) / f"layer{i}.tar.gz"
                _gzip(tar.extractfile(name), packed)
                layers.append(registry.push_file(repo, packed, LAYER_TYPE).as_json())
                packed.unlink()
    config_desc = registry.push_bytes(repo, config, CONFIG_TYPE).as_json()
    labels = json.loads(config).get("config", {}).get("Labels") or {}
    body = manifest_bytes(oci_manifest(config_desc, layers, labels))
    digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
    registry.put_manifest(repo, digest, body, OCI_MANIFEST)
    return digest


def move_tags(registry: Registry, repo: str, digest: str, tags: list[str]) -> None:
    """Point each tag at an already-pushed manifest, re-using its exact bytes."""
    found = registry.get_manifest(repo, digest)
    if found is None:
        raise RegistryError(f"registry {registry.host} has no manifest {digest} to tag")
    body, media_type, _ = found
    for tag in tags:
        registry.put_manifest(repo, tag, body, media_type)


def publish(
    runner: Runner,
    release: Release,
    cell: Cell,
    built: Built | None,
    sigstore: sign.Sigstore | None = None,
    artifacts: Path | None = None,
    stamp: str = "",
) -> Published | None:
    """Push by digest; with signing on, sign and verify that digest; then tag.

    The version tag and the first channel's tag (e.g. edge) move last; with a
    `stamp` a release record follows, so the next `invoke release` can skip it.
    """
    ident = built.identity if built else naming.Identity.expected(release, cell)
    repository = naming.repository(release, ident)
    tags = [naming.image_tag(ident)]
    tags += [naming.channel_tag(ident, c) for c in release.channels[:1]]
    if built is None:
        runner.would(cell.id, f"push {naming.local_tag(release, cell)} to {repository} by digest")
        if sigstore:
            runner.would(cell.id, "sign that digest and the artifact checksums, then verify")
        runner.would(cell.id, f"then tag it {', '.join(tags)}")
        return None
    host, repo = split_repository(repository)
    registry = Registry(host)
    step = "publish"
    try:
        digest = push_image(runner, registry, repo, built)
        runner.say(cell.id, f"pushed {repository}@{digest}")
        if sigstore:
            step = "sign"
            sign_cell(runner, sigstore, registry, repo, digest, cell, artifacts)
        step = "publish"
        move_tags(registry, repo, digest, tags)
        if stamp:
            files = checksum_files(artifacts, cell)
            record = release_record(cell, stamp, release.version, repository, digest, tags, files)
            write_record(Registry(release.registry), release, cell, record)
    except (RegistryError, sign.SignError) as err:
        raise StepError(cell.id, step, str(err)) from None
    runner.say(cell.id, f"tagged {repository}:{', '.join(tags)}")
    return Published(cell, repository, digest, tuple(tags))


# -- release records: what `invoke release` published, per cell ----------------------
RECORD_TYPE = "application/vnd.kairos.release.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"


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


def write_record(registry: Registry, release: Release, cell: Cell, record: dict[str, Any]) -> None:
    repo, tag = record_location(release, cell)
    blob = json.dumps(record, sort_keys=True).encode()
    layer = registry.push_bytes(repo, blob, RECORD_TYPE)
    config = registry.push_bytes(repo, b"{}", EMPTY_TYPE)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": RECORD_TYPE,
        "config": config.as_json(),
        "layers": [layer.as_json()],
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


def checksum_files(artifacts: Path | None, cell: Cell) -> list[Path]:
    return sorted((artifacts / cell.id).glob("*.sha256")) if artifacts else []


def sign_cell(
    runner: Runner,
    sigstore: sign.Sigstore,
    registry: Registry,
    repo: str,
    digest: str,
    cell: Cell,
    artifacts: Path | None,
) -> None:
    """Sign the image digest and the cell's checksum files, then verify them all."""
    sign.sign_image(sigstore, registry, repo, digest)
    for path in checksum_files(artifacts, cell):
        sign.sign_file(sigstore, path)
    verify_cell(runner, sigstore, registry, repo, digest, cell, artifacts)


def verify_cell(
    runner: Runner,
    sigstore: sign.Sigstore,
    registry: Registry,
    repo: str,
    digest: str,
    cell: Cell,
    artifacts: Path | None,
) -> None:
    sign.verify_image(sigstore, registry, repo, digest)
    runner.say(cell.id, f"verified signature of {registry.host}/{repo}@{digest}")
    for path in checksum_files(artifacts, cell):
        sign.verify_file(sigstore, path)
        runner.say(cell.id, f"verified {path.name}{sign.BUNDLE_SUFFIX}")


def resolve(registry: Registry, repo: str, reference: str) -> str:
    """A tag (or digest) in the registry -> the manifest digest."""
    found = registry.get_manifest(repo, reference)
    if found is None:
        raise RegistryError(f"{registry.host}/{repo}:{reference} is not in the registry")
    return found[2]

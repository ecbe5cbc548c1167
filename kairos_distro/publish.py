"""Publish stage: push a built image by digest, then point its tags at it.

Blobs go first, then the manifest under its digest; tags are written only
after that succeeded, so a dead registry or a refused blob never leaves a tag
pointing at a partial image. A raw disk image goes beside its image as an OCI
artifact `<tag>-img` (as kairos-factory-action publishes it), and with signing
on the SBOM is attached as a signed CycloneDX attestation. Credentials come
from the environment or the docker config and are never printed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import artifacts as artifacts_stage
from . import ledger, naming, sign, signing
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
    raw_digest: str = ""  # the <tag>-img artifact, when one was pushed

    @property
    def ref(self) -> str:
        return f"{self.repository}@{self.digest}"


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


@contextmanager
def _gzipped(dest: Path) -> Iterator[gzip.GzipFile]:
    """A gzip stream into `dest`; mtime=0 and a fixed level keep its digest stable."""
    with (
        dest.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
    ):
        yield gz


def _put_image(
    registry: Registry, repo: str, config: bytes, layers: list[dict[str, Any]], labels: dict
) -> str:
    """Push the config, then the manifest under its own digest; return that digest."""
    config_desc = registry.push_bytes(repo, config, CONFIG_TYPE).as_json()
    body = manifest_bytes(oci_manifest(config_desc, layers, labels))
    digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
    registry.put_manifest(repo, digest, body, OCI_MANIFEST)
    return digest


# Our gzip of a layer is deterministic (mtime 0, level 6), so within a run a layer's
# diff id names the blob it became: cells on one base compress that base once.
_PACKED: dict[str, dict[str, Any]] = {}


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
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
            layers = []
            for i, (name, diff_id) in enumerate(zip(entry["Layers"], diff_ids, strict=True)):
                which = f"layer {i + 1}/{len(diff_ids)}"
                known = _PACKED.get(diff_id)
                if known is not None and registry.has_blob(repo, known["digest"]):
                    runner.say(built.cell.id, f"{which} is in the registry already")
                    layers.append(known)
                    continue
                runner.say(built.cell.id, f"pushing {which}")
                layers.append(_push_layer(registry, repo, tar, name, Path(tmp) / "layer.tar.gz"))
                _PACKED[diff_id] = layers[-1]
    labels = json.loads(config).get("config", {}).get("Labels") or {}
    return _put_image(registry, repo, config, layers, labels)


def _push_layer(
    registry: Registry, repo: str, tar: tarfile.TarFile, name: str, packed: Path
) -> dict[str, Any]:
    """Compress one layer of a `docker save` archive and push it; its descriptor."""
    with _gzipped(packed) as gz:
        shutil.copyfileobj(tar.extractfile(name), gz, 1 << 20)
    try:
        return registry.push_file(repo, packed, LAYER_TYPE).as_json()
    finally:
        packed.unlink()


class _Hashing:
    """A write-only stream that hashes what passes through (a layer's diff id)."""

    def __init__(self, sink: Any) -> None:
        self.sink, self.hash = sink, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.sink.write(data)


def push_raw(registry: Registry, repo: str, raw: Path, arch: str) -> str:
    """Push a raw disk image as a one-layer image holding /artifacts/<name>.raw.

    The form kairos-factory-action publishes: `docker create` it, then
    `docker cp <container>:/artifacts/. .` gives the file back.
    """
    with tempfile.TemporaryDirectory(prefix="kairos-raw-") as tmp:
        packed = Path(tmp) / "layer.tar.gz"
        with _gzipped(packed) as gz:
            hashing = _Hashing(gz)
            with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                folder = tarfile.TarInfo("artifacts")
                folder.type, folder.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(folder)
                info = tar.gettarinfo(str(raw), arcname=f"artifacts/{raw.name}")
                # Only the bytes count: the same image gives the same digest for anyone.
                info.mtime, info.mode, info.uid, info.gid = 0, 0o644, 0, 0
                info.uname = info.gname = ""
                with raw.open("rb") as f:
                    tar.addfile(info, f)
        layer = registry.push_file(repo, packed, LAYER_TYPE).as_json()
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Labels": {"io.kairos.artifact": raw.name}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashing.hash.hexdigest()}"]},
    }
    return _put_image(registry, repo, manifest_bytes(config), [layer], {})


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
    inputs: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Published | None:
    """Push by digest (the image, and its raw disk image); with signing on, sign,
    attest the SBOM and verify those digests; then tag.

    The version tag and the first channel's tag (e.g. edge) move last; with a
    `stamp` (the release key) the ledger's release record follows, with the
    named `inputs` (and `extra`: the package changelog, the probe's updates) and
    the SBOM, so the next `invoke release` can skip it, probe it or say what moved.
    """
    ident = built.identity if built else naming.Identity.expected(release, cell)
    repository = naming.repository(release, ident)
    tags = [naming.image_tag(ident, release.tags)]
    tags += [naming.channel_tag(ident, release.tags, c) for c in release.channels[:1]]
    raw_tag = naming.raw_tag(ident, release.tags)
    raw = raw_file(release, artifacts, cell)
    if built is None:
        _dry(runner, release, cell, repository, tags, raw_tag, sigstore)
        return None
    where = naming.image(release, ident)
    repo, registry = where.repository, Registry(where.api_host, login=release.registry)
    step = "publish"
    try:
        digest = push_image(runner, registry, repo, built)
        runner.say(cell.id, f"pushed {repository}@{digest}")
        raw_digest = ""
        if raw:
            runner.say(cell.id, f"pushing {raw.name} as {raw_tag}")
            raw_digest = push_raw(registry, repo, raw, cell.arch)
        if sigstore:
            step = "sign"
            if artifacts:  # published without `invoke iso`: no SBOM yet
                artifacts_stage.ensure_sbom(runner, release, built, artifacts)
            signing.sign_cell(runner, sigstore, registry, repo, digest, cell, artifacts, raw_digest)
        step = "publish"
        move_tags(registry, repo, digest, tags)
        if raw_digest:
            move_tags(registry, repo, raw_digest, [raw_tag])
        if stamp:
            files = artifacts_stage.checksum_files(artifacts, cell)
            record = ledger.release_record(
                cell, stamp, release.version, repository, digest, tags, files
            )
            bom = artifacts_stage.sbom_file(artifacts, cell)
            record.update(ledger.extras(repository, raw_digest, bom))
            record["identity"] = ident.record()  # promote names tags from it
            if inputs:
                record["inputs"] = inputs
            record.update(extra or {})
            sbom = bom.read_bytes() if bom else b""
            ledger.write_record(registry, release, cell, record, sbom)  # the images' registry
    except (RegistryError, sign.SignError) as err:
        raise StepError(cell.id, step, str(err)) from None
    runner.say(cell.id, f"tagged {repository}:{', '.join(tags)}")
    if raw_digest:
        runner.say(cell.id, f"tagged {repository}:{raw_tag}")
    return Published(cell, repository, digest, tuple(tags), raw_digest)


def _dry(
    runner: Runner,
    release: Release,
    cell: Cell,
    repository: str,
    tags: list[str],
    raw_tag: str,
    sigstore: sign.Sigstore | None,
) -> None:
    runner.would(cell.id, f"push {naming.local_tag(release, cell)} to {repository} by digest")
    if "raw" in cell.media and release.publish_raw:
        runner.would(cell.id, f"push the raw disk image as {repository}:{raw_tag}")
    if sigstore:
        runner.would(
            cell.id, "sign those digests, attest the SBOM, sign the artifact checksums, then verify"
        )
    runner.would(cell.id, f"then tag it {', '.join(tags)}")


def raw_file(release: Release, artifacts: Path | None, cell: Cell) -> Path | None:
    """The cell's raw disk image when it is to be pushed as `<tag>-img`."""
    if not (release.publish_raw and artifacts and "raw" in cell.media):
        return None
    return next(iter(sorted((artifacts / cell.id).glob("*.raw"))), None)

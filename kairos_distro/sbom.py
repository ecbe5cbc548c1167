"""SBOM stage: the packages a built image holds, as CycloneDX JSON.

The list comes from the image's own package database (dpkg, rpm or apk),
read out of a created, never started, container: nothing in the image runs,
so foreign-arch images work and no code of the image shapes the result.
pkgdb.py parses the databases; this module copies them out and assembles
the CycloneDX document.

The document is built with cyclonedx-python-lib and is deterministic: the
same packages, image and timestamp give the same bytes, so a rebuilt SBOM
can be compared with, or signed over, the one before.
"""

from __future__ import annotations

import json
import os
import posixpath
import tarfile
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from packageurl import PackageURL

from . import pkgdb
from .pkgdb import Package
from .words import clip

try:  # the factory moved in cyclonedx-python-lib 11; the old path still works, deprecated
    from cyclonedx.contrib.license.factories import LicenseFactory
except ImportError:  # pragma: no cover - older library
    from cyclonedx.factory.license import LicenseFactory

SCHEMA = SchemaVersion.V1_6  # the CycloneDX version written (tests validate against it)

NEVER_RUNS = ["/kairos-sbom-never-runs"]
MAX_LINKS = 8  # symlink hops export_db follows before giving up


class SbomError(RuntimeError):
    """The SBOM cannot be made; str() is one line."""


# --- CycloneDX -----------------------------------------------------------------


def purl(p: Package, distro: str, distro_release: str) -> PackageURL:
    version, qualifiers = p.version, {"arch": p.arch, "distro": f"{distro}-{distro_release}"}
    if p.manager == "rpm" and ":" in version:  # the purl spec puts an rpm epoch in a qualifier
        qualifiers["epoch"], version = version.split(":", 1)
    if p.source:
        qualifiers["upstream"] = p.source
    return PackageURL(
        type=p.manager,
        namespace=distro,
        name=p.name,
        version=version,
        qualifiers={k: v for k, v in qualifiers.items() if v},
    )


def _utc(created: datetime | None) -> datetime:
    if created is None:
        return datetime.now(UTC)
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def image_created(client: Any, image: str) -> datetime:
    """When the engine says the image was made: a timestamp that is the same on every rerun."""
    import docker

    try:
        raw = str(client.images.get(image).attrs.get("Created", ""))
    except docker.errors.ImageNotFound:
        raise SbomError(f"{image}: image not found in the local engine") from None
    try:  # RFC 3339 with nanoseconds ("2024-05-01T12:00:00.123456789Z"): keep the seconds
        return datetime.strptime(raw[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise SbomError(f"{image}: unreadable creation time {clip(raw)}") from None


DATABASE_PROPERTY = "kairos:package-database"


def bom_json(
    packages: list[Package],
    *,
    name: str,
    version: str,
    distro: str,
    distro_release: str,
    image_digest: str = "",
    created: datetime | None = None,
    database: str = "",
) -> str:
    """CycloneDX 1.6 JSON of an image: the image as metadata.component, one library per package.

    `database` (deb, rpm, apk or none) is recorded as the property
    `kairos:package-database`, so an empty list says why it is empty.
    """
    licenses = LicenseFactory()
    unique = {str(purl(p, distro, distro_release)): p for p in packages}  # drop exact repeats
    ordered = sorted(unique.items(), key=lambda kv: (kv[1].name, kv[1].version, kv[1].arch))
    components = [
        Component(
            type=ComponentType.LIBRARY,
            name=p.name,
            version=p.version,
            purl=PackageURL.from_string(ref),
            bom_ref=ref,
            licenses=[licenses.make_from_string(p.license)] if p.license else [],
        )
        for ref, p in ordered
    ]
    image = Component(
        type=ComponentType.CONTAINER,
        name=name,
        version=version,
        bom_ref=f"image:{name}@{image_digest or version}",
        hashes=_digest_hashes(image_digest),
    )
    # Same image, same packages -> same serial number, so rebuilding gives the same bytes.
    seed = json.dumps([name, version, image_digest, [[ref, p.license] for ref, p in ordered]])
    bom = Bom(components=components, serial_number=uuid.uuid5(uuid.NAMESPACE_URL, seed))
    bom.metadata.component = image
    bom.metadata.timestamp = _utc(created)  # now when not given: pass one for stable bytes
    if database:
        bom.metadata.properties.add(Property(name=DATABASE_PROPERTY, value=database))
    bom.register_dependency(image, components)  # the image holds every package
    for c in components:
        bom.register_dependency(c)  # package-to-package edges are not read; each gets a node
    return make_outputter(bom, OutputFormat.JSON, SCHEMA).output_as_string(indent=2) + "\n"


def _digest_hashes(image_digest: str) -> list[HashType]:
    alg, _, hexdigest = image_digest.partition(":")
    if alg != "sha256" or len(hexdigest) != 64:
        return []
    return [HashType(alg=HashAlgorithm.SHA_256, content=hexdigest)]


def component_purls(bom: str | dict[str, Any]) -> list[str]:
    """The purls of a CycloneDX JSON document's components (nested ones included)."""
    doc = json.loads(bom) if isinstance(bom, str) else bom
    found: list[str] = []
    stack = list(reversed(doc.get("components", [])))
    while stack:
        c = stack.pop()
        if c.get("purl"):
            found.append(c["purl"])
        stack.extend(reversed(c.get("components", [])))
    return found


# --- effects: read the database out of a local image ---------------------------


def _safe_parts(name: str) -> list[str] | None:
    """A tar member's path parts, or None when it is absolute or climbs out."""
    path = PurePosixPath(name)
    parts = [p for p in path.parts if p not in ("", ".")]
    if path.is_absolute() or ".." in parts or not parts:
        return None
    return parts


def _extract(tar: tarfile.TarFile, top: str, dest: Path, target: Path) -> None:
    """Write the archive's top entry (and what is under it) at target, inside dest.

    Only directories and regular files are written: a link in a database
    directory is never needed, and skipping links keeps every write in dest.
    """
    root = dest.resolve()
    for member in tar:
        parts = _safe_parts(member.name)
        if parts is None or parts[0] != top or not (member.isdir() or member.isfile()):
            continue
        out = target.joinpath(*parts[1:])  # the top entry is named after the fetched path
        if not out.resolve().is_relative_to(root):
            continue
        if member.isdir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        src = tar.extractfile(member)
        assert src is not None  # regular files always have content
        with src, out.open("wb") as f:
            while chunk := src.read(1 << 20):
                f.write(chunk)


def _fetch(container: Any, path: str, spool: IO[bytes]) -> bool:
    """Spool the tar of one in-image path; False when the path does not exist."""
    import docker

    try:
        stream, _stat = container.get_archive(path)
    except docker.errors.NotFound:
        return False
    for chunk in stream:
        spool.write(chunk)
    spool.seek(0)
    return True


def _export_path(container: Any, path: str, dest: Path) -> None:
    """Copy one in-image path into dest at the same path, following symlinks.

    The engine's archive of a symlink is the link itself; its target is then
    fetched, and written where the link is, which is where the image's own
    tools would find it.
    """
    fetch = path
    for _ in range(MAX_LINKS):
        with tempfile.TemporaryFile() as spool:
            if not _fetch(container, fetch, spool):
                return
            with tarfile.open(fileobj=spool, mode="r:") as tar:
                top = tar.next()
                if top is None:
                    return
                if not top.issym():
                    _extract(tar, PurePosixPath(top.name).name, dest, dest / pkgdb.relative(path))
                    return
                fetch = posixpath.normpath(posixpath.join(posixpath.dirname(fetch), top.linkname))
    raise SbomError(f"{path}: more than {MAX_LINKS} symlinks")


def export_db(client: Any, image: str, dest: Path) -> None:
    """Copy every package database path of a local image into dest, without running it."""
    import docker

    try:
        container = client.containers.create(image, command=NEVER_RUNS)
    except docker.errors.ImageNotFound:
        raise SbomError(f"{image}: image not found in the local engine") from None
    except docker.errors.APIError as err:
        reason = " ".join(str(err.explanation).split())
        raise SbomError(f"{image}: cannot create a container to read it ({reason})") from None
    try:
        for path in pkgdb.DB_PATHS:
            _export_path(container, path, dest)
    except docker.errors.APIError as err:
        reason = " ".join(str(err.explanation).split())
        raise SbomError(f"{image}: cannot copy package database ({reason})") from None
    finally:
        container.remove(force=True)


def write_sbom(
    runner: Any,
    image: str,
    dest: Path,
    *,
    name: str,
    version: str,
    distro: str,
    distro_release: str,
    image_digest: str = "",
    created: datetime | None = None,
) -> tuple[Path, int]:
    """Write the image's CycloneDX SBOM to dest atomically; return it and its package count.

    The timestamp is the image's creation time unless `created` is given, so
    writing the SBOM of the same image again gives the same bytes.
    """
    client = runner.docker()
    created = created or image_created(client, image)
    with tempfile.TemporaryDirectory(prefix="kairos-sbom-") as tmp:
        export_db(client, image, Path(tmp))
        try:
            manager, packages = pkgdb.packages_from_root(Path(tmp))
        except pkgdb.DatabaseError as err:
            raise SbomError(str(err)) from None
    # An image without dpkg, rpm or apk (Hadron is built from source) gets an
    # SBOM that lists nothing and says why, rather than failing its release.
    text = bom_json(
        packages,
        name=name,
        version=version,
        distro=distro,
        distro_release=distro_release,
        image_digest=image_digest,
        created=created,
        database=manager or "none",
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; artifacts are not
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return dest, len(packages)

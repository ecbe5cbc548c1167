"""SBOM stage: the packages a built image holds, as CycloneDX JSON.

The list comes from the image's own package database (dpkg, rpm or apk),
read out of a created, never started, container: nothing in the image runs,
so foreign-arch images work and no code of the image shapes the result.
The rpm databases (sqlite and ndb) are parsed here rather than by calling
`rpm`, which the build host may not have or may have without that backend.

The document is built with cyclonedx-python-lib and is deterministic: the
same packages, image and timestamp give the same bytes, so a rebuilt SBOM
can be compared with, or signed over, the one before.
"""

from __future__ import annotations

import json
import os
import posixpath
import sqlite3
import struct
import tarfile
import tempfile
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output import make_outputter
from cyclonedx.schema import OutputFormat, SchemaVersion
from packageurl import PackageURL

try:  # the factory moved in cyclonedx-python-lib 11; the old path still works, deprecated
    from cyclonedx.contrib.license.factories import LicenseFactory
except ImportError:  # pragma: no cover - older library
    from cyclonedx.factory.license import LicenseFactory

SCHEMA = SchemaVersion.V1_6  # the CycloneDX version written (tests validate against it)

DPKG_STATUS = "/var/lib/dpkg/status"
RPM_DIRS = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")  # new location first; old is often a link
APK_INSTALLED = "/lib/apk/db/installed"
# Whole rpm directories, not single files: an sqlite rpmdb may keep recent writes in -wal.
DB_PATHS: tuple[str, ...] = (DPKG_STATUS, *RPM_DIRS, APK_INSTALLED)

NEVER_RUNS = ["/kairos-sbom-never-runs"]
MAX_LINKS = 8  # symlink hops export_db follows before giving up


class SbomError(RuntimeError):
    """The SBOM cannot be made; str() is one line."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str  # dpkg: Version as is; rpm: [epoch:]version-release; apk: version
    arch: str  # as the database says (amd64, x86_64, noarch, all, ...)
    manager: str  # "deb" | "rpm" | "apk": the purl type
    license: str = ""  # rpm LICENSE, apk L:; dpkg keeps licenses in files, not its database
    source: str = ""  # dpkg Source name / rpm SOURCERPM / apk origin


# --- dpkg and apk: text databases ---------------------------------------------


def _paragraphs(text: str) -> list[list[str]]:
    """Blank-line separated records, as lists of their lines."""
    records: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip():
            records[-1].append(line)
        elif records[-1]:
            records.append([])
    return [r for r in records if r]


def _deb822(lines: list[str]) -> dict[str, str]:
    """One dpkg status paragraph; continuation lines (leading space) are dropped."""
    fields: dict[str, str] = {}
    for line in lines:
        if line[0] in " \t" or ":" not in line:
            continue
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    return fields


def parse_dpkg_status(text: str) -> list[Package]:
    """Installed packages of /var/lib/dpkg/status (removed ones keep a paragraph too)."""
    packages = []
    for para in _paragraphs(text):
        f = _deb822(para)
        if not f.get("package") or f.get("status", "").split()[-1:] != ["installed"]:
            continue
        source = f.get("source", "").split(" ", 1)[0]  # "glibc (2.36-9)": the name only
        packages.append(
            Package(
                f["package"], f.get("version", ""), f.get("architecture", ""), "deb", "", source
            )
        )
    return packages


def parse_apk_installed(text: str) -> list[Package]:
    """Packages of /lib/apk/db/installed: one-letter keys, one record per package."""
    packages = []
    for record in _paragraphs(text):
        f: dict[str, str] = {}
        for line in record:
            key, sep, value = line.partition(":")
            if sep and len(key) == 1:
                f.setdefault(key, value)  # file lines (F:, R:, Z:) repeat; we need none
        if f.get("P"):
            packages.append(
                Package(
                    f["P"], f.get("V", ""), f.get("A", ""), "apk", f.get("L", ""), f.get("o", "")
                )
            )
    return packages


# --- rpm: binary headers in sqlite or ndb --------------------------------------

TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH = 1000, 1001, 1002, 1003
TAG_LICENSE, TAG_ARCH, TAG_SOURCERPM = 1014, 1022, 1044
TYPE_INT32, TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING = 4, 6, 8, 9
WANTED = {TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_LICENSE, TAG_ARCH, TAG_SOURCERPM}
PUBKEY = "gpg-pubkey"  # imported signing keys are stored as headers; they are not software


def _header_value(data: bytes, kind: int, offset: int) -> str:
    if kind == TYPE_INT32:
        if offset + 4 > len(data):
            raise SbomError("rpm header: INT32 value past the end of its data")
        return str(struct.unpack_from(">i", data, offset)[0])
    if kind in (TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING):
        end = data.find(b"\0", offset)
        if end < 0:
            raise SbomError("rpm header: unterminated string")
        return data[offset:end].decode("utf-8", "replace")  # arrays: the first string
    raise SbomError(f"rpm header: unexpected type {kind} for a package field")


def parse_rpm_header(blob: bytes) -> Package:
    """One header as rpmdb stores it: il, dl, il index entries, dl bytes of data."""
    if len(blob) < 8:
        raise SbomError("rpm header: shorter than its own size fields")
    il, dl = struct.unpack_from(">ii", blob)
    start = 8 + 16 * il
    if il < 1 or dl < 0 or start + dl > len(blob):
        raise SbomError(f"rpm header: sizes il={il} dl={dl} do not fit {len(blob)} bytes")
    data = blob[start : start + dl]
    values: dict[int, str] = {}
    for i in range(il):
        tag, kind, offset, _count = struct.unpack_from(">iiii", blob, 8 + 16 * i)
        if tag in WANTED:
            if not 0 <= offset < dl:
                raise SbomError(f"rpm header: tag {tag} points outside the data")
            values[tag] = _header_value(data, kind, offset)
    missing = [t for t in (TAG_NAME, TAG_VERSION, TAG_RELEASE) if t not in values]
    if missing:
        raise SbomError(f"rpm header: no tag {missing[0]}")
    evr = f"{values[TAG_VERSION]}-{values[TAG_RELEASE]}"
    if TAG_EPOCH in values:  # as rpm prints %{EVR}: the epoch only when the tag exists
        evr = f"{values[TAG_EPOCH]}:{evr}"
    return Package(
        name=values[TAG_NAME],
        version=evr,
        arch=values.get(TAG_ARCH, ""),
        manager="rpm",
        license=values.get(TAG_LICENSE, ""),
        source=values.get(TAG_SOURCERPM, ""),
    )


def _software(headers: list[Package]) -> list[Package]:
    return [p for p in headers if p.name != PUBKEY]


def rpm_sqlite(path: Path) -> list[Package]:
    """Packages of an rpmdb.sqlite (Fedora, RHEL 9 and their rebuilds)."""
    # rpm keeps the database in WAL mode. A snapshot with an empty or no -wal is
    # opened immutable, which writes nothing next to it (no -shm, no locks).
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() and wal.stat().st_size else "immutable=1"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)
        try:
            rows = db.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
        finally:
            db.close()
    except sqlite3.Error as err:
        raise SbomError(f"{path}: unreadable rpm sqlite database ({err})") from None
    packages = []
    for hnum, blob in rows:
        try:
            packages.append(parse_rpm_header(bytes(blob)))
        except SbomError as err:
            raise SbomError(f"{path}: package {hnum}: {err}") from None
    return _software(packages)


# rpm's ndb backend (lib/backend/ndb/rpmpkg.c); all numbers little-endian uint32.
NDB_MAGIC, NDB_SLOT, NDB_BLOB_HEAD, NDB_BLOB_TAIL = b"RpmP", b"Slot", b"BlbS", b"BlbE"
NDB_VERSION = 0
NDB_HEADER_SIZE = 32  # magic, version, generation, slot pages, next pkgidx (+ padding)
NDB_PAGE, NDB_SLOT_SIZE, NDB_BLK = 4096, 16, 16


def _ndb_blob(data: bytes, pkgidx: int, blkoff: int, blkcnt: int) -> bytes:
    """The header stored at a slot: 16-byte head, blob, padding, 12-byte checked tail."""
    start, end = blkoff * NDB_BLK, (blkoff + blkcnt) * NDB_BLK
    if end > len(data) or blkcnt * NDB_BLK < 28:
        raise SbomError(f"ndb: package {pkgidx} lies outside the file")
    magic, idx, _generation, length = struct.unpack_from("<4sIII", data, start)
    if magic != NDB_BLOB_HEAD or idx != pkgidx or 16 + length + 12 > end - start:
        raise SbomError(f"ndb: package {pkgidx} has a bad blob head")
    adler, tail_len, tail_magic = struct.unpack_from("<II4s", data, end - 12)
    # The checksum covers head, blob and padding: a torn write shows up here.
    if (
        tail_magic != NDB_BLOB_TAIL
        or tail_len != length
        or zlib.adler32(data[start : end - 12]) != adler
    ):
        raise SbomError(f"ndb: package {pkgidx} fails its checksum")
    return data[start + 16 : start + 16 + length]


def rpm_ndb(data: bytes) -> list[Package]:
    """Packages of an ndb Packages.db (openSUSE, SLE): slot pages pointing at header blobs."""
    if len(data) < NDB_HEADER_SIZE:
        raise SbomError("ndb: file shorter than its header")
    magic, version, _generation, npages = struct.unpack_from("<4sIII", data)
    if magic != NDB_MAGIC:
        raise SbomError("ndb: not an rpm ndb Packages.db (bad magic)")
    if version != NDB_VERSION:
        raise SbomError(f"ndb: unsupported version {version}")
    if npages * NDB_PAGE > len(data):
        raise SbomError(f"ndb: {npages} slot pages do not fit the file")
    slots = []
    for off in range(NDB_HEADER_SIZE, npages * NDB_PAGE, NDB_SLOT_SIZE):
        slot_magic, pkgidx, blkoff, blkcnt = struct.unpack_from("<4sIII", data, off)
        if slot_magic != NDB_SLOT:
            raise SbomError("ndb: bad slot magic")
        if blkoff:  # 0 marks a free slot
            slots.append((pkgidx, blkoff, blkcnt))
    packages = []
    for pkgidx, blkoff, blkcnt in sorted(slots):  # pkgidx order: install order, as rpm -qa
        try:
            packages.append(parse_rpm_header(_ndb_blob(data, pkgidx, blkoff, blkcnt)))
        except SbomError as err:
            raise SbomError(f"ndb: package {pkgidx}: {err}") from None
    return _software(packages)


# --- which database an image has ----------------------------------------------


def _rel(path: str) -> str:
    return path.lstrip("/")


def packages_from_root(root: Path) -> tuple[str, list[Package]]:
    """(manager, packages) of the first database under root laid out as in the image."""
    status = root / _rel(DPKG_STATUS)
    if status.is_file():
        return "deb", parse_dpkg_status(status.read_text(encoding="utf-8", errors="replace"))
    for directory in (root / _rel(d) for d in RPM_DIRS):
        if (directory / "rpmdb.sqlite").is_file():
            return "rpm", rpm_sqlite(directory / "rpmdb.sqlite")
        if (directory / "Packages.db").is_file():
            return "rpm", rpm_ndb((directory / "Packages.db").read_bytes())
    for d in RPM_DIRS:
        if (root / _rel(d) / "Packages").is_file():
            raise SbomError(
                f"{d}/Packages is a Berkeley DB rpm database, which is not supported "
                "(only sqlite and ndb are)"
            )
    installed = root / _rel(APK_INSTALLED)
    if installed.is_file():
        return "apk", parse_apk_installed(installed.read_text(encoding="utf-8", errors="replace"))
    return "", []


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
        raise SbomError(f"{image}: unreadable creation time {raw!r}") from None


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
                    _extract(tar, PurePosixPath(top.name).name, dest, dest / _rel(path))
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
        for path in DB_PATHS:
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
        manager, packages = packages_from_root(Path(tmp))
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

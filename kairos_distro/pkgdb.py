"""Package databases of an image: dpkg, rpm (sqlite and ndb) and apk, parsed here.

Read from a directory laid out as the image is (sbom.py copies the database
paths out of a created, never started, container). The rpm databases are
parsed rather than handed to `rpm`, which the build host may not have, or
may have without that backend. Pure: bytes and files in, packages out.
"""

from __future__ import annotations

import sqlite3
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

DPKG_STATUS = "/var/lib/dpkg/status"
RPM_DIRS = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")  # new location first; old is often a link
APK_INSTALLED = "/lib/apk/db/installed"
# Whole rpm directories, not single files: an sqlite rpmdb may keep recent writes in -wal.
DB_PATHS: tuple[str, ...] = (DPKG_STATUS, *RPM_DIRS, APK_INSTALLED)


class DatabaseError(RuntimeError):
    """A package database cannot be read; str() is one line."""


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
            raise DatabaseError("rpm header: INT32 value past the end of its data")
        return str(struct.unpack_from(">i", data, offset)[0])
    if kind in (TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING):
        end = data.find(b"\0", offset)
        if end < 0:
            raise DatabaseError("rpm header: unterminated string")
        return data[offset:end].decode("utf-8", "replace")  # arrays: the first string
    raise DatabaseError(f"rpm header: unexpected type {kind} for a package field")


def parse_rpm_header(blob: bytes) -> Package:
    """One header as rpmdb stores it: il, dl, il index entries, dl bytes of data."""
    if len(blob) < 8:
        raise DatabaseError("rpm header: shorter than its own size fields")
    il, dl = struct.unpack_from(">ii", blob)
    start = 8 + 16 * il
    if il < 1 or dl < 0 or start + dl > len(blob):
        raise DatabaseError(f"rpm header: sizes il={il} dl={dl} do not fit {len(blob)} bytes")
    data = blob[start : start + dl]
    values: dict[int, str] = {}
    for i in range(il):
        tag, kind, offset, _count = struct.unpack_from(">iiii", blob, 8 + 16 * i)
        if tag in WANTED:
            if not 0 <= offset < dl:
                raise DatabaseError(f"rpm header: tag {tag} points outside the data")
            values[tag] = _header_value(data, kind, offset)
    missing = [t for t in (TAG_NAME, TAG_VERSION, TAG_RELEASE) if t not in values]
    if missing:
        raise DatabaseError(f"rpm header: no tag {missing[0]}")
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
        raise DatabaseError(f"{path}: unreadable rpm sqlite database ({err})") from None
    packages = []
    for hnum, blob in rows:
        try:
            packages.append(parse_rpm_header(bytes(blob)))
        except DatabaseError as err:
            raise DatabaseError(f"{path}: package {hnum}: {err}") from None
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
        raise DatabaseError(f"ndb: package {pkgidx} lies outside the file")
    magic, idx, _generation, length = struct.unpack_from("<4sIII", data, start)
    if magic != NDB_BLOB_HEAD or idx != pkgidx or 16 + length + 12 > end - start:
        raise DatabaseError(f"ndb: package {pkgidx} has a bad blob head")
    adler, tail_len, tail_magic = struct.unpack_from("<II4s", data, end - 12)
    # The checksum covers head, blob and padding: a torn write shows up here.
    if (
        tail_magic != NDB_BLOB_TAIL
        or tail_len != length
        or zlib.adler32(data[start : end - 12]) != adler
    ):
        raise DatabaseError(f"ndb: package {pkgidx} fails its checksum")
    return data[start + 16 : start + 16 + length]


def rpm_ndb(data: bytes) -> list[Package]:
    """Packages of an ndb Packages.db (openSUSE, SLE): slot pages pointing at header blobs."""
    if len(data) < NDB_HEADER_SIZE:
        raise DatabaseError("ndb: file shorter than its header")
    magic, version, _generation, npages = struct.unpack_from("<4sIII", data)
    if magic != NDB_MAGIC:
        raise DatabaseError("ndb: not an rpm ndb Packages.db (bad magic)")
    if version != NDB_VERSION:
        raise DatabaseError(f"ndb: unsupported version {version}")
    if npages * NDB_PAGE > len(data):
        raise DatabaseError(f"ndb: {npages} slot pages do not fit the file")
    slots = []
    for off in range(NDB_HEADER_SIZE, npages * NDB_PAGE, NDB_SLOT_SIZE):
        slot_magic, pkgidx, blkoff, blkcnt = struct.unpack_from("<4sIII", data, off)
        if slot_magic != NDB_SLOT:
            raise DatabaseError("ndb: bad slot magic")
        if blkoff:  # 0 marks a free slot
            slots.append((pkgidx, blkoff, blkcnt))
    packages = []
    for pkgidx, blkoff, blkcnt in sorted(slots):  # pkgidx order: install order, as rpm -qa
        try:
            packages.append(parse_rpm_header(_ndb_blob(data, pkgidx, blkoff, blkcnt)))
        except DatabaseError as err:
            raise DatabaseError(f"ndb: package {pkgidx}: {err}") from None
    return _software(packages)


# --- which database an image has ----------------------------------------------


def relative(path: str) -> str:
    """An in-image path as it sits under a copied root."""
    return path.lstrip("/")


def packages_from_root(root: Path) -> tuple[str, list[Package]]:
    """(manager, packages) of the first database under root laid out as in the image."""
    status = root / relative(DPKG_STATUS)
    if status.is_file():
        return "deb", parse_dpkg_status(status.read_text(encoding="utf-8", errors="replace"))
    for directory in (root / relative(d) for d in RPM_DIRS):
        if (directory / "rpmdb.sqlite").is_file():
            return "rpm", rpm_sqlite(directory / "rpmdb.sqlite")
        if (directory / "Packages.db").is_file():
            return "rpm", rpm_ndb((directory / "Packages.db").read_bytes())
    for d in RPM_DIRS:
        if (root / relative(d) / "Packages").is_file():
            raise DatabaseError(
                f"{d}/Packages is a Berkeley DB rpm database, which is not supported "
                "(only sqlite and ndb are)"
            )
    installed = root / relative(APK_INSTALLED)
    if installed.is_file():
        return "apk", parse_apk_installed(installed.read_text(encoding="utf-8", errors="replace"))
    return "", []

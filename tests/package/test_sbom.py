"""SBOM: package databases as the package managers write them, and the CycloneDX document.

The rpm databases are real ones written by rpm (see rpm_fixtures.py for how),
and what the parsers read is compared with what `rpm -qa` printed for them.
dpkg and apk databases are text; their samples follow what dpkg and apk write.
No Docker here: reading out of an image is exercised against a stand-in
container serving tar archives the way the engine's archive API does.
"""

from __future__ import annotations

import io
import json
import random
import sqlite3
import struct
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import pytest
import rpm_fixtures
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from kairos_distro import pkgdb, sbom
from kairos_distro.pkgdb import DatabaseError, Package
from kairos_distro.sbom import SbomError

# A dpkg status file: real paragraphs from Debian 12 (some fields trimmed), plus
# the states dpkg leaves behind for removed and half-done packages.
DPKG_STATUS = """\
Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 341
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 12.4+deb12u15
Replaces: base, dpkg (<= 1.15.0), miscutils
Provides: base
Conffiles:
 /etc/debian_version 8df6b10bbd4b4ac4b8e2e7fbbb1bb6a4
 /etc/host.conf 4eb63731c9f5e30903ac4fc07a7fe3d6
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system, and
 several important miscellaneous files, such as /etc/debian_version,
 /etc/host.conf, /etc/issue, /etc/motd, /etc/profile, and others,
 and the text of several common licenses in use on Debian systems.

Package: bash
Essential: yes
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7164
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: bash (5.2.15-2)
Version: 5.2.15-2+b7
Depends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)
Pre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter that executes
 commands read from the standard input or from a file.
 .
 Version: 99 and Package: fake are description text, not fields.
Homepage: http://tiswww.case.edu/php/chet/bash/bashtop.html

Package: nano
Status: deinstall ok config-files
Priority: optional
Section: editors
Installed-Size: 2715
Maintainer: Jordi Mallach <jordi@debian.org>
Architecture: amd64
Version: 7.2-1+deb12u1
Conffiles:
 /etc/nanorc a0ef3ae5ba4be7b4d0ca4fbbf8ba2ac0
Description: small, friendly text editor inspired by Pico

Package: vim-tiny
Status: install ok unpacked
Priority: important
Section: editors
Architecture: amd64
Source: vim
Version: 2:9.0.1378-2
Description: Vi IMproved - enhanced vi editor - compact version

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 13001
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Depends: libgcc-s1
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
Homepage: https://www.gnu.org/software/libc/libc.html

Package: tzdata
Status: install ok installed
Priority: required
Section: localization
Installed-Size: 2573
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: all
Multi-Arch: foreign
Version: 2024a-0+deb12u1
Provides: tzdata-bookworm
Description: time zone and daylight-saving time data
 This package contains data required for the implementation of
 standard local time for many representative locations around the globe.
"""

DPKG_INSTALLED = [
    Package("base-files", "12.4+deb12u15", "amd64", "deb"),
    Package("bash", "5.2.15-2+b7", "amd64", "deb", source="bash"),
    Package("libc6", "2.36-9+deb12u4", "amd64", "deb", source="glibc"),
    Package("tzdata", "2024a-0+deb12u1", "all", "deb"),
]

# /lib/apk/db/installed as apk writes it (format: wiki.alpinelinux.org "Apk spec").
APK_INSTALLED = """\
C:Q1+n9+FLBpErgdUpBAt3RVDzoKm3M=
P:musl
V:1.2.5-r0
A:x86_64
S:407849
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1711725480
c:f93af038c3ee86e23a3a6e4e3b4cc2b8cd8e3c6c
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1vrdc3HmQ1Pn6ETA71FfQnhvTqXU=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1bgoMDD1bVxRcwbzOlRX0t3ziz0c=
P:busybox
V:1.36.1-r29
A:x86_64
S:508446
I:946176
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1716815218
c:4c2ad6e2c4a7dbb3fbfb2c6b8e8c5c4b3d3c7c5e
D:so:libc.musl-x86_64.so.1
F:bin
R:busybox
a:0:0:755
Z:Q1WUwBY0eOGgzhOZJY0e2NxKrh8FY=

C:Q1lUcOTWeTBGuy0PY3dP40VIUMajY=
P:ca-certificates-bundle
V:20240226-r0
A:x86_64
S:128297
I:238592
T:Pre generated bundle of Mozilla certificates
U:https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/
L:MPL-2.0 AND MIT
o:ca-certificates
m:Natanael Copa <ncopa@alpinelinux.org>
t:1709024110
c:32f1d4a84ce1b3f1ae4ef3c7a4e2e2e6e0a8a6ab
p:ca-certificates-cacert=20240226-r0
F:etc
F:etc/ssl
F:etc/ssl/certs
R:ca-certificates.crt
Z:Q1JXNhvz3RwTRXnzYxBpOMQm2w5Nk=
"""

APK_PACKAGES = [
    Package("musl", "1.2.5-r0", "x86_64", "apk", "MIT", "musl"),
    Package("busybox", "1.36.1-r29", "x86_64", "apk", "GPL-2.0-only", "busybox"),
    Package(
        "ca-certificates-bundle",
        "20240226-r0",
        "x86_64",
        "apk",
        "MPL-2.0 AND MIT",
        "ca-certificates",
    ),
]

CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32


# --- helpers -------------------------------------------------------------------


def from_qa(line: str) -> Package:
    """A Package from one line of `rpm -qa --qf QA_FORMAT`."""
    name, evr, arch, lic, source = line.split("|")
    return Package(name, evr, arch, "rpm", lic, source)


def qa_packages(lines: tuple[str, ...]) -> list[Package]:
    """The software packages rpm listed; signing keys are not software and are left out."""
    return [from_qa(line) for line in lines if not line.startswith("gpg-pubkey|")]


def sqlite_rpmdb(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "rpmdb.sqlite"
    path.write_bytes(rpm_fixtures.unpack(rpm_fixtures.SQLITE_RPMDB_B64))
    return path


def ndb_packages() -> bytes:
    return rpm_fixtures.unpack(rpm_fixtures.NDB_PACKAGES_B64)


def bom(packages: list[Package], **kw: Any) -> str:
    args: dict[str, Any] = {
        "name": "my-distro",
        "version": "v1.2.0",
        "distro": "debian",
        "distro_release": "12",
        "image_digest": DIGEST,
        "created": CREATED,
    }
    return sbom.bom_json(packages, **{**args, **kw})


def schema_errors(text: str) -> object:
    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)


# --- dpkg and apk ----------------------------------------------------------------


def test_dpkg_status_lists_installed_packages_only():
    # nano was removed (its config kept) and vim-tiny is only unpacked: neither is installed.
    assert pkgdb.parse_dpkg_status(DPKG_STATUS) == DPKG_INSTALLED


def test_dpkg_status_empty_and_without_trailing_blank_line():
    assert pkgdb.parse_dpkg_status("") == []
    one = "Package: dash\nStatus: install ok installed\nArchitecture: arm64\nVersion: 0.5.12-2"
    assert pkgdb.parse_dpkg_status(one) == [Package("dash", "0.5.12-2", "arm64", "deb")]


def test_apk_installed_reads_name_version_arch_license_origin():
    assert pkgdb.parse_apk_installed(APK_INSTALLED) == APK_PACKAGES


# --- rpm ------------------------------------------------------------------------


def test_rpm_fixtures_unpack_to_the_recorded_sizes():
    assert len(rpm_fixtures.unpack(rpm_fixtures.SQLITE_RPMDB_B64)) == rpm_fixtures.SQLITE_RPMDB_SIZE
    assert len(ndb_packages()) == rpm_fixtures.NDB_PACKAGES_SIZE


def test_parse_rpm_header_reads_each_header_as_rpm_does(tmp_path):
    # The blobs come straight out of the rpmdb with sqlite3, not through sbom.
    db = sqlite3.connect(sqlite_rpmdb(tmp_path))
    blobs = [b for (b,) in db.execute("SELECT blob FROM Packages ORDER BY hnum")]
    db.close()
    got = [pkgdb.parse_rpm_header(bytes(b)) for b in blobs]
    *software, key = got
    assert software == qa_packages(rpm_fixtures.SQLITE_RPMDB_QA)
    assert software[1].version == "2:1.2.3+git20240101-1.kdt"  # the epoch comes first, as in EVR
    # The imported key: rpm printed "(none)" for its ARCH because the header has no ARCH
    # tag, while its SOURCERPM really is the string "(none)" (rpm stores it so for keys).
    assert rpm_fixtures.SQLITE_RPMDB_QA[-1] == "gpg-pubkey|8cb1d4d1-6b098be1|(none)|pubkey|(none)"
    assert key == Package("gpg-pubkey", "8cb1d4d1-6b098be1", "", "rpm", "pubkey", "(none)")


def test_parse_rpm_header_rejects_truncated_and_foreign_blobs(tmp_path):
    db = sqlite3.connect(sqlite_rpmdb(tmp_path))
    (blob,) = db.execute("SELECT blob FROM Packages LIMIT 1").fetchone()
    db.close()
    for bad in (b"", blob[:6], blob[: len(blob) // 2], struct.pack(">ii", 0, 0)):
        with pytest.raises(DatabaseError, match="rpm header"):
            pkgdb.parse_rpm_header(bytes(bad))


def test_rpm_sqlite_lists_packages_but_not_signing_keys(tmp_path):
    path = sqlite_rpmdb(tmp_path / "usr/lib/sysimage/rpm")
    assert rpm_fixtures.SQLITE_RPMDB_QA[-1].startswith("gpg-pubkey|")  # it really holds a key
    assert pkgdb.rpm_sqlite(path) == qa_packages(rpm_fixtures.SQLITE_RPMDB_QA)
    # A snapshot is read as immutable: nothing (-shm, -wal, journal) appears next to it.
    assert sorted(p.name for p in path.parent.iterdir()) == ["rpmdb.sqlite"]


def test_rpm_sqlite_sees_writes_still_in_the_wal(tmp_path):
    path = sqlite_rpmdb(tmp_path)
    writer = sqlite3.connect(path)
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # keep the write in rpmdb.sqlite-wal
        writer.execute("INSERT INTO Packages (blob) SELECT blob FROM Packages WHERE hnum = 1")
        writer.commit()
        assert path.with_name("rpmdb.sqlite-wal").stat().st_size > 0
        names = [p.name for p in pkgdb.rpm_sqlite(path)]
    finally:
        writer.close()
    assert names == ["kdt-tool", "kdt-hello", "kdt-data", "kdt-tool"]


def test_rpm_sqlite_reports_a_file_that_is_not_an_rpmdb(tmp_path):
    path = tmp_path / "rpmdb.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(DatabaseError, match="unreadable rpm sqlite database"):
        pkgdb.rpm_sqlite(path)


def test_rpm_ndb_lists_packages_as_rpm_does():
    assert pkgdb.rpm_ndb(ndb_packages()) == qa_packages(rpm_fixtures.NDB_PACKAGES_QA)


def test_rpm_ndb_rejects_a_damaged_file():
    data = ndb_packages()
    with pytest.raises(DatabaseError, match="bad magic"):
        pkgdb.rpm_ndb(b"XXXX" + data[4:])
    # One flipped byte inside the last package's header fails that blob's adler32.
    damaged = bytearray(data)
    damaged[len(data) - 100] ^= 0xFF
    with pytest.raises(DatabaseError, match="checksum"):
        pkgdb.rpm_ndb(bytes(damaged))
    with pytest.raises(DatabaseError, match="ndb"):
        pkgdb.rpm_ndb(data[: len(data) - 64])  # a slot points past the end


# --- which database ---------------------------------------------------------------


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_packages_from_root_finds_each_database(tmp_path):
    deb, rpm, ndb, apk = (tmp_path / n for n in ("deb", "rpm", "ndb", "apk"))
    write(deb, "var/lib/dpkg/status", DPKG_STATUS)
    sqlite_rpmdb(rpm / "usr/lib/sysimage/rpm")
    write(ndb, "var/lib/rpm/Packages.db", ndb_packages())
    write(apk, "lib/apk/db/installed", APK_INSTALLED)
    assert pkgdb.packages_from_root(deb) == ("deb", DPKG_INSTALLED)
    manager, packages = pkgdb.packages_from_root(rpm)
    assert (manager, [p.name for p in packages]) == ("rpm", ["kdt-tool", "kdt-hello", "kdt-data"])
    manager, packages = pkgdb.packages_from_root(ndb)
    assert (manager, [p.name for p in packages]) == ("rpm", ["kdt-tool", "kdt-hello", "kdt-data"])
    assert pkgdb.packages_from_root(apk) == ("apk", APK_PACKAGES)


def test_packages_from_root_prefers_dpkg_and_reports_nothing_found(tmp_path):
    write(tmp_path, "var/lib/dpkg/status", DPKG_STATUS)
    write(tmp_path, "lib/apk/db/installed", APK_INSTALLED)  # e.g. apk-tools installed on Debian
    assert pkgdb.packages_from_root(tmp_path)[0] == "deb"
    assert pkgdb.packages_from_root(tmp_path / "empty") == ("", [])


def test_packages_from_root_refuses_berkeley_db(tmp_path):
    write(tmp_path, "var/lib/rpm/Packages", b"\0" * 4096)
    berkeley = r"/var/lib/rpm/Packages is a Berkeley DB .* not supported"
    with pytest.raises(DatabaseError, match=berkeley):
        pkgdb.packages_from_root(tmp_path)
    sqlite_rpmdb(tmp_path / "usr/lib/sysimage/rpm")  # converted: the leftover is ignored
    assert pkgdb.packages_from_root(tmp_path)[0] == "rpm"


def test_db_paths_cover_what_packages_from_root_reads():
    assert set(pkgdb.DB_PATHS) == {
        "/var/lib/dpkg/status",
        "/usr/lib/sysimage/rpm",
        "/var/lib/rpm",
        "/lib/apk/db/installed",
    }


# --- CycloneDX ------------------------------------------------------------------


def test_bom_is_valid_cyclonedx_1_6_and_describes_the_image():
    text = bom(DPKG_INSTALLED)
    assert schema_errors(text) is None
    doc = json.loads(text)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")
    image = doc["metadata"]["component"]
    assert (image["type"], image["name"], image["version"]) == ("container", "my-distro", "v1.2.0")
    assert image["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert doc["metadata"]["timestamp"] == "2024-05-01T12:00:00+00:00"
    # The image depends on every package.
    (edge,) = [d for d in doc["dependencies"] if d["ref"] == image["bom-ref"]]
    assert sorted(edge["dependsOn"]) == sorted(c["bom-ref"] for c in doc["components"])


def test_bom_purls_follow_the_purl_spec():
    doc = json.loads(bom(DPKG_INSTALLED))
    by_name = {c["name"]: c for c in doc["components"]}
    bash = by_name["bash"]
    assert bash["type"] == "library"
    assert bash["version"] == "5.2.15-2+b7"
    assert (
        bash["purl"]
        == "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12&upstream=bash"
    )
    assert (
        by_name["tzdata"]["purl"]
        == "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12"
    )
    for c in doc["components"]:
        assert c["bom-ref"] == c["purl"]
        parsed = PackageURL.from_string(c["purl"])
        assert (parsed.type, parsed.namespace, parsed.name) == ("deb", "debian", c["name"])
        assert parsed.version == c["version"]  # "+" is %2B on the wire, "+" once decoded


def test_bom_of_real_rpm_packages_puts_the_epoch_in_a_qualifier(tmp_path):
    packages = pkgdb.rpm_sqlite(sqlite_rpmdb(tmp_path))
    text = bom(packages, distro="fedora", distro_release="40")
    assert schema_errors(text) is None
    purls = {PackageURL.from_string(p).name: p for p in sbom.component_purls(text)}
    assert purls["kdt-hello"] == (
        "pkg:rpm/fedora/kdt-hello@1.2.3%2Bgit20240101-1.kdt?arch=noarch&distro=fedora-40"
        "&epoch=2&upstream=kdt-hello-1.2.3%2Bgit20240101-1.kdt.src.rpm"
    )
    assert PackageURL.from_string(purls["kdt-tool"]).version == "5.0~rc1-0.1"


def test_bom_licenses_are_spdx_ids_expressions_or_names(tmp_path):
    packages = [*pkgdb.rpm_sqlite(sqlite_rpmdb(tmp_path)), *APK_PACKAGES]
    doc = json.loads(bom(packages, distro="mixed", distro_release="1"))
    licenses = {c["name"]: c.get("licenses") for c in doc["components"]}
    assert licenses["kdt-tool"] == [{"license": {"id": "Apache-2.0"}}]
    assert licenses["kdt-hello"] == [{"expression": "MIT AND BSD-3-Clause"}]
    assert licenses["kdt-data"] == [{"license": {"name": "GPLv2+"}}]  # not SPDX: kept as said
    assert licenses["ca-certificates-bundle"] == [{"expression": "MPL-2.0 AND MIT"}]
    assert licenses["musl"] == [{"license": {"id": "MIT"}}]
    assert "licenses" not in json.loads(bom(DPKG_INSTALLED))["components"][0]


def test_bom_is_deterministic_and_sorted():
    packages = [
        *DPKG_INSTALLED,
        Package("libc6", "2.36-9+deb12u4", "i386", "deb", source="glibc"),  # multiarch twin
        Package("zlib1g", "1:1.2.13.dfsg-1", "amd64", "deb", source="zlib"),
        Package("adduser", "3.134", "all", "deb"),
    ]
    shuffled = packages[:]
    random.Random(7).shuffle(shuffled)
    first = bom(packages)
    assert bom(shuffled) == first  # same image, same bytes
    assert bom(packages + packages[:2]) == first  # a repeated package is listed once
    comps = json.loads(first)["components"]
    keys = [
        (c["name"], c["version"], PackageURL.from_string(c["purl"]).qualifiers["arch"])
        for c in comps
    ]
    assert keys == sorted((p.name, p.version, p.arch) for p in packages)
    assert len(keys) == len(packages)


def test_bom_serial_number_follows_its_inputs():
    serial = json.loads(bom(DPKG_INSTALLED))["serialNumber"]
    assert serial.startswith("urn:uuid:")
    assert json.loads(bom(DPKG_INSTALLED, created=datetime(2030, 1, 1)))["serialNumber"] == serial
    others = [
        bom(DPKG_INSTALLED[:-1]),
        bom(DPKG_INSTALLED, image_digest="sha256:" + "cd" * 32),
        bom(DPKG_INSTALLED, version="v1.2.1"),
    ]
    assert all(json.loads(o)["serialNumber"] != serial for o in others)


def test_bom_of_no_packages_is_still_valid():
    text = bom([], image_digest="")
    assert schema_errors(text) is None
    assert sbom.component_purls(text) == []


def test_component_purls_reads_str_and_dict_and_nested_components():
    doc = {
        "components": [
            {"name": "a", "purl": "pkg:deb/debian/a@1"},
            {"name": "b", "components": [{"name": "c", "purl": "pkg:deb/debian/c@3"}]},
            {"name": "d", "purl": "pkg:deb/debian/d@4"},
        ]
    }
    expected = ["pkg:deb/debian/a@1", "pkg:deb/debian/c@3", "pkg:deb/debian/d@4"]
    assert sbom.component_purls(doc) == expected
    assert sbom.component_purls(json.dumps(doc)) == expected


# --- reading out of an image, against a stand-in for the engine's archive API ------


def tar_of(*entries: tuple[str, str, bytes | str]) -> bytes:
    """A tar as `GET /containers/{id}/archive` returns it: the top entry is the path's base name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, str(payload)
                tar.addfile(info)
            else:
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class FakeContainer:
    archives: dict[str, bytes]
    fetched: list[str] = field(default_factory=list)
    removed: bool = False

    def get_archive(self, path: str) -> tuple[Any, dict[str, Any]]:
        self.fetched.append(path)
        if path not in self.archives:
            raise docker.errors.NotFound(f"Could not find the file {path} in container")
        data = self.archives[path]
        return iter([data[:100], data[100:]]), {"name": path.rsplit("/", 1)[-1]}

    def remove(self, force: bool = False) -> None:
        self.removed = force


@dataclass
class FakeImage:
    attrs: dict[str, Any]


@dataclass
class FakeClient:
    """containers.create and images.get of a docker-py client, for one local image."""

    container: FakeContainer
    image_created: str = "2024-05-01T12:00:00.123456789Z"  # as the engine reports it
    created: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def containers(self) -> FakeClient:
        return self

    @property
    def images(self) -> FakeClient:
        return self

    def create(self, image: str, command: list[str]) -> FakeContainer:
        self.created.append((image, command))
        return self.container

    def get(self, image: str) -> FakeImage:
        if image != "img":
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        return FakeImage({"Id": DIGEST, "Created": self.image_created})


def opensuse_like() -> FakeContainer:
    """/var/lib/rpm is a relative link to /usr/lib/sysimage/rpm, as on openSUSE."""
    return FakeContainer(
        {
            "/var/lib/rpm": tar_of(("rpm", "link", "../../usr/lib/sysimage/rpm")),
            "/usr/lib/sysimage/rpm": tar_of(
                ("rpm", "dir", b""),
                ("rpm/Packages.db", "file", ndb_packages()),
                ("rpm/Index.db", "file", b"\0" * 64),
            ),
        }
    )


def test_export_db_copies_databases_and_follows_links(tmp_path):
    container = opensuse_like()
    client = FakeClient(container)
    sbom.export_db(client, "registry.example/distro:tag", tmp_path)
    assert client.created == [("registry.example/distro:tag", ["/kairos-sbom-never-runs"])]
    assert container.removed
    # The link's target is fetched and written where the link is, too.
    assert container.fetched.count("/usr/lib/sysimage/rpm") == 2
    for d in ("usr/lib/sysimage/rpm", "var/lib/rpm"):
        assert (tmp_path / d / "Packages.db").read_bytes() == ndb_packages()
    manager, packages = pkgdb.packages_from_root(tmp_path)
    assert (manager, len(packages)) == ("rpm", 3)


def test_export_db_writes_nothing_outside_dest(tmp_path):
    dest = tmp_path / "dest"
    evil = tar_of(
        ("status", "file", "Package: x\nStatus: install ok installed\nVersion: 1\n"),
        ("../../escaped", "file", "no"),
        ("/abs-escaped", "file", "no"),
        ("shadow", "file", "not under the fetched path: must not replace status"),
        ("status-link", "link", "/etc/shadow"),
    )
    container = FakeContainer({"/var/lib/dpkg/status": evil})
    sbom.export_db(FakeClient(container), "img", dest)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["dest/var/lib/dpkg/status"]
    assert pkgdb.packages_from_root(dest) == ("deb", [Package("x", "1", "", "deb")])


def test_export_db_gives_up_on_link_loops_and_still_removes_the_container(tmp_path):
    container = FakeContainer({"/var/lib/dpkg/status": tar_of(("status", "link", "status"))})
    with pytest.raises(SbomError, match="symlinks"):
        sbom.export_db(FakeClient(container), "img", tmp_path)
    assert container.removed


@dataclass
class FakeRunner:
    client: FakeClient

    def docker(self) -> FakeClient:
        return self.client


def write_opensuse_sbom(dest: Path) -> tuple[Path, int]:
    return sbom.write_sbom(
        FakeRunner(FakeClient(opensuse_like())),
        "img",
        dest,
        name="my-distro",
        version="v1",
        distro="opensuse",
        distro_release="leap-15.6",
        image_digest=DIGEST,
    )


def test_write_sbom_writes_the_document_in_place(tmp_path):
    dest = tmp_path / "artifacts" / "cell" / "sbom.cdx.json"
    assert write_opensuse_sbom(dest) == (dest, 3)
    assert [p.name for p in dest.parent.iterdir()] == ["sbom.cdx.json"]  # no temp file left
    text = dest.read_text()
    assert schema_errors(text) is None
    assert all(p.startswith("pkg:rpm/opensuse/") for p in sbom.component_purls(text))
    properties = json.loads(text)["metadata"]["properties"]
    assert properties == [{"name": "kairos:package-database", "value": "rpm"}]
    # Stamped with the image's creation time, so the same image gives the same bytes.
    assert json.loads(text)["metadata"]["timestamp"] == "2024-05-01T12:00:00+00:00"
    again = tmp_path / "again.json"
    write_opensuse_sbom(again)
    assert again.read_bytes() == dest.read_bytes()


def test_write_sbom_reports_a_missing_image(tmp_path):
    runner = FakeRunner(FakeClient(opensuse_like()))
    with pytest.raises(SbomError, match="not found"):
        sbom.write_sbom(
            runner,
            "gone",
            tmp_path / "s.json",
            name="n",
            version="v",
            distro="d",
            distro_release="1",
        )


def test_write_sbom_of_an_image_without_a_database_lists_nothing_and_says_why(tmp_path):
    # Hadron has no dpkg, rpm or apk: its release goes on, with an SBOM that says so.
    dest = tmp_path / "sbom.json"
    runner = FakeRunner(FakeClient(FakeContainer({})))
    path, count = sbom.write_sbom(
        runner, "img", dest, name="n", version="v", distro="d", distro_release="1"
    )
    bom = json.loads(path.read_text())
    assert (count, bom.get("components", [])) == (0, [])
    assert {"name": "kairos:package-database", "value": "none"} in bom["metadata"]["properties"]


def test_write_sbom_of_an_unreadable_database_is_one_sbom_error(tmp_path):
    # The parser's DatabaseError reaches the stage as the SbomError it reports.
    berkeley = tar_of(("rpm", "dir", b""), ("rpm/Packages", "file", b"\0" * 4096))
    runner = FakeRunner(FakeClient(FakeContainer({"/var/lib/rpm": berkeley})))
    dest = tmp_path / "sbom.json"
    with pytest.raises(SbomError, match=r"^/var/lib/rpm/Packages is a Berkeley DB") as caught:
        sbom.write_sbom(runner, "img", dest, name="n", version="v", distro="d", distro_release="1")
    assert "\n" not in str(caught.value)
    assert not dest.exists()

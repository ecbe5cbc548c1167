"""The SBOM stage for real: syft, in its image, on images in the engine.

What syft lists is checked against each image's own package database as the
distro's tool reads it: `dpkg-query` inside the Debian image; Debian's `rpm`
(4.18) on a real sqlite rpm database (tests/package/rpm_fixtures.py, made by
rpm itself); Debian's rpm has no ndb backend, so the ndb database is checked
against the `rpm -qa` output recorded when it was made, and apk has no Debian
package, so the apk image is checked against its database's records as
`apk info -v` prints them (name-version). An image without a package manager
(as Hadron is) still gets its Go modules.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kairos_distro import changelog, sbom
from kairos_distro.runner import Runner, StepError
from tests.support.clients import tool
from tests.support.standins import debian_base, image_from_files
from tests.support.tools import tool_image

sys.path.insert(0, str(Path(__file__).parent / "package"))
import rpm_fixtures

pytestmark = pytest.mark.e2e

APK_INSTALLED = """\
P:musl
V:1.2.5-r0
A:x86_64
L:MIT
o:musl
F:lib
R:ld-musl-x86_64.so.1

P:busybox
V:1.36.1-r29
A:x86_64
L:GPL-2.0-only
o:busybox
F:bin
R:busybox

P:ca-certificates-bundle
V:20240226-r0
A:x86_64
L:MPL-2.0 AND MIT
o:ca-certificates
"""
APK_INFO_V = ["busybox-1.36.1-r29", "ca-certificates-bundle-20240226-r0", "musl-1.2.5-r0"]


@pytest.fixture(scope="module")
def syft(docker_client) -> str:
    return tool_image(docker_client, "syft")


def catalogue(client, syft: str, image: str, dest: Path) -> dict:
    path, count = sbom.write_sbom(
        Runner(out=io.StringIO()),
        "test",
        syft,
        client.images.get(image).id,
        dest,
        name="ghcr.io/o/distro",
        version="v1",
    )
    doc = json.loads(path.read_text())
    assert count == len(sbom.component_purls(doc))
    return doc


def triples(doc: dict, kind: str) -> set[tuple[str, str, str]]:
    return {(p.name, p.version, p.arch) for p in changelog.sbom_packages(doc) if p.manager == kind}


def test_syft_lists_what_dpkg_query_lists(tmp_path, docker_client, syft):
    base = debian_base(docker_client)
    doc = catalogue(docker_client, syft, base, tmp_path / "debian.cdx.json")
    query = Runner().output(
        "test", "dpkg", base, ["dpkg-query", "-W", "-f", "${Package} ${Version} ${Architecture}\n"]
    )
    assert query.code == 0, query.out
    installed = {tuple(line.split()) for line in query.out.splitlines() if line.strip()}
    assert len(installed) > 50  # a debootstrapped Debian, not an empty answer
    assert triples(doc, "deb") == installed


def rpm_qa(db: Path) -> set[tuple[str, ...]]:
    """`rpm -qa` of a database directory (Debian's rpm 4.18 reads sqlite, not ndb)."""
    qa = subprocess.run(
        ["rpm", "--dbpath", str(db), "-qa", "--qf", "%{NAME}|%{EVR}|%{ARCH}\n"],
        capture_output=True,
        text=True,
        check=True,
    )
    return recorded(tuple(qa.stdout.splitlines()))


def recorded(lines: tuple[str, ...]) -> set[tuple[str, ...]]:
    """(name, EVR, arch) of `rpm -qa` lines; rpm prints a missing arch (gpg-pubkey) as (none)."""
    rows = (line.split("|")[:3] for line in lines if line)
    return {(n, evr, "" if arch == "(none)" else arch) for n, evr, arch in rows}


@pytest.mark.parametrize("backend", ["sqlite", "ndb"])
def test_syft_lists_what_rpm_lists(tmp_path, docker_client, syft, backend):
    data, name = (
        (rpm_fixtures.SQLITE_RPMDB_B64, "rpmdb.sqlite")
        if backend == "sqlite"
        else (rpm_fixtures.NDB_PACKAGES_B64, "Packages.db")
    )
    db = tmp_path / "rpm"
    db.mkdir()
    (db / name).write_bytes(rpm_fixtures.unpack(data))
    listed = rpm_qa(db) if backend == "sqlite" else recorded(rpm_fixtures.NDB_PACKAGES_QA)
    assert len(listed) == (4 if backend == "sqlite" else 3)
    files = {
        f"/usr/lib/sysimage/rpm/{name}": (db / name).read_bytes(),
        "/etc/os-release": b'ID=fedora\nVERSION_ID="41"\nNAME="Fedora Linux"\n',
    }
    image = image_from_files(docker_client, f"kdt-test/sbom-rpm-{backend}:1", files)
    try:
        doc = catalogue(docker_client, syft, image, tmp_path / "rpm.cdx.json")
    finally:
        docker_client.images.remove(image, force=True)
    assert triples(doc, "rpm") == listed


def test_syft_lists_what_the_apk_database_records(tmp_path, docker_client, syft):
    files = {
        "/lib/apk/db/installed": APK_INSTALLED.encode(),
        "/etc/os-release": b'ID=alpine\nVERSION_ID=3.20.3\nNAME="Alpine Linux"\n',
    }
    image = image_from_files(docker_client, "kdt-test/sbom-apk:1", files)
    try:
        doc = catalogue(docker_client, syft, image, tmp_path / "apk.cdx.json")
    finally:
        docker_client.images.remove(image, force=True)
    assert sorted(f"{n}-{v}" for n, v, _ in triples(doc, "apk")) == APK_INFO_V
    assert {a for _, _, a in triples(doc, "apk")} == {"x86_64"}


def test_an_image_without_a_package_manager_gets_its_go_modules(tmp_path, docker_client, syft):
    """As Hadron: built from source, no dpkg, rpm or apk; its binaries still say what they hold."""
    files = {
        "/usr/bin/crane": tool("crane").read_bytes(),  # a real Go binary, with its build info
        "/etc/os-release": b'ID=hadron\nNAME="Hadron Linux"\nVERSION_ID=0.5.1\n',
    }
    image = image_from_files(
        docker_client, "kdt-test/sbom-hadron:1", files, modes={"/usr/bin/crane": 0o755}
    )
    try:
        doc = catalogue(docker_client, syft, image, tmp_path / "hadron.cdx.json")
    finally:
        docker_client.images.remove(image, force=True)
    purls = sbom.component_purls(doc)
    assert not changelog.sbom_packages(doc)  # no distro package...
    assert "pkg:golang/github.com/google/go-containerregistry@v0.22.1" in purls  # ...but modules
    assert any(p.startswith("pkg:golang/stdlib@") for p in purls)


def test_the_same_image_gives_the_same_bytes_and_another_a_new_serial(
    tmp_path, docker_client, syft
):
    base = debian_base(docker_client)
    first = catalogue(docker_client, syft, base, tmp_path / "a.cdx.json")
    again = catalogue(docker_client, syft, base, tmp_path / "b.cdx.json")
    assert (tmp_path / "a.cdx.json").read_bytes() == (tmp_path / "b.cdx.json").read_bytes()
    created = docker_client.images.get(base).attrs["Created"][:19] + "Z"
    assert first["metadata"]["timestamp"] == created  # the image's time, not the run's
    assert first["metadata"]["component"]["name"] == "ghcr.io/o/distro"
    assert first["specVersion"] == "1.6"
    files = {"/etc/os-release": b"ID=debian\nVERSION_ID=12\n"}
    other = image_from_files(docker_client, "kdt-test/sbom-other:1", files)
    try:
        doc = catalogue(docker_client, syft, other, tmp_path / "c.cdx.json")
    finally:
        docker_client.images.remove(other, force=True)
    assert doc["serialNumber"] != again["serialNumber"]


def test_a_missing_syft_image_is_one_line(tmp_path, docker_client):
    base = debian_base(docker_client)
    with pytest.raises(StepError) as caught:
        catalogue(docker_client, "127.0.0.1:9/kdt/no-syft:v0", base, tmp_path / "x.cdx.json")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "x.cdx.json").exists()

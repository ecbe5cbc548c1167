"""The vulnerability database and scan for real: grype in its image, a listing on 127.0.0.1.

The databases are real grype v6 databases made by grype's own builder
(tests/support/vulndb.py); the listing is served over HTTP as grype.anchore.io
serves its own. What must fail loudly does: an archive that is not the pinned
one, a dead listing, a database without advisories, no database at all.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kairos_distro import config, pins, scan, vulndb, vulns
from kairos_distro.runner import Runner, StepError
from tests.support import vulndb as builder
from tests.support.bake import bake
from tests.support.tools import tool_image
from tests.support.vulnserver import VulnDbServer

pytestmark = pytest.mark.e2e

CVE = "CVE-2026-5151"
STATUS = """\
Package: kdt-hello
Status: install ok installed
Architecture: amd64
Version: 1.0-1

"""


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def grype(docker_client) -> str:
    return tool_image(docker_client, "grype")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(vulndb.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def release_file(tmp_path_factory) -> Path:
    repo = bake(tmp_path_factory.mktemp("bake"), base_image="debian:12", project="kdt-scan")
    return repo / "release.yaml"


@pytest.fixture
def server(tmp_path):
    advisory = builder.debian_advisory(CVE, "kdt-hello", "1.1-1", "High")
    with VulnDbServer(tmp_path / "listing") as served:
        served.publish({"debian": [advisory]}, now())
        yield served


def release_with(release_file: Path, grype: str, pin: str) -> config.Release:
    return dataclasses.replace(config.load(release_file), grype=grype, vulndb=pin)


def sbom_of(directory: Path) -> Path:
    """A CycloneDX SBOM of a Debian 12 root holding kdt-hello 1.0-1, written by the real syft."""
    from tests.support.clients import call, tool

    root = directory / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "var/lib/dpkg/status").write_text(STATUS)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    made = call([tool("syft"), "scan", f"dir:{root}", "-o", "cyclonedx-json", "-q"])
    assert made.returncode == 0, made.stderr
    out = directory / "sbom" / "hello.cdx.json"
    out.parent.mkdir()
    out.write_text(made.stdout)
    return out


def test_a_pinned_database_is_fetched_once_and_finds_the_advisory(
    tmp_path, cache, server, grype, release_file
):
    runner = Runner(out=io.StringIO())
    rel = release_with(release_file, grype, server.pin)
    db = scan.database(runner, rel)
    assert not db.followed and str(db.pin) == server.pin
    server.stop()  # from now on the cache alone: no download
    assert scan.database(runner, rel).path == db.path
    report = vulns.parse(vulndb.scan(runner, "test", grype, db.path, sbom_of(tmp_path)))
    (finding,) = report.findings
    assert finding == vulns.Finding(CVE, "kdt-hello", "1.0-1", "high", "1.1-1", "deb")
    assert report.database.built is not None and report.database.age_days(now()) == 0
    assert runner.out.getvalue().count("downloading") == 1


def test_an_archive_that_is_not_the_pinned_one_is_refused(cache, server, grype, release_file):
    wrong = server.pin.rsplit("sha256:", 1)[0] + "sha256:" + "0" * 64
    with pytest.raises(StepError) as caught:
        scan.database(Runner(out=io.StringIO()), release_with(release_file, grype, wrong))
    assert "is not the pinned archive" in str(caught.value) and "\n" not in str(caught.value)
    assert not list((cache / "archives").iterdir())  # nothing half-downloaded is kept


def test_an_unpinned_database_follows_the_listing_and_a_dead_one_is_one_line(
    cache, server, grype, release_file, monkeypatch
):
    monkeypatch.setenv(vulndb.LISTING_ENV, server.listing)
    runner = Runner(out=io.StringIO())
    db = scan.database(runner, release_with(release_file, grype, ""))
    assert db.followed and str(db.pin) == server.pin
    assert "vulndb is not pinned" in runner.out.getvalue()
    server.stop()
    with pytest.raises(StepError) as caught:
        scan.database(runner, release_with(release_file, grype, ""))
    assert f"cannot read the listing {server.listing}" in str(caught.value)


def test_a_database_without_advisories_is_refused(cache, server, grype, release_file):
    rel = release_with(release_file, grype, server.pin)
    db = scan.database(Runner(out=io.StringIO()), rel)
    with sqlite3.connect(db.path / vulndb.SCHEMA_DIR / vulndb.DB_FILE) as conn:
        conn.execute("DELETE FROM vulnerability_handles")  # emptied, as a broken mirror might
    with pytest.raises(StepError) as caught:
        scan.database(Runner(out=io.StringIO()), rel)
    assert "holds no vulnerabilities: refusing to call images clean" in str(caught.value)


def test_no_database_at_all_fails_the_scan(tmp_path, grype):
    empty = tmp_path / "nodb"
    empty.mkdir()
    with pytest.raises(StepError) as caught:
        vulndb.scan(Runner(out=io.StringIO()), "test", grype, empty, sbom_of(tmp_path))
    assert "database does not exist" in str(caught.value)


def test_an_old_database_says_so_loudly(tmp_path, cache, grype, release_file):
    advisory = builder.debian_advisory(CVE, "kdt-hello", "1.1-1", "High")
    with VulnDbServer(tmp_path / "old") as old:
        old.publish({"debian": [advisory]}, now() - timedelta(days=30))
        rel = release_with(release_file, grype, old.pin)
        db = scan.database(Runner(out=io.StringIO()), rel)
    report = vulns.parse(vulndb.scan(Runner(), "test", grype, db.path, sbom_of(tmp_path)))
    assert scan.age_warning(rel, report) == (
        "WARNING: vulnerability database is 30 days old (max_age 7): run `invoke bump vulndb`"
    )


def test_bump_vulndb_pins_the_listings_newest_archive(tmp_path, server, monkeypatch):
    repo = bake(tmp_path / "bake", base_image="debian:12", project="kdt-bump")
    path = repo / "release.yaml"
    before = path.read_text()
    monkeypatch.setenv(vulndb.LISTING_ENV, server.listing)
    change = pins.plan(path, "vulndb")
    pins.apply(change)
    assert (change.old, change.new) == ("", server.pin)
    after = path.read_text()
    assert after == before.replace('vulndb: ""', f'vulndb: "{server.pin}"')
    assert config.load(path).vulndb == server.pin
    listing = json.loads((server.directory / "latest.json").read_text())
    assert server.pin.endswith(listing["checksum"])

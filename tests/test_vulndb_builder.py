"""The test vulnerability DBs are real: the pinned grype imports, reports and scans with them.

tests/support/vulndb.py builds them offline with grype's own builder; syft
makes the SBOMs from tiny Debian 12 and Alpine 3.20 trees.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import vulndb
from tests.support.clients import call, tool

# The pinned grype and syft come from .ci/setup (`nox -s fast` skips these).
pytestmark = pytest.mark.e2e

CVE, PACKAGE, VULNERABLE, FIXED = "CVE-2026-0001", "kdt-demo", "1.0-1", "1.0-2"
APK_CVE, APK_VULNERABLE, APK_FIXED = "CVE-2026-0003", "1.0-r0", "1.0-r1"
RECORDS = {
    "debian": [
        vulndb.debian_advisory(CVE, PACKAGE, FIXED, "High"),
        # another release: a Debian 12 scan must not report it
        vulndb.debian_advisory("CVE-2026-0002", PACKAGE, FIXED, "Low", release="11"),
    ],
    "alpine": [vulndb.alpine_advisory(APK_CVE, PACKAGE, APK_FIXED, "Medium")],
}
# Old enough for grype's age check (5 days by default) to refuse it.
BUILT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _import(latest: Path, cache: Path) -> None:
    proc = call([tool("grype"), "db", "import", vulndb.archive(latest)], vulndb.grype_env(cache))
    assert proc.returncode == 0, proc.stderr


def _status(cache: Path, **env: str) -> tuple[int, dict]:
    proc = call([tool("grype"), "db", "status", "-o", "json"], {**vulndb.grype_env(cache), **env})
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> tuple[Path, Path]:
    """(latest.json, a grype cache dir it was imported into), built 30 days ago."""
    top = tmp_path_factory.mktemp("vulndb")
    latest = vulndb.build(top / "db", RECORDS, BUILT)
    _import(latest, top / "cache")
    return latest, top / "cache"


def _debian_root(root: Path, version: str) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        f"Package: {PACKAGE}\nStatus: install ok installed\nArchitecture: amd64\n"
        f"Version: {version}\nMaintainer: Test <test@example.invalid>\n"
        "Description: a test package\n\n"
    )


def _alpine_root(root: Path, version: str) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=alpine\nVERSION_ID=3.20.3\n")
    (root / "lib/apk/db").mkdir(parents=True)
    (root / "lib/apk/db/installed").write_text(
        f"P:{PACKAGE}\nV:{version}\nA:x86_64\nS:1\nI:1\nT:a test package\no:{PACKAGE}\n\n"
    )


def _syft(root: Path) -> Path:
    sbom = root.parent / f"{root.name}.cdx.json"
    env = {"SYFT_CHECK_FOR_APP_UPDATE": "false"}
    proc = call([tool("syft"), f"dir:{root}", "-o", f"cyclonedx-json={sbom}"], env)
    assert proc.returncode == 0, proc.stderr
    return sbom


@pytest.fixture(scope="module")
def sboms(tmp_path_factory) -> dict[str, Path]:
    """CycloneDX SBOMs by syft, keyed "debian-1.0-1" etc.; syft runs in parallel (~2 s each)."""
    top = tmp_path_factory.mktemp("roots")
    makers = {"debian": _debian_root, "alpine": _alpine_root}
    wanted = [("debian", VULNERABLE), ("debian", FIXED)]
    wanted += [("alpine", APK_VULNERABLE), ("alpine", APK_FIXED)]
    roots = []
    for distro, version in wanted:
        roots.append(top / f"{distro}-{version}")
        makers[distro](roots[-1], version)
    with ThreadPoolExecutor() as pool:
        return {root.name: sbom for root, sbom in zip(roots, pool.map(_syft, roots), strict=True)}


def _scan(sbom: Path, cache: Path) -> dict:
    proc = call([tool("grype"), f"sbom:{sbom}", "-o", "json"], vulndb.grype_env(cache))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _files(cache: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(cache.rglob("*"))}


def test_the_archive_imports_with_the_built_time(db) -> None:
    latest, cache = db
    document = json.loads(latest.read_text())
    assert document["built"] == _stamp(BUILT) and document["schemaVersion"].startswith("v6.")
    digest = hashlib.sha256(vulndb.archive(latest).read_bytes()).hexdigest()
    assert document["checksum"] == f"sha256:{digest}"
    code, status = _status(cache)
    assert code == 0 and status["valid"], status
    assert status["built"] == _stamp(BUILT) and status["from"] == "manual import"
    assert status["schemaVersion"] == document["schemaVersion"]
    # with the age check on (grype's default), a 30-day-old DB is refused
    code, status = _status(cache, GRYPE_DB_VALIDATE_AGE="true")
    assert code == 1 and not status["valid"]
    assert "max allowed age is 5 days" in status["error"]


def test_a_fresh_db_passes_the_age_check(tmp_path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    _import(vulndb.build(tmp_path / "db", RECORDS, now), tmp_path / "cache")
    code, status = _status(tmp_path / "cache", GRYPE_DB_VALIDATE_AGE="true")
    assert code == 0 and status["valid"] and status["built"] == _stamp(now), status


@pytest.mark.parametrize(
    ("distro", "vulnerable", "fixed", "cve", "severity"),
    [
        ("debian", VULNERABLE, FIXED, CVE, "High"),
        ("alpine", APK_VULNERABLE, APK_FIXED, APK_CVE, "Medium"),
    ],
)
def test_a_scan_finds_exactly_the_advisory(
    db, sboms, distro, vulnerable, fixed, cve, severity
) -> None:
    _, cache = db
    before = _files(cache)
    report = _scan(sboms[f"{distro}-{vulnerable}"], cache)
    (match,) = report["matches"]
    assert match["vulnerability"]["id"] == cve
    assert match["vulnerability"]["severity"] == severity
    assert match["vulnerability"]["fix"] == {"versions": [fixed], "state": "fixed"}
    assert (match["artifact"]["name"], match["artifact"]["version"]) == (PACKAGE, vulnerable)
    assert report["descriptor"]["db"]["status"]["built"] == _stamp(BUILT)
    assert set(report["descriptor"]["db"]["providers"]) == {"debian", "alpine"}
    assert _scan(sboms[f"{distro}-{fixed}"], cache)["matches"] == []
    assert _files(cache) == before  # scans only read the cache dir


def test_no_database_fails_the_scan(sboms, tmp_path) -> None:
    cache = tmp_path / "cache"
    env = {**vulndb.grype_env(cache), "NO_COLOR": "1"}
    proc = call([tool("grype"), f"sbom:{sboms[f'debian-{VULNERABLE}']}", "-o", "json"], env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "failed to load vulnerability db: database does not exist" in proc.stderr
    assert not cache.exists()  # grype creates nothing there


@pytest.mark.parametrize("records", [{}, {"debian": []}])
def test_grypes_builder_refuses_an_empty_db(records, tmp_path) -> None:
    with pytest.raises(RuntimeError, match="no records were processed"):
        vulndb.build(tmp_path, records, BUILT)
    assert not os.listdir(tmp_path)

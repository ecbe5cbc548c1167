"""Scan stage: the run's database, each cell's report beside its SBOM, the policy's verdict,
the age warning, and the report as cosign's vuln predicate.

grype is a fake runner printing reports shaped as grype writes them
(grype_report.py); the database is served on 127.0.0.1 (vulndb_fakes.py).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grype_report as grype
import pytest
import static_http
import vulndb_fakes as fakes
from fake_runner import FakeRunner
from package_helpers import UBUNTU_CORE

from kairos_distro import naming, scan, vulndb, vulns
from kairos_distro.build import Built
from kairos_distro.config import Release
from kairos_distro.runner import Skip, StepError

GRYPE = "docker.io/anchore/grype:v0.121.2"
NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
CRITICAL = grype.match("CVE-2026-0001", "openssl", "3.0.11", "Critical", ["3.0.13"])
MEDIUM = grype.match("CVE-2026-0003", "curl", "7.88.1-10", "Medium")
REPORT_NAME = naming.artifact_name(UBUNTU_CORE) + scan.REPORT_SUFFIX


def built_of(rel: Release) -> Built:
    return Built(rel.cells[0], "sha256:" + "e" * 64, "kairos-local/x:amd64-generic", UBUNTU_CORE)


def with_sbom(out: Path, rel: Release) -> Path:
    sbom = out / rel.cells[0].id / (naming.artifact_name(UBUNTU_CORE) + naming.SBOM_SUFFIX)
    sbom.parent.mkdir(parents=True, exist_ok=True)
    sbom.write_text('{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}')
    return sbom


def database(tmp_path: Path) -> scan.Database:
    pin = vulndb.Pin("https://example.test/db.tar.zst", "sha256:" + "5" * 64)
    return scan.Database(tmp_path / "db", pin, False)


def grype_prints(*matches: dict[str, Any], **kw: Any) -> FakeRunner:
    return FakeRunner(out=io.StringIO(), outputs={"grype": grype.text(*matches, **kw)})


def aged(days: int) -> vulns.Report:
    return vulns.Report((), vulns.Database(NOW - timedelta(days=days)))


# --- scan_cell: grype's report, kept beside the SBOM ------------------------------------------


def test_scan_cell_keeps_grypes_whole_report_beside_the_sbom(tmp_path, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    out = tmp_path / "artifacts"
    sbom = with_sbom(out, rel)
    runner = grype_prints(MEDIUM, CRITICAL)
    db = database(tmp_path)
    report = scan.scan_cell(runner, rel, built_of(rel), db, out)
    assert report.headline() == "1 critical, 1 medium"
    assert report.database.checksum == db.pin.checksum  # the pin the report was judged by
    (call,) = runner.containers
    assert call["command"] == [f"sbom:/in/{sbom.name}", "--output", "json"]
    assert call["volumes"][str(db.path)] == {"bind": "/db", "mode": "ro"}
    dest = out / rel.cells[0].id / REPORT_NAME
    assert dest.read_bytes() == grype.text(MEDIUM, CRITICAL)  # as grype wrote it
    assert scan.report_file(out, rel.cells[0]) == dest
    assert report.database.built is not None  # the fixture's database is months old
    age = (datetime.now(UTC) - report.database.built).days
    assert runner.out.getvalue() == (
        f"[{rel.cells[0].id}] vulnerabilities: 1 critical, 1 medium; database {age} days old, "
        f"over max_age 7 ({REPORT_NAME})\n"
    )


def test_scan_cell_without_an_sbom_says_to_make_one(tmp_path, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    runner = grype_prints()
    with pytest.raises(StepError) as caught:
        scan.scan_cell(runner, rel, built_of(rel), database(tmp_path), tmp_path / "artifacts")
    cell = rel.cells[0].id
    assert (caught.value.cell, caught.value.step, caught.value.reason) == (
        cell,
        "scan",
        f"no SBOM in {tmp_path / 'artifacts' / cell}: run `invoke iso` first",
    )
    assert runner.containers == []


def test_a_report_grype_did_not_write_keeps_no_file(tmp_path, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    out = tmp_path / "artifacts"
    with_sbom(out, rel)
    runner = FakeRunner(out=io.StringIO(), outputs={"grype": b"[0000] ERROR db is broken\n"})
    with pytest.raises(StepError) as caught:
        scan.scan_cell(runner, rel, built_of(rel), database(tmp_path), out)
    assert caught.value.step == "scan"
    assert caught.value.reason.startswith("grype wrote no JSON report (")
    assert scan.report_file(out, rel.cells[0]) is None


def test_report_file_is_none_without_artifacts(tmp_path, make_release) -> None:
    cell = make_release({"arch": "amd64"}).cells[0]
    assert scan.report_file(None, cell) is None
    assert scan.report_file(tmp_path, cell) is None


# --- the age of the database ----------------------------------------------------------------


@pytest.mark.parametrize("days, loud", [(0, False), (7, False), (8, True), (400, True)])
def test_age_warning_after_max_age_days(make_release, days, loud) -> None:
    rel = make_release({"arch": "amd64"})  # max_age: 7, the default
    warning = scan.age_warning(rel, aged(days), NOW)
    assert warning == (
        f"WARNING: vulnerability database is {days} days old (max_age 7): run `invoke bump vulndb`"
        if loud
        else ""
    )


def test_age_warning_follows_release_yamls_max_age(make_release) -> None:
    rel = make_release({"arch": "amd64"}, vulnerabilities={"max_age": 1})
    assert scan.age_warning(rel, aged(1), NOW) == ""
    assert "is 2 days old (max_age 1)" in scan.age_warning(rel, aged(2), NOW)


def test_a_database_of_unknown_age_says_nothing(make_release) -> None:
    report = vulns.Report((), vulns.Database(None))
    assert scan.age_warning(make_release({"arch": "amd64"}), report, NOW) == ""


def test_checked_says_an_old_database_loudly_then_judges(tmp_path, make_release) -> None:
    rel = make_release({"arch": "amd64"}, vulnerabilities={"fail_on": "critical"})
    out = tmp_path / "artifacts"
    with_sbom(out, rel)
    runner = grype_prints(CRITICAL, built="2020-01-01T00:00:00Z")
    with pytest.raises(StepError) as caught:
        scan.checked(runner, rel, built_of(rel), database(tmp_path), out)
    assert caught.value.reason == (
        "CVE-2026-0001 (critical) in openssl 3.0.11, fixed in 3.0.13: at or above fail_on: critical"
    )
    lines = runner.out.getvalue().splitlines()
    assert lines[1].startswith(f"[{rel.cells[0].id}] WARNING: vulnerability database is ")
    assert lines[1].endswith("days old (max_age 7): run `invoke bump vulndb`")
    # Refused, yet kept: the report says why.
    assert scan.report_file(out, rel.cells[0]) is not None


# --- before publish: the report `invoke scan` left, or a scan now ------------------------------


def test_before_publish_judges_the_report_invoke_scan_left(tmp_path, make_release) -> None:
    rel = make_release({"arch": "amd64"}, vulnerabilities={"fail_on": "high"})
    out = tmp_path / "artifacts"
    report = out / rel.cells[0].id / REPORT_NAME
    report.parent.mkdir(parents=True)
    report.write_bytes(grype.text(MEDIUM))
    asked: list[int] = []
    found = scan.before_publish(FakeRunner(), rel, built_of(rel), out, lambda: asked.append(1))
    assert found is not None and found.headline() == "1 medium"
    assert asked == []  # no database needed: the report is there
    report.write_bytes(grype.text(CRITICAL))
    with pytest.raises(StepError, match=r"at or above fail_on: high$"):
        scan.before_publish(FakeRunner(), rel, built_of(rel), out, lambda: asked.append(1))


def test_before_publish_refuses_a_report_it_cannot_read(tmp_path, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    report = tmp_path / rel.cells[0].id / REPORT_NAME
    report.parent.mkdir(parents=True)
    report.write_text('{"matches": "none"}')
    with pytest.raises(StepError) as caught:
        scan.before_publish(FakeRunner(), rel, built_of(rel), tmp_path, lambda: None)
    assert caught.value.reason == f"{report}: grype's report has no list of matches"


def test_before_publish_scans_when_invoke_scan_was_not_run(tmp_path, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    out = tmp_path / "artifacts"
    with_sbom(out, rel)
    runner = grype_prints(MEDIUM)
    found = scan.before_publish(runner, rel, built_of(rel), out, lambda: database(tmp_path))
    assert found is not None and found.headline() == "1 medium"
    assert scan.report_file(out, rel.cells[0]) is not None


def test_before_publish_without_a_local_engine_skips_unless_fail_on_is_set(
    tmp_path, make_release
) -> None:
    def no_socket() -> scan.Database:
        raise Skip("no local Docker socket")

    rel = make_release({"arch": "amd64"})
    runner = FakeRunner(out=io.StringIO())
    assert scan.before_publish(runner, rel, built_of(rel), tmp_path, no_socket) is None
    assert runner.out.getvalue() == f"[{rel.cells[0].id}] SKIPPED scan: no local Docker socket\n"
    strict = make_release({"arch": "amd64"}, vulnerabilities={"fail_on": "medium"})
    with pytest.raises(StepError) as caught:
        scan.before_publish(runner, strict, built_of(strict), tmp_path, no_socket)
    assert caught.value.reason == (
        "vulnerabilities.fail_on is set, but the scan cannot run: no local Docker socket"
    )


# --- the run's database -------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch, tmp_path) -> Iterator[static_http.Site]:
    with static_http.serve({}) as site:
        site.bodies["/v6/" + fakes.NAME] = fakes.ARCHIVE
        latest = {"path": fakes.NAME, "checksum": fakes.pin_of("x").split("?checksum=")[1]}
        site.bodies["/v6/latest.json"] = json.dumps(latest).encode()
        monkeypatch.setenv(vulndb.LISTING_ENV, f"{site.url}/v6/latest.json")
        monkeypatch.setenv(vulndb.CACHE_ENV, str(tmp_path / "cache"))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
        yield site


def importing(advisories: int = 3) -> FakeRunner:
    return FakeRunner(out=io.StringIO(), outputs={"grype db import": fakes.importer(advisories)})


def test_database_follows_the_pin(served, tmp_path, make_release) -> None:
    pin = fakes.pin_of(f"{served.url}/v6/{fakes.NAME}")
    rel = make_release({"arch": "amd64"}, vulndb=pin)
    runner = importing()
    db = scan.database(runner, rel)
    assert (str(db.pin), db.followed) == (pin, False)
    assert (db.path / "6" / "vulnerability.db").is_file()
    assert runner.containers[0]["image"] == rel.grype
    assert served.asked == [f"/v6/{fakes.NAME}"]  # the listing is not read


def test_an_unpinned_database_follows_the_listing_and_says_so(served, make_release) -> None:
    runner = importing()
    db = scan.database(runner, make_release({"arch": "amd64"}))
    assert db.followed and str(db.pin) == fakes.pin_of(f"{served.url}/v6/{fakes.NAME}")
    assert runner.out.getvalue().splitlines()[-1] == (
        f"[vulndb] vulndb is not pinned: scanning against today's {served.url}/v6/{fakes.NAME} "
        "(`invoke bump vulndb` pins it)"
    )


def test_an_empty_database_is_refused(served, make_release) -> None:
    # A database without advisories would call every image clean.
    with pytest.raises(StepError) as caught:
        scan.database(importing(advisories=0), make_release({"arch": "amd64"}))
    assert (caught.value.cell, caught.value.step) == ("vulndb", "scan")
    assert caught.value.reason.endswith("holds no vulnerabilities: refusing to call images clean")


def test_a_file_that_is_no_grype_database_is_refused(served, tmp_path, make_release) -> None:
    def not_sqlite(call: dict[str, Any]) -> bytes:
        mounts = {b["bind"]: Path(h) for h, b in call["volumes"].items()}
        db = mounts["/db"] / "6" / "vulnerability.db"
        db.parent.mkdir(parents=True)
        db.write_text("not a database")
        return b""

    runner = FakeRunner(out=io.StringIO(), outputs={"grype db import": not_sqlite})
    with pytest.raises(StepError) as caught:
        scan.database(runner, make_release({"arch": "amd64"}))
    assert "is not a grype v6 database (" in caught.value.reason
    assert "\n" not in caught.value.reason


def test_a_listing_that_cannot_be_read_fails_the_scan_in_one_line(served, make_release) -> None:
    served.bodies.clear()
    with pytest.raises(StepError) as caught:
        scan.database(importing(), make_release({"arch": "amd64"}))
    assert caught.value.reason == (
        f"vulndb: cannot read the listing {served.url}/v6/latest.json (HTTP 404)"
    )


def test_a_remote_engine_skips_the_database(served, monkeypatch, make_release) -> None:
    # grype reads the SBOM and the database through bind mounts: the engine must be local.
    monkeypatch.setenv("DOCKER_HOST", "tcp://docker:2376")
    runner = importing()
    with pytest.raises(Skip) as caught:
        scan.database(runner, make_release({"arch": "amd64"}))
    assert "needs a local Docker socket (DOCKER_HOST is tcp://docker:2376)" in str(caught.value)
    assert runner.containers == [] and served.asked == []


# --- cosign's vuln predicate ------------------------------------------------------------------


def test_predicate_wraps_the_whole_report_as_cosigns_vuln_predicate(tmp_path) -> None:
    path = tmp_path / REPORT_NAME
    path.write_bytes(grype.text(CRITICAL, MEDIUM))
    predicate = scan.predicate(path)
    assert scan.PREDICATE == "https://cosign.sigstore.dev/attestation/vuln/v1"
    assert predicate == {
        "invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": "pkg:golang/github.com/anchore/grype@v0.121.2",
            "version": "0.121.2",
            "db": {"uri": grype.DB_FROM, "version": "v6.1.10"},
            "result": json.loads(path.read_text()),  # the whole report
        },
        "metadata": {"scanStartedOn": grype.STARTED, "scanFinishedOn": grype.STARTED},
    }
    assert json.loads(json.dumps(predicate)) == predicate  # what the statement carries


def test_predicate_of_a_report_without_a_descriptor_is_still_one(tmp_path) -> None:
    path = tmp_path / REPORT_NAME
    path.write_text('{"matches": []}')
    scanner = scan.predicate(path)["scanner"]
    assert scanner["db"] == {"uri": "", "version": ""}
    assert scanner["result"] == {"matches": []}

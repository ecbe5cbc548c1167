"""Vulnerability reports: grype's JSON read into findings, counted, kept, compared, grouped.

The reports are shaped as grype v0.121.2 writes them (grype_report.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import grype_report as grype
import pytest

from kairos_distro import vulns
from kairos_distro.vulns import Database, Finding, Report, ReportError

BUILT = datetime(2026, 5, 1, 3, 21, 47, tzinfo=UTC)
OPENSSL = Finding(
    "CVE-2026-0001", "openssl", "3.0.11-1~deb12u2", "critical", "3.0.13-1~deb12u1", "deb"
)
ZLIB = Finding("CVE-2026-0002", "zlib1g", "1:1.2.13.dfsg-1", "high", "", "deb")
NET = Finding("GHSA-qppj-fm5r-hxr3", "golang.org/x/net", "v0.23.0", "medium", "0.33.0", "go-module")
TAR = Finding("CVE-2005-2541", "tar", "1.34+dfsg-1.2", "negligible", "", "deb")
DB = Database(BUILT, "v6.1.10", "sha256:" + "5" * 64)


def row(f: Finding) -> list[str]:
    """A finding as records and summaries keep it."""
    return [f.id, f.package, f.version, f.severity, f.fix, f.kind]


def report(*findings: Finding, database: Database = DB) -> Report:
    return Report(tuple(findings), database)


# --- parse ------------------------------------------------------------------------------


def test_parse_reads_each_match_as_a_finding() -> None:
    text = grype.text(
        grype.match("CVE-2026-0002", "zlib1g", "1:1.2.13.dfsg-1", "High"),
        grype.match(
            "CVE-2026-0001", "openssl", "3.0.11-1~deb12u2", "Critical", ["3.0.13-1~deb12u1"]
        ),
        grype.match(
            "GHSA-qppj-fm5r-hxr3", "golang.org/x/net", "v0.23.0", "Medium", ["0.33.0"], "go-module"
        ),
        grype.match("CVE-2005-2541", "tar", "1.34+dfsg-1.2", "Negligible"),
    )
    found = vulns.parse(text, "sha256:" + "5" * 64)
    # Most severe first, whatever order grype printed them in.
    assert found.findings == (OPENSSL, ZLIB, NET, TAR)
    assert found.database == DB
    assert vulns.parse(text.decode()) == Report(found.findings, Database(BUILT, "v6.1.10"))


def test_the_first_fixed_version_is_the_fix() -> None:
    text = grype.text(
        grype.match("CVE-1-2", "curl", "7.88.1-10", "Low", ["7.88.1-10+deb12u5", "8"])
    )
    (finding,) = vulns.parse(text).findings
    assert (finding.fix, finding.line()) == (
        "7.88.1-10+deb12u5",
        "CVE-1-2 (low) in curl 7.88.1-10, fixed in 7.88.1-10+deb12u5",
    )
    assert ZLIB.line() == "CVE-2026-0002 (high) in zlib1g 1:1.2.13.dfsg-1, no fix yet"


@pytest.mark.parametrize("severity", ["Unknown", "", None, "Important", "CRITICAL!"])
def test_a_severity_grype_does_not_rank_is_unknown(severity) -> None:
    doc = grype.document(grype.match("CVE-1-2", "curl", "7.88.1-10"))
    doc["matches"][0]["vulnerability"]["severity"] = severity
    (finding,) = vulns.parse(json.dumps(doc)).findings
    assert finding.severity == "unknown"


def test_severity_names_are_read_in_any_case() -> None:
    text = grype.text(grype.match("CVE-1-2", "curl", "7", "cRiTiCaL"))
    assert vulns.parse(text).findings[0].severity == "critical"


def test_the_same_match_twice_is_one_finding() -> None:
    # grype matches one package by its distro record and by its CPE: the same finding.
    one = grype.match("CVE-2026-0001", "openssl", "3.0.11-1~deb12u2", "Critical", ["3.0.13"])
    twin = json.loads(json.dumps(one))
    twin["matchDetails"][0]["type"] = "cpe-match"
    found = vulns.parse(grype.text(one, twin))
    assert len(found.findings) == 1
    assert found.counts()["critical"] == 1


def test_one_vulnerability_in_two_packages_is_two_findings() -> None:
    found = vulns.parse(
        grype.text(
            grype.match("CVE-2026-0001", "openssl", "3.0.11", "High"),
            grype.match("CVE-2026-0001", "libssl3", "3.0.11", "High"),
        )
    )
    assert [f.package for f in found.findings] == ["libssl3", "openssl"]


def test_a_report_without_matches_is_clean() -> None:
    found = vulns.parse(grype.text())
    assert (found.findings, found.headline()) == ((), "none")
    assert found.database.built == BUILT


def test_the_database_of_an_older_grype_is_read_too() -> None:
    # Before v6, descriptor.db held the status fields itself.
    flat = {"built": "2024-05-01T01:02:03Z", "schemaVersion": 5}
    assert vulns.database_of({"db": flat}) == Database(
        datetime(2024, 5, 1, 1, 2, 3, tzinfo=UTC), "5"
    )
    assert vulns.database_of({}) == Database(None, "")


@pytest.mark.parametrize("built", ["", "yesterday", None, 12])
def test_a_database_without_a_readable_build_time_has_no_age(built) -> None:
    doc = grype.document()
    doc["descriptor"]["db"]["status"]["built"] = built
    found = vulns.parse(json.dumps(doc))
    assert found.database.built is None
    assert found.database.age_days(BUILT) is None


def test_a_build_time_without_a_zone_is_utc() -> None:
    assert vulns.database_of({"db": {"built": "2026-05-01T03:21:47"}}).built == BUILT


@pytest.mark.parametrize(
    "text, message",
    [
        (b"", "grype wrote no JSON report ("),
        (b"ERROR failed to load vulnerability db", "grype wrote no JSON report ("),
        (b"[]", "grype's report has no list of matches"),
        (b"{}", "grype's report has no list of matches"),
        (b'{"matches": {}}', "grype's report has no list of matches"),
        (b'{"matches": null}', "grype's report has no list of matches"),
        (
            json.dumps({"matches": [{"vulnerability": {"id": "CVE-1-2"}, "artifact": {}}]}),
            "grype match without an ID or a package (",
        ),
        (
            json.dumps({"matches": [{"vulnerability": {}, "artifact": {"name": "x"}}]}),
            "grype match without an ID or a package (",
        ),
        (json.dumps({"matches": [{}]}), "grype match without an ID or a package ("),
    ],
    ids=[
        "empty",
        "log-line",
        "list",
        "no-matches",
        "matches-mapping",
        "matches-null",
        "no-package",
        "no-id",
        "empty-match",
    ],
)
def test_what_is_not_a_grype_report_is_one_line(text, message) -> None:
    with pytest.raises(ReportError) as caught:
        vulns.parse(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "matches",
    [
        ["CVE-2026-0001"],
        [None],
        [{"vulnerability": "CVE-2026-0001", "artifact": {"name": "openssl"}}],
        [{"vulnerability": {"id": "CVE-2026-0001"}, "artifact": ["openssl"]}],
    ],
    ids=["string", "null", "vulnerability-string", "artifact-list"],
)
def test_a_match_that_is_not_an_object_is_refused_not_skipped(matches) -> None:
    # Skipping it would call the image clean; a crash would stop every cell's release.
    with pytest.raises(ReportError) as caught:
        vulns.parse(json.dumps({"matches": matches}))
    assert str(caught.value).startswith("grype match without an ID or a package (")


def test_a_long_bad_match_is_cut_short_in_its_one_line() -> None:
    bad = {"vulnerability": {"description": "x" * 5000}, "artifact": {}}
    with pytest.raises(ReportError) as caught:
        vulns.parse(json.dumps({"matches": [bad]}))
    assert len(str(caught.value)) < 200


# --- counts and the headline ----------------------------------------------------------


def test_counts_every_severity_most_severe_first() -> None:
    found = report(OPENSSL, ZLIB, NET, TAR, Finding("CVE-9-9", "x", "1", "unknown"))
    assert found.counts() == {
        "critical": 1,
        "high": 1,
        "medium": 1,
        "low": 0,
        "negligible": 1,
        "unknown": 1,
    }
    assert list(found.counts()) == list(vulns.SEVERITIES)


@pytest.mark.parametrize(
    "findings, headline",
    [
        ((), "none"),
        ((OPENSSL,), "1 critical"),
        (
            (OPENSSL, ZLIB, Finding("CVE-2026-0003", "zlib1g", "1", "critical")),
            "2 critical, 1 high",
        ),
        ((TAR, NET), "1 medium, 1 negligible"),  # zeros say nothing
    ],
)
def test_headline_counts_what_there_is(findings, headline) -> None:
    assert report(*findings).headline() == headline


def test_age_is_whole_days_and_never_negative() -> None:
    assert DB.age_days(datetime(2026, 5, 8, 3, 21, 46, tzinfo=UTC)) == 6
    assert DB.age_days(datetime(2026, 5, 8, 3, 21, 47, tzinfo=UTC)) == 7
    assert DB.age_days(datetime(2026, 4, 30, tzinfo=UTC)) == 0  # a clock behind the database


# --- the release record -----------------------------------------------------------------


def test_to_record_keeps_counts_database_and_every_finding() -> None:
    record = vulns.to_record(report(ZLIB, OPENSSL))
    assert record == {
        "counts": {"critical": 1, "high": 1, "medium": 0, "low": 0, "negligible": 0, "unknown": 0},
        "database": {
            "built": "2026-05-01T03:21:47Z",
            "schema": "v6.1.10",
            "checksum": "sha256:" + "5" * 64,
        },
        "findings": [
            ["CVE-2026-0002", "zlib1g", "1:1.2.13.dfsg-1", "high", "", "deb"],
            ["CVE-2026-0001", "openssl", "3.0.11-1~deb12u2", "critical", "3.0.13-1~deb12u1", "deb"],
        ],
    }
    assert json.loads(json.dumps(record)) == record  # a record is JSON


def test_from_record_reads_back_what_to_record_kept() -> None:
    kept = report(OPENSSL, ZLIB, NET, TAR)
    back = vulns.from_record(json.loads(json.dumps(vulns.to_record(kept))))
    assert back is not None
    assert back.findings == kept.findings
    assert (back.database.built, back.database.schema) == (BUILT, "v6.1.10")
    assert back.headline() == kept.headline() == "1 critical, 1 high, 1 medium, 1 negligible"
    empty = vulns.from_record(vulns.to_record(report(database=Database(None))))
    assert empty == Report((), Database(None, ""))


def test_a_record_from_before_the_scan_keeps_no_report() -> None:
    assert vulns.from_record(None) is None
    assert vulns.from_record({}) is None


@pytest.mark.parametrize(
    "raw",
    [
        "none",
        [],
        {"findings": {}},
        {"findings": [5]},
        {"findings": [["CVE-1-2", "x"]]},  # too short
        {"findings": [["CVE-1-2", "x", "1", "high", "", "deb", "extra"]]},  # too long
        {"findings": [["CVE-1-2", "x", "1", "catastrophic", "", "deb"]]},  # no such severity
        {"findings": ["CVE-1-2 x 1"]},
    ],
    ids=[
        "text",
        "list",
        "findings-mapping",
        "number-row",
        "short-row",
        "long-row",
        "unknown-severity",
        "text-row",
    ],
)
def test_an_unreadable_record_keeps_no_report(raw) -> None:
    # A record is read from the registry: what this version cannot read is no report,
    # never a crash when it is counted or compared.
    assert vulns.from_record(raw) is None


def test_a_record_without_its_database_still_has_its_findings() -> None:
    found = vulns.from_record({"findings": [row(OPENSSL)], "database": "gone"})
    assert found == Report((OPENSSL,), Database(None, ""))


# --- what a release fixed ---------------------------------------------------------------


def test_diff_says_what_was_fixed_and_what_is_new() -> None:
    before = report(OPENSSL, ZLIB, TAR)
    patched = Finding(TAR.id, TAR.package, "1.34+dfsg-1.2+deb12u1", "negligible")  # still there
    after = report(ZLIB, patched, NET)
    assert vulns.diff(before, after) == {"fixed": [OPENSSL], "new": [NET]}
    assert vulns.diff(after, after) == {"fixed": [], "new": []}
    assert vulns.diff(report(), after) == {"fixed": [], "new": [ZLIB, NET, patched]}


def test_diff_lists_most_severe_first() -> None:
    low = Finding("CVE-2026-0009", "bash", "5.2", "low")
    assert vulns.diff(report(low, TAR, OPENSSL), report())["fixed"] == [OPENSSL, low, TAR]


def test_grouped_names_each_finding_once_with_its_cells() -> None:
    per_cell = {
        "amd64-generic": {"fixed": [OPENSSL, ZLIB], "new": [NET]},
        "arm64-generic": {"fixed": [OPENSSL], "new": []},
        "arm64-rpi4": {"fixed": [OPENSSL]},
        "riscv64-generic": {},
    }
    assert vulns.grouped(per_cell, "fixed") == [
        (OPENSSL, ["amd64-generic", "arm64-generic", "arm64-rpi4"]),
        (ZLIB, ["amd64-generic"]),
    ]
    assert vulns.grouped(per_cell, "new") == [(NET, ["amd64-generic"])]
    assert vulns.grouped({}, "fixed") == []


def test_a_line_names_up_to_three_cells_and_counts_more() -> None:
    three = ["amd64-generic", "arm64-generic", "arm64-rpi4"]
    assert vulns.line(OPENSSL, three) == (
        "CVE-2026-0001 (critical) in openssl 3.0.11-1~deb12u2, fixed in 3.0.13-1~deb12u1: "
        "amd64-generic, arm64-generic, arm64-rpi4"
    )
    assert vulns.line(ZLIB, [*three, "riscv64-generic"]).endswith(", no fix yet: 4 cells")


def test_changes_json_round_trips() -> None:
    changes = {"fixed": [OPENSSL, TAR], "new": [NET]}
    raw = json.loads(json.dumps(vulns.changes_json(changes)))
    assert raw == {
        "fixed": [row(OPENSSL), row(TAR)],
        "new": [row(NET)],
    }
    assert vulns.changes_from_json(raw) == changes
    assert vulns.changes_json({}) == {"fixed": [], "new": []}
    assert vulns.changes_from_json({}) == {}
    assert vulns.changes_from_json({"fixed": [row(NET)]}) == {
        "fixed": [NET],
        "new": [],
    }


@pytest.mark.parametrize(
    "raw",
    [
        ["CVE-1-2"],
        "fixed",
        {"fixed": [["CVE-1-2"]]},
        {"new": [5]},
        {"fixed": [["CVE-1-2", "x", "1", "catastrophic", "", "deb"]]},
    ],
    ids=["list", "text", "short-row", "number-row", "unknown-severity"],
)
def test_changes_that_are_not_changes_json_are_one_line(raw) -> None:
    with pytest.raises(ReportError) as caught:
        vulns.changes_from_json(raw)
    assert str(caught.value).startswith("not a list of vulnerability changes (")
    assert "\n" not in str(caught.value)

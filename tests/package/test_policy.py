"""Vulnerability policy: release.yaml's `vulnerabilities`, read and refused in one line,
and its verdict on a report (fail_on, the allow list, expired entries)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from kairos_distro import config, policy
from kairos_distro.fields import ConfigError
from kairos_distro.policy import Allowed, Policy
from kairos_distro.vulns import Database, Finding, Report

PATH = Path("release.yaml")
TODAY = date(2026, 5, 1)
OPENSSL = Finding("CVE-2026-0001", "openssl", "3.0.11", "critical", "3.0.13", "deb")
ZLIB = Finding("CVE-2026-0002", "zlib1g", "1.2.13", "high", "", "deb")
NET = Finding("GHSA-qppj-fm5r-hxr3", "golang.org/x/net", "v0.23.0", "medium", "0.33.0")
TAR = Finding("CVE-2005-2541", "tar", "1.34", "negligible")
ODD = Finding("CVE-2026-0009", "odd", "1", "unknown")


def report(*findings: Finding) -> Report:
    return Report(findings, Database(None))


def entry(ident: str = "CVE-2026-0001", **changes: Any) -> dict[str, Any]:
    return {"id": ident, "reason": "not built in", "expires": "2027-01-31", **changes}


def refused(raw: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        policy.parse(raw, PATH)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- parse ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, {}], ids=["absent", "empty"])
def test_defaults_fail_on_nothing_and_warn_after_a_week(raw) -> None:
    assert policy.parse(raw, PATH) == Policy("", 7, ())
    assert Policy() == Policy("", policy.MAX_AGE, ())


@pytest.mark.parametrize("level", ["negligible", "low", "medium", "high", "critical"])
def test_fail_on_takes_each_ranked_severity(level) -> None:
    assert policy.parse({"fail_on": level}, PATH).fail_on == level
    assert policy.parse({"fail_on": level.upper()}, PATH).fail_on == level  # as grype spells it


@pytest.mark.parametrize("off", ["", None])
def test_an_empty_fail_on_is_off(off) -> None:
    assert policy.parse({"fail_on": off}, PATH).fail_on == ""


@pytest.mark.parametrize(
    "value, message",
    [
        (
            "hihg",
            'release.yaml: vulnerabilities.fail_on: "hihg" is not one of negligible, low, '
            "medium, high, critical (or empty: off); did you mean high?",
        ),
        (
            "unknown",  # grype's name for "not ranked": nothing is at or above it
            'release.yaml: vulnerabilities.fail_on: "unknown" is not one of negligible, low, '
            "medium, high, critical (or empty: off)",
        ),
        (
            "severe",
            'release.yaml: vulnerabilities.fail_on: "severe" is not one of negligible, low, '
            "medium, high, critical (or empty: off)",
        ),
        (
            True,
            "release.yaml: vulnerabilities.fail_on: expected text, got true "
            "(quote it if it is text)",
        ),
    ],
)
def test_fail_on_refuses_other_words(value, message) -> None:
    assert refused({"fail_on": value}) == message


def test_max_age_is_a_number_of_days() -> None:
    assert policy.parse({"max_age": 30}, PATH).max_age == 30
    assert policy.parse({"max_age": 1}, PATH).max_age == 1


@pytest.mark.parametrize(
    "value, shown",
    [(0, "0"), (-1, "-1"), ("7", '"7"'), (7.5, "7.5"), (True, "true"), (None, "null")],
)
def test_max_age_refuses_what_is_not_days(value, shown) -> None:
    assert refused({"max_age": value}) == (
        f"release.yaml: vulnerabilities.max_age: {shown} is not a number of days (1 or more)"
    )


def test_allow_entries_are_read_with_their_dates() -> None:
    raw = {
        "allow": [
            entry(),
            entry(
                "GHSA-qppj-fm5r-hxr3", reason="only the client is built", expires=date(2026, 6, 1)
            ),
        ]
    }
    assert policy.parse(raw, PATH).allow == (
        Allowed("CVE-2026-0001", "not built in", date(2027, 1, 31)),
        Allowed("GHSA-qppj-fm5r-hxr3", "only the client is built", date(2026, 6, 1)),
    )


@pytest.mark.parametrize("allow", [None, []], ids=["null", "empty"])
def test_an_empty_allow_list_allows_nothing(allow) -> None:
    assert policy.parse({"allow": allow}, PATH).allow == ()


@pytest.mark.parametrize(
    "ident",
    ["CVE-2026-1234", "GHSA-qppj-fm5r-hxr3", "GO-2024-2687", "ALAS2-2024:2504", "RHSA-2024:1"],
)
def test_allow_takes_the_ids_grype_reports(ident) -> None:
    assert policy.parse({"allow": [entry(ident)]}, PATH).allow[0].id == ident


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            ["fail_on: high"],
            "release.yaml: vulnerabilities: expected a mapping (fail_on, max_age, allow)",
        ),
        (
            {"fail-on": "high"},
            'release.yaml: vulnerabilities."fail-on": unknown field; did you mean fail_on?',
        ),
        ({"allow": "CVE-2026-0001"}, "release.yaml: vulnerabilities.allow: expected a list"),
        (
            {"allow": ["CVE-2026-0001"]},
            "release.yaml: vulnerabilities.allow[0]: expected a mapping with id, reason and "
            "expires",
        ),
        (
            {"allow": [entry(), entry("CVE 2026 1")]},
            'release.yaml: vulnerabilities.allow[1].id: "CVE 2026 1" is not a vulnerability ID '
            "such as CVE-2026-1234",
        ),
        (
            {"allow": [entry("2026-0001")]},
            'release.yaml: vulnerabilities.allow[0].id: "2026-0001" is not a vulnerability ID',
        ),
        (
            {"allow": [entry("CVE-2026-0001\n")]},
            'release.yaml: vulnerabilities.allow[0].id: "CVE-2026-0001\\n" is not a vulnerability',
        ),
        (
            {"allow": [{"id": "CVE-2026-0001", "expires": "2027-01-31"}]},
            "release.yaml: vulnerabilities.allow[0].reason: is required",
        ),
        (
            {"allow": [entry(reason="")]},
            "release.yaml: vulnerabilities.allow[0].reason: is required",
        ),
        (
            {"allow": [{"reason": "x", "expires": "2027-01-31"}]},
            "release.yaml: vulnerabilities.allow[0].id: is required",
        ),
        (
            {"allow": [entry(reson="typo")]},
            "release.yaml: vulnerabilities.allow[0].reson: unknown field; did you mean reason?",
        ),
    ],
    ids=[
        "not-a-mapping",
        "unknown-field",
        "allow-text",
        "entry-text",
        "id-spaces",
        "id-no-prefix",
        "id-newline",
        "no-reason",
        "empty-reason",
        "no-id",
        "typo",
    ],
)
def test_bad_vulnerabilities_name_the_field(raw, message) -> None:
    assert refused(raw).startswith(message)


@pytest.mark.parametrize(
    "expires, shown",
    [
        (None, "null"),
        ("someday", '"someday"'),
        ("2027-02-30", '"2027-02-30"'),
        ("31.01.2027", '"31.01.2027"'),
        ("2027-01-31 10:00", '"2027-01-31 10:00"'),
    ],
    ids=["missing", "word", "no-such-day", "european", "with-time"],
)
def test_every_entry_needs_a_date_it_expires(expires, shown) -> None:
    raw = {"allow": [entry()]}
    if expires is None:
        del raw["allow"][0]["expires"]
    else:
        raw["allow"][0]["expires"] = expires
    assert refused(raw) == (
        f"release.yaml: vulnerabilities.allow[0].expires: {shown} is not a date such as "
        "2027-01-31 (every exception expires)"
    )


def test_release_yaml_reads_the_policy_and_names_the_file(write_release, release_data) -> None:
    # As written in the file: the date unquoted (a YAML date) and quoted (text) alike.
    text = (
        "vulnerabilities:\n"
        "  fail_on: high\n"
        "  max_age: 3\n"
        "  allow:\n"
        "    - id: CVE-2026-0001\n"
        "      reason: the vulnerable code is not built in\n"
        "      expires: 2027-01-31\n"
        "    - id: CVE-2026-0002\n"
        '      reason: "fixed upstream, not yet in the base"\n'
        '      expires: "2026-06-01"\n'
    )
    path = write_release(release_data)
    path.write_text(path.read_text() + text)
    rel = config.load(path)
    assert rel.vulnerabilities == Policy(
        "high",
        3,
        (
            Allowed("CVE-2026-0001", "the vulnerable code is not built in", date(2027, 1, 31)),
            Allowed("CVE-2026-0002", "fixed upstream, not yet in the base", date(2026, 6, 1)),
        ),
    )
    path.write_text(path.read_text().replace("expires: 2027-01-31", "expires: 2027-13-01"))
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert str(caught.value).startswith(f"{path}: vulnerabilities.allow[0].expires: ")


def test_a_release_without_vulnerabilities_has_the_default_policy(make_release) -> None:
    assert make_release().vulnerabilities == Policy()


# --- the verdict --------------------------------------------------------------------------


def test_fail_on_off_passes_everything() -> None:
    assert policy.verdict(Policy(), report(OPENSSL, ZLIB, ODD), TODAY) == ""


@pytest.mark.parametrize(
    "fail_on, blocked",
    [
        ("critical", [OPENSSL]),
        ("high", [OPENSSL, ZLIB]),
        ("medium", [OPENSSL, ZLIB, NET]),
        ("low", [OPENSSL, ZLIB, NET]),
        ("negligible", [OPENSSL, ZLIB, NET, TAR]),
    ],
)
def test_fail_on_blocks_its_severity_and_above(fail_on, blocked) -> None:
    found = report(OPENSSL, ZLIB, NET, TAR, ODD)
    assert policy.blocking(Policy(fail_on), found) == blocked  # unknown is never above a line


@pytest.mark.parametrize(
    "fail_on, severity, refused_",
    [
        ("high", "critical", True),
        ("high", "high", True),
        ("high", "medium", False),
        ("critical", "high", False),
        ("negligible", "unknown", False),
        ("", "critical", False),
    ],
)
def test_at_or_above(fail_on, severity, refused_) -> None:
    assert policy.at_or_above(fail_on, severity) is refused_


def test_a_refusal_is_one_line_naming_the_first_finding() -> None:
    assert policy.verdict(Policy("high"), report(ZLIB), TODAY) == (
        "CVE-2026-0002 (high) in zlib1g 1.2.13, no fix yet: at or above fail_on: high"
    )
    assert policy.verdict(Policy("high"), report(OPENSSL, ZLIB), TODAY) == (
        "CVE-2026-0001 (critical) in openssl 3.0.11, fixed in 3.0.13 and 1 more: "
        "at or above fail_on: high"
    )
    assert policy.verdict(Policy("high"), report(NET, TAR), TODAY) == ""


def test_an_allowed_finding_does_not_block() -> None:
    allowed = Allowed(OPENSSL.id, "not built in", date(2027, 1, 31))
    rules = Policy("high", allow=(allowed,))
    assert policy.blocking(rules, report(OPENSSL, ZLIB)) == [ZLIB]
    assert policy.verdict(rules, report(OPENSSL), TODAY) == ""
    # It allows that ID in any package, and no other ID.
    in_libssl = Finding(OPENSSL.id, "libssl3", "3.0.11", "critical")
    assert policy.verdict(rules, report(OPENSSL, in_libssl), TODAY) == ""


def test_an_entry_is_good_through_its_date() -> None:
    rules = Policy("high", allow=(Allowed(OPENSSL.id, "not built in", TODAY),))
    assert policy.verdict(rules, report(OPENSSL), TODAY) == ""
    assert policy.expired(rules, TODAY) == []


def test_an_expired_entry_fails_in_one_line_naming_it_and_its_date() -> None:
    stale = Allowed(OPENSSL.id, "waiting for 3.0.13", date(2026, 4, 30))
    rules = Policy("high", allow=(Allowed("CVE-2026-0005", "x", date(2027, 1, 1)), stale))
    line = policy.verdict(rules, report(OPENSSL), TODAY)
    assert line == (
        "vulnerabilities.allow[1]: CVE-2026-0001 expired on 2026-04-30 "
        "(reason was: waiting for 3.0.13); remove it or give a new date"
    )
    # Even with fail_on off and a clean report: the exception is looked at again.
    assert policy.verdict(Policy("", allow=(stale,)), report(), TODAY) == line.replace(
        "allow[1]", "allow[0]"
    )


def test_several_expired_entries_are_counted_after_the_first() -> None:
    old = date(2026, 1, 1)
    rules = Policy(allow=tuple(Allowed(f"CVE-2025-000{i}", "r", old) for i in range(3)))
    line = policy.verdict(rules, report(), TODAY)
    assert line.startswith("vulnerabilities.allow[0]: CVE-2025-0000 expired on 2026-01-01 ")
    assert line.endswith("; remove it or give a new date (and 2 more)")
    assert len(policy.expired(rules, TODAY)) == 3

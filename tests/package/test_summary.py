"""`invoke summary`: one table for a release sharded over CI jobs, from the cells' JSON.

And the package changes in each format: a headline per cell, then each distinct
change once with the cells that have it, however the cells were sharded; the
vulnerabilities likewise: counts per cell, then what the release fixed and what
is new, each once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from package_helpers import ROOT, run_invoke

from kairos_distro import changelog, config, summary, vulns
from kairos_distro.changelog import Change
from kairos_distro.vulns import Finding

REASON = "skipped: inputs unchanged since v0.1.0 (sha256:dddddddddddd…)"


def write_cell(directory: Path, cell: str, status: str, reason: str) -> None:
    reports = [summary.Report(cell, status, image="ghcr.io/o/d@sha256:" + "d" * 64, reason=reason)]
    write_shard(directory, reports)


def write_shard(directory: Path, reports: list[summary.Report]) -> None:
    directory.mkdir(parents=True)
    (directory / summary.JSON).write_text(summary.as_json(reports, "v0.1.0") + "\n")


def test_collect_orders_by_the_cells_and_names_a_missing_one(tmp_path) -> None:
    write_cell(tmp_path / "summary-b", "b", "up to date", REASON)
    write_cell(tmp_path / "summary-x", "x", "published", "released: never released")
    version, reports = summary.collect(tmp_path, ["a", "b"])
    assert version == "v0.1.0"
    assert [(r.cell, r.status) for r in reports] == [
        ("a", summary.NO_SUMMARY),
        ("b", "up to date"),
        ("x", "published"),  # found, though not asked for: still shown
    ]
    assert reports[1].reason == REASON


def test_collect_reads_summaries_from_before_the_reason(tmp_path) -> None:
    old = {"version": "v0.0.9", "cells": [{"cell": "a", "status": "published", "later": 1}]}
    (tmp_path / summary.JSON).write_text(json.dumps(old))
    assert summary.collect(tmp_path, ["a"]) == ("v0.0.9", [summary.Report("a", "published")])


def test_invoke_summary_markdown_from_downloaded_summaries(tmp_path) -> None:
    cells = [c.id for c in config.load(ROOT / "release.yaml").cells]
    write_cell(tmp_path / "summaries" / f"summary-{cells[0]}", cells[0], "up to date", REASON)
    (tmp_path / "summaries" / "stray.json").write_text("not a summary")  # not read
    run = run_invoke("summary", "--from", str(tmp_path / "summaries"), "--format", "markdown")
    assert (run.returncode, run.stderr) == (0, "")
    lines = run.stdout.splitlines()
    assert lines[0] == "## Release v0.1.0: all cells"
    assert lines[2].startswith("| cell | result | reason | image |")
    assert lines[4].startswith(f"| {cells[0]} | up to date | {REASON} |")
    assert [line.split(" | ")[1] for line in lines[5:]] == [summary.NO_SUMMARY] * (len(cells) - 1)


def test_invoke_summary_refusals_are_one_line(tmp_path) -> None:
    broken = tmp_path / summary.JSON
    broken.write_text("{")
    run = run_invoke("summary", "--from", str(tmp_path))
    assert run.returncode == 1
    assert run.stderr.startswith(f"summary: {broken}: not a release summary")
    assert len(run.stderr.splitlines()) == 1
    run = run_invoke("summary", "--format", "html")
    assert (run.returncode, run.stderr) == (
        2,
        "summary: --format must be table, markdown or json (got html)\n",
    )


# -- package changes ----------------------------------------------------------------------------

OLD, NEW = "3.0.11-1~deb12u2", "3.0.13-1~deb12u1"
BUMP = Change("openssl", OLD, NEW, "upgraded")
HELLO = Change("kdt-hello", "", "1.1", "added")
CURL = Change("curl", "7.88.1-10", "", "removed")


def published(cell: str, *changes: Change) -> summary.Report:
    packages = changelog.to_json(changes, "v0.1.0")
    return summary.Report(cell, "published", reason="released: packages changed", packages=packages)


def release() -> list[summary.Report]:
    return [
        published("amd64-generic", BUMP, HELLO),
        published("arm64-generic", BUMP, CURL),
        summary.Report("riscv64-generic", "published", packages=changelog.first_release()),
        summary.Report("amd64-rpi4", "up to date"),  # nothing built: no changelog known
    ]


def test_terminal_table_has_a_packages_column_then_the_grouped_changes() -> None:
    text = summary.render("table", release(), "v0.2.0")
    lines = text.splitlines()
    assert lines[1] == "release v0.2.0"
    assert lines[2].split()[:4] == ["CELL", "RESULT", "REASON", "PACKAGES"]
    column = lines[2].index("PACKAGES")
    assert [line[column:].split("  ")[0] for line in lines[3:7]] == [
        "1 upgraded, 1 added",
        "1 upgraded, 1 removed",
        "first release",
        "-",
    ]
    assert lines[7:] == [
        "",
        "package changes",
        f"  upgraded openssl {OLD} -> {NEW} (2 cells: amd64-generic, arm64-generic)",
        "  removed curl 7.88.1-10 (1 cell: arm64-generic)",  # one cell each: by name
        "  added kdt-hello 1.1 (1 cell: amd64-generic)",
    ]


def test_without_known_package_changes_the_table_is_as_before() -> None:
    reports = [summary.Report("a", "up to date", reason=REASON)]
    assert summary.rows(reports) == [
        {
            "cell": "a",
            "result": "up to date",
            "reason": REASON,
            "image": "-",
            "artifacts": "-",
            "boot": "-",
            "signature": "-",
            "seconds": "0.0",
            "error": "-",
        }
    ]
    assert "package" not in summary.render("table", reports, "v0.2.0").lower()
    assert "ackage" not in summary.markdown(reports, "v0.2.0")
    data = json.loads(summary.as_json(reports, "v0.2.0"))
    assert "packages" not in data["cells"][0] and data["package_changes"] == []


def test_no_changes_since_the_last_release_has_a_headline_and_no_section() -> None:
    reports = [published("a")]
    assert summary.rows(reports)[0]["packages"] == "no package changes"
    assert summary.package_lines(reports) == []
    assert "\npackage changes\n" not in summary.render("table", reports, "v0.2.0")
    assert "### Package changes" not in summary.markdown(reports, "v0.2.0")


def test_markdown_lists_each_change_once_under_the_table() -> None:
    lines = summary.markdown(release(), "v0.2.0").splitlines()
    assert lines[2] == (
        "| cell | result | reason | packages | image | artifacts | boot | signature "
        "| seconds | error |"
    )
    assert lines[4].startswith(
        "| amd64-generic | published | released: packages changed | 1 upgraded, 1 added | - |"
    )
    assert lines[8:] == [
        "",
        "### Package changes",
        "",
        "| change | package | from | to | cells |",
        "|---|---|---|---|---|",
        f"| upgraded | openssl | {OLD} | {NEW} | 2 cells: amd64-generic, arm64-generic |",
        "| removed | curl | 7.88.1-10 | - | 1 cell: arm64-generic |",
        "| added | kdt-hello | - | 1.1 | 1 cell: amd64-generic |",
    ]


def test_json_keeps_each_cells_changes_and_the_grouped_ones() -> None:
    data = json.loads(summary.as_json(release(), "v0.2.0"))
    cells = {c["cell"]: c for c in data["cells"]}
    assert cells["amd64-generic"]["packages"] == changelog.to_json([BUMP, HELLO], "v0.1.0")
    assert cells["riscv64-generic"]["packages"] == {"since": ""}
    assert "packages" not in cells["amd64-rpi4"]  # nothing known, nothing written
    assert data["package_changes"] == [
        {
            "kind": "upgraded",
            "package": "openssl",
            "from": OLD,
            "to": NEW,
            "cells": ["amd64-generic", "arm64-generic"],
        },
        {
            "kind": "removed",
            "package": "curl",
            "from": "7.88.1-10",
            "to": "",
            "cells": ["arm64-generic"],
        },
        {
            "kind": "added",
            "package": "kdt-hello",
            "from": "",
            "to": "1.1",
            "cells": ["amd64-generic"],
        },
    ]
    assert [summary.Report.from_json(c) for c in data["cells"]] == release()


def test_collect_regroups_the_changes_of_cells_from_two_shards(tmp_path) -> None:
    write_shard(tmp_path / "summary-1", [published("a", BUMP, HELLO), published("b", BUMP)])
    write_shard(tmp_path / "summary-2", [published("c", BUMP, CURL)])
    version, reports = summary.collect(tmp_path, ["a", "b", "c"])
    assert (version, [r.packages for r in reports]) == (
        "v0.1.0",
        [
            r.packages
            for r in [published("a", BUMP, HELLO), published("b", BUMP), published("c", BUMP, CURL)]
        ],
    )
    assert summary.package_lines(reports) == [
        f"upgraded openssl {OLD} -> {NEW} (all 3 cells)",  # one line, though from two shards
        "removed curl 7.88.1-10 (1 cell: c)",
        "added kdt-hello 1.1 (1 cell: a)",
    ]
    grouped = json.loads(summary.render("json", reports, version, "all cells"))["package_changes"]
    assert [(g["package"], g["cells"]) for g in grouped] == [
        ("openssl", ["a", "b", "c"]),
        ("curl", ["c"]),
        ("kdt-hello", ["a"]),
    ]
    markdown = summary.render("markdown", reports, version, "all cells")
    assert markdown.count("| upgraded | openssl |") == 1
    assert f"| upgraded | openssl | {OLD} | {NEW} | all 3 cells |" in markdown


@pytest.mark.parametrize(
    ("packages", "message"),
    [
        ([], "package changes: not a changelog ([])"),
        ({"added": [{"package": "a"}]}, "package changes: added[0] is not {package, version}"),
    ],
)
def test_collect_refuses_garbage_package_changes_naming_the_file(
    tmp_path, packages, message
) -> None:
    path = tmp_path / summary.JSON
    path.write_text(json.dumps({"version": "v1", "cells": [{"cell": "a", "packages": packages}]}))
    with pytest.raises(summary.SummaryError) as err:
        summary.collect(tmp_path, ["a"])
    assert str(err.value).startswith(f"{path}: not a release summary ({message}")
    assert "\n" not in str(err.value)


def test_invoke_summary_prints_the_package_changes_once(tmp_path) -> None:
    cell = config.load(ROOT / "release.yaml").cells[0].id
    write_shard(tmp_path / "summary-1", [published(cell, BUMP)])
    write_shard(tmp_path / "summary-2", [published("other-cell", BUMP)])  # shown, though not asked
    run = run_invoke("summary", "--from", str(tmp_path), "--cell", cell)
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.endswith(
        f"\npackage changes\n  upgraded openssl {OLD} -> {NEW} (all 2 cells)\n"
    )


# -- vulnerabilities ----------------------------------------------------------------------------

FIXED = Finding("CVE-2026-0001", "openssl", OLD, "critical", NEW, "deb")
STILL = Finding("CVE-2026-0002", "zlib1g", "1:1.2.13.dfsg-1", "high", "", "deb")
CAME = Finding(
    "GHSA-qppj-fm5r-hxr3", "golang.org/x/net", "v0.23.0", "medium", "0.33.0", "go-module"
)


def scanned(cell: str, headline: str, fixed=(), new=()) -> summary.Report:
    changes = vulns.changes_json({"fixed": list(fixed), "new": list(new)})
    return summary.Report(
        cell, "published", vulnerabilities=headline, vulnerability_changes=changes
    )


def scanned_release() -> list[summary.Report]:
    return [
        scanned("amd64-generic", "1 high, 1 medium", fixed=[FIXED], new=[CAME]),
        scanned("arm64-generic", "1 high", fixed=[FIXED]),
        summary.Report("arm64-rpi4", "up to date", vulnerabilities="1 high (when released)"),
        summary.Report("riscv64-generic", "failed", error="build: it broke"),  # never scanned
    ]


def test_terminal_table_has_a_vulnerabilities_column_then_what_was_fixed_and_found() -> None:
    lines = summary.render("table", scanned_release(), "v0.2.0").splitlines()
    assert lines[2].split()[:5] == ["CELL", "RESULT", "REASON", "VULNERABILITIES", "IMAGE"]
    column = lines[2].index("VULNERABILITIES")
    assert [line[column:].split("  ")[0] for line in lines[3:7]] == [
        "1 high, 1 medium",
        "1 high",
        "1 high (when released)",
        "-",
    ]
    assert lines[7:] == [
        "",
        "vulnerabilities fixed",
        f"  CVE-2026-0001 (critical) in openssl {OLD}, fixed in {NEW}: amd64-generic, "
        "arm64-generic",
        "",
        "new vulnerabilities",
        "  GHSA-qppj-fm5r-hxr3 (medium) in golang.org/x/net v0.23.0, fixed in 0.33.0: "
        "amd64-generic",
    ]


def test_the_vulnerability_sections_follow_the_package_changes() -> None:
    reports = [published("a", BUMP)]
    reports[0].vulnerabilities = "none"
    reports[0].vulnerability_changes = vulns.changes_json({"fixed": [FIXED]})
    text = summary.render("table", reports, "v0.2.0")
    assert text.index("\npackage changes\n") < text.index("\nvulnerabilities fixed\n")
    assert "new vulnerabilities" not in text  # an empty section is left out
    row = summary.rows(reports)[0]
    assert list(row)[3:5] == ["packages", "vulnerabilities"]
    assert (row["packages"], row["vulnerabilities"]) == ("1 upgraded", "none")


def test_without_a_scan_there_is_no_vulnerabilities_column_or_section() -> None:
    reports = release()  # package changes, no scan
    assert all("vulnerabilities" not in row for row in summary.rows(reports))
    text = summary.render("table", reports, "v0.2.0")
    assert "VULNERABILITIES" not in text and "vulnerabilities" not in text
    assert "ulnerabilit" not in summary.markdown(reports, "v0.2.0")
    data = json.loads(summary.as_json(reports, "v0.2.0"))
    assert data["vulnerability_changes"] == {"fixed": [], "new": []}
    assert all(
        "vulnerabilities" not in c and "vulnerability_changes" not in c for c in data["cells"]
    )


def test_markdown_lists_what_was_fixed_and_what_is_new_under_the_table() -> None:
    lines = summary.markdown(scanned_release(), "v0.2.0").splitlines()
    assert lines[2] == (
        "| cell | result | reason | vulnerabilities | image | artifacts | boot | signature "
        "| seconds | error |"
    )
    assert lines[4].startswith("| amd64-generic | published | - | 1 high, 1 medium | - |")
    assert lines[8:] == [
        "",
        "### Vulnerabilities fixed",
        "",
        f"- CVE-2026-0001 (critical) in openssl {OLD}, fixed in {NEW}: amd64-generic, "
        "arm64-generic",
        "",
        "### New vulnerabilities",
        "",
        "- GHSA-qppj-fm5r-hxr3 (medium) in golang.org/x/net v0.23.0, fixed in 0.33.0: "
        "amd64-generic",
    ]


def test_json_keeps_each_cells_vulnerabilities_and_the_grouped_changes() -> None:
    data = json.loads(summary.as_json(scanned_release(), "v0.2.0"))
    cells = {c["cell"]: c for c in data["cells"]}
    assert cells["amd64-generic"]["vulnerabilities"] == "1 high, 1 medium"
    assert cells["amd64-generic"]["vulnerability_changes"] == {
        "fixed": [["CVE-2026-0001", "openssl", OLD, "critical", NEW, "deb"]],
        "new": [
            ["GHSA-qppj-fm5r-hxr3", "golang.org/x/net", "v0.23.0", "medium", "0.33.0", "go-module"]
        ],
    }
    assert "vulnerability_changes" not in cells["arm64-rpi4"]  # up to date: nothing compared
    assert "vulnerabilities" not in cells["riscv64-generic"]
    assert data["vulnerability_changes"] == {
        "fixed": [
            {
                "id": "CVE-2026-0001",
                "package": "openssl",
                "version": OLD,
                "severity": "critical",
                "fix": NEW,
                "kind": "deb",
                "cells": ["amd64-generic", "arm64-generic"],
            }
        ],
        "new": [
            {
                "id": "GHSA-qppj-fm5r-hxr3",
                "package": "golang.org/x/net",
                "version": "v0.23.0",
                "severity": "medium",
                "fix": "0.33.0",
                "kind": "go-module",
                "cells": ["amd64-generic"],
            }
        ],
    }
    assert [summary.Report.from_json(c) for c in data["cells"]] == scanned_release()


def test_collect_regroups_the_vulnerability_changes_of_two_shards(tmp_path) -> None:
    write_shard(tmp_path / "summary-1", [scanned("a", "1 high", fixed=[FIXED], new=[CAME])])
    write_shard(tmp_path / "summary-2", [scanned("b", "1 high", fixed=[FIXED])])
    version, reports = summary.collect(tmp_path, ["a", "b"])
    assert [r.vulnerabilities for r in reports] == ["1 high", "1 high"]
    assert summary.vulnerability_changes(reports, "fixed") == [(FIXED, ["a", "b"])]
    assert summary.vulnerability_changes(reports, "new") == [(CAME, ["a"])]
    markdown = summary.render("markdown", reports, version, "all cells")
    assert markdown.count("CVE-2026-0001") == 1  # one line, though from two shards
    assert markdown.endswith(": a\n")


@pytest.mark.parametrize(
    "changes",
    [
        ["CVE-2026-0001"],
        {"fixed": [["CVE-2026-0001"]]},
        {"new": [["CVE-2026-0002", "zlib1g", "1", "bad", "", "deb"]]},
    ],
    ids=["list", "short-row", "unknown-severity"],
)
def test_collect_refuses_garbage_vulnerability_changes_naming_the_file(tmp_path, changes) -> None:
    path = tmp_path / summary.JSON
    cell = {"cell": "a", "vulnerability_changes": changes}
    path.write_text(json.dumps({"version": "v1", "cells": [cell]}))
    with pytest.raises(summary.SummaryError) as err:
        summary.collect(tmp_path, ["a"])
    assert str(err.value).startswith(
        f"{path}: not a release summary (not a list of vulnerability changes ("
    )
    assert "\n" not in str(err.value)


def test_collect_reads_summaries_from_before_the_scan(tmp_path) -> None:
    write_cell(tmp_path / "summary-a", "a", "published", "released: never released")
    path = tmp_path / "summary-a" / summary.JSON
    data = json.loads(path.read_text())
    del data["vulnerability_changes"]  # as summaries before the scan were written
    path.write_text(json.dumps(data))
    _, (report,) = summary.collect(tmp_path, ["a"])
    assert (report.vulnerabilities, report.vulnerability_changes) == ("", {})


def test_invoke_summary_prints_the_vulnerability_changes_once(tmp_path) -> None:
    cell = config.load(ROOT / "release.yaml").cells[0].id
    write_shard(tmp_path / "summary-1", [scanned(cell, "none", fixed=[FIXED])])
    write_shard(tmp_path / "summary-2", [scanned("other-cell", "none", fixed=[FIXED])])
    run = run_invoke("summary", "--from", str(tmp_path), "--cell", cell)
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.endswith(f"\nvulnerabilities fixed\n  {FIXED.line()}: {cell}, other-cell\n")

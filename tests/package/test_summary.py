"""`invoke summary`: one table for a release sharded over CI jobs, from the cells' JSON."""

from __future__ import annotations

import json
from pathlib import Path

from package_helpers import ROOT, run_invoke

from kairos_distro import config, summary

REASON = "skipped: inputs unchanged since v0.1.0 (sha256:dddddddddddd…)"


def write_cell(directory: Path, cell: str, status: str, reason: str) -> None:
    reports = [summary.Report(cell, status, image="ghcr.io/o/d@sha256:" + "d" * 64, reason=reason)]
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

"""freshness.probe: one probe per base image and arch, its answer per cell, its failures per cell.

The runner is a recorder (no container runs here); probes.py's parser reads
what it returns, so the outputs below are in the probe script's own format
(tests/test_probes_real.py runs the script for real, tests/test_freshness_e2e.py
the whole release).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from kairos_distro import freshness, probes
from kairos_distro.runner import Answer, Runner, StepError
from kairos_distro.sbom import Package

APT_OK = """kairos-probe: manager apt
Hit:1 http://deb.debian.org/debian bookworm InRelease
Reading package lists...
kairos-probe: refresh 0
openssl:amd64:
  Installed: (none)
  Candidate: 3.0.15-1~deb12u1
  Version table:
     3.0.15-1~deb12u1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
zlib1g:amd64:
  Installed: (none)
  Candidate: 1:1.2.13.dfsg-1
  Version table:
     1:1.2.13.dfsg-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
kairos-probe: query 0
"""
APT_DEAD = """kairos-probe: manager apt
Err:1 http://127.0.0.1:9 ./ InRelease
  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)
Reading package lists...
W: Some index files failed to download. They have been ignored, or old ones used instead.
kairos-probe: refresh 0
"""


@dataclass
class Recorder(Runner):
    """A Runner whose containers are canned answers, by image; it records every call."""

    answers: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str, list[str], str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def output(self, cell, step, image, argv, *, network="", platform="", timeout=600.0):
        with self.lock:
            self.calls.append((step, image, argv, network, platform))
        found = self.answers[image]
        if isinstance(found, Exception):
            raise found
        return found


@dataclass(frozen=True)
class FakeCell:
    id: str
    arch: str = "amd64"


def deb(name: str, version: str) -> Package:
    return Package(name, version, "amd64", "deb")


def runner(**answers: Any) -> Recorder:
    return Recorder(out=io.StringIO(), answers=answers)


def test_cells_of_one_base_and_arch_share_one_probe_of_all_their_packages() -> None:
    a, b = FakeCell("a"), FakeCell("b")
    run = runner(base=Answer(0, APT_OK))
    packages = {a: [deb("openssl", "3.0.13-1~deb12u1")], b: [deb("zlib1g", "1:1.2.13.dfsg-1")]}
    found = freshness.probe(run, packages, lambda cell: "base", "host")  # type: ignore[arg-type]
    ((step, image, argv, network, platform),) = run.calls
    assert (step, image, network, platform) == ("probe", "base", "host", "linux/amd64")
    assert argv == probes.command(["openssl:amd64", "zlib1g:amd64"])
    assert [str(u) for u in found["a"].updates] == ["openssl 3.0.13-1~deb12u1 -> 3.0.15-1~deb12u1"]
    assert found["b"].updates == [] and (found["b"].manager, found["b"].checked) == ("apt", 1)
    assert freshness.summary(found["b"]) == "no newer packages (apt, 1 packages)"


def test_each_base_and_arch_gets_its_own_probe() -> None:
    cells = [FakeCell("a"), FakeCell("b", "arm64"), FakeCell("c")]
    run = runner(one=Answer(0, APT_OK), two=Answer(0, APT_OK))
    packages = {cell: [deb("openssl", "3.0.15-1~deb12u1")] for cell in cells}
    found = freshness.probe(run, packages, lambda cell: "two" if cell.id == "c" else "one")  # type: ignore[arg-type]
    asked = sorted((image, platform) for _, image, _, _, platform in run.calls)
    assert asked == [("one", "linux/amd64"), ("one", "linux/arm64"), ("two", "linux/amd64")]
    assert all(f.updates == [] and f.error is None for f in found.values())


def test_a_dead_mirror_fails_every_cell_of_its_probe_in_one_line() -> None:
    a, b, c = FakeCell("a"), FakeCell("b"), FakeCell("c")
    run = runner(dead=Answer(0, APT_DEAD), alive=Answer(0, APT_OK))
    packages = {cell: [deb("openssl", "3.0.15-1~deb12u1")] for cell in (a, b, c)}
    found = freshness.probe(run, packages, lambda cell: "alive" if cell is c else "dead")  # type: ignore[arg-type]
    for one in ("a", "b"):
        error = found[one].error
        assert isinstance(error, StepError) and (error.cell, error.step) == (one, "probe")
        assert str(error).startswith(
            f"{one}: probe: apt-get update cannot reach http://127.0.0.1:9"
        )
        assert "\n" not in str(error)
    assert found["c"].error is None  # another mirror's probe is not affected


@pytest.mark.parametrize(
    "answer, said",
    [
        (StepError("a", "probe", "no answer within 900 s"), "a: probe: no answer within 900 s"),
        (Answer(None, "kairos-probe: manager apt\n"), "a: probe: the probe did not finish in time"),
    ],
    ids=["container", "timeout"],
)
def test_a_probe_that_cannot_run_fails_its_cells(answer, said) -> None:
    cell = FakeCell("a")
    found = freshness.probe(runner(base=answer), {cell: [deb("x", "1")]}, lambda c: "base")  # type: ignore[arg-type]
    assert str(found["a"].error) == said


def test_an_image_without_packages_is_not_probed() -> None:
    run = runner()
    found = freshness.probe(run, {FakeCell("hadron"): []}, lambda c: "base")  # type: ignore[arg-type]
    assert run.calls == []
    assert freshness.summary(found["hadron"]).startswith("no package manager in the image")


def test_an_update_the_last_release_was_built_with_is_not_pending() -> None:
    seen = probes.Update("libc6", "amd64", "2.36-9", "2.36-10")
    new = probes.Update("openssl", "amd64", "3.0.13-1", "3.0.15-1")
    assert freshness.key(seen) == "libc6:amd64=2.36-10"
    assert freshness.pending([seen, new], ["libc6:amd64=2.36-10"]) == [new]
    assert freshness.pending([seen, new], None) == [seen, new]  # an older record keeps none
    found = freshness.Found([seen], "apt", 3)
    assert freshness.summary(found, [seen]) == (
        "no newer packages (apt, 3 packages); held back since released: libc6"
    )


def test_packages_the_manager_cannot_judge_fail_the_probe_in_one_line() -> None:
    """An SBOM of rpm packages against an apt base: no update can be known."""
    cell = FakeCell("a")
    rpm = Package("openssl", "1:3.0.7-27.el9", "x86_64", "rpm")
    found = freshness.probe(runner(base=Answer(0, APT_OK)), {cell: [rpm]}, lambda c: "base")  # type: ignore[arg-type]
    error = found["a"].error
    assert error is not None and error.step == "probe" and "\n" not in str(error)

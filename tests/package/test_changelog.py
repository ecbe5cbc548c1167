"""Package changelog: packages read back from our SBOMs, their diff, its JSON, and grouping.

The SBOMs are shaped as syft writes them (syft_bom.py): deb purls keep an epoch
in the version, rpm purls carry it in an `epoch` qualifier. The rpm packages of
one of them are the ones rpm itself listed for a real database (rpm_fixtures.py
says how it was made), so the epoch takes the road a released SBOM takes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import rpm_fixtures
import syft_bom

from kairos_distro import changelog, sbom
from kairos_distro.changelog import Change
from kairos_distro.sbom import Package

OPENSSL_OLD, OPENSSL_NEW = "3.0.11-1~deb12u2", "3.0.13-1~deb12u1"
DISTRO = {"deb": "debian-12", "rpm": "fedora-40", "apk": "alpine-3.20.3"}


def bom(packages: list[Package], manager: str = "deb") -> str:
    return syft_bom.sbom(packages, distro=DISTRO[manager])


def key(p: Package) -> tuple[str, str, str]:
    return (p.name, p.arch, p.version)


def deb(name: str, version: str, arch: str = "amd64") -> Package:
    return Package(name, version, arch, "deb")


def rpm(name: str, version: str, arch: str = "x86_64") -> Package:
    return Package(name, version, arch, "rpm")


def from_qa(line: str) -> Package:
    """A Package from one line of `rpm -qa --qf QA_FORMAT` ("(none)": rpm's empty tag)."""
    name, evr, arch, lic, source = (v if v != "(none)" else "" for v in line.split("|"))
    return Package(name, evr, arch, "rpm", lic, source)


# --- sbom_packages -----------------------------------------------------------------

# What rpm listed for the recorded database: kdt-hello has epoch 2 and a "+" in its
# version, kdt-tool a "~" and x86_64, kdt-data is noarch with a license that is no SPDX id.
REAL_RPMS = [from_qa(line) for line in rpm_fixtures.NDB_PACKAGES_QA]


@pytest.mark.parametrize(
    "packages",
    [
        [Package("libc6", "2.36-9+deb12u7", "amd64", "deb", "", "glibc")],
        [Package("bind9-libs", "1:9.18.28-1~deb12u2", "amd64", "deb", "", "bind9")],  # epoch kept
        [Package("libc6", "2.36-9+deb12u7", "i386", "deb", "", "glibc"), deb("libc6", "2.36-9")],
        # syft names a source whose version differs from the binary's as name@version.
        [Package("bsdutils", "1:2.38.1-5+deb12u1", "amd64", "deb", "", "util-linux@2.38.1-5")],
        REAL_RPMS,
        [Package("openssl-libs", "1:3.0.7-27.el9", "x86_64", "rpm", "Apache-2.0", "openssl")],
        [Package("bash", "5.2.15-2.fc39", "x86_64", "rpm", "GPL-3.0-or-later")],
        [Package("musl", "1.2.4_git20230717-r4", "x86_64", "apk", "MIT", "musl")],
        [Package("busybox", "1.36.1-r15", "aarch64", "apk", "GPL-2.0-only", "busybox")],
    ],
    ids=[
        "deb",
        "deb-epoch",
        "deb-multiarch",
        "deb-source-version",
        "rpmdb",
        "rpm-epoch",
        "rpm",
        "apk",
        "apk-arm",
    ],
)
def test_sbom_packages_reads_back_what_syft_wrote(packages) -> None:
    text = bom(packages, packages[0].manager)
    assert sorted(changelog.sbom_packages(text), key=key) == sorted(packages, key=key)
    assert changelog.sbom_packages(json.loads(text)) == changelog.sbom_packages(text)


def test_the_rpm_epoch_travels_in_a_qualifier_and_comes_back_folded() -> None:
    hello = next(p for p in REAL_RPMS if p.name == "kdt-hello")
    assert hello.version == "2:1.2.3+git20240101-1.kdt"  # as `rpm -q --qf %{EVR}` printed it
    (ref,) = sbom.component_purls(bom([hello], "rpm"))
    assert ref == (
        "pkg:rpm/fedora/kdt-hello@1.2.3%2Bgit20240101-1.kdt?arch=noarch&distro=fedora-40"
        "&epoch=2&upstream=kdt-hello-1.2.3%2Bgit20240101-1.kdt.src.rpm"
    )
    assert changelog.sbom_packages(bom([hello], "rpm")) == [hello]


def test_an_rpm_epoch_of_zero_is_no_change() -> None:
    # One SBOM spells the epoch out, the next leaves it off: the same package.
    before = bom([rpm("bash", "0:5.2.15-2.fc39")], "rpm")
    after = bom([rpm("bash", "5.2.15-2.fc39")], "rpm")
    old, new = changelog.sbom_packages(before), changelog.sbom_packages(after)
    assert old[0].version == "0:5.2.15-2.fc39"
    assert changelog.diff(old, new) == []


@pytest.mark.parametrize(
    "ref",
    [
        "pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bdeb12u1?arch=amd64&distro=debian-12",
        "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u1?arch=amd64&distro=debian-12",  # older syft
        "pkg:deb/debian/bsdutils@1:2.38.1-5+deb12u1?distro=debian-12&arch=amd64",
    ],
    ids=["encoded", "colon-raw", "unsorted-plus-raw"],
)
def test_every_spelling_of_a_deb_purl_reads_as_one_package(ref) -> None:
    doc = {"bomFormat": "CycloneDX", "components": [{"name": "bsdutils", "purl": ref}]}
    assert changelog.sbom_packages(doc) == [deb("bsdutils", "1:2.38.1-5+deb12u1")]


def test_licenses_are_read_as_syft_writes_them() -> None:
    packages = [*REAL_RPMS, Package("musl", "1.2.5-r0", "x86_64", "apk", "MIT", "musl")]
    doc = json.loads(bom(packages, "rpm"))
    by_name = {c["name"]: c.get("licenses") for c in doc["components"]}
    assert by_name["kdt-hello"] == [{"expression": "MIT AND BSD-3-Clause"}]
    assert by_name["kdt-tool"] == [{"license": {"id": "Apache-2.0"}}]
    assert by_name["kdt-data"] == [{"license": {"name": "GPLv2+"}}]  # no SPDX id: kept as said
    read = {p.name: p.license for p in changelog.sbom_packages(doc)}
    assert read == {
        "kdt-hello": "MIT AND BSD-3-Clause",
        "kdt-tool": "Apache-2.0",
        "kdt-data": "GPLv2+",
        "musl": "MIT",
    }
    # Several entries (a Debian copyright file names several licenses) are all kept.
    doc["components"][0]["licenses"] = [{"license": {"id": "MIT"}}, {"license": {"name": "X"}}]
    assert changelog.sbom_packages(doc)[0].license == "MIT AND X"


def test_components_without_a_purl_or_of_other_types_are_skipped() -> None:
    doc = json.loads(bom([deb("openssl", OPENSSL_OLD)]))
    zlib = {"type": "library", "name": "zlib", "purl": "pkg:apk/alpine/zlib@1.3.1-r1?arch=x86_64"}
    doc["components"] += [
        {"type": "library", "name": "no-purl", "bom-ref": "no-purl"},
        {"type": "library", "name": "lodash", "purl": "pkg:npm/lodash@4.17.21"},
        syft_bom.go_module("github.com/spf13/cobra", "v1.8.1"),
        {"type": "application", "name": "app", "bom-ref": "app", "components": [zlib]},
    ]
    assert changelog.sbom_packages(doc) == [
        deb("openssl", OPENSSL_OLD),
        Package("zlib", "1.3.1-r1", "x86_64", "apk"),  # nested: still found
    ]


def test_an_sbom_without_packages_lists_none() -> None:
    # Hadron: no package manager; syft still lists the operating system and Go modules.
    go = syft_bom.go_module("github.com/kairos-io/kairos-agent/v2", "v2.20.0")
    doc = syft_bom.document([], others=[go])
    assert len(doc["components"]) == 2  # the module and the operating system
    assert changelog.sbom_packages(doc) == []


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{", "SBOM is not JSON"),
        ("[]", "SBOM is not a CycloneDX JSON document ([])"),
        ({"bomFormat": "SPDX"}, "SBOM is not a CycloneDX JSON document"),
        ('"text"', "SBOM is not a CycloneDX JSON document"),
        ({"bomFormat": "CycloneDX", "components": {}}, "SBOM components are not a list"),
        ({"bomFormat": "CycloneDX", "components": ["x"]}, "SBOM components are not a list"),
        ({"bomFormat": "CycloneDX", "components": [{"purl": "openssl"}]}, "SBOM purl openssl:"),
    ],
)
def test_not_an_sbom_is_one_line(doc, message) -> None:
    with pytest.raises(ValueError) as err:
        changelog.sbom_packages(doc)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


# --- diff ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "changes"),
    [
        (
            [deb("openssl", OPENSSL_OLD)],
            [deb("openssl", OPENSSL_NEW)],
            [Change("openssl", OPENSSL_OLD, OPENSSL_NEW, "upgraded")],
        ),
        (  # dpkg's order, not the strings': 1.10 is newer than 1.9
            [deb("tool", "1.10-1")],
            [deb("tool", "1.9-1")],
            [Change("tool", "1.10-1", "1.9-1", "downgraded")],
        ),
        ([], [deb("curl", "7.88.1-10")], [Change("curl", "", "7.88.1-10", "added")]),
        ([deb("curl", "7.88.1-10")], [], [Change("curl", "7.88.1-10", "", "removed")]),
        ([deb("curl", "7.88.1-10")], [deb("curl", "7.88.1-10")], []),
        (  # an epoch alone makes a newer version, for dpkg and rpm alike
            [deb("tzdata", "2024a-0+deb12u1"), rpm("kdt-hello", "1.2-3")],
            [deb("tzdata", "1:2023c-5"), rpm("kdt-hello", "1:1.2-3")],
            [
                Change("kdt-hello", "1.2-3", "1:1.2-3", "upgraded"),
                Change("tzdata", "2024a-0+deb12u1", "1:2023c-5", "upgraded"),
            ],
        ),
        ([rpm("bash", "0:5.2-1")], [rpm("bash", "5.2-1")], []),  # one version, two spellings
        (  # apk's order: r15 is newer than r5
            [Package("busybox", "1.36.1-r5", "x86_64", "apk")],
            [Package("busybox", "1.36.1-r15", "x86_64", "apk")],
            [Change("busybox", "1.36.1-r5", "1.36.1-r15", "upgraded")],
        ),
        (  # multiarch: the name for several arches is one package per arch
            [deb("libc6", "2.36-9")],
            [deb("libc6", "2.36-9+deb12u7"), deb("libc6", "2.36-9+deb12u7", "i386")],
            [
                Change("libc6:amd64", "2.36-9", "2.36-9+deb12u7", "upgraded"),
                Change("libc6:i386", "", "2.36-9+deb12u7", "added"),
            ],
        ),
        (  # one arch before and after: the same package, though its arch moved
            [deb("fonts", "1.0-1", "amd64")],
            [deb("fonts", "1.0-2", "all")],
            [Change("fonts", "1.0-1", "1.0-2", "upgraded")],
        ),
        (  # rpm keeps several kernels: a new one is added next to the old
            [rpm("kernel-core", "6.8.5-301.fc40")],
            [rpm("kernel-core", "6.8.5-301.fc40"), rpm("kernel-core", "6.8.9-300.fc40")],
            [Change("kernel-core", "", "6.8.9-300.fc40", "added")],
        ),
    ],
    ids=[
        "upgraded",
        "downgraded",
        "added",
        "removed",
        "same",
        "epoch-only",
        "epoch-zero",
        "apk",
        "multiarch",
        "arch-moved",
        "installonly",
    ],
)
def test_diff(old, new, changes) -> None:
    assert changelog.diff(old, new) == changes


def test_diff_of_two_released_sboms_is_sorted_by_package() -> None:
    old = [deb("zlib1g", "1:1.2.13.dfsg-1"), deb("openssl", OPENSSL_OLD), deb("adduser", "3.134")]
    new = [deb("zlib1g", "1:1.2.13.dfsg-1"), deb("openssl", OPENSSL_NEW), deb("bash", "5.2.15-2")]
    changes = changelog.diff(changelog.sbom_packages(bom(old)), changelog.sbom_packages(bom(new)))
    assert changes == [
        Change("adduser", "3.134", "", "removed"),
        Change("bash", "", "5.2.15-2", "added"),
        Change("openssl", OPENSSL_OLD, OPENSSL_NEW, "upgraded"),
    ]


def test_a_version_that_does_not_parse_names_the_package() -> None:
    with pytest.raises(ValueError, match=r"^tool: 1\.0 and x:1 are not both deb versions$"):
        changelog.diff([deb("tool", "1.0")], [deb("tool", "x:1")])


# --- JSON ---------------------------------------------------------------------------

MIXED = [
    Change("bash", "", "5.2.15-2", "added"),
    Change("libc6:i386", "2.36-9", "", "removed"),
    Change("openssl", OPENSSL_OLD, OPENSSL_NEW, "upgraded"),
    Change("tool", "1.10", "1.9", "downgraded"),
    Change("zlib1g", "1:1.2.13", "1:1.3", "upgraded"),
]


def test_to_json_keeps_one_list_per_kind() -> None:
    assert changelog.to_json(MIXED, "v0.1.0") == {
        "since": "v0.1.0",
        "added": [{"package": "bash", "version": "5.2.15-2"}],
        "removed": [{"package": "libc6:i386", "version": "2.36-9"}],
        "upgraded": [
            {"package": "openssl", "from": OPENSSL_OLD, "to": OPENSSL_NEW},
            {"package": "zlib1g", "from": "1:1.2.13", "to": "1:1.3"},
        ],
        "downgraded": [{"package": "tool", "from": "1.10", "to": "1.9"}],
    }


def test_from_json_inverts_to_json_through_json_text() -> None:
    text = json.dumps(changelog.to_json(MIXED, "v0.1.0"))
    assert changelog.from_json(json.loads(text)) == MIXED
    assert changelog.from_json(changelog.to_json([], "v0.1.0")) == []


def test_from_json_tolerates_missing_lists_and_unknown_keys() -> None:
    data = {"upgraded": [{"package": "openssl", "from": OPENSSL_OLD, "to": OPENSSL_NEW}], "x": 1}
    assert changelog.from_json(data) == [Change("openssl", OPENSSL_OLD, OPENSSL_NEW, "upgraded")]
    assert changelog.from_json({}) == changelog.from_json(changelog.first_release()) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "package changes: not a changelog (null)"),
        ([], "package changes: not a changelog ([])"),
        ({"since": 1}, "package changes: not a changelog"),
        ({"added": {}}, "package changes: added is not a list ({})"),
        ({"added": [{"package": "a"}]}, "package changes: added[0] is not {package, version}"),
        ({"removed": ["a"]}, 'package changes: removed[0] is not {package, version} ("a")'),
        ({"upgraded": [{"package": "a", "from": "1"}]}, "upgraded[0] is not {package, from, to}"),
        ({"downgraded": [{"package": "", "from": "2", "to": "1"}]}, "downgraded[0] is not"),
        ({"added": [{"package": "a", "version": 1}]}, "added[0] is not {package, version}"),
    ],
)
def test_from_json_refuses_garbage_in_one_line(data: Any, message: str) -> None:
    with pytest.raises(ValueError) as err:
        changelog.from_json(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("data", "headline"),
    [
        ({}, ""),
        (changelog.first_release(), "first release"),
        (changelog.to_json([], "v0.1.0"), "no package changes"),
        (changelog.to_json(MIXED, "v0.1.0"), "2 upgraded, 1 added, 1 removed, 1 downgraded"),
        (changelog.to_json(MIXED[2:3], "v0.1.0"), "1 upgraded"),
    ],
)
def test_headline(data, headline) -> None:
    assert changelog.headline(data) == headline


# --- across cells ----------------------------------------------------------------------

BUMP = Change("openssl", OPENSSL_OLD, OPENSSL_NEW, "upgraded")


def test_sixty_cells_with_one_bump_read_as_one_line() -> None:
    cells = {f"cell-{i:02d}": [BUMP] for i in range(60)}
    grouped = changelog.group(cells)
    assert grouped == [(BUMP, list(cells))]
    assert changelog.lines(grouped, 60) == [
        f"upgraded openssl {OPENSSL_OLD} -> {OPENSSL_NEW} (all 60 cells)"
    ]


def test_mixed_changes_most_shared_first_then_by_name() -> None:
    hello = Change("kdt-hello", "", "1.1", "added")
    curl = Change("curl", "7.88.1-10", "", "removed")
    zlib = Change("zlib1g", "1:1.2.13", "1:1.3", "upgraded")
    apt = Change("apt", "2.6.1", "2.6.0", "downgraded")
    per_cell = {f"c{i}": [BUMP, zlib] for i in range(6)}
    per_cell["c0"] = [BUMP, zlib, hello, curl, hello]  # a repeat in one cell counts once
    per_cell["c1"] = [BUMP, hello, apt]
    per_cell["c5"] = [zlib]
    grouped = changelog.group(per_cell)
    assert grouped == [
        (BUMP, ["c0", "c1", "c2", "c3", "c4"]),  # 5 cells; zlib1g too, but later by name
        (zlib, ["c0", "c2", "c3", "c4", "c5"]),
        (hello, ["c0", "c1"]),
        (apt, ["c1"]),
        (curl, ["c0"]),
    ]
    assert changelog.lines(grouped, 6) == [
        f"upgraded openssl {OPENSSL_OLD} -> {OPENSSL_NEW} (5 cells)",
        "upgraded zlib1g 1:1.2.13 -> 1:1.3 (5 cells)",
        "added kdt-hello 1.1 (2 cells: c0, c1)",
        "downgraded apt 2.6.1 -> 2.6.0 (1 cell: c1)",
        "removed curl 7.88.1-10 (1 cell: c0)",
    ]


def test_changes_of_different_versions_are_different_lines() -> None:
    ubuntu = Change("openssl", "3.0.2-0ubuntu1.15", "3.0.2-0ubuntu1.18", "upgraded")
    grouped = changelog.group({"debian": [BUMP], "ubuntu": [ubuntu], "ubuntu-k3s": [ubuntu]})
    assert changelog.lines(grouped, 3) == [
        "upgraded openssl 3.0.2-0ubuntu1.15 -> 3.0.2-0ubuntu1.18 (2 cells: ubuntu, ubuntu-k3s)",
        f"upgraded openssl {OPENSSL_OLD} -> {OPENSSL_NEW} (1 cell: debian)",
    ]


@pytest.mark.parametrize(
    ("cells", "total", "words"),
    [
        (["a"], 1, "1 cell: a"),
        (["a", "b"], 2, "all 2 cells"),
        (["a", "b", "c"], 4, "3 cells: a, b, c"),
        (["a", "b", "c", "d"], 5, "4 cells"),
        ([f"c{i}" for i in range(60)], 60, "all 60 cells"),
    ],
)
def test_where(cells, total, words) -> None:
    assert changelog.where(cells, total) == words


def test_no_changes_group_to_nothing() -> None:
    assert changelog.group({"a": [], "b": []}) == []
    assert changelog.lines([], 2) == []

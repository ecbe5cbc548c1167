"""The freshness probe's parsers, over real package-manager output (no Docker).

probe_outputs/ holds what apt 2.6, dnf 4.14 and zypper 1.14 printed when the
probe ran against real local repositories (up, refusing, 503, half gone), and
apk and dnf5 output quoted from upstream sources; probe_outputs/README.md says
where each came from. tests/test_probes_real.py runs the probe for real.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from kairos_distro import managers, probes
from kairos_distro.probes import Answer, Candidate, ProbeError, Update
from kairos_distro.sbom import Package

OUTPUTS = Path(__file__).parent / "probe_outputs"


def recorded(name: str) -> tuple[int, str]:
    """(exit code, output) of a recorded file; 0 when the source did not say."""
    text = (OUTPUTS / name).read_text()
    found = re.search(r"^\(exit (\d+)\)\n\Z", text, re.MULTILINE)
    if found:
        return int(found[1]), text[: found.start()]
    return 0, text


def probe(name: str) -> Answer:
    return probes.parse(*recorded(name))


def failure(name: str) -> str:
    with pytest.raises(ProbeError) as caught:
        probe(name)
    return one_line(caught.value)


def one_line(err: Exception) -> str:
    text = str(err)
    assert text and "\n" not in text
    return text


# --- the command --------------------------------------------------------------


def test_command_passes_names_as_arguments_of_one_constant_script():
    argv = probes.command(["openssl", "libc6:amd64"])
    assert argv == ["sh", "-c", probes.SCRIPT, "kairos-probe", "openssl", "libc6:amd64"]
    assert probes.command([])[:4] == argv[:4]


def test_the_script_is_valid_posix_sh():
    done = subprocess.run(["sh", "-n", "-c", probes.SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["-rf", "a b", "", "x;reboot", "$(id)", "bad\nname"])
def test_command_refuses_what_is_no_package_name(name):
    with pytest.raises(ProbeError) as caught:
        probes.command(["openssl", name])
    assert "not a package name" in one_line(caught.value)


def test_names_ask_apt_for_each_architecture_and_others_by_name():
    installed = [
        Package("libc6", "2.36-9", "amd64", "deb"),
        Package("libc6", "2.36-9", "i386", "deb"),
        Package("tzdata", "2024a-0", "all", "deb"),
        Package("openssl", "3.0.7-27.el9", "x86_64", "rpm"),
        Package("openssl", "3.0.7-27.el9", "i686", "rpm"),
        Package("musl", "1.2.5-r0", "x86_64", "apk"),
    ]
    assert probes.names(installed) == [
        "libc6:amd64",
        "libc6:i386",
        "musl",
        "openssl",
        "tzdata:all",
    ]


# --- recorded runs: what each manager answers -----------------------------------


def test_apt_candidates_per_architecture():
    answer = probe("apt-2.6-ok.txt")
    assert answer.manager == "apt"
    assert set(answer.candidates) == {
        Candidate("kdt-doc", "2:0.5", ""),
        Candidate("kdt-hello", "1.1-1", ""),  # native: apt prints no arch
        Candidate("kdt-hello", "1.1-1", "i386"),
    }  # kdt-nosuch:amd64 was asked for: apt prints nothing for it


def test_dnf_candidates_with_epoch_and_arch():
    assert probe("dnf-4.14-ok.txt") == Answer(
        "dnf",
        (Candidate("kdt-hello", "1:1.1-1", "noarch"), Candidate("kdt-native", "2.0-1", "x86_64")),
    )


def test_zypper_candidates_leave_out_what_only_the_system_has():
    answer = probe("zypper-1.14-ok.txt")
    assert answer.manager == "zypper"
    assert set(answer.candidates) == {
        Candidate("kdt-hello", "1:1.1-1", "noarch"),
        Candidate("kdt-hello", "1.0-1", "noarch"),  # installed, and in the repository too
        Candidate("kdt-native", "2.0-1", "x86_64"),
        Candidate("kdt-native", "1.9-1", "x86_64"),
    }  # kdt-native 1.5-1 is "(System Packages)": installed, in no repository


@pytest.mark.parametrize("name", ["dnf-4.14-unknown-only.txt", "zypper-1.14-unknown-only.txt"])
def test_names_no_repository_has_are_no_candidates(name):
    assert probe(name).candidates == ()  # zypper says so with exit 104


def test_an_image_without_a_package_manager_says_so():
    assert probe("none-debian-without-apt-get.txt") == Answer("none", ())


@pytest.mark.parametrize(
    "name, words",
    [
        (
            "apt-2.6-refused.txt",
            [
                "apt-get update cannot reach http://127.0.0.1:",
                "./ InRelease",
                "(111: Connection refused)",
            ],
        ),
        (
            "apt-2.6-503.txt",
            ["apt-get update cannot reach http://127.0.0.1:", "503 Service Unavailable"],
        ),
        (
            "apt-2.6-packages-404.txt",
            ["apt-get update cannot reach http://127.0.0.1:", "./ Packages (404 File not found"],
        ),
        (
            "dnf-4.14-refused.txt",
            [
                "dnf makecache cannot reach repository 'kdt-test'",
                "Curl error (7)",
                "/repodata/repomd.xml",
            ],
        ),
        (
            "dnf-4.14-503.txt",
            [
                "dnf makecache cannot reach repository 'kdt-test'",
                "Status code: 503 for http://127.0.0.1:",
            ],
        ),
        (
            "dnf-4.14-primary-404.txt",
            [
                "dnf makecache cannot reach repository 'kdt-test'",
                "Status code: 404",
                "primary.xml.gz",
            ],
        ),
        (
            "zypper-1.14-refused.txt",
            [
                "zypper refresh cannot reach repository 'kdt-test' (http://127.0.0.1:",
                "Failed to connect to 127.0.0.1",
            ],
        ),
        (
            "zypper-1.14-503.txt",
            [
                "zypper refresh cannot reach repository 'kdt-test' (http://127.0.0.1:",
                "temporarily unaccessible",
            ],
        ),
        (
            "zypper-1.14-primary-404.txt",
            [
                "zypper refresh cannot reach repository 'kdt-test'",
                "Can't provide ./repodata/",
                "primary.xml.gz",
            ],
        ),
    ],
)
def test_a_dead_or_half_dead_mirror_is_an_error_naming_it(name, words):
    message = failure(name)
    for word in words:
        assert word in message


def test_apt_update_exits_0_on_a_dead_mirror_and_still_fails_the_probe():
    code, text = recorded("apt-2.6-refused.txt")
    assert code == 0 and "kairos-probe: refresh 0" in text  # apt's own verdict: fine
    assert "Candidate: 1.0-1" in text  # and the old lists would read as "no updates"
    assert "cannot reach" in failure("apt-2.6-refused.txt")


# --- the probe's frame ----------------------------------------------------------


def test_a_probe_that_timed_out_is_an_error():
    _, text = recorded("apt-2.6-ok.txt")
    with pytest.raises(ProbeError) as caught:
        probes.parse(None, text)
    assert "did not finish in time" in one_line(caught.value)


def test_a_probe_killed_during_the_refresh_is_an_error():
    _, text = recorded("apt-2.6-ok.txt")
    cut = text[: text.index("kairos-probe: refresh")]
    with pytest.raises(ProbeError) as caught:
        probes.parse(137, cut)
    assert one_line(caught.value).startswith("apt-get update did not finish (exit 137)")


def test_a_probe_killed_during_the_query_names_the_query():
    _, text = recorded("zypper-1.14-ok.txt")
    cut = text[: text.index("<search-result")]
    with pytest.raises(ProbeError) as caught:
        probes.parse(137, cut)
    assert one_line(caught.value).startswith("zypper search did not finish (exit 137)")


def test_output_without_the_probe_frame_is_an_error():
    with pytest.raises(ProbeError) as caught:
        probes.parse(127, "sh: 1: exec: sh: not found\n")
    message = one_line(caught.value)
    assert "without naming a package manager" in message and "exec: sh: not found" in message


def test_an_unknown_manager_and_a_marker_without_code_are_errors():
    with pytest.raises(ProbeError) as caught:
        probes.parse(0, "kairos-probe: manager pacman\n")
    assert "unknown package manager pacman" in one_line(caught.value)
    with pytest.raises(ProbeError) as caught:
        probes.parse(0, "kairos-probe: manager apt\nkairos-probe: refresh ?\n")
    assert "without an exit code" in one_line(caught.value)


def test_no_names_asked_means_no_query_and_no_candidates():
    _, text = recorded("apt-2.6-ok.txt")
    refreshed = text[: text.index("kairos-probe: refresh 0")] + "kairos-probe: refresh 0\n"
    assert probes.parse(0, refreshed) == Answer("apt", ())


def test_a_failed_query_is_an_error():
    _, text = recorded("dnf-4.14-ok.txt")
    failed = text.replace(
        "kairos-probe: query 0", "Error: rpmdb open failed\nkairos-probe: query 1"
    )
    with pytest.raises(ProbeError) as caught:
        probes.parse(0, failed)
    assert one_line(caught.value) == "dnf repoquery exited 1: Error: rpmdb open failed"


def test_query_output_that_is_no_tools_is_an_error():
    _, text = recorded("apt-2.6-ok.txt")
    with pytest.raises(ProbeError) as caught:
        probes.parse(0, text.replace("kdt-doc:\n", "Segmentation fault\n"))
    assert "apt-cache policy printed Segmentation fault" in one_line(caught.value)


# --- quoted output: apk, dnf5, apt's signature failure ---------------------------


@pytest.mark.parametrize(
    "manager, name, words",
    [
        (
            "apk",
            "apk-2.12-update-errors.txt",
            ["apk update failed: https://dl-cdn.alpinelinux.org/alpine/v3.13/main: temporary"],
        ),
        (
            "apk",
            "apk-2.12-update-one-repo-down.txt",
            ["http://uplink-stage-01:4080/distribution/develop/upmaru-stage/rdio: temporary error"],
        ),
        (
            "apk",
            "apk-2.10-update-ignoring-but-ok.txt",
            ["Ignoring file:///ish/apk/main/x86/APKINDEX.tar.gz: Interrupted system call"],
        ),
        (
            "apk",
            "apk-2.14-repository-unreachable.txt",
            ["updating and opening https://dl-cdn.alpinelinux.org/alpine/v3.21/main: temporary"],
        ),
        (
            "apt",
            "apt-2.6-update-expired-key.txt",
            [
                "apt-get update failed: Failed to fetch http://download.opensuse.org/repositories/",
                "EXPKEYSIG",
            ],
        ),
        (
            "dnf",
            "dnf5-makecache-unreachable.txt",
            [
                "dnf makecache cannot reach repository 'testrepo'",
                '(baseurl: "/non/existent/repo"; Curl error (37)',
            ],
        ),
        (
            "dnf",
            "dnf5-skip-if-unavailable.txt",
            [
                "dnf makecache failed: Curl error (37)",
                "file:///non/existent/repo/repodata/repomd.xml",
            ],
        ),
        (
            "dnf",
            "dnf-4.14-makecache-skip-if-unavailable.txt",
            [
                "dnf makecache cannot reach repository 'dead'",
                "http://127.0.0.1:9/repodata/repomd.xml",
            ],
        ),
    ],
)
def test_failed_refreshes_the_exit_code_hides(manager, name, words):
    code, text = recorded(name)
    assert code == 0 or name.startswith("dnf5-makecache")
    message = managers.refresh_error(manager, code, text)
    assert message is not None and "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("name", ["apk-2.10-update-ok.txt", "apk-3-update-ok.txt"])
def test_apk_update_that_says_ok_is_ok(name):
    assert managers.refresh_error("apk", *recorded(name)) is None


def test_apk_update_without_its_summary_is_an_error():
    code, text = recorded("apk-2.10-update-ok.txt")
    cut = text.replace("OK: 12543 distinct packages available\n", "")
    assert "printed no summary" in (managers.refresh_error("apk", code, cut) or "")
    assert (
        managers.refresh_error("apk", 1, text)
        == "apk update exited 1: OK: 12543 distinct packages available"
    )


def test_apk_policy_candidates_skip_the_installed_database_and_tagged_repositories():
    assert managers.candidates("apk", *recorded("apk-2.12-policy.txt")) == (
        Candidate("at", "3.2.1-r1", ""),
        Candidate("vim", "8.2.2320-r0", ""),  # 8.2.2852-r0 is only in @edge
        Candidate("hwids-udev", "20201207-r0", ""),
    )  # capnproto: installed, and otherwise only in @edgecommunity


@pytest.mark.parametrize("code", [106, 0])
def test_zypper_search_over_a_repository_it_could_not_read_is_an_error(code):
    _, text = recorded("zypper-1.14-search-repo-skipped.txt")
    with pytest.raises(ProbeError) as caught:
        managers.candidates("zypper", code, text)
    message = one_line(caught.value)
    assert "http://127.0.0.1:9/repodata/repomd.xml" in message
    assert "Failed to connect to 127.0.0.1 port 9" in message


# --- updates: what a rebuild would change --------------------------------------


def deb(name: str, version: str, arch: str = "amd64") -> Package:
    return Package(name, version, arch, "deb")


def rpm(name: str, version: str, arch: str = "x86_64") -> Package:
    return Package(name, version, arch, "rpm")


@pytest.mark.parametrize(
    "recording, installed, expected",
    [
        # newer, equal and older candidates (apt's candidate for native kdt-hello is 1.1-1)
        ("apt-2.6-ok.txt", [deb("kdt-hello", "1.0-1")], ["kdt-hello 1.0-1 -> 1.1-1"]),
        ("apt-2.6-ok.txt", [deb("kdt-hello", "1.1-1")], []),
        ("apt-2.6-ok.txt", [deb("kdt-hello", "1.2-1")], []),
        # a foreign architecture takes its own candidate; arch all takes the native one
        ("apt-2.6-ok.txt", [deb("kdt-hello", "1.0-1", "i386")], ["kdt-hello 1.0-1 -> 1.1-1"]),
        ("apt-2.6-ok.txt", [deb("kdt-doc", "2:0.4", "all")], ["kdt-doc 2:0.4 -> 2:0.5"]),
        # an epoch outweighs any version; the SBOM writes no epoch where there is none
        ("apt-2.6-ok.txt", [deb("kdt-doc", "0.9", "all")], ["kdt-doc 0.9 -> 2:0.5"]),
        ("dnf-4.14-ok.txt", [rpm("kdt-hello", "1.1-1", "noarch")], ["kdt-hello 1.1-1 -> 1:1.1-1"]),
        ("dnf-4.14-ok.txt", [rpm("kdt-hello", "1:1.1-1", "noarch")], []),
        ("dnf-4.14-ok.txt", [rpm("kdt-native", "0:2.0-1")], []),  # dnf omits epoch 0
        ("dnf-4.14-ok.txt", [rpm("kdt-native", "1.9-1")], ["kdt-native 1.9-1 -> 2.0-1"]),
        # noarch candidates serve any arch; another arch's candidate does not
        ("dnf-4.14-ok.txt", [rpm("kdt-hello", "1.0-1", "x86_64")], ["kdt-hello 1.0-1 -> 1:1.1-1"]),
        ("dnf-4.14-ok.txt", [rpm("kdt-native", "1.9-1", "i686")], []),
        # zypper lists every version: the best one counts, the installed one is no update
        ("zypper-1.14-ok.txt", [rpm("kdt-native", "1.5-1")], ["kdt-native 1.5-1 -> 2.0-1"]),
        (
            "zypper-1.14-ok.txt",
            [rpm("kdt-hello", "1.0-1", "noarch")],
            ["kdt-hello 1.0-1 -> 1:1.1-1"],
        ),
        # names the repositories do not know are no updates
        ("apt-2.6-ok.txt", [deb("kdt-nosuch", "1.0")], []),
        ("dnf-4.14-unknown-only.txt", [rpm("kdt-nosuch", "1.0-1")], []),
    ],
)
def test_updates(recording, installed, expected):
    assert [str(u) for u in probes.updates(installed, probe(recording))] == expected


def test_updates_are_sorted_and_ignore_other_package_types():
    installed = [
        deb("kdt-hello", "1.0-1"),
        Package("busybox", "1.36.1-r15", "x86_64", "apk"),
        deb("kdt-doc", "2:0.1", "all"),
    ]
    assert probes.updates(installed, probe("apt-2.6-ok.txt")) == [
        Update("kdt-doc", "all", "2:0.1", "2:0.5"),
        Update("kdt-hello", "amd64", "1.0-1", "1.1-1"),
    ]


def test_apk_updates_from_quoted_policy():
    answer = Answer("apk", managers.candidates("apk", *recorded("apk-2.12-policy.txt")))
    installed = [
        Package("vim", "8.2.2320-r0", "x86_64", "apk"),  # newer only in @edge
        Package("at", "3.2.0-r0", "x86_64", "apk"),
        Package("capnproto", "0.8.0-r1", "x86_64", "apk"),
    ]
    assert [str(u) for u in probes.updates(installed, answer)] == ["at 3.2.0-r0 -> 3.2.1-r1"]


def test_an_sbom_of_another_manager_is_an_error_not_no_updates():
    with pytest.raises(ProbeError) as caught:
        probes.updates([rpm("openssl", "3.0.7-27.el9")], probe("apt-2.6-ok.txt"))
    assert one_line(caught.value) == (
        "the image's package manager is apt (deb packages) but its SBOM lists rpm packages"
    )


def test_no_package_manager_means_no_updates_to_predict():
    assert probes.updates([deb("bash", "5.2")], probe("none-debian-without-apt-get.txt")) == []


def test_an_unparsable_version_names_the_package():
    answer = Answer("apt", (Candidate("kdt-hello", "1.1-1", ""),))
    with pytest.raises(ProbeError) as caught:
        probes.updates([deb("kdt-hello", "not a version!")], answer)
    assert one_line(caught.value).startswith("cannot compare kdt-hello versions 1.1-1 and not a")

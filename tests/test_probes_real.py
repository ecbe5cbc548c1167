"""The freshness probe for real: Debian's apt, dnf and zypper against local repositories.

The repositories (tests/support/repos.py) are built with the distros' own
tools and served on 127.0.0.1; the probe runs in throwaway containers through
Runner.output with the host network, as the pipeline runs it. What is
installed is read from each image's SBOM, made by syft as the pipeline makes it.
Debian ships dnf 4.14 and zypper 1.14, so the images that stand for Fedora
and openSUSE are Debian with that tool (and the other managers removed, so
the probe picks it); apk has no Debian package and is tested on its recorded
output only (tests/package/test_probes.py).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kairos_distro import changelog, probes, sbom
from kairos_distro.probes import Answer, ProbeError
from kairos_distro.runner import Runner
from tests.support.repos import AptRepo, RpmRepo
from tests.support.standins import debian_base, image_from_dockerfile
from tests.support.tools import tool_image

pytestmark = pytest.mark.e2e


@contextmanager
def image(client, tag: str, dockerfile: str, files: tuple[Path, ...] = ()) -> Iterator[str]:
    """kdt-test/TAG built from `dockerfile` (and `files`) on the host network; removed after."""
    ref = image_from_dockerfile(
        client, f"kdt-test/{tag}", dockerfile, {path.name: path.read_bytes() for path in files}
    )
    try:
        yield ref
    finally:
        client.images.remove(ref, force=True)


def run_probe(image_ref: str, asked: list[str]) -> Answer:
    answer = Runner().output(
        "test", "probe", image_ref, probes.command(asked), network="host", timeout=120
    )
    return probes.parse(answer.code, answer.out)


def installed(client, image_ref: str, tmp: Path, rpm: bool = False) -> list[sbom.Package]:
    """The image's packages as its SBOM lists them (syft, as the pipeline runs it).

    The rpm tool images are Debian with dnf: their rpm database is the one asked.
    """
    syft = tool_image(client, "syft")
    dest = tmp / "image.cdx.json"
    image_id = client.images.get(image_ref).id
    sbom.write_sbom(Runner(out=io.StringIO()), "test", syft, image_id, dest, name="t", version="1")
    packages = changelog.sbom_packages(dest.read_text())
    return [p for p in packages if p.manager == ("rpm" if rpm else "deb")]


def updates(client, image_ref: str, tmp: Path, rpm: bool = False) -> list[str]:
    packages = installed(client, image_ref, tmp, rpm)
    return [str(u) for u in probes.updates(packages, run_probe(image_ref, probes.names(packages)))]


@pytest.fixture(scope="module")
def debian(docker_client) -> str:
    return debian_base(docker_client)


@pytest.fixture(scope="module")
def rpm_tools(docker_client, debian) -> Iterator[str]:
    """Debian with Debian's dnf (4.14) and zypper (1.14): their real code, our repositories."""
    with image(
        docker_client,
        "probe-rpm-tools",
        f"FROM {debian}\n"
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y"
        " --no-install-recommends dnf zypper && rm -rf /var/lib/apt/lists/*\n",
    ) as ref:
        yield ref


def test_apt_repo_installs_what_was_added(tmp_path, docker_client, debian):
    with AptRepo(tmp_path / "apt") as repo:
        repo.add("kdt-hello", "1.0-1")
        repo.add("kdt-hello", "1.1-1")
        repo.add("kdt-doc", "2:0.5", arch="all", depends="kdt-hello (>= 1.1)")
        answer = Runner().output(
            "test",
            "install",
            debian,
            [
                "sh",
                "-c",
                f"echo '{repo.sources_line}' > /etc/apt/sources.list && apt-get update -q"
                " && apt-get install -y -q kdt-doc >/dev/null"
                " && dpkg-query -W -f '${Package}=${Version}\\n' kdt-hello kdt-doc",
            ],
            network="host",
        )
    assert answer.code == 0, answer.out
    assert sorted(answer.out.splitlines()[-2:]) == ["kdt-doc=2:0.5", "kdt-hello=1.1-1"]
    assert repo.deb_path("kdt-doc", "2:0.5", "all").name == "kdt-doc_0.5_all.deb"


def test_apt_probe_finds_updates_and_refuses_a_dead_mirror(tmp_path, docker_client, debian):
    with AptRepo(tmp_path / "apt") as repo:
        repo.add("kdt-hello", "1.0-1")
        dockerfile = (
            f"FROM {debian}\n"
            f"RUN rm -f /etc/apt/sources.list.d/* && echo '{repo.sources_line}'"
            " > /etc/apt/sources.list && apt-get update -q"
            " && apt-get install -y -q kdt-hello && rm -rf /var/lib/apt/lists/*\n"
        )
        with image(docker_client, "probe-apt", dockerfile) as ref:
            assert updates(docker_client, ref, tmp_path / "1") == []  # candidate = installed
            repo.add("kdt-hello", "1.1-1")
            assert updates(docker_client, ref, tmp_path / "2") == ["kdt-hello 1.0-1 -> 1.1-1"]
            port = repo.port
            repo.stop()
            with pytest.raises(ProbeError) as caught:
                run_probe(ref, ["kdt-hello:amd64"])
            repo.start()  # the same port again: the mirror is back
            assert repo.port == port
            assert run_probe(ref, ["kdt-hello:amd64"]).candidates[0].version == "1.1-1"
    message = str(caught.value)
    assert message.startswith(f"apt-get update cannot reach http://127.0.0.1:{port} ./ InRelease")
    assert "Connection refused" in message and "\n" not in message


def test_apt_probe_refuses_a_half_dead_mirror(tmp_path, docker_client, debian):
    with AptRepo(tmp_path / "apt") as repo:
        repo.add("kdt-hello", "1.0-1")
        dockerfile = f"FROM {debian}\nRUN echo '{repo.sources_line}' > /etc/apt/sources.list\n"
        with image(docker_client, "probe-apt-half", dockerfile) as ref:
            (repo.root / "Packages").unlink()  # Release still served, its index gone
            with pytest.raises(ProbeError) as caught:
                run_probe(ref, ["kdt-hello"])
    assert f"http://127.0.0.1:{repo.port} ./ Packages (404" in str(caught.value)


RPM_IMAGE = """\
FROM {base}
RUN rm /usr/bin/apt-get /usr/bin/{other} && mkdir -p {repos}
COPY kdt.repo {repos}/kdt.repo
COPY *.rpm /tmp/
RUN rpm --dbpath /var/lib/rpm -i --nodeps /tmp/*.rpm 2>/dev/null && rm /tmp/*.rpm
"""


@pytest.mark.parametrize(
    "tool, other, repos",
    [("dnf", "zypper", "/etc/yum.repos.d"), ("zypper", "dnf", "/etc/zypp/repos.d")],
)
def test_rpm_probe_finds_updates_and_refuses_a_dead_mirror(
    tmp_path, docker_client, rpm_tools, tool, other, repos
):
    with RpmRepo(tmp_path / "rpm") as repo:
        built = [repo.add("kdt-hello", "1.0"), repo.add("kdt-native", "1.9", arch="x86_64")]
        # installed but in no repository: zypper lists it as "(System Packages)"
        built.append(RpmRepo(tmp_path / "local").add("kdt-local", "3.0"))
        (tmp_path / "kdt.repo").write_text(repo.repo_file("kdt-test"))
        dockerfile = RPM_IMAGE.format(base=rpm_tools, other=other, repos=repos)
        with image(
            docker_client, f"probe-{tool}", dockerfile, (*built, tmp_path / "kdt.repo")
        ) as ref:
            assert run_probe(ref, []) == Answer(tool, ())
            assert updates(docker_client, ref, tmp_path / "1", rpm=True) == []
            repo.add("kdt-hello", "1.1", epoch="1")
            repo.add("kdt-native", "2.0", arch="x86_64")
            repo.add("kdt-native", "2.1", arch="i686")  # another arch: not an update
            assert updates(docker_client, ref, tmp_path / "2", rpm=True) == [
                "kdt-hello 1.0-1 -> 1:1.1-1",
                "kdt-native 1.9-1 -> 2.0-1",
            ]
            repo.stop()
            with pytest.raises(ProbeError) as caught:
                run_probe(ref, ["kdt-hello"])
    refresh = {"dnf": "dnf makecache", "zypper": "zypper refresh"}[tool]
    message = str(caught.value)
    assert message.startswith(f"{refresh} cannot reach repository 'kdt-test'")
    assert f"127.0.0.1 port {repo.port}" in message and "\n" not in message


def test_an_image_without_a_package_manager(docker_client, debian):
    with image(docker_client, "probe-none", f"FROM {debian}\nRUN rm /usr/bin/apt-get\n") as ref:
        assert run_probe(ref, ["bash:amd64"]) == Answer("none", ())

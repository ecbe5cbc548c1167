"""The freshness probe for real: Debian's apt, dnf and zypper against local repositories.

The repositories (tests/support/repos.py) are built with the distros' own
tools and served on 127.0.0.1; the probe runs in throwaway containers through
Runner.output with the host network, as the pipeline runs it.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import pytest

from kairos_distro.runner import Runner
from tests.support.repos import AptRepo, RpmRepo
from tests.support.standins import debian_base

pytestmark = pytest.mark.e2e


def _image(client, tag: str, dockerfile: str) -> str:
    """Build `dockerfile` (FROM the Debian stand-in) as kdt-test/TAG on the host network."""
    data = dockerfile.encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    ref = f"kdt-test/{tag}"
    client.images.build(fileobj=context, custom_context=True, tag=ref, network_mode="host", rm=True)
    return ref


@pytest.fixture(scope="module")
def debian(docker_client) -> str:
    return debian_base(docker_client)


@pytest.fixture(scope="module")
def rpm_tools(docker_client, debian) -> Iterator[str]:
    """Debian with Debian's dnf (4.14) and zypper (1.14): their real code, our repositories."""
    ref = _image(
        docker_client,
        "probe-rpm-tools",
        f"FROM {debian}\n"
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y"
        " --no-install-recommends dnf zypper && rm -rf /var/lib/apt/lists/*\n",
    )
    yield ref
    docker_client.images.remove(ref, force=True)


def _sh(image: str, script: str) -> tuple[int | None, str]:
    answer = Runner().output("test", "probe", image, ["sh", "-c", script], network="host")
    return answer.code, answer.out


def test_apt_repo_installs_what_was_added(tmp_path, debian):
    with AptRepo(tmp_path / "apt") as repo:
        repo.add("kdt-hello", "1.0-1")
        repo.add("kdt-hello", "1.1-1")
        repo.add("kdt-doc", "2:0.5", arch="all", depends="kdt-hello (>= 1.1)")
        code, out = _sh(
            debian,
            f"echo '{repo.sources_line}' > /etc/apt/sources.list && apt-get update -q"
            " && apt-get install -y -q kdt-doc >/dev/null"
            " && dpkg-query -W -f '${Package}=${Version}\\n' kdt-hello kdt-doc",
        )
    assert code == 0, out
    assert sorted(out.splitlines()[-2:]) == ["kdt-doc=2:0.5", "kdt-hello=1.1-1"]
    assert repo.deb_path("kdt-doc", "2:0.5", "all").name == "kdt-doc_0.5_all.deb"


def test_apt_repo_stopped_refuses_and_starts_on_the_same_port(tmp_path, debian):
    with AptRepo(tmp_path / "apt") as repo:
        repo.add("kdt-hello", "1.0-1")
        port = repo.port
        repo.stop()
        script = f"echo '{repo.sources_line}' > /etc/apt/sources.list && apt-get update"
        _, refused = _sh(debian, script)
        repo.start()
        code, served = _sh(debian, script)
    assert repo.port == port
    assert "Connection refused" in refused
    assert code == 0 and "Get:" in served and "Err:" not in served, served


def test_rpm_repo_installs_with_dnf(tmp_path, rpm_tools):
    with RpmRepo(tmp_path / "rpm") as repo:
        repo.add("kdt-hello", "1.0")
        repo.add("kdt-hello", "1.1", epoch="1")
        code, out = _sh(
            rpm_tools,
            f"mkdir -p /etc/yum.repos.d && printf '%s' '{repo.repo_file()}'"
            " > /etc/yum.repos.d/kdt.repo && dnf install -y -q --releasever 1 kdt-hello"
            " >/dev/null 2>&1; rpm -q --qf '%{NAME}=%{EPOCH}:%{VERSION}-%{RELEASE}\\n' kdt-hello",
        )
    assert code == 0, out
    assert out.strip().splitlines()[-1] == "kdt-hello=1:1.1-1"

"""The pure planning side of each stage, and the Runner that keeps --dry free of effects."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from docker.errors import DockerException

from kairos_distro import artifacts, build, ci, naming, publish, release
from kairos_distro.config import Cell
from kairos_distro.naming import NamingError
from kairos_distro.registry import OCI_MANIFEST, Registry, RegistryError, is_loopback
from kairos_distro.registry import manifest_bytes as canonical
from kairos_distro.runner import Runner, Skip, StepError

K3S = {"provider": "k3s", "provider_version": "v1.35.1+k3s1"}
DIGEST = "sha256:" + "b" * 64


def after(argv: list[str], flag: str) -> list[str]:
    """Every value that follows `flag` in argv, in order."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def dry_runner() -> tuple[Runner, io.StringIO]:
    out = io.StringIO()
    return Runner(dry=True, out=out), out


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything asks for a Docker client."""

    def refuse(self: Runner) -> Any:
        raise AssertionError("a dry run asked for the Docker engine")

    monkeypatch.setattr(Runner, "docker", refuse)


# -- build -----------------------------------------------------------------------


def test_build_args_core_cell(make_release) -> None:
    rel = make_release({"arch": "amd64"})
    assert build.build_args(rel, rel.cells[0], "ubuntu:24.04@" + DIGEST) == {
        "BASE_IMAGE": "ubuntu:24.04@" + DIGEST,
        "KAIROS_INIT_IMAGE": "quay.io/kairos/kairos-init:v4.3.0",
        "MODEL": "generic",
        "TRUSTED_BOOT": "false",
        "KUBERNETES_DISTRO": "",
        "KUBERNETES_VERSION": "",
        "VERSION": "v0.1.0",
        "FIPS": "no-fips",
    }


def test_build_args_provider_uki_fips_cell(make_release) -> None:
    cell = {"arch": "arm64", "trusted_boot": True, "fips": True, **K3S}
    rel = make_release(cell, base_image="fedora:41")  # FIPS: not on Ubuntu
    args = build.build_args(rel, rel.cells[0], "fedora:41")
    assert args["KUBERNETES_DISTRO"] == "k3s"
    assert args["KUBERNETES_VERSION"] == "v1.35.1+k3s1"
    assert args["TRUSTED_BOOT"] == "true"
    assert args["FIPS"] == "fips"


def test_riscv64_cells_build_with_their_own_kairos_init(make_release) -> None:
    own = "quay.io/kairos/kairos-init:v0.17.3"
    rel = make_release({"arch": "amd64"}, {"arch": "riscv64"}, kairos_init_riscv64=own)
    amd64, riscv64 = rel.cells
    assert build.build_args(rel, riscv64, "debian:13")["KAIROS_INIT_IMAGE"] == own
    assert build.labels(rel, riscv64, DIGEST, "abc")["io.kairos.init.image"] == own
    assert build.build_args(rel, amd64, "debian:13")["KAIROS_INIT_IMAGE"] == rel.kairos_init


def test_labels(make_release) -> None:
    rel = make_release({"arch": "amd64", **K3S}, base_image=f"ubuntu:24.04@{DIGEST}")
    oci = "org.opencontainers.image"
    assert build.labels(rel, rel.cells[0], DIGEST, "abc123") == {
        f"{oci}.source": "https://github.com/my-org/my-org-kairos-ubuntu",
        f"{oci}.description": "Kairos images of my distro",
        f"{oci}.revision": "abc123",
        f"{oci}.version": "v0.1.0",
        f"{oci}.base.name": "ubuntu:24.04",  # the digest has its own label
        f"{oci}.base.digest": DIGEST,
        "io.kairos.init.image": "quay.io/kairos/kairos-init:v4.3.0",
        "io.kairos.cell": "amd64-generic-k3s-v1.35.1-k3s1",
    }


def test_build_plan_argv(make_release, tmp_path) -> None:
    rel = make_release({"arch": "arm64", **K3S})
    cell = rel.cells[0]
    plan = build.plan(
        rel,
        cell,
        builder=["docker", "build"],
        base_image="ubuntu:24.04",
        base_digest=DIGEST,
        revision="abc123",
        context=tmp_path,
        iidfile=tmp_path / "iid",
    )
    argv = plan.argv
    assert plan.tag == naming.local_tag(rel, cell)
    assert argv[:6] == ["docker", "build", "--progress", "plain", "--platform", "linux/arm64"]
    assert after(argv, "--file") == [str(tmp_path / "Dockerfile")]
    assert after(argv, "--tag") == [plan.tag]
    assert after(argv, "--iidfile") == [str(tmp_path / "iid")]
    assert "--network" not in argv
    assert after(argv, "--build-arg") == [f"{k}={v}" for k, v in plan.build_args.items()]
    assert after(argv, "--label") == [f"{k}={v}" for k, v in plan.labels.items()]
    assert argv[-1] == str(tmp_path)  # the context comes last
    # Plain `docker build` only uses BuildKit (needed for RUN --mount) when told to.
    assert plan.env == {"DOCKER_BUILDKIT": "1"}


def test_build_plan_with_buildx_and_network(make_release) -> None:
    rel = make_release({"arch": "amd64"})
    plan = build.plan(
        rel,
        rel.cells[0],
        builder=["docker", "buildx", "build", "--load"],
        base_image="ubuntu:24.04",
        base_digest=DIGEST,
        network="host",
    )
    assert plan.argv[:4] == ["docker", "buildx", "build", "--load"]
    assert after(plan.argv, "--network") == ["host"]
    assert plan.env == {}
    assert plan.argv[-1] == "."


def test_resolve_base_pinned_needs_no_engine(no_docker) -> None:
    ref = f"ubuntu:24.04@{DIGEST}"
    assert build.resolve_base(Runner(dry=False), ref) == (ref, DIGEST)


def test_dry_build_prints_and_never_touches_docker(make_release, no_docker, tmp_path) -> None:
    rel = make_release({"arch": "arm64", "fips": True, **K3S}, base_image="fedora:41")
    runner, out = dry_runner()
    assert build.run(runner, rel, rel.cells[0], context=tmp_path) is None
    lines = out.getvalue().splitlines()
    cell_id = "arm64-generic-k3s-v1.35.1-k3s1-fips"
    assert len(lines) == 2
    assert lines[0].startswith(f"[{cell_id}] would run: docker build --progress plain")
    argv = shlex.split(lines[0].split("would run: ", 1)[1])
    assert "BASE_IMAGE=fedora:41" in argv
    assert "org.opencontainers.image.base.digest=<resolved at build time>" in argv
    assert lines[1] == (
        f"[{cell_id}] would tag kairos-local/my-org-kairos-ubuntu:{cell_id} as ghcr.io/my-org/"
        "FLAVOR:FLAVOR_RELEASE-standard-arm64-generic-v0.1.0-k3s-v1.35.1-k3s1-fips"
    )


# -- artifacts ----------------------------------------------------------------------


def expected(rel, cell) -> naming.Identity:
    return naming.Identity.expected(rel, cell)


def test_generic_cell_gets_an_iso(make_release) -> None:
    rel = make_release({"arch": "arm64"})
    cell = rel.cells[0]
    (plan,) = artifacts.plan_media(rel, cell, "ghcr.io/my-org/ubuntu:tag", expected(rel, cell))
    assert (plan.kind, plan.image, plan.privileged, plan.keys) == (
        "iso",
        "quay.io/kairos/auroraboot:v0.26.2",
        False,
        None,
    )
    assert plan.command == [
        "--debug",
        "build-iso",
        "--output",
        "/output/",
        "--arch",
        "arm64",
        "docker:ghcr.io/my-org/ubuntu:tag",
    ]
    assert plan.output == "kairos-FLAVOR-FLAVOR_RELEASE-core-arm64-generic-v0.1.0.iso"


def test_board_gets_a_raw_disk_image_instead_of_an_iso(make_release) -> None:
    rel = make_release({"arch": "arm64", "model": "rpi4"})
    cell = rel.cells[0]
    (plan,) = artifacts.plan_media(rel, cell, "ghcr.io/my-org/ubuntu:tag", expected(rel, cell))
    assert plan.kind == "raw" and plan.privileged  # AuroraBoot partitions a disk file
    assert plan.command == [
        "--debug",
        "--set",
        "disable_http_server=true",
        "--set",
        "disable_netboot=true",
        "--set",
        "container_image=docker:ghcr.io/my-org/ubuntu:tag",
        "--set",
        "state_dir=/output",
        "--set",
        "disk.efi=true",
    ]
    assert plan.output == "kairos-FLAVOR-FLAVOR_RELEASE-core-arm64-rpi4-v0.1.0.raw"


@pytest.mark.parametrize(
    "cell, media",
    [
        ({"arch": "amd64"}, ("iso",)),
        ({"arch": "amd64", "raw": True}, ("iso", "raw")),
        ({"arch": "arm64", "model": "rpi4"}, ("raw",)),
        ({"arch": "arm64", "model": "rpi4", "raw": False}, ()),
        ({"arch": "amd64", "trusted_boot": True}, ("uki",)),
    ],
)
def test_media_per_cell(make_release, cell, media) -> None:
    rel = make_release(cell)
    plans = artifacts.plan_media(rel, rel.cells[0], "ref", expected(rel, rel.cells[0]))
    assert tuple(p.kind for p in plans) == media == rel.cells[0].media


def test_trusted_boot_gets_a_uki_iso_signed_with_the_owner_keys(make_release, tmp_path) -> None:
    rel = make_release({"arch": "amd64", "trusted_boot": True})
    cell = rel.cells[0]
    (plan,) = artifacts.plan_media(rel, cell, "r:t", expected(rel, cell), tmp_path / "keys")
    assert plan.kind == "uki" and plan.keys == tmp_path / "keys"
    assert plan.command == [
        "--debug",
        "build-uki",
        "--output-dir",
        "/output/",
        "--output-type",
        "iso",
        "--public-keys",
        "/keys",
        "--tpm-pcr-private-key",
        "/keys/tpm2-pcr-private.pem",
        "--sb-key",
        "/keys/db.key",
        "--sb-cert",
        "/keys/db.pem",
        "docker:r:t",
    ]
    assert plan.output == "kairos-FLAVOR-FLAVOR_RELEASE-core-amd64-generic-v0.1.0-uki.iso"
    mounts = artifacts.volumes(plan, "/run/docker.sock", tmp_path / "out")
    assert mounts[str((tmp_path / "keys").resolve())] == {"bind": "/keys", "mode": "ro"}


def test_dry_artifacts_print_and_write_nothing(
    make_release, no_docker, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    rel = make_release({"arch": "amd64", **K3S})
    runner, out = dry_runner()
    target = tmp_path / "artifacts"
    assert artifacts.make_artifacts(runner, rel, None, rel.cells[0], target) is None
    assert not target.exists()
    ref = "ghcr.io/my-org/FLAVOR:FLAVOR_RELEASE-standard-amd64-generic-v0.1.0-k3s-v1.35.1-k3s1"
    cell_id = rel.cells[0].id
    name = "kairos-FLAVOR-FLAVOR_RELEASE-standard-amd64-generic-v0.1.0-k3sv1.35.1+k3s1"
    assert out.getvalue() == (
        f"[{cell_id}] would run quay.io/kairos/auroraboot:v0.26.2 --debug build-iso "
        f"--output /output/ --arch amd64 docker:{ref} "
        f"(/nonexistent.sock:/var/run/docker.sock, {target / cell_id}:/output)\n"
        f"[{cell_id}] would run {rel.syft} scan docker:IMAGE --output cyclonedx-json@1.6 "
        "--source-name NAME --source-version TAG --quiet "
        f"(/nonexistent.sock:/var/run/docker.sock) > {target / cell_id / name}.cdx.json\n"
    )


def test_dry_board_and_trusted_boot_runs(make_release, no_docker, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    rel = make_release({"arch": "arm64", "model": "rpi4"}, {"arch": "amd64", "trusted_boot": True})
    runner, out = dry_runner()
    for cell in rel.cells:
        artifacts.make_artifacts(runner, rel, None, cell, tmp_path, keys=Path("keys"))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[arm64-rpi4] would run --privileged quay.io/kairos/auroraboot")
    assert "--set disk.efi=true" in lines[0]
    assert lines[2].startswith("[amd64-generic-uki] would run quay.io/kairos/auroraboot")
    assert lines[2].endswith(", keys:/keys:ro)")


@pytest.mark.parametrize(
    "host, socket",
    [
        (None, "/var/run/docker.sock"),
        ("unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock"),
    ],
)
def test_docker_socket(monkeypatch, host, socket) -> None:
    if host is None:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    else:
        monkeypatch.setenv("DOCKER_HOST", host)
    assert artifacts.docker_socket() == socket


def test_docker_socket_skips_a_remote_engine(monkeypatch) -> None:
    # AuroraBoot mounts the socket; a TCP engine (GitLab's dind) has none to mount.
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    with pytest.raises(Skip, match="needs a local Docker socket"):
        artifacts.docker_socket()


def write_iso(directory: Path, name: str = "k.iso", data: bytes = b"iso bytes") -> Path:
    iso = directory / name
    iso.write_bytes(data)
    return iso


def test_check_sha256_accepts_matching_checksum(tmp_path) -> None:
    iso = write_iso(tmp_path)
    digest = hashlib.sha256(b"iso bytes").hexdigest()
    (tmp_path / "k.iso.sha256").write_text(f"{digest}  /output/k.iso\n")
    artifacts.check_sha256(iso)  # raises on any problem


@pytest.mark.parametrize(
    "content, reason",
    [
        (None, "k.iso.sha256 was not written"),
        (f"{'0' * 64}  k.iso\n", "k.iso does not match k.iso.sha256"),
        (f"{hashlib.sha256(b'iso bytes').hexdigest()}  other.iso\n", "does not name k.iso"),
        ("garbage\n", "does not name k.iso"),
    ],
)
def test_check_sha256_refusals(tmp_path, content, reason) -> None:
    iso = write_iso(tmp_path)
    if content is not None:
        (tmp_path / "k.iso.sha256").write_text(content)
    with pytest.raises(StepError) as caught:
        artifacts.check_sha256(iso)
    assert reason in caught.value.reason


def test_replace_dir_swaps_in_the_new_cell_directory(tmp_path) -> None:
    final = tmp_path / "amd64-generic"
    final.mkdir()
    (final / "old.iso").write_text("old")
    staging = tmp_path / ".staging"
    staging.mkdir()
    (staging / "new.iso").write_text("new")
    artifacts.replace_dir(staging, final)
    assert sorted(p.name for p in final.iterdir()) == ["new.iso"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["amd64-generic"]


# -- release matrix -------------------------------------------------------------------


@pytest.fixture
def three_cells(make_release):
    return make_release(
        {"arch": "amd64"},
        {"arch": "arm64", "model": "rpi4", **K3S},
        {"arch": "riscv64", "trusted_boot": True},
    )


def test_matrix_json(three_cells) -> None:
    rows = json.loads(ci.matrix_json(three_cells))
    assert rows == [
        {
            "cell": "amd64-generic",
            "arch": "amd64",
            "platform": "linux/amd64",
            "model": "generic",
            "variant": "core",
            "provider": "none",
            "provider_version": "",
            "trusted_boot": False,
            "fips": False,
        },
        {
            "cell": "arm64-rpi4-k3s-v1.35.1-k3s1",
            "arch": "arm64",
            "platform": "linux/arm64",
            "model": "rpi4",
            "variant": "standard",
            "provider": "k3s",
            "provider_version": "v1.35.1+k3s1",
            "trusted_boot": False,
            "fips": False,
        },
        {
            "cell": "riscv64-generic-uki",
            "arch": "riscv64",
            "platform": "linux/riscv64",
            "model": "generic",
            "variant": "core",
            "provider": "none",
            "provider_version": "",
            "trusted_boot": True,
            "fips": False,
        },
    ]


def test_github_matrix_is_one_line_with_a_runner_per_arch(three_cells) -> None:
    text = ci.github_matrix(three_cells)
    assert "\n" not in text  # $GITHUB_OUTPUT takes key=value on one line
    amd64, arm64, riscv64 = "ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-24.04"
    assert json.loads(text) == {
        "include": [
            {"cell": "amd64-generic", "arch": "amd64", "runner": amd64, "trusted_boot": False},
            {
                "cell": "arm64-rpi4-k3s-v1.35.1-k3s1",
                "arch": "arm64",
                "runner": arm64,
                "trusted_boot": False,
            },
            {
                "cell": "riscv64-generic-uki",
                "arch": "riscv64",
                "runner": riscv64,
                "trusted_boot": True,
            },
        ]
    }


def test_gitlab_pipeline(three_cells) -> None:
    pipeline = yaml.safe_load(ci.gitlab_pipeline(three_cells))
    assert pipeline == {
        "include": [{"local": ".gitlab/cell.yml"}],
        "cell": {
            "extends": ".cell",
            "parallel": {
                "matrix": [
                    {
                        "CELL": [
                            "amd64-generic",
                            "arm64-rpi4-k3s-v1.35.1-k3s1",
                            "riscv64-generic-uki",
                        ]
                    }
                ]
            },
        },
    }


def test_cell_row(three_cells) -> None:
    row = ci.cell_row(three_cells, three_cells.cells[1])
    assert row == {
        "cell": "arm64-rpi4-k3s-v1.35.1-k3s1",
        "arch": "arm64",
        "model": "rpi4",
        "variant": "standard",
        "provider": "k3s v1.35.1+k3s1",
        "trusted_boot": "no",
        "fips": "no",
        "image": "ghcr.io/my-org/FLAVOR:FLAVOR_RELEASE-standard-arm64-rpi4-v0.1.0-k3s-v1.35.1-k3s1",
    }


# -- publish and the registry client ------------------------------------------------------


def test_oci_manifest_keeps_only_provenance_annotations() -> None:
    config = {"mediaType": publish.CONFIG_TYPE, "digest": DIGEST, "size": 3}
    layers = [{"mediaType": publish.LAYER_TYPE, "digest": DIGEST, "size": 9}]
    labels = {
        "org.opencontainers.image.source": "https://example.com/repo",
        "org.opencontainers.image.revision": "",  # empty: left out
        "org.opencontainers.image.version": "v0.1.0",
        "org.opencontainers.image.description": "not an annotation",
        "io.kairos.cell": "amd64-generic",
    }
    assert publish.oci_manifest(config, layers, labels) == {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers,
        "annotations": {
            "org.opencontainers.image.source": "https://example.com/repo",
            "org.opencontainers.image.version": "v0.1.0",
        },
    }


def test_oci_manifest_without_labels_has_no_annotations() -> None:
    manifest = publish.oci_manifest({"digest": DIGEST}, [], {})
    assert "annotations" not in manifest
    assert manifest["mediaType"] == OCI_MANIFEST


def test_manifest_bytes_are_canonical() -> None:
    one = {"schemaVersion": 2, "layers": [{"size": 1, "digest": DIGEST}], "mediaType": "m"}
    two = {"mediaType": "m", "layers": [{"digest": DIGEST, "size": 1}], "schemaVersion": 2}
    # Same content, same bytes, same digest: re-publishing never makes a new manifest.
    assert canonical(one) == canonical(two)
    assert canonical(one) == (
        b'{"layers":[{"digest":"' + DIGEST.encode() + b'","size":1}],'
        b'"mediaType":"m","schemaVersion":2}'
    )
    assert json.loads(canonical(one)) == one


def test_dry_publish_prints_and_never_touches_docker(make_release, no_docker) -> None:
    rel = make_release({"arch": "amd64", **K3S}, registry="127.0.0.1:5000", repository="distro")
    runner, out = dry_runner()
    cell_id = rel.cells[0].id
    assert publish.publish(runner, rel, rel.cells[0], None) is None
    assert out.getvalue().splitlines() == [
        f"[{cell_id}] would push kairos-local/my-org-kairos-ubuntu:{cell_id} "
        "to 127.0.0.1:5000/my-org/distro by digest",
        f"[{cell_id}] would then tag it "
        "FLAVOR_RELEASE-standard-amd64-generic-v0.1.0-k3s-v1.35.1-k3s1",
    ]


class FakeRegistry:
    """Holds manifests in memory and records tag writes."""

    host = "registry.test"

    def __init__(self, manifests: dict[str, tuple[bytes, str, str]]) -> None:
        self.manifests = manifests
        self.puts: list[tuple[str, str, bytes, str]] = []

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str] | None:
        return self.manifests.get(reference)

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        self.puts.append((repo, reference, body, media_type))
        return reference


def test_move_tags_reuses_the_pushed_bytes() -> None:
    body = canonical({"schemaVersion": 2})
    fake = FakeRegistry({DIGEST: (body, OCI_MANIFEST, DIGEST)})
    publish.move_tags(fake, "ns/distro", DIGEST, ["t1", "t2"])  # type: ignore[arg-type]
    assert fake.puts == [
        ("ns/distro", "t1", body, OCI_MANIFEST),
        ("ns/distro", "t2", body, OCI_MANIFEST),
    ]


def test_move_tags_refuses_a_missing_manifest() -> None:
    fake = FakeRegistry({})
    with pytest.raises(RegistryError, match=f"has no manifest {DIGEST}"):
        publish.move_tags(fake, "ns/distro", DIGEST, ["t1"])  # type: ignore[arg-type]
    assert fake.puts == []  # no tag may point at nothing


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("[::1]:5000", True),
        ("ghcr.io", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.com", False),
    ],
)
def test_only_loopback_registries_use_plain_http(host, loopback) -> None:
    assert is_loopback(host) is loopback
    scheme = "http" if loopback else "https"
    assert Registry(host).base == f"{scheme}://{host}"


# -- runner ------------------------------------------------------------------------------


def test_dry_runner_prints_the_command_and_runs_nothing(tmp_path) -> None:
    marker = tmp_path / "ran"
    argv = [sys.executable, "-c", f"open({str(marker)!r}, 'w')", "two words"]
    runner, out = dry_runner()
    runner.run("cell-a", "build", argv)
    assert not marker.exists()
    assert out.getvalue() == f"[cell-a] would run: {shlex.join(argv)}\n"


def test_runner_streams_output_with_the_cell_prefix() -> None:
    out = io.StringIO()
    script = "import os; print('hello'); print(os.environ['EXTRA'])"
    Runner(out=out).run("cell-a", "build", [sys.executable, "-c", script], {"EXTRA": "from env"})
    assert out.getvalue() == "[cell-a] hello\n[cell-a] from env\n"


class _InterruptOnWrite(io.StringIO):
    """A terminal whose user presses Ctrl-C as the first line arrives."""

    def write(self, text: str) -> int:
        raise KeyboardInterrupt


def test_an_interrupted_run_stops_its_child(tmp_path) -> None:
    pidfile = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "print('working', flush=True); time.sleep(120)"
    )
    with pytest.raises(KeyboardInterrupt):
        Runner(out=_InterruptOnWrite()).run("cell-a", "build", [sys.executable, "-c", script])
    with pytest.raises(ProcessLookupError):  # stopped and reaped: no orphaned build
        os.kill(int(pidfile.read_text()), 0)


def test_runner_failure_keeps_the_output_tail() -> None:
    script = "import sys\nfor i in range(20): print(i)\nsys.exit(3)"
    with pytest.raises(StepError) as caught:
        Runner(out=io.StringIO()).run("cell-a", "build", [sys.executable, "-c", script])
    err = caught.value
    # The last line names the cause in the one-line error; the tail keeps the context.
    assert str(err) == f"cell-a: build: {Path(sys.executable).name} exited 3: 19"
    assert err.tail == [str(i) for i in range(8, 20)]  # the last TAIL lines only


def test_runner_reports_a_missing_program() -> None:
    with pytest.raises(StepError, match=r"^cell-a: build: cannot run /nonexistent/docker: "):
        Runner(out=io.StringIO()).run("cell-a", "build", ["/nonexistent/docker", "build"])


def test_runner_reports_an_unreachable_engine(monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    with pytest.raises(StepError, match=r"^engine: connect: Docker engine unreachable"):
        Runner(out=io.StringIO()).docker()


# -- for_each_cell -----------------------------------------------------------------------


def failing_act(cell: Cell) -> str:
    """One failure of each kind the stages raise, by arch; riscv64 succeeds."""
    if cell.arch == "amd64" and not cell.fips:
        lines = [f"line {i}" for i in range(8)]
        raise StepError(cell.id, "build", "docker exited 1", lines)
    if cell.arch == "amd64":
        raise NamingError("image tag 'x y' is not a valid OCI tag")
    if cell.arch == "arm64" and not cell.fips:
        raise DockerException("500 Server Error:\n  no space left on device")
    if cell.arch == "arm64":
        raise RegistryError("registry ghcr.io unreachable (connection refused)")
    return f"built {cell.id}"


@pytest.fixture
def five_cells(make_release):
    return make_release(
        {"arch": "amd64"},
        {"arch": "amd64", "fips": True},
        {"arch": "arm64"},
        {"arch": "arm64", "fips": True},
        {"arch": "riscv64"},
        base_image="debian:13",  # FIPS is refused on Ubuntu; debian:13 has all three arches
    )


def test_for_each_cell_goes_on_after_a_failing_cell(five_cells) -> None:
    out = io.StringIO()
    outcomes = release.for_each_cell(Runner(out=out), list(five_cells.cells), "build", failing_act)
    assert [(o.cell.id, o.ok) for o in outcomes] == [
        ("amd64-generic", False),
        ("amd64-generic-fips", False),
        ("arm64-generic", False),
        ("arm64-generic-fips", False),
        ("riscv64-generic", True),
    ]
    assert [o.detail for o in outcomes] == [
        "amd64-generic: build: docker exited 1",
        "amd64-generic-fips: build: image tag 'x y' is not a valid OCI tag",
        "arm64-generic: build: 500 Server Error: no space left on device",  # made one line
        "arm64-generic-fips: build: registry ghcr.io unreachable (connection refused)",
        "built riscv64-generic",
    ]
    assert all(isinstance(o.error, StepError) for o in outcomes if not o.ok)
    text = out.getvalue()
    assert "[amd64-generic] FAILED build: docker exited 1\n" in text
    # Only the last five lines of a failed command's output are repeated.
    assert "[amd64-generic]   | line 2\n" not in text
    assert "[amd64-generic]   | line 3\n" in text
    assert "[amd64-generic]   | line 7\n" in text
    summary = text[text.index("build summary") :].splitlines()
    assert summary[1].split() == ["CELL", "RESULT", "SECONDS", "DETAIL"]
    assert [line.split()[:2] for line in summary[2:]] == [
        ["amd64-generic", "FAILED"],
        ["amd64-generic-fips", "FAILED"],
        ["arm64-generic", "FAILED"],
        ["arm64-generic-fips", "FAILED"],
        ["riscv64-generic", "ok"],
    ]


def test_for_each_cell_dry_prints_no_summary(five_cells) -> None:
    runner, out = dry_runner()
    outcomes = release.for_each_cell(runner, list(five_cells.cells), "iso", failing_act)
    assert [o.ok for o in outcomes] == [False, False, False, False, True]
    assert "summary" not in out.getvalue()

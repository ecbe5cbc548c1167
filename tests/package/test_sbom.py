"""SBOM stage: syft's command, the engine socket it reads, and the settled document.

No Docker here: syft's output is scripted bytes (shaped as syft prints it,
syft_bom.py) returned by a fake runner's `container(..., capture=True)`, and the
image's creation time comes from a stand-in docker-py client. The real syft, on
real images, is tests/test_sbom_real.py.
"""

from __future__ import annotations

import io
import json
import stat
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import pytest
import syft_bom
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from fake_runner import FakeRunner
from package_helpers import UBUNTU_CORE

from kairos_distro import artifacts, naming, sbom
from kairos_distro.build import Built
from kairos_distro.runner import Runner, StepError
from kairos_distro.sbom import Package, SbomError

IMAGE_ID = "sha256:" + "ab" * 32
SYFT = "docker.io/anchore/syft:v1.57.0@sha256:" + "5" * 64
CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PACKAGES = [
    Package("libc6", "2.36-9+deb12u14", "amd64", "deb", "", "glibc"),
    Package("bsdutils", "1:2.38.1-5+deb12u1", "amd64", "deb", "GPL-2.0-only", "util-linux"),
    Package("tzdata", "2024a-0+deb12u1", "all", "deb"),
]
AGENT = syft_bom.go_module("github.com/kairos-io/kairos-agent/v2", "v2.20.0")


def syft_output(packages: list[Package] = PACKAGES, **changes: Any) -> bytes:
    """What syft prints: its own timestamp and a random serial number each run."""
    doc = syft_bom.document(packages, others=[AGENT])
    doc["serialNumber"] = changes.pop("serial", f"urn:uuid:{uuid.uuid4()}")
    doc["metadata"]["timestamp"] = changes.pop("timestamp", "2026-05-01T12:00:07Z")
    assert not changes, changes
    return json.dumps(doc, indent=2).encode()


def schema_errors(text: str) -> object:
    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)


# --- syft's command and the socket it reads ------------------------------------------


def test_command_scans_the_local_image_by_id_under_its_published_name() -> None:
    argv = sbom.command(IMAGE_ID, "ghcr.io/my-org/ubuntu", "24.04-core-amd64-generic-v0.1.0")
    assert argv == [
        "scan",
        f"docker:{IMAGE_ID}",  # the engine's image, never a registry pull
        "--output",
        "cyclonedx-json@1.6",
        "--source-name",
        "ghcr.io/my-org/ubuntu",
        "--source-version",
        "24.04-core-amd64-generic-v0.1.0",
        "--quiet",
    ]
    assert sbom.FORMAT == "cyclonedx-json@1.6"


@pytest.mark.parametrize(
    "host, socket",
    [
        (None, "/var/run/docker.sock"),
        ("", "/var/run/docker.sock"),
        ("unix:///var/run/docker.sock", "/var/run/docker.sock"),
        ("unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock"),  # rootless
        ("tcp://docker:2376", "/var/run/docker.sock"),  # docker-in-docker keeps its own
        ("ssh://me@builder", "/var/run/docker.sock"),
    ],
    ids=["unset", "empty", "unix-default", "unix-rootless", "tcp", "ssh"],
)
def test_engine_socket_is_the_engines_own_path(monkeypatch, host, socket) -> None:
    if host is None:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    else:
        monkeypatch.setenv("DOCKER_HOST", host)
    assert sbom.engine_socket() == socket
    # Mounted where syft (and the docker CLI inside it) looks for an engine.
    assert sbom.volumes() == {socket: {"bind": "/var/run/docker.sock", "mode": "rw"}}


# --- the image's creation time -----------------------------------------------------


@dataclass
class FakeImage:
    attrs: dict[str, Any]


@dataclass
class FakeClient:
    """images.get of a docker-py client, for the images it knows."""

    created: dict[str, str] = field(
        default_factory=lambda: {IMAGE_ID: "2024-05-01T12:00:00.123456789Z"}  # as the engine says
    )

    @property
    def images(self) -> FakeClient:
        return self

    def get(self, image: str) -> FakeImage:
        if image not in self.created:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        return FakeImage({"Id": image, "Created": self.created[image]})


@pytest.mark.parametrize(
    "text",
    ["2024-05-01T12:00:00.123456789Z", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00+00:00"],
)
def test_image_created_keeps_the_seconds_of_the_engines_time(text) -> None:
    client = FakeClient({IMAGE_ID: text})
    assert sbom.image_created(client, IMAGE_ID) == CREATED


def test_image_created_of_a_missing_image_is_one_line() -> None:
    with pytest.raises(SbomError) as caught:
        sbom.image_created(FakeClient(), "sha256:gone")
    assert str(caught.value) == "sha256:gone: image not found in the local engine"


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01T00:00:00Z"])
def test_image_created_refuses_a_time_it_cannot_read(text) -> None:
    with pytest.raises(SbomError) as caught:
        sbom.image_created(FakeClient({IMAGE_ID: text}), IMAGE_ID)
    assert str(caught.value).startswith(f"{IMAGE_ID}: unreadable creation time")
    assert "\n" not in str(caught.value)


# --- settle: syft's document made deterministic --------------------------------------


def test_settle_gives_the_same_bytes_for_the_same_image() -> None:
    # Two syft runs of one image differ in their timestamp and serial number only.
    first = sbom.settle(syft_output(timestamp="2026-05-01T12:00:07Z"), CREATED)
    again = sbom.settle(syft_output(timestamp="2026-06-30T23:59:59Z"), CREATED)
    assert first == again
    doc = json.loads(first)
    assert doc["metadata"]["timestamp"] == "2024-05-01T12:00:00Z"  # the image's, not syft's
    assert doc["serialNumber"].startswith("urn:uuid:")
    assert uuid.UUID(doc["serialNumber"].removeprefix("urn:uuid:")).version == 5
    assert first.endswith("}\n")


def test_settle_keeps_everything_syft_wrote() -> None:
    raw = syft_output()
    settled = json.loads(sbom.settle(raw, CREATED))
    original = json.loads(raw)
    for doc in (settled, original):
        del doc["serialNumber"], doc["metadata"]["timestamp"]
    assert settled == original
    assert schema_errors(sbom.settle(raw, CREATED)) is None  # still CycloneDX 1.6


def test_settle_is_idempotent() -> None:
    once = sbom.settle(syft_output(), CREATED)
    assert sbom.settle(once.encode(), CREATED) == once


def test_the_serial_number_follows_the_content() -> None:
    def serial(raw: bytes, created: datetime = CREATED) -> str:
        return json.loads(sbom.settle(raw, created))["serialNumber"]

    same = serial(syft_output())
    assert serial(syft_output(serial="urn:uuid:" + "0" * 8 + "-0000-4000-8000-" + "0" * 12)) == same
    newer = [PACKAGES[0], PACKAGES[1], Package("tzdata", "2025a-0+deb12u1", "all", "deb")]
    assert serial(syft_output(newer)) != same  # one package moved
    assert serial(syft_output(PACKAGES[:2])) != same  # one package gone
    assert serial(syft_output(), datetime(2024, 5, 2, tzinfo=UTC)) != same  # another image


def test_settle_writes_text_as_is() -> None:
    doc = json.loads(syft_output())
    doc["components"][0]["licenses"] = [{"license": {"name": "Licence libre (é)"}}]
    text = sbom.settle(json.dumps(doc).encode(), CREATED)
    assert "Licence libre (é)" in text


def test_settle_gives_a_document_without_metadata_its_time() -> None:
    raw = b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}'
    doc = json.loads(sbom.settle(raw, CREATED))
    assert doc["metadata"] == {"timestamp": "2024-05-01T12:00:00Z"}
    assert sbom.component_purls(doc) == []


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "syft wrote no JSON document ("),
        (b"not json\n", "syft wrote no JSON document ("),
        (b'{"bomFormat": "CycloneDX",', "syft wrote no JSON document ("),
        (b"[]", "syft wrote no CycloneDX document"),
        (b'"CycloneDX"', "syft wrote no CycloneDX document"),
        (b'{"spdxVersion": "SPDX-2.3"}', "syft wrote no CycloneDX document"),
        (b'{"bomFormat": "SPDX"}', "syft wrote no CycloneDX document"),
    ],
    ids=["empty", "text", "cut-short", "list", "string", "spdx", "other-format"],
)
def test_settle_refuses_what_is_not_a_cyclonedx_document(raw, message) -> None:
    with pytest.raises(SbomError) as caught:
        sbom.settle(raw, CREATED)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_component_purls_reads_str_and_dict_and_nested_components() -> None:
    doc = {
        "components": [
            {"name": "a", "purl": "pkg:deb/debian/a@1"},
            {"name": "b", "components": [{"name": "c", "purl": "pkg:deb/debian/c@3"}]},
            {"name": "d", "purl": "pkg:deb/debian/d@4"},
        ]
    }
    expected = ["pkg:deb/debian/a@1", "pkg:deb/debian/c@3", "pkg:deb/debian/d@4"]
    assert sbom.component_purls(doc) == expected
    assert sbom.component_purls(json.dumps(doc)) == expected


def test_component_purls_of_syft_output_are_its_packages_and_modules() -> None:
    found = sbom.component_purls(syft_output().decode())
    assert found == [
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc",
        "pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bdeb12u1?arch=amd64&distro=debian-12"
        "&upstream=util-linux",
        "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
        "pkg:golang/github.com/kairos-io/kairos-agent/v2@v2.20.0",
    ]  # the operating-system component has no purl: not counted


# --- write_sbom: syft as a container, the document settled into place ------------------


def syft_runner(*outputs: bytes | Exception, client: Any = None) -> FakeRunner:
    """A runner whose syft prints `outputs`, one per run, in turn."""
    left = list(outputs)

    def printed(call: dict[str, Any]) -> bytes:
        out = left.pop(0)
        if isinstance(out, Exception):
            raise out
        return out

    return FakeRunner(out=io.StringIO(), outputs={"syft": printed}, client=client or FakeClient())


def write(runner: FakeRunner, dest: Path, image: str = IMAGE_ID) -> tuple[Path, int]:
    return sbom.write_sbom(
        runner,
        "amd64-generic",
        SYFT,
        image,
        dest,
        name="ghcr.io/my-org/ubuntu",
        version="24.04-core-amd64-generic-v0.1.0",
    )


def test_write_sbom_runs_syft_offline_against_the_engine_socket(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    runner = syft_runner(syft_output())
    write(runner, tmp_path / "sbom.cdx.json")
    (call,) = runner.containers
    assert call == {
        "cell": "amd64-generic",
        "step": "sbom",
        "image": SYFT,  # the pinned syft, as release.yaml names it
        "command": sbom.command(
            IMAGE_ID, "ghcr.io/my-org/ubuntu", "24.04-core-amd64-generic-v0.1.0"
        ),
        "volumes": {"/run/user/1000/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}},
        "label": "syft",
        "network": "none",  # nothing leaves the machine
        "privileged": False,
        "user": "",
        "env": {"SYFT_CHECK_FOR_APP_UPDATE": "false"},
        "capture": True,  # stdout is the document
    }


def test_write_sbom_writes_the_settled_document_in_place(tmp_path) -> None:
    dest = tmp_path / "artifacts" / "cell" / "sbom.cdx.json"
    raw = syft_output()
    assert write(syft_runner(raw), dest) == (dest, 4)  # three packages and one Go module
    assert [p.name for p in dest.parent.iterdir()] == ["sbom.cdx.json"]  # no temp file left
    assert dest.read_text(encoding="utf-8") == sbom.settle(raw, CREATED)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644  # an artifact, not a private file
    assert schema_errors(dest.read_text()) is None


def test_write_sbom_of_the_same_image_twice_is_the_same_bytes(tmp_path) -> None:
    runner = syft_runner(
        syft_output(timestamp="2026-05-01T12:00:07Z"), syft_output(timestamp="2026-05-02T08:00:00Z")
    )
    first, again = tmp_path / "first.json", tmp_path / "again.json"
    write(runner, first)
    write(runner, again)
    assert again.read_bytes() == first.read_bytes()


def test_write_sbom_of_an_image_without_packages_lists_its_modules(tmp_path) -> None:
    # Hadron: no package manager, but syft still finds the Go modules of its binaries.
    dest = tmp_path / "sbom.json"
    assert write(syft_runner(syft_output([])), dest) == (dest, 1)


def test_write_sbom_of_a_missing_image_fails_before_syft_runs(tmp_path) -> None:
    runner = syft_runner(syft_output())
    with pytest.raises(SbomError, match="image not found in the local engine"):
        write(runner, tmp_path / "sbom.json", image="sha256:gone")
    assert runner.containers == []
    assert not (tmp_path / "sbom.json").exists()


@pytest.mark.parametrize(
    "printed, error",
    [
        (StepError("amd64-generic", "sbom", "syft exited 1: could not fetch image"), StepError),
        (b"[0000] ERROR something went wrong\n", SbomError),
    ],
    ids=["syft-fails", "not-a-document"],
)
def test_a_failed_syft_run_keeps_the_sbom_there_was(tmp_path, printed, error) -> None:
    dest = tmp_path / "sbom.json"
    dest.write_text("the last good SBOM")
    with pytest.raises(error) as caught:
        write(syft_runner(printed), dest)
    assert "\n" not in str(caught.value)
    assert dest.read_text() == "the last good SBOM"
    assert [p.name for p in tmp_path.iterdir()] == ["sbom.json"]


def test_the_iso_stage_names_the_sbom_and_counts_its_packages(tmp_path, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    built = Built(cell, IMAGE_ID, "kairos-local/x:amd64-generic", UBUNTU_CORE)
    runner = syft_runner(syft_output())
    path = artifacts.write_sbom(runner, rel, built, tmp_path)
    assert path == tmp_path / naming.sbom_file(UBUNTU_CORE)
    (call,) = runner.containers
    assert call["image"] == rel.syft == sbom.SYFT_IMAGE  # the default when release.yaml names none
    name, version = naming.repository(rel, UBUNTU_CORE), naming.image_tag(UBUNTU_CORE, rel.tags)
    assert call["command"] == sbom.command(IMAGE_ID, name, version)
    assert runner.out.getvalue() == f"[{cell.id}] SBOM: 4 packages in {path.name}\n"


def test_the_iso_stage_files_an_sbom_error_under_sbom(tmp_path, make_release) -> None:
    rel = make_release({"arch": "amd64"})
    built = Built(rel.cells[0], IMAGE_ID, "kairos-local/x:amd64-generic", UBUNTU_CORE)
    with pytest.raises(StepError) as caught:
        artifacts.write_sbom(syft_runner(b"{}"), rel, built, tmp_path)
    error = caught.value
    assert (error.cell, error.step, error.reason) == (
        "amd64-generic",
        "sbom",
        "syft wrote no CycloneDX document",
    )


# --- Runner.container: stdout captured, the log streamed -------------------------------


@dataclass
class FakeBox:
    stdout: bytes
    stderr: bytes
    status: int = 0
    asked: list[dict[str, Any]] = field(default_factory=list)
    removed: bool = False

    def start(self) -> None:
        pass

    def logs(self, **kw: Any) -> Any:
        self.asked.append(kw)
        if kw.get("stream"):  # the log as it runs: stderr, and stdout unless captured
            both = self.stderr + (self.stdout if kw.get("stdout", True) else b"")
            return iter([both])
        return self.stdout if kw.get("stdout") and not kw.get("stderr", True) else b""

    def wait(self) -> dict[str, int]:
        return {"StatusCode": self.status}

    def remove(self, force: bool = False) -> None:
        self.removed = force


@dataclass
class BoxClient:
    box: FakeBox
    created: list[tuple[str, list[str], dict[str, Any]]] = field(default_factory=list)

    @property
    def containers(self) -> BoxClient:
        return self

    def create(self, image: str, command: list[str], **options: Any) -> FakeBox:
        self.created.append((image, command, options))
        return self.box


def test_container_capture_returns_stdout_and_streams_the_rest() -> None:
    box = FakeBox(stdout=b'{"bomFormat": "CycloneDX"}', stderr=b"cataloging\ndone\n")
    client = BoxClient(box)
    out = io.StringIO()
    runner = Runner(out=out, _client=client)
    got = runner.container(
        "c", "sbom", SYFT, ["scan"], {}, label="syft", network="none", env={"A": "1"}, capture=True
    )
    assert got == b'{"bomFormat": "CycloneDX"}'
    assert out.getvalue() == "[c] cataloging\n[c] done\n"  # the document is not logged
    ((_, _, options),) = client.created
    assert (options["environment"], options["network_mode"]) == ({"A": "1"}, "none")
    assert box.asked[0]["stdout"] is False and box.removed


def test_container_without_capture_streams_everything_and_returns_nothing() -> None:
    box = FakeBox(stdout=b"made it\n", stderr=b"")
    client, out = BoxClient(box), io.StringIO()
    got = Runner(out=out, _client=client).container("c", "iso", "img", [], {}, label="x")
    assert got == b""
    assert out.getvalue() == "[c] made it\n"
    ((_, _, options),) = client.created
    assert (options["environment"], options["network_mode"]) == (None, None)
    assert [kw.get("stdout", True) for kw in box.asked] == [True]  # one read: the stream


def test_a_failing_captured_container_is_one_line_and_its_stdout_unread() -> None:
    box = FakeBox(stdout=b"half a document", stderr=b"ERROR cannot read image\n", status=1)
    runner = Runner(out=io.StringIO(), _client=BoxClient(box))
    with pytest.raises(StepError) as caught:
        runner.container("c", "sbom", SYFT, [], {}, label="syft", capture=True)
    assert caught.value.reason == "syft exited 1: ERROR cannot read image"
    assert len(box.asked) == 1 and box.removed  # the stream only: no document read

"""SBOM stage: a built image's CycloneDX SBOM, catalogued by syft.

syft runs the way the pipeline runs kairos-init and AuroraBoot: the image
release.yaml pins (`syft:`), as a container. It reads the built image through
the engine's own socket (syft's `docker:` source), so nothing of the image
runs, foreign-arch images work, and a remote engine (GitLab's
docker-in-docker) works too. syft lists the distro packages (dpkg, rpm and apk
databases) and what lies beyond them: Go modules in binaries, language
packages, binaries it recognises; Hadron, which has no package manager, gets
a real list.

The document is made deterministic: its timestamp is the image's creation
time and its serial number follows its content, so the same image gives the
same bytes and a rebuilt SBOM can be compared with, or signed over, the one before.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .runner import Runner
from .words import clip

SYFT_IMAGE = "anchore/syft:v1.57.0"  # release.yaml's `syft:` when it names none
FORMAT = "cyclonedx-json@1.6"  # the CycloneDX version written (tests validate against it)
ENGINE_SOCKET = "/var/run/docker.sock"  # where an engine keeps its socket, as it sees it
# No phoning home: the version check is the only network syft would use here.
ENV = {"SYFT_CHECK_FOR_APP_UPDATE": "false"}


@dataclass(frozen=True)
class Package:
    """A distro package as an SBOM's purl names it (the changelog and the probe read these)."""

    name: str
    version: str  # deb: Version as is; rpm: [epoch:]version-release; apk: version
    arch: str  # as the database says (amd64, x86_64, noarch, all, ...)
    manager: str  # "deb" | "rpm" | "apk": the purl type
    license: str = ""
    source: str = ""  # the purl's `upstream`: source package, SRPM or origin


class SbomError(RuntimeError):
    """The SBOM cannot be made; str() is one line."""


def command(image_id: str, name: str, version: str) -> list[str]:
    """syft's argv: the local image by ID, named as it will be published."""
    return [
        "scan",
        f"docker:{image_id}",
        "--output",
        FORMAT,
        "--source-name",
        name,
        "--source-version",
        version,
        "--quiet",
    ]


def engine_socket() -> str:
    """The engine's socket, as a path on the engine's host (bind mounts are the engine's).

    A local engine: DOCKER_HOST's unix path. A remote one (tcp://, docker-in-docker)
    keeps its own socket at the default path beside its TCP port.
    """
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else ENGINE_SOCKET


def volumes() -> dict[str, dict[str, str]]:
    return {engine_socket(): {"bind": ENGINE_SOCKET, "mode": "rw"}}


def image_created(client: Any, image: str) -> datetime:
    """When the engine says the image was made: a timestamp that is the same on every rerun."""
    import docker

    try:
        raw = str(client.images.get(image).attrs.get("Created", ""))
    except docker.errors.ImageNotFound:
        raise SbomError(f"{image}: image not found in the local engine") from None
    try:  # RFC 3339 with nanoseconds ("2024-05-01T12:00:00.123456789Z"): keep the seconds
        return datetime.strptime(raw[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise SbomError(f"{image}: unreadable creation time {clip(raw)}") from None


def settle(raw: bytes, created: datetime) -> str:
    """syft's document with the image's time and a serial number that follows the content."""
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise SbomError(f"syft wrote no JSON document ({clip(str(err))})") from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise SbomError("syft wrote no CycloneDX document")
    doc.setdefault("metadata", {})["timestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    doc.pop("serialNumber", None)
    seed = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    doc["serialNumber"] = uuid.uuid5(uuid.NAMESPACE_URL, seed).urn
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def component_purls(bom: str | dict[str, Any]) -> list[str]:
    """The purls of a CycloneDX JSON document's components (nested ones included)."""
    doc = json.loads(bom) if isinstance(bom, str) else bom
    found: list[str] = []
    stack = list(reversed(doc.get("components", [])))
    while stack:
        c = stack.pop()
        if c.get("purl"):
            found.append(c["purl"])
        stack.extend(reversed(c.get("components", [])))
    return found


def write_atomically(dest: Path, text: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; artifacts are not
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_sbom(
    runner: Runner,
    cell: str,
    syft: str,
    image_id: str,
    dest: Path,
    *,
    name: str,
    version: str,
) -> tuple[Path, int]:
    """Catalogue the local image with syft into dest atomically; return it and its package count."""
    created = image_created(runner.docker(), image_id)
    raw = runner.container(
        cell,
        "sbom",
        syft,
        command(image_id, name, version),
        volumes(),
        label="syft",
        network="none",
        env=ENV,
        capture=True,
    )
    text = settle(raw, created)
    write_atomically(dest, text)
    return dest, len(component_purls(text))

"""syft and grype as the pipeline runs them: images of the real binaries.

Upstream publishes anchore/syft and anchore/grype (Docker Hub): FROM
scratch, the binary at /syft (/grype), CA certificates, a /tmp, and
ENTRYPOINT ["/syft"] (anchore/syft and anchore/grype Dockerfile). Those images
cannot be pulled here, so the tests lay out the same image around the binaries
.ci/setup builds from the Go module proxy at the versions .ci/tools.txt pins.
These are the real tools, not stand-ins: only their packaging is ours.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import docker

from kairos_distro.registry import sha256_file
from tests.support.clients import pins, tool

PREFIX = "kdt-tools"
CA = Path("/etc/ssl/certs/ca-certificates.crt")
LABEL = "kdt.binary.sha256"


def _context(name: str, binary: Path, sha: str) -> io.BytesIO:
    dockerfile = (
        "FROM scratch\n"
        f"COPY {name} /{name}\n"
        "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
        "COPY tmp /tmp\n"
        "WORKDIR /tmp\n"
        f'LABEL {LABEL}="{sha}"\n'
        f'ENTRYPOINT ["/{name}"]\n'
    )
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for arc, data, mode in (
            ("Dockerfile", dockerfile.encode(), 0o644),
            ("ca-certificates.crt", CA.read_bytes() if CA.exists() else b"", 0o644),
        ):
            info = tarfile.TarInfo(arc)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777  # as upstream's: any user may write
        tar.addfile(tmp)
        tar.add(binary, arcname=name, filter=_executable)
    context.seek(0)
    return context


def _executable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mode, info.uid, info.gid = 0o755, 0, 0
    return info


def tool_image(client: docker.DockerClient, name: str) -> str:
    """kdt-tools/NAME:VERSION holding the pinned binary; built once per binary."""
    binary, version = tool(name), pins()[name].version
    ref = f"{PREFIX}/{name}:{version}"
    sha = sha256_file(binary)
    try:
        if client.images.get(ref).labels.get(LABEL) == sha:
            return ref
    except docker.errors.ImageNotFound:
        pass
    context = _context(name, binary, sha)
    client.images.build(fileobj=context, custom_context=True, tag=ref, forcerm=True)
    return ref


def tool_images(client: docker.DockerClient) -> dict[str, str]:
    """release.yaml's syft and grype fields, set to these images."""
    return {"syft": tool_image(client, "syft"), "grype": tool_image(client, "grype")}

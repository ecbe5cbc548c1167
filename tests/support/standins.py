"""Build the stand-in images: a Debian base, kairos-init, AuroraBoot.

Upstream images cannot be pulled here, so these honour the same contract
(flags, files written, output names) from Debian packages. Tags carry a hash
of the stand-in sources, so an edited stand-in is rebuilt and an unchanged
one is reused across test runs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker

HERE = Path(__file__).resolve().parent.parent / "standins"
PREFIX = "kdt-standin"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"


def _hash(directory: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def debian_base(client: docker.DockerClient) -> str:
    """A Debian 12 base image made with debootstrap (about 35 s, once)."""
    ref = f"{PREFIX}/debian:12"
    if _exists(client, ref):
        return ref
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is not installed (see .ci/setup)")
    with tempfile.TemporaryDirectory(prefix="kdt-debootstrap-") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(root), DEBIAN_MIRROR],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "-", ref], stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL
        )
        if tar.wait() != 0:
            raise RuntimeError("tar of the debootstrap tree failed")
    return ref


def _build(client: docker.DockerClient, name: str, ref: str, **kw) -> str:
    if not _exists(client, ref):
        client.images.build(path=str(HERE / name), tag=ref, rm=True, network_mode="host", **kw)
    return ref


def kairos_init(client: docker.DockerClient) -> str:
    """The kairos-init stand-in: FROM scratch with one file, like upstream."""
    source = HERE / "kairos-init"
    return _build(client, "kairos-init", f"{PREFIX}/kairos-init:{_hash(source)}")


def auroraboot(client: docker.DockerClient, base: str) -> str:
    """The AuroraBoot stand-in: Debian + GRUB + xorriso, with a build-iso script."""
    source = HERE / "auroraboot"
    ref = f"{PREFIX}/auroraboot:{_hash(source, base)}"
    return _build(client, "auroraboot", ref, buildargs={"BASE": base})


def all_standins(client: docker.DockerClient) -> dict[str, str]:
    base = debian_base(client)
    return {
        "base_image": base,
        "kairos_init": kairos_init(client),
        "auroraboot": auroraboot(client, base),
    }


def docker_cli() -> str:
    """A docker client that can build with BuildKit: buildx, or a pre-23 client.

    Debian's docker.io client (20.10) builds with DOCKER_BUILDKIT=1; a newer
    client without the buildx plugin cannot. KDT_DOCKER_CLI overrides.
    """
    import os

    if os.environ.get("KDT_DOCKER_CLI"):
        return os.environ["KDT_DOCKER_CLI"]
    default = shutil.which("docker") or "docker"
    probe = subprocess.run([default, "buildx", "version"], capture_output=True, check=False)
    if probe.returncode == 0 or not Path("/usr/bin/docker").exists():
        return default
    return "/usr/bin/docker"


def fault_iso(
    client: docker.DockerClient, auroraboot: str, image: str, out: Path, fault: str
) -> Path:
    """An ISO whose stand-in live system misbehaves on purpose (nossh, wrongstate).

    Uses the AuroraBoot stand-in's test-only `--set standin.fault=...` hook.
    """
    out.mkdir(parents=True, exist_ok=True)
    client.containers.run(
        auroraboot,
        ["--set", f"standin.fault={fault}", "build-iso", "--output", "/output/", f"docker:{image}"],
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(out): {"bind": "/output", "mode": "rw"},
        },
        remove=True,
    )
    (iso,) = out.glob("*.iso")
    return iso


def unbootable_iso(path: Path) -> Path:
    """A valid ISO 9660 volume with no boot record: firmware finds nothing to boot."""
    import io

    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident="NOBOOT")
    data = b"not a boot loader\n"
    iso.add_fp(io.BytesIO(data), len(data), "/README.;1")
    iso.write(str(path))
    iso.close()
    return path

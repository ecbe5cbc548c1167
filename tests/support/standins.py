"""Build the stand-in images: a Debian base, kairos-init, AuroraBoot.

Upstream images cannot be pulled here, so these honour the same contract
(flags, files written, output names) from Debian packages. Their command
lines are parsed by small static Go programs (tests/standins/*/main.go) that
declare their flags from tests/standins/contract.yaml with the CLI libraries
upstream uses; they are cross-compiled here on the host. Tags carry a hash of
all stand-in sources (the table included), so an edited stand-in is rebuilt
and an unchanged one is reused across test runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker

HERE = Path(__file__).resolve().parent.parent / "standins"
PREFIX = "kdt-standin"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"


def _hash(directory: Path = HERE, extra: str = "") -> str:
    """All stand-in sources: the Go front-ends share contract.yaml and contract.go."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


CACHE = Path(os.environ.get("KDT_STANDIN_CACHE", Path.home() / ".cache" / "kdt-standins"))


def go_binary(name: str, arch: str = "") -> Path:
    """A static build of the `name` stand-in front-end (kairos-init, auroraboot).

    CGO_ENABLED=0: kairos-init runs inside any base image from a bind mount,
    so it may link nothing. `arch` defaults to the host's (for parse-only
    tests); modules come from the Go module proxy, checked against go.sum.
    """
    arch = arch or _MACHINES.get(platform.machine(), "amd64")
    out = CACHE / _hash() / f"{name}-{arch}"
    if out.exists():
        return out
    if not shutil.which("go"):
        raise RuntimeError("go is not installed (the stand-ins are Go programs; see .ci/setup)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": arch}
    env.setdefault("GOTOOLCHAIN", "local")
    build = subprocess.run(
        ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(tmp), f"./{name}"],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        raise RuntimeError(f"go build of the {name} stand-in failed:\n{build.stderr}")
    tmp.rename(out)
    return out


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


#: Architectures the stand-ins are made for, as Docker and Debian name them.
ARCHES = ("amd64", "arm64")
_MACHINES = {"x86_64": "amd64", "aarch64": "arm64"}
_QEMU = {"amd64": "qemu-x86_64", "arm64": "qemu-aarch64"}


def _check_arch(arch: str) -> None:
    if arch not in ARCHES:
        raise ValueError(f"unsupported stand-in arch {arch!r} (known: {', '.join(ARCHES)})")
    host = _MACHINES.get(platform.machine())
    if arch != host and not Path("/proc/sys/fs/binfmt_misc", _QEMU[arch]).exists():
        raise RuntimeError(
            f"{arch} emulation is unavailable: install qemu-user-static and binfmt-support "
            "and mount binfmt_misc (see .ci/setup)"
        )


def debian_base(client: docker.DockerClient, arch: str = "amd64") -> str:
    """A Debian 12 base image made with debootstrap (about 35 s, once).

    `arch="arm64"` makes `kdt-standin/debian:12-arm64` under qemu-user-static
    emulation (a few minutes, once), whose image config says arm64, so BuildKit
    uses it for `--platform linux/arm64` builds.
    """
    if arch != "amd64":  # amd64 stays the host's own debootstrap, as before
        _check_arch(arch)
    ref = f"{PREFIX}/debian:12" if arch == "amd64" else f"{PREFIX}/debian:12-{arch}"
    if _exists(client, ref):
        return ref
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is not installed (see .ci/setup)")
    with tempfile.TemporaryDirectory(prefix="kdt-debootstrap-") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                *([] if arch == "amd64" else [f"--arch={arch}"]),
                "--variant=minbase",
                DEBIAN_SUITE,
                str(root),
                DEBIAN_MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if arch == "amd64":
            tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            subprocess.run(
                ["docker", "import", "-", ref],
                stdin=tar.stdout,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            if tar.wait() != 0:
                raise RuntimeError("tar of the debootstrap tree failed")
        else:
            layer = Path(tmp) / "layer.tar"
            subprocess.run(
                ["tar", "-C", str(root), "--numeric-owner", "-cf", str(layer), "."], check=True
            )
            _load(
                client,
                ref,
                arch,
                layer,
                f"debootstrap --arch={arch} --variant=minbase {DEBIAN_SUITE}",
            )
    return ref


def _load(client: docker.DockerClient, ref: str, arch: str, layer: Path, created_by: str) -> None:
    """Load a one-layer image whose config names `arch`, as `docker load` reads it.

    Engine 20.10 ignores `docker import --platform` (the image says the host's
    architecture), and BuildKit then refuses the local image for another
    platform. A `docker save`-format archive carries the architecture in the
    image config, which `docker load` keeps.
    """
    digest = hashlib.sha256()
    with layer.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest.hexdigest()}"]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": created_by}],
        },
        sort_keys=True,
    ).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [ref], "Layers": ["layer/layer.tar"]}]
    ).encode()
    staging = layer.parent / "image"
    (staging / "layer").mkdir(parents=True)
    (staging / config_name).write_bytes(config)
    (staging / "manifest.json").write_bytes(manifest)
    layer.rename(staging / "layer" / "layer.tar")
    tar = subprocess.Popen(["tar", "-C", str(staging), "-c", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    client.images.load(iter(lambda: tar.stdout.read(1 << 20), b""))
    if tar.wait() != 0:
        raise RuntimeError(f"tar of the {ref} archive failed")
    if client.images.get(ref).attrs.get("Architecture") != arch:
        raise RuntimeError(f"{ref} was loaded but does not say {arch}")


def _build(client: docker.DockerClient, name: str, ref: str, **kw) -> str:
    """docker build of HERE/name, with the Go front-end as `name` in the context."""
    if not _exists(client, ref):
        with tempfile.TemporaryDirectory(prefix=f"kdt-{name}-") as context:
            shutil.copy(HERE / name / "Dockerfile", context)
            shutil.copy(go_binary(name, "amd64"), Path(context, name))
            client.images.build(path=context, tag=ref, rm=True, network_mode="host", **kw)
    return ref


def kairos_init(client: docker.DockerClient, arch: str = "amd64") -> str:
    """The kairos-init stand-in: FROM scratch with one file, `/kairos-init`, like upstream.

    Upstream's image is multi-arch; the engine's local store (20.10) holds one
    platform per tag, and BuildKit ignores a local image of another platform
    (it looks for it in a registry instead). So other arches get their own
    tag, `kdt-standin/kairos-init:<hash>-<arch>`, holding that arch's binary.
    """
    if arch not in ARCHES:
        raise ValueError(f"unsupported stand-in arch {arch!r} (known: {', '.join(ARCHES)})")
    ref = f"{PREFIX}/kairos-init:{_hash()}" + ("" if arch == "amd64" else f"-{arch}")
    if not _exists(client, ref):
        binary = go_binary("kairos-init", arch).read_bytes()
        image_from_files(
            client,
            ref,
            {"kairos-init": binary},
            arch,
            modes={"kairos-init": 0o755},
            created_by="STAND-IN for quay.io/kairos/kairos-init (tests/standins/kairos-init)",
        )
    return ref


def image_from_dockerfile(
    client: docker.DockerClient, ref: str, dockerfile: str, files: dict[str, bytes] | None = None
) -> str:
    """`ref` built from `dockerfile` and `files` (name -> content) on the host network."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **(files or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(
        fileobj=context, custom_context=True, tag=ref, network_mode="host", forcerm=True
    )
    return ref


def image_from_files(
    client: docker.DockerClient,
    ref: str,
    files: dict[str, bytes],
    arch: str = "amd64",
    *,
    symlinks: dict[str, str] | None = None,
    modes: dict[str, int] | None = None,
    created_by: str = "files for a stand-in test",
) -> str:
    """A FROM-scratch image holding `files` (path -> content), whose config says `arch`.

    Nothing in it can run, so any arch works without emulation: for tests of
    tools that only read images (AuroraBoot reads /boot and /etc/kairos-release).
    """
    modes = modes or {}
    with tempfile.TemporaryDirectory(prefix="kdt-image-") as tmp:
        layer = Path(tmp) / "layer.tar"
        with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
            entries = [(path.strip("/"), data) for path, data in files.items()]
            links = [(path.strip("/"), target) for path, target in (symlinks or {}).items()]
            dirs = sorted(
                {str(parent) for path, _ in [*entries, *links] for parent in Path(path).parents}
                - {"."}
            )
            for name in dirs:
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            for name, data in entries:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), modes.get(name, modes.get("/" + name, 0o644))
                tar.addfile(info, io.BytesIO(data))
            for name, target in links:
                info = tarfile.TarInfo(name)
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
                tar.addfile(info)
        _load(client, ref, arch, layer, created_by)
    return ref


def auroraboot(client: docker.DockerClient, base: str) -> str:
    """The AuroraBoot stand-in: Debian + GRUB + xorriso, with a build-iso script."""
    ref = f"{PREFIX}/auroraboot:{_hash(HERE, base)}"
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
    """An ISO whose stand-in live system misbehaves on purpose (nossh, wrongstate, panic).

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

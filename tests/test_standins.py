"""The stand-ins run directly: AuroraBoot's genkey, build-uki and raw-disk modes,
the shape of both images, and kairos-init's validate on an unconverted base.

The images AuroraBoot reads are tiny FROM-scratch images with fake kernel and
initrd bytes: nothing boots here, the checks are on the files written
(signatures, partition tables, names), which is what the pipeline relies on.
Their command lines are checked against the contract table in test_contract.py.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import docker
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support import standins
from tests.support.efi import ESP_TYPE, esp_of, gpt_partitions, mcopy, pe_sections, sbverify

# Docker engine, QEMU, the pinned clients: what .ci/setup provides (`nox -s fast` skips these).
pytestmark = pytest.mark.e2e

SOCKET = {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"}}
KERNEL = b"MZ fake kernel " + bytes(range(256)) * 64
INITRD = b"fake initrd " + bytes(range(255, -1, -1)) * 32
KEY_FILES = {
    f"{t}.{ext}" for t in ("PK", "KEK", "db") for ext in ("key", "pem", "der", "esl", "auth")
}
KEY_FILES.add("tpm2-pcr-private.pem")
EFI_CERT_X509 = uuid.UUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")


def release(arch: str) -> bytes:
    return "".join(
        f'KAIROS_{k}="{v}"\n'
        for k, v in {
            "ID": "kairos",
            "NAME": "kairos-core-debian-12",
            "VERSION": "v0.1.0",
            "ARCH": arch,
            "TARGETARCH": arch,
            "FLAVOR": "debian",
            "FLAVOR_RELEASE": "12",
            "FAMILY": "debian",
            "MODEL": "generic",
            "VARIANT": "core",
        }.items()
    ).encode()


def base_name(arch: str) -> str:
    return f"kairos-debian-12-core-{arch}-generic-v0.1.0"


@pytest.fixture(scope="module")
def auroraboot(standins) -> str:
    return standins["auroraboot"]


@pytest.fixture(scope="module")
def fake_image(docker_client):
    """make(arch) -> a FROM-scratch image with /boot/vmlinuz (a symlink, as on
    Debian), /boot/initrd, /etc/kairos-release and /etc/os-release."""
    made: dict[str, str] = {}

    def make(arch: str) -> str:
        if arch not in made:
            made[arch] = standins.image_from_files(
                docker_client,
                f"kdt-test/standin-source:{arch}",
                {
                    "boot/vmlinuz-6.1.0-fake": KERNEL,
                    "boot/initrd": INITRD,
                    "etc/kairos-release": release(arch),
                    "usr/lib/os-release": b'PRETTY_NAME="Fake Kairos"\nID=debian\n',
                },
                arch,
                symlinks={
                    "boot/vmlinuz": "vmlinuz-6.1.0-fake",
                    "etc/os-release": "../usr/lib/os-release",
                },
            )
        return made[arch]

    yield make
    for ref in made.values():
        docker_client.images.remove(ref, force=True)


def run(client, image: str, command: list[str], mounts: dict[Path, str], **kw) -> str:
    """Run the stand-in; volumes are host path -> container path[:ro]."""
    volumes = dict(SOCKET)
    for host, target in mounts.items():
        bind, _, mode = target.partition(":")
        volumes[str(host)] = {"bind": bind, "mode": mode or "rw"}
    out = client.containers.run(image, command, volumes=volumes, remove=True, **kw)
    return out.decode()


def genkey(client, image: str, directory: Path, name: str, *extra: str) -> Path:
    directory.mkdir(parents=True)
    run(
        client,
        image,
        ["--debug", "genkey", "--output", "/keys", *extra, name],
        {directory: "/keys"},
        network_mode="none",
        user=f"{os.getuid()}:{os.getgid()}",
    )
    return directory


@pytest.fixture(scope="module")
def key_sets(docker_client, auroraboot, tmp_path_factory) -> tuple[Path, Path]:
    """Two independent key sets, as `invoke keys` makes them."""
    root = tmp_path_factory.mktemp("keys")
    one = genkey(docker_client, auroraboot, root / "one", "my-org", "--expiration-in-days", "30")
    other = genkey(docker_client, auroraboot, root / "other", "someone-else", "-e=10")
    return one, other


def uki_command(*flags: str, source: str) -> list[str]:
    return [
        "--debug",
        "build-uki",
        "--output-dir",
        "/output/",
        "--output-type",
        "iso",
        *flags,
        source,
    ]


KEY_FLAGS = (
    "--public-keys",
    "/keys",
    "--tpm-pcr-private-key",
    "/keys/tpm2-pcr-private.pem",
    "--sb-key",
    "/keys/db.key",
    "--sb-cert",
    "/keys/db.pem",
)


# -- genkey -------------------------------------------------------------------------------
def test_genkey_writes_the_full_key_set(key_sets):
    one, _ = key_sets
    assert {p.name for p in one.iterdir()} == KEY_FILES
    for name in KEY_FILES:
        mode = (one / name).stat().st_mode & 0o777
        private = name.endswith(".key") or name == "tpm2-pcr-private.pem"
        assert mode == (0o600 if private else 0o644), name
        assert (one / name).stat().st_uid == os.getuid(), "the caller's files, not root's"
    for kind in ("PK", "KEK", "db"):
        cert = x509.load_pem_x509_certificate((one / f"{kind}.pem").read_bytes())
        assert cert.subject.rfc4514_string() == f"CN=my-org-{kind}"
        days = (cert.not_valid_after_utc - cert.not_valid_before_utc) / datetime.timedelta(days=1)
        assert round(days) == 30
        assert x509.load_der_x509_certificate((one / f"{kind}.der").read_bytes()) == cert
        # An EFI signature list of one X.509 certificate: the cert sits at its end.
        esl = (one / f"{kind}.esl").read_bytes()
        assert uuid.UUID(bytes_le=esl[:16]) == EFI_CERT_X509
        assert esl.endswith(cert.public_bytes(Encoding.DER))
        # The .auth is the signed variable update: an auth header, then the list.
        assert (one / f"{kind}.auth").read_bytes().endswith(esl)


def test_genkey_sets_differ(key_sets):
    one, other = key_sets
    for name in ("db.pem", "db.key", "tpm2-pcr-private.pem"):
        assert (one / name).read_bytes() != (other / name).read_bytes()


# -- build-uki ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def uki_iso(docker_client, auroraboot, fake_image, key_sets, tmp_path_factory) -> Path:
    one, _ = key_sets
    out = tmp_path_factory.mktemp("uki")
    log = run(
        docker_client,
        auroraboot,
        uki_command(*KEY_FLAGS, source=f"docker:{fake_image('amd64')}"),
        {one: "/keys:ro", out: "/output"},
        network_mode="none",
    )
    assert "BEGIN" not in log and "PRIVATE" not in log  # keys are never printed
    return out


def test_build_uki_makes_a_signed_uki_iso(uki_iso, key_sets, tmp_path):
    one, other = key_sets
    assert [p.name for p in uki_iso.iterdir()] == [f"{base_name('amd64')}-uki.iso"]
    esp = str(esp_of(uki_iso / f"{base_name('amd64')}-uki.iso", tmp_path / "esp.img"))

    uki = mcopy(esp, f"/EFI/Linux/{base_name('amd64')}.efi", tmp_path / "uki.efi")
    assert sbverify(one / "db.pem", uki).returncode == 0
    refused = sbverify(other / "db.pem", uki)
    assert refused.returncode != 0, refused.stdout
    assert "verification failed" in refused.stdout + refused.stderr

    sections = pe_sections(uki.read_bytes())
    assert sections[".linux"] == KERNEL
    # Upstream's initrd is the image's whole filesystem (never its /boot/initrd), with
    # /init linked to immucore, as zstd-compressed newc cpio (pkg/uki/uki.go at
    # kairos-io/AuroraBoot fa85123: setupDirectoriesAndFiles, createInitramfs).
    unpacked = subprocess.run(
        ["zstd", "-dc"], input=sections[".initrd"], capture_output=True, check=True
    ).stdout
    entries = cpio_entries(unpacked)
    assert entries["init"] == (0o120000, b"/usr/bin/immucore")
    assert entries["etc/kairos-release"] == (0o100000, release("amd64"))
    assert {"oem", "efi", "usr/local/cloud-config"} <= entries.keys()
    left_out = ("boot", "sys", "run", "dev", "tmp", "proc")
    assert not [name for name in entries if name.split("/")[0] in left_out]
    assert b"Fake Kairos" in sections[".osrel"]  # the image's os-release, via its symlink
    assert b"rd.immucore.uki" in sections[".cmdline"]
    assert b"BEGIN PUBLIC KEY" in sections[".pcrpkey"]

    loader = mcopy(esp, "/EFI/BOOT/BOOTX64.EFI", tmp_path / "BOOTX64.EFI")
    assert sbverify(one / "db.pem", loader).returncode == 0
    magic = pe_sections(loader.read_bytes())[".sdmagic"]  # systemd-boot itself
    # `secure-boot-enroll if-safe` (below) needs systemd-boot 253 or later.
    version = magic.split(b"systemd-boot ")[1].split(b".")[0]
    assert int(version) >= 253, magic
    for name in ("PK.auth", "KEK.auth", "db.auth"):
        enrolled = mcopy(esp, f"/loader/keys/auto/{name}", tmp_path / name)
        assert enrolled.read_bytes() == (one / name).read_bytes()
    conf = mcopy(esp, "/loader/loader.conf", tmp_path / "loader.conf").read_text()
    assert "secure-boot-enroll if-safe" in conf


def cpio_entries(data: bytes) -> dict[str, tuple[int, bytes]]:
    """A newc cpio archive: name -> (file type bits, contents or link target)."""
    found, at = {}, 0
    while True:
        head = data[at : at + 110]
        assert head[:6] == b"070701", head
        mode, size, name_size = (int(head[6 + 8 * i : 14 + 8 * i], 16) for i in (1, 6, 11))
        name = data[at + 110 : at + 110 + name_size - 1].decode()
        at = (at + 110 + name_size + 3) & ~3
        if name == "TRAILER!!!":
            return found
        found[name.removeprefix("./")] = (mode & 0o170000, data[at : at + size])
        at = (at + size + 3) & ~3


def test_build_uki_names_a_missing_key_in_one_line(
    docker_client, auroraboot, fake_image, key_sets, tmp_path
):
    one, _ = key_sets
    keys = tmp_path / "keys"
    shutil.copytree(one, keys)
    (keys / "db.key").unlink()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(docker.errors.ContainerError) as failed:
        run(
            docker_client,
            auroraboot,
            uki_command(*KEY_FLAGS, source="docker:none"),
            {keys: "/keys:ro", out: "/output"},
            network_mode="none",
        )
    lines = failed.value.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith("error: /keys/db.key not found")
    assert not any(out.iterdir())


def test_build_uki_accepts_flag_equals_value(
    docker_client, auroraboot, fake_image, key_sets, tmp_path
):
    one, _ = key_sets
    flags = [f"{KEY_FLAGS[i]}={KEY_FLAGS[i + 1]}" for i in range(0, len(KEY_FLAGS), 2)]
    run(
        docker_client,
        auroraboot,
        [
            "build-uki",
            "--output-dir=/output",
            "--output-type=iso",
            "--name=custom",
            *flags,
            f"docker:{fake_image('amd64')}",
        ],
        {one: "/keys:ro", tmp_path: "/output"},
        network_mode="none",
    )
    assert (tmp_path / "custom.iso").is_file()  # upstream: --name gives <name>.iso


# -- raw disk (legacy mode) ---------------------------------------------------------------
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_raw_disk_has_gpt_esp_with_kernel_and_oem_cloud_config(
    docker_client, auroraboot, fake_image, tmp_path, arch
):
    cloud = tmp_path / "cloud-config.yaml"
    cloud.write_text("#cloud-config\nusers:\n- name: kairos\n  passwd: kairos\n")
    out = tmp_path / "out"
    out.mkdir()
    settings = [
        "disable_http_server=true",
        "disable_netboot=true",
        f"container_image=docker:{fake_image(arch)}",
        "state_dir=/output",
        "disk.raw=true" if arch == "amd64" else "disk.efi=true",  # old and new names
    ]
    # Upstream needs --privileged (loop devices); the stand-in needs nothing.
    run(
        docker_client,
        auroraboot,
        ["--debug", "--cloud-config", "/cloud-config"]
        + [a for s in settings for a in ("--set", s)],
        {out: "/output", cloud: "/cloud-config:ro"},
        network_mode="none",
    )
    assert [p.name for p in out.iterdir()] == [f"{base_name(arch)}.raw"]  # no .sha256
    raw = out / f"{base_name(arch)}.raw"
    assert raw.stat().st_size <= 96 * 2**20

    parts = gpt_partitions(raw)
    assert [p["name"] for p in parts] == ["efi", "oem", "recovery"]
    efi, oem, recovery = parts
    assert efi["type"] == ESP_TYPE and efi["start"] == 2**20
    assert efi["start"] + efi["size"] <= oem["start"]
    assert oem["start"] + oem["size"] <= recovery["start"]
    assert recovery["start"] + recovery["size"] <= raw.stat().st_size - 33 * 512

    esp = f"{raw}@@{efi['start']}"
    label = subprocess.run(["mlabel", "-s", "-i", esp, "::"], capture_output=True, text=True)
    assert "COS_GRUB" in label.stdout
    assert mcopy(esp, "/boot/vmlinuz", tmp_path / "vmlinuz").read_bytes() == KERNEL
    assert mcopy(esp, "/boot/initrd", tmp_path / "initrd").read_bytes() == INITRD
    assert mcopy(esp, "/EFI/BOOT/grub.cfg", tmp_path / "grub.cfg").stat().st_size > 0

    with raw.open("rb") as f:
        for part, label in ((oem, b"COS_OEM"), (recovery, b"COS_RECOVERY")):
            f.seek(part["start"] + 1024)
            superblock = f.read(1024)
            assert superblock[0x38:0x3A] == b"\x53\xef", "ext2/3/4 magic"
            assert superblock[0x78:0x88].rstrip(b"\0") == label
        f.seek(oem["start"])
        assert cloud.read_bytes() in f.read(oem["size"])  # 90_custom.yaml


def test_raw_disk_refuses_what_it_cannot_do(docker_client, auroraboot, tmp_path):
    cases = {
        ("--set", "disk.efi=true", "--set", "state_dir=/output"): "container_image",
        ("--set", "disk.efi=true", "--set", "netboot.cmdline=x"): "netboot.cmdline",
        ("--set", "container_image=docker:x", "--set", "state_dir=/output"): "disk.efi",
    }
    for args, named in cases.items():
        command = list(args)
        if "disk.efi=true" in args:
            command += ["--set", "disable_netboot=true", "--set", "disable_http_server=true"]
        with pytest.raises(docker.errors.ContainerError) as failed:
            run(docker_client, auroraboot, command, {tmp_path: "/output"}, network_mode="none")
        assert named in failed.value.stderr.decode(), args


# -- build-iso, unchanged -----------------------------------------------------------------
def test_build_iso_still_writes_iso_and_checksum(docker_client, auroraboot, fake_image, tmp_path):
    run(
        docker_client,
        auroraboot,
        ["--debug", "build-iso", "--output", "/output/", f"docker:{fake_image('amd64')}"],
        {tmp_path: "/output"},
        network_mode="none",
    )
    iso = f"{base_name('amd64')}.iso"
    assert sorted(p.name for p in tmp_path.iterdir()) == [iso, f"{iso}.sha256"]
    digest, name = (tmp_path / f"{iso}.sha256").read_text().split()
    assert name == iso and len(digest) == 64


# -- arm64 under emulation ----------------------------------------------------------------
def test_arm64_buildkit_build_uses_the_local_standins(docker_client, tmp_path):
    """BuildKit builds for linux/arm64 from the local arm64 base and bind-mounts
    the arm64 kairos-init stand-in (an amd64-only one would be looked up in a
    registry, which fails offline)."""
    base = standins.debian_base(docker_client, "arm64")
    assert docker_client.images.get(base).attrs["Architecture"] == "arm64"
    kairos_init = standins.kairos_init(docker_client, "arm64")
    assert kairos_init.endswith("-arm64")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {kairos_init} AS kairos-init\n"
        f"FROM {base}\n"
        "RUN uname -m > /machine\n"
        "RUN --mount=type=bind,from=kairos-init,src=/kairos-init,dst=/kairos-init "
        "/kairos-init validate > /validate 2>&1 || true\n"
        "RUN cat /machine /validate\n"
    )
    tag = "kdt-test/arm64-probe:latest"
    build = subprocess.run(
        [
            *(standins.docker_cli(), "build", "--network", "host", "--platform", "linux/arm64"),
            *("--progress", "plain", "--no-cache", "-t", tag, str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        check=False,
    )
    try:
        assert build.returncode == 0, build.stderr[-3000:]
        assert "aarch64" in build.stderr
        assert "kairos-init STAND-IN: validating" in build.stderr
        assert docker_client.images.get(tag).attrs["Architecture"] == "arm64"
    finally:
        if build.returncode == 0:
            docker_client.images.remove(tag, force=True)


# -- the images' shape --------------------------------------------------------------------
ELF_MACHINE = {"amd64": 0x3E, "arm64": 0xB7}


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_kairos_init_image_is_one_static_binary(docker_client, arch, tmp_path):
    """FROM scratch, one file /kairos-init: a static ELF of the image's arch (it runs
    inside whatever base image is being converted, from a bind mount)."""
    ref = standins.kairos_init(docker_client, arch)
    image = docker_client.images.get(ref)
    assert image.attrs["Architecture"] == arch
    assert len(image.attrs["RootFS"]["Layers"]) == 1
    saved = b"".join(image.save(named=False))
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        (layer,) = json.load(outer.extractfile("manifest.json"))[0]["Layers"]
        with tarfile.open(fileobj=outer.extractfile(layer)) as tar:
            members = tar.getmembers()
            assert [m.name for m in members] == ["kairos-init"]
            assert members[0].isfile() and members[0].mode & 0o111
            binary = tar.extractfile(members[0]).read()
    assert binary[:4] == b"\x7fELF"
    assert int.from_bytes(binary[18:20], "little") == ELF_MACHINE[arch]
    assert b"/lib64/ld-linux" not in binary and b"/lib/ld-linux" not in binary  # static
    assert b"kairos-init STAND-IN" in binary


def test_auroraboot_image_runs_the_go_front_end(docker_client, auroraboot):
    image = docker_client.images.get(auroraboot)
    assert image.labels["io.kairos.standin"] == "auroraboot"
    assert image.attrs["Config"]["Entrypoint"] == ["/usr/bin/auroraboot"]
    with pytest.raises(docker.errors.ContainerError) as failed:
        docker_client.containers.run(
            auroraboot,
            ["build-iso", "docker:x", "--output", "/o"],
            network_mode="none",
            remove=True,
        )
    lines = failed.value.stderr.decode().strip().splitlines()
    assert lines == [
        "auroraboot STAND-IN: error: build-iso: --output comes after <source>, where AuroraBoot "
        "(urfave/cli) stops parsing flags and silently drops it: put every flag before <source>"
    ]


def test_validate_on_an_unconverted_base_names_every_missing_piece(docker_client):
    """validate.go's checks are all live: a bare Debian base fails each kind."""
    binary = standins.go_binary("kairos-init", "amd64")
    with pytest.raises(docker.errors.ContainerError) as failed:
        docker_client.containers.run(
            standins.debian_base(docker_client),
            ["/kairos-init", "validate", "-t", "false"],
            volumes={str(binary): {"bind": "/kairos-init", "mode": "ro"}},
            network_mode="none",
            remove=True,
        )
    err = failed.value.stderr.decode()
    for expected in (
        "[BINARIES] could not find binary immucore",
        "[BINARIES] could not find binary kcrypt-discovery-challenger",
        "[BINARIES] could not find binary mount.nfs",
        "[FILES] file missing /boot/vmlinuz",
        "[FILES] file missing /boot/initrd",
        "[RELEASE] could not open kairos-release file",
        "[SERVICES] service getty.target does not exist",
        "[KERNEL]",
        "WARNING [INITRD] lsinitrd not found",  # upstream only warns
    ):
        assert expected in err, (expected, err)
    assert "[DIRS]" not in err  # Debian's /var/lock symlink counts

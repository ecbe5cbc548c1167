"""QEMU command planning for the boot stage: argv lists and seed bytes, no effects.

The machine is the one Kairos's own suite boots: serial console on stdout,
user networking with SSH forwarded to 127.0.0.1, a blank qcow2 disk, a
`cidata` volume carrying the repo's cloud-config; UEFI firmware for the
`virt` machines, OVMF with Secure Boot and a software TPM for trusted boot.
Reading whether firmware files exist is the only look at the host here.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Cell
from .runner import Skip

QEMU = {
    "amd64": "qemu-system-x86_64",
    "arm64": "qemu-system-aarch64",
    "riscv64": "qemu-system-riscv64",
}
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "riscv64": "riscv64"}
# UEFI firmware for the non-x86 `virt` machines (Debian/Ubuntu package paths).
FIRMWARE = {
    "arm64": ("/usr/share/qemu-efi-aarch64/QEMU_EFI.fd", "/usr/share/AAVMF/AAVMF_CODE.fd"),
    "riscv64": ("/usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd",),
}
# Secure Boot firmware with its empty variable store: setup mode, so the ISO's
# systemd-boot enrolls the owner's keys (loader/keys/auto) as on first boot.
OVMF = (
    ("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.secboot.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
)
OVMF_VARS = "OVMF_VARS.fd"  # the writable copy in the work directory: UEFI stores state there
DISK, SEED, TPM_SOCKET = "disk.qcow2", "cidata.iso", "swtpm.sock"  # in the work directory
DISK_SIZE = "20G"


@dataclass(frozen=True)
class Settings:
    """Machine settings (invoke config kairos.boot.*), not release content."""

    accel: str = "auto"
    memory: int = 2048
    cpus: int = 2
    timeout: float = 900.0
    marker: str = "login:"
    user: str = "kairos"
    password: str = "kairos"
    uefi_vars: str = ""  # trusted boot: a variable store to boot on instead of setup mode


def qemu_argv(
    cell: Cell,
    iso: Path,
    disk: Path,
    seed: Path,
    port: int,
    accel: str,
    settings: Settings,
    *,
    firmware: list[str] | None = None,
    tpm_socket: Path | None = None,
) -> list[str]:
    """The QEMU command line."""
    argv = [QEMU[cell.arch], "-accel", accel, "-cpu", "host" if accel == "kvm" else "max"]
    if cell.arch != "amd64":
        argv += ["-machine", "virt"]
    argv += ["-m", str(settings.memory), "-smp", str(settings.cpus)]
    # A reboot is a failed boot, except under trusted boot: systemd-boot resets
    # the machine once it has enrolled the keys.
    argv += ["-nographic", *([] if cell.trusted_boot else ["-no-reboot"]), *(firmware or [])]
    if tpm_socket:
        argv += ["-chardev", f"socket,id=chrtpm,path={tpm_socket}"]
        argv += ["-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-tis,tpmdev=tpm0"]
    argv += [
        "-nic",
        f"user,model={'e1000' if cell.arch == 'amd64' else 'virtio-net-pci'},"
        f"hostfwd=tcp:127.0.0.1:{port}-:22",
    ]
    argv += ["-drive", f"file={iso},media=cdrom,readonly=on"]
    argv += ["-drive", f"file={seed},media=cdrom,readonly=on"]
    argv += ["-drive", f"file={disk},format=qcow2,if=virtio"]
    return argv


def disk_argv(disk: Path) -> list[str]:
    """A blank disk for the installer to find (the live system does not need it)."""
    return ["qemu-img", "create", "-q", "-f", "qcow2", str(disk), DISK_SIZE]


def swtpm_argv(state: Path, socket: Path) -> list[str]:
    tpm = ["--tpm2", "--tpmstate", f"dir={state}"]
    return ["swtpm", "socket", *tpm, "--ctrl", f"type=unixio,path={socket}"]


def kvm_probe_argv(binary: str, kernel: Path) -> list[str]:
    """Boot the host kernel under KVM with no root: it panics once the guest really runs."""
    return [
        binary,
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-m",
        "256",
        "-nographic",
        "-nodefaults",
        "-no-reboot",
        "-serial",
        "stdio",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 panic=-1",
    ]


def choose_accel(
    cell: Cell, wanted: str, host_arch: str | None, kvm_works: Callable[[str], bool]
) -> str:
    """An explicit kvm/tcg stays; auto is KVM only on the native arch, if it really works."""
    if wanted in ("kvm", "tcg"):
        return wanted
    native = host_arch == cell.arch
    return "kvm" if native and kvm_works(QEMU[cell.arch]) else "tcg"


def firmware(cell: Cell, work: Path, uefi_vars: str = "") -> tuple[list[str], str]:
    """(firmware arguments, OVMF variables to copy to work/OVMF_VARS, or "").

    Skip when this machine has no firmware for the cell; ValueError when
    `uefi_vars` (a store to boot on instead of setup mode) does not fit it.
    """
    if cell.trusted_boot and cell.arch != "amd64":
        raise Skip(f"trusted boot boots on amd64 only here (OVMF + swtpm), not {cell.arch}")
    if cell.trusted_boot:
        found = next(((c, v) for c, v in OVMF if Path(c).exists() and Path(v).exists()), None)
        if not found:
            raise Skip("trusted boot needs OVMF with Secure Boot (package ovmf)")
        code, template = found
        if uefi_vars:
            _fits(Path(uefi_vars), Path(template))
            template = uefi_vars
        args = [
            "-machine",
            "q35,smm=on",
            "-global",
            "driver=cfi.pflash01,property=secure,value=on",
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={work / OVMF_VARS}",
        ]
        return args, template
    if cell.arch == "amd64":
        return [], ""
    code = next((p for p in FIRMWARE[cell.arch] if Path(p).exists()), None)
    if code is None:
        raise Skip(f"no UEFI firmware for {cell.arch} (one of {', '.join(FIRMWARE[cell.arch])})")
    if cell.arch == "riscv64":  # EDK2 loads as pflash; OpenSBI stays the default -bios
        return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}"], ""
    return ["-bios", code], ""


def _fits(store: Path, template: Path) -> None:
    size, wanted = store.stat().st_size, template.stat().st_size
    if size != wanted:
        raise ValueError(
            f"kairos.boot.uefi_vars {store}: {size} bytes, but this firmware's variable "
            f"store is {wanted} bytes (like {template})"
        )


def cidata(user_data: bytes, instance: str) -> bytes:
    """A small ISO 9660 volume labelled `cidata`: the NoCloud datasource."""
    import pycdlib

    meta = f"instance-id: {instance}\nlocal-hostname: {instance}\n".encode()
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for name, data in (("user-data", user_data), ("meta-data", meta)):
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            f"/{name.replace('-', '').upper()}.;1",
            rr_name=name,
            joliet_path=f"/{name}",
        )
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()

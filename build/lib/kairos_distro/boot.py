"""Boot stage: prove an ISO boots into a Kairos live system before it ships.

Boots the ISO in QEMU the way Kairos's own suite does: serial console to a
log, user networking with SSH forwarded to 127.0.0.1, a blank qcow2 disk, a
`cidata` volume carrying the repo's cloud-config. The verdict is event-driven:
a reader thread watches the console for the boot marker, SSH is tried the
moment it appears, and QEMU is stopped as soon as the checks pass or fail.
"""

from __future__ import annotations

import io
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .config import Cell, Release
from .runner import Runner, Skip, StepError

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
OVMF = (
    ("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"),
    ("/usr/share/OVMF/OVMF_CODE.secboot.fd", "/usr/share/OVMF/OVMF_VARS.ms.fd"),
)
PROVIDER_VERSION_COMMAND = {"k3s": "k3s --version", "k0s": "k0s version"}
LIVE_STATE = "livecd_boot"
TAIL = 15


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


@dataclass(frozen=True)
class Check:
    name: str
    command: str
    expect: str


@dataclass
class Result:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class BootPlan:
    cell: Cell
    iso: Path
    log: Path
    argv: list[str]
    port: int
    accel: str
    checks: list[Check]
    tpm_socket: Path | None = None
    results: list[Result] = field(default_factory=list)


def checks_for(release: Release, cell: Cell) -> list[Check]:
    """SSH answers, the live boot state, the provider version, then release.yaml's own."""
    checks = [
        Check("ssh echo ping", "echo ping", "ping"),
        Check("boot state", "kairos-agent state get boot", LIVE_STATE),
    ]
    if cell.provider:
        command = PROVIDER_VERSION_COMMAND[cell.provider]
        checks.append(Check(f"{cell.provider} version", command, cell.provider_version or ""))
    for extra in (*release.boot_checks, *cell.boot_checks):
        checks.append(Check(extra.run, extra.run, extra.expect))
    return checks


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
    """The QEMU command line; no effects."""
    argv = [QEMU[cell.arch], "-accel", accel, "-cpu", "host" if accel == "kvm" else "max"]
    if cell.arch != "amd64":
        argv += ["-machine", "virt"]
    argv += ["-m", str(settings.memory), "-smp", str(settings.cpus)]
    argv += ["-nographic", "-no-reboot", *(firmware or [])]
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe_kvm(binary: str = "qemu-system-x86_64", seconds: float = 10.0) -> bool:
    """True when a KVM guest really runs: boot the host kernel until it panics.

    /dev/kvm can exist while guests hang after the kernel starts (nested or
    partial virtualisation), so only a kernel reaching its panic proves it.
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or not shutil.which(binary):
        return False
    kernels = sorted(Path("/boot").glob("vmlinuz*"), reverse=True)
    kernel = next((k for k in kernels if os.access(k, os.R_OK)), None)
    if kernel is None:
        return False
    argv = [
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
    try:
        out = subprocess.run(argv, capture_output=True, timeout=seconds, check=False).stdout
    except subprocess.TimeoutExpired:
        return False
    return b"Kernel panic" in out


def choose_accel(cell: Cell, wanted: str) -> str:
    if wanted in ("kvm", "tcg"):
        return wanted
    native = HOST_ARCH.get(platform.machine()) == cell.arch
    return "kvm" if native and probe_kvm(QEMU[cell.arch]) else "tcg"


class Console:
    """Reads QEMU's serial console, tees it to the log, and signals the marker."""

    def __init__(self, proc: subprocess.Popen, log: Path, marker: str) -> None:
        self.proc, self.pattern = proc, re.compile(marker)
        self.tail: deque[str] = deque(maxlen=TAIL)
        self.marker_at: float | None = None
        self.changed = threading.Event()
        self._log = log.open("w", encoding="utf-8", errors="replace")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        # Chunks, not lines: a getty prompt ("localhost login: ") has no newline.
        assert self.proc.stdout is not None
        fd, pending = self.proc.stdout.fileno(), ""
        while chunk := os.read(fd, 4096):
            text = chunk.decode(errors="replace").replace("\r", "")
            self._log.write(text)
            self._log.flush()
            *lines, pending = (pending + text).split("\n")
            self.tail.extend(lines)
            self._look(lines, pending)
        if pending:
            self.tail.append(pending)
        self.changed.set()  # EOF: QEMU is gone

    def _look(self, lines: list[str], pending: str) -> None:
        if self.marker_at is None and any(self.pattern.search(x) for x in [*lines, pending]):
            self.marker_at = time.monotonic()
            self.changed.set()

    def wait_marker(self, deadline: float) -> bool:
        self.changed.wait(max(0.0, deadline - time.monotonic()))
        return self.marker_at is not None

    def close(self) -> None:
        self._thread.join(timeout=5)
        self._log.close()


def _ssh(port: int, settings: Settings, deadline: float, alive: subprocess.Popen):
    """Connect as soon as sshd answers; give up at the deadline or when QEMU exits."""
    import paramiko

    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    last, wait = "no answer", 2.0
    while time.monotonic() < deadline and alive.poll() is None:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a fresh live system
        try:
            # QEMU's port forward accepts before the guest listens and may then
            # stay silent: wait briefly for the banner, longer on each retry.
            wait = max(0.5, min(wait, deadline - time.monotonic()))
            client.connect(
                "127.0.0.1",
                port=port,
                username=settings.user,
                password=settings.password,
                timeout=wait,
                banner_timeout=wait,
                auth_timeout=10,
                allow_agent=False,
                look_for_keys=False,
            )
            return client
        except (paramiko.SSHException, OSError, EOFError) as err:
            last = str(err) or type(err).__name__
            client.close()
            wait = min(wait * 2, 10.0)
            time.sleep(0.2)
    raise TimeoutError(f"SSH as {settings.user} never answered ({last})")


def _run_check(client, check: Check, deadline: float) -> tuple[bool, str]:
    timeout = max(1.0, deadline - time.monotonic())
    _, stdout, stderr = client.exec_command(check.command, timeout=timeout)
    out = stdout.read().decode(errors="replace") + stderr.read().decode(errors="replace")
    return check.expect in out, " ".join(out.split())[:120]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _verdict(
    plan: BootPlan, console: Console, proc: subprocess.Popen, settings: Settings, start: float
) -> None:
    deadline = start + settings.timeout
    record = plan.results.append
    if not console.wait_marker(deadline):
        try:
            proc.wait(timeout=1)  # the output ended: QEMU is exiting, let it finish
            why = "QEMU exited"
        except subprocess.TimeoutExpired:
            why = f"timed out after {settings.timeout:.0f} s"
        record(Result("console marker", False, time.monotonic() - start, why))
        raise StepError(
            plan.cell.id,
            "test-boot",
            f"console never showed {settings.marker!r} ({why}); serial log: {plan.log}",
            console.tail,
        )
    record(Result("console marker", True, (console.marker_at or start) - start))
    try:
        client = _ssh(plan.port, settings, deadline, proc)
    except TimeoutError as err:
        record(Result("ssh", False, time.monotonic() - start, str(err)))
        raise StepError(
            plan.cell.id, "test-boot", f"{err}; serial log: {plan.log}", console.tail
        ) from None
    with client:
        for check in plan.checks:
            ok, out = _run_check(client, check, deadline)
            record(Result(check.name, ok, time.monotonic() - start, out))
            if not ok:
                raise StepError(
                    plan.cell.id,
                    "test-boot",
                    f"{check.name}: expected {check.expect!r}, got {out!r}; serial log: {plan.log}",
                    console.tail,
                )


def _firmware(cell: Cell, work: Path) -> list[str]:
    if cell.trusted_boot and cell.arch != "amd64":
        raise Skip(f"trusted boot boots on amd64 only here (OVMF + swtpm), not {cell.arch}")
    if cell.trusted_boot:
        found = next(((c, v) for c, v in OVMF if Path(c).exists() and Path(v).exists()), None)
        if not found:
            raise Skip("trusted boot needs OVMF with Secure Boot (package ovmf)")
        code, template = found
        variables = work / "OVMF_VARS.fd"  # a writable copy: UEFI stores state there
        shutil.copyfile(template, variables)
        return [
            "-machine",
            "q35,smm=on",
            "-global",
            "driver=cfi.pflash01,property=secure,value=on",
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={variables}",
        ]
    if cell.arch == "amd64":
        return []
    code = next((p for p in FIRMWARE[cell.arch] if Path(p).exists()), None)
    if code is None:
        raise Skip(f"no UEFI firmware for {cell.arch} (one of {', '.join(FIRMWARE[cell.arch])})")
    if cell.arch == "riscv64":  # EDK2 loads as pflash; OpenSBI stays the default -bios
        return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}"]
    return ["-bios", code]


def boot_iso(
    runner: Runner,
    release: Release,
    cell: Cell,
    iso: Path,
    settings: Settings,
    user_data: bytes,
) -> BootPlan:
    """Boot `iso`, run the checks, stop QEMU; raise StepError on the first failure."""
    binary = QEMU[cell.arch]
    log = iso.with_name(iso.name.removesuffix(".iso") + ".serial.log")
    if cell.model != "generic":
        raise Skip(f"model {cell.model} boots from its raw disk image, which is not boot-tested")
    if runner.dry:
        accel = settings.accel if settings.accel != "auto" else "kvm-if-it-works-else-tcg"
        argv = qemu_argv(cell, iso, Path("disk.qcow2"), Path("cidata.iso"), 0, accel, settings)
        runner.would(cell.id, f"boot: {' '.join(argv)}")
        return BootPlan(cell, iso, log, argv, 0, settings.accel, checks_for(release, cell))
    if not shutil.which(binary):
        raise Skip(f"{binary} is not installed")
    if not iso.exists():
        raise StepError(cell.id, "test-boot", f"no ISO at {iso}; run `invoke iso --cell {cell.id}`")
    accel = choose_accel(cell, settings.accel)
    with tempfile.TemporaryDirectory(prefix="kairos-boot-") as tmp:
        work = Path(tmp)
        firmware = _firmware(cell, work)
        disk, seed = work / "disk.qcow2", work / "cidata.iso"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "20G"], check=True)
        seed.write_bytes(cidata(user_data, f"kairos-{cell.id}"))
        tpm = _start_tpm(work) if cell.trusted_boot else None
        plan = BootPlan(cell, iso, log, [], free_port(), accel, checks_for(release, cell))
        plan.argv = qemu_argv(
            cell,
            iso,
            disk,
            seed,
            plan.port,
            accel,
            settings,
            firmware=firmware,
            tpm_socket=tpm and work / "swtpm.sock",
        )
        runner.say(cell.id, f"booting {iso.name} ({accel}, ssh on 127.0.0.1:{plan.port})")
        start = time.monotonic()
        proc = subprocess.Popen(
            plan.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        console = Console(proc, log, settings.marker)
        try:
            _verdict(plan, console, proc, settings, start)
        finally:
            _stop(proc)
            console.close()
            if tpm:
                _stop(tpm)
    for result in plan.results:
        runner.say(
            cell.id, f"{'pass' if result.ok else 'FAIL'} {result.name} ({result.seconds:.1f} s)"
        )
    return plan


def _start_tpm(work: Path) -> subprocess.Popen:
    if not shutil.which("swtpm"):
        raise Skip("trusted boot needs swtpm (package swtpm)")
    state, sock = work / "tpm", work / "swtpm.sock"
    state.mkdir()
    argv = ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}"]
    argv += ["--ctrl", f"type=unixio,path={sock}"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not sock.exists():  # QEMU fails if it starts before the socket exists
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise Skip("swtpm did not start")
        time.sleep(0.05)
    return proc

"""Boot stage: prove an ISO boots into a Kairos live system before it ships.

Boots the ISO in QEMU as planned in qemu.py, every process through the
Runner. The verdict is event-driven: the console (console.py) signals the
boot marker or a fatal line, SSH logs in from the start in the background,
the checks run the moment the marker appears, and QEMU is stopped as soon as
they pass or one fails.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shlex
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from . import qemu
from .config import Cell, Release
from .console import Console
from .qemu import Settings  # boot.Settings: what invoke config sets
from .runner import Process, Runner, Skip, StepError
from .words import clip, show

PROVIDER_VERSION_COMMAND = {"k3s": "k3s --version", "k0s": "k0s version"}
LIVE_STATE = "livecd_boot"
EARLY_WAIT = 1.0  # seconds for an SSH banner before the marker (then 2, 4, 8, 10)
# Trusted boot, checked as the login user (Debian-family kernels restrict dmesg,
# where upstream's suite looks with sudo): the UEFI SecureBoot variable's value
# byte is 1 when the firmware enforces Secure Boot; the TPM is a 2.0 device.
SECURE_BOOT = (
    "v=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c; "
    '[ "$(od -An -tu1 -j4 -N1 "$v" | tr -d " ")" = 1 ] '
    '&& echo "Secure Boot enabled" || echo "Secure Boot not enabled"'
)
TPM = 'echo "TPM $(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null || echo none)"'

# What --dry shows for the accel `auto` leaves to the machine.
AUTO_ACCEL = "kvm-if-it-works-else-tcg"


ACCELS = ("auto", "kvm", "tcg")


def settings(
    accel: str,
    memory: int,
    cpus: int,
    timeout: float,
    marker: str,
    cloud_config: str,
    uefi_vars: str = "",
) -> tuple[Settings, bytes]:
    """Checked machine settings and the cloud-config for cidata; ValueError names the one."""
    if accel not in ACCELS:
        raise ValueError(f"--accel must be auto, kvm or tcg (got {accel})")
    try:
        user_data = Path(cloud_config).read_bytes()
    except OSError as err:
        raise ValueError(f"cloud-config {cloud_config}: {err.strerror}") from None
    if uefi_vars and not Path(uefi_vars).is_file():
        raise ValueError(f"kairos.boot.uefi_vars {uefi_vars}: no such file")
    machine = Settings(accel, int(memory), int(cpus), float(timeout), marker, uefi_vars=uefi_vars)
    return machine, user_data


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
    if cell.trusted_boot:
        checks.append(Check("secure boot", SECURE_BOOT, "Secure Boot enabled"))
        checks.append(Check("tpm", TPM, "TPM 2"))
    for extra in (*release.boot_checks, *cell.boot_checks):
        checks.append(Check(extra.run, extra.run, extra.expect))
    return checks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe_kvm(
    runner: Runner,
    binary: str = "qemu-system-x86_64",
    seconds: float = 10.0,
    *,
    kvm: Path = Path("/dev/kvm"),
    kernels: Path = Path("/boot"),
) -> bool:
    """True when a KVM guest really runs: boot the host kernel until it panics.

    /dev/kvm can exist while guests hang after the kernel starts (nested or
    partial virtualisation), so only a kernel reaching its panic proves it.
    """
    if not os.access(kvm, os.R_OK | os.W_OK) or not runner.which(binary):
        return False
    found = sorted(kernels.glob("vmlinuz*"), reverse=True)
    kernel = next((k for k in found if os.access(k, os.R_OK)), None)
    if kernel is None:
        return False
    answer = runner.query(qemu.kvm_probe_argv(binary, kernel), timeout=seconds)
    return answer.code is not None and "Kernel panic" in answer.out


class Dialer:
    """Logs in over SSH from the moment QEMU starts, in the background.

    sshd is up before the login prompt, and the key exchange is slow on an
    emulated guest CPU: done early, it is not between the marker and the verdict.
    """

    def __init__(
        self,
        runner: Runner,
        port: int,
        settings: Settings,
        alive: Process,
        marked: Callable[[], bool] = lambda: True,
    ) -> None:
        self.client: Any = None
        self.last = "no answer"
        self._stop = threading.Event()
        args = (runner, port, settings, alive, marked)
        self._thread = threading.Thread(target=self._dial, args=args, daemon=True)
        self._thread.start()

    def _dial(
        self,
        runner: Runner,
        port: int,
        settings: Settings,
        alive: Process,
        marked: Callable[[], bool],
    ) -> None:
        import paramiko

        wait = 2.0 if marked() else EARLY_WAIT
        while not self._stop.is_set() and alive.running():
            # QEMU's port forward accepts before the guest listens and may then
            # stay silent. Before the marker that means the guest's network is not
            # up yet: try again soon. After it, a slow guest gets longer each time.
            try:
                self.client = runner.ssh(port, settings.user, settings.password, wait)
                return
            except (paramiko.SSHException, OSError, EOFError) as err:
                self.last = str(err) or type(err).__name__
                wait = min(max(wait * 2, 2.0), 10.0) if marked() else EARLY_WAIT
                self._stop.wait(0.2)

    def login(self, settings: Settings, deadline: float) -> Any:
        """The logged-in client; TimeoutError at the deadline or once QEMU is gone."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self.client is None:
            raise TimeoutError(f"SSH as {settings.user} never answered ({self.last})")
        return self.client

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.client is not None:
            self.client.close()


def _run_check(client: Any, check: Check, deadline: float) -> tuple[bool, str]:
    timeout = max(1.0, deadline - time.monotonic())
    _, stdout, stderr = client.exec_command(check.command, timeout=timeout)
    with stdout.channel:  # closed: an SSH server limits the channels open at once
        out = stdout.read().decode(errors="replace") + stderr.read().decode(errors="replace")
    return check.expect in out, " ".join(out.split())[:120]


def _verdict(
    runner: Runner,
    plan: BootPlan,
    console: Console,
    proc: Process,
    settings: Settings,
    start: float,
) -> None:
    """Pass, or raise StepError; QEMU is stopped on the way out."""
    dialer = Dialer(runner, plan.port, settings, proc, lambda: console.marker_at is not None)
    try:
        _judge(plan, console, proc, dialer, settings, start)
    finally:
        proc.stop()  # first: a login under way then ends at once
        dialer.close()


def _judge(
    plan: BootPlan,
    console: Console,
    proc: Process,
    dialer: Dialer,
    settings: Settings,
    start: float,
) -> None:
    deadline = start + settings.timeout
    record = plan.results.append
    if not console.wait_marker(deadline):
        _no_marker(plan, console, proc, settings, start)
    record(Result("console marker", True, (console.marker_at or start) - start))
    try:
        client = dialer.login(settings, deadline)
    except TimeoutError as err:
        record(Result("ssh", False, time.monotonic() - start, str(err)))
        raise StepError(
            plan.cell.id, "test-boot", f"{err}; serial log: {plan.log}", console.tail
        ) from None
    for check in plan.checks:
        ok, out = _run_check(client, check, deadline)
        record(Result(check.name, ok, time.monotonic() - start, out))
        if not ok:
            raise StepError(
                plan.cell.id,
                "test-boot",
                f"{check.name}: expected {show(check.expect)}, "
                f"got {clip(out) or 'no output'}; serial log: {plan.log}",
                console.tail,
            )


def _no_marker(
    plan: BootPlan, console: Console, proc: Process, settings: Settings, start: float
) -> NoReturn:
    """Record and raise why the marker never showed: a fatal line, QEMU gone, the timeout."""
    if console.fatal:
        name, why, reason = "console", console.fatal, console.fatal
    else:
        # The output ended: QEMU is exiting, let it finish.
        exited = proc.wait(1)
        name = "console marker"
        why = "QEMU exited" if exited else f"timed out after {settings.timeout:.0f} s"
        reason = f"console never showed {show(settings.marker)} ({why})"
    plan.results.append(Result(name, False, time.monotonic() - start, why))
    raise StepError(plan.cell.id, "test-boot", f"{reason}; serial log: {plan.log}", console.tail)


def boot_iso(
    runner: Runner,
    release: Release,
    cell: Cell,
    iso: Path,
    settings: Settings,
    user_data: bytes,
) -> BootPlan:
    """Boot `iso`, run the checks, stop QEMU; raise StepError on the first failure.

    Under --dry the plan is printed instead: the QEMU command, with the work
    files by name and the accel `auto` still to choose.
    """
    if cell.model != "generic":
        raise Skip(f"model {cell.model} boots from its raw disk image, which is not boot-tested")
    log = iso.with_name(iso.name.removesuffix(".iso") + ".serial.log")
    accel = settings.accel if settings.accel != "auto" else AUTO_ACCEL
    disk, seed = Path(qemu.DISK), Path(qemu.SEED)
    argv = qemu.qemu_argv(cell, iso, disk, seed, 0, accel, settings)
    planned = BootPlan(cell, iso, log, argv, 0, settings.accel, checks_for(release, cell))
    done = runner.act(
        cell.id, f"boot: {shlex.join(argv)}", lambda: _boot(runner, planned, settings, user_data)
    )
    return planned if done is None else done


def _boot(runner: Runner, planned: BootPlan, settings: Settings, user_data: bytes) -> BootPlan:
    cell, iso = planned.cell, planned.iso
    binary = qemu.QEMU[cell.arch]
    if not runner.which(binary):
        raise Skip(f"{binary} is not installed")
    if not iso.exists():
        raise StepError(cell.id, "test-boot", f"no ISO at {iso}; run `invoke iso --cell {cell.id}`")
    host = qemu.HOST_ARCH.get(platform.machine())
    accel = qemu.choose_accel(cell, settings.accel, host, lambda b: probe_kvm(runner, b))
    with tempfile.TemporaryDirectory(prefix="kairos-boot-") as tmp, ExitStack() as running:
        work = Path(tmp)
        try:
            firmware, variables = qemu.firmware(cell, work, settings.uefi_vars)
        except ValueError as err:
            raise StepError(cell.id, "test-boot", str(err)) from None
        if variables:
            shutil.copyfile(variables, work / qemu.OVMF_VARS)
        disk, seed = work / qemu.DISK, work / qemu.SEED
        runner.run(cell.id, "test-boot", qemu.disk_argv(disk))
        seed.write_bytes(qemu.cidata(user_data, f"kairos-{cell.id}"))
        tpm = running.enter_context(_tpm(runner, cell, work)) if cell.trusted_boot else None
        port = free_port()
        argv = qemu.qemu_argv(
            cell, iso, disk, seed, port, accel, settings, firmware=firmware, tpm_socket=tpm
        )
        plan = dataclasses.replace(planned, argv=argv, port=port, accel=accel, tpm_socket=tpm)
        runner.say(cell.id, f"booting {iso.name} ({accel}, ssh on 127.0.0.1:{port})")
        start = time.monotonic()
        proc = running.enter_context(runner.spawn(cell.id, "test-boot", argv, console=True))
        assert proc.stream is not None  # console=True keeps it
        console = Console(proc.stream, plan.log, settings.marker)
        try:
            _verdict(runner, plan, console, proc, settings, start)
        finally:
            proc.stop()
            console.close()
    for result in plan.results:
        runner.say(
            cell.id, f"{'pass' if result.ok else 'FAIL'} {result.name} ({result.seconds:.1f} s)"
        )
    return plan


@contextmanager
def _tpm(runner: Runner, cell: Cell, work: Path) -> Iterator[Path]:
    """A software TPM for the block; yields its socket once it exists."""
    if not runner.which("swtpm"):
        raise Skip("trusted boot needs swtpm (package swtpm)")
    state, sock = work / "tpm", work / qemu.TPM_SOCKET
    state.mkdir()
    with runner.spawn(cell.id, "test-boot", qemu.swtpm_argv(state, sock), console=False) as proc:
        deadline = time.monotonic() + 10
        while not sock.exists():  # QEMU fails if it starts before the socket exists
            if not proc.running() or time.monotonic() > deadline:
                raise Skip("swtpm did not start")
            time.sleep(0.05)
        yield sock

"""The boot stage without QEMU: argv planning, checks, the cidata seed, and the verdict.

Nothing here starts QEMU, Docker or a network connection to a guest: the
stage gets a FakeRunner, which records the argv it is asked to run and plays
scripted consoles and SSH answers. Where timing matters, the serial console
is played by real Python subprocesses started through the real Runner, so
the event-driven waits are timed against processes that print, sleep and exit.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pycdlib
import pytest
from fake_runner import FakeRunner
from invoke import Exit

from kairos_distro import boot, invocation, qemu, release
from kairos_distro import console as console_module
from kairos_distro.boot import Check, Settings
from kairos_distro.config import Cell
from kairos_distro.runner import Answer, Process, Runner, Skip, StepError

K3S = {"provider": "k3s", "provider_version": "v1.35.1+k3s1"}
K0S = {"provider": "k0s", "provider_version": "v1.35.1+k0s.0"}
ISO, DISK, SEED = Path("/out/x.iso"), Path("/work/disk.qcow2"), Path("/work/cidata.iso")
BASE_CHECKS = [
    Check("ssh echo ping", "echo ping", "ping"),
    Check("boot state", "kairos-agent state get boot", "livecd_boot"),
]
QUICK = 2.0  # seconds: "promptly", far below any deadline used here


def after(argv: list[str], flag: str) -> list[str]:
    """Every value that follows `flag` in argv, in order."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def argv_for(cell: Cell, accel: str = "tcg", **kwargs: Any) -> list[str]:
    settings = kwargs.pop("settings", Settings())
    return qemu.qemu_argv(cell, ISO, DISK, SEED, 2222, accel, settings, **kwargs)


def refuse(what: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{what} was called: {args} {kwargs}")

    return refused


# -- qemu_argv ---------------------------------------------------------------------


def test_qemu_argv_amd64_with_kvm() -> None:
    argv = argv_for(Cell(arch="amd64"), "kvm", settings=Settings(memory=3072, cpus=3))
    assert argv[0] == "qemu-system-x86_64"
    assert after(argv, "-accel") == ["kvm"]
    assert after(argv, "-cpu") == ["host"]
    assert "-machine" not in argv  # the default pc machine
    assert after(argv, "-m") == ["3072"]
    assert after(argv, "-smp") == ["3"]
    assert "-nographic" in argv  # the serial console is QEMU's stdout
    assert "-no-reboot" in argv  # a guest that reboots ends the run instead of looping
    assert after(argv, "-nic") == ["user,model=e1000,hostfwd=tcp:127.0.0.1:2222-:22"]
    assert after(argv, "-drive") == [
        f"file={ISO},media=cdrom,readonly=on",
        f"file={SEED},media=cdrom,readonly=on",
        f"file={DISK},format=qcow2,if=virtio",
    ]
    assert not {"-tpmdev", "-chardev", "-bios"} & set(argv)


def test_qemu_argv_tcg_uses_the_max_cpu() -> None:
    argv = argv_for(Cell(arch="amd64"), "tcg")
    assert after(argv, "-accel") == ["tcg"]
    assert after(argv, "-cpu") == ["max"]  # `host` needs KVM
    assert (after(argv, "-m"), after(argv, "-smp")) == (["2048"], ["2"])  # Settings defaults


@pytest.mark.parametrize(
    "arch, binary", [("arm64", "qemu-system-aarch64"), ("riscv64", "qemu-system-riscv64")]
)
@pytest.mark.parametrize("accel, cpu", [("tcg", "max"), ("kvm", "host")])
def test_qemu_argv_virt_machines(arch, binary, accel, cpu) -> None:
    argv = argv_for(Cell(arch=arch), accel)
    assert argv[0] == binary
    assert after(argv, "-machine") == ["virt"]
    assert after(argv, "-accel") == [accel]
    assert after(argv, "-cpu") == [cpu]
    assert after(argv, "-nic") == ["user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:2222-:22"]
    assert after(argv, "-drive")[-1] == f"file={DISK},format=qcow2,if=virtio"


def test_qemu_argv_tpm_socket_adds_a_tpm_device() -> None:
    sock = Path("/work/swtpm.sock")
    argv = argv_for(Cell(arch="amd64", trusted_boot=True), tpm_socket=sock)
    assert after(argv, "-chardev") == [f"socket,id=chrtpm,path={sock}"]
    assert after(argv, "-tpmdev") == ["emulator,id=tpm0,chardev=chrtpm"]
    assert after(argv, "-device") == ["tpm-tis,tpmdev=tpm0"]


def test_qemu_argv_includes_firmware_args_in_order() -> None:
    firmware = ["-machine", "q35,smm=on", "-drive", "if=pflash,format=raw,unit=0,file=/c.fd"]
    argv = argv_for(Cell(arch="amd64", trusted_boot=True), firmware=firmware)
    start = argv.index(firmware[0])
    assert argv[start : start + len(firmware)] == firmware
    # The firmware's pflash drive comes before the ISO, seed and disk drives.
    assert after(argv, "-drive")[0] == firmware[-1]
    assert len(after(argv, "-drive")) == 4


def test_qemu_argv_arm64_bios() -> None:
    argv = argv_for(Cell(arch="arm64"), firmware=["-bios", "/fw/QEMU_EFI.fd"])
    assert after(argv, "-bios") == ["/fw/QEMU_EFI.fd"]
    assert after(argv, "-machine") == ["virt"]


# -- checks_for --------------------------------------------------------------------------


def test_checks_for_a_core_cell(make_release) -> None:
    rel = make_release({"arch": "amd64"})
    assert boot.checks_for(rel, rel.cells[0]) == BASE_CHECKS


@pytest.mark.parametrize(
    "provider, check",
    [
        (K3S, Check("k3s version", "k3s --version", "v1.35.1+k3s1")),
        (K0S, Check("k0s version", "k0s version", "v1.35.1+k0s.0")),
    ],
)
def test_checks_for_a_provider_cell_adds_its_version(make_release, provider, check) -> None:
    rel = make_release({"arch": "amd64", **provider})
    assert boot.checks_for(rel, rel.cells[0]) == [*BASE_CHECKS, check]


def test_checks_for_adds_release_then_cell_boot_checks(make_release) -> None:
    rel = make_release(
        {"arch": "amd64", **K3S, "boot_checks": [{"run": "uname -m", "expect": "x86_64"}]},
        {"arch": "arm64"},
        boot_checks=[
            {"run": "cat /etc/os-release", "expect": "ID="},
            {"run": "echo $SHELL", "expect": "sh"},
        ],
    )
    released = [
        Check("cat /etc/os-release", "cat /etc/os-release", "ID="),
        Check("echo $SHELL", "echo $SHELL", "sh"),
    ]
    provider = Check("k3s version", "k3s --version", "v1.35.1+k3s1")
    own = Check("uname -m", "uname -m", "x86_64")
    assert boot.checks_for(rel, rel.cells[0]) == [*BASE_CHECKS, provider, *released, own]
    # Another cell gets the release's checks, not its sibling's.
    assert boot.checks_for(rel, rel.cells[1]) == [*BASE_CHECKS, *released]


# -- cidata ------------------------------------------------------------------------------


def read_from(iso: pycdlib.PyCdlib, **where: str) -> bytes:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, **where)
    return out.getvalue()


def test_cidata_is_a_nocloud_volume() -> None:
    user_data = b"#cloud-config\nusers:\n  - name: kairos\n    passwd: kairos\n"
    data = qemu.cidata(user_data, "kairos-amd64-generic")
    # The raw primary volume descriptor, as blkid reads it for the label.
    assert data[0x8001:0x8006] == b"CD001"
    assert data[0x8028:0x8048].rstrip() == b"cidata"
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    try:
        assert iso.has_rock_ridge() and iso.has_joliet()
        assert iso.pvd.volume_identifier.rstrip() == b"cidata"
        # blkid prefers the Joliet label when there is one: it must read cidata too.
        assert iso.joliet_vd.volume_identifier.decode("utf-16-be").rstrip() == "cidata"
        names = {c.rock_ridge.name() for c in iso.list_children(rr_path="/")}
        assert names == {b".", b"..", b"user-data", b"meta-data"}
        for where in ({"rr_path": "/user-data"}, {"joliet_path": "/user-data"}):
            assert read_from(iso, **where) == user_data
        assert read_from(iso, iso_path="/USERDATA.;1") == user_data
        meta = read_from(iso, rr_path="/meta-data").decode()
        assert meta.splitlines() == [
            "instance-id: kairos-amd64-generic",
            "local-hostname: kairos-amd64-generic",
        ]
        assert read_from(iso, joliet_path="/meta-data") == meta.encode()
    finally:
        iso.close()


# -- choose_accel and probe_kvm ----------------------------------------------------------


@pytest.mark.parametrize("arch", ["amd64", "arm64", "riscv64"])
@pytest.mark.parametrize("wanted", ["kvm", "tcg"])
def test_choose_accel_keeps_an_explicit_choice(arch, wanted) -> None:
    assert qemu.choose_accel(Cell(arch=arch), wanted, arch, refuse("the KVM probe")) == wanted


@pytest.mark.parametrize(
    "host, arch",
    [("amd64", "arm64"), ("amd64", "riscv64"), ("arm64", "amd64"), (None, "amd64")],
)
def test_choose_accel_foreign_arch_is_tcg_without_probing(host, arch) -> None:
    assert qemu.choose_accel(Cell(arch=arch), "auto", host, refuse("the KVM probe")) == "tcg"


@pytest.mark.parametrize(
    "arch, binary", [("amd64", "qemu-system-x86_64"), ("arm64", "qemu-system-aarch64")]
)
@pytest.mark.parametrize("works, accel", [(True, "kvm"), (False, "tcg")])
def test_choose_accel_native_arch_follows_the_probe(arch, binary, works, accel) -> None:
    probed: list[str] = []
    kvm_works = lambda b: probed.append(b) or works  # noqa: E731
    assert qemu.choose_accel(Cell(arch=arch), "auto", arch, kvm_works) == accel
    assert probed == [binary]


def test_host_arch_names_the_machines_qemu_emulates() -> None:
    assert {qemu.HOST_ARCH[m] for m in ("x86_64", "aarch64", "riscv64")} == set(qemu.QEMU)


@pytest.fixture
def kvm_host(tmp_path) -> tuple[Path, Path, Path]:
    """(a usable /dev/kvm stand-in, a /boot with one kernel, that kernel)."""
    kvm, kernels = tmp_path / "kvm", tmp_path / "boot"
    kvm.write_bytes(b"")
    kernels.mkdir()
    kernel = kernels / "vmlinuz-6.1.0-test"
    kernel.write_bytes(b"not really a kernel")
    return kvm, kernels, kernel


def test_probe_kvm_false_without_dev_kvm_access(kvm_host) -> None:
    _, kernels, _ = kvm_host
    runner = FakeRunner(installed={"qemu-system-x86_64"})
    missing = kernels.parent / "no-kvm"
    assert boot.probe_kvm(runner, kvm=missing, kernels=kernels) is False
    assert not runner.queried


def test_probe_kvm_false_without_the_binary(kvm_host) -> None:
    kvm, kernels, _ = kvm_host
    runner = FakeRunner()
    assert boot.probe_kvm(runner, "qemu-system-x86_64", kvm=kvm, kernels=kernels) is False
    assert runner.looked_up == ["qemu-system-x86_64"]
    assert not runner.queried


def test_probe_kvm_false_without_a_readable_kernel(kvm_host) -> None:
    kvm, kernels, kernel = kvm_host
    kernel.unlink()
    runner = FakeRunner(installed={"qemu-system-x86_64"})
    assert boot.probe_kvm(runner, kvm=kvm, kernels=kernels) is False
    assert not runner.queried


@pytest.mark.parametrize(
    "output, works", [("...\n[ 1.2] Kernel panic - not syncing: VFS\n", True), ("...\n", False)]
)
def test_probe_kvm_needs_the_kernel_to_reach_its_panic(kvm_host, output, works) -> None:
    kvm, kernels, kernel = kvm_host
    older = kernels / "vmlinuz-5.10.0-old"
    older.write_bytes(b"")
    runner = FakeRunner(
        installed={"qemu-system-x86_64"},
        answers={("qemu-system-x86_64",): Answer(0, output)},
    )
    assert boot.probe_kvm(runner, "qemu-system-x86_64", 3.0, kvm=kvm, kernels=kernels) is works
    (argv,) = runner.queried
    assert argv == qemu.kvm_probe_argv("qemu-system-x86_64", kernel)  # the newest kernel
    assert argv[0] == "qemu-system-x86_64"
    assert (after(argv, "-accel"), after(argv, "-kernel")) == (["kvm"], [str(kernel)])
    assert after(argv, "-append") == ["console=ttyS0 panic=-1"]


def test_probe_kvm_false_when_the_guest_hangs(kvm_host) -> None:
    kvm, kernels, _ = kvm_host
    # A query that ran out of time has no exit code, whatever it printed.
    hung = Answer(None, "Kernel panic")
    runner = FakeRunner(installed={"qemu-system-x86_64"}, answers={("qemu-system-x86_64",): hung})
    assert boot.probe_kvm(runner, kvm=kvm, kernels=kernels) is False


def test_runner_query_reports_a_timeout_without_an_exit_code() -> None:
    script = "import sys, time; print('started', flush=True); time.sleep(10)"
    start = time.monotonic()
    answer = Runner().query([sys.executable, "-c", script], timeout=0.5)
    assert time.monotonic() - start < QUICK
    assert answer.code is None


# -- Console: a real process plays the serial console -----------------------------------

Spawn = Callable[..., tuple[Process, boot.Console, Path]]


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Spawn]:
    """console(script, marker): run `python -c script` through the real Runner's spawn
    and read it as a serial console."""
    started: list[tuple[Process, boot.Console]] = []
    with ExitStack() as stack:

        def spawn(script: str, marker: str = "login:") -> tuple[Process, boot.Console, Path]:
            log = tmp_path / f"serial-{len(started)}.log"
            argv = [sys.executable, "-u", "-c", script]
            proc = stack.enter_context(Runner().spawn("test", "console", argv, console=True))
            assert proc.stream is not None
            reader = boot.Console(proc.stream, log, marker)
            started.append((proc, reader))
            return proc, reader, log

        yield spawn
        for proc, reader in started:
            proc.stop()
            reader.close()
    assert not any(proc.running() for proc, _ in started)  # spawn's block stops them all


def finish(proc: Process, reader: boot.Console) -> None:
    """Stop the process and let the reader drain the pipe into the log."""
    proc.stop()
    reader.close()


BOOTING = """
import sys, time
for i in range(3):
    print(f"boot {i}")
    time.sleep(0.05)
sys.stdout.write("kairos login:\\r\\n")
time.sleep(5)
"""


def test_console_signals_the_marker_as_soon_as_it_appears(console) -> None:
    proc, reader, log = console(BOOTING)
    start = time.monotonic()
    assert reader.wait_marker(start + 60) is True
    waited = time.monotonic() - start
    assert waited < QUICK, waited  # the script sleeps 5 s after the marker
    assert proc.running()  # event-driven: the process is still running
    assert reader.marker_at is not None and start <= reader.marker_at <= time.monotonic()
    finish(proc, reader)
    # Every line reaches the log, with the serial line's CR stripped.
    lines = ["boot 0", "boot 1", "boot 2", "kairos login:"]
    assert log.read_text().splitlines() == lines
    assert "\r" not in log.read_text()
    assert list(reader.tail) == lines


def test_console_marker_is_a_regular_expression(console) -> None:
    script = "import time\nprint('login: soon')\ntime.sleep(0.5)\nprint('a login:')\ntime.sleep(5)"
    proc, reader, _ = console(script, r"^\S+ login:")
    start = time.monotonic()
    assert reader.wait_marker(start + 60) is True
    assert 0.4 <= time.monotonic() - start < QUICK  # the first line did not match
    assert proc.running()


def test_console_eof_without_marker_returns_false_promptly(console) -> None:
    proc, reader, log = console("for i in range(40): print(f'line {i}')")
    start = time.monotonic()
    assert reader.wait_marker(start + 60) is False
    assert time.monotonic() - start < QUICK  # at EOF, not at the deadline
    assert reader.marker_at is None
    assert proc.wait(5)
    reader.close()
    lines = [f"line {i}" for i in range(40)]
    assert log.read_text().splitlines() == lines
    assert list(reader.tail) == lines[-console_module.TAIL :]


def test_console_silent_process_returns_false_at_the_deadline(console) -> None:
    proc, reader, _ = console("import time; time.sleep(10)")
    start = time.monotonic()
    assert reader.wait_marker(start + 0.3) is False
    assert 0.25 <= time.monotonic() - start < QUICK
    assert proc.running()


def test_console_an_earlier_marker_is_not_lost(console) -> None:
    # wait_marker called after the marker went by still says so, at once.
    proc, reader, _ = console("print('kairos login:')")
    assert proc.wait(5)
    reader.close()
    start = time.monotonic()
    assert reader.wait_marker(start + 60) is True
    assert time.monotonic() - start < QUICK


# -- _ssh and _verdict ----------------------------------------------------------------------


def plan_for(cell: Cell, log: Path, checks: list[Check] | None = None) -> boot.BootPlan:
    return boot.BootPlan(
        cell, ISO, log, [], boot.free_port(), "tcg", checks if checks is not None else BASE_CHECKS
    )


def one_line(err: StepError, log: Path) -> str:
    message = str(err)
    assert "\n" not in message, message
    assert message.startswith("amd64-generic: test-boot: "), message
    assert message.endswith(f"; serial log: {log}"), message
    return message


def test_verdict_when_qemu_exits_before_the_marker(console) -> None:
    proc, reader, log = console("for i in range(20): print(f'panic {i}')\nraise SystemExit(1)")
    assert proc.wait(5)
    plan = plan_for(Cell(arch="amd64"), log)
    start = time.monotonic()
    with pytest.raises(StepError) as caught:
        boot._verdict(FakeRunner(), plan, reader, proc, Settings(timeout=60), start)
    assert time.monotonic() - start < QUICK
    message = one_line(caught.value, log)
    assert message == (
        f'amd64-generic: test-boot: console never showed "login:" (QEMU exited); serial log: {log}'
    )
    assert caught.value.tail == [f"panic {i}" for i in range(5, 20)]
    assert [(r.name, r.ok, r.detail) for r in plan.results] == [
        ("console marker", False, "QEMU exited")
    ]


def test_verdict_when_the_marker_never_comes(console) -> None:
    proc, reader, log = console("print('GRUB loading'); import time; time.sleep(10)")
    plan = plan_for(Cell(arch="amd64"), log)
    with pytest.raises(StepError) as caught:
        boot._verdict(FakeRunner(), plan, reader, proc, Settings(timeout=1.0), time.monotonic())
    message = one_line(caught.value, log)
    assert 'console never showed "login:" (timed out after 1 s)' in message
    assert caught.value.tail == ["GRUB loading"]
    assert plan.results[0].ok is False


def test_dialer_gives_up_as_soon_as_qemu_exits(console) -> None:
    proc, _, _ = console("print('kairos login:')")
    assert proc.wait(5)
    runner = FakeRunner()
    start = time.monotonic()
    dialer = boot.Dialer(runner, boot.free_port(), Settings(), proc)
    with pytest.raises(TimeoutError, match=r"^SSH as kairos never answered \(no answer\)$"):
        dialer.login(Settings(), start + 60)
    dialer.close()
    assert time.monotonic() - start < QUICK
    assert runner.ssh_calls == []


def test_dialer_retries_until_sshd_answers() -> None:
    client = FakeSSH({})
    refused = [OSError("connection refused"), EOFError()]
    runner = FakeRunner(ssh_results=[*refused, client])
    with runner.spawn("amd64-generic", "test-boot", ["qemu-system-x86_64"], console=True) as proc:
        dialer = boot.Dialer(runner, 2222, Settings(password="pw"), proc)
        found = dialer.login(Settings(), time.monotonic() + 60)
        dialer.close()
    assert found is client and client.closed
    assert [(port, user, pw) for port, user, pw, _ in runner.ssh_calls] == [
        (2222, "kairos", "pw")
    ] * 3
    waits = [wait for *_, wait in runner.ssh_calls]
    assert waits == [2.0, 4.0, 8.0]  # longer each time: a silent forward gets more time


def test_dialer_waits_briefly_until_the_marker_then_longer() -> None:
    """Before the marker a silent forward is a guest without network yet: a long wait
    there would hold the login past the marker."""
    shown = threading.Event()

    class Marking(FakeRunner):
        def ssh(self, *args: Any) -> Any:
            if len(self.ssh_calls) == 3:  # the marker shows during the 4th attempt
                shown.set()
            return super().ssh(*args)

    runner = Marking(ssh_results=[OSError("silent")] * 3 + [EOFError()] * 3 + [FakeSSH({})])
    with runner.spawn("amd64-generic", "test-boot", ["qemu-system-x86_64"], console=True) as proc:
        dialer = boot.Dialer(runner, 2222, Settings(), proc, shown.is_set)
        dialer.login(Settings(), time.monotonic() + 60)
        dialer.close()
    waits = [wait for *_, wait in runner.ssh_calls]
    assert waits == [boot.EARLY_WAIT] * 4 + [2.0, 4.0, 8.0]


def test_verdict_when_ssh_never_answers(console) -> None:
    # The marker shows, QEMU keeps running, and nothing listens on the port: the
    # real Runner's SSH client is refused until the deadline.
    proc, reader, log = console("print('kairos login:'); import time; time.sleep(10)")
    plan = plan_for(Cell(arch="amd64"), log)
    start = time.monotonic()
    with pytest.raises(StepError) as caught:
        boot._verdict(Runner(), plan, reader, proc, Settings(timeout=1.0), start)
    assert time.monotonic() - start < 1.0 + QUICK
    message = one_line(caught.value, log)
    assert "SSH as kairos never answered (" in message
    assert [(r.name, r.ok) for r in plan.results] == [("console marker", True), ("ssh", False)]
    assert plan.results[0].seconds < QUICK


class FakeSSH:
    """Stands in for a connected paramiko client: command -> output, one channel each."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers, self.ran = answers, []
        self.closed = False
        self.open_channels = 0

    def close(self) -> None:
        self.closed = True

    def exec_command(self, command: str, timeout: float) -> tuple[None, io.BytesIO, io.BytesIO]:
        assert timeout >= 1.0
        self.ran.append(command)
        out = io.BytesIO(self.answers[command].encode())
        out.channel = FakeChannel(self)  # type: ignore[attr-defined]
        return None, out, io.BytesIO(b"")


class FakeChannel:
    def __init__(self, ssh: FakeSSH) -> None:
        self.ssh = ssh
        ssh.open_channels += 1

    def __enter__(self) -> FakeChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ssh.open_channels -= 1


def test_verdict_runs_every_check(console) -> None:
    proc, reader, log = console("print('kairos login:'); import time; time.sleep(10)")
    client = FakeSSH({"echo ping": "ping\n", "kairos-agent state get boot": "livecd_boot\n"})
    plan = plan_for(Cell(arch="amd64"), log)
    runner = FakeRunner(ssh_results=[client])
    boot._verdict(runner, plan, reader, proc, Settings(), time.monotonic())
    assert [port for port, *_ in runner.ssh_calls] == [plan.port]
    assert client.ran == ["echo ping", "kairos-agent state get boot"]
    assert client.closed and client.open_channels == 0  # servers limit open channels
    assert not proc.running()  # stopped as soon as the verdict is in
    assert [(r.name, r.ok) for r in plan.results] == [
        ("console marker", True),
        ("ssh echo ping", True),
        ("boot state", True),
    ]
    assert plan.results[2].detail == "livecd_boot"


def test_verdict_stops_at_the_first_failed_check(console) -> None:
    proc, reader, log = console("print('kairos login:'); import time; time.sleep(10)")
    client = FakeSSH({"echo ping": "ping", "kairos-agent state get boot": "active_boot\n"})
    extra = Check("uname", "uname", "Linux")
    plan = plan_for(Cell(arch="amd64"), log, [*BASE_CHECKS, extra])
    runner = FakeRunner(ssh_results=[client])
    with pytest.raises(StepError) as caught:
        boot._verdict(runner, plan, reader, proc, Settings(), time.monotonic())
    message = one_line(caught.value, log)
    assert 'boot state: expected "livecd_boot", got active_boot' in message
    assert client.ran == ["echo ping", "kairos-agent state get boot"]  # uname never ran
    assert [(r.name, r.ok) for r in plan.results][-1] == ("boot state", False)


# -- boot_iso ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell, binary",
    [
        ({"arch": "amd64"}, "qemu-system-x86_64"),
        ({"arch": "arm64", **K3S}, "qemu-system-aarch64"),
        ({"arch": "riscv64"}, "qemu-system-riscv64"),
    ],
)
def test_boot_iso_dry_prints_the_plan_and_runs_nothing(make_release, tmp_path, cell, binary):
    rel = make_release(cell, boot_checks=[{"run": "uname", "expect": "Linux"}])
    one = rel.cells[0]
    runner = FakeRunner(dry=True, installed={binary})
    iso = tmp_path / "out" / "x.iso"
    plan = boot.boot_iso(runner, rel, one, iso, Settings(accel="tcg"), b"")
    (line,) = runner.out.getvalue().splitlines()
    assert line.startswith(f"[{one.id}] would boot: {binary} -accel tcg -cpu max "), line
    assert f" file={iso},media=cdrom,readonly=on " in line
    assert plan.argv[0] == binary
    assert line.endswith(" ".join(plan.argv))
    assert plan.checks == boot.checks_for(rel, one)
    assert plan.checks[-1] == Check("uname", "uname", "Linux")
    assert plan.log == tmp_path / "out" / "x.serial.log"
    assert plan.results == []
    assert not runner.asked()  # no lookup, probe, qemu-img, QEMU or SSH
    assert list(tmp_path.iterdir()) == []  # no log, disk or seed written


def test_boot_iso_dry_leaves_auto_accel_to_the_machine(make_release, tmp_path) -> None:
    rel = make_release({"arch": "amd64"})
    runner = FakeRunner(dry=True)
    plan = boot.boot_iso(runner, rel, rel.cells[0], tmp_path / "x.iso", Settings(), b"")
    assert after(plan.argv, "-accel") == [boot.AUTO_ACCEL]
    assert plan.accel == "auto"
    assert not runner.asked()


@pytest.mark.parametrize("dry", [False, True])
@pytest.mark.parametrize("model", ["rpi4", "nvidia-jetson-thor"])
def test_boot_iso_skips_board_models(make_release, tmp_path, model, dry):
    rel = make_release({"arch": "arm64", "model": model})
    runner = FakeRunner(dry=dry, installed={"qemu-system-aarch64"})
    why = rf"^model {model} boots from its raw disk image, which is not boot-tested$"
    with pytest.raises(Skip, match=why):
        boot.boot_iso(runner, rel, rel.cells[0], tmp_path / "x.iso", Settings(), b"")
    assert runner.out.getvalue() == ""
    assert not runner.asked()


@pytest.mark.parametrize("arch", ["amd64", "arm64", "riscv64"])
def test_boot_iso_skips_without_qemu(make_release, tmp_path, arch):
    rel = make_release({"arch": arch})
    runner = FakeRunner()
    with pytest.raises(Skip) as caught:
        boot.boot_iso(runner, rel, rel.cells[0], tmp_path / "x.iso", Settings(), b"")
    assert str(caught.value) == f"{qemu.QEMU[arch]} is not installed"
    assert runner.looked_up == [qemu.QEMU[arch]]
    assert not (runner.ran or runner.spawned or runner.queried)


def test_boot_iso_missing_iso_is_an_error(make_release, tmp_path):
    rel = make_release({"arch": "amd64"})
    runner = FakeRunner(installed={"qemu-system-x86_64"})
    iso = tmp_path / "amd64-generic" / "missing.iso"
    with pytest.raises(StepError) as caught:
        boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(), b"")
    assert str(caught.value) == (
        f"amd64-generic: test-boot: no ISO at {iso}; run `invoke iso --cell amd64-generic`"
    )
    assert not (runner.ran or runner.spawned or runner.queried)


def test_boot_iso_trusted_boot_without_its_uki_iso_fails(make_release, tmp_path):
    # UKI ISOs are built now: a missing one is a missing step, not something to skip.
    rel = make_release({"arch": "amd64", "trusted_boot": True})
    runner = FakeRunner(installed={"qemu-system-x86_64", "swtpm"})
    iso = tmp_path / "missing-uki.iso"
    with pytest.raises(StepError) as caught:
        boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(), b"")
    assert caught.value.reason == f"no ISO at {iso}; run `invoke iso --cell amd64-generic-uki`"


BOOTED = b"GRUB\r\nkairos login: "
ANSWERS = {"echo ping": "ping\n", "kairos-agent state get boot": "livecd_boot\n"}


def booting(**script: Any) -> FakeRunner:
    """A machine with QEMU whose guest boots to the marker and answers SSH."""
    script.setdefault("ssh_results", [FakeSSH(ANSWERS)])
    script.setdefault("consoles", {"qemu-system-x86_64": BOOTED})
    return FakeRunner(installed={"qemu-system-x86_64", "qemu-img"}, **script)


def test_boot_iso_runs_qemu_through_the_runner_and_stops_it(make_release, tmp_path):
    rel = make_release({"arch": "amd64"})
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"iso")
    runner = booting()
    settings = Settings(accel="tcg", memory=1024, cpus=1)
    plan = boot.boot_iso(runner, rel, rel.cells[0], iso, settings, b"#cloud-config\n")
    (disk_argv,) = runner.ran
    assert disk_argv[:5] == ["qemu-img", "create", "-q", "-f", "qcow2"]
    assert disk_argv[-1] == "20G"
    disk = Path(disk_argv[-2])
    (proc,) = runner.spawned
    # QEMU ran exactly as planned: this ISO, the fresh disk and seed, the forwarded port.
    assert proc.argv == plan.argv
    assert plan.argv == qemu.qemu_argv(
        rel.cells[0], iso, disk, disk.with_name("cidata.iso"), plan.port, "tcg", settings
    )
    assert proc.stopped  # stopped once the checks passed
    assert not disk.parent.exists()  # the work directory went with it
    assert runner.ssh_calls[0][:3] == (plan.port, "kairos", "kairos")
    assert [(r.name, r.ok) for r in plan.results] == [
        ("console marker", True),
        ("ssh echo ping", True),
        ("boot state", True),
    ]
    assert (iso.with_name("x.serial.log")).read_text() == "GRUB\nkairos login: "
    said = runner.out.getvalue().splitlines()
    assert said[0] == f"[amd64-generic] booting x.iso (tcg, ssh on 127.0.0.1:{plan.port})"
    assert said[1:] == [f"[amd64-generic] pass {r.name} ({r.seconds:.1f} s)" for r in plan.results]


def test_boot_iso_failed_check_still_stops_qemu(make_release, tmp_path):
    rel = make_release({"arch": "amd64"})
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"iso")
    runner = booting(ssh_results=[FakeSSH({**ANSWERS, "echo ping": "nope"})])
    with pytest.raises(StepError, match=r'ssh echo ping: expected "ping", got nope;'):
        boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(accel="tcg"), b"")
    (proc,) = runner.spawned
    assert proc.stopped


def test_boot_iso_qemu_exiting_before_the_marker(make_release, tmp_path):
    rel = make_release({"arch": "amd64"})
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"iso")
    runner = booting(consoles={"qemu-system-x86_64": b"panic\n"}, exits={"qemu-system-x86_64"})
    with pytest.raises(StepError) as caught:
        boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(accel="tcg"), b"")
    assert 'console never showed "login:" (QEMU exited)' in caught.value.reason
    assert caught.value.tail == ["panic"]
    assert runner.ssh_calls == []


def test_boot_iso_auto_accel_probes_kvm_on_the_native_arch(make_release, tmp_path):
    native = qemu.HOST_ARCH.get(os.uname().machine)
    if native != "amd64":
        pytest.skip("the amd64 cell is native on x86_64 hosts only")
    rel = make_release({"arch": "amd64"})
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"iso")
    runner = booting()
    plan = boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(), b"")
    # Whether /dev/kvm is usable here decides if the probe ran; either way the
    # accel in QEMU's argv is the one chosen, and never `auto`.
    assert plan.accel in ("kvm", "tcg")
    assert after(runner.spawned[0].argv, "-accel") == [plan.accel]


def test_boot_iso_failing_qemu_img_starts_no_qemu(make_release, tmp_path):
    rel = make_release({"arch": "amd64"})
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"iso")
    runner = booting(failing={"qemu-img"})
    with pytest.raises(StepError, match=r"^amd64-generic: test-boot: qemu-img exited 1$"):
        boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(accel="tcg"), b"")
    assert runner.spawned == []


# -- Skip in for_each_cell and the task's verdict ------------------------------------------


def skipping_act(cell: Cell) -> str:
    if cell.arch == "arm64":
        raise Skip("qemu-system-aarch64 is not installed")
    if cell.arch == "riscv64":
        raise StepError(cell.id, "test-boot", 'console never showed "login:" (QEMU exited)')
    return "tcg: ssh echo ping 3s"


def test_for_each_cell_reports_skip_as_skipped(make_release) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"})
    out = io.StringIO()
    outcomes = release.for_each_cell(Runner(out=out), list(rel.cells), "test-boot", skipping_act)
    assert [(o.ok, o.skipped, o.result) for o in outcomes] == [
        (True, False, "ok"),
        (True, True, "skipped"),
    ]
    assert outcomes[1].detail == "skipped: qemu-system-aarch64 is not installed"
    assert outcomes[1].error is None
    text = out.getvalue()
    assert "[arm64-generic] SKIPPED test-boot: qemu-system-aarch64 is not installed\n" in text
    assert "FAILED" not in text
    summary = text[text.index("test-boot summary") :].splitlines()
    assert [line.split()[:2] for line in summary[2:]] == [
        ["amd64-generic", "ok"],
        ["arm64-generic", "skipped"],
    ]
    assert "skipped: qemu-system-aarch64 is not installed" in summary[3]
    invocation.finish("test-boot", outcomes)  # a skipped cell does not fail the task


def test_finish_counts_failures_but_not_skips(make_release) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"}, {"arch": "riscv64"})
    runner = Runner(out=io.StringIO())
    outcomes = release.for_each_cell(runner, list(rel.cells), "test-boot", skipping_act)
    assert [o.result for o in outcomes] == ["ok", "skipped", "FAILED"]
    with pytest.raises(Exit) as caught:
        invocation.finish("test-boot", outcomes)
    assert caught.value.code == 1
    assert caught.value.message == (
        "test-boot: 1 of 3 cells failed; first: riscv64-generic: test-boot: "
        'console never showed "login:" (QEMU exited)'
    )


def test_console_sees_a_prompt_without_newline(console) -> None:
    """A real getty prints `localhost login: ` and waits: no newline ever comes."""
    script = "import sys,time\nsys.stdout.write('Welcome\\r\\nlocalhost login: ')\n"
    _, reader, _ = console(script + "sys.stdout.flush()\ntime.sleep(5)")
    start = time.monotonic()
    assert reader.wait_marker(start + 60) is True
    assert time.monotonic() - start < QUICK


# -- trusted boot -------------------------------------------------------------------------


def test_qemu_argv_reboot_ends_the_run_except_under_trusted_boot() -> None:
    # systemd-boot resets the machine once it has enrolled the owner's keys.
    assert "-no-reboot" in argv_for(Cell(arch="arm64"))
    assert "-no-reboot" not in argv_for(Cell(arch="amd64", trusted_boot=True))


def test_checks_for_trusted_boot_add_secure_boot_and_the_tpm(make_release) -> None:
    rel = make_release({"arch": "amd64", "trusted_boot": True, **K3S})
    names = [c.name for c in boot.checks_for(rel, rel.cells[0])]
    assert names == ["ssh echo ping", "boot state", "k3s version", "secure boot", "tpm"]


@pytest.mark.parametrize(
    "value, said",
    [(b"\x06\x00\x00\x00\x01", "Secure Boot enabled"), (b"\x06\x00\x00\x00\x00", "not enabled")],
)
def test_secure_boot_check_reads_the_efi_variable(tmp_path, value, said) -> None:
    """The check's own shell text, run by sh on a file laid out as efivarfs shows it
    (4 attribute bytes, then the value)."""
    import subprocess

    var = tmp_path / "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
    var.write_bytes(value)
    command = boot.SECURE_BOOT.replace("/sys/firmware/efi/efivars", str(tmp_path))
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout
    assert said in out
    assert ("Secure Boot enabled" in out) == (value[-1] == 1)


@pytest.fixture
def ovmf(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """Secure Boot firmware and its setup-mode variable store, as files of this test."""
    code, template = tmp_path / "OVMF_CODE_4M.secboot.fd", tmp_path / "OVMF_VARS_4M.fd"
    code.write_bytes(b"c" * 64)
    template.write_bytes(b"v" * 32)
    monkeypatch.setattr(qemu, "OVMF", ((str(code), str(template)),))
    return code, template


def test_firmware_trusted_boot_starts_in_setup_mode(ovmf, tmp_path) -> None:
    code, template = ovmf
    args, variables = qemu.firmware(Cell(arch="amd64", trusted_boot=True), tmp_path)
    assert variables == str(template)  # copied fresh per boot into the work directory
    assert after(args, "-drive") == [
        f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
        f"if=pflash,format=raw,unit=1,file={tmp_path / qemu.OVMF_VARS}",
    ]


def test_firmware_boots_on_the_owners_variable_store_when_given(ovmf, tmp_path) -> None:
    store = tmp_path / "fleet.fd"
    store.write_bytes(b"e" * 32)
    cell = Cell(arch="amd64", trusted_boot=True)
    assert qemu.firmware(cell, tmp_path, str(store))[1] == str(store)
    store.write_bytes(b"e" * 31)
    with pytest.raises(ValueError) as caught:
        qemu.firmware(cell, tmp_path, str(store))
    assert str(caught.value) == (
        f"kairos.boot.uefi_vars {store}: 31 bytes, but this firmware's variable store "
        f"is 32 bytes (like {ovmf[1]})"
    )


def test_settings_name_a_missing_variable_store(tmp_path) -> None:
    conf = tmp_path / "cloud-config.yaml"
    conf.write_text("#cloud-config\n")
    with pytest.raises(ValueError, match=r"^kairos.boot.uefi_vars /no/vars.fd: no such file$"):
        boot.settings("tcg", 1024, 1, 60, "login:", str(conf), "/no/vars.fd")
    found, _ = boot.settings("tcg", 1024, 1, 60, "login:", str(conf), str(conf))
    assert found.uefi_vars == str(conf)


def test_boot_iso_store_that_does_not_fit_starts_nothing(make_release, tmp_path, ovmf):
    rel = make_release({"arch": "amd64", "trusted_boot": True})
    iso, store = tmp_path / "x.iso", tmp_path / "fleet.fd"
    iso.write_bytes(b"iso")
    store.write_bytes(b"short")
    runner = booting()
    runner.installed |= {"swtpm"}
    with pytest.raises(StepError, match=r"^amd64-generic-uki: test-boot: kairos.boot.uefi_vars"):
        boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(uefi_vars=str(store)), b"")
    assert not (runner.ran or runner.spawned)


REFUSED = (
    'BdsDxe: failed to load Boot0001 "UEFI QEMU DVD-ROM QM00001 " from '
    "PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0): Access Denied"
)


@pytest.mark.parametrize(
    "line, said",
    [
        (
            REFUSED,
            "Secure Boot refused to run it (not signed with the enrolled keys): "
            'BdsDxe: failed to load Boot0001 "UEFI QEMU DVD-ROM QM00001 ": Access Denied',
        ),
        (
            "[   15.700512] Kernel panic - not syncing: Attempted to kill init! exitcode=0x100",
            "the kernel panicked: Kernel panic - not syncing: Attempted to kill init! "
            "exitcode=0x100",
        ),
    ],
)
def test_verdict_fails_at_once_on_a_fatal_console_line(console, line, said) -> None:
    # The guest goes on (OVMF tries the network for minutes): the line alone ends it.
    proc, reader, log = console(f"print({line!r}); import time; time.sleep(30)")
    plan = plan_for(Cell(arch="amd64"), log)
    start = time.monotonic()
    with pytest.raises(StepError) as caught:
        boot._verdict(FakeRunner(), plan, reader, proc, Settings(timeout=60), start)
    assert time.monotonic() - start < QUICK
    assert one_line(caught.value, log) == f"amd64-generic: test-boot: {said}; serial log: {log}"
    assert not proc.running()


def test_fatal_line_after_the_marker_does_not_fail_a_boot(console) -> None:
    proc, reader, log = console(
        f"print('kairos login:'); print({REFUSED!r}); import time; time.sleep(10)"
    )
    client = FakeSSH(ANSWERS)
    plan = plan_for(Cell(arch="amd64"), log)
    boot._verdict(
        FakeRunner(ssh_results=[client]), plan, reader, proc, Settings(), time.monotonic()
    )
    assert [r.ok for r in plan.results] == [True, True, True]


def test_dialer_logs_in_before_the_marker(console) -> None:
    """sshd is up before the login prompt: the slow key exchange is done by the marker."""
    proc, reader, log = console(
        "import time; time.sleep(1.0); print('kairos login:'); time.sleep(10)"
    )
    logged_in: list[float] = []

    class Timed(FakeRunner):
        def ssh(self, *args: Any) -> Any:
            logged_in.append(time.monotonic())
            return super().ssh(*args)

    plan = plan_for(Cell(arch="amd64"), log)
    boot._verdict(
        Timed(ssh_results=[FakeSSH(ANSWERS)]), plan, reader, proc, Settings(), time.monotonic()
    )
    assert reader.marker_at is not None and logged_in[0] < reader.marker_at


def test_boot_iso_trusted_boot_without_secure_boot_firmware_is_a_skip(
    make_release, tmp_path, monkeypatch
):
    monkeypatch.setattr(qemu, "OVMF", ((str(tmp_path / "no-code.fd"), str(tmp_path / "v.fd")),))
    rel = make_release({"arch": "amd64", "trusted_boot": True})
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"iso")
    runner = booting()
    runner.installed |= {"swtpm"}
    with pytest.raises(Skip, match=r"^trusted boot needs OVMF with Secure Boot \(package ovmf\)$"):
        boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(), b"")
    assert not (runner.ran or runner.spawned)


def test_boot_iso_trusted_boot_without_swtpm_is_a_skip(make_release, tmp_path, ovmf):
    rel = make_release({"arch": "amd64", "trusted_boot": True})
    iso = tmp_path / "x.iso"
    iso.write_bytes(b"iso")
    runner = booting()  # QEMU, but no swtpm
    with pytest.raises(Skip, match=r"^trusted boot needs swtpm \(package swtpm\)$"):
        boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(), b"")
    assert not runner.spawned
    (disk_argv,) = runner.ran
    assert not Path(disk_argv[-2]).parent.exists()  # the work directory is gone

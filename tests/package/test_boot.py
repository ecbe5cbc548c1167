"""The boot stage without QEMU: argv planning, checks, the cidata seed, and the verdict.

Nothing here starts QEMU, Docker or a network connection to a guest. The
serial console is played by real Python subprocesses, so the event-driven
waits are timed against processes that print, sleep and exit.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pycdlib
import pytest
from invoke import Exit

from kairos_distro import boot, release, tasks
from kairos_distro.boot import Check, Settings
from kairos_distro.config import Cell
from kairos_distro.runner import Runner, Skip, StepError

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
    return boot.qemu_argv(cell, ISO, DISK, SEED, 2222, accel, settings, **kwargs)


def refuse(what: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{what} was called: {args} {kwargs}")

    return refused


@pytest.fixture
def no_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the boot stage starts a program, probes KVM or looks up a binary."""
    monkeypatch.setattr(boot.subprocess, "Popen", refuse("subprocess.Popen"))
    monkeypatch.setattr(boot.subprocess, "run", refuse("subprocess.run"))
    monkeypatch.setattr(boot.shutil, "which", refuse("shutil.which"))
    monkeypatch.setattr(boot, "probe_kvm", refuse("probe_kvm"))
    monkeypatch.setattr(boot.tempfile, "TemporaryDirectory", refuse("TemporaryDirectory"))


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
    data = boot.cidata(user_data, "kairos-amd64-generic")
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
def test_choose_accel_keeps_an_explicit_choice(monkeypatch, arch, wanted) -> None:
    monkeypatch.setattr(boot, "probe_kvm", refuse("probe_kvm"))
    assert boot.choose_accel(Cell(arch=arch), wanted) == wanted


@pytest.mark.parametrize(
    "machine, arch",
    [("x86_64", "arm64"), ("x86_64", "riscv64"), ("aarch64", "amd64"), ("s390x", "amd64")],
)
def test_choose_accel_foreign_arch_is_tcg_without_probing(monkeypatch, machine, arch) -> None:
    monkeypatch.setattr(boot.platform, "machine", lambda: machine)
    monkeypatch.setattr(boot, "probe_kvm", refuse("probe_kvm"))
    assert boot.choose_accel(Cell(arch=arch), "auto") == "tcg"


@pytest.mark.parametrize(
    "machine, arch, binary",
    [("x86_64", "amd64", "qemu-system-x86_64"), ("aarch64", "arm64", "qemu-system-aarch64")],
)
@pytest.mark.parametrize("works, accel", [(True, "kvm"), (False, "tcg")])
def test_choose_accel_native_arch_follows_the_probe(
    monkeypatch, machine, arch, binary, works, accel
) -> None:
    probed: list[str] = []
    monkeypatch.setattr(boot.platform, "machine", lambda: machine)
    monkeypatch.setattr(boot, "probe_kvm", lambda b: probed.append(b) or works)
    assert boot.choose_accel(Cell(arch=arch), "auto") == accel
    assert probed == [binary]


def test_probe_kvm_false_without_dev_kvm_access(monkeypatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(boot.os, "access", lambda path, mode: asked.append(str(path)) or False)
    monkeypatch.setattr(boot.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(boot.subprocess, "run", refuse("subprocess.run"))
    assert boot.probe_kvm() is False
    assert asked == ["/dev/kvm"]


def test_probe_kvm_false_without_the_binary(monkeypatch) -> None:
    monkeypatch.setattr(boot.os, "access", lambda path, mode: True)
    monkeypatch.setattr(boot.shutil, "which", lambda name: None)
    monkeypatch.setattr(boot.subprocess, "run", refuse("subprocess.run"))
    assert boot.probe_kvm("qemu-system-x86_64") is False


@pytest.fixture
def fake_kernel(monkeypatch, tmp_path) -> Path:
    """/dev/kvm and the binary are there, and /boot (tmp_path) holds one kernel."""
    kernel = tmp_path / "vmlinuz-6.1.0-test"
    kernel.write_bytes(b"not really a kernel")
    monkeypatch.setattr(boot.os, "access", lambda path, mode: True)
    monkeypatch.setattr(boot.shutil, "which", lambda name: f"/usr/bin/{name}")

    def boot_dir(path: str) -> Path:
        assert path == "/boot"
        return tmp_path

    monkeypatch.setattr(boot, "Path", boot_dir)
    return kernel


@pytest.mark.parametrize(
    "output, works", [(b"...\n[ 1.2] Kernel panic - not syncing: VFS\n", True), (b"...\n", False)]
)
def test_probe_kvm_needs_the_kernel_to_reach_its_panic(
    monkeypatch, fake_kernel, output, works
) -> None:
    calls: list[tuple[list[str], float]] = []

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append((argv, kwargs["timeout"]))
        return subprocess.CompletedProcess(argv, 0, output, b"")

    monkeypatch.setattr(boot.subprocess, "run", run)
    assert boot.probe_kvm("qemu-system-x86_64", seconds=3.0) is works
    ((argv, timeout),) = calls
    assert timeout == 3.0
    assert argv[0] == "qemu-system-x86_64"
    assert (after(argv, "-accel"), after(argv, "-kernel")) == (["kvm"], [str(fake_kernel)])


def test_probe_kvm_false_when_the_guest_hangs(monkeypatch, fake_kernel) -> None:
    def hang(argv: list[str], **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    monkeypatch.setattr(boot.subprocess, "run", hang)
    assert boot.probe_kvm() is False


# -- Console: a real process plays the serial console -----------------------------------

Spawn = Callable[..., tuple[subprocess.Popen, boot.Console, Path]]


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Spawn]:
    """console(script, marker): run `python -c script` and read it as a serial console."""
    started: list[tuple[subprocess.Popen, boot.Console]] = []

    def spawn(script: str, marker: str = "login:") -> tuple[subprocess.Popen, boot.Console, Path]:
        log = tmp_path / f"serial-{len(started)}.log"
        proc = subprocess.Popen(
            [sys.executable, "-u", "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        reader = boot.Console(proc, log, marker)
        started.append((proc, reader))
        return proc, reader, log

    yield spawn
    for proc, reader in started:
        proc.kill()
        proc.wait()
        reader.close()
        assert proc.stdout is not None
        proc.stdout.close()


def finish(proc: subprocess.Popen, reader: boot.Console) -> None:
    """Stop the process and let the reader drain the pipe into the log."""
    proc.kill()
    proc.wait()
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
    assert proc.poll() is None  # event-driven: the process is still running
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
    assert proc.poll() is None


def test_console_eof_without_marker_returns_false_promptly(console) -> None:
    proc, reader, log = console("for i in range(40): print(f'line {i}')")
    start = time.monotonic()
    assert reader.wait_marker(start + 60) is False
    assert time.monotonic() - start < QUICK  # at EOF, not at the deadline
    assert reader.marker_at is None
    assert proc.wait(timeout=5) == 0
    reader.close()
    lines = [f"line {i}" for i in range(40)]
    assert log.read_text().splitlines() == lines
    assert list(reader.tail) == lines[-boot.TAIL :]


def test_console_silent_process_returns_false_at_the_deadline(console) -> None:
    proc, reader, _ = console("import time; time.sleep(10)")
    start = time.monotonic()
    assert reader.wait_marker(start + 0.3) is False
    assert 0.25 <= time.monotonic() - start < QUICK
    assert proc.poll() is None


def test_console_an_earlier_marker_is_not_lost(console) -> None:
    # wait_marker called after the marker went by still says so, at once.
    proc, reader, _ = console("print('kairos login:')")
    proc.wait()
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
    proc.wait()
    plan = plan_for(Cell(arch="amd64"), log)
    start = time.monotonic()
    with pytest.raises(StepError) as caught:
        boot._verdict(plan, reader, proc, Settings(timeout=60), start)
    assert time.monotonic() - start < QUICK
    message = one_line(caught.value, log)
    assert message == (
        f"amd64-generic: test-boot: console never showed 'login:' (QEMU exited); serial log: {log}"
    )
    assert caught.value.tail == [f"panic {i}" for i in range(5, 20)]
    assert [(r.name, r.ok, r.detail) for r in plan.results] == [
        ("console marker", False, "QEMU exited")
    ]


def test_verdict_when_the_marker_never_comes(console) -> None:
    proc, reader, log = console("print('GRUB loading'); import time; time.sleep(10)")
    plan = plan_for(Cell(arch="amd64"), log)
    with pytest.raises(StepError) as caught:
        boot._verdict(plan, reader, proc, Settings(timeout=1.0), time.monotonic())
    message = one_line(caught.value, log)
    assert "console never showed 'login:' (timed out after 1 s)" in message
    assert caught.value.tail == ["GRUB loading"]
    assert plan.results[0].ok is False


def test_ssh_gives_up_as_soon_as_qemu_exits(console) -> None:
    proc, _, _ = console("print('kairos login:')")
    proc.wait()
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^SSH as kairos never answered \(no answer\)$"):
        boot._ssh(boot.free_port(), Settings(), start + 60, proc)
    assert time.monotonic() - start < QUICK


def test_verdict_when_ssh_never_answers(console) -> None:
    # The marker shows, QEMU keeps running, and nothing listens on the port.
    proc, reader, log = console("print('kairos login:'); import time; time.sleep(10)")
    plan = plan_for(Cell(arch="amd64"), log)
    start = time.monotonic()
    with pytest.raises(StepError) as caught:
        boot._verdict(plan, reader, proc, Settings(timeout=1.0), start)
    assert time.monotonic() - start < 1.0 + QUICK
    message = one_line(caught.value, log)
    assert "SSH as kairos never answered (" in message
    assert [(r.name, r.ok) for r in plan.results] == [("console marker", True), ("ssh", False)]
    assert plan.results[0].seconds < QUICK


class FakeSSH:
    """Stands in for a connected paramiko client: command -> output."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers, self.ran = answers, []
        self.closed = False

    def __enter__(self) -> FakeSSH:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def exec_command(self, command: str, timeout: float) -> tuple[None, io.BytesIO, io.BytesIO]:
        assert timeout >= 1.0
        self.ran.append(command)
        return None, io.BytesIO(self.answers[command].encode()), io.BytesIO(b"")


@pytest.fixture
def fake_ssh(monkeypatch) -> Callable[[dict[str, str]], FakeSSH]:
    def install(answers: dict[str, str]) -> FakeSSH:
        client = FakeSSH(answers)
        monkeypatch.setattr(boot, "_ssh", lambda port, settings, deadline, alive: client)
        return client

    return install


def test_verdict_runs_every_check(console, fake_ssh) -> None:
    proc, reader, log = console("print('kairos login:'); import time; time.sleep(10)")
    client = fake_ssh({"echo ping": "ping\n", "kairos-agent state get boot": "livecd_boot\n"})
    plan = plan_for(Cell(arch="amd64"), log)
    boot._verdict(plan, reader, proc, Settings(), time.monotonic())
    assert client.ran == ["echo ping", "kairos-agent state get boot"]
    assert client.closed
    assert [(r.name, r.ok) for r in plan.results] == [
        ("console marker", True),
        ("ssh echo ping", True),
        ("boot state", True),
    ]
    assert plan.results[2].detail == "livecd_boot"


def test_verdict_stops_at_the_first_failed_check(console, fake_ssh) -> None:
    proc, reader, log = console("print('kairos login:'); import time; time.sleep(10)")
    client = fake_ssh({"echo ping": "ping", "kairos-agent state get boot": "active_boot\n"})
    extra = Check("uname", "uname", "Linux")
    plan = plan_for(Cell(arch="amd64"), log, [*BASE_CHECKS, extra])
    with pytest.raises(StepError) as caught:
        boot._verdict(plan, reader, proc, Settings(), time.monotonic())
    message = one_line(caught.value, log)
    assert "boot state: expected 'livecd_boot', got 'active_boot'" in message
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
def test_boot_iso_dry_prints_the_plan_and_runs_nothing(
    make_release, no_effects, tmp_path, cell, binary
) -> None:
    rel = make_release(cell, boot_checks=[{"run": "uname", "expect": "Linux"}])
    one = rel.cells[0]
    out = io.StringIO()
    iso = tmp_path / "out" / "x.iso"
    plan = boot.boot_iso(Runner(dry=True, out=out), rel, one, iso, Settings(accel="tcg"), b"")
    (line,) = out.getvalue().splitlines()
    assert line.startswith(f"[{one.id}] would boot: {binary} -accel tcg -cpu max "), line
    assert f" file={iso},media=cdrom,readonly=on " in line
    assert plan.argv[0] == binary
    assert line.endswith(" ".join(plan.argv))
    assert plan.checks == boot.checks_for(rel, one)
    assert plan.checks[-1] == Check("uname", "uname", "Linux")
    assert plan.log == tmp_path / "out" / "x.serial.log"
    assert plan.results == []
    assert list(tmp_path.iterdir()) == []  # no log, disk or seed written


def nondry(monkeypatch, which: Callable[[str], str | None]) -> tuple[Runner, io.StringIO]:
    """A real Runner with `shutil.which` replaced and every effect refused."""
    monkeypatch.setattr(boot.shutil, "which", which)
    out = io.StringIO()
    return Runner(out=out), out


@pytest.mark.parametrize("model", ["rpi4", "nvidia-jetson-thor"])
def test_boot_iso_skips_board_models(make_release, no_effects, monkeypatch, tmp_path, model):
    rel = make_release({"arch": "arm64", "model": model})
    runner, out = nondry(monkeypatch, refuse("shutil.which"))
    why = rf"^model {model} boots from its raw disk image, which is not boot-tested$"
    with pytest.raises(Skip, match=why):
        boot.boot_iso(runner, rel, rel.cells[0], tmp_path / "x.iso", Settings(), b"")
    assert out.getvalue() == ""


@pytest.mark.parametrize("arch", ["amd64", "arm64", "riscv64"])
def test_boot_iso_skips_without_qemu(make_release, no_effects, monkeypatch, tmp_path, arch):
    rel = make_release({"arch": arch})
    runner, _ = nondry(monkeypatch, lambda name: None)
    with pytest.raises(Skip) as caught:
        boot.boot_iso(runner, rel, rel.cells[0], tmp_path / "x.iso", Settings(), b"")
    assert str(caught.value) == f"{boot.QEMU[arch]} is not installed"


def test_boot_iso_missing_iso_is_an_error(make_release, no_effects, monkeypatch, tmp_path):
    rel = make_release({"arch": "amd64"})
    runner, _ = nondry(monkeypatch, lambda name: f"/usr/bin/{name}")
    iso = tmp_path / "amd64-generic" / "missing.iso"
    with pytest.raises(StepError) as caught:
        boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(), b"")
    assert str(caught.value) == (
        f"amd64-generic: test-boot: no ISO at {iso}; run `invoke iso --cell amd64-generic`"
    )


def test_boot_iso_trusted_boot_without_its_uki_iso_fails(
    make_release, no_effects, monkeypatch, tmp_path
):
    # UKI ISOs are built now: a missing one is a missing step, not something to skip.
    rel = make_release({"arch": "amd64", "trusted_boot": True})
    runner, _ = nondry(monkeypatch, lambda name: f"/usr/bin/{name}")
    iso = tmp_path / "missing-uki.iso"
    with pytest.raises(StepError) as caught:
        boot.boot_iso(runner, rel, rel.cells[0], iso, Settings(), b"")
    assert caught.value.reason == f"no ISO at {iso}; run `invoke iso --cell amd64-generic-uki`"


# -- Skip in for_each_cell and the task's verdict ------------------------------------------


def skipping_act(cell: Cell) -> str:
    if cell.arch == "arm64":
        raise Skip("qemu-system-aarch64 is not installed")
    if cell.arch == "riscv64":
        raise StepError(cell.id, "test-boot", "console never showed 'login:' (QEMU exited)")
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
    tasks._finish("test-boot", outcomes)  # a skipped cell does not fail the task


def test_finish_counts_failures_but_not_skips(make_release) -> None:
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"}, {"arch": "riscv64"})
    runner = Runner(out=io.StringIO())
    outcomes = release.for_each_cell(runner, list(rel.cells), "test-boot", skipping_act)
    assert [o.result for o in outcomes] == ["ok", "skipped", "FAILED"]
    with pytest.raises(Exit) as caught:
        tasks._finish("test-boot", outcomes)
    assert caught.value.code == 1
    assert caught.value.message == (
        "test-boot: 1 of 3 cells failed; first: riscv64-generic: test-boot: "
        "console never showed 'login:' (QEMU exited)"
    )


def test_console_sees_a_prompt_without_newline(console) -> None:
    """A real getty prints `localhost login: ` and waits: no newline ever comes."""
    script = "import sys,time\nsys.stdout.write('Welcome\\r\\nlocalhost login: ')\n"
    _, reader, _ = console(script + "sys.stdout.flush()\ntime.sleep(5)")
    start = time.monotonic()
    assert reader.wait_marker(start + 60) is True
    assert time.monotonic() - start < QUICK

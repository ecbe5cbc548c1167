"""Numeric flags and settings: every bad value ends in one line naming it, never a traceback.

The table rows run the real tasks.py (`run_invoke`), all started together once per
module; the settings come from INVOKE_KAIROS_* variables, as in CI.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from package_helpers import run_invoke

from kairos_distro import numbers
from kairos_distro.numbers import CPUS, DAYS, MEMORY, TIMEOUT, NumberError

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent.sock"}
BOOT = ["--dry", "test-boot"]
MEM_ENV = "kairos.boot.memory (INVOKE_KAIROS_BOOT_MEMORY)"
CPU_ENV = "kairos.boot.cpus (INVOKE_KAIROS_BOOT_CPUS)"
TIME_ENV = "kairos.boot.timeout (INVOKE_KAIROS_BOOT_TIMEOUT)"


def flag(task: list[str], name: str, value: str) -> tuple[list[str], dict[str, str]]:
    return [*task, f"--{name}", value], {}


def env(task: list[str], key: str, value: str) -> tuple[list[str], dict[str, str]]:
    return task, {f"INVOKE_KAIROS_{key}": value}


# id: (invocation, exit code, the one stderr line, or for exit 0 a piece of stdout)
ROWS: dict[str, tuple[tuple[list[str], dict[str, str]], int, str]] = {
    # test-boot --memory
    "memory-text": (
        flag(BOOT, "memory", "abc"),
        2,
        "test-boot: --memory: abc is not a whole number of MiB (256..1048576)",
    ),
    "memory-negative": (
        flag(BOOT, "memory", "-512"),
        2,
        "test-boot: --memory: -512 is outside 256..1048576 MiB",
    ),
    "memory-zero": (
        flag(BOOT, "memory", "0"),
        2,
        "test-boot: --memory: 0 is outside 256..1048576 MiB",
    ),
    "memory-huge": (
        flag(BOOT, "memory", "99999999999999999999999"),
        2,
        "test-boot: --memory: 99999999999999999999999 is outside 256..1048576 MiB",
    ),
    "memory-float": (
        flag(BOOT, "memory", "1.5"),
        2,
        "test-boot: --memory: 1.5 is not a whole number of MiB (256..1048576)",
    ),
    "memory-ok": (flag(BOOT, "memory", "4096"), 0, " -m 4096 -smp 2 "),
    # test-boot --cpus
    "cpus-text": (
        flag(BOOT, "cpus", "two"),
        2,
        "test-boot: --cpus: two is not a whole number of CPUs (1..256)",
    ),
    "cpus-negative": (flag(BOOT, "cpus", "-2"), 2, "test-boot: --cpus: -2 is outside 1..256 CPUs"),
    "cpus-zero": (flag(BOOT, "cpus", "0"), 2, "test-boot: --cpus: 0 is outside 1..256 CPUs"),
    "cpus-huge": (flag(BOOT, "cpus", "4096"), 2, "test-boot: --cpus: 4096 is outside 1..256 CPUs"),
    "cpus-float": (
        flag(BOOT, "cpus", "2.5"),
        2,
        "test-boot: --cpus: 2.5 is not a whole number of CPUs (1..256)",
    ),
    "cpus-ok": (flag(BOOT, "cpus", "3"), 0, " -m 2048 -smp 3 "),
    # test-boot --timeout (seconds may have a fraction)
    "timeout-text": (
        flag(BOOT, "timeout", "soon"),
        2,
        "test-boot: --timeout: soon is not a number of seconds (1..86400)",
    ),
    "timeout-negative": (
        flag(BOOT, "timeout", "-5"),
        2,
        "test-boot: --timeout: -5 is outside 1..86400 seconds",
    ),
    "timeout-zero": (
        flag(BOOT, "timeout", "0"),
        2,
        "test-boot: --timeout: 0 is outside 1..86400 seconds",
    ),
    "timeout-huge": (
        flag(BOOT, "timeout", "86401"),
        2,
        "test-boot: --timeout: 86401 is outside 1..86400 seconds",
    ),
    "timeout-exponent": (
        flag(BOOT, "timeout", "1e3"),
        2,
        "test-boot: --timeout: 1e3 is not a number of seconds (1..86400)",
    ),
    "timeout-ok": (flag(BOOT, "timeout", "90.5"), 0, " would boot: "),
    # keys --days
    "days-text": (
        flag(["--dry", "keys"], "days", "abc"),
        2,
        "keys: --days: abc is not a whole number of days (1..36500)",
    ),
    "days-negative": (
        flag(["--dry", "keys"], "days", "-5"),
        2,
        "keys: --days: -5 is outside 1..36500 days",
    ),
    "days-zero": (
        flag(["--dry", "keys"], "days", "0"),
        2,
        "keys: --days: 0 is outside 1..36500 days",
    ),
    "days-huge": (
        flag(["--dry", "keys"], "days", "36501"),
        2,
        "keys: --days: 36501 is outside 1..36500 days",
    ),
    "days-float": (
        flag(["--dry", "keys"], "days", "30.5"),
        2,
        "keys: --days: 30.5 is not a whole number of days (1..36500)",
    ),
    "days-ok": (flag(["--dry", "keys"], "days", "30"), 0, " --expiration-in-days 30 "),
    "days-default": ((["--dry", "keys"], {}), 0, " --expiration-in-days 365 "),
    # kairos.boot.memory
    "memory-setting-text": (
        env(BOOT, "BOOT_MEMORY", "abc"),
        2,
        f"test-boot: {MEM_ENV}: abc is not a whole number of MiB (256..1048576)",
    ),
    "memory-setting-negative": (
        env(BOOT, "BOOT_MEMORY", "-1"),
        2,
        f"test-boot: {MEM_ENV}: -1 is outside 256..1048576 MiB",
    ),
    "memory-setting-zero": (
        env(BOOT, "BOOT_MEMORY", "0"),
        2,
        f"test-boot: {MEM_ENV}: 0 is outside 256..1048576 MiB",
    ),
    "memory-setting-huge": (
        env(BOOT, "BOOT_MEMORY", "1048577"),
        2,
        f"test-boot: {MEM_ENV}: 1048577 is outside 256..1048576 MiB",
    ),
    "memory-setting-float": (
        env(BOOT, "BOOT_MEMORY", "2048.0"),
        2,
        f"test-boot: {MEM_ENV}: 2048.0 is not a whole number of MiB (256..1048576)",
    ),
    "memory-setting-ok": (env(BOOT, "BOOT_MEMORY", "1536"), 0, " -m 1536 -smp 2 "),
    "memory-flag-over-setting": (
        ([*BOOT, "--memory", "4096"], {"INVOKE_KAIROS_BOOT_MEMORY": "abc"}),
        0,
        " -m 4096 -smp 2 ",
    ),
    # kairos.boot.cpus
    "cpus-setting-text": (
        env(BOOT, "BOOT_CPUS", "many"),
        2,
        f"test-boot: {CPU_ENV}: many is not a whole number of CPUs (1..256)",
    ),
    "cpus-setting-negative": (
        env(BOOT, "BOOT_CPUS", "-2"),
        2,
        f"test-boot: {CPU_ENV}: -2 is outside 1..256 CPUs",
    ),
    "cpus-setting-zero": (
        env(BOOT, "BOOT_CPUS", "0"),
        2,
        f"test-boot: {CPU_ENV}: 0 is outside 1..256 CPUs",
    ),
    "cpus-setting-huge": (
        env(BOOT, "BOOT_CPUS", "257"),
        2,
        f"test-boot: {CPU_ENV}: 257 is outside 1..256 CPUs",
    ),
    "cpus-setting-float": (
        env(BOOT, "BOOT_CPUS", "1.5"),
        2,
        f"test-boot: {CPU_ENV}: 1.5 is not a whole number of CPUs (1..256)",
    ),
    "cpus-setting-ok": (env(BOOT, "BOOT_CPUS", "4"), 0, " -m 2048 -smp 4 "),
    # kairos.boot.timeout, also read by `invoke release`
    "timeout-setting-text": (
        env(BOOT, "BOOT_TIMEOUT", "soon"),
        2,
        f"test-boot: {TIME_ENV}: soon is not a number of seconds (1..86400)",
    ),
    "timeout-setting-negative": (
        env(BOOT, "BOOT_TIMEOUT", "-5"),
        2,
        f"test-boot: {TIME_ENV}: -5 is outside 1..86400 seconds",
    ),
    "timeout-setting-zero": (
        env(BOOT, "BOOT_TIMEOUT", "0.0"),
        2,
        f"test-boot: {TIME_ENV}: 0.0 is outside 1..86400 seconds",
    ),
    "timeout-setting-huge": (
        env(BOOT, "BOOT_TIMEOUT", "9" * 400),
        2,
        f"test-boot: {TIME_ENV}: {'9' * 77}... is outside 1..86400 seconds",
    ),
    "timeout-setting-nan": (
        env(BOOT, "BOOT_TIMEOUT", "nan"),
        2,
        f"test-boot: {TIME_ENV}: nan is not a number of seconds (1..86400)",
    ),
    "timeout-setting-ok": (env(BOOT, "BOOT_TIMEOUT", "600"), 0, " would boot: "),
    "release-timeout-setting": (
        env(["--dry", "release"], "BOOT_TIMEOUT", "soon"),
        2,
        f"release: {TIME_ENV}: soon is not a number of seconds (1..86400)",
    ),
    # the words beside the numbers: accel, privileged
    "accel-flag": (
        flag(BOOT, "accel", "xen"),
        2,
        "test-boot: --accel: xen is not auto, kvm or tcg",
    ),
    "accel-setting": (
        env(["--dry", "release"], "BOOT_ACCEL", "xen"),
        2,
        "release: kairos.boot.accel (INVOKE_KAIROS_BOOT_ACCEL): xen is not auto, kvm or tcg",
    ),
    "privileged-setting": (
        env(["--dry", "iso"], "PRIVILEGED", "maybe\nnot"),
        2,
        "kairos.privileged (INVOKE_KAIROS_PRIVILEGED): expected true or false, got maybe\\nnot",
    ),
}


@pytest.fixture(scope="module")
def ran() -> dict[str, subprocess.CompletedProcess[str]]:
    def call(row: str) -> subprocess.CompletedProcess[str]:
        (args, extra), _, _ = ROWS[row]
        return run_invoke(*args, env={**NO_ENGINE, **extra})

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(ROWS, pool.map(call, ROWS), strict=True))


@pytest.mark.parametrize("row", ROWS)
def test_numeric_flags_and_settings(ran, row) -> None:
    _, code, expected = ROWS[row]
    run = ran[row]
    shown = f"{run.args[3:]} exited {run.returncode}\n{run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stdout + run.stderr, shown
    assert run.returncode == code, shown
    if code:
        assert (run.stdout, run.stderr) == ("", f"{expected}\n"), shown
    else:
        assert run.stderr == "" and expected in run.stdout, shown


# -- numbers.number on its own: what flags, environment text and invoke.yaml values give ----


@pytest.mark.parametrize(
    "value, span, result",
    [
        ("2048", MEMORY, 2048),
        (" 2048 ", MEMORY, 2048),  # an environment variable's stray spaces
        ("+300", MEMORY, 300),
        (4096, MEMORY, 4096),  # invoke.yaml: memory: 4096
        ("1", CPUS, 1),
        ("256", CPUS, 256),
        ("90.5", TIMEOUT, 90.5),
        (".5e1", TIMEOUT, "--x: .5e1 is not a number of seconds (1..86400)"),
        (900, TIMEOUT, 900.0),
        (1.5, TIMEOUT, 1.5),  # invoke.yaml: timeout: 1.5
        ("36500", DAYS, 36500),
        ("1_000", MEMORY, "--x: 1_000 is not a whole number of MiB (256..1048576)"),
        ("٣٠٠", MEMORY, "--x: ٣٠٠ is not a whole number of MiB (256..1048576)"),  # not ASCII
        ("0x400", MEMORY, "--x: 0x400 is not a whole number of MiB (256..1048576)"),
        ("", MEMORY, "--x: an empty value is not a whole number of MiB (256..1048576)"),
        (None, MEMORY, "--x: an empty value is not a whole number of MiB (256..1048576)"),
        (True, CPUS, "--x: true is not a whole number of CPUs (1..256)"),  # cpus: yes
        (2.0, CPUS, "--x: 2.0 is not a whole number of CPUs (1..256)"),
        ([2], CPUS, "--x: a list is not a whole number of CPUs (1..256)"),
        ({"n": 2}, CPUS, "--x: a mapping is not a whole number of CPUs (1..256)"),
        (float("inf"), TIMEOUT, "--x: inf is not a number of seconds (1..86400)"),
        (float("nan"), TIMEOUT, "--x: nan is not a number of seconds (1..86400)"),
        ("1" * 5000, DAYS, f"--x: {'1' * 77}... is outside 1..36500 days"),  # past int()'s limit
        ("-" + "9" * 5000, DAYS, f"--x: -{'9' * 76}... is outside 1..36500 days"),
        ("12\x1b[2J", DAYS, "--x: 12\\x1b[2J is not a whole number of days (1..36500)"),
        ("0.0", TIMEOUT, "--x: 0.0 is outside 1..86400 seconds"),
        ("86400.5", TIMEOUT, "--x: 86400.5 is outside 1..86400 seconds"),
    ],
)
def test_number_reads_strictly(value, span, result) -> None:
    if isinstance(result, str):
        with pytest.raises(NumberError) as caught:
            numbers.number("--x", value, span)
        assert str(caught.value) == result
    else:
        found = numbers.number("--x", value, span)
        assert (found, type(found)) == (result, int if span.whole else float)


@pytest.mark.parametrize(
    "key, name",
    [
        ("boot.memory", "kairos.boot.memory (INVOKE_KAIROS_BOOT_MEMORY)"),
        ("privileged", "kairos.privileged (INVOKE_KAIROS_PRIVILEGED)"),
        ("docker_cli", "kairos.docker_cli (INVOKE_KAIROS_DOCKER_CLI)"),
    ],
)
def test_a_setting_is_named_with_its_variable(key, name) -> None:
    assert numbers.setting(key) == name
    with pytest.raises(NumberError, match=rf"^{re.escape(name)}: x is not "):
        numbers.number(numbers.setting(key), "x", MEMORY)

"""What every task does first and last: invoke config in, one-line `Exit` out.

The release file and the machine settings (invoke config `kairos.*`) become a
Release and a Runner; a ConfigError, a bad setting or failed cells become an
`Exit` naming the field or step, so `invoke` ends in one line.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from invoke import Context, Exit

from . import boot, build, config, keys, numbers, release, sign, summary
from .runner import Runner, StepError
from .words import clip, suggest

CELL_HELP = {"cell": "Cell id to act on (repeatable); default: every cell of release.yaml."}
FILE_HELP = "Release file to read (default: release.yaml)."
TOKEN_HELP = "OIDC token for signing (else SIGSTORE_ID_TOKEN, CI credentials, or the browser)."


def load(c: Context, release_file: str) -> config.Release:
    try:
        return config.load(release_file or c.config.kairos.release_file)
    except config.ConfigError as err:
        raise Exit(str(err), code=2) from None


def _terminated(signum: int, _frame: object) -> None:
    print(f"stopped by {signal.Signals(signum).name}", file=sys.stderr)
    raise KeyboardInterrupt


def setup(c: Context, release_file: str) -> tuple[Runner, config.Release]:
    # SIGTERM (`timeout`, a service manager, a CI cancel) unwinds as Ctrl-C does:
    # QEMU, swtpm, containers and work directories are stopped and removed.
    if threading.current_thread() is threading.main_thread():  # the only one that may
        signal.signal(signal.SIGTERM, _terminated)
    settings = c.config.kairos
    rel = load(c, release_file)
    runner = Runner(
        dry=bool(c.config.run.dry),
        docker_cli=settings.docker_cli,
        privileged=switch("privileged", settings.privileged),
    )
    try:
        return runner, build.with_version(rel, runner)
    except StepError as err:
        raise Exit(f"{rel.path}: version: {err.reason}", code=2) from None


def switch(key: str, value: object) -> bool:
    """A true/false setting kairos.KEY, from invoke.yaml (a bool) or the environment (text)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    shown = numbers.shown(value)
    raise Exit(f"{numbers.setting(key)}: expected true or false, got {shown}", code=2)


def number(task_name: str, name: str, value: object, span: numbers.Span) -> int | float:
    """`value` of the flag or setting `name`, checked against span; else one-line Exit."""
    try:
        return numbers.number(name, value, span)
    except numbers.NumberError as err:
        raise Exit(f"{task_name}: {err}", code=2) from None


def choice(task_name: str, flag: str, value: str, choices: tuple[str, ...]) -> None:
    """A flag that must be one of `choices` when given; else a one-line Exit."""
    if value and value not in choices:
        why = f"{clip(value)} is not {', '.join(choices[:-1])} or {choices[-1]}"
        raise Exit(f"{task_name}: {flag}: {why}{suggest(value, choices)}", code=2)


def cells(rel: config.Release, cell: list[str]) -> list[config.Cell]:
    try:
        return rel.select(cell)
    except config.ConfigError as err:
        raise Exit(str(err), code=2) from None


def finish(stage: str, outcomes: list[summary.Outcome]) -> None:
    failed = [o for o in outcomes if not o.ok]
    if failed:
        first = failed[0].detail
        raise Exit(
            f"{stage}: {len(failed)} of {len(outcomes)} cells failed; first: {first}", code=1
        )


@contextmanager
def key_dir(c: Context) -> Iterator[Path]:
    try:
        with keys.located(Path(c.config.kairos.keys)) as found:
            yield found
    except keys.KeysError as err:
        raise Exit(str(err), code=2) from None


def sigstore(rel: config.Release, required: bool, token: str = "") -> sign.Sigstore | None:
    if not rel.signing.enabled:
        if required:
            raise Exit(f"{rel.path}: signing.enabled is false: nothing to sign or verify", code=2)
        return None
    return sign.Sigstore(rel.signing, rel.path.parent, token)


def boot_settings(
    c: Context, task_name: str, accel: str = "", memory: str = "", cpus: str = "", timeout: str = ""
) -> tuple[boot.Settings, bytes]:
    """Flags over invoke config (kairos.boot.*); and the cloud-config for cidata."""
    conf = c.config.kairos.boot

    def checked(flag: str, given: str, span: numbers.Span) -> int | float:
        if given:
            return number(task_name, f"--{flag}", given, span)
        return number(task_name, numbers.setting(f"boot.{flag}"), conf[flag], span)

    name, chosen = ("--accel", accel) if accel else (numbers.setting("boot.accel"), conf.accel)
    if chosen not in boot.ACCELS:
        why = f"{numbers.shown(chosen)} is not {', '.join(boot.ACCELS[:-1])} or {boot.ACCELS[-1]}"
        raise Exit(f"{task_name}: {name}: {why}", code=2)
    try:
        return boot.settings(
            chosen,
            int(checked("memory", memory, numbers.MEMORY)),
            int(checked("cpus", cpus, numbers.CPUS)),
            checked("timeout", timeout, numbers.TIMEOUT),
            conf.marker,
            conf.cloud_config,
            conf.uefi_vars,
        )
    except ValueError as err:
        raise Exit(f"{task_name}: {err}", code=2) from None


def each(
    runner: Runner,
    rel: config.Release,
    cell: list[str] | None,
    stage: str,
    act: Callable[[config.Cell], str],
) -> None:
    """One stage over the chosen cells; failed cells end the task in one line."""
    finish(stage, release.for_each_cell(runner, cells(rel, cell or []), stage, act))


def finish_release(reports: list[summary.Report]) -> None:
    failed = [r for r in reports if r.status == "failed"]
    if failed:
        first = f"{failed[0].cell}: {failed[0].error}"
        raise Exit(f"release: {len(failed)} of {len(reports)} cells failed; first: {first}", code=1)

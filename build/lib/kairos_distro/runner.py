"""The one door to side effects: subprocesses, the Docker engine, the console.

Stages plan with pure functions, then act only through a Runner. With
`dry=True` the Runner prints what it would do and touches nothing, which is
what `invoke --dry` promises.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

TAIL = 12  # lines of a failed command shown in its error


class StepError(RuntimeError):
    """A pipeline step failed; str() is one line naming the cell and step."""

    def __init__(self, cell: str, step: str, reason: str, tail: Iterable[str] = ()):
        self.cell, self.step, self.reason = cell, step, reason
        self.tail = list(tail)
        super().__init__(f"{cell}: {step}: {reason}")


class Skip(Exception):
    """A cell this machine cannot do a step for; the reason is shown, never hidden."""


@dataclass
class Runner:
    dry: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    docker_cli: str = "docker"
    # Containers that ask for --privileged get it (AuroraBoot's raw disk build,
    # as the factory runs it); false where the engine refuses privileged ones.
    privileged: bool = True
    _client: Any = None

    def say(self, cell: str, message: str) -> None:
        """One progress line, prefixed with the cell so parallel output stays legible."""
        print(f"[{cell}] {message}", file=self.out, flush=True)

    def would(self, cell: str, what: str) -> None:
        self.say(cell, f"would {what}")

    def run(
        self,
        cell: str,
        step: str,
        argv: list[str],
        env: dict[str, str] | None = None,
    ) -> None:
        """Run argv (never through a shell), streaming its output with a prefix."""
        if self.dry:
            self.would(cell, f"run: {shlex.join(argv)}")
            return
        tail: deque[str] = deque(maxlen=TAIL)
        try:
            proc = subprocess.Popen(
                argv,
                env={**os.environ, **(env or {})},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as err:
            raise StepError(cell, step, f"cannot run {argv[0]}: {err.strerror}") from None
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            self.say(cell, line)
        if proc.wait() != 0:
            last = next((x.strip() for x in reversed(tail) if x.strip()), "")
            reason = f"{Path(argv[0]).name} exited {proc.returncode}"
            raise StepError(cell, step, f"{reason}: {last[:200]}" if last else reason, tail)

    def container(
        self,
        cell: str,
        step: str,
        image: str,
        command: list[str],
        volumes: dict[str, dict[str, str]],
        *,
        label: str,
        network: str = "",
        privileged: bool = False,
        user: str = "",
    ) -> None:
        """Run a container to its end, streaming its log; one-line StepError on failure.

        `label` names the tool in errors (e.g. AuroraBoot), whatever image provides it.
        """
        import docker

        if privileged and not self.privileged:
            self.say(cell, f"running {label} unprivileged (kairos.privileged is false)")
        try:
            box = self.docker().containers.run(
                image,
                command,
                volumes=volumes,
                detach=True,
                network_mode=network or None,
                privileged=privileged and self.privileged,
                user=user or None,
            )
        except docker.errors.APIError as err:
            reason = " ".join(str(err.explanation).split())
            raise StepError(cell, step, f"{label} did not start: {reason}") from None
        tail: deque[str] = deque(maxlen=TAIL)
        try:
            for chunk in box.logs(stream=True, follow=True):
                for line in chunk.decode(errors="replace").splitlines():
                    self.say(cell, line)
                    if line.strip():
                        tail.append(line.strip())
            status = box.wait().get("StatusCode", 1)
        finally:
            box.remove(force=True)
        if status != 0:
            last = f": {tail[-1][:200]}" if tail else ""
            raise StepError(cell, step, f"{label} exited {status}{last}", tail)

    def docker(self) -> Any:
        """A docker-py client, created on first use so --dry never connects."""
        if self._client is None:
            import docker

            try:
                self._client = docker.from_env(timeout=600)
                self._client.ping()
            except docker.errors.DockerException as err:
                raise StepError("engine", "connect", f"Docker engine unreachable ({err})") from None
        return self._client


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    start = time.monotonic()
    yield lambda: time.monotonic() - start


def summary(title: str, rows: list[dict[str, str]], out: TextIO = sys.stdout) -> None:
    """A plain table, readable in a terminal and in CI logs."""
    if not rows:
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in cols}
    print(f"\n{title}", file=out)
    print("  ".join(c.upper().ljust(widths[c]) for c in cols).rstrip(), file=out)
    for r in rows:
        print("  ".join(r.get(c, "").ljust(widths[c]) for c in cols).rstrip(), file=out)

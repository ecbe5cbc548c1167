"""The one door to side effects: subprocesses, the Docker engine, SSH, the console.

Stages plan with pure functions, then act only through a Runner. The Runner
alone decides what `invoke --dry` means: with `dry=True` it prints each plan
(`would ...`, commands as argv lists quoted for reading) and touches nothing.
Queries (`query`, `which`) change nothing, so they answer under --dry too.
Tests pass a fake Runner (tests/package/fake_runner.py) instead of patching.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO, TypeVar

from .hosts import redact

TAIL = 12  # lines of a failed command shown in its error
STOP_GRACE = 10.0  # seconds a spawned process has to exit after SIGTERM
T = TypeVar("T")
DryPlan = str | list[str] | Callable[[], str | list[str]]  # what --dry prints of an effect


class StepError(RuntimeError):
    """A pipeline step failed; str() is one line naming the cell and step."""

    def __init__(self, cell: str, step: str, reason: str, tail: Iterable[str] = ()):
        # Clients' own words (docker's, a registry's) may carry a URL's login or a token.
        self.cell, self.step, self.reason = cell, step, redact(reason)
        self.tail = list(tail)
        super().__init__(f"{cell}: {step}: {self.reason}")


class Skip(Exception):
    """A cell this machine cannot do a step for; the reason is shown, never hidden."""


@dataclass(frozen=True)
class Answer:
    """What a query printed; `code` is None when it ran out of time (it was killed)."""

    code: int | None
    out: str
    err: str = ""


class Process:
    """A long-lived process started by `Runner.spawn`; `stream` is its console, if kept."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.stream: IO[bytes] | None = popen.stdout

    def running(self) -> bool:
        return self._popen.poll() is None

    def wait(self, timeout: float) -> bool:
        """True when the process ended within `timeout` seconds."""
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE; idempotent."""
        if self._popen.poll() is None:
            self._popen.terminate()
            if not self.wait(STOP_GRACE):
                self._popen.kill()
                self._popen.wait()


@contextmanager
def _stopped(popen: subprocess.Popen[Any]) -> Iterator[None]:
    """Stop the child if the block is left by an exception (an interrupt): no orphaned build."""
    try:
        yield
    except BaseException:
        Process(popen).stop()
        raise


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

    def act(self, cell: str, plan: DryPlan, effect: Callable[[], T]) -> T | None:
        """Carry out `effect`; under --dry print its plan instead and return None.

        The one place a stage's effects are decided against --dry: the stage
        states its plan (`would` lines, or a function wording them only when
        dry) and hands over the doing.
        """
        if not self.dry:
            return effect()
        lines = plan() if callable(plan) else plan
        for line in [lines] if isinstance(lines, str) else lines:
            self.would(cell, line)
        return None

    def query(self, argv: list[str], *, timeout: float | None = None) -> Answer:
        """Run a command that changes nothing and return its stdout (also under --dry).

        OSError (e.g. the program is missing) is the caller's to word.
        """
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, errors="replace", timeout=timeout
            )
        except subprocess.TimeoutExpired as late:
            return Answer(None, _text(late.stdout), _text(late.stderr))
        return Answer(done.returncode, done.stdout, done.stderr)

    def which(self, program: str) -> str | None:
        return shutil.which(program)

    @contextmanager
    def spawn(self, cell: str, step: str, argv: list[str], *, console: bool) -> Iterator[Process]:
        """Start a long-lived process (never through a shell); stopped when the block ends.

        console: its stdout and stderr become `Process.stream`; else discarded.
        """
        if self.dry:  # stages spawn inside `act`, which --dry never enters
            raise RuntimeError(f"{cell}: {step}: spawn under --dry: {shlex.join(argv)}")
        sink = subprocess.PIPE if console else subprocess.DEVNULL
        err = subprocess.STDOUT if console else subprocess.DEVNULL
        try:
            popen = subprocess.Popen(argv, stdout=sink, stderr=err, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise StepError(cell, step, f"cannot run {argv[0]}: {e.strerror}") from None
        proc = Process(popen)
        try:
            yield proc
        finally:
            proc.stop()
            if popen.stdout:
                popen.stdout.close()

    def ssh(self, port: int, user: str, password: str, wait: float) -> Any:
        """A paramiko client logged in to 127.0.0.1:port, or the exception saying why not.

        `wait` bounds the TCP connect and the SSH banner; a fresh live system's
        host key is accepted as is.
        """
        import paramiko

        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(
                "127.0.0.1",
                port=port,
                username=user,
                password=password,
                timeout=wait,
                banner_timeout=wait,
                auth_timeout=10,
                allow_agent=False,
                look_for_keys=False,
            )
        except BaseException:
            client.close()
            raise
        return client

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
        with _stopped(proc):
            for line in proc.stdout:
                line = line.rstrip()
                tail.append(line)
                self.say(cell, line)
        if proc.wait() != 0:
            last = next((x.strip() for x in reversed(tail) if x.strip()), "")
            reason = f"{Path(argv[0]).name} exited {proc.returncode}"
            raise StepError(cell, step, f"{reason}: {last[:200]}" if last else reason, tail)

    def container_plan(
        self,
        image: str,
        command: list[str],
        volumes: dict[str, dict[str, str]],
        *,
        privileged: bool = False,
    ) -> str:
        """A `container` run as --dry shows it: run [--privileged] IMAGE ARGS (HOST:PATH, ...)."""
        flags = "--privileged " if privileged and self.privileged else ""
        mounts = ", ".join(
            f"{host}:{bind['bind']}" + (":ro" if bind.get("mode") == "ro" else "")
            for host, bind in volumes.items()
        )
        return f"run {flags}{image} {shlex.join(command)} ({mounts})"

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
        env: dict[str, str] | None = None,
        capture: bool = False,
    ) -> bytes:
        """Run a container to its end, streaming its log; one-line StepError on failure.

        `label` names the tool in errors (e.g. AuroraBoot), whatever image provides it.
        Host paths in `volumes` may be relative: the engine is given them absolute.
        capture: stream stderr only and return stdout (a tool's document); else b"".
        """
        import docker

        if privileged and not self.privileged:
            self.say(cell, f"running {label} unprivileged (kairos.privileged is false)")
        try:
            box = self._started(
                image,
                command,
                volumes={str(Path(host).resolve()): bind for host, bind in volumes.items()},
                network_mode=network or None,
                privileged=privileged and self.privileged,
                user=user or None,
                environment=env or None,
            )
        except docker.errors.APIError as err:
            reason = " ".join(str(err.explanation).split())
            raise StepError(cell, step, f"{label} did not start: {reason}") from None
        tail: deque[str] = deque(maxlen=TAIL)
        try:
            for chunk in box.logs(stream=True, follow=True, stdout=not capture):
                for line in chunk.decode(errors="replace").splitlines():
                    self.say(cell, line)
                    if line.strip():
                        tail.append(line.strip())
            status = box.wait().get("StatusCode", 1)
            out = box.logs(stdout=True, stderr=False) if capture and status == 0 else b""
        finally:
            box.remove(force=True)
        if status != 0:
            last = f": {tail[-1][:200]}" if tail else ""
            raise StepError(cell, step, f"{label} exited {status}{last}", tail)
        return bytes(out)

    def output(
        self,
        cell: str,
        step: str,
        image: str,
        argv: list[str],
        *,
        network: str = "",
        platform: str = "",
        timeout: float = 600,
    ) -> Answer:
        """Run argv in a throwaway container of `image`; its exit code and output.

        A query: it changes no image and answers under --dry too. The image's
        own entrypoint is replaced by argv[0]; stdout and stderr come back
        together. `platform` (linux/arm64) picks a multi-arch image's variant.
        A start failure or `timeout` is a one-line StepError.
        """
        import docker
        import requests

        try:
            box = self._started(
                image,
                argv[1:],
                entrypoint=argv[:1],
                network_mode=network or None,
                platform=platform or None,
            )
        except docker.errors.APIError as err:
            reason = " ".join(str(err.explanation).split())
            raise StepError(cell, step, f"cannot start a container of {image}: {reason}") from None
        try:
            try:
                code = box.wait(timeout=timeout).get("StatusCode", 1)
            except requests.exceptions.ConnectionError:  # docker-py's read timeout
                raise StepError(cell, step, f"no answer within {timeout:.0f} s") from None
            out = box.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            box.remove(force=True)
        return Answer(code, out)

    def _started(self, image: str, command: list[str], **options: Any) -> Any:
        """A started container (pulled first if need be, as `docker run` does).

        One that was created but would not start (no such executable, a bad
        mount) is removed before the error goes on: nothing is left behind.
        """
        import docker

        containers = self.docker().containers
        try:
            box = containers.create(image, command, **options)
        except docker.errors.ImageNotFound:
            self.docker().images.pull(image, platform=options.get("platform"))
            box = containers.create(image, command, **options)
        try:
            box.start()
        except BaseException:
            box.remove(force=True)
            raise
        return box

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


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    start = time.monotonic()
    yield lambda: time.monotonic() - start

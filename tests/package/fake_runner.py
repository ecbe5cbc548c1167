"""A Runner for tests: records what it is asked to do and answers from a script.

Only the doors to the outside are replaced (run, query, which, spawn, ssh,
container, docker); `act`, `say` and `would` are the real ones, so --dry
behaves as in production and a dry test proves nothing was asked for.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kairos_distro.runner import Answer, Runner, StepError


class FakeProcess:
    """A spawned process: its console is scripted bytes; it runs until stopped, or `exits`."""

    def __init__(self, argv: list[str], console: bytes, exits: bool) -> None:
        self.argv, self.exits, self.stopped = argv, exits, False
        self.stream = io.BytesIO(console)

    def running(self) -> bool:
        return not (self.exits or self.stopped)

    def wait(self, timeout: float) -> bool:
        return not self.running()

    def stop(self) -> None:
        self.stopped = True


@dataclass
class FakeRunner(Runner):
    """Scripted answers; every request is recorded in order.

    installed: programs `which` finds. answers: a query's Answer (or exception)
    by its argv's leading words, longest match first. consoles: what a spawned
    program prints, by program name; exits: programs that end on their own.
    ssh: what successive `ssh` calls return or raise. failing: programs whose
    `run` fails. outputs: what a container prints on stdout, by its label
    (bytes; an exception it raises; or a function of the recorded call, which
    may write into the call's volumes as the tool would); `container` returns
    it when asked to capture. client: the docker-py client `docker()` returns.
    """

    out: Any = field(default_factory=io.StringIO)
    installed: set[str] = field(default_factory=set)
    answers: dict[tuple[str, ...], Answer | Exception] = field(default_factory=dict)
    consoles: dict[str, bytes] = field(default_factory=dict)
    exits: set[str] = field(default_factory=set)
    ssh_results: list[Any] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    looked_up: list[str] = field(default_factory=list)
    ran: list[list[str]] = field(default_factory=list)
    queried: list[list[str]] = field(default_factory=list)
    spawned: list[FakeProcess] = field(default_factory=list)
    ssh_calls: list[tuple[int, str, str, float]] = field(default_factory=list)
    containers: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    client: Any = None

    def asked(self) -> bool:
        """True when anything at all went through a door."""
        lists = (self.looked_up, self.ran, self.queried, self.spawned, self.ssh_calls)
        return any(lists) or bool(self.containers)

    def run(self, cell: str, step: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        if self.dry:  # the real Runner prints the plan; so does this one
            return super().run(cell, step, argv, env)
        self.ran.append(argv)
        if Path(argv[0]).name in self.failing:
            raise StepError(cell, step, f"{Path(argv[0]).name} exited 1")

    def query(self, argv: list[str], *, timeout: float | None = None) -> Answer:
        self.queried.append(argv)
        for size in range(len(argv), 0, -1):
            found = self.answers.get(tuple(argv[:size]))
            if isinstance(found, Exception):
                raise found
            if found is not None:
                return found
        raise AssertionError(f"unscripted query: {argv}")

    def which(self, program: str) -> str | None:
        self.looked_up.append(program)
        return f"/usr/bin/{program}" if program in self.installed else None

    @contextmanager
    def spawn(
        self, cell: str, step: str, argv: list[str], *, console: bool
    ) -> Iterator[FakeProcess]:
        assert not self.dry, f"spawn under --dry: {argv}"
        name = Path(argv[0]).name
        printed = self.consoles.get(name, b"") if console else b""
        proc = FakeProcess(argv, printed, name in self.exits)
        self.spawned.append(proc)
        try:
            yield proc
        finally:
            proc.stop()

    def ssh(self, port: int, user: str, password: str, wait: float) -> Any:
        self.ssh_calls.append((port, user, password, wait))
        result = self.ssh_results.pop(0) if self.ssh_results else OSError("connection refused")
        if isinstance(result, Exception):
            raise result
        return result

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
        call = {
            "cell": cell,
            "step": step,
            "image": image,
            "command": command,
            "volumes": volumes,
            "label": label,
            "network": network,
            "privileged": privileged,
            "user": user,
            "env": env,
            "capture": capture,
        }
        self.containers.append(call)
        found = self.outputs.get(label, b"")
        if isinstance(found, Exception):
            raise found
        printed = found(call) if callable(found) else found
        return bytes(printed) if capture else b""

    def docker(self) -> Any:
        if self.client is None:
            raise AssertionError("the fake runner has no Docker engine")
        return self.client

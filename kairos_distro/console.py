"""QEMU's serial console: teed to the log, watched for the boot marker and for
lines that end a boot at once (the firmware refusing the boot loader, a panic)."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

from .words import clip

TAIL = 15  # console lines an error shows

# Console lines that end a boot at once, with what they mean; anything else
# is left to the marker and the timeout.
FATAL = (
    (
        re.compile(r"(?i)(failed to load|error loading).*(access denied|security violation)"),
        "Secure Boot refused to run it (not signed with the enrolled keys)",
    ),
    (re.compile(r"Kernel panic - not syncing"), "the kernel panicked"),
)


class Console:
    """Reads QEMU's serial console, tees it to the log, and signals the marker."""

    def __init__(self, stream: IO[bytes], log: Path, marker: str) -> None:
        self.stream, self.pattern = stream, re.compile(marker)
        self.tail: deque[str] = deque(maxlen=TAIL)
        self.marker_at: float | None = None
        self.fatal = ""  # "what it means: the line", once a FATAL line shows
        self.changed = threading.Event()
        self._log = log.open("w", encoding="utf-8", errors="replace")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        # Chunks, not lines: a getty prompt ("localhost login: ") has no newline;
        # read1 returns what has arrived without waiting for a full buffer.
        pending = ""
        while chunk := self.stream.read1(4096):  # type: ignore[attr-defined]
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
        for line in lines if not self.fatal else ():
            meaning = next((why for pattern, why in FATAL if pattern.search(line)), "")
            if meaning:
                self.fatal = f"{meaning}: {clip(_gist(line))}"
                self.changed.set()

    def wait_marker(self, deadline: float) -> bool:
        self.changed.wait(max(0.0, deadline - time.monotonic()))
        return self.marker_at is not None

    def close(self) -> None:
        self._thread.join(timeout=5)
        self._log.close()


def _gist(line: str) -> str:
    """A console line without a kernel timestamp or UEFI device path (noise in an error)."""
    return re.sub(r" from \S+?(?=: |$)", "", re.sub(r"^\[\s*[\d.]+\]\s*", "", line.strip()))

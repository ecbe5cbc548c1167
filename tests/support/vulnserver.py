"""A grype database listing on 127.0.0.1, as grype.anchore.io serves its own.

Serves a directory holding `latest.json` and the archive it names (made by
tests/support/vulndb.py with grype's own builder), so the pipeline's
`vulndb.latest()`, `invoke bump vulndb` and the download of a pinned archive
run against real HTTP. `stop()` makes it a dead mirror; `start()` brings it
back on the same port.
"""

from __future__ import annotations

import functools
import json
import threading
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support import vulndb

# An advisory for a package no test image holds: the database is not empty
# (the pipeline refuses an empty one) and every stand-in image scans clean.
NOBODY = vulndb.debian_advisory("CVE-2026-0000", "kdt-nobody", "1.0-1", "Low")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class VulnDbServer:
    def __init__(self, directory: Path, port: int = 0) -> None:
        self.directory, self.port = directory, port
        self._server: ThreadingHTTPServer | None = None

    @property
    def listing(self) -> str:
        return f"http://127.0.0.1:{self.port}/latest.json"

    @property
    def pin(self) -> str:
        """release.yaml's `vulndb` for the archive latest.json names now."""
        doc = json.loads((self.directory / "latest.json").read_text())
        return f"http://127.0.0.1:{self.port}/{doc['path']}?checksum={doc['checksum']}"

    def publish(self, records: dict[str, list[dict]], built: datetime) -> str:
        """Build a database of `records` into the served directory; its pin."""
        vulndb.build(self.directory, records, built)
        return self.pin

    def start(self) -> VulnDbServer:
        handler = functools.partial(_Quiet, directory=str(self.directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> VulnDbServer:
        return self if self._server else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def with_nobody(directory: Path) -> VulnDbServer:
    """A started server of a fresh database that matches no test image."""
    directory.mkdir(parents=True, exist_ok=True)
    server = VulnDbServer(directory).start()
    built = datetime.now(UTC).replace(microsecond=0)
    server.publish({"debian": [NOBODY]}, built)
    return server

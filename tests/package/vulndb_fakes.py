"""A grype database archive served on 127.0.0.1, and a grype whose `db import` writes one.

The archive's bytes are arbitrary (the pipeline checks their sha256 and hands
them to grype); what `grype db import` leaves behind is a SQLite file with
grype v6's `vulnerability_handles` table, which the pipeline counts.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from kairos_distro import vulndb

ARCHIVE = b"\x28\xb5\x2f\xfd not really zstd, but these are the pinned bytes"
NAME = "vulnerability-db_v6.1.10_2026-05-01T03:21:47Z_1777600000.tar.zst"


def pin_of(url: str, body: bytes = ARCHIVE) -> str:
    return f"{url}?checksum=sha256:{hashlib.sha256(body).hexdigest()}"


def write_db(directory: Path, advisories: int = 3) -> Path:
    """grype's v6 database under `directory` (<dir>/6/vulnerability.db)."""
    db = directory / vulndb.SCHEMA_DIR / vulndb.DB_FILE
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE vulnerability_handles (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany(
            "INSERT INTO vulnerability_handles (name) VALUES (?)",
            [(f"CVE-2026-{n:04d}",) for n in range(advisories)],
        )
    conn.close()
    return db


def importer(advisories: int = 3, writes: bool = True) -> Any:
    """FakeRunner output for `grype db import`: the database, written where /db is mounted."""

    def run(call: dict[str, Any]) -> bytes:
        mounts = {bind["bind"]: Path(host) for host, bind in call["volumes"].items()}
        archive = mounts[vulndb.IN_MOUNT] / call["command"][-1].rsplit("/", 1)[-1]
        assert archive.read_bytes() == ARCHIVE, "grype imports the downloaded archive"
        if writes:
            write_db(mounts[vulndb.DB_MOUNT], advisories)
        return b""

    return run

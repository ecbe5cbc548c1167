"""Small, real grype vulnerability databases, built offline for the tests.

`tests/vulndb` is a Go program over grype's own database builder (the code
Anchore's grype-db runs): the advisories given here become a vunnel provider
workspace, then a schema v6 `vulnerability-db_*.tar.zst` and its `latest.json`,
which the pinned grype imports and scans against. The program is built once
per source hash into `$KDT_TOOLS` (default `~/.cache/kdt-tools`), next to grype.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "vulndb"
SOURCES = ("go.mod", "go.sum", "main.go")


def _hash() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def builder() -> Path:
    """The vulndb program, built on first use (5-10 s once .ci/tools has built grype)."""
    tools = Path(os.environ.get("KDT_TOOLS") or Path.home() / ".cache" / "kdt-tools")
    out = tools / f"vulndb-{_hash()}" / "vulndb"
    if out.exists():
        return out
    if not shutil.which("go"):
        raise RuntimeError("go is not installed (tests/vulndb is a Go program; see .ci/setup)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    # CGO_ENABLED=0 and no -trimpath: the flags .ci/tools builds grype with, so
    # the build reuses grype's compiled packages from the Go build cache and is
    # mostly a (static) link.
    env = {**os.environ, "CGO_ENABLED": "0"}
    env.setdefault("GOTOOLCHAIN", "local")
    build = subprocess.run(
        ["go", "build", "-buildvcs=false", "-o", str(tmp), "."],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        raise RuntimeError(f"go build of tests/vulndb failed:\n{build.stderr}")
    tmp.rename(out)
    return out


def build(out: Path, records: dict[str, list[dict]], built: datetime) -> Path:
    """A DB of `records` (provider -> vunnel OS items) built at `built`: its latest.json.

    The archive lands next to it in `out`. `built` is a whole second with a
    time zone: grype keeps build times to the second, and the tests compare them.
    """
    if built.tzinfo is None or built.microsecond:
        raise ValueError(f"built must be timezone-aware whole seconds, not {built!r}")
    stamp = built.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.TemporaryDirectory(prefix="kdt-vulndb-") as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"built": stamp, "providers": records}))
        proc = subprocess.run(
            [builder(), "--spec", spec, "--out", out],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or f"vulndb exited {proc.returncode}")
    return out / "latest.json"


def archive(latest: Path) -> Path:
    """The archive a latest.json names (its `path` is relative to the listing)."""
    return latest.parent / json.loads(latest.read_text())["path"]


def grype_env(cache: Path) -> dict[str, str]:
    """grype offline on the DB in `cache`: no download, no age check, no update check."""
    return {
        "GRYPE_DB_CACHE_DIR": str(cache),
        "GRYPE_DB_AUTO_UPDATE": "false",
        "GRYPE_DB_VALIDATE_AGE": "false",
        "GRYPE_CHECK_FOR_APP_UPDATE": "false",
    }


def _advisory(cve: str, namespace: str, package: str, fixed: str, fmt: str, **vuln: str) -> dict:
    # the shape vunnel's OS providers write (schema vulnerability/os 1.x)
    fixed_in = {
        "Name": package,
        "NamespaceName": namespace,
        "VersionFormat": fmt,
        "Version": fixed,
        "VendorAdvisory": {"AdvisorySummary": [], "NoAdvisory": False},
    }
    return {
        "Vulnerability": {
            "Name": cve,
            "NamespaceName": namespace,
            "Description": f"{cve} in {package} (a test advisory)",
            "FixedIn": [fixed_in],
            "CVSS": [],
            "Metadata": {},
            **vuln,
        }
    }


def debian_advisory(cve: str, package: str, fixed: str, severity: str, release: str = "12") -> dict:
    """A Debian security tracker record: `package` (a source package) is fixed in `fixed`."""
    link = f"https://security-tracker.debian.org/tracker/{cve}"
    return _advisory(cve, f"debian:{release}", package, fixed, "dpkg", Severity=severity, Link=link)


def alpine_advisory(
    cve: str, package: str, fixed: str, severity: str, release: str = "3.20"
) -> dict:
    """An Alpine secdb record: `package` (an origin package) is fixed in `fixed`."""
    link = f"https://security.alpinelinux.org/vuln/{cve}"
    return _advisory(cve, f"alpine:{release}", package, fixed, "apk", Severity=severity, Link=link)

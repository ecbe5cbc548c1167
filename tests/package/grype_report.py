"""grype's JSON report (`grype sbom:FILE -o json`, v0.121.2), shaped as grype writes it.

Top level: `matches` (one per vulnerability and package, each with the
vulnerability, how it matched and the artifact), `source` (the SBOM),
`distro`, and `descriptor` (grype's version, when it ran, and the database:
descriptor.db.status). Only what the pipeline reads must be right; the rest is
there so a reader that leans on it would be caught.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

GRYPE_VERSION = "0.121.2"
DB_BUILT = "2026-05-01T03:21:47Z"
DB_SCHEMA = "v6.1.10"
DB_FROM = (
    "https://grype.anchore.io/databases/v6/vulnerability-db_v6.1.10_2026-05-01T03:21:47Z_1777600000.tar.zst"
    "?checksum=sha256:" + "5" * 64
)
STARTED = "2026-05-01T12:00:00.123456789Z"


def match(
    vuln: str,
    package: str,
    version: str,
    severity: str = "High",
    fix: Sequence[str] = (),
    kind: str = "deb",
) -> dict[str, Any]:
    """One match: `vuln` found in `package` at `version`; `fix` the versions that fix it."""
    namespace = {"deb": "debian:distro:debian:12", "rpm": "redhat:distro:redhat:9"}
    return {
        "vulnerability": {
            "id": vuln,
            "dataSource": f"https://security-tracker.debian.org/tracker/{vuln}",
            "namespace": namespace.get(kind, f"github:language:{kind}"),
            "severity": severity,
            "urls": [],
            "cvss": [],
            "fix": {"versions": list(fix), "state": "fixed" if fix else "not-fixed"},
            "advisories": [],
        },
        "relatedVulnerabilities": [],
        "matchDetails": [
            {
                "type": "exact-direct-match",
                "matcher": "dpkg-matcher" if kind == "deb" else f"{kind}-matcher",
                "searchedBy": {"package": {"name": package, "version": version}},
                "found": {"vulnerabilityID": vuln, "versionConstraint": "< 9 (deb)"},
            }
        ],
        "artifact": {
            "id": f"{package}-{version}",
            "name": package,
            "version": version,
            "type": kind,
            "locations": [{"path": "/var/lib/dpkg/status"}],
            "language": "",
            "licenses": [],
            "cpes": [],
            "purl": f"pkg:{kind}/debian/{package}@{version}?arch=amd64&distro=debian-12",
            "upstreams": [],
        },
    }


def document(
    *matches: dict[str, Any],
    built: str = DB_BUILT,
    schema: str = DB_SCHEMA,
    started: str = STARTED,
) -> dict[str, Any]:
    return {
        "matches": list(matches),
        "source": {"type": "sbom", "target": "/in/kairos-debian.cdx.json"},
        "distro": {"name": "debian", "version": "12", "idLike": []},
        "descriptor": {
            "name": "grype",
            "version": GRYPE_VERSION,
            "configuration": {"db": {"auto-update": False, "validate-age": False}},
            "db": {
                "status": {
                    "schemaVersion": schema,
                    "from": DB_FROM,
                    "built": built,
                    "path": "/db/6/vulnerability.db",
                    "valid": True,
                },
                "providers": {"debian": {"captured": built, "input": "xxh64:0011223344556677"}},
            },
            "timestamp": started,
        },
    }


def text(*matches: dict[str, Any], **kw: Any) -> bytes:
    """document() as the bytes grype prints."""
    return json.dumps(document(*matches, **kw), indent=1).encode()

"""CycloneDX 1.6 JSON shaped as syft writes it (`syft scan -o cyclonedx-json@1.6`).

For the tests that read SBOMs back (changelog, release, probes): one component
per distro package, named by the purl syft gives it. syft spells a package's
purl per manager: deb keeps an epoch in the version (`1%3A9.18.28-1~deb12u2`),
rpm moves it to an `epoch` qualifier and names the source RPM as `upstream`,
apk names its origin; every purl has `arch` and `distro` qualifiers, sorted,
and percent-encodes `+`, `:` and `@`. Around them, what syft adds that is no
distro package: the image as metadata.component, an operating-system
component (no purl), and whatever `others` a test lists (Go modules, ...).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from kairos_distro.sbom import Package

# The purl namespace syft derives from /etc/os-release's ID.
NAMESPACE = {"debian": "debian", "ubuntu": "ubuntu", "fedora": "fedora", "rhel": "redhat"}
NAMESPACE |= {"rocky": "rocky", "opensuse-leap": "opensuse", "alpine": "alpine"}
FOUND_BY = {"deb": "dpkg-db-cataloger", "rpm": "rpm-db-cataloger", "apk": "apk-db-cataloger"}
SPDX = {"MIT", "Apache-2.0", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-or-later", "BSD-3-Clause"}


def _escape(text: str) -> str:
    return quote(text, safe="")  # packageurl-go: "+" %2B, ":" %3A, "@" %40; "~" stays


def purl(p: Package, distro: str = "debian-12") -> str:
    """The purl syft writes for `p` on `distro` (`<os-release ID>-<VERSION_ID>`)."""
    version, qualifiers = p.version, {"arch": p.arch, "distro": distro}
    if p.manager == "rpm" and ":" in version:
        epoch, version = version.split(":", 1)
        qualifiers["epoch"] = epoch
    if p.source:
        qualifiers["upstream"] = p.source
    namespace = NAMESPACE[distro.rsplit("-", 1)[0]]
    query = "&".join(f"{k}={_escape(v)}" for k, v in sorted(qualifiers.items()) if v)
    return f"pkg:{p.manager}/{namespace}/{p.name}@{_escape(version)}" + (query and f"?{query}")


def _licenses(text: str) -> list[dict[str, Any]]:
    if not text:
        return []
    if " AND " in text or " OR " in text:
        return [{"expression": text}]
    return [{"license": {"id": text} if text in SPDX else {"name": text}}]


def component(p: Package, distro: str = "debian-12") -> dict[str, Any]:
    ref = purl(p, distro)
    package_id = hashlib.sha256(ref.encode()).hexdigest()[:16]
    found: dict[str, Any] = {
        "bom-ref": f"{ref.split('?')[0]}?package-id={package_id}",
        "type": "library",
        "name": p.name,
        "version": p.version,
    }
    if p.license:
        found["licenses"] = _licenses(p.license)
    found["purl"] = ref
    found["properties"] = [
        {"name": "syft:package:foundBy", "value": FOUND_BY[p.manager]},
        {"name": "syft:package:type", "value": p.manager},
    ]
    return found


def go_module(path: str, version: str) -> dict[str, Any]:
    """A Go module syft found in a binary: a component with a purl of no distro manager."""
    ref = f"pkg:golang/{path}@{version}"
    return {
        "bom-ref": f"{ref}?package-id={hashlib.sha256(ref.encode()).hexdigest()[:16]}",
        "type": "library",
        "name": path,
        "version": version,
        "purl": ref,
        "properties": [{"name": "syft:package:foundBy", "value": "go-module-binary-cataloger"}],
    }


def document(
    packages: Sequence[Package],
    *,
    distro: str = "debian-12",
    name: str = "ghcr.io/my-org/debian",
    version: str = "v0.1.0",
    others: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """syft's CycloneDX document of an image holding `packages` (and `others`)."""
    os_id, _, os_version = distro.rpartition("-")
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "urn:uuid:3c5e4a43-7a2f-4a58-9c5c-0a8d2f0e4c11",  # random per run
        "version": 1,
        "metadata": {
            "timestamp": "2026-05-01T12:00:07Z",  # the time syft ran
            "tools": {
                "components": [
                    {
                        "type": "application",
                        "author": "anchore",
                        "name": "syft",
                        "version": "1.57.0",
                    }
                ]
            },
            "component": {
                "bom-ref": "4e1c0a0b6f1d2e3f",
                "type": "container",
                "name": name,
                "version": version,
            },
        },
        "components": [
            *(component(p, distro) for p in packages),
            *others,
            {
                "bom-ref": "os:" + os_id,
                "type": "operating-system",
                "name": os_id,
                "version": os_version,
                "description": f"{os_id} {os_version}",
            },
        ],
    }


def sbom(packages: Sequence[Package], **kw: Any) -> str:
    """document() as the text syft prints."""
    return json.dumps(document(packages, **kw), indent=2)


def debs(*packages: tuple[str, str]) -> str:
    """An SBOM of amd64 deb packages (name, version) on Debian 12."""
    return sbom([Package(name, version, "amd64", "deb") for name, version in packages])

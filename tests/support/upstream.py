"""The template's weekly check against the real upstream images.

    python -m tests.support.upstream --registry ghcr.io/OWNER --identity-regexp RE [--dry]

Run by `.github/workflows/upstream.yml`, where the network reaches quay.io,
ghcr.io and the public Sigstore: it bakes ubuntu:24.04 with three cells (core,
k3s, trusted boot) against the real kairos-init and AuroraBoot images the
template pins, runs `invoke keys` and `invoke release` (KVM when the runner
has it) to the registry, signing keylessly with the workflow's own OIDC
identity on production Sigstore, then checks every published image, its SBOM
attestation and every checksum bundle with the real cosign. `--dry` bakes and
plans only (no pull, push or signature), which is what the offline tests run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.bake import bake, set_cells, set_signing

BASE = "ubuntu:24.04"
PROJECT = "kdt-upstream-ubuntu"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def prepare(out: Path, registry: str, identity_regexp: str) -> Path:
    """A baked repo with the core, k3s and trusted-boot cells, signing as the workflow."""
    publisher = registry.split("/", 1)[-1]
    answers = {"base_image": BASE, "project": PROJECT, "publisher": publisher}
    repo = bake(out, **answers, registry=registry, provider="k3s")
    (k3s,) = yaml.safe_load((repo / "release.yaml").read_text())["cells"]
    core = {"arch": "amd64", "model": "generic"}
    set_cells(repo, [core, k3s, {**core, "trusted_boot": True}])
    signing = {"identity_regexp": identity_regexp, "issuer": GITHUB_ISSUER}
    set_signing(repo, enabled=True, trust="production", **signing)
    return repo


def invoke(repo: Path, *args: str) -> None:
    print(f"\n$ invoke {' '.join(args)}", flush=True)
    subprocess.run(["invoke", *args], cwd=repo, check=True)


def cosign(*args: str) -> None:
    from tests.support.clients import tool  # built by .ci/tools; --dry needs none

    print(f"$ cosign {' '.join(args)}", flush=True)
    subprocess.run([str(tool("cosign")), *args], check=True)


def check_with_cosign(repo: Path, identity_regexp: str) -> int:
    """Every published image, its SBOM and vulnerability attestations and every checksum."""
    who = ["--certificate-identity-regexp", identity_regexp]
    who += ["--certificate-oidc-issuer", GITHUB_ISSUER]
    summary = json.loads((repo / "artifacts" / "release-summary.json").read_text())
    images = [c["image"] for c in summary["cells"] if c["status"] == "published"]
    for image in images:
        cosign("verify", *who, image)
        cosign("verify-attestation", "--type", "cyclonedx", *who, image)
        cosign("verify-attestation", "--type", "vuln", *who, image)
    sums = sorted((repo / "artifacts").rglob("*.sha256"))
    for checksum in sums:
        bundle = checksum.with_name(checksum.name + ".sigstore.json")
        cosign("verify-blob", "--bundle", str(bundle), *who, str(checksum))
    print(f"\ncosign verified {len(images)} images and {len(sums)} checksums")
    return 0 if images and sums else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="e.g. ghcr.io/OWNER")
    parser.add_argument("--identity-regexp", required=True, help="the signing identity")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("RUNNER_TEMP", ".")))
    parser.add_argument("--dry", action="store_true", help="bake and plan only")
    args = parser.parse_args(argv)

    repo = prepare(args.out.resolve() / "upstream", args.registry, args.identity_regexp)
    if args.dry:
        invoke(repo, "--dry", "release")
        return 0
    invoke(repo, "keys")
    invoke(repo, "release")
    return check_with_cosign(repo, args.identity_regexp)


if __name__ == "__main__":
    sys.exit(main())

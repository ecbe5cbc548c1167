"""Signing per cell: what a published cell signs and verifies (sign.py is the Sigstore client).

A cell's publish signs its image (and raw disk image) digests, attests its
SBOM and signs its checksum files, then verifies them all before any tag
moves; `invoke sign` and `invoke verify` do the same for cells already
published, found by their tags.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import artifacts, naming, scan, sign
from .build import Built
from .config import Cell, Release
from .ref import ImageRef
from .registry import Registry, RegistryError
from .runner import Runner, StepError
from .sbom import component_purls


def sign_cell(
    runner: Runner,
    sigstore: sign.Sigstore,
    registry: Registry,
    repo: str,
    digest: str,
    cell: Cell,
    out: Path | None,
    raw_digest: str = "",
) -> None:
    """Sign the image (and raw disk image) digests, attest the SBOM (and the
    vulnerability report), sign the checksum files; then verify them all."""
    sign.sign_image(sigstore, registry, repo, digest)
    if raw_digest:
        sign.sign_image(sigstore, registry, repo, raw_digest)
    bom = artifacts.sbom_file(out, cell)
    if bom is None:
        raise sign.SignError(f"no SBOM for {cell.id} to attest: run `invoke iso` first")
    document = json.loads(bom.read_text())
    sign.attest_image(sigstore, registry, repo, digest, sign.CYCLONEDX, document)
    report = scan.report_file(out, cell)
    if report:
        sign.attest_image(sigstore, registry, repo, digest, scan.PREDICATE, scan.predicate(report))
    for path in artifacts.checksum_files(out, cell):
        sign.sign_file(sigstore, path)
    verify_cell(runner, sigstore, registry, repo, digest, cell, out, raw_digest)


def verify_cell(
    runner: Runner,
    sigstore: sign.Sigstore,
    registry: Registry,
    repo: str,
    digest: str,
    cell: Cell,
    out: Path | None,
    raw_digest: str = "",
) -> None:
    """The image signature, the SBOM attestation (equal to the local SBOM when
    there is one), the raw disk image's signature and the checksum bundles."""
    where = f"{registry.host}/{repo}"
    sign.verify_image(sigstore, registry, repo, digest)
    runner.say(cell.id, f"verified signature of {where}@{digest}")
    bom = artifacts.sbom_file(out, cell)
    local = json.loads(bom.read_text()) if bom else None
    # A digest released twice (after a syft bump, say) carries both SBOMs: one must be ours.
    document = sign.verify_attestation(sigstore, registry, repo, digest, sign.CYCLONEDX, local)
    count = len(component_purls(document))
    runner.say(cell.id, f"verified SBOM attestation ({count} packages)")
    report = scan.report_file(out, cell)
    if report:
        # grype's reports carry their time: a digest released twice has two, one is ours.
        expected = scan.predicate(report)
        sign.verify_attestation(sigstore, registry, repo, digest, scan.PREDICATE, expected)
        runner.say(cell.id, f"verified vulnerability report attestation ({report.name})")
    if raw_digest:
        sign.verify_image(sigstore, registry, repo, raw_digest)
        runner.say(cell.id, f"verified signature of {where}@{raw_digest} (raw disk image)")
    for path in artifacts.checksum_files(out, cell):
        sign.verify_file(sigstore, path)
        runner.say(cell.id, f"verified {path.name}{sign.BUNDLE_SUFFIX}")


# -- cells already published: `invoke sign`, `invoke verify` -----------------------------
def resolve(registry: Registry, repo: str, reference: str) -> str:
    """A tag (or digest) in the registry -> the manifest digest."""
    found = registry.get_manifest(repo, reference)
    if found is None:
        raise RegistryError(f"{registry.host}/{repo}:{reference} is not in the registry")
    return found[2]


def published(release: Release, built: Built) -> tuple[Registry, str, str, str]:
    """(registry, repository path, image digest, raw image digest or "") as published."""
    image = naming.image(release, built.identity)
    registry, repo = Registry(image.api_host, login=release.registry), image.repository
    digest = resolve(registry, repo, image.tag)
    raw = ""
    if release.publish_raw and "raw" in built.cell.media:
        raw = resolve(registry, repo, naming.raw_tag(built.identity, release.tags))
    return registry, repo, digest, raw


WOULD = {
    "sign": "sign the published digests, attest the SBOM, sign artifacts/<cell>/*.sha256",
    "verify": "verify the published image, its SBOM attestation and *.sha256 bundles",
}


def published_cell(
    step: str,
    runner: Runner,
    release: Release,
    sigstore: sign.Sigstore,
    cell: Cell,
    built: Built | None,
    out: Path,
) -> str:
    """`invoke sign` (step "sign") or `invoke verify` of one published cell: its reference."""
    if built is None:
        runner.would(cell.id, WOULD[step])
        return "dry run"
    act = sign_cell if step == "sign" else verify_cell
    try:
        registry, repo, digest, raw = published(release, built)
        act(runner, sigstore, registry, repo, digest, cell, out, raw)
    except (RegistryError, sign.SignError) as err:
        raise StepError(cell.id, step, str(err)) from None
    return f"{registry.host}/{repo}@{digest}"


def verify_reference(runner: Runner, sigstore: sign.Sigstore, image: str, login: str = "") -> str:
    """`host/repo:tag` or `host/repo@sha256:...` verified: its digest reference ("" when dry).

    `login` is release.yaml's registry (its KAIROS_REGISTRY_* login goes there
    only). RefError when `image` is no image reference.
    """
    ref = ImageRef.parse(image)
    if runner.dry:
        runner.would("verify", f"verify the signature of {image}")
        return ""
    registry = Registry(ref.api_host, login=login)
    digest = ref.digest or resolve(registry, ref.repository, ref.reference)
    sign.verify_image(sigstore, registry, ref.repository, digest)
    return f"{ref.full_name}@{digest}"


def write_trusted_root(sigstore: sign.Sigstore, output: str) -> Path:
    """cosign's --trusted-root file for `signing.trust`, written atomically."""
    text = sigstore.trusted_root_json()
    out = Path(output)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    return out

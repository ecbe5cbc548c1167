"""Tasks of trust: signatures (`sign`, `verify`, `trusted-root`) and vulnerabilities (`scan`).

Wired into the collection by tasks.py; each reads release.yaml and hands one
stage to the package, as every task does.
"""

from __future__ import annotations

from pathlib import Path

from invoke import Exit, task

from kairos_distro import build, config, invocation, sign, signing
from kairos_distro import scan as scan_stage
from kairos_distro.invocation import CELL_HELP, FILE_HELP, TOKEN_HELP
from kairos_distro.ref import RefError
from kairos_distro.registry import RegistryError


@task(
    name="sign",
    iterable=["cell"],
    help={**CELL_HELP, "token": TOKEN_HELP, "release-file": FILE_HELP},
)
def sign_(c, cell=None, token="", release_file=""):
    """Sign each published cell's image (and raw image) digest, SBOM and checksums (keyless)."""
    runner, rel = invocation.setup(c, release_file)
    sigstore = invocation.sigstore(rel, required=True, token=token)
    out = Path(c.config.kairos.artifacts)

    def act(one: config.Cell) -> str:
        built = build.local(runner, rel, one)
        return signing.published_cell("sign", runner, rel, sigstore, one, built, out)

    invocation.each(runner, rel, cell, "sign", act)


@task(
    iterable=["cell"],
    help={
        **CELL_HELP,
        "image": "Verify this image reference instead of the cells' images.",
        "release-file": FILE_HELP,
    },
)
def verify(c, cell=None, image="", release_file=""):
    """Verify offline: signature, SBOM and vulnerability attestations, raw image, checksums."""
    runner, rel = invocation.setup(c, release_file)
    sigstore = invocation.sigstore(rel, required=True)
    out = Path(c.config.kairos.artifacts)
    if image:
        try:
            done = signing.verify_reference(runner, sigstore, image, rel.registry)
        except RefError as err:
            raise Exit(f"verify: --image {err}", code=2) from None
        except (RegistryError, sign.SignError) as err:
            raise Exit(f"verify: {err}", code=1) from None
        if done:
            print(f"verified {done}")
        return

    def act(one: config.Cell) -> str:
        built = build.local(runner, rel, one)
        return signing.published_cell("verify", runner, rel, sigstore, one, built, out)

    invocation.each(runner, rel, cell, "verify", act)


@task(
    name="trusted-root",
    help={
        "output": "File to write (default: trusted_root.json).",
        "release-file": FILE_HELP,
    },
)
def trusted_root(c, output="trusted_root.json", release_file=""):
    """Write the Sigstore trusted root signing.trust names: cosign's --trusted-root file."""
    runner, rel = invocation.setup(c, release_file)
    if runner.dry:
        runner.would("trusted-root", f"write the trusted root of {rel.signing.trust} to {output}")
        return
    try:
        out = signing.write_trusted_root(sign.Sigstore(rel.signing, rel.path.parent), output)
    except sign.SignError as err:
        raise Exit(f"trusted-root: {err}", code=1) from None
    print(f"wrote {out} (the trusted root of signing.trust: {rel.signing.trust})")


@task(iterable=["cell"], help={**CELL_HELP, "release-file": FILE_HELP})
def scan(c, cell=None, release_file=""):
    """Scan each cell's SBOM for known vulnerabilities (grype); apply release.yaml's policy."""
    runner, rel = invocation.setup(c, release_file)
    out = Path(c.config.kairos.artifacts)
    database = scan_stage.once(lambda: scan_stage.database(runner, rel))  # for the first cell

    def act(one: config.Cell) -> str:
        if runner.dry:
            against = rel.vulndb or "the listing's latest database"
            runner.would(one.id, f"scan its SBOM with {rel.grype} against {against}")
            return "dry run"
        report = scan_stage.checked(runner, rel, build.local(runner, rel, one), database(), out)
        return f"vulnerabilities: {scan_stage.shown(rel, report)}"

    invocation.each(runner, rel, cell, "scan", act)

"""The main job on local defaults: bake, then `invoke release` to 127.0.0.1.

    python -m tests.support.demo [--offline] [--out DIR]

Without --offline the baked repo uses the real upstream images (kairos-init,
AuroraBoot, the distro base), pinned in its release.yaml. Signing always uses
a local Sigstore test instance on 127.0.0.1 here (and says so); production or
staging is one line of the baked release.yaml away (signing.trust). With --offline, for
machines that cannot pull them, local STAND-INS are built from Debian packages
and used instead, and the run says so loudly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import docker

from tests.support.bake import bake, retarget, set_signing
from tests.support.registry import LocalRegistry
from tests.support.sigstore_local import IDENTITY, ISSUER, LocalSigstore
from tests.support.standins import all_standins, docker_cli
from tests.support.tools import tool_images
from tests.support.vulnserver import with_nobody

BANNER = """\
==============================================================================
 OFFLINE DEMO: kairos-init, AuroraBoot and the debian:12 base are local
 STAND-INS (kdt-standin/*) built from Debian packages, not upstream images.
 The pipeline code is the real one; the images it converts are test doubles.
 syft and grype are the real tools (kdt-tools/*, built from the Go module
 proxy); grype scans against a small LOCAL TEST DATABASE on 127.0.0.1.
=============================================================================="""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true", help="use local stand-in images")
    parser.add_argument("--out", type=Path, default=Path("demo"), help="where to bake")
    parser.add_argument("--network", default="host", help="container network for builds")
    args = parser.parse_args(argv)

    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with (
        LocalRegistry(out / "registry") as registry,
        LocalSigstore(out / "sigstore") as sig,
        ExitStack() as stack,
    ):
        print(f"local registry: {registry.host}")
        print(f"local Sigstore TEST instance: {sig.url} (signing identity {IDENTITY})")
        repo = bake(out, base_image="debian:12", registry=f"{registry.host}/demo")
        set_signing(
            repo, enabled=True, trust=str(sig.trust_config), identity=IDENTITY, issuer=ISSUER
        )
        print(f"baked: {repo}")
        if args.offline:
            print(BANNER)
            client = docker.from_env(timeout=600)
            db = stack.enter_context(with_nobody(out / "vulndb"))
            retarget(repo, **all_standins(client), **tool_images(client), vulndb=db.pin)
        env = {
            **os.environ,
            "INVOKE_KAIROS_NETWORK": args.network,
            "INVOKE_KAIROS_DOCKER_CLI": docker_cli(),
            "SIGSTORE_ID_TOKEN": sig.token(lifetime=3600),
        }
        # The main job is `invoke release` (build, ISO + SBOM, boot test, sign, publish per cell);
        # the second release shows that nothing changed, so nothing is redone.
        for task in ("release", "verify", "release"):
            print(f"\n$ invoke {task}", flush=True)
            if subprocess.run(["invoke", task], cwd=repo, env=env, check=False).returncode:
                print(f"demo: invoke {task} failed (see above)", file=sys.stderr)
                return 1
        tags = ", ".join(registry.tags("demo/debian"))
        print(f"\nregistry {registry.host} now holds demo/debian: {tags}")
        made = sorted((repo / "artifacts").rglob("*.iso")) + sorted(
            (repo / "artifacts").rglob("*.cdx.json")
        )
        print("ISOs and SBOMs:", *made, sep="\n  ")
        print(
            f"signed with the local Sigstore TEST instance; verify: "
            f"sigstore --trust-config {sig.trust_config} verify identity ..."
        )
        if args.offline:
            print("(built from STAND-INS: see the banner above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Third-party clients the end-to-end tests run on what the pipeline publishes.

The Go tools (cosign v3 and v2, regctl, crane) are pinned in `.ci/tools.txt`, the one
source of their versions, and built by `.ci/setup` into
`$KDT_TOOLS` (default `~/.cache/kdt-tools`)`/NAME-VERSION/BINARY`. sigstore-js
(`@sigstore/verify`) comes from `tests/js/package-lock.json` through `npm ci`.
A missing client FAILS the test that needs it (it never skips): CI runs `.ci/setup`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
TOOLS_TXT = TOP / ".ci" / "tools.txt"
JS_DIR = TOP / "tests" / "js"


@dataclass(frozen=True)
class Pin:
    name: str  # what the tests call it: cosign, cosign2, regctl, crane
    package: str  # Go package path of the command
    version: str

    @property
    def binary(self) -> Path:
        tools = Path(os.environ.get("KDT_TOOLS") or Path.home() / ".cache" / "kdt-tools")
        return tools / f"{self.name}-{self.version}" / self.package.rsplit("/", 1)[1]


def pins() -> dict[str, Pin]:
    """NAME -> Pin, read from .ci/tools.txt (`NAME MODULE/cmd/BINARY@VERSION` lines)."""
    found = {}
    for line in TOOLS_TXT.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, spec = line.split()
        package, version = spec.rsplit("@", 1)
        found[name] = Pin(name, package, version)
    return found


def tool(name: str) -> Path:
    """The pinned binary NAME, or a test failure that says how to get it."""
    pin = pins().get(name)
    if pin is None:
        pytest.fail(f"{name} is not pinned in {TOOLS_TXT.relative_to(TOP)}")
    if not os.access(pin.binary, os.X_OK):
        pytest.fail(f"{name} {pin.version} is missing at {pin.binary}: run .ci/setup")
    return pin.binary


def sigstore_js() -> list[str]:
    """argv prefix of tests/js/verify.mjs, or a test failure that says how to get it."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: sigstore-js needs it (.ci/setup expects nodejs)")
    if not (JS_DIR / "node_modules" / "@sigstore" / "verify").is_dir():
        pytest.fail(f"sigstore-js is missing in {JS_DIR / 'node_modules'}: run .ci/setup")
    return [node, str(JS_DIR / "verify.mjs")]


def trusted_root(trust_config: Path, out: Path) -> Path:
    """The trusted_root.json inside a ClientTrustConfig: what --trusted-root takes."""
    out.write_text(json.dumps(json.loads(trust_config.read_text())["trustedRoot"], indent=2))
    return out


def call(argv: list[str | Path], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a client (argv list, never a shell) and capture its output as text."""
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=300,
    )


def js_verify(root: Path, bundle: Path, *, identity: str, issuer: str, **target: str) -> str:
    """sigstore-js on one bundle; `target` is artifact=FILE or digest=sha256:HEX.

    Returns its one line ("OK ..." or "FAIL ..."); a usage error fails the test.
    """
    argv: list[str | Path] = [*sigstore_js(), "--trusted-root", root, "--bundle", bundle]
    argv += ["--identity", identity, "--issuer", issuer]
    for key, value in target.items():
        argv += [f"--{key}", value]
    proc = call(argv)
    line = proc.stdout.strip()
    assert proc.returncode in (0, 1) and line, f"sigstore-js: {proc.stdout}{proc.stderr}"
    assert (proc.returncode == 0) == line.startswith("OK "), line
    return line


# -- what publish attached, read back over plain HTTP ----------------------------------------
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
PREDICATE = "dev.sigstore.bundle.predicateType"


def _get(host: str, path: str) -> bytes:
    import requests

    resp = requests.get(f"http://{host}/v2/{path}", headers={"Accept": ACCEPT}, timeout=10)
    resp.raise_for_status()
    return resp.content


def referrer_bundles(host: str, repo: str, digest: str) -> dict[str, bytes]:
    """predicate type -> the Sigstore bundle attached to `digest` (from the fallback tag)."""
    index = json.loads(_get(host, f"{repo}/manifests/{digest.replace(':', '-')}"))
    found = {}
    for entry in index["manifests"]:
        manifest = json.loads(_get(host, f"{repo}/manifests/{entry['digest']}"))
        (layer,) = manifest["layers"]
        found[entry["annotations"][PREDICATE]] = _get(host, f"{repo}/blobs/{layer['digest']}")
    return found


def tampered_bundle(bundle: bytes) -> bytes:
    """The same DSSE bundle with one byte of its statement changed (signature left as is)."""
    import base64

    data = json.loads(bundle)
    payload = base64.b64decode(data["dsseEnvelope"]["payload"]).replace(b'"_type"', b'"_typ3"')
    data["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    return json.dumps(data).encode()


# -- cosign, per version ------------------------------------------------------------------------
COSIGNS = ("cosign", "cosign2")  # v3, and v2.6.1 as Kairos's factory installs


def cosign_argv(
    name: str, command: str, root: Path, identity: str, issuer: str, *rest: str
) -> list[str | Path]:
    """cosign verify / verify-attestation / verify-blob, offline from `root`.

    cosign v2 reads bundles attached as OCI referrers only with --new-bundle-format
    (its default is false: cmd/cosign/cli/options/verify.go at v2.6.1; v3.1.3 defaults
    to true and deprecates the flag). verify-blob detects a bundle file in both.
    """
    flags = ["--new-bundle-format"] if name == "cosign2" and command != "verify-blob" else []
    who = ["--certificate-identity", identity, "--certificate-oidc-issuer", issuer]
    return [tool(name), command, *flags, "--trusted-root", root, *who, *rest]


def cosign_env(home: Path) -> dict[str, str]:
    """A private HOME: no docker login, TUF cache or cosign config of this machine's user."""
    home.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "DOCKER_CONFIG": str(home / ".docker"), "TUF_ROOT": str(home)}

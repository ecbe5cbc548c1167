"""Benchmarks that print figures (no timed assertions live in the tests).

- seconds to bake each cell of kairos-init's matrix (in-process cookiecutter), and in all;
- the built stand-in image's size over its base, and kairos-init residue;
- test-boot under TCG, per kind (amd64, amd64 trusted boot, arm64): seconds to the
  console marker, from it to the verdict, and in all;
- `invoke release` of 4 cells, then no-op releases with refresh inputs and packages
  (the freshness probe's cost, per cell and as a share of the cold release);
- seconds to load and validate a release.yaml of 20,000 cells.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import docker

from tests.matrix import CELLS
from tests.support.bake import bake, retarget
from tests.support.standins import all_standins, debian_base, docker_cli, kairos_init
from tests.support.tools import tool_images
from tests.support.vulnserver import with_nobody


def bake_all() -> None:
    """Seconds per matrix cell (goal: each under 10 s), slowest first, and the total."""
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, cell in enumerate(CELLS):
            start = time.monotonic()
            bake(Path(tmp) / str(i), **cell.answers())
            times[cell.id] = time.monotonic() - start
    for cell_id, seconds in sorted(times.items(), key=lambda kv: -kv[1]):
        print(f"bake: {cell_id:<55} {seconds * 1000:6.0f} ms")
    total = sum(times.values())
    print(
        f"bake: {len(CELLS)} matrix cells in {total:.2f} s "
        f"(max {max(times.values()):.2f} s per cell; goal: every cell under 10 s)"
    )


def load_cells(count: int = 20_000) -> None:
    """Seconds to read and validate `count` cells (the duplicate check was once quadratic)."""
    from kairos_distro import config

    with tempfile.TemporaryDirectory() as tmp:
        path = bake(Path(tmp)) / "release.yaml"
        text = path.read_text()
        cells = "".join(
            f"  - {{arch: amd64, provider: k3s, provider_version: v1.{i // 100}.{i % 100}+k3s1}}\n"
            for i in range(count)
        )
        path.write_text(text[: text.index("\ncells:")] + "\ncells:\n" + cells)
        start = time.monotonic()
        config.load(path)
    print(f"config: {count} cells loaded and validated in {time.monotonic() - start:.2f} s")


def image_size(client: docker.DockerClient, base_ref: str) -> None:
    built = client.images.get("kairos-local/my-org-kairos-debian:amd64-generic")
    base = client.images.get(base_ref)
    ratio = built.attrs["Size"] / base.attrs["Size"]
    history = built.history()
    residue = [
        h
        for h in history
        if "COPY" in (h.get("CreatedBy") or "") and "kairos-init" in (h.get("CreatedBy") or "")
    ]
    print(
        f"image: base {base.attrs['Size'] / 1e6:.1f} MB, built {built.attrs['Size'] / 1e6:.1f} MB,"
        f" ratio {ratio:.2f} (the stand-in conversion adds a kernel, initrd and sshd)"
    )
    print(
        f"image: {len(history)} history entries, kairos-init copied into a layer: {bool(residue)}"
    )


def artifacts(repo: Path, env: dict[str, str]) -> None:
    """Seconds and sizes of `invoke iso`: the ISO and the SBOM syft makes of the image."""
    start = time.monotonic()
    out = subprocess.run(
        ["invoke", "iso"], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout
    total = time.monotonic() - start
    (iso,) = (repo / "artifacts").rglob("*.iso")
    (sbom,) = (repo / "artifacts").rglob("*.cdx.json")
    packages = re.search(r"SBOM: (\d+) packages", out)
    print(
        f"artifacts: ISO {iso.stat().st_size / 1e6:.1f} MB and SBOM of "
        f"{packages.group(1) if packages else '?'} packages ({sbom.stat().st_size / 1e3:.0f} kB)"
        f" in {total:.1f} s"
    )


def scan(repo: Path, env: dict[str, str], cache: Path) -> None:
    """Seconds of `invoke scan`: first with the database downloaded and imported, then warm."""
    env = {**env, "KAIROS_VULNDB_CACHE": str(cache)}
    seconds = []
    for _ in range(2):
        start = time.monotonic()
        subprocess.run(["invoke", "scan"], cwd=repo, env=env, check=True, capture_output=True)
        seconds.append(time.monotonic() - start)
    print(
        f"scan: grype on one SBOM {seconds[0]:.1f} s with the database fetched and imported, "
        f"{seconds[1]:.1f} s warm (the test database: one advisory)"
    )


def boot(repo: Path, env: dict[str, str], kind: str = "amd64") -> None:
    start = time.monotonic()
    out = subprocess.run(
        ["invoke", "test-boot"], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout
    total = time.monotonic() - start
    passes = [float(s) for s in re.findall(r"pass .* \((\d+\.\d+) s\)", out)]
    print(
        f"test-boot {kind} (tcg): marker at {passes[0]:.1f} s, verdict "
        f"{passes[-1] - passes[0]:.2f} s after the marker (target < 1 s), {total:.1f} s in all"
    )


# The other boot kinds: the answers that bake them, and the stand-ins they need.
KINDS = {"amd64 trusted": {"trusted_boot": "yes"}, "arm64": {"architectures": "arm64"}}


def boot_kinds(client: docker.DockerClient, images: dict[str, str], env: dict[str, str]) -> None:
    """Trusted boot (keys enrolled on the first boot, then a reset) and arm64 (virt, UEFI)."""
    arm64 = {
        "base_image": debian_base(client, "arm64"),
        "kairos_init": kairos_init(client, "arm64"),
    }
    for kind, answers in KINDS.items():
        with tempfile.TemporaryDirectory() as tmp:
            repo = bake(Path(tmp), base_image="debian:12", registry="127.0.0.1:1/bench", **answers)
            retarget(repo, **{**images, **(arm64 if kind == "arm64" else {})})
            tasks = (["keys"] if "trusted_boot" in answers else []) + ["build", "iso"]
            for task in tasks:
                subprocess.run(
                    ["invoke", task], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL
                )
            boot(repo, env, kind)


def release_noop(images: dict[str, str], env: dict[str, str]) -> None:
    from tests.support.bake import set_cells, set_signing
    from tests.support.registry import LocalRegistry
    from tests.support.sigstore_local import IDENTITY, ISSUER, LocalSigstore

    cells = [
        {"arch": "amd64", "model": "generic", "provider": "none"},
        {
            "arch": "amd64",
            "model": "generic",
            "provider": "k3s",
            "provider_version": "v1.35.1+k3s1",
        },
        {
            "arch": "amd64",
            "model": "generic",
            "provider": "k0s",
            "provider_version": "v1.35.1+k0s.0",
        },
        {"arch": "amd64", "model": "generic", "provider": "none", "fips": True},
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalRegistry(Path(tmp) / "reg") as reg,
        LocalSigstore(Path(tmp) / "sig") as sig,
    ):
        repo = bake(Path(tmp), base_image="debian:12", registry=f"{reg.host}/bench")
        retarget(repo, **images)
        set_signing(
            repo, enabled=True, trust=str(sig.trust_config), identity=IDENTITY, issuer=ISSUER
        )
        set_cells(repo, cells)
        env = {**env, "SIGSTORE_ID_TOKEN": sig.token(lifetime=3600)}
        first = _timed_release(repo, env)
        noop = {mode: _timed_release(repo, env, mode) for mode in ("inputs", "packages")}
    second = noop["inputs"]
    print(
        f"release: 4 cells first {first:.1f} s, no-op second {second:.2f} s "
        f"= {second / first:.1%} of the first (refresh: inputs; targets: < 5%, < 3 s)"
    )
    probe = noop["packages"] - second
    print(
        f"release: no-op with refresh: packages {noop['packages']:.2f} s; the probe "
        f"{probe:.1f} s for 4 cells (one apt probe: they share base and arch), "
        f"{probe / 4:.1f} s per cell = {probe / first:.1%} of the cold release"
    )


def _timed_release(repo: Path, env: dict[str, str], refresh: str = "") -> float:
    start = time.monotonic()
    flags = ["--refresh", refresh] if refresh else []
    subprocess.run(
        ["invoke", "release", *flags], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL
    )
    return time.monotonic() - start


def main() -> None:
    bake_all()
    load_cells()
    client = docker.from_env(timeout=600)
    tmp_db = Path(tempfile.mkdtemp(prefix="kdt-bench-vulndb-"))
    server = with_nobody(tmp_db / "listing")
    images = {**all_standins(client), **tool_images(client), "vulndb": server.pin}
    env = {
        **os.environ,
        "INVOKE_KAIROS_NETWORK": "host",
        "INVOKE_KAIROS_DOCKER_CLI": docker_cli(),
        "INVOKE_KAIROS_BOOT_ACCEL": "tcg",
    }
    with tempfile.TemporaryDirectory() as tmp:
        repo = bake(Path(tmp), base_image="debian:12", registry="127.0.0.1:1/bench")
        retarget(repo, **images)
        subprocess.run(
            ["invoke", "build"], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL
        )
        artifacts(repo, env)
        scan(repo, env, tmp_db / "cache")
        image_size(client, images["base_image"])
        boot(repo, env)
    boot_kinds(client, images, env)
    release_noop(images, env)
    server.stop()


if __name__ == "__main__":
    main()

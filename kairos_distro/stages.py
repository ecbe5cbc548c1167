"""What an `invoke release` run needs besides its cells, and the effects it calls.

`Plan` holds the run's settings and derives each cell's keys (the ledger's
fingerprint, media fingerprint and release key) from inputs resolved once per
run. `Stages` is every effect the release calls, one method each, so a test
passes a recorder in its place (release.py decides, these act).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import artifacts, boot, build, freshness, keys, ledger, publish, scan, sign
from .config import Cell, Release
from .ref import ImageRef
from .registry import Registry
from .runner import Runner


class Stages:
    """The effects a release calls, one method each; a test passes a recorder instead."""

    def input_digests(self, runner: Runner, release: Release) -> dict[str, str]:
        return build.input_digests(runner, release)

    def tree_digest(self, context: Path) -> dict[str, str]:
        return build.tree_digest(context)

    def db_certificate(self, directory: Path) -> str:
        return keys.certificate_digest(directory)

    def read_record(self, release: Release, cell: Cell) -> dict[str, Any] | None:
        return ledger.read_record(ledger.records_registry(release), release, cell)

    def read_sbom(self, release: Release, cell: Cell, record: dict[str, Any]) -> str | None:
        return ledger.read_sbom(ledger.records_registry(release), release, cell, record)

    def probe(
        self, runner: Runner, release: Release, network: str, packages: dict[Cell, list[Any]]
    ) -> dict[str, freshness.Found]:
        image = build.resolve_base(runner, release.base_image)[0]  # as the build pins it
        return freshness.probe(runner, packages, lambda cell: image, network)

    def verify_image(self, sigstore: Any, release: Release, image: ImageRef) -> None:
        registry = Registry(image.api_host, login=release.registry)
        sign.verify_image(sigstore, registry, image.repository, image.digest)

    def local_label(self, runner: Runner, release: Release, cell: Cell) -> str | None:
        return build.local_label(runner, release, cell)

    def adopt(self, runner: Runner, release: Release, cell: Cell) -> build.Built:
        return build.adopt(runner, release, cell)

    def build(
        self,
        runner: Runner,
        release: Release,
        cell: Cell,
        network: str,
        context: Path,
        stamp: str,
        fresh: bool = False,
    ) -> build.Built | None:
        return build.run(
            runner, release, cell, network=network, context=context, stamp=stamp, no_cache=fresh
        )

    def earlier_media(self, directory: Path, cell: Cell) -> artifacts.Artifacts | None:
        return artifacts.earlier(directory, cell)

    def make_media(
        self, runner: Runner, release: Release, built: Any, cell: Cell, plan: Plan, stamp: str
    ) -> artifacts.Artifacts | None:
        return artifacts.make_artifacts(
            runner, release, built, cell, plan.artifacts, plan.network, stamp, plan.keys
        )

    def vulndb(self, runner: Runner, release: Release) -> Any:
        return scan.database(runner, release)

    def scan(self, runner: Runner, release: Release, built: Any, db: Any, out: Path) -> Any:
        return scan.scan_cell(runner, release, built, db, out)

    def boot(
        self, runner: Runner, release: Release, cell: Cell, iso: Path, plan: Plan
    ) -> boot.BootPlan:
        return boot.boot_iso(runner, release, cell, iso, plan.boot, plan.user_data)

    def publish(
        self,
        runner: Runner,
        release: Release,
        cell: Cell,
        built: Any,
        plan: Plan,
        key: str = "",
        extra: dict[str, Any] | None = None,
    ) -> publish.Published | None:
        named = plan.inputs(cell) if key else None
        return publish.publish(
            runner, release, cell, built, plan.sigstore, plan.artifacts, key, named, extra
        )


@dataclass
class Plan:
    """What a release run needs besides the cells; effects go through `stages`."""

    runner: Runner
    release: Release
    artifacts: Path
    network: str
    boot: Any  # boot.Settings
    user_data: bytes
    sigstore: Any = None  # sign.Sigstore when signing is on
    force: bool = False
    refresh: str = ""  # `--refresh`; empty: release.yaml's
    context: Path = Path(".")
    keys: Path = Path(keys.DEFAULT_DIR)
    stages: Stages = field(default_factory=Stages)
    _inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _vulndb: Any = None  # scan.once of the stages' database, made on first use

    def vulndb(self) -> Any:
        """The run's vulnerability database, fetched once; a refusal is said once too."""
        if self._vulndb is None:
            self._vulndb = scan.once(lambda: self.stages.vulndb(self.runner, self.release))
        return self._vulndb()

    @property
    def mode(self) -> str:
        """The refresh mode of this run: --refresh, else release.yaml's."""
        return self.refresh or self.release.refresh

    def _fingerprint_inputs(self, cell: Cell) -> dict[str, Any]:
        """What the image is made from, resolved once per run for every cell."""
        if not self._inputs:
            digests = self.stages.input_digests(self.runner, self.release)
            tree = self.stages.tree_digest(self.context)
            for one in self.release.cells:
                self._inputs[one.id] = build.fingerprint_inputs(self.release, one, digests, tree)
        return self._inputs[cell.id]

    def stamp(self, cell: Cell) -> str:
        """The fingerprint: what the image (and so its ISO) is made from."""
        named = self._fingerprint_inputs(cell)
        return build.fingerprint(self.release, cell, named["digests"], named["tree"])

    def _media(self, cell: Cell) -> dict[str, Any]:
        cert = self.stages.db_certificate(self.keys) if "uki" in cell.media else ""
        return ledger.media_inputs(cell.media, cert, vars(self.release.tags), self.release.syft)

    def media_stamp(self, cell: Cell) -> str:
        return ledger.media_stamp(self.stamp(cell), self._media(cell))

    def _boot_inputs(self, cell: Cell) -> list[Any]:
        checks = [vars(c) for c in boot.checks_for(self.release, cell)]
        marker = self.boot.marker
        return ledger.boot_inputs(self.release.publish_raw, checks, marker, self.user_data)

    def key(self, cell: Cell) -> str:
        return ledger.release_key(self.media_stamp(cell), self._boot_inputs(cell))

    def inputs(self, cell: Cell) -> dict[str, str]:
        named = self._fingerprint_inputs(cell)
        return ledger.inputs(named, self._media(cell), self._boot_inputs(cell))

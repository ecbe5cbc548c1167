"""Promote stage: move a channel tag to a digest another channel already carries.

`invoke publish` moves the first channel (e.g. edge) with every release;
promotion points a later channel (e.g. stable) at what that channel carries,
without rebuilding. The image comes from the cell's release record; with
signing on, its signature must verify before any tag moves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import config, ledger, naming, publish, sign
from .ref import ImageRef, api_host
from .registry import Registry, RegistryError
from .runner import Runner, StepError
from .words import clip, show, suggest

STEP = "promote"


class PromoteError(ValueError):
    """A promotion that cannot be planned; str() is one line."""


def check_channels(channels: Sequence[str], from_ch: str, to_ch: str) -> None:
    """Both channels must be listed in release.yaml, and differ."""
    if not channels:
        raise PromoteError("channels: none listed, so nothing to promote between")
    for flag, name in (("--from", from_ch), ("--to", to_ch)):
        if not name:
            raise PromoteError(f"{flag} is required (channels: {', '.join(channels)})")
        if name not in channels:
            listed = ", ".join(channels)
            hint = suggest(name, channels)
            raise PromoteError(f"{flag} {clip(name)} is not a listed channel ({listed}){hint}")
    if from_ch == to_ch:
        raise PromoteError(f"--from and --to are both {clip(from_ch)}")


def channel_tags(
    rel: config.Release, record: dict[str, Any], from_ch: str, to_ch: str
) -> tuple[str, str]:
    """(from tag, to tag) of a cell: release.yaml's channel format, applied to the
    identity of the image its release record names."""
    try:
        ident = naming.Identity.from_record(record.get("identity"))
        return (
            naming.channel_tag(ident, rel.tags, from_ch),
            naming.channel_tag(ident, rel.tags, to_ch),
        )
    except naming.NamingError as err:
        raise PromoteError(f"{err}: `invoke release` rewrites it") from None


@dataclass(frozen=True)
class Promoted:
    cell: config.Cell
    repository: str
    digest: str
    from_tag: str
    to_tag: str
    verified: bool

    @property
    def ref(self) -> str:
        return f"{self.repository}@{self.digest}"


def promote_cell(
    runner: Runner,
    rel: config.Release,
    cell: config.Cell,
    from_ch: str,
    to_ch: str,
    sigstore: sign.Sigstore | None,
    registry_for: Callable[[str], Registry] | None = None,
) -> Promoted | None:
    """Read the cell's record, resolve the --from tag, verify it (signing on), then tag.

    Reads happen under --dry too (they change nothing); the tag is only
    written when not dry. Returns None on a dry run.
    """
    # The KAIROS_REGISTRY_* login belongs to rel.registry only.
    registry_for = registry_for or functools.partial(Registry, login=rel.registry)
    # Records live at the registry's API host (Docker Hub: registry-1.docker.io).
    record = ledger.read_record(registry_for(api_host(rel.registry)), rel, cell)
    if record is None:
        repo, tag = ledger.record_location(rel, cell)
        raise StepError(
            cell.id, STEP, f"never released: no release record {rel.registry}/{repo}:{tag}"
        )
    try:
        image = ImageRef.pinned(record.get("image"))
        if image is None:
            raise PromoteError(
                f"the release record names no image by digest ({show(record.get('image'))})"
            )
        from_tag, to_tag = channel_tags(rel, record, from_ch, to_ch)
    except PromoteError as err:
        raise StepError(cell.id, STEP, str(err)) from None
    registry, repo = registry_for(image.api_host), image.repository
    repository = image.full_name
    try:
        found = registry.get_manifest(repo, from_tag)
        if found is None:
            raise StepError(cell.id, STEP, f"{repository}:{from_tag} is not in the registry")
        digest = found[2]
        if sigstore is not None:
            sign.verify_image(sigstore, registry, repo, digest)
            runner.say(cell.id, f"verified signature of {repository}@{digest}")
        if runner.dry:
            runner.would(cell.id, f"tag {repository}@{digest} ({from_tag}) as {to_tag}")
            return None
        publish.move_tags(registry, repo, digest, [to_tag])
    except (RegistryError, sign.SignError) as err:
        raise StepError(cell.id, STEP, str(err)) from None
    runner.say(cell.id, f"tagged {repository}:{to_tag} = {from_tag} ({digest})")
    return Promoted(cell, repository, digest, from_tag, to_tag, sigstore is not None)

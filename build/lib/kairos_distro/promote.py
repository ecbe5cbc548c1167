"""Promote stage: move a channel tag to a digest another channel already carries.

`invoke publish` moves the first channel (e.g. edge) with every release;
promotion points a later channel (e.g. stable) at what that channel carries,
without rebuilding. The image comes from the cell's release record; with
signing on, its signature must verify before any tag moves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import config, naming, publish, sign
from .registry import Registry, RegistryError
from .runner import Runner, StepError

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
            raise PromoteError(f"{flag} {name!r} is not a listed channel ({', '.join(channels)})")
    if from_ch == to_ch:
        raise PromoteError(f"--from and --to are both {from_ch!r}")


def channel_tags(record_tags: Sequence[str], from_ch: str, to_ch: str) -> tuple[str, str]:
    """(from tag, to tag) of a cell, from its release record's tags.

    The record lists the version tag, then the first channel's tag; both are
    the same name with the version's place (one or more `-` parts) taken by
    the channel (one part, as channel names have no `-`). The first part that
    differs is that place; any channel's tag puts its name there.
    """
    if len(record_tags) < 2:
        raise PromoteError("the release record lists no channel tag")
    version_parts = record_tags[0].split("-")
    channel_parts = record_tags[1].split("-")
    at = next(
        (i for i, (v, c) in enumerate(zip(version_parts, channel_parts, strict=False)) if v != c),
        None,
    )
    tail = channel_parts[at + 1 :] if at is not None else []
    if (
        at is None
        or not config.CHANNEL.match(channel_parts[at])
        or len(version_parts) - len(tail) <= at
        or (tail and version_parts[-len(tail) :] != tail)
    ):
        raise PromoteError(
            f"the release record's tags {record_tags[0]} and {record_tags[1]} "
            "do not differ by a channel"
        )
    head = channel_parts[:at]

    def tag(channel: str) -> str:
        made = "-".join([*head, channel, *tail])
        if not naming.TAG.match(made):
            raise PromoteError(f"channel tag {made!r} is not a valid OCI tag")
        return made

    return tag(from_ch), tag(to_ch)


def split_image(image: str) -> tuple[str, str, str]:
    """`host/ns/name@sha256:...` -> (host, `ns/name`, digest)."""
    name, _, digest = image.partition("@")
    host, repo = publish.split_repository(name)
    if not (host and repo and digest):
        raise PromoteError(f"the release record names no image by digest ({image!r})")
    return host, repo, digest


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
    registry_for: Callable[[str], Registry] = Registry,
) -> Promoted | None:
    """Read the cell's record, resolve the --from tag, verify it (signing on), then tag.

    Reads happen under --dry too (they change nothing); the tag is only
    written when not dry. Returns None on a dry run.
    """
    record = publish.read_record(registry_for(rel.registry), rel, cell)
    if record is None:
        repo, tag = publish.record_location(rel, cell)
        raise StepError(
            cell.id, STEP, f"never released: no release record {rel.registry}/{repo}:{tag}"
        )
    try:
        host, repo, _ = split_image(str(record.get("image", "")))
        tags = record.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise PromoteError("the release record lists no tags")
        from_tag, to_tag = channel_tags(tags, from_ch, to_ch)
    except PromoteError as err:
        raise StepError(cell.id, STEP, str(err)) from None
    registry = registry_for(host)
    repository = f"{host}/{repo}"
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

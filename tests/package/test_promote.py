"""`invoke promote`: a channel tag moves to a verified digest, or nothing moves."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from typing import Any

import pytest
import yaml
from package_helpers import UBUNTU_CORE, run_invoke

from kairos_distro import ledger, naming, promote, publish, release, sign
from kairos_distro.config import Cell, Release
from kairos_distro.registry import OCI_MANIFEST, Descriptor, manifest_bytes
from kairos_distro.runner import Runner
from kairos_distro.tagformat import TagFormats

SIGNING = {
    "enabled": True,
    "identity": "me@example.com",
    "issuer": "https://github.com/login/oauth",
}
K3S = {"provider": "k3s", "provider_version": "v1.35.1+k3s1"}

TAGS = TagFormats()  # the default: Kairos's factory convention


# -- pure: which tags ---------------------------------------------------------------------


def identity(**changes: Any) -> naming.Identity:
    return dataclasses.replace(UBUNTU_CORE, **changes)


@pytest.mark.parametrize(
    "ident",
    [
        identity(),
        identity(variant="standard", provider="k3s", provider_version="v1.35.1+k3s1"),
        identity(arch="arm64", model="nvidia-jetson-agx-orin", trusted_boot=True, fips=True),
        identity(version="v1.2.0-rc.1+build-7", provider="k0s", provider_version="v1.35.1+k0s.0"),
        identity(flavor_release="stream10", version="v2.0.0-edge"),
    ],
    ids=["core", "k3s", "jetson-uki-fips", "prerelease-k0s", "version-naming-a-channel"],
)
def test_channel_tags_follow_the_channel_format(make_release, ident) -> None:
    rel = make_release(channels=["edge", "stable", "lts"])
    record = {"identity": ident.record()}
    assert promote.channel_tags(rel, record, "edge", "stable") == (
        naming.channel_tag(ident, TAGS, "edge"),
        naming.channel_tag(ident, TAGS, "stable"),
    )
    # From a channel that is not the one publish moves: stable -> lts.
    assert promote.channel_tags(rel, record, "stable", "lts") == (
        naming.channel_tag(ident, TAGS, "stable"),
        naming.channel_tag(ident, TAGS, "lts"),
    )


def test_channel_tags_examples(make_release) -> None:
    ident = identity(variant="standard", provider="k3s", provider_version="v1.35.1+k3s1")
    record = {"identity": ident.record()}
    assert promote.channel_tags(make_release(), record, "edge", "stable") == (
        "24.04-standard-amd64-generic-edge-k3s-v1.35.1-k3s1",
        "24.04-standard-amd64-generic-stable-k3s-v1.35.1-k3s1",
    )
    # release.yaml's format as it is now names the tags, whatever the record's tags were.
    own = make_release(tags={"image": "{arch}-{version}", "channel": "{arch}-{channel}[-{uki}]"})
    assert promote.channel_tags(own, record, "edge", "stable") == ("amd64-edge", "amd64-stable")


@pytest.mark.parametrize(
    "record",
    [
        {"tags": ["24.04-core-amd64-generic-v0.1.0", "24.04-core-amd64-generic-edge"]},
        {"identity": "ubuntu"},
        {"identity": {**identity().record(), "fips": "no"}},
        {"identity": {k: v for k, v in identity().record().items() if k != "arch"}},
    ],
    ids=["written-before-tag-formats", "not-a-mapping", "wrong-type", "missing-field"],
)
def test_channel_tags_refuse_a_record_without_an_identity(make_release, record) -> None:
    with pytest.raises(promote.PromoteError, match="`invoke release` rewrites it"):
        promote.channel_tags(make_release(), record, "edge", "stable")


@pytest.mark.parametrize(
    "channels, from_ch, to_ch, reason",
    [
        (("edge", "stable"), "edge", "nightly", "--to nightly is not a listed channel"),
        (("edge", "stable"), "beta", "stable", "--from beta is not a listed channel"),
        (("edge", "stable"), "edge", "edge", "--from and --to are both edge"),
        (("edge", "stable"), "edge", "stabel", r"\(edge, stable\); did you mean stable\?$"),
        (("edge", "stable"), "edge", "Stable", r"--to Stable .*; did you mean stable\?$"),
        (("edge", "stable"), "", "stable", "--from is required"),
        ((), "edge", "stable", "channels: none listed"),
    ],
)
def test_check_channels_refusals(channels, from_ch, to_ch, reason) -> None:
    with pytest.raises(promote.PromoteError, match=reason):
        promote.check_channels(channels, from_ch, to_ch)


def test_check_channels_accepts_listed_channels() -> None:
    promote.check_channels(("edge", "stable", "lts"), "stable", "lts")


# -- control flow, with an in-memory registry ------------------------------------------------


class MemoryRegistry:
    """Manifests and blobs by repository; records every tag written."""

    host = "ghcr.io"

    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.puts: list[tuple[str, str]] = []

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str] | None:
        found = self.manifests.get((repo, reference))
        if found is None:
            return None
        body, media_type = found
        return body, media_type, f"sha256:{hashlib.sha256(body).hexdigest()}"

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        self.manifests[(repo, reference)] = self.manifests[(repo, digest)] = (body, media_type)
        self.puts.append((repo, reference))
        return digest

    def push_bytes(self, repo: str, data: bytes, media_type: str) -> Descriptor:
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        self.blobs[digest] = data
        return Descriptor(media_type, digest, len(data))

    def get_blob(self, repo: str, digest: str) -> bytes:
        return self.blobs[digest]

    def digest_of(self, repo: str, reference: str) -> str | None:
        found = self.get_manifest(repo, reference)
        return found[2] if found else None


def expected_identity(rel: Release, cell: Cell) -> naming.Identity:
    return naming.Identity(
        flavor="ubuntu",
        flavor_release="24.04",
        variant=cell.variant,
        arch=cell.arch,
        model=cell.model,
        version=rel.version,
        provider=cell.provider or "",
        provider_version=cell.provider_version or "",
    )


def released(fake: MemoryRegistry, rel: Release, cell: Cell, content: str = "image") -> str:
    """What `invoke release` leaves: the image by digest, its tags, and the record."""
    ident = expected_identity(rel, cell)
    repository = naming.repository(rel, ident)
    repo = naming.image(rel, ident).repository
    body = manifest_bytes({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "x": content})
    digest = fake.put_manifest(
        repo, f"sha256:{hashlib.sha256(body).hexdigest()}", body, OCI_MANIFEST
    )
    tags = [naming.image_tag(ident, rel.tags), naming.channel_tag(ident, rel.tags, rel.channels[0])]
    publish.move_tags(fake, repo, digest, tags)  # type: ignore[arg-type]
    record = ledger.release_record(cell, "stamp", rel.version, repository, digest, tags, [])
    record["identity"] = ident.record()  # as publish keeps it
    ledger.write_record(fake, rel, cell, record)  # type: ignore[arg-type]
    fake.puts.clear()
    return digest


@pytest.fixture
def rel(make_release) -> Release:
    return make_release(
        {"arch": "amd64"}, {"arch": "arm64", **K3S}, channels=["edge", "stable"], signing=SIGNING
    )


@pytest.fixture
def verified(monkeypatch) -> list[tuple[str, str]]:
    """sign.verify_image accepting every digest; the calls it saw."""
    calls: list[tuple[str, str]] = []

    def verify(sigstore, registry, repo, digest) -> None:
        calls.append((repo, digest))

    monkeypatch.setattr(sign, "verify_image", verify)
    return calls


def run(rel: Release, fake: MemoryRegistry, sigstore: sign.Sigstore | None, *, dry: bool = False):
    out = io.StringIO()
    runner = Runner(dry=dry, out=out)

    def act(cell: Cell) -> str:
        done = promote.promote_cell(
            runner, rel, cell, "edge", "stable", sigstore, lambda host: fake
        )
        return done.ref if done else "dry run"

    return release.for_each_cell(runner, list(rel.cells), "promote", act), out.getvalue()


def stable_tag(rel: Release, cell: Cell) -> str:
    return naming.channel_tag(expected_identity(rel, cell), rel.tags, "stable")


def test_verified_digest_gets_the_to_tag(rel, verified) -> None:
    fake = MemoryRegistry()
    digests = [released(fake, rel, cell, cell.id) for cell in rel.cells]
    outcomes, out = run(rel, fake, sign.Sigstore(rel.signing))
    assert [o.ok for o in outcomes] == [True, True]
    for cell, digest in zip(rel.cells, digests, strict=True):
        assert fake.digest_of("my-org/ubuntu", stable_tag(rel, cell)) == digest
    assert verified == [("my-org/ubuntu", d) for d in digests]
    assert fake.puts == [("my-org/ubuntu", stable_tag(rel, cell)) for cell in rel.cells]
    assert f"[{rel.cells[0].id}] verified signature of ghcr.io/my-org/ubuntu@{digests[0]}" in out


def test_promotes_what_the_from_tag_carries_now(rel, verified) -> None:
    fake = MemoryRegistry()
    cell = rel.cells[0]
    released(fake, rel, cell, "old")
    # A later `invoke publish` moved edge without a new record: edge's digest wins.
    body = manifest_bytes({"schemaVersion": 2, "x": "newer"})
    edge = naming.channel_tag(expected_identity(rel, cell), rel.tags, "edge")
    newer = fake.put_manifest("my-org/ubuntu", edge, body, OCI_MANIFEST)
    fake.puts.clear()
    outcomes, _ = run(rel, fake, sign.Sigstore(rel.signing))
    assert outcomes[0].ok
    assert fake.digest_of("my-org/ubuntu", stable_tag(rel, cell)) == newer
    assert verified[0] == ("my-org/ubuntu", newer)


def test_docker_hub_records_are_read_at_its_api_host(make_release, verified) -> None:
    rel = make_release({"arch": "amd64"}, registry="docker.io", channels=["edge", "stable"])
    fake, hosts = MemoryRegistry(), []

    def registry_for(host: str) -> MemoryRegistry:
        hosts.append(host)
        return fake

    released(fake, rel, rel.cells[0])
    done = promote.promote_cell(
        Runner(out=io.StringIO()), rel, rel.cells[0], "edge", "stable", None, registry_for
    )
    assert done is not None
    assert hosts == ["registry-1.docker.io", "registry-1.docker.io"]


def test_unverified_digest_moves_no_tag(rel, monkeypatch) -> None:
    def refuse(sigstore, registry, repo, digest) -> None:
        raise sign.SignError(f"no signature attached to ghcr.io/{repo}@{digest}")

    monkeypatch.setattr(sign, "verify_image", refuse)
    fake = MemoryRegistry()
    for cell in rel.cells:
        released(fake, rel, cell, cell.id)
    outcomes, out = run(rel, fake, sign.Sigstore(rel.signing))
    assert [o.ok for o in outcomes] == [False, False]
    assert fake.puts == []
    for outcome in outcomes:
        assert outcome.error is not None
        assert outcome.error.step == "promote"
        assert outcome.error.reason.startswith("no signature attached to ghcr.io/my-org/ubuntu@")
    assert "FAILED promote: no signature attached" in out


def test_signing_off_promotes_without_verifying(make_release, monkeypatch) -> None:
    def never(*args: Any) -> None:
        raise AssertionError("verified with signing off")

    monkeypatch.setattr(sign, "verify_image", never)
    rel = make_release({"arch": "amd64"}, channels=["edge", "stable"])
    assert not rel.signing.enabled
    fake = MemoryRegistry()
    digest = released(fake, rel, rel.cells[0])
    outcomes, _ = run(rel, fake, None)
    assert outcomes[0].ok
    assert outcomes[0].detail == f"ghcr.io/my-org/ubuntu@{digest}"
    assert fake.digest_of("my-org/ubuntu", stable_tag(rel, rel.cells[0])) == digest


def test_a_cell_never_released_fails_alone(rel, verified) -> None:
    fake = MemoryRegistry()
    digest = released(fake, rel, rel.cells[1])  # only the second cell has a record
    outcomes, _ = run(rel, fake, sign.Sigstore(rel.signing))
    assert [o.ok for o in outcomes] == [False, True]
    error = outcomes[0].error
    assert error is not None
    assert error.step == "promote"
    assert error.reason == (
        "never released: no release record "
        f"ghcr.io/my-org/my-org-kairos-ubuntu:release-{rel.cells[0].id}"
    )
    assert fake.digest_of("my-org/ubuntu", stable_tag(rel, rel.cells[1])) == digest


@pytest.mark.parametrize(
    "change, reason",
    [
        (
            {"identity": None},  # written before release.yaml had tag formats
            "the release record keeps no identity of the image: `invoke release` rewrites it",
        ),
        ({"image": "ghcr.io/my-org/ubuntu:v1"}, "the release record names no image by digest"),
    ],
)
def test_a_record_without_identity_or_digest_fails_the_cell(rel, verified, change, reason) -> None:
    fake = MemoryRegistry()
    cell = rel.cells[0]
    released(fake, rel, cell)
    record = ledger.read_record(fake, rel, cell)  # type: ignore[arg-type]
    assert record is not None
    ledger.write_record(fake, rel, cell, {**record, **change})  # type: ignore[arg-type]
    fake.puts.clear()
    outcomes, _ = run(rel, fake, sign.Sigstore(rel.signing))
    assert outcomes[0].detail.startswith(f"{cell.id}: promote: {reason}")
    assert fake.puts == []


def test_a_missing_from_tag_fails_the_cell(rel, verified) -> None:
    fake = MemoryRegistry()
    cell = rel.cells[0]
    released(fake, rel, cell)
    edge = naming.channel_tag(expected_identity(rel, cell), rel.tags, "edge")
    del fake.manifests[("my-org/ubuntu", edge)]
    outcomes, _ = run(rel, fake, sign.Sigstore(rel.signing))
    assert not outcomes[0].ok
    assert (
        outcomes[0].detail
        == f"{cell.id}: promote: ghcr.io/my-org/ubuntu:{edge} is not in the registry"
    )
    assert fake.puts == []
    assert verified == []


def test_dry_promote_reads_and_verifies_but_writes_nothing(rel, verified) -> None:
    fake = MemoryRegistry()
    digest = released(fake, rel, rel.cells[0])
    outcomes, out = run(rel, fake, sign.Sigstore(rel.signing), dry=True)
    assert outcomes[0].ok
    assert fake.puts == []
    assert verified[0] == ("my-org/ubuntu", digest)
    edge = naming.channel_tag(expected_identity(rel, rel.cells[0]), rel.tags, "edge")
    assert (
        f"[{rel.cells[0].id}] would tag ghcr.io/my-org/ubuntu@{digest} ({edge}) "
        f"as {stable_tag(rel, rel.cells[0])}"
    ) in out


# -- the task refuses bad channels before touching any registry ---------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--from", "edge", "--to", "nightly"],
            "--to nightly is not a listed channel (edge, stable)",
        ),
        (["--from", "edge", "--to", "edge"], "--from and --to are both edge"),
    ],
)
def test_invoke_promote_refuses_channels(tmp_path, release_data, args, message) -> None:
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump({**release_data, "channels": ["edge", "stable"]}))
    run_ = run_invoke(
        "promote",
        *args,
        "--release-file",
        str(path),
        env={"DOCKER_HOST": "unix:///nonexistent.sock"},
    )
    assert run_.returncode == 2
    assert run_.stderr.splitlines() == [f"promote: {path}: {message}"]

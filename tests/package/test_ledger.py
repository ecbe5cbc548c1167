"""The ledger's decisions as pure functions: what a store holds and the current key in,
redo or not and the reason a summary shows out."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from kairos_distro import ledger
from kairos_distro.registry import RegistryError

KEY = "k" * 32
IMAGE = "ghcr.io/my-org/ubuntu@sha256:" + "1234567890ab" + "c" * 52
NAMED = {
    "base": "sha256:" + "1" * 64,
    "kairos_init": "sha256:" + "2" * 64,
    "auroraboot": "sha256:" + "3" * 64,
    "context": "c" * 32,
    "build": "b" * 32,
    "media": "m" * 32,
    "boot": "o" * 32,
}


def record(**changes: object) -> dict[str, object]:
    return {"fingerprint": KEY, "version": "v0.1.0", "image": IMAGE, "inputs": NAMED, **changes}


def test_published_key_that_names_its_image_is_skipped_with_version_and_digest() -> None:
    decision = ledger.decide(record(), KEY, NAMED)
    assert not decision.redo
    assert str(decision) == "skipped: inputs unchanged since v0.1.0 (sha256:1234567890ab…)"


@pytest.mark.parametrize(
    "moved, said",
    [
        ({"base": "sha256:" + "9" * 64}, "base image digest changed"),
        ({"context": "x" * 32}, "Dockerfile or overlay changed"),
        ({"boot": "x" * 32}, "boot checks changed"),
        (
            {"base": "x", "auroraboot": "y", "boot": "z"},
            "base image digest, AuroraBoot digest and boot checks changed",
        ),
    ],
    ids=["base", "context", "boot", "three"],
)
def test_another_key_names_the_inputs_that_moved(moved, said) -> None:
    decision = ledger.decide(record(fingerprint="0" * 32), KEY, {**NAMED, **moved})
    assert decision.redo
    assert str(decision) == f"released: {said} since v0.1.0"


def test_a_record_from_before_named_inputs_says_inputs() -> None:
    old = record(fingerprint="0" * 32)
    del old["inputs"]
    assert str(ledger.decide(old, KEY, NAMED)) == "released: inputs changed since v0.1.0"


@pytest.mark.parametrize(
    "found, said",
    [
        (None, "never released"),
        (
            record(image="ghcr.io/my-org/ubuntu:v0.1.0"),
            "the record of v0.1.0 names no image by digest",
        ),
        (record(image=42, version=None), "the record of the last release names no image by digest"),
    ],
    ids=["never", "tag", "number"],
)
def test_no_usable_record_means_release(found, said) -> None:
    decision = ledger.decide(found, KEY, NAMED)
    assert (decision.redo, decision.reason) == (True, said)


def test_force_releases_whatever_the_record_says() -> None:
    assert str(ledger.decide(record(), KEY, NAMED, force=True)) == "released: forced (--force)"


def test_unreadable_and_unverified_records_release_and_say_why() -> None:
    err = RegistryError("registry ghcr.io unreachable")
    assert str(ledger.unreadable(err)) == (
        "released: release record unreadable (registry ghcr.io unreachable)"
    )
    assert ledger.unverified(record(), err).redo


@pytest.mark.parametrize(
    "label, force, redo, said",
    [
        (None, False, True, "rebuilt: no local build"),
        ("", False, True, "rebuilt: the local build has other inputs"),
        ("0" * 32, False, True, "rebuilt: the local build has other inputs"),
        (KEY, False, False, "reused build: image label matches"),
        (KEY, True, True, "rebuilt: forced (--force)"),
    ],
)
def test_decide_build(label, force, redo, said) -> None:
    decision = ledger.decide_build(label, KEY, force)
    assert (decision.redo, str(decision)) == (redo, said)


@pytest.mark.parametrize(
    "text, complete, redo, said",
    [
        (None, True, True, "none made yet"),
        ("0" * 32 + "\n", True, True, "made from other inputs"),
        (f"{KEY}\nskipped: no socket\n", True, True, "boot media were skipped when they were made"),
        (f"{KEY}\n", False, True, "files are missing"),
        (f"{KEY}\n", True, False, "fingerprint matches"),
    ],
)
def test_decide_media(text, complete, redo, said) -> None:
    decision = ledger.decide_media(text, KEY, complete)
    assert (decision.redo, decision.reason) == (redo, said)


@pytest.mark.parametrize(
    "text, redo, said",
    [
        (None, True, "no passed boot test of this release key"),
        ("0" * 32 + "\npassed\n", True, "no passed boot test of this release key"),
        (f"{KEY}\npassed (kvm, 2 checks, 30 s)\n", False, "passed (kvm, 2 checks, 30 s)"),
        (f"{KEY}\n\n", False, "passed"),
        (KEY, False, "passed"),
    ],
)
def test_decide_boot(text, redo, said) -> None:
    decision = ledger.decide_boot(text, KEY)
    assert (decision.redo, decision.reason) == (redo, said)
    assert ledger.decide_boot(text, KEY, force=True).redo


def test_stores_round_trip(tmp_path: Path) -> None:
    assert ledger.read_media_stamp(tmp_path) is None
    ledger.write_media_stamp(tmp_path, KEY)
    assert not ledger.decide_media(ledger.read_media_stamp(tmp_path), KEY, True).redo
    ledger.write_media_stamp(tmp_path, KEY, skipped="no socket")
    assert ledger.decide_media(ledger.read_media_stamp(tmp_path), KEY, True).redo
    ledger.write_boot(tmp_path, KEY, "passed (tcg, 2 checks, 42 s)")
    assert (
        ledger.decide_boot(ledger.read_boot(tmp_path), KEY).reason == "passed (tcg, 2 checks, 42 s)"
    )


def test_keys_are_32_hex_and_follow_their_inputs() -> None:
    media = ledger.media_stamp(KEY, ledger.media_inputs(("iso",)))
    assert re.fullmatch(r"[0-9a-f]{32}", media)
    # The db key shapes UKIs only; the tag formats name the image in its SBOM.
    assert ledger.media_stamp(KEY, ledger.media_inputs(("iso",), "cert")) == media
    uki = [ledger.media_stamp(KEY, ledger.media_inputs(("uki",), c)) for c in "ab"]
    assert uki[0] != uki[1]
    tagged = ledger.media_stamp(KEY, ledger.media_inputs(("iso",), "", {"version": "x"}))
    assert tagged != media
    boot = ledger.boot_inputs(True, [], "login:", b"#cloud-config\n")
    assert ledger.release_key(media, boot) != ledger.release_key(media, [False, *boot[1:]])


def test_inputs_name_every_part_of_the_keys() -> None:
    fingerprint = {
        "cell": "amd64-generic",
        "build_args": {"MODEL": "generic"},
        "labels": {},
        "digests": {k: NAMED[k] for k in ("base", "kairos_init", "auroraboot")},
        "tree": {"Dockerfile": "x"},
    }
    named = ledger.inputs(fingerprint, ledger.media_inputs(["iso"]), ["boot"])
    assert list(named) == list(ledger.INPUT_NAMES)
    moved = ledger.inputs(
        {**fingerprint, "tree": {"Dockerfile": "y"}}, ledger.media_inputs(["iso"]), ["boot"]
    )
    assert ledger.changed(named, moved) == "Dockerfile or overlay"


@pytest.mark.parametrize(
    ("registry", "host"),
    [
        ("docker.io", "registry-1.docker.io"),
        ("ghcr.io", "ghcr.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
    ],
)
def test_records_live_at_the_registry_api_host(make_release, registry: str, host: str) -> None:
    """Records go where the images go: Docker Hub's API answers at registry-1.docker.io."""
    assert ledger.records_registry(make_release(registry=registry)).host == host


# -- refresh: newer packages and `always` make a fresh image --------------------------------
@dataclass(frozen=True)
class Update:
    """What freshness.probe finds; the ledger only words it."""

    name: str
    installed: str
    candidate: str

    def __str__(self) -> str:
        return f"{self.name} {self.installed} -> {self.candidate}"


def test_refresh_always_releases_a_published_key_as_a_fresh_image() -> None:
    decision = ledger.decide(record(), KEY, NAMED, refresh="always")
    assert (decision.redo, str(decision), decision.fresh) == (
        True,
        "released: refresh: always",
        "refresh: always",
    )
    moved = ledger.decide(
        record(fingerprint="0" * 32), KEY, {**NAMED, "build": "x"}, refresh="always"
    )
    assert str(moved) == "released: build args changed since v0.1.0" and moved.fresh


@pytest.mark.parametrize("mode", ["packages", "inputs"])
def test_other_modes_skip_a_published_key(mode) -> None:
    decision = ledger.decide(record(), KEY, NAMED, refresh=mode)
    assert not decision.redo and not decision.fresh


def test_package_updates_release_and_name_the_first_three() -> None:
    updates = [Update(f"lib{i}", "1.0-1", "1.0-2") for i in range(5)]
    one = ledger.updated(record(), updates[:1])
    assert str(one) == "released: package updates since v0.1.0: lib0 1.0-1 -> 1.0-2"
    assert one.fresh == "newer packages"
    five = ledger.updated(record(), updates)
    assert str(five).endswith(
        "lib0 1.0-1 -> 1.0-2, lib1 1.0-1 -> 1.0-2, lib2 1.0-1 -> 1.0-2 (+2 more)"
    )


def test_a_record_without_an_sbom_releases_once_to_start_probing() -> None:
    decision = ledger.unprobed(record())
    assert str(decision) == "released: the record of v0.1.0 keeps no SBOM to check packages against"
    assert decision.fresh


def test_fresh_redoes_build_media_and_boot_with_its_reason() -> None:
    assert str(ledger.decide_build(KEY, KEY, fresh="newer packages")) == "rebuilt: newer packages"
    media = ledger.decide_media(f"{KEY}\n", KEY, True, fresh="refresh: always")
    assert str(media) == "remade media: refresh: always"
    assert str(ledger.decide_boot(f"{KEY}\npassed\n", KEY, fresh="x")) == "booted: x"


# -- the record keeps its SBOM --------------------------------------------------------------
SBOM = b'{"bomFormat": "CycloneDX", "components": []}\n'


def test_a_record_keeps_its_sbom_as_a_second_layer(make_release) -> None:
    from memory_registry import MemoryRegistry

    rel = make_release(namespace="ns", name="distro")
    cell, fake = rel.cells[0], MemoryRegistry()
    kept = record(sbom={"x.cdx.json": hashlib.sha256(SBOM).hexdigest()})
    ledger.write_record(fake, rel, cell, kept, SBOM)  # type: ignore[arg-type]
    manifest = json.loads(fake.manifests[f"release-{cell.id}"][0])
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        ledger.RECORD_TYPE,
        ledger.SBOM_TYPE,
    ]
    found = ledger.read_record(fake, rel, cell)  # type: ignore[arg-type]
    assert found == kept
    assert ledger.read_sbom(fake, rel, cell, found) == SBOM.decode()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sbom", [None, {}, {"a": "b"}, {"x.cdx.json": "0" * 64}, {"a": "0" * 64, "b": "1" * 64}]
)
def test_a_record_that_names_no_kept_sbom_has_none(make_release, sbom) -> None:
    from memory_registry import MemoryRegistry

    rel = make_release(namespace="ns", name="distro")
    kept = record() if sbom is None else record(sbom=sbom)
    assert ledger.read_sbom(MemoryRegistry(), rel, rel.cells[0], kept) is None  # type: ignore[arg-type]


def test_an_sbom_blob_that_is_not_the_named_one_is_an_error(make_release) -> None:
    from memory_registry import MemoryRegistry

    rel = make_release(namespace="ns", name="distro")
    fake, named = MemoryRegistry(), hashlib.sha256(SBOM).hexdigest()
    fake.blobs[f"sha256:{named}"] = b"something else"
    with pytest.raises(RegistryError, match="served another SBOM"):
        ledger.read_sbom(fake, rel, rel.cells[0], record(sbom={"x": named}))  # type: ignore[arg-type]


def test_the_syft_that_writes_the_sbom_shapes_the_media_stamp() -> None:
    plain = ledger.media_stamp(KEY, ledger.media_inputs(("iso",)))
    syft = [ledger.media_stamp(KEY, ledger.media_inputs(("iso",), "", None, s)) for s in "ab"]
    assert syft[0] != syft[1]
    assert plain not in syft
    assert ledger.media_inputs(("iso",), "", None, "") == ledger.media_inputs(("iso",))
    assert ledger.media_inputs(("raw",), "", None, "syft:v1")["syft"] == "syft:v1"

"""Boot media per cell (ISO, raw disk image, UKI ISO), their names, and the raw image artifact.

A raw disk image is published beside its image as `<tag>-img`: a one-layer
OCI image holding /artifacts/<name>.raw, as kairos-factory-action pushes it.
The registry here lives in memory, so the tests read back exactly what a
registry would have stored.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from memory_registry import MemoryRegistry, sha
from package_helpers import ROOT, UBUNTU_CORE

from kairos_distro import artifacts, cells, config, ledger, naming, publish, ref
from kairos_distro.config import Cell, ConfigError
from kairos_distro.registry import OCI_MANIFEST, manifest_bytes
from kairos_distro.tagformat import TagFormats

HOST = "registry.test"
REPO = "ns/distro"
K3S = {"provider": "k3s", "provider_version": "v1.35.1+k3s1"}
BOARD = {"arch": "arm64", "model": "rpi4"}
STANDARD_K3S = dataclasses.replace(
    UBUNTU_CORE, variant="standard", provider="k3s", provider_version="v1.35.1+k3s1"
)
BASE = "kairos-ubuntu-24.04-core-amd64-generic-v0.1.0"

TAGS = TagFormats()  # the default: Kairos's factory convention


def refused(make_release, *cells: dict[str, Any], **top: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        make_release(*cells, **top)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# -- config: which media a cell gets ------------------------------------------------------


@pytest.mark.parametrize(
    "cell, media",
    [
        ({"arch": "amd64"}, ("iso",)),
        ({"arch": "amd64", "raw": False}, ("iso",)),
        ({"arch": "amd64", "raw": True}, ("iso", "raw")),
        ({"arch": "riscv64", "raw": True, **K3S}, ("iso", "raw")),
        (BOARD, ("raw",)),
        ({**BOARD, "raw": True}, ("raw",)),
        ({**BOARD, "raw": False}, ()),
        ({"arch": "arm64", "model": "nvidia-jetson-thor"}, ("raw",)),
        ({"arch": "amd64", "trusted_boot": True}, ("uki",)),
        ({"arch": "amd64", "trusted_boot": True, "raw": False}, ("uki",)),
        ({"arch": "amd64", "trusted_boot": True, "fips": True}, ("uki",)),
    ],
)
def test_cell_media(make_release, cell: dict[str, Any], media: tuple[str, ...]) -> None:
    [parsed] = make_release(cell, base_image="debian:13").cells  # FIPS: not on Ubuntu
    assert parsed.media == media
    assert parsed.board == (cell.get("model", "generic") != "generic")


def test_cell_raw_is_unset_unless_given(make_release) -> None:
    generic, board, yes, no = make_release(
        {"arch": "amd64"},
        BOARD,
        {"arch": "arm64", "raw": True},
        {"arch": "riscv64", "raw": False},
    ).cells
    assert (generic.raw, board.raw, yes.raw, no.raw) == (None, None, True, False)
    assert Cell(arch="amd64").raw is None and Cell(arch="amd64").media == ("iso",)


def test_raw_does_not_change_the_cell_id(make_release) -> None:
    # The raw image travels with its cell's image; it is not a cell of its own.
    plain, raw = make_release({"arch": "amd64"}, {"arch": "amd64", "raw": True, **K3S}).cells
    assert plain.id == "amd64-generic"
    assert raw.id == "amd64-generic-k3s-v1.35.1-k3s1"
    message = refused(make_release, {"arch": "amd64"}, {"arch": "amd64", "raw": True})
    assert message == "release.yaml: cells[1]: duplicate of cell amd64-generic (cells[0])"


def test_trusted_boot_with_raw_is_refused(make_release) -> None:
    message = refused(make_release, {"arch": "amd64", "trusted_boot": True, "raw": True})
    assert message == (
        "release.yaml: cells[0].raw: trusted-boot cells ship a signed UKI ISO, not a raw disk image"
    )
    message = refused(
        make_release, {"arch": "amd64"}, {"arch": "arm64", "trusted_boot": True, "raw": True}
    )
    assert message.startswith("release.yaml: cells[1].raw: trusted-boot cells ship")


def test_trusted_boot_with_raw_is_refused_from_a_file(write_release, release_data) -> None:
    release_data["cells"][0].update(trusted_boot=True, raw=True)
    path = write_release(release_data)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert str(caught.value) == (
        f"{path}: cells[0].raw: trusted-boot cells ship a signed UKI ISO, not a raw disk image"
    )
    assert cells.cell_problems(Cell(arch="amd64", trusted_boot=True, raw=True), "ubuntu:24.04") == [
        ("raw", "trusted-boot cells ship a signed UKI ISO, not a raw disk image")
    ]
    assert (
        cells.cell_problems(Cell(arch="amd64", trusted_boot=True, raw=False), "ubuntu:24.04") == []
    )


@pytest.mark.parametrize(
    "value, shown",
    [("yes", '"yes"'), ("true", '"true"'), (1, "1"), (0, "0"), (None, "null"), ([True], "[true]")],
)
def test_raw_must_be_a_boolean(make_release, value: Any, shown: str) -> None:
    message = refused(make_release, {"arch": "amd64", "raw": value})
    assert message == f"release.yaml: cells[0].raw: expected true or false, got {shown}"


def test_raw_names_the_cell(make_release) -> None:
    message = refused(make_release, {"arch": "amd64"}, {**BOARD, "raw": "no"})
    assert message == 'release.yaml: cells[1].raw: expected true or false, got "no"'


@pytest.mark.parametrize(
    "value, shown", [(1, "1"), ("yes", '"yes"'), ("false", '"false"'), (None, "null")]
)
def test_publish_raw_must_be_a_boolean(make_release, value: Any, shown: str) -> None:
    message = refused(make_release, publish_raw=value)
    assert message == f"release.yaml: publish_raw: expected true or false, got {shown}"


def test_publish_raw_defaults_to_true(make_release, release_data) -> None:
    assert "publish_raw" not in release_data
    assert make_release().publish_raw is True
    assert make_release(publish_raw=True).publish_raw is True
    assert make_release(publish_raw=False).publish_raw is False


def test_yaml_spellings_of_raw(write_release, release_data) -> None:
    text = yaml.safe_dump(release_data, sort_keys=False)
    text = text.replace("  fips: false\n", "  fips: false\n  raw: yes\n") + "publish_raw: no\n"
    # YAML 1.1 (PyYAML) reads unquoted yes/no as booleans, as users write them.
    rel = config.load(write_release(text))
    assert rel.cells[0].raw is True and rel.publish_raw is False
    assert rel.cells[0].media == ("iso", "raw")
    quoted = text.replace("raw: yes", 'raw: "yes"')
    with pytest.raises(ConfigError) as caught:
        config.load(write_release(quoted))
    assert str(caught.value).endswith('cells[0].raw: expected true or false, got "yes"')


def test_the_templates_release_yaml_keeps_working() -> None:
    text = (ROOT / "release.yaml").read_text(encoding="utf-8")
    rel = config.load(ROOT / "release.yaml")
    assert rel.publish_raw is True
    assert "\npublish_raw: true\n" in text
    for cell in rel.cells:
        assert cell.raw is None  # the default per kind of cell, not pinned
        assert cell.media, cell.id
        assert cell.media == (
            ("uki",) if cell.trusted_boot else ("raw",) if cell.board else ("iso",)
        )
    # Every non-trusted cell can add a raw disk image; a trusted one cannot.
    data = yaml.safe_load(text)
    for item in data["cells"]:
        item["raw"] = True
    if any(item.get("trusted_boot") for item in data["cells"]):
        with pytest.raises(ConfigError, match=r"cells\[\d+\]\.raw: trusted-boot cells"):
            config.parse(data)
    else:
        assert all("raw" in c.media for c in config.parse(data).cells)


# -- naming -----------------------------------------------------------------------------------


def test_raw_tag_is_the_image_tag_with_img() -> None:
    assert naming.raw_tag(UBUNTU_CORE, TAGS) == naming.image_tag(UBUNTU_CORE, TAGS) + "-img"
    assert naming.raw_tag(UBUNTU_CORE, TAGS) == "24.04-core-amd64-generic-v0.1.0-img"
    assert (
        naming.raw_tag(STANDARD_K3S, TAGS)
        == "24.04-standard-amd64-generic-v0.1.0-k3s-v1.35.1-k3s1-img"
    )
    fips = dataclasses.replace(UBUNTU_CORE, fips=True)
    assert naming.raw_tag(fips, TAGS) == "24.04-core-amd64-generic-v0.1.0-fips-img"
    assert ref.TAG.match(naming.raw_tag(STANDARD_K3S, TAGS))


def test_media_files() -> None:
    assert naming.media_file(UBUNTU_CORE, "iso") == f"{BASE}.iso"
    assert naming.media_file(UBUNTU_CORE, "raw") == f"{BASE}.raw"
    uki = dataclasses.replace(UBUNTU_CORE, trusted_boot=True)
    assert naming.media_file(uki, "uki") == f"{BASE}-uki.iso"
    assert naming.media_file(uki, "uki").endswith("-uki.iso")
    # AuroraBoot keeps the `+` of the provider version in file names.
    assert naming.media_file(STANDARD_K3S, "raw") == (
        "kairos-ubuntu-24.04-standard-amd64-generic-v0.1.0-k3sv1.35.1+k3s1.raw"
    )
    with pytest.raises(KeyError):
        naming.media_file(UBUNTU_CORE, "qcow2")


def test_naming_sbom_file() -> None:
    assert naming.sbom_file(UBUNTU_CORE) == f"{BASE}.cdx.json"
    assert naming.SBOM_SUFFIX == ".cdx.json"
    uki = dataclasses.replace(UBUNTU_CORE, trusted_boot=True)
    assert naming.sbom_file(uki) == f"{BASE}-uki.cdx.json"


def test_every_kind_of_media_has_a_file_suffix(make_release) -> None:
    cells = make_release(
        {"arch": "amd64", "raw": True}, BOARD, {"arch": "riscv64", "trusted_boot": True}
    ).cells
    kinds = {kind for cell in cells for kind in cell.media}
    assert kinds == {"iso", "raw", "uki"} == set(naming.MEDIA_SUFFIX)
    assert naming.MEDIA_SUFFIX == {"iso": ".iso", "uki": ".iso", "raw": ".raw"}


# -- publish: the raw disk image as an OCI image ---------------------------------------------


RAW_NAME = "kairos-ubuntu-24.04-core-arm64-rpi4-v0.1.0.raw"
RAW_BYTES = bytes(range(256)) * 4099 + b"\x00end of disk"  # > 1 MiB, not block aligned


@pytest.fixture
def raw_image(tmp_path: Path) -> Path:
    path = tmp_path / "artifacts" / "arm64-rpi4" / RAW_NAME
    path.parent.mkdir(parents=True)
    path.write_bytes(RAW_BYTES)
    return path


def pushed(registry: MemoryRegistry, digest: str) -> tuple[dict, bytes, dict, bytes]:
    """(manifest, layer blob, config, manifest bytes) of a pushed raw image."""
    body, media_type = registry.manifests[digest]
    assert media_type == OCI_MANIFEST
    manifest = json.loads(body)
    [layer] = manifest["layers"]
    config_blob = registry.blobs[manifest["config"]["digest"]]
    return manifest, registry.blobs[layer["digest"]], json.loads(config_blob), body


@pytest.mark.parametrize("arch", ["arm64", "amd64"])
def test_push_raw_pushes_a_one_layer_image_holding_the_file(raw_image: Path, arch: str) -> None:
    registry = MemoryRegistry()
    digest = publish.push_raw(registry, REPO, raw_image, arch)
    manifest, layer_blob, image_config, body = pushed(registry, digest)

    assert digest == sha(body)
    assert body == manifest_bytes(manifest)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == OCI_MANIFEST
    assert "annotations" not in manifest
    assert manifest["config"]["mediaType"] == publish.CONFIG_TYPE
    [layer] = manifest["layers"]
    assert layer == {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": sha(layer_blob),
        "size": len(layer_blob),
    }
    config_blob = registry.blobs[manifest["config"]["digest"]]
    assert manifest["config"]["size"] == len(config_blob)

    # Blobs first, the manifest by digest last; no tag is written here.
    assert registry.log == [
        ("blob", layer["digest"]),
        ("blob", manifest["config"]["digest"]),
        ("manifest", digest),
    ]
    assert list(registry.manifests) == [digest]

    # A gzip layer with a fixed header time, holding artifacts/ and the file.
    assert layer_blob[:2] == b"\x1f\x8b"
    assert layer_blob[4:8] == b"\x00\x00\x00\x00"
    tar_bytes = gzip.decompress(layer_blob)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["artifacts", f"artifacts/{RAW_NAME}"]
        folder, file = members
        assert folder.isdir() and folder.mode == 0o755
        assert file.isfile() and file.size == len(RAW_BYTES)
        assert (file.mtime, file.uid, file.gid, file.uname, file.gname) == (0, 0, 0, "", "")
        extracted = tar.extractfile(file)
        assert extracted is not None and extracted.read() == RAW_BYTES

    assert image_config["architecture"] == arch
    assert image_config["os"] == "linux"
    assert image_config["rootfs"] == {"type": "layers", "diff_ids": [sha(tar_bytes)]}
    assert image_config["config"]["Labels"] == {"io.kairos.artifact": RAW_NAME}
    assert config_blob == manifest_bytes(image_config)


def test_push_raw_is_reproducible(raw_image: Path, tmp_path: Path) -> None:
    registry = MemoryRegistry()
    first = publish.push_raw(registry, REPO, raw_image, "arm64")
    assert publish.push_raw(registry, REPO, raw_image, "arm64") == first
    # Another time stamp, another directory: the same bytes under the same name.
    os.utime(raw_image, (1_700_000_000, 1_700_000_000))
    again = tmp_path / "elsewhere" / RAW_NAME
    again.parent.mkdir()
    again.write_bytes(RAW_BYTES)
    os.utime(again, (1_600_000_000, 1_600_000_000))
    assert publish.push_raw(MemoryRegistry(), REPO, raw_image, "arm64") == first
    assert publish.push_raw(MemoryRegistry(), REPO, again, "arm64") == first


def test_push_raw_digest_ignores_file_permissions(raw_image: Path) -> None:
    # The same disk image made under another umask is the same artifact.
    raw_image.chmod(0o644)
    first = publish.push_raw(MemoryRegistry(), REPO, raw_image, "arm64")
    raw_image.chmod(0o600)
    assert publish.push_raw(MemoryRegistry(), REPO, raw_image, "arm64") == first


def test_push_raw_digest_follows_content_name_and_arch(raw_image: Path, tmp_path: Path) -> None:
    first = publish.push_raw(MemoryRegistry(), REPO, raw_image, "arm64")
    assert publish.push_raw(MemoryRegistry(), REPO, raw_image, "amd64") != first
    renamed = tmp_path / "renamed.raw"
    renamed.write_bytes(RAW_BYTES)
    assert publish.push_raw(MemoryRegistry(), REPO, renamed, "arm64") != first
    raw_image.write_bytes(RAW_BYTES[:-1] + b"!")
    assert publish.push_raw(MemoryRegistry(), REPO, raw_image, "arm64") != first


def test_push_raw_of_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    registry = MemoryRegistry()
    _, layer_blob, image_config, _ = pushed(
        registry, publish.push_raw(registry, REPO, empty, "amd64")
    )
    tar_bytes = gzip.decompress(layer_blob)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        assert [(m.name, m.size) for m in tar.getmembers()] == [
            ("artifacts", 0),
            ("artifacts/empty.raw", 0),
        ]
    assert image_config["rootfs"]["diff_ids"] == [sha(tar_bytes)]


# -- publish: which raw image is pushed, and what a release record adds -----------------------


def cell_dir(artifacts: Path, cell: Cell, *names: str) -> Path:
    directory = artifacts / cell.id
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"x")
    return directory


def test_raw_file_of_a_board(make_release, tmp_path: Path) -> None:
    rel = make_release(BOARD)
    [cell] = rel.cells
    directory = cell_dir(tmp_path, cell, RAW_NAME, RAW_NAME + ".sha256", "x.cdx.json")
    assert publish.raw_file(rel, tmp_path, cell) == directory / RAW_NAME


def test_raw_file_of_a_generic_cell_with_raw(make_release, tmp_path: Path) -> None:
    rel = make_release({"arch": "amd64", "raw": True})
    [cell] = rel.cells
    directory = cell_dir(tmp_path, cell, f"{BASE}.iso", f"{BASE}.raw")
    assert publish.raw_file(rel, tmp_path, cell) == directory / f"{BASE}.raw"


def test_raw_file_picks_one_file_in_name_order(make_release, tmp_path: Path) -> None:
    rel = make_release(BOARD)
    [cell] = rel.cells
    directory = cell_dir(tmp_path, cell, "b.raw", "a.raw")
    assert publish.raw_file(rel, tmp_path, cell) == directory / "a.raw"


def test_raw_file_is_none_when_publish_raw_is_off(make_release, tmp_path: Path) -> None:
    rel = make_release(BOARD, publish_raw=False)
    [cell] = rel.cells
    cell_dir(tmp_path, cell, RAW_NAME)
    assert publish.raw_file(rel, tmp_path, cell) is None


@pytest.mark.parametrize(
    "cell",
    [{"arch": "amd64"}, {"arch": "amd64", "trusted_boot": True}, {**BOARD, "raw": False}],
    ids=["iso only", "uki", "board without raw"],
)
def test_raw_file_is_none_for_cells_without_raw_media(
    make_release, tmp_path: Path, cell: dict[str, Any]
) -> None:
    rel = make_release(cell)
    [parsed] = rel.cells
    assert "raw" not in parsed.media
    cell_dir(tmp_path, parsed, "stray.raw")  # a leftover file is not pushed
    assert publish.raw_file(rel, tmp_path, parsed) is None


def test_raw_file_is_none_without_a_file_or_an_artifacts_dir(make_release, tmp_path: Path) -> None:
    rel = make_release(BOARD)
    [cell] = rel.cells
    assert publish.raw_file(rel, None, cell) is None
    assert publish.raw_file(rel, tmp_path, cell) is None  # no artifacts/<cell>/ yet
    cell_dir(tmp_path, cell, "disk.img", RAW_NAME + ".sha256")
    assert publish.raw_file(rel, tmp_path, cell) is None


def test_artifacts_sbom_file(make_release, tmp_path: Path) -> None:
    rel = make_release(BOARD)
    [cell] = rel.cells
    assert artifacts.sbom_file(None, cell) is None
    assert artifacts.sbom_file(tmp_path, cell) is None
    directory = cell_dir(tmp_path, cell, RAW_NAME, "b.cdx.json", "a.cdx.json")
    assert artifacts.sbom_file(tmp_path, cell) == directory / "a.cdx.json"


def test_extras(tmp_path: Path) -> None:
    repository = f"{HOST}/{REPO}"
    digest = "sha256:" + "a" * 64
    bom = tmp_path / f"{BASE}.cdx.json"
    bom.write_text('{"bomFormat": "CycloneDX"}')
    assert ledger.extras(repository, "", None) == {}
    assert ledger.extras(repository, digest, None) == {"raw_image": f"{repository}@{digest}"}
    assert ledger.extras(repository, "", bom) == {
        "sbom": {bom.name: hashlib.sha256(bom.read_bytes()).hexdigest()}
    }
    both = ledger.extras(repository, digest, bom)
    assert both == {
        "raw_image": f"{repository}@{digest}",
        "sbom": {bom.name: hashlib.sha256(b'{"bomFormat": "CycloneDX"}').hexdigest()},
    }
    assert json.loads(json.dumps(both)) == both  # goes into a JSON release record as is

"""`invoke bump`: one pin moves, every other byte of release.yaml stays.

Digests come from a registry double served on 127.0.0.1 (the Registry client
speaks plain HTTP to loopback hosts), so nothing here needs the internet.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import static_http
from package_helpers import ROOT, run_invoke

from kairos_distro import config, pins, yamledit, yamlfile
from kairos_distro.ref import ImageRef
from kairos_distro.registry import ACCEPT, Registry

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64

# A release file as an owner keeps it: comments, three quoting styles, two k3s lines.
RELEASE = """\
# My distro. Comments and blank lines must survive a bump.
name: "my-distro"
source: "https://github.com/me/my-distro"
version: "v0.1.0"

# The distro to convert.
base_image: "ubuntu:24.04"   # the LTS
kairos_init: 'quay.io/kairos/kairos-init:v0.17.3'
auroraboot: quay.io/kairos/auroraboot:v0.26.2
registry: "ghcr.io"
namespace: "me"
channels: [edge, stable]
cells:
  - arch: "amd64"
    provider: "k3s"
    provider_version: "v1.35.1+k3s1"
  - arch: "arm64"
    provider: "k3s"
    provider_version: "v1.35.1+k3s1"
  - arch: "amd64"
    provider: "k3s"
    provider_version: "v1.34.3+k3s1"   # the older line
  - arch: "amd64"
    provider: k0s
    provider_version: v1.35.1+k0s.0
#  - arch: "riscv64"
#    provider_version: "v1.35.1+k3s1"
"""


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    """(old, new) of each line that differs; the line count must not change."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old) == len(new)
    return [(o, n) for o, n in zip(old, new, strict=True) if o != n]


def fake_resolver(ref: ImageRef) -> str:
    """Every tag resolves to digest A; a given digest is kept (as pins.resolve does)."""
    return str(ref) if ref.digest else f"{ref}@{A}"


@pytest.fixture
def release_file(tmp_path: Path) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(RELEASE, encoding="utf-8")
    path.chmod(0o640)
    return path


# -- pure: references and rewriting ---------------------------------------------------


@pytest.mark.parametrize(
    "current, to, want",
    [
        ("ubuntu:24.04", "", "ubuntu:24.04"),  # re-resolve the same tag
        (f"ubuntu:24.04@{A}", "", "ubuntu:24.04"),  # the old digest is dropped
        ("opensuse/tumbleweed", "", "opensuse/tumbleweed:latest"),
        (f"ubuntu:24.04@{A}", "26.04", "ubuntu:26.04"),
        ("ubuntu:24.04", "debian:13", "debian:13"),
        ("ubuntu:24.04", f"debian:13@{B}", f"debian:13@{B}"),  # a given digest is kept
    ],
)
def test_target(current, to, want) -> None:
    assert str(pins.target(current, to)) == want


@pytest.mark.parametrize(
    "current, to, reason",
    [
        (f"ubuntu@{A}", "", "has no tag to re-resolve"),
        ("ubuntu:24.04", "bad tag!", "is not a tag or an image reference"),
        ("ubuntu:24.04", "Debian:13", "is not a tag or an image reference"),
    ],
)
def test_target_refusals(current, to, reason) -> None:
    with pytest.raises(pins.PinError, match=reason):
        pins.target(current, to)


@pytest.mark.parametrize(
    "field, old, new, line",
    [
        (
            "base_image",
            "ubuntu:24.04",
            f"ubuntu:24.04@{A}",
            f'base_image: "ubuntu:24.04@{A}"   # the LTS\n',
        ),
        (
            "kairos_init",
            "quay.io/kairos/kairos-init:v0.17.3",
            "quay.io/kairos/kairos-init:v0.18.0",
            "kairos_init: 'quay.io/kairos/kairos-init:v0.18.0'\n",
        ),
        (
            "auroraboot",
            "quay.io/kairos/auroraboot:v0.26.2",
            f"quay.io/kairos/auroraboot:v0.26.2@{B}",
            f"auroraboot: quay.io/kairos/auroraboot:v0.26.2@{B}\n",
        ),
    ],
)
def test_rewrite_changes_one_line_and_keeps_its_quoting(field, old, new, line) -> None:
    after = yamledit.rewrite(RELEASE, field, old, new)
    ((was, now),) = changed_lines(RELEASE, after)
    assert was.startswith(f"{field}:")
    assert now == line


def test_rewrite_keeps_crlf_line_endings() -> None:
    text = RELEASE.replace("\n", "\r\n")
    after = yamledit.rewrite(text, "base_image", "ubuntu:24.04", "ubuntu:26.04")
    assert after == text.replace('"ubuntu:24.04"', '"ubuntu:26.04"')
    assert after.count("\r\n") == text.count("\r\n")


def test_rewrite_refuses_a_value_it_cannot_find() -> None:
    with pytest.raises(yamledit.EditError, match=r"^base_image: found no line reading"):
        yamledit.rewrite(RELEASE, "base_image", "ubuntu:22.04", "ubuntu:26.04")


def test_rewrite_adds_a_field_the_file_leaves_out() -> None:
    # An indented key is not the top-level field: it stays, and the field is added.
    nested = "cells:\n  - base_image: ubuntu:24.04\n"
    after = yamledit.rewrite(nested, "base_image", "ubuntu:24.04", "ubuntu:26.04")
    assert after == nested + "base_image: ubuntu:26.04\n"


@pytest.mark.parametrize(
    ("text", "value", "added"),
    [
        ("name: x\r\n", "a:b", "name: x\r\nsyft: a:b\r\n"),  # the file's line ending
        ("name: x", "a:b", "name: x\nsyft: a:b\n"),  # no newline at the end
        ("name: x\n", "a #b", 'name: x\nsyft: "a #b"\n'),  # plain would drop the comment
        ("name: x\n", "", 'name: x\nsyft: ""\n'),
    ],
)
def test_add_puts_one_line_at_the_end_that_reads_back(text, value, added) -> None:
    assert yamledit.add(text, "syft", value) == added
    assert yamlfile.loads(added)["syft"] == value


def test_rewrite_of_the_repositorys_own_release_file() -> None:
    """Whatever the template was baked with, each image pin it has is one line of its own."""
    text = (ROOT / "release.yaml").read_text(encoding="utf-8")
    rel = config.load(ROOT / "release.yaml")
    present = [f for f in pins.IMAGES.values() if getattr(rel, f)]
    assert {"base_image", "kairos_init", "auroraboot"} <= set(present)
    # kairos_init_riscv64 is there exactly when a cell is riscv64.
    has_riscv64 = any(c.arch == "riscv64" for c in rel.cells)
    assert ("kairos_init_riscv64" in present) == has_riscv64
    for field in present:
        old = getattr(rel, field)
        new = f"{old.split('@')[0]}@{B}"
        ((was, now),) = changed_lines(text, yamledit.rewrite(text, field, old, new))
        assert was.startswith(f"{field}: ")
        assert now == was.replace(old, new)


def test_rewrite_provider_touches_only_that_version() -> None:
    after = yamledit.rewrite_provider(RELEASE, "v1.35.1+k3s1", "v1.35.2+k3s1")
    assert (
        changed_lines(RELEASE, after)
        == [
            ('    provider_version: "v1.35.1+k3s1"\n', '    provider_version: "v1.35.2+k3s1"\n'),
        ]
        * 2
    )
    # The commented-out cell keeps its old version: comments are never rewritten.
    assert '#    provider_version: "v1.35.1+k3s1"\n' in after


# -- planning and applying each kind of pin ------------------------------------------------


@pytest.mark.parametrize(
    "what, to, new",
    [
        ("base", "", f"ubuntu:24.04@{A}"),
        ("base", "26.04", f"ubuntu:26.04@{A}"),
        ("kairos-init", "", f"quay.io/kairos/kairos-init:v0.17.3@{A}"),
        ("kairos-init", "v0.18.0", f"quay.io/kairos/kairos-init:v0.18.0@{A}"),
        ("auroraboot", "", f"quay.io/kairos/auroraboot:v0.26.2@{A}"),
        (
            "auroraboot",
            f"quay.io/kairos/auroraboot:v0.27.0@{B}",
            f"quay.io/kairos/auroraboot:v0.27.0@{B}",
        ),
    ],
)
def test_bump_an_image(release_file, what, to, new) -> None:
    change = pins.plan(release_file, what, to=to, resolver=fake_resolver)
    assert (change.field, change.new) == (pins.IMAGES[what], new)
    pins.apply(change)
    after = release_file.read_text(encoding="utf-8")
    ((_, line),) = changed_lines(RELEASE, after)
    assert new in line
    assert getattr(config.load(release_file), pins.IMAGES[what]) == new
    assert stat.S_IMODE(release_file.stat().st_mode) == 0o640
    assert sorted(p.name for p in release_file.parent.iterdir()) == ["release.yaml"]


def test_bump_the_riscv64_kairos_init_pin(release_file) -> None:
    text = RELEASE.replace(
        "\nauroraboot: ",
        '\nkairos_init_riscv64: "quay.io/kairos/kairos-init:v0.17.3"\nauroraboot: ',
    )
    release_file.write_text(text, encoding="utf-8")
    change = pins.plan(release_file, "kairos-init-riscv64", resolver=fake_resolver)
    pins.apply(change)
    ((old, new),) = changed_lines(text, release_file.read_text(encoding="utf-8"))
    assert old.startswith("kairos_init_riscv64: ")
    assert new == f'kairos_init_riscv64: "quay.io/kairos/kairos-init:v0.17.3@{A}"\n'
    pinned = f"quay.io/kairos/kairos-init:v0.17.3@{A}"
    assert config.load(release_file).kairos_init_riscv64 == pinned


def test_bump_of_an_absent_pin_is_one_line(release_file) -> None:
    with pytest.raises(pins.PinError, match=r"^kairos-init-riscv64: .* has no kairos_init_riscv64"):
        pins.plan(release_file, "kairos-init-riscv64", resolver=fake_resolver)


def test_bump_to_the_same_pin_changes_nothing(release_file) -> None:
    pins.apply(pins.plan(release_file, "base", to=f"ubuntu:24.04@{A}"))
    again = pins.plan(release_file, "base", to=f"ubuntu:24.04@{A}")
    assert not again.changed
    assert again.text == release_file.read_text(encoding="utf-8")


def test_bump_to_the_same_pin_spelled_otherwise_changes_nothing(release_file) -> None:
    pins.apply(pins.plan(release_file, "base", to=f"ubuntu:24.04@{A}"))
    again = pins.plan(release_file, "base", to=f"docker.io/library/ubuntu:24.04@{A}")
    assert not again.changed
    assert again.text == release_file.read_text(encoding="utf-8")


def test_bump_k3s_with_from_moves_only_those_cells(release_file) -> None:
    change = pins.plan(release_file, "k3s", to="v1.34.4+k3s1", from_="v1.34.3+k3s1")
    pins.apply(change)
    after = release_file.read_text(encoding="utf-8")
    assert changed_lines(RELEASE, after) == [
        (
            '    provider_version: "v1.34.3+k3s1"   # the older line\n',
            '    provider_version: "v1.34.4+k3s1"   # the older line\n',
        )
    ]
    versions = [c.provider_version for c in config.load(release_file).cells]
    assert versions == ["v1.35.1+k3s1", "v1.35.1+k3s1", "v1.34.4+k3s1", "v1.35.1+k0s.0"]


def test_bump_k0s(release_file) -> None:
    change = pins.plan(release_file, "k0s", to="v1.35.2+k0s.0")
    assert (change.old, change.new) == ("v1.35.1+k0s.0", "v1.35.2+k0s.0")
    pins.apply(change)
    ((_, line),) = changed_lines(RELEASE, release_file.read_text(encoding="utf-8"))
    assert line == "    provider_version: v1.35.2+k0s.0\n"  # still unquoted


def test_bump_refuses_an_ambiguous_provider_version(release_file) -> None:
    with pytest.raises(pins.PinError) as caught:
        pins.plan(release_file, "k3s", to="v1.35.2+k3s1")
    message = str(caught.value)
    assert "\n" not in message
    assert "v1.35.1+k3s1, v1.34.3+k3s1" in message
    assert "--from" in message
    with pytest.raises(pins.PinError, match=r"no cell carries v1\.33\.0\+k3s1"):
        pins.plan(release_file, "k3s", to="v1.35.2+k3s1", from_="v1.33.0+k3s1")


@pytest.mark.parametrize(
    "what, to, reason",
    [
        ("k3s", "v1.35.2", "is not a full k3s tag such as v1.35.1+k3s1"),
        ("k3s", "v1.35.2+k0s.0", "is not a full k3s tag"),
        ("k0s", "1.35.2+k0s.0", "is not a full k0s tag such as v1.35.1+k0s.0"),
    ],
)
def test_bump_refuses_an_invalid_provider_tag(release_file, what, to, reason) -> None:
    with pytest.raises(pins.PinError, match=re.escape(reason)):
        pins.plan(release_file, what, to=to, from_="v1.35.1+k3s1")


def test_bump_refuses_unknown_pins_and_from_on_images(release_file) -> None:
    with pytest.raises(pins.PinError, match=r"^kernel is not one of base, kairos-init"):
        pins.plan(release_file, "kernel")
    with pytest.raises(pins.PinError, match=r"^k3z is not one of .*; did you mean k3s\?$"):
        pins.plan(release_file, "k3z")
    with pytest.raises(pins.PinError, match="--from is for k3s and k0s only"):
        pins.plan(release_file, "base", from_="ubuntu:24.04", resolver=fake_resolver)


def test_bump_refuses_a_provider_no_cell_uses(release_data, write_release) -> None:
    path = write_release(release_data)
    with pytest.raises(pins.PinError, match=r"no cell of .* uses k3s"):
        pins.plan(path, "k3s", to="v1.35.2+k3s1")


def test_an_invalid_result_is_never_written(release_file) -> None:
    # Two k3s lines made one version: two cells become the same cell.
    change = pins.plan(release_file, "k3s", to="v1.35.1+k3s1", from_="v1.34.3+k3s1")
    with pytest.raises(pins.PinError, match=r"release\.yaml: cells\[2\]: duplicate of cell"):
        pins.apply(change)
    assert release_file.read_text(encoding="utf-8") == RELEASE
    assert sorted(p.name for p in release_file.parent.iterdir()) == ["release.yaml"]


def test_dry_apply_validates_and_writes_nothing(release_file) -> None:
    change = pins.plan(release_file, "k3s", to="v1.35.1+k3s1", from_="v1.34.3+k3s1")
    with pytest.raises(pins.PinError, match="duplicate of cell"):
        pins.apply(change, dry=True)
    pins.apply(pins.plan(release_file, "k0s", to="v1.35.2+k0s.0"), dry=True)
    assert release_file.read_text(encoding="utf-8") == RELEASE


# -- resolving digests against a registry double --------------------------------------------


class Double(ThreadingHTTPServer):
    """Manifests by (repository, reference); HEAD sends the digest header if told to."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.head_digest = True
        self.requests: list[tuple[str, str, str]] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def add(self, repo: str, tag: str, body: bytes) -> str:
        self.manifests[(repo, tag)] = body
        return f"sha256:{hashlib.sha256(body).hexdigest()}"


class Handler(BaseHTTPRequestHandler):
    server: Double

    def _answer(self, send_body: bool) -> None:
        self.server.requests.append((self.command, self.path, self.headers.get("Accept", "")))
        found = re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", self.path)
        body = self.server.manifests.get((found[1], found[2])) if found else None
        if body is None:
            error = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            if send_body:
                self.wfile.write(error.encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
        self.send_header("Content-Length", str(len(body)))
        if self.server.head_digest or send_body:
            self.send_header("Docker-Content-Digest", f"sha256:{hashlib.sha256(body).hexdigest()}")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> Iterator[Double]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = Double()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


INDEX = json.dumps({"schemaVersion": 2, "manifests": []}).encode()


def test_head_digest_uses_the_head_answer(double) -> None:
    digest = double.add("library/ubuntu", "24.04", INDEX)
    assert pins.head_digest(Registry(double.host), "library/ubuntu", "24.04") == digest
    assert double.requests == [("HEAD", "/v2/library/ubuntu/manifests/24.04", ACCEPT)]


def test_head_digest_falls_back_to_get_and_hashes_the_body(double) -> None:
    double.head_digest = False
    digest = double.add("library/ubuntu", "24.04", INDEX)
    assert pins.head_digest(Registry(double.host), "library/ubuntu", "24.04") == digest
    assert [r[0] for r in double.requests] == ["HEAD", "GET"]


def test_resolve_pins_name_and_tag_by_digest(double) -> None:
    digest = double.add("kairos/kairos-init", "v0.18.0", INDEX)
    ref = ImageRef.parse(f"{double.host}/kairos/kairos-init:v0.18.0")
    assert pins.resolve(ref) == f"{double.host}/kairos/kairos-init:v0.18.0@{digest}"


def test_resolve_a_missing_tag_is_one_line(double) -> None:
    ref = ImageRef.parse(f"{double.host}/kairos-local/mine:1")
    with pytest.raises(pins.ResolveError) as caught:
        pins.resolve(ref)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{ref}: {double.host}/kairos-local/mine:1 is not in the registry")
    assert "HTTP 404" in message
    assert "only in the local engine" in message


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return run_invoke(
        *args, env={"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    )


def test_invoke_bump_base_rebuilds_the_pin_from_the_registry(double, release_file) -> None:
    """The task as an owner runs it: --dry first, then for real, then a tag that is gone."""
    base = f"{double.host}/library/ubuntu"
    text = RELEASE.replace('"ubuntu:24.04"', f'"{base}:24.04"')
    release_file.write_text(text, encoding="utf-8")
    digest = double.add("library/ubuntu", "24.04", INDEX)

    dry = invoke("--dry", "bump", "base", "--release-file", str(release_file))
    assert dry.returncode == 0, dry.stderr
    assert (
        dry.stdout
        == f"would bump base: {base}:24.04 -> {base}:24.04@{digest} ({release_file} unchanged)\n"
    )
    assert release_file.read_text(encoding="utf-8") == text

    run = invoke("bump", "base", "--release-file", str(release_file))
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"bumped base: {base}:24.04 -> {base}:24.04@{digest}\n"
    ((_, line),) = changed_lines(text, release_file.read_text(encoding="utf-8"))
    assert line == f'base_image: "{base}:24.04@{digest}"   # the LTS\n'

    gone = invoke("bump", "base", "--to", "23.10", "--release-file", str(release_file))
    assert gone.returncode == 1
    assert gone.stdout == ""
    (error,) = gone.stderr.splitlines()
    assert error.startswith(f"bump: {base}:23.10: ")
    assert "not in the registry (HTTP 404)" in error


def test_invoke_bump_refuses_in_one_line(release_file) -> None:
    run = invoke("bump", "k3s", "--to", "v1.35.2+k3s1", "--release-file", str(release_file))
    assert run.returncode == 2
    (error,) = run.stderr.splitlines()
    assert error.startswith("bump: k3s: cells carry several versions")
    assert release_file.read_text(encoding="utf-8") == RELEASE


# -- Renovate reads the same lines ------------------------------------------------------------


def renovate() -> dict:
    return json.loads((ROOT / "renovate.json").read_text(encoding="utf-8"))


def python_regex(pattern: str) -> re.Pattern[str]:
    """Renovate's (JavaScript/RE2) named groups in Python's spelling."""
    return re.compile(pattern.replace("(?<", "(?P<"))


def renovate_matches(text: str) -> list[dict[str, str]]:
    """What Renovate extracts: each matchString over the whole file, as it runs them."""
    found = []
    for manager in renovate()["customManagers"]:
        for pattern in manager["matchStrings"]:
            for match in python_regex(pattern).finditer(text):
                groups = {k: v for k, v in match.groupdict().items() if v}
                groups.setdefault("depName", manager.get("depNameTemplate", ""))
                groups.setdefault("depType", manager.get("depTypeTemplate", ""))
                groups["datasource"] = manager["datasourceTemplate"]
                groups["replace"] = match[0]
                found.append(groups)
    return found


def test_renovate_json_is_plain_json_with_digest_pinning() -> None:
    text = (ROOT / "renovate.json").read_text(encoding="utf-8")
    # The template copies this file through Jinja: no opening delimiter may be in it.
    assert not re.search(r"\{[%{#]", text)
    config_ = renovate()
    assert config_["extends"] == ["config:recommended"]
    assert config_["pinDigests"] is True
    for manager in config_["customManagers"]:
        assert manager["customType"] == "regex"
        if manager.get("depNameTemplate") == "cruft":  # the template-update tool's pin
            assert "cruft==" in manager["matchStrings"][0]
            continue
        assert manager["managerFilePatterns"] == ["/(^|/)release\\.yaml$/"]


def test_renovate_finds_the_image_pins_of_this_release_file() -> None:
    text = (ROOT / "release.yaml").read_text(encoding="utf-8")
    rel = config.load(ROOT / "release.yaml")
    images = {m["depType"]: m for m in renovate_matches(text) if m["datasource"] == "docker"}
    for field in pins.IMAGES.values():
        value = getattr(rel, field)  # kairos_init_riscv64 may be unset
        ref = ImageRef.parse(value) if value else None
        if ref is None or not ref.tag:
            assert field not in images  # no tag to follow: Renovate leaves it alone
            continue
        assert field in images, f"renovate.json follows no {field}: line ({value})"
        found = images[field]
        assert (found["depName"], found["currentValue"]) == (ref.name, ref.tag), value
        assert found.get("currentDigest", "") == ref.digest


def test_renovate_finds_the_provider_versions_of_this_release_file() -> None:
    text = (ROOT / "release.yaml").read_text(encoding="utf-8")
    rel = config.load(ROOT / "release.yaml")
    found = [
        (m["depName"], m["currentValue"])
        for m in renovate_matches(text)
        if m["datasource"] == "github-releases"
    ]
    repos = {"k3s": "k3s-io/k3s", "k0s": "k0sproject/k0s"}
    assert found == [(repos[c.provider], c.provider_version) for c in rel.cells if c.provider]


def test_renovate_and_bump_read_the_same_lines() -> None:
    after = yamledit.rewrite(RELEASE, "base_image", "ubuntu:24.04", f"ubuntu:24.04@{A}")
    matches = renovate_matches(after)
    images = [
        (m["depType"], m["depName"], m["currentValue"], m.get("currentDigest"))
        for m in matches
        if m["datasource"] == "docker"
    ]
    # kairos_init (single quotes) and auroraboot (no quotes) are not in the template's
    # spelling: Renovate leaves them to `invoke bump`.
    assert images == [("base_image", "ubuntu", "24.04", A)]
    providers = [(m["depName"], m["currentValue"]) for m in matches if m["datasource"] != "docker"]
    assert providers == [
        ("k3s-io/k3s", "v1.35.1+k3s1"),
        ("k3s-io/k3s", "v1.35.1+k3s1"),
        ("k3s-io/k3s", "v1.34.3+k3s1"),
    ]  # the unquoted k0s line and the commented-out cell are not read


def render(template: str, values: dict[str, str]) -> str:
    """The Handlebars subset the autoReplaceStringTemplate uses."""
    template = re.sub(
        r"\{\{#if (\w+)\}\}(.*?)\{\{/if\}\}",
        lambda m: m[2] if values.get(m[1]) else "",
        template,
    )
    return re.sub(r"\{\{\{(\w+)\}\}\}", lambda m: values[m[1]], template)


@pytest.mark.parametrize("current", ["ubuntu:24.04", f"ubuntu:24.04@{B}"])
def test_renovate_replacement_writes_what_bump_writes(current) -> None:
    text = RELEASE.replace('"ubuntu:24.04"', f'"{current}"')
    (found,) = [m for m in renovate_matches(text) if m.get("depType") == "base_image"]
    manager = renovate()["customManagers"][0]
    upgrade = {**found, "newValue": "24.04", "newDigest": A}
    replaced = text.replace(found["replace"], render(manager["autoReplaceStringTemplate"], upgrade))
    assert replaced == yamledit.rewrite(text, "base_image", current, f"ubuntu:24.04@{A}")


# -- provider versions from the upstream release list ---------------------------------------
RELEASES = [
    {"tag_name": "v1.36.0+k3s1", "draft": False, "prerelease": False},  # next minor: not taken
    {"tag_name": "v1.35.3-rc1+k3s1", "draft": False, "prerelease": True},
    {"tag_name": "v1.35.2+k3s2", "draft": False, "prerelease": False},
    {"tag_name": "v1.35.2+k3s1", "draft": False, "prerelease": False},
    {"tag_name": "v1.35.10+k3s1", "draft": True, "prerelease": False},
    {"tag_name": "v1.34.9+k3s1", "draft": False, "prerelease": False},
]


PUBLISHED = [r["tag_name"] for r in RELEASES if not r["draft"] and not r["prerelease"]]


def test_latest_patch_stays_on_the_minor_line() -> None:
    tags = PUBLISHED
    assert pins.latest_patch("k3s", "v1.35.1+k3s1", tags) == "v1.35.2+k3s2"
    assert pins.latest_patch("k3s", "v1.35.1+k3s1", ["v1.35.10+k3s1", "v1.35.9+k3s3"]) == (
        "v1.35.10+k3s1"  # numeric, not text, order
    )
    assert pins.latest_patch("k3s", "v1.33.4+k3s1", tags) == "v1.33.4+k3s1"  # nothing newer
    assert pins.latest_patch("k0s", "v1.35.1+k0s.0", ["v1.35.1+k0s.1", "v1.35.2+k3s1"]) == (
        "v1.35.1+k0s.1"
    )


@pytest.fixture
def github(monkeypatch):
    """A GitHub releases API double on 127.0.0.1, selected through KAIROS_GITHUB_API."""
    import http.server
    import threading

    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = json.dumps(RELEASES).encode()
            status = 200 if self.path.startswith("/repos/k3s-io/k3s/releases") else 404
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(pins.GITHUB_API_ENV, f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield seen
    server.shutdown()
    server.server_close()


def test_release_tags_reads_published_releases_only(github) -> None:
    assert pins.release_tags("k3s") == [
        "v1.36.0+k3s1",
        "v1.35.2+k3s2",
        "v1.35.2+k3s1",
        "v1.34.9+k3s1",
    ]
    assert github == ["/repos/k3s-io/k3s/releases?per_page=100"]


def test_release_list_failure_is_one_line(github) -> None:
    with pytest.raises(pins.ResolveError) as caught:
        pins.release_tags("k0s")  # the double knows k3s only: 404
    message = str(caught.value)
    assert message.startswith("k0s: cannot read the release list at http://127.0.0.1:")
    assert message.endswith("(HTTPError); give --to") and "\n" not in message


def test_bump_without_to_takes_the_newest_patch_of_the_minor(release_file) -> None:
    change = pins.plan(
        release_file,
        "k3s",
        from_="v1.35.1+k3s1",
        releases=lambda provider: PUBLISHED,
    )
    assert (change.old, change.new) == ("v1.35.1+k3s1", "v1.35.2+k3s2")
    original = release_file.read_text(encoding="utf-8")
    assert change.text == yamledit.rewrite_provider(original, "v1.35.1+k3s1", "v1.35.2+k3s2")
    assert change.text.count('provider_version: "v1.35.2+k3s2"') == 2  # both cells of the line


# -- syft, grype and the vulnerability database ------------------------------------------------

SYFT, GRYPE = "docker.io/anchore/syft:v1.57.0", "docker.io/anchore/grype:v0.121.2"
DB_URL = (
    "https://grype.anchore.io/databases/v6/vulnerability-db_v6.1.10_2026-05-01T03:21:47Z.tar.zst"
)
PIN = f"{DB_URL}?checksum=sha256:{'5' * 64}"
TOOLS = RELEASE.replace(
    "registry: ",
    f'# SBOMs and vulnerability reports.\nsyft: "{SYFT}"\ngrype: {GRYPE}  # the scanner\n'
    'vulndb: ""\nvulnerabilities:\n  fail_on: high\n  max_age: 7\nregistry: ',
    1,
)


@pytest.fixture
def tools_file(release_file: Path) -> Path:
    release_file.write_text(TOOLS, encoding="utf-8")
    return release_file


@pytest.mark.parametrize(
    "what, to, line",
    [
        # Written as Docker names them: docker.io/ is the default registry, left out.
        ("syft", "v1.58.0", f'syft: "anchore/syft:v1.58.0@{A}"\n'),
        ("syft", "", f'syft: "anchore/syft:v1.57.0@{A}"\n'),
        ("grype", "v0.122.0", f"grype: anchore/grype:v0.122.0@{A}  # the scanner\n"),
        (
            "grype",
            f"ghcr.io/anchore/grype:v0.122.0@{B}",
            f"grype: ghcr.io/anchore/grype:v0.122.0@{B}  # the scanner\n",
        ),
    ],
    ids=["syft-tag", "syft-digest", "grype-tag", "grype-reference"],
)
def test_bump_syft_and_grype_like_any_image(tools_file, what, to, line) -> None:
    change = pins.plan(tools_file, what, to=to, resolver=fake_resolver)
    assert change.field == what
    pins.apply(change)
    ((old, now),) = changed_lines(TOOLS, tools_file.read_text(encoding="utf-8"))
    assert old.startswith(f"{what}: ")
    assert now == line
    assert getattr(config.load(tools_file), what) == change.new
    assert ImageRef.parse(change.new) == ImageRef.parse(line.split()[1].strip('"'))


def test_bump_vulndb_to_a_pin_rewrites_the_vulndb_line_only(tools_file) -> None:
    change = pins.plan(tools_file, "vulndb", to=PIN)
    assert (change.what, change.field, change.old, change.new) == ("vulndb", "vulndb", "", PIN)
    pins.apply(change)
    after = tools_file.read_text(encoding="utf-8")
    assert changed_lines(TOOLS, after) == [('vulndb: ""\n', f'vulndb: "{PIN}"\n')]
    assert config.load(tools_file).vulndb == PIN
    # And on from one pin to the next.
    newer = PIN.replace("2026-05-01", "2026-05-02").replace("5" * 64, "6" * 64)
    pins.apply(pins.plan(tools_file, "vulndb", to=newer))
    assert changed_lines(after, tools_file.read_text(encoding="utf-8")) == [
        (f'vulndb: "{PIN}"\n', f'vulndb: "{newer}"\n')
    ]
    again = pins.plan(tools_file, "vulndb", to=newer)
    assert not again.changed and again.text == tools_file.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "to",
    [
        DB_URL,  # no checksum: nothing to check the download against
        f"{DB_URL}?checksum=sha256:{'5' * 63}",
        f"{DB_URL}?checksum=sha256:{'A' * 64}",
        f"{DB_URL}?checksum=md5:{'5' * 32}",
        f"ftp://example.com/db.tar.zst?checksum=sha256:{'5' * 64}",
        f"{PIN}\n",
        "latest",
    ],
    ids=["no-checksum", "short", "uppercase", "md5", "ftp", "newline", "word"],
)
def test_bump_vulndb_refuses_what_is_not_a_pin(tools_file, to) -> None:
    with pytest.raises(pins.PinError) as caught:
        pins.plan(tools_file, "vulndb", to=to)
    message = str(caught.value)
    assert message.startswith("vulndb: ") and message.endswith(
        " is not URL?checksum=sha256:<64 hex>"
    )
    assert "\n" not in message
    assert tools_file.read_text(encoding="utf-8") == TOOLS


def test_bump_vulndb_adds_the_pin_a_file_from_before_the_scan_lacks(release_file) -> None:
    change = pins.plan(release_file, "vulndb", to=PIN)
    assert (change.old, change.new) == ("", PIN)
    pins.apply(change)
    assert release_file.read_text(encoding="utf-8") == f"{RELEASE}vulndb: {PIN}\n"
    assert config.load(release_file).vulndb == PIN


def test_bump_syft_adds_the_pin_a_file_from_before_the_scan_lacks(release_file) -> None:
    # Without a syft line the default applies; the bump pins that tag's digest.
    change = pins.plan(release_file, "syft", resolver=fake_resolver)
    assert change.old == config.SYFT_IMAGE
    assert change.new == f"{config.SYFT_IMAGE}@{A}"
    pins.apply(change)
    assert release_file.read_text(encoding="utf-8") == f"{RELEASE}syft: {change.new}\n"
    assert config.load(release_file).syft == change.new


@pytest.fixture
def listing(monkeypatch) -> Iterator[static_http.Site]:
    """grype's listing (latest.json) on 127.0.0.1, named by GRYPE_DB_UPDATE_URL."""
    name = "vulnerability-db_v6.1.10_2026-05-01T03:21:47Z_1777600000.tar.zst"
    latest = {
        "status": "active",
        "schemaVersion": "v6.1.10",
        "built": "2026-05-01T03:21:47Z",
        "path": name,  # relative to the listing
        "checksum": f"sha256:{'7' * 64}",
    }
    with static_http.serve({"/databases/v6/latest.json": json.dumps(latest).encode()}) as site:
        monkeypatch.setenv("GRYPE_DB_UPDATE_URL", f"{site.url}/databases/v6/latest.json")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        yield site


def test_bump_vulndb_without_to_takes_the_listings_newest(tools_file, listing) -> None:
    change = pins.plan(tools_file, "vulndb")
    name = "vulnerability-db_v6.1.10_2026-05-01T03:21:47Z_1777600000.tar.zst"
    assert change.new == f"{listing.url}/databases/v6/{name}?checksum=sha256:{'7' * 64}"
    assert listing.asked == ["/databases/v6/latest.json"]
    pins.apply(change)
    assert config.load(tools_file).vulndb == change.new


def test_bump_vulndb_with_the_listing_gone_is_a_resolve_error(tools_file, listing) -> None:
    listing.bodies.clear()
    with pytest.raises(pins.ResolveError) as caught:
        pins.plan(tools_file, "vulndb")
    assert str(caught.value) == (
        f"vulndb: cannot read the listing {listing.url}/databases/v6/latest.json (HTTP 404)"
    )


def test_invoke_bump_vulndb_and_a_bad_pin(tools_file) -> None:
    run = invoke("bump", "vulndb", "--to", PIN, "--release-file", str(tools_file))
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == f"bumped vulndb: (none) -> {PIN}\n"
    bad = invoke("bump", "vulndb", "--to", DB_URL, "--release-file", str(tools_file))
    assert bad.returncode == 2
    (error,) = bad.stderr.splitlines()  # the URL as typed, cut short
    assert error.startswith("bump: vulndb: https://grype.anchore.io/databases/v6/")
    assert error.endswith("... is not URL?checksum=sha256:<64 hex>")
    assert config.load(tools_file).vulndb == PIN

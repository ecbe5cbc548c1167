"""Image references read the way Docker reads them (distribution/reference)."""

from __future__ import annotations

import pytest

from kairos_distro.ref import DOCKER_HUB_API, ImageRef, RefError

D = "sha256:" + "d" * 64


@pytest.mark.parametrize(
    "text, host, repository, tag, digest",
    [
        ("ubuntu", "docker.io", "library/ubuntu", "", ""),
        ("ubuntu:24.04", "docker.io", "library/ubuntu", "24.04", ""),
        ("opensuse/leap:15.6", "docker.io", "opensuse/leap", "15.6", ""),
        ("docker.io/library/debian:13", "docker.io", "library/debian", "13", ""),
        ("index.docker.io/foo/bar", "docker.io", "foo/bar", "", ""),
        ("docker.io/ubuntu", "docker.io", "library/ubuntu", "", ""),
        ("quay.io/a/b:c", "quay.io", "a/b", "c", ""),
        ("localhost/os:1", "localhost", "os", "1", ""),
        ("localhost:5000/x", "localhost:5000", "x", "", ""),  # a port, not a tag
        (f"127.0.0.1:5000/ns/img:tag@{D}", "127.0.0.1:5000", "ns/img", "tag", D),
        (f"127.0.0.1:5000/ns/img@{D}", "127.0.0.1:5000", "ns/img", "", D),
        ("[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c", ""),
        ("Registry/image", "Registry", "image", "", ""),  # capitals: Docker reads a host
        ("ghcr.io/kairos-io/hadron:v0.5.1", "ghcr.io", "kairos-io/hadron", "v0.5.1", ""),
        ("a/b__c/d-e.f_g:T_1.x-y", "docker.io", "a/b__c/d-e.f_g", "T_1.x-y", ""),
    ],
)
def test_parse(text, host, repository, tag, digest) -> None:
    ref = ImageRef.parse(text)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == (host, repository, tag, digest)
    assert ImageRef.parse(ref.canonical) == ref  # the spelled-out form means the same
    assert ImageRef.parse(str(ref)) == ref


@pytest.mark.parametrize(
    "text, short, canonical",
    [
        ("docker.io/library/ubuntu:22.04", "ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
        ("ubuntu", "ubuntu", "docker.io/library/ubuntu"),
        ("index.docker.io/foo/bar:1", "foo/bar:1", "docker.io/foo/bar:1"),
        ("quay.io/a/b:c", "quay.io/a/b:c", "quay.io/a/b:c"),
        (f"localhost:5000/x@{D}", f"localhost:5000/x@{D}", f"localhost:5000/x@{D}"),
    ],
)
def test_str_is_dockers_short_spelling(text, short, canonical) -> None:
    ref = ImageRef.parse(text)
    assert str(ref) == short
    assert ref.canonical == canonical


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Ubuntu:24.04", "repository name must be lowercase"),
        ("quay.io/Kairos/init", "repository name must be lowercase"),
        ("ubuntu:", "is not a valid tag"),
        ("ubuntu::24.04", "is not an image reference"),
        ("ubuntu:-x", "is not a valid tag"),
        ("ubuntu:" + "t" * 129, "is not a valid tag"),
        ("ubuntu:24.04\n", "is not a valid tag"),
        ("ubuntu@sha256:abc", "is not sha256:<64 hex digits>"),
        ("ubuntu@md5:" + "d" * 32, "is not sha256:<64 hex digits>"),
        (f"ubuntu@{D}\n", "is not sha256:<64 hex digits>"),
        ("ubuntu 24.04", "is not an image reference"),
        ("", "is not an image reference"),
        ("/ubuntu", "is not an image reference"),
        ("ubuntu/", "is not an image reference"),
        ("a//b", "is not an image reference"),
        ("a-/b", "is not an image reference"),
        ("d" * 64, "is not an image reference"),  # an image ID, not a name
        ("https://quay.io/kairos/auroraboot", "is not a registry host"),
        ("-quay.io/a", "is not a registry host"),
        ("quay.io/" + "a" * 250, "longer than 255 characters"),
    ],
)
def test_parse_refuses(text, reason) -> None:
    with pytest.raises(RefError, match=reason) as caught:
        ImageRef.parse(text)
    assert "\n" not in str(caught.value)  # one line, the text quoted


def test_where_the_registry_api_answers() -> None:
    assert ImageRef.parse("ubuntu").api_host == DOCKER_HUB_API
    assert ImageRef.parse("docker.io/me/os").api_host == DOCKER_HUB_API
    assert ImageRef.parse("127.0.0.1:5000/me/os").api_host == "127.0.0.1:5000"


def test_reference_is_the_digest_else_the_tag_else_latest() -> None:
    assert ImageRef.parse(f"quay.io/a/b:c@{D}").reference == D
    assert ImageRef.parse("quay.io/a/b:c").reference == "c"
    assert ImageRef.parse("quay.io/a/b").reference == "latest"


def test_with_tag_with_digest_by_digest() -> None:
    ref = ImageRef.parse("quay.io/a/b:c")
    assert str(ref.with_tag("d")) == "quay.io/a/b:d"
    assert str(ref.with_digest(D)) == f"quay.io/a/b:c@{D}"
    assert str(ref.with_digest(D).with_digest("")) == "quay.io/a/b:c"
    assert str(ref.by_digest(D)) == f"quay.io/a/b@{D}"
    assert ref.full_name == "quay.io/a/b"
    with pytest.raises(RefError):
        ref.with_tag("bad tag")
    with pytest.raises(RefError):
        ref.with_digest("sha256:short")


@pytest.mark.parametrize(
    "text, pinned",
    [
        (f"ghcr.io/my-org/ubuntu@{D}", True),
        (f"docker.io/me/os@{D}", True),
        (f"me/os@{D}", False),  # Docker Hub's short spelling: not as publish writes it
        (f"ghcr.io@{D}", False),  # docker.io/library/ghcr.io, spelled short
        ("ghcr.io/my-org/ubuntu:v1", False),  # a tag moves: not a pin
        (f"ghcr.io/my-org/ubuntu:v1@{D}", True),
        ("ghcr.io/my-org/ubuntu@md5:" + "d" * 32, False),
        (None, False),
        (42, False),
    ],
)
def test_pinned_is_a_spelled_out_reference_by_digest(text, pinned) -> None:
    ref = ImageRef.pinned(text)
    assert (ref is not None) == pinned
    assert ref is None or (ref.canonical == text and ref.digest == D)

"""Image references, parsed once and the way Docker parses them.

The grammar is distribution/reference's (grammar.go, normalize.go): the first
component is a registry host when it has a `.` or a `:`, is `localhost`, or
has capitals (so `localhost:5000/x` has a port, not a tag); otherwise the
image is on Docker Hub, whose one-word names live under `library/`. The
repository path is lowercase, a tag is at most 128 characters, the whole name
at most 255. Digests are sha256: the pipeline resolves and verifies no other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .words import show

# Docker Hub: the name references use, the legacy name Docker folds into it,
# and the host its registry API answers on.
DOCKER_HUB = "docker.io"
DOCKER_HUB_LEGACY = "index.docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
OFFICIAL = "library/"

_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
HOST = re.compile(rf"^{_HOST}\Z")
PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
COMPONENT = re.compile(rf"^{_COMPONENT}\Z")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}\Z")
NAME_MAX = 255
_IMAGE_ID = re.compile(r"^[a-f0-9]{64}\Z")


def api_host(host: str) -> str:
    """Where the registry API answers for images named under `host` (Docker Hub's differs)."""
    return DOCKER_HUB_API if host in (DOCKER_HUB, DOCKER_HUB_LEGACY) else host


def safe(text: str) -> str:
    """OCI tags cannot carry `+` (as in v1.35.1+k3s1): it becomes `-`."""
    return text.replace("+", "-")


def _is_host(first: str) -> bool:
    """Docker's rule for the first component of a name with a `/`."""
    return any(c in first for c in ".:") or first == "localhost" or first != first.lower()


class RefError(ValueError):
    """Text that is not an image reference; str() is one line."""


@dataclass(frozen=True)
class ImageRef:
    """`host/repository[:tag][@digest]`, normalised (Docker Hub spelled out)."""

    host: str
    repository: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """A reference as Docker reads it, or a one-line RefError saying why not."""
        name, at, digest = text.partition("@")
        if at and not DIGEST.match(digest):
            raise RefError(f"{show(text)}: digest {show(digest)} is not sha256:<64 hex digits>")
        first, slash, rest = name.partition("/")
        if slash and _is_host(first):
            host, path = first, rest
        else:
            host, path = DOCKER_HUB, name
        tag = ""
        if ":" in path.rsplit("/", 1)[-1]:
            path, _, tag = path.rpartition(":")
            if not TAG.match(tag):
                raise RefError(f"{show(text)}: tag {show(tag)} is not a valid tag")
        if not HOST.match(host):
            raise RefError(f"{show(text)}: {show(host)} is not a registry host")
        if path != path.lower() and PATH.match(path.lower()):
            raise RefError(f"{show(text)}: repository name must be lowercase")
        if not PATH.match(path) or _IMAGE_ID.match(path):
            raise RefError(f"{show(text)} is not an image reference")
        if len(name) - len(tag) - bool(tag) > NAME_MAX:  # the name as written, without tag
            raise RefError(f"{show(text)}: the name is longer than {NAME_MAX} characters")
        if host == DOCKER_HUB_LEGACY:
            host = DOCKER_HUB
        if host == DOCKER_HUB and "/" not in path:
            path = OFFICIAL + path
        return cls(host, path, tag, digest)

    @classmethod
    def pinned(cls, text: object) -> ImageRef | None:
        """`text` when it names an image by digest, every part spelled out (as the
        pipeline writes what it published); else None."""
        try:
            ref = cls.parse(text) if isinstance(text, str) else None
        except RefError:
            return None
        return ref if ref and ref.digest and ref.canonical == text else None

    @property
    def name(self) -> str:
        """The name as Docker prints it: Docker Hub's host and `library/` left out."""
        if self.host != DOCKER_HUB:
            return f"{self.host}/{self.repository}"
        short = self.repository.removeprefix(OFFICIAL)
        return short if "/" not in short else self.repository

    @property
    def full_name(self) -> str:
        """The name with every part spelled out: `docker.io/library/ubuntu`."""
        return f"{self.host}/{self.repository}"

    @property
    def canonical(self) -> str:
        """Every part spelled out: `docker.io/library/ubuntu:24.04`."""
        return self.full_name + self._suffix

    @property
    def api_host(self) -> str:
        """Where the registry API answers for this image."""
        return api_host(self.host)

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest, else the tag (`latest` if none)."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> ImageRef:
        if not TAG.match(tag):
            raise RefError(f"{show(tag)} is not a valid tag")
        return replace(self, tag=tag)

    def with_digest(self, digest: str) -> ImageRef:
        """The same name and tag pinned to `digest` ("" unpins)."""
        if digest and not DIGEST.match(digest):
            raise RefError(f"{show(digest)} is not sha256:<64 hex digits>")
        return replace(self, digest=digest)

    def by_digest(self, digest: str) -> ImageRef:
        """The image by digest alone, as a registry stores it: `name@sha256:...`."""
        return replace(self, tag="").with_digest(digest)

    @property
    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        """Docker's short spelling: what `docker images` shows and users write."""
        return self.name + self._suffix

"""Pins: move one pinned input of release.yaml at a time, in place.

An owner takes a base-OS CVE rebuild (same tag, new digest) without a newer
Kubernetes, or a k3s patch without touching the base. Planning is pure: the
rewrite (yamledit) changes exactly one value on its own line(s) and leaves every
other byte (comments, quoting, line endings) as it was. Effects are apart:
`resolve` asks the image's registry for a tag's digest, and `apply` writes the
file atomically only after release.yaml's own validation accepts the result.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlunsplit

from . import cells, config, vulndb
from .hosts import hostname, is_loopback, private_channel, redact, split, url_host
from .ref import ImageRef, RefError
from .registry import Registry, RegistryError
from .words import clip, suggest
from .yamledit import EditError, rewrite, rewrite_provider

# `invoke bump WHAT` -> the release.yaml field it moves.
IMAGES = {
    "base": "base_image",
    "kairos-init": "kairos_init",
    "kairos-init-riscv64": "kairos_init_riscv64",
    "auroraboot": "auroraboot",
    "syft": "syft",
    "grype": "grype",
}
PROVIDERS = tuple(cells.PROVIDER_VERSION)
WHATS = (*IMAGES, *PROVIDERS, "vulndb")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}\Z")


class PinError(ValueError):
    """A bump that cannot be planned; str() is one line."""


class ResolveError(PinError):
    """The registry could not give a digest for a reference; str() is one line."""


class NotInRegistry(ResolveError):
    """The registry answered: no such tag (HTTP 404)."""


# -- references ------------------------------------------------------------------------
def target(current: str, to: str = "") -> ImageRef:
    """What to pin: the current tag again (no `to`), another tag, or a whole reference.

    The result carries a digest only when `to` gave one; otherwise the digest
    is resolved from the registry.
    """
    now = ImageRef.parse(current)  # release.yaml's own, already validated
    if not to:
        if now.digest and not now.tag:
            raise PinError(f"{current} has no tag to re-resolve: give --to TAG")
        return now.with_digest("").with_tag(now.tag or "latest")
    try:
        if any(ch in to for ch in ":/@"):
            ref = ImageRef.parse(to)
            return ref if ref.tag or ref.digest else ref.with_tag("latest")
        return now.with_digest("").with_tag(to)
    except RefError:
        raise PinError(f"--to {clip(to)} is not a tag or an image reference") from None


def provider_versions(rel: config.Release, provider: str) -> list[str]:
    """The versions of `provider` the cells carry, in file order, each once."""
    seen: list[str] = []
    for cell in rel.cells:
        if cell.provider == provider and cell.provider_version not in seen:
            seen.append(cell.provider_version or "")
    return seen


def provider_old(rel: config.Release, provider: str, to: str, from_: str = "") -> str:
    """The version a provider bump replaces; refuses bad tags and ambiguity in one line."""
    pattern = cells.PROVIDER_VERSION[provider]
    if to and not pattern.match(to):
        example = cells.PROVIDER_EXAMPLE[provider]
        raise PinError(
            f"{provider}: --to {clip(to)} is not a full {provider} tag such as {example}"
        )
    versions = provider_versions(rel, provider)
    if not versions:
        raise PinError(f"{provider}: no cell of {rel.path} uses {provider}")
    if from_:
        if from_ not in versions:
            raise PinError(
                f"{provider}: no cell carries {from_}; {provider} cells carry {', '.join(versions)}"
            )
        return from_
    if len(versions) > 1:
        raise PinError(
            f"{provider}: cells carry several versions ({', '.join(versions)}): "
            "choose one with --from"
        )
    return versions[0]


def expected(rel: config.Release, what: str, old: str, new: str) -> config.Release:
    """The Release a correct bump produces: `rel` with only that value moved."""
    if what in IMAGES or what == "vulndb":
        return dataclasses.replace(rel, **{IMAGES.get(what, what): new})
    cells = tuple(
        dataclasses.replace(c, provider_version=new)
        if c.provider == what and c.provider_version == old
        else c
        for c in rel.cells
    )
    return dataclasses.replace(rel, cells=cells)


# -- effects: the registry, then the file ----------------------------------------------------
def head_digest(registry: Registry, repo: str, reference: str) -> str:
    """The manifest digest of `repo:reference`, or a one-line ResolveError."""
    ref = f"{registry.host}/{repo}:{reference}"
    try:
        digest = registry.manifest_digest(repo, reference)
    except RegistryError as err:
        raise ResolveError(f"{ref}: {err}") from None
    if digest is None:
        raise NotInRegistry(f"{ref} is not in the registry (HTTP 404)")
    return digest


def resolve(ref: ImageRef, registry_for: Callable[[str], Registry] = Registry) -> str:
    """`name:tag` -> `name:tag@sha256:...` from the image's own registry."""
    if ref.digest:
        return str(ref)
    try:
        digest = head_digest(registry_for(ref.api_host), ref.repository, ref.reference)
    except NotInRegistry as err:
        raise ResolveError(
            f"{ref}: {err}; an image only in the local engine has no registry digest "
            "(push it, or pin it by hand)"
        ) from None
    except RegistryError as err:
        raise ResolveError(f"{ref}: {err}") from None
    return str(ref.with_digest(digest))


@dataclass(frozen=True)
class Bump:
    """One planned change: `what` moves `old` -> `new`; `text` is the new file."""

    what: str
    field: str
    old: str
    new: str
    path: Path
    text: str

    @property
    def changed(self) -> bool:
        return self.old != self.new


# -- provider versions from the upstream release list ------------------------------------
GITHUB_REPOS = {"k3s": "k3s-io/k3s", "k0s": "k0sproject/k0s"}
GITHUB_API_ENV = "KAIROS_GITHUB_API"  # a GitHub Enterprise or test API; default api.github.com
GITHUB_API = "https://api.github.com"
# What GitHub Actions sets to the API of the GitHub it runs on (Enterprise Server too).
ACTIONS_API_ENV = "GITHUB_API_URL"
TOKEN_ENV = "GITHUB_TOKEN"


def latest_patch(provider: str, current: str, tags: list[str]) -> str:
    """The newest full tag of `current`'s minor line (e.g. v1.35.x+k3sN), else `current`."""
    line = re.match(r"v(\d+)\.(\d+)\.", current)
    pattern = cells.PROVIDER_VERSION[provider]
    same = [t for t in tags if pattern.match(t) and line and t.startswith(f"v{line[1]}.{line[2]}.")]

    def order(tag: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", tag))

    return max([current, *same], key=order)


def token_goes_to(api: str) -> bool:
    """GITHUB_TOKEN may go to `api`: GitHub's API or GITHUB_API_URL's host, over
    https, or any API on this machine (the tests' double)."""
    scheme = split(api).scheme.lower()
    if scheme == "http":
        return is_loopback(url_host(api))
    actions = os.environ.get(ACTIONS_API_ENV, "")
    owners = {hostname(url_host(GITHUB_API))}
    if split(actions).scheme.lower() == "https":
        owners.add(hostname(url_host(actions)))
    return scheme == "https" and hostname(url_host(api)) in owners


def _github_request(api: str) -> tuple[str, dict[str, str], tuple[str, str] | None]:
    """(URL without userinfo, headers, the URL's own login) for a request to `api`.

    The token only avoids the anonymous rate limit, and the release list is
    public: an API it may not go to is read without it, and one line says so,
    rather than refusing a harmless mirror. A login written into the URL goes
    to that host only, and only over a private channel.
    """
    parts = split(api)
    if not parts.scheme or not parts.netloc:
        raise ResolveError(f"{GITHUB_API_ENV}: {redact(api)} is not a URL such as {GITHUB_API}")
    bare = urlunsplit(parts._replace(netloc=url_host(api)))
    headers = {"Accept": "application/vnd.github+json"}
    token = os.environ.get(TOKEN_ENV, "")
    if token and token_goes_to(api):
        headers["Authorization"] = f"Bearer {token}"
    elif token:
        print(
            f"bump: {TOKEN_ENV} not sent to {redact(api)}: it goes only to {GITHUB_API}, "
            f"the host of {ACTIONS_API_ENV} over https, or this machine",
            file=sys.stderr,
        )
    login = None
    if parts.username is not None and not private_channel(api):
        print(
            f"bump: the login in {GITHUB_API_ENV} not sent to {redact(api)}: plain http",
            file=sys.stderr,
        )
    elif parts.username is not None and "Authorization" not in headers:
        login = (parts.username, parts.password or "")
    return bare, headers, login


def release_tags(provider: str) -> list[str]:
    """Published (not draft, not pre-release) tags of the provider's GitHub repository."""
    import requests

    api = os.environ.get(GITHUB_API_ENV, GITHUB_API).rstrip("/")
    base, headers, login = _github_request(api)
    url = f"{base}/repos/{GITHUB_REPOS[provider]}/releases?per_page=100"
    try:
        resp = requests.get(url, headers=headers, auth=login, timeout=30)
        resp.raise_for_status()
        return [
            r["tag_name"]
            for r in resp.json()
            if not r.get("draft") and not r.get("prerelease") and isinstance(r.get("tag_name"), str)
        ]
    except (requests.RequestException, ValueError, TypeError, KeyError) as err:
        raise ResolveError(
            f"{provider}: cannot read the release list at {redact(url)} ({type(err).__name__}); "
            "give --to"
        ) from None


def _check(bump: Bump, written: Path) -> None:
    """Validate `written` as release.yaml and make sure only the pin moved."""
    try:
        before = config.load(bump.path)
        after = config.load(written)
    except config.ConfigError as err:
        raise PinError(str(err).replace(str(written), str(bump.path))) from None
    want = dataclasses.replace(expected(before, bump.what, bump.old, bump.new), path=written)
    if after != want:
        raise PinError(f"{bump.path}: the rewrite changed more than {bump.field}; left as it was")


def apply(bump: Bump, *, dry: bool = False) -> None:
    """Validate the new text, then replace the file atomically (dry: validate only)."""
    if not bump.changed:
        return
    if dry:
        with tempfile.TemporaryDirectory(prefix="kairos-bump-") as tmp:
            scratch = Path(tmp) / bump.path.name
            scratch.write_bytes(bump.text.encode("utf-8"))
            _check(bump, scratch)
        return
    fd, name = tempfile.mkstemp(prefix=f".{bump.path.name}.", dir=bump.path.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bump.text.encode("utf-8"))
        shutil.copymode(bump.path, temp)
        _check(bump, temp)
        temp.replace(bump.path)
    finally:
        temp.unlink(missing_ok=True)


def plan(
    path: Path,
    what: str,
    to: str = "",
    from_: str = "",
    resolver: Callable[[ImageRef], str] | None = None,
    releases: Callable[[str], list[str]] = release_tags,
) -> Bump:
    """Read release.yaml, resolve what the pin becomes, and rewrite the text (no write).

    By default an image resolves at its own registry, with the KAIROS_REGISTRY_*
    login only when that is release.yaml's registry.
    """
    if what not in WHATS:
        raise PinError(f"{clip(what)} is not one of {', '.join(WHATS)}{suggest(what, WHATS)}")
    try:
        rel = config.load(path)
        text = path.read_bytes().decode("utf-8")
    except config.ConfigError as err:
        raise PinError(str(err)) from None
    if what == "vulndb":
        return _vulndb(path, rel.vulndb, text, to)
    if what in IMAGES:
        if from_:
            raise PinError(f"{what}: --from is for k3s and k0s only")
        field = IMAGES[what]
        old = getattr(rel, field)
        if not old:
            raise PinError(f"{what}: {path} has no {field} to move")
        if resolver is None:
            clients = functools.partial(Registry, login=rel.registry)
            resolver = functools.partial(resolve, registry_for=clients)
        new = resolver(target(old, to))
        if ImageRef.parse(new) == ImageRef.parse(old):
            new = old  # the same pin, however it is spelled
        return Bump(what, field, old, new, path, _moved(text, field, old, new))
    old = provider_old(rel, what, to, from_)
    to = to or latest_patch(what, old, releases(what))  # no --to: newest patch, same minor
    return Bump(what, "provider_version", old, to, path, _moved(text, "provider_version", old, to))


def _vulndb(path: Path, old: str, text: str, to: str) -> Bump:
    """The database pin: --to URL?checksum=sha256:..., else the listing's newest archive."""
    try:
        new = str(vulndb.parse_pin(to) if to else vulndb.latest())
    except vulndb.VulnDbError as err:
        raise (PinError if to else ResolveError)(str(err)) from None
    return Bump("vulndb", "vulndb", old, new, path, _moved(text, "vulndb", old, new))


def _moved(text: str, field: str, old: str, new: str) -> str:
    """`text` with the pin moved (as it was when it stays), or a one-line PinError."""
    if new == old:
        return text
    try:
        if field == "provider_version":
            return rewrite_provider(text, old, new)
        return rewrite(text, field, old, new)
    except EditError as err:
        raise PinError(str(err)) from None

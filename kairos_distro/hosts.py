"""Hosts, the credentials they may receive, and text printed without a credential.

A credential belongs to one host: the KAIROS_REGISTRY_* login to release.yaml's
registry, a `docker login` to the host docker's config names, GITHUB_TOKEN to
GitHub's API. It travels only over https, or over plain http to this machine
(the tests' local registry listens on 127.0.0.1). A registry's token service
may receive the registry's login only on the registry's own site (its
registrable domain: registry-1.docker.io -> auth.docker.io, registry.gitlab.com
-> gitlab.com). Every message that shows a URL, an endpoint or a value taken
from the environment goes through `redact`.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

MASK = "***"

# Second-level labels under which a country's registrable names sit (co.uk,
# com.au, ne.jp): the short form of the Public Suffix List's ICANN section that
# registry hosts meet. Without them, example.co.uk and evil.co.uk would be one site.
_COUNTRY_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "go", "gov", "ne", "net", "or", "org"})
# Public Suffix List, private section: suffixes under which unrelated owners
# get sibling names, so each name under them is its own site.
_SHARED_SUFFIXES = (
    "amazonaws.com",
    "appspot.com",
    "azurecr.io",
    "cloudfront.net",
    "github.io",
    "gitlab.io",
    "herokuapp.com",
    "pkg.dev",
)

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#\"'<>]*@")
# Without a scheme only `user:password@host` is userinfo: `name@host` is an email
# (a signing identity, say) and stays, and so does `name:tag@sha256:...`, an
# image reference pinned by digest.
_DIGEST = r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32}"  # OCI: sha256 has 64
_BARE_USERINFO = re.compile(
    rf"(?<![\w.:/@-])[^\s/?#@:\"'<>]+:[^\s/?#\"'<>]*@(?!{_DIGEST})(?=[\w\[])"
)
_SECRET_PARAM = re.compile(
    r"(?i)([?&;][\w.-]*(?:token|password|passwd|secret|key|sig|signature|credential|auth|session|code)"
    r"[\w.-]*=)[^&;#\s\"'<>]+"
)
# An Authorization value: the scheme, then a credential (not a lowercase word of prose).
_AUTH_VALUE = re.compile(r"(?i)\b(bearer|basic)(\s+)(?-i:(?![a-z]+(?:[\s,;:)]|$)))[\w.~+/=-]{8,}")


def redact(text: str) -> str:
    """`text` without userinfo, token-carrying query values or Authorization values.

    `https://user:pass@host/x?token=abc&n=1` -> `https://***@host/x?token=***&n=1`.
    """
    text = _USERINFO.sub(rf"\1{MASK}@", text)
    text = _BARE_USERINFO.sub(f"{MASK}@", text)
    text = _SECRET_PARAM.sub(rf"\1{MASK}", text)
    return _AUTH_VALUE.sub(rf"\1\2{MASK}", text)


def hostname(host: str) -> str:
    """`name[:port]`, `[v6]:port` or a bare IPv6 address -> the name, lowercased."""
    if host.startswith("[") and "]" in host:
        return host[1 : host.index("]")].lower()
    if host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.lower().rstrip(".")


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """`host` (with or without a port) is this machine: localhost, 127.0.0.0/8, ::1."""
    name = hostname(host)
    address = _address(name)
    return name == "localhost" or bool(address and address.is_loopback)


def site(host: str) -> str:
    """The registrable domain of `host` (an address is its own site)."""
    name = hostname(host)
    labels = name.split(".")
    if _address(name) or len(labels) <= 2:
        return name
    keep = 2
    if len(labels[-1]) == 2 and labels[-2] in _COUNTRY_SECOND_LEVEL:
        keep = 3
    for suffix in _SHARED_SUFFIXES:
        if name.endswith("." + suffix):
            keep = suffix.count(".") + 2
    return ".".join(labels[-keep:])


def split(url: str) -> SplitResult:
    """`url`'s parts; one that does not parse (`http://[x`) has none."""
    try:
        return urlsplit(url)
    except ValueError:
        return SplitResult("", "", "", "", "")


def url_host(url: str) -> str:
    """The host (and port) of `url`, without userinfo."""
    return split(url).netloc.rpartition("@")[2]


def private_channel(url: str) -> bool:
    """A credential may travel over `url`'s scheme: https, or http to this machine."""
    scheme = split(url).scheme.lower()
    return scheme == "https" or (scheme == "http" and is_loopback(url_host(url)))


def withheld_from(url: str, owner: str) -> str:
    """Why `owner`'s credential must not go to `url` (one phrase), or "" when it may.

    It may over a private channel, to `owner`'s own site.
    """
    where = hostname(url_host(url)) or redact(url)
    if not private_channel(url):
        return f"{where} is plain http"
    if site(url_host(url)) != site(owner):
        return f"{where} is not on {site(owner)}"
    return ""

"""A small OCI distribution client: blobs, manifests by digest, then tags.

`docker push` can only push a tag, so a half-finished release could leave a
tag behind. Talking to the registry API directly lets publish upload
everything under the manifest digest first and write tags last, and later
stages (signatures as referrers) reuse the same client.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin

import requests

from .hosts import MASK, is_loopback, redact, split, withheld_from
from .ref import DOCKER_HUB, DOCKER_HUB_API, api_host

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
USER_ENV, PASSWORD_ENV = "KAIROS_REGISTRY_USERNAME", "KAIROS_REGISTRY_PASSWORD"
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(RuntimeError):
    """One line: what the registry (or the network) said, never a credential."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def credentials(host: str, release_registry: str = "") -> tuple[str, str] | None:
    """The login that belongs to registry API host `host`, or None.

    KAIROS_REGISTRY_USERNAME/PASSWORD belong to release.yaml's registry only
    (`release_registry`, as written there), so a bump reading a base image on
    Docker Hub, or `verify --image` elsewhere, never carries them. A docker
    login belongs to the host docker's config names: docker-py's
    resolve_authconfig matches the exact host (legacy URL keys cut to their
    host, index.docker.io folded into docker.io) and asks a credential helper
    for that server only.
    """
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password and release_registry and api_host(release_registry) == host:
        return user, password
    try:
        import docker.auth

        name = DOCKER_HUB if host == DOCKER_HUB_API else host  # where `docker login` keeps it
        found = docker.auth.resolve_authconfig(docker.auth.load_config(), name) or {}
    except Exception:  # an unreadable docker config means no stored login
        return None
    if found.get("username") and found.get("password"):
        return found["username"], found["password"]
    return None


class Registry:
    """The registry API at `host`.

    `login` is release.yaml's registry: the KAIROS_REGISTRY_* login is sent
    only when `host` is its API host (empty: a docker login alone is used).
    """

    def __init__(self, host: str, *, login: str = "", timeout: float = 60.0) -> None:
        self.host = host
        self.login = login
        # Plain http only to this machine, so no login crosses a network in clear.
        scheme = "http" if is_loopback(host) else "https"
        self.base = f"{scheme}://{host}"
        self.timeout = timeout
        self.session = requests.Session()
        self._auth: dict[str, str] = {}
        self._secrets: set[str] = set()  # never printed, whatever a registry echoes back
        self._withheld = ""  # why the login stayed home, for the refusal that may follow

    # -- transport ---------------------------------------------------------
    def _ours(self, url: str) -> bool:
        """`url` is on this registry's own origin (an upload location may be elsewhere)."""
        parts = split(url)
        return f"{parts.scheme}://{parts.netloc}".lower() == self.base.lower()

    def _send(self, method: str, url: str, repo: str, **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        ours = self._ours(url)
        if repo in self._auth and ours:
            headers["Authorization"] = self._auth[repo]
        try:
            resp = self.session.request(method, url, headers=headers, timeout=self.timeout, **kw)
            if resp.status_code == 401 and repo not in self._auth and ours:
                self._authenticate(resp, repo)
                headers["Authorization"] = self._auth[repo]
                if hasattr(kw.get("data"), "seek"):
                    kw["data"].seek(0)
                resp = self.session.request(
                    method, url, headers=headers, timeout=self.timeout, **kw
                )
        except requests.ConnectionError as err:
            raise RegistryError(f"registry {self.host} unreachable ({_reason(err)})") from None
        except requests.Timeout:
            raise RegistryError(f"registry {self.host} timed out") from None
        except requests.RequestException as err:
            raise RegistryError(f"registry {self.host}: {type(err).__name__}") from None
        return resp

    def _credentials(self) -> tuple[str, str] | None:
        found = credentials(self.host, self.login)
        if found:
            user, password = found
            self._secrets |= {password, base64.b64encode(f"{user}:{password}".encode()).decode()}
        return found

    def _authenticate(self, resp: requests.Response, repo: str) -> None:
        """Answer the registry's challenge: Basic with its own login (only ever on
        self.base: https, or http to this machine), or a token from its realm."""
        challenge = resp.headers.get("WWW-Authenticate", "")
        creds = self._credentials()
        if challenge.lower().startswith("basic"):
            if not creds:
                login = f"{USER_ENV}/{PASSWORD_ENV} or docker login"
                raise RegistryError(f"registry {self.host} needs a login ({login})")
            user, password = creds
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._auth[repo] = f"Basic {token}"
            return
        params = dict(_CHALLENGE.findall(challenge))
        if "realm" not in params:
            raise RegistryError(f"registry {self.host} refused access to {repo}")
        realm = params["realm"]
        why = withheld_from(realm, self.host)
        if why and creds:  # ask for an anonymous token: public images still read
            self._withheld = f"the login for {self.host} was not sent to its token service: {why}"
            creds = None
        query = {"scope": f"repository:{repo}:pull,push"}
        if "service" in params:
            query["service"] = params["service"]
        token = self.session.get(realm, params=query, auth=creds, timeout=self.timeout)
        if token.status_code != 200:
            raise self._error(
                f"registry {self.host} refused the login for {repo} (HTTP {token.status_code})"
            )
        try:
            body = token.json()
            value = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            raise RegistryError(f"registry {self.host} sent an unreadable token") from None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"registry {self.host} sent an unreadable token")
        self._secrets.add(value)
        self._auth[repo] = f"Bearer {value}"

    def _error(self, text: str, *, denied: bool = True) -> RegistryError:
        """A one-line error without any credential this client holds; when access
        was `denied`, it says why the login was withheld, if it was."""
        if denied and self._withheld:
            text = f"{text} ({self._withheld})"
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 4:  # shorter ones would mask ordinary words, not secrets
                text = text.replace(secret, MASK)
        return RegistryError(" ".join(redact(text).split()))

    def _url(self, repo: str, path: str) -> str:
        return f"{self.base}/v2/{repo}/{path}"

    def _check(self, resp: requests.Response, what: str) -> requests.Response:
        if resp.status_code < 400:
            return resp
        text = f"registry {self.host} refused {what}: {_error_text(resp)}"
        raise self._error(text, denied=resp.status_code in (401, 403))

    # -- blobs ---------------------------------------------------------------
    def has_blob(self, repo: str, digest: str) -> bool:
        resp = self._send("HEAD", self._url(repo, f"blobs/{digest}"), repo)
        if resp.status_code == 404:
            return False
        self._check(resp, f"blob {digest}")
        return True

    def push_blob(self, repo: str, digest: str, data: bytes | BinaryIO, size: int) -> None:
        if self.has_blob(repo, digest):
            return
        start = self._check(
            self._send("POST", self._url(repo, "blobs/uploads/"), repo),
            f"an upload to {repo}",
        )
        if not start.headers.get("Location"):
            raise RegistryError(f"registry {self.host} gave no location for an upload to {repo}")
        try:
            location = urljoin(self.base + "/", start.headers["Location"])
        except ValueError:
            raise RegistryError(
                f"registry {self.host} gave an unreadable upload location"
            ) from None
        sep = "&" if "?" in location else "?"
        resp = self._send(
            "PUT",
            f"{location}{sep}digest={digest}",
            repo,
            data=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        self._check(resp, f"blob {digest}")

    def push_file(self, repo: str, path: Path, media_type: str) -> Descriptor:
        desc = Descriptor(media_type, sha256_file(path), path.stat().st_size)
        with path.open("rb") as f:
            self.push_blob(repo, desc.digest, f, desc.size)
        return desc

    def push_bytes(self, repo: str, data: bytes, media_type: str) -> Descriptor:
        desc = Descriptor(media_type, f"sha256:{hashlib.sha256(data).hexdigest()}", len(data))
        self.push_blob(repo, desc.digest, data, desc.size)
        return desc

    def get_blob(self, repo: str, digest: str) -> bytes:
        resp = self._send("GET", self._url(repo, f"blobs/{digest}"), repo)
        return self._check(resp, f"blob {digest}").content

    # -- manifests -----------------------------------------------------------
    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        resp = self._send(
            "PUT",
            self._url(repo, f"manifests/{reference}"),
            repo,
            data=body,
            headers={"Content-Type": media_type},
        )
        self._check(resp, f"manifest {repo}:{reference}")
        return f"sha256:{hashlib.sha256(body).hexdigest()}"

    def referrers(self, repo: str, digest: str) -> dict[str, Any] | None:
        """The referrers index of `digest`, or None without the referrers API."""
        resp = self._send(
            "GET", self._url(repo, f"referrers/{digest}"), repo, headers={"Accept": OCI_INDEX}
        )
        # As go-containerregistry reads it: only a 200 OCI index means the API
        # exists; 404 (distribution 2.8), 400 and 406 mean "use the fallback tag".
        if resp.status_code in (400, 404, 406):
            return None
        self._check(resp, f"referrers of {digest}")
        if not resp.headers.get("Content-Type", "").startswith(OCI_INDEX):
            return None
        try:
            return resp.json()
        except ValueError:
            return None

    def has_referrers_api(self, repo: str, digest: str) -> bool:
        return self.referrers(repo, digest) is not None

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        """The digest `repo:reference` resolves to (HEAD, else GET), or None if absent."""
        resp = self._send(
            "HEAD", self._url(repo, f"manifests/{reference}"), repo, headers={"Accept": ACCEPT}
        )
        if resp.status_code == 404:
            return None
        self._check(resp, f"manifest {repo}:{reference}")
        digest = resp.headers.get("Docker-Content-Digest", "")
        if re.fullmatch(r"sha256:[a-f0-9]{64}", digest):
            return digest
        found = self.get_manifest(repo, reference)  # some registries omit the header
        return found[2] if found else None

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str] | None:
        """(body, media type, digest), or None when the reference does not exist."""
        resp = self._send(
            "GET", self._url(repo, f"manifests/{reference}"), repo, headers={"Accept": ACCEPT}
        )
        if resp.status_code == 404:
            return None
        self._check(resp, f"manifest {repo}:{reference}")
        digest = f"sha256:{hashlib.sha256(resp.content).hexdigest()}"
        return resp.content, resp.headers.get("Content-Type", ""), digest


def _reason(err: Exception) -> str:
    text = str(err)
    for marker in ("Connection refused", "Name or service not known", "timed out"):
        if marker in text:
            return marker.lower()
    return type(err).__name__


def _error_text(resp: requests.Response) -> str:
    try:
        errors = resp.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    if errors:
        first = errors[0]
        return f"{first.get('code', 'ERROR')} {first.get('message', '')}".strip()
    return f"HTTP {resp.status_code}"


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """Canonical bytes, so the same content always has the same digest."""
    return json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()

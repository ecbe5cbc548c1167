"""A small OCI distribution client: blobs, manifests by digest, then tags.

`docker push` can only push a tag, so a half-finished release could leave a
tag behind. Talking to the registry API directly lets publish upload
everything under the manifest digest first and write tags last, and later
stages (signatures as referrers) reuse the same client.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin

import requests

from .ref import DOCKER_HUB, DOCKER_HUB_API

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


def is_loopback(host: str) -> bool:
    name = host[1 : host.index("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def credentials(host: str) -> tuple[str, str] | None:
    """From the environment first, then the docker config (helpers included)."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password:
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
    def __init__(self, host: str, *, timeout: float = 60.0) -> None:
        self.host = host
        scheme = "http" if is_loopback(host) else "https"
        self.base = f"{scheme}://{host}"
        self.timeout = timeout
        self.session = requests.Session()
        self._auth: dict[str, str] = {}

    # -- transport ---------------------------------------------------------
    def _send(self, method: str, url: str, repo: str, **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if repo in self._auth:
            headers["Authorization"] = self._auth[repo]
        try:
            resp = self.session.request(method, url, headers=headers, timeout=self.timeout, **kw)
            if resp.status_code == 401 and repo not in self._auth:
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

    def _authenticate(self, resp: requests.Response, repo: str) -> None:
        challenge = resp.headers.get("WWW-Authenticate", "")
        creds = credentials(self.host)
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
        query = {"scope": f"repository:{repo}:pull,push"}
        if "service" in params:
            query["service"] = params["service"]
        token = self.session.get(params["realm"], params=query, auth=creds, timeout=self.timeout)
        if token.status_code != 200:
            raise RegistryError(
                f"registry {self.host} refused the login for {repo} (HTTP {token.status_code})"
            )
        try:
            body = token.json()
            self._auth[repo] = f"Bearer {body.get('token') or body.get('access_token')}"
        except (ValueError, AttributeError):
            raise RegistryError(f"registry {self.host} sent an unreadable token") from None

    def _url(self, repo: str, path: str) -> str:
        return f"{self.base}/v2/{repo}/{path}"

    def _check(self, resp: requests.Response, what: str) -> requests.Response:
        if resp.status_code < 400:
            return resp
        raise RegistryError(f"registry {self.host} refused {what}: {_error_text(resp)}")

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
        location = urljoin(self.base + "/", start.headers["Location"])
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

"""An OCI registry in memory, for tests of code that pushes and reads manifests.

Only storage is faked: the Registry client's own push_file, push_bytes and
referrers logic run on top of it, and any network call is an error.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kairos_distro.registry import OCI_INDEX, OCI_MANIFEST, Descriptor, Registry, RegistryError
from kairos_distro.registry import manifest_bytes as canonical

REPO = "ns/distro"
HOST = "registry.test"


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class MemoryRegistry(Registry):
    """A registry's storage in memory; the client's own push and referrers code runs on it.

    Manifests are kept under every reference they were put by, as a registry
    does; `log` records each write in order. With `referrers_api` the
    referrers endpoint answers from the stored manifests' subjects, as OCI 1.1
    registries do; without it, it answers None (a 404).
    """

    def __init__(self, *, referrers_api: bool = False) -> None:
        super().__init__(HOST)
        self.referrers_api = referrers_api
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.log: list[tuple[str, str]] = []

    def _send(self, *args: Any, **kw: Any) -> Any:
        raise AssertionError("the in-memory registry went to the network")

    def push_blob(self, repo: str, digest: str, data: Any, size: int) -> None:
        assert repo == REPO
        body = data if isinstance(data, bytes) else data.read()  # push_file streams a file
        assert len(body) == size and sha(body) == digest
        self.blobs[digest] = body
        self.log.append(("blob", digest))

    def has_blob(self, repo: str, digest: str) -> bool:
        return digest in self.blobs

    def get_blob(self, repo: str, digest: str) -> bytes:
        if digest not in self.blobs:
            raise RegistryError(f"registry {self.host} refused blob {digest}: BLOB_UNKNOWN")
        return self.blobs[digest]

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        assert repo == REPO
        self.manifests[reference] = (body, media_type)
        self.manifests[sha(body)] = (body, media_type)
        self.log.append(("manifest", reference))
        return sha(body)

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str] | None:
        found = self.manifests.get(reference)
        return None if found is None else (found[0], found[1], sha(found[0]))

    def referrers(self, repo: str, digest: str) -> dict[str, Any] | None:
        if not self.referrers_api:
            return None
        listed = []
        for ref, (body, media_type) in self.manifests.items():
            manifest = json.loads(body)
            if ref == sha(body) and manifest.get("subject", {}).get("digest") == digest:
                listed.append(
                    {
                        "mediaType": media_type,
                        "digest": ref,
                        "size": len(body),
                        "artifactType": manifest.get("artifactType"),
                        "annotations": manifest.get("annotations", {}),
                    }
                )
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}

    def tags(self) -> list[str]:
        """References that are not digests: what a user could pull by name."""
        return [ref for ref, (body, _) in self.manifests.items() if ref != sha(body)]

    def image(self, tag: str = "") -> Descriptor:
        """Push an image manifest (by digest, and under `tag` if given)."""
        body = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})
        self.put_manifest(REPO, sha(body), body, OCI_MANIFEST)
        if tag:
            self.put_manifest(REPO, tag, body, OCI_MANIFEST)
        return Descriptor(OCI_MANIFEST, sha(body), len(body))

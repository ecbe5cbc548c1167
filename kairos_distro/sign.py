"""Sign stage: keyless Sigstore signatures in the form cosign reads.

Images: a DSSE in-toto statement over the manifest digest with cosign's
`https://sigstore.dev/cosign/sign/v1` predicate, in a Sigstore bundle attached
as an OCI referrer, and listed under the `sha256-<hex>` fallback tag for
registries without the referrers API. Attestations (the CycloneDX SBOM) are
the same form with the predicate type `https://cyclonedx.org/bom` and the
document as predicate: what `cosign verify-attestation --type cyclonedx` reads.
Artifacts: each `.sha256` file signed as a blob bundle `<file>.sigstore.json`
(what `cosign verify-blob --bundle` and `sigstore verify identity` read).
Verification is offline, from the trusted root, against the identity and
issuer in release.yaml.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import Signing
from .hosts import redact
from .registry import OCI_INDEX, OCI_MANIFEST, Descriptor, Registry, RegistryError, manifest_bytes
from .words import show

COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
CYCLONEDX = "https://cyclonedx.org/bom"  # cosign's --type cyclonedx
INTOTO = "https://in-toto.io/Statement/v1"
INTOTO_PAYLOAD = "application/vnd.in-toto+json"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
TOKEN_ENV = "SIGSTORE_ID_TOKEN"
BUNDLE_SUFFIX = ".sigstore.json"
SIGSTORE_USERNAME_OID = "1.3.6.1.4.1.57264.1.7"  # Fulcio's "other name" SAN


class SignError(RuntimeError):
    """One line: what failed to sign or verify, and why."""


# -- pure: what gets signed and how it is attached ------------------------------
def statement(
    name: str, digest: str, predicate_type: str = COSIGN_SIGN, predicate: Any = None
) -> bytes:
    """An in-toto statement about the manifest digest; by default cosign's signature.

    cosign leaves the subject unnamed; sigstore-python requires a name, so the
    repository goes there (verifiers match the digest only).
    """
    algorithm, _, hexdigest = digest.partition(":")
    body = {
        "_type": INTOTO,
        "subject": [{"name": name, "digest": {algorithm: hexdigest}}],
        "predicateType": predicate_type,
        "predicate": {} if predicate is None else predicate,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def referrer_manifest(
    bundle: Descriptor, subject: Descriptor, created: str, predicate_type: str = COSIGN_SIGN
) -> dict[str, Any]:
    """The OCI manifest that attaches a bundle to `subject` (OCI 1.1 referrers)."""
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_TYPE,
        "config": Descriptor(EMPTY_TYPE, sha256_of(EMPTY), len(EMPTY)).as_json(),
        "layers": [bundle.as_json()],
        "subject": subject.as_json(),
        "annotations": annotations(created, predicate_type),
    }


PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"


def annotations(created: str, predicate_type: str = COSIGN_SIGN) -> dict[str, str]:
    return {
        "dev.sigstore.bundle.content": "dsse-envelope",
        PREDICATE_ANNOTATION: predicate_type,
        "org.opencontainers.image.created": created,
    }


def fallback_tag(digest: str) -> str:
    """The referrers tag schema: `<alg>-<hex>` of the subject."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}"


def with_referrer(index: dict[str, Any] | None, descriptor: dict[str, Any]) -> dict[str, Any]:
    """The fallback index with `descriptor` added once (the client maintains it)."""
    manifests = [
        m for m in (index or {}).get("manifests", []) if m["digest"] != descriptor["digest"]
    ]
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*manifests, descriptor]}


def sha256_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- policy -----------------------------------------------------------------------
@dataclass(frozen=True)
class IdentityPattern:
    """Like sigstore's Identity policy, with a full-match regexp (cosign's -regexp)."""

    pattern: str
    issuer: str

    def verify(self, cert: Any) -> None:
        from cryptography import x509
        from sigstore.errors import VerificationError
        from sigstore.verify.policy import OIDCIssuer

        OIDCIssuer(self.issuer).verify(cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [*san.get_values_for_type(x509.RFC822Name)]
        sans += san.get_values_for_type(x509.UniformResourceIdentifier)
        sans += [
            _utf8_string(o.value)
            for o in san.get_values_for_type(x509.OtherName)
            if o.type_id.dotted_string == SIGSTORE_USERNAME_OID
        ]
        if not any(re.fullmatch(self.pattern, s) for s in sans):
            raise VerificationError(
                f"no certificate identity matches {show(self.pattern)}: {show(sans)}"
            )


def _utf8_string(der: bytes) -> str:
    """The text of a DER UTF8String (tag 0x0c, short or long length form)."""
    if len(der) < 2 or der[0] != 0x0C:
        return der.decode(errors="replace")
    size, start = der[1], 2
    if size & 0x80:  # long form: the next (size & 0x7f) bytes hold the length
        start = 2 + (size & 0x7F)
    return der[start:].decode(errors="replace")


def policy(signing: Signing) -> Any:
    from sigstore.verify.policy import Identity

    if signing.identity:
        return Identity(identity=signing.identity, issuer=signing.issuer)
    return IdentityPattern(signing.identity_regexp, signing.issuer)


def one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__  # sigstore's own words may carry a URL or token
    return redact(" ".join(text.split()))[:300]


# -- trust, identity, the signer and verifier ---------------------------------------
@dataclass
class Sigstore:
    """Lazily built trust, signer and verifier, shared by every cell of a task."""

    signing: Signing
    root: Path = Path(".")
    token: str = ""
    _trust: Any = field(default=None, repr=False)
    _signer: Any = field(default=None, repr=False)

    def trust(self) -> Any:
        if self._trust is None:
            from sigstore.models import ClientTrustConfig

            trust = self.signing.trust
            try:
                if trust == "production":
                    self._trust = ClientTrustConfig.production()
                elif trust == "staging":
                    self._trust = ClientTrustConfig.staging()
                else:
                    self._trust = ClientTrustConfig.from_json((self.root / trust).read_text())
            except OSError as err:
                raise SignError(f"trust config {trust}: {err.strerror}") from None
            except Exception as err:  # TUF refresh or a malformed trust config
                raise SignError(f"trust config {trust}: {one_line(err)}") from None
        return self._trust

    def identity(self) -> Any:
        from sigstore.oidc import IdentityError, IdentityToken, Issuer, detect_credential

        try:
            raw = self.token or os.environ.get(TOKEN_ENV) or detect_credential()
            if raw:
                return IdentityToken(raw)
            if not sys.stdin.isatty():
                raise SignError(
                    f"no identity token: set {TOKEN_ENV}, give CI an OIDC token "
                    "(GitHub `id-token: write`), or sign from a terminal"
                )
            issuer = Issuer(self.trust().signing_config.get_oidc_url())
            return issuer.identity_token()  # the browser flow, on a laptop
        except IdentityError as err:
            raise SignError(f"identity token: {one_line(err)}") from None

    def signer(self) -> Any:
        if self._signer is None:
            from sigstore.sign import Signer, SigningContext

            token, trust = self.identity(), self.trust()
            try:
                context = SigningContext.from_trust_config(trust)
                self._signer = Signer(token, context)  # requests the certificate now
            except Exception as err:  # expired token, unreachable Fulcio, bad SCT
                raise SignError(f"signing certificate: {one_line(err)}") from None
        return self._signer

    def verifier(self) -> Any:
        from sigstore.verify import Verifier

        return Verifier(trusted_root=self.trust().trusted_root)

    def trusted_root_json(self) -> str:
        """The trusted root of `signing.trust` as trusted_root.json (cosign's --trusted-root).

        sigstore-python has no public writer for it; its protobuf model round-trips
        the file (tests/test_sign.py holds it to that).
        """
        root = self.trust().trusted_root._inner
        return json.dumps(json.loads(root.to_json()), indent=2) + "\n"


# -- effects ---------------------------------------------------------------------------
def sign_image(sigstore: Sigstore, registry: Registry, repo: str, digest: str) -> dict[str, Any]:
    """Sign `repo@digest` and attach the bundle; return the referrer's descriptor."""
    return attest_image(sigstore, registry, repo, digest, COSIGN_SIGN, None)


def attest_image(
    sigstore: Sigstore,
    registry: Registry,
    repo: str,
    digest: str,
    predicate_type: str,
    predicate: Any,
) -> dict[str, Any]:
    """Sign a statement about `repo@digest` and attach it as a referrer."""
    from sigstore.dsse import Statement

    found = registry.get_manifest(repo, digest)
    if found is None:
        raise SignError(f"{registry.host}/{repo}@{digest} does not exist")
    body, media_type, _ = found
    what = "signing" if predicate_type == COSIGN_SIGN else f"attesting {predicate_type} for"
    try:
        name = f"{registry.host}/{repo}"
        payload = statement(name, digest, predicate_type, predicate)
        bundle = sigstore.signer().sign_dsse(Statement(payload))
    except SignError:
        raise
    except Exception as err:  # Rekor refused or unreachable
        raise SignError(f"{what} {digest}: {one_line(err)}") from None
    subject = Descriptor(media_type, digest, len(body))
    return attach(registry, repo, subject, bundle.to_json().encode(), predicate_type)


def attach(
    registry: Registry,
    repo: str,
    subject: Descriptor,
    bundle: bytes,
    predicate_type: str = COSIGN_SIGN,
) -> dict[str, Any]:
    """Push the referrer manifest by digest; keep the fallback index up to date."""
    registry.push_bytes(repo, EMPTY, EMPTY_TYPE)
    layer = registry.push_bytes(repo, bundle, BUNDLE_TYPE)
    created = now()
    body = manifest_bytes(referrer_manifest(layer, subject, created, predicate_type))
    digest = sha256_of(body)
    registry.put_manifest(repo, digest, body, OCI_MANIFEST)
    descriptor = {
        **Descriptor(OCI_MANIFEST, digest, len(body)).as_json(),
        "artifactType": BUNDLE_TYPE,
        "annotations": annotations(created, predicate_type),
    }
    if not registry.has_referrers_api(repo, subject.digest):
        tag = fallback_tag(subject.digest)
        found = registry.get_manifest(repo, tag)
        index = json.loads(found[0]) if found else None
        registry.put_manifest(
            repo, tag, manifest_bytes(with_referrer(index, descriptor)), OCI_INDEX
        )
    return descriptor


def referrers(
    registry: Registry, repo: str, digest: str, predicate_type: str = COSIGN_SIGN
) -> list[dict[str, Any]]:
    """Bundle referrers of `digest` for one predicate type: referrers API, else fallback tag.

    A referrer without the predicate annotation is kept: its statement is checked anyway.
    """
    index = registry.referrers(repo, digest)
    if index is None:
        found = registry.get_manifest(repo, fallback_tag(digest))
        index = json.loads(found[0]) if found else {}
    return [
        m
        for m in index.get("manifests", [])
        if m.get("artifactType") == BUNDLE_TYPE
        and (m.get("annotations") or {}).get(PREDICATE_ANNOTATION, predicate_type) == predicate_type
    ]


def verify_image(sigstore: Sigstore, registry: Registry, repo: str, digest: str) -> None:
    """Some attached bundle must verify, sign cosign's statement, and name `digest`."""
    verify_attestation(sigstore, registry, repo, digest, COSIGN_SIGN)


def verify_attestation(
    sigstore: Sigstore, registry: Registry, repo: str, digest: str, kind: str, want: Any = None
) -> Any:
    """The predicate of an attached statement of this type that verifies for `digest`;
    with `want`, one equal to it (a digest released twice carries both reports)."""
    from sigstore.models import Bundle

    what = "signature" if kind == COSIGN_SIGN else f"{kind} attestation"
    candidates = referrers(registry, repo, digest, kind)
    if not candidates:
        raise SignError(f"no {what} attached to {registry.host}/{repo}@{digest}")
    verifier, pol, reasons = sigstore.verifier(), policy(sigstore.signing), []
    for candidate in candidates:
        try:
            found = registry.get_manifest(repo, candidate["digest"])
            if found is None:
                raise SignError("referrer manifest is missing")
            manifest = json.loads(found[0])
            if manifest.get("subject", {}).get("digest") != digest:
                raise SignError("referrer names another subject")
            blob = registry.get_blob(repo, manifest["layers"][0]["digest"])
            payload_type, payload = verifier.verify_dsse(Bundle.from_json(blob), pol)
            predicate = check_statement(payload_type, payload, digest, kind)
            if want is None or predicate == want:
                return predicate
            reasons.append("it attests another document")
        except (SignError, RegistryError, KeyError, ValueError) as err:
            reasons.append(one_line(err))
        except Exception as err:  # sigstore's VerificationError and friends
            reasons.append(one_line(err))
    raise SignError(f"no valid {what} for {registry.host}/{repo}@{digest}: {reasons[0]}")


def check_statement(
    payload_type: str, payload: bytes, digest: str, predicate_type: str = COSIGN_SIGN
) -> Any:
    """The statement's predicate, once its type and subject digest are the expected ones."""
    if payload_type != INTOTO_PAYLOAD:
        raise SignError(f"payload type {show(payload_type)} is not in-toto")
    body = json.loads(payload)
    if body.get("predicateType") != predicate_type:
        raise SignError(f"predicate {show(body.get('predicateType'))} is not {predicate_type}")
    algorithm, _, hexdigest = digest.partition(":")
    if not any(s.get("digest", {}).get(algorithm) == hexdigest for s in body.get("subject", [])):
        raise SignError(f"signature is for another digest than {digest}")
    return body.get("predicate")


def sign_file(sigstore: Sigstore, path: Path) -> Path:
    """Sign a checksum file as a blob; write `<file>.sigstore.json` atomically."""
    try:
        bundle = sigstore.signer().sign_artifact(path.read_bytes())
    except SignError:
        raise
    except Exception as err:
        raise SignError(f"signing {path.name}: {one_line(err)}") from None
    out = path.with_name(path.name + BUNDLE_SUFFIX)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(bundle.to_json())
    tmp.replace(out)
    return out


def verify_file(sigstore: Sigstore, path: Path) -> None:
    from sigstore.models import Bundle

    bundle_path = path.with_name(path.name + BUNDLE_SUFFIX)
    if not bundle_path.exists():
        raise SignError(f"{path.name} has no {bundle_path.name}")
    try:
        bundle = Bundle.from_json(bundle_path.read_bytes())
        sigstore.verifier().verify_artifact(path.read_bytes(), bundle, policy(sigstore.signing))
    except Exception as err:
        raise SignError(f"{path.name}: {one_line(err)}") from None

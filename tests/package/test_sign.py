"""Signing: what gets signed, how it is attached, whose signature counts, and the flow.

No network, Docker or Sigstore service here: real keyless signing runs end to
end in the template's own tests against a local Sigstore instance. These tests
keep the registry in memory and stand in for the signer and the verifier, so
what they pin is the part this repository owns: cosign's statement and
referrer layout, the identity policy, the error lines, and that a tag is never
written before its digest was signed and verified.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import site
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grype_report
import pytest
import sigstore.dsse
import sigstore.models
import sigstore.oidc
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID, ObjectIdentifier
from memory_registry import MemoryRegistry, sha
from package_helpers import run_invoke
from sigstore.errors import VerificationError
from sigstore.verify.policy import Identity

from kairos_distro import artifacts, config, naming, publish, scan, sign
from kairos_distro import signing as per_cell
from kairos_distro.build import Built
from kairos_distro.registry import OCI_INDEX, OCI_MANIFEST, Descriptor, Registry, RegistryError
from kairos_distro.registry import manifest_bytes as canonical
from kairos_distro.runner import Runner, StepError

DIGEST = "sha256:" + "d" * 64
OTHER = "sha256:" + "e" * 64
REPO = "ns/distro"
HOST = "registry.test"
NAME = f"{HOST}/{REPO}"
ISSUER = "https://issuer.test"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
CREATED = "2025-01-02T03:04:05Z"


def signing(**changes: Any) -> config.Signing:
    """Signing as release.yaml would enable it, with an exact identity by default."""
    values: dict[str, Any] = {"enabled": True, "identity": "ci@example.com", "issuer": ISSUER}
    return config.Signing(**{**values, **changes})


def one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert message and "\n" not in message, message
    return message


# -- stand-ins ---------------------------------------------------------------------------------


class FakeBundle:
    def __init__(self, text: str) -> None:
        self.text = text

    def to_json(self) -> str:
        return self.text


@dataclass
class FakeSigner:
    """Signs nothing: returns a bundle naming what it was given, or raises `error`."""

    error: Exception | None = None
    signed: list[Any] = field(default_factory=list)

    def sign_dsse(self, statement: Any) -> FakeBundle:
        return self._sign(statement)

    def sign_artifact(self, data: bytes) -> FakeBundle:
        return self._sign(data)

    def _sign(self, what: Any) -> FakeBundle:
        if self.error:
            raise self.error
        self.signed.append(what)
        return FakeBundle(json.dumps({"bundle": len(self.signed)}))


@dataclass
class FakeVerifier:
    """Answers each verify call from `answers` in turn: a (type, payload) pair or an error."""

    answers: list[Any] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def _answer(self) -> Any:
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        return answer

    def verify_dsse(self, bundle: Any, policy: Any) -> Any:
        self.calls.append((bundle, policy))
        return self._answer()

    def verify_artifact(self, data: bytes, bundle: Any, policy: Any) -> None:
        self.calls.append((data, bundle, policy))
        self._answer()


@dataclass
class _FakeSigstore:
    """Duck-types sign.Sigstore: the signer and verifier are the fakes above."""

    signing: config.Signing = field(default_factory=signing)
    signer_: Any = field(default_factory=FakeSigner)
    verifier_: Any = field(default_factory=FakeVerifier)

    def signer(self) -> Any:
        if isinstance(self.signer_, Exception):
            raise self.signer_
        return self.signer_

    def verifier(self) -> Any:
        return self.verifier_


def fake_sigstore(**kw: Any) -> Any:
    """A stand-in for sign.Sigstore, typed Any so it goes where a Sigstore goes."""
    return _FakeSigstore(**kw)


@pytest.fixture
def bundles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bundle.from_json hands the raw bytes through, tagged, so fakes can check them."""
    monkeypatch.setattr(
        sigstore.models.Bundle, "from_json", staticmethod(lambda raw: ("bundle", bytes(raw)))
    )


# -- what gets signed --------------------------------------------------------------------------


def test_statement_is_cosigns_sign_statement() -> None:
    body = sign.statement(NAME, DIGEST)
    # The exact bytes that get signed: compact, in this key order.
    assert body == (
        b'{"_type":"https://in-toto.io/Statement/v1",'
        b'"subject":[{"name":"registry.test/ns/distro","digest":{"sha256":"' + b"d" * 64 + b'"}}],'
        b'"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}'
    )
    # sigstore-python takes it as a valid in-toto statement.
    assert sigstore.dsse.Statement(body) is not None


def test_empty_descriptor_is_the_oci_empty_json() -> None:
    assert sha(sign.EMPTY) == EMPTY_DIGEST
    assert len(sign.EMPTY) == 2


def test_referrer_manifest_attaches_a_bundle_to_its_subject() -> None:
    bundle = Descriptor(sign.BUNDLE_TYPE, OTHER, 1234)
    subject = Descriptor(OCI_MANIFEST, DIGEST, 567)
    assert sign.referrer_manifest(bundle, subject, CREATED) == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": EMPTY_DIGEST,
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "digest": OTHER,
                "size": 1234,
            }
        ],
        "subject": {"mediaType": OCI_MANIFEST, "digest": DIGEST, "size": 567},
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
            "org.opencontainers.image.created": CREATED,
        },
    }


def test_now_is_an_rfc3339_utc_timestamp() -> None:
    stamp = sign.now()
    parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - parsed) < timedelta(minutes=1)


def test_fallback_tag_follows_the_referrers_tag_schema() -> None:
    assert sign.fallback_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32
    assert sign.fallback_tag(DIGEST) == DIGEST.replace(":", "-")


def descriptor(digest: str, created: str = CREATED) -> dict[str, Any]:
    return {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": 10,
        "artifactType": sign.BUNDLE_TYPE,
        "annotations": sign.annotations(created),
    }


def test_with_referrer_starts_an_index() -> None:
    assert sign.with_referrer(None, descriptor(DIGEST)) == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor(DIGEST)],
    }


def test_with_referrer_adds_once_and_keeps_the_others() -> None:
    sbom = {"mediaType": OCI_MANIFEST, "digest": OTHER, "size": 3, "artifactType": "spdx"}
    index = sign.with_referrer(None, sbom)
    index = sign.with_referrer(index, descriptor(DIGEST))
    again = sign.with_referrer(index, descriptor(DIGEST, "2030-01-01T00:00:00Z"))
    assert again["mediaType"] == OCI_INDEX
    assert again["manifests"] == [sbom, descriptor(DIGEST, "2030-01-01T00:00:00Z")]
    assert sign.with_referrer(index, descriptor(DIGEST)) == index  # adding twice adds once
    assert index["manifests"] == [sbom, descriptor(DIGEST)]  # the given index is not changed


# -- what a verified payload must say ----------------------------------------------------------


def test_check_statement_accepts_cosigns_statement() -> None:
    payload = sign.statement(NAME, DIGEST)
    assert sign.check_statement(sign.INTOTO_PAYLOAD, payload, DIGEST) == {}  # the predicate
    # Another subject next to ours does not hide ours.
    body = json.loads(payload)
    body["subject"].insert(0, {"name": "x", "digest": {"sha256": "f" * 64}})
    assert sign.check_statement(sign.INTOTO_PAYLOAD, json.dumps(body).encode(), DIGEST) == {}


def test_check_statement_returns_an_attestations_predicate() -> None:
    bom = {"bomFormat": "CycloneDX", "components": []}
    payload = sign.statement(NAME, DIGEST, sign.CYCLONEDX, bom)
    assert sign.check_statement(sign.INTOTO_PAYLOAD, payload, DIGEST, sign.CYCLONEDX) == bom
    signature = sign.statement(NAME, DIGEST)
    with pytest.raises(sign.SignError, match=r"is not https://cyclonedx\.org/bom"):
        sign.check_statement(sign.INTOTO_PAYLOAD, signature, DIGEST, sign.CYCLONEDX)


@pytest.mark.parametrize(
    "payload_type, payload, message",
    [
        (
            "application/vnd.dev.cosign.simplesigning.v1+json",
            sign.statement(NAME, DIGEST),
            'payload type "application/vnd.dev.cosign.simplesigning.v1+json" is not in-toto',
        ),
        (
            sign.INTOTO_PAYLOAD,
            sign.statement(NAME, DIGEST).replace(
                b"https://sigstore.dev/cosign/sign/v1", b"https://slsa.dev/provenance/v1"
            ),
            'predicate "https://slsa.dev/provenance/v1" is not https://sigstore.dev/cosign/sign/v1',
        ),
        (
            sign.INTOTO_PAYLOAD,
            sign.statement(NAME, OTHER),
            f"signature is for another digest than {DIGEST}",
        ),
        (
            sign.INTOTO_PAYLOAD,
            sign.statement(NAME, "sha512:" + "d" * 64),
            f"signature is for another digest than {DIGEST}",
        ),
    ],
    ids=["payload-type", "predicate", "digest", "algorithm"],
)
def test_check_statement_refusals(payload_type, payload, message) -> None:
    with pytest.raises(sign.SignError) as caught:
        sign.check_statement(payload_type, payload, DIGEST)
    assert one_line(caught) == message


# -- whose signature counts: the identity policy -----------------------------------------------

KEY = ec.generate_private_key(ec.SECP256R1())
ISSUER_OID = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
WORKFLOW = "https://github.com/my-org/distro/.github/workflows/build.yml@refs/tags/v1.0.0"


def certificate(sans: list[x509.GeneralName], issuer: str | None = ISSUER) -> x509.Certificate:
    """A self-signed certificate shaped like Fulcio's: identity in the SAN, issuer extension."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sigstore-test")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName(sans), critical=True)
    )
    if issuer is not None:  # Fulcio's v1 issuer extension: the raw UTF-8 bytes
        ext = x509.UnrecognizedExtension(ISSUER_OID, issuer.encode())
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(KEY, hashes.SHA256())


EMAIL = certificate([x509.RFC822Name("ci@example.com")])
URI = certificate([x509.UniformResourceIdentifier(WORKFLOW)])


@pytest.mark.parametrize(
    "cert, pattern",
    [
        (EMAIL, r"ci@example\.com"),
        (EMAIL, r".*@example\.com"),
        (URI, r"^https://github\.com/my-org/distro/\.github/workflows/build\.yml@refs/tags/v.*$"),
        (URI, r"https://github\.com/my-org/distro/.*"),
    ],
)
def test_identity_pattern_accepts_a_full_match(cert, pattern) -> None:
    assert sign.IdentityPattern(pattern, ISSUER).verify(cert) is None


@pytest.mark.parametrize(
    "cert, pattern",
    [
        (EMAIL, r"ci@example"),  # a prefix is not the identity
        (EMAIL, r"example\.com"),  # nor is a suffix
        (EMAIL, r"other@example\.com"),
        (URI, r"https://github\.com/my-org/distro"),
        (URI, r"https://github\.com/my-org/other/.*"),
    ],
)
def test_identity_pattern_refuses_a_partial_match(cert, pattern) -> None:
    with pytest.raises(VerificationError, match="no certificate identity matches"):
        sign.IdentityPattern(pattern, ISSUER).verify(cert)


@pytest.mark.parametrize("issuer", ["https://other.test", None])
def test_identity_pattern_refuses_another_or_no_issuer(issuer) -> None:
    cert = certificate([x509.RFC822Name("ci@example.com")], issuer=issuer)
    with pytest.raises(VerificationError, match="OIDCIssuer"):
        sign.IdentityPattern(r".*", ISSUER).verify(cert)


def test_policy_is_sigstores_identity_for_an_exact_identity() -> None:
    pol = sign.policy(signing(identity="ci@example.com"))
    assert isinstance(pol, Identity)
    pol.verify(EMAIL)
    with pytest.raises(VerificationError):
        sign.policy(signing(identity="other@example.com")).verify(EMAIL)
    with pytest.raises(VerificationError):
        sign.policy(signing(issuer="https://other.test")).verify(EMAIL)


def test_policy_is_a_pattern_for_identity_regexp() -> None:
    pol = sign.policy(signing(identity="", identity_regexp=r".*@example\.com"))
    assert pol == sign.IdentityPattern(r".*@example\.com", ISSUER)
    pol.verify(EMAIL)


# -- identity token and trust ------------------------------------------------------------------


def token(sub: str, **claims: Any) -> str:
    """An unsigned-looking OIDC token with the claims sigstore-python checks (not the signature)."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "sigstore", "sub": sub, "iat": now, "exp": now + 600, **claims}

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(body)}.c2lnbmF0dXJl"


@pytest.fixture
def no_ambient(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No SIGSTORE_ID_TOKEN, no CI credential, stdin not a terminal; records detection."""
    asked: list[str] = []

    def detect(*args: Any) -> None:
        asked.append("detect")
        return None

    monkeypatch.delenv(sign.TOKEN_ENV, raising=False)
    monkeypatch.setattr(sigstore.oidc, "detect_credential", detect)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    return asked


def test_identity_explicit_token_wins(monkeypatch, no_ambient) -> None:
    monkeypatch.setenv(sign.TOKEN_ENV, token("from-env"))
    found = sign.Sigstore(signing(), token=token("explicit")).identity()
    assert found.identity == "explicit"
    assert no_ambient == []


def test_identity_from_the_environment(monkeypatch, no_ambient) -> None:
    monkeypatch.setenv(sign.TOKEN_ENV, token("from-env"))
    assert sign.Sigstore(signing()).identity().identity == "from-env"
    assert no_ambient == []


def test_identity_from_ci_ambient_credentials(monkeypatch, no_ambient) -> None:
    monkeypatch.setattr(sigstore.oidc, "detect_credential", lambda *a: token("ambient"))
    assert sign.Sigstore(signing()).identity().identity == "ambient"


def test_identity_without_any_token_off_a_terminal(no_ambient) -> None:
    with pytest.raises(sign.SignError) as caught:
        sign.Sigstore(signing(trust="missing.json")).identity()
    message = one_line(caught)
    assert message.startswith("no identity token: set SIGSTORE_ID_TOKEN"), message
    assert no_ambient == ["detect"]  # CI credentials were looked for first


@pytest.mark.parametrize(
    "raw",
    [
        "not-a-token",
        token("late", iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        token("nobody", aud="someone-else"),
    ],
    ids=["garbage", "expired", "audience"],
)
def test_identity_refuses_a_malformed_token(no_ambient, raw) -> None:
    with pytest.raises(sign.SignError) as caught:
        sign.Sigstore(signing(), token=raw).identity()
    assert one_line(caught).startswith("identity token: "), caught.value


def test_identity_error_from_credential_detection(monkeypatch, no_ambient) -> None:
    def broken(*args: Any) -> None:
        raise sigstore.oidc.IdentityError("GitHub Actions: no id-token permission")

    monkeypatch.setattr(sigstore.oidc, "detect_credential", broken)
    with pytest.raises(sign.SignError) as caught:
        sign.Sigstore(signing()).identity()
    assert one_line(caught).startswith("identity token: "), caught.value


def test_trust_file_missing_names_the_file(tmp_path) -> None:
    with pytest.raises(sign.SignError) as caught:
        sign.Sigstore(signing(trust="trust.json"), root=tmp_path).trust()
    assert one_line(caught) == "trust config trust.json: No such file or directory"


@pytest.mark.parametrize(
    "text", ['{"mediaType": ', '{"mediaType": "application/json"}', "[]\n"], ids=str.strip
)
def test_trust_file_malformed_is_one_line(tmp_path, text) -> None:
    # The file is read relative to the release file's directory (`root`).
    (tmp_path / "sigstore").mkdir()
    (tmp_path / "sigstore" / "trust.json").write_text(text)
    with pytest.raises(sign.SignError) as caught:
        sign.Sigstore(signing(trust="sigstore/trust.json"), root=tmp_path).trust()
    message = one_line(caught)
    assert message.startswith("trust config sigstore/trust.json: "), message
    assert "No such file" not in message


def test_signer_asks_for_the_identity_first(no_ambient) -> None:
    # Without a token nothing else is tried: no trust config, no certificate request.
    with pytest.raises(sign.SignError, match=r"^no identity token: "):
        sign.Sigstore(signing(trust="missing.json")).signer()


# -- attaching and finding referrers -----------------------------------------------------------


def test_attach_without_referrers_api_writes_the_fallback_index() -> None:
    registry = MemoryRegistry()
    subject = registry.image("v1")
    registry.log.clear()
    found = sign.attach(registry, REPO, subject, b'{"bundle": 1}')
    referrer = sha(registry.manifests[found["digest"]][0])
    tag = sign.fallback_tag(subject.digest)
    # Blobs, then the referrer by digest, then the index under the fallback tag.
    assert registry.log == [
        ("blob", EMPTY_DIGEST),
        ("blob", sha(b'{"bundle": 1}')),
        ("manifest", referrer),
        ("manifest", tag),
    ]
    assert registry.blobs[EMPTY_DIGEST] == b"{}"
    body, media_type = registry.manifests[referrer]
    manifest = json.loads(body)
    created = manifest["annotations"]["org.opencontainers.image.created"]
    layer = Descriptor(sign.BUNDLE_TYPE, sha(b'{"bundle": 1}'), len(b'{"bundle": 1}'))
    assert manifest == sign.referrer_manifest(layer, subject, created)
    assert body == canonical(manifest) and media_type == OCI_MANIFEST
    assert found == {
        "mediaType": OCI_MANIFEST,
        "digest": referrer,
        "size": len(body),
        "artifactType": sign.BUNDLE_TYPE,
        "annotations": sign.annotations(created),
    }
    index, index_type = registry.manifests[tag]
    assert index_type == OCI_INDEX
    assert json.loads(index) == sign.with_referrer(None, found)
    assert sign.referrers(registry, REPO, subject.digest) == [found]


def test_attach_twice_keeps_both_in_the_fallback_index() -> None:
    registry = MemoryRegistry()
    subject = registry.image()
    first = sign.attach(registry, REPO, subject, b"one")
    second = sign.attach(registry, REPO, subject, b"two")
    assert first["digest"] != second["digest"]
    index = json.loads(registry.manifests[sign.fallback_tag(subject.digest)][0])
    assert index["manifests"] == [first, second]
    assert sign.referrers(registry, REPO, subject.digest) == [first, second]


def test_attach_with_referrers_api_writes_no_fallback_tag() -> None:
    registry = MemoryRegistry(referrers_api=True)
    subject = registry.image()
    found = sign.attach(registry, REPO, subject, b'{"bundle": 1}')
    assert registry.tags() == []
    assert sign.fallback_tag(subject.digest) not in registry.manifests
    assert sign.referrers(registry, REPO, subject.digest) == [found]


def test_referrers_keeps_only_sigstore_bundles() -> None:
    sbom = {"mediaType": OCI_MANIFEST, "digest": OTHER, "size": 3, "artifactType": "spdx"}
    untyped = {"mediaType": OCI_MANIFEST, "digest": OTHER, "size": 3}
    ours = descriptor(DIGEST)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [sbom, ours, untyped]}
    registry = MemoryRegistry()
    registry.put_manifest(REPO, sign.fallback_tag(DIGEST), canonical(index), OCI_INDEX)
    assert sign.referrers(registry, REPO, DIGEST) == [ours]


def test_referrers_api_answer_is_filtered_too() -> None:
    registry = MemoryRegistry(referrers_api=True)
    subject = registry.image()
    sbom = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": sign.EMPTY_TYPE, "digest": EMPTY_DIGEST, "size": 2},
        "layers": [],
        "subject": subject.as_json(),
    }
    registry.put_manifest(REPO, sha(canonical(sbom)), canonical(sbom), OCI_MANIFEST)
    assert sign.referrers(registry, REPO, subject.digest) == []
    found = sign.attach(registry, REPO, subject, b"bundle")
    assert sign.referrers(registry, REPO, subject.digest) == [found]


@pytest.mark.parametrize("api", [False, True])
def test_referrers_of_an_unsigned_digest(api) -> None:
    registry = MemoryRegistry(referrers_api=api)
    assert sign.referrers(registry, REPO, registry.image().digest) == []


# -- Registry: the referrers endpoint ----------------------------------------------------------


class Response:
    def __init__(self, status: int, body: bytes = b"", content_type: str = "") -> None:
        self.status_code, self.content = status, body
        self.headers = {"Content-Type": content_type} if content_type else {}

    def json(self) -> Any:
        return json.loads(self.content)


def answering(
    status: int, body: bytes = b"", content_type: str = ""
) -> tuple[Registry, list[tuple[str, str, Any]]]:
    registry = Registry(HOST)
    asked: list[tuple[str, str, Any]] = []

    def request(method: str, url: str, headers: Any = None, **kw: Any) -> Response:
        asked.append((method, url, headers))
        return Response(status, body, content_type)

    registry.session.request = request  # type: ignore[method-assign]
    return registry, asked


def test_registry_referrers_api_answers_an_index() -> None:
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(OTHER)]}
    registry, asked = answering(200, json.dumps(index).encode(), OCI_INDEX)
    assert registry.referrers(REPO, DIGEST) == index
    assert asked == [("GET", f"https://{HOST}/v2/{REPO}/referrers/{DIGEST}", {"Accept": OCI_INDEX})]
    assert registry.has_referrers_api(REPO, DIGEST) is True


@pytest.mark.parametrize(
    "status, body, content_type",
    [
        (404, b"", ""),  # distribution 2.8
        (400, b"", ""),
        (406, b"", ""),
        (200, b"<html>not json</html>", "text/html"),  # a proxy's page, not an index
        (200, b'{"manifests": []}', "application/json"),  # JSON, but not an OCI index
    ],
)
def test_registry_without_referrers_api(status, body, content_type) -> None:
    registry, _ = answering(status, body, content_type)
    assert registry.referrers(REPO, DIGEST) is None
    assert registry.has_referrers_api(REPO, DIGEST) is False


def test_registry_referrers_error_is_one_line() -> None:
    registry, _ = answering(500, b'{"errors": [{"code": "UNKNOWN", "message": "boom"}]}')
    with pytest.raises(RegistryError) as caught:
        registry.referrers(REPO, DIGEST)
    assert one_line(caught) == f"registry {HOST} refused referrers of {DIGEST}: UNKNOWN boom"


# -- signing and verifying an image ------------------------------------------------------------


def test_sign_image_signs_cosigns_statement_and_attaches_it(monkeypatch) -> None:
    statements: list[bytes] = []
    real = sigstore.dsse.Statement

    def recording(contents: bytes) -> Any:
        statements.append(contents)
        return real(contents)

    monkeypatch.setattr(sigstore.dsse, "Statement", recording)
    registry, fake = MemoryRegistry(), fake_sigstore()
    subject = registry.image("v1")
    found = sign.sign_image(fake, registry, REPO, subject.digest)
    assert statements == [sign.statement(NAME, subject.digest)]
    assert len(fake.signer_.signed) == 1
    manifest = json.loads(registry.manifests[found["digest"]][0])
    assert manifest["subject"] == subject.as_json()  # the subject's real media type and size
    assert registry.blobs[manifest["layers"][0]["digest"]] == b'{"bundle": 1}'
    assert sign.referrers(registry, REPO, subject.digest) == [found]


def test_sign_image_refuses_a_digest_the_registry_lacks() -> None:
    registry, fake = MemoryRegistry(), fake_sigstore()
    with pytest.raises(sign.SignError) as caught:
        sign.sign_image(fake, registry, REPO, DIGEST)
    assert one_line(caught) == f"{NAME}@{DIGEST} does not exist"
    assert fake.signer_.signed == []
    assert registry.log == []


def test_sign_image_failure_is_one_line_and_attaches_nothing() -> None:
    registry = MemoryRegistry()
    subject = registry.image()
    registry.log.clear()
    fake = fake_sigstore(signer_=FakeSigner(error=RuntimeError("Rekor said no\n  try later")))
    with pytest.raises(sign.SignError) as caught:
        sign.sign_image(fake, registry, REPO, subject.digest)
    assert one_line(caught) == f"signing {subject.digest}: Rekor said no try later"
    assert registry.log == []


def test_sign_image_passes_a_sign_error_through() -> None:
    registry = MemoryRegistry()
    subject = registry.image()
    fake = fake_sigstore(signer_=sign.SignError("no identity token: set SIGSTORE_ID_TOKEN"))
    with pytest.raises(sign.SignError) as caught:
        sign.sign_image(fake, registry, REPO, subject.digest)
    assert str(caught.value) == "no identity token: set SIGSTORE_ID_TOKEN"


def signed_registry(api: bool = False) -> tuple[MemoryRegistry, Descriptor, dict[str, Any]]:
    registry = MemoryRegistry(referrers_api=api)
    subject = registry.image()
    return registry, subject, sign.attach(registry, REPO, subject, b'{"bundle": 1}')


def good(digest: str) -> tuple[str, bytes]:
    return sign.INTOTO_PAYLOAD, sign.statement(NAME, digest)


@pytest.mark.parametrize("api", [False, True])
def test_verify_image_without_a_signature(api) -> None:
    registry = MemoryRegistry(referrers_api=api)
    digest = registry.image().digest
    fake = fake_sigstore()
    with pytest.raises(sign.SignError) as caught:
        sign.verify_image(fake, registry, REPO, digest)
    assert one_line(caught) == f"no signature attached to {NAME}@{digest}"
    assert fake.verifier_.calls == []


@pytest.mark.parametrize("api", [False, True])
def test_verify_image_accepts_a_valid_signature(bundles, api) -> None:
    registry, subject, _ = signed_registry(api)
    fake = fake_sigstore(verifier_=FakeVerifier([good(subject.digest)]))
    sign.verify_image(fake, registry, REPO, subject.digest)
    ((bundle, policy),) = fake.verifier_.calls
    assert bundle == ("bundle", b'{"bundle": 1}')  # the attached layer, from the registry
    assert isinstance(policy, Identity)  # release.yaml's identity and issuer


def test_verify_image_refuses_a_referrer_of_another_subject(bundles) -> None:
    # An index copied from another image's fallback tag lists that image's signature.
    registry = MemoryRegistry()
    subject = registry.image()
    sign.attach(registry, REPO, Descriptor(OCI_MANIFEST, OTHER, 10), b"other's bundle")
    copied = registry.manifests[sign.fallback_tag(OTHER)][0]
    registry.put_manifest(REPO, sign.fallback_tag(subject.digest), copied, OCI_INDEX)
    fake = fake_sigstore(verifier_=FakeVerifier([good(OTHER)]))
    with pytest.raises(sign.SignError) as caught:
        sign.verify_image(fake, registry, REPO, subject.digest)
    assert one_line(caught) == (
        f"no valid signature for {NAME}@{subject.digest}: referrer names another subject"
    )
    assert fake.verifier_.calls == []  # refused before any bundle was even read


@pytest.mark.parametrize(
    "answer, reason",
    [
        (VerificationError("Certificate's SANs do not match"), "Certificate's SANs do not match"),
        ((sign.INTOTO_PAYLOAD, sign.statement(NAME, OTHER)), "signature is for another digest"),
        (("text/plain", b"hello"), 'payload type "text/plain" is not in-toto'),
    ],
    ids=["policy", "digest", "payload"],
)
def test_verify_image_refuses_a_bad_signature(bundles, answer, reason) -> None:
    registry, subject, _ = signed_registry()
    fake = fake_sigstore(verifier_=FakeVerifier([answer]))
    with pytest.raises(sign.SignError) as caught:
        sign.verify_image(fake, registry, REPO, subject.digest)
    message = one_line(caught)
    assert message.startswith(f"no valid signature for {NAME}@{subject.digest}: {reason}"), message


def test_verify_attestation_with_want_finds_the_equal_one_of_several(bundles) -> None:
    # A digest released twice carries two reports (grype's carry their time): ours must be one.
    registry, subject, _ = signed_registry()
    sign.attach(registry, REPO, subject, b'{"bundle": 2}', scan.PREDICATE)
    sign.attach(registry, REPO, subject, b'{"bundle": 3}', scan.PREDICATE)
    statements = [
        (sign.INTOTO_PAYLOAD, sign.statement(NAME, subject.digest, scan.PREDICATE, {"run": n}))
        for n in (1, 2)
    ]
    fake = fake_sigstore(verifier_=FakeVerifier(list(statements)))
    found = sign.verify_attestation(
        fake, registry, REPO, subject.digest, scan.PREDICATE, {"run": 2}
    )
    assert found == {"run": 2}
    fake = fake_sigstore(verifier_=FakeVerifier(list(statements)))
    with pytest.raises(sign.SignError) as caught:
        sign.verify_attestation(fake, registry, REPO, subject.digest, scan.PREDICATE, {"run": 3})
    assert one_line(caught) == (
        f"no valid {scan.PREDICATE} attestation for {NAME}@{subject.digest}: "
        "it attests another document"
    )


def test_verify_image_needs_one_good_signature_of_several(bundles) -> None:
    registry, subject, _ = signed_registry()
    sign.attach(registry, REPO, subject, b'{"bundle": 2}')
    answers = [VerificationError("wrong identity"), good(subject.digest)]
    fake = fake_sigstore(verifier_=FakeVerifier(answers))
    sign.verify_image(fake, registry, REPO, subject.digest)
    assert [call[0][1] for call in fake.verifier_.calls] == [b'{"bundle": 1}', b'{"bundle": 2}']


def test_verify_image_reports_a_missing_referrer_manifest(bundles) -> None:
    registry = MemoryRegistry()
    subject = registry.image()
    index = sign.with_referrer(None, descriptor(OTHER))  # lists a manifest that is not there
    registry.put_manifest(REPO, sign.fallback_tag(subject.digest), canonical(index), OCI_INDEX)
    with pytest.raises(sign.SignError) as caught:
        sign.verify_image(fake_sigstore(), registry, REPO, subject.digest)
    assert one_line(caught).endswith(": referrer manifest is missing")


def test_verify_image_reports_an_unreadable_bundle() -> None:
    # The real Bundle parser: the attached layer is not a Sigstore bundle.
    registry = MemoryRegistry()
    subject = registry.image()
    sign.attach(registry, REPO, subject, b"not a bundle")
    fake = fake_sigstore()
    with pytest.raises(sign.SignError) as caught:
        sign.verify_image(fake, registry, REPO, subject.digest)
    assert one_line(caught).startswith(f"no valid signature for {NAME}@{subject.digest}: ")
    assert fake.verifier_.calls == []


# -- signing and verifying checksum files ------------------------------------------------------


def checksum(tmp_path: Path) -> Path:
    path = tmp_path / "kairos.iso.sha256"
    path.write_text(f"{'a' * 64}  kairos.iso\n")
    return path


def test_sign_file_writes_the_bundle_atomically(tmp_path) -> None:
    path = checksum(tmp_path)
    bundle = tmp_path / "kairos.iso.sha256.sigstore.json"
    bundle.write_text("an older bundle")
    fake = fake_sigstore()
    assert sign.sign_file(fake, path) == bundle
    assert fake.signer_.signed == [path.read_bytes()]  # the checksum file's bytes, as a blob
    assert bundle.read_text() == '{"bundle": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, bundle.name]  # no .tmp


def test_sign_file_failure_writes_nothing(tmp_path) -> None:
    path = checksum(tmp_path)
    fake = fake_sigstore(signer_=FakeSigner(error=ConnectionError("Fulcio\nunreachable")))
    with pytest.raises(sign.SignError) as caught:
        sign.sign_file(fake, path)
    assert one_line(caught) == "signing kairos.iso.sha256: Fulcio unreachable"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_verify_file_without_a_bundle(tmp_path) -> None:
    path = checksum(tmp_path)
    with pytest.raises(sign.SignError) as caught:
        sign.verify_file(fake_sigstore(), path)
    assert one_line(caught) == "kairos.iso.sha256 has no kairos.iso.sha256.sigstore.json"


def test_verify_file_checks_the_bundle_against_the_policy(tmp_path, bundles) -> None:
    path = checksum(tmp_path)
    fake = fake_sigstore()
    sign.sign_file(fake, path)
    sign.verify_file(fake, path)
    ((data, bundle, policy),) = fake.verifier_.calls
    assert data == path.read_bytes()
    assert bundle == ("bundle", b'{"bundle": 1}')
    assert isinstance(policy, Identity)


def test_verify_file_refusal_is_one_line(tmp_path, bundles) -> None:
    path = checksum(tmp_path)
    fake = fake_sigstore(verifier_=FakeVerifier([VerificationError("artifact\nsignature bad")]))
    sign.sign_file(fake, path)
    with pytest.raises(sign.SignError) as caught:
        sign.verify_file(fake, path)
    assert one_line(caught) == "kairos.iso.sha256: artifact signature bad"


def test_verify_file_unreadable_bundle_is_one_line(tmp_path) -> None:
    path = checksum(tmp_path)
    (tmp_path / "kairos.iso.sha256.sigstore.json").write_text("{not json")
    with pytest.raises(sign.SignError) as caught:
        sign.verify_file(fake_sigstore(), path)
    assert one_line(caught).startswith("kairos.iso.sha256: ")


# -- publish: sign and verify between the push and the tag -------------------------------------


@dataclass
class Publishing:
    release: config.Release
    built: Built
    registry: MemoryRegistry
    runner: Runner
    out: io.StringIO
    events: list[str]
    tag: str
    sign_calls: list[tuple[Any, ...]]


@pytest.fixture
def publishing(make_release, monkeypatch) -> Publishing:
    """publish.publish with its registry in memory and the push recorded, not run."""
    rel = make_release({"arch": "amd64"}, registry=HOST, namespace="ns", repository="distro")
    cell = rel.cells[0]
    ident = naming.Identity("ubuntu", "24.04", "core", "amd64", "generic", "v0.1.0")
    built = Built(cell, "sha256:" + "1" * 64, "local", ident)
    registry = MemoryRegistry()
    events: list[str] = []
    sign_calls: list[tuple[Any, ...]] = []

    def registry_for(host: str, login: str = "") -> MemoryRegistry:
        assert (host, login) == (HOST, rel.registry)  # the login goes home only
        return registry

    def push(runner: Runner, reg: Registry, repo: str, b: Built) -> str:
        assert (reg, repo, b) == (registry, REPO, built)
        events.append("push")
        return registry.image().digest

    def signed(*args: Any) -> None:
        sign_calls.append(args)
        events.append("sign")

    real_put = registry.put_manifest

    def put(repo: str, reference: str, body: bytes, media_type: str) -> str:
        if reference != sha(body):
            events.append(f"tag {reference}")
        return real_put(repo, reference, body, media_type)

    monkeypatch.setattr(registry, "put_manifest", put)
    monkeypatch.setattr(publish, "Registry", registry_for)
    monkeypatch.setattr(publish, "push_image", push)

    def sbom(runner: Runner, rel: config.Release, b: Built, directory: Path) -> Path:
        assert b == built
        events.append("sbom")
        path = directory / "kairos.cdx.json"
        path.write_text("{}")
        return path

    monkeypatch.setattr(per_cell, "sign_cell", signed)
    monkeypatch.setattr(artifacts, "write_sbom", sbom)
    out = io.StringIO()
    runner = Runner(out=out)
    return Publishing(
        rel, built, registry, runner, out, events, naming.image_tag(ident, rel.tags), sign_calls
    )


def test_publish_tags_only_after_signing(publishing, tmp_path) -> None:
    p = publishing
    fake = fake_sigstore()
    done = publish.publish(p.runner, p.release, p.built.cell, p.built, fake, tmp_path)
    # No SBOM from `invoke iso` yet: publish makes one to attest.
    assert p.events == ["push", "sbom", "sign", f"tag {p.tag}"]
    digest = p.registry.image().digest
    assert done == publish.Published(p.built.cell, NAME, digest, (p.tag,))
    ((runner, sigstore_, registry, repo, signed, cell, artifacts, raw),) = p.sign_calls
    assert (runner, sigstore_, registry, repo) == (p.runner, fake, p.registry, REPO)
    assert (signed, cell, artifacts, raw) == (digest, p.built.cell, tmp_path, "")
    assert p.out.getvalue().splitlines() == [
        f"[{cell.id}] pushed {NAME}@{digest}",
        f"[{cell.id}] tagged {NAME}:{p.tag}",
    ]


def test_publish_never_tags_when_signing_fails(publishing, monkeypatch, tmp_path) -> None:
    p = publishing

    def refuse(*args: Any) -> None:
        p.events.append("sign")
        raise sign.SignError("no identity token: set SIGSTORE_ID_TOKEN")

    monkeypatch.setattr(per_cell, "sign_cell", refuse)
    with pytest.raises(StepError) as caught:
        publish.publish(p.runner, p.release, p.built.cell, p.built, fake_sigstore(), tmp_path)
    assert (caught.value.cell, caught.value.step) == (p.built.cell.id, "sign")
    assert caught.value.reason == "no identity token: set SIGSTORE_ID_TOKEN"
    assert p.events == ["push", "sbom", "sign"]
    assert p.registry.tags() == []  # pushed by digest only: nothing a user pulls by name


def test_publish_never_tags_when_the_registry_fails_while_signing(
    publishing, monkeypatch, tmp_path
) -> None:
    p = publishing

    def refuse(*args: Any) -> None:
        raise RegistryError(f"registry {HOST} refused manifest {REPO}:sha256-x: DENIED")

    monkeypatch.setattr(per_cell, "sign_cell", refuse)
    with pytest.raises(StepError) as caught:
        publish.publish(p.runner, p.release, p.built.cell, p.built, fake_sigstore(), tmp_path)
    assert caught.value.step == "sign"
    assert p.registry.tags() == []


def test_publish_without_signing_never_signs(publishing, tmp_path) -> None:
    p = publishing
    done = publish.publish(p.runner, p.release, p.built.cell, p.built, None, tmp_path)
    assert done is not None
    assert p.events == ["push", f"tag {p.tag}"]
    assert p.sign_calls == []


def test_publish_push_failure_is_the_publish_step(publishing, monkeypatch, tmp_path) -> None:
    p = publishing

    def refuse(*args: Any) -> str:
        raise RegistryError(f"registry {HOST} unreachable (connection refused)")

    monkeypatch.setattr(publish, "push_image", refuse)
    with pytest.raises(StepError) as caught:
        publish.publish(p.runner, p.release, p.built.cell, p.built, fake_sigstore(), tmp_path)
    assert caught.value.step == "publish"
    assert p.sign_calls == [] and p.registry.tags() == []


def test_dry_publish_with_signing_says_so(make_release) -> None:
    rel = make_release({"arch": "amd64"}, registry=HOST, namespace="ns", repository="distro")
    out = io.StringIO()
    cell = rel.cells[0]
    assert publish.publish(Runner(dry=True, out=out), rel, cell, None, fake_sigstore()) is None
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[1] == (
        f"[{cell.id}] would sign those digests, attest the SBOM, sign the artifact checksums, "
        "then verify"
    )
    assert lines[2].startswith(f"[{cell.id}] would then tag it ")


@pytest.fixture
def recorded(monkeypatch) -> list[tuple[str, str]]:
    """sign.sign_image/sign_file/verify_image/verify_file replaced by recorders."""
    calls: list[tuple[str, str]] = []

    def recorder(name: str) -> Callable[..., None]:
        def record(sigstore_: Any, *args: Any) -> None:
            calls.append((name, args[-1].name if isinstance(args[-1], Path) else args[-1]))

        return record

    for name in ("sign_image", "sign_file", "verify_image", "verify_file"):
        monkeypatch.setattr(sign, name, recorder(name))

    def attest(sigstore_: Any, registry: Any, repo: str, digest: str, kind: str, doc: Any) -> None:
        calls.append(("attest_image", f"{kind} {json.dumps(doc)} for {digest}"))

    def attested(
        sigstore_: Any, registry: Any, repo: str, digest: str, kind: str, want: Any = None
    ) -> Any:
        calls.append(("verify_attestation", f"{kind} for {digest}"))
        return refuse_other(ATTESTED, kind, want)

    monkeypatch.setattr(sign, "attest_image", attest)
    monkeypatch.setattr(sign, "verify_attestation", attested)
    return calls


ATTESTED = {"bomFormat": "CycloneDX", "components": [{"purl": "pkg:deb/debian/bash@5.2"}]}


def refuse_other(attested: Any, kind: str, want: Any) -> Any:
    """What sign.verify_attestation does when the one attested document is not `want`."""
    if want is not None and attested != want:
        raise sign.SignError(
            f"no valid {kind} attestation for {NAME}@{DIGEST}: it attests another document"
        )
    return attested


def test_sign_cell_signs_everything_then_verifies_everything(make_release, recorded, tmp_path):
    rel = make_release({"arch": "amd64"}, {"arch": "arm64"})
    cell = rel.cells[0]
    (tmp_path / cell.id).mkdir()
    (tmp_path / rel.cells[1].id).mkdir()
    for name in ("b.iso.sha256", "a.iso.sha256", "a.iso", "a.iso.sha256.sigstore.json"):
        (tmp_path / cell.id / name).write_text("x")
    (tmp_path / cell.id / "a.cdx.json").write_text(json.dumps(ATTESTED))
    (tmp_path / rel.cells[1].id / "c.iso.sha256").write_text("x")  # another cell's
    out = io.StringIO()
    raw = "sha256:" + "7" * 64
    per_cell.sign_cell(
        Runner(out=out), fake_sigstore(), MemoryRegistry(), REPO, DIGEST, cell, tmp_path, raw
    )
    assert recorded == [
        ("sign_image", DIGEST),
        ("sign_image", raw),
        ("attest_image", f"{sign.CYCLONEDX} {json.dumps(ATTESTED)} for {DIGEST}"),
        ("sign_file", "a.iso.sha256"),
        ("sign_file", "b.iso.sha256"),
        ("verify_image", DIGEST),
        ("verify_attestation", f"{sign.CYCLONEDX} for {DIGEST}"),
        ("verify_image", raw),
        ("verify_file", "a.iso.sha256"),
        ("verify_file", "b.iso.sha256"),
    ]
    assert out.getvalue().splitlines() == [
        f"[{cell.id}] verified signature of {NAME}@{DIGEST}",
        f"[{cell.id}] verified SBOM attestation (1 packages)",
        f"[{cell.id}] verified signature of {NAME}@{raw} (raw disk image)",
        f"[{cell.id}] verified a.iso.sha256.sigstore.json",
        f"[{cell.id}] verified b.iso.sha256.sigstore.json",
    ]


def test_sign_cell_without_an_sbom_signs_nothing_more(make_release, recorded) -> None:
    rel = make_release({"arch": "amd64"})
    runner = Runner(out=io.StringIO())
    with pytest.raises(sign.SignError) as caught:
        per_cell.sign_cell(
            runner, fake_sigstore(), MemoryRegistry(), REPO, DIGEST, rel.cells[0], None
        )
    assert one_line(caught) == "no SBOM for amd64-generic to attest: run `invoke iso` first"
    assert recorded == [("sign_image", DIGEST)]


def test_verify_cell_refuses_an_attested_sbom_that_is_not_the_local_one(
    make_release, recorded, tmp_path
) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    (tmp_path / cell.id).mkdir()
    (tmp_path / cell.id / "a.cdx.json").write_text(json.dumps({**ATTESTED, "components": []}))
    runner = Runner(out=io.StringIO())
    with pytest.raises(sign.SignError) as caught:
        per_cell.verify_cell(
            runner, fake_sigstore(), MemoryRegistry(), REPO, DIGEST, cell, tmp_path
        )
    assert one_line(caught) == (
        f"no valid {sign.CYCLONEDX} attestation for {NAME}@{DIGEST}: it attests another document"
    )


def with_report(directory: Path, monkeypatch, attested_report: Any = None) -> Path:
    """An SBOM and grype's report in `directory`; verify_attestation answers per type."""
    directory.mkdir()
    (directory / "a.cdx.json").write_text(json.dumps(ATTESTED))
    report = directory / "a.grype.json"
    report.write_bytes(grype_report.text(grype_report.match("CVE-2026-0001", "bash", "5.2")))
    local = scan.predicate(report)

    def attested(
        sigstore_: Any, registry: Any, repo: str, digest: str, kind: str, want: Any = None
    ) -> Any:
        found = ATTESTED if kind == sign.CYCLONEDX else attested_report or local
        return refuse_other(found, kind, want)

    monkeypatch.setattr(sign, "verify_attestation", attested)
    return report


def test_sign_cell_attests_the_vulnerability_report_too(
    make_release, recorded, monkeypatch, tmp_path
) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    report = with_report(tmp_path / cell.id, monkeypatch)
    out = io.StringIO()
    per_cell.sign_cell(
        Runner(out=out), fake_sigstore(), MemoryRegistry(), REPO, DIGEST, cell, tmp_path
    )
    predicate = json.dumps(scan.predicate(report))
    assert recorded == [
        ("sign_image", DIGEST),
        ("attest_image", f"{sign.CYCLONEDX} {json.dumps(ATTESTED)} for {DIGEST}"),
        ("attest_image", f"{scan.PREDICATE} {predicate} for {DIGEST}"),
        ("verify_image", DIGEST),
    ]
    assert out.getvalue().splitlines() == [
        f"[{cell.id}] verified signature of {NAME}@{DIGEST}",
        f"[{cell.id}] verified SBOM attestation (1 packages)",
        f"[{cell.id}] verified vulnerability report attestation (a.grype.json)",
    ]


def test_verify_cell_refuses_an_attested_report_that_is_not_the_local_one(
    make_release, recorded, monkeypatch, tmp_path
) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    other = {"scanner": {"result": {"matches": []}}}
    with_report(tmp_path / cell.id, monkeypatch, attested_report=other)
    with pytest.raises(sign.SignError) as caught:
        per_cell.verify_cell(
            Runner(out=io.StringIO()),
            fake_sigstore(),
            MemoryRegistry(),
            REPO,
            DIGEST,
            cell,
            tmp_path,
        )
    assert one_line(caught) == (
        f"no valid {scan.PREDICATE} attestation for {NAME}@{DIGEST}: it attests another document"
    )


def test_sign_cell_stops_at_the_first_failure(make_release, monkeypatch, tmp_path) -> None:
    rel = make_release({"arch": "amd64"})
    cell = rel.cells[0]
    (tmp_path / cell.id).mkdir()
    checksum(tmp_path / cell.id)
    registry = MemoryRegistry()
    digest = registry.image().digest
    fake = fake_sigstore(signer_=FakeSigner(error=RuntimeError("Rekor down")))
    with pytest.raises(sign.SignError, match=f"^signing {digest}: Rekor down$"):
        per_cell.sign_cell(Runner(out=io.StringIO()), fake, registry, REPO, digest, cell, tmp_path)
    assert [p.name for p in (tmp_path / cell.id).iterdir()] == ["kairos.iso.sha256"]


def test_resolve_a_tag_to_its_digest() -> None:
    registry = MemoryRegistry()
    subject = registry.image("v1")
    assert per_cell.resolve(registry, REPO, "v1") == subject.digest
    assert per_cell.resolve(registry, REPO, subject.digest) == subject.digest
    with pytest.raises(RegistryError) as caught:
        per_cell.resolve(registry, REPO, "v2")
    assert one_line(caught) == f"{NAME}:v2 is not in the registry"


# -- the sign and verify tasks -----------------------------------------------------------------

Runs = dict[str, subprocess.CompletedProcess[str]]


def report(run: subprocess.CompletedProcess[str]) -> str:
    return f"{run.args[3:]} exited {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"


@pytest.fixture(scope="module")
def task_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runs, Path]:
    """sign/verify/publish invocations against release files written here, run together.

    HOME and the artifacts directory point into an empty directory, and every
    proxy at a closed port: a task that wrote a cache, an artifact, or went to
    Sigstore's TUF repository would show.
    """
    tmp = tmp_path_factory.mktemp("sign-tasks")
    home = tmp / "home"
    home.mkdir()
    data = {
        "name": "my-distro",
        "source": "https://github.com/my-org/my-distro",
        "version": "v0.1.0",
        "base_image": "ubuntu:24.04",
        "kairos_init": "quay.io/kairos/kairos-init:v0.17.3",
        "auroraboot": "quay.io/kairos/auroraboot:v0.26.2",
        "registry": HOST,
        "namespace": "ns",
        "repository": "distro",
        "cells": [{"arch": "amd64"}, {"arch": "arm64"}],
    }
    files = {}
    for name, block in {
        "on": {
            "enabled": True,
            "trust": "production",
            "identity_regexp": r"^https://github\.com/my-org/.*$",
            "issuer": "https://token.actions.githubusercontent.com",
        },
        "off": {"enabled": False},
    }.items():
        (tmp / name).mkdir()
        files[name] = tmp / name / "release.yaml"
        files[name].write_text(yaml.safe_dump({**data, "signing": block}, sort_keys=False))
    on, off = str(files["on"]), str(files["off"])
    calls = {
        "dry-sign": ["--dry", "sign", "--release-file", on],
        "dry-verify": ["--dry", "verify", "--release-file", on],
        "dry-verify-image": ["--dry", "verify", "--image", f"{NAME}:v1", "--release-file", on],
        "dry-publish": ["--dry", "publish", "--release-file", on],
        "sign-off": ["sign", "--release-file", off],
        "verify-off": ["verify", "--release-file", off],
    }
    dead = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "DOCKER_HOST": "unix:///nonexistent.sock",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "INVOKE_KAIROS_ARTIFACTS": str(tmp / "artifacts"),
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "http_proxy": dead,
        "https_proxy": dead,
        "NO_PROXY": "",
        "no_proxy": "",
    }
    env.pop(sign.TOKEN_ENV, None)
    # Packages installed with `pip --user` stay importable with HOME moved.
    env["PYTHONUSERBASE"] = os.environ.get("PYTHONUSERBASE") or site.getuserbase()

    def call(args: list[str]) -> subprocess.CompletedProcess[str]:
        return run_invoke(*args, env=env)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {name: pool.submit(call, args) for name, args in calls.items()}
    return {name: future.result() for name, future in futures.items()}, tmp


CELLS = ("amd64-generic", "arm64-generic")


def test_dry_sign_says_what_it_would_sign(task_runs) -> None:
    runs, _ = task_runs
    run = runs["dry-sign"]
    assert run.returncode == 0, report(run)
    assert run.stderr == ""
    assert run.stdout.splitlines() == [
        f"[{cell}] would sign the published digests, attest the SBOM, "
        "sign artifacts/<cell>/*.sha256"
        for cell in CELLS
    ]


def test_dry_verify_says_what_it_would_verify(task_runs) -> None:
    runs, _ = task_runs
    run = runs["dry-verify"]
    assert run.returncode == 0, report(run)
    assert run.stderr == ""
    assert run.stdout.splitlines() == [
        f"[{cell}] would verify the published image, its SBOM attestation and *.sha256 bundles"
        for cell in CELLS
    ]
    image = runs["dry-verify-image"]
    assert image.returncode == 0, report(image)
    assert image.stdout == f"[verify] would verify the signature of {NAME}:v1\n"


def test_dry_publish_signs_between_push_and_tag(task_runs) -> None:
    runs, _ = task_runs
    run = runs["dry-publish"]
    assert run.returncode == 0, report(run)
    for cell in CELLS:
        lines = [x for x in run.stdout.splitlines() if x.startswith(f"[{cell}] ")]
        assert len(lines) == 4, report(run)
        assert " would scan its SBOM with " in lines[0]  # the policy first, then any push
        assert " would push " in lines[1]
        assert (
            lines[2]
            == f"[{cell}] would sign those digests, attest the SBOM, sign the artifact checksums, "
            "then verify"
        )
        assert lines[3].startswith(f"[{cell}] would then tag it ")


def test_dry_signing_tasks_touch_nothing(task_runs) -> None:
    runs, tmp = task_runs
    for name in ("dry-sign", "dry-verify", "dry-verify-image", "dry-publish"):
        assert runs[name].returncode == 0, report(runs[name])
    assert list((tmp / "home").iterdir()) == []  # no TUF cache, no token, no docker config
    assert not (tmp / "artifacts").exists()
    assert [p.name for p in (tmp / "on").iterdir()] == ["release.yaml"]


@pytest.mark.parametrize("task", ["sign", "verify"])
def test_signing_disabled_refuses_sign_and_verify(task_runs, task) -> None:
    runs, tmp = task_runs
    run = runs[f"{task}-off"]
    assert run.returncode == 2, report(run)
    assert run.stdout == ""
    path = tmp / "off" / "release.yaml"
    assert run.stderr == f"{path}: signing.enabled is false: nothing to sign or verify\n"


@pytest.mark.parametrize(
    "der, text",
    [
        (b"\x0c\x10user!example.com", "user!example.com"),  # Fulcio's username SAN
        (b"\x0c\x81\x03" + b"a" * 3, "aaa"),  # long-form length
        (b"plain", "plain"),  # not DER: taken as it is
    ],
)
def test_username_identity_is_read_from_its_der_utf8string(der: bytes, text: str) -> None:
    assert sign._utf8_string(der) == text


# -- the trusted root users hand to cosign ----------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def private_trust_config() -> dict[str, Any]:
    """A ClientTrustConfig of a private Sigstore: one CA, one Rekor and one CT log key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "private-fulcio")])
    start = datetime.now(UTC) - timedelta(hours=1)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .sign(key, hashes.SHA256())
    )
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    valid = {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ")}
    log = {
        "baseUrl": "https://rekor.private.test",
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": b64(spki),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": valid,
        },
        "logId": {"keyId": b64(hashlib.sha256(spki).digest())},
    }
    service = {
        "url": "https://private.test",
        "majorApiVersion": 1,
        "validFor": valid,
        "operator": "private.test",
    }
    return {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "private", "commonName": "private-fulcio"},
                    "uri": "https://fulcio.private.test",
                    "certChain": {
                        "certificates": [{"rawBytes": b64(ca.public_bytes(Encoding.DER))}]
                    },
                    "validFor": valid,
                }
            ],
            "ctlogs": [{**log, "baseUrl": "https://ctfe.private.test"}],
            "timestampAuthorities": [],
        },
        "signingConfig": {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [service],
            "oidcUrls": [service],
            "rekorTlogUrls": [service],
            "tsaUrls": [],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        },
    }


def release_with_trust(tmp_path: Path, trust: str) -> Path:
    """A release file next to tmp_path's files whose signing.trust is `trust`."""
    from package_helpers import valid_release

    data = valid_release()
    data["signing"] = {**data.get("signing", {}), "trust": trust}
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_trusted_root_task_writes_the_trust_configs_root(tmp_path) -> None:
    trust = private_trust_config()
    (tmp_path / "private.json").write_text(json.dumps(trust))
    release_file = release_with_trust(tmp_path, "private.json")
    out = tmp_path / "trusted_root.json"
    done = run_invoke("trusted-root", "--output", str(out), "--release-file", str(release_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {out} (the trusted root of signing.trust: private.json)\n"
    assert json.loads(out.read_text()) == trust["trustedRoot"]  # what cosign --trusted-root reads
    sigstore.models.TrustedRoot.from_file(str(out))  # and sigstore-python loads it back
    assert not list(tmp_path.glob("*.tmp"))


def test_trusted_root_task_names_a_missing_trust_file(tmp_path) -> None:
    release_file = release_with_trust(tmp_path, "missing.json")
    out = tmp_path / "trusted_root.json"
    done = run_invoke("trusted-root", "--output", str(out), "--release-file", str(release_file))
    assert done.returncode == 1
    assert done.stderr == "trusted-root: trust config missing.json: No such file or directory\n"
    assert not out.exists()

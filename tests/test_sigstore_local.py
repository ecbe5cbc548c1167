"""The local Sigstore instance against sigstore-python's real Signer, Verifier and CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from sigstore._internal.fulcio.client import FulcioClientError
from sigstore._internal.rekor import RekorClientError
from sigstore.dsse import Statement, StatementBuilder, Subject
from sigstore.errors import VerificationError
from sigstore.models import Bundle
from sigstore.oidc import ExpiredIdentity, IdentityError, IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity

from tests.support.sigstore_local import IDENTITY, ISSUER, LocalSigstore, load_clients

ARTIFACT = b"kairos release artifact\n"
POLICY = Identity(identity=IDENTITY, issuer=ISSUER)
PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalSigstore]:
    with LocalSigstore(tmp_path / "sigstore") as instance:
        yield instance


@pytest.fixture
def clients(local: LocalSigstore) -> tuple[SigningContext, Verifier]:
    return load_clients(local.trust_config)


def sign(context: SigningContext, token: str, artifact: bytes = ARTIFACT) -> Bundle:
    with context.signer(IdentityToken(token)) as signer:
        return signer.sign_artifact(artifact)


def test_trust_config_points_at_the_local_server(local: LocalSigstore) -> None:
    config = json.loads(local.trust_config.read_text())
    signing = config["signingConfig"]
    assert config["mediaType"] == "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
    assert signing["mediaType"] == "application/vnd.dev.sigstore.signingconfig.v0.2+json"
    assert local.url.startswith("http://127.0.0.1:")
    urls = [s["url"] for key in ("caUrls", "rekorTlogUrls", "oidcUrls") for s in signing[key]]
    assert urls == [local.url] * 3
    assert [s["majorApiVersion"] for s in signing["rekorTlogUrls"]] == [1]
    assert signing["tsaUrls"] == []
    info = requests.get(f"{local.url}/api/v1/log", timeout=5).json()
    assert info["treeSize"] == 0


def test_sign_artifact_round_trip(
    local: LocalSigstore, clients: tuple[SigningContext, Verifier]
) -> None:
    context, verifier = clients
    artifacts = [ARTIFACT + bytes([i]) for i in range(5)]
    with context.signer(IdentityToken(local.token())) as signer:
        bundles = [signer.sign_artifact(a) for a in artifacts]
    # Five entries in one growing Merkle tree: proofs for leaves 0..4 of trees 1..5.
    for index, (artifact, bundle) in enumerate(zip(artifacts, bundles, strict=True)):
        assert verifier.verify_artifact(artifact, bundle, policy=POLICY) is None
        entry = bundle.log_entry._inner
        assert entry.kind_version.kind == "hashedrekord"
        assert entry.log_index == index
        assert entry.inclusion_proof.tree_size == index + 1
    cert = bundles[0].signing_certificate
    assert cert.not_valid_before_utc.timestamp() <= bundles[0].log_entry._inner.integrated_time
    assert requests.get(f"{local.url}/api/v1/log", timeout=5).json()["treeSize"] == 5


def artifact_statement(digest: str) -> Statement:
    """An in-toto statement about ARTIFACT (its sha256 hex `digest`)."""
    return (
        StatementBuilder()
        .subjects([Subject(name="artifact.bin", digest={"sha256": digest})])
        .predicate_type(PREDICATE_TYPE)
        .predicate({})
        .build()
    )


def test_sign_dsse_round_trip(
    local: LocalSigstore, clients: tuple[SigningContext, Verifier]
) -> None:
    context, verifier = clients
    digest = hashlib.sha256(ARTIFACT).hexdigest()
    statement = artifact_statement(digest)
    with context.signer(IdentityToken(local.token())) as signer:
        bundle = signer.sign_dsse(statement)
    payload_type, payload = verifier.verify_dsse(bundle, policy=POLICY)
    assert bundle.log_entry._inner.kind_version.kind == "dsse"
    assert payload_type == "application/vnd.in-toto+json"
    body = json.loads(payload)
    assert body["predicateType"] == PREDICATE_TYPE
    assert body["predicate"] == {}
    assert body["subject"] == [{"name": "artifact.bin", "digest": {"sha256": digest}}]


def test_bundle_json_round_trip(
    local: LocalSigstore, clients: tuple[SigningContext, Verifier]
) -> None:
    context, verifier = clients
    bundle = sign(context, local.token())
    text = bundle.to_json()
    again = Bundle.from_json(text)
    assert again.to_json() == text
    assert json.loads(text)["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert verifier.verify_artifact(ARTIFACT, again, policy=POLICY) is None


def test_verification_failures(
    tmp_path: Path, local: LocalSigstore, clients: tuple[SigningContext, Verifier]
) -> None:
    context, verifier = clients
    bundle = sign(context, local.token())
    with pytest.raises(VerificationError, match="SANs do not match"):
        verifier.verify_artifact(
            ARTIFACT, bundle, policy=Identity(identity="mallory@example.com", issuer=ISSUER)
        )
    with pytest.raises(VerificationError, match="OIDCIssuer does not match"):
        verifier.verify_artifact(
            ARTIFACT, bundle, policy=Identity(identity=IDENTITY, issuer="https://evil.test")
        )
    with pytest.raises(VerificationError, match="Bundle message digest mismatch"):
        verifier.verify_artifact(ARTIFACT + b"tampered", bundle, policy=POLICY)
    # The signed entry timestamp covers the integrated time.
    doctored = json.loads(bundle.to_json())
    entry = doctored["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)
    with pytest.raises(VerificationError, match="SET: invalid inclusion promise"):
        verifier.verify_artifact(ARTIFACT, Bundle.from_json(json.dumps(doctored)), policy=POLICY)
    with LocalSigstore(tmp_path / "foreign") as foreign:
        _, foreign_verifier = load_clients(foreign.trust_config)
        with pytest.raises(VerificationError, match="certificate chain"):
            foreign_verifier.verify_artifact(ARTIFACT, bundle, policy=POLICY)


def test_fulcio_only_accepts_its_own_tokens(tmp_path: Path, local: LocalSigstore) -> None:
    context, _ = load_clients(local.trust_config)
    # sigstore-python accepts any well-formed JWT; this Fulcio checks the HS256 key.
    with LocalSigstore(tmp_path / "foreign") as foreign, pytest.raises(FulcioClientError):
        sign(context, foreign.token())


def test_expired_token(local: LocalSigstore, clients: tuple[SigningContext, Verifier]) -> None:
    context, _ = clients
    # sigstore-python refuses an expired token before any signing starts.
    with pytest.raises(IdentityError, match="malformed or missing claims"):
        IdentityToken(local.token(expired=True))
    # A token that expires after it was parsed but before Fulcio is asked.
    raw = local.token(lifetime=2)
    token = IdentityToken(raw)
    exp = jwt.decode(raw, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(ExpiredIdentity), context.signer(token):
        pass


def test_fault_injection(local: LocalSigstore, clients: tuple[SigningContext, Verifier]) -> None:
    context, verifier = clients
    local.fail("rekor")
    with context.signer(IdentityToken(local.token())) as signer:
        with pytest.raises(RekorClientError, match="500: rekor: injected failure"):
            signer.sign_artifact(ARTIFACT)
        local.fail(None)
        bundle = signer.sign_artifact(ARTIFACT)
    assert verifier.verify_artifact(ARTIFACT, bundle, policy=POLICY) is None

    local.fail("fulcio")
    with pytest.raises(FulcioClientError):
        sign(context, local.token())
    local.fail(None)
    assert verifier.verify_artifact(ARTIFACT, sign(context, local.token()), policy=POLICY) is None
    with pytest.raises(ValueError, match="part must be one of"):
        local.fail("tsa")


def cli(trust_config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sigstore", "--trust-config", str(trust_config), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_stock_cli_verifies_blob_bundle(
    tmp_path: Path, local: LocalSigstore, clients: tuple[SigningContext, Verifier]
) -> None:
    context, _ = clients
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(ARTIFACT)
    bundle = tmp_path / "artifact.bin.sigstore.json"
    bundle.write_text(sign(context, local.token()).to_json())
    verify = ["verify", "identity", "--bundle", str(bundle), "--cert-oidc-issuer", ISSUER]

    ok = cli(local.trust_config, *verify, "--cert-identity", IDENTITY, str(artifact))
    assert ok.returncode == 0, ok.stderr
    assert "OK:" in ok.stderr

    wrong = cli(
        local.trust_config, *verify, "--cert-identity", "mallory@example.com", str(artifact)
    )
    assert wrong.returncode != 0
    assert "FAIL" in wrong.stderr


def test_stock_cli_signs(tmp_path: Path, local: LocalSigstore) -> None:
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(ARTIFACT)
    signed = cli(local.trust_config, "sign", "--identity-token", local.token(), str(artifact))
    assert signed.returncode == 0, signed.stderr
    _, verifier = load_clients(local.trust_config)
    bundle = Bundle.from_json((tmp_path / "artifact.bin.sigstore.json").read_text())
    assert verifier.verify_artifact(ARTIFACT, bundle, policy=POLICY) is None


def test_sigstore_js_verifies_the_instance_bundles(
    tmp_path: Path, local: LocalSigstore, clients: tuple[SigningContext, Verifier]
) -> None:
    """sigstore-js checks what sigstore-python does not: the checkpoint signer's name.

    It must be part of the log's baseUrl in the trusted root (real Rekor signs as
    rekor.sigstore.dev for https://rekor.sigstore.dev), else "invalid checkpoint
    signature".
    """
    from tests.support.clients import js_verify, trusted_root

    context, _ = clients
    root = trusted_root(local.trust_config, tmp_path / "trusted_root.json")
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(ARTIFACT)
    blob = tmp_path / "artifact.bin.sigstore.json"
    blob.write_text(sign(context, local.token()).to_json())
    digest = hashlib.sha256(ARTIFACT).hexdigest()
    statement = artifact_statement(digest)
    with context.signer(IdentityToken(local.token())) as signer:
        dsse = tmp_path / "dsse.sigstore.json"
        dsse.write_text(signer.sign_dsse(statement).to_json())
    who = {"identity": IDENTITY, "issuer": ISSUER}
    assert js_verify(root, blob, artifact=str(artifact), **who).startswith("OK ")
    assert js_verify(root, dsse, digest=f"sha256:{digest}", **who).startswith("OK ")
    line = js_verify(root, dsse, digest="sha256:" + "0" * 64, **who)
    assert "no subject" in line

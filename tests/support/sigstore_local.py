"""A local Sigstore instance on 127.0.0.1 for sigstore-python's real Signer and Verifier.

One ThreadingHTTPServer (ephemeral port, daemon thread) plays every part, with one
clock (`LocalSigstore._now`) for all of them:

- Fulcio: ``POST /api/v2/signingCert`` checks the bearer token (HS256, signed by this
  instance) and the CSR's proof of possession, then issues a 10-minute leaf from a
  self-signed P-256 root. Each leaf carries exactly one embedded precertificate SCT
  signed by the CT-log key, an authority key identifier and the Fulcio OIDC-issuer
  extensions (1.3.6.1.4.1.57264.1.1 and .1.8). ``GET /api/v2/trustBundle`` too.
- Rekor v1: ``POST /api/v1/log/entries`` verifies the proposed hashedrekord or dsse
  entry, canonicalises it as Rekor does, appends it to an RFC 6962 Merkle tree and
  answers with a signed entry timestamp and an inclusion proof whose checkpoint is a
  signed note. ``GET /api/v1/log`` gives the tree head.
- OIDC: `LocalSigstore.token` mints the identity token (nothing is served for it).

`trust_config` is a ClientTrustConfig JSON file (trusted root 0.1 + signing config
0.2, Rekor majorApiVersion 1, no TSA); it is also what ``--trust-config`` takes.
A caller needs::

    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext
    from sigstore.verify import Verifier
    from sigstore.verify.policy import Identity

    with LocalSigstore(tmp_path) as local:
        config = ClientTrustConfig.from_json(local.trust_config.read_text())
        context = SigningContext.from_trust_config(config)
        verifier = Verifier(trusted_root=config.trusted_root)
        with context.signer(IdentityToken(local.token())) as signer:
            bundle = signer.sign_artifact(b"data")
        verifier.verify_artifact(b"data", bundle, Identity(identity=IDENTITY, issuer=ISSUER))

(`load_clients` does the middle three lines.) Test use only: the keys live in memory
and the log is forgotten when the instance stops.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sigstore.models import ClientTrustConfig
from sigstore.sign import SigningContext
from sigstore.verify import Verifier

IDENTITY = "release@example.com"
ISSUER = "https://oidc.local.test"
AUDIENCE = "sigstore"  # the audience sigstore-python's IdentityToken insists on
PARTS = ("fulcio", "rekor")

_OID_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw UTF-8 bytes
_OID_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
_OID_SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_LEAF_LIFETIME = timedelta(minutes=10)  # what the public Fulcio issues
_SHA256 = ec.ECDSA(hashes.SHA256())


def load_clients(trust_config: Path) -> tuple[SigningContext, Verifier]:
    """The real sigstore-python signing context and verifier for a trust config file."""
    config = ClientTrustConfig.from_json(trust_config.read_text())
    return SigningContext.from_trust_config(config), Verifier(trusted_root=config.trusted_root)


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV (definite length)."""
    size = len(content)
    if size < 0x80:
        length = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pem_b64(cert: x509.Certificate) -> str:
    """How Rekor (and sigstore-python) write a certificate: base64 of its PEM."""
    return _b64(cert.public_bytes(serialization.Encoding.PEM))


def _rfc3339(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# RFC 6962 Merkle tree over leaf hashes (leaf = SHA-256(0x00 || canonical body)).
def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two below `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _tree_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(_tree_root(leaves[:k]), _tree_root(leaves[k:]))


def _audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]): sibling hashes from the leaf up to the root."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_audit_path(index, leaves[:k]), _tree_root(leaves[k:])]
    return [*_audit_path(index - k, leaves[k:]), _tree_root(leaves[:k])]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    instance: LocalSigstore


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            status, answer = self.server.instance._handle(
                method, self.path, self.headers.get("Authorization", ""), body
            )
        except _HTTPError as err:
            status, answer = err.status, {"code": err.status, "message": str(err)}
        except Exception as err:  # a bug here must reach the client as an HTTP error
            status, answer = 500, {"code": 500, "message": f"{type(err).__name__}: {err}"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


class LocalSigstore:
    """Fulcio + CT log + Rekor v1 + token minting on one local port; see the module doc."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._failing: str | None = None
        self._secret = os.urandom(32)  # HS256 key of the "OIDC provider" Fulcio trusts
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ct_key = ec.generate_private_key(ec.SECP256R1())
        self._rekor_key = ec.generate_private_key(ec.SECP256R1())
        # RFC 6962 log IDs: SHA-256 of the DER SubjectPublicKeyInfo.
        self._ct_log_id = hashlib.sha256(_spki(self._ct_key.public_key())).digest()
        self._rekor_log_id = hashlib.sha256(_spki(self._rekor_key.public_key())).digest()
        self._tree_id = int.from_bytes(os.urandom(7), "big")
        self._leaves: list[bytes] = []
        # Everything is valid from an hour ago: sigstore-python skips keys and services
        # whose validFor.start is in the future.
        start = self._now().replace(microsecond=0) - timedelta(hours=1)
        self._ca_cert = self._make_root(start)
        # Bound now (port known for the trust config), served from start().
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.instance = self
        self._thread: threading.Thread | None = None
        self._closed = False
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # Checkpoint origin prefix and note-signer name. Clients match the name against
        # the log's baseUrl (sigstore-js: `baseURL.includes(name)`), as real Rekor signs
        # as rekor.sigstore.dev for https://rekor.sigstore.dev: so the host, not a label.
        self.log_name = urlsplit(self.url).netloc
        self.trust_config = root / "trust_config.json"
        self.trust_config.write_text(json.dumps(self._client_trust_config(start), indent=2))

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> LocalSigstore:
        if self._closed:
            raise RuntimeError("a stopped LocalSigstore cannot be restarted")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() waits at most one poll
                name="local-sigstore",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        if not self._closed:
            self._server.server_close()
            self._closed = True

    def __enter__(self) -> LocalSigstore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- knobs -------------------------------------------------------------------------

    def token(
        self,
        identity: str = IDENTITY,
        issuer: str = ISSUER,
        *,
        expired: bool = False,
        lifetime: int = 600,
    ) -> str:
        """An HS256 JWT that this instance's Fulcio accepts (unless `expired`).

        sigstore-python never checks the signature, but does require aud=sigstore and
        iss, sub, iat, exp, and rejects an expired token in `IdentityToken()` itself.
        An identity with "@" also goes in `email` (some issuers' identity claim).
        """
        now = int(self._now().timestamp())
        iat, exp = (now - 7200, now - 3600) if expired else (now, now + lifetime)
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": identity,
            "aud": AUDIENCE,
            "iat": iat,
            "exp": exp,
        }
        if "@" in identity and "://" not in identity:
            claims.update(email=identity, email_verified=True)
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def fail(self, part: str | None) -> None:
        """Make "fulcio" or "rekor" answer HTTP 500 until `fail(None)`."""
        if part is not None and part not in PARTS:
            raise ValueError(f"part must be one of {PARTS} or None, not {part!r}")
        self._failing = part

    def _now(self) -> datetime:
        """The one clock: certificates, SCTs, integrated times, tokens, trust root."""
        return datetime.now(UTC)

    # -- HTTP --------------------------------------------------------------------------

    def _handle(self, method: str, path: str, authorization: str, body: bytes) -> tuple[int, Any]:
        routes = {
            ("POST", "/api/v2/signingCert"): ("fulcio", self._fulcio_signing_cert),
            ("GET", "/api/v2/trustBundle"): ("fulcio", self._fulcio_trust_bundle),
            ("POST", "/api/v1/log/entries"): ("rekor", self._rekor_create_entry),
            ("GET", "/api/v1/log"): ("rekor", self._rekor_log_info),
        }
        route = routes.get((method, path.split("?", 1)[0].rstrip("/")))
        if route is None:
            raise _HTTPError(404, f"no route for {method} {path}")
        part, handler = route
        if self._failing == part:
            raise _HTTPError(500, f"{part}: injected failure")
        return handler(authorization, body)

    # -- Fulcio ------------------------------------------------------------------------

    def _make_root(self, start: datetime) -> x509.Certificate:
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.local"),
                x509.NameAttribute(NameOID.COMMON_NAME, "sigstore-local-fulcio"),
            ]
        )
        public_key = self._ca_key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )

    def _fulcio_signing_cert(self, authorization: str, body: bytes) -> tuple[int, Any]:
        scheme, _, raw_token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not raw_token:
            raise _HTTPError(401, "missing bearer token")
        try:
            claims = jwt.decode(
                raw_token,
                self._secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options={"require": ["iss", "sub", "iat", "exp"]},
            )
        except jwt.PyJWTError as err:
            raise _HTTPError(401, f"invalid identity token: {err}") from err
        try:
            pem = base64.b64decode(json.loads(body)["certificateSigningRequest"])
            csr = x509.load_pem_x509_csr(pem)
        except (ValueError, KeyError, TypeError) as err:
            raise _HTTPError(400, f"malformed certificate signing request: {err}") from err
        if not csr.is_signature_valid:  # proof of possession of the private key
            raise _HTTPError(400, "CSR signature does not verify")
        identity = str(claims.get("email") or claims["sub"])
        leaf = self._issue(csr.public_key(), identity, str(claims["iss"]))
        chain = [c.public_bytes(serialization.Encoding.PEM).decode() for c in (leaf, self._ca_cert)]
        return 201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}

    def _fulcio_trust_bundle(self, authorization: str, body: bytes) -> tuple[int, Any]:
        root = self._ca_cert.public_bytes(serialization.Encoding.PEM).decode()
        return 200, {"chains": [{"certificates": [root]}]}

    def _issue(self, public_key: Any, identity: str, issuer: str) -> x509.Certificate:
        """A Fulcio-style leaf with exactly one embedded precertificate SCT."""
        # Whole seconds: X.509 times have no fraction, the integrated time is an int,
        # and sigstore-python rebuilds the SCT timestamp through a float.
        now = self._now().replace(microsecond=0)
        san: x509.GeneralName = (
            x509.RFC822Name(identity)
            if "@" in identity and "://" not in identity
            else x509.UniformResourceIdentifier(identity)
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self._ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + _LEAF_LIFETIME)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()),
                critical=False,
            )
            # The subject is empty, so the SAN must be critical (RFC 5280 4.2.1.6).
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(_OID_ISSUER_V1, issuer.encode()), False)
            .add_extension(
                x509.UnrecognizedExtension(_OID_ISSUER_V2, _der(0x0C, issuer.encode())), False
            )
        )

        def with_scts(sct_list: bytes) -> x509.Certificate:
            ext = x509.UnrecognizedExtension(_OID_SCT_LIST, _der(0x04, sct_list))
            return builder.add_extension(ext, critical=False).sign(self._ca_key, hashes.SHA256())

        # The SCT signs the TBSCertificate *without* the SCT-list extension; everything
        # else (serial, times, extension order) is fixed in `builder`, so a placeholder
        # build yields exactly the bytes the verifier reconstructs.
        tbs = with_scts(b"\x00\x00").tbs_precertificate_bytes
        timestamp_ms = int(now.timestamp()) * 1000
        issuer_key_hash = hashlib.sha256(_spki(self._ca_key.public_key())).digest()
        signed = (
            struct.pack("!BBQH", 0, 0, timestamp_ms, 1)  # v1, certificate_timestamp, precert
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", 0)  # no CT extensions
        )
        signature = self._ct_key.sign(signed, _SHA256)
        sct = (
            struct.pack("!B32sQH", 0, self._ct_log_id, timestamp_ms, 0)
            + struct.pack("!BBH", 4, 3, len(signature))  # sha256, ecdsa
            + signature
        )
        return with_scts(struct.pack("!HH", len(sct) + 2, len(sct)) + sct)

    # -- Rekor -------------------------------------------------------------------------

    def _rekor_create_entry(self, authorization: str, body: bytes) -> tuple[int, Any]:
        try:
            proposed = json.loads(body)
            kind, version = proposed["kind"], proposed["apiVersion"]
            if version != "0.0.1":
                raise _HTTPError(400, f"unsupported {kind} version {version}")
            if kind == "hashedrekord":
                canonical = self._canonical_hashedrekord(proposed["spec"])
            elif kind == "dsse":
                canonical = self._canonical_dsse(proposed["spec"])
            else:
                raise _HTTPError(400, f"unsupported entry kind {kind!r}")
        except (KeyError, TypeError, ValueError) as err:
            raise _HTTPError(400, f"malformed entry: {type(err).__name__}: {err}") from err
        entry_body = rfc8785.dumps(canonical)
        leaf_hash = hashlib.sha256(b"\x00" + entry_body).digest()
        with self._lock:
            index = len(self._leaves)
            self._leaves.append(leaf_hash)
            leaves = list(self._leaves)
            integrated_time = int(self._now().timestamp())
        root = _tree_root(leaves)
        log_id = self._rekor_log_id.hex()
        # The signed entry timestamp covers exactly these four fields, RFC 8785-encoded.
        promise = {
            "body": _b64(entry_body),
            "integratedTime": integrated_time,
            "logID": log_id,
            "logIndex": index,
        }
        entry = {
            **promise,
            "verification": {
                "signedEntryTimestamp": _b64(self._rekor_key.sign(rfc8785.dumps(promise), _SHA256)),
                "inclusionProof": {
                    "logIndex": index,
                    "treeSize": len(leaves),
                    "rootHash": root.hex(),
                    "hashes": [h.hex() for h in _audit_path(index, leaves)],
                    "checkpoint": self._checkpoint(len(leaves), root),
                },
            },
        }
        return 201, {leaf_hash.hex(): entry}

    def _rekor_log_info(self, authorization: str, body: bytes) -> tuple[int, Any]:
        with self._lock:
            leaves = list(self._leaves)
        root = _tree_root(leaves) if leaves else hashlib.sha256(b"").digest()
        return 200, {
            "rootHash": root.hex(),
            "treeSize": len(leaves),
            "signedTreeHead": self._checkpoint(len(leaves), root),
            "treeID": str(self._tree_id),
        }

    def _checkpoint(self, size: int, root: bytes) -> str:
        """A signed note; its key hint is the first 4 bytes of the log ID."""
        note = f"{self.log_name} - {self._tree_id}\n{size}\n{_b64(root)}\n"
        signature = self._rekor_key.sign(note.encode(), _SHA256)
        return f"{note}\n\u2014 {self.log_name} {_b64(self._rekor_log_id[:4] + signature)}\n"

    @staticmethod
    def _verifier(b64_pem: str) -> tuple[x509.Certificate, ec.EllipticCurvePublicKey]:
        cert = x509.load_pem_x509_certificate(base64.b64decode(b64_pem))
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise _HTTPError(400, "only ECDSA signing certificates are supported")
        return cert, key

    def _canonical_hashedrekord(self, spec: dict[str, Any]) -> dict[str, Any]:
        digest_hex = spec["data"]["hash"]["value"]
        algorithm = spec["data"]["hash"]["algorithm"]
        if algorithm != "sha256":
            raise _HTTPError(400, f"unsupported hash algorithm {algorithm!r}")
        signature = base64.b64decode(spec["signature"]["content"])
        cert, key = self._verifier(spec["signature"]["publicKey"]["content"])
        try:
            key.verify(signature, bytes.fromhex(digest_hex), ec.ECDSA(Prehashed(hashes.SHA256())))
        except InvalidSignature as err:
            raise _HTTPError(400, "signature does not verify against the digest") from err
        return {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": digest_hex.lower()}},
                "signature": {"content": _b64(signature), "publicKey": {"content": _pem_b64(cert)}},
            },
        }

    def _canonical_dsse(self, spec: dict[str, Any]) -> dict[str, Any]:
        raw_envelope = spec["proposedContent"]["envelope"]
        envelope = json.loads(raw_envelope)
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"])
        pae = b"DSSEv1 %d %s %d %s" % (
            len(payload_type.encode()),
            payload_type.encode(),
            len(payload),
            payload,
        )
        verifiers = [self._verifier(v) for v in spec["proposedContent"]["verifiers"]]
        signatures = []
        for item in envelope["signatures"]:
            sig = base64.b64decode(item["sig"])
            for cert, key in verifiers:
                try:
                    key.verify(sig, pae, _SHA256)
                except InvalidSignature:
                    continue
                signatures.append({"signature": _b64(sig), "verifier": _pem_b64(cert)})
                break
            else:
                raise _HTTPError(400, "a DSSE signature verifies against no verifier")
        if not signatures:
            raise _HTTPError(400, "DSSE envelope has no signatures")
        return {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                # Over the envelope exactly as submitted, as Rekor does.
                "envelopeHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(raw_envelope.encode()).hexdigest(),
                },
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
                "signatures": sorted(signatures, key=lambda s: s["signature"]),
            },
        }

    # -- trust config ------------------------------------------------------------------

    def _client_trust_config(self, start: datetime) -> dict[str, Any]:
        valid_for = {"start": _rfc3339(start)}

        def log(key: ec.EllipticCurvePrivateKey, log_id: bytes) -> dict[str, Any]:
            return {
                "baseUrl": self.url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": _b64(_spki(key.public_key())),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": valid_for,
                },
                "logId": {"keyId": _b64(log_id)},
            }

        def service(url: str) -> dict[str, Any]:
            return {
                "url": url,
                "majorApiVersion": 1,
                "validFor": valid_for,
                "operator": "sigstore.local",
            }

        der_root = self._ca_cert.public_bytes(serialization.Encoding.DER)
        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [log(self._rekor_key, self._rekor_log_id)],
                "certificateAuthorities": [
                    {
                        "subject": {
                            "organization": "sigstore.local",
                            "commonName": "sigstore-local-fulcio",
                        },
                        "uri": self.url,
                        "certChain": {"certificates": [{"rawBytes": _b64(der_root)}]},
                        "validFor": valid_for,
                    }
                ],
                "ctlogs": [log(self._ct_key, self._ct_log_id)],
                "timestampAuthorities": [],
            },
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(self.url)],
                # Nothing interactive is served; the entry keeps any OIDC lookup local.
                "oidcUrls": [service(self.url)],
                "rekorTlogUrls": [service(self.url)],
                "tsaUrls": [],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }

"""Trusted boot keys: the owner's Secure Boot and TPM PCR keys for UKI ISOs.

`invoke keys` has AuroraBoot's `genkey` make a full set (PK, KEK, db and the
TPM PCR policy key) in `keys/`, which is git-ignored and never sent to the
image builder (.dockerignore). Builds read the keys from that directory, or in
CI from the KAIROS_KEYS secret (base64 of a tar.gz of the files build-uki
needs, made by `invoke keys --export`), unpacked into a private temporary
directory. Keys are mounted read-only into the AuroraBoot container and
nowhere else; no key material is ever printed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import Release
from .runner import Runner, StepError

DEFAULT_DIR = "keys"
ENV = "KAIROS_KEYS"
DAYS = 365  # genkey's own default lifetime (AuroraBoot internal/cmd/genkey.go)
# What `build-uki` reads: the db key pair signs the EFI files, the PCR key
# signs the TPM policy, the .auth files are enrolled by systemd-boot.
REQUIRED = ("db.key", "db.pem", "tpm2-pcr-private.pem", "PK.auth", "KEK.auth", "db.auth")
# Everything `genkey` writes; PK.key and KEK.key are only needed to re-sign
# the key databases later, so they stay on the owner's machine.
_PAIRS = tuple(f"{kind}.{ext}" for kind in ("PK", "KEK", "db") for ext in ("key", "pem", "der"))
GENERATED = tuple(dict.fromkeys([*REQUIRED, *_PAIRS, "PK.esl", "KEK.esl", "db.esl"]))
PRIVATE = tuple(name for name in GENERATED if name.endswith(".key") or "private" in name)


class KeysError(ValueError):
    """A missing or unusable key set; str() is one line naming the file."""


def missing(directory: Path, names: tuple[str, ...] = REQUIRED) -> list[str]:
    return [name for name in names if not (directory / name).is_file()]


def check(directory: Path) -> Path:
    """`directory` when it holds every key build-uki needs; else name the first gap."""
    hint = f"run `invoke keys`, or set {ENV} in CI"
    if not directory.is_dir():
        raise KeysError(f"keys: no key directory {directory} ({hint})")
    gaps = missing(directory)
    if gaps:
        raise KeysError(f"keys: {directory / gaps[0]} is missing ({hint})")
    return directory


def certificate_digest(directory: Path) -> str:
    """The db certificate's digest: UKIs must be rebuilt when the owner's key changes."""
    try:
        return hashlib.sha256((directory / "db.pem").read_bytes()).hexdigest()
    except OSError:
        return "no keys"


# -- CI: the key set as one secret ------------------------------------------------------
def export(directory: Path) -> str:
    """Base64 of a tar.gz of the files build-uki needs (the KAIROS_KEYS secret)."""
    check(directory)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in REQUIRED:
            info = tarfile.TarInfo(name)
            data = (directory / name).read_bytes()
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()


def unpack(secret: str, directory: Path) -> None:
    """Write the secret's key files into `directory` (0600); nothing else is taken."""
    try:
        blob = base64.b64decode(secret.strip(), validate=True)
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.name not in GENERATED or not member.isfile():
                    continue  # only known flat file names: no paths, links or devices
                source = tar.extractfile(member)
                target = directory / member.name
                target.write_bytes(source.read() if source else b"")
                target.chmod(0o600)
    except (binascii.Error, ValueError, EOFError, tarfile.TarError, OSError):
        raise KeysError(f"keys: {ENV} is not a key set from `invoke keys --export`") from None


@contextmanager
def located(directory: Path) -> Iterator[Path]:
    """The key directory to use: the KAIROS_KEYS secret unpacked privately, else `directory`.

    Not checked here: only trusted-boot cells need keys, and they say which file is missing.
    """
    secret = os.environ.get(ENV, "").strip()
    if not secret:
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="kairos-keys-") as tmp:
        unpack(secret, Path(tmp))  # a bad secret fails here; the directory goes either way
        yield Path(tmp)


# -- invoke keys: a new key set via AuroraBoot genkey -------------------------------------
def genkey_command(name: str, days: int) -> list[str]:
    return ["--debug", "genkey", "--output", "/keys", "--expiration-in-days", str(days), name]


def generate(runner: Runner, release: Release, directory: Path, name: str, days: int) -> None:
    """Make a new key set in `directory`, which must not hold keys yet.

    Enrolled machines trust the old keys, so an existing set is never replaced.
    The set appears whole or not at all: genkey writes into a private staging
    directory that is renamed into place once every file is there.
    """
    if directory.exists() and any(directory.iterdir()):
        raise KeysError(
            f"keys: {directory} already holds keys; machines enrolled with them would "
            "refuse new ones, so move it away first to make a new set"
        )
    command = genkey_command(name, days)
    shown = {str(directory): {"bind": "/keys", "mode": "rw"}}
    plan = runner.container_plan(release.auroraboot, command, shown)
    runner.act("keys", plan, lambda: _genkey(runner, release, directory, command))


def _genkey(runner: Runner, release: Release, directory: Path, command: list[str]) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-staging-"))
    try:
        mounts = {str(staging.resolve()): {"bind": "/keys", "mode": "rw"}}
        runner.container(
            "keys",
            "genkey",
            release.auroraboot,
            command,
            mounts,
            label="AuroraBoot genkey",
            network="none",  # key generation needs no network
            user=f"{os.getuid()}:{os.getgid()}",  # files the owner can read
        )
        gaps = missing(staging, GENERATED)
        if gaps:
            raise StepError("keys", "genkey", f"genkey did not write {gaps[0]}")
        for path in staging.iterdir():
            path.chmod(0o600 if path.name in PRIVATE else 0o644)
        if directory.exists():
            directory.rmdir()  # empty, checked above
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

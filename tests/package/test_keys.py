"""Trusted-boot keys: checking a key set, the KAIROS_KEYS secret, and `invoke keys`.

No Docker here: `generate` runs AuroraBoot's genkey through the Runner, so a
stand-in Runner plays genkey by writing files into the directory it was asked
to mount, and the tests pin what this repository owns around it: the staging
directory, the atomic rename, file modes, and what the container is allowed.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest

from kairos_distro import keys
from kairos_distro.keys import GENERATED, PRIVATE, REQUIRED, KeysError
from kairos_distro.runner import Runner, StepError

HINT = "(run `invoke keys`, or set KAIROS_KEYS in CI)"
REFUSED = "keys: KAIROS_KEYS is not a key set from `invoke keys --export`"


def content(name: str) -> bytes:
    """Distinct bytes per file, so a swapped or truncated file shows."""
    return f"-----{name}-----\n".encode() + hashlib.sha256(name.encode()).digest()


def key_set(directory: Path, names: tuple[str, ...] = GENERATED) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(content(name))
    return directory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def one_line(caught: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(caught.value)
    assert message and "\n" not in message, message
    return message


def secret_of(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> str:
    """A KAIROS_KEYS value made by hand from (member, data) pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()


def member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, 0o644
    return info


@pytest.fixture
def no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(keys.ENV, raising=False)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where tempfile puts directories during the test, to see what is left behind."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


# -- check and missing ------------------------------------------------------------------


def test_required_keys_are_what_build_uki_reads_and_private_keys_are_known() -> None:
    assert REQUIRED == (
        "db.key",
        "db.pem",
        "tpm2-pcr-private.pem",
        "PK.auth",
        "KEK.auth",
        "db.auth",
    )
    assert set(REQUIRED) < set(GENERATED)
    assert set(GENERATED) - set(REQUIRED) == {
        f"{kind}.{ext}" for kind in ("PK", "KEK", "db") for ext in ("key", "pem", "der", "esl")
    } - set(REQUIRED)
    assert set(PRIVATE) == {"db.key", "PK.key", "KEK.key", "tpm2-pcr-private.pem"}


def test_check_accepts_a_complete_set(tmp_path: Path) -> None:
    directory = key_set(tmp_path / "keys", REQUIRED)
    assert keys.check(directory) == directory
    assert keys.missing(directory) == []


def test_check_refuses_a_missing_directory(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    with pytest.raises(KeysError) as caught:
        keys.check(directory)
    assert one_line(caught) == f"keys: no key directory {directory} {HINT}"


def test_check_refuses_a_file_where_the_directory_should_be(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    directory.write_text("not a directory")
    with pytest.raises(KeysError) as caught:
        keys.check(directory)
    assert one_line(caught) == f"keys: no key directory {directory} {HINT}"


@pytest.mark.parametrize("gap", REQUIRED)
def test_check_names_each_missing_required_file(tmp_path: Path, gap: str) -> None:
    # Everything genkey writes but this one file.
    directory = key_set(tmp_path / "keys", tuple(n for n in GENERATED if n != gap))
    with pytest.raises(KeysError) as caught:
        keys.check(directory)
    assert one_line(caught) == f"keys: {directory / gap} is missing {HINT}"
    assert keys.missing(directory) == [gap]


def test_check_names_the_first_gap_in_order(tmp_path: Path) -> None:
    directory = key_set(tmp_path / "keys", ("db.key", "PK.auth"))
    assert keys.missing(directory) == ["db.pem", "tpm2-pcr-private.pem", "KEK.auth", "db.auth"]
    with pytest.raises(KeysError) as caught:
        keys.check(directory)
    assert one_line(caught) == f"keys: {directory / 'db.pem'} is missing {HINT}"


def test_check_does_not_need_the_owner_only_keys(tmp_path: Path) -> None:
    # PK.key and KEK.key stay on the owner's machine; builds never need them.
    directory = key_set(tmp_path / "keys", REQUIRED)
    assert not (directory / "PK.key").exists()
    assert keys.check(directory) == directory
    assert keys.missing(directory, GENERATED) == [n for n in GENERATED if n not in REQUIRED]


def test_missing_counts_a_directory_named_like_a_key_as_missing(tmp_path: Path) -> None:
    directory = key_set(tmp_path / "keys", tuple(n for n in REQUIRED if n != "db.key"))
    (directory / "db.key").mkdir()
    assert keys.missing(directory) == ["db.key"]


def test_missing_of_an_absent_directory_is_everything(tmp_path: Path) -> None:
    assert keys.missing(tmp_path / "nowhere") == list(REQUIRED)


# -- certificate_digest -------------------------------------------------------------------


def test_certificate_digest_is_the_db_certificate_sha256(tmp_path: Path) -> None:
    directory = key_set(tmp_path / "keys")
    digest = keys.certificate_digest(directory)
    assert digest == hashlib.sha256(content("db.pem")).hexdigest()


def test_certificate_digest_follows_db_pem_only(tmp_path: Path) -> None:
    directory = key_set(tmp_path / "keys")
    before = keys.certificate_digest(directory)
    (directory / "PK.pem").write_bytes(b"another PK")
    (directory / "db.key").write_bytes(b"another db key")
    assert keys.certificate_digest(directory) == before
    (directory / "db.pem").write_bytes(b"a new db certificate")
    after = keys.certificate_digest(directory)
    assert after != before
    assert after == hashlib.sha256(b"a new db certificate").hexdigest()


def test_certificate_digest_without_keys(tmp_path: Path) -> None:
    assert keys.certificate_digest(tmp_path / "nowhere") == "no keys"
    directory = key_set(tmp_path / "keys", tuple(n for n in GENERATED if n != "db.pem"))
    assert keys.certificate_digest(directory) == "no keys"


# -- export and unpack: the KAIROS_KEYS secret ----------------------------------------------


def test_export_unpack_round_trip_carries_only_required_files(tmp_path: Path) -> None:
    source = key_set(tmp_path / "keys")
    secret = keys.export(source)
    assert "\n" not in secret and secret.isascii()
    target = tmp_path / "unpacked"
    target.mkdir()
    keys.unpack(secret, target)
    assert sorted(p.name for p in target.iterdir()) == sorted(REQUIRED)
    for name in REQUIRED:
        assert (target / name).read_bytes() == content(name), name
        assert mode(target / name) == 0o600, name
    assert keys.check(target) == target


def test_export_holds_flat_private_members(tmp_path: Path) -> None:
    secret = keys.export(key_set(tmp_path / "keys"))
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(secret)), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == list(REQUIRED)
    assert all(m.isfile() and m.mode == 0o600 for m in members)


def test_export_of_public_files_keeps_private_modes(tmp_path: Path) -> None:
    source = key_set(tmp_path / "keys", REQUIRED)
    for path in source.iterdir():
        path.chmod(0o644)
    target = tmp_path / "unpacked"
    target.mkdir()
    keys.unpack(keys.export(source), target)
    assert {mode(p) for p in target.iterdir()} == {0o600}


def test_export_refuses_an_incomplete_set(tmp_path: Path) -> None:
    directory = key_set(tmp_path / "keys", tuple(n for n in REQUIRED if n != "KEK.auth"))
    with pytest.raises(KeysError) as caught:
        keys.export(directory)
    assert one_line(caught) == f"keys: {directory / 'KEK.auth'} is missing {HINT}"


def test_unpack_accepts_the_secret_with_surrounding_whitespace(tmp_path: Path) -> None:
    # CI secrets pasted from a terminal often end with a newline.
    secret = keys.export(key_set(tmp_path / "keys"))
    target = tmp_path / "unpacked"
    target.mkdir()
    keys.unpack(f"  {secret}\n", target)
    assert sorted(p.name for p in target.iterdir()) == sorted(REQUIRED)


def test_unpack_overwrites_a_stale_file(tmp_path: Path) -> None:
    secret = keys.export(key_set(tmp_path / "keys"))
    target = tmp_path / "unpacked"
    target.mkdir()
    (target / "db.key").write_bytes(b"stale")
    (target / "db.key").chmod(0o644)
    keys.unpack(secret, target)
    assert (target / "db.key").read_bytes() == content("db.key")
    assert mode(target / "db.key") == 0o600


GARBAGE = {
    "not base64": "this is not base64 at all!",
    "base64 of text": base64.b64encode(b"db.key: hunter2-the-private-key").decode(),
    "base64 of gzip text": base64.b64encode(gzip.compress(b"hunter2-the-private-key")).decode(),
    "base64 of an empty gzip": base64.b64encode(gzip.compress(b"")).decode(),
    "padding inside": "aGVsbG8=aGVsbG8=",
}


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_unpack_refuses_garbage_in_one_line_without_echoing_it(tmp_path: Path, kind: str) -> None:
    secret = GARBAGE[kind]
    target = tmp_path / "unpacked"
    target.mkdir()
    with pytest.raises(KeysError) as caught:
        keys.unpack(secret, target)
    message = one_line(caught)
    assert message == REFUSED
    assert "KAIROS_KEYS" in message
    assert secret not in message and "hunter2" not in message
    # The decoding error (which might quote the input) is not chained either.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert caught.value.args == (REFUSED,)


def test_unpack_refuses_a_corrupted_secret(tmp_path: Path) -> None:
    blob = bytearray(base64.b64decode(keys.export(key_set(tmp_path / "keys"))))
    for i in range(20, 40):
        blob[i] ^= 0xFF  # inside the deflate stream
    target = tmp_path / "unpacked"
    target.mkdir()
    with pytest.raises(KeysError) as caught:
        keys.unpack(base64.b64encode(bytes(blob)).decode(), target)
    assert one_line(caught) == REFUSED


def test_unpack_refuses_a_truncated_secret(tmp_path: Path) -> None:
    # A CI secret cut short when pasted: still valid base64, but the gzip ends early.
    whole = keys.export(key_set(tmp_path / "keys"))
    target = tmp_path / "unpacked"
    target.mkdir()
    with pytest.raises(KeysError) as caught:
        keys.unpack(whole[: len(whole) // 2 // 4 * 4], target)
    assert one_line(caught) == REFUSED


def test_unpack_refuses_a_plain_tar(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("db.key")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"key"))
    target = tmp_path / "unpacked"
    target.mkdir()
    with pytest.raises(KeysError) as caught:
        keys.unpack(base64.b64encode(buffer.getvalue()).decode(), target)
    assert one_line(caught) == REFUSED
    assert list(target.iterdir()) == []


def test_unpack_takes_only_known_flat_regular_files(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"untouched")
    secret = secret_of(
        [
            (member("../db.key"), b"escaped"),
            (member("a/db.key"), b"nested"),
            (member("/tmp/db.pem"), b"absolute"),
            (member("./db.auth"), b"dotted"),
            (member("db.pem", tarfile.SYMTYPE, str(outside / "victim")), None),
            (member("PK.auth", tarfile.LNKTYPE, "../outside/victim"), None),
            (member("KEK.auth", tarfile.DIRTYPE), None),
            (member("tpm2-pcr-private.pem", tarfile.FIFOTYPE), None),
            (member("evil.sh"), b"#!/bin/sh\nrm -rf /\n"),
            (member("authorized_keys"), b"ssh-ed25519 AAAA"),
            (member("db.key"), b"the real db key"),
            (member("PK.key"), b"an owner-only key, still a known name"),
        ]
    )
    parent = tmp_path / "work"
    target = parent / "unpacked"
    target.mkdir(parents=True)
    keys.unpack(secret, target)
    assert sorted(p.name for p in target.iterdir()) == ["PK.key", "db.key"]
    assert (target / "db.key").read_bytes() == b"the real db key"
    assert (target / "PK.key").read_bytes() == b"an owner-only key, still a known name"
    assert all(p.is_file() and not p.is_symlink() for p in target.iterdir())
    assert {mode(p) for p in target.iterdir()} == {0o600}
    assert list(parent.iterdir()) == [target]  # nothing escaped upwards
    assert not (target / "a").exists()
    assert (outside / "victim").read_bytes() == b"untouched"
    assert list(outside.iterdir()) == [outside / "victim"]


# -- located: the key directory a build uses --------------------------------------------------


def test_located_without_the_secret_is_the_given_directory(
    tmp_path: Path, no_secret: None, private_tmp: Path
) -> None:
    directory = tmp_path / "keys"  # need not exist: only trusted-boot cells check it
    with keys.located(directory) as found:
        assert found == directory
    assert not directory.exists()
    assert list(private_tmp.iterdir()) == []


def test_located_ignores_a_blank_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_tmp: Path
) -> None:
    monkeypatch.setenv(keys.ENV, "  \n")
    directory = key_set(tmp_path / "keys", REQUIRED)
    with keys.located(directory) as found:
        assert found == directory
    assert list(private_tmp.iterdir()) == []


def test_located_with_the_secret_unpacks_into_a_private_directory_then_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_tmp: Path
) -> None:
    secret = keys.export(key_set(tmp_path / "exported"))
    monkeypatch.setenv(keys.ENV, secret)
    directory = key_set(tmp_path / "keys", ("db.pem",))  # the secret wins over a local dir
    with keys.located(directory) as found:
        assert found != directory
        assert found.parent == private_tmp and found.name.startswith("kairos-keys-")
        assert mode(found) == 0o700
        assert sorted(p.name for p in found.iterdir()) == sorted(REQUIRED)
        assert {mode(p) for p in found.iterdir()} == {0o600}
        assert (found / "db.key").read_bytes() == content("db.key")
        assert keys.check(found) == found
    assert not found.exists()
    assert list(private_tmp.iterdir()) == []
    assert (directory / "db.pem").read_bytes() == content("db.pem")


def test_located_removes_the_keys_when_the_build_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_tmp: Path
) -> None:
    monkeypatch.setenv(keys.ENV, keys.export(key_set(tmp_path / "exported")))
    seen: list[Path] = []
    with (
        pytest.raises(RuntimeError, match="build failed"),
        keys.located(tmp_path / "keys") as found,
    ):
        seen.append(found)
        assert (found / "db.key").is_file()
        raise RuntimeError("build failed")
    assert seen and not seen[0].exists()
    assert list(private_tmp.iterdir()) == []


def test_located_refuses_a_bad_secret_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_tmp: Path
) -> None:
    monkeypatch.setenv(keys.ENV, "bm90IGEgdGFyLmd6")  # base64 of "not a tar.gz"
    with pytest.raises(KeysError) as caught, keys.located(tmp_path / "keys"):
        pytest.fail("a bad secret must not yield a key directory")
    assert one_line(caught) == REFUSED
    assert list(private_tmp.iterdir()) == []


# -- invoke keys: genkey ------------------------------------------------------------------------


def test_genkey_command() -> None:
    assert keys.genkey_command("my-distro", 365) == [
        "--debug",
        "genkey",
        "--output",
        "/keys",
        "--expiration-in-days",
        "365",
        "my-distro",
    ]
    assert keys.genkey_command("other", 3650)[-3:] == ["--expiration-in-days", "3650", "other"]


class Genkey(Runner):
    """A Runner whose only container is genkey: it writes `names` into the /keys mount."""

    def __init__(self, directory: Path, names: tuple[str, ...] = GENERATED) -> None:
        super().__init__(dry=False, out=io.StringIO())
        self.directory, self.names = directory, names
        self.calls: list[dict[str, Any]] = []
        self.staging: Path | None = None

    def container(self, cell: str, step: str, image: str, command: list[str], volumes, **kw):  # type: ignore[override]
        self.calls.append(
            {"cell": cell, "step": step, "image": image, "command": command, "volumes": volumes}
            | kw
        )
        hosts = [host for host, bind in volumes.items() if bind["bind"] == "/keys"]
        assert len(hosts) == 1, volumes
        staging = self.staging = Path(hosts[0])
        assert staging.is_dir() and list(staging.iterdir()) == []
        # Nothing at the key directory while genkey runs: it appears whole, later.
        assert not self.directory.exists() or list(self.directory.iterdir()) == []
        for name in self.names:
            (staging / name).write_bytes(content(name))
            (staging / name).chmod(0o666)  # as a container's umask might leave them


def test_generate_makes_the_set_by_renaming_a_staging_directory(
    tmp_path: Path, make_release
) -> None:
    release = make_release()
    directory = tmp_path / "keys"
    runner = Genkey(directory)
    keys.generate(runner, release, directory, "my-distro", 365)

    assert sorted(p.name for p in directory.iterdir()) == sorted(set(GENERATED))
    for name in GENERATED:
        assert (directory / name).read_bytes() == content(name), name
        assert mode(directory / name) == (0o600 if name in PRIVATE else 0o644), name
    assert keys.check(directory) == directory
    # genkey wrote into a hidden sibling, which became the key directory.
    assert runner.staging is not None
    assert runner.staging.parent == tmp_path.resolve()
    assert runner.staging.name.startswith(".keys-staging-")
    assert not runner.staging.exists()
    assert list(tmp_path.iterdir()) == [directory]

    [call] = runner.calls
    assert call["cell"] == "keys" and call["step"] == "genkey"
    assert call["image"] == release.auroraboot
    assert call["command"] == keys.genkey_command("my-distro", 365)
    assert call["volumes"] == {str(runner.staging): {"bind": "/keys", "mode": "rw"}}
    assert call["network"] == "none"
    assert call["user"] == f"{os.getuid()}:{os.getgid()}"
    assert not call.get("privileged", False)
    assert call["label"] == "AuroraBoot genkey"


def test_generate_creates_missing_parents(tmp_path: Path, make_release) -> None:
    directory = tmp_path / "secrets" / "uki" / "keys"
    keys.generate(Genkey(directory), make_release(), directory, "d", 30)
    assert keys.check(directory) == directory
    assert list(directory.parent.iterdir()) == [directory]


def test_generate_fills_an_existing_empty_directory(tmp_path: Path, make_release) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()
    keys.generate(Genkey(directory), make_release(), directory, "d", 30)
    assert sorted(p.name for p in directory.iterdir()) == sorted(set(GENERATED))
    assert list(tmp_path.iterdir()) == [directory]


@pytest.mark.parametrize(
    "written, first_gap",
    [
        (tuple(n for n in GENERATED if n != "db.auth"), "db.auth"),
        (tuple(n for n in GENERATED if n not in ("KEK.esl", "PK.key")), "PK.key"),
        (("db.key", "db.pem"), "tpm2-pcr-private.pem"),
        ((), "db.key"),
    ],
)
def test_generate_refuses_an_incomplete_set_and_leaves_nothing(
    tmp_path: Path, make_release, written: tuple[str, ...], first_gap: str
) -> None:
    directory = tmp_path / "keys"
    runner = Genkey(directory, written)
    with pytest.raises(StepError) as caught:
        keys.generate(runner, make_release(), directory, "d", 30)
    assert one_line(caught) == f"keys: genkey: genkey did not write {first_gap}"
    assert (caught.value.cell, caught.value.step) == ("keys", "genkey")
    assert not directory.exists()
    assert runner.staging is not None and not runner.staging.exists()
    assert list(tmp_path.iterdir()) == []


def test_generate_cleans_up_when_genkey_fails(tmp_path: Path, make_release) -> None:
    class Failing(Genkey):
        def container(self, *args: Any, **kw: Any) -> None:  # type: ignore[override]
            super().container(*args, **kw)  # half the files, then the container dies
            raise StepError("keys", "genkey", "AuroraBoot genkey exited 1: boom")

    directory = tmp_path / "keys"
    runner = Failing(directory, REQUIRED[:3])
    with pytest.raises(StepError, match="AuroraBoot genkey exited 1: boom"):
        keys.generate(runner, make_release(), directory, "d", 30)
    assert list(tmp_path.iterdir()) == []


def test_generate_refuses_a_directory_that_holds_files(tmp_path: Path, make_release) -> None:
    directory = key_set(tmp_path / "keys", ("db.key",))
    runner = Genkey(directory)
    with pytest.raises(KeysError) as caught:
        keys.generate(runner, make_release(), directory, "d", 30)
    message = one_line(caught)
    assert message.startswith(f"keys: {directory} already holds keys")
    assert "move it away" in message
    assert runner.calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"]
    assert [p.name for p in directory.iterdir()] == ["db.key"]
    assert (directory / "db.key").read_bytes() == content("db.key")


def test_generate_refuses_even_a_stray_file(tmp_path: Path, make_release) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()
    (directory / ".gitkeep").write_text("")
    with pytest.raises(KeysError, match="already holds keys"):
        keys.generate(Genkey(directory), make_release(), directory, "d", 30)
    assert [p.name for p in directory.iterdir()] == [".gitkeep"]


def test_generate_dry_prints_the_would_run_line_and_writes_nothing(
    tmp_path: Path, make_release
) -> None:
    release = make_release()
    directory = tmp_path / "nested" / "keys"
    out = io.StringIO()
    keys.generate(Runner(dry=True, out=out), release, directory, "my-distro", 365)
    command = " ".join(keys.genkey_command("my-distro", 365))
    assert out.getvalue() == (
        f"[keys] would run {release.auroraboot} {command} ({directory}:/keys)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_generate_dry_still_refuses_existing_keys(tmp_path: Path, make_release) -> None:
    directory = key_set(tmp_path / "keys", REQUIRED)
    out = io.StringIO()
    with pytest.raises(KeysError, match="already holds keys"):
        keys.generate(Runner(dry=True, out=out), make_release(), directory, "d", 30)
    assert out.getvalue() == ""

"""grype's database: the pin, the listing, one download and import per checksum, the scan.

The listing and archives are served on 127.0.0.1; grype is a fake runner whose
`db import` writes a database where grype would (vulndb_fakes.py).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import static_http
import vulndb_fakes as fakes
from fake_runner import FakeRunner

from kairos_distro import vulndb
from kairos_distro.runner import StepError
from kairos_distro.vulndb import Pin, VulnDbError

HEX = "5" * 64
URL = "https://grype.anchore.io/databases/v6/vulnerability-db_v6.1.10.tar.zst"
GRYPE = "docker.io/anchore/grype:v0.121.2@sha256:" + "9" * 64


@pytest.fixture
def site(monkeypatch, tmp_path) -> Iterator[static_http.Site]:
    """The listing and its archive on 127.0.0.1; the cache in tmp_path."""
    with static_http.serve({}) as served:
        latest = {
            "status": "active",
            "schemaVersion": "v6.1.10",
            "built": "2026-05-01T03:21:47Z",
            "path": fakes.NAME,
            "checksum": fakes.pin_of("x").split("?checksum=")[1],
        }
        served.bodies["/databases/v6/latest.json"] = json.dumps(latest).encode()
        served.bodies[f"/databases/v6/{fakes.NAME}"] = fakes.ARCHIVE
        monkeypatch.setenv(vulndb.LISTING_ENV, f"{served.url}/databases/v6/latest.json")
        monkeypatch.setenv(vulndb.CACHE_ENV, str(tmp_path / "cache"))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        yield served


def archive_pin(site: static_http.Site) -> Pin:
    return vulndb.parse_pin(fakes.pin_of(f"{site.url}/databases/v6/{fakes.NAME}"))


# --- the pin ---------------------------------------------------------------------------


def test_a_pin_is_grypes_url_with_its_checksum() -> None:
    pin = vulndb.parse_pin(f"{URL}?checksum=sha256:{HEX}")
    assert pin == Pin(URL, f"sha256:{HEX}")
    assert (str(pin), pin.hex) == (f"{URL}?checksum=sha256:{HEX}", HEX)


@pytest.mark.parametrize(
    "text",
    [
        URL,
        f"{URL}?checksum={HEX}",
        f"{URL}?checksum=sha256:{HEX[:-1]}",
        f"{URL}?checksum=sha256:{'A' * 64}",
        f"{URL}?checksum=sha256:{HEX}&x=1",
        f"{URL}#frag?checksum=sha256:{HEX}",
        f"file:///srv/db.tar.zst?checksum=sha256:{HEX}",
        f"https://host/a b.tar.zst?checksum=sha256:{HEX}",
        f"{URL}?checksum=sha256:{HEX}\n",
        "",
    ],
    ids=[
        "no-checksum",
        "no-algorithm",
        "short",
        "uppercase",
        "more-query",
        "fragment",
        "file",
        "space",
        "newline",
        "empty",
    ],
)
def test_what_is_not_a_pin_is_one_line(text) -> None:
    with pytest.raises(VulnDbError) as caught:
        vulndb.parse_pin(text)
    assert str(caught.value).endswith(" is not URL?checksum=sha256:<64 hex>")
    assert str(caught.value).startswith("vulndb: ") and "\n" not in str(caught.value)


# --- the listing ---------------------------------------------------------------------------


def test_latest_is_the_archive_the_listing_names(site) -> None:
    pin = vulndb.latest()
    assert pin == archive_pin(site)  # its path is relative to the listing
    assert site.asked == ["/databases/v6/latest.json"]


def test_the_listing_defaults_to_grypes_own(monkeypatch) -> None:
    monkeypatch.delenv(vulndb.LISTING_ENV, raising=False)
    assert vulndb.listing_url() == "https://grype.anchore.io/databases/v6/latest.json"


@pytest.mark.parametrize(
    "body, why",
    [
        (None, "HTTP 404"),
        (b"<html>maintenance</html>", "JSONDecodeError"),
        (b'{"path": "x.tar.zst"}', "KeyError"),
        (b"[]", "TypeError"),
    ],
    ids=["missing", "not-json", "no-checksum", "not-a-mapping"],
)
def test_a_listing_that_cannot_be_read_is_one_line(site, body, why) -> None:
    listing = f"{site.url}/databases/v6/latest.json"
    if body is None:
        del site.bodies["/databases/v6/latest.json"]
    else:
        site.bodies["/databases/v6/latest.json"] = body
    with pytest.raises(VulnDbError) as caught:
        vulndb.latest()
    assert str(caught.value) == f"vulndb: cannot read the listing {listing} ({why})"


def test_a_listing_naming_a_bad_checksum_is_refused(site) -> None:
    bad = {"path": fakes.NAME, "checksum": "md5:abc"}
    site.bodies["/databases/v6/latest.json"] = json.dumps(bad).encode()
    with pytest.raises(VulnDbError, match=r"is not URL\?checksum=sha256:<64 hex>$"):
        vulndb.latest()


# --- download and import, once per checksum ---------------------------------------------------


def grype_runner(**importer: object) -> FakeRunner:
    return FakeRunner(out=io.StringIO(), outputs={"grype db import": fakes.importer(**importer)})


def test_installed_downloads_checks_and_imports_once(site, tmp_path) -> None:
    pin = archive_pin(site)
    runner = grype_runner()
    db = vulndb.installed(runner, GRYPE, pin)
    cache = tmp_path / "cache"
    assert db == cache / "db" / pin.hex
    assert (db / "6" / "vulnerability.db").is_file()
    kept = cache / "archives" / f"{pin.hex}.tar.zst"
    assert kept.read_bytes() == fakes.ARCHIVE  # kept: CI caches it
    (call,) = runner.containers
    assert call["image"] == GRYPE
    assert call["command"] == ["db", "import", f"/in/{pin.hex}.tar.zst"]
    assert call["volumes"][str(cache / "archives")] == {"bind": "/in", "mode": "ro"}
    (staging,) = [h for h, b in call["volumes"].items() if b["bind"] == "/db"]
    assert Path(staging).parent == cache / "db" and not Path(staging).exists()  # renamed
    assert (call["network"], call["env"]) == ("none", vulndb.ENV)
    assert call["env"]["GRYPE_DB_AUTO_UPDATE"] == "false"  # the pin decides, never grype
    assert call["user"] == f"{os.getuid()}:{os.getgid()}"  # files the next run may delete
    assert runner.out.getvalue() == f"[vulndb] downloading {pin.url}\n"
    assert sorted(p.name for p in (cache / "db").iterdir()) == [pin.hex]  # no staging left
    # The next run (or the next cell) finds it: nothing fetched, nothing run.
    again = grype_runner()
    assert vulndb.installed(again, GRYPE, pin) == db
    assert again.containers == [] and again.out.getvalue() == ""
    assert site.asked == [f"/databases/v6/{fakes.NAME}"]


def test_an_archive_that_is_not_the_pinned_one_is_refused(site, tmp_path) -> None:
    pin = Pin(archive_pin(site).url, "sha256:" + "0" * 64)
    runner = grype_runner()
    with pytest.raises(VulnDbError) as caught:
        vulndb.installed(runner, GRYPE, pin)
    got = archive_pin(site).hex[:12]
    assert str(caught.value) == (
        f"vulndb: {pin.url} is not the pinned archive (sha256 {got}..., pinned 000000000000...)"
    )
    assert runner.containers == []  # never handed to grype
    assert list((tmp_path / "cache" / "archives").iterdir()) == []  # nor kept


def test_a_cached_archive_is_checked_on_every_use(site, tmp_path) -> None:
    # A restored CI cache with a damaged archive: fetched again, not imported as it is.
    pin = archive_pin(site)
    kept = tmp_path / "cache" / "archives" / f"{pin.hex}.tar.zst"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"damaged")
    vulndb.installed(grype_runner(), GRYPE, pin)
    assert kept.read_bytes() == fakes.ARCHIVE
    assert site.asked == [f"/databases/v6/{fakes.NAME}"]


def test_a_missing_archive_is_one_line(site) -> None:
    pin = vulndb.parse_pin(f"{site.url}/databases/v6/gone.tar.zst?checksum=sha256:{HEX}")
    with pytest.raises(VulnDbError) as caught:
        vulndb.installed(grype_runner(), GRYPE, pin)
    assert str(caught.value) == f"vulndb: cannot download {pin.url} (HTTP 404)"


def test_a_failed_import_leaves_no_database_behind(site, tmp_path) -> None:
    pin = archive_pin(site)
    runner = FakeRunner(
        out=io.StringIO(),
        outputs={"grype db import": StepError("vulndb", "vulndb", "grype db import exited 1")},
    )
    with pytest.raises(VulnDbError) as caught:
        vulndb.installed(runner, GRYPE, pin)
    assert str(caught.value) == "vulndb: grype db import exited 1"
    assert list((tmp_path / "cache" / "db").iterdir()) == []
    # The next run imports the archive it kept: no second download.
    assert vulndb.installed(grype_runner(), GRYPE, pin) == tmp_path / "cache" / "db" / pin.hex
    assert site.asked == [f"/databases/v6/{fakes.NAME}"]


def test_an_import_that_writes_no_database_is_refused(site, tmp_path) -> None:
    pin = archive_pin(site)
    with pytest.raises(VulnDbError) as caught:
        vulndb.installed(grype_runner(writes=False), GRYPE, pin)
    assert str(caught.value) == (
        f"vulndb: grype imported {pin.hex}.tar.zst but wrote no 6/vulnerability.db"
    )
    assert list((tmp_path / "cache" / "db").iterdir()) == []


def test_the_cache_defaults_to_the_users_cache(monkeypatch) -> None:
    monkeypatch.delenv(vulndb.CACHE_ENV, raising=False)
    assert vulndb.cache_root() == Path.home() / ".cache" / "kairos-distro" / "vulndb"


# --- the scan ------------------------------------------------------------------------------


def test_scan_reads_the_sbom_against_the_database_only(tmp_path) -> None:
    sbom = tmp_path / "artifacts" / "amd64-generic" / "kairos-x.cdx.json"
    runner = FakeRunner(out=io.StringIO(), outputs={"grype": b'{"matches": []}'})
    got = vulndb.scan(runner, "amd64-generic", GRYPE, tmp_path / "db", sbom)
    assert got == b'{"matches": []}'
    (call,) = runner.containers
    assert call == {
        "cell": "amd64-generic",
        "step": "scan",
        "image": GRYPE,
        "command": ["sbom:/in/kairos-x.cdx.json", "--output", "json"],
        "volumes": {
            str(tmp_path / "db"): {"bind": "/db", "mode": "ro"},
            str(sbom.parent): {"bind": "/in", "mode": "ro"},
        },
        "label": "grype",
        "network": "none",  # no database update, no version check: offline
        "privileged": False,
        "user": f"{os.getuid()}:{os.getgid()}",
        "env": vulndb.ENV,
        "capture": True,
    }
    assert vulndb.ENV == {
        "GRYPE_DB_CACHE_DIR": "/db",
        "GRYPE_DB_AUTO_UPDATE": "false",
        "GRYPE_DB_VALIDATE_AGE": "false",
        "GRYPE_CHECK_FOR_APP_UPDATE": "false",
    }

"""grype and its database: a pinned input, fetched once, scanned against offline.

The database is pinned like the base image: release.yaml's `vulndb` is
`URL?checksum=sha256:...`, grype's own form for a checked download, and
`invoke bump vulndb` moves it to the newest archive grype's listing names
(latest.json; GRYPE_DB_UPDATE_URL points elsewhere, as it does for grype). An
empty pin follows the listing at run time, and the reports say so.

An archive is downloaded once per checksum into the cache (KAIROS_VULNDB_CACHE,
default ~/.cache/kairos-distro/vulndb; CI caches its archives/), checked
against the pin on every use, imported by grype itself (`grype db import`)
once, and mounted read-only into every scan. Scans never update and skip
grype's own age check: the pin says which database is current, and every
report shows its age.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlunsplit

from .hosts import redact, split, url_host
from .registry import sha256_file
from .runner import Runner, StepError
from .words import clip

GRYPE_IMAGE = "anchore/grype:v0.121.2"  # release.yaml's `grype:` when it names none
LISTING = "https://grype.anchore.io/databases/v6/latest.json"
LISTING_ENV = "GRYPE_DB_UPDATE_URL"
CACHE_ENV = "KAIROS_VULNDB_CACHE"
PIN = re.compile(r"^https?://[^\s?#]+\?checksum=sha256:[0-9a-f]{64}\Z")
DB_MOUNT, IN_MOUNT = "/db", "/in"
ENV = {
    "GRYPE_DB_CACHE_DIR": DB_MOUNT,
    "GRYPE_DB_AUTO_UPDATE": "false",
    "GRYPE_DB_VALIDATE_AGE": "false",  # the report shows the age; max_age judges it
    "GRYPE_CHECK_FOR_APP_UPDATE": "false",
}
SCHEMA_DIR = "6"  # grype keeps a v6 database in <cache>/6/
DB_FILE = "vulnerability.db"


class VulnDbError(RuntimeError):
    """The database cannot be had; str() is one line naming the URL or file."""


@dataclass(frozen=True)
class Pin:
    url: str  # the archive, without its checksum
    checksum: str  # sha256:<hex>

    def __str__(self) -> str:
        return f"{self.url}?checksum={self.checksum}"

    @property
    def hex(self) -> str:
        return self.checksum.removeprefix("sha256:")


def parse_pin(text: str) -> Pin:
    if not PIN.match(text):
        raise VulnDbError(f"vulndb: {clip(text)} is not URL?checksum=sha256:<64 hex>")
    url, _, checksum = text.partition("?checksum=")
    return Pin(url, checksum)


def listing_url() -> str:
    return os.environ.get(LISTING_ENV) or LISTING


def latest(listing: str = "") -> Pin:
    """The archive grype's listing names now (its `path` is relative to the listing)."""
    import requests

    listing = listing or listing_url()
    try:
        resp = requests.get(listing, timeout=60)
        resp.raise_for_status()
        doc = resp.json()
        path, checksum = str(doc["path"]), str(doc["checksum"])
    except (requests.RequestException, ValueError, KeyError, TypeError) as err:
        raise VulnDbError(
            f"vulndb: cannot read the listing {redact(listing)} ({_why(err)})"
        ) from None
    archive = split(urljoin(listing, path))  # the pin goes into release.yaml: no login in it
    bare = urlunsplit(archive._replace(netloc=url_host(archive.geturl()), query="", fragment=""))
    return parse_pin(f"{bare}?checksum={checksum}")


def _why(err: Exception) -> str:
    """An HTTP error's status; any other failure's kind (its text may carry the URL's login)."""
    response = getattr(err, "response", None)
    return f"HTTP {response.status_code}" if response is not None else type(err).__name__


def cache_root() -> Path:
    default = Path.home() / ".cache" / "kairos-distro" / "vulndb"
    return Path(os.environ.get(CACHE_ENV) or default)


def _download(pin: Pin, dest: Path) -> None:
    """The archive into dest, refused unless its bytes match the pin."""
    import requests

    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, requests.get(pin.url, stream=True, timeout=60) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_content(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != pin.hex:
            got = f"sha256 {digest.hexdigest()[:12]}..., pinned {pin.hex[:12]}..."
            raise VulnDbError(f"vulndb: {redact(pin.url)} is not the pinned archive ({got})")
        os.replace(tmp, dest)
    except requests.RequestException as err:
        raise VulnDbError(f"vulndb: cannot download {redact(pin.url)} ({_why(err)})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def archive(runner: Runner, pin: Pin) -> Path:
    """The pinned archive in the cache, checked on every use (CI restores the cache)."""
    path = cache_root() / "archives" / f"{pin.hex}.tar.zst"
    if path.is_file() and sha256_file(path) == pin.checksum:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    runner.say("vulndb", f"downloading {redact(pin.url)}")
    _download(pin, path)
    return path


def installed(runner: Runner, grype: str, pin: Pin) -> Path:
    """The imported database of `pin` (a directory grype reads as its cache), made once."""
    home = cache_root() / "db" / pin.hex
    if (home / SCHEMA_DIR / DB_FILE).is_file():
        return home
    source = archive(runner, pin)
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=home.parent, prefix=".import-"))
    try:
        runner.container(
            "vulndb",
            "vulndb",
            grype,
            ["db", "import", f"{IN_MOUNT}/{source.name}"],
            {
                str(source.parent): {"bind": IN_MOUNT, "mode": "ro"},
                str(staging): {"bind": DB_MOUNT, "mode": "rw"},
            },
            label="grype db import",
            network="none",
            env=ENV,
            user=f"{os.getuid()}:{os.getgid()}",
        )
        if not (staging / SCHEMA_DIR / DB_FILE).is_file():
            why = f"grype imported {source.name} but wrote no {SCHEMA_DIR}/{DB_FILE}"
            raise VulnDbError(f"vulndb: {why}")
        staging.rename(home)
    except StepError as err:
        raise VulnDbError(f"vulndb: {err.reason}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


def scan(runner: Runner, cell: str, grype: str, database: Path, sbom: Path) -> bytes:
    """grype's JSON report of one SBOM, against the imported database only."""
    return runner.container(
        cell,
        "scan",
        grype,
        [f"sbom:{IN_MOUNT}/{sbom.name}", "--output", "json"],
        {
            str(database): {"bind": DB_MOUNT, "mode": "ro"},
            str(sbom.parent): {"bind": IN_MOUNT, "mode": "ro"},
        },
        label="grype",
        network="none",
        env=ENV,
        user=f"{os.getuid()}:{os.getgid()}",
        capture=True,
    )

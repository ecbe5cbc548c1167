"""Real package repositories on 127.0.0.1, built with the distros' own tools.

`AptRepo` is a flat apt repository (`deb [trusted=yes] URL ./`) of tiny .debs
made by dpkg-deb and indexed by apt-ftparchive (apt-utils); `RpmRepo` is a
yum/zypper repository of tiny rpms made by rpmbuild (Debian's rpm) and
indexed by createrepo_c (createrepo-c). Both are served by a thread running
http.server. `stop()` closes the port (clients get "connection refused":
the mirror went away) and `start()` serves again on the same port; `status`
set to e.g. 503 makes a running server answer every request with that code
(a mirror that is up but broken).

    with AptRepo(tmp_path / "apt") as repo:
        repo.add("hello", "1.0-1")
        ... sources.list gets repo.sources_line ...
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, repo: _Served, **kw: Any) -> None:
        self.repo = repo
        super().__init__(*args, directory=str(repo.root), **kw)

    def send_head(self) -> Any:
        if self.repo.status != 200:
            self.send_error(self.repo.status)
            return None
        return super().send_head()

    def log_message(self, *args: Any) -> None:  # clients' requests are not test output
        pass


class _Served:
    """A directory served over HTTP on 127.0.0.1; the port stays across stop/start."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = 0  # chosen by the first start()
        self.status = 200
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        handler = functools.partial(_Handler, repo=self)
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket: connections are refused until start()."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run(*argv: str, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


class AptRepo(_Served):
    """A flat, unsigned apt repository; every version added stays listed."""

    @property
    def sources_line(self) -> str:
        return f"deb [trusted=yes] {self.url}/ ./"

    def deb_path(self, name: str, version: str, arch: str = "amd64") -> Path:
        bare = version.split(":", 1)[-1]  # dpkg-deb names files without the epoch
        return self.root / f"{name}_{bare}_{arch}.deb"

    def add(self, name: str, version: str, arch: str = "amd64", depends: str = "") -> Path:
        """Build NAME VERSION (one file under /usr/share/doc/NAME) and re-index."""
        with tempfile.TemporaryDirectory(prefix="kdt-deb-") as tmp:
            tree = Path(tmp)
            (tree / "DEBIAN").mkdir()
            control = (
                f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
                "Maintainer: kdt tests <tests@example.invalid>\n"
                + (f"Depends: {depends}\n" if depends else "")
                + f"Description: {name} for the tests\n"
            )
            (tree / "DEBIAN" / "control").write_text(control)
            doc = tree / "usr" / "share" / "doc" / name
            doc.mkdir(parents=True)
            (doc / "README").write_text(f"{name} {version}\n")
            deb = self.deb_path(name, version, arch)
            _run("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb))
        self._index()
        return deb

    def _index(self) -> None:
        # apt-ftparchive lists every .deb (dpkg-scanpackages would keep one per name).
        packages = _run("apt-ftparchive", "packages", ".", cwd=self.root)
        (self.root / "Packages").write_text(packages)
        (self.root / "Release").unlink(missing_ok=True)
        release = _run("apt-ftparchive", "release", ".", cwd=self.root)
        (self.root / "Release").write_text(release)


SPEC = """\
Name: {name}
Version: {version}
Release: {release}
{epoch}Summary: {name} for the tests
License: MIT
{buildarch}%global debug_package %{{nil}}
%description
{name} for the tests.
%install
mkdir -p %{{buildroot}}/usr/share/doc/{name}
echo {name} > %{{buildroot}}/usr/share/doc/{name}/README
%files
/usr/share/doc/{name}/README
"""


class RpmRepo(_Served):
    """An unsigned rpm-md repository (dnf's and zypper's format)."""

    def repo_file(self, name: str = "kdt-test") -> str:
        """A .repo file (dnf's /etc/yum.repos.d, zypper's /etc/zypp/repos.d) for it."""
        return (
            f"[{name}]\nname={name}\nbaseurl={self.url}/\nenabled=1\ngpgcheck=0\n"
            "repo_gpgcheck=0\nautorefresh=1\nmetadata_expire=0\n"
        )

    def add(
        self, name: str, version: str, release: str = "1", arch: str = "noarch", epoch: str = ""
    ) -> Path:
        """Build NAME-[EPOCH:]VERSION-RELEASE.ARCH and re-index."""
        with tempfile.TemporaryDirectory(prefix="kdt-rpm-") as tmp:
            top = Path(tmp)
            spec = top / f"{name}.spec"
            spec.write_text(
                SPEC.format(
                    name=name,
                    version=version,
                    release=release,
                    buildarch="BuildArch: noarch\n" if arch == "noarch" else "",
                    epoch=f"Epoch: {epoch}\n" if epoch else "",
                )
            )
            cross = [] if arch == "noarch" else ["--target", arch]  # i686 too, on x86_64
            _run(
                "rpmbuild", "-bb", "--quiet", *cross, "--define", f"_topdir {top}",
                "--define", "_build_id_links none", str(spec),
            )  # fmt: skip
            built = next((top / "RPMS").rglob("*.rpm"))
            target = self.root / built.name
            shutil.copy(built, target)
        _run("createrepo_c", "--quiet", "--update", str(self.root))
        return target

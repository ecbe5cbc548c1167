"""The freshness probe: which installed packages have a newer candidate in the mirrors.

A rebuild runs the image's own package manager with refresh + upgrade
(kairos-init's install stage, through yip), so a newer candidate now is what
a rebuild would change. `command()` is the argv run in a throwaway container
of the pinned base image: one constant POSIX sh script that finds the package
manager (apt-get, dnf, zypper, apk), refreshes its metadata, and asks for the
candidate version of each package name given as its positional arguments.
`parse()` reads what it printed (each tool's own words through managers.py);
`updates()` compares the candidates with the packages of the published SBOM.
Pure: no effects here.

A mirror that cannot be reached, wholly or partly, is a ProbeError, never
"no updates": apt-get update and apk update exit 0 with failed fetches (and
dnf does with skip_if_unavailable), so their words are read, not only the
exit codes. The script prints marker lines (MARK) around each tool's output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import versions
from .managers import MARK, QUERY, REFRESH, Candidate, ProbeError, candidates, last, refresh_error
from .sbom import Package
from .words import clip

__all__ = ["Answer", "Candidate", "ProbeError", "Update", "command", "names", "parse", "updates"]


# Names arrive as "$@", never inside the script. The first manager found wins
# (a distro ships one). A failed refresh skips the query: its cache would be old.
SCRIPT = r"""export LC_ALL=C
mark() { printf 'kairos-probe: %s\n' "$*"; }
names=$#
refresh() { "$@" 2>&1; code=$?; mark refresh "$code"; [ "$code" -eq 0 ] && [ "$names" -gt 0 ]; }
query() { "$@" 2>&1; mark query $?; }
if command -v apt-get >/dev/null 2>&1; then
  mark manager apt
  refresh apt-get update && query apt-cache policy -- "$@"
elif command -v dnf >/dev/null 2>&1 || command -v dnf5 >/dev/null 2>&1; then
  dnf=dnf; command -v dnf >/dev/null 2>&1 || dnf=dnf5
  mark manager dnf
  refresh "$dnf" -y makecache --refresh --setopt='*.skip_if_unavailable=False' &&
    query "$dnf" -q -C repoquery --available --latest-limit 1 \
      --queryformat 'kairos-probe: candidate %{name} %{evr} %{arch}\n' -- "$@"
elif command -v zypper >/dev/null 2>&1; then
  mark manager zypper
  refresh zypper --non-interactive --gpg-auto-import-keys refresh &&
    query zypper --non-interactive --no-refresh --xmlout search --match-exact --details \
      --type package -- "$@"
elif command -v apk >/dev/null 2>&1; then
  mark manager apk
  refresh apk update && query apk policy "$@"
else
  mark manager none
fi
true
"""

KINDS = {"apt": "deb", "dnf": "rpm", "zypper": "rpm", "apk": "apk"}  # manager -> purl type
ANY_ARCH = {"", "all", "noarch"}  # "" where the manager does not say
NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+:~@-]*")


@dataclass(frozen=True)
class Answer:
    manager: str  # "apt" | "dnf" | "zypper" | "apk" | "none"
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class Update:
    name: str
    arch: str
    installed: str
    candidate: str

    def __str__(self) -> str:
        return f"{self.name} {self.installed} -> {self.candidate}"


def command(names: Sequence[str]) -> list[str]:
    """The argv of the probe: the constant script, then the package names as "$@"."""
    for name in names:
        if not NAME.fullmatch(name):
            raise ProbeError(f"{clip(name)} is not a package name the probe can ask for")
    return ["sh", "-c", SCRIPT, "kairos-probe", *names]


def names(installed: Sequence[Package]) -> list[str]:
    """The names to ask for: dpkg's as name:arch (apt then answers each architecture)."""
    asked = {f"{p.name}:{p.arch}" if p.manager == "deb" and p.arch else p.name for p in installed}
    return sorted(asked)


# --- the script's output ---------------------------------------------------------


@dataclass
class _Step:
    code: int | None = None  # None: its marker never came
    lines: list[str] = field(default_factory=list)


def _sections(output: str) -> tuple[str, _Step, _Step]:
    """(manager, refresh, query): each step's own lines and the exit code its marker said."""
    manager, refresh, query = "", _Step(), _Step()
    current: _Step | None = None
    for line in output.splitlines():
        if line.startswith(MARK + "manager "):
            manager, current = line.split()[-1], refresh
        elif line.startswith((MARK + "refresh ", MARK + "query ")) and current is not None:
            current.code = _code(line)
            current = query if current is refresh else None
        elif current is not None:
            current.lines.append(line)
    return manager, refresh, query


def _code(line: str) -> int:
    word = line.split()[-1]
    if not word.isdigit():
        raise ProbeError(f"the probe printed a marker without an exit code: {clip(line)}")
    return int(word)


def parse(code: int | None, output: str) -> Answer:
    """What the probe's run says: the manager and each candidate it named.

    ProbeError (one line) when it timed out (code None), when the refresh
    failed in any way, when the query failed, or when the output is not what
    the tools print.
    """
    if code is None:
        raise ProbeError("the probe did not finish in time")
    manager, refresh, query = _sections(output)
    if not manager:
        raise ProbeError(f"the probe exited {code} without naming a package manager{last(output)}")
    if manager == "none":
        return Answer("none", ())
    if manager not in KINDS:
        raise ProbeError(f"the probe named an unknown package manager {clip(manager)}")
    if refresh.code is None or code != 0:  # the script ends with `true`: killed
        step = REFRESH[manager] if refresh.code is None else QUERY[manager]
        raise ProbeError(f"{step} did not finish (exit {code}){last(output)}")
    reason = refresh_error(manager, refresh.code, "\n".join(refresh.lines))
    if reason:
        raise ProbeError(reason)
    if query.code is None:  # no names were asked for
        return Answer(manager, ())
    return Answer(manager, candidates(manager, query.code, "\n".join(query.lines)))


# --- what an upgrade would change ------------------------------------------------


def updates(installed: Sequence[Package], answer: Answer) -> list[Update]:
    """Installed packages whose best candidate of a compatible arch is newer, by name.

    Packages of another purl type than the manager's are not its to answer;
    names the repositories do not have are not updates. When the SBOM has
    packages but none of the manager's type, the probe asked the wrong
    manager: a ProbeError, not "no updates".
    """
    kind = KINDS.get(answer.manager)
    if kind is None:
        return []
    mine = [p for p in installed if p.manager == kind]
    if installed and not mine:
        have = sorted({p.manager for p in installed})
        raise ProbeError(
            f"the image's package manager is {answer.manager} ({kind} packages) "
            f"but its SBOM lists {', '.join(have)} packages"
        )
    found = []
    for package in mine:
        best = _best(kind, package, answer.candidates)
        if best and _newer(kind, package, best.version):
            found.append(Update(package.name, package.arch, package.version, best.version))
    return sorted(found, key=lambda u: (u.name, u.arch))


def _compatible(candidate: str, installed: str) -> bool:
    return candidate == installed or candidate in ANY_ARCH or installed in ANY_ARCH


def _best(kind: str, package: Package, offered: Sequence[Candidate]) -> Candidate | None:
    best = None
    for c in offered:
        fits = c.name == package.name and _compatible(c.arch, package.arch)
        if fits and (best is None or _newer(kind, package, c.version, best.version)):
            best = c
    return best


def _newer(kind: str, package: Package, version: str, than: str | None = None) -> bool:
    than = package.version if than is None else than
    try:
        return versions.newer(kind, version, than)
    except ValueError as err:
        raise ProbeError(
            f"cannot compare {package.name} versions {clip(version)} and {clip(than)}: {err}"
        ) from None

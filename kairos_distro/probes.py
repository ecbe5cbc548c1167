"""The freshness probe: which installed packages have a newer candidate in the mirrors.

A rebuild runs the image's own package manager with refresh + upgrade
(kairos-init's install stage, through yip), so a newer candidate now is what
a rebuild would change. `command()` is the argv run in a throwaway container
of the pinned base image: one constant POSIX sh script that finds the package
manager (apt-get, dnf, zypper, apk), refreshes its metadata, and asks for the
candidate version of each package name given as its positional arguments.
`parse()` reads what it printed; `updates()` compares the candidates with the
packages of the published SBOM. Pure: no effects here.

A mirror that cannot be reached, wholly or partly, is a ProbeError, never
"no updates": apt-get update and apk update exit 0 with failed fetches (and
dnf does with skip_if_unavailable), so their words are read, not only the
exit codes. The script prints marker lines (MARK) around each tool's output.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import versions
from .pkgdb import Package
from .words import clip

MARK = "kairos-probe: "
REASON_MAX = 240  # characters of a tool's own words quoted in an error

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
REFRESH = {"apt": "apt-get update", "dnf": "dnf makecache", "zypper": "zypper refresh"}
REFRESH["apk"] = "apk update"
QUERY = {"apt": "apt-cache policy", "dnf": "dnf repoquery", "zypper": "zypper search"}
QUERY["apk"] = "apk policy"
ANY_ARCH = {"", "all", "noarch"}  # "" where the manager does not say
NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+:~@-]*")


class ProbeError(RuntimeError):
    """The probe cannot say what is fresh; str() is one line naming what failed."""


@dataclass(frozen=True)
class Candidate:
    name: str
    version: str
    arch: str  # "" when the manager does not say


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
        raise ProbeError(f"the probe exited {code} without naming a package manager{_last(output)}")
    if manager == "none":
        return Answer("none", ())
    if manager not in KINDS:
        raise ProbeError(f"the probe named an unknown package manager {clip(manager)}")
    if refresh.code is None or code != 0:  # the script ends with `true`: killed
        step = REFRESH[manager] if refresh.code is None else QUERY[manager]
        raise ProbeError(f"{step} did not finish (exit {code}){_last(output)}")
    reason = refresh_error(manager, refresh.code, "\n".join(refresh.lines))
    if reason:
        raise ProbeError(reason)
    if query.code is None:  # no names were asked for
        return Answer(manager, ())
    return Answer(manager, candidates(manager, query.code, "\n".join(query.lines)))


def _last(text: str) -> str:
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return f": {clip(lines[-1], REASON_MAX)}" if lines else ""


def _words(text: str) -> str:
    """A tool's message on one line, runs of blanks as one."""
    return clip(" ".join(text.split()), REASON_MAX)


# --- refresh: did every repository answer? ---------------------------------------


def refresh_error(manager: str, code: int, text: str) -> str | None:
    """Why the refresh (its exit code and output) failed, in one line; None when it did not."""
    lines = text.splitlines()
    reason = _REFRESH_CHECKS[manager](lines)
    if reason:
        return f"{REFRESH[manager]} {reason}"
    if code != 0:
        return f"{REFRESH[manager]} exited {code}{_last(text)}"
    return None


def _apt_refresh(lines: list[str]) -> str | None:
    # "Err:N URI SUITE FILE" then its reason, indented; apt-get update exits 0 after
    # most failed fetches ("W: Failed to fetch", old lists used instead).
    for i, line in enumerate(lines):
        if line.startswith("Err:"):
            target = line.partition(" ")[2].strip()
            after = lines[i + 1] if i + 1 < len(lines) else ""
            why = f" ({_words(after)})" if after.startswith(" ") and after.strip() else ""
            return f"cannot reach {target}{why}"
    # "Failed to fetch URL  reason" names the URL first: the best of apt's summaries.
    failed = ("E: ", "W: GPG error", "W: An error occurred during the signature verification")
    failed += ("W: Some index files failed",)
    fetch = [x for x in lines if x.startswith(("E: Failed to fetch", "W: Failed to fetch"))]
    hit = next(iter(fetch), None) or next((x for x in lines if x.startswith(failed)), None)
    return f"failed: {_words(hit[3:])}" if hit else None


def _dnf_refresh(lines: list[str]) -> str | None:
    for i, line in enumerate(lines):
        # dnf4: "Errors during downloading metadata for repository 'ID':" then "  - reason"
        found = re.match(r"Errors during downloading metadata for repository '(.+)':", line)
        if found:
            after = lines[i + 1].strip().removeprefix("- ") if i + 1 < len(lines) else ""
            why = f" ({_words(after)})" if after else ""
            return f"cannot reach repository '{found[1]}'{why}"
        # dnf5: '>>> Curl error ...' lines, then 'Failed to download metadata (baseurl:
        # "URL") for repository "ID": ...'
        found = re.match(r'Failed to download metadata \((.*)\) for repository "(.+?)"', line)
        if found:
            curl = [x[4:] for x in lines[:i] if x.startswith(">>> ") and "Usable URL" not in x]
            why = f"; {_words(curl[-1])}" if curl else ""
            return f"cannot reach repository '{found[2]}' ({_words(found[1])}{why})"
    # dnf5 with skip_if_unavailable: ">>> Curl error ..." ">>> Usable URL not found", exit 0.
    failed = ("Error: ", "Ignoring repositories:", ">>> Usable URL not found", ">>> GPG")
    hit = next((x for x in lines if x.startswith(failed)), None)
    if hit and hit.startswith(">>> Usable"):
        curl = [x for x in lines if x.startswith(">>> Curl error")]
        hit = curl[-1] if curl else hit
    return f"failed: {_words(hit.removeprefix('>>> '))}" if hit else None


def _zypper_refresh(lines: list[str]) -> str | None:
    # "Repository 'ID' is invalid." "[ID|URL] Valid metadata not found ..." "History:"
    # " - ..." (and curl's "Error message: ..."); zypper exits 4 then.
    for i, line in enumerate(lines):
        found = re.match(r"Repository '(.+)' is invalid\.", line)
        if found:
            rest = lines[i + 1 :]
            url = next((m[1] for x in rest if (m := re.match(r"\[.*?\|(.*)\] ", x))), "")
            block = rest[: next((j for j, x in enumerate(rest) if not x.strip()), len(rest))]
            said = [x for x in block if x.startswith("Error message:")] or [
                x[3:] for x in block if x.startswith(" - ")
            ]
            where = f" ({url})" if url else ""
            why = f": {_words(said[-1].removeprefix('Error message: '))}" if said else ""
            return f"cannot reach repository '{found[1]}'{where}{why}"
    failed = ("Some of the repositories have not been refreshed", "Could not refresh")
    hit = next((x for x in lines if x.startswith(failed)), None)
    return f"failed: {_words(hit)}" if hit else None


def _apk_refresh(lines: list[str]) -> str | None:
    # A repository apk could not fetch is a WARNING (2.12+: "updating and opening
    # URL: reason") or an ERROR (older), and the summary line no longer starts
    # with "OK:" ("N unavailable, M stale; ..." or "N errors; ..."): the exit
    # code alone has read 0 after such failures.
    said = [x for x in lines if x.startswith("ERROR: ")]
    said += [x for x in lines if x.startswith("WARNING: ") and "://" in x]
    if said:
        return f"failed: {_words(said[0].partition(': ')[2])}"
    summary = next((x for x in lines if x.endswith("distinct packages available")), None)
    if summary is None:
        return "printed no summary (no line ends in 'distinct packages available')"
    return None if summary.startswith("OK:") else f"failed: {_words(summary)}"


_REFRESH_CHECKS: dict[str, Callable[[list[str]], str | None]] = {
    "apt": _apt_refresh,
    "dnf": _dnf_refresh,
    "zypper": _zypper_refresh,
    "apk": _apk_refresh,
}


# --- query: the candidates --------------------------------------------------------


def candidates(manager: str, code: int, text: str) -> tuple[Candidate, ...]:
    """The candidates the query (its exit code and output) names; ProbeError when it failed."""
    ok = (0, 104) if manager == "zypper" else (0,)  # zypper: 104 = no name matched
    if code in ok:
        return tuple(_QUERIES[manager](text.splitlines()))
    said = _zypper_error(text) if manager == "zypper" else None
    raise ProbeError(f"{QUERY[manager]} exited {code}{f': {said}' if said else _last(text)}")


def _apt_query(lines: list[str]) -> list[Candidate]:
    # "NAME:" or "NAME:ARCH:" (a foreign architecture), then "  Candidate: V" or "(none)".
    found: list[Candidate] = []
    name = arch = None
    for line in lines:
        if line.startswith("E: "):
            raise ProbeError(f"apt-cache policy failed: {_words(line[3:])}")
        if not line.strip() or line.startswith(("N: ", "W: ")):
            continue
        if not line[0].isspace():
            if not line.endswith(":"):
                raise ProbeError(f"apt-cache policy printed {clip(line)}, not a package")
            name, _, arch = line[:-1].partition(":")
        elif line.strip().startswith("Candidate:") and name:
            version = line.split(":", 1)[1].strip()
            if version != "(none)":
                found.append(Candidate(name, version, arch or ""))
    return found


def _dnf_query(lines: list[str]) -> list[Candidate]:
    found: list[Candidate] = []
    for line in lines:
        if not line.startswith(MARK + "candidate "):
            continue  # dnf's own notices (e.g. "Unable to detect release version")
        fields = line[len(MARK + "candidate ") :].split()
        if len(fields) != 3:
            raise ProbeError(f"dnf repoquery printed {clip(line)}, not name evr arch")
        if fields[2] not in ("src", "nosrc"):  # source packages are never installed
            found.append(Candidate(*fields))
    return found


SYSTEM_REPOS = {"(System Packages)", "@System"}  # zypper's name for what is installed


def _zypper_xml(text: str) -> ET.Element:
    """The <stream> of --xmlout, whatever zypper wrote around it."""
    start, end = text.find("<?xml"), text.rfind("</stream>")
    if start < 0 or end < start:
        raise ProbeError(f"zypper search printed no XML stream{_last(text)}")
    try:
        return ET.fromstring(text[start : end + len("</stream>")])
    except ET.ParseError as err:
        raise ProbeError(f"zypper search printed XML that does not parse ({err})") from None


def _zypper_error(text: str) -> str | None:
    """The first error message of the stream (a repository it could not read), if any."""
    try:
        stream = _zypper_xml(text)
    except ProbeError:
        return None
    errors = [m.text or "" for m in stream.iter("message") if m.get("type") == "error"]
    return _words(errors[0]) if errors else None


def _zypper_query(lines: list[str]) -> list[Candidate]:
    text = "\n".join(lines)
    stream = _zypper_xml(text)
    said = _zypper_error(text)
    if said:
        raise ProbeError(f"zypper search failed: {said}")
    return [
        Candidate(s.get("name", ""), s.get("edition", ""), s.get("arch", ""))
        for s in stream.iter("solvable")
        if s.get("kind") == "package" and s.get("repository") not in SYSTEM_REPOS
    ]


def _apk_query(lines: list[str]) -> list[Candidate]:
    # "NAME policy:", "  VERSION:", then sources: "    lib/apk/db/installed" (what is
    # installed), "    @tag URL" (only for packages pinned to the tag), "    URL".
    found: list[Candidate] = []
    name = version = None
    for line in lines:
        if line.startswith("ERROR: "):
            raise ProbeError(f"apk policy failed: {_words(line[7:])}")
        if not line.strip() or line.startswith("WARNING: "):
            continue
        if not line[0].isspace():
            if not line.endswith(" policy:"):
                raise ProbeError(f"apk policy printed {clip(line)}, not a package")
            name, version = line[: -len(" policy:")], None
        elif not line.startswith("    ") and line.rstrip().endswith(":"):
            version = line.strip()[:-1]
        elif name and version and _apk_source(line.strip()):
            found.append(Candidate(name, version, ""))
    return list(dict.fromkeys(found))  # a version in several repositories: once


def _apk_source(source: str) -> bool:
    """A repository `apk upgrade` takes from: not the installed database, not a tag."""
    installed = source.endswith("apk/db/installed") and "://" not in source
    return not installed and not source.startswith("@")


_QUERIES: dict[str, Callable[[list[str]], list[Candidate]]] = {
    "apt": _apt_query,
    "dnf": _dnf_query,
    "zypper": _zypper_query,
    "apk": _apk_query,
}


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

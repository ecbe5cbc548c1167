"""What each package manager prints: did its refresh reach every repository, and
which candidates does its query name.

The freshness probe (probes.py) runs apt-get, dnf, zypper or apk in a
throwaway container and hands each step's exit code and output here. A
refresh that failed in any way is a reason in one line, even when the tool
exited 0 (apt-get update and apk update do after failed fetches); the query
parsers read the tools' own formats (tests/package/probe_outputs/ says where
each recorded output came from). Pure: text in, candidates or a reason out.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from .words import clip

MARK = "kairos-probe: "  # the probe script's marker lines (probes.SCRIPT)
REASON_MAX = 240  # characters of a tool's own words quoted in an error
REFRESH = {"apt": "apt-get update", "dnf": "dnf makecache", "zypper": "zypper refresh"}
REFRESH["apk"] = "apk update"
QUERY = {"apt": "apt-cache policy", "dnf": "dnf repoquery", "zypper": "zypper search"}
QUERY["apk"] = "apk policy"


class ProbeError(RuntimeError):
    """The probe cannot say what is fresh; str() is one line naming what failed."""


@dataclass(frozen=True)
class Candidate:
    name: str
    version: str
    arch: str  # "" when the manager does not say


def last(text: str) -> str:
    """': LAST LINE' of a tool's output, for a message; '' when it printed nothing."""
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
        return f"{REFRESH[manager]} exited {code}{last(text)}"
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
    raise ProbeError(f"{QUERY[manager]} exited {code}{f': {said}' if said else last(text)}")


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
        raise ProbeError(f"zypper search printed no XML stream{last(text)}")
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

"""Vulnerability policy: release.yaml's `vulnerabilities`, and its verdict on a report.

A cell's publish fails when its report holds a finding at or above `fail_on`
(default: off) that no allow-list entry covers. Every entry carries its
reason and an expiry date; an expired entry fails the cell in one line, so an
exception is looked at again rather than forgotten. Pure: config and reports
in, verdicts out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from .fields import ConfigError
from .fields import no_unknown as _no_unknown
from .fields import text as _text
from .vulns import SEVERITIES, Finding, Report
from .words import show, suggest

FIELDS = ("fail_on", "max_age", "allow")
ALLOW_FIELDS = ("id", "reason", "expires")
MAX_AGE = 7  # days: a report from an older database says so loudly
# Ranked for fail_on: negligible < low < ... < critical; unknown is never above a line.
RANKED = tuple(reversed(SEVERITIES[:-1]))
VULN_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9][A-Za-z0-9:._-]*\Z")  # CVE-, GHSA-, ...


@dataclass(frozen=True)
class Allowed:
    id: str
    reason: str
    expires: date


@dataclass(frozen=True)
class Policy:
    fail_on: str = ""  # "" is off; else one of RANKED
    max_age: int = MAX_AGE
    allow: tuple[Allowed, ...] = ()


def parse(raw: Any, path: Path) -> Policy:
    """release.yaml's `vulnerabilities` mapping (absent: the defaults)."""
    where = "vulnerabilities"
    if raw is None:
        return Policy()
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping (fail_on, max_age, allow)", field=where, file=path)
    _no_unknown(raw, FIELDS, where, path)
    fail_on = (_text(raw, "fail_on", path, where, required=False) or "").lower()
    if fail_on and fail_on not in RANKED:
        why = f"{show(fail_on)} is not one of {', '.join(RANKED)} (or empty: off)"
        raise ConfigError(why + suggest(fail_on, RANKED), field=f"{where}.fail_on", file=path)
    return Policy(fail_on, _max_age(raw.get("max_age", MAX_AGE), path), _allow(raw, path))


def _max_age(raw: Any, path: Path) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        why = f"{show(raw)} is not a number of days (1 or more)"
        raise ConfigError(why, field="vulnerabilities.max_age", file=path)
    return raw


def _allow(raw: dict[str, Any], path: Path) -> tuple[Allowed, ...]:
    items = raw.get("allow") or []
    if not isinstance(items, list):
        raise ConfigError(
            "expected a list of {id, reason, expires}", field="vulnerabilities.allow", file=path
        )
    found = []
    for i, item in enumerate(items):
        at = f"vulnerabilities.allow[{i}]"
        if not isinstance(item, dict):
            raise ConfigError("expected a mapping with id, reason and expires", field=at, file=path)
        _no_unknown(item, ALLOW_FIELDS, at, path)
        ident = _text(item, "id", path, at)
        if not VULN_ID.match(ident):
            raise ConfigError(
                f"{show(ident)} is not a vulnerability ID such as CVE-2026-1234",
                field=f"{at}.id",
                file=path,
            )
        found.append(
            Allowed(ident, _text(item, "reason", path, at), _date(item.get("expires"), at, path))
        )
    return tuple(found)


def _date(raw: Any, at: str, path: Path) -> date:
    if isinstance(raw, date):  # YAML reads 2027-01-31 as a date
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        why = f"{show(raw)} is not a date such as 2027-01-31 (every exception expires)"
        raise ConfigError(why, field=f"{at}.expires", file=path) from None


# --- the verdict ----------------------------------------------------------------


def expired(policy: Policy, today: date) -> list[str]:
    """One line per allow-list entry past its date."""
    return [
        f"vulnerabilities.allow[{i}]: {a.id} expired on {a.expires.isoformat()} "
        f"(reason was: {a.reason}); remove it or give a new date"
        for i, a in enumerate(policy.allow)
        if a.expires < today
    ]


def at_or_above(fail_on: str, severity: str) -> bool:
    if not fail_on or severity not in RANKED:
        return False
    return RANKED.index(severity) >= RANKED.index(fail_on)


def blocking(policy: Policy, report: Report) -> list[Finding]:
    """Findings at or above fail_on that no allow-list entry covers."""
    allowed = {a.id for a in policy.allow}
    return [
        f
        for f in report.findings
        if at_or_above(policy.fail_on, f.severity) and f.id not in allowed
    ]


def verdict(policy: Policy, report: Report, today: date) -> str:
    """Why the policy refuses this report, in one line; "" when it passes."""
    stale = expired(policy, today)
    if stale:
        return stale[0] + (f" (and {len(stale) - 1} more)" if len(stale) > 1 else "")
    found = blocking(policy, report)
    if not found:
        return ""
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    return f"{found[0].line()}{more}: at or above fail_on: {policy.fail_on}"

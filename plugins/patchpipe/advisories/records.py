"""The one record shape every advisory source produces, and the enrichment records (KEV, EPSS).

A source parses its feed into Advisory records; the store keeps them indexed by
(ecosystem, release, package). Versions stay strings: they are compared with the ecosystem's own
rules (``patchpipe.packages.versions``) only when matched against installed packages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum


class Status(str, Enum):
    FIXED = "fixed"  # a fixed version exists
    AFFECTED = "affected"  # affected, no fix yet
    WILL_NOT_FIX = "will_not_fix"  # the distro decided not to fix (e.g. tracker no-dsa/ignored)
    NOT_AFFECTED = "not_affected"  # e.g. tracker fixed_version "0", secdb key "0"
    UNDETERMINED = "undetermined"


class Severity(str, Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NEGLIGIBLE = "negligible"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class VersionEvent:
    """One OSV range event: exactly one of introduced / fixed / last_affected."""

    kind: str  # "introduced" | "fixed" | "last_affected"
    version: str


@dataclass(frozen=True)
class AffectedPackage:
    ecosystem: str  # "debian", "alpine", "ubuntu"
    release: str  # "bookworm", "v3.20", ...
    package: str  # source package (Debian), origin package (Alpine)
    status: Status
    fixed_version: str | None = None
    events: tuple[VersionEvent, ...] = ()  # ranges from OSV; empty when the source gives a fixed version only
    severity: Severity = Severity.UNKNOWN  # the distro's own rating (tracker urgency), when given


@dataclass(frozen=True)
class Advisory:
    id: str  # CVE-..., DSA-..., DLA-..., ALPINE-CVE-..., GHSA-...
    source: str  # the source module's name, e.g. "osv", "debian_tracker"
    aliases: tuple[str, ...] = ()
    # Ids this advisory fixes or derives from (OSV ``upstream``: the CVEs of a DSA, DLA or ALPINE
    # record). Not the same advisory, but linked in the store, so looking up a CVE finds them.
    upstream: tuple[str, ...] = ()
    summary: str = ""
    severity: Severity = Severity.UNKNOWN
    cvss_score: float | None = None
    published: datetime | None = None
    modified: datetime | None = None
    affected: tuple[AffectedPackage, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class KevEntry:
    cve: str
    date_added: date
    due_date: date | None
    vendor: str = ""
    product: str = ""
    known_ransomware: bool = False


@dataclass(frozen=True)
class EpssScore:
    cve: str
    score: float
    percentile: float
    scored_on: date | None = None

"""Match an image's installed packages against the advisory store: ``match(engine, inventory) -> [Finding]``.

Which advisories apply
    The image's os-release picks the store's (ecosystem, release): ``debian`` and ``ubuntu`` use
    ``VERSION_CODENAME`` (``bookworm``, ``noble``); ``alpine`` uses ``v<major>.<minor>`` of
    ``VERSION_ID`` (3.20.3 -> ``v3.20``). Advisories name source packages, so each binary package is
    looked up by its source: dpkg's ``Source:`` (its version in parentheses when it differs from the
    binary's), apk's origin ``o:``. Versions are compared with the package manager's own rules
    (dpkg -> deb, apk -> apk, rpm -> rpm), with the installed *source* version.

What each feed entry says about the installed version
    - ``fixed`` with a fixed version: reported as ``fixed`` while installed < fixed; not reported
      once installed >= fixed.
    - entries with OSV range events (``introduced`` / ``fixed`` / ``last_affected``): the installed
      version is affected when it lies in one of the ranges (introduced <= v < fixed, or
      introduced <= v <= last_affected, or introduced <= v with no end). Outside every range it is
      not reported, whatever the entry's status; inside, it is ``fixed`` when the entry has a fixed
      version (or a ``fixed`` event above the installed version), else ``affected``.
    - ``affected`` (no fix yet) and ``will_not_fix``: reported as they are.
    - ``not_affected`` (tracker fixed_version ``0``, secdb key ``0``) and ``undetermined``: never
      reported. An undetermined entry says nothing either way; a scanner that reported it would
      report noise that no patch can clear.

Debian tracker ``open`` entries (the decision Trivy and Grype make differently)
    The tracker parser (``advisories.debian_tracker``) already decides, and this module keeps its
    decision: ``open`` with urgency ``unimportant`` (or ``end-of-life``, or ``nodsa_reason:
    ignored``) is ``will_not_fix``: Debian does not treat it as a security issue it will fix, so it
    is reported (with its negligible severity) but never as fixable. ``open`` with ``no-dsa`` but no
    such reason stays ``affected``: Debian may still fix it in a point release, so unlike Grype it
    is not written off as won't-fix, and unlike nothing it is not hidden. Trivy reports every
    ``open`` entry as affected.

Merging feeds
    One vulnerability is reported once per binary package, however many feeds name it. Entries are
    the same vulnerability when they share an id or an alias; an advisory that fixes exactly one CVE
    (OSV's ``upstream``: a DLA, an ALPINE-CVE record) is that CVE. An advisory fixing several CVEs
    (a DSA covering three) stays its own finding, with those CVEs among its aliases. The finding's
    id is its CVE when it has one. A feed never overrules another's report: when any feed reports
    the installed version as vulnerable, it is reported; ``fixed`` is the highest fixed version among
    the feeds that report it; the status is ``fixed`` if any of them has a fix, else ``affected``
    if any says so, else ``will_not_fix``; the severity is the highest given (an unrated entry with a
    CVSS score is rated by the score). KEV and EPSS are looked up by the finding's CVEs.

Repeated scans
    What a scan reads and concludes for one (source package, installed version) is kept per process
    in ``scan.index`` and used again while the store's token is unchanged (the index's doc has the
    validity rule and the memory bound), and version comparisons are remembered in a bounded LRU:
    a second scan of the same packages reads one small row set and looks its answers up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cmp_to_key, lru_cache
from typing import Any, Callable

from sqlalchemy import Engine

from patchpipe.advisories.cvss import severity_for_score
from patchpipe.advisories.records import Severity, Status, VersionEvent
from patchpipe.advisories.store import SEVERITY_RANK, AffectedEntry, AffectedMatch, affected_match, kev_and_epss
from patchpipe.errors import PatchpipeError
from patchpipe.packages.inventory import InstalledPackage, Inventory
from patchpipe.packages.os_release import OsRelease
from patchpipe.packages.versions import compare
from patchpipe.scan.findings import Finding
from patchpipe.scan.index import StoreView, store_view

__all__ = ["advisory_release", "exploit_data", "in_ranges", "match", "version_rules"]

_VERSION_RULES = {"dpkg": "deb", "apk": "apk", "rpm": "rpm"}
_REPORTED = (Status.FIXED, Status.AFFECTED, Status.WILL_NOT_FIX)
_STATUS_RANK = {Status.FIXED: 3, Status.AFFECTED: 2, Status.WILL_NOT_FIX: 1}
_COMPARISONS_KEPT = 1 << 16


@lru_cache(maxsize=_COMPARISONS_KEPT)
def _compare(rules: str, a: str, b: str) -> int:
    """``compare``, remembered: a scan compares an installed version with every fixed version its
    advisories name (tens of thousands), python-debian takes tens of microseconds per comparison,
    and the same pairs come back in the next scan of any image with the same packages. Versions
    are plain strings and the order never changes, so a remembered answer is always right; a
    version that cannot be compared raises, and an exception is never remembered."""
    return compare(rules, a, b)


def advisory_release(os: OsRelease) -> tuple[str, str]:
    """The store's (ecosystem, release) for an image's os-release, or PatchpipeError when there is none."""
    family = os.id.lower()
    if family in ("debian", "ubuntu"):
        if not os.version_codename:
            raise PatchpipeError(f"{family} image without VERSION_CODENAME in os-release: cannot tell its release "
                                 "(a testing or sid image?)")
        return family, os.version_codename
    if family == "alpine":
        parts = (os.version_id or "").split(".")
        if len(parts) < 2 or not all(part.isdigit() for part in parts[:2]):
            raise PatchpipeError(f"alpine image with VERSION_ID {os.version_id!r} in os-release: "
                                 "expected <major>.<minor>[.<patch>]")
        return "alpine", f"v{parts[0]}.{parts[1]}"
    raise PatchpipeError(f"no advisories for {os.id} images yet (patchpipe matches debian, ubuntu and alpine)")


def version_rules(package_manager: str) -> str:
    """The version ecosystem (deb, apk, rpm) for a package manager (dpkg, apk, rpm)."""
    try:
        return _VERSION_RULES[package_manager]
    except KeyError:
        raise PatchpipeError(f"no version rules for package manager {package_manager!r}") from None


def in_ranges(rules: str, version: str, events: Sequence[VersionEvent]) -> bool:
    """Whether ``version`` lies in the OSV ranges ``events`` describe, compared with ``rules``.

    Events are read in order: each ``introduced`` opens a range, the next ``fixed`` (exclusive) or
    ``last_affected`` (inclusive) closes it; a range left open has no upper end. Introduced ``0``
    means every version.
    """
    start: str | None = None
    for event in events:
        if event.kind == "introduced":
            if start is not None and _at_or_after(rules, version, start):
                return True  # the previous range was never closed
            start = event.version
        elif start is not None and event.kind in ("fixed", "last_affected"):
            if _at_or_after(rules, version, start):
                order = _compare(rules, version, event.version)
                if order < 0 or (order == 0 and event.kind == "last_affected"):
                    return True
            start = None
    return start is not None and _at_or_after(rules, version, start)


def _at_or_after(rules: str, version: str, start: str) -> bool:
    return start == "0" or _compare(rules, version, start) >= 0


@dataclass(frozen=True)
class _Report:
    """One feed entry that says the installed source version is vulnerable."""

    entry: AffectedMatch
    status: Status
    fixed: str | None


def match(engine: Engine, inventory: Inventory) -> list[Finding]:
    """Every finding for ``inventory``, one per (vulnerability, binary package), sorted by package and id."""
    ecosystem, release = advisory_release(inventory.os)
    rules = version_rules(inventory.package_manager)
    by_source: dict[tuple[str, str], list[InstalledPackage]] = defaultdict(list)
    for package in inventory.packages:
        by_source[(package.source_name, package.source_version)].append(package)
    with store_view(engine, ecosystem, release) as view:
        found = _vulnerabilities(view, rules, list(by_source))

    findings = []
    for (source, source_version), packages in by_source.items():
        for vulnerability in found[(source, source_version)]:
            for package in packages:
                findings.append(Finding(
                    id=vulnerability.id, aliases=vulnerability.aliases, package=package.name, source_package=source,
                    installed=package.version, fixed=vulnerability.fixed, status=vulnerability.status,
                    severity=vulnerability.severity, kev=vulnerability.kev, epss=vulnerability.epss,
                    feeds=vulnerability.feeds,
                ))
    findings.sort(key=lambda f: (f.package, f.id))
    return findings


def _vulnerabilities(view: StoreView, rules: str,
                     sources: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[_Vulnerability, ...]]:
    """The merged vulnerabilities of each (source package, installed source version).

    What only depends on the store's rows and ``rules`` is kept in the view's ``results``: the
    index drops it with everything else when the store changes.
    """
    found: dict[tuple[str, str], tuple[_Vulnerability, ...]] = {}
    missing = []
    for source in sources:
        kept = view.results.get((rules, *source))
        if kept is None:
            missing.append(source)
        else:
            found[source] = kept
    if not missing:
        return found

    entries = view.entries({name for name, _ in missing})
    judged = [(source, [(entry, verdict) for entry in entries[source[0]]
                        if (verdict := _judged(rules, source[1], entry)) is not None])
              for source in missing]
    stated = view.advisory_fields({(entry.feed, entry.advisory_id) for _, verdicts in judged for entry, _ in verdicts})
    ecosystem, release = view.slice.ecosystem, view.slice.release
    grouped = []
    for source, verdicts in judged:
        reports = [_Report(affected_match(entry, fields, ecosystem, release), *verdict)
                   for entry, verdict in verdicts
                   if (fields := stated[(entry.feed, entry.advisory_id)]) is not None]  # always: one transaction
        grouped.append((source, reports))
    linked = view.linked({r.entry.advisory_id for _, reports in grouped for r in reports})
    merged = [(source, _merge(rules, reports, linked)) for source, reports in grouped]
    kev, epss = view.kev_and_epss({i for _, vulnerabilities in merged for v in vulnerabilities
                                   for i in v.ids if i.startswith("CVE-")})
    for source, vulnerabilities in merged:
        rated = tuple(_exploited(v, kev, epss) for v in vulnerabilities)
        view.results.put((rules, *source), rated)
        found[source] = rated
    return found


def _exploited(vulnerability: _Vulnerability, kev: dict[str, bool],
               epss: dict[str, float | None]) -> _Vulnerability:
    cves = [i for i in vulnerability.ids if i.startswith("CVE-")]
    return replace(vulnerability, kev=any(kev[c] for c in cves),
                   epss=max((score for c in cves if (score := epss[c]) is not None), default=None))


def _judged(rules: str, installed: str, entry: AffectedEntry) -> tuple[Status, str | None] | None:
    try:
        return _verdict(rules, installed, entry.status, entry.fixed_version, entry.events)
    except PatchpipeError as error:
        raise PatchpipeError(f"advisory {entry.advisory_id} (feed {entry.feed}) for {entry.package}: {error}") from None


def _verdict(rules: str, installed: str, status: Status, fixed_version: str | None,
             events: Sequence[VersionEvent]) -> tuple[Status, str | None] | None:
    """(status, fixed version) to report for an entry about the installed source version; None when
    the entry does not report it vulnerable (see the module doc)."""
    if status not in _REPORTED:
        return None
    if events:
        if not in_ranges(rules, installed, events):
            return None
        fixed = fixed_version or _next_fix(rules, installed, events)
        return (Status.FIXED if fixed else _unfixed(status), fixed)
    if status is Status.FIXED:
        if fixed_version is None or _compare(rules, installed, fixed_version) >= 0:
            return None
        return (Status.FIXED, fixed_version)
    return (status, None)


def _unfixed(status: Status) -> Status:
    return Status.WILL_NOT_FIX if status is Status.WILL_NOT_FIX else Status.AFFECTED


def _next_fix(rules: str, installed: str, events: Sequence[VersionEvent]) -> str | None:
    fixes = [e.version for e in events if e.kind == "fixed" and _compare(rules, installed, e.version) < 0]
    return min(fixes, key=_sort_key(rules), default=None)


def _sort_key(rules: str) -> Callable[[str], Any]:
    return cmp_to_key(lambda a, b: _compare(rules, a, b))


@dataclass(frozen=True)
class _Vulnerability:
    id: str
    aliases: tuple[str, ...]
    status: Status
    fixed: str | None
    severity: Severity
    feeds: tuple[str, ...]
    kev: bool = False  # any of its CVEs in KEV
    epss: float | None = None  # the highest EPSS score of its CVEs

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


def _merge(rules: str, reports: list[_Report], linked: dict[str, tuple[str, ...]]) -> list[_Vulnerability]:
    """Group one source package's reports by shared ids (union-find over id sets)."""
    groups: list[tuple[set[str], list[_Report]]] = []
    for report in reports:
        ids = {report.entry.advisory_id, *report.entry.aliases}
        others = linked.get(report.entry.advisory_id, ())
        if sum(other.startswith("CVE-") for other in others) == 1:
            ids.update(others)
        touching = [g for g in groups if g[0] & ids]
        merged_ids, merged_reports = set(ids), [report]
        for group in touching:
            merged_ids |= group[0]
            merged_reports += group[1]
            groups.remove(group)
        groups.append((merged_ids, merged_reports))
    return [_vulnerability(rules, ids, group, linked) for ids, group in groups]


def _vulnerability(rules: str, ids: set[str], reports: list[_Report],
                   linked: dict[str, tuple[str, ...]]) -> _Vulnerability:
    own_cves = sorted(i for i in ids if i.startswith("CVE-"))
    main = own_cves[0] if own_cves else min(r.entry.advisory_id for r in reports)
    for report in reports:  # an advisory fixing several CVEs lists them (and its other links) as aliases
        ids.update(linked.get(report.entry.advisory_id, ()))
    fixes = [r.fixed for r in reports if r.fixed]
    status = max((r.status for r in reports), key=_STATUS_RANK.__getitem__)
    return _Vulnerability(
        id=main,
        aliases=tuple(sorted(ids - {main})),
        status=status,
        fixed=max(fixes, key=_sort_key(rules)) if fixes else None,
        severity=max((_severity(r.entry) for r in reports), key=SEVERITY_RANK.__getitem__),
        feeds=tuple(sorted({r.entry.feed for r in reports})),
    )


def _severity(entry: AffectedMatch) -> Severity:
    if entry.severity is Severity.UNKNOWN and entry.cvss_score is not None:
        return severity_for_score(entry.cvss_score)
    return entry.severity


def exploit_data(engine: Engine, cves: set[str]) -> tuple[set[str], dict[str, float]]:
    """The CVEs among ``cves`` in the KEV catalog, and the EPSS score of each scored one."""
    with engine.connect() as connection:
        return kev_and_epss(connection, cves)

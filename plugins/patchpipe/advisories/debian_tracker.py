"""The Debian Security Tracker's JSON (https://security-tracker.debian.org/tracker/data/json).

Shape: ``{source_package: {CVE: {description, scope, debianbug, releases: {codename: {status,
repositories, fixed_version, urgency, nodsa, nodsa_reason}}}}}``. One Advisory per CVE (or TEMP-
id), merging every source package it affects; one AffectedPackage per (package, release), ecosystem
``debian``, package = the source package.

Status, per release:
- ``resolved`` with fixed_version ``"0"``          -> NOT_AFFECTED (the release never had the bug)
- ``resolved`` with a fixed_version               -> FIXED at that version
- ``open`` with ``nodsa_reason: ignored``          -> WILL_NOT_FIX (Debian decided not to fix it)
- ``open`` with urgency ``unimportant``            -> WILL_NOT_FIX (not treated as a security issue
                                                      in Debian; no update will be issued)
- ``open`` with urgency ``end-of-life``            -> WILL_NOT_FIX (the package lost security support)
- ``open`` otherwise, including ``no-dsa`` that is
  ``postponed`` or has no reason                  -> AFFECTED (a fix may still come in a point release)
- ``undetermined``                                -> UNDETERMINED
Trivy reports every ``open`` as affected and Grype every ``no-dsa`` as won't-fix; this follows what
the tracker itself says: only an explicit "ignored", "unimportant" or "end-of-life" means no fix is
coming. Anything else (a ``resolved`` without fixed_version, an unknown status) makes the whole CVE a
RecordProblem, so one odd entry is reported instead of half an advisory being stored.

Severity: the urgency, ``*`` suffixes stripped: unimportant -> negligible, low -> low, medium ->
medium, high -> high, anything else (``not yet assigned``, ``end-of-life``) -> unknown. An
Advisory's own severity is the most severe of its entries'.

``"releases": []`` (an empty list instead of an object; it occurs in the real file) means the tracker
knows no release of that package: the CVE keeps its description and gets no entry from it.

The tracker file is a single JSON object (about 50 MB); it is read with ``json.load`` because the
per-CVE merge needs the whole of it anyway. That costs a few hundred MB of memory for the real file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from patchpipe.advisories.records import Advisory, AffectedPackage, Severity, Status
from patchpipe.advisories.source import FeedError, Record, RecordProblem, load_json

_URGENCIES = {
    "unimportant": Severity.NEGLIGIBLE,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
}
_NO_FIX_URGENCIES = {"unimportant", "end-of-life"}
_SEVERITY_ORDER = (
    Severity.UNKNOWN,
    Severity.NEGLIGIBLE,
    Severity.LOW,
    Severity.MEDIUM,
    Severity.HIGH,
    Severity.CRITICAL,
)


def severity_from_urgency(urgency: str) -> Severity:
    """The Severity of a tracker urgency such as ``low**`` or ``not yet assigned``."""
    return _URGENCIES.get(_plain_urgency(urgency), Severity.UNKNOWN)


def release_status(release: dict[str, Any]) -> tuple[Status, str | None]:
    """(status, fixed version) of one ``releases.<codename>`` object; ValueError if it has neither."""
    status = release.get("status")
    fixed_version = release.get("fixed_version") or None
    if status == "resolved":
        if not isinstance(fixed_version, str):
            raise ValueError("status resolved without a fixed_version")
        if fixed_version == "0":
            return Status.NOT_AFFECTED, None
        return Status.FIXED, fixed_version
    if status == "open":
        no_fix = release.get("nodsa_reason") == "ignored" or _plain_urgency(release.get("urgency")) in _NO_FIX_URGENCIES
        return (Status.WILL_NOT_FIX if no_fix else Status.AFFECTED), None
    if status == "undetermined":
        return Status.UNDETERMINED, None
    raise ValueError(f"unknown status {status!r}")


class DebianTrackerSource:
    name = "debian_tracker"

    def parse(self, payload: BinaryIO, origin: str) -> Iterator[Record]:
        tracker = _load(payload, origin)
        merged: dict[str, _Merged] = {}
        for package, cves in tracker.items():
            if not isinstance(cves, dict):
                kind = type(cves).__name__
                yield RecordProblem(package, f"package {package}: expected an object of CVEs, got {kind}")
                continue
            for cve_id, cve in cves.items():
                entry = merged.setdefault(cve_id, _Merged())
                if entry.problem is None:
                    _merge(entry, package, cve_id, cve)
        for cve_id, entry in merged.items():
            yield entry.record(cve_id, self.name)


@dataclass
class _Merged:
    summary: str = ""
    affected: list[AffectedPackage] = field(default_factory=list)
    problem: str | None = None

    def record(self, cve_id: str, source: str) -> Record:
        if self.problem is not None:
            return RecordProblem(cve_id, self.problem)
        severities = [entry.severity for entry in self.affected]
        return Advisory(
            id=cve_id,
            source=source,
            summary=self.summary,
            severity=max(severities, key=_SEVERITY_ORDER.index, default=Severity.UNKNOWN),
            affected=tuple(self.affected),
        )


def _merge(entry: _Merged, package: str, cve_id: str, cve: object) -> None:
    where = f"{cve_id} in package {package}"
    if not isinstance(cve, dict):
        entry.problem = f"{where}: expected an object, got {type(cve).__name__}"
        return
    if not entry.summary and isinstance(cve.get("description"), str):
        entry.summary = cve["description"].strip()
    releases = cve.get("releases")
    if releases is None or releases == []:
        return
    if not isinstance(releases, dict):
        entry.problem = f"{where}: releases is neither an object nor empty"
        return
    for codename, release in releases.items():
        if not isinstance(release, dict):
            entry.problem = f"{where}, release {codename}: expected an object"
            return
        try:
            status, fixed_version = release_status(release)
        except ValueError as exc:
            entry.problem = f"{where}, release {codename}: {exc}"
            return
        entry.affected.append(
            AffectedPackage(
                ecosystem="debian",
                release=codename,
                package=package,
                status=status,
                fixed_version=fixed_version,
                severity=severity_from_urgency(release.get("urgency") or ""),
            )
        )


def _load(payload: BinaryIO, origin: str) -> dict[str, Any]:
    tracker = load_json(payload, origin)
    if not isinstance(tracker, dict):
        raise FeedError(f"{origin}: expected the tracker's object of source packages, got {type(tracker).__name__}")
    return tracker


def _plain_urgency(urgency: object) -> str:
    return urgency.rstrip("*").strip().lower() if isinstance(urgency, str) else ""

"""An image's page: its runs, the findings its promoted patches fixed, and the latest scan's diff.

The diff is the ``scan`` stage's own: its ledger detail names what the candidate ``fixed``, left
``still_open`` and ``introduced`` against the image production ran, each as ``"<id> (<package>)"``,
with the policy gate's verdict. Severities come from the same run's findings snapshots
(``findings_source.run_severities``); an entry they do not name is ``unknown``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from patchpipe.dashboard.findings import ImageFindings
from patchpipe.dashboard.findings_source import run_severities
from patchpipe.dashboard.fleet import FleetRow, fleet_row
from patchpipe.dashboard.rollbacks import Rollback, rollbacks
from patchpipe.dashboard.snapshot import LedgerSnapshot
from patchpipe.ledger.models import StageOutcome
from patchpipe.ledger.store import ImageRecord, PackageChange, RunRecord, StageRecord

SCAN = "scan"
LISTS = ("fixed", "still_open", "introduced")
_ENTRY = re.compile(r"^(?P<id>\S+) \((?P<package>[^()]*)\)$")


def parse_entry(entry: str) -> tuple[str, str]:
    """``"CVE-2024-1 (perl-base)"`` -> ``("CVE-2024-1", "perl-base")``; an id alone has no package."""
    match = _ENTRY.match(entry.strip())
    return (match["id"], match["package"]) if match else (entry.strip(), "")


def scans(snapshot: LedgerSnapshot, image: str) -> list[StageRecord]:
    """The image's successful scans with a findings diff, oldest first."""
    return [s for s in snapshot.stages_of(image, SCAN)
            if s.outcome is StageOutcome.SUCCESS and isinstance(s.detail, dict) and any(k in s.detail for k in LISTS)]


@dataclass(frozen=True)
class Entry:
    """One finding named in a scan's diff."""

    id: str
    package: str
    severity: str


@dataclass(frozen=True)
class HistoryEntry:
    result: ImageRecord
    run: RunRecord | None
    rollbacks: tuple[Rollback, ...]


@dataclass(frozen=True)
class FixedFinding:
    finding: Entry
    run_id: str
    promoted_at: datetime


@dataclass(frozen=True)
class LastDiff:
    run_id: str
    scanned_at: datetime
    candidate: str | None
    findings_before: int | None
    findings_after: int | None
    fixed: tuple[Entry, ...]
    still_open: tuple[Entry, ...]
    introduced: tuple[Entry, ...]
    gate_passed: bool | None
    packages: tuple[PackageChange, ...]  # what the run's patch moved, from its image result
    promoted: bool


@dataclass(frozen=True)
class ImageDetail:
    row: FleetRow
    history: tuple[HistoryEntry, ...]  # newest first
    fixed: tuple[FixedFinding, ...]  # newest promotion first
    last_diff: LastDiff | None


def image_detail(snapshot: LedgerSnapshot, findings: dict[str, ImageFindings], image: str,
                 engine: Engine) -> ImageDetail | None:
    """The page of ``image``; None when the ledger has no result for it. ``engine`` is the ledger's,
    read for the severities of the scans' entries."""
    if image not in snapshot.results:
        return None
    image_scans = scans(snapshot, image)
    shown = [scan for scan in image_scans if snapshot.production_changed_in(image, scan.run_id)]
    shown += image_scans[-1:]
    severity = run_severities(engine, snapshot, image, [scan.run_id for scan in shown])

    def entries(scan: StageRecord, name: str) -> tuple[Entry, ...]:
        parsed = (parse_entry(str(e)) for e in scan.detail.get(name) or ())
        return tuple(Entry(i, p, severity[scan.run_id].get((i, p), "unknown")) for i, p in parsed)

    by_run = {}
    for rollback in rollbacks(snapshot, image):
        by_run.setdefault(rollback.run_id, []).append(rollback)
    history = tuple(HistoryEntry(r, snapshot.runs.get(r.run_id), tuple(by_run.get(r.run_id, ())))
                    for r in snapshot.results[image])

    fixed = []
    for scan in reversed(image_scans):
        result = snapshot.result_in_run(image, scan.run_id)
        if result is not None and snapshot.production_changed_in(image, scan.run_id):
            fixed += [FixedFinding(entry, scan.run_id, result.updated_at) for entry in entries(scan, "fixed")]

    last_diff = None
    if image_scans:
        scan = image_scans[-1]
        result = snapshot.result_in_run(image, scan.run_id)
        gate = scan.detail.get("gate") if isinstance(scan.detail.get("gate"), dict) else {}
        last_diff = LastDiff(
            run_id=scan.run_id,
            scanned_at=scan.started_at,
            candidate=scan.detail.get("candidate"),
            findings_before=scan.detail.get("findings_before"),
            findings_after=scan.detail.get("findings_after"),
            fixed=entries(scan, "fixed"),
            still_open=entries(scan, "still_open"),
            introduced=entries(scan, "introduced"),
            gate_passed=gate.get("passed"),
            packages=result.packages if result else (),
            promoted=snapshot.production_changed_in(image, scan.run_id),
        )
    return ImageDetail(fleet_row(snapshot, findings, image), history, tuple(fixed), last_diff)

"""Where the dashboard gets open findings: the ledger's findings snapshots (``Ledger.record_findings``).

Every run records, per image, a *production* snapshot at assess (the digest production runs, no-op
runs included) and, when it builds a candidate, a *candidate* snapshot at scan. So, per image:

- **What production holds.** Take the image's latest run with a production snapshot. If that run
  left production on its candidate (``LedgerSnapshot.production_changed_in``), production now holds
  that run's candidate snapshot; otherwise the production snapshot itself. A run that promoted
  without a candidate snapshot (a ledger written before snapshots existed) leaves the image's
  findings unknown, never zero. An image without any production snapshot is unknown too.
- **Severity** is the snapshot row's: the advisory store's view when the run recorded it.
- **Fixable**: the finding's status is ``fixed`` (a fixed version exists). ``fixable_since`` is the
  earliest ``recorded_at`` among the snapshots of the current production digest in which that finding
  (id and package) was already fixable. Those snapshots are the production snapshots of that digest,
  going back from the newest until production had another digest; and, when a patchpipe promotion
  put that digest live, the promoting run's candidate snapshot (the same image, scanned before it
  went live), so a fix's wait does not restart at the first run after a promotion. For a candidate
  just promoted that is the candidate snapshot's own time.

Only the findings of the snapshots used are read: the chosen snapshots' rows in one query, and the
fixable rows of each image's digest snapshots as one grouped query (a minimum per finding), so a
digest that stayed live for a year of daily runs costs one GROUP BY, not a year of rows.

Every page and metric calls ``current_findings``; ``open_findings`` is the small interface for other
callers, ``run_severities`` gives the image page the severities of what a run's snapshots held.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from patchpipe.advisories.records import Status
from patchpipe.dashboard.findings import ImageFindings, OpenFinding
from patchpipe.dashboard.snapshot import LedgerSnapshot, read_snapshot
from patchpipe.ledger.models import FindingsSnapshot, SnapshotFinding
from patchpipe.ledger.snapshots import CANDIDATE, PRODUCTION, SnapshotHeader

_IDS_PER_QUERY = 500  # well under SQLite's limit on bound parameters
_FIXED = Status.FIXED.value


@dataclass(frozen=True)
class _Source:
    """Whose findings production holds, and the snapshots of that digest a fix's wait goes back through."""

    held: SnapshotHeader
    same_digest: tuple[SnapshotHeader, ...]  # ``held`` included


def current_findings(engine: Engine, snapshot: LedgerSnapshot) -> dict[str, ImageFindings]:
    """``{image: ImageFindings}`` of production, for every image whose findings are known."""
    sources = {image: source for image in sorted(snapshot.findings_snapshots)
               if (source := _source(snapshot, image)) is not None}
    if not sources:
        return {}
    with Session(engine) as session, session.begin():
        held = _rows(session, [s.held.snapshot_id for s in sources.values()])
        since = _fixable_since(session, sources)
    found = {}
    for image, source in sources.items():
        findings = sorted({
            (vuln_id, package): OpenFinding(
                vuln_id, package, severity,
                since.get((image, vuln_id, package), source.held.recorded_at) if status == _FIXED else None)
            for vuln_id, package, severity, status in held.get(source.held.snapshot_id, ())
        }.values(), key=lambda f: (f.id, f.package))
        found[image] = ImageFindings(image, source.held.run_id, source.held.recorded_at, tuple(findings))
    return found


def open_findings(engine: Engine) -> dict[str, dict[str, int]]:
    """``{image: {severity: count}}`` of production's open findings, every severity listed."""
    return {image: found.counts() for image, found in current_findings(engine, read_snapshot(engine)).items()}


def run_severities(engine: Engine, snapshot: LedgerSnapshot, image: str,
                   run_ids: Iterable[str]) -> dict[str, dict[tuple[str, str], str]]:
    """Per run, ``{(id or alias, package): severity}`` of what its production and candidate snapshots
    of ``image`` held (the candidate's view wins where both name a finding). A run without snapshots
    maps to ``{}``."""
    runs = list(dict.fromkeys(run_ids))
    headers = [h for run_id in runs for environment in (PRODUCTION, CANDIDATE)
               if (h := snapshot.findings_snapshot(image, run_id, environment)) is not None]
    found: dict[str, dict[tuple[str, str], str]] = {run_id: {} for run_id in runs}
    if not headers:
        return found
    with Session(engine) as session, session.begin():
        ids = [h.snapshot_id for h in headers]
        rows: dict[int, list[tuple]] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            query = (select(SnapshotFinding.snapshot_id, SnapshotFinding.vulnerability_id, SnapshotFinding.aliases,
                            SnapshotFinding.package, SnapshotFinding.severity)
                     .where(SnapshotFinding.snapshot_id.in_(ids[start:start + _IDS_PER_QUERY])))
            for snapshot_id, *row in session.execute(query):
                rows.setdefault(snapshot_id, []).append(row)
    for header in headers:  # production before candidate, per run
        by_id = found[header.run_id]
        for vuln_id, aliases, package, severity in rows.get(header.snapshot_id, ()):
            for name in (vuln_id, *(aliases or ())):
                by_id[(name, package)] = severity
    return found


def _source(snapshot: LedgerSnapshot, image: str) -> _Source | None:
    production = snapshot.production_snapshots(image)
    if not production:
        return None
    latest = production[-1]
    if snapshot.production_changed_in(image, latest.run_id):
        candidate = snapshot.findings_snapshot(image, latest.run_id, CANDIDATE)
        return _Source(candidate, (candidate,)) if candidate is not None else None
    same_digest = []
    for header in reversed(production):
        if header.digest != latest.digest:
            # The run that last saw another digest: if it promoted its candidate to this digest,
            # that candidate's snapshot is this digest's first.
            result = snapshot.result_in_run(image, header.run_id)
            candidate = snapshot.findings_snapshot(image, header.run_id, CANDIDATE)
            if (candidate is not None and result is not None and result.after_digest == latest.digest
                    and snapshot.production_changed_in(image, header.run_id)):
                same_digest.append(candidate)
            break
        same_digest.append(header)
    return _Source(latest, tuple(same_digest))


def _rows(session: Session, snapshot_ids: list[int]) -> dict[int, list[tuple[str, str, str, str]]]:
    """``{snapshot id: [(id, package, severity, status)]}`` of the given snapshots."""
    rows: dict[int, list[tuple[str, str, str, str]]] = {}
    for start in range(0, len(snapshot_ids), _IDS_PER_QUERY):
        query = (select(SnapshotFinding.snapshot_id, SnapshotFinding.vulnerability_id, SnapshotFinding.package,
                        SnapshotFinding.severity, SnapshotFinding.status)
                 .where(SnapshotFinding.snapshot_id.in_(snapshot_ids[start:start + _IDS_PER_QUERY]))
                 .order_by(SnapshotFinding.id))
        for snapshot_id, *row in session.execute(query):
            rows.setdefault(snapshot_id, []).append(tuple(row))
    return rows


def _fixable_since(session: Session, sources: dict[str, _Source]) -> dict[tuple[str, str, str], datetime]:
    """``{(image, id, package): earliest recorded_at}`` over each image's same-digest snapshots in which
    the finding was fixable."""
    ids = [h.snapshot_id for source in sources.values() for h in source.same_digest]
    since: dict[tuple[str, str, str], datetime] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        query = (select(FindingsSnapshot.image, SnapshotFinding.vulnerability_id, SnapshotFinding.package,
                        func.min(FindingsSnapshot.recorded_at))
                 .join(FindingsSnapshot, FindingsSnapshot.id == SnapshotFinding.snapshot_id)
                 .where(SnapshotFinding.snapshot_id.in_(ids[start:start + _IDS_PER_QUERY]),
                        SnapshotFinding.status == _FIXED)
                 .group_by(FindingsSnapshot.image, SnapshotFinding.vulnerability_id, SnapshotFinding.package))
        for image, vuln_id, package, earliest in session.execute(query):
            key = (image, vuln_id, package)
            since[key] = min(earliest, since.get(key, earliest))
    return since

"""Findings snapshots: which vulnerabilities one image digest had when a run looked at it.

The history (``ledger.history``) is built from them: production's snapshots say what was open in
production and when, a run's candidate snapshot says what its promotion fixed. Each snapshot keeps
the advisory's published date beside every finding, so time-to-patch needs no advisory store later
(feeds are replaced wholesale and may drop an old advisory).

Writing goes through ``Ledger.record_findings``; the functions here take an open session or engine so
the ledger and the history share one implementation of the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from patchpipe.advisories.records import Severity, Status
from patchpipe.errors import PatchpipeError
from patchpipe.ledger.models import FindingsSnapshot, SnapshotFinding
from patchpipe.scan.findings import Finding

PRODUCTION = "production"
CANDIDATE = "candidate"
ENVIRONMENTS = (PRODUCTION, "staging", CANDIDATE)

# Worst first: the order reports and dashboards list severities in.
SEVERITY_ORDER = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.NEGLIGIBLE,
                  Severity.UNKNOWN)


@dataclass(frozen=True)
class SnapshotFindingRecord:
    id: str  # the CVE when there is one (``Finding.id``)
    aliases: tuple[str, ...]
    package: str
    source_package: str | None
    installed: str
    fixed: str | None
    status: Status
    severity: Severity
    kev: bool
    epss: float | None
    published: datetime | None

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


@dataclass(frozen=True)
class SnapshotHeader:
    """A snapshot without its findings: enough to place it in time and count what it held."""

    snapshot_id: int
    run_id: str
    image: str
    environment: str
    digest: str
    recorded_at: datetime


@dataclass(frozen=True)
class FindingsSnapshotRecord:
    run_id: str
    image: str
    environment: str
    digest: str
    recorded_at: datetime
    findings: tuple[SnapshotFindingRecord, ...]

    def counts_by_severity(self) -> dict[Severity, int]:
        """Every severity, worst first, with how many findings have it (zero included)."""
        counts = dict.fromkeys(SEVERITY_ORDER, 0)
        for finding in self.findings:
            counts[finding.severity] += 1
        return counts

    def vulnerability_ids(self) -> frozenset[str]:
        """Every id and alias of every finding: what "the digest still has it" is checked against."""
        return frozenset(vid for finding in self.findings for vid in finding.ids)


def write_snapshot(
    session: Session,
    *,
    run_id: str,
    image: str,
    environment: str,
    digest: str,
    findings: Iterable[Finding | Mapping[str, Any]],
    published: Mapping[str, datetime],
    recorded_at: datetime,
) -> FindingsSnapshotRecord:
    """Insert or replace the (run, image, environment) snapshot with ``findings``, in ``session``."""
    where = f"findings of {image!r} ({environment}) in run {run_id!r}"
    if environment not in ENVIRONMENTS:
        raise PatchpipeError(f"{where}: environment must be one of {', '.join(ENVIRONMENTS)}")
    if not digest:
        raise PatchpipeError(f"{where}: the digest is empty; give the registry digest (or a candidate's image id)")
    for vid, when in published.items():
        if when is not None and when.tzinfo is None:
            raise ValueError(f"{where}: published date of {vid} ({when.isoformat()}) is naive; give aware datetimes")
    rows = [_row_values(_parse(finding, where), published) for finding in findings]

    snapshot = session.scalars(
        select(FindingsSnapshot).where(
            FindingsSnapshot.run_id == run_id, FindingsSnapshot.image == image,
            FindingsSnapshot.environment == environment,
        )
    ).one_or_none()
    if snapshot is None:
        snapshot = FindingsSnapshot(run_id=run_id, image=image, environment=environment)
        session.add(snapshot)
    else:
        session.execute(delete(SnapshotFinding).where(SnapshotFinding.snapshot_id == snapshot.id))
    snapshot.digest = digest
    snapshot.recorded_at = recorded_at
    session.flush()
    if rows:
        session.execute(insert(SnapshotFinding), [{**row, "snapshot_id": snapshot.id} for row in rows])
    return FindingsSnapshotRecord(run_id, image, environment, digest, recorded_at,
                                  tuple(_record_from_values(row) for row in rows))


def read_snapshots(
    engine: Engine,
    *,
    image: str | None = None,
    environment: str | None = None,
    run_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[FindingsSnapshotRecord]:
    """Snapshots with their findings, oldest first; every filter is optional (``until`` is exclusive)."""
    with Session(engine) as session:
        headers = session.scalars(
            _filtered(select(FindingsSnapshot), image, environment, run_id, since, until)
            .order_by(FindingsSnapshot.recorded_at, FindingsSnapshot.id)
        ).all()
        return _with_findings(session, headers)


def latest_per_image(engine: Engine, environment: str = PRODUCTION) -> dict[str, FindingsSnapshotRecord]:
    """Each image's newest snapshot in ``environment``: what production holds now, for a dashboard.

    Only the headers of older snapshots are read, never their findings.
    """
    with Session(engine) as session:
        headers = session.scalars(
            select(FindingsSnapshot).where(FindingsSnapshot.environment == environment)
            .order_by(FindingsSnapshot.image, FindingsSnapshot.recorded_at.desc(), FindingsSnapshot.id.desc())
        ).all()
        newest = list({h.image: h for h in reversed(headers)}.values())  # the last write per image wins
        return {record.image: record for record in _with_findings(session, newest)}


def _with_findings(session: Session, headers: Sequence[FindingsSnapshot]) -> list[FindingsSnapshotRecord]:
    by_snapshot: dict[int, list[SnapshotFindingRecord]] = {h.id: [] for h in headers}
    ids = list(by_snapshot)
    for start in range(0, len(ids), 500):  # stays under SQLite's bound-parameter limit
        rows = session.scalars(
            select(SnapshotFinding).where(SnapshotFinding.snapshot_id.in_(ids[start:start + 500]))
            .order_by(SnapshotFinding.id)
        )
        for row in rows:
            by_snapshot[row.snapshot_id].append(_record(row))
    return [
        FindingsSnapshotRecord(h.run_id, h.image, h.environment, h.digest, h.recorded_at, tuple(by_snapshot[h.id]))
        for h in headers
    ]


def severity_counts(
    engine: Engine,
    *,
    image: str | None = None,
    environment: str = PRODUCTION,
    since: datetime | None = None,
    until: datetime | None = None,
    statuses: Sequence[Status] | None = None,
) -> list[tuple[SnapshotHeader, dict[Severity, int]]]:
    """Each snapshot, oldest first, with its number of findings per severity (worst first, zeros
    included), counted by the database. ``statuses`` narrows what counts (default: every finding)."""
    join = select(FindingsSnapshot.id, SnapshotFinding.severity, func.count(SnapshotFinding.id)).join(
        SnapshotFinding, SnapshotFinding.snapshot_id == FindingsSnapshot.id
    )
    join = _filtered(join, image, environment, None, since, until)
    if statuses:
        join = join.where(SnapshotFinding.status.in_([Status(s).value for s in statuses]))
    with Session(engine) as session:
        headers = session.scalars(
            _filtered(select(FindingsSnapshot), image, environment, None, since, until)
            .order_by(FindingsSnapshot.recorded_at, FindingsSnapshot.id)
        ).all()
        counted: dict[int, dict[Severity, int]] = {h.id: dict.fromkeys(SEVERITY_ORDER, 0) for h in headers}
        for snapshot_id, severity, number in session.execute(join.group_by(FindingsSnapshot.id,
                                                                            SnapshotFinding.severity)):
            if snapshot_id in counted:
                counted[snapshot_id][Severity(severity)] = number
        return [(_header(h), counted[h.id]) for h in headers]


def _filtered(query: Any, image: str | None, environment: str | None, run_id: str | None,
              since: datetime | None, until: datetime | None) -> Any:
    if image is not None:
        query = query.where(FindingsSnapshot.image == image)
    if environment is not None:
        query = query.where(FindingsSnapshot.environment == environment)
    if run_id is not None:
        query = query.where(FindingsSnapshot.run_id == run_id)
    if since is not None:
        query = query.where(FindingsSnapshot.recorded_at >= since)
    if until is not None:
        query = query.where(FindingsSnapshot.recorded_at < until)
    return query


def _parse(finding: Finding | Mapping[str, Any], where: str) -> Finding:
    """A Finding, or its ``to_dict()`` shape (what travels through XCom)."""
    if isinstance(finding, Finding):
        return finding
    if isinstance(finding, Mapping):
        try:
            return Finding(
                id=str(finding["id"]), aliases=tuple(finding.get("aliases") or ()), package=str(finding["package"]),
                source_package=str(finding.get("source_package") or finding["package"]),
                installed=str(finding["installed"]), fixed=finding.get("fixed"), status=Status(finding["status"]),
                severity=Severity(finding.get("severity") or "unknown"), kev=bool(finding.get("kev")),
                epss=finding.get("epss"),
            )
        except (KeyError, ValueError) as exc:
            raise PatchpipeError(f"{where}: finding {dict(finding)!r} is malformed: {exc}") from None
    raise PatchpipeError(f"{where}: {finding!r} is not a Finding")


def _row_values(finding: Finding, published: Mapping[str, datetime]) -> dict[str, Any]:
    dates = [published[vid] for vid in finding.ids if published.get(vid) is not None]
    return {
        "vulnerability_id": finding.id,
        "aliases": list(finding.aliases),
        "package": finding.package,
        "source_package": finding.source_package,
        "installed": finding.installed,
        "fixed": finding.fixed,
        "status": Status(finding.status).value,
        "severity": Severity(finding.severity).value,
        "kev": bool(finding.kev),
        "epss": finding.epss,
        "published": min(dates).astimezone(timezone.utc) if dates else None,
    }


def _record_from_values(values: dict[str, Any]) -> SnapshotFindingRecord:
    return SnapshotFindingRecord(
        id=values["vulnerability_id"], aliases=tuple(values["aliases"]), package=values["package"],
        source_package=values["source_package"], installed=values["installed"], fixed=values["fixed"],
        status=Status(values["status"]), severity=Severity(values["severity"]), kev=values["kev"],
        epss=values["epss"], published=values["published"],
    )


def _record(row: SnapshotFinding) -> SnapshotFindingRecord:
    return _record_from_values({column: getattr(row, column) for column in (
        "vulnerability_id", "aliases", "package", "source_package", "installed", "fixed", "status", "severity",
        "kev", "epss", "published")})


def _header(row: FindingsSnapshot) -> SnapshotHeader:
    return SnapshotHeader(row.id, row.run_id, row.image, row.environment, row.digest, row.recorded_at)

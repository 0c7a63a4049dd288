"""Patch history from the ledger: time-to-patch per vulnerability, mean time to remediate, and open
findings per image over time. No Airflow: the dashboard, the CLI and reports read these.

Definitions, so every reader means the same thing:

- A vulnerability is *in production* for an image from the first production snapshot (assess
  stage) that holds it. Ids and aliases are one vulnerability: a finding seen as a DSA once and as
  its CVE later is the same one.
- It is *fixed* when a production digest without it went live: the finish of a successful
  ``promote`` stage whose candidate no longer has it (the run's candidate snapshot; without one, the
  production snapshot of the promoted digest in a later run). A promotion that
  ``rollback_production`` undid in the same run fixes nothing. The first fix counts: a finding that
  comes back later is not counted again.
- *Time to patch* is fixed minus the advisory's published date (stored with each finding). A
  finding whose advisory has no published date has none; it is still listed, and counted apart by
  ``mean_time_to_remediate``.
- A vulnerability that leaves production without a promotion (the advisory was withdrawn or marked
  not affected, or production changed outside patchpipe) is *gone*: ``closed_at`` is set, ``fixed_at``
  is not, and it never enters a mean.
- Open findings over time count every finding of each production snapshot (fixable or not), by
  severity, worst first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from patchpipe.advisories.records import Severity, Status
from patchpipe.ledger.models import StageOutcome, StageResult
from patchpipe.ledger.snapshots import (
    CANDIDATE,
    PRODUCTION,
    SEVERITY_ORDER,
    FindingsSnapshotRecord,
    SnapshotFindingRecord,
    latest_per_image,
    severity_counts,
)
from patchpipe.ledger.store import Ledger

_RANK = {severity: len(SEVERITY_ORDER) - i for i, severity in enumerate(SEVERITY_ORDER)}


@dataclass(frozen=True)
class Promotion:
    """A successful promotion that stayed: production went live on ``digest`` at ``finished_at``."""

    run_id: str
    image: str
    digest: str | None
    finished_at: datetime


@dataclass(frozen=True)
class PatchTime:
    """One vulnerability in one image: when it was public, seen in production, and fixed there."""

    vulnerability_id: str
    image: str
    aliases: tuple[str, ...]
    packages: tuple[str, ...]
    severity: Severity  # the worst any snapshot gave it
    kev: bool
    published: datetime | None
    first_seen: datetime
    fixed_at: datetime | None = None
    fixed_by_run: str | None = None
    fixed_digest: str | None = None
    closed_at: datetime | None = None  # left production without a promotion ("gone")

    @property
    def is_open(self) -> bool:
        return self.fixed_at is None and self.closed_at is None

    @property
    def time_to_patch(self) -> timedelta | None:
        """Published to fixed in production; None while open, when gone, or without a published date."""
        if self.fixed_at is None or self.published is None:
            return None
        return self.fixed_at - self.published

    @property
    def time_from_detection(self) -> timedelta | None:
        """First seen in production to fixed there."""
        return None if self.fixed_at is None else self.fixed_at - self.first_seen


@dataclass(frozen=True)
class Remediation:
    """The vulnerabilities fixed in production between ``since`` and ``until`` (exclusive)."""

    since: datetime
    until: datetime
    fixes: tuple[PatchTime, ...]
    mean: timedelta | None  # mean time to patch over the fixes with a published date
    mean_from_detection: timedelta | None
    without_published: int  # fixes left out of ``mean``: their advisory has no published date

    @property
    def count(self) -> int:
        return len(self.fixes)


@dataclass(frozen=True)
class OpenFindings:
    """What one production snapshot held: findings per severity, worst first."""

    image: str
    run_id: str
    digest: str
    recorded_at: datetime
    by_severity: dict[Severity, int]

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())


def promotions(ledger: Ledger, *, image: str | None = None) -> list[Promotion]:
    """Every successful promotion that production kept, oldest first."""
    wanted = ("promote", "rollback_production")
    query = select(StageResult).where(StageResult.stage.in_(wanted), StageResult.outcome == StageOutcome.SUCCESS.value)
    if image is not None:
        query = query.where(StageResult.image == image)
    with Session(ledger.engine) as session:
        rows = session.scalars(query).all()
    rollbacks = {(r.run_id, r.image): r.started_at for r in rows if r.stage == "rollback_production"}
    found = []
    for row in rows:
        if row.stage != "promote":
            continue
        undone = rollbacks.get((row.run_id, row.image))
        if undone is not None and undone >= row.started_at:
            continue
        digest = row.detail.get("digest") if isinstance(row.detail, dict) else None
        found.append(Promotion(row.run_id, row.image, digest,
                               row.started_at + timedelta(seconds=row.duration_seconds)))
    return sorted(found, key=lambda p: (p.finished_at, p.image))


def time_to_patch(ledger: Ledger, *, image: str | None = None) -> list[PatchTime]:
    """Every vulnerability production had, per image: fixed (with when and by which run), gone, or open.

    Sorted by image, then first seen, then id.
    """
    production = ledger.findings_snapshots(image=image, environment=PRODUCTION)
    candidates = {(s.run_id, s.image): s for s in ledger.findings_snapshots(image=image, environment=CANDIDATE)}
    promoted = promotions(ledger, image=image)
    results: list[PatchTime] = []
    for name in sorted({s.image for s in production}):
        results += _image_history([s for s in production if s.image == name], candidates,
                                  [p for p in promoted if p.image == name])
    return results


def mean_time_to_remediate(ledger: Ledger, since: datetime, until: datetime, *,
                           image: str | None = None) -> Remediation:
    """Mean time to patch over the vulnerabilities fixed in production in [since, until)."""
    fixes = tuple(p for p in time_to_patch(ledger, image=image)
                  if p.fixed_at is not None and since <= p.fixed_at < until)
    timed = [p.time_to_patch for p in fixes if p.time_to_patch is not None]
    detected = [p.time_from_detection for p in fixes if p.time_from_detection is not None]
    return Remediation(since, until, fixes, _mean(timed), _mean(detected), len(fixes) - len(timed))


def open_findings_over_time(ledger: Ledger, *, image: str | None = None, since: datetime | None = None,
                            until: datetime | None = None,
                            statuses: Sequence[Status] | None = None) -> list[OpenFindings]:
    """Each production snapshot, oldest first, with its findings per severity (counted in the database).

    ``statuses`` narrows what counts, e.g. ``[Status.FIXED]`` for what a patch could have fixed.
    """
    return [
        OpenFindings(header.image, header.run_id, header.digest, header.recorded_at, counts)
        for header, counts in severity_counts(ledger.engine, image=image, environment=PRODUCTION, since=since,
                                              until=until, statuses=statuses)
    ]


def current_findings(ledger: Ledger) -> dict[str, FindingsSnapshotRecord]:
    """``{image: its newest production snapshot}``: the findings production holds now, per image."""
    return latest_per_image(ledger.engine, PRODUCTION)


def fleet_time_to_patch(patch_times: Sequence[PatchTime]) -> dict[str, dict]:
    """Per vulnerability across images: when the last image was fixed (None while any is open).

    ``{id: {"published", "images", "open_in", "fixed_everywhere_at", "time_to_patch"}}``.
    """
    grouped: dict[str, list[PatchTime]] = {}
    for entry in patch_times:
        grouped.setdefault(entry.vulnerability_id, []).append(entry)
    fleet = {}
    for vid, entries in sorted(grouped.items()):
        published = min((e.published for e in entries if e.published), default=None)
        still_open = sorted(e.image for e in entries if e.is_open)
        fixed = [e.fixed_at for e in entries if e.fixed_at is not None]
        everywhere = max(fixed) if fixed and not still_open else None
        fleet[vid] = {
            "published": published,
            "images": sorted(e.image for e in entries),
            "open_in": still_open,
            "fixed_everywhere_at": everywhere,
            "time_to_patch": everywhere - published if everywhere and published else None,
        }
    return fleet


@dataclass
class _Episode:
    entry: PatchTime
    ids: set[str] = field(default_factory=set)

    def absorb(self, finding: SnapshotFindingRecord) -> None:
        e = self.entry
        published = [d for d in (e.published, finding.published) if d is not None]
        self.ids.update(finding.ids)
        self.entry = replace(
            e,
            aliases=tuple(sorted(self.ids - {e.vulnerability_id})),
            packages=tuple(sorted({*e.packages, finding.package})),
            severity=max(e.severity, finding.severity, key=_RANK.__getitem__),
            kev=e.kev or finding.kev,
            published=min(published) if published else None,
        )


def _image_history(production: list[FindingsSnapshotRecord], candidates: dict[tuple[str, str], FindingsSnapshotRecord],
                   promoted: list[Promotion]) -> list[PatchTime]:
    episodes: dict[str, _Episode] = {}
    known_as: dict[str, str] = {}  # any id or alias -> the episode's key
    events: list[tuple[datetime, int, object]] = [(s.recorded_at, 0, s) for s in production]
    events += [(p.finished_at, 1, p) for p in promoted]
    for when, _, event in sorted(events, key=lambda e: (e[0], e[1])):
        if isinstance(event, FindingsSnapshotRecord):
            present = set()
            for finding in event.findings:
                key = next((known_as[v] for v in finding.ids if v in known_as), None)
                if key is None:
                    key = finding.id
                    episodes[key] = _Episode(PatchTime(
                        vulnerability_id=finding.id, image=event.image, aliases=(), packages=(),
                        severity=finding.severity, kev=finding.kev, published=finding.published, first_seen=when))
                episode = episodes[key]
                episode.absorb(finding)
                known_as.update(dict.fromkeys(finding.ids, key))
                present.add(key)
                if episode.entry.closed_at is not None:  # gone, and back: it was never patched
                    episode.entry = replace(episode.entry, closed_at=None)
            for key, episode in episodes.items():
                if key not in present and episode.entry.is_open:
                    episode.entry = replace(episode.entry, closed_at=when)
        else:
            promotion: Promotion = event  # type: ignore[assignment]
            after = candidates.get((promotion.run_id, promotion.image)) or _live_snapshot(production, promotion)
            if after is None:
                continue  # no findings known for what went live: cannot tell what it fixed
            still_there = after.vulnerability_ids()
            for episode in episodes.values():
                if episode.entry.is_open and not (episode.ids & still_there):
                    episode.entry = replace(episode.entry, fixed_at=promotion.finished_at,
                                            fixed_by_run=promotion.run_id, fixed_digest=promotion.digest)
    return sorted((e.entry for e in episodes.values()), key=lambda p: (p.first_seen, p.vulnerability_id))


def _live_snapshot(production: list[FindingsSnapshotRecord], promotion: Promotion) -> FindingsSnapshotRecord | None:
    """A later run's production snapshot of the promoted digest: what went live, seen afterwards."""
    if not promotion.digest:
        return None
    return next((s for s in production if s.digest == promotion.digest and s.recorded_at >= promotion.finished_at),
                None)


def _mean(values: list[timedelta]) -> timedelta | None:
    return sum(values, timedelta()) / len(values) if values else None

"""One consistent read of the ledger for a dashboard page or a metrics scrape.

Every view (fleet rows, an image page, the metrics) is a pure function of a ``LedgerSnapshot``, so
a page never mixes rows written before and after a concurrent run's update, and the tests can build
the expected values from the same ledger rows the views read. Four queries read everything: the
ledger is small (one row per image per run, a dozen stage rows and two findings-snapshot headers per
image per run) and a scrape every 15 s costs milliseconds. The findings inside the snapshots are
not read here: ``findings_source`` reads only those of the snapshots it needs. The ``Ledger`` API
reads one run or one image at a time, so this module reads the tables itself, read-only, and returns
the ledger's own record types.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from patchpipe.ledger.models import (
    FindingsSnapshot,
    ImageResult,
    ImageStatus,
    PatchRun,
    RunStatus,
    RunType,
    StageOutcome,
    StageResult,
)
from patchpipe.ledger.snapshots import PRODUCTION, SnapshotHeader
from patchpipe.ledger.store import ImageRecord, PackageChange, RunRecord, StageRecord

RUN_LEVEL = "(run)"  # the ledger's image name for stages of the whole run (see lifecycle/record.py)


@dataclass(frozen=True)
class LedgerSnapshot:
    runs: dict[str, RunRecord]
    # Per image, newest first (updated_at, then insertion order), as ``Ledger.image_history`` orders them.
    results: dict[str, list[ImageRecord]]
    # Per image, in the order the stages started.
    stages: dict[str, list[StageRecord]] = field(default_factory=dict)
    # Per image, the headers of its findings snapshots (every environment), oldest first
    # (recorded_at, then insertion order), as ``Ledger.findings_snapshots`` orders them.
    findings_snapshots: dict[str, list[SnapshotHeader]] = field(default_factory=dict)

    @property
    def images(self) -> list[str]:
        """Every image the ledger has a result for, by name."""
        return sorted(self.results)

    def stages_of(self, image: str, *names: str) -> list[StageRecord]:
        """The image's stage rows named ``names`` (all when none given), oldest first."""
        rows = self.stages.get(image, [])
        return [s for s in rows if s.stage in names] if names else list(rows)

    def stages_in_run(self, image: str, run_id: str) -> dict[str, StageRecord]:
        return {s.stage: s for s in self.stages.get(image, []) if s.run_id == run_id}

    def result_in_run(self, image: str, run_id: str) -> ImageRecord | None:
        return next((r for r in self.results.get(image, []) if r.run_id == run_id), None)

    def production_snapshots(self, image: str) -> list[SnapshotHeader]:
        """The image's production findings snapshots (one per run, taken at assess), oldest first."""
        return [h for h in self.findings_snapshots.get(image, []) if h.environment == PRODUCTION]

    def findings_snapshot(self, image: str, run_id: str, environment: str) -> SnapshotHeader | None:
        """The run's snapshot of ``image`` in ``environment`` (``production`` or ``candidate``), if recorded."""
        return next((h for h in self.findings_snapshots.get(image, [])
                     if h.run_id == run_id and h.environment == environment), None)

    def production_changed_in(self, image: str, run_id: str) -> bool:
        """Whether the run left production on its candidate.

        True when the image's result is ``promoted``, and also when ``promote`` succeeded and no
        ``rollback_production`` succeeded after it (a failed analysis whose rollback failed too:
        the result says ``failed``, but the production tag points at the candidate).
        """
        result = self.result_in_run(image, run_id)
        if result is not None and result.status is ImageStatus.PROMOTED:
            return True
        stages = self.stages_in_run(image, run_id)
        promote, rollback = stages.get("promote"), stages.get("rollback_production")
        promoted = promote is not None and promote.outcome is StageOutcome.SUCCESS
        rolled_back = (rollback is not None and rollback.outcome is StageOutcome.SUCCESS
                       and rollback.started_at >= promote.started_at) if promoted else False
        return promoted and not rolled_back


def read_snapshot(engine: Engine) -> LedgerSnapshot:
    """Read every run, image result, image stage row and findings-snapshot header in one transaction."""
    with Session(engine) as session, session.begin():
        runs = {row.run_id: _run(row) for row in session.scalars(select(PatchRun))}
        results: dict[str, list[ImageRecord]] = defaultdict(list)
        query = select(ImageResult).order_by(ImageResult.updated_at.desc(), ImageResult.id.desc())
        for row in session.scalars(query):
            results[row.image].append(_image(row))
        stages: dict[str, list[StageRecord]] = defaultdict(list)
        query = (select(StageResult).where(StageResult.image != RUN_LEVEL)
                 .order_by(StageResult.started_at, StageResult.id))
        for row in session.scalars(query):
            stages[row.image].append(_stage(row))
        headers: dict[str, list[SnapshotHeader]] = defaultdict(list)
        query = select(FindingsSnapshot).order_by(FindingsSnapshot.recorded_at, FindingsSnapshot.id)
        for row in session.scalars(query):
            headers[row.image].append(SnapshotHeader(row.id, row.run_id, row.image, row.environment, row.digest,
                                                      row.recorded_at))
    return LedgerSnapshot(runs=runs, results=dict(results), stages=dict(stages), findings_snapshots=dict(headers))


def _run(row: PatchRun) -> RunRecord:
    return RunRecord(run_id=row.run_id, run_type=RunType(row.run_type), logical_date=row.logical_date,
                     window_start=row.window_start, window_end=row.window_end, started_at=row.started_at,
                     finished_at=row.finished_at, status=RunStatus(row.status))


def _image(row: ImageResult) -> ImageRecord:
    return ImageRecord(run_id=row.run_id, image=row.image, kind=row.kind, source_ref=row.source_ref,
                       before_digest=row.before_digest, candidate_tag=row.candidate_tag,
                       after_digest=row.after_digest, status=ImageStatus(row.status),
                       failure_stage=row.failure_stage, failure_reason=row.failure_reason,
                       packages=tuple(PackageChange.parse(change) for change in row.packages or ()),
                       updated_at=row.updated_at)


def _stage(row: StageResult) -> StageRecord:
    return StageRecord(run_id=row.run_id, image=row.image, stage=row.stage, outcome=StageOutcome(row.outcome),
                       started_at=row.started_at, duration_seconds=row.duration_seconds, detail=row.detail)


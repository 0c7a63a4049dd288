"""The patch ledger: what was patched, when, by which run, and how each stage went.

Every write is an upsert keyed on the run id (and image, and stage): an Airflow task that is
retried or cleared and rerun updates its rows instead of adding duplicates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from typing_extensions import TypedDict, Unpack

from patchpipe.db import utc_now
from patchpipe.errors import PatchpipeError
from patchpipe.ledger import snapshots
from patchpipe.ledger.models import (
    ImageResult,
    ImageStatus,
    PatchRun,
    RunStatus,
    RunType,
    StageOutcome,
    StageResult,
)
from patchpipe.scan.findings import Finding

_T = TypeVar("_T")
_Enum = TypeVar("_Enum", RunType, RunStatus, ImageStatus, StageOutcome)


@dataclass(frozen=True)
class PackageChange:
    """One package a patch moved; stored as ``{"name", "from", "to"}``."""

    name: str
    from_version: str | None
    to_version: str

    def to_json(self) -> dict[str, str | None]:
        return {"name": self.name, "from": self.from_version, "to": self.to_version}

    @classmethod
    def parse(cls, value: "PackageChange | Mapping[str, Any]") -> "PackageChange":
        if isinstance(value, PackageChange):
            return value
        if isinstance(value, Mapping) and value.get("name") and value.get("to"):
            return cls(str(value["name"]), None if value.get("from") is None else str(value["from"]), str(value["to"]))
        raise PatchpipeError(f"package change {value!r} needs 'name' and 'to' (and 'from' unless newly installed)")


class ImageFields(TypedDict, total=False):
    kind: str | None
    source_ref: str | None
    before_digest: str | None
    candidate_tag: str | None
    after_digest: str | None
    status: ImageStatus | str
    failure_stage: str | None
    failure_reason: str | None
    packages: Sequence[PackageChange | Mapping[str, Any]]


_IMAGE_FIELDS = frozenset(ImageFields.__annotations__)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    run_type: RunType
    logical_date: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus


@dataclass(frozen=True)
class ImageRecord:
    run_id: str
    image: str
    kind: str | None
    source_ref: str | None
    before_digest: str | None
    candidate_tag: str | None
    after_digest: str | None
    status: ImageStatus
    failure_stage: str | None
    failure_reason: str | None
    packages: tuple[PackageChange, ...]
    updated_at: datetime


@dataclass(frozen=True)
class StageRecord:
    run_id: str
    image: str
    stage: str
    outcome: StageOutcome
    started_at: datetime
    duration_seconds: float
    detail: Any


class Ledger:
    """Patch history in the patchpipe database (tables from ``patchpipe.db.create_schema``)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utc_now):
        self.engine = engine
        self.clock = clock

    def start_run(
        self,
        run_id: str,
        run_type: RunType | str,
        *,
        logical_date: datetime | None = None,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        started_at: datetime | None = None,
    ) -> RunRecord:
        """Record that a run started; starting it again (a rerun) marks it running once more."""
        kind = _enum(RunType, run_type, "run type")
        for name, value in (("logical_date", logical_date), ("window_start", window_start),
                            ("window_end", window_end), ("started_at", started_at)):
            _require_aware(value, name)

        def write(session: Session) -> RunRecord:
            run = session.get(PatchRun, run_id)
            if run is None:
                run = PatchRun(run_id=run_id, started_at=started_at or self.clock())
                session.add(run)
            run.run_type = kind.value
            run.logical_date = logical_date
            run.window_start = window_start
            run.window_end = window_end
            run.status = RunStatus.RUNNING.value
            run.finished_at = None
            session.flush()
            return _run_record(run)

        return self._write(write)

    def finish_run(self, run_id: str, status: RunStatus | str, *, finished_at: datetime | None = None) -> RunRecord:
        state = _enum(RunStatus, status, "run status")
        _require_aware(finished_at, "finished_at")

        def write(session: Session) -> RunRecord:
            run = _existing_run(session, run_id)
            run.status = state.value
            run.finished_at = finished_at or self.clock()
            session.flush()
            return _run_record(run)

        return self._write(write)

    def record_stage(
        self,
        run_id: str,
        image: str,
        stage: str,
        outcome: StageOutcome | str,
        started_at: datetime,
        duration: float,
        detail: Any = None,
    ) -> StageRecord:
        """Record (or, on a rerun, overwrite) how one stage went for one image in a run.

        ``detail`` is any JSON value: the stage's result, or what went wrong.
        """
        result = _enum(StageOutcome, outcome, "stage outcome")
        _require_json(detail, f"detail of stage {stage!r} of {image!r} in run {run_id!r}")
        _require_aware(started_at, "started_at")
        if duration < 0:
            raise PatchpipeError(f"stage {stage!r} of {image!r} in run {run_id!r}: duration {duration} is negative")

        def write(session: Session) -> StageRecord:
            _existing_run(session, run_id)
            row = session.scalars(
                select(StageResult).where(
                    StageResult.run_id == run_id, StageResult.image == image, StageResult.stage == stage
                )
            ).one_or_none()
            if row is None:
                row = StageResult(run_id=run_id, image=image, stage=stage)
                session.add(row)
            row.outcome = result.value
            row.started_at = started_at
            row.duration_seconds = float(duration)
            row.detail = detail
            session.flush()
            return _stage_record(row)

        return self._write(write)

    def record_image(self, run_id: str, image: str, **fields: Unpack[ImageFields]) -> ImageRecord:
        """Create or update the run's row for ``image`` with the given fields; others keep their value.

        The first record of an image in a run must give its ``status``.
        """
        unknown = set(fields) - _IMAGE_FIELDS
        if unknown:
            raise TypeError(f"record_image got unknown fields {sorted(unknown)}; known: {sorted(_IMAGE_FIELDS)}")
        values: dict[str, Any] = dict(fields)
        if "status" in values:
            values["status"] = _enum(ImageStatus, values["status"], "image status").value
        if "packages" in values:
            values["packages"] = [PackageChange.parse(change).to_json() for change in values["packages"] or ()]

        def write(session: Session) -> ImageRecord:
            _existing_run(session, run_id)
            row = session.scalars(
                select(ImageResult).where(ImageResult.run_id == run_id, ImageResult.image == image)
            ).one_or_none()
            if row is None:
                if "status" not in values:
                    raise PatchpipeError(f"first record of image {image!r} in run {run_id!r} must give its status")
                row = ImageResult(run_id=run_id, image=image, packages=[])
                session.add(row)
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = self.clock()
            session.flush()
            return _image_record(row)

        return self._write(write)

    def record_findings(
        self,
        run_id: str,
        image: str,
        digest: str,
        findings: Sequence[Finding | Mapping[str, Any]],
        published: Mapping[str, datetime],
        *,
        environment: str = snapshots.PRODUCTION,
    ) -> snapshots.FindingsSnapshotRecord:
        """Record (or, on a rerun, replace) the findings of ``image`` at ``digest`` as this run saw them.

        ``environment`` is ``production`` for the digest production runs (the assess stage, no-ops
        included) and ``candidate`` for the patched candidate (the scan stage; its digest is the
        local image id until it is pushed). ``published`` maps vulnerability ids (or aliases) to the
        advisory's published date (``advisories.published.published_dates``); an id it lacks is
        stored without one. An empty ``findings`` is recorded too: "nothing open" is history.
        """

        def write(session: Session) -> snapshots.FindingsSnapshotRecord:
            _existing_run(session, run_id)
            return snapshots.write_snapshot(session, run_id=run_id, image=image, environment=environment,
                                            digest=digest, findings=findings, published=published,
                                            recorded_at=self.clock())

        return self._write(write)

    def findings_snapshot(self, run_id: str, image: str,
                          environment: str = snapshots.PRODUCTION) -> snapshots.FindingsSnapshotRecord | None:
        """The run's snapshot of ``image`` in ``environment``, if recorded."""
        found = snapshots.read_snapshots(self.engine, run_id=run_id, image=image, environment=environment)
        return found[0] if found else None

    def findings_snapshots(self, *, image: str | None = None, environment: str | None = None,
                           run_id: str | None = None, since: datetime | None = None,
                           until: datetime | None = None) -> list[snapshots.FindingsSnapshotRecord]:
        """Snapshots with their findings, oldest first (``until`` is exclusive)."""
        return snapshots.read_snapshots(self.engine, image=image, environment=environment, run_id=run_id,
                                        since=since, until=until)

    def get_run(self, run_id: str) -> RunRecord | None:
        with Session(self.engine) as session:
            run = session.get(PatchRun, run_id)
            return _run_record(run) if run else None

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        with Session(self.engine) as session:
            return [_run_record(run) for run in session.scalars(select(PatchRun).order_by(PatchRun.started_at))]

    def latest_run(self) -> RunRecord | None:
        """The run that started last."""
        with Session(self.engine) as session:
            run = session.scalars(select(PatchRun).order_by(PatchRun.started_at.desc()).limit(1)).first()
            return _run_record(run) if run else None

    def run_summary(self, run_id: str) -> list[ImageRecord]:
        """Every image's result in the run, by image name."""
        query = select(ImageResult).where(ImageResult.run_id == run_id).order_by(ImageResult.image)
        return self._read_images(query)

    def stage_results(self, run_id: str, image: str | None = None) -> list[StageRecord]:
        """The run's stage outcomes (of one image if given), in the order they started."""
        query = select(StageResult).where(StageResult.run_id == run_id)
        if image is not None:
            query = query.where(StageResult.image == image)
        query = query.order_by(StageResult.started_at, StageResult.id)
        with Session(self.engine) as session:
            return [_stage_record(row) for row in session.scalars(query)]

    def image_history(self, image: str, limit: int | None = None) -> list[ImageRecord]:
        """The image's results across runs, most recently updated first."""
        query = (
            select(ImageResult)
            .where(ImageResult.image == image)
            .order_by(ImageResult.updated_at.desc(), ImageResult.id.desc())
            .limit(limit)
        )
        return self._read_images(query)

    def last_promoted(self, image: str) -> ImageRecord | None:
        """The image's most recent promotion: its ``after_digest`` is what should be live."""
        query = (
            select(ImageResult)
            .where(ImageResult.image == image, ImageResult.status == ImageStatus.PROMOTED.value)
            .order_by(ImageResult.updated_at.desc(), ImageResult.id.desc())
            .limit(1)
        )
        found = self._read_images(query)
        return found[0] if found else None

    def promoted_after(self, image: str, when: datetime) -> ImageRecord | None:
        """A promotion of ``image`` by a run that stands for a later time than ``when``: its window's
        end, or for a run without a window (manual, emergency) its start."""
        stands_for = func.coalesce(PatchRun.window_end, PatchRun.started_at)
        query = (
            select(ImageResult)
            .join(PatchRun, PatchRun.run_id == ImageResult.run_id)
            .where(ImageResult.image == image, ImageResult.status == ImageStatus.PROMOTED.value, stands_for > when)
            .order_by(stands_for.desc())
            .limit(1)
        )
        found = self._read_images(query)
        return found[0] if found else None

    def _read_images(self, query: Any) -> list[ImageRecord]:
        with Session(self.engine) as session:
            return [_image_record(row) for row in session.scalars(query)]

    def _write(self, work: Callable[[Session], _T]) -> _T:
        # On PostgreSQL two writers can both find no row and both insert; the unique constraint
        # rejects the second, whose retry then finds the row and updates it. (SQLite takes the
        # write lock at BEGIN, so there the race cannot happen.)
        try:
            return self._transaction(work)
        except IntegrityError:
            return self._transaction(work)

    def _transaction(self, work: Callable[[Session], _T]) -> _T:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            return work(session)


def _existing_run(session: Session, run_id: str) -> PatchRun:
    run = session.get(PatchRun, run_id)
    if run is None:
        raise PatchpipeError(f"patch run {run_id!r} is not in the ledger; start_run() must record it first")
    return run


def _enum(kind: type[_Enum], value: Any, what: str) -> _Enum:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise PatchpipeError(f"{what} {value!r} is not one of: {allowed}") from None


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name}={value.isoformat()} is naive; the ledger takes timezone-aware datetimes")


def _require_json(value: Any, what: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from None


def _run_record(run: PatchRun) -> RunRecord:
    return RunRecord(
        run_id=run.run_id,
        run_type=RunType(run.run_type),
        logical_date=run.logical_date,
        window_start=run.window_start,
        window_end=run.window_end,
        started_at=run.started_at,
        finished_at=run.finished_at,
        status=RunStatus(run.status),
    )


def _image_record(row: ImageResult) -> ImageRecord:
    return ImageRecord(
        run_id=row.run_id,
        image=row.image,
        kind=row.kind,
        source_ref=row.source_ref,
        before_digest=row.before_digest,
        candidate_tag=row.candidate_tag,
        after_digest=row.after_digest,
        status=ImageStatus(row.status),
        failure_stage=row.failure_stage,
        failure_reason=row.failure_reason,
        packages=tuple(PackageChange.parse(change) for change in row.packages or ()),
        updated_at=row.updated_at,
    )


def _stage_record(row: StageResult) -> StageRecord:
    return StageRecord(
        run_id=row.run_id,
        image=row.image,
        stage=row.stage,
        outcome=StageOutcome(row.outcome),
        started_at=row.started_at,
        duration_seconds=row.duration_seconds,
        detail=row.detail,
    )

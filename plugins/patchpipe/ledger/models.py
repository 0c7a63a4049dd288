"""The patch ledger's tables: runs, the result per image in a run, each stage's outcome, and the
findings of the digests a run saw.

Status values are plain strings in the database (portable, no enum types to migrate) and Python
enums at the API, which rejects anything else before it reaches a table.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patchpipe.db import Base, UTCDateTime


class RunType(str, Enum):
    """How Airflow started the run: every ``DagRunType`` value of Airflow 3.3, so any run can be recorded."""

    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"
    ASSET_TRIGGERED = "asset_triggered"
    OPERATOR_TRIGGERED = "operator_triggered"  # TriggerDagRunOperator
    ASSET_MATERIALIZATION = "asset_materialization"


class RunStatus(str, Enum):
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class ImageStatus(str, Enum):
    NOOP = "noop"  # nothing to patch
    PLANNED = "planned"  # dry run: a patch was planned, nothing built or pushed
    PATCHED = "patched"  # candidate built and pushed, not yet promoted
    PROMOTED = "promoted"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class StageOutcome(str, Enum):
    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILED = "failed"


class PatchRun(Base):
    __tablename__ = "patch_runs"

    run_id: Mapped[str] = mapped_column(String(250), primary_key=True)
    run_type: Mapped[str] = mapped_column(String(32))
    # None for manual and asset-triggered runs in Airflow 3.
    logical_date: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16))


class ImageResult(Base):
    __tablename__ = "image_results"
    __table_args__ = (
        UniqueConstraint("run_id", "image", name="uq_image_results_run_image"),
        Index("ix_image_results_image_updated", "image", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("patch_runs.run_id", ondelete="CASCADE"))
    image: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_ref: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    # Room for sha512 digests (135 characters), not only sha256.
    before_digest: Mapped[str | None] = mapped_column(String(160), nullable=True)
    candidate_tag: Mapped[str | None] = mapped_column(String(128), nullable=True)
    after_digest: Mapped[str | None] = mapped_column(String(160), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    failure_stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # [{"name": ..., "from": ..., "to": ...}]
    packages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StageResult(Base):
    __tablename__ = "stage_results"
    __table_args__ = (UniqueConstraint("run_id", "image", "stage", name="uq_stage_results_run_image_stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("patch_runs.run_id", ondelete="CASCADE"))
    image: Mapped[str] = mapped_column(String(512))
    stage: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_seconds: Mapped[float] = mapped_column(Float)
    detail: Mapped[Any] = mapped_column(JSON, nullable=True)


class FindingsSnapshot(Base):
    """The findings of one image digest as one run saw them: production's at assess, the candidate's at scan.

    A table of its own (not columns on ``image_results``): ``create_schema`` adds missing tables to an
    existing ledger but never adds columns. One row per (run, image, environment); recording again in
    a rerun replaces the row's findings. ``environment`` is ``production`` for the digest production
    runs and ``candidate`` for the patched candidate (not deployed anywhere yet when it is scanned).
    """

    __tablename__ = "findings_snapshots"
    __table_args__ = (
        UniqueConstraint("run_id", "image", "environment", name="uq_findings_snapshots_run_image_env"),
        Index("ix_findings_snapshots_image_env_recorded", "image", "environment", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("patch_runs.run_id", ondelete="CASCADE"))
    image: Mapped[str] = mapped_column(String(512))
    environment: Mapped[str] = mapped_column(String(32))
    # A registry digest; for a candidate scanned before its push, its local image id.
    digest: Mapped[str] = mapped_column(String(160))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SnapshotFinding(Base):
    """One finding of a snapshot: a vulnerability in one installed binary package (``scan.findings.Finding``).

    One row per finding, not a JSON list, so the history's counts (open findings per severity) are a
    GROUP BY in the database and a vulnerability's snapshots are found through an index.
    """

    __tablename__ = "snapshot_findings"
    __table_args__ = (
        Index("ix_snapshot_findings_snapshot", "snapshot_id"),
        Index("ix_snapshot_findings_vulnerability", "vulnerability_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("findings_snapshots.id", ondelete="CASCADE"))
    vulnerability_id: Mapped[str] = mapped_column(String(255))
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    package: Mapped[str] = mapped_column(String(255))
    source_package: Mapped[str | None] = mapped_column(String(255), nullable=True)
    installed: Mapped[str] = mapped_column(String(255))
    fixed: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    kev: Mapped[bool] = mapped_column(Boolean, default=False)
    epss: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The advisory's published date from the advisory store, when it knows one.
    published: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

"""What a run report says, gathered from the ledger rows of one run: the renderers only lay it out.

Everything comes from the ledger (image results, stage results and their details, findings
snapshots), so a report can be written again for any past run and says the same as the summary.
The texts here are plain; ``markdown`` and ``html`` escape them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from patchpipe.advisories.records import Severity
from patchpipe.errors import PatchpipeError
from patchpipe.ledger.models import ImageStatus, StageOutcome
from patchpipe.ledger.snapshots import CANDIDATE, PRODUCTION
from patchpipe.ledger.store import ImageRecord, Ledger, RunRecord, StageRecord
from patchpipe.lifecycle.record import RUN_LEVEL
from patchpipe.lifecycle.summary import FAILED, environment_result
from patchpipe.reports.wording import describe_rollback, duration, plural


@dataclass(frozen=True)
class StageLine:
    stage: str
    outcome: str
    started_at: datetime
    duration: str
    note: str  # the error of a failed stage, the reason of a skipped one, the key fact of a success


@dataclass(frozen=True)
class ScanSummary:
    findings_before: int | None
    findings_after: int | None
    fixed: tuple[str, ...]  # "CVE-... (package)"
    still_open: tuple[str, ...]
    introduced: tuple[str, ...]
    gate: str  # "passed", "failed: ..." or "" when not evaluated
    gate_decisions: tuple[str, ...]


@dataclass(frozen=True)
class ImageReport:
    record: ImageRecord
    staging: str  # environment_result: "ok", "failed at ...", "-"
    production: str
    why: str  # one line: the no-op reason, the failure, or what happened
    scan: ScanSummary | None
    rollbacks: tuple[str, ...]  # describe_rollback sentences
    approval: str  # "" when no approval was asked
    production_findings: dict[Severity, int] | None  # by severity, from the production snapshot
    candidate_findings: dict[Severity, int] | None
    stages: tuple[StageLine, ...]

    @property
    def name(self) -> str:
        return self.record.image

    @property
    def status(self) -> str:
        return self.record.status.value


@dataclass(frozen=True)
class RunReport:
    run: RunRecord
    images: tuple[ImageReport, ...]
    run_failures: tuple[StageLine, ...]  # run-level stages that failed (fetch_advisories, select_images...)
    totals: str

    @property
    def duration(self) -> str:
        if self.run.finished_at is None:
            return "still running"
        return duration(self.run.finished_at - self.run.started_at)


def build_report(ledger: Ledger, run_id: str) -> RunReport:
    """The report of ``run_id``; a PatchpipeError when the ledger has no such run."""
    run = ledger.get_run(run_id)
    if run is None:
        raise PatchpipeError(f"no patch run {run_id!r} in the ledger; nothing to report")
    stages = ledger.stage_results(run_id)
    by_image: dict[str, list[StageRecord]] = {}
    for stage in stages:
        by_image.setdefault(stage.image, []).append(stage)
    snapshots = {(s.image, s.environment): s for s in ledger.findings_snapshots(run_id=run_id)}
    images = tuple(
        _image_report(record, by_image.get(record.image, []), snapshots) for record in ledger.run_summary(run_id)
    )
    run_failures = tuple(_line(s) for s in by_image.get(RUN_LEVEL, []) if s.outcome == StageOutcome.FAILED)
    return RunReport(run, images, run_failures, _totals([i.record for i in images]))


def _image_report(record: ImageRecord, stages: list[StageRecord], snapshots: dict) -> ImageReport:
    latest = {s.stage: s for s in stages}  # stage_results is ordered by start: the last row wins
    production = snapshots.get((record.image, PRODUCTION))
    candidate = snapshots.get((record.image, CANDIDATE))
    return ImageReport(
        record=record,
        staging=environment_result(latest, "staging"),
        production=environment_result(latest, "production"),
        why=_why(record, latest),
        scan=_scan(latest.get("scan")),
        rollbacks=tuple(
            describe_rollback(env, latest[stage].detail)
            for env, stage in (("staging", "rollback_staging"), ("production", "rollback_production"))
            if stage in latest and latest[stage].outcome == StageOutcome.SUCCESS
            and isinstance(latest[stage].detail, dict)
        ),
        approval=_approval(latest.get("approve_production")),
        production_findings=production.counts_by_severity() if production else None,
        candidate_findings=candidate.counts_by_severity() if candidate else None,
        stages=tuple(_line(s) for s in stages),
    )


def _why(record: ImageRecord, stages: dict[str, StageRecord]) -> str:
    if record.failure_stage:
        return f"failed at {record.failure_stage}: {record.failure_reason or 'no reason recorded'}"
    if record.status == ImageStatus.NOOP:
        assess = stages.get("assess")
        reason = (assess.detail or {}).get("reason") if assess and isinstance(assess.detail, dict) else None
        return reason or record.failure_reason or "nothing to patch"
    if record.status == ImageStatus.PROMOTED:
        return f"patched {plural(len(record.packages), 'package')} and promoted to production"
    if record.status == ImageStatus.PATCHED:
        return "patched and pushed; not promoted"
    if record.status == ImageStatus.PLANNED:
        return f"dry run: {plural(len(record.packages), 'package')} planned, nothing built or pushed"
    return record.status.value


def _scan(stage: StageRecord | None) -> ScanSummary | None:
    if stage is None or not isinstance(stage.detail, dict):
        return None
    detail = stage.detail
    if stage.outcome == StageOutcome.FAILED:
        return ScanSummary(None, None, (), (), (), f"failed: {detail.get('error') or 'no reason recorded'}", ())
    gate = detail.get("gate") or {}
    verdict = "" if "passed" not in gate else ("passed" if gate["passed"] else "failed")
    decisions = tuple(
        f"{d.get('finding_id')} in {d.get('package')}: {d.get('outcome')} ({d.get('reason')})"
        for d in gate.get("decisions") or () if isinstance(d, dict)
    )
    return ScanSummary(detail.get("findings_before"), detail.get("findings_after"), tuple(detail.get("fixed") or ()),
                       tuple(detail.get("still_open") or ()), tuple(detail.get("introduced") or ()), verdict, decisions)


def _approval(stage: StageRecord | None) -> str:
    if stage is None or not isinstance(stage.detail, dict):
        return ""
    detail = stage.detail
    if detail.get("required") is False:
        return ""
    if "chosen" in detail:
        return f"{detail['chosen']} by {detail.get('by') or 'unknown'} at {detail.get('at') or 'unknown time'}"
    if stage.outcome == StageOutcome.FAILED:
        return f"failed: {detail.get('error') or 'no reason recorded'}"
    return ""


def _line(stage: StageRecord) -> StageLine:
    return StageLine(stage.stage, stage.outcome.value, stage.started_at, duration(stage.duration_seconds),
                     _note(stage))


def _note(stage: StageRecord) -> str:
    detail: Any = stage.detail
    if not isinstance(detail, dict):
        return ""
    if stage.outcome == StageOutcome.FAILED:
        return str(detail.get("error") or "")
    if stage.outcome == StageOutcome.SKIPPED:
        return str(detail.get("reason") or "")
    if isinstance(detail.get("upgrades"), list):
        return f"{plural(len(detail['upgrades']), 'upgrade')} planned"
    if detail.get("chosen"):
        return f"{detail['chosen']} by {detail.get('by') or 'unknown'}"
    for key in ("digest", "candidate", "image", "reason"):
        if isinstance(detail.get(key), str) and (key != "image" or "@" in detail[key]):
            return f"{key} {detail[key]}"
    return ""


def _totals(records: list[ImageRecord]) -> str:
    if not records:
        return "no images in this run"
    promoted = sum(r.status == ImageStatus.PROMOTED for r in records)
    noop = sum(r.status == ImageStatus.NOOP for r in records)
    failed = sum(r.status in FAILED for r in records)
    rolled_back = sum(r.status == ImageStatus.ROLLED_BACK for r in records)
    text = (f"{plural(len(records), 'image')}: {promoted} patched and promoted, {noop} with nothing to patch, "
            f"{failed} failed")
    return text + (f" ({rolled_back} rolled back)" if rolled_back else "")

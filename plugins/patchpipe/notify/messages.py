"""What each notification says, built from ledger rows and a few facts from the run: pure functions.

- failure: a stage failed for an image: which, why, the digests involved, and what happens next.
- rollback: an environment was taken off the candidate: from which digest to which, and the cause
  (the failed stage, and for an analysis its failing check with value and bound).
- approval: a promotion waits for an owner: the candidate, the deadline, where to answer.
- summary: the run's outcome per image, the report's location, and an overrun of its window.
- deadline: the run is still going past its deadline (Airflow's DeadlineAlert fired).

The wording of rollback causes is shared with the reports (``reports.wording``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from patchpipe.ledger.models import ImageStatus, StageOutcome
from patchpipe.ledger.store import ImageRecord, RunRecord, StageRecord
from patchpipe.lifecycle.summary import FAILED
from patchpipe.notify.notification import Notification
from patchpipe.reports.wording import describe_rollback, duration, plural, short_image, timestamp

# What the DAG does after a stage fails (its trigger rules), said in the failure message.
_NEXT = {
    "deploy_staging": "staging is rolled back next; production is untouched",
    "analyze_staging": "staging is rolled back next; production is untouched",
    "promote": "production (tag and service) is rolled back next",
    "analyze_production": "production (tag and service) is rolled back next",
    "scan": "the candidate is not pushed or deployed",
    "rollback_staging": "staging may still run the candidate: check it by hand",
    "rollback_production": "production may still run the candidate: check it by hand",
}


def stage_digests(stages: Sequence[StageRecord]) -> dict[str, str]:
    """What the ledger knows so far of an image's digests in a run: production's (inventory), the
    candidate's tag (patch) and its digest (push). Only the keys known are present."""
    found: dict[str, str] = {}
    for stage in stages:
        detail = stage.detail if stage.outcome == StageOutcome.SUCCESS and isinstance(stage.detail, dict) else {}
        if stage.stage == "inventory" and detail.get("digest"):
            found["production"] = str(detail["digest"])
            if detail.get("ref"):
                found["production_ref"] = str(detail["ref"])
        elif stage.stage == "patch" and detail.get("candidate"):
            found["candidate"] = str(detail["candidate"])
        elif stage.stage == "push" and detail.get("digest"):
            found["candidate_digest"] = str(detail["digest"])
    return found


def failure(run_id: str, image: str | None, stage: str, error: str | None,
            stages: Sequence[StageRecord] = (), *, task: str | None = None, attempt: int | None = None) -> Notification:
    """A stage failed. ``stages``: the image's ledger rows in the run (for its digests)."""
    digests = stage_digests(stages)
    subject = image or "the run"
    facts = [("Image", image or "-"), ("Stage", stage), ("Run", run_id)]
    if task:
        facts.append(("Task", task if attempt is None else f"{task} (try {attempt})"))
    facts += _digest_facts(digests)
    details = (f"Next: {_NEXT[stage]}",) if stage in _NEXT else ()
    return Notification(
        kind="failure",
        title=f"patchpipe: {stage} failed for {subject}",
        summary=f"{stage} failed for {subject}: {error or 'no error message'}",
        facts=tuple(facts),
        details=details,
    )


def rollback(run_id: str, image: str, environment: str, detail: dict[str, Any]) -> Notification:
    """An environment was rolled back; ``detail`` is the rollback stage's ledger detail."""
    cause = detail.get("cause") or {}
    facts = [("Image", image), ("Environment", environment), ("Run", run_id)]
    if detail.get("previous_image"):
        facts.append(("From", str(detail["previous_image"])))
    if detail.get("image"):
        facts.append(("To", str(detail["image"])))
    if cause.get("stage"):
        facts.append(("Failed stage", str(cause["stage"])))
    check = cause.get("check") or {}
    if check.get("check"):
        facts.append(("Check", f"{check['check']}: {check.get('value')} (bound {check.get('bound')})"))
    if cause.get("error"):
        facts.append(("Reason", str(cause["error"])))
    if detail.get("tag_restored"):
        facts.append(("Production tag", "restored"))
    return Notification(
        kind="rollback",
        title=f"patchpipe: {environment} of {image} rolled back",
        summary=f"{image}: {describe_rollback(environment, detail)}",
        facts=tuple(facts),
    )


def approval(run_id: str, image: str, *, candidate: str | None, candidate_digest: str | None, question: str,
             explanation: str = "", timeout: timedelta | None = None, owners: Sequence[str] = (),
             link: str | None = None) -> Notification:
    """A promotion waits for an owner's answer in the Airflow UI (Required Actions)."""
    facts = [("Image", image), ("Run", run_id)]
    if candidate:
        facts.append(("Candidate", candidate))
    if candidate_digest:
        facts.append(("Candidate digest", candidate_digest))
    if owners:
        facts.append(("Owners", ", ".join(owners)))
    if timeout is not None:
        facts.append(("Answer within", f"{duration(timeout)}; no answer rejects the promotion"))
    return Notification(
        kind="approval",
        title=f"patchpipe: {image} waits for approval to reach production",
        summary=question + (f" {explanation}" if explanation else ""),
        facts=tuple(facts),
        link=link,
    )


def summary(run: RunRecord, records: Sequence[ImageRecord], *, report: str | None = None,
            limit: timedelta | None = None, now: datetime | None = None) -> Notification:
    """The run's outcome: one line per image, totals, the report, and an overrun of ``limit``."""
    failed = [r for r in records if r.status in FAILED]
    promoted = [r for r in records if r.status == ImageStatus.PROMOTED]
    noop = [r for r in records if r.status == ImageStatus.NOOP]
    status = run.status.value
    totals = (f"{plural(len(records), 'image')}: {len(promoted)} patched and promoted, {len(noop)} with nothing "
              f"to patch, {len(failed)} failed")
    facts = [("Run", run.run_id), ("Status", status), ("Type", run.run_type.value),
             ("Started", timestamp(run.started_at))]
    end = run.finished_at or now
    if end is not None:
        facts.append(("Duration", duration(end - run.started_at)))
    late = overrun(run, limit, now) if limit is not None else None
    if late is not None:
        facts.append(("Overrun", f"{duration(late)} past its {duration(limit)} window"))
    if report:
        facts.append(("Report", report))
    return Notification(
        kind="summary",
        title=f"patchpipe run {run.run_id}: {status}" + (f", {len(failed)} failed" if failed else ""),
        summary=totals + ("." if late is None else f"; the run overran its window by {duration(late)}."),
        facts=tuple(facts),
        details=tuple(_image_line(r) for r in records),
    )


def deadline(dag_id: str, run_id: str, *, deadline_time: datetime | None, queued_at: datetime | None,
             records: Sequence[ImageRecord] = (), stages: Sequence[StageRecord] = ()) -> Notification:
    """The run is still running past its deadline; what is done and what is still in progress."""
    done = {r.image for r in records}
    latest: dict[str, StageRecord] = {}
    for stage in stages:
        if stage.image not in done:
            latest[stage.image] = stage  # ledger rows come in start order: the last is the latest
    details = [f"{r.image}: {r.status.value}" for r in records]
    details += [f"{image}: in progress, last stage {s.stage} ({s.outcome.value})"
                for image, s in sorted(latest.items())]
    facts = [("DAG", dag_id), ("Run", run_id), ("Queued", timestamp(queued_at)), ("Deadline", timestamp(deadline_time))]
    return Notification(
        kind="deadline",
        title=f"patchpipe: run {run_id} overran its window",
        summary=f"{dag_id} run {run_id} is still running at its deadline {timestamp(deadline_time)}.",
        facts=tuple(facts),
        details=tuple(details),
    )


def overrun(run: RunRecord, limit: timedelta, now: datetime | None = None) -> timedelta | None:
    """How far the run went past ``limit`` from its start (finished, or still running at ``now``);
    None when within it or when unknown."""
    end = run.finished_at or now
    if end is None:
        return None
    late = end - run.started_at - limit
    return late if late > timedelta(0) else None


def _image_line(record: ImageRecord) -> str:
    line = f"{record.image}: {record.status.value}"
    if record.packages:
        line += f", {plural(len(record.packages), 'package')}"
    if record.status == ImageStatus.PROMOTED and record.before_digest and record.after_digest:
        line += f", {short_image(record.before_digest)} -> {short_image(record.after_digest)}"
    if record.status == ImageStatus.ROLLED_BACK and record.before_digest:
        line += f", production back on {short_image(record.before_digest)}"
    if record.failure_stage:
        line += f"; failed at {record.failure_stage}: {record.failure_reason or 'no reason recorded'}"
    elif record.status == ImageStatus.NOOP and record.failure_reason:
        line += f": {record.failure_reason}"  # an image the run left out says why
    return line


def _digest_facts(digests: dict[str, str]) -> list[tuple[str, str]]:
    facts = []
    if "production" in digests:
        facts.append(("Production digest", digests["production"]))
    if "candidate" in digests:
        facts.append(("Candidate", digests["candidate"]))
    if "candidate_digest" in digests:
        facts.append(("Candidate digest", digests["candidate_digest"]))
    return facts

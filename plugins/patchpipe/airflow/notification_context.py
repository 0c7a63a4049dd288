"""From an Airflow callback context to a Notification: which image, stage and run it is about, read
from the context Airflow passes and from the ledger rows of the run.

Airflow passes three shapes of context, and each builder takes the one it is called with:

- a task callback (``on_failure_callback``, ``on_success_callback``): ``task`` (the rendered operator,
  whose ``image`` names the image), ``task_instance``, ``run_id``, ``dag_run`` and, on failure,
  ``exception``;
- a Human-in-the-loop notifier (``notifiers=`` of the approval operator): the same, while the task
  waits for an answer;
- a DeadlineAlert callback (triggerer or executor): only ``dag_run`` (a dict of the REST API's DAG
  run fields) and ``deadline`` (``id``, ``deadline_time``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from patchpipe import settings
from patchpipe.db import utc_now
from patchpipe.ledger.models import StageOutcome
from patchpipe.ledger.store import Ledger
from patchpipe.notify import messages
from patchpipe.notify.notification import KINDS, Notification
from patchpipe.notify.settings import run_deadline
from patchpipe.reports.files import report_files

log = logging.getLogger(__name__)


def build(event: str, context: Mapping[str, Any], ledger: Callable[[], Ledger]) -> Notification | None:
    """The notification for ``event``, or None when there is nothing to say (a rollback that did
    not happen). ``ledger`` opens the ledger only when the event needs it."""
    if event not in KINDS:
        raise ValueError(f"notification event {event!r} is not one of {', '.join(KINDS)}")
    return _BUILDERS[event](context, ledger)


def task_image(context: Mapping[str, Any]) -> str | None:
    """The image a stage task works on: its rendered ``image`` field (None for run-level tasks)."""
    image = getattr(context.get("task"), "image", None)
    return image if isinstance(image, str) and image else None


def task_stage(context: Mapping[str, Any]) -> str:
    """The ledger's stage name: the operator's ``stage``, else the task id without its group."""
    stage = getattr(context.get("task"), "stage", None)
    if isinstance(stage, str) and stage:
        return stage
    ti = context.get("task_instance") or context.get("ti")
    task_id = getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", None) or "unknown"
    return str(task_id).rsplit(".", 1)[-1]


def run_id_of(context: Mapping[str, Any]) -> str:
    run_id = context.get("run_id") or _field(context.get("dag_run"), "run_id", "dag_run_id")
    if not run_id:
        raise ValueError("the Airflow context names no run (no run_id, no dag_run)")
    return str(run_id)


def _failure(context: Mapping[str, Any], ledger: Callable[[], Ledger]) -> Notification:
    run_id, image, stage = run_id_of(context), task_image(context), task_stage(context)
    exception = context.get("exception")
    stages = ledger().stage_results(run_id, image) if image else []
    error = str(exception) if exception is not None else None
    if error is None:
        failed = [s for s in stages if s.stage == stage and s.outcome == StageOutcome.FAILED]
        error = (failed[-1].detail or {}).get("error") if failed and isinstance(failed[-1].detail, dict) else None
    ti = context.get("task_instance") or context.get("ti")
    return messages.failure(run_id, image, stage, error, stages, task=getattr(ti, "task_id", None),
                            attempt=getattr(ti, "try_number", None))


def _rollback(context: Mapping[str, Any], ledger: Callable[[], Ledger]) -> Notification | None:
    run_id, image, stage = run_id_of(context), task_image(context), task_stage(context)
    if image is None:
        return None
    rows = [s for s in ledger().stage_results(run_id, image) if s.stage == stage]
    if not rows or rows[-1].outcome != StageOutcome.SUCCESS or not isinstance(rows[-1].detail, dict):
        return None  # skipped (nothing to roll back) or failed (the failure notification tells)
    environment = getattr(context.get("task"), "environment", None) or stage.removeprefix("rollback_")
    return messages.rollback(run_id, image, str(environment), rows[-1].detail)


def _approval(context: Mapping[str, Any], ledger: Callable[[], Ledger]) -> Notification | None:
    task = context.get("task")
    run_id, image = run_id_of(context), task_image(context)
    if image is None:
        return None
    candidate = getattr(task, "candidate", None)
    digests = messages.stage_digests(ledger().stage_results(run_id, image))
    timeout = getattr(task, "response_timeout", None)
    return messages.approval(
        run_id, image,
        candidate=(candidate or {}).get("candidate") if isinstance(candidate, Mapping) else digests.get("candidate"),
        candidate_digest=digests.get("candidate_digest"),
        question=str(getattr(task, "subject", None) or f"Promote {image} to production?"),
        explanation=str(getattr(task, "body", None) or ""),
        timeout=timeout if isinstance(timeout, timedelta) else None,
        owners=image_owners(task, image),
        link=_approval_link(context),
    )


def _summary(context: Mapping[str, Any], ledger: Callable[[], Ledger]) -> Notification:
    run_id = run_id_of(context)
    book = ledger()
    run = book.get_run(run_id)
    if run is None:
        raise ValueError(f"run {run_id!r} is not in the ledger; the summary notification has nothing to say")
    files = report_files(run_id)
    report = next((str(p) for p in (files.html, files.markdown) if p.exists()), None)
    return messages.summary(run, book.run_summary(run_id), report=report, limit=run_deadline(), now=utc_now())


def _deadline(context: Mapping[str, Any], ledger: Callable[[], Ledger]) -> Notification:
    dag_run = context.get("dag_run") or {}
    run_id = run_id_of(context)
    deadline = context.get("deadline") or {}
    records, stages = [], []
    try:
        book = ledger()
        records, stages = book.run_summary(run_id), book.stage_results(run_id)
    except Exception as exc:  # the alert matters more than its detail: send it without the ledger's
        log.warning("deadline notification of run %s: cannot read the ledger (%s); sending it without "
                    "the images' progress", run_id, exc)
    return messages.deadline(str(_field(dag_run, "dag_id") or "patch_lifecycle"), run_id,
                             deadline_time=_time(deadline.get("deadline_time")),
                             queued_at=_time(_field(dag_run, "queued_at")), records=records, stages=stages)


def image_owners(task: Any, image: str) -> list[str]:
    """The image's ``owners`` from the fleet manifest (the task's ``fleet_path``, else the configured one)."""
    from patchpipe.fleet import load_fleet

    path = getattr(task, "fleet_path", None) or settings.fleet_path()
    try:
        fleet = load_fleet(path)
    except Exception as exc:
        log.warning("cannot name the owners of %s: the fleet manifest %s does not load (%s)", image, path, exc)
        return []
    return list(next((entry.owners for entry in [*fleet.images, *fleet.bases] if entry.name == image), []))


def _approval_link(context: Mapping[str, Any]) -> str | None:
    """The Required Actions page of the waiting task (needs ``[api] base_url``)."""
    try:
        from airflow.providers.standard.operators.hitl import HITLOperator

        return HITLOperator.generate_link_to_ui_from_context(context=context)  # type: ignore[arg-type]
    except Exception:
        return None


def _field(value: Any, *names: str) -> Any:
    for name in names:
        found = value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)
        if found:
            return found
    return None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


_BUILDERS: dict[str, Callable[[Mapping[str, Any], Callable[[], Ledger]], Notification | None]] = {
    "failure": _failure, "rollback": _rollback, "approval": _approval, "summary": _summary, "deadline": _deadline,
}

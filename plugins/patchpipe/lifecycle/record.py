"""Stage 10: record. Derive the image's outcome in this run from its stage results and write it to the ledger."""

from __future__ import annotations

from patchpipe.ledger.models import ImageStatus, StageOutcome

RUN_LEVEL = "(run)"  # the ledger's image name for stages that concern the whole run


ROLLBACK_OF = {"rollback_staging": "deploy_staging", "rollback_production": "promote"}


def current_attempt(stage_results) -> dict:
    """The stage rows that describe the image's latest attempt in this run, by stage name.

    A cleared and rerun task group leaves rows of stages that did not run again (a rollback whose
    trigger rule was not met, this record stage itself): they must not decide the outcome.
    """
    stages = {s.stage: s for s in stage_results if s.stage != "record"}
    if "inventory" in stages:
        began = stages["inventory"].started_at
        stages = {n: s for n, s in stages.items() if s.started_at >= began}
    for rollback, undone in ROLLBACK_OF.items():
        if rollback in stages and undone in stages and stages[rollback].started_at < stages[undone].started_at:
            del stages[rollback]
    return stages


def record(svc, run_id: str, name: str) -> dict:
    stages = current_attempt(svc.ledger.stage_results(run_id, name))
    ok = {n for n, s in stages.items() if s.outcome == StageOutcome.SUCCESS}
    failed = [s for s in stages.values() if s.outcome == StageOutcome.FAILED]
    inventoried = _detail(stages, "inventory")
    plan = _detail(stages, "assess")
    patched = _detail(stages, "patch")
    pushed = _detail(stages, "push")

    failure_stage = failure_reason = None
    if failed:
        failure_stage, failure_reason = failed[0].stage, (failed[0].detail or {}).get("error")
    elif not inventoried:
        run_failures = [s for s in svc.ledger.stage_results(run_id, RUN_LEVEL) if s.outcome == StageOutcome.FAILED]
        failure_stage = run_failures[0].stage if run_failures else "inventory"
        failure_reason = "did not run: " + ((run_failures[0].detail or {}).get("error") if run_failures else "unknown")

    if "rollback_production" in ok:
        status = ImageStatus.ROLLED_BACK
    elif failure_stage:
        status = ImageStatus.FAILED
    elif "promote" in ok:
        status = ImageStatus.PROMOTED
    elif stages.get("assess") and stages["assess"].outcome == StageOutcome.SKIPPED:
        status = ImageStatus.NOOP
    elif stages.get("patch") and stages["patch"].outcome == StageOutcome.SKIPPED:
        status = ImageStatus.PLANNED  # a dry run
    else:
        status = ImageStatus.PATCHED if "push" in ok else ImageStatus.FAILED
    if "rollback_staging" in ok and failure_reason:
        failure_reason += f" (staging rolled back to {stages['rollback_staging'].detail.get('image')})"

    target = svc.target(name)
    fields = dict(
        kind=getattr(target, "kind", "base"),
        source_ref=inventoried.get("ref"),
        before_digest=inventoried.get("digest"),
        candidate_tag=patched.get("candidate"),
        after_digest=(_detail(stages, "promote").get("digest") or pushed.get("digest")),
        status=status,
        failure_stage=failure_stage,
        failure_reason=failure_reason,
        packages=[{"name": u["name"], "from": u["installed"], "to": u["target"]} for u in plan.get("upgrades", [])],
    )
    svc.ledger.record_image(run_id, name, **fields)
    return {**fields, "status": status.value}


def _detail(stages: dict, stage: str) -> dict:
    found = stages.get(stage)
    return found.detail if found and found.outcome == StageOutcome.SUCCESS and isinstance(found.detail, dict) else {}

"""The run's summary: per image what was patched, the digests, and how staging and production went."""

from __future__ import annotations

from patchpipe.ledger.models import ImageStatus, StageOutcome

FAILED = {ImageStatus.FAILED, ImageStatus.ROLLED_BACK}
ENVIRONMENT_STAGES = {
    "staging": ("deploy_staging", "analyze_staging", "rollback_staging"),
    "production": ("promote", "analyze_production", "rollback_production"),
}


def environment_result(stages: dict, env: str) -> str:
    """``ok``, ``failed at <stage>`` (``, rolled back``), or ``-`` when the image never got there."""
    deploy, smoke, rollback = ENVIRONMENT_STAGES[env]
    outcomes = {name: stages[name].outcome for name in (deploy, smoke, rollback) if name in stages}
    failed = [name for name in (deploy, smoke) if outcomes.get(name) == StageOutcome.FAILED]
    if failed:
        rolled_back = outcomes.get(rollback) == StageOutcome.SUCCESS
        return f"failed at {failed[0]}" + (", rolled back" if rolled_back else "")
    if outcomes.get(smoke) == StageOutcome.SUCCESS:
        return "ok"
    return "-"


def format_summary(records, stage_results) -> str:
    """``records``: the ledger's image rows of a run; ``stage_results``: its stage rows."""
    if not records:
        return "no images in this run"
    by_image: dict[str, dict] = {}
    for stage in stage_results:
        by_image.setdefault(stage.image, {})[stage.stage] = stage
    lines = []
    for r in records:
        stages = by_image.get(r.image, {})
        lines.append(f"{r.image} ({r.kind}): {r.status.value}")
        lines.append(f"  source      {r.source_ref or '-'} @ {r.before_digest or '-'}")
        if r.candidate_tag:
            lines.append(f"  candidate   {r.candidate_tag} @ {r.after_digest or '-'}")
        for change in r.packages:
            lines.append(f"  package     {change.name} {change.from_version} -> {change.to_version}")
        if r.kind != "base" and r.status != ImageStatus.NOOP:
            lines.append(f"  staging     {environment_result(stages, 'staging')}")
            lines.append(f"  production  {environment_result(stages, 'production')}")
        if r.failure_stage:
            lines.append(f"  failed at   {r.failure_stage}: {r.failure_reason}")
    promoted = sum(r.status == ImageStatus.PROMOTED for r in records)
    noop = sum(r.status == ImageStatus.NOOP for r in records)
    failed = sum(r.status in FAILED for r in records)
    lines.append(f"{len(records)} images: {promoted} patched and promoted, {noop} with nothing to patch, "
                 f"{failed} failed")
    if noop == len(records):
        lines.append("nothing left to patch")
    return "\n".join(lines)

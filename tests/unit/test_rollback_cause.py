"""Why an environment was rolled back (``lifecycle.deploy.failure_cause``), as the ledger keeps it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from patchpipe.ledger.models import StageOutcome
from patchpipe.ledger.store import StageRecord
from patchpipe.lifecycle.deploy import ROLLED_BACK_FOR, failure_cause

T0 = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)
FAILING = {"check": "request-duration", "kind": "metric", "iteration": 2, "at_seconds": 10.0, "passed": False,
           "value": 1003.4, "bound": "<= 500", "detail": "1003.4 is above the maximum 500"}


def row(stage: str, outcome: StageOutcome, detail, minutes: int = 0) -> StageRecord:
    return StageRecord(run_id="r1", image="demo-web", stage=stage, outcome=outcome,
                       started_at=T0 + timedelta(minutes=minutes), duration_seconds=1.0, detail=detail)


def test_a_failed_analysis_names_its_failing_check_with_value_and_bound() -> None:
    rows = [row("deploy_staging", StageOutcome.SUCCESS, {}),
            row("analyze_staging", StageOutcome.FAILED, {"error": "request-duration failed", "type": "AnalysisFailed",
                                                         "analysis": {"failing": FAILING}}, minutes=1)]
    assert failure_cause(rows, ROLLED_BACK_FOR["staging"]) == {
        "stage": "analyze_staging", "error": "request-duration failed",
        "check": {"check": "request-duration", "value": 1003.4, "bound": "<= 500", "iteration": 2,
                  "detail": "1003.4 is above the maximum 500"}}


def test_a_failed_rollout_is_the_cause_without_a_check() -> None:
    rows = [row("promote", StageOutcome.FAILED, {"error": "Swarm rolled demo-web-production back", "type": "DeployError"})]
    assert failure_cause(rows, ROLLED_BACK_FOR["production"]) == {
        "stage": "promote", "error": "Swarm rolled demo-web-production back"}


def test_only_the_environments_own_stages_count_and_the_latest_failure_wins() -> None:
    rows = [row("analyze_staging", StageOutcome.FAILED, {"error": "old attempt"}),
            row("analyze_production", StageOutcome.FAILED, {"error": "production"}, minutes=5),
            row("analyze_staging", StageOutcome.FAILED, {"error": "rerun"}, minutes=3)]
    assert failure_cause(rows, ROLLED_BACK_FOR["staging"])["error"] == "rerun"
    assert failure_cause([row("deploy_staging", StageOutcome.SUCCESS, {})], ROLLED_BACK_FOR["staging"]) == {}

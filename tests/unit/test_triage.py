"""TriageOperator: no-ops recorded in one task, everything else passed on to its own task group.

The ledger is a real SQLite one; inventory and assessment are replaced by what they would return,
since reading an image needs a registry (the e2e runs cover the real ones).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from support.demo_services import demo_services
from patchpipe.airflow.operators import triage
from patchpipe.errors import PatchpipeError
from patchpipe.ledger.models import ImageStatus, RunType, StageOutcome

RUN = "manual__2026-11-29T06:00:00+00:00"


@pytest.fixture
def svc(tmp_path: Path):
    services = demo_services(tmp_path)
    services.ledger.start_run(RUN, RunType.MANUAL)
    yield services
    services.engine.dispose()


def test_no_ops_are_recorded_and_the_rest_is_passed_on(svc, monkeypatch):
    def inventory(services, name):
        if name == "broken":
            raise RuntimeError("registry answered 500")
        return {"image": name, "digest": f"sha256:{name}"}

    def plan_or_skip(services, context, name, inventoried):
        if name == "demo-web":
            raise AirflowSkipException(f"{name}: nothing to patch at {inventoried['digest']}")
        return {"image": name, "upgrades": [{"name": "libssl3"}]}

    monkeypatch.setattr("patchpipe.lifecycle.inventory.inventory", inventory)
    monkeypatch.setattr(triage, "plan_or_skip", plan_or_skip)
    operator = triage.TriageOperator(task_id="triage", images=["demo-web", "vendor-app", "broken"])

    assert operator.run(svc, {"run_id": RUN}) == ["vendor-app", "broken"]

    assert {r.image: r.status for r in svc.ledger.run_summary(RUN)} == {"demo-web": ImageStatus.NOOP}
    noop = {s.stage: s for s in svc.ledger.stage_results(RUN, "demo-web")}
    assert noop["assess"].outcome == StageOutcome.SKIPPED
    assert noop["assess"].detail == {"reason": "demo-web: nothing to patch at sha256:demo-web"}
    (failed,) = svc.ledger.stage_results(RUN, "broken")  # recorded; the group's own inventory overwrites it
    assert (failed.stage, failed.outcome, failed.detail["error"]) == ("inventory", StageOutcome.FAILED,
                                                                       "registry answered 500")
    assert [s.stage for s in svc.ledger.stage_results(RUN, "vendor-app")] == ["inventory", "assess"]


def test_more_images_to_patch_than_airflow_maps_fail_triage_saying_how_to_raise_the_limit(svc, monkeypatch):
    monkeypatch.setattr("patchpipe.lifecycle.inventory.inventory",
                        lambda services, name: {"image": name, "digest": "sha256:a"})
    monkeypatch.setattr(triage, "plan_or_skip", lambda services, context, name, inventoried: {"image": name})
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")
    operator = triage.TriageOperator(task_id="triage", images=["demo-web", "vendor-app", "third"])
    with pytest.raises(PatchpipeError, match=r"this run has 3 images to patch, but .* at most 2 .*"
                                             r"AIRFLOW__CORE__MAX_MAP_LENGTH=4096"):
        operator.run(svc, {"run_id": RUN})
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    assert operator.run(svc, {"run_id": RUN}) == ["demo-web", "vendor-app", "third"]

"""record(): an image's outcome in a run, derived from its stage rows in a real SQLite ledger.

Stage rows are written the way StageOperator writes them: the stage's return value on success,
``{"error", "type"}`` on failure, ``{"reason"}`` on skip; a task that never ran writes no row.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from support.demo_services import demo_services
from patchpipe.ledger.models import ImageStatus, RunType, StageOutcome
from patchpipe.ledger.store import PackageChange
from patchpipe.lifecycle.record import RUN_LEVEL, record
from patchpipe.plan import PackageUpgrade, PatchPlan

RUN = "scheduled__2026-11-24T02:00:00+00:00"
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
OLD = "sha256:" + "0" * 64
NEW = "sha256:" + "1" * 64
PRODUCTION = "127.0.0.1:5000/demo/web:1.0"
CANDIDATE = "127.0.0.1:5000/demo/web:1.0-patch.20261124.1"
PLAN = PatchPlan(image="demo-web", source_ref=PRODUCTION, source_digest=OLD, release="bookworm",
                 package_manager="dpkg",
                 upgrades=[PackageUpgrade("libssl3", "3.0.11-1~deb12u1", "3.0.15-1~deb12u1", "openssl"),
                           PackageUpgrade("perl-base", "5.36.0-7", "5.36.0-7+deb12u1", "perl")])
PACKAGES = (PackageChange("libssl3", "3.0.11-1~deb12u1", "3.0.15-1~deb12u1"),
            PackageChange("perl-base", "5.36.0-7", "5.36.0-7+deb12u1"))


@pytest.fixture
def svc(tmp_path: Path):
    services = demo_services(tmp_path)
    services.ledger.start_run(RUN, RunType.SCHEDULED, logical_date=T0)
    yield services
    services.engine.dispose()


class Stages:
    """Writes stage rows as StageOperator does, one second apart (the ledger orders by start time)."""

    def __init__(self, svc, image: str = "demo-web", start: datetime = T0):
        self.svc, self.image, self.clock = svc, image, start

    def _write(self, stage: str, outcome: StageOutcome, detail, image: str | None) -> None:
        self.clock += timedelta(seconds=1)
        self.svc.ledger.record_stage(RUN, image or self.image, stage, outcome, self.clock, 0.5, detail)

    def ok(self, stage: str, detail=None, image: str | None = None) -> "Stages":
        self._write(stage, StageOutcome.SUCCESS, detail, image)
        return self

    def fail(self, stage: str, error: str, kind: str = "PatchpipeError", image: str | None = None) -> "Stages":
        self._write(stage, StageOutcome.FAILED, {"error": error, "type": kind}, image)
        return self

    def skip(self, stage: str, reason: str, image: str | None = None) -> "Stages":
        self._write(stage, StageOutcome.SKIPPED, {"reason": reason}, image)
        return self

    # The stages' real return values (see patchpipe.lifecycle), trimmed to what matters.
    def through_push(self) -> "Stages":
        return (self.ok("inventory", {"image": self.image, "ref": PRODUCTION, "digest": OLD, "inventory": {}})
                .ok("assess", PLAN.to_dict())
                .ok("patch", {"image": self.image, "candidate": CANDIDATE, "build_id": "1.0-patch.20261124.1",
                              "base_digest": None, "image_id": "sha256:" + "9" * 64, "digest": None,
                              "reused": False})
                .ok("verify", {"candidate": CANDIDATE, "changes": ["libssl3 3.0.11-1~deb12u1 -> 3.0.15-1~deb12u1"]})
                .ok("push", {"candidate": CANDIDATE, "digest": NEW, "pushed": True}))

    def through_staging(self) -> "Stages":
        return (self.through_push()
                .ok("deploy_staging", rollout("demo-web-staging", OLD, NEW))
                .ok("analyze_staging", [{"name": "healthz", "passed": True}]))

    def promoted(self) -> "Stages":
        return (self.through_staging()
                .ok("promote", {"production": PRODUCTION, "digest": NEW,
                                "rollout": rollout("demo-web-production", OLD, NEW)})
                .ok("analyze_production", [{"name": "healthz", "passed": True}]))


def rollout(target: str, previous: str, image: str) -> dict:
    return {"target": target, "previous_image": f"{PRODUCTION}@{previous}", "image": f"{PRODUCTION}@{image}",
            "changed": True}


def stored(svc, image: str = "demo-web"):
    (row,) = [r for r in svc.ledger.run_summary(RUN) if r.image == image]
    return row


# --- promoted, no-op -----------------------------------------------------------------------------


def test_an_image_whose_every_stage_succeeded_is_promoted(svc) -> None:
    Stages(svc).promoted()
    result = record(svc, RUN, "demo-web")
    assert result["status"] == "promoted"
    row = stored(svc)
    assert (row.status, row.kind, row.failure_stage, row.failure_reason) == (ImageStatus.PROMOTED, "rebuild", None, None)


def test_the_ledger_row_takes_refs_digests_candidate_and_packages_from_the_stage_details(svc) -> None:
    Stages(svc).promoted()
    record(svc, RUN, "demo-web")
    row = stored(svc)
    assert (row.source_ref, row.before_digest, row.candidate_tag, row.after_digest) == (PRODUCTION, OLD, CANDIDATE, NEW)
    assert row.packages == PACKAGES


def test_the_promoted_digest_wins_over_the_pushed_one(svc) -> None:
    promoted_digest = "sha256:" + "2" * 64  # what promote reported the production tag to point at
    (Stages(svc).through_staging()
     .ok("promote", {"production": PRODUCTION, "digest": promoted_digest, "rollout": {}})
     .ok("analyze_production", []))
    assert record(svc, RUN, "demo-web")["after_digest"] == promoted_digest


def test_an_image_with_nothing_to_patch_is_a_noop(svc) -> None:
    (Stages(svc)
     .ok("inventory", {"image": "demo-web", "ref": PRODUCTION, "digest": OLD, "inventory": {}})
     .skip("assess", f"demo-web: nothing to patch at {OLD}"))
    result = record(svc, RUN, "demo-web")
    row = stored(svc)
    assert (result["status"], row.status) == ("noop", ImageStatus.NOOP)
    assert (row.source_ref, row.before_digest) == (PRODUCTION, OLD)
    assert (row.candidate_tag, row.after_digest, row.packages, row.failure_stage) == (None, None, (), None)


def test_a_base_image_is_recorded_with_kind_base(svc) -> None:
    (Stages(svc, "debian-bookworm").through_push()
     .ok("promote", {"production": "127.0.0.1:5000/base/debian:bookworm", "digest": NEW}))
    result = record(svc, RUN, "debian-bookworm")
    assert (result["kind"], result["status"]) == ("base", "promoted")
    assert stored(svc, "debian-bookworm").kind == "base"


def test_a_patch_in_place_image_is_recorded_with_its_kind(svc) -> None:
    Stages(svc, "vendor-app").promoted()
    assert record(svc, RUN, "vendor-app")["kind"] == "patch"


def test_a_pushed_candidate_not_yet_promoted_is_patched(svc) -> None:
    Stages(svc).through_push()
    result = record(svc, RUN, "demo-web")
    assert (result["status"], result["after_digest"], result["failure_stage"]) == ("patched", NEW, None)


# --- failures ------------------------------------------------------------------------------------


def test_a_failed_stage_fails_the_image_with_its_error(svc) -> None:
    (Stages(svc).through_push().ok("deploy_staging", rollout("demo-web-staging", OLD, NEW))
     .fail("analyze_staging", "smoke test of http://127.0.0.1:18081 failed: healthz: status 500, expected 200"))
    record(svc, RUN, "demo-web")
    row = stored(svc)
    assert (row.status, row.failure_stage) == (ImageStatus.FAILED, "analyze_staging")
    assert row.failure_reason == "smoke test of http://127.0.0.1:18081 failed: healthz: status 500, expected 200"
    assert (row.candidate_tag, row.after_digest) == (CANDIDATE, NEW)


def test_a_staging_failure_rolled_back_says_where_staging_went(svc) -> None:
    (Stages(svc).through_push().ok("deploy_staging", rollout("demo-web-staging", OLD, NEW))
     .fail("analyze_staging", "healthz: status 500, expected 200")
     .ok("rollback_staging", {"rolled_back": True, **rollout("demo-web-staging", NEW, OLD)})
     .skip("rollback_production", "production is not on the candidate: nothing to roll back"))
    record(svc, RUN, "demo-web")
    row = stored(svc)
    assert (row.status, row.failure_stage) == (ImageStatus.FAILED, "analyze_staging")
    assert row.failure_reason == f"healthz: status 500, expected 200 (staging rolled back to {PRODUCTION}@{OLD})"


def test_a_skipped_staging_rollback_adds_nothing_to_the_reason(svc) -> None:
    (Stages(svc).through_push().fail("deploy_staging", "rollout of demo-web-staging did not converge")
     .skip("rollback_staging", "staging is not on the candidate: nothing to roll back"))
    row = record(svc, RUN, "demo-web")
    assert row["failure_reason"] == "rollout of demo-web-staging did not converge"


def test_the_first_failed_stage_is_the_one_recorded(svc) -> None:
    (Stages(svc).through_push()
     .fail("deploy_staging", "did not converge")
     .fail("rollback_staging", "service demo-web-staging not found"))
    result = record(svc, RUN, "demo-web")
    assert (result["failure_stage"], result["failure_reason"]) == ("deploy_staging", "did not converge")


def test_a_failed_verify_keeps_the_candidate_but_has_no_after_digest(svc) -> None:
    (Stages(svc)
     .ok("inventory", {"image": "demo-web", "ref": PRODUCTION, "digest": OLD, "inventory": {}})
     .ok("assess", PLAN.to_dict())
     .ok("patch", {"image": "demo-web", "candidate": CANDIDATE, "build_id": "b", "base_digest": None,
                   "image_id": "sha256:" + "9" * 64, "digest": None, "reused": False})
     .fail("verify", f"candidate {CANDIDATE} rejected: perl-base is missing", "CandidateRejected"))
    result = record(svc, RUN, "demo-web")
    assert (result["status"], result["failure_stage"]) == (ImageStatus.FAILED, "verify")
    assert (result["candidate_tag"], result["after_digest"]) == (CANDIDATE, None)
    assert [p["name"] for p in result["packages"]] == ["libssl3", "perl-base"]


def test_a_production_failure_rolled_back_is_rolled_back(svc) -> None:
    (Stages(svc).through_staging()
     .ok("promote", {"production": PRODUCTION, "digest": NEW, "rollout": rollout("demo-web-production", OLD, NEW)})
     .fail("analyze_production", "healthz: status 502, expected 200")
     .ok("rollback_production", {"rolled_back": True, "tag_restored": True,
                                 **rollout("demo-web-production", NEW, OLD)}))
    record(svc, RUN, "demo-web")
    row = stored(svc)
    assert (row.status, row.failure_stage, row.failure_reason) == (
        ImageStatus.ROLLED_BACK, "analyze_production", "healthz: status 502, expected 200")


def test_a_failed_promote_rolled_back_is_rolled_back(svc) -> None:
    (Stages(svc).through_staging()
     .fail("promote", "rollout of demo-web-production did not converge", "DeployError")
     .ok("rollback_production", {"rolled_back": True, "tag_restored": True}))
    result = record(svc, RUN, "demo-web")
    assert (result["status"], result["failure_stage"]) == ("rolled_back", "promote")
    assert result["after_digest"] == NEW  # the candidate that was tried (promote gave no digest)


def test_a_production_failure_not_rolled_back_is_failed(svc) -> None:
    (Stages(svc).through_staging()
     .ok("promote", {"production": PRODUCTION, "digest": NEW, "rollout": {}})
     .fail("analyze_production", "healthz: status 502, expected 200")
     .fail("rollback_production", "registry unreachable"))
    result = record(svc, RUN, "demo-web")
    assert (result["status"], result["failure_stage"]) == ("failed", "analyze_production")


def test_a_failed_inventory_fails_the_image_with_nothing_else_known(svc) -> None:
    Stages(svc).fail("inventory", "127.0.0.1:5000/demo/web:1.0: registry unreachable", "RegistryError")
    result = record(svc, RUN, "demo-web")
    assert (result["status"], result["failure_stage"]) == ("failed", "inventory")
    assert result["failure_reason"] == "127.0.0.1:5000/demo/web:1.0: registry unreachable"
    assert (result["source_ref"], result["before_digest"], result["packages"]) == (None, None, [])


def test_an_image_that_never_ran_names_the_run_level_failure(svc) -> None:
    stages = Stages(svc)
    stages.ok("start_run", {"run_type": "scheduled"}, image=RUN_LEVEL)
    stages.fail("fetch_advisories", "security archive http://deb.debian.org/debian-security: 503", image=RUN_LEVEL)
    record(svc, RUN, "demo-web")
    row = stored(svc)
    assert (row.status, row.failure_stage) == (ImageStatus.FAILED, "fetch_advisories")
    assert row.failure_reason == "did not run: security archive http://deb.debian.org/debian-security: 503"
    assert (row.source_ref, row.before_digest, row.candidate_tag, row.packages) == (None, None, None, ())


def test_an_image_that_never_ran_without_a_run_level_failure_blames_inventory(svc) -> None:
    Stages(svc).ok("start_run", {"run_type": "scheduled"}, image=RUN_LEVEL)
    result = record(svc, RUN, "demo-web")
    assert (result["status"], result["failure_stage"], result["failure_reason"]) == (
        "failed", "inventory", "did not run: unknown")


def test_another_images_failure_does_not_leak_into_this_one(svc) -> None:
    Stages(svc, "vendor-app").through_push().fail("deploy_staging", "did not converge")
    Stages(svc).promoted()
    assert record(svc, RUN, "demo-web")["status"] == "promoted"
    assert record(svc, RUN, "vendor-app")["status"] == "failed"


# --- reruns --------------------------------------------------------------------------------------


def test_recording_again_after_a_successful_rerun_clears_the_failure(svc) -> None:
    stages = Stages(svc).through_push().fail("deploy_staging", "did not converge")
    record(svc, RUN, "demo-web")
    assert stored(svc).failure_stage == "deploy_staging"

    stages.clock += timedelta(minutes=10)  # the task group is cleared and runs again
    stages.promoted()
    record(svc, RUN, "demo-web")
    row = stored(svc)
    assert (row.status, row.failure_stage, row.failure_reason) == (ImageStatus.PROMOTED, None, None)
    assert len(svc.ledger.run_summary(RUN)) == 1


def test_a_rerun_of_a_failed_record_task_does_not_blame_record(svc) -> None:
    """The record task failed once (its own FAILED row is in the ledger); cleared, it runs again."""
    Stages(svc).promoted().fail("record", "database is locked", "OperationalError")
    record(svc, RUN, "demo-web")
    row = stored(svc)
    assert (row.status, row.failure_stage) == (ImageStatus.PROMOTED, None)


def test_a_rerun_that_promotes_after_an_earlier_production_rollback_is_promoted(svc) -> None:
    """Attempt 1 rolled production back; the cleared group runs again and passes. rollback_production
    does not run the second time (its trigger rule is not met), so its old row stays in the ledger."""
    stages = (Stages(svc).through_staging()
              .ok("promote", {"production": PRODUCTION, "digest": NEW, "rollout": {}})
              .fail("analyze_production", "healthz: status 502, expected 200")
              .ok("rollback_production", {"rolled_back": True, "tag_restored": True}))
    record(svc, RUN, "demo-web")
    assert stored(svc).status == ImageStatus.ROLLED_BACK

    stages.clock += timedelta(minutes=10)
    stages.promoted()
    record(svc, RUN, "demo-web")
    assert stored(svc).status == ImageStatus.PROMOTED

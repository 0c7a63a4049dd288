"""The run summary: one block per image, how staging and production went, and the totals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from patchpipe.db import create_schema, make_engine
from patchpipe.ledger.models import ImageStatus, RunType, StageOutcome
from patchpipe.ledger.store import Ledger, StageRecord
from patchpipe.lifecycle.summary import environment_result, format_summary

RUN = "manual__2026-11-24T10:00:00+00:00"
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
OLD = "sha256:" + "0" * 64
NEW = "sha256:" + "1" * 64


@pytest.fixture
def ledger(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    create_schema(engine)
    ledger = Ledger(engine)
    ledger.start_run(RUN, RunType.MANUAL)
    yield ledger
    engine.dispose()


class Writer:
    def __init__(self, ledger: Ledger):
        self.ledger, self.clock = ledger, T0

    def stage(self, image: str, stage: str, outcome: StageOutcome, detail=None) -> None:
        self.clock += timedelta(seconds=1)
        self.ledger.record_stage(RUN, image, stage, outcome, self.clock, 1.0, detail)


def summary(ledger: Ledger) -> str:
    return format_summary(ledger.run_summary(RUN), ledger.stage_results(RUN))


def stages_of(**outcomes: StageOutcome) -> dict[str, StageRecord]:
    return {name: StageRecord(RUN, "demo-web", name, outcome, T0, 1.0, None) for name, outcome in outcomes.items()}


S, F, K = StageOutcome.SUCCESS, StageOutcome.FAILED, StageOutcome.SKIPPED


# --- environment_result --------------------------------------------------------------------------


def test_an_environment_never_reached_is_a_dash() -> None:
    assert environment_result({}, "staging") == "-"
    assert environment_result(stages_of(deploy_staging=S, analyze_staging=S), "production") == "-"


def test_a_deploy_and_a_passing_smoke_test_is_ok() -> None:
    assert environment_result(stages_of(deploy_staging=S, analyze_staging=S), "staging") == "ok"
    assert environment_result(stages_of(promote=S, analyze_production=S), "production") == "ok"


def test_a_deploy_without_a_smoke_result_is_not_ok() -> None:
    assert environment_result(stages_of(deploy_staging=S), "staging") == "-"
    assert environment_result(stages_of(deploy_staging=S, analyze_staging=K), "staging") == "-"


def test_a_failed_smoke_test_names_the_stage() -> None:
    assert environment_result(stages_of(deploy_staging=S, analyze_staging=F), "staging") == "failed at analyze_staging"


def test_a_rollback_that_ran_is_mentioned() -> None:
    stages = stages_of(deploy_staging=S, analyze_staging=F, rollback_staging=S)
    assert environment_result(stages, "staging") == "failed at analyze_staging, rolled back"


def test_a_skipped_or_failed_rollback_is_not_called_a_rollback() -> None:
    assert environment_result(stages_of(deploy_staging=F, rollback_staging=K), "staging") == "failed at deploy_staging"
    assert environment_result(stages_of(deploy_staging=F, rollback_staging=F), "staging") == "failed at deploy_staging"


def test_production_failures_are_at_promote_or_its_smoke_test() -> None:
    assert environment_result(stages_of(promote=F, rollback_production=S), "production") == (
        "failed at promote, rolled back")
    assert environment_result(stages_of(promote=S, analyze_production=F, rollback_production=S), "production") == (
        "failed at analyze_production, rolled back")


def test_a_staging_failure_does_not_show_in_production() -> None:
    stages = stages_of(deploy_staging=S, analyze_staging=F, rollback_staging=S, rollback_production=K)
    assert environment_result(stages, "production") == "-"


# --- format_summary ------------------------------------------------------------------------------


def test_a_promoted_image_shows_source_candidate_packages_and_both_environments(ledger: Ledger) -> None:
    w = Writer(ledger)
    for stage in ("deploy_staging", "analyze_staging", "promote", "analyze_production"):
        w.stage("demo-web", stage, S, {})
    ledger.record_image(RUN, "demo-web", kind="rebuild", status=ImageStatus.PROMOTED,
                        source_ref="127.0.0.1:5000/demo/web:1.0", before_digest=OLD,
                        candidate_tag="127.0.0.1:5000/demo/web:1.0-patch.20261124.1", after_digest=NEW,
                        packages=[{"name": "libssl3", "from": "3.0.11-1~deb12u1", "to": "3.0.15-1~deb12u1"},
                                  {"name": "perl-base", "from": "5.36.0-7", "to": "5.36.0-7+deb12u1"}])
    assert summary(ledger).splitlines()[:7] == [
        "demo-web (rebuild): promoted",
        f"  source      127.0.0.1:5000/demo/web:1.0 @ {OLD}",
        f"  candidate   127.0.0.1:5000/demo/web:1.0-patch.20261124.1 @ {NEW}",
        "  package     libssl3 3.0.11-1~deb12u1 -> 3.0.15-1~deb12u1",
        "  package     perl-base 5.36.0-7 -> 5.36.0-7+deb12u1",
        "  staging     ok",
        "  production  ok",
    ]


def test_a_failed_image_shows_where_and_why(ledger: Ledger) -> None:
    w = Writer(ledger)
    w.stage("vendor-app", "deploy_staging", S, {})
    w.stage("vendor-app", "analyze_staging", F, {"error": "healthz: status 500, expected 200", "type": "AnalysisFailed"})
    w.stage("vendor-app", "rollback_staging", S, {"image": "x"})
    ledger.record_image(RUN, "vendor-app", kind="patch", status=ImageStatus.FAILED,
                        source_ref="127.0.0.1:5000/vendor/app:2.4", before_digest=OLD,
                        candidate_tag="127.0.0.1:5000/vendor/app:2.4-patch.20261124.1", after_digest=NEW,
                        failure_stage="analyze_staging", failure_reason="healthz: status 500, expected 200")
    lines = summary(ledger).splitlines()
    assert lines[0] == "vendor-app (patch): failed"
    assert "  staging     failed at analyze_staging, rolled back" in lines
    assert "  production  -" in lines
    assert "  failed at   analyze_staging: healthz: status 500, expected 200" in lines


def test_an_image_that_never_got_a_candidate_shows_dashes_and_no_candidate_line(ledger: Ledger) -> None:
    ledger.record_image(RUN, "demo-web", kind="rebuild", status=ImageStatus.FAILED, failure_stage="fetch_advisories",
                        failure_reason="did not run: mirror unreachable")
    lines = summary(ledger).splitlines()
    assert lines[:2] == ["demo-web (rebuild): failed", "  source      - @ -"]
    assert not [line for line in lines if line.startswith("  candidate")]
    assert "  failed at   fetch_advisories: did not run: mirror unreachable" in lines


def test_a_candidate_without_a_digest_shows_a_dash(ledger: Ledger) -> None:
    ledger.record_image(RUN, "demo-web", kind="rebuild", status=ImageStatus.FAILED, candidate_tag="c:1",
                        failure_stage="verify", failure_reason="rejected")
    assert "  candidate   c:1 @ -" in summary(ledger).splitlines()


def test_noop_and_base_images_have_no_environment_lines(ledger: Ledger) -> None:
    ledger.record_image(RUN, "debian-bookworm", kind="base", status=ImageStatus.PROMOTED, candidate_tag="b:1",
                        after_digest=NEW)
    ledger.record_image(RUN, "demo-web", kind="rebuild", status=ImageStatus.NOOP)
    text = summary(ledger)
    assert "staging" not in text and "production" not in text


def test_the_totals_count_promoted_noop_and_failed_images(ledger: Ledger) -> None:
    ledger.record_image(RUN, "a", kind="rebuild", status=ImageStatus.PROMOTED)
    ledger.record_image(RUN, "b", kind="rebuild", status=ImageStatus.NOOP)
    ledger.record_image(RUN, "c", kind="patch", status=ImageStatus.FAILED)
    ledger.record_image(RUN, "d", kind="patch", status=ImageStatus.ROLLED_BACK)
    lines = summary(ledger).splitlines()
    assert lines[-1] == "4 images: 1 patched and promoted, 1 with nothing to patch, 2 failed"


def test_images_appear_in_name_order(ledger: Ledger) -> None:
    for name in ("vendor-app", "debian-bookworm", "demo-web"):
        ledger.record_image(RUN, name, kind="patch", status=ImageStatus.NOOP)
    heads = [line for line in summary(ledger).splitlines() if not line.startswith(" ")][:3]
    assert heads == ["debian-bookworm (patch): noop", "demo-web (patch): noop", "vendor-app (patch): noop"]


def test_a_run_where_every_image_was_a_noop_says_nothing_is_left_to_patch(ledger: Ledger) -> None:
    ledger.record_image(RUN, "demo-web", kind="rebuild", status=ImageStatus.NOOP)
    ledger.record_image(RUN, "vendor-app", kind="patch", status=ImageStatus.NOOP)
    lines = summary(ledger).splitlines()
    assert lines[-2:] == ["2 images: 0 patched and promoted, 2 with nothing to patch, 0 failed",
                          "nothing left to patch"]


def test_a_run_with_any_patch_does_not_say_nothing_is_left(ledger: Ledger) -> None:
    ledger.record_image(RUN, "demo-web", kind="rebuild", status=ImageStatus.NOOP)
    ledger.record_image(RUN, "vendor-app", kind="patch", status=ImageStatus.PROMOTED)
    assert "nothing left to patch" not in summary(ledger)


def test_a_run_without_images_says_so(ledger: Ledger) -> None:
    assert summary(ledger) == "no images in this run"


def test_stages_of_one_image_do_not_colour_another(ledger: Ledger) -> None:
    w = Writer(ledger)
    w.stage("vendor-app", "deploy_staging", F, {"error": "x", "type": "DeployError"})
    ledger.record_image(RUN, "demo-web", kind="rebuild", status=ImageStatus.PATCHED)
    ledger.record_image(RUN, "vendor-app", kind="patch", status=ImageStatus.FAILED)
    text = summary(ledger)
    demo_block = text.split("vendor-app (patch)")[0]
    assert "  staging     -" in demo_block
    assert "failed at deploy_staging" in text.split("vendor-app (patch)")[1]

"""The Prometheus metrics equal the ledger.

Each expected value is computed here straight from the ledger through its public API
(``Ledger.image_history``, ``Ledger.stage_results``, ``Ledger.get_run``, and for findings
``Ledger.findings_snapshots``, read in full and walked in Python, not with the dashboard's queries),
and the findings are also checked against the hand-derived expectations of
tests/support/fleet_ledger.py; the scrape is parsed with prometheus-client's own parser.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from patchpipe.advisories.records import Status
from patchpipe.dashboard.findings_source import current_findings
from patchpipe.dashboard.metrics import metrics_text
from patchpipe.ledger.models import ImageStatus, RunStatus, RunType, StageOutcome
from patchpipe.ledger.store import Ledger
from support.fleet_ledger import NOW, RUN_A, RUN_B, RUN_C, RUN_C_AT, fill_fleet_ledger

IMAGES = ("batch-worker", "billing-api", "demo-web", "vendor-app")


def scrape(engine, now=NOW) -> dict[str, dict[tuple, float]]:
    """``{sample name: {sorted label items: value}}`` of one scrape."""
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(metrics_text(engine, current_findings, lambda: now).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def series(samples, name, **labels) -> float:
    return samples[name][tuple(sorted(labels.items()))]


@pytest.fixture
def fleet(patchpipe_engine):
    return patchpipe_engine, fill_fleet_ledger(patchpipe_engine)


def test_run_outcomes_and_rollbacks_equal_the_ledger(fleet):
    engine, _ = fleet
    ledger = Ledger(engine)
    samples = scrape(engine)

    for image in IMAGES:
        history = ledger.image_history(image)
        counted = Counter(record.status for record in history)
        for status in ImageStatus:
            assert series(samples, "patchpipe_image_results", image=image, status=status.value) == counted[status]
            assert series(samples, "patchpipe_image_last_result", image=image, status=status.value) == (
                1 if status is history[0].status else 0)
        stages = [s for run in (RUN_A, RUN_B, RUN_C) for s in ledger.stage_results(run, image)]
        for environment in ("staging", "production"):
            done = [s for s in stages if s.stage == f"rollback_{environment}" and s.outcome is StageOutcome.SUCCESS]
            assert series(samples, "patchpipe_rollbacks_total", image=image, environment=environment) == len(done)
            assert series(samples, "patchpipe_rollback_failures_total", image=image, environment=environment) == 0

    runs = Counter(ledger.get_run(run).status for run in (RUN_A, RUN_B, RUN_C))
    for status in RunStatus:
        assert series(samples, "patchpipe_runs", status=status.value) == runs[status]
    promoted = ledger.last_promoted("demo-web")
    assert series(samples, "patchpipe_last_patched_timestamp_seconds", image="demo-web") == \
        promoted.updated_at.timestamp()
    assert ledger.last_promoted("vendor-app") is None
    assert (("image", "vendor-app"),) not in samples["patchpipe_last_patched_timestamp_seconds"]


def production_moved_to_candidate(ledger: Ledger, run_id: str, image: str) -> bool:
    """The run promoted its candidate and no production rollback undid it (``Ledger`` API only)."""
    result = next((r for r in ledger.run_summary(run_id) if r.image == image), None)
    if result is not None and result.status is ImageStatus.PROMOTED:
        return True
    stages = {s.stage: s for s in ledger.stage_results(run_id, image)}
    promote, rollback = stages.get("promote"), stages.get("rollback_production")
    return (promote is not None and promote.outcome is StageOutcome.SUCCESS
            and not (rollback is not None and rollback.outcome is StageOutcome.SUCCESS))


def findings_from_the_ledger(ledger: Ledger, image: str):
    """``(counts by severity, fixable count, oldest fixable since)`` of what production holds, or None."""
    production = ledger.findings_snapshots(image=image, environment="production")
    if not production:
        return None
    latest = production[-1]
    if production_moved_to_candidate(ledger, latest.run_id, image):
        held = ledger.findings_snapshot(latest.run_id, image, "candidate")
        history = [held]
    else:
        held, history = latest, []
        for snap in reversed(production):
            if snap.digest != latest.digest:
                result = next(r for r in ledger.run_summary(snap.run_id) if r.image == image)
                if result.after_digest == latest.digest and production_moved_to_candidate(ledger, snap.run_id, image):
                    history.append(ledger.findings_snapshot(snap.run_id, image, "candidate"))
                break
            history.append(snap)
    counts = {severity.value: count for severity, count in held.counts_by_severity().items()}
    fixable = [f for f in held.findings if f.status is Status.FIXED]
    since = [min(s.recorded_at for s in history if any((g.id, g.package, g.status) == (f.id, f.package, Status.FIXED)
                                                       for g in s.findings))
             for f in fixable]
    return counts, len(fixable), min(since, default=None)


def test_open_findings_and_the_oldest_waiting_fix_equal_the_ledger(fleet):
    engine, expected = fleet
    ledger = Ledger(engine)
    samples = scrape(engine)

    for image, want in expected.items():
        from_ledger = findings_from_the_ledger(ledger, image)
        if from_ledger is None:
            assert want.open_by_severity is None
            assert not any(dict(labels)["image"] == image for labels in samples["patchpipe_open_findings"])
            continue
        counts, fixable, since = from_ledger
        assert (counts, fixable, since) == (want.open_by_severity, want.unpatched_fixable, want.oldest_fixable_since)
        for severity, count in counts.items():
            assert series(samples, "patchpipe_open_findings", image=image, severity=severity) == count
        assert series(samples, "patchpipe_unpatched_fixable_findings", image=image) == fixable
        age = (NOW - since).total_seconds() if since else 0
        assert series(samples, "patchpipe_oldest_unpatched_fixable_finding_age_seconds", image=image) == age
    # vendor-app's fixes have waited since run A's assess: 11 days, 9 hours, 58 minutes and 50 seconds.
    assert series(samples, "patchpipe_oldest_unpatched_fixable_finding_age_seconds", image="vendor-app") == \
        timedelta(days=11, hours=9, minutes=58, seconds=50).total_seconds()


def test_the_findings_timestamp_is_the_snapshot_the_findings_come_from(fleet):
    engine, _ = fleet
    ledger = Ledger(engine)
    samples = scrape(engine)
    web = ledger.findings_snapshot(RUN_B, "demo-web")  # run B left demo-web's production alone
    assert series(samples, "patchpipe_findings_scanned_timestamp_seconds", image="demo-web") == \
        web.recorded_at.timestamp()
    vendor = ledger.findings_snapshot(RUN_C, "vendor-app")
    assert vendor.recorded_at == RUN_C_AT + timedelta(minutes=1, seconds=10)  # run C's assess
    assert series(samples, "patchpipe_findings_scanned_timestamp_seconds", image="vendor-app") == \
        vendor.recorded_at.timestamp()


def test_a_rerun_that_changes_an_outcome_moves_the_gauge_both_ways(fleet):
    engine, _ = fleet
    before = scrape(engine)
    Ledger(engine).record_image(RUN_A, "vendor-app", status=ImageStatus.PROMOTED)
    after = scrape(engine)
    assert series(after, "patchpipe_image_results", image="vendor-app", status="failed") == \
        series(before, "patchpipe_image_results", image="vendor-app", status="failed") - 1
    assert series(after, "patchpipe_image_results", image="vendor-app", status="promoted") == 1


def test_a_failed_rollback_is_counted_apart(patchpipe_engine):
    ledger = Ledger(patchpipe_engine)
    at = NOW - timedelta(hours=1)
    ledger.start_run("r1", RunType.MANUAL, started_at=at)
    ledger.record_stage("r1", "web", "analyze_staging", StageOutcome.FAILED, at, 1, {"error": "5xx"})
    ledger.record_stage("r1", "web", "rollback_staging", StageOutcome.FAILED, at + timedelta(minutes=1), 1,
                        {"error": "service update timed out"})
    ledger.record_image("r1", "web", status=ImageStatus.FAILED, failure_stage="analyze_staging")

    samples = scrape(patchpipe_engine)
    assert series(samples, "patchpipe_rollback_failures_total", image="web", environment="staging") == 1
    assert series(samples, "patchpipe_rollbacks_total", image="web", environment="staging") == 0


def test_an_empty_ledger_still_exports_the_run_series(patchpipe_engine):
    samples = scrape(patchpipe_engine)
    assert {dict(labels)["status"]: value for labels, value in samples["patchpipe_runs"].items()} == \
        {"running": 0, "success": 0, "failed": 0}
    assert not samples.get("patchpipe_open_findings")

"""The fleet dashboard's views, computed from a realistic ledger (tests/support/fleet_ledger.py).

The expected values in ``fill_fleet_ledger`` are derived by hand from the rows it writes; these
tests check the views agree with them, on SQLite and (integration) PostgreSQL. Open findings come
from the ledger's findings snapshots; the corner cases of that source are at the end.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest

with warnings.catch_warnings():  # Starlette suggests httpx2, which is not installed; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from patchpipe.advisories.records import Severity, Status
from patchpipe.airflow.dashboard_app import create_app
from patchpipe.airflow.dashboard_auth import fleet_reader, metrics_reader
from patchpipe.dashboard import render
from patchpipe.dashboard.findings_source import current_findings, open_findings
from patchpipe.dashboard.fleet import fleet_rows
from patchpipe.dashboard.image_page import image_detail, parse_entry
from patchpipe.dashboard.snapshot import read_snapshot
from patchpipe.ledger.models import ImageStatus, RunType, StageOutcome
from patchpipe.ledger.store import Ledger
from patchpipe.scan.findings import Finding
from support.fleet_ledger import DIGESTS, NOW, RUN_A, RUN_A_AT, RUN_B, RUN_C, fill_fleet_ledger


@pytest.fixture
def fleet(patchpipe_engine):
    return patchpipe_engine, fill_fleet_ledger(patchpipe_engine)


def views(engine):
    snapshot = read_snapshot(engine)
    return snapshot, current_findings(engine, snapshot)


def detail(engine, image):
    snapshot, found = views(engine)
    return image_detail(snapshot, found, image, engine)


def test_each_fleet_row_says_what_the_ledger_says(fleet):
    engine, expected = fleet
    rows = {row.image: row for row in fleet_rows(*views(engine))}

    assert sorted(rows) == sorted(expected)
    for image, want in expected.items():
        row = rows[image]
        assert row.production_digest == want.production_digest, image
        assert row.staging_digest == want.staging_digest, image
        assert (row.findings.counts() if row.findings else None) == want.open_by_severity, image
        assert (sum(f.fixable for f in row.findings.findings) if row.findings else 0) == want.unpatched_fixable
        assert (row.findings.oldest_unpatched_fixable() if row.findings else None) == want.oldest_fixable_since
        assert row.last_patched == want.last_patched, image
        assert row.last_result.status.value == want.last_status, image


def test_open_findings_counts_each_known_image_by_severity(fleet):
    engine, expected = fleet
    assert open_findings(engine) == {image: want.open_by_severity for image, want in expected.items()
                                     if want.open_by_severity is not None}


def test_an_image_without_a_findings_snapshot_has_unknown_findings_not_zero(fleet):
    engine, _ = fleet
    rows = {row.image: row for row in fleet_rows(*views(engine))}
    assert rows["batch-worker"].findings is None
    assert "batch-worker" not in open_findings(engine)


def test_a_noop_run_still_brings_findings_published_since_the_last_patch(fleet):
    """billing-api was never patched: its findings are its latest production snapshot's (run B's
    assess), with the advisory published between the runs and severities from the snapshot rows."""
    engine, expected = fleet
    found = current_findings(engine, read_snapshot(engine))["billing-api"]
    assert found.run_id == RUN_B
    assert [(f.id, f.package, f.severity, f.fixable) for f in found.findings] == [
        ("CVE-2011-3374", "apt", "negligible", False), ("CVE-2023-4039", "libgcc-s1", "medium", True),
        ("CVE-2025-7709", "libsqlite3-0", "high", False)]
    # The point-release fix has been available in this digest since run A's assess.
    assert found.oldest_unpatched_fixable() == expected["billing-api"].oldest_fixable_since


def test_severities_come_from_the_snapshots_not_the_advisory_store(fleet):
    from patchpipe.advisories.store import advisory

    engine, _ = fleet
    assert advisory(engine, "CVE-2025-8058") is None  # the fixture never fills the store
    vendor = current_findings(engine, read_snapshot(engine))["vendor-app"]
    assert {f.id: f.severity for f in vendor.findings}["CVE-2025-8058"] == "critical"


def test_the_image_page_lists_history_with_rollback_causes(fleet):
    engine, _ = fleet
    page = detail(engine, "vendor-app")

    assert [h.result.run_id for h in page.history] == [RUN_C, RUN_B, RUN_A]
    assert [h.result.status for h in page.history] == [ImageStatus.FAILED, ImageStatus.ROLLED_BACK,
                                                       ImageStatus.FAILED]
    causes = {h.result.run_id: [(r.environment, r.describe()) for r in h.rollbacks] for h in page.history}
    assert causes == {
        RUN_C: [],
        RUN_B: [("production", "analyze_production: request-duration 812.0 (bound 500)")],
        RUN_A: [("staging", "analyze_staging: request-success-rate 42.0 (bound 99)")],
    }
    assert page.fixed == ()  # nothing of vendor-app ever reached production
    diff = page.last_diff
    assert diff.run_id == RUN_B and not diff.promoted
    assert [(e.id, e.package, e.severity) for e in diff.fixed] == [
        ("CVE-2024-56406", "perl-base", "high"), ("CVE-2025-4802", "libc6", "high"),
        ("CVE-2025-8058", "libc6", "critical")]
    assert [p.name for p in diff.packages] == ["libc6", "perl-base", "libc-bin"]


def test_the_image_page_lists_the_cves_a_promoted_patch_fixed(fleet):
    engine, expected = fleet
    page = detail(engine, "demo-web")
    assert [(f.finding.id, f.finding.package, f.finding.severity, f.run_id) for f in page.fixed] == [
        ("CVE-2024-56406", "perl-base", "high", RUN_A), ("CVE-2025-40909", "perl-base", "medium", RUN_A),
        ("CVE-2025-6020", "libpam-modules", "high", RUN_A)]
    assert {f.promoted_at for f in page.fixed} == {expected["demo-web"].last_patched}
    assert page.last_diff.promoted
    assert [(e.id, e.severity) for e in page.last_diff.still_open] == [("CVE-2011-3374", "negligible"),
                                                                       ("CVE-2022-0563", "unknown")]


def test_an_image_not_in_the_ledger_has_no_page(fleet):
    engine, _ = fleet
    assert detail(engine, "no-such-image") is None


def test_scan_entries_parse_into_id_and_package():
    assert parse_entry("CVE-2024-56406 (perl-base)") == ("CVE-2024-56406", "perl-base")
    assert parse_entry("DSA-5902-1 (libc6)") == ("DSA-5902-1", "libc6")
    assert parse_entry("CVE-2024-1") == ("CVE-2024-1", "")


# --- the findings source's corner cases ----------------------------------------------------------

T0 = NOW - timedelta(days=20)
OLD, NEW, OTHER = "sha256:" + "0" * 64, "sha256:" + "1" * 64, "sha256:" + "2" * 64
ASSESS, SCAN = timedelta(minutes=1), timedelta(minutes=2)  # when a run records each snapshot


def vuln(vuln_id: str, package: str = "a", *, fixable: bool = True) -> Finding:
    return Finding(id=vuln_id, aliases=(), package=package, source_package=package, installed="1",
                   fixed="2" if fixable else None, status=Status.FIXED if fixable else Status.AFFECTED,
                   severity=Severity.HIGH)


class Runs:
    """Runs of one image ``web``, each recording its snapshots the way assess and scan do."""

    def __init__(self, engine):
        self.now = T0
        self.ledger = Ledger(engine, clock=lambda: self.now)

    def run(self, run: str, at, digest: str, production: list[Finding], *, candidate: list[Finding] | None = None,
            status: ImageStatus = ImageStatus.NOOP, stages=()) -> None:
        ledger = self.ledger
        ledger.start_run(run, RunType.SCHEDULED, started_at=at)
        ledger.record_stage(run, "web", "inventory", "success", at, 1, {"ref": "r/web:1", "digest": digest})
        self.now = at + ASSESS
        ledger.record_findings(run, "web", digest, production, {})
        if candidate is not None:
            self.now = at + SCAN
            ledger.record_findings(run, "web", "sha256:" + "c" * 64, candidate, {}, environment="candidate")
        for offset, (name, outcome, stage_detail) in enumerate(stages, start=3):
            ledger.record_stage(run, "web", name, outcome, at + timedelta(minutes=offset), 1, stage_detail)
        self.now = at + timedelta(minutes=10)
        ledger.record_image(run, "web", status=status, before_digest=digest,
                            after_digest=NEW if candidate is not None else None)


def since(engine) -> dict[str, object]:
    found = current_findings(engine, read_snapshot(engine))["web"]
    return {f.id: f.fixable_since for f in found.findings}


def test_a_fix_waits_since_the_first_snapshot_of_the_production_digest_that_had_it(patchpipe_engine):
    runs = Runs(patchpipe_engine)
    runs.run("r1", T0, OLD, [vuln("CVE-1"), vuln("CVE-9", fixable=False)], candidate=[vuln("CVE-9", fixable=False)],
             status=ImageStatus.FAILED, stages=[("analyze_staging", "failed", {"error": "5xx"})])
    # Production changed outside patchpipe (someone moved the tag): a new digest, the wait starts again.
    runs.run("r2", T0 + timedelta(days=1), OTHER, [vuln("CVE-1"), vuln("CVE-9", fixable=False)])
    runs.run("r3", T0 + timedelta(days=2), OTHER, [vuln("CVE-1"), vuln("CVE-2", "b"), vuln("CVE-9", fixable=False)])
    # CVE-9 gets a fix; this run's promotion is rolled back, so production keeps OTHER.
    runs.run("r4", T0 + timedelta(days=3), OTHER, [vuln("CVE-1"), vuln("CVE-2", "b"), vuln("CVE-9")],
             candidate=[], status=ImageStatus.ROLLED_BACK,
             stages=[("promote", "success", {"digest": NEW}), ("rollback_production", "success", {"rolled_back": True})])

    assert since(patchpipe_engine) == {"CVE-1": T0 + timedelta(days=1) + ASSESS,
                                       "CVE-2": T0 + timedelta(days=2) + ASSESS,
                                       "CVE-9": T0 + timedelta(days=3) + ASSESS}
    found = current_findings(patchpipe_engine, read_snapshot(patchpipe_engine))["web"]
    assert (found.run_id, found.as_of) == ("r4", T0 + timedelta(days=3) + ASSESS)


def test_after_a_promotion_a_fix_waits_since_the_promoted_candidates_scan(patchpipe_engine):
    runs = Runs(patchpipe_engine)
    promote = [("promote", "success", {"digest": NEW})]
    runs.run("r1", T0, OLD, [vuln("CVE-1"), vuln("CVE-3", "c")], candidate=[vuln("CVE-3", "c")],
             status=ImageStatus.PROMOTED, stages=promote)

    found = current_findings(patchpipe_engine, read_snapshot(patchpipe_engine))["web"]
    assert (found.run_id, found.as_of) == ("r1", T0 + SCAN)  # the candidate's snapshot: what went live
    assert since(patchpipe_engine) == {"CVE-3": T0 + SCAN}

    # The next run's production snapshot is of the promoted digest: the wait goes on from the scan.
    runs.run("r2", T0 + timedelta(days=1), NEW, [vuln("CVE-3", "c"), vuln("CVE-4", "d")])
    assert since(patchpipe_engine) == {"CVE-3": T0 + SCAN, "CVE-4": T0 + timedelta(days=1) + ASSESS}


def test_a_promotion_whose_rollback_failed_leaves_production_on_the_candidate(patchpipe_engine):
    runs = Runs(patchpipe_engine)
    runs.run("r1", T0, OLD, [vuln("CVE-1"), vuln("CVE-2011-3374", "apt", fixable=False)],
             candidate=[vuln("CVE-2011-3374", "apt", fixable=False)], status=ImageStatus.FAILED,
             stages=[("promote", "success", {"digest": NEW}),
                     ("analyze_production", "failed", {"error": "p99 too high"}),
                     ("rollback_production", "failed", {"error": "service update timed out"})])

    snapshot, found = views(patchpipe_engine)
    row = fleet_rows(snapshot, found)[0]
    assert row.production_digest == NEW
    assert [f.id for f in row.findings.findings] == ["CVE-2011-3374"]  # the candidate's findings
    assert row.findings.oldest_unpatched_fixable() is None


def test_a_promotion_without_a_candidate_snapshot_leaves_findings_unknown(patchpipe_engine):
    """A ledger written before candidates were snapshotted: what went live was never recorded."""
    runs = Runs(patchpipe_engine)
    runs.run("r1", T0, OLD, [vuln("CVE-1")], status=ImageStatus.PROMOTED,
             stages=[("promote", "success", {"digest": NEW})])

    snapshot, found = views(patchpipe_engine)
    assert found == {}
    assert fleet_rows(snapshot, found)[0].findings is None


def test_pages_escape_what_the_ledger_holds(patchpipe_engine):
    ledger = Ledger(patchpipe_engine)
    image = '<script>alert("x")</script>'
    ledger.start_run("r1", RunType.MANUAL, started_at=T0)
    ledger.record_stage("r1", image, "patch", StageOutcome.FAILED, T0, 1, {"error": "<b>boom</b>"})
    ledger.record_image("r1", image, status=ImageStatus.FAILED, failure_stage="patch", failure_reason="<b>boom</b>")

    snapshot, found = views(patchpipe_engine)
    fleet_html = render.render_fleet(fleet_rows(snapshot, found), base="/patchpipe", now=NOW)
    image_html = render.render_image(detail(patchpipe_engine, image), base="/patchpipe", now=NOW)
    for html in (fleet_html, image_html):
        assert "<script>" not in html and "<b>boom" not in html
        assert "&lt;script&gt;" in html
    assert 'href="/patchpipe/images/%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E"' in fleet_html


# --- the FastAPI app, with Airflow's auth replaced (the real auth is tested in tests/browser) ----------


@pytest.fixture
def client(fleet):
    engine, _ = fleet
    app = create_app(engine=lambda: engine, clock=lambda: NOW)
    app.dependency_overrides[fleet_reader] = lambda: "tester"
    app.dependency_overrides[metrics_reader] = lambda: "tester"
    return TestClient(app, root_path="/patchpipe")


def test_the_app_serves_pages_json_and_metrics(client):
    fleet_page = client.get("/")
    assert fleet_page.status_code == 200 and "text/html" in fleet_page.headers["content-type"]
    assert 'href="/patchpipe/images/vendor-app"' in fleet_page.text

    image_page = client.get("/images/vendor-app")
    assert "request-duration 812.0 (bound 500)" in image_page.text
    assert DIGESTS["vendor-app"]["original"] in image_page.text  # the full digest, in the title
    assert '<tr data-finding="CVE-2025-8058"><td><code>CVE-2025-8058</code></td><td>libc6</td>' in image_page.text

    data = client.get("/api/fleet").json()
    assert [i["image"] for i in data["images"]] == ["batch-worker", "billing-api", "demo-web", "vendor-app"]
    vendor = client.get("/api/images/vendor-app").json()
    assert vendor["open_findings"]["oldest_unpatched_fixable_age_seconds"] == pytest.approx(
        (NOW - (RUN_A_AT + timedelta(minutes=1, seconds=10))).total_seconds())  # run A's assess of vendor-app
    assert vendor["open_findings"]["run_id"] == RUN_C

    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'patchpipe_open_findings{image="vendor-app",severity="critical"} 1.0' in metrics.text


def test_an_unknown_image_is_404_with_a_page_for_browsers(client):
    assert client.get("/api/images/nope").status_code == 404
    page = client.get("/images/nope", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "has no result for <code>nope</code>" in page.text


def test_the_dashboard_core_imports_no_airflow():
    """The pages and metrics are computed without Airflow; only patchpipe.airflow.dashboard_* serve them."""
    import subprocess
    import sys

    code = ("import sys, patchpipe.dashboard.api, patchpipe.dashboard.metrics, patchpipe.dashboard.render, "
            "patchpipe.dashboard.findings_source; print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_an_unreadable_ledger_is_a_503_that_names_it(tmp_path):
    from patchpipe.db import make_engine

    broken = make_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'patchpipe.db'}")
    app = create_app(engine=lambda: broken, clock=lambda: NOW)
    app.dependency_overrides[fleet_reader] = lambda: "tester"
    answer = TestClient(app).get("/api/fleet")
    assert answer.status_code == 503
    assert "cannot read the patch ledger at sqlite:///" in answer.json()["detail"]
    assert "missing-dir" in answer.json()["detail"]

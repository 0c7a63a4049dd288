"""Patch history (``ledger.history``) from a ledger filled through the Ledger API, run by run.

The story of ``demo-web`` (each run: production's findings at assess, the candidate's at scan, then
the promotion, if any):

- run 1 (day 0): production has CVE-A (high), CVE-B (medium, known to the store by its DSA) and
  CVE-C (low, will not fix); the candidate has only CVE-C; promoted: A and B are fixed.
- run 2 (day 7): production (the new digest) has CVE-C and a new critical CVE-D (KEV); a no-op.
- run 3 (day 14): the candidate drops CVE-D, is promoted, fails its production analysis and is
  rolled back: nothing is fixed.
- run 4 (day 21): promoted again, but without a candidate snapshot (an older patchpipe); run 5's
  production snapshot of that digest lacks CVE-D, so run 4's promotion fixed it.

``demo-api`` had CVE-E until the advisory was withdrawn (gone, never patched), and a DSA id that
later shows up under its CVE (one vulnerability, not two).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from patchpipe.advisories.records import Severity, Status
from patchpipe.ledger.history import (
    current_findings,
    fleet_time_to_patch,
    mean_time_to_remediate,
    open_findings_over_time,
    promotions,
    time_to_patch,
)
from patchpipe.ledger.snapshots import CANDIDATE
from patchpipe.ledger.store import Ledger
from patchpipe.scan.findings import Finding

DAY0 = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)
PUBLISHED_A = DAY0 - timedelta(days=10)
PUBLISHED_B = DAY0 - timedelta(days=4)
PUBLISHED_D = DAY0 + timedelta(days=5)
DIGESTS = ["sha256:" + str(i) * 64 for i in range(6)]


def finding(vid: str, severity: Severity = Severity.HIGH, *, aliases=(), kev=False,
            status: Status = Status.FIXED, package: str = "perl-base") -> Finding:
    return Finding(id=vid, aliases=tuple(aliases), package=package, source_package=package, installed="1",
                   fixed="2", status=status, severity=severity, kev=kev)


A = finding("CVE-A")
B = finding("CVE-B", Severity.MEDIUM, aliases=["DSA-1-1"], package="liblzma5")
C = finding("CVE-C", Severity.LOW, status=Status.WILL_NOT_FIX, package="tzdata")
D = finding("CVE-D", Severity.CRITICAL, kev=True, package="libssl3")
PUBLISHED = {"CVE-A": PUBLISHED_A, "DSA-1-1": PUBLISHED_B, "CVE-D": PUBLISHED_D}


class Story:
    """Writes runs through the Ledger API, each at its own time."""

    def __init__(self, engine):
        self.now = DAY0
        self.ledger = Ledger(engine, clock=lambda: self.now)

    def run(self, number: int, day: int) -> str:
        self.now = DAY0 + timedelta(days=day)
        run_id = f"scheduled__run{number}"
        self.ledger.start_run(run_id, "scheduled", started_at=self.now)
        return run_id

    def production(self, run_id: str, image: str, digest: str, findings: list[Finding]) -> None:
        self.now += timedelta(minutes=1)
        self.ledger.record_findings(run_id, image, digest, findings, PUBLISHED)

    def candidate(self, run_id: str, image: str, findings: list[Finding]) -> None:
        self.now += timedelta(minutes=1)
        self.ledger.record_findings(run_id, image, "sha256:local", findings, PUBLISHED, environment=CANDIDATE)

    def stage(self, run_id: str, image: str, stage: str, outcome: str = "success", detail=None,
              duration: float = 60.0) -> datetime:
        self.now += timedelta(minutes=1)
        self.ledger.record_stage(run_id, image, stage, outcome, self.now, duration, detail)
        return self.now + timedelta(seconds=duration)


@pytest.fixture
def story(patchpipe_engine) -> Story:
    s = Story(patchpipe_engine)
    r1 = s.run(1, 0)
    s.production(r1, "demo-web", DIGESTS[0], [A, B, C])
    s.production(r1, "demo-api", DIGESTS[4], [finding("CVE-E"), finding("DSA-9-1", Severity.LOW)])
    s.candidate(r1, "demo-web", [C])
    s.fixed_run1 = s.stage(r1, "demo-web", "promote", detail={"digest": DIGESTS[1]})

    r2 = s.run(2, 7)
    s.production(r2, "demo-web", DIGESTS[1], [C, D])
    s.production(r2, "demo-api", DIGESTS[4], [finding("CVE-F", Severity.MEDIUM, aliases=["DSA-9-1"])])

    r3 = s.run(3, 14)
    s.production(r3, "demo-web", DIGESTS[1], [C, D])
    s.candidate(r3, "demo-web", [C])
    s.stage(r3, "demo-web", "promote", detail={"digest": DIGESTS[2]})
    s.stage(r3, "demo-web", "analyze_production", "failed", {"error": "p99 1003 ms > 500 ms"})
    s.stage(r3, "demo-web", "rollback_production", detail={"rolled_back": True})

    r4 = s.run(4, 21)
    s.production(r4, "demo-web", DIGESTS[1], [C, D])
    s.fixed_run4 = s.stage(r4, "demo-web", "promote", detail={"digest": DIGESTS[3]})

    r5 = s.run(5, 28)
    s.production(r5, "demo-web", DIGESTS[3], [C])
    return s


def by_id(entries, image="demo-web"):
    return {e.vulnerability_id: e for e in entries if e.image == image}


def test_promotions_that_production_kept(story: Story) -> None:
    kept = promotions(story.ledger)
    assert [(p.run_id, p.digest) for p in kept] == [("scheduled__run1", DIGESTS[1]), ("scheduled__run4", DIGESTS[3])]
    assert kept[0].finished_at == story.fixed_run1


def test_time_to_patch_runs_from_published_to_the_promotion_that_went_live(story: Story) -> None:
    web = by_id(time_to_patch(story.ledger, image="demo-web"))

    a, b = web["CVE-A"], web["CVE-B"]
    assert (a.fixed_at, a.fixed_by_run, a.fixed_digest) == (story.fixed_run1, "scheduled__run1", DIGESTS[1])
    assert a.time_to_patch == story.fixed_run1 - PUBLISHED_A
    assert a.first_seen == DAY0 + timedelta(minutes=1)
    assert a.time_from_detection == story.fixed_run1 - a.first_seen
    assert b.published == PUBLISHED_B  # known by its DSA alias
    assert (b.aliases, b.packages, b.severity) == (("DSA-1-1",), ("liblzma5",), Severity.MEDIUM)


def test_a_rolled_back_promotion_fixes_nothing_and_a_later_snapshot_stands_in_for_a_missing_candidate(
        story: Story) -> None:
    d = by_id(time_to_patch(story.ledger))["CVE-D"]
    assert (d.fixed_by_run, d.fixed_at) == ("scheduled__run4", story.fixed_run4)
    assert d.time_to_patch == story.fixed_run4 - PUBLISHED_D
    assert (d.severity, d.kev) == (Severity.CRITICAL, True)


def test_what_no_patch_removes_stays_open(story: Story) -> None:
    c = by_id(time_to_patch(story.ledger))["CVE-C"]
    assert c.is_open and c.fixed_at is None and c.time_to_patch is None and c.published is None


def test_a_finding_that_leaves_without_a_promotion_is_gone_not_patched(story: Story) -> None:
    api = by_id(time_to_patch(story.ledger, image="demo-api"), "demo-api")
    e = api["CVE-E"]
    assert e.fixed_at is None and e.closed_at == DAY0 + timedelta(days=7, minutes=2) and not e.is_open
    assert set(api) == {"CVE-E", "DSA-9-1"}  # CVE-F is DSA-9-1 seen under its CVE: one vulnerability
    assert api["DSA-9-1"].is_open and api["DSA-9-1"].aliases == ("CVE-F",)
    assert api["DSA-9-1"].severity == Severity.MEDIUM  # the worst it was given


def test_mean_time_to_remediate_over_the_fixes_in_a_period(story: Story) -> None:
    first_week = mean_time_to_remediate(story.ledger, DAY0, DAY0 + timedelta(days=7))
    assert sorted(f.vulnerability_id for f in first_week.fixes) == ["CVE-A", "CVE-B"]
    assert first_week.mean == ((story.fixed_run1 - PUBLISHED_A) + (story.fixed_run1 - PUBLISHED_B)) / 2
    assert first_week.without_published == 0

    everything = mean_time_to_remediate(story.ledger, DAY0, DAY0 + timedelta(days=60))
    assert everything.count == 3
    quiet = mean_time_to_remediate(story.ledger, DAY0 + timedelta(days=8), DAY0 + timedelta(days=20))
    assert (quiet.count, quiet.mean, quiet.mean_from_detection) == (0, None, None)


def test_a_fix_without_a_published_date_is_counted_apart(patchpipe_engine) -> None:
    s = Story(patchpipe_engine)
    r = s.run(1, 0)
    s.production(r, "demo-web", DIGESTS[0], [finding("CVE-X")])
    s.candidate(r, "demo-web", [])
    s.stage(r, "demo-web", "promote", detail={"digest": DIGESTS[1]})
    remediation = mean_time_to_remediate(s.ledger, DAY0, DAY0 + timedelta(days=1))
    assert (remediation.count, remediation.mean, remediation.without_published) == (1, None, 1)
    assert remediation.mean_from_detection is not None


def test_open_findings_by_severity_per_image_over_time(story: Story) -> None:
    web = open_findings_over_time(story.ledger, image="demo-web")
    assert [(p.run_id, p.total) for p in web] == [
        ("scheduled__run1", 3), ("scheduled__run2", 2), ("scheduled__run3", 2), ("scheduled__run4", 2),
        ("scheduled__run5", 1)]
    assert list(web[0].by_severity) == [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW,
                                        Severity.NEGLIGIBLE, Severity.UNKNOWN]
    assert web[0].by_severity[Severity.HIGH] == 1 and web[0].by_severity[Severity.CRITICAL] == 0
    assert web[1].by_severity[Severity.CRITICAL] == 1 and web[1].digest == DIGESTS[1]

    fixable = open_findings_over_time(story.ledger, image="demo-web", statuses=[Status.FIXED])
    assert [p.total for p in fixable] == [2, 1, 1, 1, 0]
    window = open_findings_over_time(story.ledger, since=DAY0 + timedelta(days=7), until=DAY0 + timedelta(days=8))
    assert {(p.image, p.run_id) for p in window} == {("demo-web", "scheduled__run2"), ("demo-api", "scheduled__run2")}


def test_fleet_view_waits_for_the_last_image(story: Story) -> None:
    fleet = fleet_time_to_patch(time_to_patch(story.ledger))
    assert fleet["CVE-A"]["fixed_everywhere_at"] == story.fixed_run1
    assert fleet["CVE-C"]["open_in"] == ["demo-web"] and fleet["CVE-C"]["fixed_everywhere_at"] is None
    assert fleet["CVE-E"]["images"] == ["demo-api"] and fleet["CVE-E"]["open_in"] == []


def test_current_findings_are_each_images_newest_production_snapshot(story: Story) -> None:
    current = current_findings(story.ledger)
    assert set(current) == {"demo-web", "demo-api"}
    assert (current["demo-web"].run_id, current["demo-web"].digest) == ("scheduled__run5", DIGESTS[3])
    assert [f.id for f in current["demo-web"].findings] == ["CVE-C"]
    assert [f.id for f in current["demo-api"].findings] == ["CVE-F"]

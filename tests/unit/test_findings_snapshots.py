"""Findings snapshots in the ledger (``Ledger.record_findings``) and the published dates they keep.

Runs on SQLite, and on a real PostgreSQL server with ``-m integration``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patchpipe.advisories.published import published_dates
from patchpipe.advisories.records import Advisory, Severity, Status
from patchpipe.advisories.store import FeedOrigin, replace_feed
from patchpipe.errors import PatchpipeError
from patchpipe.ledger.models import FindingsSnapshot, SnapshotFinding
from patchpipe.ledger.snapshots import CANDIDATE
from patchpipe.ledger.store import Ledger
from patchpipe.scan.findings import Finding

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
OLD = "sha256:" + "0" * 64
NEW = "sha256:" + "1" * 64
RUN = "scheduled__2026-11-24T02:00:00+00:00"


def finding(vid: str, package: str = "perl-base", severity: Severity = Severity.HIGH, *, aliases=(),
            status: Status = Status.FIXED, kev: bool = False, epss: float | None = None) -> Finding:
    return Finding(id=vid, aliases=tuple(aliases), package=package, source_package=package, installed="1.0-1",
                   fixed="1.0-2" if status is Status.FIXED else None, status=status, severity=severity, kev=kev,
                   epss=epss, feeds=("osv",))


@pytest.fixture
def ledger(patchpipe_engine) -> Ledger:
    ledger = Ledger(patchpipe_engine, clock=lambda: T0)
    ledger.start_run(RUN, "scheduled", logical_date=T0)
    return ledger


def rows(engine, model) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_snapshot_keeps_every_field_of_every_finding(ledger: Ledger) -> None:
    found = [finding("CVE-2026-0001", aliases=["DSA-5800-1"], kev=True, epss=0.42),
             finding("CVE-2026-0002", "tzdata", Severity.LOW, status=Status.WILL_NOT_FIX)]
    published = {"DSA-5800-1": T0 - timedelta(days=30), "CVE-2026-0001": T0 - timedelta(days=40)}

    ledger.record_findings(RUN, "demo-web", OLD, found, published)

    stored = ledger.findings_snapshot(RUN, "demo-web")
    assert (stored.run_id, stored.image, stored.environment, stored.digest, stored.recorded_at) == (
        RUN, "demo-web", "production", OLD, T0)
    first, second = stored.findings
    assert (first.id, first.aliases, first.package, first.installed, first.fixed) == (
        "CVE-2026-0001", ("DSA-5800-1",), "perl-base", "1.0-1", "1.0-2")
    assert (first.status, first.severity, first.kev, first.epss) == (Status.FIXED, Severity.HIGH, True, 0.42)
    assert first.published == T0 - timedelta(days=40)  # the earliest date among its ids
    assert (second.status, second.severity, second.fixed, second.published) == (
        Status.WILL_NOT_FIX, Severity.LOW, None, None)
    assert stored.counts_by_severity()[Severity.HIGH] == 1 and stored.counts_by_severity()[Severity.CRITICAL] == 0


def test_recording_again_in_a_rerun_replaces_the_snapshot(patchpipe_engine, ledger: Ledger) -> None:
    ledger.record_findings(RUN, "demo-web", OLD, [finding("CVE-1"), finding("CVE-2")], {})
    ledger.record_findings(RUN, "demo-web", NEW, [finding("CVE-3")], {})

    assert rows(patchpipe_engine, FindingsSnapshot) == 1
    assert rows(patchpipe_engine, SnapshotFinding) == 1
    stored = ledger.findings_snapshot(RUN, "demo-web")
    assert stored.digest == NEW and [f.id for f in stored.findings] == ["CVE-3"]


def test_production_and_candidate_are_separate_snapshots_and_nothing_open_is_recorded(ledger: Ledger) -> None:
    ledger.record_findings(RUN, "demo-web", OLD, [finding("CVE-1")], {})
    ledger.record_findings(RUN, "demo-web", "sha256:" + "c" * 64, [], {}, environment=CANDIDATE)

    assert [f.id for f in ledger.findings_snapshot(RUN, "demo-web").findings] == ["CVE-1"]
    candidate = ledger.findings_snapshot(RUN, "demo-web", CANDIDATE)
    assert candidate is not None and candidate.findings == ()
    assert [s.environment for s in ledger.findings_snapshots(image="demo-web")] == ["production", "candidate"]


def test_findings_travel_as_dicts_too(ledger: Ledger) -> None:
    """What the scan stage hands on through XCom is ``Finding.to_dict()``."""
    ledger.record_findings(RUN, "demo-web", OLD, [finding("CVE-1", kev=True).to_dict()], {})
    assert ledger.findings_snapshot(RUN, "demo-web").findings[0].kev is True


def test_mistakes_are_named(ledger: Ledger) -> None:
    with pytest.raises(PatchpipeError, match="run 'nope' is not in the ledger"):
        ledger.record_findings("nope", "demo-web", OLD, [], {})
    with pytest.raises(PatchpipeError, match="'demo-web' .production. in run .*: the digest is empty"):
        ledger.record_findings(RUN, "demo-web", "", [], {})
    with pytest.raises(PatchpipeError, match="environment must be one of"):
        ledger.record_findings(RUN, "demo-web", OLD, [], {}, environment="prod")
    with pytest.raises(PatchpipeError, match="finding .* is malformed"):
        ledger.record_findings(RUN, "demo-web", OLD, [{"id": "CVE-1"}], {})
    with pytest.raises(ValueError, match="published date of CVE-1 .* is naive"):
        ledger.record_findings(RUN, "demo-web", OLD, [finding("CVE-1")], {"CVE-1": datetime(2026, 1, 1)})


def test_published_dates_take_the_earliest_linked_advisory(patchpipe_engine) -> None:
    """The CVE's own record (March) beats the DSA that fixed it (May); a DSA id finds its CVE's date."""
    march, may = datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 5, 1, tzinfo=timezone.utc)
    replace_feed(patchpipe_engine, "osv", FeedOrigin("osv", "test"), [
        Advisory(id="CVE-2026-1000", source="osv", published=march),
        Advisory(id="DSA-5900-1", source="osv", upstream=("CVE-2026-1000",), published=may),
        Advisory(id="CVE-2026-2000", source="osv", published=None),
    ], at=T0)

    dates = published_dates(patchpipe_engine, ["CVE-2026-1000", "DSA-5900-1", "CVE-2026-2000", "CVE-unknown"])

    assert dates == {"CVE-2026-1000": march, "DSA-5900-1": march}
    by_finding = published_dates(patchpipe_engine, [finding("CVE-2026-1000", aliases=["DSA-5900-1"])])
    assert by_finding["CVE-2026-1000"] == march

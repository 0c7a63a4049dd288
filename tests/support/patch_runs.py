"""A realistic patch run in a ledger, written through the Ledger API the way the stages write it.

    from support.patch_runs import write_realistic_run     # tests/ is on pytest's pythonpath

    run_id = write_realistic_run(ledger)

Three images, each with the stage rows StageOperator records (the stage's return value on success,
``{"error", "type", ...}`` on failure, ``{"reason"}`` on skip) and its outcome derived by the real
``lifecycle.record.record``:

- ``demo-web``: two packages patched, two CVEs fixed, approved by alice, promoted; findings snapshots
  of production (3 findings) and of the candidate (1).
- ``vendor-app``: passes staging, is promoted, fails its production analysis (p99 1003.4 ms, bound
  <= 500) and is rolled back; the analysis error carries hostile text (``HOSTILE``).
- ``demo-worker``: nothing to patch, a no-op.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from patchpipe.db import create_schema, make_engine
from patchpipe.advisories.records import Severity, Status
from patchpipe.ledger.models import RunStatus, RunType, StageOutcome
from patchpipe.ledger.snapshots import CANDIDATE
from patchpipe.ledger.store import Ledger
from patchpipe.lifecycle.deploy import ROLLED_BACK_FOR, failure_cause
from patchpipe.lifecycle.record import record
from patchpipe.scan.findings import Finding

RUN = "scheduled__2026-11-24T02:00:00+00:00"
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)
REGISTRY = "127.0.0.1:5000"

WEB_OLD = "sha256:" + "a0" * 32
WEB_NEW = "sha256:" + "a1" * 32
WEB_REF = f"{REGISTRY}/demo/web:1.0"
WEB_CANDIDATE = f"{REGISTRY}/demo/web:1.0-patch.20261124.1"
VENDOR_OLD = "sha256:" + "b0" * 32
VENDOR_NEW = "sha256:" + "b1" * 32
VENDOR_REF = f"{REGISTRY}/demo/vendor:2.4"
VENDOR_CANDIDATE = f"{REGISTRY}/demo/vendor:2.4-patch.20261124.1"
WORKER_DIGEST = "sha256:" + "c0" * 32

HOSTILE = "<script>alert('pwned')</script> | **bold** `tick` & [link](http://evil.example)"
ANALYSIS_ERROR = f"analysis of vendor-app in production failed: request-duration 1003.4 > 500; {HOSTILE}"
FAILING_CHECK = {"check": "request-duration", "kind": "metric", "iteration": 2, "at_seconds": 10.0, "passed": False,
                 "value": 1003.4, "bound": "<= 500", "detail": "1003.4 is above the maximum 500"}
KINDS = {"demo-web": "rebuild", "vendor-app": "patch", "demo-worker": "rebuild"}


def finding(vid: str, package: str, severity: Severity, status: Status = Status.FIXED) -> Finding:
    return Finding(id=vid, aliases=(), package=package, source_package=package, installed="1", fixed="2",
                   status=status, severity=severity)


WEB_FINDINGS = [finding("CVE-2026-0001", "perl-base", Severity.HIGH),
                finding("CVE-2026-0002", "liblzma5", Severity.CRITICAL),
                finding("CVE-2026-0003", "tzdata", Severity.LOW, Status.WILL_NOT_FIX)]
PUBLISHED = {"CVE-2026-0001": T0 - timedelta(days=20), "CVE-2026-0002": T0 - timedelta(days=3)}


class _Writer:
    def __init__(self, ledger: Ledger, run_id: str, image: str, start: datetime):
        self.ledger, self.run_id, self.image, self.clock = ledger, run_id, image, start

    def stage(self, stage: str, outcome: StageOutcome, detail=None, seconds: float = 30.0) -> None:
        self.clock += timedelta(seconds=seconds + 1)
        self.ledger.record_stage(self.run_id, self.image, stage, outcome, self.clock, seconds, detail)

    def ok(self, stage: str, detail=None, seconds: float = 30.0) -> None:
        self.stage(stage, StageOutcome.SUCCESS, detail, seconds)

    def findings(self, digest: str, findings: list[Finding], environment: str = "production") -> None:
        """Recorded at this point of the run's timeline, as the assess and scan stages would."""
        at = self.clock + timedelta(seconds=1)
        Ledger(self.ledger.engine, clock=lambda: at).record_findings(self.run_id, self.image, digest, findings,
                                                                     PUBLISHED, environment=environment)


def _upgrades(*names: tuple[str, str, str, list[str]]) -> list[dict]:
    return [{"name": n, "installed": a, "target": b, "source": n, "fixes": f} for n, a, b, f in names]


def _through_push(w: _Writer, ref: str, old: str, candidate: str, new: str, upgrades: list[dict], scan: dict) -> None:
    w.ok("inventory", {"image": w.image, "ref": ref, "digest": old, "inventory": {}})
    w.ok("assess", {"image": w.image, "source_ref": ref, "source_digest": old, "upgrades": upgrades})
    if w.image == "demo-web":
        w.findings(old, WEB_FINDINGS)
    w.ok("patch", {"image": w.image, "candidate": candidate, "build_id": candidate.rsplit(":", 1)[1],
                   "image_id": "sha256:" + "f" * 64, "digest": None, "reused": False}, seconds=120)
    w.ok("verify", {"candidate": candidate, "verified": [u["name"] for u in upgrades]})
    w.ok("scan", {"candidate": candidate, **scan})
    w.ok("push", {"candidate": candidate, "digest": new, "pushed": True})


def write_realistic_run(ledger: Ledger, run_id: str = RUN, start: datetime = T0) -> str:
    ledger.start_run(run_id, RunType.SCHEDULED, logical_date=start - timedelta(days=7),
                     window_start=start - timedelta(days=7), window_end=start, started_at=start)
    svc = SimpleNamespace(ledger=ledger, target=lambda name: SimpleNamespace(kind=KINDS[name]))

    web = _Writer(ledger, run_id, "demo-web", start)
    _through_push(web, WEB_REF, WEB_OLD, WEB_CANDIDATE, WEB_NEW,
                  _upgrades(("perl-base", "5.36.0-7+deb12u1", "5.36.0-7+deb12u2", ["CVE-2026-0001"]),
                            ("liblzma5", "5.4.1-0.2", "5.4.1-1", ["CVE-2026-0002"])),
                  {"findings_before": 3, "findings_after": 1,
                   "fixed": ["CVE-2026-0001 (perl-base)", "CVE-2026-0002 (liblzma5)"],
                   "still_open": ["CVE-2026-0003 (tzdata)"], "introduced": [],
                   "gate": {"passed": True, "decisions": [], "expired_ignores": []}})
    web.findings("sha256:" + "f" * 64, WEB_FINDINGS[2:], CANDIDATE)
    web.ok("deploy_staging", {"target": "demo-web-staging", "previous_image": f"{WEB_REF}@{WEB_OLD}",
                              "image": f"{WEB_CANDIDATE}@{WEB_NEW}", "changed": True})
    web.ok("analyze_staging", {"passed": True, "reason": "all checks passed"})
    web.ok("approve_production", {"chosen": "Approve", "by": "alice", "at": "2026-11-24 02:20:00+00:00"}, seconds=0)
    web.ok("promote", {"production": WEB_REF, "digest": WEB_NEW,
                       "rollout": {"target": "demo-web-production", "previous_image": f"{WEB_REF}@{WEB_OLD}",
                                   "image": f"{WEB_CANDIDATE}@{WEB_NEW}", "changed": True}})
    web.ok("analyze_production", {"passed": True, "reason": "all checks passed"})
    record(svc, run_id, "demo-web")

    vendor = _Writer(ledger, run_id, "vendor-app", start)
    _through_push(vendor, VENDOR_REF, VENDOR_OLD, VENDOR_CANDIDATE, VENDOR_NEW,
                  _upgrades(("libssl3", "3.0.11-1~deb12u1", "3.0.15-1~deb12u1", ["CVE-2026-0100"])),
                  {"findings_before": 1, "findings_after": 0, "fixed": ["CVE-2026-0100 (libssl3)"],
                   "still_open": [], "introduced": [], "gate": {"passed": True, "decisions": [],
                                                                "expired_ignores": []}})
    vendor.ok("deploy_staging", {"target": "vendor-app-staging", "previous_image": f"{VENDOR_REF}@{VENDOR_OLD}",
                                 "image": f"{VENDOR_CANDIDATE}@{VENDOR_NEW}", "changed": True})
    vendor.ok("analyze_staging", {"passed": True})
    vendor.ok("approve_production", {"approved": True, "required": False}, seconds=0)
    vendor.ok("promote", {"production": VENDOR_REF, "digest": VENDOR_NEW})
    vendor.stage("analyze_production", StageOutcome.FAILED,
                 {"error": ANALYSIS_ERROR, "type": "AnalysisFailed", "analysis": {"failing": FAILING_CHECK}})
    cause = failure_cause(ledger.stage_results(run_id, "vendor-app"), ROLLED_BACK_FOR["production"])
    vendor.ok("rollback_production", {"rolled_back": True, "target": "vendor-app-production",
                                      "previous_image": f"{VENDOR_CANDIDATE}@{VENDOR_NEW}",
                                      "image": f"{VENDOR_REF}@{VENDOR_OLD}", "changed": True, "cause": cause,
                                      "tag_restored": True})
    record(svc, run_id, "vendor-app")

    worker = _Writer(ledger, run_id, "demo-worker", start)
    worker.ok("inventory", {"image": "demo-worker", "ref": f"{REGISTRY}/demo/worker:1.0", "digest": WORKER_DIGEST,
                            "inventory": {}})
    worker.stage("assess", StageOutcome.SKIPPED, {"reason": f"demo-worker: nothing to patch at {WORKER_DIGEST}"})
    worker.findings(WORKER_DIGEST, [])
    record(svc, run_id, "demo-worker")

    ledger.finish_run(run_id, RunStatus.FAILED, finished_at=start + timedelta(minutes=47))
    return run_id


@pytest.fixture(name="ledger")
def realistic_ledger(tmp_path: Path) -> Ledger:
    """A SQLite ledger holding ``write_realistic_run``'s run (request it as ``ledger``)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_schema(engine)
    ledger = Ledger(engine)
    write_realistic_run(ledger)
    yield ledger
    engine.dispose()

"""A realistic patch ledger for the dashboard and metrics tests, written through the Ledger API.

Three weekly-ish runs over four images, with the stage details the operators really record
(inventory, assess, patch, scan diff, deploy rollouts, analysis failures, rollbacks with their cause)
and the findings snapshots the lifecycle records (``Ledger.record_findings``): production's at each
run's assess (no-ops included), the candidate's at scan, where the scan's diff is computed from the
same findings by the scan stage's own ``diff_findings``. The advisory store stays empty: severities
and statuses come from the snapshots alone.

- ``demo-web``: patched and promoted in run A, nothing to patch in run B.
- ``vendor-app``: run A's candidate fails the staging analysis (staging rolled back); run B's passes
  staging, is promoted, fails the production analysis and is rolled back; run C fails at patch. So
  production still runs its original digest, with fixes waiting since run A's assess (and
  CVE-2025-8058, published between the runs, since run B's).
- ``billing-api``: nothing to patch, twice. Its libgcc-s1 finding has a fix only in a Debian point
  release (not in the security suite, so no patch), and run B sees an advisory published since run A.
- ``batch-worker``: its only run fails at inventory, so it has no findings snapshot: unknown, not zero.

``EXPECTED`` holds what the dashboard must show, derived by hand from the rows written here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine

from patchpipe.advisories.records import Severity, Status
from patchpipe.ledger.models import ImageStatus, RunStatus, RunType, StageOutcome
from patchpipe.ledger.snapshots import CANDIDATE
from patchpipe.ledger.store import Ledger
from patchpipe.scan.diff import diff_findings
from patchpipe.scan.findings import Finding

REGISTRY = "127.0.0.1:5000"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
RUN_A = "scheduled__2026-11-14T02:00:00+00:00"
RUN_B = "scheduled__2026-11-21T02:00:00+00:00"
RUN_C = "manual__2026-11-24T09:30:00+00:00"
RUN_A_AT = datetime(2026, 11, 14, 2, 0, tzinfo=timezone.utc)
RUN_B_AT = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)
RUN_C_AT = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)

# The findings the images have: (package, installed, fixed version or None, severity, published).
CATALOGUE = {
    "CVE-2024-56406": ("perl-base", "5.36.0-7+deb12u1", "5.36.0-7+deb12u2", Severity.HIGH, "2025-04-13"),
    "CVE-2025-40909": ("perl-base", "5.36.0-7+deb12u1", "5.36.0-7+deb12u2", Severity.MEDIUM, "2025-05-30"),
    "CVE-2025-6020": ("libpam-modules", "1.5.2-6+deb12u1", "1.5.2-6+deb12u2", Severity.HIGH, "2025-06-17"),
    "CVE-2025-4802": ("libc6", "2.36-9+deb12u9", "2.36-9+deb12u10", Severity.HIGH, "2025-05-16"),
    "CVE-2025-8058": ("libc6", "2.36-9+deb12u9", "2.36-9+deb12u10", Severity.CRITICAL, "2025-07-23"),
    # Fixed in a Debian point release, not in the security suite: fixable, but no patch offers it.
    "CVE-2023-4039": ("libgcc-s1", "12.2.0-14", "12.2.0-14+deb12u1", Severity.MEDIUM, "2023-09-13"),
    "CVE-2011-3374": ("apt", "2.6.1", None, Severity.NEGLIGIBLE, "2019-11-26"),
    "CVE-2022-0563": ("util-linux", "2.38.1-5+deb12u3", None, Severity.UNKNOWN, None),
    "CVE-2025-7709": ("libsqlite3-0", "3.40.1-2+deb12u1", None, Severity.HIGH, "2025-09-08"),
}


def finding(vuln_id: str) -> Finding:
    package, installed, fixed, severity, _ = CATALOGUE[vuln_id]
    return Finding(id=vuln_id, aliases=(), package=package, source_package=package, installed=installed, fixed=fixed,
                   status=Status.FIXED if fixed else Status.AFFECTED, severity=severity, feeds=("debian_tracker",))


def published(findings: list[Finding]) -> dict[str, datetime]:
    dates = {f.id: CATALOGUE[f.id][4] for f in findings}
    return {vid: datetime.fromisoformat(day).replace(tzinfo=timezone.utc) for vid, day in dates.items() if day}


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


DIGESTS = {
    "demo-web": {"original": digest("demo-web original"), "A": digest("demo-web patch A")},
    "vendor-app": {"original": digest("vendor-app original"), "A": digest("vendor-app patch A"),
                   "B": digest("vendor-app patch B")},
    "billing-api": {"original": digest("billing-api original")},
    "batch-worker": {},
}
REPOS = {"demo-web": "demo/web", "vendor-app": "vendor/app", "billing-api": "billing/api", "batch-worker": "batch/worker"}
TAGS = {"demo-web": "1.0", "vendor-app": "2.4", "billing-api": "3.1", "batch-worker": "0.9"}


@dataclass(frozen=True)
class Expected:
    """What the fleet page and the metrics must say for one image."""

    production_digest: str | None
    staging_digest: str | None
    open_by_severity: dict[str, int] | None  # None: no findings snapshot
    unpatched_fixable: int
    oldest_fixable_since: datetime | None
    last_patched: datetime | None
    last_status: str
    rollbacks: dict[str, int]  # by environment


class _Clock:
    def __init__(self) -> None:
        self.now = RUN_A_AT

    def __call__(self) -> datetime:
        return self.now


@dataclass
class _Writer:
    ledger: Ledger
    clock: _Clock

    def stage(self, run: str, image: str, name: str, at: datetime, detail, outcome=StageOutcome.SUCCESS,
              seconds: float = 4.0) -> None:
        self.ledger.record_stage(run, image, name, outcome, at, seconds, detail)

    def result(self, run: str, image: str, at: datetime, **fields) -> None:
        self.clock.now = at
        self.ledger.record_image(run, image, **fields)

    def findings(self, run: str, image: str, at: datetime, image_digest: str, ids: list[str],
                 environment: str = "production") -> list[Finding]:
        """Record the findings snapshot as assess (production) or scan (candidate) does, at ``at``."""
        found = [finding(vid) for vid in ids]
        self.clock.now = at
        self.ledger.record_findings(run, image, image_digest, found, published(found), environment=environment)
        return found


def ref(image: str, value: str) -> str:
    return f"{REGISTRY}/{REPOS[image]}@{value}"


def tag(image: str) -> str:
    return f"{REGISTRY}/{REPOS[image]}:{TAGS[image]}"


def _scan(candidate: str, current: list[Finding], after: list[Finding]) -> dict:
    """The scan stage's detail, its diff computed by the scan stage's own ``diff_findings``."""
    diff = diff_findings(current, after)
    return {"candidate": candidate, "findings_before": len(current), "findings_after": len(after), **diff.summary(),
            "gate": {"passed": True, "decisions": [], "expired_ignores": []}}


def _failed_check(check: str, value: float, bound: float, iteration: int) -> dict:
    return {"error": f"analysis failed: {check} = {value} (bound {bound}) at iteration {iteration}",
            "type": "AnalysisFailed",
            "analysis": {"failing": {"check": check, "value": value, "bound": bound, "iteration": iteration,
                                     "detail": "Prometheus query result"}}}


def _patched_run(w: _Writer, run: str, image: str, at: datetime, patch_label: str, upgrades: list[dict],
                 production: list[str], candidate_has: list[str], before: str) -> tuple[str, str, datetime]:
    """inventory .. push of one image, with both findings snapshots; returns (candidate tag, digest,
    time after push)."""
    t = at
    w.stage(run, image, "inventory", t, {"ref": tag(image), "digest": before})
    t += timedelta(seconds=10)
    current = w.findings(run, image, t, before, production)
    w.stage(run, image, "assess", t, {"upgrades": upgrades})
    t += timedelta(seconds=5)
    candidate = f"{REGISTRY}/{REPOS[image]}:{TAGS[image]}-patch.{at:%Y%m%d}.1"
    w.stage(run, image, "patch", t, {"candidate": candidate}, seconds=95)
    t += timedelta(seconds=100)
    w.stage(run, image, "verify", t, {"verified": len(upgrades)})
    t += timedelta(seconds=5)
    # Not pushed yet: the candidate's snapshot is keyed by its local image id, as scan records it.
    after = w.findings(run, image, t, digest(f"{image} patch {patch_label} image id"), candidate_has, CANDIDATE)
    w.stage(run, image, "scan", t, _scan(candidate, current, after), seconds=2)
    t += timedelta(seconds=5)
    after_digest = DIGESTS[image][patch_label]
    w.stage(run, image, "push", t, {"candidate": candidate, "digest": after_digest})
    return candidate, after_digest, t + timedelta(seconds=10)


def _upgrade(name: str, installed: str, target: str) -> dict:
    return {"name": name, "installed": installed, "target": target}


def _rollout(target: str, previous: str, image: str) -> dict:
    return {"target": target, "previous_image": previous, "image": image, "changed": True}


def _staged_and_promoted(w: _Writer, run: str, image: str, at: datetime, before: str, after: str) -> None:
    """deploy_staging, a passing analyze_staging and promote of ``image`` from digest ``before`` to ``after``."""
    w.stage(run, image, "deploy_staging", at, _rollout(f"{image}-staging", ref(image, before), ref(image, after)),
            seconds=20)
    w.stage(run, image, "analyze_staging", at + timedelta(seconds=25), {"passed": True}, seconds=30)
    w.stage(run, image, "promote", at + timedelta(seconds=60),
            {"production": tag(image), "digest": after,
             "rollout": _rollout(f"{image}-production", ref(image, before), ref(image, after))}, seconds=20)


def fill_fleet_ledger(engine: Engine) -> dict[str, Expected]:
    """Write the three runs; returns ``EXPECTED``."""
    clock = _Clock()
    w = _Writer(Ledger(engine, clock=clock), clock)
    web, vendor, billing, batch = "demo-web", "vendor-app", "billing-api", "batch-worker"

    # Run A ------------------------------------------------------------------------------------
    w.ledger.start_run(RUN_A, RunType.SCHEDULED, logical_date=RUN_A_AT, started_at=RUN_A_AT)
    web_up = [_upgrade("perl-base", "5.36.0-7+deb12u1", "5.36.0-7+deb12u2"),
              _upgrade("libpam-modules", "1.5.2-6+deb12u1", "1.5.2-6+deb12u2")]
    candidate, web_a, t = _patched_run(
        w, RUN_A, web, RUN_A_AT + timedelta(minutes=1), "A", web_up,
        production=["CVE-2024-56406", "CVE-2025-40909", "CVE-2025-6020", "CVE-2011-3374", "CVE-2022-0563"],
        candidate_has=["CVE-2011-3374", "CVE-2022-0563"], before=DIGESTS[web]["original"])
    _staged_and_promoted(w, RUN_A, web, t, DIGESTS[web]["original"], web_a)
    w.stage(RUN_A, web, "analyze_production", t + timedelta(seconds=85), {"passed": True}, seconds=30)
    web_promoted_at = t + timedelta(seconds=120)
    w.result(RUN_A, web, web_promoted_at, kind="rebuild", source_ref=tag(web), before_digest=DIGESTS[web]["original"],
             candidate_tag=candidate, after_digest=web_a, status=ImageStatus.PROMOTED,
             packages=[{"name": u["name"], "from": u["installed"], "to": u["target"]} for u in web_up])

    vendor_up = [_upgrade("libc6", "2.36-9+deb12u9", "2.36-9+deb12u10"),
                 _upgrade("perl-base", "5.36.0-7+deb12u1", "5.36.0-7+deb12u2")]
    vendor_a_assess_at = RUN_A_AT + timedelta(minutes=1, seconds=10)
    candidate, vendor_a, t = _patched_run(
        w, RUN_A, vendor, RUN_A_AT + timedelta(minutes=1), "A", vendor_up,
        production=["CVE-2025-4802", "CVE-2024-56406", "CVE-2023-4039", "CVE-2011-3374"],
        candidate_has=["CVE-2023-4039", "CVE-2011-3374"], before=DIGESTS[vendor]["original"])
    w.stage(RUN_A, vendor, "deploy_staging", t, _rollout("vendor-app-staging", ref(vendor, DIGESTS[vendor]["original"]),
                                                         ref(vendor, vendor_a)), seconds=20)
    failing = _failed_check("request-success-rate", 42.0, 99, 2)
    w.stage(RUN_A, vendor, "analyze_staging", t + timedelta(seconds=25), failing, StageOutcome.FAILED, seconds=15)
    w.stage(RUN_A, vendor, "rollback_staging", t + timedelta(seconds=45),
            {"rolled_back": True, **_rollout("vendor-app-staging", ref(vendor, vendor_a),
                                             ref(vendor, DIGESTS[vendor]["original"])),
             "cause": {"stage": "analyze_staging", "error": failing["error"],
                       "check": failing["analysis"]["failing"]}}, seconds=20)
    w.result(RUN_A, vendor, t + timedelta(seconds=70), kind="patch", source_ref=tag(vendor),
             before_digest=DIGESTS[vendor]["original"], candidate_tag=candidate, after_digest=vendor_a,
             status=ImageStatus.FAILED, failure_stage="analyze_staging",
             failure_reason=failing["error"] + f" (staging rolled back to {ref(vendor, DIGESTS[vendor]['original'])})",
             packages=[{"name": u["name"], "from": u["installed"], "to": u["target"]} for u in vendor_up])

    billing_a_assess_at = RUN_A_AT + timedelta(minutes=2, seconds=10)
    _noop(w, RUN_A, billing, RUN_A_AT + timedelta(minutes=2), ["CVE-2023-4039", "CVE-2011-3374"])
    w.ledger.finish_run(RUN_A, RunStatus.FAILED, finished_at=RUN_A_AT + timedelta(minutes=8))

    # Run B ------------------------------------------------------------------------------------
    w.ledger.start_run(RUN_B, RunType.SCHEDULED, logical_date=RUN_B_AT, started_at=RUN_B_AT)
    _noop(w, RUN_B, web, RUN_B_AT + timedelta(minutes=1), ["CVE-2011-3374", "CVE-2022-0563"], before=web_a)
    _noop(w, RUN_B, billing, RUN_B_AT + timedelta(minutes=2), ["CVE-2023-4039", "CVE-2011-3374", "CVE-2025-7709"])
    error = f"cannot read {tag(batch)}: manifest unknown (the registry has no such tag)"
    w.stage(RUN_B, batch, "inventory", RUN_B_AT + timedelta(minutes=1), {"error": error, "type": "RegistryError"},
            StageOutcome.FAILED, seconds=1)
    w.result(RUN_B, batch, RUN_B_AT + timedelta(minutes=1, seconds=5), kind="patch", source_ref=tag(batch),
             status=ImageStatus.FAILED, failure_stage="inventory", failure_reason=error, packages=[])
    vendor_up_b = vendor_up + [_upgrade("libc-bin", "2.36-9+deb12u9", "2.36-9+deb12u10")]
    candidate, vendor_b, t = _patched_run(
        w, RUN_B, vendor, RUN_B_AT + timedelta(minutes=1), "B", vendor_up_b,
        production=["CVE-2025-4802", "CVE-2024-56406", "CVE-2025-8058", "CVE-2023-4039", "CVE-2011-3374"],
        candidate_has=["CVE-2023-4039", "CVE-2011-3374"], before=DIGESTS[vendor]["original"])
    _staged_and_promoted(w, RUN_B, vendor, t, DIGESTS[vendor]["original"], vendor_b)
    failing = _failed_check("request-duration", 812.0, 500, 3)
    w.stage(RUN_B, vendor, "analyze_production", t + timedelta(seconds=85), failing, StageOutcome.FAILED, seconds=20)
    w.stage(RUN_B, vendor, "rollback_production", t + timedelta(seconds=110),
            {"rolled_back": True, "tag_restored": True,
             **_rollout("vendor-app-production", ref(vendor, vendor_b), ref(vendor, DIGESTS[vendor]["original"])),
             "cause": {"stage": "analyze_production", "error": failing["error"],
                       "check": failing["analysis"]["failing"]}}, seconds=20)
    w.result(RUN_B, vendor, t + timedelta(seconds=135), kind="patch", source_ref=tag(vendor),
             before_digest=DIGESTS[vendor]["original"], candidate_tag=candidate, after_digest=vendor_b,
             status=ImageStatus.ROLLED_BACK, failure_stage="analyze_production", failure_reason=failing["error"],
             packages=[{"name": u["name"], "from": u["installed"], "to": u["target"]} for u in vendor_up_b])
    w.ledger.finish_run(RUN_B, RunStatus.FAILED, finished_at=RUN_B_AT + timedelta(minutes=9))

    # Run C: a manual run whose patch fails ------------------------------------------------------
    w.ledger.start_run(RUN_C, RunType.MANUAL, started_at=RUN_C_AT)
    t = RUN_C_AT + timedelta(minutes=1)
    w.stage(RUN_C, vendor, "inventory", t, {"ref": tag(vendor), "digest": DIGESTS[vendor]["original"]})
    w.findings(RUN_C, vendor, t + timedelta(seconds=10), DIGESTS[vendor]["original"],
               ["CVE-2025-4802", "CVE-2024-56406", "CVE-2025-8058", "CVE-2023-4039", "CVE-2011-3374"])
    w.stage(RUN_C, vendor, "assess", t + timedelta(seconds=10), {"upgrades": vendor_up_b})
    error = "apt-get install libc6=2.36-9+deb12u10 failed: E: Unable to fetch some archives"
    w.stage(RUN_C, vendor, "patch", t + timedelta(seconds=15), {"error": error, "type": "BuildError"},
            StageOutcome.FAILED, seconds=40)
    w.result(RUN_C, vendor, t + timedelta(seconds=60), kind="patch", source_ref=tag(vendor),
             before_digest=DIGESTS[vendor]["original"], status=ImageStatus.FAILED, failure_stage="patch",
             failure_reason=error,
             packages=[{"name": u["name"], "from": u["installed"], "to": u["target"]} for u in vendor_up_b])
    w.ledger.finish_run(RUN_C, RunStatus.FAILED, finished_at=RUN_C_AT + timedelta(minutes=2))

    return {
        web: Expected(production_digest=web_a, staging_digest=web_a,
                      open_by_severity=_counts(negligible=1, unknown=1), unpatched_fixable=0,
                      oldest_fixable_since=None, last_patched=web_promoted_at, last_status="noop",
                      rollbacks={"staging": 0, "production": 0}),
        vendor: Expected(production_digest=DIGESTS[vendor]["original"], staging_digest=vendor_b,
                         open_by_severity=_counts(critical=1, high=2, medium=1, negligible=1), unpatched_fixable=4,
                         oldest_fixable_since=vendor_a_assess_at, last_patched=None, last_status="failed",
                         rollbacks={"staging": 1, "production": 1}),
        billing: Expected(production_digest=DIGESTS[billing]["original"], staging_digest=None,
                          open_by_severity=_counts(high=1, medium=1, negligible=1), unpatched_fixable=1,
                          oldest_fixable_since=billing_a_assess_at, last_patched=None, last_status="noop",
                          rollbacks={"staging": 0, "production": 0}),
        batch: Expected(production_digest=None, staging_digest=None, open_by_severity=None, unpatched_fixable=0,
                        oldest_fixable_since=None, last_patched=None, last_status="failed",
                        rollbacks={"staging": 0, "production": 0}),
    }


def _noop(w: _Writer, run: str, image: str, at: datetime, production: list[str], before: str | None = None) -> None:
    before = before or DIGESTS[image]["original"]
    w.stage(run, image, "inventory", at, {"ref": tag(image), "digest": before})
    w.findings(run, image, at + timedelta(seconds=10), before, production)  # assess records them, then skips
    w.stage(run, image, "assess", at + timedelta(seconds=10), {"reason": "nothing to patch"}, StageOutcome.SKIPPED)
    w.result(run, image, at + timedelta(seconds=20), kind="rebuild" if image != "vendor-app" else "patch",
             source_ref=tag(image), before_digest=before, status=ImageStatus.NOOP, packages=[])


def _counts(**given: int) -> dict[str, int]:
    return {s: given.get(s, 0) for s in ("critical", "high", "medium", "low", "negligible", "unknown")}

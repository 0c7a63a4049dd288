"""The JSON shape of the fleet and image pages (``/api/fleet``, ``/api/images/<name>``).

Spelled out field by field rather than dumped from the dataclasses, so the API does not change
when a dataclass gains a field, and times are ISO 8601 UTC strings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from patchpipe.dashboard.findings import ImageFindings
from patchpipe.dashboard.fleet import FleetRow
from patchpipe.dashboard.image_page import Entry, ImageDetail
from patchpipe.ledger.store import ImageRecord


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _findings(found: ImageFindings | None, now: datetime) -> dict[str, Any] | None:
    if found is None:
        return None
    since = found.oldest_unpatched_fixable()
    return {
        "by_severity": found.counts(),
        "as_of": _time(found.as_of),
        "run_id": found.run_id,
        "unpatched_fixable": sum(f.fixable for f in found.findings),
        "oldest_unpatched_fixable_since": _time(since),
        "oldest_unpatched_fixable_age_seconds": (now - since).total_seconds() if since else None,
        "findings": [{"id": f.id, "package": f.package, "severity": f.severity,
                      "fixable_since": _time(f.fixable_since)} for f in found.findings],
    }


def _result(result: ImageRecord) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "status": result.status.value,
        "updated_at": _time(result.updated_at),
        "before_digest": result.before_digest,
        "candidate_tag": result.candidate_tag,
        "after_digest": result.after_digest,
        "failure_stage": result.failure_stage,
        "failure_reason": result.failure_reason,
        "packages": [change.to_json() for change in result.packages],
    }


def fleet_row_json(row: FleetRow, now: datetime) -> dict[str, Any]:
    return {
        "image": row.image,
        "kind": row.kind,
        "production_digest": row.production_digest,
        "staging_digest": row.staging_digest,
        "open_findings": _findings(row.findings, now),
        "last_patched": _time(row.last_patched),
        "last_result": _result(row.last_result),
    }


def fleet_json(rows: list[FleetRow], now: datetime) -> dict[str, Any]:
    return {"generated_at": _time(now), "images": [fleet_row_json(row, now) for row in rows]}


def _entries(entries: tuple[Entry, ...]) -> list[dict[str, str]]:
    return [{"id": e.id, "package": e.package, "severity": e.severity} for e in entries]


def image_json(detail: ImageDetail, now: datetime) -> dict[str, Any]:
    diff = detail.last_diff
    return {
        **fleet_row_json(detail.row, now),
        "history": [{**_result(h.result), "run_type": h.run.run_type.value if h.run else None,
                     "rollbacks": [{"environment": r.environment, "succeeded": r.succeeded, "cause": r.cause,
                                    "at": _time(r.at)} for r in h.rollbacks]}
                    for h in detail.history],
        "fixed": [{**_entries((f.finding,))[0], "run_id": f.run_id, "promoted_at": _time(f.promoted_at)}
                  for f in detail.fixed],
        "last_diff": None if diff is None else {
            "run_id": diff.run_id, "scanned_at": _time(diff.scanned_at), "candidate": diff.candidate,
            "findings_before": diff.findings_before, "findings_after": diff.findings_after,
            "fixed": _entries(diff.fixed), "still_open": _entries(diff.still_open),
            "introduced": _entries(diff.introduced), "gate_passed": diff.gate_passed,
            "packages": [change.to_json() for change in diff.packages], "promoted": diff.promoted,
        },
    }

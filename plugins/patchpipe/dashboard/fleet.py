"""The fleet page: per image, what production and staging run, its open findings, when it was last
patched and how its last run went. Everything is read from the ledger (``LedgerSnapshot``).

Production's digest is the one the latest run left there: the candidate's when the run promoted it
(and no rollback undid that), else the digest the run's inventory read from the production tag,
which a production rollback restores. Staging's is the image of the latest successful
``deploy_staging`` or ``rollback_staging``. Neither is read live from the registry or the
orchestrator: the page shows what patchpipe did, and ``make lab-status`` shows what runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from patchpipe.dashboard.findings import ImageFindings
from patchpipe.dashboard.snapshot import LedgerSnapshot
from patchpipe.deploy.base import digest_of
from patchpipe.ledger.models import StageOutcome
from patchpipe.ledger.store import ImageRecord

STAGING_STAGES = ("deploy_staging", "rollback_staging")


@dataclass(frozen=True)
class FleetRow:
    image: str
    kind: str | None
    production_digest: str | None
    staging_digest: str | None
    findings: ImageFindings | None  # None: no findings snapshot (never assessed), so unknown (not zero)
    last_patched: datetime | None  # when production last got a patched digest
    last_result: ImageRecord  # the image's latest result


def fleet_rows(snapshot: LedgerSnapshot, findings: dict[str, ImageFindings]) -> list[FleetRow]:
    return [fleet_row(snapshot, findings, image) for image in snapshot.images]


def fleet_row(snapshot: LedgerSnapshot, findings: dict[str, ImageFindings], image: str) -> FleetRow:
    results = snapshot.results[image]
    return FleetRow(
        image=image,
        kind=next((r.kind for r in results if r.kind), None),
        production_digest=production_digest(snapshot, image),
        staging_digest=staging_digest(snapshot, image),
        findings=findings.get(image),
        last_patched=last_patched(snapshot, image),
        last_result=results[0],
    )


def production_digest(snapshot: LedgerSnapshot, image: str) -> str | None:
    for result in snapshot.results.get(image, []):  # newest first
        if snapshot.production_changed_in(image, result.run_id) and result.after_digest:
            return result.after_digest
        if result.before_digest:
            return result.before_digest
    return None


def staging_digest(snapshot: LedgerSnapshot, image: str) -> str | None:
    for stage in reversed(snapshot.stages_of(image, *STAGING_STAGES)):
        detail = stage.detail if isinstance(stage.detail, dict) else {}
        if stage.outcome is StageOutcome.SUCCESS and detail.get("image"):
            return digest_of(str(detail["image"]))
    return None


def last_patched(snapshot: LedgerSnapshot, image: str) -> datetime | None:
    return next((r.updated_at for r in snapshot.results.get(image, [])
                 if snapshot.production_changed_in(image, r.run_id)), None)

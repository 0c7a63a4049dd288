"""Rollbacks recorded in the ledger: which environment, when, and why.

A ``rollback_staging`` / ``rollback_production`` stage runs only when a deploy or an analysis
failed. Its detail says whether it changed anything (``rolled_back``) and the ``cause`` (the failed
stage, its error, and for an analysis the failing check with its value and bound). A rollback that
had nothing to undo (no candidate was pushed) has neither, and is not counted. A rollback whose own
stage failed is counted apart: the environment may still run the bad candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from patchpipe.dashboard.snapshot import LedgerSnapshot
from patchpipe.ledger.models import StageOutcome

ROLLBACK_STAGES = {"rollback_staging": "staging", "rollback_production": "production"}


@dataclass(frozen=True)
class Rollback:
    image: str
    environment: str  # staging | production
    run_id: str
    at: datetime
    succeeded: bool  # False: the rollback stage itself failed
    cause: dict  # {"stage", "error", "check": {...}} as recorded, {} when unknown

    def describe(self) -> str:
        """One line: the failed stage and why, e.g. ``analyze_staging: request-success-rate 42.0 (bound 99)``."""
        if not self.succeeded:
            return "the rollback itself failed"
        if not self.cause:
            return "cause not recorded"
        text = str(self.cause.get("stage") or "?")
        check = self.cause.get("check") or {}
        if check.get("check"):
            text += f": {check['check']} {check.get('value')} (bound {check.get('bound')})"
        elif self.cause.get("error"):
            text += f": {self.cause['error']}"
        return text


def rollbacks(snapshot: LedgerSnapshot, image: str | None = None) -> list[Rollback]:
    """Every rollback (of ``image`` if given), oldest first."""
    found = []
    for name in [image] if image else sorted(snapshot.stages):
        for stage in snapshot.stages_of(name, *ROLLBACK_STAGES):
            detail = stage.detail if isinstance(stage.detail, dict) else {}
            if stage.outcome is StageOutcome.FAILED:
                found.append(Rollback(name, ROLLBACK_STAGES[stage.stage], stage.run_id, stage.started_at, False,
                                      {"error": detail.get("error")}))
            elif stage.outcome is StageOutcome.SUCCESS and (detail.get("rolled_back") or detail.get("cause")):
                found.append(Rollback(name, ROLLBACK_STAGES[stage.stage], stage.run_id, stage.started_at, True,
                                      dict(detail.get("cause") or {})))
    return found

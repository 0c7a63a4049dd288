"""Open findings of an image's production digest: what the fleet page counts and the metrics export.

These types are the dashboard's whole view of findings. Where they come from is decided in
``findings_source`` alone (the ledger's findings snapshots), so pages and metrics never read a
snapshot row themselves.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from patchpipe.ledger.snapshots import SEVERITY_ORDER

# Worst first: the order pages and metrics list severities in (the ledger's own order).
SEVERITIES: tuple[str, ...] = tuple(severity.value for severity in SEVERITY_ORDER)


@dataclass(frozen=True)
class OpenFinding:
    id: str  # the CVE, or the advisory's own id
    package: str  # the installed binary package
    severity: str  # one of ``SEVERITIES``
    # Set when a fixed version exists (the finding's status is ``fixed``): since when the production
    # digest has had this finding with a fix available (see ``findings_source``).
    fixable_since: datetime | None = None

    @property
    def fixable(self) -> bool:
        return self.fixable_since is not None


@dataclass(frozen=True)
class ImageFindings:
    image: str
    run_id: str  # the run whose findings snapshot these come from
    as_of: datetime  # when that snapshot was recorded: the findings are as the advisory store knew them then
    findings: tuple[OpenFinding, ...]

    def counts(self) -> dict[str, int]:
        """Open findings by severity, every severity present (0 when none), highest first."""
        counted = Counter(f.severity for f in self.findings)
        return {severity: counted.get(severity, 0) for severity in SEVERITIES}

    def oldest_unpatched_fixable(self) -> datetime | None:
        """Since when the oldest fixable finding has waited for its fix to reach production."""
        return min((f.fixable_since for f in self.findings if f.fixable_since), default=None)

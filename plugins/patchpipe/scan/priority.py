"""The order findings are worked in: ``sorted(findings, key=priority)``.

One key, most urgent first: exploited (on CISA's KEV list), then fixable (a fixed version exists, so
patching clears it), then severity (critical .. unknown), then EPSS (higher probability of
exploitation first; unscored last), then id, package and installed version, so equal findings
always come out in the same order.
"""

from __future__ import annotations

from patchpipe.advisories.store import SEVERITY_RANK
from patchpipe.scan.findings import Finding

__all__ = ["priority", "prioritized"]


def priority(finding: Finding) -> tuple:
    """The sort key: smaller sorts first."""
    return (
        not finding.kev,
        not finding.fixable,
        -SEVERITY_RANK[finding.severity],
        -(finding.epss if finding.epss is not None else -1.0),
        finding.id,
        finding.package,
        finding.installed,
    )


def prioritized(findings: list[Finding]) -> list[Finding]:
    """``findings``, most urgent first."""
    return sorted(findings, key=priority)

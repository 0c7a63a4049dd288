"""Candidate versus current image: which findings a patch fixed, which it left open, which it introduced.

A finding is the same in both images when it names the same vulnerability (its id or any alias) in
the same binary package. The installed version is deliberately not part of the key: a patch that
raises a package from one vulnerable version to another still vulnerable one leaves the finding
*open*, it does not fix one and introduce another.

``new_blocking(diff, gate_result)`` is the promotion rule: a candidate whose introduced findings
include one the policy gate blocks is never promoted. Blocking findings the current image already
has do not stop the candidate, because withholding it would keep them *and* everything it fixes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from patchpipe.scan.findings import Finding
from patchpipe.scan.policy import Decision, GateResult

__all__ = ["FindingsDiff", "diff_findings", "new_blocking"]


@dataclass(frozen=True)
class FindingsDiff:
    fixed: list[Finding]  # in the current image, gone from the candidate
    still_open: list[Finding]  # in both (the candidate's finding)
    introduced: list[Finding]  # only in the candidate

    def summary(self) -> dict:
        return {"fixed": _ids(self.fixed), "still_open": _ids(self.still_open), "introduced": _ids(self.introduced)}


def diff_findings(current: Iterable[Finding], candidate: Iterable[Finding]) -> FindingsDiff:
    current, candidate = list(current), list(candidate)
    before = _index(current)
    after = _index(candidate)
    return FindingsDiff(
        fixed=[f for f in current if not _known(f, after)],
        still_open=[f for f in candidate if _known(f, before)],
        introduced=[f for f in candidate if not _known(f, before)],
    )


def new_blocking(diff: FindingsDiff, result: GateResult) -> list[Decision]:
    """The gate's blocking decisions about findings the candidate introduced."""
    introduced = {(f.id, f.package) for f in diff.introduced}
    return [d for d in result.blocking if (d.finding_id, d.package) in introduced]


def _index(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(vid, f.package) for f in findings for vid in f.ids}


def _known(finding: Finding, index: set[tuple[str, str]]) -> bool:
    return any((vid, finding.package) in index for vid in finding.ids)


def _ids(findings: list[Finding]) -> list[str]:
    return sorted({f"{f.id} ({f.package})" for f in findings})

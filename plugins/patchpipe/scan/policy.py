"""The policy gate: ``gate(findings, policy, today) -> GateResult``, one explained decision per finding.

Each finding is decided by the first rule that applies:

1. An ignore entry naming the finding's id or one of its aliases, still active (``today`` on or
   before ``expires``): **ignored**, with the entry's reason. An ignore entry is a person's explicit,
   reasoned and expiring acceptance, so it holds even for a KEV finding; without it a known-exploited
   flaw with no fix would block every release until the distro ships one.
2. On CISA's KEV list: **blocks**, whatever its severity and whether or not a fix exists.
3. No fix yet (``affected``, ``will_not_fix``) while ``fixable_only`` is set: **allowed**; patching
   cannot clear it.
4. Severity in ``block_severities``: **blocks**; otherwise **allowed**.

An expired entry (``today`` after ``expires``) stops ignoring: its finding falls through to rules
2-4, its decision's reason says the entry expired, and the entry is listed in ``expired_ignores``
(every expired entry of the policy, matched or not, so a stale manifest is noticed). The gate passes
when no decision blocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from patchpipe.fleet.models import IgnoreEntry, Policy
from patchpipe.scan.findings import Finding

__all__ = ["Decision", "GateResult", "gate"]

Outcome = Literal["blocks", "allowed", "ignored"]


@dataclass(frozen=True)
class Decision:
    finding_id: str
    outcome: Outcome
    reason: str
    package: str = ""  # the binary package, since one vulnerability can be found in several


@dataclass(frozen=True)
class GateResult:
    passed: bool
    decisions: list[Decision]
    expired_ignores: list[IgnoreEntry] = field(default_factory=list)

    @property
    def blocking(self) -> list[Decision]:
        return [d for d in self.decisions if d.outcome == "blocks"]


def gate(findings: Iterable[Finding], policy: Policy, today: date) -> GateResult:
    """Decide every finding under ``policy`` as of ``today``."""
    entries = {entry.id: entry for entry in policy.ignore}
    decisions = [_decide(finding, policy, entries, today) for finding in findings]
    expired = [entry for entry in policy.ignore if not entry.is_active(today)]
    return GateResult(passed=not any(d.outcome == "blocks" for d in decisions), decisions=decisions,
                      expired_ignores=expired)


def _decide(finding: Finding, policy: Policy, entries: dict[str, IgnoreEntry], today: date) -> Decision:
    entry = next((entries[i] for i in finding.ids if i in entries), None)
    if entry is not None and entry.is_active(today):
        named = "" if entry.id == finding.id else f" (as {entry.id})"
        return Decision(finding.id, "ignored", f"ignored{named} until {entry.expires.isoformat()}: {entry.reason}",
                        finding.package)
    expired = f"; its ignore entry expired on {entry.expires.isoformat()}" if entry is not None else ""
    outcome, reason = _rule(finding, policy)
    return Decision(finding.id, outcome, reason + expired, finding.package)


def _rule(finding: Finding, policy: Policy) -> tuple[Outcome, str]:
    severity = finding.severity.value
    if finding.kev:
        return "blocks", f"known exploited (CISA KEV); KEV always blocks ({severity}, {_fix(finding)})"
    if policy.fixable_only and not finding.fixable:
        return "allowed", f"no fix available ({finding.status.value}) and the policy blocks only fixable findings"
    if severity in policy.block_severities:
        return "blocks", f"severity {severity} is blocking ({_fix(finding)})"
    blocking = ", ".join(policy.block_severities) or "none"
    return "allowed", f"severity {severity} is not blocking (blocking: {blocking})"


def _fix(finding: Finding) -> str:
    return f"fixed in {finding.fixed}" if finding.fixed else f"no fix: {finding.status.value}"

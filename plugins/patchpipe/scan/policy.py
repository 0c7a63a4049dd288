"""The policy gate: ``gate(findings, policy, today, vex=None) -> GateResult``, one explained decision per finding.

Each finding is decided by the first rule that applies:

1. The OpenVEX statement that speaks for the finding (``vex``, see ``scan.vex_match``: the latest
   one about its vulnerability and this image or package) says ``not_affected``: **not_affected**,
   with the statement's justification and impact statement. It comes first, before ignore entries
   and KEV, because it is a different claim: not "we accept this risk for now" but "the vulnerable
   code is not there, or cannot be reached": a known-exploited flaw in code that is not run is no
   risk to this image. Unlike an ignore entry it does not expire; it is withdrawn by a later
   statement saying ``affected`` or ``under_investigation``. A later ``fixed`` withdraws it too and
   is not believed in its place: the finding is patchpipe's own evidence that the installed package
   is below the distribution's fix, and patching clears it. Whenever the statement that speaks is
   not ``not_affected``, the decision's reason says so.
2. An ignore entry naming the finding's id or one of its aliases, still active (``today`` on or
   before ``expires``): **ignored**, with the entry's reason. An ignore entry is a person's explicit,
   reasoned and expiring acceptance, so it holds even for a KEV finding; without it a known-exploited
   flaw with no fix would block every release until the distro ships one.
3. On CISA's KEV list: **blocks**, whatever its severity and whether or not a fix exists.
4. No fix yet (``affected``, ``will_not_fix``) while ``fixable_only`` is set: **allowed**; patching
   cannot clear it.
5. Severity in ``block_severities``: **blocks**; otherwise **allowed**.

An expired entry (``today`` after ``expires``) stops ignoring: its finding falls through to rules
3-5, its decision's reason says the entry expired, and the entry is listed in ``expired_ignores``
(every expired entry of the policy, matched or not, so a stale manifest is noticed). The gate passes
when no decision blocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from patchpipe.fleet.models import IgnoreEntry, Policy
from patchpipe.scan.findings import Finding
from patchpipe.scan.vex import VexStatement
from patchpipe.scan.vex_match import VexStatements

__all__ = ["Decision", "GateResult", "gate"]

Outcome = Literal["blocks", "allowed", "ignored", "not_affected"]


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``patchpipe scan --policy``'s ``gate``."""
        return {
            "passed": self.passed,
            "decisions": [{"id": d.finding_id, "package": d.package, "outcome": d.outcome, "reason": d.reason}
                          for d in self.decisions],
            "expired_ignores": [{"id": e.id, "reason": e.reason, "expires": e.expires.isoformat()}
                                for e in self.expired_ignores],
        }


def gate(findings: Iterable[Finding], policy: Policy, today: date, vex: VexStatements | None = None) -> GateResult:
    """Decide every finding under ``policy`` as of ``today``, with the OpenVEX statements ``vex``."""
    entries = {entry.id: entry for entry in policy.ignore}
    decisions = [_decide(finding, policy, entries, today, vex.latest(finding) if vex else None)
                 for finding in findings]
    expired = [entry for entry in policy.ignore if not entry.is_active(today)]
    return GateResult(passed=not any(d.outcome == "blocks" for d in decisions), decisions=decisions,
                      expired_ignores=expired)


def _decide(finding: Finding, policy: Policy, entries: dict[str, IgnoreEntry], today: date,
            statement: VexStatement | None) -> Decision:
    if statement is not None and statement.status == "not_affected":
        return Decision(finding.id, "not_affected", _not_affected(finding, statement), finding.package)
    vex = f"; VEX {statement.where} says {statement.status}" if statement is not None else ""
    entry = next((entries[i] for i in finding.ids if i in entries), None)
    if entry is not None and entry.is_active(today):
        named = "" if entry.id == finding.id else f" (as {entry.id})"
        return Decision(finding.id, "ignored",
                        f"ignored{named} until {entry.expires.isoformat()}: {entry.reason}{vex}", finding.package)
    expired = f"; its ignore entry expired on {entry.expires.isoformat()}" if entry is not None else ""
    outcome, reason = _rule(finding, policy)
    return Decision(finding.id, outcome, reason + expired + vex, finding.package)


def _not_affected(finding: Finding, statement: VexStatement) -> str:
    ids = {i.casefold() for i in finding.ids}
    name = next(n for n in statement.names if n.casefold() in ids)
    named = "" if name.casefold() == finding.id.casefold() else f" as {name}"
    because = ": ".join(filter(None, [statement.justification, statement.impact_statement]))
    return (f"not affected per VEX {statement.where}{named} ({statement.document_id}, {statement.author}, "
            f"{statement.timestamp.date().isoformat()}): {because}")


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

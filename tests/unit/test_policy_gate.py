"""The policy gate (``patchpipe.scan.policy``): every finding gets one decision with its reason."""

from __future__ import annotations

import json
from datetime import date

import pytest

from patchpipe.advisories.records import Severity, Status
from patchpipe.fleet.models import IgnoreEntry, Policy
from patchpipe.packages.dpkg import InstalledPackage
from patchpipe.packages.inventory import Inventory
from patchpipe.packages.os_release import OsRelease
from patchpipe.scan.findings import Finding
from patchpipe.scan.policy import gate
from patchpipe.scan.vex import parse_vex
from patchpipe.scan.vex_match import VexStatements, VexTarget

TODAY = date(2026, 11, 24)


def finding(id: str, severity: Severity = Severity.HIGH, *, fixed: bool = True, kev: bool = False,
            aliases: tuple[str, ...] = (), status: Status | None = None) -> Finding:
    return Finding(id=id, aliases=aliases, package="libfoo", source_package="foo", installed="1.0-1",
                   fixed="1.0-2" if fixed else None, status=status or (Status.FIXED if fixed else Status.AFFECTED),
                   severity=severity, kev=kev)


def outcomes(result) -> dict[str, str]:
    return {d.finding_id: d.outcome for d in result.decisions}


def test_blocking_severities_block_and_the_others_are_allowed() -> None:
    result = gate([finding("CVE-1", Severity.CRITICAL), finding("CVE-2", Severity.HIGH),
                   finding("CVE-3", Severity.MEDIUM)], Policy(), TODAY)
    assert not result.passed
    assert outcomes(result) == {"CVE-1": "blocks", "CVE-2": "blocks", "CVE-3": "allowed"}
    reasons = {d.finding_id: d.reason for d in result.decisions}
    assert reasons["CVE-1"] == "severity critical is blocking (fixed in 1.0-2)"
    assert reasons["CVE-3"] == "severity medium is not blocking (blocking: critical, high)"


def test_only_allowed_findings_pass() -> None:
    result = gate([finding("CVE-3", Severity.LOW)], Policy(), TODAY)
    assert result.passed and result.blocking == [] and result.expired_ignores == []


def test_fixable_only_lets_unfixed_findings_through_and_false_blocks_them() -> None:
    unfixed = [finding("CVE-1", Severity.CRITICAL, fixed=False),
               finding("CVE-2", Severity.CRITICAL, fixed=False, status=Status.WILL_NOT_FIX)]
    lenient = gate(unfixed, Policy(fixable_only=True), TODAY)
    assert lenient.passed and outcomes(lenient) == {"CVE-1": "allowed", "CVE-2": "allowed"}
    assert "will_not_fix" in lenient.decisions[1].reason
    strict = gate(unfixed, Policy(fixable_only=False), TODAY)
    assert not strict.passed and outcomes(strict) == {"CVE-1": "blocks", "CVE-2": "blocks"}


def test_kev_blocks_whatever_its_severity_and_fix() -> None:
    result = gate([finding("CVE-1", Severity.LOW, fixed=False, kev=True)],
                  Policy(block_severities=["critical"], fixable_only=True), TODAY)
    assert not result.passed
    assert result.decisions[0].outcome == "blocks" and "KEV" in result.decisions[0].reason


def test_an_active_ignore_entry_ignores_by_id_or_alias_with_its_reason() -> None:
    policy = Policy(ignore=[IgnoreEntry(id="DSA-5000-1", reason="not reachable in this image", expires=TODAY),
                            IgnoreEntry(id="CVE-2", reason="vendor patch applied", expires=date(2027, 1, 1))])
    result = gate([finding("CVE-1", Severity.CRITICAL, aliases=("DSA-5000-1",)),
                   finding("CVE-2", Severity.CRITICAL, kev=True)], policy, TODAY)
    assert result.passed
    assert [(d.outcome, d.reason) for d in result.decisions] == [
        ("ignored", "ignored (as DSA-5000-1) until 2026-11-24: not reachable in this image"),
        ("ignored", "ignored until 2027-01-01: vendor patch applied"),
    ]


def test_an_expired_entry_stops_ignoring_and_is_reported() -> None:
    stale = IgnoreEntry(id="CVE-1", reason="waiting for upstream", expires=date(2026, 11, 23))
    unused = IgnoreEntry(id="CVE-404", reason="gone", expires=date(2025, 1, 1))
    result = gate([finding("CVE-1", Severity.HIGH)], Policy(ignore=[stale, unused]), TODAY)
    assert not result.passed
    (decision,) = result.decisions
    assert decision.outcome == "blocks"
    assert decision.reason == "severity high is blocking (fixed in 1.0-2); its ignore entry expired on 2026-11-23"
    assert result.expired_ignores == [stale, unused]


def test_every_finding_gets_a_decision_in_order() -> None:
    findings = [finding(f"CVE-{n}", severity) for n, severity in enumerate(Severity)]
    result = gate(findings, Policy(), TODAY)
    assert [d.finding_id for d in result.decisions] == [f.id for f in findings]
    assert all(d.reason and d.package == "libfoo" for d in result.decisions)


# --- OpenVEX statements --------------------------------------------------------------------------

def vex_for(*statements: dict) -> VexStatements:
    """Statements about package libfoo (each a dict of status and fields), in one document."""
    document = {"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://openvex.dev/docs/public/vex-gate",
                "author": "Platform Security", "timestamp": "2026-11-01T00:00:00Z", "version": 2,
                "statements": [{"vulnerability": {"name": s.pop("name", "CVE-1")},
                                "products": [{"@id": "pkg:deb/debian/libfoo"}], **s} for s in statements]}
    package = InstalledPackage("libfoo", "1.0-1", "amd64", "foo", "1.0-1")
    inventory = Inventory(OsRelease(id="debian", version_id="12"), "dpkg", [package])
    return VexStatements(parse_vex(json.dumps(document), "foo.vex.json"), VexTarget.of(inventory))


NOT_AFFECTED = {"status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
                "impact_statement": "libfoo's parser is never called"}


def test_a_vex_not_affected_statement_clears_even_a_known_exploited_finding() -> None:
    result = gate([finding("CVE-1", Severity.CRITICAL, kev=True), finding("CVE-2", Severity.CRITICAL)], Policy(),
                  TODAY, vex=vex_for(dict(NOT_AFFECTED)))
    assert [(d.finding_id, d.outcome) for d in result.decisions] == [("CVE-1", "not_affected"), ("CVE-2", "blocks")]
    assert result.decisions[0].reason == (
        "not affected per VEX foo.vex.json statements[0] (https://openvex.dev/docs/public/vex-gate, Platform Security, "
        "2026-11-01): vulnerable_code_not_in_execute_path: libfoo's parser is never called")
    assert not result.passed
    assert gate([finding("CVE-1", kev=True)], Policy(), TODAY, vex=vex_for(dict(NOT_AFFECTED))).passed


def test_vex_comes_before_an_ignore_entry_and_says_which_alias_it_named() -> None:
    policy = Policy(ignore=[IgnoreEntry(id="CVE-1", reason="accepted", expires=date(2027, 1, 1))])
    statement = {"name": "DSA-5000-1", "status": "not_affected", "impact_statement": "built without the module"}
    (decision,) = gate([finding("CVE-1", aliases=("DSA-5000-1",))], policy, TODAY, vex=vex_for(statement)).decisions
    assert decision.outcome == "not_affected"
    assert decision.reason.startswith("not affected per VEX foo.vex.json statements[0] as DSA-5000-1 (")
    assert decision.reason.endswith("): built without the module")


@pytest.mark.parametrize("status", ["affected", "under_investigation", "fixed"])
def test_a_later_statement_of_another_status_takes_not_affected_back_and_is_named(status: str) -> None:
    later = {"status": status, "timestamp": "2026-11-02T00:00:00Z"}
    result = gate([finding("CVE-1", Severity.HIGH)], Policy(), TODAY, vex=vex_for(dict(NOT_AFFECTED), later))
    (decision,) = result.decisions
    assert not result.passed and decision.outcome == "blocks"
    assert decision.reason == f"severity high is blocking (fixed in 1.0-2); VEX foo.vex.json statements[1] says {status}"


def test_an_expired_entry_is_still_reported_when_vex_clears_its_finding() -> None:
    stale = IgnoreEntry(id="CVE-1", reason="waiting", expires=date(2026, 1, 1))
    result = gate([finding("CVE-1")], Policy(ignore=[stale]), TODAY, vex=vex_for(dict(NOT_AFFECTED)))
    assert result.passed and result.decisions[0].outcome == "not_affected"
    assert result.expired_ignores == [stale]


def test_an_active_ignore_entry_still_holds_when_vex_says_affected() -> None:
    policy = Policy(ignore=[IgnoreEntry(id="CVE-1", reason="accepted", expires=date(2027, 1, 1))])
    (decision,) = gate([finding("CVE-1", kev=True)], policy, TODAY, vex=vex_for({"status": "affected"})).decisions
    assert (decision.outcome, decision.reason) == (
        "ignored", "ignored until 2027-01-01: accepted; VEX foo.vex.json statements[0] says affected")


def test_the_gate_result_as_json() -> None:
    stale = IgnoreEntry(id="CVE-9", reason="gone", expires=date(2026, 1, 1))
    result = gate([finding("CVE-1"), finding("CVE-2", Severity.LOW)], Policy(ignore=[stale]), TODAY,
                  vex=vex_for(dict(NOT_AFFECTED)))
    assert result.to_dict() == {
        "passed": True,
        "decisions": [
            {"id": "CVE-1", "package": "libfoo", "outcome": "not_affected", "reason": result.decisions[0].reason},
            {"id": "CVE-2", "package": "libfoo", "outcome": "allowed",
             "reason": "severity low is not blocking (blocking: critical, high)"},
        ],
        "expired_ignores": [{"id": "CVE-9", "reason": "gone", "expires": "2026-01-01"}],
    }

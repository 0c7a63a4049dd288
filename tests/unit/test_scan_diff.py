"""Candidate versus current findings (``patchpipe.scan.diff``) and the promotion rule."""

from __future__ import annotations

from datetime import date

from patchpipe.advisories.records import Severity, Status
from patchpipe.fleet.models import Policy
from patchpipe.scan.diff import diff_findings, new_blocking
from patchpipe.scan.findings import Finding
from patchpipe.scan.policy import gate

TODAY = date(2026, 11, 29)


def finding(vid: str, package: str = "libssl3", installed: str = "3.0.11-1~deb12u1", *, aliases=(),
            severity=Severity.HIGH, fixed: str | None = "3.0.15-1~deb12u1") -> Finding:
    return Finding(vid, tuple(aliases), package, "openssl", installed, fixed,
                   Status.FIXED if fixed else Status.AFFECTED, severity)


def test_a_patched_package_fixes_its_findings_and_keeps_the_others_open() -> None:
    current = [finding("CVE-2024-0001"), finding("CVE-2024-0002", "perl-base", "5.36.0-7", fixed=None)]
    candidate = [finding("CVE-2024-0002", "perl-base", "5.36.0-7", fixed=None)]
    diff = diff_findings(current, candidate)
    assert diff.summary() == {"fixed": ["CVE-2024-0001 (libssl3)"], "still_open": ["CVE-2024-0002 (perl-base)"],
                              "introduced": []}


def test_a_finding_raised_to_another_vulnerable_version_stays_open_not_fixed_and_introduced() -> None:
    current = [finding("CVE-2024-0001", installed="3.0.11-1~deb12u1", fixed="3.0.17-1~deb12u2")]
    candidate = [finding("CVE-2024-0001", installed="3.0.15-1~deb12u1", fixed="3.0.17-1~deb12u2")]
    diff = diff_findings(current, candidate)
    assert (diff.fixed, diff.introduced) == ([], [])
    assert diff.still_open == candidate


def test_the_same_vulnerability_under_an_alias_is_the_same_finding() -> None:
    current = [finding("DSA-5532-1", aliases=("CVE-2023-5363",))]
    candidate = [finding("CVE-2023-5363", aliases=("DSA-5532-1",))]
    assert diff_findings(current, candidate).introduced == []


def test_the_same_vulnerability_in_another_package_is_introduced() -> None:
    current = [finding("CVE-2024-0001", "libssl3")]
    candidate = [finding("CVE-2024-0001", "libssl3"), finding("CVE-2024-0001", "openssl")]
    assert diff_findings(current, candidate).summary()["introduced"] == ["CVE-2024-0001 (openssl)"]


def test_a_new_blocking_finding_stops_the_candidate() -> None:
    current = [finding("CVE-2024-0001")]
    candidate = [finding("CVE-2024-0001"), finding("CVE-2024-0009", "libc6", "2.36-9+deb12u7")]
    diff = diff_findings(current, candidate)
    stopped = new_blocking(diff, gate(candidate, Policy(), TODAY))
    assert [(d.finding_id, d.package) for d in stopped] == [("CVE-2024-0009", "libc6")]
    assert "severity high is blocking" in stopped[0].reason


def test_blocking_findings_the_current_image_already_has_do_not_stop_the_candidate() -> None:
    current = [finding("CVE-2024-0001"), finding("CVE-2024-0002", "libc6")]
    candidate = [finding("CVE-2024-0002", "libc6")]
    diff = diff_findings(current, candidate)
    result = gate(candidate, Policy(), TODAY)
    assert not result.passed  # the gate still reports it ...
    assert new_blocking(diff, result) == []  # ... but the patch is not withheld for it


def test_a_new_finding_the_policy_allows_does_not_stop_the_candidate() -> None:
    candidate = [finding("CVE-2024-0009", "libc6", severity=Severity.LOW)]
    diff = diff_findings([], candidate)
    assert diff.introduced == candidate
    assert new_blocking(diff, gate(candidate, Policy(), TODAY)) == []

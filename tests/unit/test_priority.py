"""The order of findings (``patchpipe.scan.priority``): KEV, fixable, severity, EPSS, id."""

from __future__ import annotations

import random

from patchpipe.advisories.records import Severity, Status
from patchpipe.scan.findings import Finding
from patchpipe.scan.priority import prioritized


def finding(id: str, *, kev: bool = False, fixed: bool = True, severity: Severity = Severity.MEDIUM,
            epss: float | None = None, package: str = "pkg") -> Finding:
    return Finding(id=id, aliases=(), package=package, source_package=package, installed="1.0-1",
                   fixed="1.0-2" if fixed else None, status=Status.FIXED if fixed else Status.AFFECTED,
                   severity=severity, kev=kev, epss=epss)


def test_each_criterion_outranks_the_ones_after_it() -> None:
    expected = [
        finding("CVE-1", kev=True, fixed=False, severity=Severity.LOW),  # KEV beats everything
        finding("CVE-2", severity=Severity.LOW, epss=0.01),  # fixable beats severity and EPSS
        finding("CVE-3", fixed=False, severity=Severity.CRITICAL, epss=0.0),  # severity beats EPSS
        finding("CVE-4", fixed=False, severity=Severity.HIGH, epss=0.9),
        finding("CVE-5", fixed=False, severity=Severity.HIGH, epss=0.5),  # EPSS, higher first
        finding("CVE-0", fixed=False, severity=Severity.HIGH),  # unscored after scored, despite its id
        finding("CVE-6", fixed=False, severity=Severity.HIGH),  # then by id
        finding("CVE-7", fixed=False, severity=Severity.UNKNOWN, epss=0.99),
    ]
    shuffled = expected[:]
    random.Random(5).shuffle(shuffled)
    assert [f.id for f in prioritized(shuffled)] == [f.id for f in expected]


def test_the_same_vulnerability_in_two_packages_keeps_a_stable_order() -> None:
    a, b = finding("CVE-9", package="libfoo"), finding("CVE-9", package="foo-bin")
    assert prioritized([a, b]) == prioritized([b, a]) == [b, a]


def test_a_severity_ranks_above_negligible_and_unknown_last() -> None:
    ranked = prioritized([finding("U", severity=Severity.UNKNOWN), finding("N", severity=Severity.NEGLIGIBLE),
                          finding("L", severity=Severity.LOW)])
    assert [f.id for f in ranked] == ["L", "N", "U"]

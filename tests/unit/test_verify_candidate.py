"""Verifying a candidate: planned versions reached, nothing removed or downgraded, every problem reported."""

from __future__ import annotations

import pytest

from patchpipe.errors import PatchpipeError
from patchpipe.plan import PackageUpgrade, PatchPlan
from patchpipe.verify.candidate import CandidateRejected, verify_candidate

CANDIDATE = "127.0.0.1:5000/vendor/app:2.4-patch.20261124.1"
BEFORE = {"bash": "5.2.15-2+b2", "libssl3": "3.0.11-1~deb12u1", "perl-base": "5.36.0-7"}
PLAN = PatchPlan(
    image="vendor-app", source_ref="127.0.0.1:5000/vendor/app:2.4", source_digest="sha256:" + "a" * 64,
    release="bookworm", package_manager="dpkg",
    upgrades=[PackageUpgrade("libssl3", "3.0.11-1~deb12u1", "3.0.15-1~deb12u1", "openssl"),
              PackageUpgrade("perl-base", "5.36.0-7", "5.36.0-7+deb12u1", "perl")],
)
PATCHED = {**BEFORE, "libssl3": "3.0.15-1~deb12u1", "perl-base": "5.36.0-7+deb12u1"}


def problems(after: dict[str, str], before: dict[str, str] = BEFORE) -> list[str]:
    with pytest.raises(CandidateRejected) as rejected:
        verify_candidate(CANDIDATE, PLAN, before, after)
    return rejected.value.problems


def test_a_candidate_at_the_planned_versions_passes_and_lists_its_changes() -> None:
    assert verify_candidate(CANDIDATE, PLAN, BEFORE, PATCHED) == [
        "libssl3 3.0.11-1~deb12u1 -> 3.0.15-1~deb12u1",
        "perl-base 5.36.0-7 -> 5.36.0-7+deb12u1",
    ]


def test_a_missing_planned_package_is_reported() -> None:
    after = {k: v for k, v in PATCHED.items() if k != "perl-base"}
    assert "perl-base is missing (planned 5.36.0-7+deb12u1)" in problems(after)


def test_a_planned_package_below_its_planned_version_is_reported() -> None:
    after = {**PATCHED, "libssl3": "3.0.11-1~deb12u1"}  # the upgrade did not happen
    assert problems(after) == ["libssl3 is at 3.0.11-1~deb12u1, planned 3.0.15-1~deb12u1"]


def test_the_planned_version_is_compared_by_dpkg_rules() -> None:
    # "3.0.15-1~deb12u1" sorts before "3.0.15-1": a string comparison would get this backwards.
    plan = PatchPlan(**{**PLAN.to_dict(), "upgrades": [PackageUpgrade("libssl3", "3.0.11-1", "3.0.15-1", "openssl")]})
    with pytest.raises(CandidateRejected, match=r"libssl3 is at 3.0.15-1~deb12u1, planned 3.0.15-1"):
        verify_candidate(CANDIDATE, plan, {"libssl3": "3.0.11-1"}, {"libssl3": "3.0.15-1~deb12u1"})


def test_a_removed_package_is_reported() -> None:
    after = {k: v for k, v in PATCHED.items() if k != "bash"}
    assert problems(after) == ["bash 5.2.15-2+b2 was removed"]


def test_a_downgraded_package_is_reported() -> None:
    after = {**PATCHED, "bash": "5.2.15-2"}
    assert problems(after) == ["bash was downgraded from 5.2.15-2+b2 to 5.2.15-2"]


def test_every_problem_is_reported_at_once() -> None:
    after = {"bash": "5.1-1", "libssl3": "3.0.11-1~deb12u1"}  # bash down, libssl3 not upgraded, perl-base gone
    found = problems(after)
    assert found == [
        "libssl3 is at 3.0.11-1~deb12u1, planned 3.0.15-1~deb12u1",
        "perl-base is missing (planned 5.36.0-7+deb12u1)",
        "bash was downgraded from 5.2.15-2+b2 to 5.1-1",
        "perl-base 5.36.0-7 was removed",
    ]


def test_the_rejection_names_the_candidate_and_each_problem() -> None:
    with pytest.raises(CandidateRejected) as rejected:
        verify_candidate(CANDIDATE, PLAN, BEFORE, {**PATCHED, "bash": "5.2.15-2"})
    assert str(rejected.value) == (
        f"candidate {CANDIDATE} rejected: bash was downgraded from 5.2.15-2+b2 to 5.2.15-2"
    )
    assert isinstance(rejected.value, PatchpipeError)  # a task fails with it; the CLI exits 2


def test_a_version_newer_than_planned_is_accepted() -> None:
    after = {**PATCHED, "libssl3": "3.0.16-1~deb12u1"}
    changes = verify_candidate(CANDIDATE, PLAN, BEFORE, after)
    assert "libssl3 3.0.11-1~deb12u1 -> 3.0.16-1~deb12u1" in changes


def test_a_package_added_by_a_rebuild_is_accepted_and_not_listed_as_a_change() -> None:
    after = {**PATCHED, "curl": "7.88.1-10+deb12u8"}
    assert verify_candidate(CANDIDATE, PLAN, BEFORE, after) == [
        "libssl3 3.0.11-1~deb12u1 -> 3.0.15-1~deb12u1",
        "perl-base 5.36.0-7 -> 5.36.0-7+deb12u1",
    ]


def test_an_unplanned_upgrade_by_a_rebuild_is_accepted_and_listed() -> None:
    after = {**PATCHED, "bash": "5.2.15-2+b3"}
    assert "bash 5.2.15-2+b2 -> 5.2.15-2+b3" in verify_candidate(CANDIDATE, PLAN, BEFORE, after)

"""Candidate tags (per-day numbering, newest first) and labels (plan hash, source and base digests)."""

from __future__ import annotations

from datetime import date

from patchpipe.images.candidates import (
    BASE_DIGEST,
    BASE_NAME,
    BUILD_ID,
    PACKAGES,
    PLAN_HASH,
    RUN_ID,
    SOURCE_DIGEST,
    candidate_labels,
    candidate_tag,
    candidate_tags_of,
    plan_hash,
)
from patchpipe.plan import PackageUpgrade, PatchPlan

DAY = date(2026, 11, 24)
SOURCE = "sha256:" + "a" * 64
OTHER_SOURCE = "sha256:" + "b" * 64
BASE = "sha256:" + "c" * 64
OTHER_BASE = "sha256:" + "d" * 64


def plan_of(*upgrades: PackageUpgrade, source_digest: str = SOURCE, image: str = "demo-web") -> PatchPlan:
    return PatchPlan(image=image, source_ref="127.0.0.1:5000/demo/web:1.0", source_digest=source_digest,
                     release="bookworm", package_manager="dpkg", upgrades=list(upgrades))


APT = PackageUpgrade("apt", "2.6.0", "2.6.1", "apt")
SSL = PackageUpgrade("libssl3", "3.0.11-1", "3.0.15-1", "openssl")


# --- candidate_tag -----------------------------------------------------------------------------


def test_the_first_candidate_of_a_day_is_number_1() -> None:
    assert candidate_tag("1.0", DAY, ["1.0", "latest"]) == "1.0-patch.20261124.1"


def test_the_next_candidate_of_a_day_follows_the_highest_number() -> None:
    assert candidate_tag("1.0", DAY, ["1.0-patch.20261124.1", "1.0-patch.20261124.2"]) == "1.0-patch.20261124.3"


def test_numbering_continues_after_the_highest_number_not_into_gaps() -> None:
    tags = ["1.0-patch.20261124.1", "1.0-patch.20261124.7"]
    assert candidate_tag("1.0", DAY, tags) == "1.0-patch.20261124.8"


def test_numbers_compare_as_numbers_not_strings() -> None:
    tags = ["1.0-patch.20261124.9", "1.0-patch.20261124.10"]
    assert candidate_tag("1.0", DAY, tags) == "1.0-patch.20261124.11"


def test_candidates_of_other_days_do_not_count() -> None:
    tags = ["1.0-patch.20261123.5", "1.0-patch.20261125.3"]
    assert candidate_tag("1.0", DAY, tags) == "1.0-patch.20261124.1"


def test_candidates_of_other_production_tags_do_not_count() -> None:
    tags = ["1.0.1-patch.20261124.4", "2.0-patch.20261124.2", "11.0-patch.20261124.9"]
    assert candidate_tag("1.0", DAY, tags) == "1.0-patch.20261124.1"


def test_a_tag_with_a_non_numeric_suffix_is_ignored() -> None:
    tags = ["1.0-patch.20261124.x", "1.0-patch.20261124.", "1.0-patch.20261124.2rc"]
    assert candidate_tag("1.0", DAY, tags) == "1.0-patch.20261124.1"


# --- candidate_tags_of -------------------------------------------------------------------------


def test_candidates_are_listed_newest_date_first_then_highest_number() -> None:
    tags = ["1.0-patch.20261124.2", "1.0-patch.20261201.1", "1.0-patch.20261124.10", "1.0-patch.20261124.9"]
    assert candidate_tags_of("1.0", tags) == [
        "1.0-patch.20261201.1", "1.0-patch.20261124.10", "1.0-patch.20261124.9", "1.0-patch.20261124.2",
    ]


def test_candidates_of_another_production_tag_are_excluded() -> None:
    tags = ["1.0-patch.20261124.1", "1.0.1-patch.20261125.1", "1.01-patch.20261126.1", "x1.0-patch.20261127.1"]
    assert candidate_tags_of("1.0", tags) == ["1.0-patch.20261124.1"]
    assert candidate_tags_of("1.0.1", tags) == ["1.0.1-patch.20261125.1"]


def test_the_dot_in_a_production_tag_is_literal() -> None:
    # An unescaped "." in the pattern would let "1x0" pass for "1.0".
    assert candidate_tags_of("1.0", ["1x0-patch.20261124.1"]) == []


def test_tags_that_are_not_candidates_are_excluded() -> None:
    tags = ["1.0", "latest", "1.0-patch.2026112.1", "1.0-patch.20261124.x", "1.0-patch.20261124.1-dirty"]
    assert candidate_tags_of("1.0", tags) == []


# --- plan_hash ---------------------------------------------------------------------------------


def test_the_same_work_gives_the_same_hash() -> None:
    assert plan_hash(plan_of(APT, SSL), BASE) == plan_hash(plan_of(APT, SSL), BASE)


def test_the_hash_ignores_upgrade_order_and_installed_versions() -> None:
    older_install = PackageUpgrade("apt", "2.5.0", "2.6.1", "apt")
    assert plan_hash(plan_of(APT, SSL), BASE) == plan_hash(plan_of(SSL, older_install), BASE)


def test_the_hash_is_16_hex_characters() -> None:
    value = plan_hash(plan_of(APT))
    assert len(value) == 16 and all(c in "0123456789abcdef" for c in value)


def test_another_source_digest_changes_the_hash() -> None:
    assert plan_hash(plan_of(APT), BASE) != plan_hash(plan_of(APT, source_digest=OTHER_SOURCE), BASE)


def test_another_base_digest_changes_the_hash() -> None:
    assert plan_hash(plan_of(APT), BASE) != plan_hash(plan_of(APT), OTHER_BASE)
    assert plan_hash(plan_of(APT), BASE) != plan_hash(plan_of(APT), None)


def test_another_target_version_changes_the_hash() -> None:
    newer = PackageUpgrade("apt", "2.6.0", "2.6.2", "apt")
    assert plan_hash(plan_of(APT)) != plan_hash(plan_of(newer))


def test_another_set_of_packages_changes_the_hash() -> None:
    assert plan_hash(plan_of(APT)) != plan_hash(plan_of(APT, SSL))
    assert plan_hash(plan_of(APT)) != plan_hash(plan_of())


# --- candidate_labels --------------------------------------------------------------------------


def test_labels_record_source_plan_packages_build_and_run() -> None:
    plan = plan_of(APT, SSL)
    labels = candidate_labels(plan, build_id="1.0-patch.20261124.1", run_id="manual__2026-11-24")
    assert labels == {
        SOURCE_DIGEST: SOURCE,
        PLAN_HASH: plan_hash(plan, None),
        PACKAGES: "apt=2.6.1 libssl3=3.0.15-1",
        BUILD_ID: "1.0-patch.20261124.1",
        RUN_ID: "manual__2026-11-24",
    }


def test_labels_of_a_rebuild_name_the_base_and_hash_its_digest() -> None:
    plan = plan_of(APT)
    labels = candidate_labels(plan, build_id="b", run_id="r", base_name="127.0.0.1:5000/base/debian:bookworm",
                              base_digest=BASE)
    assert labels[BASE_NAME] == "127.0.0.1:5000/base/debian:bookworm"
    assert labels[BASE_DIGEST] == BASE
    assert labels[PLAN_HASH] == plan_hash(plan, BASE) != plan_hash(plan, None)


def test_labels_without_a_base_digest_carry_no_base_labels() -> None:
    labels = candidate_labels(plan_of(APT), build_id="b", run_id="r", base_name="127.0.0.1:5000/base/debian:bookworm")
    assert BASE_NAME not in labels and BASE_DIGEST not in labels


def test_labels_are_all_strings() -> None:
    labels = candidate_labels(plan_of(), build_id="b", run_id="r", base_digest=BASE)
    assert all(isinstance(v, str) for v in labels.values())
    assert labels[PACKAGES] == "" and labels[BASE_NAME] == ""

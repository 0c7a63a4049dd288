"""The patch plan: which installed packages move to which strictly newer security version (dpkg order)."""

from __future__ import annotations

import json

from patchpipe.plan import PackageUpgrade, PatchPlan, plan_upgrades

DIGEST = "sha256:" + "a" * 64


def plan_of(*upgrades: PackageUpgrade) -> PatchPlan:
    return PatchPlan(image="vendor-app", source_ref="127.0.0.1:5000/vendor/app:2.4", source_digest=DIGEST,
                     release="bookworm", package_manager="dpkg", upgrades=list(upgrades))


# --- plan_upgrades -----------------------------------------------------------------------------


def test_a_newer_security_version_becomes_an_upgrade_with_the_source_package() -> None:
    upgrades = plan_upgrades({"libssl3": ("3.0.11-1~deb12u1", "openssl")}, {"libssl3": "3.0.15-1~deb12u1"})
    assert upgrades == [PackageUpgrade(name="libssl3", installed="3.0.11-1~deb12u1", target="3.0.15-1~deb12u1",
                                       source="openssl")]


def test_the_same_version_is_not_an_upgrade() -> None:
    assert plan_upgrades({"apt": ("2.6.1", "apt")}, {"apt": "2.6.1"}) == []


def test_an_older_security_version_is_not_an_upgrade() -> None:
    assert plan_upgrades({"apt": ("2.6.2", "apt")}, {"apt": "2.6.1"}) == []


def test_versions_are_compared_by_dpkg_rules_not_as_strings() -> None:
    # As strings "1.10" < "1.9"; dpkg says 1.10 is newer.
    assert [u.target for u in plan_upgrades({"zlib1g": ("1.9", "zlib")}, {"zlib1g": "1.10"})] == ["1.10"]
    assert plan_upgrades({"zlib1g": ("1.10", "zlib")}, {"zlib1g": "1.9"}) == []


def test_an_epoch_outranks_any_upstream_version() -> None:
    assert [u.target for u in plan_upgrades({"tzdata": ("9.9-1", "tzdata")}, {"tzdata": "1:0.1-1"})] == ["1:0.1-1"]
    assert plan_upgrades({"tzdata": ("1:0.1-1", "tzdata")}, {"tzdata": "9.9-1"}) == []


def test_a_tilde_sorts_before_the_release_it_precedes() -> None:
    # 2.36-9~deb12u1 (a backport-style build) is older than 2.36-9 itself.
    assert plan_upgrades({"libc6": ("2.36-9", "glibc")}, {"libc6": "2.36-9~deb12u1"}) == []
    upgrades = plan_upgrades({"libc6": ("2.36-9~deb12u1", "glibc")}, {"libc6": "2.36-9"})
    assert [u.target for u in upgrades] == ["2.36-9"]


def test_a_later_tilde_build_is_newer_than_an_earlier_one() -> None:
    upgrades = plan_upgrades({"libssl3": ("3.0.11-1~deb12u1", "openssl")}, {"libssl3": "3.0.11-1~deb12u2"})
    assert [u.target for u in upgrades] == ["3.0.11-1~deb12u2"]


def test_a_debian_revision_bump_is_an_upgrade() -> None:
    upgrades = plan_upgrades({"perl-base": ("5.36.0-7", "perl")}, {"perl-base": "5.36.0-7+deb12u1"})
    assert [u.target for u in upgrades] == ["5.36.0-7+deb12u1"]


def test_packages_absent_from_the_security_index_are_left_alone() -> None:
    installed = {"bash": ("5.2.15-2+b2", "bash"), "libssl3": ("3.0.11-1", "openssl")}
    upgrades = plan_upgrades(installed, {"libssl3": "3.0.15-1"})
    assert [u.name for u in upgrades] == ["libssl3"]


def test_security_versions_of_packages_not_installed_are_ignored() -> None:
    assert plan_upgrades({"bash": ("5.2.15-2", "bash")}, {"curl": "7.88.1-10+deb12u8"}) == []


def test_upgrades_come_out_sorted_by_package_name() -> None:
    installed = {"zlib1g": ("1.2", "zlib"), "apt": ("2.6.0", "apt"), "libc6": ("2.36-9", "glibc")}
    security = {"zlib1g": "1.3", "apt": "2.6.1", "libc6": "2.36-9+deb12u4"}
    assert [u.name for u in plan_upgrades(installed, security)] == ["apt", "libc6", "zlib1g"]


# --- PatchPlan ---------------------------------------------------------------------------------


def test_a_plan_without_upgrades_is_empty() -> None:
    assert plan_of().is_empty
    assert not plan_of(PackageUpgrade("apt", "2.6.0", "2.6.1", "apt")).is_empty


def test_targets_map_each_package_to_its_planned_version() -> None:
    plan = plan_of(PackageUpgrade("apt", "2.6.0", "2.6.1", "apt"),
                   PackageUpgrade("libssl3", "3.0.11-1", "3.0.15-1", "openssl"))
    assert plan.targets() == {"apt": "2.6.1", "libssl3": "3.0.15-1"}


def test_a_plan_survives_a_round_trip_through_json() -> None:
    plan = plan_of(PackageUpgrade("apt", "2.6.0", "2.6.1", "apt"),
                   PackageUpgrade("libssl3", "3.0.11-1", "3.0.15-1", "openssl"))
    data = json.loads(json.dumps(plan.to_dict()))  # what XCom and the ledger hold
    again = PatchPlan.from_dict(data)
    assert again == plan
    assert all(isinstance(u, PackageUpgrade) for u in again.upgrades)


def test_to_dict_lists_upgrades_as_plain_dicts() -> None:
    data = plan_of(PackageUpgrade("apt", "2.6.0", "2.6.1", "apt")).to_dict()
    assert data["upgrades"] == [{"name": "apt", "installed": "2.6.0", "target": "2.6.1", "source": "apt", "fixes": []}]
    assert data["source_digest"] == DIGEST and data["release"] == "bookworm"


def test_from_dict_without_upgrades_gives_an_empty_plan() -> None:
    data = plan_of().to_dict()
    del data["upgrades"]
    assert PatchPlan.from_dict(data).is_empty

"""Matching installed packages against the advisory store (``patchpipe.scan.match``).

The store holds the real feeds in shared/data/advisories, parsed by the real parsers, plus the real
KEV catalog and EPSS sample. Records the files do not hold are written out below and made up
(feed ``hand``): a second opinion on CVE-2022-1292, Chromium's CVE-2024-7965 for bookworm (a real
KEV entry with a real EPSS score, but the Debian fix version here is invented), and OSV ranges with
``last_affected``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from patchpipe.advisories.records import Advisory, AffectedPackage, Severity, Status, VersionEvent
from patchpipe.advisories.sources import SOURCES
from patchpipe.advisories.store import FeedOrigin, replace_feed
from patchpipe.errors import PatchpipeError
from patchpipe.packages.inventory import InstalledPackage, Inventory
from patchpipe.packages.os_release import OsRelease
from patchpipe.scan.match import advisory_release, in_ranges, match

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "advisories"
AT = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)

BOOKWORM = OsRelease("debian", "12", "bookworm")
STRETCH = OsRelease("debian", "9", "stretch")
ETCH = OsRelease("debian", "4.0", "etch")
ALPINE = OsRelease("alpine", "3.20.3")

HAND = (
    Advisory("CVE-2022-1292", "hand", severity=Severity.HIGH, affected=(
        AffectedPackage("debian", "stretch", "openssl", Status.FIXED, "1.1.0l-1~deb9u7"),)),
    Advisory("CVE-2024-7965", "hand", affected=(
        AffectedPackage("debian", "bookworm", "chromium", Status.FIXED, "128.0.6613.84-1~deb12u1",
                        severity=Severity.HIGH),)),
    Advisory("HAND-RANGES-1", "hand", aliases=("CVE-2099-0001",), affected=(
        AffectedPackage("debian", "bookworm", "rangepkg", Status.AFFECTED, None, (
            VersionEvent("introduced", "1.0-1"), VersionEvent("last_affected", "1.2-1"),
            VersionEvent("introduced", "2:0.5-1"))),)),
)


def _parsed(source: str, *paths: Path) -> list:
    records = []
    for path in paths:
        with path.open("rb") as payload:
            records += list(SOURCES[source].parse(payload, str(path)))
    return records


@pytest.fixture
def engine(patchpipe_engine):
    feeds = {
        "osv-debian": ("osv", sorted((DATA / "osv-debian").glob("*.json"))),
        "osv-alpine": ("osv", [DATA / "osv-alpine" / "ALPINE-CVE-2025-26519.json"]),
        "debian-tracker": ("debian_tracker", [DATA / "debian-security-tracker" / "debian.json"]),
        "alpine-secdb-v3.20-main": ("alpine_secdb", [DATA / "alpine-secdb" / "v3.20-main.json"]),
        "kev": ("kev", [DATA / "cisa-kev" / "known_exploited_vulnerabilities.json"]),
        "epss": ("epss", [DATA / "epss" / "epss_scores-current.sample.csv"]),
    }
    for feed, (source, paths) in feeds.items():
        replace_feed(patchpipe_engine, feed, FeedOrigin(source, str(paths[0])), _parsed(source, *paths), at=AT)
    replace_feed(patchpipe_engine, "hand", FeedOrigin("hand", "test_match.py"), HAND, at=AT)
    return patchpipe_engine


def deb(name: str, version: str, source: str | None = None, source_version: str | None = None) -> InstalledPackage:
    return InstalledPackage(name, version, "amd64", source or name, source_version or version)


def apk(name: str, version: str, origin: str | None = None) -> InstalledPackage:
    return InstalledPackage(name, version, "x86_64", origin or name, version)


def scan(engine, os: OsRelease, *packages: InstalledPackage, manager: str = "dpkg"):
    return match(engine, Inventory(os, manager, list(packages)))  # type: ignore[arg-type]


def by_id(findings) -> dict:
    return {(f.package, f.id): f for f in findings}


# --- which release ------------------------------------------------------------------------------


def test_debian_and_ubuntu_use_the_codename_and_alpine_its_major_minor() -> None:
    assert advisory_release(BOOKWORM) == ("debian", "bookworm")
    assert advisory_release(OsRelease("ubuntu", "24.04", "noble")) == ("ubuntu", "noble")
    assert advisory_release(ALPINE) == ("alpine", "v3.20")
    assert advisory_release(OsRelease("alpine", "3.9")) == ("alpine", "v3.9")


@pytest.mark.parametrize("os, message", [
    (OsRelease("debian", None, None), "VERSION_CODENAME"),
    (OsRelease("alpine", "edge"), "VERSION_ID 'edge'"),
    (OsRelease("fedora", "40"), "no advisories for fedora"),
])
def test_a_release_without_advisories_is_a_user_error(os, message) -> None:
    with pytest.raises(PatchpipeError, match=message):
        advisory_release(os)


# --- Debian: tracker and OSV --------------------------------------------------------------------


def test_a_source_below_the_tracker_fix_is_fixed_for_every_binary_built_from_it(engine) -> None:
    findings = scan(engine, BOOKWORM,
                    deb("chromium", "97.0.4692.99-1"),
                    deb("chromium-common", "97.0.4692.99-1", "chromium"),
                    deb("bash", "5.2.15-2+b2"))

    found = by_id(findings)
    assert set(found) == {("chromium", "CVE-2022-0456"), ("chromium-common", "CVE-2022-0456"),
                          ("chromium", "CVE-2024-7965"), ("chromium-common", "CVE-2024-7965")}
    common = found[("chromium-common", "CVE-2022-0456")]
    assert (common.source_package, common.installed, common.fixed, common.status) == \
        ("chromium", "97.0.4692.99-1", "98.0.4758.80-1", Status.FIXED)


def test_the_installed_source_version_is_compared_not_the_binary_version(engine) -> None:
    # A binNMU or a binary with its own version: the Source: version decides.
    findings = scan(engine, BOOKWORM, deb("libsope1", "5.8.0-1+deb12u1+b1", "sope", "5.8.0-1"))
    assert [(f.id, f.installed, f.fixed) for f in findings] == [("CVE-2025-53603", "5.8.0-1+deb12u1+b1",
                                                                  "5.8.0-1+deb12u1")]
    assert scan(engine, BOOKWORM, deb("libsope1", "5.8.0-1+deb12u1+b1", "sope", "5.8.0-1+deb12u1")) == []


def test_versions_follow_dpkg_rules_not_string_order(engine) -> None:
    # '~' sorts before the end of the string: 5.8.0-1+deb12u1~pre1 is older than the fix.
    assert [f.id for f in scan(engine, BOOKWORM, deb("sope", "5.8.0-1+deb12u1~pre1"))] == ["CVE-2025-53603"]
    # An epoch wins over everything after it.
    assert scan(engine, BOOKWORM, deb("sope", "1:5.0-1")) == []


def test_installed_at_or_above_the_fix_is_not_reported(engine) -> None:
    assert scan(engine, BOOKWORM, deb("chromium", "128.0.6613.84-1~deb12u1")) == []


def test_an_open_end_of_life_entry_is_will_not_fix(engine) -> None:
    # Tracker: buster chromium is "open" with urgency "end-of-life"; the parser maps it to will_not_fix.
    findings = scan(engine, OsRelease("debian", "10", "buster"), deb("chromium", "90.0.4430.212-1~deb10u1"))
    assert [(f.id, f.status, f.fixed) for f in findings] == [("CVE-2022-0456", Status.WILL_NOT_FIX, None)]


def test_not_affected_entries_are_never_reported(engine) -> None:
    # CVE-2007-2383: tracker fixed_version "0" for prototypejs in buster.
    findings = scan(engine, OsRelease("debian", "10", "buster"), deb("libjs-prototype", "1.5.0-1", "prototypejs"))
    assert [f.id for f in findings] == ["CVE-2008-7220"]


def test_an_advisory_for_one_cve_is_that_cve_and_feeds_merge_into_one_finding(engine) -> None:
    # OSV DLA-3008-1 (upstream CVE-2022-1292, fixed 1.1.0l-1~deb9u6) and the hand feed's CVE-2022-1292
    # (fixed ~deb9u7, severity high) are one vulnerability.
    findings = scan(engine, STRETCH, deb("libssl1.1", "1.1.0l-1~deb9u5", "openssl"))
    assert len(findings) == 1
    finding = findings[0]
    assert finding.id == "CVE-2022-1292"
    assert finding.aliases == ("DEBIAN-CVE-2022-1292", "DLA-3008-1")
    assert (finding.fixed, finding.severity, finding.status) == ("1.1.0l-1~deb9u7", Severity.HIGH, Status.FIXED)
    assert finding.feeds == ("hand", "osv-debian")


def test_a_feed_fixed_below_the_installed_version_does_not_hide_another_feeds_report(engine) -> None:
    findings = scan(engine, STRETCH, deb("openssl", "1.1.0l-1~deb9u6"))
    assert [(f.id, f.fixed, f.feeds) for f in findings] == [("CVE-2022-1292", "1.1.0l-1~deb9u7", ("hand",))]


def test_an_advisory_fixing_several_cves_stays_its_own_finding(engine) -> None:
    findings = scan(engine, ETCH, deb("vlc", "0.8.6-svn20061012.debian-5.1+etch1"))
    assert [f.id for f in findings] == ["DSA-1543-1", "DSA-1819-1"]
    first, second = findings
    assert len([a for a in first.aliases if a.startswith("CVE-")]) == 8
    assert {"CVE-2007-6681", "DEBIAN-CVE-2007-6681", "CVE-2008-1489"} <= set(first.aliases)
    assert {"CVE-2008-1768", "CVE-2008-1769", "CVE-2008-1881"} <= set(second.aliases)
    assert not set(first.aliases) & {"CVE-2008-1768", "CVE-2008-1769", "CVE-2008-1881"}
    assert second.fixed == "0.8.6-svn20061012.debian-5.1+etch3"


def test_an_osv_alias_that_is_a_cve_names_the_finding(engine) -> None:
    findings = scan(engine, OsRelease("debian", "7", "wheezy"), deb("nginx-light", "1.2.1-2.2+wheezy2", "nginx"))
    assert [(f.id, f.aliases, f.fixed) for f in findings] == [("CVE-2014-3616", ("DSA-3029-1",), "1.2.1-2.2+wheezy3")]


def test_kev_and_epss_come_from_the_cve(engine) -> None:
    found = by_id(scan(engine, BOOKWORM, deb("chromium", "97.0.4692.99-1")))
    exploited, other = found[("chromium", "CVE-2024-7965")], found[("chromium", "CVE-2022-0456")]
    assert (exploited.kev, exploited.epss, exploited.severity) == (True, 0.18528, Severity.HIGH)
    assert (other.kev, other.epss) == (False, None)


# --- OSV ranges -----------------------------------------------------------------------------------


@pytest.mark.parametrize("installed, reported", [
    ("0.9-1", False),  # before the first introduced
    ("1.0-1", True),  # introduced is inclusive
    ("1.2-1", True),  # last_affected is inclusive
    ("1.2-1+deb12u1", False),  # after last_affected
    ("1:0.1-1", False),  # epoch 1 is below the second range's epoch 2
    ("2:0.5-1", True),  # the second range has no end
    ("2:9.0-1", True),
])
def test_osv_ranges_with_last_affected_and_an_open_range(engine, installed, reported) -> None:
    findings = scan(engine, BOOKWORM, deb("rangepkg", installed))
    assert [(f.id, f.status, f.fixed) for f in findings] == ([("CVE-2099-0001", Status.AFFECTED, None)]
                                                            if reported else [])


@pytest.mark.parametrize("version, expected", [
    ("1.0", False), ("1.1", True), ("1.9~rc1", True), ("2.0", False), ("2.5", True), ("3.0", True),
])
def test_in_ranges_follows_fixed_exclusive_and_last_affected_inclusive(version, expected) -> None:
    events = [VersionEvent("introduced", "1.1"), VersionEvent("fixed", "2.0"),
              VersionEvent("introduced", "2.5"), VersionEvent("last_affected", "3.0")]
    assert in_ranges("deb", version, events) is expected


def test_introduced_zero_means_every_version() -> None:
    assert in_ranges("apk", "0.0.1-r0", [VersionEvent("introduced", "0"), VersionEvent("fixed", "1.0-r0")])


# --- Alpine -----------------------------------------------------------------------------------------


def test_alpine_binaries_match_by_origin_with_apk_version_rules(engine) -> None:
    # secdb lists busybox fixes in 1.36.1-r2 .. r31; r9 sorts below r25 under apk rules (not as text).
    findings = scan(engine, ALPINE, apk("busybox-binsh", "1.36.1-r9", "busybox"), manager="apk")
    assert {f.id for f in findings} == {"CVE-2023-42366", "CVE-2023-42363", "CVE-2023-42364", "CVE-2023-42365",
                                        "CVE-2024-58251", "CVE-2025-46394"}
    assert {f.package for f in findings} == {"busybox-binsh"}
    assert "CVE-2021-42373" not in {f.id for f in findings}  # secdb key "0": not affected


def test_an_alpine_osv_range_with_introduced_and_fixed(engine) -> None:
    (finding,) = scan(engine, ALPINE, apk("musl", "1.2.5-r0"), manager="apk")
    assert (finding.id, finding.aliases, finding.fixed, finding.severity) == \
        ("CVE-2025-26519", ("ALPINE-CVE-2025-26519",), "1.2.5-r1", Severity.HIGH)
    assert scan(engine, ALPINE, apk("musl", "0.9.12-r0"), manager="apk") == []  # before introduced 0.9.13
    assert scan(engine, ALPINE, apk("musl", "1.2.5-r1"), manager="apk") == []

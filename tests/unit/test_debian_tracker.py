"""The Debian Security Tracker source over the real tracker excerpt and hand-written odd statuses."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from patchpipe.advisories.debian_tracker import DebianTrackerSource, release_status, severity_from_urgency
from patchpipe.advisories.records import Advisory, Severity, Status
from patchpipe.advisories.source import FeedError, RecordProblem
from patchpipe.advisories.sources import DEFAULT_URLS, get_source

REAL_TRACKER = Path("/work/shared/data/advisories/debian-security-tracker/debian.json")
HAND_WRITTEN = Path(__file__).resolve().parents[1] / "fixtures" / "advisories" / "debian-tracker" / "odd-statuses.json"


def parse_file(path: Path) -> list:
    with path.open("rb") as payload:
        return list(DebianTrackerSource().parse(payload, str(path)))


def entries(advisory: Advisory) -> dict[tuple[str, str], tuple[Status, str | None, Severity]]:
    return {(a.package, a.release): (a.status, a.fixed_version, a.severity) for a in advisory.affected}


@pytest.fixture(scope="module")
def real() -> dict[str, Advisory]:
    records = parse_file(REAL_TRACKER)
    assert all(isinstance(r, Advisory) for r in records), records
    advisories = {r.id: r for r in records}
    assert len(advisories) == len(records)  # one record per CVE
    return advisories


def test_one_advisory_per_cve_with_an_entry_per_package_release(real: dict[str, Advisory]):
    raw = json.loads(REAL_TRACKER.read_bytes())
    releases_per_cve: dict[str, int] = {}
    for cves in raw.values():
        for cve_id, cve in cves.items():
            releases_per_cve[cve_id] = releases_per_cve.get(cve_id, 0) + len(cve["releases"])

    assert len(real) == len(releases_per_cve) == 7
    assert {cve_id: len(a.affected) for cve_id, a in real.items()} == releases_per_cve
    assert {a.source for a in real.values()} == {"debian_tracker"}
    assert {e.ecosystem for a in real.values() for e in a.affected} == {"debian"}


def test_resolved_is_fixed_at_its_version_with_the_urgency_as_severity(real: dict[str, Advisory]):
    advisory = real["CVE-2008-7220"]

    assert entries(advisory)[("prototypejs", "buster")] == (Status.FIXED, "1.6.0.2-1", Severity.HIGH)  # high**
    assert advisory.severity is Severity.HIGH
    assert advisory.summary.startswith("Unspecified vulnerability in Prototype JavaScript framework")
    assert entries(real["CVE-2013-1444"])[("txt2man", "jessie")] == (Status.FIXED, "1.5.5-4.1", Severity.LOW)
    assert entries(real["CVE-2025-53603"])[("sope", "bookworm")] == (Status.FIXED, "5.8.0-1+deb12u1", Severity.UNKNOWN)


def test_resolved_at_version_zero_is_not_affected(real: dict[str, Advisory]):
    advisory = real["CVE-2007-2383"]

    assert set(entries(advisory).values()) == {(Status.NOT_AFFECTED, None, Severity.NEGLIGIBLE)}
    assert len(advisory.affected) == 4


def test_open_in_an_end_of_life_release_will_not_be_fixed(real: dict[str, Advisory]):
    chromium = entries(real["CVE-2022-0456"])

    assert chromium[("chromium", "buster")] == (Status.WILL_NOT_FIX, None, Severity.UNKNOWN)
    assert chromium[("chromium", "stretch")][0] is Status.WILL_NOT_FIX
    assert chromium[("chromium", "bullseye")] == (Status.FIXED, "98.0.4758.80-1~deb11u1", Severity.UNKNOWN)


def test_empty_releases_list_gives_an_advisory_without_entries(real: dict[str, Advisory]):
    assert json.loads(REAL_TRACKER.read_bytes())["chromium-browser"]["CVE-2022-0358"]["releases"] == []
    advisory = real["CVE-2022-0358"]

    assert advisory.affected == ()
    assert advisory.severity is Severity.UNKNOWN


# --- hand-written odd statuses -------------------------------------------------------------------


@pytest.fixture(scope="module")
def odd() -> list:
    return parse_file(HAND_WRITTEN)


def by_id(records: list) -> dict[str | None, Advisory | RecordProblem]:
    return {r.record_id if isinstance(r, RecordProblem) else r.id: r for r in records}


def test_every_open_variant_has_its_documented_status(odd: list):
    advisory = by_id(odd)["CVE-2099-1001"]

    assert {release: status for (_, release), (status, _, _) in entries(advisory).items()} == {
        "bookworm": Status.AFFECTED,  # open, nothing else said
        "bullseye": Status.AFFECTED,  # no-dsa, postponed: may come in a point release
        "buster": Status.AFFECTED,  # no-dsa without a reason
        "trixie": Status.WILL_NOT_FIX,  # no-dsa, ignored
        "sid": Status.WILL_NOT_FIX,  # unimportant
        "forky": Status.UNDETERMINED,
    }
    assert advisory.severity is Severity.MEDIUM  # the most severe of its entries


def test_a_cve_in_two_packages_is_one_advisory_with_the_first_description(odd: list):
    advisory = by_id(odd)["CVE-2099-1002"]

    assert entries(advisory) == {
        ("hand-open", "bookworm"): (Status.FIXED, "1.0-2", Severity.HIGH),
        ("hand-other", "bookworm"): (Status.FIXED, "2.0-1+deb12u1", Severity.MEDIUM),
        ("hand-other", "bullseye"): (Status.NOT_AFFECTED, None, Severity.NEGLIGIBLE),
    }
    assert advisory.summary == "Affects two source packages (hand-written)."
    assert [r.id for r in odd if isinstance(r, Advisory)].count("CVE-2099-1002") == 1


def test_an_empty_releases_object_gives_an_advisory_without_entries(odd: list):
    assert by_id(odd)["CVE-2099-1003"].affected == ()


def test_malformed_entries_are_problems_naming_the_cve_or_package(odd: list):
    problems = {r.record_id: r.message for r in odd if isinstance(r, RecordProblem)}

    assert set(problems) == {"CVE-2099-1004", "CVE-2099-1005", "hand-broken"}
    assert "package hand-open, release bookworm: status resolved without a fixed_version" in problems["CVE-2099-1004"]
    assert "unknown status 'pending'" in problems["CVE-2099-1005"]
    assert "hand-broken" in problems["hand-broken"]
    # the valid entry of CVE-2099-1004 in another package does not make half an advisory
    assert not any(isinstance(r, Advisory) and r.id == "CVE-2099-1004" for r in odd)
    assert len(odd) == 6


@pytest.mark.parametrize(
    ("urgency", "severity"),
    [
        ("unimportant", Severity.NEGLIGIBLE),
        ("low", Severity.LOW),
        ("low**", Severity.LOW),
        ("medium*", Severity.MEDIUM),
        ("high", Severity.HIGH),
        ("not yet assigned", Severity.UNKNOWN),
        ("end-of-life", Severity.UNKNOWN),
        ("", Severity.UNKNOWN),
    ],
)
def test_urgency_to_severity(urgency: str, severity: Severity):
    assert severity_from_urgency(urgency) is severity


def test_release_status_of_an_open_unimportant_release_is_will_not_fix():
    assert release_status({"status": "open", "urgency": "unimportant**"}) == (Status.WILL_NOT_FIX, None)
    assert release_status({"status": "open", "urgency": "low", "fixed_version": ""}) == (Status.AFFECTED, None)


# --- whole-feed errors and the registry ----------------------------------------------------------


def test_invalid_json_is_a_feed_error_naming_the_origin():
    truncated = REAL_TRACKER.read_bytes()[:3000]

    with pytest.raises(FeedError, match="^https://tracker.example/json is not valid JSON"):
        list(DebianTrackerSource().parse(io.BytesIO(truncated), "https://tracker.example/json"))


def test_a_json_document_that_is_not_the_tracker_is_a_feed_error():
    with pytest.raises(FeedError, match="object of source packages"):
        list(DebianTrackerSource().parse(io.BytesIO(b"[1, 2]"), "tracker.json"))


def test_registered_with_the_tracker_url():
    assert isinstance(get_source("debian_tracker"), DebianTrackerSource)
    assert DEFAULT_URLS["debian_tracker"] == ("https://security-tracker.debian.org/tracker/data/json",)

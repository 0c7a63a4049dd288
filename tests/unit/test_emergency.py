"""Emergency runs: which images an advisory sync makes urgent (real store, real KEV catalog; the
Debian advisories are hand-written so the versions line up with the installed packages)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from patchpipe.advisories.kev import KevSource
from patchpipe.advisories.records import Advisory, AffectedPackage, Severity, Status
from patchpipe.advisories.store import FeedOrigin, replace_feed
from patchpipe.airflow.run_info import emergency_trigger
from patchpipe.emergency import Trigger, urgent_advisories
from patchpipe.packages.dpkg import InstalledPackage
from patchpipe.packages.inventory import Inventory
from patchpipe.packages.os_release import OsRelease

KEV_FILE = Path(__file__).resolve().parents[3] / "shared/data/advisories/cisa-kev/known_exploited_vulnerabilities.json"
AT = datetime(2026, 11, 24, tzinfo=timezone.utc)
LOG4SHELL = "CVE-2021-44228"  # in the real KEV catalog


def advisory(cve: str, package: str, fixed: str, severity: Severity = Severity.HIGH, status=Status.FIXED) -> Advisory:
    affected = AffectedPackage("debian", "bookworm", package, status, fixed if status == Status.FIXED else None,
                               severity=severity)
    return Advisory(id=cve, source="debian_tracker", severity=severity, affected=(affected,))


@pytest.fixture
def store(patchpipe_engine):
    with open(KEV_FILE, "rb") as catalog:
        replace_feed(patchpipe_engine, "kev", FeedOrigin("kev", "k"), list(KevSource().parse(catalog, "kev")), at=AT)
    replace_feed(patchpipe_engine, "debian-tracker", FeedOrigin("debian_tracker", "t"), [
        advisory(LOG4SHELL, "apache-log4j2", "2.17.0-1"),  # exploited
        advisory("CVE-2099-0001", "openssl", "3.0.15-1~deb12u1", Severity.CRITICAL),  # critical
        advisory("CVE-2099-0002", "zlib", "1:1.2.13.dfsg-2", Severity.MEDIUM),  # neither
        advisory("CVE-2099-0003", "perl", "5.36.0-8", Severity.CRITICAL, Status.AFFECTED),  # no fix yet
    ], at=AT)
    return patchpipe_engine


def image(**sources: str) -> Inventory:
    packages = [InstalledPackage(f"bin-{name}", version, "amd64", name, version) for name, version in sources.items()]
    return Inventory(OsRelease("debian", "12", "bookworm"), "dpkg", packages)


ALL_NEW = Trigger(frozenset({LOG4SHELL, "CVE-2099-0001", "CVE-2099-0002", "CVE-2099-0003"}), frozenset())


def test_an_exploited_fixable_advisory_makes_an_image_urgent(store):
    [reason] = urgent_advisories(store, image(**{"apache-log4j2": "2.15.0-1"}), ALL_NEW)
    assert reason == f"{LOG4SHELL} exploited (KEV): apache-log4j2 2.15.0-1 < 2.17.0-1"


def test_a_critical_fixable_advisory_makes_an_image_urgent(store):
    [reason] = urgent_advisories(store, image(openssl="3.0.14-1~deb12u2"), ALL_NEW)
    assert reason.startswith("CVE-2099-0001 critical: openssl")


def test_already_fixed_medium_or_unfixed_is_not_urgent(store):
    found = image(**{"apache-log4j2": "2.17.0-1", "openssl": "3.0.15-1~deb12u1", "zlib": "1:1.2.13.dfsg-1",
                     "perl": "5.36.0-7"})
    assert urgent_advisories(store, found, ALL_NEW) == []


def test_only_what_the_sync_just_reported_counts(store):
    nothing_new = Trigger(frozenset({"CVE-2099-0002"}), frozenset())
    assert urgent_advisories(store, image(openssl="3.0.14-1~deb12u2"), nothing_new) == []
    newly_exploited = Trigger(frozenset(), frozenset({LOG4SHELL}))
    assert len(urgent_advisories(store, image(**{"apache-log4j2": "2.15.0-1"}), newly_exploited)) == 1


def test_the_trigger_is_read_from_the_asset_events_of_an_asset_triggered_run():
    extra = {"feeds": {"debian-tracker": {"new": ["CVE-1"], "updated": ["CVE-2"], "new_kev": []},
                       "kev": {"new": [], "updated": [], "new_kev": ["CVE-3"]}, "epss": {"outcome": "unchanged"}}}
    context = {"dag_run": SimpleNamespace(run_type=SimpleNamespace(value="asset_triggered")),
               "triggering_asset_events": {"patchpipe://advisories": [SimpleNamespace(extra=extra)]}}
    assert emergency_trigger(context) == Trigger(frozenset({"CVE-1", "CVE-2"}), frozenset({"CVE-3"}))


@pytest.mark.parametrize("run_type", ["scheduled", "manual", "backfill"])
def test_other_runs_are_not_emergencies(run_type):
    context = {"dag_run": SimpleNamespace(run_type=SimpleNamespace(value=run_type))}
    assert emergency_trigger(context) is None

"""The advisory store's feed data: replaced whole per feed, looked up by package, merged by alias.

Every test runs on SQLite and on a real PostgreSQL server (started by ``support.postgres``; that
parameter is marked ``integration``). Records come from the real feeds in shared/data/advisories
through the real parsers, except where a test needs a case those files do not hold: such records
are written out below and made up (ids ``CVE-2099-...``, ``HAND-...``).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from patchpipe.advisories.records import (
    Advisory,
    AffectedPackage,
    EpssScore,
    KevEntry,
    Severity,
    Status,
    VersionEvent,
)
from patchpipe.advisories.source import FeedError, RecordProblem
from patchpipe.advisories.sources import SOURCES
from patchpipe.advisories.store import (
    FeedOrigin,
    advisory,
    affected_packages,
    epss,
    feed_state,
    kev,
    record_failure,
    record_not_modified,
    replace_feed,
    source_states,
)
from patchpipe.advisories.tables import AdvisoryRow, AffectedRow, AliasRow
from patchpipe.db import create_schema, make_engine

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "advisories"
AT = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
OSV = FeedOrigin("osv", "http://mirror.test/Debian/all.zip", etag='"v1"')


@pytest.fixture
def engine(patchpipe_engine):
    return patchpipe_engine


def parsed(source: str, *paths: Path) -> list:
    records = []
    for path in paths:
        with path.open("rb") as payload:
            records += list(SOURCES[source].parse(payload, str(path)))
    return records


def osv_debian() -> list:
    return parsed("osv", *sorted((DATA / "osv-debian").glob("*.json")))


def made_up(advisory_id: str, *aliases: str, package: str = "hand-pkg", fixed: str = "1.0-2", **fields) -> Advisory:
    affected = AffectedPackage("debian", "bookworm", package, Status.FIXED, fixed,
                               (VersionEvent("introduced", "0"), VersionEvent("fixed", fixed)))
    return Advisory(id=advisory_id, source=fields.pop("source", "osv"), aliases=aliases, affected=(affected,), **fields)


# --- replacing a feed -----------------------------------------------------------------------------


def test_a_feed_is_stored_and_found_by_ecosystem_release_and_package(engine) -> None:
    changes = replace_feed(engine, "osv-debian", OSV, osv_debian(), at=AT)

    assert changes.advisories == 9 and changes.skipped == 0
    assert changes.new_ids == ("DLA-3008-1", "DLA-3012-1", "DLA-3022-1", "DLA-3051-1", "DSA-1543-1", "DSA-1819-1",
                               "DSA-3029-1", "DTSA-125-1", "DTSA-132-1")
    [nginx] = affected_packages(engine, "debian", "wheezy", ["nginx", "bash"])
    assert (nginx.advisory_id, nginx.feed, nginx.source, nginx.package) == ("DSA-3029-1", "osv-debian", "osv", "nginx")
    assert (nginx.status, nginx.fixed_version) == (Status.FIXED, "1.2.1-2.2+wheezy3")
    assert nginx.events == (VersionEvent("introduced", "0"), VersionEvent("fixed", "1.2.1-2.2+wheezy3"))
    assert nginx.aliases == ("CVE-2014-3616",)
    assert affected_packages(engine, "debian", "bookworm", ["nginx"]) == []


def test_the_stored_advisory_reads_back_as_parsed(engine) -> None:
    [musl] = parsed("osv", DATA / "osv-alpine" / "ALPINE-CVE-2025-26519.json")
    replace_feed(engine, "osv-alpine", OSV, [musl], at=AT)

    [stored] = advisory(engine, "ALPINE-CVE-2025-26519").advisories

    assert stored.feed == "osv-alpine"
    assert stored.advisory == musl  # every field, the nine affected releases in order, aware UTC dates
    assert stored.advisory.modified.tzinfo is not None


def test_replacing_a_feed_swaps_its_data_and_reports_new_updated_and_removed_ids(engine) -> None:
    first = [made_up("HAND-1", "CVE-2099-0001"), made_up("HAND-2"), made_up("HAND-3")]
    replace_feed(engine, "hand", OSV, first, at=AT)

    second = [made_up("HAND-1", "CVE-2099-0001"), made_up("HAND-2", fixed="1.0-3"), made_up("HAND-4")]
    changes = replace_feed(engine, "hand", OSV, second, at=AT + timedelta(hours=1))

    assert (changes.new_ids, changes.updated_ids, changes.removed_ids) == (("HAND-4",), ("HAND-2",), ("HAND-3",))
    found = affected_packages(engine, "debian", "bookworm", ["hand-pkg"])
    assert sorted((m.advisory_id, m.fixed_version) for m in found) == [
        ("HAND-1", "1.0-2"), ("HAND-2", "1.0-3"), ("HAND-4", "1.0-2")]
    assert advisory(engine, "HAND-3") is None


def test_an_unchanged_feed_reports_no_changes(engine) -> None:
    replace_feed(engine, "osv-debian", OSV, osv_debian(), at=AT)

    changes = replace_feed(engine, "osv-debian", OSV, osv_debian(), at=AT + timedelta(hours=1))

    assert (changes.new_ids, changes.updated_ids, changes.removed_ids) == ((), (), ())
    assert changes.advisories == 9


def test_replacing_one_feed_leaves_the_other_feeds_alone(engine) -> None:
    replace_feed(engine, "osv-debian", OSV, osv_debian(), at=AT)
    replace_feed(engine, "hand", OSV, [made_up("HAND-1", package="nginx")], at=AT)

    replace_feed(engine, "hand", OSV, [], at=AT + timedelta(hours=1))

    assert [m.advisory_id for m in affected_packages(engine, "debian", "wheezy", ["nginx"])] == ["DSA-3029-1"]
    assert feed_state(engine, "osv-debian").advisories == 9
    assert feed_state(engine, "hand").advisories == 0


def test_a_feed_that_breaks_halfway_changes_nothing(engine) -> None:
    replace_feed(engine, "osv-debian", OSV, osv_debian(), at=AT)
    before = feed_state(engine, "osv-debian")

    def truncated():
        yield made_up("HAND-NEW")
        yield from osv_debian()[:4]
        raise FeedError("all.zip: zip archive is truncated")

    with pytest.raises(FeedError, match="truncated"):
        replace_feed(engine, "osv-debian", FeedOrigin("osv", OSV.url, etag='"v2"'), truncated(),
                     at=AT + timedelta(hours=1))

    assert feed_state(engine, "osv-debian") == before
    assert advisory(engine, "HAND-NEW") is None
    assert len(affected_packages(engine, "debian", "wheezy", ["nginx"])) == 1
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(AdvisoryRow)) == 9


def test_record_problems_are_skipped_counted_and_handed_on(engine) -> None:
    problems: list[RecordProblem] = []
    records = [made_up("HAND-1"), RecordProblem("HAND-BAD", "affected[0].package has no name"), made_up("HAND-2"),
               RecordProblem(None, "record has no id")]

    changes = replace_feed(engine, "hand", OSV, records, at=AT, on_problem=problems.append)

    assert (changes.advisories, changes.skipped) == (2, 2)
    assert [p.record_id for p in problems] == ["HAND-BAD", None]
    assert feed_state(engine, "hand").skipped == 2


def test_batches_larger_than_one_insert_are_all_stored(engine) -> None:
    records = [made_up(f"HAND-{n}", f"CVE-2099-{n:05d}", package=f"pkg{n % 7}") for n in range(4500)]

    changes = replace_feed(engine, "hand", OSV, records, at=AT)

    assert (changes.advisories, changes.affected) == (4500, 4500)
    assert len(affected_packages(engine, "debian", "bookworm", [f"pkg{n}" for n in range(7)])) == 4500
    assert [e.advisory.id for e in advisory(engine, "CVE-2099-04499").advisories] == ["HAND-4499"]
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(AliasRow)) == 4500


def test_one_id_stated_twice_in_a_feed_becomes_one_advisory_with_both_packages(engine) -> None:
    first = made_up("CVE-2099-0002", package="first-pkg", summary="first words", severity=Severity.LOW)
    again = made_up("CVE-2099-0002", "HAND-ALIAS", package="second-pkg", severity=Severity.HIGH, cvss_score=7.5)

    changes = replace_feed(engine, "hand", OSV, [first, again], at=AT)

    assert (changes.advisories, changes.affected) == (1, 2)
    [stored] = advisory(engine, "HAND-ALIAS").advisories
    assert [p.package for p in stored.advisory.affected] == ["first-pkg", "second-pkg"]
    assert (stored.advisory.summary, stored.advisory.severity, stored.advisory.cvss_score) == (
        "first words", Severity.HIGH, 7.5)
    assert stored.advisory.aliases == ("HAND-ALIAS",)
    unchanged = replace_feed(engine, "hand", OSV, [first, again], at=AT + timedelta(hours=1))
    assert unchanged.updated_ids == ()
    changed = replace_feed(engine, "hand", OSV, [first, made_up("CVE-2099-0002", package="third")], at=AT)
    assert changed.updated_ids == ("CVE-2099-0002",)


def test_text_with_quotes_backslashes_and_non_ascii_survives(engine) -> None:
    odd = made_up('HAND-"Q"', 'alias\\with"quote', package="päckage", fixed='1.0~"rc"\\1',
                  summary="Ünïcode — \"quoted\"\n second line \u2028")

    replace_feed(engine, "hand", OSV, [odd], at=AT)

    [stored] = advisory(engine, 'HAND-"Q"').advisories
    assert stored.advisory == odd


# --- KEV and EPSS ---------------------------------------------------------------------------------


def test_kev_and_epss_are_stored_per_cve_and_new_kev_entries_reported(engine) -> None:
    catalog = parsed("kev", DATA / "cisa-kev" / "known_exploited_vulnerabilities.json")
    scores = parsed("epss", DATA / "epss" / "epss_scores-current.sample.csv")

    first = replace_feed(engine, "kev", FeedOrigin("kev", "http://mirror.test/kev.json"), catalog[1:], at=AT)
    second = replace_feed(engine, "kev", FeedOrigin("kev", "http://mirror.test/kev.json"), catalog, at=AT)
    replace_feed(engine, "epss", FeedOrigin("epss", "http://mirror.test/epss.csv.gz"), scores, at=AT)

    assert (first.kev, len(first.new_kev)) == (1403, 1403)
    assert second.new_kev == (catalog[0].cve,) == ("CVE-2025-48384",)
    assert kev(engine, "CVE-2025-48384") == KevEntry("CVE-2025-48384", date(2025, 8, 25), date(2025, 9, 15), "Git",
                                                     "Git", False)
    assert epss(engine, "CVE-2024-7922") == EpssScore("CVE-2024-7922", 0.19464, 0.9729, date(2026, 9, 29))
    assert kev(engine, "CVE-2099-0001") is None and epss(engine, "CVE-2099-0001") is None
    assert (feed_state(engine, "kev").kev, feed_state(engine, "epss").epss) == (1404, 536)


def test_a_cve_listed_twice_keeps_its_first_entry(engine) -> None:
    entries = [KevEntry("CVE-2099-0003", date(2026, 1, 2), None, "First"),
               KevEntry("CVE-2099-0003", date(2026, 3, 4), None, "Second")]

    changes = replace_feed(engine, "kev", FeedOrigin("kev", "http://mirror.test/kev.json"), entries, at=AT)

    assert changes.kev == 1
    assert kev(engine, "CVE-2099-0003").vendor == "First"


# --- the merged view ------------------------------------------------------------------------------


def test_a_cve_shows_every_advisory_that_names_it_with_kev_and_epss(engine) -> None:
    # Made up: the real files share no CVE between the tracker, a DSA, an ALPINE record and KEV.
    tracker = made_up("CVE-2099-1234", source="debian_tracker", summary="the tracker's words")
    dsa = made_up("DSA-9999-1", "CVE-2099-1234", severity=Severity.HIGH)
    alpine = made_up("ALPINE-CVE-2099-1234", "CVE-2099-1234", package="hand-apk", cvss_score=9.8)
    unrelated = made_up("DSA-9998-1", "CVE-2099-9999")
    replace_feed(engine, "debian-tracker", OSV, [tracker], at=AT)
    replace_feed(engine, "osv-debian", OSV, [dsa, unrelated], at=AT)
    replace_feed(engine, "osv-alpine", OSV, [alpine], at=AT)
    replace_feed(engine, "kev", FeedOrigin("kev", "k"), [KevEntry("CVE-2099-1234", date(2026, 5, 1), date(2026, 5, 22),
                                                                  "Hand", "Made", True)], at=AT)
    replace_feed(engine, "epss", FeedOrigin("epss", "e"), [EpssScore("CVE-2099-1234", 0.97, 0.999)], at=AT)

    for asked in ("CVE-2099-1234", "DSA-9999-1", "cve-2099-1234"):
        view = advisory(engine, asked)
        assert [(e.feed, e.advisory.id) for e in view.advisories] == [
            ("osv-alpine", "ALPINE-CVE-2099-1234"), ("debian-tracker", "CVE-2099-1234"), ("osv-debian", "DSA-9999-1")]
        assert [entry.cve for entry in view.kev] == ["CVE-2099-1234"] and view.known_exploited
        assert [score.score for score in view.epss] == [0.97]
        assert (view.severity, view.cvss_score) == (Severity.HIGH, 9.8)
    assert advisory(engine, "DSA-9999-1").aliases == ("ALPINE-CVE-2099-1234", "CVE-2099-1234")


def test_the_real_dsa_and_its_cve_show_each_other(engine) -> None:
    replace_feed(engine, "osv-debian", OSV, osv_debian(), at=AT)

    by_cve = advisory(engine, "CVE-2014-3616")
    by_dsa = advisory(engine, "DSA-3029-1")

    assert [e.advisory.id for e in by_cve.advisories] == [e.advisory.id for e in by_dsa.advisories] == ["DSA-3029-1"]
    assert (by_cve.aliases, by_dsa.aliases) == (("DSA-3029-1",), ("CVE-2014-3616",))


def test_a_cve_known_only_to_epss_still_has_a_view_and_an_unknown_id_has_none(engine) -> None:
    replace_feed(engine, "epss", FeedOrigin("epss", "e"), parsed("epss", DATA / "epss" / "epss_scores-current.sample.csv"),
                 at=AT)

    view = advisory(engine, "CVE-2024-8176")

    assert (view.advisories, view.kev, [s.percentile for s in view.epss]) == ((), (), [0.6986])
    assert advisory(engine, "CVE-2099-0404") is None


def test_the_tracker_cve_without_releases_is_kept_with_no_packages(engine) -> None:
    tracker = parsed("debian_tracker", DATA / "debian-security-tracker" / "debian.json")

    replace_feed(engine, "debian-tracker", FeedOrigin("debian_tracker", "t"), tracker, at=AT)

    [entry] = advisory(engine, "CVE-2022-0358").advisories
    assert (entry.feed, entry.advisory.affected) == ("debian-tracker", ())
    assert {m.advisory_id for m in affected_packages(engine, "debian", "bookworm", ["chromium", "sope"])} == {
        "CVE-2022-0456", "CVE-2025-53603"}


# --- feed state -----------------------------------------------------------------------------------


def test_feed_state_follows_success_not_modified_and_failure(engine) -> None:
    replace_feed(engine, "osv-debian", OSV, osv_debian(), at=AT)
    record_not_modified(engine, "osv-debian", FeedOrigin("osv", OSV.url), at=AT + timedelta(hours=1))
    record_failure(engine, "osv-debian", FeedOrigin("osv", OSV.url), "HTTP 500", at=AT + timedelta(hours=2))
    record_failure(engine, "never-worked", FeedOrigin("kev", "http://mirror.test/kev.json"), "refused", at=AT)

    broken, never = feed_state(engine, "osv-debian"), feed_state(engine, "never-worked")

    assert (broken.last_success, broken.last_changed, broken.last_attempt) == (
        AT + timedelta(hours=1), AT, AT + timedelta(hours=2))
    assert (broken.stale, broken.last_error, broken.etag, broken.advisories) == (True, "HTTP 500", '"v1"', 9)
    assert broken.age(AT + timedelta(hours=5)) == timedelta(hours=4)
    assert (never.stale, never.last_success, never.age(AT)) == (True, None, None)
    assert [state.name for state in source_states(engine)] == ["never-worked", "osv-debian"]


def test_a_success_clears_the_last_error(engine) -> None:
    record_failure(engine, "hand", OSV, "HTTP 503", at=AT)

    replace_feed(engine, "hand", OSV, [made_up("HAND-1")], at=AT + timedelta(hours=1))

    state = feed_state(engine, "hand")
    assert (state.stale, state.last_error, state.last_success) == (False, None, AT + timedelta(hours=1))


def test_events_are_stored_as_json(engine) -> None:
    replace_feed(engine, "osv-debian", OSV, osv_debian(), at=AT)

    with engine.connect() as connection:
        events = connection.scalar(select(AffectedRow.events).where(AffectedRow.advisory_id == "DSA-3029-1"))
        aliases = connection.scalar(select(AdvisoryRow.aliases).where(AdvisoryRow.id == "DSA-3029-1"))

    assert events == [["introduced", "0"], ["fixed", "1.2.1-2.2+wheezy3"]]
    assert aliases == ["CVE-2014-3616"]
    assert json.dumps(events)  # plain JSON types, as the JSON column type reads them

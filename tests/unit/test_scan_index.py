"""Repeated scans (``patchpipe.scan.index``): what one scan read is used again, never once the store changed.

The records are made up (ids ``CVE-2099-...``, ``DSA-9...``, packages ``pkgN``). The tests that
write feeds run on SQLite and on a real PostgreSQL server (that parameter is marked
``integration``); the ones that copy a database file are SQLite's.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text, update

from patchpipe.advisories.records import (
    Advisory,
    AffectedPackage,
    EpssScore,
    KevEntry,
    Severity,
    Status,
    VersionEvent,
)
from patchpipe.advisories.store import FeedOrigin, feed_state, record_not_modified, replace_feed, store_token
from patchpipe.advisories.tables import AffectedRow
from patchpipe.db import create_schema, make_engine
from patchpipe.errors import PatchpipeError
from patchpipe.packages.inventory import InstalledPackage, Inventory
from patchpipe.packages.os_release import OsRelease
from patchpipe.scan import index
from patchpipe.scan.match import _compare, match

AT = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
HAND = FeedOrigin("hand", "test_scan_index.py")
BOOKWORM = OsRelease("debian", "12", "bookworm")
RELEASES = {"bookworm": BOOKWORM, "bullseye": OsRelease("debian", "11", "bullseye"),
            "trixie": OsRelease("debian", "13", "trixie")}


@pytest.fixture(autouse=True)
def nothing_kept():
    """Each test starts with nothing in memory: no slice, no remembered comparison."""
    index.forget()
    _compare.cache_clear()
    yield
    index.forget()


def fixed_in(advisory_id: str, package: str, fixed: str, *aliases: str, release: str = "bookworm") -> Advisory:
    return Advisory(advisory_id, "hand", aliases=aliases, severity=Severity.HIGH, affected=(
        AffectedPackage("debian", release, package, Status.FIXED, fixed),))


def write(engine, *records, feed: str = "hand") -> None:
    replace_feed(engine, feed, HAND, list(records), at=AT)


def deb(name: str, version: str, source: str | None = None) -> InstalledPackage:
    return InstalledPackage(name, version, "amd64", source or name, version)


def scan(engine, *packages: InstalledPackage, os: OsRelease = BOOKWORM) -> list[tuple]:
    return [(f.package, f.id, f.fixed, f.status, f.kev, f.epss)
            for f in match(engine, Inventory(os, "dpkg", list(packages)))]


def cold(engine, inventory: Inventory) -> list:
    """``match`` as the first scan of a new process: nothing kept, nothing remembered."""
    index.forget()
    _compare.cache_clear()
    return match(engine, inventory)


# --- a changed store is always read again --------------------------------------------------------


def test_a_feed_replaced_with_the_same_counts_at_the_same_time_but_other_versions_is_read_again(
        patchpipe_engine) -> None:
    engine = patchpipe_engine
    zlib = deb("zlib1g", "1:1.2.13.dfsg-1", "zlib")
    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-2"))
    assert scan(engine, zlib) == [("zlib1g", "CVE-2099-0001", "1:1.2.13.dfsg-2", Status.FIXED, False, None)]
    state, token = feed_state(engine, "hand"), _token(engine)

    # Same feed, same `at`, one advisory with one package: only the fixed version differs.
    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-1"))
    assert feed_state(engine, "hand") == state  # nothing in the state row tells the copies apart
    assert _token(engine) != token
    assert scan(engine, zlib) == []

    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-3"))
    assert scan(engine, zlib) == [("zlib1g", "CVE-2099-0001", "1:1.2.13.dfsg-3", Status.FIXED, False, None)]


def test_new_advisories_and_a_new_kev_listing_are_seen_by_the_next_scan(patchpipe_engine) -> None:
    engine = patchpipe_engine
    installed = (deb("zlib1g", "1:1.2.13.dfsg-1", "zlib"), deb("bash", "5.2.15-2+b2"))
    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-2"))
    assert [f[:2] for f in scan(engine, *installed)] == [("zlib1g", "CVE-2099-0001")]

    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-2"), fixed_in("DSA-9001-1", "bash", "5.2.15-2+b3"))
    write(engine, KevEntry("CVE-2099-0001", date(2026, 11, 1), None), feed="kev")
    write(engine, EpssScore("CVE-2099-0001", 0.5, 0.9), feed="epss")

    assert scan(engine, *installed) == [
        ("bash", "DSA-9001-1", "5.2.15-2+b3", Status.FIXED, False, None),
        ("zlib1g", "CVE-2099-0001", "1:1.2.13.dfsg-2", Status.FIXED, True, 0.5),
    ]


def test_a_write_through_another_engine_to_the_same_database_is_seen(tmp_path: Path) -> None:
    """Another process syncing the feeds: a scanning process's engine does not see the write happen."""
    url = f"sqlite:///{tmp_path / 'patchpipe.db'}"
    scanner, syncer = make_engine(url), make_engine(url)
    create_schema(scanner)
    zlib = deb("zlib1g", "1:1.2.13.dfsg-1", "zlib")
    write(syncer, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-2"))
    assert len(scan(scanner, zlib)) == 1

    write(syncer, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-1"))

    assert scan(scanner, zlib) == []
    scanner.dispose()
    syncer.dispose()


def test_a_feed_that_answers_not_modified_keeps_what_is_kept(patchpipe_engine) -> None:
    engine = patchpipe_engine
    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-2"))
    token = _token(engine)

    record_not_modified(engine, "hand", HAND, at=AT.replace(hour=7))

    assert _token(engine) == token


def test_a_store_read_while_a_feed_changed_is_not_kept(patchpipe_engine, monkeypatch) -> None:
    """On PostgreSQL a feed may be replaced between a scan's statements: such a read is not kept."""
    engine = patchpipe_engine
    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-2"))
    tokens = iter(range(100))
    monkeypatch.setattr(index, "store_token", lambda connection: (next(tokens),))

    assert len(scan(engine, deb("zlib1g", "1:1.2.13.dfsg-1", "zlib"))) == 1

    assert index.kept_slices(engine) == []


# --- nothing is shared between databases ----------------------------------------------------------


def test_two_databases_with_equal_tokens_never_share_what_is_kept(tmp_path: Path) -> None:
    """A copy of a database file has the same token; rows edited behind the store's back keep it.
    Only the engine tells the two apart, and it does."""
    first = make_engine(f"sqlite:///{tmp_path / 'first.db'}")
    create_schema(first)
    write(first, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-2"))
    _copy(tmp_path / "first.db", tmp_path / "second.db")
    second = make_engine(f"sqlite:///{tmp_path / 'second.db'}")
    with second.begin() as connection:
        connection.execute(update(AffectedRow).values(fixed_version="1:1.2.13.dfsg-9"))
    assert _token(first) == _token(second)
    zlib = deb("zlib1g", "1:1.2.13.dfsg-1", "zlib")

    assert [f[2] for f in scan(first, zlib)] == ["1:1.2.13.dfsg-2"]
    assert [f[2] for f in scan(second, zlib)] == ["1:1.2.13.dfsg-9"]
    assert [f[2] for f in scan(first, zlib)] == ["1:1.2.13.dfsg-2"]
    assert index.kept_slices(first) == index.kept_slices(second) == [("debian", "bookworm")]
    first.dispose()
    second.dispose()


def test_a_database_created_again_where_another_was_is_read_again(tmp_path: Path) -> None:
    """Same engine, same file name, same writes: the random stamps still differ."""
    engine = make_engine(f"sqlite:///{tmp_path / 'patchpipe.db'}")
    create_schema(engine)
    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-2"))
    zlib = deb("zlib1g", "1:1.2.13.dfsg-1", "zlib")
    assert len(scan(engine, zlib)) == 1
    with engine.begin() as connection:
        for table in ("advisory_affected", "advisory_aliases", "advisories", "advisory_feed_states",
                      "advisory_feed_changes"):
            connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608  (fixed names)

    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-1"))

    assert scan(engine, zlib) == []
    engine.dispose()


def test_a_database_from_before_the_change_table_gets_it_and_scans(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'patchpipe.db'}")
    create_schema(engine)
    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-2"))
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE advisory_feed_changes"))  # as an older patchpipe made it

    create_schema(engine)  # what every entry point does on opening the database

    zlib = deb("zlib1g", "1:1.2.13.dfsg-1", "zlib")
    assert len(scan(engine, zlib)) == 1  # its feeds have state rows and no change rows yet
    write(engine, fixed_in("CVE-2099-0001", "zlib", "1:1.2.13.dfsg-1"))
    assert scan(engine, zlib) == []
    engine.dispose()


# --- the same findings, kept or not ---------------------------------------------------------------


def test_findings_are_the_same_with_and_without_what_is_kept(patchpipe_engine) -> None:
    engine = patchpipe_engine
    generator = random.Random(20261124)
    _write_generated(engine, generator)
    inventories = [_generated_inventory(generator, release) for release in ("bookworm", "bookworm", "bullseye")] * 2
    warm = [match(engine, inventory) for inventory in inventories]
    assert any(warm) and all(a == b for a, b in zip(warm, warm[3:]))  # the same inventories, scanned again

    assert warm == [cold(engine, inventory) for inventory in inventories]

    # After one feed changes, what was kept for the others is not used either.
    _write_generated(engine, generator, feeds=("hand",))
    warm = [match(engine, inventory) for inventory in inventories]
    assert warm == [cold(engine, inventory) for inventory in inventories]


def test_an_entry_that_cannot_be_compared_fails_every_scan(patchpipe_engine) -> None:
    engine = patchpipe_engine
    write(engine, fixed_in("CVE-2099-0001", "zlib", "x1.0"))
    zlib = deb("zlib1g", "1:1.2.13.dfsg-1", "zlib")

    for _ in range(2):
        with pytest.raises(PatchpipeError, match=r"advisory CVE-2099-0001 \(feed hand\) for zlib: 'x1.0'"):
            scan(engine, zlib)


# --- bounded memory -------------------------------------------------------------------------------


def test_only_the_last_slices_used_are_kept(patchpipe_engine, monkeypatch) -> None:
    engine = patchpipe_engine
    monkeypatch.setattr(index, "SLICES_KEPT", 2)
    write(engine, *(fixed_in(f"CVE-2099-000{n}", "zlib", "1:1.2.13.dfsg-2", release=release)
                    for n, release in enumerate(RELEASES)))
    zlib = deb("zlib1g", "1:1.2.13.dfsg-1", "zlib")

    for release, os in RELEASES.items():
        assert len(scan(engine, zlib, os=os)) == 1

    assert index.kept_slices(engine) == [("debian", "bullseye"), ("debian", "trixie")]


def test_only_the_last_results_are_kept_and_answers_stay_right(patchpipe_engine, monkeypatch) -> None:
    engine = patchpipe_engine
    monkeypatch.setattr(index, "RESULTS_KEPT", 3)
    write(engine, *(fixed_in(f"CVE-2099-000{n}", f"pkg{n}", "1.0-2") for n in range(5)))
    packages = [deb(f"pkg{n}", "1.0-1") for n in range(5)]

    for _ in range(2):
        assert [f[1] for f in scan(engine, *packages)] == [f"CVE-2099-000{n}" for n in range(5)]

    with index.store_view(engine, "debian", "bookworm") as view:
        assert len(view.results) == 3


# --- helpers --------------------------------------------------------------------------------------


def _token(engine) -> tuple:
    with engine.connect() as connection:
        return store_token(connection)


def _copy(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as reading, sqlite3.connect(target) as writing:
        reading.backup(writing)


_VERSIONS = ("0.9-1", "1.0-1", "1.0-2", "1.0-2+deb12u1", "1.1~rc1-1", "1.1-1", "1:0.5-1", "2.0-1")
_SOURCES = [f"pkg{n}" for n in range(30)]


def _write_generated(engine, generator: random.Random, feeds=("osv", "tracker", "hand")) -> None:
    """Advisories of every shape the matcher tells apart, in several feeds, some sharing CVEs
    (a DSA and the CVE it fixes), with KEV and EPSS for some of the CVEs."""
    cves = [f"CVE-2099-{n:04d}" for n in range(120)]
    for feed in feeds:
        records = []
        for number in range(150):
            cve = generator.choice(cves)
            advisory_id, aliases, upstream = cve, (), ()
            if generator.random() < 0.3:
                advisory_id, upstream = f"DSA-9{number:03d}-1", (cve,)
            elif generator.random() < 0.2:
                advisory_id, aliases = f"DLA-9{number:03d}-1", (cve,)
            affected = tuple(_generated_package(generator) for _ in range(generator.choice((1, 1, 2))))
            records.append(Advisory(advisory_id, feed, aliases=aliases, upstream=upstream,
                                    severity=generator.choice(list(Severity)),
                                    cvss_score=generator.choice((None, 4.3, 9.8)), affected=affected))
        write(engine, *records, feed=feed)
    write(engine, *(KevEntry(cve, date(2026, 1, 1), None) for cve in generator.sample(cves, 10)), feed="kev")
    write(engine, *(EpssScore(cve, round(generator.random(), 3), 0.5) for cve in generator.sample(cves, 40)),
          feed="epss")


def _generated_package(generator: random.Random) -> AffectedPackage:
    release = generator.choice(("bookworm", "bookworm", "bullseye"))
    package = generator.choice(_SOURCES)
    severity = generator.choice((Severity.UNKNOWN, Severity.LOW, Severity.HIGH))
    shape = generator.randrange(6)
    if shape == 0:
        return AffectedPackage("debian", release, package, Status.FIXED, generator.choice(_VERSIONS), (), severity)
    if shape == 1:
        start, end = sorted(generator.sample(_VERSIONS, 2))
        kind = generator.choice(("fixed", "last_affected"))
        events = [VersionEvent("introduced", generator.choice(("0", start))), VersionEvent(kind, end)]
        if generator.random() < 0.3:
            events.append(VersionEvent("introduced", generator.choice(_VERSIONS)))
        return AffectedPackage("debian", release, package, Status.FIXED if kind == "fixed" else Status.AFFECTED,
                               None, tuple(events), severity)
    status = (Status.AFFECTED, Status.WILL_NOT_FIX, Status.NOT_AFFECTED, Status.UNDETERMINED)[shape - 2]
    return AffectedPackage("debian", release, package, status, None, (), severity)


def _generated_inventory(generator: random.Random, release: str) -> Inventory:
    packages = []
    for source in generator.sample(_SOURCES, 20):
        version = generator.choice(_VERSIONS)
        packages.append(InstalledPackage(source, version, "amd64", source, version))
        if generator.random() < 0.3:
            packages.append(InstalledPackage(f"lib{source}", version, "amd64", source, version))
    return Inventory(RELEASES[release], "dpkg", packages)

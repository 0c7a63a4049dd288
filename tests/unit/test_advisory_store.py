"""The advisory store keeps one security index per release, replaced all at once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from patchpipe.advisories.security_archive import SecurityIndex, SecurityVersion
from patchpipe.advisories.store import newest_security_versions, save_security_index, security_index_info
from patchpipe.db import create_schema, make_engine

FETCHED = datetime(2026, 11, 24, 4, 0, tzinfo=timezone.utc)


@pytest.fixture
def engine(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'patchpipe.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


def index(release: str, packages: dict[str, str], fetched_at: datetime = FETCHED) -> SecurityIndex:
    return SecurityIndex(
        release=release,
        suite=f"{release}-security",
        mirror="http://deb.debian.org/debian-security",
        fetched_at=fetched_at,
        release_date=fetched_at - timedelta(days=3),
        packages={name: SecurityVersion(version, name.split("-")[0]) for name, version in packages.items()},
    )


def test_saved_versions_are_found_by_package_name(engine) -> None:
    save_security_index(engine, index("bookworm", {"perl-base": "5.36.0-7+deb12u4", "apt": "2.6.2"}))

    found = newest_security_versions(engine, "bookworm", ["perl-base", "apt", "bash"])

    assert found == {"perl-base": "5.36.0-7+deb12u4", "apt": "2.6.2"}


def test_saving_replaces_only_that_release(engine) -> None:
    save_security_index(engine, index("bookworm", {"perl-base": "5.36.0-7+deb12u3", "curl": "7.88.1-10+deb12u4"}))
    save_security_index(engine, index("trixie", {"perl-base": "5.40.1-6"}))

    save_security_index(engine, index("bookworm", {"perl-base": "5.36.0-7+deb12u4"}, FETCHED + timedelta(hours=6)))

    assert newest_security_versions(engine, "bookworm", ["perl-base", "curl"]) == {"perl-base": "5.36.0-7+deb12u4"}
    assert newest_security_versions(engine, "trixie", ["perl-base"]) == {"perl-base": "5.40.1-6"}
    assert security_index_info(engine, "bookworm").package_count == 1
    assert security_index_info(engine, "bookworm").fetched_at == FETCHED + timedelta(hours=6)


def test_a_save_that_fails_midway_changes_nothing(engine) -> None:
    save_security_index(engine, index("bookworm", {"perl-base": "5.36.0-7+deb12u3"}))
    broken = index("bookworm", {"apt": "2.6.2", "tzdata": "2026f-0+deb12u1"}, FETCHED + timedelta(hours=1))
    broken.packages["tzdata"] = SecurityVersion(None, "tzdata")  # type: ignore[arg-type]  # NOT NULL violation

    with pytest.raises(IntegrityError):
        save_security_index(engine, broken)

    assert newest_security_versions(engine, "bookworm", ["perl-base", "apt", "tzdata"]) == {
        "perl-base": "5.36.0-7+deb12u3"
    }
    assert security_index_info(engine, "bookworm").fetched_at == FETCHED


def test_info_tells_when_and_how_much(engine) -> None:
    assert security_index_info(engine, "bookworm") is None

    save_security_index(engine, index("bookworm", {"perl-base": "5.36.0-7+deb12u4", "apt": "2.6.2"}))

    info = security_index_info(engine, "bookworm")
    assert info.fetched_at == FETCHED
    assert info.fetched_at.tzinfo is not None
    assert info.release_date == FETCHED - timedelta(days=3)
    assert info.package_count == 2
    assert info.suite == "bookworm-security"


def test_an_empty_suite_still_counts_as_fetched(engine) -> None:
    save_security_index(engine, index("forky", {}))

    assert security_index_info(engine, "forky").package_count == 0
    assert newest_security_versions(engine, "forky", ["apt"]) == {}


def test_lookups_of_many_names_are_complete(engine) -> None:
    packages = {f"lib{n}": f"1.{n}-1" for n in range(1800)}
    save_security_index(engine, index("bookworm", packages))

    found = newest_security_versions(engine, "bookworm", list(packages) + ["not-in-archive"])

    assert found == packages


def test_unknown_release_finds_nothing(engine) -> None:
    save_security_index(engine, index("bookworm", {"apt": "2.6.2"}))

    assert newest_security_versions(engine, "bullseye", ["apt"]) == {}

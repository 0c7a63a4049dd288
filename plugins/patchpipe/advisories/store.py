"""Persisted advisory data. For now: the security archive's newest version per package.

Saving a release replaces all of its rows in one transaction, so readers see either the previous
index or the new one, never a mix; a fetch that failed never reaches the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import Engine, Integer, String, delete, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from patchpipe.advisories.security_archive import SecurityIndex
from patchpipe.db import Base, UTCDateTime

# Stays well under SQLite's limit on bound parameters per statement.
_NAMES_PER_QUERY = 500


class SecurityArchivePackage(Base):
    """The newest version of one binary package in one release's security suite."""

    __tablename__ = "security_archive_packages"

    release: Mapped[str] = mapped_column(String(64), primary_key=True)
    package: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(255))
    suite: Mapped[str] = mapped_column(String(128))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SecurityArchiveFetch(Base):
    """When a release's index was last saved. Kept apart so an empty suite still reads as fetched."""

    __tablename__ = "security_archive_fetches"

    release: Mapped[str] = mapped_column(String(64), primary_key=True)
    suite: Mapped[str] = mapped_column(String(128))
    mirror: Mapped[str] = mapped_column(String(1024))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    release_date: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    package_count: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class SecurityIndexInfo:
    suite: str
    mirror: str
    fetched_at: datetime
    release_date: datetime | None
    package_count: int


def save_security_index(engine: Engine, index: SecurityIndex) -> None:
    """Replace ``index.release``'s stored versions with ``index``, all or nothing."""
    rows = [
        {
            "release": index.release,
            "package": name,
            "version": entry.version,
            "source": entry.source,
            "suite": index.suite,
            "fetched_at": index.fetched_at,
        }
        for name, entry in index.packages.items()
    ]
    with Session(engine) as session, session.begin():
        session.execute(delete(SecurityArchivePackage).where(SecurityArchivePackage.release == index.release))
        if rows:
            session.execute(insert(SecurityArchivePackage), rows)
        session.merge(
            SecurityArchiveFetch(
                release=index.release,
                suite=index.suite,
                mirror=index.mirror,
                fetched_at=index.fetched_at,
                release_date=index.release_date,
                package_count=len(rows),
            )
        )


def newest_security_versions(engine: Engine, release: str, package_names: Iterable[str]) -> dict[str, str]:
    """Security-archive version per package for those of ``package_names`` the archive holds."""
    names = sorted(set(package_names))
    found: dict[str, str] = {}
    with Session(engine) as session:
        for start in range(0, len(names), _NAMES_PER_QUERY):
            chunk = names[start : start + _NAMES_PER_QUERY]
            query = select(SecurityArchivePackage.package, SecurityArchivePackage.version).where(
                SecurityArchivePackage.release == release, SecurityArchivePackage.package.in_(chunk)
            )
            found.update({package: version for package, version in session.execute(query)})
    return found


def security_index_info(engine: Engine, release: str) -> SecurityIndexInfo | None:
    """When ``release``'s index was saved and how many packages it holds; None if never saved."""
    with Session(engine) as session:
        fetch = session.get(SecurityArchiveFetch, release)
        if fetch is None:
            return None
        return SecurityIndexInfo(
            suite=fetch.suite,
            mirror=fetch.mirror,
            fetched_at=fetch.fetched_at,
            release_date=fetch.release_date,
            package_count=fetch.package_count,
        )

"""The advisory store's tables: advisories by feed, their affected packages and aliases, KEV, EPSS,
each feed's sync state, and the security archive's newest versions.

Every row of feed data carries its feed's name, so one feed's data is replaced (deleted and
inserted again) in one transaction without touching the others. Enum values are plain strings
(portable, nothing to migrate); the records in ``records.py`` are the typed view.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from patchpipe.db import Base, UTCDateTime

FEED_NAME = String(128)
ADVISORY_ID = String(255)


class AdvisoryRow(Base):
    """One advisory as one feed states it. The same id in two feeds is two rows (merged when read)."""

    __tablename__ = "advisories"
    __table_args__ = (Index("ix_advisories_id", "id"),)

    feed: Mapped[str] = mapped_column(FEED_NAME, primary_key=True)
    id: Mapped[str] = mapped_column(ADVISORY_ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    aliases: Mapped[list[str]] = mapped_column(JSON)
    upstream: Mapped[list[str]] = mapped_column(JSON)  # linked ids, e.g. the CVEs a DSA fixes
    summary: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    cvss: Mapped[float | None] = mapped_column(Float, nullable=True)
    published: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    modified: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A hash of the record as parsed: a different digest on the next sync means "updated".
    digest: Mapped[str] = mapped_column(String(32))


class AffectedRow(Base):
    """One (ecosystem, release, package) an advisory speaks about, and what it says there."""

    __tablename__ = "advisory_affected"
    __table_args__ = (
        Index("ix_advisory_affected_package", "ecosystem", "release", "package"),
        Index("ix_advisory_affected_feed", "feed", "advisory_id"),
    )

    row: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feed: Mapped[str] = mapped_column(FEED_NAME)
    advisory_id: Mapped[str] = mapped_column(ADVISORY_ID)
    ecosystem: Mapped[str] = mapped_column(String(64))
    release: Mapped[str] = mapped_column(String(64))
    package: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    fixed_version: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # [["introduced", "0"], ["fixed", "1.2-3"]]: OSV range events in order.
    events: Mapped[list[Any]] = mapped_column(JSON)
    severity: Mapped[str] = mapped_column(String(16))


class AliasRow(Base):
    """``advisory_id`` is also known as ``alias`` (CVE <-> DSA, DLA, ALPINE, GHSA)."""

    __tablename__ = "advisory_aliases"
    __table_args__ = (
        Index("ix_advisory_aliases_alias", "alias"),
        Index("ix_advisory_aliases_feed", "feed", "advisory_id"),
    )

    row: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feed: Mapped[str] = mapped_column(FEED_NAME)
    advisory_id: Mapped[str] = mapped_column(ADVISORY_ID)
    alias: Mapped[str] = mapped_column(ADVISORY_ID)


class KevRow(Base):
    """A CVE in CISA's catalog of Known Exploited Vulnerabilities."""

    __tablename__ = "kev_entries"
    __table_args__ = (Index("ix_kev_entries_cve", "cve"),)

    feed: Mapped[str] = mapped_column(FEED_NAME, primary_key=True)
    cve: Mapped[str] = mapped_column(ADVISORY_ID, primary_key=True)
    date_added: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    vendor: Mapped[str] = mapped_column(String(255))
    product: Mapped[str] = mapped_column(String(255))
    known_ransomware: Mapped[bool] = mapped_column(Boolean)


class EpssRow(Base):
    """A CVE's FIRST EPSS score: the probability of exploitation in the next 30 days."""

    __tablename__ = "epss_scores"
    __table_args__ = (Index("ix_epss_scores_cve", "cve"),)

    feed: Mapped[str] = mapped_column(FEED_NAME, primary_key=True)
    cve: Mapped[str] = mapped_column(ADVISORY_ID, primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    percentile: Mapped[float] = mapped_column(Float)
    scored_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class FeedStateRow(Base):
    """What the last syncs of one feed did: the freshness and conditional-GET validators."""

    __tablename__ = "advisory_feed_states"

    name: Mapped[str] = mapped_column(FEED_NAME, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    last_attempt: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Last time the stored data was confirmed current: stored from a 200, or a 304.
    last_success: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_changed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Set when the last attempt failed; cleared by the next success.
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    etag: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(128), nullable=True)
    advisories: Mapped[int] = mapped_column(Integer, default=0)
    affected: Mapped[int] = mapped_column(Integer, default=0)
    kev: Mapped[int] = mapped_column(Integer, default=0)
    epss: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)


class FeedChangeRow(Base):
    """How many times one feed's data was replaced, and a random stamp of the latest copy.

    Written in the same transaction as the feed's rows (``store.replace_feed_parts``), so a reader
    that sees the rows of a copy sees its stamp: ``store.store_token`` reads these rows to tell,
    with one tiny query, whether anything a scan may have kept in memory changed. The stamp is
    random rather than derived from time or counts: a copy replaced at the same ``at`` with the
    same row counts, or a database recreated where another was, never repeats an earlier stamp.

    A table of its own, not columns of ``advisory_feed_states``: ``create_schema`` creates missing
    tables in an existing database, but never adds columns to an existing table.
    """

    __tablename__ = "advisory_feed_changes"

    feed: Mapped[str] = mapped_column(FEED_NAME, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)  # 1 for the first copy, one more for each next
    stamp: Mapped[str] = mapped_column(String(32))  # random hex, new for every copy


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

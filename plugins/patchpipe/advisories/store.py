"""Persisted advisory data: every feed's advisories, KEV and EPSS, each feed's sync state, and the
security archive's newest version per package.

Writing: ``replace_feed`` swaps one feed's data for a new copy in ONE transaction, streaming the
records in batches; readers see the old copy or the new one, never a mix, and a feed that turns out
truncated or invalid halfway (the parser raises) changes nothing. ``replace_feed_parts`` is the
same for records already taken apart by ``record_parts``, which a parsing process can do and hand
on. ``save_security_index`` does the same for one release of the security archive.

Reading: ``affected_packages`` (by ecosystem, release and package names), ``advisory`` (the merged
view of an id across feeds and aliases, with KEV and EPSS), ``kev``, ``epss``, ``source_states``.
A scan reads through one connection, in parts it can keep in memory: ``store_token`` (what tells
that the kept parts are still the store's), ``affected_entries``, ``advisory_fields``,
``linked_ids`` and ``kev_and_epss``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any, NamedTuple, Union

from sqlalchemy import Connection, Engine, Text, cast, delete, insert, select, update
from sqlalchemy.orm import Session

from patchpipe.advisories.records import (
    Advisory,
    AffectedPackage,
    EpssScore,
    KevEntry,
    Severity,
    Status,
    VersionEvent,
)
from patchpipe.advisories.security_archive import SecurityIndex
from patchpipe.advisories.source import Record, RecordProblem
from patchpipe.advisories.tables import (
    AdvisoryRow,
    AffectedRow,
    AliasRow,
    EpssRow,
    FeedChangeRow,
    FeedStateRow,
    KevRow,
    SecurityArchiveFetch,
    SecurityArchivePackage,
)

log = logging.getLogger(__name__)

# Stays well under SQLite's limit on bound parameters per statement.
_NAMES_PER_QUERY = 500
# Advisories per INSERT batch: large enough to amortize round trips, small enough to stream.
_ADVISORIES_PER_BATCH = 2_000
_ENRICHMENT_PER_BATCH = 10_000
_SWAP_CACHE_KIB = 32 << 10  # SQLite's page cache while a feed is swapped (see _swap_cache)

SEVERITY_RANK = {
    Severity.CRITICAL: 5,
    Severity.HIGH: 4,
    Severity.MEDIUM: 3,
    Severity.LOW: 2,
    Severity.NEGLIGIBLE: 1,
    Severity.UNKNOWN: 0,
}


# --- feed data: writing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedOrigin:
    """Where one copy of a feed came from, and the validators that let the next fetch be a 304."""

    source: str  # the parser, e.g. "osv"
    url: str  # or the path it was imported from
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FeedChanges:
    """What replacing a feed's data changed, and what the new copy holds."""

    new_ids: tuple[str, ...]
    updated_ids: tuple[str, ...]
    removed_ids: tuple[str, ...]
    new_kev: tuple[str, ...]
    advisories: int
    affected: int
    kev: int
    epss: int
    skipped: int


def replace_feed(
    engine: Engine,
    feed: str,
    origin: FeedOrigin,
    records: Iterable[Record],
    *,
    at: datetime,
    on_problem: Callable[[RecordProblem], None] | None = None,
) -> FeedChanges:
    """Replace everything stored for ``feed`` with ``records``, all or nothing.

    RecordProblems are counted as skipped and handed to ``on_problem``. An exception from the
    records iterator (a FeedError for a truncated file) rolls everything back, state included.
    """
    return replace_feed_parts(engine, feed, origin, record_parts(records), at=at, on_problem=on_problem)


def replace_feed_parts(
    engine: Engine,
    feed: str,
    origin: FeedOrigin,
    parts: Iterable[RecordParts],
    *,
    at: datetime,
    on_problem: Callable[[RecordProblem], None] | None = None,
) -> FeedChanges:
    """``replace_feed`` for records that ``record_parts`` took apart, here or in another process."""
    with engine.begin() as connection, _swap_cache(connection):
        previous_digests: dict[str, str] = {
            advisory_id: digest
            for advisory_id, digest in connection.execute(
                select(AdvisoryRow.id, AdvisoryRow.digest).where(AdvisoryRow.feed == feed)
            )
        }
        previous_kev = set(connection.scalars(select(KevRow.cve).where(KevRow.feed == feed)))
        for table in (AffectedRow, AliasRow, AdvisoryRow, KevRow, EpssRow):
            connection.execute(delete(table).where(table.feed == feed))
        inserts = {table.__tablename__: _BulkInsert(connection, table, columns, as_is)
                   for table, columns, as_is in _ROW_TABLES}
        load = _FeedLoad(feed, on_problem)
        for table_name, rows in load.batches(parts):
            inserts[table_name].execute(rows)
        for advisory_id, repeats in load.repeats.items():
            _merge_repeats(connection, feed, advisory_id, repeats, load.digests[advisory_id])
        changes = load.changes(previous_digests, previous_kev)
        _upsert_state(
            connection,
            feed,
            source=origin.source,
            url=origin.url,
            last_attempt=at,
            last_success=at,
            last_changed=at,
            last_error=None,
            etag=origin.etag,
            last_modified=origin.last_modified,
            advisories=changes.advisories,
            affected=changes.affected,
            kev=changes.kev,
            epss=changes.epss,
            skipped=changes.skipped,
        )
        _record_change(connection, feed)
    return changes


def record_not_modified(engine: Engine, feed: str, origin: FeedOrigin, *, at: datetime) -> None:
    """The feed answered 304: the stored copy is current as of ``at``."""
    values: dict[str, Any] = {"source": origin.source, "url": origin.url, "last_attempt": at,
                              "last_success": at, "last_error": None}
    if origin.etag:
        values["etag"] = origin.etag
    if origin.last_modified:
        values["last_modified"] = origin.last_modified
    with engine.begin() as connection:
        _upsert_state(connection, feed, **values)


def record_failure(engine: Engine, feed: str, origin: FeedOrigin, error: str, *, at: datetime) -> None:
    """The feed could not be synced: keep its data, URL and validators; note the error and the attempt."""
    with engine.begin() as connection:
        _upsert_state(connection, feed, last_attempt=at, last_error=error,
                      when_new={"source": origin.source, "url": origin.url})


def _upsert_state(connection: Connection, feed: str, when_new: dict[str, Any] | None = None, **values: Any) -> None:
    exists = connection.execute(select(FeedStateRow.name).where(FeedStateRow.name == feed)).first()
    if exists:
        connection.execute(update(FeedStateRow).where(FeedStateRow.name == feed).values(**values))
    else:
        connection.execute(insert(FeedStateRow).values(name=feed, **(when_new or {}), **values))


def _record_change(connection: Connection, feed: str) -> None:
    """A new generation and a new random stamp for ``feed``, in the transaction that replaces its rows.

    Every write of feed rows goes through ``replace_feed_parts`` and so through here: this is what
    makes ``store_token`` change whenever any feed's rows change (see ``FeedChangeRow``).
    """
    stamp = secrets.token_hex(16)
    bumped = connection.execute(
        update(FeedChangeRow).where(FeedChangeRow.feed == feed)
        .values(generation=FeedChangeRow.generation + 1, stamp=stamp)
    ).rowcount
    if not bumped:
        connection.execute(insert(FeedChangeRow).values(feed=feed, generation=1, stamp=stamp))


@contextmanager
def _swap_cache(connection: Connection) -> Iterator[None]:
    """On SQLite, a larger page cache while a feed is swapped.

    Its indexes take keys in no particular order; with SQLite's default 2 MB cache most inserts
    reread index pages (from the WAL) that an earlier batch had to let go.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = int(connection.exec_driver_sql("PRAGMA cache_size").scalar())
    connection.exec_driver_sql(f"PRAGMA cache_size = -{_SWAP_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {previous}")


class _BulkInsert:
    """Many rows of one table through the driver's executemany, converted by the columns' own types.

    Core's ``execute(insert(table), list_of_dicts)`` spends more time handling each row's
    parameters than SQLite spends inserting it. This compiles the INSERT once and applies only the
    bind conversions the column types need (UTC datetimes, dates), so the stored values are exactly
    what Core would store, on SQLite and PostgreSQL alike. Columns in ``as_is`` get values the
    caller made driver-ready (JSON text, floats).
    """

    def __init__(self, connection: Connection, table: type, columns: Sequence[str], as_is: Sequence[str] = ()):
        dialect = connection.dialect
        compiled = insert(table.__table__).compile(dialect=dialect, column_keys=list(columns))  # type: ignore[attr-defined]
        if compiled.positional and list(compiled.positiontup or ()) != list(columns):
            raise RuntimeError(f"unexpected parameter order for {table.__tablename__}: {compiled.positiontup}")
        self.connection = connection
        self.sql = str(compiled)
        self.columns = tuple(columns)
        self.positional = compiled.positional
        column_types = table.__table__.c  # type: ignore[attr-defined]
        self.processors = [
            (index, processor)
            for index, name in enumerate(columns)
            if name not in as_is
            and (processor := column_types[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]

    def execute(self, rows: list[tuple[Any, ...]]) -> None:
        converted: list[Any] = rows
        if self.processors:
            converted = []
            for row in rows:
                values = list(row)
                for index, processor in self.processors:
                    if values[index] is not None:
                        values[index] = processor(values[index])
                converted.append(tuple(values))
        if not self.positional:
            converted = [dict(zip(self.columns, values)) for values in converted]
        self.connection.exec_driver_sql(self.sql, converted)


_ADVISORY_COLUMNS = ("feed", "id", "source", "aliases", "upstream", "summary", "severity", "cvss", "published", "modified", "digest")
_AFFECTED_COLUMNS = ("feed", "advisory_id", "ecosystem", "release", "package", "status", "fixed_version", "events",
                     "severity")
_ALIAS_COLUMNS = ("feed", "advisory_id", "alias")
_KEV_COLUMNS = ("feed", "cve", "date_added", "due_date", "vendor", "product", "known_ransomware")
_EPSS_COLUMNS = ("feed", "cve", "score", "percentile", "scored_on")
# (table, its columns in row order, columns whose values the rows hold driver-ready)
_ROW_TABLES = (
    (AdvisoryRow, _ADVISORY_COLUMNS, ("aliases", "upstream", "cvss")),
    (AffectedRow, _AFFECTED_COLUMNS, ("events",)),
    (AliasRow, _ALIAS_COLUMNS, ()),
    (KevRow, _KEV_COLUMNS, ()),
    (EpssRow, _EPSS_COLUMNS, ()),
)
_ADVISORIES, _AFFECTED, _ALIASES, _KEV, _EPSS = (table.__tablename__ for table, _, _ in _ROW_TABLES)

# One record taken apart into plain values, the rows' own (without the feed's name and the digest):
#   (_ADVISORIES, id, advisory fields, [affected fields, ...], aliases, linked ids)
#   (_KEV, cve, KEV fields)    (_EPSS, cve, EPSS fields)
# or the RecordProblem itself. Plain tuples pickle small and fast: a parsing process hands them on.
RecordParts = Union[tuple[Any, ...], RecordProblem]


def record_parts(records: Iterable[Record]) -> Iterator[RecordParts]:
    """Each of ``records`` as RecordParts, in order."""
    for record in records:
        if isinstance(record, Advisory):
            yield _advisory_parts(record)
        elif isinstance(record, RecordProblem):
            yield record
        elif isinstance(record, KevEntry):
            yield _KEV, record.cve, (record.date_added, record.due_date, record.vendor, record.product,
                                     record.known_ransomware)
        elif isinstance(record, EpssScore):
            yield _EPSS, record.cve, (record.score, record.percentile, record.scored_on)
        else:
            raise TypeError(f"not an advisory record: {record!r}")


def _advisory_parts(advisory: Advisory) -> tuple[Any, ...]:
    cvss = None if advisory.cvss_score is None else float(advisory.cvss_score)
    # An enum member's _value_ is its .value, without the cost of the property.
    fields = (advisory.source, _json_strings(advisory.aliases), _json_strings(advisory.upstream), advisory.summary,
              advisory.severity._value_, cvss, advisory.published, advisory.modified)
    affected = [
        (package.ecosystem, package.release, package.package, package.status._value_, package.fixed_version,
         _json_events(package.events), package.severity._value_)
        for package in advisory.affected
    ]
    linked = tuple(dict.fromkeys((*advisory.aliases, *advisory.upstream)))  # upstream ids link, too
    return _ADVISORIES, advisory.id, fields, affected, advisory.aliases, linked


class _FeedLoad:
    """Turns a stream of RecordParts into batches of one feed's rows, and remembers what tells the changes.

    A feed may state one advisory id in several records (the Debian tracker lists a CVE once per
    source package): the first record makes the advisory row, the later ones add their affected
    packages and aliases, and their fields and digests are merged into that row at the end.
    """

    def __init__(self, feed: str, on_problem: Callable[[RecordProblem], None] | None):
        self.feed = feed
        self.on_problem = on_problem
        self.digests: dict[str, str] = {}
        self.repeats: dict[str, list[tuple[tuple[str, ...], tuple[Any, ...]]]] = {}  # id: [(aliases, fields)]
        self.kev_seen: set[str] = set()
        self.epss_seen: set[str] = set()
        self.affected_count = 0
        self.skipped = 0
        self.rows: dict[str, list[tuple[Any, ...]]] = {table.__tablename__: [] for table, _, _ in _ROW_TABLES}

    def batches(self, parts: Iterable[RecordParts]) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """(table name, rows) to insert, in order."""
        rows = self.rows
        for part in parts:
            if isinstance(part, RecordProblem):
                self.skipped += 1
                if self.on_problem is not None:
                    self.on_problem(part)
                continue
            kind = part[0]
            if kind == _ADVISORIES:
                self._add_advisory(*part[1:])
                if len(rows[_ADVISORIES]) >= _ADVISORIES_PER_BATCH:
                    yield from self._take(_ADVISORIES, _AFFECTED, _ALIASES)
            elif kind == _KEV:
                self._add_enrichment(_KEV, self.kev_seen, "KEV lists", *part[1:])
                if len(rows[_KEV]) >= _ENRICHMENT_PER_BATCH:
                    yield from self._take(_KEV)
            else:
                self._add_enrichment(_EPSS, self.epss_seen, "EPSS scores", *part[1:])
                if len(rows[_EPSS]) >= _ENRICHMENT_PER_BATCH:
                    yield from self._take(_EPSS)
        yield from self._take(_ADVISORIES, _AFFECTED, _ALIASES, _KEV, _EPSS)

    def _take(self, *table_names: str) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        for name in table_names:
            if self.rows[name]:
                yield name, self.rows[name]
                self.rows[name] = []

    def _add_advisory(self, advisory_id: str, fields: tuple[Any, ...], affected: list[tuple[Any, ...]],
                      aliases: tuple[str, ...], linked: tuple[str, ...]) -> None:
        feed, digests = self.feed, self.digests
        digest = _digest((advisory_id, fields, affected))
        if advisory_id in digests:
            digests[advisory_id] = _digest((digests[advisory_id], digest))
            self.repeats.setdefault(advisory_id, []).append((aliases, fields))
        else:
            digests[advisory_id] = digest
            self.rows[_ADVISORIES].append((feed, advisory_id, *fields, digest))
        self.rows[_AFFECTED].extend([(feed, advisory_id, *row) for row in affected])
        self.affected_count += len(affected)
        self.rows[_ALIASES].extend([(feed, advisory_id, alias) for alias in linked])

    def _add_enrichment(self, table_name: str, seen: set[str], lists: str, cve: str, fields: tuple[Any, ...]) -> None:
        if cve in seen:
            log.debug("feed %s: %s %s twice; keeping the first", self.feed, lists, cve)
            return
        seen.add(cve)
        self.rows[table_name].append((self.feed, cve, *fields))

    def changes(self, previous_digests: dict[str, str], previous_kev: set[str]) -> FeedChanges:
        return FeedChanges(
            new_ids=tuple(sorted(i for i in self.digests if i not in previous_digests)),
            updated_ids=tuple(
                sorted(i for i, d in self.digests.items() if i in previous_digests and previous_digests[i] != d)
            ),
            removed_ids=tuple(sorted(i for i in previous_digests if i not in self.digests)),
            new_kev=tuple(sorted(self.kev_seen - previous_kev)),
            advisories=len(self.digests),
            affected=self.affected_count,
            kev=len(self.kev_seen),
            epss=len(self.epss_seen),
            skipped=self.skipped,
        )


def _merge_repeats(connection: Connection, feed: str, advisory_id: str,
                   repeats: list[tuple[tuple[str, ...], tuple[Any, ...]]], digest: str) -> None:
    key = (AdvisoryRow.feed == feed) & (AdvisoryRow.id == advisory_id)
    first = connection.execute(
        select(AdvisoryRow.aliases, AdvisoryRow.summary, AdvisoryRow.severity, AdvisoryRow.cvss).where(key)
    ).one()
    aliases = list(first.aliases)
    summary, severity, cvss = first.summary, Severity(first.severity), first.cvss
    for repeat_aliases, (_, _, _, repeat_summary, repeat_severity, repeat_cvss, _, _) in repeats:
        aliases.extend(alias for alias in repeat_aliases if alias not in aliases)
        summary = summary or repeat_summary
        severity = max(severity, Severity(repeat_severity), key=SEVERITY_RANK.__getitem__)
        if repeat_cvss is not None and (cvss is None or repeat_cvss > cvss):
            cvss = repeat_cvss
    connection.execute(
        update(AdvisoryRow)
        .where(key)
        .values(aliases=aliases, summary=summary, severity=severity.value, cvss=cvss, digest=digest)
    )


def _json_strings(values: Iterable[str]) -> str:
    # The same JSON the column type would write, without json.dumps' per-call overhead (the
    # events of every affected row are serialized: it adds up over a million rows).
    return "[" + ",".join(map(encode_basestring, values)) + "]"


def _json_events(events: Iterable[VersionEvent]) -> str:
    return "[" + ",".join([f"[{encode_basestring(e.kind)},{encode_basestring(e.version)}]" for e in events]) + "]"


def _digest(value: object) -> str:
    # repr of tuples of str, numbers, dates and tuples is stable across processes (unlike hash()).
    return hashlib.blake2b(repr(value).encode(), digest_size=16).hexdigest()


# --- feed data: reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedState:
    """One feed's freshness and what its stored copy holds."""

    name: str
    source: str
    url: str
    last_attempt: datetime | None
    last_success: datetime | None
    last_changed: datetime | None
    last_error: str | None
    etag: str | None
    last_modified: str | None
    advisories: int
    affected: int
    kev: int
    epss: int
    skipped: int

    @property
    def stale(self) -> bool:
        """The last attempt failed: the stored copy is the last good one, of age ``age(now)``."""
        return self.last_error is not None

    def age(self, now: datetime) -> timedelta | None:
        """How old the stored copy is (since it was last confirmed current); None if there is none."""
        return None if self.last_success is None else now - self.last_success


def source_states(engine: Engine) -> list[FeedState]:
    """Every feed that was ever synced or imported, by name."""
    with engine.connect() as connection:
        rows = connection.execute(select(FeedStateRow).order_by(FeedStateRow.name)).mappings()
        return [_feed_state(row) for row in rows]


def feed_state(engine: Engine, name: str) -> FeedState | None:
    with engine.connect() as connection:
        row = connection.execute(select(FeedStateRow).where(FeedStateRow.name == name)).mappings().first()
        return None if row is None else _feed_state(row)


def _feed_state(row: Any) -> FeedState:
    return FeedState(**{name: row[name] for name in FeedState.__dataclass_fields__})


@dataclass(frozen=True)
class AffectedMatch:
    """What one advisory says about one package of one release."""

    advisory_id: str
    feed: str
    source: str
    aliases: tuple[str, ...]
    ecosystem: str
    release: str
    package: str
    status: Status
    fixed_version: str | None
    events: tuple[VersionEvent, ...]
    severity: Severity  # the release's own rating when the feed gives one, else the advisory's
    cvss_score: float | None


def affected_packages(engine: Engine, ecosystem: str, release: str, packages: Iterable[str]) -> list[AffectedMatch]:
    """Everything every feed says about ``packages`` in ``ecosystem`` (``debian``, ``alpine``, any case)
    and ``release`` (``bookworm``, ``v3.20``), sorted by package and advisory id."""
    with engine.connect() as connection:
        entries = affected_entries(connection, ecosystem, release, packages)
        stated = advisory_fields(connection, {(entry.feed, entry.advisory_id) for entry in entries})
    return [affected_match(entry, stated[(entry.feed, entry.advisory_id)], ecosystem, release)
            for entry in entries
            if (entry.feed, entry.advisory_id) in stated]  # written in one transaction with its advisory: always


class AffectedEntry(NamedTuple):
    """One stored affected row: what one feed's advisory says about one package of one release.

    The advisory's own fields (``AdvisoryFields``) are read apart: a scan reads tens of thousands of
    entries and needs them for the few that report the installed version.
    """

    advisory_id: str
    feed: str
    package: str
    status: Status
    fixed_version: str | None
    events: tuple[VersionEvent, ...]
    severity: Severity  # the release's own rating; UNKNOWN when the feed gives none


class AdvisoryFields(NamedTuple):
    """An advisory's own fields that a scan reports."""

    source: str
    aliases: tuple[str, ...]
    severity: Severity
    cvss: float | None


def affected_match(entry: AffectedEntry, fields: AdvisoryFields, ecosystem: str, release: str) -> AffectedMatch:
    """``entry`` with its advisory's ``fields``: the release's severity when rated, else the advisory's."""
    return AffectedMatch(
        advisory_id=entry.advisory_id,
        feed=entry.feed,
        source=fields.source,
        aliases=fields.aliases,
        ecosystem=ecosystem.lower(),
        release=release,
        package=entry.package,
        status=entry.status,
        fixed_version=entry.fixed_version,
        events=entry.events,
        severity=entry.severity if entry.severity is not Severity.UNKNOWN else fields.severity,
        cvss_score=fields.cvss,
    )


def affected_entries(connection: Connection, ecosystem: str, release: str,
                     packages: Iterable[str]) -> list[AffectedEntry]:
    """Every entry about ``packages`` in ``ecosystem`` (any case) and ``release``, sorted by package,
    advisory id and feed."""
    names = sorted(set(packages))
    ecosystem = ecosystem.lower()
    events_of = _EventDecoder()
    entries = []
    for start in range(0, len(names), _NAMES_PER_QUERY):
        query = _AFFECTED_QUERY.where(
            AffectedRow.ecosystem == ecosystem,
            AffectedRow.release == release,
            AffectedRow.package.in_(names[start : start + _NAMES_PER_QUERY]),
        )
        for advisory_id, feed, package, status, fixed_version, events, severity in connection.execute(query).all():
            entries.append(AffectedEntry(advisory_id, feed, package, _STATUSES[status], fixed_version,
                                         events_of(events), _SEVERITIES[severity]))
    entries.sort(key=lambda e: (e.package, e.advisory_id, e.feed))
    return entries


# Columns, not ORM entities: building an entity per row cost ten times what the query costs. The
# events come as the stored JSON text (CAST, so that no driver decodes them): _EventDecoder decodes
# each distinct text once.
_AFFECTED_QUERY = select(
    AffectedRow.advisory_id, AffectedRow.feed, AffectedRow.package, AffectedRow.status, AffectedRow.fixed_version,
    cast(AffectedRow.events, Text), AffectedRow.severity,
)
_STATUSES = {status.value: status for status in Status}
_SEVERITIES = {severity.value: severity for severity in Severity}


def advisory_fields(connection: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], AdvisoryFields]:
    """The AdvisoryFields of each (feed, advisory id) of ``keys`` that is stored, read by primary key."""
    by_feed: dict[str, list[str]] = {}
    for feed, advisory_id in set(keys):
        by_feed.setdefault(feed, []).append(advisory_id)
    fields = {}
    for feed, ids in by_feed.items():
        ids.sort()
        for start in range(0, len(ids), _NAMES_PER_QUERY):
            query = select(AdvisoryRow.id, AdvisoryRow.source, AdvisoryRow.aliases, AdvisoryRow.severity,
                           AdvisoryRow.cvss).where(AdvisoryRow.feed == feed,
                                                   AdvisoryRow.id.in_(ids[start : start + _NAMES_PER_QUERY]))
            for advisory_id, source, aliases, severity, cvss in connection.execute(query):
                fields[(feed, advisory_id)] = AdvisoryFields(source, tuple(aliases), _SEVERITIES[severity], cvss)
    return fields


def linked_ids(connection: Connection, advisory_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """For each of ``advisory_ids`` that is not a CVE, the ids it is stored as linked to (aliases and
    OSV upstream ids, in any feed), sorted; ids linked to nothing are left out."""
    wanted = sorted({i for i in advisory_ids if not i.startswith("CVE-")})
    linked: dict[str, set[str]] = {}
    # By (feed, advisory id), the alias table's index: by id alone, every look-up scanned the table.
    # Every feed's rows are written with its state row, so the state rows name every feed.
    feeds = sorted(connection.scalars(select(FeedStateRow.name)))
    for start in range(0, len(wanted), _NAMES_PER_QUERY):
        rows = connection.execute(select(AliasRow.advisory_id, AliasRow.alias)
                                  .where(AliasRow.feed.in_(feeds),
                                         AliasRow.advisory_id.in_(wanted[start : start + _NAMES_PER_QUERY])))
        for advisory_id, alias in rows:
            linked.setdefault(advisory_id, set()).add(alias)
    return {advisory_id: tuple(sorted(ids)) for advisory_id, ids in linked.items()}


def kev_and_epss(connection: Connection, cves: Iterable[str]) -> tuple[set[str], dict[str, float]]:
    """The CVEs among ``cves`` in any KEV catalog, and the EPSS score of each scored one (the highest
    when several feeds score it)."""
    wanted = sorted(set(cves))
    listed: set[str] = set()
    scores: dict[str, float] = {}
    for start in range(0, len(wanted), _NAMES_PER_QUERY):
        chunk = wanted[start : start + _NAMES_PER_QUERY]
        listed.update(connection.scalars(select(KevRow.cve).where(KevRow.cve.in_(chunk))))
        for cve, score in connection.execute(select(EpssRow.cve, EpssRow.score).where(EpssRow.cve.in_(chunk))):
            scores[cve] = max(score, scores.get(cve, score))
    return listed, scores


def store_token(connection: Connection) -> tuple[tuple[Any, ...], ...]:
    """A value that changes whenever any feed's stored rows change: one small query of a few rows.

    It is each feed's ``FeedChangeRow`` (generation and random stamp, written in the transaction that
    replaces the feed's rows), together with its state row's last change time and counts, which
    also cover a copy written by a patchpipe older than the change rows. Equal tokens from one
    database mean equal feed data. Tokens of two databases say nothing about each other: whoever
    keeps data by token keeps it per engine.
    """
    return tuple(tuple(row) for row in connection.execute(_TOKEN_QUERY))


_TOKEN_QUERY = (
    select(FeedStateRow.name, FeedStateRow.last_changed, FeedStateRow.advisories, FeedStateRow.affected,
           FeedStateRow.kev, FeedStateRow.epss, FeedChangeRow.generation, FeedChangeRow.stamp)
    .outerjoin(FeedChangeRow, FeedChangeRow.feed == FeedStateRow.name)
    .order_by(FeedStateRow.name)
)


class _EventDecoder:
    """Stored events (JSON text) as VersionEvents; a text seen before in this read is not decoded
    again (one fixed version is often stated by several advisories)."""

    def __init__(self) -> None:
        self._decoded: dict[str, tuple[VersionEvent, ...]] = {}

    def __call__(self, text: str) -> tuple[VersionEvent, ...]:
        decoded = self._decoded.get(text)
        if decoded is None:
            decoded = self._decoded[text] = tuple(VersionEvent(kind, version) for kind, version in json.loads(text))
        return decoded


@dataclass(frozen=True)
class FeedAdvisory:
    feed: str
    advisory: Advisory


@dataclass(frozen=True)
class AdvisoryView:
    """Everything known about one vulnerability: each feed's advisory linked to it by id or alias
    (a CVE shows the DSA, DLA and ALPINE advisories that fix it), and its KEV and EPSS entries."""

    id: str
    advisories: tuple[FeedAdvisory, ...]
    aliases: tuple[str, ...]  # every other id it is known by
    kev: tuple[KevEntry, ...]
    epss: tuple[EpssScore, ...]

    @property
    def severity(self) -> Severity:
        ratings = [entry.advisory.severity for entry in self.advisories]
        ratings += [package.severity for entry in self.advisories for package in entry.advisory.affected]
        return max(ratings, key=SEVERITY_RANK.__getitem__, default=Severity.UNKNOWN)

    @property
    def cvss_score(self) -> float | None:
        return max((e.advisory.cvss_score for e in self.advisories if e.advisory.cvss_score is not None), default=None)

    @property
    def known_exploited(self) -> bool:
        return bool(self.kev)


def advisory(engine: Engine, advisory_id: str) -> AdvisoryView | None:
    """The merged view of ``advisory_id`` (any CVE, DSA, DLA, ALPINE or GHSA id); None if unknown."""
    wanted = advisory_id.strip()
    with Session(engine) as session:
        view = _advisory_view(session, wanted)
        if view is None and wanted.upper() != wanted:
            view = _advisory_view(session, wanted.upper())
    return view


def _advisory_view(session: Session, wanted: str) -> AdvisoryView | None:
    # One hop each way is enough: DSA -> its CVE -> every advisory naming that CVE.
    names = {wanted}
    names.update(session.scalars(select(AliasRow.alias).where(AliasRow.advisory_id == wanted)))
    linked = set(names)
    linked.update(session.scalars(select(AliasRow.advisory_id).where(AliasRow.alias.in_(names))))
    rows = session.execute(
        select(AdvisoryRow).where(AdvisoryRow.id.in_(sorted(linked))).order_by(AdvisoryRow.id, AdvisoryRow.feed)
    ).scalars().all()
    advisories = tuple(FeedAdvisory(row.feed, _advisory(session, row)) for row in rows)
    known = linked | {alias for entry in advisories for alias in entry.advisory.aliases}
    cves = sorted(name for name in known if name.startswith("CVE-"))
    kev_entries = tuple(_kev(row) for row in session.scalars(
        select(KevRow).where(KevRow.cve.in_(cves)).order_by(KevRow.cve, KevRow.feed)))
    epss_scores = tuple(_epss(row) for row in session.scalars(
        select(EpssRow).where(EpssRow.cve.in_(cves)).order_by(EpssRow.cve, EpssRow.feed)))
    if not advisories and not kev_entries and not epss_scores:
        return None
    return AdvisoryView(
        id=wanted,
        advisories=advisories,
        aliases=tuple(sorted(known - {wanted})),
        kev=_first_per_cve(kev_entries),
        epss=_first_per_cve(epss_scores),
    )


def kev(engine: Engine, cve: str) -> KevEntry | None:
    """``cve``'s entry in the Known Exploited Vulnerabilities catalog, if listed."""
    with Session(engine) as session:
        row = session.scalars(select(KevRow).where(KevRow.cve == cve).order_by(KevRow.feed)).first()
        return None if row is None else _kev(row)


def epss(engine: Engine, cve: str) -> EpssScore | None:
    """``cve``'s EPSS score, if scored."""
    with Session(engine) as session:
        row = session.scalars(select(EpssRow).where(EpssRow.cve == cve).order_by(EpssRow.feed)).first()
        return None if row is None else _epss(row)


def _advisory(session: Session, row: AdvisoryRow) -> Advisory:
    affected_rows = session.scalars(
        select(AffectedRow)
        .where(AffectedRow.feed == row.feed, AffectedRow.advisory_id == row.id)
        .order_by(AffectedRow.row)
    )
    return Advisory(
        id=row.id,
        source=row.source,
        aliases=tuple(row.aliases),
        upstream=tuple(row.upstream),
        summary=row.summary,
        severity=Severity(row.severity),
        cvss_score=row.cvss,
        published=row.published,
        modified=row.modified,
        affected=tuple(
            AffectedPackage(
                ecosystem=a.ecosystem,
                release=a.release,
                package=a.package,
                status=Status(a.status),
                fixed_version=a.fixed_version,
                events=_events(a.events),
                severity=Severity(a.severity),
            )
            for a in affected_rows
        ),
    )


def _events(stored: Sequence[Sequence[str]]) -> tuple[VersionEvent, ...]:
    return tuple(VersionEvent(kind, version) for kind, version in stored)


def _kev(row: KevRow) -> KevEntry:
    return KevEntry(
        cve=row.cve,
        date_added=row.date_added,
        due_date=row.due_date,
        vendor=row.vendor,
        product=row.product,
        known_ransomware=row.known_ransomware,
    )


def _epss(row: EpssRow) -> EpssScore:
    return EpssScore(cve=row.cve, score=row.score, percentile=row.percentile, scored_on=row.scored_on)


def _first_per_cve(entries: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: set[str] = set()
    return tuple(entry for entry in entries if not (entry.cve in seen or seen.add(entry.cve)))


# --- the security archive -------------------------------------------------------------------------


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

"""OSV advisories (https://ossf.github.io/osv-schema/): one JSON record, or a per-ecosystem ``all.zip``.

Input is sniffed: a zip archive is read member by member (``zip_stream``: memory stays flat however
many records it holds); anything else must be one JSON record or a JSON array of records. Both the
1.x schema and the older records without ``schema_version`` are read.

Per ``affected[]`` entry:
- ``package.ecosystem`` gives the ecosystem (lowercased) and release: ``Debian:12`` -> debian /
  bookworm (numeric releases mapped to codenames), ``Alpine:v3.20`` -> alpine / v3.20,
  ``Ubuntu:22.04:LTS`` -> ubuntu / 22.04, ``Ubuntu:Pro:18.04:LTS`` -> ubuntu / pro:18.04 (Pro-only
  fixes must never look available to a plain 18.04 image). Other ecosystems keep their suffix as is.
- events come from ECOSYSTEM and SEMVER ranges, in order; GIT ranges (commit hashes, nothing to
  compare a package version with) and ``limit`` events are left out. ``fixed_version`` is the last
  ``fixed`` event; status is FIXED when there is one, AFFECTED otherwise.
- an entry without ``package`` (a GIT-only entry) names nothing installable and is left out.
- ``ecosystem_specific.urgency`` (Debian's per-release rating) becomes the entry's severity.

Per record: ``aliases`` are the aliases; ``upstream`` (the CVEs a DSA, DLA or ALPINE record fixes)
goes to ``Advisory.upstream``, linked but not merged; ``related`` is left out. ``cvss_score`` is the base score of the first CVSS v3 vector in
``severity[]``. ``severity`` is the database's own word when it gives one (GHSA's
``database_specific.severity``, Ubuntu's ``severity[type=Ubuntu]``), otherwise the rating of the CVSS
score, otherwise unknown. Timestamps become aware UTC datetimes. Withdrawn records are not emitted:
OSV says they are no longer valid, and a sync that swaps the whole feed then drops them.

A record that fails validation becomes a RecordProblem (its id, or its zip member name when it has
none); a zip member that is not JSON becomes a RecordProblem named by the member. An unreadable
archive or a single file that is not JSON is a FeedError.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, BinaryIO

from patchpipe.advisories.cvss import base_score, severity_for_score
from patchpipe.advisories.debian_tracker import severity_from_urgency
from patchpipe.advisories.records import AffectedPackage, Advisory, Severity, Status, VersionEvent
from patchpipe.advisories.source import FeedError, Record, RecordProblem
from patchpipe.advisories.zip_stream import is_zip, iter_zip_members

try:  # an Airflow dependency, about twice as fast as json here; the core also runs without it
    from msgspec import MsgspecError
    from msgspec.json import decode as _fast_json
except ImportError:
    _fast_json = None

DEBIAN_CODENAMES = {
    "1.1": "buzz", "1.2": "rex", "1.3": "bo", "2.0": "hamm", "2.1": "slink", "2.2": "potato",
    "3.0": "woody", "3.1": "sarge", "4.0": "etch", "5.0": "lenny", "6.0": "squeeze", "7": "wheezy",
    "8": "jessie", "9": "stretch", "10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie",
    "14": "forky", "15": "duke",
}  # fmt: skip

_TEXT_SEVERITIES = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "important": Severity.HIGH,
    "moderate": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "negligible": Severity.NEGLIGIBLE,
}
_EVENT_KINDS = ("introduced", "fixed", "last_affected")
_IGNORED_RANGE_TYPES = {"GIT"}
_FRACTION = re.compile(r"\.(\d+)")
_SPOOL_IN_MEMORY = 8 << 20


class InvalidOsvRecord(ValueError):
    """An OSV record that does not have the shape the schema requires."""


class OsvSource:
    name = "osv"

    def parse(self, payload: BinaryIO, origin: str) -> Iterator[Record]:
        with _seekable(payload) as stream:
            head = stream.read(4)
            stream.seek(0)
            if is_zip(head):
                for member, data in iter_zip_members(stream, origin):
                    yield from _records_in_member(member, data)
            else:
                yield from _records_in_document(stream, origin)


def advisory_from_osv(record: Mapping[str, Any]) -> Advisory | None:
    """The Advisory for one decoded OSV record; None when it is withdrawn.

    Raises InvalidOsvRecord when a required field is missing or malformed.
    """
    if not isinstance(record, Mapping):
        raise InvalidOsvRecord(f"an OSV record is a JSON object, not {type(record).__name__}")
    record_id = record.get("id")
    if not isinstance(record_id, str) or not record_id.strip():
        raise InvalidOsvRecord("record has no id")
    if record.get("withdrawn"):
        return None
    cvss_score = _cvss_score(record.get("severity"))
    severity = _database_severity(record)
    if severity is Severity.UNKNOWN and cvss_score is not None:
        severity = severity_for_score(cvss_score)
    return Advisory(
        id=record_id.strip(),
        source=OsvSource.name,
        aliases=_ids(record.get("aliases"), record_id),
        upstream=_ids(record.get("upstream"), record_id, "upstream"),
        summary=_text(record, "summary") or _text(record, "details"),
        severity=severity,
        cvss_score=cvss_score,
        published=parse_timestamp(record.get("published"), "published"),
        modified=parse_timestamp(record.get("modified"), "modified"),
        affected=_affected_entries(record.get("affected")),
    )


@functools.lru_cache(maxsize=1024)
def split_ecosystem(ecosystem: str) -> tuple[str, str]:
    """(ecosystem, release) for an OSV ecosystem string, e.g. ``Debian:12`` -> (debian, bookworm)."""
    name, _, suffix = ecosystem.strip().partition(":")
    name = name.strip().lower()
    suffix = suffix.strip()
    if name == "debian":
        return name, DEBIAN_CODENAMES.get(suffix, suffix.lower())
    if name == "alpine":
        return name, suffix if not suffix or suffix.startswith("v") else f"v{suffix}"
    if name == "ubuntu":
        parts = [part.lower() for part in suffix.split(":") if part and part.upper() != "LTS"]
        return name, ":".join(parts)
    return name, suffix


def parse_timestamp(value: object, field: str) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime (UTC assumed when it has no offset); None if absent.

    OSV writes up to nine fractional digits (``...24.548042624Z``); Python keeps microseconds.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidOsvRecord(f"{field} is not a timestamp string: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = _parse_strict_iso(value, field)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed if parsed.tzinfo is timezone.utc else parsed.astimezone(timezone.utc)


def _parse_strict_iso(value: str, field: str) -> datetime:
    """What Python before 3.11 needs: no ``Z``, and three or six fractional digits."""
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda match: "." + (match.group(1) + "000000")[:6], text, count=1)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidOsvRecord(f"{field} is not an RFC 3339 timestamp: {value!r}") from None


def _loads(data: bytes) -> Any:
    """``json.loads(data)``, faster for the plain UTF-8 JSON that feeds hold.

    What the fast decoder refuses (a BOM, UTF-16, NaN, lone surrogates, malformed JSON) goes to
    ``json``, which decides and words the error: the result is always the one ``json`` gives.
    """
    if _fast_json is not None:
        try:
            return _fast_json(data)
        except (ValueError, RecursionError, MsgspecError):
            pass
    return json.loads(data)


def _records_in_member(member: str, data: bytes) -> Iterator[Record]:
    try:
        decoded = _loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        yield RecordProblem(member, f"zip member {member} is not valid JSON: {exc}")
        return
    yield from _records_in_json(decoded, fallback_id=member)


def _records_in_document(stream: BinaryIO, origin: str) -> Iterator[Record]:
    try:
        decoded = _loads(stream.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"{origin} is neither a zip archive nor valid JSON: {exc}") from None
    if not isinstance(decoded, (dict, list)):
        kind = type(decoded).__name__
        raise FeedError(f"{origin}: expected an OSV record (JSON object) or a list of them, got {kind}")
    yield from _records_in_json(decoded, fallback_id=None)


def _records_in_json(decoded: object, fallback_id: str | None) -> Iterator[Record]:
    for record in decoded if isinstance(decoded, list) else [decoded]:
        record_id = record.get("id") if isinstance(record, dict) else None
        problem_id = record_id if isinstance(record_id, str) and record_id else fallback_id
        try:
            advisory = advisory_from_osv(record)
        except InvalidOsvRecord as exc:
            yield RecordProblem(problem_id, str(exc))
            continue
        if advisory is not None:
            yield advisory


def _affected_entries(affected: object) -> tuple[AffectedPackage, ...]:
    if affected is None:
        return ()
    if not isinstance(affected, list):
        raise InvalidOsvRecord("affected is not a list")
    entries = []
    for index, entry in enumerate(affected):
        if not isinstance(entry, dict):
            raise InvalidOsvRecord(f"affected[{index}] is not an object")
        package = entry.get("package")
        if package is None:
            continue
        ecosystem, release, name = _package(package, index)
        events = _events(entry.get("ranges"), index)
        fixed = [event.version for event in events if event.kind == "fixed"]
        entries.append(
            AffectedPackage(
                ecosystem=ecosystem,
                release=release,
                package=name,
                status=Status.FIXED if fixed else Status.AFFECTED,
                fixed_version=fixed[-1] if fixed else None,
                events=events,
                severity=_urgency(entry.get("ecosystem_specific")),
            )
        )
    return tuple(entries)


def _package(package: object, index: int) -> tuple[str, str, str]:
    """(ecosystem, release, name) of ``affected[index].package``."""
    if not isinstance(package, dict):
        raise InvalidOsvRecord(f"affected[{index}].package is not an object")
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem, str) or not ecosystem.strip():
        raise InvalidOsvRecord(f"affected[{index}].package has no ecosystem")
    if not isinstance(name, str) or not name.strip():
        raise InvalidOsvRecord(f"affected[{index}].package has no name")
    return (*split_ecosystem(ecosystem), name.strip())


def _events(ranges: object, index: int) -> tuple[VersionEvent, ...]:
    if ranges is None:
        return ()
    if not isinstance(ranges, list):
        raise InvalidOsvRecord(f"affected[{index}].ranges is not a list")
    events: list[VersionEvent] = []
    for range_index, range_ in enumerate(ranges):
        if not isinstance(range_, dict):
            raise InvalidOsvRecord(f"affected[{index}].ranges[{range_index}] is not an object")
        if range_.get("type") in _IGNORED_RANGE_TYPES:
            continue
        raw_events = range_.get("events")
        if not isinstance(raw_events, list) or not raw_events:
            raise InvalidOsvRecord(f"affected[{index}].ranges[{range_index}] has no events")
        for event in raw_events:
            try:
                ((kind, version),) = event.items()
            except (AttributeError, ValueError):
                raise InvalidOsvRecord(
                    f"affected[{index}].ranges[{range_index}]: an event must have exactly one key, got {event!r}"
                ) from None
            if kind in _EVENT_KINDS and isinstance(version, str) and version:
                events.append(_version_event(kind, version))
            elif kind != "limit":
                raise InvalidOsvRecord(f"affected[{index}].ranges[{range_index}]: unknown or empty event {event!r}")
    return tuple(events)


# Records repeat the same few events ("introduced": "0" in nearly all): sharing them saves time and memory.
_version_event = functools.lru_cache(maxsize=4096)(VersionEvent)


def _ids(ids: object, record_id: str, field: str = "aliases") -> tuple[str, ...]:
    if ids is None:
        return ()
    if not isinstance(ids, list) or not all(isinstance(other, str) for other in ids):
        raise InvalidOsvRecord(f"{field} is not a list of strings")
    return tuple(dict.fromkeys(other for other in ids if other and other != record_id))


def _cvss_score(severities: object) -> float | None:
    for entry in severities if isinstance(severities, list) else ():
        if isinstance(entry, dict) and entry.get("type") == "CVSS_V3" and isinstance(entry.get("score"), str):
            score = base_score(entry["score"])
            if score is not None:
                return score
    return None


def _database_severity(record: Mapping[str, Any]) -> Severity:
    database_specific = record.get("database_specific")
    if isinstance(database_specific, dict):
        rating = _text_severity(database_specific.get("severity"))
        if rating is not Severity.UNKNOWN:
            return rating
    severities = record.get("severity")
    for entry in severities if isinstance(severities, list) else ():
        if isinstance(entry, dict) and entry.get("type") == "Ubuntu":
            rating = _text_severity(entry.get("score"))
            if rating is not Severity.UNKNOWN:
                return rating
    return Severity.UNKNOWN


def _text_severity(value: object) -> Severity:
    if not isinstance(value, str):
        return Severity.UNKNOWN
    return _TEXT_SEVERITIES.get(value.strip().lower(), Severity.UNKNOWN)


def _urgency(ecosystem_specific: object) -> Severity:
    if isinstance(ecosystem_specific, dict) and isinstance(ecosystem_specific.get("urgency"), str):
        return severity_from_urgency(ecosystem_specific["urgency"])
    return Severity.UNKNOWN


def _text(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    return value.strip() if isinstance(value, str) else ""


@contextlib.contextmanager
def _seekable(payload: BinaryIO) -> Iterator[BinaryIO]:
    """``payload`` itself when it can seek (a zip needs to), else a temporary copy of it."""
    if payload.seekable():
        yield payload
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as copy:
        shutil.copyfileobj(payload, copy)
        copy.seek(0)
        yield copy

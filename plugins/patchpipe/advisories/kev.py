"""CISA's Known Exploited Vulnerabilities catalog (the JSON feed): one KevEntry per CVE.

The catalog is small (about 1.3 MB) and checked as a whole before any entry is used: it must have a
``vulnerabilities`` list, and as many entries as its ``count`` says when it gives one; a catalog
cut short would otherwise silently drop exploited CVEs. An entry without a valid ``cveID`` or
``dateAdded`` is a RecordProblem; a missing or empty ``dueDate`` is kept as None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO

from patchpipe.advisories.records import KevEntry
from patchpipe.advisories.source import FeedError, Record, RecordProblem, load_json

_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def kev_entry(entry: dict[str, Any]) -> KevEntry:
    """The KevEntry of one catalog entry; ValueError naming the bad field."""
    cve = entry.get("cveID")
    if not isinstance(cve, str) or not _CVE.fullmatch(cve.strip()):
        raise ValueError(f"cveID is not a CVE id: {cve!r}")
    date_added = _date(entry.get("dateAdded"), "dateAdded")
    if date_added is None:
        raise ValueError("dateAdded is missing")
    return KevEntry(
        cve=cve.strip(),
        date_added=date_added,
        due_date=_date(entry.get("dueDate"), "dueDate"),
        vendor=_text(entry.get("vendorProject")),
        product=_text(entry.get("product")),
        known_ransomware=entry.get("knownRansomwareCampaignUse") == "Known",
    )


class KevSource:
    name = "kev"

    def parse(self, payload: BinaryIO, origin: str) -> Iterator[Record]:
        vulnerabilities = _vulnerabilities(payload, origin)
        for index, entry in enumerate(vulnerabilities):
            if not isinstance(entry, dict):
                yield RecordProblem(None, f"{origin}: vulnerabilities[{index}] is not an object")
                continue
            try:
                yield kev_entry(entry)
            except ValueError as exc:
                cve = entry.get("cveID")
                yield RecordProblem(cve if isinstance(cve, str) else None, f"{origin}: vulnerabilities[{index}]: {exc}")


def _vulnerabilities(payload: BinaryIO, origin: str) -> list[Any]:
    catalog = load_json(payload, origin)
    vulnerabilities = catalog.get("vulnerabilities") if isinstance(catalog, dict) else None
    if not isinstance(vulnerabilities, list):
        raise FeedError(f"{origin}: not a KEV catalog (no vulnerabilities list)")
    count = catalog.get("count")
    if count is not None and count != len(vulnerabilities):
        raise FeedError(f"{origin}: the catalog says count {count!r} but lists {len(vulnerabilities)} vulnerabilities")
    return vulnerabilities


def _date(value: object, field: str) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field} is not a date: {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{field} is not a YYYY-MM-DD date: {value!r}") from None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""

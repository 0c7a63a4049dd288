"""The CISA KEV source over the complete real catalog (2025.08.25) and hand-written bad entries."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import pytest

from patchpipe.advisories.kev import KevSource
from patchpipe.advisories.records import KevEntry
from patchpipe.advisories.source import FeedError, RecordProblem
from patchpipe.advisories.sources import DEFAULT_URLS, get_source

REAL_CATALOG = Path("/work/shared/data/advisories/cisa-kev/known_exploited_vulnerabilities.json")
HAND_WRITTEN = Path(__file__).resolve().parents[1] / "fixtures" / "advisories" / "kev" / "bad-entries.json"


def parse_bytes(data: bytes, origin: str = "kev.json") -> list:
    return list(KevSource().parse(io.BytesIO(data), origin))


@pytest.fixture(scope="module")
def real() -> dict[str, KevEntry]:
    with REAL_CATALOG.open("rb") as payload:
        records = list(KevSource().parse(payload, str(REAL_CATALOG)))
    assert all(isinstance(r, KevEntry) for r in records)
    entries = {r.cve: r for r in records}
    assert len(entries) == len(records)
    return entries


def test_every_catalog_entry_becomes_one_kev_entry(real: dict[str, KevEntry]):
    raw = json.loads(REAL_CATALOG.read_bytes())

    assert len(real) == raw["count"] == len(raw["vulnerabilities"]) == 1404
    known_ransomware = {v["cveID"] for v in raw["vulnerabilities"] if v["knownRansomwareCampaignUse"] == "Known"}
    assert {cve for cve, entry in real.items() if entry.known_ransomware} == known_ransomware


def test_known_entries_keep_their_dates_vendor_and_product(real: dict[str, KevEntry]):
    assert real["CVE-2025-48384"] == KevEntry(
        cve="CVE-2025-48384",
        date_added=date(2025, 8, 25),
        due_date=date(2025, 9, 15),
        vendor="Git",
        product="Git",
        known_ransomware=False,
    )
    assert real["CVE-2020-29583"].due_date == date(2022, 5, 3)
    assert real["CVE-2020-29583"].date_added == date(2021, 11, 3)


def test_an_entry_with_a_bad_date_is_a_problem_naming_its_cve():
    with HAND_WRITTEN.open("rb") as payload:
        records = list(KevSource().parse(payload, "bad-entries.json"))

    first, problem, third = records
    assert first == KevEntry("CVE-2099-3001", date(2099, 1, 1), date(2099, 1, 22), "Hand", "Written", True)
    assert isinstance(problem, RecordProblem)
    assert problem.record_id == "CVE-2099-3002"
    assert "dateAdded is not a YYYY-MM-DD date: 'yesterday'" in problem.message
    assert third.due_date is None


def test_a_catalog_shorter_than_its_count_is_a_feed_error():
    catalog = json.loads(REAL_CATALOG.read_bytes())
    del catalog["vulnerabilities"][-1]

    with pytest.raises(FeedError, match="count 1404 but lists 1403"):
        parse_bytes(json.dumps(catalog).encode(), "https://cisa.example/kev.json")


def test_a_catalog_without_count_is_accepted():
    catalog = json.loads(REAL_CATALOG.read_bytes())
    del catalog["count"]

    assert len(parse_bytes(json.dumps(catalog).encode())) == 1404


def test_a_document_without_a_vulnerabilities_list_is_a_feed_error():
    with pytest.raises(FeedError, match="no vulnerabilities list"):
        parse_bytes(b'{"title": "CISA Catalog", "count": 0}')


def test_invalid_json_is_a_feed_error_naming_the_origin():
    with pytest.raises(FeedError, match="^https://cisa.example/kev.json is not valid JSON"):
        parse_bytes(REAL_CATALOG.read_bytes()[:50_000], "https://cisa.example/kev.json")


def test_registered_with_the_cisa_url():
    assert isinstance(get_source("kev"), KevSource)
    assert DEFAULT_URLS["kev"] == (
        "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
    )

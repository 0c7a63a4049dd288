"""The OSV source over the real OSV records, zip archives built from them, and hand-written odd cases."""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import tracemalloc
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from patchpipe.advisories.cvss import base_score, round_up, severity_for_score
from patchpipe.advisories.osv import OsvSource, parse_timestamp, split_ecosystem
from patchpipe.advisories.records import Advisory, Severity, Status, VersionEvent
from patchpipe.advisories.source import FeedError, RecordProblem
from patchpipe.advisories.sources import DEFAULT_URLS, SOURCES, get_source, osv_urls
from patchpipe.advisories.zip_stream import iter_zip_members
from patchpipe.errors import PatchpipeError

REAL = Path("/work/shared/data/advisories")
REAL_OSV_FILES = sorted((REAL / "osv-debian").glob("*.json")) + sorted((REAL / "osv-alpine").glob("*.json"))
HAND_WRITTEN = Path(__file__).resolve().parents[1] / "fixtures" / "advisories" / "osv"
UTC = timezone.utc


def parse_bytes(data: bytes, origin: str = "test") -> list:
    return list(OsvSource().parse(io.BytesIO(data), origin))


def parse_file(path: Path) -> list:
    with path.open("rb") as payload:
        return list(OsvSource().parse(payload, str(path)))


def only_advisory(records: list) -> Advisory:
    assert len(records) == 1 and isinstance(records[0], Advisory), records
    return records[0]


def last_fixed(raw_affected: dict) -> str | None:
    fixed = [
        event["fixed"]
        for range_ in raw_affected.get("ranges", [])
        if range_["type"] != "GIT"
        for event in range_["events"]
        if "fixed" in event
    ]
    return fixed[-1] if fixed else None


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def real_members() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in REAL_OSV_FILES}


# --- the real records ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_OSV_FILES, ids=lambda path: path.stem)
def test_each_real_record_keeps_its_id_aliases_and_every_affected_entry(path: Path):
    raw = json.loads(path.read_bytes())
    advisory = only_advisory(parse_file(path))

    assert advisory.id == raw["id"]
    assert advisory.source == "osv"
    assert advisory.aliases == tuple(raw.get("aliases", ()))
    assert len(advisory.affected) == len(raw["affected"])
    for entry, raw_entry in zip(advisory.affected, raw["affected"]):
        assert entry.package == raw_entry["package"]["name"]
        assert entry.fixed_version == last_fixed(raw_entry)
        assert entry.status is (Status.FIXED if last_fixed(raw_entry) else Status.AFFECTED)
        assert len(entry.events) == sum(len(r["events"]) for r in raw_entry["ranges"])
    assert advisory.published is not None and advisory.published.tzinfo is not None
    assert advisory.modified is not None and advisory.modified.tzinfo is not None


def test_the_openssl_dla_is_fixed_in_stretch_at_its_version():
    advisory = only_advisory(parse_file(REAL / "osv-debian" / "DLA-3008-1.json"))

    (openssl,) = advisory.affected
    assert (openssl.ecosystem, openssl.release, openssl.package) == ("debian", "stretch", "openssl")
    assert openssl.status is Status.FIXED
    assert openssl.fixed_version == "1.1.0l-1~deb9u6"
    assert openssl.events == (VersionEvent("introduced", "0"), VersionEvent("fixed", "1.1.0l-1~deb9u6"))
    assert advisory.summary == "openssl - security update"
    assert advisory.published == datetime(2022, 5, 14, tzinfo=UTC)
    assert advisory.modified == datetime(2026, 3, 9, 1, 23, 33, 375630, tzinfo=UTC)


def test_upstream_cves_are_linked_but_not_aliases():
    advisory = only_advisory(parse_file(REAL / "osv-debian" / "DLA-3008-1.json"))

    upstream = json.loads((REAL / "osv-debian" / "DLA-3008-1.json").read_bytes())["upstream"]
    assert "CVE-2022-1292" in upstream
    assert advisory.aliases == ()
    assert advisory.upstream == tuple(upstream)


def test_the_old_style_record_without_schema_version_is_read():
    advisory = only_advisory(parse_file(REAL / "osv-debian" / "DSA-3029-1.json"))

    assert advisory.aliases == ("CVE-2014-3616",)
    assert [(a.release, a.package, a.fixed_version) for a in advisory.affected] == [
        ("wheezy", "nginx", "1.2.1-2.2+wheezy3")
    ]
    assert advisory.modified == datetime(2014, 9, 20, 8, 18, 7, tzinfo=UTC)


def test_old_debian_releases_map_to_their_codenames():
    releases = {only_advisory(parse_file(path)).affected[0].release for path in REAL_OSV_FILES[:-1]}

    assert releases == {"etch", "lenny", "wheezy", "stretch"}


def test_the_alpine_record_has_one_entry_per_release_and_a_cvss_score():
    advisory = only_advisory(parse_file(REAL / "osv-alpine" / "ALPINE-CVE-2025-26519.json"))

    assert [a.release for a in advisory.affected] == [f"v3.{minor}" for minor in range(16, 25)]
    assert {(a.ecosystem, a.package, a.status) for a in advisory.affected} == {("alpine", "musl", Status.FIXED)}
    v3_20 = next(a for a in advisory.affected if a.release == "v3.20")
    assert v3_20.fixed_version == "1.2.5-r1"
    assert v3_20.events == (VersionEvent("introduced", "0.9.13"), VersionEvent("fixed", "1.2.5-r1"))
    # CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:H, 7.0 on NVD
    assert advisory.cvss_score == 7.0
    assert advisory.severity is Severity.HIGH
    assert advisory.summary.startswith("musl libc 0.9.13 through 1.2.5")
    assert advisory.published == datetime(2025, 2, 14, 4, 15, 9, 50000, tzinfo=UTC)
    # nine fractional digits, cut to microseconds
    assert advisory.modified == datetime(2026, 7, 8, 4, 32, 24, 548042, tzinfo=UTC)


# --- zip archives --------------------------------------------------------------------------------


def test_a_zip_of_the_real_records_gives_what_the_files_give_plus_a_problem_for_the_invalid_member():
    members = real_members()
    members["BROKEN-1.json"] = b'{"id": "BROKEN-1", "affected": ['
    records = parse_bytes(zip_of(members), "all.zip")

    advisories = [r for r in records if isinstance(r, Advisory)]
    problems = [r for r in records if isinstance(r, RecordProblem)]
    assert advisories == [only_advisory(parse_file(path)) for path in REAL_OSV_FILES]
    assert len(problems) == 1
    assert problems[0].record_id == "BROKEN-1.json"
    assert "not valid JSON" in problems[0].message


def test_stored_members_and_directories_in_a_zip():
    members = real_members()
    members["nested/"] = b""
    records = parse_bytes(zip_of(members, zipfile.ZIP_STORED))

    assert len(records) == len(REAL_OSV_FILES)
    assert all(isinstance(r, Advisory) for r in records)


@pytest.fixture(scope="module")
def zip64_archive() -> bytes:
    """65,539 one-line records: more than a plain zip's 16-bit member count can hold."""
    members = {f"R-{index}.json": b'{"id": "R-%d", "affected": []}' % index for index in range(65_536 + 3)}
    return zip_of(members, zipfile.ZIP_STORED)


def test_a_zip64_archive_with_more_members_than_a_plain_zip_can_count(zip64_archive: bytes):
    assert b"PK\x06\x06" in zip64_archive[-200:]  # the zip64 end record is there

    records = parse_bytes(zip64_archive)

    assert len(records) == 65_539
    assert records[-1] == Advisory(id="R-65538", source="osv")


def test_reading_a_large_archive_takes_memory_for_its_directory_not_per_member(zip64_archive: bytes):
    payload = io.BytesIO(zip64_archive)
    tracemalloc.start()
    try:
        count = sum(1 for _ in OsvSource().parse(payload, "all.zip"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 65_539
    # The raw central directory is about 4 MB here; zipfile.ZipFile would hold some 45 MB of ZipInfo.
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB"


def test_sizes_and_offset_given_in_the_zip64_extra_field():
    record = (REAL / "osv-debian" / "DLA-3022-1.json").read_bytes()
    data = zip_with_zip64_extra_field("DLA-3022-1.json", record)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:  # the standard library agrees it is valid
        assert archive.read("DLA-3022-1.json") == record

    assert list(iter_zip_members(io.BytesIO(data), "zip64")) == [("DLA-3022-1.json", record)]


def zip_with_zip64_extra_field(name: str, data: bytes) -> bytes:
    """A one-member stored zip whose directory entry gives sizes and offset only in the zip64 extra."""
    encoded, crc = name.encode(), zlib.crc32(data)
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, 0, 0, 0, crc, len(data), len(data), len(encoded), 0)
    extra = struct.pack("<2H3Q", 0x0001, 24, len(data), len(data), 0)
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(encoded), len(extra),
        0, 0, 0, 0, 0xFFFFFFFF,
    ) + encoded + extra
    body = local + encoded + data
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(body), 0)
    return body + central + end


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_a_truncated_zip_is_a_feed_error_naming_the_origin(keep: float):
    data = zip_of(real_members())

    with pytest.raises(FeedError, match="https://mirror.example/Debian/all.zip"):
        parse_bytes(data[: int(len(data) * keep)], "https://mirror.example/Debian/all.zip")


def test_a_corrupt_member_is_a_feed_error():
    data = bytearray(zip_of(real_members(), zipfile.ZIP_STORED))
    offset = data.index(b"1.1.0l-1~deb9u6")
    data[offset : offset + 4] = b"9.9."  # same size, so only the CRC can tell

    with pytest.raises(FeedError, match=r"all.zip: member DLA-3008-1.json is corrupt"):
        parse_bytes(bytes(data), "all.zip")


def test_a_deflate_stream_that_does_not_inflate_is_a_feed_error():
    data = bytearray(zip_of({"A-1.json": b'{"id": "A-1"}' * 50}))
    data[40:48] = b"\xff" * 8  # inside the first member's compressed data

    with pytest.raises(FeedError, match="member A-1.json"):
        parse_bytes(bytes(data), "all.zip")


def test_a_non_seekable_stream_is_spooled_before_reading_the_zip(tmp_path: Path):
    archive = tmp_path / "all.zip"
    archive.write_bytes(zip_of(real_members()))
    with subprocess.Popen(["cat", str(archive)], stdout=subprocess.PIPE) as cat:
        assert not cat.stdout.seekable()
        records = list(OsvSource().parse(cat.stdout, "pipe"))

    assert [r.id for r in records] == [path.stem for path in REAL_OSV_FILES]


# --- whole files and invalid records -------------------------------------------------------------


def test_a_file_that_is_not_json_is_a_feed_error():
    with pytest.raises(FeedError, match=r"^feed.json is neither a zip archive nor valid JSON"):
        parse_bytes(b'{"id": "DLA-1", "affected": [', "feed.json")


def test_a_json_file_that_is_not_a_record_is_a_feed_error():
    with pytest.raises(FeedError, match="expected an OSV record"):
        parse_bytes(b'"DLA-1"', "feed.json")


@pytest.mark.parametrize(
    ("fixture", "record_id", "message"),
    [
        ("missing-package-name.json", "HAND-OSV-0002", r"affected\[0\].package has no name"),
        ("bad-event.json", "HAND-OSV-0003", "exactly one key"),
        ("bad-timestamp.json", "HAND-OSV-0004", "modified is not an RFC 3339 timestamp"),
        ("no-id.json", None, "record has no id"),
    ],
)
def test_an_invalid_record_is_a_problem_naming_its_id(fixture: str, record_id: str | None, message: str):
    (problem,) = parse_file(HAND_WRITTEN / fixture)

    assert isinstance(problem, RecordProblem)
    assert problem.record_id == record_id
    assert re.search(message, problem.message), problem.message


def test_a_zip_member_without_an_id_is_named_by_the_member():
    members = real_members()
    members["nameless.json"] = (HAND_WRITTEN / "no-id.json").read_bytes()
    records = parse_bytes(zip_of(members))

    problems = [r for r in records if isinstance(r, RecordProblem)]
    assert problems == [RecordProblem("nameless.json", "record has no id")]
    assert len(records) == len(REAL_OSV_FILES) + 1


# --- the hand-written odd but valid records ------------------------------------------------------


@pytest.fixture(scope="module")
def odd() -> dict[str, Advisory]:
    records = parse_file(HAND_WRITTEN / "odd-records.json")
    assert all(isinstance(r, Advisory) for r in records), records
    return {r.id: r for r in records}


def test_a_withdrawn_record_is_not_emitted(odd: dict[str, Advisory]):
    assert "HAND-OSV-WITHDRAWN" not in odd
    assert len(odd) == len(json.loads((HAND_WRITTEN / "odd-records.json").read_bytes())) - 1


def test_git_ranges_and_limit_events_are_left_out_and_ranges_kept_in_order(odd: dict[str, Advisory]):
    jammy, pro, *rest = odd["HAND-UBUNTU-0001"].affected

    assert rest == []  # the entry without a package names nothing installable
    assert (jammy.ecosystem, jammy.release, jammy.package) == ("ubuntu", "22.04", "openssl")
    assert [(e.kind, e.version) for e in jammy.events] == [
        ("introduced", "0"), ("fixed", "3.0.2-0ubuntu1.1"), ("introduced", "3.0.5-1"), ("fixed", "3.0.5-2ubuntu1"),
    ]
    assert jammy.fixed_version == "3.0.5-2ubuntu1"
    assert (pro.release, pro.status, pro.fixed_version) == ("pro:18.04", Status.AFFECTED, None)
    assert pro.events[-1] == VersionEvent("last_affected", "1.1.1-1ubuntu2.1~18.04.23")


def test_aliases_exclude_related_upstream_duplicates_and_the_id_itself(odd: dict[str, Advisory]):
    assert odd["HAND-UBUNTU-0001"].aliases == ("CVE-2099-0001",)


def test_the_databases_own_severity_wins_over_the_cvss_rating(odd: dict[str, Advisory]):
    ubuntu, ghsa = odd["HAND-UBUNTU-0001"], odd["HAND-GHSA-0001"]

    assert (ubuntu.cvss_score, ubuntu.severity) == (9.8, Severity.MEDIUM)
    assert (ghsa.cvss_score, ghsa.severity) == (7.5, Severity.MEDIUM)
    assert ghsa.affected[0].events == (VersionEvent("introduced", "2.0.0"), VersionEvent("fixed", "2.32.0"))
    assert (ghsa.affected[0].ecosystem, ghsa.affected[0].release) == ("pypi", "")


def test_cvss_v4_is_not_scored_and_versions_only_entries_are_affected(odd: dict[str, Advisory]):
    advisory = odd["HAND-CVSS4-0001"]

    assert (advisory.cvss_score, advisory.severity) == (None, Severity.UNKNOWN)
    (busybox,) = advisory.affected
    assert (busybox.release, busybox.status, busybox.events) == ("v3.21", Status.AFFECTED, ())


def test_debian_urgency_becomes_the_entry_severity(odd: dict[str, Advisory]):
    (zlib_entry,) = odd["HAND-DEBIAN-CVE-0001"].affected

    assert (zlib_entry.release, zlib_entry.status, zlib_entry.severity) == ("trixie", Status.AFFECTED, Severity.LOW)
    assert odd["HAND-DEBIAN-CVE-0001"].modified == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def test_summary_falls_back_to_details_and_timestamps_end_up_in_utc(odd: dict[str, Advisory]):
    advisory = odd["HAND-UBUNTU-0001"]

    assert advisory.summary == "Only details, no summary."
    assert advisory.published == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # no offset: UTC assumed
    assert advisory.modified == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # +02:00 converted


# --- building blocks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ecosystem", "expected"),
    [
        ("Debian:12", ("debian", "bookworm")),
        ("Debian:11", ("debian", "bullseye")),
        ("Debian:10", ("debian", "buster")),
        ("Debian:13", ("debian", "trixie")),
        ("Debian:4.0", ("debian", "etch")),
        ("Debian", ("debian", "")),
        ("Alpine:v3.20", ("alpine", "v3.20")),
        ("Alpine:3.19", ("alpine", "v3.19")),
        ("Ubuntu:22.04:LTS", ("ubuntu", "22.04")),
        ("Ubuntu:24.10", ("ubuntu", "24.10")),
        ("Ubuntu:Pro:18.04:LTS", ("ubuntu", "pro:18.04")),
        ("PyPI", ("pypi", "")),
    ],
)
def test_split_ecosystem(ecosystem: str, expected: tuple[str, str]):
    assert split_ecosystem(ecosystem) == expected


def test_parse_timestamp():
    assert parse_timestamp("2026-07-08T04:32:24.548042624Z", "modified") == datetime(
        2026, 7, 8, 4, 32, 24, 548042, tzinfo=UTC
    )
    assert parse_timestamp("2025-02-14T04:15:09.05Z", "published") == datetime(2025, 2, 14, 4, 15, 9, 50000, tzinfo=UTC)
    assert parse_timestamp(None, "published") is None
    # padded with spaces: only the normalizing path (the one Python 3.10 always takes) reads it
    assert parse_timestamp(" 2026-01-02T03:04:05.1234567Z ", "modified") == datetime(
        2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("vector", "score"),
    [  # scores as published by NVD / the FIRST calculator
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.0),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", 9.8),  # temporal metrics ignored
    ],
)
def test_cvss_v3_base_score(vector: str, score: float):
    assert base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # no version prefix
        "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # A missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # unknown value
        "CVSS:3.1/AV:N/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # a metric twice
    ],
)
def test_cvss_vectors_that_are_not_complete_v3_vectors_have_no_score(vector: str):
    assert base_score(vector) is None


def test_cvss_round_up_ignores_floating_point_noise():
    assert round_up(4.000000000000001) == 4.0
    assert round_up(4.02) == 4.1
    assert round_up(4.0) == 4.0


@pytest.mark.parametrize(
    ("score", "severity"),
    [(10.0, Severity.CRITICAL), (9.0, Severity.CRITICAL), (8.9, Severity.HIGH), (7.0, Severity.HIGH),
     (6.9, Severity.MEDIUM), (4.0, Severity.MEDIUM), (3.9, Severity.LOW), (0.1, Severity.LOW),
     (0.0, Severity.NEGLIGIBLE)],
)  # fmt: skip
def test_cvss_severity_ratings(score: float, severity: Severity):
    assert severity_for_score(score) is severity


# --- the registry --------------------------------------------------------------------------------


def test_the_registry_knows_every_source_and_names_them_when_asked_for_another():
    assert isinstance(SOURCES["osv"], OsvSource)
    assert get_source("osv") is SOURCES["osv"]
    assert get_source("debian-tracker") is SOURCES["debian_tracker"]
    assert sorted(DEFAULT_URLS) == sorted(SOURCES)
    with pytest.raises(PatchpipeError, match="alpine_secdb, debian_tracker, epss, kev, osv"):
        get_source("nvd")


def test_osv_default_urls_are_the_bulk_archives_and_take_a_mirror():
    assert DEFAULT_URLS["osv"] == (
        "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip",
        "https://osv-vulnerabilities.storage.googleapis.com/Alpine/all.zip",
        "https://osv-vulnerabilities.storage.googleapis.com/Ubuntu/all.zip",
    )
    assert osv_urls(["Debian"], base="http://mirror.local/osv/") == ("http://mirror.local/osv/Debian/all.zip",)

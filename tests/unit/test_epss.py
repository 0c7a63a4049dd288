"""The EPSS source over the real 536-row sample, plain and gzip, and hand-written bad rows."""

from __future__ import annotations

import gzip
import io
from datetime import date
from pathlib import Path

import pytest

from patchpipe.advisories.epss import EpssSource
from patchpipe.advisories.records import EpssScore
from patchpipe.advisories.source import FeedError, RecordProblem
from patchpipe.advisories.sources import DEFAULT_URLS, get_source

REAL_SAMPLE = Path("/work/shared/data/advisories/epss/epss_scores-current.sample.csv")
HAND_WRITTEN = Path(__file__).resolve().parents[1] / "fixtures" / "advisories" / "epss" / "bad-rows.csv"


def parse_bytes(data: bytes, origin: str = "epss.csv") -> list:
    return list(EpssSource().parse(io.BytesIO(data), origin))


@pytest.fixture(scope="module")
def real() -> list[EpssScore]:
    with REAL_SAMPLE.open("rb") as payload:
        records = list(EpssSource().parse(payload, str(REAL_SAMPLE)))
    assert all(isinstance(r, EpssScore) for r in records)
    return records


def test_every_row_becomes_a_score_dated_by_the_comment(real: list[EpssScore]):
    rows = REAL_SAMPLE.read_text().splitlines()[2:]

    assert len(real) == len(rows) == 536
    assert [score.cve for score in real] == [row.split(",")[0] for row in rows]
    assert {score.scored_on for score in real} == {date(2026, 9, 29)}


def test_known_scores(real: list[EpssScore]):
    by_cve = {score.cve: score for score in real}

    assert by_cve["CVE-2024-7922"] == EpssScore("CVE-2024-7922", 0.19464, 0.9729, date(2026, 9, 29))
    assert (by_cve["CVE-2024-8499"].score, by_cve["CVE-2024-8499"].percentile) == (0.00452, 0.36812)


def test_the_gzip_file_gives_the_same_scores(real: list[EpssScore]):
    assert parse_bytes(gzip.compress(REAL_SAMPLE.read_bytes()), "epss_scores-current.csv.gz") == real


def test_a_truncated_gzip_file_is_a_feed_error_naming_the_origin():
    compressed = gzip.compress(REAL_SAMPLE.read_bytes())

    with pytest.raises(FeedError, match="^https://epss.example/current.csv.gz: does not decompress"):
        parse_bytes(compressed[: len(compressed) // 2], "https://epss.example/current.csv.gz")


def test_bad_rows_are_problems_naming_their_line_and_good_rows_are_kept():
    with HAND_WRITTEN.open("rb") as payload:
        records = list(EpssSource().parse(payload, "bad-rows.csv"))

    scores = [r for r in records if isinstance(r, EpssScore)]
    problems = [r for r in records if isinstance(r, RecordProblem)]
    assert [s.cve for s in scores] == ["CVE-2099-4001", "CVE-2099-4006"]
    assert scores[1] == EpssScore("CVE-2099-4006", 0.00001, 0.00002, date(2099, 1, 2))
    assert [(p.record_id, p.message) for p in problems] == [
        (None, "bad-rows.csv line 4: 2 columns where the header has 3"),
        (None, "bad-rows.csv line 5: 'not-a-cve' is not a CVE id"),
        ("CVE-2099-4003", "bad-rows.csv line 6: '1.5' is not between 0 and 1"),
        ("CVE-2099-4004", "bad-rows.csv line 7: 'abc' is not a number"),
        ("CVE-2099-4005", "bad-rows.csv line 9: 'nan' is not between 0 and 1"),
    ]


def test_a_file_without_the_comment_line_has_no_score_date():
    without_comment = b"".join(REAL_SAMPLE.read_bytes().splitlines(keepends=True)[1:])
    records = parse_bytes(without_comment)

    assert len(records) == 536
    assert {r.scored_on for r in records} == {None}


def test_the_older_score_date_offset_form_is_read():
    (score,) = parse_bytes(b"#model_version:v2023.03.01,score_date:2023-05-07T00:00:00+0000\n"
                           b"cve,epss,percentile\nCVE-2023-0001,0.00043,0.0787\n")

    assert score == EpssScore("CVE-2023-0001", 0.00043, 0.0787, date(2023, 5, 7))


def test_a_file_without_the_epss_header_is_a_feed_error():
    with pytest.raises(FeedError, match="line 2: not an EPSS header .missing percentile"):
        parse_bytes(b"#model_version:v1,score_date:2026-01-01T00:00:00Z\ncve,epss\nCVE-2024-0001,0.1\n")


def test_a_malformed_score_date_is_a_feed_error():
    with pytest.raises(FeedError, match="score_date is not a timestamp: 'soon'"):
        parse_bytes(b"#model_version:v1,score_date:soon\ncve,epss,percentile\n")


def test_an_in_memory_stream_is_read_and_left_open():
    stream = io.BytesIO(REAL_SAMPLE.read_bytes())

    assert len(list(EpssSource().parse(stream, "epss.csv"))) == 536
    assert not stream.closed


def test_registered_with_the_current_scores_url():
    assert isinstance(get_source("epss"), EpssSource)
    assert DEFAULT_URLS["epss"] == ("https://epss.empiricalsecurity.com/epss_scores-current.csv.gz",)

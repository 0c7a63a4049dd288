"""FIRST's EPSS scores (the daily ``epss_scores-current.csv.gz``, or the same CSV uncompressed).

Layout: a comment line ``#model_version:v2025.03.14,score_date:2025-08-25T12:55:00Z``, a header
``cve,epss,percentile``, then one row per CVE. Gzip is detected by its magic bytes, not the name.
``scored_on`` is the comment's score_date; files from before EPSS wrote the comment have none.
The file is read line by line (about 300,000 rows in real life). A row that does not parse (wrong
column count, not a CVE id, a number outside 0..1) is a RecordProblem naming its line; a header
without the three columns, or a file that does not decompress, is a FeedError.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import zlib
from collections.abc import Iterator
from datetime import date
from typing import BinaryIO

from patchpipe.advisories.records import EpssScore
from patchpipe.advisories.source import FeedError, Record, RecordProblem

_GZIP_MAGIC = b"\x1f\x8b"
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")
_REQUIRED_COLUMNS = ("cve", "epss", "percentile")


class EpssSource:
    name = "epss"

    def parse(self, payload: BinaryIO, origin: str) -> Iterator[Record]:
        lines = _numbered_lines(payload, origin)
        number, line = next(lines, (0, ""))
        scored_on = None
        if line.startswith("#"):
            scored_on = scored_on_from_comment(line, origin)
            number, line = next(lines, (number, ""))
        columns = _columns(line, number, origin)
        for number, line in lines:
            if line.strip():
                yield _score(line, columns, scored_on, f"{origin} line {number}")


def scored_on_from_comment(comment: str, origin: str) -> date | None:
    """The date of ``score_date`` in the leading comment; None when the comment has no score_date."""
    fields = dict(part.partition(":")[::2] for part in comment.lstrip("#").strip().split(","))
    text = fields.get("score_date", "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])  # the offset is written as Z or +0000 depending on the year
    except ValueError:
        raise FeedError(f"{origin} line 1: score_date is not a timestamp: {text!r}") from None


def _score(line: str, columns: dict[str, int], scored_on: date | None, where: str) -> Record:
    values = line.rstrip("\r\n").split(",")
    if len(values) != len(columns):
        return RecordProblem(None, f"{where}: {len(values)} columns where the header has {len(columns)}")
    cve = values[columns["cve"]].strip()
    if not _CVE.fullmatch(cve):
        return RecordProblem(None, f"{where}: {cve!r} is not a CVE id")
    try:
        score = _probability(values[columns["epss"]])
        percentile = _probability(values[columns["percentile"]])
    except ValueError as exc:
        return RecordProblem(cve, f"{where}: {exc}")
    return EpssScore(cve=cve, score=score, percentile=percentile, scored_on=scored_on)


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number") from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{text.strip()!r} is not between 0 and 1")
    return value


def _columns(header: str, number: int, origin: str) -> dict[str, int]:
    names = [name.strip().lower() for name in header.rstrip("\r\n").split(",")]
    missing = [column for column in _REQUIRED_COLUMNS if column not in names]
    if missing:
        raise FeedError(f"{origin} line {number}: not an EPSS header (missing {', '.join(missing)}): {header[:80]!r}")
    return {name: index for index, name in enumerate(names)}


def _numbered_lines(payload: BinaryIO, origin: str) -> Iterator[tuple[int, str]]:
    buffered = payload if hasattr(payload, "peek") else io.BufferedReader(payload)
    raw = gzip.GzipFile(fileobj=buffered) if buffered.peek(2)[:2] == _GZIP_MAGIC else buffered
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    number = 0
    try:
        for number, line in enumerate(text, start=1):
            yield number, line
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise FeedError(f"{origin}: does not decompress after line {number}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise FeedError(f"{origin} line {number + 1} is not UTF-8: {exc}") from None
    finally:
        # Closing the wrappers would close the caller's stream too.
        text.detach()
        if buffered is not payload:
            buffered.detach()

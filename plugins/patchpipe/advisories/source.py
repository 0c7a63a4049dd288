"""What every advisory source is: a name and a parser from the feed's bytes to normalized records.

Fetching (HTTP, conditional GET, retries) and storing are the sync's job, not the source's, so a
source is tested on files alone and ``patchpipe advisories import`` reuses it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import json
from typing import Any, BinaryIO, Protocol, Union

from patchpipe.advisories.records import Advisory, EpssScore, KevEntry
from patchpipe.errors import PatchpipeError


@dataclass(frozen=True)
class RecordProblem:
    """A record that failed validation: skipped, counted and logged with its id; the rest goes on."""

    record_id: str | None
    message: str


Record = Union[Advisory, KevEntry, EpssScore, RecordProblem]


class FeedError(PatchpipeError):
    """The feed as a whole is unusable (truncated, not the format it should be): nothing is stored."""


class AdvisorySource(Protocol):
    name: str

    def parse(self, payload: BinaryIO, origin: str) -> Iterator[Record]:
        """Stream records out of ``payload`` (``origin`` names it in messages: a URL or a path).

        Raises FeedError for a feed that is unusable as a whole.
        """
        ...


def load_json(payload: BinaryIO, origin: str) -> Any:
    """A whole feed that is one JSON document; FeedError naming ``origin`` when it is not JSON."""
    try:
        return json.load(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"{origin} is not valid JSON: {exc}") from None

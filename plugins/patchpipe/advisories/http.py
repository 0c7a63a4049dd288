"""Fetching advisory feeds over HTTP: cheap when nothing changed, patient when the server is busy.

One ``requests.Session`` per client (connections are reused across feeds), connect and read
timeouts, and a conditional GET from the validators of the last good copy (``If-None-Match`` /
``If-Modified-Since``), so an unchanged feed costs one 304. Bodies stream to a temporary file,
never whole into memory: the OSV archives are hundreds of megabytes.

Retries are written out here rather than left to urllib3's ``Retry``: a body that breaks off
halfway must be retried too (urllib3 has returned the response by then), and the wait a server
asks for in ``Retry-After`` is capped so a feed cannot stall the sync for an hour.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from patchpipe.errors import PatchpipeError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (10.0, 120.0)  # (connect, read between bytes) seconds
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CHUNK = 1 << 16


class FetchError(PatchpipeError):
    """A feed could not be downloaded; the message names the URL and what the server did."""


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits ``backoff``, then twice that, and so on, or what the server
    asks in ``Retry-After``, never more than ``max_wait`` seconds at once."""

    attempts: int = 4
    backoff: float = 2.0
    max_wait: float = 60.0

    def wait(self, failed_attempts: int, retry_after: float | None) -> float:
        wanted = retry_after if retry_after is not None else self.backoff * 2 ** (failed_attempts - 1)
        return max(0.0, min(wanted, self.max_wait))


@dataclass(frozen=True)
class Validators:
    """What the server said identifies the copy we hold."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class Download:
    """A fetched feed: ``path`` holds the body, or is None when the server said 304 Not Modified."""

    url: str
    path: Path | None
    validators: Validators
    size: int = 0

    @property
    def not_modified(self) -> bool:
        return self.path is None


class FeedClient:
    """Downloads feeds; use as a context manager (or call ``close``) to release the connections."""

    def __init__(
        self,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        download_dir: Path | None = None,
        user_agent: str = "patchpipe-advisories",
    ):
        self.timeout = timeout
        self.retry = retry
        self.download_dir = download_dir
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent

    def __enter__(self) -> "FeedClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    @contextmanager
    def download(self, url: str, validators: Validators | None = None) -> Iterator[Download]:
        """Fetch ``url`` into a temporary file that lives as long as the ``with`` block.

        Retries connection failures, cut-off bodies, 429 and 5xx; raises FetchError for any other
        status, or when the retries run out.
        """
        handle, name = tempfile.mkstemp(prefix="patchpipe-feed-", dir=self.download_dir)
        os.close(handle)
        path = Path(name)
        try:
            yield self._fetch(url, validators or Validators(), path)
        finally:
            path.unlink(missing_ok=True)

    def _fetch(self, url: str, validators: Validators, path: Path) -> Download:
        shown = redact(url)
        conditional = validators.headers()
        for attempt in range(1, self.retry.attempts + 1):
            retry_after: float | None = None
            try:
                response = self.session.get(url, headers=conditional, timeout=self.timeout, stream=True)
            except requests.RequestException as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                with response:
                    status = response.status_code
                    if status == 304:
                        if not conditional:
                            raise FetchError(f"{shown}: answered 304 Not Modified to a request that was not conditional")
                        return Download(url, None, _validators(response, fallback=validators))
                    if status == 200:
                        try:
                            size = _save_body(response, path)
                        except requests.RequestException as error:
                            problem = f"the body broke off ({type(error).__name__}: {error})"
                        else:
                            return Download(url, path, _validators(response), size)
                    elif status in RETRY_STATUSES:
                        problem = f"HTTP {status} {response.reason}"
                        retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    else:
                        raise FetchError(f"{shown}: HTTP {status} {response.reason}")
            if attempt == self.retry.attempts:
                raise FetchError(f"{shown}: {problem} (gave up after {attempt} attempts)")
            wait = self.retry.wait(attempt, retry_after)
            log.warning("%s: %s; retrying in %.1f s (attempt %d of %d)", shown, problem, wait, attempt + 1,
                        self.retry.attempts)
            time.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")


def _save_body(response: requests.Response, path: Path) -> int:
    size = 0
    with path.open("wb") as out:
        for chunk in response.iter_content(_CHUNK):
            out.write(chunk)
            size += len(chunk)
    declared = response.headers.get("Content-Length")
    # urllib3 checks this for bodies without Content-Encoding; a decoded body has its own length.
    if declared and declared.isdigit() and "Content-Encoding" not in response.headers and int(declared) != size:
        raise requests.exceptions.ChunkedEncodingError(f"got {size} of {declared} bytes")
    return size


def _validators(response: requests.Response, fallback: Validators = Validators()) -> Validators:
    return Validators(
        etag=response.headers.get("ETag") or fallback.etag,
        last_modified=response.headers.get("Last-Modified") or fallback.last_modified,
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date; None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def redact(url: str) -> str:
    """``url`` without a password (a mirror's URL may carry credentials; they are never logged)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))

"""The manifest's field types (names, tag references, URLs, paths, regexes, dates) and their checks."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from patchpipe.errors import ImageReferenceError
from patchpipe.fleet.cron import check_cron
from patchpipe.images.reference import parse_reference

Severity = Literal["critical", "high", "medium", "low", "negligible", "unknown"]
Stage = Literal["staging", "production"]
STAGES: tuple[Stage, ...] = ("staging", "production")

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_name(text: str) -> str:
    if not _DNS_LABEL.match(text):
        raise ValueError(
            f"must be lowercase letters, digits and '-', start and end with a letter or digit, "
            f"at most 63 characters (got {text!r})"
        )
    return text


def _check_tag_reference(text: str) -> str:
    try:
        ref = parse_reference(text)
    except ImageReferenceError as error:
        raise ValueError(str(error)) from None
    if ref.digest:
        raise ValueError(
            f"must be a tag, not a digest (got {text!r}); patchpipe resolves digests itself"
        )
    if not ref.tag:
        raise ValueError(f"needs a tag, e.g. {ref.name}:1.0 (got {text!r})")
    return text


def _check_http_url(text: str) -> str:
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError(f"has an invalid port (got {text!r})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL (got {text!r})")
    return text


def _check_absolute_path(text: str) -> str:
    if not text.startswith("/"):
        raise ValueError(f"must start with '/' (got {text!r})")
    return text


def _check_regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as error:
        raise ValueError(f"not a valid regular expression: {error} (got {text!r})") from None
    return text


def _parse_iso_date(value: Any) -> Any:
    # Only YYYY-MM-DD: a manifest's dates must not depend on pydantic's wider choice of formats.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError(f"must be a date written YYYY-MM-DD (got {value!r})")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"is not a real date: {error} (got {value!r})") from None


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Name = Annotated[str, AfterValidator(_check_name)]
TagReference = Annotated[str, AfterValidator(_check_tag_reference)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
AbsolutePath = Annotated[str, AfterValidator(_check_absolute_path)]
Regex = Annotated[str, AfterValidator(_check_regex)]
Cron = Annotated[str, AfterValidator(check_cron)]
IsoDate = Annotated[date, BeforeValidator(_parse_iso_date)]
Owners = Annotated[list[Text], Field(min_length=1)]

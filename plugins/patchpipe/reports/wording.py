"""The sentences reports and notifications share: why a rollback happened, where it went, how long.

Plain text, no markup: each renderer (Markdown, HTML, Slack, email) escapes it for its own format.
One wording for every channel, so the report and the alert about the same rollback say the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from patchpipe.deploy.base import digest_of


def describe_cause(cause: dict[str, Any] | None) -> str:
    """``analyze_production failed: request-duration 1003.4 (bound <= 500): <error>``, from a rollback's
    ``cause`` (``lifecycle.deploy.failure_cause``)."""
    if not cause or not cause.get("stage"):
        return "cause unknown (no failed deploy or analysis stage in the ledger)"
    text = f"{cause['stage']} failed"
    check = cause.get("check") or {}
    if check.get("check"):
        text += f": check {check['check']}"
        if check.get("value") is not None:
            text += f" was {check['value']}"
        if check.get("bound"):
            text += f" (bound {check['bound']})"
    if cause.get("error"):
        text += f": {cause['error']}"
    return text


def describe_rollback(environment: str, detail: dict[str, Any]) -> str:
    """``production rolled back from sha256:new to sha256:old (tag restored): <cause>``."""
    changed = detail.get("changed")
    source, target = detail.get("previous_image"), detail.get("image")
    if changed and source and target:
        text = f"{environment} rolled back from {short_image(source)} to {short_image(target)}"
    else:
        text = f"{environment} rolled back"
    if detail.get("tag_restored"):
        text += " (production tag restored)"
    return f"{text}: {describe_cause(detail.get('cause'))}"


def short_image(image: str) -> str:
    """The digest of an ``image@sha256:...`` reference, else the reference itself."""
    return digest_of(image) or image


def duration(seconds: float | timedelta | None) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``, ``3 d 4 h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = int(round(seconds.total_seconds() if isinstance(seconds, timedelta) else seconds))
    sign, total = ("-" if total < 0 else ""), abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h"
    if hours:
        return f"{sign}{hours} h {minutes} min"
    if minutes:
        return f"{sign}{minutes} min {secs} s"
    return f"{sign}{secs} s"


def timestamp(when: datetime | None) -> str:
    """``2026-11-24 02:00:05 UTC``; ``-`` when unknown."""
    return "-" if when is None else when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_counts(counts: dict) -> str:
    """``5 findings (1 critical, 4 high)`` from counts by severity, worst first."""
    total = sum(counts.values())
    named = ", ".join(f"{n} {getattr(s, 'value', s)}" for s, n in counts.items() if n)
    return plural(total, "finding") + (f" ({named})" if named else "")


def plural(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"

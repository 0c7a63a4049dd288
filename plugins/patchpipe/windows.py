"""Patch windows: a cron expression says when a window opens, ``hours`` how long it stays open.

A scheduled or backfill run patches an image only while the image's own window is open at the
run's time (the end of its data interval, when the window it stands for closed for scheduling).
Manual runs patch what the operator chose, and emergency runs ignore windows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter


def last_opening(cron: str, when: datetime) -> datetime:
    """The latest time at or before ``when`` that ``cron`` fires."""
    if croniter.match(cron, when.replace(second=0, microsecond=0)):
        return when.replace(second=0, microsecond=0)
    return croniter(cron, when).get_prev(datetime)


def window_open(cron: str, when: datetime, hours: float) -> bool:
    return when < last_opening(cron, when) + timedelta(hours=hours)

"""The patch-window check: a 5-field cron expression, judged field by field."""

from __future__ import annotations

import re

# Cron fields: (name, lowest, highest, names usable instead of numbers).
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}),
    ("day-of-week", 0, 7, {name: number for number, name in enumerate(_DAY_NAMES)}),
)
_CRON_ITEM = re.compile(r"^(?P<start>\*|[0-9a-z]+)(?:-(?P<end>[0-9a-z]+))?(?:/(?P<step>[0-9]+))?$")


def check_cron(text: str) -> str:
    """``text`` with its fields single-spaced; ValueError saying which field is wrong and why."""
    fields = text.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(
            f"must be a cron expression of 5 fields, minute hour day-of-month month day-of-week "
            f"(got {text!r})"
        )
    try:
        for value, (field, low, high, names) in zip(fields, _CRON_FIELDS):
            _check_cron_field(value, field, low, high, names)
    except ValueError as error:
        raise ValueError(f"not a valid cron expression: {error} (got {text!r})") from None
    return " ".join(fields)


def _check_cron_field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> None:
    for item in text.lower().split(","):
        match = _CRON_ITEM.match(item)
        if not match:
            raise ValueError(f"{field} {item!r} is not '*', a number, a range a-b or a step x/n")
        start, end, step = match["start"], match["end"], match["step"]
        if start == "*" and end is not None:
            raise ValueError(f"{field} {item!r}: '*' cannot start a range")
        if step is not None and int(step) == 0:
            raise ValueError(f"{field} {item!r}: the step must be at least 1")
        if start == "*":
            continue
        first = _cron_value(start, field, low, high, names)
        if end is not None and _cron_value(end, field, low, high, names) < first:
            raise ValueError(f"{field} {item!r}: the range runs backwards")


def _cron_value(token: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    number = names.get(token) if not token.isdigit() else int(token)
    if number is None:
        raise ValueError(f"{field} {token!r} is not a number")
    if not low <= number <= high:
        raise ValueError(f"{field} {token!r} is out of range {low}-{high}")
    return number

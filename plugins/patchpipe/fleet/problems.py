"""Pydantic's validation errors in the manifest's words, as ``path: message`` lines."""

from __future__ import annotations

import re
from typing import Any

from pydantic_core import ErrorDetails

_TYPE_WORDS = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "true/false",
    int: "an integer",
    float: "a number",
    type(None): "nothing (null)",
}

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def problem_line(error: ErrorDetails) -> str:
    """One error as ``path: message``, e.g. ``images[0].deploy.production.url: field required``."""
    return f"{_format_loc(error['loc'])}: {_message(error)}"


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _message(error: ErrorDetails) -> str:
    kind, ctx, given = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("value_error", "assertion_error"):
        return str(ctx["error"])
    if kind == "literal_error":
        expected = re.sub(r" or (?=[^,]*$)", ", ", ctx["expected"])  # 'a', 'b' or 'c' -> 'a', 'b', 'c'
        if "," not in expected:
            return f"must be {expected} (got {_shown(given)})"
        return f"must be one of {expected} (got {_shown(given)})"
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]} (got {_shown(given)})"
    if kind in ("too_short", "string_too_short"):
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"must have at least {ctx['min_length']} items (got {ctx.get('actual_length')})"
    bounds = {
        "greater_than": ("greater than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {_shown(ctx[key])} (got {_shown(given)})"
    return error["msg"]


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return kind_of(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def kind_of(value: Any) -> str:
    """What kind of YAML value ``value`` is, in words: "a mapping", "a list", ..."""
    return _TYPE_WORDS.get(type(value), type(value).__name__)

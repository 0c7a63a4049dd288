"""Checks made on a model's raw input and raised together with pydantic's own errors."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError, core_schema

_PYDANTIC_ERROR_TYPES = frozenset(get_args(core_schema.ErrorType))


def custom_error(loc: tuple[int | str, ...], message: str, given: Any = None) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("manifest", message), loc=loc, input=given)


def validate_reporting_also(model: type, data: Any, handler: Any, problems: list[InitErrorDetails]) -> Any:
    """Run a wrap validator's ``handler`` and report ``problems`` together with its own errors."""
    try:
        result = handler(data)
    except ValidationError as error:
        if not problems:
            raise
        earlier = [_reraisable(detail) for detail in error.errors()]
        raise ValidationError.from_exception_data(model.__name__, [*earlier, *problems]) from None
    if problems:
        raise ValidationError.from_exception_data(model.__name__, problems)
    return result


def _reraisable(detail: ErrorDetails) -> InitErrorDetails:
    if detail["type"] in _PYDANTIC_ERROR_TYPES:
        return InitErrorDetails(
            type=detail["type"], loc=detail["loc"], input=detail["input"], ctx=detail.get("ctx", {})
        )
    return custom_error(detail["loc"], detail["msg"], detail["input"])


def duplicate_name_errors(data: Any) -> list[InitErrorDetails]:
    """A manifest's reused base and image names, each at its second occurrence's own path."""
    if not isinstance(data, dict):
        return []
    errors: list[InitErrorDetails] = []
    first_seen: dict[str, str] = {}
    for section in ("bases", "images"):
        entries = data.get(section)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str):
                continue
            here = f"{section}[{index}]"
            if name in first_seen:
                message = f"name {name!r} is already used by {first_seen[name]}"
                errors.append(custom_error((section, index, "name"), message, name))
            else:
                first_seen[name] = here
    return errors

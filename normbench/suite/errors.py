"""Suite errors: `SuiteError`, and pydantic validation errors as one message naming file, field and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ValidationError


class SuiteError(Exception):
    """A suite file or override is invalid; the message names the file, the field and the fix."""


Location = tuple[Any, ...]


def validation_suite_error(
    exc: ValidationError,
    source: str | Path,
    *,
    schema: type[BaseModel],
    locate: Callable[[Location], Location] = lambda loc: loc,
) -> SuiteError:
    """One SuiteError with a line per field error: `SOURCE: field `a.b[1]`: message`.

    An unknown field gets the fields `schema` accepts at that place; `locate(loc)` maps pydantic's
    location to the path as the user wrote it (a schema may normalize its input).
    """
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field; allowed here: {', '.join(field_model(schema, loc).model_fields)}"
        elif error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{source}: field `{_field_path(locate(loc))}`: {message}")
    return SuiteError("\n".join(dict.fromkeys(lines)))


def field_model(schema: type[BaseModel], loc: Location) -> type[BaseModel]:
    """The schema class that owns the field at `loc` (for "allowed here" lists in error messages)."""
    current = schema
    for item in loc[:-1]:
        if not isinstance(item, str) or item not in current.model_fields:
            continue  # list indices and union branches do not change the owning class
        nested = _model_in(current.model_fields[item].annotation)
        if nested is None:
            break
        current = nested
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside `X`, `X | None` or `list[X]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):  # typing constructs only; plain classes have none
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _field_path(loc: Location) -> str:
    """`('norms', 1, 'options')` → `norms[1].options`."""
    text = ""
    for item in loc:
        if isinstance(item, int):
            text += f"[{item}]"
        else:
            text += f".{item}" if text else str(item)
    return text

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
    for error in _matching_union_branches(exc.errors()):
        loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field; allowed here: {', '.join(field_model(schema, loc).model_fields)}"
        elif error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{source}: field `{_field_path(locate(loc))}`: {message}")
    return SuiteError("\n".join(dict.fromkeys(lines)))


# Errors saying an input is not of a union branch's shape at all (a mapping given where the branch
# takes a list, or the other way round): noise when the other branch is the one the user meant.
_SHAPE_ERRORS = ("list_type", "model_type", "dict_type", "model_attributes_type")


def _is_union_tag(item: Any) -> bool:
    """Whether a location item names a union branch (`OptimizerConfig`, `list[X]`, `int`, `literal[...]`)."""
    return isinstance(item, str) and (item[:1].isupper() or item.startswith(("list[", "literal[", "function-"))
                                      or item in ("int", "float", "str", "bool", "none"))


def _matching_union_branches(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic reports every branch of a union such as `X | list[X]`; drop the branches whose shape
    the input does not have and the branch names from the locations, so a mapping's error reads
    `optimizer.name`, not `optimizer.OptimizerConfig.name` plus a list error."""
    kept = []
    for error in errors:
        loc = tuple(error["loc"])
        tag = next((i for i, item in enumerate(loc) if _is_union_tag(item)), None)
        if tag is None:
            kept.append(error)
        elif not (len(loc) == tag + 1 and error["type"] in _SHAPE_ERRORS):
            kept.append({**error, "loc": loc[:tag] + loc[tag + 1:]})
    return kept or errors


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

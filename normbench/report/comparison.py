"""Render a `normbench compare` result (``CompareResult.to_dict()``) as text, Markdown or JSON."""

from __future__ import annotations

import json
from typing import Any

from normbench.analysis import json_safe
from normbench.report.render import template_environment

FORMATS = ("text", "md", "json")
_TEMPLATES = {"text": "compare.txt.j2", "md": "compare.md.j2"}


def render_comparison(result: dict[str, Any], fmt: str = "text") -> str:
    """``text`` for a terminal, ``md`` for a GitHub Actions step summary, ``json`` for machines."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown compare format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(json_safe(result), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    return template_environment(fmt).get_template(_TEMPLATES[fmt]).render(**result)

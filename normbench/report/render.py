"""Render a report context as self-contained HTML, GitHub-flavoured Markdown or JSON, and write it.

HTML goes through Jinja2 with autoescape on; Markdown through an environment whose ``finalize``
escapes every ``{{ }}`` output for Markdown (so a suite name cannot inject table cells, links or
raw HTML into a step summary); JSON is the context itself with NaN written as null.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import jinja2

from normbench.analysis import format_detectable, format_p, json_safe
from normbench.frames import ResultFrames
from normbench.report.context import build_context
from normbench.report.figures import report_figures

FORMATS = ("html", "md", "json")
TEMPLATES_DIR = Path(__file__).parent / "templates"
_TEMPLATES = {"html": "report.html.j2", "md": "report.md.j2"}
_MISSING = "–"


def render(context: dict[str, Any], fmt: str = "html") -> str:
    """Render ``context`` (from :func:`build_context`) as ``fmt``: ``html``, ``md`` or ``json``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(json_safe(context), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    template = _environment(fmt).get_template(_TEMPLATES[fmt])
    figures = report_figures(context) if fmt == "html" else {}
    return template.render(**context, figures=figures)


def write_report(frames: ResultFrames, path: str | Path, fmt: str = "html", *, rng_seed: int = 0) -> Path:
    """Build the context from ``frames``, render it as ``fmt`` and write it (UTF-8) to ``path``."""
    text = render(build_context(frames, rng_seed=rng_seed), fmt)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def template_environment(fmt: str) -> jinja2.Environment:
    """The Jinja2 environment for ``fmt``: ``html`` (autoescape), ``md`` (Markdown-escaping
    finalize) or ``text`` (plain, for terminals); all share the number filters."""
    if fmt not in ("html", "md", "text"):
        raise ValueError(f"no template environment for {fmt!r}")
    return _environment(fmt)


@functools.cache
def _environment(fmt: str) -> jinja2.Environment:
    options: dict[str, Any] = dict(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    if fmt == "html":
        environment = jinja2.Environment(autoescape=True, **options)
    elif fmt == "text":
        environment = jinja2.Environment(autoescape=False, finalize=_text_finalize, **options)
    else:
        environment = jinja2.Environment(autoescape=False, finalize=_markdown_finalize, **options)
        environment.filters["code_block"] = _code_block
    environment.filters.update(num=format_number, sig=format_significant, pval=format_p_value,
                               signed=format_signed, envval=format_environment_value, mde=format_mde,
                               median=format_median, percent=format_percent, ms=format_milliseconds,
                               megabytes=format_megabytes)
    return environment


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def format_number(x: Any, digits: int = 2) -> str:
    """Fixed-point number with ``digits`` decimals; '–' for missing/NaN."""
    return _MISSING if _is_missing(x) else f"{x:.{digits}f}"


def format_significant(x: Any, digits: int = 3) -> str:
    """Number with ``digits`` significant digits (test statistics); '–' for missing/NaN."""
    return _MISSING if _is_missing(x) else f"{x:.{digits}g}"


def format_signed(x: Any, digits: int = 1) -> str:
    """Number with an explicit sign (differences); '–' for missing/NaN."""
    return _MISSING if _is_missing(x) else f"{x:+.{digits}f}"


def format_p_value(p: Any) -> str:
    """p-value in a table column: three decimals, '< 0.001' below that, '–' when not testable."""
    return format_p(p, relation=False, missing=_MISSING)


def format_mde(x: Any) -> str:
    """Minimum detectable difference: one decimal, 'none' when no effect could be significant."""
    return format_detectable(x, missing=_MISSING)


def format_median(x: Any, digits: int = 0) -> str:
    """Kaplan-Meier median: NaN means the survival curve never fell to one half."""
    return "not reached" if _is_missing(x) else f"{x:,.{digits}f}"


def format_percent(x: Any) -> str:
    """A fraction as a percentage with no decimals; '–' for missing."""
    return _MISSING if _is_missing(x) else f"{100 * x:.0f} %"


def format_milliseconds(x: Any) -> str:
    """Seconds shown as milliseconds with three decimals; '–' for missing."""
    return _MISSING if _is_missing(x) else f"{1000 * x:.3f}"


def format_megabytes(x: Any) -> str:
    """Bytes as MB (10^6) with one decimal; '–' for missing."""
    return _MISSING if _is_missing(x) else f"{x / 1e6:.1f}"


def format_environment_value(value: Any) -> str:
    """Strings as they are; anything else (numbers, lists, dicts) as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


class _RawMarkdown(str):
    """Text already made safe for Markdown (a fenced block); finalize leaves it alone."""


_MARKDOWN_SPECIAL = str.maketrans({
    "\\": "\\\\", "|": "\\|", "*": "\\*", "_": "\\_", "`": "\\`", "[": "\\[", "]": "\\]", "#": "\\#",
    "<": "&lt;", ">": "&gt;", "&": "&amp;", "\n": " ", "\r": " ",
})


def _text_finalize(value: Any) -> str:
    # Terminal output: no markup to escape, but control characters in user text (an ANSI escape in
    # a suite name) must not reach the terminal.
    if value is None:
        return ""
    return "".join(c if c.isprintable() or c == "\n" else "?" for c in str(value))


def _markdown_finalize(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, _RawMarkdown):
        return value
    return str(value).translate(_MARKDOWN_SPECIAL)


def _code_block(text: str, language: str = "") -> _RawMarkdown:
    # A fence longer than any backtick run inside cannot be closed by the content.
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return _RawMarkdown(f"{fence}{language}\n{text.rstrip()}\n{fence}")

"""Reports: ResultFrames -> context dict (numbers) -> HTML / Markdown / JSON (layout only)."""

from normbench.report.context import build_context
from normbench.report.render import FORMATS, render, write_report

__all__ = ["FORMATS", "build_context", "render", "write_report"]

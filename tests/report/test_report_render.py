"""Rendering: self-contained HTML with decodable figures, inert user strings, Markdown and JSON."""

from __future__ import annotations

import base64
import io
import json
import re
import time

import markupsafe
import matplotlib
import pytest
from PIL import Image

from normbench.analysis import json_safe
from normbench.report import build_context, render, write_report

SCRIPT = "<script>alert(1)</script>"
QUOTES = "\"'><img src=x onerror=alert(2)>"


@pytest.fixture(scope="module")
def hostile_frames(frames_factory):
    """Suite name, description, environment, error text and YAML carrying HTML and Markdown."""
    frames = frames_factory(
        models=("cnn2d", "mlp"), name=f"quick{SCRIPT}", description=f"desc {QUOTES} | pipe",
        outcomes={("cnn2d", "batch", 4, 1): ("diverged", f"loss nan {SCRIPT}"),
                  ("mlp", "layer", 64, 0): ("failed", f"RuntimeError {QUOTES}")},
    )
    frames.environment["html"] = SCRIPT
    frames.suite_yaml += "# ``` fence inside\n"
    return frames


@pytest.fixture(scope="module")
def context(hostile_frames):
    return build_context(hostile_frames)


@pytest.fixture(scope="module")
def html(context):
    return render(context, "html")


def test_html_has_every_section(html, context):
    for anchor in ("glance", "verdicts", "runs", "warnings", "methods", "reproduce", "section-1", "section-2"):
        assert f'id="{anchor}"' in html
    for text in ("The answer at a glance", "Convergence", "Final test accuracy", "Comparison with BN", "Runs by outcome",
                 "Environment", "share of seeds better"):
        assert text in html
    assert "normbench run suites/quick" in html
    assert "<pre>name: quick&lt;script&gt;" in html  # the suite YAML, escaped, in a <pre>
    assert "<th>torch</th><td>2.13.0</td>" in html and '{&#34;a&#34;: [1, 2]}' in html
    assert "loss nan" in html and "RuntimeError" in html  # warnings list reasons
    # 2 models x 2 batch sizes x 2 norms against BN
    assert sum(len(family["rows"]) for section in context["sections"] for family in section["comparisons"]) == 8
    for section in context["sections"]:
        for family in section["comparisons"]:
            for row in family["rows"]:
                assert str(markupsafe.escape(row["verdict"])) in html


def test_html_is_self_contained(html):
    for attribute, value in re.findall(r'\b(src|href)\s*=\s*"([^"]*)"', html):
        assert value.startswith("data:image/png;base64,") if attribute == "src" else value.startswith("#")
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "<script" not in html.lower().replace("&lt;script", "")


def test_figures_decode_as_png(html):
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 10  # per section: glance heatmap, accuracy vs batch size, convergence, CD diagram, Pareto
    for encoded in images:
        data = base64.b64decode(encoded, validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            assert image.size[0] > 300 and image.size[1] > 200


def test_user_strings_render_inert(html):
    assert SCRIPT not in html and "<img src=x" not in html
    assert "quick&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(2)&gt;" in html


def test_rendering_is_reproducible_and_leaves_no_figures_open(context, html):
    import matplotlib.pyplot as plt

    assert render(context, "html") == html
    assert plt.get_fignums() == []
    assert matplotlib.get_backend()  # the process-wide backend is left alone, whatever it is


def test_markdown_tables_escaped_and_no_images(context):
    markdown = render(context, "md")
    assert "| norm | batch size | n | excluded | diverged | mean |" in markdown
    assert "| norm | test | statistic | p | p_adj |" in markdown
    assert "## The answer at a glance" in markdown and "P(better)" not in markdown
    # Inside fenced code blocks (command, YAML) text is literal and inert; everywhere else it is escaped.
    outside_code = re.sub(r"(`{3,})[a-z]*\n.*?\n\1", "", markdown, flags=re.S)
    assert "ites/quick<script>" in markdown and "ites/quick<script>" not in outside_code
    assert "data:image" not in markdown and SCRIPT not in outside_code and "<img" not in outside_code
    assert "# normbench report: quick&lt;script&gt;" in markdown
    assert "\\| pipe" in markdown  # a pipe in user text cannot open a table cell
    assert "````yaml\nname: quick<script>" in markdown  # fence longer than the ``` inside the YAML
    assert len(context["sections"]) == 2
    for section in context["sections"]:
        assert f"## {section['title']}" in markdown


def test_json_holds_every_number_of_the_context(context):
    data = json.loads(render(context, "json"))
    assert data == json_safe(context)
    cell = data["sections"][0]["summaries"][0]
    shown = context["sections"][0]["summaries"][0]
    assert (cell["mean"], cell["ci_low"], cell["ci_high"], cell["n"]) == (
        shown["mean"], shown["ci_low"], shown["ci_high"], shown["n"])
    assert cell["ci_method"] == "t"
    for section in data["sections"]:  # the JSON contract of issue 11
        for summary in section["summaries"]:
            assert {"n", "mean", "std", "ci_low", "ci_high", "ci_method"} <= set(summary)
        for row in (r for f in section["comparisons"] for r in f["rows"]):
            assert {"test", "statistic", "p_value", "p_adjusted", "family", "mean_difference", "effect_size",
                    "direction", "equivalence_p", "margin"} <= set(row)
            assert row["direction"] in ("better", "worse", "equivalent", "inconclusive")
        ranking = section["ranking"]
        assert {"n_blocks", "p_value"} <= set(ranking)
        assert all(set(pair) >= {"a", "b", "p", "significant"} for pair in ranking["pairs"])
    assert data["context_version"] == 4 and data["family"]["size"] > 0
    assert all(v["direction"] in ("better", "worse", "equivalent", "inconclusive") for v in data["verdicts"])


def test_json_writes_nan_as_null(frames_factory):
    data = json.loads(render(build_context(frames_factory(seeds=(0,))), "json"))
    cell = data["sections"][0]["summaries"][0]
    assert cell["ci_low"] is None and cell["std"] is None and cell["n"] == 1


def test_write_report_every_format(tmp_path, frames):
    for fmt in ("html", "md", "json"):
        path = write_report(frames, tmp_path / "out" / f"report.{fmt}", fmt)
        assert path.read_text(encoding="utf-8").strip()
    with pytest.raises(ValueError, match="html, md, json"):
        render(build_context(frames), "pdf")


def test_empty_frames_render(frames_factory):
    from normbench.frames import ResultFrames

    context = build_context(ResultFrames.empty())
    assert "No training runs with results yet." in render(context, "html")
    assert "No training runs with results yet." in render(context, "md")


def test_report_of_72_runs_is_fast(frames_factory):
    frames = frames_factory(models=("cnn2d", "mlp"), seeds=tuple(range(6)))
    assert len(frames.runs) == 72
    start = time.perf_counter()
    render(build_context(frames), "html")
    assert time.perf_counter() - start < 10  # a few seconds on 2 cores; generous against load

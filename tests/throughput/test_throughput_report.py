"""The report's throughput tables: the native ratio next to each layer, compiled rows after eager ones."""

import math

import pandas as pd

from normbench.frames import THROUGHPUT_COLUMNS, ResultFrames
from normbench.report.context import build_context
from normbench.report.render import render
from normbench.report.throughput import throughput_context


def _row(**values):
    base = {c: None for c in THROUGHPUT_COLUMNS}
    base.update(suite="t", subject="layer", dtype="float32", memory_format="contiguous", device="cpu", threads=1,
                method="blocked", outcome="completed", reason="", n_samples=10, noisy=False, variant="", mode="train",
                norm_options="{}", options="{}", shape="[60, 100]", batch_size=60, operation="forward_backward",
                compile="eager", native_module="", native_note="")
    base.update(values)
    return base


def _frame():
    return pd.DataFrame([
        _row(spec_id="c", name="batch", norm="batch", norm_label="batch", median_s=0.002, compile="inductor",
             compile_time_s=31.5, native_module="torch.nn.BatchNorm1d(100)", native_median_s=0.001, native_ratio=2.0),
        _row(spec_id="a", name="batch", norm="batch", norm_label="batch", median_s=0.0021,
             native_module="torch.nn.BatchNorm1d(100)", native_median_s=0.002, native_ratio=1.05),
        _row(spec_id="b", name="batch_layer", norm="batch_layer", norm_label="batch_layer", median_s=0.004,
             native_note="no torch module computes this layer"),
        _row(spec_id="d", name="layer", norm="layer", norm_label="layer", median_s=0.001, compile=None),  # older store
    ])


def test_rows_carry_the_ratio_what_it_is_against_and_the_compile_mode():
    context = throughput_context(_frame(), [])
    rows = {(r["norm"], r["compile"]): r for r in context["layers"]}
    eager, compiled = rows[("batch", "eager")], rows[("batch", "inductor")]
    assert eager["native_ratio"] == 1.05 and eager["native"] == "torch.nn.BatchNorm1d(100)"
    assert compiled["compile_time_s"] == 31.5 and compiled["what"].endswith(" inductor")
    bln = rows[("batch_layer", "eager")]
    assert math.isnan(bln["native_ratio"]) and bln["native"] == "no torch module computes this layer"
    assert ("layer", "eager") in rows  # a row stored before compiled variants is an eager one
    # the eager row of a layer comes before its compiled one; the chart shows eager rows only
    order = [(r["norm"], r["compile"]) for r in context["layers"]]
    assert order.index(("batch", "eager")) < order.index(("batch", "inductor"))
    assert {r["compile"] for r in context["chart_layers"]} == {"eager"}


def test_rendered_tables_show_the_native_column_and_compiled_rows():
    frames = ResultFrames.empty()
    frames.throughput = _frame()
    context = build_context(frames)
    markdown = render(context, "md")
    assert "| normbench / native |" in markdown and "| compile (s) |" in markdown
    assert "| inductor |" in markdown and "| 1.05 |" in markdown and "| 2.00 |" in markdown
    html = render(context, "html")
    assert "normbench / native" in html and 'title="torch.nn.BatchNorm1d(100)"' in html
    assert 'title="no torch module computes this layer"' in html

"""build_context on synthetic ResultFrames: every number recomputed here with NumPy/scipy."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from normbench.analysis import cell_rng, json_safe
from normbench.frames import ResultFrames
from normbench.report import render
from normbench.report.context import build_context

TOP_LEVEL_KEYS = {"context_version", "rng_seed", "alpha", "suite", "environment", "outcomes", "warnings",
                  "methods", "verdicts", "norms", "sections", "power", "throughput"}


def _values(frames: ResultFrames, model: str, label: str, batch_size: int) -> tuple[list[int], np.ndarray]:
    """Independent reading of the policy: completed -> accuracy x 100, diverged -> 0, rest excluded."""
    runs = frames.runs
    cell = runs[(runs.model == model) & (runs.norm_label == label) & (runs.batch_size == batch_size)]
    cell = cell[cell.outcome.isin(["completed", "diverged"])].sort_values("seed")
    values = np.where(cell.outcome == "diverged", 0.0, cell.final_test_accuracy.astype(float) * 100)
    return cell.seed.astype(int).tolist(), values


def _section(context, model):
    return next(s for s in context["sections"] if s["model"] == model)


def test_top_level_keys_and_suite(frames):
    context = build_context(frames)
    assert set(context) == TOP_LEVEL_KEYS
    assert context["suite"] == {"name": "quick", "description": "Three norms on digits.",
                                "command": "normbench run suites/quick.yaml", "yaml": frames.suite_yaml}
    assert context["environment"] == {"torch": "2.13.0", "threads": 2, "cpu": "test cpu", "extra": {"a": [1, 2]}}
    assert [n["name"] for n in context["norms"]] == ["BN", "LN", "GN(num_groups=4)"]
    json.dumps(json_safe(context), allow_nan=False)  # plain data only


def test_outcome_counts_and_warnings(frames_with_failures):
    context = build_context(frames_with_failures)
    assert context["outcomes"] == {"completed": 32, "diverged": 1, "undefined": 1, "failed": 1, "skipped": 1,
                                   "total": 36}
    run_warnings = {w["outcome"]: w for w in context["warnings"] if w["kind"] == "run"}
    assert set(run_warnings) == {"diverged", "undefined", "failed", "skipped"}
    assert run_warnings["diverged"]["reason"] == "loss became nan at step 150"
    assert run_warnings["diverged"]["effect"] == "counted as 0 % accuracy"
    assert run_warnings["undefined"]["reason"].startswith("BatchNorm needs")
    assert run_warnings["failed"]["effect"] == "excluded from statistics"
    assert (run_warnings["skipped"]["model"], run_warnings["skipped"]["seed"]) == ("mlp", 1)


def test_summaries_equal_numpy_and_scipy(frames_with_failures):
    frames = frames_with_failures
    context = build_context(frames, rng_seed=0)
    checked = 0
    for section in context["sections"]:
        for cell in section["summaries"]:
            seeds, x = _values(frames, section["model"], cell["norm_label"], cell["batch_size"])
            assert cell["seeds"] == seeds
            assert cell["values"] == pytest.approx(x.tolist(), rel=1e-15)
            assert cell["n"] == len(x)
            assert cell["mean"] == pytest.approx(x.mean(), rel=1e-12)
            assert cell["std"] == pytest.approx(x.std(ddof=1), rel=1e-12)
            assert cell["median"] == pytest.approx(np.median(x), rel=1e-12)
            assert cell["iqm"] == pytest.approx(sps.trim_mean(x, 0.25), rel=1e-12)
            if len(x) >= 3:
                rng = cell_rng(0, section["model"], section["dataset"], cell["batch_size"], cell["norm_label"])
                ci = sps.bootstrap((x,), np.mean, n_resamples=9999, vectorized=True, method="BCa",
                                   rng=rng).confidence_interval
                assert (cell["ci_low"], cell["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-12)
            checked += 1
    assert checked == 12


def test_diverged_counts_as_zero_and_excluded_runs_do_not_count(frames_with_failures):
    context = build_context(frames_with_failures)
    cnn = {(c["norm_label"], c["batch_size"]): c for c in _section(context, "cnn2d")["summaries"]}
    assert cnn[("batch", 4)]["values"][1] == 0.0 and cnn[("batch", 4)]["n_diverged"] == 1
    assert cnn[("batch", 4)]["n"] == 3
    mlp = {(c["norm_label"], c["batch_size"]): c for c in _section(context, "mlp")["summaries"]}
    assert (mlp[("batch", 4)]["n"], mlp[("batch", 4)]["n_excluded"], mlp[("batch", 4)]["seeds"]) == (2, 1, [0, 1])
    assert mlp[("layer", 64)]["seeds"] == [1, 2]
    assert mlp[("group(num_groups=4)", 64)]["seeds"] == [0, 2]


def test_comparisons_equal_scipy_and_holm_by_hand(frames_with_failures):
    frames = frames_with_failures
    context = build_context(frames)
    # 2 models x 2 batch sizes x 2 norms against BN
    assert sum(len(family["rows"]) for section in context["sections"] for family in section["comparisons"]) == 8
    for section in context["sections"]:
        for family in section["comparisons"]:
            bs = family["batch_size"]
            ref_seeds, ref = _values(frames, section["model"], "batch", bs)
            raw_p = []
            for row in family["rows"]:
                seeds, x = _values(frames, section["model"], row["norm_label"], bs)
                common = sorted(set(seeds) & set(ref_seeds))
                a = np.array([x[seeds.index(s)] for s in common])
                b = np.array([ref[ref_seeds.index(s)] for s in common])
                assert row["seeds"] == common and row["n"] == len(common)
                assert row["n_unpaired"] == len(set(seeds) ^ set(ref_seeds))
                assert row["mean_difference"] == pytest.approx(np.mean(a - b), rel=1e-9, abs=1e-9)
                if len(common) >= 3 and sps.shapiro(a - b).pvalue >= 0.05:
                    expected = sps.ttest_rel(a, b)
                    assert row["test"] == "paired t-test"
                    assert row["effect_size"] == pytest.approx(np.mean(a - b) / np.std(a - b, ddof=1), rel=1e-6)
                else:
                    expected = sps.wilcoxon(a, b)
                    assert row["test"] == "wilcoxon"
                assert row["statistic"] == pytest.approx(expected.statistic, rel=1e-6)
                assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
                raw_p.append(row["p_value"])
            # Holm by hand: multiply the i-th smallest by (m - i), running maximum, cap at 1
            order = np.argsort(raw_p)
            holm = np.empty(len(raw_p))
            running = 0.0
            for i, index in enumerate(order):
                running = max(running, min(1.0, raw_p[index] * (len(raw_p) - i)))
                holm[index] = running
            assert [row["p_holm"] for row in family["rows"]] == pytest.approx(holm.tolist())


def test_significant_verdict_in_plain_words(frames_factory):
    frames = frames_factory(seeds=(0, 1, 2, 3, 4), noise_seed=3)
    context = build_context(frames)
    family = _section(context, "cnn2d")["comparisons"][0]
    gn = next(r for r in family["rows"] if r["norm_label"] == "group(num_groups=4)")
    assert gn["significant"] and gn["p_holm"] < 0.05 and gn["effect_size"] > 0
    effect = "d_z" if gn["effect_name"] == "d_z" else "r"
    p_text = "< 0.001" if gn["p_holm"] < 0.001 else f"= {gn['p_holm']:.3f}"
    assert gn["verdict"] == (f"GN(num_groups=4) beats BN at batch size 4 (cnn2d on digits): accuracy "
                             f"+{gn['mean_difference']:.1f} points, p_holm {p_text}, {effect} = "
                             f"{gn['effect_size']:.2f}, n = 5")
    assert gn["verdict"] in [v["text"] for v in context["verdicts"]]
    not_significant = [r for f in _section(context, "cnn2d")["comparisons"] for r in f["rows"] if not r["significant"]]
    assert not_significant
    for r in not_significant:
        assert "no significant difference (n = 5)" in r["verdict"]
        # Underpowered exactly when the t-test with 5 seeds could not see 1 point at the observed spread.
        assert r["underpowered"] == (not r["mde"] <= 1.0)
        assert ("underpowered" in r["verdict"]) == r["underpowered"]


def test_curves_are_means_with_t_bands_and_diverged_runs_drop_to_zero(frames_with_failures):
    frames = frames_with_failures
    context = build_context(frames)
    curve = next(c for c in _section(context, "cnn2d")["curves"] if c["norm_label"] == "batch" and c["batch_size"] == 4)
    points = frames.curves[frames.curves.run_id.str.startswith("cnn2d-batch-4-")]
    grid = points.pivot(index="run_id", columns="step", values="test_accuracy").reindex(columns=curve["step"])
    grid = grid.to_numpy() * 100
    diverged_row = 1  # cnn2d-batch-4-1 diverged: recorded 3 points, the last NaN
    assert np.isnan(grid[diverged_row, 2:]).all() and np.isfinite(grid[diverged_row, :2]).all()
    grid[diverged_row, 2:] = 0.0
    assert curve["step"] == [0, 50, 100, 150, 200]
    assert curve["n"] == [3] * 5
    assert curve["mean"] == pytest.approx(grid.mean(axis=0).tolist())
    for j in range(5):
        low, high = sps.t.interval(0.95, 2, loc=grid[:, j].mean(), scale=sps.sem(grid[:, j]))
        assert (curve["low"][j], curve["high"][j]) == pytest.approx((low, high))


def test_context_is_deterministic(frames_with_failures):
    first = json.dumps(json_safe(build_context(frames_with_failures, rng_seed=4)))
    assert first == json.dumps(json_safe(build_context(frames_with_failures, rng_seed=4)))


def test_settings_that_vary_split_sections_but_batch_size_rules_do_not(frames_factory):
    frames = frames_factory(seeds=(0, 1, 2))
    # lr that follows the batch size (linear scaling) is part of the batch size: one section
    frames.runs["lr"] = frames.runs["batch_size"] * 0.001
    assert len(build_context(frames)["sections"]) == 1
    # two learning rates at the same batch size are different experiments: two sections
    other = frames_factory(seeds=(0, 1, 2))
    other.runs["run_id"] += "-lr"
    other.curves["run_id"] += "-lr"
    other.runs["lr"] = 0.5
    merged = ResultFrames(runs=pd.concat([frames_factory().runs, other.runs], ignore_index=True),
                          curves=pd.concat([frames_factory().curves, other.curves], ignore_index=True))
    sections = build_context(merged)["sections"]
    assert [s["title"] for s in sections] == ["cnn2d on digits, lr = 0.05", "cnn2d on digits, lr = 0.5"]
    assert [len(s["summaries"]) for s in sections] == [6, 6]
    assert all(c["n"] == 3 for s in sections for c in s["summaries"])


def test_missing_reference_and_empty_frames(frames_factory):
    context = build_context(frames_factory(labels=("layer", "group(num_groups=4)")))
    family = context["sections"][0]["comparisons"][0]
    assert family["rows"] == [] and "no BN runs" in family["note"]
    empty = build_context(ResultFrames.empty())
    assert empty["sections"] == [] and empty["outcomes"]["total"] == 0 and empty["verdicts"] == []


def test_single_seed_cells_are_not_testable(frames_factory):
    context = build_context(frames_factory(seeds=(0,)))
    cell = context["sections"][0]["summaries"][0]
    assert cell["n"] == 1 and math.isnan(cell["ci_low"]) and cell["ci_method"] == "none"
    row = context["sections"][0]["comparisons"][0]["rows"][0]
    assert math.isnan(row["p_value"]) and math.isnan(row["p_holm"]) and not row["significant"]
    assert "not testable" in row["verdict"]


def test_missing_columns_are_named(frames_factory):
    frames = frames_factory()
    frames.runs = frames.runs.drop(columns=["seed"])
    with pytest.raises(ValueError, match="seed"):
        build_context(frames)


def test_other_kinds_are_noted_not_mixed_in(frames_factory):
    frames = frames_factory()
    extra = frames.runs.iloc[:2].copy()
    extra["run_id"] += "-x"
    extra["kind"] = "calibration"
    extra["final_test_accuracy"] = None
    frames.runs = pd.concat([frames.runs, extra], ignore_index=True)
    context = build_context(frames)
    assert context["outcomes"]["total"] == 20
    assert sum(c["n_runs"] for c in context["sections"][0]["summaries"]) == 18
    notes = [w["message"] for w in context["warnings"] if w["kind"] == "note"]
    assert [m for m in notes if "calibration" in m] == ["runs of kind calibration are not part of this report yet"]
    assert not [w for w in context["warnings"] if w["kind"] == "run"]
    assert context["throughput"] is None  # no throughput runs: no throughput section at all


def _throughput_frame():
    """Rows as the throughput runner stores them (normbench.frames.THROUGHPUT_COLUMNS)."""
    from normbench.frames import THROUGHPUT_COLUMNS

    def row(**values):
        base = {c: None for c in THROUGHPUT_COLUMNS}
        base.update(suite="throughput", dtype="float32", memory_format="contiguous", device="cpu", threads=2,
                    method="blocked", outcome="completed", reason="", n_samples=20, noisy=False, variant="",
                    mode="train", norm_options="{}", options="{}")
        base.update(values)
        return base

    return pd.DataFrame([
        row(spec_id="a", subject="layer", name="batch", norm="batch", norm_label="batch", shape="[32, 64, 32, 32]",
            batch_size=32, operation="forward_backward", median_s=0.004, iqr_over_median=0.02, achieved_gbps=12.0,
            roofline_fraction=0.4, peak_memory_bytes=8_000_000),
        row(spec_id="b", subject="layer", name="group", norm="group", norm_label="group(num_groups=8)",
            shape="[32, 64, 32, 32]", batch_size=32, operation="forward_backward", median_s=0.006,
            iqr_over_median=0.25, noisy=True, achieved_gbps=8.0, roofline_fraction=0.27),
        row(spec_id="c", subject="model", name="mlp", label="mlp", norm="batch", norm_label="batch", shape="[64, 784]",
            batch_size=64, operation="train_step", median_s=0.002, iqr_over_median=0.03, items_per_s=32000.0),
        row(spec_id="d", subject="conv_bn", name="conv_bn", label="conv3x3", shape="[32, 64, 32, 32]", batch_size=32,
            mode="eval", operation="inference", variant="unfolded", median_s=0.010),
        row(spec_id="e", subject="conv_bn", name="conv_bn", label="conv3x3", shape="[32, 64, 32, 32]", batch_size=32,
            mode="eval", operation="inference", variant="folded", median_s=0.008),
        row(spec_id="f", subject="layer", name="batch", norm="batch", norm_label="batch", shape="[32, 64, 32, 32]",
            batch_size=32, device="cuda", operation="forward", outcome="skipped", reason="CUDA is not available"),
    ])


def test_throughput_measurements_make_their_own_section(frames_factory):
    frames = frames_factory()
    assert build_context(frames)["throughput"] is None
    frames.throughput = _throughput_frame()
    context = build_context(frames)
    throughput = context["throughput"]
    assert (throughput["n_measured"], throughput["n_completed"], throughput["devices"]) == (6, 5, ["cpu"])
    assert [r["norm_name"] for r in throughput["layers"]] == ["BN", "GN(num_groups=8)"]
    assert throughput["layers"][0]["shape"] == [32, 64, 32, 32] and throughput["layers"][0]["median_ms"] == 4.0
    assert [r["items_per_s"] for r in throughput["models"]] == [32000.0]
    assert throughput["folding"] == [{"label": "conv3x3", "shape": [32, 64, 32, 32], "dtype": "float32",
                                      "memory_format": "contiguous", "device": "cpu", "threads": 2.0, "folded_ms": 8.0,
                                      "unfolded_ms": 10.0, "speedup": pytest.approx(1.25)}]
    notes = [w["message"] for w in context["warnings"] if w["kind"] == "note"]
    noisy = [m for m in notes if m.startswith("noisy timing on cpu: 1 of 5 measurements")]
    assert len(noisy) == 1 and "GN(num_groups=8) 32x64x32x32 float32 train forward_backward 2 thr: IQR is 25 %" in noisy[0]
    # The chart shows one comparable slice: float32, contiguous, train, forward_backward, most threads.
    assert [r["norm_name"] for r in throughput["chart_layers"]] == ["BN", "GN(num_groups=8)"]
    assert throughput["chart_selection"] == "float32, contiguous, train, forward_backward, 2 thread(s)"
    assert any(m.startswith("throughput skipped") and "CUDA is not available" in m for m in notes)
    assert sum(c["n_runs"] for c in context["sections"][0]["summaries"]) == 18  # never mixed into accuracy
    html = render(context, "html")
    assert 'id="throughput-layers"' in html and 'id="throughput-models"' in html and "1.25×" in html
    assert 'id="verdicts"' in html  # training runs present: their sections stay
    only_throughput = frames_factory()
    only_throughput.runs = only_throughput.runs.iloc[0:0]
    only_throughput.curves = only_throughput.curves.iloc[0:0]
    only_throughput.throughput = _throughput_frame()
    html = render(build_context(only_throughput), "html")
    assert 'id="verdicts"' not in html and "6 measurements" in html and 'id="throughput"' in html
    assert "| conv + BN case |" in render(context, "md")


def test_duplicate_seeds_use_the_first_run_and_say_so(frames_factory):
    frames = frames_factory()
    duplicate = frames.runs.iloc[[0]].copy()
    duplicate["run_id"] = "zzz-duplicate"
    duplicate["final_test_accuracy"] = 0.1
    frames.runs = pd.concat([frames.runs, duplicate], ignore_index=True)
    context = build_context(frames)
    cell = context["sections"][0]["summaries"][0]
    assert cell["n"] == 3 and cell["n_runs"] == 4 and 10.0 not in cell["values"]
    assert any("appear more than once" in w.get("message", "") for w in context["warnings"])

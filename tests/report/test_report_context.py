"""build_context on synthetic ResultFrames: every number recomputed here with NumPy/scipy."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from normbench.analysis import json_safe
from normbench.frames import ResultFrames
from normbench.report import render
from normbench.report.context import build_context

TOP_LEVEL_KEYS = {"context_version", "rng_seed", "alpha", "suite", "environment", "outcomes", "warnings",
                  "methods", "verdicts", "norms", "sections", "power", "throughput", "analysis", "family", "reference"}


def _values(frames: ResultFrames, model: str, label: str, batch_size: int) -> tuple[list[int], np.ndarray]:
    """Independent reading of the default policy (diverged_as: exclude): completed -> accuracy x 100, rest excluded."""
    runs = frames.runs
    cell = runs[(runs.model == model) & (runs.norm_label == label) & (runs.batch_size == batch_size)]
    cell = cell[cell.outcome == "completed"].sort_values("seed")
    return cell.seed.astype(int).tolist(), cell.final_test_accuracy.astype(float).to_numpy() * 100


def _family_by_hand(context) -> dict:
    """Every hypothesis of the report, keyed independently of normbench.family, with its raw p-value."""
    hypotheses = {}
    for section in context["sections"]:
        sid = section["id"]
        rows = [r for f in section["comparisons"] for r in f["rows"]]
        rows += [r for c in section["glance"]["columns"] for r in c["rows"]]
        for r in rows:
            pair = (sid, r["batch_size"], frozenset((r["norm_label"], r["reference_label"])))
            hypotheses[pair + ("difference",)] = r["p_value"]
            hypotheses[pair + ("equivalence",)] = r["equivalence_p"]
        for r in section["divergence"]["rows"]:
            if r["comparison"]:
                key = (sid, r["batch_size"], frozenset((r["norm_label"], r["comparison"]["against"])), "divergence")
                hypotheses[key] = r["comparison"]["p_value"]
        for c in section["glance"]["columns"]:
            for r in c["divergence"]:
                hypotheses[(sid, c["batch_size"], frozenset((r["norm_label"], c["top"])), "divergence")] = r["p_value"]
        for e in section["batch_failure"]:
            for d in e["drops"]:
                if d["tested"]:
                    hypotheses[(sid, e["norm_label"], d["batch_size"], "drop")] = d["p_value"]
        hypotheses[(sid, "ranking")] = section["ranking"]["p_value"]
    return {k: p for k, p in hypotheses.items() if p is not None and math.isfinite(p)}


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
    assert run_warnings["diverged"]["effect"] == "excluded from accuracy statistics, counted in the divergence rate"
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
            if len(x) >= 2:
                low, high = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
                assert (cell["ci_low"], cell["ci_high"], cell["ci_method"]) == (
                    pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12), "t")
            else:
                assert cell["ci_method"] == "none" and math.isnan(cell["ci_low"])
            checked += 1
    assert checked == 12


def test_diverged_runs_are_excluded_and_counted_by_default(frames_with_failures):
    context = build_context(frames_with_failures)
    cnn = {(c["norm_label"], c["batch_size"]): c for c in _section(context, "cnn2d")["summaries"]}
    bn4 = cnn[("batch", 4)]
    assert (bn4["seeds"], bn4["n"], bn4["n_diverged"], bn4["n_excluded"], bn4["diverged_seeds"]) == ([0, 2], 2, 1, 1, [1])
    assert bn4["divergence"]["diverged"] == 1 and bn4["divergence"]["total"] == 3
    low, high = sps.binomtest(1, 3).proportion_ci(method="exact")
    assert (bn4["divergence"]["ci_low"], bn4["divergence"]["ci_high"]) == pytest.approx((low, high))
    mlp = {(c["norm_label"], c["batch_size"]): c for c in _section(context, "mlp")["summaries"]}
    assert (mlp[("batch", 4)]["n"], mlp[("batch", 4)]["n_excluded"], mlp[("batch", 4)]["seeds"]) == (2, 1, [0, 1])
    assert mlp[("layer", 64)]["seeds"] == [1, 2]
    assert mlp[("group(num_groups=4)", 64)]["seeds"] == [0, 2]


def test_diverged_as_zero_is_read_from_the_stored_suite(frames_with_failures):
    frames_with_failures.suite_yaml += "analysis: {diverged_as: zero}\n"
    context = build_context(frames_with_failures)
    assert context["analysis"]["diverged_as"] == "zero" and context["analysis"]["source"] == "suite"
    bn4 = next(c for c in _section(context, "cnn2d")["summaries"] if (c["norm_label"], c["batch_size"]) == ("batch", 4))
    assert bn4["seeds"] == [0, 1, 2] and bn4["values"][1] == 0.0 and bn4["n_excluded"] == 0
    assert any("diverged_as zero" in m for m in context["methods"])


def test_comparisons_equal_scipy_and_one_family_by_hand(frames_with_failures):
    from statsmodels.stats.weightstats import ttost_paired

    frames = frames_with_failures
    context = build_context(frames)
    # 2 models x 2 batch sizes x 2 norms against BN
    assert sum(len(family["rows"]) for section in context["sections"] for family in section["comparisons"]) == 8
    for section in context["sections"]:
        for family in section["comparisons"]:
            bs = family["batch_size"]
            ref_seeds, ref = _values(frames, section["model"], "batch", bs)
            for row in family["rows"]:
                seeds, x = _values(frames, section["model"], row["norm_label"], bs)
                common = sorted(set(seeds) & set(ref_seeds))
                a = np.array([x[seeds.index(s)] for s in common])
                b = np.array([ref[ref_seeds.index(s)] for s in common])
                assert row["seeds"] == common and row["n"] == len(common)
                assert row["n_unpaired"] == len(set(seeds) ^ set(ref_seeds))
                assert row["mean_difference"] == pytest.approx(np.mean(a - b), rel=1e-9, abs=1e-9)
                assert row["test"] == "paired t-test" and row["family"] == "verdicts"  # declared: no pre-test
                if len(common) >= 2 and np.ptp(a - b) < 1e-7:
                    # A constant difference (up to rounding): the t-test's limit, t infinite and p 0.
                    assert math.isinf(row["statistic"]) and row["p_value"] == 0.0 and math.isnan(row["effect_size"])
                elif len(common) >= 2:
                    expected = sps.ttest_rel(a, b)
                    assert row["statistic"] == pytest.approx(expected.statistic, rel=1e-6)
                    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
                    assert row["effect_size"] == pytest.approx(np.mean(a - b) / np.std(a - b, ddof=1), rel=1e-6)
                    assert row["equivalence_p"] == pytest.approx(ttost_paired(a, b, -1.0, 1.0)[0], rel=1e-6)
    # One family for the whole report: Holm by hand over every distinct hypothesis.
    hypotheses = _family_by_hand(context)
    keys = list(hypotheses)
    raw = [hypotheses[k] for k in keys]
    adjusted, running = {}, 0.0
    for i, index in enumerate(np.argsort(raw)):
        running = max(running, min(1.0, raw[index] * (len(raw) - i)))
        adjusted[keys[index]] = running
    assert context["family"]["size"] == len(keys)
    for section in context["sections"]:
        for family in section["comparisons"]:
            for row in family["rows"]:
                pair = (section["id"], family["batch_size"], frozenset((row["norm_label"], "batch")))
                if math.isfinite(row["p_value"]):
                    assert row["p_adjusted"] == pytest.approx(adjusted[pair + ("difference",)])
                    assert row["equivalence_p_adjusted"] == pytest.approx(adjusted[pair + ("equivalence",)])
        for entry in section["batch_failure"]:
            for drop in (d for d in entry["drops"] if d["tested"]):
                assert drop["p_adjusted"] == pytest.approx(adjusted[(section["id"], entry["norm_label"],
                                                                     drop["batch_size"], "drop")])


def test_significant_verdict_in_plain_words(frames_factory):
    frames = frames_factory(seeds=(0, 1, 2, 3, 4), noise_seed=3)
    context = build_context(frames)
    family = _section(context, "cnn2d")["comparisons"][0]
    gn = next(r for r in family["rows"] if r["norm_label"] == "group(num_groups=4)")
    assert gn["direction"] == "better" and gn["p_adjusted"] < 0.05 and gn["mean_difference"] > 0
    p_text = "< 0.001" if gn["p_adjusted"] < 0.001 else f"= {gn['p_adjusted']:.3f}"
    assert gn["verdict"] == (f"GN(num_groups=4) beats BN at batch size 4 (cnn2d on digits): "
                             f"+{gn['mean_difference']:.1f} points [95 % CI +{gn['ci_low']:.1f}, +{gn['ci_high']:.1f}], "
                             f"p_adj {p_text}, d_z = {gn['effect_size']:.2f}, n = 5")
    assert gn["verdict"] in [v["text"] for v in context["verdicts"]]
    inconclusive = [r for f in _section(context, "cnn2d")["comparisons"] for r in f["rows"]
                    if r["direction"] == "inconclusive"]
    assert inconclusive
    m = context["family"]["size"]
    for r in inconclusive:
        assert "inconclusive" in r["verdict"] and "n = 5" in r["verdict"]
        # The detectable effect is the declared t-test's at the level the family's first step needs.
        assert r["level"] == pytest.approx(0.05 / m)
        assert f"{r['detectable']:.1f} points" in r["verdict"]
    summary = [v for v in context["verdicts"] if v["kind"] == "inconclusive"]
    assert len(summary) == 1 and summary[0]["direction"] == "inconclusive"


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
    assert family["rows"] == [] and "no batch runs" in family["note"]
    assert any("no runs of the declared reference norm 'batch'" in w.get("message", "")
               for w in build_context(frames_factory(labels=("layer", "group(num_groups=4)")))["warnings"])
    empty = build_context(ResultFrames.empty())
    assert empty["sections"] == [] and empty["outcomes"]["total"] == 0 and empty["verdicts"] == []


def test_single_seed_cells_are_not_testable(frames_factory):
    context = build_context(frames_factory(seeds=(0,)))
    cell = context["sections"][0]["summaries"][0]
    assert cell["n"] == 1 and math.isnan(cell["ci_low"]) and cell["ci_method"] == "none"
    row = context["sections"][0]["comparisons"][0]["rows"][0]
    assert math.isnan(row["p_value"]) and math.isnan(row["p_adjusted"]) and not row["significant"]
    assert row["direction"] == "inconclusive"
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


def test_declared_permutation_test_says_when_it_cannot_reach_the_level(frames_factory):
    frames = frames_factory(seeds=(0, 1, 2))
    frames.suite_yaml += "analysis: {test: permutation}\n"
    context = build_context(frames)
    rows = [r for f in context["sections"][0]["comparisons"] for r in f["rows"]]
    assert rows and all(r["test"] == "sign-flip permutation" and r["min_p"] == pytest.approx(0.25) for r in rows)
    assert all(r["cannot_reach"] and r["direction"] == "inconclusive" for r in rows)
    assert all("cannot reach the family's level" in r["verdict"] and "smallest possible p is 0.25" in r["verdict"]
               for r in rows)
    assert any("sign-flip permutation test" in m for m in context["methods"])


def test_declared_bca_intervals_are_used_with_their_caveat(frames_factory):
    frames = frames_factory(seeds=(0, 1, 2))
    frames.suite_yaml += "analysis: {interval: bca, correction: bh, margin: 2}\n"
    context = build_context(frames)
    cell = context["sections"][0]["summaries"][0]
    assert cell["ci_method"] == "BCa" and cell["ci_low"] < cell["mean"] < cell["ci_high"]
    assert any("undercover" in w.get("message", "") or "far less often" in w.get("message", "")
               for w in context["warnings"])
    assert context["family"]["correction"] == "bh" and context["power"]["margin"] == 2.0
    assert any("Benjamini-Hochberg" in m for m in context["methods"])


def test_labelled_model_variants_are_titled_by_their_label_alone(frames_factory):
    wide, narrow = frames_factory(seeds=(0, 1, 2)), frames_factory(seeds=(0, 1, 2))
    narrow.runs["run_id"] += "-narrow"
    narrow.curves["run_id"] += "-narrow"
    wide.runs["model_label"], narrow.runs["model_label"] = "wide", "narrow"
    wide.runs["model_options"], narrow.runs["model_options"] = '{"widths": [64]}', '{"widths": [8]}'
    merged = ResultFrames(runs=pd.concat([wide.runs, narrow.runs], ignore_index=True),
                          curves=pd.concat([wide.curves, narrow.curves], ignore_index=True))
    titles = sorted(s["title"] for s in build_context(merged)["sections"])
    assert titles == ["cnn2d on digits, model_label = narrow", "cnn2d on digits, model_label = wide"]
    # one label over two option sets: the options still split and still show
    narrow.runs["model_label"] = "wide"
    merged = ResultFrames(runs=pd.concat([wide.runs, narrow.runs], ignore_index=True),
                          curves=pd.concat([wide.curves, narrow.curves], ignore_index=True))
    assert all("model_options" in s["title"] for s in build_context(merged)["sections"])

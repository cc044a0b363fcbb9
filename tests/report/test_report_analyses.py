"""The report's new analyses recomputed independently from the frames: small-batch failure,
rankings, convergence (AUC, time to target), accuracy vs speed, power flags and the probe hook."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from normbench import stats
from normbench.report import build_context, render
from normbench.report.pareto import pareto_front

FAIL_BN = {("cnn2d", "batch", 4, s): ("diverged", "loss became nan") for s in (1, 3)}


@pytest.fixture(scope="module")
def frames(frames_factory):
    """Five seeds, two models; BN at batch size 4 diverges on two cnn2d seeds."""
    return frames_factory(models=("cnn2d", "mlp"), seeds=(0, 1, 2, 3, 4), outcomes=FAIL_BN, noise_seed=4)


@pytest.fixture(scope="module")
def context(frames):
    return build_context(frames, rng_seed=0)


def _values(frames, model, label, batch_size):
    runs = frames.runs
    cell = runs[(runs.model == model) & (runs.norm_label == label) & (runs.batch_size == batch_size)]
    cell = cell[cell.outcome.isin(["completed", "diverged"])].sort_values("seed")
    return dict(zip(cell.seed, np.where(cell.outcome == "diverged", 0.0, cell.final_test_accuracy.astype(float) * 100)))


def _section(context, model):
    return next(s for s in context["sections"] if s["model"] == model)


def test_batch_failure_matches_an_independent_one_sided_test(frames, context):
    for model in ("cnn2d", "mlp"):
        assert len(_section(context, model)["batch_failure"]) == 3  # one entry per norm
        for entry in _section(context, model)["batch_failure"]:
            small, large = _values(frames, model, entry["norm_label"], 4), _values(frames, model, entry["norm_label"], 64)
            seeds = sorted(set(small) & set(large))
            d = np.array([small[s] - large[s] for s in seeds])
            row = entry["rows"][0]
            assert entry["reference_batch_size"] == 64 and row["batch_size"] == 4 and row["n"] == len(seeds)
            if row["test"] == "paired t-test":
                assert sps.shapiro(d).pvalue >= 0.05
                assert row["p_value"] == pytest.approx(sps.ttest_1samp(d, 0, alternative="less").pvalue, rel=1e-6)
            else:
                assert row["p_value"] == pytest.approx(sps.wilcoxon(d, alternative="less").pvalue, rel=1e-6)
            assert row["p_holm"] == row["p_value"]  # one comparison per norm here: Holm changes nothing
            assert entry["critical_batch_size"] == (4 if row["p_value"] < 0.05 else None)
    bn = next(e for e in _section(context, "cnn2d")["batch_failure"] if e["norm_label"] == "batch")
    assert bn["critical_batch_size"] == 4  # 80 % with two diverged seeds vs 95 %
    assert bn["interval"] is not None and bn["interval"][0] <= 4 <= bn["interval"][1]
    assert any(v["kind"] == "batch_failure" and v["norm_label"] == "batch" for v in context["verdicts"])
    assert "BN fails at small batches (cnn2d on digits)" in bn["verdict"]


def test_overall_ranking_is_friedman_over_batch_size_seed_blocks(frames, context):
    for model in ("cnn2d", "mlp"):
        ranking = _section(context, model)["ranking"]["overall"]
        labels = ["batch", "layer", "group(num_groups=4)"]
        table = np.array([[_values(frames, model, lbl, b)[s] for lbl in labels] for b in (4, 64) for s in range(5)])
        reference = sps.friedmanchisquare(*table.T)
        assert ranking["n_blocks"] == 10 and ranking["k"] == 3
        assert (ranking["statistic"], ranking["p_value"]) == pytest.approx((reference.statistic, reference.pvalue))
        by_label = {n["norm_label"]: n["average_rank"] for n in ranking["norms"]}
        expected = sps.rankdata(-table, axis=1).mean(axis=0)
        assert [by_label[lbl] for lbl in labels] == pytest.approx(expected.tolist())
        # Nemenyi CD by hand: Demsar (2006) table 5a gives q_0.05 = 2.343 for k = 3; sqrt(3 * 4 / (6 * 10)) = 0.4472
        assert ranking["critical_difference"] == pytest.approx(2.343 * 0.4472, abs=1e-3)  # 1.048
        per_batch = _section(context, model)["ranking"]["by_batch_size"]
        assert [e["batch_size"] for e in per_batch] == [4, 64] and all(e["n_blocks"] == 5 for e in per_batch)


def test_ranking_leaves_out_a_norm_without_results(frames_factory):
    frames = frames_factory(seeds=(0, 1, 2, 3), outcomes={("cnn2d", "layer", b, s): ("undefined", "no spatial axis")
                                                         for b in (4, 64) for s in range(4)})
    ranking = build_context(frames)["sections"][0]["ranking"]["overall"]
    assert [x["norm_label"] for x in ranking["excluded"]] == ["layer"]
    assert ranking["k"] == 2 and math.isnan(ranking["p_value"])  # two norms: the paired tests decide


def test_convergence_auc_and_time_to_target_by_hand(frames, context):
    section = _section(context, "cnn2d")
    target = section["convergence"]["target"]
    best = max(c["mean"] for c in section["summaries"])
    assert target == pytest.approx(0.9 * best)
    curves = frames.curves
    assert len(section["convergence"]["cells"]) == 6  # 3 norms x 2 batch sizes
    for cell in section["convergence"]["cells"]:
        runs = frames.runs[(frames.runs.model == "cnn2d") & (frames.runs.norm_label == cell["norm_label"])
                           & (frames.runs.batch_size == cell["batch_size"])].sort_values("seed")
        aucs, times, reached = [], [], []
        for run in runs.itertuples():
            points = curves[curves.run_id == run.run_id].sort_values("step")
            steps = points.step.to_numpy(float)
            acc = points.test_accuracy.to_numpy(float) * 100
            if run.outcome == "diverged":
                acc = np.where(np.isfinite(acc), acc, 0.0)
            aucs.append(np.trapezoid(acc, steps) / (steps[-1] - steps[0]))
            hit = np.flatnonzero(acc >= target)
            reached.append(hit.size > 0)
            times.append(steps[hit[0]] if hit.size else 200.0)
        assert cell["auc"]["mean"] == pytest.approx(np.mean(aucs))
        low, high = sps.t.interval(0.95, len(aucs) - 1, loc=np.mean(aucs), scale=sps.sem(aucs))
        assert (cell["auc"]["ci_low"], cell["auc"]["ci_high"]) == pytest.approx((low, high))
        assert cell["n_reached"] == sum(reached)
        km = stats.kaplan_meier(times, reached)
        if math.isnan(km.median):
            assert cell["median_steps"] is None or math.isnan(cell["median_steps"])
        else:
            assert cell["median_steps"] == km.median


def test_pareto_points_and_front(frames, context):
    pareto = _section(context, "mlp")["pareto"]
    runs = frames.runs[frames.runs.model == "mlp"]
    assert len(pareto["points"]) == 6  # 3 norms x 2 batch sizes
    for point in pareto["points"]:
        cell = runs[(runs.norm_label == point["norm_label"]) & (runs.batch_size == point["batch_size"])]
        assert point["samples_per_s"] == pytest.approx(cell.samples_per_s.median())
        dominated = any(q["samples_per_s"] >= point["samples_per_s"] and q["accuracy"] >= point["accuracy"]
                        and (q["samples_per_s"], q["accuracy"]) != (point["samples_per_s"], point["accuracy"])
                        for q in pareto["points"])
        assert point["on_front"] == (not dominated)
    assert pareto_front([1, 2, 3, 2], [3, 2, 1, 1]).tolist() == [True, True, True, False]
    assert pareto_front([1, np.nan], [1, 5]).tolist() == [True, False]


def test_power_fields_match_stats(context):
    # 2 models x 2 batch sizes x 2 norms against BN
    assert sum(len(family["rows"]) for section in context["sections"] for family in section["comparisons"]) == 8
    for section in context["sections"]:
        for family in section["comparisons"]:
            for row in family["rows"]:
                power = stats.detectable_difference(row["n"], row["sd_difference"], row["test"], relevant=1.0)
                assert row["mde"] == power["mde"] or (math.isnan(row["mde"]) and math.isnan(power["mde"]))
                assert row["underpowered"] == (row["test"] != "none" and not row["significant"]
                                               and not power["mde"] <= 1.0)


def test_underpowered_three_seed_comparisons_get_one_warning_per_section(frames_factory):
    context = build_context(frames_factory(seeds=(0, 1, 2)))
    notes = [w["message"] for w in context["warnings"] if "underpowered" in w.get("message", "")]
    rows = [r for f in context["sections"][0]["comparisons"] for r in f["rows"]]
    assert len(rows) == 4 and any(r["underpowered"] for r in rows)
    assert len(notes) == 1 and notes[0].startswith("cnn2d on digits:")
    assert "underpowered" in render(context, "md")


def test_probe_hook_renders_nothing_without_probes_and_summarizes_real_rows(frames_factory):
    frames = frames_factory(seeds=(0, 1, 2))
    context = build_context(frames)
    assert context["sections"][0]["probes"] == []
    html = render(context, "html")
    assert "-probes" not in html
    # Rows in the shape normbench.probes.ProbeRecorder records: (run_id, step, probe, key, value).
    rows = [(run_id, step, "percentiles", key, float(value + step))
            for run_id in frames.runs.run_id for step in (0, 100, 200)
            for key, value in (("p15", -1.0), ("p50", 0.0), ("p85", 1.0))]
    frames.probes = pd.DataFrame(rows, columns=["run_id", "step", "probe", "key", "value"])
    probes = build_context(frames)["sections"][0]["probes"]
    assert [p["probe"] for p in probes] == ["percentiles"] and probes[0]["keys"] == ["p15", "p50", "p85"]
    curve = next(c for c in probes[0]["curves"] if c["key"] == "p50" and c["batch_size"] == 4)
    assert curve["step"] == [0, 100, 200] and curve["mean"] == pytest.approx([0.0, 100.0, 200.0])
    assert curve["n"] == [3, 3, 3]
    assert 'id="section-1-probes"' in render(build_context(frames), "html")


def test_html_has_every_section_and_markdown_the_new_tables(context):
    html = render(context, "html")
    for anchor in ("verdicts", "warnings", "methods", "reproduce"):
        assert f'id="{anchor}"' in html
    assert len(context["sections"]) == 2
    for section in context["sections"]:
        for part in ("small-batch", "accuracy", "comparisons", "ranking", "convergence", "speed"):
            assert f'id="{section["id"]}-{part}"' in html
    assert 'id="throughput"' not in html  # no throughput runs, no section
    md = render(context, "md")
    for header in ("| norm | reference batch | critical batch size |", "| blocks | norms | n blocks | Friedman chi2 |",
                   "| norm | batch size | AUC (mean %) |", "### Accuracy vs speed: Pareto front"):
        assert header in md

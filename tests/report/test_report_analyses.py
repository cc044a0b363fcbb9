"""The report's analyses recomputed independently from the frames: small-batch failure (drop beyond the
margin), rankings over seed blocks, convergence (AUC, time to target), accuracy vs speed, power at the
family's level and the probe hook."""

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
    """Default policy (diverged_as: exclude): completed runs only, in percent."""
    runs = frames.runs
    cell = runs[(runs.model == model) & (runs.norm_label == label) & (runs.batch_size == batch_size)]
    cell = cell[cell.outcome == "completed"].sort_values("seed")
    return dict(zip(cell.seed, cell.final_test_accuracy.astype(float) * 100))


def _section(context, model):
    return next(s for s in context["sections"] if s["model"] == model)


def test_batch_failure_is_a_one_sided_test_of_drop_beyond_the_margin(frames, context):
    for model in ("cnn2d", "mlp"):
        assert len(_section(context, model)["batch_failure"]) == 3  # one entry per norm
        for entry in _section(context, model)["batch_failure"]:
            small, large = _values(frames, model, entry["norm_label"], 4), _values(frames, model, entry["norm_label"], 64)
            seeds = sorted(set(small) & set(large))
            drops = np.array([large[s] - small[s] for s in seeds])  # reference (64) minus batch 4, per seed
            row = entry["drops"][0]
            assert entry["reference_batch_size"] == 64 and row["batch_size"] == 4 and row["n"] == len(seeds)
            assert row["drop"] == pytest.approx(drops.mean())
            expected = sps.ttest_1samp(drops - 1.0, 0.0, alternative="greater").pvalue  # H0: drop <= 1 point
            assert row["p_value"] == pytest.approx(expected, rel=1e-6)
            low, high = sps.t.interval(0.95, len(seeds) - 1, loc=drops.mean(), scale=sps.sem(drops))
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
            assert row["p_adjusted"] >= row["p_value"]  # one family for the whole report
            assert entry["critical_batch_size"] == (4 if row["p_adjusted"] < 0.05 else None)
    bn = next(e for e in _section(context, "cnn2d")["batch_failure"] if e["norm_label"] == "batch")
    # Two diverged seeds excluded: 15 points on 3 seeds do not clear the whole report's family (Holm, m = 32).
    assert bn["drops"][0]["n"] == 3 and bn["drops"][0]["drop"] > 10 and context["family"]["size"] == 32
    assert bn["critical_batch_size"] is None and bn["drops"][0]["p_value"] < 0.05 <= bn["drops"][0]["p_adjusted"]
    assert math.isnan(bn["replication_frequency"]) and "replication needs 5" in bn["replication_note"]
    mlp_bn = next(e for e in _section(context, "mlp")["batch_failure"] if e["norm_label"] == "batch")
    assert mlp_bn["critical_batch_size"] == 4 and mlp_bn["n_resamples"] == 1000
    assert 0.5 < mlp_bn["replication_frequency"] <= 1
    assert any(v["kind"] == "batch_failure" and v["norm_label"] == "batch" for v in context["verdicts"])
    assert "BN fails at small batches (mlp on digits): critical batch size 4" in mlp_bn["verdict"]


def test_ranking_is_friedman_over_one_block_per_seed(frames, context):
    labels = ["batch", "layer", "group(num_groups=4)"]
    for model in ("cnn2d", "mlp"):
        ranking = _section(context, model)["ranking"]
        blocks = []
        for seed in range(5):
            ranks = []
            for b in (4, 64):
                row = [_values(frames, model, lbl, b).get(seed, np.nan) for lbl in labels]
                if not np.isnan(row).any():  # a batch size where a norm diverged leaves that seed's block
                    ranks.append(sps.rankdata(-np.array(row)))
            blocks.append(np.mean(ranks, axis=0))
        table = -np.array(blocks)
        reference = sps.friedmanchisquare(*table.T)
        assert ranking["n_blocks"] == 5 and ranking["k"] == 3 and ranking["blocks"] == "seed"
        assert (ranking["statistic"], ranking["p_value"]) == pytest.approx((reference.statistic, reference.pvalue))
        by_label = {n["norm_label"]: n["average_rank"] for n in ranking["norms"]}
        assert [by_label[lbl] for lbl in labels] == pytest.approx(sps.rankdata(-table, axis=1).mean(axis=0).tolist())
        # Nemenyi CD by hand: Demsar (2006) table 5a gives q_0.05 = 2.343 for k = 3; 5 seed blocks:
        # sqrt(3 * 4 / (6 * 5)) = 0.6325
        assert ranking["critical_difference"] == pytest.approx(2.343 * 0.6325, abs=1e-3)  # 1.482
        # Pairs and cliques follow the family-adjusted omnibus test.
        assert ranking["omnibus_rejects"] == (ranking["p_adjusted"] < 0.05)
        if not ranking["omnibus_rejects"]:
            assert not any(p["significant"] for p in ranking["pairs"]) and len(ranking["cliques"]) == 1


def test_ranking_leaves_out_a_norm_without_results(frames_factory):
    frames = frames_factory(seeds=(0, 1, 2, 3), outcomes={("cnn2d", "layer", b, s): ("undefined", "no spatial axis")
                                                         for b in (4, 64) for s in range(4)})
    ranking = build_context(frames)["sections"][0]["ranking"]
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


def test_power_fields_match_stats_at_the_family_level(context):
    level = 0.05 / context["family"]["size"]
    for section in context["sections"]:
        for family in section["comparisons"]:
            for row in family["rows"]:
                expected = stats.smallest_detectable_effect(row["n"], row["sd_difference"], alpha=level, power=0.8)
                assert row["level"] == pytest.approx(level)
                assert row["detectable"] == pytest.approx(expected, nan_ok=True)


def test_inconclusive_three_seed_comparisons_get_one_summary_per_section(frames_factory):
    context = build_context(frames_factory(seeds=(0, 1, 2)))
    rows = [r for f in context["sections"][0]["comparisons"] for r in f["rows"]]
    summaries = [v for v in context["verdicts"] if v["kind"] == "inconclusive"]
    if any(r["direction"] == "inconclusive" for r in rows):
        assert len(summaries) == 1 and summaries[0]["text"].split(" are inconclusive")[0].endswith("with BN")
        assert "(cnn2d on digits)" in summaries[0]["text"]
    assert "inconclusive" in render(context, "md")


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
    for anchor in ("glance", "verdicts", "warnings", "methods", "reproduce"):
        assert f'id="{anchor}"' in html
    assert len(context["sections"]) == 2
    for section in context["sections"]:
        for part in ("small-batch", "accuracy", "comparisons", "ranking", "convergence", "speed"):
            assert f'id="{section["id"]}-{part}"' in html
    assert 'id="throughput"' not in html  # no throughput runs, no section
    md = render(context, "md")
    for header in ("| norm | reference batch size | critical batch size | replication frequency |",
                   "| blocks | norms | n blocks | Friedman chi2 | p | p_adj |",
                   "| norm | batch size | AUC (mean %) |", "### Accuracy vs speed: Pareto front"):
        assert header in md


def test_the_reference_norm_is_the_plain_row_when_a_labelled_variant_of_it_sorts_first():
    # small_batch has `batch` and {name: batch, label: "BN, inference weight 0.5"}; the variant's label
    # sorts first, and the declared reference `batch` must still name the plain row.
    from normbench.report.sections import reference_label_of

    labels = [("batch", "BN, inference weight 0.5"), ("batch", "batch"), ("layer", "layer")]
    assert reference_label_of(labels, "batch") == "batch"
    assert reference_label_of(labels, "BN") == "batch"
    assert reference_label_of(labels, "bn, inference weight 0.5") == "BN, inference weight 0.5"
    # With only a labelled row, the norm name still finds it; an absent norm finds nothing.
    assert reference_label_of([("batch", "BN (ours)")], "batch") == "BN (ours)"
    assert reference_label_of(labels, "group") is None

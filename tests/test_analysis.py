"""normbench.analysis: the rules report and compare share, checked against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from normbench import analysis


def _runs(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["run_id", "seed", "outcome", "final_test_accuracy", "samples_per_s"])


def test_accuracy_values_follow_the_outcome_policy():
    runs = _runs(("a", 0, "completed", 0.9, 1.0), ("b", 1, "completed", None, 1.0), ("c", 2, "diverged", 0.5, 1.0),
                 ("d", 3, "undefined", 0.8, 1.0), ("e", 4, "failed", None, 1.0), ("f", 5, "skipped", 0.7, 1.0))
    values = analysis.accuracy_values(runs)  # default diverged_as: exclude
    assert values[0] == pytest.approx(90.0)
    assert np.isnan(values[1:]).all()
    assert analysis.accuracy_values(runs, "zero")[2] == 0.0 and np.isnan(analysis.accuracy_values(runs, "zero")[3])
    assert np.isnan(analysis.accuracy_values(runs, "worst_rank")[2])  # worst_rank acts on rankings only
    assert analysis.value_note("completed", 0.9) == ""
    assert "excluded" in analysis.value_note("completed", None)
    assert analysis.value_note("diverged", math.nan) == "excluded from accuracy statistics, counted in the divergence rate"
    assert analysis.value_note("diverged", math.nan, "zero") == "counted as 0 % accuracy"
    assert "ranked last" in analysis.value_note("diverged", math.nan, "worst_rank")
    assert analysis.value_note("failed", 0.9) == "excluded from statistics"


def test_accuracy_by_seed_keeps_the_first_contributing_run_of_each_seed():
    runs = _runs(("r3", 7, "completed", 0.70, 1.0), ("r1", 7, "completed", 0.60, 1.0),  # r1 is first by run id
                 ("r0", 9, "undefined", 0.95, 1.0), ("r2", 9, "diverged", None, 1.0), ("r4", 2, "completed", 0.5, 1.0))
    by_seed = analysis.accuracy_by_seed(runs)
    assert by_seed == {7: pytest.approx(60.0), 2: pytest.approx(50.0)}  # seed 9 diverged: excluded
    assert analysis.accuracy_by_seed(runs, "zero") == {7: pytest.approx(60.0), 9: 0.0, 2: pytest.approx(50.0)}
    assert list(analysis.accuracy_by_seed(runs, "zero")) == [7, 9, 2]  # run-id order of the runs kept: r1, r2, r4
    assert analysis.diverged_seeds(runs) == [9]
    # Seed 9's undefined run contributes nothing, so only seed 7 is repeated.
    assert analysis.repeated_seeds(runs) == [7]
    assert analysis.count_outcome(runs, "completed") == 3


def test_training_speeds_count_completed_and_diverged_runs_with_a_finite_speed():
    runs = _runs(("a", 0, "completed", 0.9, 100.0), ("b", 1, "diverged", None, 50.0), ("c", 2, "failed", None, 70.0),
                 ("d", 3, "completed", 0.9, math.inf), ("e", 4, "completed", 0.9, None))
    speeds = analysis.training_speeds(runs)
    assert speeds.iloc[:2].tolist() == [100.0, 50.0] and speeds.iloc[2:].isna().all()


def test_aligned_by_seed_pairs_common_seeds_in_ascending_order():
    seeds, a, b = analysis.aligned_by_seed({3: 30.0, 1: 10.0, 2: 20.0}, {5: 0.5, 3: 0.3, 1: 0.1})
    assert (seeds, a, b) == ([1, 3], [10.0, 30.0], [0.1, 0.3])


def test_comparison_row_is_the_declared_paired_test_with_tost():
    from scipy import stats as sps
    from statsmodels.stats.weightstats import ttost_paired

    from normbench.analysis_config import AnalysisConfig

    a, b = [91.0, 92.5, 90.0, 93.0, 91.5], [90.0, 92.0, 90.5, 91.5, 91.0]
    row = analysis.comparison_row(a, b, AnalysisConfig())
    d = np.subtract(a, b)
    assert row["test"] == "paired t-test" and row["n"] == 5
    assert (row["statistic"], row["p_value"]) == pytest.approx(tuple(sps.ttest_rel(a, b)))
    assert row["mean_difference"] == pytest.approx(d.mean()) and row["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert row["equivalence_p"] == pytest.approx(ttost_paired(np.array(a), np.array(b), -1.0, 1.0)[0])
    low, high = sps.t.interval(0.95, 4, loc=d.mean(), scale=sps.sem(d))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    assert row["share_of_seeds_better"] == pytest.approx(0.8)  # 4 of 5 seeds better
    assert row["direction"] == "inconclusive" and math.isnan(row["p_adjusted"])  # until the family is adjusted
    permutation = analysis.comparison_row(a, b, AnalysisConfig(test="permutation"))
    assert permutation["test"] == "sign-flip permutation" and permutation["min_p"] == pytest.approx(2 / 2**5)


def test_significance_needs_a_finite_p_below_alpha():
    assert analysis.is_significant(0.049, 0.05) and not analysis.is_significant(0.05, 0.05)
    assert not analysis.is_significant(math.nan, 0.05)


def test_seeded_generators_depend_on_seed_and_identity_only():
    draw = analysis.seeded_generator(0, "cell").random(4)
    assert np.array_equal(draw, analysis.seeded_generator(0, "cell").random(4))
    assert not np.array_equal(draw, analysis.seeded_generator(1, "cell").random(4))
    assert not np.array_equal(draw, analysis.seeded_generator(0, "other cell").random(4))
    # A cell key is compared as text: the batch size 4 and the string "4" name the same cell.
    assert np.array_equal(analysis.cell_rng(0, "mlp", 4).random(3), analysis.cell_rng(0, "mlp", "4").random(3))


def test_p_values_and_detectable_differences_are_written_one_way():
    assert analysis.format_p(0.0123) == "= 0.012" and analysis.format_p(0.0004) == "< 0.001"
    assert analysis.format_p(math.nan) == "n/a" and analysis.format_p(None) == "n/a"
    assert analysis.format_p(0.0123, relation=False) == "0.012"
    assert analysis.format_p(math.inf, relation=False, missing="-") == "-"
    assert analysis.format_detectable(4.26) == "4.3" and analysis.format_detectable(math.inf) == "none"
    assert analysis.format_detectable(math.nan) == "n/a" and analysis.format_detectable(None, missing="-") == "-"


def test_plain_and_json_values():
    value = {1: (np.int64(3), np.float32("nan"), pd.NA), "x": [np.bool_(True), math.inf, pd.NaT]}
    plain = analysis.plain_value(value)
    assert plain == {"1": [3, None, None], "x": [True, math.inf, None]}
    assert type(plain["1"][0]) is int and type(plain["x"][0]) is bool
    assert analysis.json_safe(value) == {"1": [3, None, None], "x": [True, None, None]}
    assert analysis.plain_text(None) == "" and analysis.plain_text(math.nan) == "" and analysis.plain_text(3) == "3"
    assert analysis.finite_number("2.5") == 2.5
    assert all(math.isnan(analysis.finite_number(v)) for v in (None, "x", math.inf))
    assert analysis.is_training("training") and analysis.is_training(None) and analysis.is_training(math.nan)
    assert not analysis.is_training("throughput")

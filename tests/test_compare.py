"""`normbench compare` on synthetic result sets written through the real Store: noise passes, a real
accuracy drop, more divergence or a slowdown fails, unmatched cells are reported, a comparison of
nothing is not a pass, the gate states what it could detect, every format carries the numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats
from normbench.compare import DEFAULT_FAIL_ON, compare, parse_fail_on
from normbench.spec import CurvePoint
from normbench.store import Store, StoreError, store_path

N_TEST = 360  # digits' test split: accuracies are multiples of 1/360 as in real runs
NORMS = ("batch", "layer", "group")
BATCH_SIZES = (4, 64)


@pytest.fixture
def write_results(make_spec, make_result):
    """A writer of stores like the quick suite's; ``accuracy``/``step_time`` map (norm, batch size, seed) to values."""

    def write(out_dir, *, seeds=range(5), accuracy=None, step_time=None, noise_seed=0, cells=None, outcome=None):
        rng = np.random.default_rng(noise_seed)
        cells = cells or [(n, b) for n in NORMS for b in BATCH_SIZES]
        specs = [make_spec(suite="quick", norm=n, batch_size=b, seed=s, steps=100, eval_every=50)
                 for n, b in cells for s in seeds]
        with Store(store_path(out_dir)) as store:
            store.record_environment({"torch": "test"}, "now")
            store.record_suite("quick", "synthetic", "name: quick", "normbench run suites/quick.yaml",
                               [s.run_id for s in specs], "now")
            for spec in specs:
                key = (spec.norm, spec.batch_size, spec.seed)
                base = 0.90 + 0.01 * spec.seed  # seed effects shared by both sets: what pairing removes
                acc = (accuracy or {}).get(key, round((base + rng.normal(0, 0.003)) * N_TEST) / N_TEST)
                step = (step_time or {}).get(key, 0.002 * (1 + rng.normal(0, 0.01)))
                kind = (outcome or {}).get(key, "completed")
                store.write_run(make_result(
                    spec, outcome=kind, curve=[CurvePoint(100, 1.0, 100 * spec.batch_size, 0.1, 0.2, acc, 0.5)],
                    final_test_accuracy=acc if kind == "completed" else None, final_test_loss=0.2,
                    step_time_median_s=step, steps_done=100, wall_time_s=0.5))
        return out_dir

    return write


def test_identical_results_pass_with_zero_change(tmp_path, write_results):
    base = write_results(tmp_path / "base")
    new = write_results(tmp_path / "new")
    result = compare(base, new)
    assert not result.failed and result.failures == [] and not result.nothing_compared
    assert len(result.accuracy) == 6 + 1  # six cells and the pooled row
    for row in result.accuracy:
        # The declared paired t-test, one-sided (new below base): no difference at all gives p = 1.
        assert row["change"] == 0.0 and row["p_value"] == 1.0 and row["test"] == "paired t-test" and row["paired"]
    assert result.only_in_base == [] and result.only_in_new == []


def test_noise_only_change_passes(tmp_path, write_results):
    base = write_results(tmp_path / "base", noise_seed=1)
    new = write_results(tmp_path / "new", noise_seed=2)
    result = compare(base, new)
    assert not result.failed
    assert (len(result.accuracy), len(result.throughput)) == (6 + 1, 6)  # six cells (and the pooled accuracy row)
    assert all(not row["fails"] for row in result.accuracy + result.throughput)
    assert all(abs(row["change"]) < 1.0 for row in result.accuracy)


def test_real_five_point_drop_over_five_seeds_fails(tmp_path, write_results):
    base = write_results(tmp_path / "base", noise_seed=1)
    rng = np.random.default_rng(3)
    # LN at batch 4 loses 5 points on every seed (give or take 0.5): a real regression.
    drop = {("layer", 4, s): round((0.90 + 0.01 * s - 0.05 + rng.normal(0, 0.005)) * N_TEST) / N_TEST for s in range(5)}
    new = write_results(tmp_path / "new", noise_seed=1, accuracy=drop)
    result = compare(base, new)
    assert result.failed
    row = next(r for r in result.accuracy if r["cell"] and (r["cell"]["norm_label"], r["cell"]["batch_size"]) == ("layer", 4))
    assert row["fails"] and row["paired"] and row["n"] == 5 and row["change"] < -4
    # Independent check: the declared paired t-test, one-sided, on the same per-seed accuracies (no pre-test).
    diffs = np.array(row["differences"])
    assert row["test"] == "paired t-test"
    assert row["p_value"] == pytest.approx(sps.ttest_1samp(diffs, 0.0, alternative="less").pvalue, rel=1e-9)
    m = len(result.accuracy)
    assert row["p_adjusted"] <= min(1.0, m * row["p_value"]) + 1e-15 and row["family"] == "accuracy"
    assert any("layer/b4" in f for f in result.failures)
    # Only that cell fails (the pooled row may too: a 5-point drop in one of six cells is ~0.8 on average).
    assert {r["label"] for r in result.accuracy if r["fails"] and r["cell"]} == {row["label"]}


def test_small_significant_drop_within_threshold_passes(tmp_path, write_results):
    base = write_results(tmp_path / "base", noise_seed=1)
    # Every seed of GN at 64 exactly 1/360 (0.28 points) lower: a constant shift the t-test detects, but
    # within the 1-point threshold: significant, not a failure.
    same = write_results(tmp_path / "same", noise_seed=1)
    from normbench.store import load_frames

    frames = load_frames(same)
    lower = {("group", 64, int(r.seed)): r.final_test_accuracy - 1 / N_TEST
             for r in frames.runs.itertuples() if r.norm == "group" and r.batch_size == 64}
    new = write_results(tmp_path / "new", noise_seed=1, accuracy=lower)
    result = compare(base, new)
    row = next(r for r in result.accuracy if r["cell"] and (r["cell"]["norm_label"], r["cell"]["batch_size"]) == ("group", 64))
    assert row["change"] == pytest.approx(-100 / N_TEST) and not row["beyond_threshold"] and not row["fails"]
    assert row["significant"] and row["p_value"] == 0.0
    assert not result.failed


def test_big_slowdown_fails_and_small_jitter_does_not(tmp_path, write_results):
    base = write_results(tmp_path / "base", noise_seed=1)
    rng = np.random.default_rng(9)
    slow = {(n, b, s): 0.003 * (1 + rng.normal(0, 0.01)) for n in NORMS for b in BATCH_SIZES for s in range(5)
            if (n, b) == ("batch", 64)}
    new = write_results(tmp_path / "new", noise_seed=1, step_time=slow)
    result = compare(base, new)
    assert result.failed
    row = next(r for r in result.throughput if (r["cell"]["norm_label"], r["cell"]["batch_size"]) == ("batch", 64))
    assert row["fails"] and row["slowdown"] == pytest.approx(0.5, abs=0.05)
    assert row["ratio_low"] <= row["ratio"] <= row["ratio_high"] < 1
    # ratio of medians, independently: samples/s = batch size / step time
    assert row["ratio"] == pytest.approx(row["new_median"] / row["base_median"])
    # The declared speed test, Welch's t on log samples/s (no normality pre-test), against scipy on the stored speeds.
    reference = sps.ttest_ind(_log_speeds(new, "batch", 64), _log_speeds(base, "batch", 64), equal_var=False)
    assert row["test"] == "welch t-test on log samples/s"
    assert (row["statistic"], row["p_value"]) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-9)
    assert all(r["test"] == "welch t-test on log samples/s" for r in result.throughput)
    others = [r for r in result.throughput if r is not row]
    assert len(others) == 5
    assert not any(r["fails"] for r in others)
    assert all(abs(r["slowdown"]) < 0.05 for r in others)


def _log_speeds(out_dir, norm, batch_size):
    """log samples/s of one cell's runs, read back from the store."""
    from normbench.store import load_frames

    runs = load_frames(out_dir).runs
    cell = runs[(runs["norm"] == norm) & (runs["batch_size"] == batch_size)]
    return np.log(cell["samples_per_s"].to_numpy(dtype=float))


def test_unmatched_cells_are_reported_not_compared(tmp_path, write_results):
    base = write_results(tmp_path / "base", cells=[("batch", 4), ("layer", 4)])
    new = write_results(tmp_path / "new", cells=[("batch", 4), ("group", 4)])
    result = compare(base, new)
    assert [c["cell"]["norm_label"] for c in result.only_in_base] == ["layer"]
    assert [c["cell"]["norm_label"] for c in result.only_in_new] == ["group"]
    assert [r["cell"]["norm_label"] for r in result.accuracy] == ["batch"]  # one cell: no pooled row
    text = result.render("text")
    assert "only in base: mlp/digits/layer/b4/cpu" in text and "only in new: mlp/digits/group/b4/cpu" in text


def test_unpaired_seeds_use_the_declared_welch_test_one_sided(tmp_path, write_results):
    base = write_results(tmp_path / "base", seeds=range(0, 5), cells=[("batch", 4)])
    new = write_results(tmp_path / "new", seeds=range(10, 15), cells=[("batch", 4)])
    from normbench.store import load_frames

    before = load_frames(base).runs.final_test_accuracy.to_numpy() * 100
    after = load_frames(new).runs.final_test_accuracy.to_numpy() * 100
    row = compare(base, new).accuracy[0]
    assert not row["paired"] and row["test"] == "welch t-test" and row["n"] == 10
    expected = sps.ttest_ind(after, before, equal_var=False, alternative="less").pvalue
    assert row["p_value"] == pytest.approx(expected, rel=1e-9)


def test_diverged_runs_fail_through_the_divergence_metric(tmp_path, write_results):
    base = write_results(tmp_path / "base", cells=[("batch", 4)])
    new = write_results(tmp_path / "new", cells=[("batch", 4)], outcome={("batch", 4, s): "diverged" for s in range(5)})
    result = compare(base, new)
    # diverged_as: exclude - NEW has no accuracy to compare; its divergence rate is the regression.
    row = result.accuracy[0]
    assert math.isnan(row["new_mean"]) and row["n_diverged_new"] == 5 and not row["fails"]
    divergence = result.divergence[0]
    assert (divergence["diverged_new"], divergence["total_new"], divergence["diverged_base"]) == (5, 5, 0)
    assert divergence["p_value"] == pytest.approx(sps.fisher_exact([[5, 0], [0, 5]], alternative="greater").pvalue)
    assert divergence["fails"] and result.failed and any(f.startswith("divergence mlp/digits/batch/b4") for f in result.failures)


def test_a_constant_drop_is_caught_at_three_seeds(tmp_path, write_results):
    # Issue 11: every seed exactly 5 points lower passed as "wilcoxon, p_holm 1.000". The declared
    # t-test takes a constant shift as its limit (t = -inf, p = 0): the gate fails.
    base = write_results(tmp_path / "base", seeds=range(3), cells=[("batch", 4), ("layer", 4)])
    from normbench.store import load_frames

    runs = load_frames(base).runs
    lower = {("batch", 4, int(r.seed)): r.final_test_accuracy - 18 / N_TEST for r in runs.itertuples() if r.norm == "batch"}
    new = write_results(tmp_path / "new", seeds=range(3), cells=[("batch", 4), ("layer", 4)], accuracy=lower)
    result = compare(base, new)
    row = next(r for r in result.accuracy if r["cell"] and r["cell"]["norm"] == "batch")
    assert row["change"] == pytest.approx(-5.0) and row["test"] == "paired t-test" and row["n"] == 3
    assert row["p_value"] == 0.0 and row["fails"] and result.failed


def test_the_committed_baseline_lowered_five_points_fails(tmp_path):
    import shutil
    import sqlite3
    from pathlib import Path

    baseline = Path(__file__).resolve().parent.parent / "reports" / "baseline"
    new = tmp_path / "new"
    shutil.copytree(baseline, new)
    with sqlite3.connect(new / "results.sqlite") as conn:
        changed = conn.execute("UPDATE runs SET final_test_accuracy = final_test_accuracy - 0.05 "
                               "WHERE model = 'cnn2d' AND norm = 'batch' AND outcome = 'completed'").rowcount
    assert changed == 6  # BN on cnn2d: 2 batch sizes x 3 seeds
    result = compare(baseline, new, fail_on=parse_fail_on(["accuracy_drop=1"]))
    failing = {r["label"] for r in result.accuracy if r["fails"]}
    assert failing == {"cnn2d/digits/batch/b4/cpu", "cnn2d/digits/batch/b64/cpu"} and result.failed
    assert "detects" in result.power["text"] and result.power["largest_cell_detectable"] > 1.0


def test_the_gate_states_what_it_could_detect_and_require_power_fails_on_it(tmp_path, write_results):
    base = write_results(tmp_path / "base", noise_seed=1)
    new = write_results(tmp_path / "new", noise_seed=2)
    result = compare(base, new)
    power = result.power
    level = 0.05 / power["family_size"]
    cells = [r for r in result.accuracy if r["cell"]]
    for row in cells:  # the declared t-test, one-sided, at the family's first-step level, observed SD
        expected = stats.smallest_detectable_effect(5, row["sd_difference"], alpha=level, power=0.8,
                                                    alternative="less")
        assert row["detectable"] == pytest.approx(expected) and row["sd_source"] == "observed SD of the differences"
    assert power["largest_cell_detectable"] == pytest.approx(max(r["detectable"] for r in cells))
    assert power["enough"] == (power["largest_cell_detectable"] <= 1.0)
    assert any(note == power["text"] for note in result.notes)
    lenient = compare(base, new, fail_on={"accuracy_drop": 100.0}, require_power=True)
    assert lenient.power["enough"] and not lenient.failed
    strict = compare(base, new, fail_on={"accuracy_drop": 0.01}, require_power=True)
    assert not strict.power["enough"] and strict.failed and strict.failures[-1].startswith("power: ")


def test_nothing_compared_is_not_a_pass(tmp_path, write_results):
    base = write_results(tmp_path / "base", cells=[("batch", 4)])
    new = write_results(tmp_path / "new", cells=[("layer", 64)])
    result = compare(base, new)
    assert result.nothing_compared and not result.failed
    assert any(n.startswith("nothing compared") for n in result.notes)
    assert "NOTHING COMPARED" in result.render("text") and "nothing compared" in result.render("md")


def test_formats_carry_the_numbers(tmp_path, write_results):
    base = write_results(tmp_path / "base", noise_seed=1)
    new = write_results(tmp_path / "new", noise_seed=2)
    result = compare(base, new)
    data = json.loads(result.render("json"))
    assert data["failed"] is False and data["fail_on"] == DEFAULT_FAIL_ON
    assert len(data["accuracy"]) == 6 + 1
    for row in data["accuracy"]:
        for key in ("test", "statistic", "p_value", "p_adjusted", "family", "effect_size", "n", "change", "detectable"):
            assert key in row
    assert data["power"]["threshold"] == 1.0 and data["nothing_compared"] is False
    assert data["analysis"]["test"] == "t" and data["analysis"]["source"] == "defaults"
    md = result.render("md")
    assert "| cell | base | new | change | test (one-sided) | p | p_adj | detectable drop | result |" in md
    assert "no significant regression" in md
    assert "mlp/digits/batch/b4/cpu" in md


def test_fail_on_parsing_and_thresholds(tmp_path, write_results):
    assert parse_fail_on(["accuracy_drop=2", "slowdown=0.1"]) == {"accuracy_drop": 2.0, "slowdown": 0.1, "alpha": 0.05,
                                                                 "native_tax": None}
    assert parse_fail_on(["native_tax=0.05"])["native_tax"] == 0.05
    for bad in (["speed=1"], ["slowdown"], ["slowdown=fast"], ["alpha=2"]):
        with pytest.raises(ValueError, match="fail-on"):
            parse_fail_on(bad)
    base = write_results(tmp_path / "base", noise_seed=1)
    slow = {("batch", 64, s): 0.003 for s in range(5)}
    new = write_results(tmp_path / "new", noise_seed=1, step_time=slow)
    assert compare(base, new).failed
    assert not compare(base, new, fail_on={"slowdown": 0.6}).failed  # 50 % slower, 60 % allowed
    with pytest.raises(ValueError, match="unknown fail_on"):
        compare(base, new, fail_on={"speed": 1})


def test_missing_store_is_a_clear_error(tmp_path, write_results):
    base = write_results(tmp_path / "base")
    with pytest.raises(StoreError, match="no results store"):
        compare(base, tmp_path / "nothing")


def test_hostile_labels_are_escaped_in_markdown(tmp_path, write_results):
    base = write_results(tmp_path / "base", cells=[("batch", 4)])
    new = write_results(tmp_path / "new", cells=[("batch", 4)])
    result = compare(base, new)
    result.accuracy[0]["label"] = "<script>|x"
    rendered = result.render("md")
    assert "<script>" not in rendered and "&lt;script&gt;\\|x" in rendered


def _measured(times_by_spec: dict[str, list[float]], device: str = "cpu", native: dict[str, list[float]] | None = None):
    """ResultFrames with throughput rows and raw samples (and torch-twin samples for the layers in
    ``native``), as the throughput store provides them."""
    import pandas as pd

    from normbench.frames import THROUGHPUT_COLUMNS, THROUGHPUT_SAMPLE_COLUMNS, ResultFrames

    rows, samples = [], []
    for spec_id, times in times_by_spec.items():
        row = {c: None for c in THROUGHPUT_COLUMNS}
        row.update(spec_id=spec_id, subject="layer", name=spec_id, norm_label=spec_id, shape="[32, 64, 32, 32]",
                   batch_size=32, dtype="float32", memory_format="contiguous", mode="train", operation="forward",
                   variant="", compile="eager", device=device, threads=2, outcome="completed",
                   median_s=float(np.median(times)), native_module="nn.BatchNorm2d",
                   native_ratio=float(np.median(times) / np.median(native[spec_id])) if native else None)
        rows.append(row)
        samples += [(spec_id, "subject", i, t, 10) for i, t in enumerate(times)]
        samples += [(spec_id, "native", i, t, 10) for i, t in enumerate((native or {}).get(spec_id, []))]
    frames = ResultFrames.empty()
    frames.throughput = pd.DataFrame(rows, columns=THROUGHPUT_COLUMNS)
    frames.throughput_samples = pd.DataFrame(samples, columns=THROUGHPUT_SAMPLE_COLUMNS)
    return frames


def test_native_tax_gate_tests_the_per_round_ratio_against_the_threshold():
    from scipy import stats as sps

    from normbench.analysis_config import AnalysisConfig
    from normbench.compare_native import judge_native_tax, native_tax_rows

    rng = np.random.default_rng(7)
    twin = 0.004 * (1 + rng.normal(0, 0.02, 20))
    taxed = twin * 1.30 * (1 + rng.normal(0, 0.01, 20))  # 30 % over torch's own module
    fair = twin * 1.01 * (1 + rng.normal(0, 0.01, 20))  # within 5 %
    frames = _measured({"taxed": list(taxed), "fair": list(fair)}, native={"taxed": list(twin), "fair": list(twin)})
    rows = {r["label"]: r for r in native_tax_rows(frames, lambda record: record["spec_id"])}
    assert set(rows) == {"taxed", "fair"}
    failures = judge_native_tax(list(rows.values()), 0.05, AnalysisConfig(), 0.05)
    assert rows["taxed"]["fails"] and not rows["fair"]["fails"] and len(failures) == 1
    assert rows["taxed"]["ratio"] == pytest.approx(np.median(taxed) / np.median(twin))
    # the declared test, independently: one-sided one-sample t on log ratios above log(1.05)
    expected = sps.ttest_1samp(np.log(taxed) - np.log(twin) - np.log(1.05), 0.0, alternative="greater")
    assert rows["taxed"]["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert rows["taxed"]["p_adjusted"] == pytest.approx(min(1.0, 2 * min(rows["taxed"]["p_value"], rows["fair"]["p_value"])))


def test_native_tax_rows_need_a_twin_and_stay_off_by_default(tmp_path, write_results):
    from normbench.compare_native import native_tax_rows

    assert native_tax_rows(_measured({"batch": [0.004, 0.0041, 0.0039]}), lambda record: record["spec_id"]) == []
    base = write_results(tmp_path / "base")
    result = compare(base, base)
    assert result.native_tax == [] and result.fail_on["native_tax"] is None


def test_throughput_measurements_compare_by_raw_samples():
    from normbench.compare import _measurements, compare_cells

    rng = np.random.default_rng(0)
    base = _measured({"batch": list(0.004 * (1 + rng.normal(0, 0.02, 30))),
                      "group": list(0.006 * (1 + rng.normal(0, 0.02, 30)))})
    new = _measured({"batch": list(0.0052 * (1 + rng.normal(0, 0.02, 30))),  # 30 % more time per call
                     "group": list(0.006 * (1 + rng.normal(0, 0.02, 30)))})
    result = compare_cells({}, {}, dict(DEFAULT_FAIL_ON), base_name="b", new_name="n", rng_seed=0,
                           measurements=(_measurements(base), _measurements(new)))
    rows = {r["cell"]["norm_label"]: r for r in result.throughput}
    slow, same = rows["batch"], rows["group"]
    before = np.array(base.throughput_samples.time_s[base.throughput_samples.spec_id == "batch"])
    after = np.array(new.throughput_samples.time_s[new.throughput_samples.spec_id == "batch"])
    assert slow["ratio"] == pytest.approx(np.median(before) / np.median(after))  # speed ratio = 1 / time ratio
    assert slow["slowdown"] == pytest.approx(np.median(after) / np.median(before) - 1)
    assert slow["ratio_low"] <= slow["ratio"] <= slow["ratio_high"] < 1
    assert slow["fails"] and not same["fails"] and result.failed
    # The declared test on raw times: Welch's t on log seconds per call, against scipy.
    reference = sps.ttest_ind(np.log(after), np.log(before), equal_var=False)
    assert slow["test"] == "welch t-test on log time"
    assert slow["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    assert "layer batch [32, 64, 32, 32] float32 train forward cpu" in result.failures[0]


def test_throughput_without_raw_samples_is_reported_not_tested():
    from normbench.compare import _measurements, compare_cells

    base, new = _measured({"batch": [0.004, 0.004]}), _measured({"batch": [0.008, 0.008]})
    base.throughput_samples = base.throughput_samples.iloc[0:0]
    result = compare_cells({}, {}, dict(DEFAULT_FAIL_ON), base_name="b", new_name="n", rng_seed=0,
                           measurements=(_measurements(base), _measurements(new)))
    row = result.throughput[0]
    assert row["ratio"] == pytest.approx(0.5) and math.isnan(row["p_value"]) and not result.failed
    gone = compare_cells({}, {}, dict(DEFAULT_FAIL_ON), base_name="b", new_name="n", rng_seed=0,
                         measurements=(_measurements(base), _measurements(_measured({"batch": [0.004]}, "cuda"))))
    assert [c["kind"] for c in gone.only_in_base] == ["throughput"] and "cpu" in gone.only_in_base[0]["label"]
    assert "only in base: layer batch" in gone.render("text")


def test_text_format_keeps_terminal_control_characters_out(tmp_path, write_results):
    base = write_results(tmp_path / "base", cells=[("batch", 4)])
    result = compare(base, base)
    result.accuracy[0]["label"] = "evil\x1b[2J"
    text = result.render("text")
    assert "\x1b" not in text and "evil?[2J" in text


def test_speed_never_fails_across_different_machines(tmp_path, write_results):
    import sqlite3

    base = write_results(tmp_path / "base", noise_seed=1)
    new = write_results(tmp_path / "new", noise_seed=1, step_time={("batch", 64, s): 0.004 for s in range(5)})
    assert compare(base, new).failed  # same machine: a 2x slowdown fails
    with sqlite3.connect(store_path(new)) as conn:  # the CI runner is another machine
        conn.execute("UPDATE environment SET data = ?", (json.dumps({"torch": "test", "cpu": "other cpu"}),))
    result = compare(base, new)
    assert not result.failed and any("not compared across machines" in n and "other cpu" in n for n in result.notes)
    row = next(r for r in result.throughput if r["cell"]["norm_label"] == "batch" and r["cell"]["batch_size"] == 64)
    assert row["significant"] and row["beyond_threshold"] and not row["fails"]


def test_cli_exit_codes_nothing_compared_and_require_power(tmp_path, write_results):
    from typer.testing import CliRunner

    from normbench.cli import app

    runner = CliRunner()
    base = write_results(tmp_path / "base", cells=[("batch", 4)])
    other = write_results(tmp_path / "other", cells=[("layer", 64)])
    same = write_results(tmp_path / "same", cells=[("batch", 4)])
    nothing = runner.invoke(app, ["compare", str(base), str(other)])
    assert nothing.exit_code == 2 and "nothing compared" in nothing.output
    assert runner.invoke(app, ["compare", str(base), str(same)]).exit_code == 0
    # Identical results carry no noise estimate: the gate plans with sqrt(2) x the base SD over seeds,
    # which at 5 seeds cannot promise a 0.01-point drop.
    underpowered = runner.invoke(app, ["compare", str(base), str(same), "--require-power",
                                       "--fail-on", "accuracy_drop=0.01"])
    assert underpowered.exit_code == 1 and "power:" in underpowered.output


def test_a_sign_flip_gate_at_three_seeds_says_it_cannot_reach_the_level(tmp_path, write_results):
    import sqlite3

    base = write_results(tmp_path / "base", seeds=range(3), cells=[("batch", 4), ("layer", 4)])
    with sqlite3.connect(store_path(base)) as conn:
        conn.execute("UPDATE suites SET yaml = ?", ("name: quick\nanalysis: {test: permutation}\n",))
    result = compare(base, base)
    assert result.analysis["test"] == "permutation" and result.analysis["source"] == "suite"
    assert all(row["test"] == "sign-flip permutation" and math.isinf(row["detectable"])
               for row in result.accuracy if row["cell"])
    assert result.power["enough"] is False and "cannot reach" in result.power["text"]

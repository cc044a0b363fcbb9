"""The report's per-epoch parts on hand-made stores with known answers: the declared convergence
tests (AUC, epochs to threshold) and their verdicts, BLN's inference-flag picks, and published vs ours."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats as sps

from normbench.frames import CURVE_COLUMNS, EPOCH_COLUMNS, INFERENCE_FLAG_COLUMNS, RUN_COLUMNS, ResultFrames
from normbench.reference import find_run, load_reference
from normbench.report import render
from normbench.report.context import build_context
from normbench.report.figures import report_figures

SEEDS = (0, 1, 2, 3, 4)
BN_CURVE = np.array([2.0, 1.5, 1.0, 0.8])  # reaches 1.2 at epoch 3
NORMS = {"BN": "batch", "LN": "layer", "BLN": "batch_layer"}
SUITE_YAML = """name: hand
analysis:
  reference_norm: BN
  convergence: {loss_threshold: 1.2, auc_margin: 0.05}
reference:
  source: bln2022
  task: cnn
  norms: {bn: BN, ln: LN, bln: BLN}
"""


def _run(label, seed, batch_size, accuracy):
    return {**{c: None for c in RUN_COLUMNS},
            "run_id": f"{label}-{batch_size}-{seed}", "suite": "hand", "kind": "training", "model": "lenet5",
            "model_label": "lenet5", "dataset": "cifar10", "norm": NORMS[label], "norm_label": label,
            "norm_options": "{}", "model_options": "{}", "dataset_options": "{}", "batch_size": batch_size,
            "seed": seed, "device": "cpu", "optimizer": "adam", "lr": 0.002, "epochs": 4.0, "outcome": "completed",
            "error": "", "final_test_accuracy": accuracy, "final_test_loss": 1.0, "steps_done": 40,
            "wall_time_s": 1.0, "batching": "fixed", "selection": "last", "eval_every": 10}


def _frames(curves: dict[str, np.ndarray], batch_size: int = 25, flags: list[dict] | None = None) -> ResultFrames:
    """Runs of each label x seed with the given per-epoch training losses ((seeds, epochs) arrays)."""
    runs, epochs, points = [], [], []
    for label, grid in curves.items():
        for seed, curve in zip(SEEDS, grid):
            run = _run(label, seed, batch_size, 0.40 + 0.01 * seed)
            runs.append(run)
            epochs += [{"run_id": run["run_id"], "epoch": e + 1, "steps": 10, "train_loss": float(v),
                        "train_accuracy": 0.5} for e, v in enumerate(curve)]
            points += [{"run_id": run["run_id"], "step": s, "epoch": s / 10, "samples_seen": s * batch_size,
                        "train_loss": 1.0, "test_loss": 1.0, "test_accuracy": 0.4, "wall_time_s": 0.1 * s}
                       for s in (0, 40)]
    return ResultFrames(runs=pd.DataFrame(runs, columns=RUN_COLUMNS), curves=pd.DataFrame(points, columns=CURVE_COLUMNS),
                        epochs=pd.DataFrame(epochs, columns=EPOCH_COLUMNS),
                        inference_flags=pd.DataFrame(flags or [], columns=INFERENCE_FLAG_COLUMNS),
                        suite_name="hand", suite_yaml=SUITE_YAML)


def _noise(scale, seed):
    return np.random.default_rng(seed).normal(0, scale, size=(len(SEEDS), len(BN_CURVE)))


@pytest.fixture(scope="module")
def known():
    """BLN 0.4 lower than BN every epoch (faster; reaches 1.2 one epoch earlier); LN equal within 0.002."""
    bn = BN_CURVE + _noise(0.05, 1)
    curves = {"BN": bn, "LN": bn + _noise(0.001, 2), "BLN": bn - 0.4 + _noise(0.01, 3)}
    return curves, build_context(_frames(curves))


def _rows(context, label, metric):
    block = context["sections"][0]["loss_convergence"]
    return [r for r in block["rows"] if r["norm_label"] == label and r["metric"] == metric]


def test_auc_is_the_trapezoidal_mean_loss_and_matches_a_paired_t_test(known):
    curves, context = known
    (row,) = _rows(context, "BLN", "auc")
    auc = {label: np.array([np.trapezoid(c, np.arange(1, 5)) / 3 for c in grid]) for label, grid in curves.items()}
    assert row["mean_value"] == pytest.approx(auc["BLN"].mean()) and row["reference_mean"] == pytest.approx(auc["BN"].mean())
    assert row["mean_difference"] == pytest.approx((auc["BN"] - auc["BLN"]).mean())  # positive = faster
    assert row["p_value"] == pytest.approx(sps.ttest_rel(auc["BN"], auc["BLN"]).pvalue)
    assert np.trapezoid(BN_CURVE, np.arange(1, 5)) / 3 == pytest.approx(1.3)


def test_known_answers_become_verdicts_in_the_one_family(known):
    _, context = known
    assert _rows(context, "BLN", "auc")[0]["direction"] == "better"
    (epochs,) = _rows(context, "BLN", "epochs")
    assert epochs["mean_value"] == 2 and epochs["reference_mean"] == 3 and epochs["direction"] == "better"
    assert _rows(context, "LN", "auc")[0]["direction"] == "equivalent"
    counts = context["family"]["counts"]
    assert counts["convergence"] == 4 and counts["convergence_equivalence"] >= 3
    texts = [v["text"] for v in context["verdicts"] if v["kind"] == "convergence"]
    assert any(t.startswith("BLN converges faster than BN at batch size 25") for t in texts)
    assert any(t.startswith("LN and BN converge equally fast within 0.05 loss") for t in texts)


def test_a_slower_norm_is_worse_and_a_never_reached_threshold_is_censored():
    bn = BN_CURVE + _noise(0.05, 1)
    context = build_context(_frames({"BN": bn, "BLN": bn + 0.5 + _noise(0.01, 4)}))
    (auc,) = _rows(context, "BLN", "auc")
    (epochs,) = _rows(context, "BLN", "epochs")
    assert auc["direction"] == "worse" and "converges slower" in auc["verdict"]
    assert epochs["censored"] == 5 and epochs["mean_value"] == 5  # never <= 1.2 in 4 epochs: counted as 5


def test_a_threshold_neither_norm_reached_is_not_tested_and_not_called_equivalent():
    never = np.tile(BN_CURVE + 1.0, (len(SEEDS), 1))  # minimum 1.8 > 1.2: censored in every run
    frames = _frames({"BN": never + _noise(0.05, 1), "LN": never + _noise(0.05, 2)})
    context = build_context(frames)
    block = context["sections"][0]["loss_convergence"]
    assert [r["metric"] for r in block["rows"]] == ["auc"]  # the AUC is still compared
    assert block["not_reached"] == [{"batch_size": 25, "norm_name": "LN", "reference_name": "BN", "metric": "epochs"}]
    assert context["family"]["counts"]["convergence"] == 1
    assert not any("equally fast" in v["text"] and "epochs to" in v["text"] for v in context["verdicts"])
    assert "not tested: neither LN nor BN reached" in render(context, "md")


def test_without_a_declaration_nothing_is_tested():
    frames = _frames({"BN": np.tile(BN_CURVE, (5, 1)), "BLN": np.tile(BN_CURVE - 0.3, (5, 1))})
    frames.suite_yaml = "name: hand\nanalysis: {reference_norm: BN}\n"
    context = build_context(frames)
    section = context["sections"][0]
    assert section["loss_convergence"]["declared"] is False and section["loss_convergence"]["rows"] == []
    assert "convergence" not in context["family"]["counts"]
    assert section["training_loss"][0]["epoch"] == [1, 2, 3, 4]


def _flag_rows(run_id, best_val, best_test, val_acc=0.30, test_acc=0.60):
    """16 rows: every row loss 2.0, accuracy 0.2, except the chosen val / test minima."""
    rows = []
    for combination in itertools.product((1, 0), repeat=4):
        text = "".join("T" if f else "F" for f in combination)
        rows.append({"run_id": run_id, **dict(zip(INFERENCE_FLAG_COLUMNS[1:5], combination)),
                     "val_loss": 1.0 if text == best_val else 2.0, "val_accuracy": 0.2,
                     "test_loss": 1.0 if text in (best_test, "FFFF") else 2.0,  # a tie: the first in order wins
                     "test_accuracy": test_acc if text == best_test else (val_acc if text == best_val else 0.2)})
    return rows


def test_flags_are_picked_on_validation_and_the_test_pick_shows_its_optimism():
    flags = []
    for seed in SEEDS:
        flags += _flag_rows(f"BLN-25-{seed}", best_val="TFTF", best_test="FTTF", val_acc=0.30, test_acc=0.36 + seed / 100)
    frames = _frames({"BN": np.tile(BN_CURVE, (5, 1)), "BLN": np.tile(BN_CURVE, (5, 1))}, flags=flags)
    (cell,) = build_context(frames)["sections"][0]["inference_flags"]
    assert {s["validation_pick"] for s in cell["seeds"]} == {"TFTF"} and {s["test_pick"] for s in cell["seeds"]} == {"FTTF"}
    assert cell["summary"]["validation_picked"]["mean"] == pytest.approx(30.0)
    assert cell["summary"]["test_picked"]["mean"] == pytest.approx(38.0)
    assert cell["summary"]["optimism"]["mean"] == pytest.approx(8.0)
    assert cell["summary"]["configured"]["mean"] == pytest.approx(42.0)
    assert [r["flags"] for r in cell["table"]][:2] == ["TTTT", "TTTF"] and len(cell["table"]) == 16
    assert next(r for r in cell["table"] if r["flags"] == "TFTF")["validation_picks"] == 5


def test_published_curves_and_the_inside_table_on_a_tiny_store():
    reference = load_reference("bln2022")
    published_bn = find_run(reference, task="cnn", norm="bn", batch_size=25)["per_epoch"]["train_loss"]
    bn = np.tile(BN_CURVE, (5, 1))
    bn[:, -1] = 0.609 + np.array([-0.04, -0.02, 0.0, 0.02, 0.04])  # around the published 0.609
    ln = bn.copy()
    ln[:, -1] = 0.30 + np.array([-0.01, 0.0, 0.01, 0.0, 0.005])  # far below the published 0.7697
    flags = []
    for seed in SEEDS:
        flags += _flag_rows(f"BLN-25-{seed}", best_val="TTTT", best_test="FTTF", test_acc=0.50)
    frames = _frames({"BN": bn, "LN": ln, "BLN": bn}, flags=flags)
    context = build_context(frames)
    published = context["sections"][0]["published"]
    curve = next(c for c in published["curves"] if c["norm_label"] == "BN")
    assert curve["train_loss"] == published_bn and curve["epoch"] == list(range(1, 16))
    rows = {(r["norm_label"], r["quantity"].split(" (")[0]): r for r in published["rows"]}
    bn_loss = rows[("BN", "final training loss")]
    low, high = sps.t.interval(0.95, 4, loc=bn[:, -1].mean(), scale=sps.sem(bn[:, -1]))
    assert (bn_loss["ci_low"], bn_loss["ci_high"]) == pytest.approx((low, high))
    assert bn_loss["published"] == pytest.approx(0.609) and bn_loss["inside"] is True
    assert rows[("LN", "final training loss")]["inside"] is False
    bln_test = rows[("BLN", "test accuracy")]
    assert bln_test["published"] == pytest.approx(45.51) and bln_test["mean"] == pytest.approx(50.0)
    assert "picked on the test set" in bln_test["quantity"]
    assert rows[("BN", "test accuracy")]["mean"] == pytest.approx(42.0)  # the runs' own final accuracy
    assert report_figures(context)[context["sections"][0]["id"]]["training_loss"].startswith("data:image/png")
    markdown = render(context, "md")
    assert "### Published vs ours (bln2022)" in markdown and "| cnn/bn/batch 25 | BN | 25 | final training loss" in markdown


def test_a_reference_that_no_longer_loads_is_a_warning_not_a_failure(tmp_path):
    frames = _frames({"BN": np.tile(BN_CURVE, (5, 1))})
    frames.suite_yaml = f"name: hand\nreference: {{source: {tmp_path / 'gone.yaml'}, task: cnn, norms: {{bn: BN}}}}\n"
    context = build_context(frames)
    assert context["reference"] is None and context["sections"][0]["published"] is None
    assert any("reference block cannot be used" in w.get("message", "") for w in context["warnings"])


def test_mnist1d_baselines_map_by_task_to_model_labels_and_compare_test_accuracy_only():
    from normbench.reference.declared import ReferenceConfig, read_reference
    from normbench.report.published import section_reference
    from normbench.report.sections import reference_label_of

    config = ReferenceConfig(source="mnist1d2020", tasks={"mlp": "mlp", "cnn": "cnn1d"}, norms={"none": "none"})
    runs = pd.DataFrame([{**_run("BN", seed, 100, accuracy), "model": model, "model_label": model, "norm": "none",
                          "norm_label": "none", "run_id": f"{model}-{seed}"}
                         for model, accuracy in (("mlp", 0.66), ("cnn1d", 0.93)) for seed in SEEDS])
    runs.loc[runs["seed"] == 4, "final_test_accuracy"] += 0.02
    labels = [("none", "none")]
    mlp = section_reference((config, read_reference("mnist1d2020")), runs[runs["model"] == "mlp"], {}, None, labels,
                            0.95, reference_label_of)
    assert mlp["curves"] == [] and mlp["source"] == "mnist1d2020"
    (row,) = mlp["rows"]
    assert row["published_run"] == "mlp/none/batch 100" and row["published"] == pytest.approx(68.0)
    assert row["mean"] == pytest.approx(66.4) and row["n"] == 5 and row["inside"] is False
    cnn = section_reference((config, read_reference("mnist1d2020")), runs[runs["model"] == "cnn1d"], {}, None, labels,
                            0.95, reference_label_of)
    assert [r["published"] for r in cnn["rows"]] == [pytest.approx(94.0)]

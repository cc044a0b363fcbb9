"""normbench.reference: the shipped published results load, cite their source and hold the quoted numbers."""

from __future__ import annotations

import itertools

import pytest

from normbench.data import available_datasets
from normbench.models import available_models
from normbench.norms import create_norm
from normbench.reference import available_references, find_run, load_reference


@pytest.fixture(scope="module")
def bln():
    return load_reference("bln2022")


def test_listed_and_cited(bln):
    assert "bln2022" in available_references()
    citation = bln["citation"]
    assert citation["arxiv"] == "2209.08898" and citation["commit"] == "a79b856"
    assert citation["repository"].endswith("A2Amir/Batch-Layer-Normalization")
    assert set(bln["quantities"]) >= {"train_loss", "val_loss", "test", "inference_flags"}


def test_every_task_norm_and_batch_size_is_present_with_full_curves(bln):
    for task, norm, batch in itertools.product(("cnn", "rnn"), ("bn", "ln", "bln"), (1, 25)):
        run = find_run(bln, task=task, norm=norm, batch_size=batch)
        epochs = bln["protocols"][task]["epochs"]
        assert all(len(curve) == epochs for curve in run["per_epoch"].values()), (task, norm, batch)
        assert 0 <= run["test"]["accuracy"] <= 1
    assert len(bln["runs"]) == 12


@pytest.mark.parametrize(
    "task, batch, norm, final_loss, test_accuracy",
    [  # the highlights quoted in issue 12
        ("cnn", 25, "bln", 0.379, 0.455), ("cnn", 25, "bn", 0.609, 0.453), ("cnn", 25, "ln", 0.770, 0.423),
        ("cnn", 1, "bn", 2.307, None), ("cnn", 1, "ln", 1.790, None), ("cnn", 1, "bln", 1.093, None),
        ("rnn", 25, "bln", None, 0.771), ("rnn", 25, "bn", None, 0.698), ("rnn", 25, "ln", None, 0.710),
    ],
)
def test_quoted_numbers(bln, task, batch, norm, final_loss, test_accuracy):
    run = find_run(bln, task=task, norm=norm, batch_size=batch)
    if final_loss is not None:
        assert run["per_epoch"]["train_loss"][-1] == pytest.approx(final_loss, abs=5.01e-4)
    if test_accuracy is not None:
        assert run["test"]["accuracy"] == pytest.approx(test_accuracy, abs=5.01e-4)


def test_bln_has_the_16_flag_table_and_its_pick(bln):
    flags = ("batch_moving_mean", "batch_moving_var", "feature_moving_mean", "feature_moving_var")
    for task, batch in itertools.product(("cnn", "rnn"), (1, 25)):
        run = find_run(bln, task=task, norm="bln", batch_size=batch)
        rows = run["inference_flags"]
        assert len({tuple(row[f] for f in flags) for row in rows}) == 16
        lowest = min(row["loss"] for row in rows if row["loss"] is not None)
        (pick,) = [row for row in rows if {f: row[f] for f in flags} == run["test"]["flags"]]
        assert pick["loss"] == lowest == run["test"]["loss"] and pick["accuracy"] == run["test"]["accuracy"]
    # batch 1 with population variances divides by m - 1 = 0: NaN loss, chance accuracy
    cnn1 = find_run(bln, task="cnn", norm="bln", batch_size=1)["inference_flags"]
    assert all(row["loss"] is None and row["accuracy"] == 0.1 for row in cnn1 if row["batch_moving_var"])


def test_mappings_name_what_normbench_has(bln):
    for entry in bln["norms"].values():
        create_norm(entry["name"], 4, **entry["options"])
    for protocol in bln["protocols"].values():
        assert protocol["model"] in available_models() and protocol["dataset"] in available_datasets()


def test_each_load_is_a_fresh_copy_and_unknown_names_are_listed(bln):
    bln["runs"].clear()
    assert len(load_reference("bln2022")["runs"]) == 12
    with pytest.raises(ValueError, match="unknown reference 'bln2023'; available references: .*bln2022"):
        load_reference("bln2023")
    with pytest.raises(KeyError, match="no published run cnn/gn/25"):
        find_run(load_reference("bln2022"), task="cnn", norm="gn", batch_size=25)


def test_mnist1d_baselines_cite_their_source_and_hold_the_quoted_numbers():
    mnist1d = load_reference("mnist1d2020")
    assert "mnist1d2020" in available_references()
    assert mnist1d["citation"]["arxiv"] == "2011.14439" and mnist1d["citation"]["repository"].endswith("greydanus/mnist1d")
    quoted = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}  # issue 12 quotes 68 / 94 / 91 %
    for task, accuracy in quoted.items():
        run = find_run(mnist1d, task=task, norm="none", batch_size=100)
        assert run["test"]["accuracy"] == accuracy and run["source"]
    assert {p["model"] for p in mnist1d["protocols"].values()} <= set(available_models())

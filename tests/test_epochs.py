"""Per-epoch training records, validation metrics at evaluation points, evaluation at epoch ends and
checkpoint selection by validation loss, all through the real training loop."""

from __future__ import annotations

import math

import pytest
import torch

import normbench.train as train
from normbench.checkpoints import CheckpointSelection
from normbench.data import load_dataset
from normbench.epochs import EpochTally
from normbench.spec import CurvePoint, freeze_options


@pytest.fixture(scope="module")
def digits_val():
    return load_dataset("digits", validation=200)


def _recording_steps(monkeypatch):
    """Wrap train_step to keep every step's (loss, correct, batch size) as the loop saw them."""
    seen = []
    original = train.train_step

    def recording(run, step, idx):
        loss, correct, elapsed = original(run, step, idx)
        seen.append((float(loss), int(correct), len(idx)))
        return loss, correct, elapsed

    monkeypatch.setattr(train, "train_step", recording)
    return seen


def test_tally_is_the_mean_batch_loss_and_the_share_correct():
    tally = EpochTally(torch.device("cpu"))
    for loss, correct in ((1.0, 1), (2.0, 0), (4.5, 2)):
        tally.add(torch.tensor(loss), torch.tensor(correct), 3)
    record = tally.record(7)
    assert (record.epoch, record.steps) == (7, 3)
    assert record.train_loss == pytest.approx((1.0 + 2.0 + 4.5) / 3)
    assert record.train_accuracy == pytest.approx(3 / 9)


def test_epoch_records_are_hand_computed_means_of_the_steps(digits_val, make_spec, monkeypatch):
    seen = _recording_steps(monkeypatch)
    per_epoch = digits_val.n_train // 100  # full batches of 100 of the 1,147 training images
    spec = make_spec(batch_size=100, steps=2 * per_epoch + 4, eval_every=7)
    result = train.run_training(spec, digits_val)
    assert [r.epoch for r in result.epoch_records] == [1, 2, 3]
    assert [r.steps for r in result.epoch_records] == [per_epoch, per_epoch, 4]  # the budget ends inside epoch 3
    bounds = [(0, per_epoch), (per_epoch, 2 * per_epoch), (2 * per_epoch, len(seen))]
    for record, (start, stop) in zip(result.epoch_records, bounds):
        losses = [loss for loss, _, _ in seen[start:stop]]
        correct = sum(c for _, c, _ in seen[start:stop])
        samples = sum(n for _, _, n in seen[start:stop])
        assert record.train_loss == pytest.approx(sum(losses) / len(losses), rel=1e-6)
        assert record.train_accuracy == pytest.approx(correct / samples)


def test_validation_metrics_at_evaluation_points_only_with_a_split(digits_val, make_spec):
    digits = load_dataset("digits")
    with_val = train.run_training(make_spec(steps=10, eval_every=5), digits_val)
    without = train.run_training(make_spec(steps=10, eval_every=5), digits)
    assert all(math.isfinite(p.val_loss) and 0 <= p.val_accuracy <= 1 for p in with_val.curve)
    assert all(math.isnan(p.val_loss) and math.isnan(p.val_accuracy) for p in without.curve)
    model = train.prepare_run(make_spec(steps=10, eval_every=5), digits_val).model
    loss, accuracy = train.evaluate(model, digits_val.x_val, digits_val.y_val)
    assert (with_val.curve[0].val_loss, with_val.curve[0].val_accuracy) == pytest.approx((loss, accuracy))


def test_eval_per_epoch_evaluates_at_every_epoch_end_and_the_last_step(digits_val, make_spec):
    per_epoch = digits_val.n_train // 64
    spec = make_spec(batch_size=64, steps=None, epochs=2.5, eval_every=0, eval_per_epoch=True)
    result = train.run_training(spec, digits_val)
    steps = [p.step for p in result.curve]
    assert steps == [0, per_epoch, 2 * per_epoch, round(2.5 * per_epoch)]
    assert [p.epoch for p in result.curve[1:3]] == [1.0, 2.0]


def test_fixed_batching_reaches_the_loop_and_sets_the_epoch(digits_val, make_spec):
    spec = make_spec(batch_size=25, steps=None, epochs=2, eval_every=0, eval_per_epoch=True,
                     batching=freeze_options({"order": "fixed", "samples": 500}))
    result = train.run_training(spec, digits_val)
    assert result.steps_done == 2 * 20 and [r.steps for r in result.epoch_records] == [20, 20]


def _point(step, val_loss):
    return CurvePoint(step=step, epoch=step, samples_seen=step, train_loss=1.0, test_loss=1.0, test_accuracy=0.5,
                      wall_time_s=0.0, val_loss=val_loss)


def test_selection_keeps_the_lowest_validation_loss_after_step_0_earliest_on_ties():
    model = torch.nn.Linear(2, 1)
    selection = CheckpointSelection("best_validation_loss")
    for step, val_loss, weight in ((0, 0.1, 0.0), (1, 0.9, 1.0), (2, 0.5, 2.0), (3, 0.5, 3.0), (4, math.nan, 4.0),
                                   (5, 0.7, 5.0)):
        with torch.no_grad():
            model.weight.fill_(weight)
        selection.offer(_point(step, val_loss), model)
    assert selection.restore(model).step == 2
    assert torch.all(model.weight == 2.0)
    last = CheckpointSelection("last")
    for step in (0, 1, 2):
        last.offer(_point(step, 1.0), model)
    assert last.restore(model).step == 2 and torch.all(model.weight == 2.0)
    with pytest.raises(ValueError, match="select must be"):
        CheckpointSelection("best")


def test_best_validation_loss_takes_the_final_metrics_from_that_point(digits_val, make_spec):
    spec = make_spec(steps=30, eval_every=5, lr=0.2, select="best_validation_loss")
    result = train.run_training(spec, digits_val)
    later = [p for p in result.curve if p.step > 0]
    best = min(later, key=lambda p: (p.val_loss, p.step))
    assert result.selected_step == best.step
    assert (result.final_test_accuracy, result.final_test_loss) == (best.test_accuracy, best.test_loss)
    last = train.run_training(make_spec(steps=30, eval_every=5, lr=0.2), digits_val)
    assert last.selected_step == 30 and last.final_test_accuracy == last.curve[-1].test_accuracy

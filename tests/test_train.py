"""Training loop: determinism, pairing by seed, budgets, outcomes that are results not crashes."""

import math

import pytest
import torch

import normbench.train as train
from normbench.data import load_dataset
from normbench.spec import freeze_options


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def curve_tuples(result):
    # repr keeps every bit of a float and makes NaN (no training loss yet at step 0) compare equal
    return [tuple(repr(v) for v in (p.step, p.train_loss, p.test_loss, p.test_accuracy)) for p in result.curve]


def test_same_spec_gives_bitwise_identical_metrics(digits, make_spec):
    first = train.run_training(make_spec(), digits)
    second = train.run_training(make_spec(), digits)
    assert first.outcome == "completed"
    assert curve_tuples(first) == curve_tuples(second)  # exact equality, not approx
    assert first.final_test_accuracy == second.final_test_accuracy
    assert curve_tuples(train.run_training(make_spec(seed=1), digits)) != curve_tuples(first)


def test_eval_points_and_final_metrics(digits, make_spec):
    result = train.run_training(make_spec(steps=25), digits)
    assert [p.step for p in result.curve] == [0, 10, 20, 25]
    assert [p.samples_seen for p in result.curve] == [0, 160, 320, 400]
    assert math.isnan(result.curve[0].train_loss)
    assert result.final_test_accuracy == result.curve[-1].test_accuracy
    assert result.steps_done == 25
    assert 0 < result.step_time_median_s < result.wall_time_s
    assert result.curve[-1].test_accuracy > 0.5  # it learns digits in 25 steps


def test_epoch_budget_counts_full_batches(digits, make_spec):
    spec = make_spec(steps=None, epochs=2.0, batch_size=100)
    assert train.prepare_run(spec, digits).n_steps == 2 * (digits.n_train // 100)


def test_batch_order_is_a_seeded_permutation_per_epoch():
    order = train.BatchOrder(n_train=10, batch_size=3, seed=7)
    epoch = [order.next() for _ in range(3)]  # 3 full batches, 1 sample dropped
    seen = torch.cat(epoch)
    assert len(set(seen.tolist())) == 9 and all(len(b) == 3 for b in epoch)
    again = train.BatchOrder(n_train=10, batch_size=3, seed=7)
    assert all(torch.equal(a, again.next()) for a in epoch)
    other = train.BatchOrder(n_train=10, batch_size=3, seed=8)
    assert not all(torch.equal(a, other.next()) for a in epoch)


def test_same_seed_same_initial_weights_whatever_the_norm(digits, make_spec):
    models = [train.build_model(make_spec(norm=name), digits) for name in ("none", "batch", "layer", "group")]
    linears = [[m for m in model.modules() if isinstance(m, torch.nn.Linear)] for model in models]
    assert [len(layers) for layers in linears] == [2] * 4  # hidden layer and head in every model
    for other in linears[1:]:
        for a, b in zip(linears[0], other):
            assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_divergence_is_an_outcome(digits, make_spec):
    result = train.run_training(make_spec(norm="none", lr=1e6, momentum=0.0, steps=40), digits)
    assert result.outcome == "diverged"
    assert "NaN/inf" in result.error
    assert result.final_test_accuracy is None
    assert result.steps_done <= 40


def test_undefined_norm_is_an_outcome(digits, make_spec):
    result = train.run_training(make_spec(norm="instance"), digits)
    assert result.outcome == "undefined"
    assert result.error  # the reason, in words


def test_batch_norm_with_one_sample_is_undefined(digits, make_spec):
    result = train.run_training(make_spec(batch_size=1, steps=3), digits)
    assert result.outcome == "undefined"


def test_an_error_fails_the_run_with_its_text(digits, monkeypatch, make_spec):
    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch in layer 3")

    monkeypatch.setattr(train, "create_model", broken)
    result = train.run_training(make_spec(), digits)
    assert result.outcome == "failed"
    assert "RuntimeError: shape mismatch in layer 3" in result.error


def test_adam_and_unknown_optimizer(digits, make_spec):
    assert train.run_training(make_spec(optimizer="adam", lr=1e-3), digits).outcome == "completed"
    failed = train.run_training(make_spec(optimizer="lbfgs"), digits)
    assert failed.outcome == "failed" and "unknown optimizer" in failed.error


def test_bln_population_statistics_restart_each_epoch(digits, make_spec):
    # Reference BLN resets its population statistics at every epoch start: after training exactly
    # 1.5 epochs, the batch-mean counter holds only the second epoch's batches.
    from normbench.norms.batch_layer import BatchLayerNorm

    per_epoch = digits.n_train // 100
    spec = make_spec(norm="batch_layer", batch_size=100, steps=per_epoch + per_epoch // 2, eval_every=1000)
    model_holder = {}
    original = train.build_model

    def keep(spec_, data_):
        model_holder["m"] = original(spec_, data_)
        return model_holder["m"]

    train.build_model, saved = keep, train.build_model
    try:
        assert train.run_training(spec, digits).outcome == "completed"
    finally:
        train.build_model = saved
    bln = next(m for m in model_holder["m"].modules() if isinstance(m, BatchLayerNorm))
    assert int(bln.num_batches_tracked) == per_epoch // 2


def test_a_run_that_raises_keeps_the_curve_it_recorded(digits, make_spec):
    # BN evaluates at step 0 (running statistics), then has no statistics for the first batch of one.
    result = train.run_training(make_spec(batch_size=1, steps=3), digits)
    assert result.outcome == "undefined"
    assert [p.step for p in result.curve] == [0] and result.steps_done == 0
    assert result.final_test_accuracy is None and result.step_time_median_s is None


def test_class_batching_reaches_the_training_loop_and_keeps_runs_reproducible(digits, make_spec):
    spec = make_spec(batching=freeze_options({"classes_per_batch": 1}), steps=12, eval_every=6)
    run = train.prepare_run(spec, digits)
    for _ in range(5):
        assert len(set(digits.y_train[run.order.next()].tolist())) == 1
    first, second = train.run_training(spec, digits), train.run_training(spec, digits)
    assert first.outcome == "completed" and curve_tuples(first) == curve_tuples(second)
    assert curve_tuples(first) != curve_tuples(train.run_training(make_spec(steps=12, eval_every=6), digits))


def _first_layer_preactivations(model, x):
    return model.blocks[0].linear(x.flatten(1))


def test_data_dependent_init_standardizes_the_first_layer_and_leaves_the_rng_alone(digits, make_spec):
    spec = make_spec(norm="weight", norm_options=freeze_options({"data_dependent_init": True}), steps=1)
    model = train.build_model(spec, digits)
    plain = train.build_model(make_spec(norm="weight"), digits)  # the same weights, never initialized from data
    rng = torch.get_rng_state()
    train.initialize_from_data(model, digits, spec.seed)
    assert torch.equal(torch.get_rng_state(), rng)
    generator = torch.Generator().manual_seed(spec.seed * 1_000_003 + train._DATA_INIT_SALT)
    idx = torch.randperm(digits.n_train, generator=generator)[: train.DATA_INIT_SAMPLES]
    with torch.no_grad():
        t = _first_layer_preactivations(model, digits.x_train[idx])
        t0 = _first_layer_preactivations(plain, digits.x_train[idx])
    torch.testing.assert_close(t.mean(0), torch.zeros(32), atol=1e-5, rtol=0)
    torch.testing.assert_close(t.var(0, unbiased=False), torch.ones(32), atol=1e-3, rtol=0)
    # the init is an affine map per unit of what the layer computed before it (g and b only)
    expected = (t0 - t0.mean(0)) / (t0.var(0, unbiased=False) + 1e-5).sqrt()
    torch.testing.assert_close(t, expected, atol=1e-5, rtol=1e-5)
    # prepare_run runs the same pass
    torch.testing.assert_close(_first_layer_preactivations(train.prepare_run(spec, digits).model, digits.x_train[idx]),
                               t, atol=0, rtol=0)


def test_weight_norm_without_data_init_starts_from_the_plain_models_function(digits, make_spec):
    plain = train.build_model(make_spec(norm="none"), digits)
    weighted = train.build_model(make_spec(norm="weight"), digits)
    x = digits.x_test[:50]
    torch.testing.assert_close(weighted(x), plain(x), atol=1e-6, rtol=1e-6)
    assert train.run_training(make_spec(norm="weight", steps=10), digits).outcome == "completed"

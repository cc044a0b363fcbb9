"""The premise of every paired test in the report: runs that differ only in the norm start from the
same weights in every non-norm layer and see the same mini-batches (pairing by seed is legitimate).

Checked on the real training code.
"""

from __future__ import annotations

import pytest
import torch

import normbench.train as train
from normbench.data import load_dataset
from normbench.spec import freeze_options

NORMS = [("none", {}), ("batch", {}), ("layer", {}), ("group", {"num_groups": 8}), ("batch_layer", {}),
         ("instance", {})]


def _non_norm_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    layers = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)
    return [p.detach().clone() for m in model.modules() if isinstance(m, layers) for p in m.parameters()]


@pytest.mark.parametrize("model", ["mlp", "cnn2d"])
def test_same_seed_same_initial_weights_whatever_the_norm(model, make_spec):
    dataset = load_dataset("digits")
    norms = [n for n in NORMS if not (model == "mlp" and n[0] == "instance")]  # IN needs a spatial axis
    model_options = freeze_options({"widths": [32, 32]} if model == "mlp" else {})

    def spec(norm, options, seed):  # this model, batch size 8
        return make_spec(suite="pairing", model=model, norm=norm, norm_options=freeze_options(options), seed=seed,
                         batch_size=8, model_options=model_options)

    for seed in (0, 1):
        reference = _non_norm_weights(train.build_model(spec("none", {}, seed), dataset))
        assert reference, "the model has no linear/conv layers to compare"
        for norm, options in norms[1:]:
            weights = _non_norm_weights(train.build_model(spec(norm, options, seed), dataset))
            assert len(weights) == len(reference)
            for a, b in zip(weights, reference):
                assert torch.equal(a, b), f"{model} with {norm}: initial weights differ from the no-norm run"
    other = _non_norm_weights(train.build_model(spec("none", {}, 1), dataset))
    first = _non_norm_weights(train.build_model(spec("none", {}, 0), dataset))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))  # and seeds do differ


def test_mini_batch_order_depends_on_the_seed_alone():
    first, again, other = train.BatchOrder(100, 8, seed=3), train.BatchOrder(100, 8, seed=3), train.BatchOrder(100, 8, seed=4)
    batches = [first.next() for _ in range(30)]
    assert all(torch.equal(a, again.next()) for a in batches)
    assert not all(torch.equal(a, other.next()) for a in batches)

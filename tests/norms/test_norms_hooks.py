"""Norm hooks: ``on_epoch_start`` (called by the training loop) and ``check_batch_sizes`` (by suite checks)."""

from __future__ import annotations

import torch
from torch import nn

from normbench.norms import BatchLayerNorm, BatchNorm, LayerNorm, NormModule, available, create_norm
from normbench.norms.registry import NORMS
from normbench.train import start_epoch


def _trained(norm: nn.Module) -> nn.Module:
    norm.train()
    norm(torch.randn(6, 4) * 3 + 2)
    return norm


def test_start_epoch_resets_bln_population_statistics_without_momentum():
    model = nn.Sequential(nn.Linear(4, 4), _trained(create_norm("bln", 4)))
    bln = model[1]
    assert bln.num_batches_tracked.item() == 1 and torch.count_nonzero(bln.running_batch_mean) > 0
    start_epoch(model)
    assert bln.num_batches_tracked.item() == 0
    for name in ("running_batch_mean", "running_batch_var", "batch_mean_count"):
        assert torch.count_nonzero(getattr(bln, name)) == 0, name


def test_start_epoch_keeps_an_ema_and_other_norms_statistics():
    ema = _trained(create_norm("bln", 4, momentum=0.1))
    bn = _trained(create_norm("batch", 4))
    before = (ema.running_batch_mean.clone(), bn.running_mean.clone(), bn.num_batches_tracked.clone())
    start_epoch(nn.Sequential(ema, bn))
    assert torch.equal(ema.running_batch_mean, before[0]) and ema.num_batches_tracked.item() == 1
    assert torch.equal(bn.running_mean, before[1]) and torch.equal(bn.num_batches_tracked, before[2])


def test_every_registered_norm_has_the_hooks():
    for name in available():
        cls = NORMS.get(name)
        assert issubclass(cls, NormModule)
        assert cls.check_batch_sizes({}, [1, 7]) is None  # defaults accept any batch size
    assert LayerNorm.check_batch_sizes({"eps": 1e-3}, [3]) is None


def test_batch_norm_names_the_batch_sizes_its_ghost_size_does_not_divide():
    problem = BatchNorm.check_batch_sizes({"ghost_batch_size": 4}, [4, 6, 8, 10])
    assert problem.option == "ghost_batch_size"
    assert problem.message == "4 does not divide batch sizes [6, 10]; ghost batches must split every batch evenly"
    assert BatchNorm.check_batch_sizes({"ghost_batch_size": 4}, [4, 16]) is None
    # no ghost batches, or an invalid size (reported when the norm is built), is not this hook's concern
    assert BatchNorm.check_batch_sizes({}, [3]) is None
    assert BatchNorm.check_batch_sizes({"ghost_batch_size": 0}, [3]) is None
    assert BatchLayerNorm.check_batch_sizes({}, [1]) is None

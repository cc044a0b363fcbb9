"""The fast path: validated once per (shape, dtype, mode), then torch's op with no per-call checks."""

from __future__ import annotations

import pytest
import torch

import normbench.norms.base as base
from normbench.norms import NormUndefinedError, create_norm


def _counting_checks(monkeypatch) -> list:
    calls = []
    original = base.check_input

    def counted(*args):
        calls.append(args[1].shape)
        return original(*args)

    monkeypatch.setattr(base, "check_input", counted)
    return calls


@pytest.mark.parametrize("name,options", [("batch", {}), ("layer", {}), ("group", {"num_groups": 2}),
                                          ("instance", {}), ("none", {}), ("rms", {}), ("batch_layer", {})])
def test_input_is_validated_once_per_shape_dtype_and_mode(monkeypatch, name, options):
    calls = _counting_checks(monkeypatch)
    layer = create_norm(name, 4, **options)
    shape = (6, 4) if name != "instance" else (6, 4, 3)
    # BLN's first training call sizes its population buffers (new buffers: the path is dropped once)
    first = 2 if name == "batch_layer" else 1
    for _ in range(3):
        layer(torch.randn(shape))
    assert len(calls) == first
    layer(torch.randn(8, *shape[1:]))  # another shape: checked once more
    layer(torch.randn(8, *shape[1:]))
    assert len(calls) == first + 1
    layer.eval()
    layer(torch.randn(shape))
    layer(torch.randn(shape))
    assert len(calls) == first + (3 if name == "batch_layer" else 2)  # BLN's eval keeps its checked path


def test_masks_always_take_the_checked_path(monkeypatch):
    calls = _counting_checks(monkeypatch)
    layer = create_norm("batch", 4)
    x = torch.randn(6, 4, 5)
    layer(x), layer(x)
    with pytest.raises(ValueError, match="mask must have shape"):
        layer(x, torch.ones(6, 4, dtype=torch.bool))
    assert len(calls) == 2


def test_batch_norm_keeps_torch_semantics_across_mode_switches_and_casts():
    gen = torch.Generator().manual_seed(0)
    ours, theirs = create_norm("batch", 3, momentum=None), torch.nn.BatchNorm1d(3, momentum=None)
    for step in range(6):
        if step == 3:  # a cast after the path was remembered: float64 from here on
            ours, theirs = ours.double(), theirs.double()
        x = torch.randn(5, 3, generator=gen, dtype=torch.float64 if step >= 3 else torch.float32)
        mode = step % 2 == 0
        ours.train(mode), theirs.train(mode)
        torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours.running_var, theirs.running_var)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 3


def test_undefined_statistics_are_still_reported_after_the_path_was_remembered():
    bn = create_norm("batch", 3)
    bn(torch.randn(4, 3))
    bn(torch.randn(4, 3))
    with pytest.raises(NormUndefinedError, match="more than one value per channel"):
        bn(torch.randn(1, 3))
    bn.eval()
    bn(torch.randn(1, 3))  # running estimates: defined


def test_replaced_parameters_and_functional_call_are_honoured():
    ln = create_norm("layer", 3)
    x = torch.randn(4, 3)
    ln(x)
    ln.weight = torch.nn.Parameter(torch.full((3,), 2.0, dtype=torch.float64))  # another dtype: general path
    expected = torch.nn.functional.layer_norm(x, (3,)) * 2
    torch.testing.assert_close(ln(x), expected)
    params = {"weight": torch.full((3,), 3.0), "bias": torch.zeros(3)}
    torch.testing.assert_close(torch.func.functional_call(ln, params, (x,)), expected * 1.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_none_returns_its_input_itself_in_every_dtype(dtype):
    layer = create_norm("none", 3)
    x = torch.randn(4, 3, 2).to(dtype)
    assert layer(x) is x and layer(x) is x
    mask = torch.tensor([[True, False]] * 4)
    y = layer(x, mask)
    assert y.dtype == dtype and torch.equal(y[..., 1], torch.zeros(4, 3, dtype=dtype)) and torch.equal(y[..., 0], x[..., 0])


def test_a_fresh_layer_still_names_a_bad_input():
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        create_norm("batch", 3)([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="built for 3 channels"):
        create_norm("group", 3, num_groups=3)(torch.randn(2, 4))


@pytest.mark.parametrize("name", ["batch", "batch_layer"])
def test_copies_and_pickles_use_their_own_parameters(name):
    import copy
    import io

    layer = create_norm(name, 3)
    x = torch.randn(5, 3, 4)
    layer(x), layer(x)  # remembered path (and, for BLN, the mirrored count)
    for clone in (copy.deepcopy(layer), _pickled(layer, io)):
        with torch.no_grad():
            clone.weight.fill_(2.0)
        torch.testing.assert_close(clone(x), layer(x) * 2)  # beta is 0: y scales with gamma
        assert clone.__dict__["_fast_fn"] is None or clone.__dict__["_fast_fn"].__self__ is clone


def _pickled(layer, io):
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)

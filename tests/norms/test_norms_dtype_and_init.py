"""bfloat16 / autocast inputs (statistics in float32) and random-number-free construction."""

from __future__ import annotations

import pytest
import torch

from normbench.norms import available, create_norm

OPTIONS = {"group": {"num_groups": 4}}
SPATIAL_ONLY = {"instance"}


def _make(name, c=8, **extra):
    return create_norm(name, c, **{**OPTIONS.get(name, {}), **extra})


@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("name", available())
def test_bfloat16_input_is_computed_in_float32(name, masked):
    """A bf16 input gives exactly the float32 computation on its (exact) float32 upcast, rounded.

    If any statistic were accumulated in bfloat16 the outputs and running estimates would differ
    from the float32 ones by far more than one final rounding.
    """
    gen = torch.Generator().manual_seed(0)
    x32 = (torch.randn(6, 8, 5, generator=gen) * 3 + 2).to(torch.bfloat16).float()
    mask = (torch.rand(6, 5, generator=gen) > 0.3) if masked else None
    if mask is not None:
        mask[:, 0] = True
    low, ref = _make(name), _make(name)
    for mode in ("train", "eval"):
        getattr(low, mode)(), getattr(ref, mode)()
        y_low = low(x32.to(torch.bfloat16), mask)
        y_ref = ref(x32, mask)
        assert y_low.dtype == torch.bfloat16
        torch.testing.assert_close(y_low, y_ref.to(torch.bfloat16), atol=0, rtol=0)
    for (key, buf_low), (_, buf_ref) in zip(low.named_buffers(), ref.named_buffers()):
        assert buf_low.dtype == buf_ref.dtype, key
        torch.testing.assert_close(buf_low, buf_ref, atol=0, rtol=0, msg=key)


@pytest.mark.parametrize("name", available())
def test_autocast_bfloat16_forward_and_backward(name):
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(0)
    linear = torch.nn.Conv1d(4, 8, 1)
    norm = _make(name)
    x = torch.randn(6, 4, 5, generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = linear(x)
        assert h.dtype == torch.bfloat16
        y = norm(h)
        assert y.dtype == torch.bfloat16
        loss = y.float().square().mean()
    loss.backward()
    assert torch.isfinite(linear.weight.grad).all()
    for p in norm.parameters():
        assert p.dtype == torch.float32 and torch.isfinite(p.grad).all()
    for buf in norm.buffers():
        assert buf.dtype in (torch.float32, torch.long)
    # close to the float32 computation (bf16 has ~3 significant digits)
    y32 = _make(name)(linear(x).detach())
    torch.testing.assert_close(y.float(), y32, atol=0.1, rtol=0.05)


CONSTRUCTIONS = [(name, OPTIONS.get(name, {})) for name in available()] + [
    ("batch", {"convention": "keras", "ghost_batch_size": 4}),
    ("batch_layer", {"pooled": True, "feature_moving_mean": True}),
    ("instance", {"track_running_stats": True}),
    ("rms", {"bias": True}),
    ("batch_renorm", {}),
]


@pytest.mark.parametrize("name,options", CONSTRUCTIONS)
def test_construction_draws_no_random_numbers(name, options):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    layer = create_norm(name, 16, **options)
    assert torch.equal(torch.get_rng_state(), before)
    for param in layer.parameters():  # ones/zeros only
        assert torch.all((param == 1) | (param == 0))


def test_models_with_different_norms_share_the_other_weights():
    """Same seed -> identical weights in the layers around the norm, whatever the norm."""
    def build(name):
        torch.manual_seed(7)
        return torch.nn.Linear(5, 16), _make(name, 16), torch.nn.Linear(16, 3)

    reference = build("none")
    for name in available():
        first, _, last = build(name)
        assert torch.equal(first.weight, reference[0].weight)
        assert torch.equal(last.weight, reference[2].weight)
        assert torch.equal(last.bias, reference[2].bias)

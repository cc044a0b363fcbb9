"""Every norm computes on CUDA what it computes on CPU: train outputs, input and parameter gradients,
running estimates after several steps, and eval outputs (marked `cuda`; skipped without a GPU).

The CPU float64 module is the reference; the CUDA module is an exact copy moved to the device, fed the
same inputs. This exercises the native fast paths and the whole-tensor BLN kernel on the device where
their kernels differ from the CPU ones.
"""

from __future__ import annotations

import copy

import pytest
import torch

from normbench.norms import available, create_norm

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

#: options that make each norm valid for 4 channels; the rest take their defaults
OPTIONS = {"group": {"num_groups": 2}}
SHAPES = {"NC": (8, 4), "NCL": (4, 4, 7), "NCHW": (4, 4, 3, 5)}


def _steps(module: torch.nn.Module, inputs, upstreams, device) -> dict:
    """Three train steps (output and gradients of the last), then an eval output."""
    module = module.to(device).train()
    out = {}
    for x, g in zip(inputs, upstreams):
        module.zero_grad(set_to_none=True)
        x = x.detach().to(device).requires_grad_(True)
        y = module(x)
        y.backward(g.to(device))
        out["train"], out["grad_x"] = y.detach().cpu(), x.grad.cpu()
    out["grads"] = {n: p.grad.cpu() for n, p in module.named_parameters() if p.grad is not None}
    out["buffers"] = {n: b.cpu() for n, b in module.named_buffers()}
    module.eval()
    with torch.no_grad():
        out["eval"] = module(inputs[0].to(device)).cpu()
    return out


@pytest.mark.parametrize("layout", list(SHAPES))
@pytest.mark.parametrize("name", available())
def test_norm_on_cuda_equals_cpu(name, layout):
    if name == "instance" and layout == "NC":
        pytest.skip("instance statistics are undefined without a spatial axis (tested in test_norms_errors)")
    shape = SHAPES[layout]
    gen = torch.Generator().manual_seed(11)
    inputs = [torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 0.5 for _ in range(3)]
    upstreams = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(3)]
    reference = create_norm(name, shape[1], **OPTIONS.get(name, {})).double()
    on_cpu = _steps(copy.deepcopy(reference), inputs, upstreams, "cpu")
    on_cuda = _steps(copy.deepcopy(reference), inputs, upstreams, "cuda")
    tol = dict(atol=1e-9, rtol=1e-9)
    for key in ("train", "grad_x", "eval"):
        torch.testing.assert_close(on_cuda[key], on_cpu[key], **tol, msg=f"{name} {layout}: {key}")
    for group in ("grads", "buffers"):
        assert on_cuda[group].keys() == on_cpu[group].keys()
        for key, value in on_cpu[group].items():
            torch.testing.assert_close(on_cuda[group][key], value, **tol, msg=f"{name} {layout}: {key}")

"""What is timed: the callable for a layer, a model step or a conv+BN inference, built from a spec.

Every subject is built once, on its device, in its dtype and memory format, from seeded synthetic
inputs (the values do not change the cost of these kernels, the shapes do); the timed callable then
does exactly one call's work:

* layer ``forward``: ``module(x)`` under ``torch.no_grad()`` (the normalization kernel alone; in
  train mode BN still updates its running estimates, as it would in training).
* layer ``forward_backward``: ``module(x).backward(dy)`` with a fixed upstream gradient ``dy``;
  ``x.grad`` is dropped before each call so that no gradient accumulation is timed.
* model ``train_step``: ``zero_grad(set_to_none)``, forward, cross-entropy, backward, SGD step
  (momentum 0.9; the learning rate does not change the cost), one fixed batch.
* model ``inference``: ``model.eval()`` and ``model(x)`` under ``torch.no_grad()``.
* conv+BN ``inference``: ``bn(conv(x))`` (unfolded) or ``fuse_conv_bn(conv, bn)(x)`` (folded),
  both in eval mode under ``torch.no_grad()``, BN holding running statistics from one training
  pass so that the folded weights differ from the convolution's.

Layers and models are wrapped in ``torch.compile`` when the spec's ``compile`` is ``inductor``
(``throughput/compiled.py``). A layer spec with ``native`` also gets torch's own module for it
(``throughput/native.py``), called the same way on the same input and upstream gradient.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from normbench.norms import create_norm, fuse_conv_bn
from normbench.throughput.compiled import compiled
from normbench.throughput.device import torch_dtype, torch_memory_format
from normbench.throughput.native import native_twin
from normbench.throughput.spec import CONV_BN, LAYER, MODEL, ThroughputSpec

SGD_LR, SGD_MOMENTUM = 0.01, 0.9
_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


@dataclass
class Subject:
    """A timed callable, an untimed `prepare` run before the peak-memory pass, and for layers
    torch's own module doing the same call (`native_step`, described by `native`; when there is
    none, `native` says why)."""

    step: Callable[[], object]
    prepare: Callable[[], None] | None = None
    native_step: Callable[[], object] | None = None
    native: str = ""


def build_subject(spec: ThroughputSpec) -> Subject:
    """The callable that does one call's work of `spec` (see the module docstring)."""
    builders = {LAYER: _layer, MODEL: _model, CONV_BN: _conv_bn}
    if spec.subject not in builders:
        raise ValueError(f"unknown subject {spec.subject!r}; allowed: {', '.join(builders)}")
    return builders[spec.subject](spec)


def synthetic_input(spec: ThroughputSpec, shape: tuple[int, ...] | None = None, salt: int = 0) -> torch.Tensor:
    """Standard-normal input of `shape` (default the spec's) on its device, dtype and memory format."""
    generator = torch.Generator().manual_seed(spec.seed * 1_000_003 + salt)
    x = torch.randn(shape or spec.shape, generator=generator)
    x = x.to(device=spec.device, dtype=torch_dtype(spec.dtype))
    return x.contiguous(memory_format=torch_memory_format(spec.memory_format))


def _layer(spec: ThroughputSpec) -> Subject:
    if spec.operation not in ("forward", "forward_backward"):
        raise ValueError(f"layer operation must be forward or forward_backward, got {spec.operation!r}")
    module = create_norm(spec.norm, spec.shape[1], **spec.norm_kwargs).to(spec.device)
    module.train(spec.mode == "train")
    twin, native = native_twin(module, spec.shape) if spec.native else (None, "")
    if twin is not None:
        twin = twin.to(spec.device).train(spec.mode == "train")
    x = synthetic_input(spec)
    grad = None
    if spec.operation == "forward_backward":
        x.requires_grad_(True)
        grad = synthetic_input(spec, salt=1)

    def drop_grad() -> None:
        x.grad = None

    return Subject(
        step=_layer_call(compiled(module, spec.compile), x, grad), prepare=drop_grad if grad is not None else None,
        native_step=None if twin is None else _layer_call(compiled(twin, spec.compile), x, grad), native=native,
    )


def _layer_call(module, x: torch.Tensor, grad: torch.Tensor | None) -> Callable[[], None]:
    """``module(x)`` without autograd, or ``x.grad = None; module(x).backward(grad)``."""
    if grad is None:

        def forward() -> None:
            with torch.no_grad():
                module(x)

        return forward

    def forward_backward() -> None:
        x.grad = None
        module(x).backward(grad)

    return forward_backward


def _model(spec: ThroughputSpec) -> Subject:
    from normbench.models import create_model

    norm = functools.partial(create_norm, spec.norm, **spec.norm_kwargs)
    with torch.random.fork_rng(devices=[]):  # weights from the spec's seed; the caller's RNG untouched
        torch.manual_seed(spec.seed)
        model = create_model(
            spec.name, norm=norm, input_shape=tuple(spec.shape[1:]), num_classes=spec.num_classes or 10,
            **spec.option_kwargs,
        )
    model = model.to(device=spec.device, dtype=torch_dtype(spec.dtype))
    if spec.memory_format != "contiguous":
        model = model.to(memory_format=torch_memory_format(spec.memory_format))
    x = synthetic_input(spec)
    generator = torch.Generator().manual_seed(spec.seed + 1)
    target = torch.randint(spec.num_classes or 10, (spec.batch_size,), generator=generator).to(spec.device)
    if spec.operation == "inference":
        model.eval()
        call = compiled(model, spec.compile)

        def inference() -> None:
            with torch.no_grad():
                call(x)

        return Subject(step=inference)
    if spec.operation != "train_step":
        raise ValueError(f"model operation must be train_step or inference, got {spec.operation!r}")
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=SGD_LR, momentum=SGD_MOMENTUM)
    call = compiled(model, spec.compile)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(call(x).float(), target)  # float32 loss as normbench.train does
        loss.backward()
        optimizer.step()

    return Subject(step=train_step, prepare=lambda: optimizer.zero_grad(set_to_none=True))


def _conv_bn(spec: ThroughputSpec) -> Subject:
    geometry = spec.option_kwargs
    spatial = len(spec.shape) - 2
    kernel = geometry["kernel_size"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        conv = _CONVS[spatial](
            spec.shape[1], geometry["out_channels"], kernel, stride=geometry.get("stride", 1),
            padding=kernel // 2, bias=False,  # a convolution followed by BN carries no bias of its own
        )
    bn = create_norm("batch", geometry["out_channels"], **spec.norm_kwargs)
    dtype, memory_format = torch_dtype(spec.dtype), torch_memory_format(spec.memory_format)
    conv = conv.to(device=spec.device, dtype=dtype, memory_format=memory_format)
    bn = bn.to(spec.device)
    x = synthetic_input(spec)
    with torch.no_grad():
        bn.train()
        bn(conv(x))  # running statistics from real activations, so folding changes the weights
    bn.eval()
    conv.eval()
    if spec.variant == "folded":
        fused = fuse_conv_bn(conv, bn).to(memory_format=memory_format)

        def folded() -> None:
            with torch.no_grad():
                fused(x)

        return Subject(step=folded)
    if spec.variant != "unfolded":
        raise ValueError(f"conv_bn variant must be folded or unfolded, got {spec.variant!r}")

    def unfolded() -> None:
        with torch.no_grad():
            bn(conv(x))

    return Subject(step=unfolded)

"""The model registry: ``create_model(name, *, norm, input_shape, num_classes, **options)``.

Adding a model = one module with a ``build_*`` function and its ``DEFAULTS`` + one
``MODELS.register`` line below (see docs/architecture.md, "Adding a norm, a model or a dataset").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

from torch import nn

from normbench.models import cnn, cnn1d, lenet5, mlp, rnn, stacked_rnn, transformer
from normbench.models.blocks import NormFactory, apply_reparameterizations
from normbench.registry import Registry

# Builders take their options as **options (mlp's presets need to know which were given), so each
# registration lists them with their defaults.
MODELS: Registry[Callable[..., nn.Module]] = Registry("model", reserved=("norm", "input_shape", "num_classes"),
                                                      group="normbench.models")  # plugins: docs/extending.md
MODELS.register("mlp", mlp.build_mlp, options=mlp.DEFAULTS)
MODELS.register("cnn2d", cnn.build_cnn2d, options=cnn.DEFAULTS)
MODELS.register("cnn1d", cnn1d.build_cnn1d, options=cnn1d.DEFAULTS)
MODELS.register("lenet5", lenet5.build_lenet5, options=lenet5.DEFAULTS)
MODELS.register("rnn", rnn.build_rnn, options=rnn.DEFAULTS)
MODELS.register("stacked_lstm", stacked_rnn.build_stacked_lstm, options=stacked_rnn.DEFAULTS)
MODELS.register("transformer", transformer.build_transformer, options=transformer.DEFAULTS)


def available_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return MODELS.available()


def create_model(
    name: str,
    *,
    norm: NormFactory,
    input_shape: Sequence[int],
    num_classes: int,
    **options: Any,
) -> nn.Module:
    """Build model ``name`` whose norm slots are filled by ``norm(num_features)``.

    ``input_shape`` is one sample's channel-first shape without N (digits: ``(1, 8, 8)``; sequences
    ``(C, L)`` for ``cnn1d``, ``rnn`` and ``transformer``). The model's ``forward(x, mask=None)``
    returns logits ``(N, num_classes)`` (regression: ``num_classes=1``, the output dimension).
    Raises ``ValueError`` for an unknown model (listing the available ones), an unknown option
    (listing the allowed ones) or a bad option value (naming the allowed values).
    """
    name = MODELS.canonical(name)
    if not callable(norm):
        raise TypeError(f"norm must be a factory Callable[[int], nn.Module]; got {norm!r}")
    shape = tuple(input_shape)
    if not shape or any(isinstance(d, bool) or not isinstance(d, Integral) or d < 1 for d in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive integers; got {input_shape!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    model = MODELS.create(name, options, norm=norm, input_shape=tuple(int(d) for d in shape),
                          num_classes=int(num_classes))
    return apply_reparameterizations(model, name)

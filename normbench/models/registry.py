"""The model registry: ``create_model(name, *, norm, input_shape, num_classes, **options)``.

Adding a model = one module with a ``build_*`` function + one line in ``_BUILDERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

from torch import nn

from normbench.models.blocks import NormFactory
from normbench.models.cnn import build_cnn2d
from normbench.models.cnn1d import build_cnn1d
from normbench.models.lenet5 import build_lenet5
from normbench.models.mlp import build_mlp
from normbench.models.rnn import build_rnn
from normbench.models.stacked_rnn import build_stacked_lstm
from normbench.models.transformer import build_transformer

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": build_mlp,
    "cnn2d": build_cnn2d,
    "cnn1d": build_cnn1d,
    "lenet5": build_lenet5,
    "rnn": build_rnn,
    "stacked_lstm": build_stacked_lstm,
    "transformer": build_transformer,
}


def available_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    return sorted(_BUILDERS)


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
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(available_models())}")
    if not callable(norm):
        raise TypeError(f"norm must be a factory Callable[[int], nn.Module]; got {norm!r}")
    shape = tuple(input_shape)
    if not shape or any(isinstance(d, bool) or not isinstance(d, Integral) or d < 1 for d in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive integers; got {input_shape!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    return builder(norm=norm, input_shape=tuple(int(d) for d in shape), num_classes=int(num_classes),
                   **options)

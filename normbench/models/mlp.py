"""``mlp``: a fully connected classifier with a norm slot in every hidden layer, plus two classic presets.

The input is flattened first, so any ``input_shape`` works. Each hidden layer is
Linear → norm → activation (``placement: before``) or Linear → activation → norm (``after``),
followed by dropout when ``dropout > 0``; a final Linear maps to the logits.

Options (defaults): ``widths`` (128, 128), ``activation`` relu (relu | sigmoid | tanh | gelu),
``placement`` before (before | after), ``dropout`` 0.0, ``bias`` true, ``init`` default
(default | normal | glorot_uniform), ``init_std`` 0.01 (only with ``init: normal``), ``preset``
none (ioffe2015 | keras_dense). A preset sets several options at once; options given alongside it
override the preset's values.

``bias`` stays on by default even where a norm follows the linear layer (BN's shift makes that bias
redundant): the linear layers must be identical across norms so runs differ only in the norm.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from normbench.models.blocks import ACTIVATIONS, PLACEMENTS, Feeding, NormActivation, NormFactory, build_norm
from normbench.options import (
    Owner,
    check_bool,
    check_choice,
    check_number,
    check_positive_ints,
    check_positive_number,
    resolve_options,
)

NAME = "mlp"
OWNER = Owner("model", NAME)
INITS = ("default", "glorot_uniform", "normal")

DEFAULTS: dict[str, Any] = {
    "widths": (128, 128),
    "activation": "relu",
    "placement": "before",
    "dropout": 0.0,
    "bias": True,
    "init": "default",
    "init_std": 0.01,
    "preset": None,
}

PRESETS: dict[str, dict[str, Any]] = {
    # Ioffe & Szegedy 2015 (arXiv:1502.03167), §4.1 "Activations over time": 3 fully connected
    # hidden layers of 100 sigmoid units, "weights W initialized to small random Gaussian values",
    # a 10-way output layer, BN added to each hidden layer before the nonlinearity. The paper does
    # not state the standard deviation; 0.01 is our choice of "small" (override with init_std).
    "ioffe2015": {
        "widths": (100, 100, 100),
        "activation": "sigmoid",
        "placement": "before",
        "init": "normal",
        "init_std": 0.01,
    },
    # The TensorFlow "Basic classification" Keras tutorial (tensorflow.org/tutorials/keras/
    # classification): Flatten → Dense(128, relu) → Dense(10). The optional norm sits after the
    # ReLU (Dense 128 ReLU → norm → Dense 10), and the weights start as Keras Dense layers do:
    # Glorot-uniform kernels, zero biases.
    "keras_dense": {
        "widths": (128,),
        "activation": "relu",
        "placement": "after",
        "init": "glorot_uniform",
    },
}


class DenseBlock(nn.Module):
    """One hidden layer: Linear, then norm and activation in the configured order, then dropout."""

    def __init__(self, linear: nn.Linear, norm_act: NormActivation, dropout: float) -> None:
        super().__init__()
        self.linear = linear
        self.norm_act = norm_act
        # no module at all without dropout: an Identity module would cost a call per step
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, in)`` → ``(N, out)``."""
        x = self.norm_act.apply_in_order(self.linear(x))
        return x if self.dropout is None else self.dropout(x)


class MLP(nn.Module):
    """Flatten → hidden ``DenseBlock``s → linear head; ``config`` holds the resolved options."""

    def __init__(self, blocks: list[DenseBlock], head: nn.Linear, config: dict[str, Any]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.config = config

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` of shape ``(N, *input_shape)`` → logits ``(N, num_classes)``.

        A ``mask`` of shape ``(N, *spatial)`` (True = valid) zeroes padded input positions before
        flattening, so padding values never reach the weights. The hidden features have no
        positions left to mask, so the norms are called without one.
        """
        if mask is not None:
            if x.dim() < 3 or tuple(mask.shape) != (x.shape[0], *x.shape[2:]):
                raise ValueError(
                    f"mask shape {tuple(mask.shape)} does not match input {tuple(x.shape)}: "
                    "expected (N, *spatial)"
                )
            x = x * mask.unsqueeze(1).to(x.dtype)
        x = x.flatten(1)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def build_mlp(
    *, norm: NormFactory, input_shape: tuple[int, ...], num_classes: int, **options: Any
) -> MLP:
    """Build an ``mlp`` from validated options (see the module docstring for names and defaults)."""
    preset = options.get("preset")
    if preset is not None:
        check_choice(OWNER, "preset", preset, PRESETS)
    config = resolve_options(OWNER, {**(PRESETS[preset] if preset else {}), **options}, DEFAULTS)
    widths = check_positive_ints(OWNER, "widths", config["widths"])
    activation = check_choice(OWNER, "activation", config["activation"], ACTIVATIONS)
    placement = check_choice(OWNER, "placement", config["placement"], PLACEMENTS)
    dropout = check_number(OWNER, "dropout", config["dropout"], low=0.0, high=1.0, high_open=True)
    bias = check_bool(OWNER, "bias", config["bias"])
    init = check_choice(OWNER, "init", config["init"], INITS)
    init_std = check_positive_number(OWNER, "init_std", config["init_std"])
    # Only a user-given init_std can be silently ignored; a preset's is overridden on purpose.
    if "init_std" in options and init != "normal":
        raise ValueError(
            f"model {NAME!r}: option 'init_std' only applies with init 'normal'; got init {init!r}"
        )
    config.update(widths=widths, activation=activation, placement=placement, dropout=dropout,
                  bias=bias, init=init, init_std=init_std)

    # Layers are created in a fixed order (block by block, then the head) and norms consume no
    # RNG (build_norm), so one seed gives the same linear weights whatever the norm.
    in_features = math.prod(input_shape)
    blocks = []
    for width in widths:
        linear = nn.Linear(in_features, width, bias=bias)
        norm_act = NormActivation(build_norm(norm, width, Feeding.layer(linear)), activation, placement)
        blocks.append(DenseBlock(linear, norm_act, dropout))
        in_features = width
    head = nn.Linear(in_features, num_classes)
    model = MLP(blocks, head, config)
    _initialize(model, init, init_std)
    return model


def _initialize(model: MLP, init: str, init_std: float) -> None:
    """Re-draw the linear weights for ``normal`` / ``glorot_uniform`` (biases zero, as both sources do)."""
    if init == "default":
        return  # torch's own Linear initialisation, already drawn at construction
    linears = [block.linear for block in model.blocks] + [model.head]
    with torch.no_grad():
        for linear in linears:
            if init == "normal":
                nn.init.normal_(linear.weight, mean=0.0, std=init_std)
            else:
                nn.init.xavier_uniform_(linear.weight)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

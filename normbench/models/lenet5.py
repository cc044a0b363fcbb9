"""``lenet5``: the LeNet-5 of Ziaee & Çano's BLN experiments (CIFAR-10), channel-first, norm slots as theirs.

Source: the authors' notebooks (A2Amir/Batch-Layer-Normalization, commit a79b856; the protocol is in
``normbench/reference/bln2022.yaml``). Their Keras model, channels-last, is::

    Conv2D(6, 5x5, padding same, tanh) → AveragePooling2D(2) → NORM
    → Conv2D(16, 5x5, padding valid, tanh) → AveragePooling2D(2) → NORM → Flatten
    → Dense(120) → tanh → NORM → Dense(84) → tanh → NORM → Dense(classes) (logits)

with Glorot-uniform kernels and zero biases. Here the same in PyTorch's channel-first layout:
``Conv2d(C, 6, 5, padding=2) → tanh → AvgPool2d(2) → NORM(6) → Conv2d(6, 16, 5) → tanh →
AvgPool2d(2) → NORM(16) → Flatten → Linear(→120) → tanh → NORM(120) → Linear(120, 84) → tanh →
NORM(84) → Linear(84, classes)``. On a 3×32×32 input it has 83,126 trainable parameters without
norms and 83,578 with one γ and β per channel/unit (BN, LN, BLN), as the authors report. Flatten
reads (C, H, W) where Keras reads (H, W, C): a fixed permutation of the first dense layer's inputs,
which i.i.d. Glorot weights do not see.

Norm layouts, for the reader comparing with Keras: the norm after a convolution gets ``(N, C, H,
W)``. Keras' ``LayerNormalization()`` on channels-last maps normalizes over the channel axis alone
at each pixel, which is normbench's ``layer`` with ``per_position: true`` (the default ``layer``
normalizes over C, H, W together); Keras' ``BatchNormalization`` is ``batch`` (``convention:
keras`` for its momentum/eps), and the reference BLN is ``batch_layer``'s default.

Options (defaults): ``activation`` tanh (relu | sigmoid | tanh | gelu); ``pooling`` avg (avg |
max); ``placement`` after (the authors': the norm after the pooling and after each dense
activation) or before (the norm right after each convolution/linear map, before the activation,
as Ioffe & Szegedy place BN); ``conv2_padding`` auto (valid | same | auto): the second convolution
pads ``valid`` as LeNet-5 does where the input allows (at least 12×12) and ``same`` on smaller
images such as 8×8 digits, where ``valid`` would leave nothing; the resolved value is kept in
``model.config``. An input too small for the chosen padding raises ``ValueError`` naming the
minimum size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from normbench.models.blocks import ACTIVATIONS, PLACEMENTS, Feeding, NormFactory, build_norm
from normbench.options import Owner, check_choice, resolve_options

NAME = "lenet5"
OWNER = Owner("model", NAME)
CONV_CHANNELS = (6, 16)
DENSE_WIDTHS = (120, 84)
KERNEL = 5
POOLINGS: dict[str, type[nn.Module]] = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
PADDINGS = ("auto", "same", "valid")
# Smallest image side each padding of the second convolution keeps at least 1×1 after the last pool:
# same: s // 2 // 2 >= 1; valid: (s // 2 - 4) // 2 >= 1.
MIN_SIDE = {"same": 4, "valid": 12}

DEFAULTS: dict[str, Any] = {
    "activation": "tanh",
    "pooling": "avg",
    "placement": "after",
    "conv2_padding": "auto",
}


class LeNetStage(nn.Module):
    """A convolution or linear map, its activation, an optional 2×2 pool and the norm where placed.

    ``after``: map → activation → pool → norm (the authors'); ``before``: map → norm → activation
    → pool.
    """

    def __init__(self, layer: nn.Module, norm: nn.Module, activation: str, pool: nn.Module | None,
                 placement: str) -> None:
        super().__init__()
        self.layer = layer
        self.norm = norm
        self.activation = ACTIVATIONS[activation]()
        self.pool = pool  # None for the dense stages
        self.placement = placement

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.pool is None else self.pool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, ...)`` → ``(N, C_out, ...)``."""
        x = self.layer(x)
        if self.placement == "before":
            return self._pool(self.activation(self.norm(x)))
        return self.norm(self._pool(self.activation(x)))

    def extra_repr(self) -> str:
        return f"placement={self.placement!r}"


class LeNet5(nn.Module):
    """Two conv stages → flatten → two dense stages → linear head; ``config`` holds the resolved options."""

    def __init__(self, stages: list[LeNetStage], head: nn.Linear, config: dict[str, Any]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.config = config

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(N, C, H, W)`` → logits ``(N, num_classes)``; images carry no padding mask."""
        if mask is not None:
            raise ValueError(
                f"model {NAME!r} takes no padding mask (its pooling and flatten assume whole images); "
                "use cnn2d for masked images"
            )
        conv1, conv2, dense1, dense2 = self.stages
        x = conv2(conv1(x)).flatten(1)
        return self.head(dense2(dense1(x)))


def _feature_side(side: int, padding: str) -> int:
    """Side of the map after conv1 (same) → pool → conv2 (``padding``) → pool."""
    side = side // 2
    if padding == "valid":
        side -= KERNEL - 1
    return side // 2


def _resolve_padding(input_shape: tuple[int, ...], requested: str) -> str:
    """The second convolution's padding for this input; ``ValueError`` naming the minimum size."""
    smallest = min(input_shape[1:])
    padding = requested
    if requested == "auto":
        padding = "valid" if smallest >= MIN_SIDE["valid"] else "same"
    if smallest < MIN_SIDE[padding]:
        raise ValueError(
            f"model {NAME!r}: input {'x'.join(map(str, input_shape))} is too small: with conv2_padding "
            f"{padding!r} a feature map shrinks to zero size. The minimum input size is "
            f"{MIN_SIDE['same']}x{MIN_SIDE['same']} with conv2_padding 'same' (or 'auto') and "
            f"{MIN_SIDE['valid']}x{MIN_SIDE['valid']} with 'valid' (LeNet-5's own geometry)"
        )
    return padding


def build_lenet5(
    *, norm: NormFactory, input_shape: tuple[int, ...], num_classes: int, **options: Any
) -> LeNet5:
    """Build a ``lenet5`` from validated options (see the module docstring for names and defaults)."""
    if len(input_shape) != 3:
        raise ValueError(
            f"model {NAME!r} needs an image input_shape (C, H, W); got {tuple(input_shape)!r}"
        )
    config = resolve_options(OWNER, options, DEFAULTS)
    activation = check_choice(OWNER, "activation", config["activation"], ACTIVATIONS)
    pooling = check_choice(OWNER, "pooling", config["pooling"], POOLINGS)
    placement = check_choice(OWNER, "placement", config["placement"], PLACEMENTS)
    requested = check_choice(OWNER, "conv2_padding", config["conv2_padding"], PADDINGS)
    padding = _resolve_padding(input_shape, requested)
    config.update(activation=activation, pooling=pooling, placement=placement, conv2_padding=padding)

    # Fixed construction order and RNG-free norms (build_norm): one seed, same weights for every norm.
    in_channels, height, width = input_shape
    c1, c2 = CONV_CHANNELS
    conv1 = nn.Conv2d(in_channels, c1, KERNEL, padding=KERNEL // 2)
    conv2 = nn.Conv2d(c1, c2, KERNEL, padding=KERNEL // 2 if padding == "same" else 0)
    flat = c2 * _feature_side(height, padding) * _feature_side(width, padding)
    stages = [
        LeNetStage(conv1, build_norm(norm, c1, Feeding.layer(conv1)), activation, POOLINGS[pooling](2), placement),
        LeNetStage(conv2, build_norm(norm, c2, Feeding.layer(conv2)), activation, POOLINGS[pooling](2), placement),
    ]
    in_features = flat
    for width_out in DENSE_WIDTHS:
        linear = nn.Linear(in_features, width_out)
        stages.append(LeNetStage(linear, build_norm(norm, width_out, Feeding.layer(linear)), activation, None,
                                 placement))
        in_features = width_out
    head = nn.Linear(in_features, num_classes)
    model = LeNet5(stages, head, config)
    _glorot_uniform(model)
    return model


def _glorot_uniform(model: LeNet5) -> None:
    """Keras' defaults: Glorot-uniform kernels (fans include the 5×5 receptive field), zero biases."""
    layers = [stage.layer for stage in model.stages] + [model.head]
    with torch.no_grad():
        for layer in layers:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

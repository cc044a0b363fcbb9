"""``cnn1d``: the MNIST-1D reference CNN (Greydanus 2020) with a norm slot after every convolution.

The shape follows ``ConvBase`` of the MNIST-1D repository (greydanus/mnist1d, ``notebooks/models.py``;
Greydanus 2020, "Scaling down deep learning"): three ``Conv1d`` layers of 25 channels with kernels
5, 3, 3, stride 2 and padding 1, each followed by a ReLU, then the feature maps are flattened into one
linear layer (a length-40 input gives 40 → 19 → 10 → 5 positions, 25 × 5 = 125 features). Here each
convolution is followed by a norm and the activation in the configured order; with the ``none``
norm and the defaults the network is ``ConvBase``.

Options (defaults): ``channels`` (25, 25, 25); ``kernel_size`` 5 for the first layer and 3 for the
others, ``stride`` 2 and ``padding`` 1 (each one integer for every layer or a list with one per
layer); ``activation`` relu (relu | sigmoid | tanh | gelu); ``placement`` before (before | after);
``bias`` true (kept even before a norm, so that the convolutions are identical across norms).

Masks: ``forward(x, mask)`` takes a boolean ``(N, L)`` mask of valid positions (True = valid).
Padded positions are zeroed at the input and after every block, so a convolution sees zeros there,
as at a real sequence end. An output position is valid when its receptive window holds at least
one valid input position; the norms get that downsampled mask, so their statistics use valid
positions only. The linear head reads the flattened features with zeros at padded positions, so
values at padded positions never change the logits.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from normbench.models.blocks import (
    ACTIVATIONS,
    PLACEMENTS,
    Feeding,
    NormActivation,
    NormFactory,
    build_norm,
    check_sequence_input,
    sequence_shape,
)
from normbench.options import Owner, check_bool, check_choice, check_int_per_layer, check_positive_ints, resolve_options

NAME = "cnn1d"
OWNER = Owner("model", NAME)

DEFAULTS: dict[str, Any] = {
    "channels": (25, 25, 25),
    "kernel_size": None,  # the reference's 5 for the first layer and 3 for the others, at any depth
    "stride": 2,
    "padding": 1,
    "activation": "relu",
    "placement": "before",
    "bias": True,
}


def output_length(length: int, kernel_size: int, stride: int, padding: int) -> int:
    """Positions a ``Conv1d`` (dilation 1) produces from ``length`` input positions."""
    return (length + 2 * padding - kernel_size) // stride + 1


def downsample_mask(mask: torch.Tensor, kernel_size: int, stride: int, padding: int) -> torch.Tensor:
    """``(N, L)`` → ``(N, L_out)``: an output position is valid if any input in its window is."""
    windows = F.pad(mask, (padding, padding), value=False).unfold(-1, kernel_size, stride)
    return windows.any(-1)


class Conv1dBlock(nn.Module):
    """Conv1d → norm/activation, with padded positions kept at zero."""

    def __init__(self, conv: nn.Conv1d, norm_act: NormActivation) -> None:
        super().__init__()
        self.conv = conv
        self.norm_act = norm_act

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(N, C_in, L)`` → ``(N, C_out, L_out)`` and the mask at the output resolution."""
        if mask is None:
            return self.norm_act.apply_in_order(self.conv(x)), None
        (k,), (s,), (p,) = self.conv.kernel_size, self.conv.stride, self.conv.padding
        mask = downsample_mask(mask, k, s, p)
        # zero again after the activation: sigmoid(0) or a norm's beta would make padding non-zero
        return self.norm_act.apply_in_order(self.conv(x), mask).masked_fill(~mask.unsqueeze(1), 0.0), mask


class CNN1d(nn.Module):
    """Conv blocks → flatten → linear head; ``config`` holds the resolved options."""

    def __init__(
        self, blocks: list[Conv1dBlock], head: nn.Linear, in_channels: int, config: dict[str, Any]
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.in_channels = in_channels
        self.config = config

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(N, C, L)`` (optional bool ``mask`` ``(N, L)``) → logits ``(N, num_classes)``."""
        mask = check_sequence_input(x, mask, self.in_channels)
        if mask is not None:
            x = x.masked_fill(~mask.unsqueeze(1), 0.0)
        for block in self.blocks:
            x, mask = block(x, mask)
        return self.head(x.flatten(1))


def build_cnn1d(
    *, norm: NormFactory, input_shape: tuple[int, ...], num_classes: int, **options: Any
) -> CNN1d:
    """Build a ``cnn1d`` from validated options (see the module docstring for names and defaults)."""
    in_channels, length = sequence_shape(NAME, input_shape)
    config = resolve_options(OWNER, options, DEFAULTS)
    channels = check_positive_ints(OWNER, "channels", config["channels"])
    layers = len(channels)
    kernel_size = config["kernel_size"]
    if kernel_size is None:
        kernel_size = (5,) + (3,) * (layers - 1)
    kernel_sizes = check_int_per_layer(OWNER, "kernel_size", kernel_size, layers)
    strides = check_int_per_layer(OWNER, "stride", config["stride"], layers)
    paddings = check_int_per_layer(OWNER, "padding", config["padding"], layers, minimum=0)
    activation = check_choice(OWNER, "activation", config["activation"], ACTIVATIONS)
    placement = check_choice(OWNER, "placement", config["placement"], PLACEMENTS)
    bias = check_bool(OWNER, "bias", config["bias"])
    config.update(channels=channels, kernel_size=kernel_sizes, stride=strides, padding=paddings,
                  activation=activation, placement=placement, bias=bias)

    # Fixed construction order (block by block, then the head) and RNG-free norms (build_norm):
    # one seed gives the same convolution weights whatever the norm.
    blocks = []
    c_in, positions = in_channels, length
    for i, (c_out, k, s, p) in enumerate(zip(channels, kernel_sizes, strides, paddings)):
        positions_out = output_length(positions, k, s, p)
        if positions_out < 1:
            raise ValueError(
                f"model {NAME!r}: layer {i + 1} (kernel_size {k}, stride {s}, padding {p}) gets "
                f"{positions} positions and would output none; use a smaller kernel_size or stride, "
                "more padding, or fewer channels entries (layers)"
            )
        conv = nn.Conv1d(c_in, c_out, k, stride=s, padding=p, bias=bias)
        norm_act = NormActivation(build_norm(norm, c_out, Feeding.layer(conv)), activation, placement)
        blocks.append(Conv1dBlock(conv, norm_act))
        c_in, positions = c_out, positions_out
    head = nn.Linear(c_in * positions, num_classes)
    return CNN1d(blocks, head, in_channels, config)

"""Pieces every model shares: activations, building a norm from its factory, and the norm/activation pair.

``placement`` is the one architectural choice about a norm that every model exposes: ``before``
puts the norm between the linear map and the nonlinearity (Ioffe & Szegedy 2015, §3.2: "we add the
BN transform immediately before the nonlinearity"), ``after`` applies it to the activation's output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

NormFactory = Callable[[int], nn.Module]

# Choices are listed alphabetically here and in every model: option errors list them in this order.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}
PLACEMENTS = ("after", "before")


def build_norm(norm: NormFactory, num_features: int) -> nn.Module:
    """Call the norm factory without touching the global RNG stream.

    Pairing runs by seed needs every non-norm layer to get the same initial weights whatever the
    norm is. The registry's norms draw no random numbers, but forking the RNG here makes that hold
    for any factory (e.g. one whose affine parameters are randomly initialised).
    """
    with torch.random.fork_rng(devices=[]):
        module = norm(num_features)
    if not isinstance(module, nn.Module):
        raise TypeError(f"norm factory returned {type(module).__name__}, expected a torch.nn.Module")
    return module


def apply_norm(norm: nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Call ``norm`` with ``mask=`` only when there is a mask, so plain modules work unmasked."""
    return norm(x) if mask is None else norm(x, mask=mask)


class NormActivation(nn.Module):
    """A norm and an activation applied in the configured order (``before``: norm first)."""

    def __init__(self, norm: nn.Module, activation: str, placement: str) -> None:
        super().__init__()
        self.norm = norm
        self.activation = ACTIVATIONS[activation]()
        self.placement = placement

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalize then activate, or activate then normalize."""
        if self.placement == "before":
            return self.activation(apply_norm(self.norm, x, mask))
        return apply_norm(self.norm, self.activation(x), mask)

    def extra_repr(self) -> str:
        return f"placement={self.placement!r}"


def sequence_shape(model: str, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(C, L)`` of a sequence ``input_shape``; ``ValueError`` naming the model for any other layout."""
    if len(input_shape) != 2:
        raise ValueError(
            f"model {model!r} needs a sequence input_shape (C, L); got {tuple(input_shape)!r}"
        )
    return input_shape[0], input_shape[1]


def check_sequence_input(
    x: torch.Tensor, mask: torch.Tensor | None, channels: int
) -> torch.Tensor | None:
    """Validate channel-first ``x`` ``(N, C, L)`` and its mask ``(N, L)``; return the mask as bool.

    Padded positions (mask False) of ``x`` are not looked at here: each sequence model zeroes them
    itself so that their values can never reach the output.
    """
    if x.dim() != 3 or x.shape[1] != channels:
        raise ValueError(
            f"input shape {tuple(x.shape)} is not a batch of sequences (N, {channels}, L)"
        )
    if mask is None:
        return None
    if tuple(mask.shape) != (x.shape[0], x.shape[2]):
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match input {tuple(x.shape)}: expected (N, L)"
        )
    return mask.to(device=x.device, dtype=torch.bool)

"""Pieces every model shares: activations, building a norm from its factory, and the norm/activation pair.

``placement`` is the one architectural choice about a norm that every model exposes: ``before``
puts the norm between the linear map and the nonlinearity (Ioffe & Szegedy 2015, §3.2: "we add the
BN transform immediately before the nonlinearity"), ``after`` applies it to the activation's output.

Norms that reparameterize the layer feeding their slot instead of normalizing activations (weight
normalization: the norm class sets ``reparameterizes_feeding``) learn that layer from the model:
``build_norm(norm, n, feeding=Feeding.layer(linear))`` (or :func:`attach_feeding` when the slot is
built before its layer), and ``create_model`` calls :func:`apply_reparameterizations` once the
builder's own initialization is done. A model that names no feeding layer cannot use such a norm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Feeding:
    """The layer whose output a norm slot receives: the weights a reparameterizing norm normalizes.

    ``weights``: (parameter name, output-unit axis) pairs; ``bias``: the parameter that shifts the
    slot's input (None if none); ``feed_forward``: the slot's input is the layer's ``W x + b``, so
    a data-dependent initialization can rescale it. ``module=None``: no layer feeds the slot.
    """

    module: nn.Module | None
    weights: tuple[tuple[str, int], ...] = ()
    bias: str | None = None
    feed_forward: bool = False

    @classmethod
    def layer(cls, layer: nn.Module) -> "Feeding":
        """A Linear or Conv layer: its ``weight`` (output units first) and its bias, if it has one."""
        bias = "bias" if getattr(layer, "bias", None) is not None else None
        return cls(layer, (("weight", 0),), bias, feed_forward=True)


NO_FEEDING = Feeding(None)  # a slot that no layer feeds (e.g. the LSTM cell state's read-out)


def build_norm(norm: NormFactory, num_features: int, feeding: Feeding | None = None) -> nn.Module:
    """Call the norm factory without touching the global RNG stream; tell it what feeds its slot.

    Pairing runs by seed needs every non-norm layer to get the same initial weights whatever the
    norm is. The registry's norms draw no random numbers, but forking the RNG here makes that hold
    for any factory (e.g. one whose affine parameters are randomly initialised).
    """
    with torch.random.fork_rng(devices=[]):
        module = norm(num_features)
    if not isinstance(module, nn.Module):
        raise TypeError(f"norm factory returned {type(module).__name__}, expected a torch.nn.Module")
    if feeding is not None:
        attach_feeding(module, feeding)
    return module


def attach_feeding(module: nn.Module, feeding: Feeding) -> None:
    """Tell a norm that reparameterizes the layer feeding its slot which layer that is (others ignore it)."""
    if getattr(module, "reparameterizes_feeding", False):
        module.feed_from(feeding.module, feeding.weights, feeding.bias, feeding.feed_forward)


def apply_reparameterizations(model: nn.Module, model_name: str) -> nn.Module:
    """Reparameterize every feeding layer its norms asked for; ValueError when the model named none.

    Runs after the builder, so the model's own (re-)initialization of the weights comes first and
    the reparameterization starts from exactly those weights.
    """
    slots = [m for m in model.modules() if getattr(m, "reparameterizes_feeding", False)]
    for module in slots:
        if not module.has_feeding:
            name = getattr(module, "norm_name", type(module).__name__)
            raise ValueError(
                f"norm {name!r} reparameterizes the layer that feeds each norm slot, and model {model_name!r} "
                "does not say which layer feeds its slots; use it with mlp, cnn2d, cnn1d, lenet5, rnn or "
                "stacked_lstm"
            )
    for module in slots:
        module.reparameterize()
    return model


def apply_norm(norm: nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Call ``norm`` with ``mask=`` only when there is a mask, so plain modules work unmasked."""
    return norm(x) if mask is None else norm(x, mask=mask)


class NormActivation(nn.Module):
    """A norm and an activation applied in the configured order (``before``: norm first).

    The blocks that own one call :meth:`apply_in_order` rather than the module itself: this
    container has no computation of its own, and nn.Module's call machinery costs ~2.5 µs a call
    (measured at batch 60, torch 2.13 CPU, 1 thread), a measurable share of a small MLP's step
    (issue 15's harness-overhead target). Hooks belong on its ``norm`` and ``activation``, which
    are still called as modules (the probes hook them there); a hook on this container would not
    run when a block calls it.
    """

    def __init__(self, norm: nn.Module, activation: str, placement: str) -> None:
        super().__init__()
        self.norm = norm
        self.activation = ACTIVATIONS[activation]()
        self.placement = placement

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalize then activate, or activate then normalize."""
        return self.apply_in_order(x, mask)

    def apply_in_order(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """What :meth:`forward` computes, without nn.Module's per-call dispatch (see the class docstring)."""
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

"""The protocol every normbench norm follows: ``forward(x, mask=None)`` on channel-first input.

``NormModule`` validates input and mask, runs the family's ``_normalize`` in the statistics dtype
(float32 for half/bfloat16 input, with autocast switched off so reductions are not cast down), and
returns the result in the input's dtype. Parameters are created with ``torch.ones``/``torch.zeros``
only, so building a norm never draws random numbers: models built from one seed get identical
weights in every other layer whatever norm they use. What generic code needs to know about a
particular norm sits behind its hooks, whose defaults do nothing: ``on_epoch_start`` (the training
loop), ``prepare_data_init`` (the training loop, once before training) and ``check_batch_sizes``
(suite validation).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from normbench.norms.layout import check_input, check_mask, compute_dtype
from normbench.options import Owner, check_bool, check_int


class OptionProblem(NamedTuple):
    """Why an option of a norm cannot work in a suite: the option's name and the reason."""

    option: str
    message: str


class NormModule(nn.Module, abc.ABC):
    """Base class: channel count, optional per-channel affine (gamma = 1, beta = 0), forward template."""

    #: canonical registry name, used in error messages
    norm_name = "norm"

    def __init__(self, num_features: int, *, affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        self.num_features = check_int(self.owner, "num_features", num_features, 1)
        self.affine = check_bool(self.owner, "affine", affine)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(self.num_features))
            if bias:
                self.bias = nn.Parameter(torch.zeros(self.num_features))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    @property
    def owner(self) -> Owner:
        """How option errors name this norm: ``norm 'batch'``."""
        return Owner("norm", self.norm_name)

    @classmethod
    def check_batch_sizes(cls, options: Mapping[str, Any], batch_sizes: Sequence[int]) -> OptionProblem | None:
        """Why ``options`` cannot train at some of ``batch_sizes``, or None; checked when a suite is
        validated, before any run. Most norms take any batch size."""
        return None

    def on_epoch_start(self) -> None:
        """Called by the training loop at the start of every epoch; most norms do nothing."""

    def prepare_data_init(self) -> bool:
        """Arm a data-dependent initialization for the next forward pass, which the training loop
        then runs once before training (eval mode, a fixed batch of training data); return whether
        anything was armed. Most norms have none (weight norm's is Salimans & Kingma's)."""
        return False

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalize ``x`` ``(N, C, *spatial)``; positions where ``mask`` is False are zero."""
        check_input(self.norm_name, x, self.num_features)
        mask = check_mask(self.norm_name, x, mask)
        dtype = compute_dtype(x.dtype)
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):
            # autocast would run the GEMM-like reductions in bfloat16; statistics must stay float32
            with torch.autocast(device_type, enabled=False):
                y = self._normalize(x.to(dtype), mask)
        else:
            y = self._normalize(x.to(dtype), mask)
        return y.to(x.dtype)

    @abc.abstractmethod
    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The norm itself, on validated input already cast to the compute dtype; each norm defines it."""

    def _affine(self, dtype: torch.dtype) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """gamma and beta in the compute dtype (differentiable casts), or None when absent."""
        w = None if self.weight is None else self.weight.to(dtype)
        b = None if self.bias is None else self.bias.to(dtype)
        return w, b

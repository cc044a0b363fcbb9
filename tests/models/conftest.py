"""Norm factories for model tests, independent of normbench.norms (written in parallel)."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class ReferenceBatchNorm(nn.BatchNorm1d):
    """torch's batch norm on ``(N, C)`` or ``(N, C, H, W)``, with the ``mask=None`` protocol."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in (2, 4):
            raise ValueError(f"expected 2D or 4D input, got {input.dim()}D")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        assert mask is None, "the reference batch norm does not support masks"
        return super().forward(x)


class IdentityNorm(nn.Module):
    """The ``none`` norm: returns its input."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return x


class RandomAffineNorm(nn.Module):
    """A norm whose parameters are drawn from the global RNG at construction (a worst case for pairing)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_features))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.view(shape)


class RecordingNorm(IdentityNorm):
    """Identity that records the shapes of every input and mask it sees."""

    def __init__(self, log: list) -> None:
        super().__init__()
        self.log = log

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self.log.append((tuple(x.shape), None if mask is None else tuple(mask.shape)))
        return x


def weights_as_built(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with each weight-normalized parameter under its own name again, holding
    v (``original1``): the weights the builder drew, which ``g`` (``original0`` = ||v||) rescales to
    themselves. Lets the pairing tests compare weight-normalized models with the others."""
    state = {}
    for key, value in model.state_dict().items():
        if ".parametrizations." in key:
            if not key.endswith(".original1"):
                continue
            owner, rest = key.split(".parametrizations.")
            key = f"{owner}.{rest.removesuffix('.original1')}"
        state[key] = value
    return state


@pytest.fixture
def as_built():
    """:func:`weights_as_built`, for tests comparing models across norms."""
    return weights_as_built


@pytest.fixture
def batch_norm():
    return ReferenceBatchNorm


@pytest.fixture
def identity_norm():
    return lambda num_features: IdentityNorm()


@pytest.fixture
def random_affine_norm():
    return RandomAffineNorm


@pytest.fixture(params=["batch", "identity"])
def any_norm(request):
    """Each test factory in turn: one with parameters and running statistics, one without."""
    return {"batch": ReferenceBatchNorm, "identity": lambda c: IdentityNorm()}[request.param]


@pytest.fixture
def recording_norm():
    """A factory that logs the feature counts it is called with and the shapes its modules see."""
    calls: list[int] = []
    seen: list = []

    def factory(num_features: int) -> nn.Module:
        calls.append(num_features)
        return RecordingNorm(seen)

    factory.calls = calls
    factory.seen = seen
    return factory

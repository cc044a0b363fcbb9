"""Good and bad plugins for tests/plugins: named by import path `nb_test_plugins:<name>`."""

from __future__ import annotations

import torch
from torch import nn

from normbench.data import load_dataset

# -- models following the builder protocol


class TinyConvNet(nn.Module):
    """conv → norm → ReLU → mean pool → linear; ``fail_at`` makes forward raise for that batch size."""

    def __init__(self, norm, channels: int, num_classes: int, width: int, fail_at: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.norm = norm(width)
        self.head = nn.Linear(width, num_classes)
        self.fail_at = fail_at

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.fail_at is not None and x.shape[0] == self.fail_at:
            raise RuntimeError(f"my head cannot take a batch of {self.fail_at}")
        return self.head(torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3)))


def build_net(*, norm, input_shape, num_classes, width=8):
    return TinyConvNet(norm, input_shape[0], num_classes, width)


def build_fails_at_four(*, norm, input_shape, num_classes):
    return TinyConvNet(norm, input_shape[0], num_classes, 8, fail_at=4)


def build_wrong_signature(layers, width=8):
    return nn.Linear(width, layers)


def build_raises(*, norm, input_shape, num_classes):
    raise RuntimeError("no kernels for this machine")


class AlwaysFails(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, x, mask=None):
        return self.linear(x)  # (N, 1, 8, 8) @ (3, 3): a shape error


def build_bad_forward(*, norm, input_shape, num_classes):
    return AlwaysFails()


# -- existing models for swap_norms (no normbench protocol)


class TorchConvNet(nn.Module):
    """An 'existing' model with its own BatchNorm layers, built from its options alone."""

    def __init__(self, num_classes: int = 1000, width: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3)))


def torch_conv_net(*, num_classes=1000, width=8):
    return TorchConvNet(num_classes, width)


def no_norm_net(*, num_classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))


# -- norms


class MaskedCenterNorm(nn.Module):
    """Subtracts the per-sample mean over valid positions; honours the mask."""

    def __init__(self, num_features, *, eps=1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x, mask=None):
        if mask is None:
            return x - x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
        weights = mask.unsqueeze(1).to(x.dtype)
        mean = (x * weights).sum(dim=(1, 2), keepdim=True) / (weights.sum(dim=(1, 2), keepdim=True) * x.shape[1])
        return (x - mean) * weights


def center_norm(num_features, *, eps=1e-5):
    """A norm given as a factory function rather than a class."""
    return MaskedCenterNorm(num_features, eps=eps)


class IgnoresMaskNorm(nn.Module):
    """Standardizes each sample over everything, padding included, then zeroes padding: ignores the mask."""

    def __init__(self, num_features, *, eps=1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x, mask=None):
        dims = tuple(range(1, x.dim()))
        y = (x - x.mean(dim=dims, keepdim=True)) / (x.var(dim=dims, keepdim=True) + self.eps).sqrt()
        return y if mask is None else y * mask.unsqueeze(1).to(y.dtype)


class NoWidthNorm(nn.Module):
    """Wrong signature: takes no channel count."""

    def __init__(self, *, eps=1e-5):
        super().__init__()

    def forward(self, x, mask=None):
        return x


class RaisesInForwardNorm(nn.Module):
    """Builds, then fails on the first training batch (its forward runs only in training mode)."""

    def __init__(self, num_features):
        super().__init__()

    def forward(self, x, mask=None):
        if self.training:
            raise ArithmeticError("my statistics overflowed")
        return x


# -- datasets


def load_small_digits(*, split_seed=0):
    return load_dataset("digits", split_seed=split_seed)


def load_a_dict(**options):
    return {"x": [1, 2, 3]}


def load_raises(*, size=4):
    raise OSError("the disk is on fire")


NOT_CALLABLE = 42

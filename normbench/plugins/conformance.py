"""Checks that run a plugin once while a suite is validated, so a bad plugin is exit 2 before any run.

Built-ins are tested by normbench's own test suite; a plugin is tried here on the suite's real
data: a dataset loader must return a ``Dataset``, a model's forward must give ``(N, num_classes)``
logits on two training samples, and a norm must honour the padding mask when a dataset has one
(padded positions come out zero and never change the valid ones). Each check raises
``PluginError`` naming the plugin, what was tried and what is expected. Nothing here touches the
global random stream (pairing by seed depends on it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from normbench.data import Dataset
from normbench.norms import NormUndefinedError
from normbench.plugins.source import EXTENDING_DOC, PluginError

PROBE_SAMPLES = 2
MASK_TOLERANCE = 1e-4


def check_dataset_result(name: str, result: Any) -> Dataset:
    """The loaded dataset, or PluginError when a loader returned anything but a ``Dataset``."""
    if not isinstance(result, Dataset):
        raise PluginError(
            f"dataset {name!r} returned a {type(result).__name__}, not a normbench.data.Dataset "
            f"(see {EXTENDING_DOC}, 'A dataset')"
        )
    return result


def check_model_output(name: str, model: Any, dataset: Dataset) -> None:
    """PluginError unless ``model`` is an nn.Module whose forward on two training samples of
    ``dataset`` (eval mode, with the mask where the dataset has one) gives ``(2, num_classes)``."""
    if not isinstance(model, nn.Module):
        raise PluginError(f"model {name!r} returned a {type(model).__name__}, not a torch.nn.Module")
    count = min(PROBE_SAMPLES, dataset.n_train)
    x = dataset.x_train[:count]
    mask = None if dataset.mask_train is None else dataset.mask_train[:count]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            output = model(x) if mask is None else model(x, mask=mask)
    except NormUndefinedError:
        return  # a norm without a definition here is a result (`undefined`), not a broken plugin
    except Exception as exc:  # the plugin's own error, named with what it was given
        given = f"input {tuple(x.shape)}" + (f" and mask {tuple(mask.shape)}" if mask is not None else "")
        raise PluginError(f"model {name!r}: forward on {count} samples of dataset {dataset.name!r} ({given}) raised "
                          f"{type(exc).__name__}: {exc}") from None
    finally:
        model.train(was_training)
    expected = (count, dataset.num_classes)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise PluginError(
            f"model {name!r}: forward on {count} samples of dataset {dataset.name!r} returned {got}; expected logits "
            f"of shape {expected} ({dataset.num_classes} outputs: give the model's class count in its options)"
        )


def check_norm_mask(name: str, factory: Callable[[int], nn.Module], dataset_name: str) -> None:
    """PluginError unless the norm from ``factory`` (training mode) zeroes padded positions and keeps
    them out of what the valid positions get; called when a suite's dataset has padding masks."""
    norm, width = _some_width(factory)
    if norm is None:
        return  # no width builds with these options: building the models reports why
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, width, 6, generator=generator)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    valid = mask.unsqueeze(1).expand_as(x)
    padded = x.masked_fill(~valid, 1e3)  # what padding holds must not matter
    where = f"norm {name!r} (dataset {dataset_name!r} has padding masks)"
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            first, second = norm.train()(x, mask=mask), norm(padded, mask=mask)
    except TypeError as exc:
        raise PluginError(f"{where}: forward(x, mask=...) failed: {exc}; a norm's forward takes "
                          f"(x, mask=None) (see {EXTENDING_DOC}, 'A norm')") from None
    except Exception as exc:
        raise PluginError(f"{where}: forward on input {tuple(x.shape)} with a mask raised "
                          f"{type(exc).__name__}: {exc}") from None
    if not isinstance(first, torch.Tensor) or first.shape != x.shape:
        got = tuple(first.shape) if isinstance(first, torch.Tensor) else type(first).__name__
        raise PluginError(f"{where}: returned {got} for input {tuple(x.shape)}; a norm keeps the input's shape")
    leak = first[~valid].abs().max().item()
    if leak > MASK_TOLERANCE:
        raise PluginError(f"{where}: padded positions must come out zero, got values up to {leak:.3g}; "
                          "multiply the output by the mask")
    change = (first[valid] - second[valid]).abs().max().item()
    if change > MASK_TOLERANCE:
        raise PluginError(f"{where}: ignores the mask: changing only the padded positions changed valid outputs by "
                          f"up to {change:.3g}; leave masked positions out of the statistics")


def _some_width(factory: Callable[[int], nn.Module]) -> tuple[nn.Module | None, int]:
    """A norm from ``factory`` at the first width its options allow (e.g. GN's groups must divide it)."""
    for width in (8, 16, 32, 64, 4):
        try:
            with torch.random.fork_rng(devices=[]):
                return factory(width), width
        except (ValueError, TypeError):
            continue
    return None, 0

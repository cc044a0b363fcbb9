"""The dataset registry: ``load_dataset(name, **options)``.

A loader is a function whose keyword-only parameters are its options, so the allowed option names
come from its signature and cannot drift from what it accepts. Adding a dataset = one module + one
line in ``_LOADERS``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from normbench.data.adding import load_adding_dataset
from normbench.data.cifar import load_cifar10_dataset
from normbench.data.dataset import Dataset
from normbench.data.digits import load_digits_dataset
from normbench.data.idx import load_fashion_mnist_dataset, load_mnist_dataset
from normbench.data.mnist1d import load_mnist1d_dataset, load_mnist1d_varlen_dataset
from normbench.data.synthetic import load_blobs_dataset

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "adding": load_adding_dataset,
    "blobs": load_blobs_dataset,
    "cifar10": load_cifar10_dataset,
    "digits": load_digits_dataset,
    "fashion_mnist": load_fashion_mnist_dataset,
    "mnist": load_mnist_dataset,
    "mnist1d": load_mnist1d_dataset,
    "mnist1d_varlen": load_mnist1d_varlen_dataset,
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(_LOADERS)


def dataset_options(name: str) -> dict[str, Any]:
    """Option names of dataset ``name`` with their defaults."""
    loader = _loader(name)
    return {
        p.name: p.default
        for p in inspect.signature(loader).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load dataset ``name``; ``ValueError`` for an unknown name or option (listing what is allowed).

    File-based datasets (``mnist``, ``fashion_mnist``, ``cifar10``) raise ``DataNotFoundError`` (a
    ``FileNotFoundError``) when their directory or files are missing and ``DataFormatError`` (a
    ``ValueError``) when a file is not in the expected format.
    """
    allowed = dataset_options(name)
    for option in options:
        if option not in allowed:
            raise ValueError(
                f"dataset {name!r}: unknown option {option!r}; allowed options: {', '.join(sorted(allowed))}"
            )
    return _loader(name)(**options)


def _loader(name: str) -> Callable[..., Dataset]:
    loader = _LOADERS.get(name)
    if loader is None:
        raise ValueError(f"unknown dataset {name!r}; available datasets: {', '.join(available_datasets())}")
    return loader

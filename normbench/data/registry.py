"""The dataset registry: ``load_dataset(name, **options)``.

A loader is a function whose keyword-only parameters are its options, so the allowed option names
come from its signature and cannot drift from what it accepts. Adding a dataset = one module + one
``DATASETS.register`` line below (see docs/architecture.md, "Adding a norm, a model or a dataset").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from normbench.data.adding import load_adding_dataset
from normbench.data.cifar import load_cifar10_dataset
from normbench.data.dataset import Dataset
from normbench.data.digits import load_digits_dataset
from normbench.data.idx import load_fashion_mnist_dataset, load_mnist_dataset
from normbench.data.imdb import load_imdb_dataset
from normbench.data.mnist1d import load_mnist1d_dataset, load_mnist1d_varlen_dataset
from normbench.data.synthetic import load_blobs_dataset
from normbench.data.tokens import load_tokens_dataset
from normbench.registry import Registry

DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset", group="normbench.datasets")  # plugins: docs/extending.md
DATASETS.register("adding", load_adding_dataset)
DATASETS.register("blobs", load_blobs_dataset)
DATASETS.register("cifar10", load_cifar10_dataset)
DATASETS.register("digits", load_digits_dataset)
DATASETS.register("fashion_mnist", load_fashion_mnist_dataset)
DATASETS.register("imdb", load_imdb_dataset)
DATASETS.register("mnist", load_mnist_dataset)
DATASETS.register("mnist1d", load_mnist1d_dataset)
DATASETS.register("mnist1d_varlen", load_mnist1d_varlen_dataset)
DATASETS.register("tokens", load_tokens_dataset)


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return DATASETS.available()


def dataset_options(name: str) -> dict[str, Any]:
    """Option names of dataset ``name`` with their defaults."""
    return DATASETS.options(name) or {}


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load dataset ``name``; ``ValueError`` for an unknown name or option (listing what is allowed).

    File-based datasets (``mnist``, ``fashion_mnist``, ``cifar10``) raise ``DataNotFoundError`` (a
    ``FileNotFoundError``) when their directory or files are missing and ``DataFormatError`` (a
    ``ValueError``) when a file is not in the expected format.
    """
    return DATASETS.create(name, options)

"""A validation split taken from the training data: shuffle once with a seed, the first n are validation.

This is how Ziaee & Çano split CIFAR-10 and IMDB (first 5,000 of the shuffled training set), and
it keeps the test set untouched for the final number. The permutation comes from
``numpy.random.default_rng(split_seed)``, so the split depends on the dataset's ``split_seed``
alone (never on a run's seed) and every run of a suite sees the same one.
"""

from __future__ import annotations

import numpy as np

from normbench.options import Owner, check_int, optional


def check_split_options(
    dataset: str, n: int, validation: object, train_subset: object = None
) -> tuple[int, int | None]:
    """``validation`` (an integer >= 0) and ``train_subset`` (None or >= 1), checked against ``n`` samples."""
    owner = Owner("dataset", dataset)
    validation = check_int(owner, "validation", validation, 0)
    train_subset = optional(check_int, owner, "train_subset", train_subset, 1)
    if validation >= n:
        raise ValueError(
            f"dataset {dataset!r}: option 'validation' is {validation} but the training data holds {n} "
            "samples; leave at least one for training"
        )
    if train_subset is not None and train_subset > n - validation:
        raise ValueError(
            f"dataset {dataset!r}: option 'train_subset' is {train_subset} but only {n - validation} training "
            f"samples remain after the validation split of {validation}"
        )
    return validation, train_subset


def split_indices(
    n: int, validation: int, split_seed: int, train_subset: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(validation indices, training indices) of ``n`` samples after one seeded shuffle.

    The first ``validation`` shuffled indices are the validation split; the training split is the
    rest in shuffled order, cut to its first ``train_subset`` when given (a fixed subset, the same
    for every run). With neither, nothing is split and the original order is kept.
    """
    if validation == 0 and train_subset is None:
        return np.arange(0), np.arange(n)
    order = np.random.default_rng(split_seed).permutation(n)
    train = order[validation:]
    if train_subset is not None:
        train = train[:train_subset]
    return order[:validation], train

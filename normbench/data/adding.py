"""``adding``: the adding problem, a long-memory regression task on variable-length sequences.

Source: Hochreiter & Schmidhuber, "Long Short-Term Memory" (1997), experiment 4, in the form used
by Le, Jaitly & Hinton, "A Simple Way to Initialize Recurrent Networks of Rectified Linear Units"
(2015): each step carries two numbers; channel 0 a value drawn uniformly from [0, 1), channel 1
a marker that is 1 at exactly two steps — one in the first half of the sequence and one in the
second — and 0 elsewhere. The target is the sum of the two marked values (in [0, 2)). Predicting
the constant 1 gives a mean squared error of 1/6 ≈ 0.167 (the variance of a sum of two U(0, 1)),
the baseline a model must beat.

Variable length (our addition, to exercise padding masks): each sequence has a length drawn
uniformly from ``min_length..max_length``; the halves are those of its own valid length ``L``
(first marker uniform in ``[0, L // 2)``, second in ``[L // 2, L)``). Sequences are stored as
float32 ``(N, 2, max_length)`` with both channels 0 after the valid length and ``mask_*``
``(N, max_length)`` True on valid steps. Inputs are not standardized (the markers must stay 0/1).

Regression convention (see :class:`~normbench.data.dataset.Dataset`): ``task="regression"``,
``num_classes=1`` (the output dimension), ``y_*`` float32 ``(N,)``.

Split: the train and test sets are drawn from two independent generators derived from
``split_seed``, so the test set does not change with ``n_train``.
"""

from __future__ import annotations

import numpy as np

from normbench.data.dataset import Dataset, dataset_from_splits
from normbench.data.sequences import draw_lengths, lengths_to_mask, split_generators
from normbench.options import Owner, check_int, check_seed

NAME = "adding"
OWNER = Owner("dataset", NAME)


def make_adding_problem(
    rng: np.random.Generator, n: int, min_length: int, max_length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` adding-problem sequences: inputs ``(n, 2, max_length)`` float32, targets ``(n,)`` float32
    and the mask ``(n, max_length)``, all drawn from ``rng``."""
    lengths = draw_lengths(rng, n, min_length, max_length)
    mask = lengths_to_mask(lengths, max_length)
    values = rng.random((n, max_length)) * mask
    half = lengths // 2
    first = rng.integers(0, half)  # broadcast bounds: one draw per sequence from its own first half
    second = rng.integers(half, lengths)
    markers = np.zeros((n, max_length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    inputs = np.stack([values, markers], axis=1).astype(np.float32)
    return inputs, targets.astype(np.float32), mask


def load_adding_dataset(
    *,
    n_train: int = 10000,
    n_test: int = 1000,
    min_length: int = 50,
    max_length: int = 100,
    split_seed: int = 0,
) -> Dataset:
    """Load ``adding``: ``(N, 2, max_length)`` inputs with masks and float32 sum targets (regression)."""
    n_train = check_int(OWNER, "n_train", n_train, 1)
    n_test = check_int(OWNER, "n_test", n_test, 1)
    # Two markers in different halves need at least two steps.
    min_length = check_int(OWNER, "min_length", min_length, 2)
    max_length = check_int(OWNER, "max_length", max_length, 2)
    if min_length > max_length:
        raise ValueError(
            f"dataset {NAME!r}: option 'min_length' ({min_length}) must not exceed 'max_length' ({max_length})"
        )
    seed = check_seed(OWNER, "split_seed", split_seed)
    train_rng, test_rng = split_generators(seed)
    x_train, y_train, mask_train = make_adding_problem(train_rng, n_train, min_length, max_length)
    x_test, y_test, mask_test = make_adding_problem(test_rng, n_test, min_length, max_length)
    return dataset_from_splits(
        NAME,
        {"train": (x_train, y_train, mask_train), "test": (x_test, y_test, mask_test)},
        num_classes=1,
        input_shape=(2, max_length),
        task="regression",
        description=(
            f"adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015), lengths {min_length}-{max_length}: "
            f"{n_train} train / {n_test} test, split seed {seed}, regression (baseline MSE 1/6)"
        ),
    )

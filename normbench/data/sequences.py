"""Variable-length sequences: random lengths, padding masks, and per-split generators.

Sequences of one dataset are stored padded to a common length ``T`` as ``(N, C, T)``; a boolean
mask ``(N, T)`` marks the valid prefix of each (True = valid), padded positions hold 0.
"""

from __future__ import annotations

import numpy as np


def split_generators(split_seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the train and the test split, both derived from ``split_seed``.

    Two streams (``SeedSequence.spawn``) rather than one: the test set then does not change when
    the number of training samples does.
    """
    train_seq, test_seq = np.random.SeedSequence(split_seed).spawn(2)
    return np.random.default_rng(train_seq), np.random.default_rng(test_seq)


def draw_lengths(rng: np.random.Generator, n: int, min_length: int, max_length: int) -> np.ndarray:
    """``n`` lengths drawn uniformly from the integers ``min_length..max_length`` (inclusive), int64."""
    return rng.integers(min_length, max_length, size=n, endpoint=True, dtype=np.int64)


def lengths_to_mask(lengths: np.ndarray, max_length: int) -> np.ndarray:
    """Boolean ``(N, max_length)`` mask, True at positions ``t < lengths[n]``."""
    return np.arange(max_length)[None, :] < np.asarray(lengths)[:, None]

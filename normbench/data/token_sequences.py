"""Token-id sequences padded as Keras' ``pad_sequences`` does, and their layout in a ``Dataset``.

Keras' defaults (``padding='pre'``, ``truncating='pre'``, ``value=0``): a sequence longer than
``maxlen`` keeps its last ``maxlen`` tokens, a shorter one gets zeros in front. The mask marks the
real tokens, so with pre-padding the last real token of every sequence sits at the final step.

Layout: a ``Dataset`` holds float32 ``x``, so token ids are stored as float32 ``(N, 1, T)`` — one
channel of whole numbers, exact for ids below 2**24 — with ``mask_*`` ``(N, T)``; the
``stacked_lstm`` model reads them back as int64 ids for its embedding.
"""

from __future__ import annotations

import numpy as np
import torch

PAD_ID = 0


def pad_pre(flat: np.ndarray, lengths: np.ndarray, maxlen: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 ids ``(N, maxlen)`` and bool mask from sequences concatenated in ``flat`` with ``lengths``.

    Truncation and padding at the start, as Keras' ``pad_sequences`` defaults.
    """
    n = len(lengths)
    ends = np.cumsum(lengths)
    kept = np.minimum(lengths, maxlen)
    ids = np.full((n, maxlen), PAD_ID, dtype=np.int64)
    # destination (row, column) and source index of every kept token, all at once
    rows = np.repeat(np.arange(n), kept)
    offset_in_kept = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
    columns = maxlen - np.repeat(kept, kept) + offset_in_kept
    sources = np.repeat(ends - kept, kept) + offset_in_kept
    ids[rows, columns] = flat[sources]
    mask = np.arange(maxlen)[None, :] >= (maxlen - kept)[:, None]
    return ids, mask


def token_tensor(ids: np.ndarray) -> torch.Tensor:
    """int ids ``(N, T)`` as the float32 ``(N, 1, T)`` a ``Dataset`` holds."""
    if ids.size and int(ids.max()) >= 2**24:
        raise ValueError(f"token id {int(ids.max())} is not exact in float32 (ids must be below 2**24)")
    return torch.from_numpy(ids.astype(np.float32)).unsqueeze(1)

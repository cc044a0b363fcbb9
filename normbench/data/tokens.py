"""``tokens``: a generated token-sequence classification set, IMDB-shaped, for the embedding + LSTM path.

No download: the embedded stand-in for ``imdb`` in tests and as the explicit fallback of the BLN
suites. Each class owns ``signal_tokens`` token ids (disjoint between classes); every other id of
the vocabulary is neutral. A sequence of class k has a length drawn uniformly from
``min_length..max_length``, starts with the start token 1 (as Keras' IMDB), and each further
token is, independently, one of class k's signal tokens with probability ``signal_rate`` (uniform
among them) and a uniformly drawn neutral token otherwise. Like a bag of sentiment words, the
class is in token frequencies; a sequence that happens to draw no signal token carries no
evidence, which bounds the attainable accuracy below 100 % (about (1 − signal_rate)^L of the
shortest sequences).

Ids: 0 = padding, 1 = start, 2 is never drawn (Keras' OOV id, kept free so the ids mean what they
mean in ``imdb``), signal and neutral tokens from 3 to ``vocab_size − 1``; a model needs
``vocab_size`` at least this dataset's (``stacked_lstm``: ``vocab_size: <the same>``). Sequences
are pre-padded to ``max_length`` as Keras does, stored as float32 ``(N, 1, max_length)`` ids with
``mask_*`` ``(N, max_length)`` (:mod:`~normbench.data.token_sequences`). Classes are balanced in
expectation (drawn uniformly).

Splits: train, validation and test come from three independent generators derived from
``split_seed`` (``numpy.random.SeedSequence(split_seed).spawn(3)``), so changing one split's size
changes neither of the others.
"""

from __future__ import annotations

import functools

import numpy as np

from normbench.data.dataset import Dataset, dataset_from_splits
from normbench.data.sequences import draw_lengths
from normbench.data.token_sequences import pad_pre, token_tensor
from normbench.options import Owner, check_int, check_number, check_seed

NAME = "tokens"
OWNER = Owner("dataset", NAME)
START_ID, FIRST_WORD_ID = 1, 3


def draw_token_split(
    rng: np.random.Generator, n: int, classes: int, signal: int, vocab: int, rate: float,
    lengths: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` sequences: ids ``(n, max_length)`` int64, bool mask, int64 labels, drawn from ``rng``."""
    labels = rng.integers(0, classes, size=n)
    words = draw_lengths(rng, n, lengths[0] - 1, lengths[1] - 1)  # the start token is the +1
    total = int(words.sum())
    owner = np.repeat(labels, words)  # class of each drawn token's sequence
    is_signal = rng.random(total) < rate
    signal_ids = FIRST_WORD_ID + owner * signal + rng.integers(0, signal, size=total)
    first_neutral = FIRST_WORD_ID + classes * signal
    neutral_ids = rng.integers(first_neutral, vocab, size=total)
    drawn = np.where(is_signal, signal_ids, neutral_ids)
    starts = np.cumsum(words) - words
    flat = np.insert(drawn, starts, START_ID)
    ids, mask = pad_pre(flat, words + 1, lengths[1])
    return ids, mask, labels.astype(np.int64)


def load_tokens_dataset(
    *,
    n_train: int = 4000,
    n_val: int = 1000,
    n_test: int = 1000,
    vocab_size: int = 1000,
    num_classes: int = 2,
    signal_tokens: int = 20,
    signal_rate: float = 0.1,
    min_length: int = 10,
    max_length: int = 80,
    split_seed: int = 0,
) -> Dataset:
    """Load ``tokens``: generated pre-padded token sequences ``(N, 1, max_length)`` with masks and a validation split."""
    n_train = check_int(OWNER, "n_train", n_train, 1)
    n_val = check_int(OWNER, "n_val", n_val, 0)
    n_test = check_int(OWNER, "n_test", n_test, 1)
    num_classes = check_int(OWNER, "num_classes", num_classes, 2)
    signal = check_int(OWNER, "signal_tokens", signal_tokens, 1)
    # at least one neutral id must remain after the start/OOV ids and every class's signal ids
    vocab = check_int(OWNER, "vocab_size", vocab_size, FIRST_WORD_ID + num_classes * signal + 1)
    rate = check_number(OWNER, "signal_rate", signal_rate, low=0.0, high=1.0, low_open=True, high_open=True)
    min_length = check_int(OWNER, "min_length", min_length, 2)  # the start token and one word
    max_length = check_int(OWNER, "max_length", max_length, min_length)
    seed = check_seed(OWNER, "split_seed", split_seed)
    generators = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]
    draw = functools.partial(draw_token_split, classes=num_classes, signal=signal, vocab=vocab, rate=rate,
                             lengths=(min_length, max_length))
    (x_tr, m_tr, y_tr), (x_te, m_te, y_te) = draw(generators[0], n_train), draw(generators[2], n_test)
    splits = {"train": (token_tensor(x_tr), y_tr, m_tr), "test": (token_tensor(x_te), y_te, m_te)}
    if n_val:
        x_va, m_va, y_va = draw(generators[1], n_val)
        splits["val"] = (token_tensor(x_va), y_va, m_va)
    return dataset_from_splits(
        NAME,
        splits,
        num_classes=num_classes,
        input_shape=(1, max_length),
        description=(
            f"generated token sequences ({num_classes} classes, vocabulary {vocab}, {signal} signal tokens "
            f"per class at rate {rate:g}, lengths {min_length}-{max_length}, pre-padded): {n_train} train / "
            f"{n_val} validation / {n_test} test"
        ),
    )

"""How the training loop builds mini-batches: i.i.d. permutations, or batches drawn from few classes.

``batching`` is a training-loop setting of a run (``RunSpec.batching``), given in a suite as
``batching: iid`` (the default) or ``batching: {classes_per_batch: k}``, or a list of those to
compare. Both orders draw from one generator seeded by the run seed alone, so runs that differ
only in the norm see the same batches (pairing), and neither touches the global RNG.

``iid`` (``BatchOrder``): every epoch a fresh permutation of the training set, cut into
``n_train // batch_size`` consecutive batches; the incomplete remainder is dropped so every batch
has the declared size, which batch-statistic norms need.

``classes_per_batch: k`` (``ClassBatchOrder``): every batch holds samples of exactly ``k``
distinct classes. For each batch, the ``k`` classes are drawn without replacement with probability
proportional to their number of training samples (so every sample is drawn equally often in the
long run, as under ``iid``), and the batch size is shared out as evenly as possible, the first
``batch_size mod k`` chosen classes taking one sample more. Each class hands out its samples from
its own queue: a seeded permutation of that class's indices, replaced by a fresh permutation when
it runs out, with the samples already taken for the current batch moved to its end, so no sample
appears twice in a batch unless its class is smaller than its share. An epoch is
``n_train // batch_size`` batches, the same number of steps as under ``iid``, so an ``epochs``
budget and the curves' epoch axis mean the same amount of data for both; epoch boundaries are where
the norms' ``on_epoch_start`` hook is called. Within a batch, samples are ordered class by class.
``k = 1`` gives class-pure batches, the worst case for batch statistics (Lian & Liu 2019).

``fixed`` or ``{order: fixed, samples: S}`` (``FixedBatchOrder``): the training set is shuffled
once by the seed and cut into batches once; every epoch then sees the same first ``K`` batches in
the same order, ``K = S // batch_size`` (all ``n_train // batch_size`` batches without
``samples``). This is Ziaee & Cano's tf.data pipeline (``shuffle(reshuffle_each_iteration=False)
.batch(drop_remainder=True).take(K)``), where 9,000 images make ``K`` 360 batches of 25 or 9,000 of
1; a dataset's ``train_subset`` gives the same ``K`` with ``fixed`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

_DATA_ORDER_SALT = 0x5EED  # the data order generator differs from the init stream yet depends on the seed only


def data_order_generator(seed: int) -> torch.Generator:
    """The generator every batch order of a run draws from (a function of the seed alone)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + _DATA_ORDER_SALT)


class BatchOrder:
    """Mini-batch indices: a fresh seeded permutation per epoch, incomplete last batch dropped.

    Dropping the remainder keeps every training batch the declared size, which batch-statistic
    norms need for the comparison to mean what it says.
    """

    def __init__(self, n_train: int, batch_size: int, seed: int):
        self.n_train = n_train
        self.batch_size = batch_size
        self.per_epoch = n_train // batch_size
        self._generator = data_order_generator(seed)
        self._perm = torch.empty(0, dtype=torch.long)
        self._position = 0
        self.epoch = 0  # epochs started so far (1 after the first batch)

    def next(self) -> torch.Tensor:
        """Indices of the next mini-batch (a new permutation when the epoch's batches are used up)."""
        if self._position + self.batch_size > len(self._perm) or len(self._perm) == 0:
            self._perm = torch.randperm(self.n_train, generator=self._generator)
            self._position = 0
            self.epoch += 1
        batch = self._perm[self._position : self._position + self.batch_size]
        self._position += self.batch_size
        return batch


class ClassBatchOrder:
    """Mini-batches of exactly ``classes_per_batch`` classes each (see the module docstring)."""

    def __init__(self, labels: torch.Tensor, batch_size: int, seed: int, classes_per_batch: int):
        labels = labels.detach().to("cpu", torch.long)
        classes = torch.unique(labels)
        if classes_per_batch > len(classes):
            raise ValueError(f"batching: classes_per_batch={classes_per_batch} exceeds the {len(classes)} classes "
                             "of the training set")
        if classes_per_batch > batch_size:
            raise ValueError(f"batching: classes_per_batch={classes_per_batch} exceeds the batch size {batch_size}; "
                             "every class of a batch needs at least one sample")
        self.batch_size = batch_size
        self.classes_per_batch = classes_per_batch
        self.per_epoch = len(labels) // batch_size
        self._members = [torch.nonzero(labels == c).squeeze(1) for c in classes.tolist()]
        self._sizes = torch.tensor([len(m) for m in self._members], dtype=torch.float64)
        self._generator = data_order_generator(seed)
        self._queues = [torch.empty(0, dtype=torch.long) for _ in self._members]
        self._in_epoch = 0
        self.epoch = 0

    def next(self) -> torch.Tensor:
        """Indices of the next mini-batch: ``classes_per_batch`` classes, shares as even as possible."""
        if self._in_epoch == self.per_epoch or self.epoch == 0:
            self._in_epoch = 0
            self.epoch += 1
        self._in_epoch += 1
        k = self.classes_per_batch
        chosen = torch.multinomial(self._sizes, k, replacement=False, generator=self._generator).tolist()
        share, extra = divmod(self.batch_size, k)
        parts = [self._take(c, share + (1 if j < extra else 0)) for j, c in enumerate(chosen)]
        return torch.cat(parts)

    def _take(self, c: int, count: int) -> torch.Tensor:
        """The next ``count`` samples of class ``c`` from its queue, refilled with fresh permutations."""
        taken: list[torch.Tensor] = []
        while count > 0:
            if len(self._queues[c]) == 0:
                members = self._members[c]
                fresh = members[torch.randperm(len(members), generator=self._generator)]
                if taken:  # this batch's samples go last, so the batch repeats none of them
                    again = torch.isin(fresh, torch.cat(taken))
                    fresh = torch.cat([fresh[~again], fresh[again]])
                self._queues[c] = fresh
            part, self._queues[c] = self._queues[c][:count], self._queues[c][count:]
            taken.append(part)
            count -= len(part)
        return torch.cat(taken)


class FixedBatchOrder:
    """The same first ``K`` batches of one seeded permutation, in the same order, every epoch."""

    def __init__(self, n_train: int, batch_size: int, seed: int, samples: int | None = None):
        per_epoch = n_train // batch_size
        if samples is not None:
            if samples > n_train:
                raise ValueError(f"batching: samples={samples} exceeds the {n_train} training samples")
            per_epoch = samples // batch_size
        if per_epoch < 1:
            raise ValueError(f"batching: {samples or n_train} samples make no full batch of {batch_size}")
        self.batch_size = batch_size
        self.per_epoch = per_epoch
        perm = torch.randperm(n_train, generator=data_order_generator(seed))
        self._batches = perm[: per_epoch * batch_size].reshape(per_epoch, batch_size)
        self._position = per_epoch  # the first call starts epoch 1
        self.epoch = 0

    def next(self) -> torch.Tensor:
        """Indices of the next mini-batch; after the K-th, the first again (a new epoch)."""
        if self._position == self.per_epoch:
            self._position = 0
            self.epoch += 1
        batch = self._batches[self._position]
        self._position += 1
        return batch


Order = BatchOrder | ClassBatchOrder | FixedBatchOrder
_ALLOWED = "iid, fixed, {order: fixed, samples: S} or {classes_per_batch: k}"


def batch_order(batching: Mapping[str, Any], labels: torch.Tensor, batch_size: int, seed: int,
                task: str = "classification") -> Order:
    """The batch order a run's ``batching`` options ask for (``{}`` = iid); ValueError when the
    data cannot be batched that way (a regression task, more classes per batch than exist)."""
    if not batching:
        return BatchOrder(len(labels), batch_size, seed)
    if batching.get("order") == "fixed" and set(batching) <= {"order", "samples"}:
        return FixedBatchOrder(len(labels), batch_size, seed, batching.get("samples"))
    unknown = sorted(set(batching) - {"classes_per_batch"})
    if unknown:
        raise ValueError(f"batching: unknown option(s) {unknown}; allowed: {_ALLOWED}")
    if task != "classification":
        raise ValueError(f"batching: classes_per_batch needs class labels; this dataset's task is {task}")
    return ClassBatchOrder(labels, batch_size, seed, int(batching["classes_per_batch"]))

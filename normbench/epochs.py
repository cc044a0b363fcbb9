"""Per-epoch training records: the mean training-mode loss and accuracy over each epoch's batches.

What Keras' ``History`` reports and what Ziaee & Cano plot as "training loss per epoch": every batch's
loss as computed for its update (training mode, before the step), averaged over the epoch's batches;
accuracy is the epoch's correct predictions over its samples. Epoch ``k`` is the steps
``(k-1)·K + 1 .. k·K`` of the batch order's ``K`` batches per epoch; a budget ending inside an epoch
leaves a last record with fewer ``steps``. Sums stay on the device, so recording costs no host sync.
"""

from __future__ import annotations

import torch

from normbench.spec import EpochRecord


class EpochTally:
    """Training-mode loss and correct predictions summed over one epoch's batches, on the device."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), device=device, dtype=torch.float64)
        self.correct = torch.zeros((), device=device, dtype=torch.float64)
        self.steps = 0
        self.samples = 0

    def add(self, loss: torch.Tensor, correct: torch.Tensor, samples: int) -> None:
        """Fold in one batch: its mean loss and its count of correct predictions."""
        self.loss += loss
        self.correct += correct
        self.steps += 1
        self.samples += samples

    def record(self, epoch: int) -> EpochRecord:
        """The epoch's mean batch loss and its accuracy (correct / samples), as Keras' History has them."""
        return EpochRecord(epoch=epoch, steps=self.steps, train_loss=float(self.loss / self.steps),
                           train_accuracy=float(self.correct / self.samples))

"""``Dataset``: a train/test split held as CPU tensors (the data here is small enough to keep whole)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# What ``y_*`` holds; the training loop picks its loss and metrics by this name.
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors plus what a model needs to be built for them.

    ``x_*`` are float32 ``(N, *input_shape)``. ``task`` says what ``y_*`` holds:

    * ``"classification"``: ``y_*`` int64 ``(N,)`` class indices in ``[0, num_classes)``;
    * ``"regression"``: ``y_*`` float32 ``(N,)`` scalar targets, and ``num_classes`` is 1, the
      output dimension, so ``create_model(..., num_classes=dataset.num_classes)`` builds a model
      with one output per sample for either task.

    ``mask_*``, where present, are boolean ``(N, *spatial)`` marking valid positions (False =
    padding). ``x_val``/``y_val``/``mask_val``, where present, are a validation split taken from
    the training data (same layout as train; used to choose settings without looking at the test
    set). ``description`` is one line naming the source and the split sizes.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    mask_train: torch.Tensor | None = None
    mask_test: torch.Tensor | None = None
    description: str = ""
    task: str = "classification"
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    mask_val: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # A loader bug caught here names the dataset instead of surfacing as a shape error mid-run.
        if self.task not in TASKS:
            raise ValueError(f"dataset {self.name!r}: task must be one of {', '.join(TASKS)}; got {self.task!r}")
        if self.task == "regression" and self.num_classes != 1:
            raise ValueError(
                f"dataset {self.name!r}: a regression dataset has num_classes 1 (the output dimension); "
                f"got {self.num_classes!r}"
            )
        target_dtype = torch.int64 if self.task == "classification" else torch.float32
        if (self.x_val is None) != (self.y_val is None) or (self.mask_val is not None and self.x_val is None):
            raise ValueError(f"dataset {self.name!r}: x_val and y_val come together (mask_val only with them)")
        for split in ("train", "test") + (("val",) if self.x_val is not None else ()):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            mask = getattr(self, f"mask_{split}")
            if x.dtype != torch.float32 or y.dtype != target_dtype:
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} must be float32 and y_{split} "
                    f"{'int64' if target_dtype == torch.int64 else 'float32'} for a {self.task} task"
                )
            if y.dim() != 1 or x.shape[0] != y.shape[0]:
                raise ValueError(f"dataset {self.name!r}: x_{split} and y_{split} differ in length")
            if tuple(x.shape[1:]) != tuple(self.input_shape):
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} samples have shape {tuple(x.shape[1:])}, "
                    f"input_shape says {tuple(self.input_shape)}"
                )
            if mask is not None and (
                mask.dtype != torch.bool or tuple(mask.shape) != (x.shape[0], *x.shape[2:])
            ):
                raise ValueError(f"dataset {self.name!r}: mask_{split} must be bool of shape (N, *spatial)")

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        """Number of validation samples (0 without a validation split)."""
        return 0 if self.x_val is None else int(self.x_val.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.x_test.shape[0])


def dataset_from_splits(
    name: str, splits: dict[str, tuple[Any, Any, Any]], *, num_classes: int, input_shape: tuple[int, ...],
    description: str, task: str = "classification",
) -> Dataset:
    """A :class:`Dataset` from ``(x, y, mask)`` per split name ("train", "test", optionally "val").

    Each part may be a NumPy array (taken over without a copy, as ``torch.from_numpy`` does) or a
    tensor; a ``mask`` of None means the split has none. The checks of :class:`Dataset` apply.
    """
    parts = {f"{part}_{split}": torch.as_tensor(array)
             for split, arrays in splits.items() for part, array in zip(("x", "y", "mask"), arrays)
             if array is not None}
    return Dataset(name=name, num_classes=num_classes, input_shape=input_shape, description=description, task=task,
                   **parts)

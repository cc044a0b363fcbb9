"""Datasets held as tensors, each behind ``load_dataset(name, **options)``."""

from normbench.data.datadir import DATA_DIR_ENV, DataFormatError, DataNotFoundError
from normbench.data.dataset import TASKS, Dataset
from normbench.data.registry import available_datasets, dataset_options, load_dataset

__all__ = [
    "DATA_DIR_ENV",
    "DataFormatError",
    "DataNotFoundError",
    "Dataset",
    "TASKS",
    "available_datasets",
    "dataset_options",
    "load_dataset",
]
